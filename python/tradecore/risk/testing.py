"""In-memory :class:`~tradecore.risk.engine.RiskState` views for tests and benchmarks.

Owns: :class:`InMemoryRiskState`, plain dictionaries the test sets directly (positions, open
quantities per side, open order counts, best bid/ask, equity), and
:class:`InMemoryPretradeState`, the same with the optional one-call
:meth:`~tradecore.risk.engine.PretradeState.pretrade` (derived from the same dictionaries, so
the engine's one-call fast path and its complete check read the same figures). The node's
real adapter reads its portfolio and order manager instead; these exist so risk logic can be
tested on its own, with every input under the test's control.

Cost: dictionary lookups.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from tradecore.enums import Side

__all__ = ["InMemoryPretradeState", "InMemoryRiskState"]


class InMemoryRiskState:
    """Settable state: ``pos[(account, symbol)]``, ``open[(account, symbol, side)]``, ..."""

    def __init__(self) -> None:
        self.pos: dict[tuple[int, str], int] = {}
        self.open: dict[tuple[int, str, Side], int] = {}
        self.open_count: dict[int, int] = {}
        self.bba: dict[str, tuple[int, int]] = {}
        self.equities: dict[int, Decimal] = {}

    def position(self, account: int, symbol: str) -> int:
        return self.pos.get((account, symbol), 0)

    def positions(self, account: int) -> Mapping[str, int]:
        return {s: q for (a, s), q in self.pos.items() if a == account}

    def open_qty(self, account: int, symbol: str, side: Side) -> int:
        return self.open.get((account, symbol, side), 0)

    def open_order_count(self, account: int) -> int:
        return self.open_count.get(account, 0)

    def best_bid_ask(self, symbol: str) -> tuple[int, int] | None:
        return self.bba.get(symbol)

    def equity(self, account: int) -> Decimal:
        return self.equities.get(account, Decimal(0))


class InMemoryPretradeState(InMemoryRiskState):
    """:class:`InMemoryRiskState` plus ``pretrade`` (the :class:`PretradeState` protocol).

    ``share(other)`` makes it read ``other``'s dictionaries (one state, two views)."""

    def share(self, other: InMemoryRiskState) -> None:
        self.pos = other.pos
        self.open = other.open
        self.open_count = other.open_count
        self.bba = other.bba
        self.equities = other.equities

    def pretrade(
        self, account: int, symbol: str, side: Side
    ) -> tuple[int, int, int, int, int] | None:
        bba = self.bba.get(symbol)
        if bba is None:
            return None
        return (
            bba[0],
            bba[1],
            self.pos.get((account, symbol), 0),
            self.open.get((account, symbol, side), 0),
            self.open_count.get(account, 0),
        )
