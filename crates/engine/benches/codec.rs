//! Codec cost per message: encode and decode of `NewOrder` (the gateway's inbound hot path) and
//! `ExecutionReport` (the publisher's outbound one), plus decoding a buffer of 1,024 mixed
//! frames back to back as a gateway does after one large read.
//!
//! Run: `cargo bench -p tradecore-engine --bench codec` (short measurement windows: the machine
//! is shared).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tradecore_book::{EventKind, OrderType, Reason, Side, Stp, TimeInForce};
use tradecore_engine::codec::{
    decode, Cancel, ExecutionReport, Liquidity, Message, Modify, NewOrder, MAX_MESSAGE_LEN,
};

fn order(i: u64) -> NewOrder {
    NewOrder {
        client_order_id: i,
        symbol_id: 1,
        side: if i % 2 == 0 { Side::Buy } else { Side::Sell },
        order_type: OrderType::Limit,
        tif: TimeInForce::Gtc,
        post_only: false,
        stp: Stp::CancelNewest,
        price: 15_000 + (i % 20) as i64,
        qty: 100,
    }
}

fn report(i: u64) -> ExecutionReport {
    ExecutionReport {
        seq: i,
        client_order_id: i,
        order_id: 1_000 + i,
        symbol_id: 1,
        kind: EventKind::Fill,
        reason: Reason::None,
        side: Side::Buy,
        liquidity: Liquidity::Taker,
        price: 15_010,
        qty: 5,
        leaves: 95,
        timestamp_ns: 1_717_171_717_000_000_000 + i,
    }
}

fn one_message(c: &mut Criterion, name: &str, m: Message) {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(1));
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    g.bench_function("encode", |b| {
        b.iter(|| black_box(&m).encode(black_box(&mut buf)))
    });
    let n = m.encode(&mut buf).expect("fits");
    let bytes = buf[..n].to_vec();
    g.bench_function("decode", |b| b.iter(|| decode(black_box(&bytes))));
    g.finish();
}

fn stream(c: &mut Criterion) {
    let mut bytes = Vec::new();
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    for i in 0..1024u64 {
        let m: Message = match i % 4 {
            0 | 1 => order(i).into(),
            2 => Cancel {
                client_order_id: i - 2,
                symbol_id: 1,
            }
            .into(),
            _ => Modify {
                client_order_id: i - 3,
                symbol_id: 1,
                new_price: 15_001,
                new_qty: 50,
            }
            .into(),
        };
        let n = m.encode(&mut buf).expect("fits");
        bytes.extend_from_slice(&buf[..n]);
    }
    let mut g = c.benchmark_group("stream_1024_mixed");
    g.throughput(Throughput::Elements(1024));
    g.bench_function("decode", |b| {
        b.iter(|| {
            let mut rest = black_box(&bytes[..]);
            let mut count = 0u32;
            while let Ok((m, n)) = decode(rest) {
                black_box(m);
                rest = &rest[n..];
                count += 1;
            }
            assert_eq!(count, 1024);
        })
    });
    g.finish();
}

fn codec(c: &mut Criterion) {
    one_message(c, "new_order", order(7).into());
    one_message(c, "execution_report", report(7).into());
    stream(c);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = codec
}
criterion_main!(benches);
