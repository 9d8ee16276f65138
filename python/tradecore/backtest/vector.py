"""Vectorized backtests of the price-only built-ins (moving-average cross, mean reversion) and
parameter sweeps over them, on a local process pool or a Dask cluster.

Owns :func:`run` (one parameter set, every detail: positions, trades, orders, equity, costs),
:func:`evaluate` (one parameter set, statistics only, the sweep's unit of work) and
:func:`sweep` (a grid or a random search; one table ranked by a metric, with a progress bar).

**Same rules as the strategies.** The signals are the exact rules of
:class:`~tradecore.strategy.ma_cross.MaCrossStrategy` and
:class:`~tradecore.strategy.mean_reversion.MeanReversionStrategy`, sample by sample (one sample
per bar, ``mid2 = bid + ask``): integer running sums, the exact cross test
``fast_sum * slow - slow_sum * fast``, the integer variance ``n * Q - S**2`` and the same float
division and square root for ``z``, the same "regime found when the window fills is not a
cross" and "keep the target between the bands". Then the order routine of
:meth:`~tradecore.strategy.base.TargetStrategy.trade_toward` in taker mode: the target is
clamped to ``max_position`` (0 for shorts if ``allow_short`` is false); at each call one order
of at most ``order_qty`` lots toward the target, unless the ``cooldown_ms`` since the last
order has not passed; a buy at ``ask + slippage_ticks``, a sell at ``max(bid - slippage, 1)``.
Sums are taken over ``mid2 - mid2[0]``: every test above is exact and shift-invariant, so the
results are bit-identical to the strategy's, with int64 headroom (checked, else ValueError).

**Idealized fills.** Each order fills completely at its limit price in the bar it is sent
(the IOC is assumed to find the displayed liquidity), as a taker; fees are the paper broker's
(:class:`~tradecore.backtest.costs.CostModel`). A test drives the real strategy classes with an
in-memory context that fills the same way and checks identical trades and P&L.

**Accounting** (in tick-lots inside the kernels, money in the outputs): cash and position per
fill, equity marked at the mid after every bar, returns on a fixed ``capital`` (default: the
notional of ``max_position`` at the first mid). Statistics as in
:mod:`tradecore.backtest.stats`, computed per segment between fills without materializing
per-bar arrays (a test checks the two agree, and another a per-bar reference loop).

**How a parameter set runs** (``Prepared`` holds what all sets share: prefix sums of
``mid2 - mid2[0]`` and of its square, one 32-byte record per bar; scratch buffers are reused):

1. signal bitsets, one vectorized pass: for the cross, the sign of the cross test per bar
   (two bits); for mean reversion, "call", ``z >= entry``, ``z <= -entry``, ``|z| <= exit``
   from the window's z-scores, which sets with the same window share;
2. events: the strategy's state machine visits only bars where something can happen (a sign
   against the regime, a target change, a pending order whose cooldown passed), skipping 64
   bars per bitset word; it yields (bar, signed qty) per fill;
3. prices: one gather pass over the fills (bid/ask/mid of each fill bar, one cache line each);
4. statistics: per segment between fills, O(1) for flat segments; for open positions exact
   integer sums of squared moves and a block-wise min/max of the mid, so a block whose best
   equity stays under the running peak costs one comparison instead of a bar-by-bar walk.

Cost per set over 1M bars: about 0.2-0.5 ms of vectorized passes plus tens of ns per fill
(measured with ``bench/bench_sweep.py``, which records CPU time per set as well as wall time).
Sweeps prepare the bars once; forked workers share them copy-on-write, batches of sets go out
as tasks and come back as raw statistics vectors.
"""

from __future__ import annotations

import itertools
import math
import os
import random as _random
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros

from tradecore.backtest.costs import CostModel
from tradecore.data.synthetic import Bars
from tradecore.errors import ConfigError, UsageError

__all__ = [
    "METRICS",
    "STRATEGIES",
    "Bars",
    "VectorResult",
    "evaluate",
    "expand_grid",
    "random_params",
    "run",
    "sweep",
]

_I64 = npt.NDArray[np.int64]
_F64 = npt.NDArray[np.float64]
NOCALL: Final = np.iinfo(np.int64).min
_LIMIT: Final = 2**62

#: Strategy kinds the vectorized engine implements, with their own parameters' defaults.
STRATEGIES: Final[Mapping[str, Mapping[str, object]]] = {
    "ma_cross": {"fast": 10, "slow": 50},
    "mean_reversion": {"window": 50, "entry_z": 2.0, "exit_z": 0.5},
}
_COMMON: Final[Mapping[str, object]] = {
    "order_qty": 1,
    "max_position": 10,
    "slippage_ticks": 0,
    "cooldown_ms": 0,
    "allow_short": True,
}
#: Statistics of a run, in the order of the kernel's output vector; and whether higher is better.
METRICS: Final[Mapping[str, bool]] = {
    "total_return": True,
    "sharpe": True,
    "sortino": True,
    "max_drawdown": False,
    "max_drawdown_bars": False,
    "win_rate": True,
    "profit_factor": True,
    "trades": True,
    "turnover": False,
    "fees": False,
    "pnl": True,
    "final_position": True,
}
_N_STATS: Final = len(METRICS)


# ----------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Params:
    """One checked parameter set (see :func:`check_params`)."""

    kind: str
    values: Mapping[str, object]
    order_qty: int
    max_position: int
    slippage_ticks: int
    cooldown_ns: int
    allow_short: bool


