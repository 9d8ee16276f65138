//! # tradecore-book
//!
//! The limit order book and matching engine of one instrument, in pure Rust (std only; no
//! PyO3, no I/O), so it can be tested, benchmarked and fuzzed on its own. The venue server,
//! the paper broker and the L3 backtester all use it; Python reaches it through `crates/py`.
//!
//! ## Layout
//!
//! * [`Book`] (`book.rs`): the fast L3 book. Orders live in a pre-allocated arena of 40-byte
//!   slots (`arena.rs`), chained per price level by `u32` prev/next indices (an intrusive
//!   doubly linked FIFO: O(1) append at the tail, O(1) removal anywhere). Price levels of a side
//!   live in a pool at stable indices (`levels.rs`): each slot holds its level's index (and the
//!   price lives once per level), a `Vec` of `(key, index)` keeps them sorted with the best
//!   price last, so the touch is O(1), and a small price -> level map finds a level by price
//!   in O(1). A level that empties behind the touch stays in place, empty, until its price
//!   is used again or a compaction drops it (no memmove per deep cancel). An open-addressing
//!   index of tagged slot numbers (Robin Hood order) finds an order by id. About 57 bytes per
//!   order of capacity; nothing is allocated per order.
//! * [`ReferenceBook`] (`reference.rs`): the naive model (`HashMap<i64, VecDeque<Order>>`) that
//!   tests use as the oracle. Both implement [`Matching`].
//! * [`L2Book`] (`l2.rs`): aggregated price -> quantity book for market data; a snapshot is
//!   installed with one sort per side (`replace`) and [`TopStats`] reads the touch and the
//!   top-N sums in one pass (`top_stats`).
//! * [`decimal`] (`decimal.rs`): exact decimal text <-> integer steps of a tick or lot
//!   [`Grid`] (`"0.35210000"` on `"0.0001"` is 3521 ticks), by `u128` arithmetic on the
//!   digits; typed errors for syntax, range and off-grid values.
//! * [`scan`] (`scan.rs`): a strict, allocation-free scanner for Binance combined-stream JSON
//!   (depth diffs, aggTrade, bookTicker) and the reader of a depth diff's level arrays into
//!   `(side, ticks, lots)`; `None` for anything it is not sure about (the caller falls back).
//!
//! ## Rules
//!
//! Prices are `i64` ticks, quantities `u64` lots; there are no floats anywhere.
//!
//! **Priority.** Best price first, then first in first out within a price. A trade prints at
//! the resting (maker) order's price.
//!
//! **Submit** yields, in order:
//! 1. `REJECTED` alone, book unchanged, on the first failed check of: order id 0
//!    (`INVALID_ORDER`), qty 0 or above `u64::MAX / capacity` (`INVALID_QTY`; this bound keeps
//!    every level and book total inside a `u64`), limit price <= 0 (`INVALID_PRICE`), post-only
//!    that is not LIMIT + GTC (`INVALID_ORDER`), an order with that id resting
//!    (`DUPLICATE_ORDER_ID`), a GTC limit when every slot is taken (`BOOK_FULL`), a post-only
//!    order that would trade on arrival (`WOULD_CROSS`).
//! 2. Otherwise `ACCEPTED` (price, qty = original qty, leaves = qty; market orders carry
//!    price 0).
//! 3. FOK only: if the order cannot fill completely at once (self-trade prevention applied as
//!    in matching), `CANCELLED` with `FOK_UNFILLED` and nothing else changes.
//! 4. One `FILL` per match: `order_id` = taker, `other_id` = maker, `price` = maker price,
//!    `qty` = traded, `leaves` = taker remaining, `other_leaves` = maker remaining. A maker at
//!    0 leaves leaves the book.
//! 5. Self-trade (same account, taker's `stp` != NONE), checked maker by maker:
//!    CANCEL_NEWEST cancels the taker's remainder and stops; CANCEL_OLDEST cancels that maker
//!    and goes on; CANCEL_BOTH cancels the maker, then the taker's remainder, and stops. These
//!    cancels carry `SELF_TRADE`; a taker cancelled by STP never rests.
//! 6. A remainder of an IOC or MARKET order is `CANCELLED` with `IOC_REMAINDER`; a GTC limit
//!    remainder rests (no further event).
//!
//! **Cancel** yields `CANCELLED` (`qty` = leaves at that moment, reason `USER`) or
//! `REJECTED`/`UNKNOWN_ORDER`.
//!
//! **Modify** `(order_id, new_price, new_qty)`, where `new_qty` is the new remaining quantity.
//! Checks in order: `INVALID_QTY` (0 or above the bound), `INVALID_PRICE` (<= 0), `UNKNOWN_ORDER`. Same price and
//! `new_qty` <= leaves: reduced in place, keeps its queue position, one `REPLACED`. Otherwise
//! the order loses priority: it is taken out and re-entered with the same id, account, side,
//! STP and post-only flag as a GTC limit, yielding `REPLACED` and then any `FILL`s (or STP
//! cancels) it makes; a post-only order that would cross is `REJECTED` with `WOULD_CROSS` and
//! stays as it was. `REPLACED` carries the new price, `qty` = `leaves` = `new_qty`.
//!
//! Rejected and cancelled events carry the request's price and quantity (cancel's reject
//! carries 0 for both).
//!
//! ## Cost per operation
//!
//! Submit: O(1) expected to find the level (O(log L) plus a memmove of the better-priced
//! entries when it creates one) + O(1) per fill; cancel O(1) (a level that empties stays in
//! place, empty; an occasional compaction costs O(L) over at least L removals); best bid/ask
//! O(1). Nothing allocates once the ladders have reached their peak number of levels (live
//! plus kept empty) and the caller's event `Vec` its peak length (`tests/alloc.rs` proves it
//! with a counting allocator).

mod arena;
mod book;
pub mod decimal;
mod l2;
mod levels;
mod reference;
pub mod scan;
mod types;

pub use book::Book;
pub use decimal::{Grid, GridError, LevelError, StepError};
pub use l2::{L2Book, TopStats};
pub use reference::ReferenceBook;
pub use types::{
    Event, EventKind, LevelView, Matching, OrderRequest, OrderType, Reason, RestingOrder, Side,
    Stp, TimeInForce,
};
