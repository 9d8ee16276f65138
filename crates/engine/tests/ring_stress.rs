//! Multi-threaded stress tests of `tradecore_engine::ring`: a producer thread and a consumer
//! thread move a numbered stream through rings of capacity 1, 2, 64 and 1024, each side mixing
//! single and batch operations chosen by a seeded generator, and the consumer checks that
//! every value arrives exactly once, whole and in order.
//!
//! * Copy values are 64-byte messages (the size of an engine command) whose eight words are all
//!   derived from the sequence number, so a slot read before its write had completed (a torn
//!   or stale read) fails the check, not only a lost or repeated value.
//! * Non-`Copy` values own a heap allocation and count their constructions and drops: after a
//!   full run, and after a run where the consumer gives up half-way (dropping its end with
//!   values still inside), every value constructed has been dropped exactly once (a double
//!   drop would also be a double free).
//!
//! Stream length N: 20M values in release builds, 200k in debug builds, or `RING_STRESS_N` if
//! set; capacities 1 and 2 carry N/10 (every one of their messages already crosses a full or
//! empty edge, and each costs a cross-core hand-off); the non-`Copy` streams carry a tenth of
//! that per capacity. The tests take turns (a shared lock) rather than oversubscribing the cores.
//! Run: `cargo test -p tradecore-engine --release --test ring_stress -- --nocapture` (the
//! figures printed are for the mixed, checked stream, not a benchmark). A side that cannot make
//! progress spins briefly and then yields, so the tests also finish on a busy machine with
//! fewer cores than threads.
//!
//! On x86-64 the hardware orders loads and stores almost as strongly as the ring asks for, so a
//! missing `Acquire` or `Release` would rarely show here on real threads. Run the same tests
//! under Miri, whose data-race detector and weak-memory emulation do see it (each of the four
//! cursor orderings weakened to `Relaxed` is reported as a data race on a slot):
//! `RING_STRESS_N=3000 MIRIFLAGS=-Zmiri-env-forward=RING_STRESS_N cargo +nightly miri test -p
//! tradecore-engine --test ring_stress` (about 80 s; needs the nightly `miri` and `rust-src`
//! components).

use std::hint::spin_loop;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use tradecore_engine::ring::{self, Consumer, Producer};

/// Values per capacity for the Copy stream.
fn stream_len() -> u64 {
    if let Ok(text) = std::env::var("RING_STRESS_N") {
        return text
            .parse()
            .unwrap_or_else(|_| panic!("RING_STRESS_N must be an integer, got {text:?}"));
    }
    if cfg!(debug_assertions) {
        200_000
    } else {
        20_000_000
    }
}

const CAPACITIES: [usize; 4] = [1, 2, 64, 1024];

