"""Crash soak of the venue: ``tradecore serve`` under ``tradecore loadgen`` load, killed with
SIGKILL at a seeded random moment, restarted on the same journal and checked.

What it owns
------------
:func:`run_trial` runs one crash trial in a directory of its own; :func:`main` (``bench/
soak_venue.py --trials 100``, or ``TRADECORE_SOAK_TRIALS``) runs many and prints a summary,
exit status 1 when any trial failed. ``tests/integration/test_venue_crash.py`` runs a few trials
of :func:`run_trial` in ``make test``.

One trial, all with real processes, sockets and files:

1. A venue config derived from the trial seed (fsync ``none``/``batch``/``always``, a small
   ``snapshot_every`` and ``segment_size`` so snapshots and segment rotation are in play,
   every journal segment kept or old ones pruned, cancel-on-disconnect on or off), one
   account per load-generator session.
2. ``tradecore serve`` as a subprocess; ``tradecore loadgen`` as a subprocess, open loop at a
   modest rate, ``--report-log`` on. Once every session is logged on (read from ``/metrics``)
   the trial sleeps a seeded random delay and SIGKILLs the server; the load generator notices
   the dropped sessions and writes its report log.
3. The killed journal is replayed (:func:`tradecore._core.replay_journal`, from the newest
   snapshot and, when every segment is kept, from the first record too) with every report
   regenerated. Checks:

   (a) per account, every report the client received (by ``seq``) equals the regenerated
       report with that ``seq``, field by field: every acknowledged order is there with its
       exact state, nothing acknowledged is lost;
   (b) received streams have no duplicate or missing numbers; regenerated streams are
       ``1..N`` exactly; no client order id is accepted twice per account; no report is
       about an order that is not live; the replay's live-order count equals the live
       orders the streams describe;
   (c) the restarted server's recovered state hash (its ``recovered`` log line) equals the
       replay of the killed journal; its state hash at a SIGTERM stop (no further commands)
       equals ``tradecore replay --journal DIR`` (the CLI), and a second replay (in-process,
       from the first record when possible) gives the same hash;
   (d) after a second restart every account logs on with ``LogonAck.next_seq`` = regenerated
       stream length + 1; an order acknowledged before the kill is cancelled and its report
       carries the regenerated leaves; a mass cancel per account cancels exactly the live
       orders the regenerated stream describes, with their leaves; the venue then holds only
       the sentinel orders of this check, and its stop hash equals a fresh replay.

   With cancel-on-disconnect the restart closes the sessions the killed process left open:
   then the regenerated stream after the restart must be the one before plus exactly one
   ``CANCELLED``/``DISCONNECT`` report per live order, with its leaves, and nothing stays live.

Invariants: a trial is fully determined by its seed except for the kill moment's effect on
the load (timing); the seed and the parameters are printed first, so a failure is re-run
with ``bench/soak_venue.py --seed S --trials 1``. A trial never waits forever: every wait has
a timeout and a failed trial kills what it started.

Cost: a few seconds per trial (three server starts, one load-generator run of about one
second, replays of a few thousand records); ``--trials 100`` takes about 10 to 20 minutes on
the 2-core machine.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tradecore._core import replay_journal
from tradecore.enums import EventKind, Side
from tradecore.venue.client import Client
from tradecore.venue.codec import ExecutionReport
from tradecore.venue.server import ServeProcess

__all__ = [
    "Report",
    "TrialFailed",
    "TrialParams",
    "TrialResult",
    "live_orders",
    "main",
    "params_for_seed",
    "read_loadgen_log",
    "read_replay_reports",
    "run_trial",
]

SYMBOL = 1
MID = 50_000
"""Instrument 1's mid price in ticks (the centre of its band), the load generator's mid."""
WAIT = 30.0
"""Seconds any single step of a trial may take before the trial fails."""
KILL_CHECKS = frozenset({"unanswered", "skipped", "disconnects"})
"""The load generator's checks that the venue's death explains (its other checks must pass)."""
KEEP_ALL = 1_000_000
"""``snapshots_kept`` that keeps every snapshot and so every journal segment."""


class TrialFailed(AssertionError):
    """A crash-trial check failed; the message names the check, the account and the seq."""


@dataclass(frozen=True, slots=True)
class TrialParams:
    """Everything a trial varies, derived from its seed by :func:`params_for_seed`."""

    seed: int
    fsync: str
    snapshot_every: int
    keep_all: bool
    segment_size: int
    cancel_on_disconnect: bool
    accounts: int
    rate: int
    kill_delay: float
    loadgen_seed: int
    pipeline: str = "threads"

    def describe(self) -> str:
        """One line with every parameter (printed before the trial runs)."""
        return (
            f"seed={self.seed} fsync={self.fsync} snapshot_every={self.snapshot_every} "
            f"segments={'all kept' if self.keep_all else 'pruned'} "
            f"segment_size={self.segment_size} cancel_on_disconnect={self.cancel_on_disconnect} "
            f"accounts={self.accounts} rate={self.rate}/s kill_delay={self.kill_delay:.3f}s "
            f"loadgen_seed={self.loadgen_seed} pipeline={self.pipeline}"
        )


def params_for_seed(
    seed: int,
    *,
    fsync: str | None = None,
    cancel_on_disconnect: bool | None = None,
    keep_all: bool | None = None,
    pipeline: str | None = None,
) -> TrialParams:
    """The trial parameters of ``seed``; keyword arguments pin one of them."""
    rng = random.Random(seed)
    f = rng.choices(["none", "batch", "always"], weights=[4, 4, 2])[0]
    snap = rng.choice([40, 100, 250, 600])
    keep = rng.random() < 0.75
    if keep_all is not None:
        keep = keep_all
    # Segments before the oldest kept snapshot are deleted whatever ``snapshots_kept`` is, so
    # a journal keeps its first record only while the first segment outlives the first
    # snapshot: large segments then (rotation still happens later in the run).
    seg = rng.choice([65536, 262144]) if keep else rng.choice([4096, 16384, 65536])
    cod = rng.random() < 0.3
    accounts = rng.randint(2, 4)
    rate = rng.choice([1000, 2000, 4000])
    delay = rng.uniform(0.05, 1.5)
    lg_seed = rng.randrange(1, 2**31)
    # Drawn last, so the other parameters of a seed are those it had before the inline
    # pipeline existed.
    mode = rng.choice(["threads", "inline"])
    return TrialParams(
        seed=seed,
        fsync=f if fsync is None else fsync,
        snapshot_every=snap,
        keep_all=keep,
        segment_size=seg,
        cancel_on_disconnect=cod if cancel_on_disconnect is None else cancel_on_disconnect,
        accounts=accounts,
        rate=rate,
        kill_delay=delay,
        loadgen_seed=lg_seed,
        pipeline=mode if pipeline is None else pipeline,
    )


def api_key(account: int) -> str:
    """The test API key of ``account``."""
    return f"crash-key-{account}"


def write_config(directory: Path, p: TrialParams) -> Path:
    """Writes ``venue.toml`` for the trial into ``directory``; the journal is ``journal/``."""
    accounts = "".join(
        f"[[account]]\naccount = {a}\n"
        f'api_key_sha256 = "{hashlib.sha256(api_key(a).encode()).hexdigest()}"\n\n'
        for a in range(1, p.accounts + 1)
    )
    text = f"""
