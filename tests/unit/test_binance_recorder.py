"""The recorder's gzip JSON lines and the readers (ours and cryptofeed's), real temp files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from tradecore.marketdata.errors import FeedFormatError
from tradecore.marketdata.recorder import Recorder, load_cryptofeed, load_recording, read_records


def test_round_trip_keeps_every_byte_and_time(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "r.jsonl.gz"
    odd = '{"stream": "x@aggTrade", "data": {"p": "1\\u00e9\\n"}} trailing \u2603 "quote"'
    with Recorder(path, streams=["btcusdt@depth@100ms"], flush_interval=0.01) as rec:
        rec.conn(1, "open", "ws://127.0.0.1:1/stream?streams=btcusdt@depth@100ms")
        rec.rest(
            2, "/api/v3/depth", {"symbol": "BTCUSDT", "limit": "5"}, 200, b'{"lastUpdateId":1}'
        )
        rec.rest(3, "/api/v3/depth", {"symbol": "BTCUSDT"}, 503, "down")
        for i in range(5000):
            rec.ws(10 + i, odd if i == 7 else f'{{"i":{i}}}')
        rec.ws(9_999, b"\xff broken")
        rec.conn(10_000, "closed", "gone")
    assert rec.count == 5003
    records = list(read_records(path))
    assert records[0]["format"] == "tradecore-binance" and records[0]["version"] == 1
    assert records[0]["streams"] == ["btcusdt@depth@100ms"]
    loaded = load_recording(path)
    assert len(loaded.messages) == 5001
    assert loaded.messages[7] == (17, odd)
    assert loaded.messages[4999] == (5009, '{"i":4999}')
    assert loaded.messages[-1] == (9_999, "\ufffd broken")
    assert loaded.snapshots == {"BTCUSDT": [(2, '{"lastUpdateId":1}')]}  # the 503 is not one
    assert loaded.disconnects == [10_000]
    assert loaded.symbols == ["BTCUSDT"]


def test_bad_recordings_name_file_and_line(tmp_path: Path) -> None:
    not_gz = tmp_path / "a.jsonl.gz"
    not_gz.write_text("hello")
    with pytest.raises(FeedFormatError, match=r"a\.jsonl\.gz: cannot read the recording"):
        list(read_records(not_gz))
    wrong = tmp_path / "b.jsonl.gz"
    with gzip.open(wrong, "wt") as f:
        f.write('{"format": "other"}\n')
    with pytest.raises(FeedFormatError, match=r"b\.jsonl\.gz:1: not a tradecore-binance"):
        list(read_records(wrong))
    bad_line = tmp_path / "c.jsonl.gz"
    with gzip.open(bad_line, "wt") as f:
        f.write(json.dumps({"format": "tradecore-binance", "version": 1}) + "\n{oops\n")
    with pytest.raises(FeedFormatError, match=r"c\.jsonl\.gz:2: not a JSON line"):
        list(read_records(bad_line))
    bad_rec = tmp_path / "d.jsonl.gz"
    with gzip.open(bad_rec, "wt") as f:
        f.write(json.dumps({"format": "tradecore-binance", "version": 1}) + '\n{"ws": "x"}\n')
    with pytest.raises(FeedFormatError, match=r"d\.jsonl\.gz: record 2: KeyError: 't'"):
        load_recording(bad_rec)
    truncated = tmp_path / "e.jsonl.gz"
    with Recorder(truncated, flush_interval=3600) as rec:
        for i in range(2000):
            rec.ws(i, f'{{"i":{i}, "pad": "{i * 7919 % 104729}"}}')
            if i == 1000:
                rec.flush()  # a sync-flushed batch: readable whatever comes after it
    truncated.write_bytes(truncated.read_bytes()[:-200])
    with pytest.raises(FeedFormatError, match="cannot read the recording"):
        list(read_records(truncated))
    # A recorder killed mid-run: every whole record before the cut is still usable.
    partial = load_recording(truncated)
    assert 1000 <= len(partial.messages) < 2000
    assert partial.messages == [
        (i, f'{{"i":{i}, "pad": "{i * 7919 % 104729}"}}') for i in range(len(partial.messages))
    ]
    with pytest.raises(FeedFormatError, match="cannot read the recording"):
        load_recording(truncated, truncated_ok=False)


def test_cryptofeed_loader_errors(tmp_path: Path) -> None:
    with pytest.raises(FeedFormatError, match=r"no BINANCE\.ws\.1\.0"):
        load_cryptofeed(tmp_path)
    (tmp_path / "BINANCE.ws.1.0").write_text(
        "wss://x/stream?streams=abc@depth@100ms <-> 1.5\n1.25: {}\nnot a line\n"
    )
    with pytest.raises(
        FeedFormatError, match=r"BINANCE\.ws\.1\.0:3: expected '<recv_ts>: <message>'"
    ):
        load_cryptofeed(tmp_path)
    (tmp_path / "BINANCE.ws.1.0").write_text(
        "wss://x/stream?streams=abc@depth@100ms <-> 1.5\n1.25: {}\n\n"
    )
    rec = load_cryptofeed(tmp_path)
    assert rec.streams == ["abc@depth@100ms"] and rec.messages == [(1_250_000_000, "{}")]
    (tmp_path / "BINANCE.http.0.0").write_text("https://h/api/v3/depth?limit=5 -> 1.0: {}\n")
    with pytest.raises(FeedFormatError, match=r"BINANCE\.http\.0\.0:1: no symbol"):
        load_cryptofeed(tmp_path)
