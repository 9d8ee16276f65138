//! `codec`: the venue's binary protocol (the spec is `docs/protocol.md`; this module is its
//! reference implementation, and `python/tradecore/venue/codec.py` its Python twin, both checked
//! against `tests/golden/protocol_vectors.json`).
//!
//! ## What it owns
//!
//! * Framing: every message is a 4-byte [`wire::Header`] (`length: u16` = total bytes including
//!   the header, `msg_type: u8`, `version: u8` = [`VERSION`]) followed by a fixed-size body per
//!   type. Everything is little-endian; prices are `i64` ticks, quantities `u64` lots.
//! * The sixteen messages ([`Message`]): eight client -> venue, five venue -> client, three
//!   market-data messages carried in UDP datagrams (and in TCP retransmissions).
//! * The UDP datagram: a 16-byte [`wire::PacketHeader`] (channel, seq of the first message,
//!   count) followed by feed frames, written by [`DatagramWriter`] and read by
//!   [`decode_datagram`].
//!
//! ## Invariants
//!
//! * The wire structs in [`wire`] derive zerocopy's `FromBytes`/`IntoBytes`/`Unaligned` and use
//!   `zerocopy::byteorder::little_endian` integers, so they have alignment 1, no padding, and a
//!   body is read in place from any byte offset of a receive buffer (no copy into an aligned
//!   buffer, no `unsafe`). [`decode`] then reads each field once into a typed, `Copy`
//!   [`Message`], which is what travels through the SPSC ring (a borrowed view could not: the
//!   receive buffer is reused).
//! * Decoding never panics and never trusts the peer: every header check is made before waiting
//!   for the body, so an oversized or unknown frame is refused at once; every enum byte goes
//!   through the core's `from_u8`; booleans must be 0 or 1; API keys must be ASCII. Each failure
//!   is a distinct [`CodecError`] variant with a stable [`CodecError::kind`] string (shared with
//!   the Python codec and the test vectors). The venue answers any of them with a `MALFORMED`
//!   reject.
//! * The codec checks syntax only: a quantity of 0 or an unknown symbol id decodes fine and is
//!   the engine's business (its own reject reasons).
//! * [`decode`] on a buffer holding a partial frame returns [`CodecError::Incomplete`] with the
//!   number of bytes it needs, so a gateway keeps reading; it consumes exactly one frame.
//!
//! ## Cost
//!
//! Encode and decode are a handful of bounds checks, one header match and straight-line loads
//! or stores of at most 72 bytes; no allocation anywhere (encoders write into the caller's
//! buffer). `benches/codec.rs` measures them (`cargo bench -p tradecore-engine --bench codec`).

use core::fmt;
use core::mem::{offset_of, size_of};

use thiserror::Error;
use tradecore_book::{EventKind, OrderType, Reason, Side, Stp, TimeInForce};
use zerocopy::byteorder::little_endian::{I64, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The protocol version carried by every frame and datagram.
pub const VERSION: u8 = 1;
/// Bytes of the frame header.
pub const HEADER_LEN: usize = 4;
/// Largest frame length a decoder accepts; a header announcing more is
/// [`CodecError::Oversized`]. Every message defined today is at most 72 bytes.
pub const MAX_MESSAGE_LEN: usize = 256;
/// Bytes of the UDP packet header.
pub const PACKET_HEADER_LEN: usize = 16;
/// Largest datagram: a 1,500-byte Ethernet MTU minus the IPv4 (20) and UDP (8) headers.
pub const MAX_DATAGRAM_LEN: usize = 1472;
/// Length of the API key field of `Logon`.
pub const API_KEY_LEN: usize = 32;

/// Everything that can go wrong while decoding or encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum CodecError {
    /// The buffer ends inside the frame: read more bytes, then call again. Not malformed.
    #[error("incomplete frame: {need} bytes needed, {have} available")]
    Incomplete {
        /// Bytes the frame needs (4 while the header itself is incomplete).
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// The header's version is not [`VERSION`].
    #[error("unsupported protocol version {version} (expected {VERSION})")]
    BadVersion {
        /// The version byte received.
        version: u8,
    },
    /// The header announces more than [`MAX_MESSAGE_LEN`] bytes.
    #[error("frame length {length} exceeds the maximum of {MAX_MESSAGE_LEN}")]
    Oversized {
        /// The announced length.
        length: usize,
    },
    /// The message type byte is not defined.
    #[error("unknown message type 0x{msg_type:02x}")]
    UnknownType {
        /// The type byte received.
        msg_type: u8,
    },
    /// The header's length is not the fixed length of its type.
    #[error("message type 0x{msg_type:02x} has length {expected}, header says {length}")]
    BadLength {
        /// The (known) type byte.
        msg_type: u8,
        /// The type's fixed length, header included.
        expected: usize,
        /// The announced length.
        length: usize,
    },
    /// An enum or boolean field holds a byte outside its range.
    #[error("invalid value {value} for field `{field}`")]
    BadEnum {
        /// The field's name as in `docs/protocol.md`.
        field: &'static str,
        /// The byte received.
        value: u8,
    },
    /// The API key is not ASCII graphic characters (0x21..=0x7e) followed by zero padding, or is
    /// longer than [`API_KEY_LEN`].
    #[error("API key must be up to {API_KEY_LEN} ASCII graphic characters, zero padded")]
    BadApiKey,
    /// A well-formed message that this side of the connection must not receive (for example a
    /// `LogonAck` sent to the venue, or an order inside a market-data datagram).
    #[error("message type 0x{msg_type:02x} is not allowed here (expected {expected})")]
    WrongDirection {
        /// The type byte received.
        msg_type: u8,
        /// What was allowed here.
        expected: Direction,
    },
    /// A datagram shorter than its packet header.
    #[error("datagram of {length} bytes is shorter than its {PACKET_HEADER_LEN}-byte header")]
    DatagramTooShort {
        /// The datagram's length.
        length: usize,
    },
    /// A datagram longer than [`MAX_DATAGRAM_LEN`].
    #[error("datagram of {length} bytes exceeds the maximum of {MAX_DATAGRAM_LEN}")]
    DatagramTooLarge {
        /// The datagram's length.
        length: usize,
    },
    /// The packet header's reserved byte is not 0.
    #[error("packet header reserved byte is {value}, must be 0")]
    BadReserved {
        /// The byte received.
        value: u8,
    },
    /// The datagram ends inside a frame.
    #[error("datagram ends inside a frame at offset {offset}")]
    TruncatedDatagram {
        /// Offset of the truncated frame within the datagram.
        offset: usize,
    },
    /// The packet header's count differs from the number of frames in the datagram.
    #[error("packet header counts {declared} messages, datagram holds {found}")]
    CountMismatch {
        /// The header's count.
        declared: u16,
        /// Frames found.
        found: usize,
    },
    /// Encoding: the caller's buffer (or the datagram being built) has no room for the message.
    #[error("buffer too small: {need} bytes needed, {have} available")]
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
}

impl CodecError {
    /// A stable snake_case name of the variant, shared with the Python codec
    /// (`ProtocolError.kind`) and the golden vectors.
    pub fn kind(&self) -> &'static str {
        match self {
            CodecError::Incomplete { .. } => "incomplete",
            CodecError::BadVersion { .. } => "bad_version",
            CodecError::Oversized { .. } => "oversized",
            CodecError::UnknownType { .. } => "unknown_type",
            CodecError::BadLength { .. } => "bad_length",
            CodecError::BadEnum { .. } => "bad_enum",
            CodecError::BadApiKey => "bad_api_key",
            CodecError::WrongDirection { .. } => "wrong_direction",
            CodecError::DatagramTooShort { .. } => "datagram_too_short",
            CodecError::DatagramTooLarge { .. } => "datagram_too_large",
            CodecError::BadReserved { .. } => "bad_reserved",
            CodecError::TruncatedDatagram { .. } => "truncated_datagram",
            CodecError::CountMismatch { .. } => "count_mismatch",
            CodecError::BufferTooSmall { .. } => "buffer_too_small",
        }
    }

    /// True for [`CodecError::Incomplete`], the one outcome of [`decode`] that means "wait for
    /// more bytes" rather than "malformed".
    pub fn is_incomplete(&self) -> bool {
        matches!(self, CodecError::Incomplete { .. })
    }
}

