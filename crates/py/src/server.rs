//! The venue server (`VenueServer`) and offline journal replay (`replay_journal`) for Python.
//!
//! Thin: every rule lives in `tradecore_engine::server`. The server's threads are Rust
//! threads that never touch the GIL; Python calls that wait (start-up recovery, stop, replay)
//! release the GIL while they run, and a Rust panic inside them becomes
//! `tradecore.errors.InternalError`.
//!
//! Errors: a bad or unreadable config is `tradecore.errors.ConfigError` (its message names the
//! file and field); a listen address in use or another OS failure is `OSError`; a journal
//! that cannot be recovered or replayed is `RuntimeError` with the reason.
//!
//! Cost: nothing per message (Python is not on the message path); `stats()` copies a few
//! dozen counters into a dict.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::exceptions::{PyOSError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};
use tradecore_engine::config::{Config, ConfigError};
use tradecore_engine::server::{self, ReplayOptions, Server, ServerError, StopSummary};

use crate::errors;

static CONFIG_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn config_error(py: Python<'_>, msg: String) -> PyErr {
    match CONFIG_ERROR.import(py, "tradecore.errors", "ConfigError") {
        Ok(ty) => PyErr::from_type(ty.clone(), msg),
        Err(e) => PyRuntimeError::new_err(format!("{msg} (and tradecore.errors.ConfigError: {e})")),
    }
}

fn to_py(py: Python<'_>, e: ServerError) -> PyErr {
    let msg = e.to_string();
    match e {
        ServerError::Config(_) => config_error(py, msg),
        ServerError::Io { .. } => PyOSError::new_err(msg),
        _ => PyRuntimeError::new_err(msg),
    }
}

/// Runs `f` without the GIL; a panic becomes `InternalError`.
fn run<T: Send>(py: Python<'_>, f: impl FnOnce() -> Result<T, ServerError> + Send) -> PyResult<T> {
    match py.detach(|| catch_unwind(AssertUnwindSafe(f))) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(to_py(py, e)),
        Err(payload) => Err(errors::from_panic(py, payload.as_ref())),
    }
}

fn summary_dict<'py>(py: Python<'py>, s: &StopSummary) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("state_hash", &s.state_hash)?;
    d.set_item("last_seq", s.last_seq)?;
    d.set_item(
        "snapshot",
        s.snapshot.as_ref().map(|p| p.display().to_string()),
    )?;
    d.set_item("live_orders", s.live_orders)?;
    d.set_item("error", s.error.clone())?;
    d.set_item("elapsed", s.elapsed.as_secs_f64())?;
    Ok(d)
}

/// A running venue server (`tradecore serve` runs one). Started by the constructor, stopped by
/// `stop()` (or at exit of a `with` block).
#[pyclass(module = "tradecore._core", name = "VenueServer")]
pub struct VenueServer {
    inner: Mutex<Option<Server>>,
    order_entry: String,
    metrics: String,
    feed: Option<String>,
    journal: String,
    snapshot_seq: Option<u64>,
    replayed: u64,
    damage: Option<String>,
    rejected_snapshots: Vec<String>,
}

impl VenueServer {
    fn with<T>(&self, f: impl FnOnce(&Server) -> T) -> PyResult<T> {
        let g = self
            .inner
            .lock()
            .map_err(|_| PyRuntimeError::new_err("VenueServer lock poisoned"))?;
        match g.as_ref() {
            Some(s) => Ok(f(s)),
            None => Err(PyRuntimeError::new_err("the venue server is stopped")),
        }
    }
}

#[pymethods]
impl VenueServer {
    /// Loads the config file, recovers the venue from its journal and starts serving.
    #[new]
    #[pyo3(signature = (config, *, log = true))]
    fn new(py: Python<'_>, config: PathBuf, log: bool) -> PyResult<Self> {
        let server = run(py, || Server::start_from_path(&config, log))?;
        let rec = server.recovery();
        Ok(VenueServer {
            order_entry: server.order_entry_addr().to_string(),
            metrics: server.metrics_addr().to_string(),
            feed: server.feed_addr().map(|a| a.to_string()),
            journal: server.journal_dir().display().to_string(),
            snapshot_seq: rec.snapshot.as_ref().map(|s| s.0),
            replayed: rec.replayed,
            damage: rec.damage.clone(),
            rejected_snapshots: rec.rejected_snapshots.clone(),
            inner: Mutex::new(Some(server)),
        })
    }

    /// The bound order-entry address, "host:port".
    #[getter]
    fn order_entry(&self) -> String {
        self.order_entry.clone()
    }

    /// The bound metrics address, "host:port" (`GET /metrics`).
    #[getter]
    fn metrics(&self) -> String {
        self.metrics.clone()
    }

