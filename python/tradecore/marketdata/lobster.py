"""LOBSTER replay: rebuild a NASDAQ day in `tradecore.OrderBook` and check it row by row.

LOBSTER (lobsterdata.com) reconstructs NASDAQ TotalView-ITCH into two CSV files per day:

* the *message* file, one event per row: ``Time,Type,OrderID,Size,Price,Direction``
  (type 1 new limit order, 2 partial cancel, 3 deletion, 4 visible execution, 5 hidden
  execution, 6 cross trade, 7 trading halt; price in dollars x 10000; direction 1 buy, -1 sell,
  for executions the side of the *resting* order);
* the *orderbook* file, where row ``i`` is the book *after* message ``i``: for ``k = 1..L``
  ``AskPrice_k,AskSize_k,BidPrice_k,BidSize_k``; empty levels are written as ask 9999999999 /
  bid -9999999999 with size 0.

Prices are used directly as ticks and sizes as lots (both integers; no floats anywhere).

**What this module proves.** :class:`LobsterReplay` drives the real L3 book with the message
file and, after every message, compares our top of book with the orderbook row. LOBSTER only
writes the events that touch the requested depth, and orders placed before 09:30 are unknown,
so an exact comparison needs these rules (issue 2, "Real data"):

* Seed the book from row 0: one synthetic order per visible level, with ids from
  :data:`SYNTHETIC_ID_BASE` up (LOBSTER ids are smaller, so they never collide). Row 0 is then
  compared like every other row; any difference there is a mismatch.
* Type 1: a GTC limit with the LOBSTER id, ``stp`` NONE. If it would trade with our book, that
  liquidity is stale: it is removed first (one resync per level, or a mismatch if that level
  was visible in the previous row) so the submit never fills.
* Type 2: reducing modify (same price, ``leaves - size``); type 3: cancel; type 4: reduce or
  remove the resting order; types 5, 6 and 7 leave the book alone. For 2, 3 and 4, shares the
  book does not hold under that id (unknown id, or a size above our copy) are taken from the
  same price level: synthetic orders first, then from the back of the queue. A deletion of
  fewer shares than our copy holds removes the order and re-queues the excess as synthetic
  liquidity at the back (that liquidity belongs to other orders, misattributed by a resync).
* Compare after message ``i`` with row ``i``, side by side. A side that shows ``L`` real
  levels is visible up to its ``L``-th price; a side with fewer shows every price. Inside the
  visible range our levels must equal the file's (price and total quantity). Each price that
  differs is a **mismatch** if it lay inside the previous row's visible range on that side (and
  is then repaired so the replay goes on), otherwise a **resync**: the level entered the view
  and takes its size from the file (a synthetic order added at the back when short; when long,
  liquidity taken away, synthetic first, then from the back of the queue). Removals on both
  sides run before additions, so an adjustment never crosses the book.

Anything the book answers that these rules do not expect (a fill, a rejection) raises
:class:`ReplayError`: it would be a bug in the core or here, never a data condition.

**Stepping.** :meth:`LobsterReplay.run` drives a :class:`ReplaySession` over the two files in
lock step (:func:`lock_step`); the session is public so that other drivers can step it one
message at a time (the L3 backtester's feed does, between its own events) and subclasses can
change single rules through its documented hook methods (the L3 backtester puts its own orders
in the book that way). The check is the same code either way.

Cost: one pass over both files in lock step, O(1) memory besides the book; per message a few
book calls plus ``depth(L + 1)``.
"""

from __future__ import annotations

import contextlib
import gzip
import re
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Final, TypeAlias, TypeVar

from tradecore import Event, EventKind, OrderBook, OrderType, Reason, Side, Stp, TimeInForce
from tradecore.errors import TradecoreError

__all__ = [
    "DEFAULT_CAPACITY",
    "EMPTY_ASK_PRICE",
    "EMPTY_BID_PRICE",
    "EVENT_TYPE_NAMES",
    "SYNTHETIC_ID_BASE",
    "BookRow",
    "Discrepancy",
    "LobsterFiles",
    "LobsterFormatError",
    "LobsterReplay",
    "Message",
    "ReplayError",
    "ReplayResult",
    "ReplaySession",
    "embedded_samples",
    "lock_step",
    "read_messages",
    "read_orderbook",
]

