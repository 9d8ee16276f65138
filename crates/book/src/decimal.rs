//! Exact decimal strings <-> integer grid steps (ticks of a price grid, lots of a quantity grid).
//!
//! Owns: [`Grid`] (a positive decimal step such as a tick size `"0.01"` or a lot size
//! `"0.00100000"`, parsed once), the conversion of an exchange's decimal text into a whole
//! number of steps ([`Grid::steps`]), of one `[price, qty]` level into `(ticks, lots)`
//! ([`level`], [`checked_level`]) and back from steps to text ([`Grid::format`]); plus the
//! error types of those conversions, whose `Display` is the wording the Python layer shows.
//! Market data enters the book through here: `"0.35210000"` on a tick of `"0.0001"` is 3521
//! ticks, computed on the digits with `u128` arithmetic (no float, no decimal object).
//!
//! Grammar: a value is `digits[.digits]` with at least one digit (`"6"`, `"6."`, `".5"`,
//! `"0.35210000"`); no sign, no exponent, no spaces, no `_`. A grid step is the same after
//! trimming surrounding whitespace, must be positive and have at most 30 significant decimal
//! places.
//!
//! Invariants:
//! * `Grid`: `units > 0`, `digits <= 30`; the grid is `units * 10^-digits` with no trailing
//!   zero in the fraction (`digits` is the minimal scale), and `text()` is its normalized
//!   decimal form (no leading zeros before the integer digit, no trailing fraction zeros).
//! * `steps` is exact: `Ok(n)` only if the value equals `n` grid steps exactly; a valid
//!   decimal that is not a whole multiple is [`StepError::OffGrid`], never rounded.
//! * Errors are reported in reading order: an integer part that exceeds `u128` is
//!   [`StepError::Range`] as soon as its digits do (even if a bad character follows), a bad
//!   character is [`StepError::Syntax`]; after the whole string is read, no digit at all is
//!   `Syntax`, a non-zero digit beyond the grid's scale is `OffGrid`, a value whose scaled
//!   form (`value * 10^digits`) exceeds `u128` is `Range`, and a remainder is `OffGrid`.
//! * Nothing here panics on any input (`tests`, the proptest against a string-arithmetic
//!   reference in `tests/decimal_prop.rs` and the `decimal_scan` fuzz target check it).
//!
//! Cost: `steps` is one pass over the bytes plus one `u128` multiply and one `u128`
//! division (about 10-20 ns for Binance's 10-character decimals); it allocates nothing, and
//! neither do [`level`] and [`checked_level`]. Errors are small `Copy` values except
//! [`GridError`] (built once per grid, it keeps the text it rejects). `Grid::parse` and
//! `Grid::format` allocate their `String`s.

use std::fmt;

/// `10^i` for `i` in `0..=38` (`10^38` is the largest power of ten below `u128::MAX`).
const POW10: [u128; 39] = {
    let mut t = [1u128; 39];
    let mut i = 1;
    while i < 39 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// Most significant decimal places a grid step may have.
pub const MAX_GRID_DIGITS: u32 = 30;

/// A decimal grid (tick or lot size): `step = units * 10^-digits`, `units > 0`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grid {
    /// Fraction digits kept when scaling a value to an integer.
    digits: u32,
    /// The grid step at that scale.
    units: u128,
    /// The grid in normalized decimal text, for messages and getters.
    text: String,
}

/// Why a grid step (tick size, lot size) was refused by [`Grid::parse`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GridError {
    /// The text as given (untrimmed).
    pub text: String,
    /// What is wrong with it.
    pub kind: GridErrorKind,
}

/// The reasons of a [`GridError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GridErrorKind {
    /// Not `digits[.digits]` with at least one digit (sign, exponent, stray character, empty).
    NotDecimal,
    /// More than [`MAX_GRID_DIGITS`] significant decimal places.
    TooManyPlaces,
    /// The step, scaled to an integer, exceeds `u128`.
    TooLarge,
    /// Zero.
    NotPositive,
}

impl fmt::Display for GridError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = &self.text;
        match self.kind {
            GridErrorKind::NotDecimal => {
                write!(f, "{text:?} is not a plain positive decimal number")
            }
            GridErrorKind::TooManyPlaces => {
                write!(f, "{text:?} has more than {MAX_GRID_DIGITS} decimal places")
            }
            GridErrorKind::TooLarge => write!(f, "{text:?} is too large"),
            GridErrorKind::NotPositive => write!(f, "{text:?} must be positive"),
        }
    }
}

