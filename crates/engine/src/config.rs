//! `config`: the venue's configuration file (`tradecore serve --config venue.toml`; the
//! commented example is `config/venue.example.toml`).
//!
//! ## What it owns
//!
//! The typed, validated [`Config`]: listen addresses, instruments, accounts (API keys stored as
//! SHA-256 hashes only), session rules, journal and feed settings. [`Config::load`] and
//! [`Config::from_toml_str`] parse TOML with `serde` (unknown keys are errors, so a misspelt
//! key cannot be silently ignored) and then run [`Config::validate`], which names the failing
//! field in the error (`instrument[1].price_band.hi_ticks: ...`).
//!
//! ## Invariants (after `validate`)
//!
//! * Listen addresses, the feed destination and its interface are loopback unless
//!   `listen.allow_remote = true`; the multicast TTL is 0 unless remote access is allowed.
//! * Instruments: at least one; `symbol_id` >= 1 and unique; symbols unique, 1..=16 ASCII
//!   graphic characters; `tick_size`/`lot_size` positive decimal strings; the price band is
//!   **absolute**, `1 <= lo_ticks <= hi_ticks` (a static band is stateless, so replay cannot
//!   depend on a moving reference price); `1 <= max_order_qty <= u64::MAX / book_capacity`
//!   (so the core never refuses a venue-accepted quantity); `1 <= book_capacity <= 2^32 - 2`.
//! * Accounts: at least one; ids >= 1 (0 means "not logged on") and unique.
//! * Session, journal, feed and pipeline numbers are inside the ranges documented on their
//!   fields (the ring capacity a power of two).
//!
//! ## Cost
//!
//! Parsing and validation run once at start-up; nothing here is on the per-message path.
//! [`Config::engine_fingerprint`] (one SHA-256 over a few bytes per instrument and account)
//! is computed when the venue is built and when a snapshot is restored.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::journal::{FsyncPolicy, JournalConfig};

/// Largest `book_capacity` (the core's arena indexes slots with `u32`, one value reserved).
pub const MAX_BOOK_CAPACITY: u64 = (u32::MAX - 1) as u64;
/// Largest rate limit and burst, in messages: keeps the token bucket (kept in nano-tokens)
/// inside a `u64`.
pub const MAX_RATE: u64 = 1_000_000_000;
/// Longest symbol name.
pub const MAX_SYMBOL_LEN: usize = 16;

/// Everything that can go wrong while loading a config.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not valid TOML, a key of the wrong type, a missing or unknown key. `message` (one line)
    /// gives the line and column and, from the TOML parser, names the key.
    #[error("{origin}: {message}")]
    Parse {
        /// The file, or `<string>`.
        origin: String,
        /// The parser's message.
        message: String,
    },
    /// A value outside its allowed range, or inconsistent with another one.
    #[error("{field}: {message}")]
    Invalid {
        /// The field, as a path: `instrument[0].price_band.lo_ticks`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// A positive decimal number written as a string (`"0.01"`), kept exactly: `units` /
/// 10^`scale`. Used for tick and lot sizes, which only the edges (documentation, the Python
/// client's `Decimal` conversion) read; the engine works in ticks and lots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PositiveDecimal {
    text: String,
    units: u64,
    scale: u32,
}

impl PositiveDecimal {
    /// Parses `[digits][.digits]` (no sign, no exponent, at most 18 fractional digits, value
    /// > 0 and below 2^64 units).
    pub fn parse(s: &str) -> Result<Self, String> {
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, f),
            None => (s, ""),
        };
        let digits_ok = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
        if (int.is_empty() && frac.is_empty())
            || !digits_ok(int)
            || !digits_ok(frac)
            || (s.contains('.') && frac.is_empty())
        {
            return Err(format!(
                "{s:?} is not a plain decimal number such as \"0.01\""
            ));
        }
        if frac.len() > 18 {
            return Err(format!("{s:?} has more than 18 decimal places"));
        }
        let mut units: u64 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            units = units
                .checked_mul(10)
                .and_then(|u| u.checked_add(u64::from(b - b'0')))
                .ok_or_else(|| format!("{s:?} has too many digits"))?;
        }
        if units == 0 {
            return Err(format!("{s:?} must be greater than zero"));
        }
        Ok(PositiveDecimal {
            text: s.to_owned(),
            units,
            scale: frac.len() as u32,
        })
    }

    /// The string as written in the config.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value is `units() / 10^scale()`.
    pub fn units(&self) -> u64 {
        self.units
    }

    /// Number of decimal places.
    pub fn scale(&self) -> u32 {
        self.scale
    }
}

