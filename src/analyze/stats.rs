//! The statistics the traffic detectors share: an exact binomial tail test,
//! multiwindow SLO burn rates (Google SRE workbook), robust baselines
//! (median/MAD) and burst extraction from per-minute counts. Pure numbers in,
//! numbers out; nothing here knows about operations or backends.

use statrs::function::beta::checked_beta_reg;

/// `P(X >= k)` for `X ~ Binomial(n, p)`: the chance of seeing at least `k`
/// failures in `n` requests when each fails with probability `p`. Exact (via
/// the regularized incomplete beta function), so tiny tails stay tiny.
pub fn binom_tail(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    checked_beta_reg(k as f64, (n - k + 1) as f64, p).unwrap_or(1.0)
}

/// Median of the values (the mean of the two middle ones for even counts).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let mid = n / 2;
    Some(if n % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// Median and median absolute deviation: a baseline that a spike inside the
/// data cannot drag along (breakdown point 50%).
pub fn median_mad(values: &[f64]) -> Option<(f64, f64)> {
    let med = median(values)?;
    let dev: Vec<f64> = values.iter().map(|x| (x - med).abs()).collect();
    Some((med, median(&dev)?))
}

/// Nearest-rank percentile of an already sorted slice.
pub fn sorted_percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize - 1;
    sorted.get(rank.min(sorted.len() - 1)).copied()
}

/// Nearest-rank percentiles of unsorted values by selection, for
/// ascending `ps` (each selection narrows to the part above the last one):
/// O(n) instead of a sort. Reorders `v`.
pub fn select_percentiles<const N: usize>(v: &mut [u32], ps: [f64; N]) -> [Option<u32>; N] {
    let mut out = [None; N];
    let n = v.len();
    if n == 0 {
        return out;
    }
    let mut lo = 0;
    for (slot, p) in out.iter_mut().zip(ps) {
        let rank = (((p / 100.0) * n as f64).ceil().max(1.0) as usize - 1).min(n - 1);
        if rank < lo {
            // Percentiles must ascend; fall back to the last position.
            *slot = v.get(lo).copied();
            continue;
        }
        let part = &mut v[lo..];
        *slot = Some(*part.select_nth_unstable(rank - lo).1);
        lo = rank;
    }
    out
}

/// Exact percentiles over many values without keeping them: a count per
/// millisecond below `DENSE` and the rare larger values kept aside.
#[derive(Default)]
pub struct ExactHistogram {
    counts: Vec<u32>,
    large: Vec<u32>,
    n: u64,
}

impl ExactHistogram {
    const DENSE: usize = 1 << 16;

    pub fn add_all(&mut self, values: &[u32]) {
        if self.counts.is_empty() && !values.is_empty() {
            self.counts = vec![0; Self::DENSE];
        }
        for &x in values {
            match self.counts.get_mut(x as usize) {
                Some(c) => *c += 1,
                None => self.large.push(x),
            }
        }
        self.n += values.len() as u64;
    }

    /// Nearest-rank percentiles for ascending `ps`.
    pub fn percentiles<const N: usize>(&mut self, ps: [f64; N]) -> [Option<u32>; N] {
        let mut out = [None; N];
        if self.n == 0 {
            return out;
        }
        self.large.sort_unstable();
        let mut value = 0usize;
        let mut seen: u64 = 0;
        for (slot, p) in out.iter_mut().zip(ps) {
            let rank = (((p / 100.0) * self.n as f64).ceil().max(1.0) as u64).min(self.n);
            while value < self.counts.len() && seen + u64::from(self.counts[value]) < rank {
                seen += u64::from(self.counts[value]);
                value += 1;
            }
            *slot = if value < self.counts.len() {
                Some(value as u32)
            } else {
                let i = (rank - seen).saturating_sub(1) as usize;
                self.large.get(i).or(self.large.last()).copied()
            };
        }
        out
    }
}

/// The two window pairs of a multiwindow, multi-burn-rate SLO alert, scaled
/// to the data span: with a day of data they are the workbook's 5m/1h
/// (burn 14.4) and 30m/6h (burn 6); shorter data scales them down.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BurnWindows {
    pub fast_short: usize,
    pub fast_long: usize,
    pub slow_short: usize,
    pub slow_long: usize,
}

