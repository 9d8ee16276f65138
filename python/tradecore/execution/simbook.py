"""A small pure-Python L2 book (price -> quantity per side) that satisfies ``BookView``.

Owns: two dicts of absolute level quantities. It exists so the paper broker can be driven
without the compiled market-data book: hand-worked tests, benchmarks, and any source that
already has whole levels. ``set(side, price, qty)`` makes a level's quantity ``qty`` (0 removes
it), like the Rust ``L2Book``. Invariants: quantities > 0; prices unique per side (dict keys).
Cost: ``qty_at`` and ``best_*`` O(1); ``set`` O(log levels) plus a list memmove when a level
appears or disappears; ``depth(n)`` O(n).
"""

from __future__ import annotations

from bisect import bisect_left, insort

from tradecore.enums import Side

__all__ = ["DictL2Book"]


class DictL2Book:
    """Aggregated levels: ``qty_at``, ``best_bid``, ``best_ask``, ``depth``, ``set``.

    Quantities live in one dict per side; the prices of each side are also kept in a list
    sorted best last (bids ascending, asks as negated prices ascending), so the best level is
    the list's last item and ``depth(n)`` is a slice.
    """

    __slots__ = ("_ask_keys", "_asks", "_bid_keys", "_bids")

    def __init__(
        self,
        bids: dict[int, int] | None = None,
        asks: dict[int, int] | None = None,
    ) -> None:
        self._bids: dict[int, int] = {}
        self._asks: dict[int, int] = {}
        self._bid_keys: list[int] = []  # bid prices, ascending (best last)
        self._ask_keys: list[int] = []  # negated ask prices, ascending (best last)
        for p, q in (bids or {}).items():
            self.set(Side.BUY, p, q)
        for p, q in (asks or {}).items():
            self.set(Side.SELL, p, q)

    def set(self, side: Side, price: int, qty: int) -> None:
        """Make the level's quantity ``qty`` lots; 0 removes it."""
        if qty < 0:
            raise ValueError(f"level quantity must be >= 0, got {qty} at price {price}")
        if side is Side.BUY:
            levels, keys, key = self._bids, self._bid_keys, price
        else:
            levels, keys, key = self._asks, self._ask_keys, -price
        if qty == 0:
            if levels.pop(price, None) is not None:
                del keys[bisect_left(keys, key)]
        else:
            if price not in levels:
                insort(keys, key)
            levels[price] = qty

    def qty_at(self, side: Side, price: int) -> int:
        """Quantity at ``price`` on ``side`` (0 if no level)."""
        return (self._bids if side is Side.BUY else self._asks).get(price, 0)

    def best_bid(self) -> tuple[int, int] | None:
        """Highest bid ``(price, qty)`` or None."""
        if not self._bid_keys:
            return None
        p = self._bid_keys[-1]
        return p, self._bids[p]

    def best_ask(self) -> tuple[int, int] | None:
        """Lowest ask ``(price, qty)`` or None."""
        if not self._ask_keys:
            return None
        p = -self._ask_keys[-1]
        return p, self._asks[p]

    def depth(self, n: int = 10) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Top ``n`` levels of each side, best first."""
        bids = self._bids
        asks = self._asks
        bk = self._bid_keys
        ak = self._ask_keys
        return (
            [(p, bids[p]) for p in reversed(bk[-n:])] if n > 0 else [],
            [(-k, asks[-k]) for k in reversed(ak[-n:])] if n > 0 else [],
        )