impl fmt::Display for PositiveDecimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for PositiveDecimal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PositiveDecimal::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn hex32<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
    let s = String::deserialize(d)?;
    parse_hex32(&s).ok_or_else(|| {
        serde::de::Error::custom("expected 64 hexadecimal digits (the SHA-256 of the API key)")
    })
}

/// The 32 bytes of a 64-digit hex string (either case), or `None`.
pub fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|v| v as u8);
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

/// Lower-case hex of bytes (for printing hashes).
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// SHA-256 of an API key as the config stores it (of the key's ASCII characters, without the
/// wire's zero padding).
pub fn api_key_sha256(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The venue configuration. Build it with [`Config::load`] or [`Config::from_toml_str`]; a
/// hand-built value must pass [`Config::validate`] (the venue checks it again).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the venue listens.
    #[serde(default)]
    pub listen: ListenConfig,
    /// Session rules.
    #[serde(default)]
    pub session: SessionConfig,
    /// Journal and snapshots.
    pub journal: JournalSettings,
    /// UDP market data.
    #[serde(default)]
    pub feed: FeedConfig,
    /// Threads and rings of the server.
    #[serde(default)]
    pub pipeline: PipelineConfig,
    /// Instruments (`[[instrument]]` tables).
    #[serde(rename = "instrument", default)]
    pub instruments: Vec<InstrumentConfig>,
    /// Accounts (`[[account]]` tables).
    #[serde(rename = "account", default)]
    pub accounts: Vec<AccountConfig>,
}

/// `[listen]`: TCP listen addresses.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ListenConfig {
    /// Order entry (binary protocol). Default `127.0.0.1:7001`. Port 0 picks a free port
    /// (tests; the server reports the bound address).
    pub order_entry: SocketAddr,
    /// HTTP `/metrics`. Default `127.0.0.1:7002`.
    pub metrics: SocketAddr,
    /// Allow non-loopback addresses (listen, feed destination and interface) and a multicast
    /// TTL above 0. Default `false`: the venue is reachable from this host only.
    pub allow_remote: bool,
}

impl Default for ListenConfig {
    fn default() -> Self {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        ListenConfig {
            order_entry: SocketAddr::new(lo, 7001),
            metrics: SocketAddr::new(lo, 7002),
            allow_remote: false,
        }
    }
}

/// `[session]`: per-connection rules.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Token-bucket refill rate: order-entry messages (new, cancel, modify, mass cancel) per
    /// second and session, 1..=10^9. Default 10,000.
    pub rate_limit_per_sec: u64,
    /// Bucket size: messages a session may send at once after being idle, 1..=10^9.
    /// Default 1,000.
    pub rate_limit_burst: u64,
    /// Malformed frames tolerated before the connection is closed, 1..=1000. Default 3.
    pub max_malformed: u32,
    /// Heartbeat interval the venue announces in `LogonAck`, ms, 10..=3,600,000. Default 1,000.
    pub heartbeat_ms: u32,
    /// Close a connection silent for this long, ms, >= `heartbeat_ms`. Default 3,000.
    pub idle_timeout_ms: u32,
    /// Cancel the orders a session entered when it logs out or its connection drops
    /// (reason `DISCONNECT`). Default `true`.
    pub cancel_on_disconnect: bool,
    /// Sessions logged on at once, 1..=65,536; a logon beyond it gets `RATE_LIMITED`.
    /// Default 256.
    pub max_sessions: u32,
    /// Bytes a connection may have waiting to be sent, 4,096..=2^30; a client that reads
    /// slower than the venue writes is disconnected when it would exceed this (the venue never
    /// blocks on one client). Default 4 MiB.
    pub max_send_buffer: u32,
    /// Reports kept per account for retransmission (`RetransmitRequest` on channel 0),
    /// 0..=2^26. Default 100,000.
    pub report_history: u32,
    /// Messages sent at most in reply to one `RetransmitRequest` (more is `PARTIAL`),
    /// 1..=1,000,000. Default 10,000.
    pub max_retransmit: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            rate_limit_per_sec: 10_000,
            rate_limit_burst: 1_000,
            max_malformed: 3,
            heartbeat_ms: 1_000,
            idle_timeout_ms: 3_000,
            cancel_on_disconnect: true,
            max_sessions: 256,
            max_send_buffer: 4 << 20,
            report_history: 100_000,
            max_retransmit: 10_000,
        }
    }
}

