"""Binance recordings as columnar tables: depth diffs, snapshots, aggTrades and bookTicker.

Owns :func:`load_binance`, which reads a recording (a cryptofeed sample directory, or the
node's own ``*.jsonl.gz`` recorder output) with the market-data layer's readers
(:func:`tradecore.marketdata.replay.load_any`) and payload parsers
(:mod:`tradecore.marketdata.binance`), and turns it into one set of tables per symbol
(kinds ``depth``, ``snapshot``, ``trades``, ``quotes`` of :mod:`tradecore.data.schema`) in
integer ticks and lots of the recorded ``exchangeInfo``. Nothing is synced or dropped here:
every diff is kept with its ``first_id``/``last_id`` so a replay runs the sync procedure itself
(the recorded snapshot and the diffs before it are both kept).

``ts_ns`` is the receive time (the recording's clock: the order a replay must follow);
``event_ns`` the exchange's event time (``E`` for depth, ``T`` for trades; bookTicker has none,
so it is the receive time).

Invariants: a message that cannot be parsed (bad JSON, a missing field, a price off the grid,
an unknown symbol) raises :class:`~tradecore.data.errors.DataFormatError` naming the file and
the message number; streams other than depth, aggTrade and bookTicker (klines) are counted in
:attr:`BinanceTables.ignored` and skipped. A recording without ``exchangeInfo`` needs
``instruments``.

Cost: the whole recording is in memory (the recordings are small: the market-data reader loads
them whole); one ``json.loads`` per message plus an exact decimal conversion per level.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tradecore.data.errors import DataFormatError
from tradecore.data.schema import Chunk, kind_named
from tradecore.errors import OffGridError
from tradecore.instrument import Instrument
from tradecore.marketdata.binance import (
    decode,
    instruments_from_exchange_info,
    parse_agg_trade,
    parse_book_ticker,
    parse_depth,
    parse_snapshot,
)
from tradecore.marketdata.errors import FeedFormatError

__all__ = ["BinanceTables", "load_binance"]


@dataclass
class _Cols:
    rows: dict[str, list[int]]

    @classmethod
    def of(cls, kind: str) -> _Cols:
        return cls({c: [] for c in kind_named(kind).names})

    def add(self, *values: int) -> None:
        for col, v in zip(self.rows.values(), values, strict=True):
            col.append(v)

    def chunk(self, kind: str) -> Chunk:
        k = kind_named(kind)
        return {name: np.asarray(self.rows[name], dtype) for name, dtype in k.columns}


@dataclass
class BinanceTables:
    """Per symbol, the four tables of a recording, plus the instruments and what was skipped."""

    source: str
    instruments: dict[str, Instrument]
    tables: dict[str, dict[str, Chunk]] = field(default_factory=dict)
    ignored: int = 0
    off_grid: int = 0

    def symbols(self) -> list[str]:
        return sorted(self.tables)


class _OffGrid:
    """Counts values off the instrument's grid; raises unless ``skip``."""

    def __init__(self, skip: bool) -> None:
        self.skip = skip
        self.count = 0


def _levels(inst: Instrument, levels: Any, what: str, off: _OffGrid) -> list[tuple[int, int]]:
    if not isinstance(levels, list):
        raise FeedFormatError(f"{what}: levels must be a list")
    out = []
    for lv in levels:
        if not isinstance(lv, list) or len(lv) < 2:
            raise FeedFormatError(f"{what}: level {lv!r} is not [price, qty]")
        try:
            out.append((inst.price_to_ticks(str(lv[0])), inst.qty_to_lots(str(lv[1]))))
        except OffGridError:
            if not off.skip:
                raise
            off.count += 1
    return out


