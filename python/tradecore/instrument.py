"""Conversion between decimal prices/quantities and the integer ticks/lots of the core.

The core has no floats: prices are ``int`` ticks and quantities ``int`` lots. ``Instrument``
holds one instrument's tick size and lot size and converts exactly at the edges, using
integer arithmetic on the exact rational value of each ``Decimal`` (no rounding context is
involved, so the result never depends on ``decimal.getcontext()``). A value that is not a whole
multiple of the grid raises :class:`~tradecore.errors.OffGridError`; a ``float`` raises
``TypeError`` because binary floats cannot represent most decimal prices.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from tradecore.errors import OffGridError

__all__ = ["Instrument"]

_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1
_U64_MAX = 2**64 - 1

DecimalLike = Decimal | str | int


def _to_decimal(name: str, value: object) -> Decimal:
    """``value`` as a finite Decimal; ``TypeError`` for floats, bools and other types."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):
        raise TypeError(f"{name} must be a Decimal, str or int, got bool")
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{name} {value!r} is not a decimal number") from None
    elif isinstance(value, float):
        raise TypeError(
            f"{name} must be a Decimal, str or int, got float {value!r}: binary floats are not "
            f"accepted; pass Decimal({str(value)!r}) or the string {str(value)!r}"
        )
    else:
        raise TypeError(f"{name} must be a Decimal, str or int, got {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return result


def _mantissa_exponent(grid: Decimal) -> tuple[int, int]:
    """``(m, e)`` with ``grid == m * 10**e`` (grid is finite and positive)."""
    _sign, digits, exponent = grid.as_tuple()
    assert isinstance(exponent, int)
    return int("".join(map(str, digits))), exponent


def _int_arg(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return value


class Instrument:
    """One instrument's grid: ``tick_size`` (price step) and ``lot_size`` (quantity step).

    >>> inst = Instrument("AAPL", tick_size="0.01", lot_size="1")
    >>> inst.price_to_ticks("150.05")
    15005
    >>> inst.ticks_to_price(15005)
    Decimal('150.05')
    """

    __slots__ = (
        "_lot",
        "_lot_digits",
        "_lot_ratio",
        "_quote",
        "_symbol",
        "_tick",
        "_tick_digits",
        "_tick_ratio",
    )

    def __init__(
        self,
        symbol: str,
        tick_size: DecimalLike = "0.01",
        lot_size: DecimalLike = "0.001",
        *,
        quote_asset: str = "",
    ) -> None:
        if not isinstance(symbol, str):
            raise TypeError(f"symbol must be a str, got {type(symbol).__name__}")
        if not symbol:
            raise ValueError("symbol must not be empty")
        if not isinstance(quote_asset, str):
            raise TypeError(f"quote_asset must be a str, got {type(quote_asset).__name__}")
        tick = _to_decimal("tick_size", tick_size)
        lot = _to_decimal("lot_size", lot_size)
        if tick <= 0:
            raise ValueError(f"tick_size must be positive, got {tick}")
        if lot <= 0:
            raise ValueError(f"lot_size must be positive, got {lot}")
        self._symbol = symbol
        self._quote = quote_asset
        self._tick = tick
        self._lot = lot
        self._tick_ratio = tick.as_integer_ratio()
        self._lot_ratio = lot.as_integer_ratio()
        self._tick_digits = _mantissa_exponent(tick)
        self._lot_digits = _mantissa_exponent(lot)

    @property
    def symbol(self) -> str:
        """The instrument's symbol."""
        return self._symbol

    @property
    def quote_asset(self) -> str:
        """The currency prices are quoted in (``"USDT"`` for BTCUSDT), ``""`` when unknown.
        Money figures of this instrument (notional, P&L, fees) are in this currency."""
        return self._quote

    @property
    def tick_size(self) -> Decimal:
        """Price step: one tick."""
        return self._tick

    @property
    def lot_size(self) -> Decimal:
        """Quantity step: one lot."""
        return self._lot

    @staticmethod
    def _steps(what: str, value: object, grid: Decimal, ratio: tuple[int, int]) -> int:
        x = _to_decimal(what, value)
        num, den = x.as_integer_ratio()
        grid_num, grid_den = ratio
        # x / grid = (num / den) / (grid_num / grid_den), exactly, in integers.
        steps, rest = divmod(num * grid_den, den * grid_num)
        if rest:
            raise OffGridError(what, x, grid)
        return steps

    @staticmethod
    def _value(steps: int, grid: tuple[int, int]) -> Decimal:
        mantissa, exponent = grid
        # Built from a string, so the Decimal is exact whatever the context's precision.
        return Decimal(f"{steps * mantissa}E{exponent}")

    def price_to_ticks(self, price: DecimalLike) -> int:
        """``price`` in ticks; ``OffGridError`` unless it is a whole number of ticks."""
        ticks = self._steps("price", price, self._tick, self._tick_ratio)
        if not _I64_MIN <= ticks <= _I64_MAX:
            raise ValueError(f"price {price} is {ticks} ticks, outside the i64 range of the book")
        return ticks

    def ticks_to_price(self, ticks: int) -> Decimal:
        """The price of ``ticks`` ticks, exactly."""
        return self._value(_int_arg("ticks", ticks), self._tick_digits)

    def qty_to_lots(self, qty: DecimalLike) -> int:
        """``qty`` in lots; ``OffGridError`` unless it is a whole number of lots."""
        lots = self._steps("qty", qty, self._lot, self._lot_ratio)
        if lots < 0:
            raise ValueError(f"qty must not be negative, got {qty}")
        if lots > _U64_MAX:
            raise ValueError(f"qty {qty} is {lots} lots, more than the book holds (2**64 - 1)")
        return lots

    def lots_to_qty(self, lots: int) -> Decimal:
        """The quantity of ``lots`` lots, exactly."""
        return self._value(_int_arg("lots", lots), self._lot_digits)

    def __repr__(self) -> str:
        quote = f", quote_asset={self._quote!r}" if self._quote else ""
        return (
            f"Instrument({self._symbol!r}, tick_size={str(self._tick)!r}, "
            f"lot_size={str(self._lot)!r}{quote})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Instrument):
            return NotImplemented
        return (self._symbol, self._tick, self._lot, self._quote) == (
            other._symbol,
            other._tick,
            other._lot,
            other._quote,
        )

    def __hash__(self) -> int:
        return hash((self._symbol, self._tick, self._lot))