def check_params(kind: str, params: Mapping[str, object]) -> Params:
    """Validate ``params`` exactly as the strategy class would (through its constructor).

    Raises :class:`~tradecore.errors.ConfigError` with the strategy's own message; ``mode``
    other than ``taker`` and ``sample_ms`` other than 0 are refused (the vectorized engine
    samples once per bar and fills as a taker).
    """
    if kind not in STRATEGIES:
        raise ConfigError(
            f"vectorized engine: unknown strategy {kind!r} (known: {', '.join(STRATEGIES)})"
        )
    if params.get("mode", "taker") != "taker":
        raise ConfigError(f"vectorized {kind}: mode must be 'taker' (idealized taker fills)")
    if params.get("sample_ms", 0) not in (0, None):
        raise ConfigError(f"vectorized {kind}: sample_ms must be 0 (one sample per bar)")
    from tradecore.strategy.registry import strategy_class

    full = {**_COMMON, **STRATEGIES[kind], "symbol": "X", **params}
    full = {k: v for k, v in full.items() if k not in ("mode", "sample_ms")}
    cls: Any = strategy_class(kind)
    s = cls(name=kind, **full)  # the strategy's own validation and messages
    own = {k: full[k] for k in STRATEGIES[kind]}
    return Params(
        kind,
        own,
        s.order_qty,
        s.max_position,
        s.slippage_ticks,
        s.cooldown_ns,
        s.allow_short,
    )


# ----------------------------------------------------------------------------- kernels
#
# Indexing rule for speed: every hot loop reads views (``a = cs[slow:]``) through a ``range``
# index that starts at 0, so numba can prove the index non-negative and drops its negative-index
# wrap-around branch; with that branch a loop does not vectorize (measured: 5 ms against 0.2 ms
# per million bars for the cross test).

_BLOCK: Final = 256  # bars per min/max block of the drawdown pass
_SHORT: Final = 24  # segments shorter than this skip the block loops (no slicing)
#: Columns of the fills buffer: bar, signed qty, price, x at the bar, x at the bar before.
_FILL_COLS: Final = 5


@njit(cache=True, nogil=True, error_model="numpy")
def _ma_bits(cs: _I64, n: int, fast: int, slow: int, up: _I64, down: _I64) -> int:
    """Bit ``j`` of ``up`` / ``down``: the cross test ``fast_sum * slow - slow_sum * fast`` at
    bar ``j + slow - 1`` is > 0 / < 0. Returns the number of bars tested (``n - slow + 1``)."""
    m = n - slow + 1
    a = cs[slow:]
    b = cs[slow - fast :]
    c = cs[0:]
    full = m >> 6 if m > 0 else 0
    k = 0
    for w in range(full):
        pw = 0
        nw = 0
        for t in range(64):
            d = (a[k + t] - b[k + t]) * slow - (a[k + t] - c[k + t]) * fast
            pw |= (((-d) >> 63) & 1) << t
            nw |= ((d >> 63) & 1) << t
        up[w] = pw
        down[w] = nw
        k += 64
    if m > k:
        pw = 0
        nw = 0
        for t in range(m - k):
            d = (a[k + t] - b[k + t]) * slow - (a[k + t] - c[k + t]) * fast
            pw |= (((-d) >> 63) & 1) << t
            nw |= ((d >> 63) & 1) << t
        up[full] = pw
        down[full] = nw
    return m


@njit(cache=True, nogil=True, error_model="numpy")
def _z_scores(x: _I64, cs: _I64, cs2: _I64, window: int, z: _F64) -> int:
    """``z[j]`` at bar ``j + window - 1``, exactly the strategy's float ``z``; NaN where the
    integer variance is 0 (the strategy makes no call there). Returns the number of bars."""
    n = x.shape[0]
    m = n - window + 1
    a = cs[window:]
    b = cs[0:]
    a2 = cs2[window:]
    b2 = cs2[0:]
    xv = x[window - 1 :]
    for j in range(max(m, 0)):
        sw = a[j] - b[j]
        var_n2 = window * (a2[j] - b2[j]) - sw * sw
        zz = float(window * xv[j] - sw) / math.sqrt(float(var_n2))
        z[j] = zz if var_n2 > 0 else math.nan
    return int(m)


@njit(cache=True, nogil=True, error_model="numpy")
def _mr_bits(
    z: _F64, m: int, entry: float, exit_: float, call: _I64, hi: _I64, lo: _I64, mid: _I64
) -> None:
    """Bitsets over ``z[:m]``: a call (variance > 0), ``z >= entry``, ``z <= -entry``,
    ``-exit <= z <= exit`` (NaN compares false, so no call means no bit)."""
    full = m >> 6 if m > 0 else 0
    for w in range(full + 1):
        k = w << 6
        cnt = min(64, m - k)
        if cnt <= 0:
            break
        zv = z[k:]
        cw = 0
        hw = 0
        lw = 0
        mw = 0
        for t in range(cnt):
            zz = zv[t]
            cw |= int(zz == zz) << t
            hw |= int(zz >= entry) << t
            lw |= int(zz <= -entry) << t
            mw |= int((zz >= -exit_) & (zz <= exit_)) << t
        call[w] = cw
        hi[w] = hw
        lo[w] = lw
        mid[w] = mw


@njit(cache=True, error_model="numpy", inline="always")
def _next3(b1: _I64, b2: _I64, b3: _I64, k1: int, k2: int, k3: int, j: int, m: int) -> int:
    """First ``j' >= j`` set in ``(b1 & k1) | (b2 & k2) | (b3 & k3)`` (masks 0 or -1), else
    ``m``; skips 64 bars per word."""
    if j >= m:
        return m
    w = j >> 6
    word = ((b1[w] & k1) | (b2[w] & k2) | (b3[w] & k3)) & (-1 << (j & 63))
    last = (m - 1) >> 6
    while word == 0:
        w += 1
        if w > last:
            return m
        word = (b1[w] & k1) | (b2[w] & k2) | (b3[w] & k3)
    r = (w << 6) + trailing_zeros(word)  # type: ignore[call-arg]
    return r if r < m else m


