//! `apimedic net check` output (pure): the verdict on one flow through an
//! NSG as text — first line `allowed|denied by <rule> (priority N)`, details
//! indented below — or as a JSON object.

use crate::model::network::{Flow, Verdict};
use crate::model::{Access, Direction, Nsg};
use serde::Serialize;
use std::fmt::Write as _;

/// The JSON shape of a net check.
#[derive(Serialize)]
pub struct NetCheck<'a> {
    nsg: &'a str,
    /// `effective` (what Azure enforces, from a NIC) or `declared`.
    rules: &'a str,
    allowed: bool,
    flow: &'a Flow,
    /// How the direction was chosen.
    direction_reason: &'a str,
    verdict: &'a Verdict,
}

impl<'a> NetCheck<'a> {
    pub fn new(
        nsg: &'a Nsg,
        flow: &'a Flow,
        verdict: &'a Verdict,
        direction_reason: &'a str,
    ) -> NetCheck<'a> {
        NetCheck {
            nsg: &nsg.name,
            rules: rules_word(nsg),
            allowed: verdict.access == Access::Allow,
            flow,
            direction_reason,
            verdict,
        }
    }
}

fn rules_word(nsg: &Nsg) -> &'static str {
    if nsg.effective {
        "effective"
    } else {
        "declared"
    }
}

/// The verdict as text: `allowed by <rule> (priority N)` or `denied by …`,
/// then the NSG and flow, the direction and why, and any uncertainty.
pub fn text(nsg: &Nsg, flow: &Flow, verdict: &Verdict, direction_reason: &str) -> String {
    let mut out = String::new();
    let word = if verdict.access == Access::Allow {
        "allowed"
    } else {
        "denied"
    };
    let _ = writeln!(
        out,
        "{word} by {} (priority {})",
        verdict.rule, verdict.priority
    );
    let _ = writeln!(
        out,
        "  nsg {} ({} rules): {}",
        nsg.name,
        rules_word(nsg),
        flow.describe()
    );
    let _ = writeln!(
        out,
        "  direction {} ({direction_reason})",
        match flow.direction {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    );
    if verdict.default_rule {
        let _ = writeln!(out, "  {} is one of Azure's default rules", verdict.rule);
    }
    for u in &verdict.uncertain {
        let _ = writeln!(
            out,
            "  note: {u} might also match (address space or value unknown; see --vnet)"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::network;
    use crate::model::SecurityRule;

    fn nsg() -> Nsg {
        Nsg {
            name: "apimnsg".into(),
            rules: vec![SecurityRule {
                name: "Deny_All_Internet_Outbound".into(),
                priority: 999,
                direction: Direction::Outbound,
                access: Access::Deny,
                protocol: "*".into(),
                source_prefixes: vec!["VirtualNetwork".into()],
                source_ports: vec!["*".into()],
                destination_prefixes: vec!["Internet".into()],
                destination_ports: vec!["*".into()],
                description: None,
                default: false,
            }],
            ..Nsg::default()
        }
    }

    #[test]
    fn text_first_line_names_rule_and_priority() {
        let n = nsg();
        let f = Flow::new(Direction::Outbound, "VirtualNetwork", "Internet", 80);
        let t = text(&n, &f, &network::evaluate(&n, &f), "given");
        assert_eq!(
            t,
            "denied by Deny_All_Internet_Outbound (priority 999)\n  \
             nsg apimnsg (declared rules): outbound tcp VirtualNetwork -> Internet:80\n  \
             direction outbound (given)\n"
        );
        let f = Flow::new(Direction::Outbound, "VirtualNetwork", "VirtualNetwork", 443);
        let t = text(&n, &f, &network::evaluate(&n, &f), "given");
        assert!(
            t.starts_with("allowed by AllowVnetOutBound (priority 65000)\n"),
            "{t}"
        );
        assert!(t.contains("default rules"));
    }

    #[test]
    fn json_is_machine_readable() {
        let n = nsg();
        let f = Flow::new(Direction::Outbound, "VirtualNetwork", "Internet", 80);
        let verdict = network::evaluate(&n, &f);
        let v = serde_json::to_value(NetCheck::new(&n, &f, &verdict, "given")).unwrap();
        assert_eq!(v["allowed"], false);
        assert_eq!(v["rules"], "declared");
        assert_eq!(v["verdict"]["rule"], "Deny_All_Internet_Outbound");
        assert_eq!(v["verdict"]["access"], "deny");
        assert_eq!(v["flow"]["direction"], "outbound");
    }
}
