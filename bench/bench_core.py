#!/usr/bin/env python3
"""Throughput and per-call latency of the matching core from Python, on the mixed stream.

Run: ``make bench-py`` (or ``.venv/bin/python bench/bench_core.py [--ops N] [--seed S]
[--live 1000,10000,100000] [--json PATH]``).

For each regime (a target number of resting orders), :func:`tradecore.telemetry.corebench.
core_figures` builds the fixed-seed mixed stream (passive adds near the touch, cancels and
modifies of resting orders, aggressive IOC/market orders), then measures:

* batch: ``OrderBook.process`` over the whole stream from an empty book (median of ``--repeats``),
  once as one call and once in calls of 65,536 rows (no fresh-memory page faults);
* per call: the last ``--per-call-ops`` rows replayed through ``submit``/``cancel``/``modify`` on
  a book warmed with the rest of the stream: calls/s without timers, then p50/p90/p99/p99.9/max
  per call from ``perf_counter_ns`` around each call (the timer's own cost is included and shown);
* memory per order slot.

The stream and its arguments are built before any clock starts; the GC is off while timing.
Results: a table on stdout and JSON (default ``bench/results/core.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_JSON = REPO / "bench" / "results" / "core.json"


def _regimes(text: str) -> list[int]:
    try:
        values = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--live wants integers like 1000,10000: {exc}") from exc
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"--live wants positive integers, got {text!r}")
    return values


def _table(results: Sequence[dict[str, Any]]) -> str:
    from tradecore.telemetry.hdr import format_ns

    head = (
        f"{'resting':>9} {'batch M ops/s':>14} {'64k-row M/s':>12} {'per call M/s':>13}  "
        f"{'p50':>8} {'p90':>8} {'p99':>8} {'p99.9':>8} {'max':>9}   per-op p50/p99"
    )
    rows = [head, "-" * len(head)]
    for fig in results:
        lat = fig["per_call"]["latency_ns"]
        allc = lat["all"]
        per_op = "  ".join(
            f"{name} {format_ns(lat[name]['p50'])}/{format_ns(lat[name]['p99'])}"
            for name in ("submit", "cancel", "modify")
            if name in lat
        )
        rows.append(
            f"{fig['stream']['live_at_end']:>9,} {fig['batch']['ops_per_s'] / 1e6:>14.2f} "
            f"{fig['batch_chunked']['ops_per_s'] / 1e6:>12.2f} "
            f"{fig['per_call']['calls_per_s'] / 1e6:>13.2f}  "
            f"{format_ns(allc['p50']):>8} {format_ns(allc['p90']):>8} {format_ns(allc['p99']):>8} "
            f"{format_ns(allc['p999']):>8} {format_ns(allc['max']):>9}   {per_op}"
        )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=1_000_000, help="stream length (1,000,000)")
    parser.add_argument("--seed", type=int, default=7, help="stream seed (7)")
    parser.add_argument(
        "--live",
        type=_regimes,
        default=[1_000, 10_000, 100_000],
        help="target resting orders per regime, comma separated (1000,10000,100000)",
    )
    parser.add_argument("--per-call-ops", type=int, default=500_000, help="per-call sample")
    parser.add_argument("--repeats", type=int, default=5, help="batch repeats (5)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="results file")
    args = parser.parse_args(argv)
    for name in ("ops", "per_call_ops", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")

    # Before numpy loads: its OpenBLAS threads can spin on the second core after an array
    # operation; nothing here needs BLAS, and on 2 cores a spinning thread steals measured time.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from tradecore.telemetry.corebench import MIX, core_figures
    from tradecore.telemetry.runinfo import git_commit

    mix = ", ".join(f"{k} {v}%" for k, v in MIX.items())
    print(
        f"core bench: mixed stream ({mix}), {args.ops:,} ops, seed {args.seed}, "
        f"load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    results: list[dict[str, Any]] = []
    for live in args.live:
        fig = core_figures(
            args.ops,
            args.seed,
            target_live=live,
            per_call_ops=args.per_call_ops,
            repeats=args.repeats,
        )
        results.append(fig)
        print(
            f"  regime {live:,}: batch {fig['batch']['ops_per_s'] / 1e6:.2f} M ops/s "
            f"({fig['batch_chunked']['ops_per_s'] / 1e6:.2f} in 64k-row calls), "
            f"per call {fig['per_call']['calls_per_s'] / 1e6:.2f} M calls/s",
            flush=True,
        )
    print()
    print(_table(results))
    last = results[-1]
    print(
        f"\nper-call timings include perf_counter_ns (~{last['per_call']['timer_overhead_ns']} ns);"
        f" memory per order slot {last['bytes_per_order']:.1f} bytes; "
        f"events by kind (last regime): {last['batch']['events_by_kind']}"
    )
    payload = {
        "command": " ".join(
            [".venv/bin/python bench/bench_core.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": git_commit(REPO),
        "mix_pct": MIX,
        "regimes": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.json.with_name(args.json.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, args.json)
    print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
