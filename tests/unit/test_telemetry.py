"""Telemetry helpers: the HdrHistogram recorder and the core measurement's figures (no timing
assertions: speed is measured by the benchmarks, not tested)."""

from __future__ import annotations

import numpy as np
import pytest
from tradecore.telemetry import LatencyRecorder, format_ns, summarize_ns
from tradecore.telemetry.hdr import PERCENTILES


def _exact(values: np.ndarray, pct: float) -> int:
    """The value of rank round(pct% of n) (HdrHistogram's rank rule), from the sorted sample."""
    rank = max(1, int(pct * len(values) / 100 + 0.5))
    return int(np.sort(values)[rank - 1])


def test_percentiles_within_histogram_precision() -> None:
    rng = np.random.default_rng(3)
    values = rng.lognormal(mean=6.5, sigma=1.2, size=50_000).astype(np.int64) + 1
    rec = LatencyRecorder()
    rec.record_many(values)
    s = rec.summary()
    assert s.count == len(values)
    for pct, got in zip(PERCENTILES, (s.p50, s.p90, s.p99, s.p999), strict=True):
        want = _exact(values, pct)
        assert want <= got <= want + max(1, want // 1000), (pct, got, want)
    assert s.max == int(values.max())
    assert s.mean == pytest.approx(float(values.mean()), rel=1e-3)
    assert s.saturated == 0


def test_record_many_matches_record_one_by_one() -> None:
    values = [5, 5, 7, 1_000, 250_000, 3, 0, 999_999]
    a, b = LatencyRecorder(), LatencyRecorder()
    a.record_many(values)
    for v in values:
        b.record(v)
    assert a.summary() == b.summary()
    assert a.summary().max == 999_999


def test_values_above_range_are_counted_not_dropped() -> None:
    rec = LatencyRecorder(highest_ns=10_000)
    rec.record_many([100, 200, 50_000, 70_000])
    s = rec.summary()
    assert s.count == 4
    assert s.saturated == 2
    assert s.max == 70_000
    assert "above the histogram range" in s.format()


def test_bad_values_raise_typed_errors() -> None:
    rec = LatencyRecorder()
    with pytest.raises(ValueError, match="ns must be >= 0"):
        rec.record(-1)
    with pytest.raises(ValueError, match="ns must be >= 0"):
        rec.record_many(np.array([3, -5]))
    with pytest.raises(TypeError, match="ns must be an int"):
        rec.record(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="integers"):
        rec.record_many(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="no values recorded"):
        rec.summary()
    with pytest.raises(ValueError, match="highest_ns"):
        LatencyRecorder(highest_ns=1)
    with pytest.raises(ValueError, match="percentile"):
        rec.value_at(101.0)


def test_summary_dict_and_format() -> None:
    s = summarize_ns([1_000] * 99 + [2_000_000])
    d = s.as_dict()
    assert d["count"] == 100
    assert d["p50"] == 1_000
    assert d["max"] == 2_000_000
    assert set(d) == {"count", "p50", "p90", "p99", "p999", "max", "mean", "saturated"}
    line = s.format()
    assert "p50 1.00 us" in line and "max 2.00 ms" in line


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0 ns"),
        (999, "999 ns"),
        (1_500, "1.50 us"),
        (2_500_000, "2.50 ms"),
        (3 * 10**9, "3.00 s"),
    ],
)
def test_format_ns(ns: int, text: str) -> None:
    assert format_ns(ns) == text


def test_core_figures_are_consistent() -> None:
    corebench = pytest.importorskip("tradecore.telemetry.corebench")
    fig = corebench.core_figures(20_000, 11, target_live=500, per_call_ops=3_000, repeats=2)
    s, b, p = fig["stream"], fig["batch"], fig["per_call"]
    assert sum(s["mix"].values()) == 20_000
    assert 400 <= s["live_at_end"] <= 500  # held near its target
    assert len(b["seconds"]) == 2 and b["ops_per_s"] > 0
    assert fig["batch_chunked"]["ops_per_s"] > 0 and len(fig["batch_chunked"]["seconds"]) == 2
    # One ACCEPTED per valid submit at least, and every row yields an event.
    assert b["events"] >= 20_000
    assert sum(b["events_by_kind"].values()) == b["events"]
    assert b["events_by_kind"]["FILL"] > 0  # aggressive orders do trade
    assert p["calls"] == 3_000
    assert p["latency_ns"]["all"]["count"] == 3_000
    assert sum(p["latency_ns"][k]["count"] for k in ("submit", "cancel", "modify")) == 3_000
    assert fig["bytes_per_order"] > 0
    text = corebench.format_figures(fig)
    assert "M ops/s" in text and "p99.9" in text and "bytes" in text


def test_core_summary_returns_report() -> None:
    corebench = pytest.importorskip("tradecore.telemetry.corebench")
    text = corebench.core_summary(n_ops=5_000, seed=1)
    assert text.startswith("core (mixed stream, seed 1: 5,000 ops")
    assert "calls/s" in text
