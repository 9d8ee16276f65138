//! Plain data shared by every layer: sides, order types, time in force, self-trade prevention
//! modes, the order request, and the one event vocabulary (`Event`) that flows from the book to
//! the wire and to Python.
//!
//! Invariants: every enum is `#[repr(u8)]` with stable discriminants (they are written to the
//! wire, the journal and numpy arrays), and `from_u8` is the only way back from a byte, so an
//! unknown byte is an error, never undefined behaviour. No type here allocates.

/// Order side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Side {
    /// Bid.
    Buy = 0,
    /// Ask.
    Sell = 1,
}

/// Order type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OrderType {
    /// Priced order; may rest when its time in force is GTC.
    Limit = 0,
    /// Unpriced order; never rests (its remainder is cancelled with `IocRemainder`).
    Market = 1,
}

/// Time in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TimeInForce {
    /// Good till cancelled: the remainder rests.
    Gtc = 0,
    /// Immediate or cancel: the remainder is cancelled.
    Ioc = 1,
    /// Fill or kill: executes completely at once, or is cancelled without touching the book.
    Fok = 2,
}

/// Self-trade prevention mode of the incoming (taker) order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Stp {
    /// Orders of the same account may trade with each other.
    None = 0,
    /// Cancel the taker's remainder and stop matching.
    #[default]
    CancelNewest = 1,
    /// Cancel the resting order and keep matching.
    CancelOldest = 2,
    /// Cancel the resting order, then the taker's remainder, and stop.
    CancelBoth = 3,
}

/// What an event reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EventKind {
    /// A valid submit was taken in (`qty` = original quantity, `leaves` = `qty`).
    Accepted = 0,
    /// The request was refused; the book is unchanged.
    Rejected = 1,
    /// One match between the taker (`order_id`) and a maker (`other_id`).
    Fill = 2,
    /// An order (or its remainder) left the book or was never placed; `qty` = quantity cancelled.
    Cancelled = 3,
    /// A modify took effect (`price` = new price, `qty` = `leaves` = new remaining quantity).
    Replaced = 4,
}

/// Why an order was rejected or cancelled. `None` on events that need no reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Reason {
    /// No reason (accepted, fill, replaced).
    #[default]
    None = 0,
    /// Cancelled on request.
    User = 1,
    /// IOC or market remainder after matching.
    IocRemainder = 2,
    /// FOK that could not fill completely.
    FokUnfilled = 3,
    /// Self-trade prevention.
    SelfTrade = 4,
    /// Quantity is zero.
    InvalidQty = 5,
    /// Limit price is zero or negative.
    InvalidPrice = 6,
    /// An order with this id is resting.
    DuplicateOrderId = 7,
    /// Impossible combination (order id 0, post-only that is not a GTC limit).
    InvalidOrder = 8,
    /// Post-only order that would take liquidity.
    WouldCross = 9,
    /// No free order slot left for an order that may rest.
    BookFull = 10,
    /// Cancel or modify of an id that is not resting.
    UnknownOrder = 11,
    /// Cancelled by a mass cancel (venue).
    MassCancel = 12,
    /// Cancelled by the kill switch (trading node).
    KillSwitch = 13,
    /// Venue: the session's order rate limit was exceeded.
    RateLimited = 14,
    /// Venue: an order or cancel arrived before a successful logon.
    NotLoggedIn = 15,
    /// Venue: the symbol id is not configured.
    UnknownSymbol = 16,
    /// Venue: the price is outside the instrument's price band.
    PriceOutOfBand = 17,
    /// Venue: the quantity is above the instrument's maximum order quantity.
    QtyTooLarge = 18,
    /// Venue: the frame could not be decoded.
    Malformed = 19,
    /// Venue: cancelled because the session disconnected (cancel-on-disconnect).
    Disconnect = 20,
}

macro_rules! byte_enum {
    ($ty:ident { $($v:ident),+ $(,)? }) => {
        impl $ty {
            /// Every variant, in discriminant order.
            pub const ALL: &'static [$ty] = &[$($ty::$v),+];

            /// The variant with this discriminant, or `None` for an unknown byte.
            #[inline]
            pub fn from_u8(b: u8) -> Option<Self> {
                Self::ALL.get(b as usize).copied()
            }
        }
    };
}

