"""Built-in strategies: decisions on crafted books, parameter validation, the registry."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from tradecore import Instrument
from tradecore.enums import Side, TimeInForce
from tradecore.errors import ConfigError
from tradecore.execution.types import Fill, Order, OrderStatus
from tradecore.strategy import (
    Context,
    ImbalanceStrategy,
    MaCrossStrategy,
    MeanReversionStrategy,
    Strategy,
    available_strategies,
    create_strategy,
    register,
)
from tradecore.strategy.testing import DictBook, RecordingContext

SYM = "NKNUSDT"
INST = Instrument(SYM, tick_size="0.0001", lot_size="0.1")


def _ctx(**kw: Any) -> RecordingContext:
    return RecordingContext([INST], **kw)


def _book(bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> DictBook:
    return DictBook(bids, asks)


def _imb(**params: object) -> ImbalanceStrategy:
    base: dict[str, object] = {"symbol": SYM, "threshold": 0.3, "order_qty": 5, "max_position": 10}
    base.update(params)
    s = create_strategy("imbalance", "imb", base)
    assert isinstance(s, ImbalanceStrategy)
    return s


BUY_BOOK = ([(1000, 50), (999, 10)], [(1001, 5), (1002, 10)])  # I_n = 45/75 = 0.6
SELL_BOOK = ([(1000, 5), (999, 10)], [(1001, 50), (1002, 10)])  # I_n = -0.6
FLAT_BOOK = ([(1000, 10), (999, 10)], [(1001, 10), (1002, 12)])  # I_n = -2/42


# --- imbalance ----------------------------------------------------------------------------


def test_recording_context_satisfies_the_protocol() -> None:
    assert isinstance(_ctx(), Context)


def test_imbalance_buy_signal_sends_an_ioc_at_the_ask_with_its_confidence() -> None:
    ctx = _ctx()
    s = ctx.start(_imb())
    assert isinstance(s, ImbalanceStrategy)
    ctx.book_update(SYM, _book(*BUY_BOOK))
    # strength (0.6 - 0.3) / 0.7; depth-weighted (50+5 vs 5+5) and touch (50 vs 5) agree: 3/3
    assert s.signal == 1
    assert s.confidence == pytest.approx(0.3 / 0.7)
    [o] = ctx.submitted
    assert (o.side, o.qty, o.price, o.request.tif) == (Side.BUY, 5, 1001, TimeInForce.IOC)
    assert o.request.account == 1 and o.request.strategy == "test" and o.request.tag == "imbalance"


def test_imbalance_sell_signal_sells_at_the_bid_minus_slippage() -> None:
    ctx = _ctx()
    s = ctx.start(_imb(slippage_ticks=2))
    ctx.book_update(SYM, _book(*SELL_BOOK))
    assert s.signal == -1  # type: ignore[attr-defined]
    [o] = ctx.submitted
    assert (o.side, o.qty, o.price) == (Side.SELL, 5, 998)


def test_imbalance_below_threshold_does_nothing() -> None:
    ctx = _ctx()
    s = ctx.start(_imb())
    ctx.book_update(SYM, _book(*FLAT_BOOK))
    assert s.signal == 0 and not ctx.submitted  # type: ignore[attr-defined]


def test_imbalance_confidence_counts_disagreeing_depth_and_touch() -> None:
    # top-3: bids 10+10+60 = 80, asks 20+5+5 = 30 -> I_n = 50/110 (buy);
    # touch 10 vs 20 disagrees; depth-weighted (decay 0.5): 10+5+15 = 30 vs 20+2.5+1.25 = 23.75
    # agrees -> agreement 2/3
    ctx = _ctx()
    s = ctx.start(_imb(levels=3, threshold=0.2))
    ctx.book_update(
        SYM, _book([(1000, 10), (999, 10), (998, 60)], [(1001, 20), (1002, 5), (1003, 5)])
    )
    strength = (50 / 110 - 0.2) / 0.8
    assert s.confidence == pytest.approx(strength * 2 / 3)  # type: ignore[attr-defined]


def test_imbalance_min_confidence_filters_weak_signals() -> None:
    ctx = _ctx()
    s = ctx.start(_imb(min_confidence=0.5))
    ctx.book_update(SYM, _book(*BUY_BOOK))  # confidence 0.43
    assert s.signal == 1 and not ctx.submitted  # type: ignore[attr-defined]


def test_imbalance_scales_size_by_confidence() -> None:
    ctx = _ctx()
    ctx.start(_imb(order_qty=10, scale_by_confidence=True))
    ctx.book_update(SYM, _book(*BUY_BOOK))
    assert ctx.submitted[0].qty == round(10 * 0.3 / 0.7)  # 4


def test_imbalance_waits_for_its_ioc_then_stops_at_max_position() -> None:
    ctx = _ctx()
    ctx.start(_imb(order_qty=6, max_position=10))
    ctx.book_update(SYM, _book(*BUY_BOOK))
    first = ctx.submitted[0]
    ctx.book_update(SYM)  # the IOC is still open: nothing new
    assert len(ctx.submitted) == 1
    ctx.fill(first.client_order_id, 6)
    ctx.book_update(SYM)
    second = ctx.submitted[1]
    assert (second.side, second.qty) == (Side.BUY, 4)  # only the room left to +10
    ctx.fill(second.client_order_id, 3)
    ctx.done(second.client_order_id)  # IOC remainder cancelled
    ctx.book_update(SYM)
    assert ctx.submitted[2].qty == 1
    ctx.fill(ctx.submitted[2].client_order_id)
    assert ctx.position(SYM) == 10
    ctx.book_update(SYM)
    assert len(ctx.submitted) == 3  # at the target
    # The signal flips: go to -10, at most order_qty per order.
    ctx.book_update(SYM, _book(*SELL_BOOK))
    assert (ctx.submitted[3].side, ctx.submitted[3].qty) == (Side.SELL, 6)


def test_imbalance_cooldown_uses_the_context_clock() -> None:
    ctx = _ctx()
    ctx.start(_imb(cooldown_ms=100))
    ctx.book_update(SYM, _book(*BUY_BOOK))
    ctx.done(ctx.submitted[0].client_order_id)  # nothing filled
    ctx.now += 99_999_999
    ctx.book_update(SYM)
    assert len(ctx.submitted) == 1
    ctx.now += 1
    ctx.book_update(SYM)
    assert len(ctx.submitted) == 2


def test_imbalance_maker_joins_the_touch_moves_with_it_and_cancels_on_flip() -> None:
    ctx = _ctx()
    ctx.start(_imb(mode="maker"))
    ctx.book_update(SYM, _book(*BUY_BOOK))
    [o] = ctx.submitted
    assert (o.side, o.price, o.request.post_only, o.request.tif) == (
        Side.BUY,
        1000,
        True,
        TimeInForce.GTC,
    )
    ctx.book_update(SYM, _book([(1001, 50), (1000, 10)], [(1002, 5), (1003, 10)]))
    assert ctx.modifies == [(o.client_order_id, 1001, 5)]
    assert o.price == 1001
    ctx.book_update(SYM, _book(*SELL_BOOK))
    assert ctx.cancels == [o.client_order_id]
    ctx.book_update(SYM)
    assert (ctx.submitted[-1].side, ctx.submitted[-1].price) == (Side.SELL, 1001)


def test_imbalance_skips_wide_spreads_and_resets_on_resync() -> None:
    ctx = _ctx()
    s = ctx.start(_imb(max_spread_ticks=1))
    ctx.book_update(SYM, _book([(1000, 50)], [(1003, 5)]))
    assert not ctx.submitted
    ctx.resync(SYM)
    assert not s.features.valid  # type: ignore[attr-defined]


def test_imbalance_long_only_never_sells_short() -> None:
    ctx = _ctx()
    ctx.start(_imb(allow_short=False))
    ctx.book_update(SYM, _book(*SELL_BOOK))
    assert not ctx.submitted


def test_imbalance_ignores_other_symbols() -> None:
    other = Instrument("OTHER", "0.01", "1")
    ctx = RecordingContext([INST, other])
    ctx.start(_imb())
    ctx.book_update("OTHER", _book(*BUY_BOOK))
    assert not ctx.submitted


# --- moving-average cross -----------------------------------------------------------------


def _feed_mids(ctx: RecordingContext, mids2: list[int]) -> None:
    for m in mids2:
        ctx.book_update(SYM, _book([(m // 2 - 1, 1)], [(m - m // 2 + 1, 1)]))


def test_ma_cross_golden_then_death_cross() -> None:
    ctx = _ctx()
    s = ctx.start(
        create_strategy(
            "ma_cross",
            "ma",
            {"symbol": SYM, "fast": 2, "slow": 3, "max_position": 4, "order_qty": 4},
        )
    )
    assert isinstance(s, MaCrossStrategy)
    _feed_mids(ctx, [2000, 1990, 1980])  # falling: fast < slow, the first regime, no trade
    assert s.regime == -1 and not ctx.submitted
    _feed_mids(ctx, [1990])  # fast (1980+1990)/2 = 1985 vs slow 1986.67: still below
    assert not ctx.submitted
    _feed_mids(ctx, [2010])  # fast 2000 > slow 1993.3: golden cross
    assert s.crosses == 1 and s.target == 4
    [o] = ctx.submitted
    assert (o.side, o.qty) == (Side.BUY, 4)
    ctx.fill(o.client_order_id)
    _feed_mids(ctx, [1950, 1900])  # fast 1925 < slow 1953.3: death cross -> -4
    assert s.crosses == 2 and s.target == -4
    assert (ctx.submitted[-1].side, ctx.submitted[-1].qty) == (Side.SELL, 4)


def test_ma_cross_exact_tie_keeps_the_regime() -> None:
    ctx = _ctx()
    s = ctx.start(create_strategy("ma_cross", "ma", {"symbol": SYM, "fast": 1, "slow": 2}))
    _feed_mids(ctx, [2000, 2010])  # fast 2010 > slow 2005: regime +1
    assert s.regime == 1  # type: ignore[attr-defined]
    _feed_mids(ctx, [2010])  # fast == slow exactly: no cross
    assert s.regime == 1 and s.crosses == 0  # type: ignore[attr-defined]


def test_ma_cross_samples_on_a_timer() -> None:
    ctx = _ctx()
    s = ctx.start(
        create_strategy("ma_cross", "ma", {"symbol": SYM, "fast": 1, "slow": 2, "sample_ms": 100})
    )
    assert "ma:sample" in ctx.timers
    ctx.books[SYM] = _book([(999, 1)], [(1001, 1)])
    ctx.book_update(SYM)  # book updates do not sample in timer mode
    assert s.window.count == 0  # type: ignore[attr-defined]
    ctx.advance(250_000_000)
    assert s.window.count == 2  # type: ignore[attr-defined]


# --- mean reversion -----------------------------------------------------------------------


def test_mean_reversion_sells_above_the_band_and_exits_near_the_mean() -> None:
    ctx = _ctx()
    s = ctx.start(
        create_strategy(
            "mean_reversion",
            "mr",
            {
                "symbol": SYM,
                "window": 4,
                "entry_z": 1.5,
                "exit_z": 0.5,
                "max_position": 3,
                "order_qty": 3,
            },
        )
    )
    assert isinstance(s, MeanReversionStrategy)
    _feed_mids(ctx, [2000, 2000, 2000])
    assert not ctx.submitted
    _feed_mids(ctx, [2000])  # std 0: no signal
    assert s.z == 0.0 and not ctx.submitted
    _feed_mids(ctx, [2040])  # window 2000 2000 2000 2040: mean 2010, std sqrt(300) -> z = sqrt(3)
    assert s.z == pytest.approx(30 / 300**0.5)
    [o] = ctx.submitted
    assert (o.side, o.qty) == (Side.SELL, 3)
    ctx.fill(o.client_order_id)
    _feed_mids(ctx, [2020])  # window 2000 2000 2040 2020: mean 2015, z = 5/sqrt(275) = 0.3
    assert abs(s.z) <= 0.5 and s.target == 0
    assert (ctx.submitted[-1].side, ctx.submitted[-1].qty) == (Side.BUY, 3)


def test_mean_reversion_buys_below_the_band() -> None:
    ctx = _ctx()
    s = ctx.start(
        create_strategy("mean_reversion", "mr", {"symbol": SYM, "window": 4, "entry_z": 1.5})
    )
    _feed_mids(ctx, [2000, 2000, 2000, 1960])
    assert s.target == 10  # type: ignore[attr-defined]
    assert ctx.submitted[0].side is Side.BUY


# --- validation and the registry -----------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("imbalance", {}, "strategy 'x' (imbalance): symbol: is required"),
        ("imbalance", {"symbol": SYM, "threshold": 1.0}, "threshold: must be in (0.0, 1.0)"),
        ("imbalance", {"symbol": SYM, "threshold": "0.3"}, "threshold: must be a number"),
        ("imbalance", {"symbol": SYM, "levels": 0}, "levels: must be >= 1"),
        ("imbalance", {"symbol": SYM, "order_qty": 1.5}, "order_qty: must be an integer"),
        ("imbalance", {"symbol": SYM, "order_qty": True}, "order_qty: must be an integer"),
        ("imbalance", {"symbol": SYM, "mode": "both"}, "mode: must be one of taker, maker"),
        ("imbalance", {"symbol": SYM, "mode": "maker", "slippage_ticks": 1}, "slippage_ticks"),
        ("imbalance", {"symbol": SYM, "treshold": 0.3}, "unknown parameter(s) treshold"),
        ("ma_cross", {"symbol": SYM, "fast": 10, "slow": 10}, "slow: must be greater than fast"),
        ("ma_cross", {"symbol": SYM, "sample_ms": -1}, "sample_ms: must be >= 0"),
        ("mean_reversion", {"symbol": SYM, "entry_z": 1.0, "exit_z": 1.0}, "exit_z: must be less"),
        ("mean_reversion", {"symbol": SYM, "window": 1}, "window: must be >= 2"),
        ("onnx", {"symbol": SYM}, "model: is required"),
        ("onnx", {"symbol": SYM, "model": "/nonexistent.onnx"}, "no such file"),
    ],
)
def test_bad_parameters_raise_config_errors_naming_them(
    kind: str, params: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        create_strategy(kind, "x", params)
    assert message in str(info.value)


def test_registry_knows_the_built_ins_and_import_paths() -> None:
    assert {"imbalance", "ma_cross", "mean_reversion", "onnx"} <= set(available_strategies())
    with pytest.raises(ConfigError, match=r"unknown strategy kind 'nope'.*imbalance"):
        create_strategy("nope", "x", {})
    s = create_strategy("tradecore.strategy.imbalance:ImbalanceStrategy", "y", {"symbol": SYM})
    assert isinstance(s, ImbalanceStrategy) and s.name == "y" and s.symbols == (SYM,)
    with pytest.raises(ConfigError, match="cannot import"):
        create_strategy("tradecore.nothing:Foo", "x", {})
    with pytest.raises(ConfigError, match="not a Strategy subclass"):
        create_strategy("tradecore.instrument:Instrument", "x", {})


class _Echo(Strategy):
    kind = "echo_test"

    def __init__(self, name: str, **params: object) -> None:
        super().__init__(name, [str(params.get("symbol", SYM))])
        self.seen: list[str] = []

    def on_fill(self, fill: Fill) -> None:
        self.seen.append(f"fill {fill.qty}")

    def on_order(self, order: Order) -> None:
        self.seen.append(f"order {order.status}")

    def on_timer(self, name: str, now_ns: int) -> None:
        self.seen.append(f"timer {name} {now_ns}")


def test_custom_strategy_gets_callbacks_through_the_context() -> None:
    register("echo_test", _Echo)
    with pytest.raises(ValueError, match="already registered"):
        register("echo_test", ImbalanceStrategy)
    s = create_strategy("echo_test", "e", {})
    assert isinstance(s, _Echo)
    with pytest.raises(RuntimeError, match="not attached"):
        s.ctx.now_ns()
    ctx = _ctx()
    ctx.start(s)
    with pytest.raises(RuntimeError, match="already attached"):
        s.attach(ctx)
    o = ctx.submit_limit(SYM, Side.BUY, 3, 1000)
    ctx.ack(o.client_order_id)
    ctx.fill(o.client_order_id, 1)
    ctx.set_timer("t", 10, repeat=False)
    ctx.advance(100)
    assert s.seen == [
        "order ACKNOWLEDGED",
        "fill 1",
        "order PARTIALLY_FILLED",
        "timer t 10",
    ]
    assert ctx.position(SYM) == 1 and o.status is OrderStatus.PARTIALLY_FILLED
    with pytest.raises(TypeError, match="qty must be an int"):
        ctx.submit_limit(SYM, Side.BUY, 1.0, 1000)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="price must be > 0"):
        ctx.submit_limit(SYM, Side.BUY, 1, 0)


def test_state_round_trip() -> None:
    s = _imb()
    s.target = 7
    s.signals = 3
    t = _imb()
    t.restore(s.state())
    assert (t.target, t.signals) == (7, 3)
    m = create_strategy("ma_cross", "m", {"symbol": SYM})
    m.restore({"target": 2, "regime": -1, "crosses": 5})
    assert m.state() == {"target": 2, "regime": -1, "crosses": 5}


def test_recording_context_average_cost_pnl() -> None:
    ctx = _ctx()
    ctx.start(_Echo("e"))
    ctx.books[SYM] = _book([(1010, 1)], [(1012, 1)])
    a = ctx.submit_limit(SYM, Side.BUY, 10, 1000)
    ctx.fill(a.client_order_id)
    b = ctx.submit_limit(SYM, Side.SELL, 4, 1005)
    ctx.fill(b.client_order_id)
    # realized 4 lots * 5 ticks = 20 tick-lots = 20 * 0.0001 * 0.1
    assert ctx.realized_pnl() == ctx.realized_pnl(SYM) == Decimal("0.0002")
    # unrealized: 6 lots, mark 1011 vs cost 1000: 66 tick-lots
    assert ctx.unrealized_pnl() == Decimal("0.00066")
    assert ctx.equity() == Decimal("0.00086")
