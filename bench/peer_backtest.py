#!/usr/bin/env python3
"""Peer comparison: 1M synthetic quote ticks through nautilus_trader's BacktestEngine, and
through tradecore's event-driven backtester, in one run.

Run: ``.venv/bin/python bench/peer_backtest.py [--ticks N] [--seed S] [--repeats R]``
(``make peer`` first, once: it creates ``.venv-nautilus`` with nautilus_trader 1.221.0).

What it does:

1. Data, in the project's venv: ``tradecore.data.synthetic.synthetic_quotes`` (seeded quote
   walk: bid moves one tick with probability 0.3, spread 1-3 ticks, sizes 1-100 lots) written to
   a temporary ``.npz``. The same arrays feed both engines.
2. nautilus, in a child process running ``.venv-nautilus/bin/python`` (its own pins never touch
   our venv): the ticks become ``QuoteTick`` objects (``from_raw_arrays_to_list``, instrument
   ``EUR/USD.SIM``, price = ticks x 0.00001) before any clock starts; then for each scenario
   and repeat a fresh ``BacktestEngine`` (venue SIM, netting, margin account, 1,000,000 USD,
   logging at ERROR) gets the instrument and the ticks, and only ``engine.run()`` is timed:

   * ``no_strategy``: nothing subscribed; the engine's own data loop and matching engine.
   * ``ema_cross``: :class:`EmaCore` (two EMAs of the mid, 10 and 50 ticks, a cross flips the
     target between +1 and -1 lot) called from ``on_quote_tick`` on every tick, sending a
     market order on each cross.

   Throughput is ticks / median wall time of ``run()``, with the cyclic GC off while it runs
   (as in ``peer_nautilus.py``; with a million live tick objects a full collection is costly).
   The CPU time of each ``run()`` (``time.process_time``) is recorded too: on a shared machine
   the least CPU time of a repeat on each side gives a supplementary ``cpu ratio`` that load
   swings disturb less than the wall-clock one (the two engines run one after the other).
3. Ours: :func:`run_ours` runs the same arrays through tradecore's event-driven backtester
   (``tradecore.backtest.engine``) with no strategy and with :class:`EmaCore` wrapped in a
   ``tradecore.strategy.Strategy`` (``on_quote``, a market order on each cross through the
   node's risk, order manager, paper broker and portfolio), timing ``engine.run()`` the same
   way. Targets: >= 5x nautilus with no strategy, >= 3x with the per-tick Python strategy.

Results: a table on stdout (with the 1-minute load average at the start and the end) and
``bench/results/backtest_peer.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PEER_PY = REPO / ".venv-nautilus" / "bin" / "python"
DEFAULT_JSON = REPO / "bench" / "results" / "backtest_peer.json"
TARGET_NO_STRATEGY = 5.0
TARGET_EMA = 3.0
PRICE_SCALE = 1e-5  # one tick of the synthetic walk in EUR/USD.SIM units (precision 5)


class EmaCore:
    """The EMA cross both engines run on every tick: plain Python floats, no library.

    ``on_mid`` returns the new target position (+1 / -1 lots) on a cross, else ``None``. The
    first ``slow`` ticks only warm the averages up; the regime found then is not a cross.
    """

    __slots__ = ("af", "as_", "count", "fast", "regime", "slow", "slow_n")

    def __init__(self, fast: int = 10, slow: int = 50) -> None:
        self.af = 2.0 / (fast + 1)
        self.as_ = 2.0 / (slow + 1)
        self.slow_n = slow
        self.fast = 0.0
        self.slow = 0.0
        self.count = 0
        self.regime = 0

    def on_mid(self, mid: float) -> int | None:
        if self.count == 0:
            self.fast = self.slow = mid
        else:
            self.fast += self.af * (mid - self.fast)
            self.slow += self.as_ * (mid - self.slow)
        self.count += 1
        if self.count < self.slow_n:
            return None
        diff = self.fast - self.slow
        sign = 1 if diff > 0 else (-1 if diff < 0 else 0)
        if sign == 0 or sign == self.regime:
            return None
        crossed = self.regime != 0
        self.regime = sign
        return sign if crossed else None


# ----------------------------------------------------------------------------- nautilus child


def _nautilus_child(npz: Path, repeats: int) -> dict[str, Any]:
    import numpy as np
    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.config import LoggingConfig, StrategyConfig
    from nautilus_trader.model.currencies import USD
    from nautilus_trader.model.data import QuoteTick
    from nautilus_trader.model.enums import AccountType, OmsType, OrderSide
    from nautilus_trader.model.identifiers import InstrumentId, Venue
    from nautilus_trader.model.objects import Money, Quantity
    from nautilus_trader.test_kit.providers import TestInstrumentProvider
    from nautilus_trader.trading.strategy import Strategy

    data = np.load(npz)
    inst = TestInstrumentProvider.default_fx_ccy("EUR/USD")
    ts = data["ts_ns"].astype(np.uint64)
    ticks = QuoteTick.from_raw_arrays_to_list(
        inst.id,
        inst.price_precision,
        0,
        data["bid_px"].astype(np.float64) * PRICE_SCALE,
        data["ask_px"].astype(np.float64) * PRICE_SCALE,
        data["bid_qty"].astype(np.float64),
        data["ask_qty"].astype(np.float64),
        ts,
        ts,
    )

    class EmaCrossConfig(StrategyConfig, frozen=True):  # type: ignore[misc,call-arg]
        instrument_id: InstrumentId
        fast: int = 10
        slow: int = 50

    class EmaCross(Strategy):  # type: ignore[misc]
        def __init__(self, config: EmaCrossConfig) -> None:
            super().__init__(config)
            self.core = EmaCore(config.fast, config.slow)
            self.pos = 0
            self.orders_sent = 0

        def on_start(self) -> None:
            self.subscribe_quote_ticks(self.config.instrument_id)

        def on_quote_tick(self, tick: Any) -> None:
            target = self.core.on_mid(
                (tick.bid_price.as_double() + tick.ask_price.as_double()) * 0.5
            )
            if target is None or target == self.pos:
                return
            side = OrderSide.BUY if target > self.pos else OrderSide.SELL
            qty = Quantity.from_int(abs(target - self.pos))
            self.submit_order(self.order_factory.market(self.config.instrument_id, side, qty))
            self.pos = target
            self.orders_sent += 1

    def one(with_strategy: bool) -> tuple[float, float, int]:
        engine = BacktestEngine(
            BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR", bypass_logging=True))
        )
        engine.add_venue(
            Venue("SIM"),
            oms_type=OmsType.NETTING,
            account_type=AccountType.MARGIN,
            starting_balances=[Money(1_000_000, USD)],
            base_currency=USD,
        )
        engine.add_instrument(inst)
        engine.add_data(ticks)
        strat = None
        if with_strategy:
            strat = EmaCross(EmaCrossConfig(instrument_id=inst.id))
            engine.add_strategy(strat)
        gc.collect()
        gc.disable()  # the repository's convention: no cyclic GC while the clock runs
        try:
            c0 = time.process_time()
            t0 = time.perf_counter()
            engine.run()
            dt = time.perf_counter() - t0
            cpu = time.process_time() - c0
        finally:
            gc.enable()
        orders = strat.orders_sent if strat is not None else 0
        engine.dispose()
        return dt, cpu, orders

    out: dict[str, Any] = {"ticks": len(ticks)}
    for name, with_strategy in (("no_strategy", False), ("ema_cross", True)):
        times = []
        cpus = []
        orders = 0
        for _ in range(repeats):
            dt, cpu, orders = one(with_strategy)
            times.append(dt)
            cpus.append(cpu)
        med = statistics.median(times)
        out[name] = {
            "seconds": times,
            "median_s": med,
            "cpu_seconds": cpus,
            "min_cpu_s": min(cpus),
            "ticks_per_s": len(ticks) / med,
            "orders": orders,
        }
    import nautilus_trader

    out["nautilus_version"] = nautilus_trader.__version__
    return out


# ----------------------------------------------------------------------------- our engine


def run_ours(arrays: dict[str, Any], repeats: int) -> dict[str, Any] | None:
    """tradecore's event-driven backtester on the same arrays, timed like nautilus' run().

    A fresh :class:`tradecore.backtest.engine.BacktestEngine` per scenario and repeat over one
    :class:`~tradecore.backtest.engine.QuoteFeed` of the arrays (instrument ``EURUSD``, tick
    0.00001, lot 1): ``no_strategy`` (the loop, the clock and the top-of-book only) and
    ``ema_cross`` (:class:`EmaCore` in a ``Strategy.on_quote`` on every tick, a market order
    through risk, order manager, paper broker and portfolio on each cross). Only
    ``engine.run()`` is timed, with the cyclic GC off, as for nautilus.
    """
    from decimal import Decimal

    from tradecore.backtest.engine import BacktestEngine, EngineSettings, QuoteFeed, StrategySpec
    from tradecore.enums import Side
    from tradecore.instrument import Instrument
    from tradecore.marketdata.events import Quote
    from tradecore.strategy import Strategy

    inst = Instrument("EURUSD", "0.00001", "1")

    class EmaCross(Strategy):
        def __init__(self) -> None:
            super().__init__("ema_cross", ["EURUSD"])
            self.core = EmaCore(10, 50)
            self.pos = 0
            self.orders_sent = 0

        def on_quote(self, event: Quote) -> None:
            target = self.core.on_mid((event.bid_price + event.ask_price) * 0.5)
            if target is None or target == self.pos:
                return
            side = Side.BUY if target > self.pos else Side.SELL
            self.ctx.submit_market("EURUSD", side, abs(target - self.pos))
            self.pos = target
            self.orders_sent += 1

    chunk = {k: arrays[k] for k in arrays}
    n = len(chunk["ts_ns"])
    out: dict[str, Any] = {"ticks": n}
    for name, with_strategy in (("no_strategy", False), ("ema_cross", True)):
        times = []
        cpus = []
        orders = fills = 0
        for _ in range(repeats):
            strat = EmaCross() if with_strategy else None
            specs = (
                [StrategySpec("ema_cross", account=1, initial_cash=Decimal(10**6), instance=strat)]
                if strat is not None
                else []
            )
            engine = BacktestEngine(
                [inst], [QuoteFeed("synthetic", "EURUSD", [chunk])], specs, EngineSettings()
            )
            gc.collect()
            gc.disable()
            try:
                c0 = time.process_time()
                t0 = time.perf_counter()
                result = engine.run()
                dt = time.perf_counter() - t0
                cpu = time.process_time() - c0
            finally:
                gc.enable()
            if result.events != n:
                raise RuntimeError(f"tradecore processed {result.events} of {n} ticks")
            times.append(dt)
            cpus.append(cpu)
            orders = strat.orders_sent if strat is not None else 0
            fills = len(result.fills)
        med = statistics.median(times)
        out[name] = {
            "seconds": times,
            "median_s": med,
            "cpu_seconds": cpus,
            "min_cpu_s": min(cpus),
            "ticks_per_s": n / med,
            "orders": orders,
            "fills": fills,
        }
    return out


# ----------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ticks < 1000 or args.repeats < 1:
        parser.error("--ticks must be >= 1000 and --repeats >= 1")
    if args.child is not None:
        print(json.dumps(_nautilus_child(args.child, args.repeats)))
        return 0

    import numpy as np

    sys.path.insert(0, str(REPO / "python"))
    from tradecore.data.synthetic import synthetic_quotes
    from tradecore.telemetry.runinfo import git_commit, machine_info

    if not PEER_PY.exists():
        print(f"no {PEER_PY}: run `make peer` once to create the nautilus venv", file=sys.stderr)
        return 2
    chunk = next(synthetic_quotes(args.ticks, args.seed, chunk_rows=args.ticks))
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "quotes.npz"
        arrays: dict[str, Any] = dict(chunk)
        np.savez(npz, **arrays)
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(REPO / "python"))
        env.pop("VIRTUAL_ENV", None)
        print(f"nautilus: {args.ticks:,} quote ticks, {args.repeats} repeats ...", flush=True)
        res = subprocess.run(
            [str(PEER_PY), str(Path(__file__).resolve()), "--child", str(npz),
             "--repeats", str(args.repeats), "--ticks", str(args.ticks)],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
        if res.returncode != 0:
            print(res.stderr[-4000:], file=sys.stderr)
            return 1
        naut = json.loads(res.stdout.strip().splitlines()[-1])
    ours = run_ours(chunk, args.repeats)
    result: dict[str, Any] = {
        "ticks": args.ticks,
        "seed": args.seed,
        "repeats": args.repeats,
        "nautilus": naut,
        "tradecore": ours,
        "targets": {"no_strategy": TARGET_NO_STRATEGY, "ema_cross": TARGET_EMA},
        "machine": machine_info(commit=git_commit(REPO)),
        "loadavg_1m_start": load_start,
    }
    head = f"{'scenario':<14}{'nautilus ticks/s':>18}{'tradecore ticks/s':>20}"
    print(f"{head}{'ratio':>8}{'target':>8}{'cpu ratio':>11}")
    for name, target in (("no_strategy", TARGET_NO_STRATEGY), ("ema_cross", TARGET_EMA)):
        n_rate = naut[name]["ticks_per_s"]
        o_rate = ours[name]["ticks_per_s"] if ours else None
        ratio = o_rate / n_rate if o_rate else None
        result.setdefault("ratios", {})[name] = ratio
        # Supplementary, for a shared machine: the least CPU time of a repeat on each side.
        cpu_ratio = naut[name]["min_cpu_s"] / ours[name]["min_cpu_s"] if ours else None
        result.setdefault("cpu_ratios", {})[name] = cpu_ratio
        o_txt = f"{o_rate:>20,.0f}" if o_rate else f"{'(not built yet)':>20}"
        r_txt = f"{ratio:>7.2f}x" if ratio else f"{'-':>8}"
        c_txt = f"{cpu_ratio:>10.2f}x" if cpu_ratio else f"{'-':>11}"
        print(f"{name:<14}{n_rate:>18,.0f}{o_txt}{r_txt}{target:>7.0f}x{c_txt}")
    load_end = os.getloadavg()[0]
    print(f"load average (1 min): {load_start:.2f} at the start, {load_end:.2f} at the end")
    print(f"nautilus orders sent by the EMA cross: {naut['ema_cross']['orders']:,}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
