//! `server::publisher`: the publisher thread, the only thread that writes to order-entry
//! connections and the only one that sends feed datagrams.
//!
//! ## What it owns
//!
//! * One send buffer per connection (`Vec<u8>`, grown up to `session.max_send_buffer`).
//!   Frames are encoded into it; after each round the thread writes every buffer that has
//!   data with non-blocking `write` calls (many frames per system call). Bytes the kernel
//!   does not take stay queued, and the socket's writable event (edge-triggered `epoll`)
//!   brings the thread back. A connection whose queue would exceed the limit is a slow
//!   reader: it is shut down (the gateway then sees it close and injects `Disconnect`),
//!   never waited for.
//! * The report streams: per account, the sessions logged on (each receives the account's
//!   whole stream), the next number, and the last `session.report_history` reports for
//!   `RetransmitRequest` on channel 0. Numbers come from the venue (deterministic), so the
//!   history can be refilled by journal replay at start-up ([`Publisher::absorb`]).
//! * The feed channels: market data (`BookUpdate`, `Trade`) and the optional report drop copy
//!   (`FeedReport`), each numbered 1, 2, ... (continuing across restarts from the venue's
//!   counters), batched into datagrams of at most 1,472 bytes sent at the end of each round
//!   or when full, a heartbeat datagram after `feed.heartbeat_ms` of silence, and the last
//!   `feed.history` messages for retransmission over TCP.
//!
//! ## Invariants
//!
//! * Items leave in the order the engine produced them. Under `fsync = always` an item is
//!   held until the journal is durable up to its command (`jseq`), and everything behind it
//!   waits too; the engine keeps matching meanwhile (group commit).
//! * A `RetransmitReply` is followed immediately by exactly its `count` frames: nothing else
//!   is written to that connection in between (one thread, one buffer).
//! * After `Logout` (venue `SessionClosed`), a `LogonReject` or a malformed frame that ends
//!   the connection, the connection is shut down once everything queued before it is written
//!   (or after [`CLOSE_GRACE`]).
//!
//! ## Cost
//!
//! Per report: one hash lookup of the account, one 68-byte encode per receiving session, one
//! history push (a ring buffer once warm). Per feed message: one history push and one encode
//! into the datagram. System calls are per round and connection (`write`) and per datagram
//! (`sendto`), not per message.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use tradecore_book::{EventKind, Reason, Side};

use crate::codec::{
    DatagramWriter, ExecutionReport, Liquidity, Message, RetransmitReply, RetransmitRequest,
    RetransmitStatus, VenueHeartbeat, MAX_DATAGRAM_LEN, PACKET_HEADER_LEN,
};
use crate::ring::Consumer;
use crate::venue::{Outbound, Venue};

use super::log::{Log, Val};
use super::metrics::{Metrics, REASONS};
use super::wait::{Idle, Step, Wake};
use super::{Control, Item, Outgoing};

/// The token of the publisher's waker in its `mio::Poll`.
pub const WAKER_TOKEN: Token = Token(usize::MAX);
/// Items drained from the ring per round.
const BATCH: usize = 512;
/// Items popped but held back by the durability gate, at most.
const HELD_MAX: usize = 1 << 16;
/// How long a closing connection may take to drain its queue.
pub const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Timer granularity (heartbeats, feed heartbeats, metrics).
const TICK: Duration = Duration::from_millis(5);

/// The publisher's settings (from the config).
#[derive(Clone, Debug)]
pub struct PubConfig {
    /// Largest send queue per connection, bytes.
    pub max_send_buffer: usize,
    /// Reports kept per account.
    pub report_history: usize,
    /// Messages per retransmission at most.
    pub max_retransmit: u32,
    /// Market-data channel id.
    pub md_channel: u32,
    /// Report drop-copy channel id (0 = none).
    pub report_channel: u32,
    /// Messages kept per feed channel.
    pub feed_history: usize,
    /// Feed heartbeat interval.
    pub feed_heartbeat: Duration,
}

/// The UDP side: a socket and where datagrams go.
#[derive(Debug)]
pub struct Udp {
    /// Bound to the feed interface, non-blocking.
    pub socket: UdpSocket,
    /// Unicast destination or multicast group.
    pub dest: SocketAddr,
}

