//! `venue::command`: the engine's input ([`Command`]) and its compact binary encoding, which is
//! the payload of every journal record.
//!
//! ## Layout (little-endian, fixed size per kind, version 1)
//!
//! | Offset | Size | Field |
//! |---:|---:|---|
//! | 0 | 1 | format version, [`COMMAND_VERSION`] |
//! | 1 | 1 | kind: the codec's message type byte (`0x01` Logon ... `0x20` RetransmitRequest), or `0xf0` Disconnect |
//! | 2 | 8 | `session` |
//! | 10 | 4 | `account` |
//! | 14 | 8 | `ts_ns` |
//! | 22 | n | body |
//!
//! Bodies: `Logon` is `account u32, key_sha256 [u8; 32], heartbeat_ms u32` (40 bytes: the
//! journal never holds a plaintext API key, only its SHA-256, like the config); `NewOrder`,
//! `Cancel`, `Modify`, `MassCancel` and `RetransmitRequest` are exactly the codec's wire body
//! of that message (`docs/protocol.md`, without the frame header) and are read back through
//! the codec's validating `from_wire`; `Logout`, `Heartbeat` and `Disconnect` have none. The
//! largest record is [`MAX_COMMAND_LEN`] (62) bytes.
//!
//! ## Invariants
//!
//! `decode(encode(c)) == c` for every command; `decode` accepts exactly one record of the
//! exact length of its kind and returns a typed error for anything else (it never panics and
//! never allocates).
//!
//! ## Cost
//!
//! A few stores or loads of at most 62 bytes; no allocation. Hashing a Logon's API key
//! ([`Command::from_message`]) is one SHA-256 of at most 32 bytes, done by the gateway thread.

use sha2::{Digest, Sha256};
use tradecore_book::{OrderType, Side, Stp, TimeInForce};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use super::VenueError;
use crate::codec::{
    self, wire, Cancel, MassCancel, Message, Modify, MsgType, NewOrder, RetransmitRequest,
};

/// Version byte of the command encoding.
pub const COMMAND_VERSION: u8 = 1;
/// Bytes before the body.
pub const COMMAND_HEADER_LEN: usize = 22;
/// Largest encoded command (a Logon).
pub const MAX_COMMAND_LEN: usize = COMMAND_HEADER_LEN + LOGON_BODY_LEN;
/// Kind byte of [`Input::Disconnect`] (outside the codec's type ranges).
pub const DISCONNECT_KIND: u8 = 0xf0;

const LOGON_BODY_LEN: usize = 40;

/// What a command asks the venue to do: a client message (as the gateway decoded it) or a
/// gateway event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// `Logon`, with the API key replaced by its SHA-256.
    Logon {
        /// Account the session asks to trade for.
        account: u32,
        /// SHA-256 of the API key's characters (without the wire's zero padding).
        key_sha256: [u8; 32],
        /// Heartbeat interval the client asked for, ms.
        heartbeat_ms: u32,
    },
    /// `Logout`.
    Logout,
    /// Client `Heartbeat`.
    Heartbeat,
    /// `NewOrder`.
    NewOrder(NewOrder),
    /// `Cancel`.
    Cancel(Cancel),
    /// `Modify`.
    Modify(Modify),
    /// `MassCancel`.
    MassCancel(MassCancel),
    /// `RetransmitRequest` (the venue passes it to the publisher in stream order).
    RetransmitRequest(RetransmitRequest),
    /// Injected by the gateway when the connection of `session` is gone (closed by either
    /// side, timed out, or found open at recovery).
    Disconnect,
}

impl Input {
    /// The kind byte of the encoding.
    pub fn kind(&self) -> u8 {
        match self {
            Input::Logon { .. } => MsgType::Logon as u8,
            Input::Logout => MsgType::Logout as u8,
            Input::Heartbeat => MsgType::Heartbeat as u8,
            Input::NewOrder(_) => MsgType::NewOrder as u8,
            Input::Cancel(_) => MsgType::Cancel as u8,
            Input::Modify(_) => MsgType::Modify as u8,
            Input::MassCancel(_) => MsgType::MassCancel as u8,
            Input::RetransmitRequest(_) => MsgType::RetransmitRequest as u8,
            Input::Disconnect => DISCONNECT_KIND,
        }
    }
}

/// Body length of a kind, or `None` for an unknown kind byte.
fn body_len(kind: u8) -> Option<usize> {
    if kind == DISCONNECT_KIND {
        return Some(0);
    }
    Some(match MsgType::from_u8(kind)? {
        MsgType::Logon => LOGON_BODY_LEN,
        MsgType::Logout | MsgType::Heartbeat => 0,
        t @ (MsgType::NewOrder
        | MsgType::Cancel
        | MsgType::Modify
        | MsgType::MassCancel
        | MsgType::RetransmitRequest) => t.len() - codec::HEADER_LEN,
        _ => return None,
    })
}

