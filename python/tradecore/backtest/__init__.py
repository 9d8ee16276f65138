"""Backtests: the event-driven engine, vectorized sweeps, statistics and reports.

* :mod:`~tradecore.backtest.engine`: the event-driven backtester: the trading node's strategy,
  risk, order manager, paper broker and portfolio code on a simulated clock (L2 data).
* :mod:`~tradecore.backtest.l3`: L3 (LOBSTER) mode: our orders in the real matching book beside
  the historical ones, with the market-impact (drift) report.
* :mod:`~tradecore.backtest.config` and :mod:`~tradecore.backtest.cli`: ``tradecore backtest
  --config FILE``.
* :mod:`~tradecore.backtest.vector`: the price-only built-ins over whole arrays, and parameter
  sweeps on a process pool or a Dask cluster.
* :mod:`~tradecore.backtest.stats`: statistics from equity, fills and orders tables.
* :mod:`~tradecore.backtest.report`: the offline HTML report and the equity PNG.
* :mod:`~tradecore.backtest.costs`: the fee model shared with the paper broker.

Both engines produce the same tables (:class:`~tradecore.backtest.stats.RunTables`), so
statistics and reports work for both. Imported lazily: ``import tradecore.backtest`` loads
nothing until a name is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tradecore.backtest.config import LoadedBacktest, load_backtest_config
    from tradecore.backtest.engine import (
        BacktestEngine,
        BacktestError,
        BacktestResult,
        EngineSettings,
        StrategyError,
        StrategySpec,
        run_config,
    )
    from tradecore.backtest.l3 import L3Stats
    from tradecore.backtest.stats import RunTables, compute_stats

__all__ = [
    "BacktestEngine",
    "BacktestError",
    "BacktestResult",
    "EngineSettings",
    "L3Stats",
    "LoadedBacktest",
    "RunTables",
    "StrategyError",
    "StrategySpec",
    "compute_stats",
    "load_backtest_config",
    "run_config",
]

_HOME = {
    "BacktestEngine": "engine",
    "BacktestError": "engine",
    "BacktestResult": "engine",
    "EngineSettings": "engine",
    "StrategyError": "engine",
    "StrategySpec": "engine",
    "run_config": "engine",
    "L3Stats": "l3",
    "LoadedBacktest": "config",
    "load_backtest_config": "config",
    "RunTables": "stats",
    "compute_stats": "stats",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'tradecore.backtest' has no attribute {name!r}")
    return getattr(importlib.import_module(f"tradecore.backtest.{home}"), name)
