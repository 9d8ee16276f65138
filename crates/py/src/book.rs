//! The `OrderBook` class: one fast [`Book`] plus a reused event buffer.
//!
//! Per-call methods parse their arguments, clear the buffer, run one core call under the panic
//! guard and turn the buffer into a list of `Event`s (taken from the book's pool of reusable
//! event objects when they are free, see `event`). `process` hands an array of operations to
//! `batch` and matches with the GIL released. Queries (`best_bid`, `depth`, `orders`, ...) copy
//! plain integers out.
//!
//! Invariant: after a caught panic the book is marked poisoned and every later call raises
//! `InternalError` instead of working on a book whose state is unknown. While `process` runs
//! without the GIL the book is mutably borrowed, so another thread's call on the same book
//! raises PyO3's "already borrowed" `RuntimeError` instead of racing.
//!
//! Cost: see the crate docs; the buffer reaches its peak length once and is never reallocated
//! after that.

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::exceptions::PyMemoryError;
use pyo3::prelude::*;
use pyo3::types::PyList;
use pyo3::{PyTraverseError, PyVisit};

use tradecore_book::{Book, Event, LevelView, Matching, OrderRequest, RestingOrder, Side};

use crate::batch::{self, Outcome};
use crate::convert::{
    Account, Capacity, DepthN, NewPrice, NewQty, OrderId, OrderTypeArg, PostOnly, Price, Qty,
    SideArg, StpArg, TifArg, Timestamp,
};
use crate::errors;
use crate::event;

type OrderTuple = (u64, u32, i64, u64);
type LevelTuple = (i64, u64, u32);

fn order_tuple(o: &RestingOrder) -> OrderTuple {
    (o.order_id, o.account, o.price, o.leaves)
}

fn level_tuples(levels: Vec<LevelView>) -> Vec<LevelTuple> {
    levels.iter().map(|l| (l.price, l.qty, l.count)).collect()
}

/// RAM plus swap in bytes, from `/proc/meminfo` (None where that file does not exist).
fn installed_memory_bytes() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<usize> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib.saturating_mul(1024))
    };
    Some(field("MemTotal:")?.saturating_add(field("SwapTotal:").unwrap_or(0)))
}

/// An L3 limit order book with price-time matching for one instrument.
#[pyclass(subclass, module = "tradecore._core", name = "OrderBook")]
pub struct OrderBook {
    book: Book,
    buf: Vec<Event>,
    pool: event::EventPool,
    poisoned: bool,
}

impl OrderBook {
    fn alive(&self, py: Python<'_>) -> PyResult<()> {
        if self.poisoned {
            Err(errors::internal(
                py,
                "this OrderBook hit an internal error earlier and its state is unknown; \
                 build a new one",
            ))
        } else {
            Ok(())
        }
    }

    /// Run one mutating core call into the event buffer and return its events as a list.
    #[inline]
    fn apply<'py>(
        &mut self,
        py: Python<'py>,
        f: impl FnOnce(&mut Book, &mut Vec<Event>),
    ) -> PyResult<Bound<'py, PyList>> {
        self.alive(py)?;
        self.buf.clear();
        let (book, buf) = (&mut self.book, &mut self.buf);
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(book, buf))) {
            self.poisoned = true;
            return Err(errors::from_panic(py, payload.as_ref()));
        }
        self.pool.list(py, &self.buf)
    }

    /// Run a read-only query under the panic guard.
    #[inline]
    fn query<T>(&self, py: Python<'_>, f: impl FnOnce(&Book) -> T) -> PyResult<T> {
        self.alive(py)?;
        errors::guard(py, || Ok(f(&self.book)))
    }
}

