"""The venue server from Python: ``tradecore serve`` as a real subprocess (ready line, orders
over a real socket, SIGTERM stop under one second with a final snapshot and the same state
hash as ``tradecore replay``), the in-process :class:`tradecore._core.VenueServer`, and the
commands' errors on bad input."""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tradecore._core import VenueServer, replay_journal
from tradecore.enums import EventKind, OrderType, Side, Stp, TimeInForce
from tradecore.errors import ConfigError
from tradecore.venue import codec
from tradecore.venue.server import ServeProcess

WAIT = 10.0


def _config(tmp: Path, *, fsync: str = "none", extra: str = "", pipeline: str = "threads") -> Path:
    accounts = "".join(
        f'[[account]]\naccount = {a}\napi_key_sha256 = "'
        f'{hashlib.sha256(f"key-{a}".encode()).hexdigest()}"\n\n'
        for a in (1, 2)
    )
    text = f"""
[listen]
order_entry = "127.0.0.1:0"
metrics = "127.0.0.1:0"

[session]
cancel_on_disconnect = false
{extra}

[journal]
dir = "journal"
fsync = "{fsync}"
snapshot_every = 0
segment_size = 65536

[feed]
enabled = false

[pipeline]
mode = "{pipeline}"

[[instrument]]
symbol_id = 1
symbol = "AAA"
tick_size = "0.01"
lot_size = "1"
price_band = {{ lo_ticks = 1, hi_ticks = 100000 }}
max_order_qty = 1000000
book_capacity = 1024

{accounts}"""
    path = tmp / "venue.toml"
    path.write_text(text)
    return path


