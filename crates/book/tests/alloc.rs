//! Proof that the book's hot path allocates nothing after warm-up.
//!
//! A counting `#[global_allocator]` wraps `std::alloc::System` and counts every `alloc`,
//! `alloc_zeroed` and `realloc` in an atomic. The test builds a `Book` of 100,000 slots, fills
//! it to about 50,000 resting orders spread over some 2,000 price levels, runs a mixed stream
//! once as warm-up (so both ladders reach their peak number of levels), then runs a second
//! long mixed stream (resting and crossing submits, IOC / FOK / market, cancels, modifies that
//! keep and that lose priority, deep sweeps, rejects) through the SAME event `Vec`, cleared
//! between operations, and asserts that the allocation count did not move.
//!
//! Why it can fail: every path by which a heap allocation can happen inside a book call goes
//! through this allocator. A `Vec::push` beyond the vector's capacity (the caller's event
//! `Vec`, or a ladder's `Vec<Level>` growing past its reserve) calls `realloc` (or `alloc`
//! for the first element), which increments the counter; so would a `Box`, a `String` from
//! `format!`, or a `HashMap` insert. The test checks this at the end: one submit into an empty
//! (capacity 0) event `Vec` must raise the count.
//!
//! Why the event `Vec` is reserved up front rather than by warm-up alone: one operation
//! yields at most `resting orders + 2` events (ACCEPTED or REPLACED, one FILL or SELF_TRADE
//! cancel per maker it meets, one final cancel), so reserving `capacity + 2` is the exact
//! peak any operation can need; a random warm-up could only approximate it.
//!
//! This binary holds a single test and must stay single-threaded: the counter is global, so
//! another test running at the same time would be counted too. Nothing inside the measured
//! window prints (captured output allocates).
//!
//! Cost: about a second in release mode.

#![allow(
    unsafe_code,
    reason = "a #[global_allocator] has to implement the unsafe GlobalAlloc trait"
)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{apply, GenParams, Op, StreamGen};
use tradecore_book::{Book, Event, EventKind, Matching, OrderRequest, Side, TimeInForce};

/// `System`, plus a count of the allocations made through it.
struct CountingAlloc;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards its arguments unchanged to `System`, which implements
// `GlobalAlloc` correctly; the only addition is an atomic increment, which neither allocates
// nor touches the memory handed out.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract (non-zero size).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller guarantees `ptr` came from this allocator (hence from `System`)
        // with `layout`, and that `new_size` is valid for it.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller guarantees `ptr` came from this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn allocations() -> usize {
    ALLOCATIONS.load(Ordering::SeqCst)
}

const CAPACITY: usize = 100_000;
const TARGET_RESTING: usize = 50_000;
const WARM_UP_OPS: usize = 200_000;
const MEASURED_OPS: usize = 400_000;
/// Every this many measured operations, one deep sweep (market or IOC limit far through).
const SWEEP_EVERY: usize = 5_000;

/// What the measured stream did, counted without allocating.
#[derive(Default, Debug)]
struct Seen {
    /// Events by `EventKind as usize` (room for kinds added later).
    kinds: [u64; 16],
    max_events: usize,
    max_levels_swept: usize,
}

impl Seen {
    fn record(&mut self, out: &[Event]) {
        self.max_events = self.max_events.max(out.len());
        let mut levels = 0;
        let mut last = None;
        for e in out {
            self.kinds[e.kind as usize] += 1;
            if e.kind == EventKind::Fill && last != Some(e.price) {
                levels += 1;
                last = Some(e.price);
            }
        }
        self.max_levels_swept = self.max_levels_swept.max(levels);
    }
}

/// A sweep through `levels` worth of the opposite side: a market order or an IOC limit.
fn sweep(book: &Book, n: usize) -> Option<OrderRequest> {
    let side = if n % 2 == 0 { Side::Buy } else { Side::Sell };
    let (best, far) = match side {
        Side::Buy => (book.best_ask()?.0, 25),
        Side::Sell => (book.best_bid()?.0, -25),
    };
    // Ids above the generator's range: the sweep never rests, so they are never reused.
    let id = 1_000_000 + n as u64;
    Some(if n % 4 < 2 {
        OrderRequest::market(id, 9, side, 15_000)
    } else {
        OrderRequest::limit(id, 9, side, best + far, 15_000).with_tif(TimeInForce::Ioc)
    })
}

