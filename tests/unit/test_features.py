"""Features: hand-computed values, and a naive recomputation over random streams (hypothesis)."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tradecore.enums import Side
from tradecore.strategy.features import BookFeatures, TradeFlow, feature_names
from tradecore.strategy.testing import DictBook

Level = tuple[int, int]


def test_hand_computed_book_features() -> None:
    book = DictBook(bids=[(100, 30), (99, 10), (98, 40)], asks=[(102, 10), (103, 20)])
    f = BookFeatures(levels=2, depth_decay=0.5, momentum_windows=())
    assert f.update(book)
    assert f.valid
    assert (f.bid, f.bid_qty, f.ask, f.ask_qty) == (100, 30, 102, 10)
    assert f.mid2 == 202 and f.mid == 101.0 and f.spread == 2
    # microprice = (100 * 10 + 102 * 30) / 40 = 4060 / 40
    assert f.microprice == 101.5
    assert f.imbalance_1 == (30 - 10) / 40
    # top 2: bids 30 + 10 = 40, asks 10 + 20 = 30 (the third bid level is ignored)
    assert f.imbalance_n == (40 - 30) / 70
    # weights 1, 0.5: bids 30 + 5 = 35, asks 10 + 10 = 20
    assert f.depth_imbalance == pytest.approx((35 - 20) / 55, abs=1e-15)


def test_half_tick_mid_is_exact() -> None:
    f = BookFeatures(levels=1, momentum_windows=())
    f.update(DictBook([(100, 1)], [(101, 1)]))
    assert f.mid2 == 201 and f.mid == 100.5 and f.microprice == 100.5


def test_volatility_and_momentum_by_hand() -> None:
    f = BookFeatures(levels=1, vol_alpha=0.5, momentum_windows=(1, 2))
    mids2 = [200, 202, 198]  # bid = mid2 // 2 - 1 ... built below with spread 2
    for m in mids2:
        f.update(DictBook([(m // 2 - 1, 5)], [(m // 2 + 1, 5)]))
    r1 = 202 / 200 - 1
    r2 = 198 / 202 - 1
    var = 0.5 * (0.5 * 0.0 + 0.5 * r1 * r1) + 0.5 * r2 * r2
    assert f.variance == pytest.approx(var, rel=1e-12)
    assert f.volatility == pytest.approx(math.sqrt(var), rel=1e-12)
    assert f.ret == pytest.approx(r2, rel=1e-12)
    assert f.momentum[0] == pytest.approx(198 / 202 - 1, rel=1e-12)
    assert f.momentum[1] == pytest.approx(198 / 200 - 1, rel=1e-12)


def test_momentum_is_zero_until_the_window_has_history() -> None:
    f = BookFeatures(levels=1, momentum_windows=(3,))
    for m in (100, 110, 120):
        f.update(DictBook([(m, 1)], [(m + 2, 1)]))
        assert f.momentum == [0.0]
    f.update(DictBook([(130, 1)], [(132, 1)]))
    assert f.momentum[0] == pytest.approx(262 / 202 - 1)


def test_empty_side_is_invalid_and_keeps_the_last_values() -> None:
    f = BookFeatures(levels=3, momentum_windows=())
    f.update(DictBook([(100, 3)], [(101, 1)]))
    before = (f.mid2, f.imbalance_n, f.updates)
    assert not f.update(DictBook([(100, 3)], []))
    assert not f.valid
    assert (f.mid2, f.imbalance_n, f.updates) == before
    assert not f.update(DictBook([], []))


def test_reset_starts_a_new_return_series() -> None:
    f = BookFeatures(levels=1, vol_alpha=0.5, momentum_windows=())
    f.update(DictBook([(100, 1)], [(102, 1)]))
    f.update(DictBook([(110, 1)], [(112, 1)]))
    var = f.variance
    assert var > 0
    f.reset()
    assert not f.valid
    f.update(DictBook([(200, 1)], [(202, 1)]))  # a jump across the gap: no return counted
    assert f.ret == 0.0 and f.variance == var and f.valid


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"levels": 0}, "levels"),
        ({"levels": 1.5}, "levels"),
        ({"depth_decay": 0.0}, "depth_decay"),
        ({"depth_decay": 1.5}, "depth_decay"),
        ({"vol_alpha": -0.1}, "vol_alpha"),
        ({"vol_alpha": True}, "vol_alpha"),
        ({"momentum_windows": (5, 0)}, r"momentum_windows\[1\]"),
        ({"momentum_windows": "10"}, "momentum_windows"),
    ],
)
def test_bad_parameters_name_the_parameter(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        BookFeatures(**kwargs)  # type: ignore[arg-type]


def test_vector_layout_matches_feature_names() -> None:
    f = BookFeatures(levels=2, momentum_windows=(1, 3))
    f.update(DictBook([(100, 30), (99, 10)], [(102, 10), (103, 20)]))
    f.update(DictBook([(101, 30), (100, 10)], [(103, 10), (104, 20)]))
    names = feature_names((1, 3))
    row = [float("nan")] * len(names)
    end = f.vector_into(row)
    assert end == len(names) - 1  # the trade flow slot is the caller's
    by_name = dict(zip(names, row, strict=True))
    assert by_name["spread_bps"] == pytest.approx(10_000 * 2 / 102)
    assert by_name["micro_offset_bps"] == pytest.approx(10_000 * (f.microprice - 102) / 102)
    assert by_name["imbalance_n"] == f.imbalance_n
    assert by_name["momentum_1_bps"] == pytest.approx(10_000 * (204 / 202 - 1))
    assert by_name["momentum_3_bps"] == 0.0


# --- naive recomputation over random streams ---------------------------------------------------


def _naive(
    history: list[tuple[list[Level], list[Level]]],
    levels: int,
    decay: float,
    alpha: float,
    windows: tuple[int, ...],
) -> dict[str, object]:
    """Recompute every feature of the last valid book from the whole history, from scratch."""
    valid = [(b, a) for b, a in history if b and a]
    bids, asks = valid[-1]
    bid, bq = bids[0]
    ask, aq = asks[0]
    mids = [b[0][0] + a[0][0] for b, a in valid]
    var = 0.0
    for prev, cur in itertools.pairwise(mids):
        r = cur / prev - 1
        var = (1 - alpha) * var + alpha * r * r
    sb = sum(q for _, q in bids[:levels])
    sa = sum(q for _, q in asks[:levels])
    wb = sum(decay**i * q for i, (_, q) in enumerate(bids[:levels]))
    wa = sum(decay**i * q for i, (_, q) in enumerate(asks[:levels]))
    return {
        "mid2": bid + ask,
        "spread": ask - bid,
        "microprice": (bid * aq + ask * bq) / (bq + aq),
        "imbalance_1": (bq - aq) / (bq + aq),
        "imbalance_n": (sb - sa) / (sb + sa),
        "depth_imbalance": (wb - wa) / (wb + wa),
        "variance": var,
        "momentum": [mids[-1] / mids[-1 - w] - 1 if len(mids) > w else 0.0 for w in windows],
    }


@st.composite
def _books(draw: st.DrawFn) -> tuple[list[Level], list[Level]]:
    mid = draw(st.integers(1_000, 1_100))
    spread = draw(st.integers(1, 5))
    nb = draw(st.integers(0, 6))
    na = draw(st.integers(0, 6))
    bid_gaps = draw(st.lists(st.integers(1, 3), min_size=nb, max_size=nb))
    ask_gaps = draw(st.lists(st.integers(1, 3), min_size=na, max_size=na))
    qty = st.integers(1, 10**6)
    bids: list[Level] = []
    p = mid
    for g in bid_gaps:
        bids.append((p, draw(qty)))
        p -= g
    asks: list[Level] = []
    p = mid + spread
    for g in ask_gaps:
        asks.append((p, draw(qty)))
        p += g
    return bids, asks


@settings(max_examples=150, deadline=None)
@given(
    stream=st.lists(_books(), min_size=1, max_size=40),
    levels=st.integers(1, 7),
    decay=st.sampled_from([0.25, 0.5, 0.9, 1.0]),
    alpha=st.sampled_from([0.01, 0.1, 0.5, 1.0]),
    windows=st.lists(st.integers(1, 12), min_size=0, max_size=3, unique=True).map(tuple),
)
def test_incremental_features_equal_a_naive_recomputation(
    stream: list[tuple[list[Level], list[Level]]],
    levels: int,
    decay: float,
    alpha: float,
    windows: tuple[int, ...],
) -> None:
    f = BookFeatures(levels=levels, depth_decay=decay, vol_alpha=alpha, momentum_windows=windows)
    for i, (bids, asks) in enumerate(stream):
        ok = f.update(DictBook(bids, asks))
        assert ok == bool(bids and asks)
        if not any(b and a for b, a in stream[: i + 1]):
            assert not f.valid
            continue
        want = _naive(stream[: i + 1], levels, decay, alpha, windows)
        assert f.mid2 == want["mid2"]
        assert f.spread == want["spread"]
        for key in ("microprice", "imbalance_1", "imbalance_n", "depth_imbalance", "variance"):
            assert getattr(f, key) == pytest.approx(want[key], rel=1e-9, abs=1e-15), key
        assert f.momentum == pytest.approx(want["momentum"], rel=1e-9, abs=1e-15)


@settings(max_examples=150, deadline=None)
@given(
    trades=st.lists(
        st.tuples(st.integers(0, 50), st.integers(1, 1000), st.sampled_from(list(Side))),
        max_size=60,
    ),
    window=st.integers(1, 200),
    extra=st.integers(0, 300),
)
def test_trade_flow_equals_a_naive_window_sum(
    trades: list[tuple[int, int, Side]], window: int, extra: int
) -> None:
    flow = TradeFlow(window_ns=window)
    ts = 0
    seen: list[tuple[int, int]] = []
    for gap, qty, side in trades:
        ts += gap
        flow.add(ts, qty, side)
        seen.append((ts, qty if side is Side.BUY else -qty))
        for now in (ts, ts + extra):
            inside = [q for t, q in seen if t > now - window]
            buy = sum(q for q in inside if q > 0)
            sell = -sum(q for q in inside if q < 0)
            want = 0.0 if buy + sell == 0 else (buy - sell) / (buy + sell)
            got = flow.imbalance(now)
            assert got == want
            assert (flow.buy_volume, flow.sell_volume) == (buy, sell)
        # querying later evicted trades; the naive side keeps no state, so restart the check
        seen = [(t, q) for t, q in seen if t > ts + extra - window]


def test_trade_flow_hand_example() -> None:
    flow = TradeFlow(window_ns=100)
    assert flow.imbalance(0) == 0.0
    flow.add(10, 30, Side.BUY)
    flow.add(50, 10, Side.SELL)
    assert flow.imbalance(50) == (30 - 10) / 40
    assert flow.imbalance(110) == -1.0  # the buy at 10 left the window (10 <= 110 - 100)
    assert flow.imbalance(150) == 0.0 and len(flow) == 0


def test_dict_book_depth_is_sorted_best_first() -> None:
    book = DictBook([(99, 1), (101, 2), (100, 3)], [(105, 1), (103, 2), (104, 3)])
    assert book.depth(2) == ([(101, 2), (100, 3)], [(103, 2), (104, 3)])
    book.set(Side.BUY, 101, 0)
    book.set(Side.SELL, 102, 7)
    assert book.best_bid() == (100, 3) and book.best_ask() == (102, 7)
    assert book.depth(0) == ([], [])


@settings(max_examples=60, deadline=None)
@given(stream=st.lists(_books(), min_size=1, max_size=25))
def test_features_read_the_rust_l2_book_like_the_python_one(
    stream: list[tuple[list[Level], list[Level]]],
) -> None:
    from tradecore import L2Book

    fast = BookFeatures(levels=4, momentum_windows=(2,))
    slow = BookFeatures(levels=4, momentum_windows=(2,))
    for bids, asks in stream:
        book = L2Book()
        book.apply(bids, asks)
        assert fast.update(book) == slow.update(DictBook(bids, asks))
        for key in ("mid2", "spread", "microprice", "imbalance_n", "depth_imbalance", "variance"):
            assert getattr(fast, key) == getattr(slow, key), key
        assert fast.momentum == slow.momentum


def _old_top_stats(
    book: object, levels: int, weights: tuple[float, ...]
) -> tuple[int, int, int, int, int, int, float, float] | None:
    """The pure-Python computation ``BookFeatures.update`` did before ``L2Book.top_stats``,
    kept verbatim as the reference: ``depth(levels)``, then the two loops."""
    bids, asks = book.depth(levels)  # type: ignore[attr-defined]
    if not bids or not asks:
        return None
    bid, bid_qty = bids[0]
    ask, ask_qty = asks[0]
    sum_b = sum_a = 0
    w_b = w_a = 0.0
    i = 0
    for _p, q in bids:
        sum_b += q
        w_b += weights[i] * q
        i += 1  # noqa: SIM113 (as in the code it copies)
    i = 0
    for _p, q in asks:
        sum_a += q
        w_a += weights[i] * q
        i += 1  # noqa: SIM113
    return bid, bid_qty, ask, ask_qty, sum_b, sum_a, w_b, w_a


def _bits(stats: tuple[object, ...] | None) -> object:
    """Ints as they are, floats by their exact bit pattern (so -0.0 != 0.0, NaN == NaN)."""
    if stats is None:
        return None
    return tuple(x.hex() if isinstance(x, float) else (type(x), x) for x in stats)


def test_l2book_top_stats_is_bit_identical_to_the_python_loop() -> None:
    import random

    from tradecore import L2Book
    from tradecore.strategy.features import top_stats

    rng = random.Random(20261122)
    qty_kinds = [
        lambda: rng.randint(1, 100),
        lambda: rng.randint(1, 10**12),
        lambda: rng.randint(2**53 - 50, 2**53 + 50),  # int -> float rounding (ties to even)
        lambda: rng.randint(1, 2**64 - 1),  # sums beyond u64
    ]
    cases = 0
    for _ in range(3000):
        book = L2Book()
        kind = rng.choice(qty_kinds)
        for side in ("BUY", "SELL"):
            # Empty sides, sides shorter than n, and deep ones.
            for _ in range(rng.choice([0, 0, 1, 2, 3, 5, 8, 40])):
                book.set(side, rng.randint(1, 200) + (0 if side == "BUY" else 200), kind())
        n = rng.randint(1, 12)
        decay = rng.choice([0.5, 0.3, 0.9, 1.0, rng.random() or 0.5])
        weights = tuple(decay**i for i in range(n))
        if rng.random() < 0.3:
            weights = tuple(rng.uniform(0.0, 3.0) for _ in range(n))
        want = _old_top_stats(book, n, weights)
        got = book.top_stats(weights)
        assert _bits(got) == _bits(want), (book.depth(n), weights)
        assert _bits(book.top_stats(list(weights))) == _bits(want)
        assert _bits(top_stats(book, weights)) == _bits(want)  # the generic path, same figures
        cases += want is not None
    assert cases > 1000  # most books have both sides


def test_top_stats_edges() -> None:
    from tradecore import L2Book

    book = L2Book()
    assert book.top_stats((1.0,)) is None
    book.set("BUY", 10, 3)
    assert book.top_stats((1.0,)) is None  # no asks
    book.set("SELL", 11, 2)
    assert book.top_stats(()) is None
    assert book.top_stats((1.0, 0.5)) == (10, 3, 11, 2, 3, 2, 3.0, 2.0)
    with pytest.raises(TypeError, match=r"weights\[1\] must be a float, got int"):
        book.top_stats((1.0, 1))
    with pytest.raises(TypeError, match="weights must be a tuple or list of floats"):
        book.top_stats(iter([1.0]))  # type: ignore[arg-type]


def test_update_takes_the_rust_path_for_l2book_with_the_same_results() -> None:
    import random

    from tradecore import L2Book

    rng = random.Random(7)
    fast = BookFeatures(levels=5, depth_decay=0.7, momentum_windows=(1, 3))
    slow = BookFeatures(levels=5, depth_decay=0.7, momentum_windows=(1, 3))
    rust, py = L2Book(), DictBook()
    for step in range(2000):
        side = rng.choice([Side.BUY, Side.SELL])
        price = rng.randint(90, 100) if side is Side.BUY else rng.randint(101, 111)
        qty = rng.choice([0, 0, rng.randint(1, 10**6)])
        rust.set(side, price, qty)
        py.set(side, price, qty)
        assert fast.update(rust) == slow.update(py), step
        assert {k: getattr(fast, k) for k in BookFeatures.__slots__} == {
            k: getattr(slow, k) for k in BookFeatures.__slots__
        }, step
