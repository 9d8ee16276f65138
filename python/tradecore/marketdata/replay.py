"""Replaying recorded Binance traffic: a local simulator on loopback, and an in-process source.

Owns two ways to play a :class:`~tradecore.marketdata.recorder.Recording` back:

* :class:`ReplayServer`, a Binance look-alike on loopback (one port, ``websockets`` serving
  both HTTP and WebSocket): ``GET /api/v3/exchangeInfo`` (the recorded body),
  ``GET /api/v3/depth?symbol=&limit=`` (a snapshot of the simulated market *now*),
  ``GET /api/v3/ping`` and ``/api/v3/time``, and the combined stream
  ``/stream?streams=a/b/c`` (also ``{"method": "SUBSCRIBE"}``). The recording's messages are
  one market shared by every connection, played at the recorded pace times ``speed`` (or as
  fast as the clients read, ``speed=None``); it starts when the first client connects and, by
  default, pauses while no client is connected, so tests do not depend on timing.
  Fault injection: ``skip`` (message indices that change the market but are never sent: a
  forced gap), ``drop_at`` (before sending these indices every connection is aborted without a
  close frame; the market then moves on by ``missed_on_drop`` messages nobody receives) and
  ``snapshot_failures`` (the first N depth requests answer HTTP 503).

  The depth snapshot is the recorded snapshot replayed forward: until the playback passes the
  recorded ``lastUpdateId`` the recorded snapshot is served as is (it was fetched after the
  stream started, so it is "ahead"); after that, the recorded snapshot with every diff since
  applied, with ``lastUpdateId`` = the last diff's ``u``. Levels are kept as the recorded
  strings, keyed by their ``Decimal`` value.

* :class:`RecordedSource`, the fast path for the node's offline default and for backtests: no
  sockets, no event loop; it feeds the recording, in receive order, through the same
  :class:`~tradecore.marketdata.sync.FeedCore` the live adapter uses and yields the same
  events. A recorded snapshot is offered to the book at its receive time; a book that needs
  another one after the recording has none left stays unsynced (logged).

Invariants: the server binds loopback only (``127.0.0.1`` or ``::1``; anything else is a
``UsageError``). Cost: the server precomputes each message's stream and depth fields once;
playing a message is a set lookup plus one ``send`` per subscribed client. The recorded source
costs exactly what :class:`FeedCore` costs per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from tradecore.errors import UsageError
from tradecore.instrument import Instrument
from tradecore.marketdata.binance import instruments_from_exchange_info
from tradecore.marketdata.errors import FeedFormatError
from tradecore.marketdata.events import MarketEvent
from tradecore.marketdata.recorder import Recording, load_cryptofeed, load_recording
from tradecore.marketdata.sync import FeedCore

__all__ = ["RecordedSource", "ReplayServer", "load_any"]

log = logging.getLogger("tradecore.marketdata.replay")

_LOOPBACK = {"127.0.0.1", "::1"}


def load_any(path: str | Path) -> Recording:
    """A recording from a cryptofeed directory or one of our ``.jsonl.gz`` files."""
    p = Path(path)
    if p.is_dir():
        return load_cryptofeed(p)
    if p.is_file():
        return load_recording(p)
    raise UsageError(f"recording {p}: no such file or directory")


class _Side:
    """One side of the simulated market: Decimal price -> (price text, qty text)."""

    __slots__ = ("levels",)

    def __init__(self) -> None:
        self.levels: dict[Decimal, tuple[str, str]] = {}

    def set_all(self, pairs: Iterable[Any]) -> None:
        for p, q in pairs:
            key = Decimal(p)
            if Decimal(q) == 0:
                self.levels.pop(key, None)
            else:
                self.levels[key] = (p, q)

    def top(self, n: int, descending: bool) -> list[list[str]]:
        keys = sorted(self.levels, reverse=descending)[:n]
        return [list(self.levels[k]) for k in keys]


class _SymbolMarket:
    """The simulated book of one symbol (see the module docstring)."""

    def __init__(self, symbol: str, snapshot: Mapping[str, Any]) -> None:
        self.symbol = symbol
        self.recorded_id = int(snapshot["lastUpdateId"])
        self.update_id = self.recorded_id
        self.bids = _Side()
        self.asks = _Side()
        self.bids.set_all(snapshot["bids"])
        self.asks.set_all(snapshot["asks"])
        self.broken = False

    def apply(self, first: int, last: int, bids: list[Any], asks: list[Any]) -> None:
        if last <= self.update_id or self.broken:
            return
        if first > self.update_id + 1:
            self.broken = True
            log.error(
                "%s: the recording itself has a gap (U=%d after %d): snapshots stop here",
                self.symbol,
                first,
                self.update_id,
            )
            return
        self.bids.set_all(bids)
        self.asks.set_all(asks)
        self.update_id = last

    def snapshot(self, limit: int) -> dict[str, Any]:
        return {
            "lastUpdateId": self.update_id,
            "bids": self.bids.top(limit, True),
            "asks": self.asks.top(limit, False),
        }


class _Message:
    __slots__ = ("depth", "index", "stream", "t_ns", "text")

    def __init__(self, index: int, t_ns: int, text: str) -> None:
        self.index = index
        self.t_ns = t_ns
        self.text = text
        self.stream = ""
        self.depth: tuple[str, int, int, list[Any], list[Any]] | None = None
        try:
            msg = json.loads(text)
            self.stream = str(msg["stream"])
            data = msg["data"]
            if data.get("e") == "depthUpdate":
                self.depth = (data["s"], data["U"], data["u"], data["b"], data["a"])
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("recorded message %d is not a combined-stream message; sent as is", index)


def _json_response(status: int, body: bytes | str) -> Response:
    data = body.encode() if isinstance(body, str) else body
    phrase = HTTPStatus(status).phrase
    headers = Headers(
        [
            ("Content-Type", "application/json;charset=UTF-8"),
            ("Content-Length", str(len(data))),
            ("Connection", "close"),
        ]
    )
    return Response(status, phrase, headers, data)


def _error(status: int, code: int, msg: str) -> Response:
    return _json_response(status, json.dumps({"code": code, "msg": msg}))


class ReplayServer:
    """A local Binance simulator serving ``recording`` (see the module docstring).

    Use ``async with ReplayServer(rec) as sim:``, then point an adapter at ``sim.ws_url`` and
    ``sim.rest_url``. ``await sim.finished.wait()`` waits for the end of the playback.
    """

    def __init__(
        self,
        recording: Recording | str | Path,
        *,
        speed: float | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        skip: Iterable[int] = (),
        drop_at: Iterable[int] = (),
        missed_on_drop: int = 0,
        snapshot_failures: int = 0,
        pause_when_idle: bool = True,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
    ) -> None:
        if host not in _LOOPBACK:
            raise UsageError(f"the simulator binds loopback only (127.0.0.1 or ::1), not {host!r}")
        if speed is not None and speed <= 0:
            raise UsageError(f"speed must be positive (or None for as fast as possible): {speed}")
        self.recording = recording if isinstance(recording, Recording) else load_any(recording)
        self.speed = speed
        self.host = host
        self.port = port
        self.skip = set(skip)
        self.drop_at = set(drop_at)
        self.missed_on_drop = missed_on_drop
        self.snapshot_failures = snapshot_failures
        self.pause_when_idle = pause_when_idle
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.messages = [
            _Message(i, t, text) for i, (t, text) in enumerate(self.recording.messages)
        ]
        self.markets: dict[str, _SymbolMarket] = {}
        for sym, snaps in self.recording.snapshots.items():
            try:
                self.markets[sym] = _SymbolMarket(sym, json.loads(snaps[0][1]))
            except (ValueError, KeyError, TypeError) as e:
                raise FeedFormatError(f"recorded snapshot of {sym}: {e}") from None
        self.position = 0  # index of the next message to play
        self.sent = 0
        self.connections_total = 0
        self.dropped_connections = 0
        self.depth_requests = 0
        self.finished = asyncio.Event()
        self._clients: dict[ServerConnection, set[str]] = {}
        self._has_clients = asyncio.Event()
        self._server: Server | None = None
        self._player: asyncio.Task[None] | None = None
        self._replies: set[asyncio.Future[None]] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def ws_url(self) -> str:
        """Base WebSocket URL (``ws://127.0.0.1:PORT``)."""
        return f"ws://{self._hostport()}"

    @property
    def rest_url(self) -> str:
        """Base REST URL (``http://127.0.0.1:PORT``)."""
        return f"http://{self._hostport()}"

    def _hostport(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    async def start(self) -> None:
        """Bind and serve; ``port`` is the bound port afterwards."""
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._process_request,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            max_size=2**20,
        )
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]
        log.info("Binance simulator on %s serving %s", self.rest_url, self.recording.source)

    async def stop(self) -> None:
        """Stop playing and close every connection."""
        if self._player is not None:
            self._player.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._player
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> ReplayServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def connections(self) -> list[ServerConnection]:
        """The open stream connections."""
        return list(self._clients)

    # -- HTTP --------------------------------------------------------------------------------

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            if url.path in ("/stream", "/ws") or url.path.startswith("/ws/"):
                return None
            return _error(404, -1, f"no WebSocket endpoint {url.path}")
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path == "/api/v3/exchangeInfo":
            if self.recording.exchange_info is None:
                return _error(404, -1, "this recording has no exchangeInfo")
            return _json_response(200, self.recording.exchange_info)
        if url.path == "/api/v3/depth":
            return self._depth(query)
        if url.path == "/api/v3/ping":
            return _json_response(200, "{}")
        if url.path == "/api/v3/time":
            return _json_response(200, json.dumps({"serverTime": time.time_ns() // 1_000_000}))
        return _error(404, -1, f"no endpoint {url.path}")

    def _depth(self, query: dict[str, str]) -> Response:
        self.depth_requests += 1
        symbol = query.get("symbol", "").upper()
        market = self.markets.get(symbol)
        if market is None:
            return _error(400, -1121, "Invalid symbol.")
        try:
            limit = int(query.get("limit", "100"))
        except ValueError:
            return _error(400, -1100, "Illegal characters found in parameter 'limit'.")
        if not 1 <= limit <= 5000:
            return _error(400, -1100, "limit must be in 1..5000")
        if self.snapshot_failures > 0:
            self.snapshot_failures -= 1
            return _error(503, -1003, "simulated failure")
        if market.broken:
            return _error(503, -1, f"the recording of {symbol} has a gap: no snapshot")
        return _json_response(200, json.dumps(market.snapshot(limit)))

    # -- WebSocket ---------------------------------------------------------------------------

    async def _handle(self, conn: ServerConnection) -> None:
        url = urlsplit(conn.request.path if conn.request is not None else "/")
        if url.path.startswith("/ws/"):
            streams = set(url.path[4:].split("/"))
        else:
            streams = set(parse_qs(url.query).get("streams", [""])[0].split("/")) - {""}
        self._clients[conn] = streams
        self.connections_total += 1
        self._has_clients.set()
        if self._player is None:
            self._player = asyncio.create_task(self._play(), name="replay-player")
        try:
            async for raw in conn:
                self._control(conn, raw)
        except ConnectionClosed:
            pass
        finally:
            self._clients.pop(conn, None)
            if not self._clients:
                self._has_clients.clear()

    def _control(self, conn: ServerConnection, raw: str | bytes) -> None:
        """Binance's live SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS requests."""
        try:
            req = json.loads(raw)
            method, rid = req["method"], req.get("id")
            params = req.get("params", [])
        except (ValueError, KeyError, TypeError):
            self._reply(conn, {"error": {"code": 2, "msg": "bad request"}})
            return
        subs = self._clients.get(conn, set())
        result: Any = None
        if method == "SUBSCRIBE":
            subs.update(params)
        elif method == "UNSUBSCRIBE":
            subs.difference_update(params)
        elif method == "LIST_SUBSCRIPTIONS":
            result = sorted(subs)
        self._reply(conn, {"result": result, "id": rid})

    def _reply(self, conn: ServerConnection, body: dict[str, Any]) -> None:
        task = asyncio.ensure_future(conn.send(json.dumps(body)))
        self._replies.add(task)
        task.add_done_callback(self._replies.discard)

    # -- playback ----------------------------------------------------------------------------

    def _advance(self, msg: _Message) -> None:
        if msg.depth is not None:
            sym, first, last, bids, asks = msg.depth
            market = self.markets.get(sym)
            if market is not None:
                market.apply(first, last, bids, asks)

    async def _play(self) -> None:
        msgs = self.messages
        loop = asyncio.get_running_loop()
        t0 = msgs[0].t_ns if msgs else 0
        base = loop.time()
        while self.position < len(msgs):
            if self.pause_when_idle and not self._clients:
                paused = loop.time()
                await self._has_clients.wait()
                base += loop.time() - paused
            msg = msgs[self.position]
            if self.speed is not None:
                due = base + (msg.t_ns - t0) / 1e9 / self.speed
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            if msg.index in self.drop_at:
                self.drop_at.discard(msg.index)
                self._drop_all()
                for _ in range(self.missed_on_drop):
                    if self.position >= len(msgs):
                        break
                    self._advance(msgs[self.position])
                    self.position += 1
                continue
            self.position += 1
            self._advance(msg)
            if msg.index in self.skip:
                continue
            for conn, streams in list(self._clients.items()):
                if msg.stream in streams:
                    try:
                        await conn.send(msg.text)
                        self.sent += 1
                    except ConnectionClosed:
                        self._clients.pop(conn, None)
            if self.speed is None:
                await asyncio.sleep(0)
        self.finished.set()
        log.info("playback finished: %d messages, %d sent", len(msgs), self.sent)

    def _drop_all(self) -> None:
        for conn in list(self._clients):
            self.dropped_connections += 1
            conn.transport.abort()
            self._clients.pop(conn, None)
        self._has_clients.clear()


class RecordedSource:
    """The events of a recording, computed in process (see the module docstring).

    ``instruments`` default to the recording's exchangeInfo for its symbols.
    """

    def __init__(
        self,
        recording: Recording | str | Path,
        instruments: Mapping[str, Instrument] | None = None,
    ) -> None:
        self.recording = recording if isinstance(recording, Recording) else load_any(recording)
        if instruments is None:
            if self.recording.exchange_info is None:
                raise UsageError(
                    f"recording {self.recording.source} has no exchangeInfo: pass instruments"
                )
            instruments = instruments_from_exchange_info(
                self.recording.exchange_info, self.recording.symbols
            )
        self.core = FeedCore(instruments, wall_offset_ns=0)

    @property
    def stats(self) -> Any:
        """The feed's counters (:class:`~tradecore.marketdata.sync.FeedStats`)."""
        return self.core.stats

    def __iter__(self) -> Iterator[MarketEvent]:
        core = self.core
        rec = self.recording
        # Side inputs (snapshots, disconnects) in time order; kind 0 = disconnect, 1 = snapshot.
        side: list[tuple[int, int, str, str]] = []
        for sym, snaps in rec.snapshots.items():
            for t, body in snaps:
                side.append((t, 1, sym, body))
        for t in rec.disconnects:
            side.append((t, 0, "", ""))
        heapq.heapify(side)
        on_message = core.on_message
        for t, text in rec.messages:
            while side and side[0][0] <= t:
                ts, kind, sym, body = heapq.heappop(side)
                if kind == 0:
                    yield from core.on_disconnect(ts)
                else:
                    event = core.on_snapshot(sym, body, ts)
                    if event is not None:
                        yield event
            event = on_message(text, t)
            if event is not None:
                yield event
        while side:
            ts, kind, sym, body = heapq.heappop(side)
            if kind == 1:
                event = core.on_snapshot(sym, body, ts)
                if event is not None:
                    yield event
        for sym, sync in core.books.items():
            if sync.state.value != "synced":
                log.warning("%s: recording ended with the book unsynced", sym)


def main(argv: list[str] | None = None) -> int:
    """``python -m tradecore.marketdata serve RECORDING [--port N] [--speed X]``: serve it."""
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m tradecore.marketdata serve",
        description="Serve a Binance recording on loopback (exchangeInfo, depth, combined stream).",
    )
    ap.add_argument("recording", help="cryptofeed directory or .jsonl.gz recording")
    ap.add_argument("--host", default="127.0.0.1", help="127.0.0.1 or ::1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--speed", type=float, default=1.0, help="pace factor; 0 = as fast as read")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    async def serve_forever() -> None:
        speed = None if args.speed == 0 else args.speed
        async with ReplayServer(args.recording, speed=speed, host=args.host, port=args.port) as sim:
            print(f"ws_url={sim.ws_url} rest_url={sim.rest_url}", flush=True)
            await sim.finished.wait()
            print(f"playback finished: {sim.sent} messages sent", flush=True)
            await asyncio.Event().wait()

    try:
        asyncio.run(serve_forever())
    except UsageError as e:
        print(f"error: {e}")
        return 2
    except KeyboardInterrupt:
        pass
    return 0
