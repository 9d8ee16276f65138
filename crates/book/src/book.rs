//! The L3 order book of one instrument and its matching.
//!
//! Owns: the arena of resting orders (with the id index) and the two ladders of price levels.
//! The matching rules are those of the crate docs; this module is their fast implementation,
//! and `reference.rs` is the slow, obvious one that tests compare it with event by event.
//!
//! Invariants after every public call: the book is not crossed (best bid < best ask); each
//! level's `qty`/`count` match its list; every resting order has leaves > 0, sits in exactly
//! one level and is indexed by its id; no allocation happened unless a ladder grew past its
//! previous peak or the caller's event `Vec` had to grow.
//!
//! Cost: submit O(1) expected + O(1) per fill (O(log L) when it creates a level); a limit
//! order that does not cross rests without entering the matching loop, its slot written once,
//! already linked. Cancel O(1): one probe of the id index finds the slot and its bucket, the
//! slot names its level, and a level that empties behind the touch stays in place (see
//! `levels.rs`). Modify in place O(1), otherwise as cancel plus submit; best bid/ask O(1);
//! depth O(n).

use crate::arena::{Arena, Slot, NIL};
use crate::levels::{Ladder, Level};
use crate::types::{
    Event, EventKind, LevelView, Matching, OrderRequest, OrderType, Reason, RestingOrder, Side,
    Stp, TimeInForce,
};

/// The incoming side of a match: a new order or a repriced one.
#[derive(Clone, Copy)]
struct Taker {
    order_id: u64,
    account: u32,
    side: Side,
    /// Limit price; `i64::MAX` (buy) / `i64::MIN` (sell) for market orders.
    limit: i64,
    /// Price written on the taker's own events (0 for market orders).
    event_price: i64,
    stp: Stp,
    qty: u64,
}

/// The fast L3 book. See the crate docs for the rules.
pub struct Book {
    arena: Arena,
    /// Largest accepted order quantity, `u64::MAX / capacity`: no level or book total can
    /// overflow a `u64`, whatever orders rest.
    max_qty: u64,
    bids: Ladder,
    asks: Ladder,
}

impl Default for Book {
    fn default() -> Self {
        Self::new()
    }
}

#[inline]
fn cancelled(order_id: u64, price: i64, qty: u64, reason: Reason) -> Event {
    Event {
        price,
        qty,
        ..Event::new(EventKind::Cancelled, reason, order_id)
    }
}

#[inline]
fn rejected(order_id: u64, price: i64, qty: u64, reason: Reason) -> Event {
    Event {
        price,
        qty,
        ..Event::new(EventKind::Rejected, reason, order_id)
    }
}

/// Append slot `idx` at the tail of `level`.
#[inline]
fn link_tail(arena: &mut Arena, level: &mut Level, idx: u32) {
    let tail = level.tail;
    {
        let s = &mut arena.slots[idx as usize];
        s.prev = tail;
        s.next = NIL;
        level.qty += s.leaves;
    }
    if tail != NIL {
        arena.slots[tail as usize].next = idx;
    } else {
        level.head = idx;
    }
    level.tail = idx;
    level.count += 1;
}

/// Take slot `idx` out of `level` (its leaves leave the level's total).
#[inline]
fn unlink(arena: &mut Arena, level: &mut Level, idx: u32) {
    let Slot {
        prev, next, leaves, ..
    } = arena.slots[idx as usize];
    if prev != NIL {
        arena.slots[prev as usize].next = next;
    } else {
        level.head = next;
    }
    if next != NIL {
        arena.slots[next as usize].prev = prev;
    } else {
        level.tail = prev;
    }
    level.qty -= leaves;
    level.count -= 1;
}

impl Book {
    /// Default number of order slots.
    pub const DEFAULT_CAPACITY: usize = 1_000_000;

