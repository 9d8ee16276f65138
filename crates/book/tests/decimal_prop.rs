//! Property tests of `tradecore_book::decimal`: the fast grid parser against a naive reference.
//!
//! The reference (`reference_steps`) works on the text itself: it finds the first bad byte,
//! compares digit strings with `u128::MAX` as strings to detect overflow, scales the value by
//! padding its fraction with zeros to the grid's scale, and only then parses one `u128` and
//! divides it by the grid step. The fast `Grid::steps` does all of it in one pass of checked
//! `u128` arithmetic. They must agree on every input: the same number of steps, or the same
//! error variant (`Syntax`, `Range`, `OffGrid`) by the documented order of errors.
//!
//! * `steps_agree_with_reference`: random grids (scales 0..=30, steps up to 10^12, written
//!   with leading/trailing zeros and spaces) against values from several generators: plain
//!   decimals of up to 45 integer and 45 fraction digits (so every overflow edge is reached),
//!   strings over `0-9 . - + e x` and spaces, arbitrary bytes, and exact multiples of the grid
//!   with a random edit.
//! * `grid_parse_agrees_with_reference`: `Grid::parse` against a string-based reading of the
//!   step (its scale, its integer value, its normalized text) on the same grid texts and on
//!   garbage.
//! * `format_round_trips`: `Grid::format(n)` reads back as `n`, also with leading and
//!   trailing zeros added, and `n` steps plus a fraction of a step is off the grid.
//! * `level_matches_its_parts`: `decimal::level` is `steps_or_skip` of both strings followed by
//!   the `i64`/`u64` range checks, with errors in the documented order.
//!
//! Failing cases are shrunk and their seeds kept in `proptest-regressions/decimal.txt`.
//! 20,000 cases per property in release builds, a tenth in debug builds; `PROPTEST_CASES`
//! overrides both. Cost: about a second in release mode.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use tradecore_book::decimal::{self, Field, Grid, GridErrorKind, LevelError, StepError};

const U128_MAX: &str = "340282366920938463463374607431768211455";

/// Whether a string of ASCII digits (leading zeros allowed) is a number beyond `u128::MAX`.
fn exceeds_u128(digits: &[u8]) -> bool {
    let start = digits
        .iter()
        .position(|&d| d != b'0')
        .unwrap_or(digits.len());
    let d = &digits[start..];
    d.len() > U128_MAX.len() || (d.len() == U128_MAX.len() && d > U128_MAX.as_bytes())
}

/// A grid step read from its text: (scale, integer step at that scale, normalized text).
fn reference_grid(text: &str) -> Result<(usize, u128, String), GridErrorKind> {
    let t = text.trim();
    let (int_part, frac_part) = t.split_once('.').unwrap_or((t, ""));
    let all_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty())
        || !all_digits(int_part)
        || !all_digits(frac_part)
    {
        return Err(GridErrorKind::NotDecimal);
    }
    let frac = frac_part.trim_end_matches('0');
    if frac.len() > 30 {
        return Err(GridErrorKind::TooManyPlaces);
    }
    let joined = format!("{int_part}{frac}");
    if exceeds_u128(joined.as_bytes()) {
        return Err(GridErrorKind::TooLarge);
    }
    let units: u128 = if joined.is_empty() {
        0
    } else {
        joined.parse().unwrap()
    };
    if units == 0 {
        return Err(GridErrorKind::NotPositive);
    }
    let int_norm = match int_part.trim_start_matches('0') {
        "" => "0",
        s => s,
    };
    let text = if frac.is_empty() {
        int_norm.to_owned()
    } else {
        format!("{int_norm}.{frac}")
    };
    Ok((frac.len(), units, text))
}

