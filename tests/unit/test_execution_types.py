"""The shared execution types keep the dataclass behaviour after their fast ``__init__``."""

from __future__ import annotations

import dataclasses
import inspect
from decimal import Decimal

import pytest
from tradecore.enums import OrderType, Side, TimeInForce
from tradecore.execution import Fill, Liquidity, OrderEvent, OrderEventKind, OrderRequest


@pytest.mark.parametrize("cls", [OrderRequest, OrderEvent, Fill])
def test_signature_matches_the_fields(cls: type) -> None:
    params = list(inspect.signature(cls).parameters.values())
    fields = dataclasses.fields(cls)
    assert [p.name for p in params] == [f.name for f in fields]
    for p, f in zip(params, fields, strict=True):
        expected = inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default
        assert p.default == expected


def test_values_are_frozen_hashable_and_comparable() -> None:
    a = OrderRequest(1, 2, "X", Side.BUY, 3, tif=TimeInForce.IOC)
    b = OrderRequest(
        account=1,
        client_order_id=2,
        symbol="X",
        side=Side.BUY,
        qty=3,
        price=0,
        order_type=OrderType.LIMIT,
        tif=TimeInForce.IOC,
    )
    assert a == b and hash(a) == hash(b)
    assert dataclasses.replace(a, qty=4).qty == 4
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.qty = 5  # type: ignore[misc]
    with pytest.raises(TypeError, match="missing"):
        OrderRequest(1, 2)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword"):
        OrderRequest(1, 2, "X", Side.BUY, 3, colour="red")  # type: ignore[call-arg]
    e = OrderEvent(
        OrderEventKind.FILL,
        1,
        2,
        "X",
        Side.SELL,
        10,
        1,
        0,
        5,
        9,
        liquidity=Liquidity.MAKER,
        fee=Decimal("0.1"),
    )
    assert (e.reason, e.venue_order_id, e.fee) == ("", 0, Decimal("0.1"))
    assert "OrderEvent(kind=<OrderEventKind.FILL" in repr(e)
    f = Fill(1, "X", 2, Side.BUY, 10, 1, Liquidity.TAKER, Decimal(0), 5, 9)
    assert f.strategy == ""
    assert f == dataclasses.replace(f)


def test_values_pickle_and_copy() -> None:
    import copy
    import pickle

    e = OrderEvent(OrderEventKind.FILL, 1, 2, "X", Side.BUY, 1, 1, 0, 5, 9, fee=Decimal("0.1"))
    assert pickle.loads(pickle.dumps(e)) == e
    assert copy.deepcopy(e) == e
    r = OrderRequest(1, 2, "X", Side.SELL, 3, 4)
    assert pickle.loads(pickle.dumps(r)) == r


@pytest.mark.parametrize("cls", [OrderRequest, OrderEvent, Fill])
def test_each_argument_lands_in_its_own_field(cls: type) -> None:
    fields = dataclasses.fields(cls)
    values = {f.name: object() for f in fields}  # distinct objects: a swap would show
    by_position = cls(*values.values())
    by_keyword = cls(**values)
    for name, v in values.items():
        assert getattr(by_position, name) is v
        assert getattr(by_keyword, name) is v
    assert type(by_position) is cls and not hasattr(by_position, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(by_position, fields[0].name, 1)


def test_a_subclass_instance_is_filled_and_keeps_its_class() -> None:
    class Tagged(OrderRequest):
        __slots__ = ()

    t = Tagged(1, 2, "X", Side.BUY, 3, 4)
    assert type(t) is Tagged and (t.account, t.qty, t.price, t.tif) == (1, 3, 4, TimeInForce.GTC)
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.qty = 5  # type: ignore[misc]


def test_store_and_portfolio_rows_keep_the_dataclass_behaviour() -> None:
    from fractions import Fraction

    from tradecore.execution.portfolio import EquitySample, PositionRecord
    from tradecore.store import AccountRow, PositionRow, RiskEventRow

    row = PositionRow(1, "X", -2, Fraction(-7, 3), Fraction(1), Decimal("0.5"), 4, 2, 99)
    assert row == dataclasses.replace(row) and row.cost_ticklots == Fraction(-7, 3)
    assert AccountRow(1, Decimal(2), Decimal(3), 4).initial_cash == Decimal(3)
    assert RiskEventRow(5, "REJECT", "MAX_POSITION").detail == ""
    rec = PositionRecord(1, "X", 1, Fraction(5), Fraction(0), Decimal(0))
    assert (rec.volume, rec.fills) == (0, 0)
    sample = EquitySample(1, 2, Decimal(3), Decimal(4), Decimal(5), Decimal(6), Decimal(7))
    assert sample.fees == Decimal(7)
    for value in (row, rec, sample):
        with pytest.raises(dataclasses.FrozenInstanceError):
            value.account = 9  # type: ignore[misc]
