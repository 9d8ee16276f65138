"""Order-book imbalance strategy: lean with the side that has more resting size.

Owns: :class:`ImbalanceStrategy` (registry name ``"imbalance"``), the seed design's phase-1
strategy (ADR-001: "rule-based imbalance strategy", imbalance features, threshold-based signal
generation with a confidence score).

Signal, on every book update of its symbol:

* ``I = imbalance_n`` over the best ``levels`` levels (see :mod:`tradecore.strategy.features`).
  ``I >= threshold`` is a buy signal, ``I <= -threshold`` a sell signal, otherwise no signal.
* ``strength = (|I| - threshold) / (1 - threshold)`` in [0, 1]: how far past the threshold.
* ``agreement = (1 + [depth_imbalance agrees] + [imbalance_1 agrees]) / 3``: whether the
  depth-weighted imbalance and the touch lean the same way ("agrees" = same strict sign).
* ``confidence = strength * agreement`` in [0, 1].

A signal with ``confidence >= min_confidence`` sets the target position to ``+max_position``
(buy) or ``-max_position`` (sell) and trades toward it (:class:`~tradecore.strategy.base.
TargetStrategy`), each order at most ``order_qty`` lots, or ``max(1, round(order_qty *
confidence))`` if ``scale_by_confidence``. Without a signal the target is unchanged. Books
wider than ``max_spread_ticks`` (0 = no limit) are skipped.

Cost: one :class:`~tradecore.strategy.features.BookFeatures` update plus a few comparisons per
book update; an order costs one context submit (measured in bench/bench_strategy.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from tradecore.marketdata.events import BookUpdate, Resync
from tradecore.strategy.base import TargetStrategy
from tradecore.strategy.features import BookFeatures
from tradecore.strategy.params import ParamReader

__all__ = ["ImbalanceStrategy"]


class ImbalanceStrategy(TargetStrategy):
    """Order-book imbalance with a threshold and a confidence score.

    Parameters (besides the common ones of :class:`TargetStrategy`): ``levels`` (1..100,
    default 5), ``threshold`` (in (0, 1), default 0.3), ``min_confidence`` (in [0, 1), default
    0), ``depth_decay`` (in (0, 1], default 0.5), ``scale_by_confidence`` (default false),
    ``max_spread_ticks`` (>= 0, default 0 = no limit).
    """

    kind = "imbalance"

    def __init__(self, name: str = "imbalance", **params: object) -> None:
        p = ParamReader(self.kind, name, params)
        symbol = self.read_common(p)
        levels = p.integer("levels", 5, ge=1, le=100)
        self.threshold = p.number("threshold", 0.3, gt=0.0, lt=1.0)
        self.min_confidence = p.number("min_confidence", 0.0, ge=0.0, lt=1.0)
        depth_decay = p.number("depth_decay", 0.5, gt=0.0, le=1.0)
        self.scale_by_confidence = p.boolean("scale_by_confidence", False)
        self.max_spread_ticks = p.integer("max_spread_ticks", 0, ge=0)
        p.finish()
        super().__init__(name, (symbol,))
        self._init_target(symbol)
        self.features = BookFeatures(levels=levels, depth_decay=depth_decay, momentum_windows=())
        self.signal = 0  # +1 buy, -1 sell, 0 none (last update)
        self.confidence = 0.0
        self.signals = 0  # updates with a signal at or above min_confidence

    def on_book(self, event: BookUpdate) -> None:
        if event.symbol != self.symbol:
            return
        # The update and the five values read below in one call (features.update_top).
        top = self.features.update_top(event.book)
        if top is None:
            return
        bid, ask, spread, imbalance_1, imb, depth_imbalance = top
        if self.max_spread_ticks and spread > self.max_spread_ticks:
            self.signal = 0
            return
        th = self.threshold
        if imb >= th:
            d = 1
            strength = (imb - th) / (1.0 - th)
        elif imb <= -th:
            d = -1
            strength = (-imb - th) / (1.0 - th)
        else:
            self.signal = 0
            self.confidence = 0.0
            return
        agree = 1 + (depth_imbalance * d > 0.0) + (imbalance_1 * d > 0.0)
        conf = strength * agree / 3.0
        self.signal = d
        self.confidence = conf
        if conf < self.min_confidence:
            return
        self.signals += 1
        cap = self.order_qty
        if self.scale_by_confidence:
            cap = max(1, round(cap * conf))
        self.trade_toward(d * self.max_position, bid, ask, cap)

    def on_resync(self, event: Resync) -> None:
        if event.symbol == self.symbol:
            self.features.reset()
            self.signal = 0

    def state(self) -> dict[str, object]:
        return {"target": self.target, "signals": self.signals}

    def restore(self, state: Mapping[str, object]) -> None:
        super().restore(state)
        signals = state.get("signals", 0)
        if isinstance(signals, int) and not isinstance(signals, bool):
            self.signals = signals
