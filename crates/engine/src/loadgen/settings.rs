//! `loadgen::settings`: what a load-generator run does, in two forms.
//!
//! * [`Options`]: the raw options as the user gave them (strings and numbers, `None` = the
//!   default). The Rust binary fills it from its command line ([`Options::from_args`]), the
//!   Python binding from keyword arguments, so both front ends share one set of defaults
//!   ([`Options::DEFAULTS`]) and one validation.
//! * [`Settings`]: the validated run, made by [`Options::resolve`]. It reads the venue config
//!   when one is given (order-entry address, instruments with their bands and maximum
//!   quantities, configured accounts) and checks every value against it, so a run cannot start
//!   with prices outside a band or an account the venue does not know. Every error names the
//!   option and says what was wrong.
//!
//! Nothing here runs during the load; parsing cost is irrelevant.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tradecore_book::Reason;

use super::LoadgenError;
use crate::codec::ApiKey;
use crate::config::Config;

/// How orders are offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Open loop: `rate` commands per second in total, on a schedule fixed in advance that is
    /// kept whatever the venue does; latency is measured from each command's intended send
    /// time (coordinated-omission correction).
    Open {
        /// Commands per second, all sessions together.
        rate: u64,
    },
    /// Closed loop (saturation): each session keeps `window` commands awaiting their first
    /// report and sends a new one as soon as one is answered; latency is measured from the
    /// actual send.
    Closed {
        /// Commands in flight per session.
        window: u32,
    },
}

/// Spacing of the open-loop schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrivals {
    /// Exactly `1 / rate` apart.
    Uniform,
    /// Exponential gaps of mean `1 / rate` (a Poisson process), from the run's seed.
    Poisson,
}

/// What the event loop does when it has nothing to do before its next deadline (less than a
/// millisecond away; longer waits always block in `epoll_wait`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitMode {
    /// Poll without blocking and give the CPU to any runnable thread (`sched_yield`).
    Yield,
    /// Poll without blocking, never yield (exact timing, burns a core).
    Spin,
    /// Sleep until the next deadline (at least the kernel's timer slack, typically 50 us
    /// and more on a virtual machine): little CPU, coarser timing. Sends are batched per
    /// wake-up, and a report that arrives during a sleep is timed at the wake-up, so the
    /// measured latency includes up to one oversleep.
    Sleep,
}

/// Proportions of the order mix (relative weights, not necessarily summing to 100).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mix {
    /// Passive limit orders a few ticks behind the touch (GTC, rest).
    pub add: u32,
    /// Cancels of the session's own resting orders.
    pub cancel: u32,
    /// Modifies (cancel/replace) of the session's own resting orders.
    pub modify: u32,
    /// IOC limit orders that cross the touch and trade.
    pub aggressive: u32,
}

impl Mix {
    /// Parses `add=45,cancel=35,modify=10,aggressive=10` (any order; missing names are 0).
    pub fn parse(s: &str) -> Result<Mix, String> {
        let mut m = Mix {
            add: 0,
            cancel: 0,
            modify: 0,
            aggressive: 0,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not NAME=WEIGHT"))?;
            let w: u32 = value
                .trim()
                .parse()
                .map_err(|_| format!("weight {value:?} of {name:?} is not a whole number"))?;
            if w > 1_000_000 {
                return Err(format!("weight {w} of {name:?} is above 1000000"));
            }
            match name.trim() {
                "add" => m.add = w,
                "cancel" => m.cancel = w,
                "modify" => m.modify = w,
                "aggressive" => m.aggressive = w,
                other => {
                    return Err(format!(
                        "unknown kind {other:?} (expected add, cancel, modify, aggressive)"
                    ))
                }
            }
        }
        if m.add == 0 && m.aggressive == 0 {
            return Err(
                "needs a positive weight for add or aggressive (cancels and modifies \
                        need orders to act on)"
                    .to_owned(),
            );
        }
        Ok(m)
    }

    /// Sum of the weights.
    pub fn total(&self) -> u32 {
        self.add + self.cancel + self.modify + self.aggressive
    }
}

/// One account the sessions log on with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    /// Account id.
    pub account: u32,
    /// Its API key.
    pub key: ApiKey,
}

