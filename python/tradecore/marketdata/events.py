"""Market-data events as the trading node and the backtester see them.

Every source (the Binance adapter, a recorded file, the venue's UDP feed, a backtest loader)
turns its messages into these values, so strategies, the paper broker and the node never see a
source's own format. Prices are integer ticks and quantities integer lots of the symbol's
:class:`~tradecore.instrument.Instrument`. ``ts_ns`` is the source's event time (exchange time,
nanoseconds since the epoch); ``recv_ns`` is when the message was read off the socket or file
(``time.monotonic_ns()`` live, the simulated clock in a backtest): tick-to-trade is measured
from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

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
