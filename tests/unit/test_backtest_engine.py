"""The event-driven backtester (L2 mode): hand-worked queue scenario, latency and timers on the
simulated clock, determinism, chunking, consistency with the vectorized engine, bad input.

Real parts only: the node's strategies, risk engine, order manager, paper broker and portfolio,
Parquet files in temporary directories, the ``tradecore`` command in a subprocess.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tradecore.backtest import vector as V
from tradecore.backtest.config import load_backtest_config
from tradecore.backtest.costs import CostModel
from tradecore.backtest.engine import (
    BacktestEngine,
    BacktestError,
    EngineSettings,
    QuoteFeed,
    StrategyError,
    StrategySpec,
    TradeFeed,
    fills_digest,
    run_config,
)
from tradecore.data import DataFormatError, write_table
from tradecore.data.synthetic import synthetic_bars, synthetic_quotes
from tradecore.enums import Side, TimeInForce
from tradecore.execution import LatencyModel, PaperBrokerConfig
from tradecore.execution.types import Fill, Order
from tradecore.instrument import Instrument
from tradecore.marketdata.events import BookUpdate, Quote, TradeTick
from tradecore.strategy import Strategy

INST = Instrument("SYN", "0.01", "1")
REPO = Path(__file__).resolve().parents[2]


def quotes(rows: list[tuple[int, int, int, int, int]]) -> dict[str, Any]:
    """(ts, bid_px, bid_qty, ask_px, ask_qty) rows as a quotes chunk."""
    a = np.array(rows, np.int64)
    return {
        "ts_ns": a[:, 0],
        "event_ns": a[:, 0],
        "update_id": np.arange(1, len(a) + 1, dtype=np.int64),
        "bid_px": a[:, 1],
        "bid_qty": a[:, 2],
        "ask_px": a[:, 3],
        "ask_qty": a[:, 4],
    }


def trades(rows: list[tuple[int, int, int, int]]) -> dict[str, Any]:
    """(ts, price, qty, aggressor +1/-1) rows as a trades chunk."""
    a = np.array(rows, np.int64)
    return {
        "ts_ns": a[:, 0],
        "event_ns": a[:, 0],
        "trade_id": np.arange(1, len(a) + 1, dtype=np.int64),
        "price": a[:, 1],
        "qty": a[:, 2],
        "aggressor": a[:, 3].astype(np.int8),
    }


class PassiveBuyer(Strategy):
    """Buys ``qty`` at ``price`` (GTC) on its first book; records fills and callback times."""

    def __init__(self, name: str = "buyer", qty: int = 3, price: int = 100) -> None:
        super().__init__(name, ["SYN"])
        self.qty = qty
        self.price = price
        self.sent = False
        self.fills: list[Fill] = []
        self.seen: list[tuple[str, int]] = []

    def on_book(self, event: BookUpdate) -> None:
        self.seen.append(("book", self.ctx.now_ns()))
        if not self.sent:
            self.sent = True
            self.ctx.submit_limit("SYN", Side.BUY, self.qty, self.price)

    def on_trade(self, event: TradeTick) -> None:
        self.seen.append(("trade", self.ctx.now_ns()))

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)


def run_l2(
    tmp_path: Path,
    q: list[tuple[int, int, int, int, int]],
    t: list[tuple[int, int, int, int]],
    strategy: Strategy,
    broker: PaperBrokerConfig | None = None,
) -> Any:
    """Write the crafted recording as Parquet tables and backtest it (the files are re-read)."""
    from tradecore.data import open_columnar

    write_table(tmp_path / "q.parquet", "quotes", [quotes(q)], meta={"symbol": "SYN"})
    write_table(tmp_path / "t.parquet", "trades", [trades(t)], meta={"symbol": "SYN"})
    feeds = [
        QuoteFeed("q", "SYN", open_columnar(tmp_path / "q.parquet").iter_chunks(2)),
        TradeFeed("t", "SYN", open_columnar(tmp_path / "t.parquet").iter_chunks(2)),
    ]
    settings = EngineSettings(broker=broker or PaperBrokerConfig(), equity_interval_ns=0)
    spec = StrategySpec(strategy.name, account=1, initial_cash=Decimal(1000), instance=strategy)
    return BacktestEngine([INST], feeds, [spec], settings).run()


def test_l2_queue_scenario_worked_by_hand(tmp_path: Path) -> None:
    # t=10: book 100 x 5 / 101 x 5; we join the bid: 5 lots ahead of our 3.
    # t=20: sell 4 @ 100 -> ahead 1, no fill.     t=30: bid shrinks to 1 (explained by the trade).
    # t=40: sell 2 @ 100 -> 1 ahead consumed, 1 fills us (MAKER).
    # t=50: bid 100 x 7 (growth joins behind us).  t=60: sell 5 @ 100 -> our last 2 fill.
    s = PassiveBuyer()
    q = [(10, 100, 5, 101, 5), (30, 100, 1, 101, 5), (50, 100, 7, 101, 5)]
    t = [(20, 100, 4, -1), (40, 100, 2, -1), (60, 100, 5, -1)]
    res = run_l2(tmp_path, q, t, s, PaperBrokerConfig(maker_fee_bps=Decimal(10)))
    got = [(f.ts_ns, f.price, f.qty, f.liquidity.value) for f in s.fills]
    assert got == [(40, 100, 1, "MAKER"), (60, 100, 2, "MAKER")]
    # fee = price * qty * tick * lot * 10 bps: 100 * 1 * 0.01 * 0.001 = 0.001
    assert [f.fee for f in s.fills] == [Decimal("0.001"), Decimal("0.002")]
    table = res.tables["buyer"]
    assert table.orders["passive"].tolist() == [True]
    assert table.orders["first_fill_ns"].tolist() == [40]
    assert res.final["buyer"]["position"] == 3


def test_l2_latency_in_simulated_time(tmp_path: Path) -> None:
    # Entry latency 15 ns: sent at t=10, the order arrives at t=25, between the trade at t=20
    # (which it misses) and the one at t=40; it joins behind the 5 lots shown at arrival.
    s = PassiveBuyer(qty=2)
    q = [(10, 100, 5, 101, 5)]
    t = [(20, 100, 5, -1), (40, 100, 6, -1)]
    lat = PaperBrokerConfig(latency=LatencyModel(entry_ns=15))
    run_l2(tmp_path, q, t, s, lat)
    assert [(f.ts_ns, f.qty) for f in s.fills] == [(40, 1)]
    # The callbacks saw the event times, never a wall clock.
    assert s.seen == [("book", 10), ("trade", 20), ("trade", 40)]


class Timed(Strategy):
    """Sets a 25 ns timer and records when it fires."""

    def __init__(self) -> None:
        super().__init__("timed", ["SYN"])
        self.fired: list[tuple[int, int]] = []

    def on_start(self) -> None:
        self.ctx.set_timer("t", 25)

    def on_timer(self, name: str, now_ns: int) -> None:
        self.fired.append((now_ns, self.ctx.now_ns()))


def test_timers_fire_between_events_at_their_deadline(tmp_path: Path) -> None:
    s = Timed()
    q = [(10, 100, 5, 101, 5), (30, 100, 5, 101, 5), (100, 100, 5, 101, 5)]
    run_l2(tmp_path, q, [(31, 100, 1, -1)], s)
    # start at 10: deadlines 35, 60, 85 before the event at 100 (the gap fires each once).
    assert [f[0] for f in s.fired][:1] == [35]
    assert all(a == b for a, b in s.fired)  # ctx.now_ns() is the deadline inside on_timer


def _ma_config(tmp_path: Path, rows: int, extra: str = "") -> Path:
    cfg = tmp_path / "bt.toml"
    cfg.write_text(
        f"""
