"""Which iCal feed addresses SLA Buddy may save and read.

An iCal source makes the server fetch a URL an admin typed in, so the URL is
held to what a calendar feed is: ``https://`` or ``webcal://`` (read over
HTTPS), plain ``http://`` only with ``CALENDAR_ALLOW_HTTP``, and never a
loopback, link-local, private or unspecified address (the metadata service at
169.254.169.254, the database next door) unless
``CALENDAR_ALLOW_PRIVATE_ADDRESSES``. The model checks it on save; the fetcher
checks it again itself, for the first URL and every redirect, and connects to
the address it checked.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from urllib.parse import urlsplit

from django.conf import settings

from calendars.events import CalendarFetchError

SAVE_LOOKUP_SECONDS = 2.0


def address_is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Not loopback, link-local, private, unspecified, reserved or multicast (IPv4 inside IPv6 too)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def address_allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return settings.CALENDAR_ALLOW_PRIVATE_ADDRESSES or address_is_public(address)


def https_url(url: str) -> str:
    """``webcal://`` is how calendar apps spell an iCal address; it is read over HTTPS."""
    if url[:9].lower() == "webcal://":
        return "https://" + url[9:]
    return url


def _scheme_problem(url: str) -> str | None:
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("https", "webcal"):
        return None
    if scheme == "http":
        return None if settings.CALENDAR_ALLOW_HTTP else (
            "plain http:// is refused; use https:// (or set CALENDAR_ALLOW_HTTP=true for a feed that "
            "has no https)"
        )
    return "an iCal source needs an https:// (or webcal://) address"


def _private_problem(host: str) -> str:
    return (f"{host} is (or resolves to) a loopback, link-local, private or unspecified address; "
            "set CALENDAR_ALLOW_PRIVATE_ADDRESSES=true to read feeds inside your network")


def _lookup(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The host's addresses, or [] when it cannot be resolved within a moment (checked again on fetch)."""
    found: list = []

    def resolve() -> None:
        try:
            found.extend(info[4][0] for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM))
        except OSError:
            pass

    worker = threading.Thread(target=resolve, daemon=True)
    worker.start()
    worker.join(SAVE_LOOKUP_SECONDS)
    return [ipaddress.ip_address(a.split("%", 1)[0]) for a in list(found)]


def ical_url_problem(url: str, *, resolve: bool = True) -> str | None:
    """Why this URL may not be an iCal source, or None. ``resolve`` also looks up a host name."""
    problem = _scheme_problem(url)
    if problem:
        return problem
    try:
        host = urlsplit(https_url(url)).hostname
    except ValueError:
        host = None
    if not host:
        return "the address has no host name"
    if settings.CALENDAR_ALLOW_PRIVATE_ADDRESSES:
        return None
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        addresses = _lookup(host) if resolve else []
    if any(not address_is_public(address) for address in addresses):
        return _private_problem(host)
    return None


def ical_hop_check(url: str) -> None:
    """The fetcher's check of each URL it is about to request: the first and every redirect."""
    problem = _scheme_problem(url)
    if problem:
        raise CalendarFetchError(f"iCal feed address refused: {problem}")
