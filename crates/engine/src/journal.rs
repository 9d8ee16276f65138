//! `journal`: being written (issue 3).
