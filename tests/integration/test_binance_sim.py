"""The Binance adapter against the local simulator, over real sockets on 127.0.0.1.

Every scenario plays a real recording as fast as the client reads (the simulator pauses while
no client is connected, so nothing depends on timing) and ends with each book equal to an
independent Decimal rebuild of the same recording (``tests/unit/test_binance_sync.rebuild``).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import websockets
from tradecore.errors import UsageError
from tradecore.marketdata.adapter import BinanceAdapter
from tradecore.marketdata.events import BookUpdate, MarketEvent, Quote, Resync, TradeTick
from tradecore.marketdata.recorder import Recorder, load_recording, read_records
from tradecore.marketdata.replay import RecordedSource, ReplayServer
from tradecore.marketdata.sync import SyncState

# The independent Decimal rebuild lives with the unit tests; pytest imports test files by their
# base name (rootdir-less "prepend" mode), so this is the same module object it collects.
_UNIT = str(Path(__file__).resolve().parents[1] / "unit")
if _UNIT not in sys.path:
    sys.path.insert(0, _UNIT)
from test_binance_sync import DATA, rebuild  # noqa: E402

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="shared recordings not present")

T = TypeVar("T")
DAY = DATA / "2021-10-12"


def _gap_index() -> int:
    """The first NKNUSDT diff after message 60 of 2021-10-12 (its book is synced by then)."""
    lines = [x for x in (DAY / "BINANCE.ws.1.0").read_text().splitlines()[1:] if x.strip()]
    return next(
        i for i, x in enumerate(lines) if i >= 60 and '"e":"depthUpdate"' in x and "NKNUSDT" in x
    )


GAP = _gap_index() if DAY.is_dir() else 0


def run(coro: Awaitable[T], timeout: float = 60.0) -> T:
    """Run one scenario; the timeout only guards against a hang, never a pace."""

    async def guarded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(guarded())


async def drive(
    sim: ReplayServer,
    adapter: BinanceAdapter,
    on_event: Callable[[MarketEvent], None] | None = None,
) -> list[MarketEvent]:
    """Consume events until the playback ended and every book reached the market's last id."""
    events: list[MarketEvent] = []
    async for event in adapter.events():
        events.append(event)
        if on_event is not None:
            on_event(event)
        core = adapter.core
        assert core is not None
        if sim.finished.is_set() and all(
            b.state is SyncState.SYNCED and b.update_id == sim.markets[s].update_id
            for s, b in core.books.items()
        ):
            break
    await adapter.close()
    return events


def adapter_for(sim: ReplayServer, **kw: Any) -> BinanceAdapter:
    return BinanceAdapter(
        sim.recording.symbols, ws_url=sim.ws_url, rest_url=sim.rest_url, backoff_initial=0.01, **kw
    )


def assert_books_equal_rebuild(adapter: BinanceAdapter, day: Path) -> None:
    expected = rebuild(day)
    assert adapter.core is not None
    for sym, sync in adapter.core.books.items():
        assert sync.book.depth(100_000) == expected[sym], sym


@pytest.mark.parametrize("day", ["2021-08-14", "2021-10-12"])
def test_sync_from_snapshot_and_final_book_equals_rebuild(day: str) -> None:
    async def scenario() -> None:
        async with ReplayServer(DATA / day) as sim:
            adapter = adapter_for(sim)
            events = await drive(sim, adapter)
            assert adapter.core is not None
            stats = adapter.core.stats
            assert stats.resync_total == 0 and stats.error_total == 0
            assert adapter.connects == 1 and sim.depth_requests == 4
            assert any(isinstance(e, TradeTick) for e in events)
            assert any(isinstance(e, Quote) for e in events)
            synced_first = {e.symbol for e in events if isinstance(e, BookUpdate)}
            assert synced_first == set(sim.markets)
            assert_books_equal_rebuild(adapter, DATA / day)

    run(scenario())


def test_forced_gap_resyncs_and_recovers() -> None:
    async def scenario() -> None:
        async with ReplayServer(DAY, skip={GAP}) as sim:
            adapter = adapter_for(sim)
            events = await drive(sim, adapter)
            resyncs = [e for e in events if isinstance(e, Resync)]
            assert len(resyncs) == 1 and resyncs[0].symbol == "NKNUSDT"
            assert resyncs[0].reason.startswith("gap: diff U=")
            assert adapter.core is not None
            assert adapter.core.stats.resyncs == {"gap": 1}
            assert sim.depth_requests == 5  # one more snapshot for the resync
            after = events[events.index(resyncs[0]) :]
            assert any(isinstance(e, BookUpdate) and e.symbol == "NKNUSDT" for e in after)
            assert_books_equal_rebuild(adapter, DAY)

    run(scenario())


