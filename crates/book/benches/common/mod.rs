//! Shared by the `book` (criterion) and `latency` benches: fixed-seed generation of realistic
//! book states and operation streams, and one function that applies an operation to any
//! [`Matching`] book, so the fast book and the reference see exactly the same input.
//!
//! Owns:
//! * [`Rng`]: a SplitMix64 generator written out here, so a seed gives the same stream on every
//!   machine and with every version of the `rand` crate (whose `SmallRng` promises neither).
//! * [`Shape`]: where orders sit. A regime of `n` resting orders spreads them over
//!   `clamp(n / 20, 2, 2000)` price levels per side around a mid of 1,000,000 ticks (so
//!   about 2.5 orders per level at 10 resting orders, 10 at 1k, 25 at 100k), with 30% of the orders
//!   drawn from the fifth of the levels nearest the touch, so the touch is the busiest place.
//!   Quantities are 1..=100 lots, accounts 1..=1000 (takers in the sweep scenarios use
//!   account 0, so they never meet self-trade prevention).
//! * [`mixed_stream`]: a stream of about 50% passive adds near the touch, 35% cancels of a
//!   random resting order, 10% aggressive orders (IOC limits up to two ticks through the
//!   opposite touch, one in ten a market order) and 5% modifies (half reduce in place and keep
//!   priority, half move to a new passive price). A feedback rule keeps the number of resting
//!   orders within 2% (at least 2 orders) of its start: an add becomes a cancel above the band,
//!   a cancel becomes an add below it, so the book stays in its regime however long the stream.
//!
//! Invariants: every generated stream is valid for the book state it starts from: cancels and
//! modifies name resting orders, adds never cross. The generator runs each operation through a
//! fast [`Book`] used as a model to know which ids rest; since the differential tests prove the
//! reference yields the same events, the stream is valid for both books.
//!
//! Cost: generation is O(1) expected per operation plus the model book's own cost, and happens
//! before any timing starts; a stream op is 56 bytes.

#![allow(
    dead_code,
    reason = "shared by two bench binaries; each one uses a different subset"
)]

use std::collections::HashMap;

use tradecore_book::{Book, Event, EventKind, Matching, OrderRequest, Side, TimeInForce};

/// Seed of every stream the benches generate.
pub const SEED: u64 = 0x7EAD_C0DE_2024_0002;

/// Mid price of a fresh book, in ticks.
pub const START_MID: i64 = 1_000_000;

/// SplitMix64: tiny, fast, and stable by construction.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// Next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0), by multiply-shift.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Buy or sell with equal odds.
    #[inline]
    pub fn side(&mut self) -> Side {
        if self.next_u64() & 1 == 0 {
            Side::Buy
        } else {
            Side::Sell
        }
    }
}

/// The operation kinds the latency bench reports separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// A passive order that rests.
    Add = 0,
    /// Cancel of a resting order.
    Cancel = 1,
    /// Modify (reduce in place or move).
    Modify = 2,
    /// An order that takes liquidity (IOC limit or market).
    Aggressive = 3,
}

impl OpKind {
    /// Every kind, in discriminant order.
    pub const ALL: [OpKind; 4] = [
        OpKind::Add,
        OpKind::Cancel,
        OpKind::Modify,
        OpKind::Aggressive,
    ];

    /// Lower-case name used in output and JSON.
    pub fn name(self) -> &'static str {
        ["add", "cancel", "modify", "aggressive"][self as usize]
    }
}

/// One operation of a stream.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    /// Submit a passive GTC limit order.
    Add(OrderRequest),
    /// Submit an order that takes liquidity.
    Aggressive(OrderRequest),
    /// Cancel this id.
    Cancel(u64),
    /// Modify (id, new price, new qty).
    Modify(u64, i64, u64),
}

impl Op {
    /// What kind of operation this is.
    #[inline]
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Add(_) => OpKind::Add,
            Op::Aggressive(_) => OpKind::Aggressive,
            Op::Cancel(_) => OpKind::Cancel,
            Op::Modify(..) => OpKind::Modify,
        }
    }
}

