"""The paper broker: fills orders against the live L2 book with a queue-position model.

Owns: the paper orders of every account (in flight, resting), their estimated place in the
market's queue, the latency pipeline of requests, and the report ids. It implements
:class:`~tradecore.execution.client.ExecutionClient`; every answer is an
:class:`~tradecore.execution.types.OrderEvent` given to the sink.

Time. The broker never reads the wall clock. A request (submit, cancel, modify, cancel_all) is
stamped ``clock()`` (the clock passed in: ``time.monotonic_ns`` live, the simulated clock in a
backtest). Market events carry their own time: the broker uses ``recv_ns`` of each
:class:`BookUpdate` / :class:`TradeTick` (the node's time base, the simulated clock in a
backtest). ``advance_to(t)`` runs every request due at or before ``t``; ``on_book``/
``on_trade`` call it with the event's time. For exact latency the driver calls
``advance_to(t)`` *before* applying the market message stamped ``t`` to the book, so a request
due earlier meets the book as it was; a request found due inside ``on_book`` meets the
already-updated book (reported at its own due time either way).

Latency. Each request arrives at ``sent + fixed + jitter``: ``fixed`` is ``entry_ns`` for
submit and modify and ``cancel_ns`` for cancel and cancel_all, ``jitter`` is uniform in
``[0, jitter_ns]`` drawn from ``random.Random(seed)`` (``getrandbits`` with rejection).
Requests of one account arrive in the order they were sent (one session, as over TCP): an
arrival time earlier than the account's previous arrival is raised to it. With zero latency
a request is handled inside the call. Until a request arrives nothing happens to it; a cancel
therefore races the fills that happen before it arrives, and loses to them
(``CANCEL_REJECTED``, reason ``UNKNOWN_ORDER``, when the order has already filled).

Arrival of an order (in this order of checks): unknown symbol -> REJECTED ``UNKNOWN_SYMBOL``;
client order id already used by the account -> ``DUPLICATE_ORDER_ID``; ``qty <= 0`` ->
``INVALID_QTY``; a LIMIT with ``price <= 0`` -> ``INVALID_PRICE``; no book attached yet ->
``NO_MARKET_DATA``; ``post_only`` that would take liquidity -> ``WOULD_CROSS``. Otherwise
ACCEPTED, then:

- FOK: if the liquidity available within the limit is less than the quantity, EXPIRED
  ``FOK_UNFILLED`` with no fill.
- Aggressive part (a MARKET order, or a LIMIT whose price reaches the opposite best): the
  order walks the opposite side best price first, filling at *each level's* price (TAKER) as
  much as the level has available, until it is filled, the limit price stops it or the book
  ends. Each fill is its own FILL report (partial fills).
- Remainder: MARKET -> EXPIRED ``NO_LIQUIDITY``; IOC -> EXPIRED ``IOC_REMAINDER``; GTC LIMIT ->
  rests (passive).

Liquidity consumption. The market data never shows our paper trades, so what we take is
remembered per opposite level as ``taken``: available = level qty - taken. On each book update
``taken`` is capped at the level's new quantity and forgotten when the level disappears. So
two orders cannot take the same displayed lots twice, and a remainder resting at a price whose
opposite liquidity we took is not filled again by that phantom liquidity.

Queue model (passive orders). A resting order at price ``p`` keeps ``ahead``: the market
quantity in front of it. On arrival ``ahead`` = the book's quantity at ``p`` on our side (minus
what our own aggressive orders took from it); our earlier paper orders at ``p`` are in front of
it too (FIFO among ours), which the walk below accounts for. Then:

- Trade at our price (a TradeTick at ``p`` whose aggressor is on the other side): its quantity
  first consumes the market quantity ahead, then fills our orders in FIFO order (MAKER, at
  ``p``), each up to its remainder; what is left of the trade goes to the market behind us.
  Every order's ``ahead`` drops by the market quantity consumed.
- Trade through our price (a sell printed below our bid, a buy above our ask): the queue at
  our price is gone: ``ahead`` = 0 and the traded quantity fills our orders at the better
  prices first (best price, then FIFO), each up to its remainder, at our own price.
- Level changes (on each BookUpdate, for each price where we rest): let ``expected`` = the
  level quantity last seen minus the quantity traded there since (trades explain that part).
  If the new quantity ``q`` is below ``expected``, ``expected - q`` lots were cancelled:
  PESSIMISTIC assumes every cancel was behind us (``ahead`` unchanged); PROPORTIONAL spreads
  them pro rata over the queue: ``ahead -= cancelled * ahead // expected`` (rounded down, so
  the order never moves up more than its share). In both models ``ahead <= q`` afterwards (the
  queue in front cannot be larger than the level). Growth joins behind us.
- Book moving through our price (after a BookUpdate the opposite best is at or through our
  price, e.g. an ask at or below our bid): the liquidity available on the opposite side at or
  better than our price fills our orders (best price first, FIFO), MAKER at our own price, and
  is counted as ``taken``; ``ahead`` = 0.
- The queue ahead reaching zero does not fill by itself: we are then first in the queue and
  fill with the next trade at our price (or a move through it).

Our paper orders never trade with each other (they are not in the market's book).

``optimistic_queue=True`` replaces the queue estimate by the idealized assumption that our
passive orders join at the front of their price (``ahead`` = 0 on arrival, and after a
re-entering modify): they fill with the first trade at or through their price. Meant for
comparisons with idealized-fill backtests, not for realistic simulation.

Fees. ``fee = price * qty * tick_size * lot_size * bps / 10_000`` in the quote currency, exact
``Decimal``: ``maker_fee_bps`` for passive fills, ``taker_fee_bps`` for aggressive ones; a
negative rate is a rebate (negative fee).

Modify (cancel/replace, venue semantics): the new quantity is the new *remaining* quantity.
Same price and a quantity not above the remainder keeps ``ahead``; anything else re-enters: it
may take liquidity at the new price (as an aggressive order would), then rests at the back.

Limits of the model (L2 data cannot tell): a trade whose depth diff arrives *before* its
trade print is first seen as a shrink (cancels) and then again as a trade, so the queue ahead
can be consumed twice (optimistic for us; Binance's depth and aggTrade streams are not
ordered with each other). Hidden and iceberg quantity is invisible. Our fills have no market
impact beyond ``taken``. ``Quote`` (bookTicker) events are not used.

Determinism: given the same requests, market events, clock values and seed, the reports are
identical (iteration orders are fixed, the only randomness is the seeded jitter).

Cost: ``submit`` with latency is a clock read, a jitter draw and a heap push (about a
microsecond). Without latency the order is handled inside ``submit``: an aggressive order
reads the best opposite level (``best_bid``/``best_ask``) and reads ``depth`` only if it needs
more than that level has; each report is one :class:`OrderEvent`, built without the
constructor call (see :mod:`tradecore.execution.types`). The fill at the best level is done
inline on arrival, and an order that it fills completely never gets a paper order object
(a taker IOC at zero latency: about 1.5 us for ACCEPTED and FILL, CPython 3.11). A fill's
fee is remembered per symbol, liquidity and notional (``price * qty``): the exact Decimal
product is computed once per notional (up to 4,096 remembered, then forgotten at once).
A BookUpdate of a symbol
where we have nothing (no resting order, no ``taken`` entry, nothing in flight) costs a few
attribute checks; otherwise one ``qty_at`` per price where we rest plus one per ``taken``
entry, and it touches orders only at levels that changed; a TradeTick touches only our levels
at or through its price. :meth:`PaperBroker.book_moved` is ``on_book`` plus ``not idle()`` for a
driver that holds the book itself (no event object); both handle the common state after a
taker order (nothing resting or in flight in the symbol, only ``taken`` remembered) inline,
with the same effect as the general path (tests/unit/test_paper_broker_taken_decay.py).

Memory: for duplicate detection the broker keeps, per order ever submitted, its key and a
``(symbol, is_buy)`` tuple (what a later cancel reject reports), plain data the garbage
collector stops tracking; the request itself is held only while the order is in flight or
rests.
"""

