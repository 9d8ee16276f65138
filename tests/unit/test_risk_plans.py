"""The risk engine's fast path and its loss evaluation decide exactly what the reference does.

* ``RiskEngine.check`` with its per-(account, symbol) plans (made at first use, dropped on
  trips, reloads, new instruments, restored baselines, ``fast_check`` / ``loss_check_on_order``
  set, a new state), with and without the one-call ``PretradeState.pretrade``, and with its
  token-bucket shortcuts (a gap that refills the bucket, a clock standing still or going
  back), against the complete check (``fast_check=False``) on seeded random orders, states,
  limits and commands: same answers, counters, events, buckets, trips, mids, currencies.
* ``RiskEngine.evaluate`` (the loss limits, one loop) against the previous two-step
  evaluation (kept below as the reference) on random equities, days, resets, reloads and
  restores: same trips, events, baselines and versions.
* A node whose risk view offers ``pretrade`` answers it exactly as its separate calls do.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tradecore import Instrument
from tradecore.enums import OrderType, Side, TimeInForce
from tradecore.execution.types import Order, OrderRequest, OrderStatus
from tradecore.node.node import Node
from tradecore.risk import (
    AccountLimits,
    LossBaseline,
    RateLimit,
    RejectBurst,
    RiskEngine,
    RiskEvent,
    RiskLimits,
    SymbolLimits,
    TripCause,
)
from tradecore.risk.engine import DAY_NS, _AccountRules
from tradecore.risk.testing import InMemoryPretradeState, InMemoryRiskState

SEC = 1_000_000_000
BTC = Instrument("BTCUSDT", "0.01", "0.001", quote_asset="USDT")
ETH = Instrument("ETHUSDT", "0.1", "0.01", quote_asset="USDT")
XRP = Instrument("XRPBTC", "0.00000001", "1", quote_asset="BTC")
PLAIN = Instrument("PLAIN", "0.01", "1")  # no quote currency: no currency rule
SOL = Instrument("SOLUSDT", "0.01", "0.01", quote_asset="USDT")  # added during the run
MIDS = {"BTCUSDT": 1_000_000, "ETHUSDT": 20_000, "XRPBTC": 1_500, "PLAIN": 5_000, "SOLUSDT": 9_000}
ACCOUNTS = [1, 2, 3]

#: The bench's limits (bench/bench_node.py), the case the node's hot path runs.
BENCH = RiskLimits(
    defaults=SymbolLimits(
        max_order_qty=1_000_000, max_position=100_000_000, price_band_bps=Decimal(500)
    ),
    account_defaults=AccountLimits(
        max_open_orders=100,
        rate_limit=RateLimit(Decimal(1_000_000), 1_000_000),
        max_daily_loss=Decimal(1_000_000),
    ),
)


def _random_limits(rng: random.Random) -> RiskLimits:
    if rng.random() < 0.15:
        return BENCH

    def maybe(value: Any) -> Any:
        return value if rng.random() < 0.6 else None

    sym = SymbolLimits(
        max_order_qty=maybe(rng.randint(1, 40)),
        max_position=maybe(rng.randint(0, 60)),
        max_order_notional=maybe(Decimal(rng.choice(["50", "200", "1000", "5000"]))),
        price_band_bps=maybe(Decimal(rng.choice(["1", "25", "100", "512.5", "0.3"]))),
    )
    acct = AccountLimits(
        max_gross_exposure=maybe(Decimal(rng.choice(["100", "1000", "50000"]))),
        max_open_orders=maybe(rng.randint(0, 6)),
        rate_limit=maybe(
            RateLimit(Decimal(rng.choice(["0.5", "3", "1000", "1000000"])), rng.randint(1, 5))
        ),
        max_daily_loss=maybe(Decimal(rng.choice(["5", "100"]))),
        max_drawdown=maybe(Decimal(rng.choice(["7", "150"]))),
        reject_burst=maybe(RejectBurst(rng.randint(2, 6), rng.choice([SEC, 60 * SEC]))),
    )
    overrides = (
        {"ETHUSDT": SymbolLimits(max_order_qty=rng.randint(1, 10))} if rng.random() < 0.3 else {}
    )
    return RiskLimits(
        defaults=sym,
        account_defaults=acct,
        symbols=overrides,
        kill_switch=rng.random() < 0.03,
    )


class _Side:
    """One engine with what it reports."""

    def __init__(self, limits: RiskLimits, state: InMemoryRiskState, **kw: Any) -> None:
        self.cancels: list[int | None] = []
        self.events: list[RiskEvent] = []
        self.risk = RiskEngine(
            limits,
            state,
            [BTC, ETH, XRP, PLAIN],
            cancel_all=self.cancels.append,
            on_event=self.events.append,
            accounts=ACCOUNTS[:2],
            **kw,
        )

    def snapshot(self) -> tuple[Any, ...]:
        r = self.risk
        return (
            r.checks,
            r.passed,
            dict(r.rejects),
            dict(r.trips),
            r.kill_switch_state(),
            {a: (st.tokens, st.tokens_ns) for a, st in sorted(r._accounts.items())},
            dict(r._mid2),
            dict(r._account_quote),
            r.baselines(),
            r.baseline_version,
            list(self.events),
            list(self.cancels),
        )


def _order(rng: random.Random, step: int) -> OrderRequest:
    sym = rng.choice(["BTCUSDT"] * 3 + ["ETHUSDT"] * 3 + ["XRPBTC", "PLAIN", "SOLUSDT", "NOPE"])
    base = MIDS.get(sym, 1_000)
    market = rng.random() < 0.15
    qty: Any = rng.choice(
        [rng.randint(1, 12)] * 6 + [0, -1, True, 2.0, 2**62 + 1, 2**70, 1_000_001]
    )
    price: Any = rng.choice(
        [base + rng.randint(-100, 100)] * 3
        + [base + rng.randint(-base // 20, base // 20), 0, -5, float(base), base * 3]
    )
    account: Any = rng.choice([*ACCOUNTS, 4, True] if rng.random() < 0.1 else ACCOUNTS)
    return OrderRequest(
        account,
        step,
        sym,
        rng.choice([Side.BUY, Side.SELL]),
        qty,
        0 if market and rng.random() < 0.9 else price,
        OrderType.MARKET if market else OrderType.LIMIT,
        TimeInForce.IOC,
    )


@pytest.mark.parametrize("seed", range(30))
def test_fast_path_equals_the_complete_check(seed: int) -> None:
    rng = random.Random(seed)
    limits = _random_limits(rng)
    loss_on_order = rng.random() < 0.3
    plain = InMemoryRiskState()
    one_call = InMemoryPretradeState()
    one_call.share(plain)
    for sym, mid in MIDS.items():
        plain.bba[sym] = (mid - 1, mid + 1)
    start_one_call = seed % 2 == 0
    fast = _Side(limits, one_call if start_one_call else plain, loss_check_on_order=loss_on_order)
    slow = _Side(limits, plain, loss_check_on_order=loss_on_order, fast_check=False)
    assert fast.risk.fast_check and not slow.risk.fast_check
    both = (fast, slow)
    now = 5 * DAY_NS
    passed = one_call_passes = 0
    for step in range(600):
        now += rng.choice([0, 1, 999, 1_000, SEC // 3, SEC, 5 * SEC, 2 * DAY_NS // 3, -7])
        roll = rng.random()
        if roll < 0.10:
            plain.pos[(rng.choice(ACCOUNTS), rng.choice(list(MIDS)))] = rng.randint(-30, 30)
        elif roll < 0.16:
            acc = rng.choice(ACCOUNTS)
            side = rng.choice([Side.BUY, Side.SELL])
            plain.open[(acc, rng.choice(list(MIDS)), side)] = rng.randint(0, 10)
            plain.open_count[acc] = rng.randint(0, 7)
        elif roll < 0.22:
            sym = rng.choice(list(MIDS))
            if rng.random() < 0.15:
                plain.bba.pop(sym, None)
            else:
                m = MIDS[sym] + rng.randint(-MIDS[sym] // 30, MIDS[sym] // 30)
                plain.bba[sym] = (m - rng.randint(1, 50), m + rng.randint(1, 50))
        elif roll < 0.235:
            acc = rng.choice([None, *ACCOUNTS])
            for s in both:
                s.risk.kill("test", acc, now)
        elif roll < 0.26:
            acc = rng.choice([None, *ACCOUNTS])
            for s in both:
                s.risk.reset(acc, now)
        elif roll < 0.30:
            plain.equities[rng.choice(ACCOUNTS)] = Decimal(rng.randint(-300, 300)) / 4
            subset = None if rng.random() < 0.5 else {rng.choice(ACCOUNTS)}
            for s in both:
                s.risk.evaluate(now, subset)
        elif roll < 0.31:
            new = _random_limits(rng)
            for s in both:
                s.risk.update_limits(new, now)
        elif roll < 0.315:
            for s in both:
                s.risk.add_instrument(SOL)
        elif roll < 0.32:
            restored = {
                rng.choice(ACCOUNTS): LossBaseline(
                    now // DAY_NS, Decimal(rng.randint(-50, 50)), Decimal(rng.randint(0, 80))
                )
            }
            for s in both:
                s.risk.restore_baselines(restored)
        elif roll < 0.325:
            flag = rng.random() < 0.5
            for s in both:
                s.risk.loss_check_on_order = flag
        elif roll < 0.33:
            fast.risk._state = one_call if fast.risk._state is plain else plain
        elif roll < 0.34:
            acc = rng.choice(ACCOUNTS)
            for s in both:
                s.risk.record_reject(acc, now, "venue")
        elif roll < 0.35:
            req = _order(rng, step)
            order = Order(req, OrderStatus.ACKNOWLEDGED, req.price, 5, 0, rng.randint(0, 5))
            new_qty, new_price = rng.randint(1, 12), MIDS.get(req.symbol, 1_000) + 3
            got = fast.risk.check_modify(order, new_price, new_qty, now)
            want = slow.risk.check_modify(order, new_price, new_qty, now)
            assert got is want, (step, order)
        else:
            req = _order(rng, step)
            got = fast.risk.check(req, now)
            want = slow.risk.check(req, now)
            assert got is want, (step, req)
            if got is None:
                passed += 1
                one_call_passes += fast.risk._state is one_call
        assert fast.snapshot() == slow.snapshot(), step
    assert passed > 0 and fast.risk.checks > passed


@pytest.mark.parametrize("one_call", [False, True])
def test_fast_path_equals_the_complete_check_at_every_boundary(one_call: bool) -> None:
    # Orders exactly at and one step past each limit (random input rarely lands on an edge):
    # the price band (whole and fractional bps), notional, position, open orders, and token
    # buckets refilled by gaps around the time one order takes and the time a full refill
    # takes (3 orders/s, burst 2: ceil(2e9 / 3) ns fills an empty bucket).
    limits = RiskLimits(
        defaults=SymbolLimits(
            max_order_qty=10,
            max_position=12,
            max_order_notional=Decimal("94.5"),  # 9_450_000 tick-lots: 9 x 1_050_000
            price_band_bps=Decimal(500),
        ),
        symbols={"ETHUSDT": SymbolLimits(price_band_bps=Decimal("512.5"))},
        account_defaults=AccountLimits(
            max_open_orders=4, rate_limit=RateLimit(Decimal(3), 2), max_daily_loss=Decimal(9)
        ),
    )
    plain = InMemoryRiskState()
    state = InMemoryPretradeState() if one_call else plain
    if one_call:
        assert isinstance(state, InMemoryPretradeState)
        state.share(plain)
    plain.bba["BTCUSDT"] = (999_999, 1_000_001)  # mid2 2_000_000: band 500 bps = 950_000..
    plain.bba["ETHUSDT"] = (19_999, 20_001)  # mid2 40_000: 512.5 bps = 18_975..21_025
    fast = _Side(limits, state, loss_check_on_order=False)
    slow = _Side(limits, plain, loss_check_on_order=False, fast_check=False)
    now = 10 * SEC
    prices = {
        "BTCUSDT": [949_999, 950_000, 1_050_000, 1_050_001],
        "ETHUSDT": [18_974, 18_975, 21_025, 21_026],
    }
    fill_time = -(-2 * SEC // 3)  # ceil(cap / gain) with cap = 2e9 and gain = 3 per ns
    one_token = -(-SEC // 3)
    gaps = [0, one_token - 1, one_token, fill_time - 1, fill_time, fill_time + 1, 0, 0, 1]
    n = 0
    for sym, edge in prices.items():
        for price in edge:
            for qty in (1, 2, 9, 10, 11):
                for side in (Side.BUY, Side.SELL):
                    for pos, open_qty, count in ((0, 0, 0), (2, 1, 3), (-1, 0, 4), (11, 0, 0)):
                        plain.pos[(1, sym)] = pos
                        plain.open[(1, sym, side)] = open_qty
                        plain.open_count[1] = count
                        now += gaps[n % len(gaps)]
                        n += 1
                        req = OrderRequest(1, n, sym, side, qty, price, OrderType.LIMIT)
                        got = fast.risk.check(req, now)
                        assert got is slow.risk.check(req, now), req
                        assert fast.snapshot() == slow.snapshot(), req
    assert fast.risk.passed > 20 and sum(fast.risk.rejects.values()) > 20
    # The token bucket alone (nothing else limits these orders): emptied by orders at one
    # instant, then refilled by gaps just short of, at and past one token and a full bucket;
    # the clock standing still and going back.
    plain.pos[(1, "BTCUSDT")] = 0
    plain.open_count[1] = 0
    plain.open[(1, "BTCUSDT", Side.BUY)] = 0
    plain.bba["BTCUSDT"] = (999_999, 1_000_001)
    steps = [0, 0, 0, fill_time - 1, 0, 0, fill_time, 0, 0, one_token - 1, one_token, 0]
    steps += [fill_time + 1, -5, 0, 1, one_token, -one_token, one_token * 2, 0, 0]
    # From full, one order, then a gap that brings the bucket to one unit short of full.
    steps += [fill_time + 1, one_token - 1, fill_time, 0, 0, 0]
    for i, step in enumerate(steps * 3):
        now += step
        req = OrderRequest(1, 1_000 + i, "BTCUSDT", Side.BUY, 1, 1_000_000, OrderType.LIMIT)
        got = fast.risk.check(req, now)
        assert got is slow.risk.check(req, now), (i, step)
        assert fast.snapshot() == slow.snapshot(), (i, step)


def test_the_fast_path_is_taken_and_reads_the_state_once_per_order() -> None:
    # The proof that the comparison above compares something: on the bench's limits, a
    # passing order goes through the plan (the complete check is not called) and, with a
    # PretradeState, asks the state one question; without, the four the limits need.
    calls: list[str] = []

    class Counting(InMemoryPretradeState):
        def __getattribute__(self, name: str) -> Any:
            if name in {"pretrade", "best_bid_ask", "position", "open_qty", "open_order_count"}:
                calls.append(name)
            return super().__getattribute__(name)

    state = Counting()
    state.bba["BTCUSDT"] = (999_999, 1_000_001)
    risk = RiskEngine(BENCH, state, [BTC], accounts=[1], loss_check_on_order=False)
    req = OrderRequest(1, 1, "BTCUSDT", Side.BUY, 1, 1_000_000, OrderType.LIMIT)
    assert risk.check(req, 1) is None  # the account's first: the complete check
    slow_checks = risk._slow_checks
    assert risk.check(req, 2) is None  # makes the plan (which looks for pretrade)
    calls.clear()
    for i in range(5):
        assert risk.check(req, 3 + i) is None
    assert risk._slow_checks == slow_checks and risk.checks == 7 and risk.passed == 7
    assert calls == ["pretrade"] * 5
    risk._state = InMemoryRiskState()  # no pretrade: the separate calls
    risk._state.bba["BTCUSDT"] = (999_999, 1_000_001)
    assert risk.check(req, 10) is None and risk._slow_checks == slow_checks
    # A price outside the band: the plan hands over, the complete check refuses.
    far = OrderRequest(1, 2, "BTCUSDT", Side.BUY, 1, 1_100_000, OrderType.LIMIT)
    assert risk.check(far, 11) is not None and risk._slow_checks == slow_checks + 1


# --- the loss evaluation against the previous code ---------------------------------------


class _PreviousEvaluation(RiskEngine):
    """The engine with the evaluation as it was before the one-loop version (the reference):
    ``evaluate`` calls ``_check_losses`` per account, which skips unchanged inputs."""

    def evaluate(self, now_ns: int, accounts: Iterable[int] | None = None) -> None:
        compiled = self._compiled
        for account in list(self._accounts) if accounts is None else accounts:
            rules = compiled.accounts.get(account) or compiled.account(account)
            if rules.check_losses:
                self._check_losses(account, rules, now_ns)

    _evaluate = evaluate

    def _check_losses(self, account: int, rules: _AccountRules, now_ns: int) -> None:
        st = self._account_state(account)
        equity = self._state.equity(account)
        day = now_ns // DAY_NS
        if (
            st.day == day
            and st.last_rules is rules
            and st.last_resets == self._resets
            and st.last_equity == equity
        ):
            return
        st.last_equity = equity
        st.last_rules = rules
        st.last_resets = self._resets
        if self._unevaluated:
            self._unevaluated.discard(account)
        if st.day is None or day > st.day:
            st.day = day
            st.day_start_equity = equity
            self.baseline_version += 1
        if st.peak_equity is None or equity > st.peak_equity:
            st.peak_equity = equity
            self.baseline_version += 1
        lim = rules.limits
        if lim.max_daily_loss is not None:
            loss = st.day_start_equity - equity
            if loss >= lim.max_daily_loss:
                self._trip(
                    account,
                    TripCause.MAX_DAILY_LOSS,
                    f"daily loss {loss} >= max_daily_loss {lim.max_daily_loss}",
                    now_ns,
                )
        if lim.max_drawdown is not None:
            dd = st.peak_equity - equity
            if dd >= lim.max_drawdown:
                self._trip(
                    account,
                    TripCause.MAX_DRAWDOWN,
                    f"drawdown {dd} from peak {st.peak_equity} >= max_drawdown {lim.max_drawdown}",
                    now_ns,
                )


def _loss_limits(rng: random.Random) -> RiskLimits:
    return RiskLimits(
        account_defaults=AccountLimits(
            max_daily_loss=rng.choice([None, Decimal("10"), Decimal("2.5")]),
            max_drawdown=rng.choice([None, Decimal("15"), Decimal("4")]),
        ),
        accounts={
            2: AccountLimits(max_daily_loss=Decimal("6")),
            3: AccountLimits(max_open_orders=5),
        }
        if rng.random() < 0.5
        else {},
    )


@pytest.mark.parametrize("seed", range(25))
def test_evaluate_equals_the_previous_evaluation(seed: int) -> None:
    rng = random.Random(seed)
    limits = _loss_limits(rng)
    state = InMemoryRiskState()
    state.bba["BTCUSDT"] = (999_999, 1_000_001)
    loss_on_order = rng.random() < 0.5
    sides: list[tuple[RiskEngine, list[RiskEvent], list[int | None]]] = []
    for cls in (RiskEngine, _PreviousEvaluation):
        events: list[RiskEvent] = []
        cancels: list[int | None] = []
        risk = cls(
            limits,
            state,
            [BTC],
            cancel_all=cancels.append,
            on_event=events.append,
            accounts=[1],
            loss_check_on_order=loss_on_order,
        )
        sides.append((risk, events, cancels))
    now = 0 if rng.random() < 0.3 else 3 * DAY_NS
    for step in range(500):
        now += rng.choice([0, 1, SEC, DAY_NS // 5, DAY_NS, -3])
        roll = rng.random()
        if roll < 0.45:
            acc = rng.choice(ACCOUNTS)
            if rng.random() < 0.8:
                state.equities[acc] = Decimal(rng.randint(-2_000, 2_000)) / 100
            subset: Any = rng.choice([None, {acc}, (acc, 4), [acc, acc]])
            for risk, _, _ in sides:
                risk.evaluate(now, subset)
        elif roll < 0.55:
            acc = rng.choice([None, *ACCOUNTS])
            for risk, _, _ in sides:
                risk.reset(acc, now)
        elif roll < 0.6:
            new = _loss_limits(rng)
            for risk, _, _ in sides:
                risk.update_limits(new, now)
        elif roll < 0.65:
            restored = {
                rng.choice(ACCOUNTS): LossBaseline(
                    now // DAY_NS + rng.choice([-1, 0]),
                    Decimal(rng.randint(-20, 20)),
                    Decimal(rng.randint(0, 30)),
                )
            }
            for risk, _, _ in sides:
                risk.restore_baselines(restored)
        else:
            req = OrderRequest(
                rng.choice(ACCOUNTS),
                step,
                "BTCUSDT",
                rng.choice([Side.BUY, Side.SELL]),
                rng.randint(1, 3),
                1_000_000,
                OrderType.LIMIT,
            )
            got = [risk.check(req, now) for risk, _, _ in sides]
            assert got[0] is got[1], step
        (a, ev_a, c_a), (b, ev_b, c_b) = sides
        assert ev_a == ev_b and c_a == c_b, step
        assert a.baselines() == b.baselines() and a.baseline_version == b.baseline_version
        assert a.kill_switch_state() == b.kill_switch_state() and a.trips == b.trips
        assert a._unevaluated == b._unevaluated and sorted(a._accounts) == sorted(b._accounts)
    assert sum(sides[0][0].trips.values()) > 0 or seed % 5 != 0


# --- the node's risk view ----------------------------------------------------------------


def test_the_nodes_pretrade_answers_as_its_separate_calls(tmp_path: Path) -> None:
    """When the node's risk view offers ``pretrade`` (PretradeState), it must give exactly
    what its separate calls give, at every order the node checks."""
    path = tmp_path / "node.toml"
    path.write_text(
        """
