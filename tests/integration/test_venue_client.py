"""The venue client against a real venue: ``tradecore serve`` as a subprocess on 127.0.0.1,
with its journal in a temp dir.

Proves: logon (and a typed rejection for a bad key); two accounts trading with each other,
with the reports of both sessions in sequence order without gaps, MAKER and TAKER fills that
match, and order views that agree with each other; isolation (an account cannot cancel or
modify another account's order, whatever id it sends, and the owner's order is untouched);
the venue's own rejects; mass cancel; cancel on disconnect and a resumed report stream; the
asyncio client. The helpers here (config writer, venue process, trading scenario, book from
the order views) are also used by ``test_venue_feed.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import time
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tradecore.enums import EventKind, OrderType, Reason, Side, TimeInForce
from tradecore.venue.client import (
    AsyncClient,
    Client,
    LogonRejected,
    OrderStatus,
)
from tradecore.venue.codec import ExecutionReport, Liquidity
from tradecore.venue.server import ServeProcess

WAIT = 30.0
"""Generous wait for anything that should happen (only reached when a test fails)."""

KEYS = {1: "itest-key-account-1", 2: "itest-key-account-2", 3: "itest-key-observer-3"}
BAND = (1_000, 1_000_000)  # price band of both instruments, ticks


def write_config(
    directory: Path,
    *,
    feed_mode: str = "unicast",
    feed_address: str = "127.0.0.1:9",
    feed_heartbeat_ms: int = 50,
    cancel_on_disconnect: bool = True,
    heartbeat_ms: int = 1000,
    idle_timeout_ms: int = 60000,
) -> Path:
    """A venue config in ``directory`` (journal under it, ports 0) with two instruments and
    three accounts (keys in ``KEYS``)."""
    accounts = "".join(
        f"[[account]]\naccount = {a}\n"
        f'api_key_sha256 = "{hashlib.sha256(k.encode()).hexdigest()}"\n\n'
        for a, k in KEYS.items()
    )
    text = f"""
[listen]
order_entry = "127.0.0.1:0"
metrics = "127.0.0.1:0"

[session]
rate_limit_per_sec = 1000000
rate_limit_burst = 100000
heartbeat_ms = {heartbeat_ms}
idle_timeout_ms = {idle_timeout_ms}
cancel_on_disconnect = {"true" if cancel_on_disconnect else "false"}

[journal]
dir = "{directory / "journal"}"
fsync = "none"
segment_size = 1048576

[feed]
mode = "{feed_mode}"
address = "{feed_address}"
interface = "127.0.0.1"
ttl = 0
market_data_channel = 1
heartbeat_ms = {feed_heartbeat_ms}

[[instrument]]
symbol_id = 1
symbol = "BTC-USD"
tick_size = "0.01"
lot_size = "0.0001"
price_band = {{ lo_ticks = {BAND[0]}, hi_ticks = {BAND[1]} }}
max_order_qty = 1000000
book_capacity = 10000

[[instrument]]
symbol_id = 2
symbol = "ETH-USD"
tick_size = "0.01"
lot_size = "0.001"
price_band = {{ lo_ticks = {BAND[0]}, hi_ticks = {BAND[1]} }}
max_order_qty = 1000000
book_capacity = 10000

{accounts}"""
    path = directory / "venue.toml"
    path.write_text(text)
    return path


class VenueProcess:
    """A ``tradecore serve`` subprocess (:class:`ServeProcess`) plus what the tests need:
    the order-entry address, logged-on clients, the server's log for failure messages."""

    def __init__(self, config: Path) -> None:
        self.log = config.parent / "serve.log"
        self.serve = ServeProcess(config, timeout=WAIT, log_file=self.log).start()
        self.host, self.port = self.serve.order_entry

    def client(self, account: int, **kw: Any) -> Client:
        """A logged-on client of ``account``."""
        kw.setdefault("timeout", WAIT)
        c = Client(self.host, self.port, **kw)
        c.logon(account, KEYS[account])
        return c

    def stop(self) -> dict[str, Any] | None:
        """SIGTERM and the ``stopped`` line (None if it was stopped already)."""
        proc = self.serve.proc
        if proc is None or proc.poll() is not None:
            return None
        return self.serve.stop(WAIT)

    def log_tail(self) -> str:
        return self.log.read_text()[-4000:] if self.log.exists() else ""


