"""Clocks and timers of the trading node.

Owns the node's notion of "now" (:class:`Clock`) and its timers (:class:`Timers`).

* :class:`WallClock`: nanoseconds since the epoch from the system clock; used live.
* :class:`EventClock`: the time of the last event the node processed (or of the timer being
  fired); used when replaying, so a recording replayed at any speed, or the backtester, sees
  the same times and fires the same timers as it did when recorded. It never goes backwards:
  an event older than the clock leaves it where it is.

:class:`Timers` is a heap of deadlines. ``due(now)`` pops every timer whose deadline is at or
before ``now`` in deadline order (ties in the order they were set); a repeating timer is put
back at ``deadline + interval`` (skipping intervals that were missed entirely, so a long gap in
the data fires a timer once, not once per missed interval). Cancelling is lazy: the entry stays
in the heap and is dropped when it surfaces. Costs: set/cancel O(log n); ``next_due`` O(1);
checking for nothing due is one comparison.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Clock", "EventClock", "Timer", "Timers", "WallClock"]


class Clock(Protocol):
    """Where the node reads "now" (nanoseconds since the epoch)."""

    def now_ns(self) -> int: ...


class WallClock:
    """The system clock (``time.time_ns``)."""

    __slots__ = ()

    # ``time.time_ns`` itself, not a method calling it: read on every order and report (the
    # node, its strategies' contexts, the paper broker), and a C function runs no frame.
    now_ns = staticmethod(time.time_ns)


class EventClock:
    """The time of the last processed event; set by the node, never by the wall clock."""

    __slots__ = ("_now",)

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns

    def now_ns(self) -> int:
        return self._now

    def advance(self, ts_ns: int) -> None:
        """Move to ``ts_ns`` unless that is in the past."""
        if ts_ns > self._now:
            self._now = ts_ns


@dataclass(slots=True)
class Timer:
    """One timer: ``callback(deadline_ns)`` runs when the clock reaches ``deadline_ns``."""

    owner: str
    name: str
    interval_ns: int
    repeat: bool
    callback: Callable[[int], None]
    deadline_ns: int
    seq: int
    active: bool = field(default=True)


class Timers:
    """Deadlines ordered in a heap; see the module doc."""

    __slots__ = ("_by_key", "_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Timer]] = []
        self._by_key: dict[tuple[str, str], Timer] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._by_key)

    def set(
        self,
        owner: str,
        name: str,
        interval_ns: int,
        callback: Callable[[int], None],
        now_ns: int,
        *,
        repeat: bool = True,
    ) -> Timer:
        """(Re)arm ``owner``'s timer ``name`` to fire at ``now_ns + interval_ns``."""
        if isinstance(interval_ns, bool) or not isinstance(interval_ns, int):
            raise TypeError(f"interval_ns must be an int, got {type(interval_ns).__name__}")
        if interval_ns <= 0:
            raise ValueError(f"interval_ns must be > 0, got {interval_ns}")
        old = self._by_key.pop((owner, name), None)
        if old is not None:
            old.active = False
        self._seq += 1
        timer = Timer(owner, name, interval_ns, repeat, callback, now_ns + interval_ns, self._seq)
        self._by_key[(owner, name)] = timer
        heapq.heappush(self._heap, (timer.deadline_ns, timer.seq, timer))
        return timer

    def cancel(self, owner: str, name: str) -> bool:
        """Cancel ``owner``'s timer ``name``; False if there is none."""
        timer = self._by_key.pop((owner, name), None)
        if timer is None:
            return False
        timer.active = False
        return True

    def cancel_owner(self, owner: str) -> int:
        """Cancel every timer of ``owner``; returns how many."""
        keys = [k for k in self._by_key if k[0] == owner]
        for k in keys:
            self._by_key.pop(k).active = False
        return len(keys)

    def shift(self, delta_ns: int) -> None:
        """Move every deadline by ``delta_ns`` (the event clock learns its start time late)."""
        live = [t for t in self._by_key.values()]
        self._heap = []
        for t in live:
            t.deadline_ns += delta_ns
            self._seq += 1
            t.seq = self._seq
            heapq.heappush(self._heap, (t.deadline_ns, t.seq, t))

    def next_due(self) -> int | None:
        """The earliest active deadline, or None."""
        heap = self._heap
        while heap and not heap[0][2].active:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def fire(self, now_ns: int, run: Callable[[Timer, int], None]) -> int:
        """Run ``run(timer, deadline)`` for each due timer in deadline order; returns how many.

        A repeating timer is rearmed before it runs (so it may cancel or reset itself); a
        one-shot timer is forgotten before it runs.
        """
        fired = 0
        heap = self._heap
        while heap and heap[0][0] <= now_ns:
            deadline, _seq, timer = heapq.heappop(heap)
            if not timer.active or timer.deadline_ns != deadline:
                continue
            if timer.repeat:
                missed = (now_ns - deadline) // timer.interval_ns
                self._seq += 1
                timer.seq = self._seq
                timer.deadline_ns = deadline + (missed + 1) * timer.interval_ns
                heapq.heappush(heap, (timer.deadline_ns, timer.seq, timer))
            else:
                timer.active = False
                self._by_key.pop((timer.owner, timer.name), None)
            run(timer, deadline)
            fired += 1
        return fired
