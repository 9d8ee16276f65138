"""Paper broker: hand-worked scenarios for walking the book, IOC/FOK, queue position, latency,
fees, modify and mass cancel. Every expected number below is worked out in the comments."""

from __future__ import annotations

import sys
from collections.abc import Callable
from decimal import Decimal

import pytest
from tradecore import L2Book
from tradecore.enums import OrderType, Side, TimeInForce
from tradecore.errors import UsageError
from tradecore.execution import (
    CancelModel,
    DictL2Book,
    LatencyModel,
    Liquidity,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderRequest,
    OrderStatus,
    PaperBroker,
    PaperBrokerConfig,
)
from tradecore.instrument import Instrument
from tradecore.marketdata.events import BookUpdate, TradeTick

SYM = "BTCUSDT"
INST = Instrument(SYM, tick_size="0.01", lot_size="0.001")
BookLike = L2Book | DictL2Book
K = OrderEventKind
BUY, SELL = Side.BUY, Side.SELL


# Every scenario runs on the compiled market-data book and on the pure-Python one.
BOOKS: dict[str, Callable[[], BookLike]] = {"rust": L2Book, "dict": DictL2Book}
BOOK: Callable[[], BookLike] = DictL2Book


@pytest.fixture(autouse=True, params=sorted(BOOKS))
def book_impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(sys.modules[__name__], "BOOK", BOOKS[request.param])
    return str(request.param)


def make_book(bids: dict[int, int] | None = None, asks: dict[int, int] | None = None) -> BookLike:
    book = BOOK()
    for p, q in (bids or {}).items():
        book.set(BUY, p, q)
    for p, q in (asks or {}).items():
        book.set(SELL, p, q)
    return book


class Clock:
    def __init__(self) -> None:
        self.t = 0

    def __call__(self) -> int:
        return self.t


class Harness:
    """A broker on one symbol with a DictL2Book, a settable clock and the reports it sent."""

    def __init__(
        self,
        bids: dict[int, int] | None = None,
        asks: dict[int, int] | None = None,
        **cfg: object,
    ) -> None:
        self.clock = Clock()
        self.events: list[OrderEvent] = []
        self.book = make_book(bids, asks)
        self.broker = PaperBroker(
            [INST], self.clock, PaperBrokerConfig(**cfg), sink=self.events.append
        )
        self.broker.attach_book(SYM, self.book)

    def order(
        self,
        coid: int,
        side: Side,
        qty: int,
        price: int = 0,
        *,
        account: int = 1,
        order_type: OrderType = OrderType.LIMIT,
        tif: TimeInForce = TimeInForce.GTC,
        post_only: bool = False,
    ) -> list[OrderEvent]:
        n = len(self.events)
        self.broker.submit(
            OrderRequest(
                account=account,
                client_order_id=coid,
                symbol=SYM,
                side=side,
                qty=qty,
                price=price,
                order_type=order_type,
                tif=tif,
                post_only=post_only,
            )
        )
        return self.events[n:]

    def book_to(
        self,
        t: int,
        bids: dict[int, int] | None = None,
        asks: dict[int, int] | None = None,
    ) -> list[OrderEvent]:
        """Driver protocol: advance to t, apply the levels, then tell the broker."""
        n = len(self.events)
        self.clock.t = t
        self.broker.advance_to(t)
        for p, q in (bids or {}).items():
            self.book.set(BUY, p, q)
        for p, q in (asks or {}).items():
            self.book.set(SELL, p, q)
        self.broker.on_book(BookUpdate(SYM, t, t, 0, self.book))
        return self.events[n:]

    def trade(self, t: int, price: int, qty: int, aggressor: Side) -> list[OrderEvent]:
        n = len(self.events)
        self.clock.t = t
        self.broker.on_trade(TradeTick(SYM, t, t, price, qty, aggressor, 0))
        return self.events[n:]


def summary(events: list[OrderEvent]) -> list[tuple[object, ...]]:
    """(kind, coid, price, qty, leaves, reason/liquidity) per report."""
    out: list[tuple[object, ...]] = []
    for e in events:
        extra: object = e.liquidity if e.kind is K.FILL else e.reason
        out.append((e.kind, e.client_order_id, e.price, e.qty, e.leaves, extra))
    return out


# ----------------------------------------------------------------------------- walking the book


