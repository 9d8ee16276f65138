//! # tradecore-engine
//!
//! The machinery that turns the matching core into a venue (issue 3), in pure Rust with no
//! PyO3, so each part can be tested, benchmarked and fuzzed alone:
//!
//! * `ring`: the single-producer single-consumer ring between the gateway, engine and
//!   publisher threads.
//! * `codec`: the binary order-entry and report protocol (`docs/protocol.md`), decoded
//!   without copying.
//! * `journal`: the write-ahead journal of inbound commands and the snapshots
//!   (`docs/journal.md`).
//! * `config`: the venue config file (instruments, accounts, session, journal, feed).
//! * `venue`: the deterministic state machine the engine thread runs (sessions, id maps,
//!   rejects, books, numbered per-account report streams and market data), with its journal
//!   command encoding, snapshots and state hash.
//! * `server`: the venue on the wire: a gateway thread (mio: accept, read, decode), the
//!   engine thread (journal append, then `Venue::apply`), a publisher thread (per-account
//!   report streams over TCP, UDP feeds, retransmission), a snapshot thread and a `/metrics`
//!   responder, joined by the SPSC rings; start-up recovery (snapshot + journal tail) and
//!   offline replay (`server::replay_journal`, what `tradecore replay` runs).
//! * `loadgen`: the load generator behind `tradecore loadgen`.

pub mod codec;
pub mod config;
pub mod journal;
pub mod loadgen;
pub mod ring;
pub mod server;
pub mod venue;
