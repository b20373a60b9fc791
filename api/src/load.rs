//! Parsing YAML documents into [`Object`]s.
//!
//! A file may hold several documents (`---`), and a document may be a
//! `kind: List` whose `items` are objects. Recognised kinds: `AIBackend`,
//! `AIRoute` and `AITeam` (`switchboard.dev/v1alpha1`) and `Secret` (`v1`, with
//! base64 `data` and plain `stringData`). Everything else is a problem.
//! Type errors name the field path; unknown fields under `spec` are
//! problems too, so a typo never silently drops a setting.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use serde::Deserialize;
use serde_yaml::Value;

use crate::inventory::ObjectKind;
use crate::problem::{Problem, Problems};
use crate::v1alpha1::{AIBackend, AIRoute, AITeam, API_VERSION, ResourceStatus};

/// Annotation the loader sets on AIBackends, AIRoutes and AITeams to remember the
/// file and document they came from (used in duplicate messages).
pub const SOURCE_ANNOTATION: &str = "switchboard.dev/source";

/// Namespace of objects that do not name one.
pub const DEFAULT_NAMESPACE: &str = "default";

/// One parsed object.
// Objects are few and short-lived (parsed, then moved into an `Inventory`);
// boxing the large variants would only add indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum Object {
    /// An `AIBackend`.
    Backend(AIBackend),
    /// An `AIRoute`.
    Route(AIRoute),
    /// An `AITeam`.
    Team(AITeam),
    /// A `v1` Secret, reduced to its decoded data.
    Secret {
        /// Namespace of the Secret.
        namespace: String,
        /// Name of the Secret.
        name: String,
        /// Decoded values by key (`stringData` wins over `data`).
        data: BTreeMap<String, Vec<u8>>,
    },
    /// An AIBackend, AIRoute or AITeam whose spec does not decode into its type (a
    /// value the schema allows but this version does not know, such as an
    /// enum value added by a newer CRD). It is kept so its status can say
    /// why, and so its last accepted generation keeps serving.
    Undecodable(Box<Undecodable>),
}

/// An AIBackend, AIRoute or AITeam that could not be decoded; see [`Object::Undecodable`].
#[derive(Clone, Debug, PartialEq)]
pub struct Undecodable {
    /// `Backend`, `Route` or `Team`.
    pub kind: ObjectKind,
    /// The object's metadata (always decodable).
    pub metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    /// Why it does not decode: the field path and the decoder's message.
    pub error: Problem,
    /// Its status, when that decodes (it holds the last accepted spec).
    pub status: Option<ResourceStatus>,
}

impl Object {
    /// The object's kind (`AIBackend`, `AIRoute`, `AITeam` or `Secret`).
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Backend(_) => "AIBackend",
            Object::Route(_) => "AIRoute",
            Object::Team(_) => "AITeam",
            Object::Secret { .. } => "Secret",
            Object::Undecodable(u) => u.kind.name(),
        }
    }

    /// The object's namespace.
    pub fn namespace(&self) -> &str {
        match self {
            Object::Backend(b) => b.metadata.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE),
            Object::Route(r) => r.metadata.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE),
            Object::Team(t) => t.metadata.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE),
            Object::Secret { namespace, .. } => namespace,
            Object::Undecodable(u) => u.metadata.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE),
        }
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        match self {
            Object::Backend(b) => b.metadata.name.as_deref().unwrap_or_default(),
            Object::Route(r) => r.metadata.name.as_deref().unwrap_or_default(),
            Object::Team(t) => t.metadata.name.as_deref().unwrap_or_default(),
            Object::Secret { name, .. } => name,
            Object::Undecodable(u) => u.metadata.name.as_deref().unwrap_or_default(),
        }
    }

    /// Where the loader found the object, if it was loaded from a file.
    pub fn source(&self) -> Option<&str> {
        let meta = match self {
            Object::Backend(b) => &b.metadata,
            Object::Route(r) => &r.metadata,
            Object::Team(t) => &t.metadata,
            Object::Undecodable(u) => &u.metadata,
            Object::Secret { .. } => return None,
        };
        meta.annotations
            .as_ref()?
            .get(SOURCE_ANNOTATION)
            .map(String::as_str)
    }

    /// `Kind namespace/name`, as problems name resources.
    pub fn describe(&self) -> String {
        format!("{} {}/{}", self.kind(), self.namespace(), self.name())
    }
}

