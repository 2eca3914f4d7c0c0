"""A small, real HTTP stand-in for the pagers SLA Buddy pages: PagerDuty's Events
API v2, Grafana OnCall's formatted webhook, and a generic webhook.

Used by the tests and by demo mode: point ``PAGERDUTY_EVENTS_URL`` at
``FakePager.pagerduty_url`` (and ``ONCALL_WEBHOOK_URL`` / ``PAGE_WEBHOOK_URL``
at ``oncall_url()`` / ``webhook_url()``). It keeps incidents the way the real
services do (PagerDuty: one open incident per ``dedup_key``; OnCall: one
alert group per ``alert_uid``; webhook: one delivery per idempotency key),
records every request, and can be told to fail the next requests (a status,
with Retry-After) or to accept a request and answer too late (a timeout after
the event was accepted).

Run it alone with ``python -m base.fake_pager --port 8766``; ``GET /incidents``
lists what it holds.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PAGERDUTY, ONCALL, WEBHOOK = "pagerduty", "oncall", "webhook"
PAGERDUTY_PATH = "/v2/enqueue"
ONCALL_PREFIX = "/integrations/v1/formatted_webhook/"
WEBHOOK_PREFIX = "/hooks/"


@dataclass
class Received:
    kind: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any
    status: int


@dataclass
class Scripted:
    status: int = 500
    retry_after: int | None = None
    stall_seconds: float = 0.0  # accept the event, then answer this late
    remaining: int = 1


@dataclass
class Incident:
    kind: str
    key: str  # dedup_key / alert_uid / idempotency key
    title: str
    status: str = "triggered"  # "triggered" or "resolved"
    events: int = 0
    number: int = 0


@dataclass
class FakePagerState:
    received: list[Received] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    scripts: dict[str, list[Scripted]] = field(default_factory=lambda: defaultdict(list))


class FakePager:
    """Start with ``FakePager().start()``; stop with ``.stop()`` (or use as a context manager)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, webhook_secret: str = ""):
        self.state = FakePagerState()
        self.lock = threading.Lock()
        self.webhook_secret = webhook_secret  # when set, unsigned or badly signed webhooks get 401
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True

    # -- lifecycle -----------------------------------------------------------
    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def pagerduty_url(self) -> str:
        return self.base_url + PAGERDUTY_PATH

    def oncall_url(self, token: str = "oncall-token") -> str:
        return f"{self.base_url}{ONCALL_PREFIX}{token}/"

    def webhook_url(self, name: str = "ops") -> str:
        return f"{self.base_url}{WEBHOOK_PREFIX}{name}"

    def start(self) -> FakePager:
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakePager:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- scripting -----------------------------------------------------------
    def fail_next(
        self, kind: str, *, status: int = 500, retry_after: int | None = None, times: int = 1
    ) -> None:
        """The next ``times`` requests to ``kind`` are answered ``status`` without being accepted."""
        with self.lock:
            self.state.scripts[kind].append(Scripted(status=status, retry_after=retry_after, remaining=times))

    def accept_then_stall(self, kind: str, *, seconds: float, times: int = 1) -> None:
        """The next requests are accepted (the incident exists), then answered ``seconds`` late."""
        with self.lock:
            self.state.scripts[kind].append(Scripted(status=0, stall_seconds=seconds, remaining=times))

    # -- inspection ----------------------------------------------------------
    def requests(self, kind: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.state.received if kind is None or r.kind == kind]

    def incidents(self, kind: str | None = None) -> list[Incident]:
        with self.lock:
            return [i for i in self.state.incidents if kind is None or i.kind == kind]

    # -- the services ----------------------------------------------------------
    def _take_script(self, kind: str) -> Scripted | None:
        queue = self.state.scripts.get(kind)
        if not queue:
            return None
        script = queue[0]
        script.remaining -= 1
        if script.remaining <= 0:
            queue.pop(0)
        return script

    def _open(self, kind: str, key: str) -> Incident | None:
        for incident in reversed(self.state.incidents):
            if incident.kind == kind and incident.key == key and incident.status == "triggered":
                return incident
        return None

    def _trigger(self, kind: str, key: str, title: str) -> Incident:
        incident = self._open(kind, key)
        if incident is None:  # a new incident; an open one with the key absorbs the event
            incident = Incident(kind, key, title, number=len(self.state.incidents) + 1)
            self.state.incidents.append(incident)
        incident.events += 1
        return incident

    def _resolve(self, kind: str, key: str) -> None:
        incident = self._open(kind, key)
        if incident is not None:
            incident.status = "resolved"
            incident.events += 1

    def _pagerduty(self, body: Any) -> tuple[int, dict]:
        if not isinstance(body, dict):
            return 400, {"status": "invalid event", "message": "Event object is invalid",
                         "errors": ["not JSON"]}
        errors = []
        if not body.get("routing_key"):
            errors.append("'routing_key' is missing or blank")
        action = body.get("event_action")
        if action not in ("trigger", "acknowledge", "resolve"):
            errors.append("'event_action' is invalid")
        key = body.get("dedup_key") or ""
        payload = body.get("payload") if isinstance(body.get("payload"), dict) else {}
        if action == "trigger":
            for name in ("summary", "source", "severity"):
                if not payload.get(name):
                    errors.append(f"'payload.{name}' is missing or blank")
            if payload.get("severity") not in (None, "critical", "error", "warning", "info"):
                errors.append("'payload.severity' is invalid")
        elif not key:
            errors.append("'dedup_key' is required to acknowledge or resolve")
        if errors:
            return 400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
        if action == "trigger":
            key = key or f"generated-{len(self.state.incidents) + 1}"
            self._trigger(PAGERDUTY, key, payload["summary"])
        elif action == "resolve":
            self._resolve(PAGERDUTY, key)
        return 202, {"status": "success", "message": "Event processed", "dedup_key": key}

    def _oncall(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            return 400, {"detail": "payload must be a JSON object"}
        key = str(body.get("alert_uid") or body.get("title") or "")
        if str(body.get("state", "")).upper() == "OK":
            self._resolve(ONCALL, key)
        else:
            self._trigger(ONCALL, key, str(body.get("title") or ""))
        return 200, "Ok."

    def _webhook(self, body: Any, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        if self.webhook_secret:
            stamp = headers.get("x-slabuddy-timestamp", "")
            expected = "sha256=" + hmac.new(self.webhook_secret.encode(), stamp.encode() + b"." + raw,
                                            hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, headers.get("x-slabuddy-signature", "")):
                return 401, {"error": "bad signature"}
        key = headers.get("x-slabuddy-idempotency-key", "")
        if not isinstance(body, dict) or not key:
            return 400, {"error": "expected a JSON object and an idempotency key"}
        dedup = str(body.get("dedup_key") or key)
        if body.get("event") == "resolve":
            self._resolve(WEBHOOK, dedup)
        else:
            self._trigger(WEBHOOK, dedup, str(body.get("title") or ""))
        return 200, {"ok": True}

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any, dict, float]:
        if path == PAGERDUTY_PATH:
            kind = PAGERDUTY
        elif path.startswith(ONCALL_PREFIX):
            kind = ONCALL
        elif path.startswith(WEBHOOK_PREFIX):
            kind = WEBHOOK
        else:
            return 404, {"error": "not found"}, {}, 0.0
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        with self.lock:
            script = self._take_script(kind)
            if script is not None and script.status:
                self.state.received.append(Received(kind, path, headers, body, script.status))
                extra = {"Retry-After": str(script.retry_after)} if script.retry_after is not None else {}
                return script.status, {"status": "error", "message": "scripted failure"}, extra, 0.0
            if kind == PAGERDUTY:
                status, answer = self._pagerduty(body)
            elif kind == ONCALL:
                status, answer = self._oncall(body)
            else:
                status, answer = self._webhook(body, headers, raw)
            self.state.received.append(Received(kind, path, headers, body, status))
        return status, answer, {}, script.stall_seconds if script is not None else 0.0

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"incidents": [vars(i).copy() for i in self.state.incidents],
                    "requests": len(self.state.received)}

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _answer(self, status: int, payload: Any, headers: dict[str, str]) -> None:
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json" if not isinstance(payload, str)
                                     else "text/plain")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (a stalled answer): what a slow service looks like

            def do_GET(self):
                if self.path.rstrip("/") == "/incidents":
                    self._answer(200, fake.snapshot(), {})
                else:
                    self._answer(404, {"error": "not found"}, {})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, payload, headers, stall = fake.handle(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, raw)
                if stall:
                    time.sleep(stall)
                self._answer(status, payload, headers)

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    options = parser.parse_args()
    fake = FakePager(options.host, options.port)
    print(f"Stand-in pager at {fake.base_url} (PagerDuty: {fake.pagerduty_url})", flush=True)
    try:
        fake._server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
