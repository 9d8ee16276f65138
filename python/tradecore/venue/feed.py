"""The venue's UDP feeds on the receiving side: :class:`FeedSubscriber` and ``tradecore feed``.

What it owns
------------
* :class:`FeedBook`: one instrument's aggregated (L2) book, price -> quantity per side, built
  from absolute ``BookUpdate`` messages (quantity 0 removes the level).
* :class:`FeedState`: the per-channel sequencing without I/O. A datagram's message ``i``
  carries ``seq + i``; the state applies messages strictly in that order. A number above the
  next expected one opens a **gap**: the missing range is returned as a
  :class:`RecoveryRequest` (to ask the venue over TCP), later messages are held, and once the
  range arrives everything is applied in order. Numbers already applied or held are
  **duplicates** and are dropped. A heartbeat datagram (no messages) announces the channel's
  next number, so a loss at the end of a burst is noticed too. A datagram that does not decode
  is counted in ``bad_datagrams`` and its messages count as missing (the next datagram or
  heartbeat reveals the gap). A range the venue cannot resend (``UNAVAILABLE``, unknown channel,
  a lost TCP session, or no venue at all) is skipped and counted in ``lost`` (per channel in
  ``lost(channel)``): after such a loss the books are no longer guaranteed to be the venue's.
* :class:`FeedSubscriber`: the sockets. It binds a unicast address or joins a multicast group
  (on interface 127.0.0.1 by default), reads datagrams, and sends the recovery requests
  through a logged-on :class:`~tradecore.venue.client.Client` (``RetransmitRequest`` with
  channel > 0). It keeps reading UDP while a recovery is in flight; completions wake its
  ``select`` through a socket pair. It can run in the caller's thread (:meth:`poll`,
  :meth:`run`) or in its own (:meth:`start`).
* ``tradecore feed``: prints book updates, trades and drop-copy reports as lines (text or JSON)
  with a ``--count``/``--duration`` limit, then a summary line with the counters.

Invariants
----------
Per channel: ``applied + lost == expected - first`` (every number below ``expected`` was either
applied once or declared lost); held messages all have numbers above ``expected``; a book is
exactly the venue's aggregated book after message ``expected - 1`` when nothing was lost.

Cost
----
O(1) dict work per message (levels are sorted only when asked for, O(L log L)); holding during
a gap costs one dict entry per held message. A recovery costs one TCP round trip, during which
datagrams keep being read and held.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import select
import socket
import struct
import threading
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, TextIO

from tradecore.enums import Side
from tradecore.errors import ConfigError, UsageError
from tradecore.instrument import Instrument
from tradecore.venue.client import (
    Client,
    RetransmitResult,
    VenueClientError,
    parse_address,
)
from tradecore.venue.codec import (
    BookUpdate,
    FeedMessage,
    FeedReport,
    ProtocolError,
    RetransmitStatus,
    Trade,
    decode_datagram,
)

__all__ = [
    "FeedBook",
    "FeedSettings",
    "FeedState",
    "FeedStats",
    "FeedSubscriber",
    "RecoveryRequest",
    "load_feed_settings",
    "register",
]

_RECV_SIZE: Final = 2048  # > MAX_DATAGRAM_LEN, so an oversized datagram is seen as oversized
_MAX_COUNT: Final = 2**32 - 1

MessageCallback = Callable[[int, int, FeedMessage], None]
"""``(channel, seq, message)``, called for each message as it is applied."""


class FeedBook:
    """One instrument's aggregated book: price (ticks) -> quantity (lots) per side."""

    __slots__ = ("asks", "bids", "symbol_id")

    def __init__(self, symbol_id: int) -> None:
        self.symbol_id = symbol_id
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}

    def apply(self, side: Side, price: int, qty: int) -> None:
        """Sets the level's absolute quantity (0 removes it)."""
        levels = self.bids if side is Side.BUY else self.asks
        if qty == 0:
            levels.pop(price, None)
        else:
            levels[price] = qty

    def levels(self, side: Side, depth: int | None = None) -> list[tuple[int, int]]:
        """``(price, qty)`` of one side, best first (``depth`` levels at most)."""
        bid = side is Side.BUY
        out = sorted((self.bids if bid else self.asks).items(), reverse=bid)
        return out if depth is None else out[:depth]

    def best_bid(self) -> tuple[int, int] | None:
        """Highest bid level, or None."""
        return max(self.bids.items()) if self.bids else None

    def best_ask(self) -> tuple[int, int] | None:
        """Lowest ask level, or None."""
        return min(self.asks.items()) if self.asks else None

    def as_dict(self) -> dict[str, dict[int, int]]:
        """``{"BUY": {price: qty}, "SELL": {...}}`` (copies)."""
        return {"BUY": dict(self.bids), "SELL": dict(self.asks)}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FeedBook):
            return NotImplemented
        return (self.symbol_id, self.bids, self.asks) == (other.symbol_id, other.bids, other.asks)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (
            f"FeedBook(symbol {self.symbol_id}: {len(self.bids)} bid levels, best "
            f"{self.best_bid()}; {len(self.asks)} ask levels, best {self.best_ask()})"
        )


