//! The self-test's table: one row per probe, grouped by agent, with the
//! reason of every failure, and a verdict per agent.

use super::probes::Agent;

/// How one probe went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The agent the probe stands for.
    pub agent: Agent,
    /// What was exercised.
    pub name: &'static str,
    /// `Ok(detail)` or `Err(reason)`.
    pub result: Result<String, String>,
}

/// Renders the table (plain text, aligned columns) and the per-agent verdicts.
pub fn render(outcomes: &[Outcome]) -> String {
    let agent_w = outcomes
        .iter()
        .map(|o| o.agent.label().len())
        .max()
        .unwrap_or(5)
        .max("AGENT".len());
    let name_w = outcomes
        .iter()
        .map(|o| o.name.len())
        .max()
        .unwrap_or(5)
        .max("CHECK".len());
    let mut out = format!(
        "{:agent_w$}  {:name_w$}  RESULT  DETAIL\n",
        "AGENT", "CHECK"
    );
    for o in outcomes {
        let (result, detail) = match &o.result {
            Ok(d) => ("pass", d.as_str()),
            Err(r) => ("FAIL", r.as_str()),
        };
        out.push_str(&format!(
            "{:agent_w$}  {:name_w$}  {result:6}  {detail}\n",
            o.agent.label(),
            o.name
        ));
    }
    out.push('\n');
    let mut agents: Vec<Agent> = Vec::new();
    for o in outcomes {
        if !agents.contains(&o.agent) {
            agents.push(o.agent);
        }
    }
    for agent in agents {
        let failed = outcomes
            .iter()
            .filter(|o| o.agent == agent && o.result.is_err())
            .count();
        let verdict = if failed == 0 {
            "works".to_owned()
        } else {
            format!("FAILS ({failed} of its checks)")
        };
        out.push_str(&format!("{:agent_w$}  {verdict}\n", agent.label()));
    }
    out
}

/// Whether every probe passed.
pub fn all_passed(outcomes: &[Outcome]) -> bool {
    outcomes.iter().all(|o| o.result.is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_aligned_and_failures_say_why() {
        let outcomes = vec![
            Outcome {
                agent: Agent::ClaudeCode,
                name: "Messages stream",
                result: Ok("12 events".into()),
            },
            Outcome {
                agent: Agent::Codex,
                name: "Responses stream",
                result: Err("HTTP 404 (want 200): no such model".into()),
            },
        ];
        assert_eq!(
            render(&outcomes),
            "AGENT        CHECK             RESULT  DETAIL\n\
             Claude Code  Messages stream   pass    12 events\n\
             Codex        Responses stream  FAIL    HTTP 404 (want 200): no such model\n\
             \n\
             Claude Code  works\n\
             Codex        FAILS (1 of its checks)\n"
        );
        assert!(!all_passed(&outcomes));
        assert!(all_passed(&outcomes[..1]));
    }
}
