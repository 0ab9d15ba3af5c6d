//! Gateway requests, minute by minute: Poisson counts around the daily
//! curve, lognormal latency per operation with a rare heavy tail, sporadic
//! background errors, and the scenario's incident laid on top. Each request
//! knows whether the incident made it fail (`injected`), which is where the
//! ground truth's windows come from.

use super::Scenario;
use super::catalog::{
    A_CATALOG, A_INVENTORY, A_ORDERS, A_PAYMENTS, A_USERS, APIS, B_CATALOG, B_CATALOG_LEGACY,
    BACKENDS, O_CHECK_STOCK, O_CREATE_SHIPMENT, O_GET_PRICE, O_GET_PRODUCT, OPS, PARTNER_OPS,
    PARTNER_RATE, Route, S_PARTNER_ACME, SUBSCRIPTIONS,
};
use super::plan::{Plan, diurnal};
use super::rng::Rng;
use std::collections::HashMap;

/// The error a request failed with, as `LastError*` columns carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrInfo {
    pub reason: &'static str,
    pub source: &'static str,
    pub section: &'static str,
    pub scope: &'static str,
    pub message: &'static str,
    pub elapsed: u32,
}

/// One simulated request.
#[derive(Clone, Debug)]
pub struct Req {
    pub t_ms: i64,
    pub op: usize,
    pub sub: usize,
    pub ip: String,
    pub corr: String,
    /// The backend entity that served it (a pool's member), `None` when the
    /// gateway answered without calling a backend.
    pub served_by: Option<usize>,
    /// `BackendId` as logged ("" when routed by URL).
    pub backend_id: &'static str,
    /// Path and query after the gateway's API path, e.g. `/stock/check?sku=1`.
    pub path: String,
    /// `BackendUrl` ("" when no backend call).
    pub backend_url: String,
    pub code: u16,
    pub backend_code: Option<u16>,
    pub total: u32,
    pub backend_time: Option<u32>,
    pub client_time: u32,
    pub err: Option<ErrInfo>,
    pub req_size: u32,
    pub resp_size: u32,
    /// Failed or slowed because of the scenario's incident.
    pub injected: bool,
}

impl Req {
    pub fn minute(&self) -> i64 {
        self.t_ms.div_euclid(60_000)
    }
    pub fn api(&self) -> &'static str {
        APIS[OPS[self.op].api].id
    }
    pub fn product(&self) -> &'static str {
        SUBSCRIPTIONS[self.sub].product
    }
}

/// The forward-request timeout after the policy-timeout change, in ms.
pub const NEW_TIMEOUT_MS: f64 = 5_000.0;

const TIMEOUT_MSG: &str = "Request to the backend service timed out";
const CONNECT_MSG: &str = "Unable to connect to the remote server";
const RESET_MSG: &str =
    "The underlying connection was closed: The connection was closed unexpectedly.";

/// Every request of the plan's window, in time order.
pub fn requests(plan: &Plan) -> Vec<Req> {
    let ips = client_ips(plan.seed);
    let mut out = Vec::new();
    let mut limiter: HashMap<(usize, i64), u32> = HashMap::new();
    for minute in plan.start..plan.end {
        let mut rng = Rng::derive(plan.seed, &[plan.scenario.code(), minute as u64]);
        let noise = rng.lognormal(1.0, 0.07);
        let load = diurnal(minute) * noise * plan.surge(minute);
        let mut batch = Vec::new();
        for (oi, op) in OPS.iter().enumerate() {
            let n = rng.poisson(op.weight * plan.scale * load);
            for _ in 0..n {
                let sub = pick_sub(&mut rng);
                batch.push(serve(plan, oi, sub, minute, &ips, &mut rng));
            }
        }
        // The partner's catalog sync: steady all day, product `starter`.
        let n = rng.poisson(PARTNER_RATE * plan.scale * noise);
        for _ in 0..n {
            let w: Vec<f64> = PARTNER_OPS.iter().map(|(_, w)| *w).collect();
            let oi = PARTNER_OPS[rng.weighted(&w)].0;
            batch.push(serve(plan, oi, S_PARTNER_ACME, minute, &ips, &mut rng));
        }
        if plan.scenario == Scenario::Healthy {
            low_traffic_op(plan, minute, &ips, &mut rng, &mut batch);
        }
        batch.sort_by(|a, b| a.t_ms.cmp(&b.t_ms).then_with(|| a.corr.cmp(&b.corr)));
        for r in &mut batch {
            rate_limit(plan, r, &mut limiter, &mut rng);
        }
        out.extend(batch);
    }
    out
}

