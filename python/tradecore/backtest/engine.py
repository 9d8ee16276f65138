"""The event-driven backtester: the trading node's strategy, risk, order manager, paper broker
and portfolio code, driven by recorded or synthetic data on a simulated clock.

Owns :class:`BacktestEngine` (the loop), :class:`BacktestContext` (the
:class:`~tradecore.strategy.Context` each strategy gets: the node's semantics, on simulated
time), the L2 feeds (:class:`QuoteFeed`, :class:`TradeFeed`, :class:`RecordingFeed`),
:class:`TopBook` and :class:`BacktestResult`. L3 (LOBSTER) data and its broker live in
:mod:`tradecore.backtest.l3` and plug into the same loop.

**Same code as live.** Strategies are built by :func:`tradecore.strategy.create_strategy` and
get the same callbacks as under ``tradecore trade``; every order goes through the same
:class:`~tradecore.risk.RiskEngine` check, :class:`~tradecore.execution.OrderManager`, execution
client (the :class:`~tradecore.execution.PaperBroker` in L2 mode, with its latency, queue and
fee models) and :class:`~tradecore.execution.Portfolio`. There is no backtest-only strategy API.
The semantics of the context are the node's: an order the risk engine refuses comes back
REJECTED at once without ``on_order``; reports that arrive inside a callback (zero latency) are
applied to the order manager and portfolio at once, and ``on_fill``/``on_order`` are delivered
when the callback has returned (fills first); callbacks are never re-entered.

**Simulated time.** The feeds are merged by timestamp (a heap; ties go to the feed listed first).
Before the event stamped ``t`` is applied, everything due at or before ``t`` runs in time order:
broker requests whose latency has elapsed (``broker.advance_to(due)``, so a request meets the
book as it was when it arrived) and timers (strategy timers, the risk check, equity sampling),
each with the clock at its own due time. Then the clock moves to ``t``, the feed updates its book,
the broker sees the update (``on_book``/``on_trade``) and the strategies are called. An event
older than the clock is an error naming the feed and row (time never goes backwards).

**Fast path.** While the paper broker is idle (:meth:`~tradecore.execution.PaperBroker.idle`: no
resting order, no request in flight, no liquidity taken), a book update or trade cannot matter
to it, so it is not called (checked once after every broker call, not per event); a strategy
that does not override a callback (``on_fill`` and ``on_order`` included) is not called, and no
event object is built for nobody. The quote loop runs over plain Python ints of each chunk
(made as they are read, from a ``memoryview`` of each column: :func:`_column_values`) and
allocates nothing per tick except the events a strategy actually receives (each
:class:`Quote` built through a slot twin, :func:`_slot_twin`, at about half the constructor's
cost); the common case of a single quote feed with one ``on_quote`` strategy has its own loop
(:meth:`QuoteFeed._run_one_quote`: the same steps, the callback called directly, the busy
broker's book update through :meth:`~tradecore.execution.PaperBroker.book_moved`, which needs no
``BookUpdate``). The wake-up time is brought forward after each broker call (a request in
flight) and recomputed only when it is reached or a timer changes, not after every event. The
result's hashes are computed when first read (:attr:`BacktestResult.fills_hash`), like its
tables, not inside :meth:`run`.

**Errors.** Data errors (:class:`~tradecore.data.DataFormatError`) name the file and row. A
strategy that raises stops the run (``on_strategy_error = "stop"``, the default) with a
:class:`StrategyError` naming the strategy, the callback and the event (feed, row, time); no
result is returned or written for a failed run. With ``"continue"`` it is logged and counted as
in the node, and the count is in the result.

**Determinism.** No wall clock and no unseeded randomness: the same data, configuration and
seed give the same orders and fills; :attr:`BacktestResult.fills_hash` (SHA-256 of every fill)
shows it. The chunk size only changes how data is read, never the result.

**Memory.** Feeds hold one chunk of rows at a time (quotes and trades of one generator are split
by :class:`PairSplit`, which holds only what one side has read ahead of the other), so memory
does not grow with the number of events; what grows is proportional to orders and fills (the
order manager's orders, the fill rows) and to the equity samples (one per
``equity_interval_ns`` of simulated time; an interval of 0 samples after every event and so
grows with the events). ``tests/integration/test_backtest_memory.py`` measures it.

Cost per market event with no strategy and no orders: a comparison with the next wake-up time,
a clock store, the book update; per subscribed callback one event object and one call.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Context as DecimalContext
from decimal import Decimal, Inexact, InvalidOperation, Overflow
from operator import attrgetter
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tradecore.enums import OrderType, Side, TimeInForce
from tradecore.errors import TradecoreError, UsageError
from tradecore.execution import (
    LatencyModel,
    OrderManager,
    PaperBroker,
    PaperBrokerConfig,
    Portfolio,
)
from tradecore.execution.types import (
    Fill,
    Liquidity,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderRequest,
    OrderStatus,
)
from tradecore.instrument import Instrument
from tradecore.marketdata.events import BookUpdate, BookView, Quote, Resync, TradeTick
from tradecore.node.clock import Timer, Timers
from tradecore.risk import RiskEngine, RiskEvent, RiskLimits
from tradecore.strategy import Strategy

__all__ = [
    "BacktestEngine",
    "BacktestError",
    "BacktestResult",
    "EngineSettings",
    "Feed",
    "PairSplit",
    "QuoteFeed",
    "RecordingFeed",
    "StrategyError",
    "StrategySpec",
    "TopBook",
    "TradeFeed",
    "fills_digest",
]

log = logging.getLogger("tradecore.backtest")

_MONEY = DecimalContext(prec=60, traps=[InvalidOperation, Inexact, Overflow])
_NEVER = 1 << 62
_TWO = Decimal(2)
_BUY = Side.BUY
_SELL = Side.SELL
_LIMIT = OrderType.LIMIT
_GTC = TimeInForce.GTC
_REJECTED_EV = OrderEventKind.REJECTED
_REJECTED_ST = OrderStatus.REJECTED
_MARKET = OrderType.MARKET
_IOC = TimeInForce.IOC
# ``member.value`` of an enum is a Python-level descriptor call (~0.5 us in CPython 3.11).
_LIQUIDITY_VALUE = {m: m.value for m in Liquidity}
_MAKER_VALUE = Liquidity.MAKER.value
_ENUM_VALUE: dict[Any, str] = {
    m: m.value for e in (Side, OrderType, TimeInForce, OrderStatus) for m in e
}
_ORDER_KEY = attrgetter("request.account", "request.client_order_id")
_HASH_BATCH = 4096


def _slot_twin(cls: type) -> type:
    """A plain class with the very same ``__slots__`` as the frozen, slotted dataclass ``cls``.

    An instance of the twin is filled with plain attribute stores (the interpreter's
    specialised slot store; the frozen ``__setattr__`` is not in the way) and then becomes a
    ``cls`` by assigning its ``__class__`` (allowed: same slots on the same base). The quote
    loops build each :class:`Quote` this way, about 140 ns instead of 260 ns through
    ``Quote(...)`` (CPython 3.11): the technique of
    :func:`tradecore.marketdata.events.fast_frozen_init`, inlined in the loop, so that no
    ``__init__`` frame is entered and the class is switched once instead of twice per tick. The
    result is an ordinary ``cls`` instance: same fields, equality, hash, ``repr``, frozenness
    (``tests/unit/test_backtest_engine.py`` compares it with the constructor's on random rows).

    Refuses, at import time, a class whose layout the twin could not share: not a frozen
    dataclass with its own slots, a base other than ``object``, slots other than one per init
    field, or a ``__post_init__`` (which the stores would skip).
    """
    params = getattr(cls, "__dataclass_params__", None)
    fields = getattr(cls, "__dataclass_fields__", {})
    slots = tuple(cls.__dict__.get("__slots__", ()))
    if (
        params is None
        or not params.frozen
        or cls.__bases__ != (object,)
        or hasattr(cls, "__post_init__")
        or slots != tuple(fields)
        or not all(f.init for f in fields.values())
    ):
        raise TypeError(f"{cls.__name__}: no slot twin for this class (see _slot_twin)")
    return type(f"_{cls.__name__}Twin", (), {"__slots__": slots, "__module__": __name__})


_QUOTE_TWIN: Any = _slot_twin(Quote)
_NEW_OBJECT = object.__new__


class BacktestError(TradecoreError, RuntimeError):
    """The run could not complete (bad data order, a failed strategy); no result exists."""


class StrategyError(BacktestError):
    """A strategy raised: names the strategy, the callback and the event it was handling."""

    def __init__(self, strategy: str, callback: str, where: str, exc: BaseException) -> None:
        self.strategy = strategy
        self.callback = callback
        self.where = where
        super().__init__(
            f"strategy {strategy!r} raised {type(exc).__name__}: {exc} in {callback} "
            f"({where}); the run is stopped and no results are written"
        )


# ============================================================================ books


class TopBook:
    """A one-level book per side from quote data (best bid and ask); a ``BookView``."""

    __slots__ = ("ask_px", "ask_qty", "bid_px", "bid_qty")

    def __init__(self) -> None:
        self.bid_px = 0
        self.bid_qty = 0
        self.ask_px = 0
        self.ask_qty = 0

    def best_bid(self) -> tuple[int, int] | None:
        return (self.bid_px, self.bid_qty) if self.bid_qty > 0 else None

    def best_ask(self) -> tuple[int, int] | None:
        return (self.ask_px, self.ask_qty) if self.ask_qty > 0 else None

    def depth(self, n: int = 10) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        if n < 1:
            return [], []
        bids = [(self.bid_px, self.bid_qty)] if self.bid_qty > 0 else []
        asks = [(self.ask_px, self.ask_qty)] if self.ask_qty > 0 else []
        return bids, asks

    def qty_at(self, side: Side, price: int) -> int:
        if side is _BUY:
            return self.bid_qty if price == self.bid_px else 0
        return self.ask_qty if price == self.ask_px else 0


# ============================================================================ feeds


class Feed(Protocol):
    """One time-ordered source: ``next_ts`` loads the next row (None at the end) without
    applying it; ``apply`` applies the loaded row (book, broker, strategies) via the engine."""

    name: str
    row: int

    def bind(self, engine: BacktestEngine) -> None: ...

    def next_ts(self) -> int | None: ...

    def apply(self) -> None: ...


# Native-endian bool, integer and float buffers: iterating a memoryview over them yields the
# same Python values as ``tolist()`` (bool, int, float).
_BUFFER_KINDS = frozenset("biu")
_BUFFER_FLOATS = frozenset((np.dtype(np.float32), np.dtype(np.float64)))


def _column_values(values: Any) -> Sequence[Any]:
    """One column of a chunk as a sequence of Python scalars, for ``zip`` over the columns.

    A one-dimensional native-endian bool, integer or float array becomes a ``memoryview`` of its
    (contiguous) buffer: iterating it makes each Python value as it is read, the same value and
    type ``tolist()`` gives, without first building a list of every value of the chunk (a
    million-row chunk of six columns is six million ``int`` objects read back from memory
    later; made on the fly they come from, and return to, the same few freed blocks). About
    half the cost per row. Anything else (object, datetime, byte-swapped, multi-dimensional)
    goes through ``tolist()`` as before. ``tests/unit/test_backtest_engine.py`` checks the
    values against ``tolist()`` for every dtype a table can hold.
    """
    arr = np.asarray(values)
    dt = arr.dtype
    if arr.ndim == 1 and dt.isnative and (dt.kind in _BUFFER_KINDS or dt in _BUFFER_FLOATS):
        return np.ascontiguousarray(arr).data
    out: list[Any] = arr.tolist()
    return out


class _ChunkFeed:
    """Rows from chunks of columns, as tuples of Python ints (:func:`_column_values`)."""

    columns: tuple[str, ...] = ()

    def __init__(self, name: str, symbol: str, chunks: Iterable[Mapping[str, Any]]) -> None:
        self.name = name
        self.symbol = symbol
        self.row = 0
        self._chunks = iter(chunks)
        self._rows: Iterator[tuple[int, ...]] = iter(())
        self.cur: tuple[int, ...] = ()
        self.engine: BacktestEngine | None = None

    def bind(self, engine: BacktestEngine) -> None:
        self.engine = engine

    def _next_chunk(self) -> bool:
        for chunk in self._chunks:
            cols = [_column_values(chunk[c]) for c in self.columns]
            if cols and len(cols[0]):
                self._rows = zip(*cols, strict=True)
                return True
        return False

    def next_ts(self) -> int | None:
        cur = next(self._rows, None)
        if cur is None:
            if not self._next_chunk():
                return None
            cur = next(self._rows)
        self.cur = cur
        self.row += 1
        return cur[0]

    def apply(self) -> None:
        raise NotImplementedError


class QuoteFeed(_ChunkFeed):
    """A ``quotes`` table (Binance bookTicker, synthetic quotes): each row sets the symbol's
    :class:`TopBook`; the broker and ``on_book`` see a :class:`BookUpdate`, ``on_quote`` a
    :class:`Quote`."""

    columns = ("ts_ns", "update_id", "bid_px", "bid_qty", "ask_px", "ask_qty")

    def apply(self) -> None:
        ts, uid, bp, bq, ap, aq = self.cur
        eng = self.engine
        assert eng is not None
        book = eng.top_books[self.symbol]
        book.bid_px = bp
        book.bid_qty = bq
        book.ask_px = ap
        book.ask_qty = aq
        eng.book_changed(self.symbol, ts, uid, book, True)

    def run_alone(self, eng: BacktestEngine) -> None:
        """The rest of the feed when it is the only one: the engine's per-event steps inlined
        (order check, wake-ups, clock, book, dispatch only when someone listens)."""
        sym = self.symbol
        quote_calls = [(sl, sl.strategy.on_quote) for sl in eng.quote_routes.get(sym, ())]
        if (
            len(quote_calls) == 1
            and eng._paper
            and not eng.book_routes.get(sym)
            and not eng.sample_every_event
        ):
            self._run_one_quote(eng, *quote_calls[0])
            return
        book = eng.top_books[sym]
        on_book = bool(eng.book_routes.get(sym))
        failed = eng._strategy_failed
        new_obj = _NEW_OBJECT
        twin = _QUOTE_TWIN
        quote_cls = Quote
        every = eng.sample_every_event
        changed = eng.book_changed
        row = start = self.row
        last = eng.now_ns
        rows = self._rows
        while True:
            for ts, uid, bp, bq, ap, aq in rows:
                row += 1
                if ts < last:
                    self.row = row
                    eng.out_of_order(self, ts)
                last = ts
                if ts >= eng.wake_ns:
                    self.row = row
                    eng.wake_up(ts)
                eng.now_ns = ts
                book.bid_px = bp
                book.bid_qty = bq
                book.ask_px = ap
                book.ask_qty = aq
                if on_book or eng.busy:
                    self.row = row
                    changed(sym, ts, uid, book, False)
                if quote_calls:
                    self.row = row
                    # Quote(sym, ts, ts, uid, bp, bq, ap, aq), built through its slot twin.
                    q = new_obj(twin)
                    q.symbol = sym
                    q.ts_ns = ts
                    q.recv_ns = ts
                    q.update_id = uid
                    q.bid_price = bp
                    q.bid_qty = bq
                    q.ask_price = ap
                    q.ask_qty = aq
                    q.__class__ = quote_cls
                    for slot, fn in quote_calls:
                        eng._depth += 1
                        try:
                            fn(q)
                        except Exception as exc:
                            failed(slot, "on_quote", q, "", exc)
                        finally:
                            eng._depth -= 1
                if eng.post_needed:
                    self.row = row
                    eng.post_event()
                if every:
                    self.row = row
                    eng.sample(ts)
            if not self._next_chunk():
                break
            rows = self._rows
        self.row = row
        eng.events += row - start

    def _run_one_quote(
        self, eng: BacktestEngine, slot: _Slot, on_quote: Callable[[Quote], None]
    ) -> None:
        """:meth:`run_alone` for the common case: one strategy listens to the quotes, none to
        the book, the broker is the paper broker, equity is sampled on its timer. The same
        steps in the same order as :meth:`BacktestEngine.book_changed` and the general loop,
        with the one callback called directly (no route loop) and the busy broker's book
        update inlined.

        ``self.row`` (what error messages name) is stored only before a step that can raise
        or call a strategy (a wake-up, the broker, ``post_event``) and when the callback
        raised; in between it is not read.

        This loop is the outermost caller, so the engine's callback depth is set, not counted:
        it is 1 for the whole loop (the callback, and the broker's book update, whose reports
        only queue deliveries) and 0 only inside ``wake_up`` and ``post_event``, the two steps
        that deliver what is pending (:meth:`BacktestEngine._drain` runs at depth 0 only).
        That is two stores per wake-up or delivery instead of two per tick; deliveries happen
        at the same points as in the general loop.
        """
        sym = self.symbol
        book = eng.top_books[sym]
        failed = eng._strategy_failed
        new_obj = _NEW_OBJECT
        twin = _QUOTE_TWIN
        quote_cls = Quote
        book_moved = eng.broker.book_moved
        row = start = self.row
        last = eng.now_ns
        rows = self._rows
        if eng._depth:
            raise AssertionError("run_alone is the outermost caller")  # pragma: no cover
        eng._depth = 1
        try:
            while True:
                for ts, uid, bp, bq, ap, aq in rows:
                    row += 1
                    if ts < last:
                        self.row = row
                        eng.out_of_order(self, ts)
                    last = ts
                    if ts >= eng.wake_ns:
                        self.row = row
                        eng._depth = 0
                        eng.wake_up(ts)
                        eng._depth = 1
                    eng.now_ns = ts
                    book.bid_px = bp
                    book.bid_qty = bq
                    book.ask_px = ap
                    book.ask_qty = aq
                    if eng.busy:
                        # Requests go in flight only through the engine's submit, cancel,
                        # modify and cancel_all, which bring the wake-up forward themselves
                        # (also when one runs inside this call): only the idle flag is
                        # refreshed here. ``book_moved`` is ``on_book(BookUpdate(sym, ts, ts,
                        # uid, book))`` then ``not idle()``, without the event object.
                        self.row = row
                        eng.busy = book_moved(sym, book, ts)
                    # Quote(sym, ts, ts, uid, bp, bq, ap, aq), built through its slot twin.
                    q = new_obj(twin)
                    q.symbol = sym
                    q.ts_ns = ts
                    q.recv_ns = ts
                    q.update_id = uid
                    q.bid_price = bp
                    q.bid_qty = bq
                    q.ask_price = ap
                    q.ask_qty = aq
                    q.__class__ = quote_cls
                    try:
                        on_quote(q)
                    except Exception as exc:
                        self.row = row
                        failed(slot, "on_quote", q, "", exc)
                    if eng.post_needed:
                        self.row = row
                        eng._depth = 0
                        eng.post_event()
                        eng._depth = 1
                if not self._next_chunk():
                    break
                rows = self._rows
        finally:
            eng._depth = 0
        self.row = row
        eng.events += row - start


class TradeFeed(_ChunkFeed):
    """A ``trades`` table: the broker and ``on_trade`` see a :class:`TradeTick`."""

    columns = ("ts_ns", "trade_id", "price", "qty", "aggressor")

    def apply(self) -> None:
        ts, tid, px, qty, aggr = self.cur
        eng = self.engine
        assert eng is not None
        eng.trade_printed(self.symbol, ts, tid, px, qty, _BUY if aggr > 0 else _SELL)


class RecordingFeed:
    """A Binance recording (cryptofeed directory or a node ``.jsonl.gz``) through the node's
    own parser and L2 book sync (:class:`~tradecore.marketdata.sync.FeedCore`), in receive
    order; snapshots and disconnects are interleaved by time as the node's recorded source does.

    The row is loaded (``next_ts``) before it is parsed, so broker requests due before a message
    meet the book as it was.
    """

    def __init__(self, recording: Any, symbols: Sequence[str], name: str = "") -> None:
        from tradecore.marketdata.binance import instruments_from_exchange_info
        from tradecore.marketdata.sync import FeedCore

        self.recording = recording
        self.name = name or f"recording:{recording.source}"
        if recording.exchange_info is None:
            raise UsageError(f"{self.name}: the recording has no exchangeInfo")
        self.instruments: dict[str, Instrument] = instruments_from_exchange_info(
            recording.exchange_info, recording.symbols
        )
        self.wanted = frozenset(s.upper() for s in symbols)
        self.core = FeedCore(self.instruments, wall_offset_ns=0)
        self.row = 0
        self.engine: BacktestEngine | None = None
        self._items = self._merge()
        self._cur: tuple[int, int, str, str] = (0, 0, "", "")

    def bind(self, engine: BacktestEngine) -> None:
        self.engine = engine

    def _merge(self) -> Iterator[tuple[int, int, str, str]]:
        rec = self.recording
        side: list[tuple[int, int, str, str]] = []
        for sym, snaps in rec.snapshots.items():
            for t, body in snaps:
                side.append((t, 1, sym, body))
        for t in rec.disconnects:
            side.append((t, 0, "", ""))
        heapq.heapify(side)
        for t, text in rec.messages:
            while side and side[0][0] <= t:
                yield heapq.heappop(side)
            yield (t, 2, "", text)
        while side:
            yield heapq.heappop(side)

    def book(self, symbol: str) -> BookView | None:
        from tradecore.marketdata.sync import SyncState

        sync = self.core.books.get(symbol)
        if sync is None or sync.state is not SyncState.SYNCED:
            return None
        book: BookView = sync.book
        return book

    def next_ts(self) -> int | None:
        item = next(self._items, None)
        if item is None:
            return None
        self.row += 1
        self._cur = item
        return item[0]

    def apply(self) -> None:
        t, kind, sym, body = self._cur
        eng = self.engine
        assert eng is not None
        core = self.core
        events: tuple[Any, ...]
        if kind == 2:
            ev = core.on_message(body, t)
            events = () if ev is None else (ev,)
        elif kind == 1:
            ev = core.on_snapshot(sym, body, t)
            events = () if ev is None else (ev,)
        else:
            events = tuple(core.on_disconnect(t))
        for ev in events:
            if ev.symbol in self.wanted:
                eng.market_event(ev)


class PairSplit:
    """Two iterators over the halves of an iterator of pairs (the quotes and trades chunks of
    :func:`~tradecore.data.synthetic.synthetic_l2`), each pair read once.

    Only what one side has read ahead of the other is held (in a deque, released as the other
    side takes it); both feeds advance together in time, so that is about one chunk.
    ``itertools.tee`` is not used on purpose: it keeps its items in blocks of 57 until both
    sides have passed the whole block, which pins up to 57 chunks (hundreds of MB).
    """

    def __init__(self, pairs: Iterable[tuple[Any, Any]]) -> None:
        self._pairs = iter(pairs)
        self._ahead: tuple[deque[Any], deque[Any]] = (deque(), deque())

    def _next(self, side: int) -> tuple[bool, Any]:
        mine = self._ahead[side]
        if mine:
            return True, mine.popleft()
        pair = next(self._pairs, None)
        if pair is None:
            return False, None
        self._ahead[1 - side].append(pair[1 - side])
        return True, pair[side]

    def _side(self, side: int) -> Iterator[Any]:
        while True:
            ok, item = self._next(side)
            if not ok:
                return
            yield item

    def first(self) -> Iterator[Any]:
        """The first items of the pairs, in order."""
        return self._side(0)

    def second(self) -> Iterator[Any]:
        """The second items of the pairs, in order."""
        return self._side(1)


# ============================================================================ configuration


@dataclass(frozen=True)
class StrategySpec:
    """One strategy of a run: built by ``create_strategy`` (or given), its account and cash."""

    name: str
    kind: str = ""
    account: int = 1
    initial_cash: Decimal = Decimal(0)
    params: Mapping[str, object] = field(default_factory=dict)
    instance: Strategy | None = None


@dataclass(frozen=True)
class EngineSettings:
    """Everything of a run besides data and strategies (see :mod:`tradecore.backtest.config`).

    ``equity_interval_ns``: equity is sampled on this simulated-time timer (plus once at the
    start and once at the end); 0 samples after every event (exact curves for comparisons,
    memory proportional to the events).
    """

    broker: PaperBrokerConfig = field(default_factory=PaperBrokerConfig)
    risk: Mapping[str, Any] = field(default_factory=dict)
    equity_interval_ns: int = 1_000_000_000
    risk_check_interval_ns: int = 100_000_000
    stop_on_strategy_error: bool = True
    capital: Decimal | None = None
    name: str = "backtest"


# ============================================================================ context


@dataclass(slots=True)
class _Slot:
    strategy: Strategy
    ctx: BacktestContext
    account: int
    symbol: str
    initial_cash: Decimal
    orders: int = 0
    fills: int = 0
    errors: int = 0
    equity_rows: list[tuple[int, Decimal, int]] = field(default_factory=list)
    # The bound on_fill / on_order if the strategy overrides them, else None (not called).
    fill_cb: Callable[[Fill], None] | None = None
    order_cb: Callable[[Order], None] | None = None


def _overrides(strategy: Strategy, callback: str) -> bool:
    """True if the strategy's class replaces the base class's no-op ``callback``."""
    return getattr(type(strategy), callback) is not getattr(Strategy, callback)


class BacktestContext:
    """The :class:`~tradecore.strategy.Context` of one strategy in a backtest (one account)."""

    __slots__ = ("_account", "_engine", "_logger", "_name")

    def __init__(self, engine: BacktestEngine, name: str, account: int) -> None:
        self._engine = engine
        self._name = name
        self._account = account
        self._logger = logging.getLogger(f"tradecore.strategy.{name}")

    @property
    def account(self) -> int:
        return self._account

    @property
    def strategy_name(self) -> str:
        return self._name

    @property
    def logger(self) -> logging.Logger:
        return self._logger

    def now_ns(self) -> int:
        return self._engine.now_ns

    def instrument(self, symbol: str) -> Instrument:
        inst = self._engine.instruments.get(symbol)
        if inst is None:
            from tradecore.errors import ConfigError

            raise ConfigError(
                f"strategy {self._name!r}: unknown symbol {symbol!r} (backtest symbols: "
                f"{', '.join(sorted(self._engine.instruments))})"
            )
        return inst

    def book(self, symbol: str) -> BookView | None:
        return self._engine.book_of(symbol)

    def submit_limit(
        self,
        symbol: str,
        side: Side,
        qty: int,
        price: int,
        *,
        tif: TimeInForce = TimeInForce.GTC,
        post_only: bool = False,
        tag: str = "",
    ) -> Order:
        if type(price) is not int:
            raise TypeError(f"price must be an int (ticks), got {type(price).__name__}")
        if price <= 0:
            raise ValueError(f"price must be > 0 ticks for a LIMIT order, got {price}")
        return self._engine.submit(self, symbol, side, qty, price, _LIMIT, tif, post_only, tag)

    def submit_market(self, symbol: str, side: Side, qty: int, *, tag: str = "") -> Order:
        return self._engine.submit(self, symbol, side, qty, 0, _MARKET, _IOC, False, tag)

    def cancel(self, client_order_id: int) -> bool:
        return self._engine.cancel(self._account, client_order_id)

    def modify(self, client_order_id: int, *, price: int, qty: int) -> bool:
        return self._engine.modify(self._account, client_order_id, price, qty)

    def cancel_all(self, symbol: str | None = None) -> int:
        return self._engine.cancel_all(self._account, symbol)

    def order(self, client_order_id: int) -> Order | None:
        return self._engine.om.get(self._account, client_order_id)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return self._engine.om.open_orders(self._account, symbol)

    def position(self, symbol: str) -> int:
        return self._engine.portfolio.position_qty(self._account, symbol)

    def realized_pnl(self, symbol: str | None = None) -> Decimal:
        pf = self._engine.portfolio
        if symbol is not None:
            p = pf.position(self._account, symbol)
            return p.realized_pnl - p.fees
        a = pf.account(self._account)
        return a.realized_pnl - a.fees

    def unrealized_pnl(self, symbol: str | None = None) -> Decimal:
        eng = self._engine
        eng.mark_all()
        if symbol is not None:
            return eng.portfolio.position(self._account, symbol).unrealized_pnl
        return eng.portfolio.account(self._account).unrealized_pnl

    def equity(self) -> Decimal:
        eng = self._engine
        eng.mark_all()
        return eng.portfolio.equity(self._account)

    def set_timer(self, name: str, interval_ns: int, *, repeat: bool = True) -> None:
        eng = self._engine
        slot = eng.slots_by_name[self._name]

        def fire(deadline: int) -> None:
            eng.call(slot, "on_timer", slot.strategy.on_timer, (name, deadline), f"timer {name!r}")

        eng.timers.set(self._name, name, interval_ns, fire, eng.now_ns, repeat=repeat)
        eng.wake_dirty()

    def cancel_timer(self, name: str) -> bool:
        return self._engine.timers.cancel(self._name, name)


class _RiskState:
    """The risk engine's view of the backtest (positions, open orders, books, equity)."""

    __slots__ = ("_eng",)

    def __init__(self, engine: BacktestEngine) -> None:
        self._eng = engine

    def position(self, account: int, symbol: str) -> int:
        return self._eng.portfolio.position_qty(account, symbol)

    def positions(self, account: int) -> Mapping[str, int]:
        pf = self._eng.portfolio
        return {s: q for s in self._eng.instruments if (q := pf.position_qty(account, s)) != 0}

    def open_qty(self, account: int, symbol: str, side: Side) -> int:
        # The order manager's own sum (no list of open orders built per check).
        return self._eng.om.open_qty(account, symbol, side)

    def open_order_count(self, account: int) -> int:
        return self._eng.om.open_count(account)

    def best_bid_ask(self, symbol: str) -> tuple[int, int] | None:
        book = self._eng.book_of(symbol)
        if book is None:
            return None
        bid = book.best_bid()
        ask = book.best_ask()
        if bid is None or ask is None:
            return None
        return bid[0], ask[0]

    def equity(self, account: int) -> Decimal:
        eng = self._eng
        value = eng.equity_cache.get(account)
        if value is None:
            value = eng.equity_cache[account] = eng.account_equity(account)
        return value


# ============================================================================ the engine


class BacktestEngine:
    """One backtest run: feeds, strategies, risk, order manager, execution client, portfolio.

    ``instruments``: every symbol traded. ``broker_factory(engine)`` returns the execution
    client (default: a :class:`PaperBroker` with ``settings.broker``, on the simulated clock);
    it must offer ``on_book``, ``on_trade``, ``advance_to`` and ``next_due_ns`` besides the
    :class:`~tradecore.execution.ExecutionClient` methods. ``book_lookup`` overrides where
    ``ctx.book(symbol)`` comes from (the L3 mode's combined book).
    """

    def __init__(
        self,
        instruments: Iterable[Instrument],
        feeds: Sequence[Feed],
        strategies: Sequence[StrategySpec],
        settings: EngineSettings | None = None,
        *,
        broker_factory: Callable[[BacktestEngine], Any] | None = None,
    ) -> None:
        from tradecore.strategy import create_strategy

        self.settings = s = settings or EngineSettings()
        self.instruments: dict[str, Instrument] = {i.symbol: i for i in instruments}
        self.units = {
            sym: _MONEY.multiply(i.tick_size, i.lot_size) for sym, i in self.instruments.items()
        }
        self.feeds = list(feeds)
        self.now_ns = 0
        self.wake_ns = _NEVER
        self.events = 0
        self.busy = False  # the paper broker is not idle (PaperBroker.idle): it needs market data
        self.post_needed = False
        self._wake_dirty = False
        self.top_books: dict[str, TopBook] = {sym: TopBook() for sym in self.instruments}
        self.books: dict[str, BookView] = {}
        self.book_lookup: Callable[[str], BookView | None] | None = None
        self.timers = Timers()
        self.om = OrderManager()
        self.portfolio = Portfolio(
            self.instruments.values(), {sp.account: sp.initial_cash for sp in strategies}
        )
        self.equity_cache: dict[int, Decimal] = {}
        self._risk_dirty: set[int] = set()
        self._depth = 0
        self._pending: list[tuple[_Slot, str, Callable[[Any], None], Any]] = []
        self._current: tuple[Any, int] = ("start", 0)  # (feed or phase, row) for errors
        self.fill_rows: list[tuple[Any, ...]] = []
        self.risk_events: list[RiskEvent] = []
        self.strategy_errors = 0
        self._next_coid: dict[int, int] = {}
        self.sample_every_event = False
        self.current_feed: Any = None

        # Strategies, one context (one account) each.
        self.slots: list[_Slot] = []
        self.slots_by_name: dict[str, _Slot] = {}
        self.slots_by_account: dict[int, _Slot] = {}
        for sp in strategies:
            strat = sp.instance
            if strat is None:
                strat = create_strategy(kind=sp.kind, name=sp.name, params=dict(sp.params))
            for sym in strat.symbols:
                if sym not in self.instruments:
                    raise UsageError(
                        f"strategy {strat.name!r}: symbol {sym!r} is not in the data "
                        f"({', '.join(sorted(self.instruments))})"
                    )
            ctx = BacktestContext(self, strat.name, sp.account)
            slot = _Slot(strat, ctx, sp.account, strat.symbols[0], sp.initial_cash)
            if _overrides(strat, "on_fill"):
                slot.fill_cb = strat.on_fill
            if _overrides(strat, "on_order"):
                slot.order_cb = strat.on_order
            self.slots.append(slot)
            self.slots_by_name[strat.name] = slot
            self.slots_by_account[sp.account] = slot
            self._next_coid[sp.account] = 1
        self.book_routes = self._routes("on_book")
        self.trade_routes = self._routes("on_trade")
        self.quote_routes = self._routes("on_quote")
        self.resync_routes = self._routes("on_resync")

        # Execution: order manager, portfolio, broker (on the simulated clock).
        self.om.add_fill_listener(self._on_fill)
        if any(sl.order_cb is not None for sl in self.slots):
            # Only on_order deliveries need it (two calls per order otherwise spent for none).
            self.om.add_order_listener(self._on_order)
        if broker_factory is None:
            self.broker: Any = PaperBroker(
                self.instruments.values(), self.clock, s.broker, sink=self._on_report
            )
            self._paper = True
            for sym, top in self.top_books.items():
                # Bound up front: the fast path does not call on_book while the broker is idle.
                self.broker.attach_book(sym, top)
        else:
            self.broker = broker_factory(self)
            self.broker.set_sink(self._on_report)
            self._paper = False

        # Risk, as the node wires it (loss limits after fills and on the risk timer).
        limits = RiskLimits.from_config(dict(s.risk), where="risk")
        self.risk = RiskEngine(
            limits,
            state=_RiskState(self),
            instruments=self.instruments,
            cancel_all=self._risk_cancel_all,
            on_event=self.risk_events.append,
            accounts=sorted(self.slots_by_account),
            loss_check_on_order=False,
        )
        # Loss limits are the only reason to re-read equity after fills and on the risk timer.
        self.loss_limits = any(
            (lim := limits.for_account(acc)).max_daily_loss is not None
            or lim.max_drawdown is not None
            for acc in self.slots_by_account
        )
        for feed in self.feeds:
            feed.bind(self)

    def _routes(self, callback: str) -> dict[str, tuple[_Slot, ...]]:
        out: dict[str, tuple[_Slot, ...]] = {}
        for sym in self.instruments:
            out[sym] = tuple(
                sl
                for sl in self.slots
                if sym in sl.strategy.symbols and _overrides(sl.strategy, callback)
            )
        return out

    # ------------------------------------------------------------------ clock and books

    def clock(self) -> int:
        """The simulated clock (nanoseconds); what the broker stamps requests with."""
        return self.now_ns

    def book_of(self, symbol: str) -> BookView | None:
        lookup = self.book_lookup
        if lookup is not None:
            return lookup(symbol)
        book = self.books.get(symbol)
        if book is not None:
            return book
        top = self.top_books.get(symbol)
        if top is not None and top.bid_qty > 0 and top.ask_qty > 0:
            return top
        return None

    def mark_all(self) -> None:
        pf = self.portfolio
        for sym in self.instruments:
            book = self.book_of(sym)
            if book is None:
                continue
            bid = book.best_bid()
            ask = book.best_ask()
            pf.mark(sym, bid[0] if bid else None, ask[0] if ask else None)

    def account_equity(self, account: int) -> Decimal:
        """cash + positions marked at the mid (exact); the portfolio's equity, computed cheaply."""
        pf = self.portfolio
        total = pf.cash(account)
        for sym, unit in self.units.items():
            qty = pf.position_qty(account, sym)
            if not qty:
                continue
            mark2 = pf.mark2_of(sym)
            if mark2 is not None:
                # qty * mark2 / 2 ticks, the Fraction below's numerator and denominator
                # without building it (the same Decimal operations, so the same Decimal).
                twice = qty * mark2
                if twice & 1:
                    money = _MONEY.divide(_MONEY.multiply(Decimal(twice), unit), _TWO)
                else:
                    money = _MONEY.multiply(Decimal(twice >> 1), unit)
            else:
                mark = pf.mark_of(sym)
                if mark is None:
                    return pf.equity(account)
                value = qty * mark
                money = _MONEY.multiply(Decimal(value.numerator), unit)
                if value.denominator != 1:
                    money = _MONEY.divide(money, Decimal(value.denominator))
            total = _MONEY.add(total, money)
        return total

    # ------------------------------------------------------------------ market events

    def book_changed(
        self, sym: str, ts: int, uid: int, book: BookView, is_quote: bool = False
    ) -> None:
        """A feed applied a book change of ``sym`` at ``ts`` (the clock is already there)."""
        routes = self.book_routes.get(sym, ())
        ev = None
        if self.busy or not self._paper:
            ev = BookUpdate(sym, ts, ts, uid, book)
            self.broker.on_book(ev)
            self._after_broker()
        if routes:
            if ev is None:
                ev = BookUpdate(sym, ts, ts, uid, book)
            for slot in routes:
                self.call(slot, "on_book", slot.strategy.on_book, ev)
        if is_quote:
            qroutes = self.quote_routes.get(sym, ())
            if qroutes:
                top: Any = book
                q = Quote(sym, ts, ts, uid, top.bid_px, top.bid_qty, top.ask_px, top.ask_qty)
                for slot in qroutes:
                    self.call(slot, "on_quote", slot.strategy.on_quote, q)

    def trade_printed(
        self, sym: str, ts: int, tid: int, price: int, qty: int, aggressor: Side
    ) -> None:
        tick = TradeTick(sym, ts, ts, price, qty, aggressor, tid)
        if self.busy or not self._paper:
            self.broker.on_trade(tick)
            self._after_broker()
        for slot in self.trade_routes.get(sym, ()):
            self.call(slot, "on_trade", slot.strategy.on_trade, tick)

    def market_event(self, ev: Any) -> None:
        """A ready-made market event (recordings): book bound to the broker, routed."""
        t = type(ev)
        sym = ev.symbol
        if t is BookUpdate:
            self.books[sym] = ev.book
            self.broker.on_book(ev)
            self._after_broker()
            for slot in self.book_routes.get(sym, ()):
                self.call(slot, "on_book", slot.strategy.on_book, ev)
        elif t is TradeTick:
            self.broker.on_trade(ev)
            self._after_broker()
            for slot in self.trade_routes.get(sym, ()):
                self.call(slot, "on_trade", slot.strategy.on_trade, ev)
        elif t is Quote:
            for slot in self.quote_routes.get(sym, ()):
                self.call(slot, "on_quote", slot.strategy.on_quote, ev)
        elif t is Resync:
            self.books.pop(sym, None)
            log.info("resync of %s: %s", sym, ev.reason)
            for slot in self.resync_routes.get(sym, ()):
                self.call(slot, "on_resync", slot.strategy.on_resync, ev)

    def _after_broker(self) -> None:
        """Refresh the fast-path flag and the wake-up time after the broker was called.

        The call may have put a request in flight: the wake-up time comes forward to its
        arrival if that is earlier. It is never pushed back here: a wake-up that finds nothing
        due only recomputes it (:meth:`wake_up`), so an early one costs a call, never an event.
        Reports the call produced set ``post_needed`` themselves (:meth:`_on_report`).
        """
        broker = self.broker
        self.busy = not broker.idle() if self._paper else True
        due = broker.next_due_ns()
        if due is not None and due < self.wake_ns:
            self.wake_ns = due

    # ------------------------------------------------------------------ time

    def wake_dirty(self) -> None:
        self._wake_dirty = True
        self.post_needed = True

    def _refresh_wake(self) -> None:
        self._wake_dirty = False
        t = self.timers.next_due()
        w = t if t is not None else _NEVER
        b = self.broker.next_due_ns()
        if b is not None and b < w:
            w = b
        self.wake_ns = w

    def out_of_order(self, feed: Any, ts: int) -> None:
        raise BacktestError(
            f"{feed.name}: row {feed.row}: timestamp {ts} is before the simulated clock "
            f"{self.now_ns} (events must be in time order)"
        )

    def wake_up(self, ts: int) -> None:
        """Run every broker arrival and timer due at or before ``ts``, in time order."""
        timers = self.timers
        broker = self.broker
        while True:
            td = timers.next_due()
            bd = broker.next_due_ns()
            t_t = td if td is not None else _NEVER
            t_b = bd if bd is not None else _NEVER
            t = t_b if t_b <= t_t else t_t
            if t > ts:
                break
            if t > self.now_ns:
                self.now_ns = t
            if t_b <= t_t:
                broker.advance_to(t)
                self._after_broker()
            else:
                # Every timer due before the next arrival (or the event), once each at its own
                # deadline; a repeating timer skips the intervals the data left empty (the
                # node's rule: a gap fires a timer once, not once per missed interval).
                bound = ts if t_b > ts else t_b - 1
                timers.fire(bound, self._run_timer)
            self.post_event()
        self._refresh_wake()

    def _run_timer(self, timer: Timer, deadline: int) -> None:
        if deadline > self.now_ns:
            self.now_ns = deadline
        timer.callback(deadline)

    def post_event(self) -> None:
        """After an event, a timer or an arrival: deliveries, risk, the next wake-up."""
        self.post_needed = False
        if self._pending:
            self._drain()
        if self._risk_dirty:
            self._evaluate_risk(self._risk_dirty)
            self._risk_dirty = set()
            if self._pending:
                self._drain()
        if self._wake_dirty:
            self._refresh_wake()

    # ------------------------------------------------------------------ strategy calls

    def call(
        self, slot: _Slot, name: str, fn: Callable[..., None], arg: Any, what: str = ""
    ) -> None:
        """Run one strategy callback; an exception stops the run (or is counted)."""
        self._depth += 1
        try:
            if name == "on_timer":
                fn(*arg)
            elif arg is None:
                fn()
            else:
                fn(arg)
        except Exception as exc:
            self._strategy_failed(slot, name, arg, what, exc)
        finally:
            self._depth -= 1

    def _strategy_failed(
        self, slot: _Slot, name: str, arg: Any, what: str, exc: BaseException
    ) -> None:
        slot.errors += 1
        self.strategy_errors += 1
        feed, row = self._where()
        desc = what or (type(arg).__name__ if arg is not None else "")
        sym = getattr(arg, "symbol", "")
        where = f"event {desc}{' ' + sym if sym else ''} at ts {self.now_ns}"
        if feed:
            where += f", {feed} row {row}"
        if self.settings.stop_on_strategy_error:
            raise StrategyError(slot.strategy.name, name, where, exc) from exc
        slot.ctx.logger.exception(
            "strategy %s raised in %s (%s); the backtest carries on",
            slot.strategy.name,
            name,
            where,
        )

    def _where(self) -> tuple[str, int]:
        cur = self.current_feed
        if cur is None:
            return "", 0
        return cur.name, cur.row

    def _drain(self) -> None:
        if self._depth:
            return
        pending = self._pending
        i = 0
        while i < len(pending):
            slot, name, fn, arg = pending[i]
            i += 1
            self.call(slot, name, fn, arg)
        pending.clear()

    # ------------------------------------------------------------------ orders

    def submit(
        self,
        ctx: BacktestContext,
        symbol: str,
        side: Side,
        qty: int,
        price: int,
        order_type: OrderType,
        tif: TimeInForce,
        post_only: bool,
        tag: str,
    ) -> Order:
        if type(qty) is not int:
            raise TypeError(f"qty must be an int (lots), got {type(qty).__name__}")
        if qty <= 0:
            raise ValueError(f"qty must be > 0 lots, got {qty}")
        if symbol not in self.instruments:
            raise ValueError(
                f"unknown symbol {symbol!r} (symbols: {', '.join(sorted(self.instruments))})"
            )
        if type(side) is not Side:
            raise TypeError(f"side must be a Side, got {side!r}")
        account = ctx._account
        now = self.now_ns
        coid = self._next_coid[account]
        self._next_coid[account] = coid + 1
        req = OrderRequest(
            account, coid, symbol, side, qty, price, order_type, tif, post_only, now, ctx._name, tag
        )
        reason = self.risk.check(req, now)
        if reason is not None:
            r = str(reason.value) if hasattr(reason, "value") else str(reason)
            return Order(
                request=req,
                status=_REJECTED_ST,
                price=price,
                qty=qty,
                reason=r,
                created_ns=now,
                updated_ns=now,
            )
        order = self.om.register(req, now)
        self.slots_by_account[account].orders += 1
        self.broker.submit(req)
        self._after_broker()
        return order

    def cancel(self, account: int, coid: int) -> bool:
        order = self.om.get(account, coid)
        if order is None or not order.is_open or order.pending_cancel:
            return False
        self.om.cancel_requested(account, coid, self.now_ns)
        self.broker.cancel(account, order.symbol, coid)
        self._after_broker()
        return True

    def modify(self, account: int, coid: int, price: int, qty: int) -> bool:
        order = self.om.get(account, coid)
        if order is None or not order.is_open or order.pending_cancel or order.pending_replace:
            return False
        if type(price) is not int or type(qty) is not int:
            raise TypeError("modify: price and qty must be ints (ticks, lots)")
        if price <= 0 or qty <= 0:
            raise ValueError(f"modify: price and qty must be > 0, got price {price} qty {qty}")
        now = self.now_ns
        if self.risk.check_modify(order, price, qty, now) is not None:
            return False
        self.om.replace_requested(account, coid, now)
        self.broker.modify(account, order.symbol, coid, price, qty)
        self._after_broker()
        return True

    def cancel_all(self, account: int, symbol: str | None) -> int:
        now = self.now_ns
        n = 0
        for order in self.om.open_orders(account, symbol):
            if not order.pending_cancel:
                self.om.cancel_requested(account, order.client_order_id, now)
                n += 1
        if n:
            self.broker.cancel_all(account, symbol)
            self._after_broker()
        return n

    def _risk_cancel_all(self, account: int | None) -> None:
        accounts = [account] if account is not None else list(self.slots_by_account)
        for acc in accounts:
            self.cancel_all(acc, None)

    # ------------------------------------------------------------------ reports

    def _on_report(self, ev: OrderEvent) -> None:
        order = self.om.on_event(ev)
        if order is not None and ev.kind is _REJECTED_EV and order.status is _REJECTED_ST:
            self.risk.record_reject(ev.account, self.now_ns, ev.reason)
        self.post_needed = True

    def _on_fill(self, fill: Fill, order: Order) -> None:
        # One row per fill, in delivery order; what the tables need besides (each order's first
        # fill, whether it took liquidity) is derived from these rows after the run.
        self.portfolio.on_fill(fill, order)
        account = fill.account
        self.fill_rows.append(
            (
                fill.ts_ns,
                account,
                fill.client_order_id,
                fill.symbol,
                1 if fill.side is _BUY else -1,
                fill.qty,
                fill.price,
                fill.fee,
                _LIQUIDITY_VALUE[fill.liquidity],
                fill.fill_id,
            )
        )
        if self.loss_limits:
            self._risk_dirty.add(account)
        slot = self.slots_by_account.get(account)
        if slot is not None:
            slot.fills += 1
            cb = slot.fill_cb
            if cb is not None:
                self._pending.append((slot, "on_fill", cb, fill))

    def _on_order(self, order: Order, ev: OrderEvent) -> None:
        slot = self.slots_by_account.get(order.account)
        if slot is not None:
            cb = slot.order_cb
            if cb is not None:
                self._pending.append((slot, "on_order", cb, order))

    # ------------------------------------------------------------------ risk and equity

    def _evaluate_risk(self, accounts: Iterable[int] | None) -> None:
        self.mark_all()
        todo = list(accounts) if accounts is not None else list(self.slots_by_account)
        for acc in todo:
            self.equity_cache[acc] = self.account_equity(acc)
        self.risk.evaluate(self.now_ns, todo if accounts is not None else None)

    def _risk_timer(self, _deadline: int) -> None:
        held = [
            sl.account
            for sl in self.slots
            if any(self.portfolio.position_qty(sl.account, s) for s in sl.strategy.symbols)
        ]
        if held:
            self.mark_all()
            for acc in held:
                self.equity_cache[acc] = self.account_equity(acc)
        self.risk.evaluate(self.now_ns)

    def sample(self, now: int) -> None:
        if not self.slots:
            return
        self.mark_all()
        pf = self.portfolio
        for sl in self.slots:
            eq = self.account_equity(sl.account)
            sl.equity_rows.append((now, eq, pf.position_qty(sl.account, sl.symbol)))

    def _sample_timer(self, deadline: int) -> None:
        self.sample(deadline)

    # ------------------------------------------------------------------ run

    def run(self) -> BacktestResult:
        """Run the whole data; returns the result (raises on any error: no partial result)."""
        s = self.settings
        started = time.perf_counter()
        self.sample_every_event = s.equity_interval_ns == 0 and bool(self.slots)
        feeds = self.feeds
        first: list[tuple[int, int, Any]] = []
        for i, f in enumerate(feeds):
            ts = f.next_ts()
            if ts is not None:
                first.append((ts, i, f))
        start = min((t for t, _, _ in first), default=0)
        self.now_ns = start
        if self.slots and self.loss_limits:
            self.timers.set("", "risk", s.risk_check_interval_ns, self._risk_timer, start)
        if self.slots and s.equity_interval_ns:
            self.timers.set("", "equity", s.equity_interval_ns, self._sample_timer, start)
        for sl in self.slots:
            sl.strategy.attach(sl.ctx)
            self.call(sl, "on_start", sl.strategy.on_start, None, "start")
        self.post_event()
        self._refresh_wake()
        self.sample(start)
        if len(first) == 1 and isinstance(first[0][2], QuoteFeed):
            feed = first[0][2]
            self.current_feed = feed
            self._step(feed, first[0][0])  # the row next_ts loaded, then the fast loop
            feed.run_alone(self)
        else:
            self._run_merged(first)
        end = self.now_ns
        self.current_feed = None
        for sl in self.slots:
            self.call(sl, "on_stop", sl.strategy.on_stop, None, "stop")
        self.post_event()
        self.sample(end)
        elapsed = time.perf_counter() - started
        return self._result(elapsed)

    def _step(self, feed: Any, ts: int) -> None:
        if ts >= self.wake_ns or ts < self.now_ns:
            if ts < self.now_ns:
                self.out_of_order(feed, ts)
            self.wake_up(ts)
        self.now_ns = ts
        feed.apply()
        if self.post_needed:
            self.post_event()
        if self.sample_every_event:
            self.sample(ts)
        self.events += 1

    def _run_merged(self, first: list[tuple[int, int, Any]]) -> None:
        heap = list(first)
        heapq.heapify(heap)
        while heap:
            ts, i, f = heap[0]
            self.current_feed = f
            self._step(f, ts)
            nts = f.next_ts()
            if nts is None:
                heapq.heappop(heap)
            else:
                heapq.heapreplace(heap, (nts, i, f))

    # ------------------------------------------------------------------ results

    def _result(self, elapsed: float) -> BacktestResult:
        return BacktestResult.build(self, elapsed)


# ============================================================================ results


def fills_digest(rows: Iterable[Sequence[Any]]) -> str:
    """SHA-256 of the fills (time, account, order, symbol, side, qty, price, fee, liquidity).

    One line per fill, ``str`` of each value joined by ``|``; the lines are hashed in batches
    (SHA-256 of a concatenation does not depend on how it is fed in).
    """
    h = hashlib.sha256()
    batch: list[str] = []
    for r in rows:
        batch.append("|".join(map(str, r[:9])))
        if len(batch) == _HASH_BATCH:
            h.update(("\n".join(batch) + "\n").encode())
            batch.clear()
    if batch:
        h.update(("\n".join(batch) + "\n").encode())
    return h.hexdigest()


def _orders_digest(orders: Iterable[Order]) -> str:
    """SHA-256 of the orders (request fields, final status and filled quantity), in batches."""
    h = hashlib.sha256()
    v = _ENUM_VALUE
    batch: list[str] = []
    for o in orders:
        r = o.request
        batch.append(
            f"{r.account}|{r.client_order_id}|{r.symbol}|{v[r.side]}|{v[r.order_type]}|"
            f"{v[r.tif]}|{r.qty}|{r.price}|{r.ts_ns}|{v[o.status]}|{o.filled_qty}\n"
        )
        if len(batch) == _HASH_BATCH:
            h.update("".join(batch).encode())
            batch.clear()
    if batch:
        h.update("".join(batch).encode())
    return h.hexdigest()


@dataclass
class BacktestResult:
    """The outcome of one run: per strategy the result tables, and the run's figures."""

    name: str
    events: int
    elapsed_s: float
    fills: list[tuple[Any, ...]]
    final: dict[str, dict[str, Any]]  # strategy name -> equity, position, orders, fills, pnl
    strategy_errors: int
    risk_events: int
    extra: dict[str, Any] = field(default_factory=dict)
    _engine: Any = None
    _tables: dict[str, Any] | None = None
    _fills_hash: str | None = None
    _orders_hash: str | None = None

    @property
    def fills_hash(self) -> str:
        """SHA-256 of every fill (:func:`fills_digest`), computed on first use (the fills are
        the finished run's, so the value does not depend on when it is read)."""
        if self._fills_hash is None:
            self._fills_hash = fills_digest(self.fills)
        return self._fills_hash

    @property
    def orders_hash(self) -> str:
        """SHA-256 of every order (request, final status, filled quantity) in (account,
        client order id) order, computed on first use from the finished run, like
        :attr:`tables`."""
        if self._orders_hash is None:
            orders = [] if self._engine is None else self._engine.om.orders()
            self._orders_hash = _orders_digest(sorted(orders, key=_ORDER_KEY))
        return self._orders_hash

    @property
    def tables(self) -> dict[str, Any]:
        """Strategy name -> :class:`~tradecore.backtest.stats.RunTables` (built on first use,
        like a report after the run: the DataFrames are not part of the run's time)."""
        if self._tables is None:
            self._tables = _build_tables(self._engine)
        return self._tables

    @property
    def events_per_s(self) -> float:
        return self.events / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @classmethod
    def build(cls, eng: BacktestEngine, elapsed: float) -> BacktestResult:
        final: dict[str, dict[str, Any]] = {}
        for sl in eng.slots:
            acc = sl.account
            init = sl.initial_cash
            final_eq = sl.equity_rows[-1][1] if sl.equity_rows else init
            final[sl.strategy.name] = {
                "account": acc,
                "equity": final_eq,
                "pnl": final_eq - init,
                "position": eng.portfolio.position_qty(acc, sl.symbol),
                "orders": sl.orders,
                "fills": sl.fills,
                "errors": sl.errors,
            }
        return cls(
            name=eng.settings.name,
            events=eng.events,
            elapsed_s=elapsed,
            fills=list(eng.fill_rows),
            final=final,
            strategy_errors=eng.strategy_errors,
            risk_events=len(eng.risk_events),
            _engine=eng,
        )

    def summary(self) -> str:
        """A few lines for the terminal: events, speed, per strategy P&L, the fill hash."""
        lines = [
            f"backtest {self.name}: {self.events:,} events in {self.elapsed_s:.3f} s "
            f"({self.events_per_s:,.0f} events/s)",
        ]
        for name, f in self.final.items():
            lines.append(
                f"  {name} (account {f['account']}): orders {f['orders']}, fills {f['fills']}, "
                f"position {f['position']}, P&L {f['pnl']}"
            )
        for k, v in self.extra.items():
            lines.append(f"  {k}: {v}")
        if self.strategy_errors:
            lines.append(f"  strategy errors (logged, run continued): {self.strategy_errors}")
        lines.append(f"  fills: {len(self.fills)}, fills hash {self.fills_hash[:16]}")
        return "\n".join(lines)

    def write(self, out_dir: str | Path, *, report: bool = True) -> list[Path]:
        """Write every strategy's tables (Parquet), stats, HTML report and PNG under
        ``out_dir``, plus ``summary.json``; all or nothing (written beside, then renamed)."""
        import json
        import shutil

        from tradecore.backtest.report import equity_png, write_report
        from tradecore.backtest.stats import compute_stats

        out = Path(out_dir)
        tmp = out.with_name(f".{out.name}.partial")
        if tmp.exists():
            shutil.rmtree(tmp)
        written: list[Path] = []
        try:
            for name, t in self.tables.items():
                d = tmp / _safe(name)
                t.to_parquet(d)
                if report and len(t.equity):
                    write_report(d / "report.html", t, title=f"{self.name}: {name}")
                    equity_png(d / "equity.png", t, title=f"{self.name}: {name}")
            summary = {
                "name": self.name,
                "events": self.events,
                "elapsed_s": self.elapsed_s,
                "fills_hash": self.fills_hash,
                "orders_hash": self.orders_hash,
                "fills": len(self.fills),
                "strategy_errors": self.strategy_errors,
                "complete": True,
                "strategies": {
                    n: {**{k: str(v) for k, v in f.items()}, "stats": compute_stats(t)}
                    for (n, f), t in zip(self.final.items(), self.tables.values(), strict=True)
                },
                "extra": self.extra,
            }
            (tmp / "summary.json").parent.mkdir(parents=True, exist_ok=True)
            (tmp / "summary.json").write_text(
                json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8"
            )
            if out.exists():
                shutil.rmtree(out)
            tmp.rename(out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for p in sorted(out.rglob("*")):
            if p.is_file():
                written.append(p)
        return written


def _build_tables(eng: Any) -> dict[str, Any]:
    """Per strategy :class:`~tradecore.backtest.stats.RunTables` from a finished engine."""
    import pandas as pd

    from tradecore.backtest.stats import RunTables

    orders_all = sorted(eng.om.orders(), key=_ORDER_KEY)
    # Each order's first fill time and whether any of its fills took liquidity, from the fill
    # rows (in delivery order, so an order's first row is its first fill).
    first_fill: dict[tuple[int, int], int] = {}
    taker_orders: set[tuple[int, int]] = set()
    for r in eng.fill_rows:
        key = (r[1], r[2])
        first_fill.setdefault(key, r[0])
        if r[8] != _MAKER_VALUE:
            taker_orders.add(key)
    tables: dict[str, Any] = {}
    for sl in eng.slots:
        acc = sl.account
        unit = eng.units[sl.symbol]
        frows = [r for r in eng.fill_rows if r[1] == acc]
        fills = pd.DataFrame(
            {
                "ts_ns": np.array([r[0] for r in frows], np.int64),
                "order_id": np.array([r[2] for r in frows], np.int64),
                "symbol": [r[3] for r in frows],
                "side": np.array([r[4] for r in frows], np.int8),
                "qty": np.array([r[5] for r in frows], np.int64),
                "price": np.array([r[6] for r in frows], np.int64),
                "notional": np.array([float(r[5] * r[6] * unit) for r in frows], np.float64),
                "fee": np.array([float(r[7]) for r in frows], np.float64),
                "fee_exact": [str(r[7]) for r in frows],
                "liquidity": [r[8] for r in frows],
            }
        )
        orows = [o for o in orders_all if o.account == acc]
        orders = pd.DataFrame(
            {
                "order_id": np.array([o.client_order_id for o in orows], np.int64),
                "ts_ns": np.array([o.request.ts_ns for o in orows], np.int64),
                "symbol": [o.symbol for o in orows],
                "side": np.array([1 if o.side is _BUY else -1 for o in orows], np.int8),
                "qty": np.array([o.request.qty for o in orows], np.int64),
                "price": np.array([o.request.price for o in orows], np.int64),
                "filled_qty": np.array([o.filled_qty for o in orows], np.int64),
                "passive": np.array(
                    [
                        o.request.order_type is _LIMIT
                        and o.request.tif is _GTC
                        and (acc, o.client_order_id) not in taker_orders
                        for o in orows
                    ],
                    bool,
                ),
                "first_fill_ns": pd.array(
                    [first_fill.get((acc, o.client_order_id)) for o in orows],
                    dtype="Int64",
                ),
                "status": [o.status.value for o in orows],
            }
        )
        init = sl.initial_cash
        eqrows = sl.equity_rows
        equity = pd.DataFrame(
            {
                "ts_ns": np.array([r[0] for r in eqrows], np.int64),
                "equity": np.array([float(r[1] - init) for r in eqrows], np.float64),
                "position": np.array([r[2] for r in eqrows], np.int64),
            }
        )
        capital = eng.settings.capital if eng.settings.capital is not None else init
        if capital <= 0:
            capital = Decimal(1)
        interval = eng.settings.equity_interval_ns
        ppy = 365.0 * 86_400e9 / interval if interval else _periods(equity)
        tables[sl.strategy.name] = RunTables(
            equity,
            fills,
            orders,
            float(capital),
            ppy,
            {
                "engine": "event",
                "run": eng.settings.name,
                "strategy": sl.strategy.kind,
                "account": acc,
                "symbol": sl.symbol,
                "money_per_tick_lot": float(unit),
            },
        )
    return tables


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "strategy"


def _periods(equity: Any) -> float:
    ts = equity["ts_ns"].to_numpy()
    if len(ts) < 2:
        return 252.0
    step = float(np.median(np.diff(ts)))
    return 365.0 * 86_400e9 / step if step > 0 else 252.0


def paper_config(
    cfg: Any, *, idealized: bool = False, seed: int | None = None
) -> PaperBrokerConfig:
    """The paper broker's model from a node ``[broker]`` section (``idealized``: no latency,
    passive orders at the front of the queue)."""
    from tradecore.execution import CancelModel

    latency = (
        LatencyModel()
        if idealized
        else LatencyModel(
            entry_ns=cfg.latency_us * 1000,
            cancel_ns=cfg.cancel_latency_us * 1000,
            jitter_ns=cfg.jitter_us * 1000,
        )
    )
    return PaperBrokerConfig(
        maker_fee_bps=cfg.maker_fee_bps,
        taker_fee_bps=cfg.taker_fee_bps,
        latency=latency,
        cancel_model=CancelModel(cfg.cancel_model.value.upper()),
        seed=cfg.seed if seed is None else seed,
        optimistic_queue=idealized,
    )


# ============================================================================ from a config file


def engine_from_config(loaded: Any, *, chunk_rows: int | None = None) -> BacktestEngine:
    """Build the engine a :class:`~tradecore.backtest.config.LoadedBacktest` describes."""
    from tradecore.backtest.config import DataKind, Mode
    from tradecore.data.columnar import open_columnar
    from tradecore.data.errors import DataFormatError
    from tradecore.data.synthetic import L2Params, synthetic_l2, synthetic_quotes

    cfg = loaded.config
    bt = cfg.backtest
    rows_per_chunk = chunk_rows or bt.chunk_rows
    default_inst = (
        Instrument(cfg.instrument.symbol.upper(), cfg.instrument.tick_size, cfg.instrument.lot_size)
        if cfg.instrument is not None
        else None
    )
    strategies = [
        StrategySpec(s.name, s.kind, s.account, s.initial_cash, dict(s.params))
        for s in cfg.strategy
    ]
    wanted = sorted({str(s.params["symbol"]).upper() for s in cfg.strategy if "symbol" in s.params})
    settings = EngineSettings(
        broker=paper_config(cfg.broker, idealized=bt.idealized),
        risk=cfg.risk,
        equity_interval_ns=bt.equity_interval_ms * 1_000_000,
        risk_check_interval_ns=bt.risk_check_interval_ms * 1_000_000,
        stop_on_strategy_error=bt.on_strategy_error.value == "stop",
        capital=bt.capital,
        name=bt.name,
    )

    def need_inst(i: int, symbol: str) -> Instrument:
        if default_inst is None:
            raise UsageError(
                f"{loaded.path}: data[{i}]: this data carries no tick/lot size: add an "
                "[instrument] table"
            )
        if symbol and symbol.upper() != default_inst.symbol:
            return Instrument(symbol.upper(), default_inst.tick_size, default_inst.lot_size)
        return default_inst

    instruments: dict[str, Instrument] = {}
    feeds: list[Any] = []
    if bt.mode is Mode.L3:
        from tradecore.backtest.l3 import L3Broker, LobsterFeed, lobster_files

        d = cfg.data[0]
        files = lobster_files(d.path, lambda p: loaded.resolve(p))
        symbol = (d.symbol or (default_inst.symbol if default_inst else "")).upper()
        if not symbol:
            label = files.label.split(" ")[0]
            symbol = label.upper() if label.isalnum() else "LOBSTER"
        inst = (
            Instrument(symbol, default_inst.tick_size, default_inst.lot_size)
            if default_inst is not None
            else Instrument(symbol, "0.0001", "1")
        )
        feed = LobsterFeed(files, symbol)

        def factory(eng: BacktestEngine) -> Any:
            b = L3Broker(feed.replay, inst, eng.clock, settings.broker)
            feed.broker = b
            return b

        eng = BacktestEngine([inst], [feed], strategies, settings, broker_factory=factory)
        eng.book_lookup = lambda s: feed.view if s == symbol else None
        eng.l3_feed = feed  # type: ignore[attr-defined]
        return eng

    for i, d in enumerate(cfg.data):
        kind = d.kind
        if kind is DataKind.SYNTHETIC_QUOTES:
            inst = need_inst(i, d.symbol)
            instruments[inst.symbol] = inst
            chunks = synthetic_quotes(d.rows, d.seed, chunk_rows=rows_per_chunk)
            feeds.append(QuoteFeed(f"data[{i}] synthetic quotes", inst.symbol, chunks))
        elif kind is DataKind.SYNTHETIC_L2:
            inst = need_inst(i, d.symbol)
            instruments[inst.symbol] = inst
            pairs = synthetic_l2(
                d.rows,
                d.seed,
                chunk_rows=rows_per_chunk,
                params=L2Params(trade_share=d.trade_share),
            )
            split = PairSplit(pairs)
            feeds.append(QuoteFeed(f"data[{i}] synthetic quotes", inst.symbol, split.first()))
            feeds.append(TradeFeed(f"data[{i}] synthetic trades", inst.symbol, split.second()))
        elif kind is DataKind.PARQUET:
            path = loaded.resolve(d.path)
            f = open_columnar(path)
            sym = (d.symbol or f.meta.get("symbol", "")).upper()
            if "tick_size" in f.meta and "lot_size" in f.meta and sym:
                inst = Instrument(sym, f.meta["tick_size"], f.meta["lot_size"])
            else:
                inst = need_inst(i, sym)
            instruments.setdefault(inst.symbol, inst)
            if f.kind.name == "quotes":
                feeds.append(QuoteFeed(str(path), inst.symbol, f.iter_chunks(rows_per_chunk)))
            elif f.kind.name == "trades":
                feeds.append(TradeFeed(str(path), inst.symbol, f.iter_chunks(rows_per_chunk)))
            else:
                raise DataFormatError(
                    path, None, f"a {f.kind.name} table; the L2 backtest reads quotes and trades"
                )
        elif kind is DataKind.RECORDING:
            from tradecore.marketdata.replay import load_any
            from tradecore.node.sources import embedded_recordings

            paths = embedded_recordings() if d.path == "embedded" else [loaded.resolve(d.path)]
            syms = [d.symbol.upper()] if d.symbol else wanted
            for p in paths:
                rec = load_any(p)
                rf = RecordingFeed(rec, syms, name=str(p))
                for sym in syms or rf.instruments:
                    if sym in rf.instruments:
                        instruments.setdefault(sym, rf.instruments[sym])
                if not syms:
                    rf.wanted = frozenset(rf.instruments)
                feeds.append(rf)
    missing = [s for s in wanted if s not in instruments]
    if missing:
        from tradecore.errors import ConfigError

        raise ConfigError(
            f"{loaded.path}: strategy symbol(s) {', '.join(missing)} not in the data "
            f"({', '.join(sorted(instruments)) or 'none'})"
        )
    eng = BacktestEngine(instruments.values(), feeds, strategies, settings)
    for f in feeds:
        if isinstance(f, RecordingFeed):
            f.wanted = frozenset(s for s in f.wanted if s in instruments)
    return eng


def run_config(loaded: Any, *, chunk_rows: int | None = None) -> BacktestResult:
    """Build and run; the result carries the L3 impact report in ``extra`` for L3 runs."""
    eng = engine_from_config(loaded, chunk_rows=chunk_rows)
    result = eng.run()
    feed = getattr(eng, "l3_feed", None)
    if feed is not None:
        result.extra["l3"] = feed.replay.stats.line()
        result.extra["l3_stats"] = feed.replay.stats.as_dict()
    return result
