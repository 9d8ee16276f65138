"""``python -m tradecore.marketdata serve|record ...``: the simulator and the recording adapter.

``serve RECORDING``: a Binance simulator on loopback (:func:`tradecore.marketdata.replay.main`).
``record SYMBOL...``: run the adapter and record what it receives
(:func:`tradecore.marketdata.adapter.main`; ``--live`` for the real exchange).
"""

from __future__ import annotations

import sys

from tradecore.marketdata import adapter, replay


def main(argv: list[str] | None = None) -> int:
    """Dispatch to ``serve`` or ``record``."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "serve":
        return replay.main(args[1:])
    if args and args[0] == "record":
        return adapter.main(args[1:])
    print(
        "usage: python -m tradecore.marketdata serve RECORDING [options]\n"
        "       python -m tradecore.marketdata record SYMBOL... [options]"
    )
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
