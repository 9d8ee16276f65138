#!/usr/bin/env python3
"""The trading node end to end: tick-to-trade and market-data messages per second, one core.

Run: ``.venv/bin/python bench/bench_node.py [--passes N] [--json PATH]`` (not part of
``make test``; the figures depend on the machine and its load).

Input: the real Binance recordings shipped with the node (both days, all 8 symbols: depth
diffs, bookTicker, aggTrade, kline), replayed ``--passes`` times back to back as one long
stream (:func:`long_stream`): later passes are shifted in time, their depth ids renumbered to
follow on, and a bridge diff per symbol puts each book back where the recording starts, so all
8 books stay synced for the whole run. The stream is built before any clock starts.

Node: the real :class:`tradecore.node.Node` with the recorded source (``FeedCore``: JSON scan,
book sync, Rust ``L2Book``), one built-in imbalance strategy per symbol (Python; features
inside), pre-trade risk with per-order limits and loss limits, the order manager, the paper
broker (zero latency, fees) and the SQLite store writing in the background; no HTTP port; the
garbage collector on, as in production; the node's clock on wall time as live (``--clock
event`` runs its timers on the recording's time instead: see :data:`CLOCKS`). Two cases
(:data:`CASES`): ``typical`` (the strategy's default parameters) and ``heavy`` (an order on
about every third message).

Figures, per case, from runs of the same stream:

1. ``node``: the whole node over the stream, no probes, fastest of ``--repeats`` runs:
   messages/s (wall time of ``run``'s loop), the loop's CPU time per message (the node
   thread's ``thread_time``: what the loop costs without the time other processes take the
   core, the figure to compare on a loaded machine; the part of it spent in the garbage
   collector is shown too, from ``gc.callbacks``) and tick-to-trade from the node's own
   HdrHistogram: from ``time.monotonic_ns()`` just before a message is parsed to the moment
   the order is handed to the paper broker (so parse, book, the broker's book update,
   features, strategy, risk and the order manager are inside). Issue targets: p50 < 10 us,
   p99 < 20 us, >= 100,000 messages/s.
2. ``stages``: the same stream through the same node with ``perf_counter_ns`` probes around
   each stage, to show the share of time in each: ``parse+book`` (``FeedCore.on_message``: the
   JSON scan, sync rules, ``L2Book.apply_depth_at``, the event), ``features``
   (``BookFeatures.update``, measured alone on the same books), ``strategy`` (the rest of
   ``on_book``: the signal and the orders, i.e. risk, order manager and the paper broker's
   ``submit``, which with zero latency matches at once and reports the fills inside the
   call), ``broker`` (the paper broker's book and trade updates: queues, resting fills),
   ``node`` (the rest: the source loop, dispatch, counters, delivering fills and order updates,
   the portfolio, risk re-evaluation after fills and on the 100 ms timer, store items).
   ``json.loads`` alone on the same texts is shown for reference. The probes' own cost is
   reported; their sum is a little above the unprobed loop.
3. ``tick-to-trade split``: the same stream once more with ``monotonic_ns`` stamps along the
   tick-to-trade path (:data:`T2T_STAGES`: parse+book, dispatch, the broker's book update, the
   strategy, the order request, risk, registration), kept for every message that sent an
   order: the median and p99 of each stage and each stage's share of the medians' sum. Each
   stamp adds a probe's cost to its stage.

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
from decimal import Decimal
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


#: The strategy parameters of each bench case (one imbalance strategy per symbol).
CASES: dict[str, str] = {
    # What a quant would run: the defaults (threshold 0.3, at most 10 lots each way, one lot
    # per order, taking liquidity): orders when the imbalance turns, not on every book.
    "typical": "levels = 5, threshold = 0.3, order_qty = 1, max_position = 10",
    # The stress case: a position limit never reached, so every book past a 0.2 imbalance
    # sends an order (about one market-data message in three), each one filled, stored,
    # marked and risk-evaluated.
    "heavy": "levels = 5, threshold = 0.2, order_qty = 1, max_position = 1000000",
    # No orders at all (a threshold no book reaches): the market-data path alone.
    "quiet": "levels = 5, threshold = 0.999, order_qty = 1, max_position = 10",
}


#: The node's clock in the bench (``--clock``). ``wall``, as the node runs live: its timers (the
#: 100 ms risk timer, the 1 s state save) fire on wall time, ten times a second. ``event``, as a
#: replay runs by default: they fire on the recording's own time, which at full replay speed
#: (the recording's hours pass in a fraction of a second) is every few messages, so that
#: figure mostly measures timers a live node would run a thousand times less often.
CLOCKS = ("wall", "event")


def _config(tmp: Path, case: str = "typical", clock: str = "wall") -> Any:
    params = CASES[case]
    strategies = "\n".join(
        f"""
