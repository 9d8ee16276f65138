"""The trading node's configuration: a TOML file validated field by field.

Owns the schema of ``tradecore trade --config FILE`` (see ``config/node.example.toml``, which
documents every key). :func:`load_config` reads the file, validates it with pydantic models that
forbid unknown keys and refuse binary floats where money is meant, then hands the ``[risk]``
table to :meth:`tradecore.risk.RiskLimits.from_config` and each strategy's ``params`` to
:func:`tradecore.strategy.create_strategy`'s validation, so every wrong field is reported at
load time, never in the middle of a run.

Every problem raises :class:`tradecore.errors.ConfigError` whose message names the file and the
field: ``node.toml: broker.seed: must be an integer, got 'x'``. All problems found are listed
(``;``-separated), not only the first. Relative paths are relative to the file's directory.

Cost: read once at start-up and again when the file changes (hot reload of ``[risk]``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tradecore.errors import ConfigError

__all__ = [
    "EMBEDDED_RECORDING",
    "BrokerConfig",
    "LoadedConfig",
    "MetricsConfig",
    "NodeConfig",
    "NodeSection",
    "SourceConfig",
    "SourceKind",
    "StorageConfig",
    "StrategyConfig",
    "load_config",
    "parse_config",
]

#: ``source.recording`` value that selects the copy of the recordings shipped in the package.
EMBEDDED_RECORDING = "embedded"

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _decimal(value: object) -> Decimal:
    """A Decimal from a TOML string or integer; floats are refused (they are not exact)."""
    if isinstance(value, bool):
        raise ValueError('must be a decimal number as a string (e.g. "1.5"), got a boolean')
    if isinstance(value, float):
        raise ValueError(
            f'must be a decimal string such as "{value}" (binary floats are not accepted)'
        )
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal number") from None
        if not result.is_finite():
            raise ValueError(f"must be a finite number, got {value!r}")
        return result
    raise ValueError(f"must be a decimal string, got {type(value).__name__}")


DecimalField = Annotated[Decimal, BeforeValidator(_decimal)]


class SourceKind(StrEnum):
    """Where market data comes from."""

    RECORDED = "recorded"  # the recordings replayed in-process (offline; the default)
    SIMULATOR = "simulator"  # the local Binance simulator over loopback sockets
    LIVE = "live"  # Binance itself; only with ``tradecore trade --live``


class CancelModelName(StrEnum):
    """How the paper broker moves a resting order forward when its level shrinks."""

    PESSIMISTIC = "pessimistic"
    PROPORTIONAL = "proportional"


class ClockMode(StrEnum):
    """The node's clock: wall time, the events' own time, or chosen by the source."""

    AUTO = "auto"  # event clock for recorded and simulator sources, wall clock live
    WALL = "wall"
    EVENT = "event"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class NodeSection(_Model):
    """``[node]``: what the node trades and how it keeps time."""

    name: str = "tradecore-node"
    symbols: list[str] = Field(min_length=1)
    clock: Annotated[ClockMode, Field(strict=False)] = ClockMode.AUTO
    risk_check_interval_ms: int = Field(default=100, ge=1)
    config_poll_interval_ms: int = Field(default=500, ge=10)
    state_interval_ms: int = Field(default=1000, ge=10)
    # Move what exists at start-up (modules, config, books, a loaded recording) out of the
    # garbage collector's sight for the run (gc.freeze; undone at shutdown), so its full
    # collections scan only what the run itself keeps.
    gc_freeze: bool = True
    # Run the cyclic collector between market events instead of from inside whichever
    # allocation crosses its threshold (tradecore.node.gcpace): no collection lands between a
    # message being read and its order reaching the broker.
    gc_between_events: bool = True

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, symbols: list[str]) -> list[str]:
        out = []
        for s in symbols:
            if not s or not s.isalnum():
                raise ValueError(f"{s!r} is not a symbol (letters and digits, e.g. BTCUSDT)")
            out.append(s.upper())
        if len(set(out)) != len(out):
            raise ValueError(f"symbols repeat: {symbols}")
        return out


class SourceConfig(_Model):
    """``[source]``: recorded file, local simulator or live Binance."""

    kind: Annotated[SourceKind, Field(strict=False)] = SourceKind.RECORDED
    recording: str | list[str] = EMBEDDED_RECORDING
    speed: Annotated[float, Field(ge=0)] = 0.0
    max_events: int = Field(default=0, ge=0)
    url: str = ""

    @field_validator("speed", mode="before")
    @classmethod
    def _speed(cls, value: object) -> object:
        # A pacing factor is not money: ints and floats are both fine here.
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        if url and not url.startswith(("http://127.0.0.1", "http://[::1]", "http://localhost")):
            raise ValueError(f"must be a loopback http:// URL of the simulator, got {url!r}")
        return url


class StrategyConfig(_Model):
    """``[[strategy]]``: one strategy, its own account and its parameters."""

    name: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    account: int = Field(ge=1)
    initial_cash: DecimalField = Decimal(0)
    params: dict[str, Any] = Field(default_factory=dict)


class BrokerConfig(_Model):
    """``[broker]``: the paper broker's latency, fees, cancellation model and seed."""

    latency_us: int = Field(default=0, ge=0)
    cancel_latency_us: int = Field(default=0, ge=0)
    jitter_us: int = Field(default=0, ge=0)
    maker_fee_bps: DecimalField = Decimal(0)
    taker_fee_bps: DecimalField = Decimal(0)
    cancel_model: Annotated[CancelModelName, Field(strict=False)] = CancelModelName.PESSIMISTIC
    seed: int = 0

    @field_validator("maker_fee_bps", "taker_fee_bps")
    @classmethod
    def _fee(cls, value: Decimal) -> Decimal:
        if abs(value) > 1000:
            raise ValueError(f"must be within -1000..1000 basis points, got {value}")
        return value


