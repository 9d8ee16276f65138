"""Hand-worked scenarios for the pure-Python reference book, so the differential oracle is
itself trusted: every expected event below was worked out on paper from the crate docs' rules,
not produced by running any implementation."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from model.reference_book import ReferenceBook  # noqa: E402


def _book_with_asks(*asks: tuple[int, int, int, int]) -> ReferenceBook:
    """A book holding GTC sell limits given as (order_id, account, price, qty)."""
    book = ReferenceBook()
    for order_id, account, price, qty in asks:
        book.submit(order_id, account, "SELL", price, qty)
    book.check_invariants()
    return book


def test_empty_book() -> None:
    book = ReferenceBook()
    assert len(book) == 0
    assert book.best_bid() is None and book.best_ask() is None
    assert book.depth() == ([], [])
    assert book.orders("BUY") == [] and book.orders("SELL", 100) == []
    assert book.order(1) is None
    assert book.cancel(1) == [("REJECTED", "UNKNOWN_ORDER", 1, 0, 0, 0, 0, 0)]
    assert book.modify(1, 100, 5) == [("REJECTED", "UNKNOWN_ORDER", 1, 0, 100, 5, 0, 0)]
    # A market order into an empty book: accepted at price 0, everything cancelled.
    assert book.submit(2, 1, "BUY", 0, 7, order_type="MARKET") == [
        ("ACCEPTED", "", 2, 0, 0, 7, 7, 0),
        ("CANCELLED", "IOC_REMAINDER", 2, 0, 0, 7, 0, 0),
    ]
    book.check_invariants()


def test_partial_fills_across_levels_then_rest() -> None:
    book = _book_with_asks((1, 1, 101, 5), (2, 2, 101, 3), (3, 1, 102, 4), (4, 2, 104, 9))
    assert book.best_ask() == (101, 8)
    assert book.depth(2) == ([], [(101, 8, 2), (102, 4, 1)])
    events = book.submit(10, 3, "BUY", 103, 15)
    assert events == [
        ("ACCEPTED", "", 10, 0, 103, 15, 15, 0),
        ("FILL", "", 10, 1, 101, 5, 10, 0),
        ("FILL", "", 10, 2, 101, 3, 7, 0),
        ("FILL", "", 10, 3, 102, 4, 3, 0),
    ]
    # The remainder (3) rests at the taker's limit; 104 is out of reach.
    assert book.orders("BUY") == [(10, 3, 103, 3)]
    assert book.orders("SELL") == [(4, 2, 104, 9)]
    assert book.best_bid() == (103, 3) and book.best_ask() == (104, 9)
    assert len(book) == 2
    book.check_invariants()


def test_fifo_and_partial_maker() -> None:
    book = _book_with_asks((1, 1, 100, 5), (2, 2, 100, 5))
    assert book.submit(3, 3, "BUY", 100, 7, tif="IOC") == [
        ("ACCEPTED", "", 3, 0, 100, 7, 7, 0),
        ("FILL", "", 3, 1, 100, 5, 2, 0),
        ("FILL", "", 3, 2, 100, 2, 0, 3),
    ]
    assert book.orders("SELL") == [(2, 2, 100, 3)]
    assert book.order(2) == (2, 2, 100, 3)


@pytest.mark.parametrize(
    ("stp", "expected_tail", "left"),
    [
        (
            "NONE",
            [("FILL", "", 9, 1, 100, 2, 4, 0), ("FILL", "", 9, 2, 100, 3, 1, 0)],
            [(9, 1, 101, 1)],
        ),
        (
            "CANCEL_NEWEST",
            [("CANCELLED", "SELF_TRADE", 9, 0, 101, 6, 0, 0)],
            [(1, 1, 100, 2), (2, 2, 100, 3)],
        ),
        (
            "CANCEL_OLDEST",
            [
                ("CANCELLED", "SELF_TRADE", 1, 0, 100, 2, 0, 0),
                ("FILL", "", 9, 2, 100, 3, 3, 0),
            ],
            [(9, 1, 101, 3)],
        ),
        (
            "CANCEL_BOTH",
            [
                ("CANCELLED", "SELF_TRADE", 1, 0, 100, 2, 0, 0),
                ("CANCELLED", "SELF_TRADE", 9, 0, 101, 6, 0, 0),
            ],
            [(2, 2, 100, 3)],
        ),
    ],
)
def test_self_trade_prevention(
    stp: str, expected_tail: list[tuple[object, ...]], left: list[tuple[int, int, int, int]]
) -> None:
    # Account 1 rests first at 100, account 2 behind it; account 1 then buys 6 at 101.
    book = _book_with_asks((1, 1, 100, 2), (2, 2, 100, 3))
    events = book.submit(9, 1, "BUY", 101, 6, stp=stp)
    assert events == [("ACCEPTED", "", 9, 0, 101, 6, 6, 0), *expected_tail]
    assert book.orders("BUY") + book.orders("SELL") == left
    book.check_invariants()


def test_fok_that_cannot_fill_changes_nothing() -> None:
    book = _book_with_asks((1, 2, 100, 4), (2, 2, 101, 4))
    assert book.submit(5, 3, "BUY", 101, 9, tif="FOK") == [
        ("ACCEPTED", "", 5, 0, 101, 9, 9, 0),
        ("CANCELLED", "FOK_UNFILLED", 5, 0, 101, 9, 0, 0),
    ]
    assert book.orders("SELL") == [(1, 2, 100, 4), (2, 2, 101, 4)]
    # Within the limit only 4 are reachable.
    assert book.submit(6, 3, "BUY", 100, 5, tif="FOK")[-1][1] == "FOK_UNFILLED"
    # STP counts: the own order at 100 would stop a CANCEL_NEWEST taker before filling.
    assert book.submit(7, 2, "BUY", 101, 8, tif="FOK")[-1][1] == "FOK_UNFILLED"
    assert book.orders("SELL") == [(1, 2, 100, 4), (2, 2, 101, 4)]


def test_fok_that_fills_executes_fully() -> None:
    book = _book_with_asks((1, 2, 100, 4), (2, 1, 100, 1), (3, 2, 101, 4))
    # Account 1 with CANCEL_OLDEST: its own maker 2 is cancelled, 8 are still reachable.
    assert book.submit(5, 1, "BUY", 101, 8, tif="FOK", stp="CANCEL_OLDEST") == [
        ("ACCEPTED", "", 5, 0, 101, 8, 8, 0),
        ("FILL", "", 5, 1, 100, 4, 4, 0),
        ("CANCELLED", "SELF_TRADE", 2, 0, 100, 1, 0, 0),
        ("FILL", "", 5, 3, 101, 4, 0, 0),
    ]
    assert len(book) == 0
    # A market FOK has no price limit.
    book = _book_with_asks((1, 2, 100, 4), (3, 2, 150, 4))
    assert book.submit(5, 1, "BUY", 0, 8, order_type="MARKET", tif="FOK")[-1] == (
        "FILL",
        "",
        5,
        3,
        150,
        4,
        0,
        0,
    )


def test_post_only() -> None:
    book = _book_with_asks((1, 2, 100, 4))
    assert book.submit(2, 1, "BUY", 99, 1, tif="IOC", post_only=True) == [
        ("REJECTED", "INVALID_ORDER", 2, 0, 99, 1, 0, 0)
    ]
    assert book.submit(2, 1, "BUY", 5, 1, order_type="MARKET", post_only=True) == [
        ("REJECTED", "INVALID_ORDER", 2, 0, 0, 1, 0, 0)
    ]
    assert book.submit(2, 1, "BUY", 100, 1, post_only=True) == [
        ("REJECTED", "WOULD_CROSS", 2, 0, 100, 1, 0, 0)
    ]
    assert book.submit(2, 1, "BUY", 99, 1, post_only=True) == [("ACCEPTED", "", 2, 0, 99, 1, 1, 0)]
    # A post-only order modified across the spread is rejected and stays as it was.
    assert book.modify(2, 100, 3) == [("REJECTED", "WOULD_CROSS", 2, 0, 100, 3, 0, 0)]
    assert book.order(2) == (2, 1, 99, 1)


def test_modify_keeps_or_loses_priority() -> None:
    book = ReferenceBook()
    for order_id in (1, 2, 3):
        book.submit(order_id, order_id, "BUY", 100, 10)
    # Same price, smaller: in place.
    assert book.modify(1, 100, 4) == [("REPLACED", "", 1, 0, 100, 4, 4, 0)]
    assert [o[0] for o in book.orders("BUY")] == [1, 2, 3]
    # Same price, same qty: still in place.
    assert book.modify(2, 100, 10) == [("REPLACED", "", 2, 0, 100, 10, 10, 0)]
    assert [o[0] for o in book.orders("BUY")] == [1, 2, 3]
    # Same price, larger: back of the queue.
    assert book.modify(1, 100, 11) == [("REPLACED", "", 1, 0, 100, 11, 11, 0)]
    assert book.orders("BUY") == [(2, 2, 100, 10), (3, 3, 100, 10), (1, 1, 100, 11)]
    # Price change: a new level.
    book.modify(3, 99, 1)
    assert book.depth() == ([(100, 21, 2), (99, 1, 1)], [])
    # Validation order.
    assert book.modify(7, 0, 0)[0][1] == "INVALID_QTY"
    assert book.modify(7, 0, 1)[0][1] == "INVALID_PRICE"
    assert book.modify(7, 1, 1)[0][1] == "UNKNOWN_ORDER"
    book.check_invariants()


def test_modify_that_crosses_trades_then_rests() -> None:
    book = _book_with_asks((1, 2, 101, 3), (2, 3, 102, 3))
    book.submit(5, 1, "BUY", 99, 2)
    assert book.modify(5, 101, 5) == [
        ("REPLACED", "", 5, 0, 101, 5, 5, 0),
        ("FILL", "", 5, 1, 101, 3, 2, 0),
    ]
    assert book.orders("BUY") == [(5, 1, 101, 2)]
    # Re-entered with its STP (default CANCEL_NEWEST): against its own account it is cancelled.
    book.submit(6, 1, "SELL", 103, 1)
    book.submit(7, 1, "BUY", 98, 1)
    assert book.modify(7, 103, 1) == [
        ("REPLACED", "", 7, 0, 103, 1, 1, 0),
        ("FILL", "", 7, 2, 102, 1, 0, 2),
    ]
    assert book.modify(5, 103, 9) == [
        ("REPLACED", "", 5, 0, 103, 9, 9, 0),
        ("FILL", "", 5, 2, 102, 2, 7, 0),
        ("CANCELLED", "SELF_TRADE", 5, 0, 103, 7, 0, 0),
    ]
    assert book.orders("BUY") == [] and book.orders("SELL") == [(6, 1, 103, 1)]
    book.check_invariants()


def test_rejections_in_order_and_book_full() -> None:
    book = ReferenceBook(capacity=1)
    assert book.submit(0, 1, "BUY", 0, 0)[0][1] == "INVALID_ORDER"
    assert book.submit(1, 1, "BUY", 0, 0)[0][1] == "INVALID_QTY"
    assert book.submit(1, 1, "BUY", -4, 1) == [("REJECTED", "INVALID_PRICE", 1, 0, -4, 1, 0, 0)]
    assert book.submit(1, 1, "BUY", 100, 1)[0][0] == "ACCEPTED"
    assert book.submit(1, 1, "SELL", 200, 1)[0][1] == "DUPLICATE_ORDER_ID"
    assert book.submit(2, 1, "SELL", 200, 1) == [("REJECTED", "BOOK_FULL", 2, 0, 200, 1, 0, 0)]
    # BOOK_FULL applies to GTC limits only: even one that would trade in full is refused...
    assert book.submit(2, 2, "SELL", 100, 1)[0][1] == "BOOK_FULL"
    # ...while an IOC can take the liquidity and free the slot.
    assert book.submit(2, 2, "SELL", 100, 1, tif="IOC") == [
        ("ACCEPTED", "", 2, 0, 100, 1, 1, 0),
        ("FILL", "", 2, 1, 100, 1, 0, 0),
    ]
    assert book.submit(1, 1, "SELL", 200, 1)[0][0] == "ACCEPTED"  # the id is free again
    assert len(book) == 1
    book.check_invariants()


def test_cancel() -> None:
    book = _book_with_asks((1, 1, 100, 5))
    book.submit(2, 2, "BUY", 100, 2)
    assert book.cancel(1) == [("CANCELLED", "USER", 1, 0, 100, 3, 0, 0)]
    assert book.cancel(1) == [("REJECTED", "UNKNOWN_ORDER", 1, 0, 0, 0, 0, 0)]
    assert len(book) == 0


def test_bad_enum_names_are_errors() -> None:
    book = ReferenceBook()
    with pytest.raises(ValueError, match="side"):
        book.submit(1, 1, "BID", 100, 1)
    with pytest.raises(ValueError, match="stp"):
        book.submit(1, 1, "BUY", 100, 1, stp="OLDEST")
    with pytest.raises(TypeError, match="tif"):
        book.submit(1, 1, "BUY", 100, 1, tif=0)
    with pytest.raises(ValueError, match="capacity"):
        ReferenceBook(capacity=0)
