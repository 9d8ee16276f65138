//! `server::gateway`: the gateway thread. One `mio` event loop accepts order-entry
//! connections and reads them; frames are decoded in place from each connection's receive
//! buffer and turned into [`Command`]s (timestamped, a `Logon`'s key replaced by its
//! SHA-256), which go to the engine through the SPSC ring in batches.
//!
//! ## Rules it enforces (`docs/protocol.md`)
//!
//! * Each connection gets a new session id, counting up from `Venue::next_session_id()` of
//!   the recovered venue, so ids never repeat across restarts.
//! * A frame that does not decode never reaches the engine: the gateway sends a `MALFORMED`
//!   reject (through the engine's pass-through, so the publisher stays the only writer) and
//!   skips the frame when it is still delimited (bad enum or key, wrong direction). The
//!   connection is closed at once when the framing is lost (bad version, oversized or
//!   unknown-type header, length not the type's), and when it reaches
//!   `session.max_malformed` malformed frames. Only complete frames are ever buffered: a
//!   header is judged before its body is awaited, so at most 255 bytes of a partial frame
//!   wait in a buffer.
//! * A connection silent for `session.idle_timeout_ms` is closed. Client heartbeats only
//!   refresh that timer once a logon was sent (before that they go to the venue, which
//!   answers `NOT_LOGGED_IN`).
//! * When a connection that sent a `Logon` ends (either side closed it, timeout, error,
//!   shutdown), the gateway injects `Disconnect` for its session (journaled, so
//!   cancel-on-disconnect replays exactly), then a `Close` for the publisher.
//!
//! ## Cost
//!
//! Per read: one `read` system call for up to 64 KiB, one clock read (every frame of the read
//! gets that timestamp, made non-decreasing), then per frame a header check, a field decode
//! and a 72-byte push into the local batch. The batch goes to the ring when it holds 256
//! items and at the end of each event round (one cursor store per push). Nothing allocates
//! per message; each connection's 64 KiB buffer is allocated once at accept.

use std::io::Read;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use crate::codec::{decode_from_client, peek_header, CodecError, Message};
use crate::ring::Producer;
use crate::venue::Command;

use super::log::{Log, Val};
use super::metrics::Metrics;
use super::wait::{Idle, Wake};
use super::{Control, Inbound, Shared};

/// The listener's token.
pub const LISTENER: Token = Token(0);
/// The waker's token (shutdown).
pub const WAKER: Token = Token(1);
const FIRST_CONN: usize = 2;
/// Receive buffer per connection.
const BUF_LEN: usize = 64 << 10;
/// Reads per connection per round before the others get their turn.
const MAX_READS: usize = 8;
/// Items batched before a push to the ring.
const BATCH: usize = 256;

struct Conn {
    stream: TcpStream,
    session: u64,
    account: u32,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    malformed: u32,
    logon_sent: bool,
    last_rx: Instant,
}

/// Gateway settings.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// First session id to hand out.
    pub first_session: u64,
    /// Timestamps never go below this (the last one in the journal).
    pub ts_floor: u64,
    /// Malformed frames that close a connection.
    pub max_malformed: u32,
    /// Silence that closes a connection.
    pub idle_timeout: Duration,
    /// Connections open at once at most.
    pub max_connections: usize,
}

/// The gateway thread's state.
pub struct Gateway {
    /// Its event loop.
    pub poll: Poll,
    /// The order-entry listener.
    pub listener: TcpListener,
    /// To the engine.
    pub tx: Producer<Inbound>,
    /// The engine's sleep announcement.
    pub wake_engine: Arc<Wake>,
    /// Server-wide flags.
    pub shared: Arc<Shared>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Logs.
    pub log: Log,
    /// Settings.
    pub cfg: GatewayConfig,
}

struct State {
    g: Gateway,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    again: Vec<usize>,
    batch: Vec<Inbound>,
    next_session: u64,
    last_ts: u64,
    open: usize,
    bytes_in: u64,
    malformed: u64,
    /// Inline pipeline: the batch goes to the ring only at the end of a round, where the
    /// caller can make room (the batch grows to the peak of one round meanwhile).
    deferred: bool,
}