/// Secret values never reach logs.
impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Object::Backend(b) => f.debug_tuple("Backend").field(b).finish(),
            Object::Route(r) => f.debug_tuple("Route").field(r).finish(),
            Object::Team(t) => f.debug_tuple("Team").field(t).finish(),
            Object::Undecodable(u) => f.debug_tuple("Undecodable").field(u).finish(),
            Object::Secret {
                namespace,
                name,
                data,
            } => f
                .debug_struct("Secret")
                .field("namespace", namespace)
                .field("name", name)
                .field("keys", &data.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// Parses every YAML document of `text`; `source` (a file name) appears in
/// problems. Empty documents are skipped. Collects every problem.
pub fn parse_documents(text: &str, source: &str) -> Result<Vec<Object>, Problems> {
    let mut objects = Vec::new();
    let mut problems = Problems::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let at = Location {
            source,
            document: i + 1,
            item: None,
        };
        match Value::deserialize(doc) {
            Ok(value) => parse_value(value, &at, &mut objects, &mut problems),
            Err(e) => {
                problems.push(Problem::new(
                    at.to_string(),
                    "",
                    format!("invalid YAML: {e}"),
                ));
                // The parser cannot resynchronise after a syntax error.
                break;
            }
        }
    }
    problems.into_result(objects)
}

/// Where a document is: file, document number and `List` item.
struct Location<'a> {
    source: &'a str,
    document: usize,
    item: Option<usize>,
}

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (document {}", self.source, self.document)?;
        if let Some(item) = self.item {
            write!(f, ", items[{item}]")?;
        }
        write!(f, ")")
    }
}

