//! `journal::sync`: group commit off the appending thread. Under `FsyncPolicy::Batch` and
//! `FsyncPolicy::Always` a background thread (`journal-sync`) makes appended records durable
//! while the engine thread keeps appending; [`DurableSeq`] tells any thread how far that has
//! got and lets it wait.
//!
//! ## How it works
//!
//! The appender publishes the last appended sequence number (`appended`) after the record's
//! bytes are in the mapped segment, and registers every new segment in `files` *before* any
//! record goes into it. A sync reads `appended` first, then the file list, then
//! `fdatasync`s every listed file (on Linux `msync(MS_SYNC)` of a shared mapping is the same
//! call: `vfs_fsync_range` with `datasync`; the kernel tracks dirty pages of shared mappings
//! by write-protecting them after writeback, so `fdatasync` sees every store into the map),
//! plus the directory if a listed segment was created since the last sync. So every record up
//! to the `appended` it read is on stable storage when it publishes `synced`. Files that were
//! not the last one listed are complete (the appender had rotated away from them before the
//! sync read the list) and leave the list.
//!
//! * `Always`: the thread syncs whenever anything is pending. Every record appended while a
//!   sync runs goes into the next one (group commit): under load each sync covers many
//!   records, and an idle journal syncs each record alone.
//! * `Batch { records, micros }`: the thread syncs when `records` records are pending (the
//!   appender wakes it at that point) or when the oldest pending record it knows of is
//!   `micros` old (it sleeps until then).
//! * `flush()` syncs on the calling thread (serialised with the thread by `sync_lock`).
//!
//! ## Invariants
//!
//! * `synced` only grows and never exceeds `appended`; every record with `seq <= synced`
//!   was covered by a completed `fdatasync` of its segment (and of the directory entry of
//!   that segment).
//! * After a sync fails, `failed` is set for good: the appender refuses further work
//!   (`Poisoned`) and waiters get an error, because after a failed `fsync` the kernel may
//!   have dropped the dirty pages and what is on disk is unknown.
//! * Nothing here panics: poisoned mutexes are entered anyway (their data stays consistent:
//!   every critical section is a few assignments).
//!
//! ## Cost
//!
//! Per append: one atomic store of `appended` (sequentially consistent under `Batch`, for
//! the idle hand-shake), one relaxed load of `failed`, and under `Always` one `unpark` (an
//! atomic swap; a `futex` wake only when the thread sleeps); under `Batch` one relaxed load
//! of `sync_started` and of `idle`, and an `unpark` once per batch. The thread allocates
//! nothing per sync after warm-up (it reuses its file-list buffer).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use super::segment::{io_err, sync_dir};
use super::{FsyncPolicy, JournalError, JournalStats};

/// Callback run on the sync thread after the durable sequence number advances.
pub type DurableWaker = Arc<dyn Fn(u64) + Send + Sync>;

/// A segment that may hold records not yet synced.
pub(crate) struct SegFile {
    pub first_seq: u64,
    pub path: PathBuf,
    /// Open handle (durable policies); `None` under `FsyncPolicy::None`, where a flush opens
    /// the path (keeps the descriptor count at one per segment only while it is needed).
    pub file: Option<Arc<File>>,
    /// Created without `fsync`: its header and directory entry are not durable yet, so the
    /// next sync also syncs the directory.
    pub created: AtomicBool,
}

/// What syncs share: counters and the first error.
#[derive(Default)]
pub(crate) struct SyncSide {
    pub fsync: JournalStats,
    pub error: Option<(PathBuf, std::io::ErrorKind, String)>,
    scratch: Vec<Arc<SegFile>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// State shared by the journal, its sync thread and every [`DurableSeq`].
pub(crate) struct Shared {
    pub dir: PathBuf,
    pub policy: FsyncPolicy,
    /// Last appended sequence number (0 = none).
    pub appended: AtomicU64,
    /// Last sequence number covered by a completed sync (0 = none).
    pub synced: AtomicU64,
    /// `appended` as read by the latest sync started (the batch trigger counts from it).
    pub sync_started: AtomicU64,
    /// The thread is about to sleep with nothing pending (the appender must wake it).
    pub idle: AtomicBool,
    pub failed: AtomicBool,
    pub closed: AtomicBool,
    pub shutdown: AtomicBool,
    waiters: AtomicUsize,
    /// Segments that may hold unsynced records, oldest first; the last is the active one.
    pub files: Mutex<Vec<Arc<SegFile>>>,
    /// Serialises syncs (thread and `flush`) and holds their counters.
    pub side: Mutex<SyncSide>,
    wait_lock: Mutex<()>,
    cond: Condvar,
    waker: Mutex<Option<DurableWaker>>,
}

impl Shared {
    pub fn new(dir: PathBuf, policy: FsyncPolicy, appended: u64, synced: u64) -> Self {
        Self {
            dir,
            policy,
            appended: AtomicU64::new(appended),
            synced: AtomicU64::new(synced),
            sync_started: AtomicU64::new(synced),
            idle: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            waiters: AtomicUsize::new(0),
            files: Mutex::new(Vec::new()),
            side: Mutex::new(SyncSide::default()),
            wait_lock: Mutex::new(()),
            cond: Condvar::new(),
            waker: Mutex::new(None),
        }
    }

