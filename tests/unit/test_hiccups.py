"""The machine-stall meter (``tradecore hiccups``, ``measure_hiccups``): real threads spinning on
the real clock for a fraction of a second; the floor arithmetic itself is unit-tested in Rust
(crates/engine/src/loadgen/hiccup.rs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tradecore.cli import main
from tradecore.venue.loadgen import measure_hiccups


def test_measure_returns_consistent_figures() -> None:
    h = measure_hiccups(threads=2, seconds=0.2)
    assert h.data["threads"] == 2
    assert len(h.data["per_thread"]) == 2
    assert all(t["reads"] > 1000 for t in h.data["per_thread"])
    counts = [row["stalls"] for row in h.data["by_threshold"]]
    shares = [row["late_share"] for row in h.data["by_threshold"]]
    # Longer thresholds can only catch fewer stalls and delay fewer commands.
    assert counts == sorted(counts, reverse=True)
    assert shares == sorted(shares, reverse=True)
    floors = [h.floor_ns(q) for q in ("p50", "p99", "p99.9", "p99.99")]
    assert floors == sorted(floors)
    assert "latency floor" in h.summary


def test_bad_arguments_are_value_errors() -> None:
    with pytest.raises(ValueError, match="threads must be"):
        measure_hiccups(threads=0, seconds=0.1)
    with pytest.raises(ValueError, match="seconds must be"):
        measure_hiccups(threads=1, seconds=0)
    h = measure_hiccups(threads=1, seconds=0.05)
    with pytest.raises(ValueError, match="not measured"):
        h.floor_ns("p42")


def test_cli_prints_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "h.json"
    assert main(["hiccups", "--threads", "1", "--seconds", "0.1", "--json", str(out)]) == 0
    assert "stalls >" in capsys.readouterr().out
    assert json.loads(out.read_text())["threads"] == 1
    assert main(["hiccups", "--threads", "0", "--seconds", "0.1"]) == 2
    assert "threads must be" in capsys.readouterr().err
