//! Helpers shared by the book's integration tests (`scenarios.rs`, `differential.rs`,
//! `alloc.rs`).
//!
//! Owns four things:
//! * [`Op`]: one request to a book (submit, cancel, modify) and [`apply`], which drives any
//!   [`Matching`] implementation with it, so one stream or table runs on `Book` and
//!   `ReferenceBook` alike.
//! * [`State`]: everything the query API shows (both L3 sides, full depth, touch, length),
//!   with [`check_state`], which checks that those views agree with one another and that the
//!   book is not crossed.
//! * [`Ledger`]: a third, independent reading of the rules built only from the requests and
//!   the emitted events (it shares no code with either book). It re-derives every order's
//!   remaining quantity from the events and checks each event against the documented rules:
//!   validation and its order (including the `u64::MAX / capacity` quantity bound), each
//!   maker met in price-time priority, trades at the maker's price and within the taker's
//!   limit, no self-trade unless STP is NONE, STP cancels only with a cause, IOC remainders
//!   only once nothing in reach is left, FOK_UNFILLED exactly when the documented fill test
//!   fails, cancels for the full leaves. It proves quantity conservation per order and in
//!   total: `submitted (+ modify increases) = filled + cancelled + modify reductions +
//!   resting`. [`Ledger::check_against`] then compares that bookkeeping with a [`State`]
//!   (same resting orders with the same leaves, FIFO by arrival within each price).
//! * [`StreamGen`]: a seeded, allocation-free generator of realistic mixed streams (passive
//!   adds around a drifting mid, sweeps, IOC/FOK/market, cancels, both kinds of modify, the
//!   occasional invalid request) for the long differential run and the allocation test.
//!
//! Cost: `State` and `check_against` are O(resting orders); `Ledger::apply` is O(events x
//! resting orders) (the priority check scans the live orders), fine for test-sized books.
//! `StreamGen` allocates only in `new` and never afterwards.

#![allow(
    dead_code,
    reason = "each test binary includes this module and uses a different subset of it"
)]

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tradecore_book::{
    Event, EventKind, LevelView, Matching, OrderRequest, OrderType, Reason, RestingOrder, Side,
    Stp, TimeInForce,
};

/// One request to a book.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// A new order.
    Submit(OrderRequest),
    /// Cancel a resting order by id.
    Cancel(u64),
    /// Cancel/replace a resting order: new price, new remaining quantity.
    Modify {
        /// Order id.
        id: u64,
        /// New limit price.
        price: i64,
        /// New remaining quantity.
        qty: u64,
    },
}

/// Drive `m` with `op`, appending its events to `out`.
pub fn apply<M: Matching + ?Sized>(m: &mut M, op: &Op, out: &mut Vec<Event>) {
    match *op {
        Op::Submit(ref r) => m.submit(r, out),
        Op::Cancel(id) => m.cancel(id, out),
        Op::Modify { id, price, qty } => m.modify(id, price, qty, out),
    }
}

/// One event on one line, for failure messages.
pub fn fmt_event(e: &Event) -> String {
    format!(
        "{:<9} id={} other={} px={} qty={} leaves={} other_leaves={} reason={}",
        e.kind.name(),
        e.order_id,
        e.other_id,
        e.price,
        e.qty,
        e.leaves,
        e.other_leaves,
        e.reason.name()
    )
}

/// Events one per line, indented, for failure messages.
pub fn fmt_events(events: &[Event]) -> String {
    let mut s = String::new();
    for e in events {
        let _ = writeln!(s, "    {}", fmt_event(e));
    }
    if events.is_empty() {
        s.push_str("    (none)\n");
    }
    s
}

/// Everything the query API of a book shows.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// `orders(Buy)`: every bid in priority order.
    pub bids: Vec<RestingOrder>,
    /// `orders(Sell)`: every ask in priority order.
    pub asks: Vec<RestingOrder>,
    /// `depth_side(Buy, all)`.
    pub bid_levels: Vec<LevelView>,
    /// `depth_side(Sell, all)`.
    pub ask_levels: Vec<LevelView>,
    /// `best_bid()`.
    pub best_bid: Option<(i64, u64)>,
    /// `best_ask()`.
    pub best_ask: Option<(i64, u64)>,
    /// `len()`.
    pub len: usize,
}

/// Read the full visible state of a book. O(resting orders).
pub fn state<M: Matching + ?Sized>(m: &M) -> State {
    State {
        bids: m.orders(Side::Buy),
        asks: m.orders(Side::Sell),
        bid_levels: m.depth_side(Side::Buy, usize::MAX),
        ask_levels: m.depth_side(Side::Sell, usize::MAX),
        best_bid: m.best_bid(),
        best_ask: m.best_ask(),
        len: m.len(),
    }
}