    pub fn push_file(&self, f: SegFile) {
        lock(&self.files).push(Arc::new(f));
    }

    /// Drops the list entry of the empty segment a rotation replaced under the same name.
    pub fn forget_segment(&self, first_seq: u64) {
        lock(&self.files).retain(|f| f.first_seq != first_seq);
    }

    /// Drops list entries of segments deleted behind a snapshot.
    pub fn forget_files_before(&self, first_seq: u64) {
        lock(&self.files).retain(|f| f.first_seq >= first_seq);
    }

    pub fn unsynced_files(&self) -> usize {
        lock(&self.files).len()
    }

    pub fn set_waker(&self, w: Option<DurableWaker>) {
        *lock(&self.waker) = w;
    }

    pub fn fsync_stats(&self) -> JournalStats {
        lock(&self.side).fsync.clone()
    }

    /// The first sync error, as an `Io` error (or `Poisoned` if it was already taken).
    pub fn take_error(&self) -> JournalError {
        match lock(&self.side).error.take() {
            Some((path, kind, msg)) => JournalError::Io {
                path,
                source: std::io::Error::new(kind, msg),
            },
            None => JournalError::Poisoned,
        }
    }

    /// Wakes blocked [`DurableSeq::wait_for`] callers, if any (the appender's call under
    /// `FsyncPolicy::None`: one relaxed load when nobody waits).
    #[inline]
    pub fn notify_waiters(&self) {
        if self.waiters.load(Ordering::Relaxed) > 0 {
            let _g = lock(&self.wait_lock);
            self.cond.notify_all();
        }
    }

    /// Wakes blocked [`DurableSeq::wait_for`] callers and the registered waker.
    pub fn notify(&self, durable: u64) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _g = lock(&self.wait_lock);
            self.cond.notify_all();
        }
        let w = lock(&self.waker).clone();
        if let Some(w) = w {
            w(durable);
        }
    }

    /// Syncs every record up to `target` (which the caller read from `appended` before this
    /// call) and every listed segment; publishes `synced`. `side` must be this `Shared`'s.
    pub fn sync_to(&self, side: &mut SyncSide, target: u64) -> Result<(), JournalError> {
        if self.failed.load(Ordering::Acquire) {
            return Err(JournalError::Poisoned);
        }
        let SyncSide {
            fsync,
            scratch,
            error,
        } = side;
        scratch.clear();
        scratch.extend(lock(&self.files).iter().cloned());
        let t0 = Instant::now();
        let mut result = Ok(());
        let mut new_entries = false;
        for f in scratch.iter() {
            let r = match &f.file {
                Some(file) => file.sync_data(),
                None => match File::open(&f.path) {
                    Ok(file) => file.sync_data(),
                    // Deleted behind a snapshot meanwhile: nothing left to sync.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = r {
                result = Err((f.path.clone(), e));
                break;
            }
            new_entries |= f.created.load(Ordering::Acquire);
        }
        if result.is_ok() && new_entries {
            if let Err(JournalError::Io { path, source }) = sync_dir(&self.dir) {
                result = Err((path, source));
            }
        }
        if let Err((path, e)) = result {
            error.get_or_insert((path.clone(), e.kind(), e.to_string()));
            self.failed.store(true, Ordering::Release);
            self.notify(self.synced.load(Ordering::Acquire));
            return Err(io_err(&path)(e));
        }
        let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
        fsync.record_fsync(ns);
        for f in scratch.iter() {
            f.created.store(false, Ordering::Release);
        }
        if scratch.len() > 1 {
            // Every listed file but the last was complete when the list was read.
            let done = &scratch[..scratch.len() - 1];
            lock(&self.files).retain(|f| !done.iter().any(|d| Arc::ptr_eq(d, f)));
        }
        scratch.clear();
        let before = self.synced.fetch_max(target, Ordering::AcqRel);
        if target > before {
            self.notify(target);
        }
        Ok(())
    }
}

