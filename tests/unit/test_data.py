"""tradecore.data: the columnar format, the loaders, the synthetic generators, bad input."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tradecore import OrderBook
from tradecore.data import DataFormatError, open_columnar, write_table
from tradecore.data.binance import load_binance
from tradecore.data.columnar import ColumnarWriter
from tradecore.data.convert import convert
from tradecore.data.csvio import read_csv_chunks
from tradecore.data.lobster import columnar_book_rows, columnar_messages, convert_lobster
from tradecore.data.schema import concat_chunks, kind_named
from tradecore.data.synthetic import L3Params, synthetic_l2, synthetic_l3, synthetic_quotes
from tradecore.marketdata.lobster import LobsterFiles, LobsterReplay, embedded_samples

CRYPTOFEED = Path("/work/shared/data/binance/cryptofeed")
REPO = Path(__file__).resolve().parents[2]


def _all(chunks: object, kind: str) -> dict[str, np.ndarray]:
    return concat_chunks(kind_named(kind), list(chunks))  # type: ignore[call-overload]


# ----------------------------------------------------------------------------- synthetic


@pytest.mark.parametrize("gen", [synthetic_quotes, synthetic_l3])
def test_synthetic_is_the_same_in_any_chunking(gen: object) -> None:
    kind = "quotes" if gen is synthetic_quotes else "l3"
    whole = _all(gen(150_000, 9, chunk_rows=150_000), kind)  # type: ignore[operator]
    parts = list(gen(150_000, 9, chunk_rows=7_777))  # type: ignore[operator]
    assert [len(p["ts_ns"]) for p in parts[:-1]] == [7_777] * (len(parts) - 1)
    pieces = _all(parts, kind)
    for col in whole:
        assert np.array_equal(whole[col], pieces[col]), col
    other = _all(gen(150_000, 10, chunk_rows=150_000), kind)  # type: ignore[operator]
    assert not np.array_equal(
        whole["price" if kind == "l3" else "bid_px"], other["price" if kind == "l3" else "bid_px"]
    )
    assert np.all(np.diff(whole["ts_ns"]) >= 0)


def test_synthetic_l2_quotes_and_trades() -> None:
    q_parts, t_parts = zip(*synthetic_l2(100_000, 4, chunk_rows=30_000), strict=True)
    q, t = _all(q_parts, "quotes"), _all(t_parts, "trades")
    assert len(q["ts_ns"]) + len(t["ts_ns"]) == 100_000
    assert 0.15 < len(t["ts_ns"]) / 100_000 < 0.25
    assert np.all(q["ask_px"] > q["bid_px"]) and np.all(q["bid_px"] > 0)
    assert set(np.unique(t["aggressor"]).tolist()) == {-1, 1}
    assert np.all(t["qty"] >= 1)


def test_synthetic_l3_is_a_consistent_order_flow() -> None:
    """Replayed through the real book: adds never match, deletes and cancels name resting
    orders with their exact size, executions take the front order of the best level."""
    flow = _all(synthetic_l3(60_000, 2, params=L3Params(half_band=50)), "l3")
    book = OrderBook(capacity=1 << 17)
    counts = np.bincount(flow["kind"], minlength=5)
    assert all(counts[k] > 1_000 for k in (1, 2, 3, 4)), counts
    rows = zip(
        *(flow[c].tolist() for c in ("kind", "order_id", "size", "price", "direction")), strict=True
    )
    for kind, oid, size, price, direction in rows:
        side = "BUY" if direction == 1 else "SELL"
        if kind == 1:
            events = book.submit(oid, 1, side, price, size)
            assert [e.kind.value for e in events] == ["ACCEPTED"]
            continue
        resting = book.order(oid)
        assert resting is not None and resting[2] == price, (kind, oid)
        leaves = resting[3]
        if kind == 4:
            best = book.best_bid() if side == "BUY" else book.best_ask()
            assert best is not None and best[0] == price
            assert book.orders(side, price)[0][0] == oid  # front of the queue
        if kind == 3:
            assert size == leaves
            book.cancel(oid)
        elif size == leaves:
            book.cancel(oid)
        else:
            assert size < leaves
            book.modify(oid, price, leaves - size)
    assert len(book) > 0


# ----------------------------------------------------------------------------- columnar


def test_columnar_round_trip_and_chunked_reads(tmp_path: Path) -> None:
    path = tmp_path / "q.parquet"
    rows = write_table(
        path, "quotes", synthetic_quotes(100_000, 3, chunk_rows=30_000), meta={"symbol": "SYN"}
    )
    assert rows == 100_000
    f = open_columnar(path)
    assert f.kind.name == "quotes" and f.rows == 100_000 and f.meta["symbol"] == "SYN"
    want = _all(synthetic_quotes(100_000, 3), "quotes")
    got = f.read()
    for c in want:
        assert np.array_equal(want[c], got[c]) and got[c].dtype == np.int64
    sizes = [len(c["ts_ns"]) for c in f.iter_chunks(rows=12_345)]
    assert sum(sizes) == 100_000 and max(sizes) <= 12_345
    only = next(f.iter_chunks(rows=10, columns=["bid_px"]))
    assert list(only) == ["bid_px"]
    assert f.to_pandas()["ask_px"].sum() == want["ask_px"].sum()


def test_writer_refuses_bad_chunks_and_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    good = {
        "ts_ns": [1, 2],
        "event_ns": [1, 2],
        "trade_id": [1, 2],
        "price": [5, 5],
        "qty": [1, 1],
        "aggressor": [1, -1],
    }
    with (
        pytest.raises(
            DataFormatError, match=r"t\.parquet: row 4: ts_ns 1 is before the previous row's 3"
        ),
        ColumnarWriter(path, "trades") as w,
    ):
        w.write(good)
        w.write({**good, "ts_ns": [3, 1]})
    assert not path.exists() and not list(tmp_path.iterdir())
    with pytest.raises(DataFormatError, match=r"unknown column\(s\) 'venue'"):
        write_table(path, "trades", [{**good, "venue": [0, 0]}])
    with pytest.raises(DataFormatError, match=r"missing column\(s\) 'qty'"):
        write_table(path, "trades", [{k: v for k, v in good.items() if k != "qty"}])
    with pytest.raises(
        DataFormatError, match=r"row 2: column 'aggressor' value 300 does not fit int8"
    ):
        write_table(path, "trades", [{**good, "aggressor": [1, 300]}])
    with pytest.raises(DataFormatError, match="expected integers"):
        write_table(path, "trades", [{**good, "price": [5.5, 5.0]}])
    with pytest.raises(RuntimeError, match="boom"), ColumnarWriter(path, "trades") as w:
        w.write(good)
        raise RuntimeError("boom")
    assert not list(tmp_path.iterdir())


def test_reader_names_the_file_and_row(tmp_path: Path) -> None:
    path = tmp_path / "q.parquet"
    write_table(path, "quotes", synthetic_quotes(50_000, 1, chunk_rows=10_000))
    # truncated: the footer is gone
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataFormatError, match=r"cut\.parquet: not a readable Parquet file"):
        open_columnar(cut)
    # a foreign file, an unknown column, unsorted timestamps (written around our writer)
    schema_md = {b"tradecore.kind": b"trades", b"tradecore.version": b"1"}
    cols = {
        "ts_ns": [1, 2, 3],
        "event_ns": [1, 2, 3],
        "trade_id": [1, 2, 3],
        "price": [5, 5, 5],
        "qty": [1, 1, 1],
        "aggressor": [1, 1, 1],
    }
    foreign = tmp_path / "foreign.parquet"
    pq.write_table(pa.table(cols), foreign)
    with pytest.raises(DataFormatError, match=r"no tradecore\.kind"):
        open_columnar(foreign)
    extra = tmp_path / "extra.parquet"
    pq.write_table(pa.table({**cols, "note": [0, 0, 0]}).replace_schema_metadata(schema_md), extra)
    with pytest.raises(DataFormatError, match=r"extra\.parquet: unknown column\(s\) 'note'"):
        open_columnar(extra)
    unsorted = tmp_path / "unsorted.parquet"
    table = pa.table({**cols, "ts_ns": [1, 9, 4]}).replace_schema_metadata(schema_md)
    pq.write_table(table, unsorted)
    f = open_columnar(unsorted)
    with pytest.raises(
        DataFormatError, match=r"unsorted\.parquet: row 3: ts_ns 4 is before the previous row's 9"
    ):
        f.read()


# ----------------------------------------------------------------------------- CSV


def test_csv_errors_name_file_and_row(tmp_path: Path) -> None:
    kind = kind_named("trades")
    header = "ts_ns,event_ns,trade_id,price,qty,aggressor\n"
    good = "".join(f"{i},{i},{i},100,1,1\n" for i in range(1, 6))
    p = tmp_path / "ok.csv"
    p.write_text(header + good)
    assert len(next(read_csv_chunks(p, kind))["ts_ns"]) == 5
    cases = {
        "truncated.csv": (header + good + "6,6,6,1", r"truncated\.csv: row 6: expected 6 fields"),
        "unsorted.csv": (
            header + good + "2,2,2,100,1,1\n",
            r"unsorted\.csv: row 6: ts_ns 2 is before",
        ),
        "unknown.csv": (
            header.replace("\n", ",venue\n") + "1,1,1,1,1,1,0\n",
            r"unknown column\(s\) 'venue'",
        ),
        "text.csv": (
            header + "1,1,1,abc,1,1\n",
            r"text\.csv: row 1: column 'price': 'abc' is not an integer",
        ),
    }
    for name, (text, pattern) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(DataFormatError, match=pattern):
            list(read_csv_chunks(tmp_path / name, kind))
    body = (header + "".join(f"{i},{i},{i},100,1,1\n" for i in range(1, 50_001))).encode()
    gz = gzip.compress(body)
    (tmp_path / "cut.csv.gz").write_bytes(gz[: len(gz) * 2 // 3])
    with pytest.raises(
        DataFormatError, match=r"cut\.csv\.gz: row \d+: the file ends or breaks here"
    ):
        list(read_csv_chunks(tmp_path / "cut.csv.gz", kind))
    out = convert(p, tmp_path / "out", kind="trades")
    assert out.outputs[0][2] == 5 and open_columnar(out.outputs[0][0]).kind.name == "trades"


# ----------------------------------------------------------------------------- LOBSTER


def test_lobster_day_replays_from_parquet_without_a_mismatch(tmp_path: Path) -> None:
    """The AMZN day (57,515 rows) converted to Parquet and read back reproduces the recorded
    book on every row through the core's L3 check."""
    for files in embedded_samples():
        l3, book, rows = convert_lobster(
            files, tmp_path / files.label.replace(" ", "_"), chunk_rows=10_000
        )
        result = LobsterReplay(
            columnar_messages(l3), columnar_book_rows(book), label=files.label
        ).run()
        assert result.rows_checked == rows
        assert result.mismatches == 0, result.report()


