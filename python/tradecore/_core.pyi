"""Type stubs of the compiled module ``tradecore._core`` (PyO3; checked by ``mypy.stubtest``).

Import these names from ``tradecore``, not from here.
"""

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, Final, Literal, final

import numpy as np
import numpy.typing as npt
from typing_extensions import disjoint_base

from tradecore.enums import EventKind, OrderType, Reason, Side, Stp, TimeInForce

__all__ = [
    "EVENT_DTYPE",
    "OP_CANCEL",
    "OP_DTYPE",
    "OP_MODIFY",
    "OP_SUBMIT",
    "Event",
    "OrderBook",
    "_panic_for_tests",
]

_SideArg = Side | Literal["BUY", "SELL"]
_OrderTypeArg = OrderType | Literal["LIMIT", "MARKET"]
_TifArg = TimeInForce | Literal["GTC", "IOC", "FOK"]
_StpArg = Stp | Literal["NONE", "CANCEL_NEWEST", "CANCEL_OLDEST", "CANCEL_BOTH"]
_KindArg = EventKind | Literal["ACCEPTED", "REJECTED", "FILL", "CANCELLED", "REPLACED"]
_ReasonArg = (
    Reason
    | Literal[
        "",
        "USER",
        "IOC_REMAINDER",
        "FOK_UNFILLED",
        "SELF_TRADE",
        "INVALID_QTY",
        "INVALID_PRICE",
        "DUPLICATE_ORDER_ID",
        "INVALID_ORDER",
        "WOULD_CROSS",
        "BOOK_FULL",
        "UNKNOWN_ORDER",
        "MASS_CANCEL",
        "KILL_SWITCH",
        "RATE_LIMITED",
        "NOT_LOGGED_IN",
        "UNKNOWN_SYMBOL",
        "PRICE_OUT_OF_BAND",
        "QTY_TOO_LARGE",
        "MALFORMED",
        "DISCONNECT",
    ]
)
_Order = tuple[int, int, int, int]
_Level = tuple[int, int, int]

OP_DTYPE: np.dtype[np.void]
"""Record layout of one operation for :meth:`OrderBook.process` (48 bytes, little-endian):
order_id u8 @0, price i8 @8, qty u8 @16, timestamp u8 @24, account u4 @32, op u1 @36,
side u1 @37, order_type u1 @38, tif u1 @39, stp u1 @40, post_only u1 @41. Codes are the enum
``code``s; for modify rows price/qty are the new price and new remaining quantity."""

EVENT_DTYPE: np.dtype[np.void]
"""Record layout of one event returned by :meth:`OrderBook.process` (56 bytes): order_id u8 @0,
other_id u8 @8, price i8 @16, qty u8 @24, leaves u8 @32, other_leaves u8 @40,
op_index u4 @48 (row of the operation that produced it), kind u1 @52, reason u1 @53."""

OP_SUBMIT: Final[int]
"""``op`` code of a submit row (0)."""
OP_CANCEL: Final[int]
"""``op`` code of a cancel row (1)."""
OP_MODIFY: Final[int]
"""``op`` code of a modify row (2)."""

