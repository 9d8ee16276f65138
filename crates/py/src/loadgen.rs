//! The venue load generator entry point (issue 3).

use pyo3::prelude::*;

/// Registers this module's classes and functions.
pub fn add_to_module(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
