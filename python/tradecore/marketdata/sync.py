"""L2 book synchronisation for Binance diff-depth streams, and the message core of a feed.

Owns the state machine that turns a depth snapshot plus a stream of ``depthUpdate`` diffs into
a correct book, one :class:`BookSync` per symbol, and :class:`FeedCore`, which routes raw
combined-stream messages to those machines and to the trade/quote parsers. Both are sans-IO:
the async adapter, the in-process recorded source and the tests drive them with messages,
snapshots and disconnects, and ask them which snapshots to fetch.

The procedure (Binance's "how to manage a local order book", with the correction the real
recordings show, ``../shared/data/binance/README.md``):

1. Buffer diffs; ask for a snapshot once the first diff is buffered (so the snapshot is newer
   than the stream's start).
2. Snapshot ``lastUpdateId = L``. It is *stale* if the first diff seen has ``U > L + 1``
   (events between ``L`` and that diff were never seen): ask for a new snapshot. Diffs with
   ``u <= L`` are dropped.
3. Install it (book := snapshot, id := ``L``) once some diff seen has ``U <= L + 1``; the first
   applied diff then satisfies ``U <= L + 1 <= u``. Then for each diff: ``u <= id``: drop (an old
   or duplicate event, counted); ``U > id + 1``: a gap, resync; otherwise apply it whole and set
   id := ``u``.
   Levels off the instrument's grid are left out of the book and logged as errors (counted in
   ``stats.off_grid_levels``): real books keep legacy levels from before a tick or step change
   (the recorded NKNUSDT snapshot has 68, all 26% or more below the touch), which no tick
   price can name; every level on the grid stays exact.
4. A resync (gap, a diff or snapshot that does not parse or is off the grid, a book crossed after
   a whole diff, a disconnect) clears the book, emits :class:`Resync` with the reason, logs a
   warning, counts it by reason and starts again at 1.

Invariants: ``BookUpdate`` is emitted only when the book equals the exchange's book at
``update_id`` (as far as the snapshot's depth reaches); the book is never left half-updated,
because ``L2Book.apply_decimal`` is all or nothing. Bad input never raises out of
:meth:`FeedCore.on_message`: it is logged and counted (``stats``), and depth trouble becomes a
resync.

Cost per synced diff (bench/bench_marketdata.py, bench/bench_node.py): about 1-1.5 us, all
of it in one ``on_message`` call with one Rust call in it, ``binance_step``: the scan of the
JSON text (Binance's own layout of a depth diff is read without the general key dispatch),
and for the next diff of a synced book (the common case of :meth:`BookSync.on_depth_text`)
the levels read from the text and applied, the crossed check and the ``BookUpdate``;
``on_message`` then records the update id and counts it. A bookTicker or aggTrade comes back
with its decimals already in ticks and lots. Every other case gets the scan's tuple and goes
through the Python rules (:meth:`BookSync.on_depth_text` and :meth:`BookSync.on_diff`), which
own them. A snapshot installs in O(n log n). The reference path (``json.loads`` + Python
parsers + ``apply_decimal``) costs several times that and is taken only for messages the
scanner does not read with certainty, and for every error.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any

from tradecore._core import L2Book, binance_step
from tradecore.enums import Side
from tradecore.errors import OffGridError
from tradecore.instrument import Instrument
from tradecore.marketdata.binance import (
    DepthDiff,
    PriceGrid,
    Snapshot,
    decode,
    parse_agg_trade,
    parse_book_ticker,
    parse_depth,
    parse_snapshot,
)
from tradecore.marketdata.errors import FeedFormatError, UnknownSymbolError
from tradecore.marketdata.events import (
    BookUpdate,
    BookView,
    MarketEvent,
    Quote,
    Resync,
    TradeTick,
)

__all__ = ["BookSync", "FeedCore", "FeedStats", "SyncState"]

log = logging.getLogger("tradecore.marketdata.sync")

_SLOW = object()  # the fast path's "take the reference path" answer


class SyncState(Enum):
    """Where a :class:`BookSync` is in the procedure."""

    BUFFERING = "buffering"  # no book: diffs are buffered until a usable snapshot arrives
    SYNCED = "synced"  # the book is live


@dataclass
class FeedStats:
    """Counters of one feed (all symbols); read them, never write them."""

    messages: int = 0
    depth_applied: int = 0
    trades: int = 0
    quotes: int = 0
    ignored: int = 0
    dropped_old: int = 0
    stale_snapshots: int = 0
    off_grid_levels: int = 0
    snapshots: int = 0
    resyncs: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def resync_total(self) -> int:
        """Resyncs of every reason."""
        return sum(self.resyncs.values())

    @property
    def error_total(self) -> int:
        """Messages rejected as bad input, of every kind."""
        return sum(self.errors.values())


_SYNCED_STATE = SyncState.SYNCED


class BookSync:
    """The sync state machine and L2 book of one symbol (see the module docstring)."""

    def __init__(
        self,
        instrument: Instrument,
        stats: FeedStats | None = None,
        max_buffer: int = 10_000,
    ) -> None:
        self.instrument = instrument
        self.symbol = instrument.symbol
        self.book = L2Book(instrument.tick_size, instrument.lot_size)
        self.stats = stats if stats is not None else FeedStats()
        self.state = SyncState.BUFFERING
        self.update_id = 0
        self.snapshot_requested = False
        self._buffer: deque[DepthDiff] = deque(maxlen=max_buffer)
        self._pending: Snapshot | None = None
        self._seen_first: int | None = None  # U of the oldest diff of the unbroken buffer

    # -- what the driver asks ----------------------------------------------------------------

    @property
    def wants_snapshot(self) -> bool:
        """True when the driver should fetch a snapshot now (and then set
        ``snapshot_requested``; :meth:`on_snapshot` or :meth:`snapshot_failed` clears it)."""
        return (
            self.state is SyncState.BUFFERING
            and not self.snapshot_requested
            and self._pending is None
            and bool(self._buffer)
        )

    def snapshot_failed(self, reason: str) -> None:
        """The fetch failed (HTTP error, timeout, bad body): it will be asked for again."""
        self.snapshot_requested = False
        self.stats.errors["snapshot"] += 1
        log.warning("%s: depth snapshot failed: %s", self.symbol, reason)

    # -- inputs ------------------------------------------------------------------------------

    def on_diff(self, diff: DepthDiff) -> BookUpdate | Resync | None:
        """Feed one diff; returns the event it causes, if any."""
        if self.state is SyncState.SYNCED:
            if diff.last <= self.update_id:
                self.stats.dropped_old += 1
                log.info(
                    "%s: dropped old or duplicate diff U=%d u=%d (book at %d)",
                    self.symbol,
                    diff.first,
                    diff.last,
                    self.update_id,
                )
                return None
            if diff.first > self.update_id + 1:
                event = self._lose(
                    "gap",
                    f"gap: diff U={diff.first} after update id {self.update_id} "
                    f"(missed {diff.first - self.update_id - 1} updates)",
                    diff.recv_ns,
                    diff.ts_ns,
                )
                self._buffer_diff(diff)
                return event
            return self._apply(diff)
        self._buffer_diff(diff)
        if self._pending is not None:
            return self._try_install(diff.recv_ns)
        return None

    def on_depth_text(
        self,
        first: int,
        last: int,
        ts_ns: int,
        recv_ns: int,
        text: str,
        bids_at: int = -1,
        asks_at: int = -1,
    ) -> BookUpdate | Resync | None:
        """Feed one diff read by the fast path (``binance_scan``): ids, times and its text.

        The common case (a synced book and the next diff in sequence) is applied here without
        building a :class:`DepthDiff`; everything else (buffering, drops, gaps, bad levels,
        off-grid levels, a crossed book) goes through :meth:`on_diff`, which owns those rules.
        ``bids_at`` / ``asks_at``: the offsets of the level arrays in ``text`` that
        ``binance_scan`` returned for it, so the levels are read without scanning the message
        again (``L2Book.apply_depth_at``); without them (-1) ``apply_depth_json`` scans it.
        """
        uid = self.update_id
        if self.state is not _SYNCED_STATE or last <= uid or first > uid + 1:
            diff = DepthDiff(self.symbol, first, last, None, None, ts_ns, recv_ns, text)
            return self.on_diff(diff)
        book = self.book
        try:
            if bids_at >= 0:
                skipped = book.apply_depth_at(text, bids_at, asks_at, True)
            else:
                skipped = book.apply_depth_json(text, True)
        except (FeedFormatError, OffGridError):
            # Nothing was applied (all or nothing): the reference path words and counts it.
            diff = DepthDiff(self.symbol, first, last, None, None, ts_ns, recv_ns, text)
            return self._apply(diff)
        if skipped or book.is_crossed():
            diff = DepthDiff(self.symbol, first, last, None, None, ts_ns, recv_ns, text)
            return self._applied(diff, skipped)
        self.update_id = last
        self.stats.depth_applied += 1
        return BookUpdate(self.symbol, ts_ns, recv_ns, last, book)

    def on_snapshot(self, snapshot: Snapshot, recv_ns: int) -> BookUpdate | Resync | None:
        """Feed the snapshot the driver fetched."""
        self.snapshot_requested = False
        self.stats.snapshots += 1
        if self.state is SyncState.SYNCED:
            return None  # a late answer to a request made before the book synced another way
        self._pending = snapshot
        return self._try_install(recv_ns)

    def on_snapshot_body(
        self, body: str | bytes | Mapping[str, Any], recv_ns: int
    ) -> BookUpdate | Resync | None:
        """Parse and feed a snapshot body; a bad body counts as a failed fetch."""
        try:
            snap = parse_snapshot(self.symbol, body)
        except FeedFormatError as e:
            self.snapshot_failed(str(e))
            return None
        return self.on_snapshot(snap, recv_ns)

    def on_disconnect(self, recv_ns: int) -> Resync | None:
        """The stream broke: whatever comes next may have a hole in it."""
        self._pending = None
        self.snapshot_requested = False
        if self.state is SyncState.SYNCED:
            return self._lose("disconnect", "disconnected from the stream", recv_ns, 0)
        self._buffer.clear()
        self._seen_first = None
        return None

    # -- internals ---------------------------------------------------------------------------

    def _buffer_diff(self, diff: DepthDiff) -> None:
        buf = self._buffer
        if buf:
            prev = buf[-1]
            if diff.last <= prev.last:
                self.stats.dropped_old += 1
                log.info(
                    "%s: dropped out-of-order diff U=%d u=%d while buffering (last u=%d)",
                    self.symbol,
                    diff.first,
                    diff.last,
                    prev.last,
                )
                return
            if diff.first > prev.last + 1:
                # A hole inside the buffer: nothing before it can ever be bridged.
                log.warning(
                    "%s: gap while buffering (U=%d after u=%d); restarting the buffer",
                    self.symbol,
                    diff.first,
                    prev.last,
                )
                self.stats.resyncs["gap"] += 1
                buf.clear()
                self._seen_first = None
        if len(buf) == buf.maxlen:
            self._seen_first = None  # the oldest diff falls out; the unbroken range shrinks
        buf.append(diff)
        if self._seen_first is None:
            self._seen_first = buf[0].first

    def _replace(self, snap: Snapshot) -> int:
        """Replace the book with the snapshot's levels (``replace_decimal``); off-grid skipped.

        The Rust book builds each side with one sort (the same book as setting the levels one
        by one in the order listed: the last level listed at a price wins, a zero quantity
        removes), so a 5,000-level snapshot listed best first costs O(n log n), not O(n^2).
        All or nothing: a failing call leaves the book as it was and names the level as the
        exchange listed it.
        """
        skipped: int = self.book.replace_decimal(snap.bids, snap.asks, skip_off_grid=True)
        return skipped

    def _try_install(self, recv_ns: int) -> BookUpdate | Resync | None:
        snap = self._pending
        assert snap is not None
        if not self._buffer:
            return None  # wait for a diff to show whether the snapshot is stale
        first = self._seen_first if self._seen_first is not None else self._buffer[0].first
        last_id = snap.last_update_id
        if first > last_id + 1:
            self._pending = None
            self.stats.stale_snapshots += 1
            log.warning(
                "%s: stale snapshot (lastUpdateId=%d, first buffered U=%d): fetching again",
                self.symbol,
                last_id,
                first,
            )
            return None
        # The snapshot covers every event before the buffer's unbroken range: install it.
        self._pending = None
        try:
            skipped = self._replace(snap)
        except (FeedFormatError, OffGridError) as e:
            self.book.clear()
            self.stats.errors["snapshot"] += 1
            self.stats.resyncs["bad snapshot"] += 1
            log.error("%s: bad depth snapshot: %s", self.symbol, e)
            return Resync(self.symbol, 0, recv_ns, f"bad snapshot: {e}")
        if skipped:
            self._off_grid(skipped, snap.bids, snap.asks, f"snapshot {last_id}")
        self.state = SyncState.SYNCED
        self.update_id = last_id
        self._seen_first = None
        event: BookUpdate | Resync | None = None
        buffered = list(self._buffer)
        self._buffer.clear()
        ts_ns = 0
        for diff in buffered:
            if self.state is not SyncState.SYNCED:
                self._buffer_diff(diff)  # resynced part way: keep the rest buffered
            elif diff.last <= self.update_id:
                pass  # covered by the snapshot: the normal case, not counted
            elif diff.first > self.update_id + 1:
                event = self._lose(
                    "gap",
                    f"gap: diff U={diff.first} after update id {self.update_id}",
                    diff.recv_ns,
                    diff.ts_ns,
                )
                self._buffer_diff(diff)
            else:
                result = self._apply(diff)
                if isinstance(result, Resync):
                    event = result
                ts_ns = diff.ts_ns
        if self.state is SyncState.SYNCED:
            log.info("%s: book synced at update id %d", self.symbol, self.update_id)
            return BookUpdate(self.symbol, ts_ns, recv_ns, self.update_id, self.book)
        return event

    def _apply(self, diff: DepthDiff) -> BookUpdate | Resync:
        try:
            if diff.text is not None:
                skipped = self.book.apply_depth_json(diff.text, skip_off_grid=True)
            else:
                bids, asks = diff.levels()
                skipped = self.book.apply_decimal(bids, asks, skip_off_grid=True)
        except (FeedFormatError, OffGridError) as e:
            self.stats.errors["depth"] += 1
            log.error("%s: bad depth diff U=%d u=%d: %s", self.symbol, diff.first, diff.last, e)
            return self._lose("bad diff", f"bad diff u={diff.last}: {e}", diff.recv_ns, diff.ts_ns)
        return self._applied(diff, skipped)

    def _applied(self, diff: DepthDiff, skipped: int) -> BookUpdate | Resync:
        """The rest of :meth:`_apply` once the levels are in: off-grid log, crossed check."""
        if skipped:
            bids, asks = diff.levels()
            self._off_grid(skipped, bids, asks, f"diff u={diff.last}")
        if self.book.is_crossed():
            return self._lose(
                "crossed",
                f"book crossed after diff u={diff.last}: bid {self.book.best_bid()} "
                f"ask {self.book.best_ask()}",
                diff.recv_ns,
                diff.ts_ns,
            )
        self.update_id = diff.last
        self.stats.depth_applied += 1
        return BookUpdate(self.symbol, diff.ts_ns, diff.recv_ns, diff.last, self.book)

    def _off_grid(self, count: int, bids: list[Any], asks: list[Any], where: str) -> None:
        """Log levels left out because they are off the instrument's grid (rare: see below)."""
        self.stats.off_grid_levels += count
        tick, lot = self.instrument.tick_size, self.instrument.lot_size
        shown = []
        for side, levels in (("bid", bids), ("ask", asks)):
            for p, q in levels:
                if Decimal(p) % tick or Decimal(q) % lot:
                    shown.append(f"{side} {p} x {q}")
                    if len(shown) == 3:
                        break
        # A warning, not an error: the book stays exact for every level on the grid, and the
        # real recordings hold such levels (old levels from before a tick/step change).
        log.warning(
            "%s: %s: %d level(s) off the grid (tick %s, lot %s) left out of the book, e.g. %s",
            self.symbol,
            where,
            count,
            tick,
            lot,
            "; ".join(shown),
        )

    def _lose(self, kind: str, reason: str, recv_ns: int, ts_ns: int) -> Resync:
        self.state = SyncState.BUFFERING
        self.book.clear()
        self.update_id = 0
        self._buffer.clear()
        self._seen_first = None
        self._pending = None
        self.snapshot_requested = False
        self.stats.resyncs[kind] += 1
        log.warning("%s: resync (%s)", self.symbol, reason)
        return Resync(self.symbol, ts_ns, recv_ns, reason)


