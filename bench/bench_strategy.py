#!/usr/bin/env python3
"""Cost of features, strategies and pre-trade risk per book update, from Python.

Run: ``.venv/bin/python bench/bench_strategy.py [--updates N] [--seed S] [--json PATH]``.

A fixed-seed random walk of an L2 book (the Rust ``tradecore.L2Book``, 20 levels a side, 1-3
level changes per update and a mid that drifts) is applied outside the timers; each stage is
timed with ``perf_counter_ns`` around one call per update, the GC off:

* ``features``: :meth:`BookFeatures.update` (5 levels, two momentum windows).
* ``risk_check``: one passing order through :class:`RiskEngine` with every per-order limit
  configured (qty, notional, band, position, gross exposure, open orders, rate, loss limits),
  over the plain-dict :class:`InMemoryRiskState` (the engine's own cost; the node's state
  adapter adds its own); ``risk_check_no_loss`` the same with ``loss_check_on_order=False``.
* ``imbalance``: :meth:`ImbalanceStrategy.on_book`, the issue's tick-to-trade strategy, in the
  in-memory context with the risk engine in front of each order: features, signal, and on
  signalling updates the order (``OrderRequest``, risk check, ``Order``). The in-memory
  context's equity (average-cost P&L in ``Fraction``) is slower than a real portfolio's, so
  the imbalance strategy's engine runs with ``loss_check_on_order=False``. Updates with and
  without an order are reported apart. Each order is closed (unfilled) outside the timer.
* ``onnx``: :meth:`OnnxStrategy.on_book` with the example model (features + one
  ``InferenceSession.run``), and the bare ``run`` on one row.

The timer's own cost (an empty timed region) is reported too; it is included in every figure.
Results: a table on stdout and JSON (default ``bench/results/strategy.json``).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import random
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_JSON = REPO / "bench" / "results" / "strategy.json"
EXAMPLE_MODEL = REPO / "examples" / "models" / "updown_lr.onnx"


def _stream(n: int, seed: int) -> list[list[tuple[int, int, int]]]:
    """Per update, the level changes ``(side 0 bid / 1 ask, price, qty)``; qty 0 removes."""
    rng = random.Random(seed)
    mid = 100_000
    out: list[list[tuple[int, int, int]]] = []
    for _ in range(n):
        changes: list[tuple[int, int, int]] = []
        if rng.random() < 0.1:
            mid += rng.choice((-1, 1))
            # the levels that would cross are removed
            changes.append((0, mid, 0))
            changes.append((1, mid, 0))
        for _ in range(rng.randint(1, 3)):
            side = rng.randint(0, 1)
            off = rng.randint(0, 19)
            price = mid - 1 - off if side == 0 else mid + 1 + off
            qty = 0 if rng.random() < 0.15 and off > 0 else rng.randint(1, 500)
            changes.append((side, price, qty))
        out.append(changes)
    return out


def _summary(ns: list[int]) -> dict[str, int]:
    from tradecore.telemetry.hdr import summarize_ns

    s = summarize_ns(ns)
    return {
        "count": s.count,
        "p50": s.p50,
        "p90": s.p90,
        "p99": s.p99,
        "p999": s.p999,
        "max": s.max,
    }


def run(updates: int, seed: int, onnx_model: Path | None) -> dict[str, Any]:
    from tradecore import Instrument, L2Book, Side
    from tradecore.enums import OrderType, TimeInForce
    from tradecore.execution.types import OrderRequest
    from tradecore.marketdata.events import BookUpdate
    from tradecore.risk import AccountLimits, RateLimit, RiskEngine, RiskLimits, SymbolLimits
    from tradecore.risk.testing import InMemoryRiskState
    from tradecore.strategy import BookFeatures, create_strategy
    from tradecore.strategy.testing import RecordingContext

    inst = Instrument("BTCUSDT", tick_size="0.01", lot_size="0.001")
    stream = _stream(updates, seed)
    side_of = (Side.BUY, Side.SELL)
    clock = time.perf_counter_ns

    def fresh_book() -> Any:
        book = L2Book()
        for i in range(20):
            book.set(Side.BUY, 99_999 - i, 100 + i)
            book.set(Side.SELL, 100_001 + i, 100 + i)
        return book

    limits = RiskLimits(
        defaults=SymbolLimits(
            max_order_qty=1_000,
            max_position=10_000,
            max_order_notional=Decimal(1_000_000),
            price_band_bps=Decimal(100),
        ),
        account_defaults=AccountLimits(
            max_gross_exposure=Decimal(10_000_000),
            max_open_orders=100,
            rate_limit=RateLimit(Decimal(10**9), 10**6),
            max_daily_loss=Decimal(1_000_000),
            max_drawdown=Decimal(1_000_000),
        ),
    )
    results: dict[str, Any] = {}

    # Timer overhead.
    empty = []
    for _ in range(updates):
        t0 = clock()
        empty.append(clock() - t0)
    results["timer"] = _summary(empty)

    # Features alone.
    book = fresh_book()
    feats = BookFeatures(levels=5, momentum_windows=(10, 50))
    times: list[int] = []
    for changes in stream:
        for s, p, q in changes:
            book.set(side_of[s], p, q)
        t0 = clock()
        feats.update(book)
        times.append(clock() - t0)
    results["features"] = _summary(times)

    # Risk check alone (a passing order), over plain dict state: the engine's own cost.
    state = InMemoryRiskState()
    state.bba["BTCUSDT"] = (99_999, 100_001)
    state.pos[(1, "BTCUSDT")] = 10
    state.equities[1] = Decimal(1_000)
    for key, eng in (
        ("risk_check", RiskEngine(limits, state, [inst])),
        ("risk_check_no_loss", RiskEngine(limits, state, [inst], loss_check_on_order=False)),
    ):
        times = []
        for i in range(updates):
            req = OrderRequest(
                1, i + 1, "BTCUSDT", Side.BUY, 5, 100_001, OrderType.LIMIT, TimeInForce.IOC
            )
            t0 = clock()
            reason = eng.check(req, i)
            times.append(clock() - t0)
            if reason is not None:
                raise RuntimeError(f"the bench order was refused: {reason}")
        results[key] = _summary(times)

    # The imbalance strategy with risk in front of its orders.
    book = fresh_book()
    ctx = RecordingContext([inst], account=1, strategy_name="imb")
    ctx.books["BTCUSDT"] = book
    ctx.risk = RiskEngine(limits, ctx.risk_state(), [inst], loss_check_on_order=False)
    strat = create_strategy(
        "imbalance", "imb", {"symbol": "BTCUSDT", "threshold": 0.2, "order_qty": 5}
    )
    ctx.start(strat)
    with_order: list[int] = []
    without: list[int] = []
    submitted = ctx.submitted
    for i, changes in enumerate(stream):
        for s, p, q in changes:
            book.set(side_of[s], p, q)
        ctx.now = i * 1_000_000
        ev = BookUpdate("BTCUSDT", ctx.now, ctx.now, i, book)
        n = len(submitted)
        t0 = clock()
        strat.on_book(ev)
        dt = clock() - t0
        if len(submitted) != n:
            with_order.append(dt)
            last = submitted[-1]
            if last.is_open:
                ctx.done(last.client_order_id)
        else:
            without.append(dt)
    results["imbalance_no_order"] = _summary(without)
    results["imbalance_with_order"] = _summary(with_order) if with_order else None
    results["imbalance_all"] = _summary(with_order + without)
    results["imbalance_orders"] = len(with_order)
    results["imbalance_risk_rejects"] = sum(1 for o in submitted if o.reason)

    # ONNX.
    if onnx_model is not None:
        import numpy as np

        book = fresh_book()
        ctx = RecordingContext([inst], account=2, strategy_name="ml")
        ctx.books["BTCUSDT"] = book
        ml: Any = create_strategy(
            "onnx", "ml", {"symbol": "BTCUSDT", "model": str(onnx_model), "threshold": 0.99}
        )
        ctx.start(ml)
        times = []
        for i, changes in enumerate(stream):
            for s, p, q in changes:
                book.set(side_of[s], p, q)
            ctx.now = i * 1_000_000
            ev = BookUpdate("BTCUSDT", ctx.now, ctx.now, i, book)
            t0 = clock()
            ml.on_book(ev)
            times.append(clock() - t0)
            for o in ctx.open_orders():
                ctx.done(o.client_order_id)
        results["onnx_on_book"] = _summary(times)
        x = np.zeros((1, len(ml.spec.names)), dtype=np.float32)
        sess = ml.session
        name = ml._input_name
        times = []
        for _ in range(updates):
            t0 = clock()
            sess.run(["probabilities"], {name: x})
            times.append(clock() - t0)
        results["onnx_run_only"] = _summary(times)
    return results


def _model(explicit: Path | None) -> tuple[Path | None, str]:
    if explicit is not None:
        return explicit, str(explicit)
    if EXAMPLE_MODEL.is_file():
        return EXAMPLE_MODEL, str(EXAMPLE_MODEL.relative_to(REPO))
    # Train a throwaway model on synthetic rows with the example script's recipe.
    spec = importlib.util.spec_from_file_location("train_onnx", REPO / "examples" / "train_onnx.py")
    if spec is None or spec.loader is None:
        return None, "none"
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    import numpy as np

    rng = np.random.default_rng(1)
    from tradecore.strategy import feature_names

    n = len(feature_names(mod.SPEC["momentum_windows"]))
    x = rng.normal(size=(300, n)).astype(np.float32)
    y = rng.integers(-1, 2, size=300)
    path = Path(tempfile.mkdtemp()) / "synthetic.onnx"
    path.write_bytes(mod.to_onnx(mod.train(x, y), n).SerializeToString())
    return path, "synthetic (examples/models/updown_lr.onnx not built)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="features / strategy / risk costs per update")
    ap.add_argument("--updates", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--no-onnx", action="store_true")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = ap.parse_args(argv)
    if args.updates < 100:
        ap.error("--updates must be >= 100")
    model, model_desc = (None, "skipped") if args.no_onnx else _model(args.model)
    gc.collect()
    gc.disable()
    try:
        results = run(args.updates, args.seed, model)
    finally:
        gc.enable()
    from tradecore.telemetry.hdr import format_ns

    print(
        f"{args.updates} book updates, seed {args.seed}, "
        f"python {sys.version.split()[0]}, pid {os.getpid()}"
    )
    print(f"{'stage':<24}{'count':>8}{'p50':>10}{'p90':>10}{'p99':>10}{'p99.9':>10}{'max':>10}")
    for key, s in results.items():
        if not isinstance(s, dict):
            continue
        print(
            f"{key:<24}{s['count']:>8}"
            + "".join(f"{format_ns(s[k]):>10}" for k in ("p50", "p90", "p99", "p999", "max"))
        )
    print(
        f"imbalance: {results['imbalance_orders']} orders "
        f"({results['imbalance_risk_rejects']} refused by risk); onnx model: {model_desc}"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    payload = {"updates": args.updates, "seed": args.seed, "onnx_model": model_desc, **results}
    args.json.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
