//! Capacity, scaling-configuration and quota checks.
//!
//! - `scaling_config`: units against the tier's limits (`limits.toml`), units
//!   not a multiple of the zone count, autoscale settings that cannot act
//!   (minimum = maximum, thresholds that overlap and flap, no scale-in or no
//!   scale-out rule, the maximum reached while the gateway is saturated, a
//!   tier that cannot autoscale, unit steps or bounds off the zone count,
//!   cooldowns shorter than a scale operation), workspaces beyond the
//!   built-in gateway.
//! - `capacity`: sustained saturation from metrics (see `capacity`).
//! - `quota`: 429 surges tied to the policy behind them (see `quota`).
//!
//! Pure. Autoscale settings aimed at something other than an API Management
//! service, and disabled settings, are not judged.

pub mod capacity;
pub mod limits;
pub mod quota;

use crate::model::{
    AutoscaleSetting, Evidence, Finding, FindingKind, ScaleProfile, ScaleRule, Service, Severity,
    Snapshot, Subject, fingerprint_with,
};
use limits::{Limits, TierLimits};

const UNITS_ABOVE_MAX: &str = "SCALE001";
const UNITS_NOT_ZONE_MULTIPLE: &str = "SCALE002";
const AUTOSCALE_UNSUPPORTED: &str = "SCALE003";
const AUTOSCALE_MAX_ABOVE_TIER: &str = "SCALE004";
const AUTOSCALE_MIN_EQ_MAX: &str = "SCALE005";
const AUTOSCALE_FLAPS: &str = "SCALE006";
const AUTOSCALE_NO_SCALE_IN: &str = "SCALE007";
const AUTOSCALE_NO_SCALE_OUT: &str = "SCALE008";
const AUTOSCALE_AT_MAX: &str = "SCALE009";
const AUTOSCALE_STEP_NOT_ZONE_MULTIPLE: &str = "SCALE010";
const WORKSPACES_BEYOND_GATEWAY: &str = "SCALE011";
const AUTOSCALE_COOLDOWN_SHORT: &str = "SCALE012";

/// A unit change takes at least this long (formats.md §6: autoscale page).
const MIN_SCALE_SECS: f64 = 20.0 * 60.0;

/// Every scaling, capacity and quota finding.
pub fn findings(snapshot: &Snapshot) -> Vec<Finding> {
    let mut out = config_findings(snapshot, limits::limits());
    out.extend(capacity::findings(snapshot));
    out.extend(quota::findings(snapshot));
    out
}

fn service_subject(service: Option<&Service>) -> Subject {
    Subject {
        service: service.map(|s| s.name.clone()).filter(|n| !n.is_empty()),
        ..Subject::default()
    }
}

fn config(
    subject: Subject,
    check: &str,
    extra: &str,
    severity: Severity,
    summary: String,
) -> Finding {
    let mut f =
        Finding::new(FindingKind::ScalingConfig, severity, subject, summary).with_rule(check);
    if !extra.is_empty() {
        f.id = fingerprint_with(f.kind, &f.subject, &format!("{check}:{extra}"));
    }
    f
}

fn source_evidence(tier: &TierLimits) -> Evidence {
    Evidence::text(format!(
        "Limit source: {} ({}).",
        tier.source, tier.certainty
    ))
}

/// Checks that read only configuration (and, for SCALE009, metrics).
pub fn config_findings(snapshot: &Snapshot, limits: &Limits) -> Vec<Finding> {
    let mut out = Vec::new();
    let service = snapshot.service.as_ref();
    if let Some(s) = service {
        out.extend(service_findings(s, limits));
    }
    let saturated = capacity::saturation_episodes(snapshot);
    for setting in &snapshot.autoscale {
        if !targets_apim(setting) || setting.enabled == Some(false) {
            continue;
        }
        out.extend(autoscale_findings(service, setting, limits, &saturated));
    }
    out
}