def test_limit_walks_levels_at_each_price_and_rests_remainder() -> None:
    h = Harness(bids={99: 4}, asks={101: 5, 102: 3, 103: 10})
    ev = h.order(1, BUY, 10, 102)
    # 5 @ 101, 3 @ 102 (each level's own price), 2 left rest at 102 (limit stops at 103).
    assert summary(ev) == [
        (K.ACCEPTED, 1, 102, 10, 10, ""),
        (K.FILL, 1, 101, 5, 5, Liquidity.TAKER),
        (K.FILL, 1, 102, 3, 2, Liquidity.TAKER),
    ]
    # Nobody bids at 102 in the market: the rest is first in its queue.
    assert h.broker.queue_position(1, 1) == (0, 2)
    # The lots we took are gone for the next order: 101 and 102 are used up, so a market
    # buy of 4 gets them at 103.
    ev = h.order(2, BUY, 4, order_type=OrderType.MARKET)
    assert summary(ev)[1:] == [(K.FILL, 2, 103, 4, 0, Liquidity.TAKER)]


def test_taken_liquidity_is_not_resold_to_our_resting_remainder() -> None:
    h = Harness(asks={101: 5})
    h.order(1, BUY, 8, 101)  # takes 5, rests 3 at 101
    # The next depth message still shows the 5 lots at 101 (the market never saw our paper
    # trade). Our resting bid at 101 must not be filled by them again.
    assert h.book_to(10, asks={101: 5}) == []
    # When the market's level grows to 7, 2 new lots are really there and fill us.
    ev = h.book_to(20, asks={101: 7})
    assert summary(ev) == [(K.FILL, 1, 101, 2, 1, Liquidity.MAKER)]


def test_market_order_beyond_the_book_expires_remainder() -> None:
    h = Harness(asks={101: 5, 102: 3})
    ev = h.order(1, BUY, 10, order_type=OrderType.MARKET)
    assert summary(ev) == [
        (K.ACCEPTED, 1, 0, 10, 10, ""),
        (K.FILL, 1, 101, 5, 5, Liquidity.TAKER),
        (K.FILL, 1, 102, 3, 2, Liquidity.TAKER),
        (K.EXPIRED, 1, 0, 2, 0, "NO_LIQUIDITY"),
    ]


def test_best_level_partly_or_fully_taken_then_the_walk_goes_on() -> None:
    # The best level is read on its own first; what it cannot give comes from the levels
    # behind it, in price order, exactly as a walk over the whole depth.
    h = Harness(asks={101: 3, 102: 2, 103: 4})
    assert summary(h.order(1, BUY, 2, 101, tif=TimeInForce.IOC))[1:] == [
        (K.FILL, 1, 101, 2, 0, Liquidity.TAKER),
    ]
    # 1 lot of 101 is left: 1 @ 101, 2 @ 102, 1 @ 103.
    assert summary(h.order(2, BUY, 4, order_type=OrderType.MARKET))[1:] == [
        (K.FILL, 2, 101, 1, 3, Liquidity.TAKER),
        (K.FILL, 2, 102, 2, 1, Liquidity.TAKER),
        (K.FILL, 2, 103, 1, 0, Liquidity.TAKER),
    ]
    # 101 and 102 are used up: the walk starts behind them, and the limit stops it.
    assert summary(h.order(3, BUY, 5, 103, tif=TimeInForce.IOC))[1:] == [
        (K.FILL, 3, 103, 3, 2, Liquidity.TAKER),
        (K.EXPIRED, 3, 103, 2, 0, "IOC_REMAINDER"),
    ]
    # Nothing left within the limit: no fill at all.
    assert summary(h.order(4, SELL, 1, 101, tif=TimeInForce.IOC)) == [
        (K.ACCEPTED, 4, 101, 1, 1, ""),
        (K.EXPIRED, 4, 101, 1, 0, "IOC_REMAINDER"),
    ]


def test_sell_walks_the_bids_downwards() -> None:
    h = Harness(bids={100: 2, 99: 2, 97: 5}, asks={102: 1})
    ev = h.order(1, SELL, 6, 98)
    assert summary(ev)[1:] == [
        (K.FILL, 1, 100, 2, 4, Liquidity.TAKER),
        (K.FILL, 1, 99, 2, 2, Liquidity.TAKER),
    ]
    assert h.broker.queue_position(1, 1) == (0, 2)  # rests at 98, nobody asks there


