"""Exceptions raised by tradecore.

Argument errors are the built-in ``TypeError`` (wrong type) and ``ValueError`` (impossible
value), with a message naming the argument; business rejections are ``REJECTED`` events, not
exceptions. The classes here cover what is specific to tradecore; each also subclasses the
built-in it refines, so ``except ValueError`` keeps working.
"""

from __future__ import annotations

from decimal import Decimal

__all__ = [
    "ConfigError",
    "InternalError",
    "InvariantError",
    "OffGridError",
    "TradecoreError",
    "UsageError",
]


class TradecoreError(Exception):
    """Base class of every exception defined by tradecore."""


class InvariantError(TradecoreError, RuntimeError):
    """A structural invariant of a book is broken; the message names it."""


class InternalError(TradecoreError, RuntimeError):
    """A bug inside tradecore (for example a caught Rust panic); never the caller's fault."""


class OffGridError(TradecoreError, ValueError):
    """A price or quantity is not a whole multiple of the instrument's tick or lot size."""

    def __init__(self, what: str, value: Decimal, grid: Decimal) -> None:
        self.what = what
        self.value = value
        self.grid = grid
        super().__init__(f"{what} {value} is off the grid: it must be a whole multiple of {grid}")

    def __reduce__(self) -> tuple[type[OffGridError], tuple[str, Decimal, Decimal]]:
        return (type(self), (self.what, self.value, self.grid))


class UsageError(TradecoreError, ValueError):
    """Bad input the user can fix (a file, an argument, a combination of options).

    The command line prints its message on one line and exits with status 2, without a
    traceback; the message names what was wrong and where.
    """


class ConfigError(UsageError):
    """A configuration file (venue or node) is missing, unreadable or has a wrong field.

    The message names the file and the field (``file.toml: risk.max_order_qty: must be > 0``).
    """