impl Login {
    /// Parses `ACCOUNT:KEY`.
    pub fn parse(s: &str) -> Result<Login, String> {
        let (a, k) = s
            .split_once(':')
            .ok_or_else(|| "expected ACCOUNT:KEY".to_owned())?;
        let account: u32 = a
            .trim()
            .parse()
            .map_err(|_| format!("account {a:?} is not a whole number"))?;
        if account == 0 {
            return Err("account 0 does not exist (ids start at 1)".to_owned());
        }
        let key = ApiKey::new(k)
            .map_err(|_| "the key must be 1 to 32 ASCII graphic characters".to_owned())?;
        if k.is_empty() {
            return Err("the key is empty".to_owned());
        }
        Ok(Login { account, key })
    }
}

/// One instrument the generator trades.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SymbolSpec {
    /// Venue instrument id.
    pub symbol_id: u32,
    /// Reference price (ticks): bids rest below it, asks above it, aggressive orders cross it.
    pub mid: i64,
    /// Lowest price the venue accepts (ticks; 1 when unknown).
    pub lo: i64,
    /// Highest price the venue accepts (ticks; `i64::MAX` when unknown).
    pub hi: i64,
}

/// A validated run (see [`Options::resolve`]).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Venue order-entry address (loopback).
    pub connect: SocketAddr,
    /// Accounts, used round robin: session `i` logs on with `logins[i % logins.len()]`.
    pub logins: Vec<Login>,
    /// Number of TCP sessions.
    pub sessions: u32,
    /// Instruments, chosen uniformly per order.
    pub symbols: Vec<SymbolSpec>,
    /// Open or closed loop.
    pub mode: Mode,
    /// Open-loop spacing.
    pub arrivals: Arrivals,
    /// How long commands are sent.
    pub duration: Duration,
    /// Commands intended before this offset are sent and checked but left out of the
    /// latency histograms and the measured rates.
    pub warmup: Duration,
    /// Order mix.
    pub mix: Mix,
    /// Seed of the order mix (and of Poisson arrivals).
    pub seed: u64,
    /// Passive orders rest 1 to `depth` ticks away from the mid.
    pub depth: u32,
    /// Aggressive orders are priced 1 to `cross` ticks through the mid.
    pub cross: u32,
    /// Order quantities are 1 to `max_qty` lots.
    pub max_qty: u64,
    /// Resting orders a session keeps at most (an add beyond it becomes a cancel).
    pub max_live: u32,
    /// Commands awaiting their first report, per session, at most (the open loop waits,
    /// and the wait counts in the latency).
    pub max_inflight: u32,
    /// Idle behaviour of the event loop.
    pub wait: WaitMode,
    /// Heartbeat interval asked in `Logon`; a heartbeat goes out when a session has been
    /// quiet for half of what the venue grants.
    pub heartbeat_ms: u32,
    /// Connect and logon timeout, per session.
    pub connect_timeout: Duration,
    /// After the last command, how long to wait for missing first reports.
    pub drain_timeout: Duration,
    /// Write every report received to this CSV file.
    pub report_log: Option<PathBuf>,
    /// Reject reasons that are expected under load (the run is still "ok" with them).
    pub allowed_rejects: Vec<Reason>,
}

/// The raw options of a run (see the module doc); `None` or empty = the default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Options {
    /// Venue config file (TOML): address, instruments, accounts.
    pub config: Option<PathBuf>,
    /// Order-entry address `HOST:PORT` (default: the config's `listen.order_entry`).
    pub connect: Option<String>,
    /// `ACCOUNT:KEY` logins.
    pub accounts: Vec<String>,
    /// File of logins, one `ACCOUNT KEY` (or `ACCOUNT:KEY`) per line; `#` starts a comment.
    pub keys_file: Option<PathBuf>,
    /// Sessions (default: one per login).
    pub sessions: Option<u32>,
    /// Commands per second, or `max` for the closed loop.
    pub rate: Option<String>,
    /// Closed-loop window per session.
    pub window: Option<u32>,
    /// Seconds of sending.
    pub duration: Option<f64>,
    /// Seconds of warm-up.
    pub warmup: Option<f64>,
    /// Mix spec, `add=45,cancel=35,modify=10,aggressive=10`.
    pub mix: Option<String>,
    /// Seed.
    pub seed: Option<u64>,
    /// `ID[:MID]` instruments (default: every instrument of the config, mid = band centre).
    pub symbols: Vec<String>,
    /// `uniform` or `poisson`.
    pub arrivals: Option<String>,
    /// `yield` or `spin`.
    pub wait: Option<String>,
    /// Passive depth, ticks.
    pub depth: Option<u32>,
    /// Aggressive reach, ticks.
    pub cross: Option<u32>,
    /// Largest order quantity, lots.
    pub max_qty: Option<u64>,
    /// Resting orders per session.
    pub max_live: Option<u32>,
    /// In-flight commands per session.
    pub max_inflight: Option<u32>,
    /// Heartbeat interval asked, ms.
    pub heartbeat_ms: Option<u32>,
    /// Connect/logon timeout, seconds.
    pub connect_timeout: Option<f64>,
    /// Drain timeout, seconds.
    pub drain_timeout: Option<f64>,
    /// Report log path.
    pub report_log: Option<PathBuf>,
    /// Reject reason names allowed (default `UNKNOWN_ORDER`); `none` allows none.
    pub allow_rejects: Vec<String>,
}

