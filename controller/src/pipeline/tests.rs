use super::*;
use switchboard_api::parse_documents;
use switchboard_api::render::Served;

fn inventory(yaml: &str) -> Inventory {
    let mut inv = Inventory::default();
    inv.extend(parse_documents(yaml, "test.yaml").unwrap())
        .unwrap();
    inv
}

fn backend(name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: switchboard.dev/v1alpha1\nkind: AIBackend\nmetadata: {{name: {name}}}\nspec: {spec}\n"
    )
}

fn route(name: &str, prefix: &str, backend: &str) -> String {
    format!(
        "---\napiVersion: switchboard.dev/v1alpha1\nkind: AIRoute\nmetadata: {{name: {name}}}\nspec: {{pathPrefix: {prefix}, rules: [{{models: ['*'], backends: [{{name: {backend}}}]}}]}}\n"
    )
}

const MOCK: &str = "{provider: Mock}";
const BAD: &str = "{provider: Mock, credentials: {env: OPENAI_KEY}}";

fn ids(s: &Snapshot) -> (Vec<&str>, Vec<&str>) {
    (
        s.backends.iter().map(|b| b.id.as_str()).collect(),
        s.routes.iter().map(|r| r.id.as_str()).collect(),
    )
}

fn render(yaml: &str, mode: RenderMode) -> Rendered {
    Rendered::render(Arc::new(inventory(yaml)), mode, &ClaimPolicy::allow_all())
}

fn served(r: &Rendered, kind: ObjectKind, name: &str) -> Served {
    r.outcomes[&(kind, "default".to_string(), name.to_string())]
        .served
        .clone()
}

#[test]
fn valid_inventory_renders_whole() {
    let r = render(
        &(backend("a", MOCK) + &route("r", "/", "a")),
        RenderMode::Kubernetes,
    );
    assert!(r.problems.is_empty(), "{}", r.problems);
    assert_eq!(
        ids(r.snapshot.as_ref().unwrap()),
        (vec!["default/a"], vec!["default/r"])
    );
}

#[test]
fn one_invalid_object_does_not_block_the_others() {
    let yaml = backend("a", MOCK) + &backend("bad", BAD) + &route("r", "/", "a");
    let r = render(&yaml, RenderMode::Kubernetes);
    assert_eq!(
        ids(r.snapshot.as_ref().unwrap()),
        (vec!["default/a"], vec!["default/r"])
    );
    assert_eq!(r.problems.len(), 1, "{}", r.problems);
    assert_eq!(r.problems.0[0].resource, "AIBackend default/bad");
    assert_eq!(served(&r, ObjectKind::Backend, "bad"), Served::NotServed);
}

#[test]
fn dependents_of_an_unserved_object_get_their_own_problem() {
    let yaml = backend("a", MOCK)
        + &backend("bad", BAD)
        + &route("good", "/good", "a")
        + &route("uses-bad", "/bad", "bad");
    let r = render(&yaml, RenderMode::Kubernetes);
    assert_eq!(
        ids(r.snapshot.as_ref().unwrap()),
        (vec!["default/a"], vec!["default/good"])
    );
    let resources: Vec<&str> = r.problems.iter().map(|p| p.resource.as_str()).collect();
    assert_eq!(
        resources,
        vec!["AIBackend default/bad", "AIRoute default/uses-bad"]
    );
}

#[test]
fn directory_mode_keeps_the_last_accepted_version_of_each_object_in_memory() {
    let mut last = LastAcceptedSource::for_mode(RenderMode::Directory);
    let policy = ClaimPolicy::allow_all();
    let good = backend("a", MOCK) + &route("r", "/r", "a") + &route("s", "/s", "a");
    let (first, _) = next_rendered(
        &Rendered::default(),
        Arc::new(inventory(&good)),
        &Problems::new(),
        RenderMode::Directory,
        &mut last,
        &policy,
    );
    // r breaks (a backend that does not exist) and s moves to a new prefix.
    let edited = backend("a", MOCK) + &route("r", "/r", "missing") + &route("s", "/s2", "a");
    let (second, result) = next_rendered(
        &first,
        Arc::new(inventory(&edited)),
        &Problems::new(),
        RenderMode::Directory,
        &mut last,
        &policy,
    );
    assert_eq!(result, "partial");
    assert_eq!(
        served(&second, ObjectKind::Route, "r"),
        Served::LastAccepted { generation: None }
    );
    let snapshot = second.snapshot.as_ref().unwrap();
    let r = snapshot
        .routes
        .iter()
        .find(|r| r.id == "default/r")
        .unwrap();
    assert_eq!(r.rules[0].groups[0].backends[0].backend, "default/a");
    let s = snapshot
        .routes
        .iter()
        .find(|r| r.id == "default/s")
        .unwrap();
    assert_eq!(s.path_prefix, "/s2");
    // Deleted: gone, and not remembered.
    let (third, _) = next_rendered(
        &second,
        Arc::new(inventory(&backend("a", MOCK))),
        &Problems::new(),
        RenderMode::Directory,
        &mut last,
        &policy,
    );
    assert!(third.snapshot.as_ref().unwrap().routes.is_empty());
    let (fourth, _) = next_rendered(
        &third,
        Arc::new(inventory(&edited)),
        &Problems::new(),
        RenderMode::Directory,
        &mut last,
        &policy,
    );
    assert_eq!(served(&fourth, ObjectKind::Route, "r"), Served::NotServed);
}

