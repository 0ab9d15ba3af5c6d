//! A mergeable latency histogram with a stated relative error: the one way
//! a per-minute cell holds latencies, whether it was filled from local log
//! rows or from a KQL answer (see `collect::kql`).
//!
//! Log-spaced buckets (DDSketch-style): bucket 0 holds 0 ms; bucket `b ≥ 1`
//! holds the latencies `x` with `γ^(b-1) ≤ x < γ^b`, where
//! `γ = (1 + α) / (1 − α)` and `α = RELATIVE_ERROR` (1%). The index is
//! `1 + floor(ln(x) · INV_LN_GAMMA)`, which a KQL engine computes with the
//! same double arithmetic (`1 + toint(log(todouble(x)) * INV_LN_GAMMA)`), so a
//! cell filled by Log Analytics has the same buckets as one filled here.
//! Merging adds counts bucket by bucket, exactly: a window's histogram is the
//! sum of its minutes', whatever the order. A percentile is the
//! representative of the bucket holding the nearest-rank value, rounded to a
//! whole millisecond and kept inside the bucket: within `α` of the true
//! value plus at most half a millisecond of rounding (exact below 50 ms,
//! where a bucket holds at most one whole millisecond).
//!
//! Size: at most `MAX_BUCKET + 1` buckets however many requests (1,110 for
//! the whole `u32` millisecond range), a few dozen in a typical minute.

use std::sync::LazyLock;

/// The relative error every percentile read from a histogram carries.
pub const RELATIVE_ERROR: f64 = 0.01;

/// `1 / ln(γ)` with `γ = (1 + α) / (1 − α)`: the factor KQL multiplies
/// `log(x)` by (printed in the query with all its digits).
pub const INV_LN_GAMMA: f64 = 49.998_333_288_886_78;

/// The bucket of `u32::MAX` ms.
pub const MAX_BUCKET: u16 = 1109;

/// Buckets of every latency below this, precomputed (the per-row path).
const TABLE: usize = 1 << 16;

static BUCKETS: LazyLock<Vec<u16>> =
    LazyLock::new(|| (0..TABLE as u32).map(bucket_by_log).collect());

fn bucket_by_log(ms: u32) -> u16 {
    if ms == 0 {
        return 0;
    }
    let b = 1.0 + (f64::from(ms).ln() * INV_LN_GAMMA).floor();
    b.clamp(1.0, f64::from(MAX_BUCKET)) as u16
}

/// The bucket of a latency in milliseconds.
#[inline]
pub fn bucket_of(ms: u32) -> u16 {
    match BUCKETS.get(ms as usize) {
        Some(&b) => b,
        None => bucket_by_log(ms),
    }
}

/// `γ`, from the constant the buckets use.
fn gamma() -> f64 {
    (1.0 / INV_LN_GAMMA).exp()
}

/// Every bucket's value, computed once ([`value_by_pow`] per bucket):
/// percentiles read thousands of them per analysis.
static VALUES: LazyLock<Vec<u32>> = LazyLock::new(|| (0..=MAX_BUCKET).map(value_by_pow).collect());

/// The whole milliseconds a bucket stands for: the value with the least
/// relative error to every latency in it, rounded and kept inside it.
#[inline]
pub fn value_of(bucket: u16) -> u32 {
    match VALUES.get(usize::from(bucket)) {
        Some(&v) => v,
        None => value_by_pow(bucket),
    }
}

fn value_by_pow(bucket: u16) -> u32 {
    if bucket == 0 {
        return 0;
    }
    let g = gamma();
    let lo = g.powi(i32::from(bucket) - 1);
    let hi = lo * g;
    let rep = 2.0 * lo * hi / (lo + hi);
    // Whole milliseconds inside [lo, hi): ceil(lo) ..= ceil(hi) - 1.
    let first = lo.ceil();
    let last = (hi.ceil() - 1.0).max(first);
    rep.round().clamp(first, last).min(f64::from(u32::MAX)) as u32
}

/// Counts per bucket, ascending by bucket, no zero counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    bins: Vec<(u16, u32)>,
    count: u64,
}

impl LatencyHistogram {
    /// Counts one latency.
    #[inline]
    pub fn add(&mut self, ms: u32) {
        self.add_bucket(bucket_of(ms), 1);
    }