def test_deep_walk_widens_the_depth_window() -> None:
    # 40 levels of 1 lot: the broker reads depth 16, then 64.
    h = Harness(asks={100 + i: 1 for i in range(40)})
    ev = h.order(1, BUY, 30, order_type=OrderType.MARKET)
    fills = [e for e in ev if e.kind is K.FILL]
    assert [e.price for e in fills] == list(range(100, 130))
    assert fills[-1].leaves == 0


# ----------------------------------------------------------------------------- IOC / FOK


def test_ioc_fills_what_crosses_and_expires_the_rest() -> None:
    h = Harness(asks={101: 5, 102: 3})
    ev = h.order(1, BUY, 8, 101, tif=TimeInForce.IOC)
    assert summary(ev) == [
        (K.ACCEPTED, 1, 101, 8, 8, ""),
        (K.FILL, 1, 101, 5, 3, Liquidity.TAKER),
        (K.EXPIRED, 1, 101, 3, 0, "IOC_REMAINDER"),
    ]
    assert h.broker.resting_count() == 0


def test_ioc_that_does_not_cross_expires_whole() -> None:
    h = Harness(bids={99: 1}, asks={101: 5})
    ev = h.order(1, BUY, 8, 100, tif=TimeInForce.IOC)
    assert summary(ev)[1:] == [(K.EXPIRED, 1, 100, 8, 0, "IOC_REMAINDER")]


def test_fok_all_or_nothing() -> None:
    h = Harness(asks={101: 5, 102: 3, 104: 9})
    # Within 102 there are 5 + 3 = 8 lots: 9 cannot be filled, nothing trades.
    ev = h.order(1, BUY, 9, 102, tif=TimeInForce.FOK)
    assert summary(ev) == [
        (K.ACCEPTED, 1, 102, 9, 9, ""),
        (K.EXPIRED, 1, 102, 9, 0, "FOK_UNFILLED"),
    ]
    # 8 can: two fills, no remainder.
    ev = h.order(2, BUY, 8, 102, tif=TimeInForce.FOK)
    assert summary(ev)[1:] == [
        (K.FILL, 2, 101, 5, 3, Liquidity.TAKER),
        (K.FILL, 2, 102, 3, 0, Liquidity.TAKER),
    ]
    # Now 101/102 are taken: FOK for 1 at 102 finds nothing.
    ev = h.order(3, BUY, 1, 102, tif=TimeInForce.FOK)
    assert summary(ev)[1:] == [(K.EXPIRED, 3, 102, 1, 0, "FOK_UNFILLED")]


def test_post_only_that_would_cross_is_rejected() -> None:
    h = Harness(bids={99: 1}, asks={101: 5})
    ev = h.order(1, BUY, 2, 101, post_only=True)
    assert summary(ev) == [(K.REJECTED, 1, 101, 2, 0, "WOULD_CROSS")]
    ev = h.order(2, BUY, 2, 100, post_only=True)
    assert summary(ev) == [(K.ACCEPTED, 2, 100, 2, 2, "")]


# ----------------------------------------------------------------------------- queue by trades


def test_queue_ahead_consumed_by_trades_at_our_price() -> None:
    h = Harness(bids={100: 10}, asks={102: 5})
    h.order(1, BUY, 4, 100)
    assert h.broker.queue_position(1, 1) == (10, 4)  # behind the 10 lots shown
    # A sell of 6 at 100 eats 6 of the 10 ahead.
    assert h.trade(1, 100, 6, SELL) == []
    assert h.broker.queue_position(1, 1) == (4, 4)
    # The depth message then shows 10 - 6 = 4: explained by the trade, no cancels.
    assert h.book_to(2, bids={100: 4}) == []
    assert h.broker.queue_position(1, 1) == (4, 4)
    # A sell of 7: 4 consume the queue ahead, 3 fill us.
    ev = h.trade(3, 100, 7, SELL)
    assert summary(ev) == [(K.FILL, 1, 100, 3, 1, Liquidity.MAKER)]
    assert h.broker.queue_position(1, 1) == (0, 1)
    # First in the queue now: the next print at 100 fills the last lot.
    ev = h.trade(4, 100, 5, SELL)
    assert summary(ev) == [(K.FILL, 1, 100, 1, 0, Liquidity.MAKER)]
    assert h.broker.resting_count() == 0


def test_trades_on_our_own_side_do_not_move_the_queue() -> None:
    h = Harness(bids={100: 10}, asks={102: 5})
    h.order(1, BUY, 4, 100)
    # A BUY aggressor at 102 lifts asks; our bid queue is untouched.
    assert h.trade(1, 102, 3, BUY) == []
    assert h.broker.queue_position(1, 1) == (10, 4)


