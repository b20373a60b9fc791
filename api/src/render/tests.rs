use switchboard_proto as pb;

use super::*;
use crate::load::parse_documents;

fn inventory(yaml: &str) -> Inventory {
    let mut inv = Inventory::default();
    inv.extend(parse_documents(yaml, "test.yaml").unwrap())
        .unwrap();
    inv
}

fn test_env(name: &str) -> Option<String> {
    (name == "CLIENT_KEY").then(|| "client-secret".to_string())
}

fn standalone(yaml: &str) -> Result<Snapshot, Problems> {
    render_with(
        &inventory(yaml),
        &RenderOptions {
            env_allowed: true,
            env: &test_env,
        },
    )
}

fn problems(yaml: &str) -> Vec<String> {
    standalone(yaml)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn backend(name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: switchboard.dev/v1alpha1\nkind: AIBackend\nmetadata: {{name: {name}}}\nspec: {spec}\n"
    )
}

fn route(name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: switchboard.dev/v1alpha1\nkind: AIRoute\nmetadata: {{name: {name}}}\nspec:\n{spec}\n"
    )
}

const MOCK: &str = "{provider: Mock}";
const RULES: &str = "  rules: [{backends: [{name: mock}]}]";

/// Asserts that rendering `yaml` fails with exactly one problem, `expected`.
fn assert_one(yaml: &str, expected: &str) {
    let p = problems(yaml);
    assert_eq!(p, vec![expected.to_string()]);
}