    /// A book with [`Book::DEFAULT_CAPACITY`] slots.
    pub fn new() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }

    /// A book that can hold `capacity` resting orders (1 ..= 4,294,967,294). All memory for
    /// the orders is taken here.
    pub fn with_capacity(capacity: usize) -> Self {
        let reserve = capacity.clamp(16, 4096);
        Book {
            arena: Arena::new(capacity),
            max_qty: u64::MAX / capacity as u64,
            bids: Ladder::new(Side::Buy, reserve),
            asks: Ladder::new(Side::Sell, reserve),
        }
    }

    /// Largest order quantity this book accepts (`u64::MAX / capacity`).
    pub fn max_qty(&self) -> u64 {
        self.max_qty
    }

    /// Number of order slots.
    pub fn capacity(&self) -> usize {
        self.arena.capacity()
    }

    /// Bytes held for orders (slots and id index) divided by capacity: the memory cost of one
    /// resting order.
    pub fn bytes_per_order(&self) -> f64 {
        self.arena.footprint_bytes() as f64 / self.arena.capacity() as f64
    }

    #[inline]
    fn ladder(&self, side: Side) -> &Ladder {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    #[inline]
    fn ladder_mut(&mut self, side: Side) -> &mut Ladder {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// True if a limit order on `side` at `price` would trade on arrival.
    #[inline]
    fn would_cross(&self, side: Side, price: i64) -> bool {
        self.ladder(side.opposite())
            .best()
            .is_some_and(|l| Ladder::crosses(side, price, l.price))
    }

    /// Can `t` fill completely right now, with STP applied as matching would apply it?
    fn fok_fillable(&self, t: &Taker) -> bool {
        let mut avail: u64 = 0;
        for level in self.ladder(t.side.opposite()).best_first() {
            if !Ladder::crosses(t.side, t.limit, level.price) {
                break;
            }
            if t.stp == Stp::None {
                avail += level.qty;
                if avail >= t.qty {
                    return true;
                }
                continue;
            }
            let mut m = level.head;
            while m != NIL {
                let s = &self.arena.slots[m as usize];
                if s.account == t.account {
                    // CANCEL_OLDEST removes the maker and goes on; the other modes stop.
                    if t.stp != Stp::CancelOldest {
                        return false;
                    }
                } else {
                    avail += s.leaves;
                    if avail >= t.qty {
                        return true;
                    }
                }
                m = s.next;
            }
        }
        false
    }

    /// Match `t` against the opposite side. Returns the taker's remaining quantity, or `None`
    /// if self-trade prevention cancelled the taker (its CANCELLED event is already out).
    fn match_taker(&mut self, t: &Taker, out: &mut Vec<Event>) -> Option<u64> {
        let arena = &mut self.arena;
        let opp = match t.side {
            Side::Buy => &mut self.asks,
            Side::Sell => &mut self.bids,
        };
        let mut leaves = t.qty;
        let mut taker_cancelled = false;
        while leaves > 0 && !taker_cancelled {
            let Some(li) = opp.best_index() else {
                break;
            };
            let level = &mut opp.pool[li as usize];
            if !Ladder::crosses(t.side, t.limit, level.price) {
                break;
            }
            let price = level.price;
            while leaves > 0 && level.head != NIL {
                let m = level.head;
                let maker = &mut arena.slots[m as usize];
                if maker.account == t.account && t.stp != Stp::None {
                    if t.stp == Stp::CancelNewest {
                        taker_cancelled = true;
                        break;
                    }
                    // CANCEL_OLDEST or CANCEL_BOTH: the maker goes first.
                    let (mid, ml) = (maker.order_id, maker.leaves);
                    unlink(arena, level, m);
                    arena.free(m);
                    out.push(cancelled(mid, price, ml, Reason::SelfTrade));
                    if t.stp == Stp::CancelBoth {
                        taker_cancelled = true;
                        break;
                    }
                    continue;
                }
                let q = leaves.min(maker.leaves);
                maker.leaves -= q;
                leaves -= q;
                level.qty -= q;
                out.push(Event {
                    kind: EventKind::Fill,
                    reason: Reason::None,
                    order_id: t.order_id,
                    other_id: maker.order_id,
                    price,
                    qty: q,
                    leaves,
                    other_leaves: maker.leaves,
                });
                if maker.leaves == 0 {
                    unlink(arena, level, m);
                    arena.free(m);
                }
            }
            if level.count == 0 {
                opp.pop_best();
            }
        }
        if taker_cancelled {
            out.push(cancelled(
                t.order_id,
                t.event_price,
                leaves,
                Reason::SelfTrade,
            ));
            return None;
        }
        Some(leaves)
    }

    /// Link an already allocated slot at the tail of the level at `price` on its side.
    #[inline]
    fn place(&mut self, idx: u32, price: i64) {
        let side = self.arena.slots[idx as usize].side;
        let ladder = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let li = ladder.find_or_insert(price);
        self.arena.slots[idx as usize].level = li;
        link_tail(&mut self.arena, &mut ladder.pool[li as usize], idx);
    }

    /// Price of a resting order (kept once per level, found through the slot's level index).
    #[inline]
    fn price_of(&self, s: &Slot) -> i64 {
        self.ladder(s.side).pool[s.level as usize].price
    }

    /// Take a resting order out of its level (removing the level if it empties); the slot
    /// stays allocated. O(1) unless the level empties (then O(log L) to drop it).
    #[inline]
    fn take_out(&mut self, idx: u32) {
        let Slot { side, level, .. } = self.arena.slots[idx as usize];
        let ladder = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let l = &mut ladder.pool[level as usize];
        unlink(&mut self.arena, l, idx);
        if l.count == 0 {
            ladder.remove(level);
        }
    }

    /// Cancel a resting order with the given reason (USER for [`Matching::cancel`]; the venue
    /// and the kill switch use MASS_CANCEL and KILL_SWITCH).
    pub fn cancel_with_reason(&mut self, order_id: u64, reason: Reason, out: &mut Vec<Event>) {
        // One probe of the index finds the slot and its bucket; the bucket is emptied directly.
        let Some((idx, pos)) = self.arena.find(order_id) else {
            out.push(rejected(order_id, 0, 0, Reason::UnknownOrder));
            return;
        };
        let Slot {
            side,
            level,
            leaves,
            ..
        } = self.arena.slots[idx as usize];
        let ladder = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let l = &mut ladder.pool[level as usize];
        let price = l.price;
        unlink(&mut self.arena, l, idx);
        if l.count == 0 {
            ladder.remove(level);
        }
        self.arena.release(idx, pos);
        out.push(cancelled(order_id, price, leaves, reason));
    }

    /// Lookahead hint for batches, stage 1: an operation on order `order_id` is coming in a
    /// while; start fetching its index entry. Changes nothing observable.
    #[inline]
    pub fn prefetch_index(&self, order_id: u64) {
        self.arena.prefetch_bucket(order_id);
    }

    /// Lookahead hint for batches, stage 2 (a few operations after stage 1): start fetching
    /// the order's slot. Changes nothing observable.
    #[inline]
    pub fn prefetch_order(&self, order_id: u64) {
        self.arena.prefetch_slot(order_id);
    }

    /// The aggregated level of one side at one price, if any order rests there. O(log L).
    pub fn level(&self, side: Side, price: i64) -> Option<LevelView> {
        let ladder = self.ladder(side);
        let l = &ladder.pool[ladder.find(price)? as usize];
        Some(LevelView {
            price: l.price,
            qty: l.qty,
            count: l.count,
        })
    }

    /// Resting orders of one side at one price, in queue order.
    pub fn orders_at(&self, side: Side, price: i64) -> Vec<RestingOrder> {
        let ladder = self.ladder(side);
        match ladder.find(price) {
            Some(li) => self.level_orders(&ladder.pool[li as usize]).collect(),
            None => Vec::new(),
        }
    }

    fn level_orders<'a>(&'a self, level: &Level) -> impl Iterator<Item = RestingOrder> + 'a {
        let (mut m, price) = (level.head, level.price);
        std::iter::from_fn(move || {
            if m == NIL {
                return None;
            }
            let s = &self.arena.slots[m as usize];
            m = s.next;
            Some(RestingOrder {
                order_id: s.order_id,
                account: s.account,
                side: s.side,
                price,
                leaves: s.leaves,
            })
        })
    }

    /// Check every structural invariant; `Err` names the first one broken. Used by tests after
    /// every operation; O(n).
    pub fn check_invariants(&self) -> Result<(), String> {
        if let (Some(b), Some(a)) = (self.bids.best(), self.asks.best()) {
            if b.price >= a.price {
                return Err(format!("crossed: bid {} >= ask {}", b.price, a.price));
            }
        }
        let mut total = 0usize;
        for ladder in [&self.bids, &self.asks] {
            ladder.check()?;
            for &(_, li) in &ladder.order {
                let level = &ladder.pool[li as usize];
                if level.count == 0 {
                    // An emptied level kept in place; `Ladder::check` saw that it is empty.
                    continue;
                }
                let (mut qty, mut count, mut prev, mut m) = (0u64, 0u32, NIL, level.head);
                while m != NIL {
                    let s = &self.arena.slots[m as usize];
                    if s.prev != prev || s.level != li || s.side != ladder.side {
                        return Err(format!("broken list at price {}", level.price));
                    }
                    if s.leaves == 0 || self.arena.get(s.order_id) != Some(m) {
                        return Err(format!("order {} empty or unindexed", s.order_id));
                    }
                    qty += s.leaves;
                    count += 1;
                    prev = m;
                    m = s.next;
                }
                if prev != level.tail || qty != level.qty || count != level.count || count == 0 {
                    return Err(format!("level {} totals disagree", level.price));
                }
                total += count as usize;
            }
        }
        if total != self.arena.used() {
            return Err(format!(
                "{} orders in levels, {} slots used",
                total,
                self.arena.used()
            ));
        }
        Ok(())
    }
}

