"""Latency recording in nanoseconds with an HdrHistogram (the ``hdrhistogram`` package, ``hdrh``).

:class:`LatencyRecorder` wraps one histogram: values are whole nanoseconds, kept to three
significant figures (so every percentile is within 0.1% of the exact value) between 0 and
``highest_ns`` (default one minute). A value above that range is recorded as ``highest_ns`` and
counted in :attr:`LatencyRecorder.saturated`, never dropped silently; the exact largest value
seen is kept beside the histogram, so ``max`` is exact. Negative values raise ``ValueError``.

:func:`LatencyRecorder.record_many` takes a whole array of timings and records each distinct
value once with its count, so a run can store raw ``perf_counter_ns`` differences in a list and
fill the histogram after the timed loop, keeping the recorder's own cost out of the figures.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
from hdrh.histogram import HdrHistogram

__all__ = ["PERCENTILES", "LatencyRecorder", "LatencySummary", "format_ns", "summarize_ns"]

#: The percentiles every summary reports, besides the maximum.
PERCENTILES: tuple[float, ...] = (50.0, 90.0, 99.0, 99.9)

_DEFAULT_HIGHEST_NS = 60 * 1_000_000_000


@dataclass(frozen=True)
class LatencySummary:
    """Percentiles of one set of timings, in nanoseconds (integers)."""

    count: int
    p50: int
    p90: int
    p99: int
    p999: int
    max: int
    mean: int
    saturated: int = 0

    def as_dict(self) -> dict[str, int]:
        """The figures as a plain dict (JSON-ready)."""
        return asdict(self)

    def format(self) -> str:
        """One line: ``p50 ... p90 ... p99 ... p99.9 ... max ...`` with readable units."""
        parts = [
            f"p50 {format_ns(self.p50)}",
            f"p90 {format_ns(self.p90)}",
            f"p99 {format_ns(self.p99)}",
            f"p99.9 {format_ns(self.p999)}",
            f"max {format_ns(self.max)}",
        ]
        text = "  ".join(parts) + f"  (n={self.count:,})"
        if self.saturated:
            text += f"  [{self.saturated:,} above the histogram range]"
        return text


class LatencyRecorder:
    """An HdrHistogram of nanosecond timings with an exact maximum and a saturation count."""

    def __init__(self, highest_ns: int = _DEFAULT_HIGHEST_NS, significant_figures: int = 3) -> None:
        if isinstance(highest_ns, bool) or not isinstance(highest_ns, int):
            raise TypeError(f"highest_ns must be an int, got {type(highest_ns).__name__}")
        if highest_ns < 2:
            raise ValueError(f"highest_ns must be >= 2, got {highest_ns}")
        if not 1 <= significant_figures <= 5:
            raise ValueError(f"significant_figures must be in 1..5, got {significant_figures}")
        self.highest_ns = highest_ns
        self._hist = HdrHistogram(1, highest_ns, significant_figures)
        self._max = 0
        self.saturated = 0

    @property
    def count(self) -> int:
        """How many values were recorded."""
        return int(self._hist.get_total_count())

    def record(self, ns: int, count: int = 1) -> None:
        """Record one timing ``count`` times."""
        if isinstance(ns, bool) or not isinstance(ns, int | np.integer):
            raise TypeError(f"ns must be an int, got {type(ns).__name__}")
        value = int(ns)
        if value < 0:
            raise ValueError(f"ns must be >= 0, got {value}")
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        self._max = max(self._max, value)
        if value > self.highest_ns:
            self.saturated += count
            value = self.highest_ns
        if not self._hist.record_value(value, count):
            raise ValueError(f"value {value} ns could not be recorded")  # pragma: no cover

    def record_many(self, values: Iterable[int] | np.ndarray) -> None:
        """Record every timing of ``values`` (a sequence or an integer numpy array)."""
        arr = np.asarray(values if isinstance(values, np.ndarray) else list(values))
        if arr.size == 0:
            return
        if arr.dtype.kind not in "iu":
            raise TypeError(f"values must be integers (ns), got dtype {arr.dtype}")
        distinct, counts = np.unique(arr, return_counts=True)
        if int(distinct[0]) < 0:
            raise ValueError(f"ns must be >= 0, got {int(distinct[0])}")
        for value, count in zip(distinct.tolist(), counts.tolist(), strict=True):
            self.record(value, count)

    def value_at(self, percentile: float) -> int:
        """The value at ``percentile`` (0..100), within the histogram's precision."""
        if not 0.0 <= percentile <= 100.0:
            raise ValueError(f"percentile must be in 0..100, got {percentile}")
        if percentile == 100.0:
            return self._max
        return min(int(self._hist.get_value_at_percentile(percentile)), self._max)

    def summary(self) -> LatencySummary:
        """p50/p90/p99/p99.9/max/mean of what was recorded; ``ValueError`` if nothing was."""
        if self.count == 0:
            raise ValueError("no values recorded")
        p50, p90, p99, p999 = (self.value_at(p) for p in PERCENTILES)
        return LatencySummary(
            count=self.count,
            p50=p50,
            p90=p90,
            p99=p99,
            p999=p999,
            max=self._max,
            mean=round(float(self._hist.get_mean_value())),
            saturated=self.saturated,
        )


def summarize_ns(values: Iterable[int] | np.ndarray) -> LatencySummary:
    """Record ``values`` (nanoseconds) into a fresh recorder and summarize them."""
    rec = LatencyRecorder()
    rec.record_many(values)
    return rec.summary()


def format_ns(ns: int | float) -> str:
    """A duration in nanoseconds as short readable text: ``850 ns``, ``1.25 us``, ``3.40 ms``."""
    if ns < 1_000:
        return f"{ns:,.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1_000:,.2f} us"
    if ns < 1_000_000_000:
        return f"{ns / 1_000_000:,.2f} ms"
    return f"{ns / 1_000_000_000:,.2f} s"