byte_enum!(Side { Buy, Sell });
byte_enum!(OrderType { Limit, Market });
byte_enum!(TimeInForce { Gtc, Ioc, Fok });
byte_enum!(Stp {
    None,
    CancelNewest,
    CancelOldest,
    CancelBoth
});
byte_enum!(EventKind {
    Accepted,
    Rejected,
    Fill,
    Cancelled,
    Replaced
});
byte_enum!(Reason {
    None,
    User,
    IocRemainder,
    FokUnfilled,
    SelfTrade,
    InvalidQty,
    InvalidPrice,
    DuplicateOrderId,
    InvalidOrder,
    WouldCross,
    BookFull,
    UnknownOrder,
    MassCancel,
    KillSwitch,
    RateLimited,
    NotLoggedIn,
    UnknownSymbol,
    PriceOutOfBand,
    QtyTooLarge,
    Malformed,
    Disconnect,
});

impl Side {
    /// The other side.
    #[inline]
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    /// Upper-case name as used on the Python side and in docs.
    pub fn name(self) -> &'static str {
        ["BUY", "SELL"][self as usize]
    }
}

impl OrderType {
    /// Upper-case name.
    pub fn name(self) -> &'static str {
        ["LIMIT", "MARKET"][self as usize]
    }
}

impl TimeInForce {
    /// Upper-case name.
    pub fn name(self) -> &'static str {
        ["GTC", "IOC", "FOK"][self as usize]
    }
}

impl Stp {
    /// Upper-case name.
    pub fn name(self) -> &'static str {
        ["NONE", "CANCEL_NEWEST", "CANCEL_OLDEST", "CANCEL_BOTH"][self as usize]
    }
}

impl EventKind {
    /// Upper-case name.
    pub fn name(self) -> &'static str {
        ["ACCEPTED", "REJECTED", "FILL", "CANCELLED", "REPLACED"][self as usize]
    }
}

impl Reason {
    /// Upper-case name; empty for `Reason::None`.
    pub fn name(self) -> &'static str {
        [
            "",
            "USER",
            "IOC_REMAINDER",
            "FOK_UNFILLED",
            "SELF_TRADE",
            "INVALID_QTY",
            "INVALID_PRICE",
            "DUPLICATE_ORDER_ID",
            "INVALID_ORDER",
            "WOULD_CROSS",
            "BOOK_FULL",
            "UNKNOWN_ORDER",
            "MASS_CANCEL",
            "KILL_SWITCH",
            "RATE_LIMITED",
            "NOT_LOGGED_IN",
            "UNKNOWN_SYMBOL",
            "PRICE_OUT_OF_BAND",
            "QTY_TOO_LARGE",
            "MALFORMED",
            "DISCONNECT",
        ][self as usize]
    }
}

/// A new order as handed to [`crate::Book::submit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderRequest {
    /// Caller-chosen id, > 0, unique among resting orders.
    pub order_id: u64,
    /// Owner; self-trade prevention compares accounts.
    pub account: u32,
    /// Buy or sell.
    pub side: Side,
    /// Limit price in ticks (> 0 for limits; ignored and reported as 0 for market orders).
    pub price: i64,
    /// Quantity in lots (> 0).
    pub qty: u64,
    /// Limit or market.
    pub order_type: OrderType,
    /// GTC, IOC or FOK.
    pub tif: TimeInForce,
    /// Only add liquidity (LIMIT + GTC only).
    pub post_only: bool,
    /// Self-trade prevention mode.
    pub stp: Stp,
    /// Caller's timestamp in ns; carried, never read by matching.
    pub timestamp: u64,
}

impl OrderRequest {
    /// A GTC limit order with default STP (cancel newest); handy in tests and examples.
    pub fn limit(order_id: u64, account: u32, side: Side, price: i64, qty: u64) -> Self {
        OrderRequest {
            order_id,
            account,
            side,
            price,
            qty,
            order_type: OrderType::Limit,
            tif: TimeInForce::Gtc,
            post_only: false,
            stp: Stp::CancelNewest,
            timestamp: 0,
        }
    }

