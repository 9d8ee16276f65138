"""The venue's subcommands: ``serve``, ``replay``, ``feed`` and ``loadgen``."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the venue's subcommands to the ``tradecore`` parser."""
