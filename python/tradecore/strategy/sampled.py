"""Mid-price sampling shared by the bar-style built-ins (moving-average cross, mean reversion).

Owns: :class:`SampledStrategy`, a :class:`~tradecore.strategy.base.TargetStrategy` that feeds
``on_sample(mid2, bid, ask)`` either on every book update (``sample_ms = 0``, the default) or
on a node timer every ``sample_ms`` milliseconds (then it reads ``ctx.book(symbol)``, and a
book that is not synced gives no sample). ``mid2`` is ``bid + ask`` in ticks (twice the mid,
exact). :class:`RollingWindow` keeps the last ``n`` samples with exact integer running sums.

Invariants: samples come only from books with both sides present.

Cost: two best-price reads per sample; O(1) per sample in :class:`RollingWindow`.
"""

from __future__ import annotations

from tradecore.marketdata.events import BookUpdate
from tradecore.strategy.base import TargetStrategy
from tradecore.strategy.params import ParamReader

__all__ = ["RollingWindow", "SampledStrategy"]


class RollingWindow:
    """The last ``size`` integer samples with their exact sum and sum of squares."""

    __slots__ = ("_pos", "count", "ring", "size", "total", "total_sq")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size = size
        self.ring = [0] * size
        self._pos = 0
        self.count = 0  # samples seen, capped at size
        self.total = 0
        self.total_sq = 0

    def push(self, x: int) -> None:
        pos = self._pos
        if self.count == self.size:
            old = self.ring[pos]
            self.total -= old
            self.total_sq -= old * old
        else:
            self.count += 1
        self.ring[pos] = x
        self.total += x
        self.total_sq += x * x
        self._pos = (pos + 1) % self.size

    def ago(self, k: int) -> int:
        """The sample pushed ``k`` pushes ago (0 = the newest); ``k < count``."""
        return self.ring[(self._pos - 1 - k) % self.size]

    @property
    def full(self) -> bool:
        return self.count == self.size


class SampledStrategy(TargetStrategy):
    """Feeds :meth:`on_sample` per book update or per ``sample_ms`` timer tick."""

    def read_sampling(self, p: ParamReader) -> None:
        self.sample_ns = p.integer("sample_ms", 0, ge=0) * 1_000_000

    @property
    def timer_name(self) -> str:
        return f"{self.name}:sample"

    def on_start(self) -> None:
        if self.sample_ns:
            self.ctx.set_timer(self.timer_name, self.sample_ns)

    def on_book(self, event: BookUpdate) -> None:
        if self.sample_ns or event.symbol != self.symbol:
            return
        book = event.book
        bb = book.best_bid()
        ba = book.best_ask()
        if bb is not None and ba is not None:
            self.on_sample(bb[0] + ba[0], bb[0], ba[0])

    def on_timer(self, name: str, now_ns: int) -> None:
        if name != self.timer_name:
            return
        book = self.ctx.book(self.symbol)
        if book is None:
            return
        bb = book.best_bid()
        ba = book.best_ask()
        if bb is not None and ba is not None:
            self.on_sample(bb[0] + ba[0], bb[0], ba[0])

    def on_sample(self, mid2: int, bid: int, ask: int) -> None:
        """One sample of the mid (``mid2 = bid + ask``); subclasses decide here."""
        raise NotImplementedError