/// A 64-bit digest of a state, for cheap comparison at checkpoints.
pub fn state_hash(s: &State) -> u64 {
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// Levels of one side aggregated from its L3 orders (which must be in priority order).
fn aggregate(orders: &[RestingOrder]) -> Result<Vec<LevelView>, String> {
    let mut levels: Vec<LevelView> = Vec::new();
    for o in orders {
        match levels.last_mut() {
            Some(l) if l.price == o.price => {
                l.qty = l
                    .qty
                    .checked_add(o.leaves)
                    .ok_or_else(|| format!("level {} quantity overflows a u64", o.price))?;
                l.count += 1;
            }
            _ => levels.push(LevelView {
                price: o.price,
                qty: o.leaves,
                count: 1,
            }),
        }
    }
    Ok(levels)
}

/// Check that the views of one book agree with one another: each side in priority order
/// (bids by falling price, asks by rising price), right side and leaves > 0 on every order,
/// depth = aggregation of the L3 orders, touch = first level, `len` = number of orders, and
/// the book not crossed.
pub fn check_state(s: &State) -> Result<(), String> {
    for (side, orders, levels, best) in [
        (Side::Buy, &s.bids, &s.bid_levels, s.best_bid),
        (Side::Sell, &s.asks, &s.ask_levels, s.best_ask),
    ] {
        for o in orders {
            if o.side != side || o.leaves == 0 || o.price <= 0 {
                return Err(format!("bad resting order on {side:?}: {o:?}"));
            }
        }
        for w in orders.windows(2) {
            let ordered = match side {
                Side::Buy => w[0].price >= w[1].price,
                Side::Sell => w[0].price <= w[1].price,
            };
            if !ordered {
                return Err(format!(
                    "{side:?} orders not in price priority: {:?} before {:?}",
                    w[0], w[1]
                ));
            }
        }
        let agg = aggregate(orders)?;
        if &agg != levels {
            return Err(format!(
                "{side:?} depth {levels:?} disagrees with L3 aggregate {agg:?}"
            ));
        }
        let first = levels.first().map(|l| (l.price, l.qty));
        if first != best {
            return Err(format!("{side:?} best {best:?} but first level {first:?}"));
        }
    }
    if s.len != s.bids.len() + s.asks.len() {
        return Err(format!(
            "len {} but {} bids + {} asks",
            s.len,
            s.bids.len(),
            s.asks.len()
        ));
    }
    if let (Some((b, _)), Some((a, _))) = (s.best_bid, s.best_ask) {
        if b >= a {
            return Err(format!("book crossed: best bid {b} >= best ask {a}"));
        }
    }
    Ok(())
}

/// True if a taker on `side` with limit `limit` (None = market) may trade at `maker_price`.
pub fn within_limit(side: Side, limit: Option<i64>, maker_price: i64) -> bool {
    match (side, limit) {
        (_, None) => true,
        (Side::Buy, Some(l)) => maker_price <= l,
        (Side::Sell, Some(l)) => maker_price >= l,
    }
}

/// Sort key that puts the best price of `side` first (highest bid, lowest ask).
fn priority_key(side: Side, price: i64) -> i64 {
    match side {
        Side::Buy => -price,
        Side::Sell => price,
    }
}

/// What the ledger knows about one live order.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Side.
    pub side: Side,
    /// Owner.
    pub account: u32,
    /// The order's STP mode (kept across modifies).
    pub stp: Stp,
    /// Post-only flag (kept across modifies).
    pub post_only: bool,
    /// Resting / limit price (0 for a market taker).
    pub price: i64,
    /// Remaining quantity as the events report it.
    pub leaves: u64,
    /// Accepted quantity plus every quantity increase by modify.
    pub submitted: u128,
    /// Every quantity decrease by modify.
    pub reduced: u128,
    /// Traded quantity (as taker or maker).
    pub filled: u128,
    /// Quantity cancelled (any reason).
    pub cancelled: u128,
    /// Arrival number: set on accept and whenever a modify loses priority.
    pub seq: u64,
}

impl Entry {
    fn conserved(&self) -> bool {
        self.submitted == self.filled + self.cancelled + self.reduced + u128::from(self.leaves)
    }
}

/// Running totals over every order the ledger has seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Totals {
    /// Sum of accepted quantities and modify increases.
    pub submitted: u128,
    /// Sum of modify decreases.
    pub reduced: u128,
    /// Sum of traded quantities, once per FILL (each fill takes it from two orders).
    pub traded: u128,
    /// Sum of cancelled quantities.
    pub cancelled: u128,
    /// Number of events of each kind, by `EventKind as usize`.
    pub kinds: Vec<u64>,
    /// Number of rejects and cancels of each reason, by `Reason as usize`.
    pub reasons: Vec<u64>,
    /// Modifies that kept priority.
    pub modify_in_place: u64,
    /// Modifies that lost priority.
    pub modify_requeue: u64,
    /// Largest number of price levels one taker crossed.
    pub max_levels_swept: u64,
}

