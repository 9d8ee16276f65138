"""tradecore.L2Book: the PyO3 binding of the core's L2 book and its exact decimal parser.

The parser is checked against ``tradecore.Instrument`` (Decimal arithmetic) on random decimal
strings and grids; the book against a plain dict model on random level streams.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tradecore import Instrument, L2Book, OffGridError, Side
from tradecore.marketdata.errors import FeedFormatError


def test_set_depth_queries() -> None:
    b = L2Book()
    assert b.best_bid() is None and b.best_ask() is None and len(b) == 0
    b.set(Side.BUY, 100, 5)
    b.set("BUY", 101, 7)
    b.set(Side.SELL, 103, 2)
    b.set(Side.SELL, 102, 1)
    assert b.best_bid() == (101, 7)
    assert b.best_ask() == (102, 1)
    assert b.depth(1) == ([(101, 7)], [(102, 1)])
    assert b.depth() == ([(101, 7), (100, 5)], [(102, 1), (103, 2)])
    assert b.qty_at(Side.SELL, 103) == 2
    assert b.qty_at(Side.SELL, 104) == 0
    assert len(b) == 4 and b.levels(Side.BUY) == 2
    b.set(Side.BUY, 101, 0)
    b.set(Side.BUY, 99, 0)  # removing a missing level is a no-op
    assert b.best_bid() == (100, 5) and len(b) == 3
    assert not b.is_crossed()
    b.set(Side.BUY, 102, 1)
    assert b.is_crossed()
    b.clear()
    assert len(b) == 0 and b.depth() == ([], [])


def test_apply_int_levels_is_all_or_nothing() -> None:
    b = L2Book()
    b.apply([(100, 5), (99, 3)], [(101, 2)])
    assert b.depth() == ([(100, 5), (99, 3)], [(101, 2)])
    with pytest.raises(ValueError, match=r"asks\[1\]: qty must not be negative"):
        b.apply([(100, 0)], [(101, 1), (102, -1)])
    assert b.depth() == ([(100, 5), (99, 3)], [(101, 2)])  # nothing applied
    with pytest.raises(TypeError, match="price must be an int"):
        b.apply([(100.5, 1)], [])
    with pytest.raises(FeedFormatError, match=r"bids\[0\] must be a \[price, qty\] pair"):
        b.apply([(1, 2, 3)], [])


def test_decimal_levels_exact() -> None:
    b = L2Book("0.00010000", "1.00000000")
    assert b.tick_size == "0.0001" and b.lot_size == "1"
    assert b.replace_decimal([["0.35210000", "672.00000000"]], [["0.35250000", "3959"]]) == 0
    assert b.depth() == ([(3521, 672)], [(3525, 3959)])
    b.apply_decimal([["0.35210000", "0.00000000"], ["0.3522", "10"]], [])
    assert b.depth() == ([(3522, 10)], [(3525, 3959)])
    b.replace_decimal([], [["1", "1"]])
    assert b.depth() == ([], [(10000, 1)])
    b2 = L2Book(Decimal("1E-8"), Decimal("0.5"))  # scientific Decimal: read exactly
    b2.apply_decimal([["0.00000637", "2.5"]], [])
    assert b2.best_bid() == (637, 5)


def test_decimal_errors_name_value_and_place_and_change_nothing() -> None:
    b = L2Book("0.0001", "1")
    b.apply_decimal([["0.3521", "5"]], [])
    with pytest.raises(OffGridError) as off:
        b.apply_decimal([["0.3520", "1"]], [["0.3530", "1"], ["0.35255", "2"]])
    assert str(off.value) == (
        "asks[1] price 0.35255 is off the grid: it must be a whole multiple of 0.0001"
    )
    assert off.value.value == Decimal("0.35255") and off.value.grid == Decimal("0.0001")
    with pytest.raises(OffGridError, match=r"bids\[0\] qty 1.5 is off the grid"):
        b.apply_decimal([["0.3520", "1.5"]], [])
    for bad in ["", ".", "1e5", "-1", "0x10", " 1", "1.2.3", "NaN"]:
        with pytest.raises(FeedFormatError, match=r"bids\[0\] price .* is not a plain decimal"):
            b.apply_decimal([[bad, "1"]], [])
    with pytest.raises(FeedFormatError, match=r"bids\[0\] qty must be a decimal string, got float"):
        b.apply_decimal([["0.3520", 1.0]], [])
    with pytest.raises(FeedFormatError, match="out of range"):
        b.apply_decimal([["9" * 40, "1"]], [])
    with pytest.raises(FeedFormatError, match=r"bids\[0\] price is beyond 2\*\*63 - 1 ticks"):
        b.apply_decimal([["9" * 20, "1"]], [])
    with pytest.raises(FeedFormatError, match="asks must be a list"):
        b.apply_decimal([], 5)
    assert b.depth() == ([(3521, 5)], [])  # no failed call changed the book
    with pytest.raises(ValueError, match="no decimal grid"):
        L2Book().apply_decimal([], [])
    with pytest.raises(ValueError, match="give both"):
        L2Book("0.01")
    with pytest.raises(ValueError, match="tick_size"):
        L2Book("0", "1")
    with pytest.raises(TypeError, match=r"tick_size must be a str or decimal\.Decimal"):
        L2Book(0.01, "1")  # type: ignore[arg-type]


def test_skip_off_grid_leaves_out_and_counts() -> None:
    b = L2Book("0.0001", "1")
    skipped = b.replace_decimal(
        [["0.3521", "5"], ["0.26", "11979.3"], ["0.25974", "51"]],
        [["0.3525", "1"]],
        skip_off_grid=True,
    )
    assert skipped == 2
    assert b.depth() == ([(3521, 5)], [(3525, 1)])
    with pytest.raises(FeedFormatError):  # syntax errors still raise
        b.apply_decimal([["abc", "1"]], [], skip_off_grid=True)


decimals = st.builds(
    lambda i, f: f"{i}.{f}" if f is not None else str(i),
    st.integers(0, 10**12),
    st.none() | st.text("0123456789", min_size=1, max_size=12),
)
grids = st.sampled_from(["0.00000001", "0.0001", "0.001", "0.5", "0.25", "1", "10", "0.00010000"])


@settings(max_examples=400, deadline=None)
@given(decimals, decimals, grids, grids)
def test_parser_matches_instrument(price: str, qty: str, tick: str, lot: str) -> None:
    """The Rust parser gives exactly what Instrument's Decimal arithmetic gives."""
    inst = Instrument("X", tick_size=tick, lot_size=lot)

    def outcome(convert: Callable[[str], int], text: str) -> int | type[Exception]:
        try:
            return convert(text)
        except OffGridError:
            return OffGridError
        except ValueError:
            return FeedFormatError  # beyond the book's integer range

    p, q = outcome(inst.price_to_ticks, price), outcome(inst.qty_to_lots, qty)
    # The book checks the grid of both values before their range, price first.
    expected: tuple[int, int] | type[Exception]
    if OffGridError in (p, q):
        expected = OffGridError
    elif isinstance(p, int) and isinstance(q, int):
        expected = (p, q)
    else:
        expected = FeedFormatError
    b = L2Book(tick, lot)
    if isinstance(expected, tuple):
        if expected[1] == 0:
            return  # qty 0 removes; nothing to compare
        b.apply_decimal([[price, qty]], [])
        assert b.depth() == ([expected], [])
    else:
        with pytest.raises(expected):
            b.apply_decimal([[price, qty]], [])
        assert len(b) == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 30), st.integers(0, 3)), max_size=200))
