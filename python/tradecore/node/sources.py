"""Market-data sources of the trading node: recorded files, the local simulator, live Binance.

Owns the adapters between the market-data layer (:mod:`tradecore.marketdata`) and the node's
loop, behind one small protocol, :class:`NodeSource`:

* :class:`RecordedNodeSource` (the offline default): the recordings are played in process,
  in receive order, through :class:`~tradecore.marketdata.sync.FeedCore` (the same parser and
  book sync as the live adapter), as fast as possible or at ``speed`` times the recorded pace.
  Each message is stamped with ``time.monotonic_ns()`` just before it is parsed
  (:attr:`RecordedNodeSource.stamp_ns`): that is the "read off the file" moment tick-to-trade
  starts from. The events' ``recv_ns`` stay the recorded receive times, so the paper broker's
  latency model runs on the recording's clock (as in a backtest), whatever the replay speed.
  Several recordings play one after another.
* :class:`SimulatorNodeSource`: the :class:`~tradecore.marketdata.adapter.BinanceAdapter` over
  real loopback sockets, against a running simulator (``source.url``) or one started in the
  node's event loop (:class:`~tradecore.marketdata.replay.ReplayServer`). ``recv_ns`` is
  ``time.monotonic_ns()`` at the socket read, so tick-to-trade starts there.
* :class:`LiveNodeSource`: the same adapter against Binance itself (``--live`` only).

Recordings are named by path (a cryptofeed directory or one of our ``.jsonl.gz`` files) or as
``embedded`` / ``embedded:<date>``: copies of the real cryptofeed samples shipped in
``tradecore/node/data`` (see the README there for their source and license), so the demo runs
without ``../shared``. Events of symbols the node does not trade are dropped here.

Cost: the recorded source adds one comparison, one clock read and one set lookup per message
to the ``FeedCore`` parse and book update (pacing and snapshots share the one comparison).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from tradecore.errors import ConfigError, UsageError
from tradecore.instrument import Instrument
from tradecore.marketdata.binance import instruments_from_exchange_info
from tradecore.marketdata.errors import MarketDataError
from tradecore.marketdata.events import BookView, MarketEvent
from tradecore.marketdata.recorder import Recording
from tradecore.marketdata.sync import FeedCore, SyncState
from tradecore.node.config import EMBEDDED_RECORDING, LoadedConfig, SourceKind

__all__ = [
    "DATA_DIR",
    "LiveNodeSource",
    "NodeSource",
    "RecordedNodeSource",
    "SimulatorNodeSource",
    "embedded_recordings",
    "open_source",
    "resolve_recordings",
]

log = logging.getLogger("tradecore.node.sources")

_NEVER = 1 << 64  # later than any timestamp (ns since the epoch fit in 63 bits)

#: Where the embedded recordings live (``binance-<date>.jsonl.gz``).
DATA_DIR = Path(__file__).parent / "data"

_SYNCED = SyncState.SYNCED
_IDLE_SLICE_NS = 50_000_000


class NodeSource(Protocol):
    """What the node needs from a market-data source."""

    @property
    def name(self) -> str:
        """Names the source (and its replay cursor in the store)."""
        ...

    @property
    def instruments(self) -> Mapping[str, Instrument]:
        """The instrument of each symbol the node trades."""
        ...

    @property
    def recv_monotonic(self) -> bool:
        """True: events' ``recv_ns`` is ``time.monotonic_ns()`` at the socket read."""
        ...

    @property
    def is_async(self) -> bool:
        """True: iterate with ``async for``; False: a plain iterator."""
        ...

    @property
    def stamp_ns(self) -> int:
        """Sync sources: the monotonic time the current event's message was read."""
        ...

    def book(self, symbol: str) -> BookView | None:
        """The live L2 book of ``symbol`` while it is synced, else None."""
        ...

    def __iter__(self) -> Iterator[MarketEvent]: ...

    def __aiter__(self) -> AsyncIterator[MarketEvent]: ...

    def close(self) -> None:
        """Release files, sockets, servers."""
        ...


def embedded_recordings() -> list[Path]:
    """The recordings shipped in the package, oldest first."""
    return sorted(DATA_DIR.glob("binance-*.jsonl.gz"))


