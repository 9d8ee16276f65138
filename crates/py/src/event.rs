//! The `Event` class: an immutable Python view of one [`tradecore_book::Event`], and the pool
//! of reusable `Event` objects that the per-call API returns.
//!
//! An `Event` stores the raw fields of the Rust event and converts lazily: `kind` and `reason`
//! are looked up in the enum cache only when read. Equality and hashing are those of the Rust
//! event (all eight fields; the hash is the one `#[pyclass(hash)]` derives for it).
//!
//! Invariant: an `Event` (or a returned list) that any Python code can reach never changes
//! behind its holder's back. The fields sit in atomics only so that an [`EventPool`] may
//! rewrite an object that nothing else references: the pool rewrites a pooled event only
//! while its reference count shows no holder but the pool (and, for the one-event list, that
//! list, itself held by the pool alone and checked to still hold exactly that event). Python
//! code can only see an object through a reference, which the count would show, and with the
//! GIL held nobody can take one between the check and the rewrite (the rewrite runs no Python
//! code: nothing is freed). `Event` has no `__dict__`, no weak references and no subclasses.
//! Relaxed loads and stores compile to plain moves: the atomics cost nothing.
//!
//! Cost: a one-event result whose previous list was dropped costs a few refcount checks and
//! seven stores, instead of an event allocation (PyO3 goes through `object.__new__` and
//! `tp_alloc`), a list allocation and both deallocations; a result of up to [`POOL_MAX`]
//! events reuses the event objects and builds a new list. Callgrind on the peer stream
//! (one event per call): 1,915 -> about 1,300 instructions per call, interpreter loop included.
//! The reusable one-event case is checked inline and everything else is out of line
//! (`list_slow`), which keeps the common path free of the other paths' stack frame.
//!
//! Measured and rejected: PyO3's `freelist` option made creation slower here (its list sits
//! behind a lock), and in PyO3 0.30.1 it does not compile together with `eq, hash`.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple, PyType};
use pyo3::{PyTraverseError, PyVisit};

use tradecore_book::{Event, EventKind, Reason};

use crate::convert::{
    enums, KindArg, Leaves, OrderId, OtherId, OtherLeaves, Price, Qty, ReasonArg,
};

/// One thing that happened in the book.
#[pyclass(frozen, eq, hash, module = "tradecore._core", name = "Event")]
pub struct PyEvent {
    /// kind | reason << 8, order_id, other_id, price (two's complement), qty, leaves,
    /// other_leaves.
    fields: [AtomicU64; 7],
}

impl PyEvent {
    /// A new event object holding `e`.
    #[inline]
    pub fn new_from(e: &Event) -> Self {
        let f = Self::words(e);
        PyEvent {
            fields: f.map(AtomicU64::new),
        }
    }

    #[inline(always)]
    fn words(e: &Event) -> [u64; 7] {
        [
            e.kind as u64 | (e.reason as u64) << 8,
            e.order_id,
            e.other_id,
            e.price as u64,
            e.qty,
            e.leaves,
            e.other_leaves,
        ]
    }

    /// The Rust event this object holds.
    #[inline]
    pub fn get(&self) -> Event {
        let w = |i: usize| self.fields[i].load(Relaxed);
        let codes = w(0);
        Event {
            // Only `words` stores codes, from valid enums: the lookups cannot miss.
            kind: EventKind::ALL
                .get((codes & 0xff) as usize)
                .copied()
                .unwrap_or(EventKind::Rejected),
            reason: Reason::ALL
                .get((codes >> 8 & 0xff) as usize)
                .copied()
                .unwrap_or(Reason::None),
            order_id: w(1),
            other_id: w(2),
            price: w(3) as i64,
            qty: w(4),
            leaves: w(5),
            other_leaves: w(6),
        }
    }

    /// Overwrite the fields. Only for objects that no Python code can reach (see the module
    /// docs); [`EventPool`] is the only caller.
    #[inline(always)]
    fn overwrite(&self, e: &Event) {
        for (slot, v) in self.fields.iter().zip(Self::words(e)) {
            slot.store(v, Relaxed);
        }
    }

    #[inline(always)]
    fn load(&self, i: usize) -> u64 {
        self.fields[i].load(Relaxed)
    }
}

impl PartialEq for PyEvent {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for PyEvent {}

impl Hash for PyEvent {
    /// The hash of the Rust event, as `#[derive(Hash)]` on a newtype of it gives.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.get().hash(state);
    }
}

/// Largest number of events of one call served from the pool; longer lists get fresh objects.
pub const POOL_MAX: usize = 64;

/// Reusable `Event` objects (and, for the common one-event result, the list too) for the lists
/// the per-call API returns; one pool per book.
#[derive(Default)]
pub struct EventPool {
    /// Objects for results of 2 ..= [`POOL_MAX`] events, by position.
    objs: Vec<Py<PyEvent>>,
    /// The last one-event result: the list and the event it held.
    single: Option<(Py<PyList>, Py<PyEvent>)>,
}

