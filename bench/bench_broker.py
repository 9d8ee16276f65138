#!/usr/bin/env python3
"""Cost of the paper broker's hot paths, per call, from Python.

Run: ``.venv/bin/python bench/bench_broker.py [--n 20000] [--resting 10,100,1000] [--json PATH]``.

Measured (each with the GC off, inputs built before the clock starts; per-call percentiles
from ``perf_counter_ns`` around each call, whose own cost (~50-80 ns) is included; the mean
is the loop total divided by the calls, without per-call timers):

* ``submit_in_flight``: ``PaperBroker.submit`` with a non-zero entry latency: the request is
  stamped, given its jitter and queued. This is the broker's share of tick-to-trade.
* ``submit_rest``: zero latency, a passive limit that rests (ACCEPTED report to a list).
* ``submit_take``: zero latency, an IOC limit that takes one level (ACCEPTED + FILL).
* ``submit_rest_om``: as ``submit_rest`` plus the order manager's ``register`` and ``on_event``.
* ``submit_take_om_pf``: the whole zero-latency order path below risk, as the node and the
  backtester run it: ``register``, an IOC that takes one level, the order manager's
  ``on_event`` for ACCEPTED and FILL, the ``Fill`` and :meth:`Portfolio.on_fill` (alternating
  buys and sells, so positions open, close and flip).
* ``book_update[0] idle``: ``on_book`` when we have nothing in the symbol (the node calls it
  on every depth message).
* ``book_update[N]``: ``on_book`` with N resting orders on N distinct prices (both sides), when
  none of our levels changed (``quiet``) and when every one of them changed (``all_changed``).
* ``trade[N]``: ``on_trade`` at the best bid with N resting orders (a queue move, no fill).

The book (2,000 levels a side) is ``tradecore.L2Book`` (``--book rust``, the default) or the
pure-Python :class:`~tradecore.execution.DictL2Book` (``--book dict``); the JSON says which.
Results: a table on stdout and JSON (default ``bench/results/broker.json``).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from tradecore import L2Book
from tradecore.enums import Side, TimeInForce
from tradecore.execution import (
    DictL2Book,
    LatencyModel,
    OrderEvent,
    OrderManager,
    OrderRequest,
    PaperBroker,
    PaperBrokerConfig,
    Portfolio,
)
from tradecore.instrument import Instrument
from tradecore.marketdata.events import BookUpdate, TradeTick

REPO = Path(__file__).resolve().parent.parent
DEFAULT_JSON = REPO / "bench" / "results" / "broker.json"
SYM = "BTCUSDT"
INST = Instrument(SYM, tick_size="0.01", lot_size="0.001")
MID = 1_000_000


def _percentiles(samples: list[int]) -> dict[str, float]:
    s = sorted(samples)
    n = len(s)

    def at(q: float) -> float:
        return float(s[min(n - 1, int(q * n))])

    return {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": float(s[-1])}


def _measure(name: str, calls: Sequence[Callable[[], object]]) -> dict[str, Any]:
    """Run each prepared call once with a timer around it; then report."""
    per: list[int] = []
    clock = time.perf_counter_ns
    gc.disable()
    try:
        for fn in calls:
            t0 = clock()
            fn()
            per.append(clock() - t0)
    finally:
        gc.enable()
    return {"name": name, "calls": len(per), "mean_ns": statistics.fmean(per), **_percentiles(per)}


BookLike = L2Book | DictL2Book
_BOOKS: dict[str, type[BookLike]] = {"rust": L2Book, "dict": DictL2Book}
_BOOK: list[type[BookLike]] = [L2Book]


def _book() -> BookLike:
    book = _BOOK[0]()
    for i in range(1, 2_001):
        book.set(Side.BUY, MID - i, 10 + i % 7)
        book.set(Side.SELL, MID + i, 10 + i % 5)
    return book


class _Clock:
    def __init__(self) -> None:
        self.t = 0

    def __call__(self) -> int:
        return self.t


def bench_submit(n: int) -> list[dict[str, Any]]:
    out = []
    # In flight: latency 50 us, jitter 10 us; nothing arrives during the loop.
    clock = _Clock()
    sink: list[OrderEvent] = []
    broker = PaperBroker(
        [INST],
        clock,
        PaperBrokerConfig(latency=LatencyModel(entry_ns=50_000, jitter_ns=10_000), seed=1),
        sink=sink.append,
    )
    broker.attach_book(SYM, _book())
    reqs = [OrderRequest(1, i + 1, SYM, Side.BUY, 1, MID - 1 - i % 50) for i in range(n)]
    out.append(_measure("submit_in_flight", [partial(broker.submit, r) for r in reqs]))

    def zero_latency() -> tuple[PaperBroker, list[OrderEvent]]:
        events: list[OrderEvent] = []
        b = PaperBroker([INST], _Clock(), sink=events.append)
        b.attach_book(SYM, _book())
        return b, events

    broker, _ = zero_latency()
    out.append(_measure("submit_rest", [partial(broker.submit, r) for r in reqs]))

    broker, _ = zero_latency()
    takes = [
        OrderRequest(1, i + 1, SYM, Side.BUY, 1, MID + 1, tif=TimeInForce.IOC) for i in range(n)
    ]
    out.append(_measure("submit_take", [partial(broker.submit, r) for r in takes]))

    om = OrderManager()
    broker = PaperBroker([INST], _Clock(), sink=om.on_event)
    broker.attach_book(SYM, _book())

    def with_om(r: OrderRequest) -> None:
        om.register(r, 0)
        broker.submit(r)

    out.append(_measure("submit_rest_om", [partial(with_om, r) for r in reqs]))

    om2 = OrderManager()
    portfolio = Portfolio([INST])
    om2.add_fill_listener(portfolio.on_fill)
    broker2 = PaperBroker([INST], _Clock(), sink=om2.on_event)
    broker2.attach_book(SYM, _book())

    def take_with_om_pf(r: OrderRequest) -> None:
        om2.register(r, 0)
        broker2.submit(r)

    flips = []
    for i in range(n):
        side = Side.BUY if i % 2 else Side.SELL
        price = MID + 1 if side is Side.BUY else MID - 1
        flips.append(OrderRequest(1, i + 1, SYM, side, 1, price, tif=TimeInForce.IOC))
    out.append(_measure("submit_take_om_pf", [partial(take_with_om_pf, r) for r in flips]))
    idle = PaperBroker([INST], _Clock(), sink=om2.on_event)
    book = _book()
    idle.attach_book(SYM, book)
    update = BookUpdate(SYM, 0, 0, 0, book)
    out.append(_measure("book_update[0] idle", [partial(idle.on_book, update)] * n))
    return out


def bench_market_data(n: int, resting: int) -> list[dict[str, Any]]:
    clock = _Clock()
    events: list[OrderEvent] = []
    broker = PaperBroker([INST], clock, sink=events.append)
    book = _book()
    broker.attach_book(SYM, book)
    half = max(1, resting // 2)
    coid = 0
    for i in range(resting):
        coid += 1
        if i < half:
            broker.submit(OrderRequest(1, coid, SYM, Side.BUY, 1, MID - 1 - i))
        else:
            broker.submit(OrderRequest(1, coid, SYM, Side.SELL, 1, MID + 1 + (i - half)))
    assert broker.resting_count() == resting
    out = []
    update = BookUpdate(SYM, 0, 0, 0, book)
    out.append(_measure(f"book_update[{resting}] quiet", [lambda: broker.on_book(update)] * n))

    # Every one of our levels changes, alternately growing and shrinking (no fills: the
    # levels stay on their side of the book).
    prices_b = [MID - 1 - i for i in range(half)]
    prices_a = [MID + 1 + i for i in range(resting - half)]

    def change_all(k: int) -> None:
        q = 10 + (k % 2) * 5
        for p in prices_b:
            book.set(Side.BUY, p, q)
        for p in prices_a:
            book.set(Side.SELL, p, q)

    # Time only on_book: the level changes are applied before each timed call.
    per: list[int] = []
    clk = time.perf_counter_ns
    gc.disable()
    try:
        for k in range(min(n, 2_000)):
            change_all(k)
            t0 = clk()
            broker.on_book(update)
            per.append(clk() - t0)
    finally:
        gc.enable()
    out.append(
        {
            "name": f"book_update[{resting}] all_changed",
            "calls": len(per),
            "mean_ns": statistics.fmean(per),
            **_percentiles(per),
        }
    )
    tick = TradeTick(SYM, 0, 0, MID - 1, 1, Side.SELL, 1)
    # Queue moves at the best bid: our order there is replaced by one behind 10**9 lots, so
    # the trades move it forward without ever filling it.
    book.set(Side.BUY, MID - 1, 10**9)
    broker.on_book(update)
    broker.cancel(1, SYM, 1)
    broker.submit(OrderRequest(1, coid + 1, SYM, Side.BUY, 1, MID - 1))
    out.append(_measure(f"trade[{resting}]", [lambda: broker.on_trade(tick)] * n))
    assert not [e for e in events if e.kind.value == "FILL"], "bench scenario must not fill"
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=20_000, help="calls per measurement")
    parser.add_argument("--resting", default="10,100,1000", help="resting order counts")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--book", choices=sorted(_BOOKS), default="rust")
    args = parser.parse_args(argv)
    _BOOK[0] = _BOOKS[args.book]
    resting = [int(x) for x in args.resting.split(",") if x.strip()]
    results = bench_submit(args.n)
    for count in resting:
        results.extend(bench_market_data(min(args.n, 20_000), count))
    head = f"{'measurement':<32} {'mean':>9} {'p50':>9} {'p90':>9} {'p99':>9} {'max':>10}"
    print(head)
    print("-" * len(head))
    for r in results:
        print(
            f"{r['name']:<32} {r['mean_ns']:>8.0f}n {r['p50']:>8.0f}n {r['p90']:>8.0f}n "
            f"{r['p99']:>8.0f}n {r['max']:>9.0f}n"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "book": _BOOK[0].__name__,
        "levels_per_side": 2_000,
        "results": results,
    }
    args.json.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"written {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
