"""The venue's binary protocol in pure Python (the spec is ``docs/protocol.md``).

This is the twin of the Rust codec (``crates/engine/src/codec.rs``): the same sixteen messages as
frozen dataclasses, the same byte layouts (precompiled :class:`struct.Struct` objects, little
endian, no padding), the same checks in the same order, and the same error kinds. Both codecs are
checked against ``tests/golden/protocol_vectors.json``.

Every decoding failure raises :class:`ProtocolError` (a ``ValueError``) whose ``kind`` is the
Rust variant's name (``"bad_version"``, ``"unknown_type"``, ...); a buffer that ends inside a
frame raises its subclass :class:`IncompleteFrame`, which means "read more bytes and call
again", not "malformed". Enum fields hold the members of :mod:`tradecore.enums` (plus
:class:`Liquidity` and :class:`RetransmitStatus`, which belong to the protocol); encoders also
accept their string values (``"BUY"``).

>>> frame = encode(Cancel(client_order_id=7, symbol_id=1))
>>> frame.hex()
'10001101070000000000000001000000'
>>> decode(frame)
(Cancel(client_order_id=7, symbol_id=1), 16)
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, TypeAlias

from tradecore.enums import EventKind, OrderType, Reason, Side, Stp, TimeInForce
from tradecore.errors import TradecoreError

__all__ = [
    "API_KEY_LEN",
    "HEADER_LEN",
    "MAX_DATAGRAM_LEN",
    "MAX_MESSAGE_LEN",
    "MESSAGE_TYPES",
    "PACKET_HEADER_LEN",
    "VERSION",
    "BookUpdate",
    "BytesLike",
    "Cancel",
    "ClientMessage",
    "Datagram",
    "Direction",
    "ExecutionReport",
    "FeedMessage",
    "FeedReport",
    "Heartbeat",
    "IncompleteFrame",
    "Liquidity",
    "Logon",
    "LogonAck",
    "LogonReject",
    "Logout",
    "MassCancel",
    "Message",
    "Modify",
    "NewOrder",
    "ProtocolError",
    "RetransmitReply",
    "RetransmitRequest",
    "RetransmitStatus",
    "Trade",
    "VenueHeartbeat",
    "VenueMessage",
    "decode",
    "decode_datagram",
    "decode_from_client",
    "decode_from_venue",
    "direction",
    "encode",
    "encode_datagram",
    "encode_into",
    "layout",
]

VERSION: Final = 1
"""Protocol version carried by every frame and datagram."""
HEADER_LEN: Final = 4
"""Bytes of the frame header."""
MAX_MESSAGE_LEN: Final = 256
"""Largest frame length a decoder accepts."""
PACKET_HEADER_LEN: Final = 16
"""Bytes of the UDP packet header."""
MAX_DATAGRAM_LEN: Final = 1472
"""Largest datagram (1500-byte MTU minus IPv4 and UDP headers)."""
API_KEY_LEN: Final = 32
"""Bytes of the ``Logon.api_key`` field."""


BytesLike: TypeAlias = bytes | bytearray | memoryview
"""What the decoders read from."""


class ProtocolError(TradecoreError, ValueError):
    """A frame or datagram that does not follow the protocol (or a message that cannot be
    encoded). ``kind`` names the failure exactly as the Rust codec's ``CodecError::kind``; the
    encoders add ``"out_of_range"`` (an integer too large for its field), which Rust's types
    rule out."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.kind, str(self)))


class IncompleteFrame(ProtocolError):
    """The buffer ends inside a frame: ``need`` bytes are needed, ``have`` are available."""

    def __init__(self, need: int, have: int) -> None:
        self.need = need
        self.have = have
        super().__init__("incomplete", f"incomplete frame: {need} bytes needed, {have} available")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.need, self.have))


class Liquidity(enum.StrEnum):
    """Whether a fill's order was resting (MAKER) or incoming (TAKER); NONE for other reports."""

    NONE = "NONE"
    MAKER = "MAKER"
    TAKER = "TAKER"


class RetransmitStatus(enum.StrEnum):
    """Outcome of a retransmit request."""

    OK = "OK"
    PARTIAL = "PARTIAL"
    UNAVAILABLE = "UNAVAILABLE"
    UNKNOWN_CHANNEL = "UNKNOWN_CHANNEL"


class Direction(enum.StrEnum):
    """Who sends a message type (its type byte's range)."""

    CLIENT_TO_VENUE = "client to venue"
    VENUE_TO_CLIENT = "venue to client"
    FEED = "feed"


