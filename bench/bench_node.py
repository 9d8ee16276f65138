#!/usr/bin/env python3
"""The trading node end to end: tick-to-trade and market-data messages per second, one core.

Run: ``.venv/bin/python bench/bench_node.py [--passes N] [--json PATH]`` (not part of
``make test``; the figures depend on the machine and its load).

Input: the real Binance recordings shipped with the node (both days, all 8 symbols: depth
diffs, bookTicker, aggTrade, kline), replayed ``--passes`` times back to back as one long
stream: each pass after the first has its receive times shifted past the previous pass and its
depth ``U``/``u`` renumbered to follow on, so the books stay synced from the one snapshot per
symbol and keep applying the recorded (absolute) levels. The stream is built before any clock
starts.

Node: the real :class:`tradecore.node.Node` with the recorded source (``FeedCore``: JSON parse,
book sync, Rust ``L2Book``), one built-in imbalance strategy per symbol (Python; features
inside), pre-trade risk with per-order limits, the order manager, the paper broker (zero
latency, fees) and the SQLite store writing in the background; no HTTP port.

Figures, from one run of the same stream:

1. ``node``: the whole node over the stream, no probes: messages/s (wall time of ``run``'s
   loop) and tick-to-trade from the node's own HdrHistogram: from ``time.monotonic_ns()`` just
   before a message is parsed to the moment the order is handed to the paper broker (so parse,
   book, features, strategy, risk and the order manager are inside). Issue targets: p50 < 10 us,
   p99 < 20 us, >= 100,000 messages/s.
2. ``stages``: the same stream through the same node with ``perf_counter_ns`` probes around
   each stage, to show the share of time in each: ``parse+book`` (``FeedCore.on_message``: the
   JSON scan, field checks, sync rules, ``L2Book.apply_decimal``, the event), ``features``
   (``BookFeatures.update``, measured alone on the same books), ``strategy`` (the rest of
   ``on_book``/``on_trade``: the signal and the orders, i.e. risk, order manager and the paper
   broker's ``submit``, which with zero latency matches at once and reports the fills inside the
   call), ``broker`` (paper fills of resting orders on each market event), ``node`` (the rest:
   dispatch, counters, delivering fills and order updates to strategies, the portfolio, risk
   re-evaluation after fills and every 100 ms of market time, store puts). ``json.loads`` alone
   on the same texts is shown for reference. The probes' own cost is reported.

Results: a table on stdout and JSON (default ``bench/results/node.json``).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tradecore.marketdata.events import BookUpdate, TradeTick
from tradecore.marketdata.recorder import Recording
from tradecore.node.config import parse_config
from tradecore.node.node import Node
from tradecore.node.sources import RecordedNodeSource, _load, embedded_recordings
from tradecore.strategy.features import BookFeatures
from tradecore.telemetry.hdr import format_ns

REPO = Path(__file__).resolve().parent.parent
DEFAULT_JSON = REPO / "bench" / "results" / "node.json"

SYMBOLS = ["FTMUSDT", "SXPBTC", "BADGERBTC", "XMRBTC", "NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR"]


def _config(tmp: Path) -> Any:
    strategies = "\n".join(
        f"""
[[strategy]]
name = "imb-{sym.lower()}"
kind = "imbalance"
account = {i + 1}
initial_cash = "1000000"
params = {{ symbol = "{sym}", levels = 5, threshold = 0.2, order_qty = 1, max_position = 1000000 }}
"""
        for i, sym in enumerate(SYMBOLS)
    )
    text = f"""
