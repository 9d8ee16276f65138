//! Property tests of `tradecore_book::scan`: the Binance message scanner and depth reader.
//!
//! * `generated_messages_read_back`: combined-stream messages are generated from a model
//!   (depth diff, aggTrade, bookTicker or another stream; keys in random order, random JSON
//!   whitespace, extra keys holding skipped values of every JSON kind, including escaped
//!   strings, floats, negative numbers and nesting) and written as JSON text. `binance` must
//!   return exactly the model's fields, and for a depth diff `depth_levels` must return
//!   exactly the model's levels converted by `decimal::level` one by one (the generator is the
//!   oracle: it knows what it wrote).
//! * `any_text_and_offsets_are_safe`: arbitrary text (random bytes made UTF-8, and generated
//!   messages with a random edit: a byte inserted, deleted or replaced) and arbitrary offsets
//!   through `message`, `binance`, `each_pair` and `depth_levels`: no panic; offsets that
//!   `binance` returns point at a `[`; `depth_levels` at those offsets never says `NotDepth`;
//!   and `depth_levels` on any offsets either fails or returns levels that `each_pair` +
//!   `decimal::level` produce too.
//!
//! 5,000 cases per property in release builds, a tenth in debug builds; `PROPTEST_CASES`
//! overrides both. Failing seeds are kept in `proptest-regressions/scan.txt`. Cost: about a
//! second in release mode.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use tradecore_book::decimal::{self, Grid};
use tradecore_book::scan::{self, DepthError, Message};
use tradecore_book::Side;

/// What a generated message holds.
#[derive(Clone, Debug)]
enum Model {
    Depth {
        symbol: String,
        event_time: u64,
        first: u64,
        last: u64,
        bids: Vec<(String, String)>,
        asks: Vec<(String, String)>,
    },
    AggTrade {
        symbol: String,
        trade_id: u64,
        price: String,
        qty: String,
        trade_time: u64,
        buyer_maker: bool,
    },
    BookTicker {
        symbol: String,
        update_id: u64,
        quote: [String; 4],
    },
    Other {
        kind: String,
    },
}

/// A JSON value, written with the generator's whitespace.
#[derive(Clone, Debug)]
enum J {
    Raw(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

/// The next piece of generated whitespace.
fn pad(ws: &mut impl Iterator<Item = &'static str>, out: &mut String) {
    out.push_str(ws.next().unwrap_or(""));
}

fn write_json(v: &J, ws: &mut impl Iterator<Item = &'static str>, out: &mut String) {
    match v {
        J::Raw(s) => out.push_str(s),
        J::Str(s) => {
            out.push('"');
            out.push_str(s);
            out.push('"');
        }
        J::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    pad(ws, out);
                    out.push(',');
                }
                pad(ws, out);
                write_json(item, ws, out);
            }
            pad(ws, out);
            out.push(']');
        }
        J::Obj(items) => {
            out.push('{');
            for (i, (k, item)) in items.iter().enumerate() {
                if i > 0 {
                    pad(ws, out);
                    out.push(',');
                }
                pad(ws, out);
                out.push('"');
                out.push_str(k);
                out.push('"');
                pad(ws, out);
                out.push(':');
                pad(ws, out);
                write_json(item, ws, out);
            }
            pad(ws, out);
            out.push('}');
        }
    }
}

fn levels_json(levels: &[(String, String)]) -> J {
    J::Arr(
        levels
            .iter()
            .map(|(p, q)| J::Arr(vec![J::Str(p.clone()), J::Str(q.clone())]))
            .collect(),
    )
}