#[test]
fn renders_a_full_configuration() {
    let yaml = [
        backend(
            "claude",
            "{provider: Anthropic, credentials: {secretRef: {name: keys}}, models: [{name: claude-sonnet-4, providerModel: claude-sonnet-4-20250514, contextWindow: 200000}, {name: claude-haiku}], timeouts: {connect: 2s, firstByte: 30s, firstToken: 20s, maxStream: 2h}, ejection: {consecutiveFailures: 3, baseEjection: 10s, maxEjection: 5m}, anthropic: {version: '2023-06-01', allowedBetas: [a, b]}}",
        ),
        backend("local", "{provider: OpenAICompatible, endpoint: 'http://localhost:8000/', credentials: {env: LOCAL_KEY}, openai: {organization: org}}"),
        backend("mock", "{provider: Mock, mock: {reply: hi, latency: 250ms}}"),
        "---\napiVersion: v1\nkind: Secret\nmetadata: {name: keys}\nstringData: {apiKey: ' sk-ant ', client: c1}\n".to_string(),
        route(
            "main",
            "  pathPrefix: /team\n  hostnames: [ai.example.com]\n  auth:\n    jwt: {issuer: https://idp, audiences: [sb], jwksUri: 'https://idp/jwks', tokenHeader: X-Token, leeway: 1500ms, forwardClaims: [{claim: sub, header: X-User}], jwksMinRefresh: 1m, jwksCacheDuration: 1h}\n    apiKeys: [{name: ci, secretRef: {name: keys, key: client}}, {name: dev, env: CLIENT_KEY}]\n  aliases: [{pattern: 'claude-*', target: claude-sonnet-4}]\n  rules:\n  - models: ['claude-*']\n    backends: [{name: claude, priority: 1}, {name: mock, priority: 0, weight: 3, model: m}, {name: local, priority: 0}, {name: local, priority: 2, weight: 0}, {name: mock, priority: 2}]\n    contextFallback: [{name: mock}]\n  retry: {retryAfterCap: 2s, backoff: 50ms, maxAttempts: 4, streamContinuation: Prefill}\n  maxRequestBodyBytes: 1024",
        ),
    ]
    .concat();
    let s = standalone(&yaml).unwrap();
    assert_eq!(s.version.len(), 16);
    assert_eq!(s.version, content_version(&s));
    let ids: Vec<_> = s.backends.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(ids, ["default/claude", "default/local", "default/mock"]);

    let claude = &s.backends[0];
    assert_eq!(claude.provider, pb::ProviderKind::Anthropic as i32);
    assert_eq!(claude.endpoint, "https://api.anthropic.com");
    assert_eq!(
        claude.credential.as_ref().unwrap().source,
        Some(pb::credential::Source::Value("sk-ant".into()))
    );
    assert_eq!(claude.models[0].provider_model, "claude-sonnet-4-20250514");
    assert_eq!(claude.models[0].context_window, 200_000);
    assert_eq!(claude.models[1].provider_model, "claude-haiku");
    assert_eq!(
        claude.timeouts,
        Some(pb::Timeouts {
            connect_ms: 2_000,
            first_byte_ms: 30_000,
            stream_idle_ms: 0,
            request_ms: 0,
            first_token_ms: 20_000,
            max_stream_ms: 7_200_000,
        })
    );
    assert_eq!(
        claude.ejection,
        Some(pb::Ejection {
            consecutive_failures: 3,
            base_ejection_ms: 10_000,
            max_ejection_ms: 300_000
        })
    );
    assert_eq!(claude.anthropic.as_ref().unwrap().allowed_betas, ["a", "b"]);

    let local = &s.backends[1];
    assert_eq!(local.endpoint, "http://localhost:8000");
    assert_eq!(
        local.credential.as_ref().unwrap().source,
        Some(pb::credential::Source::Env("LOCAL_KEY".into()))
    );
    assert_eq!(local.openai.as_ref().unwrap().organization, "org");

    let mock = &s.backends[2];
    assert_eq!(
        mock.mock,
        Some(pb::MockSettings {
            reply: "hi".into(),
            latency_ms: 250,
            ..Default::default()
        })
    );
    assert!(mock.credential.is_none());

    let r = &s.routes[0];
    assert_eq!(
        (r.id.as_str(), r.path_prefix.as_str(), r.max_body_bytes),
        ("default/main", "/team", 1024)
    );
    let auth = r.auth.as_ref().unwrap();
    let jwt = auth.jwt.as_ref().unwrap();
    assert_eq!(
        jwt.keys,
        Some(pb::jwt_auth::Keys::JwksUri("https://idp/jwks".into()))
    );
    assert_eq!(
        (
            jwt.leeway_seconds,
            jwt.jwks_min_refresh_ms,
            jwt.jwks_cache_ms
        ),
        (2, 60_000, 3_600_000)
    );
    assert_eq!(jwt.token_header, "x-token");
    assert_eq!(jwt.forward_claims[0].header, "x-user");
    let keys: Vec<_> = auth
        .api_keys
        .iter()
        .map(|k| (k.name.as_str(), k.value.as_str()))
        .collect();
    assert_eq!(keys, [("ci", "c1"), ("dev", "client-secret")]);

    let rule = &r.rules[0];
    let groups: Vec<Vec<(&str, u32, &str)>> = rule
        .groups
        .iter()
        .map(|g| {
            g.backends
                .iter()
                .map(|b| (b.backend.as_str(), b.weight, b.model.as_str()))
                .collect()
        })
        .collect();
    assert_eq!(
        groups,
        vec![
            vec![("default/mock", 3, "m"), ("default/local", 1, "")],
            vec![("default/claude", 1, "")],
            vec![("default/mock", 1, "")],
        ]
    );
    assert_eq!(rule.context_fallback.len(), 1);
    assert_eq!(
        r.retry,
        Some(pb::RetryPolicy {
            retry_after_cap_ms: 2_000,
            retry_backoff_ms: 50,
            max_attempts: 4,
            stream_continuation: pb::StreamContinuation::Prefill as i32,
        })
    );
}

