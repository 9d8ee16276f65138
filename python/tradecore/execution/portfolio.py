"""Positions, cash and P&L per account and symbol, exact (integers, Fraction, Decimal).

Owns: for each ``(account, symbol)`` the signed position in lots, its cost basis, realized
P&L and fees; for each account its cash and its equity curve; for each symbol its mark (the
mid of the last book seen, or a price set explicitly). Each symbol's
:class:`~tradecore.instrument.Instrument` turns ``ticks * lots`` into money:
``money = ticks * lots * tick_size * lot_size`` (quote currency).

Bookkeeping (average cost):

- ``cost`` is the signed cost basis of the open position in tick-lots (``sum(price * signed
  qty)`` of the lots still open), an ``int`` or a :class:`fractions.Fraction` once a partial
  close leaves a fractional average; ``avg_price_ticks = cost / qty``.
- A fill in the direction of the position (or from flat) adds ``price * qty`` to ``cost``.
- A fill against the position closes ``c = min(|fill|, |position|)`` lots at the average: the
  cost left on the open lots is ``cost * remaining / qty``, rounded half-even to
  ``1 / COST_GRID`` (10^-12) tick-lots when it is not on that grid (a third, a seventh ...), and
  ``realized += sign(position) * c * price - (cost removed)``, which is
  ``sign(position) * c * (price - avg)`` whenever nothing was rounded; the remainder of the
  fill, if any, opens a new position at the fill price. Every value's denominator divides
  ``COST_GRID``: bounded, however many partial closes; the rounding moves at most 10^-12
  tick-lots per close between realized and unrealized and never changes their sum.
- ``cash -= price * signed_qty * unit + fee`` on every fill (a buy spends, a sell receives);
  fees are also summed per position (negative fee = rebate).
- ``unrealized = qty * mark - cost`` (zero while the symbol has no mark);
  ``market value = qty * mark`` (``cost`` while unmarked).
- ``equity = cash + sum(market values)``. Invariant (exact, tested by a property test):
  ``equity == initial cash + realized + unrealized - fees``.

Exactness: tick-lot amounts are integers or Fractions (on the ``COST_GRID`` grid, see above),
cash and fees are Decimal computed with a 60-digit context that traps any rounding. Views
convert Fractions to Decimal money exactly when the value has a finite decimal expansion
(always for cost and realized; an average price ``cost / qty`` may not), otherwise rounded
half-even to 34 significant digits; the ``*_ticklots`` fields keep the exact Fraction.

Marks set from a book (:meth:`Portfolio.mark`) are kept as twice the mid, an int, so marking
builds no Fraction; :meth:`Portfolio.mark` says whether the mark moved. Views and sums use an
exact context of unlimited precision (``_EXACT``): an average left by many partial closes can
have a numerator of any length, and the only rounding is the one documented above.

Fills are idempotent per ``(account, fill_id)``: a fill seen twice is ignored and counted.

Representation: a position keeps its cost and realized P&L as integer numerator and
denominator pairs in lowest terms (denominator > 0; 1 for a whole value), so a fill builds no
``Fraction`` at all: ``Fraction`` (pure Python) costs about half a microsecond to construct.
``Fraction`` values are built only where they are exposed (records, views, snapshots), from
the reduced pair directly (:func:`_fraction`: the object ``Fraction(n, d)`` would give, without
its normalizing constructor). ``Decimal`` context methods are bound once at import (a method
looked up on a ``Context`` at every call costs more than the operation itself).

Cost (CPython 3.11, instructions counted by callgrind): a fill is a few integer operations
and four ``Decimal`` operations (cash, fees), about 13k instructions (~2 us); a close against a
fractional cost or realized P&L adds a ``gcd`` or two. :meth:`Portfolio.equity` is two
``Decimal`` operations for an account with one book-marked position (about 5k instructions;
the same digits and exponent as the views' sums, which it takes otherwise: about a microsecond
per position), :meth:`Portfolio.mark_books` marks many books in one call,
:meth:`Portfolio.record` one record (the cost's ``Fraction`` built directly, the realized
P&L's reused until a close changes it), :meth:`Portfolio.record_values` the same as plain ints
(no object but a tuple); a view of an account is O(its positions) and builds every position
view on integers (four ``Fraction`` objects, built directly). Not on the tick-to-trade path.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    Inexact,
    InvalidOperation,
    Overflow,
)
from fractions import Fraction
from math import gcd
from typing import Any

from tradecore.enums import Side
from tradecore.errors import UsageError
from tradecore.execution.types import Fill, Order
from tradecore.instrument import Instrument
from tradecore.marketdata.events import BookUpdate, BookView, fast_frozen_init

__all__ = [
    "COST_GRID",
    "AccountView",
    "EquitySample",
    "Portfolio",
    "PositionRecord",
    "PositionView",
]

_MONEY = Context(prec=60, traps=[InvalidOperation, Inexact, Overflow])
_ROUND = Context(prec=34, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, Overflow])
# Products and sums of exact operands, never rounded (any length: a view's sum adds values
# rounded to 34 digits at different scales, which can need more than _MONEY's 60); Inexact
# would be a bug, so it traps.
_EXACT = Context(
    prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[InvalidOperation, Inexact, Overflow]
)
_ZERO = Decimal(0)
_BUY = Side.BUY

# Bound once: ``_MONEY.add(...)`` looks the method up through the context's own getattr and
# builds a bound method on every call (about 60 ns, as much as the addition).
_money_add = _MONEY.add
_money_sub = _MONEY.subtract
_money_mul = _MONEY.multiply
_exact_add = _EXACT.add
_exact_mul = _EXACT.multiply
_exact_scaleb = _EXACT.scaleb
_new_object = object.__new__


def _fraction_direct(n: int, d: int) -> Fraction:
    """The ``Fraction`` equal to ``n / d``, given in lowest terms with ``d > 0``, built without
    ``Fraction.__new__`` (its argument checks and ``gcd`` cost about 0.4 us): the two slots are
    set as the normalizing constructor would set them (what ``Fraction._from_coprime_ints``
    does in Python 3.12)."""
    f: Any = _new_object(Fraction)
    f._numerator = n
    f._denominator = d
    result: Fraction = f
    return result


def _fraction_checked(n: int, d: int) -> Fraction:
    return Fraction(n, d)


def _direct_is_exact() -> bool:
    """Whether :func:`_fraction_direct` builds what ``Fraction(n, d)`` builds (checked once at
    import: ``Fraction``'s slots are an implementation detail of CPython's ``fractions``)."""
    if getattr(Fraction, "__slots__", None) != ("_numerator", "_denominator"):
        return False
    try:
        for n, d in ((0, 1), (7, 1), (-22, 7), (10**30 + 1, 3 * 10**12)):
            f, g = _fraction_direct(n, d), Fraction(n, d)
            if (
                type(f) is not Fraction
                or (f.numerator, f.denominator) != (g.numerator, g.denominator)
                or f != g
                or hash(f) != hash(g)
                or str(f) != str(g)
            ):
                return False
    except Exception:  # any surprise means: use the constructor
        return False
    return True


_DIRECT = _direct_is_exact()
#: ``Fraction(n, d)`` for ``n / d`` in lowest terms, ``d > 0`` (the fast build when it is exact).
_fraction = _fraction_direct if _DIRECT else _fraction_checked

TickLots = int | Fraction

#: Resolution of a position's cost basis after a partial close, in tick-lots: the cost left
#: on the open lots is rounded to ``1 / COST_GRID`` when it is not already on that grid, so
#: denominators stay bounded however many partial closes a position sees (unbounded exact
#: fractions grew by a few digits per close and made long runs slower and slower, until
#: ``str()`` of one exceeded Python's 4,300-digit limit in the store).
COST_GRID = 10**12


def _money(ticklots: TickLots, unit: Decimal) -> Decimal:
    """``ticklots * unit`` as Decimal: exact for terminating values, else 34 digits."""
    if isinstance(ticklots, int):
        return _money_mul(Decimal(ticklots), unit)
    return _money_nd(ticklots.numerator, ticklots.denominator, unit)


def _money_nd(num: int, den: int, unit: Decimal) -> Decimal:
    """``num / den * unit`` (``den > 0``), as :func:`_money` gives it for ``Fraction(num, den)``."""
    # Exact whatever the length: after many partial closes an average's numerator can have
    # more digits than _MONEY keeps (its Inexact trap fired on long runs); the rounding, if
    # any, is the one division below.
    scaled = _exact_mul(Decimal(num), unit)
    if den == 1:
        return scaled
    twos = fives = 0
    d = den
    while d % 2 == 0:
        d //= 2
        twos += 1
    while d % 5 == 0:
        d //= 5
        fives += 1
    if d == 1:
        # den = 2**twos * 5**fives divides 10**m: num / den = num * (10**m // den) / 10**m.
        m = max(twos, fives)
        factor = Decimal(10**m // den)
        return _exact_scaleb(_exact_mul(scaled, factor), -m)
    return _ROUND.divide(scaled, Decimal(den))


@dataclass(frozen=True, slots=True)
class PositionView:
    """One position, as of the call (money in the quote currency)."""

    account: int
    symbol: str
    qty: int  # signed lots: > 0 long, < 0 short
    avg_price_ticks: Fraction | None  # None when flat
    avg_price: Decimal | None
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    market_value: Decimal
    mark_ticks: Fraction | None
    realized_ticklots: Fraction
    unrealized_ticklots: Fraction
    volume: int  # lots traded
    fills: int


@dataclass(frozen=True, slots=True)
class AccountView:
    """One account's totals, as of the call."""

    account: int
    cash: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    equity: Decimal
    gross_exposure: Decimal  # sum |market value|
    net_exposure: Decimal  # sum market value