/// Per-order bookkeeping derived from requests and events only. See the module docs.
#[derive(Clone, Debug)]
pub struct Ledger {
    capacity: usize,
    /// Live (resting) orders by id, after the last applied operation.
    pub live: HashMap<u64, Entry>,
    seq: u64,
    /// Running totals.
    pub totals: Totals,
}

/// The taker of one operation while its events are checked.
struct TakerCtx {
    id: u64,
    side: Side,
    limit: Option<i64>,
    account: u32,
    stp: Stp,
    may_rest: bool,
    fok: bool,
}

impl Ledger {
    /// A ledger for a book of `capacity` slots.
    pub fn new(capacity: usize) -> Self {
        Ledger {
            capacity,
            live: HashMap::new(),
            seq: 0,
            totals: Totals {
                submitted: 0,
                reduced: 0,
                traded: 0,
                cancelled: 0,
                kinds: vec![0; EventKind::ALL.len()],
                reasons: vec![0; Reason::ALL.len()],
                modify_in_place: 0,
                modify_requeue: 0,
                max_levels_swept: 0,
            },
        }
    }

    /// The largest order quantity a book of this capacity accepts (crate docs: above it,
    /// `INVALID_QTY`, so no level or book total can overflow a `u64`).
    pub fn max_qty(&self) -> u64 {
        u64::MAX / self.capacity as u64
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn count(&mut self, e: &Event) {
        self.totals.kinds[e.kind as usize] += 1;
        if matches!(e.kind, EventKind::Rejected | EventKind::Cancelled) {
            self.totals.reasons[e.reason as usize] += 1;
        }
    }

    /// Check `events` (the output of `op` on a book whose touch before `op` was `best_bid` /
    /// `best_ask`) against the rules and fold them into the ledger.
    pub fn apply(
        &mut self,
        op: &Op,
        events: &[Event],
        best_bid: Option<i64>,
        best_ask: Option<i64>,
    ) -> Result<(), String> {
        for e in events {
            self.count(e);
        }
        let crosses = |side: Side, price: i64| match side {
            Side::Buy => best_ask.is_some_and(|a| a <= price),
            Side::Sell => best_bid.is_some_and(|b| b >= price),
        };
        let Some(first) = events.first() else {
            return Err("no events".into());
        };
        match *op {
            Op::Submit(ref r) => {
                let market = r.order_type == OrderType::Market;
                let price = if market { 0 } else { r.price };
                let may_rest = !market && r.tif == TimeInForce::Gtc;
                let want = if r.order_id == 0 {
                    Reason::InvalidOrder
                } else if r.qty == 0 || r.qty > self.max_qty() {
                    Reason::InvalidQty
                } else if !market && r.price <= 0 {
                    Reason::InvalidPrice
                } else if r.post_only && !may_rest {
                    Reason::InvalidOrder
                } else if self.live.contains_key(&r.order_id) {
                    Reason::DuplicateOrderId
                } else if may_rest && self.live.len() >= self.capacity {
                    Reason::BookFull
                } else if r.post_only && crosses(r.side, price) {
                    Reason::WouldCross
                } else {
                    Reason::None
                };
                if want != Reason::None {
                    let exp = Event {
                        price,
                        qty: r.qty,
                        ..Event::new(EventKind::Rejected, want, r.order_id)
                    };
                    if events != [exp] {
                        return Err(format!("expected only {}", fmt_event(&exp)));
                    }
                    return Ok(());
                }
                let exp = Event {
                    price,
                    qty: r.qty,
                    leaves: r.qty,
                    ..Event::new(EventKind::Accepted, Reason::None, r.order_id)
                };
                if *first != exp {
                    return Err(format!("first event should be {}", fmt_event(&exp)));
                }
                let seq = self.next_seq();
                self.totals.submitted += u128::from(r.qty);
                self.live.insert(
                    r.order_id,
                    Entry {
                        side: r.side,
                        account: r.account,
                        stp: r.stp,
                        post_only: r.post_only,
                        price,
                        leaves: r.qty,
                        submitted: u128::from(r.qty),
                        reduced: 0,
                        filled: 0,
                        cancelled: 0,
                        seq,
                    },
                );
                let t = TakerCtx {
                    id: r.order_id,
                    side: r.side,
                    limit: (!market).then_some(price),
                    account: r.account,
                    stp: r.stp,
                    may_rest,
                    fok: r.tif == TimeInForce::Fok,
                };
                let fok_fails = t.fok && !self.fok_fillable(&t, r.qty);
                let unfilled = events
                    .get(1)
                    .is_some_and(|e| e.reason == Reason::FokUnfilled);
                if fok_fails != unfilled {
                    return Err(format!(
                        "FOK fillable by the documented rule: {}, but FOK_UNFILLED emitted: {}",
                        !fok_fails, unfilled
                    ));
                }
                if let Some(second) = events.get(1) {
                    if second.reason == Reason::FokUnfilled {
                        let exp = Event {
                            price,
                            qty: r.qty,
                            ..Event::new(EventKind::Cancelled, Reason::FokUnfilled, r.order_id)
                        };
                        if !t.fok || events.len() != 2 || *second != exp {
                            return Err(format!(
                                "FOK_UNFILLED must be the FOK's only event after ACCEPTED: {}",
                                fmt_event(&exp)
                            ));
                        }
                        self.totals.cancelled += u128::from(r.qty);
                        self.live.remove(&r.order_id);
                        return Ok(());
                    }
                }
                self.run_taker(&t, &events[1..])
            }
            Op::Cancel(id) => {
                let exp = match self.live.remove(&id) {
                    None => Event::new(EventKind::Rejected, Reason::UnknownOrder, id),
                    Some(o) => {
                        self.totals.cancelled += u128::from(o.leaves);
                        Event {
                            price: o.price,
                            qty: o.leaves,
                            ..Event::new(EventKind::Cancelled, Reason::User, id)
                        }
                    }
                };
                if events != [exp] {
                    return Err(format!("expected only {}", fmt_event(&exp)));
                }
                Ok(())
            }
            Op::Modify { id, price, qty } => {
                let reject = |reason| Event {
                    price,
                    qty,
                    ..Event::new(EventKind::Rejected, reason, id)
                };
                let want = if qty == 0 || qty > self.max_qty() {
                    Some(Reason::InvalidQty)
                } else if price <= 0 {
                    Some(Reason::InvalidPrice)
                } else if !self.live.contains_key(&id) {
                    Some(Reason::UnknownOrder)
                } else {
                    None
                };
                if let Some(reason) = want {
                    if events != [reject(reason)] {
                        return Err(format!("expected only {}", fmt_event(&reject(reason))));
                    }
                    return Ok(());
                }
                let o = self.live[&id].clone();
                let replaced = Event {
                    price,
                    qty,
                    leaves: qty,
                    ..Event::new(EventKind::Replaced, Reason::None, id)
                };
                let in_place = price == o.price && qty <= o.leaves;
                if !in_place && o.post_only && crosses(o.side, price) {
                    if events != [reject(Reason::WouldCross)] {
                        return Err(format!(
                            "expected only {}",
                            fmt_event(&reject(Reason::WouldCross))
                        ));
                    }
                    return Ok(());
                }
                if *first != replaced {
                    return Err(format!("first event should be {}", fmt_event(&replaced)));
                }
                let seq = if in_place { o.seq } else { self.next_seq() };
                let e = self.live.get_mut(&id).expect("checked above");
                if qty > e.leaves {
                    e.submitted += u128::from(qty - e.leaves);
                    self.totals.submitted += u128::from(qty - e.leaves);
                } else {
                    e.reduced += u128::from(e.leaves - qty);
                    self.totals.reduced += u128::from(e.leaves - qty);
                }
                e.leaves = qty;
                e.price = price;
                e.seq = seq;
                if in_place {
                    self.totals.modify_in_place += 1;
                    if events.len() != 1 {
                        return Err("an in-place modify yields exactly one REPLACED".into());
                    }
                    return Ok(());
                }
                self.totals.modify_requeue += 1;
                let t = TakerCtx {
                    id,
                    side: o.side,
                    limit: Some(price),
                    account: o.account,
                    stp: o.stp,
                    may_rest: true,
                    fok: false,
                };
                self.run_taker(&t, &events[1..])
            }
        }
    }

    /// The maker a taker on `side` meets next: the best price on the other side, then the
    /// earliest arrival. O(live orders).
    fn next_maker(&self, side: Side) -> Option<(u64, &Entry)> {
        self.live
            .iter()
            .filter(|(_, e)| e.side != side)
            .min_by_key(|(_, e)| (priority_key(e.side, e.price), e.seq))
            .map(|(id, e)| (*id, e))
    }

    /// Whether a FOK taker can fill `qty` completely now, by the documented rule: makers in
    /// priority order within the limit; with STP, an own maker is skipped (CANCEL_OLDEST) or
    /// ends the count (CANCEL_NEWEST, CANCEL_BOTH). O(n log n).
    fn fok_fillable(&self, t: &TakerCtx, qty: u64) -> bool {
        let mut makers: Vec<&Entry> = self
            .live
            .values()
            .filter(|e| e.side != t.side && within_limit(t.side, t.limit, e.price))
            .collect();
        makers.sort_by_key(|e| (priority_key(e.side, e.price), e.seq));
        let mut avail = 0u128;
        for m in makers {
            if avail >= u128::from(qty) {
                break;
            }
            if m.account == t.account && t.stp != Stp::None {
                if t.stp == Stp::CancelOldest {
                    continue;
                }
                break;
            }
            avail += u128::from(m.leaves);
        }
        avail >= u128::from(qty)
    }

    /// Check that `maker` is the order a taker on `t.side` must meet next.
    fn check_next_maker(&self, t: &TakerCtx, maker: u64, e: &Event) -> Result<(), String> {
        match self.next_maker(t.side) {
            Some((id, _)) if id == maker => Ok(()),
            next => Err(format!(
                "price-time priority broken: {} but the next maker is {:?}",
                fmt_event(e),
                next.map(|(id, m)| (id, m.price, m.seq))
            )),
        }
    }

    /// Check the events of one taker after its ACCEPTED / REPLACED.
    fn run_taker(&mut self, t: &TakerCtx, events: &[Event]) -> Result<(), String> {
        let mut last_price = None;
        let mut levels = 0u64;
        for (i, e) in events.iter().enumerate() {
            let is_last = i + 1 == events.len();
            match (e.kind, e.reason) {
                (EventKind::Fill, Reason::None) => {
                    if e.order_id != t.id {
                        return Err(format!("fill of another taker: {}", fmt_event(e)));
                    }
                    let taker_leaves = self.live[&t.id].leaves;
                    if self.live.contains_key(&e.other_id) {
                        self.check_next_maker(t, e.other_id, e)?;
                    }
                    let Some(m) = self.live.get_mut(&e.other_id) else {
                        return Err(format!("fill against unknown maker: {}", fmt_event(e)));
                    };
                    if e.other_id == t.id || m.side == t.side {
                        return Err(format!("fill against own side: {}", fmt_event(e)));
                    }
                    if e.price != m.price {
                        return Err(format!(
                            "fill not at the maker's price {}: {}",
                            m.price,
                            fmt_event(e)
                        ));
                    }
                    if !within_limit(t.side, t.limit, m.price) {
                        return Err(format!("fill beyond the limit: {}", fmt_event(e)));
                    }
                    if t.stp != Stp::None && m.account == t.account {
                        return Err(format!("self-trade despite STP: {}", fmt_event(e)));
                    }
                    if e.qty == 0 || e.qty > m.leaves || e.qty > taker_leaves {
                        return Err(format!("fill quantity out of range: {}", fmt_event(e)));
                    }
                    if e.other_leaves != m.leaves - e.qty || e.leaves != taker_leaves - e.qty {
                        return Err(format!("fill leaves do not add up: {}", fmt_event(e)));
                    }
                    m.leaves -= e.qty;
                    m.filled += u128::from(e.qty);
                    if m.leaves == 0 {
                        let m = self.live.remove(&e.other_id).expect("present");
                        if !m.conserved() {
                            return Err(format!("maker not conserved: {m:?}"));
                        }
                    }
                    let tk = self.live.get_mut(&t.id).expect("taker live");
                    tk.leaves -= e.qty;
                    tk.filled += u128::from(e.qty);
                    self.totals.traded += u128::from(e.qty);
                    if last_price != Some(e.price) {
                        levels += 1;
                        last_price = Some(e.price);
                    }
                }
                (EventKind::Cancelled, Reason::SelfTrade) if e.order_id != t.id => {
                    let Some(m) = self.live.get(&e.order_id) else {
                        return Err(format!("STP cancel of unknown maker: {}", fmt_event(e)));
                    };
                    self.check_next_maker(t, e.order_id, e)?;
                    if m.side == t.side
                        || m.account != t.account
                        || !matches!(t.stp, Stp::CancelOldest | Stp::CancelBoth)
                        || !within_limit(t.side, t.limit, m.price)
                    {
                        return Err(format!("maker cancelled without cause: {}", fmt_event(e)));
                    }
                    let exp = Event {
                        price: m.price,
                        qty: m.leaves,
                        ..Event::new(EventKind::Cancelled, Reason::SelfTrade, e.order_id)
                    };
                    if *e != exp {
                        return Err(format!("expected {}", fmt_event(&exp)));
                    }
                    let mut m = self.live.remove(&e.order_id).expect("present");
                    m.cancelled += u128::from(m.leaves);
                    self.totals.cancelled += u128::from(m.leaves);
                    m.leaves = 0;
                    if !m.conserved() {
                        return Err(format!("maker not conserved: {m:?}"));
                    }
                }
                (EventKind::Cancelled, Reason::SelfTrade | Reason::IocRemainder) => {
                    let tk = &self.live[&t.id];
                    let exp = Event {
                        price: tk.price,
                        qty: tk.leaves,
                        ..Event::new(EventKind::Cancelled, e.reason, t.id)
                    };
                    let next = self
                        .next_maker(t.side)
                        .filter(|(_, m)| within_limit(t.side, t.limit, m.price));
                    let allowed = match (e.reason, t.stp) {
                        // CANCEL_NEWEST: the next maker in reach is the taker's own.
                        (Reason::SelfTrade, Stp::CancelNewest) => {
                            next.is_some_and(|(_, m)| m.account == t.account)
                        }
                        // CANCEL_BOTH: right after cancelling the own maker.
                        (Reason::SelfTrade, Stp::CancelBoth) => {
                            i > 0
                                && events[i - 1].kind == EventKind::Cancelled
                                && events[i - 1].reason == Reason::SelfTrade
                                && events[i - 1].order_id != t.id
                        }
                        (Reason::SelfTrade, _) => false,
                        // IOC / market remainder: only once nothing in reach is left.
                        _ => !t.may_rest && !t.fok && next.is_none(),
                    };
                    if !allowed || !is_last || *e != exp || tk.leaves == 0 {
                        return Err(format!(
                            "taker cancel must be last, allowed and {}",
                            fmt_event(&exp)
                        ));
                    }
                    let tk = self.live.get_mut(&t.id).expect("taker live");
                    tk.cancelled += u128::from(tk.leaves);
                    self.totals.cancelled += u128::from(tk.leaves);
                    tk.leaves = 0;
                }
                _ => return Err(format!("unexpected event: {}", fmt_event(e))),
            }
        }
        self.totals.max_levels_swept = self.totals.max_levels_swept.max(levels);
        let tk = self.live[&t.id].clone();
        if !tk.conserved() {
            return Err(format!("taker not conserved: {tk:?}"));
        }
        if tk.leaves == 0 {
            self.live.remove(&t.id);
        } else if !t.may_rest {
            return Err(format!(
                "order {} that may not rest kept {} leaves without a cancel",
                t.id, tk.leaves
            ));
        } else if t.fok {
            return Err(format!("FOK {} executed partially", t.id));
        }
        Ok(())
    }

    /// Compare the ledger with a book's visible state: the same resting orders with the same
    /// side, account, price and leaves; within a price, FIFO by arrival; per order and in
    /// total, quantity conserved.
    pub fn check_against(&self, s: &State) -> Result<(), String> {
        if s.len != self.live.len() {
            return Err(format!(
                "book holds {} orders, ledger {}",
                s.len,
                self.live.len()
            ));
        }
        let mut resting_total = 0u128;
        for orders in [&s.bids, &s.asks] {
            let mut prev: Option<(i64, u64)> = None;
            for o in orders {
                let Some(e) = self.live.get(&o.order_id) else {
                    return Err(format!("book holds {o:?}, which the events closed"));
                };
                if (e.side, e.account, e.price, e.leaves) != (o.side, o.account, o.price, o.leaves)
                {
                    return Err(format!("book holds {o:?}, events say {e:?}"));
                }
                if !e.conserved() {
                    return Err(format!("order {} not conserved: {e:?}", o.order_id));
                }
                if let Some((p, seq)) = prev {
                    if p == o.price && seq >= e.seq {
                        return Err(format!(
                            "FIFO broken at price {p}: order {} arrived before its predecessor",
                            o.order_id
                        ));
                    }
                }
                prev = Some((o.price, e.seq));
                resting_total += u128::from(o.leaves);
            }
        }
        let t = &self.totals;
        if t.submitted != 2 * t.traded + t.cancelled + t.reduced + resting_total {
            return Err(format!(
                "quantity not conserved: submitted {} != 2*traded {} + cancelled {} + reduced {} + resting {}",
                t.submitted, t.traded, t.cancelled, t.reduced, resting_total
            ));
        }
        Ok(())
    }
}

/// Shape of a [`StreamGen`] stream.
#[derive(Clone, Copy, Debug)]
pub struct GenParams {
    /// Seed of the generator.
    pub seed: u64,
    /// Order ids are drawn from `1..=max_id` (recycled once an order is gone).
    pub max_id: u64,
    /// Resting orders the stream hovers around.
    pub target_resting: usize,
    /// Starting mid price.
    pub mid: i64,
    /// How far the mid may drift from its start (so the number of levels stays bounded).
    pub band: i64,
    /// How far from the mid passive orders are placed.
    pub spread: i64,
    /// Accounts `1..=accounts` (few, so self-trade prevention triggers).
    pub accounts: u32,
    /// Largest quantity of an aggressive order (large ones sweep several levels).
    pub max_sweep_qty: u64,
}

/// Counts of what a [`StreamGen`] issued.
#[derive(Clone, Copy, Debug, Default)]
pub struct GenStats {
    /// Passive (resting) limit orders.
    pub passive: u64,
    /// Aggressive limits and market orders.
    pub aggressive: u64,
    /// Cancels.
    pub cancels: u64,
    /// Modifies that keep priority (same price, smaller or equal qty).
    pub modify_keep: u64,
    /// Modifies that lose priority (price change or qty increase).
    pub modify_lose: u64,
    /// Invalid or unknown-id requests.
    pub invalid: u64,
}

const NOT_LIVE: u32 = u32::MAX;

/// Seeded generator of mixed streams; allocation-free after [`StreamGen::new`]. It tracks
/// which ids rest from the events it is shown ([`StreamGen::observe`]), so cancels and
/// modifies mostly hit live orders and new orders get unused ids.
pub struct StreamGen {
    rng: SmallRng,
    p: GenParams,
    mid: i64,
    live: Vec<u64>,
    pos: Vec<u32>,
    free: Vec<u64>,
    fresh: u64,
    /// What was issued so far.
    pub stats: GenStats,
}

impl StreamGen {
    /// A generator with every id free.
    pub fn new(p: GenParams) -> Self {
        let n = p.max_id as usize;
        StreamGen {
            rng: SmallRng::seed_from_u64(p.seed),
            p,
            mid: p.mid,
            live: Vec::with_capacity(n),
            pos: vec![NOT_LIVE; n + 1],
            free: (1..=p.max_id).rev().collect(),
            fresh: 0,
            stats: GenStats::default(),
        }
    }