struct AccountStream {
    next_seq: u64,
    history: VecDeque<ExecutionReport>,
    sessions: Vec<u64>,
}

struct Channel {
    id: u32,
    next_seq: u64,
    history: VecDeque<Message>,
    cap: usize,
    pending: Vec<Message>,
    pending_first: u64,
    pending_bytes: usize,
    last_sent: Instant,
}

impl Channel {
    fn new(id: u32, next_seq: u64, cap: usize) -> Channel {
        Channel {
            id,
            next_seq,
            history: VecDeque::with_capacity(cap.min(1 << 16)),
            cap,
            pending: Vec::with_capacity(64),
            pending_first: next_seq,
            pending_bytes: 0,
            last_sent: Instant::now(),
        }
    }

    fn remember(&mut self, m: Message) {
        if self.cap > 0 {
            if self.history.len() == self.cap {
                self.history.pop_front();
            }
            self.history.push_back(m);
        }
        self.next_seq += 1;
    }

    /// Sends the pending messages as one datagram (or a heartbeat when `heartbeat` and
    /// nothing is pending).
    fn flush(
        &mut self,
        udp: Option<&Udp>,
        buf: &mut [u8],
        counts: &mut PubCounts,
        heartbeat: bool,
    ) {
        if self.pending.is_empty() && !heartbeat {
            return;
        }
        let first = if self.pending.is_empty() {
            self.next_seq
        } else {
            self.pending_first
        };
        if let Some(udp) = udp {
            if let Ok(mut w) = DatagramWriter::new(buf, self.id, first) {
                for m in &self.pending {
                    // The pending bytes were kept under the datagram size, so this fits.
                    let _ = w.push(m);
                }
                let n = w.finish();
                match udp.socket.send_to(&buf[..n], udp.dest) {
                    Ok(_) => counts.datagrams_sent += 1,
                    Err(_) => counts.datagrams_failed += 1,
                }
            }
        }
        self.pending.clear();
        self.pending_bytes = 0;
        self.pending_first = self.next_seq;
        self.last_sent = Instant::now();
    }
}

#[derive(Default)]
struct PubCounts {
    reports_out: u64,
    rejects: [u64; REASONS],
    bytes_out: u64,
    datagrams_sent: u64,
    datagrams_failed: u64,
    md_messages: u64,
    retransmit_requests: u64,
    retransmitted: u64,
    slow_consumers: u64,
}

struct Conn {
    stream: TcpStream,
    account: Option<u32>,
    heartbeat: Duration,
    out: Vec<u8>,
    sent: usize,
    last_out: Instant,
    closing: Option<Instant>,
    dirty: bool,
}

/// The publisher's state (see the module doc). Built before the threads start so that
/// start-up replay can refill the histories.
pub struct Publisher {
    cfg: PubConfig,
    accounts: HashMap<u32, AccountStream>,
    md: Channel,
    rpt: Option<Channel>,
    conns: HashMap<u64, Conn>,
    dirty: Vec<u64>,
    udp: Option<Udp>,
    dgram: Vec<u8>,
    counts: PubCounts,
    sessions_open: u64,
    /// The time at the start of the current round (one clock read per round, not per frame).
    now: Instant,
    log: Log,
}

fn reject_report(client_order_id: u64, symbol_id: u32, reason: Reason) -> ExecutionReport {
    ExecutionReport {
        seq: 0,
        client_order_id,
        order_id: 0,
        symbol_id,
        kind: EventKind::Rejected,
        reason,
        side: Side::Buy,
        liquidity: Liquidity::None,
        price: 0,
        qty: 0,
        leaves: 0,
        timestamp_ns: super::now_ns(),
    }
}

