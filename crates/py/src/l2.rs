//! `L2Book`: the core's aggregated (price -> quantity) book for market data, seen from Python,
//! and the fast path that reads Binance combined-stream JSON without building Python objects.
//!
//! Owns: one [`tradecore_book::L2Book`], an optional decimal grid (tick size, lot size) and a
//! scratch buffer of parsed levels; plus `binance_scan` and the private [`scan`] module. Ways in:
//! * integers: `set(side, price, qty)` and `apply(bids, asks)` with `(ticks, lots)` pairs;
//! * decimal strings, the exchange's own text (Binance depth `b`/`a` arrays and REST snapshots):
//!   `apply_decimal(bids, asks)` and `replace_decimal(bids, asks)` on decoded lists, and
//!   `apply_depth_json(text)` on the raw message (or `apply_depth_at(text, bids_at, asks_at)`
//!   with the array offsets `binance_scan` returned, so the message is not scanned twice). Each string is turned into integer
//!   ticks/lots here, exactly, by integer arithmetic on its digits (no float, no `Decimal`
//!   object): `"0.35210000"` with tick `"0.0001"` is 3521 ticks. `price_to_ticks` /
//!   `qty_to_lots` do the same for one value (trades, quotes).
//! * `binance_scan(text)`: a strict single-pass JSON scanner for `{"stream":..,"data":{..}}` that
//!   returns the header fields of a depth diff, aggTrade or bookTicker, or `None` for anything
//!   it is not certain about (escapes, floats or negative ids, NaN, malformed JSON, odd level
//!   shapes); the caller then uses `json.loads` and the Python parsers, which are the reference
//!   (`tests/unit/test_binance_fastpath.py` checks both paths agree on real and edited traffic).
//!
//! Invariants:
//! * A call that takes a list of levels is all or nothing: every level is parsed and checked
//!   into the scratch buffer first and the book changes only if all of them are valid, so a bad
//!   value never leaves a half-applied message (a wrong book) behind.
//! * With `skip_off_grid=True` a level whose price or quantity is off the grid is left out and
//!   counted instead (real Binance books keep legacy levels from before a tick/step change:
//!   the recorded NKNUSDT snapshot has 68 such levels, all 26% or more below the touch); syntax
//!   errors still raise.
//! * A string that is not a plain decimal (`digits[.digits]`) raises
//!   `tradecore.marketdata.errors.FeedFormatError`; one that is not a whole number of ticks or
//!   lots raises `tradecore.errors.OffGridError`; both messages name the value and where it was
//!   (`bids[3] price`). Values beyond i64 ticks / u64 lots are `FeedFormatError` too.
//! * Rust panics never reach Python: mutating calls run under [`errors::guard`].
//!
//! Cost: parsing is one pass over the bytes of each string (about 10-20 ns for Binance's
//! 10-character decimals); applying a level is O(log L) plus a memmove of the levels better than
//! it (see `tradecore_book::L2Book`). The scanner is one pass over the message and allocates
//! nothing; `apply_depth_json` scans again to reach the arrays, `apply_depth_at` starts at the
//! offsets the scan returned. A snapshot (`replace_decimal`) is built with one sort per side,
//! O(n log n). `top_stats` reads the touch and top-N sums without building a Python object per
//! level. The scratch buffer is reused, so a message allocates nothing after
//! the first ones. Queries copy plain integers out (`depth(n)` builds n tuples).

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyFloat, PyList, PyString, PyTuple, PyType};

use tradecore_book::{L2Book as CoreL2, Side};

use crate::convert::{DepthN, Price, Qty, SideArg};
use crate::errors;

/// A decimal grid (tick or lot): `value = units * 10**-digits`, `units > 0`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Grid {
    /// Fraction digits kept when scaling a value to an integer.
    digits: u32,
    /// The grid step at that scale.
    units: u128,
    /// The grid as given (normalized text), for messages and the getters.
    text: String,
}

/// Why a decimal string could not be turned into grid steps.
#[derive(Debug, PartialEq, Eq)]
enum ParseError {
    /// Not `digits[.digits]` (empty, sign, exponent, stray character ...).
    Syntax,
    /// More than ~38 significant digits, or a result beyond the target integer type.
    Range,
    /// A valid decimal that is not a whole multiple of the grid.
    OffGrid,
}

const POW10: [u128; 39] = {
    let mut t = [1u128; 39];
    let mut i = 1;
    while i < 39 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

impl Grid {
    /// Parse a positive grid step such as `"0.00010000"`, `"1"` or `"0.5"`.
    fn parse(text: &str) -> Result<Grid, String> {
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
            return Err(format!("{text:?} is not a plain positive decimal number"));
        }
        let frac = frac_part.trim_end_matches('0');
        let digits = frac.len() as u32;
        if digits > 30 {
            return Err(format!("{text:?} has more than 30 decimal places"));
        }
        let mut units: u128 = 0;
        for b in int_part.bytes().chain(frac.bytes()) {
            units = units
                .checked_mul(10)
                .and_then(|u| u.checked_add(u128::from(b - b'0')))
                .ok_or_else(|| format!("{text:?} is too large"))?;
        }
        if units == 0 {
            return Err(format!("{text:?} must be positive"));
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

    /// `s` as a whole number of grid steps.
    #[inline]
    fn steps(&self, s: &[u8]) -> Result<u128, ParseError> {
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
                            .ok_or(ParseError::Range)?;
                    } else if frac_len < self.digits {
                        frac_val = frac_val * 10 + d;
                        frac_len += 1;
                    } else if d != 0 {
                        off_grid = true;
                    }
                }
                b'.' if !seen_dot => seen_dot = true,
                _ => return Err(ParseError::Syntax),
            }
        }
        if !seen_digit {
            return Err(ParseError::Syntax);
        }
        if off_grid {
            return Err(ParseError::OffGrid);
        }
        let scale = POW10[self.digits as usize];
        let scaled = int_val
            .checked_mul(scale)
            .and_then(|v| v.checked_add(frac_val * POW10[(self.digits - frac_len) as usize]))
            .ok_or(ParseError::Range)?;
        if scaled % self.units != 0 {
            return Err(ParseError::OffGrid);
        }
        Ok(scaled / self.units)
    }
}

