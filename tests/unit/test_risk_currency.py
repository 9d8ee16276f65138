"""One account, one currency: an order in a symbol quoted in another currency than the one the
account already trades in is refused (``CURRENCY_MISMATCH``), so equity, P&L limits and gross
exposure never add up two currencies. Instruments learn their quote currency from Binance's
exchangeInfo (``quoteAsset``)."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path

from tradecore import Instrument
from tradecore.enums import OrderType, Side
from tradecore.execution.types import OrderRequest
from tradecore.node.node import Node
from tradecore.risk import RiskEngine, RiskEvent, RiskLimits, RiskReason
from tradecore.risk.testing import InMemoryRiskState

BTCUSDT = Instrument("BTCUSDT", "0.01", "0.001", quote_asset="USDT")
ETHUSDT = Instrument("ETHUSDT", "0.01", "0.001", quote_asset="USDT")
ETHBTC = Instrument("ETHBTC", "0.00001", "0.001", quote_asset="BTC")
PLAIN = Instrument("PLAIN", "0.01", "1")  # quote currency unknown: no currency rule

SYMBOLS = ("BTCUSDT", "ETHUSDT", "ETHBTC", "PLAIN")


def _engine(fast: bool = True) -> tuple[RiskEngine, InMemoryRiskState, list[RiskEvent]]:
    state = InMemoryRiskState()
    for s in SYMBOLS:
        state.bba[s] = (999, 1001)
    events: list[RiskEvent] = []
    risk = RiskEngine(
        RiskLimits(),
        state,
        [BTCUSDT, ETHUSDT, ETHBTC, PLAIN],
        on_event=events.append,
        fast_check=fast,
    )
    return risk, state, events


def _order(
    account: int, coid: int, symbol: str, side: Side = Side.BUY, qty: int = 1
) -> OrderRequest:
    return OrderRequest(account, coid, symbol, side, qty, 1000, OrderType.LIMIT)


def test_the_first_order_fixes_the_accounts_currency() -> None:
    risk, _, events = _engine()
    assert risk.check(_order(1, 1, "BTCUSDT"), 1) is None
    assert risk.check(_order(1, 2, "ETHUSDT"), 2) is None
    assert risk.check(_order(1, 3, "ETHBTC"), 3) is RiskReason.CURRENCY_MISMATCH
    assert "account 1 keeps its money in USDT; ETHBTC is quoted in BTC" in events[-1].detail
    assert risk.rejects[RiskReason.CURRENCY_MISMATCH] == 1
    # Another account starts in BTC and is then held to it.
    assert risk.check(_order(2, 1, "ETHBTC"), 4) is None
    assert risk.check(_order(2, 2, "BTCUSDT"), 5) is RiskReason.CURRENCY_MISMATCH
    # An instrument without a known quote currency is not subject to the rule.
    assert risk.check(_order(1, 4, "PLAIN"), 6) is None
    assert risk.check(_order(2, 3, "PLAIN"), 7) is None


def test_after_a_restart_the_positions_held_decide_and_reducing_orders_pass() -> None:
    risk, state, _ = _engine()
    state.pos[(3, "ETHBTC")] = 5  # restored: account 3 holds a BTC-quoted position
    assert risk.check(_order(3, 1, "BTCUSDT"), 1) is RiskReason.CURRENCY_MISMATCH
    assert risk.check(_order(3, 2, "ETHBTC"), 2) is None
    # Positions in two currencies (not created by this engine): no currency can be told, the
    # first order decides; an order that reduces a position always passes.
    risk2, state2, _ = _engine()
    state2.pos[(4, "ETHBTC")] = 5
    state2.pos[(4, "BTCUSDT")] = -2
    assert risk2.check(_order(4, 1, "BTCUSDT", Side.BUY, 2), 1) is None  # USDT now
    assert risk2.check(_order(4, 2, "ETHBTC", Side.SELL, 5), 2) is None  # reduces
    assert risk2.check(_order(4, 3, "ETHBTC", Side.SELL, 6), 3) is RiskReason.CURRENCY_MISMATCH
    assert risk2.check(_order(4, 4, "ETHBTC", Side.BUY, 1), 4) is RiskReason.CURRENCY_MISMATCH


def test_fast_and_full_checks_agree_on_random_orders() -> None:
    rnd = random.Random(11)
    fast, fstate, fev = _engine(fast=True)
    full, sstate, sev = _engine(fast=False)
    for i in range(3_000):
        acct = rnd.randint(1, 4)
        sym = rnd.choice(SYMBOLS)
        side = rnd.choice((Side.BUY, Side.SELL))
        qty = rnd.randint(1, 4)
        if rnd.random() < 0.1:  # positions move between checks, the same in both states
            key = (acct, rnd.choice(SYMBOLS))
            delta = rnd.randint(-3, 3)
            fstate.pos[key] = fstate.pos.get(key, 0) + delta
            sstate.pos[key] = sstate.pos.get(key, 0) + delta
        a = fast.check(_order(acct, i, sym, side, qty), i)
        b = full.check(_order(acct, i, sym, side, qty), i)
        assert a == b, (i, acct, sym, side, qty)
    assert fast.rejects == full.rejects
    assert [(e.kind, e.reason, e.detail) for e in fev] == [
        (e.kind, e.reason, e.detail) for e in sev
    ]
    assert fast.rejects[RiskReason.CURRENCY_MISMATCH] > 0


def test_the_node_learns_quote_currencies_from_exchange_info(tmp_path: Path) -> None:
    cfg = Path(__file__).resolve().parents[2] / "config" / "node.example.toml"
    text = cfg.read_text().replace(
        'path = "../target/node/example.sqlite"', f'path = "{tmp_path / "n.sqlite"}"'
    )
    text = text.replace("enabled = true", "enabled = false")
    local = tmp_path / "node.toml"
    local.write_text(text)
    node = Node.from_file(local, watch_config=False, max_events=50)
    node.run()
    quotes = {s: i.quote_asset for s, i in node.instruments.items()}
    assert quotes == {"FTMUSDT": "USDT", "XMRBTC": "BTC", "NKNUSDT": "USDT"}
    assert node.risk.rejects[RiskReason.CURRENCY_MISMATCH] == 0
    assert node.portfolio.equity(2) <= Decimal(1)  # account 2's money is in BTC
