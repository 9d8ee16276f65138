"""The node's fast paths agree with the slow, obvious computations they replace.

Each test drives the fast path and an independent reference with the same seeded input:

* ``Portfolio.equity`` (no views) against ``Portfolio.account(...).equity`` (every view);
  ``Portfolio.record`` against ``Portfolio.snapshot``; the integer closing arithmetic of
  ``Portfolio.on_fill`` against average-cost bookkeeping done in ``Fraction``; long runs of
  partial closes whose averages outgrow 60 digits still value exactly (they used to raise
  ``decimal.Inexact``).
* ``OrderManager.open_qty`` against a filter over ``open_orders``.
* ``RiskEngine.evaluate`` with its skip of unchanged inputs: a reset or a reload re-arms the
  check on the very same equity; ``evaluate(accounts=...)`` looks at those accounts only.
* ``BookSync.on_depth_text`` (the synced in-sequence diff without a ``DepthDiff``) against
  ``BookSync.on_diff``, including a gap and a crossed book.
* The node, which no longer checks loss limits per order: a loss limit still trips after
  fills, and trips again after a reset while the loss is still there.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from tradecore import Instrument
from tradecore.enums import Side
from tradecore.execution import OrderManager, Portfolio
from tradecore.execution.portfolio import COST_GRID
from tradecore.execution.types import Fill, Liquidity, OrderRequest
from tradecore.marketdata.binance import DepthDiff
from tradecore.marketdata.events import BookUpdate, Resync
from tradecore.marketdata.sync import BookSync, SyncState
from tradecore.node.node import Node
from tradecore.risk import AccountLimits, RiskEngine, RiskEvent, RiskEventKind, RiskLimits
from tradecore.risk.testing import InMemoryRiskState
from tradecore.store.sqlite import OP_STRATEGY_STATE

BTC = Instrument("BTCUSDT", tick_size="0.01", lot_size="0.001")
ETH = Instrument("ETHUSDT", tick_size="0.1", lot_size="0.01")


def _fill(account: int, symbol: str, side: Side, price: int, qty: int, n: int) -> Fill:
    return Fill(account, symbol, n, side, price, qty, Liquidity.TAKER, Decimal("0.01"), n, n)


class _Reference:
    """Average-cost bookkeeping in Fractions, written the plain way (the module doc's rules,
    with the cost left after a partial close rounded half-even to the ``COST_GRID`` grid)."""

    def __init__(self) -> None:
        self.qty = 0
        self.cost = Fraction(0)
        self.realized = Fraction(0)

    def fill(self, side: Side, price: int, qty: int) -> None:
        signed = qty if side is Side.BUY else -qty
        if self.qty == 0 or (self.qty > 0) == (signed > 0):
            self.qty += signed
            self.cost += price * signed
            return
        avg = self.cost / self.qty
        closing = min(abs(signed), abs(self.qty))
        sign = 1 if self.qty > 0 else -1
        opening = abs(signed) - closing
        remaining = 0 if opening else self.qty - sign * closing
        kept = avg * remaining
        if (kept * COST_GRID).denominator != 1:
            kept = Fraction(round(kept * COST_GRID), COST_GRID)
        self.realized += sign * closing * price - (self.cost - kept)
        if opening:
            self.qty = -sign * opening
            self.cost = Fraction(price * self.qty)
        else:
            self.qty = remaining
            self.cost = kept


@pytest.mark.parametrize("seed", range(6))
def test_portfolio_fast_equity_record_and_closing_agree_with_the_references(seed: int) -> None:
    rng = random.Random(seed)
    pf = Portfolio([BTC, ETH], {1: Decimal("1000"), 2: Decimal(0)})
    refs = {(a, s): _Reference() for a in (1, 2) for s in ("BTCUSDT", "ETHUSDT")}
    for n in range(1, 400):
        account = rng.choice((1, 2))
        symbol = rng.choice(("BTCUSDT", "ETHUSDT"))
        side = rng.choice((Side.BUY, Side.SELL))
        price, qty = rng.randint(900, 1100), rng.randint(1, 7)
        pf.on_fill(_fill(account, symbol, side, price, qty, n))
        refs[(account, symbol)].fill(side, price, qty)
        roll = rng.random()
        if roll < 0.3:
            bid = rng.randint(900, 1100)
            pf.mark(symbol, bid, bid + rng.randint(0, 5))
        elif roll < 0.35:
            pf.mark_price(symbol, Fraction(rng.randint(9000, 11000), 7))  # not a half tick
        for acc in (1, 2):
            view = pf.account(acc).equity
            fast = pf.equity(acc)
            assert fast == view and str(fast) == str(view)
    records = {(r.account, r.symbol): r for r in pf.snapshot()}
    for key, ref in refs.items():
        rec = pf.record(*key)
        assert rec == records.get(key)
        if rec is not None:
            assert (rec.qty, rec.cost_ticklots, rec.realized_ticklots) == (
                ref.qty,
                ref.cost,
                ref.realized,
            )
    assert pf.record(3, "BTCUSDT") is None


def test_mark_reports_whether_it_moved() -> None:
    pf = Portfolio([BTC])
    assert pf.mark("BTCUSDT", 100, 102) is True
    assert pf.mark("BTCUSDT", 100, 102) is False
    assert pf.mark("BTCUSDT", 99, 103) is False  # same mid
    assert pf.mark("BTCUSDT", 100, None) is True and pf.mark_of("BTCUSDT") == 100
    assert pf.mark("BTCUSDT", None, None) is False
    pf.mark_price("BTCUSDT", Fraction(1, 3))
    assert pf.mark_of("BTCUSDT") == Fraction(1, 3)
    assert pf.mark("BTCUSDT", 100, None) is True and pf.mark_of("BTCUSDT") == 100


def test_views_after_many_partial_closes_do_not_raise() -> None:
    # Adding at new prices and closing part of the position again and again made the exact
    # average's denominator the product of many position sizes (it trapped past 60 digits, and
    # grew without bound); the cost now stays on the COST_GRID grid.
    pf = Portfolio([BTC])
    ref = _Reference()
    primes = [3, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79]
    n = 0
    for k in range(60):
        q = primes[k % len(primes)]
        for side, price, qty in ((Side.BUY, 1000 + k, q), (Side.SELL, 990 + k, 1)):
            n += 1
            pf.on_fill(_fill(1, "BTCUSDT", side, price, qty, n))
            ref.fill(side, price, qty)
    assert COST_GRID % ref.cost.denominator == 0 and ref.cost.denominator > 1
    pf.mark("BTCUSDT", 1000, 1001)
    view = pf.position(1, "BTCUSDT")
    assert view.realized_ticklots == ref.realized
    assert pf.account(1).equity == pf.equity(1)
    # The average is a non-terminating rational: rounded to 34 significant digits, once.
    assert view.avg_price is not None and len(view.avg_price.as_tuple().digits) == 34


def test_open_qty_equals_the_filter_over_open_orders() -> None:
    rng = random.Random(5)
    om = OrderManager()
    for coid in range(1, 60):
        om.register(
            OrderRequest(
                rng.choice((1, 2)),
                coid,
                rng.choice(("BTCUSDT", "ETHUSDT")),
                rng.choice((Side.BUY, Side.SELL)),
                rng.randint(1, 9),
                100,
            ),
            0,
        )
    for acc in (1, 2, 3):
        for sym in ("BTCUSDT", "ETHUSDT", "XRPUSDT"):
            for side in (Side.BUY, Side.SELL):
                want = sum(o.leaves for o in om.open_orders(acc, sym) if o.side is side)
                assert om.open_qty(acc, sym, side) == want


def test_loss_evaluation_skips_only_what_cannot_change() -> None:
    state = InMemoryRiskState()
    trips: list[int | None] = []
    limits = RiskLimits(account_defaults=AccountLimits(max_daily_loss=Decimal("100")))
    risk = RiskEngine(limits, state, [BTC], cancel_all=trips.append, accounts=[1, 2])
    state.equities[1] = state.equities[2] = Decimal(1000)
    risk.evaluate(1)  # baselines
    state.equities[1] = Decimal(900)
    risk.evaluate(2)
    assert risk.is_tripped(1) and trips == [1]
    risk.reset(1)
    risk.evaluate(3)  # same equity, same day: a re-armed switch trips again
    assert risk.is_tripped(1) and trips == [1, 1]
    risk.reset(1)
    risk.update_limits(RiskLimits(account_defaults=AccountLimits(max_daily_loss=Decimal("200"))))
    risk.evaluate(4)  # 100 lost, limit now 200
    assert not risk.is_tripped(1)
    risk.update_limits(RiskLimits(account_defaults=AccountLimits(max_daily_loss=Decimal("50"))))
    risk.evaluate(5)  # same equity, tighter limit: trips
    assert risk.is_tripped(1)
    # Only the accounts named are looked at.
    state.equities[2] = Decimal(800)
    risk.evaluate(6, accounts=[1])
    assert not risk.is_tripped(2)
    risk.evaluate(7, accounts=[2])
    assert risk.is_tripped(2)


def _depth_text(
    symbol: str, first: int, last: int, bids: list[list[str]], asks: list[list[str]]
) -> str:
    data = {"e": "depthUpdate", "E": 1, "s": symbol, "U": first, "u": last, "b": bids, "a": asks}
    return json.dumps({"stream": f"{symbol.lower()}@depth@100ms", "data": data})


def _synced(inst: Instrument) -> BookSync:
    sync = BookSync(inst)
    sync.on_diff(DepthDiff(inst.symbol, 5, 6, [], [], 0, 0))
    snap = json.dumps(
        {"lastUpdateId": 5, "bids": [["100.00", "1.000"]], "asks": [["100.10", "2.000"]]}
    )
    sync.on_snapshot_body(snap, 0)
    assert sync.state is SyncState.SYNCED and sync.update_id == 6
    return sync


def test_depth_text_fast_path_agrees_with_on_diff() -> None:
    rng = random.Random(11)
    fast, slow = _synced(BTC), _synced(BTC)
    uid = 6
    updates = 0
    for step in range(300):
        first, last = uid + 1, uid + rng.randint(1, 3)
        if step % 50 == 49:
            first = uid + 3  # a gap: both resync
        bids = [[f"{rng.randint(9900, 10000) / 100:.2f}", f"{rng.randint(0, 5)}.000"]]
        asks = [[f"{rng.randint(10010, 10100) / 100:.2f}", f"{rng.randint(0, 5)}.000"]]
        if step % 70 == 69:
            asks = [["99.00", "1.000"]]  # crosses the book: both resync
        text = _depth_text("BTCUSDT", first, last, bids, asks)
        a = fast.on_depth_text(first, last, 7, 8, text)
        b = slow.on_diff(DepthDiff("BTCUSDT", first, last, bids, asks, 7, 8))
        assert type(a) is type(b)
        if isinstance(a, BookUpdate):
            assert isinstance(b, BookUpdate) and a.update_id == b.update_id
            updates += 1
        if isinstance(a, Resync):
            assert isinstance(b, Resync) and a.reason == b.reason
            fast, slow = _synced(BTC), _synced(BTC)
            uid = 6
            continue
        assert (fast.state, fast.update_id) == (slow.state, slow.update_id)
        assert fast.book.depth(50) == slow.book.depth(50)
        uid = last
    assert updates > 200


def _node_config(tmp: Path) -> Path:
    text = """
