"""Calendar fixture files (.ics) and a terse aware-UTC constructor for the calendar tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

FIXTURES = Path(__file__).parent / "calendars"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()