#[test]
fn same_objects_in_any_order_give_the_same_version() {
    let parts = [
        backend("b", MOCK),
        backend("a", MOCK),
        route(
            "r1",
            "  pathPrefix: /one\n  rules: [{backends: [{name: a}, {name: b}]}]",
        ),
        route("r0", "  rules: [{backends: [{name: b}]}]"),
        backend("x", MOCK).replace("{name: x}", "{name: x, namespace: a-b}"),
    ];
    let forward = standalone(&parts.concat()).unwrap();
    let mut reversed = parts.clone();
    reversed.reverse();
    let backward = standalone(&reversed.concat()).unwrap();
    assert_eq!(forward, backward);
    assert_eq!(forward.backends[0].id, "a-b/x");
    let changed = standalone(&parts.concat().replace("{name: r0}", "{name: r2}")).unwrap();
    assert_ne!(changed.version, forward.version);
}

#[test]
fn empty_inventory_renders_an_empty_snapshot() {
    let s = render(&Inventory::default()).unwrap();
    assert!(s.backends.is_empty() && s.routes.is_empty());
    assert_eq!(s.version.len(), 16);
}

#[test]
fn unknown_backend() {
    let yaml = backend("mock", MOCK)
        + &route(
            "main",
            "  rules:\n  - backends: [{name: mock}]\n  - backends: [{name: mock}, {name: bedrock}]",
        );
    assert_one(
        &yaml,
        "AIRoute default/main: spec.rules[1].backends[1].name: AIBackend \"bedrock\" not found",
    );
}

#[test]
fn backends_resolve_in_the_route_namespace_only() {
    let yaml = backend("mock", MOCK).replace("{name: mock}", "{name: mock, namespace: other}")
        + &route("main", RULES);
    assert_one(
        &yaml,
        "AIRoute default/main: spec.rules[0].backends[0].name: AIBackend \"mock\" not found",
    );
}

#[test]
fn missing_secret_and_key() {
    let b = backend(
        "claude",
        "{provider: Anthropic, credentials: {secretRef: {name: keys}}}",
    );
    assert_one(
        &b,
        "AIBackend default/claude: spec.credentials.secretRef.name: Secret \"keys\" not found",
    );
    let secret = "---\napiVersion: v1\nkind: Secret\nmetadata: {name: keys}\nstringData: {other: x, blank: '  '}\n";
    assert_one(
        &format!("{b}{secret}"),
        "AIBackend default/claude: spec.credentials.secretRef.key: key \"apiKey\" not found in Secret \"keys\"",
    );
    let blank = b.replace("{name: keys}", "{name: keys, key: blank}");
    assert_one(
        &format!("{blank}{secret}"),
        "AIBackend default/claude: spec.credentials.secretRef.key: key \"blank\" of Secret \"keys\" is empty",
    );
}

#[test]
fn credentials_need_exactly_one_source() {
    assert_one(
        &backend(
            "c",
            "{provider: OpenAI, credentials: {env: A, secretRef: {name: s}}}",
        ),
        "AIBackend default/c: spec.credentials: set exactly one of secretRef, env, aws, gcp and azure",
    );
    assert_one(
        &backend("c", "{provider: OpenAI, credentials: {}}"),
        "AIBackend default/c: spec.credentials: set exactly one of secretRef, env, aws, gcp and azure",
    );
}

#[test]
fn kubernetes_mode_rejects_env_credentials() {
    let yaml = backend(
        "mock",
        "{provider: OpenAI, credentials: {env: OPENAI_API_KEY}}",
    ) + &route(
        "main",
        "  auth: {apiKeys: [{name: a, env: CLIENT_KEY}]}\n  rules: [{backends: [{name: mock}]}]",
    );
    let p: Vec<String> = render_with(&inventory(&yaml), &RenderOptions::kubernetes())
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        p,
        [
            "AIBackend default/mock: spec.credentials.env: environment variables are only allowed in standalone mode; use secretRef",
            "AIRoute default/main: spec.auth.apiKeys[0].env: environment variables are only allowed in standalone mode; use secretRef",
            "AIRoute default/main: spec.rules[0].backends[0].name: AIBackend \"mock\" exists but is not served (it has problems of its own)",
        ]
    );
}

