//! `journal::recovery`: reading a journal directory back: listing segments, walking records in
//! sequence order with CRC and continuity checks, finding where valid data ends, and
//! describing any damage ([`RecoveryReport`]). [`JournalReader`] is the read-only front end
//! (used by `tradecore replay --journal DIR`); `Journal::open` uses the same scan and then
//! repairs the directory.
//!
//! Invariants:
//! * The records delivered are exactly the longest valid prefix of the journal: consecutive
//!   sequence numbers from the first segment's `first_seq`, every CRC verified. Nothing after
//!   the first invalid byte is ever delivered, even if intact records follow it (they are only
//!   *counted*, to report what a repair would drop).
//! * No file content can make the scan panic or loop: every decode is bounds-checked and every
//!   step advances by at least 8 bytes.
//!
//! Cost: one read-only `mmap` per segment (advised sequential) and one CRC32 per record; the
//! scan allocates only the per-segment bookkeeping (a few words per segment). Finding the end
//! of the last segment also checks that the unused remainder is zero (a word-at-a-time scan
//! of at most one segment). Damage triggers a slower resynchronising scan of what follows it,
//! to count the intact records that are lost.

use std::fmt;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use super::format::{
    all_zero, decode_segment_header, nonzero_end, parse_segment_name, record_at, u32_at, u64_at,
    HeaderProblem, RecordAt, MAX_SEGMENT_SIZE, RECORD_ALIGN, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use super::segment::{io_err, map_read};
use super::JournalError;

/// A segment file found in the directory (by name only; not yet validated).
#[derive(Clone, Debug)]
pub(crate) struct SegmentEntry {
    pub first_seq: u64,
    pub path: PathBuf,
}

/// Lists `<20 digits>.wal` files of `dir`, sorted by first sequence number. A missing
/// directory is an empty journal.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<SegmentEntry>, JournalError> {
    let mut out = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err(dir)(e)),
    };
    for entry in rd {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(first_seq) = name.to_str().and_then(parse_segment_name) else {
            continue;
        };
        if entry.file_type().map_err(io_err(dir))?.is_file() {
            out.push(SegmentEntry {
                first_seq,
                path: entry.path(),
            });
        }
    }
    out.sort_by_key(|e| e.first_seq);
    Ok(out)
}

/// Why the valid part of a journal ends before the end of its files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DamageReason {
    /// The segment's 64-byte header is invalid; the whole segment is unusable.
    BadSegmentHeader(HeaderProblem),
    /// The segment's first sequence number does not follow the previous segment's last.
    SegmentSeqMismatch {
        /// The sequence number that should come next.
        expected: u64,
        /// The segment's first sequence number.
        found: u64,
    },
    /// The file is shorter than its header says and the records run into the missing part.
    SegmentTruncated {
        /// The file's length.
        file_len: u64,
        /// The length in the header.
        segment_size: u64,
    },
    /// A record's length runs past the end of the segment.
    RecordOverrun {
        /// The stored payload length.
        len: u32,
    },
    /// A record's CRC does not match its bytes (torn write or corruption).
    BadCrc {
        /// The CRC stored in the record.
        stored: u32,
        /// The CRC of the bytes as found.
        computed: u32,
    },
    /// A record with a valid CRC carries the wrong sequence number.
    SeqGap {
        /// The sequence number that should come next.
        expected: u64,
        /// The one found.
        found: u64,
    },
    /// A zero length (the end-of-data marker) followed by non-zero bytes: a record torn before
    /// its length was written, or a damaged length field.
    GarbageAfterEnd,
}

