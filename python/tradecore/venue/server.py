"""Starting and replaying the venue: the ``tradecore serve`` and ``tradecore replay`` commands,
and :class:`ServeProcess`, a ``tradecore serve`` subprocess for tests and tools.

What it owns
------------
* ``serve --config F``: starts :class:`tradecore._core.VenueServer` (the server's threads run
  in Rust and never take the GIL), prints **one** JSON line on stdout when it listens::

      {"event": "ready", "order_entry": "127.0.0.1:7001", "metrics": "127.0.0.1:7002",
       "feed": "239.255.0.1:7100", "journal": "/path/to/journal", "pid": 1234, ...}

  then waits. SIGTERM or SIGINT stop it gracefully (stop accepting, drain the rings, final
  snapshot; well under a second) and it prints ``{"event": "stopped", "state_hash": ...}``
  and exits 0. The server's structured logs (JSON lines) go to stderr.
* ``replay --journal DIR``: replays a journal read-only (from its newest usable snapshot, or
  with ``--from-start`` from the first record) with the config the server copied into the
  directory (or ``--config``), prints the state hash and the replay speed, and with
  ``--reports FILE`` writes every regenerated report of every account (CSV when FILE ends in
  ``.csv``, JSON lines otherwise) so a crash test can check that what a client received is a
  prefix of what the journal regenerates.
* :class:`ServeProcess`: ``python -m tradecore serve`` as a subprocess, waiting for the ready
  line; a context manager that stops it with SIGTERM at exit (or :meth:`ServeProcess.kill`
  for crash tests).

Invariants: the ready line is printed only once the listeners are bound and recovery is done;
the main thread sleeps in short intervals (50 ms) so signal handlers run promptly; a bad
config is a :class:`~tradecore.errors.ConfigError` (exit status 2, one line naming the file
and field).

Cost: nothing on the message path; Python only starts, waits and stops.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, TextIO

from tradecore.errors import ConfigError, UsageError

__all__ = ["ServeProcess", "register"]


def _split(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


def _cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    from tradecore._core import VenueServer

    config: Path = args.config
    if not config.is_file():
        raise ConfigError(f"{config}: no such config file")
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server = VenueServer(str(config), log=not args.quiet)
        ready: dict[str, Any] = {
            "event": "ready",
            "order_entry": server.order_entry,
            "metrics": server.metrics,
            "feed": server.feed,
            "journal": server.journal_dir,
            "pid": os.getpid(),
            "recovery": server.recovery(),
        }
        print(json.dumps(ready), file=out, flush=True)
        failed = False
        while not stop.is_set():
            stop.wait(0.05)
            if not server.running:
                failed = True
                break
        summary = server.stop()
        stopped: dict[str, Any] = {"event": "stopped", **summary}
        if received:
            stopped["signal"] = signal.Signals(received[0]).name
        print(json.dumps(stopped), file=out, flush=True)
        if failed or summary.get("error"):
            print(
                f"tradecore serve: error: the venue stopped: {summary.get('error')}",
                file=sys.stderr,
            )
            return 1
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _cmd_replay(args: argparse.Namespace, out: TextIO) -> int:
    from tradecore._core import replay_journal

    journal: Path = args.journal
    if not journal.is_dir():
        raise UsageError(f"{journal}: no such journal directory")
    if args.config is not None and not args.config.is_file():
        raise ConfigError(f"{args.config}: no such config file")
    result = replay_journal(
        str(journal),
        None if args.config is None else str(args.config),
        from_snapshot=not args.from_start,
        reports=None if args.reports is None else str(args.reports),
    )
    if args.json:
        print(json.dumps(result), file=out, flush=True)
        return 0
    snap = result["snapshot"]
    print(f"state_hash {result['state_hash']}", file=out)
    print(
        f"records {result['records']} in {result['elapsed']:.3f} s "
        f"({result['records_per_sec']:,.0f} records/s), last seq {result['last_seq']}",
        file=out,
    )
    print(
        f"snapshot {snap} (seq {result['snapshot_seq']})" if snap else "snapshot none",
        file=out,
    )
    print(f"live orders {result['live_orders']}", file=out)
    if result["damage"]:
        print(f"journal damage: {result['damage']}", file=out)
    for rejected in result["rejected_snapshots"]:
        print(f"snapshot rejected: {rejected}", file=out)
    if args.reports is not None:
        print(f"reports {result['reports_written']} written to {args.reports}", file=out)
    out.flush()
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``serve`` and ``replay`` to the ``tradecore`` parser."""
    p = sub.add_parser(
        "serve",
        help="run the venue server (binary order entry, UDP feeds, /metrics)",
        description=(
            "Run the venue: recover from the journal, listen, print one JSON 'ready' line on "
            "stdout; SIGTERM/SIGINT stop it gracefully (final snapshot) and print a 'stopped' "
            "line with the state hash. JSON logs go to stderr."
        ),
    )
    p.add_argument("--config", type=Path, required=True, help="venue config (TOML)")
    p.add_argument("--quiet", action="store_true", help="no JSON logs on stderr")
    p.set_defaults(handler=_cmd_serve)

    r = sub.add_parser(
        "replay",
        help="replay a venue journal and print its state hash",
        description=(
            "Replay a venue journal read-only and print the state hash of the result (the "
            "hash the server prints at shutdown) and the replay speed."
        ),
    )
    r.add_argument("--journal", type=Path, required=True, metavar="DIR", help="journal dir")
    r.add_argument(
        "--config",
        type=Path,
        help="config the journal was written with (default: DIR/venue.toml, copied by serve)",
    )
    r.add_argument(
        "--reports",
        type=Path,
        metavar="FILE",
        help="write every regenerated execution report (CSV if FILE ends in .csv, else JSONL)",
    )
    r.add_argument(
        "--from-start",
        action="store_true",
        help="replay from the first record instead of the newest usable snapshot",
    )
    r.add_argument("--json", action="store_true", help="print the result as one JSON line")
    r.set_defaults(handler=_cmd_replay)


