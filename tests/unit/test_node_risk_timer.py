"""The node's risk timer against the way it was written before its fast exit.

The timer marks the books that changed, refreshes the cached equity of the accounts holding a
non-flat position in a symbol whose mark moved, and lets risk evaluate the loss limits. Its
fast exit (no equity moved, no fill since the last evaluation, same UTC day, no reset or
reload, no new baselines: return before ``_evaluate_risk``) and ``Portfolio.mark_books`` must
not change anything: two nodes over the same recording, one with the timer below (the
previous code, which always went through ``_evaluate_risk``), must store the same risk events,
the same baselines and kill-switch state, the same orders and fills, and hold the same cached
equity (exact, digit for digit) after every timer.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tradecore.node.node import Node
from tradecore.store import Store

SYMS = ["FTMUSDT", "SXPBTC", "BADGERBTC", "XMRBTC"]


def _config(tmp: Path, drawdown: str) -> Path:
    strategies = "".join(
        f"""
[[strategy]]
name = "imb-{s.lower()}"
kind = "imbalance"
account = {i + 1}
initial_cash = "100000"
params = {{ symbol = "{s}", threshold = 0.2, order_qty = 1, max_position = {i + 1} }}
"""
        for i, s in enumerate(SYMS)
    )
    text = f"""
[node]
name = "risk-timer"
symbols = {SYMS!r}
risk_check_interval_ms = 20
{strategies}
[risk.account_defaults]
max_daily_loss = "1000000"
max_drawdown = "{drawdown}"

[broker]
taker_fee_bps = "7.5"

[storage]
path = "node.sqlite"

[metrics]
enabled = false
""".replace("'", '"')
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "node.toml"
    path.write_text(text)
    return path


def _previous_risk_timer(node: Node, _deadline: int) -> None:
    """The timer as it was: mark, collect the holders of moved marks, always evaluate."""
    node._mark_all()
    moved = node._marks_moved
    accounts: set[int] = set()
    if moved:
        for sym in moved:
            for acc in node._holders.get(sym, ()):
                if node.portfolio.position_qty(acc, sym):
                    accounts.add(acc)
        node._marks_moved = set()
    node._evaluate_risk(accounts)


def _run(tmp: Path, drawdown: str, previous: bool) -> dict[str, Any]:
    node = Node.from_file(_config(tmp, drawdown), watch_config=False, max_events=6_000)
    timer = node._risk_timer
    equities: list[tuple[int, int, tuple[object, ...]]] = []
    fast_exits = [0]

    def spy(deadline: int) -> None:
        evaluate = node._evaluate_risk
        calls = [0]

        def counted(*a: Any) -> None:
            calls[0] += 1
            evaluate(*a)

        node._evaluate_risk = counted  # type: ignore[method-assign]
        if previous:
            _previous_risk_timer(node, deadline)
        else:
            timer(deadline)
        node._evaluate_risk = evaluate  # type: ignore[method-assign]
        fast_exits[0] += not calls[0]
        equities.extend((deadline, a, e.as_tuple()) for a, e in sorted(node._equity.items()))

    node._risk_timer = spy  # type: ignore[method-assign]
    summary = node.run()
    store = Store(tmp / "node.sqlite")
    return {
        "summary": (summary.messages, summary.orders, summary.fills),
        "risk_events": [
            (r.ts_ns, r.kind, r.reason, r.account, r.symbol, r.detail) for r in store.risk_events()
        ],
        "baselines": [
            (b.account, b.day, b.day_start_equity, b.peak_equity) for b in store.risk_baselines()
        ],
        "fills": [(f.account, f.client_order_id, f.price, f.qty, f.fee) for f in store.fills()],
        "kill": node.risk.kill_switch_state(),
        "equities": equities,
        "fast_exits": fast_exits[0],
    }


@pytest.mark.parametrize("drawdown", ["0.00002", "1000000"])  # trips early; never trips
def test_risk_timer_fast_exit_changes_nothing(tmp_path: Path, drawdown: str) -> None:
    new = _run(tmp_path / "new", drawdown, previous=False)
    old = _run(tmp_path / "old", drawdown, previous=True)
    assert new.pop("fast_exits") > 20  # the fast exit was taken
    assert old.pop("fast_exits") == 0
    assert new == old
    assert new["summary"][2] > 10 and len(new["equities"]) > 200
    trips = [e for e in new["risk_events"] if e[1] == "KILL_SWITCH_TRIPPED"]
    if Decimal(drawdown) < 1:
        assert trips  # the limit tripped on the timer or after fills, the same in both
    else:
        assert not trips


def test_risk_timer_stores_baselines_moved_outside_an_evaluation(tmp_path: Path) -> None:
    # A pre-trade check of a restored account can move the loss baselines (risk runs the loss
    # limits first for it): the next timer stores them even when no equity moved.
    node = Node.from_file(_config(tmp_path, "1000000"), watch_config=False, max_events=500)
    node.run()
    put: list[tuple[Any, ...]] = []
    node.store.put = lambda *ops: put.append(ops)  # type: ignore[method-assign]
    node._marks_dirty.clear()
    node._marks_moved.clear()
    node._risk_timer(0)
    assert put == []  # nothing moved: nothing stored
    node.risk.baseline_version += 1
    node._risk_timer(0)
    (ops,) = put
    assert len(ops) == len(node.risk.baselines()) == len(SYMS)
