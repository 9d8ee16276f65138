//! `server::engine`: the engine thread. It owns the [`Venue`] and the [`Journal`]; for every
//! command popped from the gateway ring it appends the encoded command to the journal (written
//! in place into the mapped segment), then applies it, then stages what the venue produced for
//! the publisher ring, each item tagged with the journal sequence number of its command.
//! Control items of the gateway (new connection, malformed frame, close) pass through in
//! order, tagged with the last sequence number appended, so the publisher sees one ordered
//! stream.
//!
//! ## Invariants
//!
//! * A command is applied only after `append` returned its sequence number: whatever it
//!   produces is in the journal before the publisher can send it. If the journal fails (disk
//!   full, failed sync), the engine applies nothing more, marks the server failed (the gateway
//!   then closes every connection) and keeps draining its ring until the gateway is gone.
//! * Nothing here blocks or allocates per message: the output vector and the staging buffer
//!   are reused (they grow only to their peak, e.g. a mass cancel), the journal append is a
//!   copy into a mapping (a sync only under `fsync = batch/always` and only at batch
//!   boundaries with the journal's own policy), and the latency histogram is preallocated.
//!   A full publisher ring makes the engine back off (a short spin, then 50 µs sleeps):
//!   back-pressure reaches the gateway and, through TCP flow control, the clients.
//! * Snapshots: every `snapshot_every` commands the engine encodes the venue (O(orders), a few
//!   ms for 100k orders, allocates) and hands the bytes to the snapshot thread, which syncs the
//!   journal segments and writes the file; the engine never waits for the disk. When the
//!   snapshot thread is still busy with the previous one, the engine tries again at the next
//!   command. Old journal segments are deleted behind the oldest kept snapshot when idle.
//!
//! ## Lookahead
//!
//! Commands pass through a window of [`LOOKAHEAD`] items between the ring and their
//! handling: when a command enters it, the engine asks the venue to start fetching the
//! client-id index entry it will need ([`Venue::prefetch`]), two items later the order
//! record ([`Venue::prefetch_order`]), and two items after that it handles it. The venue's
//! lookups are cache misses into tables of up to tens of MB; this overlaps them with the
//! work on the commands in between. Items leave the window in arrival order and the window
//! is emptied at the end of every drained batch, so nothing waits for later input and the
//! order of journal records, applies and outputs is unchanged.
//!
//! ## Cost per command
//!
//! One encode into the journal (at most 62 bytes plus a CRC), two prefetch hints,
//! `Venue::apply`, one clock read (latency histogram), and a move of each output into the
//! staging buffer; the ring push is per batch of up to [`BATCH`] commands.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::journal::{Journal, JournalError};
use crate::ring::{Consumer, Producer};
use crate::venue::{Command, Outbound, Venue};

use super::log::{Log, Val};
use super::metrics::{command_index, new_histogram, Metrics};
use super::wait::{Idle, Step, Wake};
use super::{Inbound, Item, Outgoing, Shared};

/// Commands drained from the ring per round.
pub const BATCH: usize = 256;
/// Items popped from the ring and not yet handled: the lookahead window (module doc).
pub const LOOKAHEAD: usize = 4;
/// Staged outputs that trigger a push to the publisher ring in the middle of a round.
const STAGING_FLUSH: usize = 2048;

/// A snapshot for the snapshot thread: covers journal records up to `seq`.
pub struct SnapshotJob {
    /// Last journal sequence number the body covers.
    pub seq: u64,
    /// `Venue::snapshot()`.
    pub body: Vec<u8>,
}

/// The snapshot hand-off between the engine and the snapshot thread.
pub struct SnapshotCtl {
    /// Commands between snapshots (0 = only at shutdown).
    pub every: u64,
    /// Where jobs go.
    pub tx: SyncSender<SnapshotJob>,
    /// Set by the engine when it sends a job, cleared by the snapshot thread when done.
    pub busy: Arc<AtomicBool>,
    /// Journal records before this may be deleted (set by the snapshot thread).
    pub truncate_before: Arc<AtomicU64>,
}

/// What the engine thread gives back when it ends.
pub struct EngineExit {
    /// The venue, as of the last command applied.
    pub venue: Venue,
    /// The journal, still open (the caller flushes it and writes the final snapshot).
    pub journal: Journal,
    /// Why the engine stopped applying commands early, if it did.
    pub error: Option<String>,
    /// Last sequence number appended.
    pub last_seq: u64,
}

