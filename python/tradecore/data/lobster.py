"""LOBSTER message and orderbook files (L3) as columnar tables, streamed in chunks.

Owns :func:`lobster_chunks` and :func:`convert_lobster`. The rows are parsed by the market-data
layer's readers (:func:`tradecore.marketdata.lobster.read_messages` and
:func:`~tradecore.marketdata.lobster.read_orderbook`: plain or ``.gz``, an optional header,
every field checked), so the L3 replay and this converter accept exactly the same files. The
two files are read in lock step: row ``i`` of the ``l3book`` table is the book after message
``i`` and carries that message's ``ts_ns``.

``ts_ns`` is LOBSTER's time (nanoseconds after midnight, exact: the file's decimal seconds are
never turned into a float); the trading day (from the file name, when it follows LOBSTER's
naming) goes into the table metadata as ``date``. Empty levels keep LOBSTER's placeholders
(ask ``9999999999``, bid ``-9999999999``, size 0), so a row round-trips exactly.

Invariants: an error names the file and its line (the reader's
:class:`~tradecore.marketdata.lobster.LobsterFormatError` becomes a
:class:`~tradecore.data.errors.DataFormatError` with the same file and line), files of
different lengths are an error naming the shorter one, and time going backwards is an error
naming the row. Cost: one pass over both files; memory is one chunk of each.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import numpy as np

from tradecore.data.columnar import ColumnarWriter, open_columnar
from tradecore.data.errors import DataFormatError
from tradecore.data.schema import Chunk, kind_named
from tradecore.marketdata.lobster import (
    EMPTY_ASK_PRICE,
    EMPTY_BID_PRICE,
    BookRow,
    LobsterFiles,
    LobsterFormatError,
    Message,
)

__all__ = [
    "columnar_book_rows",
    "columnar_messages",
    "convert_lobster",
    "lobster_chunks",
    "lobster_meta",
]

_NAME: Final = re.compile(r"(?P<ticker>[A-Za-z.]+)_(?P<date>\d{4}-\d{2}-\d{2})_\d+_\d+_message_")


def lobster_meta(files: LobsterFiles) -> dict[str, str]:
    """Metadata for the tables of ``files``: source names, and ticker and date if named so."""
    meta = {"source": files.message.name, "orderbook_source": files.orderbook.name}
    m = _NAME.match(files.message.name)
    if m is not None:
        meta["symbol"] = m["ticker"]
        meta["date"] = m["date"]
    return meta


def lobster_chunks(files: LobsterFiles, chunk_rows: int = 65_536) -> Iterator[tuple[Chunk, Chunk]]:
    """``(l3, l3book)`` chunk pairs of at most ``chunk_rows`` rows, in file order."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    msgs = files.messages()
    rows = files.rows()
    levels = 0
    buf_m: list[tuple[int, int, int, int, int, int]] = []
    buf_b: list[list[int]] = []
    last_ts: int | None = None
    count = 0
    try:
        for msg in msgs:
            row = next(rows, None)
            if row is None:
                raise DataFormatError(
                    files.orderbook,
                    None,
                    f"ends after {count} rows, but the message file goes on (line {msg.line})",
                )
            if levels == 0:
                levels = row.levels
            if last_ts is not None and msg.time_ns < last_ts:
                raise DataFormatError(
                    files.message,
                    msg.line,
                    f"Time {msg.time_ns / 1e9:.9f} s is before the previous row's "
                    f"{last_ts / 1e9:.9f} s (timestamps must not decrease)",
                    "line",
                )
            last_ts = msg.time_ns
            count += 1
            buf_m.append((msg.time_ns, msg.kind, msg.order_id, msg.size, msg.price, msg.direction))
            flat = [msg.time_ns]
            for k in range(levels):
                ap, aq = row.asks[k] if k < len(row.asks) else (EMPTY_ASK_PRICE, 0)
                bp, bq = row.bids[k] if k < len(row.bids) else (EMPTY_BID_PRICE, 0)
                flat += [ap, aq, bp, bq]
            buf_b.append(flat)
            if len(buf_m) == chunk_rows:
                yield _emit(buf_m, buf_b, levels)
                buf_m, buf_b = [], []
        extra = next(rows, None)
        if extra is not None:
            raise DataFormatError(
                files.message,
                None,
                f"ends after {count} rows, but the orderbook file goes on (line {extra.line})",
            )
    except LobsterFormatError as exc:
        raise DataFormatError(exc.source, exc.line, exc.problem, "line") from None
    if buf_m:
        yield _emit(buf_m, buf_b, levels)