    /// Adds `n` to a bucket (as read from a KQL answer). Buckets past
    /// `MAX_BUCKET` are counted in the last one.
    pub fn add_bucket(&mut self, bucket: u16, n: u32) {
        if n == 0 {
            return;
        }
        let bucket = bucket.min(MAX_BUCKET);
        self.count += u64::from(n);
        // Rows arrive with similar latencies: try the end first.
        match self.bins.last_mut() {
            Some(last) if last.0 == bucket => {
                last.1 = last.1.saturating_add(n);
                return;
            }
            Some(last) if last.0 < bucket => {
                self.bins.push((bucket, n));
                return;
            }
            None => {
                self.bins.push((bucket, n));
                return;
            }
            _ => {}
        }
        match self.bins.binary_search_by_key(&bucket, |b| b.0) {
            Ok(i) => {
                if let Some(b) = self.bins.get_mut(i) {
                    b.1 = b.1.saturating_add(n);
                }
            }
            Err(i) => self.bins.insert(i, (bucket, n)),
        }
    }

    /// Adds another histogram's counts (exact; order does not matter).
    pub fn merge(&mut self, other: &LatencyHistogram) {
        if other.bins.is_empty() {
            return;
        }
        if self.bins.is_empty() {
            self.clone_from(other);
            return;
        }
        let (a, b) = (&self.bins, &other.bins);
        let mut out = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
            if x.0 == y.0 {
                out.push((x.0, x.1.saturating_add(y.1)));
                i += 1;
                j += 1;
            } else if x.0 < y.0 {
                out.push(x);
                i += 1;
            } else {
                out.push(y);
                j += 1;
            }
        }
        out.extend_from_slice(a.get(i..).unwrap_or_default());
        out.extend_from_slice(b.get(j..).unwrap_or_default());
        self.bins = out;
        self.count += other.count;
    }

    /// Latencies counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// (bucket, count), ascending by bucket.
    pub fn bins(&self) -> &[(u16, u32)] {
        &self.bins
    }

    /// Nearest-rank percentiles for ascending `ps` (0–100), each within the
    /// stated relative error of the exact one.
    pub fn percentiles<const N: usize>(&self, ps: [f64; N]) -> [Option<u32>; N] {
        nearest_rank(self.count, ps, self.bins.iter().copied())
    }

    pub fn percentile(&self, p: f64) -> Option<u32> {
        self.percentiles([p])[0]
    }

    /// How many latencies fall in `[lo, hi]` ms, by bucket value (a bucket
    /// counts when its value does).
    pub fn count_between(&self, lo: u32, hi: u32) -> u64 {
        self.bins
            .iter()
            .filter(|(b, _)| (lo..=hi).contains(&value_of(*b)))
            .map(|(_, n)| u64::from(*n))
            .sum()
    }

    /// The largest latency's bucket value.
    pub fn max(&self) -> Option<u32> {
        self.bins.last().map(|(b, _)| value_of(*b))
    }

    /// Approximate mean (bucket values weighted by count).
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| {
            self.bins
                .iter()
                .map(|(b, n)| f64::from(value_of(*b)) * f64::from(*n))
                .sum::<f64>()
                / self.count as f64
        })
    }
}

/// A histogram being filled row by row: one counter per bucket (a fixed
/// 4.4 KB once it has counted anything, whatever the rows), so a latency
/// costs an index and an add with no search or insert; [`flush_into`](Self::flush_into) moves the counts
/// into a [`LatencyHistogram`] (exactly: the same buckets and counts as
/// adding each latency there) and leaves it empty.
#[derive(Debug)]
pub struct DenseCounts {
    counts: Box<[u32]>,
    /// The lowest and highest bucket touched since the last flush.
    lo: u16,
    hi: u16,
    /// Buckets touched (non-zero) since the last flush.
    distinct: u32,
    total: u64,
}

impl Default for DenseCounts {
    /// Empty, allocating its counters at the first latency.
    fn default() -> Self {
        DenseCounts {
            counts: Box::default(),
            lo: MAX_BUCKET,
            hi: 0,
            distinct: 0,
            total: 0,
        }
    }
}

