"""L3 backtests (LOBSTER): our order ahead of and behind historical orders at the same price,
worked by hand, through the backtester's code path (engine, L3 broker, combined book)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from tradecore.backtest.engine import BacktestEngine, EngineSettings, StrategySpec
from tradecore.backtest.l3 import L3Broker, LobsterFeed
from tradecore.enums import Side
from tradecore.execution import PaperBrokerConfig
from tradecore.execution.types import Fill
from tradecore.instrument import Instrument
from tradecore.marketdata.events import BookUpdate
from tradecore.marketdata.lobster import BookRow, LobsterFormatError, Message
from tradecore.strategy import Strategy

INST = Instrument("TST", "0.0001", "1")
ASK = ((10100, 100),)


def msg(line: int, t: int, kind: int, oid: int, size: int, price: int, d: int) -> Message:
    return Message(line, t, kind, oid, size, price, d)


def row(line: int, bids: tuple[tuple[int, int], ...], asks: tuple[tuple[int, int], ...] = ASK):
    return BookRow(line, 1, asks, bids)


class JoinBid(Strategy):
    """Buys 10 @ 10000 (GTC) on its ``on``-th book update; records fills."""

    def __init__(self, on: int) -> None:
        super().__init__("join", ["TST"])
        self.on = on
        self.n = 0
        self.fills: list[Fill] = []
        self.order: Any = None

    def on_book(self, event: BookUpdate) -> None:
        self.n += 1
        if self.n == self.on:
            self.order = self.ctx.submit_limit("TST", Side.BUY, 10, 10000)

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)


def run(messages: list[Message], rows: list[BookRow], strategy: Strategy) -> tuple[Any, Any]:
    feed = LobsterFeed(None, "TST", messages=messages, rows=rows, capacity=1000)

    def factory(eng: BacktestEngine) -> Any:
        b = L3Broker(feed.replay, INST, eng.clock, PaperBrokerConfig(maker_fee_bps=Decimal(1)))
        feed.broker = b
        return b

    spec = StrategySpec(strategy.name, account=1, initial_cash=Decimal(10**6), instance=strategy)
    eng = BacktestEngine([INST], [feed], [spec], EngineSettings(), broker_factory=factory)
    eng.book_lookup = lambda s: feed.view
    return eng.run(), feed.replay


# Row 0 seeds 100 synthetic lots at the bid (message 0 is the seed); message 1 adds order 7
# (50 lots) at the same price; message 2 executes 100 against the seeded front of the queue.
HEAD = [
    msg(1, 1, 1, 1, 100, 10000, 1),
    msg(2, 2, 1, 7, 50, 10000, 1),
    msg(3, 3, 4, 1, 100, 10000, 1),
    msg(4, 4, 4, 7, 30, 10000, 1),
]
HEAD_ROWS = [row(1, ((10000, 100),)), row(2, ((10000, 150),)), row(3, ((10000, 50),))]


def test_our_order_ahead_of_a_historical_order_fills_first() -> None:
    # Queue after message 1: seed 100, OURS 10, order 7 50. The execution of order 7 for 30
    # (an aggressive sell of 30) reaches us first: we fill 10, order 7 only 20. The file says
    # order 7 has 20 left... it had 50 - 30 = 20 in history; we left it 30: drift 10 lots at
    # row 3, repaired from the back of the queue.
    s = JoinBid(on=1)
    res, rp = run(HEAD, [*HEAD_ROWS, row(4, ((10000, 20),))], s)
    assert [(f.ts_ns, f.qty, f.price, f.liquidity.value) for f in s.fills] == [
        (4, 10, 10000, "MAKER")
    ]
    # maker fee 1 bp: 10000 * 10 * 0.0001 * 1 * 1e-4 = 0.001
    assert s.fills[0].fee == Decimal("0.001")
    assert rp.stats.drift_rows == 1 and rp.stats.drift_lots == 10
    assert rp.stats.max_drift_row == 3
    assert res.final["join"]["position"] == 10
    assert rp.book.orders("BUY", 10000) == [(7, 1, 10000, 20)]


def test_our_order_behind_historical_orders_waits_for_them() -> None:
    # Queue after message 1: seed 100, order 7 50, then OURS 10 (sent on the second book).
    # Executions of the seed (100) and of order 7 (30, then 20) never reach us. Then a
    # historical sell of 4 at our price trades with us (in history it rested: the file shows
    # an ask 10000 x 4, which is our impact: drift 4, not repaired since it would trade with us).
    s = JoinBid(on=2)
    messages = [*HEAD, msg(5, 5, 4, 7, 20, 10000, 1), msg(6, 6, 1, 8, 4, 10000, -1)]
    rows = [
        *HEAD_ROWS,
        row(4, ((10000, 20),)),
        row(5, ()),
        row(6, (), ((10000, 4),)),
    ]
    res, rp = run(messages, rows, s)
    assert [(f.ts_ns, f.qty, f.liquidity.value) for f in s.fills] == [(6, 4, "MAKER")]
    assert rp.stats.drift_rows == 1 and rp.stats.drift_lots == 4
    assert rp.stats.drift_unrepaired == 1
    assert s.order.leaves == 6 and s.order.is_open
    assert res.final["join"]["position"] == 4


def test_no_orders_no_drift_on_the_crafted_day() -> None:
    class Idle(Strategy):
        def __init__(self) -> None:
            super().__init__("idle", ["TST"])

    messages = [*HEAD, msg(5, 5, 4, 7, 20, 10000, 1)]
    rows = [*HEAD_ROWS, row(4, ((10000, 20),)), row(5, ())]
    res, rp = run(messages, rows, Idle())
    assert rp.stats.rows_checked == 5 and rp.mismatches == 0 and rp.stats.drift_rows == 0
    assert res.fills == []


def test_rows_and_messages_of_different_lengths_are_an_error() -> None:
    with pytest.raises(LobsterFormatError, match="has 2 rows, the message file has more"):
        run(HEAD, HEAD_ROWS[:2], JoinBid(on=99))
