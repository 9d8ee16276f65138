"""The venue's subcommands: ``serve`` and ``replay`` (server.py), ``feed`` (feed.py) and
``loadgen`` (loadgen.py). Each module registers its own parsers."""

from __future__ import annotations

import argparse

from tradecore.venue import feed, loadgen, server


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the venue's subcommands to the ``tradecore`` parser."""
    server.register(sub)
    feed.register(sub)
    loadgen.register(sub)
