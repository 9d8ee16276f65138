//! `journal::lock`: the one-writer-per-directory rule, enforced. `Journal::open` takes an
//! exclusive POSIX record lock (`fcntl(F_SETLK)`, whole file) on `<dir>/LOCK` and writes its
//! pid into the file; a second open of the same directory fails with [`JournalError::Locked`]
//! naming the directory and the holder's pid: from another process through the kernel lock
//! (the pid comes from `F_GETLK`), from this process through a process-wide table of held
//! directories (keyed by the directory's device and inode, so another path to the same
//! directory is caught too), which is consulted *before* the lock file is opened.
//!
//! Why POSIX locks and not `flock`: a `flock` belongs to the open file description, which a
//! child process shares between its `fork` and `exec`; a venue or test that spawns
//! processes would then briefly "hold" its own journal in every child. POSIX locks belong to
//! the process and are not inherited. Their one trap, that closing *any* descriptor of the
//! file in this process drops the lock, is avoided by never opening `LOCK` again while this
//! process holds it (the table check comes first); nothing else should open the file.
//!
//! Invariants: the lock lives exactly as long as the [`DirLock`] (dropping it removes the
//! table entry and closes the descriptor; the death of the process, however it dies, drops
//! the kernel lock). The pid in the file is informative only. The file is never deleted.
//!
//! Cost: `stat` + `open` + `fcntl` + one small write at journal open; nothing afterwards.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::segment::io_err;
use super::JournalError;

/// Name of the lock file inside a journal directory.
pub const LOCK_FILE: &str = "LOCK";

/// Directories (device, inode) locked by a live `DirLock` of this process.
static HELD: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());

fn held() -> std::sync::MutexGuard<'static, Vec<(u64, u64)>> {
    HELD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An exclusive lock on a journal directory (released when dropped).
#[derive(Debug)]
pub(crate) struct DirLock {
    key: (u64, u64),
    /// Always `Some` until dropped.
    file: Option<File>,
}

/// What a non-blocking lock attempt found.
enum Attempt {
    Locked,
    /// Another process holds it (its pid per `F_GETLK`, if it could tell).
    Busy(Option<u32>),
}

fn whole_file(kind: libc::c_short) -> libc::flock {
    // SAFETY: `libc::flock` is a plain C struct of integers, for which all-zero is valid.
    #[allow(unsafe_code, reason = "zero-initialising a plain C struct")]
    let mut l: libc::flock = unsafe { std::mem::zeroed() };
    l.l_type = kind;
    l.l_whence = libc::SEEK_SET as libc::c_short;
    l.l_start = 0;
    l.l_len = 0; // to the end of the file, however long it grows
    l
}

/// `fcntl(F_SETLK)` of a write lock over the whole file.
#[allow(
    unsafe_code,
    reason = "fcntl(2) record locks have no safe wrapper in std"
)]
fn try_lock(file: &File) -> std::io::Result<Attempt> {
    loop {
        let l = whole_file(libc::F_WRLCK as libc::c_short);
        // SAFETY: `fd` is valid while `file` is borrowed; `l` is a valid `struct flock` that
        // outlives the call, which only reads it.
        let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &l) };
        if r == 0 {
            return Ok(Attempt::Locked);
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EACCES | libc::EAGAIN) => {
                let mut q = whole_file(libc::F_WRLCK as libc::c_short);
                // SAFETY: as above; F_GETLK writes the conflicting lock into `q`, which is a
                // valid, exclusively borrowed `struct flock`.
                let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut q) };
                let pid = (r == 0 && q.l_type != libc::F_UNLCK as libc::c_short && q.l_pid > 0)
                    .then_some(q.l_pid as u32);
                return Ok(Attempt::Busy(pid));
            }
            _ => return Err(e),
        }
    }
}

impl DirLock {
    /// Locks `dir` (which must exist) or fails with [`JournalError::Locked`].
    pub fn acquire(dir: &Path) -> Result<Self, JournalError> {
        let meta = std::fs::metadata(dir).map_err(io_err(dir))?;
        let key = (meta.dev(), meta.ino());
        let mut table = held();
        if table.contains(&key) {
            return Err(JournalError::Locked {
                dir: dir.to_path_buf(),
                pid: Some(std::process::id()),
            });
        }
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path))?;
        match try_lock(&file).map_err(io_err(&path))? {
            Attempt::Locked => {}
            Attempt::Busy(pid) => {
                let pid = pid.or_else(|| {
                    let mut text = String::new();
                    file.read_to_string(&mut text)
                        .ok()
                        .and_then(|_| text.trim().parse::<u32>().ok())
                });
                return Err(JournalError::Locked {
                    dir: dir.to_path_buf(),
                    pid,
                });
            }
        }
        let pid = format!("{}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(pid.as_bytes()))
            .map_err(io_err(&path))?;
        table.push(key);
        Ok(Self {
            key,
            file: Some(file),
        })
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // The table entry goes first, then the descriptor (closing it drops the kernel lock);
        // both under the table's mutex, so no other `acquire` in this process opens the file
        // while it is still locked by us.
        let mut table = held();
        table.retain(|k| *k != self.key);
        drop(self.file.take());
        drop(table);
    }
}

/// The lock file's path for `dir`.
pub fn lock_path(dir: &Path) -> PathBuf {
    dir.join(LOCK_FILE)
}