def test_dropped_connection_reconnects_and_resyncs() -> None:
    async def scenario() -> None:
        async with ReplayServer(DAY, drop_at={150}, missed_on_drop=20) as sim:
            adapter = adapter_for(sim)
            events = await drive(sim, adapter)
            assert sim.dropped_connections == 1 and sim.connections_total == 2
            assert adapter.connects == 2 and adapter.disconnects == 1
            resyncs = [e for e in events if isinstance(e, Resync)]
            assert {e.symbol for e in resyncs} == set(sim.markets)  # every synced book
            assert all(e.reason == "disconnected from the stream" for e in resyncs)
            assert adapter.core is not None
            assert adapter.core.stats.resyncs == {"disconnect": 4}
            assert_books_equal_rebuild(adapter, DAY)

    run(scenario())


def test_failed_snapshots_are_retried() -> None:
    async def scenario() -> None:
        async with ReplayServer(DAY, snapshot_failures=3) as sim:
            adapter = adapter_for(sim)
            await drive(sim, adapter)
            assert adapter.core is not None
            assert adapter.core.stats.errors == {"snapshot": 3}
            assert sim.depth_requests == 7
            assert_books_equal_rebuild(adapter, DAY)

    run(scenario())


def test_pings_are_answered_while_streaming() -> None:
    async def scenario() -> None:
        # Recorded pace x30 (30 s of traffic in about 1 s), a ping every 50 ms from the server.
        async with ReplayServer(DAY, speed=30, ping_interval=0.05, ping_timeout=60) as sim:
            adapter = adapter_for(sim)
            latencies: list[float] = []

            def sample(_: MarketEvent) -> None:
                latencies.extend(c.latency for c in sim.connections())

            await drive(sim, adapter, sample)
            # latency is set when a pong for the server's ping comes back from the client.
            assert any(x > 0 for x in latencies)
            assert adapter.connects == 1 and sim.dropped_connections == 0

    run(scenario())


def test_recorder_output_replays_to_the_same_books(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl.gz"

    async def scenario() -> dict[str, Any]:
        async with ReplayServer(DAY, skip={GAP}) as sim:
            with Recorder(path, streams=None) as rec:
                adapter = adapter_for(sim, recorder=rec)
                await drive(sim, adapter)
            assert adapter.core is not None
            return {s: b.book.depth(100_000) for s, b in adapter.core.books.items()}

    live_books = run(scenario())
    records = list(read_records(path))
    assert records[0]["format"] == "tradecore-binance"
    kinds = {next(k for k in ("ws", "rest", "conn") if k in r) for r in records[1:]}
    assert kinds == {"ws", "rest", "conn"}
    assert all(isinstance(r["t"], int) and r["t"] > 1_600_000_000 * 10**9 for r in records[1:])
    recording = load_recording(path)
    assert recording.exchange_info is not None and len(recording.snapshots["NKNUSDT"]) == 2
    src = RecordedSource(recording)
    list(src)
    assert {s: b.book.depth(100_000) for s, b in src.core.books.items()} == live_books
    assert src.stats.resyncs == {"gap": 1}


def test_simulator_http_endpoints_and_errors() -> None:
    async def scenario() -> None:
        async with ReplayServer(DAY) as sim, httpx.AsyncClient() as http:
            r = await http.get(
                f"{sim.rest_url}/api/v3/depth", params={"symbol": "LRCBTC", "limit": 5}
            )
            body = r.json()
            assert r.status_code == 200 and len(body["bids"]) == 5
            assert body["lastUpdateId"] == 259345543  # the recorded snapshot, before playback
            r = await http.get(f"{sim.rest_url}/api/v3/depth", params={"symbol": "NOPE"})
            assert r.status_code == 400 and r.json()["code"] == -1121
            r = await http.get(
                f"{sim.rest_url}/api/v3/depth", params={"symbol": "LRCBTC", "limit": "x"}
            )
            assert r.status_code == 400
            r = await http.get(f"{sim.rest_url}/api/v3/exchangeInfo")
            assert r.status_code == 200 and len(r.json()["symbols"]) > 1000
            r = await http.get(f"{sim.rest_url}/nothing")
            assert r.status_code == 404
            url = f"{sim.ws_url}/stream?streams=lrcbtc@depth@100ms"
            async with websockets.connect(url) as ws:
                first = json.loads(await ws.recv())
                assert first["stream"] == "lrcbtc@depth@100ms"
                await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}))
                while True:
                    msg = json.loads(await ws.recv())
                    if "id" in msg:
                        break
                assert msg == {"result": ["lrcbtc@depth@100ms"], "id": 3}

    run(scenario())


def test_live_endpoints_need_live_true() -> None:
    with pytest.raises(UsageError, match="not a loopback address: pass live=True"):
        BinanceAdapter(
            ["BTCUSDT"], ws_url="wss://stream.binance.com:9443", rest_url="http://127.0.0.1:1"
        )
    with pytest.raises(UsageError, match="give ws_url and rest_url"):
        BinanceAdapter(["BTCUSDT"])
    with pytest.raises(UsageError, match="loopback only"):
        ReplayServer(DAY, host="0.0.0.0")
    live = BinanceAdapter(["btcusdt"], live=True)  # constructing connects to nothing
    assert live.stream_url.startswith("wss://stream.binance.com:9443/stream?streams=btcusdt@")