@njit(cache=True, error_model="numpy", inline="always")
def _first_after(ts: _I64, i: int, n: int, when: int) -> int:
    """First bar ``>= i`` with ``ts >= when`` (galloping then binary search), else ``n``."""
    if i >= n or ts[i] >= when:
        return i
    lo = i
    step = 1
    hi = i + 1
    while hi < n and ts[hi] < when:
        lo = hi
        step *= 2
        hi = lo + step
    hi = min(hi, n)
    while hi - lo > 1:  # ts[lo] < when <= ts[hi] (or hi == n)
        mid = (lo + hi) >> 1
        if ts[mid] < when:
            lo = mid
        else:
            hi = mid
    return hi


@njit(cache=True, error_model="numpy", inline="always")
def _order(gap: int, order_qty: int) -> int:
    """Signed lots of the one order toward a target ``gap`` lots away."""
    if gap > 0:
        return gap if gap < order_qty else order_qty
    return -(-gap if -gap < order_qty else order_qty)


@njit(cache=True, nogil=True, error_model="numpy")
def _events_ma(
    cs: _I64,
    ts: _I64,
    fast: int,
    slow: int,
    max_pos: int,
    short: int,
    order_qty: int,
    cooldown: int,
    up: _I64,
    down: _I64,
    fills: _I64,
) -> int:
    """The moving-average cross and the order routine: writes (bar, signed qty) of each fill
    into ``fills`` and returns their number.

    Only bars where something can happen are visited: while the position sits at the target
    (or before the first cross) the next bar whose sign goes against the regime, found 64 bars
    per word in the bitsets; while an order is pending, also the next bar where the cooldown
    has passed.
    """
    n = ts.shape[0]
    w0 = slow - 1
    m = _ma_bits(cs, n, fast, slow, up, down)
    regime = 0
    crosses = 0
    target = 0
    pos = 0
    last = NOCALL
    k = 0
    j = 0
    while j < m:
        if crosses == 0 or pos == target:
            j = _next3(up, down, down, -1 if regime <= 0 else 0, -1 if regime >= 0 else 0, 0, j, m)
        else:
            jf = _next3(up, down, down, -1 if regime < 0 else 0, -1 if regime > 0 else 0, 0, j, m)
            jc = j
            if cooldown > 0 and last != NOCALL:
                jc = _first_after(ts, j + w0, n, last + cooldown) - w0
            j = min(jf, jc)
        if j >= m:
            break
        bit = np.int64(1) << (j & 63)
        s = 1 if up[j >> 6] & bit else (-1 if down[j >> 6] & bit else 0)
        if s != 0 and s != regime:
            if regime != 0:
                crosses += 1
                target = max_pos if s > 0 else short
            regime = s
        if crosses > 0 and target != pos:
            i = j + w0
            if cooldown == 0 or last == NOCALL or ts[i] - last >= cooldown:
                signed = _order(target - pos, order_qty)
                fills[k, 0] = i
                fills[k, 1] = signed
                k += 1
                pos += signed
                last = ts[i] if cooldown > 0 else 0  # no load when unused
        j += 1
    return k


@njit(cache=True, nogil=True, error_model="numpy")
def _events_mr(
    ts: _I64,
    window: int,
    m: int,
    max_pos: int,
    short: int,
    order_qty: int,
    cooldown: int,
    call: _I64,
    hi: _I64,
    lo: _I64,
    mid: _I64,
    fills: _I64,
) -> int:
    """Mean reversion's targets and the order routine over the bitsets of :func:`_mr_bits`;
    (bar, signed qty) of each fill into ``fills``, returns their number. Visits only bars where
    the target changes, or where an order is pending and may go."""
    n = ts.shape[0]
    w0 = window - 1
    target = 0
    pos = 0
    last = NOCALL
    k = 0
    j = 0
    while j < m:
        if pos == target:
            j = _next3(
                hi, lo, mid, -1 if short != pos else 0, -1 if max_pos != pos else 0,
                -1 if pos != 0 else 0, j, m,
            )  # fmt: skip
        else:
            jt = _next3(
                hi, lo, mid, -1 if short != target else 0, -1 if max_pos != target else 0,
                -1 if target != 0 else 0, j, m,
            )  # fmt: skip
            jc = j
            if cooldown > 0 and last != NOCALL:
                jc = _first_after(ts, j + w0, n, last + cooldown) - w0
            jc = _next3(call, call, call, -1, 0, 0, jc, m)
            j = min(jt, jc)
        if j >= m:
            break
        word = j >> 6
        bit = np.int64(1) << (j & 63)
        if call[word] & bit:
            if hi[word] & bit:
                target = short
            elif lo[word] & bit:
                target = max_pos
            elif mid[word] & bit:
                target = 0
            i = j + w0
            if target != pos and (cooldown == 0 or last == NOCALL or ts[i] - last >= cooldown):
                signed = _order(target - pos, order_qty)
                fills[k, 0] = i
                fills[k, 1] = signed
                k += 1
                pos += signed
                last = ts[i] if cooldown > 0 else 0  # no load when unused
        j += 1
    return k


@njit(cache=True, nogil=True, error_model="numpy")
def _prices(rec: _I64, fills: _I64, k: int, slippage: int) -> None:
    """Fill prices (buy at ``ask + slippage``, sell at ``max(bid - slippage, 1)``) and the mid
    offsets the accounting needs, gathered in one branch-light pass (the loads overlap)."""
    for f in range(k):
        i = fills[f, 0]
        q = fills[f, 1]
        buy = rec[i, 1] + slippage
        sell = max(rec[i, 0] - slippage, 1)
        fills[f, 2] = buy if q > 0 else sell
        fills[f, 3] = rec[i, 2]
        fills[f, 4] = rec[i, 3]