# ---- messages: client -> venue ----


@dataclass(frozen=True, slots=True)
class Logon:
    """Opens a session; ``api_key`` is up to 32 ASCII graphic characters."""

    account: int
    api_key: str
    heartbeat_ms: int
    TYPE: ClassVar[int] = 0x01


@dataclass(frozen=True, slots=True)
class Logout:
    """Ends the session."""

    TYPE: ClassVar[int] = 0x02


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Client keep-alive."""

    TYPE: ClassVar[int] = 0x03


@dataclass(frozen=True, slots=True)
class NewOrder:
    """A new order (price in ticks, quantity in lots)."""

    client_order_id: int
    symbol_id: int
    side: Side
    order_type: OrderType
    tif: TimeInForce
    post_only: bool
    stp: Stp
    price: int
    qty: int
    TYPE: ClassVar[int] = 0x10


@dataclass(frozen=True, slots=True)
class Cancel:
    """Cancels one of the account's orders."""

    client_order_id: int
    symbol_id: int
    TYPE: ClassVar[int] = 0x11


@dataclass(frozen=True, slots=True)
class Modify:
    """Cancel/replace: new price and new remaining quantity."""

    client_order_id: int
    symbol_id: int
    new_price: int
    new_qty: int
    TYPE: ClassVar[int] = 0x12


@dataclass(frozen=True, slots=True)
class MassCancel:
    """Cancels every live order of the account on one instrument (or all, ``symbol_id`` 0)."""

    symbol_id: int
    TYPE: ClassVar[int] = 0x13


@dataclass(frozen=True, slots=True)
class RetransmitRequest:
    """Asks for ``count`` messages from ``from_seq`` of a channel (0 = this session's reports)."""

    channel: int
    from_seq: int
    count: int
    TYPE: ClassVar[int] = 0x20


# ---- messages: venue -> client ----


@dataclass(frozen=True, slots=True)
class LogonAck:
    """Logon accepted."""

    next_seq: int
    session_id: int
    heartbeat_ms: int
    TYPE: ClassVar[int] = 0x41


@dataclass(frozen=True, slots=True)
class LogonReject:
    """Logon refused; the venue closes the connection."""

    next_seq: int
    reason: Reason
    TYPE: ClassVar[int] = 0x42


@dataclass(frozen=True, slots=True)
class VenueHeartbeat:
    """Venue keep-alive; ``next_seq`` is the number of the session's next report."""

    next_seq: int
    TYPE: ClassVar[int] = 0x43


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """What happened to one of the session's orders (``seq`` 0 = unsequenced reject)."""

    seq: int
    client_order_id: int
    order_id: int
    symbol_id: int
    kind: EventKind
    reason: Reason
    side: Side
    liquidity: Liquidity
    price: int
    qty: int
    leaves: int
    timestamp_ns: int
    TYPE: ClassVar[int] = 0x50


@dataclass(frozen=True, slots=True)
class RetransmitReply:
    """Answers a retransmit request; exactly ``count`` frames follow it."""

    next_seq: int
    channel: int
    from_seq: int
    requested: int
    count: int
    status: RetransmitStatus
    TYPE: ClassVar[int] = 0x60


# ---- messages: feed ----


@dataclass(frozen=True, slots=True)
class BookUpdate:
    """A price level's new absolute quantity (0 = the level is gone)."""

    symbol_id: int
    side: Side
    price: int
    qty: int
    TYPE: ClassVar[int] = 0x81


@dataclass(frozen=True, slots=True)
class Trade:
    """One match; ``aggressor`` is the side of the incoming order."""

    symbol_id: int
    aggressor: Side
    price: int
    qty: int
    timestamp_ns: int
    TYPE: ClassVar[int] = 0x82


@dataclass(frozen=True, slots=True)
class FeedReport:
    """The UDP drop copy of an execution report, naming its account."""

    account: int
    seq: int
    client_order_id: int
    order_id: int
    symbol_id: int
    kind: EventKind
    reason: Reason
    side: Side
    liquidity: Liquidity
    price: int
    qty: int
    leaves: int
    timestamp_ns: int
    TYPE: ClassVar[int] = 0x83


ClientMessage: TypeAlias = (
    Logon | Logout | Heartbeat | NewOrder | Cancel | Modify | MassCancel | RetransmitRequest
)
VenueMessage: TypeAlias = (
    LogonAck | LogonReject | VenueHeartbeat | ExecutionReport | RetransmitReply
)
FeedMessage: TypeAlias = BookUpdate | Trade | FeedReport
Message: TypeAlias = ClientMessage | VenueMessage | FeedMessage


