//! `journal::snapshot`: snapshot files: opaque bodies (the engine's serialized books and
//! sessions) covering every command up to a sequence number, written atomically, loaded with
//! fallback, pruned to the newest K.
//!
//! Invariants:
//! * A file named `snapshot-<seq>.snap` is either absent or complete: it is written as
//!   `<name>.tmp`, fsynced, renamed into place, and the directory is fsynced. A crash leaves at
//!   worst a `.tmp` file, which loading ignores and pruning removes.
//! * Loading never returns a body whose header or body CRC fails, or whose header disagrees
//!   with its file name; such files are reported ([`RejectedSnapshot`]) and the next older
//!   one is tried.
//!
//! Cost: writing is one `write` of header + body, `fsync` of the file, `rename`, `fsync` of
//! the directory (two device flushes). Loading reads newest-first until one validates (one
//! CRC pass over the body). Snapshots are taken every N commands, off the per-message path.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::format::{
    decode_snapshot, encode_snapshot_header, parse_snapshot_name, snapshot_file_name,
    SnapshotProblem, SNAPSHOT_HEADER_LEN, SNAPSHOT_TMP_SUFFIX,
};
use super::segment::{io_err, sync_dir};
use super::JournalError;

/// A valid snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// It covers every command with a sequence number up to and including this one; replay
    /// resumes at `seq + 1`.
    pub seq: u64,
    /// The opaque body, as given to [`write_snapshot`].
    pub body: Vec<u8>,
    /// The file it came from.
    pub path: PathBuf,
}

/// A snapshot file that failed validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedSnapshot {
    /// The file.
    pub path: PathBuf,
    /// The sequence number in its name.
    pub seq: u64,
    /// What was wrong.
    pub problem: SnapshotProblem,
}

/// The outcome of [`load_latest_snapshot`]: the newest valid snapshot (if any) and every newer
/// one that had to be skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotLoad {
    /// The newest snapshot that validated.
    pub snapshot: Option<Snapshot>,
    /// Newer snapshots that did not validate, newest first.
    pub rejected: Vec<RejectedSnapshot>,
}

impl fmt::Display for SnapshotLoad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.snapshot {
            Some(s) => write!(
                f,
                "snapshot {} (seq {}, {} bytes)",
                s.path.display(),
                s.seq,
                s.body.len()
            )?,
            None => write!(f, "no valid snapshot")?,
        }
        for r in &self.rejected {
            write!(f, "; REJECTED {} ({})", r.path.display(), r.problem)?;
        }
        Ok(())
    }
}

/// Snapshot files of `dir` as `(seq, path)`, oldest first. A missing directory has none.
pub fn list_snapshots(dir: &Path) -> Result<Vec<(u64, PathBuf)>, JournalError> {
    let mut out = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err(dir)(e)),
    };
    for entry in rd {
        let entry = entry.map_err(io_err(dir))?;
        if let Some(seq) = entry.file_name().to_str().and_then(parse_snapshot_name) {
            if entry.file_type().map_err(io_err(dir))?.is_file() {
                out.push((seq, entry.path()));
            }
        }
    }
    out.sort_by_key(|(seq, _)| *seq);
    Ok(out)
}

/// Writes the snapshot covering commands up to `seq` atomically (temp file, fsync, rename,
/// directory fsync) and returns its path. An existing snapshot for the same `seq` is
/// replaced atomically.
pub fn write_snapshot(dir: &Path, seq: u64, body: &[u8]) -> Result<PathBuf, JournalError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let path = dir.join(snapshot_file_name(seq));
    let tmp = dir.join(format!("{}.tmp", snapshot_file_name(seq)));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    file.write_all(&encode_snapshot_header(seq, body))
        .map_err(io_err(&tmp))?;
    file.write_all(body).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    sync_dir(dir)?;
    Ok(path)
}

/// Loads the newest snapshot of `dir` that validates, skipping (and reporting) newer ones
/// that do not. I/O errors other than a file vanishing meanwhile are returned as errors.
pub fn load_latest_snapshot(dir: &Path) -> Result<SnapshotLoad, JournalError> {
    load_latest_snapshot_upto(dir, u64::MAX)
}

