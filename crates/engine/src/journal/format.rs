//! `journal::format`: the on-disk byte layouts of segments, records and snapshots
//! (`docs/journal.md` is the normative text; this file and that one must agree).
//!
//! Owns the constants, the file-name rules and the pure encode/decode functions. Nothing here
//! does I/O or allocates except the file-name formatting helpers (used at rotation only).
//!
//! Invariants: every decoder takes an arbitrary byte slice and returns `None`/an error value
//! for anything it does not recognise; none of them can panic (all slicing goes through
//! `get`). All integers are little-endian.
//!
//! Cost: decoding a record header is three unaligned loads and one CRC32 (`crc32fast`,
//! hardware accelerated) over `len + 12` bytes.

use std::path::{Path, PathBuf};

/// First 8 bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"TCJRNL\r\n";
/// Segment format version written by this code; the only one it reads.
pub const SEGMENT_VERSION: u32 = 1;
/// Size of the segment file header; the first record starts at this offset.
pub const SEGMENT_HEADER_LEN: usize = 64;
/// Offset of the header CRC inside the segment header (it covers bytes `0..60`).
const SEGMENT_HEADER_CRC_AT: usize = 60;
/// Size of a record header: `crc u32, len u32, seq u64`.
pub const RECORD_HEADER_LEN: usize = 16;
/// Records start at multiples of this (relative to the file start).
pub const RECORD_ALIGN: usize = 8;
/// Smallest segment size accepted (one page).
pub const MIN_SEGMENT_SIZE: u64 = 4096;
/// Largest segment size accepted (1 GiB; keeps every offset far inside `u32`/`usize`).
pub const MAX_SEGMENT_SIZE: u64 = 1 << 30;
/// File-name suffix of segments.
pub const SEGMENT_SUFFIX: &str = ".wal";
/// Suffix of a segment being created (removed at the next open if a crash left one).
pub const SEGMENT_TMP_SUFFIX: &str = ".wal.tmp";

/// First 8 bytes of every snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"TCSNAP\r\n";
/// Snapshot format version written by this code; the only one it reads.
pub const SNAPSHOT_VERSION: u32 = 1;
/// Size of the snapshot header; the body follows it.
pub const SNAPSHOT_HEADER_LEN: usize = 40;
/// Offset of the snapshot header CRC (it covers bytes `0..36`).
const SNAPSHOT_HEADER_CRC_AT: usize = 36;
/// File-name prefix of snapshots.
pub const SNAPSHOT_PREFIX: &str = "snapshot-";
/// File-name suffix of snapshots.
pub const SNAPSHOT_SUFFIX: &str = ".snap";
/// Suffix of a snapshot being written.
pub const SNAPSHOT_TMP_SUFFIX: &str = ".snap.tmp";

/// Number of decimal digits of the sequence number in file names.
const NAME_DIGITS: usize = 20;

pub(crate) fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

pub(crate) fn u64_at(buf: &[u8], at: usize) -> Option<u64> {
    let bytes = buf.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// Rounds a record's size up to [`RECORD_ALIGN`].
#[inline]
pub const fn padded_record_len(payload_len: usize) -> usize {
    (RECORD_HEADER_LEN + payload_len + (RECORD_ALIGN - 1)) & !(RECORD_ALIGN - 1)
}

/// Largest payload a segment of `segment_size` bytes can hold in one record.
pub const fn max_payload(segment_size: u64) -> usize {
    // segment_size is validated to [MIN_SEGMENT_SIZE, MAX_SEGMENT_SIZE] and a multiple of 8.
    let room = segment_size as usize - SEGMENT_HEADER_LEN - RECORD_HEADER_LEN;
    // The payload of the largest record must also fit in u32 (always true under 1 GiB).
    room
}

/// The decoded, validated header of a segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Sequence number of the first record of the segment.
    pub first_seq: u64,
    /// The file's size in bytes, fixed at creation.
    pub segment_size: u64,
}

/// Why a segment header was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderProblem {
    /// Fewer than [`SEGMENT_HEADER_LEN`] bytes.
    TooShort,
    /// The first 8 bytes are not [`SEGMENT_MAGIC`].
    BadMagic,
    /// A version this code does not read.
    UnsupportedVersion(u32),
    /// The header CRC does not match.
    BadCrc,
    /// The header's own length field is not 64.
    BadHeaderLen(u32),
    /// The segment size is out of range or not a multiple of 8.
    BadSegmentSize(u64),
    /// `first_seq` differs from the sequence number in the file name.
    NameMismatch {
        /// From the file name.
        name: u64,
        /// From the header.
        header: u64,
    },
}