/// Who sends a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to venue, over TCP (types 0x01..=0x3f).
    ClientToVenue,
    /// Venue to client, over TCP (types 0x40..=0x7f).
    VenueToClient,
    /// Market data and report feed, in UDP datagrams or TCP retransmissions (0x80..=0xbf).
    Feed,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::ClientToVenue => "client to venue",
            Direction::VenueToClient => "venue to client",
            Direction::Feed => "feed",
        })
    }
}

/// Whether a fill added liquidity (the resting order) or took it (the incoming order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Liquidity {
    /// Not a fill.
    #[default]
    None = 0,
    /// The report's order was resting (maker).
    Maker = 1,
    /// The report's order was the incoming one (taker).
    Taker = 2,
}

/// Outcome of a retransmit request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RetransmitStatus {
    /// Every requested message follows (`count` = `requested`).
    Ok = 0,
    /// Only the first `count` (> 0) requested messages follow: the range runs past the last
    /// message sent, or the request exceeded the venue's per-request limit.
    Partial = 1,
    /// Nothing follows (`count` = 0): `from_seq` is 0, not yet sent, or no longer kept.
    Unavailable = 2,
    /// Nothing follows: the channel is not configured.
    UnknownChannel = 3,
}

macro_rules! codec_enum {
    ($ty:ident { $($v:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every variant, in discriminant order.
            pub const ALL: &'static [$ty] = &[$($ty::$v),+];

            /// The variant with this discriminant, or `None` for an unknown byte.
            #[inline]
            pub fn from_u8(b: u8) -> Option<Self> {
                Self::ALL.get(b as usize).copied()
            }

            /// Upper-case name (as in the Python enum and the test vectors).
            pub fn name(self) -> &'static str {
                match self {
                    $($ty::$v => $name),+
                }
            }
        }
    };
}

codec_enum!(Liquidity { None => "NONE", Maker => "MAKER", Taker => "TAKER" });
codec_enum!(RetransmitStatus {
    Ok => "OK",
    Partial => "PARTIAL",
    Unavailable => "UNAVAILABLE",
    UnknownChannel => "UNKNOWN_CHANNEL",
});

/// A Logon API key: up to 32 ASCII graphic characters, sent zero padded. `Debug` hides it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiKey([u8; API_KEY_LEN]);

impl ApiKey {
    /// The key for `key`, or [`CodecError::BadApiKey`] if it is longer than 32 bytes or holds
    /// anything but ASCII graphic characters (0x21..=0x7e).
    pub fn new(key: &str) -> Result<Self, CodecError> {
        let b = key.as_bytes();
        if b.len() > API_KEY_LEN || !b.iter().all(u8::is_ascii_graphic) {
            return Err(CodecError::BadApiKey);
        }
        let mut raw = [0u8; API_KEY_LEN];
        raw[..b.len()].copy_from_slice(b);
        Ok(ApiKey(raw))
    }

    /// Validates the 32 wire bytes: graphic ASCII characters, then only zeros.
    pub fn from_bytes(raw: [u8; API_KEY_LEN]) -> Result<Self, CodecError> {
        let n = raw.iter().position(|&b| b == 0).unwrap_or(API_KEY_LEN);
        if raw[..n].iter().all(u8::is_ascii_graphic) && raw[n..].iter().all(|&b| b == 0) {
            Ok(ApiKey(raw))
        } else {
            Err(CodecError::BadApiKey)
        }
    }

    /// The key without its padding.
    pub fn as_str(&self) -> &str {
        let n = self.0.iter().position(|&b| b == 0).unwrap_or(API_KEY_LEN);
        // Always ASCII by construction; the fallback is unreachable.
        core::str::from_utf8(&self.0[..n]).unwrap_or("")
    }

    /// The 32 wire bytes (zero padded).
    pub fn as_bytes(&self) -> &[u8; API_KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey(<{} chars>)", self.as_str().len())
    }
}

/// Where a field sits in a frame: its byte offset from the start of the frame (header
/// included) and its size. `docs/protocol.md` lists the same table; a test compares them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldLayout {
    /// Field name.
    pub name: &'static str,
    /// Byte offset from the first byte of the frame.
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
}

/// Conversion between a typed field and its wire representation; `take` validates.
trait WireField<W>: Sized {
    fn put(self) -> W;
    fn take(w: W, field: &'static str) -> Result<Self, CodecError>;
}

macro_rules! int_field {
    ($($t:ty => $w:ty),*) => {$(
        impl WireField<$w> for $t {
            #[inline(always)]
            fn put(self) -> $w {
                <$w>::new(self)
            }
            #[inline(always)]
            fn take(w: $w, _: &'static str) -> Result<Self, CodecError> {
                Ok(w.get())
            }
        }
    )*};
}

int_field!(u16 => U16, u32 => U32, u64 => U64, i64 => I64);

macro_rules! enum_field {
    ($($t:ty),*) => {$(
        impl WireField<u8> for $t {
            #[inline(always)]
            fn put(self) -> u8 {
                self as u8
            }
            #[inline(always)]
            fn take(w: u8, field: &'static str) -> Result<Self, CodecError> {
                <$t>::from_u8(w).ok_or(CodecError::BadEnum { field, value: w })
            }
        }
    )*};
}

enum_field!(
    Side,
    OrderType,
    TimeInForce,
    Stp,
    EventKind,
    Reason,
    Liquidity,
    RetransmitStatus
);

impl WireField<u8> for bool {
    #[inline(always)]
    fn put(self) -> u8 {
        u8::from(self)
    }
    #[inline(always)]
    fn take(w: u8, field: &'static str) -> Result<Self, CodecError> {
        match w {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(CodecError::BadEnum { field, value: w }),
        }
    }
}

impl WireField<[u8; API_KEY_LEN]> for ApiKey {
    fn put(self) -> [u8; API_KEY_LEN] {
        self.0
    }
    fn take(w: [u8; API_KEY_LEN], _: &'static str) -> Result<Self, CodecError> {
        ApiKey::from_bytes(w)
    }
}

/// Wire layouts: unaligned little-endian structs that zerocopy maps onto received bytes.
pub mod wire {
    use super::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned, U16, U32, U64};

    pub use super::bodies::*;

    /// The 4-byte header in front of every message.
    #[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Header {
        /// Total frame length in bytes, header included.
        pub length: U16,
        /// Message type.
        pub msg_type: u8,
        /// Protocol version ([`VERSION`](super::VERSION)).
        pub version: u8,
    }

    /// The 16-byte header at the start of every UDP datagram.
    #[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
    #[repr(C)]
    pub struct PacketHeader {
        /// Feed channel (> 0).
        pub channel: U32,
        /// Sequence number of the first message (message `i` has `seq + i`).
        pub seq: U64,
        /// Number of messages (0 = heartbeat: `seq` is the next sequence number).
        pub count: U16,
        /// Protocol version ([`VERSION`](super::VERSION)).
        pub version: u8,
        /// Always 0.
        pub reserved: u8,
    }
}

const _: () = assert!(size_of::<wire::Header>() == HEADER_LEN);
const _: () = assert!(size_of::<wire::PacketHeader>() == PACKET_HEADER_LEN);

