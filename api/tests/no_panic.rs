//! The loader and renderer answer every input with objects or problems,
//! never a panic: truncated documents and scalars swapped for odd values.

use switchboard_api::{Inventory, parse_documents, render};

fn run(text: &str) {
    let Ok(objects) = parse_documents(text, "fuzz.yaml") else {
        return;
    };
    let mut inventory = Inventory::default();
    let _ = inventory.extend(objects);
    let _ = render(&inventory);
}

fn quickstart() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart.yaml");
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn truncated_documents_do_not_panic() {
    let text = quickstart();
    for (i, _) in text.char_indices() {
        run(&text[..i]);
    }
}

#[test]
fn odd_scalars_do_not_panic() {
    let text = quickstart();
    let odd = [
        "",
        "-1",
        "4294967296",
        "*",
        "?",
        "[]",
        "{}",
        "~",
        "'\u{0}'",
        "http://",
        "0ms",
        "99999999999h",
    ];
    let words: Vec<(usize, usize)> = text
        .match_indices(|c: char| c.is_alphanumeric() || c == '-' || c == '*')
        .map(|(i, s)| (i, i + s.len()))
        .collect();
    for (start, end) in words.iter().step_by(3) {
        for value in odd {
            run(&format!("{}{}{}", &text[..*start], value, &text[*end..]));
        }
    }
}