/// `s` in steps of the grid `text`, by string manipulation (see the module doc).
fn reference_steps(grid_text: &str, s: &[u8]) -> Result<u128, StepError> {
    let (scale, units, _) = reference_grid(grid_text).expect("a valid grid");
    // The first byte that is neither a digit nor the first dot.
    let first_dot = s.iter().position(|&b| b == b'.');
    let bad = s
        .iter()
        .enumerate()
        .position(|(i, &b)| !(b.is_ascii_digit() || (b == b'.' && Some(i) == first_dot)));
    // The integer digits read before the first dot or bad byte: too many is a range error,
    // found before anything after them.
    let int_end = [first_dot, bad]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(s.len());
    let int_digits = &s[..int_end];
    if exceeds_u128(int_digits) {
        return Err(StepError::Range);
    }
    if bad.is_some() {
        return Err(StepError::Syntax);
    }
    let frac_digits: &[u8] = match first_dot {
        Some(d) => &s[d + 1..],
        None => b"",
    };
    if int_digits.is_empty() && frac_digits.is_empty() {
        return Err(StepError::Syntax);
    }
    // Digits beyond the grid's scale must all be zero.
    if frac_digits.len() > scale && frac_digits[scale..].iter().any(|&d| d != b'0') {
        return Err(StepError::OffGrid);
    }
    // value * 10^scale as a digit string: the fraction cut or zero-padded to the scale.
    let mut scaled = int_digits.to_vec();
    for i in 0..scale {
        scaled.push(*frac_digits.get(i).unwrap_or(&b'0'));
    }
    if exceeds_u128(&scaled) {
        return Err(StepError::Range);
    }
    let scaled: u128 = if scaled.is_empty() {
        0
    } else {
        std::str::from_utf8(&scaled).unwrap().parse().unwrap()
    };
    if scaled % units != 0 {
        return Err(StepError::OffGrid);
    }
    Ok(scaled / units)
}

/// `units * 10^-scale` as decimal text (no normalization).
fn grid_text_of(units: u128, scale: usize) -> String {
    let digits = units.to_string();
    if scale == 0 {
        return digits;
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (i, f) = padded.split_at(padded.len() - scale);
    format!("{i}.{f}")
}

/// Grid texts: a positive step of up to 10^12 units at scale 0..=30, sometimes written with
/// leading zeros, trailing zeros or surrounding spaces.
fn arb_grid_text() -> impl Strategy<Value = String> {
    let units = prop_oneof![
        3 => 1u128..=10,
        2 => 1u128..=1000,
        1 => 1u128..=1_000_000_000_000,
        1 => prop::sample::select(vec![1u128, 5, 10, 25, 100, 1000]),
    ];
    (units, 0usize..=30, 0usize..3, 0usize..3, any::<bool>()).prop_map(
        |(u, scale, lead, trail, space)| {
            let mut t = grid_text_of(u, scale);
            t = format!("{}{t}", "0".repeat(lead));
            if trail > 0 {
                if !t.contains('.') {
                    t.push('.');
                }
                t.push_str(&"0".repeat(trail));
            }
            if space {
                t = format!(" {t}\t");
            }
            t
        },
    )
}

/// Value strings: see the module doc.
fn arb_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => "[0-9]{0,45}(\\.[0-9]{0,45})?".prop_map(String::into_bytes),
        2 => "0{0,3}[0-9]{0,20}\\.?[0-9]{0,20}0{0,10}".prop_map(String::into_bytes),
        2 => "[0-9.+eEx -]{0,48}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..48),
        1 => "9{36,42}(\\.[0-9]{0,4})?[x.]?".prop_map(String::into_bytes),
    ]
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
            "/proptest-regressions/decimal.txt"
        )))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(20_000))]

    #[test]
    fn steps_agree_with_reference(grid_text in arb_grid_text(), value in arb_value()) {
        let grid = Grid::parse(&grid_text).unwrap();
        prop_assert_eq!(
            grid.steps(&value),
            reference_steps(&grid_text, &value),
            "grid {:?} value {:?}",
            grid_text,
            String::from_utf8_lossy(&value)
        );
    }

    #[test]
    fn grid_parse_agrees_with_reference(
        text in prop_oneof![
            3 => arb_grid_text(),
            1 => "[0-9. +-eE]{0,45}",
            1 => "0\\.0{28,32}[0-9]{0,3}",
            1 => "[0-9]{36,42}",
        ],
    ) {
        match (Grid::parse(&text), reference_grid(&text)) {
            (Ok(g), Ok((scale, units, norm))) => {
                prop_assert_eq!(g.digits() as usize, scale);
                prop_assert_eq!(g.units(), units);
                prop_assert_eq!(g.text(), norm.as_str());
                // The normalized text is a fixed point.
                prop_assert_eq!(Grid::parse(g.text()).unwrap(), g.clone());
            }
            (Err(e), Err(kind)) => {
                prop_assert_eq!(e.kind, kind);
                prop_assert_eq!(&e.text, &text);
                let prefix = format!("{text:?} ");
                prop_assert!(e.to_string().starts_with(&prefix));
            }
            (got, want) => prop_assert!(false, "{:?}: got {:?}, want {:?}", text, got, want),
        }
    }

    #[test]
    fn format_round_trips(
        grid_text in arb_grid_text(),
        n in prop_oneof![0u128..1000, any::<u64>().prop_map(u128::from), any::<u128>()],
        lead in 0usize..3,
        trail in 0usize..3,
        frac_num in 1u128..1000,
    ) {
        let grid = Grid::parse(&grid_text).unwrap();
        let Some(text) = grid.format(n) else {
            // Only when n * units does not fit.
            prop_assert!(n.checked_mul(grid.units()).is_none());
            return Ok(());
        };
        prop_assert_eq!(grid.steps(text.as_bytes()), Ok(n), "{}", text);
        let mut padded = format!("{}{text}", "0".repeat(lead));
        if trail > 0 {
            if !padded.contains('.') {
                padded.push('.');
            }
            padded.push_str(&"0".repeat(trail));
        }
        prop_assert_eq!(grid.steps(padded.as_bytes()), Ok(n), "{}", padded);
        // Part of a step more: off the grid (one more digit of scale keeps it exact).
        let units = grid.units();
        if let Some(scaled) = n.checked_mul(units).and_then(|v| v.checked_mul(1000)) {
            let part = frac_num % (units * 1000);
            if part % 1000 != 0 || (part / 1000) % units != 0 {
                if let Some(v) = scaled.checked_add(part) {
                    let t = grid_text_of(v, grid.digits() as usize + 3);
                    prop_assert_eq!(
                        grid.steps(t.as_bytes()),
                        Err(StepError::OffGrid),
                        "{}", t
                    );
                }
            }
        }
    }

    #[test]
    fn level_matches_its_parts(
        tick_text in arb_grid_text(),
        lot_text in arb_grid_text(),
        p in arb_value(),
        q in arb_value(),
        skip in any::<bool>(),
    ) {
        let (tick, lot) = (Grid::parse(&tick_text).unwrap(), Grid::parse(&lot_text).unwrap());
        let (p, q) = (String::from_utf8_lossy(&p), String::from_utf8_lossy(&q));
        let got = decimal::level(&tick, &lot, &p, &q, skip);
        let want = (|| {
            let value = |grid: &Grid, s: &str| match grid.steps(s.as_bytes()) {
                Ok(v) => Ok(Some(v)),
                Err(StepError::OffGrid) if skip => Ok(None),
                Err(e) => Err(e),
            };
            let ps = value(&tick, &p).map_err(|error| LevelError::Value {
                field: Field::Price,
                value: &p,
                error,
            })?;
            let qs = value(&lot, &q).map_err(|error| LevelError::Value {
                field: Field::Qty,
                value: &q,
                error,
            })?;
            match (ps, qs) {
                (Some(ps), Some(qs)) => {
                    if ps > i64::MAX as u128 {
                        Err(LevelError::PriceBeyond)
                    } else if qs > u128::from(u64::MAX) {
                        Err(LevelError::QtyBeyond)
                    } else {
                        Ok(Some((ps as i64, qs as u64)))
                    }
                }
                _ => Ok(None),
            }
        })();
        prop_assert_eq!(got, want);
    }
}