@contextlib.contextmanager
def venue(tmp_path: Path, **kw: Any) -> Iterator[VenueProcess]:
    """A venue with a fresh config in ``tmp_path``; checks that it stops cleanly."""
    v = VenueProcess(write_config(tmp_path, **kw))
    try:
        yield v
    finally:
        stopped = v.stop()
    assert stopped is not None and stopped["returncode"] == 0, (stopped, v.log_tail())
    assert stopped["event"] == "stopped" and stopped["state_hash"], stopped


def barrier(c: Client) -> None:
    """Waits until every report the venue owes ``c`` for commands processed so far has been
    delivered: a cancel of an id never used is rejected, and that reject comes after them."""
    coid = 2**63 + c.account
    c.cancel(coid, 1)
    r = c.wait_for(coid, EventKind.REJECTED)
    assert r.reason is Reason.UNKNOWN_ORDER


def book_from_orders(*clients: Client) -> dict[int, dict[str, dict[int, int]]]:
    """The venue's aggregated books as the accounts' order views tell them: the sum of leaves
    of every live order per (symbol, side, price). Each account must have exactly one client
    among ``clients``."""
    books: dict[int, dict[str, dict[int, int]]] = defaultdict(lambda: {"BUY": {}, "SELL": {}})
    for c in clients:
        for o in c.open_orders():
            assert o.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED), o
            side = books[o.symbol_id][o.side.value]
            side[o.price] = side.get(o.price, 0) + o.leaves
    return {s: b for s, b in books.items() if b["BUY"] or b["SELL"]}


def trade_randomly(a: Client, b: Client, n: int, seed: int) -> None:
    """``n`` commands from two accounts: passive limits around a mid, crossing limits and
    IOCs, cancels and modifies of their own live orders, a few market orders. Ends with a
    barrier on both sessions, so both order views are complete."""
    rnd = random.Random(seed)
    mid = {1: 50_000, 2: 3_000}
    for _ in range(n):
        c = rnd.choice([a, b])
        sym = rnd.choice([1, 2])
        live = [o for o in c.open_orders(sym) if o.status is not OrderStatus.PENDING_NEW]
        x = rnd.random()
        if x < 0.55 or not live:
            side = rnd.choice([Side.BUY, Side.SELL])
            sign = 1 if side is Side.BUY else -1
            cross = rnd.random() < 0.25
            price = mid[sym] + sign * (rnd.randint(0, 3) if cross else -rnd.randint(1, 8))
            tif = TimeInForce.IOC if cross and rnd.random() < 0.5 else TimeInForce.GTC
            c.new_order(sym, side, price, rnd.randint(1, 20), tif=tif)
        elif x < 0.75:
            c.cancel(rnd.choice(live).client_order_id)
        elif x < 0.95:
            o = rnd.choice(live)
            c.modify(o.client_order_id, o.price + rnd.randint(-2, 2), rnd.randint(1, 25))
        else:
            side = rnd.choice([Side.BUY, Side.SELL])
            c.new_order(sym, side, 0, rnd.randint(1, 5), order_type=OrderType.MARKET,
                        tif=TimeInForce.IOC)  # fmt: skip
    barrier(a)
    barrier(b)
    barrier(a)  # a's second barrier follows b's commands too


def all_reports(c: Client) -> list[ExecutionReport]:
    return c.drain_reports()


def assert_contiguous(reports: list[ExecutionReport], first: int) -> None:
    seqs = [r.seq for r in reports if r.seq != 0]
    assert seqs == list(range(first, first + len(seqs))), seqs[:50]


# ---- tests ----


def test_logon_and_bad_key(tmp_path: Path) -> None:
    with venue(tmp_path) as v:
        with v.client(1) as c:
            assert c.session_id > 0 and c.next_seq >= 1 and c.is_open
        with Client(v.host, v.port, timeout=WAIT) as c, pytest.raises(LogonRejected) as info:
            c.logon(1, "not-the-key")
        assert info.value.reason is Reason.NOT_LOGGED_IN
        with Client(v.host, v.port, timeout=WAIT) as c, pytest.raises(LogonRejected) as info:
            c.logon(99, KEYS[1])
        assert info.value.reason is Reason.NOT_LOGGED_IN


