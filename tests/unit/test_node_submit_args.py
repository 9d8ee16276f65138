"""A strategy's bad order arguments raise typed errors that name the argument, in a real node.

The node checks an order's arguments before anything else (risk, the order manager, the
broker): a wrong type is a ``TypeError``, a wrong value a ``ValueError``, the first failing
check (quantity type, quantity, symbol, side; for a limit order the price first) decides the
message, and a refused order leaves no trace: no client order id used, nothing registered,
counted or stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tradecore.enums import Side, TimeInForce
from tradecore.node.node import Node

_CONFIG = """
[node]
name = "submit-args"
symbols = ["FTMUSDT"]
clock = "wall"

[source]
recording = "embedded:2021-08-14"

[[strategy]]
name = "quiet"
kind = "imbalance"
account = 1
initial_cash = "100000"
params = { symbol = "FTMUSDT", threshold = 0.999 }

[storage]
path = "node.sqlite"

[metrics]
enabled = false
"""

_CASES: list[tuple[tuple[Any, ...], type[Exception], str]] = [
    (("FTMUSDT", Side.BUY, "1", 100), TypeError, r"qty must be an int \(lots\), got str"),
    (("FTMUSDT", Side.BUY, 1.0, 100), TypeError, r"qty must be an int \(lots\), got float"),
    (("FTMUSDT", Side.BUY, 0, 100), ValueError, r"qty must be > 0 lots, got 0"),
    (("FTMUSDT", Side.BUY, -3, 100), ValueError, r"qty must be > 0 lots, got -3"),
    (("NOPE", Side.BUY, 1, 100), ValueError, r"unknown symbol 'NOPE' \(node symbols: FTMUSDT\)"),
    (("FTMUSDT", "BUY", 1, 100), TypeError, r"side must be a Side, got 'BUY'"),
    (("FTMUSDT", Side.BUY, 1, 1.5), TypeError, r"price must be an int \(ticks\), got float"),
    (("FTMUSDT", Side.BUY, 1, 0), ValueError, r"price must be > 0 ticks for a LIMIT order"),
    # The first failing check decides: price, then quantity type, quantity, symbol, side.
    (("NOPE", "BUY", 0, -1), ValueError, r"price must be > 0 ticks"),
    (("NOPE", "BUY", "x", 5), TypeError, r"qty must be an int"),
    (("NOPE", "BUY", 0, 5), ValueError, r"qty must be > 0 lots"),
    (("NOPE", "BUY", 2, 5), ValueError, r"unknown symbol 'NOPE'"),
]


def test_bad_order_arguments_raise_and_leave_no_trace(tmp_path: Path) -> None:
    (tmp_path / "node.toml").write_text(_CONFIG)
    node = Node.from_file(tmp_path / "node.toml", watch_config=False)
    ctx = node.slots[0].ctx
    seen: list[str] = []

    def loop() -> None:  # runs inside the started node, instead of the market data
        for args, exc, msg in _CASES:
            with pytest.raises(exc, match=msg):
                ctx.submit_limit(*args, tif=TimeInForce.IOC)
            seen.append(msg)
        with pytest.raises(ValueError, match=r"qty must be > 0 lots, got 0"):
            ctx.submit_market("FTMUSDT", Side.SELL, 0)
        with pytest.raises(TypeError, match=r"side must be a Side"):
            ctx.submit_market("FTMUSDT", 1, 1)  # type: ignore[arg-type]
        # And a good order after them gets the account's first client order id.
        order = ctx.submit_limit("FTMUSDT", Side.BUY, 1, 1, tif=TimeInForce.IOC)
        seen.append(f"coid {order.request.client_order_id}")

    node._loop_sync = loop  # type: ignore[method-assign]
    summary = node.run()
    assert len(seen) == len(_CASES) + 1
    assert seen[-1] == "coid 1"
    assert summary.orders == 1 and node.om.stats.registered == 1
