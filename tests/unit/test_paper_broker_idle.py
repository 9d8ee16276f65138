"""``PaperBroker.idle()``: hand-worked states (in flight, resting, taken liquidity, restored
orders waiting for a book), and the property the backtester's fast path relies on: a broker that
is not shown market events while it is idle reports exactly what a broker shown every event
reports (seeded random streams)."""

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
    OrderEventKind,
    OrderManager,
    OrderRequest,
    OrderStatus,
    PaperBroker,
    PaperBrokerConfig,
)
from tradecore.instrument import Instrument
from tradecore.marketdata.events import BookUpdate, TradeTick

SYM = "BTCUSDT"
INST = Instrument(SYM, tick_size="0.01", lot_size="0.001")
K = OrderEventKind
BUY, SELL = Side.BUY, Side.SELL


class Clock:
    def __init__(self) -> None:
        self.t = 0

    def __call__(self) -> int:
        return self.t


def broker_with(
    latency: LatencyModel | None = None, book: DictL2Book | None = None
) -> tuple[PaperBroker, Clock, list[OrderEvent]]:
    clock = Clock()
    events: list[OrderEvent] = []
    cfg = PaperBrokerConfig(latency=latency or LatencyModel())
    broker = PaperBroker([INST], clock, cfg, sink=events.append)
    if book is not None:
        broker.attach_book(SYM, book)
    return broker, clock, events


def test_fresh_broker_is_idle_with_or_without_a_book() -> None:
    assert broker_with()[0].idle()
    assert broker_with(book=DictL2Book({99: 5}, {101: 5}))[0].idle()


def test_in_flight_then_resting_then_cancelled() -> None:
    book = DictL2Book({99: 5}, {101: 5})
    broker, clock, events = broker_with(LatencyModel(entry_ns=100, cancel_ns=50), book)
    broker.submit(OrderRequest(1, 1, SYM, BUY, 2, 99))
    # Sent, not arrived: in flight.
    assert broker.in_flight_count() == 1 and not broker.idle()
    clock.t = 100
    broker.advance_to(100)
    # Arrived and rests behind the 5 lots at 99.
    assert [e.kind for e in events] == [K.ACCEPTED]
    assert broker.resting_count() == 1 and broker.in_flight_count() == 0
    assert not broker.idle()
    broker.cancel(1, SYM, 1)
    assert not broker.idle()
    clock.t = 150
    broker.advance_to(150)
    assert [e.kind for e in events] == [K.ACCEPTED, K.CANCELLED]
    assert broker.idle()


def test_taken_liquidity_keeps_the_broker_busy_until_the_level_is_gone() -> None:
    book = DictL2Book({99: 5}, {101: 5, 102: 4})
    broker, _clock, events = broker_with(book=book)
    # Zero latency: an IOC buy of 2 at 101 takes 2 of the 5 displayed lots and is done.
    broker.submit(OrderRequest(1, 1, SYM, BUY, 2, 101, tif=TimeInForce.IOC))
    assert [(e.kind, e.qty, e.leaves) for e in events] == [(K.ACCEPTED, 2, 2), (K.FILL, 2, 0)]
    assert broker.resting_count() == 0 and broker.in_flight_count() == 0
    # The market data still shows 5 lots at 101; 2 of them are ours (taken): not idle, the
    # broker must see the next updates to forget them.
    assert not broker.idle()
    book.set(SELL, 101, 4)  # the level shrinks to 4: still 2 taken (capped at 4)
    broker.on_book(BookUpdate(SYM, 1, 1, 1, book))
    assert not broker.idle()
    # What is taken is really remembered: a second buy finds 4 - 2 = 2 lots at 101.
    broker.submit(OrderRequest(1, 2, SYM, BUY, 3, 101, tif=TimeInForce.IOC))
    assert [(e.kind, e.qty) for e in events[2:]] == [
        (K.ACCEPTED, 3),
        (K.FILL, 2),
        (K.EXPIRED, 1),
    ]
    book.set(SELL, 101, 0)  # the level disappears: what we took there is forgotten
    broker.on_book(BookUpdate(SYM, 2, 2, 2, book))
    assert broker.idle()


def test_restored_order_waiting_for_a_book_is_not_idle() -> None:
    broker, _clock, events = broker_with()
    req = OrderRequest(1, 7, SYM, BUY, 5, 100)
    prior = OrderEvent(K.ACCEPTED, 1, 7, SYM, BUY, 100, 5, 5, 1, 3)
    order = Order(req, OrderStatus.ACKNOWLEDGED, price=100, qty=5, leaves=5, events=[prior])
    broker.restore(order)
    assert broker.resting_count() == 0 and broker.in_flight_count() == 0
    assert not broker.idle()  # it waits for the symbol's first book
    book = DictL2Book({100: 3}, {102: 4})
    broker.attach_book(SYM, book)
    assert broker.queue_position(1, 7) == (3, 5)
    assert not broker.idle()
    # A sell of 8 at 100: 3 lots ahead of us, then our 5 (MAKER), all filled.
    broker.on_trade(TradeTick(SYM, 5, 5, 100, 8, SELL, 1))
    assert [(e.kind, e.qty, e.leaves) for e in events] == [(K.FILL, 5, 0)]
    assert broker.idle()


# ------------------------------------------------------------------ the fast path's property


