//! Proof of the venue state machine (`crates/engine/src/venue`).
//!
//! * Scenario tests with exact expected outputs: two accounts trading with each other
//!   (reports on both sides, in order, with each side's client ids and liquidity flag, the
//!   trade and the absolute book updates), every venue reject reason (the books untouched
//!   after each), cross-account cancel/modify/mass-cancel attempts, mass cancel per symbol and
//!   for all, cancel-on-disconnect (on and off, per session), self-trade prevention reports,
//!   modify, and the token-bucket rate limit driven by command timestamps.
//! * Property tests on random command streams from five sessions of three accounts (bad keys,
//!   logouts, disconnects, unknown symbols, out-of-band prices, colliding and foreign client
//!   ids): after every command the venue's invariants hold, the market-data updates rebuild
//!   exactly the venue's aggregated books (and each one is a real change), and the reports
//!   each account received rebuild exactly its live orders (so no account ever hears of
//!   another's orders); replaying the same commands into a fresh venue gives the same outputs
//!   and state hash; a snapshot at a random point, restored, gives the same snapshot bytes
//!   and then the same outputs and final hash as the straight run; every command survives
//!   encode/decode.
//! * Robustness: decoding random bytes and restoring damaged snapshots never panic (and a
//!   decoded command re-encodes to the same bytes).
//! * Allocation: a counting global allocator (counting only on the measuring thread) shows
//!   that `apply` allocates nothing over 20,000 mixed commands after warm-up.

#![allow(
    unsafe_code,
    reason = "a #[global_allocator] has to implement the unsafe GlobalAlloc trait"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use tradecore_book::{EventKind, Matching, OrderType, Reason, Side, Stp, TimeInForce};
use tradecore_engine::codec::{
    ApiKey, BookUpdate, Cancel, ExecutionReport, Liquidity, Logon, LogonAck, LogonReject,
    MassCancel, Message, Modify, NewOrder, RetransmitRequest, Trade,
};
use tradecore_engine::config::{api_key_sha256, Config};
use tradecore_engine::venue::{
    limit_order, Command, Input, Outbound, Venue, VenueError, MAX_COMMAND_LEN,
};

// ---------------------------------------------------------------- counting allocator

struct CountingAlloc;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note_allocation() {
    // `try_with`: never panic during thread teardown; const-initialised thread locals
    // without destructors do not allocate, so this cannot recurse.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// SAFETY: every method forwards its arguments unchanged to `System`, which implements
// `GlobalAlloc` correctly; the only addition is a thread-local counter update, which neither
// allocates nor touches the memory handed out.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract (`ptr` came from this
        // allocator, which is `System`, with `layout`).
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through this allocator) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Allocations made by this thread while running `f`.
fn allocations_in(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(|n| n.get())
}

// ---------------------------------------------------------------- config and helpers

/// Instrument 1: band 50..=150, max qty 1000, 64 slots. Instrument 2: band 1..=1000, 3
/// slots (for BOOK_FULL). Accounts 1..=3 with keys `key-1`..`key-3`. Rate 1000/s, burst 10.
fn config_with(session_extra: &str) -> Config {
    config_rate(1000, 10, session_extra)
}

/// [`config_with`] with another rate limit.
fn config_rate(rate: u64, burst: u64, session_extra: &str) -> Config {
    let accounts: String = (1..=3)
        .map(|a| {
            format!(
                "[[account]]\naccount = {a}\napi_key_sha256 = \"{}\"\n\n",
                tradecore_engine::config::to_hex(&api_key_sha256(&format!("key-{a}")))
            )
        })
        .collect();
    let text = format!(
        r#"
[session]
rate_limit_per_sec = {rate}
rate_limit_burst = {burst}
max_sessions = 4
{session_extra}

[journal]
dir = "unused"

[[instrument]]
symbol_id = 1
symbol = "AAA"
tick_size = "0.01"
lot_size = "1"
price_band = {{ lo_ticks = 50, hi_ticks = 150 }}
max_order_qty = 1000
book_capacity = 64

[[instrument]]
symbol_id = 2
symbol = "BBB"
tick_size = "0.5"
lot_size = "0.1"
price_band = {{ lo_ticks = 1, hi_ticks = 1000 }}
max_order_qty = 1000
book_capacity = 3

{accounts}"#
    );
    Config::from_toml_str(&text).unwrap()
}

fn config() -> Config {
    config_with("")
}

fn logon_input(account: u32, key: &str) -> Input {
    Input::Logon {
        account,
        key_sha256: api_key_sha256(key),
        heartbeat_ms: 500,
    }
}

/// A venue driven one command at a time, 1 ms apart unless a timestamp is given, with the
/// invariants checked after every command.
///
/// The harness also checks the report streams: every sequenced report carries the next
/// number of its account's stream and every `LogonAck` the number the account's next report
/// will carry; it then zeroes those numbers, so the scenarios compare the rest exactly.
struct Harness {
    v: Venue,
    ts: u64,
    next_seq: BTreeMap<u32, u64>,
}

const T0: u64 = 1_700_000_000_000_000_000;
const MS: u64 = 1_000_000;

impl Harness {
    fn new(cfg: &Config) -> Self {
        Harness {
            v: Venue::new(cfg).unwrap(),
            ts: T0,
            next_seq: BTreeMap::new(),
        }
    }

    fn at(&mut self, session: u64, ts: u64, input: Input) -> Vec<Outbound> {
        self.ts = self.ts.max(ts);
        let account = self.v.session_account(session).unwrap_or(0);
        let cmd = Command {
            session,
            account,
            ts_ns: ts,
            input,
        };
        let mut out = Vec::new();
        self.v.apply(&cmd, &mut out);
        self.v.check_invariants().unwrap();
        for o in &mut out {
            match o {
                Outbound::Report {
                    account, report, ..
                } => {
                    let next = self.next_seq.entry(*account).or_insert(1);
                    assert_eq!(report.seq, *next, "report stream of account {account}");
                    *next += 1;
                    report.seq = 0;
                }
                Outbound::LogonAck { account, ack, .. } => {
                    let next = *self.next_seq.get(account).unwrap_or(&1);
                    assert_eq!(ack.next_seq, next, "LogonAck.next_seq of account {account}");
                    ack.next_seq = 0;
                }
                Outbound::Unsequenced { report, .. } => assert_eq!(report.seq, 0),
                _ => {}
            }
        }
        for a in self.v.account_ids() {
            let next = *self.next_seq.get(&a).unwrap_or(&1);
            assert_eq!(self.v.next_report_seq(a), Some(next));
        }
        out
    }

    fn send(&mut self, session: u64, input: Input) -> Vec<Outbound> {
        let ts = self.ts + MS;
        self.at(session, ts, input)
    }

    fn logon(&mut self, session: u64, account: u32) {
        let out = self.send(session, logon_input(account, &format!("key-{account}")));
        assert!(
            matches!(out[..], [Outbound::LogonAck { .. }]),
            "logon {session}: {out:?}"
        );
    }

    fn order(&mut self, session: u64, o: NewOrder) -> Vec<Outbound> {
        self.send(session, Input::NewOrder(o))
    }

    /// The resting orders of every book in priority order: what rejects must leave alone.
    fn books(&self) -> Vec<(u32, Vec<tradecore_book::RestingOrder>)> {
        self.v
            .symbol_ids()
            .map(|s| {
                let b = self.v.book(s).unwrap();
                let mut o = b.orders(Side::Buy);
                o.extend(b.orders(Side::Sell));
                (s, o)
            })
            .collect()
    }
}

fn cancel(client_order_id: u64, symbol_id: u32) -> Input {
    Input::Cancel(Cancel {
        client_order_id,
        symbol_id,
    })
}

fn modify(client_order_id: u64, symbol_id: u32, new_price: i64, new_qty: u64) -> Input {
    Input::Modify(Modify {
        client_order_id,
        symbol_id,
        new_price,
        new_qty,
    })
}