def test_two_of_our_orders_at_one_price_fill_in_fifo_order() -> None:
    h = Harness(bids={100: 10}, asks={102: 5})
    h.order(1, BUY, 3, 100)
    h.order(2, BUY, 4, 100)
    # 12 sold at 100: 10 market lots ahead, then 2 to order 1; order 2 is behind order 1.
    ev = h.trade(1, 100, 12, SELL)
    assert summary(ev) == [(K.FILL, 1, 100, 2, 1, Liquidity.MAKER)]
    # 3 more: order 1's last lot, then 2 to order 2.
    ev = h.trade(2, 100, 3, SELL)
    assert summary(ev) == [
        (K.FILL, 1, 100, 1, 0, Liquidity.MAKER),
        (K.FILL, 2, 100, 2, 2, Liquidity.MAKER),
    ]


def test_trade_through_our_price_fills_up_to_the_traded_size() -> None:
    h = Harness(bids={100: 10, 99: 5}, asks={102: 5})
    h.order(1, BUY, 5, 100)
    # A sell printed at 99: the whole queue at 100 is gone; its 3 lots fill us at our price.
    ev = h.trade(1, 99, 3, SELL)
    assert summary(ev) == [(K.FILL, 1, 100, 3, 2, Liquidity.MAKER)]
    assert h.broker.queue_position(1, 1) == (0, 2)


def test_sell_side_queue_mirrors_the_buy_side() -> None:
    h = Harness(bids={98: 5}, asks={101: 6})
    h.order(1, SELL, 5, 101)
    assert h.broker.queue_position(1, 1) == (6, 5)
    ev = h.trade(1, 101, 8, BUY)  # 6 ahead, then 2 to us
    assert summary(ev) == [(K.FILL, 1, 101, 2, 3, Liquidity.MAKER)]
    ev = h.trade(2, 102, 9, BUY)  # through our price
    assert summary(ev) == [(K.FILL, 1, 101, 3, 0, Liquidity.MAKER)]


# ----------------------------------------------------------------------------- queue by cancels


@pytest.mark.parametrize(
    ("model", "after_first_cancel", "after_second_cancel", "fill_on_trade"),
    [
        # Pessimistic: cancels are behind us. 16 -> 12: ahead stays 10. 12 -> 5: the level
        # only has 5 lots, so ahead = min(10, 5) = 5. A sell of 7: 5 ahead, 2 fill us.
        (CancelModel.PESSIMISTIC, 10, 5, 2),
        # Proportional: 16 -> 12 cancels 4 spread over 16: ahead -= 4 * 10 // 16 = 2 -> 8.
        # 12 -> 5 cancels 7 over 12: ahead -= 7 * 8 // 12 = 4 -> 4. A sell of 7: 4, then 3.
        (CancelModel.PROPORTIONAL, 8, 4, 3),
    ],
)
def test_queue_ahead_consumed_by_cancels(
    model: CancelModel, after_first_cancel: int, after_second_cancel: int, fill_on_trade: int
) -> None:
    h = Harness(bids={100: 10}, asks={102: 5}, cancel_model=model)
    h.order(1, BUY, 5, 100)
    assert h.broker.queue_position(1, 1) == (10, 5)
    h.book_to(1, bids={100: 16})  # 6 lots join behind us
    assert h.broker.queue_position(1, 1) == (10, 5)
    h.book_to(2, bids={100: 12})  # 4 cancelled
    assert h.broker.queue_position(1, 1) == (after_first_cancel, 5)
    h.book_to(3, bids={100: 5})  # 7 cancelled
    assert h.broker.queue_position(1, 1) == (after_second_cancel, 5)
    ev = h.trade(4, 100, 7, SELL)
    assert summary(ev) == [(K.FILL, 1, 100, fill_on_trade, 5 - fill_on_trade, Liquidity.MAKER)]