impl Matching for Book {
    fn submit(&mut self, req: &OrderRequest, out: &mut Vec<Event>) {
        let market = req.order_type == OrderType::Market;
        let price = if market { 0 } else { req.price };
        let reject = |reason| rejected(req.order_id, price, req.qty, reason);
        let may_rest = !market && req.tif == TimeInForce::Gtc;
        if req.order_id == 0 {
            return out.push(reject(Reason::InvalidOrder));
        }
        if req.qty == 0 || req.qty > self.max_qty {
            return out.push(reject(Reason::InvalidQty));
        }
        if !market && price <= 0 {
            return out.push(reject(Reason::InvalidPrice));
        }
        if req.post_only && !may_rest {
            return out.push(reject(Reason::InvalidOrder));
        }
        let home = self.arena.home(req.order_id);
        if self.arena.find_from(req.order_id, home).is_some() {
            return out.push(reject(Reason::DuplicateOrderId));
        }
        if may_rest && self.arena.is_full() {
            return out.push(reject(Reason::BookFull));
        }
        let limit = match (market, req.side) {
            (false, _) => price,
            (true, Side::Buy) => i64::MAX,
            (true, Side::Sell) => i64::MIN,
        };
        let crosses = self.would_cross(req.side, limit);
        if req.post_only && crosses {
            return out.push(reject(Reason::WouldCross));
        }
        out.push(Event {
            price,
            qty: req.qty,
            leaves: req.qty,
            ..Event::new(EventKind::Accepted, Reason::None, req.order_id)
        });
        let leaves = if crosses {
            let t = Taker {
                order_id: req.order_id,
                account: req.account,
                side: req.side,
                limit,
                event_price: price,
                stp: req.stp,
                qty: req.qty,
            };
            if req.tif == TimeInForce::Fok && !self.fok_fillable(&t) {
                return out.push(cancelled(req.order_id, price, req.qty, Reason::FokUnfilled));
            }
            match self.match_taker(&t, out) {
                Some(leaves) if leaves > 0 => leaves,
                _ => return,
            }
        } else if req.tif == TimeInForce::Fok {
            // Nothing crosses: the order cannot fill at all (its qty is > 0).
            return out.push(cancelled(req.order_id, price, req.qty, Reason::FokUnfilled));
        } else {
            req.qty
        };
        if !may_rest {
            return out.push(cancelled(req.order_id, price, leaves, Reason::IocRemainder));
        }
        // Rest: find (or make) the level first, so the slot is written once, already linked
        // at the level's tail.
        let ladder = match req.side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let li = ladder.find_or_insert(price);
        let level = &mut ladder.pool[li as usize];
        let tail = level.tail;
        let idx = self.arena.alloc(
            Slot {
                order_id: req.order_id,
                leaves,
                account: req.account,
                prev: tail,
                next: NIL,
                level: li,
                side: req.side,
                stp: req.stp,
                post_only: req.post_only,
            },
            home,
        );
        if tail != NIL {
            self.arena.slots[tail as usize].next = idx;
        } else {
            level.head = idx;
        }
        level.tail = idx;
        level.qty += leaves;
        level.count += 1;
    }

