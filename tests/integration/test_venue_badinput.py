"""Bad input against a real ``tradecore serve`` subprocess over real sockets (issue 3, "Proof"):
random bytes, oversized lengths, unknown types, a wrong version, a wrong length, frames of the
wrong direction, bad enums and keys, orders before logon, a wrong key, a flood past the rate
limit, cancels and modifies of another account's orders, half frames.

Each gets the reject and reason ``docs/protocol.md`` gives, the connection is closed exactly
where the spec says (at once when the framing is lost, nothing after the bad frame executes;
after the ``max_malformed``-th delimited bad frame; never for rejects the venue answers with a
reason), the venue keeps serving the other sessions, and **the state hash is unchanged**: the
same script is run twice on fresh venues, once with the bad input and once with only its good
part, and the two stop hashes (each equal to ``tradecore replay``'s) must be equal.

The state hash covers every book, the id maps, the sessions and each account's report counter.
A refused request that the venue answers with a *sequenced* reject (``UNKNOWN_ORDER``,
``RATE_LIMITED``) rightly advances its account's counter, so the good run sends, in its place,
a cancel of a client order id that was never used (``UNKNOWN_ORDER`` too): the comparison then
says that a cancel of another account's order, or a rate-limited order, has exactly the effect
of a request naming nothing. Every connection of the bad run has its twin in the good run, in
the same order, so session ids line up. The Rust test ``crates/engine/tests/server.rs`` checks
the reject shapes in-process; this file adds the wire-level closing points, the rate limit,
modifies, half frames, wrong direction and version, and the hash comparison between runs.
"""

from __future__ import annotations

import hashlib
import json
import random
import select
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tradecore._core import replay_journal
from tradecore.enums import EventKind, OrderType, Reason, Side, Stp, TimeInForce
from tradecore.venue import codec
from tradecore.venue.server import ServeProcess

WAIT = 15.0
SEED = 20240613
BURST = 20
FLOOD = 60
PER_SESSION = 15
"""Unknown-order cancels the good run sends per extra session (below the burst)."""


def _key(account: int) -> str:
    return f"bad-input-key-{account}"


def _config(tmp: Path) -> Path:
    accounts = "".join(
        f'[[account]]\naccount = {a}\napi_key_sha256 = "'
        f'{hashlib.sha256(_key(a).encode()).hexdigest()}"\n\n'
        for a in (1, 2, 3, 4)
    )
    text = f"""
[listen]
order_entry = "127.0.0.1:0"
metrics = "127.0.0.1:0"

[session]
cancel_on_disconnect = false
rate_limit_per_sec = 1
rate_limit_burst = {BURST}
max_malformed = 3
heartbeat_ms = 1000
idle_timeout_ms = 60000

[journal]
dir = "journal"
fsync = "none"
snapshot_every = 0

[feed]
enabled = false

[[instrument]]
symbol_id = 1
symbol = "BAD"
tick_size = "0.01"
lot_size = "1"
price_band = {{ lo_ticks = 1, hi_ticks = 100000 }}
max_order_qty = 1000000
book_capacity = 1024

{accounts}"""
    path = tmp / "venue.toml"
    path.write_text(text)
    return path


def _order(coid: int, side: Side, price: int, qty: int) -> codec.NewOrder:
    return codec.NewOrder(
        client_order_id=coid,
        symbol_id=1,
        side=side,
        order_type=OrderType.LIMIT,
        tif=TimeInForce.GTC,
        post_only=False,
        stp=Stp.NONE,
        price=price,
        qty=qty,
    )


def _frame(msg: codec.ClientMessage | codec.VenueMessage) -> bytes:
    return codec.encode(msg)


