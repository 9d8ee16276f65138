"""Order-entry client of the tradecore venue (``docs/protocol.md``): :class:`Client` (blocking,
one reader thread) and :class:`AsyncClient` (asyncio streams), with the same surface.

What it owns
------------
* One TCP session: ``Logon`` -> :class:`~tradecore.venue.codec.LogonAck` (or a typed
  :class:`LogonRejected`), heartbeats both ways, ``NewOrder`` / ``Cancel`` / ``Modify`` /
  ``MassCancel`` with client order ids assigned by the client (1, 2, ... unless given),
  ``Logout``.
* The session's **report stream**: reports are delivered strictly in sequence order. A report
  whose ``seq`` is above the next expected number (or a ``next_seq`` in a heartbeat, a
  retransmit reply or the logon ack that runs ahead) is a gap: the client asks for the missing
  range with a ``RetransmitRequest`` on channel 0, holds later reports meanwhile and delivers
  everything in order once the range arrives; a report below the expected number is a
  duplicate and is dropped. A range the venue can no longer send (``UNAVAILABLE``) is counted
  in ``stats.lost`` and skipped. Unsequenced reports (``seq`` 0: rejects before logon,
  malformed frames) are delivered as they come.
* Feed retransmissions for :class:`~tradecore.venue.feed.FeedSubscriber`:
  :meth:`Client.request_retransmit` (channel > 0) returns a future of a
  :class:`RetransmitResult`.
* A local view of the account's orders built only from the reports (:class:`OwnOrder`), and two
  ways to wait: :meth:`Client.next_report` (every delivered report, once, in order) and
  :meth:`Client.wait_for` (the next unclaimed report about one order, optionally of one kind);
  the two are independent, each sees every report.

The protocol logic lives in :class:`ClientProtocol`, which does no I/O (bytes in, frames out),
so the blocking and asyncio clients share it and the tests can reach every branch.

Invariants
----------
* Reports reach ``next_report``/``wait_for``/the order view in increasing ``seq`` with no
  number skipped except ranges the venue declared unavailable (counted in ``stats.lost``).
* A retransmission is the reply plus exactly ``count`` frames with nothing interleaved; frames
  are matched to the oldest outstanding request of the reply's channel and ``from_seq``.
* Anything the venue sends that breaks the protocol closes the session with
  :class:`VenueProtocolError`; every waiter then gets an exception, never a hang.
* Prices are ``int`` ticks and quantities ``int`` lots; ``Decimal`` (or ``str``) values are
  converted through the :class:`~tradecore.Instrument` given for the symbol, exactly.

Cost
----
Per received frame: one ``struct`` unpack plus O(1) dict work (O(k) to release k held
reports after a gap). Memory is bounded by ``history``: the report queue, the unclaimed
reports for ``wait_for`` (per order, oldest orders evicted first) and the finished orders kept
in the view. Only loopback addresses are accepted unless ``allow_remote=True``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import enum
import ipaddress
import select
import socket
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, TypeAlias

from tradecore.enums import EventKind, OrderType, Reason, Side, Stp, TimeInForce
from tradecore.errors import TradecoreError, UsageError
from tradecore.instrument import Instrument
from tradecore.venue.codec import (
    Cancel,
    ClientMessage,
    ExecutionReport,
    FeedMessage,
    Heartbeat,
    IncompleteFrame,
    Logon,
    LogonAck,
    LogonReject,
    Logout,
    MassCancel,
    Modify,
    NewOrder,
    ProtocolError,
    RetransmitReply,
    RetransmitRequest,
    RetransmitStatus,
    VenueHeartbeat,
    decode_from_venue,
    encode,
)

__all__ = [
    "AsyncClient",
    "Client",
    "ClientProtocol",
    "ClientStats",
    "LogonRejected",
    "NotLoggedOn",
    "OrderStatus",
    "OwnOrder",
    "RetransmitResult",
    "VenueClientError",
    "VenueDisconnected",
    "VenueProtocolError",
    "VenueTimeout",
    "parse_address",
]

DEFAULT_TIMEOUT: Final = 5.0
"""Seconds a blocking call waits for the venue unless told otherwise."""
DEFAULT_HISTORY: Final = 100_000
"""Bound of the report queue, the unclaimed reports and the finished orders kept."""
_MAX_COUNT: Final = 2**32 - 1
_READ_SIZE: Final = 1 << 16

PriceLike: TypeAlias = int | Decimal | str
"""An ``int`` is ticks (lots for quantities); ``Decimal``/``str`` go through the instrument."""


# ---- exceptions ----


class VenueClientError(TradecoreError):
    """Base class of the venue client's exceptions."""


class VenueDisconnected(VenueClientError, ConnectionError):
    """The connection is closed (by the venue, by :meth:`Client.close`, or after an error);
    the message says why."""


class VenueProtocolError(VenueDisconnected):
    """The venue sent something the protocol does not allow; the client closed the session."""


class LogonRejected(VenueClientError, PermissionError):
    """The venue answered ``LogonReject``; ``reason`` is its reason code."""

    def __init__(self, reason: Reason, account: int) -> None:
        self.reason = reason
        self.account = account
        super().__init__(f"logon of account {account} rejected by the venue: {reason.name}")

    def __reduce__(self) -> tuple[type[LogonRejected], tuple[Reason, int]]:
        return (type(self), (self.reason, self.account))


class NotLoggedOn(VenueClientError, RuntimeError):
    """An order-entry call on a session that is not logged on (call ``logon`` first)."""


class VenueTimeout(VenueClientError, TimeoutError):
    """The venue did not answer within the timeout; the session is still open."""


# ---- plain data ----