    fn cancel(&mut self, order_id: u64, out: &mut Vec<Event>) {
        self.cancel_with_reason(order_id, Reason::User, out);
    }

    fn modify(&mut self, order_id: u64, new_price: i64, new_qty: u64, out: &mut Vec<Event>) {
        let reject = |reason| rejected(order_id, new_price, new_qty, reason);
        if new_qty == 0 || new_qty > self.max_qty {
            return out.push(reject(Reason::InvalidQty));
        }
        if new_price <= 0 {
            return out.push(reject(Reason::InvalidPrice));
        }
        let Some(idx) = self.arena.get(order_id) else {
            return out.push(reject(Reason::UnknownOrder));
        };
        let s = self.arena.slots[idx as usize];
        let price = self.price_of(&s);
        let replaced = Event {
            price: new_price,
            qty: new_qty,
            leaves: new_qty,
            ..Event::new(EventKind::Replaced, Reason::None, order_id)
        };
        if new_price == price && new_qty <= s.leaves {
            // Reduce in place: the order keeps its queue position.
            self.ladder_mut(s.side).pool[s.level as usize].qty -= s.leaves - new_qty;
            self.arena.slots[idx as usize].leaves = new_qty;
            return out.push(replaced);
        }
        if s.post_only && self.would_cross(s.side, new_price) {
            return out.push(reject(Reason::WouldCross));
        }
        // Lose priority: out of the book, then in again as a GTC limit with the same id.
        self.take_out(idx);
        out.push(replaced);
        let t = Taker {
            order_id,
            account: s.account,
            side: s.side,
            limit: new_price,
            event_price: new_price,
            stp: s.stp,
            qty: new_qty,
        };
        match self.match_taker(&t, out) {
            Some(leaves) if leaves > 0 => {
                self.arena.slots[idx as usize].leaves = leaves;
                self.place(idx, new_price);
            }
            _ => self.arena.free(idx),
        }
    }