@dataclass(frozen=True, slots=True)
class Datagram:
    """A decoded UDP datagram: message ``i`` carries sequence number ``seq + i``."""

    channel: int
    seq: int
    messages: tuple[FeedMessage, ...]

    def items(self) -> Iterator[tuple[int, FeedMessage]]:
        """``(seq, message)`` pairs in order."""
        return enumerate(self.messages, self.seq)


# ---- field kinds and the per-message codec tables ----

_EnumType: TypeAlias = type[enum.StrEnum]
_Kind: TypeAlias = str | _EnumType  # "u32", "u64", "i64", "bool", "key", or an enum class

_FORMAT: Final[dict[str, str]] = {"u32": "I", "u64": "Q", "i64": "q", "bool": "B", "key": "32s"}
_SIZE: Final[dict[str, int]] = {"u32": 4, "u64": 8, "i64": 8, "bool": 1, "key": 32}
_HEADER: Final = struct.Struct("<HBB")
_PACKET_HEADER: Final = struct.Struct("<IQHBB")

_ENUM_CLASSES: Final[tuple[_EnumType, ...]] = (
    Side,
    OrderType,
    TimeInForce,
    Stp,
    EventKind,
    Reason,
    Liquidity,
    RetransmitStatus,
)
# Members in discriminant order (the definition order, as in Rust); value -> code for encoding.
_MEMBERS: Final[dict[_EnumType, tuple[enum.StrEnum, ...]]] = {c: tuple(c) for c in _ENUM_CLASSES}
_CODES: Final[dict[_EnumType, dict[str, int]]] = {
    c: {m.value: i for i, m in enumerate(c)} for c in _ENUM_CLASSES
}


def _direction(code: int) -> Direction | None:
    if 0x01 <= code <= 0x3F:
        return Direction.CLIENT_TO_VENUE
    if 0x40 <= code <= 0x7F:
        return Direction.VENUE_TO_CLIENT
    if 0x80 <= code <= 0xBF:
        return Direction.FEED
    return None


def _bad_enum(field: str, value: int) -> ProtocolError:
    return ProtocolError("bad_enum", f"invalid value {value} for field `{field}`")


def _bad_key() -> ProtocolError:
    return ProtocolError(
        "bad_api_key", "API key must be up to 32 ASCII graphic characters, zero padded"
    )


def _key_to_wire(key: object) -> bytes:
    if not isinstance(key, str):
        raise TypeError(f"api_key must be a str, got {type(key).__name__}")
    try:
        raw = key.encode("ascii")
    except UnicodeEncodeError:
        raise _bad_key() from None
    if len(raw) > API_KEY_LEN or not all(0x21 <= b <= 0x7E for b in raw):
        raise _bad_key()
    return raw


def _key_from_wire(raw: bytes) -> str:
    n = raw.find(0)
    if n < 0:
        n = API_KEY_LEN
    if not all(0x21 <= b <= 0x7E for b in raw[:n]) or raw.count(0, n) != API_KEY_LEN - n:
        raise _bad_key()
    return raw[:n].decode("ascii")


class _Spec:
    """How one message type maps onto bytes."""

    __slots__ = (
        "body",
        "cls",
        "code",
        "decoders",
        "direction",
        "encoders",
        "fields",
        "frame",
        "kinds",
        "length",
        "make",
    )

    def __init__(self, cls: type[Any], fields: Sequence[tuple[str, _Kind]]) -> None:
        self.cls = cls
        self.make: Callable[..., Message] = cls
        self.code: int = cls.TYPE
        self.kinds: tuple[_Kind, ...] = tuple(k for _, k in fields)
        direction = _direction(self.code)
        assert direction is not None
        self.direction = direction
        fmt = "".join("B" if isinstance(k, type) else _FORMAT[k] for _, k in fields)
        self.body = struct.Struct("<" + fmt)
        self.frame = struct.Struct("<HBB" + fmt)
        self.length: int = self.frame.size
        offsets: list[tuple[str, int, int]] = []
        offset = HEADER_LEN
        for name, k in fields:
            size = 1 if isinstance(k, type) else _SIZE[k]
            offsets.append((name, offset, size))
            offset += size
        assert offset == self.length, cls
        self.fields: tuple[tuple[str, int, int], ...] = tuple(offsets)
        self.encoders = tuple((name, _encoder(name, k)) for name, k in fields)
        self.decoders = tuple(_decoder(name, k) for name, k in fields)


