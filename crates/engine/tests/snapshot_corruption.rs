//! Venue restart over damaged files: a real venue journal (encoded `Command`s appended before
//! they are applied, as the engine does) with venue snapshots every 400 commands (the newest
//! three kept), then, over many seeded trials, bytes flipped and files truncated at random
//! offsets in the snapshot files, in the journal segments, or in both; then the start-up
//! sequence (newest valid snapshot, `Venue::restore`, `Journal::open_with_replay` of the tail;
//! on `JournalBehind`, the newest valid snapshot the journal reaches). For every trial:
//!
//! * nothing panics and recovery always ends with a venue;
//! * every journal record that lies wholly before the first damaged byte is kept (computed
//!   from the documented layout, independently of the reader), and when records are lost the
//!   journal's report says where and why;
//! * a damaged snapshot is skipped and named in the load report, and the one used is the
//!   newest undamaged one the journal reaches;
//! * the recovered venue is bit for bit (state hash) the venue a fresh replay of the kept
//!   journal prefix gives, and with an intact journal it is the venue before the damage.
//!
//! `TC_CORRUPTION_TRIALS` scales the trial count, `TC_CORRUPTION_SEED` replays one seed.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::Rng;
use tradecore_book::Side;
use tradecore_engine::codec::Cancel;
use tradecore_engine::config::{api_key_sha256, to_hex, Config};
use tradecore_engine::journal::{
    list_snapshots, load_latest_snapshot_upto, padded_record_len, FsyncPolicy, Journal,
    JournalConfig, JournalError, RecoveryReport, SnapshotLoad, SnapshotStore,
};
use tradecore_engine::venue::{limit_order, Command, Input, Venue, MAX_COMMAND_LEN};

const SEGMENT: u64 = 4096;
const COMMANDS: usize = 2000;
const SNAPSHOT_EVERY: usize = 400;
const KEEP: usize = 3;

fn config() -> Config {
    let accounts: String = (1..=2)
        .map(|a| {
            format!(
                "[[account]]\naccount = {a}\napi_key_sha256 = \"{}\"\n\n",
                to_hex(&api_key_sha256(&format!("key-{a}")))
            )
        })
        .collect();
    Config::from_toml_str(&format!(
        "[session]\nrate_limit_per_sec = 1000000\nrate_limit_burst = 1000000\n\n\
         [journal]\ndir = \"unused\"\n\n\
         [[instrument]]\nsymbol_id = 1\nsymbol = \"AAA\"\ntick_size = \"0.01\"\n\
         lot_size = \"1\"\nprice_band = {{ lo_ticks = 1, hi_ticks = 1000 }}\n\
         max_order_qty = 1000\nbook_capacity = 4096\n\n{accounts}"
    ))
    .unwrap()
}

fn journal_config() -> JournalConfig {
    JournalConfig {
        segment_size: SEGMENT,
        fsync: FsyncPolicy::None,
    }
}

/// Two logons, then a seeded mix of resting orders, crossing orders and cancels.
fn commands() -> Vec<Command> {
    let mut r = Rng(0x5eed_cafe);
    let mut out = Vec::with_capacity(COMMANDS);
    let ts0 = 1_700_000_000_000_000_000u64;
    for a in 1..=2u32 {
        out.push(Command {
            session: u64::from(a),
            account: 0,
            ts_ns: ts0,
            input: Input::Logon {
                account: a,
                key_sha256: api_key_sha256(&format!("key-{a}")),
                heartbeat_ms: 1000,
            },
        });
    }
    let mut coid = 0u64;
    while out.len() < COMMANDS {
        let account = 1 + r.below(2) as u32;
        let input = if r.below(4) == 0 && coid > 0 {
            Input::Cancel(Cancel {
                client_order_id: 1 + r.below(coid),
                symbol_id: 1,
            })
        } else {
            coid += 1;
            let side = if r.below(2) == 0 {
                Side::Buy
            } else {
                Side::Sell
            };
            let price = 480 + r.below(40) as i64;
            Input::NewOrder(limit_order(coid, 1, side, price, 1 + r.below(9)))
        };
        out.push(Command {
            session: u64::from(account),
            account,
            ts_ns: ts0 + out.len() as u64 * 1_000,
            input,
        });
    }
    out
}

