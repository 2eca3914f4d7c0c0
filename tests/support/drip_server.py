"""A local HTTP server that answers slowly: one byte a second (or every ``interval`` seconds).

Each answer is complete and valid, so a client without a total deadline
eventually succeeds; a client with one gives up early, and ``bytes_sent``
shows how far the server got before the client left.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class DripServer:
    def __init__(self, body: bytes, *, content_type: str = "application/json", interval: float = 1.0,
                 drip_headers: bool = False):
        self.body = body
        self.requests: list[str] = []
        self.bytes_sent = 0
        drip = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802 (http.server's name)
                drip.requests.append(self.path)
                head = (f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
                        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
                at_once, dripped = (b"", head + body) if drip_headers else (head, body)
                try:
                    self.wfile.write(at_once)
                    for i in range(len(dripped)):
                        self.wfile.write(dripped[i:i + 1])
                        self.wfile.flush()
                        drip.bytes_sent += 1
                        time.sleep(interval)
                except OSError:
                    pass  # the client gave up
                self.close_connection = True

            def do_POST(self):  # noqa: N802 (a Web API call: the request body is read, then the same drip)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.do_GET()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        serve = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})
        serve.daemon = True
        serve.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> DripServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
