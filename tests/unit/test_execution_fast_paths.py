"""The execution layer's per-order fast paths against the code they replaced.

``ReferenceBroker`` and ``ReferenceOrderManager`` below carry, method for method, the code as
it was before the fast paths (commit 2e0ed5a); everything else they inherit. Compared:

* :class:`PaperBroker`: the ACCEPTED report and the fill at the best opposite level done
  inline in ``_arrive_order`` (no paper order object unless something is left), reports built
  without the ``OrderEvent`` constructor (``_emit``, ``_fill``), the ``_flush`` loop,
  ``on_book``'s decay of a single remembered price, and the fees remembered per notional.
* :class:`OrderManager`: ``register`` building the ``Order`` without its constructor and not
  looking up an id at or above the account's next one, the inline fill of a live order in
  ``on_event`` (``Fill`` built without its constructor), and the report ids kept as a tuple
  up to eight (a set after).

Both pairs are driven with the same seeded random stream (two accounts, a Rust ``L2Book``
and a pure-Python book, an unknown symbol; market, limit, IOC, FOK, post-only and invalid
orders, duplicate ids, cancels, modifies, mass cancels, trades, book updates, with and
without latency; duplicated and late reports, retired orders). After every step the reports,
fills, orders, tombstones, counters and the broker's queues and remembered liquidity must
agree, and every object built by a fast path must be an ordinary instance of its class:
equal to the constructor's, same ``repr`` and hash, frozen, picklable.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import pickle
import random
from decimal import Decimal
from typing import Any

import pytest
from tradecore import L2Book
from tradecore.enums import OrderType, Side, TimeInForce
from tradecore.execution import (
    CancelModel,
    DictL2Book,
    Fill,
    LatencyModel,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderManager,
    OrderRequest,
    OrderStatus,
    PaperBroker,
    PaperBrokerConfig,
)
from tradecore.execution.orders import (
    _ACK,
    _FILLED,
    _K_ACCEPTED,
    _K_CANCEL_REJECTED,
    _K_CANCELLED,
    _K_EXPIRED,
    _K_FILL,
    _K_REJECTED,
    _K_REPLACED,
    _NEW,
    _OPEN,
    _PART,
    DuplicateOrderError,
    log,
)
from tradecore.execution.orders import _CANCELLED as _S_CANCELLED
from tradecore.execution.orders import _EXPIRED as _S_EXPIRED
from tradecore.execution.orders import _REJECTED as _S_REJECTED
from tradecore.execution.paper import (
    _ACCEPTED,
    _BUY,
    _EXPIRED,
    _FILL,
    _FOK,
    _GTC,
    _MAKER,
    _MARKET,
    _MONEY,
    _SELL,
    _TAKER,
    _ZERO,
    _Order,
    _Symbol,
)
from tradecore.execution.types import (
    Liquidity,
    _EventSlots,
    _FillSlots,
    _new_order,
    _RequestSlots,
)
from tradecore.instrument import Instrument
from tradecore.marketdata.events import BookUpdate, TradeTick

SYMS = ("AAA", "BBB")
INSTS = [Instrument(s, tick_size="0.01", lot_size="1") for s in SYMS]
BUY, SELL = Side.BUY, Side.SELL
ACCOUNTS = (1, 2)
_IOC = TimeInForce.IOC


class ReferenceBroker(PaperBroker):
    """The paper broker with the order path as it was before the inline fast paths."""

    def _emit(
        self,
        kind: OrderEventKind,
        req: OrderRequest,
        price: int,
        qty: int,
        leaves: int,
        ts: int,
        reason: str = "",
        liquidity: Liquidity | None = None,
        fee: Decimal = _ZERO,
    ) -> None:
        self._eid += 1
        self._out.append(
            OrderEvent(
                kind,
                req.account,
                req.client_order_id,
                req.symbol,
                req.side,
                price,
                qty,
                leaves,
                ts,
                self._eid,
                reason,
                liquidity,
                fee,
            )
        )

    def _flush(self) -> None:
        """Deliver the queued reports, in order, once the broker's state is consistent.

        Reports are never delivered in the middle of a state change, so a sink that calls back
        into the broker (a strategy reacting to a fill) sees a consistent broker; its own
        reports are queued behind and delivered by the outermost flush.
        """
        if self._delivering or not self._out:
            return
        sink = self._sink
        if sink is None:
            return
        out = self._out
        self._delivering = True
        i = 0
        try:
            while i < len(out):
                ev = out[i]
                i += 1
                sink(ev)
        finally:
            del out[:i]
            self._delivering = False

    def _fill(self, st: _Symbol, o: _Order, qty: int, price: int, liq: Liquidity, ts: int) -> None:
        leaves = o.leaves = o.leaves - qty
        stats = self.stats
        stats.fills += 1
        if liq is _MAKER:
            rate = st.maker_rate
            stats.maker_fills += 1
        else:
            rate = st.taker_rate
            stats.taker_fills += 1
        fee = _MONEY.multiply(rate, price * qty) if rate else _ZERO
        if leaves == 0 and o.level is not None:
            self._unrest(st, o)
        req = o.request
        self._eid = eid = self._eid + 1
        self._out.append(
            OrderEvent(
                _FILL, o.account, o.coid, req.symbol, req.side, price, qty, leaves, ts, eid, "",
                liq, fee,
            )
        )  # fmt: skip

    def _arrive_order(self, req: OrderRequest, t: int) -> None:
        st = self._syms.get(req.symbol)
        if st is None:
            self._reject(req, "UNKNOWN_SYMBOL", t)
            return
        key = (req.account, req.client_order_id)
        if key in self._requests:
            self._reject(req, "DUPLICATE_ORDER_ID", t)
            return
        self._requests[key] = (req.symbol, req.side is _BUY)
        if req.qty <= 0:
            self._reject(req, "INVALID_QTY", t)
            return
        is_market = req.order_type is _MARKET
        if not is_market and req.price <= 0:
            self._reject(req, "INVALID_PRICE", t)
            return
        if st.book is None:
            self._reject(req, "NO_MARKET_DATA", t)
            return
        o = _Order(req)
        limit = None if is_market else req.price
        if req.post_only and self._available(st, o.is_buy, limit, 1) > 0:
            self._reject(req, "WOULD_CROSS", t)
            return
        stats = self.stats
        stats.accepted += 1
        qty = req.qty
        self._eid = eid = self._eid + 1
        out = self._out
        out.append(
            OrderEvent(
                _ACCEPTED, o.account, o.coid, req.symbol, req.side, req.price, qty, qty, t, eid
            )
        )
        tif = req.tif
        if tif is _FOK and self._available(st, o.is_buy, limit, qty) < qty:
            stats.expired += 1
            self._emit(_EXPIRED, req, req.price, qty, 0, t, "FOK_UNFILLED")
            return
        self._take(st, o, limit, t)
        leaves = o.leaves
        if leaves == 0:
            return
        if is_market:
            stats.expired += 1
            self._emit(_EXPIRED, req, req.price, leaves, 0, t, "NO_LIQUIDITY")
        elif tif is not _GTC:
            stats.expired += 1
            self._emit(_EXPIRED, req, req.price, leaves, 0, t, "IOC_REMAINDER")
        else:
            self._rest(st, o)

    def _take(self, st: _Symbol, o: _Order, limit: int | None, t: int) -> None:
        """Walk the opposite side within ``limit``, filling ``o`` (TAKER) level by level.

        The best level comes from ``best_*`` (one small call); ``depth`` is read only when the
        order needs more than the best level has.
        """
        book = st.book
        assert book is not None
        is_buy = o.is_buy
        best = book.best_ask() if is_buy else book.best_bid()
        if best is None:
            return
        p, q = best
        if limit is not None and (p > limit if is_buy else p < limit):
            return
        taken = st.taken_asks if is_buy else st.taken_bids
        had = taken.get(p, 0)
        avail = q - had
        if avail > 0:
            leaves = o.leaves
            f = avail if avail < leaves else leaves
            taken[p] = had + f
            self._fill(st, o, f, p, _TAKER, t)
            if o.leaves == 0:
                return
        n = 16
        start = 1  # the best level (index 0) is done
        while True:
            bids, asks = book.depth(n)
            levels = asks if is_buy else bids
            for i in range(start, len(levels)):
                p, q = levels[i]
                if limit is not None and (p > limit if is_buy else p < limit):
                    return
                avail = q - taken.get(p, 0)
                if avail <= 0:
                    continue
                f = avail if avail < o.leaves else o.leaves
                taken[p] = taken.get(p, 0) + f
                self._fill(st, o, f, p, _TAKER, t)
                if o.leaves == 0:
                    return
            if len(levels) < n:
                return
            start = len(levels)
            n *= 4

    def on_book(self, update: BookUpdate) -> None:
        """The book of ``update.symbol`` changed (already applied): update queues, fill."""
        self.stats.book_updates += 1
        st = self._syms.get(update.symbol)
        t = update.recv_ns
        if st is None:
            self.stats.unknown_symbol_events += 1
            self.advance_to(t)
            return
        if st.bids or st.asks or self._heap or self._restoring:
            self._book(st, update.symbol, update.book, t)
        else:
            # Nothing of ours rests or is in flight in this symbol: what ``_book`` would do,
            # inlined (the node's case after a taker fill: only the liquidity we took is
            # remembered, and each remembered price is capped at its level's new quantity,
            # or forgotten when the level is gone, as ``_decay_taken`` does).
            book = update.book
            if st.book is not book:
                self._bind(st, book)
            taken = st.taken_bids
            if taken:
                qty_at = st.qty_at
                for price, had in list(taken.items()):
                    q = qty_at(_BUY, price)
                    if q <= 0:
                        del taken[price]
                    elif had > q:
                        taken[price] = q
            taken = st.taken_asks
            if taken:
                qty_at = st.qty_at
                for price, had in list(taken.items()):
                    q = qty_at(_SELL, price)
                    if q <= 0:
                        del taken[price]
                    elif had > q:
                        taken[price] = q
            if t > self._now:
                self._now = t
        if self._out:
            self._flush()


class ReferenceOrderManager(OrderManager):
    """The order manager as it was before the inline fast paths."""

    def register(self, request: OrderRequest, ts_ns: int) -> Order:
        """Start tracking ``request`` in status NEW; call before the client's ``submit``.

        Raises :class:`DuplicateOrderError` if the account already used its client order id.
        """
        account = request.account
        coid = request.client_order_id
        key = (account, coid)
        orders = self._orders
        if key in orders or key in self._retired:
            raise DuplicateOrderError(
                f"client order id {coid} is already used by account "
                f"{account} (symbol {request.symbol})"
            )
        qty = request.qty
        # Positional: a third cheaper than keywords on this per-order path.
        order = Order(request, _NEW, request.price, qty, 0, qty, 0, 0, "", ts_ns, ts_ns)
        orders[key] = order
        group = self._open.get(account)
        if group is None:
            group = self._open[account] = {}
        group[coid] = order
        next_id = self._next_id
        if coid >= next_id.get(account, 1):
            next_id[account] = coid + 1
        self.stats.registered += 1
        return order

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
            if event.qty <= 0:
                return self._illegal(order, event)
            fill = self._apply_fill(order, event, status)
        elif kind is _K_ACCEPTED:
            if status is _NEW:
                order.status = _ACK
                if event.venue_order_id:
                    order.venue_order_id = event.venue_order_id
            elif status in (_ACK, _PART, _FILLED, _S_CANCELLED, _S_EXPIRED):
                # A late acknowledgement: the order has already moved on.
                stats.stale += 1
                self._note(key, seen, eid)
                return None
            else:
                return self._illegal(order, event)
        elif kind is _K_CANCELLED or kind is _K_EXPIRED:
            if status in _OPEN:
                order.status = _S_CANCELLED if kind is _K_CANCELLED else _S_EXPIRED
                order.leaves = 0
                order.reason = event.reason
                order.pending_cancel = False
                order.pending_replace = False
                self._close(order)
            elif status in (_S_CANCELLED, _S_EXPIRED, _FILLED):
                stats.stale += 1
                self._note(key, seen, eid)
                return None
            else:
                return self._illegal(order, event)
        elif kind is _K_REJECTED:
            if status is _NEW:
                order.status = _S_REJECTED
                order.leaves = 0
                order.reason = event.reason
                self._close(order)
            elif status in (_ACK, _PART, _FILLED, _S_CANCELLED, _S_EXPIRED):
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

    def _note(self, key: tuple[int, int], seen: int | set[int] | None, eid: int) -> None:
        """Record that report ``eid`` was applied to the order ``key`` (``seen``: the ids so
        far, as ``_seen`` holds them)."""
        if seen is None:
            self._seen[key] = eid
        elif isinstance(seen, int):
            self._seen[key] = {seen, eid}
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


# ---------------------------------------------------------------------------- the driver


def _fields(obj: Any) -> tuple[Any, ...]:
    return tuple(getattr(obj, f.name) for f in dataclasses.fields(obj))


def _check_built(obj: Any, cls: type) -> None:
    """``obj`` (from a fast path) is an ordinary ``cls`` equal to the constructor's."""
    assert type(obj) is cls
    twin = cls(*_fields(obj))
    assert obj == twin and repr(obj) == repr(twin)
    assert pickle.loads(pickle.dumps(obj)) == obj
    assert copy.copy(obj) == obj and dataclasses.replace(obj) == obj
    if cls is not Order:
        assert hash(obj) == hash(twin)
        with pytest.raises(dataclasses.FrozenInstanceError):
            obj.account = 0