/// `journal.fsync`: when journal records are forced to disk.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FsyncMode {
    /// Never explicitly (a killed process still loses nothing; a power loss may).
    None,
    /// Group commit every `batch_records` records or `batch_micros` microseconds.
    Batch,
    /// Every record before its report is sent.
    Always,
}

/// `[journal]`: the write-ahead journal and snapshots.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JournalSettings {
    /// Directory of segments and snapshots (created if missing). [`Config::load`] resolves a
    /// relative path against the config file's directory.
    pub dir: PathBuf,
    /// Segment file size in bytes: a multiple of 8 in [4096, 2^30]. Default 64 MiB.
    #[serde(default = "default_segment_size")]
    pub segment_size: u64,
    /// `none`, `batch` or `always`. Default `batch`.
    #[serde(default = "default_fsync")]
    pub fsync: FsyncMode,
    /// Batch mode: sync after this many records (>= 1). Default 256.
    #[serde(default = "default_batch_records")]
    pub batch_records: u32,
    /// Batch mode: sync when the oldest unsynced record is this old, µs (>= 1). Default 1,000.
    #[serde(default = "default_batch_micros")]
    pub batch_micros: u32,
    /// Take a snapshot every this many commands; 0 = only at shutdown. Default 1,000,000.
    #[serde(default = "default_snapshot_every")]
    pub snapshot_every: u64,
    /// Snapshots kept on disk (>= 1; the older ones are the fallback). Default 3.
    #[serde(default = "default_snapshots_kept")]
    pub snapshots_kept: u32,
}

fn default_segment_size() -> u64 {
    64 << 20
}
fn default_fsync() -> FsyncMode {
    FsyncMode::Batch
}
fn default_batch_records() -> u32 {
    256
}
fn default_batch_micros() -> u32 {
    1_000
}
fn default_snapshot_every() -> u64 {
    1_000_000
}
fn default_snapshots_kept() -> u32 {
    3
}

/// `feed.mode`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FeedMode {
    /// Datagrams to one destination address.
    Unicast,
    /// Datagrams to a multicast group (IPv4), sent from `interface` with `ttl`.
    Multicast,
}

/// `[feed]`: UDP market data and the report drop copy.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct FeedConfig {
    /// `unicast` or `multicast`. Default `unicast`.
    pub mode: FeedMode,
    /// Unicast destination or multicast `group:port`. Default `127.0.0.1:7100`.
    pub address: SocketAddr,
    /// IPv4 address of the interface datagrams leave from. Default `127.0.0.1`.
    pub interface: Ipv4Addr,
    /// Multicast TTL, 0..=255; 0 keeps datagrams on this host. Default 0.
    pub ttl: u8,
    /// Channel id of market data (BookUpdate, Trade), >= 1. Default 1.
    pub market_data_channel: u32,
    /// Channel id of the execution-report drop copy (`FeedReport`), or 0 for none. Default 0.
    pub report_channel: u32,
    /// Messages kept per channel for retransmission over TCP, 0..=2^26. Default 262,144.
    pub history: u32,
    /// A channel with nothing to send for this long sends a heartbeat datagram, ms,
    /// 10..=3,600,000. Default 1,000.
    pub heartbeat_ms: u32,
    /// Send UDP datagrams at all. Default `true`; `false` runs the venue without feeds
    /// (retransmission of channels still works from the history).
    pub enabled: bool,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            mode: FeedMode::Unicast,
            address: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 7100),
            interface: Ipv4Addr::LOCALHOST,
            ttl: 0,
            market_data_channel: 1,
            report_channel: 0,
            history: 1 << 18,
            heartbeat_ms: 1_000,
            enabled: true,
        }
    }
}

/// `pipeline.mode`: which threads run the three stages (gateway -> engine -> publisher).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PipelineMode {
    /// A thread per stage, joined by the two SPSC rings: the most throughput when the
    /// machine has a core for each stage besides its clients.
    #[default]
    Threads,
    /// One thread runs the three stages in turn over the same rings: no hand-off between
    /// threads, so no wake-up per message; for machines with fewer cores than stages (a
    /// two-core box that also runs its clients), where it gives the lowest latency.
    Inline,
}

