"""Venue speed benchmark: ``tradecore loadgen`` against ``tradecore serve`` on this machine.

Each scenario starts a fresh server subprocess (``tradecore serve``, journal in a temp dir on
the same filesystem as ``--work-dir``) and drives it with the load generator from this process
(the Rust loop runs with the GIL released), so the venue and the generator share the
machine's cores exactly as the README's figures say.

Scenarios, for each ``pipeline.mode`` (``threads``: gateway, engine and publisher each on a
thread; ``inline``: one thread runs the three stages in turn) and for ``fsync = none`` and
``fsync = batch``:

* ``max``: closed loop (each session keeps ``--window`` commands in flight): the saturation
  throughput, in commands per second answered.
* ``sweep``: open loop at each rate of ``--sweep`` (commands/s): the schedule is fixed in
  advance, so a run shows whether the venue keeps up (answered rate = offered rate, bounded
  latency) or falls behind (the backlog and the latency grow for the whole run). The highest
  rate that keeps up (answered >= 99% of offered, p99 under 10 ms, every check passed) is the
  **sustained** throughput.
* ``latency``: open loop at ``--latency-rate`` (default 100,000 commands/s): wire-to-wire
  latency percentiles from each command's intended send time.

The throughput runs let the generator sleep between turns (``--wait sleep``: batched sends,
little CPU taken from the venue); the latency runs poll and yield (``--wait yield``: exact
send times, reports timed as they arrive).

Before and after the runs, ``tradecore hiccups`` (two threads spinning on the clock for
``--hiccup-seconds``) measures how often and how long the machine itself stalls a busy thread,
and the latency floor those stalls alone impose on a two-thread pipeline (generator + venue);
read the latency runs against that floor.

Writes ``bench/results/loadgen.json`` (every run's full document, plus the machine) and
``bench/results/loadgen.png`` (latency percentile curves of the open-loop runs). Prints one
line per run. Not part of ``make test``: a full run takes about four minutes.

    .venv/bin/python bench/loadgen_bench.py            # full run
    .venv/bin/python bench/loadgen_bench.py --quick    # 2-second runs, to check it works
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tradecore.venue.loadgen import LoadgenRun, measure_hiccups, plot_latency, run_loadgen
from tradecore.venue.server import ServeProcess

ROOT = Path(__file__).resolve().parent.parent


def _config(path: Path, journal: Path, fsync: str, accounts: int, mode: str = "threads") -> None:
    lines = [
        "[listen]",
        'order_entry = "127.0.0.1:0"',
        'metrics = "127.0.0.1:0"',
        "[session]",
        "rate_limit_per_sec = 1000000000",
        "rate_limit_burst = 1000000000",
        "max_sessions = 256",
        "cancel_on_disconnect = true",
        "[journal]",
        f'dir = "{journal}"',
        f'fsync = "{fsync}"',
        "batch_records = 256",
        "batch_micros = 1000",
        "snapshot_every = 0",
        "segment_size = 268435456",
        "[feed]",
        "enabled = false",
        "[pipeline]",
        f'mode = "{mode}"',
    ]
    for sid, sym, lo, hi in (
        (1, "BTC-USD", 1_000_000, 20_000_000),
        (2, "ETH-USD", 10_000, 2_000_000),
    ):
        lines += [
            "[[instrument]]",
            f"symbol_id = {sid}",
            f'symbol = "{sym}"',
            'tick_size = "0.01"',
            'lot_size = "0.001"',
            f"price_band = {{ lo_ticks = {lo}, hi_ticks = {hi} }}",
            "max_order_qty = 1000000",
            "book_capacity = 200000",
        ]
    for a in range(1, accounts + 1):
        digest = hashlib.sha256(f"bench-key-{a}".encode()).hexdigest()
        lines += ["[[account]]", f"account = {a}", f'api_key_sha256 = "{digest}"']
    path.write_text("\n".join(lines) + "\n")


def _load() -> float:
    return os.getloadavg()[0]


def _wait_quiet(limit: float, patience: float) -> float:
    """Wait up to ``patience`` seconds for the 1-minute load average to drop below ``limit``;
    returns the load average at the start of the run."""
    deadline = time.monotonic() + patience
    while _load() > limit and time.monotonic() < deadline:
        time.sleep(5)
    return _load()


def _run(
    name: str,
    fsync: str,
    work: Path,
    args: argparse.Namespace,
    mode: str = "threads",
    **load: Any,
) -> dict[str, Any]:
    run_dir = Path(tempfile.mkdtemp(prefix=f"{name}-{fsync}-{mode}-", dir=work))
    cfg = run_dir / "venue.toml"
    _config(cfg, run_dir / "journal", fsync, args.sessions, mode)
    keys = run_dir / "keys.txt"
    keys.write_text("".join(f"{a} bench-key-{a}\n" for a in range(1, args.sessions + 1)))
    load_before = _wait_quiet(args.max_load, args.patience)
    load.setdefault("duration", args.duration)
    with ServeProcess(cfg, log_file=run_dir / "serve.log") as venue:
        host, port = venue.order_entry
        result: LoadgenRun = run_loadgen(
            config=cfg,
            connect=f"{host}:{port}",
            keys_file=keys,
            sessions=args.sessions,
            warmup=args.warmup,
            seed=args.seed,
            drain_timeout=30.0,
            **load,
        )
    doc = dict(result.data)
    doc["scenario"] = {
        "name": name,
        "fsync": fsync,
        "pipeline": mode,
        "loadavg_1m_at_start": load_before,
    }
    t = doc["throughput"]
    lat = doc["latency_ns"]["all"]
    print(
        f"{name:8} fsync={fsync:5} {mode:7} answered {t['answered_per_s']:>12,.0f}/s  "
        f"p50 {lat['p50'] / 1e3:8.1f} us  p99 {lat['p99'] / 1e3:9.1f} us  "
        f"p99.9 {lat['p99_9'] / 1e3:9.1f} us  max {lat['max'] / 1e3:9.1f} us  "
        f"checks {'ok' if result.ok else ','.join(result.failed_checks)}  "
        f"(load {load_before:.2f})",
        flush=True,
    )
    return doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="2-second runs (a smoke test)")
    p.add_argument("--sessions", type=int, default=4, help="sessions, one account each")
    p.add_argument("--window", type=int, default=2048, help="closed loop: in flight per session")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of sending per run")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds left out of the figures")
    p.add_argument("--latency-rate", type=int, default=100_000)
    p.add_argument(
        "--sweep",
        default="250000,500000,750000,1000000",
        help="open-loop rates (commands/s) for the sustained-throughput sweep",
    )
    p.add_argument("--sweep-duration", type=float, default=5.0, help="seconds per sweep run")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--fsync", default="none,batch", help="comma-separated fsync modes")
    p.add_argument(
        "--pipeline",
        default="threads,inline",
        help="comma-separated pipeline.mode values (threads: a thread per stage; inline: one)",
    )
    p.add_argument("--max-load", type=float, default=1.0, help="wait for a quieter machine")
    p.add_argument("--patience", type=float, default=120.0, help="... at most this long (s)")
    p.add_argument("--work-dir", type=Path, default=None, help="journals go here (temp dir)")
    p.add_argument("--scenarios", default="max,sweep,latency", help="comma-separated subset to run")
    p.add_argument(
        "--hiccup-seconds",
        type=float,
        default=10.0,
        help="machine stall meter (tradecore hiccups, 2 threads) before and after the runs; 0: off",
    )
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "loadgen.json")
    p.add_argument("--plot", type=Path, default=ROOT / "bench" / "results" / "loadgen.png")
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.patience = 2.0, 0.5, 0.0
        args.sweep_duration = 2.0
        args.hiccup_seconds = min(args.hiccup_seconds, 2.0)
    scenarios = set(args.scenarios.split(","))
    unknown = scenarios - {"max", "sweep", "latency"}
    if unknown:
        p.error(f"--scenarios: unknown {sorted(unknown)} (known: max, sweep, latency)")

    hiccups: list[dict[str, Any]] = []

    def meter(when: str) -> None:
        if args.hiccup_seconds > 0:
            _wait_quiet(args.max_load, args.patience)
            h = measure_hiccups(threads=2, seconds=args.hiccup_seconds)
            print(f"[{when}] {h.summary}", end="", flush=True)
            hiccups.append({"when": when, **h.data})

    meter("before the runs")

    modes = args.pipeline.split(",")
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="loadgen-bench-", dir=args.work_dir) as tmp:
        work = Path(tmp)
        for mode in modes:
            for fsync in args.fsync.split(","):
                if "max" in scenarios:
                    runs.append(
                        _run(
                            "max",
                            fsync,
                            work,
                            args,
                            mode,
                            rate="max",
                            window=args.window,
                            wait="sleep",
                        )
                    )
                for rate in args.sweep.split(",") if "sweep" in scenarios else []:
                    runs.append(
                        _run(
                            "sweep",
                            fsync,
                            work,
                            args,
                            mode,
                            rate=rate,
                            duration=args.sweep_duration,
                            wait="sleep",
                        )
                    )
                if "latency" in scenarios:
                    runs.append(
                        _run(
                            "latency",
                            fsync,
                            work,
                            args,
                            mode,
                            rate=str(args.latency_rate),
                            wait="yield",
                        )
                    )
    meter("after the runs")

    def key(r: dict[str, Any]) -> str:
        return f"{r['scenario']['fsync']}/{r['scenario']['pipeline']}"

    sustained: dict[str, int | None] = {}
    for mode in modes:
        for fsync in args.fsync.split(","):
            kept = [
                r["settings"]["rate"]
                for r in runs
                if r["scenario"]["name"] == "sweep"
                and key(r) == f"{fsync}/{mode}"
                and r["ok"]
                and r["throughput"]["answered_per_s"] >= 0.99 * r["settings"]["rate"]
                and r["latency_ns"]["all"]["p99"] < 10_000_000
            ]
            sustained[f"{fsync}/{mode}"] = max(kept) if kept else None
    maxima = {
        key(r): round(r["throughput"]["answered_per_s"])
        for r in runs
        if r["scenario"]["name"] == "max"
    }
    print(f"sustained (open loop kept up): {sustained}; closed-loop maximum: {maxima}")
    out = {
        "benchmark": "venue wire-to-wire (tradecore loadgen -> tradecore serve)",
        "command": " ".join(
            [Path(sys.executable).name, "bench/loadgen_bench.py", *(argv or sys.argv[1:])]
        ),
        "machine": runs[0]["machine"] if runs else {},
        "python": platform.python_version(),
        "targets": {
            "max_commands_per_s_fsync_none": 1_000_000,
            "latency_rate": args.latency_rate,
            "p99_ns": 50_000,
            "p99_9_ns": 200_000,
        },
        "sustained_commands_per_s": sustained,
        "closed_loop_max_commands_per_s": maxima,
        "machine_hiccups": hiccups,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    curves = [
        (
            f"{r['settings']['rate']:,} commands/s offered, fsync {r['scenario']['fsync']}, "
            f"{r['scenario']['pipeline']} pipeline",
            r,
        )
        for r in runs
        if r["scenario"]["name"] == "latency"
    ]
    plot_latency(
        curves,
        args.plot,
        f"tradecore venue: wire-to-wire latency, {args.sessions} sessions, "
        f"{runs[0]['machine'].get('logical_cpus', '?') if runs else '?'} cores shared",
    )
    print(f"wrote {args.out} and {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
