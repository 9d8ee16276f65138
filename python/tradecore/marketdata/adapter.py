"""The Binance spot market-data adapter: combined WebSocket stream + REST, async.

Owns the connections: ``websockets`` for ``/stream?streams=...`` and ``httpx`` for
``/api/v3/exchangeInfo`` and ``/api/v3/depth``. Everything it reads goes through one
:class:`~tradecore.marketdata.sync.FeedCore` (parsing, book sync), and, when a
:class:`~tradecore.marketdata.recorder.Recorder` is given, to the recording first, exactly as
received with its receive time. :meth:`BinanceAdapter.events` yields
:class:`~tradecore.marketdata.events.MarketEvent` values.

Behaviour:

* Snapshots are fetched per symbol once the first diff of that symbol is buffered, again when
  one was stale, and after every resync; a failed fetch (HTTP error, timeout, bad body) is
  retried after the current backoff.
* A dropped connection (closed, aborted, a missed pong, a network error) yields one
  :class:`~tradecore.marketdata.events.Resync` per synced book, then reconnects after an
  exponential backoff (``backoff_initial`` doubling up to ``backoff_max``, with up to 10%
  jitter from a seeded generator), reset once a connection delivers a message.
* Ping/pong: ``websockets`` answers the server's pings (Binance pings every 20 s and drops
  clients that do not answer) and sends its own every ``ping_interval``; no answer within
  ``ping_timeout`` closes the connection, which then reconnects as above.
* Endpoints: ``ws_url``/``rest_url`` are base URLs (``ws://127.0.0.1:PORT``), so the adapter can
  point at :class:`~tradecore.marketdata.replay.ReplayServer`. The real Binance endpoints are
  used only with ``live=True``; without it, an address that is not loopback is a
  :class:`~tradecore.errors.UsageError` (tests can never reach the exchange by mistake).

Invariants: the book of a symbol is only ever reported synced by ``FeedCore`` (see
:mod:`~tradecore.marketdata.sync`); nothing raised by bad input escapes :meth:`events`.

Cost per message on the hot path: ``recv`` from websockets, two clock reads, the recorder's
append (if any) and ``FeedCore.on_message``. When snapshots are in flight, each ``recv`` is
raced against them with ``asyncio.wait``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import signal
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from urllib.parse import urlsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from tradecore.errors import UsageError
from tradecore.instrument import Instrument
from tradecore.marketdata.binance import (
    LIVE_REST_URL,
    LIVE_WS_URL,
    instruments_from_exchange_info,
    stream_names,
)
from tradecore.marketdata.errors import MarketDataError
from tradecore.marketdata.events import MarketEvent
from tradecore.marketdata.recorder import Recorder
from tradecore.marketdata.sync import FeedCore

__all__ = ["BinanceAdapter"]

log = logging.getLogger("tradecore.marketdata.adapter")


def _require_loopback(url: str, what: str) -> None:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise UsageError(
        f"{what} {url!r} is not a loopback address: pass live=True (--live) to connect to a real "
        f"exchange"
    )


class BinanceAdapter:
    """Binance spot market data for ``symbols`` (see the module docstring).

    ``async for event in adapter.events(): ...``; ``await adapter.close()`` (or leaving the
    loop) closes the connections and the recorder is left to its owner.
    """

    def __init__(
        self,
        symbols: Iterable[str],
        *,
        ws_url: str | None = None,
        rest_url: str | None = None,
        live: bool = False,
        instruments: Mapping[str, Instrument] | None = None,
        recorder: Recorder | None = None,
        depth_limit: int = 5000,
        streams: Iterable[str] | None = None,
        backoff_initial: float = 0.1,
        backoff_max: float = 30.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        http_timeout: float = 10.0,
        seed: int = 0,
    ) -> None:
        self.symbols = [s.upper() for s in symbols]
        if not self.symbols:
            raise UsageError("BinanceAdapter needs at least one symbol")
        if live:
            self.ws_url = ws_url or LIVE_WS_URL
            self.rest_url = rest_url or LIVE_REST_URL
        else:
            if ws_url is None or rest_url is None:
                raise UsageError(
                    "BinanceAdapter: give ws_url and rest_url (for example a local ReplayServer),"
                    " or live=True for the real exchange"
                )
            _require_loopback(ws_url, "ws_url")
            _require_loopback(rest_url, "rest_url")
            self.ws_url, self.rest_url = ws_url, rest_url
        if not 1 <= depth_limit <= 5000:
            raise UsageError(f"depth_limit must be in 1..5000, got {depth_limit}")
        self.ws_url = self.ws_url.rstrip("/")
        self.rest_url = self.rest_url.rstrip("/")
        self.live = live
        self.recorder = recorder
        self.depth_limit = depth_limit
        self.streams = list(streams) if streams is not None else stream_names(self.symbols)
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.http_timeout = http_timeout
        self._rng = random.Random(seed)
        self._instruments = dict(instruments) if instruments is not None else None
        self.core: FeedCore | None = None
        self.connects = 0
        self.disconnects = 0
        self._http: httpx.AsyncClient | None = None
        self._ws: ClientConnection | None = None
        self._snap_tasks: dict[asyncio.Task[tuple[str, int, str]], str] = {}
        self._closed = False

    @property
    def stream_url(self) -> str:
        """The combined-stream URL."""
        return f"{self.ws_url}/stream?streams={'/'.join(self.streams)}"

    # -- REST --------------------------------------------------------------------------------

    async def _get(self, path: str, params: dict[str, str]) -> tuple[int, str, int]:
        assert self._http is not None
        resp = await self._http.get(f"{self.rest_url}{path}", params=params)
        t = time.time_ns()
        text = resp.text
        if self.recorder is not None:
            self.recorder.rest(t, path, params, resp.status_code, text)
        return resp.status_code, text, t

    async def load_instruments(self) -> dict[str, Instrument]:
        """The instruments of ``symbols`` from ``GET /api/v3/exchangeInfo`` (once)."""
        if self._instruments is None:
            self._ensure_http()
            status, text, _ = await self._get("/api/v3/exchangeInfo", {})
            if status != 200:
                raise MarketDataError(f"exchangeInfo: HTTP {status}: {text[:200]}")
            self._instruments = instruments_from_exchange_info(text, self.symbols)
        return self._instruments

    async def _fetch_snapshot(self, symbol: str) -> tuple[str, int, str]:
        params = {"symbol": symbol, "limit": str(self.depth_limit)}
        status, text, t = await self._get("/api/v3/depth", params)
        if status != 200:
            raise MarketDataError(f"HTTP {status}: {text[:200]}")
        return symbol, t, text

    def _ensure_http(self) -> None:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.http_timeout)

    # -- the stream --------------------------------------------------------------------------

    def _start_snapshots(self, core: FeedCore) -> None:
        for sym in core.snapshots_wanted():
            task = asyncio.create_task(self._fetch_snapshot(sym), name=f"snapshot-{sym}")
            self._snap_tasks[task] = sym

    def _finish_snapshot(
        self, core: FeedCore, task: asyncio.Task[tuple[str, int, str]]
    ) -> MarketEvent | None:
        sym = self._snap_tasks.pop(task)
        try:
            symbol, _t, text = task.result()
        except (httpx.HTTPError, MarketDataError, OSError) as e:
            core.snapshot_failed(sym, f"{type(e).__name__}: {e}")
            return None
        return core.on_snapshot(symbol, text, time.monotonic_ns())

    def _cancel_snapshots(self) -> None:
        for task in self._snap_tasks:
            task.cancel()
        self._snap_tasks.clear()

    async def events(self) -> AsyncIterator[MarketEvent]:
        """The market events, forever (until :meth:`close` or the consumer stops)."""
        self._ensure_http()
        instruments = await self.load_instruments()
        core = self.core = FeedCore(instruments)
        recorder = self.recorder
        backoff = self.backoff_initial
        try:
            while not self._closed:
                try:
                    ws = await connect(
                        self.stream_url,
                        ping_interval=self.ping_interval,
                        ping_timeout=self.ping_timeout,
                        max_size=2**22,
                        open_timeout=self.http_timeout,
                    )
                except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as e:
                    log.warning("connect to %s failed: %s; retry in %.2fs", self.ws_url, e, backoff)
                    await asyncio.sleep(backoff)
                    backoff = self._next_backoff(backoff)
                    continue
                self._ws = ws
                self.connects += 1
                if recorder is not None:
                    recorder.conn(time.time_ns(), "open", self.stream_url)
                log.info("connected to %s", self.stream_url)
                got_message = False
                reason = "closed"
                recv: asyncio.Task[str | bytes] | None = None
                try:
                    while True:
                        if self._snap_tasks or recv is not None:
                            # Race the stream against the snapshots in flight.
                            if recv is None:
                                recv = asyncio.ensure_future(ws.recv())
                            if self._snap_tasks:
                                done, _ = await asyncio.wait(
                                    [recv, *self._snap_tasks], return_when=asyncio.FIRST_COMPLETED
                                )
                                for task in done:
                                    if task is not recv:
                                        snap_event = self._finish_snapshot(core, task)  # type: ignore[arg-type]
                                        if snap_event is not None:
                                            yield snap_event
                                if recv not in done:
                                    self._start_snapshots(core)
                                    continue
                            text = await recv
                            recv = None
                        else:
                            text = await ws.recv()
                        mono = time.monotonic_ns()
                        if recorder is not None:
                            recorder.ws(time.time_ns(), text)
                        if not got_message:
                            got_message = True
                            backoff = self.backoff_initial
                        event = core.on_message(text, mono)
                        if event is not None:
                            yield event
                        self._start_snapshots(core)
                except ConnectionClosed as e:
                    reason = f"connection closed ({e})"
                except OSError as e:
                    reason = f"network error ({e})"
                finally:
                    if recv is not None:
                        recv.cancel()
                    self._cancel_snapshots()
                    self._ws = None
                    await ws.close()
                if self._closed:
                    break
                self.disconnects += 1
                if recorder is not None:
                    recorder.conn(time.time_ns(), "closed", reason)
                log.warning("stream %s: %s; reconnecting in %.2fs", self.ws_url, reason, backoff)
                for event in core.on_disconnect(time.monotonic_ns()):
                    yield event
                await asyncio.sleep(backoff)
                backoff = self._next_backoff(backoff)
        finally:
            self._cancel_snapshots()
            if self._http is not None:
                await self._http.aclose()
                self._http = None

    def _next_backoff(self, current: float) -> float:
        return min(self.backoff_max, current * 2) * (1 + 0.1 * self._rng.random())

    async def close(self) -> None:
        """Stop: the event iterator ends at its next step."""
        self._closed = True
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m tradecore.marketdata record SYMBOL... --ws-url U --rest-url U [--record F]``.

    Prints one line per event (or a count every second with ``--quiet``); ``--live`` uses the
    real Binance endpoints.
    """
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m tradecore.marketdata record",
        description="Run the Binance adapter; optionally record what it receives.",
    )
    ap.add_argument("symbols", nargs="+")
    ap.add_argument("--ws-url")
    ap.add_argument("--rest-url")
    ap.add_argument("--live", action="store_true", help="connect to the real Binance")
    ap.add_argument("--record", help="write a .jsonl.gz recording here")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    async def run() -> None:
        recorder = Recorder(args.record) if args.record else None
        adapter = BinanceAdapter(
            args.symbols,
            ws_url=args.ws_url,
            rest_url=args.rest_url,
            live=args.live,
            recorder=recorder,
        )
        count, last = 0, time.monotonic()
        try:
            async for event in adapter.events():
                count += 1
                if not args.quiet:
                    print(event, flush=True)
                elif time.monotonic() - last >= 1:
                    print(f"{count} events; {adapter.core.stats if adapter.core else ''}")
                    last = time.monotonic()
        finally:
            if recorder is not None:
                recorder.close()

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # unwinds through run(): the recording is closed whole

    signal.signal(signal.SIGTERM, on_term)
    try:
        asyncio.run(run())
    except UsageError as e:
        print(f"error: {e}")
        return 2
    except KeyboardInterrupt:
        pass
    return 0
