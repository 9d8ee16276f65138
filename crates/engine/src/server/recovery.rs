//! `server::recovery`: rebuilding the venue from disk, at start-up ([`recover`], which opens
//! and repairs the journal for appending) and offline ([`replay_journal`], read-only, what
//! `tradecore replay` runs).
//!
//! ## Procedure
//!
//! 1. Snapshots are tried newest first. One is used if its file validates (header and body
//!    CRCs, `journal::snapshot`), its body restores under this config (`Venue::restore`:
//!    same engine fingerprint, no damage) and the journal still holds every record after it.
//!    Anything else is reported (log, [`RecoveryInfo::rejected_snapshots`]) and the next older
//!    snapshot is tried; with none usable, the venue starts empty and replays from seq 1.
//! 2. The journal records after the snapshot are decoded and applied in order. The journal's
//!    own scan cuts a torn or corrupt tail at the last valid record (and at start-up repairs
//!    the files); the cut is reported in [`RecoveryInfo::damage`].
//! 3. Every output of the replay goes to an observer: the server's publisher, to refill its
//!    retransmission histories and stream counters, or the offline replay's report writer.
//!
//! Determinism makes this exact: the same records applied to the same snapshot give the same
//! venue, bit for bit (the state hash), and the same numbered report streams.
//!
//! ## Cost
//!
//! One CRC pass over the retained journal plus one decode and `Venue::apply` per record after
//! the snapshot; restoring a snapshot costs one uncontended submit per resting order.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::journal::format::decode_snapshot;
use crate::journal::{list_snapshots, Journal, JournalError, JournalReader, RecoveryReport};
use crate::venue::{Command, Outbound, Venue};

use super::ServerError;

/// What start-up recovery found.
#[derive(Clone, Debug, Default)]
pub struct RecoveryInfo {
    /// The snapshot the venue was restored from, as (seq, path).
    pub snapshot: Option<(u64, PathBuf)>,
    /// Newer snapshots that could not be used, with the reason.
    pub rejected_snapshots: Vec<String>,
    /// Journal records applied after the snapshot.
    pub replayed: u64,
    /// Where and why the journal's valid data ended early (a torn tail after a crash), as
    /// the journal reported it.
    pub damage: Option<String>,
    /// The journal's scan report, one line.
    pub journal: String,
    /// The next journal sequence number.
    pub next_seq: u64,
    /// The largest command timestamp replayed (new commands are stamped no lower).
    pub max_ts: u64,
    /// Time spent.
    pub elapsed: Duration,
}

/// Sees the venue each replay attempt starts from and every output of the replay.
pub trait ReplayObserver {
    /// A replay attempt starts from `venue` (just restored from a snapshot, or new).
    fn start(&mut self, venue: &Venue);
    /// One output of `Venue::apply`, in order.
    fn output(&mut self, msg: &Outbound);
}

/// The snapshot files of step 1, newest first.
fn snapshot_candidates(dir: &Path) -> Result<Vec<(u64, PathBuf)>, ServerError> {
    let mut list = list_snapshots(dir)?;
    list.reverse();
    Ok(list)
}

fn restore(config: &Config, seq: u64, path: &Path) -> Result<Venue, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let (_, body) = decode_snapshot(&bytes, seq).map_err(|p| p.to_string())?;
    Venue::restore(config, body).map_err(|e| e.to_string())
}

/// Applies one journal record to the venue; decoding errors are kept in `failed`.
fn apply_record(
    venue: &mut Venue,
    out: &mut Vec<Outbound>,
    obs: &mut dyn ReplayObserver,
    failed: &mut Option<String>,
    max_ts: &mut u64,
    seq: u64,
    payload: &[u8],
) {
    if failed.is_some() {
        return;
    }
    match Command::decode(payload) {
        Ok(cmd) => {
            *max_ts = (*max_ts).max(cmd.ts_ns);
            out.clear();
            venue.apply(&cmd, out);
            for o in out.iter() {
                obs.output(o);
            }
        }
        Err(e) => *failed = Some(format!("journal record {seq} is not a venue command: {e}")),
    }
}

/// Whether a journal error means "this snapshot does not fit the journal, try an older one".
fn try_older(e: &JournalError) -> bool {
    matches!(
        e,
        JournalError::JournalBehind { .. } | JournalError::SeqNotRetained { .. }
    )
}

fn damage_line(r: &RecoveryReport) -> Option<String> {
    r.damage.as_ref().map(|d| {
        format!(
            "{} at byte {}: {}; last good seq {:?}, {} intact records and {} bytes dropped",
            d.segment.display(),
            d.offset,
            d.reason,
            d.last_good_seq,
            d.records_dropped,
            d.bytes_dropped
        )
    })
}

