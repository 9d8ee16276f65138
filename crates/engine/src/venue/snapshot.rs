//! `venue::snapshot`: the canonical encoding of a venue's whole state, used three ways: as
//! the snapshot body the journal stores ([`Venue::snapshot`]), to rebuild a venue from it
//! ([`Venue::restore`]), and, hashed with SHA-256, as the state hash that replays are
//! compared by ([`Venue::state_hash`]).
//!
//! ## Layout (little-endian, version 1)
//!
//! ```text
//! magic "TCVENUE\0" | version u32 | engine config fingerprint [32]
//! next_order_id u64 | max_session_id u64 | md_messages u64
//! n_sessions u32, then per open session by increasing id:
//!     session u64 | account u32 | tokens u64 (nano-tokens) | last_ts u64
//! n_accounts u32, then per configured account by increasing id:
//!     account u32 | reports u64 (last number of its report stream)
//! n_instruments u32, then per instrument by increasing symbol id:
//!     symbol_id u32 | n_bids u32 | n_asks u32, then the bids and then the asks, each side
//!     in priority order (best price first, then time), each order:
//!     order_id u64 | price i64 | leaves u64 | account u32 | client_order_id u64 |
//!     session u64 | stp u8 | post_only u8
//! ```
//!
//! Everything that can influence a future output is in it: the books with their queues, the
//! client id maps (each resting order's owner and client id), the order id counter, the open
//! sessions with their rate-limit buckets, the report stream counters of every account and
//! the market-data message counter, and the config fingerprint. Nothing that cannot
//! (hash-map layouts, arena slot numbers, scratch buffers) is, so two venues with equal
//! encodings behave identically from then on.
//!
//! ## Restore
//!
//! Each side's orders are re-submitted, in the listed order, into empty books as GTC limits
//! with their remaining quantity, account, STP mode and post-only flag. Because they arrive
//! best price first and in time order within a price, and the book is never crossed, every
//! submit rests without trading and each level's queue comes out in the original order; the
//! account lists are rebuilt in venue id order. Every field is validated (ids in range and
//! unique, known accounts and instruments, prices in band, quantities within limits,
//! priority order, a rest without trades, no trailing bytes), so a damaged body is an error,
//! never a panic or a venue that differs from the one that wrote it.
//!
//! ## Cost
//!
//! O(orders): 46 bytes per resting order, 28 per session, 12 per account. Restore costs one uncontended
//! submit per order. Allocates (the output `Vec`, `Book::orders`), which is fine off the
//! per-message path.

use sha2::{Digest, Sha256};
use tradecore_book::{EventKind, Matching, OrderRequest, OrderType, Side, Stp, TimeInForce};

use super::{OrderInfo, Session, Venue, VenueError, NIL};
use crate::config::{to_hex, Config};