@pytest.mark.parametrize("model", list(CancelModel))
def test_shrink_explained_by_trades_is_not_counted_as_cancels(model: CancelModel) -> None:
    h = Harness(bids={100: 20}, asks={102: 5}, cancel_model=model)
    h.order(1, BUY, 5, 100)
    h.book_to(1, bids={100: 30})  # 10 join behind: ahead 20
    h.trade(2, 100, 8, SELL)  # ahead 12
    # 30 - 8 = 22 expected; the book shows 22: no cancels, ahead stays 12 in both models.
    h.book_to(3, bids={100: 22})
    assert h.broker.queue_position(1, 1) == (12, 5)
    # 22 -> 11: 11 cancelled. Pessimistic: ahead = min(12, 11) = 11.
    # Proportional: 12 - 11 * 12 // 22 = 12 - 6 = 6.
    h.book_to(4, bids={100: 11})
    expected = 11 if model is CancelModel.PESSIMISTIC else 6
    assert h.broker.queue_position(1, 1) == (expected, 5)


def test_level_vanishing_puts_us_first_but_does_not_fill() -> None:
    h = Harness(bids={100: 10, 99: 3}, asks={102: 5})
    h.order(1, BUY, 5, 100)
    assert h.book_to(1, bids={100: 0}) == []  # everyone ahead cancelled
    assert h.broker.queue_position(1, 1) == (0, 5)
    ev = h.trade(2, 100, 2, SELL)
    assert summary(ev) == [(K.FILL, 1, 100, 2, 3, Liquidity.MAKER)]


def test_book_moving_through_our_price_fills_us() -> None:
    h = Harness(bids={100: 10, 99: 4, 98: 4}, asks={102: 5})
    h.order(1, BUY, 5, 100)
    # The bids at 100 and 99 disappear and asks come down to 100 and 99: those asks at or
    # below our 100 (2 @ 99 and 2 @ 100) fill us at our price, lowest ask first.
    ev = h.book_to(1, bids={100: 0, 99: 0}, asks={99: 2, 100: 2})
    assert summary(ev) == [
        (K.FILL, 1, 100, 2, 3, Liquidity.MAKER),
        (K.FILL, 1, 100, 2, 1, Liquidity.MAKER),
    ]
    # The same asks shown again are the lots we already took: no second fill.
    assert h.book_to(2, asks={99: 2}) == []


# ----------------------------------------------------------------------------- latency


def test_order_arriving_after_the_book_moved_meets_the_new_book() -> None:
    h = Harness(bids={99: 1}, asks={101: 5, 103: 5}, latency=LatencyModel(entry_ns=1_000))
    assert h.order(1, BUY, 5, 101) == []  # in flight until t = 1000
    assert h.broker.next_due_ns() == 1_000
    # At t = 800 the 101 offer is lifted by someone else.
    assert h.book_to(800, asks={101: 0}) == []
    # The order arrives at 1000: nothing at or below 101 any more; it rests.
    h.clock.t = 1_000
    h.broker.advance_to(1_000)
    assert summary(h.events) == [(K.ACCEPTED, 1, 101, 5, 5, "")]
    assert h.events[0].ts_ns == 1_000
    assert h.broker.queue_position(1, 1) == (0, 5)


def test_same_order_without_latency_fills() -> None:
    h = Harness(bids={99: 1}, asks={101: 5, 103: 5})
    ev = h.order(1, BUY, 5, 101)
    assert summary(ev)[1:] == [(K.FILL, 1, 101, 5, 0, Liquidity.TAKER)]


def test_cancel_loses_the_race_with_a_fill() -> None:
    h = Harness(bids={100: 0, 99: 1}, asks={102: 5}, latency=LatencyModel(cancel_ns=500))
    h.order(1, BUY, 5, 100)
    h.clock.t = 1_000
    h.broker.cancel(1, SYM, 1)  # arrives at 1500
    ev = h.trade(1_200, 100, 10, SELL)  # fills us before the cancel arrives
    assert summary(ev) == [(K.FILL, 1, 100, 5, 0, Liquidity.MAKER)]
    h.clock.t = 1_500
    h.broker.advance_to(1_500)
    assert summary(h.events[-1:]) == [(K.CANCEL_REJECTED, 1, 0, 0, 0, "UNKNOWN_ORDER")]
    assert h.events[-1].ts_ns == 1_500


def test_cancel_wins_the_race_when_the_trade_comes_later() -> None:
    h = Harness(bids={99: 1}, asks={102: 5}, latency=LatencyModel(cancel_ns=500))
    h.order(1, BUY, 5, 100)
    h.clock.t = 1_000
    h.broker.cancel(1, SYM, 1)
    assert h.trade(1_600, 100, 10, SELL)[0].kind is K.CANCELLED  # delivered at 1500 first
    assert summary(h.events[-1:]) == [(K.CANCELLED, 1, 100, 5, 0, "USER")]
    assert h.events[-1].ts_ns == 1_500
    assert h.broker.resting_count() == 0