/// How much of `[from, from + count)` a history holding `[first, next)` can resend, given
/// the per-request limit and the room left: `(status, n)`.
fn plan(
    first: u64,
    next: u64,
    from: u64,
    count: u32,
    limit: u32,
    room: usize,
) -> (RetransmitStatus, u32) {
    if from == 0 || from < first || from >= next {
        return (RetransmitStatus::Unavailable, 0);
    }
    let have = next - from;
    let n = u64::from(count)
        .min(have)
        .min(u64::from(limit))
        .min(room as u64) as u32;
    if n == count {
        (RetransmitStatus::Ok, n)
    } else if n == 0 {
        (RetransmitStatus::Unavailable, 0)
    } else {
        (RetransmitStatus::Partial, n)
    }
}

impl Publisher {
    /// A publisher continuing the streams of `venue` (restored from a snapshot, before the
    /// journal tail is replayed through [`Publisher::absorb`]).
    pub fn new(cfg: PubConfig, venue: &Venue, udp: Option<Udp>, log: Log) -> Publisher {
        let accounts = venue
            .account_ids()
            .map(|a| {
                (
                    a,
                    AccountStream {
                        next_seq: venue.next_report_seq(a).unwrap_or(1),
                        history: VecDeque::new(),
                        sessions: Vec::new(),
                    },
                )
            })
            .collect();
        let md = Channel::new(cfg.md_channel, venue.md_messages() + 1, cfg.feed_history);
        let rpt = (cfg.report_channel != 0).then(|| {
            Channel::new(
                cfg.report_channel,
                venue.reports_total() + 1,
                cfg.feed_history,
            )
        });
        Publisher {
            cfg,
            accounts,
            md,
            rpt,
            conns: HashMap::new(),
            dirty: Vec::with_capacity(64),
            udp,
            dgram: vec![0u8; MAX_DATAGRAM_LEN],
            counts: PubCounts::default(),
            sessions_open: 0,
            now: Instant::now(),
            log,
        }
    }

    /// Sets the feed socket (after start-up replay, which sends nothing).
    pub fn set_udp(&mut self, udp: Option<Udp>) {
        self.udp = udp;
    }

    /// Next number of the market-data channel.
    pub fn md_next_seq(&self) -> u64 {
        self.md.next_seq
    }

    /// Records a replayed output in the histories and counters without sending anything.
    pub fn absorb(&mut self, msg: &Outbound) {
        match *msg {
            Outbound::Report {
                account, report, ..
            } => {
                self.remember_report(account, &report);
                if let Some(r) = self.rpt.as_mut() {
                    r.remember(report.to_feed(account).into());
                }
            }
            Outbound::BookUpdate(u) => self.md.remember(u.into()),
            Outbound::Trade(t) => self.md.remember(t.into()),
            _ => {}
        }
    }

    fn remember_report(&mut self, account: u32, report: &ExecutionReport) {
        let cap = self.cfg.report_history;
        if let Some(a) = self.accounts.get_mut(&account) {
            if cap > 0 {
                if a.history.len() == cap {
                    a.history.pop_front();
                }
                a.history.push_back(*report);
            }
            a.next_seq = report.seq + 1;
        }
    }

    fn feed(&mut self, which_rpt: bool, m: Message) {
        let ch = if which_rpt {
            match self.rpt.as_mut() {
                Some(r) => r,
                None => return,
            }
        } else {
            &mut self.md
        };
        let len = m.encoded_len();
        if PACKET_HEADER_LEN + ch.pending_bytes + len > MAX_DATAGRAM_LEN {
            ch.flush(self.udp.as_ref(), &mut self.dgram, &mut self.counts, false);
        }
        if ch.pending.is_empty() {
            ch.pending_first = ch.next_seq;
        }
        ch.pending.push(m);
        ch.pending_bytes += len;
        ch.remember(m);
    }

    /// Queues one frame on a connection; a queue over the limit disconnects the client.
    fn enqueue(&mut self, session: u64, msg: &Message) -> bool {
        let Some(c) = self.conns.get_mut(&session) else {
            return false;
        };
        let len = msg.encoded_len();
        if c.out.len() - c.sent + len > self.cfg.max_send_buffer {
            self.counts.slow_consumers += 1;
            self.kill(session, "slow_consumer");
            return false;
        }
        let start = c.out.len();
        c.out.resize(start + len, 0);
        // The buffer was just sized for the frame.
        let _ = msg.encode(&mut c.out[start..]);
        c.last_out = self.now;
        if !c.dirty {
            c.dirty = true;
            self.dirty.push(session);
        }
        true
    }