def test_two_accounts_trade_with_reports_in_order(tmp_path: Path) -> None:
    with venue(tmp_path) as v, v.client(1) as a, v.client(2) as b:
        first_a, first_b = a.next_seq, b.next_seq
        sell = a.new_order(1, Side.SELL, 50_010, 30)
        assert a.wait_for(sell, EventKind.ACCEPTED).leaves == 30
        buy = b.new_order(1, Side.BUY, 50_020, 50)
        acc = b.wait_for(buy, EventKind.ACCEPTED)
        taker = b.wait_for(buy, EventKind.FILL)
        maker = a.wait_for(sell, EventKind.FILL)
        assert (taker.liquidity, taker.price, taker.qty, taker.leaves) == (
            Liquidity.TAKER,
            50_010,
            30,
            20,
        )
        assert (maker.liquidity, maker.price, maker.qty, maker.leaves) == (
            Liquidity.MAKER,
            50_010,
            30,
            0,
        )
        assert maker.client_order_id == sell and taker.client_order_id == buy
        assert acc.order_id != maker.order_id  # the venue's ids, one per order
        so, bo = a.order(sell), b.order(buy)
        assert so is not None and so.status is OrderStatus.FILLED and so.filled == 30
        assert bo is not None and bo.status is OrderStatus.PARTIALLY_FILLED and bo.leaves == 20

        trade_randomly(a, b, 300, seed=11)
        ra, rb = all_reports(a), all_reports(b)
        assert_contiguous(ra, first_a)
        assert_contiguous(rb, first_b)
        assert a.stats.gaps == 0 and b.stats.gaps == 0
        # every match gives one TAKER and one MAKER report, same price and quantity
        fills = [r for r in ra + rb if r.kind is EventKind.FILL]
        taken = sorted((r.price, r.qty) for r in fills if r.liquidity is Liquidity.TAKER)
        made = sorted((r.price, r.qty) for r in fills if r.liquidity is Liquidity.MAKER)
        assert taken == made and len(taken) > 10
        # nothing crossed remains: the best bid is below the best ask on both symbols
        for sym, sides in book_from_orders(a, b).items():
            if sides["BUY"] and sides["SELL"]:
                assert max(sides["BUY"]) < min(sides["SELL"]), sym


def test_an_account_cannot_touch_another_accounts_order(tmp_path: Path) -> None:
    with venue(tmp_path) as v, v.client(1) as a, v.client(2) as b:
        coid = a.new_order(1, Side.BUY, 40_000, 10, client_order_id=777)
        a.wait_for(coid, EventKind.ACCEPTED)
        b.cancel(777, 1)
        assert b.wait_for(777, EventKind.REJECTED).reason is Reason.UNKNOWN_ORDER
        b.modify(777, 40_001, 5, symbol_id=1)
        assert b.wait_for(777, EventKind.REJECTED).reason is Reason.UNKNOWN_ORDER
        b.mass_cancel(0)
        barrier(b)
        barrier(a)
        # account 1 heard nothing about any of it, and its order is as it was
        assert [r.kind for r in all_reports(a)] == [EventKind.ACCEPTED, EventKind.REJECTED]
        o = a.order(777)
        assert o is not None and (o.status, o.leaves, o.price) == (OrderStatus.NEW, 10, 40_000)
        a.cancel(777)
        assert a.wait_for(777, EventKind.CANCELLED).reason is Reason.USER


def test_venue_rejects_and_mass_cancel(tmp_path: Path) -> None:
    with venue(tmp_path) as v, v.client(1) as a:
        checks = [
            (dict(symbol_id=9, price=50_000, qty=1), Reason.UNKNOWN_SYMBOL),
            (dict(symbol_id=1, price=BAND[1] + 1, qty=1), Reason.PRICE_OUT_OF_BAND),
            (dict(symbol_id=1, price=50_000, qty=1_000_001), Reason.QTY_TOO_LARGE),
            (dict(symbol_id=1, price=50_000, qty=0), Reason.INVALID_QTY),
        ]
        for kw, reason in checks:
            coid = a.new_order(side=Side.BUY, **kw)  # type: ignore[arg-type]
            r = a.wait_for(coid, EventKind.REJECTED)
            assert r.reason is reason, (kw, r)
            o = a.order(coid)
            assert o is not None and o.status is OrderStatus.REJECTED
        live = [a.new_order(s, Side.SELL, 60_000 + i, 1) for i, s in enumerate([1, 1, 2])]
        for coid in live:
            a.wait_for(coid, EventKind.ACCEPTED)
        a.mass_cancel(1)
        for coid in live[:2]:
            assert a.wait_for(coid, EventKind.CANCELLED).reason is Reason.MASS_CANCEL
        barrier(a)
        assert [o.client_order_id for o in a.open_orders()] == [live[2]]


