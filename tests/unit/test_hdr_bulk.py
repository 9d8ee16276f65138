"""LatencyRecorder's bulk recording and percentile scan against hdrh itself (the oracle).

``record_many`` computes HdrHistogram bucket indices in numpy and ``value_at`` scans cumulative
counts in numpy; both must leave and read exactly what ``hdrh`` gives when every value goes
through its own ``record_value`` and ``get_value_at_percentile``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram
from tradecore.telemetry import LatencyRecorder
from tradecore.telemetry.hdr import PERCENTILES

_PCTS = (0.0, 0.001, 1.0, 10.0, 25.0, 33.3, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 99.999, 100.0)


def _oracle(values: list[int], highest: int, sig: int) -> HdrHistogram:
    """Every value through hdrh's own ``record_value`` (clamped as the recorder documents)."""
    h = HdrHistogram(1, highest, sig)
    for v in values:
        assert h.record_value(min(v, highest))
    return h


def _state(h: HdrHistogram) -> tuple[object, ...]:
    return (list(h.counts), h.total_count, h.min_value, h.max_value)


def _values(rng: np.random.Generator, n: int, highest: int) -> np.ndarray:
    kind = rng.integers(0, 4)
    if kind == 0:
        v = rng.lognormal(9.0, 1.5, n)
    elif kind == 1:
        v = rng.integers(0, 5_000, n)
    elif kind == 2:
        v = rng.exponential(highest / 4, n)
    else:
        v = 2.0 ** rng.uniform(0, 40, n)
    out = np.asarray(v, dtype=np.float64).astype(np.int64)
    # Bucket edges and their neighbours, zero and values above the range.
    edges = [0, 1, 2, 1023, 1024, 2047, 2048, 2049, 4095, 4096, highest - 1, highest, highest + 1]
    out[: len(edges)] = edges[: len(out)]
    rng.shuffle(out)
    return out


@pytest.mark.parametrize("seed", range(12))
def test_record_many_leaves_the_histogram_hdrh_builds_value_by_value(seed: int) -> None:
    rng = np.random.default_rng(seed)
    highest = int(rng.choice([10_000, 1_000_000, 60 * 1_000_000_000, 2**40]))
    sig = int(rng.integers(1, 5))  # 5 figures work too, but their 3.7M counters are slow here
    rec = LatencyRecorder(highest_ns=highest, significant_figures=sig)
    everything: list[int] = []
    for _ in range(int(rng.integers(1, 5))):  # several folds accumulate
        batch = _values(rng, int(rng.integers(1, 3_000)), highest)
        if rng.random() < 0.3:
            rec.record_many(batch.tolist())  # a plain list
        elif rng.random() < 0.3:
            rec.record_many(batch.astype(np.uint64))  # unsigned
        else:
            rec.record_many(batch)
        everything.extend(int(v) for v in batch)
        if rng.random() < 0.3:  # interleaved single records
            v = int(rng.integers(0, highest * 2))
            rec.record(v, 3)
            everything.extend([v] * 3)
    oracle = _oracle(everything, highest, sig)
    assert _state(rec._hist) == _state(oracle)
    assert rec.count == len(everything)
    assert rec.saturated == sum(1 for v in everything if v > highest)
    top = max(everything)
    for pct in _PCTS:
        want = top if pct == 100.0 else min(int(oracle.get_value_at_percentile(pct)), top)
        assert rec.value_at(pct) == want, pct


@pytest.mark.parametrize("seed", range(6))
def test_summary_equals_the_per_distinct_value_recorder(seed: int) -> None:
    # The previous record_many: one record() per distinct value with its count.
    rng = np.random.default_rng(100 + seed)
    values = _values(rng, 5_000, 60 * 1_000_000_000)
    fast = LatencyRecorder()
    fast.record_many(values)
    slow = LatencyRecorder()
    distinct, counts = np.unique(values, return_counts=True)
    for v, c in zip(distinct.tolist(), counts.tolist(), strict=True):
        slow.record(v, c)
    assert _state(fast._hist) == _state(slow._hist)
    assert fast.summary() == slow.summary()
    for pct in PERCENTILES:
        assert fast.value_at(pct) == min(
            int(slow._hist.get_value_at_percentile(pct)), slow.value_at(100.0)
        )


def test_huge_range_takes_the_per_value_path() -> None:
    highest = 2**60
    rec = LatencyRecorder(highest_ns=highest)
    values = [0, 5, 2**55 + 3, 2**61, 7]
    rec.record_many(values)
    oracle = _oracle(values, highest, 3)
    assert _state(rec._hist) == _state(oracle)
    assert rec.saturated == 1
    assert rec.value_at(50.0) == oracle.get_value_at_percentile(50.0)
    assert rec.value_at(100.0) == 2**61


def test_empty_and_bad_batches_change_nothing() -> None:
    rec = LatencyRecorder()
    rec.record_many([])
    rec.record_many(np.array([], dtype=np.int64))
    assert rec.count == 0
    assert rec.value_at(50.0) == 0
    with pytest.raises(ValueError, match="ns must be >= 0, got -5"):
        rec.record_many(np.array([3, -5, 9]))
    with pytest.raises(TypeError, match="values must be integers"):
        rec.record_many(np.array([1.5, 2.0]))
    assert rec.count == 0
    assert _state(rec._hist) == _state(HdrHistogram(1, rec.highest_ns, 3))
