"""Market-data benchmark: parse + apply per Binance depth message, and messages/s on one core.

What it measures, on the real recordings (``../shared/data/binance/cryptofeed``):

* ``depth``: one ``FeedCore.on_message`` per recorded ``depthUpdate`` text, on a synced book:
  since the node's feed became one Rust call (``binance_step``: the scan of the JSON, the
  in-sequence check, the levels applied to the ``L2Book`` with decimal strings turned into
  ticks/lots exactly, the crossed check and the ``BookUpdate``), that call plus the few Python
  lines around it; any other case takes the Python sync rules as before.
  Each round puts the recorded snapshots back (untimed) and applies every recorded diff after
  them, in order, so the books are the real ones. Per-message latency from
  ``perf_counter_ns`` around each call (median, p99, p99.9), the two stages of the older
  two-call path measured alone (``binance_scan``, which returns where the bid and ask arrays
  start, then ``L2Book.apply_depth_at`` at those offsets), and the reference path for
  comparison (``json.loads`` + ``apply_decimal`` on decoded lists).
* ``mixed``: the whole recorded stream (depth, bookTicker, aggTrade, kline) through
  ``FeedCore.on_message``, timed as a batch: messages per second on one core.

Run: ``.venv/bin/python bench/bench_marketdata.py [--rounds N] [--json PATH]``. Not part of
``make test``; figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
from tradecore import Instrument, L2Book
from tradecore._core import binance_scan
from tradecore.marketdata.binance import instruments_from_exchange_info
from tradecore.marketdata.recorder import Recording, load_cryptofeed
from tradecore.marketdata.sync import FeedCore

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance" / "cryptofeed"
if not DATA.is_dir():
    DATA = Path("/work/shared/data/binance/cryptofeed")


def fresh_core(rec: Recording, inst: dict[str, Instrument]) -> tuple[FeedCore, dict[str, int]]:
    """A core whose books hold the recorded snapshots (no diffs applied yet)."""
    core = FeedCore(inst, wall_offset_ns=0)
    ids = {}
    for sym, snaps in rec.snapshots.items():
        last = json.loads(snaps[0][1])["lastUpdateId"]
        ids[sym] = last
        stream = f"{sym.lower()}@depth@100ms"
        empty = {"e": "depthUpdate", "E": 0, "s": sym, "U": last, "u": last, "b": [], "a": []}
        core.on_message(json.dumps({"stream": stream, "data": empty}), 0)  # bridges the snapshot
        core.on_snapshot(sym, snaps[0][1], 0)
        assert core.books[sym].update_id == last
    return core, ids


def applicable_diffs(rec: Recording, ids: dict[str, int]) -> list[str]:
    """The recorded depth diffs that apply on top of the recorded snapshots, in order."""
    out = []
    for _, text in rec.messages:
        d = json.loads(text)["data"]
        if d.get("e") == "depthUpdate" and d["u"] > ids[d["s"]]:
            out.append(text)
    return out


def pct(samples: np.ndarray[Any, np.dtype[np.int64]]) -> dict[str, float]:
    return {
        "median_us": float(np.percentile(samples, 50)) / 1000,
        "p99_us": float(np.percentile(samples, 99)) / 1000,
        "p999_us": float(np.percentile(samples, 99.9)) / 1000,
        "mean_us": float(samples.mean()) / 1000,
    }


def bench_day(day: str, rounds: int) -> dict[str, Any]:
    rec = load_cryptofeed(DATA / day)
    inst = instruments_from_exchange_info(rec.exchange_info or "{}", rec.symbols)
    _, ids = fresh_core(rec, inst)
    diffs = applicable_diffs(rec, ids)
    clock = time.perf_counter_ns
    samples = np.empty(len(diffs) * rounds, dtype=np.int64)
    k = 0
    for _ in range(rounds):
        core, _ = fresh_core(rec, inst)  # untimed: back to the snapshot state
        on_message = core.on_message
        for text in diffs:
            t0 = clock()
            on_message(text, t0)
            samples[k] = clock() - t0
            k += 1
        assert core.stats.depth_applied == len(diffs), core.stats
        assert core.stats.resync_total == 0
    msgs = diffs * rounds
    # Timer overhead (two clock reads), to read the figures against.
    overhead = np.empty(10_000, dtype=np.int64)
    for i in range(len(overhead)):
        t0 = clock()
        overhead[i] = clock() - t0
    # Stages alone (batch-timed over the same messages).
    t0 = clock()
    for m in msgs:
        binance_scan(m)
    t_scan = (clock() - t0) / len(msgs)
    books = {s: L2Book(i.tick_size, i.lot_size) for s, i in inst.items()}
    heads = [binance_scan(m) for m in diffs]
    t0 = clock()
    for _ in range(rounds):
        for m, h in zip(diffs, heads, strict=True):
            books[h[1]].apply_depth_at(m, h[5], h[6], skip_off_grid=True)  # type: ignore[index]
    t_apply_json = (clock() - t0) / len(msgs)
    loads = json.loads
    t0 = clock()
    for m in msgs:
        loads(m)
    t_json = (clock() - t0) / len(msgs)
    parsed = [json.loads(m) for m in diffs]
    books = {s: L2Book(i.tick_size, i.lot_size) for s, i in inst.items()}
    t0 = clock()
    for _ in range(rounds):
        for p in parsed:
            d = p["data"]
            books[d["s"]].apply_decimal(d["b"], d["a"], skip_off_grid=True)
    t_apply = (clock() - t0) / len(msgs)
    levels = sum(len(p["data"]["b"]) + len(p["data"]["a"]) for p in parsed) / len(parsed)
    # The whole recorded stream on one core, timed as a batch per round.
    total_ns = 0
    for _ in range(rounds):
        core, _ = fresh_core(rec, inst)
        on2 = core.on_message
        t0 = clock()
        for _, text in rec.messages:
            on2(text, 0)
        total_ns += clock() - t0
        assert core.stats.resync_total == 0 and core.stats.error_total == 0
    stream = rec.messages * rounds
    mixed_s = total_ns / 1e9
    return {
        "day": day,
        "depth_messages": len(msgs),
        "levels_per_message": round(levels, 2),
        "parse_apply": pct(samples),
        "timer_overhead_us": float(np.median(overhead)) / 1000,
        "stage_binance_scan_us": t_scan / 1000,
        "stage_apply_depth_at_us": t_apply_json / 1000,
        "reference_json_loads_us": t_json / 1000,
        "reference_apply_decimal_us": t_apply / 1000,
        "mixed_messages": len(stream),
        "mixed_msgs_per_s": len(stream) / mixed_s,
        "depth_msgs_per_s": len(msgs) / (samples.sum() / 1e9),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--rounds", type=int, default=40, help="passes over the recorded diffs")
    ap.add_argument(
        "--json", type=Path, default=Path(__file__).parent / "results" / "marketdata.json"
    )
    args = ap.parse_args()
    results = [bench_day(day, args.rounds) for day in ("2021-08-14", "2021-10-12")]
    for r in results:
        pa = r["parse_apply"]
        print(
            f"{r['day']}: {r['depth_messages']} depth msgs ({r['levels_per_message']} levels/msg): "
            f"parse+sync+apply median {pa['median_us']:.2f} us, p99 {pa['p99_us']:.2f} us, "
            f"p99.9 {pa['p999_us']:.2f} us (timer {r['timer_overhead_us']:.2f} us); "
            f"stages alone: binance_scan {r['stage_binance_scan_us']:.2f} us, "
            f"apply_depth_at {r['stage_apply_depth_at_us']:.2f} us (reference path: "
            f"json.loads {r['reference_json_loads_us']:.2f} us + apply_decimal "
            f"{r['reference_apply_decimal_us']:.2f} us)"
        )
        print(
            f"{r['day']}: depth only {r['depth_msgs_per_s']:,.0f} msg/s; mixed stream "
            f"({r['mixed_messages']} msgs) {r['mixed_msgs_per_s']:,.0f} msg/s on one core"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_avg": os.getloadavg(),
    }
    args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(f"written {args.json}")


if __name__ == "__main__":
    main()