/// Apply one operation; its events are appended to `out`.
#[inline]
pub fn apply<B: Matching>(book: &mut B, op: &Op, out: &mut Vec<Event>) {
    match op {
        Op::Add(r) | Op::Aggressive(r) => book.submit(r, out),
        Op::Cancel(id) => book.cancel(*id, out),
        Op::Modify(id, price, qty) => book.modify(*id, *price, *qty, out),
    }
}

/// Where orders sit for a regime of a given size.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Resting orders the regime is named after.
    pub resting: usize,
    /// Price levels per side the passive orders spread over.
    pub levels_per_side: u64,
    /// Largest order quantity (lots).
    pub max_qty: u64,
    /// Number of accounts (ids 1..=accounts).
    pub accounts: u64,
}

impl Shape {
    /// The shape of a book with `resting` orders.
    pub fn for_resting(resting: usize) -> Self {
        Shape {
            resting,
            levels_per_side: (resting as u64 / 20).clamp(2, 2000),
            max_qty: 100,
            accounts: 1000,
        }
    }

    /// Distance in ticks behind the touch of a new passive order: 30% within the nearest
    /// fifth of the levels, the rest uniform over all of them.
    #[inline]
    pub fn distance(&self, rng: &mut Rng) -> i64 {
        let near = (self.levels_per_side / 5).max(1);
        let d = if rng.below(10) < 3 {
            rng.below(near)
        } else {
            rng.below(self.levels_per_side)
        };
        d as i64
    }

    /// A passive price for `side`, `d` ticks behind a mid derived from the current touch
    /// (`bid`, `ask`), never crossing. An empty or one-sided book uses [`START_MID`] or its
    /// one side, so a fresh book gets bids at `mid - d` and asks at `mid + 1 + d`.
    #[inline]
    pub fn passive_price(side: Side, bid: Option<i64>, ask: Option<i64>, d: i64) -> i64 {
        let mid = match (bid, ask) {
            (Some(b), Some(a)) => (b + a).div_euclid(2),
            (Some(b), None) => b,
            (None, Some(a)) => a - 1,
            (None, None) => START_MID,
        };
        match side {
            Side::Buy => ask.map_or(mid - d, |a| (mid - d).min(a - 1)).max(1),
            Side::Sell => bid.map_or(mid + 1 + d, |b| (mid + 1 + d).max(b + 1)),
        }
    }

    /// A random account of a resting order.
    #[inline]
    pub fn account(&self, rng: &mut Rng) -> u32 {
        1 + rng.below(self.accounts) as u32
    }

    /// A random order quantity.
    #[inline]
    pub fn qty(&self, rng: &mut Rng) -> u64 {
        1 + rng.below(self.max_qty)
    }

    /// The `index`-th order of a fresh book (ids start at 1, sides alternate), placed
    /// relative to an empty book's mid so that it never crosses.
    pub fn initial_order(&self, index: u64, rng: &mut Rng) -> OrderRequest {
        let side = if index % 2 == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        let price = Self::passive_price(side, None, None, self.distance(rng));
        OrderRequest::limit(index + 1, self.account(rng), side, price, self.qty(rng))
    }

    /// The `resting` orders of a fresh book in this regime, ids `1..=resting`.
    pub fn initial_orders(&self, seed: u64) -> Vec<OrderRequest> {
        let mut rng = Rng::new(seed);
        (0..self.resting as u64)
            .map(|i| self.initial_order(i, &mut rng))
            .collect()
    }
}

/// Submit `orders` (passive) into `book`, checking that each one rests.
pub fn fill<B: Matching>(book: &mut B, orders: &[OrderRequest], out: &mut Vec<Event>) {
    for r in orders {
        out.clear();
        book.submit(r, out);
        assert!(
            out.len() == 1 && out[0].kind == EventKind::Accepted,
            "initial order {} did not rest: {:?}",
            r.order_id,
            out
        );
    }
}