/// The defaults of the options that have one, as (option name, value) text, for help
/// messages (the Python CLI shows them too).
pub struct Defaults;

impl Defaults {
    /// Commands per second.
    pub const RATE: &'static str = "100000";
    /// Closed-loop window per session.
    pub const WINDOW: u32 = 256;
    /// Seconds of sending.
    pub const DURATION: f64 = 5.0;
    /// Seconds of warm-up.
    pub const WARMUP: f64 = 0.0;
    /// Order mix.
    pub const MIX: &'static str = "add=45,cancel=35,modify=10,aggressive=10";
    /// Seed.
    pub const SEED: u64 = 1;
    /// Arrivals.
    pub const ARRIVALS: &'static str = "uniform";
    /// Wait mode.
    pub const WAIT: &'static str = "yield";
    /// Passive depth, ticks.
    pub const DEPTH: u32 = 20;
    /// Aggressive reach, ticks.
    pub const CROSS: u32 = 3;
    /// Largest order quantity, lots.
    pub const MAX_QTY: u64 = 100;
    /// Resting orders per session.
    pub const MAX_LIVE: u32 = 1000;
    /// In-flight commands per session.
    pub const MAX_INFLIGHT: u32 = 65_536;
    /// Heartbeat interval asked, ms.
    pub const HEARTBEAT_MS: u32 = 1000;
    /// Connect/logon timeout, s.
    pub const CONNECT_TIMEOUT: f64 = 5.0;
    /// Drain timeout, s.
    pub const DRAIN_TIMEOUT: f64 = 5.0;
    /// Allowed reject reasons.
    pub const ALLOW_REJECTS: &'static str = "UNKNOWN_ORDER";

    /// Every default as (option name, value) text.
    pub fn table() -> Vec<(&'static str, String)> {
        vec![
            ("rate", Self::RATE.to_owned()),
            ("window", Self::WINDOW.to_string()),
            ("duration", Self::DURATION.to_string()),
            ("warmup", Self::WARMUP.to_string()),
            ("mix", Self::MIX.to_owned()),
            ("seed", Self::SEED.to_string()),
            ("arrivals", Self::ARRIVALS.to_owned()),
            ("wait", Self::WAIT.to_owned()),
            ("depth", Self::DEPTH.to_string()),
            ("cross", Self::CROSS.to_string()),
            ("max_qty", Self::MAX_QTY.to_string()),
            ("max_live", Self::MAX_LIVE.to_string()),
            ("max_inflight", Self::MAX_INFLIGHT.to_string()),
            ("heartbeat_ms", Self::HEARTBEAT_MS.to_string()),
            ("connect_timeout", Self::CONNECT_TIMEOUT.to_string()),
            ("drain_timeout", Self::DRAIN_TIMEOUT.to_string()),
            ("allow_rejects", Self::ALLOW_REJECTS.to_owned()),
        ]
    }
}

/// Sessions at most (16 bits of the client order id carry the session).
pub const MAX_SESSIONS: u32 = 4096;
/// Resting orders per session at most (20 bits of the client order id carry the slot).
pub const MAX_LIVE: u32 = 1 << 20;

fn usage(option: &str, message: impl Into<String>) -> LoadgenError {
    LoadgenError::Usage {
        option: option.to_owned(),
        message: message.into(),
    }
}

fn seconds(option: &str, v: f64, min: f64, max: f64) -> Result<Duration, LoadgenError> {
    if !v.is_finite() || v < min || v > max {
        return Err(usage(
            option,
            format!("{v} is outside {min}..={max} seconds"),
        ));
    }
    Ok(Duration::from_secs_f64(v))
}

