"""Time zones by IANA name, forgiving where a person would only see a worse message."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone_or_utc(name: str) -> ZoneInfo:
    """A time zone by IANA name; an unknown name falls back to UTC rather than
    breaking a message or an admin page."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