fn pick_sub(rng: &mut Rng) -> usize {
    let w: Vec<f64> = SUBSCRIPTIONS.iter().map(|s| s.share).collect();
    rng.weighted(&w)
}

/// A fixed pool of client addresses per seed; the partner has its own.
fn client_ips(seed: u64) -> Vec<String> {
    let mut rng = Rng::derive(seed, &[0x4950]);
    let firsts = [20u64, 51, 52, 81, 86, 93, 145, 185, 203];
    (0..160)
        .map(|_| {
            let a = firsts[rng.below(firsts.len() as u64) as usize];
            format!(
                "{a}.{}.{}.{}",
                rng.below(256),
                rng.below(256),
                1 + rng.below(254)
            )
        })
        .collect()
}

fn fill_path(template: &str, rng: &mut Rng) -> String {
    let mut p = template
        .replace("{id}", &(100_000 + rng.below(900_000)).to_string())
        .replace("{sku}", &format!("SKU-{:05}", rng.below(60_000)));
    if p.ends_with("/search") {
        const TERMS: [&str; 8] = [
            "boots", "lamp", "desk", "tent", "kettle", "jacket", "monitor", "chair",
        ];
        p.push_str("?q=");
        p.push_str(TERMS[rng.below(TERMS.len() as u64) as usize]);
    } else if p.ends_with("/stock/check") {
        p.push_str(&format!(
            "?sku=SKU-{:05}&warehouse=ams-{}",
            rng.below(60_000),
            1 + rng.below(3)
        ));
    } else if p == "/" {
        p.push_str(&format!("?page={}", 1 + rng.below(5)));
    }
    p
}

/// Which backend entity an operation reaches at `minute`: (logged BackendId,
/// the entity that serves).
fn route(plan: &Plan, oi: usize, minute: i64, rng: &mut Rng) -> (&'static str, usize) {
    if plan.scenario == Scenario::WrongRoute && oi == O_GET_PRODUCT && minute >= plan.incident {
        return (BACKENDS[B_CATALOG_LEGACY].id, B_CATALOG_LEGACY);
    }
    let api = &APIS[OPS[oi].api];
    match api.route {
        Route::ServiceUrl | Route::BaseUrl(_) => ("", api.backend),
        Route::BackendId(b) => {
            let def = &BACKENDS[b];
            if def.pool.is_empty() {
                (def.id, b)
            } else {
                let w: Vec<f64> = def.pool.iter().map(|(_, w)| f64::from(*w)).collect();
                (def.id, def.pool[rng.weighted(&w)].0)
            }
        }
    }
}

fn serve(plan: &Plan, oi: usize, sub: usize, minute: i64, ips: &[String], rng: &mut Rng) -> Req {
    let op = &OPS[oi];
    let t_ms = minute * 60_000 + rng.below(60_000) as i64;
    let path = fill_path(op.template, rng);
    let (backend_id, served) = route(plan, oi, minute, rng);
    let backend_url = format!("{}{}", BACKENDS[served].url, path);
    let ip = if sub == S_PARTNER_ACME {
        "198.51.100.23".to_string()
    } else {
        ips[rng.below(ips.len() as u64) as usize].clone()
    };
    let post = op.method != "GET";
    let mut bt = rng.lognormal(op.median_ms, op.sigma);
    if rng.chance(0.003) {
        bt *= rng.range(3.0, 8.0);
    }
    let mut r = Req {
        t_ms,
        op: oi,
        sub,
        ip,
        corr: rng.uuid(),
        served_by: Some(served),
        backend_id,
        path,
        backend_url,
        code: if op.method == "POST" && op.id.starts_with("create") {
            201
        } else {
            200
        },
        backend_code: None,
        total: 0,
        backend_time: None,
        client_time: rng.below(if post { 9 } else { 4 }) as u32,
        err: None,
        req_size: if post {
            900 + rng.below(2400) as u32
        } else {
            420 + rng.below(380) as u32
        },
        resp_size: (rng.lognormal(if post { 700.0 } else { 2400.0 }, 0.6) as u32).max(180),
        injected: false,
    };
    r.backend_code = Some(r.code);
    let mut overhead = 1.0 + rng.exp(2.5);
    if incident(plan, &mut r, &mut bt, &mut overhead, minute, rng) {
        r.injected = true;
    } else {
        background(&mut r, &mut bt, rng);
    }
    configured_timeout(&mut r, &mut bt, rng);
    if plan.scenario == Scenario::Capacity {
        let cap = plan.capacity(minute);
        if cap > 75.0 {
            overhead += rng.lognormal(8.0 * (cap - 75.0).powf(1.3), 0.4);
            if cap >= 85.0 {
                r.injected = true;
            }
        }
    }
    finish(&mut r, bt, overhead);
    r
}