def _encoder(name: str, kind: _Kind) -> Callable[[Any], Any] | None:
    if isinstance(kind, type):
        codes = _CODES[kind]

        def enum_code(value: Any) -> int:
            try:
                return codes[value]
            except (KeyError, TypeError):
                raise ProtocolError(
                    "bad_enum", f"`{name}` must be a {kind.__name__}, got {value!r}"
                ) from None

        return enum_code
    if kind == "bool":

        def flag(value: Any) -> int:
            if value is True or value is False or value in (0, 1):
                return int(value)
            raise ProtocolError("bad_enum", f"`{name}` must be a bool, got {value!r}")

        return flag
    if kind == "key":
        return _key_to_wire
    return None  # integers: struct checks type and range


def _decoder(name: str, kind: _Kind) -> Callable[[Any], Any] | None:
    if isinstance(kind, type):
        members = _MEMBERS[kind]

        def member(code: int) -> enum.StrEnum:
            if code < len(members):
                return members[code]
            raise _bad_enum(name, code)

        return member
    if kind == "bool":

        def flag(code: int) -> bool:
            if code > 1:
                raise _bad_enum(name, code)
            return code == 1

        return flag
    if kind == "key":
        return _key_from_wire
    return None


_SPECS: Final[dict[type[Any], _Spec]] = {
    s.cls: s
    for s in (
        _Spec(Logon, [("account", "u32"), ("api_key", "key"), ("heartbeat_ms", "u32")]),
        _Spec(Logout, []),
        _Spec(Heartbeat, []),
        _Spec(
            NewOrder,
            [
                ("client_order_id", "u64"),
                ("symbol_id", "u32"),
                ("side", Side),
                ("order_type", OrderType),
                ("tif", TimeInForce),
                ("post_only", "bool"),
                ("stp", Stp),
                ("price", "i64"),
                ("qty", "u64"),
            ],
        ),
        _Spec(Cancel, [("client_order_id", "u64"), ("symbol_id", "u32")]),
        _Spec(
            Modify,
            [
                ("client_order_id", "u64"),
                ("symbol_id", "u32"),
                ("new_price", "i64"),
                ("new_qty", "u64"),
            ],
        ),
        _Spec(MassCancel, [("symbol_id", "u32")]),
        _Spec(RetransmitRequest, [("channel", "u32"), ("from_seq", "u64"), ("count", "u32")]),
        _Spec(LogonAck, [("next_seq", "u64"), ("session_id", "u64"), ("heartbeat_ms", "u32")]),
        _Spec(LogonReject, [("next_seq", "u64"), ("reason", Reason)]),
        _Spec(VenueHeartbeat, [("next_seq", "u64")]),
        _Spec(
            ExecutionReport,
            [
                ("seq", "u64"),
                ("client_order_id", "u64"),
                ("order_id", "u64"),
                ("symbol_id", "u32"),
                ("kind", EventKind),
                ("reason", Reason),
                ("side", Side),
                ("liquidity", Liquidity),
                ("price", "i64"),
                ("qty", "u64"),
                ("leaves", "u64"),
                ("timestamp_ns", "u64"),
            ],
        ),
        _Spec(
            RetransmitReply,
            [
                ("next_seq", "u64"),
                ("channel", "u32"),
                ("from_seq", "u64"),
                ("requested", "u32"),
                ("count", "u32"),
                ("status", RetransmitStatus),
            ],
        ),
        _Spec(BookUpdate, [("symbol_id", "u32"), ("side", Side), ("price", "i64"), ("qty", "u64")]),
        _Spec(
            Trade,
            [
                ("symbol_id", "u32"),
                ("aggressor", Side),
                ("price", "i64"),
                ("qty", "u64"),
                ("timestamp_ns", "u64"),
            ],
        ),
        _Spec(
            FeedReport,
            [
                ("account", "u32"),
                ("seq", "u64"),
                ("client_order_id", "u64"),
                ("order_id", "u64"),
                ("symbol_id", "u32"),
                ("kind", EventKind),
                ("reason", Reason),
                ("side", Side),
                ("liquidity", Liquidity),
                ("price", "i64"),
                ("qty", "u64"),
                ("leaves", "u64"),
                ("timestamp_ns", "u64"),
            ],
        ),
    )
}
_BY_CODE: Final[dict[int, _Spec]] = {s.code: s for s in _SPECS.values()}