    /// Shuts a connection down now and forgets it (the gateway sees it close).
    fn kill(&mut self, session: u64, why: &str) {
        if let Some(c) = self.conns.remove(&session) {
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
            if let Some(acct) = c.account {
                self.detach(acct, session);
            }
            if why != "closed" {
                self.log.info(
                    "connection_closed",
                    &[("session", Val::U(session)), ("reason", Val::S(why))],
                );
            }
        }
    }

    fn detach(&mut self, account: u32, session: u64) {
        if let Some(a) = self.accounts.get_mut(&account) {
            let before = a.sessions.len();
            a.sessions.retain(|&s| s != session);
            if a.sessions.len() < before {
                self.sessions_open = self.sessions_open.saturating_sub(1);
            }
        }
        if let Some(c) = self.conns.get_mut(&session) {
            c.account = None;
        }
    }

    fn close_after_flush(&mut self, session: u64) {
        if let Some(c) = self.conns.get_mut(&session) {
            c.closing.get_or_insert_with(Instant::now);
            if !c.dirty {
                c.dirty = true;
                self.dirty.push(session);
            }
        }
    }

    fn count_reject(&mut self, r: &ExecutionReport) {
        if r.kind == EventKind::Rejected {
            self.counts.rejects[(r.reason as usize).min(REASONS - 1)] += 1;
        }
    }

    /// Handles one released item.
    fn handle(&mut self, item: Item, poll: &Poll) {
        match item {
            Item::Venue(msg) => self.venue(msg),
            Item::Control(Control::Connect {
                session,
                mut stream,
            }) => {
                let token = Token(session as usize);
                if poll
                    .registry()
                    .register(&mut stream, token, Interest::WRITABLE)
                    .is_ok()
                {
                    self.conns.insert(
                        session,
                        Conn {
                            stream,
                            account: None,
                            heartbeat: Duration::from_secs(1),
                            out: Vec::with_capacity(16 << 10),
                            sent: 0,
                            last_out: Instant::now(),
                            closing: None,
                            dirty: false,
                        },
                    );
                } else {
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                }
            }
            Item::Control(Control::Malformed {
                session,
                client_order_id,
                symbol_id,
                close,
            }) => {
                let r = reject_report(client_order_id, symbol_id, Reason::Malformed);
                self.count_reject(&r);
                self.enqueue(session, &r.into());
                if close {
                    self.close_after_flush(session);
                }
            }
            Item::Control(Control::Close { session }) => {
                if let Some(acct) = self.conns.get(&session).and_then(|c| c.account) {
                    self.detach(acct, session);
                }
                self.close_after_flush(session);
            }
        }
    }

    fn venue(&mut self, msg: Outbound) {
        match msg {
            Outbound::Report {
                account, report, ..
            } => {
                self.count_reject(&report);
                self.remember_report(account, &report);
                self.feed(true, report.to_feed(account).into());
                let n = self.accounts.get(&account).map_or(0, |a| a.sessions.len());
                let m: Message = report.into();
                for i in 0..n {
                    let Some(s) = self.accounts.get(&account).and_then(|a| a.sessions.get(i))
                    else {
                        break;
                    };
                    let s = *s;
                    if self.enqueue(s, &m) {
                        self.counts.reports_out += 1;
                    }
                }
            }
            Outbound::Unsequenced { session, report } => {
                self.count_reject(&report);
                self.enqueue(session, &report.into());
            }
            Outbound::LogonAck {
                session,
                account,
                ack,
            } => {
                if let Some(c) = self.conns.get_mut(&session) {
                    c.account = Some(account);
                    c.heartbeat = Duration::from_millis(u64::from(ack.heartbeat_ms.max(10)));
                    if let Some(a) = self.accounts.get_mut(&account) {
                        a.sessions.push(session);
                        self.sessions_open += 1;
                    }
                    self.enqueue(session, &ack.into());
                }
            }
            Outbound::LogonReject { session, reject } => {
                self.count_reject(&reject_report(0, 0, reject.reason));
                self.enqueue(session, &reject.into());
                self.close_after_flush(session);
            }
            Outbound::SessionClosed { session, account } => {
                self.detach(account, session);
                self.close_after_flush(session);
            }
            Outbound::Retransmit {
                session,
                account,
                request,
            } => self.retransmit(session, account, request),
            Outbound::BookUpdate(u) => {
                self.counts.md_messages += 1;
                self.feed(false, u.into());
            }
            Outbound::Trade(t) => {
                self.counts.md_messages += 1;
                self.feed(false, t.into());
            }
        }
    }