@final
class Event:
    """One thing that happened in the book (immutable).

    Field meanings per kind: ACCEPTED (price, qty = original qty, leaves = qty); FILL
    (order_id = taker, other_id = maker, price = maker price, qty = traded, leaves = taker
    remaining, other_leaves = maker remaining); CANCELLED (qty = quantity cancelled); REJECTED
    (the request's price and qty); REPLACED (new price, qty = leaves = new remaining quantity).
    Two events are equal when all eight fields are equal.
    """

    def __new__(
        cls,
        kind: _KindArg,
        reason: _ReasonArg,
        order_id: int,
        other_id: int = 0,
        price: int = 0,
        qty: int = 0,
        leaves: int = 0,
        other_leaves: int = 0,
    ) -> Event:
        """Build an event (for tests and adapters); validates every field like the book does."""

    @property
    def kind(self) -> EventKind:
        """What happened; compares equal to the member and to its name (``"FILL"``)."""

    @property
    def reason(self) -> Reason:
        """Why (rejects and cancels); ``Reason.NONE``, equal to ``""``, otherwise."""

    @property
    def order_id(self) -> int:
        """The order the event is about (the taker, for fills)."""

    @property
    def other_id(self) -> int:
        """The maker, for fills; 0 otherwise."""

    @property
    def price(self) -> int:
        """Price in ticks (the maker's price for fills; 0 for market orders)."""

    @property
    def qty(self) -> int:
        """Quantity in lots; its meaning depends on ``kind``."""

    @property
    def leaves(self) -> int:
        """Remaining quantity of ``order_id`` after the event."""

    @property
    def other_leaves(self) -> int:
        """Remaining quantity of ``other_id`` after a fill; 0 otherwise."""

    def as_tuple(self) -> tuple[str, str, int, int, int, int, int, int]:
        """``(kind, reason, order_id, other_id, price, qty, leaves, other_leaves)``.

        ``kind`` and ``reason`` are plain ``str`` names here.
        """

    def __reduce__(self) -> tuple[type[Event], tuple[str, str, int, int, int, int, int, int]]:
        """Pickle support."""

    def __eq__(self, value: object, /) -> bool: ...
    def __ne__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@disjoint_base
class OrderBook:
    """An L3 limit order book with price-time priority matching, for one instrument.

    Prices are int ticks, quantities int lots. Every mutating call returns the list of
    :class:`Event` it caused; business rejections are REJECTED events, never exceptions. Enum
    arguments take the enum member or its name as a str. Wrong types raise ``TypeError``,
    impossible values (negative ids or quantities, values above 2**64 - 1, unknown enum names)
    raise ``ValueError`` naming the argument. The class may be subclassed.
    """

    def __new__(cls, capacity: int = 1000000) -> OrderBook:
        """A book with room for ``capacity`` resting orders (1 ..= 4,294,967,294).

        All memory for the orders is taken here (about ``bytes_per_order`` bytes a slot); an
        impossible amount raises ``MemoryError``.
        """

    def submit(
        self,
        order_id: int,
        account: int,
        side: _SideArg,
        price: int,
        qty: int,
        order_type: _OrderTypeArg = "LIMIT",
        tif: _TifArg = "GTC",
        stp: _StpArg = "CANCEL_NEWEST",
        post_only: bool = False,
        timestamp: int = 0,
    ) -> list[Event]:
        """Submit a new order (order_id > 0, unique among resting orders; account u32).

        Yields ACCEPTED, then one FILL per match (best price first, FIFO within a price, at the
        maker's price), self-trade-prevention cancels, and an IOC_REMAINDER cancel for IOC and
        MARKET remainders; a GTC limit remainder rests. FOK either fills completely or is
        cancelled (FOK_UNFILLED) without touching the book. Or a single REJECTED event.
        ``price`` is ignored (reported as 0) for MARKET orders.
        """

    def cancel(self, order_id: int) -> list[Event]:
        """Cancel a resting order: CANCELLED (qty = its leaves, reason USER), or REJECTED
        (UNKNOWN_ORDER)."""

    def modify(self, order_id: int, new_price: int, new_qty: int) -> list[Event]:
        """Set a resting order's price and remaining quantity.

        Same price and ``new_qty`` <= leaves: reduced in place, keeps its queue position, one
        REPLACED. Otherwise it loses priority: REPLACED, then any FILLs as a GTC limit at the
        new price (a post-only order that would cross is REJECTED with WOULD_CROSS and stays).
        """

    def best_bid(self) -> tuple[int, int] | None:
        """``(price, total qty)`` of the best bid, or None."""

    def best_ask(self) -> tuple[int, int] | None:
        """``(price, total qty)`` of the best ask, or None."""

    def depth(self, n: int = 10) -> tuple[list[_Level], list[_Level]]:
        """``(bids, asks)``: up to ``n`` levels a side, best first, as (price, qty, count)."""

    def orders(self, side: _SideArg, price: int | None = None) -> list[_Order]:
        """Resting orders of ``side`` as (order_id, account, price, leaves) in priority order;
        with ``price``, only that level."""

    def order(self, order_id: int) -> _Order | None:
        """One resting order as (order_id, account, price, leaves), or None."""

    def __len__(self) -> int:
        """Number of resting orders."""

    @property
    def capacity(self) -> int:
        """Number of order slots."""

    @property
    def max_qty(self) -> int:
        """Largest order quantity accepted, ``(2**64 - 1) // capacity``.

        A larger submit or modify is rejected with INVALID_QTY; the bound keeps every level
        and book total inside an unsigned 64-bit integer.
        """

    @property
    def bytes_per_order(self) -> float:
        """Memory held for orders divided by capacity: bytes per order slot."""

    def check_invariants(self) -> None:
        """Check every structural invariant (O(n)); raise
        :class:`tradecore.errors.InvariantError` naming the first one broken."""

    def process(self, ops: npt.NDArray[Any]) -> npt.NDArray[np.void]:
        """Apply a 1-D C-contiguous array of :data:`OP_DTYPE` rows in order, with the GIL
        released, and return the events as an array of :data:`EVENT_DTYPE`.

        The events are exactly those the per-call methods give for the same operations. Every
        row is validated first: an invalid code raises ``ValueError`` naming the row and field,
        and then no row is applied.
        """