class Stack:
    """One broker and its order manager, as the node wires them (reports -> ``on_event``)."""

    def __init__(
        self,
        broker_cls: type[PaperBroker],
        om_cls: type[OrderManager],
        cfg: PaperBrokerConfig,
        now: list[int],
        books: dict[str, Any],
    ) -> None:
        self.now = now
        self.om = om_cls(retired_limit=25)
        self.reports: list[OrderEvent] = []
        self.fills: list[tuple[Fill, str]] = []
        self.updates: list[str] = []
        self.returns: list[str] = []
        self.registered: list[Order] = []
        self.om.add_fill_listener(lambda f, o: self.fills.append((f, repr(o))))
        self.om.add_order_listener(lambda o, e: self.updates.append(repr(o)))
        self.broker = broker_cls(INSTS, lambda: now[0], cfg, sink=self.sink)
        for s, b in books.items():
            self.broker.attach_book(s, b)

    def sink(self, e: OrderEvent) -> None:
        self.reports.append(e)
        order = self.om.on_event(e)
        self.returns.append(repr(order))
        # A strategy that answers some fills at once (a report inside the delivery loop):
        # the same decision in both stacks, taken from the report itself.
        if e.kind is OrderEventKind.FILL and e.event_id % 5 == 0 and e.symbol in SYMS:
            side = SELL if e.side is BUY else BUY
            self.submit(e.account, e.symbol, side, 1 + e.event_id % 3, 0, _MARKET, _GTC, False)

    def submit(
        self,
        account: int,
        symbol: str,
        side: Side,
        qty: int,
        price: int,
        otype: OrderType,
        tif: TimeInForce,
        post_only: bool,
        coid: int | None = None,
    ) -> None:
        if coid is None:
            coid = self.om.next_client_order_id(account)
        req = OrderRequest(
            account, coid, symbol, side, qty, price, otype, tif, post_only, self.now[0], "s", "t"
        )
        if self.om.get(account, coid) is None and not self.om.is_retired(account, coid):
            self.registered.append(self.om.register(req, self.now[0]))
        self.broker.submit(req)


