//! `venue`: the deterministic state machine the engine thread runs. It owns every book, the
//! sessions, the per-account client-order-id maps and the venue's order ids; it turns each
//! [`Command`] into [`Outbound`] messages (execution reports, logon answers, market data). It
//! has no threads, sockets, files or clocks: time is the command's `ts_ns`, so the same
//! commands always give the same outputs and the same [`Venue::state_hash`], which is what
//! journal replay relies on.
//!
//! ## Rules
//!
//! * **Sessions.** A `Logon` binds the command's `session` to an account when the account is
//!   configured and `key_sha256` equals the configured hash (`LogonAck`); otherwise
//!   `LogonReject` with `NOT_LOGGED_IN` (whichever part was wrong). A logon beyond
//!   `session.max_sessions` open sessions is refused with `RATE_LIMITED`; a second `Logon` on
//!   an open session with `MALFORMED` (the session stays open; the gateway closes the
//!   connection after any `LogonReject`, as the protocol says, and then injects `Disconnect`).
//!   Any other message on a session that is not logged on gets an unsequenced `REJECTED`
//!   report with `NOT_LOGGED_IN`. An account may have several sessions at once; they share
//!   its client order ids and orders.
//! * **Rate limit.** Each session has a token bucket (`rate_limit_burst` tokens, refilled at
//!   `rate_limit_per_sec`, full at logon), driven only by `cmd.ts_ns` (a timestamp older than
//!   the last one refills nothing). `NewOrder`, `Cancel`, `Modify` and `MassCancel` take one
//!   token each; without one they are rejected with `RATE_LIMITED`.
//! * **Checks, in order** (each failure is one `REJECTED` report to the sender, nothing else
//!   changes). NewOrder: `RATE_LIMITED`, client order id 0 (`INVALID_ORDER`),
//!   `UNKNOWN_SYMBOL`, qty 0 (`INVALID_QTY`), `QTY_TOO_LARGE`, limit price <= 0
//!   (`INVALID_PRICE`), `PRICE_OUT_OF_BAND` (market orders skip both price checks), a live
//!   order of the account with that client order id (`DUPLICATE_ORDER_ID`), then the core's
//!   own (post-only that is not GTC limit, `BOOK_FULL`, `WOULD_CROSS`). Modify:
//!   `RATE_LIMITED`, `UNKNOWN_SYMBOL`, `INVALID_QTY`, `QTY_TOO_LARGE`, `INVALID_PRICE`,
//!   `PRICE_OUT_OF_BAND`, `UNKNOWN_ORDER`, then the core's `WOULD_CROSS`. Cancel:
//!   `RATE_LIMITED`, `UNKNOWN_SYMBOL`, `UNKNOWN_ORDER`. MassCancel: `RATE_LIMITED`,
//!   `UNKNOWN_SYMBOL` (for a symbol id other than 0).
//! * **Isolation.** Client order ids live in a map keyed by `(account, client_order_id)`; the
//!   venue assigns its own sequential order ids (1, 2, ...; an order the core refuses gets
//!   none and its report says 0). A cancel or modify names an order by the sender's account
//!   and client order id only, so another account's order is unreachable: `UNKNOWN_ORDER`,
//!   exactly as for an id that was never used. Every check before the map lookup depends on
//!   the request alone, so rejects reveal nothing about other accounts. An order whose
//!   `symbol_id` differs from the request's is also `UNKNOWN_ORDER`.
//! * **Reports.** Each core event becomes reports for the owners: a fill gives the taker's
//!   report (`TAKER`) and the maker's (`MAKER`), each with its own client order id; cancels of
//!   resting orders by self-trade prevention go to their owner. Reports about the order a
//!   command acts on go to the command's session; reports about other orders (makers) go to
//!   the session that entered them. Every report also names its account, so a publisher that
//!   keeps per-account streams can route by account (needed after the entering session is
//!   gone). Timestamps are `cmd.ts_ns`.
//! * **Report streams.** Each account has one report stream, shared by all its sessions and
//!   kept across connections and restarts: the venue numbers every sequenced report of the
//!   account 1, 2, 3, ... (`ExecutionReport.seq`) and puts the next number in
//!   `LogonAck.next_seq`. The counters are venue state (in the snapshot and the state hash),
//!   so replaying the journal regenerates the same numbered streams. Unsequenced reports
//!   keep `seq` 0. The venue also counts the market-data messages it has produced
//!   ([`Venue::md_messages`]), which the publisher uses to number the UDP market-data channel
//!   so its numbers never repeat across restarts.
//! * **Mass cancel and disconnect.** `MassCancel` cancels the sender account's live orders
//!   (one symbol, or all with 0) in venue order id order, reason `MASS_CANCEL`. `Logout`
//!   (answered with [`Outbound::SessionClosed`]) and `Disconnect` close the session; with
//!   `cancel_on_disconnect` the orders **that session** entered are then cancelled with reason
//!   `DISCONNECT` (orders entered by another session of the same account stay; this is the
//!   rule `docs/protocol.md` states).
//! * **Heartbeat and RetransmitRequest** change nothing: a heartbeat produces nothing, a
//!   retransmit request of a logged-on session is passed to the publisher
//!   ([`Outbound::Retransmit`]) in order with the reports. Neither takes a token.
//! * **Market data.** Each fill gives one `Trade` (aggressor side, price, qty). After each
//!   command, one absolute `BookUpdate` per (symbol, side, price) level the command changed
//!   (qty 0 = the level is gone), sorted by (symbol, side, price), after all the command's
//!   reports and trades.
//!
//! ## Invariants (checked by [`Venue::check_invariants`])
//!
//! Every resting order of every book has exactly one record in the order store (owner,
//! client order id, instrument, side, STP, post-only, entering session), found by its venue
//! id and by its `(account, client_order_id)`, and nothing else does: orders leave the store
//! when they are filled or cancelled, so it never holds more than the books' total capacity.
//! Each account's live orders form a list in increasing venue order id. Every open session
//! belongs to a configured account.
//!
//! ## Cost and allocation
//!
//! `apply` costs the core's operation plus O(1) expected work in the order store per event
//! (a mass cancel or disconnect walks only the account's own list). The store
//! (`venue::orders`) keeps the records in a slab and finds them through two
//! open-addressing indexes with backward-shift deletion (no tombstones, so `apply` does not
//! slow down as a run gets longer), hashed with a keyed multiply hash whose seed is drawn at
//! start-up: clients choose client order ids but cannot aim them at one probe run, and the
//! seed changes no output, so replay stays deterministic. Venue ids and the account lists'
//! links need no hashing beyond that: the lists link slab slots. Sessions are in a small
//! hash map keyed by the gateway's session ids (one multiply-xorshift), reserved for twice
//! `max_sessions`. [`Venue::prefetch`] and [`Venue::prefetch_order`] let a caller that sees
//! commands coming (the engine thread's ring batch) start the store's cache misses early.
//!
//! After warm-up `apply` allocates nothing per command: the only growth is the caller's
//! `out` vector, the venue's event and touched-level scratch vectors and the core's price
//! ladders, each up to its peak. Memory: about 57 bytes per order of total book capacity in
//! the books, 48 per order of capacity in the store's slab (touched only up to the peak of
//! live orders), and two index buffers of 16 bytes x `next_power_of_two(2 x capacity)`
//! (64 to 128 bytes per order of capacity, allocated zeroed so only the part in use, about
//! 32 to 64 bytes per live order, is ever touched). The remaining latency outlier is an
//! index doubling its part in use (O(live orders), at most log2(capacity) times in a
//! venue's life). [`Venue::state_hash`], [`Venue::snapshot`] and [`Venue::restore`] are
//! O(orders) and allocate; they run off the per-message path.

