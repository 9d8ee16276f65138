"""Backtests: vectorized sweeps, statistics and reports (the event-driven engine plugs in here).

* :mod:`~tradecore.backtest.vector`: the price-only built-ins over whole arrays, and parameter
  sweeps on a process pool or a Dask cluster.
* :mod:`~tradecore.backtest.stats`: statistics from equity, fills and orders tables.
* :mod:`~tradecore.backtest.report`: the offline HTML report and the equity PNG.
* :mod:`~tradecore.backtest.costs`: the fee model shared with the paper broker.

The event-driven engine (the trading node's code on a simulated clock) is to produce the same
tables (:class:`~tradecore.backtest.stats.RunTables`), so statistics and reports work for both.
"""
