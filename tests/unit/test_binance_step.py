"""``binance_step`` (one Rust call per message) against the reference path, message by message.

``FeedCore.on_message`` takes the Rust step: the scan, and for the next diff of a synced book
the whole apply (levels, crossed check, ``BookUpdate``); for a bookTicker or an aggTrade the
grid conversions. The reference is ``FeedCore._slow`` (``json.loads`` and the Python parsers
and sync rules). Two cores read the same random streams (in-sequence diffs, duplicates, gaps,
bridges, snapshots stale and fresh, off-grid and crossing levels, bad decimals, malformed
JSON, unknown symbols, disconnects, quotes and trades with good and bad values) and must
agree after every message on the event, the logged records, and at the end on books, ids,
states and counters. The recorded traffic is compared the same way in
``test_binance_fastpath.py``.
"""

from __future__ import annotations

import json
import logging
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tradecore import Instrument
from tradecore._core import L2Book, binance_scan, binance_step
from tradecore.marketdata.events import BookUpdate, MarketEvent, Quote, Resync, TradeTick
from tradecore.marketdata.sync import FeedCore, SyncState

INST = {
    "AAAUSDT": Instrument("AAAUSDT", tick_size="0.01", lot_size="0.001"),
    "BBBBTC": Instrument("BBBBTC", tick_size="0.00000100", lot_size="1"),
}
PRICES = {
    "AAAUSDT": ["99.98", "99.99", "100.00", "100.01", "100.02", "100.005", "1e2", "100.0100"],
    "BBBBTC": ["0.00012300", "0.00012400", "0.00012500", "0.000124001", "0.0001245"],
}
QTYS = {
    "AAAUSDT": ["0", "0.000", "1.5", "0.001", "2.0005", "x", "18446744073709551.616"],
    "BBBBTC": ["0", "3", "12.00000000", "0.5", "-1"],
}