[listen]
order_entry = "127.0.0.1:0"
metrics = "127.0.0.1:0"

[session]
rate_limit_per_sec = 1000000
rate_limit_burst = 1000000
cancel_on_disconnect = {str(p.cancel_on_disconnect).lower()}
heartbeat_ms = 1000
idle_timeout_ms = 10000

[journal]
dir = "journal"
fsync = "{p.fsync}"
batch_records = 32
batch_micros = 500
snapshot_every = {p.snapshot_every}
snapshots_kept = {KEEP_ALL if p.keep_all else 2}
segment_size = {p.segment_size}

[feed]
enabled = false

[pipeline]
mode = "{p.pipeline}"

[[instrument]]
symbol_id = {SYMBOL}
symbol = "CRASH"
tick_size = "0.01"
lot_size = "1"
price_band = {{ lo_ticks = 1, hi_ticks = {2 * MID - 1} }}
max_order_qty = 1000000
book_capacity = 65536

{accounts}"""
    path = directory / "venue.toml"
    path.write_text(text)
    return path


# ---- reports ----


@dataclass(frozen=True, slots=True)
class Report:
    """One execution report of an account's stream, in the fields both the load generator's
    log and the replay's regenerated stream carry (enums by name, reason ``NONE`` when none)."""

    seq: int
    kind: str
    reason: str
    client_order_id: int
    order_id: int
    symbol_id: int
    side: str
    liquidity: str
    price: int
    qty: int
    leaves: int