fn within<T: PartialOrd + std::fmt::Display + Copy>(
    option: &str,
    v: T,
    lo: T,
    hi: T,
) -> Result<T, LoadgenError> {
    if v < lo || v > hi {
        return Err(usage(option, format!("{v} is outside {lo}..={hi}")));
    }
    Ok(v)
}

fn reason_by_name(name: &str) -> Option<Reason> {
    Reason::ALL
        .iter()
        .copied()
        .find(|r| r.name().eq_ignore_ascii_case(name.trim()))
}

fn read_keys_file(path: &Path) -> Result<Vec<Login>, LoadgenError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage("keys_file", format!("cannot read {}: {e}", path.display())))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let spec = match line.split_once(char::is_whitespace) {
            Some((a, k)) if !a.contains(':') => format!("{a}:{}", k.trim()),
            _ => line.to_owned(),
        };
        let login = Login::parse(&spec).map_err(|m| {
            usage(
                "keys_file",
                format!("{} line {}: {m}", path.display(), i + 1),
            )
        })?;
        out.push(login);
    }
    Ok(out)
}

impl Options {
    /// Validates the options (reading the venue config and the keys file when given).
    pub fn resolve(&self) -> Result<Settings, LoadgenError> {
        let config = match &self.config {
            Some(p) => Some(Config::load(p).map_err(|e| LoadgenError::Config(e.to_string()))?),
            None => None,
        };

        // Address.
        let connect = match (&self.connect, &config) {
            (Some(a), _) => a
                .to_socket_addrs()
                .map_err(|e| usage("connect", format!("{a:?}: {e}")))?
                .next()
                .ok_or_else(|| usage("connect", format!("{a:?} resolves to no address")))?,
            (None, Some(c)) => c.listen.order_entry,
            (None, None) => {
                return Err(usage(
                    "connect",
                    "give the venue's order-entry address (--connect HOST:PORT) or its config \
                     (--config FILE)",
                ))
            }
        };
        if !connect.ip().is_loopback() {
            return Err(usage(
                "connect",
                format!("{connect} is not a loopback address; the load generator only talks to a venue on this host"),
            ));
        }
        if connect.port() == 0 {
            return Err(usage(
                "connect",
                "port 0 is not an address to connect to (a config with port 0 binds a random \
                 port: give the bound address with --connect)",
            ));
        }

        // Logins.
        let mut logins = Vec::new();
        for a in &self.accounts {
            logins.push(Login::parse(a).map_err(|m| usage("account", format!("{a:?}: {m}")))?);
        }
        if let Some(p) = &self.keys_file {
            logins.extend(read_keys_file(p)?);
        }
        if logins.is_empty() {
            return Err(usage(
                "account",
                "no login given: --account ACCOUNT:KEY (repeatable) or --keys-file FILE \
                 (the venue config holds only key hashes)",
            ));
        }
        if let Some(c) = &config {
            for l in &logins {
                if !c.accounts.iter().any(|a| a.account == l.account) {
                    return Err(usage(
                        "account",
                        format!("account {} is not in the venue config", l.account),
                    ));
                }
            }
        }
        let sessions = match self.sessions {
            Some(n) => within("sessions", n, 1, MAX_SESSIONS)?,
            None => (logins.len() as u32).min(MAX_SESSIONS),
        };

        // Instruments.
        let max_qty = within(
            "max_qty",
            self.max_qty.unwrap_or(Defaults::MAX_QTY),
            1,
            u64::MAX / 4,
        )?;
        let depth = within("depth", self.depth.unwrap_or(Defaults::DEPTH), 1, 1_000_000)?;
        let cross = within("cross", self.cross.unwrap_or(Defaults::CROSS), 1, 1_000_000)?;
        let mut symbols: Vec<SymbolSpec> = Vec::new();
        let from_config = |id: u32| -> Option<SymbolSpec> {
            config.as_ref()?.instrument(id).map(|i| SymbolSpec {
                symbol_id: id,
                mid: i.price_band.lo_ticks + (i.price_band.hi_ticks - i.price_band.lo_ticks) / 2,
                lo: i.price_band.lo_ticks,
                hi: i.price_band.hi_ticks,
            })
        };
        for s in &self.symbols {
            let (id_text, mid_text) = match s.split_once(':') {
                Some((a, b)) => (a, Some(b)),
                None => (s.as_str(), None),
            };
            let id: u32 = id_text
                .trim()
                .parse()
                .ok()
                .filter(|&v| v > 0)
                .ok_or_else(|| {
                    usage(
                        "symbol",
                        format!("{s:?}: the id must be a whole number >= 1"),
                    )
                })?;
            let mut spec = match (&config, from_config(id)) {
                (Some(_), None) => {
                    return Err(usage(
                        "symbol",
                        format!("instrument {id} is not in the venue config"),
                    ))
                }
                (_, Some(spec)) => spec,
                (None, None) => SymbolSpec {
                    symbol_id: id,
                    mid: 0,
                    lo: 1,
                    hi: i64::MAX,
                },
            };
            match mid_text {
                Some(m) => {
                    spec.mid = m.trim().parse().map_err(|_| {
                        usage(
                            "symbol",
                            format!("{s:?}: the mid {m:?} is not a whole number of ticks"),
                        )
                    })?;
                }
                None if config.is_none() => {
                    return Err(usage(
                        "symbol",
                        format!("{s:?}: without a venue config give the mid price: ID:MID_TICKS"),
                    ))
                }
                None => {}
            }
            symbols.push(spec);
        }
        if symbols.is_empty() {
            match &config {
                Some(c) => {
                    for i in &c.instruments {
                        symbols.extend(from_config(i.symbol_id));
                    }
                }
                None => return Err(usage(
                    "symbol",
                    "without a venue config give at least one instrument: --symbol ID:MID_TICKS",
                )),
            }
        }
        if symbols.len() > 255 {
            return Err(usage("symbol", "at most 255 instruments"));
        }
        for s in &symbols {
            let reach = i64::from(depth.max(cross)) + 1;
            if s.mid.checked_sub(reach).is_none_or(|p| p < s.lo.max(1))
                || s.mid.checked_add(reach).is_none_or(|p| p > s.hi)
            {
                return Err(usage(
                    "symbol",
                    format!(
                        "instrument {}: prices mid {} +/- {} ticks (depth {depth}, cross {cross}) \
                         leave the accepted band {}..={}",
                        s.symbol_id, s.mid, reach, s.lo, s.hi
                    ),
                ));
            }
            if let Some(i) = config.as_ref().and_then(|c| c.instrument(s.symbol_id)) {
                if max_qty > i.max_order_qty {
                    return Err(usage(
                        "max_qty",
                        format!(
                            "{max_qty} lots is above instrument {}'s max_order_qty {}",
                            s.symbol_id, i.max_order_qty
                        ),
                    ));
                }
            }
        }

        // Mode.
        let rate_text = self.rate.as_deref().unwrap_or(Defaults::RATE).trim();
        let mode = if rate_text.eq_ignore_ascii_case("max") {
            Mode::Closed {
                window: within(
                    "window",
                    self.window.unwrap_or(Defaults::WINDOW),
                    1,
                    1 << 20,
                )?,
            }
        } else {
            let rate: u64 = rate_text.replace('_', "").parse().map_err(|_| {
                usage(
                    "rate",
                    format!("{rate_text:?} is neither a whole number of commands per second nor \"max\""),
                )
            })?;
            Mode::Open {
                rate: within("rate", rate, 1, 100_000_000)?,
            }
        };
        let arrivals = match self.arrivals.as_deref().unwrap_or(Defaults::ARRIVALS) {
            "uniform" => Arrivals::Uniform,
            "poisson" => Arrivals::Poisson,
            other => {
                return Err(usage(
                    "arrivals",
                    format!("{other:?} (expected uniform or poisson)"),
                ))
            }
        };
        let wait = match self.wait.as_deref().unwrap_or(Defaults::WAIT) {
            "yield" => WaitMode::Yield,
            "spin" => WaitMode::Spin,
            "sleep" => WaitMode::Sleep,
            other => {
                return Err(usage(
                    "wait",
                    format!("{other:?} (expected yield, spin or sleep)"),
                ))
            }
        };
        let mix = Mix::parse(self.mix.as_deref().unwrap_or(Defaults::MIX))
            .map_err(|m| usage("mix", m))?;

        let mut allowed_rejects = Vec::new();
        let names: Vec<&str> = if self.allow_rejects.is_empty() {
            vec![Defaults::ALLOW_REJECTS]
        } else {
            self.allow_rejects.iter().map(String::as_str).collect()
        };
        for list in names {
            for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                if name.eq_ignore_ascii_case("none") {
                    continue;
                }
                allowed_rejects.push(reason_by_name(name).ok_or_else(|| {
                    usage(
                        "allow_reject",
                        format!("{name:?} is not a reason code name"),
                    )
                })?);
            }
        }

