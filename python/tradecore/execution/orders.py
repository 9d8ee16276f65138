"""The order manager: every order of every account, its state machine and its listeners.

Owns: one :class:`~tradecore.execution.types.Order` per ``(account, client_order_id)``, the
per-account client order id counters, the index of open orders per account and symbol, the set
of report ids already applied to each order, and the listeners that hear about status changes
and fills (the node forwards them to strategies, the store and the portfolio).

State machine (``OrderStatus``), driven only by :class:`OrderEvent` reports::

    NEW --ACCEPTED--> ACKNOWLEDGED --FILL--> PARTIALLY_FILLED --FILL (leaves 0)--> FILLED
    NEW/ACKNOWLEDGED/PARTIALLY_FILLED --CANCELLED--> CANCELLED
    NEW/ACKNOWLEDGED/PARTIALLY_FILLED --EXPIRED-->   EXPIRED
    NEW --REJECTED--> REJECTED
    ACKNOWLEDGED/PARTIALLY_FILLED --REPLACED--> same status, new price and remaining quantity

A FILL straight from NEW is legal (the venue's ACCEPTED is implied). A REJECTED for an order
that is already acknowledged is the venue's answer to a refused cancel or modify (the venue
protocol reuses REJECTED for that) and is handled like ``CANCEL_REJECTED``: the order is
unchanged and its ``pending_cancel``/``pending_replace`` flags are cleared.

Invariants and robustness (reports come from outside; nothing here raises on a report):

- A report whose ``event_id`` was already applied to the order is a duplicate: dropped, counted
  in ``stats.duplicates``.
- A report that arrives out of order and would move the state backwards (ACCEPTED after a
  FILL, say) is dropped and counted in ``stats.stale``.
- Any other report the current state does not allow (or a FILL of zero or negative quantity,
  a REPLACED to nothing) is logged and counted in ``stats.illegal_transitions``; the order is
  unchanged.
- A FILL is never dropped (money moved): a fill for an order already CANCELLED, EXPIRED or
  REJECTED is applied to the quantities, given to the fill listeners, logged and counted in
  ``stats.fills_after_terminal``; the status stays. Fills beyond the order quantity are applied
  and counted in ``stats.overfills``.
- ``leaves == qty - filled_qty`` (never negative) and ``qty`` is the original quantity, or after
  a REPLACED the filled quantity plus the new remaining quantity.
- A listener that raises is logged and counted in ``stats.listener_errors``; the order manager
  and the other listeners carry on.

Retiring finished orders (:meth:`OrderManager.retire`, opt-in; the node uses it, the
backtester does not): a long-running owner that has stored an order's final state may ask the
order manager to forget it, so memory and the garbage collector's work stay flat however
long the run (every order kept forever is seven tracked objects that end up in the oldest GC
generation, each full collection visits them again). A retired order leaves a *tombstone*: one
tuple of plain values (its request and quantities and the ids of the reports applied to it,
untracked by the garbage collector), kept for the last ``retired_limit`` retired orders. With
it, idempotency is as before: a report that was already applied is a duplicate, a late
ACCEPTED/CANCELLED/EXPIRED is stale, a late REJECTED/CANCEL_REJECTED is a refused
cancel; a late FILL (money moved) brings the order back to life from its tombstone (same values,
an empty ``events`` history: the earlier reports are in the store) and is applied as before.
:meth:`get` and :meth:`orders` see live orders only; :meth:`lookup` also rebuilds a retired
one. A report for an order retired longer ago than ``retired_limit`` orders is an unknown order
(logged, counted, dropped), as for any order this manager never saw. Only finished orders
(FILLED, CANCELLED, REJECTED, EXPIRED) can be retired.

Cost: ``register`` is one ``Order`` (built without the constructor call, see
:mod:`tradecore.execution.types`) and three dict writes (about 0.6 us); a report is a couple
of dict look-ups, the report id noted (a bare int, then a tuple of up to eight ids, then a
set) and the listener calls; a fill of a live order within its quantity is applied inline
and its ``Fill`` built without the constructor call (an ACCEPTED and a FILL: about 1.3 us
together in CPython 3.11, listeners apart). ``retire`` builds one tuple (about a
microsecond); a report for a retired order costs one more dict look-up, and one that is
applied rebuilds the order (a few microseconds).
Open-order queries (``open_orders``, ``open_qty``) are O(open orders of the account).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tradecore.enums import OrderType, Side, TimeInForce
from tradecore.errors import UsageError
from tradecore.execution.types import (
    Fill,
    Liquidity,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderRequest,
    OrderStatus,
    _FillSlots,
    _new_order,
)

__all__ = [
    "RETIRED_LIMIT",
    "DuplicateOrderError",
    "FillListener",
    "OrderListener",
    "OrderManager",
    "OrderManagerStats",
    "UnknownOrderError",
]

log = logging.getLogger("tradecore.execution.orders")

OrderListener = Callable[[Order, OrderEvent], None]
FillListener = Callable[[Fill, Order], None]

_NEW = OrderStatus.NEW
_ACK = OrderStatus.ACKNOWLEDGED
_PART = OrderStatus.PARTIALLY_FILLED
_FILLED = OrderStatus.FILLED
_CANCELLED = OrderStatus.CANCELLED
_REJECTED = OrderStatus.REJECTED
_EXPIRED = OrderStatus.EXPIRED
# Module constants: in CPython 3.11 reading an enum member off its class costs ~150 ns.
_K_ACCEPTED = OrderEventKind.ACCEPTED
_K_REJECTED = OrderEventKind.REJECTED
_K_FILL = OrderEventKind.FILL
_K_CANCELLED = OrderEventKind.CANCELLED
_K_REPLACED = OrderEventKind.REPLACED
_K_EXPIRED = OrderEventKind.EXPIRED
_K_CANCEL_REJECTED = OrderEventKind.CANCEL_REJECTED
_TAKER = Liquidity.TAKER
_OPEN = frozenset((_NEW, _ACK, _PART))
# Tombstones hold enum members as their string values (``member._value_``, a plain attribute
# read): a tuple holding an enum member stays tracked by the garbage collector, one of ints
# and strings is untracked at its first collection.
#: Default number of retired orders whose tombstones are kept (see the module doc).
RETIRED_LIMIT = 65_536
# Report ids applied to one order: held as a tuple (no set object, and a tuple of ints is
# untracked by the garbage collector) up to this many, as a set beyond.
_SEEN_TUPLE_MAX = 8


class DuplicateOrderError(UsageError):
    """A client order id was registered twice for the same account."""


class UnknownOrderError(UsageError, KeyError):
    """No order with this client order id is known for this account."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@dataclass(slots=True)