    /// Number of ids the generator believes rest.
    pub fn live_count(&self) -> usize {
        self.live.len()
    }

    /// Lowest and highest price any generated order can carry.
    pub fn price_range(&self) -> (i64, i64) {
        let reach = self.p.band + self.p.spread + 8;
        (self.p.mid - reach, self.p.mid + reach)
    }

    fn account(&mut self) -> u32 {
        self.rng.random_range(1..=self.p.accounts)
    }

    fn stp(&mut self) -> Stp {
        match self.rng.random_range(0..10) {
            0..=4 => Stp::CancelNewest,
            5..=6 => Stp::CancelOldest,
            7..=8 => Stp::CancelBoth,
            _ => Stp::None,
        }
    }

    fn side(&mut self) -> Side {
        if self.rng.random_bool(0.5) {
            Side::Buy
        } else {
            Side::Sell
        }
    }

    fn fresh_id(&mut self) -> u64 {
        // Half the time the most recently freed id (quick reuse of a slot's id), half the
        // time any free id (so ids collide in the book's hash index; sequential ids would
        // spread perfectly under a multiplicative hash and never exercise its probing).
        assert!(!self.free.is_empty(), "max_id must exceed the live orders");
        let id = if self.rng.random_bool(0.5) {
            self.free.pop().expect("non-empty")
        } else {
            let i = self.rng.random_range(0..self.free.len());
            self.free.swap_remove(i)
        };
        self.fresh = id;
        id
    }

