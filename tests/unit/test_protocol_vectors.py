"""The Python codec against the Rust codec's golden vectors, plus its own properties.

``tests/golden/protocol_vectors.json`` is written by ``crates/engine/tests/codec_vectors.rs``
(which fails when the file is stale). Here every message vector must encode to exactly its
bytes and decode back to exactly its fields, every malformed frame and datagram must fail with
the same error kind as in Rust, and the field layouts must be the Rust ones. Hypothesis then
checks round trips, prefixes, random bytes and mutated frames on the Python side alone.
"""

from __future__ import annotations

import contextlib
import enum
import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tradecore.enums import EventKind, OrderType, Reason, Side, Stp, TimeInForce
from tradecore.errors import TradecoreError
from tradecore.venue import codec
from tradecore.venue.codec import (
    BookUpdate,
    Cancel,
    Datagram,
    IncompleteFrame,
    Liquidity,
    Logon,
    Message,
    NewOrder,
    ProtocolError,
    RetransmitStatus,
    VenueHeartbeat,
    decode,
    decode_datagram,
    decode_from_client,
    decode_from_venue,
    encode,
    encode_datagram,
    encode_into,
)

VECTORS_PATH = Path(__file__).resolve().parents[2] / "tests" / "golden" / "protocol_vectors.json"
VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text())

ENUM_FIELDS: dict[str, type[enum.StrEnum]] = {
    "side": Side,
    "aggressor": Side,
    "order_type": OrderType,
    "tif": TimeInForce,
    "stp": Stp,
    "kind": EventKind,
    "reason": Reason,
    "liquidity": Liquidity,
    "status": RetransmitStatus,
}
SIGNED_FIELDS = {"price", "new_price"}
DECODERS = {"any": decode, "from_client": decode_from_client, "from_venue": decode_from_venue}
CLASSES: dict[str, type[Any]] = {cls.__name__: cls for cls in codec.MESSAGE_TYPES.values()}


def build(entry: dict[str, Any]) -> Message:
    """The message a vector describes: its type name and its fields (enums by value)."""
    cls = CLASSES[entry["type"]]
    fields = {
        name: ENUM_FIELDS[name](value) if name in ENUM_FIELDS else value
        for name, value in entry["fields"].items()
    }
    msg: Message = cls(**fields)
    return msg


def assert_typed(msg: Message) -> None:
    """Decoded enum fields are members of their classes, not bare strings."""
    for name, cls in ENUM_FIELDS.items():
        if hasattr(msg, name):
            assert type(getattr(msg, name)) is cls, (msg, name)
    if hasattr(msg, "post_only"):
        assert type(msg.post_only) is bool


def by_name(section: str) -> list[Any]:
    return [pytest.param(v, id=v["name"]) for v in VECTORS[section]]


def test_constants_and_layouts_match_rust() -> None:
    assert VECTORS["version"] == codec.VERSION
    assert VECTORS["header_len"] == codec.HEADER_LEN
    assert VECTORS["max_message_len"] == codec.MAX_MESSAGE_LEN
    assert VECTORS["packet_header_len"] == codec.PACKET_HEADER_LEN
    assert VECTORS["max_datagram_len"] == codec.MAX_DATAGRAM_LEN
    layouts = VECTORS["layouts"]
    assert set(layouts) == set(CLASSES)
    for name, spec in layouts.items():
        cls = CLASSES[name]
        assert spec["type"] == cls.TYPE, name
        assert codec.MESSAGE_TYPES[spec["type"]] is cls
        assert [list(f) for f in codec.layout(cls)] == spec["fields"], name
        last = codec.layout(cls)[-1] if codec.layout(cls) else ("header", 0, codec.HEADER_LEN)
        assert last[1] + last[2] == spec["length"], name


def test_every_type_has_vectors() -> None:
    assert {v["type"] for v in VECTORS["messages"]} == set(CLASSES)