@dataclass(slots=True)
class FeedStats:
    """Counters of a subscriber (all channels)."""

    datagrams: int = 0
    """Datagrams received (valid or not)."""
    bad_datagrams: int = 0
    """Datagrams that did not decode (their messages count as missing)."""
    heartbeats: int = 0
    """Valid datagrams without messages."""
    messages: int = 0
    """Messages applied, in order (book updates, trades, reports)."""
    book_updates: int = 0
    trades: int = 0
    reports: int = 0
    gaps: int = 0
    """Gaps detected (each a missing range asked for)."""
    retransmit_requests: int = 0
    """Requests sent to the venue (a gap may take several: partial answers)."""
    recovered: int = 0
    """Messages applied that came from a retransmission."""
    duplicates: int = 0
    """Datagrams whose messages had all been applied or held already."""
    duplicate_messages: int = 0
    """Messages dropped as already applied or held (inside duplicates or overlaps)."""
    lost: int = 0
    """Message numbers skipped because they could not be recovered."""
    ignored: int = 0
    """Datagrams of channels the subscriber does not follow."""


@dataclass(frozen=True, slots=True)
class RecoveryRequest:
    """Messages ``from_seq .. from_seq + count - 1`` of ``channel`` are missing."""

    channel: int
    from_seq: int
    count: int


@dataclass(slots=True)
class _Channel:
    expected: int | None  # next number to apply; None until the first datagram (tail mode)
    requested_until: int = 0  # every number below it is applied, held or asked for
    held: dict[int, FeedMessage] = field(default_factory=dict)
    recovered_seqs: set[int] = field(default_factory=set)
    lost_ranges: list[tuple[int, int]] = field(default_factory=list)
    in_flight: int = 0
    lost: int = 0