/// The message's JSON tree: `{"stream": ..., "data": {...}}` with the extra keys and the
/// key order chosen by the generator.
fn to_json(m: &Model, extra: &[(String, J)], order: &[usize], stream_first: bool) -> J {
    let int = |v: u64| J::Raw(v.to_string());
    let (stream, mut data): (String, Vec<(String, J)>) = match m {
        Model::Depth {
            symbol,
            event_time,
            first,
            last,
            bids,
            asks,
        } => (
            format!("{}@depth@100ms", symbol.to_lowercase()),
            vec![
                ("e".into(), J::Str("depthUpdate".into())),
                ("E".into(), int(*event_time)),
                ("s".into(), J::Str(symbol.clone())),
                ("U".into(), int(*first)),
                ("u".into(), int(*last)),
                ("b".into(), levels_json(bids)),
                ("a".into(), levels_json(asks)),
            ],
        ),
        Model::AggTrade {
            symbol,
            trade_id,
            price,
            qty,
            trade_time,
            buyer_maker,
        } => (
            format!("{}@aggTrade", symbol.to_lowercase()),
            vec![
                ("e".into(), J::Str("aggTrade".into())),
                ("s".into(), J::Str(symbol.clone())),
                ("a".into(), int(*trade_id)),
                ("p".into(), J::Str(price.clone())),
                ("q".into(), J::Str(qty.clone())),
                ("T".into(), int(*trade_time)),
                ("m".into(), J::Raw(buyer_maker.to_string())),
                ("M".into(), J::Raw("true".into())),
            ],
        ),
        Model::BookTicker {
            symbol,
            update_id,
            quote,
        } => (
            format!("{}@bookTicker", symbol.to_lowercase()),
            vec![
                ("u".into(), int(*update_id)),
                ("s".into(), J::Str(symbol.clone())),
                ("b".into(), J::Str(quote[0].clone())),
                ("B".into(), J::Str(quote[1].clone())),
                ("a".into(), J::Str(quote[2].clone())),
                ("A".into(), J::Str(quote[3].clone())),
            ],
        ),
        Model::Other { kind } => (
            format!("xyz@{kind}"),
            vec![("k".into(), J::Obj(vec![("t".into(), int(1))]))],
        ),
    };
    data.extend(extra.iter().cloned());
    // A permutation of the data keys from the generated ranks.
    let mut idx: Vec<usize> = (0..data.len()).collect();
    idx.sort_by_key(|&i| (order.get(i).copied().unwrap_or(0), i));
    let data = idx.into_iter().map(|i| data[i].clone()).collect();
    let stream = ("stream".to_owned(), J::Str(stream));
    let data = ("data".to_owned(), J::Obj(data));
    J::Obj(if stream_first {
        vec![stream, data]
    } else {
        vec![data, stream]
    })
}

fn arb_decimal() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[0-9]{1,6}\\.[0-9]{1,8}",
        2 => "[0-9]{1,12}",
        1 => "[0-9.x-]{0,6}",
    ]
}

fn arb_levels() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((arb_decimal(), arb_decimal()), 0..6)
}

fn arb_model() -> impl Strategy<Value = Model> {
    let symbol = "[A-Z]{2,8}";
    prop_oneof![
        4 => (symbol, any::<u64>(), any::<u64>(), any::<u64>(), arb_levels(), arb_levels()).prop_map(
            |(symbol, event_time, first, last, bids, asks)| Model::Depth {
                symbol,
                event_time,
                first,
                last,
                bids,
                asks
            }
        ),
        2 => (symbol, any::<u64>(), arb_decimal(), arb_decimal(), any::<u64>(), any::<bool>())
            .prop_map(|(symbol, trade_id, price, qty, trade_time, buyer_maker)| {
                Model::AggTrade {
                    symbol,
                    trade_id,
                    price,
                    qty,
                    trade_time,
                    buyer_maker,
                }
            }),
        2 => (
            symbol,
            any::<u64>(),
            [arb_decimal(), arb_decimal(), arb_decimal(), arb_decimal()]
        )
            .prop_map(|(symbol, update_id, quote)| Model::BookTicker {
                symbol,
                update_id,
                quote
            }),
        1 => "kline_1m|trade|ticker|depth_x".prop_map(|kind| Model::Other { kind }),
    ]
}