def read_loadgen_log(path: Path) -> dict[int, list[Report]]:
    """The load generator's ``--report-log`` CSV: each account's received reports, in the
    order they arrived (unsequenced ones left out)."""
    out: dict[int, list[Report]] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            seq = int(row["seq"])
            if seq == 0:
                continue
            out.setdefault(int(row["account"]), []).append(
                Report(
                    seq=seq,
                    kind=row["kind"],
                    reason=row["reason"] or "NONE",
                    client_order_id=int(row["client_order_id"]),
                    order_id=int(row["order_id"]),
                    symbol_id=int(row["symbol_id"]),
                    side=row["side"],
                    liquidity=row["liquidity"],
                    price=int(row["price"]),
                    qty=int(row["qty"]),
                    leaves=int(row["leaves"]),
                )
            )
    return out


def read_replay_reports(path: Path) -> dict[int, list[Report]]:
    """``replay --reports FILE.jsonl``: each account's regenerated reports, in seq order."""
    out: dict[int, list[Report]] = {}
    with path.open() as f:
        for line in f:
            d = json.loads(line)
            out.setdefault(int(d["account"]), []).append(
                Report(
                    seq=int(d["seq"]),
                    kind=str(d["kind"]),
                    reason=str(d["reason"]) or "NONE",
                    client_order_id=int(d["client_order_id"]),
                    order_id=int(d["order_id"]),
                    symbol_id=int(d["symbol_id"]),
                    side=str(d["side"]),
                    liquidity=str(d["liquidity"]),
                    price=int(d["price"]),
                    qty=int(d["qty"]),
                    leaves=int(d["leaves"]),
                )
            )
    for reports in out.values():
        reports.sort(key=lambda r: r.seq)
    return out


def _wire(r: ExecutionReport) -> Report:
    return Report(
        seq=r.seq,
        kind=r.kind.name,
        reason=r.reason.name,
        client_order_id=r.client_order_id,
        order_id=r.order_id,
        symbol_id=r.symbol_id,
        side=r.side.name,
        liquidity=r.liquidity.name,
        price=r.price,
        qty=r.qty,
        leaves=r.leaves,
    )


@dataclass(slots=True)
class Live:
    """A live order as an account's report stream describes it."""

    order_id: int
    side: str
    price: int
    leaves: int


def live_orders(account: int, reports: Iterable[Report]) -> dict[int, Live]:
    """Replays one account's stream (in seq order) into its live orders by client order id.

    Raises :class:`TrialFailed` when the stream is inconsistent: an id accepted twice, a
    fill, cancel or replace of an order that is not live, or leaves that do not add up."""
    live: dict[int, Live] = {}
    accepted: set[int] = set()
    for r in reports:
        where = f"account {account} seq {r.seq} ({r.kind} of order {r.client_order_id})"
        o = live.get(r.client_order_id)
        if r.kind == "ACCEPTED":
            if r.client_order_id in accepted:
                raise TrialFailed(f"(b) client order id accepted twice: {where}")
            accepted.add(r.client_order_id)
            if r.leaves != r.qty:
                raise TrialFailed(f"(b) ACCEPTED with leaves != qty: {where}: {r}")
            if r.leaves > 0:
                live[r.client_order_id] = Live(r.order_id, r.side, r.price, r.leaves)
        elif r.kind == "REJECTED":
            continue
        elif o is None:
            raise TrialFailed(f"(b) report about an order that is not live: {where}: {r}")
        elif o.order_id != r.order_id:
            raise TrialFailed(f"(b) order id changed from {o.order_id}: {where}: {r}")
        elif r.kind == "FILL":
            if r.leaves != o.leaves - r.qty:
                raise TrialFailed(f"(b) fill leaves {o.leaves} - {r.qty} != {r.leaves}: {where}")
            o.leaves = r.leaves
            if r.leaves == 0:
                del live[r.client_order_id]
        elif r.kind == "CANCELLED":
            if r.qty != o.leaves:
                raise TrialFailed(f"(b) cancelled qty {r.qty} != leaves {o.leaves}: {where}")
            del live[r.client_order_id]
        elif r.kind == "REPLACED":
            o.price, o.leaves = r.price, r.leaves
        else:
            raise TrialFailed(f"unknown report kind: {where}")
    return live