from __future__ import annotations

import enum
import heapq
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow
from typing import Any

from tradecore.enums import OrderType, Side, TimeInForce
from tradecore.errors import UsageError
from tradecore.execution.client import EventSink
from tradecore.execution.types import (
    Liquidity,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderRequest,
    _EventSlots,
)
from tradecore.instrument import Instrument
from tradecore.marketdata.events import BookUpdate, BookView, TradeTick

log = logging.getLogger("tradecore.execution.paper")

__all__ = [
    "CancelModel",
    "LatencyModel",
    "PaperBroker",
    "PaperBrokerConfig",
    "PaperBrokerStats",
]

# Money arithmetic: plenty of digits, and an inexact result is a bug, not a rounding.
_MONEY = Context(prec=60, traps=[InvalidOperation, Inexact, Overflow])
_ZERO = Decimal(0)
_BPS = Decimal(10_000)

_ACCEPTED = OrderEventKind.ACCEPTED
_REJECTED = OrderEventKind.REJECTED
_FILL = OrderEventKind.FILL
_CANCELLED = OrderEventKind.CANCELLED
_REPLACED = OrderEventKind.REPLACED
_EXPIRED = OrderEventKind.EXPIRED
_CANCEL_REJECTED = OrderEventKind.CANCEL_REJECTED
_MAKER = Liquidity.MAKER
_TAKER = Liquidity.TAKER
_BUY = Side.BUY
_SELL = Side.SELL
_MARKET = OrderType.MARKET
_GTC = TimeInForce.GTC
_FOK = TimeInForce.FOK
# (Module constants: in CPython 3.11 reading an enum member off its class costs ~150 ns.)

_SUBMIT = 0
_CANCEL = 1
_MODIFY = 2
_CANCEL_ALL = 3


class CancelModel(enum.StrEnum):
    """Where the cancels that shrink a level are assumed to be relative to our order."""

    PESSIMISTIC = "PESSIMISTIC"  # all behind us: cancels never move us forward
    PROPORTIONAL = "PROPORTIONAL"  # spread pro rata over the quantity ahead and behind


def _nonneg_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{name} must be an int (nanoseconds), got {type(value).__name__}")
    if value < 0:
        raise UsageError(f"{name} must be >= 0 nanoseconds, got {value}")
    return value


def _bps(name: str, value: object) -> Decimal:
    if isinstance(value, float):
        raise UsageError(f"{name} must be a Decimal, str or int, not a float ({value!r})")
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise UsageError(f"{name} must be a Decimal, str or int, got {type(value).__name__}")
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise UsageError(f"{name} {value!r} is not a decimal number") from None
    if not d.is_finite():
        raise UsageError(f"{name} must be finite, got {value!r}")
    return d


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """Order-entry and cancel latency: ``fixed + uniform[0, jitter_ns]`` (seeded), in ns."""

    entry_ns: int = 0
    cancel_ns: int = 0
    jitter_ns: int = 0

    def __post_init__(self) -> None:
        _nonneg_int("latency.entry_ns", self.entry_ns)
        _nonneg_int("latency.cancel_ns", self.cancel_ns)
        _nonneg_int("latency.jitter_ns", self.jitter_ns)


@dataclass(frozen=True, slots=True)
class PaperBrokerConfig:
    """The paper broker's model: fees (basis points, negative = rebate), latency, cancels, seed."""

    maker_fee_bps: Decimal = _ZERO
    taker_fee_bps: Decimal = _ZERO
    latency: LatencyModel = LatencyModel()
    cancel_model: CancelModel = CancelModel.PESSIMISTIC
    seed: int = 0
    optimistic_queue: bool = False  # True: our passive orders join at the front (ahead = 0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "maker_fee_bps", _bps("maker_fee_bps", self.maker_fee_bps))
        object.__setattr__(self, "taker_fee_bps", _bps("taker_fee_bps", self.taker_fee_bps))
        if not isinstance(self.latency, LatencyModel):
            raise UsageError(f"latency must be a LatencyModel, got {type(self.latency).__name__}")
        try:
            object.__setattr__(self, "cancel_model", CancelModel(self.cancel_model))
        except ValueError:
            raise UsageError(
                f"cancel_model must be one of {[m.value for m in CancelModel]}, "
                f"got {self.cancel_model!r}"
            ) from None
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise UsageError(f"seed must be an int, got {type(self.seed).__name__}")
        if not isinstance(self.optimistic_queue, bool):
            raise UsageError(
                f"optimistic_queue must be a bool, got {type(self.optimistic_queue).__name__}"
            )