/// `[pipeline]`: the server's rings (gateway -> engine -> publisher) and its threads.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Slots of each SPSC ring, a power of two in 1,024..=4,194,304. Default 65,536.
    pub ring_capacity: u32,
    /// `threads` (default) or `inline`.
    pub mode: PipelineMode,
    /// Inline pipeline: microseconds the thread keeps polling after its last work before it
    /// blocks in `epoll_wait` (0..=10,000; default 4). Longer catches the next command
    /// without a wake-up, at the price of a busy core.
    pub spin_us: u32,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            ring_capacity: 1 << 16,
            mode: PipelineMode::Threads,
            spin_us: 4,
        }
    }
}

/// An instrument's price band: limit prices (ticks) outside `[lo_ticks, hi_ticks]` are
/// rejected with `PRICE_OUT_OF_BAND`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PriceBand {
    /// Lowest accepted limit price, ticks (>= 1).
    pub lo_ticks: i64,
    /// Highest accepted limit price, ticks (>= `lo_ticks`).
    pub hi_ticks: i64,
}

/// One `[[instrument]]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct InstrumentConfig {
    /// Wire id (>= 1).
    pub symbol_id: u32,
    /// Name, 1..=16 ASCII graphic characters.
    pub symbol: String,
    /// Price of one tick, e.g. `"0.01"` (the edges convert ticks to `Decimal` with it).
    pub tick_size: PositiveDecimal,
    /// Quantity of one lot, e.g. `"0.001"`.
    pub lot_size: PositiveDecimal,
    /// Absolute band of accepted limit prices.
    pub price_band: PriceBand,
    /// Largest order (and modify) quantity, lots.
    pub max_order_qty: u64,
    /// Resting orders the book can hold (memory is taken at start-up, about 57 bytes per
    /// order in the book plus the venue's id maps).
    pub book_capacity: u64,
}

/// One `[[account]]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// Account id (>= 1).
    pub account: u32,
    /// SHA-256 of the API key, 64 hex digits (`printf %s KEY | sha256sum`).
    #[serde(deserialize_with = "hex32")]
    pub api_key_sha256: [u8; 32],
}