class FeedState:
    """Sequencing, recovery bookkeeping and books of a feed subscriber, without I/O.

    ``from_start=True`` expects every channel to start at number 1 (a late subscriber asks for
    everything before its first datagram, and so builds the whole book); ``False`` starts at
    the first number seen (a tail of the feed, books only from that point). ``channels``
    limits the channels followed (None: all)."""

    def __init__(
        self,
        *,
        from_start: bool = True,
        channels: Iterable[int] | None = None,
        on_message: MessageCallback | None = None,
    ) -> None:
        self.from_start = from_start
        self.channels = None if channels is None else frozenset(channels)
        self.on_message = on_message
        self.stats = FeedStats()
        self.books: dict[int, FeedBook] = {}
        self.last_error: ProtocolError | None = None
        self.last_recovery_error: BaseException | None = None
        self._ch: dict[int, _Channel] = {}

    # -- queries --

    def next_seq(self, channel: int) -> int:
        """Number of the next message of ``channel`` to apply (1 before anything arrived)."""
        ch = self._ch.get(channel)
        return 1 if ch is None or ch.expected is None else ch.expected

    def followed(self) -> list[int]:
        """Channels seen so far."""
        return sorted(self._ch)

    def channel_synced(self, channel: int) -> bool:
        """No gap open on ``channel`` (nothing held, nothing asked for)."""
        ch = self._ch.get(channel)
        if ch is None:
            return True
        return (
            not ch.held
            and ch.in_flight == 0
            and (ch.expected is None or ch.requested_until <= ch.expected)
        )

    @property
    def synced(self) -> bool:
        """No gap open on any channel."""
        return all(self.channel_synced(c) for c in self._ch)

    def lost(self, channel: int) -> int:
        """Message numbers of ``channel`` skipped as unrecoverable."""
        ch = self._ch.get(channel)
        return 0 if ch is None else ch.lost

    def book(self, symbol_id: int) -> FeedBook:
        """The book of ``symbol_id`` (empty if nothing was seen for it)."""
        b = self.books.get(symbol_id)
        if b is None:
            b = self.books[symbol_id] = FeedBook(symbol_id)
        return b

    # -- input --

    def _channel(self, channel: int, first_seq: int) -> _Channel | None:
        ch = self._ch.get(channel)
        if ch is None:
            if self.channels is not None and channel not in self.channels:
                return None
            start = 1 if self.from_start else first_seq
            ch = self._ch[channel] = _Channel(expected=start, requested_until=start)
        return ch

    def datagram(self, data: bytes | bytearray | memoryview) -> list[RecoveryRequest]:
        """Processes one datagram; returns the ranges to ask the venue for."""
        self.stats.datagrams += 1
        try:
            dg = decode_datagram(data)
        except ProtocolError as exc:
            self.stats.bad_datagrams += 1
            self.last_error = exc
            return []
        ch = self._channel(dg.channel, dg.seq)
        if ch is None:
            self.stats.ignored += 1
            return []
        if not dg.messages:
            self.stats.heartbeats += 1
            return self.announce(dg.channel, dg.seq)
        assert ch.expected is not None
        end = dg.seq + len(dg.messages)
        fresh = 0
        for seq, msg in dg.items():
            if seq < ch.expected or seq in ch.held:
                self.stats.duplicate_messages += 1
            else:
                ch.held[seq] = msg
                ch.recovered_seqs.discard(seq)
                fresh += 1
        if fresh == 0:
            self.stats.duplicates += 1
        requests = self._ask(dg.channel, ch, dg.seq)
        ch.requested_until = max(ch.requested_until, end)
        self._release(dg.channel, ch)
        return requests

    def announce(self, channel: int, next_seq: int) -> list[RecoveryRequest]:
        """The venue says ``channel``'s next message will be ``next_seq`` (a heartbeat, or a
        caller that knows): ask for anything below it not seen yet."""
        ch = self._channel(channel, next_seq)
        if ch is None:
            return []
        requests = self._ask(channel, ch, next_seq)
        ch.requested_until = max(ch.requested_until, next_seq)
        return requests

    def _ask(self, channel: int, ch: _Channel, upto: int) -> list[RecoveryRequest]:
        if upto <= ch.requested_until:
            return []
        self.stats.gaps += 1
        return self._split(channel, ch, ch.requested_until, upto)

    def _split(self, channel: int, ch: _Channel, lo: int, hi: int) -> list[RecoveryRequest]:
        out = []
        while lo < hi:
            n = min(hi - lo, _MAX_COUNT)
            out.append(RecoveryRequest(channel, lo, n))
            ch.in_flight += 1
            lo += n
        return out

    def recovered(
        self, request: RecoveryRequest, result: RetransmitResult | BaseException
    ) -> list[RecoveryRequest]:
        """Applies the venue's answer to ``request`` (or the error that prevented one);
        returns the follow-up requests (the rest of a partial answer)."""
        ch = self._ch[request.channel]
        ch.in_flight -= 1
        assert ch.expected is not None
        end = request.from_seq + request.count
        got_until = request.from_seq
        follow: list[RecoveryRequest] = []
        if isinstance(result, RetransmitResult):
            for seq, msg in result.items():
                if not isinstance(msg, FeedMessage):
                    continue
                got_until = seq + 1
                if seq < ch.expected or seq in ch.held:
                    continue
                ch.held[seq] = msg
                ch.recovered_seqs.add(seq)
            if result.status is RetransmitStatus.PARTIAL and got_until < end:
                lo = max(got_until, ch.expected)
                follow = self._split(request.channel, ch, lo, end)
                got_until = end
        else:
            self.last_recovery_error = result
        if got_until < end:
            ch.lost_ranges.append((got_until, end))
        self._release(request.channel, ch)
        return follow

    def give_up(self, request: RecoveryRequest) -> None:
        """``request`` cannot be sent (no venue): its range is lost."""
        ch = self._ch[request.channel]
        ch.in_flight -= 1
        ch.lost_ranges.append((request.from_seq, request.from_seq + request.count))
        self._release(request.channel, ch)

    def _release(self, channel: int, ch: _Channel) -> None:
        assert ch.expected is not None
        while True:
            msg = ch.held.pop(ch.expected, None)
            if msg is not None:
                seq = ch.expected
                ch.expected += 1
                if ch.recovered_seqs and seq in ch.recovered_seqs:
                    ch.recovered_seqs.discard(seq)
                    self.stats.recovered += 1
                self._apply(channel, seq, msg)
                continue
            for i, (lo, hi) in enumerate(ch.lost_ranges):
                if lo <= ch.expected < hi:
                    stop = min([hi, *(s for s in ch.held if s > ch.expected)])
                    ch.lost += stop - ch.expected
                    self.stats.lost += stop - ch.expected
                    ch.expected = stop
                    if stop >= hi:
                        del ch.lost_ranges[i]
                    break
            else:
                ch.lost_ranges = [(lo, hi) for lo, hi in ch.lost_ranges if hi > ch.expected]
                ch.requested_until = max(ch.requested_until, ch.expected)
                return

    def _apply(self, channel: int, seq: int, msg: FeedMessage) -> None:
        self.stats.messages += 1
        if isinstance(msg, BookUpdate):
            self.stats.book_updates += 1
            self.book(msg.symbol_id).apply(msg.side, msg.price, msg.qty)
        elif isinstance(msg, Trade):
            self.stats.trades += 1
        else:
            self.stats.reports += 1
        if self.on_message is not None:
            self.on_message(channel, seq, msg)


