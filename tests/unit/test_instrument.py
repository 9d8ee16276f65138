"""``tradecore.Instrument``: exact Decimal <-> ticks/lots conversion at the edges."""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tradecore import Instrument, OrderBook
from tradecore.errors import OffGridError


def test_defaults_and_properties() -> None:
    inst = Instrument("BTCUSDT")
    assert inst.symbol == "BTCUSDT"
    assert inst.tick_size == Decimal("0.01")
    assert inst.lot_size == Decimal("0.001")
    assert repr(inst) == "Instrument('BTCUSDT', tick_size='0.01', lot_size='0.001')"
    assert inst == Instrument("BTCUSDT", Decimal("0.010"), "0.001")
    assert hash(inst) == hash(Instrument("BTCUSDT", "0.01", "0.001"))
    assert inst != Instrument("ETHUSDT")


@pytest.mark.parametrize(
    ("price", "ticks"),
    [
        (Decimal("150.05"), 15005),
        ("150.05", 15005),
        ("150.050000", 15005),
        (150, 15000),
        ("0", 0),
        ("-0.03", -3),
        ("1e2", 10000),
    ],
)
def test_price_to_ticks(price: Any, ticks: int) -> None:
    assert Instrument("X").price_to_ticks(price) == ticks


def test_round_trips_are_exact() -> None:
    inst = Instrument("X", tick_size="0.05", lot_size="0.001")
    assert inst.price_to_ticks("1.15") == 23
    assert inst.ticks_to_price(23) == Decimal("1.15")
    assert str(inst.ticks_to_price(23)) == "1.15"
    assert inst.qty_to_lots("2.5") == 2500
    assert inst.lots_to_qty(2500) == Decimal("2.5")
    assert inst.ticks_to_price(-2) == Decimal("-0.10")


@given(
    ticks=st.integers(-(2**63), 2**63 - 1),
    tick=st.sampled_from(["0.01", "0.05", "1", "25", "0.00000001"]),
)
def test_ticks_round_trip_whatever_the_decimal_context(ticks: int, tick: str) -> None:
    inst = Instrument("X", tick_size=tick)
    with decimal.localcontext() as ctx:
        ctx.prec = 3  # a tiny precision must not round anything
        price = inst.ticks_to_price(ticks)
        assert inst.price_to_ticks(price) == ticks
    assert price == Decimal(ticks) * Decimal(tick)


@pytest.mark.parametrize(
    ("method", "value", "message"),
    [
        (
            "price_to_ticks",
            "150.055",
            "price 150.055 is off the grid: it must be a whole multiple of 0.01",
        ),
        ("price_to_ticks", Decimal("0.001"), "price 0.001 is off the grid"),
        (
            "qty_to_lots",
            "1.0005",
            "qty 1.0005 is off the grid: it must be a whole multiple of 0.001",
        ),
    ],
)
def test_off_grid_values_are_rejected(method: str, value: Any, message: str) -> None:
    inst = Instrument("X")
    with pytest.raises(OffGridError, match=message) as info:
        getattr(inst, method)(value)
    assert isinstance(info.value, ValueError)
    assert info.value.value == Decimal(value)
    assert info.value.grid in (Decimal("0.01"), Decimal("0.001"))


@pytest.mark.parametrize("method", ["price_to_ticks", "qty_to_lots"])
def test_floats_are_rejected(method: str) -> None:
    with pytest.raises(TypeError, match=r"float 0\.1: binary floats are not accepted"):
        getattr(Instrument("X"), method)(0.1)


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (True, TypeError, "must be a Decimal, str or int, got bool"),
        (None, TypeError, "must be a Decimal, str or int, got NoneType"),
        ("abc", ValueError, "'abc' is not a decimal number"),
        ("NaN", ValueError, "must be a finite number"),
        (Decimal("Infinity"), ValueError, "must be a finite number"),
    ],
)
def test_bad_price_values(value: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        Instrument("X").price_to_ticks(value)


def test_ranges() -> None:
    inst = Instrument("X", tick_size="1", lot_size="1")
    assert inst.price_to_ticks(2**63 - 1) == 2**63 - 1
    with pytest.raises(ValueError, match="outside the i64 range"):
        inst.price_to_ticks(2**63)
    assert inst.qty_to_lots(2**64 - 1) == 2**64 - 1
    with pytest.raises(ValueError, match="more than the book holds"):
        inst.qty_to_lots(2**64)
    with pytest.raises(ValueError, match="qty must not be negative"):
        inst.qty_to_lots(-1)


@pytest.mark.parametrize(("method", "arg"), [("ticks_to_price", 1.0), ("lots_to_qty", True)])
def test_int_arguments(method: str, arg: Any) -> None:
    with pytest.raises(TypeError, match="must be an int"):
        getattr(Instrument("X"), method)(arg)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"tick_size": "0"}, ValueError, "tick_size must be positive, got 0"),
        ({"tick_size": "-0.01"}, ValueError, "tick_size must be positive"),
        ({"lot_size": Decimal(0)}, ValueError, "lot_size must be positive"),
        ({"tick_size": 0.01}, TypeError, "tick_size must be a Decimal, str or int, got float"),
        ({"lot_size": "x"}, ValueError, "lot_size 'x' is not a decimal number"),
        ({"symbol": ""}, ValueError, "symbol must not be empty"),
        ({"symbol": 5}, TypeError, "symbol must be a str, got int"),
    ],
)
def test_constructor_validation(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    args: dict[str, Any] = {"symbol": "X"}
    args.update(kwargs)
    with pytest.raises(error, match=message):
        Instrument(**args)


def test_drives_a_book_end_to_end() -> None:
    inst = Instrument("AAPL", tick_size="0.01", lot_size="1")
    book = OrderBook(capacity=10)
    book.submit(1, 1, "SELL", inst.price_to_ticks("150.05"), inst.qty_to_lots("100"))
    events = book.submit(2, 2, "BUY", inst.price_to_ticks("150.10"), inst.qty_to_lots(40))
    fill = events[-1]
    assert inst.ticks_to_price(fill.price) == Decimal("150.05")
    assert inst.lots_to_qty(fill.qty) == Decimal(40)
