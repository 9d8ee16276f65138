"""Risk limits: what the pre-trade checks enforce, validated, immutable, loadable from TOML.

Owns: :class:`SymbolLimits` (per symbol: order size, position, order notional, price band),
:class:`AccountLimits` (per account: gross exposure, open orders, order rate, daily loss,
drawdown, reject burst), :class:`RiskLimits` (defaults plus overrides, and the config kill
switch) and :meth:`RiskLimits.from_config`, which reads the node config's ``[risk]`` table.

Units: quantities in lots of the symbol's instrument (``int``), money in the quote currency
(``Decimal``; a config gives it as a string or an int, never a float), the price band in basis
points (``Decimal``), times in the config in milliseconds. ``None`` means "no limit".

Invariants: every instance is valid (checked in ``__post_init__``) and frozen, so the engine
can swap a whole set atomically (hot reload). Overrides merge field by field over the
defaults: a symbol section that sets only ``max_order_qty`` keeps the default position limit.
Errors are :class:`~tradecore.errors.ConfigError` naming the field's full path
(``node.toml: risk.symbols.BTCUSDT.max_order_qty: must be an integer >= 1, got -5``).

Cost: construction and reload only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal, InvalidOperation
from typing import Any, Self, TypeVar

from tradecore.errors import ConfigError

__all__ = ["AccountLimits", "RateLimit", "RejectBurst", "RiskLimits", "SymbolLimits"]


def _int(path: str, value: object, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{path}: must be an integer >= {lo}, got {value!r}")
    if value < lo:
        raise ConfigError(f"{path}: must be an integer >= {lo}, got {value}")
    return value


def _money(path: str, value: object) -> Decimal:
    """A positive finite Decimal from a Decimal, int or decimal string (never a float)."""
    if isinstance(value, float):
        raise ConfigError(
            f"{path}: must be a decimal string or an integer, got the float {value!r} "
            f'(write it as "{value}")'
        )
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise ConfigError(f"{path}: must be a decimal string or an integer, got {value!r}")
    try:
        d = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise ConfigError(f"{path}: {value!r} is not a decimal number") from None
    if not d.is_finite() or d <= 0:
        raise ConfigError(f"{path}: must be a positive number, got {value!r}")
    return d


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Token bucket: ``burst`` orders at once, refilled at ``per_second`` orders per second."""

    per_second: Decimal
    burst: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "per_second", _money("rate_limit.per_second", self.per_second))
        _int("rate_limit.burst", self.burst, 1)


@dataclass(frozen=True, slots=True)
class RejectBurst:
    """Trip the kill switch after ``count`` rejects within ``window_ns`` nanoseconds."""

    count: int
    window_ns: int

    def __post_init__(self) -> None:
        _int("reject_burst.count", self.count, 1)
        _int("reject_burst.window_ns", self.window_ns, 1)


@dataclass(frozen=True, slots=True)
class SymbolLimits:
    """Per-symbol limits (``None`` = no limit)."""

    max_order_qty: int | None = None  # lots per order
    max_position: int | None = None  # lots, absolute, counting open orders on the same side
    max_order_notional: Decimal | None = None  # quote currency per order
    price_band_bps: Decimal | None = None  # |limit price - mid| / mid, basis points

    def __post_init__(self) -> None:
        if self.max_order_qty is not None:
            _int("max_order_qty", self.max_order_qty, 1)
        if self.max_position is not None:
            _int("max_position", self.max_position, 0)
        if self.max_order_notional is not None:
            object.__setattr__(
                self, "max_order_notional", _money("max_order_notional", self.max_order_notional)
            )
        if self.price_band_bps is not None:
            object.__setattr__(
                self, "price_band_bps", _money("price_band_bps", self.price_band_bps)
            )

    def merged(self, override: SymbolLimits) -> SymbolLimits:
        """These limits with every field ``override`` sets replaced."""
        return _merge(self, override)


