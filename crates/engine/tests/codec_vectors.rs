//! Golden vectors and the spec's tables, checked against the codec.
//!
//! * `golden_vectors_are_current`: builds `tests/golden/protocol_vectors.json` from the
//!   messages, malformed frames and datagrams listed below (every message type at least twice,
//!   with extreme values; every decode error kind), asserting on the way that each vector
//!   decodes back to its message or fails with its listed error, and fails if the checked-in
//!   file differs. The Python codec's test (`tests/unit/test_protocol_vectors.py`) reads the same
//!   file, so both codecs agree byte for byte. Regenerate after a deliberate protocol change with
//!   `TRADECORE_REGEN_VECTORS=1 cargo test -p tradecore-engine --release --test codec_vectors`.
//! * `spec_tables_match_layouts`: every message table in `docs/protocol.md` (offset, size,
//!   field) equals the codec's layout, so the spec cannot drift from the code.
//!
//! Cost: a few hundred frames; milliseconds.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::{json, Map, Value};
use tradecore_book::{EventKind, OrderType, Reason, Side, Stp, TimeInForce};
use tradecore_engine::codec::{
    decode, decode_datagram, decode_from_client, decode_from_venue, wire, ApiKey, BookUpdate,
    Cancel, CodecError, DatagramWriter, ExecutionReport, FeedReport, Heartbeat, Liquidity, Logon,
    LogonAck, LogonReject, Logout, MassCancel, Message, Modify, MsgType, NewOrder, RetransmitReply,
    RetransmitRequest, RetransmitStatus, Trade, VenueHeartbeat, HEADER_LEN, MAX_DATAGRAM_LEN,
    MAX_MESSAGE_LEN, PACKET_HEADER_LEN, VERSION,
};

const REGEN_ENV: &str = "TRADECORE_REGEN_VECTORS";

fn repo_root() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn enc(m: &Message) -> Vec<u8> {
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let n = m
        .encode(&mut buf)
        .expect("every message fits MAX_MESSAGE_LEN");
    buf[..n].to_vec()
}

fn key(s: &str) -> ApiKey {
    ApiKey::new(s).expect("valid test key")
}

#[allow(clippy::too_many_arguments, reason = "mirrors the report's fields")]
fn report(
    seq: u64,
    client_order_id: u64,
    order_id: u64,
    kind: EventKind,
    reason: Reason,
    side: Side,
    liquidity: Liquidity,
    price: i64,
    qty: u64,
    leaves: u64,
) -> ExecutionReport {
    ExecutionReport {
        seq,
        client_order_id,
        order_id,
        symbol_id: 7,
        kind,
        reason,
        side,
        liquidity,
        price,
        qty,
        leaves,
        timestamp_ns: 1_717_171_717_000_000_000 + seq,
    }
}