/// One operation through the reused event `Vec`, and tell the generator what rests now.
fn step(book: &mut Book, gen: &mut StreamGen, out: &mut Vec<Event>, op: Op) {
    out.clear();
    apply(book, &op, out);
    gen.observe(out, |id| book.order(id).is_some());
}

#[test]
fn hot_path_allocates_nothing_after_warm_up() {
    let mut book = Book::with_capacity(CAPACITY);
    let mut gen = StreamGen::new(GenParams {
        seed: 0xA110C,
        max_id: 300_000,
        target_resting: TARGET_RESTING,
        mid: 100_000,
        band: 200,
        spread: 1_000,
        accounts: 4,
        max_sweep_qty: 2_000,
    });
    // Every price the stream can produce lies in this range, so each ladder holds at most
    // `hi - lo + 1` levels; warm-up walks the mid across the range.
    let (lo, hi) = gen.price_range();
    let mut out: Vec<Event> = Vec::with_capacity(CAPACITY + 2);

    // Build: about 50,000 resting orders.
    let mut built = 0;
    while book.len() < TARGET_RESTING {
        let op = gen.next_op(|id| book.order(id));
        step(&mut book, &mut gen, &mut out, op);
        built += 1;
        assert!(
            built < 2_000_000,
            "the stream never reached the target depth"
        );
    }
    // Warm-up: one mixed stream, sweeps included.
    for i in 0..WARM_UP_OPS {
        let op = match sweep(&book, i / SWEEP_EVERY).filter(|_| i % SWEEP_EVERY == 0) {
            Some(r) => Op::Submit(r),
            None => gen.next_op(|id| book.order(id)),
        };
        step(&mut book, &mut gen, &mut out, op);
    }
    book.check_invariants().expect("invariants after warm-up");
    let levels_after_warm_up = (
        book.depth_side(Side::Buy, usize::MAX).len(),
        book.depth_side(Side::Sell, usize::MAX).len(),
    );
    let resting_before = book.len();
    let stats_before = gen.stats;
    let mut seen = Seen::default();

    // ---- measured window: nothing below may allocate ----
    let before = allocations();
    for i in 0..MEASURED_OPS {
        let op = match sweep(&book, 1_000 + i / SWEEP_EVERY).filter(|_| i % SWEEP_EVERY == 0) {
            Some(r) => Op::Submit(r),
            None => gen.next_op(|id| book.order(id)),
        };
        step(&mut book, &mut gen, &mut out, op);
        seen.record(&out);
    }
    let during = allocations() - before;
    // ---- end of the measured window ----

    let issued = (
        gen.stats.passive - stats_before.passive,
        gen.stats.aggressive - stats_before.aggressive,
        gen.stats.cancels - stats_before.cancels,
        gen.stats.modify_keep - stats_before.modify_keep,
        gen.stats.modify_lose - stats_before.modify_lose,
        gen.stats.invalid - stats_before.invalid,
    );
    eprintln!(
        "alloc test: built {built} ops to {TARGET_RESTING} resting; prices {lo}..={hi}; \
         levels after warm-up {levels_after_warm_up:?}; resting {resting_before} -> {}; \
         measured {MEASURED_OPS} ops (passive, aggressive, cancels, modify keep, modify lose, \
         invalid) = {issued:?}; events by kind {:?}; widest sweep {} levels; \
         most events from one op {}; allocations during the window: {during}",
        book.len(),
        seen.kinds,
        seen.max_levels_swept,
        seen.max_events,
    );
    assert_eq!(
        during, 0,
        "{during} heap allocations during {MEASURED_OPS} operations after warm-up"
    );

    // The window really exercised the hot paths.
    book.check_invariants()
        .expect("invariants after the measured stream");
    assert!(book.len() > TARGET_RESTING / 2, "the book ran dry");
    assert!(
        EventKind::ALL
            .iter()
            .all(|k| seen.kinds[*k as usize] > 1_000),
        "{seen:?}"
    );
    assert!(issued.3 > 10_000 && issued.4 > 10_000, "{issued:?}");
    assert!(seen.max_levels_swept >= 10, "{seen:?}");

    // The counter does see an allocation made inside a book call: the same kind of submit,
    // into an event Vec with no capacity, must allocate when it pushes its first event.
    let mut empty: Vec<Event> = Vec::new();
    let before = allocations();
    book.submit(
        &OrderRequest::limit(2_000_000, 1, Side::Buy, lo, 1),
        &mut empty,
    );
    assert!(!empty.is_empty());
    assert!(
        allocations() > before,
        "the counting allocator missed the event Vec's growth"
    );
}
