//! Criterion benches of the matching core: the fast [`Book`] beside the naive
//! [`ReferenceBook`], in three named regimes of resting orders (`10`, `1k`, `100k`; the shape is
//! described in `common/mod.rs`: several orders per level, levels around a mid, busiest at the
//! touch). Run with `cargo bench -p tradecore-book --bench book` (`-- --quick` for a fast pass).
//!
//! Each criterion group is `<operation>/<regime>` with the functions `fast` and `reference`, so
//! criterion prints them side by side. One criterion iteration is one operation; the time
//! reported per iteration is for that operation only:
//!
//! * `add`: a passive GTC limit order that rests at or behind the touch (a new level or the tail
//!   of an existing one). Timed in chunks of `chunk` adds (4 / 32 / 128 by regime), each
//!   followed by untimed cancels of the same orders, so the book swings between `n` and
//!   `n + chunk` orders and returns to exactly the same state.
//! * `cancel`: cancel of a random resting order. Timed in chunks of `chunk` distinct random
//!   orders, each chunk followed by untimed re-adds of the same orders (same id, price and
//!   quantity; they rejoin at the tail of their level). The book swings between `n - chunk`
//!   and `n`.
//! * `sweep_1_level` / `sweep_10_levels`: an IOC limit order (account 0, so no self-trade
//!   prevention) whose price and quantity take exactly the whole best 1 or 10 levels of one
//!   side, i.e. one ACCEPTED plus one FILL per maker, with the emptied levels popped. Buy and
//!   sell sweeps alternate; after each pair the swept makers are re-added untimed in their queue
//!   order, which restores the book exactly. Not run in the `10` regime, whose sides hold only
//!   2 levels.
//! * `mixed`: consecutive operations of a pre-generated stream (`common::mixed_stream`: ~50%
//!   passive adds near the touch, ~35% cancels, ~10% aggressive, ~5% modifies) that keeps the
//!   book in its regime. When the stream runs out the book is put back to its start, untimed.
//!
//! Timing a chunk costs two `Instant::now()` calls (~25 ns on this machine), i.e. ~6 ns per op
//! in the `10` regime (chunk 4), under 1 ns in the others; both books pay the same.
//!
//! Each group starts from a freshly built book (the fast one rebuilt, the reference cloned
//! from a template built once per regime, because filling it is quadratic), and one cycle of
//! every scenario is checked before timing: the expected events (fast and reference equal),
//! and the book restored afterwards. A wrong scenario panics instead of printing a number.
//!
//! The reference (O(levels · log levels) per best-price lookup, O(n) per id lookup) gets 10
//! samples in the `100k` regime; it is run everywhere, and at 100k it is orders of magnitude
//! slower per operation, which is the point of the comparison. Building its 100k template
//! takes about 10 s (each submit scans every resting order for a duplicate id), once.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{fill, mixed_stream, Op, Rng, Shape, Stream, SEED};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode};
use tradecore_book::{
    Book, Event, EventKind, Matching, OrderRequest, ReferenceBook, RestingOrder, Side, TimeInForce,
};

/// One named regime.
struct Regime {
    name: &'static str,
    resting: usize,
    /// Operations per timed chunk in the add and cancel scenarios.
    chunk: usize,
}

const REGIMES: [Regime; 3] = [
    Regime {
        name: "10",
        resting: 10,
        chunk: 4,
    },
    Regime {
        name: "1k",
        resting: 1_000,
        chunk: 32,
    },
    Regime {
        name: "100k",
        resting: 100_000,
        chunk: 128,
    },
];

/// Length of the pre-generated mixed stream of each regime.
const MIXED_OPS: usize = 1_000_000;

/// Ids used by the add scenario (above anything the initial book holds).
const ADD_ID_BASE: u64 = 1 << 40;

/// Ids of the sweeping takers.
const TAKER_ID: u64 = 1 << 41;

/// Distinct chunks pre-generated for the add and cancel scenarios (used round robin).
const CHUNKS: usize = 512;