/// The messages of the vector file: every type, with ordinary and extreme values.
fn messages() -> Vec<(&'static str, Message)> {
    let order = NewOrder {
        client_order_id: 1,
        symbol_id: 1,
        side: Side::Buy,
        order_type: OrderType::Limit,
        tif: TimeInForce::Gtc,
        post_only: false,
        stp: Stp::CancelNewest,
        price: 15_005,
        qty: 100,
    };
    vec![
        (
            "logon",
            Logon {
                account: 7,
                api_key: key("alice-key-0001"),
                heartbeat_ms: 1_000,
            }
            .into(),
        ),
        (
            "logon_full_key",
            Logon {
                account: u32::MAX,
                api_key: key("0123456789abcdefghijklmnopqrstu~"),
                heartbeat_ms: 0,
            }
            .into(),
        ),
        (
            "logon_empty_key",
            Logon {
                account: 0,
                api_key: key(""),
                heartbeat_ms: 30_000,
            }
            .into(),
        ),
        ("logout", Logout {}.into()),
        ("heartbeat", Heartbeat {}.into()),
        ("new_order_limit_buy", order.into()),
        (
            "new_order_post_only_sell",
            NewOrder {
                client_order_id: 2,
                side: Side::Sell,
                post_only: true,
                stp: Stp::CancelBoth,
                price: 15_010,
                qty: 5,
                ..order
            }
            .into(),
        ),
        (
            "new_order_market_ioc",
            NewOrder {
                client_order_id: 3,
                order_type: OrderType::Market,
                tif: TimeInForce::Ioc,
                stp: Stp::None,
                price: 0,
                qty: 250,
                ..order
            }
            .into(),
        ),
        (
            "new_order_extremes",
            NewOrder {
                client_order_id: u64::MAX,
                symbol_id: u32::MAX,
                side: Side::Sell,
                order_type: OrderType::Limit,
                tif: TimeInForce::Fok,
                post_only: false,
                stp: Stp::CancelOldest,
                price: i64::MIN,
                qty: u64::MAX,
            }
            .into(),
        ),
        (
            "new_order_negative_price",
            NewOrder {
                client_order_id: 0x0102_0304_0506_0708,
                price: -1,
                ..order
            }
            .into(),
        ),
        (
            "cancel",
            Cancel {
                client_order_id: 1,
                symbol_id: 1,
            }
            .into(),
        ),
        (
            "cancel_extremes",
            Cancel {
                client_order_id: u64::MAX,
                symbol_id: u32::MAX,
            }
            .into(),
        ),
        (
            "modify",
            Modify {
                client_order_id: 1,
                symbol_id: 1,
                new_price: 15_004,
                new_qty: 60,
            }
            .into(),
        ),
        (
            "modify_extremes",
            Modify {
                client_order_id: u64::MAX,
                symbol_id: 0,
                new_price: i64::MAX,
                new_qty: 0,
            }
            .into(),
        ),
        ("mass_cancel_all", MassCancel { symbol_id: 0 }.into()),
        ("mass_cancel_symbol", MassCancel { symbol_id: 42 }.into()),
        (
            "retransmit_request_session",
            RetransmitRequest {
                channel: 0,
                from_seq: 17,
                count: 3,
            }
            .into(),
        ),
        (
            "retransmit_request_channel",
            RetransmitRequest {
                channel: 2,
                from_seq: u64::MAX,
                count: u32::MAX,
            }
            .into(),
        ),
        (
            "logon_ack",
            LogonAck {
                next_seq: 1,
                session_id: 0xdead_beef,
                heartbeat_ms: 1_000,
            }
            .into(),
        ),
        (
            "logon_ack_resumed",
            LogonAck {
                next_seq: 123_456_789,
                session_id: u64::MAX,
                heartbeat_ms: u32::MAX,
            }
            .into(),
        ),
        (
            "logon_reject",
            LogonReject {
                next_seq: 0,
                reason: Reason::NotLoggedIn,
            }
            .into(),
        ),
        (
            "logon_reject_rate_limited",
            LogonReject {
                next_seq: 0,
                reason: Reason::RateLimited,
            }
            .into(),
        ),
        ("venue_heartbeat", VenueHeartbeat { next_seq: 42 }.into()),
        (
            "venue_heartbeat_max",
            VenueHeartbeat { next_seq: u64::MAX }.into(),
        ),
        (
            "report_accepted",
            report(
                1,
                1,
                1001,
                EventKind::Accepted,
                Reason::None,
                Side::Buy,
                Liquidity::None,
                15_005,
                100,
                100,
            )
            .into(),
        ),
        (
            "report_fill_taker",
            report(
                2,
                3,
                1003,
                EventKind::Fill,
                Reason::None,
                Side::Buy,
                Liquidity::Taker,
                15_010,
                5,
                245,
            )
            .into(),
        ),
        (
            "report_fill_maker",
            report(
                3,
                2,
                1002,
                EventKind::Fill,
                Reason::None,
                Side::Sell,
                Liquidity::Maker,
                15_010,
                5,
                0,
            )
            .into(),
        ),
        (
            "report_cancelled_ioc",
            report(
                4,
                3,
                1003,
                EventKind::Cancelled,
                Reason::IocRemainder,
                Side::Buy,
                Liquidity::None,
                0,
                245,
                0,
            )
            .into(),
        ),
        (
            "report_replaced",
            report(
                5,
                1,
                1001,
                EventKind::Replaced,
                Reason::None,
                Side::Buy,
                Liquidity::None,
                15_004,
                60,
                60,
            )
            .into(),
        ),
        (
            "report_rejected_malformed_unsequenced",
            report(
                0,
                0,
                0,
                EventKind::Rejected,
                Reason::Malformed,
                Side::Buy,
                Liquidity::None,
                0,
                0,
                0,
            )
            .into(),
        ),
        (
            "report_rejected_disconnect_extremes",
            ExecutionReport {
                seq: u64::MAX,
                client_order_id: u64::MAX,
                order_id: u64::MAX,
                symbol_id: u32::MAX,
                kind: EventKind::Rejected,
                reason: Reason::Disconnect,
                side: Side::Sell,
                liquidity: Liquidity::None,
                price: i64::MIN,
                qty: u64::MAX,
                leaves: u64::MAX,
                timestamp_ns: u64::MAX,
            }
            .into(),
        ),
        (
            "retransmit_reply_ok",
            RetransmitReply {
                next_seq: 30,
                channel: 0,
                from_seq: 17,
                requested: 3,
                count: 3,
                status: RetransmitStatus::Ok,
            }
            .into(),
        ),
        (
            "retransmit_reply_partial",
            RetransmitReply {
                next_seq: 30,
                channel: 2,
                from_seq: 25,
                requested: 100,
                count: 5,
                status: RetransmitStatus::Partial,
            }
            .into(),
        ),
        (
            "retransmit_reply_unknown_channel",
            RetransmitReply {
                next_seq: 30,
                channel: 99,
                from_seq: 1,
                requested: 1,
                count: 0,
                status: RetransmitStatus::UnknownChannel,
            }
            .into(),
        ),
        (
            "book_update",
            BookUpdate {
                symbol_id: 1,
                side: Side::Buy,
                price: 15_005,
                qty: 100,
            }
            .into(),
        ),
        (
            "book_update_remove",
            BookUpdate {
                symbol_id: u32::MAX,
                side: Side::Sell,
                price: i64::MAX,
                qty: 0,
            }
            .into(),
        ),
        (
            "trade",
            Trade {
                symbol_id: 1,
                aggressor: Side::Buy,
                price: 15_010,
                qty: 5,
                timestamp_ns: 1_717_171_717_000_000_002,
            }
            .into(),
        ),
        (
            "trade_extremes",
            Trade {
                symbol_id: u32::MAX,
                aggressor: Side::Sell,
                price: i64::MIN,
                qty: u64::MAX,
                timestamp_ns: 0,
            }
            .into(),
        ),
        (
            "feed_report_fill",
            report(
                2,
                3,
                1003,
                EventKind::Fill,
                Reason::None,
                Side::Buy,
                Liquidity::Taker,
                15_010,
                5,
                245,
            )
            .to_feed(7)
            .into(),
        ),
        (
            "feed_report_cancel_stp",
            report(
                9,
                11,
                1011,
                EventKind::Cancelled,
                Reason::SelfTrade,
                Side::Sell,
                Liquidity::None,
                15_020,
                3,
                0,
            )
            .to_feed(u32::MAX)
            .into(),
        ),
    ]
}