@njit(cache=True, nogil=True, error_model="numpy")
def _stats(
    fills: _I64,
    nf: int,
    x: _I64,
    mid2_0: int,
    fee_rate: float,
    capital: float,
    stats: _F64,
    detail: bool,
    pos_out: _I64,
    eq_out: _F64,
) -> None:
    """Accounting per fill and the statistics of :data:`METRICS` (per-bar Sharpe/Sortino,
    annualized by the caller), in tick-lots; with ``detail`` the position and equity per bar.

    Between two fills the position, cash and fees are constant, so per segment:

    * returns: ``r = pos * dx / 2 / capital`` for each bar after the fill bar, so the sums of
      ``r**2`` and ``min(r, 0)**2`` are ``pos**2 / 4 / capital**2`` times exact integer sums of
      ``dx**2`` over up or down moves; the fill bar's return is taken from the two equities;
    * drawdown: equity is monotone in the mid within the segment, so a block of bars whose best
      equity stays below the running peak changes only the drawdown (from its worst equity)
      and the duration (to its last bar); other blocks are walked bar by bar. The float
      expressions are the per-bar ones, so the drawdown is the same number a per-bar loop gets.
    """
    n = x.shape[0]
    inv_cap = 1.0 / capital
    c2 = 0.25 * inv_cap * inv_cap
    pos = 0
    cash = 0  # tick-lots, exact
    fees = 0.0
    cost = 0.0  # cost basis of the open position
    entry_fees = 0.0  # its entry fees
    wins = 0
    closes = 0
    gross_win = 0.0
    gross_loss = 0.0
    notional = 0
    s2 = 0.0
    down2 = 0.0
    peak = capital
    inv_peak = 1.0 / capital
    max_dd = 0.0
    peak_bar = 0
    max_dd_bars = 0
    if detail:
        first = fills[0, 0] if nf > 0 else n
        for i in range(first):
            pos_out[i] = 0
            eq_out[i] = 0.0
    for f in range(nf):
        a = fills[f, 0]
        signed = fills[f, 1]
        px = fills[f, 2]
        q = signed if signed > 0 else -signed
        prev_eq = float(cash) + pos * (fills[f, 4] + mid2_0) * 0.5 - fees
        # net realized P&L of a closing fill on the average cost (fee shares included)
        fee = float(px * q) * fee_rate
        if pos != 0 and (pos > 0) != (signed > 0):
            closing = q if q < abs(pos) else abs(pos)
            unit = cost / pos
            sgn = 1.0 if pos > 0 else -1.0
            gross = sgn * closing * (px - unit)
            share_entry = entry_fees * closing / abs(pos)
            net = gross - fee * closing / q - share_entry
            closes += 1
            if net > 0:
                wins += 1
                gross_win += net
            else:
                gross_loss -= net
            cost -= sgn * closing * unit
            entry_fees -= share_entry
            rest = q - closing
            if rest > 0:
                cost = float(rest * px) * (1.0 if signed > 0 else -1.0)
                entry_fees = fee * rest / q
        else:
            cost += float(signed * px)
            entry_fees += fee
        pos += signed
        if pos == 0:
            cost = 0.0
            entry_fees = 0.0
        fees += fee
        cash -= signed * px
        notional += px * q
        # the segment [a, e] with this state
        e = fills[f + 1, 0] - 1 if f + 1 < nf else n - 1
        cf = float(cash)
        eq_a = cf + pos * (fills[f, 3] + mid2_0) * 0.5 - fees
        r = (eq_a - prev_eq) * inv_cap
        s2 += r * r
        if r < 0.0:
            down2 += r * r
        if detail:
            xs = x[a : e + 1]
            ps = pos_out[a : e + 1]
            es = eq_out[a : e + 1]
            for t in range(e + 1 - a):
                ps[t] = pos
                es[t] = cf + pos * (xs[t] + mid2_0) * 0.5 - fees
        if pos == 0:  # flat: the equity is constant over the segment
            v = capital + eq_a
            if v > peak:
                peak = v
                inv_peak = 1.0 / v
                peak_bar = a
            max_dd = max(max_dd, (peak - v) * inv_peak)
            if v < peak:
                max_dd_bars = max(max_dd_bars, e - peak_bar)
            continue
        up2 = 0
        dn2 = 0
        i = a
        if e - a < _SHORT:  # a short segment: scalar min/max and moves, no slicing
            xl = x[a]
            xh = xl
            prev = xl
            for j in range(a + 1, e + 1):
                xj = x[j]
                xl = min(xl, xj)
                xh = max(xh, xj)
                dx = xj - prev
                prev = xj
                sq = dx * dx
                up2 += sq & ((-dx) >> 63)
                dn2 += sq & (dx >> 63)
            if pos < 0:
                xl, xh = xh, xl
            best = capital + (cf + pos * (xh + mid2_0) * 0.5 - fees)
            if best < peak:
                worst = capital + (cf + pos * (xl + mid2_0) * 0.5 - fees)
                max_dd = max(max_dd, (peak - worst) * inv_peak)
                max_dd_bars = max(max_dd_bars, e - peak_bar)
            else:
                for j in range(a, e + 1):
                    v = capital + (cf + pos * (x[j] + mid2_0) * 0.5 - fees)
                    if v > peak:
                        peak = v
                        inv_peak = 1.0 / v
                        peak_bar = j
                    max_dd = max(max_dd, (peak - v) * inv_peak)
                    max_dd_bars = max(max_dd_bars, (j - peak_bar) * int(v < peak))
            i = e + 1
        while i <= e:
            stop = min(i + _BLOCK, e + 1)
            cnt = stop - i
            xv = x[i:stop]
            xl = xv[0]
            xh = xl
            for t in range(cnt):
                xl = min(xl, xv[t])
                xh = max(xh, xv[t])
            first_move = i if i > a else a + 1
            if first_move < stop:
                cur = x[first_move:stop]
                prv = x[first_move - 1 : stop - 1]
                for t in range(stop - first_move):
                    dx = cur[t] - prv[t]
                    sq = dx * dx
                    up2 += sq & ((-dx) >> 63)
                    dn2 += sq & (dx >> 63)
            if pos < 0:
                xl, xh = xh, xl
            best = capital + (cf + pos * (xh + mid2_0) * 0.5 - fees)
            if best < peak:
                worst = capital + (cf + pos * (xl + mid2_0) * 0.5 - fees)
                max_dd = max(max_dd, (peak - worst) * inv_peak)
                max_dd_bars = max(max_dd_bars, stop - 1 - peak_bar)
            else:
                for t in range(cnt):
                    v = capital + (cf + pos * (xv[t] + mid2_0) * 0.5 - fees)
                    if v > peak:
                        peak = v
                        inv_peak = 1.0 / v
                        peak_bar = i + t
                    max_dd = max(max_dd, (peak - v) * inv_peak)
                    max_dd_bars = max(max_dd_bars, (i + t - peak_bar) * int(v < peak))
            i = stop
        p2 = float(pos * pos) * c2
        s2 += p2 * float(up2 + dn2)
        down2 += p2 * float(dn2 if pos > 0 else up2)
    last_eq = float(cash) + pos * (x[n - 1] + mid2_0) * 0.5 - fees if nf > 0 else 0.0
    mean = last_eq * inv_cap / n  # the returns telescope
    var = s2 / n - mean * mean
    std = math.sqrt(var) if var > 0 else 0.0
    dd_dev = math.sqrt(down2 / n)
    stats[0] = last_eq / capital
    stats[1] = mean / std if std > 0 else 0.0  # per bar; annualized by the caller
    stats[2] = mean / dd_dev if dd_dev > 0 else 0.0
    stats[3] = max_dd
    stats[4] = max_dd_bars
    stats[5] = wins / closes if closes else math.nan
    stats[6] = (
        gross_win / gross_loss if gross_loss > 0 else (math.inf if gross_win > 0 else math.nan)
    )
    stats[7] = nf
    stats[8] = notional / capital
    stats[9] = fees
    stats[10] = last_eq
    stats[11] = pos


