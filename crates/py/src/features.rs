//! `BookFeaturesCore`: the state and the per-update arithmetic of
//! `tradecore.strategy.features.BookFeatures` (the Python class subclasses it and adds the
//! argument checks with their messages, `vector_into` and the definitions in its docstring).
//!
//! Owns: the last valid book's touch, spread, microprice, the three imbalances, the return and
//! its EWMA variance, the momentum ring and the `momentum` list (one Python list object, updated
//! in place, as the Python class always did).
//!
//! Invariants:
//! * Every float is bit for bit what the former pure-Python `update` computed: the same
//!   operations in the same order on IEEE doubles, and Python's true division of two ints
//!   (correctly rounded) where Python divided ints. Rust computes `a / b` itself only when both
//!   ints are at most 2**53 in magnitude (then both convert exactly and the IEEE quotient is the
//!   correctly rounded one, what CPython's own fast path does); otherwise, and whenever an
//!   exact int product or sum would overflow `i128`, it hands the ints to Python's `/`, so even
//!   the errors (`ZeroDivisionError`, `OverflowError`) are Python's.
//! * Fields are assigned in the order the Python code assigned its attributes, so an exception
//!   half way (only possible with a foreign book whose quantities cancel out) leaves the same
//!   partial state.
//! * After an invalid update (a side empty, or no positive touch quantity / mid) only `valid`
//!   changes.
//! * Ints of a foreign book (any `BookView` but `L2Book`) must fit in 128 bits (prices and
//!   quantities of an `L2Book` are 64-bit); a bigger one is an `OverflowError` naming it.
//!
//! Cost: for an `L2Book`, one borrow of the book and its `top_stats` fold over the best
//! `levels` levels (no Python object per level, no result tuple), then O(1 + windows) float
//! arithmetic and one `float` per momentum window written into the list. A foreign book goes
//! through `tradecore.strategy.features.top_stats` (its `depth` call and Python loop), then the
//! same arithmetic. Reading an attribute builds its `int` / `float` on demand.

use pyo3::exceptions::{PyOverflowError, PyValueError, PyZeroDivisionError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyFloat, PyList, PyTuple};

use crate::errors;
use crate::l2::L2Book;

/// `tradecore.strategy.features.top_stats`, the reading of a foreign book.
static TOP_STATS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Largest magnitude of an int that converts to `f64` exactly (and that CPython divides with
/// its float fast path).
const EXACT: u64 = 1 << 53;

/// Python's `n / d` for ints: correctly rounded, with Python's errors.
#[inline]
fn int_div(py: Python<'_>, n: i128, d: i128) -> PyResult<f64> {
    if let (Ok(a), Ok(b)) = (i64::try_from(n), i64::try_from(d)) {
        if a.unsigned_abs() <= EXACT && b.unsigned_abs() <= EXACT && b != 0 {
            #[allow(
                clippy::cast_precision_loss,
                reason = "both magnitudes are <= 2**53, so the conversions are exact"
            )]
            let q = a as f64 / b as f64;
            return Ok(q);
        }
    }
    int_div_py(
        py,
        n.into_pyobject(py)?.into_any(),
        d.into_pyobject(py)?.into_any(),
    )
}

/// Python's `n / d` on Python ints (the slow, general path).
#[cold]
fn int_div_py(py: Python<'_>, n: Bound<'_, PyAny>, d: Bound<'_, PyAny>) -> PyResult<f64> {
    let _ = py;
    n.div(d)?.extract::<f64>()
}

/// Python's `a / b` for floats.
#[inline]
fn float_div(a: f64, b: f64) -> PyResult<f64> {
    if b == 0.0 {
        return Err(PyZeroDivisionError::new_err("float division by zero"));
    }
    Ok(a / b)
}