/// A message's fields as JSON (enums by their upper-case names, as in the Python enums).
fn fields(m: &Message) -> Value {
    match *m {
        Message::Logon(Logon {
            account,
            api_key,
            heartbeat_ms,
        }) => {
            json!({"account": account, "api_key": api_key.as_str(), "heartbeat_ms": heartbeat_ms})
        }
        Message::Logout(Logout {}) | Message::Heartbeat(Heartbeat {}) => json!({}),
        Message::NewOrder(o) => json!({
            "client_order_id": o.client_order_id,
            "symbol_id": o.symbol_id,
            "side": o.side.name(),
            "order_type": o.order_type.name(),
            "tif": o.tif.name(),
            "post_only": o.post_only,
            "stp": o.stp.name(),
            "price": o.price,
            "qty": o.qty,
        }),
        Message::Cancel(c) => {
            json!({"client_order_id": c.client_order_id, "symbol_id": c.symbol_id})
        }
        Message::Modify(c) => json!({
            "client_order_id": c.client_order_id,
            "symbol_id": c.symbol_id,
            "new_price": c.new_price,
            "new_qty": c.new_qty,
        }),
        Message::MassCancel(c) => json!({"symbol_id": c.symbol_id}),
        Message::RetransmitRequest(r) => {
            json!({"channel": r.channel, "from_seq": r.from_seq, "count": r.count})
        }
        Message::LogonAck(a) => json!({
            "next_seq": a.next_seq,
            "session_id": a.session_id,
            "heartbeat_ms": a.heartbeat_ms,
        }),
        Message::LogonReject(r) => json!({"next_seq": r.next_seq, "reason": r.reason.name()}),
        Message::VenueHeartbeat(h) => json!({"next_seq": h.next_seq}),
        Message::ExecutionReport(r) => report_fields(&r.to_feed(0), false),
        Message::RetransmitReply(r) => json!({
            "next_seq": r.next_seq,
            "channel": r.channel,
            "from_seq": r.from_seq,
            "requested": r.requested,
            "count": r.count,
            "status": r.status.name(),
        }),
        Message::BookUpdate(u) => json!({
            "symbol_id": u.symbol_id,
            "side": u.side.name(),
            "price": u.price,
            "qty": u.qty,
        }),
        Message::Trade(t) => json!({
            "symbol_id": t.symbol_id,
            "aggressor": t.aggressor.name(),
            "price": t.price,
            "qty": t.qty,
            "timestamp_ns": t.timestamp_ns,
        }),
        Message::FeedReport(r) => report_fields(&r, true),
    }
}