fn hash_of_prefix(cfg: &Config, cmds: &[Command]) -> [u8; 32] {
    let mut v = Venue::new(cfg).unwrap();
    let mut out = Vec::new();
    for c in cmds {
        out.clear();
        v.apply(c, &mut out);
    }
    v.state_hash()
}

/// (segment first seqs, per record (segment index, start, end of CRC-covered bytes)),
/// from the documented layout alone.
fn layout(cmds: &[Command]) -> (Vec<u64>, Vec<(usize, u64, u64)>) {
    let mut segs = vec![1u64];
    let mut at = 64u64;
    let mut places = Vec::new();
    for (i, c) in cmds.iter().enumerate() {
        let len = c.encoded_len();
        let rec = padded_record_len(len) as u64;
        if at + rec > SEGMENT {
            segs.push(i as u64 + 1);
            at = 64;
        }
        places.push((segs.len() - 1, at, at + 16 + len as u64));
        at += rec;
    }
    (segs, places)
}

fn seg_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.wal"))
}

/// The pristine directory: journal + the newest `KEEP` snapshots.
fn template(cfg: &Config, cmds: &[Command]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), journal_config()).unwrap();
    let store = SnapshotStore::new(dir.path(), KEEP).unwrap();
    let mut v = Venue::new(cfg).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; MAX_COMMAND_LEN];
    for (i, c) in cmds.iter().enumerate() {
        let n = c.encode_into(&mut buf).unwrap();
        let seq = j.append(&buf[..n]).unwrap();
        assert_eq!(seq, i as u64 + 1);
        out.clear();
        v.apply(c, &mut out);
        if seq as usize % SNAPSHOT_EVERY == 0 {
            j.flush().unwrap();
            store.write(seq, &v.snapshot()).unwrap();
        }
    }
    j.close().unwrap();
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

struct Recovered {
    venue: Venue,
    report: RecoveryReport,
    /// Every snapshot load made, newest attempt last.
    loads: Vec<SnapshotLoad>,
    snapshot_seq: Option<u64>,
}

/// The start-up sequence a venue server runs.
fn recover(dir: &Path, cfg: &Config) -> Recovered {
    let mut max_seq = u64::MAX;
    let mut loads = Vec::new();
    loop {
        let load = load_latest_snapshot_upto(dir, max_seq).unwrap();
        let (mut venue, from) = match &load.snapshot {
            Some(s) => (Venue::restore(cfg, &s.body).unwrap(), s.seq + 1),
            None => (Venue::new(cfg).unwrap(), 1),
        };
        let snapshot_seq = load.snapshot.as_ref().map(|s| s.seq);
        loads.push(load);
        let mut out = Vec::new();
        let mut bad = 0;
        let opened = Journal::open_with_replay(dir, journal_config(), from, |_, p| {
            match Command::decode(p) {
                Ok(c) => {
                    out.clear();
                    venue.apply(&c, &mut out);
                }
                Err(_) => bad += 1,
            }
        });
        match opened {
            Ok((j, report)) => {
                drop(j);
                assert_eq!(bad, 0, "a record with a valid CRC failed to decode");
                return Recovered {
                    venue,
                    report,
                    loads,
                    snapshot_seq,
                };
            }
            Err(JournalError::JournalBehind { next, .. }) => {
                assert!(snapshot_seq.is_some_and(|s| s >= next));
                max_seq = next - 1;
            }
            Err(e) => panic!("recovery failed: {e}"),
        }
    }
}

