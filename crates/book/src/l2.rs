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
//! Cost: best O(1); set O(log L) plus a memmove of the levels better than the one changed;
//! `replace` (a whole snapshot) O(n log n) in one sort, O(n) when the levels come sorted either
//! way; `top_stats` O(k) for the top k levels of each side, no allocation.

use crate::types::{LevelView, Side};

/// Figures of the top of the book in one pass (see [`L2Book::top_stats`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TopStats {
    /// Best bid (price, qty).
    pub bid: (i64, u64),
    /// Best ask (price, qty).
    pub ask: (i64, u64),
    /// Summed quantity of the best `k` bid levels.
    pub sum_bid: u128,
    /// Summed quantity of the best `k` ask levels.
    pub sum_ask: u128,
    /// `sum(weights[i] * qty_i)` over the best `k` bid levels, added best first as `f64`.
    pub weighted_bid: f64,
    /// The same over the ask levels.
    pub weighted_ask: f64,
}

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

    /// Replace the whole book with `levels` (`(side, price, qty)`), as if the book were cleared
    /// and each level `set` in the order listed: the last level listed at a price wins and a
    /// quantity of 0 removes (or never makes) the level. Built by one stable sort per side
    /// instead of n sorted inserts (which cost O(n^2) when the levels come best first).
    pub fn replace(&mut self, levels: impl IntoIterator<Item = (Side, i64, u64)>) {
        self.bids.clear();
        self.asks.clear();
        for (side, price, qty) in levels {
            match side {
                Side::Buy => self.bids.push((price, qty)),
                Side::Sell => self.asks.push((price, qty)),
            }
        }
        for (side, v) in [(Side::Buy, &mut self.bids), (Side::Sell, &mut self.asks)] {
            // Stable: levels at one price keep their listed order, so the last one is last.
            v.sort_by_key(|&(p, _)| Self::key(side, p));
            let n = v.len();
            let mut w = 0;
            for i in 0..n {
                let (price, qty) = v[i];
                let superseded = i + 1 < n && v[i + 1].0 == price;
                if !superseded && qty != 0 {
                    v[w] = (price, qty);
                    w += 1;
                }
            }
            v.truncate(w);
        }
    }

    /// The touch and weighted sums over the best `k = weights.len()` levels of each side (fewer
    /// where a side has fewer), in one pass and without allocating; `None` when `k == 0` or a
    /// side is empty. The weighted sums add `weights[i] * (qty_i as f64)` best first, starting
    /// from 0.0: the same operations in the same order as a Python loop
    /// `w = 0.0; for i, (_, q) in enumerate(levels): w += weights[i] * q`, so bit for bit the
    /// same result (int to float conversion rounds to nearest-even in both).
    pub fn top_stats(&self, weights: &[f64]) -> Option<TopStats> {
        if weights.is_empty() {
            return None;
        }
        let bid = self.best_bid()?;
        let ask = self.best_ask()?;
        let fold = |levels: &[(i64, u64)]| {
            let mut sum: u128 = 0;
            let mut weighted = 0.0f64;
            for (&(_, q), &w) in levels.iter().rev().zip(weights) {
                sum += u128::from(q);
                weighted += w * q as f64;
            }
            (sum, weighted)
        };
        let (sum_bid, weighted_bid) = fold(&self.bids);
        let (sum_ask, weighted_ask) = fold(&self.asks);
        Some(TopStats {
            bid,
            ask,
            sum_bid,
            sum_ask,
            weighted_bid,
            weighted_ask,
        })
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

    /// The reference for `replace`: clear, then `set` each level in the order listed.
    fn replaced_by_sets(levels: &[(Side, i64, u64)]) -> L2Book {
        let mut b = L2Book::new();
        for &(side, price, qty) in levels {
            b.set(side, price, qty);
        }
        b
    }

    #[test]
    fn replace_last_listed_wins_and_zero_removes() {
        let levels = [
            (Side::Buy, 100, 5),
            (Side::Buy, 101, 7),
            (Side::Buy, 100, 9), // listed later: stands
            (Side::Buy, 99, 3),
            (Side::Buy, 99, 0), // removes 99
            (Side::Buy, 98, 0), // nothing to remove
            (Side::Sell, 103, 0),
            (Side::Sell, 103, 4), // made after the zero
            (Side::Sell, 102, 1),
        ];
        let mut b = L2Book::new();
        b.set(Side::Buy, 50, 1); // gone after the replace
        b.replace(levels);
        assert_eq!(b, replaced_by_sets(&levels));
        assert_eq!(b.bids, vec![(100, 9), (101, 7)]);
        assert_eq!(b.asks, vec![(103, 4), (102, 1)]);
        b.replace([]);
        assert_eq!(b, L2Book::new());
    }

    #[test]
    fn top_stats_sums_best_first() {
        let mut b = L2Book::new();
        assert_eq!(b.top_stats(&[1.0]), None);
        b.set(Side::Buy, 100, 4);
        b.set(Side::Buy, 99, 6);
        b.set(Side::Buy, 98, 100);
        assert_eq!(b.top_stats(&[1.0]), None); // no asks
        b.set(Side::Sell, 101, 3);
        assert_eq!(b.top_stats(&[]), None);
        let t = b.top_stats(&[1.0, 0.5]).unwrap();
        assert_eq!((t.bid, t.ask), ((100, 4), (101, 3)));
        assert_eq!((t.sum_bid, t.sum_ask), (10, 3));
        assert_eq!((t.weighted_bid, t.weighted_ask), (7.0, 3.0));
        b.set(Side::Sell, 102, u64::MAX);
        b.set(Side::Sell, 103, u64::MAX);
        let t = b.top_stats(&[1.0; 5]).unwrap();
        assert_eq!(t.sum_ask, 3 + 2 * u128::from(u64::MAX));
    }

    proptest! {
        #[test]
        fn replace_equals_sets_in_listed_order(
            levels in prop::collection::vec((any::<bool>(), 1i64..60, 0u64..4), 0..200),
            sorted in 0u8..3,
        ) {
            let mut levels: Vec<(Side, i64, u64)> = levels
                .into_iter()
                .map(|(buy, p, q)| (if buy { Side::Buy } else { Side::Sell }, p, q))
                .collect();
            // Also best first and worst first, as snapshots come (stable: repeats keep order).
            match sorted {
                1 => levels.sort_by_key(|&(_, p, _)| -p),
                2 => levels.sort_by_key(|&(_, p, _)| p),
                _ => {}
            }
            let mut b = L2Book::new();
            b.set(Side::Sell, 7, 7);
            b.replace(levels.iter().copied());
            prop_assert_eq!(b, replaced_by_sets(&levels));
        }

        #[test]
        fn top_stats_matches_depth(
            ops in prop::collection::vec((any::<bool>(), 1i64..40, 0u64..1_000_000), 0..100),
            weights in prop::collection::vec(0.0f64..2.0, 0..8),
        ) {
            let mut b = L2Book::new();
            for (buy, price, qty) in ops {
                b.set(if buy { Side::Buy } else { Side::Sell }, price, qty);
            }
            let bids = b.depth_side(Side::Buy, weights.len());
            let asks = b.depth_side(Side::Sell, weights.len());
            let got = b.top_stats(&weights);
            if bids.is_empty() || asks.is_empty() {
                prop_assert_eq!(got, None);
            } else {
                let t = got.unwrap();
                let fold = |ls: &[LevelView]| {
                    let mut w = 0.0f64;
                    for (l, x) in ls.iter().zip(&weights) {
                        w += x * l.qty as f64;
                    }
                    (ls.iter().map(|l| u128::from(l.qty)).sum::<u128>(), w)
                };
                prop_assert_eq!((t.bid, t.ask), ((bids[0].price, bids[0].qty), (asks[0].price, asks[0].qty)));
                let (sb, wb) = fold(&bids);
                let (sa, wa) = fold(&asks);
                prop_assert_eq!((t.sum_bid, t.sum_ask), (sb, sa));
                prop_assert_eq!((t.weighted_bid.to_bits(), t.weighted_ask.to_bits()), (wb.to_bits(), wa.to_bits()));
            }
        }

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