impl fmt::Display for DamageReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadSegmentHeader(p) => write!(f, "bad segment header ({p})"),
            Self::SegmentSeqMismatch { expected, found } => {
                write!(f, "segment starts at seq {found}, expected {expected}")
            }
            Self::SegmentTruncated {
                file_len,
                segment_size,
            } => {
                write!(f, "segment truncated to {file_len} of {segment_size} bytes")
            }
            Self::RecordOverrun { len } => write!(f, "record length {len} runs past the segment"),
            Self::BadCrc { stored, computed } => {
                write!(
                    f,
                    "bad record CRC (stored {stored:#010x}, computed {computed:#010x})"
                )
            }
            Self::SeqGap { expected, found } => write!(f, "seq {found} where {expected} was due"),
            Self::GarbageAfterEnd => write!(
                f,
                "non-zero bytes after a zero length (a record torn before its length was \
                 written, or a damaged length field)"
            ),
        }
    }
}

/// Where and why the valid journal ends early, and what lies beyond.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// The segment file holding the first invalid byte.
    pub segment: PathBuf,
    /// Byte offset of the cut in that file (the first byte not kept).
    pub offset: u64,
    /// What was wrong there.
    pub reason: DamageReason,
    /// The last sequence number kept, if any record was kept.
    pub last_good_seq: Option<u64>,
    /// Intact records (valid CRC, sequence number after the cut) found beyond the cut: the
    /// records the cut discards. A lower bound of what was lost, since a damaged record
    /// cannot be counted.
    pub records_dropped: u64,
    /// Non-zero bytes discarded: from the cut to the last non-zero byte of its segment, plus
    /// the used bytes of every later segment.
    pub bytes_dropped: u64,
    /// Segment files after the damaged one (all discarded).
    pub later_segments: Vec<PathBuf>,
    /// Where a repairing open set discarded data aside (`<segment>.dropped` files): later
    /// segments and a segment with a bad header are renamed; a segment cut inside is copied
    /// first when the cut discards intact records. Empty for the read-only reader.
    pub quarantined: Vec<PathBuf>,
}

/// What a scan of the journal found (and, for `Journal::open`, what it repaired).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The journal directory.
    pub dir: PathBuf,
    /// Segment files found.
    pub segments: usize,
    /// Sequence number of the first retained record (= `next_seq` when there are none).
    pub first_seq: u64,
    /// Sequence number the next append gets.
    pub next_seq: u64,
    /// Valid records retained.
    pub records: u64,
    /// Records passed to the replay callback.
    pub replayed: u64,
    /// Present when the valid data ends early.
    pub damage: Option<Damage>,
    /// `true` when the files were changed to cut the damage off.
    pub repaired: bool,
    /// Leftover `*.wal.tmp` files of an interrupted segment creation that were removed.
    pub removed_temp_files: Vec<PathBuf>,
}

impl RecoveryReport {
    /// `true` when nothing was wrong.
    pub fn is_clean(&self) -> bool {
        self.damage.is_none()
    }

    /// Last retained sequence number, if any.
    pub fn last_seq(&self) -> Option<u64> {
        (self.records > 0).then(|| self.next_seq - 1)
    }
}