static FEED_FORMAT_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static OFF_GRID_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DECIMAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `tradecore.marketdata.errors.FeedFormatError(msg)`.
fn feed_format_error(py: Python<'_>, msg: String) -> PyErr {
    match FEED_FORMAT_ERROR.import(py, "tradecore.marketdata.errors", "FeedFormatError") {
        Ok(ty) => PyErr::from_type(ty.clone(), msg),
        Err(e) => PyValueError::new_err(format!(
            "{msg} (and tradecore.marketdata.errors.FeedFormatError could not be loaded: {e})"
        )),
    }
}

/// `tradecore.errors.OffGridError(what, Decimal(value), Decimal(grid))`.
fn off_grid_error(py: Python<'_>, what: String, value: &str, grid: &str) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let decimal = DECIMAL.import(py, "decimal", "Decimal")?;
        let ty = OFF_GRID_ERROR.import(py, "tradecore.errors", "OffGridError")?;
        let v = decimal.call1((value,))?;
        let g = decimal.call1((grid,))?;
        let exc = ty.call1((what.clone(), v, g))?;
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|e| {
        PyValueError::new_err(format!(
            "{what} {value} is off the grid of {grid} (and OffGridError could not be built: {e})"
        ))
    })
}

fn no_grid() -> PyErr {
    PyValueError::new_err(
        "this L2Book has no decimal grid: build it with L2Book(tick_size, lot_size) to apply \
         decimal strings",
    )
}

/// Where a level came from, for messages: `bids[3]`.
fn side_name(side: Side) -> &'static str {
    match side {
        Side::Buy => "bids",
        Side::Sell => "asks",
    }
}

/// The aggregated book of one instrument (prices in ticks, quantities in lots).
#[pyclass(module = "tradecore._core", name = "L2Book")]
pub struct L2Book {
    book: CoreL2,
    tick: Option<Grid>,
    lot: Option<Grid>,
    scratch: Vec<(Side, i64, u64)>,
    /// `top_stats` weights, reused across calls.
    weights: Vec<f64>,
}

fn grid_arg(obj: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<Grid>> {
    let Some(obj) = obj else { return Ok(None) };
    if obj.is_none() {
        return Ok(None);
    }
    // `str` or `decimal.Decimal` (its str() is exact); never a float.
    let text: String = if let Ok(s) = obj.cast::<PyString>() {
        s.to_str()?.to_owned()
    } else {
        let decimal = DECIMAL.import(obj.py(), "decimal", "Decimal")?;
        if !obj.is_instance(decimal)? {
            return Err(PyTypeError::new_err(format!(
                "{name} must be a str or decimal.Decimal, got {}",
                crate::convert::type_name(&obj.as_borrowed())
            )));
        }
        // Decimal("1E-8") prints in scientific notation; format it as a plain decimal.
        obj.call_method1("__format__", ("f",))?.extract()?
    };
    Grid::parse(&text)
        .map(Some)
        .map_err(|m| PyValueError::new_err(format!("{name} {m}")))
}

impl L2Book {
    /// Parse one decimal string of level `index` of `side` into scaled steps.
    #[inline]
    fn parse_one(
        py: Python<'_>,
        grid: &Grid,
        obj: &Bound<'_, PyAny>,
        side: Side,
        index: usize,
        field: &str,
        skip_off_grid: bool,
    ) -> PyResult<Option<u128>> {
        let where_ = || format!("{}[{index}] {field}", side_name(side));
        let Ok(s) = obj.cast::<PyString>() else {
            return Err(feed_format_error(
                py,
                format!(
                    "{} must be a decimal string, got {}",
                    where_(),
                    crate::convert::type_name(&obj.as_borrowed())
                ),
            ));
        };
        let text = s.to_str()?;
        match grid.steps(text.as_bytes()) {
            Ok(v) => Ok(Some(v)),
            Err(ParseError::OffGrid) if skip_off_grid => Ok(None),
            Err(e) => Err(match e {
                ParseError::Syntax => feed_format_error(
                    py,
                    format!("{} {text:?} is not a plain decimal number", where_()),
                ),
                ParseError::Range => feed_format_error(
                    py,
                    format!("{} {text:?} is out of range for the book", where_()),
                ),
                ParseError::OffGrid => off_grid_error(py, where_(), text, &grid.text),
            }),
        }
    }

    /// Parse both sides' decimal strings into the scratch buffer (cleared first).
    fn parse_both_decimal(
        &mut self,
        py: Python<'_>,
        bids: &Bound<'_, PyAny>,
        asks: &Bound<'_, PyAny>,
        skip_off_grid: bool,
    ) -> PyResult<usize> {
        self.scratch.clear();
        let grids = match (&self.tick, &self.lot) {
            (Some(t), Some(l)) => (t, l),
            _ => return Err(no_grid()),
        };
        let b = parse_side_decimal(py, grids, Side::Buy, bids, &mut self.scratch, skip_off_grid)?;
        let a = parse_side_decimal(
            py,
            grids,
            Side::Sell,
            asks,
            &mut self.scratch,
            skip_off_grid,
        )?;
        Ok(a + b)
    }

    /// Parse one side's `[(price, qty), ...]` integers into the scratch buffer.
    fn parse_side_int(
        &mut self,
        py: Python<'_>,
        side: Side,
        levels: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let iter = levels
            .try_iter()
            .map_err(|_| not_a_list(py, side, levels))?;
        for (index, level) in iter.enumerate() {
            let level = level?;
            let (p, q) = pair(py, &level, side, index)?;
            let price: Price = p.extract().map_err(|e: PyErr| {
                PyErr::from_type(
                    e.get_type(py),
                    format!("{}[{index}]: {}", side_name(side), e.value(py)),
                )
            })?;
            let qty: Qty = q.extract().map_err(|e: PyErr| {
                PyErr::from_type(
                    e.get_type(py),
                    format!("{}[{index}]: {}", side_name(side), e.value(py)),
                )
            })?;
            self.scratch.push((side, price.0, qty.0));
        }
        Ok(())
    }

    /// Apply the scratch buffer (optionally after clearing the book) under the panic guard.
    fn commit(&mut self, py: Python<'_>, clear_first: bool) -> PyResult<()> {
        let (book, scratch) = (&mut self.book, &self.scratch);
        errors::guard(py, || {
            if clear_first {
                // One sort per side (same book as clearing and setting in order, O(n log n)).
                book.replace(scratch.iter().copied());
            } else {
                for &(side, price, qty) in scratch {
                    book.set(side, price, qty);
                }
            }
            Ok(())
        })
    }

    /// Parse the level arrays of a depth message that start at byte `bids_at` / `asks_at` of
    /// `text` (as found by the scanner) and apply them; all or nothing.
    fn apply_depth_arrays(
        &mut self,
        py: Python<'_>,
        text: &str,
        bids_at: usize,
        asks_at: usize,
        skip_off_grid: bool,
    ) -> PyResult<usize> {
        let (tick, lot) = match (&self.tick, &self.lot) {
            (Some(t), Some(l)) => (t, l),
            _ => return Err(no_grid()),
        };
        self.scratch.clear();
        let mut skipped = 0usize;
        for (side, start) in [(Side::Buy, bids_at), (Side::Sell, asks_at)] {
            let mut index = 0usize;
            let mut err: Option<PyErr> = None;
            let scratch = &mut self.scratch;
            let walked = scan::each_pair(text, start, text.len(), |p, q| {
                match level_steps(py, tick, lot, side, index, p, q, skip_off_grid) {
                    Ok(Some(level)) => scratch.push(level),
                    Ok(None) => skipped += 1,
                    Err(e) => {
                        err = Some(e);
                        return false;
                    }
                }
                index += 1;
                true
            });
            if let Some(e) = err {
                return Err(e);
            }
            walked.ok_or_else(|| not_depth(py))?;
        }
        self.commit(py, false)?;
        Ok(skipped)
    }
}

/// The error of the depth fast path given a text (or offsets) it does not read.
fn not_depth(py: Python<'_>) -> PyErr {
    feed_format_error(
        py,
        "apply_depth_json/apply_depth_at: not a depth message the fast path reads, or not the \
         level arrays' offsets (check it with binance_scan first)"
            .to_owned(),
    )
}

/// `top_stats` weights: a tuple or list of floats, copied into `out`.
fn weights_into(weights: &Bound<'_, PyAny>, out: &mut Vec<f64>) -> PyResult<()> {
    out.clear();
    let mut one = |i: usize, w: Bound<'_, PyAny>| -> PyResult<()> {
        let Ok(f) = w.cast::<PyFloat>() else {
            return Err(PyTypeError::new_err(format!(
                "top_stats: weights[{i}] must be a float, got {}",
                crate::convert::type_name(&w.as_borrowed())
            )));
        };
        out.push(f.value());
        Ok(())
    };
    if let Ok(t) = weights.cast::<PyTuple>() {
        for (i, w) in t.iter().enumerate() {
            one(i, w)?;
        }
    } else if let Ok(l) = weights.cast::<PyList>() {
        for (i, w) in l.iter().enumerate() {
            one(i, w)?;
        }
    } else {
        return Err(PyTypeError::new_err(format!(
            "top_stats: weights must be a tuple or list of floats, got {}",
            crate::convert::type_name(&weights.as_borrowed())
        )));
    }
    Ok(())
}