def test_lobster_bad_input(tmp_path: Path) -> None:
    msg, book = embedded_samples()[1].message, embedded_samples()[1].orderbook
    lines = gzip.decompress(msg.read_bytes()).decode().splitlines()
    blines = gzip.decompress(book.read_bytes()).decode().splitlines()
    m = tmp_path / "X_2012-06-21_0_0_message_10.csv"
    b = tmp_path / "X_2012-06-21_0_0_orderbook_10.csv"
    back = list(lines)
    t1 = back[5].split(",")
    t1[0] = "34000.0"
    back[5] = ",".join(t1)
    m.write_text("\n".join(back) + "\n")
    b.write_text("\n".join(blines) + "\n")
    with pytest.raises(
        DataFormatError, match=r"message_10\.csv: line 6: Time 34000\.000000000 s is before"
    ):
        convert(m, tmp_path / "o1")
    assert not (tmp_path / "o1" / "l3.parquet").exists()
    m.write_text("\n".join(lines) + "\n")
    b.write_text("\n".join(blines[:500]) + "\n")
    with pytest.raises(DataFormatError, match=r"orderbook_10\.csv: ends after 500 rows"):
        convert(m, tmp_path / "o2")
    b.write_text("\n".join(blines) + "\n")
    m.write_text("\n".join(lines[:100]) + "\n34300.1,1,5\n")
    with pytest.raises(
        DataFormatError, match=r"message_10\.csv: line 101: expected 6 comma-separated"
    ):
        convert(m, tmp_path / "o3")
    assert not (tmp_path / "o3").exists() or not list((tmp_path / "o3").glob("*.parquet"))
    files = LobsterFiles(m, b)
    assert files.label == "X 2012-06-21"


