//! Damage to journal and snapshot files on disk, over many seeded random trials: truncation
//! of the last segment, bytes flipped at random offsets of any segment, garbage files. For
//! every trial, recovery must
//! * never panic, and deliver only a prefix of the original records, byte for byte;
//! * keep every record that lies wholly before the first damaged byte (computed here from
//!   the layout in `docs/journal.md`, independently of the reader);
//! * report the damage (segment, offset, reason, records and bytes dropped) whenever it
//!   drops a record, and with a single flipped byte, account for every record after it;
//! * leave a journal that accepts appends and reads back as kept prefix + new records (no
//!   stale record ever reappears after the cut);
//! * and the read-only reader must report the same thing without modifying any file.
//!
//! Snapshots: random flips and truncations of random snapshot files; loading must return
//! the newest undamaged snapshot with its exact body, and name the ones it skipped.
//!
//! `TC_CORRUPTION_TRIALS` scales the trial counts, `TC_CORRUPTION_SEED` replays one seed.

mod common;

use common::Rng;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use tradecore_engine::journal::{
    load_latest_snapshot, padded_record_len, write_snapshot, DamageReason, FsyncPolicy, Journal,
    JournalConfig, JournalReader, LOCK_FILE,
};

const SEGMENT: u64 = 4096;
const HEADER: u64 = 64;
const RECORDS: u64 = 400;

fn payload(seq: u64) -> Vec<u8> {
    let mut r = Rng(seq ^ 0xdead_beef);
    let len = 1 + r.below(250) as usize;
    (0..len).map(|_| r.next() as u8).collect()
}

fn config() -> JournalConfig {
    JournalConfig {
        segment_size: SEGMENT,
        fsync: FsyncPolicy::None,
    }
}

/// Where each record lives, derived from the documented layout alone: segments of `SEGMENT`
/// bytes, a 64-byte header, records of `16 + len` bytes padded to 8, a new segment (named by
/// its first seq) when the next record does not fit.
#[derive(Clone, Copy, Debug)]
struct Placement {
    seq: u64,
    segment: usize,
    start: u64,
    /// One past the last byte covered by the CRC (padding excluded).
    end: u64,
}

fn layout(records: u64) -> (Vec<u64>, Vec<Placement>) {
    let mut segments = vec![1u64];
    let mut at = HEADER;
    let mut out = Vec::new();
    for seq in 1..=records {
        let len = payload(seq).len();
        let rec = padded_record_len(len) as u64;
        if at + rec > SEGMENT {
            segments.push(seq);
            at = HEADER;
        }
        out.push(Placement {
            seq,
            segment: segments.len() - 1,
            start: at,
            end: at + 16 + len as u64,
        });
        at += rec;
    }
    (segments, out)
}

fn seg_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.wal"))
}

/// Builds the pristine journal once; trials copy it.
fn template() -> (tempfile::TempDir, Vec<u64>, Vec<Placement>) {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), config()).unwrap();
    for seq in 1..=RECORDS {
        assert_eq!(j.append(&payload(seq)).unwrap(), seq);
    }
    j.close().unwrap();
    let (segments, places) = layout(RECORDS);
    // The files are where the documented layout says (plus the directory's lock file).
    let mut names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n != LOCK_FILE))
        .collect();
    names.sort();
    let want: Vec<_> = segments.iter().map(|&s| seg_path(dir.path(), s)).collect();
    assert_eq!(names, want);
    for p in &places {
        let bytes = fs::read(seg_path(dir.path(), segments[p.segment])).unwrap();
        let at = p.start as usize;
        assert_eq!(
            bytes[at + 4..at + 8],
            (payload(p.seq).len() as u32).to_le_bytes()
        );
        assert_eq!(bytes[at + 8..at + 16], p.seq.to_le_bytes());
        assert_eq!(bytes[at + 16..p.end as usize], payload(p.seq)[..]);
    }
    (dir, segments, places)
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn snapshot_of_files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.clone(), fs::read(p).unwrap()))
        .collect()
}

