//! A strict single-pass scanner for Binance combined-stream JSON messages, and the reader of a
//! depth message's level arrays straight into `(side, ticks, lots)`.
//!
//! Owns: [`message`] (the raw fields of `{"stream": "...", "data": {...}}`), [`binance`] (the
//! same sorted into a depth diff, aggTrade, bookTicker or other stream: [`Message`]),
//! [`each_pair`] (walks one `[["p","q"], ...]` array found at a byte offset) and
//! [`depth_levels`] (both arrays of a depth diff converted on the tick/lot grids by
//! [`crate::decimal`], appended to a caller's buffer). It is the fast path of the market-data
//! feed: the Python layer calls it first and falls back to `json.loads` and its own parsers,
//! which are the reference and word the errors, whenever this returns `None`.
//!
//! Invariants:
//! * Well-formed JSON only, strictly: it accepts a subset of RFC 8259 texts and returns `None`
//!   for everything else and for anything it is not certain about: a string with an escape
//!   where a value is captured (skipped values may have escapes, which are validated), a float
//!   or negative number or an integer beyond `u64` where an id belongs (captured as
//!   [`Val::Other`]), NaN, a leading zero, trailing commas or bytes, nesting deeper than 32, a
//!   depth level that is not a pair of plain strings (the array is then [`Val::Other`]).
//! * Keys may come in any order; a repeated key: the last one wins, as in Python's `json`
//!   (a repeated `data` object replaces the first one entirely).
//! * Any byte string and any offsets are safe: nothing here panics or indexes out of bounds
//!   (unit tests, `tests/scan.rs` and the `decimal_scan` fuzz target).
//! * [`depth_levels`] is all or nothing for its caller: it either returns `Ok` having appended
//!   every accepted level of both arrays, or an error (the caller discards the buffer).
//!
//! Cost: [`message`] and [`binance`] are one pass over the message bytes and allocate nothing
//! (results borrow from the text). Strings are searched eight bytes at a time for their end
//! (a quote, a backslash or a control character, found with word arithmetic); a depth diff in
//! Binance's own layout is read by [`binance`] against that layout (literal keys in their
//! order, no key dispatch) and anything else by the general scanner; about 1.5k instructions
//! for a 190-byte diff, half the byte-by-byte scanner's. [`each_pair`] and [`depth_levels`]
//! are one pass over the arrays from the given offsets; [`depth_levels`] reads each decimal of
//! up to 19 bytes in `u64` ([`steps_u64`]'s fast reading, checked against
//! [`crate::decimal::Grid::steps`], which reads everything else and words every error); they
//! allocate only when the caller's buffer grows past its capacity.

use std::fmt;

use crate::decimal::{level, Grid, LevelError};
use crate::types::Side;

/// One captured value of the `data` object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Val<'a> {
    /// Not seen.
    #[default]
    None,
    /// A non-negative integer that fits u64.
    Int(u64),
    /// A string without escapes.
    Str(&'a str),
    /// `true` / `false`.
    Bool(bool),
    /// An array of `[price, qty]` string pairs: byte range of the array in the text.
    Levels(usize, usize),
    /// Any other value (skipped).
    Other,
}

/// The fields of interest of one message.
#[derive(Debug, Default)]
pub struct Fields<'a> {
    /// The `stream` string (for example `"btcusdt@depth@100ms"`), if present and plain.
    pub stream: Option<&'a str>,
    /// Whether a `data` object was read.
    pub has_data: bool,
    /// `E`: event time (ms).
    pub e_time: Val<'a>,
    /// `s`: symbol.
    pub s: Val<'a>,
    /// `U`: first update id of a depth diff.
    pub first: Val<'a>,
    /// `u`: last update id of a depth diff, or the book update id of a bookTicker.
    pub last: Val<'a>,
    /// `b`: bid levels of a depth diff, or the best bid price of a bookTicker.
    pub b: Val<'a>,
    /// `a`: ask levels of a depth diff, the best ask price of a bookTicker, or the
    /// aggregate trade id of an aggTrade.
    pub a: Val<'a>,
    /// `B`: best bid quantity of a bookTicker.
    pub big_b: Val<'a>,
    /// `A`: best ask quantity of a bookTicker.
    pub big_a: Val<'a>,
    /// `p`: trade price.
    pub p: Val<'a>,
    /// `q`: trade quantity.
    pub q: Val<'a>,
    /// `T`: trade time (ms).
    pub t: Val<'a>,
    /// `m`: whether the buyer was the maker.
    pub m: Val<'a>,
}

struct Scanner<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

const MAX_DEPTH: u32 = 32;

/// `0x01` in every byte of a word.
const LO: u64 = 0x0101_0101_0101_0101;
/// `0x80` in every byte of a word.
const HI: u64 = 0x8080_8080_8080_8080;

/// The bytes of `w` (little-endian) that end a plain string: `"`, `\` or a control character
/// (< 0x20), as the high bit of each such byte. The lowest flagged byte is exact (a borrow only
/// starts at a flagged byte, so it cannot flag a byte below it); bytes above it may be flagged
/// falsely, which [`string_stop`] never looks at.
#[inline(always)]
fn stops(w: u64) -> u64 {
    let q = w ^ (LO * u64::from(b'"'));
    let bs = w ^ (LO * u64::from(b'\\'));
    (q.wrapping_sub(LO) & !q | bs.wrapping_sub(LO) & !bs | w.wrapping_sub(LO * 0x20) & !w) & HI
}

/// The index of the first byte at or after `i` that is `"`, `\` or below 0x20, or `b.len()`:
/// eight bytes per step while eight remain, then byte by byte.
#[inline(always)]
fn string_stop(b: &[u8], mut i: usize) -> usize {
    while let Some(chunk) = b.get(i..i + 8) {
        let Ok(word) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let m = stops(u64::from_le_bytes(word));
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            return i;
        }
        i += 1;
    }
    b.len()
}

