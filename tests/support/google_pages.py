"""Google Calendar API responses as events.list returns them (singleEvents=True: instances expanded)."""

from __future__ import annotations

import json

from googleapiclient.http import HttpMockSequence


def shift(event_id: str, name: str, start: str, end: str, **extra) -> dict:
    return {
        "id": event_id,
        "status": "confirmed",
        "summary": f"Shift: {name}",
        "start": {"dateTime": start, "timeZone": "Europe/Berlin"},
        "end": {"dateTime": end, "timeZone": "Europe/Berlin"},
        **extra,
    }


def page(items: list[dict], next_token: str | None = None, time_zone: str = "Europe/Berlin") -> tuple:
    body = {"kind": "calendar#events", "timeZone": time_zone, "items": items}
    if next_token:
        body["nextPageToken"] = next_token
    return ({"status": "200", "content-type": "application/json"}, json.dumps(body))


def error(status: int, reason: str = "backendError", **headers) -> tuple:
    body = {"error": {"code": status, "message": reason, "errors": [{"reason": reason}]}}
    return ({"status": str(status), "content-type": "application/json", **headers}, json.dumps(body))


# Alice and Bob rotate weekly, 09:00-17:00 in Berlin, across the end of summer time (25 October 2026).
ROTATION = [
    shift("bob_20261023", "Bob", "2026-10-23T09:00:00+02:00", "2026-10-23T17:00:00+02:00"),
    shift("alice_20261026", "Alice", "2026-10-26T09:00:00+01:00", "2026-10-26T17:00:00+01:00"),
    shift(
        "carol_20261026",
        "Alice",  # the title says Alice, but the attendee email wins
        "2026-10-26T12:00:00+01:00",
        "2026-10-26T20:00:00+01:00",
        summary="Late cover",
        attendees=[
            {"email": "Carol@example.com", "responseStatus": "accepted"},
            {"email": "dave@example.com", "responseStatus": "declined"},
            {"email": "room-1@resource.calendar.google.com", "resource": True},
        ],
    ),
    shift("alice_20261027", "Alice", "2026-10-27T09:00:00+01:00", "2026-10-27T17:00:00+01:00"),
]


class RecordingHttp(HttpMockSequence):
    """HttpMockSequence that also fails loudly when the test supplied too few responses."""

    def request(self, uri, *args, **kwargs):
        assert self._iterable, f"unexpected extra request to {uri}"
        return super().request(uri, *args, **kwargs)

    @property
    def uris(self) -> list[str]:
        return [uri for uri, *_ in self.request_sequence]