/// The reference itself on hand-worked cases, so a bug shared by both cannot hide.
#[test]
fn reference_hand_cases() {
    let cases: &[(&str, &str, Result<u128, StepError>)] = &[
        ("0.0001", "0.35210000", Ok(3521)),
        ("0.5", "2.5", Ok(5)),
        ("0.5", "2.3", Err(StepError::OffGrid)),
        ("10", "120", Ok(12)),
        ("10", "125", Err(StepError::OffGrid)),
        ("1", "1e5", Err(StepError::Syntax)),
        ("1", "", Err(StepError::Syntax)),
        ("1", ".", Err(StepError::Syntax)),
        ("1", U128_MAX, Ok(u128::MAX)),
        (
            "1",
            "340282366920938463463374607431768211456",
            Err(StepError::Range),
        ),
        (
            "0.01",
            "340282366920938463463374607431768211455",
            Err(StepError::Range),
        ),
        ("0.01", "1.001", Err(StepError::OffGrid)),
        (
            "1",
            "99999999999999999999999999999999999999999x",
            Err(StepError::Range),
        ),
        (
            "1",
            "x99999999999999999999999999999999999999999",
            Err(StepError::Syntax),
        ),
    ];
    for &(grid, value, want) in cases {
        assert_eq!(
            reference_steps(grid, value.as_bytes()),
            want,
            "{grid} {value}"
        );
        assert_eq!(
            Grid::parse(grid).unwrap().steps(value.as_bytes()),
            want,
            "{grid} {value}"
        );
    }
}