fn seed_from_env(default: u64) -> u64 {
    std::env::var("TC_CORRUPTION_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn trials(default: u64) -> u64 {
    let scale: u64 = std::env::var("TC_CORRUPTION_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    default * scale.max(1)
}

/// Runs recovery on a damaged copy and checks everything the module doc promises.
/// `first_damage` is `(segment index, offset)` of the first damaged byte. Returns the number
/// of records kept and the damage the read-only reader reported.
fn recover_and_check(
    dir: &Path,
    first_damage: (usize, u64),
    places: &[Placement],
    single_flip: bool,
    ctx: &str,
) -> (u64, Option<DamageReason>) {
    let (damaged_segment, damaged_offset) = first_damage;
    let must_keep = places
        .iter()
        .take_while(|p| {
            p.segment < damaged_segment || (p.segment == damaged_segment && p.end <= damaged_offset)
        })
        .count() as u64;

    // Read-only pass: reports, modifies nothing.
    let before = snapshot_of_files(dir);
    let mut read_only = Vec::new();
    let ro_report = JournalReader::open(dir)
        .unwrap()
        .replay_all(|s, p| read_only.push((s, p.to_vec())))
        .unwrap_or_else(|e| panic!("{ctx}: reader error {e}"));
    assert_eq!(
        before,
        snapshot_of_files(dir),
        "{ctx}: the reader modified files"
    );

    // Repairing open, replaying everything.
    let mut kept = Vec::new();
    // (Damage in the first segment's header drops every record; the journal then restarts
    // at seq 1, so replaying from 1 stays valid.)
    let (mut j, report) =
        Journal::open_with_replay(dir, config(), 1, |s, p| kept.push((s, p.to_vec())))
            .unwrap_or_else(|e| panic!("{ctx}: open error {e}"));
    assert_eq!(kept, read_only, "{ctx}: reader and open disagree");
    assert_eq!(report.records, ro_report.records, "{ctx}");
    assert_eq!(
        report
            .damage
            .as_ref()
            .map(|d| (&d.segment, d.offset, d.reason)),
        ro_report
            .damage
            .as_ref()
            .map(|d| (&d.segment, d.offset, d.reason)),
        "{ctx}"
    );

    // Only a prefix, byte for byte, and at least everything before the damage.
    for (i, (seq, p)) in kept.iter().enumerate() {
        assert_eq!(*seq, i as u64 + 1, "{ctx}");
        assert_eq!(p, &payload(*seq), "{ctx}: seq {seq} came back altered");
    }
    let n = kept.len() as u64;
    assert!(
        n >= must_keep,
        "{ctx}: kept {n} records, but the first {must_keep} lie before the damage: {report}"
    );
    assert_eq!(report.next_seq, n + 1, "{ctx}");
    if n < RECORDS {
        let d = report
            .damage
            .as_ref()
            .unwrap_or_else(|| panic!("{ctx}: records dropped without a report: {report}"));
        // (A truncation can leave nothing after the cut: the lost bytes are gone already.)
        let truncated = matches!(d.reason, DamageReason::SegmentTruncated { .. });
        assert!(d.bytes_dropped > 0 || truncated, "{ctx}: {report}");
        assert_eq!(d.last_good_seq, (n > 0).then_some(n), "{ctx}");
        if single_flip {
            assert!(
                n + d.records_dropped + 1 >= RECORDS,
                "{ctx}: a single flip must leave every later record countable: {report}"
            );
        }
        assert!(n + d.records_dropped <= RECORDS, "{ctx}: {report}");
        assert!(report.repaired, "{ctx}");
    }
    if let Some(d) = &report.damage {
        for q in &d.quarantined {
            assert!(q.exists(), "{ctx}: set-aside file {} missing", q.display());
        }
    }

    // The repaired journal continues cleanly: kept prefix + new records, nothing stale.
    for seq in n + 1..=n + 60 {
        assert_eq!(j.append(&payload(seq)).unwrap(), seq, "{ctx}");
    }
    drop(j);
    let mut again = Vec::new();
    let r2 = JournalReader::open(dir)
        .unwrap()
        .replay_all(|s, p| again.push((s, p.to_vec())))
        .unwrap();
    assert!(r2.is_clean(), "{ctx}: after repair and appends: {r2}");
    assert_eq!(again.len() as u64, n + 60, "{ctx}");
    for (i, (seq, p)) in again.iter().enumerate() {
        assert_eq!((*seq, p), (i as u64 + 1, &payload(i as u64 + 1)), "{ctx}");
    }
    (n, ro_report.damage.map(|d| d.reason))
}

fn reason_kind(r: Option<DamageReason>) -> &'static str {
    match r {
        None => "undetected (padding or unused bytes)",
        Some(DamageReason::BadSegmentHeader(_)) => "bad segment header",
        Some(DamageReason::SegmentSeqMismatch { .. }) => "segment seq mismatch",
        Some(DamageReason::SegmentTruncated { .. }) => "segment truncated",
        Some(DamageReason::RecordOverrun { .. }) => "record overrun",
        Some(DamageReason::BadCrc { .. }) => "bad crc",
        Some(DamageReason::SeqGap { .. }) => "seq gap",
        Some(DamageReason::GarbageAfterEnd) => "garbage after end",
    }
}

#[test]
fn truncating_the_last_segment_keeps_every_record_before_the_cut() {
    let (tpl, segments, places) = template();
    let last = segments.len() - 1;
    let last_path = seg_path(tpl.path(), segments[last]);
    let used = places.last().unwrap().end;
    let seed = seed_from_env(0x7a11);
    let mut rng = Rng(seed);
    let mut damaged = 0;
    let mut reasons: BTreeMap<&'static str, u32> = BTreeMap::new();
    for trial in 0..trials(150) {
        let ctx = format!("truncate seed {seed} trial {trial}");
        let root = tempfile::tempdir().unwrap();
        copy_dir(tpl.path(), root.path());
        // Mostly inside the used part (header included), sometimes in the zero tail.
        let cut = if trial % 5 == 4 {
            used + rng.below(SEGMENT - used)
        } else {
            rng.below(used + 1)
        };
        let f = fs::OpenOptions::new()
            .write(true)
            .open(root.path().join(last_path.file_name().unwrap()))
            .unwrap();
        f.set_len(cut).unwrap();
        drop(f);
        let (kept, reason) = recover_and_check(root.path(), (last, cut), &places, false, &ctx);
        if kept < RECORDS {
            damaged += 1;
        }
        *reasons.entry(reason_kind(reason)).or_default() += 1;
    }
    eprintln!("truncation outcomes: {reasons:?}");
    assert!(
        damaged > 50,
        "most truncations must cut records ({damaged})"
    );
}

#[test]
fn flipped_bytes_anywhere_keep_every_record_before_the_first_flip() {
    let (tpl, segments, places) = template();
    let sizes: Vec<u64> = segments.iter().map(|_| SEGMENT).collect();
    let seed = seed_from_env(0xf11b);
    let mut rng = Rng(seed);
    let mut reasons: BTreeMap<&'static str, u32> = BTreeMap::new();
    for trial in 0..trials(400) {
        let root = tempfile::tempdir().unwrap();
        copy_dir(tpl.path(), root.path());
        let flips = if trial % 2 == 0 { 1 } else { 1 + rng.below(4) };
        let mut first = (usize::MAX, u64::MAX);
        for _ in 0..flips {
            // Bias towards the used bytes, where the interesting damage is.
            let seg = rng.below(sizes.len() as u64) as usize;
            let seg_used = places
                .iter()
                .filter(|p| p.segment == seg)
                .map(|p| p.end)
                .max()
                .unwrap_or(HEADER);
            let off = if rng.below(8) == 0 {
                rng.below(sizes[seg])
            } else {
                rng.below(seg_used)
            };
            let path = seg_path(root.path(), segments[seg]);
            let mut bytes = fs::read(&path).unwrap();
            bytes[off as usize] ^= 1 + rng.below(255) as u8;
            fs::write(&path, &bytes).unwrap();
            first = first.min((seg, off));
        }
        let ctx = format!(
            "flip seed {seed} trial {trial} ({flips} flips, first at segment {} offset {})",
            first.0, first.1
        );
        let (_, reason) = recover_and_check(root.path(), first, &places, flips == 1, &ctx);
        *reasons.entry(reason_kind(reason)).or_default() += 1;
    }
    eprintln!("flip outcomes: {reasons:?}");
    assert!(
        reasons.len() >= 4,
        "the trials should reach several kinds of damage: {reasons:?}"
    );
}

#[test]
fn single_flips_report_their_reason_and_position() {
    let (tpl, segments, places) = template();
    let mut seen: BTreeMap<&'static str, u32> = BTreeMap::new();
    let seed = seed_from_env(0x5eed);
    let mut rng = Rng(seed);
    for trial in 0..trials(200) {
        let root = tempfile::tempdir().unwrap();
        copy_dir(tpl.path(), root.path());
        let victim = places[rng.below(places.len() as u64) as usize];
        // Flip inside the record's CRC-covered bytes (header or payload).
        let off = victim.start + rng.below(victim.end - victim.start);
        let path = seg_path(root.path(), segments[victim.segment]);
        let mut bytes = fs::read(&path).unwrap();
        bytes[off as usize] ^= 1 << rng.below(8);
        fs::write(&path, &bytes).unwrap();
        let ctx = format!(
            "seed {seed} trial {trial}: flip in seq {} at offset {off}",
            victim.seq
        );
        let mut n = 0u64;
        let r = JournalReader::open(root.path())
            .unwrap()
            .replay_all(|_, _| n += 1)
            .unwrap();
        assert_eq!(
            n,
            victim.seq - 1,
            "{ctx}: exactly the records before the damaged one"
        );
        let d = r.damage.unwrap_or_else(|| panic!("{ctx}: undetected"));
        assert_eq!(
            (d.segment.clone(), d.offset),
            (path.clone(), victim.start),
            "{ctx}"
        );
        assert_eq!(
            d.records_dropped,
            RECORDS - victim.seq,
            "{ctx}: every later record is intact and counted"
        );
        let kind = match d.reason {
            DamageReason::BadCrc { .. } => "bad crc",
            DamageReason::RecordOverrun { .. } => "overrun",
            DamageReason::GarbageAfterEnd => "zeroed length",
            other => panic!("{ctx}: unexpected reason {other:?}"),
        };
        *seen.entry(kind).or_default() += 1;
        recover_and_check(root.path(), (victim.segment, off), &places, true, &ctx);
    }
    assert!(seen.get("bad crc").copied().unwrap_or(0) > 100, "{seen:?}");
    eprintln!("single-flip reasons: {seen:?}");
}

#[test]
fn damaged_segment_headers_and_gaps_drop_from_that_segment_on() {
    let (tpl, segments, places) = template();
    assert!(segments.len() >= 5);
    // Header damage in the middle segment.
    let mid = segments.len() / 2;
    let root = tempfile::tempdir().unwrap();
    copy_dir(tpl.path(), root.path());
    let p = seg_path(root.path(), segments[mid]);
    let mut b = fs::read(&p).unwrap();
    b[20] ^= 0x01; // first_seq field: header CRC fails
    fs::write(&p, &b).unwrap();
    let (n, reason) = recover_and_check(root.path(), (mid, 20), &places, true, "mid header");
    assert_eq!(n, segments[mid] - 1);
    assert!(
        matches!(reason, Some(DamageReason::BadSegmentHeader(_))),
        "{reason:?}"
    );

    // A missing middle segment: a sequence gap between files.
    let root = tempfile::tempdir().unwrap();
    copy_dir(tpl.path(), root.path());
    fs::remove_file(seg_path(root.path(), segments[mid])).unwrap();
    let mut count = 0;
    let r = JournalReader::open(root.path())
        .unwrap()
        .replay_all(|_, _| count += 1)
        .unwrap();
    assert_eq!(count, segments[mid] - 1);
    let d = r.damage.unwrap();
    assert!(
        matches!(d.reason, DamageReason::SegmentSeqMismatch { expected, found } if expected == segments[mid] && found == segments[mid + 1]),
        "{:?}",
        d.reason
    );
    assert_eq!(d.records_dropped, RECORDS - segments[mid + 1] + 1);

    // The first segment's header: nothing survives; the journal restarts at seq 1.
    let root = tempfile::tempdir().unwrap();
    copy_dir(tpl.path(), root.path());
    let p = seg_path(root.path(), 1);
    let mut b = fs::read(&p).unwrap();
    b[0] = b'X';
    fs::write(&p, &b).unwrap();
    assert_eq!(
        recover_and_check(root.path(), (0, 0), &places, true, "first header").0,
        0
    );
}

#[test]
fn a_zeroed_length_is_damage_not_the_end_of_the_journal() {
    let (tpl, segments, places) = template();
    // A record in the middle of the last segment, and one in an earlier segment.
    let last = segments.len() - 1;
    let in_last: Vec<_> = places.iter().filter(|p| p.segment == last).collect();
    for victim in [*in_last[in_last.len() / 2], places[places.len() / 3]] {
        let root = tempfile::tempdir().unwrap();
        copy_dir(tpl.path(), root.path());
        let path = seg_path(root.path(), segments[victim.segment]);
        let mut bytes = fs::read(&path).unwrap();
        let at = victim.start as usize;
        bytes[at + 4..at + 8].fill(0);
        fs::write(&path, &bytes).unwrap();
        let ctx = format!("zeroed len of seq {}", victim.seq);
        let mut n = 0;
        let r = JournalReader::open(root.path())
            .unwrap()
            .replay_all(|_, _| n += 1)
            .unwrap();
        assert_eq!(n, victim.seq - 1, "{ctx}");
        let d = r.damage.unwrap_or_else(|| {
            panic!("{ctx}: a zero length with records after it must be reported")
        });
        assert_eq!(
            (d.reason, d.offset),
            (DamageReason::GarbageAfterEnd, victim.start),
            "{ctx}"
        );
        assert_eq!(d.records_dropped, RECORDS - victim.seq, "{ctx}");
        recover_and_check(
            root.path(),
            (victim.segment, victim.start + 4),
            &places,
            true,
            &ctx,
        );
    }
}

#[test]
fn a_duplicated_record_with_a_valid_crc_is_a_seq_gap() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), config()).unwrap();
    for seq in 1..=6 {
        j.append(&payload(seq)).unwrap();
    }
    drop(j);
    let (_, places) = layout(6);
    // Copy record 5 (intact, CRC valid) over record 6: the journal now says 1,2,3,4,5,5.
    let path = seg_path(dir.path(), 1);
    let mut bytes = fs::read(&path).unwrap();
    let (five, six) = (places[4], places[5]);
    let rec5 = bytes[five.start as usize..five.end as usize].to_vec();
    bytes[six.start as usize..six.end as usize].fill(0);
    bytes[six.start as usize..six.start as usize + rec5.len()].copy_from_slice(&rec5);
    fs::write(&path, &bytes).unwrap();
    let mut n = 0;
    let r = JournalReader::open(dir.path())
        .unwrap()
        .replay_all(|_, _| n += 1)
        .unwrap();
    assert_eq!(n, 5);
    let d = r.damage.expect("a repeated seq must be reported");
    assert_eq!(
        (d.reason, d.offset),
        (
            DamageReason::SeqGap {
                expected: 6,
                found: 5
            },
            six.start
        )
    );
    let (mut j, report) = Journal::open(dir.path(), config()).unwrap();
    assert!(report.repaired);
    assert_eq!(j.append(b"six").unwrap(), 6);
}

