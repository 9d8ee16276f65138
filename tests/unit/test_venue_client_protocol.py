"""The venue client (``tradecore.venue.client``) against a scripted venue on a real TCP socket,
plus its protocol core on random streams.

The scripted venue (``test_venue_client_support.ScriptedVenue``) sends exactly the frames each
test chooses, so every branch of the report stream is reached on purpose: in-order delivery,
gaps (asked for on channel 0 and filled), duplicates, heartbeats that reveal a trailing gap,
partial and unavailable retransmissions, resuming a stream, unsequenced rejects, malformed
frames and a venue that goes away. The property test drives :class:`ClientProtocol` (no I/O)
with a stream that loses, repeats and reorders reports, answering its retransmit requests from
the full history, and checks that the reports come out exactly once and in order.
"""

from __future__ import annotations

import asyncio
import random
import time
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_venue_client_support import WAIT, ScriptedVenue, report
from tradecore import Instrument
from tradecore.enums import EventKind, OrderType, Reason, Side, Stp, TimeInForce
from tradecore.errors import OffGridError, UsageError
from tradecore.venue import codec
from tradecore.venue.client import (
    AsyncClient,
    Client,
    ClientProtocol,
    LogonRejected,
    NotLoggedOn,
    OrderStatus,
    VenueDisconnected,
    VenueProtocolError,
    VenueTimeout,
    parse_address,
)
from tradecore.venue.codec import (
    BookUpdate,
    Cancel,
    ExecutionReport,
    Heartbeat,
    Liquidity,
    Logon,
    LogonAck,
    LogonReject,
    MassCancel,
    Modify,
    NewOrder,
    RetransmitReply,
    RetransmitRequest,
    RetransmitStatus,
    VenueHeartbeat,
)

KEY = "demo-key-account-1"


def connect(venue: ScriptedVenue, **kw: object) -> Client:
    kw.setdefault("idle_intervals", None)  # the scripted venue sends no heartbeats
    kw.setdefault("timeout", WAIT)
    return Client("127.0.0.1", venue.port, **kw)  # type: ignore[arg-type]


def logged_on(venue: ScriptedVenue, **kw: object) -> Client:
    c = connect(venue, **kw)
    c.logon(1, KEY)
    return c


def seqs(reports: list[ExecutionReport]) -> list[int]:
    return [r.seq for r in reports]


def take(c: Client, n: int) -> list[ExecutionReport]:
    return [c.next_report() for _ in range(n)]


# ---- logon ----


def test_logon_ack_and_logon_frame() -> None:
    with ScriptedVenue(logon_answer=LogonAck(1, 4242, 250)) as v, connect(v) as c:
        ack = c.logon(1, KEY)
        assert ack == LogonAck(1, 4242, 250)
        assert (c.session_id, c.account, c.next_seq, c.is_open) == (4242, 1, 1, True)
        assert v.expect(Logon) == Logon(1, KEY, 1000)
        with pytest.raises(UsageError, match="only possible once"):
            c.logon(1, KEY)


def test_logon_rejected_is_typed_and_names_the_reason() -> None:
    with ScriptedVenue(logon_answer=LogonReject(0, Reason.NOT_LOGGED_IN)) as v, connect(v) as c:
        with pytest.raises(LogonRejected, match="NOT_LOGGED_IN") as info:
            c.logon(3, "wrong-key")
        assert info.value.reason is Reason.NOT_LOGGED_IN
        assert info.value.account == 3
        assert isinstance(info.value, PermissionError)
        with pytest.raises(NotLoggedOn):
            c.new_order(1, Side.BUY, 100, 1)


def test_connection_refused_is_venue_disconnected() -> None:
    with ScriptedVenue() as v:
        port = v.port
    with pytest.raises(VenueDisconnected, match="cannot connect"):
        Client("127.0.0.1", port, timeout=WAIT)


