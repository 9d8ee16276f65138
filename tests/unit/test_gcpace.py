"""The garbage collector runs between market events, never inside one (tradecore.node.gcpace).

The pacer is checked against the real collector: it turns automatic collection off, collects
the generation CPython's counters call for once the young count passes its threshold, frees
real garbage cycles, leaves a collector the application turned off alone, and hands
collection back at stop. In a real node: no collection starts inside an event (a gc callback
sees where each one starts), cycles a strategy drops are freed during the run, and automatic
collection is back after the run, also when the run fails.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tradecore.node.gcpace import GcPacer
from tradecore.node.node import Node


@pytest.fixture(autouse=True)
def _collector_restored() -> Iterator[None]:
    was = gc.isenabled()
    threshold = gc.get_threshold()
    yield
    gc.set_threshold(*threshold)
    if was:
        gc.enable()
    else:
        gc.disable()


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_start_takes_over_and_stop_gives_back() -> None:
    gc.enable()
    pacer = GcPacer()
    assert pacer.start() and pacer.active and not gc.isenabled()
    assert pacer.start()  # idempotent
    pacer.stop()
    assert not pacer.active and gc.isenabled()
    pacer.stop()
    assert gc.isenabled()


def test_a_collector_turned_off_stays_off() -> None:
    gc.disable()
    pacer = GcPacer()
    assert not pacer.start() and not pacer.active
    pacer.stop()
    assert not gc.isenabled()
    gc.enable()
    gc.set_threshold(0)  # "no automatic collection" in CPython's own terms
    assert not GcPacer().start() and gc.isenabled()


def test_bad_full_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="full_every_ns must be an int >= 0"):
        GcPacer(full_every_ns=-1)


def test_young_collection_once_past_the_threshold_frees_cycles() -> None:
    gc.enable()
    gc.collect()
    gc.set_threshold(500, 10, 10)
    pacer = GcPacer()
    assert pacer.start()
    try:
        freed: list[int] = []
        c = _Cycle()
        weakref.finalize(c, freed.append, 1)
        del c
        pacer.after_event()  # below the threshold: nothing happens
        assert pacer.collections == [0, 0, 0] and not freed
        keep = [[] for _ in range(600)]  # 600 tracked allocations: past 500
        assert gc.get_count()[0] > 500
        pacer.after_event()
        assert sum(pacer.collections) == 1 and freed == [1]
        assert gc.get_count()[0] < 500  # the young generation was emptied
        assert not gc.isenabled()  # and automatic collection stays off
        del keep
    finally:
        pacer.stop()


def test_generation_choice_follows_cpythons_counters() -> None:
    gc.set_threshold(700, 10, 10)
    pacer = GcPacer(full_every_ns=0)
    assert pacer.start()
    try:
        pacer.collect(0, 0)
        pacer.collect(10, 0)  # gen 1 only when its count is above its threshold
        pacer.collect(11, 0)
        pacer.collect(0, 11)  # gen 2 when its count is above its threshold
        assert pacer.collections == [2, 1, 1]
    finally:
        pacer.stop()


def test_full_collections_have_a_time_floor() -> None:
    gc.set_threshold(700, 10, 10)
    pacer = GcPacer(full_every_ns=10**15)  # far longer than the test
    assert pacer.start()
    try:
        pacer.collect(11, 11)  # gen 2 is due but within the floor: gen 1 instead
        pacer.collect(0, 11)  # and gen 0 when gen 1 is not due either
        assert pacer.collections == [1, 1, 0]
    finally:
        pacer.stop()


def _config(tmp: Path, pace: bool) -> Path:
    text = f"""
[node]
name = "gcpace"
symbols = ["FTMUSDT", "SXPBTC", "BADGERBTC", "XMRBTC", "NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR"]
gc_between_events = {"true" if pace else "false"}
clock = "wall"

[source]
recording = "embedded"

[[strategy]]
name = "taker-ftm"
kind = "imbalance"
account = 1
initial_cash = "100000"
params = {{ symbol = "FTMUSDT", threshold = 0.2, order_qty = 1, max_position = 1000000 }}

[broker]
taker_fee_bps = "7.5"

[storage]
path = "node.sqlite"

[metrics]
enabled = false
"""
    path = tmp / "node.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("pace", [True, False])
def test_no_collection_starts_inside_an_event(tmp_path: Path, pace: bool) -> None:
    gc.enable()
    gc.set_threshold(200, 10, 10)  # collections every few events, so both cases have many
    node = Node.from_file(_config(tmp_path, pace), watch_config=False, max_events=2_000)
    inside = [False]
    starts: list[bool] = []  # per collection: did it start inside an event?
    freed: list[int] = []
    dropped = [0]
    on_market_event = node._on_market_event

    def spy(ev: Any) -> None:
        inside[0] = True
        try:
            on_market_event(ev)
            c = _Cycle()  # garbage a strategy might leave: a cycle only the collector frees
            weakref.finalize(c, freed.append, 1)
            dropped[0] += 1
            del c
        finally:
            inside[0] = False

    def on_gc(phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            starts.append(inside[0])

    node._on_market_event = spy  # type: ignore[method-assign]
    gc.callbacks.append(on_gc)
    try:
        summary = node.run()
    finally:
        gc.callbacks.remove(on_gc)
    assert summary.messages > 1_000 and summary.orders > 20, summary
    assert len(starts) > 20
    if pace:
        assert not any(starts)  # every collection ran between two events
        assert node._gc.collections[0] > 20
    else:
        assert any(starts)  # the reference: CPython collects wherever the threshold falls
    assert len(freed) > dropped[0] // 2  # cycles are freed during the run, not at the end
    assert gc.isenabled()  # automatic collection is back after the run


def test_collector_is_given_back_when_the_run_fails(tmp_path: Path) -> None:
    gc.enable()
    node = Node.from_file(_config(tmp_path, True), watch_config=False, max_events=500)
    on_market_event = node._on_market_event
    seen: list[bool] = []

    def boom(ev: Any) -> None:
        seen.append(gc.isenabled())
        if len(seen) == 100:
            raise RuntimeError("boom")
        on_market_event(ev)

    node._on_market_event = boom  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="boom"):
        node.run()
    assert seen and not any(seen)  # off while the node ran
    assert gc.isenabled()