impl Config {
    /// Reads, parses and validates a config file; a relative `journal.dir` is taken relative
    /// to the file's directory.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut cfg = Self::parse(&text, &path.display().to_string())?;
        if cfg.journal.dir.is_relative() {
            if let Some(parent) = path.parent() {
                cfg.journal.dir = parent.join(&cfg.journal.dir);
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses and validates TOML text (paths are kept as written).
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let cfg = Self::parse(text, "<string>")?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e: toml::de::Error| {
            // One line: "line L, column C: what" (the parser's own text spans several).
            let message = match e.span() {
                Some(span) => {
                    let before = &text[..span.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                    let src = text.lines().nth(line - 1).unwrap_or("").trim();
                    format!(
                        "line {line}, column {column}: {} (in `{src}`)",
                        e.message().trim_end()
                    )
                }
                None => e.message().trim_end().to_owned(),
            };
            ConfigError::Parse {
                origin: origin.to_owned(),
                message: message.replace('\n', " "),
            }
        })
    }

    /// Checks every rule of the module doc; the error names the first bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let remote = self.listen.allow_remote;
        let local_only = |field: &str, ip: IpAddr| {
            if remote || ip.is_loopback() {
                Ok(())
            } else {
                Err(invalid(
                    field,
                    format!(
                        "{ip} is not a loopback address; set listen.allow_remote = true to \
                         expose the venue"
                    ),
                ))
            }
        };
        local_only("listen.order_entry", self.listen.order_entry.ip())?;
        local_only("listen.metrics", self.listen.metrics.ip())?;
        if self.listen.order_entry == self.listen.metrics && self.listen.metrics.port() != 0 {
            return Err(invalid(
                "listen.metrics",
                "must differ from listen.order_entry",
            ));
        }

        let s = &self.session;
        let range = |field: &str, v: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(invalid(
                    field,
                    format!("{v} is outside the allowed range {lo}..={hi}"),
                ))
            }
        };
        range(
            "session.rate_limit_per_sec",
            s.rate_limit_per_sec,
            1,
            MAX_RATE,
        )?;
        range("session.rate_limit_burst", s.rate_limit_burst, 1, MAX_RATE)?;
        range("session.max_malformed", s.max_malformed.into(), 1, 1000)?;
        range("session.heartbeat_ms", s.heartbeat_ms.into(), 10, 3_600_000)?;
        if s.idle_timeout_ms < s.heartbeat_ms {
            return Err(invalid(
                "session.idle_timeout_ms",
                format!(
                    "{} is shorter than session.heartbeat_ms ({})",
                    s.idle_timeout_ms, s.heartbeat_ms
                ),
            ));
        }
        range("session.max_sessions", s.max_sessions.into(), 1, 65_536)?;
        range(
            "session.max_send_buffer",
            s.max_send_buffer.into(),
            4096,
            1 << 30,
        )?;
        range(
            "session.report_history",
            s.report_history.into(),
            0,
            1 << 26,
        )?;
        range(
            "session.max_retransmit",
            s.max_retransmit.into(),
            1,
            1_000_000,
        )?;
        let p = &self.pipeline;
        if !p.ring_capacity.is_power_of_two() || !(1024..=1 << 22).contains(&p.ring_capacity) {
            return Err(invalid(
                "pipeline.ring_capacity",
                format!(
                    "{} must be a power of two between 1024 and 4194304",
                    p.ring_capacity
                ),
            ));
        }

        range("pipeline.spin_us", p.spin_us.into(), 0, 10_000)?;

        let j = &self.journal;
        if j.dir.as_os_str().is_empty() {
            return Err(invalid("journal.dir", "must not be empty"));
        }
        if !(4096..=1 << 30).contains(&j.segment_size) || j.segment_size % 8 != 0 {
            return Err(invalid(
                "journal.segment_size",
                format!(
                    "{} must be a multiple of 8 between 4096 and 1073741824",
                    j.segment_size
                ),
            ));
        }
        if j.fsync == FsyncMode::Batch {
            if j.batch_records == 0 {
                return Err(invalid("journal.batch_records", "must be at least 1"));
            }
            if j.batch_micros == 0 {
                return Err(invalid("journal.batch_micros", "must be at least 1"));
            }
        }
        if j.snapshots_kept == 0 {
            return Err(invalid("journal.snapshots_kept", "must be at least 1"));
        }

        let f = &self.feed;
        match f.mode {
            FeedMode::Multicast => {
                if !matches!(f.address.ip(), IpAddr::V4(ip) if ip.is_multicast()) {
                    return Err(invalid(
                        "feed.address",
                        format!(
                            "{} is not an IPv4 multicast group (224.0.0.0/4)",
                            f.address.ip()
                        ),
                    ));
                }
                if f.ttl > 0 && !remote {
                    return Err(invalid(
                        "feed.ttl",
                        "must be 0 (host only) unless listen.allow_remote = true",
                    ));
                }
            }
            FeedMode::Unicast => {
                if f.address.ip().is_multicast() {
                    return Err(invalid(
                        "feed.address",
                        "is a multicast group; set feed.mode = \"multicast\"",
                    ));
                }
                local_only("feed.address", f.address.ip())?;
            }
        }
        if f.address.port() == 0 {
            return Err(invalid("feed.address", "port must not be 0"));
        }
        local_only("feed.interface", IpAddr::V4(f.interface))?;
        range("feed.history", f.history.into(), 0, 1 << 26)?;
        range("feed.heartbeat_ms", f.heartbeat_ms.into(), 10, 3_600_000)?;
        if f.market_data_channel == 0 {
            return Err(invalid("feed.market_data_channel", "must be at least 1"));
        }
        if f.report_channel == f.market_data_channel {
            return Err(invalid(
                "feed.report_channel",
                "must differ from feed.market_data_channel (or be 0 for none)",
            ));
        }

        if self.instruments.is_empty() {
            return Err(invalid(
                "instrument",
                "at least one [[instrument]] is required",
            ));
        }
        let mut ids = HashSet::new();
        let mut names = HashSet::new();
        for (i, ins) in self.instruments.iter().enumerate() {
            let field = |name: &str| format!("instrument[{i}].{name}");
            if ins.symbol_id == 0 {
                return Err(invalid(field("symbol_id"), "must be at least 1"));
            }
            if !ids.insert(ins.symbol_id) {
                return Err(invalid(
                    field("symbol_id"),
                    format!("{} is used by an earlier instrument", ins.symbol_id),
                ));
            }
            if ins.symbol.is_empty()
                || ins.symbol.len() > MAX_SYMBOL_LEN
                || !ins.symbol.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(invalid(
                    field("symbol"),
                    format!(
                        "{:?} must be 1 to {MAX_SYMBOL_LEN} ASCII graphic characters",
                        ins.symbol
                    ),
                ));
            }
            if !names.insert(ins.symbol.as_str()) {
                return Err(invalid(
                    field("symbol"),
                    format!("{:?} is used by an earlier instrument", ins.symbol),
                ));
            }
            let band = ins.price_band;
            if band.lo_ticks < 1 {
                return Err(invalid(
                    field("price_band.lo_ticks"),
                    format!(
                        "{} must be at least 1 (prices are positive ticks)",
                        band.lo_ticks
                    ),
                ));
            }
            if band.hi_ticks < band.lo_ticks {
                return Err(invalid(
                    field("price_band.hi_ticks"),
                    format!("{} is below lo_ticks ({})", band.hi_ticks, band.lo_ticks),
                ));
            }
            range(
                &field("book_capacity"),
                ins.book_capacity,
                1,
                MAX_BOOK_CAPACITY,
            )?;
            range(
                &field("max_order_qty"),
                ins.max_order_qty,
                1,
                u64::MAX / ins.book_capacity,
            )?;
        }

        if self.accounts.is_empty() {
            return Err(invalid("account", "at least one [[account]] is required"));
        }
        let mut accounts = HashSet::new();
        for (i, a) in self.accounts.iter().enumerate() {
            if a.account == 0 {
                return Err(invalid(
                    format!("account[{i}].account"),
                    "must be at least 1 (0 means \"not logged on\")",
                ));
            }
            if !accounts.insert(a.account) {
                return Err(invalid(
                    format!("account[{i}].account"),
                    format!("{} is used by an earlier account", a.account),
                ));
            }
        }
        Ok(())
    }

    /// The journal module's settings.
    pub fn journal_config(&self) -> JournalConfig {
        let j = &self.journal;
        JournalConfig {
            segment_size: j.segment_size,
            fsync: match j.fsync {
                FsyncMode::None => FsyncPolicy::None,
                FsyncMode::Batch => FsyncPolicy::Batch {
                    records: j.batch_records,
                    micros: j.batch_micros,
                },
                FsyncMode::Always => FsyncPolicy::Always,
            },
        }
    }

    /// The instrument with this wire id.
    pub fn instrument(&self, symbol_id: u32) -> Option<&InstrumentConfig> {
        self.instruments.iter().find(|i| i.symbol_id == symbol_id)
    }

    /// SHA-256 over everything that changes what the engine answers to a command:
    /// instruments (id, band, max qty, capacity), accounts (id, key hash) and the session
    /// rules the engine applies (rate limit, burst, heartbeat, cancel-on-disconnect, max
    /// sessions), in a canonical order (sorted by id). Snapshots record it, and a snapshot is
    /// restored only under the same fingerprint: replaying a journal under other rules would
    /// not reproduce the reports that were sent. Listen, journal, feed and pipeline settings,
    /// the gateway's and publisher's session limits (malformed frames, idle timeout, send
    /// buffer, histories), symbol names and tick/lot sizes are not part of it and may change across restarts.
    pub fn engine_fingerprint(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"tradecore venue engine config v1\0");
        let s = &self.session;
        h.update(s.rate_limit_per_sec.to_le_bytes());
        h.update(s.rate_limit_burst.to_le_bytes());
        h.update(s.heartbeat_ms.to_le_bytes());
        h.update([u8::from(s.cancel_on_disconnect)]);
        h.update(s.max_sessions.to_le_bytes());
        let mut ins: Vec<&InstrumentConfig> = self.instruments.iter().collect();
        ins.sort_by_key(|i| i.symbol_id);
        h.update((ins.len() as u64).to_le_bytes());
        for i in ins {
            h.update(i.symbol_id.to_le_bytes());
            h.update(i.price_band.lo_ticks.to_le_bytes());
            h.update(i.price_band.hi_ticks.to_le_bytes());
            h.update(i.max_order_qty.to_le_bytes());
            h.update(i.book_capacity.to_le_bytes());
        }
        let mut acc: Vec<&AccountConfig> = self.accounts.iter().collect();
        acc.sort_by_key(|a| a.account);
        h.update((acc.len() as u64).to_le_bytes());
        for a in acc {
            h.update(a.account.to_le_bytes());
            h.update(a.api_key_sha256);
        }
        h.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY1: &str = "demo-key-account-1";

    fn base() -> String {
        format!(
            r#"
[journal]
dir = "j"

[[instrument]]
symbol_id = 1
symbol = "BTC-USD"
tick_size = "0.01"
lot_size = "0.001"
price_band = {{ lo_ticks = 1, hi_ticks = 1000000 }}
max_order_qty = 1000
book_capacity = 1024

[[account]]
account = 1
api_key_sha256 = "{}"
"#,
            to_hex(&api_key_sha256(KEY1))
        )
    }

    fn err_of(text: &str) -> String {
        match Config::from_toml_str(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn minimal_config_takes_defaults() {
        let c = Config::from_toml_str(&base()).unwrap();
        assert_eq!(c.listen, ListenConfig::default());
        assert_eq!(c.session, SessionConfig::default());
        assert_eq!(c.journal.fsync, FsyncMode::Batch);
        assert_eq!(c.feed, FeedConfig::default());
        assert_eq!(c.pipeline, PipelineConfig::default());
        assert_eq!(c.pipeline.mode, PipelineMode::Threads);
        let inline =
            Config::from_toml_str(&format!("{}\n[pipeline]\nmode = \"inline\"\n", base())).unwrap();
        assert_eq!(inline.pipeline.mode, PipelineMode::Inline);
        let i = c.instrument(1).unwrap();
        assert_eq!((i.tick_size.units(), i.tick_size.scale()), (1, 2));
        assert_eq!(i.lot_size.as_str(), "0.001");
        assert_eq!(c.accounts[0].api_key_sha256, api_key_sha256(KEY1));
        assert_eq!(
            c.journal_config().fsync,
            FsyncPolicy::Batch {
                records: 256,
                micros: 1000
            }
        );
        assert!(c.journal_config().validate().is_ok());
    }

    #[test]
    fn known_sha256() {
        // FIPS 180-2 test vector.
        assert_eq!(
            to_hex(&api_key_sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            parse_hex32("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"),
            Some(api_key_sha256("abc"))
        );
        assert_eq!(parse_hex32("abc"), None);
        assert_eq!(parse_hex32(&"g".repeat(64)), None);
    }

    #[test]
    fn decimals() {
        for good in ["1", "0.01", "10.5", ".5", "0.000000000000000001"] {
            assert!(PositiveDecimal::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "0",
            "0.00",
            "-1",
            "1e-3",
            "1.",
            "1.2.3",
            " 1",
            "0.0000000000000000001",
        ] {
            assert!(PositiveDecimal::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn errors_name_the_field() {
        let cases: Vec<(String, &str)> = vec![
            (
                base().replace("lo_ticks = 1,", "lo_ticks = 0,"),
                "instrument[0].price_band.lo_ticks",
            ),
            (
                base().replace("hi_ticks = 1000000", "hi_ticks = -5"),
                "instrument[0].price_band.hi_ticks",
            ),
            (
                base().replace("max_order_qty = 1000", "max_order_qty = 0"),
                "instrument[0].max_order_qty",
            ),
            (
                base().replace("max_order_qty = 1000", "max_order_qty = 18014398509481984"),
                "instrument[0].max_order_qty",
            ),
            (
                base().replace("book_capacity = 1024", "book_capacity = 0"),
                "instrument[0].book_capacity",
            ),
            (
                base().replace("symbol_id = 1", "symbol_id = 0"),
                "instrument[0].symbol_id",
            ),
            (
                base().replace("\"BTC-USD\"", "\"BTC USD\""),
                "instrument[0].symbol",
            ),
            (
                base().replace("account = 1", "account = 0"),
                "account[0].account",
            ),
            (
                format!("{}\n[session]\nrate_limit_per_sec = 0\n", base()),
                "session.rate_limit_per_sec",
            ),
            (
                format!(
                    "{}\n[session]\nheartbeat_ms = 5000\nidle_timeout_ms = 100\n",
                    base()
                ),
                "session.idle_timeout_ms",
            ),
            (
                format!("{}\n[listen]\norder_entry = \"0.0.0.0:7001\"\n", base()),
                "listen.order_entry",
            ),
            (
                format!(
                    "{}\n[feed]\nmode = \"multicast\"\naddress = \"127.0.0.1:7100\"\n",
                    base()
                ),
                "feed.address",
            ),
            (
                format!(
                    "{}\n[feed]\nmode = \"multicast\"\naddress = \"239.1.2.3:7100\"\nttl = 1\n",
                    base()
                ),
                "feed.ttl",
            ),
            (
                format!("{}\n[feed]\nreport_channel = 1\n", base()),
                "feed.report_channel",
            ),
            (
                format!("{}\n[feed]\nheartbeat_ms = 1\n", base()),
                "feed.heartbeat_ms",
            ),
            (
                format!("{}\n[session]\nmax_send_buffer = 100\n", base()),
                "session.max_send_buffer",
            ),
            (
                format!("{}\n[session]\nmax_retransmit = 0\n", base()),
                "session.max_retransmit",
            ),
            (
                format!("{}\n[pipeline]\nring_capacity = 3000\n", base()),
                "pipeline.ring_capacity",
            ),
            (
                format!("{}\n[pipeline]\nspin_us = 10001\n", base()),
                "pipeline.spin_us",
            ),
            (
                base().replace("dir = \"j\"", "dir = \"j\"\nsegment_size = 5001"),
                "journal.segment_size",
            ),
            (
                base().replace(
                    "dir = \"j\"",
                    "dir = \"j\"\nfsync = \"batch\"\nbatch_records = 0",
                ),
                "journal.batch_records",
            ),
        ];
        for (text, field) in cases {
            let e = err_of(&text);
            assert!(e.starts_with(&format!("{field}: ")), "{field}: got {e}");
        }
        // A second instrument with the same id / symbol.
        let second = r#"[[instrument]]
symbol_id = 1
symbol = "X"
tick_size = "1"
lot_size = "1"
price_band = { lo_ticks = 1, hi_ticks = 2 }
max_order_qty = 1
book_capacity = 1

[[account]]"#;
        let dup = base().replace("[[account]]", second);
        assert!(err_of(&dup).starts_with("instrument[1].symbol_id: "));
    }

    #[test]
    fn parse_errors_name_the_key() {
        // Unknown key (a typo), bad decimal, bad hash, wrong type, missing table.
        let typo = base().replace("max_order_qty", "max_order_qtty");
        assert!(
            err_of(&typo).contains("max_order_qtty"),
            "{}",
            err_of(&typo)
        );
        let e = err_of(&base().replace("\"0.01\"", "\"1e-2\""));
        assert!(
            e.contains("tick_size") && e.contains("plain decimal"),
            "{e}"
        );
        let e = err_of(&base().replace("api_key_sha256 = \"", "api_key_sha256 = \"zz"));
        assert!(
            e.contains("api_key_sha256") && e.contains("64 hexadecimal"),
            "{e}"
        );
        let e = err_of(&base().replace("book_capacity = 1024", "book_capacity = \"big\""));
        assert!(e.contains("book_capacity"), "{e}");
        let e = err_of(&base().replace("[journal]\ndir = \"j\"", ""));
        assert!(e.contains("journal"), "{e}");
        let e = err_of(&base().replace("dir = \"j\"", "dir = \"j\"\nfsync = \"sometimes\""));
        assert!(e.contains("fsync") && e.contains("sometimes"), "{e}");
        let e = err_of(&format!("{}\n[pipeline]\nmode = \"fibers\"\n", base()));
        assert!(e.contains("mode") && e.contains("fibers"), "{e}");
    }

    #[test]
    fn load_resolves_journal_dir_and_reports_io_errors() {
        let dir = std::env::temp_dir().join(format!("tc-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("venue.toml");
        std::fs::write(&path, base()).unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(c.journal.dir, dir.join("j"));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(Config::load(&path), Err(ConfigError::Io { .. })));
    }

    #[test]
    fn fingerprint_covers_engine_rules_only() {
        let a = Config::from_toml_str(&base()).unwrap();
        let mut b = a.clone();
        b.listen.order_entry.set_port(9999);
        b.journal.snapshot_every = 5;
        b.instruments[0].symbol = "OTHER".into();
        assert_eq!(a.engine_fingerprint(), b.engine_fingerprint());
        let mut c = a.clone();
        c.instruments[0].price_band.hi_ticks += 1;
        assert_ne!(a.engine_fingerprint(), c.engine_fingerprint());
        let mut d = a.clone();
        d.session.cancel_on_disconnect = false;
        assert_ne!(a.engine_fingerprint(), d.engine_fingerprint());
        let mut e = a.clone();
        e.accounts[0].api_key_sha256[0] ^= 1;
        assert_ne!(a.engine_fingerprint(), e.engine_fingerprint());
    }
}