impl std::error::Error for GridError {}

/// Why a decimal value could not be turned into grid steps by [`Grid::steps`].
///
/// `Display` is the predicate of the message, to follow the value: `"is not a plain decimal
/// number"`, `"is out of range for the book"`, `"is off the grid"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepError {
    /// Not `digits[.digits]` (empty, sign, exponent, stray character ...).
    Syntax,
    /// An integer part beyond `u128`, or a value whose scaled form is beyond `u128`.
    Range,
    /// A valid decimal that is not a whole multiple of the grid.
    OffGrid,
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StepError::Syntax => "is not a plain decimal number",
            StepError::Range => "is out of range for the book",
            StepError::OffGrid => "is off the grid",
        })
    }
}

impl std::error::Error for StepError {}

/// Which value of a `[price, qty]` level an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// The price (tick grid, `i64` ticks).
    Price,
    /// The quantity (lot grid, `u64` lots).
    Qty,
}

impl Field {
    /// `"price"` or `"qty"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Price => "price",
            Field::Qty => "qty",
        }
    }
}

/// Why one `[price, qty]` level could not be read ([`level`], [`checked_level`]).
///
/// `Display` words it without the level's position: `price "1.x" is not a plain decimal
/// number`, `qty is beyond 2**64 - 1 lots`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LevelError<'a> {
    /// The price or quantity string failed [`Grid::steps`]; `value` is that string.
    Value {
        /// Which of the two.
        field: Field,
        /// The string as received.
        value: &'a str,
        /// Why it failed.
        error: StepError,
    },
    /// The price is a whole number of ticks beyond `i64::MAX`.
    PriceBeyond,
    /// The quantity is a whole number of lots beyond `u64::MAX`.
    QtyBeyond,
}

impl fmt::Display for LevelError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LevelError::Value {
                field,
                value,
                error,
            } => write!(f, "{} {value:?} {error}", field.as_str()),
            LevelError::PriceBeyond => f.write_str("price is beyond 2**63 - 1 ticks"),
            LevelError::QtyBeyond => f.write_str("qty is beyond 2**64 - 1 lots"),
        }
    }
}

impl std::error::Error for LevelError<'_> {}

impl Grid {
    /// Parse a positive grid step such as `"0.00010000"`, `"1"` or `"0.5"` (surrounding
    /// whitespace ignored).
    pub fn parse(text: &str) -> Result<Grid, GridError> {
        let err = |kind| GridError {
            text: text.to_owned(),
            kind,
        };
        let t = text.trim();
        let (int_part, frac_part) = match t.split_once('.') {
            Some((i, f)) => (i, f),
            None => (t, ""),
        };
        let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (int_part.is_empty() && frac_part.is_empty())
            || !digits_ok(int_part)
            || !digits_ok(frac_part)
        {
            return Err(err(GridErrorKind::NotDecimal));
        }
        let frac = frac_part.trim_end_matches('0');
        if frac.len() > MAX_GRID_DIGITS as usize {
            return Err(err(GridErrorKind::TooManyPlaces));
        }
        let digits = frac.len() as u32;
        let mut units: u128 = 0;
        for b in int_part.bytes().chain(frac.bytes()) {
            units = units
                .checked_mul(10)
                .and_then(|u| u.checked_add(u128::from(b - b'0')))
                .ok_or_else(|| err(GridErrorKind::TooLarge))?;
        }
        if units == 0 {
            return Err(err(GridErrorKind::NotPositive));
        }
        let int_trim = int_part.trim_start_matches('0');
        let norm = match (int_trim.is_empty(), frac.is_empty()) {
            (true, true) => "0".to_owned(),
            (true, false) => format!("0.{frac}"),
            (false, true) => int_trim.to_owned(),
            (false, false) => format!("{int_trim}.{frac}"),
        };
        Ok(Grid {
            digits,
            units,
            text: norm,
        })
    }

    /// Fraction digits of the grid step (its scale): 4 for `"0.0001"`, 0 for `"10"`.
    pub fn digits(&self) -> u32 {
        self.digits
    }

    /// The grid step as an integer at [`digits`](Self::digits): 1 for `"0.0001"`, 10 for
    /// `"10"`, 5 for `"0.5"`.
    pub fn units(&self) -> u128 {
        self.units
    }

