"""Test doubles for strategy logic: a Python L2 book and an in-memory :class:`Context`.

Owns: :class:`DictBook`, a small :class:`~tradecore.marketdata.events.BookView` in pure Python
(sorted price lists plus a dict), and :class:`RecordingContext`, a single-account
:class:`~tradecore.strategy.context.Context` that records every request, lets the test play the
venue (:meth:`RecordingContext.fill`, :meth:`RecordingContext.ack`,
:meth:`RecordingContext.done`), runs timers on a clock the test moves
(:meth:`RecordingContext.advance`), keeps positions and average-cost P&L, and optionally puts a
real :class:`~tradecore.risk.RiskEngine` in front of every order (it then serves as that
engine's :class:`~tradecore.risk.RiskState` through :meth:`RecordingContext.risk_state`).

This is the reference of the Context semantics for unit tests and benchmarks; the node has its
own implementation, integration-tested with its real order manager and broker.

Invariants: callbacks into the strategy happen only from the test's driver calls, never from
inside a context method; ``cancel``/``modify`` apply at once (a synchronous venue) unless
``instant=False``, in which case they only mark the order pending until :meth:`done`.

Cost: dictionary operations; ``DictBook.depth`` is O(n) with the sorted lists.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterable, Mapping
from decimal import Decimal
from fractions import Fraction

from tradecore.enums import OrderType, Side, TimeInForce
from tradecore.execution.types import Fill, Liquidity, Order, OrderRequest, OrderStatus
from tradecore.instrument import Instrument
from tradecore.marketdata.events import BookUpdate, BookView, Level, Resync, TradeTick
from tradecore.risk.engine import RiskEngine
from tradecore.strategy.base import Strategy

__all__ = ["DictBook", "RecordingContext"]


class DictBook:
    """A pure-Python L2 book: ``set(side, price, qty)`` with absolute quantities, 0 removes."""

    __slots__ = ("_ask_px", "_asks", "_bid_px", "_bids")

    def __init__(self, bids: Iterable[Level] = (), asks: Iterable[Level] = ()) -> None:
        self._bids: dict[int, int] = {}
        self._asks: dict[int, int] = {}
        self._bid_px: list[int] = []  # ascending; best bid last
        self._ask_px: list[int] = []  # ascending; best ask first
        for p, q in bids:
            self.set(Side.BUY, p, q)
        for p, q in asks:
            self.set(Side.SELL, p, q)

    def set(self, side: Side, price: int, qty: int) -> None:
        levels, prices = (
            (self._bids, self._bid_px) if side is Side.BUY else (self._asks, self._ask_px)
        )
        if qty < 0:
            raise ValueError(f"qty must be >= 0, got {qty}")
        if qty == 0:
            if levels.pop(price, None) is not None:
                del prices[bisect.bisect_left(prices, price)]
            return
        if price not in levels:
            bisect.insort(prices, price)
        levels[price] = qty

    def clear(self) -> None:
        self._bids.clear()
        self._asks.clear()
        self._bid_px.clear()
        self._ask_px.clear()

    def best_bid(self) -> Level | None:
        if not self._bid_px:
            return None
        p = self._bid_px[-1]
        return (p, self._bids[p])

    def best_ask(self) -> Level | None:
        if not self._ask_px:
            return None
        p = self._ask_px[0]
        return (p, self._asks[p])

    def depth(self, n: int = 10) -> tuple[list[Level], list[Level]]:
        bids = self._bids
        asks = self._asks
        bp = self._bid_px
        return (
            [(p, bids[p]) for p in bp[: -n - 1 : -1]] if n > 0 else [],
            [(p, asks[p]) for p in self._ask_px[:n]],
        )


class _RiskView:
    """The :class:`RiskState` of a :class:`RecordingContext` (its one account)."""

    def __init__(self, ctx: RecordingContext) -> None:
        self._ctx = ctx

    def position(self, account: int, symbol: str) -> int:
        return self._ctx.position(symbol) if account == self._ctx.account else 0

    def positions(self, account: int) -> Mapping[str, int]:
        return dict(self._ctx.positions) if account == self._ctx.account else {}

    def open_qty(self, account: int, symbol: str, side: Side) -> int:
        if account != self._ctx.account:
            return 0
        return sum(o.leaves for o in self._ctx.open_orders(symbol) if o.side is side)

    def open_order_count(self, account: int) -> int:
        return len(self._ctx.open_orders()) if account == self._ctx.account else 0

    def best_bid_ask(self, symbol: str) -> tuple[int, int] | None:
        book = self._ctx.books.get(symbol)
        if book is None:
            return None
        bb = book.best_bid()
        ba = book.best_ask()
        if bb is None or ba is None:
            return None
        return (bb[0], ba[0])

    def equity(self, account: int) -> Decimal:
        return self._ctx.equity() if account == self._ctx.account else Decimal(0)


class RecordingContext:
    """An in-memory :class:`~tradecore.strategy.context.Context` for one account."""

    def __init__(
        self,
        instruments: Iterable[Instrument],
        *,
        account: int = 1,
        strategy_name: str = "test",
        now_ns: int = 0,
        risk: RiskEngine | None = None,
        instant: bool = True,
        logger: logging.Logger | None = None,
    ) -> None:
        self._instruments = {i.symbol: i for i in instruments}
        self._account = account
        self._name = strategy_name
        self._logger = logger or logging.getLogger(f"tradecore.strategy.{strategy_name}")
        self.now = now_ns
        self.risk = risk
        self.instant = instant
        self.books: dict[str, BookView] = {}
        self.orders: dict[int, Order] = {}
        self._open: dict[int, Order] = {}  # the open ones among ``orders``
        self.submitted: list[Order] = []  # every submit, risk-rejected ones included
        self.cancels: list[int] = []
        self.modifies: list[tuple[int, int, int]] = []
        self.fills: list[Fill] = []
        self.positions: dict[str, int] = {}
        self._cost: dict[str, Fraction] = {}  # cost basis of the open position, tick-lots
        self._realized: dict[str, Fraction] = {}  # tick-lots
        self.fees = Decimal(0)
        self.timers: dict[str, tuple[int, int, bool]] = {}  # name -> (due, interval, repeat)
        self.strategy: Strategy | None = None
        self._next_id = 1
        self._event_id = 1

    # --- wiring ----------------------------------------------------------------------------

    def start(self, strategy: Strategy) -> Strategy:
        """Attach ``strategy`` to this context and call its ``on_start``."""
        strategy.attach(self)
        self.strategy = strategy
        strategy.on_start()
        return strategy

    def risk_state(self) -> _RiskView:
        """This context seen as a RiskState (build a RiskEngine over it, then set ``risk``)."""
        return _RiskView(self)

    # --- Context ---------------------------------------------------------------------------

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
        return self.now

    def instrument(self, symbol: str) -> Instrument:
        return self._instruments[symbol]

    def book(self, symbol: str) -> BookView | None:
        return self.books.get(symbol)

    def _check_args(self, symbol: str, qty: object, price: object, market: bool) -> None:
        if symbol not in self._instruments:
            raise ValueError(f"unknown symbol {symbol!r}")
        if isinstance(qty, bool) or not isinstance(qty, int):
            raise TypeError(f"qty must be an int (lots), got {type(qty).__name__}")
        if qty <= 0:
            raise ValueError(f"qty must be > 0 lots, got {qty}")
        if isinstance(price, bool) or not isinstance(price, int):
            raise TypeError(f"price must be an int (ticks), got {type(price).__name__}")
        if not market and price <= 0:
            raise ValueError(f"price must be > 0 ticks, got {price}")

    def _submit(self, req: OrderRequest) -> Order:
        self._next_id += 1
        if self.risk is not None:
            reason = self.risk.check(req, self.now)
            if reason is not None:
                order = Order(
                    req,
                    status=OrderStatus.REJECTED,
                    price=req.price,
                    qty=req.qty,
                    reason=reason.value,
                    created_ns=self.now,
                    updated_ns=self.now,
                )
                self.orders[req.client_order_id] = order
                self.submitted.append(order)
                return order
        order = Order(
            req,
            status=OrderStatus.NEW,
            price=req.price,
            qty=req.qty,
            leaves=req.qty,
            created_ns=self.now,
            updated_ns=self.now,
        )
        self.orders[req.client_order_id] = order
        self._open[req.client_order_id] = order
        self.submitted.append(order)
        return order

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
        self._check_args(symbol, qty, price, False)
        req = OrderRequest(
            self._account, self._next_id, symbol, side, qty, price, OrderType.LIMIT, tif,
            post_only, self.now, self._name, tag,
        )  # fmt: skip
        return self._submit(req)

    def submit_market(self, symbol: str, side: Side, qty: int, *, tag: str = "") -> Order:
        self._check_args(symbol, qty, 0, True)
        req = OrderRequest(
            self._account, self._next_id, symbol, side, qty, 0, OrderType.MARKET,
            TimeInForce.IOC, False, self.now, self._name, tag,
        )  # fmt: skip
        return self._submit(req)

    def cancel(self, client_order_id: int) -> bool:
        order = self.orders.get(client_order_id)
        if order is None or not order.is_open:
            return False
        self.cancels.append(client_order_id)
        if self.instant:
            order.status = OrderStatus.CANCELLED
            order.leaves = 0
            order.updated_ns = self.now
            self._open.pop(client_order_id, None)
        else:
            order.pending_cancel = True
        return True

    def modify(self, client_order_id: int, *, price: int, qty: int) -> bool:
        order = self.orders.get(client_order_id)
        if order is None or not order.is_open:
            return False
        self._check_args(order.symbol, qty, price, False)
        if self.risk is not None and self.risk.check_modify(order, price, qty, self.now):
            return False
        self.modifies.append((client_order_id, price, qty))
        if self.instant:
            order.price = price
            order.leaves = qty
            order.qty = order.filled_qty + qty
            order.updated_ns = self.now
        else:
            order.pending_replace = True
        return True

    def cancel_all(self, symbol: str | None = None) -> int:
        return sum(self.cancel(o.client_order_id) for o in self.open_orders(symbol))

    def order(self, client_order_id: int) -> Order | None:
        return self.orders.get(client_order_id)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [
            o for o in self._open.values() if o.is_open and (symbol is None or o.symbol == symbol)
        ]

    def position(self, symbol: str) -> int:
        return self.positions.get(symbol, 0)

    def _money(self, symbol: str, tick_lots: Fraction) -> Decimal:
        inst = self._instruments[symbol]
        value = tick_lots * Fraction(inst.tick_size) * Fraction(inst.lot_size)
        return Decimal(value.numerator) / Decimal(value.denominator)

    def realized_pnl(self, symbol: str | None = None) -> Decimal:
        syms = [symbol] if symbol is not None else list(self._realized)
        total = sum((self._money(s, self._realized.get(s, Fraction(0))) for s in syms), Decimal(0))
        return total - (self.fees if symbol is None else Decimal(0))

    def _mark(self, symbol: str) -> Fraction | None:
        book = self.books.get(symbol)
        if book is None:
            return None
        bb = book.best_bid()
        ba = book.best_ask()
        if bb is None or ba is None:
            return None
        return Fraction(bb[0] + ba[0], 2)

    def unrealized_pnl(self, symbol: str | None = None) -> Decimal:
        total = Decimal(0)
        for s in [symbol] if symbol is not None else list(self.positions):
            pos = self.positions.get(s, 0)
            mark = self._mark(s)
            if pos == 0 or mark is None:
                continue
            total += self._money(s, pos * mark - self._cost.get(s, Fraction(0)))
        return total

    def equity(self) -> Decimal:
        return self.realized_pnl() + self.unrealized_pnl()

    def set_timer(self, name: str, interval_ns: int, *, repeat: bool = True) -> None:
        if interval_ns <= 0:
            raise ValueError(f"interval_ns must be > 0, got {interval_ns}")
        self.timers[name] = (self.now + interval_ns, interval_ns, repeat)

    def cancel_timer(self, name: str) -> bool:
        return self.timers.pop(name, None) is not None

    # --- the test plays the market and the venue -------------------------------------------

    def _strategy(self) -> Strategy:
        if self.strategy is None:
            raise RuntimeError("no strategy: call ctx.start(strategy) first")
        return self.strategy

    def book_update(self, symbol: str, book: BookView | None = None, update_id: int = 0) -> None:
        """Deliver a BookUpdate of ``symbol`` (``book`` replaces the stored one if given)."""
        if book is not None:
            self.books[symbol] = book
        ev = BookUpdate(symbol, self.now, self.now, update_id, self.books[symbol])
        self._strategy().on_book(ev)

    def trade(self, symbol: str, price: int, qty: int, aggressor: Side, trade_id: int = 0) -> None:
        """Deliver a TradeTick."""
        self._strategy().on_trade(
            TradeTick(symbol, self.now, self.now, price, qty, aggressor, trade_id)
        )

    def resync(self, symbol: str, reason: str = "gap") -> None:
        """Deliver a Resync."""
        self._strategy().on_resync(Resync(symbol, self.now, self.now, reason))

    def advance(self, now_ns: int) -> list[str]:
        """Move the clock to ``now_ns``, firing due timers in time order; their names."""
        fired: list[str] = []
        while True:
            due = [(t[0], n) for n, t in self.timers.items() if t[0] <= now_ns]
            if not due:
                break
            when, name = min(due)
            _, interval, repeat = self.timers[name]
            if repeat:
                self.timers[name] = (when + interval, interval, repeat)
            else:
                del self.timers[name]
            self.now = when
            fired.append(name)
            self._strategy().on_timer(name, when)
        self.now = now_ns
        return fired

    def ack(self, client_order_id: int) -> Order:
        """The venue accepted the order: status ACKNOWLEDGED, ``on_order``."""
        order = self.orders[client_order_id]
        if order.status is OrderStatus.NEW:
            order.status = OrderStatus.ACKNOWLEDGED
            order.updated_ns = self.now
            self._strategy().on_order(order)
        return order

    def done(self, client_order_id: int, status: OrderStatus = OrderStatus.CANCELLED) -> Order:
        """The order ends (IOC remainder cancelled, cancel confirmed, expired...): ``on_order``."""
        order = self.orders[client_order_id]
        order.status = status
        order.leaves = 0
        self._open.pop(client_order_id, None)
        order.pending_cancel = False
        order.pending_replace = False
        order.updated_ns = self.now
        self._strategy().on_order(order)
        return order

    def fill(
        self,
        client_order_id: int,
        qty: int | None = None,
        price: int | None = None,
        *,
        liquidity: Liquidity = Liquidity.TAKER,
        fee: Decimal = Decimal(0),
    ) -> Fill:
        """The order trades ``qty`` lots (all its leaves by default) at ``price`` (its limit)."""
        order = self.orders[client_order_id]
        if not order.is_open:
            raise ValueError(f"order {client_order_id} is {order.status}, it cannot fill")
        q = order.leaves if qty is None else qty
        if not 0 < q <= order.leaves:
            raise ValueError(f"fill qty {q} must be in 1..{order.leaves}")
        px = order.price if price is None else price
        sym = order.symbol
        signed = q if order.side is Side.BUY else -q
        self._apply_fill(sym, signed, px)
        self.fees += fee
        order.filled_qty += q
        order.leaves -= q
        order.notional_filled += px * q
        order.status = OrderStatus.FILLED if order.leaves == 0 else OrderStatus.PARTIALLY_FILLED
        if order.leaves == 0:
            self._open.pop(client_order_id, None)
        order.updated_ns = self.now
        fill = Fill(
            self._account, sym, client_order_id, order.side, px, q, liquidity, fee, self.now,
            self._event_id, self._name,
        )  # fmt: skip
        self._event_id += 1
        self.fills.append(fill)
        strategy = self._strategy()
        strategy.on_fill(fill)
        strategy.on_order(order)
        return fill

    def _apply_fill(self, sym: str, signed: int, px: int) -> None:
        pos = self.positions.get(sym, 0)
        cost = self._cost.get(sym, Fraction(0))
        if pos == 0 or (pos > 0) == (signed > 0):
            cost += signed * px
        else:
            closing = min(abs(signed), abs(pos))
            unit = cost / pos  # average price, ticks
            sign = 1 if pos > 0 else -1
            self._realized[sym] = self._realized.get(sym, Fraction(0)) + sign * closing * (
                px - unit
            )
            cost -= sign * closing * unit
            rest = abs(signed) - closing
            if rest:
                cost = Fraction((1 if signed > 0 else -1) * rest * px)
        new_pos = pos + signed
        self.positions[sym] = new_pos
        self._cost[sym] = cost if new_pos else Fraction(0)
        self._realized.setdefault(sym, Fraction(0))