impl std::fmt::Display for HeaderProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooShort => write!(f, "shorter than the {SEGMENT_HEADER_LEN}-byte header"),
            Self::BadMagic => write!(f, "bad magic"),
            Self::UnsupportedVersion(v) => write!(f, "unsupported version {v}"),
            Self::BadCrc => write!(f, "header CRC mismatch"),
            Self::BadHeaderLen(n) => write!(f, "header length field {n} (expected 64)"),
            Self::BadSegmentSize(n) => write!(f, "segment size {n} out of range"),
            Self::NameMismatch { name, header } => {
                write!(f, "file name says first seq {name}, header says {header}")
            }
        }
    }
}

/// Checks a segment size: in `[MIN_SEGMENT_SIZE, MAX_SEGMENT_SIZE]` and a multiple of 8.
pub const fn segment_size_ok(size: u64) -> bool {
    size >= MIN_SEGMENT_SIZE && size <= MAX_SEGMENT_SIZE && size % RECORD_ALIGN as u64 == 0
}

/// Encodes a segment header.
pub fn encode_segment_header(first_seq: u64, segment_size: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[0..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&(SEGMENT_HEADER_LEN as u32).to_le_bytes());
    h[16..24].copy_from_slice(&first_seq.to_le_bytes());
    h[24..32].copy_from_slice(&segment_size.to_le_bytes());
    let crc = crc32fast::hash(&h[..SEGMENT_HEADER_CRC_AT]);
    h[SEGMENT_HEADER_CRC_AT..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Decodes and validates a segment header from the start of `buf`; `name_seq` is the
/// sequence number parsed from the file name.
pub fn decode_segment_header(buf: &[u8], name_seq: u64) -> Result<SegmentHeader, HeaderProblem> {
    let h = buf
        .get(..SEGMENT_HEADER_LEN)
        .ok_or(HeaderProblem::TooShort)?;
    if h.get(0..8) != Some(&SEGMENT_MAGIC[..]) {
        return Err(HeaderProblem::BadMagic);
    }
    let stored_crc = u32_at(h, SEGMENT_HEADER_CRC_AT).ok_or(HeaderProblem::TooShort)?;
    let crc = crc32fast::hash(
        h.get(..SEGMENT_HEADER_CRC_AT)
            .ok_or(HeaderProblem::TooShort)?,
    );
    if stored_crc != crc {
        return Err(HeaderProblem::BadCrc);
    }
    let version = u32_at(h, 8).ok_or(HeaderProblem::TooShort)?;
    if version != SEGMENT_VERSION {
        return Err(HeaderProblem::UnsupportedVersion(version));
    }
    let header_len = u32_at(h, 12).ok_or(HeaderProblem::TooShort)?;
    if header_len as usize != SEGMENT_HEADER_LEN {
        return Err(HeaderProblem::BadHeaderLen(header_len));
    }
    let first_seq = u64_at(h, 16).ok_or(HeaderProblem::TooShort)?;
    let segment_size = u64_at(h, 24).ok_or(HeaderProblem::TooShort)?;
    if !segment_size_ok(segment_size) {
        return Err(HeaderProblem::BadSegmentSize(segment_size));
    }
    if first_seq != name_seq {
        return Err(HeaderProblem::NameMismatch {
            name: name_seq,
            header: first_seq,
        });
    }
    Ok(SegmentHeader {
        first_seq,
        segment_size,
    })
}

/// What lies at one record offset of a segment region.
#[derive(Debug, PartialEq, Eq)]
pub enum RecordAt<'a> {
    /// A record whose CRC verifies (the caller still checks the sequence number).
    Valid {
        /// Its sequence number.
        seq: u64,
        /// Its payload, borrowed from the region.
        payload: &'a [u8],
        /// Offset of the next record: this one's offset plus its padded length (which can
        /// exceed the region by up to 7 bytes when the file was truncated in the padding).
        next: usize,
    },
    /// `len == 0`, or fewer than 16 bytes left: the end of the written data, provided the
    /// rest of the region is zero (the caller checks).
    End,
    /// The length runs past the end of the region.
    Overrun {
        /// The stored payload length.
        len: u32,
    },
    /// The CRC does not match.
    BadCrc {
        /// The CRC stored in the header.
        stored: u32,
        /// The CRC computed over the bytes.
        computed: u32,
    },
}

/// Decodes the record at `off` in `region` (a whole segment file, header included).
#[inline]
pub fn record_at(region: &[u8], off: usize) -> RecordAt<'_> {
    let Some(rest) = region.get(off..) else {
        return RecordAt::End;
    };
    let (Some(stored), Some(len)) = (u32_at(rest, 0), u32_at(rest, 4)) else {
        return RecordAt::End;
    };
    if rest.len() < RECORD_HEADER_LEN || len == 0 {
        return RecordAt::End;
    }
    let body_end = RECORD_HEADER_LEN as u64 + u64::from(len);
    let Some(covered) = rest
        .get(4..body_end as usize)
        .filter(|_| body_end <= rest.len() as u64)
    else {
        return RecordAt::Overrun { len };
    };
    let computed = crc32fast::hash(covered);
    if computed != stored {
        return RecordAt::BadCrc { stored, computed };
    }
    let (Some(seq), Some(payload)) = (
        u64_at(rest, 8),
        rest.get(RECORD_HEADER_LEN..body_end as usize),
    ) else {
        return RecordAt::Overrun { len };
    };
    // Not capped at the region's end: in a file truncated inside the padding the next record
    // still starts at the padded offset (where appends must resume, 8-byte aligned).
    let next = off.saturating_add(padded_record_len(len as usize));
    RecordAt::Valid { seq, payload, next }
}