#[test]
fn a_torn_last_record_is_cut_and_new_appends_never_meet_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), config()).unwrap();
    for seq in 1..=5 {
        j.append(&payload(seq)).unwrap();
    }
    drop(j);
    let (_, places) = layout(5);
    // What a process killed inside `append` leaves: a long record's seq, payload and CRC
    // written, its length (written last) still zero.
    let path = seg_path(dir.path(), 1);
    let mut bytes = fs::read(&path).unwrap();
    let at = (places[4].start + padded_record_len(payload(5).len()) as u64) as usize;
    bytes[at..at + 4].copy_from_slice(&0x1234_5678u32.to_le_bytes());
    bytes[at + 8..at + 16].copy_from_slice(&6u64.to_le_bytes());
    bytes[at + 16..at + 16 + 900].fill(0xab);
    fs::write(&path, &bytes).unwrap();

    let (mut j, report) = Journal::open(dir.path(), config()).unwrap();
    let d = report.damage.clone().expect("the torn record is reported");
    assert_eq!(
        (d.reason, d.offset, d.records_dropped),
        (DamageReason::GarbageAfterEnd, at as u64, 0),
        "{report}"
    );
    assert!(
        d.quarantined.is_empty(),
        "a torn, never acknowledged record is not worth a copy"
    );
    // A shorter record goes where the torn one was; the torn bytes after it must be gone.
    assert_eq!(j.append(b"short").unwrap(), 6);
    drop(j);
    let mut got = Vec::new();
    let r = JournalReader::open(dir.path())
        .unwrap()
        .replay_all(|s, p| got.push((s, p.to_vec())))
        .unwrap();
    assert!(r.is_clean(), "{r}");
    assert_eq!(got.len(), 6);
    assert_eq!(got[5], (6, b"short".to_vec()));
}