[[strategy]]
name = "imb-{sym.lower()}"
kind = "imbalance"
account = {i + 1}
initial_cash = "1000000"
params = {{ symbol = "{sym}", {params} }}
"""
        for i, sym in enumerate(SYMBOLS)
    )
    text = f"""
[node]
name = "bench"
symbols = {json.dumps(SYMBOLS)}
clock = "{clock}"
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


def _interpreter() -> str:
    """The interpreter binary behind the venv (its build decides a good part of the figures:
    Debian's PGO+LTO build against a plain source build, see scripts/pick-python.sh)."""
    base = getattr(sys, "_base_executable", sys.executable)
    return os.path.realpath(base)


def _depth_ids(text: str) -> tuple[str, int, int] | None:
    msg = json.loads(text)
    data = msg.get("data", {})
    if data.get("e") != "depthUpdate":
        return None
    return str(data["s"]), int(data["U"]), int(data["u"])


_Side = dict[str, str]  # price text -> qty text, as Binance writes them


def _put(side: _Side, levels: list[list[str]]) -> None:
    for p, q in levels:
        if Decimal(q) == 0:
            side.pop(p, None)
        else:
            side[p] = q


def _bridge(end: _Side, start: _Side) -> list[list[str]]:
    """The levels of one side that turn the book ``end`` into ``start``."""
    out = [[p, "0"] for p in end if p not in start]
    out += [[p, q] for p, q in start.items() if end.get(p) != q]
    return out