def load_binance(
    path: str | Path,
    instruments: Mapping[str, Instrument] | None = None,
    *,
    skip_off_grid: bool = True,
) -> BinanceTables:
    """Load a Binance recording (directory or ``.jsonl.gz``) as per-symbol tables.

    Real recordings hold a few quantities off the ``LOT_SIZE`` grid (snapshot levels such as
    ``11979.3`` with step ``1``); like the node's book sync, those levels (and trades or
    quotes with such a value) are left out and counted in :attr:`BinanceTables.off_grid`.
    ``skip_off_grid=False`` makes them errors instead.
    """
    from tradecore.marketdata.replay import load_any

    src = Path(path)
    try:
        rec = load_any(src)
    except FeedFormatError as exc:
        raise DataFormatError(src, None, str(exc)) from None
    if instruments is None:
        if rec.exchange_info is None:
            raise DataFormatError(
                src, None, "the recording has no exchangeInfo: pass instruments= explicitly"
            )
        try:
            insts = instruments_from_exchange_info(rec.exchange_info, rec.symbols)
        except (FeedFormatError, KeyError) as exc:
            raise DataFormatError(src, None, f"exchangeInfo: {exc}") from None
    else:
        insts = dict(instruments)
    out = BinanceTables(str(src), insts)
    off = _OffGrid(skip_off_grid)
    cols: dict[str, dict[str, _Cols]] = {
        s: {k: _Cols.of(k) for k in ("depth", "snapshot", "trades", "quotes")} for s in insts
    }
    for sym, snaps in sorted(rec.snapshots.items()):
        if sym not in insts:
            continue
        for n, (t, body) in enumerate(snaps, 1):
            try:
                snap = parse_snapshot(sym, body)
                c = cols[sym]["snapshot"]
                for side, levels in ((1, snap.bids), (-1, snap.asks)):
                    for px, qty in _levels(insts[sym], levels, f"snapshot {sym}", off):
                        c.add(t, snap.last_update_id, side, px, qty)
            except (FeedFormatError, OffGridError, ValueError) as exc:
                raise DataFormatError(src, n, f"depth snapshot {sym}: {exc}", "snapshot") from None
    for n, (t, text) in enumerate(rec.messages, 1):
        try:
            _message(text, t, insts, cols, off)
        except OffGridError as exc:
            if not off.skip:
                raise DataFormatError(src, n, str(exc), "message") from None
            off.count += 1
        except (FeedFormatError, ValueError, TypeError, KeyError) as exc:
            raise DataFormatError(src, n, str(exc).strip("\"'"), "message") from None
        except _Ignored:
            out.ignored += 1
    out.off_grid = off.count
    for sym, kinds in cols.items():
        out.tables[sym] = {k: c.chunk(k) for k, c in kinds.items()}
    return out


class _Ignored(Exception):
    """A stream this loader does not keep (klines...)."""


def _message(
    text: str,
    t: int,
    insts: Mapping[str, Instrument],
    cols: dict[str, dict[str, _Cols]],
    off: _OffGrid,
) -> None:
    msg = decode(text, "stream message")
    if not isinstance(msg, dict) or "stream" not in msg or "data" not in msg:
        raise FeedFormatError("not a combined-stream object {stream, data}")
    stream, data = msg["stream"], msg["data"]
    if not isinstance(stream, str) or not isinstance(data, dict):
        raise FeedFormatError("'stream' must be a string and 'data' an object")
    kind = stream[stream.find("@") + 1 :]
    if kind.startswith("depth"):
        diff = parse_depth(data, t, stream)
        inst = insts.get(diff.symbol)
        if inst is None:
            raise FeedFormatError(f"{stream}: unknown symbol {diff.symbol!r}")
        c = cols[diff.symbol]["depth"]
        for side, levels in ((1, diff.bids), (-1, diff.asks)):
            for px, qty in _levels(inst, levels, stream, off):
                c.add(t, diff.ts_ns, diff.first, diff.last, side, px, qty)
    elif kind == "aggTrade":
        tr = parse_agg_trade(data, insts, t, stream)
        cols[tr.symbol]["trades"].add(
            t, tr.ts_ns, tr.trade_id, tr.price, tr.qty, 1 if tr.aggressor.value == "BUY" else -1
        )
    elif kind == "bookTicker":
        q = parse_book_ticker(data, insts, t, t, stream)
        cols[q.symbol]["quotes"].add(
            t, t, q.update_id, q.bid_price, q.bid_qty, q.ask_price, q.ask_qty
        )
    else:
        raise _Ignored(kind)
