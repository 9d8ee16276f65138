"""The portfolio's integer bookkeeping against the previous implementation (the oracle).

Session 5 moved the portfolio onto integer numerator/denominator pairs (no ``Fraction`` built
per fill), bound ``Decimal`` context methods, computed views on integers and added
``record_values`` (with the store's ``position_values_op`` / ``account_values_op``). Every value
it exposes must stay exactly what the previous code gave: the same ``Fraction`` values, the
same ``Decimal`` digits and exponents (``as_tuple``), the same types. ``_portfolio_reference``
is that previous module, verbatim; both are fed the same random streams of fills, marks,
explicit prices, restores and duplicates, and compared after every step.
"""

from __future__ import annotations

import dataclasses
import pickle
import random
from decimal import Decimal
from fractions import Fraction
from typing import Any

import _portfolio_reference as old
import pytest
from tradecore.enums import Side
from tradecore.execution import Fill, Liquidity, Portfolio
from tradecore.execution.portfolio import PositionRecord
from tradecore.instrument import Instrument
from tradecore.store import (
    AccountRow,
    PositionRow,
    account_op,
    account_values_op,
    position_op,
    position_values_op,
)

INSTRUMENTS = [
    Instrument("AAA", tick_size="0.01", lot_size="0.001"),  # unit 1E-5
    Instrument("BBB", tick_size="0.5", lot_size="3"),  # unit 1.5
    Instrument("CCC", tick_size="0.00000001", lot_size="100"),  # unit 1.00E-6
    Instrument("DDD", tick_size="1E+1", lot_size="1E+3"),  # exponent > 0
    Instrument("NKN", tick_size="0.0001", lot_size="1"),
]
SYMS = [i.symbol for i in INSTRUMENTS]
RECORD_FIELDS = dataclasses.fields(PositionRecord)


def _same(a: Any, b: Any, what: str) -> None:
    """Equal values of the same type; Decimals also with the same digits and exponent."""
    assert type(a) is type(b), (what, a, b)
    if isinstance(a, Decimal):
        assert a.as_tuple() == b.as_tuple(), (what, a, b)
    elif isinstance(a, Fraction):
        assert (a.numerator, a.denominator) == (b.numerator, b.denominator), (what, a, b)
        assert str(a) == str(b) and hash(a) == hash(b), (what, a, b)
    else:
        assert a == b, (what, a, b)


def _same_record(a: Any, b: Any, what: str) -> None:
    if a is None or b is None:
        assert a is None and b is None, what
        return
    for f in dataclasses.fields(b):
        _same(getattr(a, f.name), getattr(b, f.name), f"{what}.{f.name}")


def _compare(new: Portfolio, ref: Any, accounts: list[int]) -> None:
    for acc in accounts:
        _same(new.cash(acc), ref.cash(acc), f"cash {acc}")
        _same(new.equity(acc), ref.equity(acc), f"equity {acc}")
        _same(new._equity_general(acc), ref._equity_general(acc), f"equity general {acc}")
        _same_record(new.account(acc), ref.account(acc), f"account {acc}")
        for sym in SYMS:
            _same(new.position_qty(acc, sym), ref.position_qty(acc, sym), "qty")
            # The live view (made before the stream for accounts 1 and 2, before a restore
            # too; at the first comparison for 3 and 4) follows every change.
            _same(new.qty_view(acc)[sym], ref.position_qty(acc, sym), "qty view")
            rec = new.record(acc, sym)
            _same_record(rec, ref.record(acc, sym), f"record {acc} {sym}")
            values = new.record_values(acc, sym)
            if rec is not None:
                # Built through the slots twin: an ordinary PositionRecord in every respect.
                assert type(rec) is PositionRecord
                built = PositionRecord(*(getattr(rec, f.name) for f in RECORD_FIELDS))
                assert rec == built and hash(rec) == hash(built) and repr(rec) == repr(built)
                assert pickle.loads(pickle.dumps(rec)) == built
                assert dataclasses.replace(rec, qty=rec.qty) == built
                with pytest.raises(dataclasses.FrozenInstanceError):
                    rec.qty = 0  # type: ignore[misc]
            if rec is None:
                assert values is None
                continue
            assert values is not None
            qty, cn, cd, rn, rd, fees, volume, fills = values
            assert cd > 0 and rd > 0
            assert (qty, Fraction(cn, cd), Fraction(rn, rd), fees, volume, fills) == (
                rec.qty,
                rec.cost_ticklots,
                rec.realized_ticklots,
                rec.fees,
                rec.volume,
                rec.fills,
            )
            row = PositionRow(
                acc,
                sym,
                rec.qty,
                rec.cost_ticklots,
                rec.realized_ticklots,
                rec.fees,
                rec.volume,
                rec.fills,
                77,
            )
            op = position_op(row)
            assert position_values_op(acc, sym, values, 77) == op
            # The previous position_op: str() of each value.
            assert op[1][3:6] == (
                str(rec.cost_ticklots),
                str(rec.realized_ticklots),
                str(rec.fees),
            )
        views = new.positions(acc)
        ref_views = ref.positions(acc)
        assert len(views) == len(ref_views)
        for v, r in zip(views, ref_views, strict=True):
            _same_record(v, r, f"view {acc} {r.symbol}")
            pos = new._pos[acc][v.symbol]
            _same_record(new._view_reference(acc, v.symbol, pos), r, "view reference")
        acc_row = AccountRow(acc, new.cash(acc), new.initial_cash(acc), 5)
        assert account_values_op(acc, acc_row.cash, acc_row.initial_cash, 5) == account_op(acc_row)
    for s in SYMS:
        _same(new.mark_of(s), ref.mark_of(s), f"mark {s}")
    snap, ref_snap = new.snapshot(), ref.snapshot()
    assert len(snap) == len(ref_snap)
    for a, b in zip(snap, ref_snap, strict=True):
        _same_record(a, b, "snapshot")
    assert new.duplicate_fills == ref.duplicate_fills


