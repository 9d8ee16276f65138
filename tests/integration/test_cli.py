"""The `tradecore` console script, run as a real subprocess (exit codes, stdout, stderr)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tradecore.marketdata.lobster import read_messages, read_orderbook

REPO = Path(__file__).parents[2]
DATA = REPO.parent / "shared" / "data" / "lobster"
AMZN_MESSAGE = "AMZN_2012-06-21_34200000_57600000_message_1.csv"
AAPL_MESSAGE = "AAPL_2012-06-21_34200000_57600000_message_10_first999.csv"
AAPL_ORDERBOOK = "AAPL_2012-06-21_34200000_57600000_orderbook_10_first999.csv"


def _script() -> Path | None:
    for candidate in (Path(sys.executable).parent / "tradecore", REPO / ".venv/bin/tradecore"):
        if candidate.is_file():
            return candidate
    return None


SCRIPT = _script()
pytestmark = pytest.mark.skipif(
    SCRIPT is None, reason="the tradecore console script is not installed (run make build)"
)
needs_data = pytest.mark.skipif(
    not (DATA / AMZN_MESSAGE).is_file(),
    reason=f"LOBSTER sample files not found in {DATA} (the shared data directory)",
)

VERIFY = re.compile(
    r"^LOBSTER (?P<label>\S+ \S+) level (?P<levels>\d+): rows checked (?P<rows>[\d,]+), "
    r"resyncs (?P<resyncs>[\d,]+), mismatches (?P<mismatches>[\d,]+) -> (?P<verdict>OK|FAILED)$",
    re.MULTILINE,
)


def run(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    assert SCRIPT is not None
    return subprocess.run(
        [str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def verdicts(stdout: str) -> dict[str, dict[str, str]]:
    return {m["label"]: m.groupdict() for m in VERIFY.finditer(stdout)}


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0]


@needs_data
@pytest.mark.slow
def test_replay_lobster_on_the_shared_directory() -> None:
    proc = run("replay-lobster", "--data", DATA)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = verdicts(proc.stdout)
    assert set(found) == {"AMZN 2012-06-21", "AAPL 2012-06-21"}
    amzn, aapl = found["AMZN 2012-06-21"], found["AAPL 2012-06-21"]
    assert (amzn["levels"], amzn["rows"], amzn["mismatches"]) == ("1", "57,515", "0")
    assert (aapl["levels"], aapl["rows"], aapl["mismatches"]) == ("10", "999", "0")
    assert amzn["verdict"] == aapl["verdict"] == "OK"
    assert "events applied 57,514 (message 0 is the seed): 1 new 27,845" in proc.stdout
    assert re.search(r"rows/s", proc.stdout)
    assert proc.stderr == ""


@needs_data
def test_replay_lobster_with_explicit_files() -> None:
    proc = run(
        "replay-lobster", "--message", DATA / AAPL_MESSAGE, "--orderbook", DATA / AAPL_ORDERBOOK
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (line,) = verdicts(proc.stdout).values()
    assert (line["rows"], line["mismatches"], line["verdict"]) == ("999", "0", "OK")


@needs_data
def test_a_tampered_message_file_fails_with_exit_1(tmp_path: Path) -> None:
    messages = list(read_messages(DATA / AAPL_MESSAGE))
    rows = list(read_orderbook(DATA / AAPL_ORDERBOOK))
    i = next(
        i
        for i, m in enumerate(messages[1:], 1)
        if m.kind == 3 and m.price in dict(rows[i - 1].side(m.side))
    )
    lines = (DATA / AAPL_MESSAGE).read_text().split("\n")
    fields = lines[messages[i].line - 1].split(",")
    fields[1] = "5"  # the deletion becomes a hidden execution: the visible book keeps the order
    lines[messages[i].line - 1] = ",".join(fields)
    message = tmp_path / AAPL_MESSAGE
    message.write_text("\n".join(lines))
    shutil.copy(DATA / AAPL_ORDERBOOK, tmp_path / AAPL_ORDERBOOK)

    proc = run("replay-lobster", "--data", tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (line,) = verdicts(proc.stdout).values()
    assert line["verdict"] == "FAILED"
    assert int(line["mismatches"]) >= 1
    assert f"mismatch: row {i} (orderbook line {i + 1}, after message line {i + 1}" in proc.stdout


def test_missing_file_exits_2_with_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "absent_message_1.csv"
    proc = run("replay-lobster", "--message", missing, "--orderbook", missing)
    assert_one_line_error(proc, str(missing), "no such file")
    proc = run("replay-lobster", "--data", tmp_path / "nowhere")
    assert_one_line_error(proc, str(tmp_path / "nowhere"))


def test_malformed_row_exits_2_naming_file_and_line(tmp_path: Path) -> None:
    message = tmp_path / "T_2020-01-02_1_2_message_1.csv"
    orderbook = tmp_path / "T_2020-01-02_1_2_orderbook_1.csv"
    message.write_text("1.0,5,0,1,1000,1\n2.0,1,7,5,1000,1\n3.0,3,7,5,1000\n")
    orderbook.write_text("1050,10,1000,5\n1050,10,1000,10\n1050,10,1000,5\n")
    proc = run("replay-lobster", "--message", message, "--orderbook", orderbook)
    assert_one_line_error(proc, f"{message}:3:", "expected 6 comma-separated fields")

    message.write_text("1.0,5,0,1,1000,1\n2.0,1,7,5,1000,1\n3.0,3,7,5,1000,1\n")
    orderbook.write_text("1050,10,1000,5\n1050,ten,1000,10\n1050,10,1000,5\n")
    proc = run("replay-lobster", "--data", tmp_path)
    assert_one_line_error(proc, f"{orderbook}:2:", "'ten' is not an integer")


def test_usage_errors_exit_2() -> None:
    proc = run()
    assert proc.returncode == 2
    assert "usage: tradecore" in proc.stderr
    proc = run("replay-lobster", "--message", "x.csv")
    assert proc.returncode == 2
    assert "--message and --orderbook go together" in proc.stderr
    proc = run("replay-lobster", "--capacity", "0")
    assert proc.returncode == 2
    assert "must be at least 1" in proc.stderr
    proc = run("--help")
    assert proc.returncode == 0
    assert "replay-lobster" in proc.stdout
    assert "demo" in proc.stdout


@pytest.mark.slow
def test_demo_runs_the_node_then_the_embedded_samples_then_the_core_summary() -> None:
    proc = run("demo", timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The paper-trading node comes first: its summary names what it processed and traded.
    node_part = proc.stdout.split("LOBSTER AMZN", 1)[0]
    assert "messages processed:" in node_part, proc.stdout
    assert "tick-to-trade:" in node_part, proc.stdout
    found = verdicts(proc.stdout)
    assert list(found) == ["AMZN 2012-06-21", "AAPL 2012-06-21"]
    assert found["AMZN 2012-06-21"]["rows"] == "57,515"
    assert found["AAPL 2012-06-21"]["rows"] == "999"
    assert all(v["mismatches"] == "0" for v in found.values())
    # After the AAPL report (its last line gives the speed) comes the core summary, or a line
    # saying why it is unavailable.
    aapl_report = proc.stdout.split("LOBSTER AAPL", 1)[1]
    summary = aapl_report.split(" rows/s\n", 1)[1].strip()
    assert summary, proc.stdout


@needs_data
def test_too_small_a_book_exits_2_with_one_line() -> None:
    proc = run(
        "replay-lobster",
        "--message",
        DATA / AAPL_MESSAGE,
        "--orderbook",
        DATA / AAPL_ORDERBOOK,
        "--capacity",
        "15",
    )
    assert_one_line_error(proc, "the book is full (capacity 15)", "row ")
