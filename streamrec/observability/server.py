"""The HTTP endpoint of a process: /metrics for Prometheus, /healthz and /readyz for probes.

A ``ThreadingHTTPServer`` from the standard library in a daemon thread: scraping never waits
for a batch, and a slow scraper never stalls the loop. /healthz answers 200 while the
heartbeat is fresh, else 503; /readyz answers 200 when every readiness check passes, else 503
with the reasons, one per line.

>>> from streamrec.observability.metrics import ConsumerMetrics
>>> from urllib.request import urlopen
>>> with ObservabilityServer(ConsumerMetrics(), host="127.0.0.1", port=0) as server:
...     urlopen(f"{server.url}/healthz").read()
b'ok\\n'
"""

from __future__ import annotations

import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from streamrec.observability.health import Heartbeat, Readiness
from streamrec.observability.metrics import ProcessMetrics

logger = logging.getLogger(__name__)

# Containers need the endpoint on every interface; tests pass 127.0.0.1.
DEFAULT_HOST = "0.0.0.0"
TEXT = "text/plain; charset=utf-8"


class ObservabilityServer:
    """Serves one process's metrics and health until ``stop()`` (or the ``with`` block ends).

    ``port=0`` picks a free port; read it back from ``port`` after ``start()``.
    """

    def __init__(
        self,
        metrics: ProcessMetrics,
        *,
        heartbeat: Heartbeat | None = None,
        readiness: Readiness | None = None,
        host: str = DEFAULT_HOST,
        port: int = 0,
    ) -> None:
        self.metrics = metrics
        self.heartbeat = heartbeat or Heartbeat()
        self.readiness = readiness or Readiness()
        self._address = (host, port)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self._address[0]
        shown = "127.0.0.1" if host in ("", DEFAULT_HOST) else host
        return f"http://{shown}:{self.port}"

    def start(self) -> ObservabilityServer:
        if self._server is not None:
            raise RuntimeError("the server is already started")
        self._server = ThreadingHTTPServer(self._address, _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="streamrec-observability", daemon=True
        )
        self._thread.start()
        logger.info("metrics and health endpoints at %s", self.url)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def __enter__(self) -> ObservabilityServer:
        return self.start()

    def __exit__(
        self,
        exception_type: type[BaseException] | None,
        exception: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def respond(self, path: str) -> tuple[HTTPStatus, str, bytes]:
        """(status, content type, body) for a GET of ``path``; the handler only sends it."""
        route = path.split("?", 1)[0].rstrip("/") or "/"
        if route == "/metrics":
            return HTTPStatus.OK, CONTENT_TYPE_PLAIN_0_0_4, self.metrics.exposition()
        if route == "/healthz":
            if self.heartbeat.alive():
                return HTTPStatus.OK, TEXT, b"ok\n"
            silent = self.heartbeat.seconds_since_last_beat()
            body = f"loop silent for {silent:.0f} s\n".encode()
            return HTTPStatus.SERVICE_UNAVAILABLE, TEXT, body
        if route == "/readyz":
            problems = self.readiness.problems()
            if not problems:
                return HTTPStatus.OK, TEXT, b"ready\n"
            return HTTPStatus.SERVICE_UNAVAILABLE, TEXT, ("\n".join(problems) + "\n").encode()
        return HTTPStatus.NOT_FOUND, TEXT, b"not found: try /metrics, /healthz or /readyz\n"


def _handler_for(server: ObservabilityServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, content_type, body = server.respond(self.path)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            # A scrape every few seconds is not news; keep it out of the process's log.
            logger.debug("%s " + format, self.address_string(), *args)

    return Handler
