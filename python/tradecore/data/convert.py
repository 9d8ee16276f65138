"""Conversion of every supported input into the columnar format (``tradecore data convert``).

Owns :func:`detect_format` and :func:`convert`: a LOBSTER message file (its orderbook twin
beside it) becomes ``l3.parquet`` + ``l3book.parquet``; a Binance recording (a cryptofeed
directory or a ``*.jsonl.gz`` of the node's recorder) becomes ``<SYMBOL>/<kind>.parquet`` per
symbol (kinds ``depth``, ``snapshot``, ``trades``, ``quotes``; empty tables are written too, so
every symbol has all four) with ``tick_size``/``lot_size`` in the metadata; a CSV file with a
header becomes one table of the ``kind`` given.

Invariants: outputs are written through :class:`~tradecore.data.columnar.ColumnarWriter`, so a
failed conversion leaves no file under a final name. Cost: streaming for LOBSTER and CSV (one
chunk in memory); Binance recordings are loaded whole (they are small).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tradecore.data.binance import load_binance
from tradecore.data.columnar import ColumnarWriter, write_table
from tradecore.data.csvio import read_csv_chunks
from tradecore.data.errors import DataFormatError
from tradecore.data.lobster import convert_lobster
from tradecore.data.schema import kind_named
from tradecore.errors import UsageError
from tradecore.marketdata.lobster import LobsterFiles

__all__ = ["FORMATS", "Converted", "convert", "detect_format"]

FORMATS = ("lobster", "binance", "csv")


@dataclass
class Converted:
    """What a conversion wrote: ``(path, kind, rows)`` per table, and notes for the user."""

    outputs: list[tuple[Path, str, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def detect_format(path: Path) -> str:
    """``lobster``, ``binance`` or ``csv`` from the input's name and shape."""
    name = path.name
    if path.is_dir():
        if (path / "BINANCE.ws.1.0").is_file():
            return "binance"
        raise UsageError(f"{path}: a directory, but not a cryptofeed Binance recording")
    if name.endswith(".jsonl.gz"):
        return "binance"
    if "_message_" in name and name.endswith((".csv", ".csv.gz")):
        return "lobster"
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    raise UsageError(
        f"{path}: cannot tell the format from the name; pass --from ({', '.join(FORMATS)})"
    )


def convert(
    src: str | Path,
    out: str | Path,
    *,
    fmt: str | None = None,
    kind: str | None = None,
    chunk_rows: int = 65_536,
) -> Converted:
    """Convert ``src`` into columnar tables under ``out`` (a directory; for CSV, a file path
    ending in ``.parquet`` or a directory that gets ``<kind>.parquet``)."""
    path = Path(src)
    if not path.exists():
        raise FileNotFoundError(2, "no such file or directory", str(path))
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise UsageError(f"unknown input format {fmt!r} (known: {', '.join(FORMATS)})")
    dest = Path(out)
    result = Converted()
    if fmt == "lobster":
        twin = path.with_name(path.name.replace("_message_", "_orderbook_", 1))
        if twin == path or not twin.is_file():
            raise DataFormatError(path, None, f"no orderbook file {twin.name} beside it")
        l3, book, rows = convert_lobster(LobsterFiles(path, twin), dest, chunk_rows=chunk_rows)
        result.outputs += [(l3, "l3", rows), (book, "l3book", rows)]
    elif fmt == "binance":
        tables = load_binance(path)
        for sym in tables.symbols():
            inst = tables.instruments[sym]
            meta = {
                "symbol": sym,
                "tick_size": str(inst.tick_size),
                "lot_size": str(inst.lot_size),
                "source": str(path),
            }
            for k, chunk in tables.tables[sym].items():
                target = dest / sym / f"{k}.parquet"
                rows = write_table(target, k, [chunk], meta=meta)
                result.outputs.append((target, k, rows))
        if tables.ignored:
            result.notes.append(f"{tables.ignored} message(s) of other streams (klines) skipped")
        if tables.off_grid:
            result.notes.append(
                f"{tables.off_grid} level(s) or message(s) off the instrument grid left out "
                "(as the node's book sync does)"
            )
    else:
        if kind is None:
            raise UsageError("a CSV input needs --kind (one of the table kinds)")
        try:
            table_kind = kind_named(kind)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if table_kind.name == "l3book":
            raise UsageError("l3book tables come from LOBSTER files; convert the message file")
        target = dest if dest.suffix == ".parquet" else dest / f"{table_kind.name}.parquet"
        with ColumnarWriter(target, table_kind, meta={"source": str(path)}) as w:
            for chunk in read_csv_chunks(path, table_kind):
                w.write(chunk)
        result.outputs.append((target, table_kind.name, w.rows))
    return result