# ---- processes ----


def _metric(addr: tuple[str, int], name: str) -> int | None:
    try:
        with urllib.request.urlopen(f"http://{addr[0]}:{addr[1]}/metrics", timeout=5) as resp:
            body = resp.read().decode()
    except OSError:
        return None
    for line in body.splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[1]))
    return None


def _tradecore(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tradecore", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _log_events(path: Path, event: str) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        try:
            d = json.loads(line)
        except json.JSONDecodeError:
            continue
        if d.get("event") == event:
            out.append(d)
    return out


@dataclass(slots=True)
class TrialResult:
    """What a trial saw (figures for the soak summary)."""

    params: TrialParams
    ok: bool = False
    error: str = ""
    received: int = 0
    regenerated: int = 0
    journal_seq: int = 0
    snapshot_seq: int | None = None
    replayed: int = 0
    damage: str | None = None
    live_before: int = 0
    disconnect_cancels: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, flush=True)


def run_trial(params: TrialParams, work: Path, *, quiet: bool = False) -> TrialResult:
    """One crash trial in ``work`` (created); returns its figures, raises
    :class:`TrialFailed` with the failed check (and the seed) on a failure."""
    t0 = time.monotonic()
    result = TrialResult(params)
    _say(quiet, f"crash trial: {params.describe()}")
    try:
        _trial(params, work, result, quiet)
    except TrialFailed as exc:
        raise TrialFailed(f"{exc}\n  trial: {params.describe()}\n  dir: {work}") from None
    result.ok = True
    result.seconds = time.monotonic() - t0
    return result