def test_requests_of_one_account_arrive_in_the_order_sent() -> None:
    # Cancel latency (10) is shorter than entry latency (1000): without ordering the cancel
    # would arrive before its order and be rejected.
    h = Harness(bids={99: 1}, asks={102: 5}, latency=LatencyModel(entry_ns=1_000, cancel_ns=10))
    h.order(1, BUY, 5, 100)
    h.clock.t = 1
    h.broker.cancel(1, SYM, 1)
    h.broker.advance_to(2_000)
    assert [e.kind for e in h.events] == [K.ACCEPTED, K.CANCELLED]
    assert [e.ts_ns for e in h.events] == [1_000, 1_000]


def test_jitter_is_seeded_and_bounded() -> None:
    def arrivals(seed: int) -> list[int]:
        h = Harness(
            bids={99: 1}, asks={102: 5}, latency=LatencyModel(entry_ns=100, jitter_ns=50), seed=seed
        )
        out = []
        for i in range(20):
            h.clock.t = i * 1_000  # far apart: per-account ordering never binds
            h.order(i + 1, BUY, 1, 90)
            due = h.broker.next_due_ns()
            assert due is not None
            out.append(due - h.clock.t)
            h.broker.advance_to(h.clock.t + 1_000 - 1)
        return out

    a, b, c = arrivals(7), arrivals(7), arrivals(8)
    assert a == b
    assert a != c
    assert all(100 <= x <= 150 for x in a)
    assert len(set(a)) > 1


# ----------------------------------------------------------------------------- fees


def test_fees_in_basis_points_exact_with_rebate() -> None:
    h = Harness(
        bids={99: 1},
        asks={101: 5},
        maker_fee_bps=Decimal("-1"),
        taker_fee_bps=Decimal("5"),
    )
    ev = h.order(1, BUY, 5, 101)
    # 101 ticks * 5 lots * 0.01 * 0.001 = 0.00505 USDT; 5 bps of it = 0.000002525.
    fill = ev[1]
    assert fill.liquidity is Liquidity.TAKER
    assert fill.fee == Decimal("0.000002525")
    h.order(2, BUY, 3, 100)  # rests, nobody ahead
    ev = h.trade(1, 100, 3, SELL)
    # 100 * 3 * 0.00001 = 0.003 USDT; -1 bp = -0.0000003 (a rebate).
    assert ev[0].liquidity is Liquidity.MAKER
    assert ev[0].fee == Decimal("-0.0000003")


def test_fee_rates_reject_floats() -> None:
    with pytest.raises(UsageError, match="maker_fee_bps"):
        PaperBrokerConfig(maker_fee_bps=0.5)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="entry_ns"):
        LatencyModel(entry_ns=-1)
    with pytest.raises(UsageError, match="cancel_model"):
        PaperBrokerConfig(cancel_model="OPTIMISTIC")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- modify, cancel


def test_modify_down_keeps_queue_place_and_up_loses_it() -> None:
    h = Harness(bids={100: 10}, asks={102: 5})
    h.order(1, BUY, 5, 100)
    h.trade(1, 100, 4, SELL)  # ahead 6
    h.book_to(2, bids={100: 6})
    h.book_to(3, bids={100: 9})  # 3 join behind us
    h.broker.modify(1, SYM, 1, 100, 3)
    assert summary(h.events[-1:]) == [(K.REPLACED, 1, 100, 3, 3, "")]
    assert h.broker.queue_position(1, 1) == (6, 3)
    h.broker.modify(1, SYM, 1, 100, 4)  # more than the remainder: back of the queue
    assert h.broker.queue_position(1, 1) == (9, 4)


def test_modify_to_a_crossing_price_takes_liquidity() -> None:
    h = Harness(bids={100: 10}, asks={102: 5, 103: 5})
    h.order(1, BUY, 7, 100)
    n = len(h.events)
    h.broker.modify(1, SYM, 1, 102, 7)
    assert summary(h.events[n:]) == [
        (K.REPLACED, 1, 102, 7, 7, ""),
        (K.FILL, 1, 102, 5, 2, Liquidity.TAKER),
    ]
    assert h.broker.queue_position(1, 1) == (0, 2)