    fn retransmit(&mut self, session: u64, account: u32, req: RetransmitRequest) {
        let Some(c) = self.conns.get(&session) else {
            return;
        };
        self.counts.retransmit_requests += 1;
        let room = self
            .cfg
            .max_send_buffer
            .saturating_sub(c.out.len() - c.sent + RetransmitReply::LEN)
            / 72;
        let next_live = self.accounts.get(&account).map_or(1, |a| a.next_seq);
        let limit = self.cfg.max_retransmit;
        let reply = |status, count| RetransmitReply {
            next_seq: next_live,
            channel: req.channel,
            from_seq: req.from_seq,
            requested: req.count,
            count,
            status,
        };
        let mut frames: Vec<Message> = Vec::new();
        let (status, n) = if req.channel == 0 {
            match self.accounts.get(&account) {
                Some(a) => {
                    let first = a.next_seq - a.history.len() as u64;
                    let (st, n) = plan(first, a.next_seq, req.from_seq, req.count, limit, room);
                    let skip = (req.from_seq.saturating_sub(first)) as usize;
                    frames.extend(
                        a.history
                            .iter()
                            .skip(skip)
                            .take(n as usize)
                            .map(|r| Message::from(*r)),
                    );
                    (st, n)
                }
                None => (RetransmitStatus::Unavailable, 0),
            }
        } else {
            let ch = if req.channel == self.md.id {
                Some(&self.md)
            } else {
                self.rpt.as_ref().filter(|r| r.id == req.channel)
            };
            match ch {
                Some(ch) => {
                    let first = ch.next_seq - ch.history.len() as u64;
                    let (st, n) = plan(first, ch.next_seq, req.from_seq, req.count, limit, room);
                    let skip = (req.from_seq.saturating_sub(first)) as usize;
                    frames.extend(ch.history.iter().skip(skip).take(n as usize).copied());
                    (st, n)
                }
                None => (RetransmitStatus::UnknownChannel, 0),
            }
        };
        self.enqueue(session, &reply(status, n).into());
        for m in &frames {
            self.enqueue(session, m);
        }
        self.counts.retransmitted += u64::from(n);
    }

