//! The venue load generator entry point (issue 3): `run_loadgen` runs
//! `tradecore_engine::loadgen` with the GIL released and returns a `LoadgenResult` (summary
//! text, JSON document, checks); `loadgen_defaults` gives the defaults for the CLI's help;
//! `measure_hiccups` measures the machine's own stalls (the latency floor under any run).
//!
//! Invariants: option errors become `tradecore.errors.UsageError` / `ConfigError` with the
//! option's name in the message; a venue that cannot be reached or refuses the logon is a
//! `ConnectionError`; a local I/O failure an `OSError`; a Rust panic `InternalError`. Problems
//! during the run are not exceptions: they are in the result's counters and checks.
//!
//! Cost: the run itself (seconds); the conversions around it are negligible.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use pyo3::exceptions::{PyConnectionError, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};
use tradecore_engine::loadgen::{self, hiccup, Defaults, LoadgenError, Options};

use crate::errors;

static USAGE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static CONFIG_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn typed(py: Python<'_>, cell: &PyOnceLock<Py<PyType>>, class: &str, msg: String) -> PyErr {
    match cell.import(py, "tradecore.errors", class) {
        Ok(ty) => PyErr::from_type(ty.clone(), msg),
        Err(_) => PyValueError::new_err(msg),
    }
}

fn to_py(py: Python<'_>, e: LoadgenError) -> PyErr {
    let msg = e.to_string();
    match e {
        LoadgenError::Usage { .. } => typed(py, &USAGE_ERROR, "UsageError", msg),
        LoadgenError::Config(_) => typed(py, &CONFIG_ERROR, "ConfigError", msg),
        LoadgenError::Connect { .. } | LoadgenError::Logon { .. } => {
            PyConnectionError::new_err(msg)
        }
        LoadgenError::Io { .. } => PyOSError::new_err(msg),
    }
}

/// The outcome of one load-generator run.
#[pyclass(frozen, module = "tradecore._core", name = "LoadgenResult")]
pub struct LoadgenResult {
    json: String,
    summary: String,
    failed: Vec<String>,
}

#[pymethods]
impl LoadgenResult {
    /// The JSON document (settings, throughput, counts, latency percentiles and curve, checks,
    /// machine).
    #[getter]
    fn json(&self) -> &str {
        &self.json
    }

    /// The human summary, several lines.
    #[getter]
    fn summary(&self) -> &str {
        &self.summary
    }

    /// True when every check passed.
    #[getter]
    fn ok(&self) -> bool {
        self.failed.is_empty()
    }

    /// The names (with counts) of the checks that failed.
    #[getter]
    fn failed_checks(&self) -> Vec<String> {
        self.failed.clone()
    }

    fn __repr__(&self) -> String {
        if self.failed.is_empty() {
            "LoadgenResult(ok)".to_owned()
        } else {
            format!("LoadgenResult(failed: {})", self.failed.join(", "))
        }
    }
}

/// Runs the load generator (see `tradecore loadgen --help`) with the GIL released.
#[pyfunction]
#[pyo3(signature = (
    *, config=None, connect=None, accounts=Vec::new(), keys_file=None, sessions=None,
    rate=None, window=None, duration=None, warmup=None, mix=None, seed=None,
    symbols=Vec::new(), arrivals=None, wait=None, depth=None, cross=None, max_qty=None,
    max_live=None, max_inflight=None, heartbeat_ms=None, connect_timeout=None,
    drain_timeout=None, report_log=None, allow_rejects=Vec::new()
))]
#[allow(
    clippy::too_many_arguments,
    reason = "one keyword-only argument per CLI option, mirrored from loadgen::Options"
)]
fn run_loadgen(
    py: Python<'_>,
    config: Option<PathBuf>,
    connect: Option<String>,
    accounts: Vec<String>,
    keys_file: Option<PathBuf>,
    sessions: Option<u32>,
    rate: Option<String>,
    window: Option<u32>,
    duration: Option<f64>,
    warmup: Option<f64>,
    mix: Option<String>,
    seed: Option<u64>,
    symbols: Vec<String>,
    arrivals: Option<String>,
    wait: Option<String>,
    depth: Option<u32>,
    cross: Option<u32>,
    max_qty: Option<u64>,
    max_live: Option<u32>,
    max_inflight: Option<u32>,
    heartbeat_ms: Option<u32>,
    connect_timeout: Option<f64>,
    drain_timeout: Option<f64>,
    report_log: Option<PathBuf>,
    allow_rejects: Vec<String>,
) -> PyResult<LoadgenResult> {
    let options = Options {
        config,
        connect,
        accounts,
        keys_file,
        sessions,
        rate,
        window,
        duration,
        warmup,
        mix,
        seed,
        symbols,
        arrivals,
        wait,
        depth,
        cross,
        max_qty,
        max_live,
        max_inflight,
        heartbeat_ms,
        connect_timeout,
        drain_timeout,
        report_log,
        allow_rejects,
    };
    let settings = errors::guard(py, || options.resolve().map_err(|e| to_py(py, e)))?;
    let outcome = py.detach(|| catch_unwind(AssertUnwindSafe(|| loadgen::run(&settings))));
    match outcome {
        Err(payload) => Err(errors::from_panic(py, payload.as_ref())),
        Ok(Err(e)) => Err(to_py(py, e)),
        Ok(Ok(report)) => Ok(LoadgenResult {
            json: report.to_json(),
            summary: report.summary(),
            failed: report.failed_checks(),
        }),
    }
}

/// Spins `threads` threads on the clock for `seconds` (GIL released) and returns the machine's
/// stalls as `(summary text, JSON document)`; see `tradecore_engine::loadgen::hiccup`.
#[pyfunction]
#[pyo3(signature = (*, threads=2, seconds=10.0))]
fn measure_hiccups(py: Python<'_>, threads: usize, seconds: f64) -> PyResult<(String, String)> {
    if !(1..=256).contains(&threads) {
        return Err(PyValueError::new_err(format!(
            "threads must be 1..=256, got {threads}"
        )));
    }
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= 3600.0) {
        return Err(PyValueError::new_err(format!(
            "seconds must be > 0 and <= 3600, got {seconds}"
        )));
    }
    let duration = std::time::Duration::from_secs_f64(seconds);
    let outcome =
        py.detach(|| catch_unwind(AssertUnwindSafe(|| hiccup::measure(threads, duration))));
    match outcome {
        Err(payload) => Err(errors::from_panic(py, payload.as_ref())),
        Ok(h) => Ok((h.summary(), h.to_json())),
    }
}

/// The defaults of `run_loadgen`'s options, as text, by option name.
#[pyfunction]
fn loadgen_defaults(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in Defaults::table() {
        d.set_item(k, v)?;
    }
    Ok(d)
}

/// Registers this module's classes and functions.
pub fn add_to_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<LoadgenResult>()?;
    m.add_function(wrap_pyfunction!(run_loadgen, m)?)?;
    m.add_function(wrap_pyfunction!(loadgen_defaults, m)?)?;
    m.add_function(wrap_pyfunction!(measure_hiccups, m)?)?;
    Ok(())
}
