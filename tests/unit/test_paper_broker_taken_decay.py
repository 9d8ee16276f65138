"""The paper broker's book update when only the liquidity we took is remembered (no order of
ours rests or flies in the symbol: the node's case after every taker fill) is done inline in
``on_book``; it must be exactly what the general ``_book`` path with the original
``_decay_taken`` did. Two brokers, one with ``on_book`` and ``_decay_taken`` as they were
(every book update with remembered liquidity through ``_book``), are driven with the same
seeded random books, trades and requests (market and limit, GTC and IOC, cancels and
modifies, latency or none, a book object replaced now and then); their reports, remembered
liquidity, queues, clocks and counters must agree after every step.

Also: the broker keeps no ``OrderRequest`` per order for duplicate detection, only plain
tuples the garbage collector stops tracking, and a cancel of a finished order is still
rejected with the order's symbol and side.
"""

from __future__ import annotations

import gc
import random
from collections.abc import Callable
from decimal import Decimal

import pytest
from tradecore.enums import OrderType, Side, TimeInForce
from tradecore.execution import (
    CancelModel,
    DictL2Book,
    LatencyModel,
    OrderEvent,
    OrderEventKind,
    OrderManager,
    OrderRequest,
    PaperBroker,
    PaperBrokerConfig,
)
from tradecore.instrument import Instrument
from tradecore.marketdata.events import BookUpdate, TradeTick

SYMS = ("AAA", "BBB")
INSTS = [Instrument(s, tick_size="0.01", lot_size="1") for s in SYMS]
BUY, SELL = Side.BUY, Side.SELL


class ReferenceBroker(PaperBroker):
    """``on_book`` and ``_decay_taken`` as they were before the inline path."""

    def on_book(self, update: BookUpdate) -> None:
        self.stats.book_updates += 1
        st = self._syms.get(update.symbol)
        t = update.recv_ns
        if st is None:
            self.stats.unknown_symbol_events += 1
            self.advance_to(t)
            return
        if st.bids or st.asks or st.taken_bids or st.taken_asks or self._heap or self._restoring:
            self._book(st, update.symbol, update.book, t)
        else:
            if st.book is not update.book:
                self._bind(st, update.book)
            if t > self._now:
                self._now = t
        if self._out:
            self._flush()

    @staticmethod
    def _decay_taken(taken: dict[int, int], qty_at: Callable[[Side, int], int], side: Side) -> None:
        for price in list(taken):
            q = qty_at(side, price)
            if q <= 0:
                del taken[price]
            elif taken[price] > q:
                taken[price] = q


def flatten(log: list[OrderEvent]) -> list[tuple[object, ...]]:
    fields = ("kind", "account", "client_order_id", "symbol", "side", "price", "qty", "leaves")
    more = ("ts_ns", "event_id", "reason", "liquidity", "fee")
    return [tuple(getattr(e, f) for f in fields + more) for e in log]


def state(b: PaperBroker, keys: list[tuple[int, int]]) -> tuple[object, ...]:
    taken = tuple((s, dict(b._syms[s].taken_bids), dict(b._syms[s].taken_asks)) for s in SYMS)
    queues = tuple(b.queue_position(a, c) for a, c in keys)
    return taken, queues, b._now, b.stats, b.resting_count(), b.in_flight_count(), b.idle()