impl<'a> Scanner<'a> {
    #[inline(always)]
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            // Every JSON whitespace byte is <= b' ': one compare for the usual case.
            if c > b' ' || !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.i += 1;
        }
    }

    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline(always)]
    fn eat(&mut self, c: u8) -> Option<()> {
        // The usual case first: the byte is right there, no whitespace before it.
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            return Some(());
        }
        self.ws();
        if self.peek()? == c {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    /// A string without escapes or control characters.
    #[inline(always)]
    fn plain_string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        let end = string_stop(self.b, start);
        if self.b.get(end) != Some(&b'"') {
            return None;
        }
        self.i = end + 1;
        // Both ends are next to an ASCII quote: always char boundaries (`get` checks anyway).
        self.text.get(start..end)
    }

    /// Skip a string (escapes allowed, validated).
    fn skip_string(&mut self) -> Option<()> {
        self.eat(b'"')?;
        loop {
            self.i = string_stop(self.b, self.i);
            let c = *self.b.get(self.i)?;
            self.i += 1;
            match c {
                b'"' => return Some(()),
                b'\\' => {
                    let e = *self.b.get(self.i)?;
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            let hex = self.b.get(self.i..self.i + 4)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.i += 4;
                        }
                        _ => return None,
                    }
                }
                _ => return None, // a control character
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        self.i - start
    }

    /// Skip a JSON number.
    fn skip_number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    /// The rest of a plain string whose opening quote was read.
    #[inline(always)]
    fn rest_of_plain_string(&mut self) -> Option<&'a str> {
        let start = self.i;
        let end = string_stop(self.b, start);
        if self.b.get(end) != Some(&b'"') {
            return None;
        }
        self.i = end + 1;
        self.text.get(start..end)
    }

    /// An integer as [`Self::capture`] reads it into [`Val::Int`] (no leading zero, fits
    /// `u64`), not followed by a fraction or an exponent; `None` for anything else.
    #[inline(always)]
    fn plain_u64(&mut self) -> Option<u64> {
        let start = self.i;
        let mut v: u64 = 0;
        while let Some(&c) = self.b.get(self.i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            v = v.checked_mul(10)?.checked_add(u64::from(d))?;
            self.i += 1;
        }
        let n = self.i - start;
        if n == 0 || (n > 1 && self.b.get(start) == Some(&b'0')) {
            return None;
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        Some(v)
    }

    #[inline(always)]
    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + word.len())? == word {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }

    /// Skip any JSON value.
    fn skip_value(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' => {
                self.i += 1;
                self.ws();
                if self.peek()? == b'}' {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.ws();
                    self.skip_string()?;
                    self.eat(b':')?;
                    self.skip_value(depth + 1)?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.i += 1;
                self.ws();
                if self.peek()? == b']' {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.skip_value(depth + 1)?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.skip_number(),
            _ => None,
        }
    }

    /// A value we may capture: plain int, plain string, bool, or a pair array.
    fn capture(&mut self) -> Option<Val<'a>> {
        self.ws();
        let start = self.i;
        match self.peek()? {
            b'"' => {
                if let Some(s) = self.plain_string() {
                    return Some(Val::Str(s));
                }
                self.i = start;
                self.skip_string()?;
                Some(Val::Other)
            }
            b'0'..=b'9' => {
                let mut v: u64 = 0;
                let mut n = 0;
                let mut overflow = false;
                while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
                    match v
                        .checked_mul(10)
                        .and_then(|x| x.checked_add(u64::from(c - b'0')))
                    {
                        Some(x) => v = x,
                        None => overflow = true,
                    }
                    n += 1;
                    self.i += 1;
                }
                let leading_zero = n > 1 && self.b[start] == b'0';
                if leading_zero {
                    return None;
                }
                if overflow || matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
                    self.i = start;
                    self.skip_number()?;
                    return Some(Val::Other);
                }
                Some(Val::Int(v))
            }
            b't' => self.literal(b"true").map(|()| Val::Bool(true)),
            b'f' => self.literal(b"false").map(|()| Val::Bool(false)),
            b'[' => {
                if self.levels().is_some() {
                    return Some(Val::Levels(start, self.i));
                }
                self.i = start;
                self.skip_value(1)?;
                Some(Val::Other)
            }
            _ => {
                self.skip_value(1)?;
                Some(Val::Other)
            }
        }
    }

    /// `[["p","q"], ...]` of plain strings.
    fn levels(&mut self) -> Option<()> {
        self.eat(b'[')?;
        self.ws();
        if self.peek()? == b']' {
            self.i += 1;
            return Some(());
        }
        loop {
            self.eat(b'[')?;
            self.plain_string()?;
            self.eat(b',')?;
            self.plain_string()?;
            self.eat(b']')?;
            if self.peek()? > b' ' {
                // No whitespace: the usual case.
            } else {
                self.ws();
            }
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn data(&mut self, f: &mut Fields<'a>) -> Option<()> {
        self.eat(b'{')?;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            self.ws();
            let key = self.plain_string()?;
            self.eat(b':')?;
            let slot = match key {
                "E" => &mut f.e_time,
                "s" => &mut f.s,
                "U" => &mut f.first,
                "u" => &mut f.last,
                "b" => &mut f.b,
                "a" => &mut f.a,
                "B" => &mut f.big_b,
                "A" => &mut f.big_a,
                "p" => &mut f.p,
                "q" => &mut f.q,
                "T" => &mut f.t,
                "m" => &mut f.m,
                _ => {
                    self.skip_value(1)?;
                    self.ws();
                    match self.peek()? {
                        b',' => {
                            self.i += 1;
                            continue;
                        }
                        b'}' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            };
            *slot = self.capture()?;
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}

/// Scan a whole combined-stream message; `None` when the fast path does not apply.
pub fn message(text: &str) -> Option<Fields<'_>> {
    let mut s = Scanner {
        text,
        b: text.as_bytes(),
        i: 0,
    };
    let mut f = Fields::default();
    s.eat(b'{')?;
    s.ws();
    if s.peek()? == b'}' {
        return None;
    }
    loop {
        s.ws();
        let key = s.plain_string()?;
        s.eat(b':')?;
        match key {
            "stream" => {
                s.ws();
                f.stream = Some(s.plain_string()?);
            }
            "data" => {
                s.ws();
                if s.peek()? != b'{' {
                    return None;
                }
                // A repeated "data" key replaces the first one entirely.
                let stream = f.stream;
                f = Fields::default();
                f.stream = stream;
                s.data(&mut f)?;
                f.has_data = true;
            }
            _ => s.skip_value(1)?,
        }
        s.ws();
        match s.peek()? {
            b',' => s.i += 1,
            b'}' => {
                s.i += 1;
                break;
            }
            _ => return None,
        }
    }
    s.ws();
    if s.i != s.b.len() || !f.has_data {
        return None;
    }
    Some(f)
}

/// Call `f(price, qty)` for each pair of a levels array found by [`message`] (byte range
/// `start..end` of `text`); `f` returns false to stop early.
pub fn each_pair<'t>(
    text: &'t str,
    start: usize,
    end: usize,
    mut f: impl FnMut(&'t str, &'t str) -> bool,
) -> Option<()> {
    let mut s = Scanner {
        text: text.get(..end)?,
        b: text.as_bytes().get(..end)?,
        i: start,
    };
    s.eat(b'[')?;
    s.ws();
    if s.peek()? == b']' {
        return Some(());
    }
    loop {
        s.eat(b'[')?;
        let p = s.plain_string()?;
        s.eat(b',')?;
        let q = s.plain_string()?;
        s.eat(b']')?;
        if !f(p, q) {
            return Some(());
        }
        s.ws();
        match s.peek()? {
            b',' => s.i += 1,
            b']' => return Some(()),
            _ => return None,
        }
    }
}

impl Fields<'_> {
    /// Byte offsets of the `b` and `a` arrays when both are level arrays (a depth diff).
    pub fn level_offsets(&self) -> Option<(usize, usize)> {
        match (self.b, self.a) {
            (Val::Levels(b0, _), Val::Levels(a0, _)) => Some((b0, a0)),
            _ => None,
        }
    }
}

/// One combined-stream message sorted by its stream's kind (the part after the first `@`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// A `...@depth...` diff.
    Depth {
        /// `s`.
        symbol: &'a str,
        /// `E` (ms).
        event_time: u64,
        /// `U`, first update id.
        first: u64,
        /// `u`, last update id.
        last: u64,
        /// Byte offset of the `b` array in the text.
        bids_at: usize,
        /// Byte offset of the `a` array in the text.
        asks_at: usize,
    },
    /// An `...@aggTrade` message.
    AggTrade {
        /// `s`.
        symbol: &'a str,
        /// `a`, aggregate trade id.
        trade_id: u64,
        /// `p`, decimal text.
        price: &'a str,
        /// `q`, decimal text.
        qty: &'a str,
        /// `T` (ms).
        trade_time: u64,
        /// `m`, the buyer was the maker.
        buyer_maker: bool,
    },
    /// An `...@bookTicker` message.
    BookTicker {
        /// `s`.
        symbol: &'a str,
        /// `u`, book update id.
        update_id: u64,
        /// `b`, best bid price text.
        bid: &'a str,
        /// `B`, best bid quantity text.
        bid_qty: &'a str,
        /// `a`, best ask price text.
        ask: &'a str,
        /// `A`, best ask quantity text.
        ask_qty: &'a str,
    },
    /// Any other stream (kline, ...): only its name.
    Other {
        /// The `stream` string.
        stream: &'a str,
    },
}

