"""The trading node's shared vocabulary: order requests, orders, order events and fills.

Every layer of the node speaks these types: strategies build :class:`OrderRequest` through
their context, risk checks them, the order manager tracks :class:`Order` objects, execution
clients (the paper broker, the venue client) answer with :class:`OrderEvent` values, and the
portfolio and the store consume :class:`Fill`. Prices are integer ticks and quantities integer
lots of the symbol's :class:`~tradecore.instrument.Instrument`; money (fees, P&L, notional) is
``decimal.Decimal`` in the quote currency. No binary floats anywhere.

The frozen value types (:class:`OrderRequest`, :class:`OrderEvent`, :class:`Fill`) are built on
every order and every report, so their ``__init__`` is the fast one of
:func:`tradecore.marketdata.events.fast_frozen_init` (about three times as fast as the frozen
dataclass's; same signature, defaults, frozenness, equality, hashing, ``repr``, ``replace`` and
pickling).

Building on the per-order path. The paper broker and the order manager build an
:class:`OrderEvent` per report, a :class:`Fill` per fill and an :class:`Order` per order
without calling the class (in CPython 3.11 calling a class with a Python ``__init__`` goes
through ``type.__call__`` and a fresh interpreter entry), with the private builders below.
``_RequestSlots``, ``_EventSlots`` and ``_FillSlots`` are plain classes with the very slots of
``OrderRequest``, ``OrderEvent`` and ``Fill`` (no ``__init__``, no ``__setattr__``): the caller
creates one, stores every field with plain slot stores and then switches it to the frozen
class (``obj.__class__ = OrderEvent``). ``_new_order(Order)`` is ``object.__new__``, after
which the caller stores every slot of the order. What comes out is an ordinary instance of
the public class, equal to the one the constructor builds, with the same ``repr``, hash and
pickle (tests/unit/test_execution_fast_paths.py compares them, and the code paths using
them with the previous code, on random input). About 150 ns less per object; a caller that
forgets a field leaves the slot empty (reading it raises AttributeError), so each builder
site sets all of them, in field order.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

from tradecore.enums import OrderType, Side, TimeInForce
from tradecore.marketdata.events import fast_frozen_init

__all__ = [
    "Fill",
    "Liquidity",
    "Order",
    "OrderEvent",
    "OrderEventKind",
    "OrderRequest",
    "OrderStatus",
]


class OrderStatus(enum.StrEnum):
    """Life cycle of an order in the node (the order manager's state machine)."""

    NEW = "NEW"  # sent to the execution client, not acknowledged yet
    ACKNOWLEDGED = "ACKNOWLEDGED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"

    @property
    def is_open(self) -> bool:
        """True while the order can still trade (NEW, ACKNOWLEDGED, PARTIALLY_FILLED)."""
        return self in _OPEN_STATUSES


_OPEN_STATUSES = frozenset(
    (OrderStatus.NEW, OrderStatus.ACKNOWLEDGED, OrderStatus.PARTIALLY_FILLED)
)


class OrderEventKind(enum.StrEnum):
    """What an execution client reports about one order (the venue's report kinds)."""

    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    FILL = "FILL"
    CANCELLED = "CANCELLED"
    REPLACED = "REPLACED"
    EXPIRED = "EXPIRED"
    # A cancel or modify that could not be applied (the order had already filled, been
    # cancelled, or was unknown); the order itself is unchanged.
    CANCEL_REJECTED = "CANCEL_REJECTED"


class Liquidity(enum.StrEnum):
    """Whether a fill added liquidity (MAKER, passive) or took it (TAKER, aggressive)."""

    MAKER = "MAKER"
    TAKER = "TAKER"


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An order as a strategy asks for it, before risk and before any execution client.

    ``price`` is in ticks (0 for MARKET), ``qty`` in lots (> 0). ``client_order_id`` is unique
    per account for the node's lifetime; the order manager assigns it.
    """

    account: int
    client_order_id: int
    symbol: str
    side: Side
    qty: int
    price: int = 0
    order_type: OrderType = OrderType.LIMIT
    tif: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    ts_ns: int = 0
    strategy: str = ""
    tag: str = ""


@dataclass(slots=True)
class Order:
    """The order manager's live view of one order."""

    request: OrderRequest
    status: OrderStatus = OrderStatus.NEW
    price: int = 0  # current price (changes with REPLACED)
    qty: int = 0  # current total quantity (original, or the replaced quantity + filled)
    filled_qty: int = 0
    leaves: int = 0
    notional_filled: int = 0  # sum of fill price * fill qty, in tick-lots
    venue_order_id: int = 0
    reason: str = ""  # reject or cancel reason, empty otherwise
    created_ns: int = 0
    updated_ns: int = 0
    events: list[OrderEvent] = field(default_factory=list)
    pending_cancel: bool = False  # a cancel was sent and not answered yet
    pending_replace: bool = False  # a modify was sent and not answered yet

    @property
    def client_order_id(self) -> int:
        return self.request.client_order_id

    @property
    def account(self) -> int:
        return self.request.account

    @property
    def symbol(self) -> str:
        return self.request.symbol

    @property
    def side(self) -> Side:
        return self.request.side

    @property
    def is_open(self) -> bool:
        return self.status.is_open


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One report from an execution client about one order of one account.

    Fields follow the venue's ExecutionReport (docs/protocol.md): for ACCEPTED ``qty`` is the
    order quantity; for FILL ``price``/``qty`` are the trade's and ``leaves`` the remainder; for
    CANCELLED/EXPIRED ``qty`` is the quantity taken off; for REPLACED the new price and
    remaining quantity; for REJECTED the request's values and a ``reason``; for CANCEL_REJECTED
    the refused cancel/modify (``qty``/``leaves`` 0, ``reason`` why). ``fee`` is the
    fee of a FILL in quote currency (negative = rebate). ``event_id`` is unique per execution
    client and lets the order manager drop duplicates.
    """

    kind: OrderEventKind
    account: int
    client_order_id: int
    symbol: str
    side: Side
    price: int
    qty: int
    leaves: int
    ts_ns: int
    event_id: int
    reason: str = ""
    liquidity: Liquidity | None = None
    fee: Decimal = Decimal(0)
    venue_order_id: int = 0


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of one of our orders (derived from a FILL event)."""

    account: int
    symbol: str
    client_order_id: int
    side: Side
    price: int
    qty: int
    liquidity: Liquidity
    fee: Decimal
    ts_ns: int
    fill_id: int
    strategy: str = ""


for _cls in (OrderRequest, OrderEvent, Fill):
    fast_frozen_init(_cls)
del _cls


def _slots_twin(cls: type) -> type:
    """A plain class with the slots of ``cls`` (same names, same order, base ``object``): an
    instance of it can be switched to ``cls`` by assigning ``__class__`` (module doc)."""
    slots = tuple(cls.__dict__["__slots__"])
    if slots != tuple(f.name for f in fields(cls)) or cls.__bases__ != (object,):
        raise TypeError(f"{cls.__name__}: the builder needs one slot per field and base object")
    return type(f"_{cls.__name__}Slots", (), {"__slots__": slots, "__module__": __name__})


_RequestSlots: Any = _slots_twin(OrderRequest)
_EventSlots: Any = _slots_twin(OrderEvent)
_FillSlots: Any = _slots_twin(Fill)
_new_order = object.__new__  # ``_new_order(Order)``: an Order with no slot set yet