# ----------------------------------------------------------------------------- prepared data


class _Workspace:
    """Per-process scratch buffers, reused by every parameter set (no allocation per set)."""

    def __init__(self, n: int) -> None:
        words = (n + 63) // 64 + 1
        self.bits = np.zeros((4, words), np.int64)
        self.fills = np.empty((n, _FILL_COLS), np.int64)
        self.z = np.empty(n, np.float64)
        self.z_window = -1  # the window whose z-scores ``z`` holds
        self.raw = np.empty(_N_STATS, np.float64)


class Prepared:
    """Bars plus what every parameter set shares, computed once per sweep: the prefix sums of
    ``x = mid2 - mid2[0]`` (and of ``x**2`` for mean reversion), a record per bar (bid, ask,
    x, previous x) so a fill touches one cache line, and scratch buffers.

    Pickles as the bars alone (rebuilt on load), so a Dask worker receives 24 bytes per bar.
    Memory: about 80 bytes per bar plus 48 per bar of scratch once a set has run.
    """

    def __init__(self, bars: Bars, costs: CostModel, periods_per_year: float | None = None) -> None:
        bid = np.ascontiguousarray(bars.bid, np.int64)
        ask = np.ascontiguousarray(bars.ask, np.int64)
        ts = np.ascontiguousarray(bars.ts_ns, np.int64)
        n = len(bid)
        if n < 2 or len(ask) != n or len(ts) != n:
            raise UsageError("bars need at least 2 rows and equal-length ts_ns, bid, ask")
        if np.any(ask < bid):
            bad = int(np.argmax(ask < bid))
            raise UsageError(f"bar {bad}: ask {int(ask[bad])} is below bid {int(bid[bad])}")
        if np.any(ts[1:] < ts[:-1]):
            bad = int(np.argmax(ts[1:] < ts[:-1])) + 1
            raise UsageError(f"bar {bad}: ts_ns goes backwards")
        self.bid, self.ask, self.ts = bid, ask, ts
        self.periods_in = periods_per_year
        mid2 = bid + ask
        self.x = mid2 - mid2[0]
        self.max_abs = int(np.abs(self.x).max())
        # the statistics pass streams x over every bar with a position: int32 halves that
        self.xs = self.x.astype(np.int32) if self.max_abs < 2**31 - 1 else self.x
        self.cs = np.zeros(n + 1, np.int64)
        np.cumsum(self.x, out=self.cs[1:])
        self.rec = np.empty((n, 4), np.int64)
        self.rec[:, 0] = bid
        self.rec[:, 1] = ask
        self.rec[:, 2] = self.x
        self.rec[0, 3] = self.x[0]
        self.rec[1:, 3] = self.x[:-1]
        self._cs2: _I64 | None = None
        self._work: dict[int, _Workspace] = {}  # per thread (Dask workers may run threads)
        self.costs = costs
        self.fee_rate = costs.rate_per_tick_lot()
        self.first_mid2 = int(mid2[0])
        if periods_per_year is None:
            dt = np.diff(ts)
            step = float(np.median(dt)) if len(dt) else 0.0
            periods_per_year = 365.0 * 86_400e9 / step if step > 0 else 252.0
        self.periods_per_year = periods_per_year

    def __getstate__(self) -> tuple[Bars, CostModel, float | None]:
        return Bars(self.ts, self.bid, self.ask), self.costs, self.periods_in

    def __setstate__(self, state: tuple[Bars, CostModel, float | None]) -> None:
        self.__init__(*state)  # type: ignore[misc]

    @property
    def cs2(self) -> _I64:
        if self._cs2 is None:
            if self.max_abs > 0 and len(self.x) * self.max_abs**2 >= _LIMIT:
                raise ValueError("bars: squared mid deviations overflow int64 (too long or wide)")
            cs2 = np.zeros(len(self.x) + 1, np.int64)
            np.cumsum(self.x * self.x, out=cs2[1:])
            self._cs2 = cs2
        return self._cs2

    @property
    def work(self) -> _Workspace:
        """This thread's scratch buffers."""
        key = threading.get_ident()
        work = self._work.get(key)
        if work is None:
            work = self._work[key] = _Workspace(len(self))
        return work

    def __len__(self) -> int:
        return len(self.bid)

    def capital(self, p: Params, capital: float | None) -> float:
        """Capital in tick-lots (given in money, or the default)."""
        if capital is not None:
            if capital <= 0:
                raise UsageError(f"capital must be positive, got {capital}")
            return capital / self.costs.money_per_tick_lot
        return max(p.max_position * self.first_mid2 / 2.0, 1.0)

    def fills(self, p: Params, out: _I64) -> int:
        """Run the signal and the order routine of ``p``; the fills (bar, signed qty, price,
        x, previous x) go to ``out``; returns their number. Checks the int64 headroom first."""
        n = max(len(self), 1)
        v = p.values
        short = -p.max_position if p.allow_short else 0
        bits = self.work.bits
        if p.kind == "ma_cross":
            fast, slow = int(v["fast"]), int(v["slow"])  # type: ignore[call-overload]
            if self.max_abs * slow * fast >= _LIMIT // n:
                raise ValueError("bars: moving-average sums overflow int64 (windows too large)")
            k = _events_ma(
                self.cs, self.ts, fast, slow, p.max_position, short, p.order_qty, p.cooldown_ns,
                bits[0], bits[1], out,
            )  # fmt: skip
        else:
            window = int(v["window"])  # type: ignore[call-overload]
            if self.max_abs > 0 and window * window * self.max_abs**2 >= _LIMIT:
                raise ValueError("bars: the integer variance overflows int64 (window too large)")
            m = self.z_scores(window)
            _mr_bits(
                self.work.z, m, float(v["entry_z"]), float(v["exit_z"]),  # type: ignore[arg-type]
                bits[0], bits[1], bits[2], bits[3],
            )  # fmt: skip
            k = _events_mr(
                self.ts, window, m, p.max_position, short, p.order_qty, p.cooldown_ns,
                bits[0], bits[1], bits[2], bits[3], out,
            )  # fmt: skip
        _prices(self.rec, out, k, p.slippage_ticks)
        return int(k)

    def z_scores(self, window: int) -> int:
        """Fill the workspace's z-scores for ``window`` (kept: sets with the same window share
        them); returns the number of bars that have one."""
        work = self.work
        if work.z_window != window:
            work.z_window = -1
            _z_scores(self.x, self.cs, self.cs2, window, work.z)
            work.z_window = window
        return max(len(self) - window + 1, 0)

    def raw_stats(self, p: Params, capital: float | None) -> _F64:
        """The kernel's statistics vector of one checked parameter set (a view into the
        workspace: copy it to keep it)."""
        cap = self.capital(p, capital)
        work = self.work
        k = self.fills(p, work.fills)
        _stats(
            work.fills, k, self.xs, self.first_mid2, self.fee_rate, cap, work.raw, False,
            _EMPTY_I, _EMPTY_F,
        )  # fmt: skip
        return work.raw