macro_rules! messages {
    ($(
        $(#[$meta:meta])*
        $name:ident = $code:literal, $dir:ident {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty => $wty:ty ),* $(,)?
        }
    )*) => {
        /// The message type byte of every message.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum MsgType {
            $( #[doc = concat!("`", stringify!($name), "`")] $name = $code, )*
        }

        impl MsgType {
            /// Every message type, in the order of `docs/protocol.md`.
            pub const ALL: &'static [MsgType] = &[$(MsgType::$name),*];

            /// The type with this byte, or `None`.
            #[inline]
            pub fn from_u8(b: u8) -> Option<Self> {
                match b {
                    $( $code => Some(MsgType::$name), )*
                    _ => None,
                }
            }

            /// The fixed frame length of this type, header included.
            #[inline]
            #[allow(clippy::len_without_is_empty, reason = "a frame length, not a container")]
            pub const fn len(self) -> usize {
                match self {
                    $( MsgType::$name => $name::LEN, )*
                }
            }

            /// Who sends this type.
            #[inline]
            pub fn direction(self) -> Direction {
                match self {
                    $( MsgType::$name => Direction::$dir, )*
                }
            }

            /// The message's name (the Rust and Python type name).
            pub fn name(self) -> &'static str {
                match self {
                    $( MsgType::$name => stringify!($name), )*
                }
            }

            /// The body fields with their offsets within the frame.
            pub fn fields(self) -> &'static [FieldLayout] {
                match self {
                    $( MsgType::$name => $name::FIELDS, )*
                }
            }
        }

        /// One decoded (or to be encoded) message.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Message {
            $( #[doc = concat!("[`", stringify!($name), "`]")] $name($name), )*
        }

        impl Message {
            /// This message's type.
            #[inline]
            pub fn msg_type(&self) -> MsgType {
                match self {
                    $( Message::$name(_) => MsgType::$name, )*
                }
            }

            /// Bytes this message takes on the wire, header included.
            #[inline]
            pub fn encoded_len(&self) -> usize {
                self.msg_type().len()
            }

            /// Writes the frame at the start of `out`; returns its length. Fails only with
            /// [`CodecError::BufferTooSmall`].
            #[inline]
            pub fn encode(&self, out: &mut [u8]) -> Result<usize, CodecError> {
                match self {
                    $( Message::$name(m) => m.encode(out), )*
                }
            }
        }

        #[inline]
        fn decode_body(t: MsgType, body: &[u8]) -> Result<Message, CodecError> {
            match t {
                $(
                    MsgType::$name => {
                        let w = wire::$name::ref_from_bytes(body).map_err(|_| {
                            CodecError::BadLength {
                                msg_type: $code,
                                expected: $name::LEN,
                                length: HEADER_LEN + body.len(),
                            }
                        })?;
                        Ok(Message::$name($name::from_wire(w)?))
                    }
                )*
            }
        }

        $(
            $(#[$meta])*
            #[derive(Clone, Copy, Debug, PartialEq, Eq)]
            pub struct $name {
                $( $(#[$fmeta])* pub $field: $ty, )*
            }

            impl $name {
                /// Message type byte.
                pub const TYPE: MsgType = MsgType::$name;
                /// Frame length, header included.
                pub const LEN: usize = HEADER_LEN + size_of::<wire::$name>();
                /// Body fields with their offsets within the frame.
                pub const FIELDS: &'static [FieldLayout] = &[
                    $( FieldLayout {
                        name: stringify!($field),
                        offset: HEADER_LEN + offset_of!(wire::$name, $field),
                        size: size_of::<$wty>(),
                    }, )*
                ];

                /// The wire form of the body.
                #[inline]
                pub fn to_wire(&self) -> wire::$name {
                    wire::$name {
                        $( $field: <$ty as WireField<$wty>>::put(self.$field), )*
                    }
                }

                /// The typed message from a wire body, validating every enum, boolean and key.
                #[inline]
                pub fn from_wire(
                    #[allow(unused_variables, reason = "body-less messages read nothing")]
                    w: &wire::$name,
                ) -> Result<Self, CodecError> {
                    Ok($name {
                        $( $field: <$ty as WireField<$wty>>::take(w.$field, stringify!($field))?, )*
                    })
                }

                /// Writes the frame at the start of `out`; returns its length.
                #[inline]
                pub fn encode(&self, out: &mut [u8]) -> Result<usize, CodecError> {
                    write_frame(MsgType::$name, &self.to_wire(), out)
                }
            }

            impl From<$name> for Message {
                #[inline]
                fn from(m: $name) -> Message {
                    Message::$name(m)
                }
            }
        )*

        mod bodies {
            use super::{
                FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned, API_KEY_LEN, I64, U32, U64,
            };
            $(
                #[doc = concat!("Wire body of [`", stringify!($name), "`](super::", stringify!($name), ").")]
                #[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
                #[repr(C)]
                pub struct $name {
                    $( $(#[$fmeta])* pub $field: $wty, )*
                }
            )*
        }
    };
}

messages! {
    // ---- client -> venue (0x01..=0x3f) ----

    /// Opens a session. Must be the first message on a connection.
    Logon = 0x01, ClientToVenue {
        /// The account the session trades for.
        account: u32 => U32,
        /// The account's API key, ASCII, zero padded to 32 bytes.
        api_key: ApiKey => [u8; API_KEY_LEN],
        /// Heartbeat interval the client asks for, in milliseconds.
        heartbeat_ms: u32 => U32,
    }

    /// Ends the session: the venue sends what it still owes, then closes.
    Logout = 0x02, ClientToVenue {}

    /// Client keep-alive (sent when nothing else was sent for a heartbeat interval).
    Heartbeat = 0x03, ClientToVenue {}

    /// A new order.
    NewOrder = 0x10, ClientToVenue {
        /// The client's id for the order (> 0, unique among the account's live orders).
        client_order_id: u64 => U64,
        /// Instrument id from the venue's config (> 0).
        symbol_id: u32 => U32,
        /// Buy or sell.
        side: Side => u8,
        /// Limit or market.
        order_type: OrderType => u8,
        /// GTC, IOC or FOK.
        tif: TimeInForce => u8,
        /// Only add liquidity (0 or 1).
        post_only: bool => u8,
        /// Self-trade prevention mode.
        stp: Stp => u8,
        /// Limit price in ticks (ignored for market orders).
        price: i64 => I64,
        /// Quantity in lots.
        qty: u64 => U64,
    }

    /// Cancels one of the account's orders.
    Cancel = 0x11, ClientToVenue {
        /// The order's client order id.
        client_order_id: u64 => U64,
        /// Its instrument.
        symbol_id: u32 => U32,
    }

    /// Cancel/replace: new price and new remaining quantity (the core's modify rules).
    Modify = 0x12, ClientToVenue {
        /// The order's client order id.
        client_order_id: u64 => U64,
        /// Its instrument.
        symbol_id: u32 => U32,
        /// New limit price in ticks.
        new_price: i64 => I64,
        /// New remaining quantity in lots.
        new_qty: u64 => U64,
    }

    /// Cancels every live order of the account, on one instrument or on all.
    MassCancel = 0x13, ClientToVenue {
        /// Instrument id, or 0 for every instrument.
        symbol_id: u32 => U32,
    }

    /// Asks for messages again: of this session's report stream or of a UDP channel.
    RetransmitRequest = 0x20, ClientToVenue {
        /// 0 = this session's TCP report stream; > 0 = that UDP channel.
        channel: u32 => U32,
        /// First sequence number wanted (>= 1).
        from_seq: u64 => U64,
        /// Number of messages wanted.
        count: u32 => U32,
    }

    // ---- venue -> client (0x40..=0x7f); the first body field is always a sequence number ----

    /// Logon accepted.
    LogonAck = 0x41, VenueToClient {
        /// Sequence number the next execution report of this session will carry.
        next_seq: u64 => U64,
        /// Session (report stream) id.
        session_id: u64 => U64,
        /// Heartbeat interval the venue will use, in milliseconds.
        heartbeat_ms: u32 => U32,
    }

    /// Logon refused; the venue closes the connection after it.
    LogonReject = 0x42, VenueToClient {
        /// Always 0 (no report stream exists).
        next_seq: u64 => U64,
        /// Why (`NOT_LOGGED_IN` for bad credentials, `MALFORMED`, `RATE_LIMITED`).
        reason: Reason => u8,
    }

    /// Venue keep-alive.
    VenueHeartbeat = 0x43, VenueToClient {
        /// Sequence number the next execution report of this session will carry.
        next_seq: u64 => U64,
    }

    /// What happened to one of the session's orders (or to a request that was refused).
    ExecutionReport = 0x50, VenueToClient {
        /// Sequence number in the session's report stream (1, 2, ...; 0 = unsequenced reject
        /// sent before logon).
        seq: u64 => U64,
        /// The client's order id the report is about (0 if the frame could not be read).
        client_order_id: u64 => U64,
        /// The venue's order id (0 if the order never existed).
        order_id: u64 => U64,
        /// Instrument id.
        symbol_id: u32 => U32,
        /// Accepted, rejected, fill, cancelled or replaced.
        kind: EventKind => u8,
        /// Why (rejects and cancels), else `NONE`.
        reason: Reason => u8,
        /// The order's side.
        side: Side => u8,
        /// Maker or taker on fills, else `NONE`.
        liquidity: Liquidity => u8,
        /// The event's price in ticks (the fill price on fills).
        price: i64 => I64,
        /// The event's quantity (the fill quantity on fills).
        qty: u64 => U64,
        /// The order's remaining quantity after the event.
        leaves: u64 => U64,
        /// Venue time of the event, ns since the Unix epoch.
        timestamp_ns: u64 => U64,
    }

    /// Answers a `RetransmitRequest`; exactly `count` messages follow it, nothing interleaved.
    RetransmitReply = 0x60, VenueToClient {
        /// Sequence number the next live execution report of this session will carry.
        next_seq: u64 => U64,
        /// The requested channel.
        channel: u32 => U32,
        /// The requested first sequence number.
        from_seq: u64 => U64,
        /// The requested count.
        requested: u32 => U32,
        /// Number of messages that follow (seqs `from_seq .. from_seq + count`).
        count: u32 => U32,
        /// Ok, partial, unavailable or unknown channel.
        status: RetransmitStatus => u8,
    }

    // ---- feed (0x80..=0xbf): UDP datagrams, or TCP after a RetransmitReply ----

    /// A price level's new total quantity (0 = the level is gone).
    BookUpdate = 0x81, Feed {
        /// Instrument id.
        symbol_id: u32 => U32,
        /// Book side.
        side: Side => u8,
        /// Level price in ticks.
        price: i64 => I64,
        /// Absolute quantity now at the level; 0 removes it.
        qty: u64 => U64,
    }

    /// A trade (one match).
    Trade = 0x82, Feed {
        /// Instrument id.
        symbol_id: u32 => U32,
        /// Side of the incoming (aggressor) order.
        aggressor: Side => u8,
        /// Trade price in ticks (the resting order's price).
        price: i64 => I64,
        /// Traded quantity in lots.
        qty: u64 => U64,
        /// Venue time of the match, ns since the Unix epoch.
        timestamp_ns: u64 => U64,
    }

    /// An execution report on the UDP report channel (a drop copy of the TCP report).
    FeedReport = 0x83, Feed {
        /// The account the report belongs to.
        account: u32 => U32,
        /// The report's sequence number in its TCP session stream.
        seq: u64 => U64,
        /// The client's order id.
        client_order_id: u64 => U64,
        /// The venue's order id.
        order_id: u64 => U64,
        /// Instrument id.
        symbol_id: u32 => U32,
        /// Accepted, rejected, fill, cancelled or replaced.
        kind: EventKind => u8,
        /// Why (rejects and cancels), else `NONE`.
        reason: Reason => u8,
        /// The order's side.
        side: Side => u8,
        /// Maker or taker on fills, else `NONE`.
        liquidity: Liquidity => u8,
        /// The event's price in ticks.
        price: i64 => I64,
        /// The event's quantity.
        qty: u64 => U64,
        /// The order's remaining quantity after the event.
        leaves: u64 => U64,
        /// Venue time of the event, ns since the Unix epoch.
        timestamp_ns: u64 => U64,
    }
}

const _: () = {
    let mut i = 0;
    while i < MsgType::ALL.len() {
        assert!(MsgType::ALL[i].len() <= MAX_MESSAGE_LEN);
        i += 1;
    }
};

impl ExecutionReport {
    /// The UDP drop copy of this report for `account`.
    pub fn to_feed(&self, account: u32) -> FeedReport {
        FeedReport {
            account,
            seq: self.seq,
            client_order_id: self.client_order_id,
            order_id: self.order_id,
            symbol_id: self.symbol_id,
            kind: self.kind,
            reason: self.reason,
            side: self.side,
            liquidity: self.liquidity,
            price: self.price,
            qty: self.qty,
            leaves: self.leaves,
            timestamp_ns: self.timestamp_ns,
        }
    }
}

#[inline(always)]
fn write_frame<W: IntoBytes + Immutable>(
    t: MsgType,
    body: &W,
    out: &mut [u8],
) -> Result<usize, CodecError> {
    let len = HEADER_LEN + size_of::<W>();
    let have = out.len();
    let Some(dst) = out.get_mut(..len) else {
        return Err(CodecError::BufferTooSmall { need: len, have });
    };
    let (h, b) = dst.split_at_mut(HEADER_LEN);
    let header = wire::Header {
        length: U16::new(len as u16),
        msg_type: t as u8,
        version: VERSION,
    };
    h.copy_from_slice(header.as_bytes());
    b.copy_from_slice(body.as_bytes());
    Ok(len)
}

/// A checked frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// The message type.
    pub msg_type: MsgType,
    /// The frame length (the type's fixed length).
    pub length: usize,
}

/// Checks the header at the start of `buf` without needing the body: version, then length
/// against [`MAX_MESSAGE_LEN`], then type, then length against the type's fixed length.
/// [`CodecError::Incomplete`] only when fewer than 4 bytes are available.
///
/// After any error of [`decode`] other than these header errors, the frame is well delimited
/// (this function succeeds), so a gateway may skip `length` bytes and carry on.
#[inline]
pub fn peek_header(buf: &[u8]) -> Result<FrameHeader, CodecError> {
    let Some(h) = buf.get(..HEADER_LEN) else {
        return Err(CodecError::Incomplete {
            need: HEADER_LEN,
            have: buf.len(),
        });
    };
    let length = u16::from_le_bytes([h[0], h[1]]) as usize;
    let (msg_type, version) = (h[2], h[3]);
    if version != VERSION {
        return Err(CodecError::BadVersion { version });
    }
    if length > MAX_MESSAGE_LEN {
        return Err(CodecError::Oversized { length });
    }
    let Some(t) = MsgType::from_u8(msg_type) else {
        return Err(CodecError::UnknownType { msg_type });
    };
    if length != t.len() {
        return Err(CodecError::BadLength {
            msg_type,
            expected: t.len(),
            length,
        });
    }
    Ok(FrameHeader {
        msg_type: t,
        length,
    })
}

/// Decodes the frame at the start of `buf` (which may hold less than a frame, or more than
/// one); returns the message and the bytes it took. See [`CodecError`] for the failures; only
/// [`CodecError::Incomplete`] means "read more and call again".
#[inline]
pub fn decode(buf: &[u8]) -> Result<(Message, usize), CodecError> {
    let h = peek_header(buf)?;
    let Some(body) = buf.get(HEADER_LEN..h.length) else {
        return Err(CodecError::Incomplete {
            need: h.length,
            have: buf.len(),
        });
    };
    Ok((decode_body(h.msg_type, body)?, h.length))
}

/// [`decode`] for the venue's side of a TCP session: only client -> venue messages are
/// accepted; anything else is [`CodecError::WrongDirection`].
#[inline]
pub fn decode_from_client(buf: &[u8]) -> Result<(Message, usize), CodecError> {
    let (m, n) = decode(buf)?;
    match m.msg_type().direction() {
        Direction::ClientToVenue => Ok((m, n)),
        _ => Err(CodecError::WrongDirection {
            msg_type: m.msg_type() as u8,
            expected: Direction::ClientToVenue,
        }),
    }
}

/// [`decode`] for the client's side of a TCP session: venue -> client messages, and feed
/// messages (they arrive over TCP as retransmissions of a UDP channel).
#[inline]
pub fn decode_from_venue(buf: &[u8]) -> Result<(Message, usize), CodecError> {
    let (m, n) = decode(buf)?;
    match m.msg_type().direction() {
        Direction::VenueToClient | Direction::Feed => Ok((m, n)),
        Direction::ClientToVenue => Err(CodecError::WrongDirection {
            msg_type: m.msg_type() as u8,
            expected: Direction::VenueToClient,
        }),
    }
}

/// The header of a UDP datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketHeader {
    /// Feed channel.
    pub channel: u32,
    /// Sequence number of the first message; the `i`-th message has `seq + i`.
    pub seq: u64,
    /// Number of messages (0 = heartbeat; `seq` is then the next sequence number).
    pub count: u16,
}

