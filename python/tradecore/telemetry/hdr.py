"""Latency recording in nanoseconds with an HdrHistogram (the ``hdrhistogram`` package, ``hdrh``).

:class:`LatencyRecorder` wraps one histogram: values are whole nanoseconds, kept to three
significant figures (so every percentile is within 0.1% of the exact value) between 0 and
``highest_ns`` (default one minute). A value above that range is recorded as ``highest_ns`` and
counted in :attr:`LatencyRecorder.saturated`, never dropped silently; the exact largest value
seen is kept beside the histogram, so ``max`` is exact. Negative values raise ``ValueError``.

:func:`LatencyRecorder.record_many` takes a whole array of timings, so a run can store raw
``perf_counter_ns`` differences in a list and fill the histogram after the timed loop, keeping
the recorder's own cost out of the figures. It computes every value's bucket in numpy with the
histogram's own index rule (``hdrh``'s ``_counts_index_for``: bucket from the bit length of
``value | sub_bucket_mask``, sub-bucket from a shift) and adds the counts to the histogram's
counts array in one vectorized step, then updates its total, min and max as ``record_value``
does: the histogram ends up in exactly the state one ``record_value`` per value gives (a test
compares them on random values), at about 20 ns per value instead of ~3 us (pure-Python
``record_value``). Percentiles (:meth:`LatencyRecorder.value_at`) scan the cumulative counts in
numpy with ``hdrh``'s rank rule (``get_value_at_percentile``, the same value; tested), not the
histogram's Python loop over its ~27,000 counters.

Invariants: the ``hdrh`` histogram is the only state besides the exact maximum and the
saturation count; every path (``record``, ``record_many``) leaves it as ``hdrh`` would.
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

# Values (after clamping to ``highest_ns``) up to this are converted to float64 exactly, so
# ``np.frexp`` gives their bit length; a larger ``highest_ns`` takes the per-value path.
_EXACT_FLOAT_LIMIT = 2**53


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
        hist = self._hist
        # A numpy view of the histogram's own counters (a ctypes array: shared memory).
        self._counts: np.ndarray | None = None
        if highest_ns < _EXACT_FLOAT_LIMIT:
            view = np.ctypeslib.as_array(hist.counts)
            if view.shape == (hist.counts_len,) and view.dtype.kind in "iu":
                self._counts = view
        # hdrh's index rule (_get_bucket_index, _get_sub_bucket_index, _counts_index).
        self._mask = int(hist.sub_bucket_mask)
        self._unit_mag = int(hist.unit_magnitude)
        self._half_mag = int(hist.sub_bucket_half_count_magnitude)
        self._half = int(hist.sub_bucket_half_count)

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
        """Record every timing of ``values`` (a sequence or an integer numpy array).

        The same histogram as :meth:`record` once per value, computed in bulk (module doc).
        """
        arr = np.asarray(values if isinstance(values, np.ndarray) else list(values))
        if arr.size == 0:
            return
        if arr.dtype.kind not in "iu":
            raise TypeError(f"values must be integers (ns), got dtype {arr.dtype}")
        arr = arr.ravel()
        low = int(arr.min())
        if low < 0:
            raise ValueError(f"ns must be >= 0, got {low}")
        counts = self._counts
        if counts is None:
            self._record_each(arr)
            return
        high = int(arr.max())
        highest = self.highest_ns
        if high > highest:
            self.saturated += int(np.count_nonzero(arr > highest))
            clamped = np.minimum(arr, highest).astype(np.int64)
        else:
            clamped = arr.astype(np.int64, copy=False)
        # hdrh: bucket = bit_length(v | mask) - unit_magnitude - (half_count_magnitude + 1);
        # sub = v >> (bucket + unit_magnitude); index = ((bucket + 1) << half_mag) + sub - half.
        _, bits = np.frexp((clamped | self._mask).astype(np.float64))
        bucket = bits.astype(np.int64) - (self._unit_mag + self._half_mag + 1)
        sub = clamped >> (bucket + self._unit_mag)
        index = ((bucket + 1) << self._half_mag) + sub - self._half
        hist = self._hist
        if int(index.min()) < 0 or int(index.max()) >= hist.counts_len:
            raise ValueError("values could not be recorded")  # pragma: no cover
        counts += np.bincount(index, minlength=hist.counts_len).astype(counts.dtype, copy=False)
        hist.total_count += int(arr.size)
        hist.min_value = min(hist.min_value, min(low, highest))
        hist.max_value = max(hist.max_value, min(high, highest))
        self._max = max(self._max, high)

    def _record_each(self, arr: np.ndarray) -> None:
        """:meth:`record_many` one distinct value at a time (a ``highest_ns`` beyond 2**53)."""
        distinct, counts = np.unique(arr, return_counts=True)
        for value, count in zip(distinct.tolist(), counts.tolist(), strict=True):
            self.record(value, count)

    def value_at(self, percentile: float) -> int:
        """The value at ``percentile`` (0..100), within the histogram's precision."""
        if not 0.0 <= percentile <= 100.0:
            raise ValueError(f"percentile must be in 0..100, got {percentile}")
        if percentile == 100.0:
            return self._max
        return min(self._value_at_percentile(percentile), self._max)

    def _value_at_percentile(self, percentile: float) -> int:
        """``hdrh``'s ``get_value_at_percentile``: the first counter at which the running
        total reaches the target count, found in numpy instead of a Python loop."""
        hist = self._hist
        counts = self._counts
        if counts is None:
            return int(hist.get_value_at_percentile(percentile))
        target = hist.get_target_count_at_percentile(percentile)
        running = np.cumsum(counts, dtype=np.uint64)
        index = int(np.searchsorted(running, target, side="left"))
        if index >= hist.counts_len:
            return 0
        value = hist.get_value_from_index(index)
        if percentile:
            return int(hist.get_highest_equivalent_value(value))
        return int(hist.get_lowest_equivalent_value(value))

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