mod command;
mod orders;
mod snapshot;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use thiserror::Error;
use tradecore_book::{
    Book, Event, EventKind, Matching, OrderRequest, OrderType, Reason, Side, Stp,
};

use crate::codec::{
    BookUpdate, CodecError, ExecutionReport, Liquidity, LogonAck, LogonReject, Modify, NewOrder,
    RetransmitRequest, Trade,
};
use crate::config::{Config, ConfigError};

pub use command::{
    limit_order, Command, Input, COMMAND_HEADER_LEN, COMMAND_VERSION, DISCONNECT_KIND,
    MAX_COMMAND_LEN,
};
use orders::{OrderInfo, OrderStore, NIL};
pub use snapshot::SNAPSHOT_MAGIC;

/// Everything the venue module can report as an error (commands that do not decode,
/// snapshots that do not restore, configs that do not validate). `apply` itself never fails:
/// bad requests become reject reports.
#[derive(Debug, Error)]
pub enum VenueError {
    /// The config failed validation.
    #[error("invalid config: {0}")]
    Config(#[from] ConfigError),
    /// An encoded command shorter than its header.
    #[error("command record of {have} bytes is shorter than its {need}-byte header")]
    CommandTruncated {
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// An encoded command with another format version.
    #[error("command format version {version} is not supported (expected {COMMAND_VERSION})")]
    CommandBadVersion {
        /// The version byte.
        version: u8,
    },
    /// An encoded command with an unknown kind byte.
    #[error("unknown command kind 0x{kind:02x}")]
    CommandUnknownKind {
        /// The kind byte.
        kind: u8,
    },
    /// An encoded command whose length is not its kind's.
    #[error("command kind 0x{kind:02x} is {expected} bytes, record has {length}")]
    CommandBadLength {
        /// The kind byte.
        kind: u8,
        /// The kind's length.
        expected: usize,
        /// The record's length.
        length: usize,
    },
    /// An enum or boolean byte out of range in an encoded command.
    #[error("invalid value {value} for command field `{field}`")]
    CommandBadEnum {
        /// The field (as in `docs/protocol.md`).
        field: &'static str,
        /// The byte.
        value: u8,
    },
    /// Any other codec failure inside a command body.
    #[error("bad command body: {0}")]
    CommandBody(CodecError),
    /// The buffer given to `encode_into` is too small.
    #[error("buffer too small: {need} bytes needed, {have} available")]
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// [`Command::from_message`] was given a venue -> client or feed message.
    #[error("message type 0x{msg_type:02x} is not a client -> venue message")]
    NotClientMessage {
        /// Its type byte.
        msg_type: u8,
    },
    /// The snapshot was taken under a config with other engine rules
    /// ([`Config::engine_fingerprint`]); replaying under this one would not reproduce it.
    #[error(
        "snapshot was taken under another engine config (fingerprint {found}, this config \
         {expected})"
    )]
    SnapshotConfigMismatch {
        /// This config's fingerprint (hex).
        expected: String,
        /// The snapshot's (hex).
        found: String,
    },
    /// The snapshot body is not a valid venue snapshot.
    #[error("corrupt venue snapshot at byte {offset}: {what}")]
    SnapshotCorrupt {
        /// Where the problem was found.
        offset: usize,
        /// What it was.
        what: &'static str,
    },
}