def test_only_loopback_addresses_unless_allowed() -> None:
    with pytest.raises(UsageError, match="not a loopback address"):
        Client("192.0.2.1", 7001)
    assert parse_address("127.0.0.1:7001") == ("127.0.0.1", 7001)
    assert parse_address("[::1]:7001") == ("::1", 7001)
    assert parse_address("localhost:1") == ("localhost", 1)
    assert parse_address("192.0.2.1:9", allow_remote=True) == ("192.0.2.1", 9)
    for bad in ("7001", "127.0.0.1:", "127.0.0.1:x", "127.0.0.1:70000"):
        with pytest.raises(UsageError, match="address"):
            parse_address(bad)


def test_orders_before_logon_are_refused_locally() -> None:
    with ScriptedVenue() as v, connect(v) as c:
        with pytest.raises(NotLoggedOn, match="logon"):
            c.new_order(1, Side.BUY, 100, 1)
        with pytest.raises(NotLoggedOn):
            c.mass_cancel()


# ---- order entry and the order view ----


def test_order_entry_frames_and_client_order_ids() -> None:
    with ScriptedVenue() as v, logged_on(v, first_client_order_id=50) as c:
        a = c.new_order(1, Side.BUY, 15005, 100, stp=Stp.CANCEL_NEWEST)
        b = c.new_order(
            2, "SELL", 16000, 5, order_type="LIMIT", tif=TimeInForce.IOC, post_only=False
        )
        d = c.new_order(1, Side.SELL, 0, 3, order_type=OrderType.MARKET, client_order_id=7)
        c.cancel(a)
        c.modify(b, 15990, 4)
        c.mass_cancel(2)
        assert (a, b, d) == (50, 51, 7)
        assert v.expect(NewOrder) == NewOrder(
            50, 1, Side.BUY, OrderType.LIMIT, TimeInForce.GTC, False, Stp.CANCEL_NEWEST, 15005, 100
        )
        assert v.expect(NewOrder) == NewOrder(
            51, 2, Side.SELL, OrderType.LIMIT, TimeInForce.IOC, False, Stp.NONE, 16000, 5
        )
        assert v.expect(NewOrder).order_type is OrderType.MARKET
        assert v.expect(Cancel) == Cancel(50, 1)
        assert v.expect(Modify) == Modify(51, 2, 15990, 4)
        assert v.expect(MassCancel) == MassCancel(2)
        assert [o.status for o in c.open_orders()] == [OrderStatus.PENDING_NEW] * 3


def test_bad_order_arguments_fail_before_sending() -> None:
    with ScriptedVenue() as v, logged_on(v) as c:
        with pytest.raises(ValueError, match=r"side|Side|BUY"):
            c.new_order(1, "UP", 100, 1)
        with pytest.raises(codec.ProtocolError, match="qty"):
            c.new_order(1, Side.BUY, 100, -1)
        with pytest.raises(TypeError, match="float"):
            c.new_order(1, Side.BUY, 100.5, 1)  # type: ignore[arg-type]
        with pytest.raises(UsageError, match="symbol_id"):
            c.cancel(999)
        c.send(Heartbeat())
        c.new_order(1, Side.BUY, 100, 1)
        # nothing bad reached the venue: the first order frame is the good one
        assert v.expect(NewOrder).client_order_id == 1
        assert c.open_orders()[0].client_order_id == 1


def test_decimal_prices_and_quantities_go_through_the_instrument() -> None:
    btc = Instrument("BTC-USD", tick_size="0.01", lot_size="0.0001")
    with ScriptedVenue() as v, logged_on(v, instruments={1: btc}) as c:
        coid = c.new_order(1, Side.BUY, Decimal("150.05"), "0.5")
        sent = v.expect(NewOrder)
        assert (sent.price, sent.qty) == (15005, 5000)
        with pytest.raises(OffGridError):
            c.new_order(1, Side.BUY, Decimal("150.055"), 1)
        with pytest.raises(UsageError, match="symbol 2 has no Instrument"):
            c.new_order(2, Side.BUY, Decimal("1"), 1)
        v.send(report(1, coid, price=15005, qty=5000))
        r = c.wait_for(coid, EventKind.ACCEPTED)
        assert c.price(r) == Decimal("150.05")
        assert c.quantity(r) == Decimal("0.5")
        c.modify(coid, "150.10", Decimal("0.25"))
        m = v.expect(Modify)
        assert (m.new_price, m.new_qty) == (15010, 2500)


