//! `journal`: the venue's write-ahead journal of inbound commands and its snapshots. The
//! file formats are specified in `docs/journal.md`; this module owns them.
//!
//! Payloads are opaque bytes (the engine stores encoded commands); the journal gives each one
//! the next sequence number, a length and a CRC32, and appends it to memory-mapped segment
//! files that rotate at a configured size.
//!
//! ```text
//! dir/00000000000000000001.wal   segment: 64-byte header, then records (8-byte aligned)
//! dir/00000000000000052429.wal     record: crc u32 | len u32 | seq u64 | payload | zero pad
//! dir/snapshot-00000000000000050000.snap   40-byte header + opaque body (SnapshotStore)
//! ```
//!
//! * [`Journal`]: the single writer. `open` scans and repairs the directory (cutting a torn
//!   or corrupt tail at the last valid record and reporting it in a [`RecoveryReport`]),
//!   then `append` copies records into the mapped active segment.
//! * [`JournalReader`]: read-only replay from any retained sequence number.
//! * [`snapshot`]: atomic snapshot files with fallback and retention.
//!
//! # Invariants
//!
//! * Sequence numbers are strictly consecutive across all segments; a segment is named by its
//!   first sequence number, so the names alone give the order.
//! * Everything after the last record of the active segment is zero. Recovery restores this
//!   (it zeroes what it cuts off) so that later appends can never be followed by stale
//!   records.
//! * A record's length field is written last, so a process killed mid-append leaves either
//!   a complete record or a zero length (which recovery reports and cuts).
//! * No file content makes `open`, the reader or snapshot loading panic.
//! * One `Journal` per directory at a time (enforced by the directory lock), and nothing else
//!   writes its files (this is what makes the memory maps sound; see `segment.rs`).
//! * The durable sequence number only grows and never passes the last appended one.
//!
//! # Durability ([`FsyncPolicy`]) and group commit
//!
//! `append` never waits on the disk: it copies the record into the shared mapping and
//! returns. Under `Batch` and `Always` a background thread (`sync`, named `journal-sync`)
//! `fdatasync`s the written segments and publishes how far that got ([`DurableSeq`], from
//! [`Journal::durable`]); records appended during a sync go into the next one (group commit).
//!
//! | policy | synced by | process killed (SIGKILL) | power loss / kernel crash |
//! |---|---|---|---|
//! | `None` | only `flush`/`close` | nothing lost | everything since the kernel last wrote the pages back (tens of seconds by default) |
//! | `Batch { records, micros }` | the sync thread, at `records` pending or when the oldest pending is `micros` old | nothing lost | at most the records not covered by a completed sync (one batch) |
//! | `Always` | the sync thread, continuously | nothing lost | nothing acknowledged, if acknowledgements wait until [`DurableSeq::get`] covers them |
//!
//! A killed process loses nothing with any policy because the records are in the page cache
//! as soon as they are copied into the shared mapping; the kernel writes them back after the
//! process dies. `docs/journal.md` has the measured figures.
//!
//! One `Journal` per directory is enforced by a lock on `<dir>/LOCK` (`lock.rs`): a second
//! open fails with [`JournalError::Locked`] naming the holder's pid.
//!
//! # Cost
//!
//! `append` of a 64-byte payload: one bounds check, a 64-byte copy, a CRC32 of 76 bytes, four
//! small stores, one atomic store of the sequence number and, under `Always`, an `unpark` of
//! the sync thread (an atomic swap; a futex wake only when it sleeps); under `Batch` two
//! relaxed loads and an `unpark` once per batch. No allocation and no system call besides the
//! page fault on the first touch of each 4 KiB page (and a re-fault of the page a concurrent
//! writeback write-protected). Rotation (one per `segment_size` bytes) creates, sizes and maps
//! a new file without syncing. Replay is one CRC pass over the mapped files.

pub mod format;
mod lock;
mod recovery;
mod segment;
pub mod snapshot;
mod sync;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{compiler_fence, AtomicBool, Ordering};
use std::sync::Arc;

use memmap2::MmapMut;

pub use format::{max_payload, padded_record_len, HeaderProblem, SnapshotProblem};
pub use recovery::{Damage, DamageReason, JournalReader, RecoveryReport};
pub use snapshot::{
    list_snapshots, load_latest_snapshot, load_latest_snapshot_upto, prune_snapshots,
    write_snapshot, RejectedSnapshot, Snapshot, SnapshotLoad, SnapshotStore, SnapshotWrite,
};