impl DenseCounts {
    /// Counts one latency.
    #[inline]
    pub fn add(&mut self, ms: u32) {
        let b = bucket_of(ms);
        if self.counts.is_empty() {
            self.allocate();
        }
        if let Some(c) = self.counts.get_mut(usize::from(b)) {
            self.distinct += u32::from(*c == 0);
            *c = c.saturating_add(1);
            self.lo = self.lo.min(b);
            self.hi = self.hi.max(b);
            self.total += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Counts every latency of `h` (bucket by bucket, exactly as
    /// [`LatencyHistogram::merge`] would).
    pub fn add_histogram(&mut self, h: &LatencyHistogram) {
        let (Some(&(first, _)), Some(&(last, _))) = (h.bins.first(), h.bins.last()) else {
            return;
        };
        if self.counts.is_empty() {
            self.allocate();
        }
        for &(b, n) in &h.bins {
            if let Some(c) = self.counts.get_mut(usize::from(b)) {
                self.distinct += u32::from(*c == 0);
                *c = c.saturating_add(n);
            }
        }
        self.lo = self.lo.min(first);
        self.hi = self.hi.max(last);
        self.total += h.count;
    }

    #[cold]
    fn allocate(&mut self) {
        self.counts = vec![0; usize::from(MAX_BUCKET) + 1].into_boxed_slice();
    }

    /// Adds every count to `h` and empties this. Costs the touched range
    /// (at most `MAX_BUCKET + 1` counters) plus the merge.
    pub fn flush_into(&mut self, h: &mut LatencyHistogram) {
        if self.total == 0 {
            return;
        }
        let (lo, hi) = (usize::from(self.lo), usize::from(self.hi));
        let mut bins = Vec::with_capacity(self.distinct as usize);
        if let Some(range) = self.counts.get_mut(lo..=hi) {
            for (b, c) in (lo..).zip(range.iter_mut()) {
                if *c != 0 {
                    bins.push((b as u16, *c));
                    *c = 0;
                }
            }
        }
        let filled = LatencyHistogram {
            bins,
            count: self.total,
        };
        if h.is_empty() {
            *h = filled;
        } else {
            h.merge(&filled);
        }
        self.lo = MAX_BUCKET;
        self.hi = 0;
        self.distinct = 0;
        self.total = 0;
    }

    /// Latencies counted.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Nearest-rank percentiles for ascending `ps`, exactly what
    /// [`LatencyHistogram::percentiles`] gives for the histogram
    /// [`flush_into`](Self::flush_into) would make, without making it.
    pub fn percentiles<const N: usize>(&self, ps: [f64; N]) -> [Option<u32>; N] {
        let lo = usize::from(self.lo);
        let range = self
            .counts
            .get(lo..=usize::from(self.hi))
            .unwrap_or_default();
        let bins = (lo..)
            .zip(range)
            .filter(|(_, n)| **n != 0)
            .map(|(b, &n)| (b as u16, n));
        nearest_rank(self.total, ps, bins)
    }

    /// Adds every count of `other`.
    pub fn add_counts(&mut self, other: &DenseCounts) {
        if other.total == 0 {
            return;
        }
        if self.counts.is_empty() {
            self.allocate();
        }
        let (lo, hi) = (usize::from(other.lo), usize::from(other.hi));
        let from = other.counts.get(lo..=hi).unwrap_or_default();
        if let Some(into) = self.counts.get_mut(lo..=hi) {
            for (c, &n) in into.iter_mut().zip(from) {
                self.distinct += u32::from(*c == 0 && n != 0);
                *c = c.saturating_add(n);
            }
        }
        self.lo = self.lo.min(other.lo);
        self.hi = self.hi.max(other.hi);
        self.total += other.total;
    }

    /// Empties this without making a histogram.
    pub fn clear(&mut self) {
        if self.total == 0 {
            return;
        }
        let (lo, hi) = (usize::from(self.lo), usize::from(self.hi));
        if let Some(range) = self.counts.get_mut(lo..=hi) {
            range.fill(0);
        }
        self.lo = MAX_BUCKET;
        self.hi = 0;
        self.distinct = 0;
        self.total = 0;
    }
}

/// Nearest-rank percentiles for ascending `ps` (0–100) of `count`
/// latencies in `bins` ((bucket, count), ascending): each the value of the
/// bucket holding its rank.
fn nearest_rank<const N: usize>(
    count: u64,
    ps: [f64; N],
    mut bins: impl Iterator<Item = (u16, u32)>,
) -> [Option<u32>; N] {
    let mut out = [None; N];
    if count == 0 {
        return out;
    }
    let mut seen = 0u64;
    let mut current: Option<u16> = None;
    for (slot, p) in out.iter_mut().zip(ps) {
        let rank = (((p / 100.0) * count as f64).ceil().max(1.0) as u64).min(count);
        while seen < rank {
            match bins.next() {
                Some((b, n)) => {
                    seen += u64::from(n);
                    current = Some(b);
                }
                None => break,
            }
        }
        *slot = current.map(value_of);
    }
    out
}

/// Counts histograms into a per-thread dense counter and hands it to `f`
/// (their sum: percentiles can be read off it without building the
/// histogram), then empties it.
pub fn with_sum<'a, R>(
    hs: impl IntoIterator<Item = &'a LatencyHistogram>,
    f: impl FnOnce(&mut DenseCounts) -> R,
) -> R {
    thread_local! {
        static SCRATCH: std::cell::RefCell<DenseCounts> = std::cell::RefCell::default();
    }
    let run = |d: &mut DenseCounts| {
        for h in hs {
            d.add_histogram(h);
        }
        let r = f(d);
        d.clear();
        r
    };
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut d) => run(&mut d),
        Err(_) => run(&mut DenseCounts::default()),
    })
}