#: First id of the synthetic orders (seed and resync liquidity); LOBSTER ids must be below it.
SYNTHETIC_ID_BASE: Final = 1 << 60
#: Account of the orders that come from the message file.
LOBSTER_ACCOUNT: Final = 1
#: Account of the synthetic orders.
SYNTHETIC_ACCOUNT: Final = 0
#: Price LOBSTER writes for an empty ask level (its size is 0).
EMPTY_ASK_PRICE: Final = 9_999_999_999
#: Price LOBSTER writes for an empty bid level (its size is 0).
EMPTY_BID_PRICE: Final = -9_999_999_999
#: Default capacity of the replay book (the LOBSTER ids are sparse, the slots are not).
DEFAULT_CAPACITY: Final = 1_000_000

EVENT_TYPE_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        1: "new",
        2: "partial cancel",
        3: "delete",
        4: "execution",
        5: "hidden execution",
        6: "cross",
        7: "halt",
    }
)

_DATA_DIR: Final = ("data", "lobster")
_EMBEDDED: Final = (
    (
        "AMZN_2012-06-21_34200000_57600000_message_1.csv.gz",
        "AMZN_2012-06-21_34200000_57600000_orderbook_1.csv.gz",
    ),
    (
        "AAPL_2012-06-21_34200000_57600000_message_10_first999.csv.gz",
        "AAPL_2012-06-21_34200000_57600000_orderbook_10_first999.csv.gz",
    ),
)

_T = TypeVar("_T")
Source: TypeAlias = Path | Traversable
Level: TypeAlias = tuple[int, int]


class LobsterFormatError(TradecoreError, ValueError):
    """A LOBSTER file that cannot be read as LOBSTER: names the file and the line (1-based)."""

    def __init__(self, source: str, line: int | None, problem: str) -> None:
        self.source = source
        self.line = line
        self.problem = problem
        where = source if line is None else f"{source}:{line}"
        super().__init__(f"{where}: {problem}")


class ReplayError(TradecoreError, RuntimeError):
    """The book answered something the replay rules never expect (a bug, or a full book)."""


@dataclass(frozen=True, slots=True)
class Message:
    """One row of a message file. ``line`` is its 1-based line number in the file."""

    line: int
    time_ns: int
    kind: int
    order_id: int
    size: int
    price: int
    direction: int

    @property
    def side(self) -> Side:
        """The side of the order the message is about (for executions: the resting order)."""
        return Side.BUY if self.direction == 1 else Side.SELL

    def describe(self) -> str:
        name = EVENT_TYPE_NAMES.get(self.kind, "?")
        return (
            f"type {self.kind} ({name}) id {self.order_id} {self.side.value} "
            f"{self.size} @ {self.price}"
        )