/// A checked datagram: its header and its frames, every one of them valid feed messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// The packet header.
    pub header: PacketHeader,
    frames: &'a [u8],
}

impl<'a> Datagram<'a> {
    /// The messages with their sequence numbers, in order.
    pub fn iter(&self) -> DatagramIter<'a> {
        DatagramIter {
            rest: self.frames,
            seq: self.header.seq,
        }
    }
}

impl<'a> IntoIterator for &Datagram<'a> {
    type Item = (u64, Message);
    type IntoIter = DatagramIter<'a>;
    fn into_iter(self) -> DatagramIter<'a> {
        self.iter()
    }
}

/// Iterator over the `(seq, message)` pairs of a checked [`Datagram`].
#[derive(Clone, Debug)]
pub struct DatagramIter<'a> {
    rest: &'a [u8],
    seq: u64,
}

impl Iterator for DatagramIter<'_> {
    type Item = (u64, Message);

    fn next(&mut self) -> Option<(u64, Message)> {
        // The datagram was checked whole by `decode_datagram`, so this cannot fail; an error
        // would end the iteration rather than panic.
        let (m, n) = decode(self.rest).ok()?;
        self.rest = self.rest.get(n..)?;
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        Some((seq, m))
    }
}

/// Checks a whole datagram: header (length bounds, version, reserved byte), then every frame
/// (each a complete, valid feed message), then that the frames fill the datagram exactly and
/// their number equals the header's count. Nothing is returned unless all of it holds, so a
/// subscriber never applies half a datagram.
pub fn decode_datagram(buf: &[u8]) -> Result<Datagram<'_>, CodecError> {
    if buf.len() > MAX_DATAGRAM_LEN {
        return Err(CodecError::DatagramTooLarge { length: buf.len() });
    }
    let Ok((h, frames)) = wire::PacketHeader::ref_from_prefix(buf) else {
        return Err(CodecError::DatagramTooShort { length: buf.len() });
    };
    if h.version != VERSION {
        return Err(CodecError::BadVersion { version: h.version });
    }
    if h.reserved != 0 {
        return Err(CodecError::BadReserved { value: h.reserved });
    }
    let mut rest = frames;
    let mut found = 0usize;
    while !rest.is_empty() {
        let offset = buf.len() - rest.len();
        let (m, n) = match decode(rest) {
            Ok(ok) => ok,
            Err(CodecError::Incomplete { .. }) => {
                return Err(CodecError::TruncatedDatagram { offset })
            }
            Err(e) => return Err(e),
        };
        if m.msg_type().direction() != Direction::Feed {
            return Err(CodecError::WrongDirection {
                msg_type: m.msg_type() as u8,
                expected: Direction::Feed,
            });
        }
        rest = &rest[n..];
        found += 1;
    }
    let declared = h.count.get();
    if found != declared as usize {
        return Err(CodecError::CountMismatch { declared, found });
    }
    Ok(Datagram {
        header: PacketHeader {
            channel: h.channel.get(),
            seq: h.seq.get(),
            count: declared,
        },
        frames,
    })
}