/// The `client_order_id` and `symbol_id` a malformed but delimited frame still shows.
fn ids_of(frame: &[u8]) -> (u64, u32) {
    let u64_at = |at: usize| {
        frame
            .get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_le_bytes)
    };
    let u32_at = |at: usize| {
        frame
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_le_bytes)
    };
    match frame.get(2) {
        Some(0x10..=0x12) => (u64_at(4), u32_at(12)),
        Some(0x13) => (0, u32_at(4)),
        _ => (0, 0),
    }
}

impl State {
    fn clock(&mut self) -> u64 {
        self.last_ts = self.last_ts.max(super::now_ns());
        self.last_ts
    }

    fn push(&mut self, item: Inbound) {
        self.batch.push(item);
        if self.batch.len() >= BATCH && !self.deferred {
            self.flush(None);
        }
    }

    /// Sends the batch to the engine. While the ring is full: `room` when given (the inline
    /// pipeline runs the engine, the ring's consumer, on this thread), else a back-off while
    /// the engine thread catches up.
    fn flush(&mut self, mut room: Option<&mut dyn FnMut()>) {
        if self.batch.is_empty() {
            return;
        }
        let mut it = self.batch.drain(..);
        let mut idle = Idle::default();
        while it.len() > 0 {
            if self.g.tx.push_iter(&mut it) == 0 {
                if self.g.tx.is_consumer_dropped() {
                    break;
                }
                match room.as_deref_mut() {
                    Some(room) => room(),
                    None => {
                        self.g.wake_engine.notify();
                        idle.backoff();
                    }
                }
            } else {
                idle.reset();
            }
        }
        drop(it);
        self.g.wake_engine.notify();
    }