/// Everything the engine thread owns except its input ring.
pub struct Engine {
    /// The state machine.
    pub venue: Venue,
    /// The journal.
    pub journal: Journal,
    /// To the publisher.
    pub tx: Producer<Outgoing>,
    /// The engine's own sleep announcement (the gateway notifies it).
    pub wake_self: Arc<Wake>,
    /// The publisher's.
    pub wake_pub: Arc<Wake>,
    /// Shared counters.
    pub metrics: Arc<Metrics>,
    /// Server-wide flags.
    pub shared: Arc<Shared>,
    /// Snapshot hand-off.
    pub snapshots: SnapshotCtl,
    /// Logs.
    pub log: Log,
}

struct State {
    e: Engine,
    out: Vec<Outbound>,
    staging: Vec<Outgoing>,
    hist: hdrhistogram::Histogram<u64>,
    counts: [u64; 9],
    last_seq: u64,
    since_snapshot: u64,
    error: Option<String>,
    t_prev: Instant,
    /// The lookahead window, oldest first (at most [`LOOKAHEAD`] items).
    ahead: VecDeque<Inbound>,
    /// Inline pipeline: outputs go to the ring only at the end of a round, where the caller
    /// can make room (staging grows to the peak of one round meanwhile).
    deferred: bool,
}

impl State {
    /// Takes one item from the ring into the lookahead window, handling the oldest when the
    /// window is full.
    #[inline]
    fn push(&mut self, item: Inbound) {
        if let Inbound::Command(cmd) = &item {
            self.e.venue.prefetch(cmd);
        }
        self.ahead.push_back(item);
        let n = self.ahead.len();
        if n >= 3 {
            if let Some(Inbound::Command(cmd)) = self.ahead.get(n - 3) {
                self.e.venue.prefetch_order(cmd);
            }
        }
        if n > LOOKAHEAD {
            if let Some(item) = self.ahead.pop_front() {
                self.handle(item);
            }
        }
    }

    /// Handles what is left in the lookahead window (end of a drained batch).
    #[inline]
    fn drain_ahead(&mut self) {
        while let Some(item) = self.ahead.pop_front() {
            self.handle(item);
        }
    }

    #[inline]
    fn handle(&mut self, item: Inbound) {
        match item {
            Inbound::Command(cmd) => self.command(&cmd),
            Inbound::Control(c) => self.staging.push(Outgoing {
                jseq: self.last_seq,
                item: Item::Control(c),
            }),
        }
        if self.staging.len() >= STAGING_FLUSH && !self.deferred {
            self.flush(None);
        }
    }

    #[inline]
    fn command(&mut self, cmd: &Command) {
        if self.error.is_some() {
            return;
        }
        let len = cmd.encoded_len();
        let appended = self.e.journal.append_with(len, |dst| {
            // `dst` is exactly `encoded_len()` bytes, the size `encode_into` needs.
            let _ = cmd.encode_into(dst);
        });
        let seq = match appended {
            Ok(seq) => seq,
            Err(err) => return self.fail(&err),
        };
        self.last_seq = seq;
        self.e.venue.apply(cmd, &mut self.out);
        for msg in self.out.drain(..) {
            self.staging.push(Outgoing {
                jseq: seq,
                item: Item::Venue(msg),
            });
        }
        self.counts[command_index(&cmd.input)] += 1;
        let now = Instant::now();
        let ns = now.saturating_duration_since(self.t_prev).as_nanos() as u64;
        let _ = self.hist.record(ns.max(1));
        self.t_prev = now;
        self.since_snapshot += 1;
        let ctl = &self.e.snapshots;
        if ctl.every > 0 && self.since_snapshot >= ctl.every && !ctl.busy.load(Ordering::Acquire) {
            ctl.busy.store(true, Ordering::Release);
            let job = SnapshotJob {
                seq,
                body: self.e.venue.snapshot(),
            };
            if ctl.tx.try_send(job).is_err() {
                ctl.busy.store(false, Ordering::Release);
            } else {
                self.since_snapshot = 0;
            }
        }
    }

    fn fail(&mut self, err: &JournalError) {
        let msg = format!("journal append failed, the venue stops applying commands: {err}");
        self.e
            .log
            .error("journal_failed", &[("error", Val::S(&msg))]);
        self.error = Some(msg);
        self.e.shared.fail();
    }