def test_book_matches_dict_model(ops: list[tuple[bool, int, int]]) -> None:
    b = L2Book()
    model: dict[bool, dict[int, int]] = {True: {}, False: {}}
    for buy, price, qty in ops:
        b.set(Side.BUY if buy else Side.SELL, price, qty)
        if qty:
            model[buy][price] = qty
        else:
            model[buy].pop(price, None)
    bids = sorted(model[True].items(), reverse=True)
    asks = sorted(model[False].items())
    assert b.depth(1000) == (bids, asks)
    assert len(b) == len(bids) + len(asks)
    assert b.best_bid() == (bids[0] if bids else None)
    assert b.best_ask() == (asks[0] if asks else None)


def test_apply_depth_json_reads_levels_from_the_text() -> None:
    from tradecore._core import binance_scan

    b = L2Book("0.0001", "1")
    text = (
        '{"stream":"nknusdt@depth@100ms","data":{"e":"depthUpdate","E":1633998512568,'
        '"s":"NKNUSDT","U":499869753,"u":499869754,"b":[["0.35170000","4265.00000000"]],'
        '"a":[["0.35290000","10968.00000000"], ["0.35300000", "1"]]}}'
    )
    head = binance_scan(text)
    assert head is not None
    b_at, a_at = text.index('"b":') + 4, text.index('"a":') + 4
    assert head == (1, "NKNUSDT", 1633998512568, 499869753, 499869754, b_at, a_at)
    twin = L2Book("0.0001", "1")
    assert twin.apply_depth_at(text, b_at, a_at) == 0
    assert b.apply_depth_json(text) == 0
    assert twin.depth() == b.depth()
    assert b.depth() == ([(3517, 4265)], [(3529, 10968), (3530, 1)])
    off = text.replace("0.35300000", "0.35305")
    with pytest.raises(OffGridError, match=r"^asks\[1\] price 0\.35305 is off the grid"):
        b.apply_depth_json(off)
    assert b.apply_depth_json(off, skip_off_grid=True) == 1
    bad = text.replace('"4265.00000000"', '"42x5"')
    with pytest.raises(FeedFormatError, match=r'bids\[0\] qty "42x5" is not a plain decimal'):
        b.apply_depth_json(bad)
    with pytest.raises(FeedFormatError, match="not a depth message the fast path reads"):
        b.apply_depth_json('{"stream":"x@depth","data":{"b":[["1"]],"a":[]}}')
    assert b.depth() == ([(3517, 4265)], [(3529, 10968), (3530, 1)])  # failed calls: no change
    assert binance_scan('{"stream":"x@kline_1m","data":{"k":{}}}') == (0, "x@kline_1m")
    assert binance_scan("{") is None


