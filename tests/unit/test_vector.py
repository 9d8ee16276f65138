"""The vectorized engine against the real strategy classes, and its sweeps.

The oracle: the committed ``MaCrossStrategy`` / ``MeanReversionStrategy`` driven bar by bar
through the in-memory ``RecordingContext``, every order filled at once at its limit price (the
idealized fill the vectorized engine assumes) with the paper broker's fee. Trades must be
identical (bar, side, qty, price), fees equal as Decimals, and P&L equal to float precision.
"""

from __future__ import annotations

import os
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from tradecore.backtest import vector as V
from tradecore.backtest.costs import CostModel
from tradecore.backtest.stats import RunTables, compute_stats
from tradecore.data.synthetic import Bars, L2Params, synthetic_bars
from tradecore.errors import ConfigError, UsageError
from tradecore.instrument import Instrument
from tradecore.strategy import create_strategy
from tradecore.strategy.testing import DictBook, RecordingContext

COSTS = CostModel(tick_size=Decimal("0.01"), lot_size=Decimal(1), taker_fee_bps=Decimal("2.5"))


def _bars(n: int = 2_500, seed: int = 11) -> Bars:
    return synthetic_bars(n, seed, L2Params(move_prob=0.6))


def _oracle(
    bars: Bars, kind: str, params: dict[str, Any]
) -> tuple[list[tuple[int, int, int, int]], Decimal, Decimal]:
    """(trades as (bar, signed qty, price), fees, equity at the last bar) from the real class."""
    inst = Instrument("X", tick_size=COSTS.tick_size, lot_size=COSTS.lot_size)
    ctx = RecordingContext([inst], now_ns=int(bars.ts_ns[0]))
    strat = create_strategy(kind, kind, {"symbol": "X", **params})
    ctx.start(strat)
    trades: list[tuple[int, int, int, int]] = []
    seen = 0
    for i, (ts, bid, ask) in enumerate(
        zip(bars.ts_ns.tolist(), bars.bid.tolist(), bars.ask.tolist(), strict=True)
    ):
        ctx.now = ts
        ctx.book_update("X", DictBook(bids=[(bid, 10**9)], asks=[(ask, 10**9)]))
        for order in ctx.submitted[seen:]:
            if order.is_open:
                fee = COSTS.fee(order.price, order.leaves)
                ctx.fill(order.client_order_id, fee=fee)
                signed = order.qty if order.side.value == "BUY" else -order.qty
                trades.append((i, signed, order.price, ts))
        seen = len(ctx.submitted)
    return [(b, q, p, t) for b, q, p, t in trades], ctx.fees, ctx.equity()


CASES = [
    ("ma_cross", {"fast": 3, "slow": 8, "max_position": 4, "order_qty": 4}),
    ("ma_cross", {"fast": 5, "slow": 21, "max_position": 6, "order_qty": 2, "slippage_ticks": 1}),
    ("ma_cross", {"fast": 2, "slow": 9, "max_position": 3, "allow_short": False}),
    ("ma_cross", {"fast": 4, "slow": 12, "max_position": 5, "order_qty": 2, "cooldown_ms": 3}),
    (
        "mean_reversion",
        {"window": 10, "entry_z": 1.5, "exit_z": 0.3, "max_position": 3, "order_qty": 3},
    ),
    (
        "mean_reversion",
        {"window": 25, "entry_z": 1.2, "exit_z": 0.0, "max_position": 4, "order_qty": 1},
    ),
    (
        "mean_reversion",
        {"window": 7, "entry_z": 1.0, "exit_z": 0.5, "allow_short": False, "slippage_ticks": 2},
    ),
]


@pytest.mark.parametrize(("kind", "params"), CASES)
def test_vectorized_equals_strategy_class(kind: str, params: dict[str, Any]) -> None:
    bars = _bars()
    want, fees, equity = _oracle(bars, kind, params)
    got = V.run(bars, kind, params, costs=COSTS)
    trades = list(
        zip(
            got.trades["bar"].tolist(),
            (got.trades["side"] * got.trades["qty"]).tolist(),
            got.trades["price"].tolist(),
            got.trades["ts_ns"].tolist(),
            strict=True,
        )
    )
    assert len(want) > 10, "the case must trade to prove anything"
    assert trades == want
    assert got.fees_exact == fees
    assert got.equity[-1] == pytest.approx(float(equity), rel=1e-9, abs=1e-9)
    assert int(got.position[-1]) == sum(q for _, q, _, _ in want)