/// Builds one datagram in the caller's buffer: [`DatagramWriter::push`] feed messages until it
/// answers [`CodecError::BufferTooSmall`] (the datagram is full: finish it, send it, start the
/// next one with [`DatagramWriter::next_seq`]), then [`DatagramWriter::finish`].
#[derive(Debug)]
pub struct DatagramWriter<'b> {
    buf: &'b mut [u8],
    channel: u32,
    seq: u64,
    count: u16,
    len: usize,
}

impl<'b> DatagramWriter<'b> {
    /// Starts a datagram of `channel` whose first message will carry `first_seq`. Uses at most
    /// [`MAX_DATAGRAM_LEN`] bytes of `buf`.
    pub fn new(buf: &'b mut [u8], channel: u32, first_seq: u64) -> Result<Self, CodecError> {
        if buf.len() < PACKET_HEADER_LEN {
            return Err(CodecError::BufferTooSmall {
                need: PACKET_HEADER_LEN,
                have: buf.len(),
            });
        }
        let cap = buf.len().min(MAX_DATAGRAM_LEN);
        Ok(DatagramWriter {
            buf: &mut buf[..cap],
            channel,
            seq: first_seq,
            count: 0,
            len: PACKET_HEADER_LEN,
        })
    }

    /// Appends a feed message; returns the sequence number it gets. A non-feed message is
    /// [`CodecError::WrongDirection`]; a full datagram is [`CodecError::BufferTooSmall`]; in
    /// both cases nothing was written.
    pub fn push(&mut self, msg: &Message) -> Result<u64, CodecError> {
        if msg.msg_type().direction() != Direction::Feed {
            return Err(CodecError::WrongDirection {
                msg_type: msg.msg_type() as u8,
                expected: Direction::Feed,
            });
        }
        if self.count == u16::MAX {
            return Err(CodecError::BufferTooSmall {
                need: self.len + msg.encoded_len(),
                have: self.len,
            });
        }
        let free = &mut self.buf[self.len..];
        let n = msg.encode(free).map_err(|_| CodecError::BufferTooSmall {
            need: self.len + msg.encoded_len(),
            have: self.buf.len(),
        })?;
        self.len += n;
        let seq = self.seq.wrapping_add(u64::from(self.count));
        self.count += 1;
        Ok(seq)
    }

    /// Messages pushed so far.
    pub fn count(&self) -> u16 {
        self.count
    }

    /// True when no message was pushed (finishing gives a heartbeat datagram).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The sequence number the next message (in this or the next datagram) will carry.
    pub fn next_seq(&self) -> u64 {
        self.seq.wrapping_add(u64::from(self.count))
    }