fn report_fields(r: &FeedReport, with_account: bool) -> Value {
    let mut v = json!({
        "seq": r.seq,
        "client_order_id": r.client_order_id,
        "order_id": r.order_id,
        "symbol_id": r.symbol_id,
        "kind": r.kind.name(),
        "reason": r.reason.name(),
        "side": r.side.name(),
        "liquidity": r.liquidity.name(),
        "price": r.price,
        "qty": r.qty,
        "leaves": r.leaves,
        "timestamp_ns": r.timestamp_ns,
    });
    if with_account {
        v["account"] = json!(r.account);
    }
    v
}

fn message_json(m: &Message) -> Value {
    json!({"type": m.msg_type().name(), "fields": fields(m)})
}

fn frame(length: u16, msg_type: u8, version: u8, body: &[u8]) -> Vec<u8> {
    let mut v = length.to_le_bytes().to_vec();
    v.extend([msg_type, version]);
    v.extend_from_slice(body);
    v
}

fn with_byte(mut bytes: Vec<u8>, at: usize, value: u8) -> Vec<u8> {
    bytes[at] = value;
    bytes
}

fn field_offset(t: MsgType, name: &str) -> usize {
    t.fields()
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("{} has no field {name}", t.name()))
        .offset
}

/// Which decoder an error vector goes through.
#[derive(Clone, Copy)]
enum Decoder {
    Any,
    FromClient,
    FromVenue,
}

impl Decoder {
    fn name(self) -> &'static str {
        match self {
            Decoder::Any => "any",
            Decoder::FromClient => "from_client",
            Decoder::FromVenue => "from_venue",
        }
    }

    fn run(self, bytes: &[u8]) -> Result<(Message, usize), CodecError> {
        match self {
            Decoder::Any => decode(bytes),
            Decoder::FromClient => decode_from_client(bytes),
            Decoder::FromVenue => decode_from_venue(bytes),
        }
    }
}