@dataclass(frozen=True, slots=True)
class AccountLimits:
    """Per-account limits (``None`` = no limit)."""

    max_gross_exposure: Decimal | None = None  # sum over symbols of |position| * mid
    max_open_orders: int | None = None
    rate_limit: RateLimit | None = None
    max_daily_loss: Decimal | None = None  # equity at the day's start minus equity now
    max_drawdown: Decimal | None = None  # peak equity minus equity now
    reject_burst: RejectBurst | None = None

    def __post_init__(self) -> None:
        for name in ("max_gross_exposure", "max_daily_loss", "max_drawdown"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _money(name, value))
        if self.max_open_orders is not None:
            _int("max_open_orders", self.max_open_orders, 0)
        if self.rate_limit is not None and not isinstance(self.rate_limit, RateLimit):
            raise ConfigError(f"rate_limit: must be a RateLimit, got {self.rate_limit!r}")
        if self.reject_burst is not None and not isinstance(self.reject_burst, RejectBurst):
            raise ConfigError(f"reject_burst: must be a RejectBurst, got {self.reject_burst!r}")

    def merged(self, override: AccountLimits) -> AccountLimits:
        """These limits with every field ``override`` sets replaced."""
        return _merge(self, override)


_L = TypeVar("_L", SymbolLimits, AccountLimits)


def _merge(base: _L, override: _L) -> _L:
    changes = {
        f.name: getattr(override, f.name)
        for f in fields(override)
        if getattr(override, f.name) is not None
    }
    return replace(base, **changes)


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """All limits of a node: defaults, per-symbol and per-account overrides, kill switch."""

    defaults: SymbolLimits = field(default_factory=SymbolLimits)
    symbols: Mapping[str, SymbolLimits] = field(default_factory=dict)
    account_defaults: AccountLimits = field(default_factory=AccountLimits)
    accounts: Mapping[int, AccountLimits] = field(default_factory=dict)
    kill_switch: bool = False  # trip at start (and on reload); reset only by command

    def __post_init__(self) -> None:
        if not isinstance(self.defaults, SymbolLimits):
            raise ConfigError(f"defaults: must be SymbolLimits, got {self.defaults!r}")
        if not isinstance(self.account_defaults, AccountLimits):
            raise ConfigError(
                f"account_defaults: must be AccountLimits, got {self.account_defaults!r}"
            )
        for sym, lim in self.symbols.items():
            if not isinstance(sym, str) or not isinstance(lim, SymbolLimits):
                raise ConfigError(f"symbols.{sym}: must map a symbol name to SymbolLimits")
        for acct, alim in self.accounts.items():
            if isinstance(acct, bool) or not isinstance(acct, int):
                raise ConfigError(f"accounts.{acct!r}: account ids must be integers")
            if not isinstance(alim, AccountLimits):
                raise ConfigError(f"accounts.{acct}: must be AccountLimits")
        if not isinstance(self.kill_switch, bool):
            raise ConfigError(f"kill_switch: must be true or false, got {self.kill_switch!r}")
        # Freeze the mappings so a caller's dict cannot change limits behind the engine's back.
        object.__setattr__(self, "symbols", dict(self.symbols))
        object.__setattr__(self, "accounts", dict(self.accounts))

    def for_symbol(self, symbol: str) -> SymbolLimits:
        """The effective limits of ``symbol`` (defaults merged with its override)."""
        override = self.symbols.get(symbol)
        return self.defaults if override is None else self.defaults.merged(override)

    def for_account(self, account: int) -> AccountLimits:
        """The effective limits of ``account`` (defaults merged with its override)."""
        override = self.accounts.get(account)
        return self.account_defaults if override is None else self.account_defaults.merged(override)

    # --- config ----------------------------------------------------------------------------

    @classmethod
    def from_config(cls, table: Mapping[str, Any] | None, where: str = "risk") -> Self:
        """Read a ``[risk]`` table (see the module notes); ConfigError naming ``where.field``."""
        if table is None:
            return cls()
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}: must be a table, got {type(table).__name__}")
        _known(table, where, {"kill_switch", "defaults", "symbols", "account_defaults", "accounts"})
        kill = table.get("kill_switch", False)
        if not isinstance(kill, bool):
            raise ConfigError(f"{where}.kill_switch: must be true or false, got {kill!r}")
        defaults = _symbol_limits(table.get("defaults"), f"{where}.defaults")
        symbols: dict[str, SymbolLimits] = {}
        for sym, sub in _table(table.get("symbols"), f"{where}.symbols").items():
            symbols[str(sym)] = _symbol_limits(sub, f"{where}.symbols.{sym}")
        acct_defaults = _account_limits(table.get("account_defaults"), f"{where}.account_defaults")
        accounts: dict[int, AccountLimits] = {}
        for key, sub in _table(table.get("accounts"), f"{where}.accounts").items():
            try:
                acct = int(key)
            except ValueError:
                raise ConfigError(
                    f"{where}.accounts.{key}: account ids must be integers, got {key!r}"
                ) from None
            accounts[acct] = _account_limits(sub, f"{where}.accounts.{key}")
        return cls(defaults, symbols, acct_defaults, accounts, kill)


