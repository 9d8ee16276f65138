"""Strategy and risk configuration as users write it: the example node config and a table of
broken configs with the error each must give (tests/golden/strategy/bad_configs.toml)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from tradecore.errors import ConfigError
from tradecore.risk import RiskLimits
from tradecore.strategy import create_strategy

REPO = Path(__file__).resolve().parents[2]
BAD = tomllib.loads((REPO / "tests" / "golden" / "strategy" / "bad_configs.toml").read_text())
EXAMPLE = REPO / "examples" / "all_strategies.toml"


@pytest.mark.parametrize("case", BAD["strategy_case"], ids=lambda c: f"{c['kind']}")
def test_bad_strategy_configs(case: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    with pytest.raises(ConfigError) as info:
        create_strategy(case["kind"], "case", case["params"])
    assert case["error"] in str(info.value)


@pytest.mark.parametrize("case", BAD["risk_case"], ids=lambda c: c["error"][:40])
def test_bad_risk_configs(case: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as info:
        RiskLimits.from_config(case["risk"], where="file.toml: risk")
    assert case["error"] in str(info.value)


def test_example_config_builds_every_strategy_and_the_limits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(REPO)  # the ONNX model path is relative to the working directory
    config = tomllib.loads(EXAMPLE.read_text())
    kinds = set()
    for table in config["strategy"]:
        s = create_strategy(table["kind"], table["name"], table["params"])
        assert s.name == table["name"] and s.symbols == (table["params"]["symbol"],)
        kinds.add(table["kind"])
    assert kinds == {"imbalance", "ma_cross", "mean_reversion", "onnx"}
    limits = RiskLimits.from_config(config["risk"], where=f"{EXAMPLE.name}: risk")
    assert limits.for_symbol("XMRBTC").max_order_qty == 10
    assert limits.for_symbol("XMRBTC").max_position == 5000
    assert limits.for_account(4).max_open_orders == 10
    assert str(limits.for_account(4).max_daily_loss) == "0.01"