/// One stream at a time: the machine may have only two cores, and each stream wants both.
fn take_turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    // A test that failed while holding the lock must not fail the others.
    TURN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A small deterministic generator (xorshift64*), so that a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..bound` (`bound > 0`).
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// Waits a little after a side made no progress: spin first, then give the core away.
fn back_off(idle: &mut u32) {
    if *idle < 64 {
        spin_loop();
    } else {
        thread::yield_now();
    }
    *idle = idle.saturating_add(1);
}

/// A 64-byte message whose every word is a function of its sequence number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Msg([u64; 8]);

impl Msg {
    fn new(seq: u64) -> Self {
        let mut words = [0u64; 8];
        for (i, word) in words.iter_mut().enumerate() {
            *word =
                seq.rotate_left(i as u32 * 8) ^ (0x9E37_79B9_7F4A_7C15u64.wrapping_mul(i as u64));
        }
        Self(words)
    }
}

/// The batch size for one operation: from 1 to a bit more than twice the capacity (so
/// batches are sometimes refused in part), capped at `buffer` and at what is left.
fn batch(rng: &mut Rng, capacity: usize, buffer: usize, left: u64) -> usize {
    let most = (2 * capacity + 3).min(buffer) as u64;
    (1 + rng.below(most)).min(left) as usize
}

/// Pushes messages `0..n`, mixing `try_push`, bursts of `try_push`, `push_slice` and
/// `push_iter`. Returns how many were pushed (fewer than `n` only if the consumer left).
fn produce(mut tx: Producer<Msg>, n: u64, seed: u64) -> u64 {
    let mut rng = Rng::new(seed);
    let capacity = tx.capacity();
    let mut staging = vec![Msg::default(); 1024];
    let mut next = 0u64;
    let mut idle = 0u32;
    while next < n {
        let k = batch(&mut rng, capacity, staging.len(), n - next);
        let pushed = match rng.below(4) {
            0 => match tx.try_push(Msg::new(next)) {
                Ok(()) => 1,
                Err(back) => {
                    assert_eq!(back, Msg::new(next), "a refused push returns its value");
                    0
                }
            },
            1 => {
                let mut count = 0;
                while count < k && tx.try_push(Msg::new(next + count as u64)).is_ok() {
                    count += 1;
                }
                count
            }
            2 => {
                for (i, slot) in staging[..k].iter_mut().enumerate() {
                    *slot = Msg::new(next + i as u64);
                }
                tx.push_slice(&staging[..k])
            }
            _ => {
                let mut source = (next..next + k as u64).map(Msg::new);
                let pushed = tx.push_iter(&mut source);
                // Nothing beyond what fitted was taken from the iterator.
                assert_eq!(
                    source.next(),
                    (pushed < k).then(|| Msg::new(next + pushed as u64))
                );
                pushed
            }
        };
        assert!(pushed <= k);
        next += pushed as u64;
        if pushed == 0 {
            if tx.is_consumer_dropped() {
                break;
            }
            back_off(&mut idle);
        } else {
            idle = 0;
        }
    }
    next
}

/// Pops until `n` messages arrived (or the producer left and the ring is empty), mixing
/// `try_pop`, `pop_slice` and `drain`, checking each message against its expected sequence
/// number. Returns how many arrived.
fn consume(mut rx: Consumer<Msg>, n: u64, seed: u64) -> u64 {
    let mut rng = Rng::new(seed);
    let capacity = rx.capacity();
    let mut buffer = vec![Msg::default(); 1024];
    let mut expected = 0u64;
    let mut idle = 0u32;
    let check = |expected: &mut u64, msg: Msg| {
        assert_eq!(
            msg,
            Msg::new(*expected),
            "message {expected} wrong or out of order"
        );
        *expected += 1;
    };
    while expected < n {
        let k = batch(&mut rng, capacity, buffer.len(), n - expected);
        let before = expected;
        let popped = match rng.below(3) {
            0 => match rx.try_pop() {
                Some(msg) => {
                    check(&mut expected, msg);
                    1
                }
                None => 0,
            },
            1 => {
                let got = rx.pop_slice(&mut buffer[..k]);
                for &msg in &buffer[..got] {
                    check(&mut expected, msg);
                }
                got
            }
            _ => rx.drain(k, |msg| check(&mut expected, msg)),
        };
        assert!(popped <= k);
        assert_eq!(
            expected - before,
            popped as u64,
            "the count returned is the count seen"
        );
        if popped == 0 {
            // Order matters: seen gone first, then seen empty, means nothing is still coming.
            // (Not `try_pop().is_none()` here: a value it returned would be lost; Miri found
            // that race in an earlier version of this test.)
            if rx.is_producer_dropped() && rx.is_empty() {
                break;
            }
            back_off(&mut idle);
        } else {
            idle = 0;
        }
    }
    // Everything was taken: nothing more may come out.
    assert_eq!(rx.try_pop(), None, "a value beyond the stream");
    expected
}

fn run_copy_stream(capacity: usize, seed: u64) {
    let _turn = take_turn();
    let n = if capacity <= 2 {
        stream_len() / 10
    } else {
        stream_len()
    };
    let (tx, rx) = ring::channel::<Msg>(capacity).expect("valid capacity");
    let gauge = rx.gauge();
    let stop = Arc::new(AtomicBool::new(false));
    // A third thread samples the occupancy gauge the way /metrics would.
    let observer = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut samples = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let len = gauge.len();
                assert!(len <= gauge.capacity(), "gauge {len} above capacity");
                samples += 1;
                thread::sleep(Duration::from_micros(200));
            }
            samples
        })
    };
    let started = Instant::now();
    let producer = thread::spawn(move || produce(tx, n, seed));
    let received = consume(rx, n, seed.rotate_left(32));
    let pushed = producer.join().expect("producer thread panicked");
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let samples = observer.join().expect("observer thread panicked");
    assert_eq!(pushed, n);
    assert_eq!(received, n);
    assert!(samples > 0);
    eprintln!(
        "capacity {capacity:>4}: {n} messages of 64 B in {elapsed:.2?} ({:.1} M/s, mixed ops, checked)",
        n as f64 / elapsed.as_secs_f64() / 1e6
    );
}

#[test]
fn capacity_1_delivers_every_message_once_in_order() {
    run_copy_stream(1, 0x1111);
}

#[test]
fn capacity_2_delivers_every_message_once_in_order() {
    run_copy_stream(2, 0x2222);
}

#[test]
fn capacity_64_delivers_every_message_once_in_order() {
    run_copy_stream(64, 0x6464);
}

#[test]
fn capacity_1024_delivers_every_message_once_in_order() {
    run_copy_stream(1024, 0x1024);
}

/// Values per capacity for the non-`Copy` streams (each value is a heap allocation).
fn tracked_len(capacity: usize) -> u64 {
    if capacity <= 2 {
        stream_len() / 100
    } else {
        stream_len() / 10
    }
}

/// A heap-owning value that counts its constructions and drops in counters of its test.
struct Tracked {
    seq: Box<u64>,
    drops: &'static AtomicUsize,
}

impl Tracked {
    fn new(seq: u64, created: &AtomicUsize, drops: &'static AtomicUsize) -> Self {
        created.fetch_add(1, Ordering::Relaxed);
        Self {
            seq: Box::new(seq),
            drops,
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

/// Streams `Tracked` values `0..n` through a ring of `capacity`; the consumer stops after
/// `stop_after` values (dropping its end with values possibly still inside) or at the end.
/// Returns (pushed, received).
fn run_tracked_stream(
    capacity: usize,
    n: u64,
    stop_after: u64,
    seed: u64,
    created: &'static AtomicUsize,
    drops: &'static AtomicUsize,
) -> (u64, u64) {
    let (mut tx, mut rx) = ring::channel::<Tracked>(capacity).expect("valid capacity");
    let producer = thread::spawn(move || {
        let mut rng = Rng::new(seed);
        let mut next = 0u64;
        let mut idle = 0u32;
        let mut consumer_gone = false;
        while next < n {
            let k = batch(&mut rng, capacity, 1024, n - next);
            let pushed = if rng.below(2) == 0 {
                match tx.try_push(Tracked::new(next, created, drops)) {
                    Ok(()) => 1,
                    Err(back) => {
                        assert_eq!(*back.seq, next);
                        0 // `back` is dropped here, counted like any other value
                    }
                }
            } else {
                let mut source =
                    (next..next + k as u64).map(|seq| Tracked::new(seq, created, drops));
                let pushed = tx.push_iter(&mut source);
                drop(source); // values not constructed are not counted
                pushed
            };
            next += pushed as u64;
            if pushed == 0 {
                if consumer_gone {
                    // This push was refused after the consumer's exit was seen, hence after
                    // its final cursor was visible: the ring is really full.
                    break;
                }
                // The consumer may have popped more and left after this refusal loaded its
                // cursor: once its exit is seen, push on until a push is refused again.
                consumer_gone = tx.is_consumer_dropped();
                back_off(&mut idle);
            } else {
                idle = 0;
            }
        }
        next
    });
    let mut rng = Rng::new(seed ^ 0xDEAD_BEEF);
    let mut expected = 0u64;
    let mut idle = 0u32;
    while expected < stop_after {
        let k = batch(&mut rng, capacity, 1024, stop_after - expected);
        let popped = if rng.below(2) == 0 {
            match rx.try_pop() {
                Some(value) => {
                    assert_eq!(*value.seq, expected);
                    expected += 1;
                    1
                }
                None => 0,
            }
        } else {
            rx.drain(k, |value| {
                assert_eq!(*value.seq, expected);
                expected += 1;
            })
        };
        if popped == 0 {
            back_off(&mut idle);
        } else {
            idle = 0;
        }
    }
    drop(rx);
    let pushed = producer.join().expect("producer thread panicked");
    (pushed, expected)
}

#[test]
fn owned_values_are_each_dropped_exactly_once() {
    static CREATED: AtomicUsize = AtomicUsize::new(0);
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    let _turn = take_turn();
    for (i, capacity) in CAPACITIES.into_iter().enumerate() {
        let n = tracked_len(capacity);
        let (pushed, received) =
            run_tracked_stream(capacity, n, n, 0xB0 + i as u64, &CREATED, &DROPS);
        assert_eq!((pushed, received), (n, n), "capacity {capacity}");
        let created = CREATED.load(Ordering::Relaxed);
        assert_eq!(
            DROPS.load(Ordering::Relaxed),
            created,
            "capacity {capacity}: leak or double drop"
        );
    }
}

#[test]
fn values_left_behind_by_a_departed_consumer_are_dropped_once() {
    static CREATED: AtomicUsize = AtomicUsize::new(0);
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    let _turn = take_turn();
    for (i, capacity) in CAPACITIES.into_iter().enumerate() {
        let n = tracked_len(capacity);
        let stop_after = n / 2 + i as u64;
        let (pushed, received) =
            run_tracked_stream(capacity, n, stop_after, 0xC0 + i as u64, &CREATED, &DROPS);
        assert_eq!(received, stop_after);
        // The producer gives up only on a full ring with the consumer gone, so it left a full
        // ring behind (unless the stream ended first): `capacity` values for the ring to drop.
        assert_eq!(
            pushed,
            (received + capacity as u64).min(n),
            "capacity {capacity}"
        );
        let created = CREATED.load(Ordering::Relaxed);
        assert_eq!(
            DROPS.load(Ordering::Relaxed),
            created,
            "capacity {capacity}: leak or double drop"
        );
    }
}