@dataclass(frozen=True, slots=True)
class BookRow:
    """One row of an orderbook file: real levels only (best first) and the file's depth L."""

    line: int
    levels: int
    asks: tuple[Level, ...]
    bids: tuple[Level, ...]

    def side(self, side: Side) -> tuple[Level, ...]:
        return self.bids if side is Side.BUY else self.asks

    def visible(self, side: Side, price: int) -> bool:
        """Whether ``price`` lies in this row's visible range on ``side``."""
        levels = self.bids if side is Side.BUY else self.asks
        if len(levels) < self.levels:
            return True
        bound = levels[-1][0]
        return price >= bound if side is Side.BUY else price <= bound


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """A mismatch: our book disagreed with the file where the previous row could see."""

    row: int
    row_line: int
    message: Message
    side: Side
    price: int
    ours: int
    file: int
    note: str

    def describe(self) -> str:
        return (
            f"row {self.row} (orderbook line {self.row_line}, after message line "
            f"{self.message.line}: {self.message.describe()}): {self.side.value} level "
            f"{self.price}: ours {self.ours}, file {self.file} ({self.note})"
        )


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """The outcome of one :meth:`LobsterReplay.run`.

    ``rows_checked`` counts every orderbook row compared with our book: row 0 (right after
    seeding) and the row after each applied message, so it equals the number of rows in the
    file. ``messages_applied`` is one less: message 0 is represented by the seed.
    """

    label: str
    levels: int
    rows_checked: int
    messages_applied: int
    resyncs: int
    mismatches: int
    details: tuple[Discrepancy, ...]
    events_by_type: Mapping[int, int]
    #: type 2/3/4 messages whose id the book did not hold (served from the price level)
    unknown_ids: int
    #: type 2/3/4 messages for more shares than our copy held (rest served from the level)
    short_orders: int
    #: type 3 deletions of fewer shares than our copy held (excess re-queued as synthetic)
    excess_requeued: int
    #: messages whose price level lacked the shares to take
    level_shortfalls: int
    resting_orders: int
    elapsed_s: float

    @property
    def ok(self) -> bool:
        return self.mismatches == 0

    @property
    def rows_per_second(self) -> float:
        return self.rows_checked / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def verification_line(self) -> str:
        verdict = "OK" if self.ok else "FAILED"
        return (
            f"LOBSTER {self.label} level {self.levels}: rows checked {self.rows_checked:,}, "
            f"resyncs {self.resyncs:,}, mismatches {self.mismatches:,} -> {verdict}"
        )

    def report(self) -> str:
        """Multi-line human summary: verification line, events per type, speed, details."""
        per_type = ", ".join(
            f"{k} {EVENT_TYPE_NAMES[k]} {self.events_by_type.get(k, 0):,}"
            for k in sorted(EVENT_TYPE_NAMES)
        )
        lines = [
            self.verification_line(),
            f"  events applied {self.messages_applied:,} (message 0 is the seed): {per_type}",
            f"  served from the level: unknown id {self.unknown_ids:,}, short copy "
            f"{self.short_orders:,}; excess re-queued {self.excess_requeued:,}; level "
            f"shortfalls {self.level_shortfalls:,}; resting at end {self.resting_orders:,}",
            f"  elapsed {self.elapsed_s:.3f} s, {self.rows_per_second:,.0f} rows/s",
        ]
        lines.extend(f"  mismatch: {d.describe()}" for d in self.details)
        if self.mismatches > len(self.details):
            lines.append(f"  ... and {self.mismatches - len(self.details):,} more")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Reading

_MESSAGE_RE: Final = re.compile(r"(\d+)(?:\.(\d{1,9}))?,(\d+),(\d+),(\d+),(-?\d+),(-?\d+)")
_INT_RE: Final = re.compile(r"-?\d+")
_HEADER_FIELD_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_ ]*")
_MESSAGE_COLUMNS: Final = "Time,Type,OrderID,Size,Price,Direction"


def _source_name(source: Source) -> str:
    return str(source)


def _lines(source: Source) -> Iterator[tuple[int, str]]:
    """Yield (line number, text without the line end); a ``.gz`` file is read through."""
    name = _source_name(source)
    line = 0
    with contextlib.ExitStack() as stack:
        raw = stack.enter_context(source.open("rb"))
        stream: Iterable[bytes] = raw
        if source.name.endswith(".gz"):
            stream = stack.enter_context(gzip.GzipFile(fileobj=raw))
        try:
            for line, chunk in enumerate(stream, 1):
                try:
                    text = chunk.decode("ascii")
                except UnicodeDecodeError as exc:
                    raise LobsterFormatError(name, line, f"not ASCII text ({exc.reason})") from None
                yield line, text.rstrip("\r\n")
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise LobsterFormatError(name, line + 1, f"not a valid gzip file ({exc})") from None


def _is_header(fields: list[str], width: int) -> bool:
    """A first line of ``width`` column names (LOBSTER writes none; some copies add one)."""
    return len(fields) % width == 0 and all(_HEADER_FIELD_RE.fullmatch(f) for f in fields)


def _bad_message(name: str, line: int, text: str) -> LobsterFormatError:
    """Explain why a message row failed the fast pattern."""
    fields = text.split(",")
    if len(fields) != 6:
        return LobsterFormatError(
            name,
            line,
            f"expected 6 comma-separated fields ({_MESSAGE_COLUMNS}), found {len(fields)}",
        )
    columns = _MESSAGE_COLUMNS.split(",")
    if not re.fullmatch(r"\d+(?:\.\d{1,9})?", fields[0]):
        return LobsterFormatError(
            name, line, f"Time {fields[0]!r} is not seconds with at most 9 decimals"
        )
    for column, value in zip(columns[1:], fields[1:], strict=True):
        if not _INT_RE.fullmatch(value):
            return LobsterFormatError(name, line, f"{column} {value!r} is not an integer")
    return LobsterFormatError(name, line, f"negative Type, OrderID or Size in {text!r}")