def resolve_recordings(loaded: LoadedConfig) -> list[Path]:
    """``source.recording`` as files or directories (``embedded`` names the shipped copies)."""
    spec = loaded.config.source.recording
    names = [spec] if isinstance(spec, str) else list(spec)
    out: list[Path] = []
    for name in names:
        if name == EMBEDDED_RECORDING:
            out.extend(embedded_recordings())
        elif name.startswith(EMBEDDED_RECORDING + ":"):
            date = name.split(":", 1)[1]
            p = DATA_DIR / f"binance-{date}.jsonl.gz"
            if not p.is_file():
                known = ", ".join(
                    f"embedded:{q.name[len('binance-') : -len('.jsonl.gz')]}"
                    for q in embedded_recordings()
                )
                raise ConfigError(
                    f"{loaded.path}: source.recording: no embedded recording {name!r} "
                    f"(known: {known})"
                )
            out.append(p)
        else:
            p = loaded.resolve(name)
            if not p.exists():
                raise ConfigError(
                    f"{loaded.path}: source.recording: {p} does not exist (a cryptofeed "
                    "directory, a .jsonl.gz recording, or 'embedded')"
                )
            out.append(p)
    if not out:
        raise ConfigError(f"{loaded.path}: source.recording: no recording given")
    return out


def _load(path: Path, loaded: LoadedConfig | None) -> Recording:
    from tradecore.marketdata.replay import load_any

    try:
        return load_any(path)
    except (MarketDataError, UsageError, OSError) as exc:
        where = f"{loaded.path}: source.recording: " if loaded is not None else ""
        raise ConfigError(f"{where}{path}: {exc}") from None


def _instruments(
    recordings: Sequence[Recording], symbols: Sequence[str]
) -> tuple[dict[str, Instrument], list[dict[str, Instrument]]]:
    """The instruments of ``symbols``, and per recording the instruments of all its symbols.

    Each recording's feed knows every symbol it recorded (so messages of symbols the node does
    not trade are parsed quietly and dropped, not logged as unknown); a symbol the node trades
    must be in at least one recording.
    """
    merged: dict[str, Instrument] = {}
    per: list[dict[str, Instrument]] = []
    wanted = {s.upper() for s in symbols}
    for rec in recordings:
        if rec.exchange_info is None:
            raise ConfigError(f"recording {rec.source} has no exchangeInfo")
        insts = instruments_from_exchange_info(rec.exchange_info, rec.symbols)
        per.append(insts)
        for sym, inst in insts.items():
            if sym in wanted:
                merged.setdefault(sym, inst)
    return merged, per