/// First bytes of a venue snapshot body.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"TCVENUE\0";
const SNAPSHOT_FORMAT: u32 = 2;
const SESSION_LEN: usize = 28;
const ORDER_LEN: usize = 46;

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn corrupt(offset: usize, what: &'static str) -> VenueError {
    VenueError::SnapshotCorrupt { offset, what }
}

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], VenueError> {
        let end = self.pos.checked_add(N).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return Err(corrupt(self.pos, "truncated"));
        };
        let mut a = [0u8; N];
        a.copy_from_slice(&self.buf[self.pos..end]);
        self.pos = end;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, VenueError> {
        Ok(self.take::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, VenueError> {
        self.take().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Result<u64, VenueError> {
        self.take().map(u64::from_le_bytes)
    }
    fn i64(&mut self) -> Result<i64, VenueError> {
        self.take().map(i64::from_le_bytes)
    }
}

impl Venue {
    /// The canonical encoding of the venue's state (module doc of `venue::snapshot`): the
    /// body of a journal snapshot. O(orders); allocates.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(
            72 + SESSION_LEN * self.sessions.len()
                + 12 * self.accounts.len()
                + 12 * self.instruments.len()
                + ORDER_LEN * self.orders.len(),
        );
        b.extend_from_slice(&SNAPSHOT_MAGIC);
        b.extend_from_slice(&SNAPSHOT_FORMAT.to_le_bytes());
        b.extend_from_slice(&self.fingerprint);
        b.extend_from_slice(&self.next_order_id.to_le_bytes());
        b.extend_from_slice(&self.max_session_id.to_le_bytes());
        b.extend_from_slice(&self.md_messages.to_le_bytes());
        let mut sessions: Vec<(u64, Session)> =
            self.sessions.iter().map(|(&id, &s)| (id, s)).collect();
        sessions.sort_unstable_by_key(|&(id, _)| id);
        b.extend_from_slice(&(sessions.len() as u32).to_le_bytes());
        for (id, s) in sessions {
            b.extend_from_slice(&id.to_le_bytes());
            b.extend_from_slice(&s.account.to_le_bytes());
            b.extend_from_slice(&s.tokens.to_le_bytes());
            b.extend_from_slice(&s.last_ts.to_le_bytes());
        }
        b.extend_from_slice(&(self.accounts.len() as u32).to_le_bytes());
        for a in &self.accounts {
            b.extend_from_slice(&a.id.to_le_bytes());
            b.extend_from_slice(&a.reports.to_le_bytes());
        }
        b.extend_from_slice(&(self.instruments.len() as u32).to_le_bytes());
        for ins in &self.instruments {
            let bids = ins.book.orders(Side::Buy);
            let asks = ins.book.orders(Side::Sell);
            b.extend_from_slice(&ins.symbol_id.to_le_bytes());
            b.extend_from_slice(&(bids.len() as u32).to_le_bytes());
            b.extend_from_slice(&(asks.len() as u32).to_le_bytes());
            for r in bids.iter().chain(&asks) {
                // The order map covers every resting order (an invariant); a missing entry
                // would be written as client id 0, which restore refuses.
                let (coid, session, stp, post_only) = self
                    .orders
                    .slot_of_id(r.order_id)
                    .map(|slot| self.orders.get(slot))
                    .map_or((0, 0, Stp::None, false), |i| {
                        (i.client_order_id, i.session, i.stp, i.post_only)
                    });
                b.extend_from_slice(&r.order_id.to_le_bytes());
                b.extend_from_slice(&r.price.to_le_bytes());
                b.extend_from_slice(&r.leaves.to_le_bytes());
                b.extend_from_slice(&r.account.to_le_bytes());
                b.extend_from_slice(&coid.to_le_bytes());
                b.extend_from_slice(&session.to_le_bytes());
                b.push(stp as u8);
                b.push(u8::from(post_only));
            }
        }
        b
    }

    /// SHA-256 of [`Venue::snapshot`]: equal hashes mean equal books (queues included), id
    /// maps, counters and sessions. O(orders); allocates.
    pub fn state_hash(&self) -> [u8; 32] {
        Sha256::digest(self.snapshot()).into()
    }

    /// [`Venue::state_hash`] as 64 lower-case hex digits (what `tradecore replay` prints).
    pub fn state_hash_hex(&self) -> String {
        to_hex(&self.state_hash())
    }

    /// Rebuilds the venue a snapshot was taken of. `config` must have the same engine
    /// fingerprint as the snapshot's ([`VenueError::SnapshotConfigMismatch`] otherwise); any
    /// damage is [`VenueError::SnapshotCorrupt`]. The result's [`Venue::state_hash`] equals
    /// the original's.
    pub fn restore(config: &Config, body: &[u8]) -> Result<Venue, VenueError> {
        let mut v = Venue::new(config)?;
        let mut r = Reader { buf: body, pos: 0 };
        if r.take::<8>()? != SNAPSHOT_MAGIC {
            return Err(corrupt(0, "not a venue snapshot (bad magic)"));
        }
        if r.u32()? != SNAPSHOT_FORMAT {
            return Err(corrupt(8, "unsupported snapshot format version"));
        }
        let fingerprint: [u8; 32] = r.take()?;
        if fingerprint != v.fingerprint {
            return Err(VenueError::SnapshotConfigMismatch {
                expected: to_hex(&v.fingerprint),
                found: to_hex(&fingerprint),
            });
        }
        let at = r.pos;
        v.next_order_id = r.u64()?;
        if v.next_order_id == 0 {
            return Err(corrupt(at, "next order id is 0"));
        }
        v.max_session_id = r.u64()?;
        v.md_messages = r.u64()?;

        let at = r.pos;
        let n_sessions = r.u32()? as usize;
        if n_sessions > v.max_sessions {
            return Err(corrupt(at, "more sessions than max_sessions"));
        }
        let mut prev_id: Option<u64> = None;
        for _ in 0..n_sessions {
            let at = r.pos;
            let id = r.u64()?;
            let account = r.u32()?;
            let tokens = r.u64()?;
            let last_ts = r.u64()?;
            if prev_id.is_some_and(|p| p >= id) {
                return Err(corrupt(at, "sessions not in increasing id order"));
            }
            prev_id = Some(id);
            if id > v.max_session_id {
                return Err(corrupt(at, "session id above the largest seen"));
            }
            let Ok(acct) = v.accounts.binary_search_by_key(&account, |a| a.id) else {
                return Err(corrupt(at, "session of an unknown account"));
            };
            if tokens > v.bucket_cap {
                return Err(corrupt(at, "session bucket above its cap"));
            }
            v.sessions.insert(
                id,
                Session {
                    account,
                    acct: acct as u32,
                    tokens,
                    last_ts,
                },
            );
        }

        let at = r.pos;
        if r.u32()? as usize != v.accounts.len() {
            return Err(corrupt(at, "account count differs from the config"));
        }
        for i in 0..v.accounts.len() {
            let at = r.pos;
            if r.u32()? != v.accounts[i].id {
                return Err(corrupt(at, "account id differs from the config"));
            }
            v.accounts[i].reports = r.u64()?;
        }

        let at = r.pos;
        if r.u32()? as usize != v.instruments.len() {
            return Err(corrupt(at, "instrument count differs from the config"));
        }
        // Records with the offset they were read at, inserted into the order store in venue
        // id order once the books are rebuilt (the account lists must come out sorted).
        let mut infos: Vec<(OrderInfo, usize)> = Vec::new();
        let mut events = Vec::with_capacity(4);
        for ix in 0..v.instruments.len() {
            let at = r.pos;
            if r.u32()? != v.instruments[ix].symbol_id {
                return Err(corrupt(at, "instrument id differs from the config"));
            }
            let n_bids = r.u32()?;
            let n_asks = r.u32()?;
            for (side, count) in [(Side::Buy, n_bids), (Side::Sell, n_asks)] {
                let mut last_price: Option<i64> = None;
                for _ in 0..count {
                    let at = r.pos;
                    let order_id = r.u64()?;
                    let price = r.i64()?;
                    let leaves = r.u64()?;
                    let account = r.u32()?;
                    let client_order_id = r.u64()?;
                    let session = r.u64()?;
                    let stp = r.u8()?;
                    let post_only = r.u8()?;
                    let Some(stp) = Stp::from_u8(stp) else {
                        return Err(corrupt(at, "bad STP byte"));
                    };
                    let post_only = match post_only {
                        0 => false,
                        1 => true,
                        _ => return Err(corrupt(at, "bad post-only byte")),
                    };
                    if order_id == 0 || order_id >= v.next_order_id {
                        return Err(corrupt(at, "order id outside 1..next_order_id"));
                    }
                    if client_order_id == 0 {
                        return Err(corrupt(at, "client order id 0"));
                    }
                    let ins = &v.instruments[ix];
                    if price < ins.lo || price > ins.hi {
                        return Err(corrupt(at, "price outside the instrument's band"));
                    }
                    if leaves == 0 || leaves > ins.max_qty {
                        return Err(corrupt(at, "quantity outside 1..=max_order_qty"));
                    }
                    let in_order = match (side, last_price) {
                        (_, None) => true,
                        (Side::Buy, Some(p)) => price <= p,
                        (Side::Sell, Some(p)) => price >= p,
                    };
                    if !in_order {
                        return Err(corrupt(at, "orders not in priority order"));
                    }
                    last_price = Some(price);
                    let Ok(acct) = v.accounts.binary_search_by_key(&account, |a| a.id) else {
                        return Err(corrupt(at, "order of an unknown account"));
                    };
                    if v.instruments[ix].book.order(order_id).is_some() {
                        return Err(corrupt(at, "duplicate order id"));
                    }
                    let req = OrderRequest {
                        order_id,
                        account,
                        side,
                        price,
                        qty: leaves,
                        order_type: OrderType::Limit,
                        tif: TimeInForce::Gtc,
                        post_only,
                        stp,
                        timestamp: 0,
                    };
                    events.clear();
                    v.instruments[ix].book.submit(&req, &mut events);
                    if events.len() != 1 || events[0].kind != EventKind::Accepted {
                        return Err(corrupt(at, "order does not rest without trading"));
                    }
                    infos.push((
                        OrderInfo {
                            order_id,
                            client_order_id,
                            session,
                            prev: NIL,
                            next: NIL,
                            account,
                            acct: acct as u32,
                            instr: ix as u32,
                            side,
                            stp,
                            post_only,
                        },
                        at,
                    ));
                }
            }
        }
        if r.pos != body.len() {
            return Err(corrupt(r.pos, "trailing bytes"));
        }
        infos.sort_unstable_by_key(|(info, _)| info.order_id);
        for (i, &(info, at)) in infos.iter().enumerate() {
            // Sorted, so a repeated venue id (in any book) sits next to its twin.
            if i > 0 && infos[i - 1].0.order_id == info.order_id {
                return Err(corrupt(at, "duplicate order id"));
            }
            if v.orders
                .slot_of_client(info.account, info.client_order_id)
                .is_some()
            {
                return Err(corrupt(at, "duplicate client order id"));
            }
            v.orders.insert(info);
        }
        Ok(v)
    }
}
