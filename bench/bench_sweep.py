#!/usr/bin/env python3
"""Vectorized sweep speed: parameter sets per second over 1M bars, ours against vectorbt.

Run: ``.venv/bin/python bench/bench_sweep.py [--bars N] [--windows K] [--big-windows K2]``.

One run, one data set: ``synthetic_bars(N, seed)`` (the seeded quote walk; bid = ask = the
walk, so the mid is the close both engines see), fees 1 bp per fill. The strategy is the
long-only moving-average cross, all in (``max_position = order_qty = 1``,
``allow_short = false``), which is what ``vectorbt.Portfolio.from_signals`` with
``MA.ma_crossed_above`` / ``ma_crossed_below`` computes. The grid is every pair ``fast < slow``
of the first ``K`` windows of :data:`WINDOWS` (``K * (K - 1) / 2`` sets).

* **tradecore, 2 cores**: :func:`tradecore.backtest.vector.sweep` with ``workers=2`` (a local
  process pool; the time includes starting the pool and shipping the bars to it). Statistics
  per set: total return, Sharpe, Sortino, max drawdown and duration, win rate, profit factor,
  trades, turnover, fees.
* **tradecore, 1 core**: the same in this process (``workers=0``), the like-for-like figure
  against vectorbt, which runs in one process.
* **vectorbt**: the same grid in batches of ``--vbt-batch`` columns (memory), ``MA.run`` for the
  fast and slow windows, crosses, ``Portfolio.from_signals`` (fees 1 bp), then Sharpe, total
  return, max drawdown and the trade count. A warm-up call on 2,000 bars compiles its numba
  code first, so compile time is not counted against it.
* **tradecore, big grid**: ``--big-windows`` windows (default 40: 780 sets) on 2 cores, the
  steady-state rate the 200 sets/s target is about.

Sanity check printed: trade counts of one parameter set in both engines (equal up to exact
ties of the two averages, which our integer test and vectorbt's floats break differently).

Results: a table on stdout and ``bench/results/backtest_sweep.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_JSON = REPO / "bench" / "results" / "backtest_sweep.json"
WINDOWS = [
    5, 8, 10, 13, 16, 20, 25, 30, 35, 40, 50, 60, 70, 80, 90, 100, 120, 140, 160, 180,
    200, 230, 260, 300, 340, 380, 420, 470, 520, 580, 640, 700, 770, 850, 930, 1000, 1100,
    1200, 1300, 1500,
]  # fmt: skip
TARGET_SETS_PER_S = 200.0
FEE_BPS = "1"


def _pairs(k: int) -> list[tuple[int, int]]:
    w = WINDOWS[:k]
    return [(a, b) for i, a in enumerate(w) for b in w[i + 1 :]]


def _ours(bars: Any, k: int, workers: int, cpu: list[float] | None = None) -> tuple[float, Any]:
    from tradecore.backtest import vector as V
    from tradecore.backtest.costs import CostModel

    grid = {"fast": WINDOWS[:k], "slow": WINDOWS[:k]}
    base = {"max_position": 1, "order_qty": 1, "allow_short": False}
    c0 = time.process_time()
    t0 = time.perf_counter()
    table = V.sweep(
        bars, "ma_cross", grid, base=base, costs=CostModel(taker_fee_bps=Decimal(FEE_BPS)),
        workers=workers, progress=False,
    )  # fmt: skip
    if cpu is not None:
        cpu.append(time.process_time() - c0)
    return time.perf_counter() - t0, table


def _vectorbt(bars: Any, pairs: list[tuple[int, int]], batch: int) -> tuple[float, Any]:
    import numpy as np
    import pandas as pd
    import vectorbt as vbt

    idx = pd.to_datetime(np.asarray(bars.ts_ns), unit="ns")
    close = pd.Series(np.asarray(bars.bid, np.float64), index=idx)

    def run(c: Any, part: list[tuple[int, int]]) -> Any:
        fast = vbt.MA.run(c, [a for a, _ in part], short_name="fast")
        slow = vbt.MA.run(c, [b for _, b in part], short_name="slow")
        entries = fast.ma_crossed_above(slow)
        exits = fast.ma_crossed_below(slow)
        pf = vbt.Portfolio.from_signals(c, entries, exits, fees=float(FEE_BPS) / 1e4, freq="1ms")
        return pd.DataFrame(
            {
                "sharpe": pf.sharpe_ratio(),
                "total_return": pf.total_return(),
                "max_drawdown": pf.max_drawdown(),
                "trades": pf.trades.count(),
            }
        )

    run(close.iloc[:2_000], pairs[:2])  # compile vectorbt's numba code outside the clock
    t0 = time.perf_counter()
    parts = [run(close, pairs[i : i + batch]) for i in range(0, len(pairs), batch)]
    return time.perf_counter() - t0, pd.concat(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--windows", type=int, default=12, help="grid compared with vectorbt")
    parser.add_argument("--big-windows", type=int, default=40, help="grid for the steady rate")
    parser.add_argument("--vbt-batch", type=int, default=8, help="vectorbt columns per batch")
    parser.add_argument("--no-vectorbt", action="store_true")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    if not 2 <= args.windows <= len(WINDOWS) or not 2 <= args.big_windows <= len(WINDOWS):
        parser.error(f"--windows and --big-windows must be in 2..{len(WINDOWS)}")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    warnings.filterwarnings("ignore")
    from tradecore.data.synthetic import L2Params, synthetic_bars
    from tradecore.telemetry.runinfo import git_commit, machine_info

    # spread 0: bid = ask = the walk (the close vectorbt sees)
    bars = synthetic_bars(args.bars, args.seed, L2Params())
    bars = type(bars)(bars.ts_ns, bars.bid, bars.bid.copy())
    pairs = _pairs(args.windows)
    n = len(pairs)
    print(f"{args.bars:,} bars, grid {n} sets (windows {WINDOWS[: args.windows]})", flush=True)
    # warm the numba cache in this process and on disk for the pool's workers
    _ours(type(bars)(bars.ts_ns[:5_000], bars.bid[:5_000], bars.ask[:5_000]), 3, 0)

    rows: dict[str, Any] = {}
    t, ours2 = _ours(bars, args.windows, 2)
    rows["tradecore_2_cores"] = {"sets": n, "seconds": t, "sets_per_s": n / t}
    cpu: list[float] = []
    t, ours1 = _ours(bars, args.windows, 0, cpu)
    rows["tradecore_1_core"] = {
        "sets": n,
        "seconds": t,
        "sets_per_s": n / t,
        # CPU seconds of this process: less sensitive to other load on a shared machine
        "cpu_seconds": cpu[0],
        "sets_per_cpu_s": n / cpu[0],
    }
    if (
        not ours1.drop(columns="rank")
        .sort_values(["fast", "slow"])
        .reset_index(drop=True)
        .equals(ours2.drop(columns="rank").sort_values(["fast", "slow"]).reset_index(drop=True))
    ):
        print("pool and in-process results differ", file=sys.stderr)
        return 1
    vbt_table = None
    if not args.no_vectorbt:
        t, vbt_table = _vectorbt(bars, pairs, args.vbt_batch)
        rows["vectorbt_1_process"] = {"sets": n, "seconds": t, "sets_per_s": n / t}
    big = len(_pairs(args.big_windows))
    t, _ = _ours(bars, args.big_windows, 2)
    rows["tradecore_2_cores_big_grid"] = {"sets": big, "seconds": t, "sets_per_s": big / t}

    print(f"{'engine':<30}{'sets':>6}{'seconds':>10}{'sets/s':>10}")
    for name, r in rows.items():
        print(f"{name:<30}{r['sets']:>6}{r['seconds']:>10.2f}{r['sets_per_s']:>10.1f}")
    one = rows["tradecore_1_core"]
    print(
        f"1 core, CPU time: {one['cpu_seconds']:.2f} s -> {one['sets_per_cpu_s']:.1f} sets per "
        f"CPU second (load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
    check: dict[str, Any] = {}
    if vbt_table is not None:
        vr = rows["vectorbt_1_process"]["sets_per_s"]
        for name in ("tradecore_2_cores", "tradecore_1_core"):
            check[f"{name}_vs_vectorbt"] = rows[name]["sets_per_s"] / vr
            print(f"{name} / vectorbt: {check[f'{name}_vs_vectorbt']:.1f}x")
        a, b = pairs[len(pairs) // 2]
        ours_trades = int(ours1[(ours1["fast"] == a) & (ours1["slow"] == b)]["trades"].iloc[0])
        vbt_trades = int(vbt_table.loc[(a, b), "trades"])
        check["sample_set"] = {
            "fast": a,
            "slow": b,
            "our_fills": ours_trades,
            "vectorbt_round_trips": vbt_trades,
        }
        print(
            f"sanity fast={a} slow={b}: our fills {ours_trades}, "
            f"vectorbt round trips {vbt_trades} (x2 = fills)"
        )
    rate = rows["tradecore_2_cores_big_grid"]["sets_per_s"]
    verdict = "OK" if rate >= TARGET_SETS_PER_S else "MISSED"
    print(f"target >= {TARGET_SETS_PER_S:.0f} sets/s on 2 cores: {rate:.1f} -> {verdict}")
    result = {
        "bars": args.bars,
        "seed": args.seed,
        "strategy": "ma_cross long-only, all in, fees 1 bp",
        "results": rows,
        "comparison": check,
        "target_sets_per_s": TARGET_SETS_PER_S,
        "machine": machine_info(commit=git_commit(REPO)),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