fn service_findings(s: &Service, limits: &Limits) -> Vec<Finding> {
    let mut out = Vec::new();
    let subject = service_subject(Some(s));
    let sku = s.sku.as_deref().unwrap_or("");
    let tier = limits.tier(sku);
    if let (Some(units), Some(t)) = (s.capacity, tier)
        && let Some(max) = t.max_units
        && units > max
    {
        let conflicting = t.certainty == "conflicting";
        let severity = if conflicting {
            Severity::Low
        } else {
            Severity::Medium
        };
        let mut summary = format!("{} units on {sku}, whose limit is {max} per region", units);
        if t.can_scale == Some(false) {
            summary = format!("{units} units on {sku}, which is {max} unit and cannot scale");
        }
        if conflicting {
            summary.push_str(" (sources conflict)");
        }
        out.push(
            config(subject.clone(), UNITS_ABOVE_MAX, "", severity, summary)
                .evidence(
                    Evidence::text(format!("sku.capacity = {units}, tier {sku}."))
                        .value("units", f64::from(units))
                        .value("max_units", f64::from(max)),
                )
                .evidence(source_evidence(t))
                .confidence(if conflicting { 0.5 } else { 0.9 }),
        );
    }
    let zones = s.zones.len() as u32;
    if let Some(units) = s.capacity
        && zones > 1
        && units % zones != 0
    {
        out.push(
            config(
                subject.clone(),
                UNITS_NOT_ZONE_MULTIPLE,
                "",
                Severity::Medium,
                format!(
                    "{units} units across {zones} availability zones: units must be a multiple of the zone count"
                ),
            )
            .evidence(
                Evidence::text(format!(
                    "sku.capacity = {units}, zones = [{}]; with zones, Azure places units evenly, so scale to {} or {} units.",
                    s.zones.join(", "),
                    units - units % zones,
                    units + (zones - units % zones)
                ))
                .value("units", f64::from(units))
                .value("zones", f64::from(zones)),
            ),
        );
    }
    if let Some(limit) = limits.workspaces(sku) {
        let n = s.workspaces.len() as u32;
        if n > limit {
            out.push(
                config(
                    subject,
                    WORKSPACES_BEYOND_GATEWAY,
                    "",
                    Severity::Low,
                    format!(
                        "{n} workspaces on {sku}: more than the {limit} the built-in gateway is said to serve (unconfirmed limit)"
                    ),
                )
                .evidence(
                    Evidence::text(format!(
                        "Workspaces: {}. Consider workspace gateways for the rest.",
                        s.workspaces.join(", ")
                    ))
                    .value("workspaces", f64::from(n))
                    .value("limit", f64::from(limit)),
                )
                .evidence(Evidence::text(format!(
                    "Limit source: {} ({}).",
                    limits.workspaces_builtin_gateway.source,
                    limits.workspaces_builtin_gateway.certainty
                )))
                .confidence(0.4),
            );
        }
    }
    out
}

/// Aimed at an API Management service (or at nothing known).
fn targets_apim(s: &AutoscaleSetting) -> bool {
    s.target_resource.as_deref().is_none_or(|t| {
        t.to_ascii_lowercase()
            .contains("/microsoft.apimanagement/service/")
    })
}

fn is_increase(r: &ScaleRule) -> bool {
    r.direction.eq_ignore_ascii_case("Increase")
}

fn is_decrease(r: &ScaleRule) -> bool {
    r.direction.eq_ignore_ascii_case("Decrease")
}

/// The metric values that trigger a rule, as an interval `(lo, lo_incl,
/// hi, hi_incl)`; `None` for operators that are not an interval.
fn trigger_interval(r: &ScaleRule) -> Option<(f64, bool, f64, bool)> {
    let t = r.threshold;
    let inf = f64::INFINITY;
    match r.operator.to_ascii_lowercase().as_str() {
        "greaterthan" => Some((t, false, inf, false)),
        "greaterthanorequal" => Some((t, true, inf, false)),
        "lessthan" => Some((-inf, false, t, false)),
        "lessthanorequal" => Some((-inf, false, t, true)),
        "equals" => Some((t, true, t, true)),
        _ => None,
    }
}