impl FromIterator<u32> for LatencyHistogram {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        let mut h = LatencyHistogram::default();
        for x in iter {
            h.add(x);
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(v: &mut [u32], p: f64) -> u32 {
        v.sort_unstable();
        let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize - 1;
        v[rank.min(v.len() - 1)]
    }

    #[test]
    fn the_constant_is_one_over_ln_gamma() {
        let g = (1.0 + RELATIVE_ERROR) / (1.0 - RELATIVE_ERROR);
        assert!((1.0 / g.ln() - INV_LN_GAMMA).abs() < 1e-9);
        assert_eq!(bucket_by_log(u32::MAX), MAX_BUCKET);
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 1);
    }

    /// A deterministic pseudo-random sequence for the property tests.
    fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    /// `sum` of histograms equals merging them one by one.
    #[test]
    fn sum_equals_merging() {
        let mut next = xorshift(0x5151_7272);
        for round in 0..200 {
            let parts: Vec<LatencyHistogram> = (0..next() % 8)
                .map(|_| {
                    let base = next() % 3000;
                    (0..next() % 50)
                        .map(|_| (base + next() % 4000) as u32)
                        .collect()
                })
                .collect();
            let mut merged = LatencyHistogram::default();
            for p in &parts {
                merged.merge(p);
            }
            // The sum `with_sum` hands over is what merging them all gives.
            let summed = with_sum(&parts, |d| {
                let mut out = LatencyHistogram::default();
                d.flush_into(&mut out);
                out
            });
            assert_eq!(summed, merged, "round {round}");
        }
    }

    /// Merging gives what adding every latency to one histogram gives,
    /// whichever side holds more buckets or new ones.
    #[test]
    fn merge_equals_adding_everything() {
        let mut next = xorshift(0x1234_5678_9abc);
        for round in 0..500 {
            let mut whole = LatencyHistogram::default();
            let mut acc = LatencyHistogram::default();
            for _ in 0..1 + next() % 6 {
                let spread = 1 + next() % 5000;
                let base = next() % 2000;
                let part: LatencyHistogram = (0..next() % 60)
                    .map(|_| (base + next() % spread) as u32)
                    .collect();
                for &(b, n) in part.bins() {
                    whole.add_bucket(b, n);
                }
                acc.merge(&part);
                assert_eq!(acc, whole, "round {round}");
            }
        }
    }

    /// Dense counts flushed (several times, into a histogram that already
    /// holds counts) equal adding every latency to the histogram itself.
    /// A latency near the edges of the bucket range or anywhere in the
    /// table's: 0-2 ms a quarter of the time, the top of `u32` another.
    fn edgy_latency(next: &mut impl FnMut() -> u64) -> u32 {
        match next() % 4 {
            0 => (next() % 3) as u32,
            1 => u32::MAX - (next() % 2) as u32,
            _ => (next() % 70_000) as u32,
        }
    }

