//! `hiccup`: how long this machine takes the CPU away from a thread that never blocks, and
//! the latency floor that alone puts under any wire-to-wire measurement.
//!
//! ## What it measures
//!
//! [`measure`] starts `threads` threads that do nothing but read the monotonic clock for
//! `duration`. Between two reads a running thread needs well under a microsecond, so any
//! longer gap is time the thread was not running: an interrupt, the kernel's own work, or (on
//! a virtual machine) the hypervisor running something else on the physical core. Each gap of
//! at least [`RECORD_NS`] is kept (the buffer is allocated before the clock starts; a run
//! that fills it stops recording and says so).
//!
//! ## The floor it implies
//!
//! A command that arrives during a gap of length `g` waits for the rest of that gap. With
//! arrivals spread evenly over time (an open-loop schedule is), the share of commands that
//! wait longer than `t` because of one thread's gaps is `sum(max(0, g - t)) / duration`. A
//! pipeline needs several threads at once (the load generator and the venue at least), and a
//! command is late if any of them is stalled, so [`Hiccups::floor_ns`] adds the threads'
//! shares (exact when stalls do not overlap, an over-estimate by the overlap otherwise) and
//! returns, for a quantile `q`, the smallest `t` whose share is at most `1 - q`. No venue,
//! however fast, can show a `q` percentile below that figure on this machine while its
//! threads and the generator's are running; the hiccups are measured with every thread
//! spinning, as the latency runs' threads do.
//!
//! ## Cost
//!
//! `threads` cores fully busy for `duration`; 8 bytes per recorded gap, at most
//! [`MAX_GAPS`] per thread.

use std::time::{Duration, Instant};

/// Gaps shorter than this (ns) are ordinary loop jitter and are not recorded.
pub const RECORD_NS: u64 = 2_000;

/// At most this many gaps are kept per thread.
pub const MAX_GAPS: usize = 4_000_000;

/// Thresholds (ns) the summary reports counts and time shares for.
pub const THRESHOLDS_NS: [u64; 7] = [
    10_000, 50_000, 200_000, 1_000_000, 5_000_000, 10_000_000, 50_000_000,
];

/// Quantiles the summary gives the implied latency floor for.
pub const QUANTILES: [f64; 4] = [0.5, 0.99, 0.999, 0.9999];

/// One thread's gaps.
#[derive(Debug, Clone)]
pub struct ThreadHiccups {
    /// Every gap of at least [`RECORD_NS`], in ns, in the order seen.
    pub gaps_ns: Vec<u64>,
    /// Clock reads done.
    pub reads: u64,
    /// True if the gap buffer filled up (later gaps were not recorded).
    pub truncated: bool,
    /// The longest gap (ns).
    pub max_ns: u64,
}

/// The result of [`measure`].
#[derive(Debug, Clone)]
pub struct Hiccups {
    /// Wall time each thread ran (ns): the requested duration, as measured.
    pub duration_ns: u64,
    /// One entry per thread.
    pub threads: Vec<ThreadHiccups>,
}

/// Spins `threads` threads (at least 1) on the clock for `duration` and returns their gaps.
pub fn measure(threads: usize, duration: Duration) -> Hiccups {
    let threads = threads.max(1);
    let want = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
    let handles: Vec<_> = (0..threads)
        .map(|_| std::thread::spawn(move || spin(want)))
        .collect();
    let threads = handles
        .into_iter()
        .map(|h| {
            h.join().unwrap_or(ThreadHiccups {
                gaps_ns: Vec::new(),
                reads: 0,
                truncated: true,
                max_ns: 0,
            })
        })
        .collect();
    Hiccups {
        duration_ns: want,
        threads,
    }
}

fn spin(want_ns: u64) -> ThreadHiccups {
    let mut gaps = Vec::with_capacity(MAX_GAPS.min(1 << 16));
    let start = Instant::now();
    let mut last = start;
    let mut reads = 0u64;
    let mut max_ns = 0u64;
    let mut truncated = false;
    loop {
        let now = Instant::now();
        reads += 1;
        let gap = u64::try_from((now - last).as_nanos()).unwrap_or(u64::MAX);
        last = now;
        if gap >= RECORD_NS {
            max_ns = max_ns.max(gap);
            if gaps.len() < MAX_GAPS {
                gaps.push(gap);
            } else {
                truncated = true;
            }
        }
        if u64::try_from((now - start).as_nanos()).unwrap_or(u64::MAX) >= want_ns {
            break;
        }
    }
    ThreadHiccups {
        gaps_ns: gaps,
        reads,
        truncated,
        max_ns,
    }
}

