//! Throughput, per-operation latency and memory of the fast [`Book`] on a realistic mixed
//! stream. Run with `cargo bench -p tradecore-book --bench latency`; set
//! `TRADECORE_BENCH_JSON=path` to also get the figures as JSON, and
//! `TRADECORE_BENCH_CLOCK=instant` to time with `std::time::Instant` instead of the TSC.
//!
//! What it does, in order:
//! 1. Memory: reads the resident set size (`/proc/self/statm`) before and after building a
//!    book of capacity 1,000,000 and filling it with 1,000,000 resting orders, and prints the
//!    growth per order beside [`Book::bytes_per_order`] (the slots plus the id index). This
//!    runs first, while little else is on the heap.
//! 2. Generates, before any timing, a fixed-seed mixed stream (`common::mixed_stream`) of
//!    4,000,000 operations starting from a book of 100,000 resting orders (capacity 1,000,000):
//!    ~50% passive adds near the touch, ~35% cancels, ~10% aggressive, ~5% modifies.
//!    Two streams are run: "uniform" (cancels and modifies aim at any resting order: the
//!    cache's worst case) and "recent" (80% of them aim at one of the last 1,000 orders added,
//!    as quotes near the touch are refreshed in real order flow).
//! 3. Throughput: runs each stream single-threaded through a freshly built book, three
//!    times, and prints operations per second (each run and the median).
//! 4. Latency: runs the stream once more, timing every operation on its own, and records the
//!    times per operation kind (add, cancel, modify, aggressive) and overall into
//!    HdrHistograms; prints p50/p90/p99/p99.9/max in ns. The clock is the TSC read between
//!    two `lfence`s when the CPU says it is invariant (`constant_tsc` and `nonstop_tsc`),
//!    calibrated against `Instant` over 200 ms, else `Instant`. The cost of an empty timed
//!    region is printed as the timer overhead; it is included in every latency figure.
//!
//! The runs check themselves: every run must end with the number of resting orders the
//! generator predicted and emit the same number of events, or the bench panics.
//!
//! Cost: about 300 MB of memory (the stream and two books) and 20-40 s on this machine.

mod common;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use common::{apply, fill, mixed_stream_with, OpKind, Shape, Stream, Targets, SEED};
use hdrhistogram::Histogram;
use tradecore_book::{Book, EventKind, Matching, OrderRequest, Reason, Side};

/// Capacity of every book here (the default of the venue).
const CAPACITY: usize = 1_000_000;
/// Resting orders when the stream starts.
const RESTING: usize = 100_000;
/// Operations in the stream.
const OPS: usize = 4_000_000;
/// Throughput runs.
const RUNS: usize = 3;

/// How operations are timed. Ticks are TSC cycles or nanoseconds.
#[derive(Clone, Copy)]
enum Clock {
    Tsc { ticks_per_ns: f64 },
    Instant { base: Instant },
}

/// The TSC, fenced on both sides so the reading is neither hoisted above earlier work nor
/// delayed past later work.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(
    unsafe_code,
    reason = "the lfence and rdtsc intrinsics are unsafe fns; the TSC is the cheapest clock \
              for timing single operations of ~100 ns"
)]
fn rdtsc_fenced() -> u64 {
    use std::arch::x86_64::{_mm_lfence, _rdtsc};
    // SAFETY: `lfence` (SSE2) and `rdtsc` belong to the x86_64 baseline, so every CPU this
    // code compiles for has them; they touch no memory and have no preconditions.
    unsafe {
        _mm_lfence();
        let t = _rdtsc();
        _mm_lfence();
        t
    }
}

