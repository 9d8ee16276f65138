"""Fixed-seed operation streams shared by the Python benchmarks.

* :func:`l3_stream`: pure L3 book maintenance for the peer comparison (``peer_nautilus.py``):
  adds, deletes and size reductions of resting orders, engine-neutral (plain numpy columns), so
  every engine replays exactly the same operations. Adds never cross the book: bids sit below a
  fixed mid and asks above it, so no engine matches anything and both sides do the same work.
* :func:`mixed_stream` (re-exported from :mod:`tradecore.telemetry.corebench`, where
  ``tradecore demo`` needs it): passive adds, cancels, modifies and aggressive orders that trade.

The L3 stream is generated one operation at a time against a model of the resting orders: a
delete or size update always names an order that rests at that moment (uniformly at random), and
an update always reduces (new size in ``1..size-1``). Each draw of the operation class gives an
add with probability ``add_pct``, a delete with ``delete_pct`` and an update otherwise; a delete
or update with nothing to act on (empty book, or no order above one lot after a few picks) becomes
an add, so the realized mix is reported by :meth:`L3Stream.counts`. The live count grows by
``add_pct - delete_pct`` per operation on average: 1,000,000 operations at 50/35/15 end with about
150,000 resting orders.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from tradecore.telemetry.corebench import MIX, mixed_stream, stream_mix

__all__ = [
    "ADD",
    "DELETE",
    "MIX",
    "UPDATE",
    "L3Stream",
    "l3_stream",
    "mixed_stream",
    "stream_mix",
]

#: L3 actions (values of :attr:`L3Stream.action`).
ADD, DELETE, UPDATE = 0, 1, 2
#: Sides (values of :attr:`L3Stream.side`), equal to ``tradecore.Side`` codes.
BUY, SELL = 0, 1

_LOW31 = (1 << 31) - 1
_U8 = npt.NDArray[np.uint8]
_U32 = npt.NDArray[np.uint32]
_U64 = npt.NDArray[np.uint64]
_I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class L3Stream:
    """One L3 stream as columns of equal length (row = one operation, in order).

    ``qty`` is the order's size for an add, the new (smaller) size for an update and the size
    resting at that moment for a delete; ``price`` and ``side`` are the order's own for every
    action. ``live_end`` is the number of orders resting after the last row.
    """

    action: _U8
    order_id: _U64
    side: _U8
    price: _I64
    qty: _U64
    account: _U32
    seed: int
    mid: int
    live_end: int

    def __len__(self) -> int:
        return len(self.action)

    def counts(self) -> dict[str, int]:
        """Rows per action: ``{"add": .., "delete": .., "update": ..}``."""
        n = np.bincount(self.action, minlength=3)
        return {"add": int(n[ADD]), "delete": int(n[DELETE]), "update": int(n[UPDATE])}

    def to_ops(self) -> npt.NDArray[np.void]:
        """The stream as a ``tradecore.OP_DTYPE`` array for ``OrderBook.process``.

        add -> submit of a GTC limit (CANCEL_NEWEST STP, not post-only); delete -> cancel;
        update -> modify at the same price to the new size (a reduction, so it keeps its place).
        """
        from tradecore import OP_CANCEL, OP_DTYPE, OP_MODIFY, OP_SUBMIT
        from tradecore.enums import OrderType, Stp, TimeInForce

        ops = np.zeros(len(self), dtype=OP_DTYPE)
        codes = np.array([OP_SUBMIT, OP_CANCEL, OP_MODIFY], dtype=np.uint8)
        ops["op"] = codes[self.action]
        ops["order_id"] = self.order_id
        ops["price"] = self.price
        ops["qty"] = self.qty
        ops["account"] = self.account
        ops["side"] = self.side
        ops["order_type"] = OrderType.LIMIT.code
        ops["tif"] = TimeInForce.GTC.code
        ops["stp"] = Stp.CANCEL_NEWEST.code
        ops["timestamp"] = np.arange(len(self), dtype=np.uint64)
        return ops


def _check(name: str, value: int, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < lo or (hi is not None and value > hi):
        bound = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def l3_stream(
    n_ops: int = 1_000_000,
    seed: int = 7,
    *,
    add_pct: int = 50,
    delete_pct: int = 35,
    mid: int = 1_000_000,
    levels: int = 1_000,
    max_qty: int = 1_000,
    accounts: int = 64,
) -> L3Stream:
    """A fixed-seed L3 maintenance stream of ``n_ops`` rows (see the module docs).

    Order ids are ``row + 1`` of the add. Prices: bids at ``mid - d`` and asks at ``mid + d`` with
    ``d`` in ``1..levels``, geometric with mean 50 ticks (the mass near the touch, a long tail).
    Sizes are uniform in ``1..max_qty``.
    """
    _check("n_ops", n_ops, 1)
    _check("seed", seed, 0)
    _check("add_pct", add_pct, 0, 100)
    _check("delete_pct", delete_pct, 0, 100 - add_pct)
    _check("levels", levels, 1)
    _check("mid", mid, levels + 1)
    _check("max_qty", max_qty, 2)
    _check("accounts", accounts, 1)
    rng = np.random.default_rng(seed)
    klass = rng.integers(0, 100, n_ops).tolist()
    side = rng.integers(0, 2, n_ops).tolist()
    offset = np.minimum(rng.geometric(1 / 50, n_ops), levels).tolist()
    size = rng.integers(1, max_qty + 1, n_ops).tolist()
    account = rng.integers(1, accounts + 1, n_ops).tolist()
    # Low 31 bits pick the order to act on, high 31 bits the new size of an update.
    pick = rng.integers(0, 1 << 62, n_ops).tolist()
    retry = random.Random(seed)  # extra picks when an update lands on a one-lot order

    action = [ADD] * n_ops
    oids = [0] * n_ops
    sides = [0] * n_ops
    prices = [0] * n_ops
    qtys = [0] * n_ops
    accts = [0] * n_ops
    live: list[int] = []
    where: dict[int, int] = {}
    # order id -> [side, price, qty, account]
    book: dict[int, list[int]] = {}
    delete_cut = add_pct + delete_pct

    for i in range(n_ops):
        k = klass[i]
        target = 0
        if k >= add_pct and live:
            target = live[(pick[i] & _LOW31) % len(live)]
            if k >= delete_cut:
                tries = 0
                while book[target][2] < 2 and tries < 8:
                    target = live[retry.randrange(len(live))]
                    tries += 1
                if book[target][2] < 2:
                    target = 0
        if target == 0:  # add (drawn, or nothing to delete/update)
            oid = i + 1
            s = side[i]
            px = mid - offset[i] if s == BUY else mid + offset[i]
            q = size[i]
            book[oid] = [s, px, q, account[i]]
            where[oid] = len(live)
            live.append(oid)
            oids[i], sides[i], prices[i], qtys[i], accts[i] = oid, s, px, q, account[i]
        else:
            order = book[target]
            oids[i], sides[i], prices[i], accts[i] = target, order[0], order[1], order[3]
            if k < delete_cut:
                action[i] = DELETE
                qtys[i] = order[2]
                j = where.pop(target)
                last = live.pop()
                if last != target:
                    live[j] = last
                    where[last] = j
                del book[target]
            else:
                action[i] = UPDATE
                new_q = 1 + (pick[i] >> 31) % (order[2] - 1)
                order[2] = new_q
                qtys[i] = new_q

    return L3Stream(
        action=np.asarray(action, dtype=np.uint8),
        order_id=np.asarray(oids, dtype=np.uint64),
        side=np.asarray(sides, dtype=np.uint8),
        price=np.asarray(prices, dtype=np.int64),
        qty=np.asarray(qtys, dtype=np.uint64),
        account=np.asarray(accts, dtype=np.uint32),
        seed=seed,
        mid=mid,
        live_end=len(live),
    )
