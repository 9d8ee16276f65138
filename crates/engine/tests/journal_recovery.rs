//! Journal round trips on real files: appends across many segment rotations, reopening after
//! a clean close, after a drop without flush, and after a real `SIGKILL` of a child process;
//! fsync policies and their counters; replay from a snapshot's sequence number; segment
//! deletion behind a snapshot; deterministic, byte-identical output; snapshot retention and
//! fallback.
//!
//! A counting global allocator (per-thread counter, so tests running in parallel do not
//! disturb each other) proves that `append` allocates nothing between rotations, under every
//! fsync policy.
//!
//! The crash test re-runs this test binary as a child (`crash_child_appends`, selected by the
//! environment variable `TC_JOURNAL_CRASH_CHILD_DIR`) that appends with `FsyncPolicy::None` and
//! prints `ACK <seq>` after each append returns; the parent kills it at a random moment and
//! checks that every acknowledged record is in the reopened journal, intact. Set
//! `TC_CRASH_TRIALS` for more trials and `TC_CRASH_SEED` to replay a failing seed.

mod common;

use common::Rng;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tradecore_engine::journal::{
    list_snapshots, load_latest_snapshot, write_snapshot, FsyncHistogram, FsyncPolicy, Journal,
    JournalConfig, JournalError, JournalReader, SnapshotStore,
};

/// `System`, counting the allocations each thread makes.
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        // Const-initialised and without a destructor: using it never allocates.
        static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    }

    fn bump() {
        // `try_with`: during thread teardown the slot may be gone; such allocations are not ours.
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
    }

    /// Allocations made so far by the calling thread.
    pub fn this_thread() -> u64 {
        ALLOCATIONS.with(Cell::get)
    }

    pub struct Counting;

    // SAFETY: every method forwards its arguments unchanged to `System`, which implements
    // `GlobalAlloc` correctly; the only addition is a thread-local counter increment, which
    // neither allocates nor touches the memory handed out.
    #[allow(
        unsafe_code,
        reason = "a #[global_allocator] must implement the unsafe GlobalAlloc"
    )]
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            bump();
            // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
            unsafe { System.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            bump();
            // SAFETY: as for `alloc`.
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            bump();
            // SAFETY: the caller guarantees `ptr` came from this allocator (so from `System`)
            // with `layout`, and that `new_size` is valid.
            unsafe { System.realloc(ptr, layout, new_size) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: the caller guarantees `ptr` came from this allocator with `layout`.
            unsafe { System.dealloc(ptr, layout) }
        }
    }
}

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

/// The payload of record `seq`: 1..=300 bytes, all derived from `seq`, so any record can be
/// checked without keeping a copy.
fn payload_for(seq: u64, buf: &mut Vec<u8>) {
    let mut r = Rng(seq.wrapping_mul(0x2545_f491_4f6c_dd1d));
    let len = 1 + r.below(300) as usize;
    buf.clear();
    buf.extend((0..len).map(|_| r.next() as u8));
}

fn expected(seq: u64) -> Vec<u8> {
    let mut v = Vec::new();
    payload_for(seq, &mut v);
    v
}

fn small(fsync: FsyncPolicy) -> JournalConfig {
    JournalConfig {
        segment_size: 4096,
        fsync,
    }
}

fn append_range(j: &mut Journal, from: u64, to_inclusive: u64) {
    let mut buf = Vec::new();
    for seq in from..=to_inclusive {
        payload_for(seq, &mut buf);
        assert_eq!(j.append(&buf).expect("append"), seq);
    }
}

fn read_all(dir: &Path) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let report = JournalReader::open(dir)
        .expect("reader")
        .replay_all(|seq, p| out.push((seq, p.to_vec())))
        .expect("replay");
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.replayed as usize, out.len());
    out
}

fn assert_exactly(records: &[(u64, Vec<u8>)], first: u64, last: u64) {
    assert_eq!(records.len() as u64, last + 1 - first, "record count");
    for (i, (seq, payload)) in records.iter().enumerate() {
        assert_eq!(
            *seq,
            first + i as u64,
            "sequence numbers must be consecutive"
        );
        assert_eq!(payload, &expected(*seq), "payload of seq {seq}");
    }
}

