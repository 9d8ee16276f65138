"""Differential property tests: ``tradecore.OrderBook`` (the fast Rust book behind PyO3) against
the independent pure-Python reference book in ``tests/model/reference_book.py``.

Hypothesis draws random streams of submits (every order type, time in force, STP mode, with
and without post-only), cancels and modifies over a small id space, 2-4 accounts, a narrow price
band around 100 (plus a few invalid ids, prices and quantities), and sometimes a capacity of
1-8 orders so BOOK_FULL happens. Most cancels and modifies are aimed at an order that rests at
that moment (chosen while the stream is drawn, against a shadow copy of the model), at the same
or a nearby price, with the same, a smaller or a larger quantity.

After EVERY operation the two books must agree on the events and on the whole visible state
(both sides in priority order, every level, every id, depth, touch, count); the real book's own
invariant check must pass; the book must not be crossed; and quantity must be conserved per
order, judged from the events alone (accepted or replaced qty = filled + cancelled + resting).
A second property runs the same stream through the numpy batch API (``OrderBook.process``) and
requires exactly the per-call events, field by field, with the right ``op_index``.

Set ``TRADECORE_DIFF_EXAMPLES`` to run more examples (default 400 per property). Hypothesis
prints the falsifying scenario as ``Scenario(capacity=..., ops=[Op.submit(...), ...])``, which
can be pasted into an ``@example`` to keep it as a regression case.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pytest
from hypothesis import Phase, event, example, given, settings
from hypothesis import strategies as st
from tradecore import (
    EVENT_DTYPE,
    OP_CANCEL,
    OP_DTYPE,
    OP_MODIFY,
    OP_SUBMIT,
    Event,
    EventKind,
    OrderBook,
    OrderType,
    Reason,
    Side,
    Stp,
    TimeInForce,
)

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from model.reference_book import EventTuple, ReferenceBook  # noqa: E402

EXAMPLES = int(os.environ.get("TRADECORE_DIFF_EXAMPLES", "400"))
MID = 100
PRICE_BAND = tuple(range(MID - 6, MID + 7))  # levels always looked at, empty or not
ID_SPACE = range(0, 21)  # 0 is invalid; 1..20 are reused across the stream

SUBMIT, CANCEL, MODIFY = "submit", "cancel", "modify"


# --------------------------------------------------------------------------- operations


@dataclass(frozen=True)
class Op:
    """One request of a stream. For modify, ``price``/``qty`` are the new price/new qty."""

    kind: str
    order_id: int
    account: int = 0
    side: str = "BUY"
    price: int = 0
    qty: int = 0
    order_type: str = "LIMIT"
    tif: str = "GTC"
    stp: str = "CANCEL_NEWEST"
    post_only: bool = False
    timestamp: int = 0

    @classmethod
    def submit(
        cls,
        order_id: int,
        account: int,
        side: str,
        price: int,
        qty: int,
        order_type: str = "LIMIT",
        tif: str = "GTC",
        stp: str = "CANCEL_NEWEST",
        post_only: bool = False,
        timestamp: int = 0,
    ) -> Op:
        return cls(
            SUBMIT, order_id, account, side, price, qty, order_type, tif, stp, post_only, timestamp
        )

    @classmethod
    def cancel(cls, order_id: int) -> Op:
        return cls(CANCEL, order_id)

    @classmethod
    def modify(cls, order_id: int, new_price: int, new_qty: int) -> Op:
        return cls(MODIFY, order_id, price=new_price, qty=new_qty)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # used by hypothesis' printer
        p.text(repr(self))

    def __repr__(self) -> str:  # a paste-able constructor call
        if self.kind == CANCEL:
            return f"Op.cancel({self.order_id})"
        if self.kind == MODIFY:
            return f"Op.modify({self.order_id}, {self.price}, {self.qty})"
        return (
            f"Op.submit({self.order_id}, {self.account}, {self.side!r}, {self.price}, {self.qty}, "
            f"{self.order_type!r}, {self.tif!r}, {self.stp!r}, {self.post_only}, {self.timestamp})"
        )


@dataclass(frozen=True)
class Scenario:
    """A book capacity and a stream of requests; ``use_enums`` passes enum members, not str."""

    ops: list[Op]
    capacity: int = 1000
    use_enums: bool = False
    notes: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # used by hypothesis' printer
        p.text(repr(self))

    def __repr__(self) -> str:  # one op per line, paste-able into an @example
        ops = "".join(f"\n        {op!r}," for op in self.ops)
        return (
            f"Scenario(\n    capacity={self.capacity},\n    use_enums={self.use_enums},"
            f"\n    ops=[{ops}\n    ],\n)"
        )


# --------------------------------------------------------------------------- strategies


def _weighted(common: Sequence[Any], rare: Sequence[Any], weight: int = 4) -> Any:
    """Mostly ``common``, sometimes ``rare``; shrinks towards the first common value."""
    return st.sampled_from([*common] * weight + [*rare])


ids = _weighted(range(1, 21), [0], weight=2)
prices = _weighted(range(MID - 3, MID + 4), [0, -1])
# Submit prices are drawn as a distance from MID on the order's own side (positive = passive),
# so the book builds up queues on both sides while aggressive orders still cross and sweep.
OFFSETS = [1, 2, 0, 3, 1, 2, 4, -1, 5, 3, -2, 6, -4]


def _submit(
    order_id: int,
    account: int,
    side: str,
    offset: int | None,
    qty: int,
    order_type: str,
    tif: str,
    stp: str,
    post_only: bool,
    timestamp: int,
) -> Op:
    """``offset`` None: an invalid price (0 or -1, by side)."""
    if offset is None:
        price = 0 if side == "BUY" else -1
    else:
        price = MID - offset if side == "BUY" else MID + offset
    return Op.submit(
        order_id, account, side, price, qty, order_type, tif, stp, post_only, timestamp
    )


# Rare huge quantities straddle the bound u64::MAX // capacity (capacities 1, 2, 3, 8 and 1M).
qtys = _weighted(range(1, 9), [0, 25, 2**62, 2**63, 2**64 - 1])


@dataclass(frozen=True)
class _Pick:
    """A cancel or modify aimed at whatever rests when it runs: the ``nth`` resting order
    (by id, modulo their number). Resolved into a concrete ``Op`` while the scenario is drawn,
    so the printed example only holds concrete ops. ``move``: price change in ticks, or
    ``CROSS`` for the opposite touch; ``delta``: change of the remaining quantity."""

    modify: bool
    nth: int
    move: int = 0
    delta: int = 0


CROSS = 99


def raw_ops(n_accounts: int) -> st.SearchStrategy[Op | _Pick]:
    submits = st.builds(
        _submit,
        order_id=ids,
        account=st.integers(1, n_accounts),
        side=st.sampled_from(["BUY", "SELL"]),
        offset=_weighted(OFFSETS, [None], weight=3),
        qty=qtys,
        order_type=_weighted(["LIMIT"], ["MARKET"], weight=5),
        tif=_weighted(["GTC"] * 4, ["IOC", "FOK"]),
        stp=st.sampled_from(["CANCEL_NEWEST", "NONE", "CANCEL_OLDEST", "CANCEL_BOTH"]),
        post_only=_weighted([False], [True], weight=8),
        timestamp=st.integers(0, 2**64 - 1),
    )
    cancels = st.builds(Op.cancel, order_id=ids)
    modifies = st.builds(Op.modify, order_id=ids, new_price=prices, new_qty=qtys)
    picked_cancels = st.builds(_Pick, modify=st.just(False), nth=st.integers(0, 15))
    picked_modifies = st.builds(
        _Pick,
        modify=st.just(True),
        nth=st.integers(0, 15),
        move=st.sampled_from([0, 0, 0, 1, -1, 2, -2, CROSS]),
        delta=_weighted([0, -1, 1, -2, 3], [-100]),
    )
    # Of 20: 12 submits, 1 blind cancel, 1 blind modify, 1 picked cancel, 5 picked modifies.
    return st.integers(0, 19).flatmap(
        lambda k: (
            submits
            if k < 12
            else cancels
            if k < 13
            else modifies
            if k < 14
            else picked_cancels
            if k < 15
            else picked_modifies
        )
    )


def _resolve(pick: _Pick, shadow: ReferenceBook) -> Op:
    resting = sorted(o for side in ("BUY", "SELL") for o in shadow.orders(side))
    if not resting:
        blind_id = pick.nth + 1
        return Op.modify(blind_id, MID, 1) if pick.modify else Op.cancel(blind_id)
    order_id, _account, price, leaves = resting[pick.nth % len(resting)]
    if not pick.modify:
        return Op.cancel(order_id)
    new_price = price + pick.move
    if pick.move == CROSS:
        is_bid = any(o[0] == order_id for o in shadow.orders("BUY"))
        touch = shadow.best_ask() if is_bid else shadow.best_bid()
        new_price = price if touch is None else touch[0]
    # Clamped to the u64 range: a resting order may already hold 2**64 - 1 at capacity 1.
    return Op.modify(order_id, new_price, min(max(leaves + pick.delta, 0), 2**64 - 1))


@st.composite
def scenarios(draw: st.DrawFn, max_runs: int = 12) -> Scenario:
    capacity = draw(_weighted([1000], [1, 2, 3, 8], weight=8))
    n_accounts = draw(st.integers(2, 4))
    # A list of short runs: hypothesis' lists average about 6 elements, and a raised min_size
    # would stop the shrinker from deleting ops; nested lists give ~36 ops on average (up to
    # max_runs * 12) and still shrink by deleting single ops or whole runs.
    runs = draw(st.lists(st.lists(raw_ops(n_accounts), min_size=1, max_size=12), max_size=max_runs))
    raw = [item for run in runs for item in run]
    shadow = ReferenceBook(capacity)
    ops: list[Op] = []
    notes: set[str] = set()
    peak = 0
    for item in raw:
        op = _resolve(item, shadow) if isinstance(item, _Pick) else item
        if op.kind == MODIFY and op.qty > 0 and (before := shadow.order(op.order_id)):
            _oid, _account, price, leaves = before
            if op.price == price and op.qty <= leaves:
                level = [o[0] for side in ("BUY", "SELL") for o in shadow.orders(side, price)]
                behind = level.index(op.order_id) < len(level) - 1
                notes.add("modify in place, others behind" if behind else "modify in place")
        events = apply(shadow, op)
        if op.kind == MODIFY and len(events) > 1:
            notes.add("modify that trades or self-trades")
        if op.kind == SUBMIT and op.tif == "FOK" and events[-1][0] == "FILL":
            notes.add("FOK filled")
        peak = max(peak, len(shadow))
        ops.append(op)
    notes.add(
        "peak resting "
        + ("0" if peak == 0 else "1-3" if peak <= 3 else "4-8" if peak <= 8 else "9+")
    )
    return Scenario(ops, capacity, draw(st.booleans()), frozenset(notes))


# Hand-worked streams that every run must pass, whatever hypothesis draws.
STP_AND_FOK = Scenario(
    ops=[
        Op.submit(1, 2, "SELL", 100, 4),
        Op.submit(2, 1, "SELL", 100, 1),
        Op.submit(3, 2, "SELL", 101, 4),
        Op.submit(4, 1, "BUY", 101, 9, "LIMIT", "FOK", "CANCEL_OLDEST"),  # 8 reachable
        Op.submit(4, 1, "BUY", 101, 8, "LIMIT", "FOK", "CANCEL_OLDEST"),  # fills
        Op.submit(5, 3, "BUY", 99, 3, post_only=True),
        Op.modify(5, 99, 2),  # keeps priority
        Op.submit(6, 3, "SELL", 0, 1, "MARKET", "GTC", "CANCEL_BOTH"),
        Op.submit(7, 3, "SELL", 99, 5, stp="CANCEL_BOTH"),
        Op.cancel(7),
        Op.cancel(5),
    ]
)
MODIFY_CROSSES = Scenario(
    capacity=2,
    use_enums=True,
    ops=[
        Op.submit(1, 1, "BUY", 99, 2),
        Op.submit(2, 2, "SELL", 101, 3),
        Op.submit(3, 2, "SELL", 102, 3),  # BOOK_FULL
        Op.modify(1, 101, 5),  # REPLACED, FILL 3, the remaining 2 rest at 101
        Op.submit(3, 1, "SELL", 102, 3),
        Op.modify(1, 102, 9),  # trades into its own account: cancelled by STP
        Op.submit(4, 3, "BUY", 100, 1),
        Op.submit(9, 2, "SELL", 102, 1, post_only=True),  # BOOK_FULL
        Op.cancel(3),
        Op.submit(9, 2, "SELL", 102, 1, post_only=True),
        Op.modify(9, 100, 1),  # WOULD_CROSS, stays as it was
        Op.modify(9, 101, 4),  # loses priority, rests at 101
    ],
)


# --------------------------------------------------------------------------- harness


class BookLike(Protocol):
    def submit(
        self,
        order_id: int,
        account: int,
        side: Any,
        price: int,
        qty: int,
        order_type: Any = ...,
        tif: Any = ...,
        stp: Any = ...,
        post_only: bool = ...,
        timestamp: int = ...,
    ) -> Sequence[Any]: ...
    def cancel(self, order_id: int) -> Sequence[Any]: ...
    def modify(self, order_id: int, new_price: int, new_qty: int) -> Sequence[Any]: ...
    def best_bid(self) -> tuple[int, int] | None: ...
    def best_ask(self) -> tuple[int, int] | None: ...
    def depth(self, n: int = ...) -> tuple[list[Any], list[Any]]: ...
    def orders(self, side: Any, price: int | None = ...) -> list[Any]: ...
    def order(self, order_id: int) -> Any: ...
    def check_invariants(self) -> None: ...
    def __len__(self) -> int: ...


def as_tuples(events: Sequence[Any]) -> list[EventTuple]:
    """Events of either book as ``Event.as_tuple()`` tuples; checks that an ``Event``'s
    attributes say the same as its tuple."""
    out: list[EventTuple] = []
    for e in events:
        if isinstance(e, tuple):
            out.append(e)
            continue
        assert isinstance(e, Event), type(e)
        t = e.as_tuple()
        attrs = (e.kind, e.reason, e.order_id, e.other_id, e.price, e.qty, e.leaves)
        assert (*attrs, e.other_leaves) == t, f"{e!r} attributes disagree with {t}"
        out.append(t)
    return out


def apply(book: BookLike, op: Op, use_enums: bool = False) -> list[EventTuple]:
    if op.kind == CANCEL:
        return as_tuples(book.cancel(op.order_id))
    if op.kind == MODIFY:
        return as_tuples(book.modify(op.order_id, new_price=op.price, new_qty=op.qty))
    side: Any = Side(op.side) if use_enums else op.side
    order_type: Any = OrderType(op.order_type) if use_enums else op.order_type
    tif: Any = TimeInForce(op.tif) if use_enums else op.tif
    stp: Any = Stp(op.stp) if use_enums else op.stp
    events = book.submit(
        order_id=op.order_id,
        account=op.account,
        side=side,
        price=op.price,
        qty=op.qty,
        order_type=order_type,
        tif=tif,
        stp=stp,
        post_only=op.post_only,
        timestamp=op.timestamp,
    )
    return as_tuples(events)


class Ledger:
    """Quantity conservation judged from the events alone. For every order incarnation (from
    ACCEPTED, or from a REPLACED, which resets it to the new remaining qty) it keeps
    ``[base, filled, cancelled]``; after each operation ``base == filled + cancelled + resting``
    must hold for every order, and the event ``leaves`` fields must match the running count."""

    def __init__(self) -> None:
        self.live: dict[int, list[int]] = {}

    def _outstanding(self, order_id: int) -> int:
        base, filled, cancelled = self.live[order_id]
        return base - filled - cancelled

    def apply(self, events: Sequence[EventTuple]) -> None:
        for kind, _reason, oid, other, _price, qty, leaves, other_leaves in events:
            if kind == "ACCEPTED":
                assert oid not in self.live, f"order {oid} accepted while still live"
                assert qty == leaves > 0, f"ACCEPTED {oid}: qty {qty}, leaves {leaves}"
                self.live[oid] = [qty, 0, 0]
            elif kind == "REPLACED":
                assert oid in self.live, f"REPLACED of order {oid} that is not live"
                assert qty == leaves > 0, f"REPLACED {oid}: qty {qty}, leaves {leaves}"
                self.live[oid] = [qty, 0, 0]
            elif kind == "FILL":
                assert qty > 0, f"empty fill {oid}/{other}"
                for who, after in ((oid, leaves), (other, other_leaves)):
                    assert who in self.live, f"fill of order {who} that is not live"
                    self.live[who][1] += qty
                    assert self._outstanding(who) == after >= 0, (
                        f"order {who}: {self.live[who]} after fill of {qty}, event says {after}"
                    )
            elif kind == "CANCELLED":
                assert oid in self.live, f"cancel of order {oid} that is not live"
                self.live[oid][2] += qty
                assert self._outstanding(oid) == 0 == leaves, (
                    f"order {oid}: {self.live[oid]} after cancel of {qty} (leaves {leaves})"
                )
            else:
                assert kind == "REJECTED", f"unknown event kind {kind!r}"

    def check(self, resting: dict[int, int]) -> None:
        """``resting``: order_id -> leaves of every order in the book."""
        for oid in list(self.live):
            base, filled, cancelled = self.live[oid]
            rest = resting.get(oid, 0)
            assert base == filled + cancelled + rest, (
                f"order {oid}: accepted {base} != filled {filled} + cancelled {cancelled} "
                f"+ resting {rest}"
            )
            if rest == 0:
                del self.live[oid]
        strays = set(resting) - set(self.live)
        assert not strays, f"resting orders never accepted: {sorted(strays)}"


def compare_state(subject: BookLike, oracle: BookLike, where: str) -> None:
    subject.check_invariants()
    oracle.check_invariants()
    for side in ("BUY", "SELL"):
        everything = oracle.orders(side)
        assert subject.orders(side) == everything, f"{where}: {side} orders differ"
        for price in sorted(set(PRICE_BAND) | {o[2] for o in everything}):
            got, want = subject.orders(side, price), oracle.orders(side, price)
            assert got == want, f"{where}: {side} level {price}: {got} != {want}"
    assert len(subject) == len(oracle), f"{where}: len differs"
    bid, ask = subject.best_bid(), subject.best_ask()
    assert bid == oracle.best_bid(), f"{where}: best bid {bid} != {oracle.best_bid()}"
    assert ask == oracle.best_ask(), f"{where}: best ask {ask} != {oracle.best_ask()}"
    assert bid is None or ask is None or bid[0] < ask[0], f"{where}: crossed {bid} / {ask}"
    for n in (0, 1, 3, 10):
        assert subject.depth(n) == oracle.depth(n), f"{where}: depth({n}) differs"
    assert subject.depth() == oracle.depth(), f"{where}: depth() differs"
    for oid in ID_SPACE:
        assert subject.order(oid) == oracle.order(oid), f"{where}: order({oid}) differs"


def run_differential(subject: BookLike, oracle: BookLike, scenario: Scenario) -> list[list[Any]]:
    """Drive both books with the stream, comparing after every op; returns the subject's events
    per op (as tuples)."""
    ledger = Ledger()
    per_op: list[list[Any]] = []
    for i, op in enumerate(scenario.ops):
        where = f"op #{i} {op!r} (previous: {scenario.ops[max(0, i - 3) : i]!r})"
        got = apply(subject, op, scenario.use_enums)
        want = apply(oracle, op)
        assert got == want, f"{where}: events\n  got  {got}\n  want {want}"
        compare_state(subject, oracle, where)
        ledger.apply(got)
        resting = {o[0]: o[3] for side in ("BUY", "SELL") for o in subject.orders(side)}
        ledger.check(resting)
        per_op.append(got)
    return per_op


# --------------------------------------------------------------------------- batch encoding


def ops_array(ops: Sequence[Op]) -> np.ndarray[Any, Any]:
    arr = np.zeros(len(ops), dtype=OP_DTYPE)
    code = {SUBMIT: OP_SUBMIT, CANCEL: OP_CANCEL, MODIFY: OP_MODIFY}
    arr["op"] = [code[op.kind] for op in ops]
    arr["order_id"] = np.array([op.order_id for op in ops], dtype=np.uint64)
    arr["price"] = [op.price for op in ops]
    arr["qty"] = np.array([op.qty for op in ops], dtype=np.uint64)
    arr["timestamp"] = np.array([op.timestamp for op in ops], dtype=np.uint64)
    arr["account"] = [op.account for op in ops]
    arr["side"] = [Side(op.side).code for op in ops]
    arr["order_type"] = [OrderType(op.order_type).code for op in ops]
    arr["tif"] = [TimeInForce(op.tif).code for op in ops]
    arr["stp"] = [Stp(op.stp).code for op in ops]
    arr["post_only"] = [int(op.post_only) for op in ops]
    return arr


def batch_rows(events: np.ndarray[Any, Any], base: int = 0) -> list[tuple[Any, ...]]:
    """(op_index, kind, reason, order_id, other_id, price, qty, leaves, other_leaves) per row."""
    assert events.dtype == EVENT_DTYPE, events.dtype
    return [
        (
            base + int(r["op_index"]),
            str(EventKind.from_code(int(r["kind"]))),
            str(Reason.from_code(int(r["reason"]))),
            int(r["order_id"]),
            int(r["other_id"]),
            int(r["price"]),
            int(r["qty"]),
            int(r["leaves"]),
            int(r["other_leaves"]),
        )
        for r in events
    ]


# --------------------------------------------------------------------------- properties

# No "explain" phase: on a failing 80-op stream it takes minutes to say little.
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    print_blob=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)


@SETTINGS
@given(scenarios())
@example(STP_AND_FOK)
@example(MODIFY_CROSSES)
def test_order_book_matches_reference(scenario: Scenario) -> None:
    book = OrderBook(capacity=scenario.capacity)
    model = ReferenceBook(capacity=scenario.capacity)
    assert book.capacity == scenario.capacity
    per_op = run_differential(book, model, scenario)
    # Coverage figures for `pytest --hypothesis-show-statistics`.
    for kind, reason in sorted({(e[0], e[1]) for events in per_op for e in events}):
        event(f"{kind} {reason}".strip())
    for note in sorted(scenario.notes):
        event(note)


@SETTINGS
@given(scenarios(), st.data())
@example(STP_AND_FOK, None)
def test_batch_api_gives_the_per_call_events(scenario: Scenario, data: Any) -> None:
    per_call = OrderBook(capacity=scenario.capacity)
    expected = [
        (i, *event)
        for i, op in enumerate(scenario.ops)
        for event in apply(per_call, op, scenario.use_enums)
    ]
    # Split the stream into two process() calls: state carries over, op_index restarts at 0.
    n = len(scenario.ops)
    cut = n if data is None else data.draw(st.integers(0, n), label="cut")
    batch = OrderBook(capacity=scenario.capacity)
    first = batch.process(ops_array(scenario.ops[:cut]))
    second = batch.process(ops_array(scenario.ops[cut:]))
    got = batch_rows(first) + batch_rows(second, base=cut)
    assert len(got) == len(expected), f"{len(got)} batch events, {len(expected)} per call"
    for g, e in zip(got, expected, strict=True):
        assert g == e, f"batch {g} != per call {e} (op {scenario.ops[e[0]]!r})"
    for side in ("BUY", "SELL"):
        assert batch.orders(side) == per_call.orders(side)
    assert len(batch) == len(per_call)
    batch.check_invariants()


# --------------------------------------------------------------------------- the harness can fail


class _LifoBook(ReferenceBook):
    """A deliberately wrong model (last in, first out within a level)."""

    def submit(self, *args: Any, **kwargs: Any) -> list[EventTuple]:
        events = super().submit(*args, **kwargs)
        for levels in self._levels.values():
            for queue in levels.values():
                queue.rotate(1)  # moves the newest order to the front
        return events


def test_harness_detects_a_wrong_book() -> None:
    scenario = Scenario(
        ops=[
            Op.submit(1, 1, "SELL", 100, 1),
            Op.submit(2, 2, "SELL", 100, 1),
            Op.submit(3, 3, "BUY", 100, 1),
        ]
    )
    run_differential(ReferenceBook(), ReferenceBook(), scenario)  # the same book passes
    with pytest.raises(AssertionError, match=r"orders differ|events"):
        run_differential(_LifoBook(), ReferenceBook(), scenario)


def test_ledger_detects_lost_quantity() -> None:
    ledger = Ledger()
    ledger.apply([("ACCEPTED", "", 1, 0, 100, 5, 5, 0)])
    ledger.check({1: 5})
    with pytest.raises(AssertionError, match="accepted 5"):
        ledger.check({1: 4})
    ledger = Ledger()
    ledger.apply([("ACCEPTED", "", 1, 0, 100, 5, 5, 0), ("ACCEPTED", "", 2, 0, 100, 5, 5, 0)])
    with pytest.raises(AssertionError, match="order 1"):
        ledger.apply([("FILL", "", 2, 1, 100, 3, 2, 1)])  # maker 1 would have 2 left, not 1
    with pytest.raises(AssertionError, match="not live"):
        Ledger().apply([("CANCELLED", "USER", 9, 0, 100, 1, 0, 0)])


# --------------------------------------------------------------------------- found on the way


def test_level_total_cannot_wrap() -> None:
    # Found by this suite: two resting orders of 2**63 made a level total of 0. The core now
    # bounds an order's qty by u64::MAX // capacity, so no level or book total can overflow.
    book = OrderBook(capacity=4)
    bound = (2**64 - 1) // 4
    assert book.max_qty == bound
    assert book.submit(1, 1, "BUY", 100, bound)[0].kind == "ACCEPTED"
    too_big = book.submit(2, 2, "BUY", 100, bound + 1)
    assert [(e.kind, e.reason) for e in too_big] == [("REJECTED", "INVALID_QTY")]
    for i in range(2, 5):
        book.submit(i, i, "BUY", 100, bound)
    assert book.best_bid() == (100, 4 * bound)
    assert book.depth(1)[0] == [(100, 4 * bound, 4)]
    assert book.modify(1, 100, bound + 1)[0].reason == "INVALID_QTY"
