"""Binance spot payloads: exchangeInfo, REST depth snapshots and combined-stream messages.

Owns the translation of Binance's JSON into tradecore's vocabulary, and nothing stateful:
``exchangeInfo`` becomes one :class:`~tradecore.instrument.Instrument` per symbol (tick size
from the ``PRICE_FILTER`` ``tickSize``, lot size from the ``LOT_SIZE`` ``stepSize``); an
``aggTrade`` becomes a :class:`~tradecore.marketdata.events.TradeTick`, a ``bookTicker`` a
:class:`~tradecore.marketdata.events.Quote`, and a ``depthUpdate`` a :class:`DepthDiff` that
the sync state machine (:mod:`tradecore.marketdata.sync`) applies to the Rust ``L2Book``.

Invariants: prices and quantities stay decimal strings until they are turned into integer
ticks and lots, exactly (``Instrument`` here, the Rust parser in ``L2Book.apply_decimal`` for
depth levels); nothing goes through a float. Every malformed input raises
:class:`~tradecore.marketdata.errors.FeedFormatError` naming the field (and the stream), an
unknown symbol :class:`~tradecore.marketdata.errors.UnknownSymbolError`, a value off the grid
:class:`tradecore.errors.OffGridError`.

Cost: these parsers are the reference path: one ``json.loads`` per message (about 3 us for a
200-byte depth message, most of the cost) and a handful of dict lookups. The feed's hot path
reads well-formed messages with the Rust scanner instead (see
:meth:`tradecore.marketdata.sync.FeedCore.on_message`) and falls back to these for anything
else, so every error message is worded here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from tradecore.enums import Side
from tradecore.errors import OffGridError
from tradecore.instrument import Instrument
from tradecore.marketdata.errors import FeedFormatError, UnknownSymbolError
from tradecore.marketdata.events import Quote, TradeTick

__all__ = [
    "LIVE_REST_URL",
    "LIVE_WS_URL",
    "DepthDiff",
    "PriceGrid",
    "Snapshot",
    "decode",
    "instruments_from_exchange_info",
    "parse_agg_trade",
    "parse_book_ticker",
    "parse_depth",
    "parse_snapshot",
    "stream_names",
]

LIVE_WS_URL = "wss://stream.binance.com:9443"
"""Binance spot market streams (used only with ``live=True``)."""
LIVE_REST_URL = "https://api.binance.com"
"""Binance spot REST API (used only with ``live=True``)."""

_MS = 1_000_000  # ns per ms


class PriceGrid(Protocol):
    """Exact decimal-string conversion: :class:`Instrument` and ``tradecore.L2Book`` (the
    Rust parser, about 20 times faster than ``Decimal``) both provide it."""

    def price_to_ticks(self, price: str, /) -> int: ...

    def qty_to_lots(self, qty: str, /) -> int: ...


def stream_names(
    symbols: Iterable[str], *, depth: bool = True, trades: bool = True, quotes: bool = True
) -> list[str]:
    """The combined-stream names for ``symbols``: ``<sym>@depth@100ms``, ``@aggTrade``,
    ``@bookTicker`` (lowercase, as Binance requires)."""
    names: list[str] = []
    for sym in symbols:
        s = sym.lower()
        if depth:
            names.append(f"{s}@depth@100ms")
        if trades:
            names.append(f"{s}@aggTrade")
        if quotes:
            names.append(f"{s}@bookTicker")
    return names


def decode(text: str | bytes, where: str = "message") -> Any:
    """``json.loads`` with a :class:`FeedFormatError` that says where the JSON broke."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        shown = text[:120] if isinstance(text, str) else text[:120].decode("utf-8", "replace")
        raise FeedFormatError(
            f"{where}: malformed JSON at line {e.lineno} column {e.colno} ({e.msg}): {shown!r}"
        ) from None
    except (UnicodeDecodeError, TypeError, ValueError) as e:
        raise FeedFormatError(f"{where}: not JSON text ({e})") from None


