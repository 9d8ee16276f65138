"""The trading node's SQLite store: orders, order events, fills, positions, risk events, state.

Owns one SQLite database file in WAL mode and one background writer thread. The hot path never
touches the database: it builds plain tuples and calls :meth:`Store.put`, which appends one
*item* (a tuple of operations) to an unbounded ``collections.deque`` (about 0.1 us; append is
atomic, no lock, and it wakes nobody). The writer thread wakes every ``interval`` seconds (or at
once for :meth:`Store.flush` / :meth:`Store.close`), takes everything queued and commits it in
one transaction. Not waking the writer per item matters for latency: a woken thread competes
for the GIL with the trading loop; this one runs at most ``1 / interval`` times a second.

Invariants:

* An item is atomic: its operations land in the same transaction. The node puts a fill, the
  order it belongs to and the position it changes in one item, so after a crash at any instant
  (even SIGKILL) the database holds either all three or none: positions always equal the sum of
  the fills that are stored, and each order's ``filled_qty`` equals the sum of its fills.
* Items are applied in the order they were put (one writer, FIFO queue, operations executed in
  order inside a transaction).
* :meth:`Store.flush` returns once everything put before it is committed; :meth:`Store.close`
  flushes, stops the writer and closes the file. Nothing that was put is dropped: an operation
  that SQLite refuses is retried alone and, if it still fails, kept in :attr:`Store.failures`
  with the error (the node reports them at exit).
* Money (fees, P&L, average prices) is stored as decimal TEXT, never as REAL; prices are integer
  ticks and quantities integer lots.

Durability: ``journal_mode=WAL`` with ``synchronous=NORMAL``: a commit reaches the OS before
the writer moves on, so a killed process loses nothing committed (an OS crash may lose the last
commits, never consistency). Cost: one ``put`` on the hot path; the writer spends a few
microseconds per row in C (multi-row INSERTs over runs of the same statement, so that it
needs the GIL once per chunk of rows, not once per row: see ``_execute_rows``; a chunk's
values are flattened by ``itertools.chain``, not a Python loop per value).

Row builders (``order_op``, ``fill_op`` ...) run on the trading thread for every report: a
tuple of the row's values, enum texts looked up in dicts, money as ``str(Decimal)``, exact
ratios as ``str(Fraction)`` (``"n"`` or ``"n/d"``, written from the Fraction's two ints).
:func:`position_values_op` and :func:`account_values_op` build the same ops as
:func:`position_op` and :func:`account_op` straight from plain values (no row object), for a
caller on the per-fill path. Each is a microsecond or less; most of it is int and Decimal to
text.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import json.encoder
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

from tradecore.enums import OrderType, Side, TimeInForce
from tradecore.errors import TradecoreError
from tradecore.execution.types import (
    Fill,
    Liquidity,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderRequest,
    OrderStatus,
)
from tradecore.marketdata.events import fast_frozen_init

__all__ = [
    "SCHEMA_VERSION",
    "AccountRow",
    "Op",
    "PositionRow",
    "RiskBaselineRow",
    "RiskEventRow",
    "Store",
    "StoreError",
    "StoreFailure",
]

log = logging.getLogger("tradecore.store")

SCHEMA_VERSION: Final = 1

# Operation codes (the first element of every operation tuple).
OP_ORDER: Final = 0
OP_ORDER_EVENT: Final = 1
OP_FILL: Final = 2
OP_POSITION: Final = 3
OP_RISK_EVENT: Final = 4
OP_STRATEGY_STATE: Final = 5
OP_CURSOR: Final = 6
OP_ACCOUNT: Final = 7
OP_RISK_BASELINE: Final = 8

Op = tuple[int, tuple[Any, ...]]
"""One write: ``(op code, row)``; rows are tuples in the column order of the statement."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_ns INTEGER NOT NULL,
    ended_ns INTEGER,
    config_path TEXT NOT NULL DEFAULT '',
    summary TEXT
);
CREATE TABLE IF NOT EXISTS orders (
    account INTEGER NOT NULL,
    client_order_id INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    order_type TEXT NOT NULL,
    tif TEXT NOT NULL,
    post_only INTEGER NOT NULL,
    strategy TEXT NOT NULL,
    tag TEXT NOT NULL,
    request_price INTEGER NOT NULL,
    request_qty INTEGER NOT NULL,
    request_ts_ns INTEGER NOT NULL,
    status TEXT NOT NULL,
    price INTEGER NOT NULL,
    qty INTEGER NOT NULL,
    filled_qty INTEGER NOT NULL,
    leaves INTEGER NOT NULL,
    notional_filled INTEGER NOT NULL,
    venue_order_id INTEGER NOT NULL,
    reason TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL,
    run_id INTEGER NOT NULL,
    PRIMARY KEY (account, client_order_id)
);
CREATE INDEX IF NOT EXISTS orders_open ON orders (status);
CREATE TABLE IF NOT EXISTS order_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    account INTEGER NOT NULL,
    client_order_id INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    price INTEGER NOT NULL,
    qty INTEGER NOT NULL,
    leaves INTEGER NOT NULL,
    ts_ns INTEGER NOT NULL,
    event_id INTEGER NOT NULL,
    reason TEXT NOT NULL,
    liquidity TEXT,
    fee TEXT NOT NULL,
    venue_order_id INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS fills (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL,
    account INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    client_order_id INTEGER NOT NULL,
    side TEXT NOT NULL,
    price INTEGER NOT NULL,
    qty INTEGER NOT NULL,
    liquidity TEXT NOT NULL,
    fee TEXT NOT NULL,
    ts_ns INTEGER NOT NULL,
    fill_id INTEGER NOT NULL,
    strategy TEXT NOT NULL,
    UNIQUE (run_id, account, fill_id)
);
CREATE INDEX IF NOT EXISTS fills_order ON fills (account, client_order_id);
CREATE TABLE IF NOT EXISTS positions (
    account INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    qty INTEGER NOT NULL,
    cost_ticklots TEXT NOT NULL,
    realized_ticklots TEXT NOT NULL,
    fees TEXT NOT NULL,
    volume INTEGER NOT NULL,
    fills INTEGER NOT NULL,
    ts_ns INTEGER NOT NULL,
    PRIMARY KEY (account, symbol)
);
CREATE TABLE IF NOT EXISTS accounts (
    account INTEGER PRIMARY KEY,
    cash TEXT NOT NULL,
    initial_cash TEXT NOT NULL,
    ts_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS risk_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL,
    ts_ns INTEGER NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    account INTEGER NOT NULL,
    strategy TEXT NOT NULL,
    symbol TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS risk_baselines (
    account INTEGER PRIMARY KEY,
    day INTEGER NOT NULL,
    day_start_equity TEXT NOT NULL,
    peak_equity TEXT NOT NULL,
    ts_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS strategy_state (
    strategy TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    ts_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS source_cursor (
    source TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    ts_ns INTEGER NOT NULL
);
"""

_STATEMENTS: Final[dict[int, str]] = {
    OP_ORDER: (
        "INSERT OR REPLACE INTO orders (account, client_order_id, symbol, side, order_type, tif,"
        " post_only, strategy, tag, request_price, request_qty, request_ts_ns, status, price,"
        " qty, filled_qty, leaves, notional_filled, venue_order_id, reason, created_ns,"
        " updated_ns, run_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    ),
    OP_ORDER_EVENT: (
        "INSERT INTO order_events (run_id, kind, account, client_order_id, symbol, side, price,"
        " qty, leaves, ts_ns, event_id, reason, liquidity, fee, venue_order_id)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    ),
    OP_FILL: (
        "INSERT INTO fills (run_id, account, symbol, client_order_id, side, price, qty,"
        " liquidity, fee, ts_ns, fill_id, strategy) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
    ),
    OP_POSITION: (
        "INSERT OR REPLACE INTO positions (account, symbol, qty, cost_ticklots,"
        " realized_ticklots, fees, volume, fills, ts_ns) VALUES (?,?,?,?,?,?,?,?,?)"
    ),
    OP_ACCOUNT: (
        "INSERT OR REPLACE INTO accounts (account, cash, initial_cash, ts_ns) VALUES (?,?,?,?)"
    ),
    OP_RISK_EVENT: (
        "INSERT INTO risk_events (run_id, ts_ns, kind, reason, account, strategy, symbol, detail)"
        " VALUES (?,?,?,?,?,?,?,?)"
    ),
    OP_RISK_BASELINE: (
        "INSERT OR REPLACE INTO risk_baselines (account, day, day_start_equity, peak_equity,"
        " ts_ns) VALUES (?,?,?,?,?)"
    ),
    OP_STRATEGY_STATE: (
        "INSERT OR REPLACE INTO strategy_state (strategy, state, ts_ns) VALUES (?,?,?)"
    ),
    OP_CURSOR: "INSERT OR REPLACE INTO source_cursor (source, position, ts_ns) VALUES (?,?,?)",
}


class StoreError(TradecoreError, RuntimeError):
    """The store cannot open, write or close its database; the message names the file."""


@dataclass(frozen=True, slots=True)
class StoreFailure:
    """An operation SQLite refused even when retried alone (kept, never dropped silently)."""

    op: int
    row: tuple[Any, ...]
    error: str


@dataclass(frozen=True, slots=True)
class PositionRow:
    """A position of one account in one symbol as stored, exactly.

    ``qty`` is signed lots; ``cost_ticklots`` (the signed cost basis of the open lots) and
    ``realized_ticklots`` are exact rationals in tick-lots (stored as ``"num/den"`` text), so
    the average price ``cost / qty`` and the realized P&L survive a restart without rounding;
    ``fees`` is money in the quote currency.
    """

    account: int
    symbol: str
    qty: int
    cost_ticklots: Fraction
    realized_ticklots: Fraction
    fees: Decimal
    volume: int
    fills: int
    ts_ns: int


@dataclass(frozen=True, slots=True)
class AccountRow:
    """An account's cash (and the cash it started with), quote currency."""

    account: int
    cash: Decimal
    initial_cash: Decimal
    ts_ns: int


@dataclass(frozen=True, slots=True)
class RiskEventRow:
    """A risk decision worth keeping: a reject, a kill-switch trip or reset, a limits reload."""

    ts_ns: int
    kind: str
    reason: str
    account: int = 0
    strategy: str = ""
    symbol: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RiskBaselineRow:
    """What the loss limits measure from, per account: the UTC day (days since the epoch) and
    the equity at its first evaluation (``max_daily_loss``), and the peak equity so far
    (``max_drawdown``). Stored so a restart on the same day keeps the day's loss."""

    account: int
    day: int
    day_start_equity: Decimal
    peak_equity: Decimal
    ts_ns: int


# Built on the trading thread for every fill (positions, cash) and risk decision.
for _row in (PositionRow, AccountRow, RiskEventRow):
    fast_frozen_init(_row)
del _row


class _Flush:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


_STOP: Final = object()

_ORDER_COLUMNS = (
    "account, client_order_id, symbol, side, order_type, tif, post_only, strategy, tag,"
    " request_price, request_qty, request_ts_ns, status, price, qty, filled_qty, leaves,"
    " notional_filled, venue_order_id, reason, created_ns, updated_ns"
)


# The op builders run on the trading thread for every report: an enum member's text is looked
# up in a dict built from ``member._value_`` (``.value`` is a Python-level property, ~150 ns;
# ``._value_`` on a str-subclass member is an unspecialized attribute load, ~60 ns; the dict
# lookup hashes the str member in C, ~30 ns).
_SIDE_TEXT: Final[dict[Side, str]] = {m: m._value_ for m in Side}
_TYPE_TEXT: Final[dict[OrderType, str]] = {m: m._value_ for m in OrderType}
_TIF_TEXT: Final[dict[TimeInForce, str]] = {m: m._value_ for m in TimeInForce}
_STATUS_TEXT: Final[dict[OrderStatus, str]] = {m: m._value_ for m in OrderStatus}
_KIND_TEXT: Final[dict[OrderEventKind, str]] = {m: m._value_ for m in OrderEventKind}
_LIQUIDITY_TEXT: Final[dict[Liquidity | None, str | None]] = {
    None: None,
    **{m: m._value_ for m in Liquidity},
}


def order_op(order: Order, run_id: int) -> Op:
    """The upsert of ``order``'s current state (a snapshot: later changes are not seen)."""
    r = order.request
    return (
        OP_ORDER,
        (
            r.account,
            r.client_order_id,
            r.symbol,
            _SIDE_TEXT[r.side],
            _TYPE_TEXT[r.order_type],
            _TIF_TEXT[r.tif],
            1 if r.post_only else 0,
            r.strategy,
            r.tag,
            r.price,
            r.qty,
            r.ts_ns,
            _STATUS_TEXT[order.status],
            order.price,
            order.qty,
            order.filled_qty,
            order.leaves,
            order.notional_filled,
            order.venue_order_id,
            order.reason,
            order.created_ns,
            order.updated_ns,
            run_id,
        ),
    )


def order_event_op(ev: OrderEvent, run_id: int) -> Op:
    """The insert of one execution report."""
    return (
        OP_ORDER_EVENT,
        (
            run_id,
            _KIND_TEXT[ev.kind],
            ev.account,
            ev.client_order_id,
            ev.symbol,
            _SIDE_TEXT[ev.side],
            ev.price,
            ev.qty,
            ev.leaves,
            ev.ts_ns,
            ev.event_id,
            ev.reason,
            _LIQUIDITY_TEXT[ev.liquidity],
            str(ev.fee),
            ev.venue_order_id,
        ),
    )


def fill_op(fill: Fill, run_id: int) -> Op:
    """The insert of one fill."""
    return (
        OP_FILL,
        (
            run_id,
            fill.account,
            fill.symbol,
            fill.client_order_id,
            _SIDE_TEXT[fill.side],
            fill.price,
            fill.qty,
            _LIQUIDITY_TEXT[fill.liquidity],
            str(fill.fee),
            fill.ts_ns,
            fill.fill_id,
            fill.strategy,
        ),
    )


# Fraction typed Any: its private slots are read below (their values are what str() prints);
# never matched (str() is used) if this Python's Fraction does not have those two slots.
_FRACTION: Any = (
    Fraction if getattr(Fraction, "__slots__", None) == ("_numerator", "_denominator") else None
)


def position_op(pos: PositionRow) -> Op:
    """The upsert of one position (``str()`` of each exact value: ``"n"`` or ``"n/d"``)."""
    # str(Fraction) is a Python method; the same text from its two int slots costs half.
    cost: Any = pos.cost_ticklots
    if type(cost) is _FRACTION:
        d = cost._denominator
        cost = str(cost._numerator) if d == 1 else f"{cost._numerator}/{d}"
    else:
        cost = str(cost)
    realized: Any = pos.realized_ticklots
    if type(realized) is _FRACTION:
        d = realized._denominator
        realized = str(realized._numerator) if d == 1 else f"{realized._numerator}/{d}"
    else:
        realized = str(realized)
    return (
        OP_POSITION,
        (
            pos.account,
            pos.symbol,
            pos.qty,
            cost,
            realized,
            str(pos.fees),
            pos.volume,
            pos.fills,
            pos.ts_ns,
        ),
    )


def position_values_op(
    account: int,
    symbol: str,
    values: tuple[int, int, int, int, int, Decimal, int, int],
    ts_ns: int,
) -> Op:
    """:func:`position_op` of the position ``values`` describes, without the row objects.

    ``values`` is ``(qty, cost numerator, cost denominator, realized numerator, realized
    denominator, fees, volume, fills)``, each ratio in lowest terms with a positive
    denominator: what ``Portfolio.record_values`` returns. The op is the one
    ``position_op(PositionRow(account, symbol, qty, Fraction(cn, cd), Fraction(rn, rd), fees,
    volume, fills, ts_ns))`` builds (a test compares them).
    """
    qty, cn, cd, rn, rd, fees, volume, fills = values
    return (
        OP_POSITION,
        (
            account,
            symbol,
            qty,
            str(cn) if cd == 1 else f"{cn}/{cd}",
            str(rn) if rd == 1 else f"{rn}/{rd}",
            str(fees),
            volume,
            fills,
            ts_ns,
        ),
    )


def account_op(row: AccountRow) -> Op:
    """The upsert of one account's cash."""
    return (OP_ACCOUNT, (row.account, str(row.cash), str(row.initial_cash), row.ts_ns))


def account_values_op(account: int, cash: Decimal, initial_cash: Decimal, ts_ns: int) -> Op:
    """``account_op(AccountRow(account, cash, initial_cash, ts_ns))``, without the row."""
    return (OP_ACCOUNT, (account, str(cash), str(initial_cash), ts_ns))


def risk_event_op(ev: RiskEventRow, run_id: int) -> Op:
    """The insert of one risk event."""
    return (
        OP_RISK_EVENT,
        (run_id, ev.ts_ns, ev.kind, ev.reason, ev.account, ev.strategy, ev.symbol, ev.detail),
    )


def risk_baseline_op(row: RiskBaselineRow) -> Op:
    """The upsert of one account's loss baselines (Decimal as text: exact)."""
    return (
        OP_RISK_BASELINE,
        (row.account, row.day, str(row.day_start_equity), str(row.peak_equity), row.ts_ns),
    )


# What ``json.dumps(state, default=str, sort_keys=True)`` does, without building a new
# ``JSONEncoder`` on every call (about a microsecond): the C encoder it would use, made per
# call with its own circular-reference markers (so concurrent callers never share them).
_STATE_ENCODER = json.JSONEncoder(default=str, sort_keys=True)
_C_MAKE_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)
_ENCODE_ASCII: Any = getattr(json.encoder, "c_encode_basestring_ascii", None)


def state_json(state: object) -> str:
    """``json.dumps(state, default=str, sort_keys=True)``, the same text, about twice as fast."""
    make = _C_MAKE_ENCODER
    if make is None or _ENCODE_ASCII is None:  # no C accelerator: the encoder's own path
        return _STATE_ENCODER.encode(state)
    # Arguments as JSONEncoder.iterencode passes them (markers, default, encoder, indent,
    # key_separator, item_separator, sort_keys, skipkeys, allow_nan).
    encode = make({}, str, _ENCODE_ASCII, None, ": ", ", ", True, False, True)
    return "".join(encode(state, 0))


def strategy_state_op(strategy: str, state: object, ts_ns: int) -> Op:
    """The upsert of a strategy's state (anything ``json.dumps`` accepts; Decimal as text)."""
    return (OP_STRATEGY_STATE, (strategy, state_json(state), ts_ns))


def cursor_op(source: str, position: int, ts_ns: int) -> Op:
    """The upsert of how far a replayable source has been consumed (events, not bytes)."""
    return (OP_CURSOR, (source, position, ts_ns))


def _connect(path: Path, *, timeout: float = 5.0) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=OFF")
    return conn


class Store:
    """A SQLite database in WAL mode with a batching background writer (see the module doc).

    ``Store(path)`` creates the file and its tables if needed and checks the schema version;
    :meth:`start` opens a run and starts the writer. Reads (:meth:`positions`,
    :meth:`open_orders`, ...) use their own short connection and see what is committed.
    """

    def __init__(self, path: str | Path, *, interval: float = 0.05) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval}")
        self.path = Path(path)
        self.run_id = 0
        self.failures: list[StoreFailure] = []
        self.committed_items = 0
        self.batches = 0
        self._q: deque[object] = deque()
        self._wake = threading.Event()
        self._interval = interval
        self._thread: threading.Thread | None = None
        self._closed = False
        try:
            if self.path.parent and not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = _connect(self.path)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{self.path}: cannot open the database: {exc}") from exc
        try:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{self.path}: SQLite refused WAL mode (journal_mode={mode})")
            conn.executescript(_SCHEMA)
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            elif row[0] != str(SCHEMA_VERSION):
                raise StoreError(
                    f"{self.path}: schema version {row[0]}, this tradecore reads version "
                    f"{SCHEMA_VERSION}; use a new storage path"
                )
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a usable tradecore database: {exc}") from exc
        finally:
            conn.close()

    # -- life cycle -------------------------------------------------------------------------

    def start(self, *, config_path: str = "", started_ns: int | None = None) -> int:
        """Open a new run (returns its id) and start the writer thread."""
        if self._thread is not None:
            raise StoreError(f"{self.path}: the store is already started")
        ts = time.time_ns() if started_ns is None else started_ns
        with self._read() as conn:
            cur = conn.execute(
                "INSERT INTO runs (started_ns, config_path) VALUES (?, ?)", (ts, config_path)
            )
            assert cur.lastrowid is not None
            self.run_id = int(cur.lastrowid)
        self._thread = threading.Thread(target=self._writer, name="tradecore-store", daemon=True)
        self._thread.start()
        return self.run_id

    def put(self, *ops: Op) -> None:
        """Queue ``ops`` to be committed together (never blocks, never touches the disk)."""
        self._q.append(ops)

    def pending(self) -> int:
        """Items queued and not committed yet (approximate; for metrics)."""
        return len(self._q)

    def flush(self, timeout: float = 1.0) -> bool:
        """Wait until everything put so far is committed; False if ``timeout`` ran out."""
        if self._thread is None or not self._thread.is_alive():
            return not self._q
        marker = _Flush()
        self._q.append(marker)
        self._wake.set()
        return marker.done.wait(timeout)

    def close(self, timeout: float = 1.0, *, summary: object | None = None) -> bool:
        """Commit everything queued, record the end of the run and stop the writer.

        Returns False when the writer did not finish within ``timeout`` seconds (the thread is
        a daemon, so the process can still exit; what it had not committed is then lost).
        """
        if self._closed:
            return True
        self._closed = True
        if self._thread is None:
            return True
        self._q.append(_STOP)
        self._wake.set()
        self._thread.join(timeout)
        done = not self._thread.is_alive()
        if done:
            try:
                with self._read() as conn:
                    conn.execute(
                        "UPDATE runs SET ended_ns = ?, summary = ? WHERE run_id = ?",
                        (
                            time.time_ns(),
                            None if summary is None else json.dumps(summary, default=str),
                            self.run_id,
                        ),
                    )
            except sqlite3.Error as exc:
                log.error("%s: could not record the end of run %d: %s", self.path, self.run_id, exc)
        return done

    # -- the writer thread ------------------------------------------------------------------

    def _writer(self) -> None:
        # A long busy timeout: another process holding a lock delays the batch, never fails it.
        conn = _connect(self.path, timeout=60.0)
        q = self._q
        try:
            stop = False
            while not stop:
                self._wake.wait(self._interval)
                self._wake.clear()
                batch: list[Sequence[Op]] = []
                markers: list[_Flush] = []
                # Everything queued now; items appended meanwhile wait for the next round,
                # except that a stop marker drains the queue to the end.
                n = len(q)
                while n > 0 or (stop and q):
                    item = q.popleft()
                    n -= 1
                    if item is _STOP:
                        stop = True
                    elif isinstance(item, _Flush):
                        markers.append(item)
                    else:
                        batch.append(item)  # type: ignore[arg-type]
                if batch:
                    self._commit(conn, batch)
                for m in markers:
                    m.done.set()
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, batch: list[Sequence[Op]]) -> None:
        try:
            conn.execute("BEGIN")
            _execute_ops(conn, batch)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(conn)
            log.warning(
                "%s: batch of %d items failed (%s); retrying alone", self.path, len(batch), exc
            )
            for item in batch:
                self._commit_alone(conn, item)
        else:
            self.committed_items += len(batch)
            self.batches += 1

    def _commit_alone(self, conn: sqlite3.Connection, item: Sequence[Op]) -> None:
        try:
            conn.execute("BEGIN")
            _execute_ops(conn, (item,))
            conn.execute("COMMIT")
            self.committed_items += 1
        except sqlite3.Error as exc:
            _rollback(conn)
            # Keep the item's good operations: write each of them on its own.
            for op in item:
                try:
                    conn.execute(_STATEMENTS[op[0]], op[1])
                except (sqlite3.Error, KeyError, OverflowError) as op_exc:
                    self.failures.append(StoreFailure(op[0], op[1], str(op_exc)))
                    log.error("%s: cannot store %r: %s", self.path, op, op_exc)
            log.error("%s: an item was split after %s", self.path, exc)

    # -- reads ------------------------------------------------------------------------------

    def _read(self) -> _Closing:
        conn = _connect(self.path)
        conn.row_factory = sqlite3.Row
        return _Closing(conn)

    def positions(self) -> list[PositionRow]:
        """Every stored position, ordered by account and symbol."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT account, symbol, qty, cost_ticklots, realized_ticklots, fees, volume,"
                " fills, ts_ns FROM positions ORDER BY account, symbol"
            ).fetchall()
        return [
            PositionRow(
                r["account"],
                r["symbol"],
                r["qty"],
                Fraction(r["cost_ticklots"]),
                Fraction(r["realized_ticklots"]),
                Decimal(r["fees"]),
                r["volume"],
                r["fills"],
                r["ts_ns"],
            )
            for r in rows
        ]

    def accounts(self) -> list[AccountRow]:
        """Every stored account's cash, ordered by account."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT account, cash, initial_cash, ts_ns FROM accounts ORDER BY account"
            ).fetchall()
        return [
            AccountRow(r["account"], Decimal(r["cash"]), Decimal(r["initial_cash"]), r["ts_ns"])
            for r in rows
        ]

    def orders(self, *, open_only: bool = False) -> list[Order]:
        """Stored orders (rebuilt as :class:`Order`, without their events), by account and id."""
        where = ""
        if open_only:
            statuses = ",".join(f"'{s.value}'" for s in OrderStatus if s.is_open)
            where = f" WHERE status IN ({statuses})"
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_ORDER_COLUMNS} FROM orders{where} ORDER BY account, client_order_id"
            ).fetchall()
        return [_order_from_row(r) for r in rows]

    def open_orders(self) -> list[Order]:
        """Orders that were still open (NEW, ACKNOWLEDGED, PARTIALLY_FILLED) when stored."""
        return self.orders(open_only=True)

    def fills(self) -> list[Fill]:
        """Every stored fill in the order it was stored."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT account, symbol, client_order_id, side, price, qty, liquidity, fee, ts_ns,"
                " fill_id, strategy FROM fills ORDER BY seq"
            ).fetchall()
        return [
            Fill(
                account=r["account"],
                symbol=r["symbol"],
                client_order_id=r["client_order_id"],
                side=Side(r["side"]),
                price=r["price"],
                qty=r["qty"],
                liquidity=Liquidity(r["liquidity"]),
                fee=Decimal(r["fee"]),
                ts_ns=r["ts_ns"],
                fill_id=r["fill_id"],
                strategy=r["strategy"],
            )
            for r in rows
        ]

    def order_events(self) -> list[OrderEvent]:
        """Every stored execution report in the order it was stored."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT kind, account, client_order_id, symbol, side, price, qty, leaves, ts_ns,"
                " event_id, reason, liquidity, fee, venue_order_id FROM order_events ORDER BY seq"
            ).fetchall()
        return [
            OrderEvent(
                kind=OrderEventKind(r["kind"]),
                account=r["account"],
                client_order_id=r["client_order_id"],
                symbol=r["symbol"],
                side=Side(r["side"]),
                price=r["price"],
                qty=r["qty"],
                leaves=r["leaves"],
                ts_ns=r["ts_ns"],
                event_id=r["event_id"],
                reason=r["reason"],
                liquidity=None if r["liquidity"] is None else Liquidity(r["liquidity"]),
                fee=Decimal(r["fee"]),
                venue_order_id=r["venue_order_id"],
            )
            for r in rows
        ]

    def risk_events(self) -> list[RiskEventRow]:
        """Every stored risk event in the order it was stored."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT ts_ns, kind, reason, account, strategy, symbol, detail FROM risk_events"
                " ORDER BY seq"
            ).fetchall()
        return [RiskEventRow(*tuple(r)) for r in rows]

    def risk_baselines(self) -> list[RiskBaselineRow]:
        """Every account's stored loss baselines, ordered by account."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT account, day, day_start_equity, peak_equity, ts_ns FROM risk_baselines"
                " ORDER BY account"
            ).fetchall()
        return [
            RiskBaselineRow(
                r["account"],
                r["day"],
                Decimal(r["day_start_equity"]),
                Decimal(r["peak_equity"]),
                r["ts_ns"],
            )
            for r in rows
        ]

    def strategy_state(self, strategy: str) -> Any:
        """The last stored state of ``strategy`` (decoded JSON), or None."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT state FROM strategy_state WHERE strategy = ?", (strategy,)
            ).fetchone()
        return None if row is None else json.loads(row["state"])

    def cursor(self, source: str) -> int:
        """How many events of ``source`` were consumed by the last committed write (0 if none)."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT position FROM source_cursor WHERE source = ?", (source,)
            ).fetchone()
        return 0 if row is None else int(row["position"])

    def max_client_order_ids(self) -> dict[int, int]:
        """The largest stored client order id of each account (ids continue after a restart)."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT account, MAX(client_order_id) AS m FROM orders GROUP BY account"
            ).fetchall()
        return {int(r["account"]): int(r["m"]) for r in rows}

    def max_event_id(self) -> int:
        """The largest execution-report id stored (0 if none): a new broker starts above it."""
        with self._read() as conn:
            row = conn.execute("SELECT MAX(event_id) FROM order_events").fetchone()
        return int(row[0] or 0)

    def runs(self) -> list[dict[str, Any]]:
        """The runs recorded in this database, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT run_id, started_ns, ended_ns, config_path, summary FROM runs"
                " ORDER BY run_id"
            ).fetchall()
        return [dict(r) for r in rows]