class Records(logging.Handler):
    """Every record of the sync's logger, as (level, message)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append((record.levelno, record.getMessage()))


def same(a: MarketEvent | None, b: MarketEvent | None) -> None:
    assert type(a) is type(b)
    if isinstance(a, BookUpdate) and isinstance(b, BookUpdate):
        assert (a.symbol, a.ts_ns, a.recv_ns, a.update_id) == (
            b.symbol, b.ts_ns, b.recv_ns, b.update_id,
        )  # fmt: skip
        assert a.book.depth(1000) == b.book.depth(1000)
    else:
        assert a == b


def message(stream: str, data: dict[str, Any], rng: random.Random) -> str:
    if rng.random() < 0.1:  # another layout: spaces, keys in another order
        items = list(data.items())
        rng.shuffle(items)
        return json.dumps({"data": dict(items), "stream": stream})
    return json.dumps({"stream": stream, "data": data}, separators=(",", ":"))


class Stream:
    """A random Binance-like stream of two symbols (ids, snapshots, bad input)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.next_id = {s: 100 for s in INST}
        self.t = 1_700_000_000_000

    def levels(self, sym: str) -> list[list[str]]:
        rng = self.rng
        n = rng.choice([0, 1, 1, 2, 3])
        return [[rng.choice(PRICES[sym]), rng.choice(QTYS[sym])] for _ in range(n)]

    def clean_levels(self, sym: str, side: str) -> list[list[str]]:
        """On the grid and on its own side of 100 (AAA) / 0.000124 (BBB): no crossing."""
        prices = PRICES[sym][:2] if side == "b" else PRICES[sym][3:5]
        if sym == "BBBBTC":
            prices = ["0.00012300"] if side == "b" else ["0.00012500"]
        n = self.rng.choice([0, 1, 2])
        return [[self.rng.choice(prices), self.rng.choice(["0", "1.5", "3"])] for _ in range(n)]

    def diff(self, sym: str) -> str:
        rng = self.rng
        nxt = self.next_id[sym]
        r = rng.random()
        if r < 0.7:
            first, last = nxt, nxt + rng.choice([0, 0, 1, 3])
        elif r < 0.8:
            first, last = nxt - rng.choice([1, 2, 5]), nxt - 1  # old or duplicate
        elif r < 0.9:
            first = nxt + rng.choice([1, 2, 50])  # a gap
            last = first + rng.choice([0, 2])
        else:
            first, last = nxt - 2, nxt + 1  # overlapping: a bridge
        self.next_id[sym] = max(nxt, last + 1)
        clean = rng.random() < 0.75
        data = {
            "e": "depthUpdate",
            "E": self.t,
            "s": sym,
            "U": first,
            "u": last,
            "b": self.clean_levels(sym, "b") if clean else self.levels(sym),
            "a": self.clean_levels(sym, "a") if clean else self.levels(sym),
        }
        return message(f"{sym.lower()}@depth@100ms", data, rng)

    def quote(self, sym: str) -> str:
        rng = self.rng
        data = {
            "u": self.next_id[sym],
            "s": sym,
            "b": rng.choice(PRICES[sym]),
            "B": rng.choice(QTYS[sym]),
            "a": rng.choice(PRICES[sym]),
            "A": rng.choice(QTYS[sym]),
        }
        return message(f"{sym.lower()}@bookTicker", data, rng)

    def trade(self, sym: str) -> str:
        rng = self.rng
        data = {
            "e": "aggTrade",
            "E": self.t,
            "s": sym,
            "a": rng.randrange(10**6),
            "p": rng.choice(PRICES[sym]),
            "q": rng.choice(QTYS[sym]),
            "f": 1,
            "l": 2,
            "T": self.t - 3,
            "m": rng.random() < 0.5,
            "M": True,
        }
        return message(f"{sym.lower()}@aggTrade", data, rng)

    def snapshot(self, sym: str) -> str:
        rng = self.rng
        last_id = self.next_id[sym] - rng.choice([1, 1, 2, 0, -3])
        bids = self.clean_levels(sym, "b") or [[PRICES[sym][0], "1"]]
        asks = self.clean_levels(sym, "a") or [[PRICES[sym][4], "1"]]
        if rng.random() < 0.1:
            bids.append([PRICES[sym][-1], "1"])  # off the grid (left out) or crossing
        return json.dumps({"lastUpdateId": last_id, "bids": bids, "asks": asks})

    def step(self) -> tuple[str, Any]:
        """One input: ("msg", text), ("snap", (symbol, body)) or ("disconnect", None)."""
        rng = self.rng
        self.t += rng.randrange(1, 200)
        sym = rng.choice([*INST, "AAAUSDT"])
        r = rng.random()
        if r < 0.5:
            return "msg", self.diff(sym)
        if r < 0.65:
            return "msg", self.quote(sym)
        if r < 0.72:
            return "msg", self.trade(sym)
        if r < 0.82:
            return "snap", (sym, self.snapshot(sym))
        if r < 0.84:
            return "disconnect", None
        if r < 0.88:
            text = self.diff(sym)
            return "msg", text[: rng.randrange(len(text))]  # truncated
        if r < 0.9:
            return "msg", self.diff(sym).replace(sym, "ZZZUSDT")  # unknown symbol
        if r < 0.92:
            return "msg", json.dumps({"stream": "x@kline_1m", "data": {"k": {}}})
        return "msg", self.diff(sym)