use format::{
    parse_segment_name, segment_size_ok, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN, SEGMENT_TMP_SUFFIX,
};
pub use lock::{lock_path, LOCK_FILE};
pub use sync::{DurableSeq, DurableWaker};

use lock::DirLock;
use recovery::{list_segments, scan};
use segment::{create_segment, io_err, map_write, quarantine_path, sync_dir};
use sync::{SegFile, Shared, SyncThread};

/// Errors of the journal and snapshot files.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// An operating-system call failed on this path.
    #[error("journal I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A configuration value is out of range.
    #[error("invalid journal configuration: {0}")]
    InvalidConfig(&'static str),
    /// Records must carry at least one byte (a zero length marks the end of the data).
    #[error("a journal record needs a payload of at least one byte")]
    EmptyPayload,
    /// The payload does not fit in one segment.
    #[error("payload of {len} bytes exceeds the {max}-byte maximum for this segment size")]
    PayloadTooLarge {
        /// The payload's length.
        len: usize,
        /// The largest accepted.
        max: usize,
    },
    /// The next sequence number would overflow `u64`.
    #[error("journal sequence numbers are exhausted")]
    SeqExhausted,
    /// An earlier sync failed: whether written records reached the disk is unknown, so the
    /// journal refuses further work (reopen it to recover from what is on disk).
    #[error("journal is poisoned: an earlier sync failed")]
    Poisoned,
    /// Another `Journal` (in this process or another one) has the directory open.
    #[error(
        "journal directory {} is in use by {} (lock file {})",
        dir.display(),
        match pid { Some(p) => format!("process {p}"), None => "another process".to_owned() },
        lock_path(dir).display()
    )]
    Locked {
        /// The journal directory.
        dir: PathBuf,
        /// The holder's pid, as written in the lock file (`None` if unreadable).
        pid: Option<u32>,
    },
    /// The journal was closed or dropped before the awaited record became durable.
    #[error("journal is closed")]
    Closed,
    /// Replay was asked to start before the first retained record.
    #[error("seq {requested} is not retained: the journal starts at seq {first}")]
    SeqNotRetained {
        /// The first sequence number asked for.
        requested: u64,
        /// The first one retained.
        first: u64,
    },
    /// Replay was asked to start after the end of the journal (e.g. a snapshot newer than the
    /// journal): records the caller relies on are missing. Nothing was modified.
    #[error("journal ends before seq {requested}: its next seq is {next}")]
    JournalBehind {
        /// The first sequence number asked for.
        requested: u64,
        /// The journal's next sequence number.
        next: u64,
    },
}

/// When appended records are forced to stable storage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Never by the journal (the kernel writes pages back on its own schedule); explicit
    /// [`Journal::flush`] still syncs.
    #[default]
    None,
    /// Group commit: sync when `records` records are pending, or on the first
    /// [`Journal::append`] or [`Journal::tick`] at least `micros` microseconds after the
    /// oldest pending record was appended. Both must be at least 1.
    Batch {
        /// Pending records that trigger a sync.
        records: u32,
        /// Age of the oldest pending record that triggers a sync.
        micros: u32,
    },
    /// Sync every record before `append` returns.
    Always,
}

/// Journal settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalConfig {
    /// Size of each segment file in bytes: a multiple of 8 in `[4096, 1 GiB]`. Existing
    /// segments keep the size they were created with.
    pub segment_size: u64,
    /// Durability policy.
    pub fsync: FsyncPolicy,
}

impl Default for JournalConfig {
    fn default() -> Self {
        Self {
            segment_size: 64 << 20,
            fsync: FsyncPolicy::None,
        }
    }
}

impl JournalConfig {
    /// Checks the ranges documented on the fields.
    pub fn validate(&self) -> Result<(), JournalError> {
        if !segment_size_ok(self.segment_size) {
            return Err(JournalError::InvalidConfig(
                "segment_size must be a multiple of 8 between 4096 and 1 GiB",
            ));
        }
        if let FsyncPolicy::Batch { records, micros } = self.fsync {
            if records == 0 || micros == 0 {
                return Err(JournalError::InvalidConfig(
                    "batch fsync needs records >= 1 and micros >= 1",
                ));
            }
        }
        Ok(())
    }
}