@dataclass(slots=True)
class PaperBrokerStats:
    """Counters of the paper broker (monotonic)."""

    submits: int = 0
    cancels: int = 0
    modifies: int = 0
    mass_cancels: int = 0
    accepted: int = 0
    rejected: int = 0
    fills: int = 0
    maker_fills: int = 0
    taker_fills: int = 0
    cancelled: int = 0
    expired: int = 0
    replaced: int = 0
    cancel_rejects: int = 0
    book_updates: int = 0
    trades: int = 0
    unknown_symbol_events: int = 0
    bad_trades: int = 0  # trade ticks with a non-positive price or quantity (ignored)


class _Order:
    """One paper order: the request, its remainder, and its place in the queue."""

    __slots__ = ("account", "ahead", "coid", "is_buy", "leaves", "level", "price", "request")

    def __init__(self, request: OrderRequest) -> None:
        self.request = request
        self.account = request.account
        self.coid = request.client_order_id
        self.is_buy = request.side is _BUY
        self.price = request.price
        self.leaves = request.qty
        self.ahead = 0
        self.level: _Level | None = None


class _Level:
    """Our resting orders at one price of one side, and what we last saw of that level."""

    __slots__ = ("is_buy", "last_qty", "orders", "price", "traded")

    def __init__(self, is_buy: bool, price: int, last_qty: int) -> None:
        self.is_buy = is_buy
        self.price = price
        self.orders: list[_Order] = []
        self.last_qty = last_qty  # market quantity at this level when last looked at
        self.traded = 0  # market trades printed here since then


class _Symbol:
    __slots__ = (
        "asks",
        "bids",
        "book",
        "instrument",
        "maker_fees",
        "maker_rate",
        "qty_at",
        "taken_asks",
        "taken_bids",
        "taker_fees",
        "taker_rate",
    )

    def __init__(self, instrument: Instrument, maker_bps: Decimal, taker_bps: Decimal) -> None:
        self.instrument = instrument
        unit = _MONEY.multiply(instrument.tick_size, instrument.lot_size)
        self.maker_rate = _MONEY.divide(_MONEY.multiply(unit, maker_bps), _BPS)
        self.taker_rate = _MONEY.divide(_MONEY.multiply(unit, taker_bps), _BPS)
        # Fee of a fill by its notional (price * qty, tick-lots): the exact product of the
        # rate and the notional, computed once (a Decimal multiplication is ~300 ns, a dict
        # hit ~50); emptied when it reaches _FEE_MEMO entries.
        self.maker_fees: dict[int, Decimal] = {}
        self.taker_fees: dict[int, Decimal] = {}
        self.book: BookView | None = None
        self.qty_at: Callable[[Side, int], int] = _no_book
        self.bids: dict[int, _Level] = {}
        self.asks: dict[int, _Level] = {}
        self.taken_bids: dict[int, int] = {}  # lots we took from the market's bids, by price
        self.taken_asks: dict[int, int] = {}


_FEE_MEMO = 4_096  # fees remembered per symbol and liquidity (see _Symbol)


def _fee(memo: dict[int, Decimal], rate: Decimal, notional: int) -> Decimal:
    """``rate * notional`` exactly, remembered in ``memo`` (emptied when it is full)."""
    fee = _MONEY.multiply(rate, notional)
    if len(memo) >= _FEE_MEMO:
        memo.clear()
    memo[notional] = fee
    return fee


def _no_book(side: Side, price: int) -> int:
    return 0


def _qty_at_by_depth(book: BookView) -> Callable[[Side, int], int]:
    """A ``qty_at`` for books that only offer ``depth(n)`` (scans, widening the window)."""

    def qty_at(side: Side, price: int) -> int:
        n = 16
        while True:
            bids, asks = book.depth(n)
            levels = bids if side is _BUY else asks
            for p, q in levels:
                if p == price:
                    return q
                if (p < price) if side is _BUY else (p > price):
                    return 0
            if len(levels) < n:
                return 0
            n *= 4

    return qty_at


