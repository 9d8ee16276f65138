//! Criterion bench of the SPSC ring (`tradecore_engine::ring`) against `std::sync::mpsc`'s
//! bounded channel and `crossbeam_queue::ArrayQueue`, in the same run: the throughput of
//! moving 64-byte messages (the size of an engine command) from one thread to another.
//! Run with `cargo bench -p tradecore-engine --bench ring` (`-- --quick` for a fast pass).
//!
//! One criterion iteration moves a block of 65,536 messages; the throughput is reported in
//! elements (messages) per second. Each sample spawns a consumer thread, both threads meet at a
//! barrier, and the time runs from the barrier to the consumer's last message, so the thread
//! start-up is not timed. Every queue holds 4,096 messages. Functions of the group `ring_64B`:
//!
//! * `ours_single`: [`Producer::try_push`] / [`Consumer::try_pop`], one message at a time.
//! * `ours_batch_slice`: [`Producer::push_slice`] of up to 256 staged messages /
//!   [`Consumer::pop_slice`] into a 256-message buffer: one cursor publish per batch.
//! * `ours_batch_drain`: `push_slice` / [`Consumer::drain`] of up to 256 messages handed to a
//!   closure by value (the shape of an engine loop).
//! * `std_mpsc_sync_channel`: `SyncSender::send` / `Receiver::recv` (blocking, its natural use).
//! * `crossbeam_array_queue`: `ArrayQueue::push` / `pop` on a shared `Arc`.
//!
//! When a side finds the queue full or empty it spins (`spin_loop`) 64 times and then yields,
//! the same policy for every contender; the consumer sums a word of every message and the sum
//! is checked, so a queue that lost or repeated a message would panic instead of printing a
//! number.
//!
//! On Linux the producer (the bench's main thread) is pinned to CPU 0 and every consumer
//! thread to CPU 1, so the figures are for two threads on two cores, every message crossing
//! between cores (the case the venue's pipeline is built for). Unpinned, the scheduler may
//! time-slice both threads on one core or move them, and the figures swing widely from run to
//! run (set `RING_BENCH_NO_PIN=1` to see it). Even pinned, other work on the machine adds
//! noise: run it when `uptime` shows a low load.

use std::hint::{black_box, spin_loop};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use crossbeam_queue::ArrayQueue;
use tradecore_engine::ring::{self, Consumer, Producer};

/// Messages per criterion iteration.
const BLOCK: u64 = 1 << 16;
/// Slots of every queue.
const CAPACITY: usize = 4096;
/// Messages per batch operation.
const BATCH: usize = 256;

/// A 64-byte message, like an engine command.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
struct Msg([u64; 8]);

const _: () = assert!(std::mem::size_of::<Msg>() == 64);

impl Msg {
    #[inline(always)]
    fn new(seq: u64) -> Self {
        Self([
            seq,
            seq ^ 1,
            seq ^ 2,
            seq ^ 3,
            seq ^ 4,
            seq ^ 5,
            seq ^ 6,
            seq ^ 7,
        ])
    }

    #[inline(always)]
    fn seq(&self) -> u64 {
        self.0[0]
    }
}

/// Spin a little, then yield: the waiting policy of every contender.
#[inline(always)]
fn back_off(idle: &mut u32) {
    if *idle < 64 {
        spin_loop();
        *idle += 1;
    } else {
        thread::yield_now();
    }
}

/// Whether to pin the two threads to CPUs 0 and 1 (decided once in `main`).
static PIN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Pins the calling thread to `cpu`; returns whether it worked.
#[cfg(target_os = "linux")]
#[allow(
    unsafe_code,
    reason = "sched_setaffinity is a libc call; std has no API for CPU affinity"
)]
fn pin_current_thread(cpu: usize) -> bool {
    // SAFETY: `cpu_set_t` is a plain bit array for which all-zero is the valid empty set;
    // `CPU_SET` writes one bit inside it (`cpu` < 2 < CPU_SETSIZE); `sched_setaffinity` reads
    // `size_of::<cpu_set_t>()` bytes from a live, initialised set, and pid 0 means this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

#[cfg(not(target_os = "linux"))]
fn pin_current_thread(_cpu: usize) -> bool {
    false
}

/// Runs `consume` on a new thread and `produce` on this one, starting both at a barrier;
/// returns the time from the barrier to the consumer's end after checking the sum of the
/// sequence numbers it saw.
fn timed<P, C>(total: u64, produce: P, consume: C) -> Duration
where
    P: FnOnce(u64),
    C: FnOnce(u64) -> u64 + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(2));
    let consumer = {
        let barrier = Arc::clone(&barrier);
        thread::spawn(move || {
            if PIN.get() == Some(&true) {
                pin_current_thread(1);
            }
            barrier.wait();
            let sum = consume(total);
            (sum, Instant::now())
        })
    };
    barrier.wait();
    let start = Instant::now();
    produce(total);
    let (sum, end) = consumer.join().expect("consumer thread panicked");
    assert_eq!(sum, total * (total - 1) / 2, "messages lost or repeated");
    end - start
}

