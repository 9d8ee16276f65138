//! Group commit and the directory lock, on real files and real processes.
//!
//! * The sync thread makes every record durable under `Always` and `Batch`, across many
//!   segment rotations (small segments), and retires rotated-out segments only once a sync
//!   covered them; `DurableSeq` never runs ahead of what was appended, only grows, and its
//!   waiters and waker callback see every advance; closing, dropping and reopening keep every
//!   record; `truncate_before` while the thread runs is safe.
//! * A waiter for a record that can never become durable (the journal was dropped) gets
//!   `Closed` instead of hanging.
//! * `Journal::open` on a directory another `Journal` holds fails with `Locked` naming the
//!   directory and the holder's pid, in the same process and from another process; the lock
//!   goes away on close, on drop and when the holding process is killed.
//!
//! Nothing here depends on timing: waits use long timeouts and only assert that a state is
//! eventually reached (or, for "nothing synced yet", a state that cannot change before a
//! 60-second batch deadline).

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Rng;
use tradecore_engine::journal::{
    FsyncPolicy, Journal, JournalConfig, JournalError, JournalReader, LOCK_FILE,
};

const WAIT: Duration = Duration::from_secs(60);

fn payload(seq: u64) -> Vec<u8> {
    let mut r = Rng(seq.wrapping_mul(0x9e37_79b9));
    let len = 1 + r.below(200) as usize;
    (0..len).map(|_| r.next() as u8).collect()
}

fn cfg(fsync: FsyncPolicy) -> JournalConfig {
    JournalConfig {
        segment_size: 4096,
        fsync,
    }
}

fn read_all(dir: &Path) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let r = JournalReader::open(dir)
        .unwrap()
        .replay_all(|s, p| out.push((s, p.to_vec())))
        .unwrap();
    assert!(r.is_clean(), "{r}");
    out
}

fn assert_records(dir: &Path, last: u64) {
    let all = read_all(dir);
    assert_eq!(all.len() as u64, last);
    for (i, (seq, p)) in all.iter().enumerate() {
        assert_eq!((*seq, p), (i as u64 + 1, &payload(i as u64 + 1)));
    }
}

const POLICIES: [(&str, FsyncPolicy); 3] = [
    ("always", FsyncPolicy::Always),
    (
        "batch_count",
        FsyncPolicy::Batch {
            records: 7,
            micros: 60_000_000,
        },
    ),
    (
        "batch_time",
        FsyncPolicy::Batch {
            records: 1_000_000,
            micros: 300,
        },
    ),
];

#[test]
fn the_sync_thread_follows_rotations_and_retires_synced_segments() {
    for (name, policy) in POLICIES {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(dir.path(), cfg(policy)).unwrap();
        let durable = j.durable();
        let mut last_seen = 0;
        for seq in 1..=1500u64 {
            assert_eq!(j.append(&payload(seq)).unwrap(), seq);
            let d = durable.get();
            assert!(
                d >= last_seen && d <= seq,
                "{name}: durable {d} after {seq}"
            );
            last_seen = d;
            if seq % 250 == 0 {
                // Wait mid-stream too, so syncs land in the middle of segments as well.
                let target = if matches!(policy, FsyncPolicy::Batch { records: 7, .. }) {
                    seq - 6
                } else {
                    seq
                };
                assert!(durable.wait_for(target, WAIT).unwrap(), "{name}: {seq}");
            }
        }
        assert!(j.segment_count() > 30, "{name}: rotations expected");
        let target = if matches!(policy, FsyncPolicy::Batch { records: 7, .. }) {
            1494
        } else {
            1500
        };
        assert!(durable.wait_for(target, WAIT).unwrap(), "{name}");
        if target == 1500 {
            // Once a sync covered everything, only the active segment can hold unsynced data.
            assert_eq!(j.unsynced_segments(), 1, "{name}");
        }
        let stats = j.stats();
        assert!(
            stats.fsyncs >= 1 && stats.fsyncs <= 1500,
            "{name}: {stats:?}"
        );
        let closed = j.close().unwrap();
        assert_eq!(closed.records, 1500);
        assert_eq!(durable.get(), 1500, "{name}: close syncs everything");
        assert_records(dir.path(), 1500);

        // Reopen: recovered records count as durable, appends continue.
        let (mut j, report) = Journal::open(dir.path(), cfg(policy)).unwrap();
        assert!(report.is_clean(), "{name}: {report}");
        let durable = j.durable();
        assert_eq!((durable.get(), j.synced_seq()), (1500, Some(1500)));
        for seq in 1501..=1600 {
            j.append(&payload(seq)).unwrap();
        }
        drop(j); // no flush: like a killed process
        assert_records(dir.path(), 1600);
    }
}

