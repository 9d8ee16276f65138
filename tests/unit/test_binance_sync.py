"""Binance payload parsing and the L2 sync state machine, without sockets.

Hand-made messages drive :class:`FeedCore` through every rule of the procedure (drop
``u <= lastUpdateId``, bridge ``U <= L+1 <= u``, stale snapshot, gap, duplicates, out of order)
and through bad input; the real recordings are replayed in process and the final books compared
with an independent Decimal rebuild.
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tradecore import Instrument, OffGridError, Side
from tradecore.marketdata.binance import (
    instruments_from_exchange_info,
    parse_agg_trade,
    parse_book_ticker,
    parse_depth,
    stream_names,
)
from tradecore.marketdata.errors import FeedFormatError, UnknownSymbolError
from tradecore.marketdata.events import BookUpdate, Quote, Resync, TradeTick
from tradecore.marketdata.replay import RecordedSource
from tradecore.marketdata.sync import FeedCore, SyncState

DATA = Path("/work/shared/data/binance/cryptofeed")
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="shared recordings not present")

SYM = "BTCUSDT"
INST = {SYM: Instrument(SYM, tick_size="0.01", lot_size="0.001")}


def diff(first: int, last: int, bids: Any = (), asks: Any = (), sym: str = SYM) -> str:
    data = {
        "e": "depthUpdate",
        "E": 1_700_000_000_000 + last,
        "s": sym,
        "U": first,
        "u": last,
        "b": [list(x) for x in bids],
        "a": [list(x) for x in asks],
    }
    return json.dumps({"stream": f"{sym.lower()}@depth@100ms", "data": data})


def snapshot(last_id: int, bids: Any = (("100.00", "1"),), asks: Any = (("101.00", "1"),)) -> str:
    return json.dumps(
        {"lastUpdateId": last_id, "bids": [list(x) for x in bids], "asks": [list(x) for x in asks]}
    )


def synced_core(last_id: int = 10) -> FeedCore:
    core = FeedCore(INST)
    assert core.on_message(diff(5, 9), 1) is None  # buffered, before the snapshot
    assert core.snapshots_wanted() == [SYM]
    assert core.snapshots_wanted() == []  # asked once
    event = core.on_snapshot(SYM, snapshot(last_id), 2)
    assert isinstance(event, BookUpdate) and event.update_id == last_id
    return core


def test_sync_drops_old_and_bridges_with_u_le_l_plus_1() -> None:
    core = FeedCore(INST)
    core.on_message(diff(5, 9, bids=[("99.00", "7")]), 1)  # u <= L: dropped
    core.on_message(diff(10, 12, bids=[("100.00", "3")]), 1)  # U <= L+1 <= u: first applied
    core.on_message(diff(13, 13, asks=[("101.00", "0"), ("102.00", "4")]), 1)
    assert core.snapshots_wanted() == [SYM]
    event = core.on_snapshot(SYM, snapshot(10), 2)
    assert isinstance(event, BookUpdate) and event.update_id == 13
    book = core.books[SYM].book
    assert book.depth() == ([(10000, 3000)], [(10200, 4000)])
    assert book.qty_at(Side.BUY, 9900) == 0  # the dropped diff was not applied
    # The real recordings: the first applied diff has U == L + 1.
    event = core.on_message(diff(14, 15, bids=[("100.50", "1")]), 3)
    assert isinstance(event, BookUpdate) and event.update_id == 15 and event.recv_ns == 3
    assert event.book.best_bid() == (10050, 1000)
    assert core.stats.depth_applied == 3 and core.stats.resync_total == 0


def test_snapshot_waits_for_a_diff_and_then_installs() -> None:
    core = FeedCore(INST)
    core.on_message(diff(20, 21), 1)
    assert core.snapshots_wanted() == [SYM]
    # The stream breaks the buffer off before the answer: a later answer has nothing to judge.
    core.books[SYM].on_disconnect(1)
    assert core.on_snapshot(SYM, snapshot(30), 2) is None
    assert core.books[SYM].state is SyncState.BUFFERING
    event = core.on_message(diff(25, 31, bids=[("100.00", "2")]), 3)  # 25 <= 31 <= 31
    assert isinstance(event, BookUpdate) and event.update_id == 31
    assert core.books[SYM].book.best_bid() == (10000, 2000)


def test_stale_snapshot_is_fetched_again() -> None:
    core = FeedCore(INST)
    core.on_message(diff(50, 52), 1)
    core.snapshots_wanted()
    assert core.on_snapshot(SYM, snapshot(40), 2) is None  # 50 > 40 + 1: stale
    assert core.stats.stale_snapshots == 1
    assert core.books[SYM].state is SyncState.BUFFERING
    assert core.snapshots_wanted() == [SYM]
    event = core.on_snapshot(SYM, snapshot(52), 3)
    assert isinstance(event, BookUpdate) and event.update_id == 52


def test_gap_resyncs_and_recovers() -> None:
    core = synced_core(10)
    assert isinstance(core.on_message(diff(11, 12), 1), BookUpdate)
    event = core.on_message(diff(14, 15, bids=[("100.00", "9")]), 2)  # 13 missing
    assert isinstance(event, Resync) and event.symbol == SYM
    assert "gap: diff U=14 after update id 12 (missed 1 updates)" in event.reason
    assert core.stats.resyncs["gap"] == 1
    assert len(core.books[SYM].book) == 0  # no stale book is left readable
    assert core.snapshots_wanted() == [SYM]
    event = core.on_snapshot(SYM, snapshot(15, bids=[("100.00", "9")]), 3)
    assert isinstance(event, BookUpdate) and event.update_id == 15
    assert core.books[SYM].book.best_bid() == (10000, 9000)


def test_duplicate_and_out_of_order_diffs_are_dropped() -> None:
    core = synced_core(10)
    core.on_message(diff(11, 12, bids=[("100.00", "5")]), 1)
    assert core.on_message(diff(11, 12, bids=[("100.00", "77")]), 2) is None  # duplicate
    assert core.on_message(diff(9, 10, bids=[("100.00", "88")]), 3) is None  # out of order
    assert core.books[SYM].book.best_bid() == (10000, 5000)
    assert core.stats.dropped_old == 2 and core.stats.resync_total == 0
    # While buffering too: an older diff after a newer one is dropped, the buffer stays usable.
    core = FeedCore(INST)
    core.on_message(diff(20, 22), 1)
    core.on_message(diff(18, 19), 1)
    core.on_message(diff(23, 23, asks=[("101.00", "2")]), 1)
    core.snapshots_wanted()
    event = core.on_snapshot(SYM, snapshot(21), 2)
    assert isinstance(event, BookUpdate) and event.update_id == 23
    assert core.books[SYM].book.best_ask() == (10100, 2000)


def test_disconnect_resyncs_every_synced_book() -> None:
    core = synced_core(10)
    events = core.on_disconnect(5)
    assert len(events) == 1 and isinstance(events[0], Resync)
    assert events[0].reason == "disconnected from the stream"
    assert core.stats.resyncs["disconnect"] == 1
    assert core.books[SYM].state is SyncState.BUFFERING


def test_bad_input_is_logged_and_counted_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    core = synced_core(10)
    caplog.set_level(logging.ERROR)
    before = core.books[SYM].book.depth()
    assert core.on_message('{"stream": "btcusdt@depth@100ms", "data": {', 1) is None
    assert "malformed JSON at line 1 column" in caplog.text
    assert core.on_message(b"\xff\xfe", 1) is None
    assert core.on_message("[1, 2]", 1) is None
    assert core.on_message('{"stream": 5, "data": {}}', 1) is None
    assert core.on_message('{"data": {}}', 1) is None
    assert core.on_message(diff(11, 11, sym="ETHUSDT"), 1) is None
    assert "unknown symbol 'ETHUSDT'" in caplog.text
    bad = json.loads(diff(11, 11))
    del bad["data"]["u"]
    assert core.on_message(json.dumps(bad), 1) is None
    assert "missing field 'u'" in caplog.text
    bad["data"]["u"] = "11"
    assert core.on_message(json.dumps(bad), 1) is None
    assert "field 'u' must be int, got str" in caplog.text
    assert core.on_message(diff(12, 11), 1) is None
    assert "U=12 is after u=11" in caplog.text
    assert core.stats.errors["format"] == 8 and core.stats.errors["unknown symbol"] == 1
    assert core.books[SYM].book.depth() == before  # none of that touched the book
    assert core.books[SYM].state is SyncState.SYNCED
    # A diff whose level does not parse is lost, so the book must resync.
    event = core.on_message(diff(11, 11, bids=[("100.0x", "1")]), 2)
    assert isinstance(event, Resync) and "bids[0] price" in event.reason
    assert core.stats.resyncs["bad diff"] == 1


def test_off_grid_depth_levels_are_left_out_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    core = synced_core(10)
    event = core.on_message(diff(11, 11, bids=[("100.005", "1"), ("99.00", "2")]), 1)
    assert isinstance(event, BookUpdate)
    assert event.book.depth() == ([(10000, 1000), (9900, 2000)], [(10100, 1000)])
    assert core.stats.off_grid_levels == 1
    assert "1 level(s) off the grid (tick 0.01, lot 0.001)" in caplog.text
    assert "bid 100.005 x 1" in caplog.text


def test_crossed_book_after_a_whole_diff_resyncs() -> None:
    core = synced_core(10)
    event = core.on_message(diff(11, 11, bids=[("101.00", "1")]), 1)
    assert isinstance(event, Resync) and "book crossed after diff u=11" in event.reason


def test_bad_snapshot_body_is_retried() -> None:
    core = FeedCore(INST)
    core.on_message(diff(5, 9), 1)
    core.snapshots_wanted()
    assert core.on_snapshot(SYM, '{"lastUpdateId": "x"}', 2) is None
    assert core.stats.errors["snapshot"] == 1
    assert core.snapshots_wanted() == [SYM]


def test_trades_and_quotes() -> None:
    core = FeedCore(INST, wall_offset_ns=1000)
    trade = {
        "e": "aggTrade", "E": 2, "s": SYM, "a": 7, "p": "100.01", "q": "0.500",
        "f": 1, "l": 1, "T": 3, "m": True, "M": True,
    }  # fmt: skip
    event = core.on_message(json.dumps({"stream": "btcusdt@aggTrade", "data": trade}), 9)
    assert event == TradeTick(SYM, 3_000_000, 9, 10001, 500, Side.SELL, 7)
    trade["m"] = False
    assert parse_agg_trade(trade, INST, 9).aggressor is Side.BUY
    quote = {"u": 5, "s": SYM, "b": "100.00", "B": "1", "a": "100.02", "A": "2.5"}
    event = core.on_message(json.dumps({"stream": "btcusdt@bookTicker", "data": quote}), 9)
    assert event == Quote(SYM, 1009, 9, 5, 10000, 1000, 10002, 2500)
    with pytest.raises(OffGridError, match=r"bookTicker BTCUSDT: bid price 100.001 is off"):
        parse_book_ticker({**quote, "b": "100.001"}, INST, 0, 0)
    with pytest.raises(UnknownSymbolError, match="unknown symbol 'ETHUSDT'"):
        parse_book_ticker({**quote, "s": "ETHUSDT"}, INST, 0, 0)
    with pytest.raises(FeedFormatError, match="field 'q' must be str, got float"):
        parse_agg_trade({**trade, "q": 0.5}, INST, 0)
    assert core.on_message('{"stream": "btcusdt@kline_1m", "data": {}}', 1) is None
    assert core.stats.ignored == 1
    assert (
        core.on_message(
            json.dumps({"stream": "btcusdt@aggTrade", "data": trade | {"p": "1.001"}}), 1
        )
        is None
    )
    assert core.stats.errors["off grid"] == 1


def test_parse_depth_fields() -> None:
    d = parse_depth(json.loads(diff(3, 4, bids=[("1", "2")]))["data"], 77)
    assert (d.symbol, d.first, d.last, d.bids, d.recv_ns) == (SYM, 3, 4, [["1", "2"]], 77)
    assert stream_names(["BTCUSDT"]) == [
        "btcusdt@depth@100ms",
        "btcusdt@aggTrade",
        "btcusdt@bookTicker",
    ]


@needs_data
def test_exchange_info_from_the_real_recording() -> None:
    line = (DATA / "2021-08-14" / "BINANCE.0").read_text().split("\n", 1)[0]
    body = line.split(": ", 1)[1]
    inst = instruments_from_exchange_info(body, ["ftmusdt", "XMRBTC"])
    assert inst["FTMUSDT"] == Instrument("FTMUSDT", "0.00001000", "0.10000000", quote_asset="USDT")
    assert inst["XMRBTC"] == Instrument("XMRBTC", "0.00000100", "0.00100000", quote_asset="BTC")
    # The quote currency is part of an instrument's identity.
    assert inst["XMRBTC"] != Instrument("XMRBTC", "0.00000100", "0.00100000")
    everything = instruments_from_exchange_info(body)
    assert len(everything) > 1000 and "ETHBTC" in everything
    with pytest.raises(UnknownSymbolError, match="exchangeInfo has no symbol NOSUCH"):
        instruments_from_exchange_info(body, ["NOSUCH"])
    with pytest.raises(FeedFormatError, match="exchangeInfo: malformed JSON"):
        instruments_from_exchange_info("{")
    with pytest.raises(FeedFormatError, match="exchangeInfo AB: no LOT_SIZE filter"):
        instruments_from_exchange_info(
            {"symbols": [{"symbol": "AB", "filters": [
                {"filterType": "PRICE_FILTER", "tickSize": "0.01"}]}]}, ["AB"]
        )  # fmt: skip
    with pytest.raises(FeedFormatError, match="exchangeInfo AB: quoteAsset must be a string"):
        instruments_from_exchange_info(
            {"symbols": [{"symbol": "AB", "quoteAsset": 7, "filters": [
                {"filterType": "PRICE_FILTER", "tickSize": "0.01"},
                {"filterType": "LOT_SIZE", "stepSize": "1"}]}]}, ["AB"]
        )  # fmt: skip


def rebuild(directory: Path) -> dict[str, tuple[list[tuple[int, int]], list[tuple[int, int]]]]:
    """An independent rebuild of each recorded book: plain dicts and Decimal arithmetic.

    Levels off the instrument grid are left out, as the adapter documents.
    """
    info = json.loads((directory / "BINANCE.0").read_text().split("\n", 1)[0].split(": ", 1)[1])
    grids = {}
    for s in info["symbols"]:
        f = {x["filterType"]: x for x in s["filters"]}
        grids[s["symbol"]] = (
            Decimal(f["PRICE_FILTER"]["tickSize"]),
            Decimal(f["LOT_SIZE"]["stepSize"]),
        )
    books: dict[str, tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]] = {}
    ids: dict[str, int] = {}
    for line in (directory / "BINANCE.http.0.0").read_text().splitlines():
        if not line.strip():
            continue
        url, body = line.split(" -> ", 1)
        sym = url.split("symbol=")[1].split("&")[0]
        snap = json.loads(body.split(": ", 1)[1])
        ids[sym] = snap["lastUpdateId"]
        books[sym] = (
            {Decimal(p): Decimal(q) for p, q in snap["bids"]},
            {Decimal(p): Decimal(q) for p, q in snap["asks"]},
        )
    for line in (directory / "BINANCE.ws.1.0").read_text().splitlines()[1:]:
        if not line.strip():
            continue
        data = json.loads(line.split(": ", 1)[1])["data"]
        if data.get("e") != "depthUpdate" or data["u"] <= ids[data["s"]]:
            continue
        assert data["U"] <= ids[data["s"]] + 1  # the recordings have no gaps
        for side, levels in ((0, data["b"]), (1, data["a"])):
            for p, q in levels:
                if Decimal(q) == 0:
                    books[data["s"]][side].pop(Decimal(p), None)
                else:
                    books[data["s"]][side][Decimal(p)] = Decimal(q)
        ids[data["s"]] = data["u"]
    out = {}
    for sym, (bids, asks) in books.items():
        tick, lot = grids[sym]

        def ticks(
            levels: dict[Decimal, Decimal], tick: Decimal = tick, lot: Decimal = lot
        ) -> list[tuple[int, int]]:
            return [
                (int(p / tick), int(q / lot)) for p, q in levels.items()
                if p % tick == 0 and q % lot == 0
            ]  # fmt: skip

        out[sym] = (sorted(ticks(bids), reverse=True), sorted(ticks(asks)))
    return out


@needs_data
@pytest.mark.parametrize("day", ["2021-08-14", "2021-10-12"])
def test_recorded_source_final_books_equal_an_independent_rebuild(day: str) -> None:
    src = RecordedSource(DATA / day)
    last: dict[str, int] = {}
    for event in src:
        if isinstance(event, BookUpdate):
            # Each update is a whole, consistent book at a strictly newer update id.
            assert event.update_id > last.get(event.symbol, 0)
            last[event.symbol] = event.update_id
            assert not event.book.is_crossed()
    expected = rebuild(DATA / day)
    assert set(expected) == set(src.core.books)
    for sym, sync in src.core.books.items():
        assert sync.state is SyncState.SYNCED
        assert sync.book.depth(100_000) == expected[sym], sym
        assert last[sym] == sync.update_id
    assert src.stats.resync_total == 0 and src.stats.error_total == 0
    assert src.stats.depth_applied == {"2021-08-14": 528, "2021-10-12": 172}[day]
    # NKNUSDT's snapshot holds 68 legacy levels off today's grid (see sync.py).
    assert src.stats.off_grid_levels == {"2021-08-14": 0, "2021-10-12": 68}[day]


def _install(bids: Any, asks: Any) -> tuple[FeedCore, object]:
    core = FeedCore(INST)
    core.on_message(diff(5, 9), 1)
    core.snapshots_wanted()
    return core, core.on_snapshot(SYM, snapshot(10, bids, asks), 2)


def _model(levels: Any) -> dict[int, int]:
    """The book side a snapshot means, level by level as listed (a repeat overrides, 0 removes)."""
    out: dict[int, int] = {}
    for p, q in levels:
        price, qty = Decimal(p) / Decimal("0.01"), Decimal(q) / Decimal("0.001")
        if price != price.to_integral_value() or qty != qty.to_integral_value():
            continue  # off the grid: left out
        if qty == 0:
            out.pop(int(price), None)
        else:
            out[int(price)] = int(qty)
    return out


@pytest.mark.parametrize(
    "case",
    ["deep", "repeated price", "zero qty", "off grid", "repeat after off grid"],
)
def test_snapshot_install_equals_the_levels_applied_as_listed(case: str) -> None:
    # Best first, as Binance lists them (the Rust replace sorts each side once instead of
    # setting level by level): 3,000 levels a side.
    bids = [[f"{100 - i * 0.01:.2f}", f"{1 + i % 7}.000"] for i in range(3000)]
    asks = [[f"{101 + i * 0.01:.2f}", f"{2 + i % 5}.000"] for i in range(3000)]
    if case == "repeated price":
        bids.insert(5, [bids[2][0], "9.5"])  # listed later: this quantity stands
        asks.append([asks[0][0], "0.25"])
    elif case == "zero qty":
        bids.insert(3, [bids[1][0], "0"])  # removes the level listed before it
        asks.insert(0, ["150.00", "0"])  # nothing to remove
    elif case == "off grid":
        bids.insert(4, ["99.995", "1"])
        asks.append(["101.50", "0.0005"])
    elif case == "repeat after off grid":
        bids.insert(4, [bids[0][0], "0.0005"])  # off the lot grid: skipped, the first stands
        bids.append([bids[1][0], "3"])
    core, event = _install(bids, asks)
    assert isinstance(event, BookUpdate) and event.update_id == 10
    book = core.books[SYM].book
    want_b, want_a = _model(bids), _model(asks)
    got_b, got_a = book.depth(10_000)
    assert got_b == sorted(want_b.items(), reverse=True)
    assert got_a == sorted(want_a.items())
    assert core.stats.off_grid_levels == (2 if case == "off grid" else int(case.endswith("grid")))


def test_bad_snapshot_level_is_named_as_listed(caplog: pytest.LogCaptureFixture) -> None:
    bids = [[f"{100 - i * 0.01:.2f}", "1"] for i in range(50)]
    bids[3] = ["abc", "1"]
    bids[40] = ["98.00", "x"]
    core, event = _install(bids, [["101.00", "1"]])
    # The first bad level in the exchange's order is the one named, and the book stays empty.
    assert isinstance(event, Resync) and "bad snapshot" in event.reason
    assert "bids[3]" in event.reason and "bids[40]" not in event.reason
    assert len(core.books[SYM].book) == 0