/// A quantity sum as a Python int (the u64 conversion is the fast one under abi3).
fn sum_to_py(py: Python<'_>, v: u128) -> PyResult<Bound<'_, PyAny>> {
    match u64::try_from(v) {
        Ok(small) => Ok(small.into_pyobject(py)?.into_any()),
        Err(_) => Ok(v.into_pyobject(py)?.into_any()),
    }
}

/// Parse one side's `[[price, qty], ...]` decimal strings into `out`.
fn parse_side_decimal(
    py: Python<'_>,
    (tick, lot): (&Grid, &Grid),
    side: Side,
    levels: &Bound<'_, PyAny>,
    out: &mut Vec<(Side, i64, u64)>,
    skip_off_grid: bool,
) -> PyResult<usize> {
    let mut skipped = 0usize;
    let mut handle = |index: usize, level: &Bound<'_, PyAny>| -> PyResult<()> {
        let (p, q) = pair(py, level, side, index)?;
        let parsed = L2Book::parse_one(py, tick, &p, side, index, "price", skip_off_grid)
            .and_then(|price| {
                L2Book::parse_one(py, lot, &q, side, index, "qty", skip_off_grid)
                    .map(|qty| (price, qty))
            })?;
        let Some((price, qty)) = parsed.0.zip(parsed.1) else {
            skipped += 1;
            return Ok(());
        };
        let price = i64::try_from(price).map_err(|_| {
            feed_format_error(
                py,
                format!(
                    "{}[{index}] price is beyond 2**63 - 1 ticks",
                    side_name(side)
                ),
            )
        })?;
        let qty = u64::try_from(qty).map_err(|_| {
            feed_format_error(
                py,
                format!("{}[{index}] qty is beyond 2**64 - 1 lots", side_name(side)),
            )
        })?;
        out.push((side, price, qty));
        Ok(())
    };
    if let Ok(list) = levels.cast::<PyList>() {
        for (i, level) in list.iter().enumerate() {
            handle(i, &level)?;
        }
    } else {
        let iter = levels
            .try_iter()
            .map_err(|_| not_a_list(py, side, levels))?;
        for (i, level) in iter.enumerate() {
            handle(i, &level?)?;
        }
    }
    Ok(skipped)
}

/// One level's price and quantity strings as `(side, ticks, lots)`; `None` when off the grid
/// and `skip_off_grid`.
#[allow(clippy::too_many_arguments)] // reason: the level and everything an error message names
fn level_steps(
    py: Python<'_>,
    tick: &Grid,
    lot: &Grid,
    side: Side,
    index: usize,
    p: &str,
    q: &str,
    skip_off_grid: bool,
) -> PyResult<Option<(Side, i64, u64)>> {
    let one = |grid: &Grid, text: &str, field: &str| -> PyResult<Option<u128>> {
        match grid.steps(text.as_bytes()) {
            Ok(v) => Ok(Some(v)),
            Err(ParseError::OffGrid) if skip_off_grid => Ok(None),
            Err(e) => {
                let place = format!("{}[{index}] {field}", side_name(side));
                Err(match e {
                    ParseError::Syntax => feed_format_error(
                        py,
                        format!("{place} {text:?} is not a plain decimal number"),
                    ),
                    ParseError::Range => feed_format_error(
                        py,
                        format!("{place} {text:?} is out of range for the book"),
                    ),
                    ParseError::OffGrid => off_grid_error(py, place, text, &grid.text),
                })
            }
        }
    };
    let price = one(tick, p, "price")?;
    let qty = one(lot, q, "qty")?;
    let (Some(price), Some(qty)) = (price, qty) else {
        return Ok(None);
    };
    let price = i64::try_from(price).map_err(|_| {
        feed_format_error(
            py,
            format!(
                "{}[{index}] price is beyond 2**63 - 1 ticks",
                side_name(side)
            ),
        )
    })?;
    let qty = u64::try_from(qty).map_err(|_| {
        feed_format_error(
            py,
            format!("{}[{index}] qty is beyond 2**64 - 1 lots", side_name(side)),
        )
    })?;
    Ok(Some((side, price, qty)))
}

