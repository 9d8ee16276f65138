//! Proof of the venue server (`crates/engine/src/server`) on real sockets (127.0.0.1, port 0)
//! and real journal directories (temp dirs):
//!
//! * two accounts log on and trade; each session receives its account's reports in order,
//!   numbered 1, 2, 3 ..., with the right liquidity flags;
//! * a plain UDP socket subscribed to the unicast feed rebuilds the L2 book from the datagrams
//!   and ends equal to the venue's book (read back from the final snapshot), with the channel
//!   numbers gap-free; the drop-copy channel carries every report;
//! * retransmission over TCP: reports (channel 0) and feed messages resent unchanged, and the
//!   `PARTIAL` / `UNAVAILABLE` / `UNKNOWN_CHANNEL` statuses;
//! * restart: the same directory gives the same state hash, the report stream and the feed
//!   numbering continue, and the hash equals a fresh replay of the whole journal;
//! * graceful stop: quick, final snapshot written, connections closed;
//! * bad input: random bytes, oversized lengths, unknown types, bad enums up to the limit,
//!   orders before logon, cancels of another account's order: each gets its reject, the
//!   connection is closed where the spec says, and no malformed frame reaches the journal
//!   or the books;
//! * heartbeats, idle timeout and cancel-on-disconnect, seen by a second session of the same
//!   account; `/metrics` over HTTP;
//! * `fsync = always`: reports flow (each held until its command is synced);
//! * periodic snapshots with retention, fallback from a damaged newest snapshot to the previous
//!   one plus the journal after it, a torn journal tail reported, same state hash;
//! * a client that never reads is disconnected (slow consumer) while the venue keeps serving.
//!
//! Every test runs twice: with the threaded pipeline (the default) and, in `mod inline`, with
//! `pipeline.mode = "inline"` (one thread runs the three stages).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use tradecore_book::{EventKind, L2Book, Matching, Reason, Side};
use tradecore_engine::codec::{
    decode_datagram, decode_from_venue, ApiKey, Cancel, ExecutionReport, Heartbeat, Liquidity,
    Logon, LogonAck, Logout, Message, NewOrder, RetransmitRequest, RetransmitStatus,
    MAX_DATAGRAM_LEN,
};
use tradecore_engine::config::{api_key_sha256, to_hex, Config};
use tradecore_engine::journal::{format::decode_snapshot, list_snapshots};
use tradecore_engine::server::{replay_journal, ReplayOptions, Server, ServerOptions};
use tradecore_engine::venue::{limit_order, Venue};

const WAIT: Duration = Duration::from_secs(10);

thread_local! {
    /// `pipeline.mode` of the venues this test thread starts (the `inline` module's tests set
    /// it before calling the test they repeat).
    static MODE: std::cell::Cell<&'static str> = const { std::cell::Cell::new("threads") };
}

/// Each test again with `pipeline.mode = "inline"`.
mod inline {
    macro_rules! inline_too {
        ($($name:ident),* $(,)?) => {$(
            #[test]
            fn $name() {
                super::MODE.with(|m| m.set("inline"));
                super::$name();
            }
        )*};
    }
    inline_too!(
        two_accounts_trade_feed_and_retransmission,
        restart_continues_streams_and_matches_replay,
        bad_input_is_rejected_and_closes_where_the_spec_says,
        heartbeats_idle_timeout_and_cancel_on_disconnect,
        fsync_always_holds_reports_until_durable_and_still_flows,
        periodic_snapshots_fallback_and_torn_tail,
        a_client_that_does_not_read_is_disconnected_not_waited_for,
    );
}

