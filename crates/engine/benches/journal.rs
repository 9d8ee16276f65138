//! Journal benchmarks (criterion, real files in a temp dir on the working disk):
//!
//! * `journal_append_64B/{none,batch_1000rec_1ms,always}`: appends of 64-byte payloads (80
//!   bytes on disk), one record per iteration, 64 MiB segments, rotation included; the sync
//!   thread syncs in the background under `batch` and `always`. Old segments are deleted
//!   outside the timed region so the disk does not fill up.
//! * `journal_replay_64B/{reader,open_with_replay}`: replaying a 2M-record journal from the
//!   page cache (CRC and continuity checked for every record); target >= 5M records/s.
//!
//! After criterion, a summary pass prints for each policy: records/s, payload and on-disk
//! MB/s, how long after the last append everything was durable, the sync latency (count,
//! mean, max, p50/p99 bucket bounds), and the latency of single `append` calls (HdrHistogram,
//! p50..max) while the sync thread runs; under `always` also the one-record commit latency
//! (append until `DurableSeq` covers it). Set `JOURNAL_BENCH_RESTART=<records>` to also time
//! a restart: `open_with_replay` of that many journaled 64-byte records.
//!
//! Run only the summary: `cargo bench -p tradecore-engine --bench journal -- summary-only`
//! (a filter that matches no criterion benchmark; the summary always runs).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hdrhistogram::Histogram;
use tradecore_engine::journal::{FsyncPolicy, Journal, JournalConfig, JournalReader, JournalStats};

const PAYLOAD: usize = 64;
const SEGMENT: u64 = 64 << 20;
const REPLAY_RECORDS: u64 = 2_000_000;
const BATCH: FsyncPolicy = FsyncPolicy::Batch {
    records: 1000,
    micros: 1000,
};

fn payload(seq: u64) -> [u8; PAYLOAD] {
    let mut p = [0u8; PAYLOAD];
    for (i, chunk) in p.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&(seq.wrapping_mul(31).wrapping_add(i as u64)).to_le_bytes());
    }
    p
}

fn open(dir: &Path, fsync: FsyncPolicy) -> Journal {
    Journal::open(
        dir,
        JournalConfig {
            segment_size: SEGMENT,
            fsync,
        },
    )
    .expect("open")
    .0
}

fn bench_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("journal_append_64B");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for (name, policy) in [
        ("none", FsyncPolicy::None),
        ("batch_1000rec_1ms", BATCH),
        ("always", FsyncPolicy::Always),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut j = open(dir.path(), policy);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let p = payload(j.next_seq());
                let t0 = Instant::now();
                for _ in 0..iters {
                    black_box(j.append(black_box(&p)).expect("append"));
                }
                let dt = t0.elapsed();
                let next = j.next_seq();
                j.truncate_before(next).expect("truncate");
                dt
            });
        });
        report_syncs(&format!("criterion append/{name}"), &j.stats());
    }
    group.finish();
}

fn write_journal(dir: &Path, records: u64) {
    let mut j = open(dir, FsyncPolicy::None);
    for seq in 1..=records {
        j.append(&payload(seq)).expect("append");
    }
    j.close().expect("close");
}

fn bench_replay(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_journal(dir.path(), REPLAY_RECORDS);
    let mut group = c.benchmark_group("journal_replay_64B");
    group.throughput(Throughput::Elements(REPLAY_RECORDS));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    group.bench_function("reader", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            let r = JournalReader::open(dir.path())
                .expect("reader")
                .replay_all(|seq, p| sum = sum.wrapping_add(seq ^ u64::from(p[7])))
                .expect("replay");
            assert_eq!(r.records, REPLAY_RECORDS);
            black_box(sum)
        });
    });
    group.bench_function("open_with_replay", |b| {
        b.iter(|| {
            let mut n = 0u64;
            let cfg = JournalConfig {
                segment_size: SEGMENT,
                fsync: FsyncPolicy::None,
            };
            let (j, r) = Journal::open_with_replay(dir.path(), cfg, 1, |_, p| n += u64::from(p[0]))
                .expect("open");
            assert_eq!(r.replayed, REPLAY_RECORDS);
            black_box((j.next_seq(), n))
        });
    });
    group.finish();
}

fn report_syncs(label: &str, s: &JournalStats) {
    if s.fsyncs == 0 {
        println!("{label}: {} records, no sync", s.records);
        return;
    }
    let h = &s.fsync_histogram;
    println!(
        "{label}: {} records, {} syncs, mean {:.1} us, last {:.1} us, max {:.1} us, p50 <= {:.0} us, p99 <= {:.0} us",
        s.records,
        s.fsyncs,
        s.fsync_ns_total as f64 / s.fsyncs as f64 / 1e3,
        s.fsync_ns_last as f64 / 1e3,
        s.fsync_ns_max as f64 / 1e3,
        h.quantile_upper_ns(500).unwrap_or(0) as f64 / 1e3,
        h.quantile_upper_ns(990).unwrap_or(0) as f64 / 1e3,
    );
}