class RecordedNodeSource:
    """Recordings played in process through ``FeedCore`` (see the module doc)."""

    recv_monotonic = False
    is_async = False

    def __init__(
        self,
        recordings: Sequence[Recording],
        symbols: Sequence[str],
        *,
        speed: float = 0.0,
        name: str = "",
    ) -> None:
        if not recordings:
            raise UsageError("RecordedNodeSource needs at least one recording")
        self.recordings = list(recordings)
        self.symbols = frozenset(s.upper() for s in symbols)
        self.speed = speed
        self.instruments, per = _instruments(self.recordings, list(self.symbols))
        # wall_offset_ns=0: a bookTicker (no exchange time) is stamped with its recorded
        # receive time, on the same clock as the depth and trade events of the recording.
        self.cores = [FeedCore(insts, wall_offset_ns=0) for insts in per]
        # The books of the recording being replayed (each recording has its own feed and
        # books: a symbol's book is the one its current BookUpdate events carry).
        self._books: dict[str, Any] = self.cores[0].books
        #: Called about every 50 ms while the replay waits for its pace; True ends the replay.
        self.on_idle: Callable[[], bool] | None = None
        self.name = name or "recorded:" + "+".join(
            Path(r.source).name or r.source for r in self.recordings
        )
        self.stamp_ns = 0

    @classmethod
    def from_paths(
        cls, paths: Sequence[str | Path], symbols: Sequence[str], *, speed: float = 0.0
    ) -> RecordedNodeSource:
        """Load each path (a cryptofeed directory or a ``.jsonl.gz`` recording)."""
        return cls([_load(Path(p), None) for p in paths], symbols, speed=speed)

    def book(self, symbol: str) -> BookView | None:
        """The live book of ``symbol`` in the recording being replayed, while it is synced."""
        sync = self._books.get(symbol)
        if sync is None or sync.state is not _SYNCED:
            return None
        book: BookView = sync.book
        return book

    def feed_stats(self) -> list[Any]:
        """The ``FeedStats`` of each recording's feed."""
        return [core.stats for core in self.cores]

    def __iter__(self) -> Iterator[MarketEvent]:
        wanted = self.symbols
        mono = time.monotonic_ns
        speed = self.speed
        start_mono = 0
        start_t = 0
        for rec, core in zip(self.recordings, self.cores, strict=True):
            side: list[tuple[int, int, str, str]] = []
            for sym, snaps in rec.snapshots.items():
                for t, body in snaps:
                    side.append((t, 1, sym, body))
            for t in rec.disconnects:
                side.append((t, 0, "", ""))
            heapq.heapify(side)
            self._books = core.books
            on_message = core.on_message
            # One comparison per message: with no pace, against the time of the next snapshot
            # or disconnect; with a pace, every message stops there (next_check stays 0).
            next_check = 0 if speed > 0 else side[0][0] if side else _NEVER
            for t, text in rec.messages:
                if t >= next_check:
                    while side and side[0][0] <= t:
                        yield from self._side(core, heapq.heappop(side), wanted)
                    if speed > 0:
                        if not start_mono:
                            start_mono, start_t = mono(), t
                        due = start_mono + int((t - start_t) / speed)
                        while (wait := due - mono()) > 0:
                            # Sleep in slices so the node can act (controls, a stop) meanwhile.
                            time.sleep(min(wait, _IDLE_SLICE_NS) / 1e9)
                            idle = self.on_idle
                            if idle is not None and idle():
                                return
                    else:
                        next_check = side[0][0] if side else _NEVER
                self.stamp_ns = mono()
                ev = on_message(text, t)
                if ev is not None and ev.symbol in wanted:
                    yield ev
            while side:
                yield from self._side(core, heapq.heappop(side), wanted)
            # The next recording starts its own pace (recordings are far apart in time).
            start_mono = 0
            for sym, sync in core.books.items():
                if sym in wanted and sync.state is not _SYNCED:
                    log.warning("%s: recording %s ended with the book unsynced", sym, rec.source)

    def _side(
        self, core: FeedCore, item: tuple[int, int, str, str], wanted: frozenset[str]
    ) -> Iterator[MarketEvent]:
        ts, kind, sym, body = item
        self.stamp_ns = time.monotonic_ns()
        if kind == 0:
            for ev in core.on_disconnect(ts):
                if ev.symbol in wanted:
                    yield ev
        else:
            event = core.on_snapshot(sym, body, ts)
            if event is not None and event.symbol in wanted:
                yield event

    def __aiter__(self) -> AsyncIterator[MarketEvent]:
        raise TypeError("RecordedNodeSource is a plain iterator (is_async is False)")

    def close(self) -> None:
        return None


class _AdapterSource:
    """Shared part of the simulator and live sources (the async Binance adapter)."""

    recv_monotonic = True
    is_async = True

    def __init__(self, name: str, symbols: Sequence[str]) -> None:
        self.name = name
        self.symbols = [s.upper() for s in symbols]
        self.instruments: dict[str, Instrument] = {}
        self.stamp_ns = 0
        self.adapter: Any = None

    def book(self, symbol: str) -> BookView | None:
        adapter = self.adapter
        core = adapter.core if adapter is not None else None
        if core is None:
            return None
        sync = core.books.get(symbol)
        if sync is None or sync.state is not _SYNCED:
            return None
        book: BookView = sync.book
        return book

    def __iter__(self) -> Iterator[MarketEvent]:
        raise TypeError(f"{type(self).__name__} is asynchronous (is_async is True)")

    def close(self) -> None:
        return None


