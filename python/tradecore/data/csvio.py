"""CSV tables (plain or ``.gz``) with a header row, read in chunks into a table kind.

Owns :func:`read_csv_chunks`: the fast path is Arrow's streaming CSV reader with the kind's
column types; each batch then goes through :func:`~tradecore.data.schema.check_chunk` (sort
order across the whole file, value ranges). The header must name exactly the kind's columns,
in any order: an unknown or missing column is an error naming the file and the column.

When Arrow rejects the text (a row with too few fields, as in a truncated file; a value that
is not an integer; a gzip stream cut short), the file is scanned again line by line in Python
to find the first bad row, so the error names the file and the 1-based data row (the header is
row 0). This scan runs only on the error path.

Cost: Arrow parses in C++ (hundreds of MB/s); memory is one block of ``block_bytes`` plus the
chunk.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from tradecore.data.errors import DataFormatError
from tradecore.data.schema import Chunk, Kind, check_chunk

__all__ = ["read_csv_chunks"]


def _header(path: Path) -> list[str]:
    try:
        opener: Any = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", newline="") as f:
            line = f.readline()
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise DataFormatError(path, None, f"cannot read the header: {exc}") from None
    if not line.strip():
        raise DataFormatError(path, None, "empty file (a header row is required)")
    return [c.strip() for c in line.rstrip("\r\n").split(",")]


def _locate(path: Path, kind: Kind, header: list[str]) -> DataFormatError:
    """Scan the file in Python for the first row Arrow could not take."""
    row = 0
    try:
        opener: Any = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", newline="") as f:
            f.readline()
            for row, line in enumerate(f, 1):
                text = line.rstrip("\r\n")
                if not text:
                    continue
                fields = text.split(",")
                if len(fields) != len(header):
                    return DataFormatError(
                        path,
                        row,
                        f"expected {len(header)} fields ({', '.join(header)}), found "
                        f"{len(fields)}: {text[:80]!r}"
                        + (" (truncated file?)" if not line.endswith("\n") else ""),
                    )
                for name, value in zip(header, fields, strict=True):
                    try:
                        int(value)
                    except ValueError:
                        return DataFormatError(
                            path, row, f"column {name!r}: {value!r} is not an integer"
                        )
    except (OSError, EOFError, zlib.error) as exc:
        return DataFormatError(path, row + 1, f"the file ends or breaks here: {exc}")
    except UnicodeDecodeError as exc:
        return DataFormatError(path, row + 1, f"not UTF-8 text: {exc.reason}")
    return DataFormatError(path, None, "Arrow could not parse the file, no bad row found")


def read_csv_chunks(path: str | Path, kind: Kind, *, block_bytes: int = 8 << 20) -> Iterator[Chunk]:
    """The rows of a CSV file as validated chunks of ``kind`` (about ``block_bytes`` each)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(2, "no such file", str(p))
    header = _header(p)
    names = kind.names
    unknown = [c for c in header if c not in names]
    if unknown:
        raise DataFormatError(
            p,
            None,
            f"unknown column(s) {', '.join(map(repr, unknown))} in the header for a {kind.name} "
            f"table (expected {', '.join(names)})",
        )
    missing = [c for c in names if c not in header]
    if missing:
        raise DataFormatError(p, None, f"missing column(s) {', '.join(map(repr, missing))}")
    if len(set(header)) != len(header):
        raise DataFormatError(p, None, "a column name appears twice in the header")
    dtypes = dict(kind.columns)
    types = {name: pa.from_numpy_dtype(dtypes[name]) for name in header}
    try:
        stream = pa.input_stream(str(p), compression="detect")
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(block_size=block_bytes),
            convert_options=pacsv.ConvertOptions(column_types=types),
        )
    except (pa.ArrowException, OSError, EOFError):
        raise _locate(p, kind, header) from None
    first = 1
    last: int | None = None
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowException, OSError, EOFError):
            raise _locate(p, kind, header) from None
        raw = {
            name: batch.column(i).to_numpy(zero_copy_only=False)
            for i, name in enumerate(batch.schema.names)
        }
        for name, arr in raw.items():
            if arr.dtype == object:
                raise _locate(p, kind, header)
            raw[name] = np.asarray(arr)
        chunk = check_chunk(kind, raw, p, first, last)
        n = batch.num_rows
        if n:
            last = int(chunk[kind.sort_key][-1])
        first += n
        yield {c: chunk[c] for c in names}