def _om_state(om: OrderManager) -> tuple[Any, ...]:
    tombs = [(k, t[:-1], frozenset(t[-1])) for k, t in om._retired.items()]
    per = tuple(
        (a, s, side, om.open_qty(a, s, side), om.open_count(a, s), om.open_count(a))
        for a in ACCOUNTS
        for s in (*SYMS, "ZZZ")
        for side in (BUY, SELL)
    )
    orders = [repr(o) for o in om.orders()]
    opened = [repr(o) for o in om.open_orders()]
    return orders, opened, tombs, per, om.stats


def _broker_state(b: PaperBroker, keys: list[tuple[int, int]]) -> tuple[Any, ...]:
    taken = tuple((s, dict(b._syms[s].taken_bids), dict(b._syms[s].taken_asks)) for s in SYMS)
    queues = tuple(b.queue_position(a, c) for a, c in keys)
    return (
        taken,
        queues,
        b._now,
        b._eid,
        b.stats,
        b.resting_count(),
        b.in_flight_count(),
        b.idle(),
        dict(b._requests),
        b._out,
    )


def _flat(e: OrderEvent) -> tuple[Any, ...]:
    return (type(e), repr(e), hash(e), _fields(e))


def _move_book(rng: random.Random, book: Any, mid: int, sym: str) -> int:
    mid += rng.choice((-2, -1, 0, 0, 1, 2))
    bids, asks = book.depth(50)
    for p, *_ in bids:
        if p >= mid or p < mid - 6:
            book.set(BUY, p, 0)
    for p, *_ in asks:
        if p <= mid or p > mid + 6:
            book.set(SELL, p, 0)
    for _ in range(rng.randint(1, 3)):
        off = rng.randint(1, 5)
        book.set(BUY, mid - off, rng.choice((0, rng.randint(1, 30))))
        book.set(SELL, mid + off, rng.choice((0, rng.randint(1, 30))))
    return mid


