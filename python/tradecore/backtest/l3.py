"""L3 backtests on LOBSTER data: our orders in the real matching book beside the historical ones.

Owns :class:`L3Replay` (the LOBSTER replay with our orders in the book), :class:`L3Broker` (the
execution client that puts our orders into that book, with the paper broker's latency model),
:class:`LobsterFeed` (the replay as a feed of :class:`~tradecore.backtest.engine.BacktestEngine`)
and :class:`CombinedBookView` (what ``ctx.book()`` and ``on_book`` show: the combined book).

**The book.** One :class:`tradecore.OrderBook` holds the historical orders (LOBSTER ids, account
1), the replay's synthetic liquidity (seed and resync orders, account 0), and our orders (account
``100 + our account``, ids from :data:`OUR_ID_BASE`). The replay rules are the core's
(:mod:`tradecore.marketdata.lobster`, the same class, with its row-by-row check), except:

* **Executions (type 4) are aggressive orders**: an IOC limit of the message's size at its price,
  on the side opposite the resting order, against the combined book (account 2, ``stp`` NONE).
  It matches best price first and FIFO within the price, so our orders ahead of the named order
  in the queue fill first (MAKER fills for us) and the historical orders behind them keep their
  shares; our orders behind are reached only when the execution is larger than what is ahead.
  Without orders of ours, FIFO takes the same number of shares from the same level as the named
  execution did (the replay below proves the AMZN day row by row).
* **Historical adds and cancels go in as they happened.** A new historical order that crosses
  *historical* liquidity removes that stale liquidity first (the core's rule); what it crosses of
  *ours* it trades with (we are filled as makers: our impact on the flow). Cancels, deletes and
  the core's "take from the level" rules never touch our orders.
* **The check.** After every message the historical part of the book (combined book minus our
  resting orders) is compared with the orderbook row by the core's rule. With no orders of ours
  any difference is a mismatch (there are none on the embedded days). With our orders, a
  difference at a level the previous row could see is **drift**: our orders changed what the
  others' book holds (an execution we absorbed left the named order resting, a historical order
  traded with us instead of resting). The drift is counted (rows, lots, worst row) and then
  repaired the core's way (synthetic liquidity added, or removed from the back of the queue, never
  our orders), so the replay keeps following the recorded market: :attr:`L3Stats` is the run's
  market-impact report.

Latency: our requests arrive after the paper broker's latency model (entry, cancel, seeded
jitter, one account's requests in order), in simulated LOBSTER time; the engine delivers them
before the message stamped at or after their arrival.

Cost: the core's replay per message (a few book calls and ``depth(L + 1)``), plus one pass over
our resting orders per comparison (a handful) and a dict lookup per fill.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Context as DecimalContext
from decimal import Decimal, Inexact, InvalidOperation, Overflow
from typing import Any

from tradecore import EventKind, OrderBook, Stp
from tradecore import OrderType as CoreOrderType
from tradecore import Side as CoreSide
from tradecore import TimeInForce as CoreTif
from tradecore.enums import OrderType, Side
from tradecore.errors import UsageError
from tradecore.execution import PaperBrokerConfig
from tradecore.execution.types import Liquidity, OrderEvent, OrderEventKind, OrderRequest
from tradecore.instrument import Instrument
from tradecore.marketdata.events import BookUpdate, TradeTick
from tradecore.marketdata.lobster import (
    LOBSTER_ACCOUNT,
    SYNTHETIC_ACCOUNT,
    SYNTHETIC_ID_BASE,
    BookRow,
    LobsterFiles,
    LobsterFormatError,
    LobsterReplay,
    Message,
    ReplaySession,
    lock_step,
)

__all__ = [
    "AGGRESSOR_ACCOUNT",
    "OUR_ACCOUNT_BASE",
    "OUR_ID_BASE",
    "CombinedBookView",
    "L3Broker",
    "L3Replay",
    "L3Stats",
    "LobsterFeed",
    "lobster_files",
]

#: First book order id of our orders (above every LOBSTER and synthetic id).
OUR_ID_BASE = 1 << 61
#: Book account of our orders is ``OUR_ACCOUNT_BASE + account``.
OUR_ACCOUNT_BASE = 100
#: Book account of the aggressive orders that stand for historical executions.
AGGRESSOR_ACCOUNT = 2
_AGGRESSOR_ID = 1 << 62

_MONEY = DecimalContext(prec=60, traps=[InvalidOperation, Inexact, Overflow])
_BPS = Decimal(10_000)
_ZERO = Decimal(0)
_FILL = EventKind.FILL
_ACCEPTED = EventKind.ACCEPTED
_CANCELLED = EventKind.CANCELLED
_REPLACED = EventKind.REPLACED
_REJECTED = EventKind.REJECTED


def _core_side(side: Side) -> CoreSide:
    return CoreSide.BUY if side is Side.BUY else CoreSide.SELL


@dataclass
class L3Stats:
    """Market impact of a run: how far the historical book drifted from the recording."""

    rows_checked: int = 0
    resyncs: int = 0
    mismatches: int = 0  # differences at visible levels (drift when we have orders)
    drift_rows: int = 0
    drift_lots: int = 0
    max_drift_lots: int = 0
    max_drift_row: int = 0
    executions: int = 0
    executions_short: int = 0  # historical executions that found less than their size
    our_maker_lots: int = 0  # lots of historical flow that traded with our resting orders
    our_taker_lots: int = 0  # lots our orders took from the historical book
    drift_unrepaired: int = 0  # drift repairs skipped: they would have traded with our orders
    details: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "details"}

    def line(self) -> str:
        return (
            f"L3 rows checked {self.rows_checked:,}, resyncs {self.resyncs:,}, drift rows "
            f"{self.drift_rows:,} ({self.drift_lots:,} lots, worst {self.max_drift_lots:,} at "
            f"row {self.max_drift_row}), our maker lots {self.our_maker_lots:,}, taker lots "
            f"{self.our_taker_lots:,}"
        )


class _Ours:
    """One of our orders in the combined book."""

    __slots__ = ("book_id", "leaves", "price", "request", "side")

    def __init__(self, request: OrderRequest, book_id: int) -> None:
        self.request = request
        self.book_id = book_id
        self.side = request.side
        self.price = request.price
        self.leaves = request.qty


class L3Replay(ReplaySession):
    """The core's LOBSTER replay (a :class:`tradecore.marketdata.lobster.ReplaySession`: the
    same rules and row check, stepped message by message) with our orders in the book; the
    rules it changes are listed in the module doc."""

    def __init__(self, cfg: LobsterReplay) -> None:
        super().__init__(cfg)
        self.ours: dict[int, _Ours] = {}  # book id -> our resting order
        self.on_our_fill: Callable[[_Ours, int, int, int, bool], None] | None = None
        self.stats = L3Stats()
        self._row_drift = 0
        self._drift_repair = False

    # -- the row check, with drift accounting ------------------------------------------------

    def compare_row(self, index: int, row: BookRow, prev: BookRow | None, msg: Message) -> None:
        self._row_drift = 0
        self._drift_repair = False
        super().compare_row(index, row, prev, msg)
        self._drift_repair = False
        st = self.stats
        st.rows_checked = self.rows_checked
        st.resyncs = self.resyncs
        st.mismatches = self.mismatches
        if self._row_drift:
            st.drift_rows += 1
            st.drift_lots += self._row_drift
            if self._row_drift > st.max_drift_lots:
                st.max_drift_lots = self._row_drift
                st.max_drift_row = index

    def visible_levels(self, row: BookRow) -> tuple[dict[int, int], dict[int, int]]:
        """The historical book in the row's view: the combined book minus our orders."""
        bid_in, ask_in = super().visible_levels(row)
        for o in self.ours.values():
            levels = bid_in if o.side is Side.BUY else ask_in
            if o.price in levels:
                left = levels[o.price] - o.leaves
                if left > 0:
                    levels[o.price] = left
                else:
                    del levels[o.price]
        return bid_in, ask_in

    def record_mismatch(
        self,
        row: int,
        book_row: BookRow,
        msg: Message,
        side: CoreSide,
        price: int,
        ours: int,
        file: int,
        note: str,
    ) -> None:
        super().record_mismatch(row, book_row, msg, side, price, ours, file, note)
        self._row_drift += abs(ours - file)
        self._drift_repair = True  # the repair that follows is of drift

    # -- our orders are never taken by historical messages -----------------------------------

    def ours_at(self, side: CoreSide, price: int) -> int:
        return sum(o.leaves for o in self.ours.values() if o.price == price and _same(o, side))

    def take_from_level(self, side: CoreSide, price: int, qty: int, row: int, msg: Message) -> int:
        self._drift_repair = False
        queue = self.book.orders(side, price)
        taken = 0
        for synthetic in (True, False):
            for oid, account, _price, leaves in reversed(queue):
                if taken == qty:
                    return taken
                if account >= OUR_ACCOUNT_BASE:
                    continue
                if (oid >= SYNTHETIC_ID_BASE) is synthetic:
                    by = min(leaves, qty - taken)
                    self.reduce_order(oid, price, leaves, by, row, msg)
                    taken += by
        return taken

    # -- messages ------------------------------------------------------------------------------

    def apply_message(self, row: int, msg: Message, prev: BookRow) -> None:
        if msg.kind == 4:
            self._execute(row, msg)
        else:
            super().apply_message(row, msg, prev)

    def _execute(self, row: int, msg: Message) -> None:
        """A visible execution: an aggressive IOC of its size against the combined book."""
        aggressor = CoreSide.SELL if msg.direction == 1 else CoreSide.BUY
        events = self.book.submit(
            _AGGRESSOR_ID,
            AGGRESSOR_ACCOUNT,
            aggressor,
            msg.price,
            msg.size,
            order_type=CoreOrderType.LIMIT,
            tif=CoreTif.IOC,
            stp=Stp.NONE,
            timestamp=msg.time_ns,
        )
        self.stats.executions += 1
        for ev in events:
            kind = ev.kind
            if kind == _FILL:
                mine = self.ours.get(ev.other_id)
                if mine is not None:
                    self.maker_fill(mine, ev.price, ev.qty, ev.other_leaves)
            elif kind == _CANCELLED:
                self.stats.executions_short += 1
                self.level_shortfalls += 1
            elif kind != _ACCEPTED:
                raise self.fail(row, msg, f"execution answered {ev!r}")

    def add_order(self, row: int, msg: Message, prev: BookRow) -> None:
        """A historical add: stale historical liquidity it crosses goes first (the core's rule);
        our orders it crosses trade with it."""
        side = msg.side
        other = CoreSide.SELL if side is CoreSide.BUY else CoreSide.BUY
        buy = side is CoreSide.BUY
        n = 8
        while True:
            bids, asks = self.book.depth(n)
            levels = asks if buy else bids
            crossing = [
                (p, q) for p, q, _c in levels if (p <= msg.price if buy else p >= msg.price)
            ]
            for price, qty in crossing:
                hist = qty - self.ours_at(other, price)
                if hist <= 0:
                    continue
                if self.take_from_level(other, price, hist, row, msg) != hist:
                    raise self.fail(row, msg, f"could not clear the crossed level {price}")
                if prev.visible(other, price):
                    self.record_mismatch(
                        row, prev, msg, other, price, hist, 0, "new order crosses it"
                    )
                    self._drift_repair = False
                else:
                    self.resyncs += 1
            if len(crossing) < len(levels) or len(levels) < n:
                break
            n *= 4
        if self.book.order(msg.order_id) is not None:
            raise LobsterFormatError(
                self.cfg.sources[0], msg.line, f"OrderID {msg.order_id} is already resting"
            )
        events = self.book.submit(
            msg.order_id,
            LOBSTER_ACCOUNT,
            side,
            msg.price,
            msg.size,
            order_type=CoreOrderType.LIMIT,
            tif=CoreTif.GTC,
            stp=Stp.NONE,
            timestamp=msg.time_ns,
        )
        self._ours_only(events, row, msg, "a historical add")

    def add_synthetic(self, side: CoreSide, price: int, qty: int, row: int, msg: Message) -> None:
        """Liquidity from the file (seed, resync, repair). A level entering the view that
        reaches one of our resting orders (the recorded market moved through our price) trades
        with it first. A drift repair never does: that difference is our own impact (a
        historical order that traded with us instead of resting), so it is left unrepaired."""
        drift, self._drift_repair = self._drift_repair, False
        if drift and any(
            not _same(o, side) and (o.price >= price if o.side is Side.BUY else o.price <= price)
            for o in self.ours.values()
        ):
            self.stats.drift_unrepaired += 1
            return
        oid = self.next_synthetic
        self.next_synthetic += 1
        events = self.book.submit(
            oid,
            SYNTHETIC_ACCOUNT,
            side,
            price,
            qty,
            order_type=CoreOrderType.LIMIT,
            tif=CoreTif.GTC,
            stp=Stp.NONE,
        )
        self._ours_only(events, row, msg, "synthetic liquidity")

    def _ours_only(self, events: Iterable[Any], row: int, msg: Message, what: str) -> None:
        """Accept ACCEPTED and fills against our orders; anything else is a replay bug."""
        for ev in events:
            kind = ev.kind
            if kind == _FILL:
                mine = self.ours.get(ev.other_id)
                if mine is None:
                    raise self.fail(row, msg, f"{what} traded with history: {ev!r}")
                self.maker_fill(mine, ev.price, ev.qty, ev.other_leaves)
            elif kind != _ACCEPTED:
                raise self.fail(row, msg, f"book answered {ev!r} to {what}")

    def maker_fill(self, mine: _Ours, price: int, qty: int, leaves: int) -> None:
        """One of our resting orders traded ``qty`` at ``price`` with historical flow."""
        mine.leaves = leaves
        if leaves == 0:
            self.ours.pop(mine.book_id, None)
        self.stats.our_maker_lots += qty
        cb = self.on_our_fill
        if cb is not None:
            cb(mine, price, qty, leaves, True)