def test_modify_and_cancel_of_unknown_order_are_rejected() -> None:
    h = Harness(bids={100: 10}, asks={102: 5})
    h.broker.cancel(1, SYM, 42)
    h.broker.modify(1, SYM, 43, 100, 1)
    assert [(e.kind, e.client_order_id, e.reason) for e in h.events] == [
        (K.CANCEL_REJECTED, 42, "UNKNOWN_ORDER"),
        (K.CANCEL_REJECTED, 43, "UNKNOWN_ORDER"),
    ]


def test_cancel_all_cancels_only_that_account() -> None:
    h = Harness(bids={100: 10}, asks={102: 5})
    h.order(1, BUY, 1, 100, account=1)
    h.order(2, SELL, 1, 105, account=1)
    h.order(1, BUY, 1, 100, account=2)
    n = len(h.events)
    h.broker.cancel_all(1)
    got = [(e.kind, e.account, e.client_order_id, e.qty, e.reason) for e in h.events[n:]]
    assert got == [
        (K.CANCELLED, 1, 1, 1, "MASS_CANCEL"),
        (K.CANCELLED, 1, 2, 1, "MASS_CANCEL"),
    ]
    assert h.broker.resting_count() == 1
    assert h.broker.queue_position(2, 1) == (10, 1)


# ----------------------------------------------------------------------------- rejects, wiring


def test_rejects_with_reasons() -> None:
    h = Harness(bids={100: 10}, asks={102: 5})
    broker = h.broker
    broker.submit(OrderRequest(1, 1, "ETHUSDT", BUY, 1, 100))
    broker.submit(OrderRequest(1, 2, SYM, BUY, 0, 100))
    broker.submit(OrderRequest(1, 3, SYM, BUY, 1, 0))
    broker.submit(OrderRequest(1, 4, SYM, BUY, 1, 90))
    broker.submit(OrderRequest(1, 4, SYM, BUY, 1, 90))
    assert [(e.kind, e.client_order_id, e.reason) for e in h.events] == [
        (K.REJECTED, 1, "UNKNOWN_SYMBOL"),
        (K.REJECTED, 2, "INVALID_QTY"),
        (K.REJECTED, 3, "INVALID_PRICE"),
        (K.ACCEPTED, 4, ""),
        (K.REJECTED, 4, "DUPLICATE_ORDER_ID"),
    ]
    ids = [e.event_id for e in h.events]
    assert ids == sorted(set(ids))


def test_no_book_yet_is_rejected_and_sink_is_required() -> None:
    events: list[OrderEvent] = []
    broker = PaperBroker([INST], Clock())
    with pytest.raises(UsageError, match="sink"):
        broker.submit(OrderRequest(1, 1, SYM, BUY, 1, 100))
    broker.set_sink(events.append)
    broker.submit(OrderRequest(1, 1, SYM, BUY, 1, 100))
    assert [(e.kind, e.reason) for e in events] == [(K.REJECTED, "NO_MARKET_DATA")]
    with pytest.raises(UsageError, match="ETHUSDT"):
        broker.attach_book("ETHUSDT", DictL2Book())


class DepthOnlyBook:
    """A BookView without qty_at: the broker must find levels through depth()."""

    def __init__(self, inner: BookLike) -> None:
        self.inner = inner

    def best_bid(self) -> tuple[int, int] | None:
        return self.inner.best_bid()

    def best_ask(self) -> tuple[int, int] | None:
        return self.inner.best_ask()

    def depth(self, n: int = 10) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        return self.inner.depth(n)


def test_book_without_qty_at_works_through_depth() -> None:
    inner = make_book({100 - i: 1 + i for i in range(30)}, {101: 5})
    events: list[OrderEvent] = []
    broker = PaperBroker([INST], Clock(), sink=events.append)
    broker.attach_book(SYM, DepthOnlyBook(inner))
    broker.submit(OrderRequest(1, 1, SYM, BUY, 2, 75))  # 26th level: qty 26
    assert broker.queue_position(1, 1) == (26, 2)
    broker.submit(OrderRequest(1, 2, SYM, BUY, 2, 50))  # below the book: 0
    assert broker.queue_position(1, 2) == (0, 2)