/// Start-up recovery (module doc): returns the venue, the journal open for appending after
/// the last valid record, and what was found.
pub fn recover(
    config: &Config,
    obs: &mut dyn ReplayObserver,
) -> Result<(Venue, Journal, RecoveryInfo), ServerError> {
    let t0 = Instant::now();
    let dir = config.journal.dir.clone();
    std::fs::create_dir_all(&dir).map_err(|source| ServerError::Io {
        what: format!("cannot create journal directory {}", dir.display()),
        source,
    })?;
    let mut info = RecoveryInfo::default();
    let candidates = snapshot_candidates(&dir)?;
    let mut attempts: Vec<Option<(u64, PathBuf)>> = candidates.into_iter().map(Some).collect();
    attempts.push(None);
    for attempt in attempts {
        let (mut venue, from) = match &attempt {
            Some((seq, path)) => match restore(config, *seq, path) {
                Ok(v) => (v, seq + 1),
                Err(why) => {
                    info.rejected_snapshots
                        .push(format!("{}: {why}", path.display()));
                    continue;
                }
            },
            None => (Venue::new(config)?, 1),
        };
        obs.start(&venue);
        let mut out = Vec::with_capacity(64);
        let mut failed = None;
        let mut max_ts = 0;
        let opened = Journal::open_with_replay(&dir, config.journal_config(), from, |seq, p| {
            apply_record(&mut venue, &mut out, obs, &mut failed, &mut max_ts, seq, p);
        });
        match opened {
            Ok((journal, report)) => {
                if let Some(why) = failed {
                    return Err(ServerError::Recovery(why));
                }
                info.snapshot = attempt;
                info.replayed = report.replayed;
                info.damage = damage_line(&report);
                info.journal = report.to_string();
                info.next_seq = journal.next_seq();
                info.max_ts = max_ts;
                info.elapsed = t0.elapsed();
                return Ok((venue, journal, info));
            }
            Err(e) if try_older(&e) => {
                let what = match &attempt {
                    Some((_, path)) => format!("{}: {e}", path.display()),
                    None => {
                        return Err(ServerError::Recovery(format!(
                            "no usable snapshot and the journal cannot be replayed from the \
                             start: {e}"
                        )))
                    }
                };
                info.rejected_snapshots.push(what);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ServerError::Recovery("no recovery path".into()))
}

/// Options of [`replay_journal`].
#[derive(Clone, Debug, Default)]
pub struct ReplayOptions {
    /// Start from the newest usable snapshot (`true`) or from the journal's first record,
    /// which must then be seq 1 (`false`).
    pub from_snapshot: bool,
    /// Write every sequenced report regenerated by the replay here: CSV when the name ends
    /// in `.csv`, JSON lines otherwise (columns: account, seq, kind, client_order_id,
    /// order_id, symbol_id, side, price, qty, leaves, reason, liquidity).
    pub reports: Option<PathBuf>,
}

/// What [`replay_journal`] found.
#[derive(Clone, Debug)]
pub struct ReplaySummary {
    /// Records applied.
    pub records: u64,
    /// Time spent (snapshot restore included).
    pub elapsed: Duration,
    /// The state hash after the replay (64 hex digits).
    pub state_hash: String,
    /// The snapshot used, as (seq, path).
    pub snapshot: Option<(u64, PathBuf)>,
    /// Snapshots that could not be used, with the reason.
    pub rejected_snapshots: Vec<String>,
    /// Where the journal's valid data ended early, if it did.
    pub damage: Option<String>,
    /// Last sequence number applied (0 if none).
    pub last_seq: u64,
    /// Sequenced reports written to the reports file.
    pub reports_written: u64,
    /// Resting orders after the replay.
    pub live_orders: usize,
    /// For each configured account, ascending: the number its next report would carry (so a
    /// stream's reports up to it are accounted for, even those before the snapshot used).
    pub next_report_seq: Vec<(u32, u64)>,
}

struct ReportWriter {
    out: Option<BufWriter<File>>,
    csv: bool,
    written: u64,
    error: Option<std::io::Error>,
}

impl ReportWriter {
    fn write(&mut self, account: u32, r: &crate::codec::ExecutionReport) {
        let Some(w) = self.out.as_mut() else { return };
        if self.error.is_some() {
            return;
        }
        let res = if self.csv {
            writeln!(
                w,
                "{account},{},{},{},{},{},{},{},{},{},{},{}",
                r.seq,
                r.kind.name(),
                r.client_order_id,
                r.order_id,
                r.symbol_id,
                r.side.name(),
                r.price,
                r.qty,
                r.leaves,
                r.reason.name(),
                r.liquidity.name()
            )
        } else {
            writeln!(
                w,
                "{{\"account\": {account}, \"seq\": {}, \"kind\": \"{}\", \"client_order_id\": {}, \
                 \"order_id\": {}, \"symbol_id\": {}, \"side\": \"{}\", \"price\": {}, \"qty\": {}, \
                 \"leaves\": {}, \"reason\": \"{}\", \"liquidity\": \"{}\"}}",
                r.seq,
                r.kind.name(),
                r.client_order_id,
                r.order_id,
                r.symbol_id,
                r.side.name(),
                r.price,
                r.qty,
                r.leaves,
                r.reason.name(),
                r.liquidity.name()
            )
        };
        match res {
            Ok(()) => self.written += 1,
            Err(e) => self.error = Some(e),
        }
    }
}

impl ReplayObserver for ReportWriter {
    fn start(&mut self, _venue: &Venue) {}
    fn output(&mut self, msg: &Outbound) {
        if let Outbound::Report {
            account, report, ..
        } = msg
        {
            self.write(*account, report);
        }
    }
}

/// Replays a journal directory read-only (module doc) and returns the resulting state hash.
/// `config` must be the one the journal was written under (its engine fingerprint is what
/// snapshots are checked against); `tradecore replay` reads the copy the server keeps in the
/// journal directory (`venue.toml`).
pub fn replay_journal(
    dir: &Path,
    config: &Config,
    opts: &ReplayOptions,
) -> Result<ReplaySummary, ServerError> {
    let t0 = Instant::now();
    let reader = JournalReader::open(dir)?;
    let mut rejected = Vec::new();
    let mut writer = ReportWriter {
        out: None,
        csv: false,
        written: 0,
        error: None,
    };
    if let Some(path) = &opts.reports {
        let f = File::create(path).map_err(|source| ServerError::Io {
            what: format!("cannot create {}", path.display()),
            source,
        })?;
        let mut w = BufWriter::new(f);
        writer.csv = path.extension().is_some_and(|e| e == "csv");
        if writer.csv {
            let _ = writeln!(
                w,
                "account,seq,kind,client_order_id,order_id,symbol_id,side,price,qty,leaves,reason,liquidity"
            );
        }
        writer.out = Some(w);
    }
    let mut attempts: Vec<Option<(u64, PathBuf)>> = Vec::new();
    if opts.from_snapshot {
        attempts.extend(snapshot_candidates(dir)?.into_iter().map(Some));
    }
    attempts.push(None);
    for attempt in attempts {
        let (mut venue, from) = match &attempt {
            Some((seq, path)) => match restore(config, *seq, path) {
                Ok(v) => (v, seq + 1),
                Err(why) => {
                    rejected.push(format!("{}: {why}", path.display()));
                    continue;
                }
            },
            None => (Venue::new(config)?, 1),
        };
        let mut out = Vec::with_capacity(64);
        let mut failed = None;
        let mut max_ts = 0;
        let replayed = reader.replay_from(from, |seq, p| {
            apply_record(
                &mut venue,
                &mut out,
                &mut writer,
                &mut failed,
                &mut max_ts,
                seq,
                p,
            );
        });
        match replayed {
            Ok(report) => {
                if let Some(why) = failed {
                    return Err(ServerError::Recovery(why));
                }
                if let Some(mut w) = writer.out.take() {
                    if let Err(e) = w.flush() {
                        writer.error.get_or_insert(e);
                    }
                }
                if let Some(source) = writer.error {
                    return Err(ServerError::Io {
                        what: "cannot write the reports file".into(),
                        source,
                    });
                }
                return Ok(ReplaySummary {
                    records: report.replayed,
                    elapsed: t0.elapsed(),
                    state_hash: venue.state_hash_hex(),
                    snapshot: attempt,
                    rejected_snapshots: rejected,
                    damage: damage_line(&report),
                    last_seq: report.next_seq.saturating_sub(1),
                    reports_written: writer.written,
                    live_orders: venue.live_orders(),
                    next_report_seq: venue
                        .account_ids()
                        .filter_map(|a| venue.next_report_seq(a).map(|n| (a, n)))
                        .collect(),
                });
            }
            Err(e) if try_older(&e) => match &attempt {
                Some((_, path)) => rejected.push(format!("{}: {e}", path.display())),
                None => {
                    return Err(ServerError::Recovery(format!(
                        "cannot replay {} from its first record ({e}); replay from a snapshot \
                         instead",
                        dir.display()
                    )))
                }
            },
            Err(e) => return Err(e.into()),
        }
    }
    Err(ServerError::Recovery("no replay path".into()))
}