def test_stats_module_matches_the_kernel() -> None:
    bars = _bars(5_000, 3)
    res = V.run(
        bars, "ma_cross", {"fast": 3, "slow": 10, "max_position": 5, "order_qty": 2}, costs=COSTS
    )
    full = compute_stats(RunTables.from_vector(res))
    for name, value in res.stats.items():
        assert full[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    prep = V.Prepared(bars, COSTS)
    quick = V.evaluate(prep, "ma_cross", {"fast": 3, "slow": 10, "max_position": 5, "order_qty": 2})
    assert quick == res.stats
    assert full["fill_ratio"] == 1.0
    assert 0.0 <= full["win_rate"] <= 1.0


def test_hand_worked_cross() -> None:
    # mid2 = 2 * price; fast 1, slow 2: the regime is the sign of the last move.
    prices = [100, 101, 102, 101, 100, 101]
    px = np.array(prices, np.int64)
    bars = Bars(np.arange(len(px), dtype=np.int64) * 1_000_000, px, px)
    params = {"fast": 1, "slow": 2, "max_position": 1, "order_qty": 2}
    res = V.run(bars, "ma_cross", params, costs=CostModel())
    # bar 1: first regime (+), not a cross; bar 3: death cross -> sell 1 at 101;
    # bar 5: golden cross -> buy 2 at 101 (from -1 to +1)
    assert res.trades[["bar", "side", "qty", "price"]].values.tolist() == [
        [3, -1, 1, 101],
        [5, 1, 2, 101],
    ]
    assert res.position.tolist() == [0, 0, 0, -1, -1, 1]
    # equity in money (tick 0.01): short 1 from 101 marked at 100 -> +0.01 at bar 4
    assert res.equity.tolist() == pytest.approx([0, 0, 0, 0, 0.01, 0.0])


def test_bad_parameters_use_the_strategy_messages() -> None:
    bars = _bars(100)
    with pytest.raises(ConfigError, match="slow: must be greater than fast"):
        V.run(bars, "ma_cross", {"fast": 10, "slow": 5})
    with pytest.raises(ConfigError, match="unknown parameter"):
        V.run(bars, "mean_reversion", {"windw": 10})
    with pytest.raises(ConfigError, match="mode must be 'taker'"):
        V.run(bars, "ma_cross", {"mode": "maker"})
    with pytest.raises(ConfigError, match="unknown strategy"):
        V.run(bars, "imbalance", {})


def test_bad_bars() -> None:
    bid = np.array([100, 101, 102], np.int64)
    with pytest.raises(UsageError, match="ask 100 is below bid 101"):
        V.run(
            Bars(np.arange(3, dtype=np.int64), bid, np.array([101, 100, 103], np.int64)),
            "ma_cross",
            {"fast": 1, "slow": 2},
        )
    with pytest.raises(UsageError, match="bar 2: ts_ns goes backwards"):
        V.run(Bars(np.array([0, 5, 4], np.int64), bid, bid), "ma_cross", {"fast": 1, "slow": 2})
    huge = np.array([1, 2**40, 1, 2**40], np.int64)
    with pytest.raises(ValueError, match="overflow"):
        V.run(Bars(np.arange(4, dtype=np.int64), huge, huge), "mean_reversion", {"window": 3})


GRID = {"fast": [2, 3, 5, 8], "slow": [5, 8, 13, 21]}


def test_grid_sweep_in_process_and_on_a_local_pool_agree() -> None:
    bars = _bars(20_000, 5)
    base = {"max_position": 3, "order_qty": 3}
    local = V.sweep(bars, "ma_cross", GRID, base=base, costs=COSTS, workers=0, progress=False)
    pool = V.sweep(
        bars, "ma_cross", GRID, base=base, costs=COSTS, workers=2, batch_size=3, progress=False
    )
    # (5,5), (8,5), (8,8) are invalid: slow must exceed fast
    assert local.attrs["skipped"] == 3
    assert len(local) == 13
    assert local.equals(pool)
    assert local["rank"].tolist() == list(range(1, 14))
    assert local["sharpe"].is_monotonic_decreasing
    one = V.run(bars, "ma_cross", {"fast": 3, "slow": 13, **base}, costs=COSTS)
    row = local[(local["fast"] == 3) & (local["slow"] == 13)].iloc[0]
    assert row["pnl"] == one.stats["pnl"]
    dd = V.sweep(
        bars,
        "ma_cross",
        GRID,
        base=base,
        costs=COSTS,
        workers=0,
        progress=False,
        metric="max_drawdown",
    )
    assert dd["max_drawdown"].is_monotonic_increasing


def test_random_search_is_seeded() -> None:
    bars = _bars(3_000, 2)
    space = {"window": (5, 40), "entry_z": (1.0, 2.5), "exit_z": [0.0, 0.25, 0.5]}
    a = V.sweep(bars, "mean_reversion", space=space, samples=12, seed=4, workers=0, progress=False)
    b = V.sweep(bars, "mean_reversion", space=space, samples=12, seed=4, workers=0, progress=False)
    c = V.sweep(bars, "mean_reversion", space=space, samples=12, seed=5, workers=0, progress=False)
    assert len(a) == 12 and a.equals(b) and not a.equals(c)
    assert a["window"].between(5, 40).all()


def test_sweep_argument_errors() -> None:
    bars = _bars(100)
    with pytest.raises(UsageError, match="unknown metric"):
        V.sweep(bars, "ma_cross", GRID, metric="alpha", workers=0, progress=False)
    with pytest.raises(UsageError, match="either grid"):
        V.sweep(bars, "ma_cross", workers=0, progress=False)
    with pytest.raises(UsageError, match="no valid parameter set"):
        V.sweep(bars, "ma_cross", {"fast": [9], "slow": [3]}, workers=0, progress=False)


def test_sweep_on_a_dask_cluster_of_worker_processes() -> None:
    distributed = pytest.importorskip("distributed")
    bars = _bars(20_000, 5)
    base = {"max_position": 3, "order_qty": 3}
    want = V.sweep(bars, "ma_cross", GRID, base=base, costs=COSTS, workers=0, progress=False)
    import dask

    # generous timeouts: on a loaded 2-core machine starting worker processes can be slow
    slow_machine = {
        "distributed.comm.timeouts.connect": "180s",
        "distributed.comm.timeouts.tcp": "180s",
        "distributed.scheduler.worker-ttl": None,
    }
    with (
        dask.config.set(slow_machine),
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=40,
            timeout="180s",
        ) as cluster,
        distributed.Client(cluster, timeout="180s") as client,
    ):
        pids = set(client.run(os.getpid).values())
        assert len(pids) == 2 and os.getpid() not in pids
        by_address = V.sweep(
            bars, "ma_cross", GRID, base=base, costs=COSTS, scheduler=cluster.scheduler_address,
            batch_size=2, progress=False,
        )  # fmt: skip
        by_client = V.sweep(
            bars, "ma_cross", GRID, base=base, costs=COSTS, scheduler=client, progress=False
        )
    assert by_address.equals(want)
    assert by_client.equals(want)