#[test]
fn api_key_env_must_be_set() {
    let yaml = backend("mock", MOCK)
        + &route(
            "main",
            "  auth: {apiKeys: [{name: a, env: MISSING_KEY}]}\n  rules: [{backends: [{name: mock}]}]",
        );
    assert_one(
        &yaml,
        "AIRoute default/main: spec.auth.apiKeys[0].env: environment variable MISSING_KEY is not set",
    );
}

#[test]
fn bad_urls() {
    assert_one(
        &backend("c", "{provider: OpenAI, endpoint: 'ftp://x'}"),
        "AIBackend default/c: spec.endpoint: URL \"ftp://x\" must start with http:// or https://",
    );
    assert_one(
        &backend("c", "{provider: OpenAICompatible}"),
        "AIBackend default/c: spec.endpoint: required for provider OpenAICompatible",
    );
    let jwt = |keys: &str| {
        backend("mock", MOCK)
            + &route(
                "main",
                &format!("  auth: {{jwt: {{issuer: i, {keys}}}}}\n{RULES}"),
            )
    };
    assert_one(
        &jwt("jwksUri: 'http://idp.example.com/jwks'"),
        "AIRoute default/main: spec.auth.jwt.jwksUri: jwksUri \"http://idp.example.com/jwks\" must be an https:// URL (http:// only for localhost or 127.0.0.1)",
    );
    assert!(standalone(&jwt("jwksUri: 'http://127.0.0.1:9/jwks'")).is_ok());
    assert_one(
        &jwt("a: b").replace(", a: b", ""),
        "AIRoute default/main: spec.auth.jwt: set exactly one of jwksUri and inlineJwks",
    );
    assert_one(
        &jwt("jwksUri: 'https://x', inlineJwks: '{}'"),
        "AIRoute default/main: spec.auth.jwt: set exactly one of jwksUri and inlineJwks",
    );
    let p = problems(&jwt("inlineJwks: 'not json'"));
    assert!(
        p.len() == 1
            && p[0].starts_with("AIRoute default/main: spec.auth.jwt.inlineJwks: invalid JSON"),
        "{p:?}"
    );
    assert_one(
        &jwt("inlineJwks: '{\"kid\": 1}'"),
        "AIRoute default/main: spec.auth.jwt.inlineJwks: must be a JWKS: a JSON object with a \"keys\" array",
    );
    assert!(standalone(&jwt("inlineJwks: '{\"keys\": []}'")).is_ok());
}

#[test]
fn bad_durations() {
    assert_one(
        &backend("c", "{provider: Mock, timeouts: {connect: '5'}}"),
        "AIBackend default/c: spec.timeouts.connect: invalid duration \"5\" (use e.g. \"500ms\", \"5s\", \"2m\", \"1m30s\"; at most 5 digits per unit)",
    );
    let p = problems(
        &(backend("mock", MOCK) + &route("main", &format!("  retry: {{backoff: soon}}\n{RULES}"))),
    );
    assert!(
        p.len() == 1
            && p[0].starts_with("AIRoute default/main: spec.retry.backoff: invalid duration"),
        "{p:?}"
    );
}

#[test]
fn zero_weight_groups() {
    let yaml = backend("mock", MOCK)
        + &route(
            "main",
            "  rules: [{backends: [{name: mock, weight: 0}, {name: mock, priority: 1}]}]",
        );
    assert_one(
        &yaml,
        "AIRoute default/main: spec.rules[0].backends: the backends with priority 0 have a total weight of 0",
    );
}

#[test]
fn rules_are_required_and_need_backends() {
    assert_one(
        &(backend("mock", MOCK) + &route("main", "  pathPrefix: /")),
        "AIRoute default/main: spec.rules: must have at least 1 item",
    );
    assert_one(
        &(backend("mock", MOCK) + &route("main", "  rules: [{models: [a], backends: []}]")),
        "AIRoute default/main: spec.rules[0].backends: must have at least 1 item",
    );
}

