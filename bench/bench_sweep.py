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
  process pool; the time includes preparing the bars, starting the pool and building the
  table). Statistics per set: total return, Sharpe, Sortino, max drawdown and duration, win
  rate, profit factor, trades, turnover, fees.
* **tradecore, 1 core**: the same in this process (``workers=0``), the like-for-like figure
  against vectorbt, which runs in one process.
* **vectorbt**: the same grid in batches of ``--vbt-batch`` columns (memory), ``MA.run`` for the
  fast and slow windows, crosses, ``Portfolio.from_signals`` (fees 1 bp), then Sharpe, total
  return, max drawdown and the trade count. A warm-up call on 2,000 bars compiles its numba
  code first, so compile time is not counted against it.
* **tradecore, big grid**: ``--big-windows`` windows (default 40: 780 sets) on 2 cores, the
  steady-state rate the 200 sets/s target is about; and a mean-reversion grid on 2 cores
  (windows x entry x exit, ``--mr-sets`` about 120 sets).

**CPU time as well as wall time.** The machine is shared, so wall times move with other
people's load. Every run also records CPU seconds: this process's (``time.process_time``:
preparing the bars, checking the sets, building the table) and the pool workers' (the
kernels, summed by the sweep into ``table.attrs["cpu_seconds"]``). The *implied quiet-machine
rate* on ``C`` cores is ``sets / (parent CPU + worker CPU / C)``: what the run would take with
the cores to itself (it ignores pool start-up latency and contention, which a quiet machine
does not have either). vectorbt's CPU time is recorded the same way, so the CPU ratio is a
load-independent comparison.

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


def _ours(bars: Any, k: int, workers: int) -> tuple[dict[str, float], Any]:
    """One sweep of the cross grid: wall seconds, this process's and the workers' CPU."""
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
    return _row(table, time.perf_counter() - t0, time.process_time() - c0, workers), table


def _row(table: Any, wall: float, parent_cpu: float, workers: int) -> dict[str, float]:
    n = len(table)
    worker_cpu = float(table.attrs["cpu_seconds"])
    if workers == 0:  # the kernels ran in this process: its CPU time includes them
        parent_cpu -= worker_cpu
    cores = max(workers, 1)
    return {
        "sets": n,
        "seconds": wall,
        "sets_per_s": n / wall,
        "parent_cpu_s": parent_cpu,
        "worker_cpu_s": worker_cpu,
        "cpu_ms_per_set": 1e3 * (parent_cpu + worker_cpu) / n,
        "kernel_cpu_ms_per_set": 1e3 * worker_cpu / n,
        "implied_quiet_sets_per_s": n / (parent_cpu + worker_cpu / cores),
    }