#[test]
fn round_trip_across_many_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, report) = Journal::open(dir.path(), small(FsyncPolicy::None)).unwrap();
    assert!(
        report.is_clean() && report.records == 0 && report.next_seq == 1,
        "{report}"
    );
    append_range(&mut j, 1, 3000);
    assert!(
        j.segment_count() > 100,
        "expected many rotations, got {}",
        j.segment_count()
    );
    let stats = j.stats().clone();
    assert_eq!(stats.records, 3000);
    assert_eq!(stats.segments_created as usize, j.segment_count());
    let payload: u64 = (1..=3000).map(|s| expected(s).len() as u64).sum();
    assert_eq!(stats.payload_bytes, payload);
    assert!(stats.bytes_written >= payload + 16 * 3000);
    j.close().unwrap();

    assert_exactly(&read_all(dir.path()), 1, 3000);
    // Replay from the middle of a segment.
    let mut tail = Vec::new();
    let r = JournalReader::open(dir.path())
        .unwrap()
        .replay_from(1234, |seq, p| tail.push((seq, p.to_vec())))
        .unwrap();
    assert_eq!(
        (r.records, r.replayed, r.next_seq),
        (3000, 3000 - 1233, 3001)
    );
    assert_exactly(&tail, 1234, 3000);
}

#[test]
fn append_allocates_nothing_between_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let policies = [
        ("none", FsyncPolicy::None, 5_000u32),
        (
            "batch",
            FsyncPolicy::Batch {
                records: 16,
                micros: 500,
            },
            5_000,
        ),
        ("always", FsyncPolicy::Always, 200),
    ];
    let payload = [0x5au8; 64];
    for (name, fsync, n) in policies {
        let cfg = JournalConfig {
            segment_size: 1 << 20,
            fsync,
        };
        let (mut j, _) = Journal::open(dir.path().join(name), cfg).unwrap();
        j.append(&payload).unwrap();
        let before = counting::this_thread();
        for _ in 0..n {
            j.append(&payload).unwrap();
            j.append_with(64, |dst| dst.copy_from_slice(&payload))
                .unwrap();
            j.tick().unwrap();
        }
        let allocated = counting::this_thread() - before;
        assert_eq!(
            allocated, 0,
            "{name}: {allocated} allocations in {n} x 2 appends"
        );
        assert_eq!(
            j.segment_count(),
            1,
            "{name}: the window must not include a rotation"
        );
        // The counter does see allocations (so the zero above can fail): rotation allocates
        // the new segment's path.
        let segments = j.segment_count();
        while j.segment_count() == segments {
            j.append(&payload).unwrap();
        }
        assert!(
            counting::this_thread() > before,
            "{name}: rotation must be counted"
        );
    }
}

#[test]
fn reopen_after_clean_close_continues_the_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), small(FsyncPolicy::None)).unwrap();
    append_range(&mut j, 1, 500);
    j.close().unwrap();
    for round in 1..4u64 {
        let (mut j, report) = Journal::open(dir.path(), small(FsyncPolicy::None)).unwrap();
        assert!(report.is_clean(), "{report}");
        assert_eq!(
            (report.first_seq, report.records, report.next_seq),
            (1, 500 * round, 500 * round + 1)
        );
        append_range(&mut j, 500 * round + 1, 500 * (round + 1));
        j.close().unwrap();
    }
    assert_exactly(&read_all(dir.path()), 1, 2000);
}

#[test]
fn reopen_after_drop_without_flush_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3u64 {
        let (mut j, report) = Journal::open(dir.path(), small(FsyncPolicy::None)).unwrap();
        assert!(report.is_clean(), "{report}");
        assert_eq!(report.next_seq, 700 * round + 1);
        append_range(&mut j, 700 * round + 1, 700 * (round + 1));
        drop(j); // no flush, no close: the page cache holds the mapped writes
    }
    assert_exactly(&read_all(dir.path()), 1, 2100);
}