    /// Writes every queued buffer as far as the sockets take it; shuts down closing
    /// connections that are done.
    fn flush_conns(&mut self) {
        let mut i = 0;
        while i < self.dirty.len() {
            let session = self.dirty[i];
            let mut done = true;
            let mut dead = false;
            let mut close_now = false;
            if let Some(c) = self.conns.get_mut(&session) {
                while c.sent < c.out.len() {
                    match (&c.stream).write(&c.out[c.sent..]) {
                        Ok(0) => {
                            dead = true;
                            break;
                        }
                        Ok(n) => {
                            c.sent += n;
                            self.counts.bytes_out += n as u64;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            done = false;
                            break;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => {
                            dead = true;
                            break;
                        }
                    }
                }
                if c.sent == c.out.len() {
                    c.out.clear();
                    c.sent = 0;
                } else if c.sent > (64 << 10) && c.sent * 2 > c.out.len() {
                    c.out.drain(..c.sent);
                    c.sent = 0;
                }
                if done {
                    c.dirty = false;
                    close_now = c.closing.is_some();
                } else if c.closing.is_some_and(|t| t.elapsed() > CLOSE_GRACE) {
                    close_now = true;
                }
            } else {
                done = true;
            }
            if dead {
                self.kill(session, "write_failed");
                done = true;
            } else if close_now {
                self.kill(session, "closed");
                done = true;
            }
            if done {
                self.dirty.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }

    fn flush_feeds(&mut self) {
        self.md
            .flush(self.udp.as_ref(), &mut self.dgram, &mut self.counts, false);
        if let Some(r) = self.rpt.as_mut() {
            r.flush(self.udp.as_ref(), &mut self.dgram, &mut self.counts, false);
        }
    }

    /// Heartbeats of idle sessions and idle feed channels.
    fn timers(&mut self, now: Instant) {
        let mut due: Vec<(u64, u64)> = Vec::new();
        for (&s, c) in &self.conns {
            if let Some(a) = c.account {
                if c.closing.is_none() && now.duration_since(c.last_out) >= c.heartbeat {
                    let next = self.accounts.get(&a).map_or(1, |x| x.next_seq);
                    due.push((s, next));
                }
            }
        }
        for (s, next_seq) in due {
            self.enqueue(s, &VenueHeartbeat { next_seq }.into());
        }
        let hb = self.cfg.feed_heartbeat;
        if now.duration_since(self.md.last_sent) >= hb {
            self.md
                .flush(self.udp.as_ref(), &mut self.dgram, &mut self.counts, true);
        }
        if let Some(r) = self.rpt.as_mut() {
            if now.duration_since(r.last_sent) >= hb {
                r.flush(self.udp.as_ref(), &mut self.dgram, &mut self.counts, true);
            }
        }
    }

    fn publish_metrics(&self, m: &Metrics) {
        let c = &self.counts;
        m.reports_out.store(c.reports_out, Ordering::Relaxed);
        for (i, r) in c.rejects.iter().enumerate() {
            m.rejects[i].store(*r, Ordering::Relaxed);
        }
        m.tcp_bytes_out.store(c.bytes_out, Ordering::Relaxed);
        m.datagrams_sent.store(c.datagrams_sent, Ordering::Relaxed);
        m.datagrams_failed
            .store(c.datagrams_failed, Ordering::Relaxed);
        m.md_messages.store(c.md_messages, Ordering::Relaxed);
        m.retransmit_requests
            .store(c.retransmit_requests, Ordering::Relaxed);
        m.retransmitted.store(c.retransmitted, Ordering::Relaxed);
        m.slow_consumers.store(c.slow_consumers, Ordering::Relaxed);
        m.sessions.store(self.sessions_open, Ordering::Relaxed);
    }
}

/// Where the durability gate reads how far the journal is durable.
pub enum Gate {
    /// No gate (`fsync = none | batch`): reports go as soon as they are journaled.
    Open,
    /// `fsync = always`: hold each item until this returns at least its `jseq`.
    Durable(Box<dyn Fn() -> u64 + Send>),
}

/// The publisher's loop, one round at a time: [`run`] drives it on its own thread, the inline
/// pipeline (`server::inline`) together with the gateway and the engine.
pub struct Looper {
    p: Publisher,
    poll: Poll,
    events: Events,
    held: VecDeque<Outgoing>,
    gate: Gate,
    metrics: Arc<Metrics>,
    last_tick: Instant,
}

impl Looper {
    /// The loop over `p`, whose sockets are registered in `poll`, before its first round.
    pub fn new(p: Publisher, poll: Poll, gate: Gate, metrics: Arc<Metrics>) -> Looper {
        Looper {
            p,
            poll,
            events: Events::with_capacity(256),
            held: VecDeque::with_capacity(4096),
            gate,
            metrics,
            last_tick: Instant::now(),
        }
    }

    /// Takes what the engine produced, releases what is durable (all of it unless
    /// `fsync = always`), writes to the sockets and runs the timers. Returns true if it took
    /// or released anything.
    pub fn round(&mut self, rx: &mut Consumer<Outgoing>) -> bool {
        let held = &mut self.held;
        let p = &mut self.p;
        let room = HELD_MAX.saturating_sub(held.len()).min(BATCH);
        let got = rx.drain(room, |it| held.push_back(it));
        p.now = Instant::now();
        let durable = match &self.gate {
            Gate::Open => u64::MAX,
            Gate::Durable(f) => f(),
        };
        let mut released = 0;
        while held.front().is_some_and(|it| it.jseq <= durable) {
            if let Some(it) = held.pop_front() {
                p.handle(it.item, &self.poll);
                released += 1;
            }
        }
        if released > 0 || !p.dirty.is_empty() {
            p.flush_feeds();
            p.flush_conns();
        }
        let now = Instant::now();
        if now.duration_since(self.last_tick) >= TICK {
            p.timers(now);
            p.flush_conns();
            p.publish_metrics(&self.metrics);
            self.last_tick = now;
        }
        got > 0 || released > 0
    }

    /// True when nothing is left: no item held back, nothing in `rx`.
    pub fn drained(&self, rx: &Consumer<Outgoing>) -> bool {
        rx.is_empty() && self.held.is_empty()
    }

    /// How long a sleep may last: items held back for durability are looked at again soon.
    pub fn max_sleep(&self) -> Duration {
        if self.held.is_empty() {
            TICK
        } else {
            Duration::from_micros(100)
        }
    }

    /// The publisher's `Poll` (socket writability and its waker).
    pub fn poll(&self) -> &Poll {
        &self.poll
    }

    /// Waits up to `timeout` for the publisher's own events (writable sockets, the waker),
    /// then writes to the sockets that can take more.
    pub fn wait(&mut self, timeout: Duration) {
        let _ = self.poll.poll(&mut self.events, Some(timeout));
        for ev in &self.events {
            if ev.token() != WAKER_TOKEN {
                let s = ev.token().0 as u64;
                if let Some(c) = self.p.conns.get_mut(&s) {
                    if !c.dirty && c.sent < c.out.len() {
                        c.dirty = true;
                        self.p.dirty.push(s);
                    }
                }
            }
        }
        self.events.clear();
        self.p.flush_conns();
    }

    /// Shutdown: sends what is queued (bounded), then closes every connection.
    pub fn finish(mut self) {
        let p = &mut self.p;
        p.flush_feeds();
        let deadline = Instant::now() + Duration::from_millis(300);
        loop {
            p.flush_conns();
            if p.dirty.is_empty() || Instant::now() >= deadline {
                break;
            }
            let _ = self
                .poll
                .poll(&mut self.events, Some(Duration::from_millis(5)));
        }
        let sessions: Vec<u64> = p.conns.keys().copied().collect();
        for s in sessions {
            p.kill(s, "closed");
        }
        p.publish_metrics(&self.metrics);
    }
}

/// Runs the publisher until the engine's producer is gone and everything is sent.
pub fn run(
    p: Publisher,
    mut rx: Consumer<Outgoing>,
    poll: Poll,
    wake_self: Arc<Wake>,
    gate: Gate,
    metrics: Arc<Metrics>,
) {
    let mut lp = Looper::new(p, poll, gate, metrics);
    let mut idle = Idle::default();
    loop {
        if lp.round(&mut rx) {
            idle.reset();
            continue;
        }
        if rx.is_producer_dropped() && lp.drained(&rx) {
            break;
        }
        if idle.step() == Step::Sleep {
            let timeout = lp.max_sleep();
            wake_self.prepare();
            let timeout = if rx.is_empty() {
                timeout
            } else {
                Duration::ZERO
            };
            lp.wait(timeout);
            wake_self.done();
        }
    }
    lp.finish();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retransmit_plans() {
        use RetransmitStatus::*;
        // History holds [10, 20).
        assert_eq!(plan(10, 20, 10, 5, 100, 100), (Ok, 5));
        assert_eq!(plan(10, 20, 15, 10, 100, 100), (Partial, 5));
        assert_eq!(plan(10, 20, 15, 5, 3, 100), (Partial, 3));
        assert_eq!(plan(10, 20, 15, 5, 100, 2), (Partial, 2));
        assert_eq!(plan(10, 20, 9, 5, 100, 100), (Unavailable, 0));
        assert_eq!(plan(10, 20, 20, 5, 100, 100), (Unavailable, 0));
        assert_eq!(plan(10, 20, 0, 5, 100, 100), (Unavailable, 0));
        assert_eq!(plan(10, 20, 12, 0, 100, 100), (Ok, 0));
        assert_eq!(plan(10, 20, 12, 5, 100, 0), (Unavailable, 0));
    }
}