class Conn:
    """A raw order-entry connection: bytes out, decoded venue frames in."""

    def __init__(self, addr: tuple[str, int]) -> None:
        self.sock = socket.create_connection(addr, timeout=WAIT)
        self.buf = b""
        self.eof = False

    def send(self, data: bytes | codec.ClientMessage) -> None:
        self.sock.sendall(data if isinstance(data, bytes) else codec.encode(data))

    def _fill(self) -> bool:
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def recv(self) -> codec.VenueMessage | None:
        """The next venue message other than a heartbeat; None at end of stream."""
        while True:
            try:
                msg, n = codec.decode_from_venue(self.buf)
            except codec.IncompleteFrame:
                if self.eof or not self._fill():
                    assert not self.buf, f"the venue closed inside a frame: {self.buf!r}"
                    return None
                continue
            self.buf = self.buf[n:]
            assert not isinstance(msg, codec.FeedMessage), msg
            if not isinstance(msg, codec.VenueHeartbeat):
                return msg

    def report(self) -> codec.ExecutionReport:
        msg = self.recv()
        assert isinstance(msg, codec.ExecutionReport), msg
        return msg

    def until_closed(self) -> list[codec.VenueMessage]:
        """Every message until the venue closes the connection (fails after WAIT)."""
        out = []
        while (msg := self.recv()) is not None:
            out.append(msg)
        return out

    def silent_for(self, seconds: float) -> bool:
        """True if nothing but heartbeats arrives for ``seconds`` (the connection stays open)."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if not select.select([self.sock], [], [], left)[0]:
                return True
            if not self._fill():
                return False
            while True:
                try:
                    msg, n = codec.decode_from_venue(self.buf)
                except codec.IncompleteFrame:
                    break
                if not isinstance(msg, codec.VenueHeartbeat):
                    return False
                self.buf = self.buf[n:]
        return True

    def logon(self, account: int) -> codec.LogonAck:
        self.send(codec.Logon(account=account, api_key=_key(account), heartbeat_ms=1000))
        ack = self.recv()
        assert isinstance(ack, codec.LogonAck), ack
        return ack

    def logout(self) -> None:
        self.send(codec.Logout())
        assert self.until_closed() == []
        self.close()

    def close(self) -> None:
        self.sock.close()


def _malformed(r: object, coid: int = 0, symbol: int = 0) -> None:
    assert isinstance(r, codec.ExecutionReport), r
    assert (r.seq, r.kind, r.reason, r.client_order_id, r.symbol_id, r.order_id) == (
        0,
        EventKind.REJECTED,
        Reason.MALFORMED,
        coid,
        symbol,
        0,
    ), r


def _accepted(r: codec.ExecutionReport, coid: int, seq: int) -> None:
    assert (r.kind, r.client_order_id, r.seq) == (EventKind.ACCEPTED, coid, seq), r


def _framing_lost_blobs(rng: random.Random, n: int) -> list[bytes]:
    """Random byte strings whose first frame header the codec refuses (steps 2 to 5)."""
    out: list[bytes] = []
    kinds: set[str] = set()
    while len(out) < n:
        blob = rng.randbytes(rng.randint(4, 300))
        if rng.random() < 0.5:  # half of them with a plausible version byte
            blob = blob[:3] + b"\x01" + blob[4:]
        try:
            codec.decode_from_client(blob)
        except codec.IncompleteFrame:
            continue
        except codec.ProtocolError as e:
            if e.kind in ("bad_version", "oversized", "unknown_type", "bad_length"):
                out.append(blob)
                kinds.add(e.kind)
            continue
    return out


@dataclass
class Run:
    """What one run of the script saw."""

    state_hash: str = ""
    accepted_in_flood: list[int] = field(default_factory=list)
    refused_in_flood: int = 0
    streams: dict[int, list[tuple[object, ...]]] = field(default_factory=dict)


def _script(addr: tuple[str, int], bad: bool, flood: list[int] | None, run: Run) -> None:
    """The session script; ``bad`` sends the bad input, else only its good part. ``flood``
    (good run) is the client order ids the bad run's flood got accepted."""
    rng = random.Random(SEED)
    # Two good sessions trade with each other, and stay open throughout.
    a1, a2 = Conn(addr), Conn(addr)
    assert a1.logon(1).next_seq == 1
    assert a2.logon(2).next_seq == 1
    a1.send(_order(1, Side.BUY, 100, 10))
    _accepted(a1.report(), 1, 1)
    a1.send(_order(2, Side.SELL, 110, 5))
    _accepted(a1.report(), 2, 2)
    a2.send(_order(1, Side.SELL, 100, 4))
    _accepted(a2.report(), 1, 1)
    fill = a2.report()
    assert (fill.kind, fill.seq, fill.liquidity) == (EventKind.FILL, 2, codec.Liquidity.TAKER)
    maker = a1.report()
    assert (maker.seq, maker.kind, maker.leaves) == (3, EventKind.FILL, 6)

    # 1. Random bytes whose header is refused: one MALFORMED (no ids, seq 0), then closed.
    for blob in _framing_lost_blobs(rng, 8):
        c = Conn(addr)
        if bad:
            c.send(blob)
            seen = c.until_closed()
            assert len(seen) == 1, (blob.hex(), seen)
            _malformed(seen[0])
        c.close()

    # 2. Oversized lengths, unknown type, bad length (after a logon): the reject comes from
    # the header alone (no body is sent or awaited), then the connection is closed.
    for header in (
        bytes([0x2C, 0x01, 0x10, 0x01]),  # length 300 > 256
        bytes([0xFF, 0xFF, 0x12, 0x01]),  # length 65535
        bytes([0x04, 0x00, 0x30, 0x01]),  # type 0x30 is unassigned
        bytes([0x11, 0x00, 0x11, 0x01]),  # Cancel is 16 bytes, not 17
        bytes([0x25, 0x00, 0x10, 0x02]),  # NewOrder header with version 2
    ):
        c = Conn(addr)
        c.logon(3)
        if bad:
            c.send(header)
            seen = c.until_closed()
            assert len(seen) == 1, (header.hex(), seen)
            _malformed(seen[0])
        c.close()

    # 3. Exactly where: a good order, a wrong-version frame, a good order, in one write: the
    # first executes, the reject follows, the connection closes, the last never executes.
    c = Conn(addr)
    seq3 = c.logon(3).next_seq
    first = _frame(_order(8, Side.BUY, 50, 1))
    if bad:
        wrong = bytearray(_frame(_order(9, Side.BUY, 51, 1)))
        wrong[3] = 2
        c.send(first + bytes(wrong) + _frame(_order(10, Side.BUY, 52, 1)))
        seen = c.until_closed()
        assert len(seen) == 2, seen
        assert isinstance(seen[0], codec.ExecutionReport)
        _accepted(seen[0], 8, seq3)
        _malformed(seen[1])
        c.close()
    else:
        c.send(first)
        _accepted(c.report(), 8, seq3)
        c.close()
    seq3 += 1

    # 4. Delimited bad frames (wrong direction, bad enum, bad API key): each rejected with its
    # ids, the session goes on until the third, which closes it; what follows never executes.
    c = Conn(addr)
    assert c.logon(3).next_seq == seq3
    if bad:
        report = codec.ExecutionReport(
            seq=1,
            client_order_id=555,
            order_id=1,
            symbol_id=1,
            kind=EventKind.FILL,
            reason=Reason.NONE,
            side=Side.BUY,
            liquidity=codec.Liquidity.MAKER,
            price=100,
            qty=1,
            leaves=0,
            timestamp_ns=1,
        )
        c.send(_frame(report))
        # The venue echoes the ids of requests only (NewOrder, Cancel, Modify; MassCancel's
        # symbol); a venue -> client frame is not a request, so its ids are not echoed.
        _malformed(c.report())
    c.send(_order(11, Side.BUY, 53, 1))
    _accepted(c.report(), 11, seq3)
    seq3 += 1
    if bad:
        enum = bytearray(_frame(_order(12, Side.SELL, 54, 1)))
        enum[16] = 9  # side
        c.send(bytes(enum))
        _malformed(c.report(), 12, 1)
        assert c.silent_for(0.2)  # two malformed frames: still open
        key = bytearray(_frame(codec.Logon(account=3, api_key="x", heartbeat_ms=1000)))
        key[8] = 0x01  # not an ASCII graphic character
        c.send(bytes(key) + _frame(_order(13, Side.BUY, 55, 1)))
        seen = c.until_closed()
        assert len(seen) == 1, seen
        _malformed(seen[0])
    c.close()

    # 5. Orders before logon: NOT_LOGGED_IN with the request's ids, unsequenced; the
    # connection stays usable and logs on afterwards.
    c = Conn(addr)
    if bad:
        c.send(_order(20, Side.BUY, 60, 1))
        c.send(codec.Cancel(client_order_id=1, symbol_id=1))
        c.send(codec.Modify(client_order_id=2, symbol_id=1, new_price=111, new_qty=1))
        c.send(codec.MassCancel(symbol_id=0))
        for coid in (20, 1, 2, 0):
            r = c.report()
            assert (r.seq, r.kind, r.reason, r.client_order_id, r.order_id) == (
                0,
                EventKind.REJECTED,
                Reason.NOT_LOGGED_IN,
                coid,
                0,
            ), r
    assert c.logon(4).next_seq == 1
    c.logout()
    # A wrong key: LogonReject NOT_LOGGED_IN, then closed.
    c = Conn(addr)
    if bad:
        c.send(codec.Logon(account=1, api_key="not-the-key", heartbeat_ms=1000))
        seen = c.until_closed()
        assert len(seen) == 1 and isinstance(seen[0], codec.LogonReject), seen
        assert seen[0].reason == Reason.NOT_LOGGED_IN
    c.close()

    # 6. Another account's orders: cancel and modify of account 1's live orders by their
    # client order ids are UNKNOWN_ORDER, exactly like ids never used (the good run's twin);
    # account 3's mass cancel cancels only its own orders (8 and 11).
    c = Conn(addr)
    assert c.logon(3).next_seq == seq3
    victim = (1, 2) if bad else (901, 902)
    c.send(codec.Cancel(client_order_id=victim[0], symbol_id=1))
    c.send(codec.Modify(client_order_id=victim[1], symbol_id=1, new_price=111, new_qty=1))
    for coid in victim:
        r = c.report()
        assert (r.seq, r.kind, r.reason, r.client_order_id, r.order_id, r.leaves) == (
            seq3,
            EventKind.REJECTED,
            Reason.UNKNOWN_ORDER,
            coid,
            0,
            0,
        ), r
        seq3 += 1
    c.send(codec.MassCancel(symbol_id=0))
    for coid in (8, 11):
        r = c.report()
        assert (r.seq, r.kind, r.reason, r.client_order_id) == (
            seq3,
            EventKind.CANCELLED,
            Reason.MASS_CANCEL,
            coid,
        ), r
        seq3 += 1
    c.logout()

    # 7. Half frames: one then a disconnect (nothing executes), one completed later (it
    # waits, unanswered, then executes).
    c = Conn(addr)
    c.logon(3)
    if bad:
        c.send(_frame(_order(30, Side.BUY, 61, 1))[:20])
    c.close()
    c = Conn(addr)
    c.logon(3)
    whole = _frame(_order(31, Side.BUY, 62, 1))
    if bad:
        c.send(whole[:20])
        assert c.silent_for(0.3)
        c.send(whole[20:])
    else:
        c.send(whole)
    _accepted(c.report(), 31, seq3)
    seq3 += 1
    c.logout()

    # 8. A flood past the rate limit: the bucket's BURST orders are accepted, the rest
    # rejected RATE_LIMITED in the account's stream; the session stays open.
    c = Conn(addr)
    assert c.logon(4).next_seq == 1
    seq4 = 1
    if bad:
        coids = list(range(100, 100 + FLOOD))
        c.send(b"".join(_frame(_order(k, Side.BUY, 40, 1)) for k in coids))
        for k in coids:
            r = c.report()
            assert (r.seq, r.client_order_id) == (seq4, k), r
            seq4 += 1
            if r.kind == EventKind.ACCEPTED:
                run.accepted_in_flood.append(k)
            else:
                assert (r.kind, r.reason, r.order_id) == (
                    EventKind.REJECTED,
                    Reason.RATE_LIMITED,
                    0,
                ), r
                run.refused_in_flood += 1
        # The bucket was full at logon and refills one token a second.
        assert len(run.accepted_in_flood) >= BURST
        assert run.refused_in_flood > 0
        assert c.silent_for(0.2)
    else:
        assert flood is not None
        for i, k in enumerate(flood):
            if i >= BURST:
                time.sleep(1.5)  # only if the bad run's flood took more than a second
            c.send(_order(k, Side.BUY, 40, 1))
            _accepted(c.report(), k, seq4)
            seq4 += 1
    c.logout()
    # The twins of the refused requests: sessions of account 4 that, in the good run, cancel
    # ids never used (fewer than the burst each, so never rate limited themselves).
    refused = FLOOD - len(flood) if flood is not None else run.refused_in_flood
    unknown = 5000
    for start in range(0, refused, PER_SESSION):
        c = Conn(addr)
        assert c.logon(4).next_seq == seq4
        if not bad:
            for _ in range(min(PER_SESSION, refused - start)):
                c.send(codec.Cancel(client_order_id=unknown, symbol_id=1))
                r = c.report()
                assert (r.seq, r.reason, r.client_order_id) == (
                    seq4,
                    Reason.UNKNOWN_ORDER,
                    unknown,
                )
                unknown += 1
                seq4 += 1
        c.logout()

    # 9. The good sessions saw nothing of all this and go on: account 2 lifts account 1's
    # offer, account 1 cancels its bid with the leaves it had before the bad input.
    a2.send(_order(2, Side.BUY, 110, 5))
    _accepted(a2.report(), 2, 3)
    r = a2.report()
    assert (r.seq, r.kind, r.qty, r.leaves) == (4, EventKind.FILL, 5, 0), r
    r = a1.report()
    assert (r.seq, r.kind, r.client_order_id, r.leaves) == (4, EventKind.FILL, 2, 0), r
    a1.send(codec.Cancel(client_order_id=1, symbol_id=1))
    r = a1.report()
    assert (r.seq, r.kind, r.reason, r.qty) == (5, EventKind.CANCELLED, Reason.USER, 6), r
    a1.send(_order(3, Side.BUY, 99, 2))
    _accepted(a1.report(), 3, 6)
    a1.logout()
    a2.logout()


