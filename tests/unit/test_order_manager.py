"""Order manager: the state machine, duplicates, out-of-order and illegal reports, listeners,
queries, and the whole loop with the paper broker."""

from __future__ import annotations

import logging
import random
from decimal import Decimal

import pytest
from tradecore.enums import Side
from tradecore.errors import UsageError
from tradecore.execution import (
    DictL2Book,
    DuplicateOrderError,
    Fill,
    Liquidity,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderManager,
    OrderRequest,
    OrderStatus,
    PaperBroker,
    Portfolio,
    UnknownOrderError,
)
from tradecore.instrument import Instrument
from tradecore.marketdata.events import TradeTick

K = OrderEventKind
S = OrderStatus
SYM = "BTCUSDT"


class Reports:
    """Builds reports for one order with increasing event ids."""

    def __init__(self, account: int = 1, coid: int = 1, qty: int = 10, price: int = 100) -> None:
        self.account, self.coid, self.qty, self.price = account, coid, qty, price
        self.next_id = 0

    def make(
        self,
        kind: OrderEventKind,
        qty: int = 0,
        leaves: int = 0,
        price: int | None = None,
        reason: str = "",
        event_id: int | None = None,
    ) -> OrderEvent:
        if event_id is None:
            self.next_id += 1
            event_id = self.next_id
        return OrderEvent(
            kind=kind,
            account=self.account,
            client_order_id=self.coid,
            symbol=SYM,
            side=Side.BUY,
            price=self.price if price is None else price,
            qty=qty,
            leaves=leaves,
            ts_ns=1_000 + event_id,
            event_id=event_id,
            reason=reason,
            liquidity=Liquidity.MAKER if kind is K.FILL else None,
            fee=Decimal("0.01") if kind is K.FILL else Decimal(0),
        )


def setup(qty: int = 10) -> tuple[OrderManager, Order, Reports, list[tuple[S, K]], list[Fill]]:
    om = OrderManager()
    statuses: list[tuple[S, K]] = []
    fills: list[Fill] = []
    om.add_order_listener(lambda o, e: statuses.append((o.status, e.kind)))
    om.add_fill_listener(lambda f, o: fills.append(f))
    coid = om.next_client_order_id(1)
    order = om.register(OrderRequest(1, coid, SYM, Side.BUY, qty, 100, strategy="s1"), 5)
    return om, order, Reports(coid=coid, qty=qty), statuses, fills


def test_happy_path_new_ack_partial_filled() -> None:
    om, order, r, statuses, fills = setup()
    assert order.status is S.NEW and order.leaves == 10
    om.on_event(r.make(K.ACCEPTED, 10, 10))
    om.on_event(r.make(K.FILL, 4, 6))
    assert (order.status, order.filled_qty, order.leaves) == (S.PARTIALLY_FILLED, 4, 6)
    om.on_event(r.make(K.FILL, 6, 0, price=99))
    assert (order.status, order.filled_qty, order.leaves) == (S.FILLED, 10, 0)
    assert order.notional_filled == 4 * 100 + 6 * 99
    assert statuses == [
        (S.ACKNOWLEDGED, K.ACCEPTED),
        (S.PARTIALLY_FILLED, K.FILL),
        (S.FILLED, K.FILL),
    ]
    assert [(f.qty, f.price, f.fill_id, f.strategy, f.fee) for f in fills] == [
        (4, 100, 2, "s1", Decimal("0.01")),
        (6, 99, 3, "s1", Decimal("0.01")),
    ]
    assert om.open_orders() == []
    assert om.stats.illegal_transitions == 0


def test_duplicate_reports_are_dropped_and_counted() -> None:
    om, order, r, statuses, fills = setup()
    ack = r.make(K.ACCEPTED, 10, 10)
    fill = r.make(K.FILL, 4, 6)
    for e in (ack, ack, fill, fill, fill):
        om.on_event(e)
    assert order.filled_qty == 4
    assert len(fills) == 1
    assert om.stats.duplicates == 3
    assert len(statuses) == 2