class SimulatorNodeSource(_AdapterSource):
    """The Binance adapter against the local simulator, over loopback sockets.

    With ``url`` the simulator is already running (``http://127.0.0.1:PORT``); without, one is
    started in the node's event loop on a free loopback port and the source ends once it has
    played the whole recording and the last messages have arrived.
    """

    def __init__(
        self,
        recording: Recording,
        symbols: Sequence[str],
        *,
        url: str = "",
        speed: float = 0.0,
        quiet_s: float = 0.3,
    ) -> None:
        super().__init__(f"simulator:{url or recording.source}", symbols)
        self.recording = recording
        self.url = url.rstrip("/")
        self.speed = speed
        self.quiet_s = quiet_s
        self.instruments, _ = _instruments([recording], self.symbols)
        self.server: Any = None

    def __aiter__(self) -> AsyncIterator[MarketEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[MarketEvent]:
        from tradecore.marketdata.adapter import BinanceAdapter
        from tradecore.marketdata.replay import ReplayServer

        server = None
        if self.url:
            base = self.url
        else:
            server = ReplayServer(self.recording, speed=self.speed or None)
            await server.start()
            self.server = server
            base = server.rest_url
        ws_base = "ws://" + base.split("://", 1)[1]
        adapter = BinanceAdapter(
            self.symbols,
            ws_url=ws_base,
            rest_url=base,
            instruments=self.instruments,
            backoff_initial=0.05,
            backoff_max=1.0,
        )
        self.adapter = adapter
        wanted = set(self.symbols)
        it = adapter.events().__aiter__()
        nxt: asyncio.Task[MarketEvent] | None = None
        try:
            while True:
                if nxt is None:
                    nxt = asyncio.ensure_future(it.__anext__())
                timeout = self.quiet_s if server is not None and server.finished.is_set() else 1.0
                done, _ = await asyncio.wait({nxt}, timeout=timeout)
                if not done:
                    if server is not None and server.finished.is_set():
                        return  # played everything and nothing more arrives
                    continue
                task, nxt = nxt, None
                try:
                    ev = task.result()
                except StopAsyncIteration:
                    return
                if ev.symbol in wanted:
                    yield ev
        finally:
            if nxt is not None:
                nxt.cancel()
                with contextlib.suppress(BaseException):
                    await nxt
            await adapter.close()
            with contextlib.suppress(Exception):
                await it.aclose()  # type: ignore[attr-defined]
            if server is not None:
                await server.stop()


class LiveNodeSource(_AdapterSource):
    """The Binance adapter against Binance itself (``tradecore trade --live`` only)."""

    def __init__(self, symbols: Sequence[str]) -> None:
        super().__init__("live:binance", symbols)
        import httpx

        from tradecore.marketdata.binance import LIVE_REST_URL

        try:
            resp = httpx.get(
                f"{LIVE_REST_URL}/api/v3/exchangeInfo",
                params={"symbols": "[" + ",".join(f'"{s}"' for s in self.symbols) + "]"},
                timeout=10.0,
            )
        except httpx.HTTPError as exc:
            raise UsageError(f"live: cannot reach Binance exchangeInfo: {exc}") from None
        if resp.status_code != 200:
            raise UsageError(f"live: exchangeInfo answered HTTP {resp.status_code}: {resp.text}")
        self.instruments = instruments_from_exchange_info(resp.text, self.symbols)

    def __aiter__(self) -> AsyncIterator[MarketEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[MarketEvent]:
        from tradecore.marketdata.adapter import BinanceAdapter

        adapter = BinanceAdapter(self.symbols, live=True, instruments=self.instruments)
        self.adapter = adapter
        try:
            async for ev in adapter.events():
                yield ev
        finally:
            await adapter.close()


def open_source(loaded: LoadedConfig, *, live: bool = False, speed: float | None = None) -> Any:
    """The source ``loaded`` configures (``live`` = ``--live``; ``speed`` overrides)."""
    cfg = loaded.config
    symbols = cfg.node.symbols
    pace = cfg.source.speed if speed is None else speed
    if live or cfg.source.kind is SourceKind.LIVE:
        if not live:
            raise ConfigError(f"{loaded.path}: source.kind: 'live' needs --live")
        return LiveNodeSource(symbols)
    paths = resolve_recordings(loaded)
    recordings = [_load(p, loaded) for p in paths]
    try:
        if cfg.source.kind is SourceKind.SIMULATOR:
            if len(recordings) != 1:
                raise ConfigError(
                    f"{loaded.path}: source.recording: the simulator serves one recording, "
                    f"{len(recordings)} given"
                )
            return SimulatorNodeSource(recordings[0], symbols, url=cfg.source.url, speed=pace)
        return RecordedNodeSource(recordings, symbols, speed=pace)
    except MarketDataError as exc:
        raise ConfigError(f"{loaded.path}: node.symbols: {exc}") from None
