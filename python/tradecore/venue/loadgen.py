"""The venue load generator: ``tradecore loadgen`` and :func:`run_loadgen`.

The load itself runs in Rust (``tradecore_engine::loadgen``, also the ``loadgen`` binary): N
TCP sessions, an open-loop schedule kept whatever the venue does (latency measured from each
command's intended send time, which corrects for coordinated omission) or a closed loop that
finds the saturation throughput, a seeded order mix, and HdrHistogram percentiles of the
wire-to-wire latency from send to each command's first report. The binding releases the GIL
for the whole run.

This module owns the command line (options, printing, exit status), the JSON file (the Rust
document plus the plot's path) and the latency plot (:func:`plot_latency`, a percentile curve
with matplotlib, imported only when a plot is asked for).

:func:`measure_hiccups` (``tradecore hiccups``) measures the machine rather than the venue:
threads that only read the clock record every stall the OS or hypervisor imposes on them, and
the stalls give the latency floor no venue can beat on this machine (quantile by quantile).

Exit status of ``tradecore loadgen``: 0 when every check passed, 1 when one failed (the
summary's last line names it), 2 on bad options or an unreachable venue.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from tradecore import _core
from tradecore.errors import UsageError

__all__ = ["Hiccups", "LoadgenRun", "measure_hiccups", "plot_latency", "register", "run_loadgen"]


@dataclass(frozen=True)
class LoadgenRun:
    """One finished run: its figures (the JSON document as a dict), summary text and checks."""

    data: dict[str, Any]
    summary: str
    ok: bool
    failed_checks: tuple[str, ...]


@dataclass(frozen=True)
class Hiccups:
    """The machine's stalls: the JSON document as a dict (``floor_ns`` by quantile,
    ``by_threshold`` counts and late shares, ``per_thread``) and the summary text."""

    data: dict[str, Any]
    summary: str

    def floor_ns(self, quantile: str) -> int:
        """The latency floor (ns) at ``quantile`` (``"p50"``, ``"p99"``, ``"p99.9"``,
        ``"p99.99"``) that the stalls alone impose on a pipeline of this many threads."""
        floors: dict[str, int] = self.data["floor_ns"]
        if quantile not in floors:
            raise ValueError(f"quantile {quantile!r} not measured; have {sorted(floors)}")
        return floors[quantile]


def measure_hiccups(threads: int = 2, seconds: float = 10.0) -> Hiccups:
    """Spin ``threads`` threads on the clock for ``seconds`` and return their stalls.

    Every thread keeps one core busy for the whole time (the GIL is released). Raises
    ``ValueError`` for ``threads`` outside 1..256 or ``seconds`` outside (0, 3600].
    """
    summary, doc = _core.measure_hiccups(threads=threads, seconds=seconds)
    return Hiccups(data=json.loads(doc), summary=summary)


def run_loadgen(**options: Any) -> LoadgenRun:
    """Run the load generator; keyword arguments as :func:`tradecore._core.run_loadgen`.

    Raises :class:`~tradecore.errors.UsageError` / :class:`~tradecore.errors.ConfigError`
    for bad options and ``ConnectionError`` when the venue cannot be reached or refuses a
    logon. Problems during the run are in the result's checks, not exceptions.
    """
    if isinstance(options.get("rate"), int):
        options["rate"] = str(options["rate"])
    for key in ("config", "keys_file", "report_log"):
        if options.get(key) is not None:
            options[key] = os.fspath(options[key])
    result = _core.run_loadgen(**options)
    return LoadgenRun(
        data=json.loads(result.json),
        summary=result.summary,
        ok=result.ok,
        failed_checks=tuple(result.failed_checks),
    )


def plot_latency(
    runs: Sequence[tuple[str, dict[str, Any]]], path: str | os.PathLike[str], title: str
) -> None:
    """Write a PNG of latency percentile curves: one line per ``(label, document)``.

    The x axis is the percentile on a log scale of ``1 / (1 - q)`` (50%, 90%, 99%, 99.9%,
    ...), the y axis the latency in microseconds (log scale), the usual HdrHistogram view: the
    tail is as readable as the median.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    top = 1.0
    for label, doc in runs:
        points = [(q, v) for q, v in doc["latency_curve_ns"] if q < 1.0]
        if not points:
            continue
        xs = [1.0 / (1.0 - q) for q, _ in points]
        ys = [v / 1000.0 for _, v in points]
        top = max(top, max(xs))
        ax.plot(xs, ys, label=label, linewidth=1.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = [(1.0, "0%"), (2.0, "50%"), (10.0, "90%"), (100.0, "99%"), (1000.0, "99.9%")]
    ticks += [(10000.0, "99.99%"), (100000.0, "99.999%")]
    ticks = [t for t in ticks if t[0] <= top * 1.01] or ticks[:1]
    ax.set_xticks([t[0] for t in ticks])
    ax.set_xticklabels([t[1] for t in ticks])
    ax.set_xlabel("percentile")
    ax.set_ylabel("wire-to-wire latency (µs)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _defaults() -> dict[str, str]:
    return dict(_core.loadgen_defaults())


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def _nonneg_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def _cmd_loadgen(args: argparse.Namespace, out: TextIO) -> int:
    if args.plot is not None and args.json is None:
        raise UsageError("--plot needs --json too (the plot is drawn from the same figures)")
    run = run_loadgen(
        config=args.config,
        connect=args.connect,
        accounts=args.account or [],
        keys_file=args.keys_file,
        sessions=args.sessions,
        rate=args.rate,
        window=args.window,
        duration=args.duration,
        warmup=args.warmup,
        mix=args.mix,
        seed=args.seed,
        symbols=args.symbol or [],
        arrivals=args.arrivals,
        wait=args.wait,
        depth=args.depth,
        cross=args.cross,
        max_qty=args.max_qty,
        max_live=args.max_live,
        max_inflight=args.max_inflight,
        heartbeat_ms=args.heartbeat_ms,
        drain_timeout=args.drain_timeout,
        report_log=args.report_log,
        allow_rejects=args.allow_reject or [],
    )
    if not args.quiet:
        print(run.summary, file=out, flush=True)
    if args.json is not None:
        doc = dict(run.data)
        if args.plot is not None:
            s = doc["settings"]
            what = (
                f"{s['rate']:,} commands/s offered"
                if s["mode"] == "open"
                else f"closed loop, window {s['window']}"
            )
            plot_latency([("all commands", doc)], args.plot, f"tradecore venue: {what}")
            doc["plot"] = str(args.plot)
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
    return 0 if run.ok else 1


def _cmd_hiccups(args: argparse.Namespace, out: TextIO) -> int:
    try:
        h = measure_hiccups(args.threads, args.seconds)
    except ValueError as e:
        raise UsageError(f"hiccups: {e}") from None
    print(h.summary, file=out, end="", flush=True)
    if args.json is not None:
        Path(args.json).write_text(json.dumps(h.data, indent=1) + "\n")
    return 0


def _register_hiccups(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "hiccups",
        help="measure how often and how long this machine stalls a running thread",
        description=(
            "Spin --threads threads on the clock for --seconds and record every gap of 2 µs "
            "or more between two reads: time the OS or the hypervisor took the core away. "
            "Prints stall counts and time shares by length, and the latency floor those stalls "
            "alone put under any pipeline of that many busy threads (a command arriving "
            "during a stall waits for its end). Run it beside a loadgen result to tell the "
            "venue's latency from the machine's."
        ),
    )
    p.add_argument(
        "--threads", type=_nonneg_int, default=2, help="threads spinning at once (default 2)"
    )
    p.add_argument("--seconds", type=_positive_float, default=10.0, help="how long (default 10)")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the figures as JSON")
    p.set_defaults(handler=_cmd_hiccups)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``tradecore loadgen`` and ``tradecore hiccups`` to the ``tradecore`` parser."""
    _register_hiccups(sub)
    d = _defaults()
    p = sub.add_parser(
        "loadgen",
        help="drive a venue with N sessions; throughput and wire-to-wire latency",
        description=(
            "Drive a running venue (tradecore serve) with N TCP sessions: an open-loop "
            "schedule at --rate commands/s that is kept however slow the venue is (latency is "
            "measured from each command's intended send time), or --rate max for a closed "
            "loop that finds the saturation throughput. The order mix is seeded: passive adds "
            "near the touch, cancels and modifies of the session's own resting orders, "
            "aggressive IOC orders that cross. Prints throughput, rejects by reason and "
            "p50/p90/p99/p99.9/max latency; --json and --plot write the figures and a "
            "percentile plot. Exit status 0 when every check passed (every command answered, "
            "contiguous report numbers, no unexpected reject, no dropped session), 1 when "
            "one failed, 2 on bad options or an unreachable venue."
        ),
    )
    g = p.add_argument_group("venue and sessions")
    g.add_argument(
        "--config", type=Path, help="venue config (address, instruments, known accounts)"
    )
    g.add_argument("--connect", metavar="HOST:PORT", help="order-entry address (default: config's)")
    g.add_argument(
        "--account",
        action="append",
        metavar="ID:KEY",
        help="a login (repeatable); sessions use the logins round robin",
    )
    g.add_argument("--keys-file", type=Path, metavar="FILE", help="logins, one 'ID KEY' per line")
    g.add_argument("--sessions", type=_nonneg_int, help="TCP sessions (default: one per login)")
    g.add_argument(
        "--heartbeat-ms", type=_nonneg_int, help=f"heartbeat asked (default {d['heartbeat_ms']})"
    )
    g = p.add_argument_group("load")
    g.add_argument(
        "--rate",
        help=f"commands/s, all sessions together, or 'max' (default {d['rate']})",
    )
    g.add_argument(
        "--window",
        type=_nonneg_int,
        help=f"--rate max: commands in flight per session (default {d['window']})",
    )
    g.add_argument(
        "--duration", type=_positive_float, help=f"seconds of sending (default {d['duration']})"
    )
    g.add_argument(
        "--warmup",
        type=_positive_float,
        help=f"first seconds left out of latency and rates (default {d['warmup']})",
    )
    g.add_argument("--mix", help=f"order mix weights (default {d['mix']})")
    g.add_argument("--seed", type=_nonneg_int, help=f"seed of the mix (default {d['seed']})")
    g.add_argument(
        "--symbol",
        action="append",
        metavar="ID[:MID]",
        help="instrument and mid price in ticks (repeatable; default: every configured one, "
        "mid = centre of its band)",
    )
    g.add_argument(
        "--arrivals",
        choices=("uniform", "poisson"),
        help=f"open-loop spacing (default {d['arrivals']})",
    )
    g.add_argument(
        "--wait",
        choices=("yield", "spin", "sleep"),
        help=f"idle behaviour below 1 ms (default {d['wait']})",
    )
    g.add_argument(
        "--depth", type=_nonneg_int, help=f"passive orders rest 1..N ticks off mid ({d['depth']})"
    )
    g.add_argument(
        "--cross", type=_nonneg_int, help=f"aggressive orders reach 1..N ticks ({d['cross']})"
    )
    g.add_argument("--max-qty", type=_nonneg_int, help=f"order size 1..N lots ({d['max_qty']})")
    g.add_argument(
        "--max-live", type=_nonneg_int, help=f"resting orders per session ({d['max_live']})"
    )
    g.add_argument(
        "--max-inflight",
        type=_nonneg_int,
        help=f"unanswered commands per session ({d['max_inflight']})",
    )
    g.add_argument(
        "--drain-timeout",
        type=_positive_float,
        help=f"seconds to wait for the last reports ({d['drain_timeout']})",
    )
    g.add_argument(
        "--allow-reject",
        action="append",
        metavar="REASONS",
        help=f"reject reasons that do not fail the run, or 'none' ({d['allow_rejects']})",
    )
    g = p.add_argument_group("output")
    g.add_argument("--json", type=Path, metavar="FILE", help="write the figures as JSON")
    g.add_argument("--plot", type=Path, metavar="FILE", help="write the latency plot (PNG)")
    g.add_argument("--report-log", type=Path, metavar="FILE", help="CSV of every report received")
    g.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(handler=_cmd_loadgen)