[node]
name = "bench"
symbols = {json.dumps(SYMBOLS)}
[source]
recording = "embedded"
{strategies}
[risk.defaults]
max_order_qty = 1000000
max_position = 100000000
price_band_bps = "500"
[risk.account_defaults]
max_open_orders = 100
rate_limit = {{ per_second = "1000000", burst = 1000000 }}
max_daily_loss = "1000000"
[broker]
maker_fee_bps = "1"
taker_fee_bps = "7.5"
[storage]
path = "bench.sqlite"
[metrics]
enabled = false
"""
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "bench.toml"
    path.write_text(text)
    return parse_config(tomllib.loads(text), path)


def _depth_ids(text: str) -> tuple[str, int, int] | None:
    msg = json.loads(text)
    data = msg.get("data", {})
    if data.get("e") != "depthUpdate":
        return None
    return str(data["s"]), int(data["U"]), int(data["u"])


def long_stream(rec: Recording, passes: int) -> Recording:
    """``rec`` played ``passes`` times: times shifted, depth ids renumbered (module doc)."""
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for _t, text in rec.messages:
        ids = _depth_ids(text)
        if ids is not None:
            sym, u0, u1 = ids
            first.setdefault(sym, u0)
            last[sym] = u1
    t0 = rec.messages[0][0]
    span = rec.messages[-1][0] - t0 + 1_000_000
    messages: list[tuple[int, str]] = list(rec.messages)
    for k in range(1, passes):
        for t, text in rec.messages:
            msg = json.loads(text)
            data = msg.get("data", {})
            if data.get("e") == "depthUpdate":
                sym = data["s"]
                shift = k * (last[sym] - first[sym] + 1)
                data["U"] += shift
                data["u"] += shift
                text = json.dumps(msg, separators=(",", ":"))
            messages.append((t + k * span, text))
    return Recording(
        streams=rec.streams,
        messages=messages,
        snapshots=rec.snapshots,
        exchange_info=rec.exchange_info,
        source=rec.source,
        disconnects=[],
    )


def run_node(
    recs: list[Recording], tmp: Path, probe: Callable[[Node], dict[str, Any]] | None = None
) -> tuple[Node, Any, float, dict[str, Any]]:
    loaded = _config(tmp)
    src = RecordedNodeSource(recs, SYMBOLS)
    node = Node(loaded, source=src, watch_config=False)
    probes = probe(node) if probe is not None else {}
    gc.collect()
    gc.disable()
    t0 = time.perf_counter()
    summary = node.run()
    elapsed = time.perf_counter() - t0
    gc.enable()
    return node, summary, elapsed, probes


def _patch(obj: object, name: str, fn: Callable[..., Any]) -> None:
    """Replace the bound method ``name`` of ``obj`` with the probe ``fn`` (instance only)."""
    setattr(obj, name, fn)


def _probes(node: Node) -> dict[str, Any]:
    """Wrap the stages of ``node`` with perf_counter_ns probes; returns the accumulators."""
    pc = time.perf_counter_ns
    acc: dict[str, Any] = {"source": 0, "strategy": 0, "broker": 0, "loop": 0, "events": 0}
    src = node.source
    assert isinstance(src, RecordedNodeSource)
    for core in src.cores:
        inner = core.on_message

        def timed_message(text: str | bytes, recv_ns: int, _inner: Any = inner) -> Any:
            t = pc()
            ev = _inner(text, recv_ns)
            acc["source"] += pc() - t
            return ev

        _patch(core, "on_message", timed_message)
    for slot in node.slots:
        strat = slot.strategy
        on_book, on_trade = strat.on_book, strat.on_trade

        def timed_book(ev: BookUpdate, _f: Any = on_book) -> None:
            t = pc()
            _f(ev)
            acc["strategy"] += pc() - t

        def timed_trade(ev: TradeTick, _f: Any = on_trade) -> None:
            t = pc()
            _f(ev)
            acc["strategy"] += pc() - t

        _patch(strat, "on_book", timed_book)
        _patch(strat, "on_trade", timed_trade)
    broker = node.broker
    b_book, b_trade = broker.on_book, broker.on_trade

    def timed_b_book(ev: BookUpdate) -> None:
        t = pc()
        b_book(ev)
        acc["broker"] += pc() - t

    def timed_b_trade(ev: TradeTick) -> None:
        t = pc()
        b_trade(ev)
        acc["broker"] += pc() - t

    _patch(broker, "on_book", timed_b_book)
    _patch(broker, "on_trade", timed_b_trade)
    handle = node._on_market_event

    def timed_event(ev: Any) -> None:
        t = pc()
        handle(ev)
        acc["loop"] += pc() - t
        acc["events"] += 1

    _patch(node, "_on_market_event", timed_event)
    return acc


def alone_parse_and_features(recs: list[Recording]) -> dict[str, int]:
    """``json.loads`` of every message, and ``BookFeatures.update`` on every synced book."""
    pc = time.perf_counter_ns
    texts = [text for rec in recs for _t, text in rec.messages]
    gc.disable()
    t = pc()
    for text in texts:
        json.loads(text)
    parse = pc() - t
    src = RecordedNodeSource(recs, SYMBOLS)
    feats = {s: BookFeatures(levels=5, depth_decay=0.5, momentum_windows=()) for s in SYMBOLS}
    features = 0
    for ev in src:
        if type(ev) is BookUpdate:
            f = feats[ev.symbol]
            t = pc()
            f.update(ev.book)
            features += pc() - t
    gc.enable()
    return {"parse_ns": parse, "features_ns": features, "messages": len(texts)}


def probe_cost(n: int = 200_000) -> float:
    pc = time.perf_counter_ns
    acc = 0
    t0 = pc()
    for _ in range(n):
        t = pc()
        acc += pc() - t
    return (pc() - t0) / n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--passes", type=int, default=40, help="times the recordings are replayed")
    ap.add_argument("--repeats", type=int, default=3, help="node runs; the fastest is reported")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)

    base = [_load(p, None) for p in embedded_recordings()]
    recs = [long_stream(r, args.passes) for r in base]
    n_msgs = sum(len(r.messages) for r in recs)
    load_before = os.getloadavg()
    print(
        f"stream: {n_msgs:,} recorded messages ({len(base)} recordings x {args.passes} passes); "
        f"load average {load_before[0]:.2f} on {os.cpu_count()} CPUs"
    )

    with tempfile.TemporaryDirectory(prefix="bench-node-") as tmp_s:
        tmp = Path(tmp_s)
        # Warm-up run (imports, first-call costs), then the measured runs.
        run_node([long_stream(r, 2) for r in base], tmp / "warm")
        runs = []
        for i in range(args.repeats):
            _node, summary, elapsed, _ = run_node(recs, tmp / f"node{i}")
            runs.append((summary.elapsed_s, summary, elapsed))
            print(
                f"  run {i + 1}: loop {summary.elapsed_s:.3f} s = "
                f"{n_msgs / summary.elapsed_s:,.0f} messages/s; tick-to-trade "
                f"{summary.tick_to_trade.format() if summary.tick_to_trade else '-'}"
            )
        loop_s, summary, elapsed = min(runs, key=lambda r: r[0])
        events = summary.messages
        t2t = summary.tick_to_trade
        msg_rate = n_msgs / loop_s
        print(
            f"node (fastest run): {n_msgs:,} messages ({events:,} events) in {loop_s:.3f} s "
            f"= {msg_rate:,.0f} messages/s; orders {summary.orders:,}, fills {summary.fills:,}"
        )
        if t2t is not None:
            print(
                f"tick-to-trade: p50 {format_ns(t2t.p50)}  p99 {format_ns(t2t.p99)}  "
                f"p99.9 {format_ns(t2t.p999)}  max {format_ns(t2t.max)}  (n={t2t.count:,}; "
                "targets p50 < 10 us, p99 < 20 us)"
            )
        # The same stream with probes.
        _n2, s2, _elapsed2, acc = run_node(recs, tmp / "probed", _probes)
    alone = alone_parse_and_features(recs)
    cost = probe_cost()
    total = s2.elapsed_s * 1e9
    parse = alone["parse_ns"]
    feats = alone["features_ns"]
    strategy = max(0, acc["strategy"] - feats)
    broker = acc["broker"]
    node_rest = max(0.0, total - acc["source"] - acc["strategy"] - broker)
    stages = {
        "parse+book": acc["source"],
        "features": feats,
        "strategy": strategy,
        "broker": broker,
        "node": node_rest,
    }
    print(
        f"stages (probed run: loop {s2.elapsed_s:.3f} s, {s2.messages:,} events, "
        f"{n_msgs / s2.elapsed_s:,.0f} messages/s; probe cost {cost:.0f} ns each):"
    )
    for name, ns in stages.items():
        print(f"  {name:<9} {ns / n_msgs:8.0f} ns/message  {100 * ns / total:5.1f} %")
    print(f"  (json.loads alone on the same texts: {parse / n_msgs:.0f} ns/message)")

    result = {
        "bench": "node",
        "machine": {
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "load_average_before": load_before[0],
            "load_average_after": os.getloadavg()[0],
        },
        "stream": {"messages": n_msgs, "passes": args.passes, "symbols": SYMBOLS},
        "node": {
            "loop_s": loop_s,
            "run_s": elapsed,
            "messages_per_s": msg_rate,
            "events": events,
            "orders": summary.orders,
            "fills": summary.fills,
            "tick_to_trade_ns": None if t2t is None else t2t.as_dict(),
            "runs_loop_s": [r[0] for r in runs],
        },
        "stages_ns_per_message": {k: v / n_msgs for k, v in stages.items()},
        "stages_share": {k: v / total for k, v in stages.items()},
        "json_loads_alone_ns_per_message": parse / n_msgs,
        "probe_cost_ns": cost,
        "targets": {
            "tick_to_trade_p50_ns": 10_000,
            "tick_to_trade_p99_ns": 20_000,
            "messages_per_s": 100_000,
        },
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