def run(seed: int, latency: LatencyModel, steps: int) -> dict[str, int]:
    rng = random.Random(seed)
    now = [0]
    cfg = PaperBrokerConfig(
        maker_fee_bps=rng.choice((Decimal("-0.25"), Decimal(0), Decimal("1"))),
        taker_fee_bps=rng.choice((Decimal("7.5"), Decimal(0))),
        latency=latency,
        cancel_model=rng.choice(list(CancelModel)),
        seed=seed,
        optimistic_queue=rng.random() < 0.2,
    )
    books: dict[str, Any] = {"AAA": L2Book(), "BBB": DictL2Book()}
    mids = {s: 1_000 for s in SYMS}
    for s in SYMS:
        for i in range(1, 6):
            books[s].set(BUY, 1_000 - i, rng.randint(1, 20))
            books[s].set(SELL, 1_000 + i, rng.randint(1, 20))
    ref = Stack(ReferenceBroker, ReferenceOrderManager, cfg, now, books)
    fast = Stack(PaperBroker, OrderManager, cfg, now, books)
    stacks = (ref, fast)
    keys: list[tuple[int, int]] = []
    synthetic_id = 10**9
    mark = [0, 0, 0, 0, 0]
    counts = {"inline_taken": 0, "synthetic": 0, "retired": 0, "late": 0, "refused": 0}
    for step in range(steps):
        now[0] += rng.randint(1, 150)
        sym = rng.choice(SYMS)
        book = books[sym]
        r = rng.random()
        if r < 0.35:
            mids[sym] = _move_book(rng, book, mids[sym], sym)
            st = fast.broker._syms[sym]
            if len(st.taken_bids) == 1 or len(st.taken_asks) == 1:
                counts["inline_taken"] += 1
            target = sym if rng.random() < 0.97 else "ZZZ"
            update = BookUpdate(target, now[0], now[0], 0, book)
            for s in stacks:
                s.broker.on_book(update)
        elif r < 0.5:
            aggressor = rng.choice((BUY, SELL))
            best = book.best_ask() if aggressor is BUY else book.best_bid()
            price = best[0] if best else mids[sym]
            price += rng.choice((0, 0, 0, -1, 1))
            tick = TradeTick(sym, now[0], now[0], price, rng.randint(1, 15), aggressor, 0)
            for s in stacks:
                s.broker.on_trade(tick)
        elif r < 0.78:
            account = rng.choice(ACCOUNTS)
            side = rng.choice((BUY, SELL))
            otype = OrderType.MARKET if rng.random() < 0.4 else OrderType.LIMIT
            price = 0 if otype is OrderType.MARKET else mids[sym] + rng.randint(-4, 4)
            if rng.random() < 0.03:
                price = rng.choice((0, -5))
            qty = rng.randint(1, 30) if rng.random() < 0.97 else rng.choice((0, -1))
            tif = rng.choice((TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK))
            post_only = rng.random() < 0.1
            if rng.random() < 0.03:
                sym = "ZZZ"
            coid = None
            if rng.random() < 0.03 and keys:
                coid = rng.choice(keys)[1]  # a duplicate id (or another account's)
            for s in stacks:
                s.submit(account, sym, side, qty, price, otype, tif, post_only, coid)
            keys.append((account, fast.reports[-1].client_order_id if fast.reports else 0))
        elif r < 0.88:
            account = rng.choice(ACCOUNTS)
            live = [o for o in fast.om.open_orders(account) if not o.pending_cancel]
            x = rng.random()
            if x < 0.3:
                which = rng.choice((None, sym))
                for s in stacks:
                    s.broker.cancel_all(account, which)
            elif x < 0.6 and live:
                o = rng.choice(live)
                for s in stacks:
                    s.om.cancel_requested(account, o.client_order_id, now[0])
                    s.broker.cancel(account, o.symbol, o.client_order_id)
            elif live:
                o = rng.choice(live)
                p = o.price + rng.choice((-2, -1, 0, 1))
                q = rng.randint(0, 8)
                for s in stacks:
                    s.om.replace_requested(account, o.client_order_id, now[0])
                    s.broker.modify(account, o.symbol, o.client_order_id, p, q)
        elif r < 0.92 and fast.reports:
            # A report delivered again: a duplicate, or late for a retired order.
            i = rng.randrange(len(fast.reports))
            if rng.random() < 0.5:  # most often one of a retired order, if there are any
                gone = [
                    j
                    for j in range(max(0, i - 200), i)
                    if fast.om.is_retired(fast.reports[j].account, fast.reports[j].client_order_id)
                ]
                i = rng.choice(gone) if gone else i
            key = (fast.reports[i].account, fast.reports[i].client_order_id)
            counts["late"] += fast.om.is_retired(*key)
            for s in stacks:
                s.returns.append(repr(s.om.on_event(s.reports[i])))
        elif r < 0.95 and keys:
            # A synthetic report of any kind for a known order (fills after the end,
            # overfills, stale acknowledgements, replaces, refused cancels, bad quantities).
            account, coid = rng.choice(keys)
            o = fast.om.lookup(account, coid)
            synthetic_id += 1
            kind = rng.choice(list(OrderEventKind) + [OrderEventKind.FILL] * 4)
            qty = rng.choice((1, 1, 2, 0, 50))
            e = OrderEvent(
                kind,
                account,
                coid,
                o.symbol if o is not None else "AAA",
                o.side if o is not None else BUY,
                mids[sym],
                qty,
                rng.randint(0, 5),
                now[0],
                synthetic_id,
                "X",
                rng.choice((None, Liquidity.MAKER, Liquidity.TAKER)),
                Decimal(rng.randint(-3, 3)) / 10,
                rng.choice((0, 77)),
            )
            counts["synthetic"] += 1
            for s in stacks:
                s.returns.append(repr(s.om.on_event(e)))
        elif r < 0.965:
            # A registration outside the broker: a fresh id (at or above the account's next
            # one), a used or retired one (refused), or a low unused one (a gap).
            account = rng.choice(ACCOUNTS)
            nxt = fast.om._next_id.get(account, 1)
            coid = rng.choice(
                (
                    rng.randint(-3, 3),
                    rng.choice(keys)[1] if keys else 1,
                    nxt - 1,  # the last one used (refused), or a gap below the first
                    nxt + rng.randint(0, 3),
                )
            )
            outcomes = []
            for s in stacks:
                req = OrderRequest(account, coid, sym, BUY, 1, 1_000)
                try:
                    outcomes.append(repr(s.om.register(req, now[0])))
                except DuplicateOrderError as exc:
                    outcomes.append(f"refused: {exc}")
                    counts["refused"] += 1
            assert outcomes[0] == outcomes[1]
        else:
            done = [o for o in fast.om.orders() if not o.is_open]
            if done:
                o = rng.choice(done)
                got = [s.om.retire(o.account, o.client_order_id) for s in stacks]
                assert got[0] == got[1]
                counts["retired"] += got[1]
        for s in stacks:
            s.broker.advance_to(now[0])
        # What happened in this step (the earlier part was compared before) ...
        assert len(fast.reports) == len(ref.reports) and len(fast.fills) == len(ref.fills)
        new_reports = fast.reports[mark[0] :]
        assert [_flat(e) for e in new_reports] == [_flat(e) for e in ref.reports[mark[0] :]]
        new_fills = [(_flat(f), o) for f, o in fast.fills[mark[1] :]]
        assert new_fills == [(_flat(f), o) for f, o in ref.fills[mark[1] :]]
        assert fast.updates[mark[2] :] == ref.updates[mark[2] :]
        assert fast.returns[mark[3] :] == ref.returns[mark[3] :]
        assert len(fast.updates) == len(ref.updates) and len(fast.returns) == len(ref.returns)
        new_orders = [repr(o) for o in fast.registered[mark[4] :]]
        assert new_orders == [repr(o) for o in ref.registered[mark[4] :]]
        for e in new_reports:
            _check_built(e, OrderEvent)
        mark = [len(x) for x in (fast.reports, fast.fills, fast.updates, fast.returns)]
        mark.append(len(fast.registered))
        # ... and the whole state, now and then (it grows with the run).
        if step % 20 == 19 or step == steps - 1:
            assert _om_state(fast.om) == _om_state(ref.om)
            assert _broker_state(fast.broker, keys) == _broker_state(ref.broker, keys)
    for f, _ in fast.fills[-50:]:
        _check_built(f, Fill)
    for o in fast.registered[-50:]:
        _check_built(o, Order)
    counts["fills"] = fast.broker.stats.fills
    counts["most_reports"] = max((len(o.events) for o in fast.om.orders()), default=0)
    counts["tuple_seen"] = sum(type(v) is tuple for v in fast.om._seen.values())
    counts["set_seen"] = sum(type(v) is set for v in fast.om._seen.values())
    return counts