# ----------------------------------------------------------------------------- Binance


@pytest.mark.skipif(not CRYPTOFEED.is_dir(), reason="no shared Binance recordings")
def test_binance_recordings(tmp_path: Path) -> None:
    t = load_binance(CRYPTOFEED / "2021-10-12")
    assert t.symbols() == ["BLZETH", "LRCBTC", "NKNUSDT", "RUNEEUR"]
    nkn = t.tables["NKNUSDT"]
    # first message: NKNUSDT diff U=499869750 u=499869752, bid 0.35130000 x 6195 (tick 0.0001)
    d = nkn["depth"]
    assert (int(d["first_id"][0]), int(d["last_id"][0]), int(d["side"][0])) == (
        499869750,
        499869752,
        1,
    )
    assert (int(d["price"][0]), int(d["qty"][0])) == (3513, 6195)
    assert int(d["ts_ns"][0]) == 1633998512063356900
    assert len(nkn["quotes"]["ts_ns"]) > 50 and len(nkn["snapshot"]["ts_ns"]) > 1000
    assert t.ignored == 2 and t.off_grid > 0  # klines; snapshot quantities off LOT_SIZE
    with pytest.raises(DataFormatError, match="off the grid"):
        load_binance(CRYPTOFEED / "2021-10-12", skip_off_grid=False)
    out = convert(CRYPTOFEED / "2021-08-14", tmp_path / "b")
    assert {p.parent.name for p, _, _ in out.outputs} == {
        "BADGERBTC",
        "FTMUSDT",
        "SXPBTC",
        "XMRBTC",
    }
    f = open_columnar(tmp_path / "b" / "FTMUSDT" / "trades.parquet")
    assert f.rows == 13 and f.meta["tick_size"] and f.meta["symbol"] == "FTMUSDT"
    # a broken message names the file and message number
    bad = tmp_path / "bad"
    shutil.copytree(CRYPTOFEED / "2021-10-12", bad)
    ws = bad / "BINANCE.ws.1.0"
    ws.chmod(0o644)
    lines = ws.read_text().splitlines(keepends=True)
    ts, _, body = lines[3].partition(": ")
    obj = json.loads(body)
    obj["data"]["s"] = 7
    lines[3] = f"{ts}: {json.dumps(obj)}\n"
    ws.write_text("".join(lines))
    with pytest.raises(DataFormatError, match=r"bad: message 3: .*'s' must be str"):
        load_binance(bad)