[node]
name = "fast-paths"
symbols = ["FTMUSDT"]
risk_check_interval_ms = 100

[source]
recording = "embedded:2021-08-14"

[[strategy]]
name = "taker-ftm"
kind = "imbalance"
account = 1
initial_cash = "10000"
params = { symbol = "FTMUSDT", threshold = 0.2, order_qty = 20, max_position = 200 }

[risk.account_defaults]
max_daily_loss = "0.02"

[broker]
taker_fee_bps = "7.5"

[storage]
path = "node.sqlite"

[metrics]
enabled = false
"""
    path = tmp / "node.toml"
    path.write_text(text)
    return path


def test_node_loss_limit_trips_after_fills_and_again_after_a_reset(tmp_path: Path) -> None:
    # Loss limits are evaluated after fills and on the risk timer only (not per order): the
    # taker pays fees, so a 0.02 daily-loss limit trips within the first trades.
    node = Node.from_file(_node_config(tmp_path), watch_config=False, max_events=2_000)
    trips: list[str] = []
    on_event = node.risk._on_event

    def spy(ev: RiskEvent) -> None:
        if ev.kind is RiskEventKind.KILL_SWITCH_TRIPPED:
            trips.append(ev.reason)
        if on_event is not None:
            on_event(ev)

    node.risk._on_event = spy
    summary = node.run()
    assert trips == ["MAX_DAILY_LOSS"]
    assert summary.fills > 0 and summary.accounts[0].kill_switch
    assert node.portfolio.equity(1) <= Decimal("9999.98")
    # A reset while the loss is still there: the next risk timer trips it again, with no fill
    # and no mark moving in between (the timer then looks at every account, not only those
    # whose equity moved).
    node._run_control("reset", {"account": "1"})
    assert not node.risk.is_tripped(1)
    node._risk_timer(0)
    assert node.risk.is_tripped(1) and trips == ["MAX_DAILY_LOSS", "MAX_DAILY_LOSS"]


def test_state_timer_stores_a_flat_state_again_only_when_it_changed(tmp_path: Path) -> None:
    # The state timer skips a flat state equal to the last one stored: same keys in the same
    # order, equal values of the same types. 1, 1.0 and True are equal but differ in type (the
    # JSON differs), so each is stored; a nested state is always stored (changed in place?).
    node = Node.from_file(_node_config(tmp_path), watch_config=False, max_events=1)
    node.run()
    strat = node.slots[0].strategy
    nested: dict[str, object] = {"a": [1]}
    states: list[dict[str, object]] = [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "x"},  # same: skipped
        {"a": 1.0, "b": "x"},  # equal value, other type: stored
        {"a": True, "b": "x"},  # again
        {"a": True, "b": "x"},  # same: skipped
        {"b": "x", "a": True},  # other key order: stored
        {"b": "x", "a": True, "c": None},  # one more key: stored
        {"b": "x", "a": True, "c": None},  # same: skipped
        nested,
        nested,  # nested: stored every time
    ]
    stored: list[object] = []
    put = node.store.put

    def spy(*ops: object) -> None:
        stored.extend(json.loads(op[1][1]) for op in ops if op[0] == OP_STRATEGY_STATE)  # type: ignore[index]
        put(*ops)  # type: ignore[arg-type]

    node.store.put = spy  # type: ignore[method-assign]
    for i, state in enumerate(states):
        strat.state = lambda s=state: s  # type: ignore[method-assign]
        node._save_state(1_000 + i)
    want = [states[i] for i in (0, 2, 3, 5, 6, 8, 9)]
    assert stored == [json.loads(json.dumps(s, sort_keys=True)) for s in want]
    assert [type(s["a"]) for s in stored[:3]] == [int, float, bool]  # type: ignore[index]


def test_context_position_follows_fills_and_a_restart(tmp_path: Path) -> None:
    # ctx.position is the portfolio's live qty view (a dict's __getitem__): it must equal
    # position_qty after the fills of a run, and in a second node over the same store after
    # the restore at start-up (the view exists before the positions are loaded).
    cfg = _node_config(tmp_path)
    # No loss limit here: the kill switch would flatten the position.
    cfg.write_text(cfg.read_text().replace('max_daily_loss = "0.02"', ""))
    first = Node.from_file(cfg, watch_config=False, max_events=3_000)
    seen: list[tuple[int, int]] = []
    strat = first.slots[0].strategy
    on_fill = strat.on_fill

    def spy(fill: Fill) -> None:
        seen.append((strat.ctx.position("FTMUSDT"), first.portfolio.position_qty(1, "FTMUSDT")))
        on_fill(fill)

    strat.on_fill = spy  # type: ignore[method-assign]
    assert first.run().fills > 0
    assert seen and all(a == b for a, b in seen)
    held = first.portfolio.position_qty(1, "FTMUSDT")
    assert held != 0 and strat.ctx.position("FTMUSDT") == held
    assert strat.ctx.position("ETHUSDT") == 0  # never traded: 0, as position_qty says
    second = Node.from_file(cfg, watch_config=False, max_events=1)
    ctx = second.slots[0].ctx
    assert ctx.position("FTMUSDT") == 0  # nothing loaded before the run starts
    second.run()
    assert second.portfolio.position_qty(1, "FTMUSDT") == held
    assert ctx.position("FTMUSDT") == held
