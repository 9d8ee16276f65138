"""The node's SQLite store: real files in temp dirs, a real writer thread, a real SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst
from tradecore.enums import OrderType, Side, TimeInForce
from tradecore.execution.types import (
    Fill,
    Liquidity,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderRequest,
    OrderStatus,
)
from tradecore.store import (
    AccountRow,
    PositionRow,
    RiskBaselineRow,
    RiskEventRow,
    Store,
    StoreError,
    account_op,
    cursor_op,
    fill_op,
    order_event_op,
    order_op,
    position_op,
    risk_baseline_op,
    risk_event_op,
    strategy_state_op,
)
from tradecore.store.sqlite import state_json


def _order(coid: int, *, status: OrderStatus = OrderStatus.ACKNOWLEDGED, filled: int = 0) -> Order:
    req = OrderRequest(
        account=3,
        client_order_id=coid,
        symbol="NKNUSDT",
        side=Side.BUY,
        qty=10,
        price=3513,
        order_type=OrderType.LIMIT,
        tif=TimeInForce.GTC,
        post_only=True,
        ts_ns=1_000 + coid,
        strategy="imb",
        tag="t",
    )
    return Order(
        request=req,
        status=status,
        price=3513,
        qty=10,
        filled_qty=filled,
        leaves=10 - filled,
        notional_filled=3513 * filled,
        venue_order_id=77,
        reason="",
        created_ns=5,
        updated_ns=6,
    )


def _fill(coid: int, qty: int, fill_id: int) -> Fill:
    return Fill(
        account=3,
        symbol="NKNUSDT",
        client_order_id=coid,
        side=Side.BUY,
        price=3513,
        qty=qty,
        liquidity=Liquidity.MAKER,
        fee=Decimal("-0.000123456789"),
        ts_ns=99,
        fill_id=fill_id,
        strategy="imb",
    )


def test_round_trip_of_every_table(tmp_path: Path) -> None:
    store = Store(tmp_path / "node.sqlite")
    run = store.start(config_path="cfg.toml")
    order = _order(1, status=OrderStatus.PARTIALLY_FILLED, filled=4)
    ev = OrderEvent(
        kind=OrderEventKind.FILL,
        account=3,
        client_order_id=1,
        symbol="NKNUSDT",
        side=Side.BUY,
        price=3513,
        qty=4,
        leaves=6,
        ts_ns=99,
        event_id=12,
        liquidity=Liquidity.MAKER,
        fee=Decimal("-0.000123456789"),
        venue_order_id=77,
    )
    pos = PositionRow(
        3, "NKNUSDT", 4, Fraction(28105, 2), Fraction(-7, 3), Decimal("0.01"), 4, 1, 99
    )
    store.put(order_op(order, run), order_event_op(ev, run), fill_op(_fill(1, 4, 1), run))
    store.put(position_op(pos), account_op(AccountRow(3, Decimal("99.5"), Decimal(100), 99)))
    store.put(risk_event_op(RiskEventRow(7, "REJECT", "MAX_POSITION", 3, "imb", "NKNUSDT"), run))
    store.put(strategy_state_op("imb", {"ewma": Decimal("0.125"), "n": 3}, 42))
    store.put(cursor_op("recorded:x", 1234, 42))
    base = RiskBaselineRow(3, 20_414, Decimal("1000.125"), Decimal("1012.5"), 43)
    store.put(risk_baseline_op(RiskBaselineRow(3, 20_413, Decimal(1), Decimal(2), 42)))
    store.put(risk_baseline_op(base))  # an upsert: the newer row replaces the older
    assert store.close(timeout=2.0)

    again = Store(tmp_path / "node.sqlite")
    (got,) = again.orders()
    assert got.request == order.request
    assert (got.status, got.filled_qty, got.leaves, got.notional_filled) == (
        OrderStatus.PARTIALLY_FILLED,
        4,
        6,
        3513 * 4,
    )
    assert again.open_orders() == [got]
    assert again.order_events() == [ev]
    assert again.fills() == [_fill(1, 4, 1)]
    assert again.positions() == [pos]
    assert again.accounts() == [AccountRow(3, Decimal("99.5"), Decimal(100), 99)]
    assert again.risk_events() == [RiskEventRow(7, "REJECT", "MAX_POSITION", 3, "imb", "NKNUSDT")]
    assert again.strategy_state("imb") == {"ewma": "0.125", "n": 3}
    assert again.strategy_state("other") is None
    assert again.cursor("recorded:x") == 1234
    assert again.cursor("nothing") == 0
    assert again.risk_baselines() == [base]
    assert again.max_client_order_ids() == {3: 1}
    (r,) = again.runs()
    assert r["run_id"] == run and r["ended_ns"] is not None


def test_database_is_in_wal_mode(tmp_path: Path) -> None:
    Store(tmp_path / "w.sqlite")
    conn = sqlite3.connect(tmp_path / "w.sqlite")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_open_orders_excludes_terminal_states(tmp_path: Path) -> None:
    store = Store(tmp_path / "o.sqlite")
    run = store.start()
    statuses = list(OrderStatus)
    store.put(*(order_op(_order(i + 1, status=s), run) for i, s in enumerate(statuses)))
    store.put(order_op(_order(1, status=OrderStatus.FILLED, filled=10), run))  # upsert
    assert store.close()
    open_ids = sorted(o.client_order_id for o in store.open_orders())
    expected = sorted(i + 1 for i, s in enumerate(statuses) if s.is_open and i + 1 != 1)
    assert open_ids == expected
    assert len(store.orders()) == len(statuses)


def test_close_commits_everything_queued_quickly(tmp_path: Path) -> None:
    store = Store(tmp_path / "many.sqlite")
    run = store.start()
    n = 20_000
    for i in range(n):
        store.put(fill_op(_fill(i, 1, i), run))
    t0 = time.monotonic()
    assert store.close(timeout=5.0)
    elapsed = time.monotonic() - t0
    assert len(store.fills()) == n
    assert store.failures == []
    # Not a timing test: a sanity bound far above the expected tens of milliseconds.
    assert elapsed < 5.0


def test_flush_waits_for_commit(tmp_path: Path) -> None:
    store = Store(tmp_path / "f.sqlite")
    run = store.start()
    store.put(fill_op(_fill(1, 2, 1), run))
    assert store.flush(timeout=5.0)
    assert len(store.fills()) == 1  # visible to another connection before close
    store.close()


def test_put_never_waits_on_a_locked_database(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite"
    store = Store(path)
    run = store.start()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        for i in range(1000):
            store.put(fill_op(_fill(i, 1, i), run))  # returns at once although writes block
        assert store.pending() > 0 or not store.flush(timeout=0.05)
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    assert store.close(timeout=10.0)
    assert len(store.fills()) == 1000


def test_a_refused_operation_is_kept_and_the_rest_committed(tmp_path: Path) -> None:
    store = Store(tmp_path / "dup.sqlite")
    run = store.start()
    store.put(fill_op(_fill(1, 1, 5), run))
    row = PositionRow(3, "X", 1, Fraction(0), Fraction(0), Decimal(0), 0, 0, 0)
    store.put(fill_op(_fill(2, 1, 5), run), position_op(row))
    store.put(fill_op(_fill(3, 1, 6), run))
    assert store.close()
    fills = store.fills()
    assert [f.client_order_id for f in fills] == [1, 3]
    assert len(store.failures) == 1 and "UNIQUE" in store.failures[0].error
    assert [p.symbol for p in store.positions()] == ["X"]  # the good half of the item survived


def test_large_batches_keep_order_and_upserts_and_refuse_like_single_rows(
    tmp_path: Path,
) -> None:
    # One batch of many items: runs of the same statement longer than a chunk (multi-row
    # INSERTs of 256, then 32, 8, 2, 1 rows ...), upserts of the same key inside one chunk
    # (the last one wins, as row-by-row execution gives), and a duplicate fill id deep in a
    # run: the batch fails, every item is retried alone, and only that fill is refused.
    store = Store(tmp_path / "big.sqlite", interval=3600.0)
    run = store.start()
    n = 555
    for i in range(1, n + 1):
        order = _order(i % 50 + 1, filled=i % 11)
        store.put(order_op(order, run), fill_op(_fill(i, 1, i), run))
    store.put(fill_op(_fill(n + 1, 1, 300), run))  # fill_id 300 exists: refused
    for i in range(n + 2, n + 40):
        store.put(fill_op(_fill(i, 1, i), run))
    assert store.close()
    fills = store.fills()
    assert [f.fill_id for f in fills] == list(range(1, n + 1)) + list(range(n + 2, n + 40))
    assert len(store.failures) == 1 and "UNIQUE" in store.failures[0].error
    orders = {o.request.client_order_id: o for o in store.orders()}
    assert len(orders) == 50
    for coid in range(1, 51):
        last = max(i for i in range(1, n + 1) if i % 50 + 1 == coid)
        assert orders[coid].filled_qty == last % 11


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "junk.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"junk\.sqlite"):
        Store(bad)


def test_schema_version_mismatch_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    Store(path)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="schema version 999"):
        Store(path)


def test_unwritable_location_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot open"):
        Store(blocker / "sub" / "db.sqlite")


_WRITER = textwrap.dedent(
    """
    import sys
    from decimal import Decimal
    from fractions import Fraction
    from tradecore.enums import Side
    from tradecore.execution.types import Fill, Liquidity, Order, OrderRequest, OrderStatus
    from tradecore.store import PositionRow, Store, fill_op, order_op, position_op

    store = Store(sys.argv[1])
    run = store.start()
    pos = 0
    fill_id = 0
    coid = 0
    print("ready", flush=True)
    while True:
        coid += 1
        req = OrderRequest(account=1, client_order_id=coid, symbol="S", side=Side.BUY, qty=3)
        order = Order(request=req, status=OrderStatus.ACKNOWLEDGED, qty=3, leaves=3)
        store.put(order_op(order, run))
        for _ in range(3):
            fill_id += 1
            pos += 1
            order.filled_qty += 1
            order.leaves -= 1
            order.status = OrderStatus.FILLED if order.leaves == 0 else OrderStatus.PARTIALLY_FILLED
            fee = Decimal("0.01")
            fill = Fill(1, "S", coid, Side.BUY, 100, 1, Liquidity.TAKER, fee, 0, fill_id)
            row = PositionRow(1, "S", pos, Fraction(100 * pos), Fraction(0), fee * pos, pos, pos, 0)
            store.put(fill_op(fill, run), order_op(order, run), position_op(row))
    """
)


def test_sigkill_leaves_fills_positions_and_orders_consistent(tmp_path: Path) -> None:
    path = tmp_path / "kill.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        # Let it write until at least a few hundred fills are committed, then kill it.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.05)
            try:
                conn = sqlite3.connect(path)
                n = conn.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
                conn.close()
            except sqlite3.OperationalError:
                continue
            if n >= 300:
                break
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    store = Store(path)
    fills = store.fills()
    assert len(fills) >= 300
    (pos,) = store.positions()
    assert pos.qty == sum(f.qty for f in fills)
    assert pos.fees == sum((f.fee for f in fills), Decimal(0))
    by_order: dict[int, int] = {}
    for f in fills:
        by_order[f.client_order_id] = by_order.get(f.client_order_id, 0) + f.qty
    for order in store.orders():
        assert order.filled_qty == by_order.get(order.client_order_id, 0)
        assert order.filled_qty + order.leaves == 3


# ---------------------------------------------------------------- state_json vs json.dumps


_JSON_LEAVES = (
    hst.none()
    | hst.booleans()
    | hst.integers()
    | hst.floats(allow_nan=True, allow_infinity=True)
    | hst.text()
    | hst.decimals(allow_nan=False)
    | hst.fractions()
)
_JSON_VALUES = hst.recursive(
    _JSON_LEAVES,
    lambda inner: (
        hst.lists(inner, max_size=4)
        | hst.tuples(inner, inner)
        | hst.dictionaries(hst.text(max_size=5), inner, max_size=4)
        | hst.dictionaries(hst.integers(), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(_JSON_VALUES)
def test_state_json_is_json_dumps_with_default_str_sorted(value: object) -> None:
    # The reused C encoder gives the text json.dumps(default=str, sort_keys=True) gives
    # (strategy_state_op stores it), for anything: nested, non-ASCII, NaN, Decimal, Fraction.
    assert state_json(value) == json.dumps(value, default=str, sort_keys=True)


def test_state_json_errors_and_op() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        state_json(loop)
    with pytest.raises(TypeError):
        state_json({1: 1, "a": 2})  # sort_keys over mixed key types, as json.dumps
    with pytest.raises(TypeError):
        json.dumps({1: 1, "a": 2}, default=str, sort_keys=True)
    # A failed call leaves nothing behind: the next one encodes the same list fine.
    shared = [1, 2]
    assert state_json({"a": shared, "b": shared}) == '{"a": [1, 2], "b": [1, 2]}'
    op = strategy_state_op("s", {"z": Decimal("1.50"), "a": [1, "é"]}, 7)
    assert op[1] == ("s", '{"a": [1, "\\u00e9"], "z": "1.50"}', 7)
