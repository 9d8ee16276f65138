//! `server::inline`: the inline pipeline (`pipeline.mode = "inline"`). One thread runs the
//! three stages in turn, gateway, then engine, then publisher, over the same two SPSC rings
//! the threaded pipeline uses; every stage keeps its code, its invariants and its order.
//!
//! ## Why
//!
//! In the threaded pipeline a command that arrives on a quiet venue wakes three sleeping
//! threads one after the other, and each wake-up costs a system call on both sides, a
//! context switch and a few microseconds before the woken thread runs. On a machine with a
//! core per stage the threads spin instead and the hand-offs are cheap; on a two-core machine
//! that also runs the clients (the load generator), the stages share one core, so the
//! hand-offs are pure cost and they serialize anyway. Inline, a command costs one wake-up
//! (the socket's) and no hand-off.
//!
//! ## Loop
//!
//! Each turn: a gateway round (reads every readable connection, pushes the commands to the
//! engine ring), an engine round (journal append, apply, push the outputs to the publisher
//! ring), a publisher round (release what is durable, write to the sockets and feeds, timers).
//! A turn that did nothing escalates like the threads do ([`Idle`]): spin (zero-timeout polls)
//! for `pipeline.spin_us` (default 4 µs), then the engine's idle work (batch syncs, metrics)
//! and a block in the gateway's `epoll_wait`. The publisher's `Poll` (writable sockets, its waker) is registered
//! in the gateway's, so a socket that can take more bytes, a durable-sequence advance under
//! `fsync = always` or a shutdown wakes the blocked thread too. The block lasts at most 500 µs
//! (the engine's batch-sync timer) or 100 µs while reports wait for durability.
//!
//! ## Shutdown
//!
//! As the threads do, in pipeline order: the gateway closes every connection (injecting
//! `Disconnect`s) and drops its producer; the engine drains its ring and hands back the venue
//! and journal; the publisher sends what is left and closes the sessions.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::Interest;

use crate::ring::Consumer;

use super::engine::{self, EngineExit};
use super::gateway;
use super::publisher;
use super::wait::{Idle, Step, Wake};
use super::{Inbound, Outgoing, ServerError};

/// Longest block of an idle turn: the engine's batch-sync and metrics timers run at least
/// this often.
const MAX_BLOCK: Duration = Duration::from_micros(500);

/// The stages of the inline pipeline, ready to run on one thread.
pub struct Inline {
    gw: gateway::Looper,
    eng: engine::Looper,
    pb: publisher::Looper,
    in_rx: Consumer<Inbound>,
    out_rx: Consumer<Outgoing>,
    wake_pub: Arc<Wake>,
    spin: Duration,
}

impl Inline {
    /// Joins the three stages: registers the publisher's poll in the gateway's. An idle
    /// thread polls for `spin` before it blocks (`pipeline.spin_us`).
    pub fn new(
        gw: gateway::Looper,
        eng: engine::Looper,
        pb: publisher::Looper,
        in_rx: Consumer<Inbound>,
        out_rx: Consumer<Outgoing>,
        wake_pub: Arc<Wake>,
        spin: Duration,
    ) -> Result<Inline, ServerError> {
        let fd = pb.poll().as_raw_fd();
        gw.poll()
            .registry()
            .register(&mut SourceFd(&fd), gateway::FOREIGN, Interest::READABLE)
            .map_err(|source| ServerError::Io {
                what: "cannot register the publisher's poll in the gateway's".into(),
                source,
            })?;
        Ok(Inline {
            gw,
            eng,
            pb,
            in_rx,
            out_rx,
            wake_pub,
            spin,
        })
    }

    /// Runs the pipeline until the server stops; returns what the engine hands back.
    pub fn run(self) -> EngineExit {
        let Inline {
            mut gw,
            mut eng,
            mut pb,
            mut in_rx,
            mut out_rx,
            wake_pub,
            spin,
        } = self;
        let mut idle = Idle::with_budget(spin);
        let mut timeout = Duration::ZERO;
        let mut pub_events = false;
        loop {
            let sleeping = !timeout.is_zero();
            if sleeping {
                // Announce the sleep to the publisher's waker (durable-sequence advances under
                // `fsync = always`), then re-check the ring it guards.
                wake_pub.prepare();
                if !out_rx.is_empty() {
                    timeout = Duration::ZERO;
                }
            }
            let read = {
                let mut pub_room = || make_room(&mut pb, &mut out_rx, &wake_pub);
                let mut room = || {
                    eng.round(&mut in_rx, Some(&mut pub_room));
                };
                gw.round(timeout, |_| pub_events = true, Some(&mut room))
            };
            if sleeping {
                wake_pub.done();
            }
            let applied = eng.round(
                &mut in_rx,
                Some(&mut || make_room(&mut pb, &mut out_rx, &wake_pub)),
            );
            let released = pb.round(&mut out_rx);
            if std::mem::take(&mut pub_events) {
                pb.wait(Duration::ZERO);
            }
            if gw.stopping() {
                break;
            }
            if read > 0 || applied > 0 || released || gw.has_pending() || !in_rx.is_empty() {
                idle.reset();
                timeout = Duration::ZERO;
                continue;
            }
            timeout = match idle.step() {
                Step::Spin => Duration::ZERO,
                Step::Sleep => {
                    eng.before_sleep();
                    MAX_BLOCK.min(pb.max_sleep())
                }
            };
        }
        {
            let mut pub_room = || make_room(&mut pb, &mut out_rx, &wake_pub);
            let mut room = || {
                eng.round(&mut in_rx, Some(&mut pub_room));
            };
            gw.finish(Some(&mut room));
        }
        loop {
            let n = eng.round(
                &mut in_rx,
                Some(&mut || make_room(&mut pb, &mut out_rx, &wake_pub)),
            );
            if n == 0 && in_rx.is_empty() {
                break;
            }
        }
        let exit = eng.finish(Some(&mut || make_room(&mut pb, &mut out_rx, &wake_pub)));
        loop {
            if !pb.round(&mut out_rx) {
                if pb.drained(&out_rx) {
                    break;
                }
                pb.wait(pb.max_sleep());
            }
        }
        pb.finish();
        exit
    }
}

/// Room in the publisher ring, made by running the publisher: takes items into its held
/// queue and sends them. When it can take nothing (its queue is full of reports waiting for
/// durability under `fsync = always`), waits for the journal's sync thread to wake it.
fn make_room(pb: &mut publisher::Looper, out_rx: &mut Consumer<Outgoing>, wake_pub: &Wake) {
    if !pb.round(out_rx) {
        wake_pub.prepare();
        pb.wait(DURABLE_WAIT);
        wake_pub.done();
    }
}

/// Longest wait of [`make_room`] for a durable-sequence advance.
const DURABLE_WAIT: Duration = Duration::from_micros(100);
