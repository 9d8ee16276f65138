"""The venue's UDP feed received by :class:`FeedSubscriber` and ``tradecore feed``, against a
real ``tradecore serve`` subprocess.

* **Gap recovery.** The venue sends its unicast feed to a UDP relay in this test, which
  forwards every datagram to a *clean* subscriber and, to a *lossy* one, all but chosen
  datagrams (plus some twice). Both recover over TCP. After two accounts trade, both books
  must equal the venue's book as the accounts' own order views tell it (the sum of leaves of
  every live order per level, from the execution reports: an oracle independent of the feed),
  the lossy subscriber must have seen gaps and duplicates, recovered at least every message
  that was dropped, and lost nothing.
* **Late join.** A subscriber that starts after the trading asks for the feed from number 1
  and ends with the same book.
* **Multicast.** Venue and subscribers run inside a fresh network namespace created for the
  test (``unshare -n``, then ``ip link set lo up``), on group 239.255.42.1 via 127.0.0.1.
* **``tradecore feed``** prints every message and a summary whose top of book matches.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from test_venue_client import (
    KEYS,
    WAIT,
    VenueProcess,
    book_from_orders,
    trade_randomly,
    write_config,
)
from tradecore import Instrument
from tradecore.venue.feed import FeedSubscriber

HERE = Path(__file__).resolve().parent


class Relay:
    """Receives the venue's datagrams on 127.0.0.1 and forwards them: every one to ``clean``;
    to ``lossy`` each data datagram unless ``drop(i)`` (``i`` counts data datagrams from 0),
    and a second time when ``dup(i)``. Heartbeat datagrams always pass."""

    def __init__(self, drop: Callable[[int], bool], dup: Callable[[int], bool]) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.drop, self.dup = drop, dup
        self.clean: tuple[str, int] | None = None
        self.lossy: tuple[str, int] | None = None
        self.data = 0
        self.dropped_messages = 0
        self.duplicated = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self, clean: tuple[str, int], lossy: tuple[str, int]) -> None:
        self.clean, self.lossy = clean, lossy
        self._thread.start()

    def _run(self) -> None:
        out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        assert self.clean is not None and self.lossy is not None
        while not self._stop.is_set():
            try:
                dg = self.sock.recv(4096)
            except TimeoutError:
                continue
            out.sendto(dg, self.clean)
            count = int.from_bytes(dg[12:14], "little") if len(dg) >= 16 else 0
            if count == 0:
                out.sendto(dg, self.lossy)
                continue
            i = self.data
            self.data += 1
            if self.drop(i):
                self.dropped_messages += count
                continue
            out.sendto(dg, self.lossy)
            if self.dup(i):
                self.duplicated += 1
                out.sendto(dg, self.lossy)
        out.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(WAIT)
        self.sock.close()


def test_gap_recovery_through_a_lossy_relay(tmp_path: Path) -> None:
    relay = Relay(drop=lambda i: i % 5 == 2 or 40 <= i < 47, dup=lambda i: i % 9 == 4)
    v = VenueProcess(write_config(tmp_path, feed_address=f"127.0.0.1:{relay.port}"))
    try:
        with (
            v.client(3) as obs_clean,
            v.client(3) as obs_lossy,
            FeedSubscriber("127.0.0.1:0", client=obs_clean) as clean,
            FeedSubscriber("127.0.0.1:0", client=obs_lossy) as lossy,
        ):
            relay.start(clean.address, lossy.address)
            clean.start()
            lossy.start()
            with v.client(1) as a, v.client(2) as b:
                trade_randomly(a, b, 400, seed=5)
                expected = book_from_orders(a, b)
                assert expected, "the scenario should leave orders resting"
                assert clean.wait_until(lambda s: s.snapshot() == expected, WAIT), (
                    clean.snapshot(),
                    expected,
                )
                assert lossy.wait_until(
                    lambda s: (
                        s.state.synced
                        and s.next_seq(1) >= clean.next_seq(1)
                        and s.snapshot() == expected
                    ),
                    WAIT,
                ), (lossy.stats, lossy.snapshot(), expected)
                # counted now: the disconnects at the end of this block move the book again
                with lossy.lock:
                    st = replace(lossy.stats)
                dropped, duplicated = relay.dropped_messages, relay.duplicated
            assert dropped > 10 and duplicated > 0
            assert st.gaps >= 2 and st.lost == 0 and st.bad_datagrams == 0
            assert st.recovered >= dropped
            assert 1 <= st.duplicates <= duplicated
            assert st.book_updates > 100 and st.trades > 10
            assert clean.stats.lost == 0
    finally:
        relay.close()
        v.stop()


def test_late_subscriber_rebuilds_the_book_from_the_venue(tmp_path: Path) -> None:
    port = _free_udp_port()
    v = VenueProcess(write_config(tmp_path, feed_address=f"127.0.0.1:{port}"))
    try:
        with v.client(1) as a, v.client(2) as b:
            trade_randomly(a, b, 150, seed=8)
            expected = book_from_orders(a, b)
            with v.client(3) as obs, FeedSubscriber(f"127.0.0.1:{port}", client=obs) as sub:
                sub.start()
                # the first datagram it gets is a heartbeat or update numbered far above 1
                assert sub.wait_until(lambda s: s.synced and s.snapshot() == expected, WAIT), (
                    sub.stats,
                    sub.snapshot(),
                    expected,
                )
                assert sub.stats.recovered > 100 and sub.stats.lost == 0
    finally:
        v.stop()


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_feed_command_prints_the_feed_and_the_top_of_book(tmp_path: Path) -> None:
    relay = Relay(drop=lambda i: i % 6 == 1, dup=lambda i: False)
    cli_port = _free_udp_port()
    cfg = write_config(tmp_path, feed_address=f"127.0.0.1:{relay.port}")
    cli_cfg = tmp_path / "cli.toml"  # the same venue seen from the command: feed on its port
    v = VenueProcess(cfg)
    try:
        text = cfg.read_text().replace(
            f'address = "127.0.0.1:{relay.port}"', f'address = "127.0.0.1:{cli_port}"'
        )
        cli_cfg.write_text(
            text.replace('order_entry = "127.0.0.1:0"', f'order_entry = "{v.host}:{v.port}"')
        )
        with (
            v.client(3) as obs,
            FeedSubscriber("127.0.0.1:0", client=obs) as clean,
            v.client(1) as a,
            v.client(2) as b,
        ):
            relay.start(clean.address, ("127.0.0.1", cli_port))
            clean.start()
            trade_randomly(a, b, 120, seed=3)
            expected = book_from_orders(a, b)
            assert clean.wait_until(lambda s: s.snapshot() == expected, WAIT)
            total = clean.next_seq(1) - 1
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "tradecore",
                    "feed",
                    "--config",
                    str(cli_cfg),
                    "--account",
                    "3",
                    "--count",
                    str(total),
                    "--json",
                ],
                capture_output=True,
                text=True,
                timeout=WAIT * 2,
                env={**os.environ, "TRADECORE_API_KEY": KEYS[3]},
            )
        assert proc.returncode == 0, proc.stderr
        rows = [json.loads(line) for line in proc.stdout.splitlines()]
        assert [r["seq"] for r in rows[:-1]] == list(range(1, total + 1))
        summary = rows[-1]
        assert summary["type"] == "summary" and summary["lost"] == 0
        assert summary["recovered"] > 0  # it started late: everything before came over TCP
        insts = {
            1: Instrument("BTC-USD", "0.01", "0.0001"),
            2: Instrument("ETH-USD", "0.01", "0.001"),
        }
        for sym, sides in expected.items():
            inst = insts[sym]

            def top(
                levels: dict[int, int], best: Callable[..., int], inst: Instrument = inst
            ) -> str:
                px = best(levels)
                qty = format(inst.lots_to_qty(levels[px]), "f")
                return f"{qty}@{format(inst.ticks_to_price(px), 'f')}"

            got = summary["books"][inst.symbol]
            assert got["bid"] == (top(sides["BUY"], max) if sides["BUY"] else None)
            assert got["ask"] == (top(sides["SELL"], min) if sides["SELL"] else None)
    finally:
        relay.close()
        v.stop()


_NETNS_SCRIPT = r"""
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from test_venue_client import VenueProcess, book_from_orders, trade_randomly, write_config
from tradecore.venue.feed import FeedSubscriber