def test_sink_may_call_back_into_the_broker() -> None:
    """A strategy that re-quotes inside on_fill sees a consistent broker; order is kept."""
    clock = Clock()
    book = make_book({100: 10}, {101: 3, 102: 3})
    seen: list[tuple[str, int, int]] = []
    broker: PaperBroker

    def sink(e: OrderEvent) -> None:
        seen.append((e.kind.value, e.client_order_id, e.qty))
        if e.kind is K.FILL and e.client_order_id == 1 and e.leaves == 0:
            broker.submit(OrderRequest(1, 2, SYM, SELL, 6, 102))

    broker = PaperBroker([INST], clock, sink=sink)
    broker.attach_book(SYM, book)
    broker.submit(OrderRequest(1, 1, SYM, BUY, 6, 102))
    assert seen == [
        ("ACCEPTED", 1, 6),
        ("FILL", 1, 3),
        ("FILL", 1, 3),
        ("ACCEPTED", 2, 6),
    ]
    assert broker.queue_position(1, 2) == (0, 6)


def test_book_through_our_best_bid_leaves_our_lower_bid_in_its_queue() -> None:
    h = Harness(bids={100: 10, 98: 7}, asks={102: 5})
    h.order(1, BUY, 2, 100)
    h.order(2, BUY, 2, 98)
    ev = h.book_to(1, bids={100: 0}, asks={100: 1})  # asks reach 100, not 98
    assert summary(ev) == [(K.FILL, 1, 100, 1, 1, Liquidity.MAKER)]
    assert h.broker.queue_position(1, 1) == (0, 1)
    assert h.broker.queue_position(1, 2) == (7, 2)


def test_optimistic_queue_joins_at_the_front() -> None:
    h = Harness(bids={100: 10}, asks={102: 5}, optimistic_queue=True)
    h.order(1, BUY, 4, 100)
    assert h.broker.queue_position(1, 1) == (0, 4)
    ev = h.trade(1, 100, 3, SELL)
    assert summary(ev) == [(K.FILL, 1, 100, 3, 1, Liquidity.MAKER)]


# ----------------------------------------------------------------------------- restore


def restored_order(coid: int, side: Side, leaves: int, price: int, last_event: int) -> Order:
    req = OrderRequest(1, coid, SYM, side, leaves + 2, price)
    prior = OrderEvent(K.ACCEPTED, 1, coid, SYM, side, price, leaves + 2, leaves + 2, 1, last_event)
    return Order(
        req,
        status=OrderStatus.PARTIALLY_FILLED,
        price=price,
        qty=leaves + 2,
        filled_qty=2,
        leaves=leaves,
        events=[prior],
    )


def test_restore_rests_at_the_back_without_a_report() -> None:
    h = Harness(bids={100: 10}, asks={102: 5})
    h.broker.restore(restored_order(7, BUY, 3, 100, last_event=41))
    assert h.events == []
    assert h.broker.queue_position(1, 7) == (10, 3)
    ev = h.trade(1, 100, 12, SELL)
    assert summary(ev) == [(K.FILL, 7, 100, 2, 1, Liquidity.MAKER)]
    assert ev[0].event_id == 42  # after the order's last known report


def test_restore_before_any_book_waits_for_it_and_crossed_orders_are_cancelled() -> None:
    events: list[OrderEvent] = []
    broker = PaperBroker([INST], Clock(), sink=events.append)
    broker.restore(restored_order(1, BUY, 3, 100, last_event=5))
    broker.restore(restored_order(2, SELL, 4, 99, last_event=6))
    assert broker.resting_count() == 0
    book = make_book({98: 6}, {99: 2})
    broker.on_book(BookUpdate(SYM, 50, 50, 1, book))
    # The buy at 100 would take the ask at 99: cancelled. The sell at 99 joins 2 lots.
    assert [(e.kind, e.client_order_id, e.qty, e.reason, e.event_id) for e in events] == [
        (K.CANCELLED, 1, 3, "RESTORE_CROSSED", 7)
    ]
    assert broker.queue_position(1, 2) == (2, 4)
    with pytest.raises(UsageError, match="already known"):
        broker.restore(restored_order(2, SELL, 4, 99, last_event=6))


def test_bad_and_unknown_market_events_are_counted_not_fatal() -> None:
    h = Harness(bids={100: 10}, asks={102: 5})
    h.order(1, BUY, 4, 100)
    assert h.trade(1, 100, 0, SELL) == []
    assert h.trade(2, 100, -3, SELL) == []
    h.broker.on_trade(TradeTick("ETHUSDT", 3, 3, 100, 1, SELL, 1))
    h.broker.on_book(BookUpdate("ETHUSDT", 4, 4, 1, h.book))
    assert h.broker.queue_position(1, 1) == (10, 4)
    assert h.broker.stats.bad_trades == 2
    assert h.broker.stats.unknown_symbol_events == 2