def test_decimal_orders_with_instruments(tmp_path: Path) -> None:
    from tradecore import Instrument

    btc = Instrument("BTC-USD", tick_size="0.01", lot_size="0.0001")
    with venue(tmp_path) as v, v.client(1, instruments={1: btc}) as a:
        coid = a.new_order(1, "BUY", Decimal("500.25"), Decimal("0.0150"))
        r = a.wait_for(coid, EventKind.ACCEPTED)
        assert (r.price, r.qty) == (50_025, 150)
        assert (a.price(r), a.quantity(r)) == (Decimal("500.25"), Decimal("0.0150"))


def test_cancel_on_disconnect_and_resumed_stream(tmp_path: Path) -> None:
    with venue(tmp_path) as v, v.client(1) as watcher:
        # the watcher, another session of account 1, receives the account's whole stream
        a = v.client(1, first_client_order_id=100)
        first = a.next_seq
        coids = [a.new_order(1, Side.BUY, 45_000 + i, 2) for i in range(3)]
        for coid in coids:
            a.wait_for(coid, EventKind.ACCEPTED)
        last = a.drain_reports()[-1].seq
        a.close()  # the connection drops: the orders it entered are cancelled (DISCONNECT)
        for coid in coids:
            assert watcher.wait_for(coid, EventKind.CANCELLED).reason is Reason.DISCONNECT
        with Client(v.host, v.port, timeout=WAIT) as a2:
            a2.logon(1, KEYS[1], last_seq=last)
            got = [a2.next_report() for _ in range(3)]
            assert [r.seq for r in got] == [last + 1, last + 2, last + 3]
            assert {(r.client_order_id, r.kind, r.reason) for r in got} == {
                (c, EventKind.CANCELLED, Reason.DISCONNECT) for c in coids
            }
            assert a2.stats.gaps == 1 and a2.stats.recovered == 3 and last == first + 2


def test_async_client_trades_against_the_venue(tmp_path: Path) -> None:
    async def body(host: str, port: int) -> None:
        a = await AsyncClient.connect(host, port, timeout=WAIT)
        b = await AsyncClient.connect(host, port, timeout=WAIT)
        async with a, b:
            await a.logon(1, KEYS[1])
            await b.logon(2, KEYS[2])
            s = await a.new_order(2, Side.SELL, 3_000, 5)
            await a.wait_for(s, EventKind.ACCEPTED)
            t = await b.new_order(2, Side.BUY, 3_000, 5, tif=TimeInForce.IOC)
            fill = await b.wait_for(t, EventKind.FILL)
            assert (fill.liquidity, fill.qty, fill.leaves) == (Liquidity.TAKER, 5, 0)
            made = await a.wait_for(s, EventKind.FILL)
            assert made.liquidity is Liquidity.MAKER
            o = a.order(s)
            assert o is not None and o.status is OrderStatus.FILLED

    with venue(tmp_path) as v:
        asyncio.run(body(v.host, v.port))


def test_heartbeats_keep_an_idle_session_open(tmp_path: Path) -> None:
    # the venue closes a connection silent for 3 s, and so does the client (30 intervals of
    # 100 ms): both stay open through 3.5 idle seconds only because both sides send heartbeats
    with (
        venue(tmp_path, heartbeat_ms=100, idle_timeout_ms=3000) as v,
        v.client(1, idle_intervals=30) as a,
    ):
        assert a.protocol.heartbeat_ms == 100
        time.sleep(3.5)
        assert a.is_open
        assert a.stats.heartbeats_sent >= 5 and a.stats.heartbeats_received >= 5
        coid = a.new_order(1, Side.BUY, 40_000, 1)
        assert a.wait_for(coid, EventKind.ACCEPTED).leaves == 1
