"""tradecore: a Rust limit order book and matching engine, driven from Python.

The names below are the public API of the matching core; the compiled module
``tradecore._core`` is private and re-exported here.

>>> from tradecore import OrderBook, Side
>>> book = OrderBook(capacity=1_000)
>>> [e.kind for e in book.submit(1, 7, Side.BUY, 15005, 100)]
[<EventKind.ACCEPTED: 'ACCEPTED'>]
"""

from tradecore import errors
from tradecore._core import (
    EVENT_DTYPE,
    OP_CANCEL,
    OP_DTYPE,
    OP_MODIFY,
    OP_SUBMIT,
    Event,
    L2Book,
    OrderBook,
)
from tradecore.enums import EventKind, OrderType, Reason, Side, Stp, TimeInForce
from tradecore.errors import (
    InternalError,
    InvariantError,
    OffGridError,
    TradecoreError,
)
from tradecore.instrument import Instrument

__version__ = "0.1.0"

__all__ = [
    "EVENT_DTYPE",
    "OP_CANCEL",
    "OP_DTYPE",
    "OP_MODIFY",
    "OP_SUBMIT",
    "Event",
    "EventKind",
    "Instrument",
    "InternalError",
    "InvariantError",
    "L2Book",
    "OffGridError",
    "OrderBook",
    "OrderType",
    "Reason",
    "Side",
    "Stp",
    "TimeInForce",
    "TradecoreError",
    "__version__",
    "errors",
]
