//! When things happen in a scenario: the data window (a fixed instant
//! derived from the seed, never the clock), the daily traffic curve, the
//! moment of the causing change and of the symptoms, and the shape of the
//! service (tier, units, network) each scenario runs on.

use super::Scenario;
use super::rng::Rng;
use crate::model::days_from_civil;

/// The data of every scenario ends at 13:00 UTC on 2 March 2026 plus
/// `seed % 7` days: stable fixtures, and the morning ramp of the daily curve
/// inside a default six-hour span.
pub fn end_minute(seed: u64) -> i64 {
    let day = days_from_civil(2026, 3, 2) + (seed % 7) as i64;
    day * 1440 + 13 * 60
}

/// Relative load by time of day (UTC), 0.2 at the 04:00 trough to 1.0 at the
/// 16:00 peak, with a small lunch bump.
pub fn diurnal(minute: i64) -> f64 {
    let h = minute.rem_euclid(1440) as f64 / 60.0;
    let wave = 0.5 - 0.5 * (std::f64::consts::TAU * (h - 4.0) / 24.0).cos();
    let lunch = 0.05 * (-((h - 12.5) * (h - 12.5)) / 0.5).exp();
    0.2 + 0.8 * wave + lunch
}

/// The service tier a scenario runs on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shape {
    pub sku: &'static str,
    pub units: u32,
    /// `None`, `External` or `Internal`.
    pub vnet: &'static str,
    /// Autoscale (minimum, maximum), when the instance has a setting.
    pub autoscale: Option<(u32, u32)>,
    /// Capacity percent added per unit of relative load.
    pub capacity_slope: f64,
}

impl Shape {
    pub fn is_v2(&self) -> bool {
        self.sku.ends_with("V2")
    }
    pub fn has_nsg(&self) -> bool {
        self.vnet != "None"
    }
}

pub fn shape(scenario: Scenario) -> Shape {
    let s = |sku, units, vnet, autoscale, capacity_slope| Shape {
        sku,
        units,
        vnet,
        autoscale,
        capacity_slope,
    };
    match scenario {
        Scenario::BackendOom => s("Premium", 1, "External", None, 42.0),
        Scenario::PolicyTimeout => s("StandardV2", 1, "None", None, 40.0),
        Scenario::WrongRoute => s("Standard", 1, "None", None, 45.0),
        Scenario::NsgBlock => s("Premium", 1, "Internal", None, 42.0),
        // The slope is replaced by the plan so saturation lands on the incident.
        Scenario::Capacity => s("Standard", 2, "None", Some((1, 2)), 30.0),
        Scenario::RateLimit => s("StandardV2", 1, "None", None, 40.0),
        Scenario::Healthy => s("Premium", 2, "External", Some((2, 4)), 22.0),
        Scenario::Misconfig => s("Premium", 1, "External", None, 42.0),
        Scenario::AppServiceDeploy => s("Standard", 1, "None", None, 40.0),
    }
}

/// The timeline of one generated instance. All instants are minutes since
/// the Unix epoch; windows are `[from, to)`.
#[derive(Clone, Debug)]
pub struct Plan {
    pub scenario: Scenario,
    pub seed: u64,
    pub scale: f64,
    pub start: i64,
    pub end: i64,
    /// The causing change (policy write, NSG rule, deployment), to the ms.
    pub change_ms: i64,
    /// First minute of the symptoms.
    pub incident: i64,
    /// First minute after the symptoms (the end of data when ongoing).
    pub recover: i64,
    /// backend-oom: the revision with the leak starts here.
    pub leak_start: i64,
    /// backend-oom: minutes the container is OOM-killed.
    pub kills: Vec<i64>,
    /// capacity: the traffic surge ramps from here to `incident`.
    pub surge_start: i64,
    /// rate-limit: the starter product's calls per 300 s before/after.
    pub calls_before: u32,
    pub calls_after: u32,
    pub shape: Shape,
}

impl Plan {
    pub fn new(scenario: Scenario, seed: u64, scale: f64, minutes: u32) -> Plan {
        let minutes = i64::from(minutes.max(super::MIN_MINUTES));
        let end = end_minute(seed);
        let start = end - minutes;
        let mut rng = Rng::derive(seed, &[scenario.code(), 0x504c_414e]);
        let jitter = rng.below((minutes / 20).max(1) as u64) as i64;
        let incident = start + minutes * 3 / 5 + jitter;
        let second = rng.below(50_000) as i64 + 5_000;
        let mut plan = Plan {
            scenario,
            seed,
            scale,
            start,
            end,
            change_ms: 0,
            incident,
            recover: end,
            leak_start: incident,
            kills: Vec::new(),
            surge_start: incident,
            calls_before: 0,
            calls_after: 0,
            shape: shape(scenario),
        };
        let at = |m: i64| m * 60_000 + second;
        match scenario {
            Scenario::BackendOom => {
                let lead = 55.min((incident - start) / 2);
                let deploy = incident - lead;
                plan.change_ms = at(deploy);
                plan.leak_start = deploy + 2;
                plan.recover = incident + 40.min((end - incident) * 2 / 3).max(3);
                let mut k = incident;
                while k < plan.recover - 2 {
                    plan.kills.push(k);
                    k += 5 + rng.below(4) as i64;
                }
            }
            Scenario::PolicyTimeout => plan.change_ms = at(incident - 3),
            Scenario::WrongRoute | Scenario::NsgBlock => plan.change_ms = at(incident - 1),
            Scenario::Capacity => {
                if minutes > 720 {
                    // Long spans: saturate at the busiest hour of the later half.
                    let from = start + minutes / 2;
                    let best = (from..end - 60).max_by(|a, b| diurnal(*a).total_cmp(&diurnal(*b)));
                    plan.incident = best.unwrap_or(incident);
                }
                let incident = plan.incident;
                plan.surge_start = incident - 25.min((incident - start) / 3);
                plan.change_ms = at(start + 20);
                // Saturate (about 91 %) when the surge peaks at the incident.
                let load = diurnal(incident) * SURGE;
                plan.shape.capacity_slope = 87.0 / load;
            }
            Scenario::RateLimit => {
                plan.change_ms = at(incident - 2);
                let per_window = PARTNER_WINDOW_CALLS * scale;
                plan.calls_after = ((per_window * 0.45).round() as u32).max(2);
                plan.calls_before = (plan.calls_after * 10).max(1000);
            }
            Scenario::Healthy | Scenario::Misconfig => plan.change_ms = at(incident - 10),
            // The new build starts serving a few minutes after the deployment.
            Scenario::AppServiceDeploy => plan.change_ms = at(incident - 4),
        }
        if plan.calls_before == 0 {
            let per_window = PARTNER_WINDOW_CALLS * scale;
            plan.calls_before = ((per_window * 4.0).round() as u32).max(1000);
            plan.calls_after = plan.calls_before;
        }
        plan
    }

