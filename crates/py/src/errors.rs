//! Error mapping: the exception classes of `tradecore.errors` (defined in Python, looked up once
//! and cached) and the panic guard that turns a caught Rust panic into `InternalError`.
//!
//! Invariant: if `tradecore.errors` cannot be imported (a broken install), the error still
//! surfaces, as a plain `RuntimeError` whose message says so; nothing here panics.
//!
//! Cost: one cached lookup per raised error; `guard` costs nothing unless a panic unwinds.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

static INTERNAL_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static INVARIANT_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn make(py: Python<'_>, cell: &PyOnceLock<Py<PyType>>, class: &str, msg: String) -> PyErr {
    match cell.import(py, "tradecore.errors", class) {
        Ok(ty) => PyErr::from_type(ty.clone(), msg),
        Err(e) => PyRuntimeError::new_err(format!(
            "{msg} (and tradecore.errors.{class} could not be loaded: {e})"
        )),
    }
}

/// `tradecore.errors.InternalError(msg)`: a bug in tradecore, never the caller's fault.
pub fn internal(py: Python<'_>, msg: impl Into<String>) -> PyErr {
    make(py, &INTERNAL_ERROR, "InternalError", msg.into())
}

/// `tradecore.errors.InvariantError(msg)`: a structural invariant of the book is broken.
pub fn invariant(py: Python<'_>, msg: impl Into<String>) -> PyErr {
    make(py, &INVARIANT_ERROR, "InvariantError", msg.into())
}

/// The message carried by a panic payload (`panic!` with a literal or a formatted string).
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_owned()
    }
}

/// `InternalError` for a caught panic.
pub fn from_panic(py: Python<'_>, payload: &(dyn Any + Send)) -> PyErr {
    internal(
        py,
        format!(
            "internal error in the tradecore core (a Rust panic was caught): {}",
            panic_message(payload)
        ),
    )
}

/// Run `f`; a panic inside becomes `InternalError` instead of unwinding into Python.
pub fn guard<T>(py: Python<'_>, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => Err(from_panic(py, payload.as_ref())),
    }
}

/// Test hook: panics inside [`guard`], to prove that a Rust panic reaches Python as
/// `tradecore.errors.InternalError` and not as `PanicException`.
#[pyfunction]
pub fn _panic_for_tests(py: Python<'_>, message: &str) -> PyResult<()> {
    guard(py, || panic!("{message}"))
}
