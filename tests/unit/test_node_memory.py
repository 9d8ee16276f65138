"""What the node keeps in memory during a run, and what the garbage collector scans.

* Finished orders are retired from the order manager once they are stored: a long run keeps
  only open orders (and compact tombstones), so the collector's work does not grow with the
  number of orders; the store still has every order and every report, and what a strategy
  reads through its context is unchanged.
* ``[node] gc_freeze``: the start-up heap is frozen for the run and unfrozen at shutdown.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from tradecore.execution.types import Order, OrderStatus
from tradecore.node.node import Node
from tradecore.store import Store


def _config(tmp: Path, latency_us: int, freeze: bool = True) -> Path:
    text = f"""
[node]
name = "retire"
symbols = ["FTMUSDT"]
gc_freeze = {"true" if freeze else "false"}

[source]
recording = "embedded:2021-08-14"

[[strategy]]
name = "taker-ftm"
kind = "imbalance"
account = 1
initial_cash = "100000"
params = {{ symbol = "FTMUSDT", threshold = 0.2, order_qty = 1, max_position = 1000000 }}

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


@pytest.mark.parametrize("latency_us", [0, 300])  # reports at once, and later
def test_finished_orders_are_retired_after_they_are_stored(tmp_path: Path, latency_us: int) -> None:
    tmp = tmp_path
    node = Node.from_file(_config(tmp, latency_us), watch_config=False, max_events=3_000)
    seen: list[tuple[int, OrderStatus]] = []
    ctx = node.slots[0].ctx
    order_of = ctx.order

    def spy(coid: int) -> Order | None:
        order = order_of(coid)
        if order is not None:
            seen.append((coid, order.status))
        return order

    ctx.order = spy
    summary = node.run()
    om = node.om
    assert summary.orders > 20
    # Only open orders stay in the order manager; every finished one left a tombstone.
    assert all(o.is_open for o in om.orders())
    assert om.stats.retired == summary.orders - len(om.orders()) - _risk_rejects(summary)
    assert om.retired_count == om.stats.retired
    # The store has every order, in its final state, and every fill.
    store = Store(tmp / "node.sqlite")
    try:
        stored = {o.client_order_id: o for o in store.orders()}
        assert len(store.fills()) == summary.fills
    finally:
        store.close()
    assert len(stored) == summary.orders
    for coid, o in stored.items():
        view = om.lookup(1, coid)
        if view is None:  # refused by risk: never registered
            assert o.status is OrderStatus.REJECTED
            continue
        assert (view.status, view.filled_qty, view.leaves, view.price) == (
            o.status,
            o.filled_qty,
            o.leaves,
            o.price,
        )
    if latency_us:
        # The strategy looked up orders that had finished (and been retired) meanwhile.
        assert any(not s.is_open for _c, s in seen)


def _risk_rejects(summary: object) -> int:
    rejects = getattr(summary, "risk_rejects", {})
    return sum(rejects.values()) if isinstance(rejects, dict) else 0


@pytest.mark.parametrize("freeze", [True, False])
def test_gc_freeze_holds_for_the_run_only(tmp_path: Path, freeze: bool) -> None:
    assert gc.get_freeze_count() == 0
    node = Node.from_file(_config(tmp_path, 0, freeze), watch_config=False, max_events=200)
    during: list[int] = []
    on_market_event = node._on_market_event

    def spy(ev: object) -> None:
        during.append(gc.get_freeze_count())
        on_market_event(ev)  # type: ignore[arg-type]

    node._on_market_event = spy  # type: ignore[method-assign]
    summary = node.run()
    assert summary.messages == 200 and len(during) == 200
    if freeze:
        assert min(during) > 1000  # the start-up heap (modules, config, books) is frozen
    else:
        assert max(during) == 0
    assert gc.get_freeze_count() == 0  # unfrozen at shutdown: nothing stays uncollectable


def _multi_config(tmp: Path) -> Path:
    syms = ["FTMUSDT", "SXPBTC", "BADGERBTC", "XMRBTC"]
    strategies = "".join(
        f"""
[[strategy]]
name = "imb-{s.lower()}"
kind = "imbalance"
account = {i + 1}
initial_cash = "100000"
params = {{ symbol = "{s}", threshold = 0.2, order_qty = 1, max_position = 2 }}
"""
        for i, s in enumerate(syms)
    )
    text = f"""
[node]
name = "equity-cache"
symbols = {syms!r}
risk_check_interval_ms = 50
{strategies}
[risk.account_defaults]
max_daily_loss = "1000000"

[broker]
taker_fee_bps = "7.5"

[storage]
path = "node.sqlite"

[metrics]
enabled = false
""".replace("'", '"')
    path = tmp / "node.toml"
    path.write_text(text)
    return path


def test_cached_equity_stays_exact_on_the_risk_timer(tmp_path: Path) -> None:
    # The risk timer refreshes the cached equity of the accounts whose marks moved, and skips
    # those whose position in the moved symbols is flat. Reference: after every timer, each
    # cached figure equals the portfolio's equity computed afresh at the current marks.
    node = Node.from_file(_multi_config(tmp_path), watch_config=False, max_events=4_000)
    risk_timer = node._risk_timer
    checked: list[int] = []
    flat_skipped: list[int] = []

    def spy(deadline: int) -> None:
        risk_timer(deadline)
        node._mark_all()
        for acc, cached in node._equity.items():
            assert cached == node.portfolio.equity(acc), (acc, deadline)
            # Digit for digit the general Decimal sum too (the integer fast path's reference).
            assert cached.as_tuple() == node.portfolio._equity_general(acc).as_tuple()
            checked.append(acc)
            if all(node.portfolio.position_qty(acc, s) == 0 for s in node._held.get(acc, ())):
                flat_skipped.append(acc)

    node._risk_timer = spy  # type: ignore[method-assign]
    summary = node.run()
    assert summary.fills > 10
    assert len(set(checked)) == 4 and flat_skipped  # flat accounts were met, and stayed exact
