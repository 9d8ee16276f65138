//! `ring`: being written (issue 3).