/// Scan and sort one message; `None` when the fast path does not apply: not a message
/// [`message`] reads, no plain `stream`, or a depth / aggTrade / bookTicker stream whose
/// fields are missing or of another shape than the exchange sends.
pub fn binance(text: &str) -> Option<Message<'_>> {
    if let Some(m) = binance_depth_layout(text) {
        return Some(m);
    }
    binance_general(text)
}

/// A depth diff exactly as Binance writes it, read without the general key dispatch:
/// `{"stream":"<s>","data":{"e":"depthUpdate","E":<n>,"s":"<sym>","U":<n>,"u":<n>,"b":[..],"a":[..]}}`
/// with no whitespace, plain strings, integers without a leading zero and `<s>` of a depth
/// kind. `None` for anything else (the general scanner then decides), so it only ever returns
/// what [`binance_general`] returns for the same text (`layout_agrees_with_the_general_scanner`
/// below checks it on generated and edited messages).
fn binance_depth_layout(text: &str) -> Option<Message<'_>> {
    let mut s = Scanner {
        text,
        b: text.as_bytes(),
        i: 0,
    };
    s.literal(b"{\"stream\":\"")?;
    let stream = s.rest_of_plain_string()?;
    s.literal(b",\"data\":{\"e\":\"depthUpdate\",\"E\":")?;
    let event_time = s.plain_u64()?;
    s.literal(b",\"s\":\"")?;
    let symbol = s.rest_of_plain_string()?;
    s.literal(b",\"U\":")?;
    let first = s.plain_u64()?;
    s.literal(b",\"u\":")?;
    let last = s.plain_u64()?;
    s.literal(b",\"b\":[")?;
    let bids_at = s.i - 1;
    s.i = bids_at;
    s.levels()?;
    s.literal(b",\"a\":[")?;
    let asks_at = s.i - 1;
    s.i = asks_at;
    s.levels()?;
    s.literal(b"}}")?;
    let kind = match stream.bytes().position(|c| c == b'@') {
        Some(at) => stream.get(at + 1..)?,
        None => stream,
    };
    if s.i != s.b.len() || !kind.starts_with("depth") {
        return None;
    }
    Some(Message::Depth {
        symbol,
        event_time,
        first,
        last,
        bids_at,
        asks_at,
    })
}

