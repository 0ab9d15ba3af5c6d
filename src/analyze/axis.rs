//! The minute axis the traffic detectors index by: every minute with
//! traffic in scope, in order, with each quiet stretch longer than
//! [`MAX_GAP`] minutes shrunk to `MAX_GAP` quiet minutes. Its length is at
//! most `(MAX_GAP + 1)` times the number of minutes with traffic, so the
//! per-minute arrays built on it grow with the rows read, never with the
//! time the data spans: a log of two rows ten years apart is a short axis,
//! not five million minutes.
//!
//! A quiet stretch keeps `MAX_GAP` minutes so every window a detector uses
//! near a gap (burn-rate windows, baselines padded by a few minutes, latency
//! buckets of up to an hour) still sees the quiet as quiet.

use crate::model::Minute;

/// Quiet minutes kept of a longer quiet stretch.
pub const MAX_GAP: usize = 60;

/// A run of consecutive minutes on the axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    /// Axis index of its first minute.
    index: usize,
    /// Its first minute.
    minute: Minute,
    len: usize,
}

/// Dense axis index ↔ minute.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Axis {
    runs: Vec<Run>,
    len: usize,
}

impl Axis {
    /// The axis over these minutes (any order, repeats allowed).
    pub fn new(minutes: impl IntoIterator<Item = Minute>) -> Axis {
        let mut ms: Vec<Minute> = minutes.into_iter().collect();
        ms.sort_unstable();
        ms.dedup();
        let mut runs: Vec<Run> = Vec::new();
        let mut len = 0usize;
        for m in ms {
            match runs.last_mut() {
                Some(r) => {
                    let end = r.minute + r.len as i64;
                    // `end <= m` as the minutes are sorted and distinct.
                    let quiet = (m - end) as u64;
                    if quiet <= MAX_GAP as u64 {
                        let grow = quiet as usize + 1;
                        r.len += grow;
                        len += grow;
                    } else {
                        // Keep MAX_GAP quiet minutes at the end of this run.
                        r.len += MAX_GAP;
                        len += MAX_GAP;
                        runs.push(Run {
                            index: len,
                            minute: m,
                            len: 1,
                        });
                        len += 1;
                    }
                }
                None => {
                    runs.push(Run {
                        index: 0,
                        minute: m,
                        len: 1,
                    });
                    len = 1;
                }
            }
        }
        Axis { runs, len }
    }

    /// Minutes on the axis.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first minute, if any.
    pub fn first(&self) -> Option<Minute> {
        self.runs.first().map(|r| r.minute)
    }

    /// The axis index of a minute, or `None` when it is not on the axis
    /// (outside, or inside a quiet stretch that was shrunk).
    pub fn index_of(&self, m: Minute) -> Option<usize> {
        let k = self
            .runs
            .partition_point(|r| r.minute <= m)
            .checked_sub(1)?;
        let r = self.runs[k];
        let off = (m - r.minute) as u64;
        (off < r.len as u64).then(|| r.index + off as usize)
    }

    /// The first axis index at or after minute `m` (`len` when none).
    pub fn index_from(&self, m: Minute) -> usize {
        let k = self.runs.partition_point(|r| r.minute <= m);
        if k > 0 {
            let r = self.runs[k - 1];
            let off = (m - r.minute) as u64;
            if off < r.len as u64 {
                return r.index + off as usize;
            }
        }
        self.runs.get(k).map_or(self.len, |r| r.index)
    }

    /// The minute at axis index `i`; `i == len` is the minute after the
    /// last one (an exclusive end).
    pub fn minute_of(&self, i: usize) -> Minute {
        if i >= self.len {
            return self
                .runs
                .last()
                .map_or(0, |r| r.minute + r.len as i64 + (i - self.len) as i64);
        }
        let k = self.runs.partition_point(|r| r.index <= i) - 1;
        let r = self.runs[k];
        r.minute + (i - r.index) as i64
    }