@pytest.mark.parametrize("vector", by_name("messages"))
def test_message_vector(vector: dict[str, Any]) -> None:
    msg = build(vector)
    frame = bytes.fromhex(vector["hex"])
    assert encode(msg).hex() == vector["hex"]
    decoded, used = decode(frame)
    assert (decoded, used) == (msg, len(frame))
    assert_typed(decoded)
    # At an offset inside a larger buffer, with bytes after it.
    buf = bytearray(b"\xee" * 3 + bytes(len(frame) + 5))
    assert encode_into(msg, buf, 3) == len(frame)
    assert buf[3 : 3 + len(frame)] == frame
    assert decode(buf, 3) == (msg, len(frame))
    assert decode(memoryview(bytes(buf)), 3) == (msg, len(frame))
    # Every strict prefix waits for more bytes.
    for cut in range(len(frame)):
        with pytest.raises(IncompleteFrame) as info:
            decode(frame[:cut])
        need = codec.HEADER_LEN if cut < codec.HEADER_LEN else len(frame)
        assert (info.value.need, info.value.have, info.value.kind) == (need, cut, "incomplete")
    # Direction filters.
    direction = codec.direction(msg)
    if direction is codec.Direction.CLIENT_TO_VENUE:
        assert decode_from_client(frame) == (msg, len(frame))
    else:
        assert decode_from_venue(frame) == (msg, len(frame))


@pytest.mark.parametrize("vector", by_name("errors"))
def test_error_vector(vector: dict[str, Any]) -> None:
    frame = bytes.fromhex(vector["hex"])
    with pytest.raises(ProtocolError) as info:
        DECODERS[vector["decoder"]](frame)
    assert info.value.kind == vector["error"], info.value
    assert isinstance(info.value, IncompleteFrame) == (vector["error"] == "incomplete")


@pytest.mark.parametrize("vector", by_name("datagrams"))
def test_datagram_vector(vector: dict[str, Any]) -> None:
    messages = tuple(build(m) for m in vector["messages"])
    data = bytes.fromhex(vector["hex"])
    assert encode_datagram(vector["channel"], vector["seq"], messages).hex() == vector["hex"]  # type: ignore[arg-type]
    dg = decode_datagram(data)
    assert dg == Datagram(vector["channel"], vector["seq"], messages)  # type: ignore[arg-type]
    assert [s for s, _ in dg.items()] == list(range(vector["seq"], vector["seq"] + len(messages)))
    for m in dg.messages:
        assert_typed(m)


