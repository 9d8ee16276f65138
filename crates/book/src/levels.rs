//! Price levels of one side: a pool of level records with stable indices, their price order,
//! and a price index.
//!
//! Owns: for each occupied price, the head and tail slot of its FIFO list, the total resting
//! quantity and the order count (a [`Level`] in `pool`, at an index that never changes while
//! the level exists, so every resting order keeps its level's index in its slot and a cancel
//! reaches its level without any search); the price order of the levels (`order`: `(key,
//! pool index)` sorted by key, where the key is the price for bids and minus the price for
//! asks, so the best level is last on both sides: O(1) to read and to pop while sweeping, and
//! an insert memmoves only the 16-byte entries on the better-priced side); and an
//! open-addressing map from price to pool index, so a submit finds an existing level in O(1)
//! instead of bisecting `order`.
//!
//! A level that empties behind the touch is not taken out of `order` at once: it stays in
//! place with `count == 0` (an *emptied* level), which costs no search and no memmove (the
//! memmove of a deep level's removal moves every better-priced entry: thousands of bytes on
//! a deep book). An order that arrives at its price again reuses it, found by the price
//! index. Queries skip emptied levels; when they outnumber the live ones by `EMPTY_SLACK`,
//! one pass drops them all (`compact`). The best level always holds orders: when it empties,
//! it leaves with every emptied level right behind it.
//!
//! Invariants: `order` is strictly ascending by key (no two levels share a price); each entry
//! names a pool record whose price gives that key, and the price index maps that price to that
//! record and holds nothing else; every record in `order` has `qty` equal to the sum of its
//! orders' leaves and `head`/`tail` at the ends of a list of `count` slots; the records with
//! `count == 0` (empty list, `qty` 0) number `empty` and the last entry is not one of them; a
//! pool index is either in `order` or in `free`, never both. All buffers only grow, to the
//! peak number of live levels plus at most as many emptied ones and `EMPTY_SLACK`, so after
//! warm-up nothing allocates.
//!
//! Cost: best O(1); level of a resting order O(1) (index in the slot); level by price O(1)
//! expected (price index); adding a level O(log d) search (d = its distance in ticks from the
//! touch, bounded by the number of levels) plus a memmove of the entries on its
//! better-priced side; an emptied level O(1) (the best one O(1) per level popped), plus an
//! O(L) compaction at most once per `EMPTY_SLACK` + (live levels) removals.

use crate::arena::NIL;
use crate::types::{LevelView, Side};

/// One price level.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Level {
    pub price: i64,
    pub qty: u64,
    pub head: u32,
    pub tail: u32,
    pub count: u32,
}

/// Open-addressing map from price to pool index (linear probing, load <= 1/2, backward-shift
/// deletion, so no tombstones). Grows by doubling when a new peak of levels needs it.
struct PriceIndex {
    /// `(price, pool index)`; `EMPTY_PRICE` marks a free bucket (a resting price is > 0).
    buckets: Vec<(i64, u32)>,
    mask: usize,
    shift: u32,
    len: usize,
}

const EMPTY_PRICE: i64 = i64::MIN;

impl PriceIndex {
    fn with_capacity(levels: usize) -> Self {
        let n = (levels * 2).next_power_of_two().max(16);
        PriceIndex {
            buckets: vec![(EMPTY_PRICE, NIL); n],
            mask: n - 1,
            shift: 64 - n.trailing_zeros(),
            len: 0,
        }
    }

