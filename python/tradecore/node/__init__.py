"""The trading node (``tradecore trade``): market data, strategies, risk, execution, store.

* :class:`Node` (:mod:`tradecore.node.node`): the wiring and the single-threaded trading loop;
* :mod:`tradecore.node.config`: the TOML configuration, validated field by field;
* :mod:`tradecore.node.sources`: recorded files, the local simulator, live Binance;
* :mod:`tradecore.node.clock`: wall and event clocks, timers;
* :mod:`tradecore.node.metrics` and :mod:`tradecore.node.control`: ``/metrics`` and the control
  endpoints (kill switch, summary) on one HTTP port;
* :mod:`tradecore.node.demo`: ``run_demo`` (what ``make demo`` runs).

Imported lazily: ``import tradecore.node`` does not load the strategy, risk or store layers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tradecore.node.node import Node, NodeContext

__all__ = ["Node", "NodeContext"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from tradecore.node import node

        return getattr(node, name)
    raise AttributeError(f"module 'tradecore.node' has no attribute {name!r}")
