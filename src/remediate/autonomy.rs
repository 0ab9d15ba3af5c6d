//! The autonomy policy: off by default. A TOML file may allow the daemon to
//! run named low-risk actions on its own, within limits, like review vs
//! autonomous modes in other SRE agents. Pure: parsing and the decision;
//! every autonomous run is audited like any other (surface
//! `daemon (autonomous)`).
//!
//! ```toml
//! [[allow]]
//! action = "scale_out"        # scale_out, set_timeout, rollback_policy, fix_nsg_rule, fix_route, raise_limit
//! max_risk = "medium"         # highest proposal risk allowed (default low)
//! max_units = 1               # scale_out: units added per run
//! max_capacity = 4            # scale_out: never above this many units
//! min_interval = "1h"         # at most once per interval (per action)
//! quiet_hours = "22:00-06:00" # never between these UTC times
//! ```

use super::plan::Plan;
use crate::audit::{Kind, Stored};
use crate::model::Risk;
use serde::Deserialize;
use serde_json::Value;

/// The surface name autonomous runs are audited under.
pub const SURFACE: &str = "daemon (autonomous)";

const ACTIONS: [&str; 6] = [
    "scale_out",
    "set_timeout",
    "rollback_policy",
    "fix_nsg_rule",
    "fix_route",
    "raise_limit",
];

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub allow: Vec<Rule>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub action: String,
    #[serde(default = "low")]
    pub max_risk: Risk,
    pub max_units: Option<u32>,
    pub max_capacity: Option<u32>,
    pub min_interval: Option<String>,
    pub quiet_hours: Option<String>,
}

fn low() -> Risk {
    Risk::Low
}

/// Parses a policy file's text; errors name the file and line.
pub fn parse(name: &str, text: &str) -> Result<Policy, String> {
    let p: Policy = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(1);
        format!("{name}:{line}: {}", e.message())
    })?;
    for (i, r) in p.allow.iter().enumerate() {
        let at = format!("{name}: allow #{}", i + 1);
        if !ACTIONS.contains(&r.action.as_str()) {
            return Err(format!(
                "{at}: unknown action `{}`; one of {}",
                r.action,
                ACTIONS.join(", ")
            ));
        }
        if let Some(iv) = &r.min_interval {
            seconds(iv).ok_or_else(|| {
                format!("{at}: min_interval `{iv}` is not a duration (30m, 1h, 1d)")
            })?;
        }
        if let Some(q) = &r.quiet_hours {
            quiet(q).ok_or_else(|| format!("{at}: quiet_hours `{q}` is not HH:MM-HH:MM"))?;
        }
    }
    Ok(p)
}

fn seconds(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().ok()?;
    Some(
        n * match unit {
            "s" => 1,
            "m" | "min" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return None,
        },
    )
}

/// Minutes of the day `[from, to)`, wrapping past midnight.
fn quiet(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.trim().split_once('-')?;
    let hm = |t: &str| {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some(h * 60 + m)
    };
    Some((hm(a)?, hm(b)?))
}

/// Units a scale plan adds, and the capacity it reaches.
fn scale_step(plan: &Plan) -> Option<(u32, u32)> {
    let target = plan.verify.expect.iter().find_map(|e| {
        (e.pointer.ends_with("/capacity") || e.pointer.ends_with("/minimum")).then(|| {
            match &e.value {
                Value::String(s) => s.parse::<u32>().ok(),
                v => v.as_u64().map(|n| n as u32),
            }
        })?
    })?;
    let now = plan.before.iter().find_map(|b| {
        let body = b.body.as_ref()?;
        body.pointer("/sku/capacity")
            .and_then(Value::as_u64)
            .map(|n| n as u32)
            .or_else(|| {
                body.pointer("/properties/profiles/0/capacity/minimum")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse().ok())
            })
    })?;
    Some((target.saturating_sub(now), target))
}

