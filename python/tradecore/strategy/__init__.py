"""Strategies: the base class, the context protocol, features and the built-in strategies.

``Strategy`` subclasses react to market data and order updates through a ``Context`` the node
gives each of them (one account per strategy). ``create_strategy(kind, name, params)`` builds
a built-in (``imbalance``, ``ma_cross``, ``mean_reversion``, ``onnx``) or any
``"module:Class"`` from a config. Features live in :mod:`tradecore.strategy.features`; an
in-memory context for tests in :mod:`tradecore.strategy.testing`.
"""

from tradecore.strategy.base import Strategy, TargetStrategy
from tradecore.strategy.context import Context
from tradecore.strategy.features import BookFeatures, TradeFlow, feature_names
from tradecore.strategy.imbalance import ImbalanceStrategy
from tradecore.strategy.ma_cross import MaCrossStrategy
from tradecore.strategy.mean_reversion import MeanReversionStrategy
from tradecore.strategy.registry import (
    available_strategies,
    create_strategy,
    register,
    strategy_class,
)

__all__ = [
    "BookFeatures",
    "Context",
    "ImbalanceStrategy",
    "MaCrossStrategy",
    "MeanReversionStrategy",
    "Strategy",
    "TargetStrategy",
    "TradeFlow",
    "available_strategies",
    "create_strategy",
    "feature_names",
    "register",
    "strategy_class",
]
