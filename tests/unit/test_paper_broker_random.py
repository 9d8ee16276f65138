"""Paper broker on seeded random streams: determinism for a seed, and invariants that must hold
whatever happens (checked through the order manager, which counts every illegal report)."""

from __future__ import annotations

import random
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
    Portfolio,
)
from tradecore.instrument import Instrument
from tradecore.marketdata.events import BookUpdate, TradeTick

SYM = "BTCUSDT"
INST = Instrument(SYM, tick_size="0.01", lot_size="0.001")


def run(
    stream_seed: int, broker_seed: int, model: CancelModel, steps: int = 1_500
) -> tuple[list[tuple[object, ...]], OrderManager, PaperBroker, Portfolio]:
    rng = random.Random(stream_seed)
    now = [0]
    om = OrderManager()
    pf = Portfolio([INST], initial_cash=Decimal(1_000))
    om.add_fill_listener(pf.on_fill)
    log: list[OrderEvent] = []

    def sink(e: OrderEvent) -> None:
        log.append(e)
        om.on_event(e)

    broker = PaperBroker(
        [INST],
        lambda: now[0],
        PaperBrokerConfig(
            maker_fee_bps=Decimal("-0.5"),
            taker_fee_bps=Decimal("4"),
            latency=LatencyModel(entry_ns=300, cancel_ns=200, jitter_ns=250),
            cancel_model=model,
            seed=broker_seed,
        ),
        sink=sink,
    )
    book = DictL2Book()
    mid = 1_000
    for i in range(1, 6):
        book.set(Side.BUY, mid - i, rng.randint(1, 20))
        book.set(Side.SELL, mid + i, rng.randint(1, 20))
    broker.attach_book(SYM, book)
    accounts = (1, 2)
    for _ in range(steps):
        now[0] += rng.randint(1, 200)
        r = rng.random()
        if r < 0.35:
            broker.advance_to(now[0])
            # Move the mid a little and rewrite a few levels, keeping the book uncrossed.
            mid += rng.choice((-1, 0, 0, 1))
            for p in list(dict(book.depth(50)[0])):
                if p >= mid:
                    book.set(Side.BUY, p, 0)
            for p in list(dict(book.depth(50)[1])):
                if p <= mid:
                    book.set(Side.SELL, p, 0)
            for _ in range(3):
                off = rng.randint(1, 6)
                book.set(Side.BUY, mid - off, rng.randint(0, 25))
                book.set(Side.SELL, mid + off, rng.randint(0, 25))
            broker.on_book(BookUpdate(SYM, now[0], now[0], 0, book))
        elif r < 0.55:
            aggressor = rng.choice((Side.BUY, Side.SELL))
            best = book.best_ask() if aggressor is Side.BUY else book.best_bid()
            price = best[0] if best else mid
            price += rng.choice((0, 0, 1, 2)) * (1 if aggressor is Side.BUY else -1)
            broker.on_trade(TradeTick(SYM, now[0], now[0], price, rng.randint(1, 15), aggressor, 0))
        elif r < 0.85:
            account = rng.choice(accounts)
            side = rng.choice((Side.BUY, Side.SELL))
            otype = OrderType.MARKET if rng.random() < 0.1 else OrderType.LIMIT
            price = 0 if otype is OrderType.MARKET else mid + rng.randint(-4, 4)
            req = OrderRequest(
                account,
                om.next_client_order_id(account),
                SYM,
                side,
                rng.randint(1, 12),
                price,
                otype,
                rng.choice((TimeInForce.GTC, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK)),
                post_only=rng.random() < 0.1,
            )
            om.register(req, now[0])
            broker.submit(req)
        else:
            account = rng.choice(accounts)
            live = om.open_orders(account)
            if rng.random() < 0.05:
                broker.cancel_all(account)
            elif live:
                o = rng.choice(live)
                if rng.random() < 0.5:
                    om.cancel_requested(account, o.client_order_id, now[0])
                    broker.cancel(account, SYM, o.client_order_id)
                else:
                    om.replace_requested(account, o.client_order_id, now[0])
                    broker.modify(
                        account, SYM, o.client_order_id, mid + rng.randint(-4, 4), rng.randint(1, 9)
                    )
    now[0] += 10_000
    broker.advance_to(now[0])
    flat = [
        (
            e.kind,
            e.account,
            e.client_order_id,
            e.price,
            e.qty,
            e.leaves,
            e.ts_ns,
            e.event_id,
            e.reason,
            e.liquidity,
            e.fee,
        )
        for e in log
    ]
    return flat, om, broker, pf


@pytest.mark.parametrize("model", list(CancelModel))
def test_same_seed_same_reports(model: CancelModel) -> None:
    a, _, _, pf_a = run(11, 3, model)
    b, _, _, pf_b = run(11, 3, model)
    assert a == b
    assert pf_a.snapshot() == pf_b.snapshot()
    c, _, _, _ = run(11, 4, model)  # another latency seed: other arrival times
    assert a != c
    kinds = {row[0] for row in a}
    # The stream really exercised the broker.
    assert {
        OrderEventKind.ACCEPTED,
        OrderEventKind.FILL,
        OrderEventKind.CANCELLED,
        OrderEventKind.REPLACED,
        OrderEventKind.EXPIRED,
        OrderEventKind.CANCEL_REJECTED,
    } <= kinds


@pytest.mark.parametrize("stream_seed", [1, 2, 3, 4])
@pytest.mark.parametrize("model", list(CancelModel))
def test_invariants_on_random_streams(stream_seed: int, model: CancelModel) -> None:
    flat, om, broker, pf = run(stream_seed, stream_seed, model)
    stats = om.stats
    # Every report the broker sent is legal for the order's state, exactly once.
    assert stats.illegal_transitions == 0
    assert stats.duplicates == 0
    assert stats.unknown_orders == 0
    assert stats.overfills == 0
    assert stats.fills_after_terminal == 0
    assert stats.stale == 0
    # Quantities add up per order; resting orders are exactly the open ones.
    for order in om.orders():
        assert order.filled_qty + order.leaves == order.qty or not order.is_open
        assert 0 <= order.filled_qty <= order.qty
        assert order.leaves >= 0
        fills = [e for e in order.events if e.kind is OrderEventKind.FILL]
        assert sum(e.qty for e in fills) == order.filled_qty
        for e in fills:
            if order.request.order_type is OrderType.LIMIT:
                # Never worse than the limit (the limit at the time of the fill: replaced
                # orders may have moved it, so compare with the widest one used).
                limits = [order.request.price] + [
                    x.price for x in order.events if x.kind is OrderEventKind.REPLACED
                ]
                if order.side is Side.BUY:
                    assert e.price <= max(limits)
                else:
                    assert e.price >= min(limits)
        queue = broker.queue_position(order.account, order.client_order_id)
        if order.is_open:
            assert queue is not None and queue[1] == order.leaves and queue[0] >= 0
        else:
            assert queue is None
    assert broker.in_flight_count() == 0
    for account in (1, 2):
        view = pf.account(account)
        assert abs(view.equity - view.realized_pnl - view.unrealized_pnl + view.fees - 1_000) < (
            Decimal("1e-25")
        )
        net = sum(
            (o.filled_qty if o.side is Side.BUY else -o.filled_qty) for o in om.orders(account)
        )
        assert pf.position_qty(account, SYM) == net
    assert len(flat) > 500
