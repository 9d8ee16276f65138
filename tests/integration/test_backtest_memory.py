"""Memory of the event-driven backtester stays flat as the data grows (issue 5: "a 10M-event
synthetic run stays within 20% of the peak memory of a 1M-event run").

Each run is a separate ``python`` process that loads a backtest config and runs it through
:func:`tradecore.backtest.engine.run_config` (the code path of ``tradecore backtest``): a
moving-average cross on every tick (windows of 2,000 and 20,000 ticks, so it trades now and
then: about 400 orders per million events), the paper broker with latency and fees, equity
sampled every simulated second. The child reports its own peak RSS (``ru_maxrss``) and, when
Parquet is read, the peak of pyarrow's memory pool; the test compares a run with 10x the events
against the smaller one.

Sizes: 200k vs 2M events by default (``make test``, about 30 s); the issue's 1M vs 10M with
``TRADECORE_LONG_TESTS=1`` (a few minutes).

What may grow: tables proportional to orders and fills (the order manager's orders, the fill
rows) and the equity samples (one per simulated second); nothing per event.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tradecore.data.columnar import ColumnarWriter
from tradecore.data.synthetic import synthetic_l2

LONG = bool(os.environ.get("TRADECORE_LONG_TESTS"))
SMALL = 1_000_000 if LONG else 200_000
BIG = 10 * SMALL

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from tradecore.backtest.config import load_backtest_config
from tradecore.backtest.engine import run_config

started = time.perf_counter()
result = run_config(load_backtest_config(Path(sys.argv[1])))
eng = result._engine
pool = 0
if "pyarrow" in sys.modules:
    import pyarrow
    pool = pyarrow.default_memory_pool().max_memory()
print(json.dumps({
    "events": result.events,
    "orders": sum(f["orders"] for f in result.final.values()),
    "fills": len(result.fills),
    "equity_rows": sum(len(sl.equity_rows) for sl in eng.slots),
    "seconds": time.perf_counter() - started,
    "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "arrow_pool_peak": pool,
}))
"""

HEAD = """
[backtest]
name = "memory"
mode = "l2"
equity_interval_ms = 1000
chunk_rows = 65536

[instrument]
symbol = "SYN"
tick_size = "0.01"
lot_size = "1"
"""

TAIL = """
[[strategy]]
name = "mac"
kind = "ma_cross"
account = 1
initial_cash = "100000"
params = { symbol = "SYN", fast = 2000, slow = 20000, order_qty = 2, max_position = 6 }

[risk.defaults]
max_order_qty = 100
max_position = 50

[broker]
latency_us = 200
jitter_us = 50
taker_fee_bps = "1"
seed = 5
"""


def run_child(config: Path) -> dict[str, Any]:
    res = subprocess.run(
        [sys.executable, "-c", CHILD, str(config)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


def check_flat(small: dict[str, Any], big: dict[str, Any], rows: tuple[int, int]) -> None:
    """The runs did what they say, and the bigger one's peak RSS is within 20%."""
    for run, n in zip((small, big), rows, strict=True):
        assert run["events"] == n
        # The strategy traded, now and then (orders are not a per-event cost here).
        assert 0 < run["fills"] <= run["orders"] < n // 1000
        # Equity is sampled (once per simulated second, ~1 ms per event), not per event.
        assert 0 < run["equity_rows"] < n // 500
    ratio = big["peak_rss_kib"] / small["peak_rss_kib"]
    summary = (
        f"peak RSS {small['peak_rss_kib'] / 1024:.1f} MiB for {rows[0]:,} events vs "
        f"{big['peak_rss_kib'] / 1024:.1f} MiB for {rows[1]:,} (x{ratio:.3f}); "
        f"orders {small['orders']} vs {big['orders']}"
    )
    print(summary)
    assert ratio <= 1.2, summary


def test_synthetic_run_memory_is_flat(tmp_path: Path) -> None:
    runs = []
    for rows in (SMALL, BIG):
        cfg = tmp_path / f"synthetic_{rows}.toml"
        data = f'[[data]]\nkind = "synthetic_l2"\nrows = {rows}\nseed = 11\n'
        cfg.write_text(HEAD + data + TAIL, encoding="utf-8")
        runs.append(run_child(cfg))
    check_flat(runs[0], runs[1], (SMALL, BIG))


def test_parquet_run_memory_is_flat(tmp_path: Path) -> None:
    runs = []
    for rows in (SMALL, BIG):
        d = tmp_path / str(rows)
        d.mkdir()
        # Written here, chunk by chunk, so the child only reads.
        with (
            ColumnarWriter(d / "quotes.parquet", "quotes") as wq,
            ColumnarWriter(d / "trades.parquet", "trades") as wt,
        ):
            for q, t in synthetic_l2(rows, 11, chunk_rows=65_536):
                wq.write(q)
                wt.write(t)
        data = "".join(
            f'[[data]]\nkind = "parquet"\npath = "{d / name}"\n'
            for name in ("quotes.parquet", "trades.parquet")
        )
        cfg = d / "bt.toml"
        cfg.write_text(HEAD + data + TAIL, encoding="utf-8")
        runs.append(run_child(cfg))
    small, big = runs
    # The reader holds about one row group at a time, whatever the file's length.
    assert big["arrow_pool_peak"] <= small["arrow_pool_peak"] * 1.25 + (1 << 20), (
        f"pyarrow pool peak {small['arrow_pool_peak']:,} vs {big['arrow_pool_peak']:,} bytes"
    )
    check_flat(small, big, (SMALL, BIG))