@pytest.mark.parametrize(
    ("seed", "latency"),
    [
        (11, LatencyModel()),
        (12, LatencyModel()),
        (13, LatencyModel()),
        (14, LatencyModel(entry_ns=200, cancel_ns=100, jitter_ns=150)),
    ],
)
def test_fast_paths_match_the_reference(
    seed: int, latency: LatencyModel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)  # the synthetic reports log warnings by design
    counts = run(seed, latency, 1_500)
    # The stream reached the cases it is meant to compare.
    assert counts["fills"] > 200 and counts["inline_taken"] > 50, counts
    assert counts["synthetic"] > 15 and counts["retired"] > 10 and counts["late"] > 5, counts
    assert counts["tuple_seen"] > 0 and counts["set_seen"] > 0 and counts["refused"] > 5, counts


def test_report_ids_beyond_the_tuple_stay_deduplicated() -> None:
    """The ids an order's reports carry move from an int to a tuple to a set; a report seen
    before is a duplicate at every stage, and the tombstone keeps them all."""
    om = OrderManager()
    req = OrderRequest(1, 1, "AAA", BUY, 100, 10)
    om.register(req, 0)
    ids = list(range(100, 120))
    for i in ids:
        e = OrderEvent(OrderEventKind.FILL, 1, 1, "AAA", BUY, 10, 1, 0, i, i)
        assert om.on_event(e) is not None
        for j in ids[: ids.index(i) + 1]:
            dup = OrderEvent(OrderEventKind.FILL, 1, 1, "AAA", BUY, 10, 1, 0, j, j)
            assert om.on_event(dup) is None
    assert om.stats.duplicates == sum(range(1, 21))
    order = om.get(1, 1)
    assert order is not None and order.filled_qty == 20
    om.on_event(OrderEvent(OrderEventKind.CANCELLED, 1, 1, "AAA", BUY, 10, 80, 0, 1, 1))
    assert om.retire(1, 1)
    for j in ids:
        dup = OrderEvent(OrderEventKind.FILL, 1, 1, "AAA", BUY, 10, 1, 0, j, j)
        assert om.on_event(dup) is None
    assert om.stats.duplicates == sum(range(1, 21)) + 20 and om.is_retired(1, 1)


