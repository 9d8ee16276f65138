"""``make demo``: the trading node replays the recordings with the imbalance strategy.

Owns :func:`run_demo`: it builds a node from :data:`DEMO_CONFIG` (the shipped copies of real
Binance recordings, imbalance strategies on three symbols, each with its own account, pre-trade
risk, the paper broker with latency, fees and the proportional cancel model), stores everything
in a SQLite file in a temporary directory, replays as fast as possible and prints the summary.
Offline: no network, no ``../shared`` needed, no port opened. Cost: well under a second.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import TextIO

from tradecore.node.config import parse_config

__all__ = ["DEMO_CONFIG", "run_demo"]

DEMO_CONFIG = """
[node]
name = "demo"
symbols = ["FTMUSDT", "XMRBTC", "NKNUSDT"]

[source]
kind = "recorded"
recording = "embedded"

[[strategy]]
name = "imbalance-ftm"
kind = "imbalance"
account = 1
initial_cash = "10000"
params = { symbol = "FTMUSDT", levels = 5, threshold = 0.3, order_qty = 50, max_position = 200 }

[[strategy]]
name = "imbalance-xmr"
kind = "imbalance"
account = 2
initial_cash = "1"
params = { symbol = "XMRBTC", levels = 5, threshold = 0.3, order_qty = 5, max_position = 20 }

[[strategy]]
name = "imbalance-nkn"
kind = "imbalance"
account = 3
initial_cash = "10000"
params = { symbol = "NKNUSDT", levels = 5, threshold = 0.3, order_qty = 100, max_position = 500 }

[risk.defaults]
max_order_qty = 100000
price_band_bps = "100"

[risk.account_defaults]
max_open_orders = 10
rate_limit = { per_second = "50", burst = 10 }
max_daily_loss = "500"

[broker]
latency_us = 500
cancel_latency_us = 500
jitter_us = 100
maker_fee_bps = "1"
taker_fee_bps = "7.5"
cancel_model = "proportional"
seed = 7

[storage]
path = "demo.sqlite"

[metrics]
enabled = false
"""


def run_demo(out: TextIO | None = None) -> int:
    """Run the demo node and print its summary to ``out``; 0 when it ran cleanly."""
    from tradecore.node.node import Node

    stream = out if out is not None else sys.stdout
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="tradecore-demo-") as tmp:
        path = Path(tmp) / "demo.toml"
        path.write_text(DEMO_CONFIG, encoding="utf-8")
        loaded = parse_config(tomllib.loads(DEMO_CONFIG), path)
        print(
            "tradecore trading node: replaying real Binance recordings (cryptofeed samples, "
            "2021-08-14 and 2021-10-12) through the L2 book, imbalance strategies, pre-trade "
            "risk and the paper broker",
            file=stream,
        )
        node = Node(loaded, out=stream, watch_config=False)
        summary = node.run()
        print(summary.format(), file=stream, flush=True)
        ok = summary.messages > 0 and summary.strategy_errors == 0 and not summary.store_failures
        return 0 if ok else 1