def _panic_for_tests(message: str) -> None:
    """Panic inside the Rust panic guard (tests use it to prove the mapping to InternalError)."""

# --- L2Book (crates/py/src/l2.rs) ---

__all__ += ["L2Book", "binance_scan"]

_LevelPair = tuple[int, int]

@final
class L2Book:
    """The aggregated (price -> quantity) book of one instrument, for market data.

    Prices are int ticks and quantities int lots. Levels are absolute: setting a level to
    quantity 0 removes it, and removing a level that is not there is a no-op (normal for
    exchange feeds). With ``tick_size`` and ``lot_size`` the book also takes the exchange's
    decimal strings (Binance ``b``/``a`` arrays, REST snapshots) and converts them exactly.
    Calls that take lists are all or nothing: on any bad level nothing is applied. Satisfies
    :class:`tradecore.marketdata.events.BookView`.
    """

    def __new__(
        cls, tick_size: str | Decimal | None = None, lot_size: str | Decimal | None = None
    ) -> L2Book:
        """An empty book; give both grids (positive plain decimals) or neither."""

    @property
    def tick_size(self) -> str | None:
        """The tick size as a normalized decimal string (``"0.0001"``), or None."""

    @property
    def lot_size(self) -> str | None:
        """The lot size as a normalized decimal string, or None."""

    def set(self, side: _SideArg, price: int, qty: int) -> None:
        """Set the absolute quantity of one level; 0 removes it."""

    def apply(self, bids: Iterable[Sequence[int]], asks: Iterable[Sequence[int]]) -> None:
        """Apply ``(price, qty)`` integer pairs to each side; all or nothing."""

    def apply_decimal(
        self,
        bids: Iterable[Sequence[str]],
        asks: Iterable[Sequence[str]],
        skip_off_grid: bool = False,
    ) -> int:
        """Apply ``[price, qty]`` decimal strings to each side (a Binance depth message's
        ``b`` and ``a``); all or nothing. Returns the number of levels left out (0 unless
        ``skip_off_grid``).

        Raises :class:`tradecore.errors.OffGridError` for a value off the tick or lot grid
        (unless ``skip_off_grid``: then that level is left out and counted) and
        :class:`tradecore.marketdata.errors.FeedFormatError` for anything that is not a plain
        decimal string (or is out of range); the message names the level (``bids[3] price``).
        """

    def apply_depth_json(self, text: str, skip_off_grid: bool = False) -> int:
        """Apply the ``b``/``a`` levels of a whole Binance combined-stream depth message, read
        from its JSON text in Rust (no Python objects per level); all or nothing, errors as in
        :meth:`apply_decimal`. ``text`` must be a message :func:`binance_scan` reads as depth
        (otherwise :class:`~tradecore.marketdata.errors.FeedFormatError`).
        """

    def apply_depth_at(
        self, text: str, bids_at: int, asks_at: int, skip_off_grid: bool = False
    ) -> int:
        """:meth:`apply_depth_json` without scanning the message again: ``bids_at`` and
        ``asks_at`` are the byte offsets of its ``b`` and ``a`` arrays, the last two items of
        the tuple :func:`binance_scan` returned for this very ``text``. Same results and errors
        as :meth:`apply_depth_json`. Other offsets read whatever ``[["p","q"], ...]`` array
        starts there or raise :class:`~tradecore.marketdata.errors.FeedFormatError`; never a
        half-applied message.
        """

    def replace_decimal(
        self,
        bids: Iterable[Sequence[str]],
        asks: Iterable[Sequence[str]],
        skip_off_grid: bool = False,
    ) -> int:
        """Replace the whole book with a snapshot's decimal levels; all or nothing, like
        :meth:`apply_decimal`. The same book as clearing it and applying the levels one by one
        in the order listed (the last level listed at a price wins, a zero quantity removes),
        built with one sort per side: O(n log n) in whatever order the levels come."""

    def price_to_ticks(self, price: str) -> int:
        """A decimal price string in ticks of this book's grid, exactly (errors as in
        :meth:`apply_decimal`, naming the value ``price``)."""

    def qty_to_lots(self, qty: str) -> int:
        """A decimal quantity string in lots of this book's grid, exactly."""

    def best_bid(self) -> _LevelPair | None:
        """``(price, qty)`` of the best bid, or None."""

    def best_ask(self) -> _LevelPair | None:
        """``(price, qty)`` of the best ask, or None."""

    def touch(self) -> tuple[int, int] | None:
        """``(best bid price, best ask price)``, or None unless both sides have a level."""

    def depth(self, n: int = 10) -> tuple[list[_LevelPair], list[_LevelPair]]:
        """``(bids, asks)``: up to ``n`` levels a side, best first, as (price, qty)."""

    def top_stats(
        self, weights: tuple[float, ...] | list[float]
    ) -> tuple[int, int, int, int, int, int, float, float] | None:
        """The touch and the top-N sums in one call, for ``BookFeatures.update``.

        ``(bid, bid_qty, ask, ask_qty, sum_bid, sum_ask, weighted_bid, weighted_ask)`` over the
        best ``k = len(weights)`` levels of each side (fewer where a side has fewer): exact int
        sums of the quantities, and ``weights[i] * qty_i`` added best first from 0.0 as floats,
        bit for bit the same as that Python loop over ``depth(k)``. None when ``weights`` or a
        side is empty. ``weights`` must hold floats (``TypeError`` otherwise).
        """

    def qty_at(self, side: _SideArg, price: int) -> int:
        """Quantity at ``price`` on ``side``; 0 when there is no level."""

    def levels(self, side: _SideArg) -> int:
        """Number of levels on ``side``."""

    def is_crossed(self) -> bool:
        """True if best bid >= best ask (never after a whole valid message)."""

    def clear(self) -> None:
        """Remove every level."""

    def __len__(self) -> int:
        """Number of levels on both sides."""

