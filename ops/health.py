"""Readiness: what /readyz, ``manage.py readiness`` and ``check_deployment`` report.

Each check returns a small JSON-able dict with ``ok`` and a ``detail`` a person
can act on. Error details name the kind of failure, never a URL or secret.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from calendars.models import CalendarSource
from calendars.resolve import stale_sources
from ops.heartbeat import heartbeat_age

Check = dict[str, Any]


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "not reachable"
        return {"ok": False, "detail": f"database unreachable ({type(exc).__name__})"}
    return {"ok": True, "detail": f"{connection.vendor} reachable"}


def check_broker(timeout: float = 2.0) -> Check:
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        folders = {options["data_folder_in"], options["data_folder_out"], options["control_folder"]}
        bad = [f for f in folders if not (Path(f).is_dir() and os.access(f, os.W_OK))]
        if bad:
            return {"ok": False, "detail": f"embedded broker folder missing or read-only: {', '.join(bad)}"}
        return {"ok": True, "detail": "embedded filesystem broker"}
    if url.startswith(("redis://", "rediss://")):
        import redis

        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
            try:
                client.ping()
            finally:
                client.close()
        except Exception as exc:
            return {"ok": False, "detail": f"redis unreachable ({type(exc).__name__})"}
        return {"ok": True, "detail": "redis reachable"}
    return {"ok": True, "detail": "in-memory broker (tests only)"}


def check_beat(now: datetime | None = None) -> Check:
    max_age = settings.HEARTBEAT_MAX_AGE_SECONDS
    try:
        age = heartbeat_age(now=now)
    except Exception as exc:
        return {"ok": False, "detail": f"heartbeat unreadable ({type(exc).__name__})", "age_seconds": None}
    if age is None:
        return {
            "ok": False,
            "age_seconds": None,
            "detail": "no heartbeat yet: is Celery beat running (and a worker on the default queue)?",
        }
    seconds = round(age.total_seconds())
    if seconds > max_age:
        return {
            "ok": False,
            "age_seconds": seconds,
            "detail": f"last heartbeat {seconds} s ago (limit {max_age} s): beat or the workers are down",
        }
    return {"ok": True, "age_seconds": seconds, "detail": f"last heartbeat {seconds} s ago"}


def calendar_sources_status(now: datetime | None = None) -> Check:
    """Fresh, stale or not configured, by the calendars' own stale guard (the one
    escalation messages use). Without sources, calendars are "not configured"
    (the roster is then every active support engineer) and that is not a failure."""
    now = now or datetime.now(UTC)
    sources = list(CalendarSource.objects.filter(active=True))
    if not sources:
        return {
            "ok": True,
            "status": "not configured",
            "sources": 0,
            "stale": [],
            "detail": "no calendar sources: every active support engineer counts as on shift",
        }
    stale = [str(source) for source in stale_sources(now=now)]
    if stale:
        return {
            "ok": False,
            "status": "stale",
            "sources": len(sources),
            "stale": stale,
            "detail": f"not synced successfully in {settings.CALENDAR_STALE_AFTER_MINUTES} min: "
            + ", ".join(stale),
        }
    return {
        "ok": True,
        "status": "fresh",
        "sources": len(sources),
        "stale": [],
        "detail": f"{len(sources)} source(s) synced within {settings.CALENDAR_STALE_AFTER_MINUTES} min",
    }


def check_calendars(now: datetime | None = None) -> Check:
    try:
        return calendar_sources_status(now)
    except Exception as exc:
        return {
            "ok": False,
            "status": "error",
            "detail": f"calendar status unreadable ({type(exc).__name__})",
        }


def readiness(now: datetime | None = None, only: list[str] | None = None) -> tuple[bool, dict[str, Check]]:
    """Run the checks; the database first, since the others read it."""
    checks = {
        "database": check_database,
        "broker": check_broker,
        "beat": lambda: check_beat(now),
        "calendars": lambda: check_calendars(now),
    }
    results: dict[str, Check] = {}
    for name, check in checks.items():
        if only and name not in only:
            continue
        if name in ("beat", "calendars") and results.get("database", {"ok": True})["ok"] is False:
            results[name] = {"ok": False, "detail": "skipped: database unreachable"}
            continue
        results[name] = check()
    return all(r["ok"] for r in results.values()), results
