"""The node's subcommand: ``tradecore trade``.

``tradecore trade --config FILE [--live] [--speed X] [--max-events N]`` runs the node until the
data ends (the recorded default), N events were processed, or SIGINT/SIGTERM; it prints the
summary and exits 0. A wrong config field exits 2 with one line naming the file and the field.

Control of a running node (through its HTTP port, ``[metrics]`` in the same config file):
``--kill [--reason TEXT] [--account N]`` trips the kill switch, ``--reset`` re-arms it,
``--status`` prints the kill-switch state and ``--summary`` the running node's summary. These
exit 0 on success, 1 when the node does not answer. ``kill -USR1 <pid>`` trips the kill switch
too, ``kill -USR2 <pid>`` prints the summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TextIO

__all__ = ["register"]


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0 (0 = as fast as possible)")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _control(args: argparse.Namespace, out: TextIO) -> int:
    import httpx

    from tradecore.node.config import load_config

    loaded = load_config(args.config, live=True, check_layers=False)
    m = loaded.config.metrics
    if not m.enabled:
        print(
            f"tradecore trade: {loaded.path}: metrics.enabled is false: the node has no control "
            "port; use kill -USR1 <pid>",
            file=sys.stderr,
        )
        return 1
    host = f"[{m.host}]" if ":" in m.host else m.host
    base = f"http://{host}:{m.port}"
    params: dict[str, str] = {}
    if args.kill:
        method, path = "POST", "/kill"
        params["reason"] = args.reason
    elif args.reset:
        method, path = "POST", "/reset"
    elif args.summary:
        method, path = "GET", "/summary"
    else:
        method, path = "GET", "/kill"
    if args.account is not None:
        params["account"] = str(args.account)
    try:
        resp = httpx.request(method, base + path, params=params, timeout=5.0)
    except httpx.HTTPError as exc:
        print(f"tradecore trade: no node answers on {base}: {exc}", file=sys.stderr)
        return 1
    try:
        body = resp.json()
    except ValueError:
        body = {"error": resp.text}
    if resp.status_code != 200:
        print(f"tradecore trade: {base}{path}: HTTP {resp.status_code}: {body}", file=sys.stderr)
        return 1
    print(json.dumps(body, indent=2, sort_keys=True), file=out)
    return 0


def _cmd_trade(args: argparse.Namespace, out: TextIO) -> int:
    if args.kill or args.reset or args.summary or args.status:
        return _control(args, out)
    from tradecore.node.config import load_config
    from tradecore.node.node import Node

    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO if args.verbose else logging.WARNING,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
    loaded = load_config(args.config, live=args.live)
    node = Node(
        loaded,
        live=args.live,
        speed=args.speed,
        max_events=args.max_events,
        metrics_port=args.metrics_port,
        out=out,
        install_signals=True,
    )
    summary = node.run()
    print(summary.format(), file=out, flush=True)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the node's subcommands to the ``tradecore`` parser."""
    p = sub.add_parser(
        "trade",
        help="run the trading node (recorded Binance data by default; --live for Binance)",
        description=(
            "Run the trading node configured by FILE (see config/node.example.toml): market "
            "data -> book -> strategies -> risk -> paper broker -> SQLite + /metrics. By "
            "default it replays recorded Binance traffic offline and prints a summary at the "
            "end. With --kill/--reset/--status/--summary it talks to a node already running "
            "with the same FILE instead. Exit status: 0 ok, 1 control request failed, 2 bad "
            "configuration."
        ),
    )
    p.add_argument("--config", type=Path, required=True, metavar="FILE", help="node TOML file")
    p.add_argument(
        "--live", action="store_true", help="connect to Binance itself (never used in tests)"
    )
    p.add_argument(
        "--speed",
        type=_positive_float,
        default=None,
        metavar="X",
        help="replay at X times the recorded pace (0 = as fast as possible; default: config)",
    )
    p.add_argument(
        "--max-events",
        type=_count,
        default=None,
        metavar="N",
        help="stop after N market-data events (default: config, else all)",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="override [metrics] port (0 = any free port)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--kill", action="store_true", help="trip the kill switch of a running node")
    g.add_argument("--reset", action="store_true", help="re-arm the kill switch of a running node")
    g.add_argument("--status", action="store_true", help="print a running node's kill switch")
    g.add_argument("--summary", action="store_true", help="print a running node's summary")
    p.add_argument("--reason", default="command", help="why (recorded with --kill)")
    p.add_argument(
        "--account", type=int, default=None, help="--kill/--reset one account only (default all)"
    )
    p.set_defaults(handler=_cmd_trade)
