//! The `Event` class: an immutable Python view of one [`tradecore_book::Event`].
//!
//! It stores the raw Rust event (48 bytes) and converts lazily: `kind` and `reason` are looked up
//! in the enum cache only when read, so building the list of events a call returns costs one
//! object allocation per event and nothing else. Equality and hashing are those of the Rust
//! event (all eight fields).
//!
//! Invariant: an `Event` is never mutated after construction (`frozen`).
//!
//! Measured and rejected: PyO3's `freelist` option made creation slower here (its list sits
//! behind a lock), and in PyO3 0.30.1 it does not compile together with `eq, hash`.

use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple, PyType};

use tradecore_book::Event;

use crate::convert::{
    enums, KindArg, Leaves, OrderId, OtherId, OtherLeaves, Price, Qty, ReasonArg,
};

/// One thing that happened in the book.
#[pyclass(frozen, eq, hash, module = "tradecore._core", name = "Event")]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PyEvent(pub Event);

/// A Python list of `Event`s for `events`.
#[inline]
pub fn to_list<'py>(py: Python<'py>, events: &[Event]) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, events.iter().map(|e| PyEvent(*e)))
}

#[pymethods]
impl PyEvent {
    #[new]
    #[pyo3(
        signature = (
            kind, reason, order_id, other_id = OtherId(0), price = Price(0), qty = Qty(0),
            leaves = Leaves(0), other_leaves = OtherLeaves(0)
        ),
        text_signature = "(kind, reason, order_id, other_id=0, price=0, qty=0, leaves=0, \
                          other_leaves=0)"
    )]
    #[allow(clippy::too_many_arguments)] // reason: mirrors the eight event fields
    fn new(
        kind: KindArg,
        reason: ReasonArg,
        order_id: OrderId,
        other_id: OtherId,
        price: Price,
        qty: Qty,
        leaves: Leaves,
        other_leaves: OtherLeaves,
    ) -> Self {
        PyEvent(Event {
            kind: kind.0,
            reason: reason.0,
            order_id: order_id.0,
            other_id: other_id.0,
            price: price.0,
            qty: qty.0,
            leaves: leaves.0,
            other_leaves: other_leaves.0,
        })
    }

    /// What happened (a `tradecore.EventKind` member).
    #[getter]
    fn kind(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(enums(py)?.kinds[self.0.kind as usize].clone_ref(py))
    }

    /// Why (a `tradecore.Reason` member; `Reason.NONE == ""` when there is no reason).
    #[getter]
    fn reason(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(enums(py)?.reasons[self.0.reason as usize].clone_ref(py))
    }

    /// The order the event is about (the taker, for fills).
    #[getter]
    fn order_id(&self) -> u64 {
        self.0.order_id
    }

    /// The maker, for fills; 0 otherwise.
    #[getter]
    fn other_id(&self) -> u64 {
        self.0.other_id
    }

    /// Price in ticks.
    #[getter]
    fn price(&self) -> i64 {
        self.0.price
    }

    /// Quantity in lots (meaning depends on the kind).
    #[getter]
    fn qty(&self) -> u64 {
        self.0.qty
    }

    /// Remaining quantity of `order_id` after the event.
    #[getter]
    fn leaves(&self) -> u64 {
        self.0.leaves
    }

    /// Remaining quantity of `other_id` after a fill; 0 otherwise.
    #[getter]
    fn other_leaves(&self) -> u64 {
        self.0.other_leaves
    }

    /// `(kind, reason, order_id, other_id, price, qty, leaves, other_leaves)` with kind and
    /// reason as plain `str` names.
    fn as_tuple<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let cache = enums(py)?;
        let e = &self.0;
        (
            cache.kind_names[e.kind as usize].clone_ref(py),
            cache.reason_names[e.reason as usize].clone_ref(py),
            e.order_id,
            e.other_id,
            e.price,
            e.qty,
            e.leaves,
            e.other_leaves,
        )
            .into_pyobject(py)
    }

    fn __repr__(&self) -> String {
        let e = &self.0;
        format!(
            "Event(kind='{}', reason='{}', order_id={}, other_id={}, price={}, qty={}, \
             leaves={}, other_leaves={})",
            e.kind.name(),
            e.reason.name(),
            e.order_id,
            e.other_id,
            e.price,
            e.qty,
            e.leaves,
            e.other_leaves
        )
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyType>, Bound<'py, PyTuple>)> {
        Ok((slf.get_type(), slf.get().as_tuple(py)?))
    }
}
