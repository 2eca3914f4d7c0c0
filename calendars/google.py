"""Google Calendar client: ``events.list`` over a time window, every page, with retries.

The one seam tests patch is the ``http`` argument (``googleapiclient.http.HttpMockSequence``).
The API description is the one bundled with google-api-python-client, so
building the client needs no network; the endpoint comes from
``GOOGLE_CALENDAR_API_ENDPOINT``.
"""

from __future__ import annotations

import http.client
import logging
import time
from datetime import UTC, date, datetime
from datetime import time as dtime
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

import httplib2
from django.conf import settings
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from base.outbound_http import SocketDeadline
from calendars.events import CalendarFetchError, FetchedEvent

log = logging.getLogger(__name__)

SCOPES = ["https://www.googleapis.com/auth/calendar.readonly"]
MAX_ATTEMPTS = 4  # per page: the first try and three retries
MAX_RESTARTS = 2  # after 410 Gone (an expired page token) the listing starts over
MAX_PAGES = 200
MAX_BACKOFF_SECONDS = 20
sleep = time.sleep  # module-level so tests can record the back-off instead of waiting


class DeadlineHttp(httplib2.Http):
    """httplib2.Http that remembers the socket of every connection it opens.

    http.client hands a connection's socket to the response, and forgets it,
    when the server says it will close the connection; the deadline of
    ``_execute`` must still be able to shut it while the body is being read.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sockets: list = []
        self._recording: dict[type, type] = {}

    def _recording_type(self, base: type) -> type:
        if base not in self._recording:
            sockets = self.sockets

            class Recording(base):
                def connect(self):
                    super().connect()
                    sockets.append(self.sock)

            self._recording[base] = Recording
        return self._recording[base]

    def request(self, uri, method="GET", body=None, headers=None,
                redirections=httplib2.DEFAULT_MAX_REDIRECTS, connection_type=None):
        if connection_type is None:
            base = httplib2.SCHEME_TO_CONNECTION.get(urlsplit(uri).scheme.lower())
            connection_type = self._recording_type(base) if base else None
        return super().request(uri, method, body, headers, redirections, connection_type)


def google_http(*, subject: str = "") -> httplib2.Http:
    """An authorised HTTP client for the service account in GOOGLE_CREDENTIALS_FILE."""
    if not settings.GOOGLE_CREDENTIALS_FILE:
        raise CalendarFetchError(
            "GOOGLE_CREDENTIALS_FILE is not set: Google Calendar sources cannot be read."
        )
    from google.oauth2 import service_account
    from google_auth_httplib2 import AuthorizedHttp

    credentials = service_account.Credentials.from_service_account_file(
        settings.GOOGLE_CREDENTIALS_FILE, scopes=SCOPES
    )
    if subject:
        credentials = credentials.with_subject(subject)
    return AuthorizedHttp(credentials, http=DeadlineHttp(timeout=settings.CALENDAR_TIMEOUT_SECONDS))


def _service(http):
    return build(
        "calendar",
        "v3",
        http=http,
        static_discovery=True,
        cache_discovery=False,
        # api_endpoint replaces rootUrl + servicePath, so it names the full API base.
        client_options={"api_endpoint": urljoin(settings.GOOGLE_CALENDAR_API_ENDPOINT, "calendar/v3/")},
    )


def _retry_delay(exc: Exception, attempt: int) -> float | None:
    """Seconds to wait before retrying, or None if the error is not worth retrying."""
    if isinstance(exc, HttpError):
        status = exc.resp.status
        rate_limited = status == 403 and "ratelimitexceeded" in str(exc.content).lower()
        if not (status == 429 or status >= 500 or rate_limited):
            return None
        retry_after = exc.resp.get("retry-after", "")
        if retry_after.isdigit():
            return min(int(retry_after), MAX_BACKOFF_SECONDS)
    elif not isinstance(exc, OSError | httplib2.HttpLib2Error):
        return None
    return min(2**attempt, MAX_BACKOFF_SECONDS)


def _open_sockets(http) -> list:
    """The sockets of an httplib2 client's connections (AuthorizedHttp wraps one; a DeadlineHttp
    also remembers those a response took over)."""
    inner = getattr(http, "http", http)
    held = [getattr(conn, "sock", None) for conn in list(getattr(inner, "connections", {}).values())]
    return held + list(getattr(inner, "sockets", []))


def _execute(request) -> dict:
    """One API call, retried on 429/5xx; each attempt within CALENDAR_TIMEOUT_SECONDS in total
    (httplib2's timeout bounds each read only), and an attempt that ran out is not retried."""
    seconds = settings.CALENDAR_TIMEOUT_SECONDS
    for attempt in range(MAX_ATTEMPTS):
        guard = SocketDeadline(seconds, lambda: _open_sockets(request.http))
        try:
            with guard:
                return request.execute()
        except (HttpError, OSError, httplib2.HttpLib2Error, http.client.HTTPException) as exc:
            if guard.expired:
                raise CalendarFetchError(f"Google Calendar did not answer within {seconds:g} s.") from None
            if isinstance(exc, http.client.HTTPException):
                raise
            delay = _retry_delay(exc, attempt)
            if delay is None or attempt == MAX_ATTEMPTS - 1:
                raise
            log.warning("Google Calendar: %s; retrying in %ss", exc, delay)
            sleep(delay)
    raise AssertionError("unreachable")


def _when(value: dict, calendar_tz: ZoneInfo) -> tuple[datetime, bool]:
    if "dateTime" in value:
        moment = datetime.fromisoformat(value["dateTime"])
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(value.get("timeZone") or str(calendar_tz)))
        return moment.astimezone(UTC), False
    # All-day: the date runs from midnight to midnight in the calendar's time zone.
    day = date.fromisoformat(value["date"])
    return datetime.combine(day, dtime(), tzinfo=calendar_tz).astimezone(UTC), True