fn ours_single(total: u64) -> Duration {
    let (mut tx, mut rx): (Producer<Msg>, Consumer<Msg>) =
        ring::channel(CAPACITY).expect("power-of-two capacity");
    timed(
        total,
        move |total| {
            let mut idle = 0;
            for seq in 0..total {
                let mut msg = Msg::new(seq);
                while let Err(back) = tx.try_push(msg) {
                    msg = back;
                    back_off(&mut idle);
                }
                idle = 0;
            }
        },
        move |total| {
            let (mut sum, mut got, mut idle) = (0u64, 0u64, 0);
            while got < total {
                match rx.try_pop() {
                    Some(msg) => {
                        sum += black_box(msg).seq();
                        got += 1;
                        idle = 0;
                    }
                    None => back_off(&mut idle),
                }
            }
            sum
        },
    )
}

/// The producer side of the batched runs: stage up to `BATCH` messages, push what fits.
fn produce_batched(tx: &mut Producer<Msg>, total: u64) {
    let mut staging = [Msg::default(); BATCH];
    let (mut next, mut idle) = (0u64, 0);
    while next < total {
        let k = (total - next).min(BATCH as u64) as usize;
        for (i, slot) in staging[..k].iter_mut().enumerate() {
            *slot = Msg::new(next + i as u64);
        }
        let mut sent = 0;
        while sent < k {
            let n = tx.push_slice(&staging[sent..k]);
            if n == 0 {
                back_off(&mut idle);
            } else {
                sent += n;
                idle = 0;
            }
        }
        next += k as u64;
    }
}

fn ours_batch_slice(total: u64) -> Duration {
    let (mut tx, mut rx): (Producer<Msg>, Consumer<Msg>) =
        ring::channel(CAPACITY).expect("power-of-two capacity");
    timed(
        total,
        move |total| produce_batched(&mut tx, total),
        move |total| {
            let mut buffer = [Msg::default(); BATCH];
            let (mut sum, mut got, mut idle) = (0u64, 0u64, 0);
            while got < total {
                let n = rx.pop_slice(&mut buffer);
                if n == 0 {
                    back_off(&mut idle);
                    continue;
                }
                idle = 0;
                for msg in black_box(&buffer[..n]) {
                    sum += msg.seq();
                }
                got += n as u64;
            }
            sum
        },
    )
}

fn ours_batch_drain(total: u64) -> Duration {
    let (mut tx, mut rx): (Producer<Msg>, Consumer<Msg>) =
        ring::channel(CAPACITY).expect("power-of-two capacity");
    timed(
        total,
        move |total| produce_batched(&mut tx, total),
        move |total| {
            let (mut sum, mut got, mut idle) = (0u64, 0u64, 0);
            while got < total {
                let n = rx.drain(BATCH, |msg| sum += black_box(msg).seq());
                if n == 0 {
                    back_off(&mut idle);
                } else {
                    idle = 0;
                    got += n as u64;
                }
            }
            sum
        },
    )
}

fn std_mpsc_sync_channel(total: u64) -> Duration {
    let (tx, rx) = mpsc::sync_channel::<Msg>(CAPACITY);
    timed(
        total,
        move |total| {
            for seq in 0..total {
                tx.send(Msg::new(seq)).expect("receiver alive");
            }
        },
        move |total| {
            let mut sum = 0u64;
            for _ in 0..total {
                sum += black_box(rx.recv().expect("sender alive")).seq();
            }
            sum
        },
    )
}

fn crossbeam_array_queue(total: u64) -> Duration {
    let queue = Arc::new(ArrayQueue::<Msg>::new(CAPACITY));
    let consumer_queue = Arc::clone(&queue);
    timed(
        total,
        move |total| {
            let mut idle = 0;
            for seq in 0..total {
                let mut msg = Msg::new(seq);
                while let Err(back) = queue.push(msg) {
                    msg = back;
                    back_off(&mut idle);
                }
                idle = 0;
            }
        },
        move |total| {
            let (mut sum, mut got, mut idle) = (0u64, 0u64, 0);
            while got < total {
                match consumer_queue.pop() {
                    Some(msg) => {
                        sum += black_box(msg).seq();
                        got += 1;
                        idle = 0;
                    }
                    None => back_off(&mut idle),
                }
            }
            sum
        },
    )
}

/// Moves that many messages between two threads and returns the time it took.
type Contender = fn(u64) -> Duration;

fn main() {
    let want_pin = std::env::var_os("RING_BENCH_NO_PIN").is_none()
        && thread::available_parallelism().is_ok_and(|n| n.get() >= 2);
    let pinned = want_pin && pin_current_thread(0);
    PIN.set(pinned).expect("set once");
    eprintln!(
        "ring bench: {}",
        if pinned {
            "producer pinned to CPU 0, consumer to CPU 1"
        } else {
            "threads not pinned"
        }
    );
    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(20);
    let mut group = c.benchmark_group("ring_64B");
    group.throughput(Throughput::Elements(BLOCK));
    group.sampling_mode(SamplingMode::Flat);
    let contenders: [(&str, Contender); 5] = [
        ("ours_single", ours_single),
        ("ours_batch_slice", ours_batch_slice),
        ("ours_batch_drain", ours_batch_drain),
        ("std_mpsc_sync_channel", std_mpsc_sync_channel),
        ("crossbeam_array_queue", crossbeam_array_queue),
    ];
    for (name, run) in contenders {
        group.bench_function(name, |b| b.iter_custom(|iters| run(iters * BLOCK)));
    }
    group.finish();
    c.final_summary();
}