def test_fill_before_ack_then_late_ack_is_stale() -> None:
    om, order, r, _statuses, _fills = setup()
    ack = r.make(K.ACCEPTED, 10, 10)
    fill = r.make(K.FILL, 3, 7)
    assert om.on_event(fill) is order
    assert order.status is S.PARTIALLY_FILLED
    assert om.on_event(ack) is None  # arrived late: the order moved on
    assert order.status is S.PARTIALLY_FILLED
    assert om.stats.stale == 1
    assert om.stats.illegal_transitions == 0


def test_reject_from_new() -> None:
    om, order, r, _statuses, _ = setup()
    om.on_event(r.make(K.REJECTED, 10, 0, reason="INVALID_PRICE"))
    assert (order.status, order.reason, order.leaves) == (S.REJECTED, "INVALID_PRICE", 0)
    assert not order.is_open
    assert om.open_count(1) == 0


def test_cancel_and_expire_close_the_order() -> None:
    om, order, r, _, _ = setup()
    om.cancel_requested(1, order.client_order_id, 10)
    assert order.pending_cancel
    om.on_event(r.make(K.ACCEPTED, 10, 10))
    om.on_event(r.make(K.FILL, 2, 8))
    om.on_event(r.make(K.CANCELLED, 8, 0, reason="USER"))
    assert (order.status, order.leaves, order.pending_cancel) == (S.CANCELLED, 0, False)
    # A second cancel report (mass cancel crossing ours) is stale, not illegal.
    om.on_event(r.make(K.CANCELLED, 8, 0, reason="MASS_CANCEL"))
    assert om.stats.stale == 1
    om2, order2, r2, _, _ = setup()
    om2.on_event(r2.make(K.ACCEPTED, 10, 10))
    om2.on_event(r2.make(K.EXPIRED, 10, 0, reason="IOC_REMAINDER"))
    assert order2.status is S.EXPIRED


def test_fill_after_cancel_is_applied_and_counted() -> None:
    om, order, r, _, fills = setup()
    om.on_event(r.make(K.ACCEPTED, 10, 10))
    om.on_event(r.make(K.CANCELLED, 10, 0))
    om.on_event(r.make(K.FILL, 5, 0))
    assert order.status is S.CANCELLED  # stays terminal
    assert order.filled_qty == 5  # but the fill is not lost
    assert len(fills) == 1
    assert om.stats.fills_after_terminal == 1


def test_illegal_transitions_are_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    om, order, r, statuses, _ = setup()
    om.on_event(r.make(K.REJECTED, 10, 0))
    caplog.set_level(logging.WARNING, logger="tradecore.execution.orders")
    om.on_event(r.make(K.ACCEPTED, 10, 10))  # after REJECTED
    om.on_event(r.make(K.REPLACED, 5, 5))  # replace of a rejected order
    assert order.status is S.REJECTED
    assert om.stats.illegal_transitions == 2
    om2, order2, r2, _, fills2 = setup()
    om2.on_event(r2.make(K.FILL, 0, 10))
    om2.on_event(r2.make(K.FILL, -3, 13))
    assert (order2.status, order2.filled_qty, fills2) == (S.NEW, 0, [])
    assert om2.stats.illegal_transitions == 2
    assert "illegal transition" in caplog.text
    assert len(statuses) == 1


def test_overfill_is_counted() -> None:
    om, order, r, _, _ = setup(qty=5)
    om.on_event(r.make(K.FILL, 4, 1))
    om.on_event(r.make(K.FILL, 4, 0))
    assert order.status is S.FILLED
    assert order.filled_qty == 8 and order.leaves == 0
    assert om.stats.overfills == 1


def test_replace_changes_price_and_quantity() -> None:
    om, order, r, _statuses, _ = setup()
    om.on_event(r.make(K.ACCEPTED, 10, 10))
    om.on_event(r.make(K.FILL, 3, 7))
    om.replace_requested(1, order.client_order_id, 7)
    assert order.pending_replace
    om.on_event(r.make(K.REPLACED, 4, 4, price=101))
    assert (order.price, order.leaves, order.qty, order.filled_qty) == (101, 4, 7, 3)
    assert order.status is S.PARTIALLY_FILLED and not order.pending_replace
    om.on_event(r.make(K.FILL, 4, 0, price=101))
    assert order.status is S.FILLED