/// The forward-request timeout in force: 30 s in the orders API policy,
/// 20 s in the users API's retry, else the global 60 s. A slower answer
/// (the rare heavy tail) is cut off with a 504, as the gateway would.
fn configured_timeout(r: &mut Req, bt: &mut f64, rng: &mut Rng) {
    if r.err.is_some() || r.served_by.is_none() {
        return;
    }
    let (limit, scope) = match OPS[r.op].api {
        A_ORDERS => (30_000.0, "api"),
        A_USERS => (20_000.0, "api"),
        _ => (60_000.0, "global"),
    };
    if *bt <= limit {
        return;
    }
    *bt = limit + rng.range(0.0, 40.0);
    let mut e = err("Timeout", "forward-request", "backend", scope, TIMEOUT_MSG);
    e.elapsed = *bt as u32 + 2;
    r.err = Some(e);
    r.code = 504;
    r.backend_code = None;
    r.resp_size = 260;
}

/// Sets TotalTime from the backend time and gateway overhead, and clears
/// backend fields for requests the gateway answered itself.
fn finish(r: &mut Req, bt: f64, overhead: f64) {
    let no_backend = r.served_by.is_none();
    if no_backend {
        r.backend_url.clear();
        r.backend_code = None;
        r.backend_time = None;
        r.total = (overhead as u32).max(1) + r.client_time;
        return;
    }
    let conn_failed = r
        .err
        .is_some_and(|e| e.reason == "BackendConnectionFailure");
    if conn_failed {
        r.backend_code = None;
        r.backend_time = None;
        r.total = bt as u32 + overhead as u32 + r.client_time;
        return;
    }
    let b = bt.max(1.0) as u32;
    r.backend_time = Some(b);
    r.total = b + overhead as u32 + r.client_time;
}

fn err(
    reason: &'static str,
    source: &'static str,
    section: &'static str,
    scope: &'static str,
    message: &'static str,
) -> ErrInfo {
    ErrInfo {
        reason,
        source,
        section,
        scope,
        message,
        elapsed: 0,
    }
}

/// The scenario's incident on this request; true when it changed it.
fn incident(
    plan: &Plan,
    r: &mut Req,
    bt: &mut f64,
    overhead: &mut f64,
    minute: i64,
    rng: &mut Rng,
) -> bool {
    let api = OPS[r.op].api;
    match plan.scenario {
        Scenario::BackendOom if api == A_INVENTORY => {
            if minute >= plan.leak_start && minute < plan.incident && r.op == O_CHECK_STOCK {
                // Garbage-collection pressure while the leak grows.
                let p = (minute - plan.leak_start) as f64
                    / (plan.incident - plan.leak_start).max(1) as f64;
                *bt *= 1.0 + 0.6 * p;
                return false;
            }
            if !plan.oom_phase(minute) {
                return false;
            }
            if plan.restarting(minute) && rng.chance(0.9) {
                let mut e = err(
                    "BackendConnectionFailure",
                    "forward-request",
                    "backend",
                    "global",
                    if rng.chance(0.5) {
                        RESET_MSG
                    } else {
                        CONNECT_MSG
                    },
                );
                *bt = rng.range(2.0, 40.0);
                e.elapsed = *bt as u32 + 2;
                r.err = Some(e);
                r.code = if rng.chance(0.7) { 502 } else { 500 };
                return true;
            }
            let p503 = if r.op == O_CHECK_STOCK { 0.4 } else { 0.12 };
            *bt *= if r.op == O_CHECK_STOCK { 3.0 } else { 1.8 };
            if rng.chance(p503) {
                r.code = 503;
                r.backend_code = Some(503);
                r.resp_size = 310;
            }
            true
        }
        Scenario::PolicyTimeout if api == A_ORDERS && minute >= plan.incident => {
            if *bt > NEW_TIMEOUT_MS {
                *bt = NEW_TIMEOUT_MS + rng.range(0.0, 40.0);
                let mut e = err("Timeout", "forward-request", "backend", "api", TIMEOUT_MSG);
                e.elapsed = *bt as u32 + 2;
                r.err = Some(e);
                r.code = 504;
                r.backend_code = None;
                r.resp_size = 260;
                return true;
            }
            false
        }
        Scenario::WrongRoute if r.op == O_GET_PRODUCT && minute >= plan.incident => {
            // The legacy catalog only knows some old product ids.
            *bt = rng.lognormal(40.0, 0.4);
            if rng.chance(0.88) {
                r.code = 404;
                r.backend_code = Some(404);
                r.resp_size = 240;
            }
            true
        }
        Scenario::AppServiceDeploy
            if r.op == O_GET_PRICE
                && r.served_by == Some(B_CATALOG)
                && plan.broken_build(minute) =>
        {
            // The new build's pricing endpoint fails fast: the app answers
            // 503 Service Unavailable on most calls.
            if rng.chance(0.7) {
                *bt = rng.lognormal(12.0, 0.3);
                r.code = 503;
                r.backend_code = Some(503);
                r.resp_size = 220;
                return true;
            }
            false
        }
        Scenario::NsgBlock if api == A_PAYMENTS && minute >= plan.incident => {
            // SYNs are dropped: the connect attempt gives up after ~21 s.
            *bt = rng.range(20_900.0, 21_200.0);
            let mut e = err(
                "BackendConnectionFailure",
                "forward-request",
                "backend",
                "global",
                CONNECT_MSG,
            );
            e.elapsed = *bt as u32 + 1;
            r.err = Some(e);
            r.code = if rng.chance(0.75) { 500 } else { 502 };
            *overhead += 1.0;
            true
        }
        _ => false,
    }
}