/// Sum of `max(0, g - t)` over `gaps` (ns).
fn excess(gaps: &[u64], t: u64) -> u128 {
    gaps.iter().map(|&g| u128::from(g.saturating_sub(t))).sum()
}

impl Hiccups {
    /// Gaps longer than `t` ns, all threads together.
    pub fn count_over(&self, t: u64) -> u64 {
        self.threads
            .iter()
            .map(|th| th.gaps_ns.iter().filter(|&&g| g > t).count() as u64)
            .sum()
    }

    /// Share of commands arriving evenly over the run that some thread's gaps delay by more
    /// than `t` ns (the threads' shares added; see the module docs). Can exceed 1.
    pub fn late_share(&self, t: u64) -> f64 {
        if self.duration_ns == 0 {
            return 0.0;
        }
        let total: u128 = self.threads.iter().map(|th| excess(&th.gaps_ns, t)).sum();
        total as f64 / self.duration_ns as f64
    }

    /// The smallest delay `t` (ns) with [`Hiccups::late_share`]`(t) <= 1 - q`: the latency
    /// floor at quantile `q` that the stalls alone impose. 0 when the stalls delay fewer
    /// than `1 - q` of the commands at all.
    pub fn floor_ns(&self, q: f64) -> u64 {
        let allowed = (1.0 - q).max(0.0);
        if self.late_share(0) <= allowed {
            return 0;
        }
        // late_share is non-increasing in t: bisect on [0, longest gap].
        let (mut lo, mut hi) = (
            0u64,
            self.threads.iter().map(|t| t.max_ns).max().unwrap_or(0),
        );
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.late_share(mid) <= allowed {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }

    /// True if any thread's gap buffer filled up.
    pub fn truncated(&self) -> bool {
        self.threads.iter().any(|t| t.truncated)
    }

    /// A few lines for people: stall counts and time shares by threshold, and the floor.
    pub fn summary(&self) -> String {
        let secs = self.duration_ns as f64 / 1e9;
        let mut s = format!(
            "machine hiccups: {} thread(s) spinning on the clock for {:.1} s, longest stall {}\n",
            self.threads.len(),
            secs,
            fmt_ns(self.threads.iter().map(|t| t.max_ns).max().unwrap_or(0)),
        );
        for t in THRESHOLDS_NS {
            let time: u128 = self
                .threads
                .iter()
                .flat_map(|th| th.gaps_ns.iter())
                .filter(|&&g| g > t)
                .map(|&g| u128::from(g))
                .sum();
            s.push_str(&format!(
                "  stalls > {:>6}: {:>7} ({:.1}/s per thread), {:.3}% of thread time\n",
                fmt_ns(t),
                self.count_over(t),
                self.count_over(t) as f64 / secs.max(1e-9) / self.threads.len() as f64,
                100.0 * time as f64 / (self.duration_ns as f64 * self.threads.len() as f64),
            ));
        }
        s.push_str("  latency floor from these stalls alone (threads' shares added):");
        for q in QUANTILES {
            s.push_str(&format!(
                " {} {}",
                quantile_name(q),
                fmt_ns(self.floor_ns(q))
            ));
        }
        s.push('\n');
        if self.truncated() {
            s.push_str("  (gap buffer full: later gaps were not recorded)\n");
        }
        s
    }

    /// The figures as a JSON object (counts and shares by threshold, floors by quantile).
    pub fn to_json(&self) -> String {
        let thresholds: Vec<String> = THRESHOLDS_NS
            .iter()
            .map(|&t| {
                format!(
                    "{{\"over_ns\": {t}, \"stalls\": {}, \"late_share\": {:.6e}}}",
                    self.count_over(t),
                    self.late_share(t)
                )
            })
            .collect();
        let floors: Vec<String> = QUANTILES
            .iter()
            .map(|&q| format!("\"{}\": {}", quantile_name(q), self.floor_ns(q)))
            .collect();
        let per_thread: Vec<String> = self
            .threads
            .iter()
            .map(|t| {
                format!(
                    "{{\"reads\": {}, \"gaps_recorded\": {}, \"max_ns\": {}, \"truncated\": {}}}",
                    t.reads,
                    t.gaps_ns.len(),
                    t.max_ns,
                    t.truncated
                )
            })
            .collect();
        format!(
            "{{\"threads\": {}, \"duration_ns\": {}, \"record_ns\": {RECORD_NS}, \
             \"by_threshold\": [{}], \"floor_ns\": {{{}}}, \"per_thread\": [{}]}}",
            self.threads.len(),
            self.duration_ns,
            thresholds.join(", "),
            floors.join(", "),
            per_thread.join(", ")
        )
    }
}

fn quantile_name(q: f64) -> String {
    // Four significant digits cover the quantiles reported (0.5 .. 0.9999).
    let text = format!("{:.2}", q * 100.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("p{text}")
}

fn fmt_ns(ns: u64) -> String {
    if ns >= 1_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else if ns >= 1_000 {
        format!("{:.0} µs", ns as f64 / 1e3)
    } else {
        format!("{ns} ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(gaps: &[&[u64]], duration_ns: u64) -> Hiccups {
        Hiccups {
            duration_ns,
            threads: gaps
                .iter()
                .map(|g| ThreadHiccups {
                    gaps_ns: g.to_vec(),
                    reads: 1,
                    truncated: false,
                    max_ns: g.iter().copied().max().unwrap_or(0),
                })
                .collect(),
        }
    }

    #[test]
    fn late_share_is_the_excess_over_t_divided_by_the_run() {
        // One 1 ms stall in a 1 s run: 0.1% of evenly spread commands arrive during it.
        let h = fixed(&[&[1_000_000]], 1_000_000_000);
        assert!((h.late_share(0) - 1e-3).abs() < 1e-12);
        // Those arriving in its first half wait more than 500 µs.
        assert!((h.late_share(500_000) - 5e-4).abs() < 1e-12);
        assert_eq!(h.late_share(1_000_000), 0.0);
    }

    #[test]
    fn floor_is_the_smallest_delay_within_the_quantiles_budget() {
        // 10 stalls of 2 ms in 1 s = 2% of the time: p99 may have 1% late, which is reached
        // at t = 1 ms (each stall leaves 1 ms of excess: 10 ms = 1%).
        let gaps = [2_000_000u64; 10];
        let h = fixed(&[&gaps], 1_000_000_000);
        assert_eq!(h.floor_ns(0.99), 1_000_000);
        // p50: 50% may be late, the stalls delay only 2%: no floor.
        assert_eq!(h.floor_ns(0.5), 0);
        // p99.9: 0.1% = 1 ms of excess over 10 stalls -> t = 1.9 ms.
        assert_eq!(h.floor_ns(0.999), 1_900_000);
    }

    #[test]
    fn threads_shares_add_up() {
        let one = fixed(&[&[2_000_000; 10]], 1_000_000_000);
        let two = fixed(&[&[2_000_000; 10], &[2_000_000; 10]], 1_000_000_000);
        assert!((two.late_share(0) - 2.0 * one.late_share(0)).abs() < 1e-12);
        assert!(two.floor_ns(0.99) > one.floor_ns(0.99));
        assert_eq!(two.count_over(1_000_000), 20);
    }

    #[test]
    fn floors_do_not_decrease_with_the_quantile() {
        let h = fixed(&[&[5_000, 80_000, 300_000, 2_500_000, 40_000]], 100_000_000);
        let floors: Vec<u64> = QUANTILES.iter().map(|&q| h.floor_ns(q)).collect();
        assert!(floors.windows(2).all(|w| w[0] <= w[1]), "{floors:?}");
        assert!(floors[3] <= 2_500_000);
    }

    #[test]
    fn a_real_measurement_reads_the_clock_and_reports_consistently() {
        let h = measure(1, Duration::from_millis(50));
        assert_eq!(h.threads.len(), 1);
        assert!(h.threads[0].reads > 1_000, "{} reads", h.threads[0].reads);
        assert!(h.threads[0].gaps_ns.iter().all(|&g| g >= RECORD_NS));
        let json = h.to_json();
        assert!(json.starts_with("{\"threads\": 1,"), "{json}");
        assert!(h.summary().contains("latency floor"));
    }

    #[test]
    fn quantile_names() {
        assert_eq!(quantile_name(0.5), "p50");
        assert_eq!(quantile_name(0.99), "p99");
        assert_eq!(quantile_name(0.999), "p99.9");
        assert_eq!(quantile_name(0.9999), "p99.99");
    }
}