@pytest.mark.parametrize("seed", range(16))
def test_every_exposed_value_equals_the_previous_portfolio(seed: int) -> None:
    rng = random.Random(seed)
    initial = {1: Decimal("100.25"), 2: Decimal("0"), 3: Decimal("-5E+3")}
    new = Portfolio(INSTRUMENTS, initial)
    ref = old.Portfolio(INSTRUMENTS, initial)
    accounts = [1, 2, 3, 4]
    views = [new.qty_view(1), new.qty_view(2)]
    if rng.random() < 0.5:
        # Start from restored positions with odd denominators (an older store's values).
        records = []
        for acc in (1, 4):
            for sym in rng.sample(SYMS, 2):
                den = rng.choice([1, 2, 3, 7, 10**12, 999_983])
                q = rng.choice([-9, -1, 0, 2, 25])
                cost = Fraction(rng.randint(-(10**9), 10**9), den) + rng.randint(1, 500) * q
                realized = Fraction(rng.randint(-(10**6), 10**6), rng.choice([1, 3, 10**12]))
                fees = Decimal(rng.randint(-50, 50)) / 1000
                records.append((acc, sym, q, cost, realized, fees))
        new.restore([PositionRecord(*r) for r in records], cash={4: Decimal("7.5")})
        ref.restore([old.PositionRecord(*r) for r in records], cash={4: Decimal("7.5")})
    fill_ids = []
    for i in range(260):
        r = rng.random()
        if r < 0.6:
            acc = rng.choice(accounts)
            # Accounts 2 and 3 stay on one symbol (the equity fast path), 1 and 4 roam.
            sym = {2: "NKN", 3: "BBB"}.get(acc) or rng.choice(SYMS)
            side = rng.choice([Side.BUY, Side.SELL])
            qty = rng.choice([1, 1, 2, 3, 5, 7, rng.randint(1, 60)])
            price = rng.choice([rng.randint(1, 500), rng.randint(2_000, 3_000)])
            fee = Decimal(rng.randint(-30, 400)) / rng.choice([100, 1000, 10**8])
            fid = rng.choice(fill_ids) if fill_ids and rng.random() < 0.05 else i + 1
            fill_ids.append(fid)
            f = Fill(acc, sym, i, side, price, qty, Liquidity.TAKER, fee, i, fid)
            new.on_fill(f)
            ref.on_fill(f)
        elif r < 0.8:
            sym = rng.choice(SYMS)
            bid = rng.randint(1, 3_000)
            ask = bid + rng.randint(0, 3)
            which = rng.random()
            b = None if which < 0.1 else bid
            a = None if 0.1 <= which < 0.2 else ask
            assert new.mark(sym, b, a) == ref.mark(sym, b, a)
        elif r < 0.85:
            sym = rng.choice(SYMS)
            price = rng.choice([Fraction(rng.randint(1, 9_999), rng.choice([1, 3, 7])), 123])
            new.mark_price(sym, price)
            ref.mark_price(sym, price)
        if i % 13 == 0 or i > 240:
            _compare(new, ref, accounts)
    _compare(new, ref, accounts)
    assert new.accounts() == ref.accounts()
    assert views == [new.qty_view(1), new.qty_view(2)]  # the same live views all along
    assert views[0] is new.qty_view(1)


def test_the_fraction_built_without_its_constructor_is_the_constructors() -> None:
    from tradecore.execution import portfolio

    assert portfolio._DIRECT  # CPython 3.11: the direct build is in use
    rng = random.Random(5)
    for _ in range(2_000):
        n = rng.randint(-(10**40), 10**40)
        d = rng.choice([1, 2, 3, 10**12, rng.randint(1, 10**30)])
        ref = Fraction(n, d)
        got = portfolio._fraction(ref.numerator, ref.denominator)
        _same(got, ref, "fraction")
        assert got == ref and got + 1 == ref + 1 and got * 3 == ref * 3 and got < ref + 1
        assert portfolio._fraction_checked(ref.numerator, ref.denominator) == ref