def test_remembered_fees_are_the_exact_products_and_stay_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fill's fee comes from the per-symbol memo when its notional was seen before; the memo
    is emptied when full; every fee equals ``rate * price * qty`` computed afresh."""
    import tradecore.execution.paper as paper

    monkeypatch.setattr(paper, "_FEE_MEMO", 3)
    log: list[OrderEvent] = []
    book = DictL2Book()
    cfg = PaperBrokerConfig(maker_fee_bps=Decimal("-0.25"), taker_fee_bps=Decimal("7.5"))
    broker = PaperBroker(INSTS, lambda: 1, cfg, sink=log.append)
    broker.attach_book("AAA", book)
    st = broker._syms["AAA"]
    rng = random.Random(5)
    for coid in range(1, 301):
        price = rng.randint(990, 1_010)
        book.set(SELL, price, 1_000)
        book.set(BUY, price - 1, 1_000)
        broker.submit(OrderRequest(1, coid, "AAA", BUY, rng.randint(1, 4), price, tif=_IOC))
        for lvl in list(book.depth(100)[1]):
            book.set(SELL, lvl[0], 0)
        for lvl in list(book.depth(100)[0]):
            book.set(BUY, lvl[0], 0)
        broker.on_book(BookUpdate("AAA", 1, 1, 0, book))
        assert len(st.taker_fees) <= 3
    fills = [e for e in log if e.kind is OrderEventKind.FILL]
    assert len(fills) == 300
    for e in fills:
        assert e.fee == _MONEY.multiply(st.taker_rate, e.price * e.qty)
        assert e.fee.as_tuple() == _MONEY.multiply(st.taker_rate, e.price * e.qty).as_tuple()
    assert len({e.price * e.qty for e in fills}) > 3  # the memo was emptied along the way


def _random_value(rng: random.Random, name: str) -> Any:
    choices: dict[str, tuple[Any, ...]] = {
        "side": (BUY, SELL),
        "order_type": tuple(OrderType),
        "tif": tuple(TimeInForce),
        "kind": tuple(OrderEventKind),
        "liquidity": (None, Liquidity.MAKER, Liquidity.TAKER),
        "symbol": ("AAA", "BBB", ""),
        "strategy": ("", "imb"),
        "tag": ("", "x"),
        "reason": ("", "USER"),
        "post_only": (False, True),
        "fee": (Decimal(0), Decimal("-0.0000125"), Decimal("3.75E-7")),
    }
    if name in choices:
        return rng.choice(choices[name])
    return rng.randint(-(10**12), 10**12)


@pytest.mark.parametrize("cls", [OrderRequest, OrderEvent, Fill])
def test_slot_builders_make_ordinary_instances(cls: type) -> None:
    """A builder instance with every field stored, switched to the class, is what the
    constructor makes (equal, same repr, hash and pickle, frozen)."""
    twin = {OrderRequest: _RequestSlots, OrderEvent: _EventSlots, Fill: _FillSlots}[cls]
    assert twin.__slots__ == cls.__slots__ and twin.__bases__ == (object,)
    rng = random.Random(7)
    for _ in range(200):
        values = [_random_value(rng, f.name) for f in dataclasses.fields(cls)]
        obj = twin()
        for f, v in zip(dataclasses.fields(cls), values, strict=True):
            setattr(obj, f.name, v)
        obj.__class__ = cls
        _check_built(obj, cls)
        assert obj == cls(*values)


def test_order_builder_needs_every_slot() -> None:
    """``_new_order`` gives an order with no slot set: the builder sites set all of them,
    and what they build equals the constructor's (``register`` here)."""
    bare = _new_order(Order)
    with pytest.raises(AttributeError):
        _ = bare.status
    om = OrderManager()
    req = OrderRequest(3, 9, "AAA", SELL, 4, 1_001, tif=_IOC, strategy="s", tag="t")
    order = om.register(req, 77)
    _check_built(order, Order)
    assert order == Order(req, OrderStatus.NEW, 1_001, 4, 0, 4, 0, 0, "", 77, 77)


