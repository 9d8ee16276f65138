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
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tradecore._core import L2Book, binance_scan
from tradecore.marketdata.errors import FeedFormatError
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


def _apply_outcome(book: L2Book, call: Callable[[], int]) -> tuple[object, object]:
    """What one apply call did: its result or its error (type and message), and the book."""
    try:
        out: object = call()
    except Exception as e:  # compared, not swallowed: both calls must agree
        out = (type(e), str(e))
    return out, book.depth(100_000)


@pytest.mark.parametrize("day", list(RECORDINGS))
def test_apply_at_the_scanned_offsets_equals_apply_depth_json(day: str) -> None:
    # The single-scan path (offsets from binance_scan) against the rescanning call, message by
    # message on twin books: same skipped count, same error, same book. Real traffic, then
    # edits that keep the message readable by the scanner (off-grid and bad values included).
    rec = RECORDINGS[day]
    rng = random.Random(day)
    inst = RecordedSource(rec).core.instruments
    texts = [t for t in replayed(rec) if '"depthUpdate"' in t]
    edited = []
    for text in texts[:300]:
        edited.append(text.replace('0","', '5","', 1))  # off the tick grid
        edited.append(text.replace('"]', 'x"]', 1))  # not a decimal
        edited.append(edit(text, rng.choice(["replace", "insert", "space", "repeat"]), rng))
    seen = 0
    for text in texts + edited:
        head = binance_scan(text)
        if head is None or head[0] != 1 or head[1] not in inst:
            continue
        b_at, a_at = head[5], head[6]
        raw = text.encode()  # offsets count UTF-8 bytes
        assert raw[b_at : b_at + 1] == b"[" and raw[a_at : a_at + 1] == b"["
        grid = inst[head[1]]
        one, two = (L2Book(grid.tick_size, grid.lot_size) for _ in range(2))
        for skip in (False, True):
            want = _apply_outcome(one, lambda: one.apply_depth_json(text, skip))  # noqa: B023
            got = _apply_outcome(two, lambda: two.apply_depth_at(text, b_at, a_at, skip))  # noqa: B023
            assert got == want, text
        seen += 1
    assert seen > len(texts)


def test_apply_at_other_offsets_raises_and_changes_nothing() -> None:
    text = (
        '{"stream":"x@depth","data":{"E":5,"s":"X","U":1,"u":2,"b":[["1.5","2"]],'
        '"a":[["2.0","3"]],"z":"\u00e9[[\\"1\\",\\"2\\"]]"}}'
    )
    head = binance_scan(text)
    assert head is not None and head[0] == 1
    book = L2Book("0.5", "1")
    assert book.apply_depth_at(text, head[5], head[6]) == 0
    assert book.depth() == ([(3, 2)], [(4, 3)])
    for b_at, a_at in [(0, head[6]), (head[5], head[5] + 1), (len(text), 0), (10**9, 0)]:
        with pytest.raises(FeedFormatError, match="not a depth message the fast path reads"):
            book.apply_depth_at(text, b_at, a_at)
        assert book.depth() == ([(3, 2)], [(4, 3)])
    # A byte offset inside the two-byte UTF-8 of "é" is no place to start: an error, no panic.
    inside = len(text[: text.index("\u00e9")].encode()) + 1
    with pytest.raises(FeedFormatError):
        book.apply_depth_at(text, inside, head[6])
    with pytest.raises(OverflowError):
        book.apply_depth_at(text, -1, head[6])
    assert book.depth() == ([(3, 2)], [(4, 3)])