#[pymethods]
impl OrderBook {
    #[new]
    #[pyo3(
        signature = (capacity = Capacity(Book::DEFAULT_CAPACITY)),
        text_signature = "(capacity=1000000)"
    )]
    fn new(py: Python<'_>, capacity: Capacity) -> PyResult<Self> {
        let cap = capacity.0;
        // The arena takes and initialises all its memory up front (about 40 bytes a slot plus
        // an index of at most 16 bytes a slot). An impossible amount must be a MemoryError,
        // not an abort inside the allocator or a visit from the OOM killer.
        let bytes = cap.saturating_mul(56);
        let installed = installed_memory_bytes();
        if installed.is_some_and(|total| bytes > total)
            || Vec::<u8>::new().try_reserve_exact(bytes).is_err()
        {
            return Err(PyMemoryError::new_err(format!(
                "capacity={cap} needs about {bytes} bytes of memory, more than this machine can \
                 provide{}",
                installed.map_or(String::new(), |t| format!(" ({t} bytes of RAM + swap)"))
            )));
        }
        let book = py
            .detach(|| catch_unwind(|| Book::with_capacity(cap)))
            .map_err(|p| errors::from_panic(py, p.as_ref()))?;
        Ok(OrderBook {
            book,
            buf: Vec::with_capacity(64),
            pool: event::EventPool::default(),
            poisoned: false,
        })
    }

    /// Submit a new order and return its events.
    #[pyo3(
        signature = (
            order_id, account, side, price, qty, order_type = OrderTypeArg(tradecore_book::OrderType::Limit),
            tif = TifArg(tradecore_book::TimeInForce::Gtc), stp = StpArg(tradecore_book::Stp::CancelNewest),
            post_only = PostOnly(false), timestamp = Timestamp(0)
        ),
        text_signature = "($self, order_id, account, side, price, qty, order_type='LIMIT', \
                          tif='GTC', stp='CANCEL_NEWEST', post_only=False, timestamp=0)"
    )]
    #[allow(clippy::too_many_arguments)] // reason: the Python signature is the order's fields
    fn submit<'py>(
        &mut self,
        py: Python<'py>,
        order_id: OrderId,
        account: Account,
        side: SideArg,
        price: Price,
        qty: Qty,
        order_type: OrderTypeArg,
        tif: TifArg,
        stp: StpArg,
        post_only: PostOnly,
        timestamp: Timestamp,
    ) -> PyResult<Bound<'py, PyList>> {
        let req = OrderRequest {
            order_id: order_id.0,
            account: account.0,
            side: side.0,
            price: price.0,
            qty: qty.0,
            order_type: order_type.0,
            tif: tif.0,
            post_only: post_only.0,
            stp: stp.0,
            timestamp: timestamp.0,
        };
        self.apply(py, |book, buf| book.submit(&req, buf))
    }

    /// Cancel a resting order and return its events.
    #[pyo3(text_signature = "($self, order_id)")]
    fn cancel<'py>(&mut self, py: Python<'py>, order_id: OrderId) -> PyResult<Bound<'py, PyList>> {
        self.apply(py, |book, buf| book.cancel(order_id.0, buf))
    }

    /// Change a resting order's price and/or remaining quantity and return its events.
    #[pyo3(text_signature = "($self, order_id, new_price, new_qty)")]
    fn modify<'py>(
        &mut self,
        py: Python<'py>,
        order_id: OrderId,
        new_price: NewPrice,
        new_qty: NewQty,
    ) -> PyResult<Bound<'py, PyList>> {
        self.apply(py, |book, buf| {
            book.modify(order_id.0, new_price.0, new_qty.0, buf)
        })
    }

    /// Best bid as (price, total qty), or None.
    fn best_bid(&self, py: Python<'_>) -> PyResult<Option<(i64, u64)>> {
        self.query(py, |b| b.best_bid())
    }

    /// Best ask as (price, total qty), or None.
    fn best_ask(&self, py: Python<'_>) -> PyResult<Option<(i64, u64)>> {
        self.query(py, |b| b.best_ask())
    }

    /// Up to n levels per side, best first: (bids, asks) of (price, qty, order_count).
    #[pyo3(signature = (n = DepthN(10)), text_signature = "($self, n=10)")]
    fn depth(&self, py: Python<'_>, n: DepthN) -> PyResult<(Vec<LevelTuple>, Vec<LevelTuple>)> {
        self.query(py, |b| {
            (
                level_tuples(b.depth_side(Side::Buy, n.0)),
                level_tuples(b.depth_side(Side::Sell, n.0)),
            )
        })
    }

    /// Resting orders of one side (or of one price level) in priority order.
    #[pyo3(signature = (side, price = None), text_signature = "($self, side, price=None)")]
    fn orders(
        &self,
        py: Python<'_>,
        side: SideArg,
        price: Option<Price>,
    ) -> PyResult<Vec<OrderTuple>> {
        self.query(py, |b| {
            let list = match price {
                None => b.orders(side.0),
                Some(p) => b.orders_at(side.0, p.0),
            };
            list.iter().map(order_tuple).collect()
        })
    }

    /// One resting order as (order_id, account, price, leaves), or None.
    #[pyo3(text_signature = "($self, order_id)")]
    fn order(&self, py: Python<'_>, order_id: OrderId) -> PyResult<Option<OrderTuple>> {
        self.query(py, |b| b.order(order_id.0).as_ref().map(order_tuple))
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        self.query(py, |b| b.len())
    }

    /// Number of order slots.
    #[getter]
    fn capacity(&self) -> usize {
        self.book.capacity()
    }

    /// Largest order quantity accepted (`2**64 - 1) // capacity`); above it: INVALID_QTY.
    #[getter]
    fn max_qty(&self) -> u64 {
        self.book.max_qty()
    }

    /// Bytes of memory per order slot.
    #[getter]
    fn bytes_per_order(&self) -> f64 {
        self.book.bytes_per_order()
    }

    /// Check every structural invariant; raise InvariantError naming the first one broken.
    fn check_invariants(&self, py: Python<'_>) -> PyResult<()> {
        match self.query(py, |b| b.check_invariants())? {
            Ok(()) => Ok(()),
            Err(msg) => Err(errors::invariant(py, msg)),
        }
    }

    /// Apply an array of OP_DTYPE rows with the GIL released; return the EVENT_DTYPE array.
    #[pyo3(text_signature = "($self, ops)")]
    fn process<'py>(
        &mut self,
        py: Python<'py>,
        ops: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.alive(py)?;
        match batch::process(py, &mut self.book, &mut self.buf, ops)? {
            Outcome::Done(events) => Ok(events),
            Outcome::Invalid(msg) => Err(pyo3::exceptions::PyValueError::new_err(msg)),
            Outcome::Changed(msg) => Err(pyo3::exceptions::PyRuntimeError::new_err(msg)),
            Outcome::Panicked(msg) => {
                self.poisoned = true;
                Err(errors::internal(
                    py,
                    format!(
                        "internal error in the tradecore core (a Rust panic was caught): {msg}"
                    ),
                ))
            }
        }
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.pool.traverse(&visit)
    }

    fn __clear__(&mut self) {
        self.pool.clear();
    }

    fn __repr__(&self) -> String {
        let fmt = |q: Option<(i64, u64)>| match q {
            Some((p, q)) => format!("({p}, {q})"),
            None => "None".to_owned(),
        };
        if self.poisoned {
            return format!("OrderBook(capacity={}, poisoned)", self.book.capacity());
        }
        format!(
            "OrderBook(capacity={}, resting={}, best_bid={}, best_ask={})",
            self.book.capacity(),
            self.book.len(),
            fmt(self.book.best_bid()),
            fmt(self.book.best_ask())
        )
    }
}