def binance_scan(text: str) -> tuple[Any, ...] | None:
    """The fast path's reading of one Binance combined-stream message, without ``json.loads``.

    Returns ``(1, symbol, E, U, u, bids_at, asks_at)`` for a depth diff (the last two: UTF-8
    byte offsets of the ``b`` and ``a`` arrays in ``text``, for :meth:`L2Book.apply_depth_at`),
    ``(2, symbol, aggId, p, q, T, m)`` for an aggTrade, ``(3, symbol, u, b, B, a, A)`` for a
    bookTicker (decimal fields as the original strings), ``(0, stream)`` for any other stream;
    or ``None`` when the message is not one it reads with certainty (malformed JSON, escapes in
    strings, a float or negative id, a depth level that is not a pair of plain strings, ...):
    the caller then uses ``json.loads``.
    Repeated keys: the last one wins, as in ``json``.
    """

__all__ += ["binance_step"]

def binance_step(text: str, recv_ns: int, syncs: dict[str, Any]) -> Any:
    """:func:`binance_scan`, plus the common case of a depth diff done whole in Rust.

    ``syncs`` maps symbols to their ``tradecore.marketdata.sync.BookSync``. When ``text`` is a
    depth diff of a symbol whose sync is ``SYNCED`` and it is the next diff
    (``U <= update_id + 1 <= u``), with every level on the grid and the book not crossed after
    it: the levels are applied and ``BookUpdate(symbol, E * 10**6, recv_ns, u, book)`` is
    returned (the caller then sets the sync's ``update_id`` to ``u`` and counts it). If
    the book is crossed after such a diff, the diff stays applied and the tuple's kind is 4
    instead of 1 (the caller's rules take it from there). A bookTicker or aggTrade whose
    decimals read exactly on the grids of its symbol's book comes as
    ``(5, symbol, u, bid_ticks, bid_lots, ask_ticks, ask_lots)`` or
    ``(6, symbol, aggId, price_ticks, qty_lots, T, m)`` (what ``price_to_ticks`` and
    ``qty_to_lots`` give). Anything else changes nothing and returns what
    :func:`binance_scan` returns.
    """