def test_cancel_rejects_leave_the_order_as_it_was() -> None:
    om, order, r, _statuses, _ = setup()
    om.on_event(r.make(K.ACCEPTED, 10, 10))
    om.cancel_requested(1, order.client_order_id, 7)
    om.on_event(r.make(K.CANCEL_REJECTED, reason="UNKNOWN_ORDER"))
    assert order.status is S.ACKNOWLEDGED and not order.pending_cancel
    # The venue answers a refused cancel with REJECTED for the live order: same handling.
    om.cancel_requested(1, order.client_order_id, 8)
    om.on_event(r.make(K.REJECTED, reason="UNKNOWN_ORDER"))
    assert order.status is S.ACKNOWLEDGED and not order.pending_cancel
    assert om.stats.cancel_rejects == 2


def test_unknown_orders_and_bad_requests() -> None:
    om = OrderManager()
    assert om.on_event(Reports(coid=99).make(K.FILL, 1, 0)) is None
    assert om.stats.unknown_orders == 1
    om.register(OrderRequest(1, 1, SYM, Side.BUY, 1, 100), 0)
    with pytest.raises(DuplicateOrderError, match="client order id 1 is already used"):
        om.register(OrderRequest(1, 1, SYM, Side.BUY, 1, 100), 0)
    om.register(OrderRequest(2, 1, SYM, Side.BUY, 1, 100), 0)  # other account: fine
    with pytest.raises(UnknownOrderError, match=r"account 1 has no order .* 5"):
        om.cancel_requested(1, 5, 0)


def test_client_order_ids_per_account_skip_used_ones() -> None:
    om = OrderManager()
    assert [om.next_client_order_id(1) for _ in range(3)] == [1, 2, 3]
    assert om.next_client_order_id(2) == 1
    om.register(OrderRequest(1, 10, SYM, Side.BUY, 1, 100), 0)
    assert om.next_client_order_id(1) == 11


def test_open_order_queries() -> None:
    om = OrderManager()
    for account, coid, sym in [(1, 1, "A"), (1, 2, "B"), (2, 1, "A"), (1, 3, "A")]:
        om.register(OrderRequest(account, coid, sym, Side.BUY, 1, 100), 0)
    assert [o.client_order_id for o in om.open_orders(1, "A")] == [1, 3]
    assert om.open_count(1) == 3 and om.open_count(1, "B") == 1 and om.open_count(3) == 0
    assert len(om.open_orders()) == 4
    om.on_event(OrderEvent(K.REJECTED, 1, 1, "A", Side.BUY, 100, 1, 0, 5, 1, reason="INVALID_QTY"))
    assert [o.client_order_id for o in om.open_orders(1)] == [2, 3]
    assert len(om.orders(1)) == 3


def test_a_failing_listener_does_not_break_the_others() -> None:
    om, order, r, statuses, _ = setup()

    def boom(o: Order, e: OrderEvent) -> None:
        raise RuntimeError("strategy bug")

    om._order_listeners.insert(0, boom)
    om.on_event(r.make(K.ACCEPTED, 10, 10))
    assert order.status is S.ACKNOWLEDGED
    assert statuses == [(S.ACKNOWLEDGED, K.ACCEPTED)]
    assert om.stats.listener_errors == 1


def test_restore_reloaded_open_order() -> None:
    om = OrderManager()
    req = OrderRequest(1, 7, SYM, Side.SELL, 5, 120)
    prior = OrderEvent(K.ACCEPTED, 1, 7, SYM, Side.SELL, 120, 5, 5, 1, 11)
    om.restore(Order(req, status=S.ACKNOWLEDGED, price=120, qty=5, leaves=5, events=[prior]))
    assert om.open_count(1) == 1
    assert om.next_client_order_id(1) == 8
    om.on_event(prior)
    assert om.stats.duplicates == 1