MESSAGE_TYPES: Final[dict[int, type[Any]]] = {code: s.cls for code, s in _BY_CODE.items()}
"""Message class by type byte."""


def _spec_of(msg: object) -> _Spec:
    spec = _SPECS.get(type(msg))
    if spec is None:
        raise TypeError(f"not a protocol message: {type(msg).__name__}")
    return spec


def layout(cls: type[Any]) -> tuple[tuple[str, int, int], ...]:
    """``(field, offset, size)`` of each body field of a message class; offsets count from the
    first byte of the frame (header included), as in ``docs/protocol.md``."""
    return _spec_of_class(cls).fields


def _spec_of_class(cls: type[Any]) -> _Spec:
    spec = _SPECS.get(cls)
    if spec is None:
        raise TypeError(f"not a protocol message class: {cls!r}")
    return spec


def direction(msg: Message | type[Any]) -> Direction:
    """Who sends this message (or message class)."""
    spec = _spec_of_class(msg) if isinstance(msg, type) else _spec_of(msg)
    return spec.direction


def _values(spec: _Spec, msg: object) -> list[Any]:
    values: list[Any] = []
    for name, conv in spec.encoders:
        value = getattr(msg, name)
        values.append(value if conv is None else conv(value))
    return values


def encode_into(msg: Message, buf: bytearray | memoryview, offset: int = 0) -> int:
    """Writes ``msg``'s frame into ``buf`` at ``offset``; returns its length.

    Raises :class:`ProtocolError` (``buffer_too_small``, ``bad_enum``, ``bad_api_key``,
    ``out_of_range`` for an integer that does not fit its field) and ``TypeError`` for a
    non-message or a field of the wrong type.
    """
    spec = _spec_of(msg)
    have = len(buf) - offset
    if have < spec.length:
        raise ProtocolError(
            "buffer_too_small",
            f"buffer too small: {spec.length} bytes needed, {max(have, 0)} available",
        )
    values = _values(spec, msg)
    try:
        spec.frame.pack_into(buf, offset, spec.length, spec.code, VERSION, *values)
    except struct.error as e:
        raise _pack_error(spec, values, e) from None
    return spec.length


def encode(msg: Message) -> bytes:
    """``msg``'s frame as bytes (see :func:`encode_into` for the errors)."""
    spec = _spec_of(msg)
    values = _values(spec, msg)
    try:
        return spec.frame.pack(spec.length, spec.code, VERSION, *values)
    except struct.error as e:
        raise _pack_error(spec, values, e) from None


def _pack_error(spec: _Spec, values: list[Any], err: struct.error) -> Exception:
    for (name, _, size), kind, value in zip(spec.fields, spec.kinds, values, strict=True):
        if kind not in ("u32", "u64", "i64"):
            continue  # enums, flags and keys were converted (and checked) already
        if isinstance(value, bool) or not isinstance(value, int):
            return TypeError(f"`{name}` must be an int, got {type(value).__name__}")
        bits = 8 * size
        lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if kind == "i64" else (0, 2**bits - 1)
        if not lo <= value <= hi:
            return ProtocolError("out_of_range", f"`{name}` = {value} does not fit [{lo}, {hi}]")
    return ProtocolError("out_of_range", str(err))


def _check_header(buf: BytesLike, offset: int, avail: int) -> _Spec:
    if avail < HEADER_LEN:
        raise IncompleteFrame(HEADER_LEN, max(avail, 0))
    length, code, version = _HEADER.unpack_from(buf, offset)
    if version != VERSION:
        raise ProtocolError(
            "bad_version", f"unsupported protocol version {version} (expected {VERSION})"
        )
    if length > MAX_MESSAGE_LEN:
        raise ProtocolError(
            "oversized", f"frame length {length} exceeds the maximum of {MAX_MESSAGE_LEN}"
        )
    spec = _BY_CODE.get(code)
    if spec is None:
        raise ProtocolError("unknown_type", f"unknown message type 0x{code:02x}")
    if length != spec.length:
        raise ProtocolError(
            "bad_length",
            f"message type 0x{code:02x} has length {spec.length}, header says {length}",
        )
    return spec


