"""Which iCal addresses a source may name and the sync may read: https:// and webcal:// only
(http:// behind CALENDAR_ALLOW_HTTP), never a loopback, link-local, private or unspecified
address (unless CALENDAR_ALLOW_PRIVATE_ADDRESSES), checked on save, on fetch, and after every
redirect; never file://, whatever the row says; and no error quotes what the server answered."""

from __future__ import annotations

import ipaddress

import pytest
from django.core.exceptions import ValidationError

from calendars import feed_address
from calendars.events import CalendarFetchError
from calendars.factories import CalendarSourceFactory
from calendars.ical import ical_fetch
from calendars.models import CalendarSource, Purpose, SourceKind
from calendars.sync import calendar_source_sync
from tests.support.calendar_files import fixture_bytes
from tests.support.route_server import RouteServer

PRIVATE = [
    "https://127.0.0.1/cal.ics", "https://localhost/cal.ics", "https://10.1.2.3/cal.ics",
    "https://172.16.0.9/cal.ics", "https://192.168.1.10/cal.ics", "https://169.254.169.254/latest/meta-data",
    "https://0.0.0.0/cal.ics", "https://[::1]/cal.ics", "https://[fe80::1]/cal.ics", "https://[fd00::5]/cal.ics",
    "https://[::ffff:127.0.0.1]/cal.ics", "https://[::]/cal.ics", "webcal://127.0.0.1/cal.ics",
]


def source(url: str) -> CalendarSource:
    return CalendarSource(name="x", kind=SourceKind.ICAL, purpose=Purpose.SHIFTS, ical_url=url)


def url_errors(url: str) -> list[str]:
    try:
        source(url).full_clean()
    except ValidationError as exc:
        return exc.message_dict.get("ical_url", [])
    return []


@pytest.fixture
def feeds(settings):
    settings.CALENDAR_ALLOW_HTTP = False
    settings.CALENDAR_ALLOW_PRIVATE_ADDRESSES = False
    with RouteServer() as server:
        server.route("/shifts.ics", body=fixture_bytes("shifts.ics"), Content_Type="text/calendar")
        yield server


# -- saving ------------------------------------------------------------------------------------


def test_both_settings_are_off_by_default():
    from django.conf import settings

    assert settings.CALENDAR_ALLOW_HTTP is False
    assert settings.CALENDAR_ALLOW_PRIVATE_ADDRESSES is False


@pytest.mark.parametrize("url", ["https://calendar.google.com/calendar/ical/x/private-abc/basic.ics",
                                 "webcal://p01-caldav.icloud.com/published/2/abc", "HTTPS://Example.COM/x.ics"])
def test_https_and_webcal_are_accepted(url, settings):
    settings.CALENDAR_ALLOW_HTTP = settings.CALENDAR_ALLOW_PRIVATE_ADDRESSES = False
    assert url_errors(url) == []


def test_plain_http_only_behind_its_setting(settings):
    settings.CALENDAR_ALLOW_PRIVATE_ADDRESSES = False
    settings.CALENDAR_ALLOW_HTTP = False
    [error] = url_errors("http://calendar.example.com/x.ics")
    assert "CALENDAR_ALLOW_HTTP" in error
    settings.CALENDAR_ALLOW_HTTP = True
    assert url_errors("http://calendar.example.com/x.ics") == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x.ics", "gopher://example.com/",
                                 "javascript:alert(1)", "calendar.example.com/x.ics", "https:///x.ics"])
def test_other_schemes_are_refused_whatever_the_settings(url, settings):
    settings.CALENDAR_ALLOW_HTTP = settings.CALENDAR_ALLOW_PRIVATE_ADDRESSES = True
    assert url_errors(url)


@pytest.mark.parametrize("url", PRIVATE)
def test_private_addresses_are_refused_on_save(url, settings):
    settings.CALENDAR_ALLOW_HTTP = settings.CALENDAR_ALLOW_PRIVATE_ADDRESSES = False
    [error] = url_errors(url)
    assert "CALENDAR_ALLOW_PRIVATE_ADDRESSES" in error
    settings.CALENDAR_ALLOW_PRIVATE_ADDRESSES = True
    assert url_errors(url) == []


def test_a_host_name_that_cannot_be_resolved_now_can_be_saved(settings):
    """The fetch checks it again; a DNS hiccup while saving is no reason to refuse."""
    settings.CALENDAR_ALLOW_PRIVATE_ADDRESSES = False
    assert url_errors("https://does-not-resolve.invalid/x.ics") == []


