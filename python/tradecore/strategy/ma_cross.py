"""Moving-average cross ("golden cross"): long when the fast average crosses above the slow.

Owns: :class:`MaCrossStrategy` (registry name ``"ma_cross"``).

Rule: simple moving averages of the mid over the last ``fast`` and ``slow`` samples
(``fast < slow``; samples per book update or per ``sample_ms``, see
:mod:`tradecore.strategy.sampled`). The comparison is exact: ``fast_sum * slow`` against
``slow_sum * fast`` in integers, so two equal averages are never split by rounding. Once
``slow`` samples exist, the sign of ``fast - slow`` is tracked (an exact tie keeps the last
sign). A change to positive is a golden cross: target ``+max_position``; a change to negative
is a death cross: target ``-max_position`` (0 if ``allow_short`` is false). The regime found
when the window first fills is not a cross and trades nothing. Between crosses the strategy
keeps trading toward the current target (an IOC may fill partly).

Cost: O(1) per sample (running integer sums), plus the order routine.
"""

from __future__ import annotations

from collections.abc import Mapping

from tradecore.strategy.params import ParamReader
from tradecore.strategy.sampled import RollingWindow, SampledStrategy

__all__ = ["MaCrossStrategy"]


class MaCrossStrategy(SampledStrategy):
    """Golden / death cross of two simple moving averages of the mid.

    Parameters (besides the common ones): ``fast`` (>= 1, default 10), ``slow`` (> fast,
    default 50), ``sample_ms`` (>= 0, default 0 = every book update).
    """

    kind = "ma_cross"

    def __init__(self, name: str = "ma_cross", **params: object) -> None:
        p = ParamReader(self.kind, name, params)
        symbol = self.read_common(p)
        self.read_sampling(p)
        self.fast = p.integer("fast", 10, ge=1, le=1_000_000)
        self.slow = p.integer("slow", 50, ge=2, le=1_000_000)
        if self.slow <= self.fast:
            raise p.error("slow", f"must be greater than fast ({self.fast}), got {self.slow}")
        p.finish()
        super().__init__(name, (symbol,))
        self._init_target(symbol)
        self.window = RollingWindow(self.slow)
        self.fast_sum = 0
        self.regime = 0  # sign of fast - slow (last nonzero), 0 before the window fills
        self.crosses = 0

    def on_sample(self, mid2: int, bid: int, ask: int) -> None:
        w = self.window
        fast = self.fast
        if w.count >= fast:
            self.fast_sum -= w.ago(fast - 1)
        w.push(mid2)
        self.fast_sum += mid2
        if not w.full:
            return
        diff = self.fast_sum * self.slow - w.total * fast
        sign = (diff > 0) - (diff < 0)
        if sign and sign != self.regime:
            if self.regime:
                self.crosses += 1
                self.target = self.max_position if sign > 0 else -self.max_position
            self.regime = sign
        if self.regime and self.crosses:
            self.trade_toward(self.target, bid, ask)

    @property
    def fast_ma(self) -> float:
        """The fast average of the mid, in ticks."""
        return self.fast_sum / min(self.fast, max(self.window.count, 1)) / 2

    @property
    def slow_ma(self) -> float:
        """The slow average of the mid, in ticks."""
        return self.window.total / max(self.window.count, 1) / 2

    def state(self) -> dict[str, object]:
        return {"target": self.target, "regime": self.regime, "crosses": self.crosses}

    def restore(self, state: Mapping[str, object]) -> None:
        super().restore(state)
        for key in ("regime", "crosses"):
            value = state.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(self, key, value)
