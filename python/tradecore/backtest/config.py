"""The backtest configuration: one TOML file for ``tradecore backtest --config FILE``.

Owns the schema of a backtest run and its validation. The ``[[strategy]]``, ``[risk]`` and
``[broker]`` tables are exactly the trading node's (:mod:`tradecore.node.config`), validated by
the same models and layers, so a strategy section can be copied between a node configuration and
a backtest configuration unchanged. What is backtest-only:

* ``[backtest]``: ``name``, ``mode`` (``"l2"``: fills from the paper broker's queue model;
  ``"l3"``: LOBSTER data, our orders in the real matching book), ``out`` (the results
  directory, relative to the file), ``equity_interval_ms`` (equity sampling in simulated time;
  0 = after every event), ``risk_check_interval_ms``, ``chunk_rows`` (rows read per chunk),
  ``idealized`` (zero latency and ``optimistic_queue``: passive orders join at the front; for
  comparisons with the vectorized engine), ``on_strategy_error`` (``"stop"``: the run fails
  with an error naming the strategy and the event, no results are written; ``"continue"``: the
  node's behaviour, logged and counted), ``capital`` (money the statistics scale returns by;
  default each strategy's ``initial_cash``), ``report`` (write the HTML report and PNG).
* ``[instrument]``: symbol, tick and lot size of data that carries none (synthetic data,
  Parquet tables without ``tick_size``/``lot_size`` metadata, LOBSTER).
* ``[[data]]``: the sources merged by timestamp. ``kind`` is ``synthetic_quotes`` or
  ``synthetic_l2`` (``rows``, ``seed``), ``parquet`` (``path`` of a ``quotes`` or ``trades``
  table), ``recording`` (``path``: a cryptofeed directory, a node ``.jsonl.gz`` recording, or
  ``embedded``), or ``lobster`` (``path`` of a message file, its orderbook twin beside it, or
  ``embedded:AMZN`` / ``embedded:AAPL``; L3 mode only).

Every problem is a :class:`~tradecore.errors.ConfigError` naming the file and the field
(``bt.toml: data[0].rows: Input should be greater than or equal to 1, got 0``). Cost: read once.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from tradecore.errors import ConfigError
from tradecore.node.config import (
    BrokerConfig,
    StrategyConfig,
    check_risk,
    format_validation_error,
    read_toml,
)

__all__ = [
    "BacktestConfig",
    "BacktestSection",
    "DataConfig",
    "DataKind",
    "InstrumentConfig",
    "LoadedBacktest",
    "Mode",
    "load_backtest_config",
    "parse_backtest_config",
]


def _decimal(value: object) -> Decimal:
    if isinstance(value, bool | float):
        raise ValueError("must be a decimal string or an integer (floats are not exact)")
    if isinstance(value, int | str | Decimal):
        try:
            d = Decimal(str(value))
        except ArithmeticError:
            raise ValueError(f"{value!r} is not a decimal number") from None
        if not d.is_finite():
            raise ValueError("must be finite")
        return d
    raise ValueError("must be a decimal string or an integer")


DecimalField = Annotated[Decimal, BeforeValidator(_decimal)]


class Mode(StrEnum):
    """How our orders are filled."""

    L2 = "l2"
    L3 = "l3"


class DataKind(StrEnum):
    """What a ``[[data]]`` entry reads."""

    SYNTHETIC_QUOTES = "synthetic_quotes"
    SYNTHETIC_L2 = "synthetic_l2"
    PARQUET = "parquet"
    RECORDING = "recording"
    LOBSTER = "lobster"


class OnError(StrEnum):
    """What a strategy exception does to the run."""

    STOP = "stop"
    CONTINUE = "continue"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class BacktestSection(_Model):
    """``[backtest]``: the run itself."""

    name: str = "backtest"
    mode: Annotated[Mode, Field(strict=False)] = Mode.L2
    out: str = ""
    equity_interval_ms: int = Field(default=1000, ge=0)
    risk_check_interval_ms: int = Field(default=100, ge=1)
    chunk_rows: int = Field(default=65_536, ge=1)
    idealized: bool = False
    on_strategy_error: Annotated[OnError, Field(strict=False)] = OnError.STOP
    capital: DecimalField | None = None
    report: bool = True


class InstrumentConfig(_Model):
    """``[instrument]``: the grid of data that carries none."""

    symbol: str = Field(min_length=1)
    tick_size: DecimalField = Decimal("0.01")
    lot_size: DecimalField = Decimal(1)


class DataConfig(_Model):
    """``[[data]]``: one source; merged with the others by timestamp (ties: file order)."""

    kind: Annotated[DataKind, Field(strict=False)]
    path: str = ""
    symbol: str = ""
    rows: int = Field(default=0, ge=0)
    seed: int = 1
    trade_share: Annotated[float, Field(ge=0, lt=1, strict=False)] = 0.2

    @model_validator(mode="after")
    def _fields(self) -> DataConfig:
        needs_path = self.kind in (DataKind.PARQUET, DataKind.RECORDING, DataKind.LOBSTER)
        if needs_path and not self.path:
            raise ValueError(f"kind {self.kind.value!r} needs a path")
        synthetic = self.kind in (DataKind.SYNTHETIC_QUOTES, DataKind.SYNTHETIC_L2)
        if synthetic and self.rows < 1:
            raise ValueError(f"kind {self.kind.value!r} needs rows >= 1")
        return self


class BacktestConfig(_Model):
    """The whole file."""

    backtest: BacktestSection = BacktestSection()
    instrument: InstrumentConfig | None = None
    data: list[DataConfig] = Field(min_length=1)
    strategy: list[StrategyConfig] = Field(default_factory=list)
    risk: dict[str, Any] = Field(default_factory=dict)
    broker: BrokerConfig = BrokerConfig()

    @model_validator(mode="after")
    def _consistent(self) -> BacktestConfig:
        names = [s.name for s in self.strategy]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"strategy names must be unique, repeated: {', '.join(dup)}")
        accounts = [s.account for s in self.strategy]
        dup_acc = sorted({a for a in accounts if accounts.count(a) > 1})
        if dup_acc:
            raise ValueError(
                "each strategy has its own account; shared: " + ", ".join(map(str, dup_acc))
            )
        lobster = [d for d in self.data if d.kind is DataKind.LOBSTER]
        if self.backtest.mode is Mode.L3:
            if len(lobster) != 1 or len(self.data) != 1:
                raise ValueError("mode 'l3' takes exactly one [[data]] of kind 'lobster'")
        elif lobster:
            raise ValueError("data of kind 'lobster' needs backtest.mode = 'l3'")
        return self


@dataclass(frozen=True)
class LoadedBacktest:
    """A validated backtest configuration and its file (relative paths resolve against it)."""

    path: Path
    config: BacktestConfig
    raw: dict[str, Any]

    def resolve(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.path.parent / p).resolve()

    @property
    def out_dir(self) -> Path | None:
        out = self.config.backtest.out
        return self.resolve(out) if out else None

    def risk_where(self) -> str:
        return f"{self.path}: risk"


def parse_backtest_config(raw: dict[str, Any], path: Path) -> LoadedBacktest:
    """Validate a parsed TOML table; the risk limits and strategies by their own layers."""
    try:
        config = BacktestConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc, raw)) from None
    loaded = LoadedBacktest(path, config, raw)
    check_risk(loaded)  # type: ignore[arg-type]  # duck-typed: .config.risk and .risk_where()
    from tradecore.strategy import create_strategy

    for i, s in enumerate(config.strategy):
        try:
            create_strategy(kind=s.kind, name=s.name, params=dict(s.params))
        except ConfigError as exc:
            raise ConfigError(f"{path}: strategy[{i}]: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: strategy[{i}] ({s.name}): {exc}") from None
    return loaded


def load_backtest_config(path: str | Path) -> LoadedBacktest:
    """Read and validate the backtest configuration at ``path``."""
    p = Path(path)
    return parse_backtest_config(read_toml(p), p)