    fn accept(&mut self) {
        loop {
            match self.g.listener.accept() {
                Ok((mut stream, peer)) => {
                    if self.open >= self.g.cfg.max_connections {
                        self.g.log.warn(
                            "connection_refused",
                            &[
                                ("peer", Val::S(&peer.to_string())),
                                ("reason", Val::S("too many connections")),
                            ],
                        );
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let writer = match stream.as_fd().try_clone_to_owned() {
                        Ok(fd) => TcpStream::from(fd),
                        Err(e) => {
                            self.g
                                .log
                                .warn("accept_failed", &[("error", Val::S(&e.to_string()))]);
                            continue;
                        }
                    };
                    let idx = self.free.pop().unwrap_or_else(|| {
                        self.conns.push(None);
                        self.conns.len() - 1
                    });
                    if let Err(e) = self.g.poll.registry().register(
                        &mut stream,
                        Token(idx + FIRST_CONN),
                        Interest::READABLE,
                    ) {
                        self.g
                            .log
                            .warn("accept_failed", &[("error", Val::S(&e.to_string()))]);
                        self.free.push(idx);
                        continue;
                    }
                    let session = self.next_session;
                    self.next_session += 1;
                    self.conns[idx] = Some(Conn {
                        stream,
                        session,
                        account: 0,
                        buf: vec![0u8; BUF_LEN].into_boxed_slice(),
                        start: 0,
                        end: 0,
                        malformed: 0,
                        logon_sent: false,
                        last_rx: Instant::now(),
                    });
                    self.open += 1;
                    self.g
                        .metrics
                        .connections_total
                        .fetch_add(1, Ordering::Relaxed);
                    self.g
                        .metrics
                        .connections_open
                        .store(self.open as u64, Ordering::Relaxed);
                    self.g.log.info(
                        "connection_open",
                        &[
                            ("session", Val::U(session)),
                            ("peer", Val::S(&peer.to_string())),
                        ],
                    );
                    self.push(Inbound::Control(Control::Connect {
                        session,
                        stream: writer,
                    }));
                    // Data may already be waiting (edge-triggered: read it now).
                    self.again.push(idx);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.g
                        .log
                        .warn("accept_failed", &[("error", Val::S(&e.to_string()))]);
                    break;
                }
            }
        }
    }

    /// Ends a connection: deregisters it, injects `Disconnect` if it sent a logon, and asks
    /// the publisher to close it after what is queued.
    fn close(&mut self, idx: usize, why: &str) {
        let Some(mut c) = self.conns.get_mut(idx).and_then(Option::take) else {
            return;
        };
        self.free.push(idx);
        let _ = self.g.poll.registry().deregister(&mut c.stream);
        if c.logon_sent {
            let ts = self.clock();
            self.push(Inbound::Command(Command::disconnect(
                c.session, c.account, ts,
            )));
        }
        self.push(Inbound::Control(Control::Close { session: c.session }));
        self.open -= 1;
        self.g
            .metrics
            .connections_open
            .store(self.open as u64, Ordering::Relaxed);
        self.g.log.info(
            "connection_end",
            &[("session", Val::U(c.session)), ("reason", Val::S(why))],
        );
    }

    fn read(&mut self, idx: usize) {
        for _ in 0..MAX_READS {
            let Some(c) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
                return;
            };
            let r = (&c.stream).read(&mut c.buf[c.end..]);
            match r {
                Ok(0) => return self.close(idx, "closed_by_peer"),
                Ok(n) => {
                    c.end += n;
                    c.last_rx = Instant::now();
                    self.bytes_in += n as u64;
                    if !self.decode(idx) {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return self.close(idx, "read_error"),
            }
        }
        self.again.push(idx);
    }

    /// Decodes every complete frame of the connection's buffer; `false` if it was closed.
    fn decode(&mut self, idx: usize) -> bool {
        let ts = self.clock();
        loop {
            let Some(c) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
                return false;
            };
            let avail = &c.buf[c.start..c.end];
            match decode_from_client(avail) {
                Ok((msg, n)) => {
                    c.start += n;
                    let (session, logon_sent) = (c.session, c.logon_sent);
                    let account = match msg {
                        Message::Logon(l) => {
                            c.logon_sent = true;
                            c.account = l.account;
                            l.account
                        }
                        _ => c.account,
                    };
                    if matches!(msg, Message::Heartbeat(_)) && logon_sent {
                        continue;
                    }
                    if let Ok(cmd) = Command::from_message(session, account, ts, &msg) {
                        self.push(Inbound::Command(cmd));
                    }
                }
                Err(e) if e.is_incomplete() => break,
                Err(e) => {
                    let framing_lost = matches!(
                        e,
                        CodecError::BadVersion { .. }
                            | CodecError::Oversized { .. }
                            | CodecError::UnknownType { .. }
                            | CodecError::BadLength { .. }
                    );
                    let (len, (coid, sym)) = if framing_lost {
                        (0, (0, 0))
                    } else {
                        let len = peek_header(avail).map_or(0, |h| h.length);
                        (len, ids_of(&avail[..len.min(avail.len())]))
                    };
                    c.malformed += 1;
                    self.malformed += 1;
                    let close = framing_lost || len == 0 || c.malformed >= self.g.cfg.max_malformed;
                    let session = c.session;
                    c.start += len;
                    self.push(Inbound::Control(Control::Malformed {
                        session,
                        client_order_id: coid,
                        symbol_id: sym,
                        close,
                    }));
                    if close {
                        let why = if framing_lost {
                            format!("malformed frame ({}), framing lost", e.kind())
                        } else {
                            format!("malformed frame ({}), limit reached", e.kind())
                        };
                        self.close(idx, &why);
                        return false;
                    }
                }
            }
        }
        if let Some(c) = self.conns.get_mut(idx).and_then(Option::as_mut) {
            if c.start == c.end {
                c.start = 0;
                c.end = 0;
            } else if c.end == c.buf.len() || c.start > BUF_LEN / 2 {
                c.buf.copy_within(c.start..c.end, 0);
                c.end -= c.start;
                c.start = 0;
            }
        }
        true
    }

    fn idle_check(&mut self) {
        let limit = self.g.cfg.idle_timeout;
        for idx in 0..self.conns.len() {
            let idle = self
                .conns
                .get(idx)
                .and_then(Option::as_ref)
                .is_some_and(|c| c.last_rx.elapsed() > limit);
            if idle {
                self.g.metrics.idle_timeouts.fetch_add(1, Ordering::Relaxed);
                self.close(idx, "idle_timeout");
            }
        }
    }
}

/// The gateway's event loop, one round at a time: [`run`] drives it on its own thread, the
/// inline pipeline (`server::inline`) together with the engine and the publisher.
pub struct Looper {
    st: State,
    events: Events,
    last_idle_check: Instant,
    accept_retry: bool,
}

impl Looper {
    /// The loop over `g`, before its first round.
    pub fn new(g: Gateway) -> Looper {
        Looper {
            st: State {
                next_session: g.cfg.first_session,
                last_ts: g.cfg.ts_floor,
                g,
                conns: Vec::new(),
                free: Vec::new(),
                again: Vec::new(),
                batch: Vec::with_capacity(BATCH),
                open: 0,
                bytes_in: 0,
                malformed: 0,
                deferred: false,
            },
            events: Events::with_capacity(1024),
            last_idle_check: Instant::now(),
            accept_retry: false,
        }
    }