    /// The minute one past axis index `e - 1`: the exclusive end of the
    /// axis range `[s, e)` as a minute (the start's minute when empty).
    pub fn end_minute_of(&self, s: usize, e: usize) -> Minute {
        if e <= s {
            self.minute_of(s)
        } else {
            self.minute_of(e - 1) + 1
        }
    }

    /// Per-axis-minute sums from sparse rows; rows off the axis are left out.
    pub fn dense<T>(
        &self,
        rows: &[T],
        minute: impl Fn(&T) -> Minute,
        value: impl Fn(&T) -> u64,
    ) -> Vec<u64> {
        let mut out = vec![0u64; self.len];
        for r in rows {
            if let Some(slot) = self.index_of(minute(r)).and_then(|i| out.get_mut(i)) {
                *slot += value(r);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_minutes_and_short_gaps_stay_as_they_are() {
        let a = Axis::new([10, 11, 12, 20, 12]);
        assert_eq!(a.len(), 11);
        assert_eq!(a.first(), Some(10));
        for m in 10..=20 {
            assert_eq!(a.index_of(m), Some((m - 10) as usize));
            assert_eq!(a.minute_of((m - 10) as usize), m);
        }
        assert_eq!(a.index_of(9), None);
        assert_eq!(a.index_of(21), None);
        assert_eq!(a.minute_of(11), 21, "one past the end");
        assert_eq!(a.end_minute_of(0, 11), 21);
    }

    #[test]
    fn a_long_quiet_stretch_is_shrunk_and_the_mapping_stays_exact() {
        // Two rows ten years apart, and the .NET null date before them.
        let far = 10 * 525_600;
        let a = Axis::new([0, 1, far, far + 2, -1_000_000_000]);
        // -1e9, 60 quiet, 0..=1, 60 quiet, far..=far+2
        assert_eq!(a.len(), 1 + MAX_GAP + 2 + MAX_GAP + 3);
        assert_eq!(a.index_of(-1_000_000_000), Some(0));
        assert_eq!(a.index_of(0), Some(1 + MAX_GAP));
        assert_eq!(a.index_of(1), Some(2 + MAX_GAP));
        // The kept quiet minutes follow the run they close.
        assert_eq!(a.index_of(1 + MAX_GAP as i64), Some(2 + 2 * MAX_GAP));
        assert_eq!(a.index_of(2 + MAX_GAP as i64), None, "shrunk away");
        assert_eq!(a.index_of(far), Some(3 + 2 * MAX_GAP));
        assert_eq!(a.index_of(far + 1), Some(4 + 2 * MAX_GAP));
        for i in 0..a.len() {
            assert_eq!(a.index_of(a.minute_of(i)), Some(i), "round trip at {i}");
        }
        assert_eq!(a.index_from(5 * 525_600), 3 + 2 * MAX_GAP);
        assert_eq!(a.index_from(far + 3), a.len());
        assert_eq!(a.index_from(i64::MIN), 0);
        assert_eq!(a.end_minute_of(0, a.len()), far + 3);
    }

    #[test]
    fn length_grows_with_minutes_with_traffic_not_with_the_span() {
        // One minute a year for a thousand years.
        let a = Axis::new((0..1000).map(|y| y * 525_600));
        assert_eq!(a.len(), 1000 + 999 * MAX_GAP);
        let extreme = Axis::new([
            Minute::MIN / 2,
            0,
            // 9999-12-31T23:59.
            4_223_371_679,
            Minute::MAX / 2,
        ]);
        assert_eq!(extreme.len(), 4 + 3 * MAX_GAP);
        assert!(Axis::new([]).is_empty());
        assert_eq!(Axis::new([]).index_from(5), 0);
    }

    #[test]
    fn dense_sums_rows_on_the_axis() {
        let a = Axis::new([5, 1000]);
        let rows = [(5, 2u64), (5, 3), (1000, 7), (500, 9)];
        let d = a.dense(&rows, |r| r.0, |r| r.1);
        assert_eq!(d.len(), a.len());
        assert_eq!(d[0], 5);
        assert_eq!(d[a.index_of(1000).unwrap()], 7);
        assert_eq!(d.iter().sum::<u64>(), 12, "minute 500 is off the axis");
    }
}