/// [`binance`] by the general scanner ([`message`]) alone.
fn binance_general(text: &str) -> Option<Message<'_>> {
    use Val::{Bool, Int, Levels, Str};
    let f = message(text)?;
    let stream = f.stream?;
    let kind = stream.find('@').map_or(stream, |i| &stream[i + 1..]);
    if kind.starts_with("depth") {
        match (f.s, f.e_time, f.first, f.last, f.b, f.a) {
            (Str(symbol), Int(event_time), Int(first), Int(last), Levels(b0, _), Levels(a0, _)) => {
                Some(Message::Depth {
                    symbol,
                    event_time,
                    first,
                    last,
                    bids_at: b0,
                    asks_at: a0,
                })
            }
            _ => None,
        }
    } else if kind == "aggTrade" {
        match (f.s, f.a, f.p, f.q, f.t, f.m) {
            (Str(symbol), Int(trade_id), Str(price), Str(qty), Int(trade_time), Bool(m)) => {
                Some(Message::AggTrade {
                    symbol,
                    trade_id,
                    price,
                    qty,
                    trade_time,
                    buyer_maker: m,
                })
            }
            _ => None,
        }
    } else if kind == "bookTicker" {
        match (f.s, f.last, f.b, f.big_b, f.a, f.big_a) {
            (Str(symbol), Int(update_id), Str(bid), Str(bid_qty), Str(ask), Str(ask_qty)) => {
                Some(Message::BookTicker {
                    symbol,
                    update_id,
                    bid,
                    bid_qty,
                    ask,
                    ask_qty,
                })
            }
            _ => None,
        }
    } else {
        Some(Message::Other { stream })
    }
}

/// Why [`depth_levels`] read no levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DepthError<'a> {
    /// No `[["p","q"], ...]` array of plain strings starts at one of the offsets (not a depth
    /// message the fast path reads, or not its arrays' offsets).
    NotDepth,
    /// Level `index` of `side` (0-based, counted in the array as received) is bad.
    Level {
        /// `Buy` for the `b` array, `Sell` for `a`.
        side: Side,
        /// Position in its array.
        index: usize,
        /// What is wrong with it.
        error: LevelError<'a>,
    },
}

/// `"bids"` or `"asks"`: how messages name a side's array.
pub fn side_array_name(side: Side) -> &'static str {
    match side {
        Side::Buy => "bids",
        Side::Sell => "asks",
    }
}

impl fmt::Display for DepthError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DepthError::NotDepth => f.write_str(
                "not a depth message the fast path reads, or not the level arrays' offsets",
            ),
            DepthError::Level { side, index, error } => {
                write!(f, "{}[{index}] {error}", side_array_name(*side))
            }
        }
    }
}

impl std::error::Error for DepthError<'_> {}

/// `10^i` for `i` in `0..=19` (`10^19` is the largest power of ten in `u64`).
const POW10_U64: [u64; 20] = {
    let mut t = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// A [`Grid`] for the common case of [`depth_levels`]: plain decimals read in `u64`.
///
/// [`FastGrid::steps`] returns `Some(n)` only when [`Grid::steps`] returns `Ok(n)` for the same
/// bytes and `n` fits the caller's integer; everything else (syntax errors, values off the grid
/// or beyond `u64` at the grid's scale, grids finer than 19 places) is `None`, and the caller
/// asks the reference, [`level`], which also words the error. Checked against `Grid::steps` by
/// `fast_steps_agree_with_the_reference` (below) and, through [`depth_levels`], by the
/// `tests/scan.rs` properties and the `decimal_scan` fuzz target.
#[derive(Clone, Copy)]
struct FastGrid {
    /// Fraction digits of the grid (`Grid::digits`), at most 19; `u32::MAX`: no fast path.
    digits: u32,
    /// The grid step at that scale (`Grid::units`), when it fits `u64`.
    units: u64,
}

impl FastGrid {
    fn new(g: &Grid) -> FastGrid {
        match u64::try_from(g.units()) {
            Ok(units) if g.digits() < 20 => FastGrid {
                digits: g.digits(),
                units,
            },
            _ => FastGrid {
                digits: u32::MAX,
                units: 1,
            },
        }
    }

    /// `s` in grid steps, when certain (see the type's doc).
    #[inline(always)]
    fn steps(self, s: &str) -> Option<u64> {
        if self.digits == u32::MAX {
            return None;
        }
        // At most 19 bytes hold at most 19 digits, below 10^19 < 2^64: no overflow while
        // reading (longer texts take the reference).
        if s.len() > 19 {
            return None;
        }
        let mut bytes = s.as_bytes().iter();
        let mut v: u64 = 0;
        let mut seen_digit = false;
        let mut frac: u32 = 0;
        let mut dot = false;
        for &c in bytes.by_ref() {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                if c != b'.' {
                    return None;
                }
                dot = true;
                break;
            }
            v = v.wrapping_mul(10).wrapping_add(u64::from(d));
            seen_digit = true;
        }
        if dot {
            for &c in bytes {
                let d = c.wrapping_sub(b'0');
                if d > 9 {
                    return None;
                }
                seen_digit = true;
                if frac < self.digits {
                    v = v.wrapping_mul(10).wrapping_add(u64::from(d));
                    frac += 1;
                } else if d != 0 {
                    return None; // off the grid
                }
            }
        }
        if !seen_digit {
            return None;
        }
        let scaled = v.checked_mul(*POW10_U64.get((self.digits - frac) as usize)?)?;
        if self.units == 1 {
            Some(scaled)
        } else if scaled % self.units == 0 {
            Some(scaled / self.units)
        } else {
            None
        }
    }

    /// A price in ticks that fits `i64`, when certain.
    #[inline(always)]
    fn ticks(self, s: &str) -> Option<i64> {
        i64::try_from(self.steps(s)?).ok()
    }

    /// A quantity in lots, when certain.
    #[inline(always)]
    fn lots(self, s: &str) -> Option<u64> {
        self.steps(s)
    }
}

