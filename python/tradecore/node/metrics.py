"""The node's counters and their Prometheus exposition (``/metrics``).

Owns :class:`NodeStats` (plain integer counters the hot path bumps, a snapshot of positions and
P&L, the kill-switch state), :class:`TickToTrade` (the tick-to-trade recording) and
:class:`NodeCollector`, a ``prometheus_client`` collector that turns them into metric families
when ``/metrics`` is scraped.

Why a custom collector: a ``prometheus_client`` ``Counter.labels(...).inc()`` takes a lock and a
label lookup (about a microsecond), too much for a 10 us tick-to-trade budget. The hot path only
does ``dict[key] += 1`` and ``list.append``; the scrape (another thread) copies the dicts
(``dict.copy`` is atomic under the GIL) and reads the snapshot the node publishes from its own
thread (positions and P&L are computed there, never read half-updated).

Tick-to-trade samples go to a list on the hot path and are folded into an HdrHistogram
(:class:`~tradecore.telemetry.hdr.LatencyRecorder`, for p50/p99/p99.9) and into Prometheus
histogram buckets by the node's own thread every few thousand samples and before any report,
so a scrape may lag by at most one fold interval.

Metric names (all prefixed ``tradecore_node_``): ``md_messages_total{symbol,kind}``,
``md_message_rate`` (per second, between scrapes), ``md_resyncs_total{symbol,reason}``,
``tick_to_trade_seconds`` (histogram), ``orders_total{account,strategy}``,
``fills_total{account,symbol,liquidity}``, ``rejects_total{source,reason}``,
``position_lots{account,symbol}``, ``pnl{account,kind}``, ``kill_switch{scope}``,
``strategy_errors_total{strategy}``, ``store_pending``, ``store_failures_total``,
``config_reloads_total{result}``, ``up``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from tradecore.telemetry.hdr import PERCENTILES, LatencyRecorder, LatencySummary

__all__ = [
    "TICK_TO_TRADE_BUCKETS_NS",
    "NodeCollector",
    "NodeStats",
    "PnlRow",
    "StatsSnapshot",
    "TickToTrade",
]

#: Upper bounds of the Prometheus tick-to-trade buckets, in nanoseconds (1 us .. 100 ms).
TICK_TO_TRADE_BUCKETS_NS: tuple[int, ...] = (
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    10_000_000,
    100_000_000,
)

_FOLD_AT = 4096


class TickToTrade:
    """Tick-to-trade samples (ns): appended on the hot path, folded in batches (module doc)."""

    def __init__(self) -> None:
        self.samples: list[int] = []
        self.recorder = LatencyRecorder()
        self.buckets = np.zeros(len(TICK_TO_TRADE_BUCKETS_NS) + 1, dtype=np.int64)
        self.sum_ns = 0
        self._bounds = np.asarray(TICK_TO_TRADE_BUCKETS_NS, dtype=np.int64)
        self._lock = threading.Lock()

    def needs_fold(self) -> bool:
        """True when enough samples are waiting to be folded."""
        return len(self.samples) >= _FOLD_AT

    def fold(self) -> None:
        """Move the waiting samples into the histogram (call from the node's thread only)."""
        if not self.samples:
            return
        arr = np.asarray(self.samples, dtype=np.int64)
        self.samples.clear()
        arr = np.maximum(arr, 0)
        idx = np.searchsorted(self._bounds, arr, side="left")
        counts = np.bincount(idx, minlength=len(self.buckets))
        with self._lock:
            self.recorder.record_many(arr)
            self.buckets += counts
            self.sum_ns += int(arr.sum())

    @property
    def count(self) -> int:
        """Samples folded so far."""
        return self.recorder.count

    def summary(self) -> LatencySummary | None:
        """p50/p90/p99/p99.9/max of what is folded, or None if nothing is.

        Percentiles come from the HdrHistogram; the mean from the exact sum (hdrh's own mean
        walks every bucket in Python, far slower than this).
        """
        with self._lock:
            rec = self.recorder
            n = rec.count
            if n == 0:
                return None
            p50, p90, p99, p999 = (rec.value_at(p) for p in PERCENTILES)
            return LatencySummary(
                count=n,
                p50=p50,
                p90=p90,
                p99=p99,
                p999=p999,
                max=rec.value_at(100.0),
                mean=self.sum_ns // n,
                saturated=rec.saturated,
            )

    def histogram(self) -> tuple[list[tuple[str, float]], float]:
        """Cumulative Prometheus buckets (``le`` in seconds) and the sum in seconds."""
        with self._lock:
            counts = self.buckets.copy()
            total_ns = self.sum_ns
        cumulative = np.cumsum(counts)
        out = [
            (_le(bound), float(cumulative[i])) for i, bound in enumerate(TICK_TO_TRADE_BUCKETS_NS)
        ]
        out.append(("+Inf", float(cumulative[-1])))
        return out, total_ns / 1e9


def _le(bound_ns: int) -> str:
    return repr(bound_ns / 1e9)


@dataclass(frozen=True, slots=True)
class PnlRow:
    """One account's money as of a snapshot (quote currency)."""

    account: int
    realized: Decimal
    unrealized: Decimal
    fees: Decimal
    equity: Decimal


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    """What the node's thread publishes for other threads: positions, P&L, kill switch."""

    ts_ns: int = 0
    positions: tuple[tuple[int, str, int], ...] = ()
    pnl: tuple[PnlRow, ...] = ()
    kill_switch: tuple[tuple[str, int], ...] = (("global", 0),)


@dataclass
class NodeStats:
    """Counters bumped by the node's thread (see the module doc for the thread rules)."""

    # kind ("BookUpdate", ...) -> symbol -> events; nested so the hot path builds no tuple.
    md_messages: dict[str, dict[str, int]] = field(default_factory=dict)
    resyncs: dict[tuple[str, str], int] = field(default_factory=dict)  # (symbol, reason)
    orders: dict[tuple[int, str], int] = field(default_factory=dict)  # (account, strategy)
    fills: dict[tuple[int, str, str], int] = field(default_factory=dict)  # (acc, sym, liq)
    rejects: dict[tuple[str, str], int] = field(default_factory=dict)  # (source, reason)
    strategy_errors: dict[str, int] = field(default_factory=dict)
    config_reloads: dict[str, int] = field(default_factory=dict)  # result -> count
    messages: int = 0  # market-data events processed
    cancels: int = 0
    snapshot: StatsSnapshot = field(default_factory=StatsSnapshot)
    tick_to_trade: TickToTrade = field(default_factory=TickToTrade)

    def bump(self, table: dict[tuple[str, str], int], key: tuple[str, str], n: int = 1) -> None:
        """``table[key] += n`` (helper for the cold paths)."""
        table[key] = table.get(key, 0) + n

    def total_orders(self) -> int:
        """Orders sent to the execution client."""
        return sum(self.orders.copy().values())

    def total_fills(self) -> int:
        """Fills received."""
        return sum(self.fills.copy().values())


class NodeCollector(Collector):
    """Exposes :class:`NodeStats` to ``prometheus_client`` (register it in a registry)."""

    def __init__(
        self,
        stats: NodeStats,
        *,
        store_pending: Callable[[], int] | None = None,
        store_failures: Callable[[], int] | None = None,
    ) -> None:
        self._stats = stats
        self._store_pending = store_pending
        self._store_failures = store_failures
        self._rate_lock = threading.Lock()
        self._last_rate_at = time.monotonic()
        self._last_rate_count = 0
        self._rate = 0.0

    def _message_rate(self) -> float:
        with self._rate_lock:
            now = time.monotonic()
            count = self._stats.messages
            elapsed = now - self._last_rate_at
            if elapsed >= 0.5:
                self._rate = (count - self._last_rate_count) / elapsed
                self._last_rate_at = now
                self._last_rate_count = count
            return self._rate

    def collect(self) -> Iterator[Metric]:
        s = self._stats
        p = "tradecore_node_"
        up = GaugeMetricFamily(p + "up", "1 while the node runs")
        up.add_metric([], 1.0)
        yield up

        md = CounterMetricFamily(
            p + "md_messages", "Market-data events processed", labels=["symbol", "kind"]
        )
        for kind, by_symbol in sorted(s.md_messages.copy().items()):
            for symbol, n in sorted(by_symbol.copy().items()):
                md.add_metric([symbol, kind], float(n))
        yield md

        rate = GaugeMetricFamily(
            p + "md_message_rate", "Market-data events per second since the previous scrape"
        )
        rate.add_metric([], self._message_rate())
        yield rate

        rs = CounterMetricFamily(
            p + "md_resyncs",
            "Order-book resyncs (gap, stale snapshot, disconnect)",
            labels=["symbol", "reason"],
        )
        for (symbol, reason), n in sorted(s.resyncs.copy().items()):
            rs.add_metric([symbol, reason], float(n))
        yield rs

        buckets, total = s.tick_to_trade.histogram()
        h = HistogramMetricFamily(
            p + "tick_to_trade_seconds",
            "From reading a market-data message to the order reaching the execution client",
        )
        h.add_metric([], buckets, total)
        yield h

        orders = CounterMetricFamily(
            p + "orders", "Orders sent to the execution client", labels=["account", "strategy"]
        )
        for (account, strategy), n in sorted(s.orders.copy().items()):
            orders.add_metric([str(account), strategy], float(n))
        yield orders

        fills = CounterMetricFamily(
            p + "fills", "Fills received", labels=["account", "symbol", "liquidity"]
        )
        for (account, symbol, liq), n in sorted(s.fills.copy().items()):
            fills.add_metric([str(account), symbol, liq], float(n))
        yield fills

        rej = CounterMetricFamily(
            p + "rejects",
            "Orders refused: by pre-trade risk (source=risk) or the execution client (broker)",
            labels=["source", "reason"],
        )
        for (source, reason), n in sorted(s.rejects.copy().items()):
            rej.add_metric([source, reason], float(n))
        yield rej

        snap = s.snapshot
        pos = GaugeMetricFamily(
            p + "position_lots", "Signed position in lots", labels=["account", "symbol"]
        )
        for account, symbol, qty in snap.positions:
            pos.add_metric([str(account), symbol], float(qty))
        yield pos

        pnl = GaugeMetricFamily(
            p + "pnl",
            "Money per account in quote currency (realized, unrealized, fees, equity)",
            labels=["account", "kind"],
        )
        for row in snap.pnl:
            for kind, value in (
                ("realized", row.realized),
                ("unrealized", row.unrealized),
                ("fees", row.fees),
                ("equity", row.equity),
            ):
                pnl.add_metric([str(row.account), kind], float(value))
        yield pnl

        ks = GaugeMetricFamily(
            p + "kill_switch",
            "1 when the kill switch is tripped (global or per account)",
            labels=["scope"],
        )
        for scope, tripped in snap.kill_switch:
            ks.add_metric([scope], float(tripped))
        yield ks

        se = CounterMetricFamily(
            p + "strategy_errors", "Exceptions raised by strategy callbacks", labels=["strategy"]
        )
        for name, n in sorted(s.strategy_errors.copy().items()):
            se.add_metric([name], float(n))
        yield se

        cr = CounterMetricFamily(
            p + "config_reloads", "Risk-limit reloads from the config file", labels=["result"]
        )
        for result, n in sorted(s.config_reloads.copy().items()):
            cr.add_metric([result], float(n))
        yield cr

        if self._store_pending is not None:
            sp = GaugeMetricFamily(p + "store_pending", "Store items queued, not committed yet")
            sp.add_metric([], float(self._store_pending()))
            yield sp
        if self._store_failures is not None:
            sf = CounterMetricFamily(
                p + "store_failures", "Store operations SQLite refused (kept in memory)"
            )
            sf.add_metric([], float(self._store_failures()))
            yield sf
