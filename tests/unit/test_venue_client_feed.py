"""The feed subscriber (``tradecore.venue.feed``) with crafted datagrams on real UDP sockets.

Datagrams are built with the codec and sent to a :class:`FeedSubscriber` bound on 127.0.0.1;
gaps are recovered over TCP from the scripted venue of ``test_venue_client_support`` through a
logged-on :class:`Client`. Each test checks the counters and that the books equal the books
built by applying every message in order. A property test drives :class:`FeedState` (no I/O)
with random losses, duplicates, reordering, partial answers and bad datagrams. The command
``tradecore feed`` runs as a subprocess on a real port.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_venue_client_support import WAIT, ScriptedVenue
from tradecore.enums import EventKind, Reason, Side
from tradecore.errors import ConfigError, UsageError
from tradecore.venue.client import Client, RetransmitResult
from tradecore.venue.codec import (
    BookUpdate,
    FeedMessage,
    FeedReport,
    Liquidity,
    RetransmitReply,
    RetransmitRequest,
    RetransmitStatus,
    Trade,
    encode_datagram,
)
from tradecore.venue.feed import (
    FeedBook,
    FeedState,
    FeedSubscriber,
    RecoveryRequest,
    load_feed_settings,
)

ROOT = Path(__file__).resolve().parents[2]


def stream(n: int, seed: int = 1, symbols: int = 2) -> list[FeedMessage]:
    """``n`` feed messages: book updates on a few levels (some removing a level) and trades."""
    rnd = random.Random(seed)
    out: list[FeedMessage] = []
    for _ in range(n):
        sym = rnd.randint(1, symbols)
        if rnd.random() < 0.15:
            out.append(Trade(sym, Side.BUY, 100 + rnd.randint(0, 5), rnd.randint(1, 9), 1))
        else:
            side = rnd.choice([Side.BUY, Side.SELL])
            qty = 0 if rnd.random() < 0.25 else rnd.randint(1, 500)
            price = (95 if side is Side.BUY else 105) + rnd.randint(-4, 4)
            out.append(BookUpdate(sym, side, price, qty))
    return out


def books_of(msgs: list[FeedMessage]) -> dict[int, dict[str, dict[int, int]]]:
    books: dict[int, FeedBook] = {}
    for m in msgs:
        if isinstance(m, BookUpdate):
            books.setdefault(m.symbol_id, FeedBook(m.symbol_id)).apply(m.side, m.price, m.qty)
    return {s: b.as_dict() for s, b in books.items() if b.bids or b.asks}


def datagrams(channel: int, msgs: list[FeedMessage], per: int = 3) -> list[bytes]:
    """Datagram ``k`` holds messages ``per*k ..`` (numbers from 1)."""
    return [encode_datagram(channel, i + 1, msgs[i : i + per]) for i in range(0, len(msgs), per)]


class Sender:
    """A UDP socket that sends to the subscriber."""

    def __init__(self, sub: FeedSubscriber) -> None:
        self.dest = sub.address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def __call__(self, *data: bytes) -> None:
        for d in data:
            self.sock.sendto(d, self.dest)

    def close(self) -> None:
        self.sock.close()


def until(sub: FeedSubscriber, pred: object) -> None:
    assert callable(pred)
    assert sub.wait_until(lambda s: bool(pred(s)), WAIT), (sub.stats, sub.state.followed())


def recovering_client(venue: ScriptedVenue) -> Client:
    c = Client("127.0.0.1", venue.port, idle_intervals=None, timeout=WAIT)
    c.logon(1, "k")
    return c


# ---- in order, duplicates, bad datagrams (no venue) ----


def test_in_order_datagrams_build_the_books() -> None:
    msgs = stream(40)
    with FeedSubscriber("127.0.0.1:0") as sub:
        send = Sender(sub)
        send(*datagrams(1, msgs))
        until(sub, lambda s: s.next_seq(1) == 41)
        send.close()
        assert sub.snapshot() == books_of(msgs)
        st_ = sub.stats
        assert (st_.messages, st_.gaps, st_.duplicates, st_.lost, st_.bad_datagrams) == (
            40,
            0,
            0,
            0,
            0,
        )
        assert st_.trades + st_.book_updates == 40 and sub.synced


def test_duplicates_and_overlaps_are_dropped() -> None:
    msgs = stream(12)
    dgs = datagrams(1, msgs, per=4)
    with FeedSubscriber("127.0.0.1:0") as sub:
        send = Sender(sub)
        overlap = encode_datagram(1, 3, msgs[2:7])  # 3..7: 3..4 seen, 5..7 new
        send(dgs[0], dgs[0], overlap, dgs[1], dgs[0], dgs[2], dgs[2])
        until(sub, lambda s: s.stats.datagrams == 7)
        send.close()
        assert sub.next_seq(1) == 13 and sub.snapshot() == books_of(msgs)
        # dgs[0] twice more, dgs[1] (5..8: 5..7 already applied, 8 new) is not a duplicate
        assert sub.stats.duplicates == 3
        assert sub.stats.duplicate_messages == 4 + 2 + 3 + 4 + 4
        assert sub.stats.messages == 12 and sub.stats.gaps == 0


def test_bad_datagrams_are_counted_and_their_messages_missing() -> None:
    msgs = stream(6)
    good = datagrams(1, msgs, per=2)
    bad = [
        b"\x01\x00",  # shorter than the packet header
        bytearray(good[1]),
        encode_datagram(1, 3, msgs[2:4])[:-3],  # a frame cut short
        b"\x01" + bytes(15) + bytes(1480),  # longer than 1472
    ]
    bad[1][14] = 9  # bad version
    with FeedSubscriber("127.0.0.1:0") as sub:
        send = Sender(sub)
        send(good[0], *map(bytes, bad), good[2])
        until(sub, lambda s: s.stats.datagrams == 6)
        send.close()
        assert sub.stats.bad_datagrams == 4
        # no venue: the gap (3..4) is counted and skipped
        assert (sub.stats.gaps, sub.stats.lost, sub.next_seq(1)) == (1, 2, 7)
        assert sub.state.last_error is not None
        assert sub.state.lost(1) == 2


def test_heartbeat_datagram_reveals_a_lost_tail_and_channels_are_separate() -> None:
    a, b = stream(5, seed=1), stream(4, seed=2)
    with FeedSubscriber("127.0.0.1:0") as sub:
        send = Sender(sub)
        send(encode_datagram(1, 1, a[:3]), encode_datagram(2, 1, b))
        send(encode_datagram(1, 6, []))  # channel 1 says: next is 6 (4 and 5 lost)
        until(sub, lambda s: s.stats.datagrams == 3)
        send.close()
        assert sub.stats.heartbeats == 1
        assert (sub.next_seq(1), sub.state.lost(1), sub.next_seq(2), sub.state.lost(2)) == (
            6,
            2,
            5,
            0,
        )


def test_channel_filter_ignores_other_channels() -> None:
    with FeedSubscriber("127.0.0.1:0", channels=[1]) as sub:
        send = Sender(sub)
        send(encode_datagram(2, 1, stream(2)), encode_datagram(1, 1, stream(2)))
        until(sub, lambda s: s.stats.datagrams == 2)
        send.close()
        assert sub.stats.ignored == 1 and sub.stats.messages == 2


def test_tail_mode_starts_at_the_first_number_seen() -> None:
    msgs = stream(9)
    with FeedSubscriber("127.0.0.1:0", from_start=False) as sub:
        send = Sender(sub)
        send(*datagrams(1, msgs)[1:])  # 4..9
        until(sub, lambda s: s.next_seq(1) == 10)
        send.close()
        assert sub.stats.gaps == 0 and sub.stats.messages == 6


# ---- recovery over TCP ----


def test_gap_is_recovered_over_tcp_and_later_messages_wait() -> None:
    msgs = stream(30)
    dgs = datagrams(1, msgs)  # 10 datagrams of 3
    applied: list[int] = []
    with (
        ScriptedVenue(feed={1: msgs}, answer_retransmits=False) as v,
        recovering_client(v) as c,
        FeedSubscriber(
            "127.0.0.1:0", client=c, on_message=lambda ch, s, m: applied.append(s)
        ) as sub,
    ):
        sub.start()
        send = Sender(sub)
        send(dgs[0], dgs[2], dgs[3])  # 4..6 dropped
        req = v.expect(RetransmitRequest)
        assert req == RetransmitRequest(1, 4, 3)
        # meanwhile the feed goes on: held, not applied
        send(*dgs[4:])
        until(sub, lambda s: s.stats.datagrams == 9)
        assert sub.next_seq(1) == 4 and not sub.synced
        v.answer(req)
        until(sub, lambda s: s.next_seq(1) == 31)
        send.close()
        assert applied == list(range(1, 31))
        assert sub.snapshot() == books_of(msgs)
        assert (sub.stats.gaps, sub.stats.recovered, sub.stats.lost) == (1, 3, 0)
        assert sub.stats.retransmit_requests == 1 and sub.synced


def test_many_gaps_partial_answers_and_a_late_start() -> None:
    msgs = stream(200, seed=7)
    dgs = datagrams(1, msgs, per=4)
    rnd = random.Random(3)
    kept = [d for i, d in enumerate(dgs) if i >= 5 and rnd.random() > 0.3]  # 1..20 never seen
    with (
        ScriptedVenue(feed={1: msgs}, retransmit_mode="partial:7") as v,
        recovering_client(v) as c,
        FeedSubscriber("127.0.0.1:0", client=c) as sub,
    ):
        sub.start()
        send = Sender(sub)
        send(*kept)
        if kept[-1] != dgs[-1]:
            send(encode_datagram(1, 201, []))  # a heartbeat reveals the tail
        until(sub, lambda s: s.next_seq(1) == 201 and s.synced)
        send.close()
        assert sub.snapshot() == books_of(msgs)
        assert sub.stats.lost == 0 and sub.stats.gaps >= 2
        assert sub.stats.recovered == 200 - 4 * len(kept)
        assert sub.stats.retransmit_requests > sub.stats.gaps  # partial answers asked again
        assert all(r.count >= 1 and r.channel == 1 for r in v.retransmit_requests)


def test_unavailable_range_is_lost_and_the_feed_goes_on() -> None:
    msgs = stream(12)
    dgs = datagrams(1, msgs)
    with (
        ScriptedVenue(feed={1: msgs}, retransmit_mode="unavailable") as v,
        recovering_client(v) as c,
        FeedSubscriber("127.0.0.1:0", client=c) as sub,
    ):
        sub.start()
        send = Sender(sub)
        send(dgs[0], dgs[2], dgs[3])
        until(sub, lambda s: s.next_seq(1) == 13)
        send.close()
        assert (sub.stats.lost, sub.stats.recovered, sub.state.lost(1)) == (3, 0, 3)


def test_venue_lost_during_recovery_counts_the_range_lost() -> None:
    msgs = stream(9)
    dgs = datagrams(1, msgs)
    with (
        ScriptedVenue(feed={1: msgs}, answer_retransmits=False) as v,
        recovering_client(v) as c,
        FeedSubscriber("127.0.0.1:0", client=c) as sub,
    ):
        sub.start()
        send = Sender(sub)
        send(dgs[0], dgs[2])
        v.expect(RetransmitRequest)
        v.close_connection()
        until(sub, lambda s: s.next_seq(1) == 10)
        send.close()
        assert sub.stats.lost == 3
        assert sub.state.last_recovery_error is not None


def test_drop_copy_reports_are_sequenced_too() -> None:
    fr = FeedReport(
        3, 1, 5, 9, 1, EventKind.FILL, Reason.NONE, Side.SELL, Liquidity.MAKER, 101, 2, 0, 7
    )
    seen: list[tuple[int, int, FeedMessage]] = []
    with FeedSubscriber("127.0.0.1:0", on_message=lambda *a: seen.append(a)) as sub:
        send = Sender(sub)
        send(encode_datagram(9, 1, [fr, fr]))
        until(sub, lambda s: s.stats.messages == 2)
        send.close()
    assert seen == [(9, 1, fr), (9, 2, fr)] and sub.stats.reports == 2


# ---- FeedState on random streams (no I/O) ----


@settings(max_examples=120, deadline=None)
@given(
    n=st.integers(1, 120),
    seed=st.integers(0, 2**32 - 1),
    drop=st.floats(0, 0.5),
    dup=st.floats(0, 0.3),
    swap=st.floats(0, 0.3),
    bad=st.floats(0, 0.1),
    per=st.integers(1, 6),
    limit=st.integers(1, 20),
    late=st.integers(0, 3),
)
def test_state_ends_with_the_venue_book_whatever_the_network_does(
    n: int,
    seed: int,
    drop: float,
    dup: float,
    swap: float,
    bad: float,
    per: int,
    limit: int,
    late: int,
) -> None:
    rnd = random.Random(seed)
    msgs = stream(n, seed=seed)
    dgs = datagrams(1, msgs, per)[late:]  # a late joiner misses the first datagrams
    wire: list[bytes] = []
    for d in dgs:
        if rnd.random() < bad:
            wire.append(d[:-1])  # a damaged copy, then maybe the real one
        if rnd.random() >= drop:
            wire.append(d)
        if rnd.random() < dup:
            wire.append(rnd.choice(dgs))
        if len(wire) > 1 and rnd.random() < swap:
            wire[-1], wire[-2] = wire[-2], wire[-1]
    wire.append(encode_datagram(1, n + 1, []))  # the venue's heartbeat
    applied: list[int] = []
    state = FeedState(on_message=lambda ch, s, m: applied.append(s))
    pending: list[RecoveryRequest] = []
    while wire or pending:
        if pending and (not wire or rnd.random() < 0.4):
            req = pending.pop(0)
            got = msgs[req.from_seq - 1 : req.from_seq - 1 + min(req.count, limit)]
            status = RetransmitStatus.OK if len(got) == req.count else RetransmitStatus.PARTIAL
            reply = RetransmitReply(0, 1, req.from_seq, req.count, len(got), status)
            pending += state.recovered(req, RetransmitResult(reply, tuple(got)))
        else:
            pending += state.datagram(wire.pop(0))
    assert applied == list(range(1, n + 1))
    assert {s: b.as_dict() for s, b in state.books.items() if b.bids or b.asks} == books_of(msgs)
    assert state.stats.lost == 0 and state.synced


# ---- settings and the command line ----


def test_load_feed_settings_of_the_example_config() -> None:
    s = load_feed_settings(ROOT / "config" / "venue.example.toml")
    assert (s.mode, s.address, s.interface, s.order_entry) == (
        "multicast",
        "239.255.0.1:7100",
        "127.0.0.1",
        "127.0.0.1:7001",
    )
    assert (s.market_data_channel, s.report_channel) == (1, 0)
    assert s.instruments[1].symbol == "BTC-USD" and str(s.instruments[2].lot_size) == "0.001"


def test_load_feed_settings_names_the_bad_field(tmp_path: Path) -> None:
    f = tmp_path / "v.toml"
    f.write_text('[feed]\nmode = "broadcast"\n')
    with pytest.raises(ConfigError, match=r"v.toml: feed.mode: must be unicast or multicast"):
        load_feed_settings(f)
    f.write_text('[[instrument]]\nsymbol_id = 1\nsymbol = "X"\ntick_size = "0.01"\n')
    with pytest.raises(ConfigError, match=r"instrument\[0\].lot_size: missing"):
        load_feed_settings(f)
    f.write_text("[feed\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_feed_settings(f)
    with pytest.raises(ConfigError, match="cannot read"):
        load_feed_settings(tmp_path / "missing.toml")


def test_subscriber_address_checks() -> None:
    with pytest.raises(UsageError, match="loopback"):
        FeedSubscriber("192.0.2.1:7100")
    with FeedSubscriber("127.0.0.1:0") as sub, pytest.raises(UsageError, match="cannot receive"):
        FeedSubscriber(f"127.0.0.1:{sub.address[1]}")  # the port is taken


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_feed(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tradecore", "feed", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _send_until_done(proc: subprocess.Popen[str], port: int, dgs: list[bytes]) -> None:
    """Sends the datagrams again and again until the command exits (it may not be listening
    yet when the first ones go out; repeats are duplicates to it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(int(WAIT / 0.05)):
            for d in dgs:
                s.sendto(d, ("127.0.0.1", port))
            try:
                proc.wait(0.05)
                return
            except subprocess.TimeoutExpired:
                continue
    proc.kill()


def test_feed_command_prints_messages_and_a_summary() -> None:
    port = _free_udp_port()
    msgs = [BookUpdate(1, Side.BUY, 15005, 100), Trade(1, Side.SELL, 15005, 40, 1)]
    proc = _run_feed(["--port", str(port), "--count", "2"])
    _send_until_done(proc, port, [encode_datagram(1, 1, msgs)])
    out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == "ch1 #1 BOOK  1 BUY  15005 x 100"
    assert lines[1] == "ch1 #2 TRADE 1 SELL 15005 x 40"
    assert lines[2].startswith("feed: datagrams=") and "messages=2 gaps=0" in lines[2]
    assert "bid 100@15005" in lines[3]


def test_feed_command_recovers_over_tcp_with_json_output(tmp_path: Path) -> None:
    port = _free_udp_port()
    msgs = stream(9, seed=4)
    dgs = datagrams(1, msgs)
    cfg = tmp_path / "venue.toml"
    with ScriptedVenue(feed={1: msgs}) as v:
        cfg.write_text(
            f'[listen]\norder_entry = "127.0.0.1:{v.port}"\n'
            f'[feed]\nmode = "unicast"\naddress = "127.0.0.1:{port}"\n'
            '[[instrument]]\nsymbol_id = 1\nsymbol = "AAA"\ntick_size = "0.5"\n'
            'lot_size = "0.1"\n'
            '[[instrument]]\nsymbol_id = 2\nsymbol = "BBB"\ntick_size = "1"\nlot_size = "1"\n'
        )
        proc = _run_feed(
            ["--config", str(cfg), "--account", "1", "--count", "9", "--json"],
            env={"TRADECORE_API_KEY": "some-key"},
        )
        _send_until_done(proc, port, [dgs[0], dgs[2]])  # 4..6 only by recovery
        out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["seq"] for r in rows[:9]] == list(range(1, 10))
    first = msgs[0]
    assert rows[0]["symbol"] == ("AAA" if first.symbol_id == 1 else "BBB")
    summary = rows[9]
    assert summary["type"] == "summary" and summary["recovered"] == 3 and summary["lost"] == 0
    assert v.retransmit_requests[0] == RetransmitRequest(1, 4, 3)


def test_feed_command_usage_errors() -> None:
    proc = _run_feed([])
    _, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 2 and "give --config FILE, --group GROUP:PORT or --port" in err
    proc = _run_feed(["--port", "1", "--venue", "127.0.0.1:1"])
    _, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 2 and "needs --account and an API key" in err
    proc = _run_feed(["--group", "10.1.2.3:7100", "--no-recovery"])
    _, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 2 and "loopback" in err


def test_feed_book_views() -> None:
    b = FeedBook(1)
    for side, px, q in [(Side.BUY, 99, 5), (Side.BUY, 100, 1), (Side.SELL, 101, 2)]:
        b.apply(side, px, q)
    b.apply(Side.SELL, 103, 7)
    b.apply(Side.SELL, 103, 0)
    assert b.best_bid() == (100, 1) and b.best_ask() == (101, 2)
    assert b.levels(Side.BUY) == [(100, 1), (99, 5)] and b.levels(Side.SELL, 1) == [(101, 2)]
    c = FeedBook(1)
    assert b != c
    for side in (Side.BUY, Side.SELL):
        for px, q in b.levels(side):
            c.apply(side, px, q)
    assert b == c and b.as_dict() == {"BUY": {99: 5, 100: 1}, "SELL": {101: 2}}