#[test]
fn fsync_policies_sync_when_they_say_and_count_it() {
    // Generous: the machine is shared; nothing here measures speed.
    const WAIT: Duration = Duration::from_secs(30);
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path().join("always"), small(FsyncPolicy::Always)).unwrap();
    let durable = j.durable();
    assert_eq!((j.synced_seq(), durable.get()), (None, 0));
    for seq in 1..=40 {
        j.append(&expected(seq)).unwrap();
        // The sync thread makes it durable; append itself never waits for the disk.
        assert!(
            durable.wait_for(seq, WAIT).unwrap(),
            "seq {seq} never synced"
        );
        assert!(j.synced_seq() >= Some(seq));
    }
    let s = j.stats();
    assert!(
        (1..=40).contains(&s.fsyncs),
        "one sync per group: {}",
        s.fsyncs
    );
    assert_eq!(s.fsync_histogram.total(), s.fsyncs);
    assert!(s.fsync_ns_max >= s.fsync_ns_last && s.fsync_ns_total >= s.fsync_ns_max);
    assert!(s.fsync_ns_max > 0);

    let batch = FsyncPolicy::Batch {
        records: 10,
        micros: 60_000_000,
    };
    // 64 KiB segments: no rotation within these records.
    let cfg = JournalConfig {
        segment_size: 1 << 16,
        fsync: batch,
    };
    let (mut j, _) = Journal::open(dir.path().join("batch"), cfg).unwrap();
    let durable = j.durable();
    for seq in 1..=9 {
        j.append(&expected(seq)).unwrap();
    }
    // Nine pending records are under the count and far younger than 60 s: no sync may
    // happen, however long the thread has had.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!((durable.get(), j.stats().fsyncs), (0, 0));
    assert!(!durable.wait_for(1, Duration::from_millis(20)).unwrap());
    j.append(&expected(10)).unwrap();
    assert!(
        durable.wait_for(10, WAIT).unwrap(),
        "10 pending records sync"
    );
    for seq in 11..=95 {
        j.append(&expected(seq)).unwrap();
    }
    // Every sync covers at least 10 records and at most 9 stay pending.
    assert!(durable.wait_for(86, WAIT).unwrap());
    let s = j.stats();
    assert!((2..=9).contains(&s.fsyncs), "{} syncs", s.fsyncs);
    assert!(durable.get() <= 95);
    assert!(!j.tick().unwrap(), "tick never syncs");
    j.flush().unwrap();
    assert_eq!((durable.get(), j.synced_seq()), (95, Some(95)));

    let timed = FsyncPolicy::Batch {
        records: 1_000_000,
        micros: 2_000,
    };
    let (mut j, _) = Journal::open(dir.path().join("timed"), small(timed)).unwrap();
    let durable = j.durable();
    j.append(b"one").unwrap();
    j.append(b"two").unwrap();
    // The thread syncs once the oldest pending record is 2 ms old, with no tick.
    assert!(durable.wait_for(2, WAIT).unwrap());
    assert_eq!(j.synced_seq(), Some(2));
    j.append(b"three").unwrap();
    assert!(durable.wait_for(3, WAIT).unwrap());
    assert!(j.stats().fsyncs >= 2);

    let (mut j, _) = Journal::open(dir.path().join("none"), small(FsyncPolicy::None)).unwrap();
    let durable = j.durable();
    append_range(&mut j, 1, 200);
    // Under `None` durable means appended (it survives a killed process), and nothing syncs.
    assert_eq!(
        (j.stats().fsyncs, j.synced_seq(), durable.get()),
        (0, None, 200)
    );
    assert!(j.segment_count() > 1 && j.unsynced_segments() == j.segment_count());
    j.flush().unwrap();
    assert_eq!(
        (j.synced_seq(), j.unsynced_segments()),
        (Some(200), 1),
        "flush syncs rotated-out segments too"
    );
}

#[test]
fn fsync_histogram_buckets_and_quantiles() {
    assert_eq!(FsyncHistogram::bucket_of(0), 0);
    assert_eq!(FsyncHistogram::bucket_of(1023), 0);
    assert_eq!(FsyncHistogram::bucket_of(1024), 1);
    assert_eq!(FsyncHistogram::bucket_of(2047), 1);
    assert_eq!(FsyncHistogram::bucket_of(2048), 2);
    assert_eq!(
        FsyncHistogram::bucket_of(u64::MAX),
        FsyncHistogram::BUCKETS - 1
    );
    let mut h = FsyncHistogram::default();
    assert_eq!(h.quantile_upper_ns(500), None);
    for _ in 0..99 {
        h.record(1500);
    }
    h.record(5_000_000);
    assert_eq!(h.quantile_upper_ns(500), Some(2048));
    assert_eq!(h.quantile_upper_ns(990), Some(2048));
    assert_eq!(h.quantile_upper_ns(1000), Some(1 << 23));
}