_EMPTY_I: Final = np.empty(0, np.int64)
_EMPTY_F: Final = np.empty(0, np.float64)


def _stats_dict(raw: _F64, prep: Prepared) -> dict[str, float]:
    out = dict(zip(METRICS, (float(v) for v in raw), strict=True))
    root = math.sqrt(prep.periods_per_year)
    out["sharpe"] *= root
    out["sortino"] *= root
    money = prep.costs.money_per_tick_lot
    out["fees"] *= money
    out["pnl"] *= money
    return out


# ----------------------------------------------------------------------------- one run


@dataclass
class VectorResult:
    """Every detail of one vectorized run (money in the quote currency)."""

    kind: str
    params: dict[str, object]
    stats: dict[str, float]
    ts_ns: _I64
    position: _I64
    equity: _F64  # P&L after fees, marked at the mid, per bar
    trades: Any  # pandas.DataFrame: bar, ts_ns, side, qty, price, notional, fee
    orders: Any  # pandas.DataFrame in the stats module's orders shape
    capital: float
    periods_per_year: float
    fees_exact: Decimal = field(default=Decimal(0))

    def fills(self) -> Any:
        """The trades in the shape of the node's fills (:mod:`tradecore.backtest.stats`)."""
        return self.trades


def run(
    bars: Bars,
    kind: str,
    params: Mapping[str, object] | None = None,
    *,
    costs: CostModel | None = None,
    capital: float | None = None,
    periods_per_year: float | None = None,
) -> VectorResult:
    """One parameter set with every detail (positions, trades, orders, equity)."""
    import pandas as pd

    c = costs or CostModel()
    prep = Prepared(bars, c, periods_per_year)
    p = check_params(kind, params or {})
    cap = prep.capital(p, capital)
    n = len(prep)
    fills = prep.work.fills
    k = prep.fills(p, fills)
    pos = np.empty(n, np.int64)
    eq = np.empty(n, np.float64)
    raw = np.empty(_N_STATS, np.float64)
    _stats(fills, k, prep.xs, prep.first_mid2, prep.fee_rate, cap, raw, True, pos, eq)
    money = c.money_per_tick_lot
    bar, qty, px = fills[:k, 0].copy(), fills[:k, 1].copy(), fills[:k, 2].copy()
    notional = np.abs(qty) * px
    rate = c.rate_per_tick_lot()
    trades = pd.DataFrame(
        {
            "bar": bar,
            "ts_ns": prep.ts[bar],
            "side": np.sign(qty).astype(np.int8),
            "qty": np.abs(qty),
            "price": px,
            "notional": notional * money,
            "fee": notional * rate * money,
            "liquidity": "TAKER",
            "order_id": np.arange(1, k + 1, dtype=np.int64),
        }
    )
    orders = pd.DataFrame(
        {
            "order_id": trades["order_id"],
            "ts_ns": trades["ts_ns"],
            "side": trades["side"],
            "qty": trades["qty"],
            "price": trades["price"],
            "filled_qty": trades["qty"],
            "passive": False,
            "first_fill_ns": trades["ts_ns"],
            "status": "FILLED",
        }
    )
    fees_exact = Decimal(int(notional.sum())) * c.tick_size * c.lot_size * c.taker_fee_bps / 10_000
    return VectorResult(
        kind,
        {**p.values, **_common_of(p)},
        _stats_dict(raw, prep),
        prep.ts,
        pos,
        eq * money,
        trades,
        orders,
        cap * money,
        prep.periods_per_year,
        fees_exact,
    )


