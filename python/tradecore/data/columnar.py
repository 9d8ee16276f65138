"""The columnar on-disk format: one Parquet file per table, written and read in chunks.

Owns :class:`ColumnarWriter` (chunks in, one Parquet row group per chunk out) and
:class:`ColumnarFile` (a validated file; chunks out). The file's schema metadata carries
``tradecore.kind`` (a kind of :mod:`tradecore.data.schema`), ``tradecore.version``, and any
string metadata the writer was given (``symbol``, ``tick_size``, ``lot_size``, ``source``...).

Invariants:

* A file is complete or absent: the writer writes ``.<name>.partial`` beside the target and
  renames it over the target only on a clean :meth:`ColumnarWriter.close`; an error (bad chunk,
  exception in the ``with`` block) deletes the partial file. No half-written table ever
  appears under the final name.
* Every chunk written and every chunk read goes through :func:`~tradecore.data.schema.check_chunk`:
  the columns are exactly the kind's, integers of the kind's dtypes, and ``ts_ns`` never
  decreases across the whole table. Errors name the file and the 1-based row.
* A truncated or corrupt file (no Parquet footer, a bad page) raises
  :class:`~tradecore.data.errors.DataFormatError` naming the file (and the row group's first
  row when the footer is intact but a page is not).

Cost: reading streams one row group (or ``rows`` rows) at a time with ``iter_batches``, so
memory is bounded by the chunk size, not the file size; columns are zero-copy numpy views of
Arrow buffers where Arrow allows it. Compression is zstd by default.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tradecore.data.errors import DataFormatError
from tradecore.data.schema import Chunk, Kind, check_chunk, chunk_rows, concat_chunks, kind_named

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "FORMAT_VERSION",
    "ColumnarFile",
    "ColumnarWriter",
    "open_columnar",
    "write_table",
]

FORMAT_VERSION: Final = "1"
DEFAULT_CHUNK_ROWS: Final = 262_144
_KIND_KEY: Final = b"tradecore.kind"
_VERSION_KEY: Final = b"tradecore.version"
_LEVELS_KEY: Final = b"tradecore.levels"


def _arrow_schema(kind: Kind, meta: Mapping[str, str]) -> Any:
    fields = [
        pa.field(name, pa.from_numpy_dtype(dtype), nullable=False) for name, dtype in kind.columns
    ]
    md = {k.encode(): str(v).encode() for k, v in meta.items()}
    md[_KIND_KEY] = kind.name.encode()
    md[_VERSION_KEY] = FORMAT_VERSION.encode()
    if kind.name == "l3book":
        md[_LEVELS_KEY] = str((len(kind.columns) - 1) // 4).encode()
    return pa.schema(fields, metadata=md)


class ColumnarWriter:
    """Writes one table of ``kind`` to ``path`` chunk by chunk (use as a context manager).

    ``meta`` is stored in the file (string values). ``levels`` is required for ``l3book``.
    """

    def __init__(
        self,
        path: str | Path,
        kind: str | Kind,
        *,
        meta: Mapping[str, object] | None = None,
        levels: int | None = None,
        compression: str = "zstd",
    ) -> None:
        self.path = Path(path)
        if isinstance(kind, str):
            if kind == "l3book" and levels is None:
                raise ValueError("an l3book table needs levels=")
            kind = kind_named(kind, levels)
        self.kind = kind
        self.meta = {k: str(v) for k, v in (meta or {}).items()}
        self._partial = self.path.with_name(f".{self.path.name}.partial")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._schema = _arrow_schema(kind, self.meta)
        self._writer: Any = pq.ParquetWriter(
            str(self._partial), self._schema, compression=compression
        )
        self.rows = 0
        self._last_ts: int | None = None
        self._closed = False

    def write(self, chunk: Mapping[str, object]) -> None:
        """Validate ``chunk`` (see :func:`check_chunk`) and append it as one row group."""
        if self._closed:
            raise RuntimeError(f"{self.path}: writer is closed")
        try:
            checked = check_chunk(self.kind, chunk, self.path, self.rows + 1, self._last_ts)
        except DataFormatError:
            self.abort()
            raise
        n = chunk_rows(checked)
        if n == 0:
            return
        table = pa.Table.from_arrays(
            [pa.array(checked[name]) for name in self.kind.names], schema=self._schema
        )
        self._writer.write_table(table, row_group_size=n)
        self.rows += n
        self._last_ts = int(checked[self.kind.sort_key][-1])

    def close(self) -> Path:
        """Finish the file and move it to its final name; returns the path."""
        if not self._closed:
            self._closed = True
            self._writer.close()
            os.replace(self._partial, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the partial file (the final name is left untouched)."""
        if not self._closed:
            self._closed = True
            with contextlib.suppress(Exception):
                self._writer.close()
            with contextlib.suppress(FileNotFoundError):
                self._partial.unlink()

    def __enter__(self) -> ColumnarWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_table(
    path: str | Path,
    kind: str | Kind,
    chunks: Iterable[Mapping[str, object]],
    *,
    meta: Mapping[str, object] | None = None,
    levels: int | None = None,
) -> int:
    """Write every chunk of ``chunks`` to ``path`` as one table; returns the row count."""
    with ColumnarWriter(path, kind, meta=meta, levels=levels) as w:
        for chunk in chunks:
            w.write(chunk)
        return w.rows


