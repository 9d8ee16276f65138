"""The enums of the matching core, as :class:`enum.StrEnum` classes.

Each member's value is its name (``Reason.NONE`` is ``""``), so members compare equal to their
names and can be passed wherever a name is accepted. Member order is the Rust discriminant
order: ``member.code`` is the byte used in ``OP_DTYPE``/``EVENT_DTYPE`` arrays, on the wire and
in the journal, and ``Cls.from_code(byte)`` maps back. The compiled core checks this order the
first time it hands out an enum member, so the two cannot drift apart silently.
"""

from __future__ import annotations

import enum
from typing import Self

__all__ = ["EventKind", "OrderType", "Reason", "Side", "Stp", "TimeInForce"]

_TABLES: dict[type[_CodedEnum], tuple[tuple[_CodedEnum, ...], dict[str, int]]] = {}


class _CodedEnum(enum.StrEnum):
    """A ``StrEnum`` whose members also carry a small integer code (their position)."""

    @classmethod
    def _table(cls) -> tuple[tuple[_CodedEnum, ...], dict[str, int]]:
        table = _TABLES.get(cls)
        if table is None:
            members = tuple(cls)
            table = (members, {m.name: i for i, m in enumerate(members)})
            _TABLES[cls] = table
        return table

    @property
    def code(self) -> int:
        """The integer discriminant of this member (its position in the class)."""
        return type(self)._table()[1][self.name]

    @classmethod
    def from_code(cls, code: int) -> Self:
        """The member whose discriminant is ``code``.

        Raises ``TypeError`` for a non-int (or bool) and ``ValueError`` for an unknown code.
        """
        if isinstance(code, bool) or not isinstance(code, int):
            raise TypeError(f"{cls.__name__} code must be an int, got {type(code).__name__}")
        members = cls._table()[0]
        if not 0 <= code < len(members):
            valid = ", ".join(f"{i}={m.name}" for i, m in enumerate(members))
            raise ValueError(f"unknown {cls.__name__} code {code} (valid: {valid})")
        member = members[code]
        assert isinstance(member, cls)
        return member


class Side(_CodedEnum):
    """Order side."""

    BUY = "BUY"
    SELL = "SELL"


class OrderType(_CodedEnum):
    """Order type: priced LIMIT or unpriced MARKET (never rests)."""

    LIMIT = "LIMIT"
    MARKET = "MARKET"


class TimeInForce(_CodedEnum):
    """Time in force: GTC rests, IOC cancels its remainder, FOK fills completely or not at all."""

    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class Stp(_CodedEnum):
    """Self-trade prevention mode of the incoming order."""

    NONE = "NONE"
    CANCEL_NEWEST = "CANCEL_NEWEST"
    CANCEL_OLDEST = "CANCEL_OLDEST"
    CANCEL_BOTH = "CANCEL_BOTH"


class EventKind(_CodedEnum):
    """What an event reports."""

    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    FILL = "FILL"
    CANCELLED = "CANCELLED"
    REPLACED = "REPLACED"


class Reason(_CodedEnum):
    """Why an order was rejected or cancelled; ``NONE`` (the empty string) otherwise."""

    NONE = ""
    USER = "USER"
    IOC_REMAINDER = "IOC_REMAINDER"
    FOK_UNFILLED = "FOK_UNFILLED"
    SELF_TRADE = "SELF_TRADE"
    INVALID_QTY = "INVALID_QTY"
    INVALID_PRICE = "INVALID_PRICE"
    DUPLICATE_ORDER_ID = "DUPLICATE_ORDER_ID"
    INVALID_ORDER = "INVALID_ORDER"
    WOULD_CROSS = "WOULD_CROSS"
    BOOK_FULL = "BOOK_FULL"
    UNKNOWN_ORDER = "UNKNOWN_ORDER"
    MASS_CANCEL = "MASS_CANCEL"
    KILL_SWITCH = "KILL_SWITCH"
    RATE_LIMITED = "RATE_LIMITED"
    NOT_LOGGED_IN = "NOT_LOGGED_IN"
    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
    PRICE_OUT_OF_BAND = "PRICE_OUT_OF_BAND"
    QTY_TOO_LARGE = "QTY_TOO_LARGE"
    MALFORMED = "MALFORMED"
    DISCONNECT = "DISCONNECT"