/// Burn rate that pages on the fast pair (2% of a 30-day budget in 1 hour).
pub const FAST_BURN: f64 = 14.4;
/// Burn rate that pages on the slow pair (5% of a 30-day budget in 6 hours).
pub const SLOW_BURN: f64 = 6.0;

impl BurnWindows {
    pub fn for_span(span_minutes: usize) -> BurnWindows {
        let fast_long = (span_minutes / 24).clamp(5, 60);
        let slow_long = (span_minutes / 4).clamp(30, 360);
        BurnWindows {
            fast_short: (fast_long / 12).max(1),
            fast_long,
            slow_short: (slow_long / 12).max(2),
            slow_long,
        }
    }
}

/// Prefix sums of requests and failures over dense minutes, for O(1)
/// window sums.
pub struct Prefix {
    n: Vec<u64>,
    k: Vec<u64>,
}

impl Prefix {
    pub fn new(n: &[u64], k: &[u64]) -> Prefix {
        let mut pn = Vec::with_capacity(n.len() + 1);
        let mut pk = Vec::with_capacity(k.len() + 1);
        pn.push(0);
        pk.push(0);
        for i in 0..n.len() {
            pn.push(pn[i] + n[i]);
            pk.push(pk[i] + k.get(i).copied().unwrap_or(0));
        }
        Prefix { n: pn, k: pk }
    }
    /// Requests and failures in dense minutes `[a, b)` (clamped).
    pub fn sum(&self, a: usize, b: usize) -> (u64, u64) {
        let len = self.n.len() - 1;
        let (a, b) = (a.min(len), b.min(len));
        if b <= a {
            return (0, 0);
        }
        (self.n[b] - self.n[a], self.k[b] - self.k[a])
    }
    /// Burn rate of the window of `w` minutes ending with minute `i`.
    pub fn burn(&self, i: usize, w: usize, budget: f64) -> f64 {
        let (n, k) = self.sum((i + 1).saturating_sub(w), i + 1);
        if n == 0 || budget <= 0.0 {
            0.0
        } else {
            k as f64 / n as f64 / budget
        }
    }
}

/// Burn rates reached during a burst: for each pair, the largest
/// `min(short, long)` over the burst's minutes (both windows must burn for
/// the alert to fire).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Burn {
    pub fast: f64,
    pub slow: f64,
}

impl Burn {
    pub fn alerts(&self) -> bool {
        self.fast >= FAST_BURN || self.slow >= SLOW_BURN
    }
}

/// Tuning of burst extraction.
#[derive(Clone, Copy, Debug)]
pub struct BurstParams {
    /// Fewest failures a burst may have.
    pub min_events: u64,
    /// Significance a whole burst must reach (already corrected for the
    /// number of minutes and series tested).
    pub alpha: f64,
    /// The burst's failure rate must be at least this multiple of baseline.
    pub min_ratio: f64,
    /// The SLO the burn rate is measured against (0.999 = 99.9%).
    pub slo: f64,
}

impl Default for BurstParams {
    fn default() -> Self {
        BurstParams {
            min_events: 5,
            alpha: 1e-6,
            min_ratio: 3.0,
            slo: 0.999,
        }
    }
}

/// A window where failures run significantly above their own baseline.
#[derive(Clone, Debug, PartialEq)]
pub struct Burst {
    /// Dense indices `[start, end)`.
    pub start: usize,
    pub end: usize,
    pub requests: u64,
    pub events: u64,
    /// Failure rate outside every burst (the baseline it is tested against).
    pub baseline: f64,
    pub p_value: f64,
    pub peak_index: usize,
    pub peak_rate: f64,
    pub burn: Burn,
}

impl Burst {
    /// Failures beyond what the baseline explains.
    pub fn excess(&self) -> f64 {
        self.events as f64 - self.baseline * self.requests as f64
    }

    pub fn rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.events as f64 / self.requests as f64
        }
    }
}

