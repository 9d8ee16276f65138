"""The backtest report: one self-contained HTML page (plotly, its JavaScript embedded, so it
works offline) and a PNG of the equity curve (matplotlib) for the README.

Owns :func:`write_report` and :func:`equity_png`. The page shows, from a
:class:`~tradecore.backtest.stats.RunTables` (and optionally the prices and a sweep table):

1. the statistics table (:func:`~tradecore.backtest.stats.compute_stats`);
2. equity and drawdown (two rows sharing the time axis);
3. the position;
4. the price (mid) with our trades marked (buys up-triangles, sells down-triangles);
5. the distribution of trade P&L (net realized P&L per closing fill);
6. the parameter-sweep heat map of a metric over two parameters (when a sweep is given).

Each chart is a ``<div class="tc-chart" id="chart-...">`` the headless-browser test looks for.
Long series are thinned to at most ``max_points`` points per trace (every k-th point, the last
one kept) so the page stays small; trades are never thinned.

Cost: the page embeds plotly.js once (about 4.7 MB); building it is a few hundred ms.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradecore.backtest.stats import RunTables, compute_stats, trade_pnl

__all__ = ["equity_png", "sweep_heatmap", "write_report"]

_FMT = {
    "total_return": "{:.4%}",
    "max_drawdown": "{:.4%}",
    "win_rate": "{:.2%}",
    "fill_ratio": "{:.2%}",
}


def _thin(n: int, max_points: int) -> npt.NDArray[np.int64]:
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    step = math.ceil(n / max_points)
    idx = np.arange(0, n, step, dtype=np.int64)
    if idx[-1] != n - 1:
        idx = np.append(idx, n - 1)
    return idx


def _times(ts: Any) -> Any:
    return pd.to_datetime(np.asarray(ts, np.int64), unit="ns")


def _drawdown(equity: npt.NDArray[np.float64], capital: float) -> npt.NDArray[np.float64]:
    v = capital + equity
    peak = np.maximum.accumulate(np.maximum(v, capital))
    return np.asarray(-(peak - v) / peak, np.float64)


def sweep_heatmap(sweep: pd.DataFrame, metric: str, params: Sequence[str] | None = None) -> Any:
    """A plotly heat map of ``metric`` over two parameters of a sweep table (the best value
    over the other parameters in each cell)."""
    import plotly.graph_objects as go

    if params is None:
        skip = {"rank", metric}
        cand = [
            c
            for c in sweep.columns
            if c not in skip and c not in _STAT_NAMES and sweep[c].nunique() > 1
        ]
        if len(cand) < 2:
            raise ValueError("the sweep varies fewer than two parameters: no heat map")
        params = cand[:2]
    x, y = params[0], params[1]
    higher = metric not in ("max_drawdown", "max_drawdown_bars", "turnover", "fees")
    agg = "max" if higher else "min"
    grid = sweep.pivot_table(index=y, columns=x, values=metric, aggfunc=agg)
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(),
            x=[str(v) for v in grid.columns],
            y=[str(v) for v in grid.index],
            colorscale="Viridis",
            colorbar={"title": metric},
            hovertemplate=f"{x}=%{{x}}<br>{y}=%{{y}}<br>{metric}=%{{z}}<extra></extra>",
        )
    )
    fig.update_layout(title=f"Parameter sweep: {metric} ({agg} over other parameters)")
    fig.update_xaxes(title=x, type="category")
    fig.update_yaxes(title=y, type="category")
    return fig


_STAT_NAMES = {
    "total_return", "sharpe", "sortino", "max_drawdown", "max_drawdown_bars", "win_rate",
    "profit_factor", "trades", "turnover", "fees", "pnl", "final_position",
}  # fmt: skip


def _stats_html(stats: dict[str, float]) -> str:
    rows = []
    for k, v in stats.items():
        fmt = _FMT.get(k)
        text = "n/a" if isinstance(v, float) and math.isnan(v) else (fmt or "{:,.6g}").format(v)
        rows.append(f"<tr><th>{html.escape(k)}</th><td>{html.escape(text)}</td></tr>")
    return '<table class="tc-stats">' + "".join(rows) + "</table>"


def write_report(
    path: str | Path,
    tables: RunTables,
    *,
    prices: pd.DataFrame | None = None,
    sweep: pd.DataFrame | None = None,
    sweep_metric: str = "sharpe",
    title: str = "tradecore backtest",
    max_points: int = 20_000,
) -> Path:
    """Write the HTML report to ``path``; returns it.

    ``prices`` has ``ts_ns`` and ``mid`` (ticks or money, as you like the axis); without it,
    the price chart uses the fill prices only.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    eq = tables.equity
    n = len(eq)
    idx = _thin(n, max_points)
    t = _times(eq["ts_ns"].to_numpy()[idx])
    equity = eq["equity"].to_numpy(np.float64)
    dd = _drawdown(equity, tables.capital)[idx]
    figs: list[tuple[str, Any]] = []

    f1 = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35])
    f1.add_trace(go.Scatter(x=t, y=equity[idx], name="equity (P&L after fees)"), row=1, col=1)
    f1.add_trace(
        go.Scatter(x=t, y=dd, name="drawdown", fill="tozeroy", line={"color": "firebrick"}),
        row=2,
        col=1,
    )
    f1.update_yaxes(title="P&L", row=1, col=1)
    f1.update_yaxes(title="drawdown", tickformat=".1%", row=2, col=1)
    f1.update_layout(title="Equity and drawdown", height=520)
    figs.append(("equity", f1))

    f2 = go.Figure(
        go.Scatter(x=t, y=eq["position"].to_numpy()[idx], name="position", line={"shape": "hv"})
    )
    f2.update_layout(title="Position (lots)", height=300)
    figs.append(("position", f2))

    fills = tables.fills
    f3 = go.Figure()
    if prices is not None and len(prices):
        pidx = _thin(len(prices), max_points)
        f3.add_trace(
            go.Scatter(
                x=_times(prices["ts_ns"].to_numpy()[pidx]),
                y=prices["mid"].to_numpy()[pidx],
                name="mid",
                line={"color": "gray"},
            )
        )
    for side, name, symbol, color in (
        (1, "buy", "triangle-up", "green"),
        (-1, "sell", "triangle-down", "red"),
    ):
        part = fills[fills["side"] == side]
        f3.add_trace(
            go.Scatter(
                x=_times(part["ts_ns"].to_numpy()),
                y=part["price"].to_numpy(),
                mode="markers",
                name=f"{name}s ({len(part)})",
                marker={"symbol": symbol, "color": color, "size": 8},
            )
        )
    f3.update_layout(title="Price with our trades", height=420)
    figs.append(("price", f3))

    money = 1.0
    if len(fills) and (fills["price"] * fills["qty"]).iloc[0] > 0:
        money = float(fills["notional"].iloc[0] / (fills["price"].iloc[0] * fills["qty"].iloc[0]))
    pnl = trade_pnl(fills, money)["pnl"]
    f4 = go.Figure(go.Histogram(x=pnl, nbinsx=60, name="trade P&L", marker={"color": "steelblue"}))
    f4.update_layout(
        title=f"Distribution of trade P&L ({len(pnl)} closing fills)", height=360, bargap=0.05
    )
    figs.append(("pnl", f4))

    if sweep is not None and len(sweep):
        figs.append(("sweep", sweep_heatmap(sweep, sweep_metric)))

    parts = []
    first = True
    for name, fig in figs:
        body = fig.to_html(
            full_html=False,
            include_plotlyjs=first,  # the whole library inline, once: works offline
            div_id=f"chart-{name}",
            config={"displaylogo": False, "responsive": True},
        )
        first = False
        parts.append(f'<section class="tc-chart" id="section-{name}">{body}</section>')
    stats = compute_stats(tables)
    meta = html.escape(", ".join(f"{k}={v}" for k, v in tables.meta.items()))
    page = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:1.5em}table.tc-stats{border-collapse:"
        "collapse}table.tc-stats th,table.tc-stats td{border:1px solid #ccc;padding:2px 8px;"
        "text-align:right}section.tc-chart{margin-top:1.5em}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{meta}</p>"
        f"{_stats_html(stats)}{''.join(parts)}</body></html>\n"
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def equity_png(path: str | Path, tables: RunTables, *, title: str = "Equity") -> Path:
    """A PNG of the equity curve with the drawdown below (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    eq = tables.equity
    t = _times(eq["ts_ns"].to_numpy())
    equity = eq["equity"].to_numpy(np.float64)
    fig, (a1, a2) = plt.subplots(
        2, 1, figsize=(9, 5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    a1.plot(t, equity, lw=1.0, color="tab:blue")
    a1.set_ylabel("P&L after fees")
    a1.set_title(title)
    a1.grid(alpha=0.3)
    a2.fill_between(t, _drawdown(equity, tables.capital) * 100, 0, color="firebrick", alpha=0.6)
    a2.set_ylabel("drawdown %")
    a2.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