fn config_text(dir: &Path, feed_port: u16, session_extra: &str) -> String {
    let accounts: String = (1..=3)
        .map(|a| {
            format!(
                "[[account]]\naccount = {a}\napi_key_sha256 = \"{}\"\n\n",
                to_hex(&api_key_sha256(&format!("key-{a}")))
            )
        })
        .collect();
    let mut session = session_extra.to_owned();
    for (k, val) in [
        ("heartbeat_ms", "1000"),
        ("idle_timeout_ms", "10000"),
        ("max_malformed", "3"),
    ] {
        if !session_extra.contains(k) {
            session.push_str(&format!("\n{k} = {val}"));
        }
    }
    format!(
        r#"
[listen]
order_entry = "127.0.0.1:0"
metrics = "127.0.0.1:0"

[session]
{session}

[journal]
dir = "{}"
fsync = "none"
snapshot_every = 0
segment_size = 65536

[pipeline]
mode = "{mode}"

[feed]
mode = "unicast"
address = "127.0.0.1:{feed_port}"
heartbeat_ms = 50
report_channel = 2

[[instrument]]
symbol_id = 1
symbol = "AAA"
tick_size = "0.01"
lot_size = "1"
price_band = {{ lo_ticks = 1, hi_ticks = 100000 }}
max_order_qty = 1000000
book_capacity = 4096

[[instrument]]
symbol_id = 2
symbol = "BBB"
tick_size = "0.01"
lot_size = "1"
price_band = {{ lo_ticks = 1, hi_ticks = 100000 }}
max_order_qty = 1000000
book_capacity = 4096

{accounts}"#,
        dir.display(),
        mode = MODE.with(std::cell::Cell::get),
    )
}

struct Venue1 {
    _tmp: tempfile::TempDir,
    text: String,
    config: Config,
    feed: UdpSocket,
}

impl Venue1 {
    fn new(session_extra: &str) -> Venue1 {
        let tmp = tempfile::tempdir().unwrap();
        let feed = UdpSocket::bind("127.0.0.1:0").unwrap();
        feed.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let port = feed.local_addr().unwrap().port();
        let text = config_text(&tmp.path().join("journal"), port, session_extra);
        let config = Config::from_toml_str(&text).unwrap();
        Venue1 {
            _tmp: tmp,
            text,
            config,
            feed,
        }
    }

    fn start(&self) -> Server {
        Server::start(
            self.config.clone(),
            ServerOptions {
                config_text: Some(self.text.clone()),
                log: false,
            },
        )
        .unwrap()
    }

    fn dir(&self) -> &Path {
        &self.config.journal.dir
    }

    /// The venue as of the newest snapshot (the final one after a stop).
    fn snapshot_venue(&self) -> Venue {
        let (seq, path) = list_snapshots(self.dir()).unwrap().pop().unwrap();
        let bytes = std::fs::read(path).unwrap();
        let (_, body) = decode_snapshot(&bytes, seq).unwrap();
        Venue::restore(&self.config, body).unwrap()
    }
}

struct Client {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.set_nodelay(true).unwrap();
        Client { s, buf: Vec::new() }
    }

    fn send(&mut self, m: impl Into<Message>) {
        let m = m.into();
        let mut b = [0u8; 128];
        let n = m.encode(&mut b).unwrap();
        self.s.write_all(&b[..n]).unwrap();
    }

    fn send_raw(&mut self, b: &[u8]) {
        self.s.write_all(b).unwrap();
    }

    /// The next frame, or `None` when the venue closed the connection.
    fn next(&mut self) -> Option<Message> {
        loop {
            match decode_from_venue(&self.buf) {
                Ok((m, n)) => {
                    self.buf.drain(..n);
                    return Some(m);
                }
                Err(e) if e.is_incomplete() => {}
                Err(e) => panic!("venue sent a bad frame: {e}"),
            }
            let mut tmp = [0u8; 4096];
            match self.s.read(&mut tmp) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    panic!("no frame from the venue within {WAIT:?}")
                }
                Err(_) => return None,
            }
        }
    }

    /// The next frame that is not a heartbeat.
    fn recv(&mut self) -> Message {
        loop {
            match self.next() {
                Some(Message::VenueHeartbeat(_)) => {}
                Some(m) => return m,
                None => panic!("connection closed while waiting for a frame"),
            }
        }
    }

    fn report(&mut self) -> ExecutionReport {
        match self.recv() {
            Message::ExecutionReport(r) => r,
            other => panic!("expected an execution report, got {other:?}"),
        }
    }

    fn logon(&mut self, account: u32) -> LogonAck {
        self.send(Logon {
            account,
            api_key: ApiKey::new(&format!("key-{account}")).unwrap(),
            heartbeat_ms: 1000,
        });
        match self.recv() {
            Message::LogonAck(a) => a,
            other => panic!("expected LogonAck, got {other:?}"),
        }
    }

    /// Reads until the venue closes; returns the non-heartbeat frames seen meanwhile.
    fn until_closed(&mut self) -> Vec<Message> {
        let mut seen = Vec::new();
        while let Some(m) = self.next() {
            if !matches!(m, Message::VenueHeartbeat(_)) {
                seen.push(m);
            }
        }
        seen
    }
}