/// Sporadic errors every real instance has.
fn background(r: &mut Req, bt: &mut f64, rng: &mut Rng) {
    let op = &OPS[r.op];
    let x = rng.f64();
    if x < 0.0008 {
        r.code = 500;
        r.backend_code = Some(500);
        r.resp_size = 320;
    } else if x < 0.0010 {
        *bt = rng.range(1.0, 30.0);
        let mut e = err(
            "BackendConnectionFailure",
            "forward-request",
            "backend",
            "global",
            RESET_MSG,
        );
        e.elapsed = *bt as u32 + 1;
        r.err = Some(e);
        r.code = 502;
    } else if op.api == A_PAYMENTS && x < 0.006 {
        let e = err(
            "TokenExpired",
            "validate-jwt",
            "inbound",
            "api",
            "Lifetime validation failed. The token is expired.",
        );
        r.err = Some(e);
        r.code = 401;
        r.served_by = None;
    } else if op.api == A_USERS && op.id == "login" && x < 0.03 {
        r.code = 401;
        r.backend_code = Some(401);
    } else if op.template.contains('{') && op.method == "GET" && x < 0.015 {
        r.code = 404;
        r.backend_code = Some(404);
        r.resp_size = 240;
    } else if op.method != "GET" && x < 0.008 {
        r.code = 400;
        r.backend_code = Some(400);
    } else if op.api == A_CATALOG && x > 0.997 {
        // Client gone before the answer: logged as a 499-like failure.
        let e = err(
            "ClientConnectionFailure",
            "forward-request",
            "backend",
            "global",
            "A task was canceled.",
        );
        r.err = Some(e);
    }
}

/// healthy: one rarely called operation fails once in three calls, which
/// must not read as an incident.
fn low_traffic_op(plan: &Plan, minute: i64, ips: &[String], rng: &mut Rng, batch: &mut Vec<Req>) {
    for (k, offset) in [0i64, 6, 13].into_iter().enumerate() {
        if minute != plan.incident + offset {
            continue;
        }
        let mut r = serve(plan, O_CREATE_SHIPMENT, 1, minute, ips, rng);
        if k == 1 {
            r.code = 500;
            r.backend_code = Some(500);
            r.err = None;
            r.resp_size = 330;
        }
        batch.push(r);
    }
}

