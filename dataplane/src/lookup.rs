//! Maps of the configuration snapshot that the request path looks up by
//! name (backends by id, model names, exact patterns).
//!
//! They hash with `foldhash` instead of the standard library's SipHash: a
//! lookup hashes a short name several times per request, and SipHash was
//! about 1% of the gateway's instructions per request (docs/benchmarks.md).
//! The keys are written by the configuration, never by clients, and the
//! hasher is seeded per process, so a client can neither choose colliding
//! keys nor predict the seed; a client's name only ever reads.

use std::collections::{HashMap, HashSet};

/// A map looked up by name on the request path.
pub type NameMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A set looked up by name on the request path.
pub type NameSet<K> = HashSet<K, foldhash::fast::RandomState>;