/// Timed operations and the untimed operations that undo them.
struct Cycle {
    timed: Vec<Op>,
    restore: Vec<Op>,
}

/// What a timed operation of a scenario must produce (checked once before timing).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Rests,
    Cancelled,
    SweepsFully,
}

struct Scenario {
    name: &'static str,
    cycles: Vec<Cycle>,
    expect: Expect,
    /// True when a cycle restores the queues exactly (not only the set of orders).
    exact: bool,
}

/// The state of one regime: its initial orders and a reference template.
struct Setup {
    regime: &'static Regime,
    shape: Shape,
    initial: Vec<OrderRequest>,
    reference: ReferenceBook,
}

impl Setup {
    fn new(regime: &'static Regime) -> Self {
        let shape = Shape::for_resting(regime.resting);
        let initial = shape.initial_orders(SEED);
        let t = Instant::now();
        let mut reference = ReferenceBook::new(Book::DEFAULT_CAPACITY);
        fill(&mut reference, &initial, &mut Vec::new());
        eprintln!(
            "regime {}: {} resting orders over up to {} levels per side; reference template \
             built in {:.2?}",
            regime.name,
            initial.len(),
            shape.levels_per_side,
            t.elapsed()
        );
        Setup {
            regime,
            shape,
            initial,
            reference,
        }
    }

    fn fast(&self) -> Book {
        let mut book = Book::new();
        fill(&mut book, &self.initial, &mut Vec::new());
        book
    }

    fn reference(&self) -> ReferenceBook {
        self.reference.clone()
    }

    fn add_scenario(&self) -> Scenario {
        let fast = self.fast();
        let bid = fast.best_bid().map(|b| b.0);
        let ask = fast.best_ask().map(|a| a.0);
        let mut rng = Rng::new(SEED ^ 0xADD);
        let cycles = (0..CHUNKS)
            .map(|_| {
                let adds: Vec<OrderRequest> = (0..self.regime.chunk as u64)
                    .map(|i| {
                        let side = rng.side();
                        let d = self.shape.distance(&mut rng);
                        let price = Shape::passive_price(side, bid, ask, d);
                        let (account, qty) =
                            (self.shape.account(&mut rng), self.shape.qty(&mut rng));
                        OrderRequest::limit(ADD_ID_BASE + i, account, side, price, qty)
                    })
                    .collect();
                Cycle {
                    timed: adds.iter().map(|r| Op::Add(*r)).collect(),
                    restore: adds.iter().map(|r| Op::Cancel(r.order_id)).collect(),
                }
            })
            .collect();
        Scenario {
            name: "add",
            cycles,
            expect: Expect::Rests,
            exact: true,
        }
    }

    fn cancel_scenario(&self) -> Scenario {
        let mut rng = Rng::new(SEED ^ 0xCA9C);
        let n = self.initial.len();
        let cycles = (0..CHUNKS)
            .map(|_| {
                // A partial Fisher-Yates shuffle picks `chunk` distinct orders.
                let mut pool: Vec<usize> = (0..n).collect();
                let k = self.regime.chunk.min(n);
                for i in 0..k {
                    let j = i + rng.below((n - i) as u64) as usize;
                    pool.swap(i, j);
                }
                let picked = &pool[..k];
                Cycle {
                    timed: picked
                        .iter()
                        .map(|&i| Op::Cancel(self.initial[i].order_id))
                        .collect(),
                    restore: picked.iter().map(|&i| Op::Add(self.initial[i])).collect(),
                }
            })
            .collect();
        Scenario {
            name: "cancel",
            cycles,
            expect: Expect::Cancelled,
            exact: false,
        }
    }