impl fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "journal {}: {} segment(s), ",
            self.dir.display(),
            self.segments
        )?;
        match self.last_seq() {
            Some(last) => write!(
                f,
                "seq {}..={} ({} records)",
                self.first_seq, last, self.records
            )?,
            None => write!(f, "no records")?,
        }
        write!(
            f,
            ", next seq {}, {} replayed",
            self.next_seq, self.replayed
        )?;
        if !self.removed_temp_files.is_empty() {
            write!(
                f,
                ", removed {} temp file(s)",
                self.removed_temp_files.len()
            )?;
        }
        match &self.damage {
            None => write!(f, ", clean"),
            Some(d) => {
                write!(
                    f,
                    "; DAMAGE in {} at offset {}: {}; ",
                    d.segment.display(),
                    d.offset,
                    d.reason
                )?;
                match d.last_good_seq {
                    Some(s) => write!(f, "kept up to seq {s}")?,
                    None => write!(f, "kept no record")?,
                }
                write!(
                    f,
                    "; dropped {} intact record(s), {} byte(s), {} later segment(s)",
                    d.records_dropped,
                    d.bytes_dropped,
                    d.later_segments.len()
                )?;
                if self.repaired {
                    write!(f, "; repaired")?;
                    if !d.quarantined.is_empty() {
                        write!(f, ", set aside as")?;
                        for q in &d.quarantined {
                            write!(f, " {}", q.display())?;
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

/// A segment whose header is valid and whose records (up to `end`) are all kept.
#[derive(Clone, Debug)]
pub(crate) struct KeptSegment {
    pub first_seq: u64,
    pub path: PathBuf,
    pub segment_size: u64,
    pub file_len: u64,
    /// Offset one past the last kept record.
    pub end: usize,
    /// One past the last non-zero byte (only computed for the damaged segment; else `end`).
    pub nonzero_end: usize,
}

/// The result of [`scan`].
#[derive(Debug)]
pub(crate) struct ScanOutcome {
    pub kept: Vec<KeptSegment>,
    pub next_seq: u64,
    pub records: u64,
    pub replayed: u64,
    pub damage: Option<Damage>,
    /// `true` when the damaged segment itself is discarded whole (bad header or out of
    /// sequence) rather than cut inside (then it is the last of `kept`).
    pub damaged_dropped_whole: bool,
}

/// Walks every segment in order, delivering records with `seq >= from_seq` to `visit`, and
/// stops at the first damage. `empty_first_seq` is the next sequence number of a journal
/// with no segment at all.
pub(crate) fn scan<F: FnMut(u64, &[u8])>(
    entries: &[SegmentEntry],
    empty_first_seq: u64,
    from_seq: u64,
    mut visit: F,
) -> Result<ScanOutcome, JournalError> {
    let mut out = ScanOutcome {
        kept: Vec::with_capacity(entries.len()),
        next_seq: entries.first().map_or(empty_first_seq, |e| e.first_seq),
        records: 0,
        replayed: 0,
        damage: None,
        damaged_dropped_whole: false,
    };
    for (i, entry) in entries.iter().enumerate() {
        let (_file, map) = open_map(&entry.path)?;
        let bytes: &[u8] = map.as_deref().unwrap_or(&[]);
        let file_len = bytes.len() as u64;
        let expected = out.next_seq;
        let header = match decode_segment_header(bytes, entry.first_seq) {
            Err(p) => {
                out.damaged_dropped_whole = true;
                out.damage = Some(damage_whole(entry, DamageReason::BadSegmentHeader(p), &out));
                finish_damage(&mut out, bytes, 0, &entries[i + 1..])?;
                break;
            }
            Ok(h) if i > 0 && h.first_seq != expected => {
                let reason = DamageReason::SegmentSeqMismatch {
                    expected,
                    found: h.first_seq,
                };
                out.damaged_dropped_whole = true;
                out.damage = Some(damage_whole(entry, reason, &out));
                finish_damage(&mut out, bytes, 0, &entries[i + 1..])?;
                break;
            }
            Ok(h) => h,
        };
        let region_len = file_len.min(header.segment_size) as usize;
        let region = bytes.get(..region_len).unwrap_or(bytes);
        let truncated = file_len < header.segment_size;
        let mut seq = header.first_seq;
        let mut off = SEGMENT_HEADER_LEN;
        let mut records = 0u64;
        let stop = loop {
            match record_at(region, off) {
                RecordAt::Valid {
                    seq: s,
                    payload,
                    next,
                } if s == seq => {
                    if s >= from_seq {
                        visit(s, payload);
                        out.replayed += 1;
                    }
                    records += 1;
                    seq = seq.wrapping_add(1);
                    off = next;
                }
                RecordAt::Valid { seq: found, .. } => {
                    break Some(DamageReason::SeqGap {
                        expected: seq,
                        found,
                    });
                }
                RecordAt::Overrun { .. } if truncated => {
                    break Some(DamageReason::SegmentTruncated {
                        file_len,
                        segment_size: header.segment_size,
                    });
                }
                RecordAt::Overrun { len } => break Some(DamageReason::RecordOverrun { len }),
                RecordAt::BadCrc { stored, computed } => {
                    break Some(DamageReason::BadCrc { stored, computed });
                }
                RecordAt::End => {
                    let rest = region.get(off..).unwrap_or(&[]);
                    let reached_cut_end = truncated && rest.len() < RECORD_HEADER_LEN;
                    if reached_cut_end {
                        break Some(DamageReason::SegmentTruncated {
                            file_len,
                            segment_size: header.segment_size,
                        });
                    }
                    if !all_zero(rest) {
                        break Some(DamageReason::GarbageAfterEnd);
                    }
                    break None;
                }
            }
        };
        out.records += records;
        out.next_seq = seq;
        out.kept.push(KeptSegment {
            first_seq: header.first_seq,
            path: entry.path.clone(),
            segment_size: header.segment_size,
            file_len,
            end: off,
            nonzero_end: off,
        });
        if let Some(reason) = stop {
            out.damage = Some(Damage {
                segment: entry.path.clone(),
                offset: off as u64,
                reason,
                last_good_seq: (out.records > 0).then(|| out.next_seq.wrapping_sub(1)),
                records_dropped: 0,
                bytes_dropped: 0,
                later_segments: Vec::new(),
                quarantined: Vec::new(),
            });
            // Whatever lies beyond the cut, the whole file counts (a truncated file's missing
            // bytes are unknown).
            let nz = nonzero_end(bytes).max(off);
            if let Some(k) = out.kept.last_mut() {
                k.nonzero_end = nz.min(region_len);
            }
            finish_damage(&mut out, bytes, off, &entries[i + 1..])?;
            break;
        }
    }
    Ok(out)
}

fn damage_whole(entry: &SegmentEntry, reason: DamageReason, out: &ScanOutcome) -> Damage {
    Damage {
        segment: entry.path.clone(),
        offset: 0,
        reason,
        last_good_seq: (out.records > 0).then(|| out.next_seq.wrapping_sub(1)),
        records_dropped: 0,
        bytes_dropped: 0,
        later_segments: Vec::new(),
        quarantined: Vec::new(),
    }
}

/// Fills in what the damage discards: intact records and non-zero bytes from `cut` in the
/// damaged segment's `bytes`, then every later segment whole.
fn finish_damage(
    out: &mut ScanOutcome,
    bytes: &[u8],
    cut: usize,
    later: &[SegmentEntry],
) -> Result<(), JournalError> {
    let min_seq = out.next_seq;
    let mut records = salvage_count(bytes, cut, min_seq);
    let mut dropped_bytes = nonzero_end(bytes).saturating_sub(cut) as u64;
    let mut later_paths = Vec::with_capacity(later.len());
    for e in later {
        let (_file, map) = open_map(&e.path)?;
        let b: &[u8] = map.as_deref().unwrap_or(&[]);
        records += salvage_count(b, 0, min_seq);
        dropped_bytes += nonzero_end(b) as u64;
        later_paths.push(e.path.clone());
    }
    if let Some(d) = out.damage.as_mut() {
        d.records_dropped = records;
        d.bytes_dropped = dropped_bytes;
        d.later_segments = later_paths;
    }
    Ok(())
}

/// Counts intact records at or after `start` in `buf`: 8-aligned offsets holding a record
/// with a valid CRC and a sequence number in `[min_seq, min_seq + 2^32)`. Resynchronises after
/// garbage by stepping 8 bytes at a time; the sequence-number window keeps CRC work on random
/// bytes negligible.
pub(crate) fn salvage_count(buf: &[u8], start: usize, min_seq: u64) -> u64 {
    let mut off = start.next_multiple_of(RECORD_ALIGN);
    let mut count = 0u64;
    while off.saturating_add(RECORD_HEADER_LEN) <= buf.len() {
        let plausible = match (u32_at(buf, off + 4), u64_at(buf, off + 8)) {
            (Some(len), Some(seq)) => {
                len != 0
                    && (len as usize) <= buf.len() - off - RECORD_HEADER_LEN
                    && seq.wrapping_sub(min_seq) < (1u64 << 32)
            }
            _ => false,
        };
        if plausible {
            if let RecordAt::Valid { next, .. } = record_at(buf, off) {
                count += 1;
                off = next.max(off + RECORD_ALIGN);
                continue;
            }
        }
        off += RECORD_ALIGN;
    }
    count
}

/// Opens a segment read-only and maps it whole (up to the largest segment size); an empty
/// file gives no map.
fn open_map(path: &Path) -> Result<(File, Option<memmap2::Mmap>), JournalError> {
    let file = File::open(path).map_err(io_err(path))?;
    let len = file
        .metadata()
        .map_err(io_err(path))?
        .len()
        .min(MAX_SEGMENT_SIZE) as usize;
    if len == 0 {
        return Ok((file, None));
    }
    let map = map_read(&file, len, path)?;
    // Advice is a hint; failing to give it changes nothing.
    let _ = map.advise(memmap2::Advice::Sequential);
    Ok((file, Some(map)))
}

/// Read-only access to a journal directory: replays records, never modifies a file.
///
/// Meant for a journal no process is appending to (start-up, offline replay, tests): on a
/// live journal the record being written can show as [`DamageReason::GarbageAfterEnd`].
#[derive(Debug)]
pub struct JournalReader {
    dir: PathBuf,
    entries: Vec<SegmentEntry>,
}

impl JournalReader {
    /// Lists the segments of `dir` (a missing directory is an empty journal).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, JournalError> {
        let dir = dir.as_ref().to_path_buf();
        let entries = list_segments(&dir)?;
        Ok(Self { dir, entries })
    }

    /// Sequence number of the first record, by the first segment's name (`None` if empty).
    pub fn first_seq(&self) -> Option<u64> {
        self.entries.first().map(|e| e.first_seq)
    }

    /// Number of segment files.
    pub fn segment_count(&self) -> usize {
        self.entries.len()
    }

    /// Calls `visit(seq, payload)` for every valid record with `seq >= from_seq`, in order,
    /// and reports where the valid data ends. Asking for records older than the first one
    /// retained is an error ([`JournalError::SeqNotRetained`]); asking for more than exists is
    /// [`JournalError::JournalBehind`].
    pub fn replay_from<F: FnMut(u64, &[u8])>(
        &self,
        from_seq: u64,
        visit: F,
    ) -> Result<RecoveryReport, JournalError> {
        if let Some(first) = self.first_seq() {
            if from_seq < first {
                return Err(JournalError::SeqNotRetained {
                    requested: from_seq,
                    first,
                });
            }
        }
        let out = scan(&self.entries, from_seq, from_seq, visit)?;
        if from_seq > out.next_seq {
            return Err(JournalError::JournalBehind {
                requested: from_seq,
                next: out.next_seq,
            });
        }
        Ok(self.report(out))
    }

    /// Replays every valid record from the first one retained.
    pub fn replay_all<F: FnMut(u64, &[u8])>(
        &self,
        visit: F,
    ) -> Result<RecoveryReport, JournalError> {
        self.replay_from(self.first_seq().unwrap_or(0), visit)
    }

    fn report(&self, out: ScanOutcome) -> RecoveryReport {
        RecoveryReport {
            dir: self.dir.clone(),
            segments: self.entries.len(),
            first_seq: out.kept.first().map_or(out.next_seq, |k| k.first_seq),
            next_seq: out.next_seq,
            records: out.records,
            replayed: out.replayed,
            damage: out.damage,
            repaired: false,
            removed_temp_files: Vec::new(),
        }
    }
}
