//! `server::wait`: how the server's threads wait for work without burning the machine.
//!
//! ## Strategy
//!
//! A consumer that finds its ring empty does not go to sleep at once (a wake-up costs a
//! system call on both sides and several microseconds of latency), nor spin for ever (on a
//! two-core machine shared with busy client processes a spinning thread steals the core the
//! producer or a client needs). [`Idle`] escalates instead:
//!
//! 1. **spin**: [`SPIN_ROUNDS`] rounds of [`std::hint::spin_loop`] bursts (a few
//!    microseconds in all): catches the next message of a busy stream with no system call;
//! 2. **yield**: [`YIELD_ROUNDS`] calls of [`std::thread::yield_now`]: lets a runnable thread
//!    on this core (often the producer itself) run;
//! 3. **sleep**: the caller parks (engine) or blocks in `epoll_wait` (publisher, gateway)
//!    with a timeout, after announcing it through a [`Wake`]. A producer that publishes into
//!    the ring calls [`Wake::notify`], which wakes the sleeper only when it announced a sleep
//!    (one fence and one load otherwise). The timeout bounds any missed wake-up and drives
//!    the thread's timers (heartbeats, batch syncs, metrics).
//!
//! Any work found resets the escalation. A producer that finds the ring *full* backs off the
//! same way but sleeps with a plain 50 µs `thread::sleep` (the consumer does not notify).
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
use std::time::Duration;

/// Bursts of spin-loop hints before yielding.
pub const SPIN_ROUNDS: u32 = 32;
/// `yield_now` calls before sleeping.
pub const YIELD_ROUNDS: u32 = 16;

/// What an idle thread should do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Spin a little and look again.
    Spin,
    /// Yield the core and look again.
    Yield,
    /// Announce the sleep ([`Wake::prepare`]), re-check, then sleep.
    Sleep,
}

/// The escalation counter of one waiting thread (see the module doc).
#[derive(Debug, Default)]
pub struct Idle {
    rounds: u32,
}

impl Idle {
    /// Work was found: start over at spinning.
    #[inline]
    pub fn reset(&mut self) {
        self.rounds = 0;
    }

    /// The next step after finding nothing to do; spins happen inside.
    #[inline]
    pub fn step(&mut self) -> Step {
        self.rounds = self.rounds.saturating_add(1);
        if self.rounds <= SPIN_ROUNDS {
            for _ in 0..32 {
                std::hint::spin_loop();
            }
            Step::Spin
        } else if self.rounds <= SPIN_ROUNDS + YIELD_ROUNDS {
            std::thread::yield_now();
            Step::Yield
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