def long_stream(rec: Recording, passes: int) -> Recording:
    """``rec`` played ``passes`` times as one unbroken stream (see the module doc).

    Pass 1 is the recording. Every later pass is shifted in time by the recording's span and
    its depth ids ``U``/``u`` renumbered to follow on, its diffs already covered by the
    symbol's snapshot are left out, and a *bridge* diff opens it per symbol: the levels that
    turn the book as pass 1 left it back into the snapshot's book, with the ids the left-out
    diffs had. So each pass applies the recorded diffs onto the book they were recorded
    against: the books stay synced and uncrossed (without the bridge, pass 2 applies the
    recording's first diffs onto the last pass's book, which crosses, and the book of the
    busiest symbol is lost for the rest of the run).
    """
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    snap_id: dict[str, int] = {}
    books: dict[str, tuple[_Side, _Side]] = {}
    starts: dict[str, tuple[_Side, _Side]] = {}
    for sym, snaps in rec.snapshots.items():
        body = json.loads(snaps[0][1])
        snap_id[sym] = int(body["lastUpdateId"])
        start: tuple[_Side, _Side] = ({}, {})
        _put(start[0], body["bids"])
        _put(start[1], body["asks"])
        starts[sym] = start
        books[sym] = (dict(start[0]), dict(start[1]))
    parsed: list[tuple[int, str, dict[str, Any] | None]] = []
    for t, text in rec.messages:
        msg = json.loads(text)
        data = msg.get("data", {})
        if data.get("e") != "depthUpdate":
            parsed.append((t, text, None))
            continue
        sym, u0, u1 = data["s"], int(data["U"]), int(data["u"])
        first.setdefault(sym, u0)
        last[sym] = u1
        parsed.append((t, text, msg))
        book = books.get(sym)
        if book is not None and u1 > snap_id[sym]:  # applied in pass 1 (the sync's rule)
            _put(book[0], data["b"])
            _put(book[1], data["a"])
    t0 = rec.messages[0][0]
    span = rec.messages[-1][0] - t0 + 1_000_000
    messages: list[tuple[int, str]] = list(rec.messages)
    for k in range(1, passes):
        t_pass = t0 + k * span
        for sym in sorted(books):
            if sym not in first:
                continue
            shift = k * (last[sym] - first[sym] + 1)
            end, start = books[sym], starts[sym]
            bridge = {
                "stream": f"{sym.lower()}@depth@100ms",
                "data": {
                    "e": "depthUpdate",
                    "E": t_pass // 1_000_000,
                    "s": sym,
                    "U": first[sym] + shift,
                    "u": snap_id[sym] + shift,
                    "b": _bridge(end[0], start[0]),
                    "a": _bridge(end[1], start[1]),
                },
            }
            messages.append((t_pass, json.dumps(bridge, separators=(",", ":"))))
        for t, text, msg in parsed:
            if msg is not None:
                data = msg["data"]
                sym = data["s"]
                if sym in snap_id and data["u"] <= snap_id[sym]:
                    continue  # stood in for by the bridge
                shift = k * (last[sym] - first[sym] + 1)
                data = dict(data, U=data["U"] + shift, u=data["u"] + shift)
                text = json.dumps({"stream": msg["stream"], "data": data}, separators=(",", ":"))
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
    recs: list[Recording],
    tmp: Path,
    case: str,
    probe: Callable[[Node], dict[str, Any]] | None = None,
    clock: str = "wall",
) -> tuple[Any, dict[str, Any]]:
    """One node over ``recs``; the summary and ``probe``'s accumulators (plus the loop's CPU)."""
    loaded = _config(tmp, case, clock)
    src = RecordedNodeSource(recs, SYMBOLS)
    node = Node(loaded, source=src, watch_config=False)
    probes = probe(node) if probe is not None else {}
    loop = node._loop_sync

    gc_ns = [0, 0]  # collection time (thread CPU) inside the loop, start of the current one
    gc_runs = [0, 0, 0]  # collections per generation

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_ns[1] = time.thread_time_ns()
        else:
            gc_ns[0] += time.thread_time_ns() - gc_ns[1]
            gc_runs[info["generation"]] += 1

    def timed_loop() -> None:
        gc.callbacks.append(on_gc)
        c0 = time.thread_time_ns()
        try:
            loop()
        finally:
            probes["cpu_ns"] = time.thread_time_ns() - c0
            gc.callbacks.remove(on_gc)
        probes["gc_ns"] = gc_ns[0]
        probes["gc_collections"] = list(gc_runs)

    _patch(node, "_loop_sync", timed_loop)
    gc.collect()
    try:
        summary = node.run()
    finally:
        restore = probes.pop("restore", None)
        if restore is not None:
            restore()
    return summary, probes


def _patch(obj: object, name: str, fn: Callable[..., Any]) -> None:
    """Replace the bound method ``name`` of ``obj`` with the probe ``fn`` (instance only)."""
    setattr(obj, name, fn)


def _probes(node: Node) -> dict[str, Any]:
    """Wrap the stages of ``node`` with perf_counter_ns probes; returns the accumulators."""
    pc = time.perf_counter_ns
    acc: dict[str, Any] = {"source": 0, "strategy": 0, "broker": 0}
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
        if "on_trade" in type(strat).__dict__:  # not the base class's no-op (left alone)
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
    return acc


#: The tick-to-trade path, cut at the points :func:`_t2t_probes` stamps (each stage runs from
#: the previous point to its own).
T2T_STAGES: tuple[tuple[str, str], ...] = (
    ("parsed", "parse+book (FeedCore.on_message: scan, sync rules, L2 book, the event)"),
    ("broker0", "dispatch (source loop, node, to the broker)"),
    ("broker1", "broker book update (PaperBroker.on_book)"),
    ("strategy0", "to the strategy"),
    ("submit0", "strategy (features, signal, sizing, its context call)"),
    ("risk0", "order request (node checks, client order id, OrderRequest)"),
    ("risk1", "risk (RiskEngine.check)"),
    ("register0", "to registration"),
    ("register1", "registration (OrderManager.register)"),
    ("end", "to the broker's submit"),
)


