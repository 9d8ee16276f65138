//! `server::wait`: how the server's threads wait for work without burning the machine.
//!
//! ## Strategy
//!
//! A consumer that finds its ring empty does not go to sleep at once (a wake-up costs a
//! system call on both sides and a few microseconds of latency), nor spin for ever (on a
//! two-core machine shared with busy client processes a spinning thread steals the core the
//! producer or a client needs). [`Idle`] escalates instead:
//!
//! 1. **spin**: bursts of [`std::hint::spin_loop`] for at most [`SPIN_BUDGET`] of wall time
//!    (checked with the monotonic clock after each burst): catches the next message of a
//!    busy stream (closed loop, bursts) with no system call;
//! 2. **sleep**: the caller parks (engine) or blocks in `epoll_wait` (publisher, gateway)
//!    with a timeout, after announcing it through a [`Wake`]. A producer that publishes into
//!    the ring calls [`Wake::notify`], which wakes the sleeper only when it announced a sleep
//!    (one fence and one load otherwise). The timeout bounds any missed wake-up and drives
//!    the thread's timers (heartbeats, batch syncs, metrics).
//!
//! Why so short (measured, `bench/loadgen_bench.py`): with the venue's three pipeline threads
//! and the load generator on two cores, a thread that keeps spinning or yielding between
//! messages stays runnable, uses up its scheduler share and then waits whole time slices
//! (milliseconds) behind the others while a message sits in its ring. `yield_now` is no
//! better: the thread stays runnable, and once it has given the core away it comes back only
//! when the scheduler picks it again, often after the next message arrived (an earlier
//! version spun about 20 µs then yielded 16 times: p50 0.6-1.2 ms, p99 5-8 ms at 100,000
//! commands/s). A thread that blocks instead is woken by its producer's notify and, having
//! slept, is scheduled at once. At 100,000 commands/s (one every 10 µs) a spin of a few
//! microseconds rarely finds the next message, so the threads sleep between messages; under
//! saturation the rings are never empty and nobody sleeps. Measured on the 2-core machine
//! (other work running, load 2.6-3.2; `bench/loadgen_bench.py --fsync none --sweep 100000
//! --duration 4 --warmup 1 --sweep-duration 3 --patience 0`): a 1 µs budget gave a closed
//! loop of 1.13-1.24M commands/s, 4 µs gave 1.49-1.68M with the same latency at 100,000/s.
//!
//! Any work found resets the escalation. A producer that finds the ring *full* backs off the
//! same way but sleeps with a plain 50 µs `thread::sleep` (the consumer does not notify).
//!
//! Cost: one `Instant::now` (a vDSO clock read, tens of nanoseconds) per spin burst.
//!
//! ## Invariant (no lost wake-up)
//!
//! The sleeper stores `sleeping = true`, issues a `SeqCst` fence, then re-checks the ring; the
//! producer publishes into the ring, issues a `SeqCst` fence, then loads `sleeping`. One of
//! the two sees the other's store, so either the sleeper finds the message or the producer
//! wakes it. `Thread::unpark` before `park` makes the `park` return at once, and a `mio`
//! waker leaves its eventfd readable, so a wake-up that lands between the re-check and the
//! sleep is not lost either.

use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// Longest time an idle thread spins before it sleeps.
pub const SPIN_BUDGET: Duration = Duration::from_micros(4);
/// Spin-loop hints per burst (between two clock reads).
const SPIN_BURST: u32 = 16;

/// What an idle thread should do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Spin a little and look again.
    Spin,
    /// Announce the sleep ([`Wake::prepare`]), re-check, then sleep.
    Sleep,
}

/// The escalation counter of one waiting thread (see the module doc).
#[derive(Debug)]
pub struct Idle {
    /// When the current idle stretch began (`None`: work was just found).
    since: Option<Instant>,
    /// How long to spin before sleeping.
    budget: Duration,
}

impl Default for Idle {
    fn default() -> Self {
        Idle::with_budget(SPIN_BUDGET)
    }
}

impl Idle {
    /// Spins for `budget` of each idle stretch before sleeping (the inline pipeline's
    /// `pipeline.spin_us`; [`SPIN_BUDGET`] otherwise).
    pub fn with_budget(budget: Duration) -> Idle {
        Idle {
            since: None,
            budget,
        }
    }