def test_fraction_free_accounting_is_exact_in_ticks() -> None:
    # The kernel's cash is integer tick-lots: a round trip at the same price costs only fees.
    px = np.array([100, 100, 101, 100, 100, 99, 100, 101], np.int64)
    bars = Bars(np.arange(len(px), dtype=np.int64), px, px + 1)
    res = V.run(bars, "ma_cross", {"fast": 1, "slow": 2, "max_position": 1}, costs=CostModel())
    cash = Fraction(0)
    for side, qty, price in res.trades[["side", "qty", "price"]].values.tolist():
        cash -= side * qty * price
    mark = Fraction(int(px[-1]) * 2 + 1, 2)
    assert float((cash + int(res.position[-1]) * mark) / 100) == pytest.approx(res.equity[-1])


def _random_set(rng: np.random.Generator, kind: str, longest: int) -> dict[str, Any]:
    common = {
        "max_position": int(rng.integers(1, 6)),
        "order_qty": int(rng.integers(1, 4)),
        "allow_short": bool(rng.integers(0, 2)),
        "slippage_ticks": int(rng.integers(0, 3)),
        "cooldown_ms": int(rng.choice([0, 0, 1, 3, 20])),
    }
    windows = [w for w in (2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377) if w <= longest]
    if kind == "ma_cross":
        fast, slow = sorted(int(w) for w in rng.choice(windows, 2, replace=False))
        return {"fast": fast, "slow": slow, **common}
    entry = float(rng.uniform(0.5, 2.5))
    return {
        "window": int(rng.choice(windows)),
        "entry_z": entry,
        "exit_z": float(rng.choice([0.0, entry * float(rng.uniform(0.0, 0.9))])),
        **common,
    }


