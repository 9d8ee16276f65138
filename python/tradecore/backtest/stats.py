"""Statistics of a backtest from its tables: equity curve, fills and orders.

Owns :class:`RunTables` (the result tables any engine produces: the vectorized one now, the
event-driven one later) and :func:`compute_stats`. Tables are ``pandas.DataFrame``:

* ``equity``: ``ts_ns``, ``equity`` (P&L after fees, quote currency, marked at the mid),
  ``position`` (lots); one row per bar or sample.
* ``fills``: ``ts_ns``, ``order_id``, ``side`` (+1 buy, -1 sell), ``qty`` (lots), ``price``
  (ticks), ``notional`` and ``fee`` (quote currency), ``liquidity`` (``MAKER``/``TAKER``).
* ``orders``: ``order_id``, ``ts_ns`` (sent), ``side``, ``qty``, ``price``, ``filled_qty``,
  ``passive`` (rested in the book), ``first_fill_ns`` (NaN/None if never filled), ``status``.

Definitions (the vectorized kernel computes the same numbers in one pass; a test checks it):

* returns ``r_i = (equity_i - equity_{i-1}) / capital`` (``equity_{-1} = 0``); total return
  ``equity_last / capital``;
* Sharpe ``mean(r) / std(r) * sqrt(periods_per_year)`` (population std); Sortino the same over
  ``sqrt(mean(min(r, 0)**2))``;
* max drawdown: the largest ``(peak - V) / peak`` of ``V = capital + equity`` with ``peak`` the
  running maximum (starting at ``capital``); its duration: the longest stretch (bars, and ns)
  from a peak while ``V`` stays below it;
* per closing fill, realized P&L on the average cost, net of its fee share and the entry fees'
  share: win rate = share of closing fills with net P&L > 0, profit factor = gains / losses;
* turnover = traded notional / capital; fees = their sum; fill ratio = filled / ordered
  quantity; average time in queue = mean ``first_fill_ns - ts_ns`` of passive orders that
  filled.

Cost: vectorized numpy over the equity table; one Python pass over the fills.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["RunTables", "compute_stats", "stats_frame", "trade_pnl"]

_EQUITY_COLS = ("ts_ns", "equity", "position")
_FILL_COLS = ("ts_ns", "order_id", "side", "qty", "price", "notional", "fee", "liquidity")
_ORDER_COLS = (
    "order_id",
    "ts_ns",
    "side",
    "qty",
    "price",
    "filled_qty",
    "passive",
    "first_fill_ns",
    "status",
)


def _require(df: pd.DataFrame, cols: tuple[str, ...], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{what} table: missing column(s) {', '.join(missing)}")


@dataclass
class RunTables:
    """The tables of one backtest run plus what the statistics need to scale them."""

    equity: pd.DataFrame
    fills: pd.DataFrame
    orders: pd.DataFrame
    capital: float
    periods_per_year: float
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require(self.equity, _EQUITY_COLS, "equity")
        _require(self.fills, _FILL_COLS, "fills")
        _require(self.orders, _ORDER_COLS, "orders")
        if not self.capital > 0:
            raise ValueError(f"capital must be positive, got {self.capital}")

    @classmethod
    def from_vector(cls, result: Any) -> RunTables:
        """The tables of a :class:`~tradecore.backtest.vector.VectorResult`."""
        equity = pd.DataFrame(
            {"ts_ns": result.ts_ns, "equity": result.equity, "position": result.position}
        )
        return cls(
            equity,
            result.trades[list(_FILL_COLS)].copy(),
            result.orders[list(_ORDER_COLS)].copy(),
            float(result.capital),
            float(result.periods_per_year),
            {"engine": "vector", "strategy": result.kind, "params": dict(result.params)},
        )

    def to_parquet(self, directory: str | Path) -> list[Path]:
        """Write ``equity``, ``fills``, ``orders`` and ``stats`` as Parquet under ``directory``
        (plus ``meta.json``); returns the paths."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        out = []
        for name, df in (("equity", self.equity), ("fills", self.fills), ("orders", self.orders)):
            p = d / f"{name}.parquet"
            df.to_parquet(p, index=False)
            out.append(p)
        p = d / "stats.parquet"
        pd.DataFrame([compute_stats(self)]).to_parquet(p, index=False)
        out.append(p)
        meta = {**self.meta, "capital": self.capital, "periods_per_year": self.periods_per_year}
        m = d / "meta.json"
        m.write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
        out.append(m)
        return out

    @classmethod
    def from_parquet(cls, directory: str | Path) -> RunTables:
        d = Path(directory)
        meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
        capital = float(meta.pop("capital"))
        ppy = float(meta.pop("periods_per_year"))
        return cls(
            pd.read_parquet(d / "equity.parquet"),
            pd.read_parquet(d / "fills.parquet"),
            pd.read_parquet(d / "orders.parquet"),
            capital,
            ppy,
            meta,
        )


