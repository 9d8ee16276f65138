"""Exceptions of the market-data layer (Binance parsing, sync, simulator, recordings).

Each subclasses the built-in it refines, so ``except ValueError`` keeps working. Prices off the
tick grid and quantities off the lot grid raise :class:`tradecore.errors.OffGridError` (shared
with the rest of tradecore), not a class of this module.
"""

from __future__ import annotations

from tradecore.errors import TradecoreError

__all__ = ["FeedFormatError", "MarketDataError", "UnknownSymbolError"]


class MarketDataError(TradecoreError):
    """Base class of the market-data errors."""


class FeedFormatError(MarketDataError, ValueError):
    """A message, snapshot, recording line or decimal string does not parse.

    The message says what was wrong and where (the field, the level index, the line number).
    """


class UnknownSymbolError(MarketDataError, KeyError):
    """A message names a symbol the source was not configured for (or exchangeInfo lacks)."""

    def __str__(self) -> str:
        # KeyError's str() is the repr of its argument; show the message as written.
        return str(self.args[0]) if self.args else ""