class ColumnarFile:
    """A validated columnar table on disk: its kind, metadata and row count; chunked reads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(2, "no such file", str(self.path))
        try:
            self._pf: Any = pq.ParquetFile(str(self.path), pre_buffer=False)
        except (pa.ArrowException, OSError) as exc:
            raise DataFormatError(
                self.path, None, f"not a readable Parquet file (truncated or corrupt?): {exc}"
            ) from None
        schema = self._pf.schema_arrow
        md = schema.metadata or {}
        name = md.get(_KIND_KEY)
        if name is None:
            raise DataFormatError(
                self.path, None, "no tradecore.kind in the metadata (not written by tradecore)"
            )
        levels = int(md.get(_LEVELS_KEY, b"0")) or None
        try:
            self.kind = kind_named(name.decode(), levels)
        except ValueError as exc:
            raise DataFormatError(self.path, None, str(exc)) from None
        version = md.get(_VERSION_KEY, b"?").decode()
        if version != FORMAT_VERSION:
            raise DataFormatError(
                self.path, None, f"format version {version}, this reader knows {FORMAT_VERSION}"
            )
        self.meta = {
            k.decode(): v.decode()
            for k, v in md.items()
            if not k.startswith(b"tradecore.") and k != b"ARROW:schema"
        }
        # Column check up front, on the schema alone (no data read).
        empty = {f.name: np.empty(0, f.type.to_pandas_dtype()) for f in schema}
        check_chunk(self.kind, empty, self.path, 1, None)
        self.rows: int = self._pf.metadata.num_rows
        self.row_groups: int = self._pf.metadata.num_row_groups

    @property
    def columns(self) -> tuple[str, ...]:
        return self.kind.names

    def iter_chunks(
        self, rows: int = DEFAULT_CHUNK_ROWS, columns: Sequence[str] | None = None
    ) -> Iterator[Chunk]:
        """The table in chunks of at most ``rows`` rows, validated as they are read.

        With ``columns``, only those (the sort key is always read, for the order check).
        """
        if rows < 1:
            raise ValueError(f"rows must be >= 1, got {rows}")
        wanted = list(self.kind.names) if columns is None else list(columns)
        for c in wanted:
            if c not in self.kind.names:
                raise DataFormatError(
                    self.path, None, f"no column {c!r} in this {self.kind.name} table"
                )
        key = self.kind.sort_key
        read = wanted if key in wanted else [key, *wanted]
        sub = Kind(self.kind.name, tuple(c for c in self.kind.columns if c[0] in read), "", key)
        first = 1
        last: int | None = None
        batches = self._pf.iter_batches(batch_size=rows, columns=read, use_threads=False)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except (pa.ArrowException, OSError) as exc:
                raise DataFormatError(
                    self.path, first, f"cannot read the data from here (corrupt file?): {exc}"
                ) from None
            raw = {
                name: batch.column(i).to_numpy(zero_copy_only=False)
                for i, name in enumerate(batch.schema.names)
            }
            chunk = check_chunk(sub, raw, self.path, first, last)
            n = batch.num_rows
            if n:
                last = int(chunk[key][-1])
            first += n
            yield {c: chunk[c] for c in wanted}

    def read(self, columns: Sequence[str] | None = None) -> Chunk:
        """The whole table as one chunk (for tables that fit in memory)."""
        wanted = list(self.kind.names) if columns is None else list(columns)
        sub = Kind(self.kind.name, tuple(c for c in self.kind.columns if c[0] in wanted), "")
        chunks = list(self.iter_chunks(columns=wanted))
        return concat_chunks(sub, chunks)

    def to_pandas(self, columns: Sequence[str] | None = None) -> Any:
        """The whole table as a ``pandas.DataFrame``."""
        import pandas as pd

        return pd.DataFrame(self.read(columns))


def open_columnar(path: str | Path) -> ColumnarFile:
    """Open and validate a columnar table (see :class:`ColumnarFile`)."""
    return ColumnarFile(path)