#[test]
fn open_with_replay_resumes_after_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), small(FsyncPolicy::None)).unwrap();
    append_range(&mut j, 1, 400);
    drop(j);
    let mut seen = Vec::new();
    let (mut j, report) =
        Journal::open_with_replay(dir.path(), small(FsyncPolicy::None), 251, |seq, p| {
            seen.push((seq, p.to_vec()))
        })
        .unwrap();
    assert_eq!(
        (report.records, report.replayed, report.next_seq),
        (400, 150, 401)
    );
    assert_exactly(&seen, 251, 400);
    append_range(&mut j, 401, 450);
    drop(j);

    let err = Journal::open_with_replay(dir.path(), small(FsyncPolicy::None), 452, |_, _| {})
        .unwrap_err();
    assert!(
        matches!(
            err,
            JournalError::JournalBehind {
                requested: 452,
                next: 451
            }
        ),
        "{err}"
    );
    // Replaying from exactly the next sequence number is fine (nothing to replay).
    let (_, r) =
        Journal::open_with_replay(dir.path(), small(FsyncPolicy::None), 451, |_, _| {}).unwrap();
    assert_eq!(r.replayed, 0);

    // A fresh directory with a snapshot elsewhere starts at the snapshot's next seq.
    let fresh = dir.path().join("fresh");
    let (mut j, r) =
        Journal::open_with_replay(&fresh, small(FsyncPolicy::None), 1001, |_, _| {}).unwrap();
    assert_eq!((r.next_seq, j.next_seq()), (1001, 1001));
    assert_eq!(j.append(b"x").unwrap(), 1001);
}

#[test]
fn truncate_before_deletes_only_fully_covered_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), small(FsyncPolicy::None)).unwrap();
    append_range(&mut j, 1, 1000);
    let before = j.segment_count();
    let removed = j.truncate_before(600).unwrap();
    assert!(removed > 0 && j.segment_count() == before - removed);
    let first = j.first_seq();
    assert!(first <= 600 && first > 500, "first retained seq {first}");
    let all_but_active = j.segment_count() - 1;
    assert_eq!(j.truncate_before(u64::MAX).unwrap(), all_but_active);
    assert_eq!(j.segment_count(), 1, "the active segment is never deleted");
    append_range(&mut j, 1001, 1010);
    drop(j);

    let reader = JournalReader::open(dir.path()).unwrap();
    let first = reader.first_seq().unwrap();
    let mut got = Vec::new();
    reader
        .replay_from(first, |s, p| got.push((s, p.to_vec())))
        .unwrap();
    assert_exactly(&got, first, 1010);
    let err = reader.replay_from(first - 1, |_, _| {}).unwrap_err();
    assert!(matches!(err, JournalError::SeqNotRetained { .. }), "{err}");
    let (j, r) = Journal::open(dir.path(), small(FsyncPolicy::None)).unwrap();
    assert!(
        r.is_clean() && r.first_seq == first && j.next_seq() == 1011,
        "{r}"
    );
}

#[test]
fn identical_inputs_give_identical_files_and_replays() {
    let root = tempfile::tempdir().unwrap();
    for name in ["a", "b"] {
        let (mut j, _) = Journal::open(root.path().join(name), small(FsyncPolicy::None)).unwrap();
        append_range(&mut j, 1, 1500);
        j.close().unwrap();
    }
    let files = |d: &str| {
        let mut v: Vec<_> = std::fs::read_dir(root.path().join(d))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name(), std::fs::read(e.path()).unwrap())
            })
            .collect();
        v.sort();
        v
    };
    assert!(
        files("a") == files("b"),
        "journal files must be bit-identical"
    );
    let first = read_all(&root.path().join("a"));
    let second = read_all(&root.path().join("a"));
    assert_eq!(first, second);
    assert_exactly(&first, 1, 1500);
}

