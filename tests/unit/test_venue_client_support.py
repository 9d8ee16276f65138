"""A scripted venue for the client's unit tests (no tests here; imported by the
``test_venue_client*`` modules).

:class:`ScriptedVenue` is a real TCP peer on 127.0.0.1: it accepts one connection, answers
``Logon`` with the answer it was given, records every other client message, answers
retransmit requests from the histories it holds (whole, partial or unavailable, as told), and
sends whatever frames a test hands it. It exists because the tests need a venue that misbehaves
on purpose (gaps, duplicates, garbage) in exactly chosen ways; the real server is exercised in
``tests/integration``.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
from collections.abc import Sequence
from typing import Any

from tradecore.enums import EventKind, Reason, Side
from tradecore.venue.codec import (
    ClientMessage,
    ExecutionReport,
    FeedMessage,
    IncompleteFrame,
    Liquidity,
    Logon,
    LogonAck,
    LogonReject,
    RetransmitReply,
    RetransmitRequest,
    RetransmitStatus,
    decode_from_client,
    encode,
)

WAIT = 20.0
"""Generous wait for anything that should happen (only reached when a test fails)."""


def report(
    seq: int,
    coid: int = 1,
    kind: EventKind = EventKind.ACCEPTED,
    *,
    order_id: int = 0,
    symbol_id: int = 1,
    side: Side = Side.BUY,
    price: int = 100,
    qty: int = 10,
    leaves: int | None = None,
    reason: Reason = Reason.NONE,
    liquidity: Liquidity = Liquidity.NONE,
) -> ExecutionReport:
    """An execution report with sensible defaults."""
    return ExecutionReport(
        seq=seq,
        client_order_id=coid,
        order_id=order_id or coid + 1000,
        symbol_id=symbol_id,
        kind=kind,
        reason=reason,
        side=side,
        liquidity=liquidity,
        price=price,
        qty=qty,
        leaves=qty if leaves is None else leaves,
        timestamp_ns=seq,
    )


class ScriptedVenue:
    """See the module docstring. ``retransmit_mode`` is ``"ok"``, ``"unavailable"`` or
    ``"partial:N"`` (at most N messages per answer, status PARTIAL when cut)."""

    def __init__(
        self,
        *,
        logon_answer: LogonAck | LogonReject | None = None,
        reports: Sequence[ExecutionReport] = (),
        feed: dict[int, list[FeedMessage]] | None = None,
        retransmit_mode: str = "ok",
        answer_retransmits: bool = True,
    ) -> None:
        self.logon_answer = logon_answer or LogonAck(next_seq=1, session_id=77, heartbeat_ms=1000)
        self.reports = {r.seq: r for r in reports}
        self.feed = feed or {}
        self.retransmit_mode = retransmit_mode
        self.answer_retransmits = answer_retransmits
        self.received: queue.Queue[ClientMessage] = queue.Queue()
        self.retransmit_requests: list[RetransmitRequest] = []
        self.errors: list[BaseException] = []
        self.sent_high = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._conn: socket.socket | None = None
        self._connected = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def add_reports(self, *reports: ExecutionReport) -> None:
        """Reports the venue can retransmit (channel 0)."""
        with self._lock:
            for r in reports:
                self.reports[r.seq] = r

    def _serve(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return
        self._conn = conn
        self._connected.set()
        buf = bytearray()
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                pos = 0
                while True:
                    try:
                        msg, n = decode_from_client(buf, pos)
                    except IncompleteFrame:
                        break
                    pos += n
                    self._handle(msg)
                del buf[:pos]
        except OSError:
            return
        except Exception as exc:  # surfaced by the tests through `errors`
            self.errors.append(exc)

    def _handle(self, msg: ClientMessage) -> None:
        if isinstance(msg, Logon):
            self.received.put(msg)
            self.send(self.logon_answer)
            return
        if isinstance(msg, RetransmitRequest):
            self.retransmit_requests.append(msg)
            self.received.put(msg)
            if self.answer_retransmits:
                self.answer(msg)
            return
        self.received.put(msg)

    def answer(self, req: RetransmitRequest) -> None:
        """Answers ``req`` from the histories, per ``retransmit_mode``."""
        with self._lock:
            if req.channel == 0:
                frames: list[Any] = [
                    self.reports[s]
                    for s in range(req.from_seq, req.from_seq + req.count)
                    if s in self.reports
                ]
                known = req.channel == 0
            else:
                hist = self.feed.get(req.channel)
                known = hist is not None
                start = req.from_seq - 1
                frames = [] if hist is None or start < 0 else hist[start : start + req.count]
        status = RetransmitStatus.OK
        if not known:
            status, frames = RetransmitStatus.UNKNOWN_CHANNEL, []
        elif self.retransmit_mode == "unavailable" or not frames:
            status, frames = RetransmitStatus.UNAVAILABLE, []
        else:
            limit = len(frames)
            if self.retransmit_mode.startswith("partial:"):
                limit = int(self.retransmit_mode.split(":")[1])
            if len(frames) > limit:
                frames = frames[:limit]
            if len(frames) < req.count:
                status = RetransmitStatus.PARTIAL
        reply = RetransmitReply(
            next_seq=self.sent_high + 1,
            channel=req.channel,
            from_seq=req.from_seq,
            requested=req.count,
            count=len(frames),
            status=status,
        )
        self.send(reply, *frames)

    def wait_connected(self) -> None:
        """Blocks until the client has connected."""
        assert self._connected.wait(WAIT), "the client never connected"

    def send(self, *msgs: Any) -> None:
        """Sends messages (encoded) as one write; remembers the highest report number sent
        (the ``next_seq`` of retransmit replies follows it)."""
        for m in msgs:
            if isinstance(m, ExecutionReport):
                self.sent_high = max(self.sent_high, m.seq)
        self.send_bytes(b"".join(encode(m) for m in msgs))

    def send_bytes(self, data: bytes) -> None:
        """Sends raw bytes."""
        self.wait_connected()
        assert self._conn is not None
        self._conn.sendall(data)

    def expect(self, cls: type[Any], timeout: float = WAIT) -> Any:
        """The next received message of class ``cls`` (others, such as heartbeats, skipped)."""
        while True:
            msg = self.received.get(timeout=timeout)
            if isinstance(msg, cls):
                return msg

    def close_connection(self) -> None:
        """Closes the client's connection (the venue goes away)."""
        self.wait_connected()
        assert self._conn is not None
        with contextlib.suppress(OSError):
            self._conn.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Stops everything."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in accept
        self._listener.close()
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.shutdown(socket.SHUT_RDWR)
            self._conn.close()
        self._thread.join(WAIT)

    def __enter__(self) -> ScriptedVenue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
