"""Execution: order manager, execution clients (the paper broker), positions and P&L.

- :class:`OrderManager` tracks every order through its state machine and tells listeners.
- :class:`ExecutionClient` is what the node talks to; :class:`PaperBroker` implements it
  against the live L2 books with a queue-position model, latency and fees.
- :class:`Portfolio` keeps positions, cash and P&L per account and symbol, exactly.
"""

from tradecore.execution.client import EventSink, ExecutionClient
from tradecore.execution.orders import (
    DuplicateOrderError,
    FillListener,
    OrderListener,
    OrderManager,
    OrderManagerStats,
    UnknownOrderError,
)
from tradecore.execution.paper import (
    CancelModel,
    LatencyModel,
    PaperBroker,
    PaperBrokerConfig,
    PaperBrokerStats,
)
from tradecore.execution.portfolio import (
    AccountView,
    EquitySample,
    Portfolio,
    PositionRecord,
    PositionView,
)
from tradecore.execution.simbook import DictL2Book
from tradecore.execution.types import (
    Fill,
    Liquidity,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderRequest,
    OrderStatus,
)

__all__ = [
    "AccountView",
    "CancelModel",
    "DictL2Book",
    "DuplicateOrderError",
    "EquitySample",
    "EventSink",
    "ExecutionClient",
    "Fill",
    "FillListener",
    "LatencyModel",
    "Liquidity",
    "Order",
    "OrderEvent",
    "OrderEventKind",
    "OrderListener",
    "OrderManager",
    "OrderManagerStats",
    "OrderRequest",
    "OrderStatus",
    "PaperBroker",
    "PaperBrokerConfig",
    "PaperBrokerStats",
    "Portfolio",
    "PositionRecord",
    "PositionView",
    "UnknownOrderError",
]
