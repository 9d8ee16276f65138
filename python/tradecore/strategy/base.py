"""The :class:`Strategy` base class and :class:`TargetStrategy`, the built-ins' common part.

Owns: the callbacks the node makes (``on_start``, ``on_book``, ``on_trade``, ``on_quote``,
``on_resync``, ``on_fill``, ``on_order``, ``on_timer``, ``on_stop``), the binding to a
:class:`~tradecore.strategy.context.Context` (``attach``), and the state snapshot hooks
(``state``/``restore``) the store uses.

:class:`TargetStrategy` is for single-symbol strategies that decide a *target position* and
let one routine trade toward it (:meth:`TargetStrategy.trade_toward`): at most one working order
at a time, sized to the gap between position and target (capped by ``order_qty``), never beyond
``max_position``; either as a taker (a limit IOC at the opposite touch plus ``slippage_ticks``)
or as a maker (a post-only GTC at its own touch, moved with the touch by cancel/replace).
A ``cooldown_ms`` spaces orders out in node time. Orders are integer ticks and lots.

Invariants: a strategy talks to the node only through its context (``self.ctx``), which is
set once by :meth:`Strategy.attach` before ``on_start``; callbacks are never re-entered.

Cost: a callback the strategy does not override is one Python call to an empty method.
``trade_toward`` is one position read, one order lookup and at most one submit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, cast

from tradecore.enums import Side, TimeInForce
from tradecore.errors import ConfigError
from tradecore.execution.types import Fill, Order, OrderStatus
from tradecore.marketdata.events import BookUpdate, Quote, Resync, TradeTick
from tradecore.strategy.context import Context
from tradecore.strategy.params import ParamReader

__all__ = ["Strategy", "TargetStrategy"]

# Module constants: in CPython 3.11 reading an enum member off its class costs ~150 ns.
_BUY = Side.BUY
_SELL = Side.SELL
_IOC = TimeInForce.IOC
# ``Order.is_open`` is two property calls; the status set is read directly on the hot path.
_OPEN = frozenset((OrderStatus.NEW, OrderStatus.ACKNOWLEDGED, OrderStatus.PARTIALLY_FILLED))


class _Detached:
    """Stands in for the context until ``attach``: any use says what is missing."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, item: str) -> Any:
        raise RuntimeError(
            f"strategy {self._name!r} is not attached to a context (ctx.{item}): the node "
            "calls strategy.attach(ctx) before on_start"
        )