/// One decimal string on `grid`, errors naming it `what`.
fn scalar(py: Python<'_>, grid: &Grid, obj: &Bound<'_, PyAny>, what: &str) -> PyResult<u128> {
    let Ok(s) = obj.cast::<PyString>() else {
        return Err(feed_format_error(
            py,
            format!(
                "{what} must be a decimal string, got {}",
                crate::convert::type_name(&obj.as_borrowed())
            ),
        ));
    };
    let text = s.to_str()?;
    grid.steps(text.as_bytes()).map_err(|e| match e {
        ParseError::Syntax => {
            feed_format_error(py, format!("{what} {text:?} is not a plain decimal number"))
        }
        ParseError::Range => {
            feed_format_error(py, format!("{what} {text:?} is out of range for the book"))
        }
        ParseError::OffGrid => off_grid_error(py, what.to_owned(), text, &grid.text),
    })
}

fn not_a_list(py: Python<'_>, side: Side, obj: &Bound<'_, PyAny>) -> PyErr {
    feed_format_error(
        py,
        format!(
            "{} must be a list of [price, qty] pairs, got {}",
            side_name(side),
            crate::convert::type_name(&obj.as_borrowed())
        ),
    )
}

/// The two items of a `[price, qty]` level (a list or a tuple of length 2).
#[inline]
fn pair<'py>(
    py: Python<'py>,
    level: &Bound<'py, PyAny>,
    side: Side,
    index: usize,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    if let Ok(l) = level.cast::<PyList>() {
        if l.len() == 2 {
            return Ok((l.get_item(0)?, l.get_item(1)?));
        }
    } else if let Ok(t) = level.cast::<PyTuple>() {
        if t.len() == 2 {
            return Ok((t.get_item(0)?, t.get_item(1)?));
        }
    }
    Err(feed_format_error(
        py,
        format!(
            "{}[{index}] must be a [price, qty] pair, got {}",
            side_name(side),
            level
                .repr()
                .map(|r| r.to_string())
                .unwrap_or_else(|_| "?".to_owned())
        ),
    ))
}

