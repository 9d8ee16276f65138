//! Price levels of one side: a pool of level records with stable indices, their price order,
//! and a price index.
//!
//! Owns: for each occupied price, the head and tail slot of its FIFO list, the total resting
//! quantity and the order count (a [`Level`] in `pool`, at an index that never changes while
//! the level exists, so every resting order keeps its level's index in its slot and a cancel
//! reaches its level without any search); the price order of the levels (`order`: `(key,
//! pool index)` sorted by key, where the key is the price for bids and minus the price for
//! asks, so the best level is last on both sides: O(1) to read and to pop while sweeping, and
//! inserts and removals memmove only the 16-byte entries on the better-priced side, few, near
//! the touch); and an open-addressing map from price to pool index, so a submit finds an
//! existing level in O(1) instead of bisecting `order`.
//!
//! Invariants: `order` is strictly ascending by key (no two levels share a price); each entry
//! names a live pool record whose price gives that key, and the price index maps that price
//! to that record and holds nothing else; every live record has `count >= 1`, `qty` equal to
//! the sum of its orders' leaves, and `head`/`tail` at the ends of a list of `count` slots; a
//! pool index is either in `order` or in `free`, never both. All buffers only grow (to the
//! peak number of levels), so after warm-up nothing allocates.
//!
//! Cost: best O(1); level of a resting order O(1) (index in the slot); level by price O(1)
//! expected (price index); adding or removing a level O(log L) search plus a memmove of the
//! order entries on the better-priced side of it.

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

    #[inline]
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
    /// Price -> pool index of the live levels, so finding a level by price is O(1).
    index: PriceIndex,
}

impl Ladder {
    pub fn new(side: Side, reserve: usize) -> Self {
        Ladder {
            side,
            pool: Vec::with_capacity(reserve),
            order: Vec::with_capacity(reserve),
            free: Vec::with_capacity(reserve),
            index: PriceIndex::with_capacity(reserve),
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
        // Most traffic is at or near the touch: check the best level before bisecting.
        if let Some(&(last, _)) = self.order.last() {
            if last == key {
                return Ok(self.order.len() - 1);
            }
            if last < key {
                return Err(self.order.len());
            }
        }
        self.order.binary_search_by_key(&key, |&(k, _)| k)
    }

    /// Pool index of the level at `price`, if any order rests there.
    #[inline]
    pub fn find(&self, price: i64) -> Option<u32> {
        self.index.get(price)
    }

    /// Pool index of the level at `price`, creating an empty one if missing.
    #[inline]
    pub fn find_or_insert(&mut self, price: i64) -> u32 {
        if let Some(idx) = self.index.get(price) {
            return idx;
        }
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

    /// Remove the (empty) level at pool index `idx` from the order and free its record.
    #[inline]
    pub fn remove(&mut self, idx: u32) {
        let price = self.pool[idx as usize].price;
        match self.position(price) {
            Ok(pos) => {
                self.order.remove(pos);
                self.free.push(idx);
                self.index.remove(price);
            }
            Err(_) => debug_assert!(false, "removing a level that is not in the order"),
        }
    }

    /// Remove the best level (it has emptied) and free its record.
    #[inline]
    pub fn pop_best(&mut self) {
        if let Some((_, idx)) = self.order.pop() {
            self.free.push(idx);
            self.index.remove(self.pool[idx as usize].price);
        }
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
                "{:?} level pool: {} live + {} free != {}",
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

    #[test]
    fn ladder_matches_a_sorted_set_under_churn() {
        churn(Side::Buy, 40, 20_000);
        churn(Side::Sell, 40, 20_000);
        churn(Side::Buy, 3_000, 20_000);
        churn(Side::Sell, 3_000, 20_000);
    }
}
