//! `loadgen::report`: a run's figures ([`Report`]): counters, latency histograms, the checks
//! that make a run "ok", the human summary and the JSON document (settings, figures, machine).
//!
//! The JSON is written by hand (the engine has no JSON dependency); keys are fixed strings and
//! the only free text (notes, CPU model, paths) goes through [`json_str`]. Latencies are
//! integer nanoseconds; rates are per second.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use tradecore_book::{EventKind, Reason};

use super::orders::CommandKind;
use super::settings::{Arrivals, Mode, Settings, WaitMode};

const MAX_NOTES: usize = 20;

/// Everything counted during a run. Arrays indexed by [`CommandKind`], [`EventKind`] or
/// [`Reason`] discriminants.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Commands sent, by kind.
    pub sent: [u64; 4],
    /// Commands whose first report arrived, by kind.
    pub answered: [u64; 4],
    /// Reports received, by event kind (on the session that owns the order, plus copies on
    /// other sessions of the same account).
    pub reports: [u64; 5],
    /// Rejects by reason (owned reports only).
    pub rejects: [u64; 32],
    /// Cancels by reason (owned reports only).
    pub cancels: [u64; 32],
    /// Rejects whose reason is not in the allowed list.
    pub unexpected_rejects: u64,
    /// Maker fills and their quantity.
    pub fills_maker: u64,
    /// Quantity of maker fills.
    pub qty_maker: u128,
    /// Taker fills.
    pub fills_taker: u64,
    /// Quantity of taker fills.
    pub qty_taker: u128,
    /// Reports with sequence number 0.
    pub unsequenced: u64,
    /// Sequence numbers skipped.
    pub seq_gaps: u64,
    /// Reports whose sequence number was already seen.
    pub seq_dups: u64,
    /// Answer-shaped reports that did not answer the session's oldest unanswered command.
    pub unmatched: u64,
    /// Reports about another session's order (shared account stream).
    pub foreign: u64,
    /// Commands still unanswered at the end.
    pub unanswered: u64,
    /// Open-loop commands not sent because their session was closed.
    pub skipped: u64,
    /// Turns in which the open loop waited for in-flight room or socket space.
    pub stalls: u64,
    /// Heartbeats sent.
    pub heartbeats_sent: u64,
    /// Venue heartbeats received.
    pub heartbeats_received: u64,
    /// Venue messages other than reports and heartbeats.
    pub other_messages: u64,
    /// Frames that did not decode.
    pub decode_errors: u64,
    /// Connections the venue closed or that failed before Logout.
    pub disconnects: u64,
    /// Sessions that did not close within 2 s of Logout.
    pub logout_timeouts: u64,
    /// `write` calls that moved bytes.
    pub writes: u64,
    /// `write` calls refused with `WouldBlock`.
    pub write_would_block: u64,
    /// Bytes written.
    pub bytes_sent: u64,
    /// `read` calls that returned bytes.
    pub reads: u64,
    /// Bytes read.
    pub bytes_received: u64,
    /// Commands intended inside the measured window (after warm-up).
    pub sent_in_window: u64,
    /// First reports received inside the measured window.
    pub answered_in_window: u64,
    /// Reports received inside the measured window.
    pub reports_in_window: u64,
    /// Resting orders the sessions believed they had at the end.
    pub live_at_end: u64,
    /// The report log hit a write error.
    pub report_log_failed: bool,
    /// What went wrong, in words (first 20).
    pub notes: Vec<String>,
}

impl Counters {
    /// Records a note (the first 20 are kept).
    pub fn note(&mut self, s: String) {
        if self.notes.len() < MAX_NOTES {
            self.notes.push(s);
        }
    }

    /// Commands sent.
    pub fn sent_total(&self) -> u64 {
        self.sent.iter().sum()
    }

    /// First reports received.
    pub fn answered_total(&self) -> u64 {
        self.answered.iter().sum()
    }

    /// Reports received.
    pub fn reports_total(&self) -> u64 {
        self.reports.iter().sum()
    }