        let max_inflight = within(
            "max_inflight",
            self.max_inflight.unwrap_or(Defaults::MAX_INFLIGHT),
            1,
            1 << 24,
        )?;
        if let Mode::Closed { window } = mode {
            if window > max_inflight {
                return Err(usage(
                    "window",
                    format!("{window} is above max_inflight {max_inflight}"),
                ));
            }
        }

        Ok(Settings {
            connect,
            logins,
            sessions,
            symbols,
            mode,
            arrivals,
            duration: seconds(
                "duration",
                self.duration.unwrap_or(Defaults::DURATION),
                0.001,
                86_400.0,
            )?,
            warmup: seconds(
                "warmup",
                self.warmup.unwrap_or(Defaults::WARMUP),
                0.0,
                86_400.0,
            )?,
            mix,
            seed: self.seed.unwrap_or(Defaults::SEED),
            depth,
            cross,
            max_qty,
            max_live: within(
                "max_live",
                self.max_live.unwrap_or(Defaults::MAX_LIVE),
                1,
                MAX_LIVE,
            )?,
            max_inflight,
            wait,
            heartbeat_ms: within(
                "heartbeat_ms",
                self.heartbeat_ms.unwrap_or(Defaults::HEARTBEAT_MS),
                10,
                3_600_000,
            )?,
            connect_timeout: seconds(
                "connect_timeout",
                self.connect_timeout.unwrap_or(Defaults::CONNECT_TIMEOUT),
                0.001,
                600.0,
            )?,
            drain_timeout: seconds(
                "drain_timeout",
                self.drain_timeout.unwrap_or(Defaults::DRAIN_TIMEOUT),
                0.0,
                3600.0,
            )?,
            report_log: self.report_log.clone(),
            allowed_rejects,
        })
        .and_then(|s| {
            if s.warmup >= s.duration {
                Err(usage(
                    "warmup",
                    format!(
                        "{:?} is not shorter than the duration {:?}",
                        s.warmup, s.duration
                    ),
                ))
            } else {
                Ok(s)
            }
        })
    }

    /// Parses the Rust binary's command line (without the program name). `--help` is
    /// answered by the caller; every option also accepts `--name=value`. Returns the options
    /// and the binary-only settings (JSON output path, quiet).
    pub fn from_args<I: IntoIterator<Item = String>>(
        args: I,
    ) -> Result<(Options, CliExtras), LoadgenError> {
        let mut o = Options::default();
        let mut extras = CliExtras::default();
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
                _ => (arg.clone(), None),
            };
            let flag = name.trim_start_matches("--").replace('-', "_");
            if !name.starts_with("--") {
                return Err(usage(&arg, "unexpected argument (options start with --)"));
            }
            if flag == "quiet" {
                extras.quiet = true;
                continue;
            }
            let mut value = || -> Result<String, LoadgenError> {
                match inline.clone() {
                    Some(v) => Ok(v),
                    None => it.next().ok_or_else(|| usage(&flag, "expects a value")),
                }
            };
            fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, LoadgenError> {
                v.trim()
                    .replace('_', "")
                    .parse()
                    .map_err(|_| usage(flag, format!("{v:?} is not a number")))
            }
            match flag.as_str() {
                "config" => o.config = Some(value()?.into()),
                "connect" => o.connect = Some(value()?),
                "account" => o.accounts.push(value()?),
                "keys_file" => o.keys_file = Some(value()?.into()),
                "sessions" => o.sessions = Some(num(&flag, &value()?)?),
                "rate" => o.rate = Some(value()?),
                "window" => o.window = Some(num(&flag, &value()?)?),
                "duration" => o.duration = Some(num(&flag, &value()?)?),
                "warmup" => o.warmup = Some(num(&flag, &value()?)?),
                "mix" => o.mix = Some(value()?),
                "seed" => o.seed = Some(num(&flag, &value()?)?),
                "symbol" => o.symbols.push(value()?),
                "arrivals" => o.arrivals = Some(value()?),
                "wait" => o.wait = Some(value()?),
                "depth" => o.depth = Some(num(&flag, &value()?)?),
                "cross" => o.cross = Some(num(&flag, &value()?)?),
                "max_qty" => o.max_qty = Some(num(&flag, &value()?)?),
                "max_live" => o.max_live = Some(num(&flag, &value()?)?),
                "max_inflight" => o.max_inflight = Some(num(&flag, &value()?)?),
                "heartbeat_ms" => o.heartbeat_ms = Some(num(&flag, &value()?)?),
                "connect_timeout" => o.connect_timeout = Some(num(&flag, &value()?)?),
                "drain_timeout" => o.drain_timeout = Some(num(&flag, &value()?)?),
                "report_log" => o.report_log = Some(value()?.into()),
                "allow_reject" => o.allow_rejects.push(value()?),
                "json" => extras.json = Some(value()?.into()),
                _ => return Err(usage(&name, "unknown option (see --help)")),
            }
        }
        Ok((o, extras))
    }
}