def test_full_loop_with_paper_broker_and_portfolio() -> None:
    """Strategy-side calls -> order manager -> paper broker -> order manager -> portfolio."""
    inst = Instrument(SYM, tick_size="0.01", lot_size="0.001")
    clock_t = [0]
    om = OrderManager()
    pf = Portfolio([inst], initial_cash=Decimal(1000))
    om.add_fill_listener(pf.on_fill)
    broker = PaperBroker([inst], lambda: clock_t[0], sink=om.on_event)
    book = DictL2Book({100: 5}, {101: 4, 102: 4})
    broker.attach_book(SYM, book)

    def send(side: Side, qty: int, price: int) -> Order:
        req = OrderRequest(1, om.next_client_order_id(1), SYM, side, qty, price)
        order = om.register(req, clock_t[0])
        broker.submit(req)
        return order

    buy = send(Side.BUY, 6, 102)  # 4 @ 101, 2 @ 102
    assert buy.status is S.FILLED and buy.notional_filled == 4 * 101 + 2 * 102
    rest = send(Side.SELL, 6, 103)
    assert rest.status is S.ACKNOWLEDGED
    broker.cancel(1, SYM, rest.client_order_id)
    assert rest.status is S.CANCELLED
    ask = send(Side.SELL, 3, 104)
    broker.on_trade(TradeTick(SYM, 1, 1, 104, 5, Side.BUY, 1))
    assert ask.status is S.FILLED
    pos = pf.position(1, SYM)
    assert pos.qty == 3
    # Cash: 1000 - (608 ticks*lots) * 0.00001 + (3 * 104) * 0.00001 = 1000 - 0.00608 + 0.00312
    assert pf.cash(1) == Decimal("999.99704")
    assert om.stats.illegal_transitions == 0 and om.stats.duplicates == 0


# --- retiring finished orders ----------------------------------------------------------------


def _vals(o: Order) -> tuple[object, ...]:
    """Everything an order says except its report history (a rebuilt order has none)."""
    return (
        o.request,
        o.status,
        o.price,
        o.qty,
        o.filled_qty,
        o.leaves,
        o.notional_filled,
        o.venue_order_id,
        o.reason,
        o.created_ns,
        o.updated_ns,
        o.pending_cancel,
        o.pending_replace,
    )


def test_retire_forgets_finished_orders_and_keeps_a_tombstone() -> None:
    om, order, r, statuses, fills = setup()
    assert not om.retire(1, order.client_order_id)  # open: refused
    om.on_event(r.make(K.ACCEPTED, 10, 10))
    om.on_event(r.make(K.FILL, 10, 0))
    assert order.status is S.FILLED
    before = _vals(order)
    assert om.retire(1, order.client_order_id)
    assert not om.retire(1, order.client_order_id)  # already retired
    assert om.get(1, order.client_order_id) is None
    assert om.orders() == [] and om.is_retired(1, order.client_order_id)
    rebuilt = om.lookup(1, order.client_order_id)
    assert rebuilt is not None and rebuilt is not order
    assert _vals(rebuilt) == before and rebuilt.events == []
    assert om.stats.retired == 1 and om.retired_count == 1
    # The id stays used: registering it again is refused, the next id skips it.
    with pytest.raises(DuplicateOrderError):
        om.register(OrderRequest(1, order.client_order_id, SYM, Side.BUY, 1, 100), 9)
    assert om.next_client_order_id(1) == order.client_order_id + 1
    # Reports for it: a duplicate is dropped, a late ack is stale, it stays retired.
    assert om.on_event(r.make(K.FILL, 10, 0, event_id=2)) is None
    assert om.stats.duplicates == 1
    assert om.on_event(r.make(K.ACCEPTED, 10, 10)) is None
    assert om.stats.stale == 1 and om.is_retired(1, order.client_order_id)
    assert om.stats.retired == 1 and len(fills) == 1 and len(statuses) == 2


def test_a_late_fill_revives_a_retired_order() -> None:
    om, order, r, statuses, fills = setup()
    om.on_event(r.make(K.ACCEPTED, 10, 10))
    om.on_event(r.make(K.FILL, 4, 6))
    om.on_event(r.make(K.CANCELLED, 6, 0))
    assert om.retire(1, order.client_order_id)
    revived = om.on_event(r.make(K.FILL, 3, 0))  # money moved: never dropped
    assert revived is not None and revived is om.get(1, order.client_order_id)
    assert (revived.status, revived.filled_qty, revived.leaves) == (S.CANCELLED, 7, 0)
    assert [f.qty for f in fills] == [4, 3] and fills[-1].strategy == "s1"
    assert om.stats.fills_after_terminal == 1 and om.stats.revived == 1
    assert statuses[-1] == (S.CANCELLED, K.FILL)
    assert om.retire(1, order.client_order_id)  # and it can be retired again