# --- features (crates/py/src/features.rs) ---

__all__ += ["BookFeaturesCore"]

@disjoint_base
class BookFeaturesCore:
    """State and per-update arithmetic of :class:`tradecore.strategy.features.BookFeatures`
    (which subclasses it and checks the arguments); every attribute is read-only."""

    def __new__(
        cls, levels: int, depth_decay: float, vol_alpha: float, momentum_windows: tuple[int, ...]
    ) -> BookFeaturesCore: ...
    def update(self, book: Any) -> bool:
        """Recompute from ``book`` (an ``L2Book`` read in Rust, or any ``BookView`` through
        :func:`tradecore.strategy.features.top_stats`); returns ``valid``."""

    def update_top(self, book: Any) -> tuple[int, int, int, float, float, float] | None:
        """``update(book)``, then ``(bid, ask, spread, imbalance_1, imbalance_n,
        depth_imbalance)`` when the book is valid, else None."""

    def reset(self) -> None:
        """The book was lost: no return across the gap, ``valid`` False until the next update."""

    @property
    def valid(self) -> bool: ...
    @property
    def updates(self) -> int: ...
    @property
    def bid(self) -> int: ...
    @property
    def ask(self) -> int: ...
    @property
    def bid_qty(self) -> int: ...
    @property
    def ask_qty(self) -> int: ...
    @property
    def mid2(self) -> int: ...
    @property
    def spread(self) -> int: ...
    @property
    def mid(self) -> float: ...
    @property
    def microprice(self) -> float: ...
    @property
    def imbalance_1(self) -> float: ...
    @property
    def imbalance_n(self) -> float: ...
    @property
    def depth_imbalance(self) -> float: ...
    @property
    def ret(self) -> float: ...
    @property
    def variance(self) -> float: ...
    @property
    def volatility(self) -> float: ...
    @property
    def momentum(self) -> list[float]: ...
    @property
    def levels(self) -> int: ...
    @property
    def depth_decay(self) -> float: ...
    @property
    def vol_alpha(self) -> float: ...
    @property
    def momentum_windows(self) -> tuple[int, ...]: ...
    @property
    def _weights(self) -> tuple[float, ...]: ...
    @property
    def _has_prev(self) -> bool: ...
    @property
    def _ring(self) -> list[int]: ...
    @property
    def _ring_pos(self) -> int: ...
    @property
    def _ring_size(self) -> int: ...

# --- loadgen (crates/py/src/loadgen.rs) ---

__all__ += ["LoadgenResult", "loadgen_defaults", "measure_hiccups", "run_loadgen"]

@final
class LoadgenResult:
    """The outcome of one load-generator run."""

    @property
    def json(self) -> str:
        """The JSON document (settings, throughput, counts, latency percentiles and curve,
        checks, machine)."""

    @property
    def summary(self) -> str:
        """The human summary, several lines."""

    @property
    def ok(self) -> bool:
        """True when every check passed."""

    @property
    def failed_checks(self) -> list[str]:
        """The names (with counts) of the checks that failed."""

