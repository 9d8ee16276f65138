//! `loadgen`: the venue's load generator (`tradecore loadgen`, the `loadgen` binary, and
//! `tradecore._core.run_loadgen` underneath the Python command).
//!
//! ## What it owns
//!
//! * [`settings`]: the options ([`Options`], shared by the binary and the Python binding) and
//!   the validated run ([`Settings`]), checked against the venue config when one is given.
//! * `orders`: each session's model of its own resting orders and the seeded order mix
//!   (passive adds near the touch, cancels and modifies of live orders, aggressive IOC
//!   orders that cross); client order ids encode session, slot and generation, so reports
//!   route back without a lookup table and an id is never reused.
//! * `driver`: the connections (connect, Logon) and the single-threaded `mio` event loop
//!   that keeps an open-loop schedule (or a closed-loop window), batches every session's
//!   frames into one `write` per turn, reads all sessions' reports, matches each command with
//!   its first report, and records wire-to-wire latency in HdrHistograms.
//! * `report`: the [`Report`] (counters, percentiles, checks, summary text, JSON document).
//!
//! ## Measurement
//!
//! Latency is the time from a command's **intended** send time (open loop; the actual send
//! in the closed loop) to the arrival of its first report (ACCEPTED/REJECTED for a new order,
//! CANCELLED/REJECTED for a cancel, REPLACED/REJECTED for a modify), taken right after the
//! `read` that delivered it. Measuring from the intended time means a venue that stalls is
//! charged for every command queued behind the stall, not only the one that waited
//! (coordinated omission). The schedule lag histogram shows how well the generator itself
//! kept the schedule.
//!
//! ## Checks
//!
//! A run is "ok" ([`Report::ok`]) when every command got its first report, every session's
//! report sequence numbers are contiguous, no answer-shaped report was unmatched, no frame
//! failed to decode, no reject had a reason outside the allowed list (`UNKNOWN_ORDER` by
//! default: a cancel racing a fill), no session dropped, and maker and taker fills balance.
//!
//! ## Cost
//!
//! Per command: one draw of the mix (a few random numbers), one encode into the session's
//! buffer, one FIFO push; per report: one decode, one FIFO compare, one histogram record.
//! Syscalls are amortised: one `write` per session per turn and one `read` per readable
//! socket. Nothing is allocated per message.

mod driver;
pub mod hiccup;
mod orders;
mod report;
mod rng;
pub mod settings;

use thiserror::Error;

pub use orders::CommandKind;
pub use report::{Counters, Percentiles, Report};
pub use settings::{CliExtras, Defaults, Mode, Options, Settings};

/// Everything that can stop a run from starting or finishing. Problems during the run (a
/// dropped session, a reject) are not errors: they are counted in the [`Report`].
#[derive(Debug, Error)]
pub enum LoadgenError {
    /// A bad option value; `option` is its name (as in `--option`).
    #[error("--{}: {message}", option.replace('_', "-"))]
    Usage {
        /// The option.
        option: String,
        /// What is wrong with its value.
        message: String,
    },
    /// The venue config could not be loaded (the message names the file and field).
    #[error("venue config: {0}")]
    Config(String),
    /// A session could not connect.
    #[error("session {session}: cannot reach the venue at {addr}: {message}")]
    Connect {
        /// Session index.
        session: u32,
        /// The venue address.
        addr: std::net::SocketAddr,
        /// What failed.
        message: String,
    },
    /// A session's logon was refused or answered wrongly.
    #[error("session {session}: logon of account {account} refused: {reason}")]
    Logon {
        /// Session index.
        session: u32,
        /// The account.
        account: u32,
        /// The venue's reason (or what was wrong with its answer).
        reason: String,
    },
    /// A local I/O failure (the report log, the poll).
    #[error("{what}: {message}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        message: String,
    },
}

/// Runs one load against the venue and returns its report. Blocks for about the run's
/// duration plus the drain time (at most `drain_timeout`) plus the logout (at most 2 s).
pub fn run(settings: &Settings) -> Result<Report, LoadgenError> {
    let result = driver::run(settings)?;
    Ok(Report::new(settings, result))
}