    fn some_live(&mut self) -> Option<u64> {
        if self.live.is_empty() {
            None
        } else {
            Some(self.live[self.rng.random_range(0..self.live.len())])
        }
    }

    fn clamp_price(&self, p: i64) -> i64 {
        let (lo, hi) = self.price_range();
        p.clamp(lo.max(1), hi)
    }

    fn passive(&mut self, id: u64) -> OrderRequest {
        let side = self.side();
        let off = self.rng.random_range(1..=self.p.spread);
        let price = self.clamp_price(match side {
            Side::Buy => self.mid - off,
            Side::Sell => self.mid + off,
        });
        let qty = self.rng.random_range(1..=100);
        let account = self.account();
        let mut r = OrderRequest::limit(id, account, side, price, qty).with_stp(self.stp());
        if self.rng.random_bool(0.1) {
            r = r.post_only();
        }
        r.timestamp = self.rng.random();
        r
    }

    fn aggressive(&mut self, id: u64) -> OrderRequest {
        let side = self.side();
        let account = self.account();
        let qty = self.rng.random_range(1..=self.p.max_sweep_qty);
        let through = self.rng.random_range(0..=6);
        let price = self.clamp_price(match side {
            Side::Buy => self.mid + through,
            Side::Sell => self.mid - through,
        });
        let r = if self.rng.random_bool(0.15) {
            OrderRequest::market(id, account, side, qty)
        } else {
            OrderRequest::limit(id, account, side, price, qty)
        };
        let tif = match self.rng.random_range(0..4) {
            0 => TimeInForce::Gtc,
            1 | 2 => TimeInForce::Ioc,
            _ => TimeInForce::Fok,
        };
        r.with_tif(tif).with_stp(self.stp())
    }