/// Frames that must fail, with the decoder and the error kind they must fail with.
fn bad_frames() -> Vec<(&'static str, Decoder, Vec<u8>, &'static str)> {
    let msgs = messages();
    let get = |name: &str| enc(&msgs.iter().find(|(n, _)| *n == name).expect(name).1);
    let order = get("new_order_limit_buy");
    let logon = get("logon");
    let report = get("report_fill_taker");
    let reply = get("retransmit_reply_ok");
    let t = MsgType::NewOrder;
    let key_at = field_offset(MsgType::Logon, "api_key");
    vec![
        ("empty", Decoder::Any, vec![], "incomplete"),
        (
            "partial_header",
            Decoder::Any,
            order[..3].to_vec(),
            "incomplete",
        ),
        (
            "partial_body",
            Decoder::Any,
            order[..order.len() - 1].to_vec(),
            "incomplete",
        ),
        (
            "bad_version_0",
            Decoder::Any,
            with_byte(order.clone(), 3, 0),
            "bad_version",
        ),
        (
            "bad_version_2",
            Decoder::Any,
            with_byte(order.clone(), 3, 2),
            "bad_version",
        ),
        (
            "bad_version_header_only",
            Decoder::Any,
            frame(37, 0x10, 2, &[]),
            "bad_version",
        ),
        (
            "oversized_257",
            Decoder::Any,
            frame(MAX_MESSAGE_LEN as u16 + 1, 0x10, VERSION, &[]),
            "oversized",
        ),
        (
            "oversized_65535_unknown_type",
            Decoder::Any,
            frame(u16::MAX, 0xee, VERSION, &[]),
            "oversized",
        ),
        (
            "unknown_type_0",
            Decoder::Any,
            frame(4, 0x00, VERSION, &[]),
            "unknown_type",
        ),
        (
            "unknown_type_0x7f",
            Decoder::Any,
            frame(37, 0x7f, VERSION, &order[HEADER_LEN..]),
            "unknown_type",
        ),
        (
            "unknown_type_0xff",
            Decoder::Any,
            frame(8, 0xff, VERSION, &[0; 4]),
            "unknown_type",
        ),
        (
            "bad_length_short",
            Decoder::Any,
            frame(36, 0x10, VERSION, &order[HEADER_LEN..36]),
            "bad_length",
        ),
        (
            "bad_length_long",
            Decoder::Any,
            frame(
                38,
                0x10,
                VERSION,
                &[order[HEADER_LEN..].to_vec(), vec![0]].concat(),
            ),
            "bad_length",
        ),
        (
            "bad_length_zero",
            Decoder::Any,
            frame(0, 0x10, VERSION, &[]),
            "bad_length",
        ),
        (
            "bad_length_logout_with_body",
            Decoder::Any,
            frame(5, 0x02, VERSION, &[0]),
            "bad_length",
        ),
        (
            "bad_enum_side",
            Decoder::Any,
            with_byte(order.clone(), field_offset(t, "side"), 2),
            "bad_enum",
        ),
        (
            "bad_enum_order_type",
            Decoder::Any,
            with_byte(order.clone(), field_offset(t, "order_type"), 2),
            "bad_enum",
        ),
        (
            "bad_enum_tif",
            Decoder::Any,
            with_byte(order.clone(), field_offset(t, "tif"), 3),
            "bad_enum",
        ),
        (
            "bad_enum_post_only",
            Decoder::Any,
            with_byte(order.clone(), field_offset(t, "post_only"), 2),
            "bad_enum",
        ),
        (
            "bad_enum_stp",
            Decoder::Any,
            with_byte(order.clone(), field_offset(t, "stp"), 0xff),
            "bad_enum",
        ),
        (
            "bad_enum_report_kind",
            Decoder::Any,
            with_byte(
                report.clone(),
                field_offset(MsgType::ExecutionReport, "kind"),
                5,
            ),
            "bad_enum",
        ),
        (
            "bad_enum_report_reason",
            Decoder::Any,
            with_byte(
                report.clone(),
                field_offset(MsgType::ExecutionReport, "reason"),
                21,
            ),
            "bad_enum",
        ),
        (
            "bad_enum_report_liquidity",
            Decoder::Any,
            with_byte(
                report.clone(),
                field_offset(MsgType::ExecutionReport, "liquidity"),
                3,
            ),
            "bad_enum",
        ),
        (
            "bad_enum_retransmit_status",
            Decoder::Any,
            with_byte(
                reply.clone(),
                field_offset(MsgType::RetransmitReply, "status"),
                4,
            ),
            "bad_enum",
        ),
        (
            "bad_api_key_space",
            Decoder::Any,
            with_byte(logon.clone(), key_at + 1, b' '),
            "bad_api_key",
        ),
        (
            "bad_api_key_after_padding",
            Decoder::Any,
            with_byte(logon.clone(), key_at + 31, b'x'),
            "bad_api_key",
        ),
        (
            "bad_api_key_high_bit",
            Decoder::Any,
            with_byte(logon.clone(), key_at, 0xc3),
            "bad_api_key",
        ),
        (
            "venue_message_from_client",
            Decoder::FromClient,
            report.clone(),
            "wrong_direction",
        ),
        (
            "feed_message_from_client",
            Decoder::FromClient,
            get("book_update"),
            "wrong_direction",
        ),
        (
            "client_message_from_venue",
            Decoder::FromVenue,
            order.clone(),
            "wrong_direction",
        ),
    ]
}

fn datagram(channel: u32, seq: u64, msgs: &[Message]) -> Vec<u8> {
    let mut buf = [0u8; MAX_DATAGRAM_LEN];
    let mut w = DatagramWriter::new(&mut buf, channel, seq).expect("buffer holds a header");
    for m in msgs {
        w.push(m).expect("fits one datagram");
    }
    let n = w.finish();
    buf[..n].to_vec()
}