def test_replace_decimal_equals_clear_and_apply_in_listed_order() -> None:
    # replace_decimal builds each side with one sort; the reference is the old way: clear,
    # then set every level in the order listed (last listed wins, zero removes). Levels come
    # best first, worst first and shuffled, with repeated prices, zeros and off-grid levels.
    import random

    rng = random.Random(11)
    for trial in range(300):
        levels = {
            side: [
                [f"{rng.randint(1, 80) / 100:.2f}", rng.choice(["0", "1", "2.5", "7", "1.0005"])]
                for _ in range(rng.randint(0, 60))
            ]
            for side in ("b", "a")
        }
        order = trial % 3
        for side in levels:
            if order == 0:
                levels[side].sort(key=lambda lv: -float(lv[0]))
            elif order == 1:
                levels[side].sort(key=lambda lv: float(lv[0]))
        fast, slow = L2Book("0.01", "0.5"), L2Book("0.01", "0.5")
        fast.apply_decimal([["0.5", "1"]], [["0.9", "1"]])  # replaced entirely
        got = fast.replace_decimal(levels["b"], levels["a"], skip_off_grid=True)
        want = slow.apply_decimal(levels["b"], levels["a"], skip_off_grid=True)
        assert got == want
        assert fast.depth(1000) == slow.depth(1000)


def test_touch_is_both_best_prices_or_none() -> None:
    book = L2Book()
    assert book.touch() is None  # empty
    book.set(Side.BUY, 100, 5)
    assert book.touch() is None  # one side only
    book.set(Side.SELL, 103, 2)
    book.set(Side.BUY, 101, 1)
    book.set(Side.SELL, 102, 7)
    assert book.touch() == (101, 102)
    best_bid, best_ask = book.best_bid(), book.best_ask()
    assert best_bid is not None and best_ask is not None
    assert book.touch() == (best_bid[0], best_ask[0])
    book.set(Side.SELL, 102, 0)  # the best ask leaves: the next one is the touch
    assert book.touch() == (101, 103)
    book.set(Side.SELL, 103, 0)
    assert book.touch() is None  # the ask side is empty again