def _same(o: _Ours, side: CoreSide) -> bool:
    return (o.side is Side.BUY) == (side is CoreSide.BUY)


class CombinedBookView:
    """The combined L3 book as a ``BookView`` (levels include our own resting orders)."""

    __slots__ = ("_book",)

    def __init__(self, book: OrderBook) -> None:
        self._book = book

    def best_bid(self) -> tuple[int, int] | None:
        return self._book.best_bid()

    def best_ask(self) -> tuple[int, int] | None:
        return self._book.best_ask()

    def depth(self, n: int = 10) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        bids, asks = self._book.depth(n)
        return [(p, q) for p, q, _ in bids], [(p, q) for p, q, _ in asks]

    def qty_at(self, side: Side, price: int) -> int:
        return sum(o[3] for o in self._book.orders(_core_side(side), price))


class L3Broker:
    """Our orders in the combined book; an :class:`~tradecore.execution.ExecutionClient` with
    the paper broker's latency model and fees (``config``), on the engine's clock."""

    def __init__(
        self,
        replay: L3Replay,
        instrument: Instrument,
        clock: Callable[[], int],
        config: PaperBrokerConfig | None = None,
    ) -> None:
        self.replay = replay
        self.instrument = instrument
        self.symbol = instrument.symbol
        self.clock = clock
        cfg = config or PaperBrokerConfig()
        unit = _MONEY.multiply(instrument.tick_size, instrument.lot_size)
        self._maker_rate = _MONEY.divide(_MONEY.multiply(unit, cfg.maker_fee_bps), _BPS)
        self._taker_rate = _MONEY.divide(_MONEY.multiply(unit, cfg.taker_fee_bps), _BPS)
        lat = cfg.latency
        self._entry, self._cancel, self._jitter = lat.entry_ns, lat.cancel_ns, lat.jitter_ns
        self._rng = random.Random(cfg.seed)
        self._heap: list[tuple[int, int, int, Any]] = []
        self._seq = 0
        self._last_due: dict[int, int] = {}
        self._sink: Callable[[OrderEvent], object] | None = None
        self._eid = 0
        self._next_id = OUR_ID_BASE
        self._by_key: dict[tuple[int, int], _Ours] = {}
        self._known: set[tuple[int, int]] = set()
        self._out: list[OrderEvent] = []
        self._delivering = False
        replay.on_our_fill = self._fill_cb

    # -- ExecutionClient -----------------------------------------------------------------------

    def set_sink(self, sink: Callable[[OrderEvent], object]) -> None:
        self._sink = sink

    def submit(self, request: OrderRequest) -> None:
        self._push(request.account, self._entry, 0, request)

    def cancel(self, account: int, symbol: str, client_order_id: int) -> None:
        self._push(account, self._cancel, 1, (account, client_order_id))

    def modify(self, account: int, symbol: str, client_order_id: int, price: int, qty: int) -> None:
        self._push(account, self._entry, 2, (account, client_order_id, price, qty))

    def cancel_all(self, account: int, symbol: str | None = None) -> None:
        self._push(account, self._cancel, 3, (account, symbol))

    # -- time ------------------------------------------------------------------------------------

    def next_due_ns(self) -> int | None:
        return self._heap[0][0] if self._heap else None

    def advance_to(self, now_ns: int) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now_ns:
            due, _, kind, payload = heapq.heappop(heap)
            self._dispatch(kind, payload, due)
        self._flush()

    def on_book(self, update: Any) -> None:
        """Market data needs nothing from this broker: fills come from the book itself."""

    def on_trade(self, tick: Any) -> None:
        """See :meth:`on_book`."""

    def _push(self, account: int, fixed: int, kind: int, payload: Any) -> None:
        now = self.clock()
        due = now + fixed
        if self._jitter:
            due += self._rng.randint(0, self._jitter)
        last = self._last_due.get(account)
        if last is not None and due < last:
            due = last
        self._last_due[account] = due
        if due <= now and not self._heap:
            self._dispatch(kind, payload, now)
            self._flush()
            return
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, kind, payload))

    # -- reports ---------------------------------------------------------------------------------

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
        self._eid += 1
        self._out.append(
            OrderEvent(
                kind,
                req.account,
                req.client_order_id,
                req.symbol,
                req.side,
                price,
                qty,
                leaves,
                ts,
                self._eid,
                reason,
                liquidity,
                fee,
            )
        )

    def _flush(self) -> None:
        if self._delivering or self._sink is None:
            return
        self._delivering = True
        out = self._out
        i = 0
        try:
            while i < len(out):
                ev = out[i]
                i += 1
                self._sink(ev)
        finally:
            del out[:i]
            self._delivering = False

    def flush(self) -> None:
        """Deliver reports caused by the replay (fills of our resting orders)."""
        self._flush()

    def _fill_cb(self, mine: _Ours, price: int, qty: int, leaves: int, maker: bool) -> None:
        rate = self._maker_rate if maker else self._taker_rate
        fee = _MONEY.multiply(rate, price * qty) if rate else _ZERO
        req = mine.request
        if leaves == 0:
            self._by_key.pop((req.account, req.client_order_id), None)
        liq = Liquidity.MAKER if maker else Liquidity.TAKER
        self._emit(OrderEventKind.FILL, req, price, qty, leaves, self.clock(), "", liq, fee)

    # -- arrivals ---------------------------------------------------------------------------------

    def _dispatch(self, kind: int, payload: Any, t: int) -> None:
        if kind == 0:
            self._arrive(payload, t)
        elif kind == 1:
            self._arrive_cancel(payload[0], payload[1], t)
        elif kind == 2:
            account, coid, price, qty = payload
            self._arrive_modify(account, coid, price, qty, t)
        else:
            account, symbol = payload
            for key, o in sorted(self._by_key.items()):
                if key[0] == account and (symbol is None or symbol == self.symbol):
                    self._do_cancel(o, t, "MASS_CANCEL")

    def _arrive(self, req: OrderRequest, t: int) -> None:
        key = (req.account, req.client_order_id)
        if req.symbol != self.symbol:
            self._emit(OrderEventKind.REJECTED, req, req.price, req.qty, 0, t, "UNKNOWN_SYMBOL")
            return
        if key in self._known:
            self._emit(OrderEventKind.REJECTED, req, req.price, req.qty, 0, t, "DUPLICATE_ORDER_ID")
            return
        self._known.add(key)
        market = req.order_type is OrderType.MARKET
        if not market and req.price <= 0:
            self._emit(OrderEventKind.REJECTED, req, req.price, req.qty, 0, t, "INVALID_PRICE")
            return
        self._next_id += 1
        bid = self._next_id
        mine = _Ours(req, bid)
        replay = self.replay
        events = replay.book.submit(
            bid,
            OUR_ACCOUNT_BASE + req.account,
            _core_side(req.side),
            req.price if not market else 0,
            req.qty,
            order_type=CoreOrderType.MARKET if market else CoreOrderType.LIMIT,
            tif=CoreTif[req.tif.value],
            stp=Stp.CANCEL_NEWEST,
            post_only=req.post_only,
            timestamp=t,
        )
        self._taker_events(mine, events, t, accepted_kind=OrderEventKind.ACCEPTED)

    def _taker_events(
        self, mine: _Ours, events: Iterable[Any], t: int, accepted_kind: OrderEventKind
    ) -> None:
        req = mine.request
        replay = self.replay
        for ev in events:
            kind = ev.kind
            if kind == _ACCEPTED:
                self._emit(accepted_kind, req, req.price, req.qty, req.qty, t)
            elif kind == _REPLACED:
                self._emit(OrderEventKind.REPLACED, req, ev.price, ev.qty, ev.leaves, t)
            elif kind == _FILL:
                if ev.order_id == mine.book_id:
                    other = replay.ours.get(ev.other_id)
                    if other is not None:  # our other account's resting order
                        replay.maker_fill(other, ev.price, ev.qty, ev.other_leaves)
                    mine.leaves = ev.leaves
                    replay.stats.our_taker_lots += ev.qty
                    self._fill_cb(mine, ev.price, ev.qty, ev.leaves, False)
            elif kind == _CANCELLED:
                if ev.order_id != mine.book_id:
                    continue
                reason = str(ev.reason.name if hasattr(ev.reason, "name") else ev.reason)
                if reason == "IOC_REMAINDER" and req.order_type is OrderType.MARKET:
                    reason = "NO_LIQUIDITY"
                mine.leaves = 0
                self._emit(OrderEventKind.EXPIRED, req, req.price, ev.qty, 0, t, reason)
            elif kind == _REJECTED:
                reason = str(ev.reason.name if hasattr(ev.reason, "name") else ev.reason)
                if accepted_kind is OrderEventKind.ACCEPTED:
                    self._emit(OrderEventKind.REJECTED, req, req.price, req.qty, 0, t, reason)
                else:
                    self._emit(OrderEventKind.CANCEL_REJECTED, req, 0, 0, 0, t, reason)
                return
        if mine.leaves > 0 and replay.book.order(mine.book_id) is not None:
            replay.ours[mine.book_id] = mine
            self._by_key[(req.account, req.client_order_id)] = mine
        else:
            replay.ours.pop(mine.book_id, None)
            self._by_key.pop((req.account, req.client_order_id), None)

    def _cancel_reject(self, account: int, coid: int, t: int) -> None:
        req = OrderRequest(account, coid, self.symbol, Side.BUY, 0)
        self._emit(OrderEventKind.CANCEL_REJECTED, req, 0, 0, 0, t, "UNKNOWN_ORDER")

    def _arrive_cancel(self, account: int, coid: int, t: int) -> None:
        o = self._by_key.get((account, coid))
        if o is None:
            self._cancel_reject(account, coid, t)
            return
        self._do_cancel(o, t, "USER")

    def _do_cancel(self, o: _Ours, t: int, reason: str) -> None:
        events = self.replay.book.cancel(o.book_id)
        req = o.request
        self.replay.ours.pop(o.book_id, None)
        self._by_key.pop((req.account, req.client_order_id), None)
        for ev in events:
            if ev.kind == _CANCELLED:
                self._emit(OrderEventKind.CANCELLED, req, o.price, ev.qty, 0, t, reason)

    def _arrive_modify(self, account: int, coid: int, price: int, qty: int, t: int) -> None:
        o = self._by_key.get((account, coid))
        if o is None:
            self._cancel_reject(account, coid, t)
            return
        if qty <= 0 or price <= 0:
            req = o.request
            why = "INVALID_QTY" if qty <= 0 else "INVALID_PRICE"
            self._emit(OrderEventKind.CANCEL_REJECTED, req, 0, 0, 0, t, why)
            return
        events = self.replay.book.modify(o.book_id, price, qty)
        if any(ev.kind == _REPLACED for ev in events):
            o.price = price
            o.leaves = qty
        self._taker_events(o, events, t, accepted_kind=OrderEventKind.REPLACED)


