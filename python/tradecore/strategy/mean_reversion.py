"""Mean reversion on the z-score of the mid (Bollinger bands): fade moves away from the mean.

Owns: :class:`MeanReversionStrategy` (registry name ``"mean_reversion"``).

Rule: over the last ``window`` samples of the mid (including the newest; samples per book
update or per ``sample_ms``), ``z = (mid - mean) / std`` with the population standard deviation.
It is computed from exact integer sums: with ``n`` samples, ``S = sum(mid2)`` and ``Q =
sum(mid2**2)``, ``z = (n * mid2 - S) / sqrt(n * Q - S**2)`` (only the final division and
square root are floating point). The Bollinger band ``mean +- k * std`` is the same rule with
``k = entry_z``. ``z >= entry_z``: target ``-max_position`` (0 if ``allow_short`` is false);
``z <= -entry_z``: target ``+max_position``; ``|z| <= exit_z``: target 0 (flat); in between the
target is kept. Nothing happens until the window is full or while the mid has not moved in it
(std 0).

Cost: O(1) per sample (running integer sums), plus the order routine.
"""

from __future__ import annotations

import math

from tradecore.strategy.params import ParamReader
from tradecore.strategy.sampled import RollingWindow, SampledStrategy

__all__ = ["MeanReversionStrategy"]


class MeanReversionStrategy(SampledStrategy):
    """Z-score / Bollinger-band mean reversion on the mid.

    Parameters (besides the common ones): ``window`` (>= 2, default 50), ``entry_z`` (> 0,
    default 2.0), ``exit_z`` (>= 0 and < entry_z, default 0.5), ``sample_ms`` (>= 0).
    """

    kind = "mean_reversion"

    def __init__(self, name: str = "mean_reversion", **params: object) -> None:
        p = ParamReader(self.kind, name, params)
        symbol = self.read_common(p)
        self.read_sampling(p)
        self.window_size = p.integer("window", 50, ge=2, le=1_000_000)
        self.entry_z = p.number("entry_z", 2.0, gt=0.0, le=100.0)
        self.exit_z = p.number("exit_z", 0.5, ge=0.0)
        if self.exit_z >= self.entry_z:
            raise p.error(
                "exit_z", f"must be less than entry_z ({self.entry_z}), got {self.exit_z}"
            )
        p.finish()
        super().__init__(name, (symbol,))
        self._init_target(symbol)
        self.window = RollingWindow(self.window_size)
        self.z = 0.0

    def on_sample(self, mid2: int, bid: int, ask: int) -> None:
        w = self.window
        w.push(mid2)
        if not w.full:
            return
        n = w.count
        s = w.total
        var_n2 = n * w.total_sq - s * s  # n**2 * variance, exact
        if var_n2 <= 0:
            self.z = 0.0
            return
        z = (n * mid2 - s) / math.sqrt(var_n2)
        self.z = z
        if z >= self.entry_z:
            target = -self.max_position
        elif z <= -self.entry_z:
            target = self.max_position
        elif -self.exit_z <= z <= self.exit_z:
            target = 0
        else:
            target = self.target
        self.trade_toward(target, bid, ask)
