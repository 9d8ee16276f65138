//! Proof that the market-data fast path (`scan::binance`, `scan::depth_levels`,
//! `decimal::Grid::steps`, `decimal::level`) allocates nothing once the caller's level buffer
//! has its capacity.
//!
//! A counting `#[global_allocator]` wraps `std::alloc::System` and counts every `alloc`,
//! `alloc_zeroed` and `realloc`. The test builds its messages first (depth diffs with up to
//! 20 levels per side, some off the grid, some with a bad value; aggTrades; bookTickers; a
//! kline; broken texts), reserves the level buffer for the largest message, then reads every
//! message many times (scan, sort, read the levels on the grids, clear the buffer) and
//! asserts that the allocation count did not move. It checks at the end that the counter
//! works: one push into an empty `Vec` must raise it.
//!
//! This binary holds a single test and must stay single-threaded: the counter is global.
//! Nothing inside the measured window prints. Cost: well under a second in release mode.

#![allow(
    unsafe_code,
    reason = "a #[global_allocator] has to implement the unsafe GlobalAlloc trait"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use tradecore_book::decimal::{self, Grid};
use tradecore_book::scan::{self, Message};
use tradecore_book::Side;

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

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was returned by `System` (every allocation goes through this type)
        // with this layout, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `dealloc`; `new_size` is non-zero per the caller's contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// A depth diff with `n` bid and `n` ask levels around `mid` ticks; `twist` puts an off-grid
/// price (every 7th message) or a bad quantity (every 11th) in the middle.
fn depth(n: usize, mid: u64, twist: usize) -> String {
    let side = |sign: i64| {
        (0..n)
            .map(|i| {
                let ticks = (mid as i64 + sign * (i as i64 + 1)) as u64;
                let mut price = format!("{}.{:04}0000", ticks / 10_000, ticks % 10_000);
                let mut qty = format!("{}.{:03}00000", 1 + i, (i * 37) % 1000);
                if i == n / 2 && twist % 7 == 0 {
                    price = format!("{}.000050", ticks / 10_000);
                }
                if i == n / 2 && twist % 11 == 0 {
                    qty = "1.2.3".to_owned();
                }
                format!("[\"{price}\",\"{qty}\"]")
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        "{{\"stream\":\"nknusdt@depth@100ms\",\"data\":{{\"e\":\"depthUpdate\",\"E\":{t},\
         \"s\":\"NKNUSDT\",\"U\":{u0},\"u\":{u1},\"b\":[{b}],\"a\":[{a}]}}}}",
        t = 1_628_899_200_000u64 + twist as u64,
        u0 = 100 + twist,
        u1 = 105 + twist,
        b = side(-1),
        a = side(1),
    )
}

#[test]
fn fast_path_allocates_nothing() {
    let (tick, lot) = (
        Grid::parse("0.00010000").unwrap(),
        Grid::parse("0.00100000").unwrap(),
    );
    let mut texts: Vec<String> = (0..200)
        .map(|i| depth(i % 21, 3521 + i as u64, i))
        .collect();
    texts.push(
        r#"{"stream":"nknusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"NKNUSDT","a":5,"p":"0.35210000","q":"12.00000000","f":1,"l":2,"T":3,"m":true,"M":true}}"#
            .to_owned(),
    );
    texts.push(
        r#"{"stream":"nknusdt@bookTicker","data":{"u":7,"s":"NKNUSDT","b":"0.35200000","B":"1.00000000","a":"0.35210000","A":"2.50000000"}}"#
            .to_owned(),
    );
    texts.push(r#"{"stream":"nknusdt@kline_1m","data":{"k":{"t":1,"x":"\u00e9"}}}"#.to_owned());
    texts.push(r#"{"stream":"nknusdt@depth@100ms","data":{"b":[["1"]]"#.to_owned());
    texts.push(String::new());
    let mut out: Vec<(Side, i64, u64)> = Vec::with_capacity(64);

    let start = ALLOCATIONS.load(Ordering::SeqCst);
    let (mut levels, mut skipped, mut errors, mut others) = (0usize, 0usize, 0usize, 0usize);
    for _ in 0..50 {
        for text in &texts {
            match scan::binance(black_box(text)) {
                Some(Message::Depth {
                    bids_at, asks_at, ..
                }) => {
                    out.clear();
                    match scan::depth_levels(text, bids_at, asks_at, &tick, &lot, true, &mut out) {
                        Ok(n) => {
                            skipped += n;
                            levels += out.len();
                        }
                        Err(e) => {
                            errors += 1;
                            black_box(e);
                        }
                    }
                }
                Some(Message::AggTrade { price, qty, .. }) => {
                    let r = decimal::level(&tick, &lot, price, qty, false);
                    levels += usize::from(black_box(r).is_ok_and(|l| l.is_some()));
                }
                Some(Message::BookTicker { bid, ask, .. }) => {
                    levels += usize::from(tick.steps(bid.as_bytes()).is_ok());
                    levels += usize::from(tick.steps(ask.as_bytes()).is_ok());
                }
                Some(Message::Other { .. }) | None => others += 1,
            }
        }
    }
    let allocations = ALLOCATIONS.load(Ordering::SeqCst) - start;
    assert_eq!(
        allocations, 0,
        "the fast path allocated {allocations} times"
    );
    // The stream reached every branch.
    assert!(levels > 0 && skipped > 0 && errors > 0 && others > 0);

    // The counter sees allocations: one push into an empty Vec must count.
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    let mut v: Vec<(Side, i64, u64)> = black_box(Vec::new());
    v.push((Side::Buy, 1, 1));
    black_box(&v);
    assert!(ALLOCATIONS.load(Ordering::SeqCst) > before);
}
