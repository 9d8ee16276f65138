"""The Rust fast path (``binance_scan`` + ``apply_depth_json``) against the reference path.

Two ``FeedCore`` instances read the same messages, one through ``on_message`` (fast path when
the scanner reads the message) and one through the reference path only (``json.loads`` and the
Python parsers); after every message their events, books and counters must be equal. Inputs:
the real recordings, then the recordings with random edits (bytes changed, dropped, inserted;
escapes, floats and negative ids, reordered and repeated keys, whitespace).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tradecore._core import binance_scan
from tradecore.marketdata.events import BookUpdate, MarketEvent
from tradecore.marketdata.recorder import Recording, load_cryptofeed
from tradecore.marketdata.replay import RecordedSource
from tradecore.marketdata.sync import FeedCore

DATA = Path("/work/shared/data/binance/cryptofeed")
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="shared recordings not present")


def cores(rec: Recording) -> tuple[FeedCore, FeedCore]:
    """Two cores synced on the recording's snapshots (via the recorded source)."""
    out = []
    for _ in range(2):
        src = RecordedSource(rec)
        for _ in src:
            pass
        out.append(src.core)
    return out[0], out[1]


def same(a: MarketEvent | None, b: MarketEvent | None) -> None:
    if isinstance(a, BookUpdate) and isinstance(b, BookUpdate):
        assert (a.symbol, a.ts_ns, a.recv_ns, a.update_id) == (
            b.symbol, b.ts_ns, b.recv_ns, b.update_id,
        )  # fmt: skip
        assert a.book.depth(100_000) == b.book.depth(100_000)
    else:
        assert a == b


def check(fast: FeedCore, slow: FeedCore, texts: list[str]) -> None:
    for i, text in enumerate(texts):
        a = fast.on_message(text, i)
        b = slow._slow(text, i)
        slow.stats.messages += 1
        same(a, b)
    for sym in fast.books:
        assert fast.books[sym].book.depth(100_000) == slow.books[sym].book.depth(100_000)
        assert fast.books[sym].update_id == slow.books[sym].update_id
    assert fast.stats == slow.stats


RECORDINGS = (
    {day: load_cryptofeed(DATA / day) for day in ("2021-08-14", "2021-10-12")}
    if DATA.is_dir()
    else {}
)


_REPLAYED: dict[str, list[str]] = {}


def replayed(rec: Recording) -> list[str]:
    """The recorded messages with the depth ids moved on so they apply again after a sync."""
    if rec.source in _REPLAYED:
        return _REPLAYED[rec.source]
    src = RecordedSource(rec)
    for _ in src:
        pass
    nxt = {s: b.update_id for s, b in src.core.books.items()}
    out = []
    for _, text in rec.messages:
        msg = json.loads(text)
        d = msg["data"]
        if d.get("e") == "depthUpdate":
            span = d["u"] - d["U"]
            d["U"] = nxt[d["s"]] + 1
            d["u"] = d["U"] + span
            nxt[d["s"]] = d["u"]
        out.append(json.dumps(msg, separators=(",", ":")))
    _REPLAYED[rec.source] = out
    return out


@pytest.mark.parametrize("day", list(RECORDINGS))
def test_recorded_messages_take_the_fast_path_and_agree(day: str) -> None:
    rec = RECORDINGS[day]
    texts = [t for _, t in rec.messages]
    assert all(binance_scan(t) is not None for t in texts)  # real traffic: always fast
    fast, slow = cores(rec)
    check(fast, slow, texts)  # old ids: dropped by both
    fast, slow = cores(rec)
    check(fast, slow, replayed(rec))  # applied by both (the books do change)
    assert fast.stats.depth_applied > 100


EDITS = [
    ("replace", None),
    ("delete", None),
    ("insert", None),
    ("escape", None),
    ("float", None),
    ("negative", None),
    ("swap", None),
    ("repeat", None),
    ("space", None),
]
NOISE = ['"', "\\", "[", "]", "{", "}", ",", ":", "0", "9", ".", "-", "e", " ", "x", "\n", "\u00e9"]


def edit(text: str, how: str, rng: random.Random) -> str:
    pos = rng.randrange(len(text) + 1)
    if how == "replace":
        return text[:pos] + rng.choice(NOISE) + text[pos + 1 :]
    if how == "delete":
        return text[:pos] + text[pos + 1 :]
    if how == "insert":
        return text[:pos] + rng.choice(NOISE) + text[pos:]
    if how == "space":
        return text[:pos] + rng.choice([" ", "\t", "\r\n"]) + text[pos:]
    msg = json.loads(text)
    d = msg["data"]
    keys = list(d)
    key = rng.choice(keys)
    if how == "escape":
        if isinstance(d[key], str):
            return text.replace(
                json.dumps(d[key]), '"' + "".join(f"\\u{ord(c):04x}" for c in d[key]) + '"', 1
            )
        return text.replace('"s":"', '"s":"\\u0042', 1)
    if how == "float" and isinstance(d[key], int) and not isinstance(d[key], bool):
        d[key] = float(d[key])
    elif how == "negative" and isinstance(d[key], int) and not isinstance(d[key], bool):
        d[key] = -d[key] - 1
    elif how == "swap":
        rng.shuffle(keys)
        msg = {"data": {k: d[k] for k in keys}, "stream": msg["stream"]}
        return json.dumps(msg)
    elif how == "repeat":
        body = json.dumps(d)[1:-1]
        return (
            json.dumps({"stream": msg["stream"]})[:-1]
            + ', "data": {'
            + body
            + f', "{key}": {json.dumps(d[key])}'
            + "}}"
        )
    return json.dumps(msg)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(list(RECORDINGS)), st.integers(0, 2**32), st.integers(1, 40))
def test_edited_messages_give_the_same_result_on_both_paths(day: str, seed: int, n: int) -> None:
    rng = random.Random(seed)
    rec = RECORDINGS[day]
    texts = replayed(rec)
    fast, slow = cores(rec)
    out = []
    for text in texts[: rng.randrange(len(texts))]:
        out.append(text)
    for _ in range(n):
        i = rng.randrange(len(texts))
        how = rng.choice(EDITS)[0]
        edited = edit(texts[i], how, rng)
        if binance_scan(edited) is not None:
            json.loads(edited)  # the fast path never reads what json rejects
        out.insert(rng.randrange(len(out) + 1), edited)
    check(fast, slow, out)