class Strategy:
    """Base class of every strategy: override the callbacks you need.

    ``name`` is unique per node; ``symbols`` are the symbols whose market data the node routes
    to this strategy. ``kind`` is the registry name of the class (``"imbalance"``...).
    """

    kind: ClassVar[str] = "custom"

    def __init__(self, name: str, symbols: Sequence[str]) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"strategy name must be a non-empty string, got {name!r}")
        if isinstance(symbols, str) or not symbols:
            raise ConfigError(f"strategy {name!r}: symbols must be a non-empty list of names")
        for s in symbols:
            if not isinstance(s, str) or not s:
                raise ConfigError(f"strategy {name!r}: symbol names must be strings, got {s!r}")
        self.name = name
        self.symbols: tuple[str, ...] = tuple(symbols)
        self.ctx: Context = cast(Context, _Detached(name))

    def attach(self, ctx: Context) -> None:
        """Bind the strategy to its context; the node calls this once, before ``on_start``."""
        if not isinstance(self.ctx, _Detached):
            raise RuntimeError(f"strategy {self.name!r} is already attached to a context")
        self.ctx = ctx

    @property
    def attached(self) -> bool:
        """True once :meth:`attach` was called."""
        return not isinstance(self.ctx, _Detached)

    # --- callbacks (all no-ops here) -------------------------------------------------------

    def on_start(self) -> None:
        """The node is running; market data follows."""

    def on_book(self, event: BookUpdate) -> None:
        """The L2 book of one of ``symbols`` changed; read ``event.book`` now."""

    def on_trade(self, event: TradeTick) -> None:
        """A trade printed in one of ``symbols``."""

    def on_quote(self, event: Quote) -> None:
        """A best bid/offer update (bookTicker) of one of ``symbols``."""

    def on_resync(self, event: Resync) -> None:
        """The book of ``event.symbol`` is lost until the next ``on_book``."""

    def on_fill(self, fill: Fill) -> None:
        """One of this strategy's orders traded (the position already includes it)."""

    def on_order(self, order: Order) -> None:
        """One of this strategy's orders changed status."""

    def on_timer(self, name: str, now_ns: int) -> None:
        """The timer ``name`` set through ``ctx.set_timer`` fired."""

    def on_stop(self) -> None:
        """The node is stopping; no more events follow."""

    # --- persistence -----------------------------------------------------------------------

    def state(self) -> dict[str, object]:
        """A JSON-able snapshot of what the strategy needs after a restart."""
        return {}

    def restore(self, state: Mapping[str, object]) -> None:
        """Load a snapshot written by :meth:`state` (before ``on_start``)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, symbols={list(self.symbols)!r})"


class TargetStrategy(Strategy):
    """A single-symbol strategy that sets a target position and trades toward it.

    Common parameters (read by :meth:`read_common`):

    * ``symbol`` (required): the symbol traded.
    * ``order_qty`` (lots, >= 1, default 1): the largest single order.
    * ``max_position`` (lots, >= 1, default 10): targets are within ``[-max, +max]``.
    * ``mode`` (``"taker"`` default, or ``"maker"``): see the module notes.
    * ``slippage_ticks`` (>= 0, default 0): how far through the touch a taker order may trade.
    * ``cooldown_ms`` (>= 0, default 0): minimum node time between two new orders.
    * ``allow_short`` (default true): if false, negative targets become 0.
    """

    def read_common(self, p: ParamReader) -> str:
        """Read the common parameters from ``p``; returns the symbol."""
        symbol = p.string("symbol")
        self.order_qty = p.integer("order_qty", 1, ge=1)
        self.max_position = p.integer("max_position", 10, ge=1)
        self.mode = p.string("mode", "taker", choices=("taker", "maker"))
        self.slippage_ticks = p.integer("slippage_ticks", 0, ge=0)
        self.cooldown_ns = p.integer("cooldown_ms", 0, ge=0) * 1_000_000
        self.allow_short = p.boolean("allow_short", True)
        if self.mode == "maker" and self.slippage_ticks:
            raise p.error("slippage_ticks", "only applies to mode = 'taker'")
        return symbol

    def _init_target(self, symbol: str) -> None:
        self.symbol = symbol
        self.target = 0
        self.working: int | None = None  # client order id of the one working order
        self.last_order_ns: int | None = None
        self.orders_sent = 0

    def trade_toward(self, target: int, bid: int, ask: int, qty_cap: int | None = None) -> None:
        """Move toward ``target`` lots given the touch ``bid``/``ask`` (ticks)."""
        # Runs on every signal, inside the tick-to-trade: plain comparisons, no builtin calls.
        if target < 0 and not self.allow_short:
            target = 0
        limit = self.max_position
        if target > limit:
            target = limit
        elif target < -limit:
            target = -limit
        self.target = target
        ctx = self.ctx
        working = self.working
        maker = self.mode == "maker"
        if working is not None:
            order = ctx.order(working)
            if order is not None and order.status in _OPEN:
                if maker:
                    self._manage_maker(order, target, bid, ask)
                return  # a taker IOC is in flight: wait for its outcome
            self.working = None
        symbol = self.symbol
        gap = target - ctx.position(symbol)
        if gap == 0:
            return
        now = ctx.now_ns()
        last = self.last_order_ns
        if last is not None and now - last < self.cooldown_ns:
            return
        cap = self.order_qty
        if qty_cap is not None and qty_cap < cap:
            cap = qty_cap
        if gap > 0:
            side = _BUY
            qty = gap if gap < cap else cap
            price = bid if maker else ask + self.slippage_ticks
        else:
            side = _SELL
            qty = -gap if -gap < cap else cap
            price = ask if maker else bid - self.slippage_ticks
            if price < 1:
                price = 1
        self.last_order_ns = now
        self.orders_sent += 1
        if maker:
            order = ctx.submit_limit(symbol, side, qty, price, post_only=True, tag=self.kind)
        else:
            order = ctx.submit_limit(symbol, side, qty, price, tif=_IOC, tag=self.kind)
        if order.status in _OPEN:
            self.working = order.request.client_order_id

    def _manage_maker(self, order: Order, target: int, bid: int, ask: int) -> None:
        if order.pending_cancel or order.pending_replace:
            return
        ctx = self.ctx
        gap = target - ctx.position(self.symbol)
        want = _BUY if gap > 0 else _SELL
        if gap == 0 or order.side is not want:
            ctx.cancel(order.client_order_id)
            return
        price = bid if want is _BUY else ask
        if order.price != price:
            qty = min(abs(gap), self.order_qty)
            ctx.modify(order.client_order_id, price=price, qty=qty)

    def state(self) -> dict[str, object]:
        return {"target": self.target}

    def restore(self, state: Mapping[str, object]) -> None:
        target = state.get("target", 0)
        if isinstance(target, int) and not isinstance(target, bool):
            self.target = target
