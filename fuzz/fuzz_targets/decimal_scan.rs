//! Fuzz target: the market-data fast path of `tradecore_book` on arbitrary bytes: the decimal
//! grid parser (`decimal::Grid::parse`, `Grid::steps`, `Grid::format`, `decimal::level`) and
//! the Binance scanner (`scan::message`, `scan::binance`, `scan::each_pair`,
//! `scan::depth_levels`).
//!
//! Input layout: byte 0 picks the tick and lot grids from a small set (or the grid parsed from
//! the text, when it parses), bytes 1..5 are two offsets for the array readers; the whole input
//! (made UTF-8, lossily) is the text.
//!
//! Properties: nothing panics; a grid that parses has a normalized text that parses to the same
//! grid; a value read as `n` steps formats back to text that reads as `n` again; offsets
//! returned by `binance` point at `[` and `depth_levels` there never says `NotDepth`; and a
//! successful `depth_levels` at any offsets yields exactly what `each_pair` + `decimal::level`
//! yield pair by pair.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tradecore_book::decimal::{self, Grid, StepError};
use tradecore_book::scan::{self, DepthError, Message};
use tradecore_book::Side;

const GRIDS: [&str; 6] = ["0.00000001", "0.0001", "0.5", "1", "10", "0.25"];

/// `s` read as steps of `grid` and, when it reads, formatted and read again.
fn round_trip(grid: &Grid, s: &[u8]) {
    match grid.steps(s) {
        Ok(n) => {
            // n * units is the scaled value, which fit in u128: formatting cannot fail.
            let text = grid.format(n).expect("a parsed value formats");
            assert_eq!(grid.steps(text.as_bytes()), Ok(n), "{text}");
            assert_eq!(grid.steps_or_skip(s, true), Ok(Some(n)));
        }
        Err(StepError::OffGrid) => assert_eq!(grid.steps_or_skip(s, true), Ok(None)),
        Err(e) => assert_eq!(grid.steps_or_skip(s, true), Err(e)),
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let text: &str = &text;
    let pick = data.first().copied().unwrap_or(0);
    let offset = |i: usize| {
        let lo = data.get(i).copied().unwrap_or(0) as usize;
        let hi = data.get(i + 1).copied().unwrap_or(0) as usize;
        (hi << 8) | lo
    };
    let (b0, a0) = (offset(1), offset(3));

    // Grids: the text itself (its first line) as a grid step, else a fixed pair.
    let parsed = Grid::parse(text.lines().next().unwrap_or(""));
    if let Ok(g) = &parsed {
        let again = Grid::parse(g.text()).expect("a normalized grid parses");
        assert_eq!(&again, g);
        round_trip(g, data);
    }
    let fixed = |i: u8| Grid::parse(GRIDS[usize::from(i) % GRIDS.len()]).unwrap();
    let tick = match (&parsed, pick & 0x80) {
        (Ok(g), 0) => g.clone(),
        _ => fixed(pick),
    };
    let lot = fixed(pick >> 3);
    round_trip(&tick, data);
    round_trip(&lot, data);
    for line in text.split(['\n', ',', '"']) {
        round_trip(&tick, line.as_bytes());
    }
    let _ = decimal::level(&tick, &lot, text, text, pick & 1 == 0);

    // The scanner.
    let fields = scan::message(text);
    match scan::binance(text) {
        Some(Message::Depth {
            bids_at, asks_at, ..
        }) => {
            assert_eq!(text.as_bytes()[bids_at], b'[');
            assert_eq!(text.as_bytes()[asks_at], b'[');
            assert_eq!(
                fields.as_ref().and_then(|f| f.level_offsets()),
                Some((bids_at, asks_at))
            );
            let mut out = Vec::new();
            let r = scan::depth_levels(text, bids_at, asks_at, &tick, &lot, true, &mut out);
            assert_ne!(r, Err(DepthError::NotDepth));
        }
        Some(Message::AggTrade { price, qty, .. }) => {
            let _ = decimal::level(&tick, &lot, price, qty, false);
        }
        Some(_) => {}
        None => {}
    }
    let _ = scan::each_pair(text, b0, a0, |_, _| true);
    let mut out = Vec::new();
    let skip = pick & 2 == 0;
    if let Ok(skipped) = scan::depth_levels(text, b0, a0, &tick, &lot, skip, &mut out) {
        let mut again = Vec::new();
        let mut skipped_again = 0;
        for (side, at) in [(Side::Buy, b0), (Side::Sell, a0)] {
            scan::each_pair(text, at, text.len(), |p, q| {
                match decimal::level(&tick, &lot, p, q, skip).expect("read once already") {
                    Some((price, qty)) => again.push((side, price, qty)),
                    None => skipped_again += 1,
                }
                true
            })
            .expect("walked once already");
        }
        assert_eq!((out, skipped), (again, skipped_again));
    }
});
