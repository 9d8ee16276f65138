//! Fuzz target: an arbitrary command stream driving the fast book (`tradecore_book::Book`)
//! and the naive `ReferenceBook` side by side.
//!
//! Every operation must produce exactly the same events in both, and after every operation
//! both must hold the same resting orders on each side in the same priority order, the same
//! best bid and ask and the same count. Ids, accounts, prices and quantities are drawn from
//! small ranges (plus edge values) so that duplicates, unknown ids, crosses, self-trades and
//! full books are common.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tradecore_book::{
    Book, Matching, OrderRequest, OrderType, ReferenceBook, Side, Stp, TimeInForce,
};

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Op {
    Submit {
        id: u8,
        account: u8,
        buy: bool,
        price: u8,
        qty: u8,
        kind: u8,
        post_only: bool,
        stp: u8,
    },
    Cancel {
        id: u8,
    },
    Modify {
        id: u8,
        price: u8,
        qty: u8,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    capacity: u8,
    ops: Vec<Op>,
}

fn id(x: u8) -> u64 {
    match x {
        250 => 0,
        251 => u64::MAX,
        252 => 1 << 63,
        x => u64::from(x % 24) + 1,
    }
}

fn price(x: u8) -> i64 {
    match x {
        250 => 0,
        251 => -1,
        252 => i64::MAX,
        253 => 1,
        x => 90 + i64::from(x % 21),
    }
}

fn qty(x: u8, capacity: usize) -> u64 {
    match x {
        250 => 0,
        251 => u64::MAX,
        252 => u64::MAX / capacity as u64,
        253 => u64::MAX / capacity as u64 + 1,
        x => u64::from(x % 40) + 1,
    }
}

fuzz_target!(|input: Input| {
    let capacity = usize::from(input.capacity % 12) + 1;
    let mut fast = Book::with_capacity(capacity);
    let mut reference = ReferenceBook::new(capacity);
    let (mut ef, mut er) = (Vec::new(), Vec::new());
    for (i, op) in input.ops.iter().take(2000).enumerate() {
        ef.clear();
        er.clear();
        match *op {
            Op::Submit {
                id: oid,
                account,
                buy,
                price: p,
                qty: q,
                kind,
                post_only,
                stp,
            } => {
                let req = OrderRequest {
                    order_id: id(oid),
                    account: u32::from(account % 3) + 1,
                    side: if buy { Side::Buy } else { Side::Sell },
                    price: price(p),
                    qty: qty(q, capacity),
                    order_type: if kind % 6 == 5 {
                        OrderType::Market
                    } else {
                        OrderType::Limit
                    },
                    tif: match kind % 5 {
                        3 => TimeInForce::Ioc,
                        4 => TimeInForce::Fok,
                        _ => TimeInForce::Gtc,
                    },
                    post_only,
                    stp: Stp::ALL[usize::from(stp) % Stp::ALL.len()],
                    timestamp: i as u64,
                };
                fast.submit(&req, &mut ef);
                reference.submit(&req, &mut er);
            }
            Op::Cancel { id: oid } => {
                fast.cancel(id(oid), &mut ef);
                reference.cancel(id(oid), &mut er);
            }
            Op::Modify {
                id: oid,
                price: p,
                qty: q,
            } => {
                let (oid, p, q) = (id(oid), price(p), qty(q, capacity));
                fast.modify(oid, p, q, &mut ef);
                reference.modify(oid, p, q, &mut er);
            }
        }
        assert_eq!(ef, er, "op #{i} {op:?}: events differ");
        assert_eq!(fast.len(), reference.len(), "op #{i}: order count");
        assert_eq!(fast.best_bid(), reference.best_bid(), "op #{i}: best bid");
        assert_eq!(fast.best_ask(), reference.best_ask(), "op #{i}: best ask");
        for &side in Side::ALL {
            assert_eq!(
                fast.orders(side),
                reference.orders(side),
                "op #{i}: {side:?} orders"
            );
        }
    }
});
