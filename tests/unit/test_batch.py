"""The numpy batch API: ``OrderBook.process`` with ``OP_DTYPE`` in and ``EVENT_DTYPE`` out.

Checks the record layouts byte for byte, the validation of arrays and rows (a bad row rejects
the whole batch and applies nothing), and, with hypothesis, that a batch yields exactly the
events of the same operations sent one call at a time, with the right ``op_index``, leaving
the same book behind.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tradecore import (
    EVENT_DTYPE,
    OP_CANCEL,
    OP_DTYPE,
    OP_MODIFY,
    OP_SUBMIT,
    EventKind,
    OrderBook,
    OrderType,
    Reason,
    Side,
    Stp,
    TimeInForce,
)

Row = tuple[int, int, int, int, int, int, int, int, int, int, int]


def test_op_dtype_layout() -> None:
    assert OP_DTYPE.itemsize == 48
    expected = {
        "order_id": ("<u8", 0),
        "price": ("<i8", 8),
        "qty": ("<u8", 16),
        "timestamp": ("<u8", 24),
        "account": ("<u4", 32),
        "op": ("|u1", 36),
        "side": ("|u1", 37),
        "order_type": ("|u1", 38),
        "tif": ("|u1", 39),
        "stp": ("|u1", 40),
        "post_only": ("|u1", 41),
    }
    assert OP_DTYPE.names == tuple(expected)
    fields = OP_DTYPE.fields
    assert fields is not None
    for name, (fmt, offset) in expected.items():
        dt, off = fields[name][:2]
        assert (dt.str, off) == (fmt, offset), name
    assert (OP_SUBMIT, OP_CANCEL, OP_MODIFY) == (0, 1, 2)


def test_event_dtype_layout() -> None:
    assert EVENT_DTYPE.itemsize == 56
    expected = {
        "order_id": ("<u8", 0),
        "other_id": ("<u8", 8),
        "price": ("<i8", 16),
        "qty": ("<u8", 24),
        "leaves": ("<u8", 32),
        "other_leaves": ("<u8", 40),
        "op_index": ("<u4", 48),
        "kind": ("|u1", 52),
        "reason": ("|u1", 53),
    }
    assert EVENT_DTYPE.names == tuple(expected)
    fields = EVENT_DTYPE.fields
    assert fields is not None
    for name, (fmt, offset) in expected.items():
        dt, off = fields[name][:2]
        assert (dt.str, off) == (fmt, offset), name


def test_op_bytes_are_read_at_the_documented_offsets() -> None:
    """Write one submit as raw little-endian bytes and check the book saw every field."""
    raw = bytearray(48)
    raw[0:8] = (77).to_bytes(8, "little")
    raw[8:16] = (123).to_bytes(8, "little", signed=True)
    raw[16:24] = (9).to_bytes(8, "little")
    raw[32:36] = (4_000_000_000).to_bytes(4, "little")
    raw[36] = OP_SUBMIT
    raw[37] = Side.SELL.code
    ops = np.frombuffer(bytes(raw), dtype=OP_DTYPE)
    book = OrderBook(capacity=10)
    out = book.process(ops)
    assert book.orders(Side.SELL) == [(77, 4_000_000_000, 123, 9)]
    assert out.dtype == EVENT_DTYPE and out.flags.writeable and out.flags.c_contiguous
    rec = out.tobytes()
    assert len(rec) == 56
    assert int.from_bytes(rec[0:8], "little") == 77
    assert int.from_bytes(rec[16:24], "little", signed=True) == 123
    assert int.from_bytes(rec[24:32], "little") == 9
    assert int.from_bytes(rec[32:40], "little") == 9
    assert int.from_bytes(rec[48:52], "little") == 0
    assert rec[52] == EventKind.ACCEPTED.code and rec[53] == Reason.NONE.code


def test_empty_batch() -> None:
    out = OrderBook(capacity=10).process(np.zeros(0, OP_DTYPE))
    assert out.dtype == EVENT_DTYPE and out.shape == (0,)


def test_batch_fields_and_op_index() -> None:
    ops = np.zeros(5, OP_DTYPE)
    ops[0] = (1, 101, 5, 0, 1, OP_SUBMIT, Side.SELL.code, 0, 0, 0, 0)
    ops[1] = (2, 102, 5, 0, 1, OP_SUBMIT, Side.SELL.code, 0, 0, 0, 0)
    ops[2] = (3, 0, 7, 0, 2, OP_SUBMIT, Side.BUY.code, OrderType.MARKET.code, 1, 0, 0)
    ops[3] = (2, 105, 2, 0, 0, OP_MODIFY, 0, 0, 0, 0, 0)
    ops[4] = (9, 0, 0, 0, 0, OP_CANCEL, 0, 0, 0, 0, 0)
    out = OrderBook(capacity=10).process(ops)
    kinds = [EventKind.from_code(int(k)) for k in out["kind"]]
    reasons = [Reason.from_code(int(r)) for r in out["reason"]]
    assert kinds == ["ACCEPTED", "ACCEPTED", "ACCEPTED", "FILL", "FILL", "REPLACED", "REJECTED"]
    assert reasons == ["", "", "", "", "", "", "UNKNOWN_ORDER"]
    assert out["op_index"].tolist() == [0, 1, 2, 2, 2, 3, 4]
    assert out["other_id"].tolist() == [0, 0, 0, 1, 2, 0, 0]
    assert out["price"].tolist() == [101, 102, 0, 101, 102, 105, 0]
    assert out["qty"].tolist() == [5, 5, 7, 5, 2, 2, 0]
    assert out["leaves"].tolist() == [5, 5, 7, 2, 0, 2, 0]
    assert out["other_leaves"].tolist() == [0, 0, 0, 0, 3, 0, 0]


@pytest.mark.parametrize(
    ("field", "value", "valid"),
    [
        ("op", 3, "0=SUBMIT, 1=CANCEL, 2=MODIFY"),
        ("side", 2, "0=BUY, 1=SELL"),
        ("order_type", 2, "0=LIMIT, 1=MARKET"),
        ("tif", 3, "0=GTC, 1=IOC, 2=FOK"),
        ("stp", 4, "0=NONE, 1=CANCEL_NEWEST, 2=CANCEL_OLDEST, 3=CANCEL_BOTH"),
        ("post_only", 2, "0=False, 1=True"),
    ],
)
def test_bad_code_rejects_the_whole_batch(field: str, value: int, valid: str) -> None:
    book = OrderBook(capacity=10)
    ops = np.zeros(4, OP_DTYPE)
    ops["order_id"] = [1, 2, 3, 4]
    ops["price"] = 100
    ops["qty"] = 1
    ops[field][2] = value
    message = f"ops[2].{field} = {value} is not a valid code (valid: {valid})"
    with pytest.raises(ValueError, match=re.escape(message)):
        book.process(ops)
    assert len(book) == 0  # rows 0 and 1 were valid, but nothing was applied
    ops[field][2] = 0
    book.process(ops)
    assert len(book) == 4


def test_bad_row_in_a_later_chunk_rejects_the_whole_batch() -> None:
    # process() copies and applies 65,536 rows at a time: a bad row far past the first chunk
    # must still stop the batch before any row runs, and the events of a good multi-chunk
    # batch must carry op_index across chunk boundaries.
    n = 150_000
    ops = np.zeros(n, OP_DTYPE)
    ops["order_id"] = np.arange(1, n + 1)
    ops["price"] = 100 + np.arange(n) % 50
    ops["qty"] = 1
    ops["tif"][140_000] = 9
    book = OrderBook(capacity=n)
    with pytest.raises(ValueError, match=re.escape("ops[140000].tif = 9")):
        book.process(ops)
    assert len(book) == 0
    ops["tif"][140_000] = 0
    events = book.process(ops)
    assert len(book) == n
    assert (events["op_index"] == np.arange(n)).all()
    assert (events["order_id"] == np.arange(1, n + 1)).all()


def test_more_events_than_rows_across_a_chunk_boundary() -> None:
    """The events array is sized for one event per row and grows when an operation yields
    more: here the first 65,536-row chunk rests 65,536 sells, and one buy in the next chunk
    sweeps them all (65,537 events from one row), so the array must grow mid-batch. The
    result must equal the per-call events and the same rows sent as small batches."""
    n = 65_536
    ops = np.zeros(n + 2, OP_DTYPE)
    ops["order_id"][:n] = np.arange(1, n + 1)
    ops["price"][:n] = 100 + np.arange(n) % 7
    ops["qty"][:n] = 2
    ops["account"][:n] = 1
    ops["side"][:n] = Side.SELL.code
    ops[n] = (n + 1, 0, 2 * n, 0, 2, OP_SUBMIT, Side.BUY.code, OrderType.MARKET.code, 1, 0, 0)
    ops[n + 1] = (n + 2, 106, 1, 0, 2, OP_SUBMIT, Side.BUY.code, 0, 0, 0, 0)

    out = OrderBook(capacity=n + 2).process(ops)
    assert out.dtype == EVENT_DTYPE and out.flags.writeable and out.flags.c_contiguous
    assert len(out) == n + 1 + n + 1
    fills = out[n + 1 : 2 * n + 1]
    assert (fills["kind"] == EventKind.FILL.code).all()
    assert (fills["op_index"] == n).all()
    assert int(fills["qty"].sum()) == 2 * n
    assert out["op_index"][-1] == n + 1 and out["kind"][-1] == EventKind.ACCEPTED.code

    small = OrderBook(capacity=n + 2)
    parts = [small.process(ops[i : i + 5_000]) for i in range(0, len(ops), 5_000)]
    for i, part in enumerate(parts):
        part["op_index"] += i * 5_000
    assert np.array_equal(np.concatenate(parts), out)

    one_by_one = OrderBook(capacity=n + 2)
    expected = [(i, ev) for i, row in enumerate(ops.tolist()) for ev in per_call(one_by_one, row)]
    assert batch_tuples(out) == expected
    out["qty"][0] = 99  # the array is the caller's own
    assert out["qty"][0] == 99


@pytest.mark.parametrize(
    ("ops", "error", "message"),
    [
        (
            [1, 2, 3],
            TypeError,
            "ops must be a numpy.ndarray with dtype tradecore.OP_DTYPE, got list",
        ),
        (np.zeros(3, np.uint8), ValueError, "ops must have dtype tradecore.OP_DTYPE"),
        (np.zeros(3, EVENT_DTYPE), ValueError, "ops must have dtype tradecore.OP_DTYPE"),
        (np.zeros((2, 2), OP_DTYPE), ValueError, "ops must be a 1-dimensional array, got 2"),
        (np.zeros(6, OP_DTYPE)[::2], ValueError, "ops must be C-contiguous"),
        (
            np.zeros(3, OP_DTYPE.newbyteorder(">")),
            ValueError,
            "ops must have dtype tradecore.OP_DTYPE",
        ),
    ],
)
def test_bad_arrays(ops: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        OrderBook(capacity=10).process(ops)


def test_read_only_input_is_accepted_and_not_modified() -> None:
    ops = np.zeros(2, OP_DTYPE)
    ops[0] = (1, 100, 5, 0, 1, OP_SUBMIT, 0, 0, 0, 0, 0)
    ops[1] = (1, 0, 0, 0, 0, OP_CANCEL, 0, 0, 0, 0, 0)
    ops.flags.writeable = False
    before = ops.tobytes()
    out = OrderBook(capacity=10).process(ops)
    assert [EventKind.from_code(int(k)) for k in out["kind"]] == ["ACCEPTED", "CANCELLED"]
    assert ops.tobytes() == before


def test_output_is_independent_of_later_batches() -> None:
    """The book reuses its scratch buffers; arrays already returned must not change."""
    book = OrderBook(capacity=100)
    ops = np.zeros(3, OP_DTYPE)
    ops["order_id"] = [1, 2, 3]
    ops["price"] = [100, 101, 102]
    ops["qty"] = 1
    first = book.process(ops)
    snapshot = first.copy()
    ops["order_id"] = [4, 5, 6]
    second = book.process(ops)
    assert np.array_equal(first, snapshot)
    assert second["order_id"].tolist() == [4, 5, 6]
    assert not np.shares_memory(first, second)


# --- batch == per call ---------------------------------------------------------------------

ids = st.integers(0, 12)
prices = st.integers(-1, 8).map(lambda p: 100 + p if p >= 0 else 0)
qtys = st.integers(0, 12)

submit_rows = st.builds(
    lambda oid, acct, side, price, qty, ot, tif, stp, po, ts: (
        oid,
        price,
        qty,
        ts,
        acct,
        OP_SUBMIT,
        side,
        ot,
        tif,
        stp,
        po,
    ),
    ids,
    st.integers(1, 3),
    st.integers(0, 1),
    prices,
    qtys,
    st.sampled_from([0, 0, 0, 1]),
    st.integers(0, 2),
    st.integers(0, 3),
    st.sampled_from([0, 0, 0, 1]),
    st.integers(0, 2**64 - 1),
)
cancel_rows = st.builds(lambda oid: (oid, 0, 0, 0, 0, OP_CANCEL, 0, 0, 0, 0, 0), ids)
modify_rows = st.builds(
    lambda oid, price, qty: (oid, price, qty, 0, 0, OP_MODIFY, 0, 0, 0, 0, 0), ids, prices, qtys
)
streams = st.lists(
    st.one_of(submit_rows, submit_rows, cancel_rows, modify_rows), min_size=0, max_size=60
)


def per_call(book: OrderBook, row: Row) -> list[tuple[Any, ...]]:
    oid, price, qty, ts, acct, op, side, ot, tif, stp, po = row
    if op == OP_SUBMIT:
        events = book.submit(
            oid,
            acct,
            Side.from_code(side),
            price,
            qty,
            order_type=OrderType.from_code(ot).value,  # names as str
            tif=TimeInForce.from_code(tif),
            stp=Stp.from_code(stp).value,
            post_only=bool(po),
            timestamp=ts,
        )
    elif op == OP_CANCEL:
        events = book.cancel(oid)
    else:
        events = book.modify(oid, price, qty)
    return [e.as_tuple() for e in events]


def batch_tuples(out: np.ndarray[Any, Any]) -> list[tuple[int, tuple[Any, ...]]]:
    return [
        (
            int(r["op_index"]),
            (
                EventKind.from_code(int(r["kind"])).value,
                Reason.from_code(int(r["reason"])).value,
                int(r["order_id"]),
                int(r["other_id"]),
                int(r["price"]),
                int(r["qty"]),
                int(r["leaves"]),
                int(r["other_leaves"]),
            ),
        )
        for r in out
    ]


@settings(max_examples=300, deadline=None)
@given(rows=streams, capacity=st.sampled_from([2, 4, 1000]), split=st.integers(0, 60))
def test_batch_equals_per_call(rows: list[Row], capacity: int, split: int) -> None:
    one_by_one = OrderBook(capacity=capacity)
    expected = [(i, ev) for i, row in enumerate(rows) for ev in per_call(one_by_one, row)]

    batched = OrderBook(capacity=capacity)
    ops = np.array(rows, dtype=OP_DTYPE) if rows else np.zeros(0, OP_DTYPE)
    # Two batches (split anywhere) must equal one stream: the book carries over.
    first = batch_tuples(batched.process(ops[:split]))
    second = [
        (i + min(split, len(rows)), ev) for i, ev in batch_tuples(batched.process(ops[split:]))
    ]
    assert first + second == expected

    for side in (Side.BUY, Side.SELL):
        assert batched.orders(side) == one_by_one.orders(side)
    assert batched.depth(100) == one_by_one.depth(100)
    assert len(batched) == len(one_by_one)
    batched.check_invariants()