/// A pre-generated mixed stream and what is needed to run it again from the start.
pub struct Stream {
    /// The book the stream starts from (submit these to an empty book, in order).
    pub initial: Vec<OrderRequest>,
    /// The operations.
    pub ops: Vec<Op>,
    /// Ids resting after the last operation (to empty the book for a rerun).
    pub final_live: Vec<u64>,
    /// Operations per [`OpKind`].
    pub counts: [usize; 4],
}

impl Stream {
    /// Put a book that has run the whole stream back into the starting state: cancel what
    /// rests, then submit the initial orders again. Queues end up exactly as at the start.
    pub fn reset<B: Matching>(&self, book: &mut B, out: &mut Vec<Event>) {
        for &id in &self.final_live {
            out.clear();
            book.cancel(id, out);
            assert_eq!(out[0].kind, EventKind::Cancelled, "reset cancel of {id}");
        }
        assert!(
            book.is_empty(),
            "book not empty after cancelling final_live"
        );
        fill(book, &self.initial, out);
    }

    /// One line describing the mix, for bench output.
    pub fn describe(&self) -> String {
        let n = self.ops.len().max(1) as f64;
        let pct = |k: OpKind| 100.0 * self.counts[k as usize] as f64 / n;
        format!(
            "{} ops from {} resting orders: {:.1}% add, {:.1}% cancel, {:.1}% modify, \
             {:.1}% aggressive; {} resting at the end",
            self.ops.len(),
            self.initial.len(),
            pct(OpKind::Add),
            pct(OpKind::Cancel),
            pct(OpKind::Modify),
            pct(OpKind::Aggressive),
            self.final_live.len()
        )
    }
}

/// Resting ids with O(1) insert, remove and uniform pick.
struct LiveSet {
    ids: Vec<u64>,
    pos: HashMap<u64, usize>,
}

impl LiveSet {
    fn insert(&mut self, id: u64) {
        if let std::collections::hash_map::Entry::Vacant(e) = self.pos.entry(id) {
            e.insert(self.ids.len());
            self.ids.push(id);
        }
    }

    fn remove(&mut self, id: u64) {
        if let Some(i) = self.pos.remove(&id) {
            self.ids.swap_remove(i);
            if let Some(&moved) = self.ids.get(i) {
                self.pos.insert(moved, i);
            }
        }
    }

    fn pick(&self, rng: &mut Rng) -> u64 {
        self.ids[rng.below(self.ids.len() as u64) as usize]
    }
}

/// How cancels and modifies choose their target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Targets {
    /// Any resting order, uniformly: the cache's worst case with a large book.
    Uniform,
    /// 80% one of the last 1,000 orders added (quotes being refreshed near the touch, as in
    /// real order flow), 20% any resting order.
    Recent,
}

impl Targets {
    /// Short name used in output and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Targets::Uniform => "uniform",
            Targets::Recent => "recent",
        }
    }
}

/// Generate `len` mixed operations starting from `shape.initial_orders(seed)`, with cancels
/// and modifies aimed uniformly.
pub fn mixed_stream(shape: &Shape, len: usize, seed: u64) -> Stream {
    mixed_stream_with(shape, len, seed, Targets::Uniform)
}

