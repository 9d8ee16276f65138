//! `loadgen::driver`: the connections and the one event loop that drives them.
//!
//! ## Design
//!
//! One thread does everything: it generates the commands that are due, writes each session's
//! pending frames with one `write` per session per turn, and reads every session's reports
//! from one `mio` poll. Sharing nothing between threads keeps the per-message cost to a few
//! hundred nanoseconds and leaves the other core to the venue on a two-core machine.
//!
//! * **Open loop.** Command `i` has an intended send time fixed in advance (uniform or
//!   Poisson spacing from the seed) and goes to session `i % sessions`. Every turn sends all
//!   commands whose time has come, however late, so a slow venue cannot slow the schedule
//!   down; latency is measured from the intended time, which charges the venue for every
//!   command it delayed (the coordinated-omission correction). Only two limits stall the
//!   schedule, and the stall counts in the latency: a session with `max_inflight` commands
//!   unanswered, and a socket whose send buffer is full.
//! * **Closed loop.** Each session keeps `window` commands unanswered; latency is measured
//!   from the actual send.
//! * **Matching reports.** A session's commands are answered in the order they were sent
//!   (the venue handles a session's commands in order), so each session keeps a FIFO of
//!   unanswered commands and the first report of a command is the next report of the right
//!   shape (ACCEPTED or REJECTED for a new order, CANCELLED by USER or REJECTED for a cancel,
//!   REPLACED or REJECTED for a modify) naming the client order id at the FIFO's head. Fills
//!   of resting orders and cancels by the venue are other shapes, so they never answer a
//!   command. A report of the right shape that does not match the head is counted as
//!   `unmatched`: it would mean lost or reordered reports.
//! * **Waiting.** With more than a millisecond to the next deadline the loop blocks in
//!   `epoll_wait`; closer to it, it polls without blocking and yields the CPU (or spins), since
//!   a timed sleep on a virtual machine wakes tens of microseconds late.
//!
//! ## Invariants
//!
//! Every buffer, FIFO, histogram and order slot is allocated before the first command; the
//! loop allocates nothing per message (formatting a report-log line writes into a
//! preallocated `BufWriter`). A session whose connection fails stops sending; its unanswered
//! commands are reported, and the run goes on with the others.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter, ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use tradecore_book::{EventKind, Reason};

use super::orders::{is_aggressive, session_of, Command, CommandKind, OrderModel};
use super::report::{Counters, RunResult};
use super::rng::Rng;
use super::settings::{Arrivals, Mode, Settings, WaitMode};
use super::LoadgenError;
use crate::codec::{
    decode_from_venue, CodecError, ExecutionReport, Heartbeat, Liquidity, Logon, Logout, Message,
    MAX_MESSAGE_LEN,
};

/// Bytes of each session's send buffer: room for about 1,700 orders between two writes.
const OUT_BUF: usize = 64 * 1024;
/// Bytes of each session's receive buffer.
const IN_BUF: usize = 256 * 1024;
/// Commands generated per turn at most, so reads are never starved by a long backlog.
const MAX_BATCH: usize = 4096;
/// Histogram range: 1 ns to 100 s, three significant digits.
const HIST_MAX_NS: u64 = 100_000_000_000;

/// Monotonic nanoseconds since the run's start.
#[derive(Clone, Copy, Debug)]
pub(super) struct Clock {
    base: Instant,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            base: Instant::now(),
        }
    }

    #[inline]
    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }
}

/// A new histogram of the run's range.
pub(super) fn histogram() -> Result<Histogram<u64>, LoadgenError> {
    Histogram::new_with_bounds(1, HIST_MAX_NS, 3).map_err(|e| LoadgenError::Io {
        what: "create a latency histogram".to_owned(),
        message: e.to_string(),
    })
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    coid: u64,
    intended: u64,
    kind: CommandKind,
}

