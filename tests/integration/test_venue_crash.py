"""Crash test of the venue (issue 3, "Proof"): a real ``tradecore serve`` subprocess under load
from ``tradecore loadgen`` is killed with SIGKILL at a seeded random moment, restarted on the
same journal and checked (every acknowledged report regenerated exactly, nothing accepted
twice, state hashes equal to fresh replays, sessions continue with the right ``next_seq`` and
the right live orders). The trial itself is ``bench/soak_venue.py``'s :func:`run_trial`; here
four trials run (fsync ``none``, ``batch`` with cancel-on-disconnect on the inline pipeline,
``always`` on a pruned journal with each pipeline), and ``make soak`` runs 100+ (half of
them inline).

The checks are shown able to fail: the stream checks are fed tampered streams (a changed
field, a lost report, an order accepted twice, a gap) and must raise.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

_BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_soak_venue", _BENCH / "soak_venue.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


soak = _load()


@pytest.mark.parametrize(
    ("seed", "fsync", "cod", "keep_all", "pipeline"),
    [
        (31, "none", False, True, "threads"),
        (32, "batch", True, True, "inline"),
        (33, "always", False, False, "threads"),
        (34, "always", False, False, "inline"),
    ],
)
def test_sigkill_under_load_loses_nothing_acknowledged(
    tmp_path: Path, seed: int, fsync: str, cod: bool, keep_all: bool, pipeline: str
) -> None:
    params = soak.params_for_seed(
        seed, fsync=fsync, cancel_on_disconnect=cod, keep_all=keep_all, pipeline=pipeline
    )
    params = replace(params, snapshot_every=40)
    # The kill moment, the mix and every parameter are printed (pytest shows them on failure).
    result = soak.run_trial(params, tmp_path / "trial")
    assert result.ok
    # How much load ran before the kill depends on the machine's timing, so it is printed,
    # not asserted; snapshot_every 40 puts snapshots in play after the first 40 commands.
    print(
        f"received {result.received} reports, journal seq {result.journal_seq}, newest "
        f"snapshot {result.snapshot_seq}, replayed at restart {result.replayed}"
    )
    if cod:
        assert result.disconnect_cancels == result.live_before


def _stream() -> list[Any]:
    r = soak.Report
    return [
        r(1, "ACCEPTED", "NONE", 10, 1, 1, "BUY", "NONE", 100, 5, 5),
        r(2, "ACCEPTED", "NONE", 11, 2, 1, "SELL", "NONE", 120, 7, 7),
        r(3, "FILL", "NONE", 10, 1, 1, "BUY", "MAKER", 100, 2, 3),
        r(4, "REPLACED", "NONE", 11, 2, 1, "SELL", "NONE", 121, 6, 6),
        r(5, "CANCELLED", "USER", 10, 1, 1, "BUY", "NONE", 100, 3, 0),
    ]


def test_stream_checks_accept_a_consistent_stream_and_refuse_tampered_ones() -> None:
    params = soak.params_for_seed(1, keep_all=True)
    params = replace(params, accounts=1)
    stream = _stream()
    res = soak.TrialResult(params)
    expect = soak._check_streams(params, {1: stream[:3]}, {1: stream}, {1: 6}, res)
    live = expect[1].live
    assert set(live) == {11}
    assert (live[11].price, live[11].leaves, expect[1].length) == (121, 6, 5)

    # (a) a received report that differs from the journal's, field by field.
    changed = [*stream[:2], replace(stream[2], leaves=2)]
    with pytest.raises(soak.TrialFailed, match=r"\(a\) account 1 seq 3"):
        soak._check_streams(params, {1: changed}, {1: stream}, {1: 6}, res)
    # (a) a received report the journal does not regenerate: lost.
    with pytest.raises(soak.TrialFailed, match=r"\(a\).*seq 5 is lost"):
        soak._check_streams(params, {1: stream}, {1: stream[:4]}, {1: 5}, res)
    # (b) a regenerated stream that does not end below the replay's next report number.
    with pytest.raises(soak.TrialFailed, match=r"do not end below"):
        soak._check_streams(params, {1: stream[:3]}, {1: stream[:4]}, {1: 6}, res)
    # A pruned journal whose newest snapshot is its last record regenerates nothing: what the
    # client received below the next report number is covered by the snapshot, what it
    # received beyond it is lost.
    pruned = replace(params, keep_all=False)
    soak._check_streams(pruned, {1: stream}, {}, {1: 6}, res)
    with pytest.raises(soak.TrialFailed, match=r"\(a\).*seq 5 is lost"):
        soak._check_streams(pruned, {1: stream}, {}, {1: 5}, res)
    # (b) duplicates and gaps in what the client received.
    with pytest.raises(soak.TrialFailed, match=r"more than once"):
        soak._check_streams(params, {1: [stream[0], stream[0]]}, {1: stream}, {1: 6}, res)
    with pytest.raises(soak.TrialFailed, match=r"gap"):
        soak._check_streams(params, {1: [stream[0], stream[2]]}, {1: stream}, {1: 6}, res)
    # (b) a client order id accepted twice, a fill of an order that is not live.
    twice = [*stream[:2], replace(stream[0], seq=3, order_id=9)]
    with pytest.raises(soak.TrialFailed, match=r"accepted twice"):
        soak.live_orders(1, twice)
    with pytest.raises(soak.TrialFailed, match=r"not live"):
        soak.live_orders(1, [*stream, replace(stream[2], seq=6)])
    with pytest.raises(soak.TrialFailed, match=r"fill leaves"):
        soak.live_orders(1, [*stream[:2], replace(stream[2], leaves=4)])