def trade_pnl(fills: pd.DataFrame, money_per_tick_lot: float = 1.0) -> pd.DataFrame:
    """Net realized P&L per closing fill (average cost; fee shares included), in money.

    ``price`` is in ticks; ``fee`` in money; ``money_per_tick_lot`` converts tick-lots to money.
    Returns ``ts_ns``, ``order_id``, ``closed_qty`` and ``pnl`` per fill that reduced the
    position.
    """
    pos = 0
    cost = 0.0  # tick-lots
    entry_fees = 0.0  # money
    rows: list[tuple[int, int, int, float]] = []
    cols = zip(
        fills["ts_ns"].tolist(),
        fills["order_id"].tolist(),
        fills["side"].tolist(),
        fills["qty"].tolist(),
        fills["price"].tolist(),
        fills["fee"].tolist(),
        strict=True,
    )
    for ts, oid, side, qty, px, fee in cols:
        signed = int(qty) if side > 0 else -int(qty)
        q = abs(signed)
        if pos != 0 and (pos > 0) != (signed > 0):
            closing = min(q, abs(pos))
            unit = cost / pos
            sgn = 1.0 if pos > 0 else -1.0
            gross = sgn * closing * (px - unit) * money_per_tick_lot
            share_entry = entry_fees * closing / abs(pos)
            net = gross - fee * closing / q - share_entry
            rows.append((ts, oid, closing, net))
            cost -= sgn * closing * unit
            entry_fees -= share_entry
            rest = q - closing
            if rest:
                cost = float(rest * px) * (1.0 if signed > 0 else -1.0)
                entry_fees = fee * rest / q
        else:
            cost += float(signed * px)
            entry_fees += fee
        pos += signed
        if pos == 0:
            cost = 0.0
            entry_fees = 0.0
    return pd.DataFrame(rows, columns=["ts_ns", "order_id", "closed_qty", "pnl"])


def _money_per_tick_lot(t: RunTables) -> float:
    f = t.fills
    if len(f):
        nz = f["price"] * f["qty"]
        ok = nz > 0
        if ok.any():
            return float((f.loc[ok, "notional"] / nz[ok]).iloc[0])
    return float(t.meta.get("money_per_tick_lot", 1.0))


def compute_stats(t: RunTables) -> dict[str, float]:
    """Every statistic of the module doc, as a flat dict (floats; NaN where undefined)."""
    eq = t.equity["equity"].to_numpy(np.float64)
    ts = t.equity["ts_ns"].to_numpy(np.int64)
    cap = t.capital
    n = len(eq)
    out: dict[str, float] = {}
    if n == 0:
        raise ValueError("equity table is empty")
    r = np.diff(eq, prepend=0.0) / cap
    mean = float(r.mean())
    std = float(math.sqrt(max(float((r * r).mean()) - mean * mean, 0.0)))
    down = float(math.sqrt(float((np.minimum(r, 0.0) ** 2).mean())))
    root = math.sqrt(t.periods_per_year)
    out["total_return"] = float(eq[-1] / cap)
    out["sharpe"] = mean / std * root if std > 0 else 0.0
    out["sortino"] = mean / down * root if down > 0 else 0.0
    v = cap + eq
    before = np.maximum.accumulate(np.concatenate(([cap], v)))[:-1]  # peak before bar i
    new_high = v > before
    peak = np.maximum(before, v)
    dd = (peak - v) / peak
    out["max_drawdown"] = float(dd.max())
    idx = np.arange(n)
    peak_idx = np.maximum.accumulate(np.where(new_high, idx, 0))
    under = v < peak
    dur = np.where(under, idx - peak_idx, 0)
    worst = int(np.argmax(dur)) if n else 0
    out["max_drawdown_bars"] = float(dur.max())
    out["max_drawdown_ns"] = float(ts[worst] - ts[peak_idx[worst]]) if dur.max() > 0 else 0.0
    pnl = trade_pnl(t.fills, _money_per_tick_lot(t))["pnl"].to_numpy(np.float64)
    gains = float(pnl[pnl > 0].sum())
    losses = float(-pnl[pnl <= 0].sum())
    out["win_rate"] = float((pnl > 0).mean()) if len(pnl) else math.nan
    out["profit_factor"] = gains / losses if losses > 0 else (math.inf if gains > 0 else math.nan)
    out["trades"] = float(len(t.fills))
    out["turnover"] = float(t.fills["notional"].sum() / cap)
    out["fees"] = float(t.fills["fee"].sum())
    out["pnl"] = float(eq[-1])
    out["final_position"] = float(t.equity["position"].iloc[-1])
    o = t.orders
    ordered = float(o["qty"].sum())
    out["orders"] = float(len(o))
    out["fill_ratio"] = float(o["filled_qty"].sum()) / ordered if ordered > 0 else math.nan
    passive = o[o["passive"].astype(bool) & o["first_fill_ns"].notna()]
    if len(passive):
        waits = passive["first_fill_ns"].astype(np.int64) - passive["ts_ns"].astype(np.int64)
        out["avg_queue_ns"] = float(waits.mean())
    else:
        out["avg_queue_ns"] = math.nan
    out["passive_orders"] = float(o["passive"].astype(bool).sum())
    return out


def stats_frame(runs: dict[str, RunTables]) -> pd.DataFrame:
    """One row of :func:`compute_stats` per named run."""
    return pd.DataFrame({name: compute_stats(t) for name, t in runs.items()}).T
