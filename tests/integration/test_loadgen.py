"""``tradecore loadgen`` against a real ``tradecore serve`` subprocess (127.0.0.1, port 0,
journal in a temp dir): the command line end to end (summary, JSON, PNG, report log, exit
status), the binding in process (it releases the GIL for the whole run), and the errors a user
can make. Runs are about a second at modest rates, so timing never decides a result."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tradecore.errors import ConfigError, UsageError
from tradecore.venue.loadgen import run_loadgen
from tradecore.venue.server import ServeProcess

KEYS = {1: "lg-py-key-1", 2: "lg-py-key-2"}


def _config(tmp: Path) -> Path:
    accounts = "".join(
        f'[[account]]\naccount = {a}\napi_key_sha256 = "{hashlib.sha256(k.encode()).hexdigest()}"\n'
        for a, k in KEYS.items()
    )
    text = f"""
[listen]
order_entry = "127.0.0.1:0"
metrics = "127.0.0.1:0"

[session]
rate_limit_per_sec = 1000000000
rate_limit_burst = 1000000000
cancel_on_disconnect = true

[journal]
dir = "{tmp / "journal"}"
fsync = "none"
snapshot_every = 0

[feed]
enabled = false

[[instrument]]
symbol_id = 1
symbol = "AAA"
tick_size = "0.01"
lot_size = "1"
price_band = {{ lo_ticks = 9000, hi_ticks = 11000 }}
max_order_qty = 1000
book_capacity = 65536

{accounts}"""
    path = tmp / "venue.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    tmp = tmp_path_factory.mktemp("loadgen")
    cfg = _config(tmp)
    with ServeProcess(cfg, log_file=tmp / "serve.log") as proc:
        host, port = proc.order_entry
        yield cfg, f"{host}:{port}"


def _accounts() -> list[str]:
    return [f"{a}:{k}" for a, k in KEYS.items()]


def test_cli_writes_summary_json_plot_and_report_log(
    venue: tuple[Path, str], tmp_path: Path
) -> None:
    cfg, addr = venue
    out_json, out_png, log = tmp_path / "r.json", tmp_path / "r.png", tmp_path / "r.csv"
    args = [sys.executable, "-m", "tradecore", "loadgen", "--config", str(cfg)]
    args += ["--connect", addr, "--rate", "5000", "--duration", "1", "--seed", "7"]
    for a in _accounts():
        args += ["--account", a]
    args += ["--json", str(out_json), "--plot", str(out_png), "--report-log", str(log)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "checks    ok" in done.stdout
    assert "p99.9" in done.stdout

    doc = json.loads(out_json.read_text())
    assert doc["ok"] is True and doc["failed_checks"] == []
    counts = doc["counts"]
    assert counts["sent_total"] == 5000
    assert counts["answered"] == counts["sent"]
    assert counts["unanswered"] == 0 and counts["seq_gaps"] == 0
    assert set(counts["rejects"]) <= {"UNKNOWN_ORDER"}
    assert counts["fills_maker"] == counts["fills_taker"] > 0
    lat = doc["latency_ns"]["all"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99_9"] <= lat["max"]
    assert doc["settings"]["seed"] == 7 and doc["settings"]["mode"] == "open"
    assert doc["machine"]["logical_cpus"] >= 1
    assert doc["plot"] == str(out_png)
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    with log.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == counts["reports_total"]
    by_session: dict[str, list[int]] = {}
    for row in rows:
        by_session.setdefault(row["session"], []).append(int(row["seq"]))
    assert sorted(by_session) == ["0", "1"]
    for seqs in by_session.values():
        # Contiguous (an account's stream starts at 1 on a fresh venue and continues after).
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    first = sum(
        1
        for r in rows
        if r["kind"] in ("ACCEPTED", "REJECTED", "REPLACED")
        or (r["kind"] == "CANCELLED" and r["reason"] == "USER")
    )
    assert first == counts["sent_total"]


def test_binding_releases_the_gil_and_closed_loop_is_consistent(
    venue: tuple[Path, str],
) -> None:
    cfg, addr = venue
    ticks = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    try:
        run = run_loadgen(
            config=cfg, connect=addr, accounts=_accounts(), rate="max", window=16, duration=1.0
        )
    finally:
        stop.set()
        t.join()
    # The counting thread ran during the second the load took.
    assert ticks > 100
    assert run.ok, run.summary
    assert run.data["settings"]["mode"] == "closed"
    assert run.data["counts"]["answered_total"] == run.data["counts"]["sent_total"] > 100


def test_user_errors_are_typed_and_named(venue: tuple[Path, str], tmp_path: Path) -> None:
    cfg, addr = venue
    with pytest.raises(UsageError, match="--account"):
        run_loadgen(connect=addr, accounts=["one:key"], symbols=["1:10000"])
    with pytest.raises(UsageError, match="--rate"):
        run_loadgen(config=cfg, connect=addr, accounts=_accounts(), rate="fast")
    with pytest.raises(UsageError, match="not in the venue config"):
        run_loadgen(config=cfg, connect=addr, accounts=["9:key"])
    bad = tmp_path / "bad.toml"
    bad.write_text("[listen]\nbogus = 1\n")
    with pytest.raises(ConfigError):
        run_loadgen(config=bad, accounts=_accounts())
    with pytest.raises(ConnectionError, match="refused"):
        run_loadgen(config=cfg, connect=addr, accounts=["1:wrong-key"])
    done = subprocess.run(
        [sys.executable, "-m", "tradecore", "loadgen", "--connect", addr, "--symbol", "1:10000"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--account" in done.stderr