class OrderStatus(enum.StrEnum):
    """State of one of the account's orders, as its reports tell it."""

    PENDING_NEW = "PENDING_NEW"
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"

    @property
    def live(self) -> bool:
        """Whether the order may still rest or trade."""
        return self in (OrderStatus.PENDING_NEW, OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


@dataclass(slots=True)
class OwnOrder:
    """The client's view of one order (ticks and lots), updated from its reports only.

    ``price``/``leaves`` follow replaces; ``qty`` is the quantity the order was entered with;
    ``filled`` sums its fills; ``reason`` is the reason of the last report that had one
    (including a refused cancel or modify, which leaves the order as it was)."""

    client_order_id: int
    symbol_id: int
    side: Side
    price: int
    qty: int
    order_type: OrderType = OrderType.LIMIT
    tif: TimeInForce = TimeInForce.GTC
    order_id: int = 0
    leaves: int = 0
    filled: int = 0
    status: OrderStatus = OrderStatus.PENDING_NEW
    reason: Reason = Reason.NONE
    _pending: deque[str] = field(default_factory=deque, repr=False, compare=False)


@dataclass(slots=True)
class ClientStats:
    """Counters of one session's report stream."""

    reports: int = 0
    """Sequenced reports delivered."""
    unsequenced: int = 0
    """Reports with ``seq`` 0 delivered."""
    duplicates: int = 0
    """Sequenced reports dropped because their number was already delivered or held."""
    gaps: int = 0
    """Gaps detected (each asked for with a retransmit request)."""
    retransmit_requests: int = 0
    """Retransmit requests sent (all channels)."""
    recovered: int = 0
    """Reports delivered from a retransmission."""
    lost: int = 0
    """Report numbers skipped because the venue could not retransmit them."""
    heartbeats_sent: int = 0
    heartbeats_received: int = 0
    frames_received: int = 0


@dataclass(frozen=True, slots=True)
class RetransmitResult:
    """A venue's answer to one retransmit request: the reply and the frames that followed it
    (feed messages for channel > 0, execution reports for channel 0)."""

    reply: RetransmitReply
    messages: tuple[FeedMessage | ExecutionReport, ...]

    @property
    def status(self) -> RetransmitStatus:
        """``OK``, ``PARTIAL``, ``UNAVAILABLE`` or ``UNKNOWN_CHANNEL``."""
        return self.reply.status

    def items(self) -> Iterator[tuple[int, FeedMessage | ExecutionReport]]:
        """``(seq, message)`` pairs; message ``i`` carries ``from_seq + i``."""
        return enumerate(self.messages, self.reply.from_seq)


class _Ticket:
    """One outstanding retransmit request."""

    __slots__ = ("channel", "count", "from_seq", "messages", "on_done", "reply")

    def __init__(
        self,
        channel: int,
        from_seq: int,
        count: int,
        on_done: Callable[[RetransmitResult | BaseException], None] | None,
    ) -> None:
        self.channel = channel
        self.from_seq = from_seq
        self.count = count
        self.on_done = on_done
        self.reply: RetransmitReply | None = None
        self.messages: list[FeedMessage | ExecutionReport] = []


def _check_int(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
    return value


# ---- the protocol state machine (no I/O) ----


class ClientProtocol:
    """The client side of one session without I/O: build frames to send, feed received bytes
    with :meth:`data_received` (it returns the frames the protocol wants sent back, such as
    retransmit requests), read the results from ``reports``, ``orders``, ``stats``.

    Not thread-safe: :class:`Client` serialises every call under its lock."""

    def __init__(
        self,
        *,
        first_client_order_id: int = 1,
        history: int = DEFAULT_HISTORY,
        on_report: Callable[[ExecutionReport], None] | None = None,
    ) -> None:
        self._next_coid = _check_int("first_client_order_id", first_client_order_id, 1, 2**64 - 1)
        self._history = _check_int("history", history, 1, 2**62)
        self._on_report = on_report
        self._buf = bytearray()
        self.state = "new"  # new -> logging_on -> open -> closed
        self.account = 0
        self.session_id = 0
        self.heartbeat_ms = 0
        self.logon_answer: LogonAck | LogonReject | None = None
        self.error: BaseException | None = None
        self.stats = ClientStats()
        self.reports: deque[ExecutionReport] = deque(maxlen=self._history)
        self._expected = 0  # next report number to deliver (0 until logged on)
        self._requested_until = 0  # every number below it is delivered, held or requested
        self._held: dict[int, ExecutionReport] = {}
        self._lost: list[tuple[int, int]] = []  # [start, end) ranges declared unavailable
        self._resume_from: int | None = None
        self._tickets: deque[_Ticket] = deque()
        self._current: _Ticket | None = None  # the retransmission whose frames are arriving
        self._remaining = 0
        self._orders: dict[int, OwnOrder] = {}
        self._finished: deque[OwnOrder] = deque()
        self._unclaimed: OrderedDict[int, deque[ExecutionReport]] = OrderedDict()

    # -- state --

    @property
    def next_seq(self) -> int:
        """Number of the next report the client will deliver."""
        return self._expected

    @property
    def is_open(self) -> bool:
        """Logged on and not closed."""
        return self.state == "open"

    @property
    def closed(self) -> bool:
        """The session is over (``error`` says why)."""
        return self.state == "closed"

    @property
    def recovering(self) -> bool:
        """A channel-0 gap is still being filled."""
        return bool(self._held) or self._requested_until > self._expected

    @property
    def orders(self) -> dict[int, OwnOrder]:
        """Known orders by client order id: the live ones and the most recent finished ones."""
        return self._orders

    # -- outbound --

    def logon(
        self, account: int, api_key: str, heartbeat_ms: int, last_seq: int | None = None
    ) -> bytes:
        """The ``Logon`` frame. ``last_seq`` (the last report number processed by an earlier
        connection of a resumed stream) makes the client ask for what it missed."""
        if self.state != "new":
            raise UsageError(f"logon is only possible once per connection (session {self.state})")
        _check_int("account", account, 1, 2**32 - 1)
        _check_int("heartbeat_ms", heartbeat_ms, 0, 2**32 - 1)
        if last_seq is not None:
            self._resume_from = _check_int("last_seq", last_seq, 0, 2**64 - 2) + 1
        frame = encode(Logon(account, api_key, heartbeat_ms))
        self.account = account
        self.state = "logging_on"
        return frame

    def _require_open(self) -> None:
        if self.state == "open":
            return
        if self.state == "closed":
            raise VenueDisconnected(f"the session is closed: {self.error}")
        raise NotLoggedOn(f"the session is not logged on ({self.state}); call logon() first")

    def new_client_order_id(self) -> int:
        """The next free client order id of the automatic sequence (not live in the view);
        it is taken when an order is sent with it."""
        coid = self._next_coid
        while (o := self._orders.get(coid)) is not None and o.status.live:
            coid += 1
        return coid

    def new_order(
        self,
        symbol_id: int,
        side: Side,
        price: int,
        qty: int,
        order_type: OrderType,
        tif: TimeInForce,
        post_only: bool,
        stp: Stp,
        client_order_id: int | None,
    ) -> tuple[int, bytes]:
        """``(client_order_id, NewOrder frame)``; registers the order as ``PENDING_NEW``."""
        self._require_open()
        coid = self.new_client_order_id() if client_order_id is None else client_order_id
        msg = NewOrder(coid, symbol_id, side, order_type, tif, post_only, stp, price, qty)
        frame = encode(msg)  # checks every field's type and range before anything changes
        if client_order_id is None:
            self._next_coid = coid + 1
        existing = self._orders.get(coid)
        if existing is not None and existing.status.live:
            existing._pending.append("new")  # the venue will refuse it: DUPLICATE_ORDER_ID
        else:
            order = OwnOrder(coid, symbol_id, side, price, qty, order_type, tif)
            order._pending.append("new")
            self._orders[coid] = order
        return coid, frame

    def cancel(self, client_order_id: int, symbol_id: int) -> bytes:
        """The ``Cancel`` frame."""
        self._require_open()
        frame = encode(Cancel(client_order_id, symbol_id))
        if (o := self._orders.get(client_order_id)) is not None:
            o._pending.append("cancel")
        return frame

    def modify(self, client_order_id: int, symbol_id: int, new_price: int, new_qty: int) -> bytes:
        """The ``Modify`` frame."""
        self._require_open()
        frame = encode(Modify(client_order_id, symbol_id, new_price, new_qty))
        if (o := self._orders.get(client_order_id)) is not None:
            o._pending.append("modify")
        return frame

    def mass_cancel(self, symbol_id: int) -> bytes:
        """The ``MassCancel`` frame (``symbol_id`` 0 = every instrument)."""
        self._require_open()
        return encode(MassCancel(symbol_id))

    def retransmit(
        self,
        channel: int,
        from_seq: int,
        count: int,
        on_done: Callable[[RetransmitResult | BaseException], None] | None = None,
    ) -> bytes:
        """A ``RetransmitRequest`` frame; ``on_done`` gets the :class:`RetransmitResult` (or
        the exception that ended the session) once the reply and its frames have arrived."""
        self._require_open()
        frame = encode(RetransmitRequest(channel, from_seq, count))
        self._tickets.append(_Ticket(channel, from_seq, count, on_done))
        self.stats.retransmit_requests += 1
        return frame

    # -- inbound --

    def data_received(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Processes received bytes; returns the frames to send in answer (possibly none).

        Raises :class:`VenueProtocolError` when the venue breaks the protocol (the session is
        then closed)."""
        if self.state == "closed":
            return []
        self._buf += data
        out: list[bytes] = []
        pos = 0
        try:
            while True:
                try:
                    msg, n = decode_from_venue(self._buf, pos)
                except IncompleteFrame:
                    break
                pos += n
                self.stats.frames_received += 1
                self._handle(msg, out)
        except ProtocolError as exc:
            err = VenueProtocolError(f"the venue sent a malformed frame: {exc}")
            self.connection_lost(err)
            raise err from exc
        except VenueProtocolError as exc:
            self.connection_lost(exc)
            raise
        finally:
            del self._buf[:pos]
        return out

    def connection_lost(self, exc: BaseException | None) -> None:
        """Ends the session; outstanding retransmissions fail with ``exc`` (or a
        :class:`VenueDisconnected`)."""
        if self.state == "closed":
            return
        self.state = "closed"
        if exc is None:
            exc = VenueDisconnected("the venue closed the connection")
        self.error = exc
        tickets = list(self._tickets)
        if self._current is not None:
            tickets.insert(0, self._current)
        self._tickets.clear()
        self._current = None
        for t in tickets:
            if t.on_done is not None:
                t.on_done(exc)

    def _handle(self, msg: object, out: list[bytes]) -> None:
        if self._current is not None:
            self._retransmitted(self._current, msg, out)
            return
        if isinstance(msg, ExecutionReport):
            if msg.seq == 0:
                self._deliver(msg)
                self.stats.unsequenced += 1
            elif self.state != "open":
                raise VenueProtocolError(f"sequenced report {msg.seq} before the logon ack")
            else:
                self._sequenced(msg, out, recovered=False)
        elif isinstance(msg, VenueHeartbeat):
            self.stats.heartbeats_received += 1
            if self.state == "open":
                self._announce(msg.next_seq, out)
        elif isinstance(msg, RetransmitReply):
            self._reply(msg, out)
        elif isinstance(msg, LogonAck):
            if self.state != "logging_on":
                raise VenueProtocolError(f"unexpected LogonAck (session {self.state})")
            self.logon_answer = msg
            self.state = "open"
            self.session_id = msg.session_id
            self.heartbeat_ms = msg.heartbeat_ms
            start = msg.next_seq
            if self._resume_from is not None:
                start = min(self._resume_from, msg.next_seq)  # a new stream restarts at 1
            self._expected = self._requested_until = max(start, 1)
            self._announce(msg.next_seq, out)
        elif isinstance(msg, LogonReject):
            if self.state != "logging_on":
                raise VenueProtocolError(f"unexpected LogonReject (session {self.state})")
            self.logon_answer = msg
        else:
            raise VenueProtocolError(f"feed message {type(msg).__name__} outside a retransmission")

    def _reply(self, reply: RetransmitReply, out: list[bytes]) -> None:
        for t in self._tickets:
            if t.channel == reply.channel and t.from_seq == reply.from_seq:
                self._tickets.remove(t)
                break
        else:
            raise VenueProtocolError(
                f"retransmit reply for channel {reply.channel} from {reply.from_seq} that was "
                "never requested"
            )
        if reply.count > max(t.count, 0) or (reply.status is RetransmitStatus.OK) != (
            reply.count == t.count
        ):
            raise VenueProtocolError(
                f"retransmit reply {reply.status.name} with {reply.count} of {t.count} messages"
            )
        t.reply = reply
        if reply.count == 0:
            self._complete(t, out)
        else:
            self._current = t
            self._remaining = reply.count

    def _retransmitted(self, t: _Ticket, msg: object, out: list[bytes]) -> None:
        if t.channel == 0:
            if not isinstance(msg, ExecutionReport) or msg.seq != t.from_seq + len(t.messages):
                raise VenueProtocolError(
                    f"retransmission of reports from {t.from_seq}: frame {len(t.messages)} "
                    f"is {msg!r}"
                )
        elif not isinstance(msg, FeedMessage):
            raise VenueProtocolError(
                f"retransmission of channel {t.channel}: frame {len(t.messages)} is {msg!r}"
            )
        t.messages.append(msg)
        self._remaining -= 1
        if self._remaining == 0:
            self._current = None
            self._complete(t, out)

    def _complete(self, t: _Ticket, out: list[bytes]) -> None:
        reply = t.reply
        assert reply is not None
        if t.channel == 0:
            for m in t.messages:
                assert isinstance(m, ExecutionReport)
                self._sequenced(m, out, recovered=True)
            end = t.from_seq + t.count
            start = t.from_seq + reply.count
            if reply.status is RetransmitStatus.PARTIAL:
                lo = max(start, self._expected)
                if lo < end:
                    self._request(lo, end - lo, out)
            elif reply.status is not RetransmitStatus.OK and start < end:
                self._lost.append((start, end))
                self._release()
            self._announce(reply.next_seq, out)
        if t.on_done is not None:
            t.on_done(RetransmitResult(reply, tuple(t.messages)))

    def _sequenced(self, r: ExecutionReport, out: list[bytes], *, recovered: bool) -> None:
        seq = r.seq
        if seq < self._expected or seq in self._held:
            self.stats.duplicates += 1
            return
        self._held[seq] = r
        if recovered:
            self.stats.recovered += 1
        if seq > self._requested_until:
            self._request(self._requested_until, seq - self._requested_until, out)
        self._requested_until = max(self._requested_until, seq + 1)
        self._release()

    def _announce(self, next_seq: int, out: list[bytes]) -> None:
        """The venue says reports up to ``next_seq - 1`` were sent: ask for any not seen."""
        if next_seq > self._requested_until:
            self._request(self._requested_until, next_seq - self._requested_until, out)
            self._requested_until = next_seq

    def _request(self, from_seq: int, count: int, out: list[bytes]) -> None:
        self.stats.gaps += 1
        while count > 0:
            n = min(count, _MAX_COUNT)
            out.append(self.retransmit(0, from_seq, n))
            from_seq += n
            count -= n

    def _release(self) -> None:
        while True:
            r = self._held.pop(self._expected, None)
            if r is not None:
                self._expected += 1
                self.stats.reports += 1
                self._deliver(r)
                continue
            for i, (lo, hi) in enumerate(self._lost):
                if lo <= self._expected < hi:
                    stop = min([hi, *(s for s in self._held if s > self._expected)])
                    self.stats.lost += stop - self._expected
                    self._expected = stop
                    if stop >= hi:
                        del self._lost[i]
                    break
            else:
                self._requested_until = max(self._requested_until, self._expected)
                return

    def _deliver(self, r: ExecutionReport) -> None:
        self.reports.append(r)
        coid = r.client_order_id
        if coid != 0:
            q = self._unclaimed.get(coid)
            if q is None:
                q = self._unclaimed[coid] = deque()
                if len(self._unclaimed) > self._history:
                    self._unclaimed.popitem(last=False)
            q.append(r)
            if r.seq != 0:
                self._update_order(r)
        if self._on_report is not None:
            self._on_report(r)

    def claim(self, client_order_id: int, kind: EventKind | None) -> ExecutionReport | None:
        """The oldest unclaimed report about the order (of ``kind`` if given), removed."""
        q = self._unclaimed.get(client_order_id)
        if not q:
            return None
        for i, r in enumerate(q):
            if kind is None or r.kind is kind:
                del q[i]
                return r
        return None

    def _update_order(self, r: ExecutionReport) -> None:
        coid = r.client_order_id
        o = self._orders.get(coid)
        kind = r.kind
        if o is None:
            if kind is not EventKind.ACCEPTED:
                return  # an order this client never saw accepted (another session's)
            o = self._orders[coid] = OwnOrder(coid, r.symbol_id, r.side, r.price, r.qty)
        if kind is EventKind.REJECTED:
            request = o._pending.popleft() if o._pending else "new"
            o.reason = r.reason
            if request == "new" and o.status is OrderStatus.PENDING_NEW:
                o.status = OrderStatus.REJECTED
                self._finish(o)
            return
        if kind is EventKind.ACCEPTED:
            if o._pending and o._pending[0] == "new":
                o._pending.popleft()
            o.order_id = r.order_id
            o.side = r.side
            o.price = r.price
            o.qty = r.qty
            o.leaves = r.leaves
            o.status = OrderStatus.NEW
        elif kind is EventKind.FILL:
            o.filled += r.qty
            o.leaves = r.leaves
            o.status = OrderStatus.FILLED if r.leaves == 0 else OrderStatus.PARTIALLY_FILLED
        elif kind is EventKind.CANCELLED:
            if r.reason is Reason.USER and o._pending and o._pending[0] == "cancel":
                o._pending.popleft()
            o.leaves = 0
            o.status = OrderStatus.CANCELLED
        elif kind is EventKind.REPLACED:
            if o._pending and o._pending[0] == "modify":
                o._pending.popleft()
            o.price = r.price
            o.leaves = r.leaves
        if r.reason is not Reason.NONE:
            o.reason = r.reason
        if not o.status.live:
            self._finish(o)

    def _finish(self, o: OwnOrder) -> None:
        self._finished.append(o)
        while len(self._finished) > self._history:
            old = self._finished.popleft()
            if self._orders.get(old.client_order_id) is old and not old.status.live:
                del self._orders[old.client_order_id]


# ---- shared helpers of the two transports ----


def parse_address(address: str | tuple[str, int], *, allow_remote: bool = False) -> tuple[str, int]:
    """``"host:port"`` (``[::1]:port`` for IPv6) or ``(host, port)`` -> ``(host, port)``.

    Raises :class:`UsageError` for a malformed address or, unless ``allow_remote``, a host
    that is not a loopback address."""
    if isinstance(address, tuple):
        host, port = address
    else:
        text = address.strip()
        if text.startswith("["):
            host, sep, rest = text[1:].partition("]")
            port_text = rest[1:] if rest.startswith(":") else ""
        else:
            host, sep, port_text = text.rpartition(":")
        if not sep or not host or not port_text.isdigit():
            raise UsageError(f"address {address!r} must be host:port (for example 127.0.0.1:7001)")
        port = int(port_text)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise UsageError(f"address {address!r}: port must be an integer in [0, 65535]")
    if not allow_remote:
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise UsageError(
                f"address {address!r} is not a loopback address (127.0.0.1, ::1 or localhost); "
                "pass allow_remote=True to reach another host"
            )
    return host, port


class _Base:
    """What both clients share: the protocol object, conversions and the read-only views."""

    def __init__(
        self,
        instruments: Mapping[int, Instrument] | None,
        heartbeat_ms: int,
        idle_intervals: float | None,
        timeout: float,
        first_client_order_id: int,
        history: int,
        on_report: Callable[[ExecutionReport], None] | None,
    ) -> None:
        self._core = ClientProtocol(
            first_client_order_id=first_client_order_id, history=history, on_report=on_report
        )
        self._instruments: dict[int, Instrument] = dict(instruments or {})
        self._heartbeat_ms = _check_int("heartbeat_ms", heartbeat_ms, 0, 2**32 - 1)
        if idle_intervals is not None and not idle_intervals > 0:
            raise ValueError(f"idle_intervals must be > 0 or None, got {idle_intervals!r}")
        self._idle_intervals = idle_intervals
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0, got {timeout!r}")
        self._timeout = float(timeout)
        self._last_sent = time.monotonic()
        self._last_recv = time.monotonic()

    # -- views --

    @property
    def protocol(self) -> ClientProtocol:
        """The session's protocol state (read it under no assumption of thread safety)."""
        return self._core

    @property
    def stats(self) -> ClientStats:
        """Counters of the report stream."""
        return self._core.stats

    @property
    def session_id(self) -> int:
        """``LogonAck.session_id`` (0 before logon)."""
        return self._core.session_id

    @property
    def account(self) -> int:
        """The account of the logon (0 before)."""
        return self._core.account

    @property
    def next_seq(self) -> int:
        """Number of the next report to be delivered."""
        return self._core.next_seq

    @property
    def orders(self) -> dict[int, OwnOrder]:
        """The order view by client order id (live orders and recent finished ones)."""
        return self._core.orders

    @property
    def is_open(self) -> bool:
        """Logged on and connected."""
        return self._core.is_open

    def order(self, client_order_id: int) -> OwnOrder | None:
        """One order of the view, or None."""
        return self._core.orders.get(client_order_id)

    def open_orders(self, symbol_id: int | None = None) -> list[OwnOrder]:
        """Live orders of the view (of one instrument if given), by client order id."""
        return sorted(
            (
                o
                for o in self._core.orders.values()
                if o.status.live and (symbol_id is None or o.symbol_id == symbol_id)
            ),
            key=lambda o: o.client_order_id,
        )

    # -- conversions --

    def instrument(self, symbol_id: int) -> Instrument:
        """The instrument given for ``symbol_id``; :class:`UsageError` if none was."""
        inst = self._instruments.get(symbol_id)
        if inst is None:
            raise UsageError(
                f"symbol {symbol_id} has no Instrument: pass instruments={{{symbol_id}: "
                "Instrument(...)}} to the client to use Decimal prices and quantities"
            )
        return inst

    def _ticks(self, symbol_id: int, price: PriceLike) -> int:
        if isinstance(price, int) and not isinstance(price, bool):
            return price
        if isinstance(price, Decimal | str):
            return self.instrument(symbol_id).price_to_ticks(price)
        raise TypeError(
            f"price must be int ticks, Decimal or str, got {type(price).__name__} {price!r}"
        )

    def _lots(self, symbol_id: int, qty: PriceLike) -> int:
        if isinstance(qty, int) and not isinstance(qty, bool):
            return qty
        if isinstance(qty, Decimal | str):
            return self.instrument(symbol_id).qty_to_lots(qty)
        raise TypeError(f"qty must be int lots, Decimal or str, got {type(qty).__name__} {qty!r}")

    def price(self, report: ExecutionReport | OwnOrder) -> Decimal:
        """A report's or order's price as a Decimal (needs the instrument)."""
        return self.instrument(report.symbol_id).ticks_to_price(report.price)

    def quantity(self, report: ExecutionReport | OwnOrder, field: str = "qty") -> Decimal:
        """A report's or order's quantity field (``qty``, ``leaves``, ``filled``) as Decimal."""
        lots = getattr(report, field)
        assert isinstance(lots, int)
        return self.instrument(report.symbol_id).lots_to_qty(lots)

    def _order_frame(
        self,
        symbol_id: int,
        side: Side | str,
        price: PriceLike,
        qty: PriceLike,
        order_type: OrderType | str,
        tif: TimeInForce | str,
        post_only: bool,
        stp: Stp | str,
        client_order_id: int | None,
    ) -> tuple[int, bytes]:
        ot = OrderType(order_type)
        ticks = 0 if ot is OrderType.MARKET and price == 0 else self._ticks(symbol_id, price)
        return self._core.new_order(
            symbol_id,
            Side(side),
            ticks,
            self._lots(symbol_id, qty),
            ot,
            TimeInForce(tif),
            post_only,
            Stp(stp),
            client_order_id,
        )

    def _symbol_of(self, client_order_id: int, symbol_id: int | None) -> int:
        if symbol_id is not None:
            return symbol_id
        o = self._core.orders.get(client_order_id)
        if o is None:
            raise UsageError(
                f"client order id {client_order_id} is not in this client's view: pass symbol_id"
            )
        return o.symbol_id

    def _idle_limit(self) -> float | None:
        hb = self._core.heartbeat_ms
        if self._idle_intervals is None or hb == 0:
            return None
        return self._idle_intervals * hb / 1000.0

    def _logon_result(self, account: int) -> LogonAck:
        answer = self._core.logon_answer
        if isinstance(answer, LogonReject):
            raise LogonRejected(answer.reason, account)
        assert isinstance(answer, LogonAck)
        return answer

    def _deadline(self, timeout: float | None) -> float:
        return time.monotonic() + (self._timeout if timeout is None else timeout)


class Client(_Base):
    """Blocking client of one venue session. Construction connects; a reader thread receives,
    keeps the report stream in order and sends heartbeats.

    >>> with Client("127.0.0.1", 7001) as c:                    # doctest: +SKIP
    ...     c.logon(1, "demo-key-account-1")
    ...     coid = c.new_order(1, Side.BUY, 1500000, 10)
    ...     c.wait_for(coid, EventKind.ACCEPTED)

    ``timeout`` is the default wait of every blocking call; ``heartbeat_ms`` is the interval
    asked for at logon (the venue's answer rules); the session is closed when nothing arrives
    for ``idle_intervals`` heartbeat intervals (``None``: never). ``on_report`` runs on the
    reader thread for each delivered report."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 7001,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        heartbeat_ms: int = 1000,
        idle_intervals: float | None = 3.0,
        instruments: Mapping[int, Instrument] | None = None,
        first_client_order_id: int = 1,
        history: int = DEFAULT_HISTORY,
        on_report: Callable[[ExecutionReport], None] | None = None,
        allow_remote: bool = False,
    ) -> None:
        super().__init__(
            instruments,
            heartbeat_ms,
            idle_intervals,
            timeout,
            first_client_order_id,
            history,
            on_report,
        )
        host, port = parse_address((host, port), allow_remote=allow_remote)
        self._cond = threading.Condition()
        self._send_lock = threading.Lock()
        self._closing = False
        try:
            self._sock = socket.create_connection((host, port), timeout=self._timeout)
        except OSError as exc:
            raise VenueDisconnected(f"cannot connect to the venue at {host}:{port}: {exc}") from exc
        self._sock.settimeout(None)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.address = (host, port)
        self._thread = threading.Thread(
            target=self._reader, name=f"venue-client-{host}:{port}", daemon=True
        )
        self._thread.start()

    @classmethod
    def connect(cls, address: str | tuple[str, int], **kwargs: Any) -> Client:
        """``Client(host, port, **kwargs)`` from ``"host:port"``."""
        host, port = parse_address(address, allow_remote=bool(kwargs.get("allow_remote")))
        return cls(host, port, **kwargs)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Client({self.address[0]}:{self.address[1]}, account={self.account}, "
            f"session={self.session_id}, {self._core.state})"
        )

    # -- transport --

    def _send(self, frame: bytes) -> None:
        with self._send_lock:
            try:
                self._sock.sendall(frame)
            except OSError as exc:
                err = VenueDisconnected(f"cannot send to the venue: {exc}")
                self._fail(err)
                raise err from exc
            self._last_sent = time.monotonic()

    def _reader(self) -> None:
        sock = self._sock
        try:
            while not self._closing:
                hb = self._core.heartbeat_ms
                tick = 0.1 if hb == 0 else min(max(hb / 4000.0, 0.005), 0.25)
                ready, _, _ = select.select([sock], [], [], tick)
                now = time.monotonic()
                if ready:
                    data = sock.recv(_READ_SIZE)
                    if not data:
                        self._fail(VenueDisconnected("the venue closed the connection"))
                        return
                    self._last_recv = now
                    with self._cond:
                        try:
                            out = self._core.data_received(data)
                        finally:
                            self._cond.notify_all()
                    for frame in out:
                        self._send(frame)
                self._keepalive(now)
        except (OSError, ValueError, VenueClientError) as exc:
            if not self._closing:
                err = (
                    exc
                    if isinstance(exc, VenueDisconnected)
                    else VenueDisconnected(f"connection to the venue lost: {exc}")
                )
                self._fail(err)

    def _keepalive(self, now: float) -> None:
        if not self._core.is_open:
            return
        hb = self._core.heartbeat_ms / 1000.0
        if hb > 0 and now - self._last_sent >= hb:
            self._send(encode(Heartbeat()))
            self._core.stats.heartbeats_sent += 1
        limit = self._idle_limit()
        if limit is not None and now - self._last_recv > limit:
            self._fail(
                VenueDisconnected(
                    f"nothing heard from the venue for {now - self._last_recv:.1f} s "
                    f"({self._idle_intervals} heartbeat intervals)"
                )
            )

    def _fail(self, exc: BaseException) -> None:
        with self._cond:
            self._core.connection_lost(exc)
            self._cond.notify_all()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def _wait(self, ready: Callable[[], bool], timeout: float | None, what: str) -> None:
        """Waits (holding ``_cond``) until ``ready()``; raises on close or timeout."""
        deadline = self._deadline(timeout)
        while not ready():
            if self._core.closed:
                err = self._core.error
                raise VenueDisconnected(f"{what}: session closed ({err})") from err
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise VenueTimeout(f"{what}: no answer from the venue within the timeout")
            self._cond.wait(remaining)

    # -- session --

    def logon(
        self,
        account: int,
        api_key: str,
        *,
        last_seq: int | None = None,
        timeout: float | None = None,
    ) -> LogonAck:
        """Logs on; returns the ``LogonAck``. Raises :class:`LogonRejected` (with the
        venue's reason), :class:`VenueDisconnected` or :class:`VenueTimeout`."""
        with self._cond:
            frame = self._core.logon(account, api_key, self._heartbeat_ms, last_seq)
        self._send(frame)
        with self._cond:
            self._wait(lambda: self._core.logon_answer is not None, timeout, "logon")
            return self._logon_result(account)

    def send(self, msg: ClientMessage) -> None:
        """Sends any client message as is, bypassing the order view (for tests of the
        venue's checks)."""
        self._send(encode(msg))

    def new_order(
        self,
        symbol_id: int,
        side: Side | str,
        price: PriceLike,
        qty: PriceLike,
        *,
        order_type: OrderType | str = OrderType.LIMIT,
        tif: TimeInForce | str = TimeInForce.GTC,
        post_only: bool = False,
        stp: Stp | str = Stp.NONE,
        client_order_id: int | None = None,
    ) -> int:
        """Sends a ``NewOrder``; returns its client order id. ``price`` and ``qty`` are ticks
        and lots as ``int``, or ``Decimal``/``str`` converted through the instrument."""
        with self._cond:
            coid, frame = self._order_frame(
                symbol_id, side, price, qty, order_type, tif, post_only, stp, client_order_id
            )
        self._send(frame)
        return coid

    def cancel(self, client_order_id: int, symbol_id: int | None = None) -> None:
        """Sends a ``Cancel`` (the symbol comes from the order view unless given)."""
        with self._cond:
            frame = self._core.cancel(client_order_id, self._symbol_of(client_order_id, symbol_id))
        self._send(frame)

    def modify(
        self,
        client_order_id: int,
        new_price: PriceLike,
        new_qty: PriceLike,
        symbol_id: int | None = None,
    ) -> None:
        """Sends a ``Modify``: new price and new remaining quantity."""
        with self._cond:
            sym = self._symbol_of(client_order_id, symbol_id)
            frame = self._core.modify(
                client_order_id, sym, self._ticks(sym, new_price), self._lots(sym, new_qty)
            )
        self._send(frame)

    def mass_cancel(self, symbol_id: int = 0) -> None:
        """Sends a ``MassCancel`` (0 = every instrument)."""
        with self._cond:
            frame = self._core.mass_cancel(symbol_id)
        self._send(frame)

    def request_retransmit(
        self, channel: int, from_seq: int, count: int
    ) -> concurrent.futures.Future[RetransmitResult]:
        """Asks for ``count`` messages of ``channel`` from ``from_seq``; the future gets the
        :class:`RetransmitResult` (or the :class:`VenueDisconnected` that ended the session)."""
        fut: concurrent.futures.Future[RetransmitResult] = concurrent.futures.Future()

        def done(result: RetransmitResult | BaseException) -> None:
            if isinstance(result, BaseException):
                fut.set_exception(result)
            else:
                fut.set_result(result)

        with self._cond:
            frame = self._core.retransmit(channel, from_seq, count, done)
        self._send(frame)
        return fut

    def retransmit(
        self, channel: int, from_seq: int, count: int, *, timeout: float | None = None
    ) -> RetransmitResult:
        """:meth:`request_retransmit` and wait for its result."""
        fut = self.request_retransmit(channel, from_seq, count)
        try:
            return fut.result(self._timeout if timeout is None else timeout)
        except TimeoutError:
            raise VenueTimeout(f"retransmit of channel {channel} from {from_seq}") from None

    def next_report(self, timeout: float | None = None) -> ExecutionReport:
        """The next delivered report (in sequence order). Reports that arrived before the
        session closed are still returned; then :class:`VenueDisconnected`."""
        with self._cond:
            self._wait(lambda: bool(self._core.reports), timeout, "next_report")
            return self._core.reports.popleft()

    def wait_for(
        self,
        client_order_id: int,
        kind: EventKind | str | None = None,
        *,
        timeout: float | None = None,
    ) -> ExecutionReport:
        """The oldest report about ``client_order_id`` (of ``kind`` if given) that no earlier
        ``wait_for`` returned, waiting for it if needed."""
        k = None if kind is None else EventKind(kind)
        found: list[ExecutionReport] = []

        def ready() -> bool:
            r = self._core.claim(client_order_id, k)
            if r is not None:
                found.append(r)
            return bool(found)

        what = f"wait_for(order {client_order_id}, {k.name if k else 'any report'})"
        with self._cond:
            self._wait(ready, timeout, what)
        return found[0]

    def drain_reports(self) -> list[ExecutionReport]:
        """Every report delivered and not yet returned by :meth:`next_report`, without
        waiting."""
        with self._cond:
            out = list(self._core.reports)
            self._core.reports.clear()
            return out

    def sync(self, timeout: float | None = None) -> None:
        """Waits until no report gap is being recovered."""
        with self._cond:
            self._wait(lambda: not self._core.recovering, timeout, "sync")

    def logout(self, timeout: float | None = None) -> None:
        """Sends ``Logout`` and waits until the venue has sent what it owes and closed."""
        if self._core.is_open:
            with contextlib.suppress(VenueDisconnected):
                self._send(encode(Logout()))
            with self._cond:
                deadline = self._deadline(timeout)
                while not self._core.closed and (left := deadline - time.monotonic()) > 0:
                    self._cond.wait(left)
        self.close()

    def close(self) -> None:
        """Closes the connection (without ``Logout``) and stops the reader thread."""
        if self._closing:
            return
        self._closing = True
        with self._cond:
            self._core.connection_lost(VenueDisconnected("the client closed the connection"))
            self._cond.notify_all()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        if threading.current_thread() is not self._thread:
            self._thread.join()
        self._sock.close()


class AsyncClient(_Base):
    """The asyncio twin of :class:`Client`: ``client = await AsyncClient.connect(host, port)``
    and then the same methods, awaited. A reader task receives and a keep-alive task sends
    heartbeats; both end with :meth:`close`."""

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        heartbeat_ms: int = 1000,
        idle_intervals: float | None = 3.0,
        instruments: Mapping[int, Instrument] | None = None,
        first_client_order_id: int = 1,
        history: int = DEFAULT_HISTORY,
        on_report: Callable[[ExecutionReport], None] | None = None,
    ) -> None:
        super().__init__(
            instruments,
            heartbeat_ms,
            idle_intervals,
            timeout,
            first_client_order_id,
            history,
            on_report,
        )
        self._changed = asyncio.Event()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self.address = ("", 0)

    @classmethod
    async def connect(
        cls,
        host: str = "127.0.0.1",
        port: int = 7001,
        *,
        allow_remote: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        heartbeat_ms: int = 1000,
        idle_intervals: float | None = 3.0,
        instruments: Mapping[int, Instrument] | None = None,
        first_client_order_id: int = 1,
        history: int = DEFAULT_HISTORY,
        on_report: Callable[[ExecutionReport], None] | None = None,
    ) -> AsyncClient:
        """Connects and starts the reader and keep-alive tasks."""
        host, port = parse_address((host, port), allow_remote=allow_remote)
        self = cls(
            timeout=timeout,
            heartbeat_ms=heartbeat_ms,
            idle_intervals=idle_intervals,
            instruments=instruments,
            first_client_order_id=first_client_order_id,
            history=history,
            on_report=on_report,
        )
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except (OSError, TimeoutError) as exc:
            raise VenueDisconnected(f"cannot connect to the venue at {host}:{port}: {exc}") from exc
        self._reader, self._writer = reader, writer
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.address = (host, port)
        self._tasks = [
            asyncio.create_task(self._read_loop(), name="venue-client-reader"),
            asyncio.create_task(self._keepalive_loop(), name="venue-client-keepalive"),
        ]
        return self

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _send(self, frame: bytes) -> None:
        w = self._writer
        if w is None or self._core.closed:
            raise VenueDisconnected(f"the session is closed: {self._core.error}")
        try:
            w.write(frame)
            await w.drain()
        except (OSError, RuntimeError) as exc:
            err = VenueDisconnected(f"cannot send to the venue: {exc}")
            self._fail(err)
            raise err from exc
        self._last_sent = time.monotonic()

    def _fail(self, exc: BaseException) -> None:
        self._core.connection_lost(exc)
        self._notify()
        if self._writer is not None:
            self._writer.close()

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while True:
                data = await self._reader.read(_READ_SIZE)
                if not data:
                    self._fail(VenueDisconnected("the venue closed the connection"))
                    return
                self._last_recv = time.monotonic()
                try:
                    out = self._core.data_received(data)
                finally:
                    self._notify()
                for frame in out:
                    await self._send(frame)
        except (OSError, VenueClientError) as exc:
            if not self._closing:
                err = (
                    exc
                    if isinstance(exc, VenueDisconnected)
                    else VenueDisconnected(f"connection to the venue lost: {exc}")
                )
                self._fail(err)

    async def _keepalive_loop(self) -> None:
        try:
            while not self._core.closed:
                hb = self._core.heartbeat_ms
                await asyncio.sleep(0.1 if hb == 0 else min(max(hb / 4000.0, 0.005), 0.25))
                if not self._core.is_open:
                    continue
                now = time.monotonic()
                if hb and now - self._last_sent >= hb / 1000.0:
                    await self._send(encode(Heartbeat()))
                    self._core.stats.heartbeats_sent += 1
                limit = self._idle_limit()
                if limit is not None and now - self._last_recv > limit:
                    self._fail(
                        VenueDisconnected(
                            f"nothing heard from the venue for {now - self._last_recv:.1f} s"
                        )
                    )
        except VenueClientError:
            return

    async def _wait(self, ready: Callable[[], bool], timeout: float | None, what: str) -> None:
        deadline = self._deadline(timeout)
        while not ready():
            if self._core.closed:
                err = self._core.error
                raise VenueDisconnected(f"{what}: session closed ({err})") from err
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise VenueTimeout(f"{what}: no answer from the venue within the timeout")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def logon(
        self,
        account: int,
        api_key: str,
        *,
        last_seq: int | None = None,
        timeout: float | None = None,
    ) -> LogonAck:
        """See :meth:`Client.logon`."""
        await self._send(self._core.logon(account, api_key, self._heartbeat_ms, last_seq))
        await self._wait(lambda: self._core.logon_answer is not None, timeout, "logon")
        return self._logon_result(account)

    async def send(self, msg: ClientMessage) -> None:
        """See :meth:`Client.send`."""
        await self._send(encode(msg))

    async def new_order(
        self,
        symbol_id: int,
        side: Side | str,
        price: PriceLike,
        qty: PriceLike,
        *,
        order_type: OrderType | str = OrderType.LIMIT,
        tif: TimeInForce | str = TimeInForce.GTC,
        post_only: bool = False,
        stp: Stp | str = Stp.NONE,
        client_order_id: int | None = None,
    ) -> int:
        """See :meth:`Client.new_order`."""
        coid, frame = self._order_frame(
            symbol_id, side, price, qty, order_type, tif, post_only, stp, client_order_id
        )
        await self._send(frame)
        return coid

    async def cancel(self, client_order_id: int, symbol_id: int | None = None) -> None:
        """See :meth:`Client.cancel`."""
        sym = self._symbol_of(client_order_id, symbol_id)
        await self._send(self._core.cancel(client_order_id, sym))

    async def modify(
        self,
        client_order_id: int,
        new_price: PriceLike,
        new_qty: PriceLike,
        symbol_id: int | None = None,
    ) -> None:
        """See :meth:`Client.modify`."""
        sym = self._symbol_of(client_order_id, symbol_id)
        frame = self._core.modify(
            client_order_id, sym, self._ticks(sym, new_price), self._lots(sym, new_qty)
        )
        await self._send(frame)

    async def mass_cancel(self, symbol_id: int = 0) -> None:
        """See :meth:`Client.mass_cancel`."""
        await self._send(self._core.mass_cancel(symbol_id))

    async def retransmit(
        self, channel: int, from_seq: int, count: int, *, timeout: float | None = None
    ) -> RetransmitResult:
        """See :meth:`Client.retransmit`."""
        fut: asyncio.Future[RetransmitResult] = asyncio.get_running_loop().create_future()

        def done(result: RetransmitResult | BaseException) -> None:
            if fut.done():
                return
            if isinstance(result, BaseException):
                fut.set_exception(result)
            else:
                fut.set_result(result)

        await self._send(self._core.retransmit(channel, from_seq, count, done))
        try:
            return await asyncio.wait_for(fut, self._timeout if timeout is None else timeout)
        except TimeoutError:
            raise VenueTimeout(f"retransmit of channel {channel} from {from_seq}") from None

    async def next_report(self, timeout: float | None = None) -> ExecutionReport:
        """See :meth:`Client.next_report`."""
        await self._wait(lambda: bool(self._core.reports), timeout, "next_report")
        return self._core.reports.popleft()

    async def wait_for(
        self,
        client_order_id: int,
        kind: EventKind | str | None = None,
        *,
        timeout: float | None = None,
    ) -> ExecutionReport:
        """See :meth:`Client.wait_for`."""
        k = None if kind is None else EventKind(kind)
        found: list[ExecutionReport] = []

        def ready() -> bool:
            r = self._core.claim(client_order_id, k)
            if r is not None:
                found.append(r)
            return bool(found)

        what = f"wait_for(order {client_order_id}, {k.name if k else 'any report'})"
        await self._wait(ready, timeout, what)
        return found[0]

    def drain_reports(self) -> list[ExecutionReport]:
        """See :meth:`Client.drain_reports`."""
        out = list(self._core.reports)
        self._core.reports.clear()
        return out

    async def sync(self, timeout: float | None = None) -> None:
        """See :meth:`Client.sync`."""
        await self._wait(lambda: not self._core.recovering, timeout, "sync")

    async def logout(self, timeout: float | None = None) -> None:
        """See :meth:`Client.logout`."""
        if self._core.is_open:
            with contextlib.suppress(VenueDisconnected):
                await self._send(encode(Logout()))
            deadline = self._deadline(timeout)
            while not self._core.closed and (left := deadline - time.monotonic()) > 0:
                try:
                    await asyncio.wait_for(self._changed.wait(), left)
                except TimeoutError:
                    break
        await self.close()

    async def close(self) -> None:
        """Closes the connection and ends the tasks."""
        if self._closing:
            return
        self._closing = True
        self._core.connection_lost(VenueDisconnected("the client closed the connection"))
        self._notify()
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, OSError, VenueClientError):
                await t