/// Keys the scanner skips, with values of every JSON kind.
fn arb_extra() -> impl Strategy<Value = Vec<(String, J)>> {
    let value = prop_oneof![
        Just(J::Raw("null".into())),
        Just(J::Raw("-12.5e-3".into())),
        Just(J::Raw("0".into())),
        Just(J::Str("esc\\\"aped\\u00e9\\n".into())),
        Just(J::Str("plain".into())),
        Just(J::Arr(vec![
            J::Raw("1".into()),
            J::Obj(vec![("z".into(), J::Arr(vec![]))])
        ])),
        Just(J::Obj(vec![])),
    ];
    prop::collection::vec(("x[a-z]{0,3}|f|l|e", value), 0..3)
}

fn arb_ws() -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(
        prop_oneof![8 => Just(""), 1 => Just(" "), 1 => Just("\n\t "), 1 => Just("\r\n")],
        0..200,
    )
}

/// A generated message: its model and its JSON text.
fn arb_message() -> impl Strategy<Value = (Model, String)> {
    (
        arb_model(),
        arb_extra(),
        prop::collection::vec(0usize..20, 20),
        any::<bool>(),
        arb_ws(),
    )
        .prop_map(|(m, extra, order, stream_first, ws)| {
            let mut out = String::new();
            let mut it = ws.into_iter();
            write_json(
                &to_json(&m, &extra, &order, stream_first),
                &mut it,
                &mut out,
            );
            (m, out)
        })
}

/// `release_cases` cases in release builds, a tenth in debug builds; `PROPTEST_CASES` wins.
fn config(release_cases: u32) -> ProptestConfig {
    let default_cases = if cfg!(debug_assertions) {
        release_cases / 10
    } else {
        release_cases
    };
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/scan.txt"
        )))),
        ..ProptestConfig::default()
    }
}

fn grids() -> (Grid, Grid) {
    (
        Grid::parse("0.0001").unwrap(),
        Grid::parse("0.001").unwrap(),
    )
}

/// The levels `depth_levels` must produce, one `decimal::level` per pair: bids, then asks.
#[allow(clippy::type_complexity)] // reason: the same shape depth_levels returns
fn expected_levels(
    bids: &[(String, String)],
    asks: &[(String, String)],
    skip: bool,
) -> Result<(Vec<(Side, i64, u64)>, usize), (Side, usize)> {
    let (tick, lot) = grids();
    let mut out = Vec::new();
    let mut skipped = 0;
    for (side, levels) in [(Side::Buy, bids), (Side::Sell, asks)] {
        for (i, (p, q)) in levels.iter().enumerate() {
            match decimal::level(&tick, &lot, p, q, skip) {
                Ok(Some((price, qty))) => out.push((side, price, qty)),
                Ok(None) => skipped += 1,
                Err(_) => return Err((side, i)),
            }
        }
    }
    Ok((out, skipped))
}

/// The text with one edit at `at`: 0 = insert `byte`, 1 = delete, 2 = replace.
fn edit(text: &str, at: usize, how: u8, byte: u8) -> String {
    let mut b = text.as_bytes().to_vec();
    let at = at % (b.len() + 1);
    match how % 3 {
        0 => b.insert(at, byte),
        1 if at < b.len() => {
            b.remove(at);
        }
        _ if at < b.len() => b[at] = byte,
        _ => b.push(byte),
    }
    String::from_utf8_lossy(&b).into_owned()
}