[backtest]
name = "t"
equity_interval_ms = 10
{extra}
[instrument]
symbol = "SYN"
[[data]]
kind = "synthetic_quotes"
rows = {rows}
seed = 3
[[strategy]]
name = "mac"
kind = "ma_cross"
account = 1
initial_cash = "100000"
params = {{ symbol = "SYN", fast = 20, slow = 100, order_qty = 2, max_position = 6 }}
[broker]
latency_us = 300
jitter_us = 200
taker_fee_bps = "1"
seed = 5
""",
        encoding="utf-8",
    )
    return cfg


def test_determinism_and_chunking(tmp_path: Path) -> None:
    loaded = load_backtest_config(_ma_config(tmp_path, 30_000))
    a = run_config(loaded)
    b = run_config(loaded)
    c = run_config(loaded, chunk_rows=997)  # the same run streamed in small chunks
    assert len(a.fills) > 20
    assert a.fills_hash == b.fills_hash == c.fills_hash
    assert a.orders_hash == b.orders_hash == c.orders_hash
    assert a.fills == c.fills
    # A different broker seed (jitter) changes the run: the hash is not a constant.
    loaded2 = load_backtest_config(_ma_config(tmp_path, 30_000).with_name("bt.toml"))
    raw = dict(loaded2.raw)
    raw["broker"] = {**raw["broker"], "seed": 6}
    from tradecore.backtest.config import parse_backtest_config

    d = run_config(parse_backtest_config(raw, loaded2.path))
    assert d.fills_hash != a.fills_hash


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("ma_cross", {"fast": 5, "slow": 30, "order_qty": 1, "max_position": 3}),
        ("mean_reversion", {"window": 40, "entry_z": 1.5, "exit_z": 0.3, "max_position": 2}),
    ],
)
def test_vectorized_and_event_engines_agree_with_idealized_fills(
    kind: str, params: dict[str, Any]
) -> None:
    n = 20_000
    bars = synthetic_bars(n, 5)
    costs = CostModel(INST.tick_size, INST.lot_size, taker_fee_bps=Decimal(2))
    vec = V.run(bars, kind, params, costs=costs)
    # The vectorized engine assumes every order fills in full at its limit; the paper broker
    # remembers the displayed lots we took. Deep quotes (sizes + 10,000) make both hold.
    deep = ({**c, "bid_qty": c["bid_qty"] + 10_000, "ask_qty": c["ask_qty"] + 10_000}
            for c in synthetic_quotes(n, 5, chunk_rows=4096))  # fmt: skip
    feed = QuoteFeed("q", "SYN", deep)
    settings = EngineSettings(
        broker=PaperBrokerConfig(taker_fee_bps=Decimal(2), optimistic_queue=True),
        equity_interval_ns=0,
    )
    spec = StrategySpec("s", kind, 1, Decimal(0), {"symbol": "SYN", **params})
    res = BacktestEngine([INST], [feed], [spec], settings).run()
    ev = res.tables["s"].fills
    vt = vec.trades
    assert len(vt) > 10
    assert ev["ts_ns"].tolist() == vt["ts_ns"].tolist()
    assert ev["side"].tolist() == vt["side"].tolist()
    assert ev["qty"].tolist() == vt["qty"].tolist()
    assert ev["price"].tolist() == vt["price"].tolist()
    assert ev["liquidity"].unique().tolist() == ["TAKER"]
    exact_fees = sum(Decimal(x) for x in ev["fee_exact"])
    assert exact_fees == vec.fees_exact
    pnl = float(res.final["s"]["pnl"])
    assert pnl == pytest.approx(float(vec.equity[-1]), rel=1e-9, abs=1e-9)
    # The equity curves agree bar by bar (the event engine samples after every event).
    eq = res.tables["s"].equity
    assert np.allclose(eq["equity"].to_numpy()[1:-1], vec.equity, atol=1e-9)


class Raiser(Strategy):
    def __init__(self) -> None:
        super().__init__("boom", ["SYN"])
        self.n = 0

    def on_book(self, event: BookUpdate) -> None:
        self.n += 1
        if self.n == 3:
            raise ZeroDivisionError("bad math")


def test_strategy_that_raises_stops_the_run_naming_strategy_and_event() -> None:
    feed = QuoteFeed("quotes.parquet", "SYN", [quotes([(i, 100, 5, 101, 5) for i in range(1, 9)])])
    spec = StrategySpec("boom", account=1, instance=Raiser())
    eng = BacktestEngine([INST], [feed], [spec])
    with pytest.raises(StrategyError) as info:
        eng.run()
    msg = str(info.value)
    assert "'boom'" in msg and "ZeroDivisionError: bad math" in msg and "on_book" in msg
    assert "BookUpdate SYN at ts 3" in msg and "quotes.parquet row 3" in msg


def test_continue_policy_counts_errors() -> None:
    feed = QuoteFeed("q", "SYN", [quotes([(i, 100, 5, 101, 5) for i in range(1, 9)])])
    spec = StrategySpec("boom", account=1, instance=Raiser())
    res = BacktestEngine([INST], [feed], [spec], EngineSettings(stop_on_strategy_error=False)).run()
    assert res.strategy_errors == 1 and res.events == 8


def test_unsorted_timestamps_name_the_feed_and_row() -> None:
    chunk = quotes([(10, 100, 5, 101, 5), (20, 100, 5, 101, 5), (15, 100, 5, 101, 5)])
    with pytest.raises(BacktestError, match=r"my-feed: row 3: timestamp 15 is before"):
        BacktestEngine([INST], [QuoteFeed("my-feed", "SYN", [chunk])], []).run()
    # Merged feeds too (the slow path).
    t = trades([(5, 100, 1, 1), (30, 100, 1, 1), (25, 100, 1, 1)])
    feeds = [QuoteFeed("q", "SYN", [quotes([(10, 100, 5, 101, 5)])]), TradeFeed("tr", "SYN", [t])]
    with pytest.raises(BacktestError, match=r"tr: row 3: timestamp 25"):
        BacktestEngine([INST], feeds, []).run()


def test_truncated_parquet_names_the_file(tmp_path: Path) -> None:
    p = tmp_path / "q.parquet"
    write_table(p, "quotes", [quotes([(i, 100, 5, 101, 5) for i in range(1, 100)])])
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    cfg = tmp_path / "bt.toml"
    cfg.write_text(
        '[instrument]\nsymbol = "SYN"\n[[data]]\nkind = "parquet"\npath = "q.parquet"\n',
        encoding="utf-8",
    )
    with pytest.raises(DataFormatError, match=r"q\.parquet.*truncated or corrupt"):
        run_config(load_backtest_config(cfg))


def test_cli_failure_writes_nothing_and_success_writes_everything(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        _ma_config(tmp_path, 100).read_text().replace('kind = "ma_cross"', 'kind = "nope"'),
        encoding="utf-8",
    )
    exe = [sys.executable, "-m", "tradecore", "backtest"]
    r = subprocess.run([*exe, "--config", str(bad)], capture_output=True, text=True, check=False)
    assert r.returncode == 2 and "strategy[0]" in r.stderr and "nope" in r.stderr
    good = _ma_config(tmp_path, 5_000)
    out = tmp_path / "out"
    r = subprocess.run(
        [*exe, "--config", str(good), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "fills hash: " in r.stdout
    names = {p.name for p in out.rglob("*") if p.is_file()}
    assert {"equity.parquet", "fills.parquet", "orders.parquet", "stats.parquet"} <= names
    assert {"report.html", "equity.png", "summary.json", "meta.json"} <= names
    assert not list(tmp_path.glob(".out.partial*"))


def test_l2_mode_ioc_walks_and_tif_semantics(tmp_path: Path) -> None:
    class Taker(Strategy):
        def __init__(self) -> None:
            super().__init__("taker", ["SYN"])
            self.orders: list[Any] = []

        def on_book(self, event: BookUpdate) -> None:
            if not self.orders:
                o = self.ctx.submit_limit("SYN", Side.BUY, 8, 101, tif=TimeInForce.IOC)
                self.orders.append(o)

    s = Taker()
    res = run_l2(tmp_path, [(10, 100, 5, 101, 5)], [(20, 100, 1, -1)], s)
    order = s.orders[0]
    assert order.filled_qty == 5 and order.status.value == "EXPIRED"
    assert res.tables["taker"].fills["liquidity"].tolist() == ["TAKER"]


# ---------------------------------------------------------------- fast path, equity, splitting


def _l2_engine(
    rows: int, *, always_busy: bool, mode: str = "taker", equity_ns: int = 1_000_000_000
) -> tuple[BacktestEngine, Any]:
    """A moving-average cross over synthetic quotes and trades (with latency and jitter). With
    ``always_busy`` the paper broker comes through ``broker_factory``, so the engine shows it
    every market event (no idle fast path); otherwise the engine skips it while it is idle."""
    from tradecore.backtest.engine import PairSplit
    from tradecore.data.synthetic import synthetic_l2
    from tradecore.execution import PaperBroker

    split = PairSplit(synthetic_l2(rows, 9, chunk_rows=4096))
    feeds = [QuoteFeed("q", "SYN", split.first()), TradeFeed("t", "SYN", split.second())]
    broker = PaperBrokerConfig(
        latency=LatencyModel(entry_ns=300_000, cancel_ns=200_000, jitter_ns=100_000),
        taker_fee_bps=Decimal(1),
        seed=4,
    )
    settings = EngineSettings(broker=broker, equity_interval_ns=equity_ns)
    params = {"symbol": "SYN", "fast": 50, "slow": 400, "order_qty": 2, "max_position": 4}
    params["mode"] = mode  # taker: IOCs that take liquidity; maker: post-only GTCs that rest
    spec = StrategySpec("mac", "ma_cross", 1, Decimal(10_000), params)

    def factory(eng: BacktestEngine) -> PaperBroker:
        return PaperBroker([INST], eng.clock, broker)

    eng = BacktestEngine(
        [INST], feeds, [spec], settings, broker_factory=factory if always_busy else None
    )
    return eng, eng.run()


@pytest.mark.parametrize("mode", ["taker", "maker"])
def test_idle_fast_path_gives_the_same_run_as_showing_every_event(mode: str) -> None:
    fast_eng, fast = _l2_engine(60_000, always_busy=False, mode=mode)
    slow_eng, slow = _l2_engine(60_000, always_busy=True, mode=mode)
    assert len(fast.fills) > 20
    assert fast.fills_hash == slow.fills_hash and fast.orders_hash == slow.orders_hash
    assert fast.final == slow.final
    # The fast path really skipped events: the broker saw far fewer market events.
    seen_fast = fast_eng.broker.stats.book_updates + fast_eng.broker.stats.trades
    seen_slow = slow_eng.broker.stats.book_updates + slow_eng.broker.stats.trades
    assert seen_slow == 60_000 and seen_fast < seen_slow // 2


def test_equity_is_sampled_on_its_interval_without_loss_limits() -> None:
    # 30,000 events ~1 ms apart: about 30 s of simulated time, one sample per second plus the
    # samples at start and end (no risk loss limits are configured).
    eng, res = _l2_engine(30_000, always_busy=False)
    eq = res.tables["mac"].equity
    ts = eq["ts_ns"].to_numpy()
    span_s = (ts[-1] - ts[0]) / 1e9
    assert 25 < span_s < 35
    assert abs(len(ts) - (span_s + 2)) <= 2
    inner = np.diff(ts[1:-1])
    assert (inner == 1_000_000_000).all()  # every whole second of simulated time
    assert res.final["mac"]["equity"] == eng.slots[0].equity_rows[-1][1]


def test_pair_split_yields_both_halves_in_order_and_holds_only_the_lead() -> None:
    from tradecore.backtest.engine import PairSplit

    pulled = []

    def pairs() -> Any:
        for i in range(10):
            pulled.append(i)
            yield (f"a{i}", f"b{i}")

    split = PairSplit(pairs())
    first, second = split.first(), split.second()
    # Alternating consumers: never more than one item held for the other side.
    for i in range(5):
        assert next(first) == f"a{i}"
        assert len(split._ahead[1]) == 1
        assert next(second) == f"b{i}"
        assert not split._ahead[0] and not split._ahead[1]
    assert pulled == [0, 1, 2, 3, 4]
    # One side running ahead buffers exactly what the other has not taken yet.
    assert list(first) == [f"a{i}" for i in range(5, 10)]
    assert len(split._ahead[1]) == 5
    assert list(second) == [f"b{i}" for i in range(5, 10)]
    assert list(first) == [] and list(second) == []


class QuoteTrader(Strategy):
    """Trades on quotes only (market orders, resting bids, cancels) and records every callback."""

    def __init__(self) -> None:
        super().__init__("qt", ["SYN"])
        self.n = 0
        self.fills: list[tuple[int, int, int, int]] = []
        self.orders: list[tuple[int, str, int]] = []
        self.timers: list[int] = []

    def on_start(self) -> None:
        self.ctx.set_timer("t", 20_000_000)

    def on_quote(self, event: Quote) -> None:
        self.n += 1
        ctx = self.ctx
        if self.n % 7 == 0:
            side = Side.BUY if (self.n // 7) % 2 else Side.SELL
            ctx.submit_market("SYN", side, 1 + self.n % 3)
        elif self.n % 11 == 0:
            ctx.submit_limit("SYN", Side.BUY, 2, event.bid_price)
        elif self.n % 13 == 0:
            for o in ctx.open_orders("SYN"):
                ctx.cancel(o.client_order_id)

    def on_fill(self, fill: Fill) -> None:
        self.fills.append((fill.ts_ns, fill.client_order_id, fill.qty, fill.price))

    def on_order(self, order: Order) -> None:
        self.orders.append((order.client_order_id, order.status.value, self.ctx.now_ns()))

    def on_timer(self, name: str, now_ns: int) -> None:
        self.timers.append(now_ns)


class QuoteCounter(Strategy):
    def __init__(self) -> None:
        super().__init__("counter", ["SYN"])
        self.n = 0

    def on_quote(self, event: Quote) -> None:
        self.n += 1


class SpyQuoteFeed(QuoteFeed):
    """A QuoteFeed that records whether the single-strategy loop ran."""

    one_quote_loop = False

    def _run_one_quote(self, eng: Any, slot: Any, on_quote: Any) -> None:
        self.one_quote_loop = True
        super()._run_one_quote(eng, slot, on_quote)


def _quote_run(
    *, listener: bool = False, always_busy: bool = False, rows: int = 12_000
) -> tuple[QuoteTrader, SpyQuoteFeed, Any]:
    from tradecore.execution import PaperBroker

    broker = PaperBrokerConfig(
        latency=LatencyModel(entry_ns=3_000_000, cancel_ns=2_000_000, jitter_ns=1_000_000),
        taker_fee_bps=Decimal(2),
        maker_fee_bps=Decimal(-1),
        seed=5,
    )
    settings = EngineSettings(broker=broker, equity_interval_ns=50_000_000)
    trader = QuoteTrader()
    specs = [StrategySpec("qt", account=1, initial_cash=Decimal(10_000), instance=trader)]
    if listener:
        specs.append(StrategySpec("counter", account=2, instance=QuoteCounter()))
    feed = SpyQuoteFeed("q", "SYN", synthetic_quotes(rows, 21, chunk_rows=2_500))

    def factory(eng: BacktestEngine) -> PaperBroker:
        return PaperBroker([INST], eng.clock, broker)

    eng = BacktestEngine(
        [INST], [feed], specs, settings, broker_factory=factory if always_busy else None
    )
    return trader, feed, eng.run()


def test_single_quote_strategy_loop_gives_the_same_run_as_the_general_loops() -> None:
    fast_trader, fast_feed, fast = _quote_run()
    assert fast_feed.one_quote_loop
    assert len(fast.fills) > 500 and fast_trader.timers and fast_trader.orders
    # Each fill reached on_fill once; every report reached on_order.
    assert len(fast_trader.fills) == len(fast.fills)
    for kwargs in ({"listener": True}, {"always_busy": True}):
        trader, feed, res = _quote_run(**kwargs)
        assert not feed.one_quote_loop
        assert res.fills_hash == fast.fills_hash and res.orders_hash == fast.orders_hash
        assert res.final["qt"] == fast.final["qt"] and res.events == fast.events == 12_000
        assert trader.fills == fast_trader.fills and trader.orders == fast_trader.orders
        assert trader.timers == fast_trader.timers
        eq = res.tables["qt"].equity
        assert eq.equals(fast.tables["qt"].equity)


class QuoteRaiser(Strategy):
    def __init__(self) -> None:
        super().__init__("boom", ["SYN"])
        self.n = 0

    def on_quote(self, event: Quote) -> None:
        self.n += 1
        if self.n == 3:
            raise ZeroDivisionError("bad quote")


def test_single_quote_strategy_loop_names_the_row_that_raised() -> None:
    rows = [(i * 10, 100, 5, 101, 5) for i in range(1, 9)]
    feed = SpyQuoteFeed("quotes.parquet", "SYN", [quotes(rows[:2]), quotes(rows[2:])])
    eng = BacktestEngine([INST], [feed], [StrategySpec("boom", account=1, instance=QuoteRaiser())])
    with pytest.raises(StrategyError) as info:
        eng.run()
    msg = str(info.value)
    assert feed.one_quote_loop and "on_quote" in msg and "ZeroDivisionError: bad quote" in msg
    assert "Quote SYN at ts 30" in msg and "quotes.parquet row 3" in msg
    res = BacktestEngine(
        [INST],
        [SpyQuoteFeed("q", "SYN", [quotes(rows)])],
        [StrategySpec("boom", account=1, instance=QuoteRaiser())],
        EngineSettings(stop_on_strategy_error=False),
    ).run()
    assert res.strategy_errors == 1 and res.events == 8


def test_result_hashes_are_the_fills_and_orders_of_the_run() -> None:
    _, _, res = _quote_run(rows=3_000)
    assert len(res.fills) > 50
    # The digest is SHA-256 over one line per fill, as documented.
    lines = "".join("|".join(str(v) for v in r[:9]) + "\n" for r in res.fills)
    assert res.fills_hash == hashlib.sha256(lines.encode()).hexdigest()
    assert res.fills_hash == fills_digest(res.fills) and res.fills_hash == res.fills_hash
    orders = sorted(res._engine.om.orders(), key=lambda o: (o.account, o.client_order_id))
    text = "".join(
        f"{o.account}|{o.client_order_id}|{o.symbol}|{o.request.side.value}|"
        f"{o.request.order_type.value}|{o.request.tif.value}|{o.request.qty}|{o.request.price}|"
        f"{o.request.ts_ns}|{o.status.value}|{o.filled_qty}\n"
        for o in orders
    )
    assert res.orders_hash == hashlib.sha256(text.encode()).hexdigest()


class QuoteRecorder(Strategy):
    """Keeps every Quote it is given (the objects themselves)."""

    def __init__(self, name: str = "rec") -> None:
        super().__init__(name, ["SYN"])
        self.quotes: list[Quote] = []

    def on_quote(self, event: Quote) -> None:
        self.quotes.append(event)


@pytest.mark.parametrize("listeners", [1, 2])
def test_quote_loops_hand_out_the_quotes_the_constructor_builds(listeners: int) -> None:
    # The quote loops build each Quote through a slot twin (stores, then the class switch),
    # not through Quote(...): on seeded random rows the objects must be indistinguishable
    # from the constructor's, in the single-strategy loop (1) and the general one (2).
    import copy
    import dataclasses
    import pickle
    import random

    rng = random.Random(listeners)
    rows = []
    t = 0
    for _ in range(2_000):
        t += rng.randint(0, 3)
        bid = rng.randint(1, 10**12)
        rows.append((t, bid, rng.randint(0, 10**6), bid + rng.randint(0, 5), rng.randint(0, 9)))
    chunk = quotes(rows)
    chunk["update_id"] = np.array([rng.randint(0, 2**62) for _ in rows], np.int64)
    recorders = [QuoteRecorder(f"rec{i}") for i in range(listeners)]
    feed = SpyQuoteFeed("q", "SYN", [chunk])
    specs = [StrategySpec(r.name, account=i + 1, instance=r) for i, r in enumerate(recorders)]
    BacktestEngine([INST], [feed], specs).run()
    assert feed.one_quote_loop is (listeners == 1)
    expected = [
        Quote("SYN", ts, ts, int(uid), bp, bq, ap, aq)
        for (ts, bp, bq, ap, aq), uid in zip(rows, chunk["update_id"], strict=True)
    ]
    for rec in recorders:
        got = rec.quotes
        assert len(got) == len(expected)
        for q, e in zip(got, expected, strict=True):
            assert type(q) is Quote
            assert q == e and hash(q) == hash(e) and repr(q) == repr(e)
            assert dataclasses.astuple(q) == dataclasses.astuple(e)
            assert all(type(getattr(q, f)) is type(getattr(e, f)) for f in Quote.__slots__)
        q = got[-1]
        with pytest.raises(dataclasses.FrozenInstanceError):
            q.bid_price = 1  # type: ignore[misc]
        assert pickle.loads(pickle.dumps(q)) == q and copy.deepcopy(q) == q
        assert dataclasses.replace(q, bid_qty=7) == dataclasses.replace(expected[-1], bid_qty=7)


def test_slot_twin_refuses_classes_whose_layout_it_cannot_share() -> None:
    from dataclasses import dataclass as dc

    from tradecore.backtest.engine import _slot_twin

    @dc(slots=True)
    class NotFrozen:
        a: int

    @dc(frozen=True)
    class NoSlots:
        a: int

    @dc(frozen=True, slots=True)
    class PostInit:
        a: int

        def __post_init__(self) -> None:
            pass

    @dc(frozen=True, slots=True)
    class Base:
        a: int

    @dc(frozen=True, slots=True)
    class Derived(Base):
        b: int

    for cls in (NotFrozen, NoSlots, PostInit, Derived, int):
        with pytest.raises(TypeError, match="no slot twin"):
            _slot_twin(cls)
    twin = _slot_twin(Base)
    assert twin.__slots__ == ("a",) and twin.__bases__ == (object,)


class RaisingQuoteTrader(QuoteTrader):
    """QuoteTrader that also raises on every 17th quote (after trading on it)."""

    def on_quote(self, event: Quote) -> None:
        super().on_quote(event)
        if self.n % 17 == 0:
            raise RuntimeError(f"quote {self.n}")


def test_single_quote_loop_delivers_like_the_general_loop_when_the_strategy_raises() -> None:
    # The single-strategy loop keeps the engine's callback depth at 1 between deliveries:
    # with a strategy that raises (continue policy) and trades, fills, order updates and
    # timers reach it exactly as in the general loop.
    from tradecore.execution import PaperBroker

    broker = PaperBrokerConfig(
        latency=LatencyModel(entry_ns=2_000_000, cancel_ns=1_000_000, jitter_ns=500_000),
        taker_fee_bps=Decimal(2),
        seed=3,
    )
    runs = []
    for general in (False, True):
        trader = RaisingQuoteTrader()
        specs = [StrategySpec("qt", account=1, initial_cash=Decimal(10_000), instance=trader)]
        feed = SpyQuoteFeed("q", "SYN", synthetic_quotes(6_000, 8, chunk_rows=1_000))
        settings = EngineSettings(
            broker=broker, equity_interval_ns=50_000_000, stop_on_strategy_error=False
        )

        def factory(eng: BacktestEngine) -> PaperBroker:
            return PaperBroker([INST], eng.clock, broker)

        eng = BacktestEngine(
            [INST], [feed], specs, settings, broker_factory=factory if general else None
        )
        res = eng.run()
        assert feed.one_quote_loop is not general and eng._depth == 0
        runs.append((trader, res))
    (fast_t, fast), (slow_t, slow) = runs
    assert fast.strategy_errors == slow.strategy_errors == 6_000 // 17
    assert len(fast.fills) > 200 and fast_t.orders and fast_t.timers
    assert fast.fills_hash == slow.fills_hash and fast.orders_hash == slow.orders_hash
    assert fast_t.fills == slow_t.fills and fast_t.orders == slow_t.orders
    assert fast_t.timers == slow_t.timers


class OpenQtyChecker(QuoteTrader):
    """QuoteTrader that compares the risk view's open quantity with the open orders."""

    def __init__(self) -> None:
        super().__init__()
        self.checked = 0
        self.engine: Any = None

    def on_quote(self, event: Quote) -> None:
        super().on_quote(event)
        state = self.engine.risk._state
        for side in (Side.BUY, Side.SELL):
            orders = [o for o in self.ctx.open_orders("SYN") if o.side is side]
            assert state.open_qty(1, "SYN", side) == sum(o.leaves for o in orders)
            self.checked += bool(orders)