[node]
name = "pretrade"
symbols = ["FTMUSDT"]

[source]
recording = "embedded:2021-08-14"

[[strategy]]
name = "taker-ftm"
kind = "imbalance"
account = 1
initial_cash = "10000"
params = { symbol = "FTMUSDT", threshold = 0.2, order_qty = 20, max_position = 200 }

[risk.defaults]
max_position = 1000
price_band_bps = "500"

[risk.account_defaults]
max_open_orders = 100

[storage]
path = "node.sqlite"

[metrics]
enabled = false
"""
    )
    node = Node.from_file(path, watch_config=False, max_events=3_000)
    state = node.risk._state
    if not hasattr(state, "pretrade"):
        pytest.skip("the node's risk view has no pretrade (PretradeState) yet")
    seen: deque[tuple[Any, ...]] = deque()
    check = node.risk.check

    def compare(req: OrderRequest, now_ns: int) -> Any:
        bba = state.best_bid_ask(req.symbol)
        want = None
        if bba is not None:
            want = (
                *bba,
                state.position(req.account, req.symbol),
                state.open_qty(req.account, req.symbol, req.side),
                state.open_order_count(req.account),
            )
        got = state.pretrade(req.account, req.symbol, req.side)
        seen.append((got, want))  # compared after the run: the node catches what a
        return check(req, now_ns)  # strategy's call raises

    node.risk.check = compare  # type: ignore[method-assign]
    node.run()
    assert len(seen) > 10 and sum(want is not None for _, want in seen) > 10
    assert [(got, want) for got, want in seen if got != want] == []
