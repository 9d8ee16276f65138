"""Placeholder: the ``backtest`` subcommand (issue 5, being written)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the backtester's subcommands to the ``tradecore`` parser."""