#[test]
fn garbage_files_never_panic() {
    let seed = seed_from_env(0x6a7b);
    let mut rng = Rng(seed);
    for trial in 0..trials(150) {
        let root = tempfile::tempdir().unwrap();
        let ctx = format!("garbage seed {seed} trial {trial}");
        let files = 1 + rng.below(3);
        for k in 0..files {
            let len = match rng.below(4) {
                0 => rng.below(64),
                1 => rng.below(200),
                _ => rng.below(9000),
            } as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if rng.below(2) == 0 && len >= 64 {
                // A valid header in front of garbage records, sometimes with plausible lengths.
                let mut h = [0u8; 64];
                h[..8].copy_from_slice(b"TCJRNL\r\n");
                h[8..12].copy_from_slice(&1u32.to_le_bytes());
                h[12..16].copy_from_slice(&64u32.to_le_bytes());
                h[16..24].copy_from_slice(&(1 + k * 10).to_le_bytes());
                h[24..32].copy_from_slice(&SEGMENT.to_le_bytes());
                let crc = crc32fast::hash(&h[..60]);
                h[60..].copy_from_slice(&crc.to_le_bytes());
                bytes[..64].copy_from_slice(&h);
                let mut at = 64;
                while at + 16 < len && rng.below(3) != 0 {
                    let l = rng.below(64) as u32;
                    bytes[at + 4..at + 8].copy_from_slice(&l.to_le_bytes());
                    at += 16 + l as usize + rng.below(3) as usize * 8;
                }
            }
            fs::write(seg_path(root.path(), 1 + k * 10), &bytes).unwrap();
        }
        let r = JournalReader::open(root.path())
            .unwrap()
            .replay_all(|_, _| {});
        let r = r.unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let (mut j, report) =
            Journal::open(root.path(), config()).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        assert_eq!(report.records, r.records, "{ctx}");
        let seq = j.append(b"after garbage").unwrap();
        assert_eq!(seq, report.next_seq, "{ctx}");
        drop(j);
        let again = JournalReader::open(root.path())
            .unwrap()
            .replay_all(|_, _| {})
            .unwrap();
        assert!(again.is_clean(), "{ctx}: {again}");
        assert_eq!(again.records, report.records + 1, "{ctx}");
    }
}

