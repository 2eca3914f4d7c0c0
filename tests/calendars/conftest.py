"""Fixtures for the calendar tests: a small team, a local iCal server, and a socket blocker."""

from __future__ import annotations

import socket
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine

from calendars.factories import EngineerFactory
from calendars.models import Role


@pytest.fixture
def team(db):
    """Alice and Bob (matched by title), Carol (matched by email), Dave, and the head of success."""
    return {
        "alice": EngineerFactory(name="Alice Archer", email="alice@example.com", slack_user_id="UALICE"),
        "bob": EngineerFactory(name="Bob Baker", email="bob@example.com", slack_user_id="UBOB"),
        "carol": EngineerFactory(name="Carol Cruz", email="carol@example.com", slack_user_id="UCAROL"),
        "dave": EngineerFactory(name="Dave Dunn", email="dave@example.com", slack_user_id="UDAVE"),
        "hos": EngineerFactory(
            name="Hana Head", email="hos@example.com", slack_user_id="UHEAD", role=Role.HEAD_OF_SUCCESS
        ),
    }


class _Feeds:
    """Path -> (status, body) served by the local iCal server; tests change it between syncs."""

    def __init__(self):
        self.routes: dict[str, tuple[int, bytes]] = {}
        self.requests: list[str] = []


@pytest.fixture
def ical_server(settings):
    """A local plain-HTTP feed server on 127.0.0.1: the sync may read it only with both settings on."""
    settings.CALENDAR_ALLOW_HTTP = True
    settings.CALENDAR_ALLOW_PRIVATE_ADDRESSES = True
    feeds = _Feeds()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            feeds.requests.append(self.path)
            status, body = feeds.routes.get(self.path, (404, b"not found"))
            self.send_response(status)
            self.send_header("Content-Type", "text/calendar; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    feeds.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    yield feeds
    server.shutdown()
    server.server_close()


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("resolution tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def frozen():
    """Freeze time at a UTC moment: ``frozen(utc(2026, 10, 26, 8, 30))``; move it with ``.move_to``."""
    travellers = []

    def at(moment: datetime):
        traveller = time_machine.travel(moment, tick=False)
        travellers.append(traveller)
        return traveller.start()

    yield at
    for traveller in reversed(travellers):
        traveller.stop()
