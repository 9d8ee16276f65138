"""The node's TOML configuration: the example loads, every wrong field is named with its file."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from tradecore.errors import ConfigError, UsageError
from tradecore.node.config import (
    ClockMode,
    SourceKind,
    load_config,
    parse_config,
)

REPO = Path(__file__).parents[2]
EXAMPLE = REPO / "config" / "node.example.toml"

MINIMAL = """
[node]
symbols = ["FTMUSDT"]

[[strategy]]
name = "imb"
kind = "imbalance"
account = 1
params = { symbol = "FTMUSDT" }

[storage]
path = "node.sqlite"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text)
    return path


def test_the_example_config_is_valid() -> None:
    loaded = load_config(EXAMPLE)
    cfg = loaded.config
    assert cfg.source.kind is SourceKind.RECORDED
    assert cfg.node.clock is ClockMode.AUTO
    assert [s.account for s in cfg.strategy] == [1, 2, 3]
    assert loaded.storage_path == (REPO / "target" / "node" / "example.sqlite").resolve()


def test_minimal_config_gets_defaults(tmp_path: Path) -> None:
    loaded = load_config(_write(tmp_path, MINIMAL))
    cfg = loaded.config
    assert cfg.metrics.host == "127.0.0.1" and cfg.metrics.port == 9464
    assert cfg.broker.seed == 0 and cfg.source.recording == "embedded"
    assert loaded.storage_path == tmp_path / "node.sqlite"


def test_config_error_is_a_usage_error() -> None:
    assert issubclass(ConfigError, UsageError)


BAD_FIELDS = [
    # (change to MINIMAL, expected field in the message, expected fragment)
    ('[broker]\nseed = "x"\n', "broker.seed", "integer"),
    ("[broker]\nmaker_fee_bps = 1.5\n", "broker.maker_fee_bps", "binary floats"),
    ('[broker]\ntaker_fee_bps = "abc"\n', "broker.taker_fee_bps", "not a decimal"),
    ('[broker]\ncancel_model = "optimistic"\n', "broker.cancel_model", "pessimistic"),
    ("[broker]\nlatency_us = -1\n", "broker.latency_us", "greater than or equal"),
    ('[broker]\ncolour = "red"\n', "broker.colour", "unknown key"),
    ('[metrics]\nhost = "0.0.0.0"\n', "metrics", "loopback"),
    ("[metrics]\nport = 70000\n", "metrics.port", "less than or equal"),
    ('[source]\nkind = "carrier-pigeon"\n', "source.kind", "recorded"),
    ("[source]\nspeed = -2\n", "source.speed", "greater than or equal"),
    ('[source]\nurl = "http://example.com:80"\n', "source.url", "loopback"),
    ('[source]\nkind = "live"\n', "source.kind", "--live"),
    ("[node.extra]\nx = 1\n", "node.extra", "unknown key"),
]


@pytest.mark.parametrize(("extra", "field", "fragment"), BAD_FIELDS)
def test_each_wrong_field_is_named(tmp_path: Path, extra: str, field: str, fragment: str) -> None:
    path = _write(tmp_path, MINIMAL + extra)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: "), msg
    assert field in msg, msg
    assert fragment in msg, msg
    assert "\n" not in msg


def test_all_errors_are_listed(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL + '[broker]\nseed = "x"\njitter_us = -5\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "broker.seed" in str(info.value) and "broker.jitter_us" in str(info.value)


def test_missing_sections_are_named(tmp_path: Path) -> None:
    path = _write(tmp_path, '[node]\nsymbols = ["X"]\n')
    with pytest.raises(ConfigError, match=r"storage: required, missing"):
        load_config(path)


def test_strategy_problems(tmp_path: Path) -> None:
    dup = MINIMAL + '[[strategy]]\nname = "imb"\nkind = "imbalance"\naccount = 2\n'
    with pytest.raises(ConfigError, match="strategy names must be unique"):
        load_config(_write(tmp_path, dup))
    shared = MINIMAL.replace('name = "imb"', 'name = "a"') + (
        '[[strategy]]\nname = "b"\nkind = "imbalance"\naccount = 1\n'
        'params = { symbol = "FTMUSDT" }\n'
    )
    with pytest.raises(ConfigError, match="own account"):
        load_config(_write(tmp_path, shared))
    with pytest.raises(ConfigError, match=r"strategy\[0\].*threshold"):
        load_config(_write(tmp_path, MINIMAL.replace('FTMUSDT" }', 'FTMUSDT", threshold = 7 }')))
    with pytest.raises(ConfigError, match=r"strategy\[0\].*(kind|known)"):
        load_config(_write(tmp_path, MINIMAL.replace('"imbalance"', '"astrology"')))
    with pytest.raises(ConfigError, match=r"strategy\[0\]\.params\.symbol.*not in node\.symbols"):
        load_config(
            _write(tmp_path, MINIMAL.replace('{ symbol = "FTMUSDT" }', '{ symbol = "BTC" }'))
        )


def test_risk_errors_are_named_by_the_risk_layer(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL + "[risk.defaults]\nmax_order_qty = -3\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: risk.defaults.max_order_qty"), str(info.value)


def test_toml_syntax_and_missing_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[node\nsymbols = 3")
    with pytest.raises(ConfigError, match=re.escape(f"{path}: invalid TOML")):
        load_config(path)
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "absent.toml")
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(binary)


def test_live_is_accepted_only_with_the_flag(tmp_path: Path) -> None:
    raw = tomllib.loads(MINIMAL + '[source]\nkind = "live"\n')
    loaded = parse_config(raw, tmp_path / "x.toml", live=True)
    assert loaded.config.source.kind is SourceKind.LIVE
