"""The trading node's subcommand: ``trade``."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the node's subcommands to the ``tradecore`` parser."""