impl Clock {
    /// The TSC if it is usable and not overridden by `TRADECORE_BENCH_CLOCK=instant`.
    fn pick() -> Clock {
        let forced = std::env::var("TRADECORE_BENCH_CLOCK").is_ok_and(|v| v == "instant");
        let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let flags = flags
            .lines()
            .find(|l| l.starts_with("flags"))
            .unwrap_or_default();
        let invariant = flags.split_whitespace().any(|f| f == "constant_tsc")
            && flags.split_whitespace().any(|f| f == "nonstop_tsc");
        if cfg!(target_arch = "x86_64") && invariant && !forced {
            Self::calibrate_tsc()
        } else {
            Clock::Instant {
                base: Instant::now(),
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn calibrate_tsc() -> Clock {
        let (i0, t0) = (Instant::now(), rdtsc_fenced());
        std::thread::sleep(Duration::from_millis(200));
        let (t1, i1) = (rdtsc_fenced(), Instant::now());
        let ns = (i1 - i0).as_nanos() as f64;
        Clock::Tsc {
            ticks_per_ns: (t1 - t0) as f64 / ns,
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn calibrate_tsc() -> Clock {
        Clock::Instant {
            base: Instant::now(),
        }
    }

    #[inline(always)]
    fn now(&self) -> u64 {
        match self {
            #[cfg(target_arch = "x86_64")]
            Clock::Tsc { .. } => rdtsc_fenced(),
            #[cfg(not(target_arch = "x86_64"))]
            Clock::Tsc { .. } => unreachable!("no TSC clock off x86_64"),
            Clock::Instant { base } => base.elapsed().as_nanos() as u64,
        }
    }

    fn ns(&self, ticks: u64) -> f64 {
        match self {
            Clock::Tsc { ticks_per_ns } => ticks as f64 / ticks_per_ns,
            Clock::Instant { .. } => ticks as f64,
        }
    }

    fn describe(&self) -> String {
        match self {
            Clock::Tsc { ticks_per_ns } => format!(
                "rdtsc between lfences, {ticks_per_ns:.4} ticks/ns calibrated against Instant \
                 over 200 ms"
            ),
            Clock::Instant { .. } => "std::time::Instant".to_string(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Clock::Tsc { .. } => "rdtsc",
            Clock::Instant { .. } => "instant",
        }
    }
}

/// Page size from the auxiliary vector (AT_PAGESZ = 6); 4096 if it cannot be read.
fn page_size() -> u64 {
    let Ok(auxv) = std::fs::read("/proc/self/auxv") else {
        return 4096;
    };
    for pair in auxv.chunks_exact(16) {
        let key = u64::from_ne_bytes(pair[..8].try_into().expect("8 bytes"));
        let value = u64::from_ne_bytes(pair[8..].try_into().expect("8 bytes"));
        if key == 6 {
            return value;
        }
    }
    4096
}

/// Resident set size in bytes, from `/proc/self/statm` (second field, in pages).
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

struct Memory {
    model: f64,
    rss_after_build: Option<f64>,
    rss_after_fill: Option<f64>,
}

fn memory() -> Memory {
    let shape = Shape::for_resting(CAPACITY);
    let mut rng = common::Rng::new(SEED);
    let mut out = Vec::with_capacity(16);
    let rss0 = rss_bytes();
    let mut book = Book::with_capacity(CAPACITY);
    let rss1 = rss_bytes();
    for i in 0..CAPACITY as u64 {
        out.clear();
        book.submit(&shape.initial_order(i, &mut rng), &mut out);
        assert_eq!(out[0].kind, EventKind::Accepted, "fill order {i}");
    }
    let rss2 = rss_bytes();
    assert_eq!(book.len(), CAPACITY);
    out.clear();
    let one_more = OrderRequest::limit(u64::MAX, 1, Side::Buy, 1, 1);
    book.submit(&one_more, &mut out);
    assert_eq!(
        (out[0].kind, out[0].reason),
        (EventKind::Rejected, Reason::BookFull),
        "a full book must refuse one more order"
    );
    let per = |after: Option<u64>| Some(after?.saturating_sub(rss0?) as f64 / CAPACITY as f64);
    let m = Memory {
        model: book.bytes_per_order(),
        rss_after_build: per(rss1),
        rss_after_fill: per(rss2),
    };
    let show = |v: Option<f64>| v.map_or("n/a".to_string(), |b| format!("{b:.1} B"));
    println!("memory per resting order (capacity {CAPACITY}, filled with {CAPACITY} orders):");
    println!(
        "  Book::bytes_per_order()           {:.1} B (order slot + id index, per slot)",
        m.model
    );
    println!(
        "  RSS growth / capacity, built      {}",
        show(m.rss_after_build)
    );
    println!(
        "  RSS growth / orders, filled       {}   (target < 64 B: {})",
        show(m.rss_after_fill),
        verdict(m.rss_after_fill.unwrap_or(m.model) < 64.0)
    );
    m
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

fn fresh_book(stream: &Stream) -> Book {
    let mut book = Book::with_capacity(CAPACITY);
    fill(&mut book, &stream.initial, &mut Vec::new());
    book
}

/// Run the whole stream; returns (elapsed, events emitted).
fn throughput_run(stream: &Stream) -> (Duration, usize) {
    let mut book = fresh_book(stream);
    let mut out = Vec::with_capacity(4096);
    let mut events = 0usize;
    let start = Instant::now();
    for op in &stream.ops {
        out.clear();
        apply(&mut book, op, &mut out);
        events += out.len();
    }
    let elapsed = start.elapsed();
    assert_eq!(
        book.len(),
        stream.final_live.len(),
        "the run must end where the generator did"
    );
    (elapsed, events)
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 1 << 40, 3).expect("valid histogram bounds")
}

struct Percentiles {
    count: u64,
    mean: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>, clock: &Clock) -> Self {
        let q = |x| clock.ns(h.value_at_quantile(x));
        Percentiles {
            count: h.len(),
            mean: h.mean() * clock.ns(1),
            p50: q(0.50),
            p90: q(0.90),
            p99: q(0.99),
            p999: q(0.999),
            max: clock.ns(h.max()),
        }
    }

    fn json(&self) -> String {
        format!(
            "{{\"count\": {}, \"mean\": {:.1}, \"p50\": {:.1}, \"p90\": {:.1}, \"p99\": {:.1}, \
             \"p99_9\": {:.1}, \"max\": {:.1}}}",
            self.count, self.mean, self.p50, self.p90, self.p99, self.p999, self.max
        )
    }
}

/// Time every operation on its own; returns per-kind percentiles (in `OpKind` order) and the
/// overall ones.
fn latency_run(stream: &Stream, clock: &Clock) -> (Vec<Percentiles>, Percentiles) {
    let mut book = fresh_book(stream);
    let mut out = Vec::with_capacity(4096);
    let mut per_kind: Vec<Histogram<u64>> = OpKind::ALL.iter().map(|_| histogram()).collect();
    let mut overall = histogram();
    for op in &stream.ops {
        let t0 = clock.now();
        out.clear();
        apply(&mut book, op, &mut out);
        let t1 = clock.now();
        let dt = t1.saturating_sub(t0);
        per_kind[op.kind() as usize].saturating_record(dt);
        overall.saturating_record(dt);
    }
    assert_eq!(book.len(), stream.final_live.len());
    (
        per_kind.iter().map(|h| Percentiles::of(h, clock)).collect(),
        Percentiles::of(&overall, clock),
    )
}

/// p50 of an empty timed region: what every latency figure includes for the clock itself.
fn timer_overhead(clock: &Clock) -> Percentiles {
    let mut h = histogram();
    for _ in 0..1_000_000 {
        let t0 = clock.now();
        let t1 = clock.now();
        h.saturating_record(t1.saturating_sub(t0));
    }
    Percentiles::of(&h, clock)
}

/// Figures of one stream.
struct StreamResult {
    targets: Targets,
    stream: Stream,
    rates: Vec<f64>,
    per_kind: Vec<Percentiles>,
    overall: Percentiles,
}

fn run_stream(shape: &Shape, targets: Targets, clock: &Clock) -> StreamResult {
    let t = Instant::now();
    let stream = mixed_stream_with(shape, OPS, SEED, targets);
    println!(
        "\nstream \"{}\" (cancels and modifies aim at {}; seed {SEED:#x}, generated in {:.2?}): {}",
        targets.name(),
        match targets {
            Targets::Uniform => "any resting order, uniformly: the cache's worst case",
            Targets::Recent => "one of the last 1,000 orders added 80% of the time",
        },
        t.elapsed(),
        stream.describe()
    );
    println!(
        "book: capacity {CAPACITY}, {} resting orders over up to {} levels per side",
        stream.initial.len(),
        shape.levels_per_side
    );
    let mut rates = Vec::with_capacity(RUNS);
    let mut events_seen = None;
    for run in 1..=RUNS {
        let (elapsed, events) = throughput_run(&stream);
        assert!(
            events_seen.is_none_or(|e| e == events),
            "runs of one stream must emit the same events"
        );
        events_seen = Some(events);
        let rate = OPS as f64 / elapsed.as_secs_f64();
        println!(
            "throughput run {run}: {OPS} ops in {elapsed:.3?} = {:.2} M ops/s ({:.1} ns/op, \
             {:.2} events/op)",
            rate / 1e6,
            elapsed.as_nanos() as f64 / OPS as f64,
            events as f64 / OPS as f64
        );
        rates.push(rate);
    }
    let mut sorted = rates.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    println!(
        "throughput median of {RUNS}: {:.2} M ops/s (target 10M+: {})",
        median / 1e6,
        verdict(median >= 10e6)
    );
    let (per_kind, overall) = latency_run(&stream, clock);
    println!("latency per operation in ns (clock: {})", clock.describe());
    println!(
        "{:<11} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10}",
        "op", "count", "mean", "p50", "p90", "p99", "p99.9", "max"
    );
    let rows = OpKind::ALL
        .iter()
        .map(|k| (k.name(), &per_kind[*k as usize]))
        .chain([("overall", &overall)]);
    for (name, p) in rows {
        println!(
            "{:<11} {:>9} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>10.1}",
            name, p.count, p.mean, p.p50, p.p90, p.p99, p.p999, p.max
        );
    }
    println!(
        "overall p99 {:.1} ns (target < 1000 ns: {})",
        overall.p99,
        verdict(overall.p99 < 1000.0)
    );
    StreamResult {
        targets,
        stream,
        rates,
        per_kind,
        overall,
    }
}

fn main() {
    println!("tradecore-book latency bench (fast Book, single thread)");
    let mem = memory();
    let clock = Clock::pick();
    let overhead = timer_overhead(&clock);
    println!(
        "\ntimer overhead: an empty timed region takes p50 {:.1} ns (p99 {:.1} ns); it is \
         included in every latency figure below",
        overhead.p50, overhead.p99
    );
    let shape = Shape::for_resting(RESTING);
    let results: Vec<StreamResult> = [Targets::Uniform, Targets::Recent]
        .into_iter()
        .map(|t| run_stream(&shape, t, &clock))
        .collect();
    if let Some(path) = std::env::var_os("TRADECORE_BENCH_JSON") {
        let json = to_json(&mem, &clock, &overhead, &results);
        std::fs::write(&path, json).expect("write TRADECORE_BENCH_JSON");
        println!("wrote {}", path.to_string_lossy());
    }
}

fn to_json(
    mem: &Memory,
    clock: &Clock,
    overhead: &Percentiles,
    results: &[StreamResult],
) -> String {
    let opt = |v: Option<f64>| v.map_or("null".to_string(), |b| format!("{b:.2}"));
    let ticks_per_ns = match clock {
        Clock::Tsc { ticks_per_ns } => format!("{ticks_per_ns:.6}"),
        Clock::Instant { .. } => "1.0".to_string(),
    };
    let mut s = String::new();
    s.push_str("{\n  \"bench\": \"tradecore-book latency\",\n");
    let _ = writeln!(s, "  \"clock\": \"{}\",", clock.name());
    let _ = writeln!(s, "  \"ticks_per_ns\": {ticks_per_ns},");
    let _ = writeln!(s, "  \"timer_overhead_p50_ns\": {:.1},", overhead.p50);
    s.push_str("  \"streams\": {\n");
    for (i, r) in results.iter().enumerate() {
        let stream = &r.stream;
        let _ = writeln!(s, "    \"{}\": {{", r.targets.name());
        let _ = writeln!(
            s,
            "      \"stream\": {{\"seed\": {SEED}, \"ops\": {}, \"resting_start\": {}, \
             \"resting_end\": {}, \"capacity\": {CAPACITY}, \"add\": {}, \"cancel\": {}, \
             \"modify\": {}, \"aggressive\": {}}},",
            stream.ops.len(),
            stream.initial.len(),
            stream.final_live.len(),
            stream.counts[OpKind::Add as usize],
            stream.counts[OpKind::Cancel as usize],
            stream.counts[OpKind::Modify as usize],
            stream.counts[OpKind::Aggressive as usize],
        );
        let runs: Vec<String> = r.rates.iter().map(|x| format!("{x:.0}")).collect();
        let mut sorted = r.rates.clone();
        sorted.sort_by(f64::total_cmp);
        let _ = writeln!(
            s,
            "      \"throughput\": {{\"median_ops_per_sec\": {:.0}, \"runs_ops_per_sec\": [{}]}},",
            sorted[sorted.len() / 2],
            runs.join(", ")
        );
        s.push_str("      \"latency_ns\": {\n");
        for k in OpKind::ALL {
            let _ = writeln!(
                s,
                "        \"{}\": {},",
                k.name(),
                r.per_kind[k as usize].json()
            );
        }
        let _ = writeln!(s, "        \"overall\": {}\n      }}", r.overall.json());
        s.push_str(if i + 1 < results.len() {
            "    },\n"
        } else {
            "    }\n"
        });
    }
    s.push_str("  },\n");
    let _ = writeln!(
        s,
        "  \"memory\": {{\"bytes_per_order\": {:.2}, \"rss_bytes_per_order\": {}, \
         \"rss_bytes_per_slot_built\": {}, \"orders\": {CAPACITY}}}",
        mem.model,
        opt(mem.rss_after_fill),
        opt(mem.rss_after_build)
    );
    s.push_str("}\n");
    s
}
