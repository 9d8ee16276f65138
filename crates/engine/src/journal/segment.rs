//! `journal::segment`: segment files on disk: creating one (pre-sized, header written,
//! renamed into place), mapping one, syncing a directory.
//!
//! This is the only place in the journal with `unsafe`: `memmap2`'s `map`/`map_mut` are
//! unsafe because the mapped bytes can change under the program if *another* process (or
//! another handle) truncates or writes the file. The journal's contract (see
//! `docs/journal.md`, "One writer per directory") is that only one `Journal` owns a
//! directory and that nothing else writes or truncates its `.wal` files; the journal itself
//! never shrinks a file it has mapped (repairs only zero bytes or *extend* a truncated file
//! before mapping it). Under that contract the mapping behaves like an ordinary byte slice.
//!
//! Cost: creating a segment is `open + set_len + write(64) + rename` (plus `fsync` of the file
//! and of the directory unless the policy is `None`); `set_len` makes a sparse file, so the
//! pages are allocated on first touch by the appends (one minor fault per 4 KiB page).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use memmap2::{Mmap, MmapMut, MmapOptions};

use super::format::{encode_segment_header, segment_path, SEGMENT_TMP_SUFFIX};
use super::JournalError;

/// Wraps an `io::Error` with the path it concerns.
pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Maps `len` bytes of `file` read-only.
#[allow(unsafe_code)] // memmap2 offers no safe way to map a mutable file; see the module doc.
pub(crate) fn map_read(file: &File, len: usize, path: &Path) -> Result<Mmap, JournalError> {
    // SAFETY: the journal directory has one owner (module doc); nobody truncates or rewrites
    // this file while the map is alive, and `len` does not exceed the file's current length
    // (the caller passes the length it just read from the file's metadata).
    unsafe { MmapOptions::new().len(len).map(file) }.map_err(io_err(path))
}

/// Maps `len` bytes of `file` read-write (shared: writes go to the page cache of the file).
#[allow(unsafe_code)] // memmap2 offers no safe way to map a file for writing; see the module doc.
pub(crate) fn map_write(file: &File, len: usize, path: &Path) -> Result<MmapMut, JournalError> {
    // SAFETY: as for `map_read`; in addition this map is the only writer of the file, and the
    // file has been sized to at least `len` bytes before the call.
    unsafe { MmapOptions::new().len(len).map_mut(file) }.map_err(io_err(path))
}

/// `fsync` of a directory, so that creations, renames and deletions in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Creates the segment whose first record is `first_seq`: writes `<name>.wal.tmp` with the
/// header, sizes it to `segment_size`, optionally fsyncs it, renames it into place (replacing
/// an empty segment of the same name if one exists) and optionally fsyncs the directory.
/// Returns the open file (read-write) and its final path.
pub(crate) fn create_segment(
    dir: &Path,
    first_seq: u64,
    segment_size: u64,
    durable: bool,
) -> Result<(File, PathBuf), JournalError> {
    let path = segment_path(dir, first_seq);
    let tmp = dir.join(format!("{first_seq:020}{SEGMENT_TMP_SUFFIX}"));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    file.write_all(&encode_segment_header(first_seq, segment_size))
        .map_err(io_err(&tmp))?;
    file.set_len(segment_size).map_err(io_err(&tmp))?;
    if durable {
        file.sync_all().map_err(io_err(&tmp))?;
    }
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    if durable {
        sync_dir(dir)?;
    }
    Ok((file, path))
}

/// A path next to `path` named `<name>.dropped` (or `.dropped.1`, `.dropped.2`, ... if taken)
/// where recovery sets aside bytes it cuts off.
pub(crate) fn quarantine_path(path: &Path) -> Result<PathBuf, JournalError> {
    let base = path.as_os_str().to_os_string();
    for k in 0u32..10_000 {
        let mut p = base.clone();
        if k == 0 {
            p.push(".dropped");
        } else {
            p.push(format!(".dropped.{k}"));
        }
        let p = PathBuf::from(p);
        if !p.exists() {
            return Ok(p);
        }
    }
    Err(JournalError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "no free .dropped name"),
    })
}
