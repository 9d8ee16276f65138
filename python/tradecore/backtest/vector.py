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
:mod:`tradecore.backtest.stats` (the kernel computes them in one pass without materializing
arrays; a test checks the two agree).

Cost: O(bars) per parameter set, two numba passes (signal, then simulation + statistics); on
the reference machine about 5 ms per million bars and parameter set on one core.
"""

from __future__ import annotations

import itertools
import math
import os
import random as _random
import sys
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from numba import njit

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


@njit(cache=True, error_model="numpy")
def _fill(
    i: int,
    gap: int,
    bid: _I64,
    ask: _I64,
    ts: _I64,
    order_qty: int,
    slippage: int,
    fee_rate: float,
    ist: _I64,
    fst: _F64,
    detail: bool,
    tr_bar: _I64,
    tr_qty: _I64,
    tr_px: _I64,
) -> None:
    """One order toward the target (``gap`` lots away), filled at its limit price.

    ``ist``: position, cash (tick-lots), last order time, trades, traded notional, winning
    closes, closes; ``fst``: fees, cost basis of the open position, its entry fees, gains and
    losses of closing fills (net realized P&L on the average cost). Kept out of the per-bar
    loop: it runs only when an order is sent.
    """
    pos = ist[0]
    if gap > 0:
        q = gap if gap < order_qty else order_qty
        px = ask[i] + slippage
        signed = q
    else:
        q = -gap if -gap < order_qty else order_qty
        px = bid[i] - slippage
        if px < 1:
            px = 1
        signed = -q
    fee = float(px * q) * fee_rate
    cost = fst[1]
    entry_fees = fst[2]
    if pos != 0 and (pos > 0) != (signed > 0):
        closing = q if q < abs(pos) else abs(pos)
        unit = cost / pos
        sgn = 1.0 if pos > 0 else -1.0
        gross = sgn * closing * (px - unit)
        share_entry = entry_fees * closing / abs(pos)
        net = gross - fee * closing / q - share_entry
        ist[6] += 1
        if net > 0:
            ist[5] += 1
            fst[3] += net
        else:
            fst[4] -= net
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
    fst[1] = cost
    fst[2] = entry_fees
    fst[0] += fee
    ist[0] = pos
    ist[1] -= signed * px
    ist[2] = ts[i]
    ist[4] += px * q
    if detail:
        k = ist[3]
        tr_bar[k] = i
        tr_qty[k] = signed
        tr_px[k] = px
    ist[3] += 1


@njit(cache=True, error_model="numpy")
def _kernel(
    mode: int,
    x: _I64,
    cs: _I64,
    cs2: _I64,
    bid: _I64,
    ask: _I64,
    ts: _I64,
    ip: _I64,
    fp: _F64,
    detail: bool,
    pos_out: _I64,
    eq_out: _F64,
    tr_bar: _I64,
    tr_qty: _I64,
    tr_px: _I64,
    stats: _F64,
) -> int:
    """One pass per parameter set: the signal (``mode`` 0 moving-average cross, 1 mean
    reversion), the order routine toward the target, fills at the limit, the mark at the mid
    and the statistics.

    ``ip``: fast, slow, window, max_position, allow_short, order_qty, slippage, cooldown_ns,
    mid2[0]; ``fp``: entry_z, exit_z, fee rate per tick-lot, capital (tick-lots). Amounts are
    tick-lots (fees too). Returns the number of trades; with ``detail`` the per-bar position
    and equity and the trades are written out.
    """
    fast = ip[0]
    slow = ip[1]
    window = ip[2]
    max_pos = ip[3]
    short = -max_pos if ip[4] != 0 else 0
    order_qty = ip[5]
    slippage = ip[6]
    cooldown_ns = ip[7]
    mid2_0 = ip[8]
    entry_z = fp[0]
    exit_z = fp[1]
    fee_rate = fp[2]
    capital = fp[3]
    warm = slow if mode == 0 else window
    regime = 0
    crosses = 0
    target = 0
    n = x.shape[0]
    pos = 0
    cash = 0  # tick-lots, exact
    fees = 0.0
    last_order = NOCALL
    # the trading state _fill keeps (see there)
    ist = np.zeros(7, np.int64)
    ist[2] = NOCALL
    fst = np.zeros(5, np.float64)
    # returns and drawdown
    prev_eq = 0.0
    s2 = 0.0
    down2 = 0.0
    peak = capital
    inv_peak = 1.0 / capital
    max_dd = 0.0
    peak_bar = 0
    max_dd_bars = 0
    inv_cap = 1.0 / capital
    for i in range(n):
        t = NOCALL
        if i + 1 >= warm:
            if mode == 0:
                fsum = cs[i + 1] - cs[i + 1 - fast]
                ssum = cs[i + 1] - cs[i + 1 - slow]
                diff = fsum * slow - ssum * fast
                sign = 1 if diff > 0 else (-1 if diff < 0 else 0)
                if sign != 0 and sign != regime:
                    if regime != 0:
                        crosses += 1
                        target = max_pos if sign > 0 else short
                    regime = sign
                if regime != 0 and crosses > 0:
                    t = target
            else:
                sw = cs[i + 1] - cs[i + 1 - window]
                qw = cs2[i + 1] - cs2[i + 1 - window]
                var_n2 = window * qw - sw * sw
                if var_n2 > 0:
                    z = float(window * x[i] - sw) / math.sqrt(float(var_n2))
                    if z >= entry_z:
                        target = short
                    elif z <= -entry_z:
                        target = max_pos
                    elif -exit_z <= z <= exit_z:
                        target = 0
                    t = target
        if t != NOCALL and t != pos and (last_order == NOCALL or ts[i] - last_order >= cooldown_ns):
            _fill(i, t - pos, bid, ask, ts, order_qty, slippage, fee_rate, ist, fst, detail,
                  tr_bar, tr_qty, tr_px)  # fmt: skip
            pos = ist[0]
            cash = ist[1]
            last_order = ist[2]
            fees = fst[0]
        eq = float(cash) + pos * (x[i] + mid2_0) * 0.5 - fees
        if detail:
            pos_out[i] = pos
            eq_out[i] = eq
        r = (eq - prev_eq) * inv_cap
        prev_eq = eq
        s2 += r * r
        neg = min(r, 0.0)  # branch-free: the sign of r is a coin flip
        down2 += neg * neg
        v = capital + eq
        if v > peak:  # rare: a new high
            peak = v
            inv_peak = 1.0 / v
            peak_bar = i
        # branch-free below: new lows come often and at random while equity falls
        max_dd = max(max_dd, (peak - v) * inv_peak)
        max_dd_bars = max(max_dd_bars, (i - peak_bar) * int(v < peak))
    mean = prev_eq * inv_cap / n if n else 0.0  # the returns telescope
    var = s2 / n - mean * mean if n else 0.0
    std = math.sqrt(var) if var > 0 else 0.0
    dd_dev = math.sqrt(down2 / n) if n else 0.0
    stats[0] = prev_eq / capital
    stats[1] = mean / std if std > 0 else 0.0  # per bar; annualized by the caller
    stats[2] = mean / dd_dev if dd_dev > 0 else 0.0
    stats[3] = max_dd
    stats[4] = max_dd_bars
    ntr = ist[3]
    closes = ist[6]
    gross_win = fst[3]
    gross_loss = fst[4]
    stats[5] = ist[5] / closes if closes else math.nan
    stats[6] = (
        gross_win / gross_loss if gross_loss > 0 else (math.inf if gross_win > 0 else math.nan)
    )
    stats[7] = ntr
    stats[8] = ist[4] / capital
    stats[9] = fees
    stats[10] = prev_eq
    stats[11] = pos
    return int(ntr)


# ----------------------------------------------------------------------------- prepared data


class Prepared:
    """Bars plus the shared prefix sums of ``mid2 - mid2[0]`` (built once per worker)."""

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
        mid2 = bid + ask
        self.x = mid2 - mid2[0]
        self.max_abs = int(np.abs(self.x).max())
        self.cs = np.zeros(n + 1, np.int64)
        np.cumsum(self.x, out=self.cs[1:])
        self._cs2: _I64 | None = None
        self.costs = costs
        self.first_mid2 = int(mid2[0])
        if periods_per_year is None:
            dt = np.diff(ts)
            step = float(np.median(dt)) if len(dt) else 0.0
            periods_per_year = 365.0 * 86_400e9 / step if step > 0 else 252.0
        self.periods_per_year = periods_per_year

    @property
    def cs2(self) -> _I64:
        if self._cs2 is None:
            if self.max_abs > 0 and len(self.x) * self.max_abs**2 >= _LIMIT:
                raise ValueError("bars: squared mid deviations overflow int64 (too long or wide)")
            cs2 = np.zeros(len(self.x) + 1, np.int64)
            np.cumsum(self.x * self.x, out=cs2[1:])
            self._cs2 = cs2
        return self._cs2

    def __len__(self) -> int:
        return len(self.bid)

    def capital(self, p: Params, capital: float | None) -> float:
        """Capital in tick-lots (given in money, or the default)."""
        if capital is not None:
            if capital <= 0:
                raise UsageError(f"capital must be positive, got {capital}")
            return capital / self.costs.money_per_tick_lot
        return max(p.max_position * self.first_mid2 / 2.0, 1.0)

    def kernel_args(self, p: Params, capital: float) -> tuple[int, _I64, _I64, _F64]:
        """(mode, second prefix sums, int params, float params) for :func:`_kernel`, after
        the int64 headroom checks."""
        v = p.values
        n = max(len(self), 1)
        fast = slow = window = 0
        entry = exit_ = 0.0
        if p.kind == "ma_cross":
            mode = 0
            fast, slow = int(v["fast"]), int(v["slow"])  # type: ignore[call-overload]
            if self.max_abs * slow * fast >= _LIMIT // n:
                raise ValueError("bars: moving-average sums overflow int64 (windows too large)")
            cs2 = self.cs
        else:
            mode = 1
            window = int(v["window"])  # type: ignore[call-overload]
            entry, exit_ = float(v["entry_z"]), float(v["exit_z"])  # type: ignore[arg-type]
            if self.max_abs > 0 and window * window * self.max_abs**2 >= _LIMIT:
                raise ValueError("bars: the integer variance overflows int64 (window too large)")
            cs2 = self.cs2
        ip = np.array(
            [
                fast, slow, window, p.max_position, int(p.allow_short), p.order_qty,
                p.slippage_ticks, p.cooldown_ns, self.first_mid2,
            ],
            np.int64,
        )  # fmt: skip
        fp = np.array([entry, exit_, self.costs.rate_per_tick_lot(), capital], np.float64)
        return mode, cs2, ip, fp


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
    mode, cs2, ip, fp = prep.kernel_args(p, cap)
    n = len(prep)
    pos = np.empty(n, np.int64)
    eq = np.empty(n, np.float64)
    tb = np.empty(n, np.int64)
    tq = np.empty(n, np.int64)
    tp = np.empty(n, np.int64)
    raw = np.empty(_N_STATS, np.float64)
    k = _kernel(
        mode, prep.x, prep.cs, cs2, prep.bid, prep.ask, prep.ts, ip, fp, True, pos, eq, tb, tq,
        tp, raw,
    )  # fmt: skip
    money = c.money_per_tick_lot
    bar, qty, px = tb[:k], tq[:k], tp[:k]
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
    """Statistics of one parameter set over prepared bars (no per-bar arrays kept)."""
    p = check_params(kind, params)
    cap = prep.capital(p, capital)
    mode, cs2, ip, fp = prep.kernel_args(p, cap)
    empty_i = np.empty(0, np.int64)
    raw = np.empty(_N_STATS, np.float64)
    _kernel(
        mode, prep.x, prep.cs, cs2, prep.bid, prep.ask, prep.ts, ip, fp, False, empty_i,
        np.empty(0, np.float64), empty_i, empty_i, empty_i, raw,
    )  # fmt: skip
    return _stats_dict(raw, prep)


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


def _init_worker(bars: Bars, costs: CostModel, ppy: float | None) -> None:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    _WORKER["prep"] = Prepared(bars, costs, ppy)


def _run_batch(
    kind: str, batch: Sequence[Mapping[str, object]], capital: float | None
) -> list[dict[str, float]]:
    prep = _WORKER["prep"]
    return [evaluate(prep, kind, p, capital) for p in batch]


def _run_batch_dask(
    prep_or_bars: Any, kind: str, batch: Sequence[Mapping[str, object]], capital: float | None
) -> list[dict[str, float]]:
    return [evaluate(prep_or_bars, kind, p, capital) for p in batch]


def _batches(items: Sequence[dict[str, object]], size: int) -> Iterator[list[dict[str, object]]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


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
        for s in sets:
            check_params(kind, s)
    else:
        assert space is not None
        if samples < 1:
            raise UsageError("random search needs samples >= 1")
        sets = [{**fixed, **s} for s in random_params(kind, space, samples, seed)]
        skipped = 0
    nworkers = (os.cpu_count() or 1) if workers is None else workers
    size = batch_size or max(1, min(64, len(sets) // max(4 * max(nworkers, 1), 1) or 1))
    batches = list(_batches(sets, size))
    results: list[list[dict[str, float]] | None] = [None] * len(batches)
    bar = tqdm(
        total=len(sets), desc=f"sweep {kind}", unit="set", disable=not progress, file=sys.stderr
    )
    try:
        if scheduler is not None:
            _sweep_dask(scheduler, bars, c, periods_per_year, kind, batches, capital, results, bar)
        elif nworkers == 0:
            prep = Prepared(bars, c, periods_per_year)
            for i, b in enumerate(batches):
                results[i] = [evaluate(prep, kind, p, capital) for p in b]
                bar.update(len(b))
        else:
            _sweep_local(nworkers, bars, c, periods_per_year, kind, batches, capital, results, bar)
    finally:
        bar.close()
    rows = []
    for b, res in zip(batches, results, strict=True):
        assert res is not None
        for p, stats in zip(b, res, strict=True):
            rows.append({**p, **stats})
    table = pd.DataFrame(rows)
    higher = METRICS[metric]
    table = table.sort_values(metric, ascending=not higher, na_position="last", kind="stable")
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table = table.reset_index(drop=True)
    table.attrs.update({"strategy": kind, "metric": metric, "skipped": skipped, "bars": len(bars)})
    return table


def _sweep_local(
    nworkers: int,
    bars: Bars,
    costs: CostModel,
    ppy: float | None,
    kind: str,
    batches: list[list[dict[str, object]]],
    capital: float | None,
    results: list[list[dict[str, float]] | None],
    bar: Any,
) -> None:
    import multiprocessing as mp

    # fork: the workers inherit the imported modules, the compiled kernels and the bars
    # (milliseconds); spawn/forkserver would re-import everything (seconds per sweep).
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    with ProcessPoolExecutor(
        max_workers=nworkers, mp_context=ctx, initializer=_init_worker, initargs=(bars, costs, ppy)
    ) as pool:
        futs: dict[Future[list[dict[str, float]]], int] = {
            pool.submit(_run_batch, kind, b, capital): i for i, b in enumerate(batches)
        }
        for fut in as_completed(futs):
            i = futs[fut]
            results[i] = fut.result()
            bar.update(len(batches[i]))


def _sweep_dask(
    scheduler: str | Any,
    bars: Bars,
    costs: CostModel,
    ppy: float | None,
    kind: str,
    batches: list[list[dict[str, object]]],
    capital: float | None,
    results: list[list[dict[str, float]] | None],
    bar: Any,
) -> None:
    from distributed import Client
    from distributed import as_completed as dask_completed

    own = isinstance(scheduler, str)
    client_cls: Any = Client
    completed: Any = dask_completed
    client: Any = client_cls(scheduler, set_as_default=False) if own else scheduler
    try:
        prep = Prepared(bars, costs, ppy)
        [shared] = client.scatter([prep], broadcast=True)
        futs = [
            client.submit(_run_batch_dask, shared, kind, b, capital, pure=False) for b in batches
        ]
        index = {f.key: i for i, f in enumerate(futs)}
        for fut in completed(futs):
            i = index[fut.key]
            results[i] = fut.result()
            bar.update(len(batches[i]))
    finally:
        if own:
            client.close()
