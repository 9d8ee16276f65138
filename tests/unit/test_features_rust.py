"""BookFeatures in Rust against the former pure-Python class, kept here as the reference model.

Every attribute is compared after every update, floats by their bit pattern (so -0.0 != 0.0 and
a NaN equals itself), over random operation streams on an ``L2Book`` (the Rust path) and on a
pure-Python book (the ``top_stats`` path): level changes, cleared and one-sided books, resets,
momentum windows, 1..8 levels, quantities and prices from small to 64 bits (where Python's int
division no longer goes through floats), and foreign books with 120-bit ints, zero and negative
quantities (the errors must be Python's, with the same partial state).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tradecore import L2Book
from tradecore._core import BookFeaturesCore
from tradecore.enums import Side
from tradecore.marketdata.events import BookView
from tradecore.strategy.features import BookFeatures, feature_names, top_stats
from tradecore.strategy.testing import DictBook

Level = tuple[int, int]


# --- the reference: the pure-Python BookFeatures as it was before the Rust class -------------


def _check_int(name: str, value: object, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < lo or (hi is not None and value > hi):
        bound = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def _check_unit(name: str, value: object, *, zero_ok: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    x = float(value)
    if not (0.0 <= x <= 1.0) or (x == 0.0 and not zero_ok) or math.isnan(x):
        bound = "[0, 1]" if zero_ok else "(0, 1]"
        raise ValueError(f"{name} must be in {bound}, got {value}")
    return x


class RefBookFeatures:
    """The former ``tradecore.strategy.features.BookFeatures``, statement for statement."""

    __slots__ = (
        "_has_prev",
        "_ring",
        "_ring_pos",
        "_ring_size",
        "_weights",
        "ask",
        "ask_qty",
        "bid",
        "bid_qty",
        "depth_decay",
        "depth_imbalance",
        "imbalance_1",
        "imbalance_n",
        "levels",
        "microprice",
        "mid2",
        "momentum",
        "momentum_windows",
        "ret",
        "spread",
        "updates",
        "valid",
        "variance",
        "vol_alpha",
    )

    def __init__(
        self,
        levels: int = 5,
        depth_decay: float = 0.5,
        vol_alpha: float = 0.05,
        momentum_windows: Sequence[int] = (10, 50),
    ) -> None:
        self.levels = _check_int("levels", levels, 1, 1000)
        self.depth_decay = _check_unit("depth_decay", depth_decay, zero_ok=False)
        self.vol_alpha = _check_unit("vol_alpha", vol_alpha, zero_ok=False)
        if isinstance(momentum_windows, str | bytes) or not isinstance(momentum_windows, Sequence):
            raise TypeError("momentum_windows must be a sequence of ints")
        self.momentum_windows = tuple(
            _check_int(f"momentum_windows[{i}]", w, 1, 1_000_000)
            for i, w in enumerate(momentum_windows)
        )
        self._weights = tuple(self.depth_decay**i for i in range(self.levels))
        self._ring_size = max(self.momentum_windows, default=0) + 1
        self._ring = [0] * self._ring_size
        self._ring_pos = 0
        self.momentum = [0.0] * len(self.momentum_windows)
        self.valid = False
        self.updates = 0
        self.bid = self.ask = self.bid_qty = self.ask_qty = 0
        self.mid2 = self.spread = 0
        self.microprice = 0.0
        self.imbalance_1 = self.imbalance_n = self.depth_imbalance = 0.0
        self.ret = 0.0
        self.variance = 0.0
        self._has_prev = False

    @property
    def mid(self) -> float:
        return self.mid2 / 2

    @property
    def volatility(self) -> float:
        return math.sqrt(self.variance)

    def reset(self) -> None:
        self.valid = False
        self._has_prev = False

    def update(self, book: BookView) -> bool:
        if type(book) is L2Book:
            stats = book.top_stats(self._weights)
        else:
            stats = top_stats(book, self._weights)
        if stats is None:
            self.valid = False
            return False
        bid, bid_qty, ask, ask_qty, sum_b, sum_a, w_b, w_a = stats
        top = bid_qty + ask_qty
        mid2 = bid + ask
        if top <= 0 or mid2 <= 0:
            self.valid = False
            return False
        self.bid = bid
        self.ask = ask
        self.bid_qty = bid_qty
        self.ask_qty = ask_qty
        self.spread = ask - bid
        self.microprice = (bid * ask_qty + ask * bid_qty) / top
        self.imbalance_1 = (bid_qty - ask_qty) / top
        self.imbalance_n = (sum_b - sum_a) / (sum_b + sum_a)
        self.depth_imbalance = (w_b - w_a) / (w_b + w_a)
        if self._has_prev:
            ret = mid2 / self.mid2 - 1.0
            self.ret = ret
            alpha = self.vol_alpha
            self.variance = (1.0 - alpha) * self.variance + alpha * ret * ret
        else:
            self.ret = 0.0
            self._has_prev = True
        self.mid2 = mid2
        n = self.updates + 1
        self.updates = n
        windows = self.momentum_windows
        if windows:
            ring = self._ring
            size = self._ring_size
            pos = self._ring_pos
            ring[pos] = mid2
            momentum = self.momentum
            for k, w in enumerate(windows):
                if n > w:
                    momentum[k] = mid2 / ring[(pos - w) % size] - 1.0
            self._ring_pos = (pos + 1) % size
        self.valid = True
        return True

    def vector_into(self, out: list[float], start: int = 0) -> int:
        mid2 = self.mid2 or 1
        out[start] = 20_000.0 * self.spread / mid2
        out[start + 1] = 10_000.0 * (2.0 * self.microprice - self.mid2) / mid2
        out[start + 2] = self.imbalance_1
        out[start + 3] = self.imbalance_n
        out[start + 4] = self.depth_imbalance
        out[start + 5] = 10_000.0 * math.sqrt(self.variance)
        i = start + 6
        for m in self.momentum:
            out[i] = 10_000.0 * m
            i += 1
        return i


# --- comparison helpers --------------------------------------------------------------------

ATTRS = (*RefBookFeatures.__slots__, "mid", "volatility")


def _bits(x: object) -> object:
    """Exact identity of a value: floats by bit pattern, ints and bools with their type."""
    if isinstance(x, float):
        return ("float", x.hex())
    if isinstance(x, list | tuple):
        return (type(x).__name__, tuple(_bits(v) for v in x))
    return (type(x).__name__, x)


def _state(f: object) -> dict[str, object]:
    return {k: _bits(getattr(f, k)) for k in ATTRS}


def _outcome(f: BookFeatures | RefBookFeatures, book: object) -> object:
    """What ``update`` returned, or the exception it raised (type and message)."""
    try:
        return f.update(book)  # type: ignore[arg-type]
    except Exception as e:
        return (type(e).__name__, str(e))


class RawBook:
    """A foreign ``BookView`` that returns its levels as given: any ints, zero or negative
    quantities, unsorted. Only ``depth`` is used by the features."""

    def __init__(self, bids: list[Level], asks: list[Level]) -> None:
        self.bids = bids
        self.asks = asks

    def best_bid(self) -> Level | None:
        return self.bids[0] if self.bids else None

    def best_ask(self) -> Level | None:
        return self.asks[0] if self.asks else None

    def depth(self, n: int = 10) -> tuple[list[Level], list[Level]]:
        return self.bids[:n], self.asks[:n]


# --- random streams on L2Book and on a pure-Python book -----------------------------------------

_CENTERS = [1_000, 3, -400, 2**40, 2**62]
_QTY = [
    st.integers(1, 100),
    st.integers(1, 10**6),
    st.integers(2**53 - 50, 2**53 + 50),
    st.integers(1, 2**64 - 1),
]


@st.composite
def _streams(draw: st.DrawFn) -> tuple[dict[str, object], list[tuple[Any, ...]]]:
    params = {
        "levels": draw(st.integers(1, 8)),
        "depth_decay": draw(
            st.one_of(
                st.sampled_from([0.5, 1.0, 0.1]),
                st.floats(1e-3, 1.0, exclude_min=True),
            )
        ),
        "vol_alpha": draw(st.one_of(st.sampled_from([0.05, 1.0]), st.floats(1e-6, 1.0))),
        "momentum_windows": tuple(draw(st.lists(st.integers(1, 12), max_size=4))),
    }
    center = draw(st.sampled_from(_CENTERS))
    qty = draw(st.sampled_from(_QTY))
    op = st.one_of(
        st.tuples(
            st.just("set"),
            st.sampled_from([Side.BUY, Side.SELL]),
            st.integers(1, 12),
            st.one_of(st.just(0), qty),
        ),
        st.tuples(st.just("reset")),
        st.tuples(st.just("clear"), st.sampled_from([None, Side.BUY, Side.SELL])),
        st.tuples(st.just("move"), st.integers(-30, 30)),
    )
    ops = draw(st.lists(op, min_size=1, max_size=60))
    return {"center": center, **params}, ops


@settings(max_examples=300, deadline=None)
@given(case=_streams())
def test_rust_features_equal_the_python_reference_after_every_update(
    case: tuple[dict[str, object], list[tuple[Any, ...]]],
) -> None:
    params, ops = case
    center = params.pop("center")
    assert isinstance(center, int)
    ref = RefBookFeatures(**params)  # type: ignore[arg-type]
    fast = BookFeatures(**params)  # type: ignore[arg-type]
    generic = BookFeatures(**params)  # type: ignore[arg-type]
    top = BookFeatures(**params)  # type: ignore[arg-type]  # driven through update_top
    assert _state(fast) == _state(ref) == _state(generic) == _state(top)
    rust, py = L2Book(), DictBook()
    levels: dict[tuple[Side, int], int] = {}
    for op in ops:
        if op[0] == "reset":
            ref.reset()
            fast.reset()
            generic.reset()
            top.reset()
        else:
            if op[0] == "set":
                _, side, offset, q = op
                assert isinstance(side, Side) and isinstance(offset, int) and isinstance(q, int)
                # Bids at or below the center, asks above it: the book never crosses.
                price = center - offset + 1 if side is Side.BUY else center + offset
                levels[(side, price)] = q
            elif op[0] == "clear":
                levels = {k: v for k, v in levels.items() if op[1] not in (None, k[0])}
            else:  # move: the whole book shifts (returns, momentum)
                shift = op[1]
                assert isinstance(shift, int)
                center += shift
                levels = {(s, p + shift): q for (s, p), q in levels.items()}
            rust.clear()
            py.clear()
            for (s, p), q in levels.items():
                if q:
                    rust.set(s, p, q)
                    py.set(s, p, q)
            want = _outcome(ref, rust)
            assert _outcome(fast, rust) == want
            assert _outcome(generic, py) == want
            # update_top: the same update, and the attributes it reads in one tuple.
            try:
                got: object = top.update_top(rust)
            except Exception as e:
                got = (type(e).__name__, str(e))
            if want is True:
                read = ("bid", "ask", "spread", "imbalance_1", "imbalance_n", "depth_imbalance")
                assert _bits(got) == _bits(tuple(getattr(ref, n) for n in read)), op
            else:
                assert got == (None if want is False else want), op
        want_state = _state(ref)
        assert _state(fast) == want_state, op
        assert _state(generic) == want_state, op
        assert _state(top) == want_state, op
    names = feature_names(fast.momentum_windows)
    rows = [[0.5] * (len(names) + 2) for _ in range(2)]
    assert fast.vector_into(rows[0], 1) == ref.vector_into(rows[1], 1)
    assert _bits(rows[0]) == _bits(rows[1])


_BIG = st.integers(-(2**120), 2**120)


@st.composite
def _raw_books(draw: st.DrawFn) -> RawBook:
    small = st.integers(-5, 10**6)
    ints = draw(st.sampled_from([small, _BIG, st.integers(0, 2**64)]))
    side = st.lists(st.tuples(ints, ints), max_size=8)
    return RawBook(draw(side), draw(side))


@settings(max_examples=300, deadline=None)
@given(
    books=st.lists(st.one_of(_raw_books(), st.just(None)), min_size=1, max_size=20),
    levels=st.integers(1, 8),
    windows=st.lists(st.integers(1, 5), max_size=3),
)
def test_foreign_books_with_any_ints_behave_like_python(
    books: list[RawBook | None], levels: int, windows: list[int]
) -> None:
    """Zero and negative quantities, huge ints (Python's int division and overflow), unsorted
    levels: same results, same exceptions, same partial state when one is raised."""
    ref = RefBookFeatures(levels=levels, vol_alpha=0.3, momentum_windows=windows)
    fast = BookFeatures(levels=levels, vol_alpha=0.3, momentum_windows=windows)
    for book in books:
        if book is None:
            ref.reset()
            fast.reset()
        else:
            assert _outcome(fast, book) == _outcome(ref, book)
        assert _state(fast) == _state(ref)


def test_python_errors_keep_the_partial_state() -> None:
    ref = RefBookFeatures(levels=2, momentum_windows=(1,))
    fast = BookFeatures(levels=2, momentum_windows=(1,))
    for f in (ref, fast):
        assert f.update(RawBook([(100, 4)], [(102, 4)]))
    # Quantities that cancel out: the int division by zero comes after microprice.
    cancel = RawBook([(101, 5), (99, -5)], [(103, 3), (104, -3)])
    assert (
        _outcome(fast, cancel)
        == _outcome(ref, cancel)
        == (
            "ZeroDivisionError",
            "division by zero",
        )
    )
    assert _state(fast) == _state(ref)
    assert fast.bid == 101 and fast.mid2 == 202 and fast.updates == 1
    # Weighted sums that cancel: the float division by zero.
    weighted = RawBook([(100, 1), (99, -2)], [(101, 1), (102, -2)])
    assert (
        _outcome(fast, weighted)
        == _outcome(ref, weighted)
        == (
            "ZeroDivisionError",
            "float division by zero",
        )
    )
    assert _state(fast) == _state(ref)
    assert fast.imbalance_n == 0.0 and math.copysign(1.0, fast.imbalance_n) == -1.0


def test_ints_beyond_128_bits_are_an_overflow_error_naming_the_value() -> None:
    """The one documented difference from the pure-Python class: a foreign book's int must fit
    in 128 bits (an L2Book's are 64-bit); the state is left as it was."""
    fast = BookFeatures(levels=1, momentum_windows=())
    assert fast.update(RawBook([(100, 1)], [(101, 2)]))
    before = _state(fast)
    with pytest.raises(OverflowError, match="best bid quantity does not fit in 128 bits"):
        fast.update(RawBook([(100, 2**130)], [(101, 2)]))
    assert _state(fast) == before
    with pytest.raises(OverflowError, match="best ask price does not fit in 128 bits"):
        fast.update(RawBook([(100, 1)], [(-(2**140), 2)]))
    assert _state(fast) == before


def test_non_int_levels_are_a_type_error() -> None:
    fast = BookFeatures(levels=1, momentum_windows=())
    with pytest.raises(TypeError):
        fast.update(RawBook([(100.0, 1)], [(101, 2)]))  # type: ignore[list-item]
    assert not fast.valid and fast.updates == 0


# --- the API around update ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"levels": 0},
        {"levels": 1001},
        {"levels": 1.5},
        {"levels": True},
        {"depth_decay": 0.0},
        {"depth_decay": 1.5},
        {"depth_decay": float("nan")},
        {"depth_decay": "0.5"},
        {"vol_alpha": -0.1},
        {"vol_alpha": True},
        {"momentum_windows": (5, 0)},
        {"momentum_windows": (5, 1_000_001)},
        {"momentum_windows": (5, 2.0)},
        {"momentum_windows": "10"},
        {"momentum_windows": 10},
    ],
)
def test_bad_parameters_raise_what_the_python_class_raised(kwargs: dict[str, object]) -> None:
    with pytest.raises((TypeError, ValueError)) as want:
        RefBookFeatures(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(want.type, match=f"^{__import__('re').escape(str(want.value))}$"):
        BookFeatures(**kwargs)  # type: ignore[arg-type]


def test_defaults_and_parameters_read_back() -> None:
    f = BookFeatures()
    ref = RefBookFeatures()
    assert _state(f) == _state(ref)
    assert (f.levels, f.depth_decay, f.vol_alpha, f.momentum_windows) == (5, 0.5, 0.05, (10, 50))
    g = BookFeatures(levels=3, depth_decay=1, vol_alpha=1, momentum_windows=[2, 1])
    assert type(g.depth_decay) is float and g.momentum_windows == (2, 1)
    assert _state(g) == _state(RefBookFeatures(3, 1, 1, [2, 1]))


def test_the_rust_base_checks_its_own_arguments() -> None:
    """Called directly (not through BookFeatures), bad values are errors, never a crash."""
    with pytest.raises(ValueError, match="levels"):
        BookFeaturesCore(0, 0.5, 0.1, ())
    with pytest.raises(ValueError, match="depth_decay"):
        BookFeaturesCore(2, 0.0, 0.1, ())
    with pytest.raises(ValueError, match="vol_alpha"):
        BookFeaturesCore(2, 0.5, float("nan"), ())
    with pytest.raises(ValueError, match=r"momentum_windows\[0\]"):
        BookFeaturesCore(2, 0.5, 0.1, (0,))
    with pytest.raises(OverflowError):
        BookFeaturesCore(2, 0.5, 0.1, (-1,))
    core = BookFeaturesCore(2, 0.5, 0.1, (3,))
    book = L2Book()
    book.apply([(10, 1)], [(12, 3)])
    assert core.update(book) and core.mid2 == 22


def test_attributes_are_read_only_and_momentum_is_one_list() -> None:
    f = BookFeatures(levels=1, momentum_windows=(1,))
    m = f.momentum
    for v in (100, 101):
        f.update(DictBook([(v, 1)], [(v + 2, 1)]))
    assert f.momentum is m and m == [(204 / 202) - 1.0]
    with pytest.raises(AttributeError):
        f.bid = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        f.extra = 1  # type: ignore[attr-defined]


def test_update_of_something_that_is_not_a_book_is_python_s_error() -> None:
    f = BookFeatures(levels=1, momentum_windows=())
    ref = RefBookFeatures(levels=1, momentum_windows=())
    assert _outcome(f, 42) == _outcome(ref, 42)
    assert _outcome(f, None) == _outcome(ref, None)


def test_64_bit_prices_and_quantities_divide_like_python_ints() -> None:
    """Products beyond i128 (microprice), ints beyond 2**53 (every division): Python's int
    division, correctly rounded, not a float division of rounded operands."""
    top = 2**64 - 1
    ref = RefBookFeatures(levels=2, momentum_windows=(1,))
    fast = BookFeatures(levels=2, momentum_windows=(1,))
    for bid, bq, aq in [(2**62, top, top - 2), (2**62 + 7, top - 5, 3), (2**53 + 1, 2**53 + 3, 1)]:
        book = L2Book()
        book.apply([(bid, bq), (bid - 1, top)], [(bid + 3, aq)])
        assert fast.update(book) and ref.update(book)
        assert _state(fast) == _state(ref)
        assert fast.microprice == (bid * aq + (bid + 3) * bq) / (bq + aq)
    # Two mids whose quotient float(a) / float(b) gets wrong in the last bit.
    a, b = 5534025776941066067, 7345404908996490429
    assert a / b != float(a) / float(b)
    for mid2 in (b, a):
        book = L2Book()
        book.apply([(mid2 // 2 - 1, 5)], [(mid2 - (mid2 // 2 - 1), 7)])
        assert fast.update(book) and ref.update(book)
    assert fast.momentum[0] == a / b - 1.0 != float(a) / float(b) - 1.0
    assert _state(fast) == _state(ref)
