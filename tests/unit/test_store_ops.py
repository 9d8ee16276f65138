"""The store's row builders and writer grouping against their previous forms (the oracle).

Session 5 made the builders cheaper (enum text from dicts, ``Fraction`` text from its slots,
``position_values_op`` / ``account_values_op`` without row objects) and the writer's grouping
flatter. The ops must stay the very tuples the previous builders made (the reference builders
below are those, verbatim but for their names), and a database written through the grouped
multi-row path must hold exactly the rows that executing each op alone in put order gives.
"""

from __future__ import annotations

import random
import sqlite3
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
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
    Store,
    account_op,
    account_values_op,
    fill_op,
    order_event_op,
    order_op,
    position_op,
    position_values_op,
)
from tradecore.store import sqlite as store_sqlite

# ------------------------------------------------------------------ the previous builders


def ref_order_op(order: Order, run_id: int) -> Any:
    r = order.request
    return (
        0,
        (
            r.account,
            r.client_order_id,
            r.symbol,
            r.side._value_,
            r.order_type._value_,
            r.tif._value_,
            1 if r.post_only else 0,
            r.strategy,
            r.tag,
            r.price,
            r.qty,
            r.ts_ns,
            order.status._value_,
            order.price,
            order.qty,
            order.filled_qty,
            order.leaves,
            order.notional_filled,
            order.venue_order_id,
            order.reason,
            order.created_ns,
            order.updated_ns,
            run_id,
        ),
    )


def ref_order_event_op(ev: OrderEvent, run_id: int) -> Any:
    liquidity = ev.liquidity
    return (
        1,
        (
            run_id,
            ev.kind._value_,
            ev.account,
            ev.client_order_id,
            ev.symbol,
            ev.side._value_,
            ev.price,
            ev.qty,
            ev.leaves,
            ev.ts_ns,
            ev.event_id,
            ev.reason,
            None if liquidity is None else liquidity._value_,
            str(ev.fee),
            ev.venue_order_id,
        ),
    )


def ref_fill_op(fill: Fill, run_id: int) -> Any:
    return (
        2,
        (
            run_id,
            fill.account,
            fill.symbol,
            fill.client_order_id,
            fill.side._value_,
            fill.price,
            fill.qty,
            fill.liquidity._value_,
            str(fill.fee),
            fill.ts_ns,
            fill.fill_id,
            fill.strategy,
        ),
    )


def ref_position_op(pos: PositionRow) -> Any:
    return (
        3,
        (
            pos.account,
            pos.symbol,
            pos.qty,
            str(pos.cost_ticklots),
            str(pos.realized_ticklots),
            str(pos.fees),
            pos.volume,
            pos.fills,
            pos.ts_ns,
        ),
    )


def ref_account_op(row: AccountRow) -> Any:
    return (7, (row.account, str(row.cash), str(row.initial_cash), row.ts_ns))


# ------------------------------------------------------------------ random inputs


def _fee(rng: random.Random) -> Decimal:
    return rng.choice(
        [Decimal(0), Decimal("0E-8"), Decimal("-0"), Decimal(rng.randint(-99, 10**6)) / 10**8]
    )


def _ratio(rng: random.Random) -> Fraction:
    den = rng.choice([1, 1, 2, 3, 10**12, 999_983])
    return Fraction(rng.randint(-(10**15), 10**15), den)


def _order(rng: random.Random, i: int) -> Order:
    req = OrderRequest(
        account=rng.randint(1, 4),
        client_order_id=i,
        symbol=rng.choice(["NKNUSDT", "BTCUSDT"]),
        side=rng.choice(list(Side)),
        qty=rng.randint(1, 100),
        price=rng.randint(0, 10**6),
        order_type=rng.choice(list(OrderType)),
        tif=rng.choice(list(TimeInForce)),
        post_only=rng.random() < 0.3,
        ts_ns=rng.randint(0, 2**62),
        strategy=rng.choice(["", "imb"]),
        tag=rng.choice(["", "t"]),
    )
    filled = rng.randint(0, req.qty)
    return Order(
        request=req,
        status=rng.choice(list(OrderStatus)),
        price=req.price,
        qty=req.qty,
        filled_qty=filled,
        leaves=req.qty - filled,
        notional_filled=filled * req.price,
        venue_order_id=rng.randint(0, 10**9),
        reason=rng.choice(["", "IOC_EXPIRED"]),
        created_ns=i,
        updated_ns=i + 1,
    )


def _event(rng: random.Random, i: int) -> OrderEvent:
    return OrderEvent(
        kind=rng.choice(list(OrderEventKind)),
        account=rng.randint(1, 4),
        client_order_id=i,
        symbol="NKNUSDT",
        side=rng.choice(list(Side)),
        price=rng.randint(0, 10**6),
        qty=rng.randint(0, 100),
        leaves=rng.randint(0, 100),
        ts_ns=i,
        event_id=i,
        reason=rng.choice(["", "POST_ONLY_WOULD_TAKE"]),
        liquidity=rng.choice([None, *Liquidity]),
        fee=_fee(rng),
        venue_order_id=rng.randint(0, 99),
    )