# ============================================================================ the feed


def lobster_files(spec: str, resolve: Callable[[str], Any] | None = None) -> LobsterFiles:
    """``embedded:AMZN`` / ``embedded:AAPL``, or the path of a message file (its
    ``_orderbook_`` twin beside it)."""
    from pathlib import Path

    from tradecore.marketdata.lobster import embedded_samples

    if spec.startswith("embedded"):
        want = spec.split(":", 1)[1].upper() if ":" in spec else "AMZN"
        for f in embedded_samples():
            if f.message.name.upper().startswith(want + "_"):
                return f
        raise UsageError(f"no embedded LOBSTER sample {want!r} (known: AMZN, AAPL)")
    p = Path(resolve(spec) if resolve is not None else spec)
    if not p.is_file():
        raise UsageError(f"{p}: no such LOBSTER message file")
    twin = p.with_name(p.name.replace("_message_", "_orderbook_", 1))
    if twin == p or not twin.is_file():
        raise UsageError(f"{p}: no orderbook file {twin.name} beside it")
    return LobsterFiles(p, twin)


def _day_offset(files: LobsterFiles) -> int:
    """Nanoseconds of the trading day's midnight (UTC) when the file name carries the date."""
    label = files.label
    parts = label.split(" ")
    if len(parts) == 2:
        try:
            d = date.fromisoformat(parts[1])
        except ValueError:
            return 0
        return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * 10**9
    return 0


