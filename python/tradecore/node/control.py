"""The node's HTTP port: ``/metrics`` for Prometheus and a few control endpoints.

Owns one ``http.server.ThreadingHTTPServer`` on a daemon thread (loopback by default). Routes:

=======================  ===========================================================
``GET /metrics``         Prometheus text format (the node's registry)
``GET /health``          ``{"status": "ok"}`` while the node runs
``GET /summary``         the node's summary (messages, orders, fills, P&L, tick-to-trade)
``GET /kill``            the kill-switch state
``POST /kill``           trip the kill switch (``?reason=...``, ``?account=N`` for one account)
``POST /reset``          re-arm the kill switch (``?account=N`` for one account)
=======================  ===========================================================

Invariant: the HTTP thread never touches the node's trading state. A control request is handed
to the node through :class:`ControlTarget.control` (which queues it for the node's own thread
and waits for its answer, at most ``timeout`` seconds); only ``/metrics`` reads from this thread,
through the collector's thread-safe copies. Answers are JSON; errors have a status code and an
``error`` field. Cost: nothing on the hot path beyond the node's per-event check of its queue.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

__all__ = ["ControlError", "ControlServer", "ControlTarget"]

log = logging.getLogger("tradecore.node.control")


class ControlError(Exception):
    """A control command that cannot be carried out (bad argument, node stopped)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ControlTarget(Protocol):
    """What the HTTP thread may ask the node (answers are JSON-ready dicts)."""

    def control(self, command: str, args: dict[str, str], timeout: float) -> dict[str, Any]: ...


_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/health"): "health",
    ("GET", "/summary"): "summary",
    ("GET", "/kill"): "kill_state",
    ("POST", "/kill"): "kill",
    ("POST", "/reset"): "reset",
}


class ControlServer:
    """Serve ``/metrics`` from ``registry`` and the control routes of ``target``."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        target: ControlTarget,
        *,
        timeout: float = 2.0,
    ) -> None:
        self._registry = registry
        self._target = target
        self._timeout = timeout
        handler = self._handler_class()
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` actually bound (port 0 in the config picks a free port)."""
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        """``http://host:port``."""
        host, port = self.address
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"

    def start(self) -> None:
        """Serve on a daemon thread."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="tradecore-control",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket (returns within about 0.1 s)."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(1.0)
        self._httpd.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("%s " + format, self.address_string(), *args)

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, obj: object) -> None:
                body = (json.dumps(obj, default=str, sort_keys=True) + "\n").encode()
                self._send(status, body, "application/json")

            def _dispatch(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(min(length, 65536))
                if method == "GET" and parts.path == "/metrics":
                    self._send(200, generate_latest(server._registry), CONTENT_TYPE_LATEST)
                    return
                command = _ROUTES.get((method, parts.path))
                if command is None:
                    known = any(path == parts.path for _m, path in _ROUTES)
                    if known or parts.path == "/metrics":
                        self._json(405, {"error": f"{method} not allowed on {parts.path}"})
                    else:
                        self._json(404, {"error": f"no route {parts.path}"})
                    return
                args = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                try:
                    answer = server._target.control(command, args, server._timeout)
                except ControlError as exc:
                    self._json(exc.status, {"error": str(exc)})
                    return
                except Exception as exc:  # the HTTP thread reports, never dies
                    log.exception("control %s failed", command)
                    self._json(500, {"error": f"{type(exc).__name__}: {exc}"})
                    return
                self._json(200, answer)

            def do_GET(self) -> None:
                self._dispatch("GET")

            def do_POST(self) -> None:
                self._dispatch("POST")

        return Handler