def run(seed: int, latency: LatencyModel, steps: int = 1_200) -> tuple[int, int]:
    rng = random.Random(seed)
    now = [0]
    cfg = PaperBrokerConfig(
        maker_fee_bps=Decimal("-0.25"),
        taker_fee_bps=Decimal("3"),
        latency=latency,
        cancel_model=rng.choice(list(CancelModel)),
        seed=seed,
    )
    om = OrderManager()
    ref_log: list[OrderEvent] = []
    fast_log: list[OrderEvent] = []

    def ref_sink(e: OrderEvent) -> None:
        ref_log.append(e)
        om.on_event(e)

    ref = ReferenceBroker(INSTS, lambda: now[0], cfg, sink=ref_sink)
    fast = PaperBroker(INSTS, lambda: now[0], cfg, sink=fast_log.append)
    books = {s: DictL2Book() for s in SYMS}
    mids = {s: 1_000 for s in SYMS}
    for s in SYMS:
        for i in range(1, 5):
            books[s].set(BUY, 1_000 - i, rng.randint(1, 20))
            books[s].set(SELL, 1_000 + i, rng.randint(1, 20))
        for b in (ref, fast):
            b.attach_book(s, books[s])
    keys: list[tuple[int, int]] = []
    inline = decayed = 0
    for _ in range(steps):
        now[0] += rng.randint(1, 150)
        sym = rng.choice(SYMS)
        book = books[sym]
        r = rng.random()
        if r < 0.5:
            if rng.random() < 0.02:
                fresh = DictL2Book()
                for p, q in book.depth(50)[0]:
                    fresh.set(BUY, p, q)
                for p, q in book.depth(50)[1]:
                    fresh.set(SELL, p, q)
                book = books[sym] = fresh
            mid = mids[sym] = mids[sym] + rng.choice((-2, -1, 0, 1, 2))
            for p, _q in book.depth(50)[0]:
                if p >= mid or p < mid - 5:
                    book.set(BUY, p, 0)
            for p, _q in book.depth(50)[1]:
                if p <= mid or p > mid + 5:
                    book.set(SELL, p, 0)
            for _ in range(2):
                off = rng.randint(1, 4)
                book.set(BUY, mid - off, rng.randint(0, 25))
                book.set(SELL, mid + off, rng.randint(0, 25))
            st = fast._syms[sym]
            before = (dict(st.taken_bids), dict(st.taken_asks))
            if not (st.bids or st.asks or fast._heap or fast._restoring) and any(before):
                inline += 1
            update = BookUpdate(sym, now[0], now[0], rng.randint(0, 9), book)
            ref.on_book(update)
            fast.on_book(update)
            decayed += (dict(st.taken_bids), dict(st.taken_asks)) != before
        elif r < 0.75:
            aggressor = rng.choice((BUY, SELL))
            best = book.best_ask() if aggressor is BUY else book.best_bid()
            price = best[0] if best else mids[sym]
            tick = TradeTick(sym, now[0], now[0], price, rng.randint(1, 15), aggressor, 0)
            ref.on_trade(tick)
            fast.on_trade(tick)
        elif r < 0.92:
            side = rng.choice((BUY, SELL))
            otype = OrderType.MARKET if rng.random() < 0.6 else OrderType.LIMIT
            price = 0 if otype is OrderType.MARKET else mids[sym] + rng.randint(-3, 3)
            tif = rng.choice((TimeInForce.GTC, TimeInForce.IOC))
            coid = om.next_client_order_id(1)
            req = OrderRequest(1, coid, sym, side, rng.randint(1, 30), price, otype, tif)
            om.register(req, now[0])
            keys.append((1, coid))
            ref.submit(req)
            fast.submit(req)
        else:
            live = [o for o in om.open_orders(1) if not o.pending_cancel]
            if rng.random() < 0.6:
                for o in live:
                    om.cancel_requested(1, o.client_order_id, now[0])
                    for b in (ref, fast):
                        b.cancel(1, o.symbol, o.client_order_id)
                live = []
            for o in live[:1]:
                p = o.price + rng.choice((-1, 0, 1))
                q = rng.randint(1, 6)
                om.replace_requested(1, o.client_order_id, now[0])
                for b in (ref, fast):
                    b.modify(1, o.symbol, o.client_order_id, p, q)
        for b in (ref, fast):
            b.advance_to(now[0])
        assert flatten(fast_log) == flatten(ref_log)
        assert state(fast, keys) == state(ref, keys)
    return inline, decayed


@pytest.mark.parametrize(
    ("seed", "latency"),
    [
        (1, LatencyModel()),
        (2, LatencyModel()),
        (3, LatencyModel(entry_ns=200, cancel_ns=100, jitter_ns=150)),
    ],
)
def test_inline_decay_of_taken_liquidity_is_the_general_path(
    seed: int, latency: LatencyModel
) -> None:
    inline, decayed = run(seed, latency)
    # The inline branch ran often, and it changed what is remembered (capped or forgot).
    assert inline > 100 and decayed > 50


def test_finished_orders_leave_untracked_keys_and_cancel_rejects_keep_symbol_and_side() -> None:
    log: list[OrderEvent] = []
    book = DictL2Book({999: 50}, {1_001: 50})
    broker = PaperBroker(INSTS, lambda: 1, PaperBrokerConfig(), sink=log.append)
    broker.attach_book("BBB", book)
    for coid in range(1, 51):
        side = SELL if coid % 2 else BUY
        broker.submit(OrderRequest(7, coid, "BBB", side, 1, 0, OrderType.MARKET))
    assert broker.resting_count() == 0 and broker.stats.fills == 50
    gc.collect()
    # What is kept per order is plain data: no OrderRequest, nothing the collector tracks.
    assert not any(isinstance(v, OrderRequest) for v in broker._requests.values())
    assert not any(gc.is_tracked(k) or gc.is_tracked(v) for k, v in broker._requests.items())
    del log[:]
    broker.cancel(7, "BBB", 3)  # finished: the reject names the order's symbol and side
    broker.modify(7, "BBB", 4, 1_000, 1)
    broker.cancel(7, "BBB", 99)  # never seen: no symbol, BUY (as before)
    rejects = [(e.kind, e.client_order_id, e.symbol, e.side, e.reason) for e in log]
    assert rejects == [
        (OrderEventKind.CANCEL_REJECTED, 3, "BBB", SELL, "UNKNOWN_ORDER"),
        (OrderEventKind.CANCEL_REJECTED, 4, "BBB", BUY, "UNKNOWN_ORDER"),
        (OrderEventKind.CANCEL_REJECTED, 99, "", BUY, "UNKNOWN_ORDER"),
    ]
    # A reused id is still a duplicate.
    broker.submit(OrderRequest(7, 5, "BBB", BUY, 1, 0, OrderType.MARKET))
    assert log[-1].kind is OrderEventKind.REJECTED and log[-1].reason == "DUPLICATE_ORDER_ID"