/// Some value of the metric triggers both rules.
fn overlap(a: &ScaleRule, b: &ScaleRule) -> Option<(f64, f64)> {
    let (alo, alo_i, ahi, ahi_i) = trigger_interval(a)?;
    let (blo, blo_i, bhi, bhi_i) = trigger_interval(b)?;
    let (lo, lo_i) = if alo > blo {
        (alo, alo_i)
    } else if blo > alo {
        (blo, blo_i)
    } else {
        (alo, alo_i && blo_i)
    };
    let (hi, hi_i) = if ahi < bhi {
        (ahi, ahi_i)
    } else if bhi < ahi {
        (bhi, bhi_i)
    } else {
        (ahi, ahi_i && bhi_i)
    };
    (lo < hi || (lo == hi && lo_i && hi_i)).then_some((lo, hi))
}

fn same_metric(a: &ScaleRule, b: &ScaleRule) -> bool {
    let res = |r: &ScaleRule| r.metric_resource.as_deref().map(str::to_ascii_lowercase);
    a.metric.eq_ignore_ascii_case(&b.metric) && res(a) == res(b)
}

fn rule_text(r: &ScaleRule) -> String {
    let window = r
        .time_window_secs
        .map(|s| format!(" over {:.0} min", s / 60.0))
        .unwrap_or_default();
    format!(
        "{} {} {}{window} → {} {}",
        r.metric,
        r.operator,
        r.threshold,
        r.direction,
        r.change.map_or("?".to_string(), |c| c.to_string())
    )
}

