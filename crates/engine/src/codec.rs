//! `codec`: being written (issue 3).