def _table(value: object, path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: must be a table, got {value!r}")
    return value


def _known(table: Mapping[str, Any], path: str, known: set[str]) -> None:
    unknown = sorted(str(k) for k in table if k not in known)
    if unknown:
        raise ConfigError(
            f"{path}: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )


def _symbol_limits(value: object, path: str) -> SymbolLimits:
    t = _table(value, path)
    _known(t, path, {"max_order_qty", "max_position", "max_order_notional", "price_band_bps"})
    qty = t.get("max_order_qty")
    pos = t.get("max_position")
    notional = t.get("max_order_notional")
    band = t.get("price_band_bps")
    return SymbolLimits(
        max_order_qty=None if qty is None else _int(f"{path}.max_order_qty", qty, 1),
        max_position=None if pos is None else _int(f"{path}.max_position", pos, 0),
        max_order_notional=None
        if notional is None
        else _money(f"{path}.max_order_notional", notional),
        price_band_bps=None if band is None else _money(f"{path}.price_band_bps", band),
    )


def _account_limits(value: object, path: str) -> AccountLimits:
    t = _table(value, path)
    _known(
        t,
        path,
        {
            "max_gross_exposure",
            "max_open_orders",
            "rate_limit",
            "max_daily_loss",
            "max_drawdown",
            "reject_burst",
        },
    )
    money: dict[str, Decimal | None] = {}
    for name in ("max_gross_exposure", "max_daily_loss", "max_drawdown"):
        v = t.get(name)
        money[name] = None if v is None else _money(f"{path}.{name}", v)
    open_orders = t.get("max_open_orders")
    rate: RateLimit | None = None
    if t.get("rate_limit") is not None:
        r = _table(t["rate_limit"], f"{path}.rate_limit")
        _known(r, f"{path}.rate_limit", {"per_second", "burst"})
        if "per_second" not in r or "burst" not in r:
            raise ConfigError(f"{path}.rate_limit: needs per_second and burst")
        rate = RateLimit(
            _money(f"{path}.rate_limit.per_second", r["per_second"]),
            _int(f"{path}.rate_limit.burst", r["burst"], 1),
        )
    burst: RejectBurst | None = None
    if t.get("reject_burst") is not None:
        b = _table(t["reject_burst"], f"{path}.reject_burst")
        _known(b, f"{path}.reject_burst", {"count", "window_ms"})
        if "count" not in b or "window_ms" not in b:
            raise ConfigError(f"{path}.reject_burst: needs count and window_ms")
        burst = RejectBurst(
            _int(f"{path}.reject_burst.count", b["count"], 1),
            _int(f"{path}.reject_burst.window_ms", b["window_ms"], 1) * 1_000_000,
        )
    return AccountLimits(
        max_gross_exposure=money["max_gross_exposure"],
        max_open_orders=None
        if open_orders is None
        else _int(f"{path}.max_open_orders", open_orders, 0),
        rate_limit=rate,
        max_daily_loss=money["max_daily_loss"],
        max_drawdown=money["max_drawdown"],
        reject_burst=burst,
    )