/// Generate `len` mixed operations starting from `shape.initial_orders(seed)`.
pub fn mixed_stream_with(shape: &Shape, len: usize, seed: u64, targets: Targets) -> Stream {
    let initial = shape.initial_orders(seed);
    let target = initial.len();
    let slack = (target / 50).max(2);
    let mut rng = Rng::new(seed ^ 0x5151_5151_5151_5151);
    let mut model = Book::with_capacity(target + 2 * slack + 1024);
    let mut out = Vec::with_capacity(64);
    fill(&mut model, &initial, &mut out);
    let mut live = LiveSet {
        ids: initial.iter().map(|r| r.order_id).collect(),
        pos: initial
            .iter()
            .enumerate()
            .map(|(i, r)| (r.order_id, i))
            .collect(),
    };
    let mut next_id = initial.len() as u64 + 1;
    let mut added: Vec<u64> = Vec::with_capacity(len / 2);
    let pick = |live: &LiveSet, added: &[u64], rng: &mut Rng| -> u64 {
        if targets == Targets::Recent && !added.is_empty() && rng.below(5) != 0 {
            for _ in 0..4 {
                let back = rng.below(added.len().min(1000) as u64) as usize;
                let id = added[added.len() - 1 - back];
                if live.pos.contains_key(&id) {
                    return id;
                }
            }
        }
        live.pick(rng)
    };
    let mut ops = Vec::with_capacity(len);
    let mut counts = [0usize; 4];
    for _ in 0..len {
        let roll = rng.below(1000);
        let bid = model.best_bid().map(|b| b.0);
        let ask = model.best_ask().map(|a| a.0);
        let mut kind = match roll {
            0..500 => OpKind::Add,
            500..850 => OpKind::Cancel,
            850..950 => OpKind::Aggressive,
            _ => OpKind::Modify,
        };
        if kind == OpKind::Add && live.ids.len() >= target + slack {
            kind = OpKind::Cancel;
        } else if kind == OpKind::Cancel && live.ids.len() + slack <= target {
            kind = OpKind::Add;
        }
        if live.ids.is_empty() && matches!(kind, OpKind::Cancel | OpKind::Modify) {
            kind = OpKind::Add;
        }
        let op = match kind {
            OpKind::Add => {
                let side = rng.side();
                let price = Shape::passive_price(side, bid, ask, shape.distance(&mut rng));
                let r = OrderRequest::limit(
                    next_id,
                    shape.account(&mut rng),
                    side,
                    price,
                    shape.qty(&mut rng),
                );
                next_id += 1;
                added.push(r.order_id);
                Op::Add(r)
            }
            OpKind::Cancel => Op::Cancel(pick(&live, &added, &mut rng)),
            OpKind::Modify => {
                let id = pick(&live, &added, &mut rng);
                let o = model.order(id).expect("live ids rest in the model");
                if rng.below(2) == 0 && o.leaves > 1 {
                    Op::Modify(id, o.price, 1 + rng.below(o.leaves - 1))
                } else {
                    let d = shape.distance(&mut rng);
                    let price = Shape::passive_price(o.side, bid, ask, d);
                    Op::Modify(id, price, shape.qty(&mut rng))
                }
            }
            OpKind::Aggressive => {
                let side = rng.side();
                let account = shape.account(&mut rng);
                let r = if rng.below(10) == 0 {
                    OrderRequest::market(next_id, account, side, shape.qty(&mut rng))
                } else {
                    let through = rng.below(3) as i64;
                    let price = match side {
                        Side::Buy => ask.map_or(START_MID, |a| a + through),
                        Side::Sell => bid.map_or(START_MID, |b| (b - through).max(1)),
                    };
                    let qty = 1 + rng.below(shape.max_qty * 3 / 2);
                    OrderRequest::limit(next_id, account, side, price, qty)
                        .with_tif(TimeInForce::Ioc)
                };
                next_id += 1;
                Op::Aggressive(r)
            }
        };
        counts[kind as usize] += 1;
        out.clear();
        apply(&mut model, &op, &mut out);
        if let Op::Add(r) = &op {
            assert!(
                out.len() == 1,
                "passive add {} did not simply rest",
                r.order_id
            );
        }
        for e in &out {
            for id in [e.order_id, e.other_id] {
                if id == 0 {
                    continue;
                }
                if model.order(id).is_some() {
                    live.insert(id);
                } else {
                    live.remove(id);
                }
            }
        }
        ops.push(op);
    }
    debug_assert_eq!(live.ids.len(), model.len());
    Stream {
        initial,
        ops,
        final_live: live.ids,
        counts,
    }
}