@dataclass(frozen=True, slots=True)
class EquitySample:
    """One point of an account's equity curve."""

    ts_ns: int
    account: int
    equity: Decimal
    cash: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal


@dataclass(frozen=True, slots=True)
class PositionRecord:
    """A position as the store keeps it (exact): restore with :meth:`Portfolio.restore`."""

    account: int
    symbol: str
    qty: int
    cost_ticklots: Fraction
    realized_ticklots: Fraction
    fees: Decimal
    volume: int = 0
    fills: int = 0


for _cls in (PositionRecord, EquitySample):
    fast_frozen_init(_cls)
del _cls


def _slots_twin(cls: type) -> Any:
    """A plain class with the very slots of ``cls`` (a frozen, slotted dataclass on base
    ``object``): an instance gets its fields by plain slot stores and then becomes a ``cls`` by
    assigning ``__class__`` (no ``type.__call__``, no ``__init__`` frame: about 150 ns less);
    the result is an ordinary ``cls`` instance, equal to the constructor's."""
    slots = tuple(cls.__dict__["__slots__"])
    if slots != tuple(f.name for f in fields(cls)) or cls.__bases__ != (object,):
        raise TypeError(f"{cls.__name__}: the twin needs one slot per field and base object")
    return type(f"_{cls.__name__}Twin", (), {"__slots__": slots, "__module__": __name__})


