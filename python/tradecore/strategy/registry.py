"""The strategy registry: configs name a strategy kind and its parameters.

Owns: the map from kind names (``"imbalance"``, ``"ma_cross"``, ``"mean_reversion"``,
``"onnx"``) to strategy classes, :func:`register` for more, and :func:`create_strategy`, the
node's one entry point. A kind may also be an import path ``"package.module:ClassName"`` naming
any :class:`~tradecore.strategy.base.Strategy` subclass, so users plug in their own strategies
without registering them.

Invariants: built-ins are imported lazily (the ONNX strategy pulls in onnxruntime only when a
config uses it); a class is constructed as ``cls(name, **params)`` and validates its own
parameters (:class:`~tradecore.errors.ConfigError` naming the parameter).

Cost: construction time only.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from tradecore.errors import ConfigError
from tradecore.strategy.base import Strategy

__all__ = ["available_strategies", "create_strategy", "register", "strategy_class"]

_BUILTIN: dict[str, str] = {
    "imbalance": "tradecore.strategy.imbalance:ImbalanceStrategy",
    "ma_cross": "tradecore.strategy.ma_cross:MaCrossStrategy",
    "mean_reversion": "tradecore.strategy.mean_reversion:MeanReversionStrategy",
    "onnx": "tradecore.strategy.onnx_model:OnnxStrategy",
}
_REGISTRY: dict[str, type[Strategy] | str] = dict(_BUILTIN)


def register(kind: str, cls: type[Strategy]) -> None:
    """Make ``kind`` name ``cls`` in configs; ``ValueError`` if the name is taken."""
    if not isinstance(kind, str) or not kind or ":" in kind:
        raise ValueError(f"kind must be a non-empty name without ':', got {kind!r}")
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise TypeError(f"cls must be a Strategy subclass, got {cls!r}")
    if kind in _REGISTRY and _REGISTRY[kind] is not cls:
        raise ValueError(f"strategy kind {kind!r} is already registered")
    _REGISTRY[kind] = cls


def available_strategies() -> list[str]:
    """The registered kind names, sorted."""
    return sorted(_REGISTRY)


def _import(path: str, kind: str) -> type[Strategy]:
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"strategy kind {kind!r}: cannot import {path!r}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ConfigError(f"strategy kind {kind!r}: {path!r} is not a Strategy subclass")
    return cls


def strategy_class(kind: str) -> type[Strategy]:
    """The class behind ``kind`` (a registered name or ``"module:Class"``)."""
    if not isinstance(kind, str) or not kind:
        raise ConfigError(f"strategy kind must be a non-empty string, got {kind!r}")
    entry = _REGISTRY.get(kind)
    if entry is None:
        if ":" in kind:
            return _import(kind, kind)
        raise ConfigError(
            f"unknown strategy kind {kind!r} (known: {', '.join(available_strategies())}; "
            "or 'package.module:ClassName')"
        )
    if isinstance(entry, str):
        entry = _import(entry, kind)
        _REGISTRY[kind] = entry
    return entry


def create_strategy(
    kind: str, name: str | None = None, params: Mapping[str, object] | None = None
) -> Strategy:
    """Build the strategy ``kind`` named ``name`` (default: the kind) from ``params``."""
    cls = strategy_class(kind)
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise ConfigError(f"strategy {name or kind!r}: params must be a table")
    for key in params:
        if not isinstance(key, str):
            raise ConfigError(f"strategy {name or kind!r}: parameter names must be strings")
    factory: Any = cls  # subclasses take (name, **params); the base class takes symbols
    strategy = factory(name if name is not None else kind, **params)
    if not isinstance(strategy, Strategy):
        raise ConfigError(f"strategy kind {kind!r} did not build a Strategy")
    return strategy
