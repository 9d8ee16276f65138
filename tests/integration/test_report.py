"""The HTML report rendered by a real headless Chromium: charts drawn, page not blank.

Skipped (with the reason) only when no Chromium binary is installed
(``apt-get install chromium``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tradecore.backtest import vector as V
from tradecore.backtest.costs import CostModel
from tradecore.backtest.report import equity_png, write_report
from tradecore.backtest.stats import RunTables
from tradecore.data.synthetic import L2Params, synthetic_bars

CHROMIUM = next(
    (p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p),
    None,
)
CHARTS = ("equity", "position", "price", "pnl", "sweep")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("report")
    bars = synthetic_bars(20_000, 8, L2Params(move_prob=0.6))
    costs = CostModel(taker_fee_bps=Decimal("1"))
    params = {"fast": 5, "slow": 30, "max_position": 3, "order_qty": 3}
    res = V.run(bars, "ma_cross", params, costs=costs)
    tables = RunTables.from_vector(res)
    sweep = V.sweep(
        bars, "ma_cross", {"fast": [2, 3, 5, 8], "slow": [13, 21, 34]},
        base={"max_position": 3, "order_qty": 3}, costs=costs, workers=0, progress=False,
    )  # fmt: skip
    prices = pd.DataFrame({"ts_ns": bars.ts_ns, "mid": (bars.bid + bars.ask) / 2})
    page = write_report(d / "report.html", tables, prices=prices, sweep=sweep, title="ma_cross")
    png = equity_png(d / "equity.png", tables)
    return page, png


def test_page_is_self_contained(report: tuple[Path, Path]) -> None:
    text = report[0].read_text(encoding="utf-8")
    assert "<script src=" not in text.replace('<script src="data:', "")  # no external JS
    assert "plotly" in text.lower() and len(text) > 1_000_000  # the library is inline
    for name in CHARTS:
        assert f'id="chart-{name}"' in text


def test_equity_png(report: tuple[Path, Path]) -> None:
    import matplotlib.image as mpimg

    img = mpimg.imread(report[1])
    assert img.shape[0] > 300 and img.shape[1] > 600
    assert float(np.asarray(img)[..., :3].std()) > 0.05  # not a blank canvas


def _chromium(args: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-dev-shm-usage", f"--user-data-dir={tmp / 'profile'}",
        "--virtual-time-budget=15000", *args,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install chromium)")
def test_rendered_in_headless_chromium(report: tuple[Path, Path], tmp_path: Path) -> None:
    page = report[0].resolve().as_uri()
    dom = _chromium(["--dump-dom", page], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    for name in CHARTS:
        start = html.find(f'id="chart-{name}"')
        assert start >= 0, name
        end = html.find('<section class="tc-chart"', start)
        body = html[start : end if end > 0 else len(html)]
        assert 'class="main-svg"' in body, f"{name}: plotly drew no svg"
        if name == "sweep":
            assert re.search(r"<image[^>]+href=\"data:image/png", body), "heat map has no image"
        elif name == "pnl":
            assert len(re.findall(r'class="point"', body)) >= 5, "histogram has no bars"
        else:
            paths = re.findall(r'class="js-line"[^>]*d="M([^"]+)"', body)
            points = re.findall(r'class="point"', body)
            assert paths or points, f"{name}: no line and no markers"
            if name == "price":
                assert len(points) > 10, "trades are not marked"
    shot = tmp_path / "shot.png"
    res = _chromium([f"--screenshot={shot}", "--window-size=1280,2600", page], tmp_path)
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    import matplotlib.image as mpimg

    img = np.asarray(mpimg.imread(shot))[..., :3]
    assert img.shape[:2] == (2600, 1280)
    dark = (img.mean(axis=2) < 0.85).mean()
    assert dark > 0.01, f"screenshot looks blank ({dark:.4f} of pixels are not white)"
