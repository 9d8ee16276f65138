"""Order and fill callbacks reach a strategy that listens, in order, once per applied report.

The node queues ``on_fill`` and ``on_order`` from what the order manager applied (fills
before the order update of the same report) and delivers them after the current callback;
a strategy that does not override them is not called. Real node, recording and SQLite.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tradecore.execution.types import Fill, Order, OrderStatus
from tradecore.node.node import Node
from tradecore.store import Store
from tradecore.strategy.imbalance import ImbalanceStrategy
from tradecore.strategy.registry import register


class _Listening(ImbalanceStrategy):
    """The imbalance strategy, noting every fill and order update it is told about."""

    def __init__(self, name: str = "listening", **params: object) -> None:
        super().__init__(name, **params)
        self.heard: list[tuple[str, int, object]] = []

    def on_fill(self, fill: Fill) -> None:
        self.heard.append(("fill", fill.client_order_id, fill.qty))

    def on_order(self, order: Order) -> None:
        self.heard.append(("order", order.client_order_id, order.status))


register("imbalance-listening", _Listening)


def _config(tmp: Path, latency_us: int) -> Path:
    text = f"""
[node]
name = "callbacks"
symbols = ["FTMUSDT"]

[source]
recording = "embedded:2021-08-14"

[[strategy]]
name = "listener"
kind = "imbalance-listening"
account = 1
initial_cash = "100000"
params = {{ symbol = "FTMUSDT", threshold = 0.2, order_qty = 3, max_position = 1000000 }}

[broker]
taker_fee_bps = "7.5"
latency_us = {latency_us}

[storage]
path = "node.sqlite"

[metrics]
enabled = false
"""
    path = tmp / "node.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("latency_us", [0, 300])
def test_fill_and_order_callbacks_follow_the_applied_reports(
    tmp_path: Path, latency_us: int
) -> None:
    node = Node.from_file(_config(tmp_path, latency_us), watch_config=False, max_events=3_000)
    summary = node.run()
    strat = node.slots[0].strategy
    assert isinstance(strat, _Listening)
    heard = strat.heard
    orders = [h for h in heard if h[0] == "order"]
    fills = [h for h in heard if h[0] == "fill"]
    assert summary.fills > 10
    # One order update per report the order manager applied, one fill callback per fill.
    assert len(orders) == node.om.stats.events
    assert len(fills) == summary.fills == node.om.stats.fills
    # A fill comes before the order update of the same report.
    for i, (kind, coid, _qty) in enumerate(heard):
        if kind == "fill":
            nxt = heard[i + 1]
            assert nxt[0] == "order" and nxt[1] == coid
    # The last status told per order is the status stored.
    last: dict[int, object] = {}
    for _kind, coid, status in orders:
        last[coid] = status
    store = Store(tmp_path / "node.sqlite")
    try:
        stored = {o.client_order_id: o.status for o in store.orders()}
    finally:
        store.close()
    for coid, status in last.items():
        assert stored[coid] is status
    assert any(s is OrderStatus.FILLED for s in last.values())
