//! `loadgen::orders`: what one session believes about its own orders, and the order mix.
//!
//! ## Client order ids
//!
//! The generator chooses ids so that a report can be routed and checked without any lookup
//! table: bits 63..48 hold the session index + 1, bit 47 marks an aggressive (IOC) order,
//! and for a passive order bits 46..20 hold a generation and bits 19..0 a slot of the
//! session's [`OrderModel`]. An id is never reused within a run (the generation grows each
//! time a slot is recycled), so a late report about a dead order can never be mistaken for
//! the order now in its slot. Aggressive orders never rest, so they need no slot: bits 46..0
//! are a counter.
//!
//! ## Invariants of [`OrderModel`]
//!
//! * A slot is `Free`, `Live` (resting as far as the session knows, so a cancel or modify may
//!   name it) or `CancelSent`. `live` lists exactly the `Live` slots (each slot knows its
//!   position in it, for O(1) removal); `free` lists exactly the `Free` ones.
//! * A slot becomes `Live` when its new order is *sent* (a passive order never crosses: bids
//!   rest below the mid, asks above it), and `Free` only when a report says the order is gone
//!   (cancelled, fully filled, or its new order rejected). So cancels and modifies name live
//!   orders except when a fill races them, which the venue answers with `UNKNOWN_ORDER` (the
//!   one reject a run expects).
//!
//! ## Cost
//!
//! Every operation is O(1) and allocation free: the slot table and both lists are sized once
//! for `max_live` orders.

use tradecore_book::{OrderType, Side, Stp, TimeInForce};

use super::rng::Rng;
use super::settings::{Mix, SymbolSpec};
use crate::codec::{Cancel, Modify, NewOrder};

const SESSION_SHIFT: u32 = 48;
const AGGRESSIVE_BIT: u64 = 1 << 47;
const SLOT_BITS: u32 = 20;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;
const GEN_MASK: u64 = (1 << (47 - SLOT_BITS)) - 1;

/// The session index a client order id was made by (`None` for an id this generator did not
/// make).
#[inline]
pub fn session_of(coid: u64) -> Option<u32> {
    let tag = coid >> SESSION_SHIFT;
    (tag > 0).then(|| (tag - 1) as u32)
}

/// True for the id of an aggressive (IOC) order.
#[inline]
pub fn is_aggressive(coid: u64) -> bool {
    coid & AGGRESSIVE_BIT != 0
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SlotState {
    Free,
    Live,
    CancelSent,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    generation: u64,
    state: SlotState,
    /// Index of the slot in `live` while `Live`.
    live_pos: u32,
    symbol: u8,
    side: Side,
    price: i64,
    qty: u64,
}

/// What a command was, for the latency breakdown and to match its first report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CommandKind {
    /// A passive new order.
    Add = 0,
    /// An aggressive (IOC) new order.
    Aggressive = 1,
    /// A cancel.
    Cancel = 2,
    /// A modify.
    Modify = 3,
}

impl CommandKind {
    /// Every kind, in discriminant order.
    pub const ALL: [CommandKind; 4] = [
        CommandKind::Add,
        CommandKind::Aggressive,
        CommandKind::Cancel,
        CommandKind::Modify,
    ];

    /// Lower-case name used in the JSON and the summary.
    pub fn name(self) -> &'static str {
        match self {
            CommandKind::Add => "add",
            CommandKind::Aggressive => "aggressive",
            CommandKind::Cancel => "cancel",
            CommandKind::Modify => "modify",
        }
    }
}

/// One command to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// A new order (passive or aggressive).
    New(NewOrder),
    /// A cancel.
    Cancel(Cancel),
    /// A modify.
    Modify(Modify),
}

/// A session's orders as it believes them to be, and its share of the order mix.
#[derive(Debug)]
pub struct OrderModel {
    tag: u64,
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: Vec<u32>,
    aggressive_seq: u64,
    rng: Rng,
}