def _multicast_group(host: str) -> bool:
    try:
        return socket.inet_aton(host)[0] >> 4 == 14 and host.count(".") == 3
    except OSError:
        return False


class FeedSubscriber:
    """Receives a venue feed over UDP and keeps per-symbol books in step with the venue.

    ``address`` is where datagrams arrive: a multicast ``group:port`` (joined on
    ``interface``) or a unicast ``host:port`` to bind (port 0 picks one; see
    :attr:`address` after construction). ``client`` is a logged-on
    :class:`~tradecore.venue.client.Client` used to recover gaps; without it gaps are counted
    and skipped. The other options are those of :class:`FeedState`.

    Thread use: either call :meth:`poll`/:meth:`run` from one thread, or :meth:`start` a
    background thread and read the state under :attr:`lock` (or with :meth:`snapshot`)."""

    def __init__(
        self,
        address: str | tuple[str, int],
        *,
        client: Client | None = None,
        interface: str = "127.0.0.1",
        from_start: bool = True,
        channels: Iterable[int] | None = None,
        on_message: MessageCallback | None = None,
        rcvbuf: int = 4 << 20,
        allow_remote: bool = False,
    ) -> None:
        text = address if isinstance(address, str) else f"{address[0]}:{address[1]}"
        host, port = parse_address(address, allow_remote=True)
        self.multicast = _multicast_group(host)
        if not self.multicast:
            parse_address((host, port), allow_remote=allow_remote)  # loopback check
        else:
            parse_address((interface, 0), allow_remote=allow_remote)
        self.client = client
        self.state = FeedState(from_start=from_start, channels=channels, on_message=on_message)
        self.lock = threading.RLock()
        self._done: queue.SimpleQueue[tuple[RecoveryRequest, RetransmitResult | BaseException]]
        self._done = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if self.multicast:  # several subscribers of one host may join a group
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.bind((host, port))
            if self.multicast:
                mreq = struct.pack("4s4s", socket.inet_aton(host), socket.inet_aton(interface))
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise UsageError(f"cannot receive the feed on {text}: {exc}") from exc
        self._sock = sock
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    # -- views --

    @property
    def address(self) -> tuple[str, int]:
        """The bound address (the group and port for multicast)."""
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    @property
    def stats(self) -> FeedStats:
        """The counters."""
        return self.state.stats

    @property
    def books(self) -> dict[int, FeedBook]:
        """Books by symbol id (read under :attr:`lock` when a thread runs)."""
        return self.state.books

    @property
    def synced(self) -> bool:
        """No gap open on any channel."""
        with self.lock:
            return self.state.synced

    def snapshot(self) -> dict[int, dict[str, dict[int, int]]]:
        """Copies of the books as ``{symbol_id: {"BUY": {price: qty}, "SELL": {...}}}``
        (empty books left out)."""
        with self.lock:
            return {s: b.as_dict() for s, b in self.state.books.items() if b.bids or b.asks}

    def next_seq(self, channel: int) -> int:
        """Next message number expected on ``channel``."""
        with self.lock:
            return self.state.next_seq(channel)

    # -- processing --

    def _send(self, requests: list[RecoveryRequest]) -> None:
        for req in requests:
            client = self.client
            if client is None:
                self.state.give_up(req)
                continue
            try:
                fut = client.request_retransmit(req.channel, req.from_seq, req.count)
            except VenueClientError as exc:
                self._done.put((req, exc))
                continue
            self.state.stats.retransmit_requests += 1

            def done(f: Any, req: RecoveryRequest = req) -> None:
                exc = f.exception()
                self._done.put((req, exc if exc is not None else f.result()))
                with contextlib.suppress(OSError):
                    self._wake_w.send(b"x")

            fut.add_done_callback(done)

    def _drain_done(self) -> None:
        while True:
            try:
                req, result = self._done.get_nowait()
            except queue.Empty:
                return
            self._send(self.state.recovered(req, result))

    def catch_up(self, channel: int, next_seq: int) -> None:
        """Ask for anything of ``channel`` below ``next_seq`` not received yet (for a caller
        that knows where the venue stands)."""
        with self.lock:
            self._send(self.state.announce(channel, next_seq))

    def poll(self, timeout: float | None = 0.0) -> int:
        """Waits up to ``timeout`` seconds (None: forever) for datagrams or recovered ranges,
        processes all that are ready; returns the number of messages applied."""
        with self.lock:
            before = self.state.stats.messages
            self._drain_done()
        ready, _, _ = select.select([self._sock, self._wake_r], [], [], timeout)
        with self.lock:
            if self._wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    while self._wake_r.recv(4096):
                        pass
            self._drain_done()
            if self._sock in ready:
                while True:
                    try:
                        data = self._sock.recv(_RECV_SIZE)
                    except (BlockingIOError, InterruptedError):
                        break
                    self._send(self.state.datagram(data))
            return self.state.stats.messages - before

    def run(
        self,
        *,
        count: int | None = None,
        duration: float | None = None,
        until: Callable[[FeedSubscriber], bool] | None = None,
    ) -> None:
        """Polls until ``count`` messages were applied, ``duration`` seconds passed,
        ``until(self)`` is true, or :meth:`stop` is called."""
        deadline = None if duration is None else time.monotonic() + duration
        applied = 0
        while not self._stop.is_set():
            if count is not None and applied >= count:
                return
            if until is not None and until(self):
                return
            wait = 0.2
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    return
            applied += self.poll(wait)

    def start(self) -> FeedSubscriber:
        """Runs :meth:`run` in a background thread (until :meth:`stop`)."""
        if self._thread is not None:
            raise UsageError("the subscriber is already running")

        def body() -> None:
            try:
                self.run()
            except BaseException as exc:  # reported by wait_until/stop
                self._error = exc

        self._thread = threading.Thread(target=body, name="feed-subscriber", daemon=True)
        self._thread.start()
        return self

    def wait_until(self, predicate: Callable[[FeedSubscriber], bool], timeout: float) -> bool:
        """Waits until ``predicate(self)`` (evaluated under the lock) holds; False on timeout.
        With a background thread running; otherwise polls in the caller's thread."""
        deadline = time.monotonic() + timeout
        while True:
            if self._error is not None:
                raise RuntimeError(f"the subscriber thread failed: {self._error}") from self._error
            with self.lock:
                if predicate(self):
                    return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self._thread is None:
                self.poll(min(left, 0.05))
            else:
                time.sleep(min(left, 0.005))

    def stop(self) -> None:
        """Stops the background thread (if any)."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None

    def close(self) -> None:
        """Stops and closes the sockets (the client is the caller's to close)."""
        self.stop()
        self._sock.close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> FeedSubscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- configuration and the `tradecore feed` command ----


@dataclass(frozen=True, slots=True)
class FeedSettings:
    """What ``tradecore feed`` needs from a venue config file."""

    address: str
    mode: str
    interface: str
    market_data_channel: int
    report_channel: int
    order_entry: str
    instruments: Mapping[int, Instrument]


def _field(doc: Mapping[str, Any], path: str, key: str, kind: type, default: Any) -> Any:
    name = f"{path}.{key}" if ": " in path else f"{path}: {key}"
    if key not in doc and default is None:
        raise ConfigError(f"{name}: missing")
    value = doc.get(key, default)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ConfigError(f"{name}: expected a {kind.__name__}, got {value!r}")
    return value


def load_feed_settings(path: str | Path) -> FeedSettings:
    """Reads the ``[listen]``, ``[feed]`` and ``[[instrument]]`` parts of a venue config
    (``crates/engine/src/config.rs`` documents the file; its defaults apply here too).
    Raises :class:`ConfigError` naming the file and field."""
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from exc
    listen = _field(doc, str(p), "listen", dict, {})
    feed = _field(doc, str(p), "feed", dict, {})
    where = f"{p}: feed"
    mode = _field(feed, where, "mode", str, "unicast")
    if mode not in ("unicast", "multicast"):
        raise ConfigError(f"{where}.mode: must be unicast or multicast, got {mode!r}")
    instruments: dict[int, Instrument] = {}
    for i, inst in enumerate(_field(doc, str(p), "instrument", list, [])):
        w = f"{p}: instrument[{i}]"
        if not isinstance(inst, dict):
            raise ConfigError(f"{w}: expected a table")
        sid = _field(inst, w, "symbol_id", int, None)
        try:
            instruments[sid] = Instrument(
                _field(inst, w, "symbol", str, None),
                _field(inst, w, "tick_size", str, None),
                _field(inst, w, "lot_size", str, None),
            )
        except ValueError as exc:
            raise ConfigError(f"{w}: {exc}") from exc
    return FeedSettings(
        address=_field(feed, where, "address", str, "127.0.0.1:7100"),
        mode=mode,
        interface=_field(feed, where, "interface", str, "127.0.0.1"),
        market_data_channel=_field(feed, where, "market_data_channel", int, 1),
        report_channel=_field(feed, where, "report_channel", int, 0),
        order_entry=_field(listen, f"{p}: listen", "order_entry", str, "127.0.0.1:7001"),
        instruments=instruments,
    )


def _decimal_text(value: Decimal) -> str:
    return format(value, "f")


class _Printer:
    """Formats applied messages as lines of text or JSON."""

    def __init__(self, out: TextIO, instruments: Mapping[int, Instrument], as_json: bool) -> None:
        self.out = out
        self.instruments = instruments
        self.as_json = as_json
        self.printed = 0

    def _px(self, symbol_id: int, price: int, qty: int) -> tuple[str, str, str]:
        inst = self.instruments.get(symbol_id)
        if inst is None:
            return str(symbol_id), str(price), str(qty)
        return (
            inst.symbol,
            _decimal_text(inst.ticks_to_price(price)),
            _decimal_text(inst.lots_to_qty(qty)),
        )

    def __call__(self, channel: int, seq: int, msg: FeedMessage) -> None:
        self.printed += 1
        if isinstance(msg, BookUpdate):
            sym, px, qty = self._px(msg.symbol_id, msg.price, msg.qty)
            rec: dict[str, Any] = {"type": "book", "side": msg.side.value}
            text = f"BOOK  {sym} {msg.side.value:<4} {px} x {qty}"
        elif isinstance(msg, Trade):
            sym, px, qty = self._px(msg.symbol_id, msg.price, msg.qty)
            rec = {"type": "trade", "aggressor": msg.aggressor.value, "ts": msg.timestamp_ns}
            text = f"TRADE {sym} {msg.aggressor.value:<4} {px} x {qty}"
        else:
            assert isinstance(msg, FeedReport)
            sym, px, qty = self._px(msg.symbol_id, msg.price, msg.qty)
            rec = {
                "type": "report",
                "account": msg.account,
                "report_seq": msg.seq,
                "client_order_id": msg.client_order_id,
                "kind": msg.kind.value,
                "reason": msg.reason.value,
                "side": msg.side.value,
                "leaves": msg.leaves,
            }
            text = (
                f"REPORT account {msg.account} #{msg.seq} order {msg.client_order_id} "
                f"{msg.kind.value} {msg.side.value} {px} x {qty}"
                + (f" {msg.reason.value}" if msg.reason.value else "")
            )
        if self.as_json:
            rec.update(
                channel=channel, seq=seq, symbol=sym, price=px, qty=qty, symbol_id=msg.symbol_id
            )
            print(json.dumps(rec), file=self.out, flush=True)
        else:
            print(f"ch{channel} #{seq} {text}", file=self.out, flush=True)


def _summary(sub: FeedSubscriber, instruments: Mapping[int, Instrument], as_json: bool) -> str:
    st = sub.stats
    counters = {
        "datagrams": st.datagrams,
        "messages": st.messages,
        "gaps": st.gaps,
        "recovered": st.recovered,
        "duplicates": st.duplicates,
        "bad_datagrams": st.bad_datagrams,
        "lost": st.lost,
    }
    books = {}
    for sid, book in sorted(sub.books.items()):
        inst = instruments.get(sid)

        def fmt(level: tuple[int, int] | None, inst: Instrument | None = inst) -> str | None:
            if level is None:
                return None
            if inst is None:
                return f"{level[1]}@{level[0]}"
            qty = _decimal_text(inst.lots_to_qty(level[1]))
            return f"{qty}@{_decimal_text(inst.ticks_to_price(level[0]))}"

        name = inst.symbol if inst is not None else str(sid)
        books[name] = {"bid": fmt(book.best_bid()), "ask": fmt(book.best_ask())}
    if as_json:
        return json.dumps({"type": "summary", **counters, "synced": sub.synced, "books": books})
    text = "feed: " + " ".join(f"{k}={v}" for k, v in counters.items())
    for name, top in books.items():
        text += f"\n  {name}: bid {top['bid'] or '-'}  ask {top['ask'] or '-'}"
    return text


def _cmd_feed(args: argparse.Namespace, out: TextIO) -> int:
    instruments: Mapping[int, Instrument] = {}
    channels: list[int] | None = None
    venue: str | None = args.venue
    interface = args.interface
    if args.config is not None:
        if args.group or args.port is not None:
            raise UsageError("use either --config or --group/--port, not both")
        s = load_feed_settings(args.config)
        instruments = s.instruments
        address = s.address
        interface = s.interface if args.interface is None else args.interface
        channels = [c for c in (s.market_data_channel, s.report_channel) if c > 0]
        venue = venue or s.order_entry
    elif args.group:
        address = args.group
    elif args.port is not None:
        address = f"127.0.0.1:{args.port}"
    else:
        raise UsageError("give --config FILE, --group GROUP:PORT or --port PORT")
    api_key = args.api_key or os.environ.get("TRADECORE_API_KEY")
    recover = not args.no_recovery and venue is not None
    if recover and (args.account is None or not api_key):
        if args.config is None and args.venue is None:
            recover = False
        else:
            raise UsageError(
                "gap recovery needs --account and an API key (--api-key or TRADECORE_API_KEY);"
                " or pass --no-recovery"
            )
    printer = _Printer(out, instruments, args.json)
    client: Client | None = None
    if recover:
        assert venue is not None and api_key is not None
        client = Client.connect(venue)
        client.logon(args.account, api_key)
    try:
        with FeedSubscriber(
            address,
            client=client,
            interface=interface or "127.0.0.1",
            from_start=recover and not args.tail,
            channels=channels,
            on_message=printer,
        ) as sub:
            with contextlib.suppress(KeyboardInterrupt):
                sub.run(count=args.count, duration=args.duration)
            print(_summary(sub, instruments, args.json), file=out, flush=True)
    finally:
        if client is not None:
            client.close()
    return 0


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
        return value

    return parse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``tradecore feed`` to the ``tradecore`` parser."""
    p = sub.add_parser(
        "feed",
        help="print a venue's UDP feed (book updates, trades), recovering gaps over TCP",
        description=(
            "Receive a tradecore venue's UDP feed and print each book update, trade and "
            "drop-copy report in sequence order, then a summary (counters and the top of each "
            "book). Gaps are filled over TCP from the venue (a logged-on session: --account "
            "and --api-key or the TRADECORE_API_KEY environment variable), unless "
            "--no-recovery. With --config, the feed address, channels, instruments and the "
            "venue's address come from the venue's config file."
        ),
    )
    p.add_argument("--config", type=Path, help="the venue's config file (venue.toml)")
    p.add_argument("--group", metavar="GROUP:PORT", help="multicast group to join")
    p.add_argument("--port", type=int, help="unicast port to bind on 127.0.0.1")
    p.add_argument("--interface", default=None, help="interface address for multicast (127.0.0.1)")
    p.add_argument("--venue", metavar="HOST:PORT", help="the venue's order-entry address")
    p.add_argument("--account", type=int, help="account for the recovery session")
    p.add_argument("--api-key", help="its API key (or set TRADECORE_API_KEY)")
    p.add_argument("--no-recovery", action="store_true", help="count gaps, do not fill them")
    p.add_argument(
        "--tail",
        action="store_true",
        help="start at the first message received instead of asking for the feed from 1",
    )
    p.add_argument("--count", type=_positive(int), help="stop after N messages")
    p.add_argument("--duration", type=_positive(float), help="stop after S seconds")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(handler=_cmd_feed)