/// Finds bursts of failures in dense per-minute counts `n` (requests) and
/// `k` (failures). Two passes: candidate minutes against the whole history,
/// then the baseline is re-estimated without the candidates (so a spike does
/// not raise its own baseline) and each merged window must pass an exact
/// binomial tail test, a minimum count and an effect size. Burn rates are
/// attached for the caller to gate on.
pub fn bursts(n: &[u64], k: &[u64], params: &BurstParams) -> Vec<Burst> {
    let len = n.len().min(k.len());
    if len == 0 {
        return Vec::new();
    }
    let pre = Prefix::new(&n[..len], &k[..len]);
    let (total_n, total_k) = pre.sum(0, len);
    if total_k < params.min_events || total_n == 0 {
        return Vec::new();
    }
    let runs = candidate_runs(&pre, len, robust_rate(&pre, len));
    if runs.is_empty() {
        return Vec::new();
    }
    let baseline = baseline_without(&pre, len, &runs);
    let runs = candidate_runs(&pre, len, baseline);
    let baseline = baseline_without(&pre, len, &runs);
    let span = BurnWindows::for_span(len);
    let budget = 1.0 - params.slo;
    // A window passes with enough failures, a large enough effect and a
    // tail probability below alpha.
    let passes = |s: usize, e: usize| -> Option<(u64, u64, f64)> {
        let (wn, wk) = pre.sum(s, e);
        if wk < params.min_events || wn == 0 {
            return None;
        }
        if (wk as f64 / wn as f64) < params.min_ratio * baseline {
            return None;
        }
        let p = binom_tail(wk, wn, baseline);
        (p < params.alpha).then_some((wn, wk, p))
    };
    // Bridge short gaps between runs, keep the significant ones, widen
    // those (the widening may absorb weaker fragments nearby, never a run
    // of its own), then merge what the widening made touch.
    let mut bridged: Vec<(usize, usize)> = Vec::new();
    for (s, e) in runs {
        match bridged.last_mut() {
            Some(last) if s <= last.1 + 3.max((last.1 - last.0 + e - s) / 4) => last.1 = e,
            _ => bridged.push((s, e)),
        }
    }
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for run in bridged.into_iter().filter(|r| passes(r.0, r.1).is_some()) {
        let floor = merged.last().map_or(0, |m| m.1);
        let (s, e) = extend(&pre, len, run, baseline, floor);
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    let mut out = Vec::new();
    for (s, e) in merged {
        let Some((wn, wk, p_value)) = passes(s, e) else {
            continue;
        };
        let mut peak_index = s;
        let mut peak_rate = -1.0;
        for i in s..e {
            let (mn, mk) = pre.sum(i, i + 1);
            let r = if mn == 0 { 0.0 } else { mk as f64 / mn as f64 };
            if mk > 0 && r > peak_rate {
                peak_rate = r;
                peak_index = i;
            }
        }
        let mut burn = Burn::default();
        // The long windows keep burning a little after the burst ends.
        for i in s..(e + span.fast_short).min(len) {
            let fast =
                pre.burn(i, span.fast_short, budget)
                    .min(pre.burn(i, span.fast_long, budget));
            let slow =
                pre.burn(i, span.slow_short, budget)
                    .min(pre.burn(i, span.slow_long, budget));
            burn.fast = burn.fast.max(fast);
            burn.slow = burn.slow.max(slow);
        }
        out.push(Burst {
            start: s,
            end: e,
            requests: wn,
            events: wk,
            baseline,
            p_value,
            peak_index,
            peak_rate: peak_rate.max(0.0),
            burn,
        });
    }
    out
}

/// Widens a burst to failing minutes just outside it, where the stretch
/// between still fails at least a third as often as the burst (and 3x the
/// baseline): sparse traffic makes the first and last minutes of an
/// incident look quiet one by one. Looks up to an hour each way, never
/// back past the previous burst.
fn extend(
    pre: &Prefix,
    len: usize,
    run: (usize, usize),
    baseline: f64,
    floor: usize,
) -> (usize, usize) {
    let (s, e) = run;
    let (n, k) = pre.sum(s, e);
    if n == 0 {
        return run;
    }
    let threshold = (k as f64 / n as f64 / 3.0).max(3.0 * baseline);
    let fails = |i: usize| pre.sum(i, i + 1).1 > 0;
    let rate = |a: usize, b: usize| {
        let (n, k) = pre.sum(a, b);
        if n == 0 { 0.0 } else { k as f64 / n as f64 }
    };
    let mut start = s;
    for j in 1..=60 {
        let Some(a) = s.checked_sub(j) else { break };
        if a < floor {
            break;
        }
        if fails(a) && rate(a, s) >= threshold {
            start = a;
        }
    }
    let mut end = e;
    for j in 1..=60 {
        let b = e + j;
        if b > len {
            break;
        }
        if fails(b - 1) && rate(e, b) >= threshold {
            end = b;
        }
    }
    (start, end)
}

/// A first baseline that an incident covering up to half the data cannot
/// inflate: the span is cut into eight blocks and the failures of the
/// quieter half of the blocks (by failure rate) are pooled. Blocks without
/// requests are skipped; with fewer than four blocks the plain rate is used.
fn robust_rate(pre: &Prefix, len: usize) -> f64 {
    let (total_n, total_k) = pre.sum(0, len);
    let plain = (total_k as f64 + 0.5) / (total_n as f64 + 1.0);
    let size = len.div_ceil(8).max(1);
    let mut blocks: Vec<(u64, u64)> = (0..len)
        .step_by(size)
        .map(|a| pre.sum(a, a + size))
        .filter(|(n, _)| *n > 0)
        .collect();
    if blocks.len() < 4 {
        return plain;
    }
    blocks.sort_by(|a, b| (a.1 as f64 / a.0 as f64).total_cmp(&(b.1 as f64 / b.0 as f64)));
    let half = &blocks[..blocks.len() / 2];
    let (n, k) = half
        .iter()
        .fold((0, 0), |acc, b| (acc.0 + b.0, acc.1 + b.1));
    ((k as f64 + 0.5) / (n as f64 + 1.0)).min(plain)
}

/// Minutes whose neighbourhood is unlikely under rate `p` (p < 0.01), merged
/// into runs (gaps of up to 3 quiet minutes are bridged) and trimmed to
/// minutes that actually failed above baseline.
fn candidate_runs(pre: &Prefix, len: usize, p: f64) -> Vec<(usize, usize)> {
    // The neighbourhood widens for sparse series so it holds about ten
    // requests (3 minutes at 5/min and more, up to 11 minutes).
    let (total_n, _) = pre.sum(0, len);
    let per_minute = total_n as f64 / len.max(1) as f64;
    let half = ((5.0 / per_minute.max(0.1)).ceil() as usize).clamp(1, 5);
    let mut hot = vec![false; len];
    for (i, h) in hot.iter_mut().enumerate() {
        let (n3, k3) = pre.sum(i.saturating_sub(half), i + half + 1);
        if k3 < 2 || (k3 as f64) <= 2.0 * n3 as f64 * p {
            continue;
        }
        *h = binom_tail(k3, n3, p) < 1e-2;
    }
    let above = |i: usize| {
        let (mn, mk) = pre.sum(i, i + 1);
        mk > 0 && mk as f64 > 2.0 * mn as f64 * p && binom_tail(mk, mn, p) < 0.05
    };
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < len {
        if !hot[i] {
            i += 1;
            continue;
        }
        let mut e = i + 1;
        let mut gap = 0;
        let mut j = i + 1;
        while j < len && gap <= 3 {
            if hot[j] {
                e = j + 1;
                gap = 0;
            } else {
                gap += 1;
            }
            j += 1;
        }
        let (mut s, mut t) = (i, e);
        while s < t && !above(s) {
            s += 1;
        }
        while t > s && !above(t - 1) {
            t -= 1;
        }
        if s < t {
            // Sparse traffic leaves quiet minutes inside one incident:
            // bridge gaps up to half the length of the runs on either side.
            match runs.last_mut() {
                Some(last) if s <= last.1 + 3.max((last.1 - last.0 + t - s) / 2) => last.1 = t,
                _ => runs.push((s, t)),
            }
        }
        i = e;
    }
    runs
}

/// Failure rate outside the runs (padded by 5 minutes each side), smoothed
/// so an operation that never failed still has a small, non-zero baseline.
fn baseline_without(pre: &Prefix, len: usize, runs: &[(usize, usize)]) -> f64 {
    let (mut n, mut k) = pre.sum(0, len);
    let mut last_end = 0;
    for &(s, e) in runs {
        let a = s.saturating_sub(5).max(last_end);
        let b = (e + 5).min(len);
        if b > a {
            let (rn, rk) = pre.sum(a, b);
            n -= rn;
            k -= rk;
            last_end = b;
        }
    }
    (k as f64 + 0.5) / (n as f64 + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_tail_matches_hand_values() {
        // P(X >= 1) for n = 3, p = 0.5 is 7/8.
        assert!((binom_tail(1, 3, 0.5) - 0.875).abs() < 1e-12);
        // P(X >= 3) for n = 3, p = 0.5 is 1/8.
        assert!((binom_tail(3, 3, 0.5) - 0.125).abs() < 1e-12);
        assert_eq!(binom_tail(0, 10, 0.1), 1.0);
        assert_eq!(binom_tail(11, 10, 0.1), 0.0);
        // 25 failures in 65 at a 0.2% baseline is astronomically unlikely.
        assert!(binom_tail(25, 65, 0.002) < 1e-40);
    }

    #[test]
    fn median_and_mad_ignore_one_outlier() {
        let (m, mad) = median_mad(&[10.0, 11.0, 9.0, 10.0, 1000.0]).unwrap();
        assert_eq!(m, 10.0);
        assert_eq!(mad, 1.0);
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn selection_and_histogram_percentiles_match_sorting() {
        let mut v: Vec<u32> = (1..=1000).rev().collect();
        v.push(100_000);
        v.push(70_000);
        let mut sorted = v.clone();
        sorted.sort_unstable();
        let want = [50.0, 95.0, 99.0, 99.9].map(|p| sorted_percentile(&sorted, p));
        let mut h = ExactHistogram::default();
        h.add_all(&v[..500]);
        h.add_all(&v[500..]);
        assert_eq!(h.percentiles([50.0, 95.0, 99.0, 99.9]), want);
        assert_eq!(select_percentiles(&mut v, [50.0, 95.0, 99.0, 99.9]), want);
        assert_eq!(select_percentiles(&mut [], [50.0]), [None]);
        assert_eq!(ExactHistogram::default().percentiles([50.0]), [None]);
    }

    #[test]
    fn burn_windows_scale_with_span() {
        let day = BurnWindows::for_span(1440);
        assert_eq!((day.fast_short, day.fast_long), (5, 60));
        assert_eq!((day.slow_short, day.slow_long), (30, 360));
        let short = BurnWindows::for_span(120);
        assert_eq!((short.fast_short, short.fast_long), (1, 5));
        assert_eq!((short.slow_short, short.slow_long), (2, 30));
    }

    fn flat(len: usize, n: u64) -> (Vec<u64>, Vec<u64>) {
        // 0.2% background failures, spread evenly (1 every 5 minutes at 100/min).
        let k = (0..len).map(|i| u64::from(i % 5 == 0)).collect();
        (vec![n; len], k)
    }

    #[test]
    fn finds_a_ten_minute_burst_and_its_edges() {
        let (n, mut k) = flat(600, 100);
        for x in k.iter_mut().skip(300).take(10) {
            *x = 38;
        }
        let b = bursts(&n, &k, &BurstParams::default());
        assert_eq!(b.len(), 1, "{b:?}");
        assert_eq!((b[0].start, b[0].end), (300, 310));
        assert!(b[0].baseline < 0.003, "baseline {}", b[0].baseline);
        assert!(b[0].burn.alerts());
        assert!((b[0].peak_rate - 0.38).abs() < 1e-9);
    }

    #[test]
    fn an_incident_lasting_to_the_end_of_sparse_data_is_one_burst() {
        // Two requests a minute; from minute 180 on, 28% time out.
        let n = vec![2u64; 300];
        let k: Vec<u64> = (0..300u64)
            .map(|i| u64::from(i >= 180 && (i * 7) % 25 < 14))
            .collect();
        let b = bursts(&n, &k, &BurstParams::default());
        assert_eq!(b.len(), 1, "{b:?}");
        assert!(b[0].start <= 185 && b[0].end >= 295, "{b:?}");
        assert!(b[0].burn.alerts());
    }

    #[test]
    fn one_failure_in_three_requests_is_not_a_burst() {
        let mut n = vec![0u64; 600];
        let mut k = vec![0u64; 600];
        n[100] = 3;
        k[100] = 1;
        n[400] = 2;
        assert!(bursts(&n, &k, &BurstParams::default()).is_empty());
    }

    #[test]
    fn steady_background_with_swings_is_quiet() {
        // Daily-like swing of volume, failures proportional to volume.
        let n: Vec<u64> = (0..1440)
            .map(|i| {
                let x = (i as f64 / 1440.0 * std::f64::consts::TAU).sin();
                (200.0 + 150.0 * x) as u64
            })
            .collect();
        let k: Vec<u64> = n
            .iter()
            .enumerate()
            .map(|(i, &v)| u64::from((i * 7919) % 1000 < v as usize))
            .collect();
        assert!(bursts(&n, &k, &BurstParams::default()).is_empty());
    }
}