def read_messages(source: Source) -> Iterator[Message]:
    """Parse a message file (plain or ``.gz``), skipping a header line if the file has one."""
    name = _source_name(source)
    for line, text in _lines(source):
        match = _MESSAGE_RE.fullmatch(text)
        if match is None:
            if line == 1 and _is_header(text.split(","), 6):
                continue
            raise _bad_message(name, line, text)
        secs, frac, kind_s, oid_s, size_s, price_s, dir_s = match.groups()
        time_ns = int(secs) * 1_000_000_000 + (int(frac.ljust(9, "0")) if frac else 0)
        kind, oid, size, price, direction = (
            int(kind_s),
            int(oid_s),
            int(size_s),
            int(price_s),
            int(dir_s),
        )
        if kind not in EVENT_TYPE_NAMES:
            raise LobsterFormatError(name, line, f"unknown event Type {kind} (expected 1..7)")
        if direction not in (1, -1):
            raise LobsterFormatError(name, line, f"Direction {direction} is not 1 or -1")
        if 1 <= kind <= 4:
            if oid <= 0 or oid >= SYNTHETIC_ID_BASE:
                raise LobsterFormatError(
                    name, line, f"OrderID {oid} outside 1..{SYNTHETIC_ID_BASE - 1}"
                )
            if size <= 0:
                raise LobsterFormatError(name, line, f"Size {size} must be positive")
            if price <= 0:
                raise LobsterFormatError(name, line, f"Price {price} must be positive")
        yield Message(line, time_ns, kind, oid, size, price, direction)


def _parse_side(
    name: str, line: int, values: list[int], levels: int, offset: int, empty: int, label: str
) -> tuple[Level, ...]:
    out: list[Level] = []
    for k in range(levels):
        price, size = values[4 * k + offset], values[4 * k + offset + 1]
        if size == 0:
            if price != empty:
                raise LobsterFormatError(
                    name, line, f"{label} level {k + 1} has size 0 but price {price} ({empty})"
                )
            continue
        if size < 0 or price <= 0:
            raise LobsterFormatError(
                name, line, f"{label} level {k + 1} has price {price} size {size}"
            )
        if len(out) < k:
            raise LobsterFormatError(name, line, f"{label} level {k + 1} follows an empty level")
        if out and (price <= out[-1][0] if label == "ask" else price >= out[-1][0]):
            raise LobsterFormatError(
                name, line, f"{label} level {k + 1} price {price} out of order"
            )
        out.append((price, size))
    return tuple(out)


def read_orderbook(source: Source) -> Iterator[BookRow]:
    """Parse an orderbook file (plain or ``.gz``), skipping a header line if it has one."""
    name = _source_name(source)
    width = 0
    for line, text in _lines(source):
        fields = text.split(",")
        if not all(_INT_RE.fullmatch(f) for f in fields):
            if line == 1 and _is_header(fields, 4):
                continue
            bad = next(f for f in fields if not _INT_RE.fullmatch(f))
            raise LobsterFormatError(name, line, f"field {bad!r} is not an integer")
        if width == 0:
            if len(fields) % 4:
                raise LobsterFormatError(
                    name, line, f"{len(fields)} fields is not a multiple of 4 (ask, bid per level)"
                )
            width = len(fields)
        elif len(fields) != width:
            raise LobsterFormatError(
                name, line, f"expected {width} fields like the first row, found {len(fields)}"
            )
        values = [int(f) for f in fields]
        levels = width // 4
        asks = _parse_side(name, line, values, levels, 0, EMPTY_ASK_PRICE, "ask")
        bids = _parse_side(name, line, values, levels, 2, EMPTY_BID_PRICE, "bid")
        if asks and bids and bids[0][0] >= asks[0][0]:
            raise LobsterFormatError(
                name, line, f"crossed row: best bid {bids[0][0]} >= best ask {asks[0][0]}"
            )
        yield BookRow(line, levels, asks, bids)


_NAME_RE: Final = re.compile(
    r"(?P<ticker>[A-Za-z.]+)_(?P<date>\d{4}-\d{2}-\d{2})_\d+_\d+_message_\d+.*"
)


