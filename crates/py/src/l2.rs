//! `L2Book`: the core's aggregated (price -> quantity) book for market data, seen from Python,
//! and `binance_scan`, the fast path that reads Binance combined-stream JSON without building
//! Python objects. Thin: the parsing lives in `tradecore_book` (`decimal`: decimal strings to
//! ticks/lots on a [`Grid`]; `scan`: the JSON scanner and the depth-array reader); this file
//! converts Python values in and out and maps the core's errors onto Python exceptions.
//!
//! Owns: one [`tradecore_book::L2Book`], an optional tick and lot [`Grid`] and a scratch buffer
//! of parsed levels. Ways in:
//! * integers: `set(side, price, qty)` and `apply(bids, asks)` with `(ticks, lots)` pairs;
//! * decimal strings, the exchange's own text (Binance depth `b`/`a` arrays and REST snapshots):
//!   `apply_decimal(bids, asks)` and `replace_decimal(bids, asks)` on decoded lists, and
//!   `apply_depth_json(text)` on the raw message (or `apply_depth_at(text, bids_at, asks_at)`
//!   with the array offsets `binance_scan` returned, so the message is not scanned twice).
//!   `price_to_ticks` / `qty_to_lots` convert one value (trades, quotes).
//! * `binance_scan(text)`: the header fields of a depth diff, aggTrade or bookTicker as a
//!   tuple ([`tradecore_book::scan::binance`]), or `None` when the fast path does not apply;
//!   the caller then uses `json.loads` and the Python parsers, which are the reference
//!   (`tests/unit/test_binance_fastpath.py` checks both paths agree on real and edited traffic).
//! * `binance_step(text, recv_ns, syncs)`: `binance_scan` plus, in the same call, the common
//!   case of `BookSync.on_depth_text` (a synced book and the next diff: levels applied, crossed
//!   check, `BookUpdate` built) and the grid conversions of a bookTicker or aggTrade; every
//!   other case changes nothing and returns the scan's tuple for the Python rules
//!   (`tests/unit/test_binance_step.py` checks it against the reference path on random
//!   streams).
//!
//! Invariants:
//! * A call that takes a list of levels is all or nothing: every level is parsed and checked
//!   into the scratch buffer first and the book changes only if all of them are valid, so a bad
//!   value never leaves a half-applied message (a wrong book) behind.
//! * With `skip_off_grid=True` a level whose price or quantity is off the grid is left out and
//!   counted instead (real Binance books keep legacy levels from before a tick/step change:
//!   the recorded NKNUSDT snapshot has 68 such levels, all 26% or more below the touch); syntax
//!   errors still raise.
//! * Error mapping: a value that is not a plain decimal, or beyond `u128` steps, i64 ticks or
//!   u64 lots (`StepError::Syntax`/`Range`, `LevelError::PriceBeyond`/`QtyBeyond`), and a text
//!   or offsets the depth reader does not read (`DepthError::NotDepth`) raise
//!   `tradecore.marketdata.errors.FeedFormatError`; a value off the grid (`StepError::OffGrid`)
//!   raises `tradecore.errors.OffGridError`; both name the value and where it was
//!   (`bids[3] price`). A bad `tick_size`/`lot_size` (`GridError`) raises `ValueError`.
//! * Rust panics never reach Python: mutating calls and `binance_scan` run under
//!   [`errors::guard`].
//!
//! Cost: the core's (see `tradecore_book::decimal` and `tradecore_book::scan`); `binance_step`
//! adds a dict lookup and three attribute reads per depth diff (one for a quote or trade) and
//! the `BookUpdate` call, about 3.5k instructions of the ~9.7k of a typical diff. Plus one
//! Python string access per decimal value on decoded lists. The scratch buffer is reused, so a
//! message allocates nothing after the first ones; errors allocate their message. A snapshot
//! (`replace_decimal`) is built with one sort per side, O(n log n). `top_stats` reads the touch
//! and top-N sums without building a Python object per level. Queries copy plain integers out
//! (`depth(n)` builds n tuples).

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyFloat, PyList, PyString, PyTuple, PyType};

use tradecore_book::decimal::{checked_level, Field, Grid, LevelError, StepError};
use tradecore_book::scan::{self, side_array_name, DepthError, Message};
use tradecore_book::{L2Book as CoreL2, Side};

use crate::convert::{DepthN, Price, Qty, SideArg};
use crate::errors;

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
        .map_err(|e| PyValueError::new_err(format!("{name} {e}")))
}

impl L2Book {
    /// The core book, for the other classes of this crate that read it (`BookFeaturesCore`).
    pub(crate) fn core(&self) -> &CoreL2 {
        &self.book
    }