class FeedCore:
    """Routes raw combined-stream messages of several symbols to parsers and book syncs.

    ``on_message`` never raises on bad input: malformed JSON, unknown streams or symbols, bad
    fields and off-grid trade prices are logged and counted in ``stats.errors`` (by kind), and
    the message is skipped; depth trouble resyncs that symbol's book.
    """

    def __init__(
        self,
        instruments: Mapping[str, Instrument],
        max_buffer: int = 10_000,
        wall_offset_ns: int | None = None,
    ) -> None:
        self.instruments = dict(instruments)
        self.stats = FeedStats()
        self.books: dict[str, BookSync] = {
            sym: BookSync(inst, self.stats, max_buffer) for sym, inst in self.instruments.items()
        }
        # Trades and quotes convert with the books' Rust parsers (same grids, exact, fast).
        self._grids: dict[str, PriceGrid] = {s: b.book for s, b in self.books.items()}
        # recv_ns + offset = wall-clock ns (bookTicker has no event time of its own). Live,
        # recv_ns is time.monotonic_ns(); replaying a recording, it is already wall time (0).
        self._wall_offset = (
            time.time_ns() - time.monotonic_ns() if wall_offset_ns is None else wall_offset_ns
        )

    def snapshots_wanted(self) -> list[str]:
        """Symbols whose book needs a snapshot fetched now (marked as requested)."""
        out = []
        for sym, sync in self.books.items():
            if sync.wants_snapshot:
                sync.snapshot_requested = True
                out.append(sym)
        return out

    def on_message(self, text: str | bytes, recv_ns: int) -> MarketEvent | None:
        """One combined-stream message (``{"stream": ..., "data": {...}}``) read at ``recv_ns``.

        Fast path: the Rust step (``binance_step``) reads well-formed messages without
        building Python dicts; the next diff of a synced book is applied from the text itself
        in that same call, quotes and trades come back in ticks and lots. Anything it does not
        read, and every error, takes the reference path (``json.loads`` and the parsers of
        :mod:`~tradecore.marketdata.binance`), which also words the error messages; depth
        diffs it leaves alone go through :meth:`BookSync.on_depth_text`.
        """
        stats = self.stats
        stats.messages += 1
        if type(text) is str:
            head = binance_step(text, recv_ns, self.books)
            if type(head) is BookUpdate:
                # The next diff of a synced book, applied whole by binance_step (the common
                # case of on_depth_text): record its id and count it here.
                self.books[head.symbol].update_id = head.update_id
                stats.depth_applied += 1
                return head
            if head is not None:
                kind = head[0]
                if kind == 5:  # a bookTicker read on the symbol's grids
                    _, symbol, update_id, bid, bid_qty, ask, ask_qty = head
                    stats.quotes += 1
                    return Quote(
                        symbol,
                        recv_ns + self._wall_offset,
                        recv_ns,
                        update_id,
                        bid,
                        bid_qty,
                        ask,
                        ask_qty,
                    )
                if kind == 1:  # a depth diff the Rust step did not apply: the Python rules
                    _, symbol, event_ms, first, last, b_at, a_at = head
                    sync = self.books.get(symbol)
                    if sync is not None and first <= last:
                        return sync.on_depth_text(
                            first, last, event_ms * 1_000_000, recv_ns, text, b_at, a_at
                        )
                    return self._slow(text, recv_ns)
                event = self._fast(head, text, recv_ns)
                if event is not _SLOW:
                    return event  # type: ignore[return-value]
        return self._slow(text, recv_ns)

    def _fast(self, head: tuple[Any, ...], text: str, recv_ns: int) -> object:
        kind = head[0]
        if kind == 6:  # an aggTrade read on the symbol's grids
            _, symbol, trade_id, price, qty, trade_ms, buyer_is_maker = head
            self.stats.trades += 1
            return TradeTick(
                symbol,
                trade_ms * 1_000_000,
                recv_ns,
                price,
                qty,
                Side.SELL if buyer_is_maker else Side.BUY,
                trade_id,
            )
        if kind == 4:
            # binance_step applied the next diff whole and the book crossed: the rules of
            # on_depth_text (which would have applied it the same way) take it from there.
            _, symbol, event_ms, first, last, _, _ = head
            crossed = self.books[symbol]
            diff = DepthDiff(
                crossed.symbol, first, last, None, None, event_ms * 1_000_000, recv_ns, text
            )
            return crossed._applied(diff, 0)
        if kind == 1:
            _, symbol, event_ms, first, last, b_at, a_at = head
            sync = self.books.get(symbol)
            if sync is None or first > last:
                return _SLOW
            return sync.on_depth_text(first, last, event_ms * 1_000_000, recv_ns, text, b_at, a_at)
        if kind == 3:
            _, symbol, update_id, bid, bid_qty, ask, ask_qty = head
            grid = self._grids.get(symbol)
            if grid is None:
                return _SLOW
            try:
                quote = Quote(
                    symbol,
                    recv_ns + self._wall_offset,
                    recv_ns,
                    update_id,
                    grid.price_to_ticks(bid),
                    grid.qty_to_lots(bid_qty),
                    grid.price_to_ticks(ask),
                    grid.qty_to_lots(ask_qty),
                )
            except ValueError:
                return _SLOW
            self.stats.quotes += 1
            return quote
        if kind == 2:
            _, symbol, trade_id, price, qty, trade_ms, buyer_is_maker = head
            grid = self._grids.get(symbol)
            if grid is None:
                return _SLOW
            try:
                trade = TradeTick(
                    symbol,
                    trade_ms * 1_000_000,
                    recv_ns,
                    grid.price_to_ticks(price),
                    grid.qty_to_lots(qty),
                    Side.SELL if buyer_is_maker else Side.BUY,
                    trade_id,
                )
            except ValueError:
                return _SLOW
            self.stats.trades += 1
            return trade
        self.stats.ignored += 1
        return None

    def _slow(self, text: str | bytes, recv_ns: int) -> MarketEvent | None:
        """The reference path: ``json.loads`` and the Python parsers; logs and counts errors."""
        stats = self.stats
        try:
            msg = decode(text, "stream message")
            data = msg["data"]
            stream = msg["stream"]
            if type(stream) is not str or type(data) is not dict:
                raise FeedFormatError(
                    f"stream message: 'stream' must be a string and 'data' an object: "
                    f"{str(text)[:120]!r}"
                )
            kind = stream[stream.find("@") + 1 :]
            if kind.startswith("depth"):
                diff = parse_depth(data, recv_ns, stream)
                sync = self.books.get(diff.symbol)
                if sync is None:
                    raise UnknownSymbolError(f"{stream}: unknown symbol {diff.symbol!r}")
                return sync.on_diff(diff)
            if kind == "aggTrade":
                trade = parse_agg_trade(data, self._grids, recv_ns, stream)
                stats.trades += 1
                return trade
            if kind == "bookTicker":
                quote = parse_book_ticker(
                    data, self._grids, recv_ns, recv_ns + self._wall_offset, stream
                )
                stats.quotes += 1
                return quote
            stats.ignored += 1
            return None
        except FeedFormatError as e:
            stats.errors["format"] += 1
            log.error("bad message skipped: %s", e)
        except KeyError as e:
            if isinstance(e, UnknownSymbolError):
                stats.errors["unknown symbol"] += 1
                log.error("message skipped: %s", e)
            else:
                stats.errors["format"] += 1
                log.error("bad message skipped: missing field %s: %r", e, str(text)[:120])
        except TypeError:
            stats.errors["format"] += 1
            log.error("bad message skipped: not a combined-stream object: %r", str(text)[:120])
        except OffGridError as e:
            stats.errors["off grid"] += 1
            log.error("message skipped: %s", e)
        return None

    def on_snapshot(
        self, symbol: str, body: str | bytes | Mapping[str, Any], recv_ns: int
    ) -> MarketEvent | None:
        """The body of ``GET /api/v3/depth`` for ``symbol``."""
        sync = self.books.get(symbol)
        if sync is None:
            self.stats.errors["unknown symbol"] += 1
            log.error("snapshot for unknown symbol %r skipped", symbol)
            return None
        return sync.on_snapshot_body(body, recv_ns)

    def snapshot_failed(self, symbol: str, reason: str) -> None:
        """A snapshot fetch for ``symbol`` failed; it will be wanted again."""
        sync = self.books.get(symbol)
        if sync is not None:
            sync.snapshot_failed(reason)

    def on_disconnect(self, recv_ns: int) -> list[MarketEvent]:
        """The connection dropped: every synced book resyncs."""
        out: list[MarketEvent] = []
        for sync in self.books.values():
            event = sync.on_disconnect(recv_ns)
            if event is not None:
                out.append(event)
        return out

    def synced(self) -> Iterable[str]:
        """Symbols whose book is live."""
        return [s for s, b in self.books.items() if b.state is SyncState.SYNCED]


def _l2book_is_a_book_view(book: L2Book) -> BookView:
    """Static proof (mypy) that ``tradecore.L2Book`` satisfies ``BookView``."""
    return book
