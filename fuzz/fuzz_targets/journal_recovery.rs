//! Fuzz target: journal recovery over arbitrary segment files (and snapshot files).
//!
//! The input describes up to four segment files: each with a valid header or raw bytes in
//! its place, a run of well-formed records (correct CRCs, sequence numbers mostly in order:
//! the fuzzer could never forge a CRC, so it gets them for free and spends its effort on
//! damage), then flipped bytes, a truncation and trailing garbage; plus optional snapshot
//! files with arbitrary bytes.
//!
//! Properties: nothing panics; the read-only reader and the repairing `open_with_replay`
//! deliver the same records with consecutive sequence numbers, and report a count that
//! matches; the repaired journal accepts appends and then reads back clean, as the kept
//! prefix followed by the new records; snapshot loading returns only a body whose file was
//! written with exactly that body (or nothing).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tradecore_engine::journal::format::{
    encode_segment_header, encode_snapshot_header, padded_record_len, record_crc,
    segment_file_name, snapshot_file_name, SEGMENT_HEADER_LEN,
};
use tradecore_engine::journal::{
    load_latest_snapshot, FsyncPolicy, Journal, JournalConfig, JournalReader,
};

#[derive(Arbitrary, Debug)]
struct Rec {
    /// Added to the expected sequence number (mostly 0).
    seq_skew: i8,
    payload: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
struct Seg {
    /// 0: the next expected seq; otherwise this value.
    first_seq: u8,
    header: bool,
    /// Segment size: 4096 or 8192.
    big: bool,
    records: Vec<Rec>,
    flips: Vec<(u16, u8)>,
    truncate: Option<u16>,
    raw_head: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
struct Snap {
    seq: u8,
    valid_header: bool,
    body: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    segs: Vec<Seg>,
    snaps: Vec<Snap>,
    appends: u8,
}

fn build(seg: &Seg, first: u64) -> (Vec<u8>, u64) {
    let size: usize = if seg.big { 8192 } else { 4096 };
    let mut buf = vec![0u8; size];
    if seg.header {
        buf[..SEGMENT_HEADER_LEN].copy_from_slice(&encode_segment_header(first, size as u64));
    } else {
        let n = seg.raw_head.len().min(size);
        buf[..n].copy_from_slice(&seg.raw_head[..n]);
    }
    let mut at = SEGMENT_HEADER_LEN;
    let mut seq = first;
    for r in seg.records.iter().take(64) {
        if r.payload.is_empty() || r.payload.len() > 300 {
            continue;
        }
        let rec = padded_record_len(r.payload.len());
        if at + rec > size {
            break;
        }
        let s = seq.wrapping_add_signed(i64::from(r.seq_skew % 3 / 2));
        let len = r.payload.len() as u32;
        let mut seq_and_payload = s.to_le_bytes().to_vec();
        seq_and_payload.extend_from_slice(&r.payload);
        buf[at..at + 4].copy_from_slice(&record_crc(len, &seq_and_payload).to_le_bytes());
        buf[at + 4..at + 8].copy_from_slice(&len.to_le_bytes());
        buf[at + 8..at + 16 + r.payload.len()].copy_from_slice(&seq_and_payload);
        at += rec;
        seq = s.wrapping_add(1);
    }
    for &(off, x) in seg.flips.iter().take(8) {
        let i = usize::from(off) % size;
        buf[i] ^= x;
    }
    if let Some(t) = seg.truncate {
        buf.truncate(usize::from(t) % (size + 1));
    }
    (buf, seq)
}

fn collect(dir: &std::path::Path, from: u64) -> Option<(Vec<(u64, Vec<u8>)>, u64)> {
    let mut out = Vec::new();
    let r = JournalReader::open(dir)
        .ok()?
        .replay_from(from, |s, p| out.push((s, p.to_vec())))
        .ok()?;
    Some((out, r.records))
}

fuzz_target!(|input: Input| {
    // tmpfs when there is one: every input writes and maps a few files.
    let shm = std::path::Path::new("/dev/shm");
    let tmp = if shm.is_dir() {
        tempfile::tempdir_in(shm).or_else(|_| tempfile::tempdir())
    } else {
        tempfile::tempdir()
    }
    .expect("tempdir");
    let dir = tmp.path();
    let mut next = 1u64;
    for seg in input.segs.iter().take(4) {
        let first = if seg.first_seq == 0 {
            next
        } else {
            u64::from(seg.first_seq)
        };
        let (bytes, after) = build(seg, first);
        std::fs::write(dir.join(segment_file_name(first)), bytes).expect("write segment");
        next = after;
    }
    let mut written = Vec::new();
    for s in input.snaps.iter().take(3) {
        let seq = u64::from(s.seq);
        let mut file = Vec::new();
        if s.valid_header {
            file.extend_from_slice(&encode_snapshot_header(seq, &s.body));
        }
        file.extend_from_slice(&s.body);
        std::fs::write(dir.join(snapshot_file_name(seq)), &file).expect("write snapshot");
        written.push((seq, s.body.clone(), s.valid_header));
    }

    let reader = JournalReader::open(dir).expect("reader");
    let first = reader.first_seq().unwrap_or(1).max(1);
    let ro = collect(dir, first);
    if let Some((records, count)) = &ro {
        assert_eq!(records.len() as u64, *count);
        for (i, (s, _)) in records.iter().enumerate() {
            assert_eq!(*s, first + i as u64, "non-consecutive records delivered");
        }
    }

    let cfg = JournalConfig {
        segment_size: 4096,
        fsync: FsyncPolicy::None,
    };
    let mut kept = Vec::new();
    let opened = Journal::open_with_replay(dir, cfg, first, |s, p| kept.push((s, p.to_vec())));
    if let Ok((mut j, report)) = opened {
        if let Some((records, _)) = &ro {
            assert_eq!(&kept, records, "reader and open disagree: {report}");
        }
        assert_eq!(report.next_seq, first + kept.len() as u64);
        let n = u64::from(input.appends % 40);
        for i in 0..n {
            let payload = [i as u8 ^ 0x5a; 37];
            if j.append(&payload).is_err() {
                return;
            }
        }
        drop(j);
        let (again, _) = collect(dir, first).expect("the repaired journal reads");
        assert_eq!(again.len() as u64, kept.len() as u64 + n);
        assert_eq!(&again[..kept.len()], &kept[..], "the kept prefix changed");
        let r = JournalReader::open(dir)
            .expect("reader")
            .replay_from(first, |_, _| {})
            .expect("replay");
        assert!(r.is_clean(), "after repair and appends: {r}");
    }

    if let Ok(load) = load_latest_snapshot(dir) {
        if let Some(s) = load.snapshot {
            let ok = written
                .iter()
                .any(|(seq, body, valid)| *valid && *seq == s.seq && *body == s.body);
            assert!(ok, "a snapshot was returned that was not written whole");
        }
    }
});