    /// Parse one decimal string of level `index` of `side` into grid steps (`None`: off the
    /// grid and skipped).
    #[inline]
    fn parse_one(
        py: Python<'_>,
        grid: &Grid,
        obj: &Bound<'_, PyAny>,
        side: Side,
        index: usize,
        field: Field,
        skip_off_grid: bool,
    ) -> PyResult<Option<u128>> {
        let where_ = || format!("{}[{index}] {}", side_array_name(side), field.as_str());
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
        grid.steps_or_skip(text.as_bytes(), skip_off_grid)
            .map_err(|e| value_error(py, where_(), grid, text, e))
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
                    format!("{}[{index}]: {}", side_array_name(side), e.value(py)),
                )
            })?;
            let qty: Qty = q.extract().map_err(|e: PyErr| {
                PyErr::from_type(
                    e.get_type(py),
                    format!("{}[{index}]: {}", side_array_name(side), e.value(py)),
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
        let skipped = scan::depth_levels(
            text,
            bids_at,
            asks_at,
            tick,
            lot,
            skip_off_grid,
            &mut self.scratch,
        )
        .map_err(|e| match e {
            DepthError::NotDepth => not_depth(py),
            DepthError::Level { side, index, error } => {
                level_error(py, (tick, lot), side, index, error)
            }
        })?;
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
        let price = L2Book::parse_one(py, tick, &p, side, index, Field::Price, skip_off_grid)?;
        let qty = L2Book::parse_one(py, lot, &q, side, index, Field::Qty, skip_off_grid)?;
        match checked_level(price, qty) {
            Ok(Some((price, qty))) => out.push((side, price, qty)),
            Ok(None) => skipped += 1,
            Err(e) => return Err(level_error(py, (tick, lot), side, index, e)),
        }
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

/// The Python error of one bad decimal value named `what` (`bids[3] price`, `price`):
/// `OffGridError(what, Decimal(value), Decimal(grid))` for a value off the grid, else
/// `FeedFormatError("<what> <value!r> <why>")`.
fn value_error(py: Python<'_>, what: String, grid: &Grid, value: &str, e: StepError) -> PyErr {
    match e {
        StepError::OffGrid => off_grid_error(py, what, value, grid.text()),
        StepError::Syntax | StepError::Range => {
            feed_format_error(py, format!("{what} {value:?} {e}"))
        }
    }
}

/// The Python error of level `index` of `side` that could not be read.
fn level_error(
    py: Python<'_>,
    (tick, lot): (&Grid, &Grid),
    side: Side,
    index: usize,
    e: LevelError<'_>,
) -> PyErr {
    match e {
        LevelError::Value {
            field,
            value,
            error,
        } => {
            let grid = match field {
                Field::Price => tick,
                Field::Qty => lot,
            };
            let what = format!("{}[{index}] {}", side_array_name(side), field.as_str());
            value_error(py, what, grid, value, error)
        }
        LevelError::PriceBeyond | LevelError::QtyBeyond => {
            feed_format_error(py, format!("{}[{index}] {e}", side_array_name(side)))
        }
    }
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
    grid.steps(text.as_bytes())
        .map_err(|e| value_error(py, what.to_owned(), grid, text, e))
}

fn not_a_list(py: Python<'_>, side: Side, obj: &Bound<'_, PyAny>) -> PyErr {
    feed_format_error(
        py,
        format!(
            "{} must be a list of [price, qty] pairs, got {}",
            side_array_name(side),
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
            side_array_name(side),
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
        self.tick.as_ref().map(|g| g.text().to_owned())
    }

    /// The lot size as a normalized decimal string, or None.
    #[getter]
    fn lot_size(&self) -> Option<String> {
        self.lot.as_ref().map(|g| g.text().to_owned())
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
        let (b0, a0) = scan::message(text)
            .and_then(|f| f.level_offsets())
            .ok_or_else(|| not_depth(py))?;
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
        i64::try_from(steps).map_err(|_| feed_format_error(py, LevelError::PriceBeyond.to_string()))
    }

    /// A decimal quantity string in lots of this book's grid (exact; raises like
    /// `apply_decimal`, naming the value as `qty`).
    #[pyo3(text_signature = "($self, qty)")]
    fn qty_to_lots(&self, py: Python<'_>, qty: &Bound<'_, PyAny>) -> PyResult<u64> {
        let lot = self.lot.as_ref().ok_or_else(no_grid)?;
        let steps = scalar(py, lot, qty, "qty")?;
        u64::try_from(steps).map_err(|_| feed_format_error(py, LevelError::QtyBeyond.to_string()))
    }

    /// Best bid as (price, qty), or None.
    fn best_bid(&self) -> Option<(i64, u64)> {
        self.book.best_bid()
    }

    /// Best ask as (price, qty), or None.
    fn best_ask(&self) -> Option<(i64, u64)> {
        self.book.best_ask()
    }

    /// The touch: (best bid price, best ask price), or None unless both sides have a level.
    /// One call for what a pre-trade check reads (instead of best_bid and best_ask).
    fn touch(&self) -> Option<(i64, i64)> {
        Some((self.book.best_bid()?.0, self.book.best_ask()?.0))
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
    let Some(m) = scan::binance(text) else {
        return Ok(None);
    };
    message_tuple(py, m, None).map(Some)
}

/// `binance_scan`'s tuple of one message; `depth_kind` replaces the depth diff's kind 1.
fn message_tuple<'py>(
    py: Python<'py>,
    m: Message<'_>,
    depth_kind: Option<u8>,
) -> PyResult<Bound<'py, PyTuple>> {
    let tuple = match m {
        Message::Depth {
            symbol,
            event_time,
            first,
            last,
            bids_at,
            asks_at,
        } => (
            depth_kind.unwrap_or(1),
            symbol,
            event_time,
            first,
            last,
            bids_at,
            asks_at,
        )
            .into_pyobject(py)?,
        Message::AggTrade {
            symbol,
            trade_id,
            price,
            qty,
            trade_time,
            buyer_maker,
        } => (2u8, symbol, trade_id, price, qty, trade_time, buyer_maker).into_pyobject(py)?,
        Message::BookTicker {
            symbol,
            update_id,
            bid,
            bid_qty,
            ask,
            ask_qty,
        } => (3u8, symbol, update_id, bid, bid_qty, ask, ask_qty).into_pyobject(py)?,
        Message::Other { stream } => (0u8, stream).into_pyobject(py)?,
    };
    Ok(tuple)
}

static BOOK_UPDATE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static SYNCED: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The fast path's whole step for one message: see `binance_step` in `_core.pyi`.
#[pyfunction]
pub fn binance_step<'py>(
    py: Python<'py>,
    text: &Bound<'py, PyString>,
    recv_ns: &Bound<'py, PyAny>,
    syncs: &Bound<'py, PyDict>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    // A str that is not UTF-8 (a lone surrogate) is no message the scanner reads: `None`, and
    // the caller's reference path reports it (instead of an error out of the call).
    let Ok(text) = text.to_str() else {
        return Ok(None);
    };
    errors::guard(py, || step(py, text, recv_ns, syncs))
}

/// What [`next_diff`] did with a depth diff.
enum Step<'py> {
    /// Applied whole: the `BookUpdate`.
    Applied(Bound<'py, PyAny>),
    /// Applied whole, and the book is crossed now: `BookSync._applied` decides.
    Crossed,
    /// Not applied, nothing changed: `BookSync.on_depth_text` decides.
    Declined,
}

fn step<'py>(
    py: Python<'py>,
    text: &str,
    recv_ns: &Bound<'py, PyAny>,
    syncs: &Bound<'py, PyDict>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let Some(m) = scan::binance(text) else {
        return Ok(None);
    };
    let mut kind = None;
    match m {
        Message::Depth {
            symbol,
            event_time,
            first,
            last,
            bids_at,
            asks_at,
        } => {
            let diff = Diff {
                event_time,
                first,
                last,
                bids_at,
                asks_at,
            };
            match next_diff(py, text, symbol, &diff, recv_ns, syncs)? {
                Step::Applied(event) => return Ok(Some(event)),
                Step::Crossed => kind = Some(4u8),
                Step::Declined => {}
            }
        }
        Message::BookTicker {
            symbol,
            update_id,
            bid,
            bid_qty,
            ask,
            ask_qty,
        } => {
            let read = with_grids(py, symbol, syncs, |tick, lot| {
                Some((
                    ticks(tick, bid)?,
                    scan::steps_u64(lot, bid_qty)?,
                    ticks(tick, ask)?,
                    scan::steps_u64(lot, ask_qty)?,
                ))
            })?;
            if let Some((bp, bq, ap, aq)) = read {
                let t = (5u8, symbol, update_id, bp, bq, ap, aq).into_pyobject(py)?;
                return Ok(Some(t.into_any()));
            }
        }
        Message::AggTrade {
            symbol,
            trade_id,
            price,
            qty,
            trade_time,
            buyer_maker,
        } => {
            let read = with_grids(py, symbol, syncs, |tick, lot| {
                Some((ticks(tick, price)?, scan::steps_u64(lot, qty)?))
            })?;
            if let Some((p, q)) = read {
                let t = (6u8, symbol, trade_id, p, q, trade_time, buyer_maker).into_pyobject(py)?;
                return Ok(Some(t.into_any()));
            }
        }
        Message::Other { .. } => {}
    }
    Ok(Some(message_tuple(py, m, kind)?.into_any()))
}