@pytest.mark.parametrize("vector", by_name("datagram_errors"))
def test_datagram_error_vector(vector: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_datagram(bytes.fromhex(vector["hex"]))
    assert info.value.kind == vector["error"], info.value


def test_error_classes() -> None:
    err = ProtocolError("bad_version", "unsupported protocol version 2")
    assert isinstance(err, ValueError)
    assert isinstance(err, TradecoreError)
    again = pickle.loads(pickle.dumps(err))
    assert (type(again), again.kind, str(again)) == (ProtocolError, "bad_version", str(err))
    inc = pickle.loads(pickle.dumps(IncompleteFrame(37, 4)))
    assert (inc.need, inc.have, inc.kind) == (37, 4, "incomplete")


ORDER = NewOrder(
    client_order_id=1,
    symbol_id=1,
    side=Side.BUY,
    order_type=OrderType.LIMIT,
    tif=TimeInForce.GTC,
    post_only=False,
    stp=Stp.CANCEL_NEWEST,
    price=15_005,
    qty=100,
)


def test_encoder_errors() -> None:
    def kind_of(msg: Any) -> str:
        with pytest.raises(ProtocolError) as info:
            encode(msg)
        return info.value.kind

    assert kind_of(ORDER.__class__(**{**_fields(ORDER), "qty": -1})) == "out_of_range"
    assert kind_of(ORDER.__class__(**{**_fields(ORDER), "qty": 2**64})) == "out_of_range"
    assert kind_of(ORDER.__class__(**{**_fields(ORDER), "price": 2**63})) == "out_of_range"
    assert kind_of(ORDER.__class__(**{**_fields(ORDER), "symbol_id": 2**32})) == "out_of_range"
    assert kind_of(ORDER.__class__(**{**_fields(ORDER), "side": "UP"})) == "bad_enum"
    assert kind_of(ORDER.__class__(**{**_fields(ORDER), "side": Stp.NONE})) == "bad_enum"
    assert kind_of(ORDER.__class__(**{**_fields(ORDER), "post_only": 2})) == "bad_enum"
    for key in ["has space", "x" * 33, "é", "tab\t"]:
        assert kind_of(Logon(account=1, api_key=key, heartbeat_ms=1)) == "bad_api_key", key
    # Plain string values are accepted for enums, and give the same bytes.
    as_strings = ORDER.__class__(**{**_fields(ORDER), "side": "BUY", "stp": "CANCEL_NEWEST"})
    assert encode(as_strings) == encode(ORDER)
    with pytest.raises(TypeError):
        encode(ORDER.__class__(**{**_fields(ORDER), "qty": "100"}))
    with pytest.raises(TypeError):
        encode(object())  # type: ignore[arg-type]
    with pytest.raises(ProtocolError) as info:
        encode_into(ORDER, bytearray(36))
    assert info.value.kind == "buffer_too_small"
    with pytest.raises(ProtocolError) as info:
        encode_datagram(1, 1, [ORDER])  # type: ignore[list-item]
    assert info.value.kind == "wrong_direction"
    update = BookUpdate(symbol_id=1, side=Side.BUY, price=1, qty=1)
    fits = (codec.MAX_DATAGRAM_LEN - codec.PACKET_HEADER_LEN) // len(encode(update))
    assert len(encode_datagram(1, 1, [update] * fits)) <= codec.MAX_DATAGRAM_LEN
    with pytest.raises(ProtocolError) as info:
        encode_datagram(1, 1, [update] * (fits + 1))
    assert info.value.kind == "buffer_too_small"


def _fields(msg: Any) -> dict[str, Any]:
    return {name: getattr(msg, name) for name, _, _ in codec.layout(type(msg))}


def test_stream_in_chunks() -> None:
    msgs: list[Message] = [ORDER, Cancel(1, 1), VenueHeartbeat(5), ORDER, Logon(3, "k", 100)]
    stream = b"".join(encode(m) for m in msgs)
    for chunk in (1, 3, 7, 64):
        pending = bytearray()
        out: list[Message] = []
        for i in range(0, len(stream), chunk):
            pending += stream[i : i + chunk]
            while True:
                try:
                    msg, n = decode(pending)
                except IncompleteFrame:
                    break
                out.append(msg)
                del pending[:n]
        assert out == msgs
        assert not pending


# ---- properties ----


def _field_strategy(name: str, size: int) -> st.SearchStrategy[Any]:
    if name in ENUM_FIELDS:
        return st.sampled_from(list(ENUM_FIELDS[name]))
    if name == "post_only":
        return st.booleans()
    if size == codec.API_KEY_LEN:
        return st.text(alphabet=[chr(c) for c in range(0x21, 0x7F)], max_size=32)
    if name in SIGNED_FIELDS:
        return st.integers(-(2**63), 2**63 - 1)
    return st.integers(0, 2 ** (8 * size) - 1)


def _message_strategy(cls: type[Any]) -> st.SearchStrategy[Message]:
    fields = {name: _field_strategy(name, size) for name, _, size in codec.layout(cls)}
    return st.builds(cls, **fields)


MESSAGES = st.one_of([_message_strategy(c) for c in CLASSES.values()])
FEED = st.one_of([_message_strategy(c) for c in (codec.BookUpdate, codec.Trade, codec.FeedReport)])


@settings(max_examples=500, deadline=None)
@given(MESSAGES, st.binary(max_size=8))
def test_round_trip(msg: Message, tail: bytes) -> None:
    frame = encode(msg)
    assert (
        frame[0] | frame[1] << 8 == len(frame) == VECTORS["layouts"][type(msg).__name__]["length"]
    )
    assert decode(frame + tail) == (msg, len(frame))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_protocol_errors(data: bytes) -> None:
    for decoder in (decode, decode_from_client, decode_from_venue):
        try:
            msg, n = decoder(data)
        except ProtocolError:
            continue
        assert encode(msg) == data[:n]
    with contextlib.suppress(ProtocolError):
        decode_datagram(data)


@settings(max_examples=500, deadline=None)
@given(MESSAGES, st.data())
def test_mutated_frames_are_rejected_or_canonical(msg: Message, data: st.DataObject) -> None:
    frame = bytearray(encode(msg))
    i = data.draw(st.integers(0, len(frame) - 1))
    frame[i] = data.draw(st.integers(0, 255))
    try:
        back, n = decode(frame)
    except ProtocolError:
        return
    assert n == len(frame)
    assert encode(back) == bytes(frame)


@settings(max_examples=200, deadline=None)
@given(st.lists(FEED, max_size=40), st.integers(0, 2**32 - 1), st.integers(0, 2**63))
def test_datagram_round_trip(msgs: list[Any], channel: int, seq: int) -> None:
    try:
        data = encode_datagram(channel, seq, msgs)
    except ProtocolError as e:
        assert e.kind == "buffer_too_small"
        size = codec.PACKET_HEADER_LEN + sum(len(encode(m)) for m in msgs)
        assert size > codec.MAX_DATAGRAM_LEN
        return
    assert decode_datagram(data) == Datagram(channel, seq, tuple(msgs))
