"""Validation of strategy parameters (from a config file or keyword arguments).

Owns: :class:`ParamReader`, which takes a strategy's raw parameters (a mapping of names to TOML
values), hands out each one checked for type and range, and at the end refuses names nobody
asked for. Every error is a :class:`~tradecore.errors.ConfigError` whose message names the
strategy, its kind and the parameter: ``strategy 'imb1' (imbalance): threshold: must be in
(0, 1), got 1.5``.

Invariants: ``bool`` is never accepted as a number (TOML ``true`` is not ``1``); ints are
accepted where floats are expected; floats are refused where ints (lots, ticks, counts) are.

Cost: construction time only, never on the hot path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from tradecore.errors import ConfigError

__all__ = ["MISSING", "ParamReader"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: object = _Missing()


class ParamReader:
    """Typed, range-checked access to one strategy's raw parameters."""

    def __init__(self, kind: str, name: str, params: Mapping[str, object]) -> None:
        self.where = f"strategy {name!r} ({kind})"
        if not isinstance(params, Mapping):
            raise ConfigError(f"{self.where}: params must be a table, got {type(params).__name__}")
        for key in params:
            if not isinstance(key, str):
                raise ConfigError(f"{self.where}: parameter names must be strings, got {key!r}")
        self._params = dict(params)
        self._used: set[str] = set()

    def error(self, key: str, message: str) -> ConfigError:
        """A ConfigError about parameter ``key``."""
        return ConfigError(f"{self.where}: {key}: {message}")

    def _get(self, key: str, default: object) -> object:
        self._used.add(key)
        if key in self._params:
            return self._params[key]
        if default is MISSING:
            raise self.error(key, "is required")
        return default

    def string(
        self, key: str, default: object = MISSING, *, choices: Sequence[str] | None = None
    ) -> str:
        value = self._get(key, default)
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, got {value!r}")
        if not value:
            raise self.error(key, "must not be empty")
        if choices is not None and value not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}; got {value!r}")
        return value

    def boolean(self, key: str, default: object = MISSING) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, got {value!r}")
        return value

    def integer(
        self, key: str, default: object = MISSING, *, ge: int | None = None, le: int | None = None
    ) -> int:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be an integer, got {value!r}")
        if ge is not None and value < ge:
            raise self.error(key, f"must be >= {ge}, got {value}")
        if le is not None and value > le:
            raise self.error(key, f"must be <= {le}, got {value}")
        return value

    def number(
        self,
        key: str,
        default: object = MISSING,
        *,
        gt: float | None = None,
        ge: float | None = None,
        lt: float | None = None,
        le: float | None = None,
    ) -> float:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"must be a number, got {value!r}")
        x = float(value)
        if not math.isfinite(x):
            raise self.error(key, f"must be a finite number, got {value!r}")
        lo = "" if gt is None and ge is None else ("(" if gt is not None else "[")
        lo_v = gt if gt is not None else ge
        hi = "" if lt is None and le is None else (")" if lt is not None else "]")
        hi_v = lt if lt is not None else le
        bad = (
            (gt is not None and not x > gt)
            or (ge is not None and not x >= ge)
            or (lt is not None and not x < lt)
            or (le is not None and not x <= le)
        )
        if bad:
            if lo and hi:
                raise self.error(key, f"must be in {lo}{lo_v}, {hi_v}{hi}, got {value!r}")
            if lo:
                op = ">" if gt is not None else ">="
                raise self.error(key, f"must be {op} {lo_v}, got {value!r}")
            op = "<" if lt is not None else "<="
            raise self.error(key, f"must be {op} {hi_v}, got {value!r}")
        return x

    def int_list(
        self, key: str, default: object = MISSING, *, ge: int = 1, le: int | None = None
    ) -> tuple[int, ...]:
        value = self._get(key, default)
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise self.error(key, f"must be a list of integers, got {value!r}")
        out: list[int] = []
        for i, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, int):
                raise self.error(f"{key}[{i}]", f"must be an integer, got {item!r}")
            if item < ge or (le is not None and item > le):
                bound = f">= {ge}" if le is None else f"in [{ge}, {le}]"
                raise self.error(f"{key}[{i}]", f"must be {bound}, got {item}")
            out.append(item)
        return tuple(out)

    def finish(self) -> None:
        """Refuse parameters that no reader asked for (typos must not pass silently)."""
        unknown = sorted(set(self._params) - self._used)
        if unknown:
            known = ", ".join(sorted(self._used))
            raise ConfigError(
                f"{self.where}: unknown parameter(s) {', '.join(unknown)} (known: {known})"
            )
