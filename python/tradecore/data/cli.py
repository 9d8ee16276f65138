"""The ``tradecore data`` subcommands: ``convert``, ``synth`` and ``info``.

* ``tradecore data convert INPUT --out DEST [--from FORMAT] [--kind KIND]``: LOBSTER, Binance
  recordings or CSV into the columnar format (:mod:`tradecore.data.convert`).
* ``tradecore data synth {quotes,l2,l3} --rows N [--seed S] --out DEST``: seeded synthetic data
  written chunk by chunk (memory stays flat whatever ``N`` is).
* ``tradecore data info FILE``: kind, rows, metadata, columns and time range of a table.

Registered by ``register(sub)`` (the CLI's plugin hook). Bad input exits 2 with one line naming
the file and row (:class:`~tradecore.data.errors.DataFormatError` is a ``UsageError``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TextIO

__all__ = ["register"]


def _positive(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _cmd_convert(args: argparse.Namespace, out: TextIO) -> int:
    from tradecore.data.convert import convert

    t0 = time.perf_counter()
    result = convert(args.input, args.out, fmt=args.fmt, kind=args.kind, chunk_rows=args.chunk_rows)
    for path, kind, rows in result.outputs:
        print(f"{path}: {kind}, {rows:,} rows", file=out)
    for note in result.notes:
        print(f"note: {note}", file=out)
    print(f"converted in {time.perf_counter() - t0:.2f} s", file=out)
    return 0


def _cmd_synth(args: argparse.Namespace, out: TextIO) -> int:
    from tradecore.data.columnar import ColumnarWriter
    from tradecore.data.synthetic import synthetic_l2, synthetic_l3, synthetic_quotes

    dest = Path(args.out)
    meta = {"source": f"synthetic {args.what} seed={args.seed} rows={args.rows}"}
    t0 = time.perf_counter()
    if args.what == "l2":
        qpath, tpath = dest / "quotes.parquet", dest / "trades.parquet"
        with (
            ColumnarWriter(qpath, "quotes", meta=meta) as wq,
            ColumnarWriter(tpath, "trades", meta=meta) as wt,
        ):
            for q, t in synthetic_l2(args.rows, args.seed, chunk_rows=args.chunk_rows):
                wq.write(q)
                wt.write(t)
        written = [(qpath, wq.rows), (tpath, wt.rows)]
    else:
        kind = "quotes" if args.what == "quotes" else "l3"
        path = dest if dest.suffix == ".parquet" else dest / f"{kind}.parquet"
        gen = synthetic_quotes if kind == "quotes" else synthetic_l3
        with ColumnarWriter(path, kind, meta=meta) as w:
            for chunk in gen(args.rows, args.seed, chunk_rows=args.chunk_rows):
                w.write(chunk)
        written = [(path, w.rows)]
    for path, rows in written:
        print(f"{path}: {rows:,} rows", file=out)
    print(f"generated in {time.perf_counter() - t0:.2f} s", file=out)
    return 0


def _cmd_info(args: argparse.Namespace, out: TextIO) -> int:
    from tradecore.data.columnar import open_columnar

    f = open_columnar(args.file)
    print(
        f"{f.path}: {f.kind.name} table, {f.rows:,} rows in {f.row_groups} row group(s)", file=out
    )
    for k, v in sorted(f.meta.items()):
        print(f"  {k}: {v}", file=out)
    print(f"  columns: {', '.join(f.columns)}", file=out)
    if f.rows:
        first = last = None
        for c in f.iter_chunks(columns=["ts_ns"]):
            if len(c["ts_ns"]):
                first = int(c["ts_ns"][0]) if first is None else first
                last = int(c["ts_ns"][-1])
        print(f"  ts_ns: {first} .. {last}", file=out)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``tradecore data`` and its subcommands to the CLI."""
    p = sub.add_parser(
        "data",
        help="convert market data to the columnar format, generate synthetic data, inspect",
        description="Market data for backtests: convert, synth, info.",
    )
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    c = dsub.add_parser(
        "convert",
        help="LOBSTER, Binance recordings or CSV into Parquet tables",
        description=(
            "Convert INPUT into columnar tables: a LOBSTER *_message_* file (its orderbook "
            "twin beside it) into DEST/l3.parquet and DEST/l3book.parquet; a Binance recording "
            "(a cryptofeed directory or a .jsonl.gz recording) into DEST/<SYMBOL>/<kind>.parquet; "
            "a CSV with a header into one table of --kind. Exit 2 on bad input, naming the file "
            "and row."
        ),
    )
    c.add_argument("input", type=Path, help="the file or directory to convert")
    c.add_argument("--out", type=Path, required=True, metavar="DEST", help="output directory")
    c.add_argument("--from", dest="fmt", choices=("lobster", "binance", "csv"), help="input format")
    c.add_argument("--kind", help="table kind of a CSV input (quotes, trades, depth, ...)")
    c.add_argument("--chunk-rows", type=_positive, default=65_536, help="rows per chunk")
    c.set_defaults(handler=_cmd_convert)

    s = dsub.add_parser(
        "synth",
        help="seeded synthetic quotes, L2 (quotes + trades) or L3 order flow",
        description="Generate WHAT with ROWS rows, written chunk by chunk.",
    )
    s.add_argument("what", choices=("quotes", "l2", "l3"))
    s.add_argument("--rows", type=_positive, required=True)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--out", type=Path, required=True, metavar="DEST")
    s.add_argument("--chunk-rows", type=_positive, default=262_144, help="rows per chunk")
    s.set_defaults(handler=_cmd_synth)

    i = dsub.add_parser("info", help="describe a columnar table")
    i.add_argument("file", type=Path)
    i.set_defaults(handler=_cmd_info)
