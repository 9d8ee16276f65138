//! Proof of the load generator (`crates/engine/src/loadgen`) against the real venue server
//! (`server::Server`, in process, on 127.0.0.1 port 0 with a journal in a temp dir):
//!
//! * short open-loop and closed-loop runs pass every check of the report (every command got
//!   its first report, per-session report numbers contiguous, no unexpected reject, fills
//!   balanced), and the counts agree with an independent reading of the `--report-log` CSV
//!   and with the venue's own state (nothing rests after the sessions log out, since the
//!   config cancels on disconnect);
//! * sessions sharing an account see each other's reports and still match their own;
//! * the event loop allocates nothing per message: a counting allocator (counting only on the
//!   thread that runs the load) sees the same number of allocations for runs of 3,000 and
//!   15,000 commands;
//! * the checks can fail: prices outside the venue's band give unexpected rejects, and a venue
//!   that stops in the middle of a run gives disconnects and unanswered commands, reported in
//!   the result (not a panic or an error), with the report log still written.
//!
//! Runs are short (about a second each) and rates modest, so timing never decides a result;
//! speed is measured by `bench/loadgen_bench.py`.

#![allow(
    unsafe_code,
    reason = "the counting global allocator forwards to System; see its SAFETY comment"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use tradecore_engine::config::{api_key_sha256, to_hex, Config};
use tradecore_engine::loadgen::{self, Options, Report};
use tradecore_engine::server::{Server, ServerOptions};

const ACCOUNTS: u32 = 4;

/// Counts allocations made on threads that set `COUNTING` (the load runs on the test thread;
/// the server's threads are not counted).
struct CountingAlloc;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// thread-local `Cell` with a const initialiser, so counting never allocates or recurses.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: the caller's contract is passed on to `System`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn config_text(dir: &Path) -> String {
    let accounts: String = (1..=ACCOUNTS)
        .map(|a| {
            format!(
                "[[account]]\naccount = {a}\napi_key_sha256 = \"{}\"\n\n",
                to_hex(&api_key_sha256(&format!("lg-key-{a}")))
            )
        })
        .collect();
    format!(
        r#"
[listen]
order_entry = "127.0.0.1:0"
metrics = "127.0.0.1:0"

[session]
rate_limit_per_sec = 1000000000
rate_limit_burst = 1000000000
heartbeat_ms = 1000
idle_timeout_ms = 10000
cancel_on_disconnect = true

[journal]
dir = "{}"
fsync = "none"
snapshot_every = 0

[feed]
enabled = false

[[instrument]]
symbol_id = 1
symbol = "AAA"
tick_size = "0.01"
lot_size = "1"
price_band = {{ lo_ticks = 9000, hi_ticks = 11000 }}
max_order_qty = 1000
book_capacity = 65536

[[instrument]]
symbol_id = 2
symbol = "BBB"
tick_size = "0.01"
lot_size = "1"
price_band = {{ lo_ticks = 4000, hi_ticks = 6000 }}
max_order_qty = 1000
book_capacity = 65536

{accounts}"#,
        dir.display()
    )
}

struct Venue {
    tmp: tempfile::TempDir,
    config_path: std::path::PathBuf,
    server: Option<Server>,
}

impl Venue {
    fn start() -> Venue {
        let tmp = tempfile::tempdir().unwrap();
        let text = config_text(&tmp.path().join("journal"));
        let config_path = tmp.path().join("venue.toml");
        std::fs::write(&config_path, &text).unwrap();
        let config = Config::load(&config_path).unwrap();
        let server = Server::start(
            config,
            ServerOptions {
                config_text: Some(text),
                log: false,
            },
        )
        .unwrap();
        Venue {
            tmp,
            config_path,
            server: Some(server),
        }
    }

    fn addr(&self) -> String {
        self.server.as_ref().unwrap().order_entry_addr().to_string()
    }

    fn options(&self, sessions: u32) -> Options {
        Options {
            config: Some(self.config_path.clone()),
            connect: Some(self.addr()),
            accounts: (1..=ACCOUNTS).map(|a| format!("{a}:lg-key-{a}")).collect(),
            sessions: Some(sessions),
            duration: Some(1.0),
            drain_timeout: Some(10.0),
            ..Options::default()
        }
    }
}

fn run(o: &Options) -> Report {
    loadgen::run(&o.resolve().unwrap()).unwrap()
}