#[test]
fn waiters_and_the_waker_see_every_advance_in_order() {
    for (name, policy) in [POLICIES[0], POLICIES[2]] {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(dir.path(), cfg(policy)).unwrap();
        let woken: Arc<Mutex<Vec<u64>>> = Arc::default();
        let w = Arc::clone(&woken);
        j.set_durable_waker(Arc::new(move |d| w.lock().unwrap().push(d)));
        let durable = j.durable();
        let reached = Arc::new(AtomicU64::new(0));
        let waiter = {
            let (durable, reached) = (durable.clone(), Arc::clone(&reached));
            std::thread::spawn(move || {
                // A publisher under `always`: hold each report until its seq is durable.
                for seq in 1..=800u64 {
                    assert!(durable.wait_for(seq, WAIT).unwrap(), "seq {seq}");
                    assert!(durable.get() >= seq);
                    reached.store(seq, Ordering::SeqCst);
                }
            })
        };
        for seq in 1..=800u64 {
            j.append(&payload(seq)).unwrap();
            if seq % 100 == 0 {
                std::thread::yield_now();
            }
        }
        waiter.join().unwrap();
        assert_eq!(reached.load(Ordering::SeqCst), 800, "{name}");
        // The waker runs on the sync thread just after the value is published: give it time.
        let t0 = std::time::Instant::now();
        while woken.lock().unwrap().last() != Some(&800) && t0.elapsed() < WAIT {
            std::thread::sleep(Duration::from_millis(1));
        }
        let calls = woken.lock().unwrap().clone();
        assert!(!calls.is_empty(), "{name}: the waker was never called");
        assert!(
            calls.windows(2).all(|w| w[0] < w[1]),
            "{name}: waker values must increase: {calls:?}"
        );
        assert_eq!(calls.last(), Some(&800), "{name}");
        j.close().unwrap();
    }
}

#[test]
fn waiting_for_a_record_that_never_comes_ends_when_the_journal_goes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), cfg(FsyncPolicy::Always)).unwrap();
    j.append(b"x").unwrap();
    let durable = j.durable();
    assert!(durable.wait_for(1, WAIT).unwrap());
    let waiter = {
        let d = durable.clone();
        std::thread::spawn(move || d.wait_for(2, WAIT))
    };
    std::thread::sleep(Duration::from_millis(20));
    drop(j);
    assert!(matches!(waiter.join().unwrap(), Err(JournalError::Closed)));
    assert_eq!(durable.get(), 1, "the handle outlives the journal");
    assert!(durable.wait_for(1, Duration::ZERO).unwrap());
    assert!(!durable.failed());
}

#[test]
fn truncate_before_while_the_thread_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), cfg(FsyncPolicy::Always)).unwrap();
    for seq in 1..=600u64 {
        j.append(&payload(seq)).unwrap();
        if seq % 100 == 0 {
            j.flush().unwrap();
            let removed = j.truncate_before(seq + 1).unwrap();
            assert!(removed > 0);
            assert!(j.first_seq() <= seq + 1);
        }
    }
    assert!(j.durable().wait_for(600, WAIT).unwrap());
    let first = j.first_seq();
    j.close().unwrap();
    let mut got = Vec::new();
    let r = JournalReader::open(dir.path())
        .unwrap()
        .replay_all(|s, p| got.push((s, p.to_vec())))
        .unwrap();
    assert!(r.is_clean(), "{r}");
    assert_eq!(got.first().map(|g| g.0), Some(first));
    assert_eq!(got.last().map(|g| g.0), Some(600));
    for (seq, p) in got {
        assert_eq!(p, payload(seq));
    }
}

