//! Table-driven scenarios: every matching rule of the crate docs and of issue 2, written once
//! as data and run against both implementations of [`Matching`] (the fast `Book` and the naive
//! `ReferenceBook`), the way exchange-core runs one abstract suite on two order books.
//!
//! Each [`Scenario`] seeds a book with resting orders (each must rest untouched), then runs
//! steps, each an operation with the exact list of events it must yield (kind, order_id,
//! other_id, price, qty, leaves, other_leaves, reason), and finally compares both L3 sides with
//! the expected (order_id, account, price, leaves) lists in priority order. After every step
//! the book's views must agree with one another (`common::check_state`), the independent
//! ledger of `common` must accept the events and match the book, and for `Book`,
//! `check_invariants` must pass. All failures of a table are collected and reported together,
//! naming the scenario, the implementation and the step.
//!
//! Cost: tiny books; the whole file runs in milliseconds.

mod common;

use common::{apply, check_state, fmt_events, state, Ledger, Op};
use tradecore_book::{
    Book, Event, EventKind, LevelView, Matching, OrderRequest, Reason, ReferenceBook, RestingOrder,
    Side, Stp, TimeInForce,
};

// ---- request, operation and event constructors (short, so the tables read as data) ----

fn buy(id: u64, account: u32, price: i64, qty: u64) -> OrderRequest {
    OrderRequest::limit(id, account, Side::Buy, price, qty)
}

fn sell(id: u64, account: u32, price: i64, qty: u64) -> OrderRequest {
    OrderRequest::limit(id, account, Side::Sell, price, qty)
}

fn mkt(id: u64, account: u32, side: Side, qty: u64) -> OrderRequest {
    OrderRequest::market(id, account, side, qty)
}

fn sub(r: OrderRequest) -> Op {
    Op::Submit(r)
}

fn cancel(id: u64) -> Op {
    Op::Cancel(id)
}

fn modify(id: u64, price: i64, qty: u64) -> Op {
    Op::Modify { id, price, qty }
}

fn ev(kind: EventKind, reason: Reason, id: u64, price: i64, qty: u64, leaves: u64) -> Event {
    Event {
        price,
        qty,
        leaves,
        ..Event::new(kind, reason, id)
    }
}

fn accepted(id: u64, price: i64, qty: u64) -> Event {
    ev(EventKind::Accepted, Reason::None, id, price, qty, qty)
}

fn fill(taker: u64, maker: u64, price: i64, qty: u64, leaves: u64, other_leaves: u64) -> Event {
    Event {
        other_id: maker,
        other_leaves,
        ..ev(EventKind::Fill, Reason::None, taker, price, qty, leaves)
    }
}

fn cancelled(id: u64, price: i64, qty: u64, reason: Reason) -> Event {
    ev(EventKind::Cancelled, reason, id, price, qty, 0)
}

fn rejected(id: u64, price: i64, qty: u64, reason: Reason) -> Event {
    ev(EventKind::Rejected, reason, id, price, qty, 0)
}

fn replaced(id: u64, price: i64, qty: u64) -> Event {
    ev(EventKind::Replaced, Reason::None, id, price, qty, qty)
}

/// The largest order quantity of a book with 4 slots (crate docs: `u64::MAX / capacity`).
const MAXQ4: u64 = u64::MAX / 4;

/// (order_id, account, price, leaves) of a resting order.
type Row = (u64, u32, i64, u64);

/// One rule, as data.
struct Scenario {
    name: &'static str,
    /// Book capacity (orders that may rest).
    capacity: usize,
    /// Orders placed first; each must yield exactly its ACCEPTED and rest untouched.
    resting: Vec<OrderRequest>,
    /// Operations and the exact events each must yield.
    steps: Vec<(Op, Vec<Event>)>,
    /// Bids after the last step, best first, FIFO within a price.
    bids: Vec<Row>,
    /// Asks after the last step, best first, FIFO within a price.
    asks: Vec<Row>,
}

impl Scenario {
    fn new(name: &'static str) -> Self {
        Scenario {
            name,
            capacity: 1000,
            resting: Vec::new(),
            steps: Vec::new(),
            bids: Vec::new(),
            asks: Vec::new(),
        }
    }
    fn capacity(mut self, c: usize) -> Self {
        self.capacity = c;
        self
    }
    fn rest(mut self, orders: impl IntoIterator<Item = OrderRequest>) -> Self {
        self.resting.extend(orders);
        self
    }
    fn step(mut self, op: Op, events: impl IntoIterator<Item = Event>) -> Self {
        self.steps.push((op, events.into_iter().collect()));
        self
    }
    fn bids(mut self, rows: impl IntoIterator<Item = Row>) -> Self {
        self.bids = rows.into_iter().collect();
        self
    }
    fn asks(mut self, rows: impl IntoIterator<Item = Row>) -> Self {
        self.asks = rows.into_iter().collect();
        self
    }
}

fn rows(orders: &[RestingOrder]) -> Vec<Row> {
    orders
        .iter()
        .map(|o| (o.order_id, o.account, o.price, o.leaves))
        .collect()
}

/// Run one scenario on one implementation; `extra` is an implementation-specific check run
/// after every operation.
fn run_on<M: Matching>(
    sc: &Scenario,
    m: &mut M,
    extra: impl Fn(&M) -> Result<(), String>,
) -> Result<(), String> {
    let mut ledger = Ledger::new(sc.capacity);
    let mut out = Vec::new();
    let all = sc
        .resting
        .iter()
        .map(|r| (sub(*r), vec![accepted(r.order_id, r.price, r.qty)]))
        .chain(sc.steps.iter().cloned());
    for (i, (op, want)) in all.enumerate() {
        let setup = i < sc.resting.len();
        let label = if setup {
            format!("resting order #{i}")
        } else {
            format!("step {}", i - sc.resting.len())
        };
        let (bb, ba) = (m.best_bid().map(|b| b.0), m.best_ask().map(|a| a.0));
        out.clear();
        apply(m, &op, &mut out);
        if out != want {
            return Err(format!(
                "{label}: {op:?}\n  expected:\n{}  got:\n{}",
                fmt_events(&want),
                fmt_events(&out)
            ));
        }
        let st = state(m);
        check_state(&st).map_err(|e| format!("{label}: {e}"))?;
        ledger
            .apply(&op, &out, bb, ba)
            .map_err(|e| format!("{label}: ledger: {e}"))?;
        ledger
            .check_against(&st)
            .map_err(|e| format!("{label}: ledger vs book: {e}"))?;
        extra(m).map_err(|e| format!("{label}: {e}"))?;
        if setup && st.len != i + 1 {
            return Err(format!("{label} did not rest"));
        }
    }
    let (bids, asks) = (rows(&m.orders(Side::Buy)), rows(&m.orders(Side::Sell)));
    if bids != sc.bids || asks != sc.asks {
        return Err(format!(
            "final book\n  expected bids {:?}\n  got      bids {bids:?}\n  expected asks {:?}\n  got      asks {asks:?}",
            sc.bids, sc.asks
        ));
    }
    Ok(())
}

