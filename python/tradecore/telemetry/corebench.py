"""Throughput and latency of the matching core as Python sees it (``tradecore demo``, ``bench/``).

What is measured, on one fixed-seed *mixed stream* (:func:`mixed_stream`):

* **batch**: the whole stream through :meth:`OrderBook.process` (one call, GIL released), from an
  empty book; ops/s = rows / wall time, median of a few repeats. Also in slices of
  ``chunk_rows`` rows (one ``process`` call per slice, same book): a call over a million rows
  allocates its buffers fresh from the OS and pays the page faults, while slices of 64k rows
  reuse memory, which is how a feed handler would call it. Both figures are reported.
* **per call**: the last ``per_call_ops`` rows of the same stream replayed one Python call at a time
  (``submit`` / ``cancel`` / ``modify``) on a book first brought to the stream's steady state with
  ``process``. Arguments are built before the clock starts. One pass without timers gives calls/s;
  a second pass times every call with ``time.perf_counter_ns`` (the timer's own cost, reported as
  ``timer_overhead_ns``, is inside each figure) into HdrHistograms: p50/p90/p99/p99.9/max per call,
  overall and per operation. The garbage collector is off while the clock runs.
* **bytes_per_order**: the book's memory per order slot (``OrderBook.bytes_per_order``).

The mixed stream (:data:`MIX` gives the drawn percentages): passive GTC limit orders one to
``levels`` ticks behind a fixed mid (so they never cross; a few are post-only), cancels and
modifies (half reductions in place, half one-tick reprices that lose priority) of orders resting
at that moment, and aggressive IOC limit or market orders that sweep the touch (self-trade
prevention CANCEL_NEWEST, 16 accounts). The first ``target_live`` rows are passive adds that fill
the book; afterwards an add drawn while ``target_live`` orders rest becomes a cancel, which holds
the book at about that size. The generator feeds the stream through a scratch book in chunks small
against the book and drops the makers that fills removed, so cancels and modifies name resting
orders; a few name an order filled earlier in the same chunk and are rejected with UNKNOWN_ORDER
(the figures count them: well under 1%). Everything is determined by
``(n_ops, seed, target_live)``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from tradecore import EVENT_DTYPE, OP_CANCEL, OP_DTYPE, OP_MODIFY, OP_SUBMIT, OrderBook
from tradecore.enums import EventKind, OrderType, Reason, Side, Stp, TimeInForce
from tradecore.telemetry.hdr import LatencyRecorder, format_ns
from tradecore.telemetry.runinfo import GcPaused, machine_info

__all__ = [
    "MIX",
    "core_figures",
    "core_summary",
    "format_figures",
    "mixed_stream",
    "stream_mix",
]

OpArray = npt.NDArray[np.void]

#: Percent of each operation class drawn by :func:`mixed_stream` (before the live-size control).
MIX: dict[str, int] = {"add": 48, "cancel": 27, "aggressive": 10, "modify": 15}

_MID = 100_000
_CHUNK = 4_096
_BUY, _SELL = Side.BUY.code, Side.SELL.code
_LIMIT, _MARKET = OrderType.LIMIT.code, OrderType.MARKET.code
_GTC, _IOC = TimeInForce.GTC.code, TimeInForce.IOC.code
_STP = Stp.CANCEL_NEWEST.code
_FILL = EventKind.FILL.code
_REJECTED = EventKind.REJECTED.code


def _check_count(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def mixed_stream(
    n_ops: int = 1_000_000,
    seed: int = 7,
    *,
    target_live: int = 10_000,
    levels: int = 64,
    accounts: int = 16,
) -> OpArray:
    """A fixed-seed mixed stream of ``n_ops`` rows of ``OP_DTYPE`` (see the module docs).

    Submits use order ids ``row + 1``; ``timestamp`` is the row number. Passive prices sit in
    ``[mid - levels, mid - 1]`` (bids) and ``[mid + 1, mid + levels]`` (asks) with the mass near
    the touch; aggressive orders are IOC limits three ticks through the mid or IOC market orders.
    """
    _check_count("n_ops", n_ops, 1)
    _check_count("seed", seed, 0)
    _check_count("target_live", target_live, 1)
    _check_count("levels", levels, 1)
    _check_count("accounts", accounts, 1)
    rng = np.random.default_rng(seed)
    ops = np.zeros(n_ops, dtype=OP_DTYPE)
    scratch = OrderBook(capacity=target_live + _CHUNK + 1)
    # The resting orders as the generator knows them: ids in `live` (no order), and per order id
    # (list index) its place in `live` (-1 when not resting), side, price and last set quantity.
    live: list[int] = []
    where = [-1] * (n_ops + 1)
    side_of = [0] * (n_ops + 1)
    price_of = [0] * (n_ops + 1)
    qty_of = [0] * (n_ops + 1)

    add_cut = MIX["add"]
    cancel_cut = add_cut + MIX["cancel"]
    aggr_cut = cancel_cut + MIX["aggressive"]
    # Chunks small against the book, so few makers are filled between two feedbacks.
    chunk_len = min(max(target_live // 64, 64), _CHUNK)
    for start in range(0, n_ops, chunk_len):
        stop = min(start + chunk_len, n_ops)
        size = stop - start
        klass = rng.integers(0, 100, size).tolist()
        side = rng.integers(0, 2, size).tolist()
        offset = np.minimum(rng.geometric(0.15, size), levels).tolist()
        qty = rng.integers(1, 101, size).tolist()
        big = rng.integers(1, 201, size).tolist()
        account = rng.integers(1, accounts + 1, size).tolist()
        pick = rng.integers(0, 1 << 62, size).tolist()
        coin = rng.integers(0, 4, size).tolist()
        c_id = [0] * size
        c_price = [0] * size
        c_qty = [0] * size
        c_account = [0] * size
        c_op = [OP_SUBMIT] * size
        c_side = [0] * size
        c_type = [_LIMIT] * size
        c_tif = [_GTC] * size
        c_post = [0] * size
        for j in range(size):
            k = klass[j]
            if start + j < target_live:
                k = 0  # the opening rows fill the book to its target size
            elif k < add_cut and len(live) >= target_live:
                k = add_cut  # hold the book near its target size: cancel instead
            if (add_cut <= k < cancel_cut or k >= aggr_cut) and not live:
                k = 0  # nothing rests yet: add instead of cancel or modify
            oid = start + j + 1
            if k < add_cut:  # passive add
                s = side[j]
                px = _MID - offset[j] if s == _BUY else _MID + offset[j]
                c_id[j], c_price[j], c_qty[j], c_side[j] = oid, px, qty[j], s
                c_account[j] = account[j]
                c_post[j] = 1 if coin[j] == 0 and qty[j] < 20 else 0
                where[oid] = len(live)
                live.append(oid)
                side_of[oid], price_of[oid], qty_of[oid] = s, px, qty[j]
            elif k < cancel_cut:  # cancel a resting order
                i = pick[j] % len(live)
                victim = live[i]
                c_op[j], c_id[j] = OP_CANCEL, victim
                last = live.pop()
                if last != victim:
                    live[i] = last
                    where[last] = i
                where[victim] = -1
            elif k < aggr_cut:  # aggressive IOC limit or market order
                s = side[j]
                c_id[j], c_qty[j], c_side[j], c_account[j] = oid, big[j], s, account[j]
                c_tif[j] = _IOC
                if coin[j] == 0:
                    c_type[j] = _MARKET
                else:
                    c_price[j] = _MID + 3 if s == _BUY else _MID - 3
            else:  # modify: reduce in place or reprice by one tick (same side of the mid)
                target = live[pick[j] % len(live)]
                c_op[j], c_id[j], c_side[j] = OP_MODIFY, target, side_of[target]
                px, q = price_of[target], qty_of[target]
                if coin[j] < 2:
                    q = max(1, q // 2)
                else:
                    step = 1 if coin[j] == 2 else -1
                    px += step
                    if side_of[target] == _BUY:
                        px = min(max(px, _MID - levels), _MID - 1)
                    else:
                        px = min(max(px, _MID + 1), _MID + levels)
                c_price[j], c_qty[j] = px, q
                price_of[target], qty_of[target] = px, q
        chunk = ops[start:stop]
        chunk["order_id"] = c_id
        chunk["price"] = c_price
        chunk["qty"] = c_qty
        chunk["timestamp"] = np.arange(start, stop, dtype=np.uint64)
        chunk["account"] = c_account
        chunk["op"] = c_op
        chunk["side"] = c_side
        chunk["order_type"] = c_type
        chunk["tif"] = c_tif
        chunk["stp"] = _STP
        chunk["post_only"] = c_post
        events = scratch.process(chunk)
        gone = events[(events["kind"] == _FILL) & (events["other_leaves"] == 0)]["other_id"]
        for maker in gone.tolist():
            i = where[maker]
            if i >= 0:
                last = live.pop()
                if last != maker:
                    live[i] = last
                    where[last] = i
                where[maker] = -1
    return ops


def stream_mix(ops: OpArray) -> dict[str, int]:
    """How many rows of each class a stream holds: add, aggressive, cancel, modify."""
    op = ops["op"]
    submit = op == OP_SUBMIT
    aggressive = submit & (ops["tif"] != _GTC)
    return {
        "add": int(np.count_nonzero(submit & ~aggressive)),
        "aggressive": int(np.count_nonzero(aggressive)),
        "cancel": int(np.count_nonzero(op == OP_CANCEL)),
        "modify": int(np.count_nonzero(op == OP_MODIFY)),
    }


def _call_args(
    ops: OpArray,
) -> list[tuple[int, tuple[Any, ...]]]:
    """(op code, positional args) per row, for the per-call API; enum args as enum members."""
    sides = [Side.from_code(c) for c in range(len(Side))]
    types = [OrderType.from_code(c) for c in range(len(OrderType))]
    tifs = [TimeInForce.from_code(c) for c in range(len(TimeInForce))]
    stps = [Stp.from_code(c) for c in range(len(Stp))]
    out: list[tuple[int, tuple[Any, ...]]] = []
    cols = (
        ops["op"].tolist(),
        ops["order_id"].tolist(),
        ops["account"].tolist(),
        ops["side"].tolist(),
        ops["price"].tolist(),
        ops["qty"].tolist(),
        ops["order_type"].tolist(),
        ops["tif"].tolist(),
        ops["stp"].tolist(),
        ops["post_only"].tolist(),
        ops["timestamp"].tolist(),
    )
    for op, oid, acct, side, px, qty, otype, tif, stp, post, ts in zip(*cols, strict=True):
        if op == OP_SUBMIT:
            args: tuple[Any, ...] = (
                oid,
                acct,
                sides[side],
                px,
                qty,
                types[otype],
                tifs[tif],
                stps[stp],
                bool(post),
                ts,
            )
        elif op == OP_CANCEL:
            args = (oid,)
        else:
            args = (oid, px, qty)
        out.append((op, args))
    return out


def _bind(
    book: OrderBook, calls: Sequence[tuple[int, tuple[Any, ...]]]
) -> list[tuple[Callable[..., object], tuple[Any, ...]]]:
    fns: dict[int, Callable[..., object]] = {
        OP_SUBMIT: book.submit,
        OP_CANCEL: book.cancel,
        OP_MODIFY: book.modify,
    }
    return [(fns[op], args) for op, args in calls]


def _timer_overhead_ns(samples: int = 100_000) -> int:
    clock = time.perf_counter_ns
    diffs = [0] * samples
    for i in range(samples):
        t0 = clock()
        diffs[i] = clock() - t0
    return int(statistics.median(diffs))


def core_figures(
    n_ops: int = 1_000_000,
    seed: int = 7,
    *,
    target_live: int = 10_000,
    per_call_ops: int = 200_000,
    repeats: int = 3,
    capacity: int = 1_000_000,
    chunk_rows: int = 65_536,
) -> dict[str, Any]:
    """Measure the core on :func:`mixed_stream` and return the figures as a JSON-ready dict."""
    _check_count("chunk_rows", chunk_rows, 1)
    _check_count("per_call_ops", per_call_ops, 1)
    _check_count("repeats", repeats, 1)
    _check_count("capacity", capacity, 1)
    t_gen = time.perf_counter()
    ops = mixed_stream(n_ops, seed, target_live=target_live)
    gen_s = time.perf_counter() - t_gen
    per_call_ops = min(per_call_ops, n_ops)

    # Batch: the whole stream through process(), from an empty book, a few times.
    batch_s: list[float] = []
    events = np.zeros(0, dtype=EVENT_DTYPE)
    live_end = 0
    for _ in range(repeats):
        book = OrderBook(capacity=capacity)
        with GcPaused():
            t0 = time.perf_counter_ns()
            events = book.process(ops)
            t1 = time.perf_counter_ns()
        batch_s.append((t1 - t0) / 1e9)
        live_end = len(book)
    kinds = np.bincount(events["kind"], minlength=len(EventKind))
    by_kind = {k.value: int(kinds[k.code]) for k in EventKind}
    rejected = events[events["kind"] == _REJECTED]
    codes_seen, counts_seen = np.unique(rejected["reason"], return_counts=True)
    rejects = {
        Reason.from_code(int(c)).value or "NONE": int(n)
        for c, n in zip(codes_seen.tolist(), counts_seen.tolist(), strict=True)
    }
    batch_median = statistics.median(batch_s)

    # The same in slices of chunk_rows rows (views, built before the clock starts).
    slices = [ops[i : i + chunk_rows] for i in range(0, n_ops, chunk_rows)]
    chunked_s: list[float] = []
    for _ in range(repeats):
        book = OrderBook(capacity=capacity)
        process = book.process
        with GcPaused():
            t0 = time.perf_counter_ns()
            for part in slices:
                process(part)
            t1 = time.perf_counter_ns()
        chunked_s.append((t1 - t0) / 1e9)
    del book, process

    # Per call: the tail of the stream, on a book brought to steady state by the head.
    head, tail = ops[: n_ops - per_call_ops], ops[n_ops - per_call_ops :]
    calls = _call_args(tail)
    op_of = [op for op, _ in calls]

    def warmed() -> OrderBook:
        book = OrderBook(capacity=capacity)
        if len(head):
            book.process(head)
        return book

    book = warmed()
    bound = _bind(book, calls)
    with GcPaused():
        t0 = time.perf_counter_ns()
        for fn, args in bound:
            fn(*args)
        t1 = time.perf_counter_ns()
    calls_per_s = per_call_ops / ((t1 - t0) / 1e9)
    del bound, book

    book = warmed()
    bound = _bind(book, calls)
    timings = [0] * per_call_ops
    clock = time.perf_counter_ns
    with GcPaused():
        for i, (fn, args) in enumerate(bound):
            t0 = clock()
            fn(*args)
            timings[i] = clock() - t0
    del bound, book
    arr = np.asarray(timings, dtype=np.int64)
    codes = np.asarray(op_of, dtype=np.uint8)
    latency: dict[str, dict[str, int]] = {}
    for name, mask in (
        ("all", np.ones(len(arr), dtype=bool)),
        ("submit", codes == OP_SUBMIT),
        ("cancel", codes == OP_CANCEL),
        ("modify", codes == OP_MODIFY),
    ):
        if np.any(mask):
            rec = LatencyRecorder()
            rec.record_many(arr[mask])
            latency[name] = rec.summary().as_dict()

    return {
        "stream": {
            "n_ops": n_ops,
            "seed": seed,
            "target_live": target_live,
            "mix": stream_mix(ops),
            "generate_s": round(gen_s, 3),
            "live_at_end": live_end,
        },
        "batch": {
            "repeats": repeats,
            "seconds": [round(s, 6) for s in batch_s],
            "ops_per_s": round(n_ops / batch_median),
            "events": len(events),
            "events_by_kind": by_kind,
            "rejected_by_reason": rejects,
        },
        "batch_chunked": {
            "chunk_rows": chunk_rows,
            "repeats": repeats,
            "seconds": [round(s, 6) for s in chunked_s],
            "ops_per_s": round(n_ops / statistics.median(chunked_s)),
        },
        "per_call": {
            "calls": per_call_ops,
            "calls_per_s": round(calls_per_s),
            "timer_overhead_ns": _timer_overhead_ns(),
            "latency_ns": latency,
        },
        "bytes_per_order": float(OrderBook(capacity=capacity).bytes_per_order),
        "capacity": capacity,
        "machine": machine_info(numpy=np.__version__),
    }


def format_figures(fig: dict[str, Any]) -> str:
    """The figures of :func:`core_figures` as a short multi-line report."""
    s, b, c, p = fig["stream"], fig["batch"], fig["batch_chunked"], fig["per_call"]
    mix = ", ".join(f"{k} {v:,}" for k, v in s["mix"].items())
    lines = [
        f"core (mixed stream, seed {s['seed']}: {s['n_ops']:,} ops = {mix}; "
        f"{s['live_at_end']:,} resting at the end)",
        f"  batch OrderBook.process   {b['ops_per_s'] / 1e6:8.2f} M ops/s  "
        f"(one call over all rows, median of {b['repeats']}, {b['events']:,} events)",
        f"  batch, {c['chunk_rows']:,}-row calls  {c['ops_per_s'] / 1e6:8.2f} M ops/s",
        f"  per call submit/cancel/modify {p['calls_per_s'] / 1e6:5.2f} M calls/s  "
        f"({p['calls']:,} calls on a warmed book)",
    ]
    for name, lat in p["latency_ns"].items():
        lines.append(
            f"    {name:<7} p50 {format_ns(lat['p50']):>9}  p90 {format_ns(lat['p90']):>9}  "
            f"p99 {format_ns(lat['p99']):>9}  p99.9 {format_ns(lat['p999']):>9}  "
            f"max {format_ns(lat['max']):>9}"
        )
    lines.append(
        f"    (perf_counter_ns around each call, its own ~{p['timer_overhead_ns']} ns included; "
        "GC off while timing)"
    )
    rejected = b["rejected_by_reason"]
    if rejected:
        rej = ", ".join(f"{k} {v:,}" for k, v in rejected.items())
        lines.append(f"  rejected ops in the stream: {rej}")
    lines.append(f"  memory per order slot: {fig['bytes_per_order']:.1f} bytes")
    return "\n".join(lines)


def core_summary(n_ops: int = 1_000_000, seed: int = 7) -> str:
    """A quick (a few seconds) measurement of the core, formatted for ``tradecore demo``."""
    return format_figures(core_figures(n_ops, seed))
