//! A small driver for instruction counting: builds the latency bench's book (capacity
//! 1,000,000, 100,000 resting orders) and runs `N` operations of one of its streams through
//! it inside [`run_ops`], a function that callgrind can be told to count alone:
//!
//! ```text
//! cargo build --release -p tradecore-book --example opcount
//! valgrind --tool=callgrind --toggle-collect='opcount::run_ops' \
//!     target/release/examples/opcount recent 200000
//! ```
//!
//! Instructions per operation = the collected total / `N`. Stream generation and the initial
//! fill happen outside `run_ops` and are not counted. The stream is the bench's (`common`), so
//! the figures belong to the same workload as `cargo bench --bench latency`.

#[path = "../benches/common/mod.rs"]
mod common;

use common::{apply, fill, mixed_stream_with, Op, Shape, Targets, SEED};
use tradecore_book::{Book, Event, Matching};

/// Run every operation; returns the number of events emitted (so nothing is optimised away).
#[inline(never)]
fn run_ops(book: &mut Book, ops: &[Op], out: &mut Vec<Event>) -> usize {
    let mut events = 0;
    for op in ops {
        out.clear();
        apply(book, op, out);
        events += out.len();
    }
    events
}

fn main() {
    let mut args = std::env::args().skip(1);
    let targets = match args.next().as_deref() {
        Some("uniform") => Targets::Uniform,
        Some("recent") | None => Targets::Recent,
        Some(other) => panic!("stream must be uniform or recent, got {other}"),
    };
    let n: usize = args
        .next()
        .map_or(200_000, |s| s.parse().expect("N must be an integer"));
    let shape = Shape::for_resting(100_000);
    let stream = mixed_stream_with(&shape, n, SEED, targets);
    let mut book = Book::with_capacity(1_000_000);
    let mut out = Vec::with_capacity(4096);
    fill(&mut book, &stream.initial, &mut out);
    let events = run_ops(&mut book, &stream.ops, &mut out);
    assert_eq!(book.len(), stream.final_live.len());
    println!(
        "{} ops ({}), {events} events, {} resting at the end",
        stream.ops.len(),
        targets.name(),
        book.len()
    );
}