fn feed_messages() -> Vec<Message> {
    messages()
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| m.msg_type() as u8 >= 0x80)
        .collect()
}

fn datagrams() -> Vec<(&'static str, u32, u64, Vec<Message>)> {
    let feed = feed_messages();
    vec![
        ("heartbeat", 1, 1, vec![]),
        ("one_update", 1, 1, feed[..1].to_vec()),
        ("mixed", 2, 1_000, feed.clone()),
        (
            "max_seq_channel",
            u32::MAX,
            u64::MAX - 1,
            feed[2..4].to_vec(),
        ),
    ]
}

fn bad_datagrams() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let feed = feed_messages();
    let good = datagram(1, 5, &feed[..2]);
    let mut with_order = datagram(1, 5, &[]);
    with_order[12] = 1;
    with_order.extend(enc(&messages()[5].1));
    vec![
        (
            "too_short",
            good[..PACKET_HEADER_LEN - 1].to_vec(),
            "datagram_too_short",
        ),
        (
            "too_large",
            vec![0; MAX_DATAGRAM_LEN + 1],
            "datagram_too_large",
        ),
        ("bad_version", with_byte(good.clone(), 14, 2), "bad_version"),
        (
            "bad_reserved",
            with_byte(good.clone(), 15, 1),
            "bad_reserved",
        ),
        (
            "truncated",
            good[..good.len() - 1].to_vec(),
            "truncated_datagram",
        ),
        (
            "count_too_high",
            with_byte(good.clone(), 12, 3),
            "count_mismatch",
        ),
        (
            "count_too_low",
            with_byte(good.clone(), 12, 1),
            "count_mismatch",
        ),
        (
            "bad_enum_in_frame",
            with_byte(
                good.clone(),
                PACKET_HEADER_LEN + field_offset(MsgType::BookUpdate, "side"),
                9,
            ),
            "bad_enum",
        ),
        ("order_in_datagram", with_order, "wrong_direction"),
    ]
}

fn layouts() -> Value {
    let mut m = Map::new();
    for t in MsgType::ALL {
        let fields: Vec<Value> = t
            .fields()
            .iter()
            .map(|f| json!([f.name, f.offset, f.size]))
            .collect();
        m.insert(
            t.name().to_string(),
            json!({"type": *t as u8, "length": t.len(), "fields": fields}),
        );
    }
    Value::Object(m)
}

