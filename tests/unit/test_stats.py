"""tradecore.backtest.stats on hand-worked tables, and the Parquet round trip."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tradecore.backtest.stats import RunTables, compute_stats, stats_frame, trade_pnl


def _tables() -> RunTables:
    s = 1_000_000_000
    equity = pd.DataFrame(
        {
            "ts_ns": np.arange(5) * s,
            "equity": [0.0, 10.0, 5.0, 15.0, 12.0],
            "position": [0, 2, 1, 1, -1],
        }
    )
    fills = pd.DataFrame(
        {
            "ts_ns": [1 * s, 2 * s, 4 * s],
            "order_id": [1, 2, 3],
            "side": [1, -1, -1],
            "qty": [2, 1, 2],
            "price": [100, 103, 99],  # ticks of 0.01
            "notional": [2.0, 1.03, 1.98],
            "fee": [0.02, 0.01, 0.02],
            "liquidity": ["MAKER", "TAKER", "MAKER"],
        }
    )
    orders = pd.DataFrame(
        {
            "order_id": [1, 2, 3, 4],
            "ts_ns": [0, 2 * s, 1 * s, 3 * s],
            "side": [1, -1, -1, 1],
            "qty": [2, 1, 4, 3],
            "price": [100, 103, 99, 95],
            "filled_qty": [2, 1, 2, 0],
            "passive": [True, False, True, True],
            "first_fill_ns": [3 * s, 2 * s, int(1.5 * s), None],
            "status": ["FILLED", "FILLED", "CANCELLED", "CANCELLED"],
        }
    )
    return RunTables(
        equity, fills, orders, capital=100.0, periods_per_year=1.0, meta={"run": "hand"}
    )


def test_hand_worked_statistics() -> None:
    st = compute_stats(_tables())
    # returns: 0, .1, -.05, .1, -.03
    r = np.array([0, 0.1, -0.05, 0.1, -0.03])
    assert st["total_return"] == pytest.approx(0.12)
    assert st["sharpe"] == pytest.approx(r.mean() / r.std())
    assert st["sharpe"] == pytest.approx(0.374634, abs=1e-6)
    assert st["sortino"] == pytest.approx(0.024 / math.sqrt(0.00068))
    # V = 100, 110, 105, 115, 112; worst: 5 below the peak of 110
    assert st["max_drawdown"] == pytest.approx(5 / 110)
    assert st["max_drawdown_bars"] == 1 and st["max_drawdown_ns"] == 1e9
    # closing fills: +0.01 (sell 1 @ 103 of 2 @ 100) and -0.03 (sell 1 more @ 99)
    assert st["win_rate"] == 0.5
    assert st["profit_factor"] == pytest.approx(0.01 / 0.03)
    assert st["trades"] == 3
    assert st["turnover"] == pytest.approx(5.01 / 100)
    assert st["fees"] == pytest.approx(0.05)
    assert st["final_position"] == -1
    assert st["fill_ratio"] == pytest.approx(5 / 10)
    assert st["avg_queue_ns"] == pytest.approx(1.75e9)
    assert st["passive_orders"] == 3 and st["orders"] == 4


def test_trade_pnl_average_cost() -> None:
    pnl = trade_pnl(_tables().fills, 0.01)
    assert pnl["closed_qty"].tolist() == [1, 1]
    assert pnl["pnl"].tolist() == pytest.approx([0.01, -0.03])


def test_undefined_statistics_are_nan_not_errors() -> None:
    t = _tables()
    flat = RunTables(
        t.equity.assign(equity=0.0, position=0),
        t.fills.iloc[:0],
        t.orders.iloc[:0],
        capital=100.0,
        periods_per_year=252.0,
    )
    st = compute_stats(flat)
    assert st["sharpe"] == 0.0 and st["max_drawdown"] == 0.0 and st["trades"] == 0
    assert math.isnan(st["win_rate"]) and math.isnan(st["fill_ratio"])
    assert math.isnan(st["avg_queue_ns"])


def test_tables_are_checked() -> None:
    t = _tables()
    with pytest.raises(ValueError, match="fills table: missing column"):
        RunTables(t.equity, t.fills.drop(columns=["fee"]), t.orders, 100.0, 1.0)
    with pytest.raises(ValueError, match="capital must be positive"):
        RunTables(t.equity, t.fills, t.orders, 0.0, 1.0)


def test_parquet_round_trip(tmp_path: Path) -> None:
    t = _tables()
    paths = t.to_parquet(tmp_path / "run")
    assert {p.name for p in paths} == {
        "equity.parquet", "fills.parquet", "orders.parquet", "stats.parquet", "meta.json",
    }  # fmt: skip
    back = RunTables.from_parquet(tmp_path / "run")
    assert back.equity.equals(t.equity) and back.fills.equals(t.fills)
    assert back.meta == {"run": "hand"} and back.capital == 100.0
    assert compute_stats(back) == compute_stats(t)
    stats = pd.read_parquet(tmp_path / "run" / "stats.parquet")
    assert stats["win_rate"].iloc[0] == 0.5
    frame = stats_frame({"a": t, "b": back})
    assert list(frame.index) == ["a", "b"] and frame.loc["a", "trades"] == 3