def _fill(rng: random.Random, i: int) -> Fill:
    return Fill(
        account=rng.randint(1, 4),
        symbol="NKNUSDT",
        client_order_id=i,
        side=rng.choice(list(Side)),
        price=rng.randint(1, 10**6),
        qty=rng.randint(1, 50),
        liquidity=rng.choice(list(Liquidity)),
        fee=_fee(rng),
        ts_ns=i,
        fill_id=i,
        strategy="imb",
    )


def _position(rng: random.Random, i: int) -> PositionRow:
    return PositionRow(
        rng.randint(1, 4),
        rng.choice(["NKNUSDT", "BTCUSDT"]),
        rng.randint(-50, 50),
        _ratio(rng),
        _ratio(rng),
        _fee(rng),
        rng.randint(0, 10**6),
        rng.randint(0, 10**4),
        i,
    )


def _account(rng: random.Random, i: int) -> AccountRow:
    return AccountRow(
        rng.randint(1, 4), Decimal(rng.randint(-(10**12), 10**12)) / 10**6, _fee(rng), i
    )


def _random_ops(rng: random.Random, n: int, run: int) -> list[Any]:
    ops = []
    for i in range(1, n + 1):
        kind = rng.randrange(5)
        if kind == 0:
            ops.append(order_op(_order(rng, i), run))
        elif kind == 1:
            ops.append(order_event_op(_event(rng, i), run))
        elif kind == 2:
            ops.append(fill_op(_fill(rng, i), run))
        elif kind == 3:
            ops.append(position_op(_position(rng, i)))
        else:
            ops.append(account_op(_account(rng, i)))
    return ops


# ------------------------------------------------------------------ tests


@pytest.mark.parametrize("seed", range(5))
def test_builders_make_the_previous_tuples(seed: int) -> None:
    rng = random.Random(seed)
    for i in range(400):
        order = _order(rng, i)
        assert order_op(order, 9) == ref_order_op(order, 9)
        ev = _event(rng, i)
        assert order_event_op(ev, 9) == ref_order_event_op(ev, 9)
        fill = _fill(rng, i)
        assert fill_op(fill, 9) == ref_fill_op(fill, 9)
        pos = _position(rng, i)
        op = position_op(pos)
        assert op == ref_position_op(pos)
        values = (
            pos.qty,
            pos.cost_ticklots.numerator,
            pos.cost_ticklots.denominator,
            pos.realized_ticklots.numerator,
            pos.realized_ticklots.denominator,
            pos.fees,
            pos.volume,
            pos.fills,
        )
        assert position_values_op(pos.account, pos.symbol, values, pos.ts_ns) == op
        acc = _account(rng, i)
        assert account_op(acc) == ref_account_op(acc)
        assert account_values_op(acc.account, acc.cash, acc.initial_cash, acc.ts_ns) == (
            ref_account_op(acc)
        )
        # Every text is a plain str (never an enum member): the rows SQLite sees are unchanged.
        for built in (order_op(order, 9), order_event_op(ev, 9), fill_op(fill, 9), op):
            assert all(type(v) in (int, str, type(None)) for v in built[1])


def test_position_op_of_whole_values_given_as_int() -> None:
    # A PositionRow built with ints (its fields say Fraction; str() of either is the same).
    row = PositionRow(1, "X", 2, 7, -3, Decimal("0.1"), 4, 5, 6)  # type: ignore[arg-type]
    assert position_op(row) == ref_position_op(row)


def _dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        out = {}
        for table in ("orders", "order_events", "fills", "positions", "accounts"):
            out[table] = conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
        return out
    finally:
        conn.close()


@pytest.mark.parametrize("seed", range(3))
def test_grouped_writer_stores_what_one_op_at_a_time_stores(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    store = Store(tmp_path / "grouped.sqlite", interval=3600.0)
    run = store.start()
    ops = _random_ops(rng, 1_500, run)
    i = 0
    while i < len(ops):  # items of 1..8 ops
        k = rng.randint(1, 8)
        store.put(*ops[i : i + k])
        i += k
    assert store.close()
    assert store.failures == []
    # The reference: the same schema, every op executed alone, in put order.
    ref = Store(tmp_path / "single.sqlite", interval=3600.0)
    ref_run = ref.start()
    assert ref_run == run
    conn = sqlite3.connect(ref.path)
    for code, row in ops:
        conn.execute(store_sqlite._STATEMENTS[code], row)
    conn.commit()
    conn.close()
    assert ref.close()
    got, want = _dump(store.path), _dump(ref.path)
    assert got == want
    assert sum(len(v) for v in got.values()) > 600  # upserts collapse the rest