def _t2t_probes(node: Node) -> dict[str, Any]:
    """Stamp ``monotonic_ns`` at each point of :data:`T2T_STAGES`; keep the stamps of every
    message that sent an order (the node's own tick-to-trade sample closes the row)."""
    mono = time.monotonic_ns
    marks: dict[str, int] = {}
    rows: list[dict[str, int]] = []

    def wrap(obj: object, name: str, before: str | None, after: str | None) -> None:
        inner = getattr(obj, name)

        def stamped(*args: Any, **kwargs: Any) -> Any:
            if before is not None:
                marks[before] = mono()
            out = inner(*args, **kwargs)
            if after is not None:
                marks[after] = mono()
            return out

        _patch(obj, name, stamped)

    src = node.source
    assert isinstance(src, RecordedNodeSource)
    for core in src.cores:
        wrap(core, "on_message", None, "parsed")
    wrap(node.broker, "on_book", "broker0", "broker1")
    for slot in node.slots:
        wrap(slot.strategy, "on_book", "strategy0", None)
    wrap(node, "_submit", "submit0", None)
    wrap(node.risk, "check", "risk0", "risk1")
    om_type = type(node.om)  # slotted: its method is wrapped on the class, restored after
    register = om_type.register

    def stamped_register(om: Any, *args: Any) -> Any:
        marks["register0"] = mono()
        out = register(om, *args)
        marks["register1"] = mono()
        return out

    om_type.register = stamped_register  # type: ignore[method-assign,assignment]

    class Samples(list[int]):
        def append(self, value: int) -> None:
            now = mono()
            row = dict(marks)
            row["stamp"] = now - value
            row["end"] = now
            rows.append(row)
            marks.clear()
            super().append(value)

    node._t2t = node.stats.tick_to_trade.samples = Samples()

    def restore() -> None:
        om_type.register = register  # type: ignore[method-assign]

    return {"rows": rows, "restore": restore}


