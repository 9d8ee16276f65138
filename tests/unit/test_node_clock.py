"""Clocks and timers of the node, and the node's fast equity against the portfolio's own."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tradecore.enums import Side
from tradecore.execution import Portfolio
from tradecore.execution.types import Fill, Liquidity
from tradecore.instrument import Instrument
from tradecore.node.clock import EventClock, Timer, Timers, WallClock


def test_event_clock_never_goes_back() -> None:
    c = EventClock()
    c.advance(100)
    c.advance(50)
    assert c.now_ns() == 100
    c.advance(200)
    assert c.now_ns() == 200


def test_wall_clock_is_epoch_nanoseconds() -> None:
    before = time.time_ns()
    assert before <= WallClock().now_ns() <= time.time_ns()


def _fire(timers: Timers, now: int) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []

    def run(timer: Timer, deadline: int) -> None:
        out.append((timer.owner, timer.name, deadline))
        timer.callback(deadline)

    timers.fire(now, run)
    return out


def test_timers_fire_in_deadline_order_and_repeat() -> None:
    t = Timers()
    seen: list[int] = []
    t.set("s", "fast", 10, seen.append, 0)
    t.set("s", "slow", 25, seen.append, 0)
    t.set("n", "once", 15, seen.append, 0, repeat=False)
    assert t.next_due() == 10
    # Each due timer fires once, in deadline order; a repeating one is rearmed past "now".
    assert _fire(t, 30) == [("s", "fast", 10), ("n", "once", 15), ("s", "slow", 25)]
    assert seen == [10, 15, 25]
    assert t.next_due() == 40
    assert _fire(t, 50) == [("s", "fast", 40), ("s", "slow", 50)]


def test_missed_intervals_fire_once() -> None:
    t = Timers()
    seen: list[int] = []
    t.set("s", "tick", 10, seen.append, 0)
    _fire(t, 1_000)
    assert seen == [10]
    assert t.next_due() == 1_010
    _fire(t, 1_010)
    assert seen == [10, 1_010]


def test_cancel_and_reset() -> None:
    t = Timers()
    seen: list[int] = []
    t.set("s", "a", 10, seen.append, 0)
    assert t.cancel("s", "a")
    assert not t.cancel("s", "a")
    assert t.next_due() is None
    t.set("s", "b", 10, seen.append, 0)
    t.set("s", "b", 30, seen.append, 0)  # replaces the first
    _fire(t, 15)
    assert seen == []
    _fire(t, 30)
    assert seen == [30]
    t.set("x", "c", 5, seen.append, 0)
    t.set("x", "d", 5, seen.append, 0)
    assert t.cancel_owner("x") == 2
    assert len(t) == 1


def test_shift_moves_every_deadline() -> None:
    t = Timers()
    seen: list[int] = []
    t.set("s", "a", 10, seen.append, 0)
    t.set("s", "b", 30, seen.append, 0, repeat=False)
    t.cancel("s", "b")
    t.shift(1_000)
    assert t.next_due() == 1_010
    _fire(t, 1_000)
    assert seen == []
    _fire(t, 1_030)
    assert seen == [1_010]


def test_one_shot_timer_is_forgotten() -> None:
    t = Timers()
    seen: list[int] = []
    t.set("s", "once", 10, seen.append, 0, repeat=False)
    _fire(t, 100)
    _fire(t, 1_000)
    assert seen == [10] and len(t) == 0


def test_bad_intervals() -> None:
    t = Timers()
    with pytest.raises(ValueError, match="> 0"):
        t.set("s", "x", 0, lambda _d: None, 0)
    with pytest.raises(TypeError, match="int"):
        t.set("s", "x", 1.5, lambda _d: None, 0)  # type: ignore[arg-type]


INSTS = [Instrument("AAAUSDT", "0.0001", "1"), Instrument("BBBBTC", "0.00000001", "0.001")]


@settings(max_examples=60, deadline=None)
@given(
    fills=st.lists(
        st.tuples(st.integers(0, 1), st.booleans(), st.integers(1, 500), st.integers(1, 100_000)),
        max_size=25,
    ),
    marks=st.tuples(st.integers(1, 100_000), st.integers(0, 7)),
)
def test_fast_equity_equals_portfolio_equity(
    fills: list[tuple[int, bool, int, int]], marks: tuple[int, int]
) -> None:
    from tradecore.node.node import account_equity, money_units

    pf = Portfolio(INSTS, Decimal("1000"))
    for i, (which, buy, qty, price) in enumerate(fills):
        inst = INSTS[which]
        side = Side.BUY if buy else Side.SELL
        fee = Decimal("0.001")
        pf.on_fill(Fill(1, inst.symbol, i, side, price, qty, Liquidity.TAKER, fee, 0, i + 1))
    bid, spread = marks
    for inst in INSTS:
        pf.mark(inst.symbol, bid, bid + spread)
    units = money_units({i.symbol: i for i in INSTS})
    assert account_equity(pf, 1, units) == pf.equity(1)


def test_fast_equity_falls_back_for_an_unmarked_position() -> None:
    from tradecore.node.node import account_equity, money_units

    pf = Portfolio(INSTS, Decimal("5"))
    fill = Fill(1, "AAAUSDT", 1, Side.BUY, 300, 7, Liquidity.MAKER, Decimal(0), 0, 1)
    pf.on_fill(fill)
    units = money_units({i.symbol: i for i in INSTS})
    assert account_equity(pf, 1, units) == pf.equity(1)
