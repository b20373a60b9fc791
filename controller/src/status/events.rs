//! [`EventRecorder`]: `events.k8s.io/v1` Events on condition transitions.
//!
//! An Event that repeats (same object, type, reason, action **and note**)
//! within [`SERIES_WINDOW`] becomes a series: its `series.count` is patched
//! instead of creating a new Event. Any other note is a new Event, so a note
//! never goes stale (kube-runtime's recorder keys series without the note
//! and kept the first note: "generation 1 (x6)" at generation 6).

use std::collections::BTreeMap;
use std::time::Duration;

use ::kube::Client;
use ::kube::api::{Api, Patch, PatchParams, PostParams};
use ::kube::runtime::events::Reporter;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// Repeats of an Event within this window are counted in one series.
pub const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);

/// Longest note written; longer ones are cut with `…`.
pub const MAX_NOTE_BYTES: usize = 1000;

/// One Event to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSpec {
    /// `true` for `Warning`, `false` for `Normal`.
    pub warning: bool,
    /// The condition's reason.
    pub reason: String,
    /// The condition type.
    pub action: String,
    /// What happened.
    pub note: String,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    regarding: (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ),
    spec: (bool, String, String, String),
}

#[derive(Clone, Debug)]
struct Recorded {
    name: String,
    namespace: String,
    count: i32,
    last: Timestamp,
}

/// Records Events as one reporter; remembers recent ones to count repeats.
pub struct EventRecorder {
    client: Client,
    reporter: Reporter,
    recent: BTreeMap<Key, Recorded>,
}

impl EventRecorder {
    /// A recorder writing with `client` as `reporter`.
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Self {
            client,
            reporter,
            recent: BTreeMap::new(),
        }
    }

    /// Records `spec` about `regarding` (created in its namespace).
    pub async fn publish(
        &mut self,
        spec: &EventSpec,
        regarding: &ObjectReference,
    ) -> Result<(), ::kube::Error> {
        let now = Timestamp::now();
        let window = SignedDuration::try_from(SERIES_WINDOW).unwrap_or(SignedDuration::MAX);
        self.recent
            .retain(|_, r| r.last.checked_add(window).is_ok_and(|until| until > now));
        let note = truncate(&spec.note, MAX_NOTE_BYTES);
        let key = Key {
            regarding: (
                regarding.uid.clone(),
                regarding.namespace.clone(),
                regarding.kind.clone(),
                regarding.name.clone(),
            ),
            spec: (
                spec.warning,
                spec.reason.clone(),
                spec.action.clone(),
                note.clone(),
            ),
        };
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        if let Some(r) = self.recent.get_mut(&key) {
            let events: Api<Event> = Api::namespaced(self.client.clone(), &r.namespace);
            let patch = serde_json::json!({"series": EventSeries {
                count: r.count + 1,
                last_observed_time: MicroTime(now),
            }});
            events
                .patch(&r.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            r.count += 1;
            r.last = now;
            return Ok(());
        }
        let name = format!(
            "{}.{:x}",
            regarding
                .name
                .as_deref()
                .unwrap_or(&self.reporter.controller),
            now.as_nanosecond()
        );
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            event_time: Some(MicroTime(now)),
            action: Some(spec.action.clone()),
            reason: Some(spec.reason.clone()),
            note: Some(note),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| self.reporter.controller.clone()),
            ),
            type_: Some(if spec.warning { "Warning" } else { "Normal" }.to_string()),
            ..Default::default()
        };
        let events: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        events.create(&PostParams::default(), &event).await?;
        self.recent.insert(
            key,
            Recorded {
                name,
                namespace,
                count: 1,
                last: now,
            },
        );
        Ok(())
    }
}

/// `text` cut to at most `max` bytes (on a character boundary) with `…`.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