    /// Where feed datagrams go, "host:port", or None when feeds are off.
    #[getter]
    fn feed(&self) -> Option<String> {
        self.feed.clone()
    }

    /// The journal directory.
    #[getter]
    fn journal_dir(&self) -> String {
        self.journal.clone()
    }

    /// Whether the server is running (not stopped, not failed).
    #[getter]
    fn running(&self) -> bool {
        self.with(|s| !s.failed()).unwrap_or(false)
    }

    /// What start-up recovery found: snapshot_seq, replayed, damage, rejected_snapshots.
    fn recovery<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("snapshot_seq", self.snapshot_seq)?;
        d.set_item("replayed", self.replayed)?;
        d.set_item("damage", self.damage.clone())?;
        d.set_item("rejected_snapshots", self.rejected_snapshots.clone())?;
        Ok(d)
    }

    /// Every counter of the server (commands by type, rejects by reason, journal, feeds,
    /// sessions, ring occupancy, engine latency quantiles), a few ms stale.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let values = self.with(Server::stats)?;
        let d = PyDict::new(py);
        for (k, v) in values {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// The Prometheus text of `/metrics`.
    fn metrics_text(&self) -> PyResult<String> {
        self.with(Server::metrics_text)
    }

    /// Graceful stop: stop accepting, drain, final snapshot. Returns a dict with
    /// `state_hash`, `last_seq`, `snapshot`, `live_orders`, `error`, `elapsed`.
    fn stop<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let server = self
            .inner
            .lock()
            .map_err(|_| PyRuntimeError::new_err("VenueServer lock poisoned"))?
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("the venue server is already stopped"))?;
        let summary = run(py, move || server.stop())?;
        summary_dict(py, &summary)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<Bound<'_, PyAny>>,
        _exc: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let running = self.inner.lock().map(|g| g.is_some()).unwrap_or(false);
        if running {
            self.stop(py)?;
        }
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "VenueServer(order_entry={:?}, metrics={:?}, journal={:?})",
            self.order_entry, self.metrics, self.journal
        )
    }
}

/// Replays a journal directory read-only and returns what it found: `records`, `elapsed`,
/// `records_per_sec`, `state_hash`, `snapshot_seq`, `snapshot`, `last_seq`, `damage`,
/// `rejected_snapshots`, `reports_written`, `live_orders`, `next_report_seq` (account -> the
/// number its next report would carry). Without `config`, the copy the server keeps in the
/// directory (`venue.toml`) is used.
#[pyfunction]
#[pyo3(signature = (journal, config = None, *, from_snapshot = true, reports = None))]
fn replay_journal<'py>(
    py: Python<'py>,
    journal: PathBuf,
    config: Option<PathBuf>,
    from_snapshot: bool,
    reports: Option<PathBuf>,
) -> PyResult<Bound<'py, PyDict>> {
    let cfg_path = config.unwrap_or_else(|| journal.join("venue.toml"));
    if !cfg_path.is_file() {
        return Err(config_error(
            py,
            format!(
                "{}: no such config file (pass the config the journal was written with)",
                cfg_path.display()
            ),
        ));
    }
    let cfg = Config::load(&cfg_path).map_err(|e: ConfigError| config_error(py, e.to_string()))?;
    let opts = ReplayOptions {
        from_snapshot,
        reports,
    };
    let s = run(py, || server::replay_journal(&journal, &cfg, &opts))?;
    let d = PyDict::new(py);
    let secs = s.elapsed.as_secs_f64();
    d.set_item("records", s.records)?;
    d.set_item("elapsed", secs)?;
    d.set_item(
        "records_per_sec",
        if secs > 0.0 {
            s.records as f64 / secs
        } else {
            0.0
        },
    )?;
    d.set_item("state_hash", &s.state_hash)?;
    d.set_item("snapshot_seq", s.snapshot.as_ref().map(|x| x.0))?;
    d.set_item(
        "snapshot",
        s.snapshot.as_ref().map(|x| x.1.display().to_string()),
    )?;
    d.set_item("last_seq", s.last_seq)?;
    d.set_item("damage", s.damage.clone())?;
    d.set_item("rejected_snapshots", s.rejected_snapshots.clone())?;
    d.set_item("reports_written", s.reports_written)?;
    d.set_item("live_orders", s.live_orders)?;
    let next = PyDict::new(py);
    for (account, seq) in &s.next_report_seq {
        next.set_item(account, seq)?;
    }
    d.set_item("next_report_seq", next)?;
    Ok(d)
}

/// Registers this module's classes and functions.
pub fn add_to_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<VenueServer>()?;
    m.add_function(wrap_pyfunction!(replay_journal, m)?)?;
    Ok(())
}