def _trial(p: TrialParams, work: Path, res: TrialResult, quiet: bool) -> None:
    work.mkdir(parents=True, exist_ok=True)
    cfg = write_config(work, p)
    journal = work / "journal"
    log_path = work / "reports.csv"
    lg_json = work / "loadgen.json"

    # 1. Serve, load, kill.
    venue = ServeProcess(cfg, log_file=work / "serve-1.log", timeout=WAIT).start()
    loadgen: subprocess.Popen[str] | None = None
    try:
        oe = "{}:{}".format(*venue.order_entry)
        cmd = [sys.executable, "-m", "tradecore", "loadgen", "--connect", oe]
        for a in range(1, p.accounts + 1):
            cmd += ["--account", f"{a}:{api_key(a)}"]
        cmd += [
            "--symbol",
            f"{SYMBOL}:{MID}",
            "--rate",
            str(p.rate),
            "--duration",
            "60",
            "--drain-timeout",
            "1",
            "--seed",
            str(p.loadgen_seed),
            "--report-log",
            str(log_path),
            "--json",
            str(lg_json),
        ]
        loadgen = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=work
        )
        deadline = time.monotonic() + WAIT
        while _metric(venue.metrics, "tradecore_sessions") != p.accounts:
            if loadgen.poll() is not None:
                out = loadgen.communicate()[0]
                raise TrialFailed(f"the load generator exited before the kill:\n{out}")
            if time.monotonic() > deadline:
                raise TrialFailed("the load generator's sessions did not log on in time")
            time.sleep(0.01)
        time.sleep(p.kill_delay)
        if loadgen.poll() is not None:
            out = loadgen.communicate()[0]
            raise TrialFailed(f"the load generator exited before the kill:\n{out}")
        venue.kill()
        _say(quiet, f"  SIGKILL after {p.kill_delay:.3f} s of load")
        try:
            lg_out = loadgen.communicate(timeout=WAIT)[0]
        except subprocess.TimeoutExpired:
            raise TrialFailed("the load generator did not end after the venue was killed") from None
        (work / "loadgen.out").write_text(lg_out)
        # Exit 1: the dropped sessions fail its checks, and only the checks a kill explains
        # may fail (a sequence gap, a duplicate or an unexpected reject before it may not).
        doc = json.loads(lg_json.read_text()) if lg_json.is_file() else {}
        failed = {str(c).split("=")[0] for c in doc.get("failed_checks", [])}
        if loadgen.returncode != 1 or "disconnects" not in failed or failed - KILL_CHECKS:
            raise TrialFailed(
                f"load generator exit {loadgen.returncode} with failed checks {sorted(failed)}; "
                f"expected 1 with only {sorted(KILL_CHECKS)}:\n{lg_out}"
            )
    finally:
        venue.kill()
        if loadgen is not None and loadgen.poll() is None:
            loadgen.kill()
            loadgen.wait()

    received = read_loadgen_log(log_path)
    res.received = sum(len(v) for v in received.values())

    # 2. Replay the killed journal (read-only), regenerating every report.
    pre_file = work / "regenerated-killed.jsonl"
    pre = replay_journal(str(journal), None, from_snapshot=not p.keep_all, reports=str(pre_file))
    if p.keep_all:
        snap = replay_journal(str(journal), None, from_snapshot=True)
        if snap["state_hash"] != pre["state_hash"]:
            raise TrialFailed(
                f"(c) replay from the newest snapshot (seq {snap['snapshot_seq']}) gives "
                f"{snap['state_hash']}, from the first record {pre['state_hash']}"
            )
        res.snapshot_seq = snap["snapshot_seq"]
    else:
        res.snapshot_seq = pre["snapshot_seq"]
    res.journal_seq = int(pre["last_seq"])
    res.damage = pre["damage"]
    regen = read_replay_reports(pre_file)
    res.regenerated = sum(len(v) for v in regen.values())
    next_seq = {int(a): int(n) for a, n in pre["next_report_seq"].items()}
    expect = _check_streams(p, received, regen, next_seq, res)
    if p.keep_all:
        n_live = sum(len(e.live or {}) for e in expect.values())
        res.live_before = n_live
        if pre["live_orders"] != n_live:
            raise TrialFailed(
                f"(b) the replay holds {pre['live_orders']} live orders, the regenerated "
                f"report streams describe {n_live}"
            )

    # 3. Restart, no commands, SIGTERM: hashes.
    serve2 = work / "serve-2.log"
    with ServeProcess(cfg, log_file=serve2, timeout=WAIT) as again:
        rec = again.ready["recovery"]
        res.replayed = int(rec["replayed"])
        stopped = again.stop()
    if stopped["returncode"] != 0:
        raise TrialFailed(f"(c) the restarted venue did not stop cleanly: {stopped}")
    recovered = _log_events(serve2, "recovered")
    if not recovered or recovered[0].get("state_hash") != pre["state_hash"]:
        raise TrialFailed(
            f"(c) the restarted venue recovered state {recovered[:1]}, the replay of the killed "
            f"journal gives {pre['state_hash']}"
        )
    cli = _tradecore("replay", "--journal", str(journal), "--json")
    if cli.returncode != 0:
        raise TrialFailed(f"(c) tradecore replay failed: {cli.stderr}")
    cli_hash = json.loads(cli.stdout)["state_hash"]
    post_file = work / "regenerated-restarted.jsonl"
    second = replay_journal(
        str(journal), None, from_snapshot=not p.keep_all, reports=str(post_file)
    )
    if not (stopped["state_hash"] == cli_hash == second["state_hash"]):
        raise TrialFailed(
            f"(c) state hash at the restarted venue's stop {stopped['state_hash']}, "
            f"tradecore replay {cli_hash}, second replay {second['state_hash']}"
        )
    if p.keep_all:
        _check_restart_reports(p, regen, read_replay_reports(post_file), expect, res)
    elif p.cancel_on_disconnect:
        # The DISCONNECT cancels are behind the final snapshot: they show in next_seq.
        for e in expect.values():
            if e.live is not None and e.length is not None:
                e.length += len(e.live)
                res.disconnect_cancels += len(e.live)
                e.live = {}
            else:
                e.length = None

    # 4. Restart again: log on, continue, check the live orders one by one.
    _check_continue(p, cfg, work, journal, received, expect)


@dataclass(slots=True)
class Expect:
    """What one account's stream must look like after the restart: its length and live
    orders (``None`` where a pruned journal no longer tells), and its received maximum."""

    received_max: int
    length: int | None
    live: dict[int, Live] | None