def _run(tmp: Path, bad: bool, flood: list[int] | None) -> Run:
    tmp.mkdir()
    cfg = _config(tmp)
    run = Run()
    with ServeProcess(cfg, log_file=tmp / "serve.log", timeout=WAIT) as venue:
        _script(venue.order_entry, bad, flood, run)
        assert venue.proc is not None and venue.proc.poll() is None  # still serving
        stopped = venue.stop()
    assert stopped["returncode"] == 0, stopped
    journal = tmp / "journal"
    out = subprocess.run(
        [sys.executable, "-m", "tradecore", "replay", "--journal", str(journal), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    reports = tmp / "reports.jsonl"
    again = replay_journal(str(journal), None, from_snapshot=False, reports=str(reports))
    assert stopped["state_hash"] == json.loads(out.stdout)["state_hash"] == again["state_hash"]
    assert stopped["live_orders"] == 2 + len(run.accepted_in_flood or flood or [])
    for line in reports.read_text().splitlines():
        d = json.loads(line)
        run.streams.setdefault(d.pop("account"), []).append(tuple(sorted(d.items())))
    run.state_hash = stopped["state_hash"]
    return run


def test_bad_input_gets_its_reject_closes_where_specified_and_leaves_the_state_alone(
    tmp_path: Path,
) -> None:
    print(f"bad-input seed {SEED}")
    bad = _run(tmp_path / "bad", True, None)
    good = _run(tmp_path / "good", False, bad.accepted_in_flood)
    # Accounts 1 and 2 (the good sessions) have identical streams in both runs.
    for account in (1, 2):
        assert bad.streams[account] == good.streams[account]
    # Accounts 3 and 4 (the bad input's) have streams of the same length.
    for account in (3, 4):
        assert len(bad.streams[account]) == len(good.streams[account])
    assert bad.state_hash == good.state_hash
