"""Market data: sources, books and replayers that feed the trading node and the checks.

For now: the LOBSTER replay (`tradecore.marketdata.lobster`), which rebuilds a NASDAQ day in
`tradecore.OrderBook` and checks it against LOBSTER's own book after every event.
"""

from tradecore.marketdata.lobster import (
    LobsterFiles,
    LobsterFormatError,
    LobsterReplay,
    ReplayError,
    ReplayResult,
    embedded_samples,
)

__all__ = [
    "LobsterFiles",
    "LobsterFormatError",
    "LobsterReplay",
    "ReplayError",
    "ReplayResult",
    "embedded_samples",
]