def _check_streams(
    p: TrialParams,
    received: dict[int, list[Report]],
    regen: dict[int, list[Report]],
    next_seq: dict[int, int],
    res: TrialResult,
) -> dict[int, Expect]:
    """Checks (a) and (b) on the killed journal; returns what each account must hold.

    ``next_seq`` is each account's next report number after the replay: the regenerated
    stream ends just below it, and on a pruned journal it starts where the newest snapshot's
    numbering left off (an account with nothing after that snapshot regenerates nothing, and
    everything below ``next_seq`` is accounted for by the snapshot)."""
    out: dict[int, Expect] = {}
    for account in range(1, p.accounts + 1):
        got = received.get(account, [])
        seqs = [r.seq for r in got]
        dup = [s for s, n in Counter(seqs).items() if n > 1]
        if dup:
            raise TrialFailed(f"(b) account {account} received seq {dup[:5]} more than once")
        if seqs != list(range(1, len(seqs) + 1)):
            raise TrialFailed(f"(b) account {account} received seqs with a gap: {seqs[:20]}...")
        stream = regen.get(account, [])
        rseqs = [r.seq for r in stream]
        end = next_seq.get(account, 1)
        first = rseqs[0] if rseqs else end
        if rseqs != list(range(first, end)):
            raise TrialFailed(
                f"(b) account {account}: regenerated seqs {first}..{first + len(rseqs) - 1} "
                f"do not end below the replay's next report number {end}"
            )
        if p.keep_all and first != 1:
            raise TrialFailed(f"(b) account {account}: regenerated stream starts at {first}")
        by_seq = {r.seq: r for r in stream}
        last = end - 1
        for r in got:
            if r.seq < first:
                continue  # before the newest snapshot of a pruned journal: not regenerable
            if r.seq > last:
                raise TrialFailed(
                    f"(a) account {account}: received report seq {r.seq} is lost: the journal "
                    f"regenerates seqs {first}..{last}: {r}"
                )
            want = by_seq[r.seq]
            if want != r:
                raise TrialFailed(
                    f"(a) account {account} seq {r.seq}: received {r}, journal regenerates {want}"
                )
        if p.keep_all:
            out[account] = Expect(len(got), last, live_orders(account, stream))
        elif stream and first <= len(got) + 1:
            # The received prefix and the regenerated tail make the whole stream.
            whole = got + [r for r in stream if r.seq > len(got)]
            out[account] = Expect(len(got), last, live_orders(account, whole))
        else:
            res.notes.append(f"account {account}: stream not reconstructible, live set unchecked")
            out[account] = Expect(len(got), None, None)
    return out


def _check_restart_reports(
    p: TrialParams,
    before: dict[int, list[Report]],
    after: dict[int, list[Report]],
    expect: dict[int, Expect],
    res: TrialResult,
) -> None:
    """The restart (stale sessions closed) adds nothing, or with cancel-on-disconnect exactly
    one DISCONNECT cancel per live order; updates ``expect`` to the state after it."""
    for account in range(1, p.accounts + 1):
        old = before.get(account, [])
        new = after.get(account, [])
        e = expect[account]
        if new[: len(old)] != old:
            raise TrialFailed(f"(c) account {account}: the restart changed the regenerated stream")
        extra = new[len(old) :]
        e.length = new[-1].seq if new else 0
        live = e.live or {}
        if not p.cancel_on_disconnect:
            if extra:
                raise TrialFailed(f"(c) account {account}: the restart added reports {extra[:3]}")
            continue
        want = {(coid, o.order_id, o.price, o.leaves) for coid, o in live.items()}
        got = {(r.client_order_id, r.order_id, r.price, r.qty) for r in extra}
        if any(r.kind != "CANCELLED" or r.reason != "DISCONNECT" for r in extra):
            raise TrialFailed(f"(d) account {account}: restart reports other than DISCONNECT")
        if got != want or len(extra) != len(want):
            raise TrialFailed(
                f"(d) account {account}: DISCONNECT cancels {sorted(got)[:5]} (of {len(got)}), "
                f"live orders {sorted(want)[:5]} (of {len(want)})"
            )
        res.disconnect_cancels += len(extra)
        e.live = {}