/// The whole vector file, checking every vector against the decoder on the way.
fn build() -> String {
    let mut msgs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (name, m) in messages() {
        let bytes = enc(&m);
        assert_eq!(decode(&bytes), Ok((m, bytes.len())), "{name}");
        seen.insert(m.msg_type());
        let mut v = message_json(&m);
        v["name"] = json!(name);
        v["hex"] = json!(hex(&bytes));
        msgs.push(v);
    }
    assert_eq!(seen.len(), MsgType::ALL.len(), "every type has a vector");

    let mut errors = Vec::new();
    let mut kinds = std::collections::HashSet::new();
    for (name, decoder, bytes, kind) in bad_frames() {
        match decoder.run(&bytes) {
            Err(e) => assert_eq!(e.kind(), kind, "{name}: {e}"),
            Ok(m) => panic!("{name}: decoded {m:?}"),
        }
        kinds.insert(kind);
        errors.push(json!({
            "name": name, "decoder": decoder.name(), "hex": hex(&bytes), "error": kind,
        }));
    }

    let mut dgs = Vec::new();
    for (name, channel, seq, list) in datagrams() {
        let bytes = datagram(channel, seq, &list);
        let d = decode_datagram(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let back: Vec<(u64, Message)> = d.iter().collect();
        let want: Vec<(u64, Message)> = (seq..).zip(list.iter().copied()).collect();
        assert_eq!(back, want, "{name}");
        dgs.push(json!({
            "name": name,
            "channel": channel,
            "seq": seq,
            "messages": list.iter().map(message_json).collect::<Vec<_>>(),
            "hex": hex(&bytes),
        }));
    }
    let mut dg_errors = Vec::new();
    for (name, bytes, kind) in bad_datagrams() {
        match decode_datagram(&bytes) {
            Err(e) => assert_eq!(e.kind(), kind, "{name}: {e}"),
            Ok(d) => panic!("{name}: decoded {d:?}"),
        }
        kinds.insert(kind);
        dg_errors.push(json!({"name": name, "hex": hex(&bytes), "error": kind}));
    }
    // Every decode error kind appears (buffer_too_small is an encoding error).
    assert_eq!(kinds.len(), 13, "{kinds:?}");

    let doc = json!({
        "about": format!(
            "Golden vectors of docs/protocol.md, generated by crates/engine/tests/codec_vectors.rs \
             (regenerate: {REGEN_ENV}=1 cargo test -p tradecore-engine --release --test \
             codec_vectors) and checked by tests/unit/test_protocol_vectors.py. Enum fields hold \
             the upper-case names (Reason NONE is \"\"); hex is the whole frame or datagram."
        ),
        "version": VERSION,
        "header_len": HEADER_LEN,
        "max_message_len": MAX_MESSAGE_LEN,
        "packet_header_len": PACKET_HEADER_LEN,
        "max_datagram_len": MAX_DATAGRAM_LEN,
        "layouts": layouts(),
        "messages": msgs,
        "errors": errors,
        "datagrams": dgs,
        "datagram_errors": dg_errors,
    });
    let mut s = serde_json::to_string_pretty(&doc).expect("serializable");
    s.push('\n');
    s
}

#[test]
fn golden_vectors_are_current() {
    let path = repo_root().join("tests/golden/protocol_vectors.json");
    let fresh = build();
    if std::env::var_os(REGEN_ENV).is_some_and(|v| v == "1") {
        std::fs::write(&path, &fresh).expect("write the vector file");
        eprintln!("wrote {}", path.display());
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    if on_disk != fresh {
        let line = on_disk
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| "end of file".to_string(), |i| format!("line {}", i + 1));
        panic!(
            "{} is stale or missing (first difference at {line}). If the protocol change is \
             deliberate, regenerate it with\n  {REGEN_ENV}=1 cargo test -p tradecore-engine \
             --release --test codec_vectors\nand update docs/protocol.md and the Python codec.",
            path.display()
        );
    }
}

/// One parsed table row: (offset, size, field).
fn spec_table(spec: &str, heading: &str) -> Vec<(usize, usize, String)> {
    let mut lines = spec.lines().skip_while(|l| !l.starts_with(heading)).skip(1);
    let mut rows = Vec::new();
    for l in lines
        .by_ref()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
    {
        let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
        let (Ok(offset), Ok(size)) = (cells[0].parse(), cells[1].parse()) else {
            continue; // the title row and the separator
        };
        rows.push((offset, size, cells[2].trim_matches('`').to_string()));
    }
    rows
}

#[test]
fn spec_tables_match_layouts() {
    let spec = std::fs::read_to_string(repo_root().join("docs/protocol.md"))
        .expect("docs/protocol.md exists");
    for t in MsgType::ALL {
        let heading = format!("### {} (0x{:02x}, {} bytes)", t.name(), *t as u8, t.len());
        assert!(
            spec.contains(&heading),
            "spec lacks the heading `{heading}`"
        );
        let rows = spec_table(&spec, &heading);
        let want: Vec<(usize, usize, String)> = std::iter::once((0, HEADER_LEN, "header".into()))
            .chain(t.fields().iter().map(|f| (f.offset, f.size, f.name.into())))
            .collect();
        assert_eq!(rows, want, "table of {}", t.name());
    }
    let header = spec_table(&spec, "### Frame header");
    assert_eq!(
        header,
        [
            (0, 2, "length".to_string()),
            (2, 1, "msg_type".into()),
            (3, 1, "version".into())
        ]
    );
    let packet = spec_table(&spec, "### Packet header");
    let want = [
        (
            std::mem::offset_of!(wire::PacketHeader, channel),
            4,
            "channel",
        ),
        (std::mem::offset_of!(wire::PacketHeader, seq), 8, "seq"),
        (std::mem::offset_of!(wire::PacketHeader, count), 2, "count"),
        (
            std::mem::offset_of!(wire::PacketHeader, version),
            1,
            "version",
        ),
        (
            std::mem::offset_of!(wire::PacketHeader, reserved),
            1,
            "reserved",
        ),
    ];
    let want: Vec<(usize, usize, String)> = want
        .iter()
        .map(|(o, s, n)| (*o, *s, n.to_string()))
        .collect();
    assert_eq!(packet, want, "packet header table");
}
