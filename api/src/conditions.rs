//! Condition types and reasons written into the status of every resource.
//!
//! Reasons are CamelCase constants; messages carry the detail.

/// The resource's spec is valid on its own.
pub const ACCEPTED: &str = "Accepted";
/// Every backend and Secret the resource references exists.
pub const RESOLVED_REFS: &str = "ResolvedRefs";
/// The resource is part of the snapshot that data planes serve.
pub const PROGRAMMED: &str = "Programmed";

/// Condition types, in the order they are written.
pub const ALL_TYPES: [&str; 3] = [ACCEPTED, RESOLVED_REFS, PROGRAMMED];

/// Condition status values.
pub mod status {
    /// The condition holds.
    pub const TRUE: &str = "True";
    /// The condition does not hold.
    pub const FALSE: &str = "False";
    /// Not known yet.
    pub const UNKNOWN: &str = "Unknown";
}

/// Reasons used in conditions.
pub mod reason {
    /// The spec or the references are valid.
    pub const VALID: &str = "Valid";
    /// The spec is invalid (or does not decode); the message lists every problem.
    pub const INVALID: &str = "Invalid";
    /// An AIRoute claims a (hostname, path prefix) that an older route holds;
    /// the message names it.
    pub const CONFLICTED: &str = "Conflicted";
    /// An AIRoute claims a hostname or path prefix its namespace may not
    /// claim (the controller's `--route-claim` policy).
    pub const NOT_ALLOWED: &str = "NotAllowed";
    /// The current generation is refused; data planes serve the last
    /// accepted generation.
    pub const SERVING_LAST_ACCEPTED: &str = "ServingLastAccepted";
    /// Neither the current nor the last accepted generation can be served:
    /// requests to the route's hostnames and path prefix are answered 503.
    pub const UNAVAILABLE: &str = "Unavailable";
    /// An AIRoute names an AIBackend that does not exist in its namespace.
    pub const BACKEND_NOT_FOUND: &str = "BackendNotFound";
    /// An AIRoute's `spec.teams.teamRefs` names an AITeam that does not
    /// exist or is not served; the route is served without it.
    pub const TEAM_NOT_FOUND: &str = "TeamNotFound";
    /// An AITeam a route references cannot be used there as it is (a tier
    /// the route does not define, a claim value or API key another team or
    /// the route already has, API keys on an open route); the route is
    /// served without the part at fault.
    pub const INVALID_TEAM_REF: &str = "InvalidTeamRef";
    /// An AITeam no served AIRoute references.
    pub const NOT_REFERENCED: &str = "NotReferenced";
    /// A referenced Secret, or a key in it, does not exist.
    pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
    /// Every referenced object was found.
    pub const RESOLVED: &str = "Resolved";
    /// Every data plane applied the snapshot that contains the resource.
    pub const PROGRAMMED: &str = "Programmed";
    /// A data plane rejected the snapshot (NACK); the message says why.
    pub const REJECTED: &str = "Rejected";
    /// The snapshot was sent but not every data plane acknowledged it yet.
    pub const PENDING: &str = "Pending";
    /// No data plane is connected.
    pub const NO_DATA_PLANES: &str = "NoDataPlanes";
}
