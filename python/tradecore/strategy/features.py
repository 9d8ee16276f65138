"""Incremental market features for strategies: one update per book change or trade print.

Owns: :class:`BookFeatures` (everything derived from the L2 book: mid, spread, microprice,
top-of-book, top-N and depth-weighted imbalance, EWMA volatility of mid returns, momentum over
several windows), :class:`TradeFlow` (aggressor-signed volume over a sliding time window from
aggTrades) and :func:`feature_names` / :meth:`BookFeatures.vector`, the fixed order in which a
model (the ONNX strategy) sees them.

Inputs are exact: prices are integer ticks and quantities integer lots straight from the book
(:class:`~tradecore.marketdata.events.BookView`) or the trade. Whatever can stay exact does:
``mid2`` (bid + ask, twice the mid, so a half-tick mid needs no rounding), ``spread``, the
top-N quantity sums and the trade-flow volumes are ``int``. Ratios (imbalances, returns,
volatility, momentum, microprice) are ``float``: they are signals, never prices or quantities
of an order. Strategies turn signals into orders in integer ticks and lots.

Definitions (all "per update" means per valid book update, i.e. both sides non-empty):

* ``mid2 = bid + ask``; ``mid = mid2 / 2``; ``spread = ask - bid`` (ticks).
* ``microprice = (bid * ask_qty + ask * bid_qty) / (bid_qty + ask_qty)`` (ticks).
* ``imbalance_1 = (bid_qty - ask_qty) / (bid_qty + ask_qty)`` at the touch; ``imbalance_n`` the
  same over the summed quantity of the best ``levels`` levels of each side; ``depth_imbalance``
  the same with level ``i`` (0 = best) weighted by ``depth_decay ** i``. All in [-1, 1];
  positive means more resting bids (buying pressure).
* ``ret = mid2 / prev_mid2 - 1`` (simple return of the mid between consecutive valid updates;
  none for the first update or the first one after :meth:`BookFeatures.reset`).
  ``variance = (1 - vol_alpha) * variance + vol_alpha * ret**2`` starting at 0;
  ``volatility = sqrt(variance)`` (a fraction per update, not annualised).
* ``momentum[k] = mid2 / mid2_{w_k updates ago} - 1`` for each window ``w_k``; 0.0 until ``w_k``
  earlier updates exist.
* Trade flow: ``(buy_volume - sell_volume) / (buy_volume + sell_volume)`` over the trades with
  ``ts_ns > now_ns - window_ns``, by aggressor side; 0.0 without trades.

Invariants: after a valid update every field describes that book; after an invalid one (a side
empty) ``valid`` is False and the other fields keep the last valid values; nothing allocates
beyond the momentum ring (fixed size, made at construction) and one float per momentum window.

Cost: :class:`BookFeatures` keeps its state in Rust (``tradecore._core.BookFeaturesCore``, which
it subclasses: the argument checks here, the arithmetic there), and ``update`` is one call with
no Python line: with the Rust book (``tradecore.L2Book``) it reads the touch and the top-N plain
and weighted sums without a Python object per level, plus O(1 + windows) arithmetic; any other
``BookView`` (pure-Python test books, the backtester's views) goes through :func:`top_stats`,
one ``depth(levels)`` call and a Python loop over the levels. Every float is bit for bit what
the same formulas give in Python (the former pure-Python class is the reference model of
tests/unit/test_features_rust.py). Attributes are read-only and each read builds its int or
float. Trade flow is amortised O(1) per trade (each trade enters and leaves the window once).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import cast

from tradecore._core import BookFeaturesCore
from tradecore.enums import Side
from tradecore.marketdata.events import BookView

__all__ = ["BookFeatures", "TradeFlow", "feature_names", "top_stats"]


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


class BookFeatures(BookFeaturesCore):
    """Book-derived features, updated incrementally by :meth:`update` on every book change.

    ``levels``: how many levels per side enter ``imbalance_n`` and ``depth_imbalance``;
    ``depth_decay``: weight ratio between consecutive levels for ``depth_imbalance``;
    ``vol_alpha``: EWMA weight of the newest squared return; ``momentum_windows``: look-backs
    in book updates, each >= 1.

    The state and :meth:`update` / :meth:`reset` live in Rust (:class:`tradecore._core.
    BookFeaturesCore`); the attributes (``bid``, ``ask``, ``bid_qty``, ``ask_qty``, ``mid2``,
    ``mid``, ``spread``, ``microprice``, ``imbalance_1``, ``imbalance_n``, ``depth_imbalance``,
    ``ret``, ``variance``, ``volatility``, ``momentum``, ``valid``, ``updates`` and the
    parameters) are read-only.
    """

    __slots__ = ()

    def __new__(
        cls,
        levels: int = 5,
        depth_decay: float = 0.5,
        vol_alpha: float = 0.05,
        momentum_windows: Sequence[int] = (10, 50),
    ) -> BookFeatures:
        levels = _check_int("levels", levels, 1, 1000)
        decay = _check_unit("depth_decay", depth_decay, zero_ok=False)
        alpha = _check_unit("vol_alpha", vol_alpha, zero_ok=False)
        if isinstance(momentum_windows, str | bytes) or not isinstance(momentum_windows, Sequence):
            raise TypeError("momentum_windows must be a sequence of ints")
        windows = tuple(
            _check_int(f"momentum_windows[{i}]", w, 1, 1_000_000)
            for i, w in enumerate(momentum_windows)
        )
        # The base's __new__ builds an instance of ``cls`` (its stub can only say the base).
        return cast("BookFeatures", super().__new__(cls, levels, decay, alpha, windows))

    def vector_into(self, out: list[float], start: int = 0) -> int:
        """Write the model features (order of :func:`feature_names`) into ``out[start:]``.

        Returns the index after the last one written. Scale-free units, so a model trained on
        one symbol reads another: spread and microprice offset in bps of the mid, volatility
        and momentum in bps.
        """
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


# The state attributes (Rust getters) under the name the pure-Python class listed them: code that
# enumerates a BookFeatures' state (the tests compare two instances so) sees all of it. The
# class's real slots are empty (no per-instance dict); this tuple only names the attributes.
BookFeatures.__slots__ = (  # type: ignore[assignment]
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


class TradeFlow:
    """Aggressor-signed traded volume over the last ``window_ns`` nanoseconds (exact ints).

    Times must not go backwards: a trade or a query at ``t`` evicts every trade with
    ``ts_ns <= t - window_ns`` for good.
    """

    __slots__ = ("_trades", "buy_volume", "sell_volume", "window_ns")

    def __init__(self, window_ns: int = 1_000_000_000) -> None:
        self.window_ns = _check_int("window_ns", window_ns, 1)
        self._trades: deque[tuple[int, int]] = deque()  # (ts_ns, signed qty), oldest first
        self.buy_volume = 0
        self.sell_volume = 0

    def _evict(self, now_ns: int) -> None:
        trades = self._trades
        horizon = now_ns - self.window_ns
        while trades and trades[0][0] <= horizon:
            _ts, q = trades.popleft()
            if q > 0:
                self.buy_volume -= q
            else:
                self.sell_volume += q

    def add(self, ts_ns: int, qty: int, aggressor: Side) -> None:
        """Count one trade print of ``qty`` lots taken by ``aggressor`` at ``ts_ns``."""
        signed = qty if aggressor is Side.BUY else -qty
        self._trades.append((ts_ns, signed))
        if signed > 0:
            self.buy_volume += signed
        else:
            self.sell_volume -= signed
        self._evict(ts_ns)

    def imbalance(self, now_ns: int) -> float:
        """``(buy - sell) / (buy + sell)`` over the window ending at ``now_ns``; 0.0 if empty."""
        self._evict(now_ns)
        total = self.buy_volume + self.sell_volume
        if total == 0:
            return 0.0
        return (self.buy_volume - self.sell_volume) / total

    def __len__(self) -> int:
        return len(self._trades)


def top_stats(
    book: BookView, weights: Sequence[float]
) -> tuple[int, int, int, int, int, int, float, float] | None:
    """What :meth:`tradecore.L2Book.top_stats` computes, for any ``BookView``, from ``depth``.

    ``(bid, bid_qty, ask, ask_qty, sum_bid, sum_ask, weighted_bid, weighted_ask)`` over the
    best ``len(weights)`` levels of each side, or None when a side (or ``weights``) is empty.
    The weighted sums add ``weights[i] * qty`` best first from 0.0, the order the Rust method
    follows, so both give the same floats bit for bit (tests/unit/test_features.py).
    """
    if not weights:
        return None
    bids, asks = book.depth(len(weights))
    if not bids or not asks:
        return None
    sum_b = sum_a = 0
    w_b = w_a = 0.0
    i = 0
    for _p, q in bids:
        sum_b += q
        w_b += weights[i] * q
        i += 1  # noqa: SIM113 (a counter is cheaper than enumerate here)
    i = 0
    for _p, q in asks:
        sum_a += q
        w_a += weights[i] * q
        i += 1  # noqa: SIM113 (as above)
    return bids[0][0], bids[0][1], asks[0][0], asks[0][1], sum_b, sum_a, w_b, w_a


def feature_names(momentum_windows: Sequence[int], *, trade_flow: bool = True) -> list[str]:
    """Names of the model features written by :meth:`BookFeatures.vector_into` (+ trade flow)."""
    names = [
        "spread_bps",
        "micro_offset_bps",
        "imbalance_1",
        "imbalance_n",
        "depth_imbalance",
        "volatility_bps",
    ]
    names += [f"momentum_{w}_bps" for w in momentum_windows]
    if trade_flow:
        names.append("trade_flow")
    return names