    /// The grid step as normalized decimal text (`"0.0001"` for `"0.00010000"`).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// `s` as a whole number of grid steps (see the module doc for the grammar and the order
    /// of errors).
    #[inline(always)] // reason: the per-value hot path; inlined as it was in the binding
    pub fn steps(&self, s: &[u8]) -> Result<u128, StepError> {
        let mut int_val: u128 = 0;
        let mut frac_val: u128 = 0;
        let mut frac_len: u32 = 0;
        let mut seen_digit = false;
        let mut seen_dot = false;
        let mut off_grid = false;
        for &b in s {
            match b {
                b'0'..=b'9' => {
                    seen_digit = true;
                    let d = u128::from(b - b'0');
                    if !seen_dot {
                        int_val = int_val
                            .checked_mul(10)
                            .and_then(|v| v.checked_add(d))
                            .ok_or(StepError::Range)?;
                    } else if frac_len < self.digits {
                        // At most 30 digits: below 10^30, no overflow.
                        frac_val = frac_val * 10 + d;
                        frac_len += 1;
                    } else if d != 0 {
                        off_grid = true;
                    }
                }
                b'.' if !seen_dot => seen_dot = true,
                _ => return Err(StepError::Syntax),
            }
        }
        if !seen_digit {
            return Err(StepError::Syntax);
        }
        if off_grid {
            return Err(StepError::OffGrid);
        }
        let scale = POW10[self.digits as usize];
        let scaled = int_val
            .checked_mul(scale)
            .and_then(|v| v.checked_add(frac_val * POW10[(self.digits - frac_len) as usize]))
            .ok_or(StepError::Range)?;
        if scaled % self.units != 0 {
            return Err(StepError::OffGrid);
        }
        Ok(scaled / self.units)
    }