    pub fn change_minute(&self) -> i64 {
        self.change_ms.div_euclid(60_000)
    }

    /// Traffic multiplier for every operation at `minute` (the capacity
    /// scenario's surge).
    pub fn surge(&self, minute: i64) -> f64 {
        if self.scenario != Scenario::Capacity || minute < self.surge_start {
            return 1.0;
        }
        let span = (self.incident - self.surge_start).max(1) as f64;
        let p = ((minute - self.surge_start) as f64 / span).min(1.0);
        1.0 + (SURGE - 1.0) * p
    }

    /// The gateway's Capacity percent at `minute` before noise.
    pub fn capacity(&self, minute: i64) -> f64 {
        let raw = 4.0 + self.shape.capacity_slope * diurnal(minute) * self.surge(minute);
        if raw > 90.0 {
            (90.0 + (raw - 90.0) * 0.3).min(98.5)
        } else {
            raw
        }
    }

    /// backend-oom: the inventory app restarts (OOM kill) in this minute or
    /// the one after.
    pub fn restarting(&self, minute: i64) -> bool {
        self.kills.iter().any(|k| minute == *k || minute == *k + 1)
    }

    /// backend-oom: the leaking revision serves this minute.
    pub fn oom_phase(&self, minute: i64) -> bool {
        self.scenario == Scenario::BackendOom && minute >= self.incident && minute < self.recover
    }

    /// app-service-deploy: the broken build of catalog-web serves this minute.
    pub fn broken_build(&self, minute: i64) -> bool {
        self.scenario == Scenario::AppServiceDeploy
            && minute >= self.incident
            && minute < self.recover
    }
}

/// The capacity scenario's traffic multiplier at its peak.
pub const SURGE: f64 = 2.1;

/// The partner's requests per 300 s rate-limit window at `--scale 1`.
pub const PARTNER_WINDOW_CALLS: f64 = super::catalog::PARTNER_RATE * 5.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diurnal_curve_has_trough_and_peak() {
        let day = 20_000 * 1440;
        let at = |h: i64| diurnal(day + h * 60);
        assert!((at(4) - 0.2).abs() < 1e-9, "{}", at(4));
        assert!((at(16) - 1.0).abs() < 1e-9, "{}", at(16));
        assert!(at(10) > at(7) && at(13) > at(10));
        assert!(at(20) < at(16));
        for m in 0..1440 {
            let v = diurnal(day + m);
            assert!((0.19..=1.06).contains(&v), "{m}: {v}");
        }
        // A swing of more than 2x across the default six-hour fixture span.
        assert!(at(13) / at(7) > 2.0);
    }

    #[test]
    fn end_is_fixed_by_the_seed() {
        assert_eq!(end_minute(0), end_minute(7));
        assert_eq!(end_minute(1) - end_minute(0), 1440);
        let t = crate::model::Timestamp::from_minute(end_minute(0));
        assert_eq!(t.to_rfc3339(), "2026-03-02T13:00:00Z");
    }

    #[test]
    fn plans_put_incidents_inside_the_window() {
        for s in Scenario::ALL {
            for seed in [1, 2, 99] {
                for minutes in [60, 240, 360, 1440] {
                    let p = Plan::new(s, seed, 0.1, minutes);
                    assert!(p.start < p.incident && p.incident < p.end, "{s:?}");
                    assert!(p.recover <= p.end && p.recover > p.incident, "{s:?}");
                    assert!(p.change_ms >= p.start * 60_000, "{s:?} {minutes}");
                    assert!(p.change_ms < p.end * 60_000, "{s:?}");
                }
            }
        }
        let p = Plan::new(Scenario::BackendOom, 1, 0.1, 300);
        assert!(p.kills.len() >= 3, "{:?}", p.kills);
        assert_eq!(p.kills[0], p.incident);
        assert!(p.change_minute() < p.leak_start && p.leak_start < p.incident);
    }

    #[test]
    fn capacity_saturates_only_in_the_capacity_scenario() {
        let p = Plan::new(Scenario::Capacity, 5, 0.1, 300);
        assert!(p.capacity(p.incident) >= 85.0, "{}", p.capacity(p.incident));
        assert!(p.capacity(p.end - 1) >= 85.0);
        assert!(p.capacity(p.start) < 70.0);
        let h = Plan::new(Scenario::Healthy, 5, 0.1, 300);
        assert!((h.start..h.end).all(|m| h.capacity(m) < 60.0));
    }
}