def _emit(
    msgs: list[tuple[int, int, int, int, int, int]], books: list[list[int]], levels: int
) -> tuple[Chunk, Chunk]:
    m = np.asarray(msgs, np.int64)
    l3: Chunk = {
        "ts_ns": m[:, 0].copy(),
        "kind": m[:, 1].astype(np.int8),
        "order_id": m[:, 2].copy(),
        "size": m[:, 3].copy(),
        "price": m[:, 4].copy(),
        "direction": m[:, 5].astype(np.int8),
    }
    b = np.asarray(books, np.int64)
    names = kind_named("l3book", levels).names
    book: Chunk = {name: b[:, i].copy() for i, name in enumerate(names)}
    return l3, book


def convert_lobster(
    files: LobsterFiles, out_dir: str | Path, *, chunk_rows: int = 65_536
) -> tuple[Path, Path, int]:
    """Write ``l3.parquet`` and ``l3book.parquet`` under ``out_dir``; returns both and the rows.

    Both files appear only when both are complete (a bad row leaves neither behind).
    """
    out = Path(out_dir)
    meta = lobster_meta(files)
    chunks = lobster_chunks(files, chunk_rows)
    first = next(chunks, None)
    levels = 1 if first is None else (len(first[1]) - 1) // 4
    wm = ColumnarWriter(out / "l3.parquet", "l3", meta=meta)
    wb = ColumnarWriter(out / "l3book.parquet", "l3book", meta=meta, levels=levels)
    try:
        if first is not None:
            wm.write(first[0])
            wb.write(first[1])
        for l3, book in chunks:
            wm.write(l3)
            wb.write(book)
    except BaseException:
        wm.abort()
        wb.abort()
        raise
    return wm.close(), wb.close(), wm.rows


def columnar_messages(path: str | Path, chunk_rows: int = 65_536) -> Iterator[Message]:
    """The messages of an ``l3`` table as :class:`~tradecore.marketdata.lobster.Message`
    values (``line`` = the 1-based row), streamed: what :class:`LobsterReplay` consumes."""
    f = open_columnar(path)
    if f.kind.name != "l3":
        raise DataFormatError(path, None, f"is a {f.kind.name} table, expected l3")
    row = 0
    for c in f.iter_chunks(chunk_rows):
        cols = zip(
            c["ts_ns"].tolist(),
            c["kind"].tolist(),
            c["order_id"].tolist(),
            c["size"].tolist(),
            c["price"].tolist(),
            c["direction"].tolist(),
            strict=True,
        )
        for ts, kind, oid, size, price, direction in cols:
            row += 1
            yield Message(row, ts, kind, oid, size, price, direction)


def columnar_book_rows(path: str | Path, chunk_rows: int = 65_536) -> Iterator[BookRow]:
    """The rows of an ``l3book`` table as :class:`~tradecore.marketdata.lobster.BookRow`
    values (real levels only, like the CSV reader), streamed."""
    f = open_columnar(path)
    if f.kind.name != "l3book":
        raise DataFormatError(path, None, f"is a {f.kind.name} table, expected l3book")
    levels = (len(f.columns) - 1) // 4
    row = 0
    for c in f.iter_chunks(chunk_rows):
        m = np.column_stack([c[name] for name in f.columns[1:]]).tolist()
        for values in m:
            row += 1
            asks = tuple(
                (values[4 * k], values[4 * k + 1]) for k in range(levels) if values[4 * k + 1] != 0
            )
            bids = tuple(
                (values[4 * k + 2], values[4 * k + 3])
                for k in range(levels)
                if values[4 * k + 3] != 0
            )
            yield BookRow(row, levels, asks, bids)