/// Histogram of sync latencies in power-of-two buckets: bucket 0 counts syncs under 1024 ns,
/// bucket `i` (1..=30) those in `[2^(9+i), 2^(10+i))` ns, bucket 31 everything from 2^40 ns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FsyncHistogram {
    counts: [u64; FsyncHistogram::BUCKETS],
}

impl FsyncHistogram {
    /// Number of buckets.
    pub const BUCKETS: usize = 32;

    /// Bucket index of a latency.
    pub fn bucket_of(ns: u64) -> usize {
        if ns < 1024 {
            0
        } else {
            ((64 - ns.leading_zeros() as usize) - 10).min(Self::BUCKETS - 1)
        }
    }

    /// Exclusive upper bound of bucket `i` in ns (`u64::MAX` for the last).
    pub fn bucket_upper_ns(i: usize) -> u64 {
        if i + 1 >= Self::BUCKETS {
            u64::MAX
        } else {
            1u64 << (10 + i)
        }
    }

    /// Counts one sync of `ns` nanoseconds.
    pub fn record(&mut self, ns: u64) {
        self.counts[Self::bucket_of(ns)] += 1;
    }

    /// The per-bucket counts.
    pub fn counts(&self) -> &[u64; Self::BUCKETS] {
        &self.counts
    }

    /// Total syncs counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Upper bound (ns) of the bucket holding the `permille`/1000 quantile, or `None` if empty.
    pub fn quantile_upper_ns(&self, permille: u32) -> Option<u64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = (u128::from(total) * u128::from(permille.min(1000)))
            .div_ceil(1000)
            .max(1);
        let mut seen = 0u128;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += u128::from(c);
            if seen >= rank {
                return Some(Self::bucket_upper_ns(i));
            }
        }
        Some(u64::MAX)
    }
}

/// Counters for metrics (monotonic since the journal was opened).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Records appended.
    pub records: u64,
    /// Bytes written into segments (record headers, payloads and padding).
    pub bytes_written: u64,
    /// Payload bytes appended.
    pub payload_bytes: u64,
    /// Segments created by rotation (or at the first open).
    pub segments_created: u64,
    /// Syncs performed (msync of the active segment).
    pub fsyncs: u64,
    /// Sum of sync latencies, ns.
    pub fsync_ns_total: u64,
    /// Latency of the last sync, ns.
    pub fsync_ns_last: u64,
    /// Largest sync latency, ns.
    pub fsync_ns_max: u64,
    /// Distribution of sync latencies.
    pub fsync_histogram: FsyncHistogram,
}

impl JournalStats {
    pub(crate) fn record_fsync(&mut self, ns: u64) {
        self.fsyncs += 1;
        self.fsync_ns_total = self.fsync_ns_total.saturating_add(ns);
        self.fsync_ns_last = ns;
        self.fsync_ns_max = self.fsync_ns_max.max(ns);
        self.fsync_histogram.record(ns);
    }
}

/// The mapped segment that appends go to.
struct Active {
    map: MmapMut,
    path: PathBuf,
    /// Next free offset (multiple of 8).
    cursor: usize,
}

/// The single writer of a journal directory.
///
/// Dropping it without [`Journal::close`] is like a killed process: nothing is lost from the
/// page cache, and the next `open` finds every appended record. It holds the directory's
/// lock (`LOCK`) until it is closed or dropped.
pub struct Journal {
    dir: PathBuf,
    config: JournalConfig,
    max_payload: usize,
    /// Retained segments as (first seq, path), oldest first; the last is the active one.
    segments: Vec<(u64, PathBuf)>,
    active: Active,
    next_seq: u64,
    poisoned: bool,
    /// Appender-side counters (the sync counters live in `shared`).
    stats: JournalStats,
    shared: Arc<Shared>,
    /// The `journal-sync` thread (`Batch` and `Always` only).
    sync_thread: Option<SyncThread>,
    /// `Batch`: the `sync_started` value for which the thread was last woken.
    kicked_for: u64,
    _lock: DirLock,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.dir)
            .field("config", &self.config)
            .field("segments", &self.segments.len())
            .field("active", &self.active.path)
            .field("cursor", &self.active.cursor)
            .field("next_seq", &self.next_seq)
            .field("synced_seq", &self.synced_seq())
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