def run_loadgen(
    *,
    config: str | None = None,
    connect: str | None = None,
    accounts: Sequence[str] = ...,
    keys_file: str | None = None,
    sessions: int | None = None,
    rate: str | None = None,
    window: int | None = None,
    duration: float | None = None,
    warmup: float | None = None,
    mix: str | None = None,
    seed: int | None = None,
    symbols: Sequence[str] = ...,
    arrivals: str | None = None,
    wait: str | None = None,
    depth: int | None = None,
    cross: int | None = None,
    max_qty: int | None = None,
    max_live: int | None = None,
    max_inflight: int | None = None,
    heartbeat_ms: int | None = None,
    connect_timeout: float | None = None,
    drain_timeout: float | None = None,
    report_log: str | None = None,
    allow_rejects: Sequence[str] = ...,
) -> LoadgenResult:
    """Runs the load generator (see `tradecore loadgen --help`) with the GIL released."""

def loadgen_defaults() -> dict[str, str]:
    """The defaults of `run_loadgen`'s options, as text, by option name."""

def measure_hiccups(*, threads: int = 2, seconds: float = 10.0) -> tuple[str, str]:
    """Spins `threads` threads on the clock for `seconds` (GIL released) and returns the machine's
    stalls as `(summary text, JSON document)`; see `tradecore_engine::loadgen::hiccup`."""

# --- venue server (crates/py/src/server.rs) ---

__all__ += ["VenueServer", "replay_journal"]

@final
class VenueServer:
    """A running venue server (what ``tradecore serve`` runs): recovers the venue from its
    journal, then serves order entry, feeds and ``/metrics`` on Rust threads that never take
    the GIL. Stop it with :meth:`stop` (or leave a ``with`` block).

    Raises :class:`tradecore.errors.ConfigError` for a bad config, ``OSError`` when a listen
    address is taken, ``RuntimeError`` when the journal cannot be recovered.
    """

    def __new__(cls, config: str, *, log: bool = True) -> VenueServer: ...
    @property
    def order_entry(self) -> str:
        """The bound order-entry address, ``"host:port"``."""

    @property
    def metrics(self) -> str:
        """The bound metrics address, ``"host:port"`` (``GET /metrics``)."""

    @property
    def feed(self) -> str | None:
        """Where feed datagrams go, ``"host:port"``, or None when feeds are off."""

    @property
    def journal_dir(self) -> str:
        """The journal directory."""

    @property
    def running(self) -> bool:
        """False once stopped, or after the server stopped itself (journal failure)."""

    def recovery(self) -> dict[str, Any]:
        """What start-up recovery found: ``snapshot_seq``, ``replayed``, ``damage``,
        ``rejected_snapshots``."""

    def stats(self) -> dict[str, int]:
        """Every counter (commands by type, rejects by reason, journal, feeds, sessions, ring
        occupancy, engine latency quantiles), a few ms stale."""

    def metrics_text(self) -> str:
        """The Prometheus text of ``/metrics``."""

    def stop(self) -> dict[str, Any]:
        """Graceful stop (stop accepting, drain, final snapshot): ``state_hash``,
        ``last_seq``, ``snapshot``, ``live_orders``, ``error``, ``elapsed``."""

    def __enter__(self) -> VenueServer: ...
    def __exit__(self, exc_type: object, exc: object, tb: object) -> bool: ...

def replay_journal(
    journal: str,
    config: str | None = None,
    *,
    from_snapshot: bool = True,
    reports: str | None = None,
) -> dict[str, Any]:
    """Replay a journal directory read-only: ``records``, ``elapsed``, ``records_per_sec``,
    ``state_hash``, ``snapshot_seq``, ``snapshot``, ``last_seq``, ``damage``,
    ``rejected_snapshots``, ``reports_written``, ``live_orders``, ``next_report_seq`` (account
    -> the number its next report would carry). Without ``config`` the copy the server keeps
    in the directory (``venue.toml``) is used."""