/// `s` as a whole number of steps of `grid` that fits `u64`, or `None` when it is not one (a
/// syntax error, off the grid, out of range): the same answer as [`Grid::steps`] (the u64 fast
/// reading first, [`Grid::steps`] when that is not certain).
pub fn steps_u64(grid: &Grid, s: &str) -> Option<u64> {
    FastGrid::new(grid)
        .steps(s)
        .or_else(|| u64::try_from(grid.steps(s.as_bytes()).ok()?).ok())
}

/// Read the level arrays that start at byte `bids_at` (bids) and `asks_at` (asks) of `text`
/// and append each level as `(side, ticks, lots)` to `out`, bids first, in array order.
///
/// Returns how many levels were left out as off the grid (only with `skip_off_grid`). Checks
/// the bids array, then the asks array, each level in order (see [`crate::decimal::level`]);
/// the first bad level is the error even if its array is malformed further on, and a
/// malformed array (or offset) is [`DepthError::NotDepth`] once its levels before the fault
/// were read. On an error `out` may hold some levels: the caller discards them.
pub fn depth_levels<'a>(
    text: &'a str,
    bids_at: usize,
    asks_at: usize,
    tick: &Grid,
    lot: &Grid,
    skip_off_grid: bool,
    out: &mut Vec<(Side, i64, u64)>,
) -> Result<usize, DepthError<'a>> {
    let mut skipped = 0usize;
    let (fast_tick, fast_lot) = (FastGrid::new(tick), FastGrid::new(lot));
    for (side, start) in [(Side::Buy, bids_at), (Side::Sell, asks_at)] {
        let mut index = 0usize;
        let mut err: Option<DepthError<'a>> = None;
        let walked = each_pair(text, start, text.len(), |p, q| {
            // The u64 reading when it is certain, else the reference (which words errors).
            let read = match (fast_tick.ticks(p), fast_lot.lots(q)) {
                (Some(price), Some(qty)) => Ok(Some((price, qty))),
                _ => level(tick, lot, p, q, skip_off_grid),
            };
            match read {
                Ok(Some((price, qty))) => out.push((side, price, qty)),
                Ok(None) => skipped += 1,
                Err(error) => {
                    err = Some(DepthError::Level { side, index, error });
                    return false;
                }
            }
            index += 1;
            true
        });
        if let Some(e) = err {
            return Err(e);
        }
        walked.ok_or(DepthError::NotDepth)?;
    }
    Ok(skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decimal::{Field, StepError};

    #[test]
    fn scan_depth_trade_ticker() {
        use Val::*;
        let t = r#"{"stream":"x@depth@100ms","data":{"e":"depthUpdate","E":5,"s":"XY","U":7,"u":9,"b":[["1.0","2"]],"a":[]}}"#;
        let f = message(t).unwrap();
        assert_eq!(f.stream, Some("x@depth@100ms"));
        assert_eq!(
            (f.s, f.e_time, f.first, f.last),
            (Str("XY"), Int(5), Int(7), Int(9))
        );
        let Levels(b0, b1) = f.b else { panic!() };
        let mut seen = vec![];
        each_pair(t, b0, b1, |p, q| {
            seen.push((p, q));
            true
        })
        .unwrap();
        assert_eq!(seen, vec![("1.0", "2")]);
        // Key order, whitespace, repeated keys (last wins), skipped values of every kind.
        let t = r#" { "data" : { "u" : 1 , "x": [1, -2.5e3, {"k": "\n\u00e9"}, null, true], "u": 3 } , "stream":"s@bookTicker" } "#;
        let f = message(t).unwrap();
        assert_eq!(f.last, Int(3));
        let t = r#"{"stream":"s@aggTrade","data":{"a":1,"p":"2","q":"3","T":4,"m":false}}"#;
        let f = message(t).unwrap();
        assert_eq!((f.a, f.m), (Int(1), Bool(false)));
        // Not for the fast path: the caller falls back to json.loads.
        for bad in [
            "",
            "{}",
            "[]",
            r#"{"stream":"s","data":{}"#,
            r#"{"stream":"s","data":{}} x"#,
            r#"{"stream":"s\u0040x","data":{}}"#,
            r#"{"stream":"s","data":[]}"#,
            r#"{"stream":"s","data":{"u":01}}"#,
            r#"{"stream":"s","data":{"u":NaN}}"#,
            r#"{"stream":"s","data":{"u":1,}}"#,
            r#"{"stream":"s","data":{"x":"\q"}}"#,
            r#"{"stream":"s","data":{"x":"a
b"}}"#,
        ] {
            assert!(message(bad).is_none(), "{bad}");
        }
        // Captured as Other (not an Int / not pairs): the Python side then falls back.
        let t = r#"{"stream":"s","data":{"u":1.0,"U":-1,"E":99999999999999999999,"b":[["1"]]}}"#;
        let f = message(t).unwrap();
        assert_eq!(
            (f.last, f.first, f.e_time, f.b),
            (Other, Other, Other, Other)
        );
        let deep = format!(
            r#"{{"stream":"s","data":{{"x":{}{}}}}}"#,
            "[".repeat(40),
            "]".repeat(40)
        );
        assert!(message(&deep).is_none());
    }

    const DEPTH: &str = r#"{"stream":"xyusdt@depth@100ms","data":{"e":"depthUpdate","E":5,"s":"XY","U":7,"u":9,"b":[["1.00","2"],["0.99","0"]],"a":[["1.01","3.5"]]}}"#;

    #[test]
    fn binance_sorts_each_kind() {
        let Some(Message::Depth {
            symbol,
            event_time,
            first,
            last,
            bids_at,
            asks_at,
        }) = binance(DEPTH)
        else {
            panic!("not depth")
        };
        assert_eq!((symbol, event_time, first, last), ("XY", 5, 7, 9));
        assert!(DEPTH[bids_at..].starts_with(r#"[["1.00""#));
        assert!(DEPTH[asks_at..].starts_with(r#"[["1.01""#));
        assert_eq!(
            message(DEPTH).unwrap().level_offsets(),
            Some((bids_at, asks_at))
        );
        let t = r#"{"stream":"xyusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"XY","a":12,"p":"1.5","q":"2","f":1,"l":2,"T":99,"m":true,"M":true}}"#;
        assert_eq!(
            binance(t),
            Some(Message::AggTrade {
                symbol: "XY",
                trade_id: 12,
                price: "1.5",
                qty: "2",
                trade_time: 99,
                buyer_maker: true
            })
        );
        let t = r#"{"stream":"xyusdt@bookTicker","data":{"u":3,"s":"XY","b":"1","B":"2","a":"3","A":"4"}}"#;
        assert_eq!(
            binance(t),
            Some(Message::BookTicker {
                symbol: "XY",
                update_id: 3,
                bid: "1",
                bid_qty: "2",
                ask: "3",
                ask_qty: "4"
            })
        );
        // Another stream: only its name; a stream without '@' is its own kind.
        let t = r#"{"stream":"xyusdt@kline_1m","data":{"k":{}}}"#;
        assert_eq!(
            binance(t),
            Some(Message::Other {
                stream: "xyusdt@kline_1m"
            })
        );
        let t = r#"{"stream":"depth","data":{}}"#;
        assert_eq!(binance(t), None, "a depth kind without its fields");
        // Missing stream, or a known kind with a field of another shape: no fast path.
        assert_eq!(binance(r#"{"data":{"u":1}}"#), None);
        let t = r#"{"stream":"x@aggTrade","data":{"s":"XY","a":1,"p":1.5,"q":"2","T":9,"m":true}}"#;
        assert_eq!(binance(t), None);
        let t =
            r#"{"stream":"x@bookTicker","data":{"u":-3,"s":"XY","b":"1","B":"2","a":"3","A":"4"}}"#;
        assert_eq!(binance(t), None);
        let t = r#"{"stream":"x@depth","data":{"s":"XY","E":1,"U":1,"u":2,"b":[["1","2","3"]],"a":[]}}"#;
        assert_eq!(binance(t), None);
    }

    /// The plain byte loop `string_stop` must agree with.
    fn naive_stop(b: &[u8], i: usize) -> usize {
        (i..b.len())
            .find(|&j| b[j] == b'"' || b[j] == b'\\' || b[j] < 0x20)
            .unwrap_or(b.len())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(
            if cfg!(debug_assertions) { 500 } else { 5_000 }
        ))]

        /// The word-at-a-time stop search finds the same byte as the byte loop, from any
        /// start, on bytes biased towards the ones that matter (quotes, backslashes, control
        /// characters, bytes next to them in value, and non-ASCII).
        #[test]
        fn string_stop_agrees_with_the_byte_loop(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::prelude::Just(b'"'), proptest::prelude::Just(b'\\'),
                    proptest::prelude::Just(b'a'), proptest::prelude::Just(0x1f_u8),
                    proptest::prelude::Just(0x20_u8), proptest::prelude::Just(0x21_u8),
                    proptest::prelude::Just(0x5b_u8), proptest::prelude::Just(0x5d_u8),
                    proptest::prelude::Just(0x80_u8), proptest::prelude::Just(0xa2_u8),
                    proptest::prelude::Just(0xdc_u8), proptest::prelude::Just(0xff_u8),
                    0u8..=255,
                ],
                0..40,
            ),
            start in 0usize..41,
        ) {
            let start = start.min(bytes.len());
            proptest::prop_assert_eq!(string_stop(&bytes, start), naive_stop(&bytes, start));
        }

        /// `FastGrid::steps` says `Some(n)` only where `Grid::steps` says `Ok(n)`, and it says
        /// it for every plain decimal that fits `u64` at the grid's scale.
        #[test]
        fn fast_steps_agree_with_the_reference(
            int_part in "[0-9]{0,21}",
            frac in proptest::option::of("[0-9]{0,22}"),
            junk in proptest::option::of((0usize..30, proptest::prelude::any::<char>())),
            grid in proptest::sample::select(vec![
                "0.00000001", "0.0001", "0.5", "1", "10", "0.25", "0.00000100", "1000",
                "0.0000000000000000001", "0.00000000000000000001", "18446744073709551616",
                "0.000000000000000000000000000001", "0.3",
            ]),
        ) {
            let mut s = int_part.clone();
            if let Some(f) = &frac {
                s.push('.');
                s.push_str(f);
            }
            if let Some((at, c)) = junk {
                let at = (0..=s.len()).rev().find(|&i| i <= at && s.is_char_boundary(i));
                s.insert(at.unwrap_or(0), c);
            }
            let g = Grid::parse(grid).unwrap();
            let fast = FastGrid::new(&g).steps(&s);
            let want = g.steps(s.as_bytes());
            match fast {
                Some(n) => proptest::prop_assert_eq!(want, Ok(u128::from(n)), "{}", s),
                None => proptest::prop_assert!(
                    want.map_or(true, |n| u64::try_from(n).is_err()
                        || g.digits() >= 20 || u64::try_from(g.units()).is_err()
                        || n.checked_mul(g.units()).is_none_or(|x| x > u128::from(u64::MAX))
                        || s.len() > 19),
                    "{} read by the reference as {:?} but not by the fast path", s, want
                ),
            }
        }
    }

    #[test]
    fn fast_steps_examples() {
        let g = Grid::parse("0.00000100").unwrap();
        let f = FastGrid::new(&g);
        assert_eq!(f.steps("0.34033000"), Some(340_330));
        assert_eq!(
            f.steps("0.340330001"),
            None,
            "off the grid: the reference words it"
        );
        assert_eq!(
            f.steps("0.34033000000"),
            Some(340_330),
            "zeros beyond the scale"
        );
        assert_eq!(f.steps("1."), Some(1_000_000));
        assert_eq!(f.steps(".5"), Some(500_000));
        for bad in ["", ".", "1.2.3", "-1", "1e5", " 1", "1_0", "\\u0031"] {
            assert_eq!(f.steps(bad), None, "{bad:?}");
        }
        assert_eq!(
            f.ticks("99999999999999.999999"),
            None,
            "beyond u64 at scale 6"
        );
        let g = Grid::parse("0.25").unwrap();
        assert_eq!(FastGrid::new(&g).steps("1.75"), Some(7));
        assert_eq!(FastGrid::new(&g).steps("1.70"), None);
        let f = FastGrid::new(&Grid::parse("1").unwrap());
        assert_eq!(f.steps("1844674407370955161"), Some(u64::MAX / 10));
        assert_eq!(
            f.steps("18446744073709551615"),
            None,
            "20 bytes: the reference reads it"
        );
        assert_eq!(
            f.ticks("9223372036854775808"),
            None,
            "beyond i64: PriceBeyond"
        );
        assert_eq!(f.lots("9223372036854775808"), Some(1 << 63));
    }

    /// Depth diffs in Binance's own layout, and a few near it.
    const LAYOUTS: [&str; 4] = [
        r#"{"stream":"ftmusdt@depth@100ms","data":{"e":"depthUpdate","E":1628952395868,"s":"FTMUSDT","U":800360969,"u":800360970,"b":[],"a":[["0.34033000","8066.00000000"],["0.34035000","0.00000000"]]}}"#,
        r#"{"stream":"x@depth","data":{"e":"depthUpdate","E":0,"s":"X","U":1,"u":18446744073709551615,"b":[["1","2"]],"a":[]}}"#,
        r#"{"stream":"x@aggTrade","data":{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[],"a":[]}}"#,
        r#"{"stream":"depth","data":{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1","2"],["3","4"]],"a":[["5","6"]]}}"#,
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(
            if cfg!(debug_assertions) { 1_000 } else { 10_000 }
        ))]

        /// Whatever the layout reader says about a text, the general scanner says too: on
        /// Binance's layout with up to three edits (a byte inserted, deleted or replaced, from
        /// bytes that matter to JSON).
        #[test]
        fn layout_agrees_with_the_general_scanner(
            which in 0usize..LAYOUTS.len(),
            edits in proptest::collection::vec(
                (0usize..3, 0usize..400, proptest::sample::select(
                    b" \t\n\"\\[]{},:0123456789.-eE@xu".to_vec()
                )),
                0..4,
            ),
        ) {
            let mut t = LAYOUTS[which].as_bytes().to_vec();
            for (how, at, c) in edits {
                let at = at % (t.len() + 1);
                match how {
                    0 => t.insert(at, c),
                    1 if at < t.len() => {
                        t.remove(at);
                    }
                    _ if at < t.len() => t[at] = c,
                    _ => {}
                }
            }
            let Ok(text) = std::str::from_utf8(&t) else { return Ok(()) };
            if let Some(m) = binance_depth_layout(text) {
                proptest::prop_assert_eq!(Some(m), binance_general(text), "{}", text);
            }
        }
    }

    /// Every single edit of every layout (each byte that matters to JSON inserted before, or
    /// put in place of, each byte; each byte deleted): the layout reader agrees with the
    /// general scanner whenever it reads the text.
    #[test]
    fn layout_agrees_after_any_single_edit() {
        let alphabet = b" \t\n\"\\[]{},:0123456789.-eE@xu";
        let mut read = 0;
        for t in LAYOUTS {
            let t = t.as_bytes();
            for at in 0..=t.len() {
                let mut variants = vec![];
                for &c in alphabet {
                    let mut v = t.to_vec();
                    v.insert(at, c);
                    variants.push(v);
                    if at < t.len() {
                        let mut v = t.to_vec();
                        v[at] = c;
                        variants.push(v);
                    }
                }
                if at < t.len() {
                    let mut v = t.to_vec();
                    v.remove(at);
                    variants.push(v);
                }
                for v in variants {
                    let text = std::str::from_utf8(&v).unwrap();
                    if let Some(m) = binance_depth_layout(text) {
                        assert_eq!(Some(m), binance_general(text), "{text}");
                        read += 1;
                    }
                }
            }
        }
        assert!(read > 1_000, "{read}");
    }

    #[test]
    fn layout_reads_binance_depth_diffs() {
        for t in LAYOUTS {
            assert_eq!(binance_depth_layout(t), binance_general(t), "{t}");
        }
        assert!(binance_depth_layout(LAYOUTS[0]).is_some());
        assert!(binance_depth_layout(LAYOUTS[1]).is_some());
        assert!(
            binance_depth_layout(LAYOUTS[2]).is_none(),
            "not a depth stream"
        );
        assert!(
            binance_depth_layout(LAYOUTS[3]).is_some(),
            "a stream without '@'"
        );
        // Near misses go to the general scanner, which reads them the same way.
        for t in [
            LAYOUTS[0].replace("\"b\":[]", "\"b\": []"),
            LAYOUTS[0].replace("\"E\":1628952395868", "\"E\":01628952395868"),
            LAYOUTS[0].replace("\"E\":1628952395868", "\"E\":1628952395868.0"),
            LAYOUTS[0].replace("}}", "} }"),
            LAYOUTS[0].replace("FTMUSDT", "FTM\\u0055SDT"),
            LAYOUTS[1].replace("18446744073709551615", "18446744073709551616"),
        ] {
            assert_eq!(binance_depth_layout(&t), None, "{t}");
        }
        let t = LAYOUTS[0].replace("\"b\":[]", "\"b\": []");
        let Some(Message::Depth { bids_at, .. }) = binance_general(&t) else {
            panic!("{t}")
        };
        assert_eq!(t.as_bytes()[bids_at], b'[');
    }

    fn grids() -> (Grid, Grid) {
        (Grid::parse("0.01").unwrap(), Grid::parse("0.5").unwrap())
    }

    #[test]
    fn depth_levels_reads_both_arrays() {
        let (tick, lot) = grids();
        let (b0, a0) = message(DEPTH).unwrap().level_offsets().unwrap();
        let mut out = Vec::new();
        assert_eq!(
            depth_levels(DEPTH, b0, a0, &tick, &lot, false, &mut out),
            Ok(0)
        );
        assert_eq!(
            out,
            vec![
                (Side::Buy, 100, 4),
                (Side::Buy, 99, 0),
                (Side::Sell, 101, 7)
            ]
        );
        // Appends: a second read doubles the buffer.
        out.truncate(1);
        assert_eq!(
            depth_levels(DEPTH, b0, a0, &tick, &lot, false, &mut out),
            Ok(0)
        );
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn depth_levels_errors() {
        let (tick, lot) = grids();
        let mut out = Vec::new();
        let t = r#"{"b":[["1.00","2"],["1.005","1"],["x","1"]],"a":[["1","0.25"]]}"#;
        let (b0, a0) = (t.find("[[").unwrap(), t.rfind("[[").unwrap());
        // Off the grid: an error naming the level, or skipped and counted.
        let e = depth_levels(t, b0, a0, &tick, &lot, false, &mut out).unwrap_err();
        assert_eq!(
            e,
            DepthError::Level {
                side: Side::Buy,
                index: 1,
                error: LevelError::Value {
                    field: Field::Price,
                    value: "1.005",
                    error: StepError::OffGrid
                }
            }
        );
        assert_eq!(e.to_string(), "bids[1] price \"1.005\" is off the grid");
        // Skipping goes on to the syntax error at index 2 (syntax is never skipped).
        out.clear();
        let e = depth_levels(t, b0, a0, &tick, &lot, true, &mut out).unwrap_err();
        assert_eq!(
            e.to_string(),
            "bids[2] price \"x\" is not a plain decimal number"
        );
        // Asks are read after bids; an off-grid ask qty is skipped and counted.
        let t = r#"[["1","1"]] [["2","0.25"],["3","1"]]"#;
        out.clear();
        assert_eq!(depth_levels(t, 0, 12, &tick, &lot, true, &mut out), Ok(1));
        assert_eq!(out, vec![(Side::Buy, 100, 2), (Side::Sell, 300, 2)]);
        let e = depth_levels(t, 0, 12, &tick, &lot, false, &mut out).unwrap_err();
        assert_eq!(e.to_string(), "asks[0] qty \"0.25\" is off the grid");
        // Range errors of the integer types.
        let one = Grid::parse("1").unwrap();
        let t = r#"[["9223372036854775808","1"]] []"#;
        let e = depth_levels(t, 0, t.len() - 2, &one, &one, false, &mut out).unwrap_err();
        assert_eq!(e.to_string(), "bids[0] price is beyond 2**63 - 1 ticks");
        let t = r#"[] [["1","18446744073709551616"]]"#;
        let e = depth_levels(t, 0, 3, &one, &one, false, &mut out).unwrap_err();
        assert_eq!(e.to_string(), "asks[0] qty is beyond 2**64 - 1 lots");
        let t = r#"[] [["1","99999999999999999999999999999999999999999"]]"#;
        let e = depth_levels(t, 0, 3, &one, &one, false, &mut out).unwrap_err();
        assert!(
            e.to_string().ends_with("is out of range for the book"),
            "{e}"
        );
        // The first bad level wins over a malformed tail of its array ...
        let t = r#"[["x","1"],oops"#;
        let e = depth_levels(t, 0, 0, &one, &one, false, &mut out).unwrap_err();
        assert!(matches!(e, DepthError::Level { index: 0, .. }));
        // ... and a malformed array, a bad offset or a bids array that does not end are
        // NotDepth.
        for (t, b, a) in [
            (r#"[["1","1"],oops"#, 0, 0),
            (r#"[["1","1"]] []"#, 1, 12),
            (r#"[["1","1"]] []"#, 0, 99),
            (r#"[["1","1"]] []"#, usize::MAX, 12),
            ("", 0, 0),
            (r#"[["1",1]] []"#, 0, 10),
            (r#"[["1","1"]"#, 0, 0),
            ("[[\"\u{e9}\",\"1\"]] []", 3, 13),
        ] {
            let e = depth_levels(t, b, a, &one, &one, false, &mut out).unwrap_err();
            assert_eq!(e, DepthError::NotDepth, "{t:?} {b} {a}");
            assert_eq!(
                e.to_string(),
                "not a depth message the fast path reads, or not the level arrays' offsets"
            );
        }
    }
}