class StorageConfig(_Model):
    """``[storage]``: the SQLite file (relative to the config file's directory)."""

    path: str = Field(min_length=1)


class MetricsConfig(_Model):
    """``[metrics]``: the HTTP port serving ``/metrics`` and the control endpoints."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)
    allow_remote: bool = False

    @model_validator(mode="after")
    def _loopback(self) -> MetricsConfig:
        if not self.allow_remote and self.host not in _LOOPBACK:
            raise ValueError(
                f"host {self.host!r} is not a loopback address; set allow_remote = true to "
                "listen on it"
            )
        return self


class NodeConfig(_Model):
    """The whole file. ``risk`` stays a table here; the risk layer validates it."""

    node: NodeSection
    source: SourceConfig = SourceConfig()
    strategy: list[StrategyConfig] = Field(default_factory=list)
    risk: dict[str, Any] = Field(default_factory=dict)
    broker: BrokerConfig = BrokerConfig()
    storage: StorageConfig
    metrics: MetricsConfig = MetricsConfig()

    @model_validator(mode="after")
    def _unique(self) -> NodeConfig:
        names = [s.name for s in self.strategy]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"strategy names must be unique, repeated: {', '.join(dup)}")
        accounts = [s.account for s in self.strategy]
        dup_acc = sorted({a for a in accounts if accounts.count(a) > 1})
        if dup_acc:
            raise ValueError(
                "each strategy has its own account; shared: " + ", ".join(str(a) for a in dup_acc)
            )
        return self


@dataclass(frozen=True)
class LoadedConfig:
    """A validated configuration and where it came from (paths resolved against ``base``)."""

    path: Path
    config: NodeConfig
    raw: dict[str, Any]

    @property
    def base(self) -> Path:
        """The directory relative paths are resolved against."""
        return self.path.parent

    def resolve(self, value: str) -> Path:
        """``value`` as a path: absolute as given, relative to the config file otherwise."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base / p).resolve()

    @property
    def storage_path(self) -> Path:
        """The SQLite file."""
        return self.resolve(self.config.storage.path)

    def risk_where(self) -> str:
        """The prefix risk errors are reported under: ``file: risk``."""
        return f"{self.path}: risk"


def _loc(loc: tuple[int | str, ...], raw: dict[str, Any]) -> str:
    """A pydantic error location as a dotted TOML path: ``strategy[1].account``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _message(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    msg = str(err.get("msg", "invalid"))
    if kind == "extra_forbidden":
        return "unknown key (not part of the node configuration)"
    if kind == "missing":
        return "required, missing"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    value = err.get("input")
    if kind not in ("missing",) and not isinstance(value, dict | list):
        return f"{msg}, got {value!r}"
    return msg


def format_validation_error(path: Path, exc: ValidationError, raw: dict[str, Any]) -> str:
    """One line naming the file and each wrong field."""
    parts = [f"{_loc(tuple(e['loc']), raw)}: {_message(dict(e))}" for e in exc.errors()]
    return f"{path}: " + "; ".join(parts)


def parse_config(
    raw: dict[str, Any], path: Path, *, live: bool = False, check_layers: bool = True
) -> LoadedConfig:
    """Validate an already parsed TOML table (``path`` is used in messages and for paths).

    ``live`` is True when the command line has ``--live``; a ``source.kind = "live"`` without it
    is refused. With ``check_layers`` the risk limits and every strategy's parameters are also
    validated by their own layers (strategies are built and dropped).
    """
    try:
        config = NodeConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc, raw)) from None
    if config.source.kind is SourceKind.LIVE and not live:
        raise ConfigError(
            f"{path}: source.kind: 'live' connects to Binance; pass --live on the command line "
            "to confirm (recorded and simulator sources run offline)"
        )
    symbols = set(config.node.symbols)
    for i, s in enumerate(config.strategy):
        sym = s.params.get("symbol")
        if isinstance(sym, str) and sym.upper() not in symbols:
            raise ConfigError(
                f"{path}: strategy[{i}].params.symbol: {sym!r} is not in node.symbols "
                f"({', '.join(config.node.symbols)})"
            )
    loaded = LoadedConfig(path=path, config=config, raw=raw)
    if check_layers:
        check_risk(loaded)
        check_strategies(loaded)
    return loaded


def check_risk(loaded: LoadedConfig) -> Any:
    """Validate ``[risk]`` with the risk layer; returns its ``RiskLimits``."""
    from tradecore.risk import RiskLimits

    return RiskLimits.from_config(loaded.config.risk, where=loaded.risk_where())


def check_strategies(loaded: LoadedConfig) -> None:
    """Build each strategy once so a wrong parameter is reported now (then drop it)."""
    from tradecore.strategy import create_strategy

    for i, s in enumerate(loaded.config.strategy):
        try:
            create_strategy(kind=s.kind, name=s.name, params=dict(s.params))
        except ConfigError as exc:
            raise ConfigError(f"{loaded.path}: strategy[{i}]: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{loaded.path}: strategy[{i}] ({s.name}): {exc}") from None


def read_toml(path: Path) -> dict[str, Any]:
    """The file's TOML table; ConfigError naming the file for a missing file or bad syntax."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def load_config(path: str | Path, *, live: bool = False, check_layers: bool = True) -> LoadedConfig:
    """Read and validate the node configuration at ``path`` (see :func:`parse_config`)."""
    p = Path(path)
    return parse_config(read_toml(p), p, live=live, check_layers=check_layers)