def run_both(rng: random.Random, steps: int) -> tuple[FeedCore, FeedCore, int]:
    """Feed one random stream to a fast and a reference core; compare after every step."""
    fast, slow = FeedCore(INST, wall_offset_ns=5), FeedCore(INST, wall_offset_ns=5)
    stream = Stream(rng)
    records = Records()
    logger = logging.getLogger("tradecore.marketdata.sync")
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(records)
    applied_in_rust = 0
    try:
        for i in range(steps):
            kind, item = stream.step()
            out: list[tuple[object, list[tuple[int, str]]]] = []
            for core, is_fast in ((fast, True), (slow, False)):
                records.seen.clear()
                if kind == "msg":
                    if is_fast:
                        before = core.stats.depth_applied
                        event: Any = core.on_message(item, i)
                        if isinstance(event, BookUpdate) and core.stats.depth_applied > before:
                            applied_in_rust += 1
                    else:
                        core.stats.messages += 1
                        event = core._slow(item, i)
                elif kind == "snap":
                    sym, body = item
                    event = core.on_snapshot(sym, body, i)
                else:
                    event = core.on_disconnect(i)
                out.append((event, list(records.seen)))
            (a, log_a), (b, log_b) = out
            if isinstance(a, list):
                assert isinstance(b, list) and len(a) == len(b)
                for x, y in zip(a, b, strict=True):
                    same(x, y)
            else:
                same(a, b)  # type: ignore[arg-type]
            assert log_a == log_b, (kind, item)
    finally:
        logger.removeHandler(records)
        logger.setLevel(old_level)
    for sym in INST:
        fa, sl = fast.books[sym], slow.books[sym]
        assert fa.book.depth(1000) == sl.book.depth(1000)
        assert (fa.update_id, fa.state, fa.snapshot_requested) == (
            sl.update_id, sl.state, sl.snapshot_requested,
        )  # fmt: skip
    assert fast.stats == slow.stats
    return fast, slow, applied_in_rust


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32))
def test_random_streams_agree_with_the_reference(seed: int) -> None:
    run_both(random.Random(seed), 300)


def test_random_streams_cover_every_outcome() -> None:
    # The streams above reach the cases that matter (so the comparison is not vacuous).
    fast, _, in_rust = run_both(random.Random(7), 3000)
    st_ = fast.stats
    assert in_rust > 100 and st_.quotes > 50 and st_.trades > 20
    assert st_.off_grid_levels > 0 and st_.dropped_old > 0 and st_.stale_snapshots > 0
    assert {"gap", "crossed", "bad diff", "disconnect"} <= set(st_.resyncs), st_.resyncs
    assert {"format", "unknown symbol", "off grid"} <= set(st_.errors), st_.errors


def synced(last_id: int = 10) -> FeedCore:
    core = FeedCore(INST)
    sym = "AAAUSDT"
    text = depth(5, 9)
    assert core.on_message(text, 1) is None
    body = json.dumps(
        {"lastUpdateId": last_id, "bids": [["100.00", "1"]], "asks": [["100.02", "1"]]}
    )
    assert isinstance(core.on_snapshot(sym, body, 2), BookUpdate)
    assert core.books[sym].state is SyncState.SYNCED
    return core


def depth(first: int, last: int, bids: Any = (), asks: Any = ()) -> str:
    data = {
        "e": "depthUpdate",
        "E": 1_700_000_000_000 + last,
        "s": "AAAUSDT",
        "U": first,
        "u": last,
        "b": [list(x) for x in bids],
        "a": [list(x) for x in asks],
    }
    return json.dumps({"stream": "aaausdt@depth@100ms", "data": data}, separators=(",", ":"))


def test_step_applies_only_the_next_diff_of_a_synced_book() -> None:
    core = synced(10)
    sync = core.books["AAAUSDT"]
    text = depth(11, 12, bids=[["100.01", "2"]])
    ev = binance_step(text, 77, core.books)
    assert isinstance(ev, BookUpdate)
    assert (ev.symbol, ev.ts_ns, ev.recv_ns, ev.update_id) == (
        "AAAUSDT", (1_700_000_000_000 + 12) * 1_000_000, 77, 12,
    )  # fmt: skip
    assert ev.book is sync.book and sync.book.best_bid() == (10001, 2000)
    assert sync.update_id == 10  # the caller records the id (FeedCore.on_message does)
    sync.update_id = 12
    # Not the next diff, an unknown symbol, an unsynced book, an off-grid level: the scan's
    # tuple, and nothing changes.
    book_before = sync.book.depth(100)
    for text in [
        depth(14, 15),  # a gap
        depth(5, 12),  # old
        depth(13, 14, bids=[["100.005", "1"]]),  # off the grid: the Python rules log it
        depth(13, 14, bids=[["100.01", "x"]]),  # a bad decimal: the Python rules word it
        depth(13, 14).replace("AAAUSDT", "ZZZUSDT"),
        depth(14, 13),  # U > u
    ]:
        assert binance_step(text, 1, core.books) == binance_scan(text), text
        assert sync.book.depth(100) == book_before and sync.update_id == 12
    sync.state = SyncState.BUFFERING
    text = depth(13, 14)
    assert binance_step(text, 1, core.books) == binance_scan(text)
    assert binance_step("{", 1, core.books) is None
    assert binance_step('{"stream":"x@kline_1m","data":{}}', 1, core.books) == (0, "x@kline_1m")


