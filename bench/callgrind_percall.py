#!/usr/bin/env python3
"""Instruction count of the per-call Python path of ``OrderBook`` (for callgrind).

Runs the first ``N`` calls of the peer stream (``streams.l3_stream(200_000, seed 7)``, bound as
``bench/peer_nautilus.py`` binds them: ``submit`` / ``cancel`` / ``modify`` with positional
arguments) through a fresh ``OrderBook``, inside ``sys.call_tracing`` so that callgrind can be
told to count that loop alone:

    valgrind --tool=callgrind --toggle-collect=sys_call_tracing \\
        .venv/bin/python bench/callgrind_percall.py 200000

Instructions per call = the collected total / N (the interpreter's loop and call included).
Stream generation and binding happen outside the counted region. Wall-clock time means
nothing under valgrind; this script is for comparing builds, not for speed figures.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import streams
from tradecore import OrderBook
from tradecore.enums import Side


def _run(bound: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]]) -> None:
    for fn, args in bound:
        fn(*args)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("n", type=int, help="calls to run (at most 200,000)")
    args = p.parse_args(argv)
    s = streams.l3_stream(200_000, 7)
    sides = (Side.BUY, Side.SELL)
    book = OrderBook()
    fns = (book.submit, book.cancel, book.modify)
    bound: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
    for act, oid, acct, side, px, qty in zip(
        s.action.tolist(),
        s.order_id.tolist(),
        s.account.tolist(),
        s.side.tolist(),
        s.price.tolist(),
        s.qty.tolist(),
        strict=True,
    ):
        if act == 0:
            bound.append((fns[0], (oid, acct, sides[side], px, qty)))
        elif act == 1:
            bound.append((fns[1], (oid,)))
        else:
            bound.append((fns[2], (oid, px, qty)))
    gc.disable()
    sys.call_tracing(_run, (bound[: args.n],))
    print(f"{min(args.n, len(bound))} calls, {len(book)} orders resting")
    return 0


if __name__ == "__main__":
    sys.exit(main())