#[pymethods]
impl L2Book {
    /// An empty book; with `tick_size` and `lot_size` (decimal strings or `Decimal`) it also
    /// accepts decimal strings.
    #[new]
    #[pyo3(
        signature = (tick_size = None, lot_size = None),
        text_signature = "(tick_size=None, lot_size=None)"
    )]
    fn new(
        tick_size: Option<&Bound<'_, PyAny>>,
        lot_size: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let tick = grid_arg(tick_size, "tick_size")?;
        let lot = grid_arg(lot_size, "lot_size")?;
        if tick.is_some() != lot.is_some() {
            return Err(PyValueError::new_err(
                "give both tick_size and lot_size, or neither",
            ));
        }
        Ok(L2Book {
            book: CoreL2::new(),
            tick,
            lot,
            scratch: Vec::with_capacity(64),
            weights: Vec::with_capacity(16),
        })
    }

    /// The tick size as a normalized decimal string, or None.
    #[getter]
    fn tick_size(&self) -> Option<String> {
        self.tick.as_ref().map(|g| g.text.clone())
    }

    /// The lot size as a normalized decimal string, or None.
    #[getter]
    fn lot_size(&self) -> Option<String> {
        self.lot.as_ref().map(|g| g.text.clone())
    }

    /// Set the absolute quantity of one level; 0 removes it.
    #[pyo3(text_signature = "($self, side, price, qty)")]
    fn set(&mut self, py: Python<'_>, side: SideArg, price: Price, qty: Qty) -> PyResult<()> {
        let book = &mut self.book;
        errors::guard(py, || {
            book.set(side.0, price.0, qty.0);
            Ok(())
        })
    }

    /// Apply whole lists of `(price, qty)` integer levels (absolute; qty 0 removes); all or
    /// nothing.
    #[pyo3(signature = (bids, asks), text_signature = "($self, bids, asks)")]
    fn apply(
        &mut self,
        py: Python<'_>,
        bids: &Bound<'_, PyAny>,
        asks: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        self.scratch.clear();
        self.parse_side_int(py, Side::Buy, bids)?;
        self.parse_side_int(py, Side::Sell, asks)?;
        self.commit(py, false)
    }

    /// Apply Binance-style `[[price, qty], ...]` decimal strings to both sides; all or nothing.
    /// With `skip_off_grid`, levels off the grid are left out (and counted) instead of raising;
    /// returns the number left out.
    #[pyo3(
        signature = (bids, asks, skip_off_grid = false),
        text_signature = "($self, bids, asks, skip_off_grid=False)"
    )]
    fn apply_decimal(
        &mut self,
        py: Python<'_>,
        bids: &Bound<'_, PyAny>,
        asks: &Bound<'_, PyAny>,
        skip_off_grid: bool,
    ) -> PyResult<usize> {
        let skipped = self.parse_both_decimal(py, bids, asks, skip_off_grid)?;
        self.commit(py, false)?;
        Ok(skipped)
    }

    /// Apply the `b`/`a` levels of a whole Binance combined-stream depth message, read from
    /// its JSON text in Rust; all or nothing, errors as in `apply_decimal`. The text must be
    /// one `binance_scan` read as a depth message (otherwise `FeedFormatError`).
    #[pyo3(
        signature = (text, skip_off_grid = false),
        text_signature = "($self, text, skip_off_grid=False)"
    )]
    fn apply_depth_json(
        &mut self,
        py: Python<'_>,
        text: &str,
        skip_off_grid: bool,
    ) -> PyResult<usize> {
        if self.tick.is_none() || self.lot.is_none() {
            return Err(no_grid());
        }
        let f = scan::message(text).ok_or_else(|| not_depth(py))?;
        let (scan::Val::Levels(b0, _), scan::Val::Levels(a0, _)) = (f.b, f.a) else {
            return Err(not_depth(py));
        };
        self.apply_depth_arrays(py, text, b0, a0, skip_off_grid)
    }

    /// `apply_depth_json` without scanning the message again: `bids_at` and `asks_at` are the
    /// byte offsets of its `b` and `a` arrays, the last two items of the tuple `binance_scan`
    /// returned for this very text. Same results and errors as `apply_depth_json` on the same
    /// text. Other offsets read whatever `[["p","q"],...]` array starts there, or raise
    /// `FeedFormatError`; nothing panics and nothing is half applied.
    #[pyo3(
        signature = (text, bids_at, asks_at, skip_off_grid = false),
        text_signature = "($self, text, bids_at, asks_at, skip_off_grid=False)"
    )]
    fn apply_depth_at(
        &mut self,
        py: Python<'_>,
        text: &str,
        bids_at: usize,
        asks_at: usize,
        skip_off_grid: bool,
    ) -> PyResult<usize> {
        self.apply_depth_arrays(py, text, bids_at, asks_at, skip_off_grid)
    }

    /// Replace the whole book with a snapshot's decimal levels; all or nothing.
    #[pyo3(
        signature = (bids, asks, skip_off_grid = false),
        text_signature = "($self, bids, asks, skip_off_grid=False)"
    )]
    fn replace_decimal(
        &mut self,
        py: Python<'_>,
        bids: &Bound<'_, PyAny>,
        asks: &Bound<'_, PyAny>,
        skip_off_grid: bool,
    ) -> PyResult<usize> {
        let skipped = self.parse_both_decimal(py, bids, asks, skip_off_grid)?;
        self.commit(py, true)?;
        Ok(skipped)
    }

    /// A decimal price string in ticks of this book's grid (exact; raises like
    /// `apply_decimal`, naming the value as `price`).
    #[pyo3(text_signature = "($self, price)")]
    fn price_to_ticks(&self, py: Python<'_>, price: &Bound<'_, PyAny>) -> PyResult<i64> {
        let tick = self.tick.as_ref().ok_or_else(no_grid)?;
        let steps = scalar(py, tick, price, "price")?;
        i64::try_from(steps)
            .map_err(|_| feed_format_error(py, "price is beyond 2**63 - 1 ticks".to_owned()))
    }

    /// A decimal quantity string in lots of this book's grid (exact; raises like
    /// `apply_decimal`, naming the value as `qty`).
    #[pyo3(text_signature = "($self, qty)")]
    fn qty_to_lots(&self, py: Python<'_>, qty: &Bound<'_, PyAny>) -> PyResult<u64> {
        let lot = self.lot.as_ref().ok_or_else(no_grid)?;
        let steps = scalar(py, lot, qty, "qty")?;
        u64::try_from(steps)
            .map_err(|_| feed_format_error(py, "qty is beyond 2**64 - 1 lots".to_owned()))
    }

    /// Best bid as (price, qty), or None.
    fn best_bid(&self) -> Option<(i64, u64)> {
        self.book.best_bid()
    }

    /// Best ask as (price, qty), or None.
    fn best_ask(&self) -> Option<(i64, u64)> {
        self.book.best_ask()
    }

    /// Up to n levels per side, best first: (bids, asks) of (price, qty).
    #[pyo3(signature = (n = DepthN(10)), text_signature = "($self, n=10)")]
    #[allow(clippy::type_complexity)] // reason: the Python return type, spelled out
    fn depth(&self, n: DepthN) -> (Vec<(i64, u64)>, Vec<(i64, u64)>) {
        let side = |s| {
            self.book
                .depth_side(s, n.0)
                .iter()
                .map(|l| (l.price, l.qty))
                .collect()
        };
        (side(Side::Buy), side(Side::Sell))
    }

    /// The figures `BookFeatures.update` needs, in one call: `(bid, bid_qty, ask, ask_qty,
    /// sum_bid, sum_ask, weighted_bid, weighted_ask)` over the best `k = len(weights)` levels
    /// of each side (fewer where a side has fewer), or None when `weights` is empty or a side is
    /// empty. Sums are exact ints; the weighted sums add `weights[i] * qty_i` best first from
    /// 0.0, bit for bit what the same Python loop over `depth(k)` gives.
    #[pyo3(text_signature = "($self, weights)")]
    fn top_stats<'py>(
        &mut self,
        py: Python<'py>,
        weights: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        weights_into(weights, &mut self.weights)?;
        let Some(t) = self.book.top_stats(&self.weights) else {
            return Ok(None);
        };
        let items: [Bound<'py, PyAny>; 8] = [
            t.bid.0.into_pyobject(py)?.into_any(),
            t.bid.1.into_pyobject(py)?.into_any(),
            t.ask.0.into_pyobject(py)?.into_any(),
            t.ask.1.into_pyobject(py)?.into_any(),
            sum_to_py(py, t.sum_bid)?,
            sum_to_py(py, t.sum_ask)?,
            PyFloat::new(py, t.weighted_bid).into_any(),
            PyFloat::new(py, t.weighted_ask).into_any(),
        ];
        PyTuple::new(py, items).map(Some)
    }

    /// Quantity at a price on one side, 0 when there is no level.
    #[pyo3(text_signature = "($self, side, price)")]
    fn qty_at(&self, side: SideArg, price: Price) -> u64 {
        self.book.qty_at(side.0, price.0)
    }

    /// Number of levels on one side.
    #[pyo3(text_signature = "($self, side)")]
    fn levels(&self, side: SideArg) -> usize {
        self.book.levels(side.0)
    }

    /// True if best bid >= best ask.
    fn is_crossed(&self) -> bool {
        self.book.is_crossed()
    }

    /// Remove every level.
    fn clear(&mut self) {
        self.book.clear();
    }

    fn __len__(&self) -> usize {
        self.book.levels(Side::Buy) + self.book.levels(Side::Sell)
    }

    fn __repr__(&self) -> String {
        let fmt = |q: Option<(i64, u64)>| match q {
            Some((p, q)) => format!("({p}, {q})"),
            None => "None".to_owned(),
        };
        format!(
            "L2Book(bids={}, asks={}, best_bid={}, best_ask={})",
            self.book.levels(Side::Buy),
            self.book.levels(Side::Sell),
            fmt(self.book.best_bid()),
            fmt(self.book.best_ask())
        )
    }
}