/// Run every scenario of a table on both implementations; panic with every failure.
fn run_table(table: Vec<Scenario>) {
    let mut failures = Vec::new();
    for sc in &table {
        if let Err(e) = run_on(sc, &mut Book::with_capacity(sc.capacity), |b| {
            b.check_invariants()
        }) {
            failures.push(format!("[Book] {}: {e}", sc.name));
        }
        if let Err(e) = run_on(sc, &mut ReferenceBook::new(sc.capacity), |_| Ok(())) {
            failures.push(format!("[ReferenceBook] {}: {e}", sc.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenario runs failed:\n\n{}",
        failures.len(),
        2 * table.len(),
        failures.join("\n\n")
    );
}

use EventKind as K;
use Reason as R;
use Side::{Buy as B, Sell as S};

#[test]
fn empty_book() {
    run_table(vec![
        Scenario::new("buy limit rests on an empty book")
            .step(sub(buy(1, 1, 100, 10)), [accepted(1, 100, 10)])
            .bids([(1, 1, 100, 10)]),
        Scenario::new("sell limit rests on an empty book")
            .step(sub(sell(1, 1, 100, 10)), [accepted(1, 100, 10)])
            .asks([(1, 1, 100, 10)]),
        Scenario::new("market buy on an empty book: price 0, all cancelled as IOC remainder").step(
            sub(mkt(1, 1, B, 10)),
            [accepted(1, 0, 10), cancelled(1, 0, 10, R::IocRemainder)],
        ),
        Scenario::new("IOC on an empty book").step(
            sub(sell(1, 1, 100, 7).with_tif(TimeInForce::Ioc)),
            [accepted(1, 100, 7), cancelled(1, 100, 7, R::IocRemainder)],
        ),
        Scenario::new("FOK on an empty book").step(
            sub(buy(1, 1, 100, 7).with_tif(TimeInForce::Fok)),
            [accepted(1, 100, 7), cancelled(1, 100, 7, R::FokUnfilled)],
        ),
        Scenario::new("cancel on an empty book")
            .step(cancel(1), [rejected(1, 0, 0, R::UnknownOrder)]),
        Scenario::new("modify on an empty book")
            .step(modify(1, 100, 5), [rejected(1, 100, 5, R::UnknownOrder)]),
        Scenario::new("post-only on an empty book rests")
            .step(sub(buy(1, 1, 100, 5).post_only()), [accepted(1, 100, 5)])
            .bids([(1, 1, 100, 5)]),
    ]);
}

#[test]
fn resting_and_price_priority() {
    run_table(vec![
        Scenario::new("non-crossing orders rest on both sides, best price first")
            .step(sub(buy(1, 1, 99, 5)), [accepted(1, 99, 5)])
            .step(sub(buy(2, 2, 100, 6)), [accepted(2, 100, 6)])
            .step(sub(buy(3, 3, 98, 7)), [accepted(3, 98, 7)])
            .step(sub(sell(4, 1, 102, 8)), [accepted(4, 102, 8)])
            .step(sub(sell(5, 2, 101, 9)), [accepted(5, 101, 9)])
            .step(sub(sell(6, 3, 103, 1)), [accepted(6, 103, 1)])
            .bids([(2, 2, 100, 6), (1, 1, 99, 5), (3, 3, 98, 7)])
            .asks([(5, 2, 101, 9), (4, 1, 102, 8), (6, 3, 103, 1)]),
        Scenario::new("an order one tick away from the touch does not trade")
            .rest([sell(1, 1, 101, 5)])
            .step(sub(buy(2, 2, 100, 5)), [accepted(2, 100, 5)])
            .bids([(2, 2, 100, 5)])
            .asks([(1, 1, 101, 5)]),
    ]);
}

#[test]
fn partial_fills_across_levels() {
    let asks = [
        sell(1, 1, 101, 5),
        sell(2, 2, 101, 3),
        sell(3, 1, 102, 4),
        sell(4, 2, 103, 10),
    ];
    let bids = [
        buy(1, 1, 99, 5),
        buy(2, 2, 99, 3),
        buy(3, 1, 98, 4),
        buy(4, 2, 97, 10),
    ];
    run_table(vec![
        Scenario::new("buy sweeps three levels and part of a fourth")
            .rest(asks)
            .step(
                sub(buy(9, 3, 104, 15)),
                [
                    accepted(9, 104, 15),
                    fill(9, 1, 101, 5, 10, 0),
                    fill(9, 2, 101, 3, 7, 0),
                    fill(9, 3, 102, 4, 3, 0),
                    fill(9, 4, 103, 3, 0, 7),
                ],
            )
            .asks([(4, 2, 103, 7)]),
        Scenario::new("buy sweeps up to its limit and rests the remainder at its price")
            .rest(asks)
            .step(
                sub(buy(9, 3, 102, 20)),
                [
                    accepted(9, 102, 20),
                    fill(9, 1, 101, 5, 15, 0),
                    fill(9, 2, 101, 3, 12, 0),
                    fill(9, 3, 102, 4, 8, 0),
                ],
            )
            .bids([(9, 3, 102, 8)])
            .asks([(4, 2, 103, 10)]),
        Scenario::new("sell sweeps bids from the highest price down")
            .rest(bids)
            .step(
                sub(sell(9, 3, 97, 13)),
                [
                    accepted(9, 97, 13),
                    fill(9, 1, 99, 5, 8, 0),
                    fill(9, 2, 99, 3, 5, 0),
                    fill(9, 3, 98, 4, 1, 0),
                    fill(9, 4, 97, 1, 0, 9),
                ],
            )
            .bids([(4, 2, 97, 9)]),
        Scenario::new("sell larger than the whole side empties it and rests the rest")
            .rest(bids)
            .step(
                sub(sell(9, 3, 90, 30)),
                [
                    accepted(9, 90, 30),
                    fill(9, 1, 99, 5, 25, 0),
                    fill(9, 2, 99, 3, 22, 0),
                    fill(9, 3, 98, 4, 18, 0),
                    fill(9, 4, 97, 10, 8, 0),
                ],
            )
            .asks([(9, 3, 90, 8)]),
        Scenario::new("exact fill of a whole level leaves no empty level behind")
            .rest(asks)
            .step(
                sub(buy(9, 3, 101, 8)),
                [
                    accepted(9, 101, 8),
                    fill(9, 1, 101, 5, 3, 0),
                    fill(9, 2, 101, 3, 0, 0),
                ],
            )
            .asks([(3, 1, 102, 4), (4, 2, 103, 10)]),
    ]);
}

#[test]
fn fifo_within_a_level_and_trade_at_maker_price() {
    run_table(vec![
        Scenario::new("makers at one price fill in arrival order; a partial maker keeps its place")
            .rest([sell(1, 1, 101, 2), sell(2, 2, 101, 2), sell(3, 1, 101, 2)])
            .step(
                sub(buy(9, 3, 101, 3)),
                [
                    accepted(9, 101, 3),
                    fill(9, 1, 101, 2, 1, 0),
                    fill(9, 2, 101, 1, 0, 1),
                ],
            )
            .step(sub(sell(4, 1, 101, 5)), [accepted(4, 101, 5)])
            .step(
                sub(buy(10, 3, 101, 2)),
                [
                    accepted(10, 101, 2),
                    fill(10, 2, 101, 1, 1, 0),
                    fill(10, 3, 101, 1, 0, 1),
                ],
            )
            .asks([(3, 1, 101, 1), (4, 1, 101, 5)]),
        Scenario::new("a buy priced through the ask trades at the ask")
            .rest([sell(1, 1, 100, 5)])
            .step(
                sub(buy(2, 2, 105, 5)),
                [accepted(2, 105, 5), fill(2, 1, 100, 5, 0, 0)],
            ),
        Scenario::new("a sell priced through the bid trades at the bid")
            .rest([buy(1, 1, 100, 5)])
            .step(
                sub(sell(2, 2, 90, 3)),
                [accepted(2, 90, 3), fill(2, 1, 100, 3, 0, 2)],
            )
            .bids([(1, 1, 100, 2)]),
    ]);
}

#[test]
fn market_and_ioc_orders() {
    let asks = [sell(1, 1, 101, 3), sell(2, 2, 102, 4)];
    run_table(vec![
        Scenario::new("market buy sweeps everything and cancels the remainder at price 0")
            .rest(asks)
            .step(
                sub(mkt(9, 3, B, 10)),
                [
                    accepted(9, 0, 10),
                    fill(9, 1, 101, 3, 7, 0),
                    fill(9, 2, 102, 4, 3, 0),
                    cancelled(9, 0, 3, R::IocRemainder),
                ],
            ),
        Scenario::new("market sell filled completely: no cancel")
            .rest([buy(1, 1, 99, 3), buy(2, 2, 50, 4)])
            .step(
                sub(mkt(9, 3, S, 5)),
                [
                    accepted(9, 0, 5),
                    fill(9, 1, 99, 3, 2, 0),
                    fill(9, 2, 50, 2, 0, 2),
                ],
            )
            .bids([(2, 2, 50, 2)]),
        Scenario::new("market order with a price: the price is ignored and reported as 0")
            .rest(asks)
            .step(
                sub(OrderRequest {
                    price: 1,
                    ..mkt(9, 3, B, 2)
                }),
                [accepted(9, 0, 2), fill(9, 1, 101, 2, 0, 1)],
            )
            .asks([(1, 1, 101, 1), (2, 2, 102, 4)]),
        Scenario::new("market order with time in force GTC still never rests")
            .rest(asks)
            .step(
                sub(mkt(9, 3, B, 8).with_tif(TimeInForce::Gtc)),
                [
                    accepted(9, 0, 8),
                    fill(9, 1, 101, 3, 5, 0),
                    fill(9, 2, 102, 4, 1, 0),
                    cancelled(9, 0, 1, R::IocRemainder),
                ],
            ),
        Scenario::new("IOC fills within its limit; the remainder is cancelled at its price")
            .rest(asks)
            .step(
                sub(buy(9, 3, 101, 5).with_tif(TimeInForce::Ioc)),
                [
                    accepted(9, 101, 5),
                    fill(9, 1, 101, 3, 2, 0),
                    cancelled(9, 101, 2, R::IocRemainder),
                ],
            )
            .asks([(2, 2, 102, 4)]),
        Scenario::new("IOC filled completely: no cancel")
            .rest(asks)
            .step(
                sub(sell(9, 3, 1, 1).with_tif(TimeInForce::Ioc)),
                [accepted(9, 1, 1), cancelled(9, 1, 1, R::IocRemainder)],
            )
            .step(
                sub(buy(10, 3, 102, 7).with_tif(TimeInForce::Ioc)),
                [
                    accepted(10, 102, 7),
                    fill(10, 1, 101, 3, 4, 0),
                    fill(10, 2, 102, 4, 0, 0),
                ],
            ),
        Scenario::new("IOC that does not cross is cancelled whole and never rests")
            .rest(asks)
            .step(
                sub(buy(9, 3, 100, 5).with_tif(TimeInForce::Ioc)),
                [accepted(9, 100, 5), cancelled(9, 100, 5, R::IocRemainder)],
            )
            .asks([(1, 1, 101, 3), (2, 2, 102, 4)]),
    ]);
}

#[test]
fn fill_or_kill() {
    let asks = [sell(1, 1, 101, 5), sell(2, 2, 101, 5), sell(3, 2, 102, 5)];
    let fok = |r: OrderRequest| r.with_tif(TimeInForce::Fok);
    let untouched = [(1, 1, 101, 5), (2, 2, 101, 5), (3, 2, 102, 5)];
    run_table(vec![
        Scenario::new("FOK that can fill executes completely across levels")
            .rest(asks)
            .step(
                sub(fok(buy(9, 3, 102, 12))),
                [
                    accepted(9, 102, 12),
                    fill(9, 1, 101, 5, 7, 0),
                    fill(9, 2, 101, 5, 2, 0),
                    fill(9, 3, 102, 2, 0, 3),
                ],
            )
            .asks([(3, 2, 102, 3)]),
        Scenario::new("FOK for exactly what is available fills")
            .rest(asks)
            .step(
                sub(fok(buy(9, 3, 102, 15))),
                [
                    accepted(9, 102, 15),
                    fill(9, 1, 101, 5, 10, 0),
                    fill(9, 2, 101, 5, 5, 0),
                    fill(9, 3, 102, 5, 0, 0),
                ],
            ),
        Scenario::new("FOK one lot short is cancelled whole and the book is unchanged")
            .rest(asks)
            .step(
                sub(fok(buy(9, 3, 102, 16))),
                [accepted(9, 102, 16), cancelled(9, 102, 16, R::FokUnfilled)],
            )
            .asks(untouched),
        Scenario::new("FOK whose limit leaves too little is cancelled")
            .rest(asks)
            .step(
                sub(fok(buy(9, 3, 101, 11))),
                [accepted(9, 101, 11), cancelled(9, 101, 11, R::FokUnfilled)],
            )
            .asks(untouched),
        Scenario::new("market FOK larger than the side is cancelled at price 0")
            .rest(asks)
            .step(
                sub(fok(mkt(9, 3, B, 16))),
                [accepted(9, 0, 16), cancelled(9, 0, 16, R::FokUnfilled)],
            )
            .asks(untouched),
        Scenario::new("market FOK that fits fills")
            .rest(asks)
            .step(
                sub(fok(mkt(9, 3, B, 6))),
                [
                    accepted(9, 0, 6),
                    fill(9, 1, 101, 5, 1, 0),
                    fill(9, 2, 101, 1, 0, 4),
                ],
            )
            .asks([(2, 2, 101, 4), (3, 2, 102, 5)]),
        Scenario::new(
            "FOK + CANCEL_NEWEST blocked by its own maker first: unfilled, own maker kept",
        )
        .rest(asks)
        .step(
            sub(fok(buy(9, 1, 102, 10))),
            [accepted(9, 102, 10), cancelled(9, 102, 10, R::FokUnfilled)],
        )
        .asks(untouched),
        Scenario::new("FOK + CANCEL_BOTH blocked by its own maker: unfilled, nothing cancelled")
            .rest(asks)
            .step(
                sub(fok(buy(9, 1, 102, 10).with_stp(Stp::CancelBoth))),
                [accepted(9, 102, 10), cancelled(9, 102, 10, R::FokUnfilled)],
            )
            .asks(untouched),
        Scenario::new("FOK + CANCEL_OLDEST skips its own maker when counting, then cancels it")
            .rest(asks)
            .step(
                sub(fok(buy(9, 1, 102, 10).with_stp(Stp::CancelOldest))),
                [
                    accepted(9, 102, 10),
                    cancelled(1, 101, 5, R::SelfTrade),
                    fill(9, 2, 101, 5, 5, 0),
                    fill(9, 3, 102, 5, 0, 0),
                ],
            ),
        Scenario::new("FOK + CANCEL_OLDEST cannot count its own maker's quantity")
            .rest(asks)
            .step(
                sub(fok(buy(9, 1, 102, 11).with_stp(Stp::CancelOldest))),
                [accepted(9, 102, 11), cancelled(9, 102, 11, R::FokUnfilled)],
            )
            .asks(untouched),
        Scenario::new("FOK + STP NONE counts and trades with its own maker")
            .rest(asks)
            .step(
                sub(fok(buy(9, 1, 102, 15).with_stp(Stp::None))),
                [
                    accepted(9, 102, 15),
                    fill(9, 1, 101, 5, 10, 0),
                    fill(9, 2, 101, 5, 5, 0),
                    fill(9, 3, 102, 5, 0, 0),
                ],
            ),
        Scenario::new("FOK + CANCEL_NEWEST fills when its own maker comes after enough quantity")
            .rest([sell(1, 2, 101, 5), sell(2, 1, 101, 5)])
            .step(
                sub(fok(buy(9, 1, 101, 5))),
                [accepted(9, 101, 5), fill(9, 1, 101, 5, 0, 0)],
            )
            .asks([(2, 1, 101, 5)]),
    ]);
}

#[test]
fn self_trade_prevention() {
    // Own (account 1) maker first in the queue, then another account's.
    let asks = [sell(1, 1, 101, 5), sell(2, 2, 101, 5), sell(3, 1, 102, 5)];
    let t = |stp| buy(9, 1, 101, 8).with_stp(stp);
    run_table(vec![
        Scenario::new("CANCEL_NEWEST cancels the taker whole, the maker stays")
            .rest(asks)
            .step(
                sub(t(Stp::CancelNewest)),
                [accepted(9, 101, 8), cancelled(9, 101, 8, R::SelfTrade)],
            )
            .asks([(1, 1, 101, 5), (2, 2, 101, 5), (3, 1, 102, 5)]),
        Scenario::new("CANCEL_OLDEST cancels the maker and keeps matching; the rest rests")
            .rest(asks)
            .step(
                sub(t(Stp::CancelOldest)),
                [
                    accepted(9, 101, 8),
                    cancelled(1, 101, 5, R::SelfTrade),
                    fill(9, 2, 101, 5, 3, 0),
                ],
            )
            .bids([(9, 1, 101, 3)])
            .asks([(3, 1, 102, 5)]),
        Scenario::new("CANCEL_BOTH cancels the maker, then the taker, and stops")
            .rest(asks)
            .step(
                sub(t(Stp::CancelBoth)),
                [
                    accepted(9, 101, 8),
                    cancelled(1, 101, 5, R::SelfTrade),
                    cancelled(9, 101, 8, R::SelfTrade),
                ],
            )
            .asks([(2, 2, 101, 5), (3, 1, 102, 5)]),
        Scenario::new("NONE lets the account trade with itself")
            .rest(asks)
            .step(
                sub(t(Stp::None)),
                [
                    accepted(9, 101, 8),
                    fill(9, 1, 101, 5, 3, 0),
                    fill(9, 2, 101, 3, 0, 2),
                ],
            )
            .asks([(2, 2, 101, 2), (3, 1, 102, 5)]),
        Scenario::new("CANCEL_NEWEST after partial fills cancels only the remainder")
            .rest([sell(2, 2, 101, 5), sell(1, 1, 101, 5)])
            .step(
                sub(t(Stp::CancelNewest)),
                [
                    accepted(9, 101, 8),
                    fill(9, 2, 101, 5, 3, 0),
                    cancelled(9, 101, 3, R::SelfTrade),
                ],
            )
            .asks([(1, 1, 101, 5)]),
        Scenario::new("CANCEL_OLDEST cancels several own makers across levels")
            .rest(asks)
            .step(
                sub(buy(9, 1, 102, 20).with_stp(Stp::CancelOldest)),
                [
                    accepted(9, 102, 20),
                    cancelled(1, 101, 5, R::SelfTrade),
                    fill(9, 2, 101, 5, 15, 0),
                    cancelled(3, 102, 5, R::SelfTrade),
                ],
            )
            .bids([(9, 1, 102, 15)]),
        Scenario::new("CANCEL_BOTH after partial fills cancels the maker and the remainder")
            .rest([sell(2, 2, 101, 5), sell(1, 1, 102, 5)])
            .step(
                sub(buy(9, 1, 102, 8).with_stp(Stp::CancelBoth)),
                [
                    accepted(9, 102, 8),
                    fill(9, 2, 101, 5, 3, 0),
                    cancelled(1, 102, 5, R::SelfTrade),
                    cancelled(9, 102, 3, R::SelfTrade),
                ],
            ),
        Scenario::new("the taker's mode decides, not the maker's")
            .rest([sell(1, 1, 101, 5).with_stp(Stp::None)])
            .step(
                sub(buy(9, 1, 101, 5)),
                [accepted(9, 101, 5), cancelled(9, 101, 5, R::SelfTrade)],
            )
            .step(
                sub(buy(10, 1, 101, 2).with_stp(Stp::None)),
                [accepted(10, 101, 2), fill(10, 1, 101, 2, 0, 3)],
            )
            .asks([(1, 1, 101, 3)]),
        Scenario::new("own orders beyond the limit are not touched")
            .rest([sell(1, 2, 101, 5), sell(2, 1, 102, 5)])
            .step(
                sub(buy(9, 1, 101, 8)),
                [accepted(9, 101, 8), fill(9, 1, 101, 5, 3, 0)],
            )
            .bids([(9, 1, 101, 3)])
            .asks([(2, 1, 102, 5)]),
        Scenario::new("market order cancelled by STP: SELF_TRADE at price 0")
            .rest([sell(1, 1, 101, 5)])
            .step(
                sub(mkt(9, 1, B, 4)),
                [accepted(9, 0, 4), cancelled(9, 0, 4, R::SelfTrade)],
            )
            .asks([(1, 1, 101, 5)]),
        Scenario::new("IOC cancelled by STP: reason SELF_TRADE, not IOC_REMAINDER")
            .rest([buy(1, 1, 99, 5)])
            .step(
                sub(sell(9, 1, 99, 4).with_tif(TimeInForce::Ioc)),
                [accepted(9, 99, 4), cancelled(9, 99, 4, R::SelfTrade)],
            )
            .bids([(1, 1, 99, 5)]),
        Scenario::new("CANCEL_OLDEST market sell: own bids cancelled, remainder IOC_REMAINDER")
            .rest([buy(1, 1, 99, 5), buy(2, 2, 98, 1)])
            .step(
                sub(mkt(9, 1, S, 4).with_stp(Stp::CancelOldest)),
                [
                    accepted(9, 0, 4),
                    cancelled(1, 99, 5, R::SelfTrade),
                    fill(9, 2, 98, 1, 3, 0),
                    cancelled(9, 0, 3, R::IocRemainder),
                ],
            ),
    ]);
}

#[test]
fn post_only() {
    let book = [buy(1, 1, 99, 5), sell(2, 2, 101, 5)];
    run_table(vec![
        Scenario::new("post-only inside the spread rests")
            .rest(book)
            .step(sub(buy(9, 3, 100, 4).post_only()), [accepted(9, 100, 4)])
            .step(sub(sell(10, 3, 101, 4).post_only()), [accepted(10, 101, 4)])
            .bids([(9, 3, 100, 4), (1, 1, 99, 5)])
            .asks([(2, 2, 101, 5), (10, 3, 101, 4)]),
        Scenario::new("post-only buy at the ask would cross: rejected, book unchanged")
            .rest(book)
            .step(
                sub(buy(9, 3, 101, 4).post_only()),
                [rejected(9, 101, 4, R::WouldCross)],
            )
            .bids([(1, 1, 99, 5)])
            .asks([(2, 2, 101, 5)]),
        Scenario::new("post-only sell through the bid would cross")
            .rest(book)
            .step(
                sub(sell(9, 3, 90, 4).post_only()),
                [rejected(9, 90, 4, R::WouldCross)],
            )
            .bids([(1, 1, 99, 5)])
            .asks([(2, 2, 101, 5)]),
        Scenario::new("post-only crossing only its own account's order still would cross")
            .rest(book)
            .step(
                sub(sell(9, 1, 99, 4).post_only()),
                [rejected(9, 99, 4, R::WouldCross)],
            )
            .bids([(1, 1, 99, 5)])
            .asks([(2, 2, 101, 5)]),
        Scenario::new("post-only with IOC, FOK or MARKET is an invalid order")
            .rest(book)
            .step(
                sub(buy(9, 3, 100, 4).with_tif(TimeInForce::Ioc).post_only()),
                [rejected(9, 100, 4, R::InvalidOrder)],
            )
            .step(
                sub(buy(9, 3, 100, 4).with_tif(TimeInForce::Fok).post_only()),
                [rejected(9, 100, 4, R::InvalidOrder)],
            )
            .step(
                sub(mkt(9, 3, S, 4).post_only()),
                [rejected(9, 0, 4, R::InvalidOrder)],
            )
            .step(
                sub(mkt(9, 3, S, 4).with_tif(TimeInForce::Gtc).post_only()),
                [rejected(9, 0, 4, R::InvalidOrder)],
            )
            .bids([(1, 1, 99, 5)])
            .asks([(2, 2, 101, 5)]),
    ]);
}

#[test]
fn rejections() {
    run_table(vec![
        Scenario::new("INVALID_QTY, INVALID_PRICE, INVALID_ORDER leave the book unchanged")
            .rest([buy(1, 1, 99, 5)])
            .step(sub(buy(9, 1, 100, 0)), [rejected(9, 100, 0, R::InvalidQty)])
            .step(sub(mkt(9, 1, S, 0)), [rejected(9, 0, 0, R::InvalidQty)])
            .step(sub(buy(9, 1, 0, 5)), [rejected(9, 0, 5, R::InvalidPrice)])
            .step(
                sub(sell(9, 1, -3, 5)),
                [rejected(9, -3, 5, R::InvalidPrice)],
            )
            .step(
                sub(sell(9, 1, 0, 5).with_tif(TimeInForce::Ioc)),
                [rejected(9, 0, 5, R::InvalidPrice)],
            )
            .step(
                sub(buy(0, 1, 100, 5)),
                [rejected(0, 100, 5, R::InvalidOrder)],
            )
            .step(sub(mkt(0, 1, S, 5)), [rejected(0, 0, 5, R::InvalidOrder)])
            .bids([(1, 1, 99, 5)]),
        Scenario::new("INVALID_QTY above u64::MAX / capacity; totals at the bound do not overflow")
            .capacity(4)
            .step(
                sub(sell(1, 1, 101, MAXQ4 + 1)),
                [rejected(1, 101, MAXQ4 + 1, R::InvalidQty)],
            )
            .step(
                sub(sell(1, 1, 101, u64::MAX)),
                [rejected(1, 101, u64::MAX, R::InvalidQty)],
            )
            .step(
                sub(mkt(1, 1, B, MAXQ4 + 1)),
                [rejected(1, 0, MAXQ4 + 1, R::InvalidQty)],
            )
            .step(sub(sell(1, 1, 101, MAXQ4)), [accepted(1, 101, MAXQ4)])
            .step(sub(sell(2, 2, 101, MAXQ4)), [accepted(2, 101, MAXQ4)])
            .step(sub(sell(3, 1, 101, MAXQ4)), [accepted(3, 101, MAXQ4)])
            .step(sub(sell(4, 2, 102, MAXQ4)), [accepted(4, 102, MAXQ4)])
            .step(
                modify(4, 102, MAXQ4 + 1),
                [rejected(4, 102, MAXQ4 + 1, R::InvalidQty)],
            )
            .step(
                modify(4, 0, MAXQ4 + 1),
                [rejected(4, 0, MAXQ4 + 1, R::InvalidQty)],
            )
            // One level now holds 4 x (u64::MAX / 4): checked against the L3 sum each step.
            .step(modify(4, 101, MAXQ4), [replaced(4, 101, MAXQ4)])
            .step(
                sub(buy(5, 3, 101, MAXQ4).with_tif(TimeInForce::Fok)),
                [accepted(5, 101, MAXQ4), fill(5, 1, 101, MAXQ4, 0, 0)],
            )
            .asks([(2, 2, 101, MAXQ4), (3, 1, 101, MAXQ4), (4, 2, 101, MAXQ4)]),
        Scenario::new("market orders need no price: negative price is ignored")
            .rest([buy(1, 1, 99, 5)])
            .step(
                sub(OrderRequest {
                    price: -7,
                    ..mkt(9, 2, S, 2)
                }),
                [accepted(9, 0, 2), fill(9, 1, 99, 2, 0, 3)],
            )
            .bids([(1, 1, 99, 3)]),
        Scenario::new("checks run in the documented order")
            .capacity(1)
            .rest([buy(1, 1, 99, 5)])
            // id 0 before qty 0
            .step(sub(buy(0, 1, 0, 0)), [rejected(0, 0, 0, R::InvalidOrder)])
            // qty 0 before price
            .step(sub(buy(9, 1, 0, 0)), [rejected(9, 0, 0, R::InvalidQty)])
            // price before post-only validity
            .step(
                sub(buy(9, 1, 0, 5).with_tif(TimeInForce::Ioc).post_only()),
                [rejected(9, 0, 5, R::InvalidPrice)],
            )
            // post-only validity before duplicate id
            .step(
                sub(buy(1, 1, 98, 5).with_tif(TimeInForce::Ioc).post_only()),
                [rejected(1, 98, 5, R::InvalidOrder)],
            )
            // duplicate id before book full
            .step(
                sub(buy(1, 1, 98, 5)),
                [rejected(1, 98, 5, R::DuplicateOrderId)],
            )
            // book full before would-cross
            .step(
                sub(sell(9, 2, 99, 5).post_only()),
                [rejected(9, 99, 5, R::BookFull)],
            )
            .bids([(1, 1, 99, 5)]),
        Scenario::new("DUPLICATE_ORDER_ID for any order type while the id rests")
            .rest([buy(1, 1, 99, 5), sell(2, 2, 101, 5)])
            .step(
                sub(sell(1, 2, 120, 5)),
                [rejected(1, 120, 5, R::DuplicateOrderId)],
            )
            .step(
                sub(buy(2, 3, 101, 5).with_tif(TimeInForce::Ioc)),
                [rejected(2, 101, 5, R::DuplicateOrderId)],
            )
            .step(
                sub(mkt(1, 3, S, 5)),
                [rejected(1, 0, 5, R::DuplicateOrderId)],
            )
            .bids([(1, 1, 99, 5)])
            .asks([(2, 2, 101, 5)]),
        Scenario::new("an id is free again once its order is filled or cancelled")
            .rest([buy(1, 1, 99, 5), sell(2, 2, 101, 5)])
            .step(
                sub(sell(3, 3, 99, 5)),
                [accepted(3, 99, 5), fill(3, 1, 99, 5, 0, 0)],
            )
            .step(sub(buy(1, 1, 98, 2)), [accepted(1, 98, 2)])
            .step(cancel(2), [cancelled(2, 101, 5, R::User)])
            .step(sub(sell(2, 1, 102, 3)), [accepted(2, 102, 3)])
            .step(sub(buy(3, 1, 97, 1)), [accepted(3, 97, 1)])
            .bids([(1, 1, 98, 2), (3, 1, 97, 1)])
            .asks([(2, 1, 102, 3)]),
        Scenario::new("BOOK_FULL for a GTC limit when every slot is taken")
            .capacity(2)
            .rest([buy(1, 1, 99, 5), sell(2, 2, 101, 5)])
            .step(sub(buy(3, 3, 98, 1)), [rejected(3, 98, 1, R::BookFull)])
            // Documented: a GTC limit is refused even if it would fill completely.
            .step(sub(buy(3, 3, 101, 1)), [rejected(3, 101, 1, R::BookFull)])
            // Orders that never rest are still accepted when the book is full.
            .step(
                sub(buy(4, 3, 101, 1).with_tif(TimeInForce::Ioc)),
                [accepted(4, 101, 1), fill(4, 2, 101, 1, 0, 4)],
            )
            .step(
                sub(buy(5, 3, 101, 1).with_tif(TimeInForce::Fok)),
                [accepted(5, 101, 1), fill(5, 2, 101, 1, 0, 3)],
            )
            .step(
                sub(mkt(6, 3, S, 1)),
                [accepted(6, 0, 1), fill(6, 1, 99, 1, 0, 4)],
            )
            // Modifies need no new slot.
            .step(modify(1, 98, 9), [replaced(1, 98, 9)])
            // A slot freed by a cancel can be used again.
            .step(cancel(2), [cancelled(2, 101, 3, R::User)])
            .step(sub(sell(7, 3, 100, 2)), [accepted(7, 100, 2)])
            .step(sub(sell(8, 3, 100, 2)), [rejected(8, 100, 2, R::BookFull)])
            .bids([(1, 1, 98, 9)])
            .asks([(7, 3, 100, 2)]),
        Scenario::new("BOOK_FULL with capacity 1")
            .capacity(1)
            .step(sub(sell(1, 1, 101, 5)), [accepted(1, 101, 5)])
            .step(sub(sell(2, 1, 102, 5)), [rejected(2, 102, 5, R::BookFull)])
            .step(
                sub(buy(3, 2, 101, 5).with_tif(TimeInForce::Ioc)),
                [accepted(3, 101, 5), fill(3, 1, 101, 5, 0, 0)],
            )
            .step(sub(sell(2, 1, 102, 5)), [accepted(2, 102, 5)])
            .asks([(2, 1, 102, 5)]),
        Scenario::new("UNKNOWN_ORDER for cancel and modify of ids that never or no longer rest")
            .rest([sell(1, 1, 101, 5)])
            .step(cancel(7), [rejected(7, 0, 0, R::UnknownOrder)])
            .step(cancel(0), [rejected(0, 0, 0, R::UnknownOrder)])
            .step(modify(7, 101, 2), [rejected(7, 101, 2, R::UnknownOrder)])
            .step(
                sub(buy(2, 2, 101, 5)),
                [accepted(2, 101, 5), fill(2, 1, 101, 5, 0, 0)],
            )
            .step(cancel(1), [rejected(1, 0, 0, R::UnknownOrder)])
            .step(modify(1, 101, 5), [rejected(1, 101, 5, R::UnknownOrder)])
            .step(cancel(2), [rejected(2, 0, 0, R::UnknownOrder)]),
        Scenario::new("an IOC's id was never resting: UNKNOWN_ORDER on cancel")
            .step(
                sub(buy(1, 1, 101, 5).with_tif(TimeInForce::Ioc)),
                [accepted(1, 101, 5), cancelled(1, 101, 5, R::IocRemainder)],
            )
            .step(cancel(1), [rejected(1, 0, 0, R::UnknownOrder)]),
        Scenario::new("modify validation: INVALID_QTY, then INVALID_PRICE, then UNKNOWN_ORDER")
            .rest([sell(1, 1, 101, 5)])
            .step(modify(1, 101, 0), [rejected(1, 101, 0, R::InvalidQty)])
            .step(modify(1, 0, 3), [rejected(1, 0, 3, R::InvalidPrice)])
            .step(modify(1, -1, 3), [rejected(1, -1, 3, R::InvalidPrice)])
            .step(modify(9, 0, 0), [rejected(9, 0, 0, R::InvalidQty)])
            .step(modify(9, 0, 3), [rejected(9, 0, 3, R::InvalidPrice)])
            .asks([(1, 1, 101, 5)]),
    ]);
}

#[test]
fn cancel_rules() {
    run_table(vec![
        Scenario::new("cancel reports the leaves at that moment and removes the order")
            .rest([sell(1, 1, 101, 10), sell(2, 2, 101, 3)])
            .step(
                sub(buy(9, 3, 101, 4)),
                [accepted(9, 101, 4), fill(9, 1, 101, 4, 0, 6)],
            )
            .step(cancel(1), [cancelled(1, 101, 6, R::User)])
            .step(cancel(1), [rejected(1, 0, 0, R::UnknownOrder)])
            .asks([(2, 2, 101, 3)]),
        Scenario::new("cancel from the middle and the tail of a queue keeps the others in order")
            .rest([
                buy(1, 1, 100, 1),
                buy(2, 1, 100, 2),
                buy(3, 1, 100, 3),
                buy(4, 1, 100, 4),
            ])
            .step(cancel(2), [cancelled(2, 100, 2, R::User)])
            .step(cancel(4), [cancelled(4, 100, 4, R::User)])
            .step(sub(buy(5, 1, 100, 5)), [accepted(5, 100, 5)])
            .step(cancel(1), [cancelled(1, 100, 1, R::User)])
            .bids([(3, 1, 100, 3), (5, 1, 100, 5)]),
        Scenario::new("cancelling the last order of the best level exposes the next one")
            .rest([sell(1, 1, 101, 1), sell(2, 1, 103, 2)])
            .step(cancel(1), [cancelled(1, 101, 1, R::User)])
            .step(sub(buy(9, 2, 102, 1)), [accepted(9, 102, 1)])
            .bids([(9, 2, 102, 1)])
            .asks([(2, 1, 103, 2)]),
    ]);
}

#[test]
fn modify_rules() {
    let asks = [sell(1, 1, 101, 10), sell(2, 2, 101, 10), sell(3, 1, 102, 5)];
    run_table(vec![
        Scenario::new("reduce in place keeps queue position")
            .rest(asks)
            .step(modify(1, 101, 4), [replaced(1, 101, 4)])
            .step(
                sub(buy(9, 3, 101, 5)),
                [
                    accepted(9, 101, 5),
                    fill(9, 1, 101, 4, 1, 0),
                    fill(9, 2, 101, 1, 0, 9),
                ],
            )
            .asks([(2, 2, 101, 9), (3, 1, 102, 5)]),
        Scenario::new("same price and same qty keeps queue position")
            .rest(asks)
            .step(modify(1, 101, 10), [replaced(1, 101, 10)])
            .asks([(1, 1, 101, 10), (2, 2, 101, 10), (3, 1, 102, 5)]),
        Scenario::new("qty increase loses priority: to the back of the same level")
            .rest(asks)
            .step(modify(1, 101, 11), [replaced(1, 101, 11)])
            .step(
                sub(buy(9, 3, 101, 5)),
                [accepted(9, 101, 5), fill(9, 2, 101, 5, 0, 5)],
            )
            .asks([(2, 2, 101, 5), (1, 1, 101, 11), (3, 1, 102, 5)]),
        Scenario::new("price change loses priority: to the back of the new level")
            .rest(asks)
            .step(modify(1, 102, 3), [replaced(1, 102, 3)])
            .asks([(2, 2, 101, 10), (3, 1, 102, 5), (1, 1, 102, 3)]),
        Scenario::new("price change and back again still loses priority")
            .rest(asks)
            .step(modify(1, 103, 10), [replaced(1, 103, 10)])
            .step(modify(1, 101, 10), [replaced(1, 101, 10)])
            .asks([(2, 2, 101, 10), (1, 1, 101, 10), (3, 1, 102, 5)]),
        Scenario::new("price change to a new best level that does not cross")
            .rest([buy(4, 3, 99, 1)])
            .rest(asks)
            .step(modify(2, 100, 2), [replaced(2, 100, 2)])
            .bids([(4, 3, 99, 1)])
            .asks([(2, 2, 100, 2), (1, 1, 101, 10), (3, 1, 102, 5)]),
        Scenario::new("a modify that crosses trades at the makers' prices, then rests")
            .rest([buy(1, 1, 99, 10), sell(2, 2, 101, 4), sell(3, 3, 102, 4)])
            .step(
                modify(1, 102, 10),
                [
                    replaced(1, 102, 10),
                    fill(1, 2, 101, 4, 6, 0),
                    fill(1, 3, 102, 4, 2, 0),
                ],
            )
            .bids([(1, 1, 102, 2)]),
        Scenario::new("a modify that fills completely removes the order")
            .rest([buy(1, 1, 99, 10), sell(2, 2, 101, 5)])
            .step(
                modify(1, 101, 3),
                [replaced(1, 101, 3), fill(1, 2, 101, 3, 0, 2)],
            )
            .step(cancel(1), [rejected(1, 0, 0, R::UnknownOrder)])
            .asks([(2, 2, 101, 2)]),
        Scenario::new("a crossing modify keeps the order's STP mode (CANCEL_NEWEST)")
            .rest([buy(1, 1, 99, 10), sell(2, 1, 101, 5)])
            .step(
                modify(1, 101, 10),
                [replaced(1, 101, 10), cancelled(1, 101, 10, R::SelfTrade)],
            )
            .asks([(2, 1, 101, 5)]),
        Scenario::new("a crossing modify keeps the order's STP mode (CANCEL_OLDEST)")
            .rest([
                buy(1, 1, 99, 10).with_stp(Stp::CancelOldest),
                sell(2, 1, 101, 5),
                sell(3, 2, 101, 4),
            ])
            .step(
                modify(1, 101, 10),
                [
                    replaced(1, 101, 10),
                    cancelled(2, 101, 5, R::SelfTrade),
                    fill(1, 3, 101, 4, 6, 0),
                ],
            )
            .bids([(1, 1, 101, 6)]),
        Scenario::new("a crossing modify keeps the order's STP mode (NONE)")
            .rest([buy(1, 1, 99, 10).with_stp(Stp::None), sell(2, 1, 101, 5)])
            .step(
                modify(1, 101, 10),
                [replaced(1, 101, 10), fill(1, 2, 101, 5, 5, 0)],
            )
            .bids([(1, 1, 101, 5)]),
        Scenario::new(
            "post-only modify that would cross is rejected and the order stays as it was",
        )
        .rest([
            buy(1, 1, 99, 10).post_only(),
            buy(4, 3, 99, 1),
            sell(2, 2, 101, 5),
        ])
        .step(modify(1, 101, 10), [rejected(1, 101, 10, R::WouldCross)])
        .step(modify(1, 105, 3), [rejected(1, 105, 3, R::WouldCross)])
        .step(
            sub(sell(9, 3, 99, 2)),
            [accepted(9, 99, 2), fill(9, 1, 99, 2, 0, 8)],
        )
        .bids([(1, 1, 99, 8), (4, 3, 99, 1)])
        .asks([(2, 2, 101, 5)]),
        Scenario::new("post-only modify that does not cross is replaced and keeps post-only")
            .rest([buy(1, 1, 99, 10).post_only(), sell(2, 2, 101, 5)])
            .step(modify(1, 100, 12), [replaced(1, 100, 12)])
            .step(modify(1, 101, 12), [rejected(1, 101, 12, R::WouldCross)])
            .step(modify(1, 100, 2), [replaced(1, 100, 2)])
            .bids([(1, 1, 100, 2)])
            .asks([(2, 2, 101, 5)]),
        Scenario::new("modify of a partially filled maker: new_qty is the new remaining")
            .rest([sell(1, 1, 101, 10), sell(2, 2, 101, 1)])
            .step(
                sub(buy(9, 3, 101, 6)),
                [accepted(9, 101, 6), fill(9, 1, 101, 6, 0, 4)],
            )
            // 4 left; 5 is an increase and loses priority.
            .step(modify(1, 101, 5), [replaced(1, 101, 5)])
            .asks([(2, 2, 101, 1), (1, 1, 101, 5)]),
        Scenario::new("modify of a partially filled maker to exactly its leaves keeps priority")
            .rest([sell(1, 1, 101, 10), sell(2, 2, 101, 1)])
            .step(
                sub(buy(9, 3, 101, 6)),
                [accepted(9, 101, 6), fill(9, 1, 101, 6, 0, 4)],
            )
            .step(modify(1, 101, 4), [replaced(1, 101, 4)])
            .asks([(1, 1, 101, 4), (2, 2, 101, 1)]),
        Scenario::new("a modified order moves alone: an emptied level disappears")
            .rest([sell(1, 1, 101, 10), sell(2, 2, 103, 1)])
            .step(modify(1, 102, 10), [replaced(1, 102, 10)])
            .step(sub(buy(9, 3, 101, 1)), [accepted(9, 101, 1)])
            .bids([(9, 3, 101, 1)])
            .asks([(1, 1, 102, 10), (2, 2, 103, 1)]),
    ]);
}

/// Generic query checks over one implementation.
fn queries_on<M: Matching>(m: &mut M) {
    let mut out = Vec::new();
    assert!(m.is_empty());
    assert_eq!(m.len(), 0);
    assert_eq!(m.best_bid(), None);
    assert_eq!(m.best_ask(), None);
    assert_eq!(m.depth_side(B, 10), vec![]);
    assert_eq!(m.orders(S), vec![]);
    assert_eq!(m.order(1), None);
    for r in [
        buy(1, 7, 100, 5),
        buy(2, 8, 100, 6),
        buy(3, 7, 98, 1),
        buy(4, 9, 97, 2),
        sell(5, 7, 103, 4),
        sell(6, 8, 102, 3),
        sell(7, 9, 102, 2),
    ] {
        m.submit(&r, &mut out);
    }
    assert!(out.iter().all(|e| e.kind == K::Accepted));
    assert_eq!(m.len(), 7);
    assert!(!m.is_empty());
    assert_eq!(m.best_bid(), Some((100, 11)));
    assert_eq!(m.best_ask(), Some((102, 5)));
    let lv = |price, qty, count| LevelView { price, qty, count };
    assert_eq!(
        m.depth_side(B, 10),
        vec![lv(100, 11, 2), lv(98, 1, 1), lv(97, 2, 1)]
    );
    assert_eq!(m.depth_side(B, 2), vec![lv(100, 11, 2), lv(98, 1, 1)]);
    assert_eq!(m.depth_side(B, 0), vec![]);
    assert_eq!(m.depth_side(S, 10), vec![lv(102, 5, 2), lv(103, 4, 1)]);
    let ro = |order_id, account, side, price, leaves| RestingOrder {
        order_id,
        account,
        side,
        price,
        leaves,
    };
    assert_eq!(
        m.orders(B),
        vec![
            ro(1, 7, B, 100, 5),
            ro(2, 8, B, 100, 6),
            ro(3, 7, B, 98, 1),
            ro(4, 9, B, 97, 2)
        ]
    );
    assert_eq!(
        m.orders(S),
        vec![
            ro(6, 8, S, 102, 3),
            ro(7, 9, S, 102, 2),
            ro(5, 7, S, 103, 4)
        ]
    );
    assert_eq!(m.order(6), Some(ro(6, 8, S, 102, 3)));
    assert_eq!(m.order(0), None);
    assert_eq!(m.order(99), None);
    // A partial fill shows in every view.
    out.clear();
    m.submit(&buy(8, 10, 102, 4), &mut out);
    assert_eq!(out.len(), 3, "{}", fmt_events(&out));
    assert_eq!(m.order(6), None);
    assert_eq!(m.order(7), Some(ro(7, 9, S, 102, 1)));
    assert_eq!(m.best_ask(), Some((102, 1)));
    assert_eq!(m.depth_side(S, 1), vec![lv(102, 1, 1)]);
    assert_eq!(m.len(), 6);
    // A modify shows too.
    out.clear();
    m.modify(1, 99, 2, &mut out);
    assert_eq!(m.order(1), Some(ro(1, 7, B, 99, 2)));
    assert_eq!(m.best_bid(), Some((100, 6)));
    assert_eq!(m.depth_side(B, 2), vec![lv(100, 6, 1), lv(99, 2, 1)]);
    // Emptying the book.
    for id in 1..=8 {
        m.cancel(id, &mut out);
    }
    assert!(m.is_empty());
    assert_eq!(m.best_bid(), None);
    assert_eq!(m.best_ask(), None);
    assert_eq!(m.depth_side(S, 10), vec![]);
}

#[test]
fn queries_agree_on_both_books() {
    queries_on(&mut Book::with_capacity(64));
    queries_on(&mut ReferenceBook::new(64));
}

#[test]
fn timestamp_is_carried_and_never_read() {
    let run = |ts: u64| {
        let mut b = Book::with_capacity(16);
        let mut out = Vec::new();
        for (i, r) in [sell(1, 1, 101, 5), sell(2, 2, 101, 5), buy(3, 3, 101, 7)]
            .into_iter()
            .enumerate()
        {
            let r = OrderRequest {
                timestamp: ts.wrapping_mul(i as u64 + 1),
                ..r
            };
            b.submit(&r, &mut out);
        }
        (out, b.orders(S))
    };
    assert_eq!(run(0), run(u64::MAX));
    assert_eq!(run(0), run(1_700_000_000_000_000_000));
}

#[test]
fn book_only_api() {
    let mut b = Book::with_capacity(8);
    assert_eq!(b.capacity(), 8);
    assert!(b.bytes_per_order() > 0.0);
    let mut out = Vec::new();
    for r in [sell(1, 1, 101, 5), sell(2, 2, 101, 6), sell(3, 1, 102, 7)] {
        b.submit(&r, &mut out);
    }
    let at = b.orders_at(S, 101);
    assert_eq!(
        at.iter()
            .map(|o| (o.order_id, o.leaves))
            .collect::<Vec<_>>(),
        vec![(1, 5), (2, 6)]
    );
    assert!(b.orders_at(S, 103).is_empty());
    assert!(b.orders_at(B, 101).is_empty());
    out.clear();
    b.cancel_with_reason(2, R::MassCancel, &mut out);
    assert_eq!(out, vec![cancelled(2, 101, 6, R::MassCancel)]);
    out.clear();
    b.cancel_with_reason(2, R::KillSwitch, &mut out);
    assert_eq!(out, vec![rejected(2, 0, 0, R::UnknownOrder)]);
    b.check_invariants().expect("invariants");
    assert_eq!(Book::new().capacity(), Book::DEFAULT_CAPACITY);
}