def _common_of(p: Params) -> dict[str, object]:
    return {
        "order_qty": p.order_qty,
        "max_position": p.max_position,
        "slippage_ticks": p.slippage_ticks,
        "cooldown_ms": p.cooldown_ns // 1_000_000,
        "allow_short": p.allow_short,
    }


def evaluate(
    prep: Prepared, kind: str, params: Mapping[str, object], capital: float | None = None
) -> dict[str, float]:
    """Statistics of one parameter set over prepared bars (no per-bar arrays, no DataFrame)."""
    return _stats_dict(prep.raw_stats(check_params(kind, params), capital), prep)


# ----------------------------------------------------------------------------- search spaces


def expand_grid(
    kind: str, grid: Mapping[str, Sequence[object]]
) -> tuple[list[dict[str, object]], int]:
    """Every combination of ``grid`` (name -> values), minus invalid ones.

    Returns ``(valid sets, number skipped)``; a combination is invalid when the strategy's own
    validation refuses it (``slow <= fast``, ``exit_z >= entry_z``...). A wrong *name* or a value
    of the wrong type in every combination is an error, not a skip.
    """
    if not grid:
        raise UsageError("the grid is empty: give at least one parameter with values")
    names = list(grid)
    for name in names:
        values = grid[name]
        if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
            raise UsageError(f"grid {name!r}: expected a non-empty list of values")
    out: list[dict[str, object]] = []
    skipped = 0
    first_error: ConfigError | None = None
    for combo in itertools.product(*(grid[n] for n in names)):
        params = dict(zip(names, combo, strict=True))
        try:
            check_params(kind, params)
        except ConfigError as exc:
            skipped += 1
            first_error = first_error or exc
            continue
        out.append(params)
    if not out:
        raise UsageError(f"no valid parameter set in the grid ({first_error})")
    return out, skipped


def random_params(
    kind: str, space: Mapping[str, Sequence[object] | tuple[float, float]], n: int, seed: int
) -> list[dict[str, object]]:
    """``n`` valid sets drawn from ``space``: a list of values is sampled from, a ``(lo, hi)``
    tuple of ints draws an int in ``[lo, hi]`` and of floats a float in ``[lo, hi)``."""
    rng = _random.Random(seed)
    out: list[dict[str, object]] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 100 * n + 1000:
            raise UsageError(f"random search: could not draw {n} valid sets from {dict(space)}")
        params: dict[str, object] = {}
        for name, dom in space.items():
            if isinstance(dom, tuple) and len(dom) == 2:
                lo, hi = dom
                if isinstance(lo, int) and isinstance(hi, int):
                    params[name] = rng.randint(lo, hi)
                else:
                    params[name] = rng.uniform(float(lo), float(hi))  # type: ignore[arg-type]
            else:
                params[name] = rng.choice(list(dom))
        try:
            check_params(kind, params)
        except ConfigError:
            continue
        out.append(params)
    return out


# ----------------------------------------------------------------------------- sweeps

_WORKER: dict[str, Prepared] = {}
_Task = list[tuple[int, Params]]
_Done = tuple[list[tuple[int, tuple[float, ...]]], float]


def _init_worker(prep: Prepared) -> None:
    # fork: ``prep`` is the parent's object, shared copy-on-write (never written); spawn
    # pickles it as the bars and rebuilds it here
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    _WORKER["prep"] = prep


def _evaluate_many(prep: Prepared, batch: _Task, capital: float | None) -> _Done:
    """Raw statistics of a batch and the CPU seconds this process spent on it."""
    c0 = time.process_time()
    out = [(i, tuple(prep.raw_stats(p, capital).tolist())) for i, p in batch]
    return out, time.process_time() - c0


def _run_batch(batch: _Task, capital: float | None) -> _Done:
    return _evaluate_many(_WORKER["prep"], batch, capital)


