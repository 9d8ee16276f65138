//! The L2 (price -> total quantity) book for market data.
//!
//! Owns: two sides of aggregated levels, kept as `Vec<(price, qty)>` sorted with the best price
//! last (as in `levels.rs`), updated by absolute level updates: `set(side, price, qty)` makes
//! the level's quantity `qty`, and `qty == 0` removes it (removing a level that is not there is
//! normal for exchange feeds, so it is not an error). Feeds such as Binance's depth diffs and
//! the venue's own UDP feed are applied through this type.
//!
//! Invariants: prices unique per side, quantities > 0. The book may be crossed transiently
//! while a feed message is half applied; `is_crossed` lets the caller check after a whole
//! message.
//!
//! Cost: best O(1); set O(log L) plus a memmove of the levels better than the one changed.

use crate::types::{LevelView, Side};

/// Aggregated book of one instrument.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct L2Book {
    bids: Vec<(i64, u64)>,
    asks: Vec<(i64, u64)>,
}

impl L2Book {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    fn side(&self, side: Side) -> &Vec<(i64, u64)> {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    #[inline]
    fn key(side: Side, price: i64) -> i64 {
        match side {
            Side::Buy => price,
            Side::Sell => -price,
        }
    }

    /// Set the absolute quantity of a level; 0 removes it.
    pub fn set(&mut self, side: Side, price: i64, qty: u64) {
        let levels = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let key = Self::key(side, price);
        match levels.binary_search_by_key(&key, |&(p, _)| Self::key(side, p)) {
            Ok(i) if qty == 0 => {
                levels.remove(i);
            }
            Ok(i) => levels[i].1 = qty,
            Err(_) if qty == 0 => {}
            Err(i) => levels.insert(i, (price, qty)),
        }
    }

    /// Remove every level.
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }

    /// Quantity at a price, 0 when the level is empty.
    pub fn qty_at(&self, side: Side, price: i64) -> u64 {
        let levels = self.side(side);
        let key = Self::key(side, price);
        levels
            .binary_search_by_key(&key, |&(p, _)| Self::key(side, p))
            .map(|i| levels[i].1)
            .unwrap_or(0)
    }

    /// Best bid (price, qty).
    pub fn best_bid(&self) -> Option<(i64, u64)> {
        self.bids.last().copied()
    }

    /// Best ask (price, qty).
    pub fn best_ask(&self) -> Option<(i64, u64)> {
        self.asks.last().copied()
    }

    /// Up to `n` levels of one side, best first (order count is reported as 0: L2 data has none).
    pub fn depth_side(&self, side: Side, n: usize) -> Vec<LevelView> {
        self.side(side)
            .iter()
            .rev()
            .take(n)
            .map(|&(price, qty)| LevelView {
                price,
                qty,
                count: 0,
            })
            .collect()
    }

    /// Number of levels on a side.
    pub fn levels(&self, side: Side) -> usize {
        self.side(side).len()
    }

    /// True if best bid >= best ask.
    pub fn is_crossed(&self) -> bool {
        matches!((self.best_bid(), self.best_ask()), (Some((b, _)), Some((a, _))) if b >= a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn set_update_remove() {
        let mut b = L2Book::new();
        b.set(Side::Buy, 100, 5);
        b.set(Side::Buy, 101, 7);
        b.set(Side::Sell, 103, 2);
        b.set(Side::Sell, 102, 1);
        assert_eq!(b.best_bid(), Some((101, 7)));
        assert_eq!(b.best_ask(), Some((102, 1)));
        b.set(Side::Buy, 101, 0);
        b.set(Side::Buy, 99, 0); // missing level: no-op
        assert_eq!(b.best_bid(), Some((100, 5)));
        b.set(Side::Sell, 102, 9);
        assert_eq!(b.qty_at(Side::Sell, 102), 9);
        let asks: Vec<i64> = b
            .depth_side(Side::Sell, 5)
            .iter()
            .map(|l| l.price)
            .collect();
        assert_eq!(asks, vec![102, 103]);
        assert!(!b.is_crossed());
        b.set(Side::Buy, 104, 1);
        assert!(b.is_crossed());
    }

    proptest! {
        #[test]
        fn matches_btreemap_model(ops in prop::collection::vec((any::<bool>(), 1i64..40, 0u64..4), 0..300)) {
            let mut b = L2Book::new();
            let mut model: [BTreeMap<i64, u64>; 2] = [BTreeMap::new(), BTreeMap::new()];
            for (buy, price, qty) in ops {
                let side = if buy { Side::Buy } else { Side::Sell };
                b.set(side, price, qty);
                let m = &mut model[side as usize];
                if qty == 0 { m.remove(&price); } else { m.insert(price, qty); }
                let bids: Vec<(i64, u64)> = model[0].iter().rev().map(|(p, q)| (*p, *q)).collect();
                let asks: Vec<(i64, u64)> = model[1].iter().map(|(p, q)| (*p, *q)).collect();
                let got_b: Vec<(i64, u64)> = b.depth_side(Side::Buy, 1000).iter().map(|l| (l.price, l.qty)).collect();
                let got_a: Vec<(i64, u64)> = b.depth_side(Side::Sell, 1000).iter().map(|l| (l.price, l.qty)).collect();
                prop_assert_eq!(got_b, bids);
                prop_assert_eq!(got_a, asks);
            }
        }
    }
}