    /// Percentiles read off a dense counter (filled by adds, histograms
    /// and other counters, through `with_sum` too) are those of the
    /// histogram it would flush to, and clearing leaves it empty.
    #[test]
    fn dense_percentiles_are_the_histograms() {
        let mut next = xorshift(0x2545_f491);
        let ps = [0.0, 1.0, 50.0, 95.0, 99.0, 99.9, 100.0];
        for round in 0..300 {
            let mut want = LatencyHistogram::default();
            let mut dense = DenseCounts::default();
            let mut parts = Vec::new();
            for _ in 0..next() % 4 {
                let mut h = LatencyHistogram::default();
                for _ in 0..next() % 300 {
                    let ms = edgy_latency(&mut next);
                    h.add(ms);
                    want.add(ms);
                }
                parts.push(h);
            }
            for h in &parts {
                let mut other = DenseCounts::default();
                other.add_histogram(h);
                dense.add_counts(&other);
            }
            assert_eq!(dense.count(), want.count(), "round {round}");
            assert_eq!(dense.percentiles(ps), want.percentiles(ps), "round {round}");
            let via_sum = with_sum(&parts, |d| d.percentiles(ps));
            assert_eq!(via_sum, want.percentiles(ps), "round {round}");
            dense.clear();
            assert!(dense.is_empty() && dense.counts.iter().all(|&c| c == 0));
            assert_eq!(dense.percentiles(ps), [None; 7]);
        }
    }

    #[test]
    fn dense_counts_flush_to_what_adding_gives() {
        let mut next = xorshift(0x9e37_79b9);
        for round in 0..200 {
            let mut want = LatencyHistogram::default();
            let mut got = LatencyHistogram::default();
            let mut dense = DenseCounts::default();
            for _ in 0..next() % 400 {
                let ms = edgy_latency(&mut next);
                want.add(ms);
                dense.add(ms);
                if next().is_multiple_of(50) {
                    dense.flush_into(&mut got);
                    assert!(dense.is_empty());
                }
            }
            dense.flush_into(&mut got);
            assert_eq!(got, want, "round {round}");
            assert!(dense.counts.iter().all(|&c| c == 0));
        }
    }

    #[test]
    fn table_and_formula_agree() {
        for ms in [1, 2, 3, 49, 50, 51, 999, 1000, 30_000, 65_535] {
            assert_eq!(bucket_of(ms), bucket_by_log(ms), "{ms}");
        }
        assert_eq!(bucket_of(65_536), bucket_by_log(65_536));
    }

    #[test]
    fn every_value_is_within_the_stated_error() {
        let mut x = 0u32;
        while x < 5_000_000 {
            let v = value_of(bucket_of(x));
            let err = (f64::from(v) - f64::from(x)).abs();
            assert!(
                err <= RELATIVE_ERROR * f64::from(x) + 0.5 + 1e-9,
                "{x} -> {v} (bucket {})",
                bucket_of(x)
            );
            if x < 50 {
                assert_eq!(v, x, "exact below 50 ms");
            }
            x += 1 + x / 97;
        }
    }

    #[test]
    fn percentiles_within_error_and_merge_is_exact() {
        // A skewed spread: most fast, a slow tail.
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        let mut v: Vec<u32> = (0..20_000)
            .map(|i| {
                let r = next();
                if i % 50 == 0 {
                    2000 + r % 30_000
                } else {
                    5 + r % 400
                }
            })
            .collect();
        let whole: LatencyHistogram = v.iter().copied().collect();
        let mut parts = LatencyHistogram::default();
        for chunk in v.chunks(777).rev() {
            parts.merge(&chunk.iter().copied().collect());
        }
        assert_eq!(parts, whole, "merge is exact and order-free");
        assert_eq!(whole.count(), 20_000);
        for p in [50.0, 90.0, 95.0, 99.0, 99.9, 100.0] {
            let want = exact(&mut v, p);
            let got = whole.percentile(p).unwrap();
            let err = (f64::from(got) - f64::from(want)).abs();
            assert!(
                err <= RELATIVE_ERROR * f64::from(want) + 0.5,
                "p{p}: {got} vs {want}"
            );
        }
        assert_eq!(LatencyHistogram::default().percentile(50.0), None);
    }

    #[test]
    fn added_out_of_order_stays_sorted() {
        let mut h = LatencyHistogram::default();
        for x in [500, 10, 500, 3, 10_000, 10] {
            h.add(x);
        }
        let buckets: Vec<u16> = h.bins().iter().map(|b| b.0).collect();
        let mut sorted = buckets.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(buckets, sorted);
        assert_eq!(h.count(), 6);
        assert_eq!(
            h.percentiles([0.0, 50.0, 100.0]),
            [Some(3), Some(10), h.max()]
        );
        assert_eq!(h.count_between(9, 11), 2);
        h.add_bucket(9999, 2);
        assert_eq!(h.bins().last(), Some(&(MAX_BUCKET, 2)));
    }
}
