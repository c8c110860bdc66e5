"""The liveness endpoint of a replica that stands by: alive and ready, not leading.

kopf serves ``/healthz`` only once it runs, and a standby does not run kopf (its handlers must
not run twice), so while it waits for the Lease this small server answers on the same address.
It is closed the moment the replica leads, and kopf takes the address over.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class StandbyProbe:
    """Answers ``GET <path>`` with 200 and who leads, on the liveness endpoint's address."""

    def __init__(self, endpoint: str, holder: Callable[[], str]) -> None:
        url = urlsplit(endpoint)
        if url.scheme != "http" or url.port is None:
            raise ValueError(f"--liveness must be http://HOST:PORT/PATH, not {endpoint!r}")
        self.path = url.path or "/"
        probe = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != probe.path:
                    self.send_error(404)
                    return
                body = json.dumps({"status": "standby", "leader": holder() or None}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # a probe every few seconds is not worth a log line

        self._server = ThreadingHTTPServer((url.hostname or "0.0.0.0", url.port), Handler)  # noqa: S104
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="standby-probe", daemon=True
        )

    def start(self) -> StandbyProbe:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop answering and free the address (for kopf's own endpoint)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