@dataclass(frozen=True, slots=True)
class LobsterFiles:
    """A message file and its orderbook file (paths or package resources, plain or .gz)."""

    message: Source
    orderbook: Source

    @property
    def label(self) -> str:
        match = _NAME_RE.fullmatch(self.message.name)
        if match is None:
            return self.message.name
        return f"{match['ticker']} {match['date']}"

    def messages(self) -> Iterator[Message]:
        return read_messages(self.message)

    def rows(self) -> Iterator[BookRow]:
        return read_orderbook(self.orderbook)

    @classmethod
    def discover(cls, directory: Path) -> list[LobsterFiles]:
        """Every ``*_message_*.csv[.gz]`` in ``directory`` with its ``_orderbook_`` twin."""
        if not directory.is_dir():
            raise FileNotFoundError(2, "not a directory", str(directory))
        pairs = []
        for path in sorted(directory.iterdir()):
            if "_message_" not in path.name or not path.name.endswith((".csv", ".csv.gz")):
                continue
            twin = path.with_name(path.name.replace("_message_", "_orderbook_", 1))
            if not twin.is_file():
                raise LobsterFormatError(
                    str(path), None, f"no orderbook file {twin.name} beside it"
                )
            pairs.append(cls(path, twin))
        if not pairs:
            raise LobsterFormatError(str(directory), None, "no *_message_*.csv files found")
        return pairs


def embedded_samples() -> list[LobsterFiles]:
    """The LOBSTER samples shipped in the package (AMZN level 1, then AAPL level 10)."""
    base = resources.files("tradecore").joinpath(*_DATA_DIR)
    return [LobsterFiles(base.joinpath(m), base.joinpath(o)) for m, o in _EMBEDDED]


# --------------------------------------------------------------------------------------------
# Replay


class LobsterReplay:
    """Replays a message stream against an orderbook stream; see the module doc for the rules.

    ``messages`` and ``rows`` may be any iterables (lists let a test tamper with a message);
    ``book_factory(capacity)`` builds the book (a subclass may be injected to corrupt it).
    :meth:`run` replays everything; :meth:`session` gives the same replay one message at a time.
    """

    def __init__(
        self,
        messages: Iterable[Message],
        rows: Iterable[BookRow],
        *,
        label: str = "LOBSTER",
        capacity: int = DEFAULT_CAPACITY,
        max_details: int = 20,
        book_factory: Callable[[int], OrderBook] = OrderBook,
        sources: tuple[str, str] = ("message file", "orderbook file"),
    ) -> None:
        self.messages = messages
        self.rows = rows
        self.label = label
        self.capacity = capacity
        self.max_details = max_details
        self.book_factory = book_factory
        self.sources = sources

    @classmethod
    def from_files(
        cls,
        files: LobsterFiles,
        *,
        capacity: int = DEFAULT_CAPACITY,
        max_details: int = 20,
        book_factory: Callable[[int], OrderBook] = OrderBook,
    ) -> LobsterReplay:
        """A replay of a file pair, read lazily (in lock step, again on each run)."""
        return cls(
            _Reread(files.messages),
            _Reread(files.rows),
            label=files.label,
            capacity=capacity,
            max_details=max_details,
            book_factory=book_factory,
            sources=(_source_name(files.message), _source_name(files.orderbook)),
        )

    def session(self) -> ReplaySession:
        """A fresh :class:`ReplaySession` (a new book) that the caller steps through."""
        return ReplaySession(self)

    def pairs(self) -> Iterator[tuple[Message, BookRow]]:
        """``(message i, orderbook row i)`` in lock step; an error if the counts differ."""
        return lock_step(self.messages, self.rows, self.sources)

    def run(self) -> ReplayResult:
        """Replay every message and check every row (a :class:`ReplaySession` driven to the end)."""
        start = time.perf_counter()
        session = self.session()
        pairs = self.pairs()
        first = next(pairs, None)
        if first is None:
            raise LobsterFormatError(self.sources[0], None, "no messages")
        session.start(*first)
        for msg, row in pairs:
            session.step(msg, row)
        return session.result(time.perf_counter() - start)


