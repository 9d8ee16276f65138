"""Recordings of Binance traffic: our recorder's gzip JSON lines, and cryptofeed's sample files.

Owns the on-disk formats and one in-memory shape, :class:`Recording`, that the simulator
(:mod:`~tradecore.marketdata.replay`), the in-process recorded source and the backtester load.

**Our format** (``*.jsonl.gz``, written by :class:`Recorder`, read by :func:`read_records` and
:func:`load_recording`): gzip-compressed UTF-8 JSON, one object per line; ``t`` is the wall-clock
receive time in ns since the epoch (``time.time_ns()`` when the adapter read the message):

* line 1: ``{"format": "tradecore-binance", "version": 1, "created_ns": ..., "streams": [...]}``
* ``{"t": ns, "ws": "<the message text exactly as received>"}`` (a string, so even a malformed
  message is kept byte for byte);
* ``{"t": ns, "rest": "/api/v3/depth", "params": {...}, "status": 200, "body": "<text>"}``;
* ``{"t": ns, "conn": "open" | "closed", "detail": "..."}`` (for "open", the stream URL; the
  reader takes the streams from it when the header lists none).

**cryptofeed's format** (``../shared/data/binance/cryptofeed/<date>/``, read by
:func:`load_cryptofeed`): ``BINANCE.0`` line 1 is ``URL -> <recv_ts>: <exchangeInfo body>``;
``BINANCE.http.0.0`` has one ``URL -> <recv_ts>: <depth body>`` per line; ``BINANCE.ws.1.0``
starts with ``<url> <-> <ts>``, then ``<recv_ts>: <combined-stream JSON>`` per line. Receive
times are float seconds there; they become ns by exact decimal arithmetic.

Invariants: the recorder never blocks the caller on disk or compression: lines go to an
in-memory list that a writer thread compresses and writes in batches (every
``flush_interval`` s); ``close()`` writes everything queued. A reader error names the file and
line.

Cost: ``Recorder.ws`` is one ``json.dumps`` of the text plus a list append (about 1 us for a
200-byte message); compression runs on the writer thread (zlib releases the GIL).
"""

from __future__ import annotations

import gzip
import json
import logging
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tradecore.marketdata.errors import FeedFormatError

__all__ = [
    "FORMAT",
    "Recorder",
    "Recording",
    "load_cryptofeed",
    "load_recording",
    "read_records",
]

log = logging.getLogger("tradecore.marketdata.recorder")

FORMAT = "tradecore-binance"
VERSION = 1


