"""Delays as people type them in a form ("10m", "1h 30m", "00:10:00") and as forms show them.

Pure functions. ``duration_parse`` raises ``ValueError`` with a sentence fit to
show next to the field.
"""

from __future__ import annotations

import re
from datetime import timedelta

UNITS = {
    "d": 86400, "day": 86400, "days": 86400,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
}
_PART = re.compile(r"(\d+)\s*([a-z]+)")
_CLOCK = re.compile(r"(?:(\d+)\s+)?(\d{1,3}):(\d{2})(?::(\d{2}))?")
MAX_DELAY = timedelta(days=30)
HINT = "Write a delay like 10m, 1h 30m, 2d or 00:10:00."


def duration_parse(text: str) -> timedelta:
    """'10m', '10 min', '1h30m', '1 h 30 min', '2d', '90s', '01:30:00' (h:mm:ss), '1:30' (h:mm),
    or a bare number of minutes."""
    raw = (text or "").strip().lower()
    if not raw:
        raise ValueError("A delay is required. " + HINT)
    if raw.isdigit():
        seconds = int(raw) * 60
    elif clock := _CLOCK.fullmatch(raw):
        days, hours, minutes, secs = (int(part or 0) for part in clock.groups())
        if minutes >= 60 or secs >= 60:
            raise ValueError(f"{text.strip()!r} is not a valid h:mm:ss time. " + HINT)
        seconds = days * 86400 + hours * 3600 + minutes * 60 + secs
    else:
        compact = raw.replace(",", " ").replace(" and ", " ")
        parts = _PART.findall(compact)
        if not parts or _PART.sub("", compact).strip():
            raise ValueError(f"{text.strip()!r} is not a delay. " + HINT)
        seconds = 0
        for amount, unit in parts:
            if unit not in UNITS:
                raise ValueError(f"Unknown unit {unit!r} in {text.strip()!r}. " + HINT)
            seconds += int(amount) * UNITS[unit]
    delay = timedelta(seconds=seconds)
    if delay > MAX_DELAY:
        raise ValueError("A delay can be at most 30 days.")
    return delay


def duration_input_text(delay: timedelta) -> str:
    """The way a form shows a delay, readable back by ``duration_parse``: '1h 30m', '45s', '2d'."""
    seconds = max(int(delay.total_seconds()), 0)
    if seconds == 0:
        return "0m"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return " ".join(parts)