/// One parsed line of the report log.
#[derive(Debug)]
struct Row {
    session: u32,
    seq: u64,
    kind: String,
    reason: String,
    coid: u64,
    liquidity: String,
    qty: u64,
    leaves: u64,
}

fn read_log(path: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "session,account,seq,kind,reason,client_order_id,order_id,symbol_id,side,liquidity,\
         price,qty,leaves"
    );
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 13, "{l}");
            Row {
                session: f[0].parse().unwrap(),
                seq: f[2].parse().unwrap(),
                kind: f[3].to_owned(),
                reason: f[4].to_owned(),
                coid: f[5].parse().unwrap(),
                liquidity: f[9].to_owned(),
                qty: f[11].parse().unwrap(),
                leaves: f[12].parse().unwrap(),
            }
        })
        .collect()
}

/// Checks the log on its own terms and against the report's counters.
fn check_log(rows: &[Row], r: &Report, sessions: u32) {
    let c = &r.counters;
    assert_eq!(rows.len() as u64, c.reports_total());
    // Report numbers: contiguous from 1 on every session (fresh accounts, fresh venue).
    let mut next: HashMap<u32, u64> = HashMap::new();
    for row in rows {
        let n = next.entry(row.session).or_insert(1);
        assert_eq!(row.seq, *n, "session {} seq", row.session);
        *n += 1;
    }
    assert_eq!(next.len() as u32, sessions, "every session got reports");
    // Owned reports only (a session also sees its account's other sessions' orders).
    let owned: Vec<&Row> = rows
        .iter()
        .filter(|row| (row.coid >> 48) == u64::from(row.session) + 1)
        .collect();
    let count = |kind: &str| owned.iter().filter(|r| r.kind == kind).count() as u64;
    let sent = &c.sent;
    // Every new order (add + aggressive) got exactly one ACCEPTED or REJECTED.
    let new_orders = sent[0] + sent[1];
    let accepted = count("ACCEPTED");
    let rejected = count("REJECTED");
    assert!(accepted <= new_orders);
    // First reports: one per command.
    assert_eq!(
        accepted
            + rejected
            + count("REPLACED")
            + owned
                .iter()
                .filter(|r| r.kind == "CANCELLED" && r.reason == "USER")
                .count() as u64,
        c.sent_total()
    );
    // Rejects are only the expected race (cancel/modify of an order a fill just removed).
    assert!(owned
        .iter()
        .filter(|r| r.kind == "REJECTED")
        .all(|r| r.reason == "UNKNOWN_ORDER"));
    // Fills balance and every maker report names an order that was accepted first.
    let mut accepted_ids = HashSet::new();
    let (mut maker, mut taker) = (0u64, 0u64);
    for r in &owned {
        match r.kind.as_str() {
            "ACCEPTED" => {
                assert!(accepted_ids.insert(r.coid), "id accepted twice");
                assert_eq!(r.leaves, r.qty);
            }
            "FILL" => {
                assert!(accepted_ids.contains(&r.coid), "fill before accept");
                if r.liquidity == "MAKER" {
                    maker += r.qty;
                } else {
                    taker += r.qty;
                }
            }
            _ => {}
        }
    }
    assert_eq!(maker, taker);
    assert!(maker > 0, "the mix trades");
}

#[test]
fn open_loop_run_is_consistent_with_its_log_and_the_venue() {
    let mut v = Venue::start();
    let log = v.tmp.path().join("reports.csv");
    let o = Options {
        rate: Some("20000".into()),
        report_log: Some(log.clone()),
        warmup: Some(0.2),
        ..v.options(ACCOUNTS)
    };
    let r = run(&o);
    assert!(r.ok(), "{}", r.summary());
    let c = &r.counters;
    assert_eq!(c.sent_total(), 20_000, "the schedule is kept whole");
    assert_eq!(c.answered, c.sent, "every command answered");
    assert_eq!(c.unanswered, 0);
    assert_eq!(c.foreign, 0, "one session per account");
    assert!(
        c.sent.iter().all(|&n| n > 0),
        "every kind of the mix is sent"
    );
    assert!(r.latency.count > 0 && r.latency.p50 <= r.latency.p99);
    assert!(r.latency.p99 <= r.latency.max);
    // The JSON carries the same figures.
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["counts"]["sent_total"], c.sent_total());
    assert_eq!(json["latency_ns"]["all"]["p99"], r.latency.p99);
    assert!(json["latency_curve_ns"].as_array().unwrap().len() > 5);
    check_log(&read_log(&log), &r, ACCOUNTS);
    // After Logout, cancel-on-disconnect leaves nothing resting.
    let summary = v.server.take().unwrap().stop().unwrap();
    assert_eq!(summary.live_orders, 0);
}

