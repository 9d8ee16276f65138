"""The market-data events (``Quote``, ``BookUpdate``, ``TradeTick``) keep the dataclass
behaviour after their generated slot-storing ``__init__``: signature, every argument in its own
field, frozenness, equality, hashing, ``replace``, ``repr``, pickling and copying; and the
generator refuses classes it cannot treat the same way."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from dataclasses import dataclass, field
from typing import Any

import pytest
from tradecore.enums import Side
from tradecore.execution import DictL2Book
from tradecore.marketdata import events as E
from tradecore.marketdata.events import BookUpdate, Quote, Resync, TradeTick

FAST = [Quote, BookUpdate, TradeTick]


def sample(cls: type) -> dict[str, Any]:
    """Distinct values for every field, so a value stored in the wrong slot shows."""
    values: dict[str, Any] = {}
    for i, f in enumerate(dataclasses.fields(cls)):
        if f.name == "symbol":
            values[f.name] = "BTCUSDT"
        elif f.name == "book":
            values[f.name] = DictL2Book({100: 1}, {101: 2})
        elif f.name == "aggressor":
            values[f.name] = Side.SELL
        else:
            values[f.name] = 1_000 + i
    return values


@pytest.mark.parametrize("cls", FAST)
def test_the_generated_init_is_in_place(cls: type) -> None:
    # Not the dataclass's own __init__ (that one stores through object.__setattr__).
    init = vars(cls)["__init__"]
    assert init.__qualname__ == f"{cls.__qualname__}.__init__"
    assert "store_0" in init.__code__.co_names
    assert "__setattr__" not in init.__code__.co_names


@pytest.mark.parametrize("cls", FAST)
def test_signature_matches_the_fields(cls: type) -> None:
    params = list(inspect.signature(cls).parameters.values())
    assert [p.name for p in params] == [f.name for f in dataclasses.fields(cls)]
    assert all(p.default is inspect.Parameter.empty for p in params)


@pytest.mark.parametrize("cls", FAST)
def test_each_argument_lands_in_its_field(cls: type) -> None:
    values = sample(cls)
    by_position = cls(*values.values())
    by_keyword = cls(**values)
    for name, v in values.items():
        assert getattr(by_position, name) is v
        assert getattr(by_keyword, name) is v
    assert by_position == by_keyword
    assert dataclasses.asdict(by_keyword).keys() == values.keys()


@pytest.mark.parametrize("cls", FAST)
def test_frozen_hashable_comparable_replaceable(cls: type) -> None:
    values = sample(cls)
    a = cls(**values)
    b = cls(**values)
    assert a == b and hash(a) == hash(b)
    first = next(n for n in values if n.endswith("_ns"))
    c = dataclasses.replace(a, **{first: values[first] + 1})
    assert c != a and getattr(c, first) == values[first] + 1 and type(c) is cls
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(a, first, 5)
    with pytest.raises(TypeError, match="missing"):
        cls("X")
    with pytest.raises(TypeError, match="unexpected keyword"):
        cls(**values, colour="red")
    assert repr(a).startswith(f"{cls.__name__}(symbol='BTCUSDT', ts_ns=")
    assert not hasattr(a, "__dict__")


@pytest.mark.parametrize("cls", [Quote, TradeTick])  # BookUpdate holds a live book object
def test_pickle_and_copy(cls: type) -> None:
    a = cls(**sample(cls))
    assert pickle.loads(pickle.dumps(a)) == a
    assert copy.copy(a) == a
    assert copy.deepcopy(a) == a


def test_book_update_copies_share_or_copy_the_book() -> None:
    u = BookUpdate(**sample(BookUpdate))
    assert copy.copy(u).book is u.book
    deep = copy.deepcopy(u)
    assert deep.book is not u.book and deep.book.best_bid() == (100, 1)
    restored = pickle.loads(pickle.dumps(u))
    assert restored.book.best_ask() == (101, 2) and restored.update_id == u.update_id


def test_same_values_as_a_plain_frozen_dataclass() -> None:
    # The same fields in a stock frozen slotted dataclass hold the same values.
    for cls in FAST:
        names = [(f.name, f.type) for f in dataclasses.fields(cls)]
        stock = dataclasses.make_dataclass(f"Stock{cls.__name__}", names, frozen=True, slots=True)
        values = sample(cls)
        ours, theirs = cls(**values), stock(**values)
        for f in dataclasses.fields(cls):
            assert getattr(ours, f.name) is getattr(theirs, f.name)
        assert repr(ours).split("(", 1)[1] == repr(theirs).split("(", 1)[1]


def test_generator_refuses_what_it_cannot_reproduce() -> None:
    @dataclass(slots=True)
    class Mutable:
        x: int

    @dataclass(frozen=True)
    class NoSlots:
        x: int

    @dataclass(frozen=True, slots=True)
    class Factory:
        x: list[int] = field(default_factory=list)

    @dataclass(frozen=True, slots=True)
    class PostInit:
        x: int

        def __post_init__(self) -> None:
            pass

    for cls, why in (
        (Mutable, "frozen"),
        (NoSlots, "frozen dataclasses with slots"),
        (Factory, "plain init fields"),
        (PostInit, "__post_init__"),
    ):
        with pytest.raises(TypeError, match=why):
            E._slot_init(cls)

    @dataclass(frozen=True, slots=True)
    class WithDefault:
        x: int
        y: str = "d"

    E._slot_init(WithDefault)
    assert WithDefault(1) == WithDefault(1, "d")
    assert WithDefault(1, y="e").y == "e"


def test_resync_is_untouched() -> None:
    # Rare event: left with the dataclass's own __init__.
    assert "__setattr__" in Resync.__init__.__code__.co_names
    assert Resync("X", 1, 2, "gap").reason == "gap"