    /// `None` when a side has fewer than `levels` levels.
    fn sweep_scenario(&self, name: &'static str, levels: usize) -> Option<Scenario> {
        let fast = self.fast();
        let mut timed = Vec::new();
        let mut restore = Vec::new();
        for (taker_side, maker_side) in [(Side::Buy, Side::Sell), (Side::Sell, Side::Buy)] {
            let depth = fast.depth_side(maker_side, levels);
            if depth.len() < levels {
                return None;
            }
            let qty = depth.iter().map(|l| l.qty).sum();
            let limit = depth[levels - 1].price;
            let id = TAKER_ID + taker_side as u64;
            timed.push(Op::Aggressive(
                OrderRequest::limit(id, 0, taker_side, limit, qty).with_tif(TimeInForce::Ioc),
            ));
            for level in &depth {
                for o in fast.orders_at(maker_side, level.price) {
                    restore.push(Op::Add(OrderRequest::limit(
                        o.order_id, o.account, maker_side, o.price, o.leaves,
                    )));
                }
            }
        }
        Some(Scenario {
            name,
            cycles: vec![Cycle { timed, restore }],
            expect: Expect::SweepsFully,
            exact: true,
        })
    }
}

/// Both sides of a book in priority order (sorted when only the set matters).
fn state<B: Matching>(book: &B, exact: bool) -> Vec<RestingOrder> {
    let mut all = book.orders(Side::Buy);
    all.extend(book.orders(Side::Sell));
    if !exact {
        all.sort_by_key(|o| o.order_id);
    }
    all
}

/// Run one cycle untimed and check it: expected events, identical events from both books,
/// and the book restored afterwards.
fn check_cycle(fast: &mut Book, reference: &mut ReferenceBook, s: &Scenario) {
    let cycle = &s.cycles[0];
    let before = state(fast, s.exact);
    let mut out_fast = Vec::new();
    let mut out_ref = Vec::new();
    for op in &cycle.timed {
        out_fast.clear();
        out_ref.clear();
        common::apply(fast, op, &mut out_fast);
        common::apply(reference, op, &mut out_ref);
        assert_eq!(out_fast, out_ref, "{}: books disagree on {op:?}", s.name);
        let kinds: Vec<EventKind> = out_fast.iter().map(|e| e.kind).collect();
        let ok = match s.expect {
            Expect::Rests => kinds == [EventKind::Accepted],
            Expect::Cancelled => kinds == [EventKind::Cancelled],
            Expect::SweepsFully => {
                kinds.len() >= 2
                    && kinds[0] == EventKind::Accepted
                    && kinds[1..].iter().all(|&k| k == EventKind::Fill)
                    && out_fast.last().is_some_and(|e| e.leaves == 0)
            }
        };
        assert!(ok, "{}: unexpected events for {op:?}: {out_fast:?}", s.name);
    }
    for op in &cycle.restore {
        out_fast.clear();
        out_ref.clear();
        common::apply(fast, op, &mut out_fast);
        common::apply(reference, op, &mut out_ref);
        assert_eq!(out_fast, out_ref, "{}: restore disagrees on {op:?}", s.name);
    }
    assert!(
        before == state(fast, s.exact),
        "{}: a cycle did not restore the fast book",
        s.name
    );
    assert!(
        before == state(reference, s.exact),
        "{}: a cycle did not restore the reference",
        s.name
    );
    fast.check_invariants().expect("fast book invariants");
}

/// Run timed cycles until at least `iters` timed operations; return the time of the timed
/// parts scaled to exactly `iters` operations.
fn run_cycles<B: Matching>(
    book: &mut B,
    cycles: &[Cycle],
    cursor: &mut usize,
    iters: u64,
    out: &mut Vec<Event>,
) -> Duration {
    let mut done = 0u64;
    let mut timed = Duration::ZERO;
    while done < iters {
        let cycle = &cycles[*cursor % cycles.len()];
        *cursor += 1;
        let start = Instant::now();
        for op in &cycle.timed {
            out.clear();
            common::apply(book, black_box(op), out);
            black_box(out.len());
        }
        timed += start.elapsed();
        for op in &cycle.restore {
            out.clear();
            common::apply(book, op, out);
        }
        done += cycle.timed.len() as u64;
    }
    Duration::from_nanos((timed.as_nanos() * u128::from(iters) / u128::from(done)) as u64)
}

