//! Sorted price levels of one side, best level last.
//!
//! Owns: for each occupied price, the head and tail slot of its FIFO list, the total resting
//! quantity and the order count. Levels live in one `Vec` sorted so that the best price is the
//! last element: bids by ascending price, asks by descending price. That makes the best level
//! O(1) to read and to pop (the common case while sweeping), and puts the busy region near the
//! touch at the cheap end for inserts and removals (memmove of the levels behind it).
//!
//! Invariants: no two levels share a price; every level has `count >= 1`, `qty` equal to the
//! sum of its orders' leaves, and `head`/`tail` at the ends of a list of `count` slots. The
//! `Vec` only grows (to the peak number of levels), so after warm-up nothing allocates.
//!
//! Cost: best O(1); find O(log L); insert/remove O(log L) search plus a memmove of the levels
//! on the better-priced side of the change (few, near the touch).

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

/// The levels of one side.
pub(crate) struct Ladder {
    pub side: Side,
    pub levels: Vec<Level>,
}

impl Ladder {
    pub fn new(side: Side, reserve: usize) -> Self {
        Ladder {
            side,
            levels: Vec::with_capacity(reserve),
        }
    }

    /// Sort key: ascending key order puts the best price last on both sides.
    #[inline]
    fn key(&self, price: i64) -> i64 {
        match self.side {
            Side::Buy => price,
            Side::Sell => -price,
        }
    }

    /// Position of `price`: Ok(existing) or Err(insertion point).
    #[inline]
    pub fn find(&self, price: i64) -> Result<usize, usize> {
        let key = self.key(price);
        // Most traffic is at or near the touch: check the best level before bisecting.
        if let Some(last) = self.levels.last() {
            let lk = self.key(last.price);
            if lk == key {
                return Ok(self.levels.len() - 1);
            }
            if lk < key {
                return Err(self.levels.len());
            }
        }
        let side = self.side;
        self.levels.binary_search_by_key(&key, |l| match side {
            Side::Buy => l.price,
            Side::Sell => -l.price,
        })
    }

    /// Position of the level at `price`, creating an empty one if missing.
    #[inline]
    pub fn find_or_insert(&mut self, price: i64) -> usize {
        match self.find(price) {
            Ok(i) => i,
            Err(i) => {
                self.levels.insert(
                    i,
                    Level {
                        price,
                        qty: 0,
                        head: NIL,
                        tail: NIL,
                        count: 0,
                    },
                );
                i
            }
        }
    }

    #[inline]
    pub fn best(&self) -> Option<&Level> {
        self.levels.last()
    }

    /// Up to `n` levels, best first.
    pub fn depth(&self, n: usize) -> Vec<LevelView> {
        self.levels
            .iter()
            .rev()
            .take(n)
            .map(|l| LevelView {
                price: l.price,
                qty: l.qty,
                count: l.count,
            })
            .collect()
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
