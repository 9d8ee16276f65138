"""The table kinds of :mod:`tradecore.data`: their columns, dtypes and sort key.

Owns the vocabulary every loader, generator and the columnar format share. A *chunk* is a
``dict`` of equal-length numpy arrays, one per column; a table is a sequence of chunks in
timestamp order. All values are integers (prices in ticks, quantities in lots, times in ns
since the epoch), never floats:

* ``quotes``: best bid/offer updates (Binance bookTicker, synthetic L2 quotes).
* ``trades``: trade prints (Binance aggTrade, synthetic trades); ``aggressor`` +1 buy, -1 sell.
* ``depth``: L2 depth diffs in long form, one row per level change: a message's levels share
  ``ts_ns``/``first_id``/``last_id``; ``side`` +1 bid, -1 ask; ``qty`` 0 removes the level.
* ``snapshot``: L2 depth snapshots in long form, one row per level.
* ``l3``: LOBSTER-style messages (``kind`` 1 add, 2 partial cancel, 3 delete, 4 execution, 5
  hidden execution, 6 cross, 7 halt; ``direction`` +1 buy, -1 sell).
* ``l3book``: LOBSTER orderbook rows, ``ask_px_k, ask_qty_k, bid_px_k, bid_qty_k`` for
  ``k = 1..levels`` (the ``levels`` come from the file).

``ts_ns`` is the sort key of every kind: the time the event enters a replay (receive time for
recordings, event time for LOBSTER and synthetic data). It never decreases within a table.

Invariants: :func:`check_chunk` is the one validation every writer and reader runs; it names
the source and the 1-based row of the first bad value. Cost: one pass over each column per chunk
(a dtype check, one ``np.diff`` on ``ts_ns``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from tradecore.data.errors import DataFormatError

__all__ = [
    "KINDS",
    "Chunk",
    "Kind",
    "check_chunk",
    "chunk_rows",
    "concat_chunks",
    "kind_named",
    "l3book_columns",
]

Chunk = dict[str, npt.NDArray[np.integer]]

I64: Final = np.dtype(np.int64)
I8: Final = np.dtype(np.int8)


@dataclass(frozen=True)
class Kind:
    """One table kind: its name, its ``(column, dtype)`` list and a one-line description."""

    name: str
    columns: tuple[tuple[str, np.dtype], ...]
    description: str
    sort_key: str = "ts_ns"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)

    def with_levels(self, levels: int) -> Kind:
        """The ``l3book`` kind for ``levels`` levels (other kinds are returned unchanged)."""
        if self.name != "l3book":
            return self
        if levels < 1:
            raise ValueError(f"l3book needs at least 1 level, got {levels}")
        return Kind(self.name, l3book_columns(levels), self.description)


def l3book_columns(levels: int) -> tuple[tuple[str, np.dtype], ...]:
    """``ts_ns`` then ``ask_px_k, ask_qty_k, bid_px_k, bid_qty_k`` for ``k = 1..levels``."""
    cols: list[tuple[str, np.dtype]] = [("ts_ns", I64)]
    for k in range(1, levels + 1):
        cols += [(f"ask_px_{k}", I64), (f"ask_qty_{k}", I64)]
        cols += [(f"bid_px_{k}", I64), (f"bid_qty_{k}", I64)]
    return tuple(cols)


KINDS: Final[Mapping[str, Kind]] = {
    k.name: k
    for k in (
        Kind(
            "quotes",
            (
                ("ts_ns", I64),
                ("event_ns", I64),
                ("update_id", I64),
                ("bid_px", I64),
                ("bid_qty", I64),
                ("ask_px", I64),
                ("ask_qty", I64),
            ),
            "best bid and offer updates",
        ),
        Kind(
            "trades",
            (
                ("ts_ns", I64),
                ("event_ns", I64),
                ("trade_id", I64),
                ("price", I64),
                ("qty", I64),
                ("aggressor", I8),
            ),
            "trade prints (aggressor +1 buy, -1 sell)",
        ),
        Kind(
            "depth",
            (
                ("ts_ns", I64),
                ("event_ns", I64),
                ("first_id", I64),
                ("last_id", I64),
                ("side", I8),
                ("price", I64),
                ("qty", I64),
            ),
            "L2 depth diffs, one row per level change (side +1 bid, -1 ask; qty 0 removes)",
        ),
        Kind(
            "snapshot",
            (
                ("ts_ns", I64),
                ("last_update_id", I64),
                ("side", I8),
                ("price", I64),
                ("qty", I64),
            ),
            "L2 depth snapshots, one row per level",
        ),
        Kind(
            "l3",
            (
                ("ts_ns", I64),
                ("kind", I8),
                ("order_id", I64),
                ("size", I64),
                ("price", I64),
                ("direction", I8),
            ),
            "LOBSTER-style L3 messages",
        ),
        Kind("l3book", l3book_columns(1), "LOBSTER orderbook rows (levels from the file)"),
    )
}


def kind_named(name: str, levels: int | None = None) -> Kind:
    """The kind called ``name`` (``levels`` for ``l3book``); ``ValueError`` if unknown."""
    try:
        kind = KINDS[name]
    except KeyError:
        raise ValueError(f"unknown table kind {name!r} (known: {', '.join(KINDS)})") from None
    return kind.with_levels(levels) if levels is not None else kind


def chunk_rows(chunk: Mapping[str, np.ndarray]) -> int:
    """Rows of a chunk (0 for an empty mapping)."""
    for arr in chunk.values():
        return len(arr)
    return 0


def concat_chunks(kind: Kind, chunks: Sequence[Mapping[str, np.ndarray]]) -> Chunk:
    """One chunk from many (an empty table when ``chunks`` is empty)."""
    out: Chunk = {}
    for name, dtype in kind.columns:
        parts = [np.asarray(c[name]) for c in chunks]
        out[name] = np.concatenate(parts).astype(dtype, copy=False) if parts else np.empty(0, dtype)
    return out


def check_chunk(
    kind: Kind,
    chunk: Mapping[str, object],
    source: object,
    first_row: int,
    last_ts: int | None,
) -> Chunk:
    """Validate one chunk of ``kind`` read from ``source`` and return it with exact dtypes.

    ``first_row`` is the 1-based row number of the chunk's first row in the whole table, and
    ``last_ts`` the sort key of the row before it (``None`` at the start). Raises
    :class:`DataFormatError` for an unknown or missing column, columns of unequal length,
    non-integer values, values that do not fit the column's dtype, and a sort key that
    decreases (naming the first row where it does).
    """
    names = kind.names
    unknown = [c for c in chunk if c not in names]
    if unknown:
        raise DataFormatError(
            source,
            None,
            f"unknown column(s) {', '.join(map(repr, unknown))} for a {kind.name} table "
            f"(expected {', '.join(names)})",
        )
    missing = [c for c in names if c not in chunk]
    if missing:
        raise DataFormatError(
            source, None, f"missing column(s) {', '.join(map(repr, missing))} ({kind.name})"
        )
    out: Chunk = {}
    n: int | None = None
    for name, dtype in kind.columns:
        arr = np.asarray(chunk[name])
        if arr.ndim != 1:
            raise DataFormatError(source, None, f"column {name!r} is not one-dimensional")
        if n is None:
            n = len(arr)
        elif len(arr) != n:
            raise DataFormatError(
                source,
                first_row + min(n, len(arr)),
                f"column {name!r} has {len(arr)} values where {names[0]!r} has {n} "
                "(truncated input?)",
            )
        if arr.dtype != dtype:
            if arr.dtype.kind not in "iub":
                raise DataFormatError(
                    source, None, f"column {name!r} has dtype {arr.dtype}, expected integers"
                )
            info = np.iinfo(dtype)
            if len(arr):
                lo, hi = int(arr.min()), int(arr.max())
                if lo < info.min or hi > info.max:
                    bad = int(np.argmax((arr < info.min) | (arr > info.max)))
                    raise DataFormatError(
                        source,
                        first_row + bad,
                        f"column {name!r} value {int(arr[bad])} does not fit {dtype}",
                    )
            arr = arr.astype(dtype)
        out[name] = arr
    key = out[kind.sort_key]
    if len(key):
        if last_ts is not None and int(key[0]) < last_ts:
            raise DataFormatError(
                source,
                first_row,
                f"{kind.sort_key} {int(key[0])} is before the previous row's {last_ts} "
                "(timestamps must not decrease)",
            )
        back = np.flatnonzero(key[1:] < key[:-1])
        if len(back):
            i = int(back[0])
            raise DataFormatError(
                source,
                first_row + i + 1,
                f"{kind.sort_key} {int(key[i + 1])} is before the previous row's {int(key[i])} "
                "(timestamps must not decrease)",
            )
    return out
