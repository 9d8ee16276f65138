"""The execution client protocol: how the node talks to a paper broker or a venue.

Owns only the interface. An execution client accepts requests (submit, cancel, modify, mass
cancel) and answers exclusively through the sink it was given, with
:class:`~tradecore.execution.types.OrderEvent` reports; it never raises for a business
rejection (those are REJECTED / CANCEL_REJECTED reports). A client may call the sink
synchronously from inside a request (the paper broker does when its latency is zero), so the
caller must have registered the order with the order manager before calling ``submit``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from tradecore.execution.types import OrderEvent, OrderRequest

__all__ = ["EventSink", "ExecutionClient"]

EventSink = Callable[[OrderEvent], object]  # the return value is ignored


@runtime_checkable
class ExecutionClient(Protocol):
    """Requests in, :class:`OrderEvent` reports out through the sink."""

    def set_sink(self, sink: EventSink) -> None:
        """Where reports go (the order manager's ``on_event``, usually)."""
        ...

    def submit(self, request: OrderRequest) -> None:
        """Send a new order."""
        ...

    def cancel(self, account: int, symbol: str, client_order_id: int) -> None:
        """Cancel one order; answered by CANCELLED, or CANCEL_REJECTED if it is too late."""
        ...

    def modify(self, account: int, symbol: str, client_order_id: int, price: int, qty: int) -> None:
        """Cancel/replace: new price (ticks) and new *remaining* quantity (lots).

        The same price and a quantity not above the current remainder keep the queue
        position; anything else re-enters the order at the back of its new price.
        """
        ...

    def cancel_all(self, account: int, symbol: str | None = None) -> None:
        """Cancel every open order of ``account`` (in ``symbol`` only, if given)."""
        ...