def test_crossed_after_the_next_diff_resyncs_as_the_reference_does() -> None:
    fast, slow = synced(10), synced(10)
    text = depth(11, 11, bids=[["100.03", "1"]])
    head = binance_step(text, 5, FeedCore(INST).books)  # unsynced books: plain scan
    assert head is not None and head[0] == 1
    a = fast.on_message(text, 5)
    slow.stats.messages += 1
    b = slow._slow(text, 5)
    assert isinstance(a, Resync) and a == b and "book crossed after diff u=11" in a.reason
    assert fast.stats == slow.stats and fast.stats.resyncs["crossed"] == 1
    assert fast.books["AAAUSDT"].book.depth(10) == ([], [])


def test_quotes_and_trades_read_on_the_books_grids() -> None:
    core = FeedCore(INST, wall_offset_ns=1000)
    book: L2Book = core.books["BBBBTC"].book
    text = json.dumps(
        {
            "stream": "bbbbtc@bookTicker",
            "data": {"u": 9, "s": "BBBBTC", "b": "0.00012300", "B": "12", "a": "0.000125",
                     "A": "3.0"},
        },
        separators=(",", ":"),
    )  # fmt: skip
    head = binance_step(text, 5, core.books)
    assert head == (5, "BBBBTC", 9, book.price_to_ticks("0.00012300"), 12, 125, 3)
    assert core.on_message(text, 5) == Quote("BBBBTC", 1005, 5, 9, 123, 12, 125, 3)
    # An off-grid, huge or bad value: the scan's tuple; the reference path words the error.
    for bad in ["0.0001235", "9" * 25, "1e-4"]:
        t = text.replace('"a":"0.000125"', f'"a":"{bad}"')
        assert binance_step(t, 5, core.books) == binance_scan(t), bad
    text = json.dumps(
        {
            "stream": "aaausdt@aggTrade",
            "data": {"e": "aggTrade", "E": 1, "s": "AAAUSDT", "a": 42, "p": "100.01",
                     "q": "0.5", "f": 1, "l": 2, "T": 7, "m": True, "M": True},
        },
        separators=(",", ":"),
    )  # fmt: skip
    assert binance_step(text, 5, core.books) == (6, "AAAUSDT", 42, 10001, 500, 7, True)
    ev = core.on_message(text, 5)
    assert isinstance(ev, TradeTick) and (ev.price, ev.qty, ev.ts_ns) == (10001, 500, 7_000_000)
    assert core.stats.quotes == 1 and core.stats.trades == 1
    unknown = text.replace("AAAUSDT", "ZZZUSDT")
    assert binance_step(unknown, 5, core.books) == binance_scan(unknown)


def test_step_rejects_what_is_not_text() -> None:
    core = FeedCore(INST)
    with pytest.raises(TypeError):
        binance_step(b"{}", 1, core.books)  # type: ignore[arg-type]
    assert core.on_message(b'{"stream":"x@kline_1m","data":{}}', 1) is None  # bytes: reference
    assert core.stats.ignored == 1
    # A str that is not UTF-8 (a lone surrogate): not read, the reference path reports it.
    bad = '{"stream":"x@kline_1m","data":{"k":"\ud800"}}'
    assert binance_step(bad, 1, core.books) is None
    assert core.on_message(bad, 1) is None and core.stats.ignored == 2
    assert core.on_message('{"stream":"\ud800"}', 1) is None
    assert core.stats.errors["format"] == 1
