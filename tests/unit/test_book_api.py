"""The per-call Python API of ``tradecore.OrderBook``, rule by rule, through the bindings.

Each test drives a real book and checks the events (as ``Event.as_tuple()``) and the visible
state afterwards. Expected values are worked out by hand from the rules in the crate docs.
Also covered: enum members and their names are interchangeable, ``Event`` equality, argument
errors naming the argument, subclassing, and that ``process`` releases the GIL.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest
import tradecore
from tradecore import (
    OP_CANCEL,
    OP_DTYPE,
    OP_SUBMIT,
    Event,
    EventKind,
    OrderBook,
    OrderType,
    Reason,
    Side,
    Stp,
    TimeInForce,
)

T = tuple[Any, ...]


def tuples(events: list[Event]) -> list[T]:
    return [e.as_tuple() for e in events]


def acc(oid: int, price: int, qty: int) -> T:
    return ("ACCEPTED", "", oid, 0, price, qty, qty, 0)


def fill(taker: int, maker: int, price: int, qty: int, leaves: int, other_leaves: int) -> T:
    return ("FILL", "", taker, maker, price, qty, leaves, other_leaves)


def cxl(oid: int, price: int, qty: int, reason: str) -> T:
    return ("CANCELLED", reason, oid, 0, price, qty, 0, 0)


def rej(oid: int, price: int, qty: int, reason: str) -> T:
    return ("REJECTED", reason, oid, 0, price, qty, 0, 0)


def rep(oid: int, price: int, qty: int) -> T:
    return ("REPLACED", "", oid, 0, price, qty, qty, 0)


def asks_101_102_103(book: OrderBook) -> None:
    """Three asks of 5 lots at 101, 102, 103 (ids 1, 2, 3, account 1)."""
    for oid, price in ((1, 101), (2, 102), (3, 103)):
        assert tuples(book.submit(oid, 1, "SELL", price, 5)) == [acc(oid, price, 5)]


# --- empty book and queries ----------------------------------------------------------------


def test_empty_book(book: OrderBook) -> None:
    assert len(book) == 0
    assert book.best_bid() is None
    assert book.best_ask() is None
    assert book.depth() == ([], [])
    assert book.orders(Side.BUY) == []
    assert book.orders("SELL") == []
    assert book.order(1) is None
    assert book.capacity == 1_000
    assert 40 <= book.bytes_per_order < 64
    book.check_invariants()


def test_accept_rests_and_queries(book: OrderBook) -> None:
    assert tuples(book.submit(1, 7, Side.BUY, 100, 10)) == [acc(1, 100, 10)]
    assert tuples(book.submit(2, 8, Side.BUY, 100, 4)) == [acc(2, 100, 4)]
    assert tuples(book.submit(3, 9, Side.BUY, 99, 6)) == [acc(3, 99, 6)]
    assert tuples(book.submit(4, 7, Side.SELL, 105, 3)) == [acc(4, 105, 3)]
    assert len(book) == 4
    assert book.best_bid() == (100, 14)
    assert book.best_ask() == (105, 3)
    assert book.depth() == ([(100, 14, 2), (99, 6, 1)], [(105, 3, 1)])
    assert book.depth(1) == ([(100, 14, 2)], [(105, 3, 1)])
    assert book.depth(0) == ([], [])
    assert book.depth(2**64 - 1) == book.depth(3)
    assert book.orders(Side.BUY) == [(1, 7, 100, 10), (2, 8, 100, 4), (3, 9, 99, 6)]
    assert book.orders(Side.BUY, 100) == [(1, 7, 100, 10), (2, 8, 100, 4)]
    assert book.orders(Side.BUY, 98) == []
    assert book.orders(Side.SELL) == [(4, 7, 105, 3)]
    assert book.order(3) == (3, 9, 99, 6)
    assert book.order(99) is None
    assert "resting=4" in repr(book) and "best_bid=(100, 14)" in repr(book)
    book.check_invariants()


# --- matching ------------------------------------------------------------------------------


def test_partial_fills_across_levels_at_maker_prices(book: OrderBook) -> None:
    asks_101_102_103(book)
    events = book.submit(10, 2, Side.BUY, 103, 12)
    assert tuples(events) == [
        acc(10, 103, 12),
        fill(10, 1, 101, 5, 7, 0),
        fill(10, 2, 102, 5, 2, 0),
        fill(10, 3, 103, 2, 0, 3),
    ]
    assert book.orders(Side.SELL) == [(3, 1, 103, 3)]
    assert book.best_bid() is None
    assert len(book) == 1
    book.check_invariants()


def test_fifo_within_a_level_and_gtc_remainder_rests(book: OrderBook) -> None:
    book.submit(1, 1, Side.SELL, 101, 2)
    book.submit(2, 3, Side.SELL, 101, 2)
    events = book.submit(10, 2, Side.BUY, 102, 3)
    assert tuples(events) == [acc(10, 102, 3), fill(10, 1, 101, 2, 1, 0), fill(10, 2, 101, 1, 0, 1)]
    events = book.submit(11, 2, Side.BUY, 102, 5)
    assert tuples(events) == [acc(11, 102, 5), fill(11, 2, 101, 1, 4, 0)]
    assert book.best_bid() == (102, 4)
    assert book.orders(Side.BUY) == [(11, 2, 102, 4)]


def test_limit_does_not_trade_through_its_price(book: OrderBook) -> None:
    asks_101_102_103(book)
    assert tuples(book.submit(10, 2, Side.BUY, 101, 8)) == [
        acc(10, 101, 8),
        fill(10, 1, 101, 5, 3, 0),
    ]
    assert book.best_bid() == (101, 3)
    assert book.best_ask() == (102, 5)


def test_ioc_remainder_is_cancelled(book: OrderBook) -> None:
    asks_101_102_103(book)
    events = book.submit(10, 2, Side.BUY, 102, 12, tif=TimeInForce.IOC)
    assert tuples(events) == [
        acc(10, 102, 12),
        fill(10, 1, 101, 5, 7, 0),
        fill(10, 2, 102, 5, 2, 0),
        cxl(10, 102, 2, "IOC_REMAINDER"),
    ]
    assert book.best_bid() is None
    assert book.orders(Side.SELL) == [(3, 1, 103, 5)]


def test_market_order_sweeps_and_cancels_remainder(book: OrderBook) -> None:
    asks_101_102_103(book)
    events = book.submit(10, 2, Side.BUY, 0, 17, order_type=OrderType.MARKET, tif="IOC")
    assert tuples(events) == [
        acc(10, 0, 17),
        fill(10, 1, 101, 5, 12, 0),
        fill(10, 2, 102, 5, 7, 0),
        fill(10, 3, 103, 5, 2, 0),
        cxl(10, 0, 2, "IOC_REMAINDER"),
    ]
    assert len(book) == 0


def test_market_order_on_empty_book(book: OrderBook) -> None:
    events = book.submit(1, 1, "SELL", 555, 4, order_type="MARKET")
    assert tuples(events) == [acc(1, 0, 4), cxl(1, 0, 4, "IOC_REMAINDER")]
    assert len(book) == 0


# --- self-trade prevention -----------------------------------------------------------------


def self_trade_book(book: OrderBook) -> None:
    """Asks: id 1 (account 5) then id 2 (account 7) at 101; id 3 (account 6) at 102."""
    book.submit(1, 5, Side.SELL, 101, 4)
    book.submit(2, 7, Side.SELL, 101, 4)
    book.submit(3, 6, Side.SELL, 102, 4)


def test_stp_cancel_newest_fills_others_then_cancels_taker(book: OrderBook) -> None:
    self_trade_book(book)
    events = book.submit(10, 7, Side.BUY, 102, 10, stp=Stp.CANCEL_NEWEST)
    assert tuples(events) == [
        acc(10, 102, 10),
        fill(10, 1, 101, 4, 6, 0),
        cxl(10, 102, 6, "SELF_TRADE"),
    ]
    assert book.orders(Side.SELL) == [(2, 7, 101, 4), (3, 6, 102, 4)]
    assert book.best_bid() is None  # a taker cancelled by STP never rests


def test_stp_default_is_cancel_newest(book: OrderBook) -> None:
    self_trade_book(book)
    events = book.submit(10, 5, Side.BUY, 101, 3)
    assert tuples(events) == [acc(10, 101, 3), cxl(10, 101, 3, "SELF_TRADE")]


def test_stp_cancel_oldest_cancels_maker_and_continues(book: OrderBook) -> None:
    self_trade_book(book)
    events = book.submit(10, 7, Side.BUY, 102, 10, stp="CANCEL_OLDEST")
    assert tuples(events) == [
        acc(10, 102, 10),
        fill(10, 1, 101, 4, 6, 0),
        cxl(2, 101, 4, "SELF_TRADE"),
        fill(10, 3, 102, 4, 2, 0),
    ]
    assert book.orders(Side.BUY) == [(10, 7, 102, 2)]
    assert book.best_ask() is None


def test_stp_cancel_both(book: OrderBook) -> None:
    self_trade_book(book)
    events = book.submit(10, 7, Side.BUY, 102, 10, stp=Stp.CANCEL_BOTH)
    assert tuples(events) == [
        acc(10, 102, 10),
        fill(10, 1, 101, 4, 6, 0),
        cxl(2, 101, 4, "SELF_TRADE"),
        cxl(10, 102, 6, "SELF_TRADE"),
    ]
    assert book.orders(Side.SELL) == [(3, 6, 102, 4)]
    assert book.best_bid() is None


def test_stp_none_trades_with_itself(book: OrderBook) -> None:
    self_trade_book(book)
    events = book.submit(10, 7, Side.BUY, 101, 8, stp=Stp.NONE)
    assert tuples(events) == [
        acc(10, 101, 8),
        fill(10, 1, 101, 4, 4, 0),
        fill(10, 2, 101, 4, 0, 0),
    ]


# --- FOK -----------------------------------------------------------------------------------


def test_fok_that_cannot_fill_changes_nothing(book: OrderBook) -> None:
    asks_101_102_103(book)
    before = (book.orders(Side.SELL), book.depth())
    events = book.submit(10, 2, Side.BUY, 102, 11, tif=TimeInForce.FOK)
    assert tuples(events) == [acc(10, 102, 11), cxl(10, 102, 11, "FOK_UNFILLED")]
    assert (book.orders(Side.SELL), book.depth()) == before


def test_fok_that_can_fill_executes_fully(book: OrderBook) -> None:
    asks_101_102_103(book)
    events = book.submit(10, 2, Side.BUY, 102, 10, tif="FOK")
    assert tuples(events) == [
        acc(10, 102, 10),
        fill(10, 1, 101, 5, 5, 0),
        fill(10, 2, 102, 5, 0, 0),
    ]
    assert book.orders(Side.SELL) == [(3, 1, 103, 5)]


def test_fok_counts_self_trade_prevention(book: OrderBook) -> None:
    self_trade_book(book)
    # 12 lots are there, but account 7's own order stops a CANCEL_NEWEST taker after 4.
    events = book.submit(10, 7, Side.BUY, 102, 12, tif="FOK")
    assert tuples(events) == [acc(10, 102, 12), cxl(10, 102, 12, "FOK_UNFILLED")]
    assert len(book) == 3
    # With CANCEL_OLDEST the own order is skipped: 8 lots reachable, so 8 fills.
    events = book.submit(11, 7, Side.BUY, 102, 8, tif="FOK", stp="CANCEL_OLDEST")
    assert tuples(events) == [
        acc(11, 102, 8),
        fill(11, 1, 101, 4, 4, 0),
        cxl(2, 101, 4, "SELF_TRADE"),
        fill(11, 3, 102, 4, 0, 0),
    ]


# --- post-only -----------------------------------------------------------------------------


def test_post_only_rests_when_passive(book: OrderBook) -> None:
    asks_101_102_103(book)
    assert tuples(book.submit(10, 2, Side.BUY, 100, 5, post_only=True)) == [acc(10, 100, 5)]
    assert book.best_bid() == (100, 5)


def test_post_only_that_would_cross_is_rejected(book: OrderBook) -> None:
    asks_101_102_103(book)
    events = book.submit(10, 2, Side.BUY, 101, 5, post_only=True)
    assert tuples(events) == [rej(10, 101, 5, "WOULD_CROSS")]
    assert book.best_bid() is None
    assert len(book) == 3


@pytest.mark.parametrize(
    ("order_type", "tif"), [("LIMIT", "IOC"), ("LIMIT", "FOK"), ("MARKET", "IOC")]
)
def test_post_only_needs_limit_gtc(book: OrderBook, order_type: str, tif: str) -> None:
    events = book.submit(10, 2, "BUY", 100, 5, order_type=order_type, tif=tif, post_only=True)
    price = 0 if order_type == "MARKET" else 100
    assert tuples(events) == [rej(10, price, 5, "INVALID_ORDER")]


# --- rejections ----------------------------------------------------------------------------


def test_business_rejections_are_events(book: OrderBook) -> None:
    book.submit(1, 1, Side.BUY, 100, 5)
    assert tuples(book.submit(0, 1, Side.BUY, 100, 5)) == [rej(0, 100, 5, "INVALID_ORDER")]
    assert tuples(book.submit(2, 1, Side.BUY, 100, 0)) == [rej(2, 100, 0, "INVALID_QTY")]
    assert tuples(book.submit(2, 1, Side.BUY, 0, 5)) == [rej(2, 0, 5, "INVALID_PRICE")]
    assert tuples(book.submit(2, 1, Side.BUY, -3, 5)) == [rej(2, -3, 5, "INVALID_PRICE")]
    assert tuples(book.submit(1, 1, Side.SELL, 200, 5)) == [rej(1, 200, 5, "DUPLICATE_ORDER_ID")]
    assert book.orders(Side.BUY) == [(1, 1, 100, 5)]
    assert len(book) == 1


def test_book_full() -> None:
    book = OrderBook(capacity=2)
    book.submit(1, 1, Side.BUY, 100, 5)
    book.submit(2, 1, Side.BUY, 99, 5)
    assert tuples(book.submit(3, 1, Side.BUY, 98, 5)) == [rej(3, 98, 5, "BOOK_FULL")]
    # An IOC never rests, so it is not refused for lack of room.
    assert tuples(book.submit(4, 2, Side.SELL, 100, 2, tif="IOC")) == [
        acc(4, 100, 2),
        fill(4, 1, 100, 2, 0, 3),
    ]
    book.cancel(2)
    assert tuples(book.submit(3, 1, Side.BUY, 98, 5)) == [acc(3, 98, 5)]


def test_id_can_be_reused_after_it_left_the_book(book: OrderBook) -> None:
    book.submit(1, 1, Side.BUY, 100, 5)
    book.cancel(1)
    assert tuples(book.submit(1, 1, Side.SELL, 100, 5)) == [acc(1, 100, 5)]


# --- cancel --------------------------------------------------------------------------------


def test_cancel_reports_leaves(book: OrderBook) -> None:
    asks_101_102_103(book)
    book.submit(10, 2, Side.BUY, 101, 2)
    assert tuples(book.cancel(1)) == [cxl(1, 101, 3, "USER")]
    assert book.orders(Side.SELL) == [(2, 1, 102, 5), (3, 1, 103, 5)]
    assert tuples(book.cancel(1)) == [rej(1, 0, 0, "UNKNOWN_ORDER")]
    assert tuples(book.cancel(0)) == [rej(0, 0, 0, "UNKNOWN_ORDER")]


# --- modify --------------------------------------------------------------------------------


def test_modify_reduce_keeps_priority(book: OrderBook) -> None:
    book.submit(1, 1, Side.BUY, 100, 10)
    book.submit(2, 2, Side.BUY, 100, 10)
    assert tuples(book.modify(1, 100, 4)) == [rep(1, 100, 4)]
    assert book.orders(Side.BUY) == [(1, 1, 100, 4), (2, 2, 100, 10)]
    assert book.best_bid() == (100, 14)
    # Same quantity, same price: still in place.
    assert tuples(book.modify(1, 100, 4)) == [rep(1, 100, 4)]
    assert book.orders(Side.BUY)[0] == (1, 1, 100, 4)


def test_modify_increase_loses_priority(book: OrderBook) -> None:
    book.submit(1, 1, Side.BUY, 100, 10)
    book.submit(2, 2, Side.BUY, 100, 10)
    assert tuples(book.modify(1, 100, 11)) == [rep(1, 100, 11)]
    assert book.orders(Side.BUY) == [(2, 2, 100, 10), (1, 1, 100, 11)]


def test_modify_price_change_loses_priority_and_can_trade(book: OrderBook) -> None:
    book.submit(1, 1, Side.BUY, 100, 10)
    book.submit(2, 2, Side.BUY, 99, 10)
    book.submit(3, 3, Side.SELL, 102, 4)
    assert tuples(book.modify(1, 99, 10)) == [rep(1, 99, 10)]
    assert book.orders(Side.BUY) == [(2, 2, 99, 10), (1, 1, 99, 10)]
    events = book.modify(2, 103, 6)
    assert tuples(events) == [rep(2, 103, 6), fill(2, 3, 102, 4, 2, 0)]
    assert book.orders(Side.BUY) == [(2, 2, 103, 2), (1, 1, 99, 10)]
    assert book.best_ask() is None
    book.check_invariants()


def test_modify_post_only_that_would_cross_is_rejected_and_stays(book: OrderBook) -> None:
    book.submit(1, 1, Side.BUY, 100, 10, post_only=True)
    book.submit(2, 2, Side.SELL, 102, 4)
    assert tuples(book.modify(1, 102, 10)) == [rej(1, 102, 10, "WOULD_CROSS")]
    assert book.orders(Side.BUY) == [(1, 1, 100, 10)]


def test_modify_validation(book: OrderBook) -> None:
    book.submit(1, 1, Side.BUY, 100, 10)
    assert tuples(book.modify(1, 100, 0)) == [rej(1, 100, 0, "INVALID_QTY")]
    assert tuples(book.modify(1, 0, 5)) == [rej(1, 0, 5, "INVALID_PRICE")]
    assert tuples(book.modify(9, 100, 5)) == [rej(9, 100, 5, "UNKNOWN_ORDER")]
    assert book.orders(Side.BUY) == [(1, 1, 100, 10)]


# --- enums, names and events ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "order_type", "tif", "stp"),
    [
        (Side.SELL, OrderType.LIMIT, TimeInForce.IOC, Stp.CANCEL_OLDEST),
        ("SELL", "LIMIT", "IOC", "CANCEL_OLDEST"),
    ],
)
def test_enum_members_and_names_are_interchangeable(
    side: Any, order_type: Any, tif: Any, stp: Any
) -> None:
    book = OrderBook(capacity=10)
    book.submit(1, 1, "BUY", 100, 3)
    book.submit(2, 9, "BUY", 100, 3)
    events = book.submit(3, 9, side, 100, 10, order_type=order_type, tif=tif, stp=stp)
    assert tuples(events) == [
        acc(3, 100, 10),
        fill(3, 1, 100, 3, 7, 0),
        cxl(2, 100, 3, "SELF_TRADE"),
        cxl(3, 100, 7, "IOC_REMAINDER"),
    ]
    assert book.orders(side="BUY") == book.orders(Side.BUY) == []


def test_event_attributes_compare_with_enums_and_strings(book: OrderBook) -> None:
    book.submit(1, 1, Side.SELL, 101, 5)
    accepted, filled = book.submit(2, 2, Side.BUY, 101, 3)
    assert accepted.kind == EventKind.ACCEPTED == "ACCEPTED"
    assert accepted.kind is EventKind.ACCEPTED
    assert accepted.reason == Reason.NONE == ""
    assert accepted.reason is Reason.NONE
    assert filled.kind == "FILL" and filled.kind != "ACCEPTED"
    assert isinstance(filled.kind, EventKind) and isinstance(filled.reason, Reason)
    assert (filled.order_id, filled.other_id, filled.price) == (2, 1, 101)
    assert (filled.qty, filled.leaves, filled.other_leaves) == (3, 0, 2)
    (cancelled,) = book.cancel(1)
    assert cancelled.kind == EventKind.CANCELLED and cancelled.reason == "USER"
    assert cancelled.reason is Reason.USER
    assert repr(filled) == (
        "Event(kind='FILL', reason='', order_id=2, other_id=1, price=101, qty=3, leaves=0, "
        "other_leaves=2)"
    )
    kind, reason, *_ = cancelled.as_tuple()
    assert type(kind) is str and type(reason) is str


def test_event_equality_hash_and_pickle(book: OrderBook) -> None:
    import pickle

    book.submit(1, 1, Side.SELL, 101, 5)
    (_, filled) = book.submit(2, 2, Side.BUY, 101, 3)
    same = Event("FILL", "", 2, 1, 101, 3, 0, 2)
    built_from_enums = Event(
        EventKind.FILL, Reason.NONE, 2, other_id=1, price=101, qty=3, other_leaves=2
    )
    assert filled == same == built_from_enums
    assert hash(filled) == hash(same)
    assert filled != Event("FILL", "", 2, 1, 101, 3, 0, 1)
    assert filled != filled.as_tuple()
    assert len({filled, same, built_from_enums}) == 1
    assert pickle.loads(pickle.dumps(filled)) == filled
    with pytest.raises(AttributeError):
        filled.qty = 5  # type: ignore[misc]


def test_enum_codes_match_the_core_layout() -> None:
    assert [m.code for m in Side] == [0, 1]
    assert Stp.CANCEL_BOTH.code == 3
    assert Reason.NONE.code == 0 and Reason.KILL_SWITCH.code == 13
    for cls in (Side, OrderType, TimeInForce, Stp, EventKind, Reason):
        for member in cls:
            assert cls.from_code(member.code) is member
    with pytest.raises(ValueError, match=r"unknown Side code 2 \(valid: 0=BUY, 1=SELL\)"):
        Side.from_code(2)
    with pytest.raises(TypeError, match="Side code must be an int, got bool"):
        Side.from_code(True)
    # The batch API uses the same codes for the same events.
    book = OrderBook(capacity=10)
    ops = np.zeros(1, OP_DTYPE)
    ops[0] = (7, 100, 5, 0, 1, OP_SUBMIT, Side.SELL.code, 0, 0, 0, 0)
    out = book.process(ops)
    assert EventKind.from_code(int(out["kind"][0])) is EventKind.ACCEPTED
    assert book.orders("SELL") == [(7, 1, 100, 5)]


# --- argument errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"order_id": -1}, ValueError, "order_id must not be negative, got -1"),
        ({"order_id": 2**64}, ValueError, "order_id must be <= 2\\*\\*64 - 1"),
        ({"order_id": True}, TypeError, "order_id must be an int, got bool"),
        ({"order_id": 1.0}, TypeError, "order_id must be an int, got float"),
        ({"order_id": "1"}, TypeError, "order_id must be an int, got str"),
        ({"account": -1}, ValueError, "account must not be negative"),
        ({"account": 2**32}, ValueError, "account must be <= 4294967295"),
        ({"side": "buy"}, ValueError, "side must be one of 'BUY', 'SELL'"),
        ({"side": 0}, TypeError, "side must be a tradecore.Side or its name as a str, got int"),
        ({"side": TimeInForce.GTC}, ValueError, "side must be one of 'BUY', 'SELL'"),
        ({"price": 100.5}, TypeError, "price must be an int, got float"),
        ({"price": 2**63}, ValueError, "price must be within"),
        ({"price": False}, TypeError, "price must be an int, got bool"),
        ({"qty": -5}, ValueError, "qty must not be negative, got -5"),
        ({"qty": 5.0}, TypeError, "qty must be an int, got float"),
        ({"order_type": "LIMITT"}, ValueError, "order_type must be one of 'LIMIT', 'MARKET'"),
        ({"tif": "DAY"}, ValueError, "tif must be one of 'GTC', 'IOC', 'FOK'"),
        ({"stp": None}, TypeError, "stp must be a tradecore.Stp or its name as a str"),
        ({"stp": "BOTH"}, ValueError, "stp must be one of 'NONE', 'CANCEL_NEWEST'"),
        ({"post_only": 1}, TypeError, "post_only must be a bool, got int"),
        ({"timestamp": -1}, ValueError, "timestamp must not be negative"),
    ],
)
def test_submit_argument_errors_name_the_argument(
    book: OrderBook, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    args: dict[str, Any] = {"order_id": 1, "account": 1, "side": "BUY", "price": 100, "qty": 5}
    args.update(kwargs)
    with pytest.raises(error, match=message):
        book.submit(**args)
    assert len(book) == 0


def test_numpy_integers_are_accepted(book: OrderBook) -> None:
    events = book.submit(np.uint64(1), np.uint32(2), "BUY", np.int64(100), np.int32(5))
    assert tuples(events) == [acc(1, 100, 5)]
    assert book.order(np.uint64(1)) == (1, 2, 100, 5)


def test_cancel_modify_and_query_argument_errors(book: OrderBook) -> None:
    with pytest.raises(ValueError, match="order_id must not be negative"):
        book.cancel(-1)
    with pytest.raises(TypeError, match="order_id must be an int, got float"):
        book.cancel(1.0)
    with pytest.raises(TypeError, match="new_price must be an int, got float"):
        book.modify(1, 1.5, 3)
    with pytest.raises(ValueError, match="new_qty must not be negative"):
        book.modify(1, 100, -3)
    with pytest.raises(ValueError, match="n must not be negative"):
        book.depth(-1)
    with pytest.raises(ValueError, match="side must be one of"):
        book.orders("BID")
    with pytest.raises(TypeError, match="price must be an int"):
        book.orders("BUY", 1.5)
    with pytest.raises(TypeError):
        book.submit(1, 1, "BUY", 100)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("capacity", "error", "message"),
    [
        (0, ValueError, "capacity must be in 1 ..= 4294967294, got 0"),
        (-5, ValueError, "capacity must be in 1 ..= 4294967294, got -5"),
        (4_294_967_295, ValueError, "capacity must be in 1 ..= 4294967294, got 4294967295"),
        (2**70, ValueError, "capacity must be in 1 ..= 4294967294"),
        (10.0, TypeError, "capacity must be an int, got float"),
        (True, TypeError, "capacity must be an int, got bool"),
    ],
)
def test_capacity_errors(capacity: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        OrderBook(capacity=capacity)


def test_impossible_capacity_is_a_memory_error_not_a_crash() -> None:
    # The largest legal capacity needs about 240 GB: refused up front, the process survives.
    with pytest.raises(MemoryError, match=r"capacity=4294967294 needs about \d+ bytes"):
        OrderBook(capacity=4_294_967_294)


def test_default_capacity() -> None:
    assert OrderBook().capacity == 1_000_000


# --- subclassing ---------------------------------------------------------------------------


def test_order_book_can_be_subclassed() -> None:
    class CountingBook(OrderBook):
        def __init__(self, capacity: int = 100) -> None:
            self.fills = 0

        def submit_counting(self, *args: Any, **kwargs: Any) -> list[Event]:
            events = self.submit(*args, **kwargs)
            self.fills += sum(e.kind == EventKind.FILL for e in events)
            return events

    book = CountingBook(capacity=5)
    assert isinstance(book, OrderBook) and book.capacity == 5
    book.submit_counting(1, 1, "SELL", 100, 5)
    book.submit_counting(2, 2, "BUY", 100, 2)
    book.submit_counting(3, 2, "BUY", 100, 2)
    assert book.fills == 2
    assert book.orders("SELL") == [(1, 1, 100, 1)]


# --- the GIL -------------------------------------------------------------------------------


def submit_cancel_ops(rows: int) -> np.ndarray[Any, Any]:
    ops = np.zeros(rows, OP_DTYPE)
    half = rows // 2
    ids = np.arange(1, half + 1, dtype=np.uint64)
    ops["order_id"][0::2][:half] = ids
    ops["order_id"][1::2][:half] = ids
    ops["op"][1::2] = OP_CANCEL
    ops["price"] = 100 + (np.arange(rows) % 50)
    ops["qty"] = 5
    ops["account"] = 1
    return ops


def test_process_releases_the_gil() -> None:
    """While ``process`` runs, another Python thread keeps executing bytecode.

    The other thread calls ``book.best_bid()`` in a loop. During ``process`` the book is
    mutably borrowed, so those calls raise "already borrowed" ``RuntimeError``s: each one is a
    Python call made by the other thread *while process() was running*. If process() held the
    GIL, the other thread could not run at all during it, and there would be none. The
    timestamps add a second, independent check: the other thread's progress falls inside the
    window of the call.
    """
    book = OrderBook(capacity=1_000)
    rows = 200_000
    while True:  # grow the batch until one call takes long enough to observe (>= 0.2 s)
        ops = submit_cancel_ops(rows)
        started = time.perf_counter()
        book.process(ops)
        if time.perf_counter() - started >= 0.2 or rows >= 12_800_000:
            break
        rows *= 2

    # (start, end) of each call that failed: the failure happened inside that interval, but
    # the thread can lose the GIL on either side of the call, so only the interval (not one
    # timestamp) is sure to overlap the window of process().
    borrowed_errors: list[tuple[float, float]] = []
    other_calls = 0
    stop = threading.Event()
    ready = threading.Event()

    def other_thread() -> None:
        nonlocal other_calls
        ready.set()
        while not stop.is_set():
            other_calls += 1
            start = time.perf_counter()
            try:
                book.best_bid()
            except RuntimeError as exc:
                assert "borrow" in str(exc).lower()
                borrowed_errors.append((start, time.perf_counter()))

    thread = threading.Thread(target=other_thread)
    thread.start()
    ready.wait()
    calls_before = other_calls
    t0 = time.perf_counter()
    out = book.process(ops)
    t1 = time.perf_counter()
    calls_during = other_calls - calls_before
    stop.set()
    thread.join()

    assert len(out) == rows
    assert len(borrowed_errors) >= 10, (len(borrowed_errors), t1 - t0)
    assert all(start <= t1 and end >= t0 for start, end in borrowed_errors)
    lo, hi = t0 + 0.25 * (t1 - t0), t1 - 0.25 * (t1 - t0)
    middle = [e for e in borrowed_errors if lo <= e[0] and e[1] <= hi]
    assert middle, "the other thread made no progress in the middle of process()"
    # The other thread's call in flight when calls_before was read was counted before it.
    assert calls_during + 1 >= len(borrowed_errors)
    # Outside process() the book is usable from any thread again.
    assert book.best_bid() is None


def test_package_exports() -> None:
    assert tradecore.__version__ == "0.1.0"
    for name in tradecore.__all__:
        assert hasattr(tradecore, name), name


# --- reused event objects (the per-call pool) -----------------------------------------------


def test_results_kept_by_the_caller_never_change(book: OrderBook) -> None:
    """The book reuses event objects and one-event lists only once nothing else holds them:
    every list, event and tuple the caller keeps stays exactly as it was returned."""
    kept_lists = [book.submit(i, 1, Side.SELL, 100 + i, 5) for i in range(1, 4)]
    kept_event = book.submit(10, 1, Side.SELL, 200, 5)[0]
    sweep = book.submit(20, 2, Side.BUY, 110, 20)  # 3 fills, then 5 lots rest at 110
    again = book.submit(21, 2, Side.BUY, 90, 1)
    assert [tuples(x) for x in kept_lists] == [[acc(i, 100 + i, 5)] for i in range(1, 4)]
    assert kept_event.as_tuple() == acc(10, 200, 5)
    assert tuples(sweep) == [
        acc(20, 110, 20),
        ("FILL", "", 20, 1, 101, 5, 15, 0),
        ("FILL", "", 20, 2, 102, 5, 10, 0),
        ("FILL", "", 20, 3, 103, 5, 5, 0),
    ]
    assert tuples(again) == [acc(21, 90, 1)]
    assert len({id(x) for x in kept_lists}) == 3 and all(x is not again for x in kept_lists)
    # Lists and events released by the caller are reused, and come back correct.
    for i in range(30, 40):
        assert tuples(book.submit(i, 3, Side.BUY, 50, 1)) == [acc(i, 50, 1)]
    assert tuples(sweep)[1] == ("FILL", "", 20, 1, 101, 5, 15, 0)


def test_a_released_list_changed_by_the_caller_is_not_reused_wrongly(book: OrderBook) -> None:
    first = book.submit(1, 1, Side.BUY, 100, 1)
    first.append("junk")
    del first
    assert tuples(book.submit(2, 1, Side.BUY, 100, 1)) == [acc(2, 100, 1)]
    second = book.submit(3, 1, Side.BUY, 100, 1)
    second[0] = "other"
    del second
    third = book.submit(4, 1, Side.BUY, 100, 1)
    assert tuples(third) == [acc(4, 100, 1)] and len(third) == 1
    held = third[0]
    del third
    fourth = book.submit(5, 1, Side.BUY, 100, 1)
    assert held.as_tuple() == acc(4, 100, 1) and tuples(fourth) == [acc(5, 100, 1)]
    assert fourth[0] is not held
    emptied = book.cancel(5)
    emptied.clear()
    del emptied
    assert tuples(book.cancel(4)) == [("CANCELLED", "USER", 4, 0, 100, 1, 0, 0)]


def test_reused_events_hash_compare_and_pickle_like_fresh_ones(book: OrderBook) -> None:
    import pickle

    for i in range(1, 50):
        (event,) = book.submit(i, 1, Side.SELL, 200 + i, 2)
        fresh = Event("ACCEPTED", "", i, 0, 200 + i, 2, 2, 0)
        assert event == fresh and hash(event) == hash(fresh)
        assert pickle.loads(pickle.dumps(event)) == fresh
        assert event.kind is EventKind.ACCEPTED and event.reason is Reason.NONE


def test_per_call_results_do_not_leak() -> None:
    """Over many calls (one-event, several-event and long results) memory stays flat and the
    objects handed out carry no extra references."""
    import sys
    import tracemalloc

    book = OrderBook(capacity=10_000)

    def round_trip(base: int) -> None:
        for i in range(100):  # 100 resting sells, then one buy sweeping them (101 events)
            book.submit(base + i, 1, Side.SELL, 100, 1)
        assert len(book.submit(base + 100, 2, Side.BUY, 100, 100)) == 101
        book.submit(base + 101, 1, Side.SELL, 100, 3)
        assert len(book.submit(base + 102, 2, Side.BUY, 100, 3)) == 2
        book.cancel(base + 101)

    for r in range(20):
        round_trip(1_000 * (r + 1))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for r in range(20, 220):
            round_trip(1_000 * (r + 1))
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64_000, grown
    held_list = book.submit(1, 1, Side.BUY, 50, 1)
    held_event = book.submit(2, 1, Side.BUY, 50, 1)[0]
    for r in range(300, 310):
        round_trip(1_000 * (r + 1))
    # Once replaced in the pool, what the caller holds is referenced by the caller alone.
    assert (sys.getrefcount(held_list), sys.getrefcount(held_event)) == (2, 2)
    assert tuples(held_list) == [acc(1, 50, 1)] and held_event.as_tuple() == acc(2, 50, 1)


def test_a_book_stored_in_its_own_result_is_collected() -> None:
    """The book keeps its last one-event list for reuse; a caller who puts the book into that
    list makes a cycle, which the cyclic GC must still free (the book reports what it holds)."""
    import gc
    import weakref

    class Sub(OrderBook):
        pass

    book = Sub(capacity=10)
    ref = weakref.ref(book)
    events = book.submit(1, 1, Side.BUY, 100, 1)
    events.append(book)
    del book, events
    gc.collect()
    assert ref() is None