impl Journal {
    /// Opens (creating if needed) the journal in `dir`: locks the directory, validates every
    /// record, repairs a damaged tail, and returns the writer positioned after the last valid
    /// record with a report of what was found. An empty directory starts at sequence number 1.
    /// Fails with [`JournalError::Locked`] if another `Journal` has the directory open.
    pub fn open(
        dir: impl AsRef<Path>,
        config: JournalConfig,
    ) -> Result<(Self, RecoveryReport), JournalError> {
        Self::open_inner(dir.as_ref(), config, None, |_, _| {})
    }

    /// Like [`Journal::open`], and passes every valid record with `seq >= from_seq` to `visit`
    /// during the same scan (start-up after loading the snapshot covering `from_seq - 1`). An
    /// empty directory starts at `from_seq` (at least 1). Errors, before modifying anything,
    /// if `from_seq` is older than the first retained record or beyond the end of the journal.
    pub fn open_with_replay<F: FnMut(u64, &[u8])>(
        dir: impl AsRef<Path>,
        config: JournalConfig,
        from_seq: u64,
        visit: F,
    ) -> Result<(Self, RecoveryReport), JournalError> {
        if from_seq == 0 {
            return Err(JournalError::InvalidConfig(
                "sequence numbers start at 1: replay from_seq must be at least 1",
            ));
        }
        Self::open_inner(dir.as_ref(), config, Some(from_seq), visit)
    }