_RecordTwin = _slots_twin(PositionRecord)


class _Position:
    """One position: ``cost = cn / cd`` and ``realized = rn / rd`` tick-lots, each pair in
    lowest terms with a positive denominator (1 when whole). ``rf`` caches the realized P&L
    as a ``Fraction`` for :meth:`Portfolio.record` (None after every change of ``rn, rd``:
    only a close changes it, so a record after an opening fill reuses it)."""

    __slots__ = ("cd", "cn", "fees", "fills", "qty", "rd", "rf", "rn", "volume")

    def __init__(self) -> None:
        self.qty = 0
        self.cn = 0
        self.cd = 1
        self.rn = 0
        self.rd = 1
        self.rf: Fraction | None = None
        self.fees = _ZERO
        self.volume = 0
        self.fills = 0

    @property
    def cost(self) -> TickLots:
        """The cost basis: an int when whole, else a Fraction."""
        return self.cn if self.cd == 1 else _fraction(self.cn, self.cd)

    @property
    def realized(self) -> TickLots:
        """The realized P&L in tick-lots: an int when whole, else a Fraction."""
        return self.rn if self.rd == 1 else _fraction(self.rn, self.rd)

    def set_cost(self, value: TickLots) -> None:
        f = Fraction(value)
        self.cn, self.cd = f.numerator, f.denominator

    def set_realized(self, value: TickLots) -> None:
        f = Fraction(value)
        self.rn, self.rd = f.numerator, f.denominator
        self.rf = None


