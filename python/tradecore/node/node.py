"""The trading node: market data -> book -> strategies -> risk -> orders -> broker -> store.

Owns the wiring of one running node and its single-threaded trading loop::

    source (recorded | simulator | live) -> L2 book sync -> BookUpdate / TradeTick / Quote
      -> paper broker (fills of resting orders) -> strategies (features inside) -> Context
      -> pre-trade risk -> order manager -> execution client (paper broker) -> reports
      -> order manager -> portfolio -> store (background writer) + metrics

Threads: everything above runs on the node's thread. Other threads only *ask*: the HTTP
control endpoints, the config watcher (hot reload of ``[risk]``) and signal handlers put a
command on :attr:`Node._controls`, which the loop drains between two events (one ``if`` per
event) or while idle; ``/metrics`` reads copies (see :mod:`tradecore.node.metrics`).

Invariants:

* Strategy callbacks are never re-entered. Reports from the broker can arrive inside a
  strategy's ``submit`` (zero latency) or inside the broker's own processing; the node applies
  them to the order manager, portfolio and store at once, but queues the strategies'
  ``on_fill``/``on_order`` and delivers them when the current callback (or broker call) has
  returned, fills before the order update of the same report.
* Every report is stored as one atomic item: the report, the order's new state, and for a
  fill the fill, the position and the account's cash. So SQLite always agrees with itself,
  even after SIGKILL (see :mod:`tradecore.store.sqlite`).
* Client order ids continue after the largest id stored, so a restart never reuses one.
* Tick-to-trade is the time from reading the market-data message (``recv_ns`` when the source
  stamps it with ``time.monotonic_ns``; otherwise the node's own stamp taken just before it
  pulls the event from the source, which includes the parse) to the moment the order is handed
  to the execution client. Orders sent from timers are not counted.
* Shutdown (SIGINT/SIGTERM, ``stop()``, end of data, ``--max-events``) lets the current event
  finish, stops the strategies, stores their state and the final positions, then flushes the
  store: everything decided is committed. It takes milliseconds, well within a second.

* Loss limits are evaluated after every fill (the accounts that traded) and on the risk timer
  (the accounts holding a symbol whose mark moved; every account when the UTC day changes and
  after a reset or a reload), which are the only moments the cached equity changes; so the
  risk engine does not re-read it in every pre-trade check (``loss_check_on_order=False``).
* Finished orders are retired from the order manager once the store item holding their
  final state has been put (``_commit``): memory and the garbage collector's work stay flat
  however many orders a run sends. The order manager keeps a tombstone of each (late and
  duplicate reports are handled as before, see :mod:`tradecore.execution.orders`), and
  ``ctx.order`` of a retired order is a copy rebuilt from it (empty ``events``); the store has
  every order and report.
* With ``[node] gc_freeze`` (the default) the objects that exist when the run starts are
  frozen (``gc.freeze``) until shutdown: a full collection then scans only what the run keeps
  (tens of milliseconds less each on the start-up heap).
* With ``[node] gc_between_events`` (the default) the cyclic garbage collector runs between
  market events, never inside one (:mod:`tradecore.node.gcpace`): a young collection costs
  tens of microseconds, and CPython starts one from whichever allocation crosses its
  threshold, as likely an order's risk check as anything else.
* A strategy callback the strategy does not override (the base class's no-op ``on_quote``,
  ``on_trade``, ``on_fill``, ``on_order``) is neither queued nor called; a strategy state
  made of plain values that did not change since it was last stored is not stored again.

Cost per market event, beyond the parse and the book (the source's): a type dispatch, one
counter, the broker's ``on_book``/``on_trade``, one call per subscribed strategy that listens;
per order: one risk check, one ``OrderRequest``, the order manager's ``register``; per report
and fill: the order manager, the portfolio, the store ops, one store ``put`` per event; per
risk timer: the marks of the books that changed (one ``Portfolio.mark_books`` call) and the
equity of the accounts they move; a tick where no held mark moved, nothing was filled and the
day, limits and baselines are unchanged returns after the marks (bench/bench_node.py
measures all of it, with the share of each stage).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from decimal import Context as DecimalContext
from decimal import Decimal, Inexact, InvalidOperation, Overflow
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn, TextIO

from prometheus_client.registry import CollectorRegistry

from tradecore._core import L2Book
from tradecore.enums import OrderType, Side, TimeInForce
from tradecore.errors import ConfigError
from tradecore.execution import (
    CancelModel,
    LatencyModel,
    OrderManager,
    PaperBroker,
    PaperBrokerConfig,
    Portfolio,
    PositionRecord,
)
from tradecore.execution.types import (
    Fill,
    Liquidity,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderRequest,
    OrderStatus,
    _RequestSlots,
)
from tradecore.instrument import Instrument
from tradecore.marketdata.errors import UnknownSymbolError
from tradecore.marketdata.events import BookUpdate, BookView, MarketEvent, Quote, Resync, TradeTick
from tradecore.node.clock import Clock, EventClock, Timer, Timers, WallClock
from tradecore.node.config import ClockMode, LoadedConfig, SourceKind, load_config
from tradecore.node.control import ControlError, ControlServer
from tradecore.node.gcpace import GcPacer
from tradecore.node.metrics import NodeCollector, NodeStats, PnlRow, StatsSnapshot
from tradecore.node.sources import NodeSource, open_source
from tradecore.node.summary import AccountSummary, NodeSummary
from tradecore.risk import LossBaseline, RiskEngine, RiskEvent, RiskEventKind, RiskLimits
from tradecore.risk.engine import DAY_NS
from tradecore.store import (
    Op,
    RiskBaselineRow,
    RiskEventRow,
    Store,
    StoreError,
    account_values_op,
    cursor_op,
    fill_op,
    order_event_op,
    order_op,
    position_values_op,
    risk_baseline_op,
    risk_event_op,
    strategy_state_op,
)
from tradecore.strategy import Strategy, create_strategy

__all__ = ["Node", "NodeContext"]

log = logging.getLogger("tradecore.node")

_MS = 1_000_000
_monotonic_ns = time.monotonic_ns
# Module constants: in CPython 3.11 reading an enum member off its class costs ~150 ns.
_LIMIT = OrderType.LIMIT
_MARKET = OrderType.MARKET
_IOC = TimeInForce.IOC
_EV_REJECTED = OrderEventKind.REJECTED
_ST_REJECTED = OrderStatus.REJECTED
_OPEN_STATUSES = frozenset(
    (OrderStatus.NEW, OrderStatus.ACKNOWLEDGED, OrderStatus.PARTIALLY_FILLED)
)
_LIQUIDITY_VALUE = {m: m.value for m in Liquidity}  # Enum.value is a descriptor (~100 ns)
_SCALARS = frozenset((int, str, float, bool, type(None), Decimal))
# Money arithmetic (the portfolio's rules): exact, any rounding is an error.
_MONEY = DecimalContext(prec=60, traps=[InvalidOperation, Inexact, Overflow])
_HOUSEKEEPING_EVERY = 256  # events between two looks at the wall clock (a power of two)
_HOUSEKEEPING_MASK = _HOUSEKEEPING_EVERY - 1
_SNAPSHOT_EVERY_NS = 200 * _MS  # metrics snapshot refresh (wall time)


@dataclass(slots=True)
class _StrategySlot:
    strategy: Strategy
    ctx: NodeContext
    account: int
    orders: int = 0
    fills: int = 0
    errors: int = 0
    # Whether the strategy overrides these callbacks (set at start): the base class's are
    # no-ops, so the node does not queue or call them (quotes alone are a third of Binance's
    # messages, and each order brings two or three order/fill reports).
    wants_trade: bool = True
    wants_quote: bool = True
    wants_fill: bool = True
    wants_order: bool = True


class NodeContext:
    """The :class:`tradecore.strategy.Context` the node gives one strategy (one account).

    ``now_ns``, ``order`` and ``position``, read by a strategy on every decision, are the
    clock's, the order manager's and the portfolio's own functions bound to this account (one
    Python call each instead of two; ``position`` is the ``__getitem__`` of the portfolio's
    :meth:`~tradecore.execution.portfolio.Portfolio.qty_view`, no Python call at all).
    ``order`` of a finished order the node has already stored (and so retired from the order
    manager) is a copy rebuilt from its tombstone: the same values, an empty ``events``
    history.
    """

    __slots__ = ("_account", "_logger", "_name", "_node", "now_ns", "order", "position")

    def __init__(self, node: Node, name: str, account: int) -> None:
        self._node = node
        self._name = name
        self._account = account
        self._logger = logging.getLogger(f"tradecore.strategy.{name}")
        self.now_ns: Callable[[], int] = node.clock.now_ns
        self.order: Callable[[int], Order | None] = functools.partial(node.om.lookup, account)
        # The portfolio's live view of this account's lots: one C call, no Python frame.
        self.position: Callable[[str], int] = node.portfolio.qty_view(account).__getitem__

    @property
    def account(self) -> int:
        return self._account

    @property
    def strategy_name(self) -> str:
        return self._name

    @property
    def logger(self) -> logging.Logger:
        return self._logger

    def instrument(self, symbol: str) -> Instrument:
        inst = self._node.instruments.get(symbol)
        if inst is None:
            raise UnknownSymbolError(
                f"strategy {self._name!r}: unknown symbol {symbol!r} (node symbols: "
                f"{', '.join(sorted(self._node.instruments))})"
            )
        return inst

    def book(self, symbol: str) -> BookView | None:
        return self._node.source.book(symbol)

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
        if type(price) is not int or price <= 0:
            if type(price) is not int:
                raise TypeError(f"price must be an int (ticks), got {type(price).__name__}")
            raise ValueError(f"price must be > 0 ticks for a LIMIT order, got {price}")
        return self._node._submit(self, symbol, side, qty, price, _LIMIT, tif, post_only, tag)

    def submit_market(self, symbol: str, side: Side, qty: int, *, tag: str = "") -> Order:
        return self._node._submit(self, symbol, side, qty, 0, _MARKET, _IOC, False, tag)

    def cancel(self, client_order_id: int) -> bool:
        return self._node._cancel(self._account, client_order_id)

    def modify(self, client_order_id: int, *, price: int, qty: int) -> bool:
        return self._node._modify(self, client_order_id, price, qty)

    def cancel_all(self, symbol: str | None = None) -> int:
        return self._node._cancel_all(self._account, symbol)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return self._node.om.open_orders(self._account, symbol)

    def realized_pnl(self, symbol: str | None = None) -> Decimal:
        pf = self._node.portfolio
        if symbol is not None:
            p = pf.position(self._account, symbol)
            return p.realized_pnl - p.fees
        a = pf.account(self._account)
        return a.realized_pnl - a.fees

    def unrealized_pnl(self, symbol: str | None = None) -> Decimal:
        node = self._node
        node._mark_all()
        pf = node.portfolio
        if symbol is not None:
            return pf.position(self._account, symbol).unrealized_pnl
        return pf.account(self._account).unrealized_pnl

    def equity(self) -> Decimal:
        self._node._mark_all()
        return self._node.portfolio.equity(self._account)

    def set_timer(self, name: str, interval_ns: int, *, repeat: bool = True) -> None:
        node = self._node
        slot = node._slots_by_name[self._name]

        def fire(deadline: int) -> None:
            node._strategy_timer(slot, name, deadline)

        node.timers.set(self._name, name, interval_ns, fire, node.clock.now_ns(), repeat=repeat)
        node._timers_changed()

    def cancel_timer(self, name: str) -> bool:
        return self._node.timers.cancel(self._name, name)


class _RiskState:
    """The risk engine's view of the node (positions, open orders, books, equity).

    ``position``, ``open_qty`` and ``open_order_count`` are the portfolio's and the order
    manager's own bound methods (one call less per pre-trade check each).
    """

    __slots__ = (
        "_book",
        "_node",
        "_open",
        "_qty_view",
        "_qtys",
        "open_order_count",
        "open_qty",
        "position",
    )

    def __init__(self, node: Node) -> None:
        self._node = node
        # Bound once: the node's parts never change after construction.
        self.position: Callable[[int, str], int] = node.portfolio.position_qty
        self._qty_view = node.portfolio.qty_view
        self.open_qty: Callable[[int, str, Side], int] = node.om.open_qty
        self.open_order_count: Callable[[int], int] = node.om.open_count
        self._book = node.source.book
        # The order manager's open orders by account (pretrade reads them directly: the open
        # quantity and the open count in one pass instead of two calls).
        self._open: Mapping[int, Mapping[int, Order]] = node.om._open
        # account -> the portfolio's qty_view of it (filled on first use by pretrade).
        self._qtys: dict[int, Mapping[str, int]] = {}

    def positions(self, account: int) -> Mapping[str, int]:
        position = self.position
        held = self._node._held.get(account, ())
        return {s: q for s in held if (q := position(account, s)) != 0}

    def best_bid_ask(self, symbol: str) -> tuple[int, int] | None:
        book = self._book(symbol)
        if book is None:
            return None
        bid = book.best_bid()
        if bid is None:
            return None
        ask = book.best_ask()
        if ask is None:
            return None
        return bid[0], ask[0]

    def pretrade(
        self, account: int, symbol: str, side: Side
    ) -> tuple[int, int, int, int, int] | None:
        """Everything a new order's check asks, in one call (risk's ``PretradeState``).

        The same values as ``(*best_bid_ask(symbol), position(account, symbol),
        open_qty(account, symbol, side), open_order_count(account))`` (a test compares them
        in a running node), read from the order manager's open orders in one pass.
        """
        book = self._book(symbol)
        if book is None:
            return None
        if type(book) is L2Book:
            touch = book.touch()  # both prices in one call
            if touch is None:
                return None
            bid, ask = touch
        else:
            best = book.best_bid()
            if best is None:
                return None
            bid = best[0]
            best = book.best_ask()
            if best is None:
                return None
            ask = best[0]
        group = self._open.get(account)
        same = 0
        if group:
            for o in group.values():
                req = o.request
                if req.side is side and req.symbol == symbol:
                    same += o.leaves
        qtys = self._qtys.get(account)
        if qtys is None:
            qtys = self._qtys[account] = self._qty_view(account)
        return bid, ask, qtys[symbol], same, len(group) if group else 0

    def equity(self, account: int) -> Decimal:
        # Cached: recomputed (with fresh marks) after every fill and on the risk timer, so a
        # pre-trade check does not rebuild the portfolio's views (tens of microseconds).
        node = self._node
        value = node._equity.get(account)
        if value is None:
            value = node._equity[account] = node._account_equity(account)
        return value


class Node:
    """One trading node built from a validated configuration (see the module doc).

    ``Node(loaded)`` builds every part and opens the store; :meth:`run` runs until the data
    ends, ``max_events`` events were processed, or :meth:`stop` / a signal asks it to stop, and
    returns the :class:`NodeSummary`. ``source`` replaces the configured source (tests, bench);
    ``metrics_port`` overrides ``[metrics] port`` (0 = any free port).
    """

    def __init__(
        self,
        loaded: LoadedConfig,
        *,
        live: bool = False,
        speed: float | None = None,
        max_events: int | None = None,
        source: NodeSource | None = None,
        metrics_port: int | None = None,
        out: TextIO | None = None,
        install_signals: bool = False,
        watch_config: bool = True,
    ) -> None:
        cfg = loaded.config
        self.loaded = loaded
        self.config = cfg
        self.out = out
        self.name = cfg.node.name
        self._install_signals = install_signals
        self._watch_config = watch_config
        self._max_events = cfg.source.max_events if max_events is None else max_events
        self.stats = NodeStats()
        self._stats_messages = self.stats.md_messages
        self._counts_by_type: dict[type, dict[str, int]] = {}
        self._t2t = self.stats.tick_to_trade.samples
        self._controls: deque[tuple[str, dict[str, Any], Future[dict[str, Any]]]] = deque()
        self._stop_requested = False
        self._stop_reason = ""
        self._stamp = 0
        self._depth = 0  # strategy callbacks on the stack
        self._in_broker = 0  # broker calls on the stack
        self._pending: deque[tuple[_StrategySlot, int, Any]] = deque()
        self._risk_dirty: set[int] = set()  # accounts with a fill since the last evaluation
        self._kill_changed = False
        self._equity: dict[int, Decimal] = {}
        self._risk_day = -1  # UTC day of the last evaluation of every account
        self._risk_full = True  # evaluate every account next time (start, reset, reload)
        self._baseline_version = -1  # risk.baseline_version last stored
        self._marks_dirty: set[str] = set()  # symbols whose book changed since the last mark
        self._marks_moved: set[str] = set()  # symbols whose mark moved since the risk timer
        self._held: dict[int, set[str]] = {}  # symbols each account has had a position in
        self._holders: dict[str, set[int]] = {}  # the same, by symbol
        # Writes decided since the last commit point, put as one atomic store item there.
        self._batch: list[Op] = []
        self._dirty_orders: dict[tuple[int, int], Order] = {}
        self._dirty_positions: set[tuple[int, str]] = set()
        self._started_mono = 0
        self._elapsed_s = 0.0
        self.control_url = ""
        self._control: ControlServer | None = None
        self._watcher: threading.Thread | None = None
        self._watch_stop = threading.Event()
        self._closed = False
        self._gc_frozen = False
        self._gc = GcPacer()
        self._next_snapshot_mono = 0
        self._restored_positions = 0
        self._restored_orders = 0
        self._notes: list[str] = []
        self._saved_states: dict[str, tuple[tuple[Any, ...], tuple[type, ...]] | None] = {}
        self.run_id = 0

        # The source first: it knows the instruments (exchangeInfo).
        self.source: NodeSource = (
            source if source is not None else open_source(loaded, live=live, speed=speed)
        )
        self.instruments: dict[str, Instrument] = {}
        for sym in cfg.node.symbols:
            inst = self.source.instruments.get(sym)
            if inst is None:
                self.source.close()
                raise ConfigError(
                    f"{loaded.path}: node.symbols: {sym!r} is not a symbol of the source "
                    f"{self.source.name} (known: {', '.join(sorted(self.source.instruments))})"
                )
            self.instruments[sym] = inst

        mode = cfg.node.clock
        if mode is ClockMode.AUTO:
            mode = ClockMode.WALL if cfg.source.kind is SourceKind.LIVE or live else ClockMode.EVENT
        self._event_clock: EventClock | None = EventClock() if mode is ClockMode.EVENT else None
        self.clock: Clock = self._event_clock if self._event_clock is not None else WallClock()
        self.timers = Timers()
        self._next_timer = 1 << 62

        # Store (fails early on a bad path, naming the field).
        try:
            self.store = Store(loaded.storage_path)
        except StoreError as exc:
            self.source.close()
            raise ConfigError(f"{loaded.path}: storage.path: {exc}") from None

        # Execution: order manager, portfolio, paper broker.
        self.om = OrderManager()
        cash = {s.account: s.initial_cash for s in cfg.strategy}
        self.portfolio = Portfolio(self.instruments.values(), cash)
        b = cfg.broker
        self._recv_monotonic = self.source.recv_monotonic
        self._last_recv = 0
        broker_clock: Callable[[], int] = (
            time.monotonic_ns if self._recv_monotonic else self._recv_now
        )
        # Open orders left by a previous run: resting GTC limits go back into the paper book;
        # anything else (an IOC/FOK/market order in flight when the process died) expires.
        self._stored_open = [o for o in self.store.open_orders() if o.symbol in self.instruments]
        self._expire_on_restore = [o for o in self._stored_open if not _restorable(o)]
        self._next_synthetic_id = self.store.max_event_id() + 1
        self.broker = PaperBroker(
            self.instruments.values(),
            broker_clock,
            PaperBrokerConfig(
                maker_fee_bps=b.maker_fee_bps,
                taker_fee_bps=b.taker_fee_bps,
                latency=LatencyModel(
                    entry_ns=b.latency_us * 1000,
                    cancel_ns=b.cancel_latency_us * 1000,
                    jitter_ns=b.jitter_us * 1000,
                ),
                cancel_model=CancelModel(b.cancel_model.value.upper()),
                seed=b.seed,
            ),
            sink=self._on_report,
            first_event_id=self._next_synthetic_id + len(self._expire_on_restore),
        )
        # Fills come through the order manager's fill listener; order updates are queued by
        # _on_report itself, from what ``om.on_event`` returns (the order it changed, exactly
        # when the order manager would have called an order listener: one call less per
        # report).
        self.om.add_fill_listener(self._on_fill)

        # Risk.
        limits = RiskLimits.from_config(cfg.risk, where=loaded.risk_where())
        # Loss limits are evaluated after every fill and on the risk timer, which are the only
        # moments the cached equity (_RiskState.equity) changes; so a check per order would
        # re-read the same figure, and is turned off. The accounts are watched from the start.
        self.risk = RiskEngine(
            limits,
            state=_RiskState(self),
            instruments=self.instruments,
            cancel_all=self._risk_cancel_all,
            on_event=self._on_risk_event,
            accounts=sorted({s.account for s in cfg.strategy}),
            loss_check_on_order=False,
        )

        # Strategies, one context (one account) each.
        self.slots: list[_StrategySlot] = []
        self._slots_by_name: dict[str, _StrategySlot] = {}
        self._slots_by_account: dict[int, _StrategySlot] = {}
        self._routes: dict[str, tuple[_StrategySlot, ...]] = {}
        for i, sc in enumerate(cfg.strategy):
            try:
                strat = create_strategy(kind=sc.kind, name=sc.name, params=dict(sc.params))
            except ConfigError as exc:
                self.source.close()
                raise ConfigError(f"{loaded.path}: strategy[{i}]: {exc}") from None
            for sym in strat.symbols:
                if sym not in self.instruments:
                    self.source.close()
                    raise ConfigError(
                        f"{loaded.path}: strategy[{i}] ({sc.name}): symbol {sym!r} is not in "
                        f"node.symbols ({', '.join(cfg.node.symbols)})"
                    )
            ctx = NodeContext(self, sc.name, sc.account)
            slot = _StrategySlot(strat, ctx, sc.account)
            self.slots.append(slot)
            self._slots_by_name[sc.name] = slot
            self._slots_by_account[sc.account] = slot
        for sym in self.instruments:
            self._routes[sym] = tuple(s for s in self.slots if sym in s.strategy.symbols)
        self._next_coid: dict[int, int] = {s.account: 1 for s in self.slots}

        # Prometheus registry with the node's collector.
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(
            NodeCollector(
                self.stats,
                store_pending=self.store.pending,
                store_failures=lambda: len(self.store.failures),
            )
        )
        self._metrics_port = cfg.metrics.port if metrics_port is None else metrics_port
        self._config_mtime = self._stat_config()

    # ------------------------------------------------------------------ public API

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> Node:
        """Load and validate ``path`` (ConfigError on any wrong field), then build the node."""
        return cls(load_config(path, live=bool(kwargs.get("live", False))), **kwargs)

    def run(self) -> NodeSummary:
        """Run until the data ends or the node is asked to stop; returns the summary."""
        try:
            self._start()
        except BaseException:
            self._abort_start()
            raise
        try:
            if self.source.is_async:
                asyncio.run(self._loop_async())
            else:
                self._loop_sync()
        finally:
            summary = self._shutdown()
        return summary

    def stop(self, reason: str = "stop requested") -> None:
        """Ask the loop to stop after the current event (any thread, signal handlers)."""
        self._stop_reason = self._stop_reason or reason
        self._stop_requested = True

    def control(self, command: str, args: dict[str, str], timeout: float) -> dict[str, Any]:
        """Run a control command on the node's thread and wait for its answer (HTTP thread)."""
        if command == "health":
            return {"status": "ok", "name": self.name, "run_id": self.run_id}
        if self._closed:
            raise ControlError(503, "the node is stopping")
        fut: Future[dict[str, Any]] = Future()
        self._controls.append((command, args, fut))
        try:
            return fut.result(timeout)
        except FutureTimeout:
            raise ControlError(504, f"the node did not answer {command!r} in {timeout} s") from None

    def summary(self) -> NodeSummary:
        """The summary as of now (call from the node's thread, or use ``GET /summary``)."""
        self.stats.tick_to_trade.fold()
        self._mark_all()
        stats = self.stats
        by_kind: dict[str, int] = {}
        for kind, by_symbol in stats.md_messages.items():
            by_kind[kind] = sum(by_symbol.values())
        accounts = []
        for slot in self.slots:
            acc = slot.account
            view = self.portfolio.account(acc)
            positions = {p.symbol: p.qty for p in self.portfolio.positions(acc) if p.qty != 0}
            accounts.append(
                AccountSummary(
                    account=acc,
                    strategy=slot.strategy.name,
                    positions=positions,
                    realized_pnl=view.realized_pnl,
                    unrealized_pnl=view.unrealized_pnl,
                    fees=view.fees,
                    equity=view.equity,
                    orders=slot.orders,
                    fills=slot.fills,
                    kill_switch=bool(self.risk.is_tripped(acc)),
                )
            )
        elapsed = self._elapsed_s
        if self._started_mono and not self._closed:
            elapsed = (time.monotonic_ns() - self._started_mono) / 1e9
        return NodeSummary(
            name=self.name,
            run_id=self.run_id,
            source=self.source.name,
            elapsed_s=elapsed,
            messages=stats.messages,
            messages_by_kind=by_kind,
            resyncs=sum(stats.resyncs.values()),
            orders=stats.total_orders(),
            risk_rejects={r: n for (src, r), n in stats.rejects.items() if src == "risk"},
            broker_rejects={r: n for (src, r), n in stats.rejects.items() if src == "broker"},
            cancels=stats.cancels,
            fills=stats.total_fills(),
            accounts=accounts,
            tick_to_trade=stats.tick_to_trade.summary(),
            kill_switch=dict(self.risk.kill_switch_state()),
            strategy_errors=sum(stats.strategy_errors.values()),
            store_path=str(self.store.path),
            store_failures=len(self.store.failures),
            restored_positions=self._restored_positions,
            restored_open_orders=self._restored_orders,
            notes=list(self._notes),
        )

    # ------------------------------------------------------------------ start / stop

    def _start(self) -> None:
        cfg = self.config
        if self._install_signals:
            self._signals()  # before the control URL is announced: a signal may follow at once
        self.run_id = self.store.start(config_path=str(self.loaded.path))
        self._restore()
        if cfg.metrics.enabled:
            try:
                self._control = ControlServer(
                    cfg.metrics.host, self._metrics_port, self.registry, self
                )
            except OSError as exc:
                raise ConfigError(
                    f"{self.loaded.path}: metrics.port: cannot listen on "
                    f"{cfg.metrics.host}:{self._metrics_port}: {exc.strerror or exc}"
                ) from None
            self._control.start()
            self.control_url = self._control.url
            if self.out is not None:
                print(f"metrics and control on {self.control_url}", file=self.out, flush=True)
            log.info("metrics and control on %s", self.control_url)
        if self._watch_config:
            self._watcher = threading.Thread(
                target=self._watch_loop, name="tradecore-config-watch", daemon=True
            )
            self._watcher.start()
        now = self.clock.now_ns()
        self.timers.set("", "risk", cfg.node.risk_check_interval_ms * _MS, self._risk_timer, now)
        self.timers.set("", "state", cfg.node.state_interval_ms * _MS, self._state_timer, now)
        self._timers_changed()
        for slot in self.slots:
            slot.strategy.attach(slot.ctx)
            self._call(slot, _ON_START, None)
        for slot in self.slots:
            strat = slot.strategy
            slot.wants_trade = _overrides(strat, "on_trade")
            slot.wants_quote = _overrides(strat, "on_quote")
            slot.wants_fill = _overrides(strat, "on_fill")
            slot.wants_order = _overrides(strat, "on_order")
        self._started_mono = time.monotonic_ns()
        self._publish_snapshot()
        self._drain()
        self._commit()
        if cfg.node.gc_freeze and not self._gc_frozen:
            # Everything built so far lives as long as the run: out of the collector's sight,
            # so a full collection (whose cost grows with every object it scans, ~50 ms for
            # the start-up heap) only scans what the run creates. Undone at shutdown, so
            # nothing stays uncollectable (a garbage cycle frozen here is collected then).
            gc.freeze()
            self._gc_frozen = True
        if cfg.node.gc_between_events:
            self._gc.start()

    def _unfreeze_gc(self) -> None:
        self._gc.stop()
        if self._gc_frozen:
            self._gc_frozen = False
            gc.unfreeze()

    def _abort_start(self) -> None:
        """Undo a start that failed half way (bad port, a strategy's on_start...)."""
        self._unfreeze_gc()
        self._watch_stop.set()
        if self._control is not None:
            self._control.stop()
        self.store.close(timeout=5.0)
        self.source.close()
        if self._install_signals:
            self._restore_signals()

    def _restore(self) -> None:
        """Reload positions, cash, open orders and strategy state from the store."""
        store = self.store
        rows = store.positions()
        accounts = store.accounts()
        records = [
            PositionRecord(
                account=r.account,
                symbol=r.symbol,
                qty=r.qty,
                cost_ticklots=r.cost_ticklots,
                realized_ticklots=r.realized_ticklots,
                fees=r.fees,
                volume=r.volume,
                fills=r.fills,
            )
            for r in rows
            if r.symbol in self.instruments
        ]
        skipped = len(rows) - len(records)
        if skipped:
            self._notes.append(
                f"{skipped} stored positions are in symbols this node does not trade; not loaded"
            )
        self.portfolio.restore(
            records,
            cash={a.account: a.cash for a in accounts},
            initial_cash={a.account: a.initial_cash for a in accounts},
        )
        self._restored_positions = sum(1 for r in records if r.qty != 0)
        for r in records:
            self._held.setdefault(r.account, set()).add(r.symbol)
            self._holders.setdefault(r.symbol, set()).add(r.account)
        for acc, top in store.max_client_order_ids().items():
            self._next_coid[acc] = max(self._next_coid.get(acc, 1), top + 1)
        for order in self._stored_open:
            self.om.restore(order)
            self._restored_orders += 1
        for order in self._stored_open:
            if _restorable(order):
                self.broker.restore(order)
            else:
                self._expire(order, "RESTART")
        for slot in self.slots:
            state = store.strategy_state(slot.strategy.name)
            if isinstance(state, dict):
                slot.strategy.restore(state)
        # The loss limits keep measuring from where they were: the day's starting equity (if
        # the clock is still in that day) and the peak.
        # Risk evaluates them at the first message (and at any order check before that).
        baselines = {
            r.account: LossBaseline(r.day, r.day_start_equity, r.peak_equity)
            for r in store.risk_baselines()
        }
        self.risk.restore_baselines(baselines)
        self._baseline_version = self.risk.baseline_version
        self._risk_dirty |= set(baselines)

    def _expire(self, order: Order, reason: str) -> None:
        """Close an order the broker cannot have kept (in flight when the process died)."""
        eid = self._next_synthetic_id
        self._next_synthetic_id += 1
        req = order.request
        self._on_report(
            OrderEvent(
                kind=OrderEventKind.EXPIRED,
                account=req.account,
                client_order_id=req.client_order_id,
                symbol=req.symbol,
                side=req.side,
                price=order.price,
                qty=order.leaves,
                leaves=0,
                ts_ns=self.clock.now_ns(),
                event_id=eid,
                reason=reason,
            )
        )

    def _shutdown(self) -> NodeSummary:
        self._unfreeze_gc()
        self._watch_stop.set()
        for slot in self.slots:
            self._call(slot, _ON_STOP, None)
        self._drain()
        self._commit()
        self._elapsed_s = (time.monotonic_ns() - self._started_mono) / 1e9
        now = self.clock.now_ns()
        self._save_state(now)
        summary = self.summary()
        self._closed = True
        # Answer control requests that raced the shutdown.
        while self._controls:
            _cmd, _args, fut = self._controls.popleft()
            if not fut.done():
                fut.set_exception(ControlError(503, "the node stopped"))
        ok = self.store.close(timeout=5.0, summary=summary.as_dict())
        if not ok:
            log.error("the store did not finish writing within 5 s")
        if self._control is not None:
            self._control.stop()
        self.source.close()
        if self._install_signals:
            self._restore_signals()
        return summary

    # ------------------------------------------------------------------ loops

    def _loop_sync(self) -> None:
        src = self.source
        if hasattr(src, "on_idle"):
            src.on_idle = self._idle_sync
        it: Iterator[MarketEvent] = iter(src)
        handle = self._on_market_event
        controls = self._controls
        limit = self._max_events
        recv_mono = self._recv_monotonic
        pacer = self._gc
        pace = pacer.after_event if pacer.active else None
        n = 0
        if not self._stop_requested:
            # A ``for`` loop (no call per event to pull the next one); the stop flag is read
            # after each event, which is before pulling the next one, as a ``while`` would.
            for ev in it:
                self._stamp = ev.recv_ns if recv_mono else src.stamp_ns
                handle(ev)
                self._stamp = 0
                if pace is not None:
                    pace()
                if controls:
                    self._apply_controls()
                n += 1
                if not n & _HOUSEKEEPING_MASK:
                    self._housekeeping()
                if limit and n >= limit:
                    self._stop_reason = self._stop_reason or f"--max-events {limit} reached"
                    break
                if self._stop_requested:
                    break
            else:
                self._stop_reason = self._stop_reason or "end of data"
        self._apply_controls()

    async def _loop_async(self) -> None:
        loop = asyncio.get_running_loop()
        if self._install_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, self.stop, f"signal {sig.name}")
        ait = self.source.__aiter__()
        handle = self._on_market_event
        limit = self._max_events
        recv_mono = self._recv_monotonic
        n = 0
        nxt: asyncio.Task[MarketEvent] | None = None
        try:
            while not self._stop_requested:
                if nxt is None:
                    nxt = asyncio.ensure_future(ait.__anext__())
                done, _ = await asyncio.wait({nxt}, timeout=0.05)
                if not done:
                    self._idle()
                    continue
                try:
                    ev = nxt.result()
                except StopAsyncIteration:
                    self._stop_reason = self._stop_reason or "end of data"
                    break
                finally:
                    if done:
                        nxt = None
                self._stamp = ev.recv_ns if recv_mono else time.monotonic_ns()
                handle(ev)
                self._stamp = 0
                if self._gc.active:
                    self._gc.after_event()
                if self._controls:
                    self._apply_controls()
                n += 1
                if not n & _HOUSEKEEPING_MASK:
                    self._housekeeping()
                if limit and n >= limit:
                    self._stop_reason = self._stop_reason or f"--max-events {limit} reached"
                    break
        finally:
            if nxt is not None:
                nxt.cancel()
                with contextlib.suppress(BaseException):
                    await nxt
            aclose = getattr(ait, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
            if self._install_signals:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    with contextlib.suppress(NotImplementedError, RuntimeError):
                        loop.remove_signal_handler(sig)
        self._apply_controls()

    def _idle_sync(self) -> bool:
        """A paced replay is waiting: serve controls and timers; True to stop the replay."""
        self._idle()
        return self._stop_requested

    def _idle(self) -> None:
        """No market data for a while: timers (wall clock), controls, housekeeping."""
        if self._event_clock is None:
            self._fire_timers(self.clock.now_ns())
        self._apply_controls()
        self._housekeeping()
        if self._gc.active:
            self._gc.after_event()

    def _housekeeping(self) -> None:
        ttt = self.stats.tick_to_trade
        if ttt.needs_fold():
            ttt.fold()
        now = time.monotonic_ns()
        if now >= self._next_snapshot_mono:
            self._next_snapshot_mono = now + _SNAPSHOT_EVERY_NS
            ttt.fold()
            self._publish_snapshot()

    # ------------------------------------------------------------------ market events

    def _recv_now(self) -> int:
        return self._last_recv

    def _on_market_event(self, ev: MarketEvent) -> None:
        self._last_recv = ev.recv_ns
        ec = self._event_clock
        if ec is not None:
            ts = ev.ts_ns
            if not ec._now:
                # The event clock starts at the first event: timers set before (on_start, the
                # node's own) count from there.
                self.timers.shift(ts)
                self._timers_changed()
            if ts > ec._now:  # EventClock.advance, inlined (never backwards)
                ec._now = ts
        t = type(ev)
        sym = ev.symbol
        if t is BookUpdate:
            self._marks_dirty.add(sym)
            self._in_broker += 1
            try:
                self.broker.on_book(ev)  # type: ignore[arg-type]
            finally:
                self._in_broker -= 1
            for slot in self._routes.get(sym, ()):
                # _call inlined for the hottest callback (one frame less per book update).
                self._depth += 1
                try:
                    slot.strategy.on_book(ev)  # type: ignore[arg-type]
                except Exception:
                    self._strategy_failed(slot, _ON_BOOK)
                finally:
                    self._depth -= 1
        elif t is Quote:
            for slot in self._routes.get(sym, ()):
                if slot.wants_quote:
                    self._call(slot, _ON_QUOTE, ev)
        elif t is TradeTick:
            self._in_broker += 1
            try:
                self.broker.on_trade(ev)  # type: ignore[arg-type]
            finally:
                self._in_broker -= 1
            for slot in self._routes.get(sym, ()):
                if slot.wants_trade:
                    self._call(slot, _ON_TRADE, ev)
        elif t is Resync:
            assert isinstance(ev, Resync)
            stats = self.stats
            stats.bump(stats.resyncs, (sym, ev.reason))
            log.warning("resync of %s: %s", sym, ev.reason)
            for slot in self._routes.get(sym, ()):
                self._call(slot, _ON_RESYNC, ev)
        # After the strategies have reacted (tick-to-trade comes first): the message counters
        # (nothing the broker or a strategy calls reads them), deliveries, risk re-evaluation,
        # timers that fell due, and one store item with everything decided.
        self.stats.messages += 1
        counts = self._counts_by_type.get(t)
        if counts is None:
            counts = self._stats_messages.setdefault(t.__name__, {})
            self._counts_by_type[t] = counts
        counts[sym] = counts.get(sym, 0) + 1
        if self._pending:
            self._drain()
        if self._risk_dirty:
            self._evaluate_risk()
        now = ec._now if ec is not None else time.time_ns()
        if now >= self._next_timer:
            self._fire_timers(now)
        if self._kill_changed:
            self._kill_changed = False
            self._publish_snapshot()
        if self._batch or self._dirty_orders:
            self._commit()

    # ------------------------------------------------------------------ strategy calls

    def _call(self, slot: _StrategySlot, what: int, arg: Any) -> None:
        """Run one strategy callback; an exception is logged and counted, never propagated."""
        strat = slot.strategy
        self._depth += 1
        try:
            if what == _ON_BOOK:
                strat.on_book(arg)
            elif what == _ON_TRADE:
                strat.on_trade(arg)
            elif what == _ON_FILL:
                strat.on_fill(arg)
            elif what == _ON_ORDER:
                strat.on_order(arg)
            elif what == _ON_QUOTE:
                strat.on_quote(arg)
            elif what == _ON_RESYNC:
                strat.on_resync(arg)
            elif what == _ON_TIMER:
                strat.on_timer(arg[0], arg[1])
            elif what == _ON_START:
                strat.on_start()
            elif what == _ON_STOP:
                strat.on_stop()
        except Exception:
            self._strategy_failed(slot, what)
        finally:
            self._depth -= 1

    def _strategy_failed(self, slot: _StrategySlot, what: int) -> None:
        """Log and count the exception a strategy callback raised (call from ``except``)."""
        strat = slot.strategy
        slot.errors += 1
        errs = self.stats.strategy_errors
        errs[strat.name] = errs.get(strat.name, 0) + 1
        slot.ctx.logger.exception(
            "strategy %s raised in %s (error %d); the node carries on",
            strat.name,
            _CALLBACK_NAMES[what],
            slot.errors,
        )

    def _drain(self) -> None:
        """Deliver queued fills and order updates to strategies (only at the top level)."""
        if self._depth or self._in_broker:
            return
        pending = self._pending
        while pending:
            slot, what, arg = pending.popleft()
            self._call(slot, what, arg)
        if self._risk_dirty:
            self._evaluate_risk()

    # ------------------------------------------------------------------ orders

    def _submit(
        self,
        ctx: NodeContext,
        symbol: str,
        side: Side,
        qty: int,
        price: int,
        order_type: OrderType,
        tif: TimeInForce,
        post_only: bool,
        tag: str,
    ) -> Order:
        if (
            type(qty) is not int
            or qty <= 0
            or symbol not in self.instruments
            or type(side) is not Side
        ):
            self._refuse_order(symbol, side, qty)
        account = ctx._account
        now = self.clock.now_ns()
        next_coid = self._next_coid
        coid = next_coid[account]
        next_coid[account] = coid + 1
        # OrderRequest(...) without the class call: a slot twin filled, then switched to the
        # frozen class (execution.types; the same instance the constructor makes).
        r = _RequestSlots()
        r.account = account
        r.client_order_id = coid
        r.symbol = symbol
        r.side = side
        r.qty = qty
        r.price = price
        r.order_type = order_type
        r.tif = tif
        r.post_only = post_only
        r.ts_ns = now
        r.strategy = ctx._name
        r.tag = tag
        r.__class__ = OrderRequest
        req: OrderRequest = r
        reason = self.risk.check(req, now)
        if reason is not None:
            r = str(reason.value) if hasattr(reason, "value") else str(reason)
            rejects = self.stats.rejects
            key = ("risk", r)
            rejects[key] = rejects.get(key, 0) + 1
            order = Order(
                request=req,
                status=OrderStatus.REJECTED,
                price=price,
                qty=qty,
                reason=r,
                created_ns=now,
                updated_ns=now,
            )
            # The risk engine reports the reject itself (on_event -> risk_events table).
            self._dirty_orders[(account, coid)] = order
            return order
        order = self.om.register(req, now)
        stamp = self._stamp
        if stamp:
            self._t2t.append(_monotonic_ns() - stamp)
        self._dirty_orders[(account, coid)] = order
        self._in_broker += 1
        try:
            self.broker.submit(req)
        finally:
            self._in_broker -= 1
        orders = self.stats.orders
        okey = (account, ctx._name)
        orders[okey] = orders.get(okey, 0) + 1
        self._slots_by_account[account].orders += 1
        if not self._depth:
            self._drain()
        return order

    def _refuse_order(self, symbol: str, side: Side, qty: int) -> NoReturn:
        """Raise the error of the first of ``_submit``'s argument checks that fails."""
        if type(qty) is not int:
            raise TypeError(f"qty must be an int (lots), got {type(qty).__name__}")
        if qty <= 0:
            raise ValueError(f"qty must be > 0 lots, got {qty}")
        if symbol not in self.instruments:
            raise ValueError(
                f"unknown symbol {symbol!r} (node symbols: {', '.join(sorted(self.instruments))})"
            )
        raise TypeError(f"side must be a Side, got {side!r}")

    def _cancel(self, account: int, coid: int) -> bool:
        order = self.om.get(account, coid)
        if order is None or not order.is_open or order.pending_cancel:
            return False
        self.om.cancel_requested(account, coid, self.clock.now_ns())
        self.stats.cancels += 1
        self._in_broker += 1
        try:
            self.broker.cancel(account, order.symbol, coid)
        finally:
            self._in_broker -= 1
        if not self._depth:
            self._drain()
        return True

    def _modify(self, ctx: NodeContext, coid: int, price: int, qty: int) -> bool:
        account = ctx._account
        order = self.om.get(account, coid)
        if order is None or not order.is_open or order.pending_cancel or order.pending_replace:
            return False
        if type(price) is not int or type(qty) is not int:
            raise TypeError("modify: price and qty must be ints (ticks, lots)")
        if price <= 0 or qty <= 0:
            raise ValueError(f"modify: price and qty must be > 0, got price {price} qty {qty}")
        now = self.clock.now_ns()
        reason = self.risk.check_modify(order, price, qty, now)
        if reason is not None:
            r = str(reason.value) if hasattr(reason, "value") else str(reason)
            self.stats.bump(self.stats.rejects, ("risk", r))
            return False
        self.om.replace_requested(account, coid, now)
        self._in_broker += 1
        try:
            self.broker.modify(account, order.symbol, coid, price, qty)
        finally:
            self._in_broker -= 1
        if not self._depth:
            self._drain()
        return True

    def _cancel_all(self, account: int, symbol: str | None) -> int:
        now = self.clock.now_ns()
        n = 0
        for order in self.om.open_orders(account, symbol):
            if not order.pending_cancel:
                self.om.cancel_requested(account, order.client_order_id, now)
                n += 1
        if n:
            self.stats.cancels += n
            self._in_broker += 1
            try:
                self.broker.cancel_all(account, symbol)
            finally:
                self._in_broker -= 1
            if not self._depth:
                self._drain()
        return n

    def _risk_cancel_all(self, account: int | None) -> None:
        """The kill switch's mass cancel (every account when ``account`` is None)."""
        accounts = [account] if account is not None else [s.account for s in self.slots]
        for acc in accounts:
            self._cancel_all(acc, None)

    # ------------------------------------------------------------------ reports

    def _on_report(self, ev: OrderEvent) -> None:
        """The broker's sink: order manager and portfolio now; store and strategies later."""
        self._batch.append(order_event_op(ev, self.run_id))
        order = self.om.on_event(ev)
        if order is not None:
            req = order.request
            slot = self._slots_by_account.get(req.account)
            if slot is not None and slot.wants_order:
                self._pending.append((slot, _ON_ORDER, order))
            self._dirty_orders[(req.account, req.client_order_id)] = order
            if ev.kind is _EV_REJECTED and order.status is _ST_REJECTED:
                self.stats.bump(self.stats.rejects, ("broker", ev.reason or "UNKNOWN"))
                self.risk.record_reject(ev.account, self.clock.now_ns(), ev.reason)
        if not self._depth and not self._in_broker:
            self._drain()

    def _on_fill(self, fill: Fill, order: Order) -> None:
        self.portfolio.on_fill(fill, order)
        account = fill.account
        symbol = fill.symbol
        fills = self.stats.fills
        key = (account, symbol, _LIQUIDITY_VALUE[fill.liquidity])
        fills[key] = fills.get(key, 0) + 1
        self._batch.append(fill_op(fill, self.run_id))
        self._dirty_positions.add((account, symbol))
        held = self._held.get(account)
        if held is None:
            held = self._held[account] = set()
        if symbol not in held:
            held.add(symbol)
            self._holders.setdefault(symbol, set()).add(account)
        self._risk_dirty.add(account)
        slot = self._slots_by_account.get(account)
        if slot is not None:
            slot.fills += 1
            if slot.wants_fill:
                self._pending.append((slot, _ON_FILL, fill))

    def _commit(self) -> None:
        """Put everything decided since the last commit point as one atomic store item.

        The item holds the reports and fills in the order they happened, then the current
        state of every order and position they touched, so the stored positions always equal
        the stored fills and each stored order's fill quantity the sum of its stored fills.
        """
        if not (self._batch or self._dirty_orders or self._dirty_positions):
            return  # nothing decided since the last commit point (most timer ticks)
        ops = self._batch
        self._batch = []
        run = self.run_id
        retire = self.om.retire
        for (acc, coid), order in self._dirty_orders.items():
            ops.append(order_op(order, run))
            if order.status not in _OPEN_STATUSES:
                # Stored in its final state (this item) and reported (the strategies got
                # their callbacks, or hold the object): the order manager keeps a tombstone.
                retire(acc, coid)
        self._dirty_orders.clear()
        dirty = self._dirty_positions
        if dirty:
            now = self.clock.now_ns()
            pf = self.portfolio
            # Sorted (accounts, then symbols), so the stored item does not depend on set order;
            # a single position (the usual case: one fill since the last commit) needs no sort.
            keys = sorted(dirty) if len(dirty) > 1 else list(dirty)
            for acc, sym in keys:
                # The same ops as position_op / account_op of the records, without building a
                # PositionRecord, a PositionRow and an AccountRow per fill.
                values = pf.record_values(acc, sym)
                if values is not None:
                    ops.append(position_values_op(acc, sym, values, now))
            accounts = sorted({a for a, _ in keys}) if len(keys) > 1 else [keys[0][0]]
            for acc in accounts:
                ops.append(account_values_op(acc, pf.cash(acc), pf.initial_cash(acc), now))
            dirty.clear()
        if ops:
            self.store.put(*ops)

    # ------------------------------------------------------------------ risk

    def _mark_all(self) -> None:
        """Mark every symbol whose book changed since its last mark (portfolio at the mid).

        Symbols whose mark moved (a book update often leaves the mid alone) are added to
        ``_marks_moved``, which the risk timer consumes.
        """
        dirty = self._marks_dirty
        if dirty:
            self.portfolio.mark_books(dirty, self.source.book, self._marks_moved)
            dirty.clear()

    def _evaluate_risk(self, accounts: Iterable[int] | None = None) -> None:
        """Refresh the cached equity (of ``accounts``, else of the accounts with a fill since
        the last evaluation) and let risk check the loss limits of every account."""
        todo = self._risk_dirty
        if todo:
            self._risk_dirty = set()
        if accounts is not None:
            todo = accounts if not todo and type(accounts) is set else todo | set(accounts)
        equity = self._equity
        if todo:
            self._mark_all()
            pf = self.portfolio
            for acc in todo:
                equity[acc] = pf.equity(acc)
        # Only the accounts whose equity was just refreshed can have moved: the others' last
        # evaluation saw the same figure. Every account is looked at when the UTC day changes
        # (each account's daily-loss baseline starts again) and after a reset or a reload
        # (a re-armed switch trips again on a loss that is still there).
        now = self.clock.now_ns()
        day = now // DAY_NS
        risk = self.risk
        if day != self._risk_day or self._risk_full:
            self._risk_day = day
            self._risk_full = False
            risk.evaluate(now)
        elif todo:
            risk.evaluate(now, todo)
        if risk.baseline_version != self._baseline_version:
            # A new day or a new peak: store the baselines, so a restart keeps the day's loss.
            self._baseline_version = risk.baseline_version
            self.store.put(
                *[
                    risk_baseline_op(
                        RiskBaselineRow(a, b.day, b.day_start_equity, b.peak_equity, now)
                    )
                    for a, b in risk.baselines().items()
                ]
            )

    def _account_equity(self, account: int) -> Decimal:
        return self.portfolio.equity(account)

    def _on_risk_event(self, ev: RiskEvent) -> None:
        kind = ev.kind.value
        slot = self._slots_by_account.get(ev.account) if ev.account is not None else None
        self.store.put(
            risk_event_op(
                RiskEventRow(
                    ts_ns=ev.ts_ns or self.clock.now_ns(),
                    kind=kind,
                    reason=str(ev.reason),
                    account=ev.account or 0,
                    strategy=slot.strategy.name if slot is not None else "",
                    symbol=ev.symbol,
                    detail=ev.detail,
                ),
                self.run_id,
            )
        )
        if ev.kind is not RiskEventKind.REJECT:
            log.warning(
                "risk: %s %s (account %s) %s", kind, ev.reason, ev.account or "all", ev.detail
            )
            self._kill_changed = True

    def _risk_timer(self, _deadline: int) -> None:
        # Marks that moved change the equity of the accounts holding those symbols: refresh
        # just those (the others' cached equity is still exact).
        if self._marks_dirty:
            self._mark_all()
        moved = self._marks_moved
        accounts: set[int] | None = None
        if moved:
            # Only a position that is not flat changes value with its mark. A flat one has been
            # flat since the account's equity was last computed (every fill recomputes it), so
            # that figure is still exact and the account is left alone.
            holders = self._holders
            position = self.portfolio.position_qty
            for sym in moved:
                accs = holders.get(sym)
                if accs:
                    for acc in accs:
                        if position(acc, sym):
                            if accounts is None:
                                accounts = {acc}
                            else:
                                accounts.add(acc)
            moved.clear()
        if (
            accounts is None
            and not self._risk_dirty
            and not self._risk_full
            and self.clock.now_ns() // DAY_NS == self._risk_day
            and self.risk.baseline_version == self._baseline_version
        ):
            # No equity moved and nothing else is due: what _evaluate_risk would do (nothing).
            return
        self._evaluate_risk(accounts)

    # ------------------------------------------------------------------ timers

    def _timers_changed(self) -> None:
        due = self.timers.next_due()
        self._next_timer = due if due is not None else 1 << 62

    def _fire_timers(self, now: int) -> None:
        stamp = self._stamp
        self._stamp = 0  # orders from timers are not tick-to-trade
        self.timers.fire(now, self._run_timer)
        self._stamp = stamp
        self._timers_changed()
        # _drain and _commit, each called only when it has something to do (most ticks
        # decide nothing: a risk evaluation that moves no limit, a state that did not change).
        if self._pending or self._risk_dirty:
            self._drain()
        if self._batch or self._dirty_orders or self._dirty_positions:
            self._commit()

    def _run_timer(self, timer: Timer, deadline: int) -> None:
        """Run one due timer at its deadline (the event clock moves there first)."""
        ec = self._event_clock
        if ec is not None and deadline > ec._now:  # EventClock.advance, inlined
            ec._now = deadline
        timer.callback(deadline)

    def _strategy_timer(self, slot: _StrategySlot, name: str, deadline: int) -> None:
        self._call(slot, _ON_TIMER, (name, deadline))

    def _state_timer(self, deadline: int) -> None:
        self._save_state(deadline)

    def _save_state(self, now: int) -> None:
        ops: list[Op] = []
        saved = self._saved_states
        for slot in self.slots:
            name = slot.strategy.name
            try:
                state = slot.strategy.state()
            except Exception:
                slot.ctx.logger.exception("strategy %s: state() failed", name)
                continue
            # A flat state (scalars only) equal to the one stored last time (same keys in the
            # same order, equal values of the same types) is not written again; anything
            # nested is always written (it may have been changed in place).
            key = None
            if type(state) is dict:
                types = tuple(map(type, state.values()))
                if _SCALARS.issuperset(types):
                    key = (tuple(state.items()), types)
                    if saved.get(name) == key:
                        continue
            saved[name] = key
            ops.append(strategy_state_op(name, state, now))
        ops.append(cursor_op(self.source.name, self.stats.messages, now))
        self.store.put(*ops)

    # ------------------------------------------------------------------ controls

    def _apply_controls(self) -> None:
        controls = self._controls
        while controls:
            command, args, fut = controls.popleft()
            try:
                result = self._run_control(command, args)
            except ControlError as exc:
                fut.set_exception(exc)
            except Exception as exc:
                log.exception("control command %s failed", command)
                fut.set_exception(ControlError(500, f"{type(exc).__name__}: {exc}"))
            else:
                fut.set_result(result)
            self._commit()

    def _run_control(self, command: str, args: dict[str, Any]) -> dict[str, Any]:
        now = self.clock.now_ns()
        if command == "summary":
            return self.summary().as_dict()
        if command == "kill_state":
            return {"kill_switch": dict(self.risk.kill_switch_state())}
        if command in ("kill", "reset"):
            account = _account_arg(args.get("account"))
            if account is not None and account not in self._slots_by_account:
                raise ControlError(404, f"no strategy trades for account {account}")
            if command == "kill":
                reason = str(args.get("reason") or "command")
                self.risk.kill(reason, account, now)
                log.warning("kill switch tripped by command (%s), account %s", reason, account)
            else:
                self.risk.reset(account, now)
                self._risk_full = True
                log.warning("kill switch reset by command, account %s", account)
            self._drain()
            self._publish_snapshot()
            return {"kill_switch": dict(self.risk.kill_switch_state())}
        if command == "reload":
            limits = args["limits"]
            self.risk.update_limits(limits, now)  # reports LIMITS_UPDATED through on_event
            self._risk_full = True
            stats = self.stats
            stats.config_reloads["ok"] = stats.config_reloads.get("ok", 0) + 1
            self._drain()
            self._publish_snapshot()
            return {"reloaded": True}
        if command == "print_summary":
            self._print(self.summary().format())
            return {"printed": True}
        if command == "stop":
            self.stop(str(args.get("reason") or "control"))
            return {"stopping": True}
        raise ControlError(404, f"unknown command {command!r}")

    def _post(self, command: str, args: dict[str, Any] | None = None) -> Future[dict[str, Any]]:
        fut: Future[dict[str, Any]] = Future()
        self._controls.append((command, args or {}, fut))
        return fut

    # ------------------------------------------------------------------ hot reload

    def _stat_config(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.loaded.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def _watch_loop(self) -> None:
        interval = self.config.node.config_poll_interval_ms / 1000
        while not self._watch_stop.wait(interval):
            current = self._stat_config()
            if current is None or current == self._config_mtime:
                continue
            self._config_mtime = current
            self._reload_from_file()

    def _reload_from_file(self) -> None:
        """Validate the changed file and hand the new ``[risk]`` limits to the node's thread."""
        try:
            fresh = load_config(self.loaded.path, live=True, check_layers=False)
            limits = RiskLimits.from_config(fresh.config.risk, where=fresh.risk_where())
        except ConfigError as exc:
            reloads = self.stats.config_reloads
            reloads["error"] = reloads.get("error", 0) + 1
            log.error("config reload refused, the old limits stay: %s", exc)
            return
        changed = [
            k
            for k in ("node", "source", "strategy", "broker", "storage", "metrics")
            if fresh.raw.get(k) != self.loaded.raw.get(k)
        ]
        if changed:
            log.warning(
                "config file changed outside [risk] (%s): those take effect at the next start",
                ", ".join(changed),
            )
        self._post("reload", {"limits": limits})

    # ------------------------------------------------------------------ signals

    def _signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        self._old_handlers: dict[int, Any] = {}

        def on_stop(signum: int, _frame: FrameType | None) -> None:
            self.stop(f"signal {signal.Signals(signum).name}")

        def on_kill(_signum: int, _frame: FrameType | None) -> None:
            self._post("kill", {"reason": "signal SIGUSR1"})

        def on_summary(_signum: int, _frame: FrameType | None) -> None:
            self._post("print_summary")

        for sig, fn in (
            (signal.SIGINT, on_stop),
            (signal.SIGTERM, on_stop),
            (signal.SIGUSR1, on_kill),
            (signal.SIGUSR2, on_summary),
        ):
            self._old_handlers[sig] = signal.signal(sig, fn)

    def _restore_signals(self) -> None:
        for sig, old in getattr(self, "_old_handlers", {}).items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, old)

    # ------------------------------------------------------------------ metrics

    def _publish_snapshot(self) -> None:
        self._mark_all()
        pf = self.portfolio
        positions = tuple(
            (p.account, p.symbol, p.qty) for p in pf.positions() if p.qty != 0 or p.fills
        )
        pnl = []
        for slot in self.slots:
            v = pf.account(slot.account)
            pnl.append(PnlRow(slot.account, v.realized_pnl, v.unrealized_pnl, v.fees, v.equity))
        ks = self.risk.kill_switch_state()
        kill = [("global", int(ks.get("global") is not None))]
        for slot in self.slots:
            kill.append((f"account:{slot.account}", int(bool(self.risk.is_tripped(slot.account)))))
        self.stats.snapshot = StatsSnapshot(
            ts_ns=time.time_ns(), positions=positions, pnl=tuple(pnl), kill_switch=tuple(kill)
        )

    def _print(self, text: str) -> None:
        if self.out is not None:
            print(text, file=self.out, flush=True)
        else:
            log.info("%s", text)


def _overrides(strategy: Strategy, callback: str) -> bool:
    """True unless ``strategy``'s ``callback`` is the base class's no-op."""
    if callback in getattr(strategy, "__dict__", ()):  # set on the instance (a wrapper)
        return True
    return getattr(type(strategy), callback, None) is not getattr(Strategy, callback)


def _restorable(order: Order) -> bool:
    """A resting order the paper broker can take back: a GTC limit with something left."""
    req = order.request
    return (
        req.order_type is OrderType.LIMIT
        and req.tif is TimeInForce.GTC
        and order.leaves > 0
        and order.price > 0
    )


def money_units(instruments: Mapping[str, Instrument]) -> dict[str, Decimal]:
    """``tick_size * lot_size`` of each symbol: the money of one tick-lot."""
    return {s: _MONEY.multiply(i.tick_size, i.lot_size) for s, i in instruments.items()}


def account_equity(pf: Portfolio, account: int, units: Mapping[str, Decimal]) -> Decimal:
    """``pf.equity(account)`` from the portfolio's public per-symbol numbers.

    cash + sum(qty * mark * tick_size * lot_size), exactly (marks are mids: halves at worst).
    Equal to the portfolio's own figure (tests/unit/test_node_clock.py checks it on random
    fills); falls back to it when a position has no mark. The node itself now uses
    ``Portfolio.equity``, which no longer builds the position views and costs about the same.
    """
    total = pf.cash(account)
    for sym, unit in units.items():
        qty = pf.position_qty(account, sym)
        if not qty:
            continue
        mark = pf.mark_of(sym)
        if mark is None:
            return pf.equity(account)
        value = qty * mark
        money = _MONEY.multiply(Decimal(value.numerator), unit)
        if value.denominator != 1:
            money = _MONEY.divide(money, Decimal(value.denominator))
        total = _MONEY.add(total, money)
    return total


def _account_arg(value: object) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(str(value))
    except ValueError:
        raise ControlError(400, f"account must be an integer, got {value!r}") from None


_ON_BOOK = 0
_ON_TRADE = 1
_ON_FILL = 2
_ON_ORDER = 3
_ON_QUOTE = 4
_ON_RESYNC = 5
_ON_TIMER = 6
_ON_START = 7
_ON_STOP = 8
_CALLBACK_NAMES = (
    "on_book",
    "on_trade",
    "on_fill",
    "on_order",
    "on_quote",
    "on_resync",
    "on_timer",
    "on_start",
    "on_stop",
)
