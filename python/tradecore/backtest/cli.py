"""The backtester's subcommand: ``tradecore backtest --config FILE``.

Runs the event-driven backtest a TOML file describes (:mod:`tradecore.backtest.config`; one
example per built-in strategy in ``examples/backtest_*.toml``), prints the summary with the
hash of the fills, and writes the results (per strategy: equity, fills, orders and statistics
as Parquet, an offline HTML report and an equity PNG; ``summary.json``) to ``backtest.out`` or
``--out``. Exit status: 0 ok, 1 the run failed (a strategy raised, data out of order: the error
names the strategy and event or the file and row; nothing is written), 2 bad configuration or
data format.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TextIO

__all__ = ["register"]


def _cmd_backtest(args: argparse.Namespace, out: TextIO) -> int:
    from tradecore.backtest.config import load_backtest_config
    from tradecore.backtest.engine import BacktestError, run_config

    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO if args.verbose else logging.WARNING,
            format="%(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
    loaded = load_backtest_config(args.config)
    try:
        result = run_config(loaded, chunk_rows=args.chunk_rows)
    except BacktestError as exc:
        print(f"tradecore backtest: run failed: {exc}", file=sys.stderr)
        return 1
    print(result.summary(), file=out, flush=True)
    print(f"fills hash: {result.fills_hash}", file=out)
    target = args.out if args.out is not None else loaded.out_dir
    if target is not None and not args.no_write:
        report = loaded.config.backtest.report and not args.no_report
        files = result.write(target, report=report)
        print(f"results: {target} ({len(files)} files)", file=out)
    return 0


def _rows(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the backtester's subcommands to the ``tradecore`` parser."""
    p = sub.add_parser(
        "backtest",
        help="run an event-driven backtest (the node's code on a simulated clock)",
        description=(
            "Run the backtest configured by FILE (examples/backtest_*.toml): the trading "
            "node's strategies, risk, order manager, paper broker (L2) or the real matching "
            "book (L3, LOBSTER) and portfolio over recorded or synthetic data on a simulated "
            "clock. Prints a summary and the hash of the fills; writes Parquet tables, "
            "statistics, an HTML report and a PNG. Exit status: 0 ok, 1 run failed, 2 bad "
            "configuration or data."
        ),
    )
    p.add_argument("--config", type=Path, required=True, metavar="FILE", help="backtest TOML")
    p.add_argument("--out", type=Path, default=None, metavar="DIR", help="override backtest.out")
    p.add_argument("--no-report", action="store_true", help="tables only, no HTML/PNG")
    p.add_argument("--no-write", action="store_true", help="print the summary, write nothing")
    p.add_argument(
        "--chunk-rows", type=_rows, default=None, metavar="N", help="rows read per chunk"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    p.set_defaults(handler=_cmd_backtest)
