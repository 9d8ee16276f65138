"""The portfolio as it was before integer numerators/denominators (session 5): the oracle of
test_portfolio_fast.py. A verbatim copy of python/tradecore/execution/portfolio.py at commit
2e0ed5a, kept only as a test reference; do not import it from the package."""

# ruff: noqa

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
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
        return _MONEY.multiply(Decimal(ticklots), unit)
    num, den = ticklots.numerator, ticklots.denominator
    # Exact whatever the length: after many partial closes an average's numerator can have
    # more digits than _MONEY keeps (its Inexact trap fired on long runs); the rounding, if
    # any, is the one division below.
    scaled = _EXACT.multiply(Decimal(num), unit)
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
        return _EXACT.scaleb(_EXACT.multiply(scaled, factor), -m)
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


class _Position:
    __slots__ = ("cost", "fees", "fills", "qty", "realized", "volume")

    def __init__(self) -> None:
        self.qty = 0
        self.cost: TickLots = 0
        self.realized: TickLots = 0
        self.fees = _ZERO
        self.volume = 0
        self.fills = 0


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
        # A symbol's mark is in exactly one of these: ``_mid2`` holds twice the mark as an int
        # (what :meth:`mark` sets: mids are whole or half ticks, no Fraction to build on every
        # book), ``_marks`` an explicit exact price (:meth:`mark_price`).
        self._mid2: dict[str, int] = {}
        self._marks: dict[str, Fraction] = {}
        self._curve: dict[int, list[EquitySample]] = {}
        self._fill_ids: set[tuple[int, int]] = set()
        self.duplicate_fills = 0

    @staticmethod
    def _check_cash(amount: object, what: str) -> Decimal:
        if isinstance(amount, bool) or not isinstance(amount, Decimal | int):
            raise UsageError(f"{what} must be a Decimal or int, got {type(amount).__name__}")
        d = Decimal(amount)
        if not d.is_finite():
            raise UsageError(f"{what} must be finite, got {amount}")
        return d

    def add_instrument(self, instrument: Instrument) -> None:
        """Make ``instrument.symbol`` tradable (its tick and lot size price the positions)."""
        if not isinstance(instrument, Instrument):
            raise UsageError(f"instruments must be Instrument values, got {instrument!r}")
        self._inst[instrument.symbol] = instrument
        unit = _MONEY.multiply(instrument.tick_size, instrument.lot_size)
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
        key = (account, fill.fill_id)
        fill_ids = self._fill_ids
        if key in fill_ids:
            self.duplicate_fills += 1
            return
        fill_ids.add(key)
        positions = self._pos.get(account)
        if positions is None:
            positions = self._account(account)
        pos = positions.get(symbol)
        if pos is None:
            pos = positions[symbol] = _Position()
        fqty = fill.qty
        signed = fqty if fill.side is _BUY else -fqty
        price = fill.price
        qty = pos.qty
        if qty == 0 or (qty > 0) == (signed > 0):
            pos.qty = qty + signed
            cost = pos.cost
            if type(cost) is int:
                pos.cost = cost + price * signed
            else:
                # n / d + k is (n + k * d) / d, still in lowest terms: one constructor call
                # instead of the Fraction operator's dispatch.
                d = cost.denominator
                pos.cost = Fraction(cost.numerator + price * signed * d, d)
        else:
            self._close(pos, qty, signed, price)
        fee = fill.fee
        pos.fees = _MONEY.add(pos.fees, fee)
        pos.volume += fqty
        pos.fills += 1
        # unit * (price * signed): the same exact product as Decimal(price * signed) * unit.
        cash = self._cash
        cash[account] = _MONEY.subtract(
            _MONEY.subtract(cash[account], _MONEY.multiply(unit, price * signed)), fee
        )

    @staticmethod
    def _close(pos: _Position, qty: int, signed: int, price: int) -> None:
        """A fill of ``signed`` lots at ``price`` against the position ``qty`` (opposite signs).

        The cost left on the open lots is ``cost * remaining / qty``, kept exact when it lies
        on the grid of ``1 / COST_GRID`` tick-lots and rounded half-even to it otherwise; the
        realized P&L takes exactly what the closed lots gave: ``sign * closing * price`` minus
        the cost taken off the position. So every value has a denominator dividing
        ``COST_GRID`` (bounded, whatever the number of partial closes), and the rounding only
        moves P&L between realized and unrealized: their sum is exact.

        Computed on integer numerators and denominators (``Fraction`` operators cost a
        microsecond or two each in CPython): a ``Fraction`` is built only for a stored value
        that is not whole, at most one for the cost and one for the realized P&L.
        """
        sign = 1 if qty > 0 else -1
        size = signed if signed > 0 else -signed
        held = qty if qty > 0 else -qty
        closing = size if size < held else held
        remaining = qty - sign * closing
        opening = size - closing
        cost0 = pos.cost
        if type(cost0) is int:
            cn, cd = cost0, 1
        else:
            cn, cd = cost0.numerator, cost0.denominator
        # kept = kn / kd in lowest terms (kd > 0), and the stored value ``kept``.
        kept: int | Fraction
        if opening or remaining == 0:
            kept = kn = 0
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
            kept = kn if kd == 1 else Fraction(kn, kd)
        # realized + sign * closing * price - (cost0 - kept), over the common denominator.
        old = pos.realized
        if type(old) is int:
            rn, rd = old, 1
        else:
            rn, rd = old.numerator, old.denominator
        if rd == 1 and cd == 1 and kd == 1:
            pos.realized = rn + sign * closing * price - cn + kn
        else:
            d = rd * cd * kd
            n = rn * cd * kd + rd * ((sign * closing * price * cd - cn) * kd + kn * cd)
            g = gcd(n, d)
            pos.realized = n // g if g == d else Fraction(n // g, d // g)
        if opening:
            new_qty = pos.qty = -sign * opening
            pos.cost = price * new_qty
        else:
            pos.qty = remaining
            pos.cost = kept

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
            realized = _EXACT.add(realized, view.realized_pnl)
            unrealized = _EXACT.add(unrealized, view.unrealized_pnl)
            fees = _EXACT.add(fees, view.fees)
            gross = _EXACT.add(gross, _EXACT.abs(view.market_value))
            net = _EXACT.add(net, view.market_value)
        return AccountView(
            account=account,
            cash=cash,
            realized_pnl=realized,
            unrealized_pnl=unrealized,
            fees=fees,
            equity=_EXACT.add(cash, net),
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
        positions = self._pos.get(account)
        if positions and len(positions) == 1:
            [(sym, pos)] = positions.items()
            mid2 = self._mid2.get(sym)
            units = self._unit_fast.get(sym)
            if mid2 is not None and units is not None:
                twice = pos.qty * mid2
                if twice & 1:
                    # (twice * 5 * unit) scaled down one digit, as _equity_general computes
                    # it: the same coefficient and exponent from one product.
                    money = _EXACT.multiply(units[1], twice)
                else:
                    money = _MONEY.multiply(units[0], twice >> 1)
                # _equity_general adds money to Decimal(0) first: with an exponent <= 0 that
                # sum is money itself (same coefficient, exponent and sign).
                return _EXACT.add(self._cash.get(account, self._default_cash), money)
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
                        money = _MONEY.multiply(unit[sym], twice >> 1)
                    else:
                        # twice / 2 ticks: what _money does for a denominator of 2, without
                        # the Fraction (num * unit * 5, scaled down one digit).
                        money = _EXACT.scaleb(_EXACT.multiply(unit[sym], twice * 5), -1)
                else:
                    value = self._value(sym, pos)
                    if type(value) is int:
                        money = _MONEY.multiply(unit[sym], value)
                    else:
                        money = _money(value, unit[sym])
                net = _EXACT.add(net, money)
        return _EXACT.add(cash, net)

    def record(self, account: int, symbol: str) -> PositionRecord | None:
        """The exact record of one position (as :meth:`snapshot` has it), None if never opened."""
        positions = self._pos.get(account)
        pos = positions.get(symbol) if positions is not None else None
        if pos is None:
            return None
        cost = pos.cost
        realized = pos.realized
        return PositionRecord(
            account,
            symbol,
            pos.qty,
            cost if type(cost) is Fraction else Fraction(cost),
            realized if type(realized) is Fraction else Fraction(realized),
            pos.fees,
            pos.volume,
            pos.fills,
        )

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
                cost_ticklots=Fraction(pos.cost),
                realized_ticklots=Fraction(pos.realized),
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
            cost = Fraction(rec.cost_ticklots)
            pos.cost = cost.numerator if cost.denominator == 1 else cost
            realized = Fraction(rec.realized_ticklots)
            pos.realized = realized.numerator if realized.denominator == 1 else realized
            pos.fees = rec.fees
            pos.volume = rec.volume
            pos.fills = rec.fills
            self._account(rec.account)[rec.symbol] = pos