struct Conn {
    stream: TcpStream,
    account: u32,
    session_id: u64,
    /// Sequence number the next report must carry.
    next_seq: u64,
    out: Box<[u8]>,
    out_start: usize,
    out_len: usize,
    inb: Box<[u8]>,
    in_len: usize,
    pending: VecDeque<Pending>,
    model: OrderModel,
    alive: bool,
    logout_sent: bool,
    last_send: u64,
    heartbeat_ns: u64,
}

impl Conn {
    #[inline]
    fn push(&mut self, m: &Message) -> bool {
        if OUT_BUF - self.out_len < MAX_MESSAGE_LEN && self.out_start > 0 {
            self.out.copy_within(self.out_start..self.out_len, 0);
            self.out_len -= self.out_start;
            self.out_start = 0;
        }
        match m.encode(&mut self.out[self.out_len..]) {
            Ok(n) => {
                self.out_len += n;
                true
            }
            Err(_) => false,
        }
    }

    #[inline]
    fn room(&self) -> bool {
        OUT_BUF - (self.out_len - self.out_start) >= MAX_MESSAGE_LEN
    }

    fn flush(&mut self, c: &mut Counters) -> io::Result<()> {
        while self.out_start < self.out_len {
            match (&self.stream).write(&self.out[self.out_start..self.out_len]) {
                Ok(0) => return Err(io::Error::from(ErrorKind::WriteZero)),
                Ok(n) => {
                    self.out_start += n;
                    c.writes += 1;
                    c.bytes_sent += n as u64;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    c.write_would_block += 1;
                    break;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.out_start == self.out_len {
            self.out_start = 0;
            self.out_len = 0;
        }
        Ok(())
    }
}

/// Connects every session and logs it on (blocking, with the connect timeout), in order.
fn connect_all(s: &Settings) -> Result<Vec<Conn>, LoadgenError> {
    let mut conns = Vec::with_capacity(s.sessions as usize);
    for i in 0..s.sessions {
        let login = &s.logins[i as usize % s.logins.len()];
        let fail = |what: &str, e: io::Error| LoadgenError::Connect {
            session: i,
            addr: s.connect,
            message: format!("{what}: {e}"),
        };
        let std_stream = std::net::TcpStream::connect_timeout(&s.connect, s.connect_timeout)
            .map_err(|e| fail("connect", e))?;
        std_stream
            .set_nodelay(true)
            .map_err(|e| fail("TCP_NODELAY", e))?;
        std_stream
            .set_read_timeout(Some(s.connect_timeout))
            .map_err(|e| fail("read timeout", e))?;
        let mut frame = [0u8; 64];
        let n = Message::from(Logon {
            account: login.account,
            api_key: login.key,
            heartbeat_ms: s.heartbeat_ms,
        })
        .encode(&mut frame)
        .map_err(|e| fail("encode logon", io::Error::other(e.to_string())))?;
        (&std_stream)
            .write_all(&frame[..n])
            .map_err(|e| fail("send logon", e))?;
        let mut inb = vec![0u8; IN_BUF].into_boxed_slice();
        let mut in_len = 0;
        let ack = loop {
            match decode_from_venue(&inb[..in_len]) {
                Ok((Message::LogonAck(a), used)) => {
                    inb.copy_within(used..in_len, 0);
                    in_len -= used;
                    break a;
                }
                Ok((Message::LogonReject(r), _)) => {
                    return Err(LoadgenError::Logon {
                        session: i,
                        account: login.account,
                        reason: r.reason.name().to_owned(),
                    })
                }
                Ok((Message::VenueHeartbeat(_), used)) => {
                    inb.copy_within(used..in_len, 0);
                    in_len -= used;
                }
                Ok((other, _)) => {
                    return Err(LoadgenError::Logon {
                        session: i,
                        account: login.account,
                        reason: format!(
                            "the venue answered the logon with {}",
                            other.msg_type().name()
                        ),
                    })
                }
                Err(e) if e.is_incomplete() => {
                    let got = (&std_stream)
                        .read(&mut inb[in_len..])
                        .map_err(|e| fail("read logon answer", e))?;
                    if got == 0 {
                        return Err(fail(
                            "read logon answer",
                            io::Error::from(ErrorKind::UnexpectedEof),
                        ));
                    }
                    in_len += got;
                }
                Err(e) => {
                    return Err(LoadgenError::Logon {
                        session: i,
                        account: login.account,
                        reason: format!("undecodable logon answer: {e}"),
                    })
                }
            }
        };
        std_stream
            .set_nonblocking(true)
            .map_err(|e| fail("non-blocking mode", e))?;
        let granted = u64::from(if ack.heartbeat_ms == 0 {
            s.heartbeat_ms
        } else {
            ack.heartbeat_ms
        });
        conns.push(Conn {
            stream: TcpStream::from_std(std_stream),
            account: login.account,
            session_id: ack.session_id,
            next_seq: ack.next_seq,
            out: vec![0u8; OUT_BUF].into_boxed_slice(),
            out_start: 0,
            out_len: 0,
            inb,
            in_len,
            pending: VecDeque::with_capacity(s.max_inflight as usize),
            model: OrderModel::new(
                i,
                s.max_live,
                s.seed ^ (u64::from(i) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            ),
            alive: true,
            logout_sent: false,
            last_send: 0,
            // A heartbeat when the session has been quiet for half the interval.
            heartbeat_ns: granted * 500_000,
        });
    }
    Ok(conns)
}

/// The open-loop schedule: intended time of the next command.
struct Schedule {
    next: u64,
    index: u64,
    start: u64,
    rate: u64,
    poisson: Option<Rng>,
}

impl Schedule {
    #[inline]
    fn advance(&mut self) {
        self.index += 1;
        match &mut self.poisson {
            None => {
                self.next = self.start
                    + (u128::from(self.index) * 1_000_000_000 / u128::from(self.rate)) as u64;
            }
            Some(rng) => {
                let gap = -rng.unit_open0().ln() * 1e9 / self.rate as f64;
                self.next += gap.round() as u64;
            }
        }
    }
}

/// Everything the report handler updates.
struct Sink {
    c: Counters,
    by_kind: [Histogram<u64>; 4],
    all: Histogram<u64>,
    lag: Histogram<u64>,
    log: Option<BufWriter<File>>,
    log_error: Option<io::Error>,
    warm_end: u64,
    send_end: u64,
    inflight: u64,
    allowed: [bool; 32],
}

#[inline]
fn answers(kind: CommandKind, r: &ExecutionReport) -> bool {
    match kind {
        CommandKind::Add | CommandKind::Aggressive => {
            matches!(r.kind, EventKind::Accepted | EventKind::Rejected)
        }
        CommandKind::Cancel => {
            r.kind == EventKind::Rejected
                || (r.kind == EventKind::Cancelled && r.reason == Reason::User)
        }
        CommandKind::Modify => matches!(r.kind, EventKind::Replaced | EventKind::Rejected),
    }
}

#[inline]
fn answer_shaped(r: &ExecutionReport) -> bool {
    matches!(
        r.kind,
        EventKind::Accepted | EventKind::Rejected | EventKind::Replaced
    ) || (r.kind == EventKind::Cancelled && r.reason == Reason::User)
}

impl Sink {
    fn log_report(&mut self, session: u32, account: u32, r: &ExecutionReport) {
        if let Some(w) = &mut self.log {
            let res = writeln!(
                w,
                "{session},{account},{},{},{},{},{},{},{},{},{},{},{}",
                r.seq,
                r.kind.name(),
                if r.reason == Reason::None {
                    "NONE"
                } else {
                    r.reason.name()
                },
                r.client_order_id,
                r.order_id,
                r.symbol_id,
                r.side.name(),
                r.liquidity.name(),
                r.price,
                r.qty,
                r.leaves
            );
            if let Err(e) = res {
                self.log_error.get_or_insert(e);
                self.log = None;
            }
        }
    }

    fn report(&mut self, idx: u32, conn: &mut Conn, r: &ExecutionReport, now: u64) {
        let c = &mut self.c;
        c.reports[r.kind as usize] += 1;
        if r.seq == 0 {
            c.unsequenced += 1;
        } else {
            if r.seq > conn.next_seq {
                c.seq_gaps += r.seq - conn.next_seq;
            } else if r.seq < conn.next_seq {
                c.seq_dups += 1;
            }
            conn.next_seq = conn.next_seq.max(r.seq + 1);
        }
        self.log_report(idx, conn.account, r);
        let c = &mut self.c;
        if now >= self.warm_end && now < self.send_end {
            c.reports_in_window += 1;
        }
        // A report about another session's order (sessions of one account share its report
        // stream): only its own session acts on it.
        if let Some(owner) = session_of(r.client_order_id) {
            if owner != idx {
                c.foreign += 1;
                return;
            }
        }
        match r.kind {
            EventKind::Rejected => {
                c.rejects[r.reason as usize] += 1;
                if !self.allowed[r.reason as usize] {
                    c.unexpected_rejects += 1;
                }
            }
            EventKind::Cancelled => c.cancels[r.reason as usize] += 1,
            EventKind::Fill => match r.liquidity {
                Liquidity::Maker => {
                    c.fills_maker += 1;
                    c.qty_maker += u128::from(r.qty);
                }
                _ => {
                    c.fills_taker += 1;
                    c.qty_taker += u128::from(r.qty);
                }
            },
            _ => {}
        }
        let mut answered = None;
        if let Some(p) = conn.pending.front() {
            if p.coid == r.client_order_id && answers(p.kind, r) {
                answered = Some(*p);
            }
        }
        if let Some(p) = answered {
            conn.pending.pop_front();
            self.inflight -= 1;
            c.answered[p.kind as usize] += 1;
            if now >= self.warm_end && now < self.send_end {
                c.answered_in_window += 1;
            }
            if p.intended >= self.warm_end {
                let lat = now.saturating_sub(p.intended).max(1);
                self.by_kind[p.kind as usize].saturating_record(lat);
                self.all.saturating_record(lat);
            }
        } else if answer_shaped(r) {
            c.unmatched += 1;
        }
        if is_aggressive(r.client_order_id) {
            return;
        }
        match r.kind {
            EventKind::Cancelled => {
                conn.model.on_gone(r.client_order_id);
            }
            EventKind::Fill if r.leaves == 0 => {
                conn.model.on_gone(r.client_order_id);
            }
            EventKind::Rejected => match answered.map(|p| p.kind) {
                Some(CommandKind::Add) => {
                    conn.model.on_gone(r.client_order_id);
                }
                Some(CommandKind::Cancel) if r.reason != Reason::UnknownOrder => {
                    conn.model.on_cancel_refused(r.client_order_id);
                }
                _ => {}
            },
            _ => {}
        }
    }

    /// Decodes and handles every whole frame in `conn`'s receive buffer.
    fn frames(&mut self, idx: u32, conn: &mut Conn, now: u64) -> Result<(), CodecError> {
        let mut off = 0;
        let mut result = Ok(());
        while off < conn.in_len {
            match decode_from_venue(&conn.inb[off..conn.in_len]) {
                Ok((m, n)) => {
                    off += n;
                    match m {
                        Message::ExecutionReport(r) => self.report(idx, conn, &r, now),
                        Message::VenueHeartbeat(h) => {
                            self.c.heartbeats_received += 1;
                            if h.next_seq > conn.next_seq {
                                self.c.seq_gaps += h.next_seq - conn.next_seq;
                                conn.next_seq = h.next_seq;
                            }
                        }
                        _ => self.c.other_messages += 1,
                    }
                }
                Err(e) if e.is_incomplete() => break,
                Err(e) => {
                    self.c.decode_errors += 1;
                    result = Err(e);
                    off = conn.in_len;
                }
            }
        }
        conn.inb.copy_within(off..conn.in_len, 0);
        conn.in_len -= off;
        result
    }
}

/// Reads everything `conn` has (edge-triggered: until `WouldBlock`). Returns false when the
/// connection is finished (closed by the venue, failed, or unreadable).
fn read_conn(sink: &mut Sink, clock: &Clock, idx: u32, conn: &mut Conn) -> bool {
    loop {
        if conn.in_len == conn.inb.len() {
            // A frame is at most 256 bytes, so a full buffer always holds whole frames,
            // which `frames` consumed; this cannot stay full.
            sink.c.decode_errors += 1;
            return false;
        }
        match (&conn.stream).read(&mut conn.inb[conn.in_len..]) {
            Ok(0) => {
                if !conn.logout_sent {
                    sink.c.disconnects += 1;
                    sink.c.note(format!(
                        "session {idx} (account {}): the venue closed the connection",
                        conn.account
                    ));
                }
                return false;
            }
            Ok(n) => {
                sink.c.reads += 1;
                sink.c.bytes_received += n as u64;
                conn.in_len += n;
                let now = clock.now();
                if let Err(e) = sink.frames(idx, conn, now) {
                    sink.c.note(format!(
                        "session {idx}: undecodable frame from the venue ({e}); closing"
                    ));
                    return false;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                if !conn.logout_sent {
                    sink.c.disconnects += 1;
                    sink.c.note(format!(
                        "session {idx} (account {}): read failed: {e}",
                        conn.account
                    ));
                }
                return false;
            }
        }
    }
}

fn close(poll: &Poll, conn: &mut Conn) {
    conn.alive = false;
    let _ = poll.registry().deregister(&mut conn.stream);
}

/// Runs the load described by `s` against the venue; see the module doc.
pub(super) fn run(s: &Settings) -> Result<RunResult, LoadgenError> {
    let io_err = |what: &str, e: io::Error| LoadgenError::Io {
        what: what.to_owned(),
        message: e.to_string(),
    };
    let log = match &s.report_log {
        Some(p) => {
            let f = File::create(p).map_err(|e| io_err(&format!("create {}", p.display()), e))?;
            let mut w = BufWriter::with_capacity(1 << 20, f);
            writeln!(
                w,
                "session,account,seq,kind,reason,client_order_id,order_id,symbol_id,side,\
                 liquidity,price,qty,leaves"
            )
            .map_err(|e| io_err("write the report log", e))?;
            Some(w)
        }
        None => None,
    };
    let load_before = super::report::loadavg();
    let mut conns = connect_all(s)?;
    let n = conns.len();
    let mut poll = Poll::new().map_err(|e| io_err("create the poll", e))?;
    for (i, c) in conns.iter_mut().enumerate() {
        poll.registry()
            .register(&mut c.stream, Token(i), Interest::READABLE)
            .map_err(|e| io_err("register a connection", e))?;
    }
    let mut events = Events::with_capacity(1024);
    let mut dirty: Vec<usize> = Vec::with_capacity(n);
    let mut is_dirty = vec![false; n];

    let clock = Clock::new();
    let start = clock.now() + 1_000_000;
    let duration = s.duration.as_nanos() as u64;
    let send_end = start + duration;
    let mut allowed = [false; 32];
    for r in &s.allowed_rejects {
        allowed[*r as usize] = true;
    }
    let mut sink = Sink {
        c: Counters::default(),
        by_kind: [histogram()?, histogram()?, histogram()?, histogram()?],
        all: histogram()?,
        lag: histogram()?,
        log,
        log_error: None,
        warm_end: start + s.warmup.as_nanos() as u64,
        send_end,
        inflight: 0,
        allowed,
    };
    let mut sched = match s.mode {
        Mode::Open { rate } => Some(Schedule {
            next: start,
            index: 0,
            start,
            rate,
            poisson: (s.arrivals == Arrivals::Poisson).then(|| Rng::new(s.seed ^ 0x5eed)),
        }),
        Mode::Closed { .. } => None,
    };
    let window = match s.mode {
        Mode::Closed { window } => window as usize,
        Mode::Open { .. } => 0,
    };
    let mut sending = true;
    let mut drain_deadline = u64::MAX;
    let mut last_generated = start;
    let mut next_hb_check = start;
    let mut alive = n;

    // One command for session `i` intended at `intended`, encoded into its buffer.
    // False when the session's order model has nothing to send until reports free a slot.
    let generate = |conn: &mut Conn, sink: &mut Sink, intended: u64, now: u64| -> bool {
        let Some((kind, cmd)) = conn
            .model
            .next(&s.mix, &s.symbols, s.depth, s.cross, s.max_qty)
        else {
            return false;
        };
        let (coid, msg) = match cmd {
            Command::New(o) => (o.client_order_id, Message::from(o)),
            Command::Cancel(c) => (c.client_order_id, Message::from(c)),
            Command::Modify(m) => (m.client_order_id, Message::from(m)),
        };
        conn.push(&msg);
        conn.pending.push_back(Pending {
            coid,
            intended,
            kind,
        });
        conn.last_send = now;
        sink.inflight += 1;
        sink.c.sent[kind as usize] += 1;
        if intended >= sink.warm_end && intended < sink.send_end {
            sink.c.sent_in_window += 1;
        }
        if intended >= sink.warm_end {
            sink.lag
                .saturating_record(now.saturating_sub(intended).max(1));
        }
        true
    };

    loop {
        let now = clock.now();
        let mut generated = 0usize;
        if sending {
            if let Some(sc) = &mut sched {
                while sc.next <= now && sc.next < send_end && generated < MAX_BATCH {
                    let i = (sc.index % n as u64) as usize;
                    let conn = &mut conns[i];
                    if !conn.alive {
                        sink.c.skipped += 1;
                        sc.advance();
                        continue;
                    }
                    if conn.pending.len() >= s.max_inflight as usize || !conn.room() {
                        sink.c.stalls += 1;
                        break;
                    }
                    if !generate(conn, &mut sink, sc.next, now) {
                        sink.c.stalls += 1;
                        break;
                    }
                    if !is_dirty[i] {
                        is_dirty[i] = true;
                        dirty.push(i);
                    }
                    generated += 1;
                    sc.advance();
                }
                if sc.next >= send_end {
                    sending = false;
                }
            } else if now < send_end {
                for (i, conn) in conns.iter_mut().enumerate() {
                    if !conn.alive {
                        continue;
                    }
                    let before = generated;
                    while conn.pending.len() < window && conn.room() {
                        if !generate(conn, &mut sink, now, now) {
                            break;
                        }
                        generated += 1;
                    }
                    if generated > before && !is_dirty[i] {
                        is_dirty[i] = true;
                        dirty.push(i);
                    }
                }
            } else {
                sending = false;
            }
            if generated > 0 {
                last_generated = now;
            }
            if !sending {
                drain_deadline = now + s.drain_timeout.as_nanos() as u64;
            }
        }
        if now >= next_hb_check {
            next_hb_check = now + 1_000_000;
            for (i, conn) in conns.iter_mut().enumerate() {
                if conn.alive && now.saturating_sub(conn.last_send) >= conn.heartbeat_ns {
                    conn.push(&Message::from(Heartbeat {}));
                    conn.last_send = now;
                    sink.c.heartbeats_sent += 1;
                    if !is_dirty[i] {
                        is_dirty[i] = true;
                        dirty.push(i);
                    }
                }
            }
        }
        // Flush; sessions whose socket is full stay dirty.
        let mut backlog = false;
        let mut k = 0;
        while k < dirty.len() {
            let i = dirty[k];
            let conn = &mut conns[i];
            let res = if conn.alive {
                conn.flush(&mut sink.c)
            } else {
                Ok(())
            };
            if let Err(e) = res {
                sink.c.disconnects += 1;
                sink.c.note(format!(
                    "session {i} (account {}): write failed: {e}",
                    conn.account
                ));
                close(&poll, conn);
                alive -= 1;
            }
            if conn.alive && conn.out_len > conn.out_start {
                backlog = true;
                k += 1;
            } else {
                is_dirty[i] = false;
                dirty.swap_remove(k);
            }
        }

        // Wait for reports or the next deadline.
        let now = clock.now();
        let deadline = if sending {
            match &sched {
                Some(sc) => sc.next.min(next_hb_check),
                None => send_end.min(next_hb_check),
            }
        } else {
            drain_deadline.min(next_hb_check)
        };
        let idle_ns = deadline.saturating_sub(now);
        let block = !backlog && (idle_ns >= 2_000_000 || sched.is_none());
        let timeout = if block {
            Duration::from_millis((idle_ns / 1_000_000).clamp(1, 100))
        } else {
            Duration::ZERO
        };
        match poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err("poll", e)),
        }
        let mut got = false;
        for ev in events.iter() {
            got = true;
            let i = ev.token().0;
            let conn = &mut conns[i];
            if conn.alive && !read_conn(&mut sink, &clock, i as u32, conn) {
                close(&poll, conn);
                alive -= 1;
            }
        }
        if !got && !block && generated == 0 {
            match s.wait {
                WaitMode::Yield => std::thread::yield_now(),
                WaitMode::Spin => std::hint::spin_loop(),
                WaitMode::Sleep => std::thread::sleep(Duration::from_nanos(idle_ns.max(1))),
            }
        }
        if alive == 0 {
            if sending {
                sink.c
                    .note("every session is closed; stopping early".to_owned());
                // The rest of the schedule has no session to go to.
                if let Some(sc) = &mut sched {
                    while sc.next < send_end {
                        sink.c.skipped += 1;
                        sc.advance();
                    }
                }
            }
            break;
        }
        if !sending {
            let now = clock.now();
            if sink.inflight == 0 || now >= drain_deadline {
                break;
            }
            // Commands no session can send any more (dead sessions) are already counted.
            let waiting: usize = conns
                .iter()
                .filter(|c| c.alive)
                .map(|c| c.pending.len())
                .sum();
            if waiting == 0 {
                break;
            }
        }
    }
    let send_end_actual = last_generated;
    let drain_end = clock.now();

    // Log out: the venue sends what it still owes, then closes.
    for conn in conns.iter_mut().filter(|c| c.alive) {
        conn.push(&Message::from(Logout {}));
        conn.logout_sent = true;
    }
    let logout_deadline = clock.now() + 2_000_000_000;
    loop {
        let mut open = 0;
        for (i, conn) in conns.iter_mut().enumerate() {
            if !conn.alive {
                continue;
            }
            if conn.flush(&mut sink.c).is_err() {
                close(&poll, conn);
                continue;
            }
            if !read_conn(&mut sink, &clock, i as u32, conn) {
                close(&poll, conn);
                continue;
            }
            open += 1;
        }
        if open == 0 {
            break;
        }
        if clock.now() >= logout_deadline {
            sink.c.note(format!(
                "{open} session(s) still open 2 s after Logout; closing them"
            ));
            sink.c.logout_timeouts = open;
            break;
        }
        let _ = poll.poll(&mut events, Some(Duration::from_millis(5)));
    }

    for conn in &conns {
        sink.c.unanswered += conn.pending.len() as u64;
        sink.c.live_at_end += conn.model.live() as u64;
    }
    if let Some(mut w) = sink.log.take() {
        if let Err(e) = w.flush() {
            sink.log_error.get_or_insert(e);
        }
    }
    if let Some(e) = sink.log_error.take() {
        sink.c.note(format!(
            "the report log could not be written completely: {e}"
        ));
        sink.c.report_log_failed = true;
    }
    let sessions = conns
        .iter()
        .map(|c| (c.account, c.session_id))
        .collect::<Vec<_>>();
    Ok(RunResult {
        counters: sink.c,
        by_kind: sink.by_kind,
        all: sink.all,
        lag: sink.lag,
        measured_ns: duration - s.warmup.as_nanos() as u64,
        send_ns: send_end_actual.saturating_sub(start),
        drain_ns: drain_end.saturating_sub(send_end_actual),
        sessions,
        load_before,
        load_after: super::report::loadavg(),
    })
}