# -- fetching ------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "data:text/calendar,BEGIN"])
def test_the_fetcher_refuses_other_schemes_itself(url, settings):
    settings.CALENDAR_ALLOW_HTTP = settings.CALENDAR_ALLOW_PRIVATE_ADDRESSES = True
    with pytest.raises(CalendarFetchError, match="refused"):
        ical_fetch(url=url, timeout=2)


def test_the_fetcher_refuses_http_and_private_addresses_by_default(feeds, settings):
    with pytest.raises(CalendarFetchError, match="CALENDAR_ALLOW_HTTP"):
        ical_fetch(url=f"{feeds.base_url}/shifts.ics", timeout=2)
    settings.CALENDAR_ALLOW_HTTP = True
    with pytest.raises(CalendarFetchError, match="CALENDAR_ALLOW_PRIVATE_ADDRESSES"):
        ical_fetch(url=f"{feeds.base_url}/shifts.ics", timeout=2)
    assert feeds.requests == []  # refused before anything was sent
    settings.CALENDAR_ALLOW_PRIVATE_ADDRESSES = True
    assert ical_fetch(url=f"{feeds.base_url}/shifts.ics", timeout=2).startswith(b"BEGIN:VCALENDAR")


def test_a_row_saved_before_the_rules_is_refused_when_synced(feeds, db):
    """Rows are not re-validated by the sync: the fetcher's own checks are what stop it."""
    row = CalendarSourceFactory(ical_url=f"{feeds.base_url}/shifts.ics", last_success_at=None)
    result = calendar_source_sync(source=row)
    assert not result.ok and "refused" in result.error
    assert feeds.requests == []
    row.ical_url = "file:///etc/passwd"
    result = calendar_source_sync(source=row)
    assert not result.ok and "refused" in result.error and "root:" not in result.error


def test_every_redirect_is_checked(feeds, settings, monkeypatch):
    """127.0.0.1 stands in for a public host here; the redirect to 127.0.0.2 is a private one."""
    settings.CALENDAR_ALLOW_HTTP = True
    public = ipaddress.ip_address("127.0.0.1")
    monkeypatch.setattr(feed_address, "address_is_public", lambda address: address == public)
    with RouteServer(host="127.0.0.2") as internal:
        internal.route("/secret.ics", body=fixture_bytes("shifts.ics"))
        feeds.redirect("/moved.ics", f"{internal.base_url}/secret.ics")
        assert ical_fetch(url=f"{feeds.base_url}/shifts.ics", timeout=2).startswith(b"BEGIN:VCALENDAR")
        with pytest.raises(CalendarFetchError, match="refused"):
            ical_fetch(url=f"{feeds.base_url}/moved.ics", timeout=2)
        assert internal.requests == []
        feeds.redirect("/to-file.ics", "file:///etc/passwd")
        with pytest.raises(CalendarFetchError, match="refused"):
            ical_fetch(url=f"{feeds.base_url}/to-file.ics", timeout=2)


def test_a_redirect_from_https_down_to_http_is_refused(settings):
    settings.CALENDAR_ALLOW_HTTP = False
    with pytest.raises(CalendarFetchError, match="CALENDAR_ALLOW_HTTP"):
        feed_address.ical_hop_check("http://calendar.example.com/x.ics")
    feed_address.ical_hop_check("https://calendar.example.com/x.ics")


BAD_CALENDAR = (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART:hunter2\r\n"
                b"END:VEVENT\r\nEND:VCALENDAR\r\n")


@pytest.mark.parametrize("route", [(500, b"<html>db password=hunter2</html>"),
                                   (200, b"<html>db password=hunter2</html>"),
                                   (200, BAD_CALENDAR)],
                         ids=["500-page", "html-page", "bad-calendar"])
def test_errors_never_quote_the_answer(feeds, settings, db, route):
    settings.CALENDAR_ALLOW_HTTP = settings.CALENDAR_ALLOW_PRIVATE_ADDRESSES = True
    status, body = route
    feeds.route("/leak.ics", status=status, body=body)
    row = CalendarSourceFactory(ical_url=f"{feeds.base_url}/leak.ics", last_success_at=None)
    result = calendar_source_sync(source=row)
    assert not result.ok or result.warnings
    row.refresh_from_db()
    for text in (result.error, row.last_error, *result.warnings, row.sync_warnings):
        assert "hunter2" not in text
