"""``PaperBroker.book_moved(symbol, book, t)``, the backtester's book update without the event
object, is ``on_book(BookUpdate(symbol, t, t, id, book))`` followed by ``not idle()``: two brokers
driven with the same seeded random requests and market data, one through each entry, give the
same reports, counters, queue positions, remembered ``taken`` liquidity and idle answers after
every step (orders resting and in flight, market orders leaving only ``taken`` behind, two
symbols, a book object replaced, an order restored before its symbol's first book, an unknown
symbol)."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from tradecore.enums import OrderType, Side, TimeInForce
from tradecore.execution import (
    CancelModel,
    DictL2Book,
    LatencyModel,
    Order,
    OrderEvent,
    OrderManager,
    OrderRequest,
    OrderStatus,
    PaperBroker,
    PaperBrokerConfig,
)
from tradecore.instrument import Instrument
from tradecore.marketdata.events import BookUpdate, TradeTick

SYMS = ("AAA", "BBB")
INSTS = [Instrument(s, tick_size="0.01", lot_size="1") for s in SYMS]
BUY, SELL = Side.BUY, Side.SELL


def flatten(log: list[OrderEvent]) -> list[tuple[object, ...]]:
    fields = ("kind", "account", "client_order_id", "symbol", "side", "price", "qty", "leaves")
    more = ("ts_ns", "event_id", "reason", "liquidity", "fee")
    return [tuple(getattr(e, f) for f in fields + more) for e in log]


def state(b: PaperBroker, keys: list[tuple[int, int]]) -> tuple[object, ...]:
    """Everything a market event can change: queues, taken liquidity, clock, counters."""
    taken = tuple((s, dict(b._syms[s].taken_bids), dict(b._syms[s].taken_asks)) for s in SYMS)
    queues = tuple(b.queue_position(a, c) for a, c in keys)
    return taken, queues, b._now, b.stats, b.resting_count(), b.in_flight_count()


def restored_order(coid: int) -> Order:
    req = OrderRequest(1, coid, "BBB", BUY, 6, 995, OrderType.LIMIT, TimeInForce.GTC)
    return Order(req, OrderStatus.ACKNOWLEDGED, 995, 6, 0, 6, 0, 0, "", 0, 0)


def run(seed: int, latency: LatencyModel, steps: int = 2_500) -> tuple[int, int, int, int]:
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

    ref = PaperBroker(INSTS, lambda: now[0], cfg, sink=ref_sink)
    fast = PaperBroker(INSTS, lambda: now[0], cfg, sink=fast_log.append)
    books = {s: DictL2Book() for s in SYMS}
    mids = {s: 1_000 for s in SYMS}
    for s in SYMS:
        for i in range(1, 5):
            books[s].set(BUY, 1_000 - i, rng.randint(1, 20))
            books[s].set(SELL, 1_000 + i, rng.randint(1, 20))
    # AAA is attached up front; BBB only by its first book update, with a restored order
    # waiting for it.
    for b in (ref, fast):
        b.attach_book("AAA", books["AAA"])
        b.restore(restored_order(10_000))
    om.restore(restored_order(10_000))
    keys: list[tuple[int, int]] = [(1, 10_000)]
    busy_steps = idle_steps = updates = only_taken = 0
    for _ in range(steps):
        now[0] += rng.randint(1, 150)
        sym = rng.choice(SYMS)
        book = books[sym]
        r = rng.random()
        if r < 0.5:
            for b in (ref, fast):
                b.advance_to(now[0])
            if rng.random() < 0.02:
                # A new book object for the symbol (a resync in the node): both rebind.
                fresh = DictL2Book()
                for p, q in book.depth(50)[0]:
                    fresh.set(BUY, p, q)
                for p, q in book.depth(50)[1]:
                    fresh.set(SELL, p, q)
                book = books[sym] = fresh
            mid = mids[sym] = mids[sym] + rng.choice((-2, -1, 0, 1, 2))
            # A window of 5 levels a side around the mid: what leaves it is gone (so the
            # liquidity we took is forgotten in time and the broker can go idle).
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
            target = sym if rng.random() > 0.01 else "NOPE"  # an unknown symbol now and then
            st = fast._syms.get(target)
            if st is not None and not (st.bids or st.asks or fast._heap or fast._restoring):
                only_taken += bool(st.taken_bids or st.taken_asks)
            ref.on_book(BookUpdate(target, now[0], now[0], rng.randint(0, 9), book))
            ref_busy = not ref.idle()
            fast_busy = fast.book_moved(target, book, now[0])
            assert fast_busy is ref_busy
            busy_steps += ref_busy
            idle_steps += not ref_busy
            updates += 1
        elif r < 0.8:
            aggressor = rng.choice((BUY, SELL))
            best = book.best_ask() if aggressor is BUY else book.best_bid()
            price = best[0] if best else mids[sym]
            tick = TradeTick(sym, now[0], now[0], price, rng.randint(1, 15), aggressor, 0)
            ref.on_trade(tick)
            fast.on_trade(tick)
        elif r < 0.92:
            side = rng.choice((BUY, SELL))
            # Many market orders: they leave only ``taken`` behind (book_moved's own branch).
            otype = OrderType.MARKET if rng.random() < 0.5 else OrderType.LIMIT
            price = 0 if otype is OrderType.MARKET else mids[sym] + rng.randint(-3, 3)
            tif = rng.choice((TimeInForce.GTC, TimeInForce.IOC))
            coid = om.next_client_order_id(1)
            req = OrderRequest(1, coid, sym, side, rng.randint(1, 8), price, otype, tif)
            om.register(req, now[0])
            keys.append((1, coid))
            ref.submit(req)
            fast.submit(req)
        else:
            live = [o for o in om.open_orders(1) if not o.pending_cancel]
            # One open order (cancelled or modified), or half the time all of them cancelled,
            # so that the broker goes idle again and again.
            if rng.random() < 0.5:
                for o in live:
                    om.cancel_requested(1, o.client_order_id, now[0])
                    for b in (ref, fast):
                        b.cancel(1, o.symbol, o.client_order_id)
                live = []
            for o in live[:1]:
                if rng.random() < 0.5:
                    om.cancel_requested(1, o.client_order_id, now[0])
                    for b in (ref, fast):
                        b.cancel(1, o.symbol, o.client_order_id)
                else:
                    p = o.price + rng.choice((-1, 0, 1))
                    q = rng.randint(1, 6)
                    om.replace_requested(1, o.client_order_id, now[0])
                    for b in (ref, fast):
                        b.modify(1, o.symbol, o.client_order_id, p, q)
        assert flatten(fast_log) == flatten(ref_log)
        assert state(fast, keys) == state(ref, keys)
    return busy_steps, idle_steps, updates, only_taken


@pytest.mark.parametrize(
    ("seed", "latency"),
    [
        (1, LatencyModel()),
        (2, LatencyModel()),
        (3, LatencyModel(entry_ns=200, cancel_ns=100, jitter_ns=150)),
        (4, LatencyModel(entry_ns=200, cancel_ns=100, jitter_ns=150)),
    ],
)
def test_book_moved_is_on_book_then_not_idle(seed: int, latency: LatencyModel) -> None:
    busy, idle, updates, only_taken = run(seed, latency)
    # The stream visited both answers many times, and the state where nothing of ours rests
    # or flies in the symbol but taken liquidity is remembered (book_moved's own branch).
    assert busy > 200 and idle > 100 and busy + idle == updates and only_taken > 100


def test_book_moved_binds_a_restored_orders_first_book() -> None:
    fast = PaperBroker(INSTS, lambda: 5, PaperBrokerConfig(), sink=lambda e: None)
    fast.restore(restored_order(3))
    assert fast.resting_count() == 0
    book = DictL2Book({995: 4}, {1_001: 2})
    assert fast.book_moved("BBB", book, 5) is True
    assert fast.queue_position(1, 3) == (4, 6)  # behind the 4 lots shown at 995
