"""The outbound GET: redirects followed and checked hop by hop, credentials kept to their host,
size capped, and errors that never quote the body."""

from __future__ import annotations

import ipaddress

import pytest

from base.outbound_http import AddressRefused, HttpStatusError, OutboundHttpError, http_get
from tests.support.route_server import RouteServer

SECRET_PAGE = b"<html>internal admin: password=hunter2</html>"


@pytest.fixture
def server():
    with RouteServer() as routes:
        yield routes


@pytest.fixture
def other_host():
    with RouteServer(host="127.0.0.2") as routes:  # another loopback address: another host
        yield routes


def get(url, **kwargs):
    return http_get(url, deadline_seconds=5, max_bytes=1000, **kwargs)


def test_redirects_are_followed(server):
    server.redirect("/old", "/new", status=301)
    server.route("/new", body=b"here")
    answer = get(f"{server.base_url}/old")
    assert (answer.status, answer.body, answer.url) == (200, b"here", f"{server.base_url}/new")


def test_every_hop_is_checked(server, other_host):
    server.redirect("/feed", f"{other_host.base_url}/feed")
    other_host.route("/feed", body=b"BEGIN:VCALENDAR")
    seen = []
    get(f"{server.base_url}/feed", url_check=seen.append)
    assert seen == [f"{server.base_url}/feed", f"{other_host.base_url}/feed"]
    only_first = ipaddress.ip_address("127.0.0.1")
    with pytest.raises(AddressRefused):
        get(f"{server.base_url}/feed", address_allowed=lambda address: address == only_first)
    assert len(other_host.requests) == 1  # the refused hop was never asked


def test_credentials_stay_with_their_host(server, other_host):
    server.redirect("/same", "/final")
    server.route("/final", body=b"{}")
    get(f"{server.base_url}/same", headers={"Authorization": "Basic c2VjcmV0"})
    assert server.requests[-1][1]["Authorization"] == "Basic c2VjcmV0"
    server.redirect("/away", f"{other_host.base_url}/final")
    other_host.route("/final", body=b"{}")
    get(f"{server.base_url}/away", headers={"Authorization": "Basic c2VjcmV0", "Accept": "x/y"})
    [(_, headers)] = other_host.requests
    assert "Authorization" not in headers and headers["Accept"] == "x/y"


def test_redirect_loops_and_size_are_capped(server):
    server.redirect("/loop", "/loop")
    with pytest.raises(OutboundHttpError, match="redirects"):
        get(f"{server.base_url}/loop")
    server.route("/big", body=b"x" * 1001)
    with pytest.raises(OutboundHttpError, match="larger"):
        get(f"{server.base_url}/big")


@pytest.mark.parametrize("status", [403, 404, 500, 503])
def test_an_error_status_names_the_status_not_the_body(server, status):
    server.route("/x", status=status, body=SECRET_PAGE)
    with pytest.raises(HttpStatusError) as excinfo:
        get(f"{server.base_url}/x")
    assert str(excinfo.value).startswith(f"HTTP {status}")
    assert "hunter2" not in str(excinfo.value)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://x/", "http:///nohost"])
def test_only_http_and_https(url):
    with pytest.raises(OutboundHttpError):
        get(url)


def test_unreachable_names_the_failure():
    with pytest.raises(OutboundHttpError, match="unreachable"):
        get("http://127.0.0.1:9/")  # the discard port: connection refused