def _run_batch_dask(prep: Prepared, batch: _Task, capital: float | None) -> _Done:
    return _evaluate_many(prep, batch, capital)


def sweep(
    bars: Bars,
    kind: str,
    grid: Mapping[str, Sequence[object]] | None = None,
    *,
    space: Mapping[str, Sequence[object] | tuple[float, float]] | None = None,
    samples: int = 0,
    seed: int = 0,
    base: Mapping[str, object] | None = None,
    costs: CostModel | None = None,
    capital: float | None = None,
    periods_per_year: float | None = None,
    metric: str = "sharpe",
    workers: int | None = None,
    scheduler: str | Any | None = None,
    batch_size: int | None = None,
    progress: bool = True,
) -> Any:
    """Evaluate many parameter sets; one ``pandas.DataFrame`` ranked by ``metric``.

    Either ``grid`` (every combination) or ``space`` + ``samples`` (random search, seeded).
    ``base`` holds parameters common to every set (``max_position``...). Runs on a local
    process pool of ``workers`` processes (default: the CPU count), or on a Dask cluster when
    ``scheduler`` is given (an address such as ``tcp://127.0.0.1:8786``, or a
    ``distributed.Client``). ``workers=0`` runs in this process (no pool). The table has one
    row per set: the parameters, every statistic of :data:`METRICS`, and ``rank`` (1 = best by
    ``metric``; higher is better except for drawdown, turnover and fees).

    The bars are prepared once here; forked pool workers share that memory (nothing is sent),
    a Dask cluster receives the bars once per worker. Sets go out in batches of ``batch_size``
    (default: about eight batches per worker, at most 32 sets); mean-reversion sets are grouped
    by window so each window's z-scores are computed once per batch. ``table.attrs`` holds
    ``strategy``, ``metric``, ``skipped``, ``bars`` and ``cpu_seconds`` (CPU time the
    evaluating processes spent on the sets, a load-independent cost figure).
    """
    import pandas as pd
    from tqdm import tqdm

    if metric not in METRICS:
        raise UsageError(f"unknown metric {metric!r} (known: {', '.join(METRICS)})")
    c = costs or CostModel()
    fixed = dict(base or {})
    if (grid is None) == (space is None):
        raise UsageError("give either grid= (grid search) or space= and samples= (random)")
    if grid is not None:
        sets, skipped = expand_grid(kind, grid)
        sets = [{**fixed, **s} for s in sets]
    else:
        assert space is not None
        if samples < 1:
            raise UsageError("random search needs samples >= 1")
        sets = [{**fixed, **s} for s in random_params(kind, space, samples, seed)]
        skipped = 0
    checked = [check_params(kind, s) for s in sets]
    prep = Prepared(bars, c, periods_per_year)
    nworkers = (os.cpu_count() or 1) if workers is None else workers
    size = batch_size or max(1, min(32, -(-len(sets) // (8 * max(nworkers, 1)))))
    order = list(range(len(sets)))
    if kind == "mean_reversion":
        order.sort(key=lambda i: int(checked[i].values["window"]))  # type: ignore[call-overload]
    tasks: list[_Task] = [
        [(i, checked[i]) for i in order[s : s + size]] for s in range(0, len(order), size)
    ]
    raws: list[tuple[float, ...] | None] = [None] * len(sets)
    cpu = 0.0
    bar = tqdm(
        total=len(sets), desc=f"sweep {kind}", unit="set", disable=not progress, file=sys.stderr
    )
    try:
        if scheduler is not None:
            done = _sweep_dask(scheduler, prep, tasks, capital)
        elif nworkers == 0:
            done = (_evaluate_many(prep, t, capital) for t in tasks)
        else:
            done = _sweep_local(nworkers, prep, tasks, capital)
        for rows, seconds in done:
            cpu += seconds
            for i, got in rows:
                raws[i] = got
            bar.update(len(rows))
    finally:
        bar.close()
    out = []
    for s, raw in zip(sets, raws, strict=True):
        assert raw is not None
        out.append({**s, **_stats_dict(np.asarray(raw, np.float64), prep)})
    table = pd.DataFrame(out)
    higher = METRICS[metric]
    table = table.sort_values(metric, ascending=not higher, na_position="last", kind="stable")
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table = table.reset_index(drop=True)
    table.attrs.update(
        {
            "strategy": kind,
            "metric": metric,
            "skipped": skipped,
            "bars": len(bars),
            "cpu_seconds": cpu,
        }
    )
    return table


def _sweep_local(
    nworkers: int, prep: Prepared, tasks: list[_Task], capital: float | None
) -> Iterator[_Done]:
    import multiprocessing as mp

    # fork: the workers inherit the imported modules, the compiled kernels and the prepared
    # bars (milliseconds, no copy); spawn/forkserver would re-import everything
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    with ProcessPoolExecutor(
        max_workers=nworkers, mp_context=ctx, initializer=_init_worker, initargs=(prep,)
    ) as pool:
        futs: list[Future[_Done]] = [pool.submit(_run_batch, t, capital) for t in tasks]
        for fut in as_completed(futs):
            yield fut.result()


def _sweep_dask(
    scheduler: str | Any, prep: Prepared, tasks: list[_Task], capital: float | None
) -> Iterator[_Done]:
    from distributed import Client
    from distributed import as_completed as dask_completed

    own = isinstance(scheduler, str)
    client_cls: Any = Client
    completed: Any = dask_completed
    client: Any = client_cls(scheduler, set_as_default=False) if own else scheduler
    try:
        [shared] = client.scatter([prep], broadcast=True)
        futs = [client.submit(_run_batch_dask, shared, t, capital, pure=False) for t in tasks]
        for fut in completed(futs):
            yield fut.result()
    finally:
        if own:
            client.close()
