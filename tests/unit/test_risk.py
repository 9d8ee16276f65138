"""Pre-trade risk: one test per limit (both sides of each boundary), the kill switch on every
trigger, hot reload, config errors, and a property: nothing passes a tripped switch except
orders that reduce the position without flipping it."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tradecore import Instrument
from tradecore.enums import OrderType, Side, TimeInForce
from tradecore.errors import ConfigError
from tradecore.execution.types import Order, OrderRequest, OrderStatus
from tradecore.risk import (
    AccountLimits,
    RateLimit,
    RejectBurst,
    RiskEngine,
    RiskEvent,
    RiskEventKind,
    RiskLimits,
    RiskReason,
    SymbolLimits,
    TripCause,
)
from tradecore.risk.testing import InMemoryRiskState

BTC = Instrument("BTCUSDT", tick_size="0.01", lot_size="0.001")
ETH = Instrument("ETHUSDT", tick_size="0.1", lot_size="0.01")
ACCT = 7
SEC = 1_000_000_000


class Harness:
    def __init__(self, limits: RiskLimits, **kw: Any) -> None:
        self.state = InMemoryRiskState()
        self.state.bba["BTCUSDT"] = (999_999, 1_000_001)  # mid 10,000.00
        self.state.bba["ETHUSDT"] = (19_999, 20_001)  # mid 2,000.0
        self.cancels: list[int | None] = []
        self.events: list[RiskEvent] = []
        self.risk = RiskEngine(
            limits,
            self.state,
            [BTC, ETH],
            cancel_all=self.cancels.append,
            on_event=self.events.append,
            accounts=[ACCT],
            **kw,
        )
        self.coid = 0

    def req(
        self,
        side: Side = Side.BUY,
        qty: int = 1,
        price: int = 1_000_000,
        symbol: str = "BTCUSDT",
        account: int = ACCT,
        market: bool = False,
    ) -> OrderRequest:
        self.coid += 1
        return OrderRequest(
            account,
            self.coid,
            symbol,
            side,
            qty,
            0 if market else price,
            OrderType.MARKET if market else OrderType.LIMIT,
            TimeInForce.IOC if market else TimeInForce.GTC,
        )

    def check(self, now_ns: int = 0, **kw: Any) -> RiskReason | None:
        return self.risk.check(self.req(**kw), now_ns)


def _sym(**kw: Any) -> RiskLimits:
    return RiskLimits(defaults=SymbolLimits(**kw))


def _acct(**kw: Any) -> RiskLimits:
    return RiskLimits(account_defaults=AccountLimits(**kw))


def test_no_limits_pass_and_are_counted() -> None:
    h = Harness(RiskLimits())
    assert h.check() is None
    assert h.risk.checks == 1 and h.risk.passed == 1
    assert sum(h.risk.rejects.values()) == 0


def test_unknown_symbol_and_invalid_orders() -> None:
    h = Harness(RiskLimits())
    assert h.check(symbol="DOGEUSDT") is RiskReason.UNKNOWN_SYMBOL
    assert h.check(qty=0) is RiskReason.INVALID_ORDER
    assert h.check(price=0) is RiskReason.INVALID_ORDER
    assert h.check(market=True) is None  # a market order has no price
    assert h.risk.rejects[RiskReason.INVALID_ORDER] == 2


def test_max_order_qty() -> None:
    h = Harness(_sym(max_order_qty=100))
    assert h.check(qty=100) is None
    assert h.check(qty=101) is RiskReason.MAX_ORDER_QTY
    assert h.risk.rejects[RiskReason.MAX_ORDER_QTY] == 1
    [ev] = [e for e in h.events if e.kind is RiskEventKind.REJECT]
    assert ev.reason == "MAX_ORDER_QTY" and "101 > max_order_qty 100" in ev.detail
    assert ev.account == ACCT and ev.symbol == "BTCUSDT" and ev.client_order_id == 2


def test_per_symbol_override_merges_field_by_field() -> None:
    limits = RiskLimits(
        defaults=SymbolLimits(max_order_qty=100, max_position=1000),
        symbols={"ETHUSDT": SymbolLimits(max_order_qty=5)},
    )
    h = Harness(limits)
    assert limits.for_symbol("ETHUSDT") == SymbolLimits(max_order_qty=5, max_position=1000)
    assert h.check(symbol="ETHUSDT", qty=6, price=20_000) is RiskReason.MAX_ORDER_QTY
    assert h.check(symbol="BTCUSDT", qty=6) is None


def test_max_order_notional_is_exact() -> None:
    # 10,000.00 x 0.010 = 100.00 exactly: price 1,000,000 ticks x 10 lots
    h = Harness(_sym(max_order_notional=Decimal("100")))
    assert h.check(qty=10, price=1_000_000) is None
    assert h.check(qty=10, price=1_000_001) is RiskReason.MAX_ORDER_NOTIONAL
    # a market buy is valued at the ask (1,000,001): 10 lots is over by a cent's fraction
    assert h.check(qty=10, market=True) is RiskReason.MAX_ORDER_NOTIONAL
    assert h.check(qty=9, market=True) is None
    # a market sell is valued at the bid
    assert h.check(qty=10, side=Side.SELL, market=True) is None


def test_price_band_around_the_mid_in_bps() -> None:
    # mid 10,000.00; 50 bps = 50.00 = 5,000 ticks either side
    h = Harness(_sym(price_band_bps=Decimal("50")))
    assert h.check(price=1_005_000) is None
    assert h.check(price=1_005_001) is RiskReason.PRICE_BAND
    assert h.check(side=Side.SELL, price=995_000) is None
    assert h.check(side=Side.SELL, price=994_999) is RiskReason.PRICE_BAND
    assert h.check(market=True) is None  # no price to band
    # fractional bps are exact too: 0.5 bps = 50 ticks
    h2 = Harness(_sym(price_band_bps=Decimal("0.5")))
    assert h2.check(price=1_000_050) is None
    assert h2.check(price=1_000_051) is RiskReason.PRICE_BAND


def test_no_reference_price_when_the_book_is_one_sided() -> None:
    h = Harness(_sym(price_band_bps=Decimal("50")))
    del h.state.bba["BTCUSDT"]
    assert h.check() is RiskReason.NO_REFERENCE_PRICE


def test_max_position_counts_the_position_and_open_orders_on_the_same_side() -> None:
    h = Harness(_sym(max_position=100))
    h.state.pos[(ACCT, "BTCUSDT")] = 60
    h.state.open[(ACCT, "BTCUSDT", Side.BUY)] = 30
    assert h.check(qty=10) is None  # 60 + 30 + 10 = 100
    assert h.check(qty=11) is RiskReason.MAX_POSITION
    # selling: 60 - 0 - 160 = -100 is the floor
    assert h.check(side=Side.SELL, qty=160) is None
    assert h.check(side=Side.SELL, qty=161) is RiskReason.MAX_POSITION
    # other accounts are separate
    assert h.check(qty=100, account=8) is None


def test_max_gross_exposure_over_symbols_with_different_grids() -> None:
    # BTC position 0.500 (500 lots) at mid 10,000.00 = 5,000; ETH 1.00 (100 lots) at 2,000.0
    h = Harness(_acct(max_gross_exposure=Decimal("8000")))
    h.state.pos[(ACCT, "BTCUSDT")] = 500
    h.state.pos[(ACCT, "ETHUSDT")] = 100
    assert h.risk.gross_exposure(ACCT) == Decimal("7000")
    # buying 0.100 BTC more -> 6,000 + 2,000 = 8,000: at the limit, passes
    assert h.check(qty=100) is None
    assert h.check(qty=101) is RiskReason.MAX_GROSS_EXPOSURE
    # an order that shrinks the absolute position always passes
    assert h.check(side=Side.SELL, qty=500) is None
    # selling ETH below zero: |100 - 150| = 50 lots -> exposure shrinks, passes
    assert h.check(symbol="ETHUSDT", side=Side.SELL, qty=150, price=20_000) is None
    # a position in a symbol without any known mid cannot be valued: refuse to grow
    h.state.bba.pop("ETHUSDT")
    h2 = Harness(_acct(max_gross_exposure=Decimal("8000")))
    h2.state.pos[(ACCT, "ETHUSDT")] = 100
    del h2.state.bba["ETHUSDT"]
    assert h2.check(qty=1) is RiskReason.NO_REFERENCE_PRICE


def test_max_open_orders() -> None:
    h = Harness(_acct(max_open_orders=3))
    h.state.open_count[ACCT] = 2
    assert h.check() is None
    h.state.open_count[ACCT] = 3
    assert h.check() is RiskReason.MAX_OPEN_ORDERS


def test_rate_limit_token_bucket_on_the_callers_clock() -> None:
    h = Harness(_acct(rate_limit=RateLimit(Decimal(2), 3)))  # burst 3, 2 per second
    assert [h.check(now_ns=0) for _ in range(3)] == [None, None, None]
    assert h.check(now_ns=0) is RiskReason.RATE_LIMIT
    assert h.check(now_ns=SEC // 2 - 1) is RiskReason.RATE_LIMIT  # not quite one token yet
    assert h.check(now_ns=SEC // 2) is None
    assert h.check(now_ns=SEC // 2) is RiskReason.RATE_LIMIT
    # a long pause refills only up to the burst
    assert [h.check(now_ns=100 * SEC) for _ in range(4)] == [
        None,
        None,
        None,
        RiskReason.RATE_LIMIT,
    ]
    # a rejected order spends no token: a bad order does not eat the budget
    h2 = Harness(
        RiskLimits(
            defaults=SymbolLimits(max_order_qty=1),
            account_defaults=AccountLimits(rate_limit=RateLimit(Decimal("0.5"), 1)),
        )
    )
    assert h2.check(qty=2) is RiskReason.MAX_ORDER_QTY
    assert h2.check() is None
    assert h2.check(now_ns=2 * SEC - 1) is RiskReason.RATE_LIMIT  # 0.5/s: one token per 2 s
    assert h2.check(now_ns=2 * SEC) is None


def test_check_modify_replaces_the_orders_own_leaves() -> None:
    h = Harness(RiskLimits(defaults=SymbolLimits(max_position=100, price_band_bps=Decimal(50))))
    h.state.open_count[ACCT] = 1
    h.state.open[(ACCT, "BTCUSDT", Side.BUY)] = 80
    order = Order(
        h.req(qty=80), status=OrderStatus.ACKNOWLEDGED, price=1_000_000, qty=80, leaves=80
    )
    assert h.risk.check_modify(order, 1_000_000, 100, 0) is None  # 0 + (80 - 80) + 100
    assert h.risk.check_modify(order, 1_000_000, 101, 0) is RiskReason.MAX_POSITION
    assert h.risk.check_modify(order, 1_006_000, 10, 0) is RiskReason.PRICE_BAND
    h2 = Harness(_acct(max_open_orders=1))
    h2.state.open_count[ACCT] = 1
    assert h2.risk.check_modify(order, 1_000_000, 10, 0) is None  # a modify is no new order


# --- kill switch --------------------------------------------------------------------------


def _tripped_rules(h: Harness) -> None:
    """While tripped: non-reducing orders refused; reducing ones pass, never flipping."""
    h.state.pos[(ACCT, "BTCUSDT")] = 10
    assert h.check(side=Side.BUY, qty=1) is RiskReason.KILL_SWITCH
    assert h.check(side=Side.SELL, qty=11) is RiskReason.KILL_SWITCH  # would flip
    assert h.check(side=Side.SELL, qty=10) is None
    h.state.open[(ACCT, "BTCUSDT", Side.SELL)] = 6
    assert h.check(side=Side.SELL, qty=5) is RiskReason.KILL_SWITCH  # 6 open + 5 > 10
    assert h.check(side=Side.SELL, qty=4) is None
    h.state.pos[(ACCT, "BTCUSDT")] = 0
    assert h.check(side=Side.SELL, qty=1) is RiskReason.KILL_SWITCH
    assert h.check(side=Side.BUY, qty=1) is RiskReason.KILL_SWITCH
    h.state.pos[(ACCT, "BTCUSDT")] = -3
    h.state.open[(ACCT, "BTCUSDT", Side.SELL)] = 0
    assert h.check(side=Side.BUY, qty=3) is None
    assert h.check(side=Side.BUY, qty=3, market=True) is None
    assert h.check(side=Side.BUY, qty=4) is RiskReason.KILL_SWITCH
    h.state.pos[(ACCT, "BTCUSDT")] = 0


def _trip_event(h: Harness) -> RiskEvent:
    [ev] = [e for e in h.events if e.kind is RiskEventKind.KILL_SWITCH_TRIPPED]
    return ev


def test_kill_switch_by_command_for_all_accounts() -> None:
    h = Harness(RiskLimits())
    h.risk.kill("operator: flatten", now_ns=5)
    assert h.cancels == [None]
    ev = _trip_event(h)
    assert (ev.account, ev.reason, ev.detail, ev.ts_ns) == (None, "COMMAND", "operator: flatten", 5)
    assert h.risk.is_tripped(ACCT) and h.risk.is_tripped(999)
    _tripped_rules(h)
    h.risk.kill("again")  # already tripped: no second cancel-all
    assert h.cancels == [None] and h.risk.trips[TripCause.COMMAND] == 1
    h.risk.reset(now_ns=9)
    assert not h.risk.tripped
    assert h.check(qty=5) is None
    assert h.events[-1].kind is RiskEventKind.KILL_SWITCH_RESET


def test_kill_switch_by_command_for_one_account() -> None:
    h = Harness(RiskLimits())
    h.risk.kill("desk 7 only", account=ACCT)
    assert h.cancels == [ACCT]
    assert h.risk.is_tripped(ACCT) and not h.risk.is_tripped(8)
    assert h.check(account=8) is None
    _tripped_rules(h)
    assert h.risk.kill_switch_state()["accounts"] == {
        ACCT: {"cause": "COMMAND", "detail": "desk 7 only", "ts_ns": 0}
    }
    h.risk.reset(ACCT)
    assert not h.risk.tripped


def test_kill_switch_from_config_and_on_reload() -> None:
    h = Harness(RiskLimits(kill_switch=True))
    assert h.risk.is_tripped(ACCT) and h.cancels == [None]
    assert _trip_event(h).reason == "CONFIG"
    _tripped_rules(h)
    # reloading with kill_switch = false does not re-arm it; only reset does
    h.risk.update_limits(RiskLimits(kill_switch=False))
    assert h.risk.is_tripped(ACCT)
    h.risk.reset()
    h.risk.update_limits(RiskLimits(kill_switch=True), now_ns=3)
    assert h.risk.is_tripped(ACCT) and h.cancels == [None, None]


def test_kill_switch_on_max_daily_loss() -> None:
    h = Harness(_acct(max_daily_loss=Decimal("100")))
    h.state.equities[ACCT] = Decimal("1000")
    h.risk.evaluate(now_ns=1)  # baseline of the day: 1000
    h.state.equities[ACCT] = Decimal("900.01")
    assert h.check(now_ns=2) is None  # lost 99.99
    h.state.equities[ACCT] = Decimal("900")
    assert h.check(now_ns=3) is RiskReason.KILL_SWITCH  # lost 100: trips, then refuses
    ev = _trip_event(h)
    assert (ev.account, ev.reason) == (ACCT, "MAX_DAILY_LOSS") and "daily loss 100" in ev.detail
    assert h.cancels == [ACCT]
    _tripped_rules(h)


def test_daily_loss_baseline_moves_with_the_utc_day() -> None:
    day = 86_400 * SEC
    h = Harness(_acct(max_daily_loss=Decimal("100")))
    h.state.equities[ACCT] = Decimal("1000")
    h.risk.evaluate(now_ns=day - 1)
    h.state.equities[ACCT] = Decimal("950")
    h.risk.evaluate(now_ns=day)  # a new day: baseline 950
    h.state.equities[ACCT] = Decimal("860")
    h.risk.evaluate(now_ns=day + 1)  # 90 lost today, 140 since yesterday: not tripped
    assert not h.risk.tripped
    h.state.equities[ACCT] = Decimal("850")
    h.risk.evaluate(now_ns=day + 2)
    assert h.risk.is_tripped(ACCT)


def test_kill_switch_on_max_drawdown_from_the_peak() -> None:
    h = Harness(_acct(max_drawdown=Decimal("50")))
    for eq in ("1000", "1100", "1060"):
        h.state.equities[ACCT] = Decimal(eq)
        h.risk.evaluate(now_ns=1)
    assert not h.risk.tripped  # 40 below the peak of 1100
    h.state.equities[ACCT] = Decimal("1050")
    h.risk.evaluate(now_ns=2)
    assert h.risk.is_tripped(ACCT)
    assert _trip_event(h).reason == "MAX_DRAWDOWN"
    _tripped_rules(h)


def test_kill_switch_on_a_burst_of_rejects() -> None:
    h = Harness(
        RiskLimits(
            defaults=SymbolLimits(max_order_qty=1),
            account_defaults=AccountLimits(reject_burst=RejectBurst(3, SEC)),
        )
    )
    # three rejects spread wider than the window: no trip
    assert h.check(now_ns=0, qty=2) is RiskReason.MAX_ORDER_QTY
    assert h.check(now_ns=SEC // 2, qty=2) is RiskReason.MAX_ORDER_QTY
    assert h.check(now_ns=SEC + 1, qty=2) is RiskReason.MAX_ORDER_QTY
    assert not h.risk.tripped
    # a venue reject reported by the node completes a burst within the window
    h.risk.record_reject(ACCT, SEC + 2, "PRICE_OUT_OF_BAND")
    assert h.risk.is_tripped(ACCT)
    assert _trip_event(h).reason == "REJECT_BURST" and h.cancels == [ACCT]
    h.risk.update_limits(RiskLimits())  # lift the order size limit; the trip stays
    _tripped_rules(h)


# --- hot reload and config ----------------------------------------------------------------


def test_update_limits_is_atomic_and_keeps_bucket_state() -> None:
    h = Harness(
        RiskLimits(
            defaults=SymbolLimits(max_order_qty=10),
            account_defaults=AccountLimits(rate_limit=RateLimit(Decimal(1), 2)),
        )
    )
    assert h.check(qty=10) is None  # one token spent, one left
    h.risk.update_limits(
        RiskLimits(
            defaults=SymbolLimits(max_order_qty=5),
            account_defaults=AccountLimits(rate_limit=RateLimit(Decimal(1), 2)),
        ),
        now_ns=0,
    )
    assert h.check(qty=6) is RiskReason.MAX_ORDER_QTY
    assert h.check(qty=5) is None
    assert h.check(qty=5) is RiskReason.RATE_LIMIT  # the spent token was not refilled
    assert [e.kind for e in h.events].count(RiskEventKind.LIMITS_UPDATED) == 1
    with pytest.raises(TypeError):
        h.risk.update_limits({"defaults": {}})  # type: ignore[arg-type]
    assert h.risk.limits.defaults.max_order_qty == 5
    # a bad new set never reaches the engine: it fails while being built
    with pytest.raises(ConfigError, match="max_order_qty"):
        SymbolLimits(max_order_qty=0)


def test_from_config_full_table() -> None:
    limits = RiskLimits.from_config(
        {
            "kill_switch": False,
            "defaults": {
                "max_order_qty": 1000,
                "max_order_notional": "10000",
                "price_band_bps": 50,
            },
            "symbols": {"BTCUSDT": {"max_position": 200}},
            "account_defaults": {
                "max_open_orders": 20,
                "rate_limit": {"per_second": "50", "burst": 10},
                "max_daily_loss": "500",
                "reject_burst": {"count": 10, "window_ms": 1000},
            },
            "accounts": {"2": {"max_open_orders": 5}},
        }
    )
    btc = limits.for_symbol("BTCUSDT")
    assert btc == SymbolLimits(1000, 200, Decimal("10000"), Decimal(50))
    a2 = limits.for_account(2)
    assert a2.max_open_orders == 5 and a2.max_daily_loss == Decimal(500)
    assert a2.rate_limit == RateLimit(Decimal(50), 10)
    assert a2.reject_burst == RejectBurst(10, SEC)
    assert limits.for_account(3).max_open_orders == 20


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"default": {}}, "node.toml: risk: unknown field(s) default"),
        (
            {"defaults": {"max_order_qty": -5}},
            "risk.defaults.max_order_qty: must be an integer >= 1",
        ),
        ({"defaults": {"max_order_qty": 1.5}}, "risk.defaults.max_order_qty: must be an integer"),
        ({"defaults": {"max_order_notional": 100.5}}, 'got the float 100.5 (write it as "100.5")'),
        ({"defaults": {"price_band_bps": "abc"}}, "price_band_bps: 'abc' is not a decimal number"),
        ({"defaults": {"price_band_bps": "-1"}}, "price_band_bps: must be a positive number"),
        (
            {"symbols": {"BTCUSDT": {"max_pos": 1}}},
            "risk.symbols.BTCUSDT: unknown field(s) max_pos",
        ),
        ({"accounts": {"abc": {}}}, "risk.accounts.abc: account ids must be integers"),
        (
            {"account_defaults": {"rate_limit": {"per_second": "5"}}},
            "rate_limit: needs per_second and burst",
        ),
        (
            {"account_defaults": {"reject_burst": {"count": 0, "window_ms": 5}}},
            "reject_burst.count: must be an integer >= 1",
        ),
        ({"kill_switch": "yes"}, "risk.kill_switch: must be true or false"),
        ({"symbols": []}, "risk.symbols: must be a table"),
    ],
)
def test_from_config_errors_name_the_field(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        RiskLimits.from_config(table, where="node.toml: risk")
    assert message in str(info.value)


# --- the property: a tripped switch passes only reducing orders -------------------------------


@settings(max_examples=400, deadline=None)
@given(
    pos=st.integers(-50, 50),
    open_buy=st.integers(0, 60),
    open_sell=st.integers(0, 60),
    side=st.sampled_from(list(Side)),
    qty=st.integers(-2, 120),
    market=st.booleans(),
    scope_global=st.booleans(),
    tight=st.booleans(),
)
def test_nothing_but_reducing_orders_pass_a_tripped_switch(
    pos: int,
    open_buy: int,
    open_sell: int,
    side: Side,
    qty: int,
    market: bool,
    scope_global: bool,
    tight: bool,
) -> None:
    limits = RiskLimits(
        defaults=SymbolLimits(max_position=5, max_order_qty=30) if tight else SymbolLimits(),
        account_defaults=AccountLimits(max_gross_exposure=Decimal(1)) if tight else AccountLimits(),
    )
    h = Harness(limits)
    h.state.pos[(ACCT, "BTCUSDT")] = pos
    h.state.open[(ACCT, "BTCUSDT", Side.BUY)] = open_buy
    h.state.open[(ACCT, "BTCUSDT", Side.SELL)] = open_sell
    h.risk.kill("test", account=None if scope_global else ACCT)
    reason = h.check(side=side, qty=qty, market=market)
    open_same = open_buy if side is Side.BUY else open_sell
    signed = qty + open_same if side is Side.BUY else -(qty + open_same)
    worst = pos + signed  # every open order on the side and this one fill
    reducing = (
        qty > 0 and pos != 0 and abs(worst) <= abs(pos) and (worst == 0 or (worst > 0) == (pos > 0))
    )
    if reason is None:
        assert reducing, (pos, open_same, side, qty)
    elif reducing:
        # a reducing order may still fail an order-level check, never the kill switch
        assert reason is RiskReason.MAX_ORDER_QTY and qty > 30
    else:
        assert reason in (RiskReason.KILL_SWITCH, RiskReason.INVALID_ORDER)


# --- the fast path of check() against the complete check -----------------------------------


def _random_limits(rng: random.Random) -> RiskLimits:
    def maybe(value: Any) -> Any:
        return value if rng.random() < 0.6 else None

    sym = SymbolLimits(
        max_order_qty=maybe(rng.randint(1, 40)),
        max_position=maybe(rng.randint(0, 60)),
        max_order_notional=maybe(Decimal(rng.choice(["50", "200", "1000", "5000"]))),
        price_band_bps=maybe(Decimal(rng.choice(["1", "25", "100", "512.5"]))),
    )
    acct = AccountLimits(
        max_gross_exposure=maybe(Decimal(rng.choice(["100", "1000", "50000"]))),
        max_open_orders=maybe(rng.randint(0, 6)),
        rate_limit=maybe(RateLimit(Decimal(rng.choice(["0.5", "3", "1000"])), rng.randint(1, 5))),
        max_daily_loss=maybe(Decimal("100")),
        reject_burst=maybe(RejectBurst(rng.randint(2, 6), rng.choice([SEC, 60 * SEC]))),
    )
    overrides = (
        {"ETHUSDT": SymbolLimits(max_order_qty=rng.randint(1, 10))} if rng.random() < 0.3 else {}
    )
    return RiskLimits(defaults=sym, account_defaults=acct, symbols=overrides)


def _engine_snapshot(h: Harness) -> tuple[Any, ...]:
    r = h.risk
    tokens = {a: (st.tokens, st.tokens_ns) for a, st in sorted(r._accounts.items())}
    return (
        r.checks,
        r.passed,
        dict(r.rejects),
        dict(r.trips),
        r.kill_switch_state(),
        tokens,
        dict(r._mid2),
        list(h.events),
        list(h.cancels),
    )


@pytest.mark.parametrize("seed", range(40))
def test_fast_check_equals_the_complete_check_on_random_input(seed: int) -> None:
    """The fast path of ``check`` gives the same answers, counters, events, token buckets and
    trips as the complete check (``fast_check=False``) on seeded random orders, states and
    limits, including refusals of every kind, kills, resets and loss evaluations."""
    rng = random.Random(seed)
    limits = _random_limits(rng)
    loss_on_order = rng.random() < 0.3
    fast = Harness(limits, loss_check_on_order=loss_on_order)
    slow = Harness(limits, loss_check_on_order=loss_on_order, fast_check=False)
    assert fast.risk.fast_check and not slow.risk.fast_check
    slow.state = fast.state  # one state read by both
    slow.risk._state = fast.state
    state = fast.state
    accounts = [ACCT, 8, 9]
    symbols = ["BTCUSDT", "ETHUSDT", "DOGEUSDT"]
    mids = {"BTCUSDT": 1_000_000, "ETHUSDT": 20_000}
    now = 0
    passed = 0
    for step in range(400):
        now += rng.choice([0, 1, 1_000, SEC // 3, SEC, 5 * SEC])
        roll = rng.random()
        if roll < 0.12:
            acc, sym = rng.choice(accounts), rng.choice(symbols[:2])
            state.pos[(acc, sym)] = rng.randint(-30, 30)
        elif roll < 0.2:
            acc, sym = rng.choice(accounts), rng.choice(symbols[:2])
            state.open[(acc, sym, rng.choice([Side.BUY, Side.SELL]))] = rng.randint(0, 10)
            state.open_count[acc] = rng.randint(0, 7)
        elif roll < 0.26:
            sym = rng.choice(symbols[:2])
            if rng.random() < 0.2:
                state.bba.pop(sym, None)
            else:
                m = mids[sym] + rng.randint(-3_000, 3_000)
                state.bba[sym] = (m - rng.randint(1, 50), m + rng.randint(1, 50))
        elif roll < 0.28:
            acc = rng.choice([None, *accounts])
            for h in (fast, slow):
                h.risk.kill("test", acc, now)
        elif roll < 0.31:
            acc = rng.choice([None, *accounts])
            for h in (fast, slow):
                h.risk.reset(acc, now)
        elif roll < 0.34:
            state.equities[rng.choice(accounts)] = Decimal(rng.randint(-300, 300))
            for h in (fast, slow):
                h.risk.evaluate(now)
        else:
            sym = rng.choice(symbols if rng.random() < 0.1 else symbols[:2])
            base = mids.get(sym, 1_000)
            market = rng.random() < 0.15
            qty: Any = rng.choice([rng.randint(1, 12), rng.randint(1, 12), 0, -1, True, 2.0])
            price: Any = rng.choice(
                [base + rng.randint(-100, 100), base + rng.randint(-base // 20, base // 20), 0]
            )
            req = OrderRequest(
                rng.choice(accounts),
                step,
                sym,
                rng.choice([Side.BUY, Side.SELL]),
                qty,
                0 if market else price,
                OrderType.MARKET if market else OrderType.LIMIT,
                TimeInForce.IOC,
            )
            got = fast.risk.check(req, now)
            want = slow.risk.check(req, now)
            assert got is want, (step, req)
            passed += got is None
        assert _engine_snapshot(fast) == _engine_snapshot(slow), step
    assert fast.risk.checks > 0
    if seed == 0:
        assert passed > 0  # the fast path itself was taken
