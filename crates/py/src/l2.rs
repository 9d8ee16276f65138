//! `L2Book`: the core's aggregated book for market data (issue 4).

use pyo3::prelude::*;

/// Registers this module's classes and functions.
pub fn add_to_module(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