class _Closing:
    """A connection used as a context manager that also closes it (sqlite3's does not)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> sqlite3.Connection:
        return self._conn

    def __exit__(self, *exc: object) -> None:
        self._conn.close()


def _execute_ops(conn: sqlite3.Connection, items: Iterable[Sequence[Op]]) -> None:
    """Execute the ops of ``items`` grouped by statement, each group as multi-row INSERTs in
    put order.

    Each statement writes its own table and no table depends on another (no foreign keys, no
    triggers), and the caller runs the whole batch in one transaction: so keeping the order
    within each table (upserts: the last one wins; appends: rowids in put order) commits the
    same state as executing the operations one by one in put order. A node's item interleaves
    tables (fill, order, position), so grouping is what makes the runs long.
    """
    groups: dict[int, list[tuple[Any, ...]]] = {}
    get = groups.get
    for item in items:
        for op_code, row in item:
            rows = get(op_code)
            if rows is None:
                groups[op_code] = [row]
            else:
                rows.append(row)
    for op_code, rows in groups.items():
        _execute_rows(conn, op_code, rows)


_chain = itertools.chain.from_iterable

#: Most rows in one multi-row INSERT.
_MAX_ROWS = 256


@functools.lru_cache(maxsize=256)
def _multi_row(code: int, rows: int) -> str:
    """``_STATEMENTS[code]`` with ``rows`` value tuples: ``... VALUES (?,?),(?,?),...``."""
    head, _, values = _STATEMENTS[code].rpartition(" VALUES ")
    return f"{head} VALUES {','.join([values] * rows)}"


def _execute_rows(conn: sqlite3.Connection, code: int, rows: list[tuple[Any, ...]]) -> None:
    """Rows of one statement, in order, as few multi-row INSERTs as the variable limit allows.

    Why not ``executemany``: CPython's sqlite3 releases the GIL around every step of a
    statement, i.e. once per row, and a busy trading thread keeps it for the whole switch
    interval (5 ms) each time the writer wants it back: the writer then commits a couple of
    hundred rows a second while the queue grows. One statement per up to 256 rows gives the GIL
    back once per chunk. Rows are inserted in order (SQLite applies a multi-row VALUES row by
    row, ``OR REPLACE`` included), so the result is the same; a failing row fails its statement
    and the caller's transaction, as ``executemany`` did. Chunks have power-of-two sizes, so a
    statement has at most nine shapes (sqlite3 caches the prepared ones).
    """
    n = len(rows)
    if n == 1:
        conn.execute(_STATEMENTS[code], rows[0])
        return
    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    per = max(1, min(_MAX_ROWS, limit // max(1, len(rows[0]))))
    i = 0
    while i < n:
        k = min(per, n - i)
        k = 1 << (k.bit_length() - 1)
        if k == 1:
            conn.execute(_STATEMENTS[code], rows[i])
        else:
            conn.execute(_multi_row(code, k), list(_chain(rows[i : i + k])))
        i += k


def _rollback(conn: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        conn.execute("ROLLBACK")


def _order_from_row(r: sqlite3.Row) -> Order:
    request = OrderRequest(
        account=r["account"],
        client_order_id=r["client_order_id"],
        symbol=r["symbol"],
        side=Side(r["side"]),
        qty=r["request_qty"],
        price=r["request_price"],
        order_type=OrderType(r["order_type"]),
        tif=TimeInForce(r["tif"]),
        post_only=bool(r["post_only"]),
        ts_ns=r["request_ts_ns"],
        strategy=r["strategy"],
        tag=r["tag"],
    )
    return Order(
        request=request,
        status=OrderStatus(r["status"]),
        price=r["price"],
        qty=r["qty"],
        filled_qty=r["filled_qty"],
        leaves=r["leaves"],
        notional_filled=r["notional_filled"],
        venue_order_id=r["venue_order_id"],
        reason=r["reason"],
        created_ns=r["created_ns"],
        updated_ns=r["updated_ns"],
    )