/// CRC of a record as stored at offset 0 of its header: over `len`, `seq` and the payload.
#[inline]
pub fn record_crc(len: u32, seq_and_payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(seq_and_payload);
    h.finalize()
}

/// `true` if every byte of `buf` is zero (word at a time).
pub fn all_zero(buf: &[u8]) -> bool {
    let mut words = buf.chunks_exact(8);
    let words_zero = words
        .by_ref()
        .all(|w| u64::from_ne_bytes(w.try_into().unwrap_or([1; 8])) == 0);
    words_zero && words.remainder().iter().all(|&b| b == 0)
}

/// One past the last non-zero byte of `buf` (0 if it is all zero).
pub fn nonzero_end(buf: &[u8]) -> usize {
    let tail = buf.len() % 8;
    if let Some(p) = buf[buf.len() - tail..].iter().rposition(|&b| b != 0) {
        return buf.len() - tail + p + 1;
    }
    let body = &buf[..buf.len() - tail];
    match body
        .chunks_exact(8)
        .rposition(|w| u64::from_ne_bytes(w.try_into().unwrap_or([1; 8])) != 0)
    {
        None => 0,
        Some(i) => {
            let w = &body[i * 8..i * 8 + 8];
            i * 8 + w.iter().rposition(|&b| b != 0).map_or(8, |p| p + 1)
        }
    }
}

/// File name of the segment whose first record is `first_seq`.
pub fn segment_file_name(first_seq: u64) -> String {
    format!("{first_seq:0width$}{SEGMENT_SUFFIX}", width = NAME_DIGITS)
}

/// Path of the segment whose first record is `first_seq`.
pub fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(segment_file_name(first_seq))
}

/// Parses `<20 digits>.wal`; anything else is not a segment.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    parse_seq_name(name, "", SEGMENT_SUFFIX)
}

/// File name of the snapshot covering commands up to and including `seq`.
pub fn snapshot_file_name(seq: u64) -> String {
    format!(
        "{SNAPSHOT_PREFIX}{seq:0width$}{SNAPSHOT_SUFFIX}",
        width = NAME_DIGITS
    )
}

/// Parses `snapshot-<20 digits>.snap`; anything else is not a snapshot.
pub fn parse_snapshot_name(name: &str) -> Option<u64> {
    parse_seq_name(name, SNAPSHOT_PREFIX, SNAPSHOT_SUFFIX)
}