class PaperBroker:
    """Simulated execution against live L2 books; see the module docstring for the model."""

    def __init__(
        self,
        instruments: Iterable[Instrument],
        clock: Callable[[], int],
        config: PaperBrokerConfig | None = None,
        sink: EventSink | None = None,
        first_event_id: int = 1,
    ) -> None:
        if isinstance(first_event_id, bool) or not isinstance(first_event_id, int):
            raise UsageError(f"first_event_id must be an int, got {first_event_id!r}")
        if first_event_id < 1:
            raise UsageError(f"first_event_id must be >= 1, got {first_event_id}")
        self.config = config if config is not None else PaperBrokerConfig()
        cfg = self.config
        self._syms: dict[str, _Symbol] = {}
        for inst in instruments:
            if not isinstance(inst, Instrument):
                raise UsageError(f"instruments must be Instrument values, got {inst!r}")
            self._syms[inst.symbol] = _Symbol(inst, cfg.maker_fee_bps, cfg.taker_fee_bps)
        self._clock = clock
        self._sink: EventSink | None = sink
        self._live: dict[tuple[int, int], _Order] = {}
        # Every (account, client order id) ever submitted or restored (duplicates are
        # rejected), with the order's symbol and side for a later cancel reject. Plain tuples
        # of a str, ints and a bool: the garbage collector stops tracking them, so a long run
        # does not keep one tracked object per order (the request itself is not kept).
        self._requests: dict[tuple[int, int], tuple[str, bool]] = {}
        self._heap: list[tuple[int, int, int, Any]] = []
        self._seq = 0
        self._last_due: dict[int, int] = {}
        self._rng = random.Random(cfg.seed)
        lat = cfg.latency
        self._entry_ns = lat.entry_ns
        self._cancel_ns = lat.cancel_ns
        self._jitter_ns = lat.jitter_ns
        self._instant_entry = not lat.entry_ns and not lat.jitter_ns  # submit arrives at once
        self._jitter_bits = lat.jitter_ns.bit_length()
        self._getrandbits = self._rng.getrandbits
        self._proportional = cfg.cancel_model is CancelModel.PROPORTIONAL
        self._front = cfg.optimistic_queue
        self._eid = first_event_id - 1  # the last event id issued
        self._restoring: dict[str, list[_Order]] = {}  # restored orders waiting for a book
        self._now = 0
        self._out: list[OrderEvent] = []  # reports waiting for delivery
        self._delivering = False
        self.stats = PaperBrokerStats()

    # ------------------------------------------------------------------ wiring

    def set_sink(self, sink: EventSink) -> None:
        """Where reports go (usually ``OrderManager.on_event``)."""
        self._sink = sink

    def add_instrument(self, instrument: Instrument) -> None:
        """Trade one more symbol."""
        cfg = self.config
        if instrument.symbol not in self._syms:
            self._syms[instrument.symbol] = _Symbol(
                instrument, cfg.maker_fee_bps, cfg.taker_fee_bps
            )

    def attach_book(self, symbol: str, book: BookView) -> None:
        """Use ``book`` (the live L2 book of ``symbol``) for fills from now on."""
        st = self._syms.get(symbol)
        if st is None:
            raise UsageError(f"attach_book: unknown symbol {symbol!r} (not in the instruments)")
        self._bind(st, book)
        if symbol in self._restoring:
            self._place_restored(st, self._restoring.pop(symbol), self._now)
            self._flush()

    def restore(self, order: Order) -> None:
        """Put an open order reloaded from the store back in its book (at start-up).

        The order's ``leaves`` rest at the back of the queue at ``order.price`` (queue ahead =
        the level's size now, or at the first book of the symbol if none is attached yet),
        with no latency and no ACCEPTED report; later reports are as usual. A restored order
        that the market has moved through (it would take liquidity now) is not filled: it is
        reported CANCELLED with reason ``RESTORE_CROSSED``. Report ids continue after the
        highest one in ``order.events`` so the order manager does not take them for
        duplicates (give ``first_event_id`` to the constructor to keep ids unique across
        runs).
        """
        req = order.request
        st = self._syms.get(req.symbol)
        if st is None:
            raise UsageError(
                f"restore: order {req.client_order_id} of account {req.account} is in unknown "
                f"symbol {req.symbol!r} (not in the instruments)"
            )
        key = (req.account, req.client_order_id)
        if key in self._requests:
            raise UsageError(
                f"restore: client order id {req.client_order_id} of account {req.account} "
                f"is already known to the broker"
            )
        if not order.is_open or order.leaves <= 0:
            raise UsageError(
                f"restore: order {req.client_order_id} of account {req.account} is not open "
                f"(status {order.status}, leaves {order.leaves})"
            )
        if req.order_type is OrderType.MARKET or req.tif is not TimeInForce.GTC:
            raise UsageError(
                f"restore: order {req.client_order_id} of account {req.account} is "
                f"{req.order_type} {req.tif}; only resting GTC limit orders can be restored"
            )
        if order.price <= 0:
            raise UsageError(f"restore: order {req.client_order_id} has price {order.price}")
        self._requests[key] = (req.symbol, req.side is _BUY)
        for e in order.events:
            if e.event_id > self._eid:
                self._eid = e.event_id
        o = _Order(req)
        o.price = order.price
        o.leaves = order.leaves
        if st.book is None:
            self._restoring.setdefault(req.symbol, []).append(o)
        else:
            self._place_restored(st, [o], self._now)
            self._flush()

    def _place_restored(self, st: _Symbol, orders: list[_Order], t: int) -> None:
        for o in orders:
            if self._available(st, o.is_buy, o.price, 1) > 0:
                self.stats.cancelled += 1
                self._emit(_CANCELLED, o.request, o.price, o.leaves, 0, t, "RESTORE_CROSSED")
            else:
                self._rest(st, o)

    @staticmethod
    def _bind(st: _Symbol, book: BookView) -> None:
        st.book = book
        qty_at = getattr(book, "qty_at", None)
        st.qty_at = qty_at if callable(qty_at) else _qty_at_by_depth(book)

    # ------------------------------------------------------------------ requests

    def _push(self, account: int, fixed: int, kind: int, payload: Any) -> None:
        now = self._clock()
        due = now + fixed
        if self._jitter_ns:
            # Uniform in [0, jitter_ns] by rejection on getrandbits (C, unlike randint).
            bits = self._jitter_bits
            getrandbits = self._getrandbits
            r = getrandbits(bits)
            while r > self._jitter_ns:
                r = getrandbits(bits)
            due += r
        last = self._last_due.get(account)
        if last is not None and due < last:
            due = last
        self._last_due[account] = due
        if due <= now and not self._heap:
            # Nothing in flight and no latency: handle it now (same as via the heap).
            if due > self._now:
                self._now = due
            self._dispatch(kind, payload, self._now)
            if now > self._now:
                self._now = now
            if self._out:
                self._flush()
            return
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, kind, payload))
        if due <= now:
            self._run_due(now)
            self._flush()

    def submit(self, request: OrderRequest) -> None:
        """Send a new order; it arrives after the entry latency."""
        if self._sink is None:
            raise UsageError("PaperBroker has no sink: call set_sink() before submit()")
        self.stats.submits += 1
        if self._heap or not self._instant_entry:
            self._push(request.account, self._entry_ns, _SUBMIT, request)
            return
        # No entry latency and nothing in flight: ``_push`` inlined (the arrival time is
        # ``now``, or the account's last arrival if that is later).
        account = request.account
        now = self._clock()
        last_due = self._last_due
        last = last_due.get(account)
        due = now if last is None or now >= last else last
        last_due[account] = due
        if due > now:
            self._seq += 1
            heapq.heappush(self._heap, (due, self._seq, _SUBMIT, request))
            return
        t = self._now
        if due > t:
            t = self._now = due
        self._arrive_order(request, t)
        if now > self._now:
            self._now = now
        if self._out:
            self._flush()

    def cancel(self, account: int, symbol: str, client_order_id: int) -> None:
        """Cancel one order; it arrives after the cancel latency."""
        self.stats.cancels += 1
        self._push(account, self._cancel_ns, _CANCEL, (account, client_order_id))

    def modify(self, account: int, symbol: str, client_order_id: int, price: int, qty: int) -> None:
        """Cancel/replace to ``price`` and remaining ``qty``; arrives after the entry latency."""
        self.stats.modifies += 1
        self._push(account, self._entry_ns, _MODIFY, (account, client_order_id, price, qty))

    def cancel_all(self, account: int, symbol: str | None = None) -> None:
        """Cancel every live order of ``account`` (in ``symbol``); after the cancel latency."""
        self.stats.mass_cancels += 1
        self._push(account, self._cancel_ns, _CANCEL_ALL, (account, symbol))

    # ------------------------------------------------------------------ time

    def next_due_ns(self) -> int | None:
        """Arrival time of the earliest request still in flight, or None."""
        return self._heap[0][0] if self._heap else None

    def advance_to(self, now_ns: int) -> None:
        """Deliver every request due at or before ``now_ns``."""
        if self._heap and self._heap[0][0] <= now_ns:
            self._run_due(now_ns)
            self._flush()
        elif now_ns > self._now:
            self._now = now_ns

    def _run_due(self, now: int) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            due, _, kind, payload = heapq.heappop(heap)
            if due > self._now:
                self._now = due
            self._dispatch(kind, payload, self._now)
        if now > self._now:
            self._now = now

    def _dispatch(self, kind: int, payload: Any, t: int) -> None:
        if kind == _SUBMIT:
            self._arrive_order(payload, t)
        elif kind == _CANCEL:
            self._arrive_cancel(payload[0], payload[1], t)
        elif kind == _MODIFY:
            self._arrive_modify(payload[0], payload[1], payload[2], payload[3], t)
        else:
            self._arrive_cancel_all(payload[0], payload[1], t)

    # ------------------------------------------------------------------ reports

    def _emit(
        self,
        kind: OrderEventKind,
        req: OrderRequest,
        price: int,
        qty: int,
        leaves: int,
        ts: int,
        reason: str = "",
        liquidity: Liquidity | None = None,
        fee: Decimal = _ZERO,
    ) -> None:
        self._eid = eid = self._eid + 1
        # OrderEvent(kind, account, ..., fee), built without the constructor call (types.py).
        e = _EventSlots()
        e.kind = kind
        e.account = req.account
        e.client_order_id = req.client_order_id
        e.symbol = req.symbol
        e.side = req.side
        e.price = price
        e.qty = qty
        e.leaves = leaves
        e.ts_ns = ts
        e.event_id = eid
        e.reason = reason
        e.liquidity = liquidity
        e.fee = fee
        e.venue_order_id = 0
        e.__class__ = OrderEvent
        self._out.append(e)

    def _flush(self) -> None:
        """Deliver the queued reports, in order, once the broker's state is consistent.

        Reports are never delivered in the middle of a state change, so a sink that calls back
        into the broker (a strategy reacting to a fill) sees a consistent broker; its own
        reports are queued behind and delivered by the outermost flush.
        """
        out = self._out
        if self._delivering or not out:
            return
        sink = self._sink
        if sink is None:
            return
        self._delivering = True
        i = 0
        try:
            # A list iterator sees what the sink appends meanwhile (it compares its index
            # with the current length at every step): those are delivered in this loop too.
            for ev in out:
                i += 1
                sink(ev)
        finally:
            del out[:i]
            self._delivering = False

    def _reject(self, req: OrderRequest, reason: str, ts: int) -> None:
        self.stats.rejected += 1
        self._emit(_REJECTED, req, req.price, req.qty, 0, ts, reason)

    def _fill(self, st: _Symbol, o: _Order, qty: int, price: int, liq: Liquidity, ts: int) -> None:
        leaves = o.leaves = o.leaves - qty
        stats = self.stats
        stats.fills += 1
        if liq is _MAKER:
            rate = st.maker_rate
            fees = st.maker_fees
            stats.maker_fills += 1
        else:
            rate = st.taker_rate
            fees = st.taker_fees
            stats.taker_fills += 1
        if rate:
            notional = price * qty
            fee = fees.get(notional)
            if fee is None:
                fee = _fee(fees, rate, notional)
        else:
            fee = _ZERO
        if leaves == 0 and o.level is not None:
            self._unrest(st, o)
        req = o.request
        self._eid = eid = self._eid + 1
        e = _EventSlots()  # the FILL report, built as in ``_emit``
        e.kind = _FILL
        e.account = o.account
        e.client_order_id = o.coid
        e.symbol = req.symbol
        e.side = req.side
        e.price = price
        e.qty = qty
        e.leaves = leaves
        e.ts_ns = ts
        e.event_id = eid
        e.reason = ""
        e.liquidity = liq
        e.fee = fee
        e.venue_order_id = 0
        e.__class__ = OrderEvent
        self._out.append(e)

    # ------------------------------------------------------------------ arrivals

    def _arrive_order(self, req: OrderRequest, t: int) -> None:
        st = self._syms.get(req.symbol)
        if st is None:
            self._reject(req, "UNKNOWN_SYMBOL", t)
            return
        account = req.account
        coid = req.client_order_id
        key = (account, coid)
        requests = self._requests
        if key in requests:
            self._reject(req, "DUPLICATE_ORDER_ID", t)
            return
        side = req.side
        is_buy = side is _BUY
        requests[key] = (req.symbol, is_buy)
        qty = req.qty
        if qty <= 0:
            self._reject(req, "INVALID_QTY", t)
            return
        price = req.price
        is_market = req.order_type is _MARKET
        if not is_market and price <= 0:
            self._reject(req, "INVALID_PRICE", t)
            return
        book = st.book
        if book is None:
            self._reject(req, "NO_MARKET_DATA", t)
            return
        limit = None if is_market else price
        if req.post_only and self._available(st, is_buy, limit, 1) > 0:
            self._reject(req, "WOULD_CROSS", t)
            return
        stats = self.stats
        stats.accepted += 1
        self._eid = eid = self._eid + 1
        out = self._out
        e = _EventSlots()  # the ACCEPTED report, built as in ``_emit``
        e.kind = _ACCEPTED
        e.account = account
        e.client_order_id = coid
        e.symbol = req.symbol
        e.side = side
        e.price = price
        e.qty = qty
        e.leaves = qty
        e.ts_ns = t
        e.event_id = eid
        e.reason = ""
        e.liquidity = None
        e.fee = _ZERO
        e.venue_order_id = 0
        e.__class__ = OrderEvent
        out.append(e)
        tif = req.tif
        if tif is _FOK and self._available(st, is_buy, limit, qty) < qty:
            stats.expired += 1
            self._emit(_EXPIRED, req, price, qty, 0, t, "FOK_UNFILLED")
            return
        # ``_take`` for the best opposite level, inlined: the order is not resting yet, so a
        # fill there is ``_fill`` without the unrest; the paper order (``_Order``) is built
        # only if something is left for the deeper levels or for the book.
        o: _Order | None = None
        leaves = qty
        best = book.best_ask() if is_buy else book.best_bid()
        if best is not None:
            p, q = best
            if limit is None or (p <= limit if is_buy else p >= limit):
                taken = st.taken_asks if is_buy else st.taken_bids
                had = taken.get(p, 0)
                avail = q - had
                if avail > 0:
                    f = avail if avail < qty else qty
                    taken[p] = had + f
                    leaves = qty - f
                    stats.fills += 1
                    stats.taker_fills += 1
                    if st.taker_rate:
                        notional = p * f
                        fee = st.taker_fees.get(notional)
                        if fee is None:
                            fee = _fee(st.taker_fees, st.taker_rate, notional)
                    else:
                        fee = _ZERO
                    self._eid = eid = eid + 1
                    e = _EventSlots()  # the FILL report, as ``_fill`` builds it
                    e.kind = _FILL
                    e.account = account
                    e.client_order_id = coid
                    e.symbol = req.symbol
                    e.side = side
                    e.price = p
                    e.qty = f
                    e.leaves = leaves
                    e.ts_ns = t
                    e.event_id = eid
                    e.reason = ""
                    e.liquidity = _TAKER
                    e.fee = fee
                    e.venue_order_id = 0
                    e.__class__ = OrderEvent
                    out.append(e)
                if leaves == 0:
                    return
                o = _Order(req)
                o.leaves = leaves
                self._walk(st, o, limit, t, book, is_buy, taken)
                leaves = o.leaves
                if leaves == 0:
                    return
        if is_market:
            stats.expired += 1
            self._emit(_EXPIRED, req, price, leaves, 0, t, "NO_LIQUIDITY")
        elif tif is not _GTC:
            stats.expired += 1
            self._emit(_EXPIRED, req, price, leaves, 0, t, "IOC_REMAINDER")
        else:
            if o is None:
                o = _Order(req)
            self._rest(st, o)

    def _arrive_cancel(self, account: int, coid: int, t: int) -> None:
        o = self._live.get((account, coid))
        if o is None:
            self._cancel_reject(account, coid, "UNKNOWN_ORDER", t)
            return
        st = self._syms[o.request.symbol]
        leaves = o.leaves
        self._unrest(st, o)
        self.stats.cancelled += 1
        self._emit(_CANCELLED, o.request, o.price, leaves, 0, t, "USER")

    def _cancel_reject(self, account: int, coid: int, reason: str, t: int) -> None:
        self.stats.cancel_rejects += 1
        known = self._requests.get((account, coid))
        if known is None:
            req = OrderRequest(account, coid, "", _BUY, 0)
        else:
            # The report carries the order's symbol and side (nothing else of the request).
            req = OrderRequest(account, coid, known[0], _BUY if known[1] else _SELL, 0)
        self._emit(_CANCEL_REJECTED, req, 0, 0, 0, t, reason)

    def _arrive_modify(self, account: int, coid: int, price: int, qty: int, t: int) -> None:
        o = self._live.get((account, coid))
        if o is None:
            self._cancel_reject(account, coid, "UNKNOWN_ORDER", t)
            return
        if qty <= 0:
            self._cancel_reject(account, coid, "INVALID_QTY", t)
            return
        if price <= 0:
            self._cancel_reject(account, coid, "INVALID_PRICE", t)
            return
        st = self._syms[o.request.symbol]
        if price == o.price and qty <= o.leaves:
            o.leaves = qty
            self.stats.replaced += 1
            self._emit(_REPLACED, o.request, price, qty, qty, t)
            return
        if o.request.post_only and self._available(st, o.is_buy, price, 1) > 0:
            self._cancel_reject(account, coid, "WOULD_CROSS", t)
            return
        self._unrest(st, o)
        o.price = price
        o.leaves = qty
        self.stats.replaced += 1
        self._emit(_REPLACED, o.request, price, qty, qty, t)
        self._take(st, o, price, t)
        if o.leaves:
            self._rest(st, o)

    def _arrive_cancel_all(self, account: int, symbol: str | None, t: int) -> None:
        victims = [
            o
            for (acc, _), o in self._live.items()
            if acc == account and (symbol is None or o.request.symbol == symbol)
        ]
        for o in victims:
            st = self._syms[o.request.symbol]
            leaves = o.leaves
            self._unrest(st, o)
            self.stats.cancelled += 1
            self._emit(_CANCELLED, o.request, o.price, leaves, 0, t, "MASS_CANCEL")

    # ------------------------------------------------------------------ book walking

    def _available(self, st: _Symbol, is_buy: bool, limit: int | None, want: int) -> int:
        """Opposite-side lots available within ``limit`` (None = any), counting up to ``want``."""
        book = st.book
        assert book is not None
        best = book.best_ask() if is_buy else book.best_bid()
        if best is None or (limit is not None and (best[0] > limit if is_buy else best[0] < limit)):
            return 0
        taken = st.taken_asks if is_buy else st.taken_bids
        if not taken and best[1] >= want:
            return best[1]
        total = 0
        n = 16
        start = 0
        while True:
            bids, asks = book.depth(n)
            levels = asks if is_buy else bids
            for i in range(start, len(levels)):
                p, q = levels[i]
                if limit is not None and (p > limit if is_buy else p < limit):
                    return total
                avail = q - taken.get(p, 0) if taken else q
                if avail > 0:
                    total += avail
                    if total >= want:
                        return total
            if len(levels) < n:
                return total
            start = len(levels)
            n *= 4

    def _take(self, st: _Symbol, o: _Order, limit: int | None, t: int) -> None:
        """Walk the opposite side within ``limit``, filling ``o`` (TAKER) level by level.

        The best level comes from ``best_*`` (one small call); ``depth`` is read only when the
        order needs more than the best level has.
        """
        book = st.book
        assert book is not None
        is_buy = o.is_buy
        best = book.best_ask() if is_buy else book.best_bid()
        if best is None:
            return
        p, q = best
        if limit is not None and (p > limit if is_buy else p < limit):
            return
        taken = st.taken_asks if is_buy else st.taken_bids
        had = taken.get(p, 0)
        avail = q - had
        if avail > 0:
            leaves = o.leaves
            f = avail if avail < leaves else leaves
            taken[p] = had + f
            self._fill(st, o, f, p, _TAKER, t)
            if o.leaves == 0:
                return
        self._walk(st, o, limit, t, book, is_buy, taken)

    def _walk(
        self,
        st: _Symbol,
        o: _Order,
        limit: int | None,
        t: int,
        book: BookView,
        is_buy: bool,
        taken: dict[int, int],
    ) -> None:
        """The rest of ``_take``: the opposite levels behind the best one, read with ``depth``."""
        n = 16
        start = 1  # the best level (index 0) is done
        while True:
            bids, asks = book.depth(n)
            levels = asks if is_buy else bids
            for i in range(start, len(levels)):
                p, q = levels[i]
                if limit is not None and (p > limit if is_buy else p < limit):
                    return
                avail = q - taken.get(p, 0)
                if avail <= 0:
                    continue
                f = avail if avail < o.leaves else o.leaves
                taken[p] = taken.get(p, 0) + f
                self._fill(st, o, f, p, _TAKER, t)
                if o.leaves == 0:
                    return
            if len(levels) < n:
                return
            start = len(levels)
            n *= 4

    # ------------------------------------------------------------------ resting orders

    def _rest(self, st: _Symbol, o: _Order) -> None:
        is_buy = o.is_buy
        levels = st.bids if is_buy else st.asks
        price = o.price
        lvl = levels.get(price)
        side = _BUY if is_buy else _SELL
        if lvl is None:
            lvl = _Level(is_buy, price, st.qty_at(side, price))
            levels[price] = lvl
        taken_same = (st.taken_bids if is_buy else st.taken_asks).get(price, 0)
        # Back of the queue: everything the market shows at our price is ahead of us.
        o.ahead = 0 if self._front else max(0, lvl.last_qty - lvl.traded - taken_same)
        o.level = lvl
        lvl.orders.append(o)
        self._live[(o.account, o.coid)] = o

    def _unrest(self, st: _Symbol, o: _Order) -> None:
        lvl = o.level
        if lvl is not None:
            lvl.orders.remove(o)
            if not lvl.orders:
                levels = st.bids if lvl.is_buy else st.asks
                del levels[lvl.price]
            o.level = None
        self._live.pop((o.account, o.coid), None)

    # ------------------------------------------------------------------ market data

    def on_trade(self, tick: TradeTick) -> None:
        """A trade printed: move our queues forward and fill what it reached."""
        t = tick.recv_ns
        if self._heap and self._heap[0][0] <= t:
            self._run_due(t)
        elif t > self._now:
            self._now = t
        self.stats.trades += 1
        st = self._syms.get(tick.symbol)
        if st is None:
            self.stats.unknown_symbol_events += 1
        elif tick.qty <= 0 or tick.price <= 0:
            self.stats.bad_trades += 1
            log.warning(
                "trade tick ignored: %s: price %d qty %d", tick.symbol, tick.price, tick.qty
            )
        else:
            self._trade(st, tick, t)
        if self._out:
            self._flush()

    def _trade(self, st: _Symbol, tick: TradeTick, t: int) -> None:
        tp = tick.price
        if tick.aggressor is _SELL:
            levels = st.bids
            if not levels:
                return
            prices = sorted((p for p in levels if p >= tp), reverse=True)
        else:
            levels = st.asks
            if not levels:
                return
            prices = sorted(p for p in levels if p <= tp)
        rem = tick.qty
        for p in prices:
            lvl = levels.get(p)
            if lvl is None:
                continue
            if p == tp:
                lvl.traded += tick.qty
                rem = self._trade_at_level(st, lvl, rem, t)
            else:
                rem = self._trade_through_level(st, lvl, rem, t)

    def _trade_at_level(self, st: _Symbol, lvl: _Level, rem: int, t: int) -> int:
        consumed = 0  # market lots ahead of our orders consumed by the trade
        for o in list(lvl.orders):
            need = o.ahead - consumed
            if need > 0:
                used = need if need < rem else rem
                consumed += used
                rem -= used
            if rem == 0:
                break
            f = o.leaves if o.leaves < rem else rem
            rem -= f
            self._fill(st, o, f, lvl.price, _MAKER, t)
        if consumed:
            for o in lvl.orders:
                o.ahead = o.ahead - consumed if o.ahead > consumed else 0
        return rem

    def _trade_through_level(self, st: _Symbol, lvl: _Level, rem: int, t: int) -> int:
        for o in list(lvl.orders):
            o.ahead = 0
            if rem:
                f = o.leaves if o.leaves < rem else rem
                rem -= f
                self._fill(st, o, f, lvl.price, _MAKER, t)
        return rem

    def on_book(self, update: BookUpdate) -> None:
        """The book of ``update.symbol`` changed (already applied): update queues, fill."""
        self.stats.book_updates += 1
        st = self._syms.get(update.symbol)
        t = update.recv_ns
        if st is None:
            self.stats.unknown_symbol_events += 1
            self.advance_to(t)
            return
        if st.bids or st.asks or self._heap or self._restoring:
            self._book(st, update.symbol, update.book, t)
        else:
            # Nothing of ours rests or is in flight in this symbol: what ``_book`` would do,
            # inlined (the node's case after a taker fill: only the liquidity we took is
            # remembered, and each remembered price is capped at its level's new quantity,
            # or forgotten when the level is gone, as ``_decay_taken`` does).
            book = update.book
            if st.book is not book:
                self._bind(st, book)
            # One remembered price a side is the usual case: unpacked without a list.
            taken = st.taken_bids
            if taken:
                if len(taken) == 1:
                    [(price, had)] = taken.items()
                    q = st.qty_at(_BUY, price)
                    if q <= 0:
                        taken.clear()
                    elif had > q:
                        taken[price] = q
                else:
                    qty_at = st.qty_at
                    for price, had in list(taken.items()):
                        q = qty_at(_BUY, price)
                        if q <= 0:
                            del taken[price]
                        elif had > q:
                            taken[price] = q
            taken = st.taken_asks
            if taken:
                if len(taken) == 1:
                    [(price, had)] = taken.items()
                    q = st.qty_at(_SELL, price)
                    if q <= 0:
                        taken.clear()
                    elif had > q:
                        taken[price] = q
                else:
                    qty_at = st.qty_at
                    for price, had in list(taken.items()):
                        q = qty_at(_SELL, price)
                        if q <= 0:
                            del taken[price]
                        elif had > q:
                            taken[price] = q
            if t > self._now:
                self._now = t
        if self._out:
            self._flush()

    def book_moved(self, symbol: str, book: BookView, recv_ns: int) -> bool:
        """``on_book(BookUpdate(symbol, recv_ns, recv_ns, any id, book))``, then ``not idle()``.

        For a driver that owns the book and would build the event only for this call (the
        backtester's quote loop while the broker is busy): the broker reads nothing else of
        the event, so the effects, reports and counters are those of :meth:`on_book`. Returns
        True while the broker is not :meth:`idle` (it still needs market data).
        """
        self.stats.book_updates += 1
        st = self._syms.get(symbol)
        if st is None:
            self.stats.unknown_symbol_events += 1
            self.advance_to(recv_ns)
        elif st.bids or st.asks or self._heap or self._restoring:
            self._book(st, symbol, book, recv_ns)
        else:
            # Nothing of ours rests in this symbol and nothing is in flight: ``_book`` would
            # only bind the book and shrink what we took (the case after a market order
            # while the level it took from is still there), inlined here.
            if st.book is not book:
                self._bind(st, book)
            taken = st.taken_bids
            if taken:
                for price, had in list(taken.items()):
                    q = st.qty_at(_BUY, price)
                    if q <= 0:
                        del taken[price]
                    elif had > q:
                        taken[price] = q
            taken = st.taken_asks
            if taken:
                for price, had in list(taken.items()):
                    q = st.qty_at(_SELL, price)
                    if q <= 0:
                        del taken[price]
                    elif had > q:
                        taken[price] = q
            if recv_ns > self._now:
                self._now = recv_ns
            if not self._out and (st.taken_bids or st.taken_asks):
                return True  # nothing to deliver; liquidity taken is remembered: not idle
        if self._out:
            self._flush()
        if self._heap or self._live or self._restoring:
            return True
        for s in self._syms.values():  # noqa: SIM110 (a loop: any() builds a generator)
            if s.taken_bids or s.taken_asks:
                return True
        return False

    def _book(self, st: _Symbol, symbol: str, book: BookView, t: int) -> None:
        if st.book is not book:
            self._bind(st, book)
        if self._restoring and symbol in self._restoring:
            self._place_restored(st, self._restoring.pop(symbol), t)
        qty_at = st.qty_at
        if st.bids:
            self._levels_changed(st.bids, qty_at, _BUY)
        if st.asks:
            self._levels_changed(st.asks, qty_at, _SELL)
        if st.taken_bids:
            self._decay_taken(st.taken_bids, qty_at, _BUY)
        if st.taken_asks:
            self._decay_taken(st.taken_asks, qty_at, _SELL)
        if self._heap and self._heap[0][0] <= t:
            self._run_due(t)
        elif t > self._now:
            self._now = t
        if st.bids:
            best_ask = book.best_ask()
            if best_ask is not None and best_ask[0] <= max(st.bids):
                self._crossed(st, True, t)
        if st.asks:
            best_bid = book.best_bid()
            if best_bid is not None and best_bid[0] >= min(st.asks):
                self._crossed(st, False, t)

    def _levels_changed(
        self, levels: dict[int, _Level], qty_at: Callable[[Side, int], int], side: Side
    ) -> None:
        proportional = self._proportional
        for price, lvl in levels.items():
            q = qty_at(side, price)
            if q == lvl.last_qty and not lvl.traded:
                continue
            expected = lvl.last_qty - lvl.traded
            if proportional and 0 < q < expected:
                cancelled = expected - q
                for o in lvl.orders:
                    o.ahead -= cancelled * o.ahead // expected
            for o in lvl.orders:
                if o.ahead > q:
                    o.ahead = q
            lvl.last_qty = q
            lvl.traded = 0

    @staticmethod
    def _decay_taken(taken: dict[int, int], qty_at: Callable[[Side, int], int], side: Side) -> None:
        """Cap each remembered price at its level's quantity; forget it when the level is gone."""
        for price, had in list(taken.items()):
            q = qty_at(side, price)
            if q <= 0:
                del taken[price]
            elif had > q:
                taken[price] = q

    def _crossed(self, st: _Symbol, is_buy: bool, t: int) -> None:
        """The opposite side reached our resting price: fill from what is available there."""
        book = st.book
        assert book is not None
        levels = st.bids if is_buy else st.asks
        taken = st.taken_asks if is_buy else st.taken_bids
        ours = sorted(levels, reverse=is_buy)  # our best price first
        bound = ours[0]
        # Opposite liquidity at or through our best resting price, its best first.
        n = 16
        while True:
            bids, asks = book.depth(n)
            opp = asks if is_buy else bids
            if len(opp) < n or ((opp[-1][0] > bound) if is_buy else (opp[-1][0] < bound)):
                break
            n *= 4
        pool = [
            [p, q - taken.get(p, 0)]
            for p, q in opp
            if ((p <= ours[0]) if is_buy else (p >= ours[0])) and q - taken.get(p, 0) > 0
        ]
        best_opp = opp[0][0] if opp else None
        for price in ours:
            if best_opp is None or ((price < best_opp) if is_buy else (price > best_opp)):
                break  # this level and the ones behind it are not reached
            lvl = levels.get(price)
            if lvl is None:
                continue
            for o in list(lvl.orders):
                o.ahead = 0
                for entry in pool:
                    if o.leaves == 0:
                        break
                    p, avail = entry
                    if avail <= 0 or ((p > price) if is_buy else (p < price)):
                        continue
                    f = avail if avail < o.leaves else o.leaves
                    entry[1] = avail - f
                    taken[p] = taken.get(p, 0) + f
                    self._fill(st, o, f, price, _MAKER, t)

    # ------------------------------------------------------------------ queries

    def queue_position(self, account: int, client_order_id: int) -> tuple[int, int] | None:
        """``(market lots ahead, leaves)`` of a resting order, or None if it is not resting."""
        o = self._live.get((account, client_order_id))
        if o is None:
            return None
        return o.ahead, o.leaves

    def resting_count(self) -> int:
        """Number of paper orders resting in all books."""
        return len(self._live)

    def in_flight_count(self) -> int:
        """Requests sent and not arrived yet."""
        return len(self._heap)

    def idle(self) -> bool:
        """True when no market event can change the broker's state or produce a report.

        That is: no order resting (in any book), no request in flight, no liquidity remembered
        as ``taken``, no restored order waiting for its first book. While it holds, a driver
        may skip ``on_book`` / ``on_trade`` (the backtester's fast path does): those calls
        would only count the event. Its books stay attached, so the first order after an idle
        stretch meets the current book. Every state change that ends idleness happens inside a
        call to the broker (``submit``, ``modify``, ``restore``, ``advance_to``, the market
        callbacks), so checking after each call is enough.

        Cost: O(number of symbols) (the ``taken`` maps), a few dict checks.
        """
        if self._heap or self._live or self._restoring:
            return False
        for st in self._syms.values():  # noqa: SIM110 (a loop: all() would build a generator)
            if st.taken_bids or st.taken_asks:
                return False
        return True