class _Session:
    """A minimal blocking client on the Python codec (the real client lives elsewhere)."""

    def __init__(self, addr: tuple[str, int]) -> None:
        self.sock = socket.create_connection(addr, timeout=WAIT)
        self.buf = b""

    def send(self, msg: codec.ClientMessage) -> None:
        self.sock.sendall(codec.encode(msg))

    def recv(self) -> codec.VenueMessage | codec.FeedMessage:
        while True:
            try:
                msg, n = codec.decode_from_venue(self.buf)
            except codec.IncompleteFrame:
                chunk = self.sock.recv(65536)
                assert chunk, "the venue closed the connection"
                self.buf += chunk
                continue
            self.buf = self.buf[n:]
            if not isinstance(msg, codec.VenueHeartbeat):
                return msg

    def report(self) -> codec.ExecutionReport:
        msg = self.recv()
        assert isinstance(msg, codec.ExecutionReport), msg
        return msg

    def logon(self, account: int) -> codec.LogonAck:
        self.send(codec.Logon(account=account, api_key=f"key-{account}", heartbeat_ms=1000))
        ack = self.recv()
        assert isinstance(ack, codec.LogonAck), ack
        return ack

    def order(self, coid: int, side: Side, price: int, qty: int) -> None:
        self.send(
            codec.NewOrder(
                client_order_id=coid,
                symbol_id=1,
                side=side,
                order_type=OrderType.LIMIT,
                tif=TimeInForce.GTC,
                post_only=False,
                stp=Stp.CANCEL_NEWEST,
                price=price,
                qty=qty,
            )
        )

    def closed(self) -> bool:
        """Reads until the venue closes the connection (True) or WAIT passes (False)."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                if not self.sock.recv(65536):
                    return True
            except (ConnectionResetError, BrokenPipeError):
                return True
        return False

    def close(self) -> None:
        self.sock.close()


def _trade(addr: tuple[str, int]) -> tuple[_Session, _Session]:
    a, b = _Session(addr), _Session(addr)
    assert a.logon(1).next_seq == 1
    assert b.logon(2).next_seq == 1
    a.order(1, Side.BUY, 100, 10)
    assert a.report().kind == EventKind.ACCEPTED
    b.order(1, Side.SELL, 100, 4)
    taker = [b.report(), b.report()]
    maker = a.report()
    assert [r.kind for r in taker] == [EventKind.ACCEPTED, EventKind.FILL]
    assert [r.seq for r in taker] == [1, 2]
    assert (maker.seq, maker.kind, maker.liquidity, maker.leaves) == (
        2,
        EventKind.FILL,
        codec.Liquidity.MAKER,
        6,
    )
    return a, b


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tradecore", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("pipeline", ["threads", "inline"])
def test_serve_subprocess_ready_sigterm_and_replay(tmp_path: Path, pipeline: str) -> None:
    cfg = _config(tmp_path, pipeline=pipeline)
    log = tmp_path / "serve.log"
    with ServeProcess(cfg, log_file=log) as venue:
        ready = venue.ready
        assert ready["event"] == "ready"
        assert ready["journal"] == str(tmp_path / "journal")
        host, port = venue.order_entry
        assert host == "127.0.0.1" and port > 0
        a, b = _trade(venue.order_entry)
        # /metrics answers over HTTP.
        with socket.create_connection(venue.metrics, timeout=WAIT) as http:
            http.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            body = b""
            while chunk := http.recv(65536):
                body += chunk
        assert body.startswith(b"HTTP/1.1 200 OK")
        assert b'tradecore_commands_total{type="logon"} 2' in body
        t0 = time.monotonic()
        stopped = venue.stop()
        elapsed = time.monotonic() - t0
        assert a.closed() and b.closed()
    assert stopped["event"] == "stopped"
    assert stopped["returncode"] == 0
    assert stopped["signal"] == "SIGTERM"
    # The graceful stop itself (drain, final snapshot) is timed by the server; the wall time
    # to process exit also includes interpreter teardown on a possibly busy machine.
    assert stopped["elapsed"] < 1.0, stopped
    assert elapsed < 10.0, elapsed
    assert stopped["snapshot"] and Path(stopped["snapshot"]).is_file()
    assert stopped["live_orders"] == 1
    # The JSON logs went to stderr, one object per line.
    events = [json.loads(line)["event"] for line in log.read_text().splitlines()]
    assert "recovered" in events and "listening" in events and "stopped" in events

    journal = tmp_path / "journal"
    assert (journal / "venue.toml").is_file()
    for extra in ([], ["--from-start"]):
        out = _run("replay", "--journal", str(journal), "--json", *extra)
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout)
        assert result["state_hash"] == stopped["state_hash"]
    reports = tmp_path / "reports.jsonl"
    out = _run("replay", "--journal", str(journal), "--from-start", "--reports", str(reports))
    assert out.returncode == 0, out.stderr
    assert f"state_hash {stopped['state_hash']}" in out.stdout
    assert "records/s" in out.stdout
    rows = [json.loads(line) for line in reports.read_text().splitlines()]
    assert [(r["account"], r["seq"], r["kind"]) for r in rows] == [
        (1, 1, "ACCEPTED"),
        (2, 1, "ACCEPTED"),
        (2, 2, "FILL"),
        (1, 2, "FILL"),
    ]


def test_restart_after_sigkill_recovers_the_journal(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    venue = ServeProcess(cfg).start()
    try:
        a, _b = _trade(venue.order_entry)
        a.order(2, Side.BUY, 90, 5)
        assert a.report().seq == 3
    finally:
        venue.kill()
    with ServeProcess(cfg) as again:
        rec = again.ready["recovery"]
        assert rec["snapshot_seq"] is None
        assert rec["replayed"] == 5
        c = _Session(again.order_entry)
        # Account 1's stream continues after its three reports.
        assert c.logon(1).next_seq == 4
        stopped = again.stop()
    result = replay_journal(str(tmp_path / "journal"), from_snapshot=False)
    assert result["state_hash"] == stopped["state_hash"]
    assert stopped["live_orders"] == 2


@pytest.mark.parametrize("pipeline", ["threads", "inline"])
def test_in_process_server_stats_and_stop(tmp_path: Path, pipeline: str) -> None:
    cfg = _config(tmp_path, fsync="always", pipeline=pipeline)
    with VenueServer(str(cfg), log=False) as server:
        host, _, port = server.order_entry.rpartition(":")
        sessions = _trade((host, int(port)))
        deadline = time.monotonic() + WAIT
        while server.stats()["commands_new_order"] < 2 or server.stats()["sessions"] < 2:
            assert time.monotonic() < deadline, server.stats()
            time.sleep(0.01)
        stats = server.stats()
        assert stats["commands_logon"] == 2
        assert stats["sessions"] == 2
        assert "tradecore_journal_records_total" in server.metrics_text()
        summary = server.stop()
        assert not server.running
        assert all(s.closed() for s in sessions)
        with pytest.raises(RuntimeError, match="already stopped"):
            server.stop()
    assert len(summary["state_hash"]) == 64
    assert summary["error"] is None


def test_bad_input_commands(tmp_path: Path) -> None:
    out = _run("serve", "--config", str(tmp_path / "missing.toml"))
    assert out.returncode == 2
    assert "missing.toml: no such config file" in out.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text(_config(tmp_path).read_text().replace("max_order_qty", "max_order_qtty"))
    out = _run("serve", "--config", str(bad))
    assert out.returncode == 2
    assert "max_order_qtty" in out.stderr
    assert out.stderr.count("\n") == 1, out.stderr
    with pytest.raises(ConfigError, match="max_order_qtty"):
        VenueServer(str(bad), log=False)
    out = _run("replay", "--journal", str(tmp_path / "nope"))
    assert out.returncode == 2
    assert "no such journal directory" in out.stderr


def test_sigint_stops_too_and_a_busy_port_is_an_error(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    venue = ServeProcess(cfg).start()
    proc = venue.proc
    assert proc is not None
    # A second server on the same port fails with a clear error.
    taken = cfg.read_text().replace(
        'order_entry = "127.0.0.1:0"', f'order_entry = "{venue.ready["order_entry"]}"'
    )
    other = tmp_path / "other"
    other.mkdir()
    (other / "venue.toml").write_text(taken)
    out = _run("serve", "--config", str(other / "venue.toml"), "--quiet")
    assert out.returncode == 2, out
    assert "listen.order_entry" in out.stderr
    proc.send_signal(signal.SIGINT)
    stopped = venue.stop()
    assert stopped["returncode"] == 0
    assert stopped["signal"] == "SIGINT"


_MULTICAST_SCRIPT = """
import json, socket, struct, sys
sys.path.insert(0, sys.argv[2])
from test_venue_server import _Session, _trade
from tradecore._core import VenueServer
from tradecore.venue import codec