#[test]
fn directory_mode_passes_backend_env_on_but_never_reads_its_own_env() {
    let key = "---\napiVersion: switchboard.dev/v1alpha1\nkind: AIRoute\nmetadata: {name: keyed}\nspec: {pathPrefix: /k, auth: {apiKeys: [{name: k, env: PATH}]}, rules: [{models: ['*'], backends: [{name: bad}]}]}\n";
    let yaml = backend("bad", BAD) + key;
    let r = render(&yaml, RenderMode::Directory);
    assert_eq!(
        ids(r.snapshot.as_ref().unwrap()),
        (vec!["default/bad"], vec![])
    );
    assert_eq!(r.problems.len(), 1, "{}", r.problems);
    assert_eq!(r.problems.0[0].resource, "AIRoute default/keyed");
    assert!(
        r.problems.0[0].message.contains("PATH is not set"),
        "{}",
        r.problems
    );
}

#[test]
fn empty_inventory_renders_an_empty_snapshot() {
    let r = render("", RenderMode::Kubernetes);
    assert!(r.problems.is_empty());
    assert_eq!(ids(r.snapshot.as_ref().unwrap()), (vec![], vec![]));
}

#[test]
fn problem_keys_parse() {
    assert_eq!(
        problem_key("AIRoute team/main"),
        Some((ObjectKind::Route, "team".into(), "main".into()))
    );
    assert_eq!(problem_key("test.yaml (document 2)"), None);
    assert_eq!(
        problem_kind(&Problem::new("f.yaml", "", "bad yaml")),
        "source"
    );
}

#[test]
fn next_rendered_keeps_the_snapshot_arc_when_the_version_is_unchanged() {
    let inv = Arc::new(inventory(&(backend("a", MOCK) + &route("r", "/", "a"))));
    let mut last = LastAcceptedSource::Status;
    let policy = ClaimPolicy::allow_all();
    let (first, result) = next_rendered(
        &Rendered::default(),
        inv.clone(),
        &Problems::new(),
        RenderMode::Kubernetes,
        &mut last,
        &policy,
    );
    assert_eq!(result, "ok");
    assert!(changed(&Rendered::default(), &first));
    let again = Arc::new((*inv).clone());
    let (second, _) = next_rendered(
        &first,
        again,
        &Problems::new(),
        RenderMode::Kubernetes,
        &mut last,
        &policy,
    );
    assert!(Arc::ptr_eq(
        first.snapshot.as_ref().unwrap(),
        second.snapshot.as_ref().unwrap()
    ));
    // Same content, new inventory object: published (status may need it), same version.
    assert!(changed(&first, &second));
    let (third, _) = next_rendered(
        &second,
        second.inventory.clone(),
        &Problems::new(),
        RenderMode::Kubernetes,
        &mut last,
        &policy,
    );
    assert!(!changed(&second, &third));
}

#[test]
fn source_problems_come_first_and_are_published() {
    let inv = Arc::new(inventory(&backend("a", MOCK)));
    let mut last = LastAcceptedSource::for_mode(RenderMode::Directory);
    let policy = ClaimPolicy::allow_all();
    let (clean, _) = next_rendered(
        &Rendered::default(),
        inv.clone(),
        &Problems::new(),
        RenderMode::Directory,
        &mut last,
        &policy,
    );
    let source = Problems::from(Problem::new("b.yaml (document 1)", "", "invalid YAML"));
    let (next, result) = next_rendered(
        &clean,
        inv,
        &source,
        RenderMode::Directory,
        &mut last,
        &policy,
    );
    assert_eq!(result, "ok", "the render itself is clean");
    assert_eq!(next.problems, source);
    assert!(changed(&clean, &next));
}

#[tokio::test]
async fn renderer_publishes_on_change_only() {
    let (inv_tx, inv_rx) = watch::channel(Arc::new(Inventory::default()));
    let (_ptx, prx) = watch::channel(Problems::new());
    let (out_tx, mut out_rx) = watch::channel(Arc::new(Rendered::default()));
    let task = tokio::spawn(run_renderer(
        inv_rx,
        prx,
        RenderMode::Directory,
        ClaimPolicy::allow_all(),
        out_tx,
        Arc::new(Metrics::new()),
    ));
    inv_tx.send_replace(Arc::new(inventory(
        &(backend("a", MOCK) + &route("r", "/", "a")),
    )));
    let first = out_rx
        .wait_for(|r| r.snapshot.is_some())
        .await
        .unwrap()
        .clone();
    let v1 = first.snapshot.as_ref().unwrap().version.clone();
    inv_tx.send_replace(Arc::new(inventory(
        &(backend("a", "{provider: Mock, mock: {reply: hi}}") + &route("r", "/", "a")),
    )));
    let second = out_rx
        .wait_for(|r| r.snapshot.as_ref().is_some_and(|s| s.version != v1))
        .await
        .unwrap()
        .clone();
    assert!(second.problems.is_empty());
    drop(inv_tx);
    task.await.unwrap();
}