/// What the venue asks the publisher to send, in order. Sequenced reports carry their number
/// in the account's stream and `LogonAck.next_seq` the account's next number (module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outbound {
    /// Logon accepted: `ack.session_id` is the session, `ack.next_seq` the number the
    /// account's next report will carry.
    LogonAck {
        /// The session.
        session: u64,
        /// Its account.
        account: u32,
        /// The message.
        ack: LogonAck,
    },
    /// Logon refused; the gateway closes the connection after sending it.
    LogonReject {
        /// The session.
        session: u64,
        /// The message (`next_seq` 0).
        reject: LogonReject,
    },
    /// An execution report in `account`'s report stream. `session` is the session the report
    /// concerns (the command's sender, or the session that entered a resting order); the
    /// server's publisher sends the account's stream to every session of the account.
    Report {
        /// Target session.
        session: u64,
        /// Owner of the order.
        account: u32,
        /// The report, numbered in the account's stream.
        report: ExecutionReport,
    },
    /// An unsequenced report (`seq` 0 on the wire) to a session that is not logged on.
    Unsequenced {
        /// Target session.
        session: u64,
        /// The report.
        report: ExecutionReport,
    },
    /// The session is closed in the venue (after `Logout` or `Disconnect`): after `Logout`
    /// the publisher sends what precedes this and closes the connection. Reports that follow
    /// (cancel-on-disconnect) belong to the account's stream only.
    SessionClosed {
        /// The session.
        session: u64,
        /// Its account.
        account: u32,
    },
    /// A retransmission request of a logged-on session, passed through in stream order.
    Retransmit {
        /// The requesting session.
        session: u64,
        /// Its account.
        account: u32,
        /// The request.
        request: RetransmitRequest,
    },
    /// Market data: a level's new absolute quantity.
    BookUpdate(BookUpdate),
    /// Market data: one match.
    Trade(Trade),
}

impl Outbound {
    /// The session a message is addressed to (`None` for market data).
    pub fn session(&self) -> Option<u64> {
        match *self {
            Outbound::LogonAck { session, .. }
            | Outbound::LogonReject { session, .. }
            | Outbound::Report { session, .. }
            | Outbound::Unsequenced { session, .. }
            | Outbound::SessionClosed { session, .. }
            | Outbound::Retransmit { session, .. } => Some(session),
            Outbound::BookUpdate(_) | Outbound::Trade(_) => None,
        }
    }
}

/// A live order as the venue sees it (for tests, tools and the Python side).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveOrder {
    /// Venue order id.
    pub order_id: u64,
    /// Owner's client order id.
    pub client_order_id: u64,
    /// Owner.
    pub account: u32,
    /// Instrument.
    pub symbol_id: u32,
    /// Side.
    pub side: Side,
    /// Price, ticks.
    pub price: i64,
    /// Remaining quantity, lots.
    pub leaves: u64,
    /// The session that entered it.
    pub session: u64,
    /// Self-trade prevention mode.
    pub stp: Stp,
    /// Post-only flag.
    pub post_only: bool,
}

/// Hasher of the session ids the gateway assigns: one multiply-xorshift instead of SipHash.
/// Clients cannot choose these keys, so no collision attack is possible (client-chosen keys
/// live in `venue::orders`, which keys its hash with a secret seed).
#[derive(Clone, Copy, Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    #[inline]
    fn write_u64(&mut self, x: u64) {
        let h = (self.0 ^ x).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = h ^ (h >> 29);
    }
}

/// A map keyed by a gateway-assigned session id.
type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// One token, in the bucket's unit (nano-tokens: refill is `elapsed_ns * rate_per_sec`).
const TOKEN: u64 = 1_000_000_000;

struct Instrument {
    symbol_id: u32,
    lo: i64,
    hi: i64,
    max_qty: u64,
    book: Book,
}

struct Account {
    id: u32,
    key_sha256: [u8; 32],
    /// Sequenced reports produced so far (the last number of the account's stream).
    reports: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Session {
    account: u32,
    /// Index into `Venue::accounts`.
    acct: u32,
    /// Bucket level in nano-tokens.
    tokens: u64,
    /// Latest `ts_ns` seen by the bucket.
    last_ts: u64,
}

/// The order a command acts on, with where its reports go.
#[derive(Clone, Copy)]
struct Subject {
    order_id: u64,
    client_order_id: u64,
    account: u32,
    side: Side,
    session: u64,
}

/// Request fields echoed by a reject: (client order id, symbol id, side, price, qty).
type Echo = (u64, u32, Side, i64, u64);

/// The venue. See the module doc.
pub struct Venue {
    fingerprint: [u8; 32],
    rate_per_sec: u64,
    bucket_cap: u64,
    heartbeat_ms: u32,
    cancel_on_disconnect: bool,
    max_sessions: usize,
    /// Sorted by symbol id.
    instruments: Vec<Instrument>,
    /// Sorted by account id.
    accounts: Vec<Account>,
    sessions: IdMap<Session>,
    /// Live orders by venue id, by `(account, client_order_id)` and per account.
    orders: OrderStore,
    next_order_id: u64,
    max_session_id: u64,
    /// Market-data messages (BookUpdate, Trade) produced so far.
    md_messages: u64,
    events: Vec<Event>,
    touched: Vec<(u32, Side, i64)>,
}

impl std::fmt::Debug for Venue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Venue")
            .field("instruments", &self.instruments.len())
            .field("accounts", &self.accounts.len())
            .field("sessions", &self.sessions.len())
            .field("live_orders", &self.orders.len())
            .field("next_order_id", &self.next_order_id)
            .finish()
    }
}

fn report(
    subject: &Subject,
    symbol_id: u32,
    ts: u64,
    ev: &Event,
    liquidity: Liquidity,
) -> ExecutionReport {
    ExecutionReport {
        seq: 0,
        client_order_id: subject.client_order_id,
        order_id: subject.order_id,
        symbol_id,
        kind: ev.kind,
        reason: ev.reason,
        side: subject.side,
        liquidity,
        price: ev.price,
        qty: ev.qty,
        leaves: ev.leaves,
        timestamp_ns: ts,
    }
}