/// Run `iters` consecutive operations of the stream; at its end, reset the book untimed.
fn run_stream<B: Matching>(
    book: &mut B,
    stream: &Stream,
    cursor: &mut usize,
    iters: u64,
    out: &mut Vec<Event>,
) -> Duration {
    let mut left = iters;
    let mut timed = Duration::ZERO;
    while left > 0 {
        if *cursor == stream.ops.len() {
            stream.reset(book, out);
            *cursor = 0;
        }
        let n = left.min((stream.ops.len() - *cursor) as u64) as usize;
        let ops = &stream.ops[*cursor..*cursor + n];
        let start = Instant::now();
        for op in ops {
            out.clear();
            common::apply(book, black_box(op), out);
            black_box(out.len());
        }
        timed += start.elapsed();
        *cursor += n;
        left -= n as u64;
    }
    timed
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>, regime: &Regime) {
    if regime.resting >= 100_000 {
        // Flat sampling: the slow reference cannot fit linear sampling's growing samples.
        group.sample_size(10);
        group.sampling_mode(SamplingMode::Flat);
        group.measurement_time(Duration::from_secs(4));
    } else {
        group.sample_size(50);
        group.measurement_time(Duration::from_secs(3));
    }
    group.warm_up_time(Duration::from_secs(1));
}

fn bench_scenario(c: &mut Criterion, setup: &Setup, s: &Scenario) {
    check_cycle(&mut setup.fast(), &mut setup.reference(), s);
    let mut group = c.benchmark_group(format!("{}/{}", s.name, setup.regime.name));
    configure(&mut group, setup.regime);
    let mut out = Vec::with_capacity(4096);
    let mut fast = setup.fast();
    let mut cursor = 0;
    group.bench_function("fast", |b| {
        b.iter_custom(|iters| run_cycles(&mut fast, &s.cycles, &mut cursor, iters, &mut out))
    });
    drop(fast);
    let mut reference = setup.reference();
    let mut cursor = 0;
    group.bench_function("reference", |b| {
        b.iter_custom(|iters| run_cycles(&mut reference, &s.cycles, &mut cursor, iters, &mut out))
    });
    group.finish();
}

fn bench_mixed(c: &mut Criterion, setup: &Setup) {
    let stream = mixed_stream(&setup.shape, MIXED_OPS, SEED);
    assert_eq!(
        stream.initial, setup.initial,
        "stream starts from the regime's book"
    );
    eprintln!("mixed/{}: {}", setup.regime.name, stream.describe());
    let mut group = c.benchmark_group(format!("mixed/{}", setup.regime.name));
    configure(&mut group, setup.regime);
    let mut out = Vec::with_capacity(4096);
    let mut fast = setup.fast();
    let mut cursor = 0;
    group.bench_function("fast", |b| {
        b.iter_custom(|iters| run_stream(&mut fast, &stream, &mut cursor, iters, &mut out))
    });
    drop(fast);
    let mut reference = setup.reference();
    let mut cursor = 0;
    group.bench_function("reference", |b| {
        b.iter_custom(|iters| run_stream(&mut reference, &stream, &mut cursor, iters, &mut out))
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    eprintln!(
        "tradecore-book criterion benches: fast Book vs ReferenceBook; one iteration = one \
         operation (see the header of benches/book.rs for what each measurement includes)"
    );
    for regime in &REGIMES {
        let setup = Setup::new(regime);
        bench_scenario(&mut c, &setup, &setup.add_scenario());
        bench_scenario(&mut c, &setup, &setup.cancel_scenario());
        for (name, levels) in [("sweep_1_level", 1), ("sweep_10_levels", 10)] {
            match setup.sweep_scenario(name, levels) {
                Some(s) => bench_scenario(&mut c, &setup, &s),
                None => eprintln!(
                    "{name}/{}: skipped, a side of this regime has fewer than {levels} levels",
                    regime.name
                ),
            }
        }
        bench_mixed(&mut c, &setup);
    }
    c.final_summary();
}