fn mass(symbol_id: u32) -> Input {
    Input::MassCancel(MassCancel { symbol_id })
}

#[allow(clippy::too_many_arguments, reason = "one argument per report field")]
fn er(
    coid: u64,
    order_id: u64,
    symbol_id: u32,
    kind: EventKind,
    reason: Reason,
    side: Side,
    liquidity: Liquidity,
    price: i64,
    qty: u64,
    leaves: u64,
    ts: u64,
) -> ExecutionReport {
    ExecutionReport {
        seq: 0,
        client_order_id: coid,
        order_id,
        symbol_id,
        kind,
        reason,
        side,
        liquidity,
        price,
        qty,
        leaves,
        timestamp_ns: ts,
    }
}

fn rep(session: u64, account: u32, report: ExecutionReport) -> Outbound {
    Outbound::Report {
        session,
        account,
        report,
    }
}

fn bu(symbol_id: u32, side: Side, price: i64, qty: u64) -> Outbound {
    Outbound::BookUpdate(BookUpdate {
        symbol_id,
        side,
        price,
        qty,
    })
}

/// Asserts `out` is exactly one reject report for `session` with `reason`; returns it.
fn expect_reject(out: &[Outbound], session: u64, reason: Reason) -> ExecutionReport {
    match out {
        [Outbound::Report {
            session: s, report, ..
        }] if *s == session && report.kind == EventKind::Rejected && report.reason == reason => {
            assert_eq!(report.leaves, 0);
            assert_eq!(report.liquidity, Liquidity::None);
            *report
        }
        _ => panic!(
            "expected one {} reject for {session}, got {out:?}",
            reason.name()
        ),
    }
}

/// The (session, account, report) of a sequenced report; panics on anything else.
fn report_in(o: &Outbound) -> (u64, u32, ExecutionReport) {
    match *o {
        Outbound::Report {
            session,
            account,
            report,
        } => (session, account, report),
        ref other => panic!("expected a report, got {other:?}"),
    }
}

// ---------------------------------------------------------------- scenarios

#[test]
fn two_accounts_trade_with_each_other() {
    let mut h = Harness::new(&config());
    let out = h.at(10, T0, logon_input(1, "key-1"));
    assert_eq!(
        out,
        [Outbound::LogonAck {
            session: 10,
            account: 1,
            ack: LogonAck {
                next_seq: 0,
                session_id: 10,
                heartbeat_ms: 1000
            }
        }]
    );
    h.at(20, T0, logon_input(2, "key-2"));
    let (b, s) = (Side::Buy, Side::Sell);
    let (acc, fill, can) = (EventKind::Accepted, EventKind::Fill, EventKind::Cancelled);
    let none = Reason::None;

    let t = T0 + MS;
    let out = h.at(10, t, Input::NewOrder(limit_order(1, 1, b, 100, 10)));
    assert_eq!(
        out,
        [
            rep(
                10,
                1,
                er(1, 1, 1, acc, none, b, Liquidity::None, 100, 10, 10, t)
            ),
            bu(1, b, 100, 10),
        ]
    );

    let t = T0 + 2 * MS;
    let out = h.at(20, t, Input::NewOrder(limit_order(7, 1, s, 100, 4)));
    assert_eq!(
        out,
        [
            rep(
                20,
                2,
                er(7, 2, 1, acc, none, s, Liquidity::None, 100, 4, 4, t)
            ),
            rep(
                20,
                2,
                er(7, 2, 1, fill, none, s, Liquidity::Taker, 100, 4, 0, t)
            ),
            rep(
                10,
                1,
                er(1, 1, 1, fill, none, b, Liquidity::Maker, 100, 4, 6, t)
            ),
            Outbound::Trade(Trade {
                symbol_id: 1,
                aggressor: s,
                price: 100,
                qty: 4,
                timestamp_ns: t
            }),
            bu(1, b, 100, 6),
        ]
    );

    // A sell below the bid trades at the bid (the maker's price) and rests the remainder.
    let t = T0 + 3 * MS;
    let out = h.at(20, t, Input::NewOrder(limit_order(8, 1, s, 99, 10)));
    assert_eq!(
        out,
        [
            rep(
                20,
                2,
                er(8, 3, 1, acc, none, s, Liquidity::None, 99, 10, 10, t)
            ),
            rep(
                20,
                2,
                er(8, 3, 1, fill, none, s, Liquidity::Taker, 100, 6, 4, t)
            ),
            rep(
                10,
                1,
                er(1, 1, 1, fill, none, b, Liquidity::Maker, 100, 6, 0, t)
            ),
            Outbound::Trade(Trade {
                symbol_id: 1,
                aggressor: s,
                price: 100,
                qty: 6,
                timestamp_ns: t
            }),
            bu(1, b, 100, 0),
            bu(1, s, 99, 4),
        ]
    );
    assert_eq!(h.v.order(1, 1), None, "a filled order leaves the maps");
    assert_eq!(
        h.v.order(2, 8).map(|o| (o.order_id, o.leaves)),
        Some((3, 4))
    );

    // A market buy takes the rest; its remainder is cancelled.
    let t = T0 + 4 * MS;
    let mut mkt = limit_order(2, 1, b, 0, 10);
    mkt.order_type = OrderType::Market;
    mkt.tif = TimeInForce::Ioc;
    let out = h.at(10, t, Input::NewOrder(mkt));
    assert_eq!(
        out,
        [
            rep(
                10,
                1,
                er(2, 4, 1, acc, none, b, Liquidity::None, 0, 10, 10, t)
            ),
            rep(
                10,
                1,
                er(2, 4, 1, fill, none, b, Liquidity::Taker, 99, 4, 6, t)
            ),
            rep(
                20,
                2,
                er(8, 3, 1, fill, none, s, Liquidity::Maker, 99, 4, 0, t)
            ),
            Outbound::Trade(Trade {
                symbol_id: 1,
                aggressor: b,
                price: 99,
                qty: 4,
                timestamp_ns: t
            }),
            rep(
                10,
                1,
                er(
                    2,
                    4,
                    1,
                    can,
                    Reason::IocRemainder,
                    b,
                    Liquidity::None,
                    0,
                    6,
                    0,
                    t
                )
            ),
            bu(1, s, 99, 0),
        ]
    );
    assert_eq!(h.v.live_orders(), 0);
    assert!(h.v.account_orders(1).is_empty() && h.v.account_orders(2).is_empty());
    assert_eq!(h.v.next_order_id(), 5);
}