fn seed() -> u64 {
    std::env::var("TC_CORRUPTION_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x0bad_5eed)
}

fn trials() -> u64 {
    let scale: u64 = std::env::var("TC_CORRUPTION_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    60 * scale.max(1)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Damage {
    Flip,
    Truncate,
}

/// Damages `path` at a random offset; returns the first damaged byte offset.
fn damage(path: &Path, how: Damage, rng: &mut Rng) -> u64 {
    let mut bytes = fs::read(path).unwrap();
    let len = bytes.len() as u64;
    match how {
        Damage::Flip => {
            let at = rng.below(len);
            let mut first = at;
            bytes[at as usize] ^= 1 + rng.below(255) as u8;
            for _ in 0..rng.below(3) {
                let k = rng.below(len);
                first = first.min(k);
                bytes[k as usize] ^= 1 + rng.below(255) as u8;
            }
            fs::write(path, bytes).unwrap();
            first
        }
        Damage::Truncate => {
            let at = rng.below(len);
            fs::OpenOptions::new()
                .write(true)
                .open(path)
                .unwrap()
                .set_len(at)
                .unwrap();
            at
        }
    }
}

#[test]
fn restart_survives_damaged_snapshots_and_journal_segments() {
    let cfg = config();
    let cmds = commands();
    let tpl = template(&cfg, &cmds);
    let (segs, places) = layout(&cmds);
    let snaps = list_snapshots(tpl.path()).unwrap();
    let snap_seqs: Vec<u64> = snaps.iter().map(|s| s.0).collect();
    assert_eq!(snap_seqs, vec![1200, 1600, 2000]);
    let final_hash = hash_of_prefix(&cfg, &cmds);

    // The undamaged restart uses the newest snapshot and reproduces the venue.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(tpl.path(), dir.path());
    let r = recover(dir.path(), &cfg);
    assert_eq!(r.snapshot_seq, Some(2000));
    assert!(r.report.is_clean(), "{}", r.report);
    assert_eq!(r.venue.state_hash(), final_hash);

    let seed = seed();
    let mut rng = Rng(seed);
    let mut seen = [0u32; 4];
    for trial in 0..trials() {
        let ctx = format!("seed {seed} (TC_CORRUPTION_SEED), trial {trial}");
        let dir = tempfile::tempdir().unwrap();
        copy_dir(tpl.path(), dir.path());
        let mode = rng.below(4); // 0,1: snapshots; 2: journal; 3: both
        seen[mode as usize] += 1;
        let how = |rng: &mut Rng| {
            if rng.below(2) == 0 {
                Damage::Flip
            } else {
                Damage::Truncate
            }
        };

        // Snapshots: damage the newest one, or the newest two.
        let mut damaged_snaps = Vec::new();
        if mode != 2 {
            let n = if mode == 1 { 2 } else { 1 };
            for (seq, path) in snaps.iter().rev().take(n) {
                let p = dir.path().join(path.file_name().unwrap());
                damage(&p, how(&mut rng), &mut rng);
                damaged_snaps.push(*seq);
            }
        }
        // Journal: one segment, at a random offset.
        let mut must_keep = COMMANDS as u64;
        let mut journal_damaged = false;
        if mode >= 2 {
            let s = rng.below(segs.len() as u64) as usize;
            let off = damage(&seg_path(dir.path(), segs[s]), how(&mut rng), &mut rng);
            must_keep = places
                .iter()
                .take_while(|&&(seg, _, end)| seg < s || (seg == s && end <= off))
                .count() as u64;
            journal_damaged = true;
        }

        let r = recover(dir.path(), &cfg);
        let kept = r.report.next_seq - 1;
        assert!(
            kept >= must_keep,
            "{ctx}: kept {kept} records, {must_keep} lie before the damage: {}",
            r.report
        );
        if kept < COMMANDS as u64 {
            let d = r
                .report
                .damage
                .as_ref()
                .unwrap_or_else(|| panic!("{ctx}: records lost without a report"));
            assert_eq!(d.last_good_seq, (kept > 0).then_some(kept), "{ctx}");
        }
        if !journal_damaged {
            assert!(r.report.is_clean(), "{ctx}: {}", r.report);
        }
        // Every damaged snapshot that was considered is named as rejected; the one used is
        // the newest intact one the journal reaches.
        let expected_snapshot = snap_seqs
            .iter()
            .rev()
            .copied()
            .find(|s| !damaged_snaps.contains(s) && *s <= kept);
        assert_eq!(r.snapshot_seq, expected_snapshot, "{ctx}");
        let rejected: Vec<u64> = r
            .loads
            .iter()
            .flat_map(|l| l.rejected.iter().map(|x| x.seq))
            .collect();
        for s in &damaged_snaps {
            if *s <= kept && expected_snapshot.is_none_or(|e| *s > e) {
                assert!(
                    rejected.contains(s),
                    "{ctx}: damaged snapshot {s} not reported"
                );
            }
        }
        // Bit for bit the venue of the kept prefix.
        let want = if kept == COMMANDS as u64 {
            final_hash
        } else {
            hash_of_prefix(&cfg, &cmds[..kept as usize])
        };
        assert_eq!(r.venue.state_hash(), want, "{ctx}: {}", r.report);
    }
    assert!(seen.iter().all(|&n| n > 0), "every mode ran: {seen:?}");
}