    /// Like [`steps`](Self::steps), but an off-grid value is `Ok(None)` when `skip_off_grid`
    /// (syntax and range errors are still errors).
    #[inline]
    pub fn steps_or_skip(&self, s: &[u8], skip_off_grid: bool) -> Result<Option<u128>, StepError> {
        match self.steps(s) {
            Ok(v) => Ok(Some(v)),
            Err(StepError::OffGrid) if skip_off_grid => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `steps` grid steps as plain decimal text with exactly [`digits`](Self::digits)
    /// fraction digits (`"0.3521"` for 3521 steps of `"0.0001"`, `"120"` for 12 steps of
    /// `"10"`); `None` if `steps * units` exceeds `u128`. [`steps`](Self::steps) reads the
    /// result back as `steps`.
    pub fn format(&self, steps: u128) -> Option<String> {
        let scaled = steps.checked_mul(self.units)?;
        let digits = self.digits as usize;
        if digits == 0 {
            return Some(scaled.to_string());
        }
        let scale = POW10[digits];
        let (int_part, frac_part) = (scaled / scale, scaled % scale);
        Some(format!("{int_part}.{frac_part:0digits$}"))
    }
}

/// Ticks and lots from grid steps already parsed (`None` = left out as off the grid): `None`
/// if either is `None`, else the pair range-checked into `(i64 ticks, u64 lots)` (price
/// first).
#[inline]
pub fn checked_level(
    price: Option<u128>,
    qty: Option<u128>,
) -> Result<Option<(i64, u64)>, LevelError<'static>> {
    let (Some(price), Some(qty)) = (price, qty) else {
        return Ok(None);
    };
    let price = i64::try_from(price).map_err(|_| LevelError::PriceBeyond)?;
    let qty = u64::try_from(qty).map_err(|_| LevelError::QtyBeyond)?;
    Ok(Some((price, qty)))
}

/// One level's price and quantity strings as `(ticks, lots)`; `Ok(None)` when either is off
/// its grid and `skip_off_grid`. Checks in order: the price string, the quantity string (even
/// when the price was off the grid and skipped), the price range, the quantity range.
#[inline]
pub fn level<'a>(
    tick: &Grid,
    lot: &Grid,
    price: &'a str,
    qty: &'a str,
    skip_off_grid: bool,
) -> Result<Option<(i64, u64)>, LevelError<'a>> {
    let p = tick
        .steps_or_skip(price.as_bytes(), skip_off_grid)
        .map_err(|error| LevelError::Value {
            field: Field::Price,
            value: price,
            error,
        })?;
    let q = lot
        .steps_or_skip(qty.as_bytes(), skip_off_grid)
        .map_err(|error| LevelError::Value {
            field: Field::Qty,
            value: qty,
            error,
        })?;
    checked_level(p, q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(s: &str) -> Grid {
        Grid::parse(s).unwrap()
    }

    fn grid_err(s: &str) -> (GridErrorKind, String) {
        let e = Grid::parse(s).unwrap_err();
        (e.kind, e.to_string())
    }

    #[test]
    fn grid_parse_and_normalize() {
        let t = g("0.00010000");
        assert_eq!((t.digits(), t.units(), t.text()), (4, 1, "0.0001"));
        let t = g(" 0010.50 ");
        assert_eq!((t.digits(), t.units(), t.text()), (1, 105, "10.5"));
        assert_eq!(g("10").units(), 10);
        assert_eq!(g("10").text(), "10");
        assert_eq!(g("0.5").units(), 5);
        assert_eq!(g(".5").text(), "0.5");
        assert_eq!(g("5.").text(), "5");
        // Exactly 30 places is allowed; trailing zeros beyond do not count.
        let thirty = format!("0.{}1000", "0".repeat(29));
        assert_eq!(g(&thirty).digits(), 30);
    }

    #[test]
    fn grid_errors_every_variant() {
        for bad in [
            "", " ", ".", "-1", "+1", "1e-3", "1E3", "0x10", "1.2.3", "1,5", "nan",
        ] {
            assert_eq!(grid_err(bad).0, GridErrorKind::NotDecimal, "{bad:?}");
        }
        assert_eq!(
            grid_err("1e-3").1,
            "\"1e-3\" is not a plain positive decimal number"
        );
        let many = format!("0.{}1", "0".repeat(30));
        assert_eq!(
            grid_err(&many),
            (
                GridErrorKind::TooManyPlaces,
                format!("{many:?} has more than 30 decimal places")
            )
        );
        let big = "9".repeat(40);
        assert_eq!(
            grid_err(&big),
            (GridErrorKind::TooLarge, format!("{big:?} is too large"))
        );
        for zero in ["0", "0.000", "000", ".0"] {
            assert_eq!(
                grid_err(zero),
                (
                    GridErrorKind::NotPositive,
                    format!("{zero:?} must be positive")
                )
            );
        }
        // The message quotes the text as given, untrimmed.
        assert_eq!(grid_err(" 0 ").1, "\" 0 \" must be positive");
    }

    #[test]
    fn steps_ok_and_every_error() {
        let t = g("0.0001");
        assert_eq!(t.steps(b"0.35210000"), Ok(3521));
        assert_eq!(t.steps(b"6"), Ok(60000));
        assert_eq!(t.steps(b"6."), Ok(60000));
        assert_eq!(t.steps(b".5"), Ok(5000));
        assert_eq!(t.steps(b"0"), Ok(0));
        assert_eq!(t.steps(b"000.0000000"), Ok(0));
        assert_eq!(t.steps(b"0.35215000"), Err(StepError::OffGrid));
        for bad in [
            &b"0.3521x"[..],
            b"-1",
            b"+1",
            b"",
            b".",
            b"1.2.3",
            b"1e5",
            b"1E-2",
            b" 1",
            b"1 ",
            b"1_000",
            b"\xff",
            b"nan",
        ] {
            assert_eq!(t.steps(bad), Err(StepError::Syntax), "{bad:?}");
        }
        let half = g("0.5");
        assert_eq!(half.steps(b"2.5"), Ok(5));
        assert_eq!(half.steps(b"2.25"), Err(StepError::OffGrid));
        assert_eq!(half.steps(b"2.3"), Err(StepError::OffGrid));
        let ten = g("10");
        assert_eq!(ten.steps(b"120"), Ok(12));
        assert_eq!(ten.steps(b"125"), Err(StepError::OffGrid));
        assert_eq!(ten.steps(b"120.1"), Err(StepError::OffGrid));
        // Too many fraction digits: fine when they are zeros, off the grid otherwise.
        assert_eq!(
            t.steps(b"1.000000000000000000000000000000000000"),
            Ok(10000)
        );
        assert_eq!(
            t.steps(b"1.000000000000000000000000000000000001"),
            Err(StepError::OffGrid)
        );
    }

    #[test]
    fn steps_overflow_edges() {
        let one = g("1");
        let max = u128::MAX.to_string();
        assert_eq!(one.steps(max.as_bytes()), Ok(u128::MAX));
        // u128::MAX + 1 overflows while reading the integer part.
        assert_eq!(
            one.steps(b"340282366920938463463374607431768211456"),
            Err(StepError::Range)
        );
        // ... and that is reported before a bad character that comes later.
        let over_then_bad = format!("{}x", "9".repeat(40));
        assert_eq!(one.steps(over_then_bad.as_bytes()), Err(StepError::Range));
        // A bad character before the overflow is a syntax error.
        let bad_then_over = format!("x{}", "9".repeat(40));
        assert_eq!(one.steps(bad_then_over.as_bytes()), Err(StepError::Syntax));
        // The integer part fits, the scaled value does not.
        let t = g("0.0001");
        assert_eq!(
            t.steps(b"340282366920938463463374607431768211455"),
            Err(StepError::Range)
        );
        let limit = u128::MAX / 10_000;
        assert_eq!(t.steps(limit.to_string().as_bytes()), Ok(limit * 10_000));
        // Off-grid digits beyond the scale win over a scaled overflow.
        assert_eq!(
            t.steps(b"340282366920938463463374607431768211455.00001"),
            Err(StepError::OffGrid)
        );
        // A 30-place grid: the fraction accumulator takes 30 digits without overflow.
        let fine = g(&format!("0.{}1", "0".repeat(29)));
        let thirty_nines = format!("0.{}", "9".repeat(30));
        assert_eq!(fine.steps(thirty_nines.as_bytes()), Ok(10u128.pow(30) - 1));
        assert_eq!(fine.steps(b"340282367"), Err(StepError::Range));
    }

    #[test]
    fn steps_or_skip_only_skips_off_grid() {
        let t = g("0.01");
        assert_eq!(t.steps_or_skip(b"1.005", true), Ok(None));
        assert_eq!(t.steps_or_skip(b"1.005", false), Err(StepError::OffGrid));
        assert_eq!(t.steps_or_skip(b"1.x", true), Err(StepError::Syntax));
        assert_eq!(t.steps_or_skip(b"1.01", true), Ok(Some(101)));
    }

    #[test]
    fn format_round_trips() {
        let t = g("0.0001");
        assert_eq!(t.format(3521).as_deref(), Some("0.3521"));
        assert_eq!(t.format(0).as_deref(), Some("0.0000"));
        assert_eq!(g("10").format(12).as_deref(), Some("120"));
        assert_eq!(g("0.5").format(5).as_deref(), Some("2.5"));
        assert_eq!(g("2").format(u128::MAX), None);
        for (grid, n) in [("0.0001", 123_456_789u128), ("0.5", 7), ("25", 3), ("1", 0)] {
            let grid = g(grid);
            let text = grid.format(n).unwrap();
            assert_eq!(grid.steps(text.as_bytes()), Ok(n), "{text}");
        }
    }

    #[test]
    fn level_errors_in_order_and_messages() {
        let (tick, lot) = (g("0.01"), g("0.001"));
        assert_eq!(
            level(&tick, &lot, "1.23", "0.5", false),
            Ok(Some((123, 500)))
        );
        assert_eq!(level(&tick, &lot, "1.234", "0.5", true), Ok(None));
        assert_eq!(level(&tick, &lot, "1.23", "0.0005", true), Ok(None));
        // The quantity is still checked when the price was skipped as off the grid.
        let e = level(&tick, &lot, "1.234", "x", true).unwrap_err();
        assert_eq!(e.to_string(), "qty \"x\" is not a plain decimal number");
        let e = level(&tick, &lot, "1.234", "x", false).unwrap_err();
        assert_eq!(
            e,
            LevelError::Value {
                field: Field::Price,
                value: "1.234",
                error: StepError::OffGrid
            }
        );
        assert_eq!(e.to_string(), "price \"1.234\" is off the grid");
        let huge = "9".repeat(40);
        let e = level(&tick, &lot, "1", &huge, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("qty {huge:?} is out of range for the book")
        );
        // Range of the integer types: price before qty.
        let big = (u128::from(u64::MAX) + 1).to_string();
        let (one, one_lot) = (g("1"), g("1"));
        let e = level(&one, &one_lot, &big, &big, false).unwrap_err();
        assert_eq!(e, LevelError::PriceBeyond);
        assert_eq!(e.to_string(), "price is beyond 2**63 - 1 ticks");
        let e = level(&one, &one_lot, "1", &big, false).unwrap_err();
        assert_eq!(e, LevelError::QtyBeyond);
        assert_eq!(e.to_string(), "qty is beyond 2**64 - 1 lots");
        assert_eq!(
            level(
                &one,
                &one_lot,
                &i64::MAX.to_string(),
                &u64::MAX.to_string(),
                false
            ),
            Ok(Some((i64::MAX, u64::MAX)))
        );
        assert_eq!(checked_level(Some(1), None), Ok(None));
        assert_eq!(checked_level(None, Some(u128::MAX)), Ok(None));
    }
}