/// The fast path's reading of one message: see `binance_scan` in `_core.pyi`.
#[pyfunction]
pub fn binance_scan<'py>(py: Python<'py>, text: &str) -> PyResult<Option<Bound<'py, PyTuple>>> {
    errors::guard(py, || scan_to_tuple(py, text))
}

fn scan_to_tuple<'py>(py: Python<'py>, text: &str) -> PyResult<Option<Bound<'py, PyTuple>>> {
    use scan::Val::{Bool, Int, Levels, Str};
    let Some(f) = scan::message(text) else {
        return Ok(None);
    };
    let Some(stream) = f.stream else {
        return Ok(None);
    };
    let kind = stream.find('@').map_or(stream, |i| &stream[i + 1..]);
    let tuple = if kind.starts_with("depth") {
        match (f.s, f.e_time, f.first, f.last, f.b, f.a) {
            (Str(s), Int(e), Int(first), Int(last), Levels(b0, _), Levels(a0, _)) => {
                (1u8, s, e, first, last, b0, a0).into_pyobject(py)?
            }
            _ => return Ok(None),
        }
    } else if kind == "aggTrade" {
        match (f.s, f.a, f.p, f.q, f.t, f.m) {
            (Str(s), Int(id), Str(p), Str(q), Int(t), Bool(m)) => {
                (2u8, s, id, p, q, t, m).into_pyobject(py)?
            }
            _ => return Ok(None),
        }
    } else if kind == "bookTicker" {
        match (f.s, f.last, f.b, f.big_b, f.a, f.big_a) {
            (Str(s), Int(u), Str(b), Str(bq), Str(a), Str(aq)) => {
                (3u8, s, u, b, bq, a, aq).into_pyobject(py)?
            }
            _ => return Ok(None),
        }
    } else {
        (0u8, stream).into_pyobject(py)?
    };
    Ok(Some(tuple))
}

/// Registers this module's classes and functions.
pub fn add_to_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<L2Book>()?;
    m.add_function(wrap_pyfunction!(binance_scan, m)?)?;
    Ok(())
}

/// A strict scanner for Binance combined-stream messages (no allocation, no PyO3).
///
/// It recognises well-formed JSON of the shape `{"stream": "...", "data": {...}}` and captures
/// the fields the feed needs, in any key order (a repeated key: the last one wins, as in
/// Python's `json`). It is a fast path only: anything it is not sure about (a string with an
/// escape, a float or negative number where an id belongs, NaN, deep nesting, a depth level
/// that is not a pair of plain strings ...) returns `None`, and the caller falls back to
/// `json.loads` and the Python parser, which is the reference and words the errors.
mod scan {
    /// One captured value of the `data` object.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub enum Val<'a> {
        /// Not seen.
        #[default]
        None,
        /// A non-negative integer that fits u64.
        Int(u64),
        /// A string without escapes.
        Str(&'a str),
        /// `true` / `false`.
        Bool(bool),
        /// An array of `[price, qty]` string pairs: byte range of the array in the text.
        Levels(usize, usize),
        /// Any other value (skipped).
        Other,
    }

