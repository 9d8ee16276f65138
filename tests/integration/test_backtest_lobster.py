"""The L3 backtester on the real AMZN LOBSTER day (2012-06-21, level 1, shipped in the package):
with no orders of ours, the replay through the backtester's code path (executions as aggressive
orders against the combined book, the L3 broker, the engine's loop) reproduces the recorded book
on every one of the 57,515 rows (the core's row check)."""

from __future__ import annotations

from pathlib import Path

from tradecore.backtest.config import parse_backtest_config
from tradecore.backtest.engine import engine_from_config
from tradecore.marketdata.lobster import LobsterReplay, embedded_samples


def test_amzn_day_reproduces_every_row_with_no_orders(tmp_path: Path) -> None:
    raw = {
        "backtest": {"mode": "l3", "name": "amzn"},
        "instrument": {"symbol": "AMZN", "tick_size": "0.0001", "lot_size": "1"},
        "data": [{"kind": "lobster", "path": "embedded:AMZN"}],
    }
    eng = engine_from_config(parse_backtest_config(raw, tmp_path / "bt.toml"))
    result = eng.run()
    rp = eng.l3_feed.replay  # type: ignore[attr-defined]
    st = rp.stats
    assert result.events == 57_515
    assert st.rows_checked == 57_515  # row 0 after the seed, then one row per message
    assert st.mismatches == 0 and st.drift_rows == 0 and rp.details == []
    assert st.executions == 8_974 and st.executions_short == 0
    # The same resyncs (levels entering the level-1 view) as the core's own replay.
    amzn = next(f for f in embedded_samples() if f.message.name.startswith("AMZN"))
    core = LobsterReplay.from_files(amzn).run()
    assert core.ok and st.resyncs == core.resyncs
    assert result.fills == []