def test_order_view_follows_reports() -> None:
    with ScriptedVenue() as v, logged_on(v) as c:
        a = c.new_order(1, Side.BUY, 100, 10)
        b = c.new_order(1, Side.BUY, 99, 5)
        c.cancel(b)
        c.cancel(a)  # refused below: a is filled by then
        dup = c.new_order(1, Side.BUY, 98, 1, client_order_id=b)  # b is still live
        x = c.new_order(1, Side.SELL, 200, 3)
        v.send(
            report(1, a, qty=10),
            report(2, b, price=99, qty=5),
            report(3, a, EventKind.FILL, qty=4, leaves=6, liquidity=Liquidity.MAKER),
            report(4, b, EventKind.CANCELLED, price=99, qty=5, leaves=0, reason=Reason.USER),
            report(5, a, EventKind.FILL, qty=6, leaves=0, liquidity=Liquidity.MAKER),
            report(6, a, EventKind.REJECTED, price=0, qty=0, leaves=0, reason=Reason.UNKNOWN_ORDER),
            report(7, dup, EventKind.REJECTED, qty=1, leaves=0, reason=Reason.DUPLICATE_ORDER_ID),
            report(8, x, EventKind.REJECTED, qty=3, leaves=0, reason=Reason.PRICE_OUT_OF_BAND),
        )
        assert seqs(take(c, 8)) == list(range(1, 9))
        oa, ob, ox = c.order(a), c.order(b), c.order(x)
        assert oa is not None and ob is not None and ox is not None
        assert (oa.status, oa.filled, oa.leaves, oa.reason) == (
            OrderStatus.FILLED,
            10,
            0,
            Reason.UNKNOWN_ORDER,
        )
        assert (ob.status, ob.leaves, ob.price) == (OrderStatus.CANCELLED, 0, 99)
        assert (ox.status, ox.reason) == (OrderStatus.REJECTED, Reason.PRICE_OUT_OF_BAND)
        assert c.open_orders() == []
        # wait_for sees every report independently of next_report, each once
        assert c.wait_for(a, EventKind.FILL).qty == 4
        assert c.wait_for(a, EventKind.FILL).qty == 6
        assert c.wait_for(a).kind is EventKind.ACCEPTED
        with pytest.raises(VenueTimeout, match=f"order {a}"):
            c.wait_for(a, EventKind.FILL, timeout=0.05)


def test_replace_and_reports_of_another_session_of_the_account() -> None:
    with ScriptedVenue() as v, logged_on(v) as c:
        a = c.new_order(1, Side.SELL, 105, 10)
        c.modify(a, 104, 8)
        v.send(
            report(1, a, side=Side.SELL, price=105, qty=10),
            report(2, a, EventKind.REPLACED, side=Side.SELL, price=104, qty=8),
            report(3, 900, side=Side.BUY, price=90, qty=2),  # entered by another session
        )
        take(c, 3)
        o = c.order(a)
        assert o is not None and (o.price, o.leaves, o.qty, o.status) == (
            104,
            8,
            10,
            OrderStatus.NEW,
        )
        other = c.order(900)
        assert other is not None and other.status is OrderStatus.NEW and other.leaves == 2
        # automatic ids skip ids that are live in the view
        assert c.new_order(1, Side.BUY, 1, 1, client_order_id=None) == 2
        assert [o.client_order_id for o in c.open_orders(1)] == [a, 2, 900]


# ---- the report stream ----


def test_reports_in_order_are_delivered_in_order() -> None:
    with ScriptedVenue() as v, logged_on(v) as c:
        v.send(*(report(s, s) for s in range(1, 21)))
        assert seqs(take(c, 20)) == list(range(1, 21))
        assert c.stats.reports == 20 and c.stats.gaps == 0 and c.next_seq == 21


