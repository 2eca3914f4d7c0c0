"""Outbound HTTP with a total deadline: one GET for the helpdesk adapters and the iCal feeds,
and the same deadline around the Google client's calls.

A socket timeout bounds each read, not the call: a server that sends one byte
a second never trips it. ``SocketDeadline`` shuts the call's sockets down once
the deadline has passed, wherever the call is (connecting, reading headers or
the body, or a client library's own retry), so the blocked read returns at
once and the caller gets ``DeadlineExceeded``.

``http_get`` also follows redirects itself, checking every address it is sent
to: the caller's ``url_check`` sees each URL (scheme policy) and
``address_allowed`` every resolved address before anything is connected, and the
connection goes to the address that was checked (a second DNS answer cannot
swap it). No error message quotes the response body, which may be a private
page. Proxies from the environment are not used.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urljoin, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

REDIRECTS = (301, 302, 303, 307, 308)
CHUNK = 64 * 1024
SHUTDOWN_REPEAT_SECONDS = 0.05  # after the deadline, sockets a client library opens again are shut too
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie"})


class OutboundHttpError(Exception):
    """The request failed. The message says why, never what the body said."""


class DeadlineExceeded(OutboundHttpError):
    pass


class AddressRefused(OutboundHttpError):
    pass


class HttpStatusError(OutboundHttpError):
    def __init__(self, status: int):
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        super().__init__(f"HTTP {status} {phrase}".strip())
        self.status = status


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    url: str  # after redirects
    body: bytes


class SocketDeadline:
    """``with SocketDeadline(seconds, sockets):`` shut down every socket ``sockets()`` returns
    once ``seconds`` have passed and until the block ends. ``.expired`` says whether it did."""

    def __init__(self, seconds: float, sockets: Callable[[], Iterable[socket.socket | None]]):
        self.seconds = max(seconds, 0.0)
        self.sockets = sockets
        self.expired = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="outbound-deadline", daemon=True)

    def _watch(self) -> None:
        if self._done.wait(self.seconds):
            return
        self.expired = True
        while True:
            for sock in list(self.sockets()):
                if sock is None:
                    continue
                try:
                    # The plain socket's shutdown, also for a TLS socket: it ends the TCP
                    # connection under a read blocked in another thread, without a TLS goodbye.
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
                except OSError:
                    pass  # not connected yet, or already closed
            if self._done.wait(SHUTDOWN_REPEAT_SECONDS):
                return

    def __enter__(self) -> SocketDeadline:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded("no answer within the deadline")
    return left


def _resolve(host: str, port: int, *, deadline: float) -> list[IPAddress]:
    """getaddrinfo has no timeout of its own: ask in a helper thread and wait at most the deadline."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    found: list = []
    failed: list = []

    def lookup() -> None:
        try:
            found.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            failed.append(exc)

    worker = threading.Thread(target=lookup, name="outbound-dns", daemon=True)
    worker.start()
    worker.join(_remaining(deadline))
    if worker.is_alive():
        raise DeadlineExceeded("no answer within the deadline (looking up the host name)")
    if failed or not found:
        raise OutboundHttpError(f"unreachable: cannot resolve {host}")
    addresses: list[IPAddress] = []
    for *_, sockaddr in found:
        address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to an address already checked, while Host names the server."""

    def __init__(self, host: str, port: int, *, address: IPAddress, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.address = address
        self.tcp: socket.socket | None = None  # kept: http.client forgets it once a response owns it

    def connect(self) -> None:
        self.sock = self.tcp = socket.create_connection((str(self.address), self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, address: IPAddress, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address
        self.tcp: socket.socket | None = None

    def connect(self) -> None:
        self.tcp = socket.create_connection((str(self.address), self.port), self.timeout)
        # The certificate is checked against the host name, not the address we pinned.
        self.sock = self._context.wrap_socket(self.tcp, server_hostname=self.host)


def _one_request(
    url: str, *, headers: dict[str, str], deadline: float, max_bytes: int,
    address_allowed: Callable[[IPAddress], bool] | None,
) -> tuple[int, str | None, bytes]:
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in ("http", "https") or not host:
        raise OutboundHttpError(f"not an http(s) address (scheme {scheme or 'none'!r})")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise OutboundHttpError("the address has an invalid port") from None
    addresses = _resolve(host, port, deadline=deadline)
    if address_allowed is not None and not all(address_allowed(a) for a in addresses):
        # One refused address refuses the host: its DNS answer may be chosen to mix them.
        raise AddressRefused(f"{host} is (or resolves to) a loopback, link-local, private or "
                             "unspecified address")
    connection_class = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    conn = connection_class(host, port, address=addresses[0], timeout=_remaining(deadline))
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    guard = SocketDeadline(_remaining(deadline), lambda: [conn.tcp])
    try:
        with guard:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            if response.status in REDIRECTS:
                return response.status, response.getheader("Location"), b""
            if response.status >= 400:
                raise HttpStatusError(response.status)
            body = bytearray()
            while len(body) <= max_bytes:
                chunk = response.read1(CHUNK)
                if not chunk:
                    break
                body += chunk
                _remaining(deadline)  # a server that keeps sending must still stop at the deadline
            if guard.expired:  # the shut-down socket ended the body early
                raise DeadlineExceeded("no answer within the deadline")
            if len(body) > max_bytes:
                raise OutboundHttpError(f"the answer is larger than {max_bytes} bytes")
            if response.length:  # fewer bytes than Content-Length promised
                raise OutboundHttpError("unreachable: the answer was cut short")
            return response.status, None, bytes(body)
    except OutboundHttpError:
        if guard.expired:
            raise DeadlineExceeded("no answer within the deadline") from None
        raise
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        if guard.expired or isinstance(exc, TimeoutError):
            raise DeadlineExceeded("no answer within the deadline") from None
        raise OutboundHttpError(f"unreachable: {type(exc).__name__}") from None
    finally:
        conn.close()


def http_get(
    url: str,
    *,
    headers: dict[str, str] | None = None,
    deadline_seconds: float,
    max_bytes: int,
    max_redirects: int = 5,
    url_check: Callable[[str], None] | None = None,
    address_allowed: Callable[[IPAddress], bool] | None = None,
) -> HttpAnswer:
    """GET ``url`` within ``deadline_seconds`` in total, following redirects.

    ``url_check`` is called with every URL before it is requested (the first and
    each redirect target) and raises to refuse it; ``address_allowed`` is asked
    about every address a host name resolves to. Credentials in ``headers`` are
    not sent on to another host after a redirect.
    """
    deadline = time.monotonic() + deadline_seconds
    sent = dict(headers or {})
    first_host = urlsplit(url).hostname
    for _ in range(max_redirects + 1):
        if url_check is not None:
            url_check(url)
        status, location, body = _one_request(
            url, headers=sent, deadline=deadline, max_bytes=max_bytes, address_allowed=address_allowed
        )
        if location is None:
            if status in REDIRECTS:
                raise OutboundHttpError(f"HTTP {status} without a Location")
            return HttpAnswer(status=status, url=url, body=body)
        url = urljoin(url, location)
        if urlsplit(url).hostname != first_host:
            sent = {k: v for k, v in sent.items() if k.lower() not in CREDENTIAL_HEADERS}
    raise OutboundHttpError(f"more than {max_redirects} redirects")
