"""The cost model the vectorized engine shares with the paper broker.

Owns :class:`CostModel`: the instrument's tick and lot size and the maker/taker fees in basis
points. The fee of a fill is the paper broker's (``tradecore.execution.paper``):
``fee = price * qty * tick_size * lot_size * bps / 10_000`` in the quote currency, ``price`` in
ticks and ``qty`` in lots; a negative rate is a rebate. Exact totals are ``Decimal``
(:meth:`CostModel.fee`); the vectorized kernels use the same rate as a float per tick-lot
(:meth:`CostModel.rate_per_tick_lot`), which is what their P&L arrays are in, and convert to
money with :attr:`CostModel.money_per_tick_lot`.

Invariants: every field is a finite ``Decimal``; tick and lot sizes are positive. Cost: none
on the hot path (the kernels take two floats).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tradecore.instrument import Instrument

__all__ = ["CostModel"]


def _dec(name: str, value: object) -> Decimal:
    if isinstance(value, bool | float):
        raise TypeError(f"{name} must be a Decimal, str or int (not {type(value).__name__})")
    try:
        d = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except ArithmeticError:
        raise ValueError(f"{name} {value!r} is not a decimal number") from None
    if not d.is_finite():
        raise ValueError(f"{name} must be finite, got {value!r}")
    return d


@dataclass(frozen=True)
class CostModel:
    """Tick/lot sizes and fees (basis points; negative = rebate), as the paper broker has them."""

    tick_size: Decimal = Decimal("0.01")
    lot_size: Decimal = Decimal(1)
    taker_fee_bps: Decimal = Decimal(0)
    maker_fee_bps: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        for name in ("tick_size", "lot_size", "taker_fee_bps", "maker_fee_bps"):
            object.__setattr__(self, name, _dec(name, getattr(self, name)))
        if self.tick_size <= 0 or self.lot_size <= 0:
            raise ValueError("tick_size and lot_size must be positive")

    @classmethod
    def for_instrument(
        cls, inst: Instrument, taker_fee_bps: object = 0, maker_fee_bps: object = 0
    ) -> CostModel:
        return cls(
            inst.tick_size,
            inst.lot_size,
            _dec("taker", taker_fee_bps),
            _dec("maker", maker_fee_bps),
        )

    @property
    def money_per_tick_lot(self) -> float:
        """Quote currency per (1 tick x 1 lot)."""
        return float(self.tick_size * self.lot_size)

    def rate_per_tick_lot(self, maker: bool = False) -> float:
        """Fee in tick-lots per tick-lot of notional (``bps / 10_000``)."""
        return float((self.maker_fee_bps if maker else self.taker_fee_bps) / 10_000)

    def fee(self, price: int, qty: int, maker: bool = False) -> Decimal:
        """The exact fee of one fill (``price`` ticks, ``qty`` lots), in the quote currency."""
        bps = self.maker_fee_bps if maker else self.taker_fee_bps
        return Decimal(price * qty) * self.tick_size * self.lot_size * bps / 10_000