#[test]
fn every_reject_reason() {
    let mut h = Harness::new(&config());
    let mut seen = BTreeSet::new();

    // Before logon: every message gets an unsequenced NOT_LOGGED_IN, echoing what it can.
    for input in [
        Input::NewOrder(limit_order(5, 1, Side::Sell, 100, 3)),
        cancel(5, 1),
        modify(5, 1, 100, 1),
        mass(0),
        Input::Heartbeat,
        Input::Logout,
        Input::RetransmitRequest(RetransmitRequest {
            channel: 0,
            from_seq: 1,
            count: 1,
        }),
    ] {
        let out = h.send(30, input);
        match out[..] {
            [Outbound::Unsequenced {
                session: 30,
                report,
            }] => {
                assert_eq!(
                    (report.kind, report.reason),
                    (EventKind::Rejected, Reason::NotLoggedIn)
                );
                assert_eq!(report.order_id, 0);
                if let Input::NewOrder(_) = input {
                    assert_eq!(
                        (
                            report.client_order_id,
                            report.symbol_id,
                            report.side,
                            report.price,
                            report.qty
                        ),
                        (5, 1, Side::Sell, 100, 3)
                    );
                }
                seen.insert(Reason::NotLoggedIn as u8);
            }
            _ => panic!("{input:?} before logon: {out:?}"),
        }
    }
    // Bad credentials, whichever part is wrong; the session stays logged out.
    for (account, key) in [(1, "key-2"), (99, "key-1"), (0, ""), (1, "")] {
        let out = h.send(30, logon_input(account, key));
        assert_eq!(
            out,
            [Outbound::LogonReject {
                session: 30,
                reject: LogonReject {
                    next_seq: 0,
                    reason: Reason::NotLoggedIn
                }
            }]
        );
        assert_eq!(h.v.session_account(30), None);
    }

    h.logon(10, 1);
    // A second logon on an open session is refused; the session stays as it was.
    let out = h.send(10, logon_input(2, "key-2"));
    assert!(matches!(
        out[..],
        [Outbound::LogonReject {
            session: 10,
            reject: LogonReject {
                reason: Reason::Malformed,
                ..
            }
        }]
    ));
    seen.insert(Reason::Malformed as u8);
    assert_eq!(h.v.session_account(10), Some(1));

    let mut po = limit_order(3, 1, Side::Buy, 98, 5);
    po.post_only = true;
    h.order(10, limit_order(1, 1, Side::Buy, 100, 5)); // id 1
    h.order(10, po); // id 2
    h.order(10, limit_order(4, 1, Side::Sell, 110, 1)); // id 3
    let before = h.books();

    let mut ioc_post = limit_order(40, 1, Side::Buy, 90, 1);
    ioc_post.post_only = true;
    ioc_post.tif = TimeInForce::Ioc;
    let mut cross_post = limit_order(41, 1, Side::Sell, 100, 1);
    cross_post.post_only = true;
    let cases: Vec<(Input, Reason)> = vec![
        (
            Input::NewOrder(limit_order(0, 1, Side::Buy, 100, 1)),
            Reason::InvalidOrder,
        ),
        (
            Input::NewOrder(limit_order(9, 7, Side::Buy, 100, 1)),
            Reason::UnknownSymbol,
        ),
        (cancel(1, 7), Reason::UnknownSymbol),
        (modify(1, 7, 100, 1), Reason::UnknownSymbol),
        (mass(7), Reason::UnknownSymbol),
        (
            Input::NewOrder(limit_order(9, 1, Side::Buy, 100, 0)),
            Reason::InvalidQty,
        ),
        (modify(1, 1, 100, 0), Reason::InvalidQty),
        (
            Input::NewOrder(limit_order(9, 1, Side::Buy, 100, 1001)),
            Reason::QtyTooLarge,
        ),
        (modify(1, 1, 100, 1001), Reason::QtyTooLarge),
        (
            Input::NewOrder(limit_order(9, 1, Side::Buy, 0, 1)),
            Reason::InvalidPrice,
        ),
        (
            Input::NewOrder(limit_order(9, 1, Side::Buy, -5, 1)),
            Reason::InvalidPrice,
        ),
        (modify(1, 1, 0, 1), Reason::InvalidPrice),
        (
            Input::NewOrder(limit_order(9, 1, Side::Buy, 49, 1)),
            Reason::PriceOutOfBand,
        ),
        (
            Input::NewOrder(limit_order(9, 1, Side::Sell, 151, 1)),
            Reason::PriceOutOfBand,
        ),
        (modify(1, 1, 151, 1), Reason::PriceOutOfBand),
        (
            Input::NewOrder(limit_order(1, 1, Side::Sell, 120, 1)),
            Reason::DuplicateOrderId,
        ),
        (cancel(77, 1), Reason::UnknownOrder),
        (modify(77, 1, 100, 1), Reason::UnknownOrder),
        (cancel(1, 2), Reason::UnknownOrder), // live, but on symbol 1
        (Input::NewOrder(ioc_post), Reason::InvalidOrder),
        (Input::NewOrder(cross_post), Reason::WouldCross),
    ];
    for (input, reason) in cases {
        let out = h.send(10, input);
        let r = expect_reject(&out, 10, reason);
        assert_eq!(
            r.order_id, 0,
            "{input:?}: the request never became an order"
        );
        assert_eq!(h.books(), before, "{input:?} changed a book");
        seen.insert(reason as u8);
    }
    // A modify the core refuses names the live order it left alone.
    let out = h.send(10, modify(3, 1, 110, 5));
    let r = expect_reject(&out, 10, Reason::WouldCross);
    assert_eq!((r.order_id, r.side, r.price, r.qty), (2, Side::Buy, 110, 5));
    assert_eq!(h.books(), before);

    // Market orders skip the price checks.
    let mut mkt = limit_order(50, 1, Side::Buy, 9999, 1);
    mkt.order_type = OrderType::Market;
    mkt.tif = TimeInForce::Ioc;
    let out = h.order(10, mkt);
    let (_, _, r) = report_in(&out[0]);
    assert_eq!((r.kind, r.price), (EventKind::Accepted, 0));

    // BOOK_FULL: instrument 2 holds three orders.
    for i in 0..3 {
        h.order(10, limit_order(60 + i, 2, Side::Buy, 10 + i as i64, 1));
    }
    let out = h.order(10, limit_order(63, 2, Side::Buy, 5, 1));
    expect_reject(&out, 10, Reason::BookFull);
    seen.insert(Reason::BookFull as u8);

    // RATE_LIMITED: eleven messages at one instant (burst 10).
    let t = h.ts + 10_000 * MS;
    for i in 0..10 {
        let out = h.at(10, t, cancel(900 + i, 1));
        expect_reject(&out, 10, Reason::UnknownOrder);
    }
    let out = h.at(10, t, Input::NewOrder(limit_order(70, 1, Side::Buy, 60, 1)));
    let r = expect_reject(&out, 10, Reason::RateLimited);
    assert_eq!((r.client_order_id, r.price, r.qty), (70, 60, 1));
    seen.insert(Reason::RateLimited as u8);

    // Too many sessions (max 4): RATE_LIMITED on the logon.
    h.logon(11, 2);
    h.logon(12, 3);
    h.logon(13, 1);
    let out = h.send(14, logon_input(2, "key-2"));
    assert!(matches!(
        out[..],
        [Outbound::LogonReject {
            session: 14,
            reject: LogonReject {
                reason: Reason::RateLimited,
                ..
            }
        }]
    ));

    let want: BTreeSet<u8> = [
        Reason::NotLoggedIn,
        Reason::Malformed,
        Reason::InvalidOrder,
        Reason::UnknownSymbol,
        Reason::InvalidQty,
        Reason::QtyTooLarge,
        Reason::InvalidPrice,
        Reason::PriceOutOfBand,
        Reason::DuplicateOrderId,
        Reason::UnknownOrder,
        Reason::WouldCross,
        Reason::BookFull,
        Reason::RateLimited,
    ]
    .iter()
    .map(|r| *r as u8)
    .collect();
    assert_eq!(seen, want);
}

#[test]
fn other_accounts_orders_are_unreachable() {
    let mut h = Harness::new(&config());
    h.logon(10, 1);
    h.logon(20, 2);
    h.order(10, limit_order(5, 1, Side::Buy, 100, 7));
    h.order(10, limit_order(6, 1, Side::Buy, 100, 3));
    h.order(10, limit_order(7, 2, Side::Sell, 500, 2));
    let before = h.books();
    let a_orders = h.v.account_orders(1);

    // Account 2 tries every client id (and every venue id) it could guess.
    for id in 0..=20u64 {
        for sym in [1, 2] {
            let out = h.send(20, cancel(id, sym));
            let r = expect_reject(&out, 20, Reason::UnknownOrder);
            assert_eq!(r.order_id, 0);
            let out = h.send(20, modify(id, sym, 101, 1));
            expect_reject(&out, 20, Reason::UnknownOrder);
        }
    }
    for sym in [0, 1, 2] {
        assert_eq!(h.send(20, mass(sym)), [], "nothing of account 2 to cancel");
    }
    assert_eq!(h.books(), before);
    assert_eq!(h.v.account_orders(1), a_orders);

    // Client ids are per account: account 2 may use 5 too, and cancelling it touches only its own.
    let out = h.order(20, limit_order(5, 1, Side::Buy, 90, 1));
    let (to, account, r) = report_in(&out[0]);
    assert_eq!(
        (to, account, r.kind, r.client_order_id),
        (20, 2, EventKind::Accepted, 5)
    );
    let out = h.send(20, cancel(5, 1));
    let (to, account, r) = report_in(&out[0]);
    assert_eq!(
        (to, account, r.kind, r.order_id),
        (20, 2, EventKind::Cancelled, 4)
    );
    assert_eq!(h.books(), before);
    assert_eq!(h.v.account_orders(1), a_orders);
}

