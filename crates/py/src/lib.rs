//! `tradecore._core`: the Python face of the matching core, and the only crate that depends on
//! PyO3. It owns conversions and error mapping, nothing else: every rule of matching lives in
//! `tradecore-book`, and this crate must never change an outcome, only translate it.
//!
//! Modules:
//! * [`book`]: the `OrderBook` class (per-call API, queries, and the batch entry point).
//! * [`event`]: the immutable `Event` class, a thin wrapper of the Rust [`tradecore_book::Event`].
//! * [`batch`]: the numpy record layouts (`OP_DTYPE`, `EVENT_DTYPE`) and the batch loop that
//!   runs without the GIL.
//! * [`convert`]: argument parsing (ints, enum names) with messages that name the argument, and
//!   the cache of the Python enum members.
//! * [`errors`]: the mapping onto `tradecore.errors` and the panic guard.
//! * [`l2`]: the `L2Book` class (aggregated price -> qty book for market data).
//! * [`server`]: the venue server (`serve`) and journal replay, run with the GIL released.
//! * [`loadgen`]: the venue load generator, run with the GIL released.
//!
//! Invariants: no Rust panic reaches Python (each entry point that runs core code is wrapped in
//! `catch_unwind` and raises `tradecore.errors.InternalError`; a book that panicked refuses all
//! further calls); argument errors are `TypeError`/`ValueError` whose message names the
//! argument; business rejections are events. There is no `unsafe` code in this crate.
//!
//! Cost: a per-call `submit` parses its arguments (an exact-`int` check and an integer read
//! each, a pointer compare per enum member), runs the core into a reused event buffer, and
//! returns a list of `Event`s whose objects (and, for a one-event result, the list itself) are
//! reused from the book's pool once the caller has dropped the previous result; otherwise it
//! allocates one Python object per event plus the list. The batch path copies the ops (twice
//! for batches longer than one chunk: validation, then apply), matches with the GIL released,
//! and copies the encoded events once into a `numpy.empty` output array.

use pyo3::prelude::*;

mod batch;
mod book;
mod convert;
mod errors;
mod event;
mod features;
mod l2;
mod loadgen;
mod server;

/// The compiled module `tradecore._core`; `tradecore/__init__.py` re-exports what users need.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<book::OrderBook>()?;
    m.add_class::<event::PyEvent>()?;
    batch::add_to_module(m)?;
    l2::add_to_module(m)?;
    features::add_to_module(m)?;
    server::add_to_module(m)?;
    loadgen::add_to_module(m)?;
    m.add_function(wrap_pyfunction!(errors::_panic_for_tests, m)?)?;
    Ok(())
}