def test_gap_is_asked_for_on_channel_0_and_filled_in_order() -> None:
    rs = [report(s, s) for s in range(1, 8)]
    with ScriptedVenue(reports=rs) as v, logged_on(v) as c:
        v.send(rs[0], rs[3], rs[4])  # 2 and 3 lost
        assert v.expect(RetransmitRequest) == RetransmitRequest(0, 2, 2)
        v.send(rs[5], rs[6])
        assert seqs(take(c, 7)) == list(range(1, 8))
        c.sync()
        assert (c.stats.gaps, c.stats.recovered, c.stats.lost, c.stats.duplicates) == (1, 2, 0, 0)
        assert v.retransmit_requests == [RetransmitRequest(0, 2, 2)]


def test_duplicates_are_dropped() -> None:
    rs = [report(s, s) for s in range(1, 5)]
    with ScriptedVenue() as v, logged_on(v) as c:
        v.send(rs[0], rs[0], rs[1], rs[0], rs[2], rs[1], rs[3])
        assert seqs(take(c, 4)) == [1, 2, 3, 4]
        v.send(VenueHeartbeat(5))
        with pytest.raises(VenueTimeout):
            c.next_report(timeout=0.05)
        assert c.stats.duplicates == 3 and c.stats.gaps == 0


def test_heartbeat_reveals_a_trailing_gap() -> None:
    rs = [report(s, s) for s in range(1, 4)]
    with ScriptedVenue(reports=rs) as v, logged_on(v) as c:
        v.send(rs[0], VenueHeartbeat(next_seq=4))  # 2 and 3 never arrived
        assert v.expect(RetransmitRequest) == RetransmitRequest(0, 2, 2)
        assert seqs(take(c, 3)) == [1, 2, 3]
        assert c.stats.heartbeats_received == 1


def test_partial_retransmission_is_asked_for_again() -> None:
    rs = [report(s, s) for s in range(1, 11)]
    with ScriptedVenue(reports=rs, retransmit_mode="partial:3") as v, logged_on(v) as c:
        v.send(rs[0], rs[9])  # 2..9 missing: 8 reports, 3 per answer
        assert seqs(take(c, 10)) == list(range(1, 11))
        assert [(r.from_seq, r.count) for r in v.retransmit_requests] == [(2, 8), (5, 5), (8, 2)]
        assert c.stats.recovered == 8 and c.stats.lost == 0


def test_unavailable_range_is_counted_lost_and_skipped() -> None:
    rs = [report(s, s) for s in range(1, 6)]
    with ScriptedVenue(reports=rs, retransmit_mode="unavailable") as v, logged_on(v) as c:
        v.send(rs[0], rs[3], rs[4])
        assert seqs(take(c, 3)) == [1, 4, 5]
        assert c.stats.lost == 2 and c.next_seq == 6


def test_resumed_stream_asks_for_what_it_missed() -> None:
    rs = [report(s, s) for s in range(1, 9)]
    with ScriptedVenue(reports=rs, logon_answer=LogonAck(9, 5, 1000)) as v, connect(v) as c:
        c.logon(1, KEY, last_seq=5)
        assert v.expect(RetransmitRequest) == RetransmitRequest(0, 6, 3)
        assert seqs(take(c, 3)) == [6, 7, 8]
        assert c.next_seq == 9


def test_new_stream_with_a_stale_last_seq_starts_at_the_venues_number() -> None:
    with ScriptedVenue(logon_answer=LogonAck(1, 5, 1000)) as v, connect(v) as c:
        c.logon(1, KEY, last_seq=40)
        v.send(report(1))
        assert c.next_report().seq == 1
        assert v.retransmit_requests == []


def test_unsequenced_reports_are_delivered_at_once() -> None:
    with ScriptedVenue() as v, logged_on(v) as c:
        v.send(report(1, 1), report(0, 0, EventKind.REJECTED, reason=Reason.MALFORMED))
        out = take(c, 2)
        assert [(r.seq, r.reason) for r in out] == [(1, Reason.NONE), (0, Reason.MALFORMED)]
        assert c.stats.unsequenced == 1 and c.stats.reports == 1