group, port = "239.255.0.1", int(sys.argv[3])
sub = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sub.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sub.bind((group, port))
mreq = struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton("127.0.0.1"))
sub.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
sub.settimeout(10)
with VenueServer(sys.argv[1], log=False) as server:
    host, _, p = server.order_entry.rpartition(":")
    sessions = _trade((host, int(p)))
    seen = []
    while not any(k == "Trade" for _, _, k in seen) or sum(c == 2 for c, _, _ in seen) < 4:
        dg = codec.decode_datagram(sub.recv(2048))
        seen += [(dg.channel, seq, type(m).__name__) for seq, m in dg.items()]
    server.stop()
print(json.dumps(seen))
"""


def test_multicast_feed_in_a_network_namespace(tmp_path: Path) -> None:
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {probe.stderr.strip()}")
    cfg = _config(tmp_path)
    port = 17100
    cfg.write_text(
        cfg.read_text().replace(
            "[feed]\nenabled = false",
            f'[feed]\nmode = "multicast"\naddress = "239.255.0.1:{port}"\n'
            'interface = "127.0.0.1"\nttl = 0\nreport_channel = 2',
        )
    )
    script = tmp_path / "mcast.py"
    script.write_text(_MULTICAST_SCRIPT)
    here = str(Path(__file__).parent)
    out = subprocess.run(
        [
            "unshare",
            "-n",
            "sh",
            "-c",
            f'ip link set lo up && exec "{sys.executable}" "{script}" "{cfg}" "{here}" {port}',
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    md = [(seq, kind) for ch, seq, kind in seen if ch == 1]
    drop_copy = [seq for ch, seq, _ in seen if ch == 2]
    assert [seq for seq, _ in md] == list(range(1, len(md) + 1))
    kinds = [k for _, k in md]
    trade = kinds.index("Trade")
    assert kinds[trade + 1] == "BookUpdate", kinds  # the resting level's update follows
    assert drop_copy == list(range(1, len(drop_copy) + 1)) and len(drop_copy) >= 4