def test_fresh_ids_skip_the_lookup_and_used_ids_are_still_refused() -> None:
    """``register`` looks an id up only below the account's next id; every used id (live,
    finished, retired, the last one, a gap filled later, zero or negative) is refused."""
    om = OrderManager(retired_limit=100)

    def reg(account: int, coid: int) -> None:
        om.register(OrderRequest(account, coid, "AAA", BUY, 2, 1_000), 0)

    used: list[tuple[int, int]] = []
    for account, coid in ((1, 5), (1, 6), (1, 9), (2, 1), (1, 7), (1, 0), (1, -4), (2, 2)):
        reg(account, coid)
        used.append((account, coid))
        for a, c in used:  # the one just registered included
            with pytest.raises(DuplicateOrderError, match=f"client order id {c} "):
                reg(a, c)
    assert om.next_client_order_id(1) == 10 and om.next_client_order_id(2) == 3
    for a, c in used[:4]:
        e = OrderEvent(OrderEventKind.CANCELLED, a, c, "AAA", BUY, 1_000, 2, 0, 1, 100 + c)
        assert om.on_event(e) is not None and om.retire(a, c)
    for a, c in used:
        with pytest.raises(DuplicateOrderError):
            reg(a, c)
    reg(1, 8)  # a gap below the next id, never used: accepted
    reg(1, 12)  # above the ids handed out: accepted, and the next id moves past it
    assert om.next_client_order_id(1) == 13 and om.stats.registered == len(used) + 2
