"""Every example backtest configuration validates; the quick ones run through the command line
twice with the same fill hash (determinism end to end)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from tradecore.backtest.config import load_backtest_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("backtest_*.toml"))


def test_there_is_an_example_per_builtin_strategy() -> None:
    kinds = set()
    for p in EXAMPLES:
        kinds |= {s.kind for s in load_backtest_config(p).config.strategy}
    assert {"imbalance", "ma_cross", "mean_reversion", "onnx"} <= kinds


@pytest.mark.parametrize("name", ["backtest_imbalance.toml", "backtest_ma_cross.toml"])
def test_example_runs_twice_with_the_same_hash(name: str) -> None:
    cmd = [sys.executable, "-m", "tradecore", "backtest", "--config", str(REPO / "examples" / name)]
    hashes = []
    for _ in range(2):
        r = subprocess.run([*cmd, "--no-write"], capture_output=True, text=True, check=False)
        assert r.returncode == 0, r.stderr
        m = re.search(r"fills hash: ([0-9a-f]{64})", r.stdout)
        assert m is not None, r.stdout
        hashes.append(m.group(1))
    assert hashes[0] == hashes[1]