impl OrderModel {
    /// The model of session `session` with room for `max_live` resting orders, drawing from
    /// `seed` (each session should get its own seed).
    pub fn new(session: u32, max_live: u32, seed: u64) -> OrderModel {
        let n = max_live as usize;
        OrderModel {
            tag: u64::from(session + 1) << SESSION_SHIFT,
            slots: vec![
                Slot {
                    generation: 0,
                    state: SlotState::Free,
                    live_pos: 0,
                    symbol: 0,
                    side: Side::Buy,
                    price: 0,
                    qty: 0,
                };
                n
            ],
            // Popped from the end: slot 0 first.
            free: (0..max_live).rev().collect(),
            live: Vec::with_capacity(n),
            aggressive_seq: 0,
            rng: Rng::new(seed),
        }
    }

    /// Resting orders the session believes it has (cancel not yet sent).
    pub fn live(&self) -> usize {
        self.live.len()
    }

    fn coid(&self, slot: u32) -> u64 {
        self.tag
            | ((self.slots[slot as usize].generation & GEN_MASK) << SLOT_BITS)
            | u64::from(slot)
    }

    fn slot_of(&self, coid: u64) -> Option<usize> {
        if coid & !((1 << SESSION_SHIFT) - 1) != self.tag || is_aggressive(coid) {
            return None;
        }
        let slot = (coid & SLOT_MASK) as usize;
        let s = self.slots.get(slot)?;
        (s.generation & GEN_MASK == (coid >> SLOT_BITS) & GEN_MASK).then_some(slot)
    }

    fn unlist(&mut self, slot: usize) {
        let pos = self.slots[slot].live_pos as usize;
        self.live.swap_remove(pos);
        if let Some(&moved) = self.live.get(pos) {
            self.slots[moved as usize].live_pos = pos as u32;
        }
    }

    fn list(&mut self, slot: usize) {
        self.slots[slot].live_pos = self.live.len() as u32;
        self.live.push(slot as u32);
    }

    /// A report says the order `coid` is gone (cancelled, fully filled, or its new order was
    /// rejected): its slot is free again. Ids of other sessions, aggressive orders and stale
    /// generations are ignored. Returns whether a slot was freed.
    pub fn on_gone(&mut self, coid: u64) -> bool {
        let Some(slot) = self.slot_of(coid) else {
            return false;
        };
        match self.slots[slot].state {
            SlotState::Free => return false,
            SlotState::Live => self.unlist(slot),
            SlotState::CancelSent => {}
        }
        let s = &mut self.slots[slot];
        s.state = SlotState::Free;
        s.generation = s.generation.wrapping_add(1);
        self.free.push(slot as u32);
        true
    }

    /// A cancel of `coid` was refused for a reason that leaves the order resting (a rate
    /// limit, say): it may be cancelled again.
    pub fn on_cancel_refused(&mut self, coid: u64) {
        if let Some(slot) = self.slot_of(coid) {
            if self.slots[slot].state == SlotState::CancelSent {
                self.slots[slot].state = SlotState::Live;
                self.list(slot);
            }
        }
    }