/// Every entry point on `text`; panics only on a broken property.
fn exercise(text: &str, b0: usize, a0: usize) {
    let (tick, lot) = grids();
    let fields = scan::message(text);
    if let Some(Message::Depth {
        bids_at, asks_at, ..
    }) = scan::binance(text)
    {
        assert_eq!(text.as_bytes()[bids_at], b'[');
        assert_eq!(text.as_bytes()[asks_at], b'[');
        assert_eq!(
            fields.as_ref().and_then(|f| f.level_offsets()),
            Some((bids_at, asks_at))
        );
        let mut out = Vec::new();
        let r = scan::depth_levels(text, bids_at, asks_at, &tick, &lot, true, &mut out);
        assert_ne!(r, Err(DepthError::NotDepth), "{text}");
    }
    let _ = scan::each_pair(text, b0, text.len(), |_, _| true);
    let _ = scan::each_pair(text, b0, a0, |_, _| true);
    let mut out = Vec::new();
    if let Ok(skipped) = scan::depth_levels(text, b0, a0, &tick, &lot, true, &mut out) {
        // The same levels, read pair by pair.
        let mut again = Vec::new();
        let mut skipped_again = 0;
        for (side, at) in [(Side::Buy, b0), (Side::Sell, a0)] {
            scan::each_pair(text, at, text.len(), |p, q| {
                match decimal::level(&tick, &lot, p, q, true).unwrap() {
                    Some((price, qty)) => again.push((side, price, qty)),
                    None => skipped_again += 1,
                }
                true
            })
            .unwrap();
        }
        assert_eq!((out, skipped), (again, skipped_again));
    }
}

proptest! {
    #![proptest_config(config(5_000))]

    #[test]
    fn generated_messages_read_back((model, text) in arb_message(), skip in any::<bool>()) {
        let got = scan::binance(&text);
        match &model {
            Model::Depth { symbol, event_time, first, last, bids, asks } => {
                let Some(Message::Depth {
                    symbol: s, event_time: e, first: f, last: l, bids_at, asks_at,
                }) = got else {
                    return Err(TestCaseError::fail(format!("{got:?} for {text}")));
                };
                prop_assert_eq!((s, e, f, l), (symbol.as_str(), *event_time, *first, *last));
                let (tick, lot) = grids();
                let mut out = Vec::new();
                let r = scan::depth_levels(&text, bids_at, asks_at, &tick, &lot, skip, &mut out);
                match (r, expected_levels(bids, asks, skip)) {
                    (Ok(n), Ok((levels, skipped))) => {
                        prop_assert_eq!(out, levels);
                        prop_assert_eq!(n, skipped);
                    }
                    (Err(DepthError::Level { side, index, .. }), Err(at)) => {
                        prop_assert_eq!((side, index), at);
                    }
                    (r, want) => {
                        return Err(TestCaseError::fail(format!("{r:?} vs {want:?}: {text}")));
                    }
                }
            }
            Model::AggTrade { symbol, trade_id, price, qty, trade_time, buyer_maker } => {
                prop_assert_eq!(got, Some(Message::AggTrade {
                    symbol,
                    trade_id: *trade_id,
                    price,
                    qty,
                    trade_time: *trade_time,
                    buyer_maker: *buyer_maker,
                }));
            }
            Model::BookTicker { symbol, update_id, quote } => {
                prop_assert_eq!(got, Some(Message::BookTicker {
                    symbol,
                    update_id: *update_id,
                    bid: &quote[0],
                    bid_qty: &quote[1],
                    ask: &quote[2],
                    ask_qty: &quote[3],
                }));
            }
            Model::Other { kind } => {
                let stream = format!("xyz@{kind}");
                let want = if kind.starts_with("depth") {
                    None
                } else {
                    Some(Message::Other { stream: &stream })
                };
                prop_assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn any_text_and_offsets_are_safe(
        (_, text) in arb_message(),
        noise in prop::collection::vec(any::<u8>(), 0..64),
        at in any::<usize>(),
        how in any::<u8>(),
        byte in prop_oneof![any::<u8>(), prop::sample::select(b"[]{}\",:\\0-.e ".to_vec())],
        b0 in prop_oneof![0usize..400, any::<usize>()],
        a0 in prop_oneof![0usize..400, any::<usize>()],
    ) {
        exercise(&edit(&text, at, how, byte), b0, a0);
        exercise(&String::from_utf8_lossy(&noise), b0 % 70, a0 % 70);
        exercise(&text, b0, a0);
    }
}