class OrderManagerStats:
    """Counters of the order manager (monotonic over its lifetime)."""

    registered: int = 0
    events: int = 0  # reports applied
    fills: int = 0
    duplicates: int = 0
    stale: int = 0
    illegal_transitions: int = 0
    unknown_orders: int = 0
    fills_after_terminal: int = 0
    overfills: int = 0
    cancel_rejects: int = 0
    listener_errors: int = 0
    retired: int = 0  # finished orders forgotten (tombstone kept)
    revived: int = 0  # retired orders brought back by a late FILL


class OrderManager:
    """Tracks orders through their life cycle; the sink of every execution client.

    Use: ``coid = om.next_client_order_id(account)``; build the ``OrderRequest`` with it;
    ``om.register(request, ts_ns)``; ``client.submit(request)``; the client's reports go to
    ``om.on_event``. ``retired_limit``: how many tombstones of retired orders are kept (see
    :meth:`retire`).
    """

    __slots__ = (
        "_fill_listeners",
        "_next_id",
        "_open",
        "_order_listeners",
        "_orders",
        "_retired",
        "_retired_limit",
        "_seen",
        "stats",
    )

    def __init__(self, *, retired_limit: int = RETIRED_LIMIT) -> None:
        if type(retired_limit) is not int or retired_limit < 0:
            raise UsageError(f"retired_limit must be an int >= 0, got {retired_limit!r}")
        self._retired: OrderedDict[tuple[int, int], tuple[Any, ...]] = OrderedDict()
        self._retired_limit = retired_limit
        self._orders: dict[tuple[int, int], Order] = {}
        self._open: dict[int, dict[int, Order]] = {}
        # Report ids applied per order: the first one as a bare int, then a tuple of them (most
        # orders get two or three reports; a set per order would be one more object for the
        # garbage collector, a tuple of ints is untracked), a set from the ninth on.
        self._seen: dict[tuple[int, int], int | tuple[int, ...] | set[int]] = {}
        self._next_id: dict[int, int] = {}
        self._order_listeners: list[OrderListener] = []
        self._fill_listeners: list[FillListener] = []
        self.stats = OrderManagerStats()

    # ---------------------------------------------------------------- registration

    def next_client_order_id(self, account: int) -> int:
        """A client order id not used yet by ``account`` (1, 2, 3, ... per account)."""
        n = self._next_id.get(account, 1)
        orders = self._orders
        retired = self._retired
        while (account, n) in orders or (account, n) in retired:
            n += 1
        self._next_id[account] = n + 1
        return n

    def register(self, request: OrderRequest, ts_ns: int) -> Order:
        """Start tracking ``request`` in status NEW; call before the client's ``submit``.

        Raises :class:`DuplicateOrderError` if the account already used its client order id.
        """
        account = request.account
        coid = request.client_order_id
        key = (account, coid)
        orders = self._orders
        next_id = self._next_id
        # Every tracked or retired id of an account is below its next id (register, restore
        # and next_client_order_id only raise it): an id at or above it is fresh, without
        # looking it up (the node's case: the tombstones are tens of thousands).
        fresh = coid >= next_id.get(account, 1)
        if not fresh and (key in orders or key in self._retired):
            raise DuplicateOrderError(
                f"client order id {coid} is already used by account "
                f"{account} (symbol {request.symbol})"
            )
        qty = request.qty
        # Order(request, _NEW, request.price, qty, 0, qty, 0, 0, "", ts_ns, ts_ns), built
        # without the constructor call (every field set, see the types module doc).
        order = _new_order(Order)
        order.request = request
        order.status = _NEW
        order.price = request.price
        order.qty = qty
        order.filled_qty = 0
        order.leaves = qty
        order.notional_filled = 0
        order.venue_order_id = 0
        order.reason = ""
        order.created_ns = ts_ns
        order.updated_ns = ts_ns
        order.events = []
        order.pending_cancel = False
        order.pending_replace = False
        orders[key] = order
        group = self._open.get(account)
        if group is None:
            group = self._open[account] = {}
        group[coid] = order
        if fresh:
            next_id[account] = coid + 1
        self.stats.registered += 1
        return order

    def restore(self, order: Order) -> None:
        """Track an order reloaded from the store (at start-up, before any report)."""
        key = (order.account, order.client_order_id)
        if key in self._orders or key in self._retired:
            raise DuplicateOrderError(
                f"client order id {order.client_order_id} of account {order.account} is "
                f"already tracked; it cannot be restored twice"
            )
        self._orders[key] = order
        self._seen[key] = {e.event_id for e in order.events}
        if order.is_open:
            self._open.setdefault(order.account, {})[order.client_order_id] = order
        if order.client_order_id >= self._next_id.get(order.account, 1):
            self._next_id[order.account] = order.client_order_id + 1

    def _require(self, account: int, client_order_id: int) -> Order:
        order = self._orders.get((account, client_order_id))
        if order is None:
            raise UnknownOrderError(
                f"account {account} has no order with client order id {client_order_id}"
            )
        return order

    def cancel_requested(self, account: int, client_order_id: int, ts_ns: int) -> Order:
        """Note that a cancel was sent (``pending_cancel``); the report settles it."""
        order = self._require(account, client_order_id)
        order.pending_cancel = True
        order.updated_ns = ts_ns
        return order

    def replace_requested(self, account: int, client_order_id: int, ts_ns: int) -> Order:
        """Note that a modify was sent (``pending_replace``); the report settles it."""
        order = self._require(account, client_order_id)
        order.pending_replace = True
        order.updated_ns = ts_ns
        return order

    # ---------------------------------------------------------------- listeners

    def add_order_listener(self, listener: OrderListener) -> None:
        """Call ``listener(order, event)`` after every report that changed an order.

        That is every applied report (status changes, fills, replaces, cancel rejects);
        duplicates, stale and illegal reports are not passed on.
        """
        self._order_listeners.append(listener)

    def add_fill_listener(self, listener: FillListener) -> None:
        """Call ``listener(fill, order)`` for every new fill, before the order listeners."""
        self._fill_listeners.append(listener)

    # ---------------------------------------------------------------- queries

    def get(self, account: int, client_order_id: int) -> Order | None:
        """The order, or None if the account has no such client order id (or it is retired)."""
        return self._orders.get((account, client_order_id))

    def lookup(self, account: int, client_order_id: int) -> Order | None:
        """Like :meth:`get`, but a retired order is rebuilt from its tombstone.

        The rebuilt order is a detached copy (same values, empty ``events``): changing it
        changes nothing here.
        """
        key = (account, client_order_id)
        order = self._orders.get(key)
        if order is None:
            tomb = self._retired.get(key)
            if tomb is not None:
                return _rebuild(key, tomb)
        return order

    def is_retired(self, account: int, client_order_id: int) -> bool:
        """True if the order was retired and its tombstone is still kept."""
        return (account, client_order_id) in self._retired

    @property
    def retired_count(self) -> int:
        """How many tombstones are kept (at most ``retired_limit``)."""
        return len(self._retired)

    def retire(self, account: int, client_order_id: int) -> bool:
        """Forget a finished order, keeping its tombstone (module doc); False if it is open or
        not tracked (unknown, or already retired).

        Call it once the order's final state is stored and reported: afterwards :meth:`get`
        returns None for it and it is no longer in :meth:`orders`.
        """
        key = (account, client_order_id)
        order = self._orders.get(key)
        if order is None or order.status in _OPEN:
            return False
        del self._orders[key]
        seen = self._seen.pop(key, None)
        req = order.request
        retired = self._retired
        retired[key] = (
            req.symbol,
            req.side._value_,
            req.qty,
            req.price,
            req.order_type._value_,
            req.tif._value_,
            req.post_only,
            req.ts_ns,
            req.strategy,
            req.tag,
            order.status._value_,
            order.price,
            order.qty,
            order.filled_qty,
            order.leaves,
            order.notional_filled,
            order.venue_order_id,
            order.reason,
            order.created_ns,
            order.updated_ns,
            order.pending_cancel,
            order.pending_replace,
            () if seen is None else (seen,) if isinstance(seen, int) else tuple(seen),
        )
        if len(retired) > self._retired_limit:
            retired.popitem(last=False)
        self.stats.retired += 1
        return True

    def open_orders(self, account: int | None = None, symbol: str | None = None) -> list[Order]:
        """Open orders (NEW, ACKNOWLEDGED, PARTIALLY_FILLED), oldest first."""
        if account is None:
            groups = list(self._open.values())
        else:
            group = self._open.get(account)
            groups = [group] if group else []
        out: list[Order] = []
        for group in groups:
            if symbol is None:
                out.extend(group.values())
            else:
                out.extend(o for o in group.values() if o.request.symbol == symbol)
        return out

    def open_qty(self, account: int, symbol: str, side: Side) -> int:
        """Sum of the leaves of ``account``'s open orders in ``symbol`` on ``side``."""
        group = self._open.get(account)
        if not group:
            return 0
        total = 0
        for o in group.values():
            req = o.request
            if req.side is side and req.symbol == symbol:
                total += o.leaves
        return total

    def open_count(self, account: int, symbol: str | None = None) -> int:
        """Number of open orders of ``account`` (in ``symbol`` if given)."""
        group = self._open.get(account)
        if not group:
            return 0
        if symbol is None:
            return len(group)
        return sum(1 for o in group.values() if o.request.symbol == symbol)

    def orders(self, account: int | None = None) -> list[Order]:
        """Every order tracked (open and terminal, not retired), in registration order."""
        if account is None:
            return list(self._orders.values())
        return [o for (a, _), o in self._orders.items() if a == account]

    # ---------------------------------------------------------------- reports

    def on_event(self, event: OrderEvent) -> Order | None:
        """Apply one report; returns the order it changed, or None if it was dropped."""
        key = (event.account, event.client_order_id)
        order = self._orders.get(key)
        stats = self.stats
        if order is None:
            if self._retired:
                tomb = self._retired.get(key)
                if tomb is not None:
                    return self._on_retired(key, tomb, event)
            stats.unknown_orders += 1
            log.warning(
                "report %s (event %d) for unknown order: account %d client order id %d",
                event.kind,
                event.event_id,
                event.account,
                event.client_order_id,
            )
            return None
        eid = event.event_id
        seen = self._seen.get(key)
        if seen is not None and (seen == eid if isinstance(seen, int) else eid in seen):
            stats.duplicates += 1
            return None
        kind = event.kind
        status = order.status
        fill: Fill | None = None
        if kind is _K_FILL:
            qty = event.qty
            if qty <= 0:
                return self._illegal(order, event)
            filled = order.filled_qty + qty
            total = order.qty
            if filled <= total and (status is _ACK or status is _NEW or status is _PART):
                # ``_apply_fill`` for a fill of a live order within its quantity (every fill
                # but the odd ones), inlined.
                price = event.price
                order.filled_qty = filled
                order.notional_filled += price * qty
                req = order.request
                if filled == total:
                    order.leaves = 0
                    order.status = _FILLED
                    order.pending_cancel = False
                    order.pending_replace = False
                    group = self._open.get(req.account)  # _close, inlined
                    if group is not None:
                        group.pop(req.client_order_id, None)
                else:
                    order.leaves = total - filled
                    order.status = _PART
                liquidity = event.liquidity
                f = _FillSlots()  # as ``_apply_fill`` builds it
                f.account = event.account
                f.symbol = req.symbol
                f.client_order_id = event.client_order_id
                f.side = req.side
                f.price = price
                f.qty = qty
                f.liquidity = _TAKER if liquidity is None else liquidity
                f.fee = event.fee
                f.ts_ns = event.ts_ns
                f.fill_id = event.event_id
                f.strategy = req.strategy
                f.__class__ = Fill
                fill = f
            else:
                fill = self._apply_fill(order, event, status)
        elif kind is _K_ACCEPTED:
            if status is _NEW:
                order.status = _ACK
                if event.venue_order_id:
                    order.venue_order_id = event.venue_order_id
            elif status in (_ACK, _PART, _FILLED, _CANCELLED, _EXPIRED):
                # A late acknowledgement: the order has already moved on.
                stats.stale += 1
                self._note(key, seen, eid)
                return None
            else:
                return self._illegal(order, event)
        elif kind is _K_CANCELLED or kind is _K_EXPIRED:
            if status in _OPEN:
                order.status = _CANCELLED if kind is _K_CANCELLED else _EXPIRED
                order.leaves = 0
                order.reason = event.reason
                order.pending_cancel = False
                order.pending_replace = False
                self._close(order)
            elif status in (_CANCELLED, _EXPIRED, _FILLED):
                stats.stale += 1
                self._note(key, seen, eid)
                return None
            else:
                return self._illegal(order, event)
        elif kind is _K_REJECTED:
            if status is _NEW:
                order.status = _REJECTED
                order.leaves = 0
                order.reason = event.reason
                self._close(order)
            elif status in (_ACK, _PART, _FILLED, _CANCELLED, _EXPIRED):
                # The venue answers a refused cancel/modify with REJECTED for the live order.
                stats.cancel_rejects += 1
                order.pending_cancel = False
                order.pending_replace = False
            else:
                return self._illegal(order, event)
        elif kind is _K_REPLACED:
            if status in _OPEN:
                if event.leaves <= 0:
                    return self._illegal(order, event)
                if status is _NEW:
                    order.status = _ACK
                order.price = event.price
                order.leaves = event.leaves
                order.qty = order.filled_qty + event.leaves
                order.pending_replace = False
            else:
                return self._illegal(order, event)
        elif kind is _K_CANCEL_REJECTED:
            stats.cancel_rejects += 1
            order.pending_cancel = False
            order.pending_replace = False
        else:  # pragma: no cover - every kind is handled above
            return self._illegal(order, event)
        if seen is None:
            self._seen[key] = eid
        elif type(seen) is int:
            self._seen[key] = (seen, eid)
        else:
            self._note(key, seen, eid)
        order.updated_ns = event.ts_ns
        order.events.append(event)
        stats.events += 1
        if fill is not None:
            stats.fills += 1
            for fl in self._fill_listeners:
                try:
                    fl(fill, order)
                except Exception:
                    stats.listener_errors += 1
                    log.exception("fill listener %r failed on fill %d", fl, fill.fill_id)
        for ol in self._order_listeners:
            try:
                ol(order, event)
            except Exception:
                stats.listener_errors += 1
                log.exception("order listener %r failed on event %d", ol, event.event_id)
        return order

    def _note(
        self, key: tuple[int, int], seen: int | tuple[int, ...] | set[int] | None, eid: int
    ) -> None:
        """Record that report ``eid`` was applied to the order ``key`` (``seen``: the ids so
        far, as ``_seen`` holds them)."""
        if seen is None:
            self._seen[key] = eid
        elif isinstance(seen, int):
            self._seen[key] = (seen, eid)
        elif isinstance(seen, tuple):
            self._seen[key] = (*seen, eid) if len(seen) < _SEEN_TUPLE_MAX else {*seen, eid}
        else:
            seen.add(eid)

    def _apply_fill(self, order: Order, event: OrderEvent, status: OrderStatus) -> Fill:
        qty = event.qty
        price = event.price
        filled = order.filled_qty = order.filled_qty + qty
        order.notional_filled += price * qty
        total = order.qty
        if filled > total:
            self.stats.overfills += 1
            log.error(
                "overfill: account %d order %d filled %d of %d (event %d)",
                order.account,
                order.client_order_id,
                order.filled_qty,
                order.qty,
                event.event_id,
            )
        if status is _ACK or status is _PART or status is _NEW:
            if filled >= total:
                order.leaves = 0
                order.status = _FILLED
                order.pending_cancel = False
                order.pending_replace = False
                self._close(order)
            else:
                order.leaves = total - filled
                order.status = _PART
        else:
            self.stats.fills_after_terminal += 1
            order.leaves = 0
            log.warning(
                "fill after %s: account %d order %d qty %d at %d (event %d) applied",
                status,
                order.account,
                order.client_order_id,
                qty,
                event.price,
                event.event_id,
            )
        req = order.request
        liquidity = event.liquidity
        return Fill(
            event.account,
            req.symbol,
            event.client_order_id,
            req.side,
            price,
            qty,
            _TAKER if liquidity is None else liquidity,
            event.fee,
            event.ts_ns,
            event.event_id,
            req.strategy,
        )

    def _on_retired(
        self, key: tuple[int, int], tomb: tuple[Any, ...], event: OrderEvent
    ) -> Order | None:
        """A report for a retired order: a duplicate is dropped at once; anything else is
        applied to the order brought back from its tombstone, exactly as if it had never been
        retired. If the report changed nothing (stale, illegal) the order is retired again."""
        if event.event_id in tomb[-1]:
            self.stats.duplicates += 1
            return None
        del self._retired[key]
        order = _rebuild(key, tomb)
        self._orders[key] = order
        self._seen[key] = set(tomb[-1])
        result = self.on_event(event)
        if result is None:
            self.retire(key[0], key[1])
            self.stats.retired -= 1  # the same retirement, not a new one
        else:
            self.stats.revived += 1
        return result

    def _close(self, order: Order) -> None:
        req = order.request
        group = self._open.get(req.account)
        if group is not None:
            group.pop(req.client_order_id, None)

    def _illegal(self, order: Order, event: OrderEvent) -> Order | None:
        self.stats.illegal_transitions += 1
        log.warning(
            "illegal transition: %s report (event %d) for account %d order %d in status %s; "
            "ignored",
            event.kind,
            event.event_id,
            order.account,
            order.client_order_id,
            order.status,
        )
        return None


def _rebuild(key: tuple[int, int], tomb: tuple[Any, ...]) -> Order:
    """The order a tombstone describes (see ``OrderManager.retire``), with no report history."""
    (
        symbol,
        side,
        qty,
        price,
        order_type,
        tif,
        post_only,
        ts_ns,
        strategy,
        tag,
        status,
        o_price,
        o_qty,
        filled,
        leaves,
        notional,
        venue_id,
        reason,
        created,
        updated,
        pending_cancel,
        pending_replace,
        _seen,
    ) = tomb
    req = OrderRequest(
        key[0],
        key[1],
        symbol,
        Side(side),
        qty,
        price,
        OrderType(order_type),
        TimeInForce(tif),
        post_only,
        ts_ns,
        strategy,
        tag,
    )
    return Order(
        req,
        OrderStatus(status),
        o_price,
        o_qty,
        filled,
        leaves,
        notional,
        venue_id,
        reason,
        created,
        updated,
        [],
        pending_cancel,
        pending_replace,
    )