/// The starter product's `rate-limit-by-key` (300 s windows per
/// subscription): answers 429 once a subscription is over its calls.
fn rate_limit(plan: &Plan, r: &mut Req, limiter: &mut HashMap<(usize, i64), u32>, rng: &mut Rng) {
    if r.product() != "starter" {
        return;
    }
    let window = r.t_ms.div_euclid(300_000);
    let count = limiter.entry((r.sub, window)).or_insert(0);
    *count += 1;
    let calls = if r.t_ms >= plan.change_ms && plan.scenario == Scenario::RateLimit {
        plan.calls_after
    } else {
        plan.calls_before
    };
    if *count <= calls {
        return;
    }
    r.code = 429;
    r.served_by = None;
    r.backend_id = "";
    r.backend_url.clear();
    r.backend_code = None;
    r.backend_time = None;
    r.err = Some(err(
        "RateLimitExceeded",
        "rate-limit-by-key",
        "inbound",
        "product",
        "Rate limit is exceeded. Try again later.",
    ));
    r.total = 1 + rng.below(3) as u32 + r.client_time;
    r.resp_size = 210;
    r.injected = plan.scenario == Scenario::RateLimit;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(reqs: &[Req], f: impl Fn(&Req) -> bool) -> usize {
        reqs.iter().filter(|r| f(r)).count()
    }

    #[test]
    fn traffic_follows_the_daily_curve_and_scale() {
        let p = Plan::new(Scenario::Healthy, 1, 0.05, 360);
        let reqs = requests(&p);
        let first_hour = count(&reqs, |r| r.minute() < p.start + 60);
        let last_hour = count(&reqs, |r| r.minute() >= p.end - 60);
        assert!(
            last_hour as f64 > 1.6 * first_hour as f64,
            "{first_hour} {last_hour}"
        );
        let bigger = requests(&Plan::new(Scenario::Healthy, 1, 0.1, 360));
        let ratio = bigger.len() as f64 / reqs.len() as f64;
        assert!((1.8..2.2).contains(&ratio), "{ratio}");
        assert!(reqs.windows(2).all(|w| w[0].t_ms <= w[1].t_ms));
        assert!(!reqs.iter().any(|r| r.injected));
    }

    #[test]
    fn no_backend_answer_outlives_its_timeout() {
        let p = Plan::new(Scenario::Healthy, 2, 1.0, 360);
        let reqs = requests(&p);
        let mut cut = 0;
        for r in &reqs {
            let limit = match OPS[r.op].api {
                A_ORDERS => 30_040,
                A_USERS => 20_040,
                _ => 60_040,
            };
            if let Some(b) = r.backend_time {
                assert!(b <= limit, "{} took {b} ms", OPS[r.op].id);
            }
            if r.code == 504 {
                cut += 1;
            }
        }
        // The heavy tail does reach the 30 s timeout now and then.
        assert!(cut > 0 && cut < 20, "{cut}");
    }

    #[test]
    fn background_errors_are_rare() {
        let p = Plan::new(Scenario::Healthy, 3, 0.1, 360);
        let reqs = requests(&p);
        let e5 = count(&reqs, |r| r.code >= 500);
        assert!(e5 > 0);
        assert!(
            (e5 as f64) < 0.004 * reqs.len() as f64,
            "{e5} of {}",
            reqs.len()
        );
    }

    #[test]
    fn incidents_hit_their_target() {
        let p = Plan::new(Scenario::NsgBlock, 1, 0.05, 300);
        let reqs = requests(&p);
        let after: Vec<&Req> = reqs
            .iter()
            .filter(|r| {
                r.api() == "payments-api"
                    && r.minute() >= p.incident
                    && r.err
                        .is_some_and(|e| e.reason == "BackendConnectionFailure")
            })
            .collect();
        assert!(!after.is_empty());
        assert!(
            after
                .iter()
                .all(|r| r.backend_time.is_none() && r.total > 20_000)
        );
        assert_eq!(count(&reqs, |r| r.injected && r.minute() < p.incident), 0);

        let p = Plan::new(Scenario::PolicyTimeout, 1, 0.1, 300);
        let reqs = requests(&p);
        let timeouts = count(&reqs, |r| r.code == 504 && r.injected);
        assert!(timeouts > 10, "{timeouts}");
        assert!(
            reqs.iter()
                .filter(|r| r.code == 504 && r.injected)
                .all(|r| {
                    r.backend_time.is_some_and(|b| (5000..5050).contains(&b))
                        && r.backend_code.is_none()
                })
        );

        let p = Plan::new(Scenario::RateLimit, 1, 0.05, 300);
        let reqs = requests(&p);
        let throttled = count(&reqs, |r| r.code == 429);
        assert!(throttled > 10, "{throttled}");
        assert_eq!(count(&reqs, |r| r.code == 429 && r.t_ms < p.change_ms), 0);
        assert!(
            reqs.iter()
                .filter(|r| r.code == 429)
                .all(|r| r.api() == "catalog-api")
        );
    }
}