def lock_step(
    messages: Iterable[Message], rows: Iterable[BookRow], sources: tuple[str, str]
) -> Iterator[tuple[Message, BookRow]]:
    """Pair message ``i`` with orderbook row ``i``; a :class:`LobsterFormatError` naming the
    orderbook file (``sources[1]``) when one file has more lines than the other."""
    msg_name, book_name = sources
    msgs, book_rows = iter(messages), iter(rows)
    count = 0
    for msg in msgs:
        row = next(book_rows, None)
        if row is None:
            if count == 0:
                raise LobsterFormatError(book_name, None, "no rows")
            raise LobsterFormatError(
                book_name,
                None,
                f"has {count} rows, the message file has more (message line {msg.line})",
            )
        count += 1
        yield msg, row
    extra = next(book_rows, None)
    if extra is not None:
        if count == 0:
            raise LobsterFormatError(msg_name, None, "no messages")
        raise LobsterFormatError(
            book_name, extra.line, f"has more rows than the message file ({count})"
        )


class _Reread(Iterable[_T]):
    """An iterable that opens its source afresh on every iteration."""

    def __init__(self, open_: Callable[[], Iterator[_T]]) -> None:
        self._open = open_

    def __iter__(self) -> Iterator[_T]:
        return self._open()


_ACCEPT: Final = (EventKind.ACCEPTED,)
_CANCEL: Final = (EventKind.CANCELLED,)
_REPLACE: Final = (EventKind.REPLACED,)