/// A price in ticks of `tick` that fits `i64` (`L2Book.price_to_ticks` without its errors).
fn ticks(tick: &Grid, s: &str) -> Option<i64> {
    i64::try_from(scan::steps_u64(tick, s)?).ok()
}

/// `read(tick, lot)` on the grids of the book of `symbol`'s sync in `syncs`; `None` when there
/// is no such book (or it has no grids, or it is in use) or `read` says `None`.
fn with_grids<T>(
    py: Python<'_>,
    symbol: &str,
    syncs: &Bound<'_, PyDict>,
    read: impl FnOnce(&Grid, &Grid) -> Option<T>,
) -> PyResult<Option<T>> {
    let Some(sync) = syncs.get_item(PyString::new(py, symbol))? else {
        return Ok(None);
    };
    let book_obj = sync.getattr(intern!(py, "book"))?;
    let Ok(book) = book_obj.cast::<L2Book>() else {
        return Ok(None);
    };
    let Ok(b) = book.try_borrow() else {
        return Ok(None);
    };
    match (&b.tick, &b.lot) {
        (Some(tick), Some(lot)) => Ok(read(tick, lot)),
        _ => Ok(None),
    }
}

/// The header fields of a depth diff [`next_diff`] needs.
struct Diff {
    event_time: u64,
    first: u64,
    last: u64,
    bids_at: usize,
    asks_at: usize,
}

