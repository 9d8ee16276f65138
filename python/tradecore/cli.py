"""The `tradecore` command line (console script `tradecore = tradecore.cli:main`).

Subcommands so far:

* ``replay-lobster``: replay LOBSTER message/orderbook pairs through the order book and check
  the book after every event (exit 0 when there are no mismatches, 1 otherwise);
* ``demo``: the trading node paper-trading the embedded Binance recordings, the two embedded
  LOBSTER replays, then a throughput and latency summary of the core.

Each subcommand is one ``_add_<name>`` function that registers its parser and handler. The
other layers register theirs from their own module (``register(sub)`` in each module named in
``_PLUGINS``): the venue's ``serve``, ``replay``, ``feed`` and ``loadgen``, the trading node's
``trade``, the backtester's ``backtest``. A handler takes ``(args, out)`` and returns the exit
status; it raises ``tradecore.errors.UsageError`` (or ``ConfigError``) for bad input. Bad
input (a missing file, a malformed row) prints one line naming the file and line and exits
with 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from tradecore.errors import UsageError
from tradecore.marketdata.lobster import (
    DEFAULT_CAPACITY,
    LobsterFiles,
    LobsterFormatError,
    LobsterReplay,
    ReplayError,
    ReplayResult,
    embedded_samples,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

Handler = Callable[[argparse.Namespace, TextIO], int]


def _int_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{text!r} must be at least {low}")
        return value

    return parse


def _replay_all(
    pairs: Sequence[LobsterFiles], capacity: int, details: int, out: TextIO
) -> list[ReplayResult]:
    results = []
    for files in pairs:
        result = LobsterReplay.from_files(files, capacity=capacity, max_details=details).run()
        print(result.report(), file=out, flush=True)
        results.append(result)
    return results


def _check_readable(*paths: Path) -> None:
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(2, "no such file", str(path))


def _cmd_replay_lobster(args: argparse.Namespace, out: TextIO) -> int:
    pairs: list[LobsterFiles]
    if args.message is not None or args.orderbook is not None:
        if args.message is None or args.orderbook is None:
            raise _UsageError("--message and --orderbook go together")
        if args.data is not None:
            raise _UsageError("use either --data or --message/--orderbook, not both")
        _check_readable(args.message, args.orderbook)
        pairs = [LobsterFiles(args.message, args.orderbook)]
    elif args.data is not None:
        pairs = LobsterFiles.discover(args.data)
    else:
        pairs = embedded_samples()
    results = _replay_all(pairs, args.capacity, args.details, out)
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


def _add_replay_lobster(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "replay-lobster",
        help="replay LOBSTER files through the order book and check it after every event",
        description=(
            "Replay LOBSTER message/orderbook file pairs (plain or .gz) through OrderBook and "
            "compare our top levels with the orderbook file after every event. Without "
            "options, the samples shipped in the package (AMZN level 1, AAPL level 10) are "
            "used. Exit status: 0 when no mismatch, 1 when any, 2 on bad input."
        ),
    )
    p.add_argument("--message", type=Path, help="a LOBSTER message file")
    p.add_argument("--orderbook", type=Path, help="its orderbook file")
    p.add_argument(
        "--data", type=Path, metavar="DIR", help="replay every *_message_* file pair in DIR"
    )
    p.add_argument(
        "--capacity",
        type=_int_at_least(1),
        default=DEFAULT_CAPACITY,
        help=f"order slots of the book (default {DEFAULT_CAPACITY:,})",
    )
    p.add_argument(
        "--details",
        type=_int_at_least(0),
        default=10,
        metavar="N",
        help="print the first N mismatches (default 10)",
    )
    p.set_defaults(handler=_cmd_replay_lobster)


def _cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from tradecore.node.demo import run_demo

    node_status = run_demo(out)
    print(file=out)
    results = _replay_all(embedded_samples(), DEFAULT_CAPACITY, 10, out)
    print(file=out)
    try:
        from tradecore.telemetry.corebench import core_summary
    except ImportError as exc:
        print(f"core summary unavailable: {exc}", file=out)
    else:
        print(core_summary(), file=out)
    if node_status != EXIT_OK:
        return node_status
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="paper trading on recorded Binance data, the LOBSTER checks, a core summary",
        description=(
            "Run the trading node offline on the Binance recordings shipped in the package "
            "(imbalance strategies, pre-trade risk, the paper broker) and print its summary; "
            "then replay the LOBSTER samples (AMZN 2012-06-21 level 1 and the first 999 AAPL "
            "level-10 events) with their verification lines, and a throughput and latency "
            "summary of the matching core."
        ),
    )
    p.set_defaults(handler=_cmd_demo)


# Modules that add subcommands: each has ``register(sub)``.
_PLUGINS = (
    "tradecore.venue.cli",
    "tradecore.node.cli",
    "tradecore.data.cli",
    "tradecore.backtest.cli",
)


class _UsageError(Exception):
    """A combination of options argparse cannot express; reported like argparse errors."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tradecore",
        description="tradecore: a Rust matching core driven from Python.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_replay_lobster(sub)
    _add_demo(sub)
    for name in _PLUGINS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 check failed, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args, sys.stdout)
    except _UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"tradecore {args.command}: error: {exc}", file=sys.stderr)
    except (LobsterFormatError, ReplayError, UsageError) as exc:
        print(f"tradecore {args.command}: error: {exc}", file=sys.stderr)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename is not None else ""
        what = exc.strerror or str(exc)
        print(f"tradecore {args.command}: error: {where}{what}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"tradecore {args.command}: interrupted", file=sys.stderr)
        return 130
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