fn reject_report(echo: Echo, order_id: u64, reason: Reason, ts: u64) -> ExecutionReport {
    let (client_order_id, symbol_id, side, price, qty) = echo;
    ExecutionReport {
        seq: 0,
        client_order_id,
        order_id,
        symbol_id,
        kind: EventKind::Rejected,
        reason,
        side,
        liquidity: Liquidity::None,
        price,
        qty,
        leaves: 0,
        timestamp_ns: ts,
    }
}

/// The request fields a reject echoes.
fn echo_of(input: &Input) -> Echo {
    match *input {
        Input::NewOrder(o) => (
            o.client_order_id,
            o.symbol_id,
            o.side,
            if o.order_type == OrderType::Market {
                0
            } else {
                o.price
            },
            o.qty,
        ),
        Input::Cancel(c) => (c.client_order_id, c.symbol_id, Side::Buy, 0, 0),
        Input::Modify(m) => (
            m.client_order_id,
            m.symbol_id,
            Side::Buy,
            m.new_price,
            m.new_qty,
        ),
        Input::MassCancel(m) => (0, m.symbol_id, Side::Buy, 0, 0),
        _ => (0, 0, Side::Buy, 0, 0),
    }
}

/// Refills a session's bucket to `ts` and takes one token if there is one.
#[inline]
fn take_token(s: &mut Session, rate: u64, cap: u64, ts: u64) -> bool {
    if ts > s.last_ts {
        let add = (ts - s.last_ts).saturating_mul(rate);
        s.tokens = s.tokens.saturating_add(add).min(cap);
        s.last_ts = ts;
    }
    if s.tokens >= TOKEN {
        s.tokens -= TOKEN;
        true
    } else {
        false
    }
}

