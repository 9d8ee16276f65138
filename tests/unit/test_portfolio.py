"""Portfolio: hand-worked positions and P&L, and the conservation property."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tradecore.enums import Side
from tradecore.errors import UsageError
from tradecore.execution import DictL2Book, Fill, Liquidity, Portfolio
from tradecore.execution.portfolio import COST_GRID
from tradecore.instrument import Instrument
from tradecore.marketdata.events import BookUpdate

SYM = "BTCUSDT"
INST = Instrument(SYM, tick_size="0.01", lot_size="0.001")  # 1 tick-lot = 0.00001 USDT
UNIT = Decimal("0.00001")


def fill(side: Side, qty: int, price: int, fid: int, fee: str = "0", account: int = 1) -> Fill:
    return Fill(account, SYM, fid, side, price, qty, Liquidity.TAKER, Decimal(fee), fid, fid)


def test_long_then_partial_close_then_flip_short() -> None:
    pf = Portfolio([INST], initial_cash=Decimal(100))
    pf.on_fill(fill(Side.BUY, 10, 100_00, 1, fee="0.01"))
    pf.on_fill(fill(Side.BUY, 20, 103_00, 2, fee="0.02"))
    p = pf.position(1, SYM)
    # avg = (10 * 10000 + 20 * 10300) / 30 = 10200 ticks = 102.00
    assert (p.qty, p.avg_price_ticks, p.avg_price) == (30, Fraction(10200), Decimal("102.00"))
    # Sell 40 at 104.00: closes 30 (realized 30 * 200 ticks-lots = 6000 -> 0.06), opens -10.
    pf.on_fill(fill(Side.SELL, 40, 104_00, 3, fee="0.03"))
    p = pf.position(1, SYM)
    assert p.qty == -10
    assert p.avg_price_ticks == 10400
    assert p.realized_pnl == Decimal("0.06")
    assert p.fees == Decimal("0.06")
    # Cash: 100 - (100000 + 206000) * UNIT + 40 * 10400 * UNIT - 0.06
    #     = 100 - 3.06 + 4.16 - 0.06 = 101.04
    assert pf.cash(1) == Decimal("101.04")
    # Mark at mid of 103.00 / 103.02 = 103.01: short 10 from 104.00 gains 10 * 99 tick-lots.
    pf.mark(SYM, 103_00, 103_02)
    p = pf.position(1, SYM)
    assert p.unrealized_pnl == Decimal("0.00990")
    acct = pf.account(1)
    assert acct.equity == Decimal("101.04") - 10 * 10301 * UNIT
    assert acct.equity == Decimal(100) + acct.realized_pnl + acct.unrealized_pnl - acct.fees


def test_fractional_average_is_exact_and_a_partial_close_rounds_to_the_grid() -> None:
    pf = Portfolio([INST])
    pf.on_fill(fill(Side.BUY, 1, 100, 1))
    pf.on_fill(fill(Side.BUY, 2, 101, 2))
    p = pf.position(1, SYM)
    assert p.avg_price_ticks == Fraction(302, 3)  # 100.666... ticks: not a float, not rounded
    pf.on_fill(fill(Side.SELL, 1, 102, 3))
    p = pf.position(1, SYM)
    # The two lots left would cost 604/3 tick-lots: off the 10**-12 grid, so rounded half-even
    # (201.333333333333); realized takes exactly the rest: 102 - (302 - 201.333333333333).
    assert COST_GRID == 10**12
    kept = Fraction(201_333_333_333_333, 10**12)
    assert p.avg_price_ticks == kept / 2
    assert p.realized_ticklots == 102 - (302 - kept) == Fraction(1_333_333_333_333, 10**12)
    pf.on_fill(fill(Side.SELL, 2, 99, 4))
    p = pf.position(1, SYM)
    # Total: bought 302, sold 102 + 198 = 300 -> -2 tick-lots, exact whatever was rounded.
    assert p.qty == 0 and p.realized_ticklots == -2
    assert p.realized_pnl == Decimal("-0.00002")


def test_partial_closes_keep_denominators_bounded() -> None:
    # A position wandering around without going flat, partly closed again and again at odd
    # sizes: exact averages would multiply their denominators at every close (thousands of
    # digits after a few thousand fills, and str() of them fails past 4,300 digits).
    import random

    rng = random.Random(5)
    pf = Portfolio([INST])
    total_spent = 0
    for i in range(5_000):
        qty = pf.position_qty(1, SYM)
        side = Side.SELL if qty > 60 else Side.BUY if qty < 5 else rng.choice([Side.BUY, Side.SELL])
        lots = rng.choice([1, 2, 3, 7, 11, 13])
        price = rng.randint(9_900, 10_100)
        pf.on_fill(fill(side, lots, price, i + 1))
        total_spent += price * (lots if side is Side.BUY else -lots)
        rec = pf.record(1, SYM)
        assert rec is not None
        for value in (rec.cost_ticklots, rec.realized_ticklots):
            assert COST_GRID % Fraction(value).denominator == 0
            str(value)  # what the store writes
    # What was realized is what the closed lots gave: the net spent minus the cost still
    # carried by the open lots, exactly (the rounding only moved value between the two).
    rec = pf.record(1, SYM)
    assert rec is not None
    assert rec.realized_ticklots == rec.cost_ticklots - total_spent
    last_mark = 10_000
    pf.mark_price(SYM, last_mark)
    view = pf.position(1, SYM)
    # Total P&L (realized + unrealized) = qty * mark - net spent, exactly.
    assert view.realized_ticklots + view.unrealized_ticklots == view.qty * last_mark - total_spent


def test_duplicate_fill_ids_are_ignored() -> None:
    pf = Portfolio([INST])
    f = fill(Side.BUY, 1, 100, 1)
    pf.on_fill(f)
    pf.on_fill(f)
    assert pf.position_qty(1, SYM) == 1
    assert pf.duplicate_fills == 1


def test_mark_from_book_and_equity_curve() -> None:
    pf = Portfolio([INST], initial_cash={1: Decimal(10), 2: Decimal(20)})
    pf.on_fill(fill(Side.BUY, 100, 1000, 1))
    pf.on_book(BookUpdate(SYM, 0, 0, 0, DictL2Book({1010: 1}, {1012: 1})))
    pf.sample(5)
    pf.mark(SYM, 990, 990)
    pf.sample(6)
    curve = pf.equity_curve(1)
    # +11 ticks * 100 lots = 1100 tick-lots = 0.011; then -10 * 100 = -0.010.
    assert [(s.ts_ns, s.equity) for s in curve] == [(5, Decimal("10.011")), (6, Decimal("9.990"))]
    assert [s.equity for s in pf.equity_curve(2)] == [Decimal(20), Decimal(20)]


def test_snapshot_and_restore_round_trip() -> None:
    pf = Portfolio([INST], initial_cash=Decimal(50))
    pf.on_fill(fill(Side.BUY, 1, 100, 1, fee="0.001"))
    pf.on_fill(fill(Side.BUY, 2, 101, 2))
    pf.on_fill(fill(Side.SELL, 1, 103, 3))
    pf.mark(SYM, 104, 104)
    again = Portfolio([INST], initial_cash=Decimal(50))
    again.restore(pf.snapshot(), cash={1: pf.cash(1)})
    again.mark(SYM, 104, 104)
    assert again.position(1, SYM) == pf.position(1, SYM)
    assert again.account(1) == pf.account(1)


def test_bad_input() -> None:
    with pytest.raises(UsageError, match="initial_cash"):
        Portfolio([INST], initial_cash=1.5)  # type: ignore[arg-type]
    pf = Portfolio([INST])
    bad = Fill(1, "ETHUSDT", 1, Side.BUY, 1, 1, Liquidity.TAKER, Decimal(0), 0, 1)
    with pytest.raises(UsageError, match="unknown symbol 'ETHUSDT'"):
        pf.on_fill(bad)


fills_strategy = st.lists(
    st.tuples(
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(1, 50),  # lots
        st.integers(9_000, 11_000),  # ticks
        st.integers(-5, 20),  # fee in 1e-6 USDT (negative = rebate)
        st.integers(1, 2),  # account
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(fills=fills_strategy, mark=st.integers(9_000, 11_000), ask_off=st.integers(0, 3))
def test_cash_plus_position_value_is_conserved_apart_from_fees(
    fills: list[tuple[Side, int, int, int, int]], mark: int, ask_off: int
) -> None:
    pf = Portfolio([INST], initial_cash=Decimal(1_000))
    fees = {1: Decimal(0), 2: Decimal(0)}
    for i, (side, qty, price, fee_micro, account) in enumerate(fills):
        fee = Decimal(fee_micro) / 1_000_000
        # Marked at the fill price, a fill changes equity by exactly -fee: cash moves by
        # -price*qty and the position's value by +price*qty.
        pf.mark_price(SYM, price)
        before = pf.equity(account)
        pf.on_fill(Fill(account, SYM, i, side, price, qty, Liquidity.TAKER, fee, i, i))
        assert pf.equity(account) == before - fee
        fees[account] += fee
    pf.mark(SYM, mark, mark + ask_off)
    mid = Fraction(2 * mark + ask_off, 2)
    for account in (1, 2):
        mine = [f for f in fills if f[4] == account]
        net_lots = sum(q if s is Side.BUY else -q for s, q, _, _, _ in mine)
        spent = sum((q if s is Side.BUY else -q) * p for s, q, p, _, _ in mine)
        view = pf.account(account)
        # Independent computation: equity = initial + (value of the net position - what was
        # paid for it) - fees, in exact tick-lots.
        pnl_ticklots = net_lots * mid - spent
        expected = Decimal(1_000) + Decimal(pnl_ticklots.numerator) * UNIT / Decimal(
            pnl_ticklots.denominator
        )
        assert view.equity == expected - fees[account]
        # The average-cost bookkeeping (realized + unrealized, exact tick-lots) agrees with it
        # exactly; its Decimal views may round a non-terminating average to 34 digits.
        (pos,) = pf.positions(account) or [pf.position(account, SYM)]
        pnl_books = (pos.realized_ticklots + pos.unrealized_ticklots) * Fraction(UNIT)
        assert Fraction(view.equity) == 1_000 + pnl_books - Fraction(view.fees)
        assert abs(view.realized_pnl + view.unrealized_pnl - (view.equity - 1_000 + view.fees)) < (
            Decimal("1e-30")
        )
        assert view.fees == fees[account]
        assert pf.position_qty(account, SYM) == net_lots
        # And no float crept in anywhere.
        for p in pf.positions(account):
            assert isinstance(p.realized_pnl, Decimal)
            assert p.avg_price_ticks is None or isinstance(p.avg_price_ticks, Fraction)


class _ReferencePosition:
    """The module doc's average-cost rules, step by step in Fractions (the oracle), with the
    cost left after a partial close rounded half-even to the ``COST_GRID`` grid."""

    def __init__(self) -> None:
        self.qty = 0
        self.cost = Fraction(0)
        self.realized = Fraction(0)

    def apply(self, signed: int, price: int) -> None:
        if self.qty == 0 or (self.qty > 0) == (signed > 0):
            self.qty += signed
            self.cost += price * signed
            return
        sign = 1 if self.qty > 0 else -1
        closing = min(abs(signed), abs(self.qty))
        avg = self.cost / self.qty
        opening = abs(signed) - closing
        remaining = 0 if opening else self.qty - sign * closing
        kept = avg * remaining
        if (kept * COST_GRID).denominator != 1:
            kept = Fraction(round(kept * COST_GRID), COST_GRID)  # round() is half-even
        self.realized += sign * closing * price - (self.cost - kept)
        if opening:
            self.qty = -sign * opening
            self.cost = Fraction(price * self.qty)
        else:
            self.qty = remaining
            self.cost = kept


@pytest.mark.parametrize("seed", range(40))
def test_positions_and_cash_match_a_step_by_step_fraction_model(seed: int) -> None:
    # Small quantities flipping around zero and partial closes leave fractional averages
    # (thirds, sevenths): the portfolio's integer bookkeeping must give the same exact values,
    # with whole values kept as int, and the same cash Decimal (value and exponent).
    import random

    rng = random.Random(seed)
    inst = Instrument("ODD", tick_size="0.5", lot_size="3")
    unit = Decimal("1.5")
    pf = Portfolio([inst], {1: Decimal("100.25")})
    ref = _ReferencePosition()
    cash = Decimal("100.25")
    for i in range(150):
        side = rng.choice([Side.BUY, Side.SELL])
        qty = rng.choice([1, 2, 3, 5, 7, rng.randint(1, 40)])
        price = rng.randint(1, 500)
        fee = Decimal(rng.randint(-3, 40)) / 100
        pf.on_fill(Fill(1, "ODD", i, side, price, qty, Liquidity.TAKER, fee, i, i + 1))
        signed = qty if side is Side.BUY else -qty
        ref.apply(signed, price)
        cash = cash - Decimal(price * signed) * unit - fee
        rec = pf.record(1, "ODD")
        assert rec is not None
        assert (rec.qty, rec.cost_ticklots, rec.realized_ticklots) == (
            ref.qty,
            ref.cost,
            ref.realized,
        )
        assert str(pf.cash(1)) == str(cash)
        if rng.random() < 0.2:
            bid = rng.randint(1, 500)
            pf.mark("ODD", bid, bid + rng.randint(0, 3))
    pos = pf._pos[1]["ODD"]
    for value in (pos.cost, pos.realized):
        assert type(value) is int or Fraction(value).denominator != 1
    # The fast equity (no views) is the same Decimal as the account view's.
    assert str(pf.equity(1)) == str(pf.account(1).equity)


@pytest.mark.parametrize("seed", range(30))
def test_closing_on_integers_matches_the_fraction_model_from_any_restored_position(
    seed: int,
) -> None:
    # ``_close`` and the opening fill work on integer numerators and denominators. A position
    # restored from a record may carry any exact cost and realized P&L (denominators off the
    # COST_GRID grid: thirds, sevenths, large primes, as an older store could hold), so start
    # from such values and check every step against the Fraction model; whole values stay int.
    import random

    from tradecore.execution.portfolio import PositionRecord

    rng = random.Random(1_000 + seed)
    den = rng.choice([1, 2, 3, 7, 12, 10**12, 3 * 10**12, 999_983, 2**40])
    qty = rng.choice([-9, -4, -1, 1, 3, 8, 25])
    cost = Fraction(rng.randint(-(10**9), 10**9), den) + rng.randint(1, 500) * qty
    realized = Fraction(rng.randint(-(10**9), 10**9), rng.choice([1, 3, 7, 10**12, 999_983]))
    pf = Portfolio([INST], {1: Decimal(0)})
    pf.restore([PositionRecord(1, SYM, qty, cost, realized, Decimal(0))])
    ref = _ReferencePosition()
    ref.qty, ref.cost, ref.realized = qty, cost, realized
    for i in range(120):
        side = rng.choice([Side.BUY, Side.SELL])
        q = rng.choice([1, 1, 2, 3, 5, rng.randint(1, 60)])
        price = rng.randint(1, 10**6)
        pf.on_fill(fill(side, q, price, i + 1))
        ref.apply(q if side is Side.BUY else -q, price)
        rec = pf.record(1, SYM)
        assert rec is not None
        assert (rec.qty, rec.cost_ticklots, rec.realized_ticklots) == (
            ref.qty,
            ref.cost,
            ref.realized,
        )
        pos = pf._pos[1][SYM]
        for value in (pos.cost, pos.realized):
            assert type(value) is int or (type(value) is Fraction and value.denominator != 1)


# ---------------------------------------------------------------- fast paths vs general paths

ODD_UNITS = [
    Instrument("AAA", tick_size="0.01", lot_size="0.001"),  # unit 1E-5
    Instrument("BBB", tick_size="0.5", lot_size="3"),  # unit 1.5
    Instrument("CCC", tick_size="0.00000001", lot_size="100"),  # unit 0.000001 (1.00E-6)
    Instrument("DDD", tick_size="1E+1", lot_size="1E+3"),  # unit 1E+4 (exponent > 0)
]


@pytest.mark.parametrize("seed", range(8))
def test_equity_fast_path_is_the_general_sum_digit_for_digit(seed: int) -> None:
    # Portfolio.equity values an account with one book-marked position in two Decimal
    # operations; the reference is _equity_general (the exact Decimal sums of the views, any
    # mark). Same value and the same exponent (as_tuple), on random fills and fees of any
    # scale, odd mids (half ticks), explicit marks, unmarked and flat positions, units with
    # exponents below and above 0, cash with positive and negative exponents; accounts 1-4
    # trade every symbol, accounts 5-8 one symbol each (the fast path's case).
    import random

    rng = random.Random(seed)
    syms = [i.symbol for i in ODD_UNITS]
    cash = {1: Decimal("1000"), 2: Decimal("0"), 3: Decimal("1E+3"), 4: Decimal("-7.125")}
    cash.update({5: Decimal("1E+2"), 6: Decimal("0.000"), 7: Decimal("-3"), 8: Decimal("5E+1")})
    own = {5 + i: s for i, s in enumerate(syms)}
    pf = Portfolio(ODD_UNITS, cash)
    fast_hits = 0
    for n in range(1, 500):
        acc = rng.choice(list(cash))
        sym = own.get(acc) or rng.choice(syms)
        side = rng.choice((Side.BUY, Side.SELL))
        # Account 8 (unit 1E+4) keeps a cash exponent > 0: fees in tens to thousands.
        fee = Decimal(rng.randint(-50, 500)).scaleb(
            rng.randint(1, 3) if acc == 8 else rng.randint(-12, 3)
        )
        price, qty = rng.randint(1, 10**6), rng.randint(1, 9)
        f = Fill(acc, sym, n, side, price, qty, Liquidity.TAKER, fee, n, n)
        pf.on_fill(f)
        roll = rng.random()
        if roll < 0.5:
            bid = rng.randint(1, 10**6)
            pf.mark(sym, bid, bid + rng.randint(0, 3))  # odd and even mids
        elif roll < 0.53:
            pf.mark_price(sym, Fraction(rng.randint(1, 10**6), rng.choice((1, 2, 3, 8))))
        for a in cash:
            fast = pf.equity(a)
            ref = pf._equity_general(a)
            assert fast.as_tuple() == ref.as_tuple(), (a, fast, ref)
            if a in own and own[a] != "DDD" and pf.mark2_of(own[a]) is not None:
                fast_hits += 1
    assert fast_hits > 600  # the fast path ran, not only the general one
    # Accounts without positions, and an account not seen at all.
    pf2 = Portfolio(ODD_UNITS, {1: Decimal("12.50")})
    pf2.open_account(1)
    assert pf2.equity(1).as_tuple() == pf2._equity_general(1).as_tuple()
    assert pf2.equity(9).as_tuple() == pf2._equity_general(9).as_tuple()


def test_equity_fast_path_zero_and_flat_marked_positions() -> None:
    pf = Portfolio([ODD_UNITS[0]], {1: Decimal("0.00")})
    pf.on_fill(Fill(1, "AAA", 1, Side.BUY, 100, 2, Liquidity.TAKER, Decimal(0), 1, 1))
    pf.on_fill(Fill(1, "AAA", 2, Side.SELL, 100, 2, Liquidity.TAKER, Decimal(0), 2, 2))
    pf.mark("AAA", 100, 101)  # flat position, odd mid: contributes its exponent only
    assert pf.position_qty(1, "AAA") == 0
    assert pf.equity(1).as_tuple() == pf._equity_general(1).as_tuple()
    assert pf.equity(1) == 0


@pytest.mark.parametrize("seed", range(4))
def test_mark_books_equals_one_mark_per_symbol(seed: int) -> None:
    import random

    rng = random.Random(seed)
    syms = [i.symbol for i in ODD_UNITS]
    fast = Portfolio(ODD_UNITS)
    ref = Portfolio(ODD_UNITS)
    books = {s: DictL2Book() for s in syms}
    moved_seen = 0
    for _ in range(400):
        for s in rng.sample(syms, rng.randint(1, len(syms))):
            book = books[s]
            for side in (Side.BUY, Side.SELL):
                for p, _q in book.depth(10)[0] if side is Side.BUY else book.depth(10)[1]:
                    if rng.random() < 0.3:
                        book.set(side, p, 0)
            if rng.random() < 0.8:
                book.set(Side.BUY, rng.randint(90, 100), rng.randint(1, 5))
            if rng.random() < 0.8:
                book.set(Side.SELL, rng.randint(101, 110), rng.randint(1, 5))
        if rng.random() < 0.1:
            s = rng.choice(syms)
            price = Fraction(rng.randint(1, 999), 7)
            for pf in (fast, ref):
                pf.mark_price(s, price)
        dirty = set(rng.sample(syms, rng.randint(0, len(syms))))
        gone = rng.choice(syms)  # a symbol whose book is not synced: skipped by both

        def book_of(s: str, gone: str = gone) -> DictL2Book | None:
            return None if s == gone else books[s]

        moved: set[str] = set()
        fast.mark_books(dirty, book_of, moved)
        expected = set()
        for s in dirty:
            b = book_of(s)
            if b is None:
                continue
            bid, ask = b.best_bid(), b.best_ask()
            if ref.mark(s, bid[0] if bid else None, ask[0] if ask else None):
                expected.add(s)
        assert moved == expected
        moved_seen += len(moved)
        for s in syms:
            assert fast.mark_of(s) == ref.mark_of(s) and fast.mark2_of(s) == ref.mark2_of(s)
    assert moved_seen > 100
