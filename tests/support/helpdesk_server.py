"""A local helpdesk API (Zendesk, Freshdesk) serving recorded answers, slowly or with errors on demand."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RECORDED = Path(__file__).parent / "recorded"


class Helpdesk:
    """Serves recorded JSON by path; can answer slowly or with a status code."""

    def __init__(self):
        self.routes: dict[str, tuple[int, bytes, float]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        helpdesk = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                helpdesk.requests.append((self.path, dict(self.headers)))
                status, body, delay = helpdesk.routes.get(self.path, (404, b'{"error":"RecordNotFound"}', 0))
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def route(self, path, recorded=None, *, status=200, body=None, delay=0.0):
        data = body if body is not None else (RECORDED / recorded).read_bytes()
        self.routes[path] = (status, data, delay)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


ZD = "/api/v2/tickets/4711/metrics.json"
FD = "/api/v2/tickets/4711?include=stats"