#[test]
fn closed_loop_and_shared_accounts() {
    let v = Venue::start();
    let log = v.tmp.path().join("reports.csv");
    // 8 sessions on 4 accounts: each session also receives its sibling's reports.
    let o = Options {
        rate: Some("max".into()),
        window: Some(32),
        report_log: Some(log.clone()),
        ..v.options(8)
    };
    let r = run(&o);
    assert!(r.ok(), "{}", r.summary());
    let c = &r.counters;
    assert!(c.sent_total() > 1000, "{}", r.summary());
    assert_eq!(c.answered_total(), c.sent_total());
    assert!(c.foreign > 0, "sibling sessions share the account's stream");
    check_log(&read_log(&log), &r, 8);
}

#[test]
fn checks_fail_on_unexpected_rejects() {
    let v = Venue::start();
    // Without the config the generator cannot know the band: a mid of 20000 ticks puts every
    // order of instrument 1 outside [9000, 11000].
    let o = Options {
        config: None,
        symbols: vec!["1:20000".into()],
        rate: Some("2000".into()),
        duration: Some(0.3),
        ..v.options(2)
    };
    let r = run(&o);
    assert!(!r.ok());
    let c = &r.counters;
    assert!(c.rejects[tradecore_book::Reason::PriceOutOfBand as usize] > 0);
    // Cancels sent before their order's reject arrived are the allowed UNKNOWN_ORDER.
    let unknown = c.rejects[tradecore_book::Reason::UnknownOrder as usize];
    assert_eq!(c.unexpected_rejects, c.rejects_total() - unknown);
    assert!(r
        .failed_checks()
        .iter()
        .any(|f| f.starts_with("unexpected_rejects=")));
    // Everything still answered: the rejects are the answers.
    assert_eq!(c.unanswered, 0);
}

#[test]
fn a_venue_that_stops_mid_run_is_reported_not_fatal() {
    let mut v = Venue::start();
    let log = v.tmp.path().join("reports.csv");
    let o = Options {
        rate: Some("20000".into()),
        duration: Some(3.0),
        drain_timeout: Some(0.5),
        report_log: Some(log.clone()),
        ..v.options(2)
    };
    let settings = o.resolve().unwrap();
    let server = v.server.take().unwrap();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(800));
        server.stop().unwrap()
    });
    let r = loadgen::run(&settings).unwrap();
    stopper.join().unwrap();
    assert!(!r.ok());
    let c = &r.counters;
    assert_eq!(c.disconnects, 2, "{}", r.summary());
    assert!(c.sent_total() > 0 && c.sent_total() < 60_000);
    assert!(
        c.skipped > 0,
        "the rest of the schedule had no session to go to"
    );
    // The log holds what arrived before the stop, whole lines only.
    let rows = read_log(&log);
    assert_eq!(rows.len() as u64, c.reports_total());
    assert!(!r.counters.notes.is_empty());
}

#[test]
fn the_event_loop_allocates_nothing_per_message() {
    let v = Venue::start();
    let mut counts = Vec::new();
    for duration in [0.3, 1.5] {
        let o = Options {
            rate: Some("10000".into()),
            duration: Some(duration),
            ..v.options(2)
        };
        let settings = o.resolve().unwrap();
        COUNTING.with(|c| c.set(true));
        let before = ALLOCS.with(Cell::get);
        let r = loadgen::run(&settings).unwrap();
        let allocs = ALLOCS.with(Cell::get) - before;
        COUNTING.with(|c| c.set(false));
        assert!(r.ok(), "{}", r.summary());
        counts.push((r.counters.sent_total() + r.counters.reports_total(), allocs));
    }
    eprintln!("(messages, allocations) per run: {counts:?}");
    let (short, long) = (counts[0], counts[1]);
    assert!(long.0 >= short.0 + 10_000, "{counts:?}");
    // Set-up (buffers, histograms, connections) and the report are the same size for both
    // runs; a few allocations of slack cover the report's latency curve, whose length
    // depends on the distribution. One allocation per 100 messages would be 100+ more.
    assert!(
        long.1 <= short.1 + 50,
        "allocations grew with the message count: {counts:?}"
    );
}