def test_feed_retransmission_through_the_client() -> None:
    feed = [BookUpdate(1, Side.BUY, 100 + i, i + 1) for i in range(6)]
    with ScriptedVenue(feed={3: feed}) as v, logged_on(v) as c:
        res = c.retransmit(3, 2, 3)
        assert res.status is RetransmitStatus.OK
        assert list(res.items()) == [(2, feed[1]), (3, feed[2]), (4, feed[3])]
        assert c.retransmit(9, 1, 1).status is RetransmitStatus.UNKNOWN_CHANNEL
        assert c.retransmit(3, 6, 5).status is RetransmitStatus.PARTIAL
        assert c.stats.retransmit_requests == 3


# ---- the venue misbehaving or leaving ----


def test_malformed_frame_closes_the_session_with_a_protocol_error() -> None:
    with ScriptedVenue() as v, logged_on(v) as c:
        v.send(report(1))
        v.send_bytes(b"\x44\x00\x50\x07" + bytes(64))  # version 7
        assert c.next_report().seq == 1  # what arrived before is still delivered
        with pytest.raises(VenueDisconnected, match="version") as info:
            c.next_report()
        assert isinstance(info.value.__cause__, VenueProtocolError)
        with pytest.raises(VenueDisconnected):
            c.new_order(1, Side.BUY, 1, 1)


def test_unrequested_retransmission_is_a_protocol_error() -> None:
    with ScriptedVenue() as v, logged_on(v) as c:
        v.send(RetransmitReply(1, 0, 5, 1, 0, RetransmitStatus.UNAVAILABLE))
        with pytest.raises(VenueDisconnected, match="never requested"):
            c.next_report()


def test_feed_message_outside_a_retransmission_is_a_protocol_error() -> None:
    with ScriptedVenue() as v, logged_on(v) as c:
        v.send(BookUpdate(1, Side.BUY, 1, 1))
        with pytest.raises(VenueDisconnected, match="outside a retransmission"):
            c.next_report()


def test_venue_going_away_fails_every_waiter() -> None:
    with ScriptedVenue(answer_retransmits=False) as v, logged_on(v) as c:
        fut = c.request_retransmit(2, 1, 5)
        v.close_connection()
        with pytest.raises(VenueDisconnected, match="closed the connection"):
            c.next_report()
        with pytest.raises(VenueDisconnected):
            fut.result(WAIT)
        with pytest.raises(VenueDisconnected):
            c.wait_for(1)


def test_heartbeats_are_sent_when_idle_and_silence_closes_the_session() -> None:
    with ScriptedVenue(logon_answer=LogonAck(1, 1, 20)) as v, connect(v, idle_intervals=3) as c:
        c.logon(1, KEY)
        assert isinstance(v.expect(Heartbeat), Heartbeat)
        # the scripted venue never sends a heartbeat: after 3 intervals the client gives up
        deadline = time.monotonic() + WAIT
        while c.is_open and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(VenueDisconnected, match="nothing heard"):
            c.next_report(timeout=WAIT)
        assert c.stats.heartbeats_sent >= 1


def test_logout_waits_for_the_venue_to_close() -> None:
    with ScriptedVenue() as v, logged_on(v) as c:
        c.new_order(1, Side.BUY, 1, 1)
        v.expect(NewOrder)

        def venue_side() -> None:
            v.expect(codec.Logout)
            v.send(report(1))
            v.close_connection()

        import threading

        t = threading.Thread(target=venue_side)
        t.start()
        c.logout()
        t.join(WAIT)
        assert c.drain_reports()[0].seq == 1
        assert not c.is_open


# ---- asyncio ----


def test_async_client_same_surface() -> None:
    rs = [report(s, s) for s in range(1, 6)]

    async def body(v: ScriptedVenue) -> None:
        c = await AsyncClient.connect("127.0.0.1", v.port, idle_intervals=None, timeout=WAIT)
        async with c:
            ack = await c.logon(1, KEY)
            assert ack.session_id == 77
            coid = await c.new_order(1, Side.BUY, 100, 10)
            assert coid == 1
            v.send(rs[0], rs[2], rs[4])  # 2 and 4 lost
            got = [await c.next_report() for _ in range(5)]
            assert seqs(got) == [1, 2, 3, 4, 5]
            assert (await c.wait_for(1, "ACCEPTED")).seq == 1
            await c.cancel(1)
            await c.modify(1, 101, 5)
            await c.mass_cancel()
            res = await c.retransmit(0, 1, 2)
            assert [m.seq for _, m in res.items()] == [1, 2]  # type: ignore[union-attr]
            await c.sync()
            assert c.stats.gaps == 2 and c.stats.recovered == 2
            with pytest.raises(VenueTimeout):
                await c.next_report(timeout=0.05)
        with pytest.raises(VenueDisconnected):
            await c.new_order(1, Side.BUY, 1, 1)

    with ScriptedVenue(reports=rs) as v:
        asyncio.run(body(v))
        assert isinstance(v.expect(NewOrder), NewOrder)
        assert v.expect(Cancel) == Cancel(1, 1)
        assert v.expect(Modify) == Modify(1, 1, 101, 5)


