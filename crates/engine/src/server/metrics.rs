//! `server::metrics`: the counters every thread exports, their Prometheus text rendering and
//! the small HTTP responder behind `listen.metrics` (`GET /metrics`).
//!
//! ## Who writes what
//!
//! Each counter has exactly one writer thread. The engine and the publisher count in plain
//! local integers on their hot paths and *store* the totals here every few thousand messages
//! and whenever they go idle, so the per-message cost is an add in a register, not an atomic
//! read-modify-write on a shared cache line. The engine's latency histogram (time to journal
//! and apply one command, ns) is recorded locally and merged into the shared one with a
//! `try_lock` (never blocking the engine: when the metrics thread holds the lock the merge
//! waits for the next round). Values are therefore at most a few milliseconds stale.
//!
//! ## Cost
//!
//! Rendering allocates one `String` per scrape (a few KiB) on the metrics thread. The HTTP
//! responder serves one request per connection, reads at most 8 KiB with a 1 s timeout and
//! never touches the trading threads beyond these atomics and the histogram lock.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tradecore_book::Reason;

use crate::journal::FsyncHistogram;
use crate::ring::Gauge;
use crate::venue::Input;

/// Command types as counted (index = [`command_index`]).
pub const COMMAND_TYPES: [&str; 9] = [
    "logon",
    "logout",
    "heartbeat",
    "new_order",
    "cancel",
    "modify",
    "mass_cancel",
    "retransmit_request",
    "disconnect",
];

/// Index of a command's type in [`COMMAND_TYPES`].
#[inline]
pub fn command_index(input: &Input) -> usize {
    match input {
        Input::Logon { .. } => 0,
        Input::Logout => 1,
        Input::Heartbeat => 2,
        Input::NewOrder(_) => 3,
        Input::Cancel(_) => 4,
        Input::Modify(_) => 5,
        Input::MassCancel(_) => 6,
        Input::RetransmitRequest(_) => 7,
        Input::Disconnect => 8,
    }
}

/// Number of reject reasons counted (every `Reason` code).
pub const REASONS: usize = 21;

fn counters<const N: usize>() -> [AtomicU64; N] {
    std::array::from_fn(|_| AtomicU64::new(0))
}