fn order(coid: u64, symbol: u32, side: Side, price: i64, qty: u64) -> NewOrder {
    limit_order(coid, symbol, side, price, qty)
}

/// Receives feed datagrams until `done` says so; returns every (channel, seq, message).
fn read_feed(
    sock: &UdpSocket,
    mut done: impl FnMut(&[(u32, u64, Message)]) -> bool,
) -> Vec<(u32, u64, Message)> {
    let t0 = Instant::now();
    let mut all = Vec::new();
    let mut buf = [0u8; MAX_DATAGRAM_LEN + 64];
    while !done(&all) {
        assert!(t0.elapsed() < WAIT, "feed: condition not met, got {all:?}");
        if let Ok(n) = sock.recv(&mut buf) {
            let dg = decode_datagram(&buf[..n]).unwrap();
            for (seq, m) in &dg {
                all.push((dg.header.channel, seq, m));
            }
        }
    }
    all
}

fn stats(server: &Server) -> BTreeMap<String, u64> {
    server.stats().into_iter().collect()
}

/// Waits until the server's counter `name` reaches `want` (counters are a few ms stale).
fn wait_stat(server: &Server, name: &str, want: u64) {
    let t0 = Instant::now();
    while stats(server).get(name).copied().unwrap_or(0) < want {
        assert!(
            t0.elapsed() < WAIT,
            "{name} never reached {want}: {:?}",
            stats(server)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn two_accounts_trade_feed_and_retransmission() {
    let v = Venue1::new("cancel_on_disconnect = false");
    let server = v.start();
    let addr = server.order_entry_addr();
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    let ack_a = a.logon(1);
    let ack_b = b.logon(2);
    assert_eq!((ack_a.next_seq, ack_b.next_seq), (1, 1));
    assert_ne!(ack_a.session_id, ack_b.session_id);
    assert_eq!(ack_a.heartbeat_ms, 1000);

    a.send(order(11, 1, Side::Buy, 100, 10));
    let r = a.report();
    assert_eq!(
        (r.seq, r.kind, r.client_order_id, r.qty, r.leaves),
        (1, EventKind::Accepted, 11, 10, 10)
    );
    b.send(order(21, 1, Side::Sell, 100, 4));
    let r1 = b.report();
    let r2 = b.report();
    assert_eq!((r1.seq, r1.kind), (1, EventKind::Accepted));
    assert_eq!(
        (r2.seq, r2.kind, r2.liquidity, r2.price, r2.qty, r2.leaves),
        (2, EventKind::Fill, Liquidity::Taker, 100, 4, 0)
    );
    let m = a.report();
    assert_eq!(
        (
            m.seq,
            m.kind,
            m.liquidity,
            m.client_order_id,
            m.qty,
            m.leaves
        ),
        (2, EventKind::Fill, Liquidity::Maker, 11, 4, 6)
    );
    // More resting orders on both books, both sides.
    a.send(order(12, 1, Side::Buy, 99, 5));
    a.send(order(13, 2, Side::Buy, 500, 7));
    b.send(order(22, 1, Side::Sell, 105, 3));
    b.send(order(23, 2, Side::Sell, 510, 9));
    b.send(order(24, 1, Side::Sell, 101, 2));
    for want in 3..=4 {
        assert_eq!(a.report().seq, want);
    }
    for want in 3..=5 {
        assert_eq!(b.report().seq, want);
    }
    // A cancel of the other account's order is UNKNOWN_ORDER, and changes nothing.
    b.send(Cancel {
        client_order_id: 12,
        symbol_id: 1,
    });
    let r = b.report();
    assert_eq!(
        (r.seq, r.kind, r.reason),
        (6, EventKind::Rejected, Reason::UnknownOrder)
    );

    // Feed: trade + book updates; rebuild the books from channel 1.
    let feed = read_feed(&v.feed, |all| {
        all.iter().filter(|(c, _, _)| *c == 2).count() >= 10
            && all.iter().filter(|(c, _, _)| *c == 1).count() >= 8
    });
    let mut books: BTreeMap<u32, L2Book> = BTreeMap::new();
    let mut next = BTreeMap::from([(1u32, 1u64), (2, 1)]);
    let mut trades = 0;
    for (ch, seq, m) in &feed {
        assert_eq!(*seq, next[ch], "channel {ch} numbers are gap-free");
        *next.get_mut(ch).unwrap() += 1;
        match m {
            Message::BookUpdate(u) => {
                assert_eq!(*ch, 1);
                books
                    .entry(u.symbol_id)
                    .or_default()
                    .set(u.side, u.price, u.qty);
            }
            Message::Trade(t) => {
                assert_eq!((*ch, t.price, t.qty, t.aggressor), (1, 100, 4, Side::Sell));
                trades += 1;
            }
            Message::FeedReport(r) => assert_eq!(*ch, 2, "{r:?}"),
            other => panic!("unexpected feed message {other:?}"),
        }
    }
    assert_eq!(trades, 1);
    let drop_copy: Vec<(u32, u64)> = feed
        .iter()
        .filter_map(|(_, _, m)| match m {
            Message::FeedReport(r) => Some((r.account, r.seq)),
            _ => None,
        })
        .collect();
    assert_eq!(
        drop_copy,
        [
            (1, 1),
            (2, 1),
            (2, 2),
            (1, 2),
            (1, 3),
            (1, 4),
            (2, 3),
            (2, 4),
            (2, 5),
            (2, 6)
        ]
    );

    // Retransmission: channel 0 (a's own stream), channel 1 (market data), bad channels.
    a.send(RetransmitRequest {
        channel: 0,
        from_seq: 2,
        count: 10,
    });
    match a.recv() {
        Message::RetransmitReply(r) => {
            assert_eq!(
                (r.status, r.count, r.requested, r.next_seq),
                (RetransmitStatus::Partial, 3, 10, 5)
            );
        }
        other => panic!("{other:?}"),
    }
    let again: Vec<u64> = (0..3).map(|_| a.report().seq).collect();
    assert_eq!(again, [2, 3, 4]);
    a.send(RetransmitRequest {
        channel: 1,
        from_seq: 1,
        count: 3,
    });
    match a.recv() {
        Message::RetransmitReply(r) => assert_eq!((r.status, r.count), (RetransmitStatus::Ok, 3)),
        other => panic!("{other:?}"),
    }
    let md: Vec<Message> = feed
        .iter()
        .filter(|(c, _, _)| *c == 1)
        .take(3)
        .map(|(_, _, m)| *m)
        .collect();
    for want in md {
        assert_eq!(
            a.recv(),
            want,
            "retransmitted feed messages are the originals"
        );
    }
    for (channel, from_seq, status) in [
        (99, 1, RetransmitStatus::UnknownChannel),
        (0, 0, RetransmitStatus::Unavailable),
        (0, 50, RetransmitStatus::Unavailable),
    ] {
        a.send(RetransmitRequest {
            channel,
            from_seq,
            count: 1,
        });
        match a.recv() {
            Message::RetransmitReply(r) => assert_eq!((r.status, r.count), (status, 0)),
            other => panic!("{other:?}"),
        }
    }

    // Graceful stop: fast, connections closed, final snapshot equals the feed's books.
    let summary = server.stop().unwrap();
    assert!(
        summary.elapsed < Duration::from_secs(1),
        "{:?}",
        summary.elapsed
    );
    assert!(a.until_closed().is_empty());
    assert!(b.until_closed().is_empty());
    let venue = v.snapshot_venue();
    assert_eq!(venue.state_hash_hex(), summary.state_hash);
    assert_eq!(venue.live_orders(), 6);
    for sym in [1u32, 2] {
        let book = venue.book(sym).unwrap();
        let l2 = &books[&sym];
        for side in [Side::Buy, Side::Sell] {
            let venue_levels: Vec<(i64, u64)> = book
                .depth_side(side, 100)
                .iter()
                .map(|l| (l.price, l.qty))
                .collect();
            let feed_levels: Vec<(i64, u64)> = l2
                .depth_side(side, 100)
                .iter()
                .map(|l| (l.price, l.qty))
                .collect();
            assert_eq!(feed_levels, venue_levels, "symbol {sym} {side:?}");
        }
    }
    // The hash equals a fresh replay of the whole journal, and the config copy replays it.
    let copy = Config::load(v.dir().join("venue.toml")).unwrap();
    let replay = replay_journal(
        v.dir(),
        &copy,
        &ReplayOptions {
            from_snapshot: false,
            reports: None,
        },
    )
    .unwrap();
    assert_eq!(replay.state_hash, summary.state_hash);
    assert!(replay.snapshot.is_none());
    assert_eq!(replay.last_seq, summary.last_seq);
}

#[test]
fn restart_continues_streams_and_matches_replay() {
    let v = Venue1::new("cancel_on_disconnect = true");
    let server = v.start();
    let mut a = Client::connect(server.order_entry_addr());
    let first = a.logon(1);
    a.send(order(1, 1, Side::Buy, 100, 10));
    a.send(order(2, 1, Side::Sell, 120, 10));
    assert_eq!(a.report().seq, 1);
    assert_eq!(a.report().seq, 2);
    // Stop while the session is open: its orders are cancelled on disconnect (journaled).
    let s1 = server.stop().unwrap();
    let closing = a.until_closed();
    assert!(closing.is_empty(), "{closing:?}");
    let after = v.snapshot_venue();
    assert_eq!(after.live_orders(), 0);
    assert_eq!(
        after.next_report_seq(1),
        Some(5),
        "two DISCONNECT cancels were numbered"
    );

    let server = v.start();
    let rec = server.recovery();
    assert!(rec.snapshot.is_some());
    assert_eq!(rec.replayed, 0);
    let mut a = Client::connect(server.order_entry_addr());
    let ack = a.logon(1);
    assert_eq!(
        ack.next_seq, 5,
        "the account's stream continues across the restart"
    );
    assert!(
        ack.session_id > first.session_id,
        "session ids never repeat"
    );
    a.send(order(3, 1, Side::Buy, 100, 1));
    assert_eq!(a.report().seq, 5);
    let s2 = server.stop().unwrap();
    assert_ne!(s1.state_hash, s2.state_hash);
    let full = replay_journal(
        v.dir(),
        &v.config,
        &ReplayOptions {
            from_snapshot: false,
            reports: Some(v.dir().join("reports.csv")),
        },
    )
    .unwrap();
    assert_eq!(full.state_hash, s2.state_hash);
    let csv = std::fs::read_to_string(v.dir().join("reports.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 6, "{csv}");
    assert!(rows[2].starts_with("1,3,CANCELLED,1,"), "{}", rows[2]);
    assert!(rows[2].ends_with(",DISCONNECT,NONE"), "{}", rows[2]);
    let snap = replay_journal(
        v.dir(),
        &v.config,
        &ReplayOptions {
            from_snapshot: true,
            reports: None,
        },
    )
    .unwrap();
    assert_eq!(snap.state_hash, s2.state_hash);
    assert!(snap.snapshot.is_some());
}

#[test]
fn bad_input_is_rejected_and_closes_where_the_spec_says() {
    let v = Venue1::new("cancel_on_disconnect = false");
    let server = v.start();
    let addr = server.order_entry_addr();
    let mut good = Client::connect(addr);
    good.logon(1);
    good.send(order(1, 1, Side::Buy, 100, 10));
    assert_eq!(good.report().kind, EventKind::Accepted);
    wait_stat(&server, "commands_new_order", 1);
    let commands_before = stats(&server)["commands"];

    // Random bytes: the header is garbage, so the framing is lost: one reject, then closed.
    let mut c = Client::connect(addr);
    c.send_raw(&[0x13, 0x37, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x01]);
    let seen = c.until_closed();
    assert_eq!(seen.len(), 1, "{seen:?}");
    match seen[0] {
        Message::ExecutionReport(r) => {
            assert_eq!(
                (r.seq, r.kind, r.reason),
                (0, EventKind::Rejected, Reason::Malformed)
            );
        }
        ref other => panic!("{other:?}"),
    }
    // Oversized length, unknown type, wrong length for the type: same.
    for raw in [
        vec![0xff, 0xff, 0x10, 0x01],
        vec![0x04, 0x00, 0x7e, 0x01],
        vec![0x05, 0x00, 0x03, 0x01, 0x00],
    ] {
        let mut c = Client::connect(addr);
        c.logon(2);
        c.send_raw(&raw);
        let seen = c.until_closed();
        assert!(
            matches!(seen[..], [Message::ExecutionReport(r)] if r.reason == Reason::Malformed && r.seq == 0),
            "{raw:?}: {seen:?}"
        );
    }
    // A delimited frame with a bad enum: rejected with its ids, the connection stays open
    // until the third one.
    let mut c = Client::connect(addr);
    c.logon(2);
    let mut bad = [0u8; 64];
    let n = Message::from(order(77, 1, Side::Sell, 100, 1))
        .encode(&mut bad)
        .unwrap();
    bad[16] = 9; // side
    for i in 1..=3 {
        c.send_raw(&bad[..n]);
        let r = c.report();
        assert_eq!(
            (r.seq, r.reason, r.client_order_id, r.symbol_id),
            (0, Reason::Malformed, 77, 1),
            "bad frame {i}"
        );
    }
    assert!(c.until_closed().is_empty());

    // Orders before logon: NOT_LOGGED_IN, unsequenced, the connection stays usable.
    let mut c = Client::connect(addr);
    c.send(order(5, 1, Side::Buy, 100, 1));
    let r = c.report();
    assert_eq!(
        (r.seq, r.reason, r.client_order_id),
        (0, Reason::NotLoggedIn, 5)
    );
    c.send(Heartbeat {});
    assert_eq!(c.report().reason, Reason::NotLoggedIn);
    // A wrong key: LogonReject NOT_LOGGED_IN, then closed.
    c.send(Logon {
        account: 1,
        api_key: ApiKey::new("wrong").unwrap(),
        heartbeat_ms: 1000,
    });
    let seen = c.until_closed();
    assert!(
        matches!(seen[..], [Message::LogonReject(r)] if r.reason == Reason::NotLoggedIn),
        "{seen:?}"
    );
    // Cancel of another account's order: UNKNOWN_ORDER in the sender's own stream.
    let mut c = Client::connect(addr);
    let ack = c.logon(3);
    c.send(Cancel {
        client_order_id: 1,
        symbol_id: 1,
    });
    let r = c.report();
    assert_eq!((r.seq, r.reason), (ack.next_seq, Reason::UnknownOrder));
    // Logout: the venue closes after what it owes.
    c.send(Logout {});
    assert!(c.until_closed().is_empty());

    // The good session saw nothing of all this, and its order is intact.
    good.send(Heartbeat {});
    wait_stat(&server, "malformed_frames", 7);
    wait_stat(&server, "rejects_malformed", 7);
    let st = stats(&server);
    assert_eq!(st["rejects_malformed"], 7);
    // Journaled: 3 logons + 3 disconnects (framing tests), 1 logon + 1 disconnect (bad enum),
    // 2 pre-logon messages + 1 bad logon + 1 disconnect, 1 logon + 1 cancel + 1 logout + 1
    // disconnect; no malformed frame, and no heartbeat of a logged-on session.
    wait_stat(&server, "commands", commands_before + 16);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(stats(&server)["commands"], commands_before + 16);
    let summary = server.stop().unwrap();
    let venue = v.snapshot_venue();
    assert_eq!(venue.state_hash_hex(), summary.state_hash);
    let live = venue.account_orders(1);
    assert_eq!(live.len(), 1);
    assert_eq!((live[0].client_order_id, live[0].leaves), (1, 10));
    assert_eq!(venue.live_orders(), 1);
}

#[test]
fn heartbeats_idle_timeout_and_cancel_on_disconnect() {
    let v = Venue1::new("cancel_on_disconnect = true\nheartbeat_ms = 50\nidle_timeout_ms = 300");
    assert_eq!(v.config.session.idle_timeout_ms, 300);
    let server = v.start();
    let addr = server.order_entry_addr();
    let mut watcher = Client::connect(addr);
    watcher.logon(1);
    let mut silent = Client::connect(addr);
    silent.logon(1);
    silent.send(order(9, 2, Side::Sell, 700, 3));
    // Both sessions of account 1 receive the account's stream.
    assert_eq!(watcher.report().client_order_id, 9);
    assert_eq!(silent.report().client_order_id, 9);
    // The silent one gets heartbeats, then is closed for idleness; its order is cancelled.
    let t0 = Instant::now();
    let mut heartbeats = 0;
    loop {
        // The watcher stays alive (its heartbeats refresh its idle timer).
        watcher.send(Heartbeat {});
        let Some(m) = silent.next() else { break };
        match m {
            Message::VenueHeartbeat(h) => {
                assert_eq!(h.next_seq, 2);
                heartbeats += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(heartbeats >= 1);
    assert!(t0.elapsed() >= Duration::from_millis(250));
    // Meanwhile the watcher keeps its session alive and sees the DISCONNECT cancel.
    let t0 = Instant::now();
    let cancel = loop {
        watcher.send(Heartbeat {});
        match watcher.next() {
            Some(Message::ExecutionReport(r)) => break r,
            Some(_) => {}
            None => panic!("watcher closed"),
        }
        assert!(t0.elapsed() < WAIT);
    };
    assert_eq!(
        (
            cancel.seq,
            cancel.kind,
            cancel.reason,
            cancel.client_order_id
        ),
        (2, EventKind::Cancelled, Reason::Disconnect, 9)
    );
    wait_stat(&server, "idle_timeouts", 1);
    // /metrics over HTTP. The gateway counts the timeout when it queues the DISCONNECT; the
    // engine's command counts are published at its next housekeeping (at most a millisecond
    // later when idle), so the page is read again until it shows them (or WAIT runs out).
    let needles = [
        "tradecore_commands_total{type=\"new_order\"} 1",
        "tradecore_commands_total{type=\"disconnect\"} 1",
        "tradecore_idle_timeouts_total 1",
        "tradecore_ring_occupancy{ring=\"in\"}",
        "tradecore_engine_latency_seconds_count",
        "tradecore_fsync_seconds_bucket",
    ];
    let t0 = Instant::now();
    loop {
        let mut http = TcpStream::connect(server.metrics_addr()).unwrap();
        http.set_read_timeout(Some(WAIT)).unwrap();
        http.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        http.read_to_string(&mut body).unwrap();
        assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
        let missing: Vec<&str> = needles
            .iter()
            .copied()
            .filter(|n| !body.contains(n))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(t0.elapsed() < WAIT, "missing {missing:?}:\n{body}");
        std::thread::sleep(Duration::from_millis(5));
    }
    server.stop().unwrap();
}

#[test]
fn fsync_always_holds_reports_until_durable_and_still_flows() {
    let mut v = Venue1::new("cancel_on_disconnect = false");
    v.text = v.text.replace("fsync = \"none\"", "fsync = \"always\"");
    v.config = Config::from_toml_str(&v.text).unwrap();
    let server = v.start();
    let mut a = Client::connect(server.order_entry_addr());
    let mut b = Client::connect(server.order_entry_addr());
    a.logon(1);
    b.logon(2);
    for i in 0..50u64 {
        a.send(order(100 + i, 1, Side::Buy, 100, 1));
        b.send(order(200 + i, 1, Side::Sell, 100, 1));
    }
    // Every report arrives, in order (each one only after its command was synced).
    for want in 1..=100 {
        assert_eq!(a.report().seq, want);
        assert_eq!(b.report().seq, want);
    }
    wait_stat(&server, "fsyncs", 1);
    let s = server.stop().unwrap();
    let r = replay_journal(
        v.dir(),
        &v.config,
        &ReplayOptions {
            from_snapshot: false,
            reports: None,
        },
    )
    .unwrap();
    assert_eq!(r.state_hash, s.state_hash);
}

#[test]
fn periodic_snapshots_fallback_and_torn_tail() {
    let mut v = Venue1::new("cancel_on_disconnect = false");
    v.text = v.text.replace("snapshot_every = 0", "snapshot_every = 5");
    v.config = Config::from_toml_str(&v.text).unwrap();
    let server = v.start();
    let mut a = Client::connect(server.order_entry_addr());
    a.logon(1);
    for i in 1..=40u64 {
        a.send(order(i, 1, Side::Buy, 100 + i as i64, 1));
        assert_eq!(a.report().seq, i);
        if i % 10 == 0 {
            // Let the snapshot thread catch up now and then.
            wait_stat(&server, "snapshots", i / 10);
        }
    }
    let s1 = server.stop().unwrap();
    let snaps = list_snapshots(v.dir()).unwrap();
    assert_eq!(snaps.len(), 3, "snapshots_kept = 3: {snaps:?}");
    let (last_seq, last_path) = snaps.last().unwrap().clone();
    assert_eq!(last_seq, s1.last_seq);

    // Damage the newest snapshot's body: recovery falls back to the previous one and replays
    // the journal after it, ending in the same state.
    let mut bytes = std::fs::read(&last_path).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x55;
    std::fs::write(&last_path, &bytes).unwrap();
    // And leave garbage after the journal's last record (a torn tail).
    let (_, seg) = std::fs::read_dir(v.dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .map(|p| (p.clone(), p))
        .max()
        .unwrap();
    let mut f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    use std::io::{Seek, SeekFrom};
    f.seek(SeekFrom::Start(65536 - 64)).unwrap();
    f.write_all(&[0xab; 16]).unwrap();
    drop(f);

    let server = v.start();
    let rec = server.recovery().clone();
    let (used, _) = rec.snapshot.clone().unwrap();
    assert!(used < last_seq, "fell back from {last_seq} to {used}");
    assert_eq!(rec.replayed, last_seq - used);
    assert_eq!(
        rec.rejected_snapshots.len(),
        1,
        "{:?}",
        rec.rejected_snapshots
    );
    assert!(rec.damage.is_some(), "the torn tail is reported");
    let s2 = server.stop().unwrap();
    assert_eq!(s2.state_hash, s1.state_hash);
    let full = replay_journal(
        v.dir(),
        &v.config,
        &ReplayOptions {
            from_snapshot: true,
            reports: None,
        },
    )
    .unwrap();
    assert_eq!(full.state_hash, s1.state_hash);
}

#[test]
fn a_client_that_does_not_read_is_disconnected_not_waited_for() {
    let v = Venue1::new(
        "cancel_on_disconnect = false\nmax_send_buffer = 1048576\nrate_limit_per_sec = 1000000000\n\
         rate_limit_burst = 1000000000",
    );
    let server = v.start();
    let addr = server.order_entry_addr();
    // Two sessions of account 1: the slow one never reads; both receive the account's stream.
    let mut slow = Client::connect(addr);
    slow.logon(1);
    let mut fast = Client::connect(addr);
    fast.logon(1);
    let reader = fast.s.try_clone().unwrap();
    let counter = std::thread::spawn(move || {
        // Count the fast session's report bytes until the venue closes it at stop.
        let mut r = reader;
        let mut total = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n;
        }
        total
    });
    let mut batch = Vec::new();
    let mut frame = [0u8; 64];
    let orders = 250_000u64;
    for i in 1..=orders {
        // Alternate sides and symbols so nothing trades: one report per order (ACCEPTED, or
        // BOOK_FULL once a book holds its 4096 orders).
        let side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
        let price = if side == Side::Buy { 100 } else { 200 };
        let n = Message::from(order(i, 1 + (i % 2) as u32, side, price, 1))
            .encode(&mut frame)
            .unwrap();
        batch.extend_from_slice(&frame[..n]);
        if batch.len() > 1 << 16 {
            fast.send_raw(&batch);
            batch.clear();
        }
    }
    fast.send_raw(&batch);
    wait_stat(&server, "slow_consumers", 1);
    wait_stat(&server, "commands_new_order", orders);
    // The slow session was cut off: what it can still read ends with a close, far short of
    // everything.
    slow.s.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    while let Ok(n) = slow.s.read(&mut buf) {
        if n == 0 {
            break;
        }
        got += n;
    }
    // The venue still serves everyone else.
    let mut other = Client::connect(addr);
    other.logon(2);
    other.send(order(1, 1, Side::Sell, 150, 1));
    assert_eq!(other.report().seq, 1);
    let summary = server.stop().unwrap();
    let fast_bytes = counter.join().unwrap();
    assert!(fast_bytes > 0);
    assert!(got < orders as usize * 68, "{got}");
    assert_eq!(summary.error, None);
}