def test_async_logon_rejected() -> None:
    async def body(port: int) -> None:
        c = await AsyncClient.connect("127.0.0.1", port, idle_intervals=None, timeout=WAIT)
        async with c:
            with pytest.raises(LogonRejected) as info:
                await c.logon(2, "bad")
            assert info.value.reason is Reason.RATE_LIMITED

    with ScriptedVenue(logon_answer=LogonReject(0, Reason.RATE_LIMITED)) as v:
        asyncio.run(body(v.port))


# ---- the protocol core on random streams ----


class _Venue:
    """The other end for ClientProtocol: the full history of reports and retransmit answers
    (at most ``limit`` reports each, PARTIAL beyond)."""

    def __init__(self, n: int, limit: int) -> None:
        self.reports = [report(s, s) for s in range(1, n + 1)]
        self.limit = limit

    def answer(self, req: RetransmitRequest, next_seq: int) -> bytes:
        frames = self.reports[req.from_seq - 1 : req.from_seq - 1 + min(req.count, self.limit)]
        status = RetransmitStatus.OK if len(frames) == req.count else RetransmitStatus.PARTIAL
        reply = RetransmitReply(next_seq, 0, req.from_seq, req.count, len(frames), status)
        return b"".join(codec.encode(m) for m in (reply, *frames))


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 60),
    seed=st.integers(0, 2**32 - 1),
    drop=st.floats(0, 0.6),
    dup=st.floats(0, 0.3),
    limit=st.integers(1, 10),
    piece=st.integers(1, 80),
)
def test_protocol_core_delivers_each_report_once_in_order(
    n: int, seed: int, drop: float, dup: float, limit: int, piece: int
) -> None:
    rnd = random.Random(seed)
    venue = _Venue(n, limit)
    core = ClientProtocol()
    core.logon(1, KEY, 1000)
    # the live stream: (frame, highest report number the venue has sent once it is out)
    live: list[tuple[bytes, int]] = [(codec.encode(LogonAck(1, 9, 1000)), 0)]
    for r in venue.reports:
        if rnd.random() >= drop:
            live.append((codec.encode(r), r.seq))
        else:
            live.append((b"", r.seq))  # lost on the way
        if rnd.random() < dup:
            live.append((codec.encode(venue.reports[rnd.randrange(r.seq)]), r.seq))
    live.append((codec.encode(VenueHeartbeat(n + 1)), n))  # reveals a lost tail
    pending: list[RetransmitRequest] = []  # answered later, in order, between live frames
    i = high = 0
    while i < len(live) or pending:
        if pending and (i >= len(live) or rnd.random() < 0.3):
            data = venue.answer(pending.pop(0), high + 1)
        else:
            k = rnd.randint(1, 5)
            data = b"".join(f for f, _ in live[i : i + k])
            high = max(high, *(h for _, h in live[i : i + k]))
            i += k
        for j in range(0, len(data), piece):  # arbitrary TCP segmentation
            for frame in core.data_received(data[j : j + piece]):
                req, _ = codec.decode(frame)
                assert isinstance(req, RetransmitRequest) and req.channel == 0
                assert req.from_seq + req.count <= high + 1  # only what was sent
                pending.append(req)
    assert [r.seq for r in core.reports] == list(range(1, n + 1))
    assert core.stats.lost == 0 and not core.recovering
    assert core.stats.reports == n