/// The body of the `journal-sync` thread.
pub(crate) fn run(shared: &Shared) {
    let batch = match shared.policy {
        FsyncPolicy::Batch { records, micros } => {
            Some((u64::from(records), Duration::from_micros(u64::from(micros))))
        }
        _ => None,
    };
    // When the oldest pending record was first known to exist (batch time bound).
    let mut origin: Option<Instant> = None;
    let mut last_sync_start: Option<Instant> = None;
    loop {
        if shared.shutdown.load(Ordering::Acquire) || shared.failed.load(Ordering::Acquire) {
            return;
        }
        let appended = shared.appended.load(Ordering::SeqCst);
        let started = shared.sync_started.load(Ordering::Relaxed);
        if appended <= started {
            origin = None;
            last_sync_start = None;
            shared.idle.store(true, Ordering::SeqCst);
            if shared.appended.load(Ordering::SeqCst) > started
                || shared.shutdown.load(Ordering::SeqCst)
            {
                shared.idle.store(false, Ordering::SeqCst);
                continue;
            }
            std::thread::park();
            shared.idle.store(false, Ordering::SeqCst);
            continue;
        }
        if let Some((records, micros)) = batch {
            // Batch: records that arrived during the previous sync are at most as old as
            // that sync's start; others were appended just before the wake-up.
            let o = *origin.get_or_insert_with(|| last_sync_start.unwrap_or_else(Instant::now));
            let now = Instant::now();
            let deadline = o + micros;
            if appended - started < records && now < deadline {
                std::thread::park_timeout(deadline - now);
                continue;
            }
        }
        let start = Instant::now();
        shared.sync_started.store(appended, Ordering::Relaxed);
        let mut side = lock(&shared.side);
        if shared.sync_to(&mut side, appended).is_err() {
            return;
        }
        drop(side);
        origin = None;
        last_sync_start = Some(start);
    }
}

/// The sync thread's handle, owned by the journal.
pub(crate) struct SyncThread {
    pub thread: Thread,
    handle: Option<JoinHandle<()>>,
}

impl SyncThread {
    pub fn spawn(shared: Arc<Shared>) -> Result<Self, JournalError> {
        let dir = shared.dir.clone();
        let handle = std::thread::Builder::new()
            .name("journal-sync".into())
            .spawn(move || run(&shared))
            .map_err(io_err(&dir))?;
        Ok(Self {
            thread: handle.thread().clone(),
            handle: Some(handle),
        })
    }

    /// Stops the thread after its current sync and waits for it.
    pub fn stop(&mut self, shared: &Shared) {
        shared.shutdown.store(true, Ordering::SeqCst);
        self.thread.unpark();
        if let Some(h) = self.handle.take() {
            // The thread body cannot panic (no indexing, no unwrap); a join error would
            // only mean it did, and there is nothing left to clean up then.
            let _ = h.join();
        }
    }
}

/// A cheap, cloneable view of how far a journal is durable, for other threads (the
/// publisher holds execution reports under `fsync = always` until their command is
/// durable). Obtained from `Journal::durable`; stays valid after the journal is closed.
#[derive(Clone)]
pub struct DurableSeq {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for DurableSeq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableSeq")
            .field("dir", &self.shared.dir)
            .field("policy", &self.shared.policy)
            .field("durable", &self.get())
            .finish()
    }
}

impl DurableSeq {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// The highest sequence number that is durable under the journal's policy: under
    /// `FsyncPolicy::None` the last appended one (it survives a killed process), under
    /// `Batch` and `Always` the last one covered by a completed sync (it survives a power
    /// loss). 0 when there is none. One atomic load.
    #[inline]
    pub fn get(&self) -> u64 {
        match self.shared.policy {
            FsyncPolicy::None => self.shared.appended.load(Ordering::Acquire),
            _ => self.shared.synced.load(Ordering::Acquire),
        }
    }

    /// The journal's policy.
    pub fn policy(&self) -> FsyncPolicy {
        self.shared.policy
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// `true` once a sync has failed (the journal is poisoned; nothing more becomes durable).
    pub fn failed(&self) -> bool {
        self.shared.failed.load(Ordering::Acquire)
    }

    /// Blocks until `get() >= seq` (`Ok(true)`) or `timeout` passes (`Ok(false)`). Fails with
    /// [`JournalError::Poisoned`] when a sync failed and with [`JournalError::Closed`] when
    /// the journal was closed or dropped before `seq` became durable.
    pub fn wait_for(&self, seq: u64, timeout: Duration) -> Result<bool, JournalError> {
        if self.get() >= seq {
            return Ok(true);
        }
        let deadline = Instant::now() + timeout;
        let s = &self.shared;
        s.waiters.fetch_add(1, Ordering::SeqCst);
        let mut g = lock(&s.wait_lock);
        let out = loop {
            if self.get() >= seq {
                break Ok(true);
            }
            if s.failed.load(Ordering::Acquire) {
                break Err(JournalError::Poisoned);
            }
            if s.closed.load(Ordering::Acquire) {
                break Err(JournalError::Closed);
            }
            let now = Instant::now();
            if now >= deadline {
                break Ok(false);
            }
            // Short slices: under `None` the appender does not notify, and a notification
            // racing with the check above is caught at the next slice.
            let slice = (deadline - now).min(Duration::from_millis(1));
            g = s
                .cond
                .wait_timeout(g, slice)
                .map_or_else(|e| e.into_inner().0, |(g, _)| g);
        };
        drop(g);
        s.waiters.fetch_sub(1, Ordering::SeqCst);
        out
    }
}