class Portfolio:
    """Positions and P&L of every account; feed it fills and marks."""

    def __init__(
        self,
        instruments: Iterable[Instrument],
        initial_cash: Decimal | int | Mapping[int, Decimal | int] = 0,
    ) -> None:
        self._inst: dict[str, Instrument] = {}
        self._unit: dict[str, Decimal] = {}
        # (unit, half unit) of each symbol whose unit has an exponent <= 0, for :meth:`equity`:
        # the half unit is (unit * 5) scaled down one digit, so half_unit * n has the digits
        # and exponent of _equity_general's value of n half ticks.
        self._unit_fast: dict[str, tuple[Decimal, Decimal]] = {}
        for inst in instruments:
            self.add_instrument(inst)
        self._default_cash = _ZERO
        self._initial: dict[int, Decimal] = {}
        if isinstance(initial_cash, Mapping):
            for acc, amount in initial_cash.items():
                self._initial[acc] = self._check_cash(amount, f"initial_cash[{acc}]")
        else:
            self._default_cash = self._check_cash(initial_cash, "initial_cash")
        self._cash: dict[int, Decimal] = dict(self._initial)
        self._pos: dict[int, dict[str, _Position]] = {}
        # account -> symbol -> signed lots, a mirror of the positions' ``qty`` for the
        # accounts that asked for it (:meth:`qty_view`); kept equal on every change.
        self._qtys: dict[int, defaultdict[str, int]] = {}
        # account -> (symbol, position) while the account has exactly one position (the
        # common case; :meth:`equity` then needs no iteration over the account's dict).
        self._one: dict[int, tuple[str, _Position]] = {}
        # A symbol's mark is in exactly one of these: ``_mid2`` holds twice the mark as an int
        # (what :meth:`mark` sets: mids are whole or half ticks, no Fraction to build on every
        # book), ``_marks`` an explicit exact price (:meth:`mark_price`).
        self._mid2: dict[str, int] = {}
        self._marks: dict[str, Fraction] = {}
        self._curve: dict[int, list[EquitySample]] = {}
        # Fill ids seen, per account (ints hash for free; a (account, id) tuple does not).
        self._fill_ids: dict[int, set[int]] = {}
        self.duplicate_fills = 0

    @staticmethod
    def _check_cash(amount: object, what: str) -> Decimal:
        if isinstance(amount, bool) or not isinstance(amount, Decimal | int):
            raise UsageError(f"{what} must be a Decimal or int, got {type(amount).__name__}")
        d = Decimal(amount)
        if not d.is_finite():
            raise UsageError(f"{what} must be finite, got {amount}")
        return d

    def _new_position(
        self, account: int, positions: dict[str, _Position], symbol: str
    ) -> _Position:
        """Open ``symbol``'s position of ``account`` (``positions`` is the account's dict)."""
        pos = positions[symbol] = _Position()
        self._sync_one(account, positions)
        return pos

    def _sync_one(self, account: int, positions: dict[str, _Position]) -> None:
        """Keep ``_one[account]`` = the account's only position, absent unless exactly one."""
        if len(positions) == 1:
            [(symbol, pos)] = positions.items()
            self._one[account] = (symbol, pos)
        else:
            self._one.pop(account, None)

    def add_instrument(self, instrument: Instrument) -> None:
        """Make ``instrument.symbol`` tradable (its tick and lot size price the positions)."""
        if not isinstance(instrument, Instrument):
            raise UsageError(f"instruments must be Instrument values, got {instrument!r}")
        self._inst[instrument.symbol] = instrument
        unit = _money_mul(instrument.tick_size, instrument.lot_size)
        self._unit[instrument.symbol] = unit
        exp = unit.as_tuple().exponent
        if isinstance(exp, int) and exp <= 0:
            half = _EXACT.scaleb(_EXACT.multiply(unit, 5), -1)
            self._unit_fast[instrument.symbol] = (unit, half)
        else:
            self._unit_fast.pop(instrument.symbol, None)

    def _account(self, account: int) -> dict[str, _Position]:
        positions = self._pos.get(account)
        if positions is None:
            positions = self._pos[account] = {}
            if account not in self._cash:
                self._initial[account] = self._default_cash
                self._cash[account] = self._default_cash
        return positions

    def open_account(self, account: int, cash: Decimal | int | None = None) -> None:
        """Start tracking ``account`` (with ``cash``, else the default initial cash)."""
        if cash is not None:
            amount = self._check_cash(cash, f"cash of account {account}")
            self._initial[account] = amount
            self._cash[account] = amount
        self._account(account)

    # ------------------------------------------------------------------ updates

    def on_fill(self, fill: Fill, order: Order | None = None) -> None:
        """Apply one fill (usable directly as an order-manager fill listener)."""
        symbol = fill.symbol
        unit = self._unit.get(symbol)
        if unit is None:
            raise UsageError(
                f"fill {fill.fill_id} of account {fill.account}: unknown symbol "
                f"{symbol!r} (no Instrument given to the portfolio)"
            )
        account = fill.account
        fill_id = fill.fill_id
        fill_ids = self._fill_ids.get(account)
        if fill_ids is None:
            fill_ids = self._fill_ids[account] = set()
        elif fill_id in fill_ids:
            self.duplicate_fills += 1
            return
        fill_ids.add(fill_id)
        positions = self._pos.get(account)
        if positions is None:
            positions = self._account(account)
        pos = positions.get(symbol)
        if pos is None:
            pos = self._new_position(account, positions, symbol)
        fqty = fill.qty
        signed = fqty if fill.side is _BUY else -fqty
        price = fill.price
        qty = pos.qty
        if qty == 0 or (qty > 0) == (signed > 0):
            pos.qty = qty + signed
            # n / d + k is (n + k * d) / d, still in lowest terms.
            cd = pos.cd
            pos.cn += price * signed if cd == 1 else price * signed * cd
        else:
            self._close(pos, qty, signed, price)
        qtys = self._qtys.get(account)
        if qtys is not None:
            qtys[symbol] = pos.qty
        fee = fill.fee
        pos.fees = _money_add(pos.fees, fee)
        pos.volume += fqty
        pos.fills += 1
        # unit * (price * signed): the same exact product as Decimal(price * signed) * unit.
        cash = self._cash
        cash[account] = _money_sub(_money_sub(cash[account], _money_mul(unit, price * signed)), fee)

    @staticmethod
    def _close(pos: _Position, qty: int, signed: int, price: int) -> None:
        """A fill of ``signed`` lots at ``price`` against the position ``qty`` (opposite signs).

        The cost left on the open lots is ``cost * remaining / qty``, kept exact when it lies
        on the grid of ``1 / COST_GRID`` tick-lots and rounded half-even to it otherwise; the
        realized P&L takes exactly what the closed lots gave: ``sign * closing * price`` minus
        the cost taken off the position. So every value has a denominator dividing
        ``COST_GRID`` (bounded, whatever the number of partial closes), and the rounding only
        moves P&L between realized and unrealized: their sum is exact.

        Computed on the position's integer numerators and denominators (``Fraction``
        operators cost a microsecond or two each in CPython); nothing is built.
        """
        sign = 1 if qty > 0 else -1
        size = signed if signed > 0 else -signed
        held = qty if qty > 0 else -qty
        closing = size if size < held else held
        remaining = qty - sign * closing
        opening = size - closing
        cn = pos.cn
        cd = pos.cd
        # kept = kn / kd in lowest terms (kd > 0).
        if opening or remaining == 0:
            kn = 0
            kd = 1
        else:
            # cost0 * remaining / qty, on integer numerator and denominator.
            num, den = cn * remaining, cd * qty
            if den < 0:
                num, den = -num, -den
            g = gcd(num, den)
            kn, kd = num // g, den // g
            if COST_GRID % kd:
                # Half-even to the grid: q + r / den with 0 <= r < den.
                q, r = divmod(num * COST_GRID, den)
                if 2 * r > den or (2 * r == den and q & 1):
                    q += 1
                g = gcd(q, COST_GRID)
                kn, kd = q // g, COST_GRID // g
        # realized + sign * closing * price - (cost0 - kept), over the common denominator.
        rn = pos.rn
        rd = pos.rd
        pos.rf = None
        if rd == 1 and cd == 1 and kd == 1:
            pos.rn = rn + sign * closing * price - cn + kn
        else:
            d = rd * cd * kd
            n = rn * cd * kd + rd * ((sign * closing * price * cd - cn) * kd + kn * cd)
            g = gcd(n, d)
            pos.rn = n // g
            pos.rd = d // g
        if opening:
            new_qty = pos.qty = -sign * opening
            pos.cn = price * new_qty
            pos.cd = 1
        else:
            pos.qty = remaining
            pos.cn = kn
            pos.cd = kd

    def mark(self, symbol: str, bid: int | None, ask: int | None) -> bool:
        """Mark ``symbol`` at the mid of ``bid`` and ``ask`` ticks (or the one given).

        Returns True if the mark moved (False when it is the same as before, or no price).
        """
        if bid is not None and ask is not None:
            mid2 = bid + ask
        elif bid is not None:
            mid2 = 2 * bid
        elif ask is not None:
            mid2 = 2 * ask
        else:
            return False
        mid2s = self._mid2
        if mid2s.get(symbol) == mid2:
            return False
        mid2s[symbol] = mid2
        if self._marks:
            self._marks.pop(symbol, None)
        return True

    def mark_books(
        self,
        symbols: Iterable[str],
        book_of: Callable[[str], BookView | None],
        moved: set[str],
    ) -> None:
        """:meth:`mark` each of ``symbols`` at the mid of ``book_of(symbol)`` (skipped when
        None); adds to ``moved`` the symbols whose mark moved.

        The same marks as one :meth:`mark` per symbol (a test compares them), in one call: a
        driver that marks the books that changed since its last look (the node's risk
        timer) saves a call and a tuple per symbol.
        """
        mid2s = self._mid2
        marks = self._marks
        for sym in symbols:
            book = book_of(sym)
            if book is None:
                continue
            bid = book.best_bid()
            ask = book.best_ask()
            if bid is not None:
                mid2 = bid[0] + ask[0] if ask is not None else 2 * bid[0]
            elif ask is not None:
                mid2 = 2 * ask[0]
            else:
                continue
            if mid2s.get(sym) == mid2:
                continue
            mid2s[sym] = mid2
            if marks:
                marks.pop(sym, None)
            moved.add(sym)

    def mark_price(self, symbol: str, ticks: int | Fraction) -> None:
        """Mark ``symbol`` at ``ticks`` exactly (for example the last trade)."""
        self._marks[symbol] = Fraction(ticks)
        self._mid2.pop(symbol, None)

    def on_book(self, update: BookUpdate) -> None:
        """Mark ``update.symbol`` at the mid of its book."""
        bb = update.book.best_bid()
        ba = update.book.best_ask()
        self.mark(update.symbol, bb[0] if bb else None, ba[0] if ba else None)

    # ------------------------------------------------------------------ views

    def position_qty(self, account: int, symbol: str) -> int:
        """Signed lots of ``account`` in ``symbol`` (0 if none); the cheap accessor."""
        positions = self._pos.get(account)
        if positions is None:
            return 0
        pos = positions.get(symbol)
        return pos.qty if pos is not None else 0

    def qty_view(self, account: int) -> Mapping[str, int]:
        """A live read-only view of ``account``'s signed lots by symbol: ``view[symbol]`` is
        :meth:`position_qty` (0 for a symbol never traded), kept equal by every change.

        For hot readers: ``view.__getitem__`` is one C call where ``position_qty`` is a
        Python frame (the node's strategy contexts and pre-trade check read it per order).
        Reading an unknown symbol adds it at 0 (the view is a ``defaultdict``); do not write.
        """
        qtys = self._qtys.get(account)
        if qtys is None:
            held = self._pos.get(account, {})
            qtys = self._qtys[account] = defaultdict(int, {s: p.qty for s, p in held.items()})
        return qtys

    def mark_of(self, symbol: str) -> Fraction | None:
        """The current mark of ``symbol`` in ticks, or None."""
        mid2 = self._mid2.get(symbol)
        if mid2 is not None:
            return Fraction(mid2, 2)
        return self._marks.get(symbol)

    def mark2_of(self, symbol: str) -> int | None:
        """Twice the mark of ``symbol`` in ticks, an int, when it was set from a book
        (:meth:`mark`); None when unmarked or marked by :meth:`mark_price`. Lets a caller value
        positions without building a ``Fraction`` (``qty * mark2 / 2``)."""
        return self._mid2.get(symbol)

    def _value(self, symbol: str, pos: _Position) -> TickLots:
        """``qty * mark`` in tick-lots (``cost`` while unmarked), exact: an int when whole."""
        mid2 = self._mid2.get(symbol)
        if mid2 is not None:
            twice = pos.qty * mid2
            return twice >> 1 if not twice & 1 else Fraction(twice, 2)
        mark = self._marks.get(symbol)
        return pos.cost if mark is None else pos.qty * mark

    def _view(self, account: int, symbol: str, pos: _Position) -> PositionView:
        """The view, computed on integer numerators and denominators: the values (and the
        ``Decimal`` contexts: a Fraction operand takes :func:`_money`'s exact path, an int its
        60-digit product) are those of the ``Fraction`` arithmetic of the definitions
        (``value = qty * mark`` or ``cost``, ``unrealized = value - cost``, ``avg = cost /
        qty``), which a test compares with this."""
        unit = self._unit[symbol]
        qty = pos.qty
        cn = pos.cn
        cd = pos.cd
        mid2 = self._mid2.get(symbol)
        mark: Fraction | None
        if mid2 is not None:
            mn, md = (mid2 >> 1, 1) if not mid2 & 1 else (mid2, 2)
            mark = _fraction(mn, md)
        else:
            mark = self._marks.get(symbol)
        if mark is None:
            # value = cost: an int when whole (the 60-digit product), else a Fraction.
            vn, vd = cn, cd
            market_value = _money_mul(Decimal(cn), unit) if cd == 1 else _money_nd(cn, cd, unit)
        else:
            # value = qty * mark, a Fraction even when whole.
            n = qty * mark.numerator
            d = mark.denominator
            g = gcd(n, d)
            vn, vd = n // g, d // g
            market_value = _money_nd(vn, vd, unit)
        # unrealized = value - cost, a Fraction.
        n = vn * cd - cn * vd
        d = vd * cd
        g = gcd(n, d)
        un, ud = n // g, d // g
        avg: Fraction | None = None
        avg_price: Decimal | None = None
        if qty:
            n, d = (cn, cd * qty) if qty > 0 else (-cn, -cd * qty)
            g = gcd(n, d)
            n //= g
            d //= g
            avg = _fraction(n, d)
            avg_price = _money_nd(n, d, self._inst[symbol].tick_size)
        rn = pos.rn
        rd = pos.rd
        return PositionView(
            account=account,
            symbol=symbol,
            qty=qty,
            avg_price_ticks=avg,
            avg_price=avg_price,
            realized_pnl=_money_mul(Decimal(rn), unit) if rd == 1 else _money_nd(rn, rd, unit),
            unrealized_pnl=_money_nd(un, ud, unit),
            fees=pos.fees,
            market_value=market_value,
            mark_ticks=mark,
            realized_ticklots=_fraction(rn, rd),
            unrealized_ticklots=_fraction(un, ud),
            volume=pos.volume,
            fills=pos.fills,
        )

    def _view_reference(self, account: int, symbol: str, pos: _Position) -> PositionView:
        """:meth:`_view` by ``Fraction`` arithmetic, as the definitions read (the reference
        its tests compare with)."""
        unit = self._unit[symbol]
        mark = self.mark_of(symbol)
        value: TickLots = pos.cost if mark is None else pos.qty * mark
        unreal = Fraction(value) - pos.cost
        avg = Fraction(pos.cost) / pos.qty if pos.qty else None
        inst = self._inst[symbol]
        return PositionView(
            account=account,
            symbol=symbol,
            qty=pos.qty,
            avg_price_ticks=avg,
            avg_price=_money(avg, inst.tick_size) if avg is not None else None,
            realized_pnl=_money(pos.realized, unit),
            unrealized_pnl=_money(unreal, unit),
            fees=pos.fees,
            market_value=_money(value, unit),
            mark_ticks=mark,
            realized_ticklots=Fraction(pos.realized),
            unrealized_ticklots=unreal,
            volume=pos.volume,
            fills=pos.fills,
        )

    def position(self, account: int, symbol: str) -> PositionView:
        """The position of ``account`` in ``symbol`` (flat if it never traded it)."""
        if symbol not in self._unit:
            raise UsageError(f"unknown symbol {symbol!r} (no Instrument given to the portfolio)")
        positions = self._pos.get(account, {})
        return self._view(account, symbol, positions.get(symbol) or _Position())

    def positions(self, account: int | None = None) -> list[PositionView]:
        """Every position ever opened (of ``account``, if given), flat ones included."""
        accounts = [account] if account is not None else sorted(self._pos)
        return [
            self._view(acc, sym, pos)
            for acc in accounts
            for sym, pos in sorted(self._pos.get(acc, {}).items())
        ]

    def accounts(self) -> list[int]:
        """Accounts known to the portfolio."""
        return sorted(set(self._cash) | set(self._pos))

    def account(self, account: int) -> AccountView:
        """Totals of ``account``."""
        cash = self._cash.get(account, self._default_cash)
        realized = _ZERO
        unrealized = _ZERO
        fees = _ZERO
        gross = _ZERO
        net = _ZERO
        for view in self.positions(account):
            realized = _exact_add(realized, view.realized_pnl)
            unrealized = _exact_add(unrealized, view.unrealized_pnl)
            fees = _exact_add(fees, view.fees)
            gross = _exact_add(gross, _EXACT.abs(view.market_value))
            net = _exact_add(net, view.market_value)
        return AccountView(
            account=account,
            cash=cash,
            realized_pnl=realized,
            unrealized_pnl=unrealized,
            fees=fees,
            equity=_exact_add(cash, net),
            gross_exposure=gross,
            net_exposure=net,
        )

    def cash(self, account: int) -> Decimal:
        """Cash of ``account``."""
        return self._cash.get(account, self._default_cash)

    def initial_cash(self, account: int) -> Decimal:
        """Cash ``account`` started with."""
        return self._initial.get(account, self._default_cash)

    def equity(self, account: int) -> Decimal:
        """Cash plus the market value of every position of ``account``.

        The same ``Decimal`` as :meth:`account` (the same value with the same exponent),
        without building the views. An account with one position in a symbol marked from a
        book, whose money unit has an exponent <= 0 (the common case), takes two ``Decimal``
        operations (a product with the unit or the precomputed half unit, a sum with the
        cash); anything else takes :meth:`_equity_general`, the same sums written out.
        """
        one = self._one.get(account)
        if one is not None:
            sym, pos = one
            mid2 = self._mid2.get(sym)
            units = self._unit_fast.get(sym)
            if mid2 is not None and units is not None:
                twice = pos.qty * mid2
                if twice & 1:
                    # (twice * 5 * unit) scaled down one digit, as _equity_general computes
                    # it: the same coefficient and exponent from one product.
                    money = _exact_mul(units[1], twice)
                else:
                    money = _money_mul(units[0], twice >> 1)
                # _equity_general adds money to Decimal(0) first: with an exponent <= 0 that
                # sum is money itself (same coefficient, exponent and sign).
                return _exact_add(self._cash.get(account, self._default_cash), money)
        return self._equity_general(account)

    def _equity_general(self, account: int) -> Decimal:
        """:meth:`equity` by exact ``Decimal`` sums, any mark (the reference for the fast
        path, which tests compare with it)."""
        cash = self._cash.get(account, self._default_cash)
        net = _ZERO
        positions = self._pos.get(account)
        if positions:
            unit = self._unit
            mid2s = self._mid2
            items = sorted(positions.items()) if len(positions) > 1 else positions.items()
            for sym, pos in items:
                # _money(self._value(sym, pos), unit[sym]), inlined for the whole case.
                mid2 = mid2s.get(sym)
                if mid2 is not None:
                    twice = pos.qty * mid2
                    if not twice & 1:
                        money = _money_mul(unit[sym], twice >> 1)
                    else:
                        # twice / 2 ticks: what _money does for a denominator of 2, without
                        # the Fraction (num * unit * 5, scaled down one digit).
                        money = _exact_scaleb(_exact_mul(unit[sym], twice * 5), -1)
                else:
                    value = self._value(sym, pos)
                    if type(value) is int:
                        money = _money_mul(unit[sym], value)
                    else:
                        money = _money(value, unit[sym])
                net = _exact_add(net, money)
        return _exact_add(cash, net)

    def record(self, account: int, symbol: str) -> PositionRecord | None:
        """The exact record of one position (as :meth:`snapshot` has it), None if never opened."""
        positions = self._pos.get(account)
        pos = positions.get(symbol) if positions is not None else None
        if pos is None:
            return None
        realized = pos.rf
        if _DIRECT:
            # _fraction_direct, inlined (one call per fill: the calls would cost as much).
            cost: Any = _new_object(Fraction)
            cost._numerator = pos.cn
            cost._denominator = pos.cd
            if realized is None:
                built: Any = _new_object(Fraction)
                built._numerator = pos.rn
                built._denominator = pos.rd
                realized = pos.rf = built
        else:
            cost = Fraction(pos.cn, pos.cd)
            if realized is None:
                realized = pos.rf = Fraction(pos.rn, pos.rd)
        # PositionRecord(account, symbol, ...), built through its twin (every field, in order).
        rec = _RecordTwin()
        rec.account = account
        rec.symbol = symbol
        rec.qty = pos.qty
        rec.cost_ticklots = cost
        rec.realized_ticklots = realized
        rec.fees = pos.fees
        rec.volume = pos.volume
        rec.fills = pos.fills
        rec.__class__ = PositionRecord
        result: PositionRecord = rec
        return result

    def record_values(
        self, account: int, symbol: str
    ) -> tuple[int, int, int, int, int, Decimal, int, int] | None:
        """:meth:`record` as plain values, None if never opened: ``(qty, cost numerator, cost
        denominator, realized numerator, realized denominator, fees, volume, fills)``, each
        ratio in lowest terms with a positive denominator (``record(...).cost_ticklots ==
        Fraction(cost numerator, cost denominator)``). Builds no object but the tuple: for a
        caller that only turns the record into text (the store's ``position_values_op``)."""
        positions = self._pos.get(account)
        pos = positions.get(symbol) if positions is not None else None
        if pos is None:
            return None
        return (pos.qty, pos.cn, pos.cd, pos.rn, pos.rd, pos.fees, pos.volume, pos.fills)

    def sample(self, ts_ns: int) -> list[EquitySample]:
        """Append one equity sample per account at ``ts_ns``; returns them."""
        out = []
        for acc in self.accounts():
            view = self.account(acc)
            s = EquitySample(
                ts_ns=ts_ns,
                account=acc,
                equity=view.equity,
                cash=view.cash,
                realized_pnl=view.realized_pnl,
                unrealized_pnl=view.unrealized_pnl,
                fees=view.fees,
            )
            self._curve.setdefault(acc, []).append(s)
            out.append(s)
        return out

    def equity_curve(self, account: int) -> list[EquitySample]:
        """Samples of ``account`` so far, oldest first."""
        return list(self._curve.get(account, ()))

    # ------------------------------------------------------------------ persistence

    def snapshot(self) -> list[PositionRecord]:
        """Exact records of every position, for the store."""
        return [
            PositionRecord(
                account=acc,
                symbol=sym,
                qty=pos.qty,
                cost_ticklots=_fraction(pos.cn, pos.cd),
                realized_ticklots=_fraction(pos.rn, pos.rd),
                fees=pos.fees,
                volume=pos.volume,
                fills=pos.fills,
            )
            for acc in sorted(self._pos)
            for sym, pos in sorted(self._pos[acc].items())
        ]

    def restore(
        self,
        records: Iterable[PositionRecord],
        cash: Mapping[int, Decimal] | None = None,
        initial_cash: Mapping[int, Decimal] | None = None,
    ) -> None:
        """Load positions (and account cash) saved by :meth:`snapshot` (at start-up)."""
        for acc, amount in (initial_cash or {}).items():
            self._initial[acc] = self._check_cash(amount, f"initial cash of account {acc}")
        for acc, amount in (cash or {}).items():
            self._cash[acc] = self._check_cash(amount, f"cash of account {acc}")
        for rec in records:
            if rec.symbol not in self._unit:
                raise UsageError(
                    f"restore: position of account {rec.account} in unknown symbol "
                    f"{rec.symbol!r} (no Instrument given to the portfolio)"
                )
            pos = _Position()
            pos.qty = rec.qty
            pos.set_cost(rec.cost_ticklots)
            pos.set_realized(rec.realized_ticklots)
            pos.fees = rec.fees
            pos.volume = rec.volume
            pos.fills = rec.fills
            positions = self._account(rec.account)
            positions[rec.symbol] = pos
            self._sync_one(rec.account, positions)
            qtys = self._qtys.get(rec.account)
            if qtys is not None:
                qtys[rec.symbol] = pos.qty