GROUP = "239.255.42.1:7100"
tmp = Path(sys.argv[1])
v = VenueProcess(write_config(tmp, feed_mode="multicast", feed_address=GROUP))
result = {}
try:
    with v.client(3) as obs, FeedSubscriber(GROUP, client=obs, interface="127.0.0.1") as early:
        early.start()
        with v.client(1) as a, v.client(2) as b:
            trade_randomly(a, b, 200, seed=21)
            expected = book_from_orders(a, b)
            result["early"] = early.wait_until(
                lambda s: s.synced and s.snapshot() == expected, 30)
            with v.client(3) as obs2, FeedSubscriber(GROUP, client=obs2) as late:
                late.start()
                result["late"] = late.wait_until(
                    lambda s: s.synced and s.snapshot() == expected, 30)
                result["late_recovered"] = late.stats.recovered
                result["late_lost"] = late.stats.lost
        result["early_messages"] = early.stats.messages
        result["early_lost"] = early.stats.lost
        result["levels"] = sum(len(s["BUY"]) + len(s["SELL"]) for s in expected.values())
finally:
    v.stop()
print("RESULT " + json.dumps(result))
"""


def _netns_available() -> str | None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare or ip is not installed"
    probe = subprocess.run(
        ["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        return f"cannot create a network namespace here: {probe.stderr.strip()}"
    return None


def test_multicast_feed_inside_a_fresh_network_namespace(tmp_path: Path) -> None:
    reason = _netns_available()
    if reason is not None:
        pytest.skip(reason)
    script = tmp_path / "netns_feed.py"
    script.write_text(_NETNS_SCRIPT)
    proc = subprocess.run(
        [
            "unshare",
            "-n",
            "sh",
            "-c",
            'ip link set lo up && exec "$0" "$@"',
            sys.executable,
            str(script),
            str(tmp_path),
            str(HERE),
        ],
        capture_output=True,
        text=True,
        timeout=WAIT * 4,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    assert result["early"] and result["late"], result
    assert result["early_lost"] == 0 and result["late_lost"] == 0
    assert result["early_messages"] > 100 and result["late_recovered"] > 0
    assert result["levels"] > 0