    /// Draws the next command of the mix, or `None` when the session cannot make one now: every
    /// order slot holds an order whose cancel is still unanswered (the venue is far behind),
    /// so the caller waits, as it does for any other back-pressure. An add when every slot is
    /// taken becomes a cancel, and a cancel or modify with no live order becomes an add (an
    /// aggressive order when the mix has no adds), so the book stays bounded.
    pub fn next(
        &mut self,
        mix: &Mix,
        symbols: &[SymbolSpec],
        depth: u32,
        cross: u32,
        max_qty: u64,
    ) -> Option<(CommandKind, Command)> {
        let r = self.rng.below(u64::from(mix.total())) as u32;
        let mut kind = if r < mix.add {
            CommandKind::Add
        } else if r < mix.add + mix.cancel {
            CommandKind::Cancel
        } else if r < mix.add + mix.cancel + mix.modify {
            CommandKind::Modify
        } else {
            CommandKind::Aggressive
        };
        if kind == CommandKind::Add && self.free.is_empty() {
            if self.live.is_empty() {
                return None;
            }
            kind = CommandKind::Cancel;
        }
        if matches!(kind, CommandKind::Cancel | CommandKind::Modify) && self.live.is_empty() {
            kind = if mix.add == 0 {
                CommandKind::Aggressive
            } else if self.free.is_empty() {
                return None;
            } else {
                CommandKind::Add
            };
        }
        let qty = 1 + self.rng.below(max_qty);
        match kind {
            CommandKind::Add => {
                let Some(slot) = self.free.pop() else {
                    // Not reached: an add is only chosen with a free slot.
                    return None;
                };
                let sym = self.rng.below(symbols.len() as u64) as usize;
                let side = if self.rng.next_u64() & 1 == 0 {
                    Side::Buy
                } else {
                    Side::Sell
                };
                let price = self.passive_price(&symbols[sym], side, depth);
                let s = &mut self.slots[slot as usize];
                s.state = SlotState::Live;
                s.symbol = sym as u8;
                s.side = side;
                s.price = price;
                s.qty = qty;
                self.list(slot as usize);
                let order = NewOrder {
                    client_order_id: self.coid(slot),
                    symbol_id: symbols[sym].symbol_id,
                    side,
                    order_type: OrderType::Limit,
                    tif: TimeInForce::Gtc,
                    post_only: false,
                    stp: Stp::None,
                    price,
                    qty,
                };
                Some((kind, Command::New(order)))
            }
            CommandKind::Aggressive => Some(self.aggressive(symbols, cross, qty)),
            CommandKind::Cancel => {
                let pos = self.rng.below(self.live.len() as u64) as usize;
                let slot = self.live[pos] as usize;
                self.unlist(slot);
                self.slots[slot].state = SlotState::CancelSent;
                let c = Cancel {
                    client_order_id: self.coid(slot as u32),
                    symbol_id: symbols[self.slots[slot].symbol as usize].symbol_id,
                };
                Some((kind, Command::Cancel(c)))
            }
            CommandKind::Modify => {
                let pos = self.rng.below(self.live.len() as u64) as usize;
                let slot = self.live[pos] as usize;
                let s = self.slots[slot];
                let spec = &symbols[s.symbol as usize];
                // Half keep the price and shrink (queue position kept), half re-price.
                let (price, new_qty) = if self.rng.next_u64() & 1 == 0 {
                    (s.price, 1 + self.rng.below(s.qty.max(1)))
                } else {
                    (self.passive_price(spec, s.side, depth), qty)
                };
                let m = Modify {
                    client_order_id: self.coid(slot as u32),
                    symbol_id: spec.symbol_id,
                    new_price: price,
                    new_qty,
                };
                let s = &mut self.slots[slot];
                s.price = price;
                s.qty = new_qty;
                Some((kind, Command::Modify(m)))
            }
        }
    }

    /// An IOC limit order priced 1 to `cross` ticks through the mid: it trades with whatever
    /// rests near the touch and never rests itself.
    fn aggressive(
        &mut self,
        symbols: &[SymbolSpec],
        cross: u32,
        qty: u64,
    ) -> (CommandKind, Command) {
        let sym = self.rng.below(symbols.len() as u64) as usize;
        let side = if self.rng.next_u64() & 1 == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        let through = 1 + self.rng.below(u64::from(cross)) as i64;
        let mid = symbols[sym].mid;
        let price = match side {
            Side::Buy => mid + through,
            Side::Sell => mid - through,
        };
        self.aggressive_seq += 1;
        let order = NewOrder {
            client_order_id: self.tag
                | AGGRESSIVE_BIT
                | (self.aggressive_seq & (AGGRESSIVE_BIT - 1)),
            symbol_id: symbols[sym].symbol_id,
            side,
            order_type: OrderType::Limit,
            tif: TimeInForce::Ioc,
            post_only: false,
            stp: Stp::None,
            price,
            qty,
        };
        (CommandKind::Aggressive, Command::New(order))
    }