@pytest.mark.parametrize("kind", ["ma_cross", "mean_reversion"])
def test_random_sets_equal_the_strategy_class(kind: str) -> None:
    # random parameter sets (cooldowns, partial orders, slippage, long-only) against the class:
    # covers the event skipping (bitset words, cooldown search) of the kernels
    bars = _bars(1_500, 8)
    rng = np.random.default_rng(21 if kind == "ma_cross" else 22)
    traded = 0
    for _ in range(5):
        params = _random_set(rng, kind, 89)
        want, fees, equity = _oracle(bars, kind, params)
        got = V.run(bars, kind, params, costs=COSTS)
        trades = list(
            zip(
                got.trades["bar"].tolist(),
                (got.trades["side"] * got.trades["qty"]).tolist(),
                got.trades["price"].tolist(),
                got.trades["ts_ns"].tolist(),
                strict=True,
            )
        )
        assert trades == want, params
        assert got.fees_exact == fees, params
        assert got.equity[-1] == pytest.approx(float(equity), rel=1e-9, abs=1e-9)
        traded += len(want)
    assert traded > 50


@pytest.mark.parametrize("kind", ["ma_cross", "mean_reversion"])
def test_segment_statistics_equal_per_bar_statistics(kind: str) -> None:
    # The kernel sums returns per segment between fills and walks drawdowns per block of
    # bars; compute_stats works bar by bar over the equity table. Long windows give segments
    # longer than a block (256 bars), trending bars give new highs and deep drawdowns.
    rng = np.random.default_rng(5 if kind == "ma_cross" else 6)
    for seed, move in ((3, 0.9), (4, 0.2)):
        bars = synthetic_bars(12_000, seed, L2Params(move_prob=move))
        prep = V.Prepared(bars, COSTS)
        for _ in range(6):
            params = _random_set(rng, kind, 377)
            capital = None if rng.integers(0, 2) else 5_000.0
            res = V.run(bars, kind, params, costs=COSTS, capital=capital)
            full = compute_stats(RunTables.from_vector(res))
            quick = V.evaluate(prep, kind, params, capital)
            assert _same(quick, res.stats), params
            for name, value in quick.items():
                assert full[name] == pytest.approx(value, rel=1e-9, abs=1e-12, nan_ok=True), (
                    name,
                    params,
                )
            assert full["max_drawdown_bars"] == quick["max_drawdown_bars"]
            pos = res.position
            assert quick["final_position"] == pos[-1]


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    """Equal statistics dicts (NaN equals NaN: no closing fill means no win rate)."""
    return a.keys() == b.keys() and all(
        a[k] == b[k] or (np.isnan(a[k]) and np.isnan(b[k])) for k in a
    )


def test_prepared_pickles_as_bars_and_rebuilds() -> None:
    import pickle

    bars = _bars(3_000, 4)
    prep = V.Prepared(bars, COSTS)
    params = {"window": 20, "entry_z": 1.5, "exit_z": 0.2}
    want = V.evaluate(prep, "mean_reversion", params)
    blob = pickle.dumps(prep)
    assert len(blob) < 3 * 8 * len(bars) + 4_096  # the bars, not the derived arrays
    again = pickle.loads(blob)
    assert _same(V.evaluate(again, "mean_reversion", params), want)
    # the z-scores cached for one window are not reused for another
    other = V.evaluate(again, "mean_reversion", {**params, "window": 30})
    fresh = V.evaluate(V.Prepared(bars, COSTS), "mean_reversion", {**params, "window": 30})
    assert _same(other, fresh) and not _same(other, want)


def test_mean_reversion_sweep_on_a_pool_keeps_the_set_order() -> None:
    # mean-reversion batches are grouped by window (shared z-scores): the table must not care
    bars = _bars(20_000, 7)
    grid = {"window": [30, 10, 20], "entry_z": [1.0, 2.0], "exit_z": [0.0, 0.5]}
    local = V.sweep(bars, "mean_reversion", grid, costs=COSTS, workers=0, progress=False)
    pool = V.sweep(
        bars, "mean_reversion", grid, costs=COSTS, workers=2, batch_size=2, progress=False
    )
    assert len(local) == 12 and local.equals(pool)
    assert local.attrs["cpu_seconds"] > 0 and pool.attrs["cpu_seconds"] > 0
    prep = V.Prepared(bars, COSTS)
    for row in local.itertuples():
        params = {"window": row.window, "entry_z": row.entry_z, "exit_z": row.exit_z}
        assert V.evaluate(prep, "mean_reversion", params)["sharpe"] == row.sharpe