    /// The inline pipeline's gateway: pushes to the engine ring only at the end of a round,
    /// through the `room` callback of [`Looper::round`] and [`Looper::finish`].
    pub fn inline(g: Gateway) -> Looper {
        let mut lp = Looper::new(g);
        lp.st.deferred = true;
        lp
    }

    /// True when reads are pending that a zero-timeout round should take (a connection that
    /// had more to read, an accept to retry).
    pub fn has_pending(&self) -> bool {
        !self.st.again.is_empty() || self.accept_retry
    }

    /// The gateway's `Poll` (the inline pipeline registers the publisher's poll in it).
    pub fn poll(&self) -> &Poll {
        &self.st.g.poll
    }

    /// One round: wait up to `timeout` for socket events (zero when reads are pending),
    /// read and decode, push the batch to the engine (calling `room` while its ring is full,
    /// if given). Events of tokens from [`FOREIGN`] on (never used by the gateway) go to
    /// `foreign`. Returns the bytes read.
    pub fn round(
        &mut self,
        timeout: Duration,
        mut foreign: impl FnMut(Token),
        room: Option<&mut dyn FnMut()>,
    ) -> u64 {
        let st = &mut self.st;
        let timeout = if self.accept_retry || !st.again.is_empty() {
            Duration::ZERO
        } else {
            timeout
        };
        if let Err(e) = st.g.poll.poll(&mut self.events, Some(timeout)) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                st.g.log
                    .error("poll_failed", &[("error", Val::S(&e.to_string()))]);
                st.g.shared.fail();
            }
        }
        let before = st.bytes_in;
        if std::mem::take(&mut self.accept_retry) {
            st.accept();
        }
        for ev in &self.events {
            match ev.token() {
                LISTENER => {
                    st.accept();
                }
                WAKER => {}
                Token(t) if t >= FOREIGN.0 => foreign(ev.token()),
                Token(t) => st.read(t - FIRST_CONN),
            }
        }
        let again = std::mem::take(&mut st.again);
        for idx in again {
            st.read(idx);
        }
        if self.last_idle_check.elapsed() >= Duration::from_millis(50) {
            st.idle_check();
            self.last_idle_check = Instant::now();
            self.accept_retry = true;
        }
        st.flush(room);
        st.g.metrics
            .tcp_bytes_in
            .store(st.bytes_in, Ordering::Relaxed);
        st.g.metrics
            .malformed_frames
            .store(st.malformed, Ordering::Relaxed);
        st.bytes_in - before
    }

    /// True once the server is stopping (or failed): time for [`Looper::finish`].
    pub fn stopping(&self) -> bool {
        self.st.g.shared.stopping()
    }

    /// Stops accepting, closes every connection (injecting `Disconnect`s; `room` as in
    /// [`Looper::round`]) and drops the producer, which tells the engine the input is over.
    pub fn finish(mut self, room: Option<&mut dyn FnMut()>) {
        let st = &mut self.st;
        let _ = st.g.poll.registry().deregister(&mut st.g.listener);
        for idx in 0..st.conns.len() {
            st.close(idx, "shutdown");
        }
        st.flush(room);
    }
}

/// First token the gateway leaves to others (the inline pipeline's publisher poll).
pub const FOREIGN: Token = Token(usize::MAX / 2);

/// Runs the gateway until the server stops; then closes every connection (injecting
/// `Disconnect`s) and drops its producer, which tells the engine the input is over.
pub fn run(g: Gateway) {
    let mut lp = Looper::new(g);
    loop {
        lp.round(Duration::from_millis(10), |_| {}, None);
        if lp.stopping() {
            break;
        }
    }
    lp.finish(None);
}