class Recorder:
    """Writes what an adapter receives to ``path`` (gzip JSON lines, see the module doc)."""

    def __init__(
        self,
        path: str | Path,
        streams: list[str] | None = None,
        flush_interval: float = 0.2,
        compresslevel: int = 6,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = gzip.open(self.path, "wb", compresslevel=compresslevel)  # noqa: SIM115 (closed by close())
        # deque.append / popleft are atomic, so the caller never takes a lock.
        self._lines: deque[str] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._error: BaseException | None = None
        self.count = 0
        header = {
            "format": FORMAT,
            "version": VERSION,
            "created_ns": time.time_ns(),
            "streams": list(streams or []),
        }
        self._lines.append(json.dumps(header))
        self._interval = flush_interval
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    def ws(self, t_ns: int, text: str | bytes) -> None:
        """One WebSocket message as received."""
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        self._lines.append(f'{{"t":{t_ns},"ws":{json.dumps(text)}}}')
        self.count += 1

    def rest(
        self, t_ns: int, path: str, params: dict[str, str], status: int, body: str | bytes
    ) -> None:
        """One REST response as received."""
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        rec = {"t": t_ns, "rest": path, "params": params, "status": status, "body": body}
        self._lines.append(json.dumps(rec))
        self.count += 1

    def conn(self, t_ns: int, what: str, detail: str = "") -> None:
        """A connection opened or closed."""
        self._lines.append(json.dumps({"t": t_ns, "conn": what, "detail": detail}))

    def _drain(self) -> None:
        with self._lock:
            q = self._lines
            lines = [q.popleft() for _ in range(len(q))]
            if lines:
                self._file.write(("\n".join(lines) + "\n").encode())
                # A sync flush: after a crash everything up to this batch is still readable.
                self._file.flush()

    def flush(self) -> None:
        """Write everything queued now (the writer thread does this every ``flush_interval``)."""
        self._drain()

    def _run(self) -> None:
        try:
            while not self._closed:
                self._wake.wait(self._interval)
                self._drain()
        except BaseException as e:  # disk full, ...: surfaced by close()
            self._error = e

    def close(self) -> None:
        """Write everything queued and close the file; raises if the writer thread failed."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._thread.join()
        if self._error is None:
            self._drain()
        self._file.close()
        if self._error is not None:
            raise OSError(f"recorder {self.path}: writing failed: {self._error}")

    def __enter__(self) -> Recorder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_records(path: str | Path, truncated_ok: bool = False) -> Iterator[dict[str, Any]]:
    """The records of one of our recordings, header first; bad lines raise
    :class:`FeedFormatError` naming the file and line.

    With ``truncated_ok``, a file cut short (a recorder killed before ``close()``) yields every
    whole record before the cut and logs a warning instead of raising.
    """
    p = Path(path)
    last_good = 0
    try:
        with gzip.open(p, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise FeedFormatError(f"{p}:{n}: not a JSON line ({e.msg})") from None
                if not isinstance(rec, dict):
                    raise FeedFormatError(f"{p}:{n}: expected a JSON object")
                if n == 1 and rec.get("format") != FORMAT:
                    raise FeedFormatError(f"{p}:1: not a {FORMAT} recording (header {rec!r:.80})")
                last_good = n
                yield rec
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:
        if truncated_ok and last_good > 0 and isinstance(e, EOFError):
            log.warning("%s: cut short after record %d (%s); using what was whole", p, last_good, e)
            return
        raise FeedFormatError(f"{p}: cannot read the recording: {e}") from None


@dataclass
class Recording:
    """Recorded traffic in memory: everything a simulator or a recorded source needs.

    ``messages`` are ``(recv_ns, text)`` in receive order; ``snapshots`` map a symbol to its
    ``(recv_ns, body)`` depth snapshots in order; ``exchange_info`` is the raw body.
    """

    streams: list[str]
    messages: list[tuple[int, str]]
    snapshots: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    exchange_info: str | None = None
    source: str = ""
    disconnects: list[int] = field(default_factory=list)

    @property
    def symbols(self) -> list[str]:
        """Upper-case symbols of the recorded streams, in first-seen order."""
        seen: dict[str, None] = {}
        for s in self.streams:
            seen[s.split("@", 1)[0].upper()] = None
        return list(seen)


def load_recording(path: str | Path, truncated_ok: bool = True) -> Recording:
    """One of our recordings as a :class:`Recording`; a bad record raises
    :class:`FeedFormatError` naming the file and record. A file cut short (the recorder was
    killed) loads up to the cut, with a warning, unless ``truncated_ok`` is False."""
    out = Recording([], [], {}, None, str(path), [])
    for n, rec in enumerate(read_records(path, truncated_ok), 1):
        try:
            _take(out, rec)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise FeedFormatError(f"{path}: record {n}: {type(e).__name__}: {e}") from None
    return out


def _take(out: Recording, rec: dict[str, Any]) -> None:
    if "format" in rec:
        out.streams = [str(x) for x in rec.get("streams", [])]
    elif "ws" in rec:
        out.messages.append((int(rec["t"]), str(rec["ws"])))
    elif "rest" in rec:
        if rec["status"] != 200:
            return
        if rec["rest"] == "/api/v3/depth":
            sym = str(rec["params"]["symbol"]).upper()
            out.snapshots.setdefault(sym, []).append((int(rec["t"]), str(rec["body"])))
        elif rec["rest"] == "/api/v3/exchangeInfo":
            out.exchange_info = str(rec["body"])
    elif rec.get("conn") == "closed":
        out.disconnects.append(int(rec["t"]))
    elif rec.get("conn") == "open" and not out.streams:
        # The adapter writes the stream URL here; it names the streams.
        query = parse_qs(urlsplit(str(rec.get("detail", ""))).query)
        out.streams = [x for x in query.get("streams", [""])[0].split("/") if x]
    elif "conn" not in rec:
        raise ValueError(f"unknown record {str(rec)[:80]}")


def _seconds_to_ns(text: str, where: str) -> int:
    try:
        return int(Decimal(text.strip()) * 1_000_000_000)
    except ArithmeticError:
        raise FeedFormatError(f"{where}: bad receive time {text!r}") from None


def _url_and_body(line: str, where: str) -> tuple[str, int, str]:
    url, sep, rest = line.partition(" -> ")
    ts, sep2, body = rest.partition(": ")
    if not sep or not sep2:
        raise FeedFormatError(f"{where}: expected 'URL -> <recv_ts>: <body>'")
    return url, _seconds_to_ns(ts, where), body.rstrip("\n")


def load_cryptofeed(directory: str | Path) -> Recording:
    """A cryptofeed sample directory (``BINANCE.0``, ``BINANCE.http.0.0``, ``BINANCE.ws.1.0``)."""
    d = Path(directory)
    ws_path = d / "BINANCE.ws.1.0"
    if not ws_path.is_file():
        raise FeedFormatError(f"{d}: no BINANCE.ws.1.0 (not a cryptofeed Binance recording)")
    info: str | None = None
    info_path = d / "BINANCE.0"
    if info_path.is_file():
        with info_path.open(encoding="utf-8") as f:
            first = f.readline()
        _, _, info = _url_and_body(first, f"{info_path}:1")
    snapshots: dict[str, list[tuple[int, str]]] = {}
    http_path = d / "BINANCE.http.0.0"
    if http_path.is_file():
        with http_path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                url, t, body = _url_and_body(line, f"{http_path}:{n}")
                sym = parse_qs(urlsplit(url).query).get("symbol", [""])[0].upper()
                if not sym:
                    raise FeedFormatError(f"{http_path}:{n}: no symbol in {url!r}")
                snapshots.setdefault(sym, []).append((t, body))
    streams: list[str] = []
    messages: list[tuple[int, str]] = []
    with ws_path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            if " <-> " in line:  # a (re)connection: the URL names the streams
                url = line.split(" <-> ", 1)[0]
                query = parse_qs(urlsplit(url).query).get("streams", [""])[0]
                streams = [s for s in query.split("/") if s]
                continue
            ts, sep, body = line.partition(": ")
            if not sep:
                raise FeedFormatError(f"{ws_path}:{n}: expected '<recv_ts>: <message>'")
            messages.append((_seconds_to_ns(ts, f"{ws_path}:{n}"), body.rstrip("\n")))
    return Recording(streams, messages, snapshots, info, str(d))
