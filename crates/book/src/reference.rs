//! The naive reference model: the oracle the fast book is tested against.
//!
//! Written for obviousness, not speed: one `HashMap<price, VecDeque<order>>` per side, the
//! best price found by scanning the keys, and every rule spelled out in the order the crate
//! docs state it. It shares no code with `book.rs` beyond the plain types, so a bug has to be
//! made twice, independently, to go unnoticed by the differential tests.
//!
//! Cost: O(L) for the best price, O(n) for cancels. Never use it on a hot path.

use std::collections::{HashMap, VecDeque};

use crate::types::{
    Event, EventKind, LevelView, Matching, OrderRequest, OrderType, Reason, RestingOrder, Side,
    Stp, TimeInForce,
};

#[derive(Clone, Debug)]
struct Order {
    id: u64,
    account: u32,
    price: i64,
    leaves: u64,
    stp: Stp,
    post_only: bool,
}

/// The reference book. Same interface and results as [`crate::Book`].
#[derive(Clone, Debug)]
pub struct ReferenceBook {
    capacity: usize,
    bids: HashMap<i64, VecDeque<Order>>,
    asks: HashMap<i64, VecDeque<Order>>,
}

impl ReferenceBook {
    /// A reference book that holds at most `capacity` resting orders (> 0, as for
    /// [`crate::Book::with_capacity`]).
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "capacity must be at least 1");
        ReferenceBook {
            capacity,
            bids: HashMap::new(),
            asks: HashMap::new(),
        }
    }

    fn side_map(&self, side: Side) -> &HashMap<i64, VecDeque<Order>> {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    fn side_map_mut(&mut self, side: Side) -> &mut HashMap<i64, VecDeque<Order>> {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// Prices of one side, best first.
    fn prices_best_first(&self, side: Side) -> Vec<i64> {
        let mut prices: Vec<i64> = self.side_map(side).keys().copied().collect();
        prices.sort();
        if side == Side::Buy {
            prices.reverse();
        }
        prices
    }

    fn find(&self, id: u64) -> Option<(Side, Order)> {
        for side in [Side::Buy, Side::Sell] {
            for queue in self.side_map(side).values() {
                if let Some(o) = queue.iter().find(|o| o.id == id) {
                    return Some((side, o.clone()));
                }
            }
        }
        None
    }

    /// Remove an order from wherever it rests.
    fn remove(&mut self, side: Side, price: i64, id: u64) {
        let map = self.side_map_mut(side);
        let queue = map.get_mut(&price).expect("level exists");
        queue.retain(|o| o.id != id);
        if queue.is_empty() {
            map.remove(&price);
        }
    }

    fn price_acceptable(side: Side, limit: Option<i64>, maker_price: i64) -> bool {
        match (limit, side) {
            (None, _) => true,
            (Some(l), Side::Buy) => maker_price <= l,
            (Some(l), Side::Sell) => maker_price >= l,
        }
    }

    /// The makers the taker would meet, in order, as (id, account, price, leaves).
    fn makers_in_order(&self, side: Side, limit: Option<i64>) -> Vec<(u64, u32, i64, u64)> {
        let opp = side.opposite();
        let mut makers = Vec::new();
        for p in self.prices_best_first(opp) {
            if !Self::price_acceptable(side, limit, p) {
                break;
            }
            for o in &self.side_map(opp)[&p] {
                makers.push((o.id, o.account, p, o.leaves));
            }
        }
        makers
    }

    /// Would an FOK fill completely under the STP rule?
    fn fok_ok(&self, side: Side, limit: Option<i64>, account: u32, stp: Stp, qty: u64) -> bool {
        let mut can_fill = 0u64;
        for (_, acct, _, leaves) in self.makers_in_order(side, limit) {
            if can_fill >= qty {
                break;
            }
            if acct == account && stp != Stp::None {
                match stp {
                    Stp::CancelOldest => continue,
                    _ => break,
                }
            }
            can_fill += leaves;
        }
        can_fill >= qty
    }

    /// Match an incoming order. Returns remaining qty, or None if STP cancelled the taker.
    #[allow(clippy::too_many_arguments)] // mirrors the taker's fields one by one, for clarity
    fn run_match(
        &mut self,
        id: u64,
        account: u32,
        side: Side,
        limit: Option<i64>,
        own_price: i64,
        stp: Stp,
        qty: u64,
        out: &mut Vec<Event>,
    ) -> Option<u64> {
        let mut leaves = qty;
        let opp = side.opposite();
        loop {
            if leaves == 0 {
                return Some(0);
            }
            let best = self.prices_best_first(opp).first().copied();
            let Some(p) = best else { return Some(leaves) };
            if !Self::price_acceptable(side, limit, p) {
                return Some(leaves);
            }
            let maker = self.side_map(opp)[&p][0].clone();
            let self_trade = maker.account == account && stp != Stp::None;
            if self_trade {
                if stp == Stp::CancelOldest || stp == Stp::CancelBoth {
                    self.remove(opp, p, maker.id);
                    out.push(Event {
                        kind: EventKind::Cancelled,
                        reason: Reason::SelfTrade,
                        order_id: maker.id,
                        other_id: 0,
                        price: p,
                        qty: maker.leaves,
                        leaves: 0,
                        other_leaves: 0,
                    });
                }
                if stp == Stp::CancelNewest || stp == Stp::CancelBoth {
                    out.push(Event {
                        kind: EventKind::Cancelled,
                        reason: Reason::SelfTrade,
                        order_id: id,
                        other_id: 0,
                        price: own_price,
                        qty: leaves,
                        leaves: 0,
                        other_leaves: 0,
                    });
                    return None;
                }
                continue;
            }
            let traded = leaves.min(maker.leaves);
            leaves -= traded;
            let maker_left = maker.leaves - traded;
            out.push(Event {
                kind: EventKind::Fill,
                reason: Reason::None,
                order_id: id,
                other_id: maker.id,
                price: p,
                qty: traded,
                leaves,
                other_leaves: maker_left,
            });
            if maker_left == 0 {
                self.remove(opp, p, maker.id);
            } else {
                self.side_map_mut(opp).get_mut(&p).unwrap()[0].leaves = maker_left;
            }
        }
    }

    fn rest(&mut self, side: Side, order: Order) {
        self.side_map_mut(side)
            .entry(order.price)
            .or_default()
            .push_back(order);
    }

    fn crosses_now(&self, side: Side, price: i64) -> bool {
        let opp = side.opposite();
        match self.prices_best_first(opp).first() {
            None => false,
            Some(&best) => Self::price_acceptable(side, Some(price), best),
        }
    }
}

fn ev(kind: EventKind, reason: Reason, order_id: u64, price: i64, qty: u64, leaves: u64) -> Event {
    Event {
        kind,
        reason,
        order_id,
        other_id: 0,
        price,
        qty,
        leaves,
        other_leaves: 0,
    }
}

impl Matching for ReferenceBook {
    fn submit(&mut self, r: &OrderRequest, out: &mut Vec<Event>) {
        let is_market = r.order_type == OrderType::Market;
        let price = if is_market { 0 } else { r.price };
        let can_rest = r.order_type == OrderType::Limit && r.tif == TimeInForce::Gtc;
        let reason = if r.order_id == 0 {
            Reason::InvalidOrder
        } else if r.qty == 0 || r.qty > u64::MAX / self.capacity as u64 {
            Reason::InvalidQty
        } else if !is_market && r.price <= 0 {
            Reason::InvalidPrice
        } else if r.post_only && !can_rest {
            Reason::InvalidOrder
        } else if self.find(r.order_id).is_some() {
            Reason::DuplicateOrderId
        } else if can_rest && self.len() >= self.capacity {
            Reason::BookFull
        } else if r.post_only && self.crosses_now(r.side, price) {
            Reason::WouldCross
        } else {
            Reason::None
        };
        if reason != Reason::None {
            out.push(ev(EventKind::Rejected, reason, r.order_id, price, r.qty, 0));
            return;
        }
        out.push(ev(
            EventKind::Accepted,
            Reason::None,
            r.order_id,
            price,
            r.qty,
            r.qty,
        ));
        let limit = if is_market { None } else { Some(price) };
        if r.tif == TimeInForce::Fok && !self.fok_ok(r.side, limit, r.account, r.stp, r.qty) {
            out.push(ev(
                EventKind::Cancelled,
                Reason::FokUnfilled,
                r.order_id,
                price,
                r.qty,
                0,
            ));
            return;
        }
        let left = self.run_match(
            r.order_id, r.account, r.side, limit, price, r.stp, r.qty, out,
        );
        match left {
            None | Some(0) => {}
            Some(leaves) if can_rest => self.rest(
                r.side,
                Order {
                    id: r.order_id,
                    account: r.account,
                    price,
                    leaves,
                    stp: r.stp,
                    post_only: r.post_only,
                },
            ),
            Some(leaves) => out.push(ev(
                EventKind::Cancelled,
                Reason::IocRemainder,
                r.order_id,
                price,
                leaves,
                0,
            )),
        }
    }

    fn cancel(&mut self, order_id: u64, out: &mut Vec<Event>) {
        match self.find(order_id) {
            None => out.push(ev(
                EventKind::Rejected,
                Reason::UnknownOrder,
                order_id,
                0,
                0,
                0,
            )),
            Some((side, o)) => {
                self.remove(side, o.price, o.id);
                out.push(ev(
                    EventKind::Cancelled,
                    Reason::User,
                    order_id,
                    o.price,
                    o.leaves,
                    0,
                ));
            }
        }
    }

    fn modify(&mut self, order_id: u64, new_price: i64, new_qty: u64, out: &mut Vec<Event>) {
        let reject = |reason| ev(EventKind::Rejected, reason, order_id, new_price, new_qty, 0);
        if new_qty == 0 || new_qty > u64::MAX / self.capacity as u64 {
            return out.push(reject(Reason::InvalidQty));
        }
        if new_price <= 0 {
            return out.push(reject(Reason::InvalidPrice));
        }
        let Some((side, o)) = self.find(order_id) else {
            return out.push(reject(Reason::UnknownOrder));
        };
        let replaced = ev(
            EventKind::Replaced,
            Reason::None,
            order_id,
            new_price,
            new_qty,
            new_qty,
        );
        if new_price == o.price && new_qty <= o.leaves {
            let queue = self.side_map_mut(side).get_mut(&o.price).unwrap();
            queue.iter_mut().find(|x| x.id == order_id).unwrap().leaves = new_qty;
            return out.push(replaced);
        }
        if o.post_only && self.crosses_now(side, new_price) {
            return out.push(reject(Reason::WouldCross));
        }
        self.remove(side, o.price, order_id);
        out.push(replaced);
        let left = self.run_match(
            order_id,
            o.account,
            side,
            Some(new_price),
            new_price,
            o.stp,
            new_qty,
            out,
        );
        if let Some(leaves) = left.filter(|&l| l > 0) {
            self.rest(
                side,
                Order {
                    price: new_price,
                    leaves,
                    ..o
                },
            );
        }
    }

    fn best_bid(&self) -> Option<(i64, u64)> {
        let p = *self.prices_best_first(Side::Buy).first()?;
        Some((p, self.bids[&p].iter().map(|o| o.leaves).sum()))
    }

    fn best_ask(&self) -> Option<(i64, u64)> {
        let p = *self.prices_best_first(Side::Sell).first()?;
        Some((p, self.asks[&p].iter().map(|o| o.leaves).sum()))
    }

    fn depth_side(&self, side: Side, n: usize) -> Vec<LevelView> {
        self.prices_best_first(side)
            .into_iter()
            .take(n)
            .map(|p| {
                let q = &self.side_map(side)[&p];
                LevelView {
                    price: p,
                    qty: q.iter().map(|o| o.leaves).sum(),
                    count: q.len() as u32,
                }
            })
            .collect()
    }

    fn orders(&self, side: Side) -> Vec<RestingOrder> {
        let mut all = Vec::new();
        for p in self.prices_best_first(side) {
            for o in &self.side_map(side)[&p] {
                all.push(RestingOrder {
                    order_id: o.id,
                    account: o.account,
                    side,
                    price: o.price,
                    leaves: o.leaves,
                });
            }
        }
        all
    }

    fn order(&self, order_id: u64) -> Option<RestingOrder> {
        self.find(order_id).map(|(side, o)| RestingOrder {
            order_id: o.id,
            account: o.account,
            side,
            price: o.price,
            leaves: o.leaves,
        })
    }

    fn len(&self) -> usize {
        self.bids
            .values()
            .chain(self.asks.values())
            .map(|q| q.len())
            .sum()
    }
}