#[test]
fn mass_cancel_per_symbol_then_all() {
    let mut h = Harness::new(&config());
    h.logon(10, 1);
    h.logon(20, 2);
    h.order(10, limit_order(1, 1, Side::Buy, 100, 1)); // id 1
    h.order(10, limit_order(2, 2, Side::Buy, 10, 1)); // id 2
    h.order(20, limit_order(1, 1, Side::Buy, 100, 4)); // id 3 (account 2)
    h.order(10, limit_order(3, 1, Side::Sell, 120, 2)); // id 4
    h.order(10, limit_order(4, 1, Side::Buy, 99, 5)); // id 5

    let t = h.ts + MS;
    let out = h.at(10, t, mass(1));
    let c = |coid, id, side, price, qty| {
        rep(
            10,
            1,
            er(
                coid,
                id,
                1,
                EventKind::Cancelled,
                Reason::MassCancel,
                side,
                Liquidity::None,
                price,
                qty,
                0,
                t,
            ),
        )
    };
    assert_eq!(
        out,
        [
            c(1, 1, Side::Buy, 100, 1),
            c(3, 4, Side::Sell, 120, 2),
            c(4, 5, Side::Buy, 99, 5),
            bu(1, Side::Buy, 99, 0),
            bu(1, Side::Buy, 100, 4),
            bu(1, Side::Sell, 120, 0),
        ]
    );
    assert_eq!(
        h.v.account_orders(1)
            .iter()
            .map(|o| o.client_order_id)
            .collect::<Vec<_>>(),
        [2]
    );
    let out = h.send(10, mass(0));
    assert_eq!(out.len(), 2);
    let (_, _, r) = report_in(&out[0]);
    assert_eq!((r.client_order_id, r.reason), (2, Reason::MassCancel));
    assert_eq!(out[1], bu(2, Side::Buy, 10, 0));
    assert!(h.v.account_orders(1).is_empty());
    assert_eq!(
        h.v.account_orders(2).len(),
        1,
        "the other account keeps its order"
    );
}

#[test]
fn cancel_on_disconnect_cancels_what_the_session_entered() {
    let mut h = Harness::new(&config());
    h.logon(10, 1);
    h.logon(11, 1); // a second session of the same account
    h.logon(20, 2);
    h.order(10, limit_order(1, 1, Side::Buy, 100, 2));
    h.order(11, limit_order(2, 1, Side::Buy, 101, 3));
    h.order(10, limit_order(3, 2, Side::Sell, 50, 1));

    let t = h.ts + MS;
    let out = h.at(10, t, Input::Disconnect);
    let c = |coid, id, sym, side, price, qty| {
        rep(
            10,
            1,
            er(
                coid,
                id,
                sym,
                EventKind::Cancelled,
                Reason::Disconnect,
                side,
                Liquidity::None,
                price,
                qty,
                0,
                t,
            ),
        )
    };
    assert_eq!(
        out,
        [
            Outbound::SessionClosed {
                session: 10,
                account: 1
            },
            c(1, 1, 1, Side::Buy, 100, 2),
            c(3, 3, 2, Side::Sell, 50, 1),
            bu(1, Side::Buy, 100, 0),
            bu(2, Side::Sell, 50, 0),
        ]
    );
    assert_eq!(h.v.session_account(10), None);
    assert_eq!(h.v.account_orders(1).len(), 1, "session 11's order stays");
    // The closed session is logged out; a second Disconnect is a no-op.
    let out = h.send(10, Input::NewOrder(limit_order(9, 1, Side::Buy, 100, 1)));
    assert!(matches!(
        out[..],
        [Outbound::Unsequenced {
            session: 10,
            report: ExecutionReport {
                reason: Reason::NotLoggedIn,
                ..
            }
        }]
    ));
    assert_eq!(h.send(10, Input::Disconnect), []);

    // Logout: SessionClosed first (the publisher flushes and closes), then the cancels.
    let out = h.send(11, Input::Logout);
    assert!(matches!(
        out[0],
        Outbound::SessionClosed {
            session: 11,
            account: 1
        }
    ));
    let (to, _, r) = report_in(&out[1]);
    assert_eq!(
        (to, r.reason, r.client_order_id),
        (11, Reason::Disconnect, 2)
    );
    assert_eq!(h.v.live_orders(), 0);
    assert_eq!(h.v.sessions(), [(20, 2)]);
    assert_eq!(h.v.next_session_id(), 21);

    // Without cancel-on-disconnect the orders stay, and fills still reach the account.
    let mut h = Harness::new(&config_with("cancel_on_disconnect = false"));
    h.logon(10, 1);
    h.logon(20, 2);
    h.order(10, limit_order(1, 1, Side::Buy, 100, 2));
    assert_eq!(
        h.send(10, Input::Disconnect),
        [Outbound::SessionClosed {
            session: 10,
            account: 1
        }]
    );
    let out = h.order(20, limit_order(1, 1, Side::Sell, 100, 2));
    let maker = out
        .iter()
        .map(report_in)
        .find(|(_, _, r)| r.liquidity == Liquidity::Maker);
    let (to, account, r) = maker.unwrap();
    assert_eq!((to, account, r.leaves), (10, 1, 0));
}