fn parse_seq_name(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Encodes a snapshot header for a body of `body` bytes covering commands up to `seq`.
pub fn encode_snapshot_header(seq: u64, body: &[u8]) -> [u8; SNAPSHOT_HEADER_LEN] {
    let mut h = [0u8; SNAPSHOT_HEADER_LEN];
    h[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
    h[8..12].copy_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    // 12..16 reserved, zero.
    h[16..24].copy_from_slice(&seq.to_le_bytes());
    h[24..32].copy_from_slice(&(body.len() as u64).to_le_bytes());
    h[32..36].copy_from_slice(&crc32fast::hash(body).to_le_bytes());
    let crc = crc32fast::hash(&h[..SNAPSHOT_HEADER_CRC_AT]);
    h[SNAPSHOT_HEADER_CRC_AT..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Why a snapshot file was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotProblem {
    /// Fewer than [`SNAPSHOT_HEADER_LEN`] bytes.
    TooShort {
        /// The file's length.
        len: u64,
    },
    /// The first 8 bytes are not [`SNAPSHOT_MAGIC`].
    BadMagic,
    /// The header CRC does not match.
    BadHeaderCrc,
    /// A version this code does not read.
    UnsupportedVersion(u32),
    /// The header's sequence number differs from the file name's.
    NameMismatch {
        /// From the file name.
        name: u64,
        /// From the header.
        header: u64,
    },
    /// The body is not as long as the header says.
    LengthMismatch {
        /// From the header.
        header: u64,
        /// Bytes actually present after the header.
        actual: u64,
    },
    /// The body CRC does not match.
    BadBodyCrc,
}

impl std::fmt::Display for SnapshotProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooShort { len } => write!(f, "{len} bytes, shorter than the header"),
            Self::BadMagic => write!(f, "bad magic"),
            Self::BadHeaderCrc => write!(f, "header CRC mismatch"),
            Self::UnsupportedVersion(v) => write!(f, "unsupported version {v}"),
            Self::NameMismatch { name, header } => {
                write!(f, "file name says seq {name}, header says {header}")
            }
            Self::LengthMismatch { header, actual } => {
                write!(f, "header says {header} body bytes, file has {actual}")
            }
            Self::BadBodyCrc => write!(f, "body CRC mismatch"),
        }
    }
}

/// Validates a whole snapshot file; returns the body range on success.
pub fn decode_snapshot(file: &[u8], name_seq: u64) -> Result<(u64, &[u8]), SnapshotProblem> {
    let too_short = SnapshotProblem::TooShort {
        len: file.len() as u64,
    };
    let h = file.get(..SNAPSHOT_HEADER_LEN).ok_or(too_short)?;
    if h.get(0..8) != Some(&SNAPSHOT_MAGIC[..]) {
        return Err(SnapshotProblem::BadMagic);
    }
    let stored = u32_at(h, SNAPSHOT_HEADER_CRC_AT).ok_or(too_short)?;
    if crc32fast::hash(h.get(..SNAPSHOT_HEADER_CRC_AT).ok_or(too_short)?) != stored {
        return Err(SnapshotProblem::BadHeaderCrc);
    }
    let version = u32_at(h, 8).ok_or(too_short)?;
    if version != SNAPSHOT_VERSION {
        return Err(SnapshotProblem::UnsupportedVersion(version));
    }
    let seq = u64_at(h, 16).ok_or(too_short)?;
    if seq != name_seq {
        return Err(SnapshotProblem::NameMismatch {
            name: name_seq,
            header: seq,
        });
    }
    let body_len = u64_at(h, 24).ok_or(too_short)?;
    let body = file.get(SNAPSHOT_HEADER_LEN..).ok_or(too_short)?;
    if body.len() as u64 != body_len {
        return Err(SnapshotProblem::LengthMismatch {
            header: body_len,
            actual: body.len() as u64,
        });
    }
    let body_crc = u32_at(h, 32).ok_or(too_short)?;
    if crc32fast::hash(body) != body_crc {
        return Err(SnapshotProblem::BadBodyCrc);
    }
    Ok((seq, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_reject_lookalikes() {
        assert_eq!(segment_file_name(1), "00000000000000000001.wal");
        assert_eq!(parse_segment_name("00000000000000000001.wal"), Some(1));
        assert_eq!(
            parse_segment_name(&segment_file_name(u64::MAX)),
            Some(u64::MAX)
        );
        for bad in [
            "1.wal",
            "0000000000000000000a.wal",
            "00000000000000000001.wal.tmp",
            "x",
        ] {
            assert_eq!(parse_segment_name(bad), None, "{bad}");
        }
        assert_eq!(parse_snapshot_name(&snapshot_file_name(42)), Some(42));
        assert_eq!(
            parse_snapshot_name("snapshot-99999999999999999999.snap"),
            None
        );
    }

    #[test]
    fn segment_header_round_trip_and_every_flip_is_caught() {
        let h = encode_segment_header(7, 1 << 20);
        assert_eq!(
            decode_segment_header(&h, 7),
            Ok(SegmentHeader {
                first_seq: 7,
                segment_size: 1 << 20
            })
        );
        assert!(matches!(
            decode_segment_header(&h, 8),
            Err(HeaderProblem::NameMismatch { .. })
        ));
        for i in 0..h.len() * 8 {
            let mut b = h;
            b[i / 8] ^= 1 << (i % 8);
            assert!(
                decode_segment_header(&b, 7).is_err(),
                "flip of bit {i} undetected"
            );
        }
        assert_eq!(
            decode_segment_header(&h[..63], 7),
            Err(HeaderProblem::TooShort)
        );
    }

    #[test]
    fn zero_scans() {
        let mut b = vec![0u8; 37];
        assert!(all_zero(&b));
        assert_eq!(nonzero_end(&b), 0);
        for i in 0..b.len() {
            b.fill(0);
            b[i] = 3;
            assert!(!all_zero(&b));
            assert_eq!(nonzero_end(&b), i + 1);
        }
        assert_eq!(nonzero_end(&[]), 0);
    }

    #[test]
    fn record_decoding_never_panics_on_short_or_odd_input() {
        let region = [0xffu8; 40];
        for off in 0..50 {
            let _ = record_at(&region, off);
            let _ = record_at(&region[..off.min(40)], off);
        }
    }
}
