"""Market data: sources, books and replayers that feed the trading node and the checks.

* :mod:`~tradecore.marketdata.events`: the event vocabulary every source produces
  (``BookUpdate``, ``TradeTick``, ``Quote``, ``Resync``) and the ``BookView`` protocol.
* :mod:`~tradecore.marketdata.binance`: Binance spot payloads (exchangeInfo -> instruments,
  depth snapshots, aggTrade, bookTicker, depthUpdate).
* :mod:`~tradecore.marketdata.sync`: the L2 sync state machine (``BookSync``) and ``FeedCore``,
  the sans-IO message core shared by the live adapter and the recorded source.
* :mod:`~tradecore.marketdata.adapter`: ``BinanceAdapter``, async (websockets + httpx),
  reconnecting; the real exchange only with ``live=True``.
* :mod:`~tradecore.marketdata.replay`: ``ReplayServer`` (a local Binance simulator on loopback
  with fault injection) and ``RecordedSource`` (the same events in process, no sockets).
* :mod:`~tradecore.marketdata.recorder`: ``Recorder`` (gzip JSON lines with receive times) and
  the readers of our recordings and cryptofeed's.
* :mod:`~tradecore.marketdata.lobster`: the LOBSTER replay, which rebuilds a NASDAQ day in
  ``tradecore.OrderBook`` and checks it against LOBSTER's own book after every event.
"""

from tradecore.marketdata.adapter import BinanceAdapter
from tradecore.marketdata.binance import instruments_from_exchange_info
from tradecore.marketdata.errors import FeedFormatError, MarketDataError, UnknownSymbolError
from tradecore.marketdata.events import BookUpdate, BookView, MarketEvent, Quote, Resync, TradeTick
from tradecore.marketdata.lobster import (
    LobsterFiles,
    LobsterFormatError,
    LobsterReplay,
    ReplayError,
    ReplayResult,
    embedded_samples,
)
from tradecore.marketdata.recorder import (
    Recorder,
    Recording,
    load_cryptofeed,
    load_recording,
    read_records,
)
from tradecore.marketdata.replay import RecordedSource, ReplayServer, load_any
from tradecore.marketdata.sync import BookSync, FeedCore, FeedStats, SyncState

__all__ = [
    "BinanceAdapter",
    "BookSync",
    "BookUpdate",
    "BookView",
    "FeedCore",
    "FeedFormatError",
    "FeedStats",
    "LobsterFiles",
    "LobsterFormatError",
    "LobsterReplay",
    "MarketDataError",
    "MarketEvent",
    "Quote",
    "RecordedSource",
    "Recorder",
    "Recording",
    "ReplayError",
    "ReplayResult",
    "ReplayServer",
    "Resync",
    "SyncState",
    "TradeTick",
    "UnknownSymbolError",
    "embedded_samples",
    "instruments_from_exchange_info",
    "load_any",
    "load_cryptofeed",
    "load_recording",
    "read_records",
]
