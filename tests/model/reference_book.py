"""An obviously-correct pure-Python order book: the third, independent implementation of the
matching rules written in the crate docs (``crates/book/src/lib.rs``), used as the oracle of the
Python differential tests.

It is written for clarity, not speed: each side is a ``dict`` from price to a ``deque`` of
orders in arrival order, and the best price is found with ``max()``/``min()`` over the keys on
every access. It mirrors the method names and keyword arguments of ``tradecore.OrderBook`` and
returns events as plain tuples ``(kind, reason, order_id, other_id, price, qty, leaves,
other_leaves)`` with ``kind``/``reason`` as their upper-case names (``reason`` is ``""`` when
there is none), the same shape as ``tradecore.Event.as_tuple()``.

Where the docs leave a field unstated, the model fills it as follows: ``other_id`` and
``other_leaves`` are 0 on every event but FILL; ``leaves`` is the order's remaining quantity
after the event, so 0 on REJECTED and CANCELLED; a market order's price is 0 everywhere.

Invariants (kept after every call): no empty price level is stored, every resting order is in
exactly one level deque and in ``_by_id``, every resting order has ``leaves > 0``, and the book
is never crossed (best bid < best ask).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

EventTuple = tuple[str, str, int, int, int, int, int, int]
"""(kind, reason, order_id, other_id, price, qty, leaves, other_leaves)."""

OrderTuple = tuple[int, int, int, int]
"""(order_id, account, price, leaves)."""

LevelTuple = tuple[int, int, int]
"""(price, total qty, order count)."""

SIDES = ("BUY", "SELL")
ORDER_TYPES = ("LIMIT", "MARKET")
TIFS = ("GTC", "IOC", "FOK")
STPS = ("NONE", "CANCEL_NEWEST", "CANCEL_OLDEST", "CANCEL_BOTH")


def _name(value: object, allowed: tuple[str, ...], arg: str) -> str:
    """The enum name of ``value`` (an enum member of a ``StrEnum`` or its name as ``str``)."""
    if not isinstance(value, str):
        raise TypeError(f"{arg} must be a str or an enum member, got {type(value).__name__}")
    name = str(value)
    if name not in allowed:
        raise ValueError(f"{arg}: unknown name {name!r}; expected one of {', '.join(allowed)}")
    return name


@dataclass
class _Order:
    order_id: int
    account: int
    side: str
    price: int
    leaves: int
    stp: str
    post_only: bool


def _cancelled(o: _Order, reason: str) -> EventTuple:
    """CANCELLED for everything ``o`` still has: ``qty`` = its leaves, ``leaves`` = 0 after."""
    return ("CANCELLED", reason, o.order_id, 0, o.price, o.leaves, 0, 0)


class ReferenceBook:
    """The naive oracle. ``capacity`` bounds the number of resting orders (BOOK_FULL)."""

    def __init__(self, capacity: int = 1_000_000) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be > 0, got {capacity}")
        self._capacity = capacity
        self._levels: dict[str, dict[int, deque[_Order]]] = {"BUY": {}, "SELL": {}}
        self._by_id: dict[int, _Order] = {}

    # ------------------------------------------------------------------ queries

    @property
    def capacity(self) -> int:
        return self._capacity

    def __len__(self) -> int:
        return len(self._by_id)

    def _best_price(self, side: str) -> int | None:
        prices = self._levels[side].keys()
        if not prices:
            return None
        return max(prices) if side == "BUY" else min(prices)

    def _top(self, side: str) -> tuple[int, int] | None:
        price = self._best_price(side)
        if price is None:
            return None
        return price, sum(o.leaves for o in self._levels[side][price])

    def best_bid(self) -> tuple[int, int] | None:
        return self._top("BUY")

    def best_ask(self) -> tuple[int, int] | None:
        return self._top("SELL")

    def _prices_best_first(self, side: str) -> list[int]:
        return sorted(self._levels[side], reverse=side == "BUY")

    def _walk(self, side: str) -> Iterator[_Order]:
        """Every resting order of ``side`` in priority order."""
        for price in self._prices_best_first(side):
            yield from self._levels[side][price]

    def depth(self, n: int = 10) -> tuple[list[LevelTuple], list[LevelTuple]]:
        def side_levels(side: str) -> list[LevelTuple]:
            out = []
            for price in self._prices_best_first(side)[:n]:
                queue = self._levels[side][price]
                out.append((price, sum(o.leaves for o in queue), len(queue)))
            return out

        return side_levels("BUY"), side_levels("SELL")

    def orders(self, side: object, price: int | None = None) -> list[OrderTuple]:
        s = _name(side, SIDES, "side")
        if price is None:
            chosen: list[_Order] = list(self._walk(s))
        else:
            chosen = list(self._levels[s].get(price, ()))
        return [(o.order_id, o.account, o.price, o.leaves) for o in chosen]

    def order(self, order_id: int) -> OrderTuple | None:
        o = self._by_id.get(order_id)
        return None if o is None else (o.order_id, o.account, o.price, o.leaves)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _reaches(side: str, limit: int, maker_price: int) -> bool:
        """True when a ``side`` taker with this limit price may trade at ``maker_price``."""
        return maker_price <= limit if side == "BUY" else maker_price >= limit

    @staticmethod
    def _opposite(side: str) -> str:
        return "SELL" if side == "BUY" else "BUY"

    def _would_cross(self, side: str, price: int) -> bool:
        best = self._best_price(self._opposite(side))
        return best is not None and self._reaches(side, price, best)

    def _rest(self, o: _Order) -> None:
        self._levels[o.side].setdefault(o.price, deque()).append(o)
        self._by_id[o.order_id] = o

    def _unlink(self, o: _Order) -> None:
        queue = self._levels[o.side][o.price]
        queue.remove(o)
        if not queue:
            del self._levels[o.side][o.price]
        del self._by_id[o.order_id]

    def _fok_fillable(self, taker: _Order, limit: int | None) -> bool:
        """Dry run of the matching loop: can the taker fill completely, STP applied?"""
        remaining = taker.leaves
        for maker in self._walk(self._opposite(taker.side)):
            if remaining == 0:
                break
            if limit is not None and not self._reaches(taker.side, limit, maker.price):
                break
            if maker.account == taker.account and taker.stp != "NONE":
                if taker.stp == "CANCEL_OLDEST":
                    continue  # that maker would be cancelled; matching goes on
                break  # CANCEL_NEWEST / CANCEL_BOTH stop the taker here
            remaining -= min(remaining, maker.leaves)
        return remaining == 0

    def _match(self, taker: _Order, limit: int | None, events: list[EventTuple]) -> bool:
        """Trade ``taker`` against the opposite side; returns True if STP cancelled it."""
        other = self._opposite(taker.side)
        while taker.leaves > 0:
            best = self._best_price(other)
            if best is None:
                break
            if limit is not None and not self._reaches(taker.side, limit, best):
                break
            maker = self._levels[other][best][0]
            if maker.account == taker.account and taker.stp != "NONE":
                if taker.stp in ("CANCEL_OLDEST", "CANCEL_BOTH"):
                    self._unlink(maker)
                    events.append(_cancelled(maker, "SELF_TRADE"))
                    maker.leaves = 0
                if taker.stp in ("CANCEL_NEWEST", "CANCEL_BOTH"):
                    events.append(_cancelled(taker, "SELF_TRADE"))
                    taker.leaves = 0
                    return True
                continue
            traded = min(taker.leaves, maker.leaves)
            taker.leaves -= traded
            maker.leaves -= traded
            if maker.leaves == 0:
                self._unlink(maker)
            events.append(
                (
                    "FILL",
                    "",
                    taker.order_id,
                    maker.order_id,
                    maker.price,
                    traded,
                    taker.leaves,
                    maker.leaves,
                )
            )
        return False

    # ------------------------------------------------------------------ operations

    def submit(
        self,
        order_id: int,
        account: int,
        side: object,
        price: int,
        qty: int,
        order_type: object = "LIMIT",
        tif: object = "GTC",
        stp: object = "CANCEL_NEWEST",
        post_only: bool = False,
        timestamp: int = 0,
    ) -> list[EventTuple]:
        """Submit a new order; see the crate docs, "Submit", for the rules followed here."""
        s = _name(side, SIDES, "side")
        kind = _name(order_type, ORDER_TYPES, "order_type")
        t = _name(tif, TIFS, "tif")
        mode = _name(stp, STPS, "stp")
        del timestamp  # carried by the real book, never read by matching
        market = kind == "MARKET"
        px = 0 if market else price
        limit = None if market else price

        def reject(reason: str) -> list[EventTuple]:
            return [("REJECTED", reason, order_id, 0, px, qty, 0, 0)]

        if order_id == 0:
            return reject("INVALID_ORDER")
        if qty == 0 or qty > (2**64 - 1) // self._capacity:
            return reject("INVALID_QTY")
        if not market and price <= 0:
            return reject("INVALID_PRICE")
        if post_only and (market or t != "GTC"):
            return reject("INVALID_ORDER")
        if order_id in self._by_id:
            return reject("DUPLICATE_ORDER_ID")
        if not market and t == "GTC" and len(self._by_id) >= self._capacity:
            return reject("BOOK_FULL")
        if post_only and self._would_cross(s, price):
            return reject("WOULD_CROSS")

        events: list[EventTuple] = [("ACCEPTED", "", order_id, 0, px, qty, qty, 0)]
        taker = _Order(order_id, account, s, px, qty, mode, post_only)
        if t == "FOK" and not self._fok_fillable(taker, limit):
            events.append(("CANCELLED", "FOK_UNFILLED", order_id, 0, px, qty, 0, 0))
            return events
        if self._match(taker, limit, events):
            return events
        if taker.leaves > 0:
            if market or t != "GTC":
                events.append(_cancelled(taker, "IOC_REMAINDER"))
            else:
                self._rest(taker)
        return events

    def cancel(self, order_id: int) -> list[EventTuple]:
        o = self._by_id.get(order_id)
        if o is None:
            return [("REJECTED", "UNKNOWN_ORDER", order_id, 0, 0, 0, 0, 0)]
        self._unlink(o)
        return [_cancelled(o, "USER")]

    def modify(self, order_id: int, new_price: int, new_qty: int) -> list[EventTuple]:
        """Cancel/replace; see the crate docs, "Modify"."""

        def reject(reason: str) -> list[EventTuple]:
            return [("REJECTED", reason, order_id, 0, new_price, new_qty, 0, 0)]

        if new_qty == 0 or new_qty > (2**64 - 1) // self._capacity:
            return reject("INVALID_QTY")
        if new_price <= 0:
            return reject("INVALID_PRICE")
        o = self._by_id.get(order_id)
        if o is None:
            return reject("UNKNOWN_ORDER")
        replaced: EventTuple = ("REPLACED", "", order_id, 0, new_price, new_qty, new_qty, 0)
        if new_price == o.price and new_qty <= o.leaves:
            o.leaves = new_qty  # keeps its place in the queue
            return [replaced]
        if o.post_only and self._would_cross(o.side, new_price):
            return reject("WOULD_CROSS")
        self._unlink(o)
        o.price = new_price
        o.leaves = new_qty
        events = [replaced]
        if not self._match(o, new_price, events) and o.leaves > 0:
            self._rest(o)  # at the back of the queue
        return events

    # ------------------------------------------------------------------ self-check

    def check_invariants(self) -> None:
        """Raise AssertionError if the model's own structure is inconsistent."""
        seen: set[int] = set()
        for side, levels in self._levels.items():
            for price, queue in levels.items():
                assert queue, f"empty level {side} {price}"
                for o in queue:
                    assert o.side == side and o.price == price and o.leaves > 0, o
                    assert self._by_id.get(o.order_id) is o, o
                    assert o.order_id not in seen, o
                    seen.add(o.order_id)
        assert seen == set(self._by_id), "id index and levels disagree"
        assert len(self._by_id) <= self._capacity, "more resting orders than capacity"
        bid, ask = self._best_price("BUY"), self._best_price("SELL")
        assert bid is None or ask is None or bid < ask, f"crossed: bid {bid} >= ask {ask}"