/// `BookSync.on_depth_text`'s common case in one go: the symbol's `BookSync` in `syncs` is
/// synced, the diff is the next one (`U <= update_id + 1 < u + 1`), every level is on the
/// grid and the book is not crossed after it. Then the diff is applied and the `BookUpdate`
/// built as the Python code does; the caller moves `update_id` on and counts it (attribute
/// stores are cheaper in Python bytecode than through the C API). Anything else changes
/// nothing ([`Step::Declined`]) except a crossed book, which is left applied for
/// `BookSync._applied` ([`Step::Crossed`]), as `on_depth_text` does.
fn next_diff<'py>(
    py: Python<'py>,
    text: &str,
    symbol: &str,
    d: &Diff,
    recv_ns: &Bound<'py, PyAny>,
    syncs: &Bound<'py, PyDict>,
) -> PyResult<Step<'py>> {
    let key = PyString::new(py, symbol);
    let Some(sync) = syncs.get_item(&key)? else {
        return Ok(Step::Declined);
    };
    let synced = SYNCED.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        let state = py
            .import("tradecore.marketdata.sync")?
            .getattr("SyncState")?
            .getattr("SYNCED")?;
        Ok(state.unbind())
    })?;
    if !sync.getattr(intern!(py, "state"))?.is(synced.bind(py)) {
        return Ok(Step::Declined);
    }
    let Ok(uid) = sync.getattr(intern!(py, "update_id"))?.extract::<u64>() else {
        return Ok(Step::Declined);
    };
    if d.first > d.last || d.last <= uid || u128::from(d.first) > u128::from(uid) + 1 {
        return Ok(Step::Declined);
    }
    let book_obj = sync.getattr(intern!(py, "book"))?;
    let Ok(book) = book_obj.cast::<L2Book>() else {
        return Ok(Step::Declined);
    };
    {
        let Ok(mut b) = book.try_borrow_mut() else {
            return Ok(Step::Declined);
        };
        let b = &mut *b;
        let (Some(tick), Some(lot)) = (&b.tick, &b.lot) else {
            return Ok(Step::Declined);
        };
        b.scratch.clear();
        let read = scan::depth_levels(text, d.bids_at, d.asks_at, tick, lot, true, &mut b.scratch);
        // An error or an off-grid level: the Python rules read it again and word it.
        if read != Ok(0) {
            return Ok(Step::Declined);
        }
        b.commit(py, false)?;
        if b.book.is_crossed() {
            return Ok(Step::Crossed);
        }
    }
    let ts_ns = match d.event_time.checked_mul(1_000_000) {
        Some(ns) => ns.into_pyobject(py)?.into_any(),
        None => (u128::from(d.event_time) * 1_000_000)
            .into_pyobject(py)?
            .into_any(),
    };
    let class = BOOK_UPDATE.import(py, "tradecore.marketdata.events", "BookUpdate")?;
    let event = class.call1((key, ts_ns, recv_ns, d.last, book_obj))?;
    Ok(Step::Applied(event))
}

/// Registers this module's classes and functions.
pub fn add_to_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<L2Book>()?;
    m.add_function(wrap_pyfunction!(binance_scan, m)?)?;
    m.add_function(wrap_pyfunction!(binance_step, m)?)?;
    Ok(())
}