class LobsterFeed:
    """A LOBSTER message file and its orderbook file, in lock step, as the engine's feed.

    Each message is applied to the combined book by :class:`L3Replay` and its row checked; the
    strategies then see one :class:`BookUpdate` per message (the combined book) and a
    :class:`TradeTick` per execution (types 4 and 5; the aggressor is the side opposite the
    resting order).
    """

    def __init__(
        self,
        files: LobsterFiles | None,
        symbol: str,
        *,
        capacity: int = 1_000_000,
        messages: Iterable[Message] | None = None,
        rows: Iterable[BookRow] | None = None,
        name: str = "",
    ) -> None:
        self.files = files
        self.symbol = symbol
        self.row = 0
        if files is not None:
            self.name = name or str(files.message)
            cfg = LobsterReplay.from_files(files, capacity=capacity)
            self.offset = _day_offset(files)
            msgs: Iterable[Message] = messages if messages is not None else files.messages()
            book_rows: Iterable[BookRow] = rows if rows is not None else files.rows()
        else:
            if messages is None or rows is None:
                raise UsageError("LobsterFeed needs files, or messages and rows")
            self.name = name or "lobster"
            cfg = LobsterReplay(messages, rows, label=self.name, capacity=capacity)
            self.offset = 0
            msgs, book_rows = messages, rows
        self.replay = L3Replay(cfg)
        self.view = CombinedBookView(self.replay.book)
        self._pairs = lock_step(msgs, book_rows, cfg.sources)
        self._cur: tuple[Message, BookRow] | None = None
        self._started = False
        self.engine: Any = None
        self.broker: L3Broker | None = None

    def bind(self, engine: Any) -> None:
        self.engine = engine

    def next_ts(self) -> int | None:
        cur = next(self._pairs, None)
        if cur is None:
            return None
        self.row += 1
        self._cur = cur
        return self.offset + cur[0].time_ns

    def apply(self) -> None:
        assert self._cur is not None
        msg, row = self._cur
        rp = self.replay
        if not self._started:
            self._started = True
            rp.start(msg, row)
        else:
            rp.step(msg, row)
        eng = self.engine
        if self.broker is not None:
            self.broker.flush()
            eng.post_needed = True
        ts = self.offset + msg.time_ns
        sym = self.symbol
        if msg.kind in (4, 5):
            routes = eng.trade_routes.get(sym, ())
            if routes:
                aggr = Side.SELL if msg.direction == 1 else Side.BUY
                tick = TradeTick(sym, ts, ts, msg.price, msg.size, aggr, self.row)
                for slot in routes:
                    eng.call(slot, "on_trade", slot.strategy.on_trade, tick)
        routes = eng.book_routes.get(sym, ())
        if routes:
            ev = BookUpdate(sym, ts, ts, self.row, self.view)
            for slot in routes:
                eng.call(slot, "on_book", slot.strategy.on_book, ev)