#[test]
fn self_trade_prevention_and_modify_reports() {
    let mut h = Harness::new(&config());
    h.logon(10, 1);
    h.logon(11, 1);
    h.logon(20, 2);
    // Self-trade allowed with STP NONE: both reports go to the account, each to its session.
    h.order(11, limit_order(1, 1, Side::Sell, 100, 5)); // id 1, entered by session 11
    let mut o = limit_order(2, 1, Side::Buy, 100, 2);
    o.stp = Stp::None;
    let out = h.order(10, o);
    let liq: Vec<(u64, u64, Liquidity)> = out
        .iter()
        .filter_map(|m| match m {
            Outbound::Report {
                session, report, ..
            } if report.kind == EventKind::Fill => {
                Some((*session, report.client_order_id, report.liquidity))
            }
            _ => None,
        })
        .collect();
    assert_eq!(liq, [(10, 2, Liquidity::Taker), (11, 1, Liquidity::Maker)]);

    // CANCEL_OLDEST: the resting order is cancelled (report to its owner's session), the
    // taker rests.
    let t = h.ts + MS;
    let mut o = limit_order(3, 1, Side::Buy, 100, 1);
    o.stp = Stp::CancelOldest;
    let out = h.at(10, t, Input::NewOrder(o));
    assert_eq!(
        out,
        [
            rep(
                10,
                1,
                er(
                    3,
                    3,
                    1,
                    EventKind::Accepted,
                    Reason::None,
                    Side::Buy,
                    Liquidity::None,
                    100,
                    1,
                    1,
                    t
                )
            ),
            rep(
                11,
                1,
                er(
                    1,
                    1,
                    1,
                    EventKind::Cancelled,
                    Reason::SelfTrade,
                    Side::Sell,
                    Liquidity::None,
                    100,
                    3,
                    0,
                    t
                )
            ),
            bu(1, Side::Buy, 100, 1),
            bu(1, Side::Sell, 100, 0),
        ]
    );

    // Modify: reduce in place (queue kept), reprice, no-op, and a reprice that trades.
    h.order(10, limit_order(4, 1, Side::Buy, 100, 5)); // id 4, behind id 3
    let out = h.send(10, modify(3, 1, 100, 1));
    assert!(
        matches!(out[..], [Outbound::Report { report, .. }] if report.kind == EventKind::Replaced)
    );
    assert_eq!(
        h.v.book(1)
            .unwrap()
            .orders_at(Side::Buy, 100)
            .iter()
            .map(|o| o.order_id)
            .collect::<Vec<_>>(),
        [3, 4]
    );
    let out = h.send(10, modify(4, 1, 100, 2));
    assert!(matches!(
        out[..],
        [
            Outbound::Report { .. },
            Outbound::BookUpdate(BookUpdate {
                price: 100,
                qty: 3,
                ..
            })
        ]
    ));
    h.order(20, limit_order(9, 1, Side::Sell, 102, 2)); // id 5
    let t = h.ts + MS;
    let out = h.at(10, t, modify(4, 1, 102, 6));
    assert_eq!(
        out,
        [
            rep(
                10,
                1,
                er(
                    4,
                    4,
                    1,
                    EventKind::Replaced,
                    Reason::None,
                    Side::Buy,
                    Liquidity::None,
                    102,
                    6,
                    6,
                    t
                )
            ),
            rep(
                10,
                1,
                er(
                    4,
                    4,
                    1,
                    EventKind::Fill,
                    Reason::None,
                    Side::Buy,
                    Liquidity::Taker,
                    102,
                    2,
                    4,
                    t
                )
            ),
            rep(
                20,
                2,
                er(
                    9,
                    5,
                    1,
                    EventKind::Fill,
                    Reason::None,
                    Side::Sell,
                    Liquidity::Maker,
                    102,
                    2,
                    0,
                    t
                )
            ),
            Outbound::Trade(Trade {
                symbol_id: 1,
                aggressor: Side::Buy,
                price: 102,
                qty: 2,
                timestamp_ns: t
            }),
            bu(1, Side::Buy, 100, 1),
            bu(1, Side::Buy, 102, 4),
            bu(1, Side::Sell, 102, 0),
        ]
    );

    // Another session of the same account may act on the order: the answer goes to the
    // session that asked, later fills to the session that entered it.
    let out = h.send(11, modify(4, 1, 102, 3));
    let (to, account, r) = report_in(&out[0]);
    assert_eq!((to, account, r.kind), (11, 1, EventKind::Replaced));
    let out = h.order(20, limit_order(10, 1, Side::Sell, 102, 1));
    let maker = out
        .iter()
        .map(report_in)
        .find(|(_, _, r)| r.liquidity == Liquidity::Maker);
    let (to, account, r) = maker.unwrap();
    assert_eq!((to, account, r.client_order_id), (10, 1, 4));
    let out = h.send(11, cancel(4, 1));
    let (to, account, r) = report_in(&out[0]);
    assert_eq!(
        (to, account, r.kind, r.reason),
        (11, 1, EventKind::Cancelled, Reason::User)
    );
}