/// Starts fetching the cache line holding `p` into every cache level: a hint that reads no
/// Rust-visible memory and changes nothing observable.
#[inline(always)]
#[allow(
    unsafe_code,
    reason = "PREFETCHT0 is reached through an unsafe core::arch intrinsic; it is only a hint"
)]
fn prefetch<T>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 cannot fault and writes nothing; `p` is a valid reference anyway,
    // and SSE (which provides the instruction) is part of the x86_64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
            (p as *const T).cast::<i8>(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Equality of two hashes without an early exit.
fn hashes_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Venue {
    /// An empty venue for `config` (validated again here). Takes all the memory of the books
    /// and maps up front (see the module doc).
    pub fn new(config: &Config) -> Result<Venue, VenueError> {
        config.validate()?;
        let mut instruments: Vec<Instrument> = config
            .instruments
            .iter()
            .map(|i| Instrument {
                symbol_id: i.symbol_id,
                lo: i.price_band.lo_ticks,
                hi: i.price_band.hi_ticks,
                max_qty: i.max_order_qty,
                book: Book::with_capacity(i.book_capacity as usize),
            })
            .collect();
        instruments.sort_by_key(|i| i.symbol_id);
        let mut accounts: Vec<Account> = config
            .accounts
            .iter()
            .map(|a| Account {
                id: a.account,
                key_sha256: a.api_key_sha256,
                reports: 0,
            })
            .collect();
        accounts.sort_by_key(|a| a.id);
        let capacity: usize = config
            .instruments
            .iter()
            .map(|i| i.book_capacity as usize)
            .sum();
        let s = &config.session;
        let n_accounts = accounts.len();
        Ok(Venue {
            fingerprint: config.engine_fingerprint(),
            rate_per_sec: s.rate_limit_per_sec,
            bucket_cap: s.rate_limit_burst * TOKEN,
            heartbeat_ms: s.heartbeat_ms,
            cancel_on_disconnect: s.cancel_on_disconnect,
            max_sessions: s.max_sessions as usize,
            instruments,
            accounts,
            sessions: IdMap::with_capacity_and_hasher(
                2 * s.max_sessions as usize + 2,
                Default::default(),
            ),
            orders: OrderStore::with_capacity(capacity, n_accounts),
            next_order_id: 1,
            max_session_id: 0,
            md_messages: 0,
            events: Vec::with_capacity(256),
            touched: Vec::with_capacity(256),
        })
    }

    /// Applies one command, appending what it produces to `out` (which is not cleared).
    /// Never fails and never panics on any command; see the module doc for the rules.
    pub fn apply(&mut self, cmd: &Command, out: &mut Vec<Outbound>) {
        let start = out.len();
        self.apply_inner(cmd, out);
        self.number(&mut out[start..]);
    }

    /// Lookahead hint for a batch, stage 1: `cmd` will be applied a few commands from now;
    /// start fetching the index entry of the client order id it names (a new order's
    /// duplicate check, a cancel's or modify's lookup). Changes nothing observable: the
    /// outputs and the state are the same with or without it. The engine calls it about
    /// four commands ahead and [`Venue::prefetch_order`] two ahead.
    #[inline]
    pub fn prefetch(&self, cmd: &Command) {
        if let Some((account, coid)) = self.client_key(cmd) {
            self.orders.prefetch_client(account, coid);
        }
    }

    /// Lookahead hint for a batch, stage 2 (after [`Venue::prefetch`] of the same command
    /// had time to complete): start fetching the venue's record of the live order that a
    /// cancel or modify names. Changes nothing observable.
    #[inline]
    pub fn prefetch_order(&self, cmd: &Command) {
        if let Input::Cancel(_) | Input::Modify(_) = cmd.input {
            if let Some((account, coid)) = self.client_key(cmd) {
                self.orders.prefetch_client_record(account, coid);
            }
        }
    }

    /// The `(account, client_order_id)` a command names, as its session is logged on now.
    #[inline]
    fn client_key(&self, cmd: &Command) -> Option<(u32, u64)> {
        let coid = match cmd.input {
            Input::NewOrder(o) => o.client_order_id,
            Input::Cancel(c) => c.client_order_id,
            Input::Modify(m) => m.client_order_id,
            _ => return None,
        };
        Some((self.sessions.get(&cmd.session)?.account, coid))
    }

    /// Numbers the reports of one command in their accounts' streams, fills
    /// `LogonAck.next_seq` and counts market data. One account lookup per report.
    fn number(&mut self, out: &mut [Outbound]) {
        for o in out {
            match o {
                Outbound::Report {
                    account, report, ..
                } => {
                    if let Ok(i) = self.accounts.binary_search_by_key(account, |a| a.id) {
                        let a = &mut self.accounts[i];
                        a.reports += 1;
                        report.seq = a.reports;
                    }
                }
                Outbound::LogonAck { account, ack, .. } => {
                    ack.next_seq = self.next_report_seq(*account).unwrap_or(1);
                }
                Outbound::BookUpdate(_) | Outbound::Trade(_) => self.md_messages += 1,
                _ => {}
            }
        }
    }

    fn apply_inner(&mut self, cmd: &Command, out: &mut Vec<Outbound>) {
        self.max_session_id = self.max_session_id.max(cmd.session);
        match cmd.input {
            Input::Logon {
                account,
                key_sha256,
                ..
            } => return self.logon(cmd, account, &key_sha256, out),
            Input::Disconnect => return self.close_session(cmd, out),
            _ => {}
        }
        let (rate, cap) = (self.rate_per_sec, self.bucket_cap);
        // One session lookup serves the login check and the token bucket.
        let Some(s) = self.sessions.get_mut(&cmd.session) else {
            let report = reject_report(echo_of(&cmd.input), 0, Reason::NotLoggedIn, cmd.ts_ns);
            return out.push(Outbound::Unsequenced {
                session: cmd.session,
                report,
            });
        };
        let sess = *s;
        let token = match cmd.input {
            Input::NewOrder(_) | Input::Cancel(_) | Input::Modify(_) | Input::MassCancel(_) => {
                take_token(s, rate, cap, cmd.ts_ns)
            }
            _ => true,
        };
        match cmd.input {
            Input::Logout => return self.close_session(cmd, out),
            Input::Heartbeat => return,
            Input::RetransmitRequest(request) => {
                return out.push(Outbound::Retransmit {
                    session: cmd.session,
                    account: sess.account,
                    request,
                })
            }
            _ => {}
        }
        if !token {
            return self.reject(cmd, &sess, 0, Reason::RateLimited, out);
        }
        match cmd.input {
            Input::NewOrder(o) => self.new_order(cmd, &sess, &o, out),
            Input::Cancel(c) => {
                if let Some(slot) = self.find_order(cmd, &sess, c.symbol_id, c.client_order_id, out)
                {
                    self.cancel_one(slot, Reason::User, cmd.session, cmd.ts_ns, out);
                }
            }
            Input::Modify(m) => self.modify(cmd, &sess, &m, out),
            Input::MassCancel(m) => self.mass_cancel(cmd, &sess, m.symbol_id, out),
            _ => {}
        }
        self.flush_levels(out);
    }

    fn reject(
        &self,
        cmd: &Command,
        sess: &Session,
        order_id: u64,
        reason: Reason,
        out: &mut Vec<Outbound>,
    ) {
        out.push(Outbound::Report {
            session: cmd.session,
            account: sess.account,
            report: reject_report(echo_of(&cmd.input), order_id, reason, cmd.ts_ns),
        });
    }

    fn logon(&mut self, cmd: &Command, account: u32, key: &[u8; 32], out: &mut Vec<Outbound>) {
        let refuse = |reason| Outbound::LogonReject {
            session: cmd.session,
            reject: LogonReject {
                next_seq: 0,
                reason,
            },
        };
        if self.sessions.contains_key(&cmd.session) {
            return out.push(refuse(Reason::Malformed));
        }
        let acct = match self.accounts.binary_search_by_key(&account, |a| a.id) {
            Ok(i) if hashes_equal(&self.accounts[i].key_sha256, key) => i,
            _ => return out.push(refuse(Reason::NotLoggedIn)),
        };
        if self.sessions.len() >= self.max_sessions {
            return out.push(refuse(Reason::RateLimited));
        }
        self.sessions.insert(
            cmd.session,
            Session {
                account,
                acct: acct as u32,
                tokens: self.bucket_cap,
                last_ts: cmd.ts_ns,
            },
        );
        out.push(Outbound::LogonAck {
            session: cmd.session,
            account,
            ack: LogonAck {
                next_seq: 0,
                session_id: cmd.session,
                heartbeat_ms: self.heartbeat_ms,
            },
        });
    }

    /// Logout or Disconnect: forget the session, then cancel what it entered if configured.
    fn close_session(&mut self, cmd: &Command, out: &mut Vec<Outbound>) {
        let Some(sess) = self.sessions.remove(&cmd.session) else {
            return;
        };
        out.push(Outbound::SessionClosed {
            session: cmd.session,
            account: sess.account,
        });
        if self.cancel_on_disconnect {
            let mut slot = self.orders.list(sess.acct).head;
            while slot != NIL {
                // Read before the cancel frees the slot; the cancel touches no other slot.
                let info = *self.orders.get(slot);
                if info.session == cmd.session {
                    self.cancel_one(slot, Reason::Disconnect, cmd.session, cmd.ts_ns, out);
                }
                slot = info.next;
            }
        }
        self.flush_levels(out);
    }

    fn instrument_index(&self, symbol_id: u32) -> Option<u32> {
        self.instruments
            .binary_search_by_key(&symbol_id, |i| i.symbol_id)
            .ok()
            .map(|i| i as u32)
    }

    /// Looks up `(account, client_order_id)` on `symbol_id` for a cancel; pushes the reject
    /// and returns `None` when it is not there.
    fn find_order(
        &self,
        cmd: &Command,
        sess: &Session,
        symbol_id: u32,
        client_order_id: u64,
        out: &mut Vec<Outbound>,
    ) -> Option<u32> {
        let Some(ix) = self.instrument_index(symbol_id) else {
            self.reject(cmd, sess, 0, Reason::UnknownSymbol, out);
            return None;
        };
        self.lookup(sess.account, client_order_id, ix).or_else(|| {
            self.reject(cmd, sess, 0, Reason::UnknownOrder, out);
            None
        })
    }

    /// The store slot of the account's live order with this client id on instrument `ix`.
    #[inline]
    fn lookup(&self, account: u32, client_order_id: u64, ix: u32) -> Option<u32> {
        let slot = self.orders.slot_of_client(account, client_order_id)?;
        (self.orders.get(slot).instr == ix).then_some(slot)
    }

    fn check_price_qty(&self, ix: u32, market: bool, price: i64, qty: u64) -> Option<Reason> {
        let ins = &self.instruments[ix as usize];
        if qty == 0 {
            Some(Reason::InvalidQty)
        } else if qty > ins.max_qty {
            Some(Reason::QtyTooLarge)
        } else if market {
            None
        } else if price <= 0 {
            Some(Reason::InvalidPrice)
        } else if price < ins.lo || price > ins.hi {
            Some(Reason::PriceOutOfBand)
        } else {
            None
        }
    }

    fn new_order(&mut self, cmd: &Command, sess: &Session, o: &NewOrder, out: &mut Vec<Outbound>) {
        if o.client_order_id == 0 {
            return self.reject(cmd, sess, 0, Reason::InvalidOrder, out);
        }
        let Some(ix) = self.instrument_index(o.symbol_id) else {
            return self.reject(cmd, sess, 0, Reason::UnknownSymbol, out);
        };
        let market = o.order_type == OrderType::Market;
        if let Some(reason) = self.check_price_qty(ix, market, o.price, o.qty) {
            return self.reject(cmd, sess, 0, reason, out);
        }
        if self
            .orders
            .slot_of_client(sess.account, o.client_order_id)
            .is_some()
        {
            return self.reject(cmd, sess, 0, Reason::DuplicateOrderId, out);
        }
        let order_id = self.next_order_id;
        // Its id-index entry is written after the match if it rests: fetch it meanwhile.
        self.orders.prefetch_id(order_id);
        let Some(next_id) = order_id.checked_add(1) else {
            // 2^64 - 1 orders: unreachable in practice, but no input may make us wrap.
            return self.reject(cmd, sess, 0, Reason::BookFull, out);
        };
        let req = OrderRequest {
            order_id,
            account: sess.account,
            side: o.side,
            price: o.price,
            qty: o.qty,
            order_type: o.order_type,
            tif: o.tif,
            post_only: o.post_only,
            stp: o.stp,
            timestamp: cmd.ts_ns,
        };
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        self.instruments[ix as usize].book.submit(&req, &mut events);
        match events.first() {
            Some(ev) if ev.kind == EventKind::Rejected => {
                self.reject(cmd, sess, 0, ev.reason, out);
            }
            _ => {
                self.next_order_id = next_id;
                let subject = Subject {
                    order_id,
                    client_order_id: o.client_order_id,
                    account: sess.account,
                    side: o.side,
                    session: cmd.session,
                };
                self.translate(ix, &subject, &events, cmd.ts_ns, out);
                if let Some(r) = self.instruments[ix as usize].book.order(order_id) {
                    self.orders.insert(OrderInfo {
                        order_id,
                        client_order_id: o.client_order_id,
                        session: cmd.session,
                        prev: NIL,
                        next: NIL,
                        account: sess.account,
                        acct: sess.acct,
                        instr: ix,
                        side: o.side,
                        stp: o.stp,
                        post_only: o.post_only,
                    });
                    self.touched.push((ix, o.side, r.price));
                }
            }
        }
        self.events = events;
    }

    fn modify(&mut self, cmd: &Command, sess: &Session, m: &Modify, out: &mut Vec<Outbound>) {
        let (new_price, new_qty) = (m.new_price, m.new_qty);
        let Some(ix) = self.instrument_index(m.symbol_id) else {
            return self.reject(cmd, sess, 0, Reason::UnknownSymbol, out);
        };
        if let Some(reason) = self.check_price_qty(ix, false, new_price, new_qty) {
            return self.reject(cmd, sess, 0, reason, out);
        }
        let Some(slot) = self.lookup(sess.account, m.client_order_id, ix) else {
            return self.reject(cmd, sess, 0, Reason::UnknownOrder, out);
        };
        let info = *self.orders.get(slot);
        let order_id = info.order_id;
        let book = &mut self.instruments[ix as usize].book;
        let Some(before) = book.order(order_id) else {
            return self.reject(cmd, sess, 0, Reason::UnknownOrder, out);
        };
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        book.modify(order_id, new_price, new_qty, &mut events);
        match events.first() {
            Some(ev) if ev.kind == EventKind::Rejected => {
                let (coid, sym, _, price, qty) = echo_of(&cmd.input);
                out.push(Outbound::Report {
                    session: cmd.session,
                    account: sess.account,
                    report: reject_report(
                        (coid, sym, info.side, price, qty),
                        order_id,
                        ev.reason,
                        cmd.ts_ns,
                    ),
                });
            }
            _ => {
                let subject = Subject {
                    order_id,
                    client_order_id: info.client_order_id,
                    account: info.account,
                    side: info.side,
                    session: cmd.session,
                };
                // Removes only makers (other slots): `slot` stays this order's.
                self.translate(ix, &subject, &events, cmd.ts_ns, out);
                match self.instruments[ix as usize].book.order(order_id) {
                    None => {
                        self.orders.remove(slot);
                        self.touched.push((ix, info.side, before.price));
                    }
                    Some(after) => {
                        if after.price != before.price || after.leaves != before.leaves {
                            self.touched.push((ix, info.side, before.price));
                            if after.price != before.price {
                                self.touched.push((ix, info.side, after.price));
                            }
                        }
                    }
                }
            }
        }
        self.events = events;
    }

    fn mass_cancel(
        &mut self,
        cmd: &Command,
        sess: &Session,
        symbol_id: u32,
        out: &mut Vec<Outbound>,
    ) {
        let only = if symbol_id == 0 {
            None
        } else {
            match self.instrument_index(symbol_id) {
                Some(ix) => Some(ix),
                None => return self.reject(cmd, sess, 0, Reason::UnknownSymbol, out),
            }
        };
        let mut slot = self.orders.list(sess.acct).head;
        while slot != NIL {
            // Read before the cancel frees the slot; the cancel touches no other slot.
            let info = *self.orders.get(slot);
            if only.is_none_or(|ix| ix == info.instr) {
                self.cancel_one(slot, Reason::MassCancel, cmd.session, cmd.ts_ns, out);
            }
            slot = info.next;
        }
    }

    /// Cancels the live order in store slot `slot` with `reason`; its report goes to
    /// `session`.
    fn cancel_one(
        &mut self,
        slot: u32,
        reason: Reason,
        session: u64,
        ts: u64,
        out: &mut Vec<Outbound>,
    ) {
        let info = *self.orders.get(slot);
        // Its id-index entry is removed after the book's cancel: fetch it meanwhile.
        self.orders.prefetch_id(info.order_id);
        let ix = info.instr;
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        let ins = &mut self.instruments[ix as usize];
        ins.book
            .cancel_with_reason(info.order_id, reason, &mut events);
        if let Some(ev) = events.first().filter(|e| e.kind == EventKind::Cancelled) {
            let subject = Subject {
                order_id: info.order_id,
                client_order_id: info.client_order_id,
                account: info.account,
                side: info.side,
                session,
            };
            out.push(Outbound::Report {
                session,
                account: info.account,
                report: report(&subject, ins.symbol_id, ts, ev, Liquidity::None),
            });
            self.touched.push((ix, info.side, ev.price));
            self.orders.remove(slot);
        }
        self.events = events;
    }

    /// Turns the core's events of one submit or modify into reports and trades. `subject` is
    /// the order the command acts on; every other order named is a resting maker, which
    /// leaves the store when it is filled or cancelled.
    fn translate(
        &mut self,
        ix: u32,
        subject: &Subject,
        events: &[Event],
        ts: u64,
        out: &mut Vec<Outbound>,
    ) {
        let symbol_id = self.instruments[ix as usize].symbol_id;
        let to_subject = |ev: &Event, liq| Outbound::Report {
            session: subject.session,
            account: subject.account,
            report: report(subject, symbol_id, ts, ev, liq),
        };
        for ev in events {
            match ev.kind {
                EventKind::Fill => {
                    out.push(to_subject(ev, Liquidity::Taker));
                    if let Some(slot) = self.orders.slot_of_id(ev.other_id) {
                        let maker = *self.orders.get(slot);
                        let m = Subject {
                            order_id: ev.other_id,
                            client_order_id: maker.client_order_id,
                            account: maker.account,
                            side: maker.side,
                            session: maker.session,
                        };
                        let maker_ev = Event {
                            leaves: ev.other_leaves,
                            ..*ev
                        };
                        out.push(Outbound::Report {
                            session: m.session,
                            account: m.account,
                            report: report(&m, symbol_id, ts, &maker_ev, Liquidity::Maker),
                        });
                        self.touched.push((ix, maker.side, ev.price));
                        if ev.other_leaves == 0 {
                            self.orders.remove(slot);
                        }
                    }
                    out.push(Outbound::Trade(Trade {
                        symbol_id,
                        aggressor: subject.side,
                        price: ev.price,
                        qty: ev.qty,
                        timestamp_ns: ts,
                    }));
                }
                EventKind::Cancelled if ev.order_id != subject.order_id => {
                    // A resting order removed by self-trade prevention.
                    if let Some(slot) = self.orders.slot_of_id(ev.order_id) {
                        let maker = *self.orders.get(slot);
                        let m = Subject {
                            order_id: ev.order_id,
                            client_order_id: maker.client_order_id,
                            account: maker.account,
                            side: maker.side,
                            session: maker.session,
                        };
                        out.push(Outbound::Report {
                            session: m.session,
                            account: m.account,
                            report: report(&m, symbol_id, ts, ev, Liquidity::None),
                        });
                        self.touched.push((ix, maker.side, ev.price));
                        self.orders.remove(slot);
                    }
                }
                _ => out.push(to_subject(ev, Liquidity::None)),
            }
        }
    }

    /// One absolute BookUpdate per level touched by the command.
    fn flush_levels(&mut self, out: &mut Vec<Outbound>) {
        if self.touched.is_empty() {
            return;
        }
        self.touched.sort_unstable();
        self.touched.dedup();
        for &(ix, side, price) in &self.touched {
            let ins = &self.instruments[ix as usize];
            out.push(Outbound::BookUpdate(BookUpdate {
                symbol_id: ins.symbol_id,
                side,
                price,
                qty: ins.book.level(side, price).map_or(0, |l| l.qty),
            }));
        }
        self.touched.clear();
    }

    // ---- inspection ----

    /// The book of an instrument.
    pub fn book(&self, symbol_id: u32) -> Option<&Book> {
        self.instrument_index(symbol_id)
            .map(|ix| &self.instruments[ix as usize].book)
    }

    /// Configured instrument ids, ascending.
    pub fn symbol_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.instruments.iter().map(|i| i.symbol_id)
    }

    /// The account a session is logged on as.
    pub fn session_account(&self, session: u64) -> Option<u32> {
        self.sessions.get(&session).map(|s| s.account)
    }

    /// Open sessions as (session, account), by session id. At start-up after recovery the
    /// server should journal and apply a `Disconnect` for each (their connections died with
    /// the previous process), so cancel-on-disconnect applies deterministically.
    pub fn sessions(&self) -> Vec<(u64, u32)> {
        let mut v: Vec<(u64, u32)> = self
            .sessions
            .iter()
            .map(|(&id, s)| (id, s.account))
            .collect();
        v.sort_unstable();
        v
    }

    /// One above the largest session id any command has carried (1 for a new venue): a
    /// gateway restarted on this state numbers new connections from here, so report stream
    /// ids never repeat.
    pub fn next_session_id(&self) -> u64 {
        self.max_session_id.saturating_add(1)
    }

    /// The number the next report of `account`'s stream will carry (`None` for an account
    /// that is not configured).
    pub fn next_report_seq(&self, account: u32) -> Option<u64> {
        let i = self
            .accounts
            .binary_search_by_key(&account, |a| a.id)
            .ok()?;
        Some(self.accounts[i].reports + 1)
    }

    /// Configured accounts, ascending.
    pub fn account_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.accounts.iter().map(|a| a.id)
    }

    /// Sequenced reports produced so far, all accounts together.
    pub fn reports_total(&self) -> u64 {
        self.accounts.iter().map(|a| a.reports).sum()
    }

    /// Market-data messages (BookUpdate and Trade) produced so far.
    pub fn md_messages(&self) -> u64 {
        self.md_messages
    }

    /// The venue id the next accepted order will get.
    pub fn next_order_id(&self) -> u64 {
        self.next_order_id
    }

    /// Number of live (resting) orders.
    pub fn live_orders(&self) -> usize {
        self.orders.len()
    }

    /// The fingerprint of the config this venue runs ([`Config::engine_fingerprint`]).
    pub fn config_fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    fn live_order(&self, info: &OrderInfo) -> Option<LiveOrder> {
        let ins = &self.instruments[info.instr as usize];
        let r = ins.book.order(info.order_id)?;
        Some(LiveOrder {
            order_id: info.order_id,
            client_order_id: info.client_order_id,
            account: info.account,
            symbol_id: ins.symbol_id,
            side: info.side,
            price: r.price,
            leaves: r.leaves,
            session: info.session,
            stp: info.stp,
            post_only: info.post_only,
        })
    }

    /// The account's live order with this client order id.
    pub fn order(&self, account: u32, client_order_id: u64) -> Option<LiveOrder> {
        let slot = self.orders.slot_of_client(account, client_order_id)?;
        self.live_order(self.orders.get(slot))
    }

    /// The account's live orders, by venue order id.
    pub fn account_orders(&self, account: u32) -> Vec<LiveOrder> {
        let Ok(a) = self.accounts.binary_search_by_key(&account, |a| a.id) else {
            return Vec::new();
        };
        let mut v = Vec::new();
        let mut slot = self.orders.list(a as u32).head;
        while slot != NIL {
            let info = self.orders.get(slot);
            if let Some(o) = self.live_order(info) {
                v.push(o);
            }
            slot = info.next;
        }
        v
    }

    /// Checks every invariant of the module doc; `Err` names the first broken one. O(orders),
    /// allocates; for tests and tools.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.orders.check()?;
        let mut resting = 0usize;
        for (ix, ins) in self.instruments.iter().enumerate() {
            ins.book.check_invariants()?;
            for side in [Side::Buy, Side::Sell] {
                for r in ins.book.orders(side) {
                    resting += 1;
                    let slot = self.orders.slot_of_id(r.order_id).ok_or_else(|| {
                        format!("resting order {} not in the order map", r.order_id)
                    })?;
                    let info = self.orders.get(slot);
                    if info.instr as usize != ix || info.side != side || info.account != r.account {
                        return Err(format!("order {} disagrees with its book", r.order_id));
                    }
                    if self.accounts.get(info.acct as usize).map(|a| a.id) != Some(info.account) {
                        return Err(format!("order {} on a wrong account list", r.order_id));
                    }
                    if r.order_id >= self.next_order_id {
                        return Err(format!("order {} not below next_order_id", r.order_id));
                    }
                    if r.price < ins.lo || r.price > ins.hi || r.leaves > ins.max_qty {
                        return Err(format!(
                            "order {} outside its instrument's limits",
                            r.order_id
                        ));
                    }
                }
            }
        }
        // The store's own check proved each live record is in both indexes and on its
        // account's list exactly once; equal counts make the books and the store agree.
        if resting != self.orders.len() {
            return Err(format!(
                "{resting} resting orders, {} in the order store",
                self.orders.len()
            ));
        }
        for (id, s) in &self.sessions {
            match self.accounts.get(s.acct as usize) {
                Some(a) if a.id == s.account => {}
                _ => return Err(format!("session {id} bound to a bad account")),
            }
            if s.tokens > self.bucket_cap {
                return Err(format!("session {id} bucket above its cap"));
            }
        }
        if self.sessions.len() > self.max_sessions {
            return Err("more sessions than max_sessions".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_as_small_as_the_module_doc_says() {
        // The memory figures of the module doc assume these sizes.
        assert_eq!(size_of::<OrderInfo>(), 48);
        assert!(size_of::<Command>() <= 72, "a command fits a ring slot");
    }
}