    /// Rejects received (owned).
    pub fn rejects_total(&self) -> u64 {
        self.rejects.iter().sum()
    }
}

/// What the driver hands back.
#[derive(Debug)]
pub(super) struct RunResult {
    pub counters: Counters,
    pub by_kind: [Histogram<u64>; 4],
    pub all: Histogram<u64>,
    pub lag: Histogram<u64>,
    pub measured_ns: u64,
    pub send_ns: u64,
    pub drain_ns: u64,
    pub sessions: Vec<(u32, u64)>,
    pub load_before: Option<[f64; 3]>,
    pub load_after: Option<[f64; 3]>,
}

/// Latency percentiles of one histogram, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Smallest.
    pub min: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// 99.99th percentile.
    pub p9999: u64,
    /// Largest.
    pub max: u64,
}

impl Percentiles {
    /// The percentiles of `h` (all zero when it is empty).
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            min: h.min(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            p9999: h.value_at_quantile(0.9999),
            max: h.max(),
        }
    }

    fn json(&self) -> String {
        format!(
            "{{\"count\": {}, \"min\": {}, \"mean\": {:.0}, \"p50\": {}, \"p90\": {}, \"p99\": {}, \
             \"p99_9\": {}, \"p99_99\": {}, \"max\": {}}}",
            self.count,
            self.min,
            self.mean,
            self.p50,
            self.p90,
            self.p99,
            self.p999,
            self.p9999,
            self.max
        )
    }
}

/// A finished run: its settings, counters, latency figures and checks.
#[derive(Debug)]
pub struct Report {
    /// The settings the run used.
    pub settings: Settings,
    /// The counters.
    pub counters: Counters,
    /// First-report latency of every command (after warm-up), ns.
    pub latency: Percentiles,
    /// The same, by command kind (add, aggressive, cancel, modify).
    pub latency_by_kind: [Percentiles; 4],
    /// How late commands were handed to the socket compared with their intended time, ns.
    pub schedule_lag: Percentiles,
    /// The latency curve for plots: (quantile, ns) points, quantile from 0 to 1.
    pub curve: Vec<(f64, u64)>,
    /// Length of the measured window (duration minus warm-up), s.
    pub measured_s: f64,
    /// Time from the first to the last command sent, s.
    pub send_s: f64,
    /// Time spent waiting for the last first reports, s.
    pub drain_s: f64,
    /// (account, venue session id) of every session.
    pub sessions: Vec<(u32, u64)>,
    /// Unix time of the end of the run, s.
    pub finished_unix: u64,
    /// /proc/loadavg before the run.
    pub load_before: Option<[f64; 3]>,
    /// /proc/loadavg after the run.
    pub load_after: Option<[f64; 3]>,
}

/// `/proc/loadavg` (1, 5, 15 minutes), if readable.
pub fn loadavg() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|t| t.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn proc_text(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// A JSON string literal of `s`.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_f64(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else {
        "null".to_owned()
    }
}

fn load_json(l: Option<[f64; 3]>) -> String {
    match l {
        Some([a, b, c]) => format!("[{a}, {b}, {c}]"),
        None => "null".to_owned(),
    }
}