#[test]
fn invalid_globs() {
    let yaml = backend("mock", MOCK)
        + &route(
            "main",
            "  aliases: [{pattern: 'gpt-?', target: gpt-4o}]\n  rules: [{models: ['claude-[34]'], backends: [{name: mock}]}]",
        );
    assert_eq!(
        problems(&yaml),
        [
            "AIRoute default/main: spec.aliases[0].pattern: invalid pattern \"gpt-?\": '?' is not supported, only `*` wildcards are",
            "AIRoute default/main: spec.rules[0].models[0]: invalid pattern \"claude-[34]\": '[' is not supported, only `*` wildcards are",
        ]
    );
}

#[test]
fn alias_target_must_not_be_empty() {
    let yaml = backend("mock", MOCK)
        + &route(
            "main",
            &format!("  aliases: [{{pattern: 'gpt-4*', target: ''}}]\n{RULES}"),
        );
    assert_one(
        &yaml,
        "AIRoute default/main: spec.aliases[0].target: must not be empty",
    );
}

#[test]
fn duplicate_models() {
    assert_one(
        &backend(
            "c",
            "{provider: Mock, models: [{name: a}, {name: b}, {name: a}]}",
        ),
        "AIBackend default/c: spec.models[2].name: duplicate model \"a\"",
    );
}

#[test]
fn max_attempts_range() {
    let yaml = |n: u32| {
        backend("mock", MOCK) + &route("main", &format!("  retry: {{maxAttempts: {n}}}\n{RULES}"))
    };
    assert!(standalone(&yaml(0)).is_ok());
    assert!(standalone(&yaml(20)).is_ok());
    assert_one(
        &yaml(21),
        "AIRoute default/main: spec.retry.maxAttempts: must be at most 20, got 21",
    );
}

#[test]
fn byok_modes_render_and_the_key_header_is_no_token_header() {
    let mode = |byok: &str| {
        let yaml = backend("mock", MOCK) + &route("main", &format!("{byok}{RULES}"));
        standalone(&yaml).unwrap().routes[0].byok
    };
    assert_eq!(mode(""), pb::Byok::Unspecified as i32);
    assert_eq!(mode("  byok: Off\n"), pb::Byok::Off as i32);
    assert_eq!(mode("  byok: Optional\n"), pb::Byok::Optional as i32);
    assert_eq!(mode("  byok: Required\n"), pb::Byok::Required as i32);
    let unknown = backend("mock", MOCK) + &route("main", &format!("  byok: Always\n{RULES}"));
    assert!(parse_documents(&unknown, "test.yaml").is_err());
    assert_one(
        &(backend("mock", MOCK)
            + &route(
                "main",
                &format!(
                    "  auth:\n    jwt: {{issuer: https://idp, jwksUri: 'https://idp/jwks', tokenHeader: X-Switchboard-Provider-Key}}\n{RULES}"
                ),
            )),
        "AIRoute default/main: spec.auth.jwt.tokenHeader: x-switchboard-provider-key carries callers' provider keys, not gateway tokens",
    );
}

#[test]
fn provider_settings_must_match_the_provider() {
    assert_one(
        &backend(
            "c",
            "{provider: OpenAI, anthropic: {version: '2023-06-01'}}",
        ),
        "AIBackend default/c: spec.anthropic: only used by provider Anthropic, not OpenAI",
    );
}

#[test]
fn empty_auth_is_rejected() {
    assert_one(
        &(backend("mock", MOCK) + &route("main", &format!("  auth: {{}}\n{RULES}"))),
        "AIRoute default/main: spec.auth: configure jwt or apiKeys (remove auth entirely for an open route, local use only)",
    );
}