fn parse_value(
    value: Value,
    at: &Location<'_>,
    objects: &mut Vec<Object>,
    problems: &mut Problems,
) {
    if value.is_null() {
        return;
    }
    let Value::Mapping(map) = &value else {
        problems.push(Problem::new(
            at.to_string(),
            "",
            "a document must be a mapping (an object)",
        ));
        return;
    };
    let text = |key: &str| {
        map.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let kind = text("kind");
    let api_version = text("apiVersion");
    let meta = map.get("metadata");
    let meta_str = |key: &str| {
        meta.and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let name = meta_str("name").unwrap_or_default();
    let namespace = meta_str("namespace")
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
    let resource = format!("{kind} {namespace}/{name} in {at}");
    let expect_api = |want: &str, problems: &mut Problems| {
        let ok = api_version == want;
        if !ok {
            problems.push(Problem::new(
                &resource,
                "apiVersion",
                format!("must be {want:?} for kind {kind}, got {api_version:?}"),
            ));
        }
        ok
    };
    match kind.as_str() {
        "List" => {
            let Some(Value::Sequence(items)) = map.get("items") else {
                problems.push(Problem::new(
                    at.to_string(),
                    "items",
                    "a List needs an items array",
                ));
                return;
            };
            if at.item.is_some() {
                problems.push(Problem::new(
                    at.to_string(),
                    "",
                    "nested Lists are not supported",
                ));
                return;
            }
            for (i, item) in items.iter().enumerate() {
                let at = Location {
                    source: at.source,
                    document: at.document,
                    item: Some(i),
                };
                parse_value(item.clone(), &at, objects, problems);
            }
            return;
        }
        "AIBackend" | "AIRoute" | "AITeam" | "Secret" => {}
        "" => {
            problems.push(Problem::new(at.to_string(), "kind", "missing kind"));
            return;
        }
        other => {
            problems.push(Problem::new(
                resource.clone(),
                "kind",
                format!(
                    "unsupported kind {other:?} (expected AIBackend, AIRoute, AITeam or Secret)"
                ),
            ));
            return;
        }
    }
    if name.is_empty() {
        problems.push(Problem::new(&resource, "metadata.name", "missing name"));
        return;
    }
    if name.contains('/') || namespace.contains('/') {
        problems.push(Problem::new(
            &resource,
            "metadata",
            "names and namespaces cannot contain '/'",
        ));
        return;
    }
    let source = at.to_string();
    match kind.as_str() {
        "AIBackend" if expect_api(API_VERSION, problems) => {
            if let Some(mut b) = typed::<AIBackend>(&value, &resource, problems) {
                b.metadata.namespace = Some(namespace);
                annotate(&mut b.metadata, source);
                objects.push(Object::Backend(b));
            }
        }
        "AIRoute" if expect_api(API_VERSION, problems) => {
            if let Some(mut r) = typed::<AIRoute>(&value, &resource, problems) {
                r.metadata.namespace = Some(namespace);
                annotate(&mut r.metadata, source);
                objects.push(Object::Route(r));
            }
        }
        "AITeam" if expect_api(API_VERSION, problems) => {
            if let Some(mut t) = typed::<AITeam>(&value, &resource, problems) {
                t.metadata.namespace = Some(namespace);
                annotate(&mut t.metadata, source);
                objects.push(Object::Team(t));
            }
        }
        "Secret" if expect_api("v1", problems) => {
            if let Some(data) = secret_data(&value, &resource, problems) {
                objects.push(Object::Secret {
                    namespace,
                    name,
                    data,
                });
            }
        }
        _ => {}
    }
}

fn annotate(meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, source: String) {
    meta.annotations
        .get_or_insert_with(BTreeMap::new)
        .entry(SOURCE_ANNOTATION.to_string())
        .or_insert(source);
}

/// Deserializes `value` as `T`, reporting the failing field path, then
/// reports fields under `spec` that `T` does not know.
fn typed<T>(value: &Value, resource: &str, problems: &mut Problems) -> Option<T>
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let parsed: T = match serde_path_to_error::deserialize(value.clone()) {
        Ok(v) => v,
        Err(e) => {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            problems.push(Problem::new(resource, path, e.into_inner().to_string()));
            return None;
        }
    };
    let before = problems.len();
    if let (Some(input), Ok(output)) = (value.get("spec"), serde_yaml::to_value(&parsed)) {
        unknown_fields(
            input,
            output.get("spec").unwrap_or(&Value::Null),
            "spec",
            resource,
            problems,
        );
    }
    (problems.len() == before).then_some(parsed)
}

/// Reports keys present in `input` but absent from the re-serialized
/// `output` (an empty value absent from the output is a skipped default).
fn unknown_fields(
    input: &Value,
    output: &Value,
    path: &str,
    resource: &str,
    problems: &mut Problems,
) {
    match input {
        Value::Mapping(map) => {
            for (key, value) in map {
                let key_text = key
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{key:?}"));
                let child = format!("{path}.{key_text}");
                match output.get(key) {
                    Some(out) => unknown_fields(value, out, &child, resource, problems),
                    None if is_empty(value) => {}
                    None => problems.push(Problem::new(resource, child, "unknown field")),
                }
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(out) = output.get(i) {
                    unknown_fields(item, out, &format!("{path}[{i}]"), resource, problems);
                }
            }
        }
        _ => {}
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Sequence(s) => s.is_empty(),
        Value::Mapping(m) => m.is_empty(),
        _ => false,
    }
}

/// The parts of a Secret the renderer uses.
#[derive(Deserialize)]
struct SecretDoc {
    #[serde(default)]
    data: Option<BTreeMap<String, Option<String>>>,
    #[serde(default, rename = "stringData")]
    string_data: Option<BTreeMap<String, Option<String>>>,
}

fn secret_data(
    value: &Value,
    resource: &str,
    problems: &mut Problems,
) -> Option<BTreeMap<String, Vec<u8>>> {
    let doc: SecretDoc = match serde_path_to_error::deserialize(value.clone()) {
        Ok(d) => d,
        Err(e) => {
            problems.push(Problem::new(
                resource,
                e.path().to_string(),
                e.into_inner().to_string(),
            ));
            return None;
        }
    };
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (key, encoded) in doc.data.unwrap_or_default() {
        let encoded = encoded.unwrap_or_default();
        let compact: String = encoded
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        match base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()) {
            Ok(bytes) => {
                out.insert(key, bytes);
            }
            Err(e) => {
                ok = false;
                problems.push(Problem::new(
                    resource,
                    format!("data.{key}"),
                    format!("invalid base64: {e}"),
                ));
            }
        }
    }
    for (key, text) in doc.string_data.unwrap_or_default() {
        out.insert(key, text.unwrap_or_default().into_bytes());
    }
    ok.then_some(out)
}

#[cfg(test)]
mod tests;