/// `1234567` as `1,234,567`.
fn grouped(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Nanoseconds in a short human unit.
fn dur(ns: u64) -> String {
    if ns < 10_000 {
        format!("{:.2} us", ns as f64 / 1e3)
    } else if ns < 1_000_000 {
        format!("{:.1} us", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else {
        format!("{:.2} s", ns as f64 / 1e9)
    }
}

impl Report {
    pub(super) fn new(settings: &Settings, r: RunResult) -> Report {
        let mut curve = Vec::new();
        if !r.all.is_empty() {
            for v in r.all.iter_quantiles(4) {
                curve.push((v.quantile_iterated_to(), v.value_iterated_to()));
            }
        }
        Report {
            settings: settings.clone(),
            latency: Percentiles::of(&r.all),
            latency_by_kind: [
                Percentiles::of(&r.by_kind[0]),
                Percentiles::of(&r.by_kind[1]),
                Percentiles::of(&r.by_kind[2]),
                Percentiles::of(&r.by_kind[3]),
            ],
            schedule_lag: Percentiles::of(&r.lag),
            curve,
            measured_s: r.measured_ns as f64 / 1e9,
            send_s: r.send_ns as f64 / 1e9,
            drain_s: r.drain_ns as f64 / 1e9,
            sessions: r.sessions,
            finished_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            load_before: r.load_before,
            load_after: r.load_after,
            counters: r.counters,
        }
    }

    /// Names of the checks that failed (empty = the run is consistent): every command got its
    /// first report, report sequence numbers are contiguous on every session, no report was
    /// unmatched, undecodable or unsequenced, no reject outside the allowed reasons, no
    /// session dropped, maker and taker fills balance, the report log is complete.
    pub fn failed_checks(&self) -> Vec<String> {
        let c = &self.counters;
        let mut f = Vec::new();
        let mut check = |bad: bool, what: String| {
            if bad {
                f.push(what);
            }
        };
        check(c.unanswered > 0, format!("unanswered={}", c.unanswered));
        check(c.skipped > 0, format!("skipped={}", c.skipped));
        check(c.seq_gaps > 0, format!("seq_gaps={}", c.seq_gaps));
        check(c.seq_dups > 0, format!("seq_dups={}", c.seq_dups));
        check(c.unmatched > 0, format!("unmatched={}", c.unmatched));
        check(c.unsequenced > 0, format!("unsequenced={}", c.unsequenced));
        check(
            c.decode_errors > 0,
            format!("decode_errors={}", c.decode_errors),
        );
        check(
            c.unexpected_rejects > 0,
            format!("unexpected_rejects={}", c.unexpected_rejects),
        );
        check(c.disconnects > 0, format!("disconnects={}", c.disconnects));
        check(
            c.logout_timeouts > 0,
            format!("logout_timeouts={}", c.logout_timeouts),
        );
        check(
            c.fills_maker != c.fills_taker || c.qty_maker != c.qty_taker,
            format!(
                "fills_unbalanced(maker {} / {} lots, taker {} / {} lots)",
                c.fills_maker, c.qty_maker, c.fills_taker, c.qty_taker
            ),
        );
        check(c.report_log_failed, "report_log_failed".to_owned());
        f
    }

    /// True when [`Report::failed_checks`] is empty.
    pub fn ok(&self) -> bool {
        self.failed_checks().is_empty()
    }

    /// Commands answered per second in the measured window.
    pub fn answered_per_s(&self) -> f64 {
        self.counters.answered_in_window as f64 / self.measured_s
    }

    /// Commands sent per second in the measured window.
    pub fn sent_per_s(&self) -> f64 {
        self.counters.sent_in_window as f64 / self.measured_s
    }

    /// The human summary (several lines).
    pub fn summary(&self) -> String {
        let s = &self.settings;
        let c = &self.counters;
        let mut o = String::new();
        let mode = match s.mode {
            Mode::Open { rate } => format!(
                "open loop at {} commands/s ({})",
                grouped(rate),
                match s.arrivals {
                    Arrivals::Uniform => "uniform",
                    Arrivals::Poisson => "poisson",
                }
            ),
            Mode::Closed { window } => format!("closed loop, window {window} per session"),
        };
        let _ = writeln!(
            o,
            "loadgen: {} session(s) to {}, {mode}, {:.2} s measured after {:.2} s warm-up, seed {}",
            s.sessions,
            s.connect,
            self.measured_s,
            s.warmup.as_secs_f64(),
            s.seed
        );
        let kinds = CommandKind::ALL
            .iter()
            .map(|k| format!("{} {}", k.name(), grouped(c.sent[*k as usize])))
            .collect::<Vec<_>>()
            .join(", ");
        let per_write = c.bytes_sent.checked_div(c.writes).unwrap_or(0);
        let _ = writeln!(
            o,
            "sent      {} commands ({kinds}); {} writes, {} bytes per write",
            grouped(c.sent_total()),
            grouped(c.writes),
            per_write
        );
        let _ = writeln!(
            o,
            "rate      sent {}/s, answered {}/s in the measured window; {} unanswered",
            grouped(self.sent_per_s().round() as u64),
            grouped(self.answered_per_s().round() as u64),
            grouped(c.unanswered)
        );
        let reports = EventKind::ALL
            .iter()
            .map(|k| format!("{} {}", k.name(), grouped(c.reports[*k as usize])))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            o,
            "reports   {} ({reports}); seq gaps {}, duplicates {}",
            grouped(c.reports_total()),
            c.seq_gaps,
            c.seq_dups
        );
        let rejects = Reason::ALL
            .iter()
            .filter(|r| c.rejects[**r as usize] > 0)
            .map(|r| {
                let tag = if self.settings.allowed_rejects.contains(r) {
                    ""
                } else {
                    " (unexpected)"
                };
                format!("{} {}{tag}", r.name(), grouped(c.rejects[*r as usize]))
            })
            .collect::<Vec<_>>();
        let _ = writeln!(
            o,
            "rejects   {}",
            if rejects.is_empty() {
                "none".to_owned()
            } else {
                rejects.join(", ")
            }
        );
        let _ = writeln!(
            o,
            "fills     {} maker / {} taker",
            grouped(c.fills_maker),
            grouped(c.fills_taker)
        );
        let l = &self.latency;
        let _ = writeln!(
            o,
            "latency   p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  ({} commands, from {} send time)",
            dur(l.p50),
            dur(l.p90),
            dur(l.p99),
            dur(l.p999),
            dur(l.max),
            grouped(l.count),
            match s.mode {
                Mode::Open { .. } => "intended",
                Mode::Closed { .. } => "actual",
            }
        );
        for k in CommandKind::ALL {
            let p = &self.latency_by_kind[k as usize];
            if p.count > 0 {
                let _ = writeln!(
                    o,
                    "  {:<10} p50 {}  p99 {}  p99.9 {}  max {}",
                    k.name(),
                    dur(p.p50),
                    dur(p.p99),
                    dur(p.p999),
                    dur(p.max)
                );
            }
        }
        let g = &self.schedule_lag;
        let _ = writeln!(
            o,
            "lag       schedule lag p50 {}  p99 {}  max {}",
            dur(g.p50),
            dur(g.p99),
            dur(g.max)
        );
        for n in &c.notes {
            let _ = writeln!(o, "note      {n}");
        }
        let failed = self.failed_checks();
        let _ = write!(
            o,
            "checks    {}",
            if failed.is_empty() {
                "ok".to_owned()
            } else {
                format!("FAILED: {}", failed.join(", "))
            }
        );
        o
    }

    /// The JSON document (settings, figures, checks, machine).
    pub fn to_json(&self) -> String {
        let s = &self.settings;
        let c = &self.counters;
        let mut o = String::with_capacity(16 * 1024);
        o.push_str("{\n");
        let _ = writeln!(o, "  \"tool\": \"tradecore loadgen\",");
        let _ = writeln!(o, "  \"format\": 1,");
        let _ = writeln!(o, "  \"finished_unix\": {},", self.finished_unix);
        let failed = self.failed_checks();
        let _ = writeln!(o, "  \"ok\": {},", failed.is_empty());
        let _ = writeln!(
            o,
            "  \"failed_checks\": [{}],",
            failed
                .iter()
                .map(|f| json_str(f))
                .collect::<Vec<_>>()
                .join(", ")
        );
        // Settings.
        let (mode, rate, window) = match s.mode {
            Mode::Open { rate } => ("open", rate.to_string(), "null".to_owned()),
            Mode::Closed { window } => ("closed", "null".to_owned(), window.to_string()),
        };
        let mix = format!(
            "{{\"add\": {}, \"cancel\": {}, \"modify\": {}, \"aggressive\": {}}}",
            s.mix.add, s.mix.cancel, s.mix.modify, s.mix.aggressive
        );
        let symbols = s
            .symbols
            .iter()
            .map(|y| format!("{{\"symbol_id\": {}, \"mid\": {}}}", y.symbol_id, y.mid))
            .collect::<Vec<_>>()
            .join(", ");
        let accounts = s
            .logins
            .iter()
            .map(|l| l.account.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let allowed = s
            .allowed_rejects
            .iter()
            .map(|r| json_str(r.name()))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            o,
            "  \"settings\": {{\"connect\": {}, \"sessions\": {}, \"accounts\": [{accounts}], \
             \"mode\": \"{mode}\", \"rate\": {rate}, \"window\": {window}, \"arrivals\": \"{}\", \
             \"duration_s\": {}, \"warmup_s\": {}, \"mix\": {mix}, \"seed\": {}, \
             \"symbols\": [{symbols}], \"depth\": {}, \"cross\": {}, \"max_qty\": {}, \
             \"max_live\": {}, \"max_inflight\": {}, \"wait\": \"{}\", \"heartbeat_ms\": {}, \
             \"report_log\": {}, \"allowed_rejects\": [{allowed}]}},",
            json_str(&s.connect.to_string()),
            s.sessions,
            match s.arrivals {
                Arrivals::Uniform => "uniform",
                Arrivals::Poisson => "poisson",
            },
            json_f64(s.duration.as_secs_f64()),
            json_f64(s.warmup.as_secs_f64()),
            s.seed,
            s.depth,
            s.cross,
            s.max_qty,
            s.max_live,
            s.max_inflight,
            match s.wait {
                WaitMode::Yield => "yield",
                WaitMode::Spin => "spin",
                WaitMode::Sleep => "sleep",
            },
            s.heartbeat_ms,
            s.report_log
                .as_ref()
                .map(|p| json_str(&p.display().to_string()))
                .unwrap_or_else(|| "null".to_owned()),
        );
        let _ = writeln!(
            o,
            "  \"machine\": {{\"cpu\": {}, \"logical_cpus\": {}, \"kernel\": {}, \"hostname\": {}, \
             \"loadavg_before\": {}, \"loadavg_after\": {}}},",
            json_str(&cpu_model()),
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            json_str(&proc_text("/proc/sys/kernel/osrelease")),
            json_str(&proc_text("/proc/sys/kernel/hostname")),
            load_json(self.load_before),
            load_json(self.load_after),
        );
        let offered = match s.mode {
            Mode::Open { rate } => rate.to_string(),
            Mode::Closed { .. } => "null".to_owned(),
        };
        let _ = writeln!(
            o,
            "  \"throughput\": {{\"offered_per_s\": {offered}, \"sent_per_s\": {}, \
             \"answered_per_s\": {}, \"reports_per_s\": {}, \"measured_s\": {}, \"send_s\": {}, \
             \"drain_s\": {}, \"new_orders_per_s\": {}}},",
            json_f64(self.sent_per_s()),
            json_f64(self.answered_per_s()),
            json_f64(c.reports_in_window as f64 / self.measured_s),
            json_f64(self.measured_s),
            json_f64(self.send_s),
            json_f64(self.drain_s),
            json_f64(
                (c.answered[CommandKind::Add as usize]
                    + c.answered[CommandKind::Aggressive as usize]) as f64
                    / self.send_s.max(1e-9)
            ),
        );
        let by_kind = |a: &[u64; 4]| {
            CommandKind::ALL
                .iter()
                .map(|k| format!("\"{}\": {}", k.name(), a[*k as usize]))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let by_event = EventKind::ALL
            .iter()
            .map(|k| format!("\"{}\": {}", k.name(), c.reports[*k as usize]))
            .collect::<Vec<_>>()
            .join(", ");
        let by_reason = |a: &[u64; 32]| {
            Reason::ALL
                .iter()
                .filter(|r| a[**r as usize] > 0)
                .map(|r| format!("\"{}\": {}", r.name(), a[*r as usize]))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            o,
            "  \"counts\": {{\"sent\": {{{}}}, \"sent_total\": {}, \"answered\": {{{}}}, \
             \"answered_total\": {}, \"unanswered\": {}, \"reports\": {{{by_event}}}, \
             \"reports_total\": {}, \"rejects\": {{{}}}, \"cancels\": {{{}}}, \
             \"unexpected_rejects\": {}, \"fills_maker\": {}, \"fills_taker\": {}, \
             \"qty_maker\": {}, \"qty_taker\": {}, \"seq_gaps\": {}, \"seq_dups\": {}, \
             \"unsequenced\": {}, \"unmatched\": {}, \"foreign\": {}, \"skipped\": {}, \
             \"stalls\": {}, \"heartbeats_sent\": {}, \"heartbeats_received\": {}, \
             \"other_messages\": {}, \"decode_errors\": {}, \"disconnects\": {}, \
             \"logout_timeouts\": {}, \"writes\": {}, \"write_would_block\": {}, \
             \"bytes_sent\": {}, \"reads\": {}, \"bytes_received\": {}, \"live_at_end\": {}}},",
            by_kind(&c.sent),
            c.sent_total(),
            by_kind(&c.answered),
            c.answered_total(),
            c.unanswered,
            c.reports_total(),
            by_reason(&c.rejects),
            by_reason(&c.cancels),
            c.unexpected_rejects,
            c.fills_maker,
            c.fills_taker,
            c.qty_maker,
            c.qty_taker,
            c.seq_gaps,
            c.seq_dups,
            c.unsequenced,
            c.unmatched,
            c.foreign,
            c.skipped,
            c.stalls,
            c.heartbeats_sent,
            c.heartbeats_received,
            c.other_messages,
            c.decode_errors,
            c.disconnects,
            c.logout_timeouts,
            c.writes,
            c.write_would_block,
            c.bytes_sent,
            c.reads,
            c.bytes_received,
            c.live_at_end,
        );
        let kinds = CommandKind::ALL
            .iter()
            .map(|k| {
                format!(
                    "\"{}\": {}",
                    k.name(),
                    self.latency_by_kind[*k as usize].json()
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            o,
            "  \"latency_ns\": {{\"all\": {}, {kinds}}},",
            self.latency.json()
        );
        let _ = writeln!(o, "  \"schedule_lag_ns\": {},", self.schedule_lag.json());
        let curve = self
            .curve
            .iter()
            .map(|(q, v)| format!("[{q:.7}, {v}]"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(o, "  \"latency_curve_ns\": [{curve}],");
        let sessions = self
            .sessions
            .iter()
            .map(|(a, id)| format!("[{a}, {id}]"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(o, "  \"sessions\": [{sessions}],");
        let _ = writeln!(
            o,
            "  \"notes\": [{}]",
            c.notes
                .iter()
                .map(|n| json_str(n))
                .collect::<Vec<_>>()
                .join(", ")
        );
        o.push('}');
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(1234567), "1,234,567");
        assert_eq!(grouped(100), "100");
        assert_eq!(json_str("a\"b\\\n\u{1}"), "\"a\\\"b\\\\\\n\\u0001\"");
        assert_eq!(dur(1500), "1.50 us");
        assert_eq!(dur(2_500_000), "2.50 ms");
        let mut h = super::super::driver::histogram().unwrap();
        assert_eq!(Percentiles::of(&h), Percentiles::default());
        for v in 1..=1000u64 {
            h.saturating_record(v * 1000);
        }
        let p = Percentiles::of(&h);
        assert_eq!(p.count, 1000);
        assert!((499_000..=501_000).contains(&p.p50), "{p:?}");
        assert!((989_000..=991_000).contains(&p.p99), "{p:?}");
    }
}
