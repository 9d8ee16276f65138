"""Market-data events as the trading node and the backtester see them.

Every source (the Binance adapter, a recorded file, the venue's UDP feed, a backtest loader)
turns its messages into these values, so strategies, the paper broker and the node never see a
source's own format. Prices are integer ticks and quantities integer lots of the symbol's
:class:`~tradecore.instrument.Instrument`. ``ts_ns`` is the source's event time (exchange time,
nanoseconds since the epoch); ``recv_ns`` is when the message was read off the socket or file
(``time.monotonic_ns()`` live, the simulated clock in a backtest): tick-to-trade is measured
from it.

The event types are built once per market message (a backtest builds millions), so the hot ones
(:class:`BookUpdate`, :class:`TradeTick`, :class:`Quote`) get a generated ``__init__`` that
stores each field through its slot descriptor instead of the frozen dataclass ``__init__``
(which pays an ``object.__setattr__`` per field): the technique of
:mod:`tradecore.execution.types`. Signature, frozenness, equality, hashing, ``repr``,
``dataclasses.replace`` and pickling stay the dataclass's own
(``tests/unit/test_backtest_events.py``).
Cost: one Python call and one C-level slot store per field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from tradecore.enums import Side

__all__ = ["BookUpdate", "BookView", "MarketEvent", "Quote", "Resync", "TradeTick"]

Level = tuple[int, int]  # (price ticks, qty lots)


class BookView(Protocol):
    """Read access to an aggregated (L2) book; ``tradecore.L2Book`` satisfies it."""

    def best_bid(self) -> Level | None: ...

    def best_ask(self) -> Level | None: ...

    def depth(self, n: int = 10) -> tuple[list[Level], list[Level]]:
        """Top ``n`` levels of each side, best first: ``(bids, asks)``."""
        ...


@dataclass(frozen=True, slots=True)
class BookUpdate:
    """The L2 book of ``symbol`` changed: one whole depth message was applied.

    ``book`` is the live book, read it during the callback (it changes with the next event).
    ``update_id`` is the source's last update id (Binance ``u``).
    """

    symbol: str
    ts_ns: int
    recv_ns: int
    update_id: int
    book: BookView


@dataclass(frozen=True, slots=True)
class TradeTick:
    """One trade print (Binance aggTrade). ``aggressor`` is the side that took liquidity."""

    symbol: str
    ts_ns: int
    recv_ns: int
    price: int
    qty: int
    aggressor: Side
    trade_id: int


@dataclass(frozen=True, slots=True)
class Quote:
    """Best bid and offer (Binance bookTicker); runs ahead of the 100 ms depth diffs."""

    symbol: str
    ts_ns: int
    recv_ns: int
    update_id: int
    bid_price: int
    bid_qty: int
    ask_price: int
    ask_qty: int


@dataclass(frozen=True, slots=True)
class Resync:
    """The book of ``symbol`` was lost (gap, stale snapshot, disconnect) and is rebuilding.

    Strategies should treat the book as unknown until the next :class:`BookUpdate`.
    """

    symbol: str
    ts_ns: int
    recv_ns: int
    reason: str


MarketEvent = BookUpdate | TradeTick | Quote | Resync

_E = TypeVar("_E")


def _slot_init(cls: type[_E]) -> type[_E]:
    """Replace the ``__init__`` of a frozen, slotted dataclass by one that writes the slots.

    Refuses (at import time) any class it cannot treat the same way as the dataclass would:
    not frozen, no slots, a ``__post_init__``, a field that is not an init field, or a
    default factory. Plain defaults are kept as defaults.
    """
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__}: slot init is for frozen dataclasses with slots")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: slot init cannot run __post_init__")
    names: list[str] = []
    env: dict[str, Any] = {}
    lines: list[str] = []
    for i, f in enumerate(dataclasses.fields(cls)):  # type: ignore[arg-type]
        if not f.init or f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: slot init needs plain init fields")
        if f.default is dataclasses.MISSING:
            names.append(f.name)
        else:
            env[f"default_{i}"] = f.default
            names.append(f"{f.name}=default_{i}")
        env[f"store_{i}"] = cls.__dict__[f.name].__set__
        lines.append(f"    store_{i}(self, {f.name})")
    source = f"def __init__(self, {', '.join(names)}):\n" + "\n".join(lines) + "\n"
    made: dict[str, Callable[..., None]] = {}
    exec(source, env, made)
    init = made["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = cls.__init__.__doc__
    type.__setattr__(cls, "__init__", init)
    return cls


_slot_init(BookUpdate)
_slot_init(TradeTick)
_slot_init(Quote)