/// Options of the Rust binary that are not part of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CliExtras {
    /// Write the JSON result here.
    pub json: Option<PathBuf>,
    /// Print nothing but errors.
    pub quiet: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Options {
        Options {
            connect: Some("127.0.0.1:7001".into()),
            accounts: vec!["1:demo-key".into()],
            symbols: vec!["1:1000000".into()],
            ..Options::default()
        }
    }

    fn err(o: &Options) -> String {
        o.resolve().unwrap_err().to_string()
    }

    #[test]
    fn defaults_resolve() {
        let s = base().resolve().unwrap();
        assert_eq!(s.mode, Mode::Open { rate: 100_000 });
        assert_eq!(s.sessions, 1);
        assert_eq!(s.mix.total(), 100);
        assert_eq!(s.allowed_rejects, vec![Reason::UnknownOrder]);
        assert_eq!(s.symbols[0].mid, 1_000_000);
    }

    #[test]
    fn bad_values_name_their_option() {
        let cases: Vec<(Options, &str)> = vec![
            (
                Options {
                    connect: Some("10.1.2.3:80".into()),
                    ..base()
                },
                "loopback",
            ),
            (
                Options {
                    accounts: vec!["x:key".into()],
                    ..base()
                },
                "account",
            ),
            (
                Options {
                    accounts: vec![],
                    ..base()
                },
                "no login",
            ),
            (
                Options {
                    rate: Some("fast".into()),
                    ..base()
                },
                "rate",
            ),
            (
                Options {
                    mix: Some("add=1,sell=2".into()),
                    ..base()
                },
                "unknown kind",
            ),
            (
                Options {
                    mix: Some("cancel=1".into()),
                    ..base()
                },
                "add or aggressive",
            ),
            (
                Options {
                    symbols: vec!["1".into()],
                    ..base()
                },
                "mid price",
            ),
            (
                Options {
                    symbols: vec!["1:5".into()],
                    ..base()
                },
                "leave the accepted band",
            ),
            (
                Options {
                    warmup: Some(9.0),
                    duration: Some(1.0),
                    ..base()
                },
                "warmup",
            ),
            (
                Options {
                    allow_rejects: vec!["NOPE".into()],
                    ..base()
                },
                "reason code",
            ),
            (
                Options {
                    rate: Some("max".into()),
                    window: Some(100),
                    max_inflight: Some(10),
                    ..base()
                },
                "window",
            ),
        ];
        for (o, want) in cases {
            let e = err(&o);
            assert!(e.contains(want), "{e:?} should mention {want:?}");
        }
    }

    #[test]
    fn args_parse_like_the_fields() {
        let args = [
            "--connect=127.0.0.1:9",
            "--account",
            "2:k",
            "--rate",
            "max",
            "--window",
            "64",
            "--symbol",
            "3:500",
            "--max-live",
            "10",
            "--json",
            "out.json",
            "--quiet",
        ];
        let (o, x) = Options::from_args(args.iter().map(|s| s.to_string())).unwrap();
        assert_eq!(o.connect.as_deref(), Some("127.0.0.1:9"));
        assert_eq!(o.window, Some(64));
        assert_eq!(o.max_live, Some(10));
        assert!(x.quiet);
        assert_eq!(x.json, Some(PathBuf::from("out.json")));
        let s = o.resolve().unwrap();
        assert_eq!(s.mode, Mode::Closed { window: 64 });
        assert!(Options::from_args(["--bogus".to_string()]).is_err());
        assert!(Options::from_args(["--rate".to_string()]).is_err());
    }
}