    /// The fields of interest of one message.
    #[derive(Debug, Default)]
    pub struct Fields<'a> {
        pub stream: Option<&'a str>,
        pub has_data: bool,
        pub e_time: Val<'a>,
        pub s: Val<'a>,
        pub first: Val<'a>,
        pub last: Val<'a>,
        pub b: Val<'a>,
        pub a: Val<'a>,
        pub big_b: Val<'a>,
        pub big_a: Val<'a>,
        pub p: Val<'a>,
        pub q: Val<'a>,
        pub t: Val<'a>,
        pub m: Val<'a>,
    }

    struct Scanner<'a> {
        text: &'a str,
        b: &'a [u8],
        i: usize,
    }

    const MAX_DEPTH: u32 = 32;

    impl<'a> Scanner<'a> {
        #[inline]
        fn ws(&mut self) {
            while let Some(&c) = self.b.get(self.i) {
                if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                    self.i += 1;
                } else {
                    break;
                }
            }
        }

        #[inline]
        fn peek(&self) -> Option<u8> {
            self.b.get(self.i).copied()
        }

        #[inline]
        fn eat(&mut self, c: u8) -> Option<()> {
            self.ws();
            if self.peek()? == c {
                self.i += 1;
                Some(())
            } else {
                None
            }
        }

        /// A string without escapes or control characters.
        #[inline]
        fn plain_string(&mut self) -> Option<&'a str> {
            self.eat(b'"')?;
            let start = self.i;
            loop {
                let c = *self.b.get(self.i)?;
                if c == b'"' {
                    let s = self.text.get(start..self.i)?;
                    self.i += 1;
                    return Some(s);
                }
                if c == b'\\' || c < 0x20 {
                    return None;
                }
                self.i += 1;
            }
        }

        /// Skip a string (escapes allowed, validated).
        fn skip_string(&mut self) -> Option<()> {
            self.eat(b'"')?;
            loop {
                let c = *self.b.get(self.i)?;
                self.i += 1;
                match c {
                    b'"' => return Some(()),
                    b'\\' => {
                        let e = *self.b.get(self.i)?;
                        self.i += 1;
                        match e {
                            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                            b'u' => {
                                let hex = self.b.get(self.i..self.i + 4)?;
                                if !hex.iter().all(u8::is_ascii_hexdigit) {
                                    return None;
                                }
                                self.i += 4;
                            }
                            _ => return None,
                        }
                    }
                    0..=0x1f => return None,
                    _ => {}
                }
            }
        }

        fn digits(&mut self) -> usize {
            let start = self.i;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.i += 1;
            }
            self.i - start
        }

        /// Skip a JSON number.
        fn skip_number(&mut self) -> Option<()> {
            if self.peek() == Some(b'-') {
                self.i += 1;
            }
            match self.peek()? {
                b'0' => self.i += 1,
                b'1'..=b'9' => {
                    self.digits();
                }
                _ => return None,
            }
            if self.peek() == Some(b'.') {
                self.i += 1;
                if self.digits() == 0 {
                    return None;
                }
            }
            if matches!(self.peek(), Some(b'e' | b'E')) {
                self.i += 1;
                if matches!(self.peek(), Some(b'+' | b'-')) {
                    self.i += 1;
                }
                if self.digits() == 0 {
                    return None;
                }
            }
            Some(())
        }

        fn literal(&mut self, word: &[u8]) -> Option<()> {
            if self.b.get(self.i..self.i + word.len())? == word {
                self.i += word.len();
                Some(())
            } else {
                None
            }
        }

        /// Skip any JSON value.
        fn skip_value(&mut self, depth: u32) -> Option<()> {
            if depth > MAX_DEPTH {
                return None;
            }
            self.ws();
            match self.peek()? {
                b'"' => self.skip_string(),
                b'{' => {
                    self.i += 1;
                    self.ws();
                    if self.peek()? == b'}' {
                        self.i += 1;
                        return Some(());
                    }
                    loop {
                        self.ws();
                        self.skip_string()?;
                        self.eat(b':')?;
                        self.skip_value(depth + 1)?;
                        self.ws();
                        match self.peek()? {
                            b',' => self.i += 1,
                            b'}' => {
                                self.i += 1;
                                return Some(());
                            }
                            _ => return None,
                        }
                    }
                }
                b'[' => {
                    self.i += 1;
                    self.ws();
                    if self.peek()? == b']' {
                        self.i += 1;
                        return Some(());
                    }
                    loop {
                        self.skip_value(depth + 1)?;
                        self.ws();
                        match self.peek()? {
                            b',' => self.i += 1,
                            b']' => {
                                self.i += 1;
                                return Some(());
                            }
                            _ => return None,
                        }
                    }
                }
                b't' => self.literal(b"true"),
                b'f' => self.literal(b"false"),
                b'n' => self.literal(b"null"),
                b'-' | b'0'..=b'9' => self.skip_number(),
                _ => None,
            }
        }

        /// A value we may capture: plain int, plain string, bool, or a pair array.
        fn capture(&mut self) -> Option<Val<'a>> {
            self.ws();
            let start = self.i;
            match self.peek()? {
                b'"' => {
                    if let Some(s) = self.plain_string() {
                        return Some(Val::Str(s));
                    }
                    self.i = start;
                    self.skip_string()?;
                    Some(Val::Other)
                }
                b'0'..=b'9' => {
                    let mut v: u64 = 0;
                    let mut n = 0;
                    let mut overflow = false;
                    while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
                        match v
                            .checked_mul(10)
                            .and_then(|x| x.checked_add(u64::from(c - b'0')))
                        {
                            Some(x) => v = x,
                            None => overflow = true,
                        }
                        n += 1;
                        self.i += 1;
                    }
                    let leading_zero = n > 1 && self.b[start] == b'0';
                    if leading_zero {
                        return None;
                    }
                    if overflow || matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
                        self.i = start;
                        self.skip_number()?;
                        return Some(Val::Other);
                    }
                    Some(Val::Int(v))
                }
                b't' => self.literal(b"true").map(|()| Val::Bool(true)),
                b'f' => self.literal(b"false").map(|()| Val::Bool(false)),
                b'[' => {
                    if self.levels().is_some() {
                        return Some(Val::Levels(start, self.i));
                    }
                    self.i = start;
                    self.skip_value(1)?;
                    Some(Val::Other)
                }
                _ => {
                    self.skip_value(1)?;
                    Some(Val::Other)
                }
            }
        }

        /// `[["p","q"], ...]` of plain strings.
        fn levels(&mut self) -> Option<()> {
            self.eat(b'[')?;
            self.ws();
            if self.peek()? == b']' {
                self.i += 1;
                return Some(());
            }
            loop {
                self.eat(b'[')?;
                self.plain_string()?;
                self.eat(b',')?;
                self.plain_string()?;
                self.eat(b']')?;
                self.ws();
                match self.peek()? {
                    b',' => self.i += 1,
                    b']' => {
                        self.i += 1;
                        return Some(());
                    }
                    _ => return None,
                }
            }
        }

        fn data(&mut self, f: &mut Fields<'a>) -> Option<()> {
            self.eat(b'{')?;
            self.ws();
            if self.peek()? == b'}' {
                self.i += 1;
                return Some(());
            }
            loop {
                self.ws();
                let key = self.plain_string()?;
                self.eat(b':')?;
                let slot = match key {
                    "E" => &mut f.e_time,
                    "s" => &mut f.s,
                    "U" => &mut f.first,
                    "u" => &mut f.last,
                    "b" => &mut f.b,
                    "a" => &mut f.a,
                    "B" => &mut f.big_b,
                    "A" => &mut f.big_a,
                    "p" => &mut f.p,
                    "q" => &mut f.q,
                    "T" => &mut f.t,
                    "m" => &mut f.m,
                    _ => {
                        self.skip_value(1)?;
                        self.ws();
                        match self.peek()? {
                            b',' => {
                                self.i += 1;
                                continue;
                            }
                            b'}' => {
                                self.i += 1;
                                return Some(());
                            }
                            _ => return None,
                        }
                    }
                };
                *slot = self.capture()?;
                self.ws();
                match self.peek()? {
                    b',' => self.i += 1,
                    b'}' => {
                        self.i += 1;
                        return Some(());
                    }
                    _ => return None,
                }
            }
        }
    }

    /// Scan a whole combined-stream message; `None` when the fast path does not apply.
    pub fn message(text: &str) -> Option<Fields<'_>> {
        let mut s = Scanner {
            text,
            b: text.as_bytes(),
            i: 0,
        };
        let mut f = Fields::default();
        s.eat(b'{')?;
        s.ws();
        if s.peek()? == b'}' {
            return None;
        }
        loop {
            s.ws();
            let key = s.plain_string()?;
            s.eat(b':')?;
            match key {
                "stream" => {
                    s.ws();
                    f.stream = Some(s.plain_string()?);
                }
                "data" => {
                    s.ws();
                    if s.peek()? != b'{' {
                        return None;
                    }
                    // A repeated "data" key replaces the first one entirely.
                    let stream = f.stream;
                    f = Fields::default();
                    f.stream = stream;
                    s.data(&mut f)?;
                    f.has_data = true;
                }
                _ => s.skip_value(1)?,
            }
            s.ws();
            match s.peek()? {
                b',' => s.i += 1,
                b'}' => {
                    s.i += 1;
                    break;
                }
                _ => return None,
            }
        }
        s.ws();
        if s.i != s.b.len() || !f.has_data {
            return None;
        }
        Some(f)
    }

    /// Call `f(price, qty)` for each pair of a levels array found by [`message`] (byte range
    /// `start..end` of `text`); `f` returns false to stop early.
    pub fn each_pair<'t>(
        text: &'t str,
        start: usize,
        end: usize,
        mut f: impl FnMut(&'t str, &'t str) -> bool,
    ) -> Option<()> {
        let mut s = Scanner {
            text: text.get(..end)?,
            b: text.as_bytes().get(..end)?,
            i: start,
        };
        s.eat(b'[')?;
        s.ws();
        if s.peek()? == b']' {
            return Some(());
        }
        loop {
            s.eat(b'[')?;
            let p = s.plain_string()?;
            s.eat(b',')?;
            let q = s.plain_string()?;
            s.eat(b']')?;
            if !f(p, q) {
                return Some(());
            }
            s.ws();
            match s.peek()? {
                b',' => s.i += 1,
                b']' => return Some(()),
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(s: &str) -> Grid {
        Grid::parse(s).unwrap()
    }

    #[test]
    fn scan_depth_trade_ticker() {
        use scan::Val::*;
        let t = r#"{"stream":"x@depth@100ms","data":{"e":"depthUpdate","E":5,"s":"XY","U":7,"u":9,"b":[["1.0","2"]],"a":[]}}"#;
        let f = scan::message(t).unwrap();
        assert_eq!(f.stream, Some("x@depth@100ms"));
        assert_eq!(
            (f.s, f.e_time, f.first, f.last),
            (Str("XY"), Int(5), Int(7), Int(9))
        );
        let Levels(b0, b1) = f.b else { panic!() };
        let mut seen = vec![];
        scan::each_pair(t, b0, b1, |p, q| {
            seen.push((p, q));
            true
        })
        .unwrap();
        assert_eq!(seen, vec![("1.0", "2")]);
        // Key order, whitespace, repeated keys (last wins), skipped values of every kind.
        let t = r#" { "data" : { "u" : 1 , "x": [1, -2.5e3, {"k": "\n\u00e9"}, null, true], "u": 3 } , "stream":"s@bookTicker" } "#;
        let f = scan::message(t).unwrap();
        assert_eq!(f.last, Int(3));
        let t = r#"{"stream":"s@aggTrade","data":{"a":1,"p":"2","q":"3","T":4,"m":false}}"#;
        let f = scan::message(t).unwrap();
        assert_eq!((f.a, f.m), (Int(1), Bool(false)));
        // Not for the fast path: the caller falls back to json.loads.
        for bad in [
            "",
            "{}",
            "[]",
            r#"{"stream":"s","data":{}"#,
            r#"{"stream":"s","data":{}} x"#,
            r#"{"stream":"s\u0040x","data":{}}"#,
            r#"{"stream":"s","data":[]}"#,
            r#"{"stream":"s","data":{"u":01}}"#,
            r#"{"stream":"s","data":{"u":NaN}}"#,
            r#"{"stream":"s","data":{"u":1,}}"#,
            r#"{"stream":"s","data":{"x":"\q"}}"#,
            r#"{"stream":"s","data":{"x":"a
b"}}"#,
        ] {
            assert!(scan::message(bad).is_none(), "{bad}");
        }
        // Captured as Other (not an Int / not pairs): the Python side then falls back.
        let t = r#"{"stream":"s","data":{"u":1.0,"U":-1,"E":99999999999999999999,"b":[["1"]]}}"#;
        let f = scan::message(t).unwrap();
        assert_eq!(
            (f.last, f.first, f.e_time, f.b),
            (Other, Other, Other, Other)
        );
        let deep = format!(
            r#"{{"stream":"s","data":{{"x":{}{}}}}}"#,
            "[".repeat(40),
            "]".repeat(40)
        );
        assert!(scan::message(&deep).is_none());
    }

    #[test]
    fn grid_parse() {
        assert_eq!(g("0.00010000").digits, 4);
        assert_eq!(g("0.00010000").units, 1);
        assert_eq!(g("0.00010000").text, "0.0001");
        assert_eq!(g("10").units, 10);
        assert_eq!(g("0.5").units, 5);
        assert!(Grid::parse("0").is_err());
        assert!(Grid::parse("-1").is_err());
        assert!(Grid::parse("1e-3").is_err());
        assert!(Grid::parse("").is_err());
    }

    #[test]
    fn steps() {
        let t = g("0.0001");
        assert_eq!(t.steps(b"0.35210000"), Ok(3521));
        assert_eq!(t.steps(b"6"), Ok(60000));
        assert_eq!(t.steps(b"6."), Ok(60000));
        assert_eq!(t.steps(b".5"), Ok(5000));
        assert_eq!(t.steps(b"0.35215000"), Err(ParseError::OffGrid));
        assert_eq!(t.steps(b"0.3521x"), Err(ParseError::Syntax));
        assert_eq!(t.steps(b"-1"), Err(ParseError::Syntax));
        assert_eq!(t.steps(b""), Err(ParseError::Syntax));
        assert_eq!(t.steps(b"."), Err(ParseError::Syntax));
        assert_eq!(t.steps(b"1.2.3"), Err(ParseError::Syntax));
        let half = g("0.5");
        assert_eq!(half.steps(b"2.5"), Ok(5));
        assert_eq!(half.steps(b"2.25"), Err(ParseError::OffGrid));
        assert_eq!(half.steps(b"2.3"), Err(ParseError::OffGrid));
        let ten = g("10");
        assert_eq!(ten.steps(b"120"), Ok(12));
        assert_eq!(ten.steps(b"125"), Err(ParseError::OffGrid));
        assert_eq!(
            t.steps(b"999999999999999999999999999999999999999999"),
            Err(ParseError::Range)
        );
    }
}