    /// A market order (remainder cancelled) with default STP.
    pub fn market(order_id: u64, account: u32, side: Side, qty: u64) -> Self {
        OrderRequest {
            order_type: OrderType::Market,
            tif: TimeInForce::Ioc,
            ..Self::limit(order_id, account, side, 0, qty)
        }
    }

    /// The same order with another time in force.
    pub fn with_tif(self, tif: TimeInForce) -> Self {
        OrderRequest { tif, ..self }
    }

    /// The same order with another STP mode.
    pub fn with_stp(self, stp: Stp) -> Self {
        OrderRequest { stp, ..self }
    }

    /// The same order, post-only.
    pub fn post_only(self) -> Self {
        OrderRequest {
            post_only: true,
            ..self
        }
    }
}

/// One thing that happened in the book. The field meanings per kind are in the crate docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// Why (rejects and cancels); `Reason::None` otherwise.
    pub reason: Reason,
    /// The order the event is about (the taker, for fills).
    pub order_id: u64,
    /// The maker, for fills; 0 otherwise.
    pub other_id: u64,
    /// Price in ticks (maker price for fills, 0 for market orders).
    pub price: i64,
    /// Quantity: original (accepted), traded (fill), cancelled (cancel), new remaining (replaced).
    pub qty: u64,
    /// Remaining quantity of `order_id` after the event.
    pub leaves: u64,
    /// Remaining quantity of `other_id` after a fill; 0 otherwise.
    pub other_leaves: u64,
}

impl Event {
    /// An event with only kind, reason and order id set.
    #[inline]
    pub fn new(kind: EventKind, reason: Reason, order_id: u64) -> Self {
        Event {
            kind,
            reason,
            order_id,
            other_id: 0,
            price: 0,
            qty: 0,
            leaves: 0,
            other_leaves: 0,
        }
    }
}

/// A resting order as seen from outside: (order_id, account, price, leaves).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RestingOrder {
    /// Order id.
    pub order_id: u64,
    /// Owner.
    pub account: u32,
    /// Side.
    pub side: Side,
    /// Limit price in ticks.
    pub price: i64,
    /// Remaining quantity.
    pub leaves: u64,
}

/// One aggregated price level: (price, total qty, order count).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LevelView {
    /// Price in ticks.
    pub price: i64,
    /// Sum of the leaves of the orders at this price.
    pub qty: u64,
    /// Number of orders at this price.
    pub count: u32,
}

/// The common interface of the fast book and the reference model, so that one test suite and
/// one differential harness can drive both.
pub trait Matching {
    /// Submit a new order; appends its events to `out`.
    fn submit(&mut self, req: &OrderRequest, out: &mut Vec<Event>);
    /// Cancel a resting order; appends CANCELLED or REJECTED(UNKNOWN_ORDER).
    fn cancel(&mut self, order_id: u64, out: &mut Vec<Event>);
    /// Cancel/replace; see the crate docs for when priority is kept.
    fn modify(&mut self, order_id: u64, new_price: i64, new_qty: u64, out: &mut Vec<Event>);
    /// Best bid as (price, total qty at that price).
    fn best_bid(&self) -> Option<(i64, u64)>;
    /// Best ask as (price, total qty at that price).
    fn best_ask(&self) -> Option<(i64, u64)>;
    /// Up to `n` levels of one side, best first.
    fn depth_side(&self, side: Side, n: usize) -> Vec<LevelView>;
    /// Every resting order of one side in priority order.
    fn orders(&self, side: Side) -> Vec<RestingOrder>;
    /// One resting order.
    fn order(&self, order_id: u64) -> Option<RestingOrder>;
    /// Number of resting orders.
    fn len(&self) -> usize;
    /// True when nothing rests.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_u8_round_trips_and_rejects_unknown() {
        for r in Reason::ALL {
            assert_eq!(Reason::from_u8(*r as u8), Some(*r));
        }
        assert_eq!(Reason::from_u8(Reason::ALL.len() as u8), None);
        assert_eq!(Side::from_u8(2), None);
        assert_eq!(Stp::from_u8(3), Some(Stp::CancelBoth));
        assert_eq!(Reason::None.name(), "");
        assert_eq!(EventKind::Fill.name(), "FILL");
    }
}