def _ours_mr(bars: Any, sets: int, workers: int) -> dict[str, float]:
    """A mean-reversion grid (windows x entry x exit) of about ``sets`` sets."""
    from tradecore.backtest import vector as V
    from tradecore.backtest.costs import CostModel

    entries = [1.0, 1.5, 2.0, 2.5]
    exits = [0.0, 0.25, 0.5]
    nwin = max(1, sets // (len(entries) * len(exits)))
    grid: dict[str, list[Any]] = {
        "window": [int(w) for w in WINDOWS[1 : 1 + nwin]],
        "entry_z": entries,
        "exit_z": exits,
    }
    c0 = time.process_time()
    t0 = time.perf_counter()
    table = V.sweep(
        bars, "mean_reversion", grid, base={"max_position": 1, "order_qty": 1},
        costs=CostModel(taker_fee_bps=Decimal(FEE_BPS)), workers=workers, progress=False,
    )  # fmt: skip
    return _row(table, time.perf_counter() - t0, time.process_time() - c0, workers)


def _vectorbt(bars: Any, pairs: list[tuple[int, int]], batch: int) -> tuple[float, float, Any]:
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
    c0 = time.process_time()
    t0 = time.perf_counter()
    parts = [run(close, pairs[i : i + batch]) for i in range(0, len(pairs), batch)]
    return time.perf_counter() - t0, time.process_time() - c0, pd.concat(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--windows", type=int, default=12, help="grid compared with vectorbt")
    parser.add_argument("--big-windows", type=int, default=40, help="grid for the steady rate")
    parser.add_argument("--vbt-batch", type=int, default=8, help="vectorbt columns per batch")
    parser.add_argument("--mr-sets", type=int, default=120, help="mean-reversion grid size")
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
    small = type(bars)(bars.ts_ns[:5_000], bars.bid[:5_000], bars.ask[:5_000])
    _ours(small, 3, 0)
    _ours_mr(small, 12, 0)

    rows: dict[str, Any] = {}
    r2, ours2 = _ours(bars, args.windows, 2)
    rows["tradecore_2_cores"] = r2
    r1, ours1 = _ours(bars, args.windows, 0)
    rows["tradecore_1_core"] = r1
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
        t, cpu, vbt_table = _vectorbt(bars, pairs, args.vbt_batch)
        rows["vectorbt_1_process"] = {
            "sets": n,
            "seconds": t,
            "sets_per_s": n / t,
            "cpu_ms_per_set": 1e3 * cpu / n,
            "implied_quiet_sets_per_s": n / cpu,
        }
    rows["tradecore_2_cores_big_grid"], _ = _ours(bars, args.big_windows, 2)
    if args.mr_sets > 0:
        rows["tradecore_2_cores_mean_reversion"] = _ours_mr(bars, args.mr_sets, 2)

    print(
        f"{'engine':<34}{'sets':>6}{'seconds':>9}{'sets/s':>9}{'CPU ms/set':>12}"
        f"{'quiet sets/s':>14}"
    )
    for name, r in rows.items():
        print(
            f"{name:<34}{r['sets']:>6}{r['seconds']:>9.2f}{r['sets_per_s']:>9.1f}"
            f"{r['cpu_ms_per_set']:>12.2f}{r['implied_quiet_sets_per_s']:>14.1f}"
        )
    print(
        f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; 'quiet' = sets / "
        "(parent CPU + worker CPU / cores), the rate with the cores to ourselves"
    )
    check: dict[str, Any] = {}
    if vbt_table is not None:
        vr = rows["vectorbt_1_process"]
        for name in ("tradecore_2_cores", "tradecore_1_core"):
            check[f"{name}_vs_vectorbt"] = rows[name]["sets_per_s"] / vr["sets_per_s"]
            print(f"{name} / vectorbt (wall): {check[f'{name}_vs_vectorbt']:.1f}x")
        check["cpu_per_set_vectorbt_over_tradecore"] = (
            vr["cpu_ms_per_set"] / rows["tradecore_1_core"]["cpu_ms_per_set"]
        )
        print(
            "CPU per set, vectorbt / tradecore (1 process each): "
            f"{check['cpu_per_set_vectorbt_over_tradecore']:.1f}x"
        )
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
    big = rows["tradecore_2_cores_big_grid"]
    rate = big["sets_per_s"]
    verdict = "OK" if rate >= TARGET_SETS_PER_S else "MISSED"
    print(
        f"target >= {TARGET_SETS_PER_S:.0f} sets/s on 2 cores: {rate:.1f} measured -> {verdict} "
        f"(implied on a quiet machine: {big['implied_quiet_sets_per_s']:.0f})"
    )
    result = {
        "bars": args.bars,
        "seed": args.seed,
        "strategy": "ma_cross long-only, all in, fees 1 bp (mean_reversion row: 1 lot, shorts)",
        "results": rows,
        "comparison": check,
        "target_sets_per_s": TARGET_SETS_PER_S,
        "target_met": rate >= TARGET_SETS_PER_S,
        "machine": machine_info(commit=git_commit(REPO)),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