class ServeProcess:
    """``python -m tradecore serve --config CONFIG`` as a subprocess.

    ``with ServeProcess(cfg) as venue:`` starts it and waits for the ready line (its fields
    are in :attr:`ready`; :attr:`order_entry` and :attr:`metrics` are ``(host, port)``); at
    the end of the block it sends SIGTERM and waits (:meth:`stop` returns the ``stopped``
    line). :meth:`kill` sends SIGKILL instead (crash tests). The server's stderr (its JSON
    logs) goes to ``log_file`` when given, else is discarded.
    """

    def __init__(
        self,
        config: str | os.PathLike[str],
        *,
        timeout: float = 30.0,
        log_file: str | os.PathLike[str] | None = None,
        python: str = sys.executable,
        env: dict[str, str] | None = None,
    ) -> None:
        self.config = Path(config)
        self.timeout = timeout
        self.log_file = None if log_file is None else Path(log_file)
        self.python = python
        self.env = env
        self.proc: subprocess.Popen[str] | None = None
        self.ready: dict[str, Any] = {}
        self.stopped: dict[str, Any] | None = None
        self._log: Any = None

    @property
    def order_entry(self) -> tuple[str, int]:
        """The venue's order-entry address."""
        return _split(str(self.ready["order_entry"]))

    @property
    def metrics(self) -> tuple[str, int]:
        """The venue's metrics address."""
        return _split(str(self.ready["metrics"]))

    @property
    def pid(self) -> int:
        """The server process id."""
        if self.proc is None:
            raise RuntimeError("the server is not started")
        return self.proc.pid

    def start(self) -> ServeProcess:
        """Start the subprocess and wait for its ready line (``RuntimeError`` if it exits or
        stays silent for ``timeout`` seconds, with its exit status)."""
        stderr: Any = subprocess.DEVNULL
        if self.log_file is not None:
            self._log = open(self.log_file, "ab")  # noqa: SIM115 (closed in _close)
            stderr = self._log
        self.proc = subprocess.Popen(
            [self.python, "-m", "tradecore", "serve", "--config", str(self.config)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=self.env,
        )
        line = self._read_line(self.timeout)
        if line is None:
            code = self.proc.poll()
            self.kill()
            raise RuntimeError(
                f"tradecore serve did not report ready within {self.timeout} s (exit status "
                f"{code}); see {self.log_file or 'its stderr'}"
            )
        self.ready = json.loads(line)
        if self.ready.get("event") != "ready":
            self.kill()
            raise RuntimeError(f"unexpected first line from tradecore serve: {line!r}")
        return self

    def _read_line(self, timeout: float) -> str | None:
        proc = self.proc
        if proc is None or proc.stdout is None:
            return None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                if sel.select(left):
                    line = proc.stdout.readline()
                    return line if line else None

    def stop(self, timeout: float = 10.0) -> dict[str, Any]:
        """SIGTERM, wait for exit; returns the ``stopped`` line (with ``returncode``)."""
        proc = self.proc
        if proc is None:
            raise RuntimeError("the server is not started")
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        line = self._read_line(timeout)
        try:
            code = proc.wait(timeout)
        finally:
            self._close()
        result: dict[str, Any] = json.loads(line) if line else {"event": "exited"}
        result["returncode"] = code
        self.stopped = result
        return result

    def kill(self) -> None:
        """SIGKILL the server (no final snapshot) and reap it."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.kill()
        if proc is not None:
            proc.wait()
        self._close()

    def _close(self) -> None:
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
        else:
            self._close()