#[test]
fn every_problem_is_collected() {
    let yaml = backend(
        "c",
        "{provider: OpenAICompatible, timeouts: {request: x}, models: [{name: a}, {name: a}]}",
    ) + &route(
        "main",
        "  pathPrefix: nope\n  rules: [{backends: [{name: gone}]}]\n  retry: {maxAttempts: 99}",
    );
    let p = problems(&yaml);
    assert_eq!(p.len(), 6, "{p:#?}");
}

#[test]
fn renders_teams_with_resolved_tiers_budgets_and_guards() {
    let yaml = [
        backend("mock", MOCK),
        route(
            "main",
            &format!("{RULES}\n  auth:\n    apiKeys: [{{name: ci, env: CLIENT_KEY}}]\n  tiers: [{{name: standard, requestsPerMinute: 50}}, {{name: gold, requestsPerMinute: 7, tokensPerDay: 9}}]\n  teams:\n    claim: groups\n    mapping: {{abc: payments}}\n    defaultTier: standard\n    teams:\n    - {{name: payments, tier: sandbox, tokensPerDay: 5, budget: {{usd: 12.5, period: week}}, apiKeys: [ci]}}\n    - {{name: search, tier: gold}}\n    - {{name: infra, tier: enterprise}}\n  pricing: [{{model: 'm-*', input: 2, output: 8}}]\n  guards:\n    blockedPatterns: [{{pattern: '(?i)secret'}}]\n    removeFields: [metadata.user_id]\n    webhook: {{url: 'http://localhost:9/hook', timeout: 300ms}}\n    mask: {{emails: true}}"),
        ),
    ]
    .concat();
    let s = standalone(&yaml).unwrap();
    let t = s.routes[0].teams.as_ref().unwrap();
    assert_eq!(t.claim, "groups");
    assert_eq!(t.default_tier, "standard");
    assert_eq!(
        t.default_limits,
        Some(pb::Limits {
            requests_per_minute: 50,
            tokens_per_day: 1_000_000
        })
    );
    let names: Vec<_> = t.teams.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["infra", "payments", "search"]);
    assert_eq!(
        t.teams[0].limits,
        Some(pb::Limits {
            requests_per_minute: 0,
            tokens_per_day: 0
        })
    );
    assert_eq!(
        t.teams[1].limits,
        Some(pb::Limits {
            requests_per_minute: 20,
            tokens_per_day: 5
        })
    );
    assert_eq!(
        t.teams[1].budget,
        Some(pb::Budget {
            micro_usd: 12_500_000,
            period: pb::BudgetPeriod::Week as i32
        })
    );
    assert_eq!(t.teams[1].api_keys, ["ci"]);
    assert_eq!(
        t.teams[2].limits,
        Some(pb::Limits {
            requests_per_minute: 7,
            tokens_per_day: 9
        })
    );
    assert_eq!(
        t.mapping,
        [pb::ClaimMapping {
            value: "abc".into(),
            team: "payments".into()
        }]
    );
    let p = &s.routes[0].pricing[0];
    assert_eq!(
        (p.input, p.output, p.cache_read, p.cache_write),
        (2.0, 8.0, 0.2, 2.5)
    );
    let g = s.routes[0].guards.as_ref().unwrap();
    assert_eq!(g.webhook.as_ref().unwrap().timeout_ms, 300);
    assert_eq!(g.webhook.as_ref().unwrap().reject_status, 429);
    assert!(g.mask.as_ref().unwrap().emails);
}

#[test]
fn team_problems_are_reported_with_paths() {
    let yaml = [
        backend("mock", MOCK),
        route(
            "main",
            &format!("{RULES}\n  teams:\n    mapping: {{x: nobody}}\n    teams:\n    - {{name: a, tier: platinum, budget: {{usd: 1, period: year}}, apiKeys: [missing]}}\n    - {{name: a}}\n  guards:\n    blockedPatterns: [{{pattern: '('}}]"),
        ),
    ]
    .concat();
    let p = problems(&yaml).join("\n");
    for expected in [
        "spec.teams.teams[0].tier",
        "spec.teams.teams[0].budget.period",
        "spec.teams.teams[0].apiKeys[0]",
        "spec.teams.teams[1].name",
        "spec.teams.mapping.x",
        "spec.guards.blockedPatterns[0].pattern",
    ] {
        assert!(p.contains(expected), "{expected} missing in:\n{p}");
    }
}