    /// Pushes the staged outputs to the publisher ring. While it is full: `room` when given
    /// (the inline pipeline runs the publisher, the ring's consumer, on this thread), else a
    /// back-off while the publisher thread catches up.
    fn flush(&mut self, mut room: Option<&mut dyn FnMut()>) {
        if self.staging.is_empty() {
            return;
        }
        let mut it = self.staging.drain(..);
        let mut idle = Idle::default();
        while it.len() > 0 {
            if self.e.tx.push_iter(&mut it) == 0 {
                if self.e.tx.is_consumer_dropped() {
                    // The publisher is gone (it only ends after us unless it failed): drop.
                    break;
                }
                match room.as_deref_mut() {
                    Some(room) => room(),
                    None => {
                        self.e.wake_pub.notify();
                        idle.backoff();
                    }
                }
            } else {
                idle.reset();
            }
        }
        drop(it);
        self.e.wake_pub.notify();
    }

    /// Idle-time work: batch syncs, journal truncation behind snapshots, metrics.
    fn housekeeping(&mut self, publish_metrics: bool) {
        if self.error.is_none() {
            if let Err(err) = self.e.journal.tick() {
                self.fail(&err);
            }
            let before = self.e.snapshots.truncate_before.load(Ordering::Acquire);
            if before > 0 {
                if let Err(err) = self.e.journal.truncate_before(before) {
                    self.e.log.warn(
                        "journal_truncate_failed",
                        &[("error", Val::S(&err.to_string()))],
                    );
                }
                self.e.snapshots.truncate_before.store(0, Ordering::Release);
            }
        }
        if publish_metrics {
            self.publish_metrics();
        }
    }

    fn publish_metrics(&mut self) {
        let m = &self.e.metrics;
        for (i, c) in self.counts.iter().enumerate() {
            m.commands[i].store(*c, Ordering::Relaxed);
        }
        let st = self.e.journal.stats();
        m.journal_records.store(st.records, Ordering::Relaxed);
        m.journal_bytes.store(st.bytes_written, Ordering::Relaxed);
        m.fsyncs.store(st.fsyncs, Ordering::Relaxed);
        m.fsync_ns_total.store(st.fsync_ns_total, Ordering::Relaxed);
        m.fsync_ns_max.store(st.fsync_ns_max, Ordering::Relaxed);
        for (i, c) in st.fsync_histogram.counts().iter().enumerate() {
            m.fsync_buckets[i].store(*c, Ordering::Relaxed);
        }
        m.journal_seq.store(self.last_seq, Ordering::Relaxed);
        if !self.hist.is_empty() {
            if let Ok(mut h) = m.engine_latency.try_lock() {
                if h.add(&self.hist).is_ok() {
                    self.hist.reset();
                }
            }
        }
    }
}

/// Shortest interval between two metric publications made when the engine goes idle.
const IDLE_METRICS: Duration = Duration::from_millis(1);

/// The engine's loop, one round at a time: [`run`] drives it on its own thread, the inline
/// pipeline (`server::inline`) together with the gateway and the publisher.
pub struct Looper {
    st: State,
    last_metrics: Instant,
}

impl Looper {
    /// The loop over `engine`, before its first round.
    pub fn new(engine: Engine) -> Looper {
        let last_seq = engine.journal.next_seq().saturating_sub(1);
        Looper {
            st: State {
                e: engine,
                out: Vec::with_capacity(1024),
                staging: Vec::with_capacity(STAGING_FLUSH + 1024),
                hist: new_histogram(),
                counts: [0; 9],
                last_seq,
                since_snapshot: 0,
                error: None,
                t_prev: Instant::now(),
                ahead: VecDeque::with_capacity(LOOKAHEAD + 1),
                deferred: false,
            },
            last_metrics: Instant::now(),
        }
    }

    /// The inline pipeline's engine: pushes to the publisher ring only at the end of a round,
    /// through the `room` callback of [`Looper::round`] and [`Looper::finish`].
    pub fn inline(engine: Engine) -> Looper {
        let mut lp = Looper::new(engine);
        lp.st.deferred = true;
        lp
    }

