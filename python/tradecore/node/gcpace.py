"""Run Python's cyclic garbage collector between market events, never inside one.

CPython starts a collection of the young generation from inside whatever allocation crosses
its threshold (700 net allocations by default). In the node that is as likely to be in the
middle of a book update, a strategy's decision or an order's risk check as anywhere else, and
a young collection costs tens of microseconds there: several times the whole tick-to-trade
budget, paid by the order that happened to allocate the 701st object.

:class:`GcPacer` moves those collections to the point between two events, where nothing is
waiting on them. While it runs, automatic collection is off (``gc.disable``); after each event
the node calls :meth:`GcPacer.after_event`, which reads the allocation count and, once it is
past the young threshold, collects the same generation CPython would have chosen:

* generation 2 (a full collection) when it has seen more generation-1 collections than its
  threshold (10 by default), but at most once per ``full_every_ns`` of wall time. CPython
  also waits until the objects promoted since the last full collection are a quarter of the
  long-lived ones, a figure Python code cannot read; the time floor stands in for it, so a
  long run still frees old cycles while a busy one does not scan its whole heap every few
  thousand events;
* else generation 1 when it has seen more young collections than its threshold (10), else
  generation 0.

The thresholds are the interpreter's own (``gc.get_threshold()``), read at :meth:`start`.
:meth:`stop` restores automatic collection; nothing is left disabled if the node stops or
fails. Cost per event: one ``gc.get_count()`` call and a comparison (~60 ns); the collections
themselves cost what they cost, between events.
"""

from __future__ import annotations

import gc
import time

__all__ = ["GcPacer"]

_MINUTE_NS = 60_000_000_000


class GcPacer:
    """Collect between events (module doc). Inactive until :meth:`start`."""

    __slots__ = ("_last_full_ns", "_t0", "_t1", "_t2", "active", "collections", "full_every_ns")

    def __init__(self, full_every_ns: int = _MINUTE_NS) -> None:
        if type(full_every_ns) is not int or full_every_ns < 0:
            raise ValueError(f"full_every_ns must be an int >= 0, got {full_every_ns!r}")
        self.full_every_ns = full_every_ns
        self.active = False
        self.collections = [0, 0, 0]  # run by the pacer, per generation
        self._t0, self._t1, self._t2 = gc.get_threshold()
        self._last_full_ns = 0

    def start(self) -> bool:
        """Take over from automatic collection; False (and inactive) if it was off already.

        A collector the application turned off stays off: the pacer does not turn it on.
        """
        if self.active or not gc.isenabled():
            return self.active
        self._t0, self._t1, self._t2 = gc.get_threshold()
        if self._t0 <= 0:  # gc.set_threshold(0) also means "no automatic collection"
            return False
        gc.disable()
        self.active = True
        self._last_full_ns = time.monotonic_ns()
        return True

    def stop(self) -> None:
        """Give collection back to the interpreter (idempotent)."""
        if self.active:
            self.active = False
            gc.enable()

    def after_event(self) -> None:
        """Collect now if CPython would have by now (call between events only)."""
        c0, c1, c2 = gc.get_count()
        if c0 <= self._t0:
            return
        self.collect(c1, c2)

    def collect(self, c1: int, c2: int) -> None:
        """One collection of the generation the counts call for (module doc)."""
        gen = 0
        if c2 > self._t2:
            now = time.monotonic_ns()
            if now - self._last_full_ns >= self.full_every_ns:
                self._last_full_ns = now
                gen = 2
        if not gen and c1 > self._t1:
            gen = 1
        gc.collect(gen)
        self.collections[gen] += 1