/// Reference count of `obj`.
#[inline(always)]
fn refcnt<T>(py: Python<'_>, obj: &Py<T>) -> isize {
    #[allow(
        deprecated,
        reason = "the replacement, ffi::Py_REFCNT, needs unsafe code"
    )]
    obj.get_refcnt(py)
}

impl EventPool {
    /// A Python list of `Event`s for `events`.
    #[inline]
    pub fn list<'py>(&mut self, py: Python<'py>, events: &[Event]) -> PyResult<Bound<'py, PyList>> {
        if let [e] = events {
            if let Some(list) = self.reuse_single(py, e) {
                return Ok(list);
            }
        }
        self.list_slow(py, events)
    }

    /// Every case but a reusable one-event list: out of line, so the common case stays small.
    #[cold]
    #[inline(never)]
    fn list_slow<'py>(
        &mut self,
        py: Python<'py>,
        events: &[Event],
    ) -> PyResult<Bound<'py, PyList>> {
        match events {
            [e] => self.new_single(py, e),
            _ if events.len() <= POOL_MAX => self.several(py, events),
            _ => PyList::new(py, events.iter().map(PyEvent::new_from)),
        }
    }

    /// `[e]` in the last one-event list, if nothing but the pool holds that list (refcount 1)
    /// and it still holds exactly its event, which nothing else holds (refcount 2: the pool
    /// and the list).
    #[inline(always)]
    fn reuse_single<'py>(&self, py: Python<'py>, e: &Event) -> Option<Bound<'py, PyList>> {
        let (list, obj) = self.single.as_ref()?;
        if refcnt(py, list) != 1 || refcnt(py, obj) != 2 {
            return None;
        }
        let list = list.bind(py);
        if list.len() != 1 || !list.get_item(0).ok()?.is(obj) {
            return None;
        }
        obj.get().overwrite(e);
        Some(list.clone())
    }

    /// `[e]` in a new list and a new event, which become the pool's one-event pair.
    fn new_single<'py>(&mut self, py: Python<'py>, e: &Event) -> PyResult<Bound<'py, PyList>> {
        let obj = Py::new(py, PyEvent::new_from(e))?;
        let list = PyList::new(py, [obj.clone_ref(py)])?;
        self.single = Some((list.clone().unbind(), obj));
        Ok(list)
    }

    /// Visit every object the pool holds (for the book's `__traverse__`: a caller may put the
    /// book into a returned list, and the cyclic GC must see the book -> pool -> list edge to
    /// free such a cycle).
    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some((list, obj)) = &self.single {
            visit.call(list)?;
            visit.call(obj)?;
        }
        for obj in &self.objs {
            visit.call(obj)?;
        }
        Ok(())
    }

    /// Drop every pooled object (for the book's `__clear__`).
    pub fn clear(&mut self) {
        self.single = None;
        self.objs.clear();
    }

    /// A new list of pooled objects: each object nothing else holds (refcount 1) is rewritten,
    /// any other is left to its holders and replaced by a fresh one.
    fn several<'py>(&mut self, py: Python<'py>, events: &[Event]) -> PyResult<Bound<'py, PyList>> {
        for (i, e) in events.iter().enumerate() {
            match self.objs.get(i) {
                Some(obj) if refcnt(py, obj) == 1 => obj.get().overwrite(e),
                Some(_) => self.objs[i] = Py::new(py, PyEvent::new_from(e))?,
                None => self.objs.push(Py::new(py, PyEvent::new_from(e))?),
            }
        }
        PyList::new(
            py,
            self.objs[..events.len()].iter().map(|o| o.clone_ref(py)),
        )
    }
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
        PyEvent::new_from(&Event {
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
        Ok(enums(py)?.kinds[self.get().kind as usize].clone_ref(py))
    }

    /// Why (a `tradecore.Reason` member; `Reason.NONE == ""` when there is no reason).
    #[getter]
    fn reason(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(enums(py)?.reasons[self.get().reason as usize].clone_ref(py))
    }

    /// The order the event is about (the taker, for fills).
    #[getter]
    fn order_id(&self) -> u64 {
        self.load(1)
    }

    /// The maker, for fills; 0 otherwise.
    #[getter]
    fn other_id(&self) -> u64 {
        self.load(2)
    }

    /// Price in ticks.
    #[getter]
    fn price(&self) -> i64 {
        self.load(3) as i64
    }

    /// Quantity in lots (meaning depends on the kind).
    #[getter]
    fn qty(&self) -> u64 {
        self.load(4)
    }

    /// Remaining quantity of `order_id` after the event.
    #[getter]
    fn leaves(&self) -> u64 {
        self.load(5)
    }

    /// Remaining quantity of `other_id` after a fill; 0 otherwise.
    #[getter]
    fn other_leaves(&self) -> u64 {
        self.load(6)
    }

    /// `(kind, reason, order_id, other_id, price, qty, leaves, other_leaves)` with kind and
    /// reason as plain `str` names.
    fn as_tuple<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let cache = enums(py)?;
        let e = &self.get();
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
        let e = &self.get();
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