def google_event_parse(item: dict, calendar_tz: ZoneInfo) -> FetchedEvent | None:
    if item.get("status") == "cancelled" or "start" not in item or "end" not in item:
        return None
    starts_at, all_day = _when(item["start"], calendar_tz)
    ends_at, _ = _when(item["end"], calendar_tz)
    if ends_at <= starts_at:
        return None
    attendees = [
        a["email"].lower()
        for a in item.get("attendees", [])
        if a.get("email") and not a.get("resource") and a.get("responseStatus") != "declined"
    ]
    return FetchedEvent(
        event_id=item.get("id", ""),
        title=item.get("summary", ""),
        starts_at=starts_at,
        ends_at=ends_at,
        all_day=all_day,
        attendees=attendees,
        time_zone=str(calendar_tz),
    )


def google_events_list(
    *,
    calendar_id: str,
    time_min: datetime,
    time_max: datetime,
    default_tz: str = "UTC",
    subject: str = "",
    http=None,
) -> list[FetchedEvent]:
    """Every event occurrence overlapping [time_min, time_max), recurring events expanded."""
    service = _service(http if http is not None else google_http(subject=subject))
    for _restart in range(MAX_RESTARTS + 1):
        events: list[FetchedEvent] = []
        page_token = None
        try:
            for _page in range(MAX_PAGES):
                request = service.events().list(
                    calendarId=calendar_id,
                    timeMin=time_min.astimezone(UTC).isoformat(),
                    timeMax=time_max.astimezone(UTC).isoformat(),
                    singleEvents=True,
                    orderBy="startTime",
                    maxResults=250,
                    pageToken=page_token,
                )
                page = _execute(request)
                calendar_tz = ZoneInfo(page.get("timeZone") or default_tz)
                events.extend(
                    e for item in page.get("items", []) if (e := google_event_parse(item, calendar_tz))
                )
                page_token = page.get("nextPageToken")
                if not page_token:
                    return events
            raise CalendarFetchError(f"Google Calendar returned more than {MAX_PAGES} pages.")
        except HttpError as exc:
            if exc.resp.status != 410:
                raise CalendarFetchError(f"Google Calendar: HTTP {exc.resp.status}: {exc.reason}") from exc
            log.warning("Google Calendar: 410 Gone (page token expired); listing again from the start")
    raise CalendarFetchError("Google Calendar kept answering 410 Gone.")