    /// The next operation. `lookup` reads a resting order from the book under test (used to
    /// aim modifies at the order's current price and leaves).
    pub fn next_op(&mut self, lookup: impl Fn(u64) -> Option<RestingOrder>) -> Op {
        self.fresh = 0;
        if self.rng.random_bool(0.05) {
            let step = if self.rng.random_bool(0.5) { 1 } else { -1 };
            self.mid = (self.mid + step).clamp(self.p.mid - self.p.band, self.p.mid + self.p.band);
        }
        let fill = self.live.len() as f64 / self.p.target_resting.max(1) as f64;
        // Below the target, mostly add; above it, mostly take away.
        let passive_w = if fill < 1.0 { 45 } else { 25 };
        let cancel_w = if fill < 1.0 { 15 } else { 35 };
        let roll = self.rng.random_range(0..100u32);
        let (passive_end, aggressive_end, cancel_end, modify_end) = (
            passive_w,
            passive_w + 15,
            passive_w + 15 + cancel_w,
            passive_w + 15 + cancel_w + 23,
        );
        if roll < passive_end {
            self.stats.passive += 1;
            let id = self.fresh_id();
            return Op::Submit(self.passive(id));
        }
        if roll < aggressive_end {
            self.stats.aggressive += 1;
            let id = self.fresh_id();
            return Op::Submit(self.aggressive(id));
        }
        if roll < cancel_end {
            if let Some(id) = self.some_live() {
                self.stats.cancels += 1;
                return Op::Cancel(id);
            }
        }
        if roll < modify_end {
            if let Some(o) = self.some_live().and_then(&lookup) {
                let kind = self.rng.random_range(0..4);
                if kind < 2 {
                    self.stats.modify_keep += 1;
                    let qty = self.rng.random_range(1..=o.leaves);
                    return Op::Modify {
                        id: o.order_id,
                        price: o.price,
                        qty,
                    };
                }
                self.stats.modify_lose += 1;
                let (price, qty) = if kind == 2 {
                    (o.price, o.leaves + self.rng.random_range(1..=50))
                } else {
                    let d = self.rng.random_range(-4..=4);
                    let price = self.clamp_price(o.price + if d == 0 { 1 } else { d });
                    (price, self.rng.random_range(1..=120))
                };
                return Op::Modify {
                    id: o.order_id,
                    price,
                    qty,
                };
            }
        }
        self.stats.invalid += 1;
        let unknown = self.rng.random_range(1..=self.p.max_id);
        match self.rng.random_range(0..8) {
            0 => Op::Cancel(unknown),
            1 => Op::Modify {
                id: unknown,
                price: self.mid,
                qty: 5,
            },
            2 => {
                let id = self.some_live().unwrap_or(unknown);
                Op::Modify {
                    id,
                    price: self.mid,
                    qty: 0,
                }
            }
            3 => {
                let id = self.some_live().unwrap_or(unknown);
                Op::Modify {
                    id,
                    price: -self.rng.random_range(0..=2),
                    qty: 5,
                }
            }
            4 => {
                // Duplicate id when something rests.
                let id = self.some_live().unwrap_or(unknown);
                let r = self.passive(1);
                Op::Submit(OrderRequest { order_id: id, ..r })
            }
            5 => Op::Submit(OrderRequest {
                order_id: 0,
                ..self.passive(1)
            }),
            6 => {
                let id = self.fresh_id();
                let mut r = self.passive(id);
                if self.rng.random_bool(0.5) {
                    r.qty = 0;
                } else {
                    r.price = -self.rng.random_range(0..=2);
                }
                Op::Submit(r)
            }
            _ => {
                let id = self.fresh_id();
                Op::Submit(self.aggressive(id).post_only())
            }
        }
    }

    fn set_live(&mut self, id: u64, live: bool) {
        let p = self.pos[id as usize];
        if live && p == NOT_LIVE {
            self.pos[id as usize] = self.live.len() as u32;
            self.live.push(id);
        } else if !live && p != NOT_LIVE {
            let last = *self.live.last().expect("non-empty");
            self.live.swap_remove(p as usize);
            if last != id {
                self.pos[last as usize] = p;
            }
            self.pos[id as usize] = NOT_LIVE;
            self.free.push(id);
        }
    }

    /// Learn the outcome of the last operation: `events` it yielded and `rests(id)`, whether
    /// an id rests in the book now.
    pub fn observe(&mut self, events: &[Event], rests: impl Fn(u64) -> bool) {
        for e in events {
            for id in [e.order_id, e.other_id] {
                if id != 0 && id <= self.p.max_id && id != self.fresh {
                    self.set_live(id, rests(id));
                }
            }
        }
        if self.fresh != 0 {
            let id = self.fresh;
            self.fresh = 0;
            if rests(id) {
                self.set_live(id, true);
            } else {
                self.free.push(id);
            }
        }
    }
}