    /// Drains up to [`BATCH`] items from `rx`, journals and applies them, and pushes what the
    /// venue produced to the publisher ring (calling `room` while it is full, if given).
    /// Returns the number of items taken.
    #[inline]
    pub fn round(&mut self, rx: &mut Consumer<Inbound>, room: Option<&mut dyn FnMut()>) -> usize {
        let st = &mut self.st;
        st.t_prev = Instant::now();
        let n = rx.drain(BATCH, |item| st.push(item));
        st.drain_ahead();
        if n > 0 {
            st.flush(room);
            if self.last_metrics.elapsed() >= Duration::from_millis(50) {
                st.housekeeping(true);
                self.last_metrics = Instant::now();
            }
        }
        n
    }

    /// Idle-time work before a sleep: batch syncs, journal truncation, and the metrics at
    /// most once per [`IDLE_METRICS`] (at 100,000 commands/s the engine sleeps between most
    /// commands: publishing a whole-histogram merge before each of those sleeps would add that
    /// work to every command).
    pub fn before_sleep(&mut self) {
        let publish = self.last_metrics.elapsed() >= IDLE_METRICS;
        self.st.housekeeping(publish);
        if publish {
            self.last_metrics = Instant::now();
        }
    }

    /// The engine's sleep announcement.
    pub fn wake_self(&self) -> &Wake {
        &self.st.e.wake_self
    }

    /// Final flush (`room` as in [`Looper::round`]) and metrics; hands back the venue and the
    /// journal. Drops the producer of the publisher ring, which tells the publisher the output
    /// is over.
    pub fn finish(self, room: Option<&mut dyn FnMut()>) -> EngineExit {
        let mut st = self.st;
        st.flush(room);
        st.housekeeping(true);
        EngineExit {
            last_seq: st.last_seq,
            error: st.error,
            venue: st.e.venue,
            journal: st.e.journal,
        }
    }
}

/// Runs the engine until the gateway's producer is gone and the ring is drained.
pub fn run(engine: Engine, mut rx: Consumer<Inbound>) -> EngineExit {
    let mut lp = Looper::new(engine);
    let mut idle = Idle::default();
    loop {
        if lp.round(&mut rx, None) > 0 {
            idle.reset();
            continue;
        }
        if rx.is_producer_dropped() && rx.is_empty() {
            break;
        }
        match idle.step() {
            Step::Spin => {}
            Step::Sleep => {
                lp.before_sleep();
                lp.wake_self().prepare();
                if rx.is_empty() && !rx.is_producer_dropped() {
                    std::thread::park_timeout(Duration::from_micros(500));
                }
                lp.wake_self().done();
            }
        }
    }
    lp.finish(None)
}

/// The snapshot thread: for each job, makes the journal durable up to the job's record
/// (`fdatasync` of every segment file: a snapshot must never be ahead of the journal after a
/// power loss), writes the snapshot atomically, prunes old ones and tells the engine which
/// journal segments may go.
pub fn snapshot_thread(
    rx: std::sync::mpsc::Receiver<SnapshotJob>,
    dir: PathBuf,
    keep: usize,
    busy: Arc<AtomicBool>,
    truncate_before: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
    log: Log,
) {
    for job in rx {
        let t0 = Instant::now();
        let r = sync_segments(&dir).and_then(|()| {
            crate::journal::SnapshotStore::new(&dir, keep)?.write(job.seq, &job.body)
        });
        match r {
            Ok(w) => {
                truncate_before.store(w.oldest_kept_seq + 1, Ordering::Release);
                metrics.snapshots.fetch_add(1, Ordering::Relaxed);
                metrics.last_snapshot_seq.store(job.seq, Ordering::Relaxed);
                log.info(
                    "snapshot",
                    &[
                        ("seq", Val::U(job.seq)),
                        ("bytes", Val::U(job.body.len() as u64)),
                        ("path", Val::S(&w.path.display().to_string())),
                        ("ms", Val::F(t0.elapsed().as_secs_f64() * 1e3)),
                    ],
                );
            }
            Err(err) => log.error(
                "snapshot_failed",
                &[
                    ("seq", Val::U(job.seq)),
                    ("error", Val::S(&err.to_string())),
                ],
            ),
        }
        busy.store(false, Ordering::Release);
    }
}

/// `fdatasync`s every journal segment of `dir` (their dirty mapped pages included).
pub fn sync_segments(dir: &std::path::Path) -> Result<(), JournalError> {
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| JournalError::Io { path, source }
    };
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "wal") {
            match std::fs::File::open(&path).and_then(|f| f.sync_data()) {
                // Deleted behind an older snapshot meanwhile: nothing to sync.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                r => r.map_err(io(&path))?,
            }
        }
    }
    Ok(())
}