class ReplaySession:
    """One replay of :class:`LobsterReplay` ``cfg``, driven one message at a time.

    Driving: :meth:`start` with message 0 and row 0 (seed, check row 0), then :meth:`step`
    with message ``i`` and row ``i`` for each later message (apply, check), then
    :meth:`result`. The caller pairs messages with rows (:func:`lock_step` does it with the
    file-level checks); :meth:`LobsterReplay.run` is exactly that loop.

    Extending: the rules of the module doc are methods a subclass may override or call (the
    L3 backtester, :class:`tradecore.backtest.l3.L3Replay`, does both to put its own orders in
    the book). Each takes the index of the row being produced and the message being applied,
    for error messages:

    * :meth:`apply_message` dispatches a message by type to :meth:`add_order` (type 1) or
      :meth:`remove_shares` (types 2, 3, 4); types 5-7 change nothing.
    * :meth:`take_from_level` removes shares from a level (synthetic first, then the back of
      the queue), :meth:`reduce_order` from one order, :meth:`add_synthetic` adds liquidity.
    * :meth:`compare_row` checks a row: :meth:`visible_levels` says what the book holds in
      the row's view, :meth:`record_mismatch` counts a difference at a visible level, then
      the difference is repaired.
    * :meth:`expect` and :meth:`fail` turn an unexpected book answer into a
      :class:`ReplayError` naming the row and message.

    The counters (``rows_checked``, ``resyncs``, ``mismatches``, ``details``, ``by_type``,
    ``unknown_ids``, ``short_orders``, ``excess_requeued``, ``level_shortfalls``) are public
    and current after every step. Cost per step: the rules' book calls plus one
    ``depth(L + 1)`` for the check.
    """

    def __init__(self, cfg: LobsterReplay) -> None:
        self.cfg = cfg
        self.book: OrderBook = cfg.book_factory(cfg.capacity)
        self.next_synthetic = SYNTHETIC_ID_BASE
        self.rows_checked = 0
        self.resyncs = 0
        self.mismatches = 0
        self.details: list[Discrepancy] = []
        self.by_type: dict[int, int] = dict.fromkeys(EVENT_TYPE_NAMES, 0)
        self.unknown_ids = 0
        self.short_orders = 0
        self.excess_requeued = 0
        self.level_shortfalls = 0
        #: Depth L of the orderbook file (set by :meth:`start`).
        self.levels = 0
        #: Messages applied so far (message 0 is represented by the seed).
        self.index = 0
        #: The last row checked (None before :meth:`start`).
        self.prev: BookRow | None = None

    # -- driving -------------------------------------------------------------------------------

    def start(self, first: Message, row: BookRow) -> None:
        """Seed the book from row 0 (it stands for message 0) and check row 0."""
        if self.prev is not None:
            raise ReplayError(f"{self.cfg.label}: the session has already started")
        self.levels = row.levels
        for side in (Side.BUY, Side.SELL):
            for price, size in row.side(side):
                self.add_synthetic(side, price, size, 0, first)
        self.compare_row(0, row, None, first)
        self.prev = row

    def step(self, msg: Message, row: BookRow) -> None:
        """Apply message ``i`` (the next one) and check orderbook row ``i``."""
        prev = self.prev
        if prev is None:
            raise ReplayError(f"{self.cfg.label}: step() before start()")
        if row.levels != self.levels:
            raise LobsterFormatError(self.cfg.sources[1], row.line, "number of levels changed")
        self.index += 1
        self.apply_message(self.index, msg, prev)
        self.by_type[msg.kind] += 1
        self.compare_row(self.index, row, prev, msg)
        self.prev = row

    def result(self, elapsed_s: float = 0.0) -> ReplayResult:
        """The counters so far as a :class:`ReplayResult`."""
        return ReplayResult(
            label=self.cfg.label,
            levels=self.levels,
            rows_checked=self.rows_checked,
            messages_applied=self.index,
            resyncs=self.resyncs,
            mismatches=self.mismatches,
            details=tuple(self.details),
            events_by_type=MappingProxyType(dict(self.by_type)),
            unknown_ids=self.unknown_ids,
            short_orders=self.short_orders,
            excess_requeued=self.excess_requeued,
            level_shortfalls=self.level_shortfalls,
            resting_orders=len(self.book),
            elapsed_s=elapsed_s,
        )

    # -- book operations ---------------------------------------------------------------------

    def fail(self, row: int, msg: Message, what: str) -> ReplayError:
        """The error for an unexpected book answer at ``row`` (raise it)."""
        return ReplayError(
            f"{self.cfg.label} row {row} (message line {msg.line}: {msg.describe()}): {what}"
        )

    def expect(
        self, events: Sequence[Event], allowed: tuple[EventKind, ...], row: int, msg: Message
    ) -> None:
        """Fail loudly on any event the rules exclude (fills, rejections such as BOOK_FULL)."""
        for event in events:
            if event.kind not in allowed:
                if event.reason == Reason.BOOK_FULL:
                    what = f"the book is full (capacity {self.cfg.capacity:,}); raise the capacity"
                    raise self.fail(row, msg, what)
                raise self.fail(row, msg, f"book answered {event!r}, expected only {allowed}")

    def add_synthetic(self, side: Side, price: int, qty: int, row: int, msg: Message) -> None:
        """Add ``qty`` of synthetic liquidity at the back of ``price`` (seed and resyncs)."""
        oid = self.next_synthetic
        self.next_synthetic += 1
        events = self.book.submit(
            oid,
            SYNTHETIC_ACCOUNT,
            side,
            price,
            qty,
            order_type=OrderType.LIMIT,
            tif=TimeInForce.GTC,
            stp=Stp.NONE,
        )
        self.expect(events, _ACCEPT, row, msg)

    def reduce_order(
        self, oid: int, price: int, leaves: int, by: int, row: int, msg: Message
    ) -> None:
        """Take ``by`` (<= leaves) shares off a resting order, keeping its place in the queue."""
        if by >= leaves:
            self.expect(self.book.cancel(oid), _CANCEL, row, msg)
        else:
            self.expect(self.book.modify(oid, price, leaves - by), _REPLACE, row, msg)

    def take_from_level(self, side: Side, price: int, qty: int, row: int, msg: Message) -> int:
        """Remove up to ``qty`` from a level: synthetic orders first, then from the back.
        Returns the shares removed."""
        queue = self.book.orders(side, price)
        taken = 0
        for synthetic in (True, False):
            for oid, _account, _price, leaves in reversed(queue):
                if taken == qty:
                    return taken
                if (oid >= SYNTHETIC_ID_BASE) is synthetic:
                    by = min(leaves, qty - taken)
                    self.reduce_order(oid, price, leaves, by, row, msg)
                    taken += by
        return taken

    def apply_message(self, row: int, msg: Message, prev: BookRow) -> None:
        """Apply one message by its type (``prev`` is the row before it)."""
        if msg.kind == 1:
            self.add_order(row, msg, prev)
        elif msg.kind in (2, 3, 4):
            self.remove_shares(row, msg)
        # 5 (hidden execution), 6 (cross), 7 (halt): the visible book does not change.

    def add_order(self, row: int, msg: Message, prev: BookRow) -> None:
        """Type 1: clear the stale liquidity it would cross, then rest it under its id."""
        side = msg.side
        other = Side.SELL if side is Side.BUY else Side.BUY
        while True:
            best = self.book.best_ask() if side is Side.BUY else self.book.best_bid()
            if best is None:
                break
            price, qty = best
            if (price > msg.price) if side is Side.BUY else (price < msg.price):
                break
            if self.take_from_level(other, price, qty, row, msg) != qty:
                raise self.fail(row, msg, f"could not clear the crossed level {price}")
            if prev.visible(other, price):
                self.record_mismatch(row, prev, msg, other, price, qty, 0, "new order crosses it")
            else:
                self.resyncs += 1
        if self.book.order(msg.order_id) is not None:
            raise LobsterFormatError(
                self.cfg.sources[0], msg.line, f"OrderID {msg.order_id} is already resting"
            )
        events = self.book.submit(
            msg.order_id,
            LOBSTER_ACCOUNT,
            side,
            msg.price,
            msg.size,
            order_type=OrderType.LIMIT,
            tif=TimeInForce.GTC,
            stp=Stp.NONE,
            timestamp=msg.time_ns,
        )
        self.expect(events, _ACCEPT, row, msg)

    def remove_shares(self, row: int, msg: Message) -> None:
        """Types 2, 3, 4: take the shares off the named order, the rest from its level."""
        side, price = msg.side, msg.price
        rest = msg.size
        found = self.book.order(msg.order_id)
        if found is not None and found[2] == price:
            leaves = found[3]
            if msg.kind == 3 or msg.size >= leaves:
                self.reduce_order(msg.order_id, price, leaves, leaves, row, msg)
                rest = msg.size - leaves
                if rest < 0:
                    self.add_synthetic(side, price, -rest, row, msg)
                    self.excess_requeued += 1
                    rest = 0
                elif rest > 0:
                    self.short_orders += 1
            else:
                self.reduce_order(msg.order_id, price, leaves, msg.size, row, msg)
                rest = 0
        else:
            self.unknown_ids += 1
        if rest > 0 and self.take_from_level(side, price, rest, row, msg) < rest:
            self.level_shortfalls += 1

    # -- comparison --------------------------------------------------------------------------

    def visible_levels(self, row: BookRow) -> tuple[dict[int, int], dict[int, int]]:
        """What the book holds inside ``row``'s visible range, per side (price -> quantity):
        the levels compared with the file."""
        n = row.levels + 1
        while True:
            bids, asks = self.book.depth(n)
            bid_in = {p: q for p, q, _ in bids if row.visible(Side.BUY, p)}
            ask_in = {p: q for p, q, _ in asks if row.visible(Side.SELL, p)}
            if len(bid_in) < n and len(ask_in) < n:
                return bid_in, ask_in
            n *= 4

    def record_mismatch(
        self,
        row: int,
        book_row: BookRow,
        msg: Message,
        side: Side,
        price: int,
        ours: int,
        file: int,
        note: str,
    ) -> None:
        """Count a difference at a level the previous row could see (keep the first few)."""
        self.mismatches += 1
        if len(self.details) < self.cfg.max_details:
            self.details.append(Discrepancy(row, book_row.line, msg, side, price, ours, file, note))

    def compare_row(self, index: int, row: BookRow, prev: BookRow | None, msg: Message) -> None:
        """Check the book against ``row`` (after message ``index``); repair each difference."""
        self.rows_checked += 1
        bid_in, ask_in = self.visible_levels(row)
        diffs: list[tuple[Side, int, int, int]] = []
        for side, ours in ((Side.BUY, bid_in), (Side.SELL, ask_in)):
            theirs = dict(row.side(side))
            if ours != theirs:
                for price in sorted(ours.keys() | theirs.keys()):
                    have, want = ours.get(price, 0), theirs.get(price, 0)
                    if have != want:
                        diffs.append((side, price, have, want))
        # Removals first (on both sides), so that no addition can cross the book.
        diffs.sort(key=lambda d: d[3] > d[2])
        for side, price, have, want in diffs:
            if prev is None or prev.visible(side, price):
                note = "seed" if prev is None else "level visible in the previous row"
                self.record_mismatch(index, row, msg, side, price, have, want, note)
            else:
                self.resyncs += 1
            if want > have:
                self.add_synthetic(side, price, want - have, index, msg)
            elif self.take_from_level(side, price, have - want, index, msg) != have - want:
                raise self.fail(index, msg, f"could not take {have - want} at {price}")