def test_risk_view_open_quantity_is_the_open_orders_leaves() -> None:
    trader = OpenQtyChecker()
    broker = PaperBrokerConfig(latency=LatencyModel(entry_ns=3_000_000, cancel_ns=2_000_000))
    spec = StrategySpec("qt", account=1, initial_cash=Decimal(10_000), instance=trader)
    feed = QuoteFeed("q", "SYN", synthetic_quotes(4_000, 21, chunk_rows=1_000))
    eng = BacktestEngine([INST], [feed], [spec], EngineSettings(broker=broker))
    trader.engine = eng
    eng.run()
    assert trader.checked > 500


def test_account_equity_without_fractions_is_the_fraction_computation() -> None:
    # account_equity values a book-marked position from twice the mid (an int) instead of a
    # Fraction: on random positions and marks (odd and even sums of bid and ask, explicit
    # marks, unmarked symbols) it must give the same Decimal, exponent included, as the
    # Fraction computation it replaces, and the portfolio's own equity in value.
    import random
    from decimal import Context, Inexact, InvalidOperation, Overflow

    from tradecore.execution.types import Liquidity

    money = Context(prec=60, traps=[InvalidOperation, Inexact, Overflow])
    insts = [Instrument("AAA", "0.01", "1"), Instrument("BBB", "0.5", "0.001")]
    insts.append(Instrument("CCC", "0.0001", "3"))

    def by_fractions(eng: BacktestEngine, account: int) -> Decimal:
        pf = eng.portfolio
        total = pf.cash(account)
        for sym, unit in eng.units.items():
            qty = pf.position_qty(account, sym)
            if not qty:
                continue
            mark = pf.mark_of(sym)
            if mark is None:
                return pf.equity(account)
            value = qty * mark
            amount = money.multiply(Decimal(value.numerator), unit)
            if value.denominator != 1:
                amount = money.divide(amount, Decimal(value.denominator))
            total = money.add(total, amount)
        return total

    rng = random.Random(11)
    for trial in range(200):
        eng = BacktestEngine(insts, [], [])
        pf = eng.portfolio
        for i in range(rng.randint(0, 8)):
            sym = rng.choice(insts).symbol
            side = rng.choice([Side.BUY, Side.SELL])
            fee = Decimal(rng.randint(-50, 500)) / 1000
            pf.on_fill(
                Fill(1, sym, i, side, rng.randint(1, 10**7), rng.randint(1, 99),
                     Liquidity.TAKER, fee, i, i + 1)
            )  # fmt: skip
        for inst in insts:
            r = rng.random()
            if r < 0.6:
                bid = rng.randint(1, 10**7)
                pf.mark(inst.symbol, bid, bid + rng.randint(0, 3))
            elif r < 0.8:
                pf.mark_price(inst.symbol, rng.randint(1, 10**7))
        got = eng.account_equity(1)
        assert str(got) == str(by_fractions(eng, 1)), trial
        assert got == pf.equity(1)