def decode(buf: BytesLike, offset: int = 0) -> tuple[Message, int]:
    """Decodes the frame at ``offset`` of ``buf``; returns the message and the bytes it took.

    Raises :class:`IncompleteFrame` when ``buf`` ends inside the frame (read more, call again)
    and :class:`ProtocolError` for a malformed frame (``kind`` says why).
    """
    avail = len(buf) - offset
    spec = _check_header(buf, offset, avail)
    if avail < spec.length:
        raise IncompleteFrame(spec.length, avail)
    raw = spec.body.unpack_from(buf, offset + HEADER_LEN)
    args = [v if dec is None else dec(v) for dec, v in zip(spec.decoders, raw, strict=True)]
    return spec.make(*args), spec.length


def _wrong_direction(code: int, expected: Direction) -> ProtocolError:
    return ProtocolError(
        "wrong_direction", f"message type 0x{code:02x} is not allowed here (expected {expected})"
    )


def decode_from_client(buf: BytesLike, offset: int = 0) -> tuple[ClientMessage, int]:
    """:func:`decode` for the venue's side: only client -> venue messages are accepted."""
    msg, n = decode(buf, offset)
    spec = _SPECS[type(msg)]
    if spec.direction is not Direction.CLIENT_TO_VENUE:
        raise _wrong_direction(spec.code, Direction.CLIENT_TO_VENUE)
    assert not isinstance(msg, VenueMessage | FeedMessage)
    return msg, n


def decode_from_venue(buf: BytesLike, offset: int = 0) -> tuple[VenueMessage | FeedMessage, int]:
    """:func:`decode` for the client's side: venue -> client and feed messages (the latter
    arrive over TCP inside a retransmission)."""
    msg, n = decode(buf, offset)
    if isinstance(msg, ClientMessage):
        raise _wrong_direction(msg.TYPE, Direction.VENUE_TO_CLIENT)
    return msg, n


def encode_datagram(channel: int, seq: int, messages: Sequence[FeedMessage]) -> bytes:
    """One UDP datagram of ``channel`` whose first message carries ``seq`` (no messages = a
    heartbeat). Raises :class:`ProtocolError` (``wrong_direction`` for a non-feed message,
    ``buffer_too_small`` beyond :data:`MAX_DATAGRAM_LEN`)."""
    frames = []
    for m in messages:
        spec = _spec_of(m)
        if spec.direction is not Direction.FEED:
            raise _wrong_direction(spec.code, Direction.FEED)
        frames.append(encode(m))
    size = PACKET_HEADER_LEN + sum(map(len, frames))
    if size > MAX_DATAGRAM_LEN:
        raise ProtocolError(
            "buffer_too_small",
            f"buffer too small: {size} bytes needed, {MAX_DATAGRAM_LEN} available",
        )
    try:
        head = _PACKET_HEADER.pack(channel, seq, len(frames), VERSION, 0)
    except struct.error as e:
        raise ProtocolError("out_of_range", f"channel or seq out of range: {e}") from None
    return head + b"".join(frames)


def decode_datagram(buf: BytesLike) -> Datagram:
    """Checks and decodes a whole datagram (the same checks, in the same order, as the Rust
    ``decode_datagram``); raises :class:`ProtocolError` unless all of it is valid."""
    view = memoryview(buf)
    size = len(view)
    if size > MAX_DATAGRAM_LEN:
        raise ProtocolError(
            "datagram_too_large",
            f"datagram of {size} bytes exceeds the maximum of {MAX_DATAGRAM_LEN}",
        )
    if size < PACKET_HEADER_LEN:
        raise ProtocolError(
            "datagram_too_short",
            f"datagram of {size} bytes is shorter than its {PACKET_HEADER_LEN}-byte header",
        )
    channel, seq, count, version, reserved = _PACKET_HEADER.unpack_from(view)
    if version != VERSION:
        raise ProtocolError(
            "bad_version", f"unsupported protocol version {version} (expected {VERSION})"
        )
    if reserved != 0:
        raise ProtocolError("bad_reserved", f"packet header reserved byte is {reserved}")
    messages: list[FeedMessage] = []
    offset = PACKET_HEADER_LEN
    while offset < size:
        try:
            msg, n = decode(view, offset)
        except IncompleteFrame:
            raise ProtocolError(
                "truncated_datagram", f"datagram ends inside a frame at offset {offset}"
            ) from None
        if not isinstance(msg, FeedMessage):
            raise _wrong_direction(msg.TYPE, Direction.FEED)
        messages.append(msg)
        offset += n
    if len(messages) != count:
        raise ProtocolError(
            "count_mismatch",
            f"packet header counts {count} messages, datagram holds {len(messages)}",
        )
    return Datagram(channel, seq, tuple(messages))
