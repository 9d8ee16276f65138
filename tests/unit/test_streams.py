"""The fixed-seed benchmark streams: deterministic per seed, well formed, and shaped as promised
(L3: adds never cross, deletes/updates name resting orders, about 15% of ops net growth)."""

from __future__ import annotations

import heapq
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from tradecore import OP_CANCEL, OP_MODIFY, OP_SUBMIT, OrderBook
from tradecore.enums import EventKind, TimeInForce

_BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load_streams() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_streams", _BENCH / "streams.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


streams = _load_streams()
_COLS = ("action", "order_id", "side", "price", "qty", "account")


@pytest.fixture(scope="module")
def l3() -> Any:
    return streams.l3_stream(100_000, 7)


def test_l3_is_deterministic_for_a_seed(l3: Any) -> None:
    again = streams.l3_stream(100_000, 7)
    other = streams.l3_stream(100_000, 8)
    for col in _COLS:
        assert np.array_equal(getattr(l3, col), getattr(again, col)), col
    assert not all(np.array_equal(getattr(l3, c), getattr(other, c)) for c in _COLS)
    assert l3.live_end == again.live_end


def test_l3_replays_against_a_model_and_adds_never_cross(l3: Any) -> None:
    """Every delete/update names a resting order with its side, price and size; updates
    reduce; every add is strictly below the best resting ask (bids) or above the best bid."""
    s = l3
    resting: dict[int, tuple[int, int, int]] = {}
    bids: list[tuple[int, int]] = []  # max-heap via negated price, lazy deletion
    asks: list[tuple[int, int]] = []
    rows = zip(*(getattr(s, c).tolist() for c in _COLS), strict=True)
    for act, oid, side, px, qty, _acct in rows:
        if act == streams.ADD:
            assert oid not in resting
            assert qty >= 1
            while asks and asks[0][1] not in resting:
                heapq.heappop(asks)
            while bids and bids[0][1] not in resting:
                heapq.heappop(bids)
            if side == streams.BUY:
                assert not asks or px < asks[0][0], (oid, px, asks[0])
                heapq.heappush(bids, (-px, oid))
            else:
                assert not bids or px > -bids[0][0], (oid, px, bids[0])
                heapq.heappush(asks, (px, oid))
            resting[oid] = (side, px, qty)
        else:
            assert oid in resting, oid
            r_side, r_px, r_qty = resting[oid]
            assert (side, px) == (r_side, r_px)
            if act == streams.DELETE:
                assert qty == r_qty
                del resting[oid]
            else:
                assert act == streams.UPDATE
                assert 1 <= qty < r_qty
                resting[oid] = (side, px, qty)
    assert len(resting) == s.live_end


def test_l3_mix_and_live_count(l3: Any) -> None:
    counts = l3.counts()
    n = len(l3)
    assert sum(counts.values()) == n
    assert abs(counts["add"] / n - 0.50) < 0.01
    assert abs(counts["delete"] / n - 0.35) < 0.01
    assert abs(counts["update"] / n - 0.15) < 0.01
    assert l3.live_end == counts["add"] - counts["delete"]
    # 15% net growth per op: about 15,000 after 100,000 ops (so about 150,000 after 1,000,000).
    assert abs(l3.live_end - 0.15 * n) < 0.05 * 0.15 * n


def test_l3_through_the_book_is_pure_maintenance(l3: Any) -> None:
    ops = l3.to_ops()
    book = OrderBook()
    events = book.process(ops)
    counts = l3.counts()
    kinds = events["kind"]
    assert len(events) == len(ops)  # one event per op: nothing trades, nothing is rejected
    assert int((kinds == EventKind.ACCEPTED.code).sum()) == counts["add"]
    assert int((kinds == EventKind.CANCELLED.code).sum()) == counts["delete"]
    assert int((kinds == EventKind.REPLACED.code).sum()) == counts["update"]
    assert len(book) == l3.live_end
    bid, ask = book.best_bid(), book.best_ask()
    assert bid is not None and ask is not None and bid[0] < ask[0]
    book.check_invariants()


def test_l3_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="n_ops"):
        streams.l3_stream(0)
    with pytest.raises(ValueError, match="delete_pct"):
        streams.l3_stream(10, add_pct=70, delete_pct=40)
    with pytest.raises(TypeError, match="seed"):
        streams.l3_stream(10, seed=1.5)


def test_mixed_stream_is_deterministic_and_well_formed() -> None:
    a = streams.mixed_stream(30_000, 3, target_live=2_000)
    b = streams.mixed_stream(30_000, 3, target_live=2_000)
    c = streams.mixed_stream(30_000, 4, target_live=2_000)
    assert a.dtype == b.dtype and np.array_equal(a, b)
    assert not np.array_equal(a, c)
    op = a["op"]
    submit = op == OP_SUBMIT
    ids = a["order_id"][submit]
    assert len(np.unique(ids)) == len(ids)  # submit ids are unique
    passive = submit & (a["tif"] == TimeInForce.GTC.code)
    assert np.all(a["price"][passive] > 0)
    # Every cancel or modify names an order submitted earlier in the stream.
    first_seen = {int(oid): i for i, oid in zip(np.flatnonzero(submit), ids, strict=True)}
    for i in np.flatnonzero((op == OP_CANCEL) | (op == OP_MODIFY)).tolist():
        assert first_seen[int(a["order_id"][i])] < i
    mix = streams.stream_mix(a)
    assert sum(mix.values()) == len(a)
    assert all(v > 0 for v in mix.values())


def test_mixed_stream_trades_and_stays_near_its_target() -> None:
    ops = streams.mixed_stream(40_000, 5, target_live=1_000)
    book = OrderBook()
    events = book.process(ops)
    kinds = events["kind"]
    assert int((kinds == EventKind.FILL.code).sum()) > 0
    # Cancels and modifies name resting orders: only a handful miss (filled in the same chunk).
    rejected = int((kinds == EventKind.REJECTED.code).sum())
    assert rejected < 0.01 * len(ops)
    assert 800 <= len(book) <= 1_000  # held near its target
    book.check_invariants()