#[test]
fn payload_limits_and_config_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), small(FsyncPolicy::None)).unwrap();
    assert!(matches!(j.append(b""), Err(JournalError::EmptyPayload)));
    let max = j.max_payload();
    assert_eq!(max, 4096 - 64 - 16);
    let err = j.append(&vec![1; max + 1]).unwrap_err();
    assert!(
        matches!(err, JournalError::PayloadTooLarge { len, max: m } if len == max + 1 && m == max)
    );
    assert_eq!(j.next_seq(), 1, "a refused append consumes no seq");
    j.append(b"small").unwrap();
    j.append(&vec![7; max]).unwrap(); // a full segment of its own
    let seq = j
        .append_with(5, |dst| dst.copy_from_slice(b"hello"))
        .unwrap();
    assert_eq!(seq, 3);
    drop(j);
    let mut got = Vec::new();
    JournalReader::open(dir.path())
        .unwrap()
        .replay_all(|_, p| got.push(p.to_vec()))
        .unwrap();
    assert_eq!(
        got,
        vec![b"small".to_vec(), vec![7; max], b"hello".to_vec()]
    );

    for bad in [0, 4095, 4100, (1 << 30) + 8] {
        let cfg = JournalConfig {
            segment_size: bad,
            fsync: FsyncPolicy::None,
        };
        assert!(matches!(
            Journal::open(dir.path(), cfg),
            Err(JournalError::InvalidConfig(_))
        ));
    }
    for fsync in [
        FsyncPolicy::Batch {
            records: 0,
            micros: 1,
        },
        FsyncPolicy::Batch {
            records: 1,
            micros: 0,
        },
    ] {
        assert!(matches!(
            Journal::open(dir.path(), small(fsync)),
            Err(JournalError::InvalidConfig(_))
        ));
    }
}

#[test]
fn a_larger_segment_size_on_reopen_applies_to_new_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), small(FsyncPolicy::None)).unwrap();
    append_range(&mut j, 1, 100);
    drop(j);
    let big = JournalConfig {
        segment_size: 1 << 16,
        fsync: FsyncPolicy::None,
    };
    let (mut j, r) = Journal::open(dir.path(), big).unwrap();
    assert!(r.is_clean());
    j.append(&vec![9; 20_000]).unwrap(); // larger than the old 4 KiB segments can hold
    append_range(&mut j, 102, 300);
    drop(j);
    let mut n = 0;
    JournalReader::open(dir.path())
        .unwrap()
        .replay_all(|_, _| n += 1)
        .unwrap();
    assert_eq!(n, 300);
}

#[test]
fn an_interrupted_segment_creation_is_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), small(FsyncPolicy::None)).unwrap();
    append_range(&mut j, 1, 10);
    drop(j);
    let tmp = dir.path().join("00000000000000000011.wal.tmp");
    std::fs::write(&tmp, b"half-made").unwrap();
    let (j, r) = Journal::open(dir.path(), small(FsyncPolicy::None)).unwrap();
    assert!(
        r.is_clean() && r.removed_temp_files == vec![tmp.clone()],
        "{r}"
    );
    assert!(!tmp.exists());
    assert_eq!(j.next_seq(), 11);
}

#[test]
fn snapshots_round_trip_fall_back_and_are_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(load_latest_snapshot(d).unwrap().snapshot, None);
    let store = SnapshotStore::new(d, 3).unwrap();
    for seq in [100u64, 200, 300, 400, 500] {
        let w = store.write(seq, &expected(seq)).unwrap();
        assert_eq!(w.oldest_kept_seq, seq.saturating_sub(200).max(100));
    }
    let seqs: Vec<u64> = list_snapshots(d)
        .unwrap()
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(seqs, vec![300, 400, 500]);
    let load = store.load_latest().unwrap();
    let snap = load.snapshot.clone().unwrap();
    assert_eq!((snap.seq, snap.body), (500, expected(500)));
    assert!(load.rejected.is_empty());

    // Corrupt the newest body: fall back to 400 and say why.
    let newest = d.join("snapshot-00000000000000000500.snap");
    let mut bytes = std::fs::read(&newest).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&newest, &bytes).unwrap();
    let load = load_latest_snapshot(d).unwrap();
    assert_eq!(
        load.snapshot.as_ref().map(|s| (s.seq, s.body.clone())),
        Some((400, expected(400)))
    );
    assert_eq!(load.rejected.len(), 1);
    assert_eq!(load.rejected[0].seq, 500);
    assert!(load.to_string().contains("REJECTED"), "{load}");

    // Truncate 400 too: fall back to 300.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(d.join("snapshot-00000000000000000400.snap"))
        .unwrap();
    f.set_len(30).unwrap();
    let load = load_latest_snapshot(d).unwrap();
    assert_eq!(load.snapshot.map(|s| s.seq), Some(300));
    assert_eq!(load.rejected.len(), 2);

    // A leftover temp file is ignored by load and removed by the next write's pruning.
    std::fs::write(d.join("snapshot-00000000000000000600.snap.tmp"), b"partial").unwrap();
    assert_eq!(
        load_latest_snapshot(d).unwrap().snapshot.map(|s| s.seq),
        Some(300)
    );
    let w = store.write(700, b"seven hundred").unwrap();
    assert!(w
        .removed
        .iter()
        .any(|p| p.to_string_lossy().ends_with(".snap.tmp")));
    assert!(!d.join("snapshot-00000000000000000600.snap.tmp").exists());
    // Rewriting the same seq replaces it atomically.
    write_snapshot(d, 700, b"seven hundred, again").unwrap();
    let s = load_latest_snapshot(d).unwrap().snapshot.unwrap();
    assert_eq!(
        (s.seq, s.body.as_slice()),
        (700, &b"seven hundred, again"[..])
    );
    assert!(matches!(
        SnapshotStore::new(d, 0),
        Err(JournalError::InvalidConfig(_))
    ));
}