def flatten(log: list[OrderEvent]) -> list[tuple[object, ...]]:
    fields = ("kind", "account", "client_order_id", "price", "qty", "leaves", "ts_ns")
    more = ("event_id", "reason", "liquidity", "fee")
    return [tuple(getattr(e, f) for f in fields + more) for e in log]


def run_pair(
    seed: int, model: CancelModel, steps: int = 3_000
) -> tuple[int, int, int, int, list[OrderEvent]]:
    """Drive two brokers with the same requests over one book: ``full`` sees every market
    event, ``lazy`` only those that arrive while it is not idle. Returns (events skipped,
    events shown, idle stretches, fills, the reports). Asserts identical reports after every
    step."""
    rng = random.Random(seed)
    now = [0]
    cfg = PaperBrokerConfig(
        maker_fee_bps=Decimal("-0.5"),
        taker_fee_bps=Decimal("4"),
        latency=LatencyModel(entry_ns=300, cancel_ns=200, jitter_ns=250),
        cancel_model=model,
        seed=seed,
    )
    om = OrderManager()
    full_log: list[OrderEvent] = []
    lazy_log: list[OrderEvent] = []

    def full_sink(e: OrderEvent) -> None:
        full_log.append(e)
        om.on_event(e)

    full = PaperBroker([INST], lambda: now[0], cfg, sink=full_sink)
    lazy = PaperBroker([INST], lambda: now[0], cfg, sink=lazy_log.append)
    book = DictL2Book()
    mid = 1_000
    for i in range(1, 5):
        book.set(BUY, mid - i, rng.randint(1, 20))
        book.set(SELL, mid + i, rng.randint(1, 20))
    full.attach_book(SYM, book)
    lazy.attach_book(SYM, book)
    skipped = shown = stretches = 0
    was_idle = False

    def market(update: BookUpdate | None, tick: TradeTick | None) -> None:
        nonlocal skipped, shown, stretches, was_idle
        # The driver's order: deliver what is due before the event, then apply it.
        for b in (full, lazy):
            b.advance_to(now[0])
        if update is not None:
            full.on_book(update)
        elif tick is not None:
            full.on_trade(tick)
        if lazy.idle():
            skipped += 1
            stretches += not was_idle
            was_idle = True
        else:
            was_idle = False
            shown += 1
            if update is not None:
                lazy.on_book(update)
            elif tick is not None:
                lazy.on_trade(tick)

    for _ in range(steps):
        now[0] += rng.randint(1, 200)
        r = rng.random()
        if r < 0.5:
            for b in (full, lazy):
                b.advance_to(now[0])
            mid += rng.choice((-1, 0, 0, 1))
            for p, _q in book.depth(50)[0]:
                if p >= mid:
                    book.set(BUY, p, 0)
            for p, _q in book.depth(50)[1]:
                if p <= mid:
                    book.set(SELL, p, 0)
            for _ in range(2):
                off = rng.randint(1, 4)
                book.set(BUY, mid - off, rng.randint(0, 25))
                book.set(SELL, mid + off, rng.randint(0, 25))
            market(BookUpdate(SYM, now[0], now[0], 0, book), None)
        elif r < 0.86:
            aggressor = rng.choice((BUY, SELL))
            best = book.best_ask() if aggressor is BUY else book.best_bid()
            price = (best[0] if best else mid) + rng.choice((0, 0, 1)) * (
                1 if aggressor is BUY else -1
            )
            market(None, TradeTick(SYM, now[0], now[0], price, rng.randint(1, 15), aggressor, 0))
        elif r < 0.9:
            # Orders now and then, so the broker goes idle and busy again many times.
            side = rng.choice((BUY, SELL))
            otype = OrderType.MARKET if rng.random() < 0.15 else OrderType.LIMIT
            price = 0 if otype is OrderType.MARKET else mid + rng.randint(-3, 3)
            tif = rng.choice((TimeInForce.GTC, TimeInForce.IOC))
            req = OrderRequest(
                1, om.next_client_order_id(1), SYM, side, rng.randint(1, 8), price, otype, tif
            )
            om.register(req, now[0])
            full.submit(req)
            lazy.submit(req)
        else:
            live = [o for o in om.open_orders(1) if not o.pending_cancel]
            # One of the open orders, or (half the time) all of them.
            for o in live if rng.random() < 0.5 else live[:1]:
                om.cancel_requested(1, o.client_order_id, now[0])
                full.cancel(1, SYM, o.client_order_id)
                lazy.cancel(1, SYM, o.client_order_id)
        assert flatten(lazy_log) == flatten(full_log)
    now[0] += 10_000
    for b in (full, lazy):
        b.advance_to(now[0])
    assert flatten(lazy_log) == flatten(full_log)
    fills = sum(1 for e in full_log if e.kind is K.FILL)
    return skipped, shown, stretches, fills, full_log


@pytest.mark.parametrize("seed", [1, 2, 3, 6])
def test_skipping_market_events_while_idle_changes_nothing(seed: int) -> None:
    skipped, shown, stretches, fills, log = run_pair(seed, CancelModel.PROPORTIONAL)
    # The stream really alternated: idle stretches, events skipped and shown, fills.
    assert skipped > 200 and shown > 1_000 and stretches > 10 and fills > 50
    kinds = {e.kind for e in log}
    assert {K.ACCEPTED, K.FILL, K.CANCELLED, K.EXPIRED} <= kinds
