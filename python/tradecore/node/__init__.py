"""The trading node (``tradecore trade``): market data, strategies, risk, execution, store."""