def t2t_split(rows: list[dict[str, int]]) -> dict[str, dict[str, float]]:
    """Median and p99 of each :data:`T2T_STAGES` stage over the orders whose row has both ends."""
    out: dict[str, dict[str, float]] = {}
    prev = "stamp"
    for point, _label in T2T_STAGES:
        ds = sorted(r[point] - r[prev] for r in rows if point in r and prev in r)
        if ds:
            out[point] = {
                "n": len(ds),
                "p50_ns": float(ds[len(ds) // 2]),
                "p99_ns": float(ds[min(len(ds) - 1, len(ds) * 99 // 100)]),
            }
        prev = point
    return out


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


def bench_case(
    case: str,
    recs: list[Recording],
    warm: list[Recording],
    repeats: int,
    tmp: Path,
    clock: str = "wall",
) -> dict[str, Any]:
    """The ``node`` and ``stages`` figures of one case (module doc); prints its lines."""
    n_msgs = sum(len(r.messages) for r in recs)
    run_node(warm, tmp / f"{case}-warm", case, clock=clock)  # imports, first-call costs
    runs = []
    for i in range(repeats):
        summary, extra = run_node(recs, tmp / f"{case}-{i}", case, clock=clock)
        runs.append((summary.elapsed_s, summary, extra["cpu_ns"], extra))
        t2t = summary.tick_to_trade
        print(
            f"  run {i + 1}: {n_msgs / summary.elapsed_s:,.0f} messages/s "
            f"({extra['cpu_ns'] / n_msgs / 1000:.2f} us CPU/message, of which garbage "
            f"collection {extra['gc_ns'] / n_msgs / 1000:.2f}, collections per generation "
            f"{extra['gc_collections']}); tick-to-trade {t2t.format() if t2t else '-'}"
        )
    loop_s, summary, cpu_ns, best = min(runs, key=lambda r: r[0])
    t2t = summary.tick_to_trade
    msg_rate = n_msgs / loop_s
    print(
        f"{case} (fastest run): {n_msgs:,} messages ({summary.messages:,} events) in "
        f"{loop_s:.3f} s = {msg_rate:,.0f} messages/s, {cpu_ns / n_msgs / 1000:.2f} us CPU per "
        f"message (= {n_msgs / (cpu_ns / 1e9):,.0f} messages per CPU-second); "
        f"orders {summary.orders:,}, fills {summary.fills:,}"
    )
    if t2t is not None:
        print(
            f"{case} tick-to-trade: p50 {format_ns(t2t.p50)}  p99 {format_ns(t2t.p99)}  "
            f"p99.9 {format_ns(t2t.p999)}  max {format_ns(t2t.max)}  (n={t2t.count:,}; "
            "targets p50 < 10 us, p99 < 20 us)"
        )
    # The same stream with probes.
    s2, acc = run_node(recs, tmp / f"{case}-probed", case, _probes, clock)
    alone = alone_parse_and_features(recs)
    total = s2.elapsed_s * 1e9
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
        f"{case} stages (probed run: loop {s2.elapsed_s:.3f} s, "
        f"{n_msgs / s2.elapsed_s:,.0f} messages/s):"
    )
    for name, ns in stages.items():
        print(f"  {name:<11} {ns / n_msgs:8.0f} ns/message  {100 * ns / total:5.1f} %")
    # Once more, stamping the tick-to-trade path of every order.
    _s3, t2t_acc = run_node(recs, tmp / f"{case}-t2t", case, _t2t_probes, clock)
    split = t2t_split(t2t_acc["rows"])
    total_p50 = sum(v["p50_ns"] for v in split.values())
    print(
        f"{case} tick-to-trade split (stamped run, {len(t2t_acc['rows']):,} orders; median of "
        f"each stage, their sum {format_ns(int(total_p50))}, and p99):"
    )
    for point, label in T2T_STAGES:
        v = split.get(point)
        if v is not None:
            print(
                f"  {label:<66} {v['p50_ns']:7.0f} ns  {100 * v['p50_ns'] / total_p50:5.1f} %"
                f"  p99 {v['p99_ns']:7.0f} ns"
            )
    return {
        "tick_to_trade_split_ns": split,
        "node": {
            "loop_s": loop_s,
            "messages_per_s": msg_rate,
            "cpu_ns_per_message": cpu_ns / n_msgs,
            "messages_per_cpu_s": n_msgs / (cpu_ns / 1e9),
            "gc_ns_per_message": best["gc_ns"] / n_msgs,
            "gc_collections": best["gc_collections"],
            "events": summary.messages,
            "orders": summary.orders,
            "fills": summary.fills,
            "tick_to_trade_ns": None if t2t is None else t2t.as_dict(),
            "runs_loop_s": [r[0] for r in runs],
            "runs_cpu_ns_per_message": [r[2] / n_msgs for r in runs],
            "runs_gc_ns_per_message": [r[3]["gc_ns"] / n_msgs for r in runs],
            "runs_tick_to_trade_p50_ns": [
                r[1].tick_to_trade.p50 if r[1].tick_to_trade else None for r in runs
            ],
        },
        "stages_ns_per_message": {k: v / n_msgs for k, v in stages.items()},
        "stages_share": {k: v / total for k, v in stages.items()},
        "json_loads_alone_ns_per_message": alone["parse_ns"] / n_msgs,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--passes", type=int, default=40, help="times the recordings are replayed")
    ap.add_argument("--repeats", type=int, default=3, help="node runs; the fastest is reported")
    ap.add_argument(
        "--case", choices=[*CASES, "all"], default="all", help="strategy parameters (CASES)"
    )
    ap.add_argument("--clock", choices=CLOCKS, default="wall", help="the node's clock (see CLOCKS)")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)

    base = [_load(p, None) for p in embedded_recordings()]
    recs = [long_stream(r, args.passes) for r in base]
    warm = [long_stream(r, 2) for r in base]
    n_msgs = sum(len(r.messages) for r in recs)
    load_before = os.getloadavg()
    print(
        f"stream: {n_msgs:,} recorded messages ({len(base)} recordings x {args.passes} passes); "
        f"load average {load_before[0]:.2f} on {os.cpu_count()} CPUs; node clock {args.clock}; "
        f"Python {sys.version.split()[0]} from {_interpreter()}"
    )
    cases = [c for c in CASES if c != "quiet"] if args.case == "all" else [args.case]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-node-") as tmp_s:
        for case in cases:
            results[case] = bench_case(case, recs, warm, args.repeats, Path(tmp_s), args.clock)
    cost = probe_cost()
    print(
        f"(probe cost {cost:.0f} ns each; json.loads alone on the same texts: "
        f"{next(iter(results.values()))['json_loads_alone_ns_per_message']:.0f} ns/message)"
    )

    result = {
        "bench": "node",
        "machine": {
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "interpreter": _interpreter(),
            "cpus": os.cpu_count(),
            "load_average_before": load_before[0],
            "load_average_after": os.getloadavg()[0],
        },
        "stream": {"messages": n_msgs, "passes": args.passes, "symbols": SYMBOLS},
        "clock": args.clock,
        "cases": {c: {"params": CASES[c], **r} for c, r in results.items()},
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
