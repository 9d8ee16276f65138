"""The :class:`Context` protocol: everything a strategy may ask of the node.

Owns: the contract between a :class:`~tradecore.strategy.Strategy` and the trading node (or a
backtester, or the in-memory :class:`~tradecore.strategy.testing.RecordingContext` of the unit
tests). Each strategy gets its own context, bound to one account; several strategies run in
one node, each with its own account.

Invariants the implementation keeps:

* Prices are ``int`` ticks and quantities ``int`` lots of the symbol's instrument; bad
  arguments (a float, ``qty <= 0``, a LIMIT price ``<= 0``, an unknown symbol) raise
  ``TypeError``/``ValueError`` and no order is created.
* ``submit_limit``/``submit_market`` build an :class:`~tradecore.execution.types.OrderRequest`
  for the context's account and run pre-trade risk on it. A risk rejection comes back at once
  as an :class:`~tradecore.execution.types.Order` with status ``REJECTED`` and ``reason`` the
  risk reason code; no callback is made for it (callbacks are never re-entrant). Otherwise the
  order is registered, sent, and returned with status ``NEW``; later status changes arrive
  through ``Strategy.on_order`` and fills through ``Strategy.on_fill``.
* ``modify`` is cancel/replace with the venue's semantics: ``qty`` is the new *remaining*
  quantity. Cancels are never refused by risk.
* ``now_ns`` is the node's clock: wall time live, the simulated clock in a backtest, so a
  strategy that reads time only from here is deterministic in a backtest.

Cost: this module defines types only.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Protocol, runtime_checkable

from tradecore.enums import Side, TimeInForce
from tradecore.execution.types import Order
from tradecore.instrument import Instrument
from tradecore.marketdata.events import BookView

__all__ = ["Context"]


@runtime_checkable
class Context(Protocol):
    """What a strategy sees of the node: orders, positions, P&L, clock, timers, logger."""

    @property
    def account(self) -> int:
        """The account every order of this strategy is sent for."""
        ...

    @property
    def strategy_name(self) -> str:
        """The strategy's configured name (unique per node); stamped on its orders."""
        ...

    @property
    def logger(self) -> logging.Logger:
        """The strategy's logger."""
        ...

    def now_ns(self) -> int:
        """The node's clock in nanoseconds since the epoch (simulated in a backtest)."""
        ...

    def instrument(self, symbol: str) -> Instrument:
        """The instrument of ``symbol`` (tick and lot size); ``KeyError`` if not configured."""
        ...

    def book(self, symbol: str) -> BookView | None:
        """The live L2 book of ``symbol``; None while it is not synced."""
        ...

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
        """Send a limit order of ``qty`` lots at ``price`` ticks; see the module notes."""
        ...

    def submit_market(self, symbol: str, side: Side, qty: int, *, tag: str = "") -> Order:
        """Send a market order of ``qty`` lots; see the module notes."""
        ...

    def cancel(self, client_order_id: int) -> bool:
        """Ask to cancel an open order; False if it is unknown or no longer open."""
        ...

    def modify(self, client_order_id: int, *, price: int, qty: int) -> bool:
        """Cancel/replace: new price (ticks) and new remaining quantity (lots).

        False if the order is unknown, not open, or the change is refused by risk.
        """
        ...

    def cancel_all(self, symbol: str | None = None) -> int:
        """Cancel every open order of this account (of ``symbol`` only if given); the count."""
        ...

    def order(self, client_order_id: int) -> Order | None:
        """The order manager's live view of one of this account's orders."""
        ...

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """This account's open orders (of ``symbol`` only if given)."""
        ...

    def position(self, symbol: str) -> int:
        """This account's signed position in ``symbol``, in lots (short < 0)."""
        ...

    def realized_pnl(self, symbol: str | None = None) -> Decimal:
        """Realized P&L net of fees, in quote currency (all symbols if None)."""
        ...

    def unrealized_pnl(self, symbol: str | None = None) -> Decimal:
        """Open positions marked at the mid, in quote currency (all symbols if None)."""
        ...

    def equity(self) -> Decimal:
        """Cash plus marked positions of this account, in quote currency."""
        ...

    def set_timer(self, name: str, interval_ns: int, *, repeat: bool = True) -> None:
        """Call ``Strategy.on_timer(name, now_ns)`` after ``interval_ns`` (and every
        ``interval_ns`` after that if ``repeat``); setting an existing name replaces it."""
        ...

    def cancel_timer(self, name: str) -> bool:
        """Stop a timer; False if there was none of that name."""
        ...
