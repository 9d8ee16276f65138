"""``RecordedNodeSource.book`` is the book of the recording being replayed.

The node's risk check (``pretrade``: the price band, the notional of a market order) and
``ctx.book`` read the live book through ``source.book(symbol)``. With several recordings (two days
of the same symbols, say), each has its own feed and its own books; the book of a symbol must
be the one the current recording is updating, the very object its ``BookUpdate`` events
carry, never the previous recording's last state (the shipped days have no symbol in common,
so the tests replay one day twice).
"""

from __future__ import annotations

from tradecore.marketdata.events import BookUpdate
from tradecore.node.sources import RecordedNodeSource, _load, embedded_recordings

SYMBOLS = ["FTMUSDT", "NKNUSDT", "XMRBTC"]


def test_book_is_the_one_the_events_carry_in_every_recording() -> None:
    first, second = embedded_recordings()[:2]
    day = _load(first, None)
    src = RecordedNodeSource([day, _load(first, None), _load(second, None)], SYMBOLS)
    books: dict[str, set[int]] = {}
    checked = 0
    for ev in src:
        if type(ev) is not BookUpdate:
            continue
        assert src.book(ev.symbol) is ev.book, f"{ev.symbol}: not the book being updated"
        books.setdefault(ev.symbol, set()).add(id(ev.book))
        checked += 1
    # The first day's symbols were replayed twice, each time with its own feed's book.
    assert checked > 500
    assert len(books["FTMUSDT"]) == 2 and len(books["XMRBTC"]) == 2
    assert len(books["NKNUSDT"]) == 1


def test_book_before_the_replay_starts_is_none_until_synced() -> None:
    src = RecordedNodeSource([_load(p, None) for p in embedded_recordings()], SYMBOLS)
    assert all(src.book(s) is None for s in SYMBOLS)  # nothing synced yet
    assert src.book("NOPEUSDT") is None