    /// A passive price: 1 to `depth` ticks away from the mid on the order's side, skewed
    /// towards the touch (the minimum of two uniform draws).
    fn passive_price(&mut self, spec: &SymbolSpec, side: Side, depth: u32) -> i64 {
        let d = 1 + self
            .rng
            .below(u64::from(depth))
            .min(self.rng.below(u64::from(depth))) as i64;
        match side {
            Side::Buy => spec.mid - d,
            Side::Sell => spec.mid + d,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Vec<SymbolSpec> {
        vec![
            SymbolSpec {
                symbol_id: 1,
                mid: 1000,
                lo: 1,
                hi: 10_000,
            },
            SymbolSpec {
                symbol_id: 2,
                mid: 5000,
                lo: 1,
                hi: 10_000,
            },
        ]
    }

    const MIX: Mix = Mix {
        add: 45,
        cancel: 35,
        modify: 10,
        aggressive: 10,
    };

    #[test]
    fn ids_route_back_to_their_session_and_never_repeat() {
        let syms = spec();
        let mut m = OrderModel::new(6, 8, 1);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let (kind, cmd) = m.next(&MIX, &syms, 20, 3, 100).unwrap();
            match cmd {
                Command::New(o) => {
                    assert_eq!(session_of(o.client_order_id), Some(6));
                    assert_eq!(
                        is_aggressive(o.client_order_id),
                        kind == CommandKind::Aggressive
                    );
                    assert!(seen.insert(o.client_order_id), "id reused");
                    let mid = syms
                        .iter()
                        .find(|s| s.symbol_id == o.symbol_id)
                        .unwrap()
                        .mid;
                    // Passive orders never cross the mid; aggressive ones always do.
                    let crosses = match o.side {
                        Side::Buy => o.price > mid,
                        Side::Sell => o.price < mid,
                    };
                    assert_eq!(crosses, kind == CommandKind::Aggressive);
                    if kind == CommandKind::Add {
                        // Half of the adds die at once, so slots get recycled.
                        if o.qty % 2 == 0 {
                            assert!(m.on_gone(o.client_order_id));
                            assert!(!m.on_gone(o.client_order_id), "freed twice");
                        }
                    } else {
                        assert_eq!(o.tif, TimeInForce::Ioc);
                    }
                }
                Command::Cancel(c) => {
                    assert!(m.on_gone(c.client_order_id));
                }
                Command::Modify(md) => {
                    assert!(m.slot_of(md.client_order_id).is_some());
                }
            }
            assert!(m.live() <= 8);
        }
        assert!(seen.len() > 1000);
    }

    #[test]
    fn cancels_only_name_live_orders_and_refusals_relist() {
        let syms = spec();
        let mut m = OrderModel::new(0, 4, 2);
        let mix = Mix {
            add: 1,
            cancel: 1,
            modify: 0,
            aggressive: 0,
        };
        let mut live = std::collections::HashSet::new();
        for i in 0..1000 {
            match m.next(&mix, &syms, 5, 1, 10).unwrap().1 {
                Command::New(o) => assert!(live.insert(o.client_order_id)),
                Command::Cancel(c) => {
                    assert!(live.remove(&c.client_order_id), "cancel of a dead order");
                    if i % 3 == 0 {
                        m.on_cancel_refused(c.client_order_id);
                        live.insert(c.client_order_id);
                    } else {
                        m.on_gone(c.client_order_id);
                    }
                }
                Command::Modify(_) => unreachable!(),
            }
            assert_eq!(m.live(), live.len());
        }
        // A stale id (old generation) changes nothing.
        let mut m = OrderModel::new(0, 1, 3);
        let Command::New(o) = m.next(&mix, &syms, 5, 1, 10).unwrap().1 else {
            panic!()
        };
        assert!(m.on_gone(o.client_order_id));
        let Command::New(o2) = m.next(&mix, &syms, 5, 1, 10).unwrap().1 else {
            panic!()
        };
        assert_ne!(o.client_order_id, o2.client_order_id);
        assert!(!m.on_gone(o.client_order_id));
        assert_eq!(m.live(), 1);
        // Another session's id changes nothing either.
        assert!(!OrderModel::new(1, 1, 3).on_gone(o2.client_order_id));
    }
}