/// An int as a Python `int` (the `i64` conversion is the fast one under abi3).
#[inline]
fn int_to_py(py: Python<'_>, v: i128) -> PyResult<Bound<'_, PyAny>> {
    match i64::try_from(v) {
        Ok(small) => Ok(small.into_pyobject(py)?.into_any()),
        Err(_) => Ok(v.into_pyobject(py)?.into_any()),
    }
}

/// One int of a foreign book's `top_stats` tuple.
fn stat_int(item: &Bound<'_, PyAny>, what: &str) -> PyResult<i128> {
    if let Ok(v) = item.extract::<i64>() {
        return Ok(i128::from(v));
    }
    item.extract::<i128>().map_err(|e| {
        if e.is_instance_of::<PyOverflowError>(item.py()) {
            PyOverflowError::new_err(format!(
                "BookFeatures.update: the book's {what} does not fit in 128 bits"
            ))
        } else {
            e
        }
    })
}

/// The touch and top-N sums of one book, as `top_stats` reports them.
#[derive(Clone, Copy, Debug)]
struct Stats {
    bid: i128,
    bid_qty: i128,
    ask: i128,
    ask_qty: i128,
    sum_bid: i128,
    sum_ask: i128,
    weighted_bid: f64,
    weighted_ask: f64,
}

impl Stats {
    /// From the `(bid, bid_qty, ask, ask_qty, sum_bid, sum_ask, w_bid, w_ask)` tuple.
    fn from_tuple(t: &Bound<'_, PyAny>) -> PyResult<Self> {
        let t = t.cast::<PyTuple>()?;
        if t.len() != 8 {
            return Err(PyValueError::new_err(format!(
                "BookFeatures.update: top_stats returned {} items, expected 8",
                t.len()
            )));
        }
        Ok(Stats {
            bid: stat_int(&t.get_item(0)?, "best bid price")?,
            bid_qty: stat_int(&t.get_item(1)?, "best bid quantity")?,
            ask: stat_int(&t.get_item(2)?, "best ask price")?,
            ask_qty: stat_int(&t.get_item(3)?, "best ask quantity")?,
            sum_bid: stat_int(&t.get_item(4)?, "summed bid quantity")?,
            sum_ask: stat_int(&t.get_item(5)?, "summed ask quantity")?,
            weighted_bid: t.get_item(6)?.extract()?,
            weighted_ask: t.get_item(7)?.extract()?,
        })
    }
}

/// State and arithmetic of `BookFeatures` (see the module doc); subclassed in Python.
#[pyclass(module = "tradecore._core", name = "BookFeaturesCore", subclass)]
pub struct BookFeaturesCore {
    levels: usize,
    depth_decay: f64,
    vol_alpha: f64,
    /// The windows as given (a tuple of ints), returned by `momentum_windows`.
    windows_obj: Py<PyTuple>,
    windows: Vec<usize>,
    /// `depth_decay ** i` for `i < levels`, computed by Python's `**`.
    weights: Vec<f64>,
    weights_obj: Py<PyTuple>,
    /// The last `max(windows) + 1` valid mids (`mid2`); `ring_pos` is the next slot.
    ring: Vec<i128>,
    ring_pos: usize,
    momentum: Py<PyList>,
    valid: bool,
    has_prev: bool,
    updates: u64,
    bid: i128,
    ask: i128,
    bid_qty: i128,
    ask_qty: i128,
    mid2: i128,
    spread: i128,
    microprice: f64,
    imbalance_1: f64,
    imbalance_n: f64,
    depth_imbalance: f64,
    ret: f64,
    variance: f64,
}

impl BookFeaturesCore {
    /// The stats of `book`: straight from the Rust book for an `L2Book`, else through the
    /// Python `top_stats`. None when a side is empty.
    fn stats(&self, py: Python<'_>, book: &Bound<'_, PyAny>) -> PyResult<Option<Stats>> {
        if let Ok(l2) = book.cast_exact::<L2Book>() {
            let Some(t) = l2.try_borrow()?.core().top_stats(&self.weights) else {
                return Ok(None);
            };
            // Sums of at most 1000 levels of u64 each: far below 2**127.
            let sum = |v: u128| {
                i128::try_from(v).map_err(|_| {
                    PyOverflowError::new_err("BookFeatures.update: a level sum beyond 2**127")
                })
            };
            return Ok(Some(Stats {
                bid: i128::from(t.bid.0),
                bid_qty: i128::from(t.bid.1),
                ask: i128::from(t.ask.0),
                ask_qty: i128::from(t.ask.1),
                sum_bid: sum(t.sum_bid)?,
                sum_ask: sum(t.sum_ask)?,
                weighted_bid: t.weighted_bid,
                weighted_ask: t.weighted_ask,
            }));
        }
        let f = TOP_STATS.import(py, "tradecore.strategy.features", "top_stats")?;
        let r = f.call1((book, self.weights_obj.bind(py)))?;
        if r.is_none() {
            return Ok(None);
        }
        Stats::from_tuple(&r).map(Some)
    }

    /// The Python `update` after its `top_stats` call, statement by statement.
    fn apply(&mut self, py: Python<'_>, s: Option<Stats>) -> PyResult<bool> {
        let Some(s) = s else {
            self.valid = false;
            return Ok(false);
        };
        // Python's ints never overflow; ints of up to 128 bits can still give a touch sum
        // beyond i128 (never for an L2Book): the 128-bit limit of foreign books.
        let (Some(top), Some(mid2)) = (s.bid_qty.checked_add(s.ask_qty), s.bid.checked_add(s.ask))
        else {
            return Err(PyOverflowError::new_err(
                "BookFeatures.update: the book's touch does not fit in 128 bits",
            ));
        };
        if top <= 0 || mid2 <= 0 {
            self.valid = false;
            return Ok(false);
        }
        self.bid = s.bid;
        self.ask = s.ask;
        self.bid_qty = s.bid_qty;
        self.ask_qty = s.ask_qty;
        self.spread = s.ask.checked_sub(s.bid).ok_or_else(|| {
            PyOverflowError::new_err("BookFeatures.update: the spread does not fit in 128 bits")
        })?;
        self.microprice = microprice(py, &s, top)?;
        self.imbalance_1 = int_div(py, s.bid_qty - s.ask_qty, top)?;
        self.imbalance_n = match (
            s.sum_bid.checked_sub(s.sum_ask),
            s.sum_bid.checked_add(s.sum_ask),
        ) {
            (Some(n), Some(d)) => int_div(py, n, d)?,
            _ => {
                let b = s.sum_bid.into_pyobject(py)?;
                let a = s.sum_ask.into_pyobject(py)?;
                int_div_py(py, b.sub(&a)?, b.add(&a)?)?
            }
        };
        self.depth_imbalance = float_div(
            s.weighted_bid - s.weighted_ask,
            s.weighted_bid + s.weighted_ask,
        )?;
        if self.has_prev {
            let ret = int_div(py, mid2, self.mid2)? - 1.0;
            self.ret = ret;
            let alpha = self.vol_alpha;
            self.variance = (1.0 - alpha) * self.variance + alpha * ret * ret;
        } else {
            self.ret = 0.0;
            self.has_prev = true;
        }
        self.mid2 = mid2;
        let n = self.updates + 1;
        self.updates = n;
        if !self.windows.is_empty() {
            let size = self.ring.len();
            let pos = self.ring_pos;
            self.ring[pos] = mid2;
            let momentum = self.momentum.bind(py);
            for (k, &w) in self.windows.iter().enumerate() {
                if n > w as u64 {
                    // w < size (the ring holds max(windows) + 1 mids).
                    let past = self.ring[(pos + size - w) % size];
                    let m = int_div(py, mid2, past)? - 1.0;
                    momentum.set_item(k, PyFloat::new(py, m))?;
                }
            }
            self.ring_pos = (pos + 1) % size;
        }
        self.valid = true;
        Ok(true)
    }
}

/// `(bid * ask_qty + ask * bid_qty) / top`, exact ints then Python's int division.
#[inline]
fn microprice(py: Python<'_>, s: &Stats, top: i128) -> PyResult<f64> {
    let num = s
        .bid
        .checked_mul(s.ask_qty)
        .and_then(|x| s.ask.checked_mul(s.bid_qty).and_then(|y| x.checked_add(y)));
    match num {
        Some(num) => int_div(py, num, top),
        None => microprice_py(py, s, top),
    }
}

#[cold]
fn microprice_py(py: Python<'_>, s: &Stats, top: i128) -> PyResult<f64> {
    let bid = s.bid.into_pyobject(py)?;
    let ask = s.ask.into_pyobject(py)?;
    let num = bid
        .mul(s.ask_qty.into_pyobject(py)?)?
        .add(ask.mul(s.bid_qty.into_pyobject(py)?)?)?;
    int_div_py(py, num, top.into_pyobject(py)?.into_any())
}

#[pymethods]
impl BookFeaturesCore {
    /// State for `levels` levels, `depth_decay`, `vol_alpha` and the momentum windows (a tuple
    /// of ints); the Python subclass checks the arguments first with its own messages, these
    /// checks only keep the state sound.
    #[new]
    #[pyo3(signature = (levels, depth_decay, vol_alpha, momentum_windows))]
    fn new(
        py: Python<'_>,
        levels: usize,
        depth_decay: f64,
        vol_alpha: f64,
        momentum_windows: Bound<'_, PyTuple>,
    ) -> PyResult<Self> {
        if !(1..=1000).contains(&levels) {
            return Err(PyValueError::new_err(format!(
                "levels must be in [1, 1000], got {levels}"
            )));
        }
        let unit = |x: f64| x > 0.0 && x <= 1.0;
        if !unit(depth_decay) {
            return Err(PyValueError::new_err(format!(
                "depth_decay must be in (0, 1], got {depth_decay}"
            )));
        }
        if !unit(vol_alpha) {
            return Err(PyValueError::new_err(format!(
                "vol_alpha must be in (0, 1], got {vol_alpha}"
            )));
        }
        let mut windows = Vec::with_capacity(momentum_windows.len());
        for (i, w) in momentum_windows.iter().enumerate() {
            let w: usize = w.extract()?;
            if !(1..=1_000_000).contains(&w) {
                return Err(PyValueError::new_err(format!(
                    "momentum_windows[{i}] must be in [1, 1000000], got {w}"
                )));
            }
            windows.push(w);
        }
        // Python's float ** int, exactly as the Python class computed the weights.
        let decay = PyFloat::new(py, depth_decay);
        let mut weights = Vec::with_capacity(levels);
        for i in 0..levels {
            weights.push(decay.pow(i, py.None())?.extract::<f64>()?);
        }
        let weights_obj = PyTuple::new(py, &weights)?.unbind();
        let ring_size = windows.iter().copied().max().unwrap_or(0) + 1;
        let momentum = PyList::new(py, vec![0.0f64; windows.len()])?.unbind();
        Ok(BookFeaturesCore {
            levels,
            depth_decay,
            vol_alpha,
            windows_obj: momentum_windows.unbind(),
            windows,
            weights,
            weights_obj,
            ring: vec![0; ring_size],
            ring_pos: 0,
            momentum,
            valid: false,
            has_prev: false,
            updates: 0,
            bid: 0,
            ask: 0,
            bid_qty: 0,
            ask_qty: 0,
            mid2: 0,
            spread: 0,
            microprice: 0.0,
            imbalance_1: 0.0,
            imbalance_n: 0.0,
            depth_imbalance: 0.0,
            ret: 0.0,
            variance: 0.0,
        })
    }

    /// Recompute from `book` after a change; returns `valid` (both sides present).
    fn update(&mut self, py: Python<'_>, book: &Bound<'_, PyAny>) -> PyResult<bool> {
        errors::guard(py, || {
            let s = self.stats(py, book)?;
            self.apply(py, s)
        })
    }

    /// `update(book)`, then, when the book is valid, the values a signal reads first in one
    /// tuple: `(bid, ask, spread, imbalance_1, imbalance_n, depth_imbalance)` (the same
    /// objects the attributes give); None when it is not. One call instead of an update and
    /// five attribute reads (each a getter call of its own).
    fn update_top<'py>(
        &mut self,
        py: Python<'py>,
        book: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        if !self.update(py, book)? {
            return Ok(None);
        }
        let items = [
            int_to_py(py, self.bid)?,
            int_to_py(py, self.ask)?,
            int_to_py(py, self.spread)?,
            PyFloat::new(py, self.imbalance_1).into_any(),
            PyFloat::new(py, self.imbalance_n).into_any(),
            PyFloat::new(py, self.depth_imbalance).into_any(),
        ];
        Ok(Some(PyTuple::new(py, items)?))
    }

    /// The book was lost (resync): no return across the gap, `valid` False until the next
    /// update; the variance and the momentum history are kept.
    fn reset(&mut self) {
        self.valid = false;
        self.has_prev = false;
    }

    /// Both sides present at the last update.
    #[getter]
    fn valid(&self) -> bool {
        self.valid
    }

    /// Valid updates since construction.
    #[getter]
    fn updates(&self) -> u64 {
        self.updates
    }

    /// Best bid price (ticks).
    #[getter]
    fn bid<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        int_to_py(py, self.bid)
    }

    /// Best ask price (ticks).
    #[getter]
    fn ask<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        int_to_py(py, self.ask)
    }

    /// Best bid quantity (lots).
    #[getter]
    fn bid_qty<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        int_to_py(py, self.bid_qty)
    }

    /// Best ask quantity (lots).
    #[getter]
    fn ask_qty<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        int_to_py(py, self.ask_qty)
    }

    /// `bid + ask` (twice the mid, exact).
    #[getter]
    fn mid2<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        int_to_py(py, self.mid2)
    }

    /// `ask - bid` (ticks).
    #[getter]
    fn spread<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        int_to_py(py, self.spread)
    }

    /// The mid price in ticks (may be a half tick): `mid2 / 2`.
    #[getter]
    fn mid(&self, py: Python<'_>) -> PyResult<f64> {
        int_div(py, self.mid2, 2)
    }

    /// Size-weighted mid of the touch (ticks).
    #[getter]
    fn microprice(&self) -> f64 {
        self.microprice
    }

    /// Imbalance of the touch quantities, in [-1, 1].
    #[getter]
    fn imbalance_1(&self) -> f64 {
        self.imbalance_1
    }

    /// Imbalance of the summed best `levels` levels, in [-1, 1].
    #[getter]
    fn imbalance_n(&self) -> f64 {
        self.imbalance_n
    }

    /// Imbalance with level `i` weighted by `depth_decay ** i`, in [-1, 1].
    #[getter]
    fn depth_imbalance(&self) -> f64 {
        self.depth_imbalance
    }

    /// Simple return of `mid2` since the previous valid update (0.0 after a reset).
    #[getter]
    fn ret(&self) -> f64 {
        self.ret
    }

    /// EWMA variance of the returns.
    #[getter]
    fn variance(&self) -> f64 {
        self.variance
    }

    /// `sqrt(variance)`.
    #[getter]
    fn volatility(&self) -> f64 {
        self.variance.sqrt()
    }

    /// Momentum per window (one list, updated in place).
    #[getter]
    fn momentum<'py>(&self, py: Python<'py>) -> Bound<'py, PyList> {
        self.momentum.bind(py).clone()
    }

    /// Levels per side in `imbalance_n` and `depth_imbalance`.
    #[getter]
    fn levels(&self) -> usize {
        self.levels
    }

    /// Weight ratio between consecutive levels.
    #[getter]
    fn depth_decay(&self) -> f64 {
        self.depth_decay
    }

    /// EWMA weight of the newest squared return.
    #[getter]
    fn vol_alpha(&self) -> f64 {
        self.vol_alpha
    }

    /// The momentum look-backs (a tuple of ints, as given).
    #[getter]
    fn momentum_windows<'py>(&self, py: Python<'py>) -> Bound<'py, PyTuple> {
        self.windows_obj.bind(py).clone()
    }

    /// `depth_decay ** i` for each level (a tuple of floats).
    #[getter]
    fn _weights<'py>(&self, py: Python<'py>) -> Bound<'py, PyTuple> {
        self.weights_obj.bind(py).clone()
    }

    /// Whether the next update computes a return.
    #[getter]
    fn _has_prev(&self) -> bool {
        self.has_prev
    }

    /// A copy of the ring of past mids.
    #[getter]
    fn _ring<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items = self
            .ring
            .iter()
            .map(|&v| int_to_py(py, v))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    /// The ring slot the next valid mid goes to.
    #[getter]
    fn _ring_pos(&self) -> usize {
        self.ring_pos
    }

    /// The ring's length, `max(momentum_windows, default=0) + 1`.
    #[getter]
    fn _ring_size(&self) -> usize {
        self.ring.len()
    }
}

/// Register `BookFeaturesCore`.
pub fn add_to_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<BookFeaturesCore>()
}
