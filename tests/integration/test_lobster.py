"""LOBSTER replay: the real NASDAQ files through the real book, and the rules on small cases.

The shared sample files live in ../shared/data/lobster (beside the repository); the tests that
need them skip with the reason when they are absent. The small cases write their own CSVs, so
they also exercise the reader.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import hashlib
import re
from collections import Counter
from pathlib import Path

import pytest
from tradecore import Event, OrderBook, Side
from tradecore.marketdata.lobster import (
    SYNTHETIC_ID_BASE,
    BookRow,
    LobsterFiles,
    LobsterFormatError,
    LobsterReplay,
    Message,
    ReplayError,
    ReplayResult,
    ReplaySession,
    embedded_samples,
    lock_step,
)

DATA = Path(__file__).parents[2].parent / "shared" / "data" / "lobster"
AMZN = (
    "AMZN_2012-06-21_34200000_57600000_message_1.csv",
    "AMZN_2012-06-21_34200000_57600000_orderbook_1.csv",
)
AAPL = (
    "AAPL_2012-06-21_34200000_57600000_message_10_first999.csv",
    "AAPL_2012-06-21_34200000_57600000_orderbook_10_first999.csv",
)
needs_data = pytest.mark.skipif(
    not (DATA / AMZN[0]).is_file(),
    reason=f"LOBSTER sample files not found in {DATA} (the shared data directory)",
)


def shared(pair: tuple[str, str]) -> LobsterFiles:
    return LobsterFiles(DATA / pair[0], DATA / pair[1])


def data_lines(path: Path) -> list[list[str]]:
    """The CSV rows of a shared file, without the header line some of them carry."""
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    return rows[1:] if not rows[0][0].lstrip("-").replace(".", "").isdigit() else rows


@pytest.fixture(scope="module")
def amzn() -> ReplayResult:
    return LobsterReplay.from_files(shared(AMZN)).run()


@pytest.fixture(scope="module")
def aapl() -> ReplayResult:
    return LobsterReplay.from_files(shared(AAPL)).run()


# --- the real files ---------------------------------------------------------------------------


@needs_data
@pytest.mark.slow
def test_amzn_day_has_no_mismatch(amzn: ReplayResult) -> None:
    rows = data_lines(DATA / AMZN[1])
    assert len(rows) == 57_515
    assert amzn.rows_checked == len(rows)
    assert amzn.messages_applied == len(rows) - 1
    assert amzn.mismatches == 0, amzn.report()
    assert amzn.details == ()
    assert amzn.levels == 1
    assert amzn.resyncs > 0  # levels do enter the view from outside: the rule is exercised
    assert amzn.ok


@needs_data
@pytest.mark.slow
def test_amzn_events_per_type_match_the_file(amzn: ReplayResult) -> None:
    # Message 0 is represented by the seed (row 0); every later message is applied once.
    expected = Counter(int(r[1]) for r in data_lines(DATA / AMZN[0])[1:])
    assert {k: v for k, v in amzn.events_by_type.items() if v} == dict(expected)
    assert sum(amzn.events_by_type.values()) == amzn.messages_applied


@needs_data
def test_aapl_level10_has_no_mismatch(aapl: ReplayResult) -> None:
    rows = data_lines(DATA / AAPL[1])
    assert len(rows) == 999
    assert aapl.rows_checked == 999
    assert aapl.levels == 10
    assert aapl.mismatches == 0, aapl.report()
    assert aapl.resyncs > 0
    expected = Counter(int(r[1]) for r in data_lines(DATA / AAPL[0])[1:])
    assert {k: v for k, v in aapl.events_by_type.items() if v} == dict(expected)


@needs_data
def test_embedded_copies_are_the_shared_files() -> None:
    readme = (DATA / "README.md").read_text()
    # README lines look like "<sha256>  AMZN_..._message_1.csv" (the middle of the name elided).
    digests = {
        re.compile(re.escape(name).replace(re.escape("..."), ".*")): digest
        for digest, name in re.findall(r"^([0-9a-f]{64})\s+(\S+)$", readme, re.MULTILINE)
    }
    assert len(digests) == 4
    embedded = {files.message.name: files.message for files in embedded_samples()}
    embedded |= {files.orderbook.name: files.orderbook for files in embedded_samples()}
    assert len(embedded) == 4
    for name, resource in embedded.items():
        assert name.endswith(".csv.gz")
        data = gzip.decompress(resource.read_bytes())
        original = name.removesuffix(".gz")
        assert data == (DATA / original).read_bytes(), original
        (digest,) = [d for pattern, d in digests.items() if pattern.fullmatch(original)]
        assert hashlib.sha256(data).hexdigest() == digest, original


@needs_data
def test_embedded_replay_equals_shared_replay(aapl: ReplayResult) -> None:
    (embedded,) = [f for f in embedded_samples() if f.label.startswith("AAPL")]
    result = LobsterReplay.from_files(embedded).run()
    assert result.label == "AAPL 2012-06-21"
    fields = ("rows_checked", "resyncs", "mismatches", "unknown_ids", "resting_orders")
    assert [getattr(result, f) for f in fields] == [getattr(aapl, f) for f in fields]
    assert dict(result.events_by_type) == dict(aapl.events_by_type)


# --- the check can fail -----------------------------------------------------------------------


def _visible_deletion(messages: list[Message], files: LobsterFiles) -> int:
    """Index of the first deletion of a resting order at a level the previous row shows."""
    rows = list(files.rows())
    for i, msg in enumerate(messages[1:], 1):
        if msg.kind == 3 and msg.price in dict(rows[i - 1].side(msg.side)):
            return i
    raise AssertionError("no visible deletion in the file")


@needs_data
def test_dropping_a_visible_message_is_a_mismatch() -> None:
    files = shared(AAPL)
    messages = list(files.messages())
    i = _visible_deletion(messages, files)
    dropped = messages[i]
    messages[i] = dataclasses.replace(dropped, kind=5)  # a hidden execution: no book change
    result = LobsterReplay(messages, files.rows(), label="tampered").run()
    assert result.mismatches >= 1
    assert not result.ok
    first = result.details[0]
    assert (first.row, first.side, first.price) == (i, dropped.side, dropped.price)
    assert first.ours - first.file == dropped.size
    assert first.message.line == dropped.line
    assert f"row {i}" in result.report()


@needs_data
def test_a_book_that_loses_a_cancel_is_caught() -> None:
    files = shared(AAPL)
    messages = list(files.messages())
    target = messages[_visible_deletion(messages, files)]

    class LeakyBook(OrderBook):
        def cancel(self, order_id: int) -> list[Event]:
            if order_id == target.order_id:
                return []  # pretend it worked, keep the order
            return super().cancel(order_id)

    result = LobsterReplay(messages, files.rows(), book_factory=LeakyBook).run()
    assert result.mismatches >= 1
    assert result.details[0].price == target.price


# --- rules on small hand-made files (level 1) -------------------------------------------------

EMPTY = "9999999999,0,-9999999999,0"


MESSAGE_NAME = "TEST_2020-01-02_34200000_57600000_message_1.csv"
ORDERBOOK_NAME = "TEST_2020-01-02_34200000_57600000_orderbook_1.csv"


def write_pair(tmp: Path, messages: list[str], rows: list[str]) -> LobsterFiles:
    m = tmp / MESSAGE_NAME
    o = tmp / ORDERBOOK_NAME
    m.write_text("\n".join(messages))
    o.write_text("\n".join(rows))
    return LobsterFiles(m, o)


class Capture:
    """A book factory that keeps the book so a test can look at it afterwards."""

    book: OrderBook

    def __call__(self, capacity: int) -> OrderBook:
        self.book = OrderBook(capacity)
        return self.book


def replay(files: LobsterFiles) -> tuple[ReplayResult, OrderBook]:
    capture = Capture()
    result = LobsterReplay.from_files(files, book_factory=capture, capacity=64).run()
    capture.book.check_invariants()
    return result, capture.book


def test_level_entering_the_view_is_a_resync(tmp_path: Path) -> None:
    files = write_pair(
        tmp_path,
        ["1.0,5,0,1,1000,1", "2.0,3,77,5,1000,1"],  # delete an order placed before the open
        ["1050,10,1000,5", "1050,10,990,7"],  # the next bid level shows up with 7
    )
    result, book = replay(files)
    assert (result.rows_checked, result.resyncs, result.mismatches) == (2, 1, 0)
    assert result.unknown_ids == 1
    assert book.depth(5) == ([(990, 7, 1)], [(1050, 10, 1)])
    assert result.label == "TEST 2020-01-02"


def test_difference_at_a_visible_level_is_a_mismatch(tmp_path: Path) -> None:
    files = write_pair(
        tmp_path,
        ["1.0,5,0,1,1000,1", "2.0,5,0,1,1000,1", "3.0,5,0,1,1000,1"],
        ["1050,10,1000,5", "1050,10,1000,4", "1050,10,1000,4"],  # 1 share vanished unannounced
    )
    result, book = replay(files)
    assert (result.rows_checked, result.resyncs, result.mismatches) == (3, 0, 1)
    (d,) = result.details
    assert (d.row, d.row_line, d.side, d.price, d.ours, d.file) == (1, 2, Side.BUY, 1000, 5, 4)
    assert d.message.line == 2
    assert book.best_bid() == (1000, 4)  # repaired, so row 2 agrees again


def test_unknown_execution_takes_synthetic_then_back_of_queue(tmp_path: Path) -> None:
    files = write_pair(
        tmp_path,
        ["1.0,5,0,1,1000,1", "2.0,1,7,5,1000,1", "3.0,1,8,4,1000,1", "4.0,4,99,12,1000,1"],
        [f"1050,10,1000,{q}" for q in (10, 15, 19, 7)],
    )
    result, book = replay(files)
    assert (result.mismatches, result.resyncs, result.unknown_ids) == (0, 0, 1)
    # 10 from the seed order, then 2 from the back: order 8 (4 -> 2); order 7 keeps its place.
    assert book.orders(Side.BUY, 1000) == [(7, 1, 1000, 5), (8, 1, 1000, 2)]


def test_partial_cancel_larger_than_our_copy(tmp_path: Path) -> None:
    files = write_pair(
        tmp_path,
        ["1.0,5,0,1,1000,1", "2.0,1,7,5,1000,1", "3.0,2,7,8,1000,1"],
        ["1050,10,1000,10", "1050,10,1000,15", "1050,10,1000,7"],
    )
    result, book = replay(files)
    assert (result.mismatches, result.short_orders) == (0, 1)
    assert book.order(7) is None
    assert book.orders(Side.BUY, 1000) == [(SYNTHETIC_ID_BASE, 0, 1000, 7)]


def test_deletion_smaller_than_our_copy_requeues_the_excess(tmp_path: Path) -> None:
    files = write_pair(
        tmp_path,
        ["1.0,5,0,1,1000,1", "2.0,1,7,5,1000,1", "3.0,3,7,3,1000,1"],
        ["1050,10,1000,10", "1050,10,1000,15", "1050,10,1000,12"],
    )
    result, book = replay(files)
    assert (result.mismatches, result.excess_requeued) == (0, 1)
    assert [o[3] for o in book.orders(Side.BUY, 1000)] == [10, 2]
    assert all(o[0] >= SYNTHETIC_ID_BASE for o in book.orders(Side.BUY, 1000))


def test_new_order_crossing_visible_liquidity_never_fills(tmp_path: Path) -> None:
    files = write_pair(
        tmp_path,
        ["1.0,5,0,1,1000,1", "2.0,1,7,2,1050,1"],  # a buy at the visible ask, without trades
        ["1050,10,1000,5", "1060,4,1050,2"],
    )
    result, book = replay(files)
    assert (result.mismatches, result.resyncs) == (1, 1)  # the crossed ask; 1060 enters the view
    assert result.details[0].note == "new order crosses it"
    assert book.orders(Side.BUY) == [(7, 1, 1050, 2), (SYNTHETIC_ID_BASE, 0, 1000, 5)]
    assert book.best_ask() == (1060, 4)


def test_side_with_fewer_levels_than_l_shows_every_price(tmp_path: Path) -> None:
    # Level 2 file whose ask side has one level: a stale ask deeper than it must go.
    m = tmp_path / "x_message_2.csv"
    o = tmp_path / "x_orderbook_2.csv"
    m.write_text("1.0,5,0,1,1000,1\n2.0,1,7,3,1070,-1\n3.0,3,8,10,1050,-1")
    o.write_text(
        "1050,10,1000,5,1060,6,990,1\n"
        "1050,10,1000,5,1060,6,990,1\n"
        "1060,6,1000,5,9999999999,0,990,1\n"
    )
    result, book = replay(LobsterFiles(m, o))
    # 1070 was outside row 1's range (<= 1060): removing it at row 2 is a resync, not a mismatch.
    assert (result.mismatches, result.resyncs) == (0, 1)
    assert book.depth(5)[1] == [(1060, 6, 1)]


# --- malformed input --------------------------------------------------------------------------

GOOD_MESSAGES = ["34200.1,5,0,1,1000,1", "34200.2,1,7,5,1000,1", "34200.3,3,7,5,1000,1"]
GOOD_ROWS = ["1050,10,1000,5", "1050,10,1000,10", "1050,10,1000,5"]


@pytest.mark.parametrize(
    ("which", "line", "text", "problem"),
    [
        ("message", 3, "34200.3,3,7,5,1000", "expected 6 comma-separated fields"),
        ("message", 2, "34200.2,1,7,five,1000,1", "Size 'five' is not an integer"),
        ("message", 3, "34200.3,9,7,5,1000,1", "unknown event Type 9"),
        ("message", 2, "34200.2,1,7,5,1000,0", "Direction 0 is not 1 or -1"),
        ("message", 2, "34200.2,1,7,0,1000,1", "Size 0 must be positive"),
        ("message", 3, "t,3,7,5,1000,1", "Time 't' is not seconds"),
        ("orderbook", 2, "1050,10,1000", "expected 4 fields like the first row, found 3"),
        ("orderbook", 3, "1050,10,1000,x", "field 'x' is not an integer"),
        ("orderbook", 2, "1000,10,1050,5", "crossed row"),
        ("orderbook", 2, "1050,0,1000,5", "size 0 but price 1050"),
    ],
)
def test_malformed_row_names_file_and_line(
    tmp_path: Path, which: str, line: int, text: str, problem: str
) -> None:
    messages, rows = list(GOOD_MESSAGES), list(GOOD_ROWS)
    (messages if which == "message" else rows)[line - 1] = text
    files = write_pair(tmp_path, messages, rows)
    with pytest.raises(LobsterFormatError) as info:
        LobsterReplay.from_files(files).run()
    err = info.value
    path = files.message if which == "message" else files.orderbook
    assert (err.source, err.line) == (str(path), line)
    assert problem in err.problem
    assert str(err).startswith(f"{path}:{line}: ")
    assert isinstance(err, ValueError)


def test_the_good_small_pair_replays(tmp_path: Path) -> None:
    result, _ = replay(write_pair(tmp_path, GOOD_MESSAGES, GOOD_ROWS))
    assert (result.rows_checked, result.mismatches) == (3, 0)


def test_header_line_is_skipped_only_on_line_1(tmp_path: Path) -> None:
    header = "Time,Type,OrderId,Size,Price,Direction"
    files = write_pair(tmp_path, [header, *GOOD_MESSAGES], ["A,B,C,D", *GOOD_ROWS])
    result, _ = replay(files)
    assert result.rows_checked == 3
    assert result.details == ()
    files = write_pair(tmp_path, [*GOOD_MESSAGES[:1], header, *GOOD_MESSAGES[1:]], GOOD_ROWS)
    with pytest.raises(LobsterFormatError, match=r":2: expected 6|:2: Time"):
        LobsterReplay.from_files(files).run()
    files = write_pair(tmp_path, ["Time,Type,Size", *GOOD_MESSAGES], GOOD_ROWS)
    with pytest.raises(LobsterFormatError, match=r":1: expected 6 comma-separated fields"):
        LobsterReplay.from_files(files).run()


def test_row_counts_must_agree(tmp_path: Path) -> None:
    files = write_pair(tmp_path, GOOD_MESSAGES, GOOD_ROWS[:2])
    with pytest.raises(LobsterFormatError, match=r"orderbook.*has 2 rows, the message file has"):
        LobsterReplay.from_files(files).run()
    files = write_pair(tmp_path, GOOD_MESSAGES[:2], GOOD_ROWS)
    with pytest.raises(LobsterFormatError, match="has more rows than the message file"):
        LobsterReplay.from_files(files).run()


def test_gzip_and_non_ascii_input(tmp_path: Path) -> None:
    files = write_pair(tmp_path, GOOD_MESSAGES, GOOD_ROWS)
    gz = tmp_path / f"{MESSAGE_NAME}.gz"
    gz.write_bytes(gzip.compress((tmp_path / MESSAGE_NAME).read_bytes()))
    result, _ = replay(LobsterFiles(gz, files.orderbook))
    assert result.rows_checked == 3
    fake = tmp_path / "fake_message_1.csv.gz"
    fake.write_bytes(b"not gzip at all")
    with pytest.raises(LobsterFormatError, match="not a valid gzip file"):
        LobsterReplay.from_files(LobsterFiles(fake, files.orderbook)).run()
    (tmp_path / MESSAGE_NAME).write_bytes(
        "34200.1,5,0,1,1000,1\n34200.2,1,7,5,1000,1\n\u00e9".encode()
    )
    with pytest.raises(LobsterFormatError, match=r":3: not ASCII"):
        LobsterReplay.from_files(files).run()


def test_missing_file_is_a_file_not_found_error(tmp_path: Path) -> None:
    files = LobsterFiles(tmp_path / "nope_message_1.csv", tmp_path / "nope_orderbook_1.csv")
    with pytest.raises(FileNotFoundError):
        LobsterReplay.from_files(files).run()


def test_a_replay_from_files_can_run_twice(tmp_path: Path) -> None:
    replay_ = LobsterReplay.from_files(write_pair(tmp_path, GOOD_MESSAGES, GOOD_ROWS))
    first, second = replay_.run(), replay_.run()
    assert first.rows_checked == second.rows_checked == 3


# --- the step-wise session --------------------------------------------------------------------


def test_a_session_stepped_by_hand_equals_run_on_the_embedded_aapl_day() -> None:
    (files,) = [f for f in embedded_samples() if f.label.startswith("AAPL")]
    replay_ = LobsterReplay.from_files(files)
    session = replay_.session()
    assert isinstance(session, ReplaySession)
    pairs = replay_.pairs()
    session.start(*next(pairs))
    assert (session.rows_checked, session.index, session.levels) == (1, 0, 10)
    for i, (msg, row) in enumerate(pairs, 1):
        session.step(msg, row)
        # The counters are current after every step.
        assert session.index == i and session.rows_checked == i + 1
        assert session.prev is row
    stepped = dataclasses.replace(session.result(), elapsed_s=0.0)
    whole = dataclasses.replace(replay_.run(), elapsed_s=0.0)
    assert stepped == whole
    assert whole.ok and whole.rows_checked == 999


def test_session_misuse_is_an_error(tmp_path: Path) -> None:
    files = write_pair(tmp_path, GOOD_MESSAGES, GOOD_ROWS)
    replay_ = LobsterReplay.from_files(files)
    (m0, r0), (m1, r1), _ = list(replay_.pairs())
    session = replay_.session()
    with pytest.raises(ReplayError, match=r"step\(\) before start\(\)"):
        session.step(m1, r1)
    session.start(m0, r0)
    with pytest.raises(ReplayError, match="already started"):
        session.start(m0, r0)
    wider = dataclasses.replace(r1, levels=2)
    with pytest.raises(LobsterFormatError, match="number of levels changed"):
        session.step(m1, wider)


def test_lock_step_names_the_file_that_is_short(tmp_path: Path) -> None:
    files = write_pair(tmp_path, GOOD_MESSAGES, GOOD_ROWS)
    msgs, rows = list(files.messages()), list(files.rows())
    sources = ("m.csv", "o.csv")
    assert [(m.line, r.line) for m, r in lock_step(msgs, rows, sources)] == [(1, 1), (2, 2), (3, 3)]
    assert list(lock_step([], [], sources)) == []
    with pytest.raises(LobsterFormatError, match=r"^o.csv: no rows"):
        list(lock_step(msgs, [], sources))
    with pytest.raises(LobsterFormatError, match=r"^m.csv: no messages"):
        list(lock_step([], rows, sources))
    with pytest.raises(LobsterFormatError, match=r"^o.csv: has 2 rows.*message line 3"):
        list(lock_step(msgs, rows[:2], sources))
    with pytest.raises(LobsterFormatError, match=r"^o.csv:3: has more rows than the message file"):
        list(lock_step(msgs[:2], rows, sources))


def test_a_subclass_changes_one_rule_through_a_hook(tmp_path: Path) -> None:
    # A session that ignores deletions (type 3): the replay then disagrees with the file at the
    # row after the deletion, and the check says so.
    class NoDeletes(ReplaySession):
        def apply_message(self, row: int, msg: Message, prev: BookRow) -> None:
            if msg.kind != 3:
                super().apply_message(row, msg, prev)

    replay_ = LobsterReplay.from_files(write_pair(tmp_path, GOOD_MESSAGES, GOOD_ROWS))
    session = NoDeletes(replay_)
    pairs = replay_.pairs()
    session.start(*next(pairs))
    for msg, row in pairs:
        session.step(msg, row)
    result = session.result()
    assert (result.mismatches, result.details[0].row, result.details[0].ours) == (1, 2, 10)
    assert replay_.run().ok