def test_column_values_are_tolist_values_for_every_dtype() -> None:
    # The feeds iterate each column through _column_values (a memoryview for plain numeric
    # buffers): every value and its Python type must be what tolist() gives, at the edges of
    # each integer type, for special floats, strided, empty, byte-swapped, 2-D, object and
    # datetime columns.
    import math
    import random

    from tradecore.backtest.engine import _column_values

    rng = random.Random(5)
    arrays: list[Any] = []
    for dt in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64):
        info = np.iinfo(dt)
        edge = [info.min, info.min + 1, -1 if info.min < 0 else 0, 0, 1, info.max - 1, info.max]
        rand = [rng.randint(int(info.min), int(info.max)) for _ in range(200)]
        arrays.append(np.array(edge + rand, dtype=dt))
    for fdt in (np.float32, np.float64, np.float16):
        fi = np.finfo(fdt)
        specials = [0.0, -0.0, math.inf, -math.inf, math.nan, float(fi.tiny), float(fi.max), 0.1]
        rand = [rng.uniform(-1e4, 1e4) for _ in range(200)]
        arrays.append(np.array(specials + rand, fdt))
    arrays.append(np.array([rng.random() < 0.5 for _ in range(100)]))
    big = np.arange(-50, 50, dtype=np.int64)
    arrays += [
        big[::3],  # strided
        big[:0],  # empty
        big.astype(">i8"),  # byte-swapped
        big.reshape(10, 10),  # two-dimensional
        np.array([1, "x", None], dtype=object),
        np.array(["2024-01-01T00:00:00", "NaT"], dtype="datetime64[ns]"),
        [3, 4, 5],  # a plain list
    ]
    for arr in arrays:
        got = list(_column_values(arr))
        want = np.asarray(arr).tolist()
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert type(g) is type(w)
            if isinstance(w, float):
                assert (math.isnan(g) and math.isnan(w)) or (
                    g == w and math.copysign(1, g) == math.copysign(1, w)
                )
            else:
                assert g == w or (g is None and w is None)
    # The buffer path is the one taken for the quote and trade columns.
    assert isinstance(_column_values(big), memoryview)
    assert isinstance(_column_values(big.astype(">i8")), list)