fn pct(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1e3
}

/// One fixed-size timed pass per policy, printed as plain figures: throughput, the latency
/// of each `append` call (the engine thread's cost; it must not include a disk wait under
/// any policy), the background sync latencies, and under `always` the commit latency (append
/// until `DurableSeq::get` covers the record, one record at a time: what a publisher holding
/// a report waits on an idle venue).
fn summary(_c: &mut Criterion) {
    println!("\n== journal summary (64-byte payloads, 80 bytes per record on disk) ==");
    for (name, policy, records) in [
        ("none", FsyncPolicy::None, 5_000_000u64),
        ("batch(1000 rec, 1 ms)", BATCH, 5_000_000),
        (
            "batch(64 rec, 200 us)",
            FsyncPolicy::Batch {
                records: 64,
                micros: 200,
            },
            5_000_000,
        ),
        ("always", FsyncPolicy::Always, 5_000_000),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut j = open(dir.path(), policy);
        let durable = j.durable();
        let p = payload(1);
        let t0 = Instant::now();
        for _ in 0..records {
            j.append(&p).expect("append");
        }
        let dt = t0.elapsed().as_secs_f64();
        let last = j.next_seq() - 1;
        let t1 = Instant::now();
        durable
            .wait_for(last, Duration::from_secs(600))
            .expect("durable");
        let drain = t1.elapsed().as_secs_f64();
        let s = j.stats();
        println!(
            "append {name}: {records} records in {:.3} s = {:.2} M records/s, {:.0} MB/s payload, {:.0} MB/s on disk; durable {:.1} ms after the last append",
            dt,
            records as f64 / dt / 1e6,
            s.payload_bytes as f64 / dt / 1e6,
            s.bytes_written as f64 / dt / 1e6,
            drain * 1e3,
        );
        report_syncs(&format!("  syncs {name}"), &s);
        // Per-call latency of append (rotation included), in a second pass on the same
        // journal while the sync thread keeps syncing.
        let mut h = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).expect("hist");
        for _ in 0..1_000_000 {
            let t = Instant::now();
            j.append(&p).expect("append");
            h.saturating_record(t.elapsed().as_nanos() as u64);
        }
        println!(
            "  append latency {name}: p50 {:.2} us, p99 {:.2} us, p99.9 {:.2} us, p99.99 {:.2} us, max {:.1} us",
            pct(&h, 0.5),
            pct(&h, 0.99),
            pct(&h, 0.999),
            pct(&h, 0.9999),
            h.max() as f64 / 1e3
        );
        if policy == FsyncPolicy::Always {
            let mut c = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).expect("hist");
            for _ in 0..2_000 {
                let t = Instant::now();
                let seq = j.append(&p).expect("append");
                while durable.get() < seq {
                    std::hint::spin_loop();
                }
                c.saturating_record(t.elapsed().as_nanos() as u64);
            }
            println!(
                "  commit latency always (one record at a time, append -> durable): p50 {:.0} us, p99 {:.0} us, max {:.0} us",
                pct(&c, 0.5),
                pct(&c, 0.99),
                c.max() as f64 / 1e3
            );
        }
        drop(j);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    write_journal(dir.path(), REPLAY_RECORDS);
    let t0 = Instant::now();
    let mut n = 0u64;
    JournalReader::open(dir.path())
        .expect("reader")
        .replay_all(|_, _| n += 1)
        .expect("replay");
    let dt = t0.elapsed().as_secs_f64();
    println!(
        "replay: {n} records in {:.3} s = {:.2} M records/s",
        dt,
        n as f64 / dt / 1e6
    );

    if let Some(records) = std::env::var("JOURNAL_BENCH_RESTART")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let t0 = Instant::now();
        write_journal(dir.path(), records);
        println!(
            "restart: wrote {records} records in {:.2} s",
            t0.elapsed().as_secs_f64()
        );
        let t0 = Instant::now();
        let mut n = 0u64;
        let cfg = JournalConfig {
            segment_size: SEGMENT,
            fsync: FsyncPolicy::None,
        };
        let (j, r) = Journal::open_with_replay(dir.path(), cfg, 1, |_, _| n += 1).expect("open");
        let dt = t0.elapsed().as_secs_f64();
        println!(
            "restart: open_with_replay of {} records ({} segments) in {:.3} s = {:.2} M records/s; next seq {}",
            r.records,
            r.segments,
            dt,
            n as f64 / dt / 1e6,
            j.next_seq()
        );
    }
}

criterion_group!(benches, bench_append, bench_replay, summary);
criterion_main!(benches);