def _check_continue(
    p: TrialParams,
    cfg: Path,
    work: Path,
    journal: Path,
    received: dict[int, list[Report]],
    expect: dict[int, Expect],
) -> None:
    """(d): log on after the restart, cancel one order acknowledged before the kill, mass
    cancel the rest and compare with the expected live orders."""
    sentinels = 0
    with ServeProcess(cfg, log_file=work / "serve-3.log", timeout=WAIT) as venue:
        host, port = venue.order_entry
        for account in range(1, p.accounts + 1):
            e = expect[account]
            with Client(host, port, timeout=WAIT, idle_intervals=None) as c:
                ack = c.logon(account, api_key(account))
                if e.length is not None and ack.next_seq != e.length + 1:
                    raise TrialFailed(
                        f"(d) account {account}: LogonAck.next_seq {ack.next_seq}, the "
                        f"regenerated stream has {e.length} reports"
                    )
                if ack.next_seq <= e.received_max:
                    raise TrialFailed(
                        f"(a) account {account}: LogonAck.next_seq {ack.next_seq} but seq "
                        f"{e.received_max} was received before the kill"
                    )
                seq = ack.next_seq - 1
                live = dict(e.live) if e.live is not None else None
                acked = {
                    r.client_order_id for r in received.get(account, []) if r.kind == "ACCEPTED"
                }
                pick = next((k for k in sorted(live or {}) if k in acked), None)
                if live is not None and pick is not None:
                    o = live.pop(pick)
                    c.cancel(pick, SYMBOL)
                    r = _wire(c.next_report())
                    seq += 1
                    want = Report(
                        seq=seq,
                        kind="CANCELLED",
                        reason="USER",
                        client_order_id=pick,
                        order_id=o.order_id,
                        symbol_id=SYMBOL,
                        side=o.side,
                        liquidity="NONE",
                        price=o.price,
                        qty=o.leaves,
                        leaves=0,
                    )
                    if r != want:
                        raise TrialFailed(
                            f"(d) account {account}: cancel of order {pick} acknowledged before "
                            f"the kill answered {r}, expected {want}"
                        )
                c.mass_cancel(0)
                # A sentinel order: its ACCEPTED comes after every mass-cancel report.
                sentinel = c.new_order(SYMBOL, Side.BUY, 1, 1, client_order_id=1)
                sentinels += 1
                got: dict[int, Report] = {}
                while True:
                    r = _wire(c.next_report())
                    seq += 1
                    if r.seq != seq:
                        raise TrialFailed(f"(d) account {account}: seq {r.seq}, expected {seq}")
                    if r.client_order_id == sentinel:
                        if r.kind != EventKind.ACCEPTED.name:
                            raise TrialFailed(f"(d) account {account}: sentinel answered {r}")
                        break
                    if r.kind != "CANCELLED" or r.reason != "MASS_CANCEL":
                        raise TrialFailed(f"(d) account {account}: unexpected report {r}")
                    if r.client_order_id in got:
                        raise TrialFailed(f"(b) account {account}: order cancelled twice: {r}")
                    got[r.client_order_id] = r
                if live is not None:
                    _compare_live(account, got, live)
                c.logout()
        stopped = venue.stop()
    if stopped["returncode"] != 0:
        raise TrialFailed(f"(d) the venue did not stop cleanly: {stopped}")
    if p.cancel_on_disconnect:
        sentinels = 0  # the logouts cancelled them
    if stopped["live_orders"] != sentinels:
        raise TrialFailed(
            f"(d) after the mass cancels the venue holds {stopped['live_orders']} orders, "
            f"expected only the {sentinels} sentinels"
        )
    final = replay_journal(str(journal), None, from_snapshot=not p.keep_all)
    if final["state_hash"] != stopped["state_hash"]:
        raise TrialFailed(
            f"(c) after the new session: stop hash {stopped['state_hash']}, replay "
            f"{final['state_hash']}"
        )


def _compare_live(account: int, got: dict[int, Report], live: dict[int, Live]) -> None:
    if set(got) != set(live):
        raise TrialFailed(
            f"(d) account {account}: the mass cancel cancelled {len(got)} orders, the "
            f"regenerated stream has {len(live)} live; only cancelled "
            f"{sorted(set(got) - set(live))[:5]}, only live {sorted(set(live) - set(got))[:5]}"
        )
    for coid, o in live.items():
        r = got[coid]
        if (r.order_id, r.side, r.price, r.qty) != (o.order_id, o.side, o.price, o.leaves):
            raise TrialFailed(
                f"(d) account {account}: order {coid} cancelled as {r}, its regenerated state "
                f"is {o}"
            )