/// The shared counters (see the module doc for who writes which).
#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    // ---- engine ----
    /// Commands journaled and applied, by type.
    pub commands: [AtomicU64; 9],
    /// Journal records appended since start.
    pub journal_records: AtomicU64,
    /// Journal bytes written since start.
    pub journal_bytes: AtomicU64,
    /// Journal syncs since start.
    pub fsyncs: AtomicU64,
    /// Sum of sync latencies, ns.
    pub fsync_ns_total: AtomicU64,
    /// Largest sync latency, ns.
    pub fsync_ns_max: AtomicU64,
    /// Sync latency histogram (the journal's power-of-two buckets).
    pub fsync_buckets: [AtomicU64; FsyncHistogram::BUCKETS],
    /// Snapshots written.
    pub snapshots: AtomicU64,
    /// Journal sequence number covered by the last snapshot.
    pub last_snapshot_seq: AtomicU64,
    /// Last journal sequence number appended.
    pub journal_seq: AtomicU64,
    /// Time to journal and apply one command, ns.
    pub engine_latency: Mutex<Histogram<u64>>,
    // ---- publisher ----
    /// Sequenced execution reports written to sessions (one per receiving session).
    pub reports_out: AtomicU64,
    /// Rejects sent (sequenced, unsequenced and malformed), by reason code.
    pub rejects: [AtomicU64; REASONS],
    /// Bytes written to order-entry connections.
    pub tcp_bytes_out: AtomicU64,
    /// Datagrams sent on the UDP feeds (heartbeats included).
    pub datagrams_sent: AtomicU64,
    /// Datagrams the socket refused (the subscribers recover them by retransmission).
    pub datagrams_failed: AtomicU64,
    /// Market-data messages published.
    pub md_messages: AtomicU64,
    /// Retransmit requests answered.
    pub retransmit_requests: AtomicU64,
    /// Messages resent by retransmission.
    pub retransmitted: AtomicU64,
    /// Connections closed because the client read too slowly.
    pub slow_consumers: AtomicU64,
    /// Sessions logged on now.
    pub sessions: AtomicU64,
    // ---- gateway ----
    /// Connections accepted since start.
    pub connections_total: AtomicU64,
    /// Connections open now.
    pub connections_open: AtomicU64,
    /// Frames refused by the decoder.
    pub malformed_frames: AtomicU64,
    /// Connections closed for idleness.
    pub idle_timeouts: AtomicU64,
    /// Bytes read from order-entry connections.
    pub tcp_bytes_in: AtomicU64,
    /// Occupancy of the gateway -> engine and engine -> publisher rings.
    pub rings: OnceLock<(Gauge, Gauge)>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Zeroed counters.
    pub fn new() -> Self {
        Metrics {
            started: Instant::now(),
            commands: counters(),
            journal_records: AtomicU64::new(0),
            journal_bytes: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            fsync_ns_total: AtomicU64::new(0),
            fsync_ns_max: AtomicU64::new(0),
            fsync_buckets: counters(),
            snapshots: AtomicU64::new(0),
            last_snapshot_seq: AtomicU64::new(0),
            journal_seq: AtomicU64::new(0),
            engine_latency: Mutex::new(new_histogram()),
            reports_out: AtomicU64::new(0),
            rejects: counters(),
            tcp_bytes_out: AtomicU64::new(0),
            datagrams_sent: AtomicU64::new(0),
            datagrams_failed: AtomicU64::new(0),
            md_messages: AtomicU64::new(0),
            retransmit_requests: AtomicU64::new(0),
            retransmitted: AtomicU64::new(0),
            slow_consumers: AtomicU64::new(0),
            sessions: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            connections_open: AtomicU64::new(0),
            malformed_frames: AtomicU64::new(0),
            idle_timeouts: AtomicU64::new(0),
            tcp_bytes_in: AtomicU64::new(0),
            rings: OnceLock::new(),
        }
    }

    /// Every counter as `(name, value)`, for `Server::stats` and the Python `stats()`.
    pub fn values(&self) -> Vec<(String, u64)> {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut v: Vec<(String, u64)> = Vec::new();
        let mut total = 0;
        for (i, name) in COMMAND_TYPES.iter().enumerate() {
            let n = g(&self.commands[i]);
            total += n;
            v.push((format!("commands_{name}"), n));
        }
        v.push(("commands".into(), total));
        let mut rejects = 0;
        for (i, c) in self.rejects.iter().enumerate() {
            let n = g(c);
            rejects += n;
            if n > 0 {
                let name = Reason::from_u8(i as u8).map_or("UNKNOWN", Reason::name);
                v.push((format!("rejects_{}", name.to_ascii_lowercase()), n));
            }
        }
        v.push(("rejects".into(), rejects));
        for (name, a) in [
            ("journal_records", &self.journal_records),
            ("journal_bytes", &self.journal_bytes),
            ("journal_seq", &self.journal_seq),
            ("fsyncs", &self.fsyncs),
            ("fsync_ns_total", &self.fsync_ns_total),
            ("fsync_ns_max", &self.fsync_ns_max),
            ("snapshots", &self.snapshots),
            ("last_snapshot_seq", &self.last_snapshot_seq),
            ("reports_out", &self.reports_out),
            ("tcp_bytes_out", &self.tcp_bytes_out),
            ("tcp_bytes_in", &self.tcp_bytes_in),
            ("datagrams_sent", &self.datagrams_sent),
            ("datagrams_failed", &self.datagrams_failed),
            ("md_messages", &self.md_messages),
            ("retransmit_requests", &self.retransmit_requests),
            ("retransmitted", &self.retransmitted),
            ("slow_consumers", &self.slow_consumers),
            ("sessions", &self.sessions),
            ("connections_total", &self.connections_total),
            ("connections_open", &self.connections_open),
            ("malformed_frames", &self.malformed_frames),
            ("idle_timeouts", &self.idle_timeouts),
        ] {
            v.push((name.into(), g(a)));
        }
        if let Some((a, b)) = self.rings.get() {
            v.push(("ring_in_len".into(), a.len() as u64));
            v.push(("ring_out_len".into(), b.len() as u64));
            v.push(("ring_capacity".into(), a.capacity() as u64));
        }
        if let Ok(h) = self.engine_latency.lock() {
            v.push(("engine_latency_count".into(), h.len()));
            for (q, name) in [(0.5, "p50"), (0.99, "p99"), (0.999, "p999")] {
                v.push((format!("engine_latency_ns_{name}"), h.value_at_quantile(q)));
            }
            v.push(("engine_latency_ns_max".into(), h.max()));
        }
        v
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut s = String::with_capacity(8192);
        let head = |s: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(
                s,
                "# HELP tradecore_{name} {help}\n# TYPE tradecore_{name} {kind}"
            );
        };
        head(
            &mut s,
            "commands_total",
            "counter",
            "Commands journaled and applied by the engine, by type.",
        );
        for (i, name) in COMMAND_TYPES.iter().enumerate() {
            let _ = writeln!(
                s,
                "tradecore_commands_total{{type=\"{name}\"}} {}",
                g(&self.commands[i])
            );
        }
        head(
            &mut s,
            "rejects_total",
            "counter",
            "REJECTED execution reports sent, by reason.",
        );
        for (i, c) in self.rejects.iter().enumerate() {
            let name = Reason::from_u8(i as u8).map_or("UNKNOWN", Reason::name);
            let _ = writeln!(s, "tradecore_rejects_total{{reason=\"{name}\"}} {}", g(c));
        }
        let simple: [(&str, &str, &str, &AtomicU64); 20] = [
            (
                "reports_out_total",
                "counter",
                "Sequenced execution reports written to sessions.",
                &self.reports_out,
            ),
            (
                "tcp_bytes_out_total",
                "counter",
                "Bytes written to order-entry connections.",
                &self.tcp_bytes_out,
            ),
            (
                "tcp_bytes_in_total",
                "counter",
                "Bytes read from order-entry connections.",
                &self.tcp_bytes_in,
            ),
            (
                "malformed_frames_total",
                "counter",
                "Frames the decoder refused.",
                &self.malformed_frames,
            ),
            (
                "connections_total",
                "counter",
                "Order-entry connections accepted.",
                &self.connections_total,
            ),
            (
                "connections_open",
                "gauge",
                "Order-entry connections open.",
                &self.connections_open,
            ),
            ("sessions", "gauge", "Sessions logged on.", &self.sessions),
            (
                "idle_timeouts_total",
                "counter",
                "Connections closed after the idle timeout.",
                &self.idle_timeouts,
            ),
            (
                "slow_consumers_total",
                "counter",
                "Connections closed because the client read too slowly.",
                &self.slow_consumers,
            ),
            (
                "journal_records_total",
                "counter",
                "Journal records appended since start.",
                &self.journal_records,
            ),
            (
                "journal_bytes_total",
                "counter",
                "Journal bytes written since start.",
                &self.journal_bytes,
            ),
            (
                "journal_seq",
                "gauge",
                "Last journal sequence number appended.",
                &self.journal_seq,
            ),
            (
                "snapshots_total",
                "counter",
                "Snapshots written.",
                &self.snapshots,
            ),
            (
                "last_snapshot_seq",
                "gauge",
                "Journal sequence number covered by the last snapshot.",
                &self.last_snapshot_seq,
            ),
            (
                "datagrams_sent_total",
                "counter",
                "UDP feed datagrams sent, heartbeats included.",
                &self.datagrams_sent,
            ),
            (
                "datagrams_failed_total",
                "counter",
                "UDP feed datagrams the socket refused.",
                &self.datagrams_failed,
            ),
            (
                "md_messages_total",
                "counter",
                "Market-data messages published.",
                &self.md_messages,
            ),
            (
                "retransmit_requests_total",
                "counter",
                "Retransmit requests answered.",
                &self.retransmit_requests,
            ),
            (
                "retransmitted_total",
                "counter",
                "Messages resent by retransmission.",
                &self.retransmitted,
            ),
            ("fsyncs_total", "counter", "Journal syncs.", &self.fsyncs),
        ];
        for (name, kind, help, a) in simple {
            head(&mut s, name, kind, help);
            let _ = writeln!(s, "tradecore_{name} {}", g(a));
        }
        head(
            &mut s,
            "fsync_seconds",
            "histogram",
            "Journal sync latency.",
        );
        let mut cum = 0u64;
        for (i, b) in self.fsync_buckets.iter().enumerate() {
            cum += g(b);
            if i + 1 < FsyncHistogram::BUCKETS {
                let le = FsyncHistogram::bucket_upper_ns(i) as f64 / 1e9;
                let _ = writeln!(s, "tradecore_fsync_seconds_bucket{{le=\"{le}\"}} {cum}");
            }
        }
        let _ = writeln!(s, "tradecore_fsync_seconds_bucket{{le=\"+Inf\"}} {cum}");
        let _ = writeln!(
            s,
            "tradecore_fsync_seconds_sum {}\ntradecore_fsync_seconds_count {cum}",
            g(&self.fsync_ns_total) as f64 / 1e9
        );
        head(
            &mut s,
            "ring_occupancy",
            "gauge",
            "Messages waiting in each ring (in: gateway to engine, out: engine to publisher).",
        );
        if let Some((a, b)) = self.rings.get() {
            let _ = writeln!(s, "tradecore_ring_occupancy{{ring=\"in\"}} {}", a.len());
            let _ = writeln!(s, "tradecore_ring_occupancy{{ring=\"out\"}} {}", b.len());
            head(&mut s, "ring_capacity", "gauge", "Slots of each ring.");
            let _ = writeln!(s, "tradecore_ring_capacity {}", a.capacity());
        }
        head(
            &mut s,
            "engine_latency_seconds",
            "histogram",
            "Time for the engine to journal and apply one command.",
        );
        if let Ok(h) = self.engine_latency.lock() {
            for le_ns in [
                250u64, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 1_000_000,
                10_000_000,
            ] {
                let n = h.count_between(0, le_ns);
                let _ = writeln!(
                    s,
                    "tradecore_engine_latency_seconds_bucket{{le=\"{}\"}} {n}",
                    le_ns as f64 / 1e9
                );
            }
            let _ = writeln!(
                s,
                "tradecore_engine_latency_seconds_bucket{{le=\"+Inf\"}} {}",
                h.len()
            );
            let sum = h.mean() * h.len() as f64 / 1e9;
            let _ = writeln!(
                s,
                "tradecore_engine_latency_seconds_sum {sum}\ntradecore_engine_latency_seconds_count {}",
                h.len()
            );
        }
        head(
            &mut s,
            "uptime_seconds",
            "gauge",
            "Seconds since the server started.",
        );
        let _ = writeln!(
            s,
            "tradecore_uptime_seconds {}",
            self.started.elapsed().as_secs_f64()
        );
        s
    }
}

