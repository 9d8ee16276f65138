"""Loss baselines survive a restart: the day's starting equity (``max_daily_loss``) and the
peak equity (``max_drawdown``) are stored with the node's state and reloaded, so restarting a
node cannot reset the day's loss. Real node, real recording, real SQLite file."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from tradecore import Instrument
from tradecore.enums import OrderType, Side
from tradecore.execution.types import OrderRequest
from tradecore.node.node import Node
from tradecore.risk import AccountLimits, LossBaseline, RiskEngine, RiskEventKind, RiskLimits
from tradecore.risk.testing import InMemoryRiskState
from tradecore.store import Store


def _config(tmp: Path, daily: str, drawdown: str | None = None) -> Path:
    extra = f'\nmax_drawdown = "{drawdown}"' if drawdown is not None else ""
    text = f"""
[node]
name = "baselines"
symbols = ["FTMUSDT"]
risk_check_interval_ms = 100

[source]
recording = "embedded:2021-08-14"

[[strategy]]
name = "taker-ftm"
kind = "imbalance"
account = 1
initial_cash = "10000"
params = {{ symbol = "FTMUSDT", threshold = 0.2, order_qty = 20, max_position = 200 }}

[risk.account_defaults]
max_daily_loss = "{daily}"{extra}

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


def _trips(node: Node) -> list[str]:
    trips: list[str] = []
    on_event = node.risk._on_event

    def spy(ev: object) -> None:
        if getattr(ev, "kind", None) is RiskEventKind.KILL_SWITCH_TRIPPED:
            trips.append(ev.reason)  # type: ignore[attr-defined]
        if on_event is not None:
            on_event(ev)  # type: ignore[arg-type]

    node.risk._on_event = spy
    return trips


def test_the_days_loss_is_not_forgotten_by_a_restart(tmp_path: Path) -> None:
    # Run 1 loses fees but stays inside a wide limit.
    first = Node.from_file(_config(tmp_path, "1000"), watch_config=False, max_events=3_000)
    assert _trips(first) == []
    first.run()
    lost = Decimal(10_000) - first.portfolio.equity(1)
    assert lost > 0, "the taker strategy must have paid fees"
    (row,) = Store(tmp_path / "node.sqlite").risk_baselines()
    assert row.account == 1 and row.day_start_equity == Decimal(10_000)
    assert row.peak_equity >= Decimal(10_000)

    # Run 2 on the same store, with the limit lowered below what run 1 already lost and no
    # new fills: the loss since the day started (before the restart) trips the switch at
    # the first evaluation. A baseline taken at the restart would see no loss at all.
    limit = (lost * Decimal("0.9")).quantize(Decimal("0.00000001"))
    second = Node.from_file(_config(tmp_path, str(limit)), watch_config=False, max_events=1)
    trips = _trips(second)
    second.run()
    assert trips == ["MAX_DAILY_LOSS"]
    assert second.risk.is_tripped(1)


def test_a_restart_with_no_loss_yet_does_not_trip_and_keeps_the_stored_day(
    tmp_path: Path,
) -> None:
    first = Node.from_file(_config(tmp_path, "1000"), watch_config=False, max_events=1)
    first.run()
    before = Store(tmp_path / "node.sqlite").risk_baselines()
    second = Node.from_file(_config(tmp_path, "1000"), watch_config=False, max_events=1)
    trips = _trips(second)
    second.run()
    assert trips == []
    after = Store(tmp_path / "node.sqlite").risk_baselines()
    assert [(r.account, r.day, r.day_start_equity) for r in after] == [
        (r.account, r.day, r.day_start_equity) for r in before
    ]


# --- the engine alone --------------------------------------------------------------------

DAY = 86_400 * 1_000_000_000
BTC = Instrument("BTCUSDT", tick_size="0.01", lot_size="0.001")


def _engine(daily: str, drawdown: str | None = None) -> tuple[RiskEngine, InMemoryRiskState]:
    state = InMemoryRiskState()
    state.bba["BTCUSDT"] = (999_999, 1_000_001)
    limits = RiskLimits(
        account_defaults=AccountLimits(
            max_daily_loss=Decimal(daily),
            max_drawdown=None if drawdown is None else Decimal(drawdown),
        )
    )
    risk = RiskEngine(limits, state, [BTC], accounts=[1], loss_check_on_order=False)
    return risk, state


def _order(coid: int) -> OrderRequest:
    return OrderRequest(1, coid, "BTCUSDT", Side.BUY, 1, 1_000_000, OrderType.LIMIT)


def test_baselines_round_trip_and_version_moves_only_with_them() -> None:
    risk, state = _engine("100")
    state.equities[1] = Decimal(1000)
    v0 = risk.baseline_version
    risk.evaluate(5 * DAY + 1)
    assert risk.baselines() == {1: LossBaseline(5, Decimal(1000), Decimal(1000))}
    v1 = risk.baseline_version
    assert v1 > v0
    state.equities[1] = Decimal(990)  # a loss: neither baseline moves
    risk.evaluate(5 * DAY + 2)
    assert risk.baseline_version == v1
    state.equities[1] = Decimal(1010)  # a new peak
    risk.evaluate(5 * DAY + 3)
    assert risk.baselines()[1].peak_equity == Decimal(1010)
    assert risk.baseline_version > v1


def test_a_restored_loss_trips_at_the_first_order_check_even_without_loss_checks() -> None:
    risk, state = _engine("50")
    risk.restore_baselines({1: LossBaseline(5, Decimal(1000), Decimal(1000))})
    state.equities[1] = Decimal(940)  # 60 lost earlier the same day, before the restart
    assert risk.check(_order(1), 5 * DAY + 10) is not None
    assert risk.is_tripped(1)
    # Once evaluated, orders go back to skipping the loss check (loss_check_on_order=False).
    risk2, state2 = _engine("50")
    risk2.restore_baselines({1: LossBaseline(5, Decimal(1000), Decimal(1000))})
    state2.equities[1] = Decimal(990)
    assert risk2.check(_order(1), 5 * DAY + 10) is None
    state2.equities[1] = Decimal(900)
    assert risk2.check(_order(2), 5 * DAY + 11) is None  # the node's evaluate catches this
    risk2.evaluate(5 * DAY + 12)
    assert risk2.is_tripped(1)


def test_a_later_day_starts_a_new_baseline_an_earlier_clock_does_not() -> None:
    risk, state = _engine("50", drawdown="80")
    risk.restore_baselines({1: LossBaseline(5, Decimal(1000), Decimal(1100))})
    state.equities[1] = Decimal(990)
    risk.evaluate(0)  # an event clock before its first event: the restored day stays
    assert risk.baselines()[1] == LossBaseline(5, Decimal(1000), Decimal(1100))
    risk.evaluate(6 * DAY)  # the next day: a new daily baseline; the peak carries over
    assert risk.baselines()[1] == LossBaseline(6, Decimal(990), Decimal(1100))
    state.equities[1] = Decimal(1019)  # 81 below the restored peak: drawdown trips
    risk.evaluate(6 * DAY + 1)
    assert risk.is_tripped(1)


def test_restore_rejects_what_is_not_a_baseline() -> None:
    risk, _ = _engine("50")
    with pytest.raises(TypeError, match="account 1"):
        risk.restore_baselines({1: (5, Decimal(1), Decimal(1))})  # type: ignore[dict-item]