def test_orders_table_first_fill_and_passive_flags_follow_the_fills() -> None:
    # The orders table's first fill time and passive flag are derived from the fill rows after
    # the run: check them against each order's own fills (maker and taker fills, partial
    # fills, orders never filled).
    import pandas as pd

    _, _, res = _quote_run(rows=6_000)
    orders = res._engine.om.orders()
    table = res.tables["qt"].orders
    by_key: dict[int, list[tuple[Any, ...]]] = {}
    for r in res.fills:
        by_key.setdefault(r[2], []).append(r)
    liquidities = {r[8] for r in res.fills}
    assert liquidities == {"MAKER", "TAKER"}
    rows = {int(i): k for k, i in enumerate(table["order_id"].to_numpy())}
    never = 0
    for o in orders:
        k = rows[o.client_order_id]
        fills = by_key.get(o.client_order_id, [])
        first = table["first_fill_ns"].iloc[k]
        if fills:
            assert first == min(r[0] for r in fills)
        else:
            never += 1
            assert first is pd.NA
        took = any(r[8] == "TAKER" for r in fills)
        resting_kind = o.request.order_type.value == "LIMIT" and o.request.tif is TimeInForce.GTC
        assert bool(table["passive"].iloc[k]) == (resting_kind and not took)
    assert never > 0 and table["passive"].any() and not table["passive"].all()