#[test]
fn rate_limit_follows_command_time() {
    let mut h = Harness::new(&config()); // 1000 per second, burst 10
    h.at(10, T0, logon_input(1, "key-1"));
    h.at(11, T0, logon_input(1, "key-1"));
    let probe = |h: &mut Harness, session, ts| {
        let out = h.at(session, ts, cancel(1, 1));
        expect_reject(&out, session, Reason::UnknownOrder);
    };
    let limited = |h: &mut Harness, session, ts| {
        let out = h.at(session, ts, cancel(1, 1));
        expect_reject(&out, session, Reason::RateLimited);
    };
    for _ in 0..10 {
        probe(&mut h, 10, T0);
    }
    limited(&mut h, 10, T0);
    // Buckets are per session.
    probe(&mut h, 11, T0);
    // Heartbeats and retransmit requests take no token.
    assert_eq!(h.at(10, T0, Input::Heartbeat), []);
    // One token per millisecond: 0.999999 of a token is not enough, one is.
    limited(&mut h, 10, T0 + MS - 1);
    probe(&mut h, 10, T0 + MS);
    limited(&mut h, 10, T0 + MS);
    // The bucket survives a snapshot: restored, the session is still out of tokens, and
    // gets its next one at the same instant.
    let saved = Venue::restore(&config(), &h.v.snapshot()).unwrap();
    let mut h2 = Harness {
        v: saved,
        ts: h.ts,
        next_seq: h.next_seq.clone(),
    };
    limited(&mut h2, 10, T0 + 2 * MS - 1);
    probe(&mut h2, 10, T0 + 2 * MS);
    // A timestamp from the past refills nothing.
    limited(&mut h, 10, T0);
    // A long pause refills up to the burst only.
    let later = T0 + 60_000 * MS;
    for _ in 0..10 {
        probe(&mut h, 10, later);
    }
    limited(&mut h, 10, later);
    // The same commands with the same timestamps give the same answers.
    let replay: Vec<Command> = (0..30)
        .map(|i| Command {
            session: 10,
            account: 1,
            ts_ns: T0 + i * MS / 3,
            input: cancel(1, 1),
        })
        .collect();
    let run = || {
        let mut v = Venue::new(&config()).unwrap();
        let mut out = Vec::new();
        v.apply(
            &Command {
                session: 10,
                account: 0,
                ts_ns: T0,
                input: logon_input(1, "key-1"),
            },
            &mut out,
        );
        for c in &replay {
            v.apply(c, &mut out);
        }
        out.iter()
            .filter_map(|o| match o {
                Outbound::Report { report, .. } => Some(report.reason),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let a = run();
    assert_eq!(a, run());
    assert_eq!(
        a.iter().filter(|r| **r == Reason::RateLimited).count(),
        30 - 10 - 9
    );
}

#[test]
fn logon_from_a_wire_message_hashes_the_key() {
    let key = ApiKey::new("key-2").unwrap();
    let msg = Message::Logon(Logon {
        account: 2,
        api_key: key,
        heartbeat_ms: 250,
    });
    let cmd = Command::from_message(5, 0, T0, &msg).unwrap();
    assert_eq!(
        cmd.input,
        Input::Logon {
            account: 2,
            key_sha256: api_key_sha256("key-2"),
            heartbeat_ms: 250
        }
    );
    let mut buf = [0u8; MAX_COMMAND_LEN];
    let n = cmd.encode_into(&mut buf).unwrap();
    assert!(
        !buf[..n].windows(5).any(|w| w == b"key-2"),
        "the journal never holds the plaintext key"
    );
    let mut v = Venue::new(&config()).unwrap();
    let mut out = Vec::new();
    v.apply(&cmd, &mut out);
    assert!(matches!(
        out[..],
        [Outbound::LogonAck {
            session: 5,
            account: 2,
            ..
        }]
    ));
    let heartbeat = Message::from(tradecore_engine::codec::VenueHeartbeat { next_seq: 1 });
    assert!(matches!(
        Command::from_message(5, 2, T0, &heartbeat),
        Err(VenueError::NotClientMessage { msg_type: 0x43 })
    ));
}

#[test]
fn example_config_loads_and_its_demo_keys_log_on() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/venue.example.toml"
    );
    let mut cfg = Config::load(path).unwrap();
    assert!(cfg.listen.order_entry.ip().is_loopback());
    assert_eq!(cfg.feed.ttl, 0);
    assert!(cfg.journal.dir.ends_with("target/venue-journal"));
    for i in &mut cfg.instruments {
        i.book_capacity = 100; // keep the test small
    }
    let mut v = Venue::new(&cfg).unwrap();
    let mut out = Vec::new();
    for (s, a) in [(1, 1), (2, 2)] {
        let input = logon_input(a, &format!("demo-key-account-{a}"));
        v.apply(
            &Command {
                session: s,
                account: 0,
                ts_ns: T0,
                input,
            },
            &mut out,
        );
    }
    assert!(
        matches!(
            out[..],
            [Outbound::LogonAck { .. }, Outbound::LogonAck { .. }]
        ),
        "{out:?}"
    );
}

#[test]
fn restore_refuses_another_engine_config_and_damage() {
    let mut h = Harness::new(&config());
    h.logon(10, 1);
    h.order(10, limit_order(1, 1, Side::Buy, 100, 5));
    let snap = h.v.snapshot();
    // Same engine rules, other ports: fine.
    let mut same = config();
    same.listen.metrics.set_port(9999);
    assert_eq!(
        Venue::restore(&same, &snap).unwrap().state_hash(),
        h.v.state_hash()
    );
    // Another band: refused.
    let mut other = config();
    other.instruments[0].price_band.hi_ticks = 149;
    assert!(matches!(
        Venue::restore(&other, &snap),
        Err(VenueError::SnapshotConfigMismatch { .. })
    ));
    assert!(matches!(
        Venue::restore(&config(), &snap[..snap.len() - 1]),
        Err(VenueError::SnapshotCorrupt { .. })
    ));
    let mut extra = snap.clone();
    extra.push(0);
    assert!(matches!(
        Venue::restore(&config(), &extra),
        Err(VenueError::SnapshotCorrupt {
            what: "trailing bytes",
            ..
        })
    ));
}

#[test]
fn restore_reproduces_every_queue() {
    let mut h = Harness::new(&config());
    h.logon(10, 1);
    h.logon(20, 2);
    // Several orders per level on both sides, from both accounts, one reduced in place
    // (keeps its place) and one repriced (goes to the back).
    for (i, (side, price)) in [
        (Side::Buy, 100),
        (Side::Buy, 100),
        (Side::Buy, 99),
        (Side::Buy, 100),
        (Side::Sell, 105),
        (Side::Sell, 105),
        (Side::Sell, 106),
        (Side::Sell, 105),
    ]
    .into_iter()
    .enumerate()
    {
        let session = if i % 2 == 0 { 10 } else { 20 };
        h.order(
            session,
            limit_order(i as u64 + 1, 1, side, price, 2 + i as u64),
        );
    }
    h.send(10, modify(1, 1, 100, 1));
    h.send(10, modify(5, 1, 106, 7));
    let snap = h.v.snapshot();
    let r = Venue::restore(&config(), &snap).unwrap();
    for (side, price) in [
        (Side::Buy, 100),
        (Side::Buy, 99),
        (Side::Sell, 105),
        (Side::Sell, 106),
    ] {
        let queue = |v: &Venue| v.book(1).unwrap().orders_at(side, price);
        assert!(!queue(&h.v).is_empty());
        assert_eq!(queue(&r), queue(&h.v), "{side:?} {price}");
    }
    assert_eq!(
        h.v.book(1)
            .unwrap()
            .orders_at(Side::Buy, 100)
            .iter()
            .map(|o| o.order_id)
            .collect::<Vec<_>>(),
        [1, 2, 4]
    );
    assert_eq!(
        h.v.book(1)
            .unwrap()
            .orders_at(Side::Sell, 106)
            .iter()
            .map(|o| o.order_id)
            .collect::<Vec<_>>(),
        [7, 5]
    );
    assert_eq!(r.snapshot(), snap);
    assert_eq!(r.account_orders(1), h.v.account_orders(1));
    assert_eq!(r.account_orders(2), h.v.account_orders(2));
}

// ---------------------------------------------------------------- random streams

/// Sessions 1..=5 trade for these accounts.
const SESSION_ACCOUNT: [u32; 5] = [1, 2, 3, 1, 2];

#[derive(Clone, Debug)]
enum Act {
    Logon { bad_key: bool },
    Logout,
    Disconnect,
    Heartbeat,
    Retransmit,
    New(NewOrder),
    Cancel(Cancel),
    Modify(Modify),
    Mass(u32),
}

#[derive(Clone, Debug)]
struct Op {
    session: u64,
    /// Time step; `back` replays an older timestamp.
    dt: u64,
    back: bool,
    act: Act,
}

fn side_of(b: bool) -> Side {
    if b {
        Side::Buy
    } else {
        Side::Sell
    }
}

fn act_strategy() -> impl Strategy<Value = Act> {
    let sym = prop_oneof![8 => Just(1u32), 3 => Just(2u32), 1 => Just(7u32)];
    let coid = prop_oneof![1 => Just(0u64), 60 => 1u64..=20];
    let qty = prop_oneof![1 => Just(0u64), 40 => 1u64..=30, 1 => Just(1001u64)];
    // Mostly near the middle (bids a little lower than asks, below), so levels hold
    // queues and the overlap trades; sometimes outside the band.
    let price = prop_oneof![12 => 96i64..=104, 1 => 40i64..=160];
    let new = (
        sym.clone(),
        any::<bool>(),
        0u8..12,
        0u8..6,
        0u8..10,
        0u8..4,
        price.clone(),
        qty.clone(),
        coid.clone(),
    )
        .prop_map(|(symbol_id, buy, ty, tif, post, stp, price, qty, coid)| {
            Act::New(NewOrder {
                client_order_id: coid,
                symbol_id,
                side: side_of(buy),
                price: if buy { price - 3 } else { price + 3 },
                order_type: if ty == 0 {
                    OrderType::Market
                } else {
                    OrderType::Limit
                },
                tif: match tif {
                    0 => TimeInForce::Ioc,
                    1 => TimeInForce::Fok,
                    _ => TimeInForce::Gtc,
                },
                post_only: post == 0,
                stp: Stp::from_u8(stp).unwrap(),
                qty,
            })
        });
    prop_oneof![
        8 => (0u8..10).prop_map(|x| Act::Logon { bad_key: x == 0 }),
        1 => Just(Act::Logout),
        1 => Just(Act::Disconnect),
        1 => Just(Act::Heartbeat),
        1 => Just(Act::Retransmit),
        100 => new,
        20 => (coid.clone(), sym.clone()).prop_map(|(client_order_id, symbol_id)| {
            Act::Cancel(Cancel { client_order_id, symbol_id })
        }),
        20 => (coid, sym.clone(), price, qty).prop_map(|(c, s, p, q)| Act::Modify(Modify {
            client_order_id: c,
            symbol_id: s,
            new_price: p,
            new_qty: q
        })),
        1 => prop_oneof![Just(0u32), sym].prop_map(Act::Mass),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    // Mostly quick succession (buckets drain), sometimes a pause (they refill).
    let dt = prop_oneof![8 => 0u64..200_000, 1 => 0u64..20 * MS];
    (1u64..=5, dt, 0u8..20, act_strategy()).prop_map(|(session, dt, b, act)| Op {
        session,
        dt,
        back: b == 0,
        act,
    })
}

fn to_commands(ops: &[Op]) -> Vec<Command> {
    let mut ts = T0;
    ops.iter()
        .map(|op| {
            ts += op.dt;
            let account = SESSION_ACCOUNT[(op.session - 1) as usize];
            let input = match op.act {
                Act::Logon { bad_key } => logon_input(
                    account,
                    if bad_key {
                        "wrong"
                    } else {
                        ["", "key-1", "key-2", "key-3"][account as usize]
                    },
                ),
                Act::Logout => Input::Logout,
                Act::Disconnect => Input::Disconnect,
                Act::Heartbeat => Input::Heartbeat,
                Act::Retransmit => Input::RetransmitRequest(RetransmitRequest {
                    channel: 0,
                    from_seq: 1,
                    count: 5,
                }),
                Act::New(o) => Input::NewOrder(o),
                Act::Cancel(c) => Input::Cancel(c),
                Act::Modify(m) => Input::Modify(m),
                Act::Mass(s) => Input::MassCancel(MassCancel { symbol_id: s }),
            };
            Command {
                session: op.session,
                account,
                ts_ns: if op.back { ts - 5 * MS } else { ts },
                input,
            }
        })
        .collect()
}

/// Applies `cmds`, returning each command's outputs.
fn run(v: &mut Venue, cmds: &[Command]) -> Vec<Vec<Outbound>> {
    cmds.iter()
        .map(|c| {
            let mut out = Vec::new();
            v.apply(c, &mut out);
            out
        })
        .collect()
}

/// Everything an outside observer can check after each command.
#[derive(Default)]
struct Observer {
    /// Aggregated books rebuilt from BookUpdates.
    l2: BTreeMap<(u32, Side, i64), u64>,
    /// Each account's live orders rebuilt from its reports: (account, client id) -> leaves.
    live: BTreeMap<(u32, u64), u64>,
}

impl Observer {
    /// Checks the outputs of one command sent by `session`, logged on as `sender` (if any).
    fn observe(
        &mut self,
        v: &Venue,
        session: u64,
        sender: Option<u32>,
        out: &[Outbound],
    ) -> Result<(), TestCaseError> {
        let mut in_updates = false;
        let (mut traded, mut taker_filled) = (0u64, 0u64);
        for o in out {
            match *o {
                Outbound::BookUpdate(u) => {
                    in_updates = true;
                    let key = (u.symbol_id, u.side, u.price);
                    let prev = self.l2.get(&key).copied().unwrap_or(0);
                    prop_assert_ne!(prev, u.qty, "BookUpdate without a change: {:?}", u);
                    if u.qty == 0 {
                        self.l2.remove(&key);
                    } else {
                        self.l2.insert(key, u.qty);
                    }
                }
                Outbound::Trade(t) => {
                    prop_assert!(!in_updates, "trade after the book updates");
                    traded += t.qty;
                }
                Outbound::Report {
                    session: to,
                    account,
                    report: r,
                } => {
                    prop_assert!(!in_updates, "report after the book updates");
                    // Only a resting order's fill can concern an account other than the
                    // sender's (self-trade cancels are between one account's orders), and
                    // only those and self-trade cancels of resting orders may go to another
                    // session (the one that entered the resting order).
                    if r.liquidity != Liquidity::Maker {
                        prop_assert_eq!(
                            Some(account),
                            sender,
                            "report {:?} for another account",
                            r
                        );
                        if r.reason != Reason::SelfTrade {
                            prop_assert_eq!(to, session, "report {:?} to another session", r);
                        }
                    }
                    let key = (account, r.client_order_id);
                    match r.kind {
                        EventKind::Accepted => {
                            prop_assert!(r.order_id != 0);
                            prop_assert!(
                                self.live.insert(key, r.leaves).is_none(),
                                "accepted twice {:?}",
                                key
                            );
                        }
                        EventKind::Fill | EventKind::Replaced => {
                            prop_assert!(
                                self.live.contains_key(&key),
                                "{:?} of an order account {} never had",
                                r.kind,
                                account
                            );
                            if r.liquidity == Liquidity::Taker {
                                taker_filled += r.qty;
                            }
                            if r.leaves == 0 {
                                self.live.remove(&key);
                            } else {
                                self.live.insert(key, r.leaves);
                            }
                        }
                        EventKind::Cancelled => {
                            prop_assert!(
                                self.live.remove(&key).is_some(),
                                "cancel of an order account {} never had",
                                account
                            );
                        }
                        EventKind::Rejected => {}
                    }
                }
                Outbound::Unsequenced {
                    session: to,
                    report,
                } => {
                    prop_assert_eq!(report.reason, Reason::NotLoggedIn);
                    prop_assert_eq!((to, sender), (session, None));
                }
                _ => {}
            }
        }
        prop_assert_eq!(traded, taker_filled);
        v.check_invariants().map_err(TestCaseError::fail)?;
        // The market data rebuilds the venue's aggregated books exactly.
        let mut actual = BTreeMap::new();
        for s in v.symbol_ids() {
            for side in [Side::Buy, Side::Sell] {
                for l in v.book(s).unwrap().depth_side(side, usize::MAX) {
                    actual.insert((s, side, l.price), l.qty);
                }
            }
        }
        prop_assert_eq!(&actual, &self.l2);
        // Each account's reports tell it exactly its live orders.
        let mut venue_live = BTreeMap::new();
        for a in 1..=3 {
            for o in v.account_orders(a) {
                venue_live.insert((a, o.client_order_id), o.leaves);
            }
        }
        prop_assert_eq!(&venue_live, &self.live);
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_streams_are_deterministic_observable_and_restorable(
        ops in prop::collection::vec(op_strategy(), 1..400),
        cut in any::<prop::sample::Index>(),
        tight in any::<bool>(),
    ) {
        // Half the runs with a rate limit that bites often (so buckets are rarely full
        // when the snapshot is taken).
        let cfg = if tight { config_rate(300, 3, "") } else { config() };
        // Sessions 1..=4 log on first (session 5 finds the venue full until one leaves).
        let logons = (1..=4).map(|session| Op {
            session,
            dt: 0,
            back: false,
            act: Act::Logon { bad_key: false },
        });
        let ops: Vec<Op> = logons.chain(ops).collect();
        let cmds = to_commands(&ops);
        let k = cut.index(cmds.len() + 1);

        // Straight run, observed after every command, snapshot taken after command k.
        let mut a = Venue::new(&cfg).unwrap();
        let mut obs = Observer::default();
        let mut outs = Vec::new();
        let mut snap = None;
        for (i, c) in cmds.iter().enumerate() {
            if i == k {
                snap = Some((a.snapshot(), a.state_hash()));
            }
            let sender = a.session_account(c.session);
            let mut out = Vec::new();
            a.apply(c, &mut out);
            obs.observe(&a, c.session, sender, &out)?;
            outs.push(out);
        }
        let (snap, hash_at_k) = snap.unwrap_or_else(|| (a.snapshot(), a.state_hash()));

        // Replay into a fresh venue, through the journal encoding.
        let mut buf = [0u8; MAX_COMMAND_LEN];
        let decoded: Vec<Command> = cmds
            .iter()
            .map(|c| {
                let n = c.encode_into(&mut buf).unwrap();
                Command::decode(&buf[..n]).unwrap()
            })
            .collect();
        prop_assert_eq!(&decoded, &cmds);
        let mut b = Venue::new(&cfg).unwrap();
        prop_assert_eq!(&run(&mut b, &decoded), &outs);
        prop_assert_eq!(b.state_hash(), a.state_hash());

        // Restore the snapshot taken at k and replay the rest.
        let mut r = Venue::restore(&cfg, &snap).unwrap();
        r.check_invariants().map_err(TestCaseError::fail)?;
        prop_assert_eq!(r.state_hash(), hash_at_k);
        prop_assert_eq!(&r.snapshot(), &snap);
        prop_assert_eq!(&run(&mut r, &cmds[k..]), &outs[k..].to_vec());
        prop_assert_eq!(r.state_hash(), a.state_hash());
        prop_assert_eq!(r.next_session_id(), a.next_session_id());
    }

    #[test]
    fn decoding_random_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
        if let Ok(c) = Command::decode(&bytes) {
            let mut buf = [0u8; MAX_COMMAND_LEN];
            let n = c.encode_into(&mut buf).unwrap();
            prop_assert_eq!(&buf[..n], &bytes[..]);
        }
    }

    #[test]
    fn decoding_mutated_commands_never_panics(
        ops in prop::collection::vec(op_strategy(), 1..8),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut buf = [0u8; MAX_COMMAND_LEN];
        for c in to_commands(&ops) {
            let n = c.encode_into(&mut buf).unwrap();
            let mut bytes = buf[..n].to_vec();
            for (i, x) in &flips {
                let at = i.index(n);
                bytes[at] ^= *x;
            }
            let _ = Command::decode(&bytes);
            let _ = Command::decode(&bytes[..cut.index(n + 1)]);
            if let Ok(d) = Command::decode(&bytes) {
                let m = d.encode_into(&mut buf).unwrap();
                prop_assert_eq!(&buf[..m], &bytes[..]);
            }
        }
    }

    #[test]
    fn damaged_snapshots_never_panic(
        ops in prop::collection::vec(op_strategy(), 1..150),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..3),
        cut in any::<prop::sample::Index>(),
    ) {
        let cfg = config();
        let mut v = Venue::new(&cfg).unwrap();
        run(&mut v, &to_commands(&ops));
        let mut snap = v.snapshot();
        for (i, x) in &flips {
            let at = i.index(snap.len());
            snap[at] ^= *x;
        }
        let len = if flips.is_empty() { cut.index(snap.len()) } else { snap.len() };
        // Whatever restores must be a consistent venue.
        if let Ok(r) = Venue::restore(&cfg, &snap[..len]) {
            r.check_invariants().map_err(TestCaseError::fail)?;
        }
    }
}

// ---------------------------------------------------------------- long run and allocation

/// A seeded stream of `n` commands shaped like the property tests' (xorshift64*).
fn seeded_commands(seed: u64, n: usize) -> Vec<Command> {
    let mut s = seed | 1;
    let mut next = move |m: u64| {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        s.wrapping_mul(0x2545_f491_4f6c_dd1d) % m
    };
    let mut ops = Vec::with_capacity(n);
    for _ in 0..n {
        let session = 1 + next(5);
        let coid = next(30) + 1;
        let sym = [1, 1, 1, 1, 1, 1, 2, 2, 2, 7][next(10) as usize] as u32;
        // Bids mostly below asks, so queues build up while the overlap still trades.
        let buy = next(2) == 0;
        let price = if buy { 92 } else { 99 } + next(10) as i64;
        let qty = 1 + next(20);
        let act = match next(1000) {
            0..=29 => Act::Logon { bad_key: false },
            30..=32 => Act::Logout,
            33..=36 => Act::Disconnect,
            37..=46 => Act::Heartbeat,
            47..=599 => {
                let mut o = limit_order(coid, sym, side_of(buy), price, qty);
                match next(10) {
                    0 => {
                        o.order_type = OrderType::Market;
                        o.tif = TimeInForce::Ioc;
                    }
                    1 => o.tif = TimeInForce::Ioc,
                    2 => o.tif = TimeInForce::Fok,
                    3 => o.post_only = true,
                    _ => {}
                }
                o.stp = Stp::from_u8(next(4) as u8).unwrap();
                Act::New(o)
            }
            600..=779 => Act::Cancel(Cancel {
                client_order_id: coid,
                symbol_id: sym,
            }),
            780..=989 => Act::Modify(Modify {
                client_order_id: coid,
                symbol_id: sym,
                new_price: price,
                new_qty: qty,
            }),
            _ => Act::Mass([0, 1, 2][next(3) as usize]),
        };
        ops.push(Op {
            session,
            dt: next(MS / 2),
            back: false,
            act,
        });
    }
    to_commands(&ops)
}

#[test]
fn long_stream_replays_bit_exactly_from_a_mid_snapshot() {
    let cfg = config();
    let cmds = seeded_commands(0x5eed, 100_000);
    let mut a = Venue::new(&cfg).unwrap();
    let mut out_a = Vec::new();
    let mid = cmds.len() / 2;
    let mut deepest = 0;
    for (i, c) in cmds[..mid].iter().enumerate() {
        a.apply(c, &mut out_a);
        if i % 5_000 == 0 {
            // Every restore reproduces the snapshot it came from, queues included.
            let snap = a.snapshot();
            let r = Venue::restore(&cfg, &snap).unwrap();
            assert_eq!(r.snapshot(), snap, "after command {i}");
            let queue = |side| a.book(1).unwrap().depth_side(side, 100);
            let q = queue(Side::Buy)
                .iter()
                .chain(&queue(Side::Sell))
                .map(|l| l.count)
                .max();
            deepest = deepest.max(q.unwrap_or(0));
        }
    }
    assert!(deepest >= 4, "the snapshots saw queues (deepest {deepest})");
    eprintln!("deepest queue at a snapshot: {deepest}");
    let snap = a.snapshot();
    let mark = out_a.len();
    for c in &cmds[mid..] {
        a.apply(c, &mut out_a);
    }
    a.check_invariants().unwrap();
    let mut r = Venue::restore(&cfg, &snap).unwrap();
    let mut out_r = Vec::new();
    for c in &cmds[mid..] {
        r.apply(c, &mut out_r);
    }
    assert_eq!(out_r, out_a[mark..]);
    assert_eq!(r.state_hash(), a.state_hash());
    let mut b = Venue::new(&cfg).unwrap();
    let mut out_b = Vec::new();
    for c in &cmds {
        b.apply(c, &mut out_b);
    }
    assert_eq!(out_b, out_a);
    assert_eq!(b.state_hash_hex(), a.state_hash_hex());
    // The stream exercised what it should.
    let trades = out_a
        .iter()
        .filter(|o| matches!(o, Outbound::Trade(_)))
        .count();
    assert!(trades > 1000, "{trades} trades");
    let with_reason = |reason| {
        out_a
            .iter()
            .filter(|o| matches!(o, Outbound::Report { report, .. } if report.reason == reason))
            .count()
    };
    for reason in [
        Reason::RateLimited,
        Reason::Disconnect,
        Reason::MassCancel,
        Reason::SelfTrade,
    ] {
        assert!(with_reason(reason) > 0, "no {} report", reason.name());
    }
}

#[test]
fn apply_allocates_nothing_after_warm_up() {
    let cfg = config();
    let mut v = Venue::new(&cfg).unwrap();
    let mut out: Vec<Outbound> = Vec::with_capacity(4096);
    for c in seeded_commands(1, 20_000) {
        out.clear();
        v.apply(&c, &mut out);
    }
    let cmds = seeded_commands(2, 20_000);
    let mut produced = 0usize;
    let n = allocations_in(|| {
        for c in &cmds {
            out.clear();
            v.apply(c, &mut out);
            produced += out.len();
        }
    });
    assert_eq!(n, 0, "apply allocated {n} times");
    assert!(
        produced > 20_000,
        "the measured stream did work ({produced} outputs)"
    );
    // The counter does see allocations on this thread.
    let stranger = Command {
        session: 999,
        account: 0,
        ts_ns: T0,
        input: Input::Heartbeat,
    };
    let n = allocations_in(|| {
        let mut fresh = Vec::new();
        v.apply(&stranger, &mut fresh);
        std::hint::black_box(&fresh);
    });
    assert!(n > 0);
    v.check_invariants().unwrap();
}

/// Sanity for the observer itself: it must notice a report routed to the wrong account.
#[test]
fn observer_catches_a_misrouted_report() {
    let mut h = Harness::new(&config());
    h.logon(10, 1);
    let out = h.order(10, limit_order(1, 1, Side::Buy, 100, 5));
    let mut obs = Observer::default();
    obs.observe(&h.v, 10, Some(1), &out).unwrap();
    let t = h.ts;
    let wrong = [rep(
        10,
        2,
        er(
            1,
            1,
            1,
            EventKind::Fill,
            Reason::None,
            Side::Buy,
            Liquidity::Maker,
            100,
            1,
            4,
            t,
        ),
    )];
    assert!(obs.observe(&h.v, 20, Some(2), &wrong).is_err());
    // ... and a request answered on another account's order.
    let mut obs = Observer::default();
    obs.observe(&h.v, 10, Some(1), &out).unwrap();
    let foreign = [rep(
        20,
        1,
        er(
            1,
            1,
            1,
            EventKind::Cancelled,
            Reason::User,
            Side::Buy,
            Liquidity::None,
            100,
            5,
            0,
            t,
        ),
    )];
    assert!(obs.observe(&h.v, 20, Some(2), &foreign).is_err());
}