    fn best_bid(&self) -> Option<(i64, u64)> {
        self.bids.best().map(|l| (l.price, l.qty))
    }

    fn best_ask(&self) -> Option<(i64, u64)> {
        self.asks.best().map(|l| (l.price, l.qty))
    }

    fn depth_side(&self, side: Side, n: usize) -> Vec<LevelView> {
        self.ladder(side).depth(n)
    }

    fn orders(&self, side: Side) -> Vec<RestingOrder> {
        self.ladder(side)
            .best_first()
            .flat_map(|l| self.level_orders(l))
            .collect()
    }

    fn order(&self, order_id: u64) -> Option<RestingOrder> {
        let s = &self.arena.slots[self.arena.get(order_id)? as usize];
        Some(RestingOrder {
            order_id: s.order_id,
            account: s.account,
            side: s.side,
            price: self.price_of(s),
            leaves: s.leaves,
        })
    }

    fn len(&self) -> usize {
        self.arena.used()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_lookup_matches_depth() {
        let mut b = Book::with_capacity(16);
        let mut out = Vec::new();
        for (id, price, qty) in [(1, 100, 5), (2, 100, 7), (3, 99, 1)] {
            b.submit(&OrderRequest::limit(id, 1, Side::Buy, price, qty), &mut out);
        }
        assert_eq!(
            b.level(Side::Buy, 100),
            Some(LevelView {
                price: 100,
                qty: 12,
                count: 2
            })
        );
        assert_eq!(b.level(Side::Buy, 99).map(|l| l.qty), Some(1));
        assert_eq!(b.level(Side::Buy, 98), None);
        assert_eq!(b.level(Side::Sell, 100), None);
    }
}