// ---------------------------------------------------------------------------------------
// Real crash: SIGKILL of a child process that is appending.

const CHILD_ENV: &str = "TC_JOURNAL_CRASH_CHILD_DIR";
const CRASH_SEGMENT: u64 = 64 * 1024;

/// Child mode (does nothing in a normal test run): append forever with `FsyncPolicy::None`,
/// printing `ACK <seq>` after each append returns, until killed (or 60 s pass).
#[test]
fn crash_child_appends() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let cfg = JournalConfig {
        segment_size: CRASH_SEGMENT,
        fsync: FsyncPolicy::None,
    };
    let (mut j, _) = Journal::open(&dir, cfg).expect("child open");
    let mut out = std::io::stdout().lock();
    let mut buf = Vec::with_capacity(512);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let seq = j.next_seq();
        payload_for(seq, &mut buf);
        let got = j.append(&buf).expect("child append");
        assert_eq!(got, seq);
        if writeln!(out, "ACK {seq}")
            .and_then(|()| out.flush())
            .is_err()
        {
            break;
        }
    }
}

#[test]
fn sigkill_during_appends_loses_no_acknowledged_record() {
    let trials: u64 = std::env::var("TC_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let seed: u64 = std::env::var("TC_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(7, |d| d.as_nanos() as u64)
        });
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut total_acked = 0u64;
    for trial in 0..trials {
        let ctx = format!("seed {seed} (TC_CRASH_SEED), trial {trial}");
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child_appends",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let max_acked = Arc::new(AtomicU64::new(0));
        let acks = Arc::new(AtomicU64::new(0));
        let reader = {
            let (max_acked, acks) = (Arc::clone(&max_acked), Arc::clone(&acks));
            std::thread::spawn(move || {
                let mut r = BufReader::new(stdout);
                let mut line = String::new();
                loop {
                    line.clear();
                    match r.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    // A line cut by the kill has no newline: its append returned, but it was
                    // never fully acknowledged; ignore it.
                    if let Some(seq) = line.strip_suffix('\n').and_then(|l| l.strip_prefix("ACK "))
                    {
                        let seq: u64 = seq.parse().expect("ACK line");
                        max_acked.fetch_max(seq, Ordering::SeqCst);
                        acks.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        };
        // Wait until the child is appending, then kill it at a random moment.
        let start = Instant::now();
        while acks.load(Ordering::SeqCst) == 0 && start.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_micros(rng.below(150_000)));
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        reader.join().unwrap();
        assert!(
            !status.success(),
            "{ctx}: child must have been killed, not finished"
        );
        let acked = max_acked.load(Ordering::SeqCst);
        assert!(acked > 0, "{ctx}: the child acknowledged nothing");
        total_acked += acks.load(Ordering::SeqCst);

        let cfg = JournalConfig {
            segment_size: CRASH_SEGMENT,
            fsync: FsyncPolicy::None,
        };
        let (j, report) = Journal::open(dir.path(), cfg).unwrap();
        eprintln!("{ctx}: max acknowledged seq {acked}; recovery: {report}");
        if let Some(d) = &report.damage {
            // Only a record torn by the kill (never acknowledged) may be cut.
            assert_eq!(d.records_dropped, 0, "{ctx}: {report}");
            assert!(d.later_segments.is_empty(), "{ctx}: {report}");
        }
        assert!(
            report.next_seq > acked,
            "{ctx}: acknowledged seq {acked} lost: {report}"
        );
        drop(j);
        let records = read_all(dir.path());
        assert_exactly(&records, 1, report.next_seq - 1);
    }
    assert!(total_acked >= trials, "seed {seed}");
}