/// Whether the policy lets the daemon run `plan` now (UTC, epoch ms),
/// given the audit log so far: the rule that allows it, or why not.
pub fn decide(policy: &Policy, plan: &Plan, now_ms: i64, log: &[Stored]) -> Result<String, String> {
    let Some(rule) = policy.allow.iter().find(|r| r.action == plan.action) else {
        return Err(format!(
            "the autonomy policy does not allow `{}` (off unless a rule names it)",
            plan.action
        ));
    };
    if plan.risk > rule.max_risk {
        return Err(format!(
            "the proposal's risk is {:?}, above the rule's max_risk {:?}",
            plan.risk, rule.max_risk
        ));
    }
    if !plan.ready() {
        return Err("a precondition failed".into());
    }
    if let Some((from, to)) = rule.quiet_hours.as_deref().and_then(quiet) {
        let minute = ((now_ms / 60_000).rem_euclid(1440)) as u32;
        let inside = if from <= to {
            minute >= from && minute < to
        } else {
            minute >= from || minute < to
        };
        if inside {
            return Err(format!(
                "inside the quiet hours {}",
                rule.quiet_hours.as_deref().unwrap_or("")
            ));
        }
    }
    if plan.action == "scale_out" {
        let (units, target) = scale_step(plan).ok_or("cannot tell how many units the plan adds")?;
        if let Some(m) = rule.max_units
            && units > m
        {
            return Err(format!(
                "the plan adds {units} unit(s); the rule allows {m}"
            ));
        }
        if let Some(m) = rule.max_capacity
            && target > m
        {
            return Err(format!(
                "the plan reaches {target} unit(s); the rule's max_capacity is {m}"
            ));
        }
    }
    if let Some(iv) = rule.min_interval.as_deref().and_then(seconds) {
        let last = log
            .iter()
            .filter(|e| e.entry.kind == Some(Kind::Apply) && e.entry.surface == SURFACE)
            .filter(|e| {
                e.entry
                    .plan
                    .as_ref()
                    .and_then(|p| p.get("action"))
                    .and_then(Value::as_str)
                    == Some(plan.action.as_str())
            })
            .filter_map(|e| chrono::DateTime::parse_from_rfc3339(&e.entry.time).ok())
            .map(|t| t.timestamp_millis())
            .max();
        if let Some(t) = last
            && now_ms - t < iv * 1000
        {
            return Err(format!(
                "an autonomous {} ran {} min ago; the rule allows one per {}",
                plan.action,
                (now_ms - t) / 60_000,
                rule.min_interval.as_deref().unwrap_or("")
            ));
        }
    }
    Ok(format!("autonomy rule `{}`", rule.action))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Entry;
    use crate::remediate::plan::{Expect, Resource, Verify};
    use serde_json::json;

    fn plan(action: &str, risk: Risk, from: u32, to: u32) -> Plan {
        Plan {
            proposal: "p".into(),
            finding: "f".into(),
            title: "t".into(),
            action: action.into(),
            service: "/s".into(),
            live: true,
            before: vec![Resource {
                path: "/s".into(),
                etag: None,
                body: Some(json!({"sku": {"capacity": from}})),
            }],
            requests: vec![],
            diff: String::new(),
            checks: vec![],
            warnings: vec![],
            risk,
            blast_radius: String::new(),
            expected: String::new(),
            verify: Verify {
                expect: vec![Expect {
                    path: "/s".into(),
                    pointer: "/sku/capacity".into(),
                    value: json!(to),
                }],
                finding: "f".into(),
                kind: None,
                seen_until: None,
                window_minutes: 15,
                how: String::new(),
            },
            undo: vec![],
            whatif: None,
            role: String::new(),
            hash: String::new(),
        }
    }

    const POLICY: &str = "[[allow]]\naction = \"scale_out\"\nmax_risk = \"medium\"\nmax_units = 1\nmax_capacity = 3\nmin_interval = \"1h\"\nquiet_hours = \"22:00-06:00\"\n";

    #[test]
    fn off_by_default_and_limits_hold() {
        let noon = 12 * 3_600_000;
        let p = parse("a.toml", POLICY).unwrap();
        assert!(
            decide(
                &Policy::default(),
                &plan("scale_out", Risk::Low, 1, 2),
                noon,
                &[]
            )
            .is_err()
        );
        assert!(decide(&p, &plan("scale_out", Risk::Medium, 1, 2), noon, &[]).is_ok());
        assert!(
            decide(&p, &plan("scale_out", Risk::High, 1, 2), noon, &[])
                .unwrap_err()
                .contains("risk")
        );
        assert!(
            decide(&p, &plan("scale_out", Risk::Low, 1, 3), noon, &[])
                .unwrap_err()
                .contains("adds 2")
        );
        assert!(
            decide(&p, &plan("scale_out", Risk::Low, 3, 4), noon, &[])
                .unwrap_err()
                .contains("max_capacity")
        );
        assert!(
            decide(&p, &plan("scale_out", Risk::Low, 1, 2), 23 * 3_600_000, &[])
                .unwrap_err()
                .contains("quiet")
        );
        assert!(decide(&p, &plan("set_timeout", Risk::Low, 1, 2), noon, &[]).is_err());
        let ran = Stored {
            id: "x".into(),
            hash: "x".into(),
            line: 1,
            entry: Entry {
                kind: Some(Kind::Apply),
                surface: SURFACE.into(),
                time: "1970-01-01T11:30:00Z".into(),
                plan: Some(json!({"action": "scale_out"})),
                ..Entry::default()
            },
        };
        assert!(
            decide(&p, &plan("scale_out", Risk::Low, 1, 2), noon, &[ran])
                .unwrap_err()
                .contains("30 min ago")
        );
    }

    #[test]
    fn bad_files_name_the_line() {
        let e = parse(
            "p.toml",
            "[[allow]]\naction = \"scale_out\"\nmax_unit = 1\n",
        )
        .unwrap_err();
        assert!(e.starts_with("p.toml:3:"), "{e}");
        let e = parse("p.toml", "[[allow]]\naction = \"delete_everything\"\n").unwrap_err();
        assert!(e.contains("unknown action"), "{e}");
        let e = parse(
            "p.toml",
            "[[allow]]\naction = \"scale_out\"\nquiet_hours = \"25:00-1\"\n",
        )
        .unwrap_err();
        assert!(e.contains("quiet_hours"), "{e}");
    }
}