/// One input of the engine: who sent it, when, and what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command {
    /// The gateway's connection id (the report stream id of `LogonAck`).
    pub session: u64,
    /// The account the gateway believes the session is logged on as (0 before logon). Kept
    /// for tools reading the journal; the venue trusts only its own session table.
    pub account: u32,
    /// Venue time, ns since the Unix epoch, stamped once by the gateway. Rate limiting and
    /// report timestamps read only this, so replay is deterministic.
    pub ts_ns: u64,
    /// What to do.
    pub input: Input,
}

fn put_u64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn get_u64(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(b)
}

fn get_u32(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(b)
}

fn put_body<W: IntoBytes + Immutable>(buf: &mut [u8], w: &W) {
    let b = w.as_bytes();
    buf[COMMAND_HEADER_LEN..COMMAND_HEADER_LEN + b.len()].copy_from_slice(b);
}

fn codec_err(e: codec::CodecError) -> VenueError {
    match e {
        codec::CodecError::BadEnum { field, value } => VenueError::CommandBadEnum { field, value },
        // Bodies are length-checked before the codec sees them; keep any other failure typed.
        other => VenueError::CommandBody(other),
    }
}

impl Command {
    /// A command from a decoded client message. A `Logon`'s API key is replaced by its
    /// SHA-256 here (on the gateway thread). Venue -> client and feed messages are
    /// [`VenueError::NotClientMessage`].
    pub fn from_message(
        session: u64,
        account: u32,
        ts_ns: u64,
        msg: &Message,
    ) -> Result<Command, VenueError> {
        let input = match *msg {
            Message::Logon(l) => Input::Logon {
                account: l.account,
                key_sha256: Sha256::digest(l.api_key.as_str().as_bytes()).into(),
                heartbeat_ms: l.heartbeat_ms,
            },
            Message::Logout(_) => Input::Logout,
            Message::Heartbeat(_) => Input::Heartbeat,
            Message::NewOrder(m) => Input::NewOrder(m),
            Message::Cancel(m) => Input::Cancel(m),
            Message::Modify(m) => Input::Modify(m),
            Message::MassCancel(m) => Input::MassCancel(m),
            Message::RetransmitRequest(m) => Input::RetransmitRequest(m),
            other => {
                return Err(VenueError::NotClientMessage {
                    msg_type: other.msg_type() as u8,
                })
            }
        };
        Ok(Command {
            session,
            account,
            ts_ns,
            input,
        })
    }

    /// The gateway's notice that `session`'s connection is gone.
    pub fn disconnect(session: u64, account: u32, ts_ns: u64) -> Command {
        Command {
            session,
            account,
            ts_ns,
            input: Input::Disconnect,
        }
    }

    /// Bytes of the encoding (22 to 62).
    pub fn encoded_len(&self) -> usize {
        // Every kind produced by `Input::kind` has a body length.
        COMMAND_HEADER_LEN + body_len(self.input.kind()).unwrap_or(0)
    }

    /// Writes the encoding at the start of `buf` and returns its length; fails only with
    /// [`VenueError::BufferTooSmall`] (never with a buffer of [`Command::encoded_len`] or
    /// [`MAX_COMMAND_LEN`] bytes).
    pub fn encode_into(&self, buf: &mut [u8]) -> Result<usize, VenueError> {
        let len = self.encoded_len();
        if buf.len() < len {
            return Err(VenueError::BufferTooSmall {
                need: len,
                have: buf.len(),
            });
        }
        buf[0] = COMMAND_VERSION;
        buf[1] = self.input.kind();
        put_u64(buf, 2, self.session);
        put_u32(buf, 10, self.account);
        put_u64(buf, 14, self.ts_ns);
        match &self.input {
            Input::Logon {
                account,
                key_sha256,
                heartbeat_ms,
            } => {
                put_u32(buf, COMMAND_HEADER_LEN, *account);
                buf[COMMAND_HEADER_LEN + 4..COMMAND_HEADER_LEN + 36].copy_from_slice(key_sha256);
                put_u32(buf, COMMAND_HEADER_LEN + 36, *heartbeat_ms);
            }
            Input::NewOrder(m) => put_body(buf, &m.to_wire()),
            Input::Cancel(m) => put_body(buf, &m.to_wire()),
            Input::Modify(m) => put_body(buf, &m.to_wire()),
            Input::MassCancel(m) => put_body(buf, &m.to_wire()),
            Input::RetransmitRequest(m) => put_body(buf, &m.to_wire()),
            Input::Logout | Input::Heartbeat | Input::Disconnect => {}
        }
        Ok(len)
    }