def _field(data: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    try:
        value = data[key]
    except KeyError:
        raise FeedFormatError(f"{where}: missing field {key!r}") from None
    except TypeError:
        raise FeedFormatError(
            f"{where}: expected a JSON object, got {type(data).__name__}"
        ) from None
    if type(value) is not kind:
        raise FeedFormatError(
            f"{where}: field {key!r} must be {kind.__name__}, got {type(value).__name__} "
            f"({value!r})"
        )
    return value


def _uint(data: Mapping[str, Any], key: str, where: str) -> int:
    value: int = _field(data, key, int, where)
    if value < 0:
        raise FeedFormatError(f"{where}: field {key!r} must not be negative, got {value}")
    return value


def _instrument(instruments: Mapping[str, PriceGrid], symbol: str, where: str) -> PriceGrid:
    inst = instruments.get(symbol)
    if inst is None:
        raise UnknownSymbolError(f"{where}: unknown symbol {symbol!r}")
    return inst


def _ticks(inst: PriceGrid, value: str, what: str, where: str) -> int:
    try:
        return inst.price_to_ticks(value)
    except OffGridError as e:
        raise OffGridError(f"{where}: {what}", e.value, e.grid) from None
    except (ValueError, TypeError) as e:
        raise FeedFormatError(f"{where}: {what} {value!r}: {e}") from None


def _lots(inst: PriceGrid, value: str, what: str, where: str) -> int:
    try:
        return inst.qty_to_lots(value)
    except OffGridError as e:
        raise OffGridError(f"{where}: {what}", e.value, e.grid) from None
    except (ValueError, TypeError) as e:
        raise FeedFormatError(f"{where}: {what} {value!r}: {e}") from None


# --- exchangeInfo ----------------------------------------------------------------------------


def instruments_from_exchange_info(
    info: Mapping[str, Any] | str | bytes, symbols: Iterable[str] | None = None
) -> dict[str, Instrument]:
    """One :class:`Instrument` per symbol of a ``GET /api/v3/exchangeInfo`` response (tick and
    lot size from PRICE_FILTER / LOT_SIZE, ``quote_asset`` from ``quoteAsset``).

    With ``symbols``, only those (any case) and each must be present
    (:class:`UnknownSymbolError` otherwise); without, every symbol whose filters give a positive
    tick and step (Binance lists a few with ``tickSize`` 0, which cannot be traded on a grid).
    """
    data = info if isinstance(info, Mapping) else decode(info, "exchangeInfo")
    entries = _field(data, "symbols", list, "exchangeInfo")
    wanted = None if symbols is None else {s.upper() for s in symbols}
    out: dict[str, Instrument] = {}
    for i, entry in enumerate(entries):
        where = f"exchangeInfo symbols[{i}]"
        name = _field(entry, "symbol", str, where)
        if wanted is not None and name not in wanted:
            continue
        where = f"exchangeInfo {name}"
        filters = _field(entry, "filters", list, where)
        tick = step = None
        for f in filters:
            kind = f.get("filterType") if isinstance(f, dict) else None
            if kind == "PRICE_FILTER":
                tick = _field(f, "tickSize", str, f"{where} PRICE_FILTER")
            elif kind == "LOT_SIZE":
                step = _field(f, "stepSize", str, f"{where} LOT_SIZE")
        if tick is None or step is None:
            missing = "PRICE_FILTER" if tick is None else "LOT_SIZE"
            if wanted is None:
                continue
            raise FeedFormatError(f"{where}: no {missing} filter")
        quote = entry.get("quoteAsset", "")
        if not isinstance(quote, str):
            raise FeedFormatError(f"{where}: quoteAsset must be a string, got {quote!r}")
        try:
            out[name] = Instrument(name, tick_size=tick, lot_size=step, quote_asset=quote)
        except ValueError as e:
            if wanted is None:
                continue
            raise FeedFormatError(f"{where}: tickSize {tick!r} / stepSize {step!r}: {e}") from None
    if wanted is not None:
        absent = sorted(wanted - out.keys())
        if absent:
            raise UnknownSymbolError(f"exchangeInfo has no symbol {', '.join(absent)}")
    return out


# --- REST depth snapshot ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A ``GET /api/v3/depth`` response: levels stay decimal strings for ``L2Book``."""

    symbol: str
    last_update_id: int
    bids: list[list[str]]
    asks: list[list[str]]


def parse_snapshot(symbol: str, body: Mapping[str, Any] | str | bytes) -> Snapshot:
    """A depth snapshot of ``symbol``; the level strings are checked by the book."""
    where = f"depth snapshot {symbol}"
    data = body if isinstance(body, Mapping) else decode(body, where)
    last = _uint(data, "lastUpdateId", where)
    bids = _field(data, "bids", list, where)
    asks = _field(data, "asks", list, where)
    return Snapshot(symbol, last, bids, asks)


# --- combined-stream messages ----------------------------------------------------------------


class DepthDiff:
    """One ``depthUpdate`` (diff depth) message: update ids ``[first, last]`` = ``[U, u]``.

    Its levels are either the decoded ``bids``/``asks`` lists or, on the fast path, the whole
    message ``text`` that ``L2Book.apply_depth_json`` reads them from.
    """

    __slots__ = ("asks", "bids", "first", "last", "recv_ns", "symbol", "text", "ts_ns")

    def __init__(
        self,
        symbol: str,
        first: int,
        last: int,
        bids: list[Any] | None,
        asks: list[Any] | None,
        ts_ns: int,
        recv_ns: int,
        text: str | None = None,
    ) -> None:
        self.symbol = symbol
        self.first = first
        self.last = last
        self.bids = bids
        self.asks = asks
        self.ts_ns = ts_ns
        self.recv_ns = recv_ns
        self.text = text

    def levels(self) -> tuple[list[Any], list[Any]]:
        """``(bids, asks)`` as decoded lists (decodes ``text`` when needed: slow, for errors)."""
        if self.bids is not None and self.asks is not None:
            return self.bids, self.asks
        data = json.loads(self.text or "{}").get("data", {})
        return list(data.get("b", [])), list(data.get("a", []))

    def __repr__(self) -> str:
        bids, asks = self.levels()
        return (
            f"DepthDiff({self.symbol!r}, U={self.first}, u={self.last}, "
            f"bids={len(bids)}, asks={len(asks)})"
        )


def parse_depth(data: Mapping[str, Any], recv_ns: int, where: str = "depthUpdate") -> DepthDiff:
    """A ``depthUpdate`` payload (the ``data`` of a combined-stream message)."""
    symbol = _field(data, "s", str, where)
    first = _uint(data, "U", where)
    last = _uint(data, "u", where)
    if first > last:
        raise FeedFormatError(f"{where} {symbol}: U={first} is after u={last}")
    bids = _field(data, "b", list, where)
    asks = _field(data, "a", list, where)
    event_ms = _uint(data, "E", where)
    return DepthDiff(symbol, first, last, bids, asks, event_ms * _MS, recv_ns)


def parse_agg_trade(
    data: Mapping[str, Any],
    instruments: Mapping[str, PriceGrid],
    recv_ns: int,
    where: str = "aggTrade",
) -> TradeTick:
    """An ``aggTrade`` payload; ``m`` (buyer is maker) means the seller took liquidity."""
    symbol = _field(data, "s", str, where)
    inst = _instrument(instruments, symbol, where)
    price = _ticks(inst, _field(data, "p", str, where), "price", f"{where} {symbol}")
    qty = _lots(inst, _field(data, "q", str, where), "qty", f"{where} {symbol}")
    buyer_is_maker = _field(data, "m", bool, where)
    return TradeTick(
        symbol=symbol,
        ts_ns=_uint(data, "T", where) * _MS,
        recv_ns=recv_ns,
        price=price,
        qty=qty,
        aggressor=Side.SELL if buyer_is_maker else Side.BUY,
        trade_id=_uint(data, "a", where),
    )


def parse_book_ticker(
    data: Mapping[str, Any],
    instruments: Mapping[str, PriceGrid],
    recv_ns: int,
    ts_ns: int,
    where: str = "bookTicker",
) -> Quote:
    """A ``bookTicker`` payload (spot has no event time: ``ts_ns`` is the receive wall time)."""
    symbol = _field(data, "s", str, where)
    inst = _instrument(instruments, symbol, where)
    w = f"{where} {symbol}"
    return Quote(
        symbol=symbol,
        ts_ns=ts_ns,
        recv_ns=recv_ns,
        update_id=_uint(data, "u", where),
        bid_price=_ticks(inst, _field(data, "b", str, where), "bid price", w),
        bid_qty=_lots(inst, _field(data, "B", str, where), "bid qty", w),
        ask_price=_ticks(inst, _field(data, "a", str, where), "ask price", w),
        ask_qty=_lots(inst, _field(data, "A", str, where), "ask qty", w),
    )