NODE_RECORDING = REPO / "python" / "tradecore" / "node" / "data" / "binance-2021-08-14.jsonl.gz"


@pytest.mark.skipif(not NODE_RECORDING.is_file(), reason="no embedded node recording")
def test_node_recorder_output_loads_like_the_cryptofeed_original() -> None:
    ours = load_binance(NODE_RECORDING)
    if CRYPTOFEED.is_dir():
        orig = load_binance(CRYPTOFEED / "2021-08-14")
        assert ours.symbols() == orig.symbols()
        for sym in ours.symbols():
            for kind, table in orig.tables[sym].items():
                assert len(ours.tables[sym][kind]["ts_ns"]) == len(table["ts_ns"]), (sym, kind)
                assert np.array_equal(
                    ours.tables[sym][kind]["price" if kind != "quotes" else "bid_px"],
                    table["price" if kind != "quotes" else "bid_px"],
                )


# ----------------------------------------------------------------------------- CLI, memory


def test_data_cli_convert_synth_info(tmp_path: Path) -> None:
    import argparse
    import io

    from tradecore.data.cli import register

    parser = argparse.ArgumentParser(prog="tradecore")
    register(parser.add_subparsers(dest="command", required=True))

    def run(*argv: str) -> str:
        args = parser.parse_args(list(argv))
        out = io.StringIO()
        assert args.handler(args, out) == 0
        return out.getvalue()

    text = run(
        "data", "synth", "l3", "--rows", "20000", "--seed", "3", "--out", str(tmp_path / "s")
    )
    assert "20,000 rows" in text
    info = run("data", "info", str(tmp_path / "s" / "l3.parquet"))
    assert "l3 table, 20,000 rows" in info and "ts_ns: 34200" in info
    msg = embedded_samples()[1].message
    conv = run("data", "convert", str(msg), "--out", str(tmp_path / "c"))
    assert "l3book, 999 rows" in conv


MEMORY_SCRIPT = r"""
import resource, sys
from tradecore.data.columnar import ColumnarWriter, open_columnar
from tradecore.data.synthetic import synthetic_l2
rows, path = int(sys.argv[1]), sys.argv[2]
wq = ColumnarWriter(path + "/q.parquet", "quotes")
wt = ColumnarWriter(path + "/t.parquet", "trades")
for q, t in synthetic_l2(rows, 5, chunk_rows=65536):
    wq.write(q)
    wt.write(t)
wq.close()
wt.close()
total = 0
for c in open_columnar(path + "/q.parquet").iter_chunks(65536):
    total += int(c["bid_px"][-1])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, total)
"""


def test_memory_stays_flat_as_data_grows(tmp_path: Path) -> None:
    """Peak RSS of generating, writing and streaming back 10x more L2 events stays within 20%:
    200k vs 2M rows here; 1M vs 10M with ``TRADECORE_LONG_TESTS=1``."""
    small_rows = 1_000_000 if os.environ.get("TRADECORE_LONG_TESTS") else 200_000
    peaks = []
    for rows in (small_rows, 10 * small_rows):
        d = tmp_path / str(rows)
        d.mkdir()
        res = subprocess.run(
            [sys.executable, "-c", MEMORY_SCRIPT, str(rows), str(d)],
            capture_output=True, text=True, check=True, timeout=300,
        )  # fmt: skip
        peaks.append(int(res.stdout.split()[0]))
    small, big = peaks
    assert big <= small * 1.2, f"peak RSS {small} KiB vs {big} KiB for 10x the rows"