# ---- soak ----


def _summary(results: Sequence[TrialResult], failures: Sequence[tuple[int, str]]) -> str:
    ok = [r for r in results if r.ok]
    lines = [
        f"soak: {len(results)} trials, {len(ok)} passed, {len(failures)} failed",
    ]
    if ok:
        by_fsync = Counter(r.params.fsync for r in ok)
        lines.append(
            "  fsync: "
            + ", ".join(f"{k} {v}" for k, v in sorted(by_fsync.items()))
            + f"; pruned journals {sum(not r.params.keep_all for r in ok)}"
            + f"; cancel-on-disconnect {sum(r.params.cancel_on_disconnect for r in ok)}"
            + f"; inline pipeline {sum(r.params.pipeline == 'inline' for r in ok)}"
        )
        lines.append(
            f"  reports received before the kill {sum(r.received for r in ok):,}, "
            f"regenerated {sum(r.regenerated for r in ok):,}; journal records "
            f"{sum(r.journal_seq for r in ok):,}; live orders at the kill (whole journals) "
            f"{sum(r.live_before for r in ok):,}; DISCONNECT cancels "
            f"{sum(r.disconnect_cancels for r in ok):,}"
        )
        lines.append(
            f"  recovered from a snapshot {sum(r.snapshot_seq is not None for r in ok)}; "
            f"torn tails cut {sum(r.damage is not None for r in ok)}; "
            f"mean trial {sum(r.seconds for r in ok) / len(ok):.1f} s"
        )
    for seed, err in failures:
        lines.append(f"  FAILED seed {seed}: {err.splitlines()[0]}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``bench/soak_venue.py``: run many crash trials, print a summary, exit 1 on a failure."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument(
        "--trials",
        type=int,
        default=int(os.environ.get("TRADECORE_SOAK_TRIALS", "100")),
        help="number of trials (default: $TRADECORE_SOAK_TRIALS or 100)",
    )
    ap.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the first trial (trial i uses seed + i; default: from the clock)",
    )
    ap.add_argument("--fsync", choices=["none", "batch", "always"], help="pin the fsync mode")
    ap.add_argument("--pipeline", choices=["threads", "inline"], help="pin pipeline.mode")
    ap.add_argument("--work-dir", type=Path, help="where trial dirs go (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep passed trials' dirs too")
    ap.add_argument("--json", type=Path, help="write every trial's figures as JSON")
    ap.add_argument("--quiet", action="store_true", help="one line per trial")
    args = ap.parse_args(argv)
    if args.trials < 1:
        ap.error("--trials must be at least 1")
    base = args.seed if args.seed is not None else int(time.time()) % 1_000_000
    print(f"soak: {args.trials} trials from seed {base}", flush=True)
    root = Path(tempfile.mkdtemp(prefix="tc-soak-", dir=args.work_dir))
    results: list[TrialResult] = []
    failures: list[tuple[int, str]] = []
    t0 = time.monotonic()
    for i in range(args.trials):
        seed = base + i
        params = params_for_seed(seed, fsync=args.fsync, pipeline=args.pipeline)
        work = root / f"trial-{seed}"
        try:
            r = run_trial(params, work, quiet=args.quiet)
        except Exception as exc:  # every failure is reported; the soak goes on
            msg = f"{type(exc).__name__}: {exc}"
            failures.append((seed, msg))
            results.append(TrialResult(params, ok=False, error=msg))
            print(f"trial {i + 1}/{args.trials} seed {seed}: FAILED\n{msg}", flush=True)
            continue
        results.append(r)
        print(
            f"trial {i + 1}/{args.trials} seed {seed}: ok ({r.received} reports received, "
            f"journal seq {r.journal_seq}, snapshot {r.snapshot_seq}, {r.seconds:.1f} s)",
            flush=True,
        )
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(_summary(results, failures))
    print(f"  wall time {time.monotonic() - t0:.0f} s; trial dirs under {root}")
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))
    if not failures and not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    if failures:
        print(f"re-run one: {sys.executable} bench/soak_venue.py --trials 1 --seed SEED")
    return 1 if failures else 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