    fn open_inner<F: FnMut(u64, &[u8])>(
        dir: &Path,
        config: JournalConfig,
        from_seq: Option<u64>,
        visit: F,
    ) -> Result<(Self, RecoveryReport), JournalError> {
        config.validate()?;
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let dir_lock = DirLock::acquire(dir)?;
        let durable = config.fsync != FsyncPolicy::None;
        let entries = list_segments(dir)?;
        if let (Some(from), Some(first)) = (from_seq, entries.first()) {
            if from < first.first_seq {
                return Err(JournalError::SeqNotRetained {
                    requested: from,
                    first: first.first_seq,
                });
            }
        }
        let mut replayed_visit = visit;
        let out = match from_seq {
            Some(from) => scan(&entries, from, from, &mut replayed_visit)?,
            None => scan(&entries, 1, u64::MAX, |_, _| {})?,
        };
        if let Some(from) = from_seq {
            if from > out.next_seq {
                return Err(JournalError::JournalBehind {
                    requested: from,
                    next: out.next_seq,
                });
            }
        }

        let removed_temp_files = remove_temp_segments(dir)?;

        // Repair: set aside whatever intact data lies after the cut (later segments are
        // renamed, a damaged segment is copied), then zero the cut-off bytes of the segment
        // that stays active, so that no stale record can ever follow a new one.
        let mut damage = out.damage;
        if let Some(d) = damage.as_mut() {
            for later in &d.later_segments {
                let q = quarantine_path(later)?;
                fs::rename(later, &q).map_err(io_err(later))?;
                d.quarantined.push(q);
            }
            if out.damaged_dropped_whole {
                let q = quarantine_path(&d.segment)?;
                fs::rename(&d.segment, &q).map_err(io_err(&d.segment))?;
                d.quarantined.push(q);
            } else if let Some(k) = out.kept.last() {
                // A copy is kept only when the cut discards intact records; a torn record
                // (the usual tail after a crash) was never acknowledged and is just zeroed.
                if k.nonzero_end > k.end && d.records_dropped > 0 {
                    let q = quarantine_path(&k.path)?;
                    fs::copy(&k.path, &q).map_err(io_err(&q))?;
                    d.quarantined.push(q);
                }
            }
        }

        let mut stats = JournalStats::default();
        let mut segments: Vec<(u64, PathBuf)> = out
            .kept
            .iter()
            .map(|k| (k.first_seq, k.path.clone()))
            .collect();
        let (active, active_file) = match out.kept.last() {
            Some(k) => {
                let file = fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&k.path)
                    .map_err(io_err(&k.path))?;
                if k.file_len < k.segment_size {
                    file.set_len(k.segment_size).map_err(io_err(&k.path))?;
                }
                let mut map = map_write(&file, k.segment_size as usize, &k.path)?;
                let zero_to = k.nonzero_end.min(map.len());
                if zero_to > k.end {
                    map[k.end..zero_to].fill(0);
                    map.flush_range(k.end, zero_to - k.end)
                        .map_err(io_err(&k.path))?;
                }
                if k.file_len < k.segment_size || zero_to > k.end {
                    file.sync_all().map_err(io_err(&k.path))?;
                }
                let active = Active {
                    map,
                    path: k.path.clone(),
                    cursor: k.end,
                };
                (active, file)
            }
            None => {
                let (file, path) = create_segment(dir, out.next_seq, config.segment_size, durable)?;
                let map = map_write(&file, config.segment_size as usize, &path)?;
                stats.segments_created += 1;
                segments.push((out.next_seq, path.clone()));
                let active = Active {
                    map,
                    path,
                    cursor: SEGMENT_HEADER_LEN,
                };
                (active, file)
            }
        };
        let repaired = damage.is_some();
        if repaired {
            sync_dir(dir)?;
        }
        // Records recovered from the page cache of a previous run may not be on disk yet.
        let last = out.next_seq.checked_sub(1).filter(|_| out.records > 0);
        if durable {
            for (_, path) in &segments {
                fs::File::open(path)
                    .and_then(|f| f.sync_data())
                    .map_err(io_err(path))?;
            }
        }
        let shared = Arc::new(Shared::new(
            dir.to_path_buf(),
            config.fsync,
            last.unwrap_or(0),
            if durable { last.unwrap_or(0) } else { 0 },
        ));
        if durable {
            shared.push_file(SegFile {
                first_seq: segments.last().map_or(out.next_seq, |s| s.0),
                path: active.path.clone(),
                file: Some(Arc::new(active_file)),
                created: AtomicBool::new(false),
            });
        } else {
            // Under `None` the previous run may have left unsynced pages in any segment.
            drop(active_file);
            for (first_seq, path) in &segments {
                shared.push_file(SegFile {
                    first_seq: *first_seq,
                    path: path.clone(),
                    file: None,
                    created: AtomicBool::new(false),
                });
            }
        }
        let report = RecoveryReport {
            dir: dir.to_path_buf(),
            segments: entries.len(),
            first_seq: segments.first().map_or(out.next_seq, |s| s.0),
            next_seq: out.next_seq,
            records: out.records,
            replayed: if from_seq.is_some() { out.replayed } else { 0 },
            damage,
            repaired,
            removed_temp_files,
        };
        let sync_thread = if durable {
            Some(SyncThread::spawn(Arc::clone(&shared))?)
        } else {
            None
        };
        let journal = Self {
            dir: dir.to_path_buf(),
            config,
            max_payload: max_payload(config.segment_size),
            segments,
            active,
            next_seq: out.next_seq,
            poisoned: false,
            stats,
            // No generation has been kicked yet (`sync_started` never reaches u64::MAX).
            kicked_for: u64::MAX,
            shared,
            sync_thread,
            _lock: dir_lock,
        };
        Ok((journal, report))
    }

    /// Appends one record and returns its sequence number. The record is in the page cache
    /// (it survives a killed process) when this returns; it is durable against power loss
    /// once [`DurableSeq::get`] reaches its seq (under `Batch`/`Always` the sync thread gets
    /// there without this thread ever waiting on the disk).
    #[inline]
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, JournalError> {
        self.append_with(payload.len(), |dst| dst.copy_from_slice(payload))
    }

    /// Appends one record of `len` bytes written in place by `fill` (which receives exactly
    /// `len` bytes of the mapped segment, so an encoder can write straight into the journal),
    /// and returns its sequence number. `fill` must not panic. Never waits on the disk (a
    /// rotation creates the next segment without syncing; see `rotate`).
    pub fn append_with<F: FnOnce(&mut [u8])>(
        &mut self,
        len: usize,
        fill: F,
    ) -> Result<u64, JournalError> {
        if self.poisoned || self.shared.failed.load(Ordering::Relaxed) {
            self.poisoned = true;
            return Err(JournalError::Poisoned);
        }
        if len == 0 {
            return Err(JournalError::EmptyPayload);
        }
        if len > self.max_payload {
            return Err(JournalError::PayloadTooLarge {
                len,
                max: self.max_payload,
            });
        }
        let seq = self.next_seq;
        let after = seq.checked_add(1).ok_or(JournalError::SeqExhausted)?;
        let rec = padded_record_len(len);
        if self.active.cursor + rec > self.active.map.len() {
            self.rotate()?;
        }
        let start = self.active.cursor;
        let record = &mut self.active.map[start..start + rec];
        let (header, body) = record.split_at_mut(RECORD_HEADER_LEN);
        let (payload, padding) = body.split_at_mut(len);
        fill(payload);
        padding.fill(0);
        header[8..16].copy_from_slice(&seq.to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&(len as u32).to_le_bytes());
        crc.update(&header[8..16]);
        crc.update(payload);
        header[0..4].copy_from_slice(&crc.finalize().to_le_bytes());
        // The length goes last: until it is non-zero the record does not exist for a reader.
        compiler_fence(Ordering::Release);
        header[4..8].copy_from_slice(&(len as u32).to_le_bytes());

        self.active.cursor = start + rec;
        self.next_seq = after;
        self.stats.records += 1;
        self.stats.bytes_written += rec as u64;
        self.stats.payload_bytes += len as u64;
        let sh = &*self.shared;
        match self.config.fsync {
            FsyncPolicy::None => {
                sh.appended.store(seq, Ordering::Release);
                sh.notify_waiters();
            }
            FsyncPolicy::Always => {
                sh.appended.store(seq, Ordering::Release);
                if let Some(t) = &self.sync_thread {
                    // An atomic swap; a futex wake only if the thread sleeps.
                    t.thread.unpark();
                }
            }
            FsyncPolicy::Batch { records, .. } => {
                // SeqCst pairs with the thread's `idle` store and re-check of `appended`.
                sh.appended.store(seq, Ordering::SeqCst);
                let started = sh.sync_started.load(Ordering::Relaxed);
                let full = seq.wrapping_sub(started) >= u64::from(records);
                // Wake the thread when it sleeps with nothing pending (it then times the
                // batch), and once per sync generation when the batch is full.
                let kick_full = full && self.kicked_for != started;
                if kick_full || sh.idle.load(Ordering::SeqCst) {
                    if kick_full {
                        self.kicked_for = started;
                    }
                    if let Some(t) = &self.sync_thread {
                        t.thread.unpark();
                    }
                }
            }
        }
        Ok(seq)
    }

    /// Syncs every record appended so far (whatever the policy), including those in segments
    /// rotated out without a sync, on the calling thread; returns when they are durable.
    /// Call it before writing a snapshot.
    pub fn flush(&mut self) -> Result<(), JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned);
        }
        let sh = &*self.shared;
        let target = sh.appended.load(Ordering::Acquire);
        let mut side = sh
            .side
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if sh.failed.load(Ordering::Acquire) {
            drop(side);
            self.poisoned = true;
            return Err(sh.take_error());
        }
        sh.sync_started.fetch_max(target, Ordering::Relaxed);
        let r = sh.sync_to(&mut side, target);
        drop(side);
        if r.is_err() {
            self.poisoned = true;
            return Err(sh.take_error());
        }
        Ok(())
    }

    /// For the engine's idle loop. Syncing happens on the sync thread (or in `flush`), so this
    /// never syncs and returns `Ok(false)`; it reports a failed background sync as an error
    /// (the same one `flush` and `close` return), so the engine learns of it even when idle.
    pub fn tick(&mut self) -> Result<bool, JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned);
        }
        if self.shared.failed.load(Ordering::Relaxed) {
            self.poisoned = true;
            return Err(self.shared.take_error());
        }
        Ok(false)
    }

    /// Flushes everything, stops the sync thread and closes the journal (releasing the
    /// directory lock), returning its final counters.
    pub fn close(mut self) -> Result<JournalStats, JournalError> {
        self.flush()?;
        self.stop_sync_thread();
        sync_dir(&self.dir)?;
        Ok(self.stats())
    }

    fn stop_sync_thread(&mut self) {
        if let Some(mut t) = self.sync_thread.take() {
            t.stop(&self.shared);
        }
    }

    /// Starts a new segment at `next_seq`. Never waits on the disk: the new file is created
    /// without `fsync` and registered with the sync side first, which syncs it (and the
    /// directory) before any record in it counts as durable; the old segment stays listed
    /// until a sync has covered it.
    fn rotate(&mut self) -> Result<(), JournalError> {
        let seq = self.next_seq;
        let (file, path) = create_segment(&self.dir, seq, self.config.segment_size, false)?;
        let map = map_write(&file, self.config.segment_size as usize, &path)?;
        if self.active.cursor == SEGMENT_HEADER_LEN {
            // The active segment was empty (and smaller than this record needs): the new file
            // has replaced it under the same name.
            self.segments.pop();
            self.shared.forget_segment(seq);
        }
        self.segments.push((seq, path.clone()));
        let durable = self.config.fsync != FsyncPolicy::None;
        self.shared.push_file(SegFile {
            first_seq: seq,
            path: path.clone(),
            file: durable.then(|| Arc::new(file)),
            // Its name and header are not durable yet: the next sync (or flush, under
            // `None`) also syncs the directory.
            created: AtomicBool::new(true),
        });
        self.active = Active {
            map,
            path,
            cursor: SEGMENT_HEADER_LEN,
        };
        self.stats.segments_created += 1;
        Ok(())
    }

    /// Deletes every segment whose records all have `seq < before` (never the active one);
    /// returns how many were deleted. Call it with the oldest kept snapshot's `seq + 1`.
    pub fn truncate_before(&mut self, before: u64) -> Result<usize, JournalError> {
        let mut removed = 0;
        while self.segments.len() >= 2 && self.segments[1].0 <= before {
            let path = &self.segments[0].1;
            match fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io_err(path)(e));
                }
                _ => {}
            }
            self.segments.remove(0);
            removed += 1;
        }
        if removed > 0 {
            self.shared.forget_files_before(self.first_seq());
            sync_dir(&self.dir)?;
        }
        Ok(removed)
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &JournalConfig {
        &self.config
    }

    /// Sequence number the next append gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// First retained sequence number (equal to `next_seq` when the journal is empty).
    pub fn first_seq(&self) -> u64 {
        self.segments.first().map_or(self.next_seq, |s| s.0)
    }

    /// Highest sequence number covered by a completed sync (by the sync thread or `flush`;
    /// after `open` under a policy other than `None`, every recovered record counts as
    /// synced). `None` before any.
    pub fn synced_seq(&self) -> Option<u64> {
        Some(self.shared.synced.load(Ordering::Acquire)).filter(|&s| s != 0)
    }

    /// A cheap, cloneable handle telling other threads how far the journal is durable under
    /// its policy, and letting them wait ([`DurableSeq`]).
    pub fn durable(&self) -> DurableSeq {
        DurableSeq::new(Arc::clone(&self.shared))
    }

    /// Registers a callback run on the sync thread each time the durable sequence number
    /// advances (with the new value), e.g. to wake a publisher's event loop. `Batch` and
    /// `Always` only (under `None` a record is durable when `append` returns). Keep it short:
    /// it delays the next sync.
    pub fn set_durable_waker(&self, waker: DurableWaker) {
        self.shared.set_waker(Some(waker));
    }

    /// Segments that may still hold records not covered by a sync (at least 1: the active
    /// one). After a sync with nothing appended since, exactly 1.
    pub fn unsynced_segments(&self) -> usize {
        self.shared.unsynced_files()
    }

    /// Largest payload accepted by `append`.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// Number of retained segment files.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Counters for metrics: the appender's, plus the syncs done so far by the sync thread
    /// and `flush`.
    pub fn stats(&self) -> JournalStats {
        let f = self.shared.fsync_stats();
        JournalStats {
            fsyncs: f.fsyncs,
            fsync_ns_total: f.fsync_ns_total,
            fsync_ns_last: f.fsync_ns_last,
            fsync_ns_max: f.fsync_ns_max,
            fsync_histogram: f.fsync_histogram,
            ..self.stats.clone()
        }
    }
}

impl Drop for Journal {
    /// Stops the sync thread (after its current sync) without flushing: like a killed
    /// process, the page cache keeps every appended record. Waiters for records that never
    /// became durable get [`JournalError::Closed`]; the directory lock is released.
    fn drop(&mut self) {
        self.stop_sync_thread();
        self.shared.closed.store(true, Ordering::Release);
        let durable = self.durable().get();
        self.shared.notify(durable);
    }
}

/// Removes `<20 digits>.wal.tmp` files left by a crash during segment creation.
fn remove_temp_segments(dir: &Path) -> Result<Vec<PathBuf>, JournalError> {
    let mut removed = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let is_tmp = name.to_str().is_some_and(|n| {
            n.strip_suffix(".tmp")
                .and_then(parse_segment_name)
                .is_some()
                && n.ends_with(SEGMENT_TMP_SUFFIX)
        });
        if is_tmp {
            let path = entry.path();
            fs::remove_file(&path).map_err(io_err(&path))?;
            removed.push(path);
        }
    }
    Ok(removed)
}