#[test]
fn a_second_open_in_the_same_process_is_refused_until_the_first_goes() {
    let dir = tempfile::tempdir().unwrap();
    for policy in [FsyncPolicy::None, FsyncPolicy::Always] {
        let j = reopen(dir.path(), cfg(policy));
        let err = Journal::open(dir.path(), cfg(policy)).unwrap_err();
        match &err {
            JournalError::Locked { dir: d, pid } => {
                assert_eq!(d, dir.path());
                assert_eq!(*pid, Some(std::process::id()));
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains(&dir.path().display().to_string())
                && msg.contains(&std::process::id().to_string()),
            "{msg}"
        );
        // open_with_replay is refused the same way, before reading anything.
        assert!(matches!(
            Journal::open_with_replay(dir.path(), cfg(policy), 1, |_, _| {}),
            Err(JournalError::Locked { .. })
        ));
        drop(j);
        let j = reopen(dir.path(), cfg(policy));
        j.close().unwrap();
    }
    assert!(dir.path().join(LOCK_FILE).exists());
}

/// Opens right after the previous holder closed or died: the lock must be free at once (it is
/// a POSIX record lock, so a child process spawned meanwhile by another test never shares it).
fn reopen(dir: &Path, config: JournalConfig) -> Journal {
    Journal::open(dir, config)
        .unwrap_or_else(|e| panic!("reopen: {e}"))
        .0
}

#[test]
fn another_path_to_a_held_directory_is_refused_too() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("journal");
    std::fs::create_dir(&real).unwrap();
    let link = dir.path().join("alias");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let j = reopen(&real, cfg(FsyncPolicy::None));
    assert!(matches!(
        Journal::open(&link, cfg(FsyncPolicy::None)),
        Err(JournalError::Locked { .. })
    ));
    // The refused attempt did not disturb the holder's lock.
    assert!(matches!(
        Journal::open(&real, cfg(FsyncPolicy::None)),
        Err(JournalError::Locked { .. })
    ));
    drop(j);
    reopen(&link, cfg(FsyncPolicy::None)).close().unwrap();
}

// ---------------------------------------------------------------------------------------
// Another process holding the lock.

const CHILD_ENV: &str = "TC_JOURNAL_LOCK_CHILD_DIR";

/// Child mode (does nothing in a normal run): open the journal, say so, wait to be killed.
#[test]
fn lock_child_holds_the_journal() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (mut j, _) = Journal::open(
        &dir,
        cfg(FsyncPolicy::Batch {
            records: 16,
            micros: 1000,
        }),
    )
    .expect("child open");
    j.append(b"child").expect("child append");
    println!("OPEN");
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn another_process_holding_the_directory_is_named_and_its_death_frees_it() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "lock_child_holds_the_journal",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let opened = lines.any(|l| l.is_ok_and(|l| l.contains("OPEN")));
    assert!(opened, "the child did not open the journal");
    let err = Journal::open(dir.path(), cfg(FsyncPolicy::None)).unwrap_err();
    match err {
        JournalError::Locked { dir: d, pid } => {
            assert_eq!(d, dir.path());
            assert_eq!(pid, Some(child.id()));
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    child.kill().unwrap(); // SIGKILL: no destructor runs, the kernel drops the lock
    child.wait().unwrap();
    let j = reopen(dir.path(), cfg(FsyncPolicy::None));
    assert_eq!(j.next_seq(), 2, "the child's record survived its SIGKILL");
    j.close().unwrap();
}