    /// Writes the packet header; returns the datagram's length (send `buf[..len]`).
    pub fn finish(self) -> usize {
        let h = wire::PacketHeader {
            channel: U32::new(self.channel),
            seq: U64::new(self.seq),
            count: U16::new(self.count),
            version: VERSION,
            reserved: 0,
        };
        self.buf[..PACKET_HEADER_LEN].copy_from_slice(h.as_bytes());
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::sample::select;

    fn arb_key() -> impl Strategy<Value = ApiKey> {
        "[!-~]{0,32}".prop_map(|s| ApiKey::new(&s).expect("generated keys are valid"))
    }

    fn arb_report() -> impl Strategy<Value = ExecutionReport> {
        (
            (any::<u64>(), any::<u64>(), any::<u64>(), any::<u32>()),
            (
                select(EventKind::ALL),
                select(Reason::ALL),
                select(Side::ALL),
                select(Liquidity::ALL),
            ),
            (any::<i64>(), any::<u64>(), any::<u64>(), any::<u64>()),
        )
            .prop_map(
                |(
                    (seq, client_order_id, order_id, symbol_id),
                    (kind, reason, side, liquidity),
                    (price, qty, leaves, timestamp_ns),
                )| ExecutionReport {
                    seq,
                    client_order_id,
                    order_id,
                    symbol_id,
                    kind,
                    reason,
                    side,
                    liquidity,
                    price,
                    qty,
                    leaves,
                    timestamp_ns,
                },
            )
    }

    fn arb_feed() -> impl Strategy<Value = Message> {
        prop_oneof![
            (any::<u32>(), select(Side::ALL), any::<i64>(), any::<u64>()).prop_map(
                |(symbol_id, side, price, qty)| BookUpdate {
                    symbol_id,
                    side,
                    price,
                    qty
                }
                .into()
            ),
            (
                any::<u32>(),
                select(Side::ALL),
                any::<i64>(),
                any::<u64>(),
                any::<u64>()
            )
                .prop_map(|(symbol_id, aggressor, price, qty, timestamp_ns)| Trade {
                    symbol_id,
                    aggressor,
                    price,
                    qty,
                    timestamp_ns
                }
                .into()),
            (arb_report(), any::<u32>()).prop_map(|(r, account)| r.to_feed(account).into()),
        ]
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        prop_oneof![
            (any::<u32>(), arb_key(), any::<u32>()).prop_map(|(account, api_key, heartbeat_ms)| {
                Logon {
                    account,
                    api_key,
                    heartbeat_ms,
                }
                .into()
            }),
            Just(Logout {}.into()),
            Just(Heartbeat {}.into()),
            (
                (any::<u64>(), any::<u32>(), select(Side::ALL)),
                (
                    select(&[OrderType::Limit, OrderType::Market][..]),
                    select(TimeInForce::ALL),
                    any::<bool>(),
                    select(Stp::ALL)
                ),
                (any::<i64>(), any::<u64>()),
            )
                .prop_map(
                    |(
                        (client_order_id, symbol_id, side),
                        (order_type, tif, post_only, stp),
                        (price, qty),
                    )| NewOrder {
                        client_order_id,
                        symbol_id,
                        side,
                        order_type,
                        tif,
                        post_only,
                        stp,
                        price,
                        qty,
                    }
                    .into()
                ),
            (any::<u64>(), any::<u32>()).prop_map(|(client_order_id, symbol_id)| Cancel {
                client_order_id,
                symbol_id
            }
            .into()),
            (any::<u64>(), any::<u32>(), any::<i64>(), any::<u64>()).prop_map(
                |(client_order_id, symbol_id, new_price, new_qty)| Modify {
                    client_order_id,
                    symbol_id,
                    new_price,
                    new_qty
                }
                .into()
            ),
            any::<u32>().prop_map(|symbol_id| MassCancel { symbol_id }.into()),
            (any::<u32>(), any::<u64>(), any::<u32>()).prop_map(|(channel, from_seq, count)| {
                RetransmitRequest {
                    channel,
                    from_seq,
                    count,
                }
                .into()
            }),
            (any::<u64>(), any::<u64>(), any::<u32>()).prop_map(
                |(next_seq, session_id, heartbeat_ms)| LogonAck {
                    next_seq,
                    session_id,
                    heartbeat_ms
                }
                .into()
            ),
            (any::<u64>(), select(Reason::ALL)).prop_map(|(next_seq, reason)| LogonReject {
                next_seq,
                reason
            }
            .into()),
            any::<u64>().prop_map(|next_seq| VenueHeartbeat { next_seq }.into()),
            arb_report().prop_map(Message::from),
            (
                any::<u64>(),
                any::<u32>(),
                any::<u64>(),
                any::<u32>(),
                any::<u32>(),
                select(RetransmitStatus::ALL)
            )
                .prop_map(|(next_seq, channel, from_seq, requested, count, status)| {
                    RetransmitReply {
                        next_seq,
                        channel,
                        from_seq,
                        requested,
                        count,
                        status,
                    }
                    .into()
                }),
            arb_feed(),
        ]
    }

    fn enc(m: &Message) -> Vec<u8> {
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let n = m.encode(&mut buf).expect("fits");
        buf[..n].to_vec()
    }

    fn sample_order() -> NewOrder {
        NewOrder {
            client_order_id: 42,
            symbol_id: 3,
            side: Side::Sell,
            order_type: OrderType::Limit,
            tif: TimeInForce::Ioc,
            post_only: false,
            stp: Stp::CancelOldest,
            price: -15,
            qty: 100,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn round_trip(m in arb_message(), tail in proptest::collection::vec(any::<u8>(), 0..8)) {
            let mut bytes = enc(&m);
            prop_assert_eq!(bytes.len(), m.encoded_len());
            prop_assert_eq!(bytes.len(), m.msg_type().len());
            bytes.extend_from_slice(&tail);
            let (back, n) = decode(&bytes).unwrap();
            prop_assert_eq!(back, m);
            prop_assert_eq!(n, m.encoded_len());
            // Every strict prefix is incomplete, never malformed.
            for cut in 0..n {
                let need = if cut < HEADER_LEN { HEADER_LEN } else { n };
                prop_assert_eq!(
                    decode(&bytes[..cut]),
                    Err(CodecError::Incomplete { need, have: cut })
                );
            }
            // The direction filters agree with the type.
            let dir = m.msg_type().direction();
            prop_assert_eq!(decode_from_client(&bytes).is_ok(), dir == Direction::ClientToVenue);
            prop_assert_eq!(decode_from_venue(&bytes).is_ok(), dir != Direction::ClientToVenue);
        }

        #[test]
        fn encode_into_short_buffer_fails_cleanly(m in arb_message(), short in 0usize..72) {
            let need = m.encoded_len();
            let mut buf = vec![0xAAu8; short.min(need.saturating_sub(1))];
            let have = buf.len();
            prop_assert_eq!(m.encode(&mut buf), Err(CodecError::BufferTooSmall { need, have }));
            prop_assert!(buf.iter().all(|&b| b == 0xAA), "nothing written");
        }

        #[test]
        fn stream_in_random_chunks(
            msgs in proptest::collection::vec(arb_message(), 1..20),
            chunk in 1usize..40,
        ) {
            let stream: Vec<u8> = msgs.iter().flat_map(enc).collect();
            // A gateway's loop: append what arrived, decode every complete frame, keep the rest.
            let mut pending: Vec<u8> = Vec::new();
            let mut out = Vec::new();
            for piece in stream.chunks(chunk) {
                pending.extend_from_slice(piece);
                loop {
                    match decode(&pending) {
                        Ok((m, n)) => {
                            out.push(m);
                            pending.drain(..n);
                        }
                        Err(e) => {
                            prop_assert!(e.is_incomplete(), "{e}");
                            break;
                        }
                    }
                }
            }
            prop_assert!(pending.is_empty());
            prop_assert_eq!(out, msgs);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = peek_header(&bytes);
            let _ = decode_from_client(&bytes);
            let _ = decode_from_venue(&bytes);
            let _ = decode_datagram(&bytes);
            if let Ok((m, n)) = decode(&bytes) {
                // Accepted bytes are canonical: re-encoding gives them back.
                prop_assert_eq!(enc(&m), &bytes[..n]);
            }
        }

        #[test]
        fn mutated_frames_are_rejected_or_canonical(
            m in arb_message(),
            pos in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut bytes = enc(&m);
            let i = pos.index(bytes.len());
            bytes[i] = byte;
            match decode(&bytes) {
                Ok((back, n)) => {
                    prop_assert_eq!(n, bytes.len());
                    prop_assert_eq!(enc(&back), bytes);
                }
                Err(e) => prop_assert!(!e.is_incomplete() || i < HEADER_LEN, "{e}"),
            }
        }

        #[test]
        fn datagram_round_trip(
            msgs in proptest::collection::vec(arb_feed(), 0..80),
            channel in any::<u32>(),
            first in 0u64..u64::MAX / 2,
        ) {
            let mut buf = [0u8; MAX_DATAGRAM_LEN + 100];
            let mut datagrams: Vec<Vec<u8>> = Vec::new();
            let mut w = DatagramWriter::new(&mut buf, channel, first).unwrap();
            let mut expected_seq = first;
            let mut pending: &[Message] = &msgs;
            while let Some(m) = pending.first() {
                match w.push(m) {
                    Ok(seq) => {
                        prop_assert_eq!(seq, expected_seq);
                        expected_seq += 1;
                        pending = &pending[1..];
                    }
                    Err(CodecError::BufferTooSmall { .. }) => {
                        prop_assert!(!w.is_empty());
                        let next = w.next_seq();
                        let n = w.finish();
                        prop_assert!(n <= MAX_DATAGRAM_LEN);
                        datagrams.push(buf[..n].to_vec());
                        w = DatagramWriter::new(&mut buf, channel, next).unwrap();
                    }
                    Err(e) => prop_assert!(false, "{e}"),
                }
            }
            let n = w.finish();
            datagrams.push(buf[..n].to_vec());
            let mut seq = first;
            let mut back = Vec::new();
            for d in &datagrams {
                let dg = decode_datagram(d).unwrap();
                prop_assert_eq!(dg.header.channel, channel);
                prop_assert_eq!(dg.header.seq, seq);
                for (s, m) in &dg {
                    prop_assert_eq!(s, seq);
                    seq += 1;
                    back.push(m);
                }
                prop_assert_eq!(dg.iter().count(), usize::from(dg.header.count));
            }
            prop_assert_eq!(back, msgs);
        }
    }

    #[test]
    fn header_errors_come_before_the_body() {
        let good = enc(&sample_order().into());
        // Only the header is needed to refuse a frame.
        let mut h = good[..HEADER_LEN].to_vec();
        h[3] = 2;
        assert_eq!(decode(&h), Err(CodecError::BadVersion { version: 2 }));
        let mut h = good[..HEADER_LEN].to_vec();
        h[..2].copy_from_slice(&60_000u16.to_le_bytes());
        assert_eq!(decode(&h), Err(CodecError::Oversized { length: 60_000 }));
        h[..2].copy_from_slice(&(MAX_MESSAGE_LEN as u16 + 1).to_le_bytes());
        assert_eq!(
            decode(&h),
            Err(CodecError::Oversized {
                length: MAX_MESSAGE_LEN + 1
            })
        );
        let mut h = good[..HEADER_LEN].to_vec();
        h[2] = 0x7f;
        assert_eq!(decode(&h), Err(CodecError::UnknownType { msg_type: 0x7f }));
        h[2] = 0;
        assert_eq!(decode(&h), Err(CodecError::UnknownType { msg_type: 0 }));
        let mut h = good[..HEADER_LEN].to_vec();
        h[..2].copy_from_slice(&38u16.to_le_bytes());
        assert_eq!(
            decode(&h),
            Err(CodecError::BadLength {
                msg_type: 0x10,
                expected: 37,
                length: 38
            })
        );
        h[..2].copy_from_slice(&0u16.to_le_bytes());
        assert_eq!(
            decode(&h),
            Err(CodecError::BadLength {
                msg_type: 0x10,
                expected: 37,
                length: 0
            })
        );
        // A correct header with a short body waits for the body.
        assert_eq!(
            decode(&good[..HEADER_LEN]),
            Err(CodecError::Incomplete { need: 37, have: 4 })
        );
        assert_eq!(
            decode(&[]),
            Err(CodecError::Incomplete { need: 4, have: 0 })
        );
    }

    #[test]
    fn every_enum_and_bool_field_rejects_out_of_range_bytes() {
        let samples: Vec<Message> = vec![
            sample_order().into(),
            LogonReject {
                next_seq: 0,
                reason: Reason::Malformed,
            }
            .into(),
            ExecutionReport {
                seq: 1,
                client_order_id: 2,
                order_id: 3,
                symbol_id: 4,
                kind: EventKind::Fill,
                reason: Reason::None,
                side: Side::Buy,
                liquidity: Liquidity::Maker,
                price: 5,
                qty: 6,
                leaves: 7,
                timestamp_ns: 8,
            }
            .into(),
            RetransmitReply {
                next_seq: 1,
                channel: 0,
                from_seq: 1,
                requested: 1,
                count: 1,
                status: RetransmitStatus::Ok,
            }
            .into(),
            BookUpdate {
                symbol_id: 1,
                side: Side::Sell,
                price: 1,
                qty: 1,
            }
            .into(),
            Trade {
                symbol_id: 1,
                aggressor: Side::Buy,
                price: 1,
                qty: 1,
                timestamp_ns: 1,
            }
            .into(),
        ];
        let mut checked = 0;
        for m in samples {
            let good = enc(&m);
            for f in m.msg_type().fields().iter().filter(|f| f.size == 1) {
                let limit = match f.name {
                    "side" | "aggressor" => Side::ALL.len(),
                    "order_type" => OrderType::ALL.len(),
                    "tif" => TimeInForce::ALL.len(),
                    "post_only" => 2,
                    "stp" => Stp::ALL.len(),
                    "kind" => EventKind::ALL.len(),
                    "reason" => Reason::ALL.len(),
                    "liquidity" => Liquidity::ALL.len(),
                    "status" => RetransmitStatus::ALL.len(),
                    other => panic!("unexpected one-byte field {other}"),
                };
                for value in [limit as u8, 0xff] {
                    let mut bad = good.clone();
                    bad[f.offset] = value;
                    assert_eq!(
                        decode(&bad),
                        Err(CodecError::BadEnum {
                            field: f.name,
                            value
                        }),
                        "{} {}",
                        m.msg_type().name(),
                        f.name
                    );
                    // The frame stays well delimited, so a gateway can skip it.
                    assert_eq!(peek_header(&bad).map(|h| h.length), Ok(good.len()));
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 5 + 1 + 4 + 1 + 1 + 1);
    }

    #[test]
    fn api_keys() {
        let key = ApiKey::new("k3y-!~").unwrap();
        assert_eq!(key.as_str(), "k3y-!~");
        assert_eq!(&key.as_bytes()[..6], b"k3y-!~");
        assert!(key.as_bytes()[6..].iter().all(|&b| b == 0));
        assert_eq!(format!("{key:?}"), "ApiKey(<6 chars>)");
        assert_eq!(ApiKey::new(&"a".repeat(32)).unwrap().as_str().len(), 32);
        assert_eq!(ApiKey::new(""), Ok(ApiKey([0; 32])));
        for bad in ["has space", "tab\t", "é", &"a".repeat(33)] {
            assert_eq!(ApiKey::new(bad), Err(CodecError::BadApiKey), "{bad:?}");
        }
        let logon = Message::from(Logon {
            account: 7,
            api_key: key,
            heartbeat_ms: 1000,
        });
        let good = enc(&logon);
        let key_at = Logon::FIELDS[1].offset;
        // A byte after the padding starts, a control character, a non-ASCII byte.
        for (i, b) in [(key_at + 10, b'x'), (key_at, 0x07), (key_at + 2, 0x80)] {
            let mut bad = good.clone();
            bad[i] = b;
            assert_eq!(decode(&bad), Err(CodecError::BadApiKey));
        }
    }

    #[test]
    fn direction_filters() {
        let order = enc(&sample_order().into());
        let hb = enc(&VenueHeartbeat { next_seq: 9 }.into());
        let book = enc(&BookUpdate {
            symbol_id: 1,
            side: Side::Buy,
            price: 10,
            qty: 0,
        }
        .into());
        assert!(decode_from_client(&order).is_ok());
        assert_eq!(
            decode_from_client(&hb),
            Err(CodecError::WrongDirection {
                msg_type: 0x43,
                expected: Direction::ClientToVenue
            })
        );
        assert!(decode_from_client(&book).is_err());
        assert!(decode_from_venue(&hb).is_ok());
        assert!(decode_from_venue(&book).is_ok());
        assert_eq!(
            decode_from_venue(&order),
            Err(CodecError::WrongDirection {
                msg_type: 0x10,
                expected: Direction::VenueToClient
            })
        );
    }

    fn datagram(channel: u32, seq: u64, msgs: &[Message]) -> Vec<u8> {
        let mut buf = [0u8; MAX_DATAGRAM_LEN];
        let mut w = DatagramWriter::new(&mut buf, channel, seq).unwrap();
        for m in msgs {
            w.push(m).unwrap();
        }
        let n = w.finish();
        buf[..n].to_vec()
    }

    #[test]
    fn datagram_errors() {
        let up = Message::from(BookUpdate {
            symbol_id: 1,
            side: Side::Buy,
            price: 10,
            qty: 5,
        });
        let good = datagram(3, 100, &[up, up]);
        assert_eq!(good.len(), PACKET_HEADER_LEN + 2 * BookUpdate::LEN);
        let dg = decode_datagram(&good).unwrap();
        assert_eq!(
            dg.header,
            PacketHeader {
                channel: 3,
                seq: 100,
                count: 2
            }
        );
        assert_eq!(dg.iter().map(|(s, _)| s).collect::<Vec<_>>(), [100, 101]);
        // Heartbeat datagram.
        let hb = datagram(3, 102, &[]);
        assert_eq!(decode_datagram(&hb).unwrap().header.count, 0);

        assert_eq!(
            decode_datagram(&good[..15]),
            Err(CodecError::DatagramTooShort { length: 15 })
        );
        assert_eq!(
            decode_datagram(&vec![0u8; MAX_DATAGRAM_LEN + 1]),
            Err(CodecError::DatagramTooLarge {
                length: MAX_DATAGRAM_LEN + 1
            })
        );
        let mut bad = good.clone();
        bad[14] = 9;
        assert_eq!(
            decode_datagram(&bad),
            Err(CodecError::BadVersion { version: 9 })
        );
        let mut bad = good.clone();
        bad[15] = 1;
        assert_eq!(
            decode_datagram(&bad),
            Err(CodecError::BadReserved { value: 1 })
        );
        let cut = good.len() - 1;
        assert_eq!(
            decode_datagram(&good[..cut]),
            Err(CodecError::TruncatedDatagram {
                offset: PACKET_HEADER_LEN + BookUpdate::LEN
            })
        );
        let mut bad = good.clone();
        bad[12] = 3;
        assert_eq!(
            decode_datagram(&bad),
            Err(CodecError::CountMismatch {
                declared: 3,
                found: 2
            })
        );
        // A frame error inside a datagram is reported as such.
        let mut bad = good.clone();
        bad[PACKET_HEADER_LEN + BookUpdate::FIELDS[1].offset] = 2;
        assert_eq!(
            decode_datagram(&bad),
            Err(CodecError::BadEnum {
                field: "side",
                value: 2
            })
        );
        // Orders have no business in a feed datagram; the writer refuses them too.
        let mut bad = good[..PACKET_HEADER_LEN].to_vec();
        bad[12] = 1;
        bad.extend(enc(&sample_order().into()));
        assert_eq!(
            decode_datagram(&bad),
            Err(CodecError::WrongDirection {
                msg_type: 0x10,
                expected: Direction::Feed
            })
        );
        let mut buf = [0u8; 70];
        let mut w = DatagramWriter::new(&mut buf, 1, 1).unwrap();
        assert!(matches!(
            w.push(&sample_order().into()),
            Err(CodecError::WrongDirection { .. })
        ));
        assert_eq!(w.push(&up), Ok(1));
        assert_eq!(w.push(&up), Ok(2));
        assert_eq!(
            w.push(&up),
            Err(CodecError::BufferTooSmall {
                need: 16 + 3 * 25,
                have: 70
            })
        );
        assert_eq!(w.next_seq(), 3);
        assert_eq!(w.finish(), 16 + 2 * 25);
        assert!(DatagramWriter::new(&mut [0u8; 15], 1, 1).is_err());
    }

    #[test]
    fn message_fits_a_ring_slot() {
        // The typed message travels through the SPSC ring by value; keep it small.
        assert!(core::mem::size_of::<Message>() <= 72);
        assert!(core::mem::size_of::<Result<(Message, usize), CodecError>>() <= 80);
    }

    #[test]
    fn kinds_are_distinct() {
        let all = [
            CodecError::Incomplete { need: 0, have: 0 },
            CodecError::BadVersion { version: 0 },
            CodecError::Oversized { length: 0 },
            CodecError::UnknownType { msg_type: 0 },
            CodecError::BadLength {
                msg_type: 0,
                expected: 0,
                length: 0,
            },
            CodecError::BadEnum {
                field: "",
                value: 0,
            },
            CodecError::BadApiKey,
            CodecError::WrongDirection {
                msg_type: 0,
                expected: Direction::Feed,
            },
            CodecError::DatagramTooShort { length: 0 },
            CodecError::DatagramTooLarge { length: 0 },
            CodecError::BadReserved { value: 0 },
            CodecError::TruncatedDatagram { offset: 0 },
            CodecError::CountMismatch {
                declared: 0,
                found: 0,
            },
            CodecError::BufferTooSmall { need: 0, have: 0 },
        ];
        let mut kinds: Vec<&str> = all.iter().map(CodecError::kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), all.len());
    }

    #[test]
    fn type_bytes_match_directions() {
        for t in MsgType::ALL {
            let want = match *t as u8 {
                0x01..=0x3f => Direction::ClientToVenue,
                0x40..=0x7f => Direction::VenueToClient,
                0x80..=0xbf => Direction::Feed,
                b => panic!("type 0x{b:02x} outside the ranges"),
            };
            assert_eq!(t.direction(), want, "{}", t.name());
            assert_eq!(MsgType::from_u8(*t as u8), Some(*t));
            let body: usize = t.fields().iter().map(|f| f.size).sum();
            assert_eq!(HEADER_LEN + body, t.len(), "{}: no padding", t.name());
            if t.direction() == Direction::VenueToClient {
                let first = t.fields()[0];
                assert_eq!(
                    (first.offset, first.size),
                    (4, 8),
                    "{}: seq first",
                    t.name()
                );
            }
        }
        assert_eq!(MsgType::ALL.len(), 16);
        assert_eq!((0..=255u8).filter_map(MsgType::from_u8).count(), 16);
    }
}