#[test]
fn conflicting_claims_are_a_problem_of_the_route_that_does_not_take_precedence() {
    let on = |name: &str, host: &str, prefix: &str| {
        route(
            name,
            &format!("  pathPrefix: {prefix}\n  hostnames: [{host}]\n{RULES}"),
        )
    };
    let yaml = backend("mock", MOCK)
        + &on("b-second", "API.example.com", "/team/")
        + &on("a-first", "api.example.com", "/team")
        + &on("other-host", "other.example.com", "/team");
    assert_eq!(
        problems(&yaml),
        [
            "AIRoute default/b-second: spec.hostnames: host \"api.example.com\" and path prefix \"/team\" is already claimed by AIRoute default/a-first, which takes precedence (oldest creationTimestamp first, then namespace/name)"
        ]
    );
}

#[test]
fn unmapped_callers_get_the_default_tier_with_its_limits_or_are_refused() {
    let spec =
        |teams: serde_json::Value, tiers: serde_json::Value| -> crate::v1alpha1::AIRouteSpec {
            serde_json::from_value(serde_json::json!({
                "rules": [{"backends": [{"name": "b"}]}],
                "teams": teams,
                "tiers": tiers,
            }))
            .unwrap()
        };
    let none = serde_json::json!([]);
    assert_eq!(
        unmapped_callers(&spec(serde_json::json!({}), none.clone())),
        Some(UnmappedCallers::Tier {
            name: DEFAULT_TIER.into(),
            requests_per_minute: 20,
            tokens_per_day: 100_000
        })
    );
    assert_eq!(
        unmapped_callers(&spec(serde_json::json!({}), none.clone()))
            .unwrap()
            .to_string(),
        "callers that map to no team get the default tier sandbox (20 requests per minute, 100000 tokens per day, each caller on its own)"
    );
    // A route's tier overrides a built-in field by field, or defines a new one.
    let tiers = serde_json::json!([{"name": "sandbox", "requestsPerMinute": 5}, {"name": "lab"}]);
    assert_eq!(
        unmapped_callers(&spec(serde_json::json!({}), tiers.clone())),
        Some(UnmappedCallers::Tier {
            name: "sandbox".into(),
            requests_per_minute: 5,
            tokens_per_day: 100_000
        })
    );
    assert_eq!(
        unmapped_callers(&spec(serde_json::json!({"defaultTier": "lab"}), tiers))
            .unwrap()
            .to_string(),
        "callers that map to no team get the default tier lab (unlimited requests per minute, unlimited tokens per day, each caller on its own)"
    );
    assert_eq!(
        unmapped_callers(&spec(
            serde_json::json!({"refuseUnknown": true}),
            none.clone()
        )),
        Some(UnmappedCallers::Refused)
    );
    assert_eq!(
        unmapped_callers(&spec(serde_json::json!({"defaultTier": "nope"}), none)),
        None
    );
    let no_teams: crate::v1alpha1::AIRouteSpec =
        serde_json::from_value(serde_json::json!({"rules": [{"backends": [{"name": "b"}]}]}))
            .unwrap();
    assert_eq!(unmapped_callers(&no_teams), None);
}

#[test]
fn the_crd_defaults_the_default_tier_to_the_renderers_default() {
    use kube::CustomResourceExt as _;
    let crd = serde_json::to_value(crate::v1alpha1::AIRoute::crd()).unwrap();
    let default = crd
        .pointer("/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/teams/properties/defaultTier/default")
        .cloned();
    assert_eq!(default, Some(serde_json::json!(DEFAULT_TIER)));
}