def test_tombstones_are_bounded() -> None:
    om = OrderManager(retired_limit=2)
    for coid in (1, 2, 3):
        om.register(OrderRequest(1, coid, SYM, Side.SELL, 1, 100), coid)
        om.on_event(Reports(coid=coid, qty=1).make(K.REJECTED, 1, 0, reason="X"))
        assert om.retire(1, coid)
    assert om.retired_count == 2 and not om.is_retired(1, 1) and om.is_retired(1, 3)
    # A report for an order retired longer ago than the limit is an unknown order.
    assert om.on_event(Reports(coid=1, qty=1).make(K.FILL, 1, 0, event_id=9)) is None
    assert om.stats.unknown_orders == 1
    with pytest.raises(UsageError):
        OrderManager(retired_limit=-1)


@pytest.mark.parametrize("seed", range(25))
def test_retiring_changes_nothing_the_listeners_or_lookups_see(seed: int) -> None:
    """Reference: one order manager keeps every order, the other retires each finished order
    at random moments. On the same random reports (duplicates, late and illegal ones, fills
    after the end) both return the same, tell their listeners the same, count the same, and
    ``lookup`` gives the same values."""
    rng = random.Random(seed)
    keep, retire = OrderManager(), OrderManager()
    heard: dict[int, list[object]] = {0: [], 1: []}
    for i, om in enumerate((keep, retire)):
        om.add_fill_listener(lambda f, o, i=i: heard[i].append(("fill", f, _vals(o))))
        om.add_order_listener(lambda o, e, i=i: heard[i].append(("order", e, _vals(o))))
    sent: dict[int, list[OrderEvent]] = {}
    leaves: dict[int, int] = {}
    eid = 0
    for step in range(300):
        if step < 5 or rng.random() < 0.1:
            coid = len(sent) + 1
            qty = rng.randint(1, 8)
            req = OrderRequest(1, coid, SYM, rng.choice([Side.BUY, Side.SELL]), qty, 100)
            for om in (keep, retire):
                om.register(req, step)
            sent[coid] = []
            leaves[coid] = qty
            continue
        coid = rng.randint(1, len(sent))
        if sent[coid] and rng.random() < 0.15:
            ev = rng.choice(sent[coid])  # a duplicate
        else:
            eid += 1
            kind = rng.choice(list(K))
            q = rng.randint(1, 4)
            left = max(0, leaves[coid] - q) if kind is K.FILL else 0
            if kind is K.FILL:
                leaves[coid] = left
            ev = OrderEvent(
                kind, 1, coid, SYM, Side.BUY, 100 + rng.randint(-2, 2), q,
                rng.randint(1, 5) if kind is K.REPLACED else left, step, eid,
                "r" if kind in (K.REJECTED, K.CANCELLED) else "",
                Liquidity.TAKER if kind is K.FILL else None,
            )  # fmt: skip
            sent[coid].append(ev)
        got = [om.on_event(ev) for om in (keep, retire)]
        assert [None if o is None else _vals(o) for o in got] == [
            None if o is None else _vals(o) for o in got[:1] * 2
        ], step
        for o in retire.orders():
            if not o.is_open and rng.random() < 0.5:
                assert retire.retire(1, o.client_order_id)
    assert heard[0] == heard[1]
    a, b = keep.stats, retire.stats
    for name in ("events", "fills", "duplicates", "stale", "illegal_transitions", "overfills"):
        assert getattr(a, name) == getattr(b, name), name
    assert a.fills_after_terminal == b.fills_after_terminal and a.unknown_orders == 0
    for coid in sent:
        kept, rebuilt = keep.get(1, coid), retire.lookup(1, coid)
        assert kept is not None and rebuilt is not None and _vals(kept) == _vals(rebuilt)
    assert b.retired > 0