    /// Home bucket: Fibonacci hashing of the price (neighbouring ticks spread out).
    #[inline]
    fn home(&self, price: i64) -> usize {
        ((price as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    #[inline(always)]
    fn get(&self, price: i64) -> Option<u32> {
        let mut i = self.home(price);
        loop {
            let (p, idx) = self.buckets[i];
            if p == price {
                return Some(idx);
            }
            if p == EMPTY_PRICE {
                return None;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Add `price` (not present).
    fn insert(&mut self, price: i64, idx: u32) {
        if (self.len + 1) * 2 > self.buckets.len() {
            let old = std::mem::replace(self, PriceIndex::with_capacity(self.buckets.len()));
            for &(p, i) in &old.buckets {
                if p != EMPTY_PRICE {
                    self.insert(p, i);
                }
            }
        }
        let mut i = self.home(price);
        while self.buckets[i].0 != EMPTY_PRICE {
            i = (i + 1) & self.mask;
        }
        self.buckets[i] = (price, idx);
        self.len += 1;
    }

    /// Remove `price` (present).
    fn remove(&mut self, price: i64) {
        let mut i = self.home(price);
        loop {
            let p = self.buckets[i].0;
            if p == price {
                break;
            }
            if p == EMPTY_PRICE {
                debug_assert!(false, "removing a price that is not indexed");
                return;
            }
            i = (i + 1) & self.mask;
        }
        // Backward shift: pull later members of the run into the hole when the hole lies on
        // their probe path (between their home and where they sit).
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let b = self.buckets[j];
            if b.0 == EMPTY_PRICE {
                break;
            }
            let k = self.home(b.0);
            if (j.wrapping_sub(k) & self.mask) >= (j.wrapping_sub(i) & self.mask) {
                self.buckets[i] = b;
                i = j;
            }
        }
        self.buckets[i] = (EMPTY_PRICE, NIL);
        self.len -= 1;
    }
}

/// The levels of one side.
pub(crate) struct Ladder {
    pub side: Side,
    /// Level records by stable index; the free ones are listed in `free`.
    pub pool: Vec<Level>,
    /// `(key, pool index)` of the live levels, ascending by key: best last.
    pub order: Vec<(i64, u32)>,
    free: Vec<u32>,
    /// Price -> pool index of the levels in `order`, so finding a level by price is O(1).
    index: PriceIndex,
    /// Levels in `order` (and in the price index) that hold no order: emptied behind the
    /// touch and kept in place, so that removing them costs no search and no memmove, and an
    /// order arriving at that price again reuses them. Never the last entry of `order`.
    empty: usize,
}

/// Emptied levels kept beyond the number of live ones before [`Ladder::compact`] drops them.
const EMPTY_SLACK: usize = 64;

impl Ladder {
    pub fn new(side: Side, reserve: usize) -> Self {
        Ladder {
            side,
            pool: Vec::with_capacity(reserve),
            order: Vec::with_capacity(reserve),
            free: Vec::with_capacity(reserve),
            index: PriceIndex::with_capacity(reserve),
            empty: 0,
        }
    }

    /// Sort key: ascending key order puts the best price last on both sides.
    #[inline]
    fn key(&self, price: i64) -> i64 {
        match self.side {
            Side::Buy => price,
            Side::Sell => price.wrapping_neg(),
        }
    }

    /// Position in `order` of `price`: Ok(existing) or Err(insertion point).
    #[inline]
    fn position(&self, price: i64) -> Result<usize, usize> {
        let key = self.key(price);
        let Some(&(best, _)) = self.order.last() else {
            return Err(0);
        };
        // Most traffic is at or near the touch: check the best level before bisecting.
        let last = self.order.len() - 1;
        if best == key {
            return Ok(last);
        }
        if best < key {
            return Err(last + 1);
        }
        // Keys are distinct integers, so the entry `n` places before the best is at least `n`
        // below the best key: a key `d` below the best sits at most `d` places before the end,
        // and every entry further back is below it. Bisect only that tail: a level a few ticks
        // behind the touch is found in a few steps, however deep the side. (Keys of one side
        // share a sign, so `best - key` cannot overflow; `checked_sub` keeps that local.)
        let lo = match best.checked_sub(key) {
            Some(d) if (d as u64) < last as u64 => last - d as usize,
            _ => 0,
        };
        match self.order[lo..].binary_search_by_key(&key, |&(k, _)| k) {
            Ok(p) => Ok(lo + p),
            Err(p) => Err(lo + p),
        }
    }

    /// Pool index of the level at `price`, if any order rests there.
    #[inline]
    pub fn find(&self, price: i64) -> Option<u32> {
        self.index
            .get(price)
            .filter(|&idx| self.pool[idx as usize].count > 0)
    }

    /// Pool index of the level at `price`, creating an empty one if missing; the caller puts
    /// an order in it at once.
    #[inline(always)]
    pub fn find_or_insert(&mut self, price: i64) -> u32 {
        match self.index.get(price) {
            Some(idx) => {
                if self.pool[idx as usize].count == 0 {
                    // An emptied level kept in place comes back to life.
                    self.empty -= 1;
                }
                idx
            }
            None => self.insert_level(price),
        }
    }

    /// Create the (missing) level at `price`; out of line, so the common case above stays
    /// small where it is inlined.
    #[inline(never)]
    fn insert_level(&mut self, price: i64) -> u32 {
        match self.position(price) {
            Ok(pos) => {
                debug_assert!(false, "a live level missing from the price index");
                self.order[pos].1
            }
            Err(pos) => {
                let level = Level {
                    price,
                    qty: 0,
                    head: NIL,
                    tail: NIL,
                    count: 0,
                };
                let idx = match self.free.pop() {
                    Some(idx) => {
                        self.pool[idx as usize] = level;
                        idx
                    }
                    None => {
                        self.pool.push(level);
                        (self.pool.len() - 1) as u32
                    }
                };
                self.order.insert(pos, (self.key(price), idx));
                self.index.insert(price, idx);
                idx
            }
        }
    }

    /// The level at pool index `idx` has emptied. The best level leaves at once (with any
    /// emptied levels right behind it, so the best always holds orders); any other stays in
    /// place, marked empty, until an order arrives at its price or a compaction drops it: no
    /// search and no memmove of the better-priced entries, whose number grows with the depth
    /// of the level.
    #[inline]
    pub fn remove(&mut self, idx: u32) {
        debug_assert_eq!(self.pool[idx as usize].count, 0, "removing a live level");
        if self.best_index() == Some(idx) {
            self.pop_best();
            return;
        }
        self.empty += 1;
        if self.empty > self.order.len() - self.empty + EMPTY_SLACK {
            self.compact();
        }
    }

    /// Remove the best level (it has emptied) and free its record, then any emptied levels
    /// that are now at the end, so the new best holds orders.
    #[inline]
    pub fn pop_best(&mut self) {
        if let Some((_, idx)) = self.order.pop() {
            self.release(idx);
        }
        while let Some(&(_, idx)) = self.order.last() {
            if self.pool[idx as usize].count > 0 {
                break;
            }
            self.order.pop();
            self.empty -= 1;
            self.release(idx);
        }
    }

    /// Free the record of a level that has left `order`, and unindex its price.
    #[inline]
    fn release(&mut self, idx: u32) {
        self.free.push(idx);
        self.index.remove(self.pool[idx as usize].price);
    }

    /// Drop every emptied level from `order`, in one pass. Runs when the emptied levels
    /// outnumber the live ones by [`EMPTY_SLACK`], so its O(L) cost is spread over at least
    /// that many removals, and `order` never holds more than about twice the live levels.
    #[cold]
    #[inline(never)]
    fn compact(&mut self) {
        let Ladder {
            pool,
            order,
            free,
            index,
            ..
        } = self;
        order.retain(|&(_, idx)| {
            let level = &pool[idx as usize];
            if level.count > 0 {
                return true;
            }
            free.push(idx);
            index.remove(level.price);
            false
        });
        self.empty = 0;
    }

    /// Pool index of the best level.
    #[inline]
    pub fn best_index(&self) -> Option<u32> {
        self.order.last().map(|&(_, idx)| idx)
    }

    #[inline]
    pub fn best(&self) -> Option<&Level> {
        self.order.last().map(|&(_, idx)| &self.pool[idx as usize])
    }

    /// The live levels, best first.
    pub fn best_first(&self) -> impl Iterator<Item = &Level> + '_ {
        self.order
            .iter()
            .rev()
            .map(|&(_, idx)| &self.pool[idx as usize])
            .filter(|l| l.count > 0)
    }

    /// Up to `n` levels, best first.
    pub fn depth(&self, n: usize) -> Vec<LevelView> {
        self.best_first()
            .take(n)
            .map(|l| LevelView {
                price: l.price,
                qty: l.qty,
                count: l.count,
            })
            .collect()
    }

    /// Check the order and pool bookkeeping (not the lists: the book does that).
    pub fn check(&self) -> Result<(), String> {
        for w in self.order.windows(2) {
            if w[0].0 >= w[1].0 {
                return Err(format!("{:?} levels out of order", self.side));
            }
        }
        for &(key, idx) in &self.order {
            let Some(level) = self.pool.get(idx as usize) else {
                return Err(format!(
                    "{:?} level index {idx} outside the pool",
                    self.side
                ));
            };
            if self.key(level.price) != key {
                return Err(format!(
                    "{:?} level {} has a stale key",
                    self.side, level.price
                ));
            }
            if self.index.get(level.price) != Some(idx) {
                return Err(format!(
                    "{:?} level {} is not indexed",
                    self.side, level.price
                ));
            }
            if level.count == 0 && (level.qty != 0 || level.head != NIL || level.tail != NIL) {
                return Err(format!(
                    "{:?} level {} counts no order but is not empty",
                    self.side, level.price
                ));
            }
        }
        let empty = self
            .order
            .iter()
            .filter(|&&(_, idx)| self.pool[idx as usize].count == 0)
            .count();
        if empty != self.empty {
            return Err(format!(
                "{:?} ladder holds {empty} emptied levels but counts {}",
                self.side, self.empty
            ));
        }
        if self.best().is_some_and(|l| l.count == 0) {
            return Err(format!("{:?} best level holds no order", self.side));
        }
        if self.index.len != self.order.len() {
            return Err(format!(
                "{:?} price index holds {} levels, the order {}",
                self.side,
                self.index.len,
                self.order.len()
            ));
        }
        if self.order.len() + self.free.len() != self.pool.len() {
            return Err(format!(
                "{:?} level pool: {} in order + {} free != {}",
                self.side,
                self.order.len(),
                self.free.len(),
                self.pool.len()
            ));
        }
        Ok(())
    }

    /// True if an order on `taker_side` with limit `limit` would trade against a level priced
    /// `level_price` on this (the opposite) side.
    #[inline]
    pub fn crosses(taker_side: Side, limit: i64, level_price: i64) -> bool {
        match taker_side {
            Side::Buy => level_price <= limit,
            Side::Sell => level_price >= limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Add and remove levels at pseudo-random prices and compare the ladder with a set after
    /// every step: lookups by price, best-first order, and the bookkeeping `check` verifies.
    /// Starting from a tiny reserve forces the price index to grow and its runs to wrap.
    fn churn(side: Side, span: u64, steps: u64) {
        let mut ladder = Ladder::new(side, 1);
        let mut model = BTreeSet::new();
        let mut x: u64 = 7;
        for step in 0..steps {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // Prices spaced by 1 tick or by 1024 (same low bits), all > 0.
            let price = if x >> 63 == 0 {
                (x >> 33) % span + 1
            } else {
                ((x >> 33) % span + 1) << 10
            } as i64;
            if model.remove(&price) {
                let idx = ladder.find(price).expect("live level is found");
                // The book removes a level once its last order has left.
                ladder.pool[idx as usize].count = 0;
                if ladder.best_index() == Some(idx) && step % 2 == 0 {
                    ladder.pop_best();
                } else {
                    ladder.remove(idx);
                }
            } else {
                let idx = ladder.find_or_insert(price);
                assert_eq!(ladder.pool[idx as usize].price, price);
                // Levels in a real book always hold an order; the ladder does not look.
                ladder.pool[idx as usize].count = 1;
                model.insert(price);
            }
            ladder
                .check()
                .unwrap_or_else(|e| panic!("step {step}: {e}"));
            let got: Vec<i64> = ladder.best_first().map(|l| l.price).collect();
            let want: Vec<i64> = match side {
                Side::Buy => model.iter().rev().copied().collect(),
                Side::Sell => model.iter().copied().collect(),
            };
            assert_eq!(got, want, "step {step}");
            for probe in [price, price + 1, price - 1] {
                assert_eq!(
                    ladder.find(probe).map(|i| ladder.pool[i as usize].price),
                    model.contains(&probe).then_some(probe),
                    "step {step} probe {probe}"
                );
            }
        }
    }

    /// Emptying many levels behind the touch keeps them in place until they outnumber the
    /// live ones by `EMPTY_SLACK`, then one compaction drops them all; the best level always
    /// holds orders, and an emptied level is reused when its price comes back.
    #[test]
    fn emptied_levels_are_kept_reused_and_compacted() {
        let mut ladder = Ladder::new(Side::Buy, 4);
        let n = 500;
        for price in 1..=n {
            let idx = ladder.find_or_insert(price);
            ladder.pool[idx as usize].count = 1;
        }
        // Empty every level but the best, deepest first.
        for price in 1..n {
            let idx = ladder.find(price).expect("live level");
            ladder.pool[idx as usize].count = 0;
            ladder.remove(idx);
            ladder
                .check()
                .unwrap_or_else(|e| panic!("price {price}: {e}"));
            assert_eq!(ladder.find(price), None, "an emptied level is not found");
            assert!(ladder.order.len() <= 2 * (n as usize - price as usize) + EMPTY_SLACK + 2);
        }
        assert!(ladder.order.len() < n as usize, "a compaction ran");
        assert_eq!(
            ladder.best_first().map(|l| l.price).collect::<Vec<_>>(),
            vec![n]
        );
        // A price whose level is still kept empty comes back in the same record.
        let kept = ladder
            .order
            .iter()
            .map(|&(_, idx)| ladder.pool[idx as usize].price)
            .find(|&p| p != n);
        if let Some(price) = kept {
            let before = ladder.index.get(price);
            let idx = ladder.find_or_insert(price);
            assert_eq!(Some(idx), before);
            ladder.pool[idx as usize].count = 1;
            ladder.check().expect("revived level");
            assert_eq!(ladder.find(price), Some(idx));
        }
        // Emptying the best drops it and every emptied level behind it.
        for level in ladder.best_first().map(|l| l.price).collect::<Vec<_>>() {
            let idx = ladder.find(level).expect("live");
            ladder.pool[idx as usize].count = 0;
            ladder.remove(idx);
            ladder.check().expect("after emptying");
        }
        assert!(ladder.order.is_empty() && ladder.best().is_none());
    }

    #[test]
    fn ladder_matches_a_sorted_set_under_churn() {
        churn(Side::Buy, 40, 20_000);
        churn(Side::Sell, 40, 20_000);
        churn(Side::Buy, 3_000, 20_000);
        churn(Side::Sell, 3_000, 20_000);
    }
}
