"""Seeded synthetic market data of any size, generated in chunks: L2 quotes and trades, L3
order flow, and bars for vectorized sweeps.

Owns the generators. Each yields chunks (see :mod:`tradecore.data.schema`) and never holds more
than one internal block (:data:`BLOCK` rows) plus the chunk being assembled, so a 100M-row table
costs the same memory as a 1M-row one when it is written out chunk by chunk.

Determinism: block ``k`` draws its random numbers from ``numpy.random.default_rng([seed, k])``
and the generators carry their state (the price walk, the resting orders) from block to block,
so the same ``(rows, seed, parameters)`` give the same data whatever ``chunk_rows`` is: a table
generated in one piece equals the same table generated in chunks (a test checks it).

* :func:`synthetic_l2`: a bid random walk (moves of one tick with probability ``move_prob``),
  a spread of 1-3 ticks, sizes of 1-100 lots, exponential inter-arrival times; each row is a
  quote update, or with probability ``trade_share`` a trade at the touch (a buy at the ask or a
  sell at the bid, 1 lot up to the touch size). Yields ``(quotes, trades)`` chunk pairs.
* :func:`synthetic_quotes`: the same walk with quotes only (the benchmarks' "quote ticks").
* :func:`synthetic_l3`: LOBSTER-style messages (add, partial cancel, delete, execution) that
  are consistent with one another: cancels and deletes name an order resting at that moment,
  executions take the order at the front of the best level of one side (FIFO), and adds never
  cross the opposite best, so replaying the flow through ``tradecore.OrderBook`` never matches
  by itself. A numba kernel keeps the resting orders (doubly linked FIFO per price level).
* :func:`synthetic_bars`: ``bid``/``ask`` arrays of a quote walk, in memory, for sweeps.

Cost: numpy per block for L2 (about 30 ns per row); the L3 kernel is O(1) per message except
when the best level empties (a scan to the next non-empty level).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from numba import njit

from tradecore.data.schema import Chunk, chunk_rows

__all__ = [
    "BLOCK",
    "L2Params",
    "L3Params",
    "rechunk",
    "synthetic_bars",
    "synthetic_l2",
    "synthetic_l3",
    "synthetic_quotes",
]

#: Rows generated per internal block (the unit of the random streams).
BLOCK: Final = 65_536
_I64 = npt.NDArray[np.int64]
_F64 = npt.NDArray[np.float64]
_I8 = npt.NDArray[np.int8]


def rechunk(blocks: Iterator[Chunk], rows: int, chunk_rows_: int) -> Iterator[Chunk]:
    """Re-slice ``blocks`` into chunks of ``chunk_rows_`` rows, stopping after ``rows`` rows."""
    if chunk_rows_ < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows_}")
    pending: list[Chunk] = []
    have = 0
    left = rows
    for block in blocks:
        n = min(chunk_rows(block), left)
        if n <= 0:
            break
        if n < chunk_rows(block):
            block = {k: v[:n] for k, v in block.items()}
        left -= n
        pending.append(block)
        have += n
        while have >= chunk_rows_:
            out, pending, have = _take(pending, chunk_rows_)
            yield out
        if left == 0:
            break
    if have:
        out, pending, have = _take(pending, have)
        yield out


def _take(pending: list[Chunk], n: int) -> tuple[Chunk, list[Chunk], int]:
    keys = list(pending[0])
    parts: list[Chunk] = []
    got = 0
    rest: list[Chunk] = []
    for i, block in enumerate(pending):
        m = chunk_rows(block)
        if got + m <= n:
            parts.append(block)
            got += m
            if got == n:
                rest = pending[i + 1 :]
                break
        else:
            k = n - got
            parts.append({c: v[:k] for c, v in block.items()})
            rest = [{c: v[k:] for c, v in block.items()}, *pending[i + 1 :]]
            got = n
            break
    out = {
        c: np.concatenate([p[c] for p in parts]) if len(parts) > 1 else parts[0][c] for c in keys
    }
    return out, rest, sum(chunk_rows(b) for b in rest)


# --------------------------------------------------------------------------------------- L2


@dataclass(frozen=True)
class L2Params:
    """Shape of the synthetic L2 walk (prices in ticks, sizes in lots, times in ns)."""

    start_ns: int = 1_600_000_000_000_000_000
    mean_step_ns: int = 1_000_000
    start_px: int = 100_000
    move_prob: float = 0.3
    trade_share: float = 0.0
    max_size: int = 100

    def __post_init__(self) -> None:
        if self.start_px < 10:
            raise ValueError(f"start_px must be >= 10 ticks, got {self.start_px}")
        if not 0.0 <= self.move_prob <= 1.0:
            raise ValueError(f"move_prob must be in [0, 1], got {self.move_prob}")
        if not 0.0 <= self.trade_share < 1.0:
            raise ValueError(f"trade_share must be in [0, 1), got {self.trade_share}")
        if self.mean_step_ns < 1 or self.max_size < 1:
            raise ValueError("mean_step_ns and max_size must be >= 1")


def _l2_blocks(seed: int, p: L2Params) -> Iterator[tuple[Chunk, npt.NDArray[np.bool_]]]:
    """Endless blocks of the combined L2 stream: (all rows as quote-shaped columns, is_trade)."""
    bid = p.start_px
    ts = p.start_ns
    uid = 0
    k = 0
    while True:
        rng = np.random.default_rng([seed, k])
        u = rng.random((6, BLOCK))
        step = np.where(u[0] < p.move_prob, np.where(u[1] < 0.5, -1, 1), 0).astype(np.int64)
        walk = bid + np.cumsum(step)
        # Reflect at 1 tick so prices stay positive whatever the length.
        walk = np.where(walk < 1, 2 - walk, walk)
        spread = np.where(u[2] < 0.7, 1, np.where(u[2] < 0.9, 2, 3)).astype(np.int64)
        gaps = np.floor(-np.log1p(-u[3]) * p.mean_step_ns).astype(np.int64)
        times = ts + np.cumsum(gaps)
        bid_qty = 1 + (u[4] * p.max_size).astype(np.int64)
        ask_qty = 1 + (u[5] * p.max_size).astype(np.int64)
        ids = uid + 1 + np.arange(BLOCK, dtype=np.int64)
        is_trade = rng.random(BLOCK) < p.trade_share if p.trade_share else np.zeros(BLOCK, bool)
        bid = int(walk[-1])
        ts = int(times[-1])
        uid = int(ids[-1])
        k += 1
        yield (
            {
                "ts_ns": times,
                "event_ns": times,
                "update_id": ids,
                "bid_px": walk,
                "bid_qty": bid_qty,
                "ask_px": walk + spread,
                "ask_qty": ask_qty,
            },
            is_trade,
        )


def synthetic_quotes(
    rows: int, seed: int = 1, *, chunk_rows: int = BLOCK, params: L2Params | None = None
) -> Iterator[Chunk]:
    """``rows`` quote updates (a ``quotes`` table) in chunks of ``chunk_rows``."""
    p = params or L2Params()
    if p.trade_share:
        raise ValueError("synthetic_quotes has no trades: use synthetic_l2 for trade_share > 0")
    _check_rows(rows)
    return rechunk((b for b, _ in _l2_blocks(seed, p)), rows, chunk_rows)


def synthetic_l2(
    rows: int, seed: int = 1, *, chunk_rows: int = BLOCK, params: L2Params | None = None
) -> Iterator[tuple[Chunk, Chunk]]:
    """``rows`` L2 events split into ``(quotes, trades)`` chunk pairs (``trade_share`` of the
    rows are trades, default 0.2); each pair covers the same ``chunk_rows`` input rows."""
    p = params or L2Params(trade_share=0.2)
    _check_rows(rows)

    def combined() -> Iterator[Chunk]:
        for block, is_trade in _l2_blocks(seed, p):
            yield {**block, "_trade": is_trade.astype(np.int64)}

    for chunk in rechunk(combined(), rows, chunk_rows):
        t = chunk.pop("_trade").astype(bool)
        q = ~t
        quotes = {c: v[q] for c, v in chunk.items()}
        buy = (chunk["update_id"][t] % 2) == 0
        px = np.where(buy, chunk["ask_px"][t], chunk["bid_px"][t])
        touch = np.where(buy, chunk["ask_qty"][t], chunk["bid_qty"][t])
        qty = 1 + (chunk["update_id"][t] * 2654435761 % 1_000_003) % touch
        trades = {
            "ts_ns": chunk["ts_ns"][t],
            "event_ns": chunk["event_ns"][t],
            "trade_id": chunk["update_id"][t],
            "price": px,
            "qty": qty,
            "aggressor": np.where(buy, 1, -1).astype(np.int8),
        }
        yield quotes, trades


@dataclass(frozen=True)
class Bars:
    """In-memory bars for sweeps: ``ts_ns``, ``bid`` and ``ask`` in ticks (equal lengths)."""

    ts_ns: _I64
    bid: _I64
    ask: _I64

    def __len__(self) -> int:
        return len(self.bid)


def synthetic_bars(rows: int, seed: int = 1, params: L2Params | None = None) -> Bars:
    """``rows`` bars (the quote walk) in memory: for vectorized sweeps and benchmarks."""
    chunk = next(synthetic_quotes(rows, seed, chunk_rows=max(rows, 1), params=params))
    return Bars(
        np.asarray(chunk["ts_ns"], np.int64),
        np.asarray(chunk["bid_px"], np.int64),
        np.asarray(chunk["ask_px"], np.int64),
    )


# --------------------------------------------------------------------------------------- L3


@dataclass(frozen=True)
class L3Params:
    """Shape of the synthetic L3 flow: price band, order sizes, message mix, capacity.

    Prices are ``base_px + i * tick`` for ``i`` in ``0..2 * half_band``; the mix is the share
    of adds, partial cancels, deletes and executions (the rest); a book below ``min_live``
    orders only adds, one at ``capacity`` only deletes.
    """

    start_ns: int = 34_200_000_000_000
    mean_step_ns: int = 100_000
    base_px: int = 10_000_000
    tick: int = 100
    half_band: int = 500
    max_size: int = 500
    add: float = 0.45
    partial: float = 0.10
    delete: float = 0.30
    min_live: int = 50
    capacity: int = 1 << 16

    def __post_init__(self) -> None:
        if self.half_band < 10 or self.tick < 1 or self.max_size < 1:
            raise ValueError("half_band >= 10, tick >= 1, max_size >= 1 are required")
        if self.base_px - self.half_band * self.tick < 1:
            raise ValueError("base_px - half_band * tick must be a positive price")
        if not (self.add > 0 and self.partial >= 0 and self.delete >= 0):
            raise ValueError("the message mix shares must be positive")
        if self.add + self.partial + self.delete >= 1.0:
            raise ValueError("add + partial + delete must leave room for executions (< 1)")
        if not 1 <= self.min_live < self.capacity:
            raise ValueError("need 1 <= min_live < capacity")


class _L3State:
    """The resting orders of the L3 generator (numpy arrays the kernel mutates)."""

    def __init__(self, p: L3Params) -> None:
        cap = p.capacity
        levels = 2 * p.half_band + 1
        self.slot_level = np.zeros(cap, np.int64)
        self.slot_side = np.zeros(cap, np.int64)
        self.slot_qty = np.zeros(cap, np.int64)
        self.slot_id = np.zeros(cap, np.int64)
        self.prev = np.full(cap, -1, np.int64)
        self.next = np.full(cap, -1, np.int64)
        self.free = np.arange(cap - 1, -1, -1, dtype=np.int64)  # a stack of free slots
        self.live = np.zeros(cap, np.int64)
        self.live_pos = np.full(cap, -1, np.int64)
        self.head = np.full((2, levels), -1, np.int64)
        self.tail = np.full((2, levels), -1, np.int64)
        self.count = np.zeros((2, levels), np.int64)  # orders per level
        # scalars: 0 free_top, 1 live_n, 2 best_bid (-1 none), 3 best_ask (levels = none),
        # 4 next_id, 5 ts
        self.sc = np.array([cap, 0, -1, levels, 1, p.start_ns], np.int64)


@njit(cache=True)
def _unlink(slot: int, side: int, lvl: int, prev: _I64, nxt: _I64, head: _I64, tail: _I64) -> None:
    a = prev[slot]
    b = nxt[slot]
    if a >= 0:
        nxt[a] = b
    else:
        head[side, lvl] = b
    if b >= 0:
        prev[b] = a
    else:
        tail[side, lvl] = a


@njit(cache=True)
def _l3_kernel(
    u: _F64,
    out_ts: _I64,
    out_kind: _I8,
    out_id: _I64,
    out_size: _I64,
    out_px: _I64,
    out_dir: _I8,
    slot_level: _I64,
    slot_side: _I64,
    slot_qty: _I64,
    slot_id: _I64,
    prev: _I64,
    nxt: _I64,
    free: _I64,
    live: _I64,
    live_pos: _I64,
    head: _I64,
    tail: _I64,
    count: _I64,
    sc: _I64,
    shares: _F64,
    ints: _I64,
) -> None:
    p_add, p_partial, p_delete = shares[0], shares[1], shares[2]
    base, tick, max_size, min_live, cap, mean_step = (
        ints[0], ints[1], ints[2], ints[3], ints[4], ints[5]
    )  # fmt: skip
    levels = head.shape[1]
    n = u.shape[0]
    for i in range(n):
        ts = sc[5] + np.int64(np.floor(-np.log1p(-u[i, 4]) * mean_step))
        sc[5] = ts
        live_n = sc[1]
        r = u[i, 0]
        if live_n < min_live:
            action = 0
        elif live_n >= cap - 1:
            action = 2
        elif r < p_add:
            action = 0
        elif r < p_add + p_partial:
            action = 1
        elif r < p_add + p_partial + p_delete:
            action = 2
        else:
            action = 3
        if action == 3:
            side = 0 if u[i, 1] < 0.5 else 1
            best = sc[2] if side == 0 else sc[3]
            if best < 0 or best >= levels:
                side = 1 - side
                best = sc[2] if side == 0 else sc[3]
                if best < 0 or best >= levels:
                    action = 0
            if action == 3:
                slot = head[side, best]
                q = slot_qty[slot]
                size = 1 + np.int64(u[i, 2] * q)
                if size > q:
                    size = q
                out_ts[i] = ts
                out_kind[i] = 4
                out_id[i] = slot_id[slot]
                out_size[i] = size
                out_px[i] = base + best * tick
                out_dir[i] = 1 if side == 0 else -1
                if size < q:
                    slot_qty[slot] = q - size
                    continue
                action = -3  # remove the slot below
        if action == 1 or action == 2:
            slot = live[np.int64(u[i, 1] * live_n) % live_n]
            q = slot_qty[slot]
            side = slot_side[slot]
            lvl = slot_level[slot]
            out_ts[i] = ts
            out_id[i] = slot_id[slot]
            out_px[i] = base + lvl * tick
            out_dir[i] = 1 if side == 0 else -1
            if action == 1 and q > 1:
                cut = 1 + np.int64(u[i, 2] * (q - 1))
                if cut >= q:
                    cut = q - 1
                out_kind[i] = 2
                out_size[i] = cut
                slot_qty[slot] = q - cut
                continue
            out_kind[i] = 3
            out_size[i] = q
            action = -3
        if action == -3:
            # remove ``slot`` (its FIFO, the live list, best prices)
            side = slot_side[slot]
            lvl = slot_level[slot]
            _unlink(slot, side, lvl, prev, nxt, head, tail)
            count[side, lvl] -= 1
            pos = live_pos[slot]
            last = live[live_n - 1]
            live[pos] = last
            live_pos[last] = pos
            live_pos[slot] = -1
            sc[1] = live_n - 1
            free[sc[0]] = slot
            sc[0] += 1
            if count[side, lvl] == 0:
                if side == 0 and lvl == sc[2]:
                    j = lvl - 1
                    while j >= 0 and count[0, j] == 0:
                        j -= 1
                    sc[2] = j
                elif side == 1 and lvl == sc[3]:
                    j = lvl + 1
                    while j < levels and count[1, j] == 0:
                        j += 1
                    sc[3] = j
            continue
        # add
        side = 0 if u[i, 1] < 0.5 else 1
        d = np.int64(np.floor(-np.log1p(-u[i, 2]) * 3.0))
        lvl = -1
        for _attempt in range(2):
            if side == 0:
                if sc[3] < levels:
                    ref = sc[3]
                elif sc[2] >= 0:
                    ref = sc[2] + 1
                else:
                    ref = np.int64(levels // 2)
                lvl = ref - 1 - d
                if lvl >= 0:
                    break
            else:
                if sc[2] >= 0:
                    ref = sc[2]
                elif sc[3] < levels:
                    ref = sc[3] - 1
                else:
                    ref = np.int64(levels // 2)
                lvl = ref + 1 + d
                if lvl < levels:
                    break
            side = 1 - side
            d = np.int64(0)
        sc[0] -= 1
        slot = free[sc[0]]
        q = 1 + np.int64(u[i, 3] * max_size)
        oid = sc[4]
        sc[4] = oid + 1
        slot_level[slot] = lvl
        slot_side[slot] = side
        slot_qty[slot] = q
        slot_id[slot] = oid
        prev[slot] = tail[side, lvl]
        nxt[slot] = -1
        if tail[side, lvl] >= 0:
            nxt[tail[side, lvl]] = slot
        else:
            head[side, lvl] = slot
        tail[side, lvl] = slot
        count[side, lvl] += 1
        live[live_n] = slot
        live_pos[slot] = live_n
        sc[1] = live_n + 1
        if side == 0 and lvl > sc[2]:
            sc[2] = lvl
        if side == 1 and lvl < sc[3]:
            sc[3] = lvl
        out_ts[i] = ts
        out_kind[i] = 1
        out_id[i] = oid
        out_size[i] = q
        out_px[i] = base + lvl * tick
        out_dir[i] = 1 if side == 0 else -1


def _l3_blocks(seed: int, p: L3Params) -> Iterator[Chunk]:
    st = _L3State(p)
    shares = np.array([p.add, p.partial, p.delete], np.float64)
    ints = np.array(
        [p.base_px, p.tick, p.max_size, p.min_live, p.capacity, p.mean_step_ns], np.int64
    )
    k = 0
    while True:
        u = np.random.default_rng([seed, k]).random((BLOCK, 5))
        ts = np.empty(BLOCK, np.int64)
        kind = np.empty(BLOCK, np.int8)
        oid = np.empty(BLOCK, np.int64)
        size = np.empty(BLOCK, np.int64)
        price = np.empty(BLOCK, np.int64)
        direction = np.empty(BLOCK, np.int8)
        _l3_kernel(
            u, ts, kind, oid, size, price, direction, st.slot_level, st.slot_side, st.slot_qty,
            st.slot_id, st.prev, st.next, st.free, st.live, st.live_pos, st.head, st.tail,
            st.count, st.sc, shares, ints,
        )  # fmt: skip
        k += 1
        yield {
            "ts_ns": ts,
            "kind": kind,
            "order_id": oid,
            "size": size,
            "price": price,
            "direction": direction,
        }


def synthetic_l3(
    rows: int, seed: int = 1, *, chunk_rows: int = BLOCK, params: L3Params | None = None
) -> Iterator[Chunk]:
    """``rows`` consistent L3 messages (an ``l3`` table) in chunks of ``chunk_rows``."""
    _check_rows(rows)
    return rechunk(_l3_blocks(seed, params or L3Params()), rows, chunk_rows)


def _check_rows(rows: int) -> None:
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise ValueError(f"rows must be a non-negative int, got {rows!r}")
