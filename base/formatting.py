"""How SLA Buddy writes durations and times for people, in Slack and in the admin. Pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from base.timezones import zone_or_utc


def duration_text(delta: timedelta) -> str:
    """'1 h 05 min', '12 min', '40 s' (never negative)."""
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def duration_precise(delta: timedelta) -> str:
    """'2 h 05 min', '3 min 07 s', '12 min', '40 s': seconds while they still matter (the admin)."""
    seconds = int(abs(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s" if minutes < 10 else f"{minutes} min"
    return f"{secs} s"


def clock_text(at: datetime, *, time_zone: str, now: datetime) -> str:
    """'14:35 CET (in 15 min)', in the tier's time zone, with the date if not today."""
    local = at.astimezone(zone_or_utc(time_zone))
    fmt = "%H:%M %Z" if local.date() == now.astimezone(local.tzinfo).date() else "%a %d %b %H:%M %Z"
    relative = f"in {duration_text(at - now)}" if at > now else "now"
    return f"{local.strftime(fmt)} ({relative})"


def slack_time(moment: datetime) -> str:
    """Shown in each reader's own time zone by Slack; UTC in the fallback text."""
    moment = moment.astimezone(UTC)
    return f"<!date^{int(moment.timestamp())}^{{time}}|{moment:%H:%M} UTC>"