/// [`load_latest_snapshot`] among the snapshots with `seq <= max_seq` only (newer files are
/// neither read nor reported). For start-up when the journal ends before the newest snapshot
/// (`Journal::open_with_replay` failed with `JournalBehind { next, .. }`, e.g. after damage
/// cut the journal): reload with `max_seq = next - 1`, so that the snapshot and the journal
/// tail join up.
pub fn load_latest_snapshot_upto(dir: &Path, max_seq: u64) -> Result<SnapshotLoad, JournalError> {
    let mut rejected = Vec::new();
    let all = list_snapshots(dir)?;
    for (seq, path) in all.into_iter().rev().filter(|(s, _)| *s <= max_seq) {
        let mut bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(&path)(e)),
        };
        match decode_snapshot(&bytes, seq) {
            Ok(_) => {
                bytes.drain(..SNAPSHOT_HEADER_LEN);
                return Ok(SnapshotLoad {
                    snapshot: Some(Snapshot {
                        seq,
                        body: bytes,
                        path,
                    }),
                    rejected,
                });
            }
            Err(problem) => rejected.push(RejectedSnapshot { path, seq, problem }),
        }
    }
    Ok(SnapshotLoad {
        snapshot: None,
        rejected,
    })
}

/// Deletes all but the `keep` newest snapshots of `dir` (by sequence number, valid or not)
/// and any leftover `.snap.tmp` file; returns the deleted paths. `keep` must be at least 1.
pub fn prune_snapshots(dir: &Path, keep: usize) -> Result<Vec<PathBuf>, JournalError> {
    if keep == 0 {
        return Err(JournalError::InvalidConfig(
            "snapshots to keep must be at least 1",
        ));
    }
    let list = list_snapshots(dir)?;
    let mut removed = Vec::new();
    let excess = list.len().saturating_sub(keep);
    for (_, path) in list.into_iter().take(excess) {
        remove_if_present(&path)?;
        removed.push(path);
    }
    if let Ok(rd) = fs::read_dir(dir) {
        for entry in rd.flatten() {
            let name = entry.file_name();
            let stale = name.to_str().is_some_and(|n| {
                n.ends_with(SNAPSHOT_TMP_SUFFIX)
                    && n.strip_suffix(".tmp")
                        .and_then(parse_snapshot_name)
                        .is_some()
            });
            if stale {
                remove_if_present(&entry.path())?;
                removed.push(entry.path());
            }
        }
    }
    if !removed.is_empty() {
        sync_dir(dir)?;
    }
    Ok(removed)
}

fn remove_if_present(path: &Path) -> Result<(), JournalError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(path)(e)),
        _ => Ok(()),
    }
}

/// What [`SnapshotStore::write`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotWrite {
    /// The new snapshot file.
    pub path: PathBuf,
    /// Older snapshots deleted to keep the configured number.
    pub removed: Vec<PathBuf>,
    /// Sequence number of the oldest snapshot still kept: journal records up to it are no
    /// longer needed, so `Journal::truncate_before(oldest_kept_seq + 1)` is safe.
    pub oldest_kept_seq: u64,
}

/// A snapshot directory with a retention count.
#[derive(Clone, Debug)]
pub struct SnapshotStore {
    dir: PathBuf,
    keep: usize,
}

impl SnapshotStore {
    /// A store in `dir` (created if missing) that keeps the `keep` newest snapshots (`keep >= 1`).
    pub fn new(dir: impl AsRef<Path>, keep: usize) -> Result<Self, JournalError> {
        if keep == 0 {
            return Err(JournalError::InvalidConfig(
                "snapshots to keep must be at least 1",
            ));
        }
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(Self { dir, keep })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes a snapshot atomically, then prunes to the newest `keep`.
    ///
    /// Call `Journal::flush` first: a snapshot must never cover commands the journal could
    /// lose, or the journal would end before the snapshot after a power loss.
    pub fn write(&self, seq: u64, body: &[u8]) -> Result<SnapshotWrite, JournalError> {
        let path = write_snapshot(&self.dir, seq, body)?;
        let removed = prune_snapshots(&self.dir, self.keep)?;
        let oldest_kept_seq = list_snapshots(&self.dir)?.first().map_or(seq, |(s, _)| *s);
        Ok(SnapshotWrite {
            path,
            removed,
            oldest_kept_seq,
        })
    }

    /// The newest valid snapshot, with fallback; see [`load_latest_snapshot`].
    pub fn load_latest(&self) -> Result<SnapshotLoad, JournalError> {
        load_latest_snapshot(&self.dir)
    }
}