#[test]
fn corrupt_snapshots_fall_back_to_the_newest_intact_one() {
    let seed = seed_from_env(0x5a95);
    let mut rng = Rng(seed);
    for trial in 0..trials(200) {
        let root = tempfile::tempdir().unwrap();
        let d = root.path();
        let seqs = [100u64, 200, 300];
        let bodies: Vec<Vec<u8>> = seqs
            .iter()
            .map(|&s| {
                let len = rng.below(3000) as usize;
                (0..len).map(|i| (s as usize * 31 + i * 7) as u8).collect()
            })
            .collect();
        for (s, b) in seqs.iter().zip(&bodies) {
            write_snapshot(d, *s, b).unwrap();
        }
        let mut damaged = [false; 3];
        for _ in 0..1 + rng.below(3) {
            let i = rng.below(3) as usize;
            let path = d.join(format!("snapshot-{:020}.snap", seqs[i]));
            let mut bytes = fs::read(&path).unwrap();
            if rng.below(3) == 0 {
                bytes.truncate(rng.below(bytes.len() as u64) as usize);
            } else {
                let at = rng.below(bytes.len() as u64) as usize;
                bytes[at] ^= 1 + rng.below(255) as u8;
            }
            fs::write(&path, &bytes).unwrap();
            damaged[i] = true;
        }
        let ctx = format!("snapshot seed {seed} trial {trial} damaged {damaged:?}");
        let load = load_latest_snapshot(d).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let want = (0..3).rev().find(|&i| !damaged[i]);
        match want {
            Some(i) => {
                let s = load
                    .snapshot
                    .as_ref()
                    .unwrap_or_else(|| panic!("{ctx}: none loaded"));
                assert_eq!((s.seq, &s.body), (seqs[i], &bodies[i]), "{ctx}");
                assert_eq!(load.rejected.len(), 2 - i, "{ctx}: {load}");
            }
            None => {
                assert!(load.snapshot.is_none(), "{ctx}");
                assert_eq!(load.rejected.len(), 3, "{ctx}");
            }
        }
    }
}