    /// Work was found: start over at spinning.
    #[inline]
    pub fn reset(&mut self) {
        self.since = None;
    }

    /// The next step after finding nothing to do; spins happen inside.
    #[inline]
    pub fn step(&mut self) -> Step {
        let now = Instant::now();
        let since = *self.since.get_or_insert(now);
        if now.saturating_duration_since(since) < self.budget {
            for _ in 0..SPIN_BURST {
                std::hint::spin_loop();
            }
            Step::Spin
        } else {
            Step::Sleep
        }
    }

    /// Back-off of a producer facing a full ring (never parks: nobody notifies it).
    pub fn backoff(&mut self) {
        if self.step() == Step::Sleep {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

/// How a sleeping thread is woken.
pub enum Waker {
    /// A thread that parks; it registers itself with [`Wake::register_current`] before it
    /// first sleeps.
    Park(OnceLock<Thread>),
    /// A thread blocked in `mio::Poll::poll`.
    Mio(Arc<mio::Waker>),
}

/// The sleep announcement of one consumer, shared with its producer(s).
pub struct Wake {
    sleeping: AtomicBool,
    waker: Waker,
}

impl std::fmt::Debug for Wake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wake")
            .field("sleeping", &self.sleeping.load(Ordering::Relaxed))
            .finish()
    }
}

impl Wake {
    /// A wake handle for the consumer reached through `waker`.
    pub fn new(waker: Waker) -> Arc<Wake> {
        Arc::new(Wake {
            sleeping: AtomicBool::new(false),
            waker,
        })
    }

    /// A wake handle for a thread that parks (see [`Wake::register_current`]).
    pub fn parking() -> Arc<Wake> {
        Wake::new(Waker::Park(OnceLock::new()))
    }

    /// Called by the parking consumer's own thread before it first sleeps.
    pub fn register_current(&self) {
        if let Waker::Park(t) = &self.waker {
            let _ = t.set(std::thread::current());
        }
    }

    /// Consumer: announce a sleep. Re-check the ring after this, before sleeping.
    #[inline]
    pub fn prepare(&self) {
        self.sleeping.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Consumer: awake again.
    #[inline]
    pub fn done(&self) {
        self.sleeping.store(false, Ordering::Relaxed);
    }

    /// Producer: after publishing into the ring, wake the consumer if it announced a sleep.
    #[inline]
    pub fn notify(&self) {
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) {
            self.wake();
        }
    }

    /// Wakes the consumer unconditionally (shutdown, timers).
    pub fn wake(&self) {
        match &self.waker {
            Waker::Park(t) => {
                if let Some(t) = t.get() {
                    t.unpark();
                }
            }
            Waker::Mio(w) => {
                // A failed eventfd write only delays the wake-up to the poll timeout.
                let _ = w.wake();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_spins_for_the_budget_then_sleeps_and_reset_starts_over() {
        let mut idle = Idle::default();
        let start = Instant::now();
        assert_eq!(idle.step(), Step::Spin, "the first idle step spins");
        loop {
            let step = idle.step();
            if step == Step::Sleep {
                break;
            }
            assert_eq!(step, Step::Spin);
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "never reached Sleep"
            );
        }
        assert!(
            start.elapsed() >= SPIN_BUDGET,
            "slept before the budget was spent"
        );
        assert_eq!(idle.step(), Step::Sleep, "stays asleep until reset");
        idle.reset();
        assert_eq!(idle.step(), Step::Spin, "reset starts over at spinning");
    }

    #[test]
    fn notify_wakes_a_parked_thread_that_announced_its_sleep() {
        let wake = Wake::parking();
        let flag = Arc::new(AtomicBool::new(false));
        let (w, f) = (Arc::clone(&wake), Arc::clone(&flag));
        let sleeper = std::thread::spawn(move || {
            w.register_current();
            let start = Instant::now();
            loop {
                w.prepare();
                if f.load(Ordering::SeqCst) {
                    w.done();
                    return start.elapsed();
                }
                // Long timeout: only a notify brings it back quickly.
                std::thread::park_timeout(Duration::from_secs(30));
                w.done();
            }
        });
        std::thread::sleep(Duration::from_millis(20));
        flag.store(true, Ordering::SeqCst);
        wake.notify();
        let waited = sleeper.join().expect("sleeper thread");
        assert!(
            waited < Duration::from_secs(30),
            "woken by notify, not by the timeout"
        );
    }
}
