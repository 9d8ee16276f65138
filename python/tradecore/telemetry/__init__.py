"""Telemetry: latency histograms in nanoseconds and the core's speed summary.

* :mod:`tradecore.telemetry.hdr`: :class:`LatencyRecorder` (an HdrHistogram of ns timings with an
  exact max), :class:`LatencySummary` (p50/p90/p99/p99.9/max) and :func:`format_ns`.
* :mod:`tradecore.telemetry.corebench`: the fixed-seed mixed stream and the throughput/latency
  measurement of ``OrderBook`` that ``tradecore demo`` prints (``core_summary``). Imported on
  demand, since it loads the compiled core.

Later issues add the Prometheus exporter and plots here.
"""

from tradecore.telemetry.hdr import (
    PERCENTILES,
    LatencyRecorder,
    LatencySummary,
    format_ns,
    summarize_ns,
)

__all__ = ["PERCENTILES", "LatencyRecorder", "LatencySummary", "format_ns", "summarize_ns"]