/// The engine latency histogram: 1 ns to 60 s, 3 significant digits (about 30 KiB).
pub fn new_histogram() -> Histogram<u64> {
    #[allow(
        clippy::expect_used,
        reason = "constant bounds that hdrhistogram always accepts"
    )]
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("constant histogram bounds")
}

/// Serves `GET /metrics` on `listener` until `stop` is set; polls for connections every
/// 10 ms (the listener is non-blocking).
pub fn serve_http(listener: TcpListener, metrics: Arc<Metrics>, stop: Arc<AtomicBool>) {
    let _ = listener.set_nonblocking(true);
    while !stop.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
                let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
                let mut req = [0u8; 8192];
                let mut n = 0;
                while n < req.len() {
                    match stream.read(&mut req[n..]) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => n += k,
                    }
                    if req[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                let line = req[..n].split(|&b| b == b'\n').next().unwrap_or(&[]);
                let mut parts = line.split(|&b| b == b' ');
                let (method, path) = (parts.next(), parts.next());
                let (status, body, ctype) = match (method, path) {
                    (Some(b"GET"), Some(p)) if p == b"/metrics" || p.starts_with(b"/metrics?") => (
                        "200 OK",
                        metrics.render(),
                        "text/plain; version=0.0.4; charset=utf-8",
                    ),
                    (Some(b"GET"), Some(b"/")) => (
                        "200 OK",
                        "tradecore venue: metrics at /metrics\n".to_owned(),
                        "text/plain",
                    ),
                    (Some(b"GET"), _) => ("404 Not Found", "not found\n".into(), "text/plain"),
                    _ => ("405 Method Not Allowed", "only GET\n".into(), "text/plain"),
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(resp.as_bytes());
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}
