"""Execution: order manager, paper broker with fill models, positions and P&L."""

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
    "Fill",
    "Liquidity",
    "Order",
    "OrderEvent",
    "OrderEventKind",
    "OrderRequest",
    "OrderStatus",
]