fn autoscale_findings(
    service: Option<&Service>,
    setting: &AutoscaleSetting,
    limits: &Limits,
    saturated: &[capacity::Episode],
) -> Vec<Finding> {
    let mut out = Vec::new();
    let sku = service.and_then(|s| s.sku.as_deref()).unwrap_or("");
    let tier = limits.tier(sku);
    let zones = service.map_or(0, |s| s.zones.len() as u32);
    let subject = |profile: Option<&ScaleProfile>| Subject {
        service: service.map(|s| s.name.clone()).filter(|n| !n.is_empty()),
        rule: Some(match profile {
            Some(p) => format!("autoscale:{}/{}", setting.name, p.name),
            None => format!("autoscale:{}", setting.name),
        }),
        ..Subject::default()
    };
    let mut origin_ev = Evidence::text(format!("Autoscale setting {}.", setting.name));
    origin_ev.sources.push(setting.origin.clone());

    if let Some(t) = tier
        && t.autoscale == Some(false)
    {
        out.push(
            config(
                subject(None),
                AUTOSCALE_UNSUPPORTED,
                "",
                Severity::Medium,
                format!(
                    "Autoscale setting {} targets a {sku} service, which cannot autoscale",
                    setting.name
                ),
            )
            .evidence(origin_ev.clone())
            .evidence(source_evidence(t)),
        );
        return out;
    }

    for p in &setting.profiles {
        let ups: Vec<&ScaleRule> = p.rules.iter().filter(|r| is_increase(r)).collect();
        let downs: Vec<&ScaleRule> = p.rules.iter().filter(|r| is_decrease(r)).collect();
        if let (Some(t), Some(max)) = (tier, p.maximum)
            && let Some(limit) = t.max_units
            && max > limit
        {
            let conflicting = t.certainty == "conflicting";
            out.push(
                config(
                    subject(Some(p)),
                    AUTOSCALE_MAX_ABOVE_TIER,
                    "",
                    if conflicting { Severity::Info } else { Severity::Low },
                    format!(
                        "Autoscale profile {} allows up to {max} units, above the {sku} limit of {limit}{}",
                        p.name,
                        if conflicting { " (sources conflict)" } else { "" }
                    ),
                )
                .evidence(origin_ev.clone())
                .evidence(source_evidence(t)),
            );
        }
        if p.rules.is_empty() {
            // A fixed-count profile (a schedule): intentional.
            continue;
        }
        if let (Some(min), Some(max)) = (p.minimum, p.maximum)
            && min == max
        {
            out.push(
                config(
                    subject(Some(p)),
                    AUTOSCALE_MIN_EQ_MAX,
                    "",
                    Severity::Medium,
                    format!(
                        "Autoscale profile {} has minimum = maximum = {min}: its {} rule(s) can never change the unit count",
                        p.name,
                        p.rules.len()
                    ),
                )
                .evidence(origin_ev.clone()),
            );
            continue;
        }
        for up in &ups {
            for down in &downs {
                if !same_metric(up, down) {
                    continue;
                }
                if let Some((lo, hi)) = overlap(up, down) {
                    let range = match (lo.is_finite(), hi.is_finite()) {
                        (true, true) => format!("between {lo} and {hi}"),
                        (true, false) => format!("above {lo}"),
                        (false, true) => format!("below {hi}"),
                        (false, false) => "at any value".to_string(),
                    };
                    out.push(
                        config(
                            subject(Some(p)),
                            AUTOSCALE_FLAPS,
                            &format!("{}:{}:{}", up.metric, up.threshold, down.threshold),
                            Severity::Medium,
                            format!(
                                "Autoscale profile {} flaps: {} {range} triggers both scale-out and scale-in",
                                p.name, up.metric
                            ),
                        )
                        .evidence(
                            Evidence::text(format!(
                                "Scale-out: {}. Scale-in: {}. Leave a gap: the APIM docs suggest out above 80% and in below 35%.",
                                rule_text(up),
                                rule_text(down)
                            ))
                            .value("scale_out_threshold", up.threshold)
                            .value("scale_in_threshold", down.threshold),
                        )
                        .evidence(origin_ev.clone()),
                    );
                }
            }
        }
        if !ups.is_empty() && downs.is_empty() {
            out.push(
                config(
                    subject(Some(p)),
                    AUTOSCALE_NO_SCALE_IN,
                    "",
                    Severity::Low,
                    format!(
                        "Autoscale profile {} only scales out: without a scale-in rule the units added stay until someone removes them",
                        p.name
                    ),
                )
                .evidence(origin_ev.clone()),
            );
        }
        if ups.is_empty() && !downs.is_empty() {
            out.push(
                config(
                    subject(Some(p)),
                    AUTOSCALE_NO_SCALE_OUT,
                    "",
                    Severity::Medium,
                    format!(
                        "Autoscale profile {} has no scale-out rule: load cannot add units",
                        p.name
                    ),
                )
                .evidence(origin_ev.clone()),
            );
        }
        if zones > 1 {
            let bad: Vec<String> = p
                .rules
                .iter()
                .filter_map(|r| {
                    r.change
                        .filter(|c| c % zones != 0)
                        .map(|c| format!("{} {c}", r.direction))
                })
                .chain(
                    [("minimum", p.minimum), ("maximum", p.maximum)]
                        .into_iter()
                        .filter_map(|(k, v)| {
                            v.filter(|v| v % zones != 0).map(|v| format!("{k} {v}"))
                        }),
                )
                .collect();
            if !bad.is_empty() {
                out.push(
                    config(
                        subject(Some(p)),
                        AUTOSCALE_STEP_NOT_ZONE_MULTIPLE,
                        "",
                        Severity::Medium,
                        format!(
                            "Autoscale profile {} uses unit counts that are not a multiple of the {zones} zones: {}",
                            p.name,
                            bad.join(", ")
                        ),
                    )
                    .evidence(origin_ev.clone()),
                );
            }
        }
        let short: Vec<String> = p
            .rules
            .iter()
            .filter_map(|r| {
                r.cooldown_secs
                    .filter(|c| *c < MIN_SCALE_SECS)
                    .map(|c| format!("{} cooldown {:.0} min", r.direction, c / 60.0))
            })
            .collect();
        if !short.is_empty() {
            out.push(
                config(
                    subject(Some(p)),
                    AUTOSCALE_COOLDOWN_SHORT,
                    "",
                    Severity::Low,
                    format!(
                        "Autoscale profile {} re-evaluates before a scale operation can finish ({}; a unit change takes at least 20 min)",
                        p.name,
                        short.join(", ")
                    ),
                )
                .evidence(Evidence::text(
                    "API Management scaling takes 20 minutes or more; the docs suggest cooldowns of 60 min (out) and 90 min (in).",
                ))
                .evidence(origin_ev.clone()),
            );
        }
        // At the ceiling while saturated.
        if let (Some(max), Some(units)) = (p.maximum, service.and_then(|s| s.capacity))
            && units >= max
            && !ups.is_empty()
            && let Some(ep) = saturated.iter().max_by(|a, b| a.mean.total_cmp(&b.mean))
        {
            out.push(
                config(
                    subject(Some(p)),
                    AUTOSCALE_AT_MAX,
                    "",
                    Severity::High,
                    format!(
                        "Autoscale profile {} is at its maximum of {max} units while {} averaged {:.0}% for {} min: it cannot add capacity",
                        p.name,
                        ep.metric,
                        ep.mean,
                        ep.minutes()
                    ),
                )
                .window(crate::model::Window {
                    start: ep.start,
                    end: ep.end,
                })
                .evidence(
                    Evidence::text(format!(
                        "sku.capacity = {units}, profile maximum = {max}; raise the maximum (within the tier limit) or move load."
                    ))
                    .value("units", f64::from(units))
                    .value("maximum", f64::from(max))
                    .value("mean_pct", ep.mean),
                )
                .evidence(origin_ev.clone()),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::capacity::tests::{series, shape};
    use super::*;

    const APIM: &str =
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ApiManagement/service/contoso";

    fn premium() -> Service {
        Service {
            name: "contoso".into(),
            sku: Some("Premium".into()),
            capacity: Some(2),
            zones: vec!["1".into(), "2".into()],
            vnet_type: Some("External".into()),
            ..Service::default()
        }
    }

    fn rule(op: &str, threshold: f64, dir: &str, change: u32) -> ScaleRule {
        ScaleRule {
            metric: "Capacity".into(),
            metric_resource: Some(APIM.into()),
            statistic: Some("Average".into()),
            time_window_secs: Some(1800.0),
            time_aggregation: Some("Average".into()),
            operator: op.into(),
            threshold,
            direction: dir.into(),
            change: Some(change),
            cooldown_secs: Some(3600.0),
        }
    }

    /// The docs' recommendation: +unit above 80%, -unit below 35%.
    fn sane_setting() -> AutoscaleSetting {
        AutoscaleSetting {
            name: "apim-autoscale".into(),
            enabled: Some(true),
            target_resource: Some(APIM.into()),
            profiles: vec![ScaleProfile {
                name: "default".into(),
                minimum: Some(2),
                maximum: Some(6),
                default: Some(2),
                rules: vec![
                    rule("GreaterThan", 80.0, "Increase", 2),
                    rule("LessThan", 35.0, "Decrease", 2),
                ],
            }],
            ..AutoscaleSetting::default()
        }
    }

    fn snap(service: Service, autoscale: Vec<AutoscaleSetting>) -> Snapshot {
        Snapshot {
            service: Some(service),
            autoscale,
            ..Snapshot::default()
        }
    }

    fn checks(fs: &[Finding]) -> Vec<&str> {
        fs.iter().filter_map(|f| f.rule.as_deref()).collect()
    }

    #[test]
    fn healthy_premium_with_sane_autoscale_is_quiet() {
        let mut s = snap(premium(), vec![sane_setting()]);
        s.metrics
            .push(series("Capacity", "average", &shape(20, 60.0)));
        let fs = findings(&s);
        assert!(fs.is_empty(), "{fs:#?}");
    }

    #[test]
    fn units_above_tier_limit() {
        let mut svc = premium();
        svc.sku = Some("Standard".into());
        svc.zones.clear();
        svc.capacity = Some(5);
        let fs = findings(&snap(svc.clone(), vec![]));
        assert_eq!(checks(&fs), vec![UNITS_ABOVE_MAX]);
        assert_eq!(fs[0].severity, Severity::Medium);
        svc.capacity = Some(4);
        assert!(findings(&snap(svc.clone(), vec![])).is_empty());
        // Premium: conflicting sources, low severity, said so.
        let mut p = premium();
        p.zones.clear();
        p.capacity = Some(14);
        let fs = findings(&snap(p, vec![]));
        assert_eq!(fs[0].severity, Severity::Low);
        assert!(fs[0].summary.contains("conflict"));
        // Developer: cannot scale.
        let mut d = svc.clone();
        d.sku = Some("Developer".into());
        d.capacity = Some(2);
        assert!(
            findings(&snap(d, vec![]))[0]
                .summary
                .contains("cannot scale")
        );
        // Unknown tier limit: nothing.
        let mut b = svc;
        b.sku = Some("Basic".into());
        b.capacity = Some(9);
        assert!(findings(&snap(b, vec![])).is_empty());
    }

    #[test]
    fn units_not_multiple_of_zones() {
        let mut svc = premium();
        svc.capacity = Some(3);
        let fs = findings(&snap(svc.clone(), vec![]));
        assert_eq!(checks(&fs), vec![UNITS_NOT_ZONE_MULTIPLE]);
        svc.zones.push("3".into());
        assert!(findings(&snap(svc, vec![])).is_empty());
    }

    #[test]
    fn min_equals_max() {
        let mut a = sane_setting();
        a.profiles[0].minimum = Some(4);
        a.profiles[0].maximum = Some(4);
        let fs = findings(&snap(premium(), vec![a]));
        assert_eq!(checks(&fs), vec![AUTOSCALE_MIN_EQ_MAX]);
        // A profile without rules is a fixed schedule: fine.
        let mut fixed = sane_setting();
        fixed.profiles[0].minimum = Some(4);
        fixed.profiles[0].maximum = Some(4);
        fixed.profiles[0].rules.clear();
        assert!(findings(&snap(premium(), vec![fixed])).is_empty());
    }

    #[test]
    fn overlapping_thresholds_flap() {
        let mut a = sane_setting();
        a.profiles[0].rules = vec![
            rule("GreaterThan", 60.0, "Increase", 2),
            rule("LessThan", 70.0, "Decrease", 2),
        ];
        let fs = findings(&snap(premium(), vec![a]));
        assert_eq!(checks(&fs), vec![AUTOSCALE_FLAPS]);
        assert!(
            fs[0].summary.contains("between 60 and 70"),
            "{}",
            fs[0].summary
        );
        // Touching but not overlapping (> 70 and < 70): no flap.
        let mut b = sane_setting();
        b.profiles[0].rules = vec![
            rule("GreaterThan", 70.0, "Increase", 2),
            rule("LessThan", 70.0, "Decrease", 2),
        ];
        assert!(findings(&snap(premium(), vec![b])).is_empty());
        // Different metrics never flap with each other.
        let mut c = sane_setting();
        c.profiles[0].rules[1].metric = "Requests".into();
        c.profiles[0].rules[1].threshold = 90.0;
        assert!(findings(&snap(premium(), vec![c])).is_empty());
    }

    #[test]
    fn missing_scale_in_or_out() {
        let mut a = sane_setting();
        a.profiles[0].rules.truncate(1);
        assert_eq!(
            checks(&findings(&snap(premium(), vec![a]))),
            vec![AUTOSCALE_NO_SCALE_IN]
        );
        let mut b = sane_setting();
        b.profiles[0].rules.remove(0);
        let fs = findings(&snap(premium(), vec![b]));
        assert_eq!(checks(&fs), vec![AUTOSCALE_NO_SCALE_OUT]);
        assert_eq!(fs[0].severity, Severity::Medium);
    }

    #[test]
    fn step_not_multiple_of_zones() {
        let mut a = sane_setting();
        a.profiles[0].rules[0].change = Some(1);
        let fs = findings(&snap(premium(), vec![a]));
        assert_eq!(checks(&fs), vec![AUTOSCALE_STEP_NOT_ZONE_MULTIPLE]);
        assert!(fs[0].summary.contains("Increase 1"));
    }

    #[test]
    fn cooldown_shorter_than_a_scale_operation() {
        let mut a = sane_setting();
        a.profiles[0].rules[0].cooldown_secs = Some(300.0);
        let fs = findings(&snap(premium(), vec![a]));
        assert_eq!(checks(&fs), vec![AUTOSCALE_COOLDOWN_SHORT]);
        assert!(
            fs[0].summary.contains("Increase cooldown 5 min"),
            "{}",
            fs[0].summary
        );
        let mut b = sane_setting();
        b.profiles[0].rules[0].cooldown_secs = Some(1200.0);
        assert!(findings(&snap(premium(), vec![b])).is_empty());
    }

    #[test]
    fn at_maximum_while_saturated() {
        let mut svc = premium();
        svc.capacity = Some(6);
        let mut s = snap(svc.clone(), vec![sane_setting()]);
        s.metrics
            .push(series("Capacity", "average", &shape(20, 92.0)));
        let fs = findings(&s);
        let at_max: Vec<&Finding> = fs
            .iter()
            .filter(|f| f.rule.as_deref() == Some(AUTOSCALE_AT_MAX))
            .collect();
        assert_eq!(at_max.len(), 1, "{fs:#?}");
        assert_eq!(at_max[0].severity, Severity::High);
        assert!(fs.iter().any(|f| f.kind == FindingKind::Capacity));
        // Below the maximum: autoscale can still act.
        svc.capacity = Some(4);
        let mut s2 = snap(svc, vec![sane_setting()]);
        s2.metrics = s.metrics.clone();
        assert!(
            findings(&s2)
                .iter()
                .all(|f| f.rule.as_deref() != Some(AUTOSCALE_AT_MAX))
        );
    }

    #[test]
    fn autoscale_on_developer_and_foreign_targets() {
        let mut dev = premium();
        dev.sku = Some("Developer".into());
        dev.capacity = Some(1);
        dev.zones.clear();
        let fs = findings(&snap(dev.clone(), vec![sane_setting()]));
        assert_eq!(checks(&fs), vec![AUTOSCALE_UNSUPPORTED]);
        // A VM scale set's setting with flapping rules is not ours to judge.
        let mut vmss = sane_setting();
        vmss.target_resource = Some("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/x".into());
        vmss.profiles[0].rules[1].threshold = 95.0;
        assert!(findings(&snap(dev.clone(), vec![vmss])).is_empty());
        // Disabled settings are not judged either.
        let mut off = sane_setting();
        off.enabled = Some(false);
        assert!(findings(&snap(dev, vec![off])).is_empty());
    }

    #[test]
    fn workspaces_beyond_builtin_gateway() {
        let mut svc = premium();
        svc.sku = Some("Standard".into());
        svc.zones.clear();
        svc.workspaces = (0..6).map(|i| format!("ws{i}")).collect();
        let fs = findings(&snap(svc.clone(), vec![]));
        assert_eq!(checks(&fs), vec![WORKSPACES_BEYOND_GATEWAY]);
        assert_eq!(fs[0].severity, Severity::Low);
        svc.workspaces.truncate(5);
        assert!(findings(&snap(svc, vec![])).is_empty());
    }
}