    /// Reads one encoded command; `buf` must hold exactly one (the journal's record length).
    pub fn decode(buf: &[u8]) -> Result<Command, VenueError> {
        if buf.len() < COMMAND_HEADER_LEN {
            return Err(VenueError::CommandTruncated {
                need: COMMAND_HEADER_LEN,
                have: buf.len(),
            });
        }
        if buf[0] != COMMAND_VERSION {
            return Err(VenueError::CommandBadVersion { version: buf[0] });
        }
        let kind = buf[1];
        let Some(blen) = body_len(kind) else {
            return Err(VenueError::CommandUnknownKind { kind });
        };
        if buf.len() != COMMAND_HEADER_LEN + blen {
            return Err(VenueError::CommandBadLength {
                kind,
                expected: COMMAND_HEADER_LEN + blen,
                length: buf.len(),
            });
        }
        let body = &buf[COMMAND_HEADER_LEN..];
        // The length was checked against the wire struct's size just above.
        let bad_len = || VenueError::CommandBadLength {
            kind,
            expected: COMMAND_HEADER_LEN + blen,
            length: buf.len(),
        };
        let input = if kind == DISCONNECT_KIND {
            Input::Disconnect
        } else {
            match MsgType::from_u8(kind) {
                Some(MsgType::Logon) => {
                    let mut key_sha256 = [0u8; 32];
                    key_sha256.copy_from_slice(&body[4..36]);
                    Input::Logon {
                        account: get_u32(body, 0),
                        key_sha256,
                        heartbeat_ms: get_u32(body, 36),
                    }
                }
                Some(MsgType::Logout) => Input::Logout,
                Some(MsgType::Heartbeat) => Input::Heartbeat,
                Some(MsgType::NewOrder) => Input::NewOrder(
                    NewOrder::from_wire(
                        wire::NewOrder::ref_from_bytes(body).map_err(|_| bad_len())?,
                    )
                    .map_err(codec_err)?,
                ),
                Some(MsgType::Cancel) => Input::Cancel(
                    Cancel::from_wire(wire::Cancel::ref_from_bytes(body).map_err(|_| bad_len())?)
                        .map_err(codec_err)?,
                ),
                Some(MsgType::Modify) => Input::Modify(
                    Modify::from_wire(wire::Modify::ref_from_bytes(body).map_err(|_| bad_len())?)
                        .map_err(codec_err)?,
                ),
                Some(MsgType::MassCancel) => Input::MassCancel(
                    MassCancel::from_wire(
                        wire::MassCancel::ref_from_bytes(body).map_err(|_| bad_len())?,
                    )
                    .map_err(codec_err)?,
                ),
                Some(MsgType::RetransmitRequest) => Input::RetransmitRequest(
                    RetransmitRequest::from_wire(
                        wire::RetransmitRequest::ref_from_bytes(body).map_err(|_| bad_len())?,
                    )
                    .map_err(codec_err)?,
                ),
                _ => return Err(VenueError::CommandUnknownKind { kind }),
            }
        };
        Ok(Command {
            session: get_u64(buf, 2),
            account: get_u32(buf, 10),
            ts_ns: get_u64(buf, 14),
            input,
        })
    }
}

/// A `NewOrder` with the usual defaults (GTC limit, not post-only, STP cancel-newest); handy
/// for tests and tools.
pub fn limit_order(
    client_order_id: u64,
    symbol_id: u32,
    side: Side,
    price: i64,
    qty: u64,
) -> NewOrder {
    NewOrder {
        client_order_id,
        symbol_id,
        side,
        order_type: OrderType::Limit,
        tif: TimeInForce::Gtc,
        post_only: false,
        stp: Stp::CancelNewest,
        price,
        qty,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_per_kind() {
        let base = Command::disconnect(1, 2, 3);
        assert_eq!(base.encoded_len(), 22);
        let logon = Command {
            input: Input::Logon {
                account: 1,
                key_sha256: [7; 32],
                heartbeat_ms: 5,
            },
            ..base
        };
        assert_eq!(logon.encoded_len(), MAX_COMMAND_LEN);
        let order = Command {
            input: Input::NewOrder(limit_order(1, 1, Side::Buy, 10, 1)),
            ..base
        };
        assert_eq!(order.encoded_len(), 22 + 33);
        let mut buf = [0u8; MAX_COMMAND_LEN];
        for c in [base, logon, order] {
            let n = c.encode_into(&mut buf).unwrap();
            assert_eq!(n, c.encoded_len());
            assert_eq!(Command::decode(&buf[..n]).unwrap(), c);
            assert!(matches!(
                c.encode_into(&mut buf[..n - 1]),
                Err(VenueError::BufferTooSmall { .. })
            ));
            assert!(Command::decode(&buf[..n - 1]).is_err());
        }
    }
}
