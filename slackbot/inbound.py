"""Store an accepted Slack delivery and nudge the drain: all the HTTP path does.

Slack wants its answer within 3 seconds and retries otherwise, so the request
only stores the delivery (one INSERT, committed on its own) and makes sure a
drain task (slackbot/drain.py) is on its way. Under a flood, deliveries pile
up in the table and are processed as fast as the workers can: stored first,
processed later, never dropped.
"""

from __future__ import annotations

import json
import logging
import math
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import redis
from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Field
from django.utils import timezone

from base.tasks_by_name import task_send
from slackbot.models import InboundState, SlackInbound

logger = logging.getLogger("slabuddy.inbound")

REQUEUE_AFTER = timedelta(seconds=30)
PROCESS_TASK = "slackbot.tasks.slack_inbound_process"
DRAIN_TASK = "slackbot.tasks.slack_inbound_drain"
# While this Redis key exists a drain task is queued and not yet started: requests
# need not queue another. The drain deletes it when it starts, so a delivery stored
# after that queues a new one; it expires on its own in case that drain is lost.
DRAIN_QUEUED_KEY = "slabuddy:inbound:drain-queued"
DRAIN_QUEUED_TTL_MS = 3000


@cache
def _redis():
    """A client for the broker's Redis (redis-py pools connections and is fork-safe)."""
    return redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=0.5, socket_connect_timeout=0.5)


def _broker_is_redis() -> bool:
    return settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://"))


def slack_inbound_drain_queue(*, countdown: float | None = None) -> bool:
    """Queue a drain task. Never raises: a stored delivery is found by the inbound sweep."""
    return task_send(DRAIN_TASK, countdown=countdown, why_safe="the inbound sweep queues a drain")


def slack_inbound_nudge() -> None:
    """Make sure a drain is on its way, at the cost of one Redis round trip per request.

    On Redis only the first request after a drain started queues the next one
    (``SET NX``); elsewhere (the embedded broker, a few events a minute) every
    request queues one, and drains that find nothing to do end at once.
    """
    if _broker_is_redis():
        try:
            if not _redis().set(DRAIN_QUEUED_KEY, 1, nx=True, px=DRAIN_QUEUED_TTL_MS):
                return
        except Exception:  # Redis down: the delivery is stored; the sweep or the next nudge finds it
            logger.warning("could not reach Redis to queue a drain; the inbound sweep will", exc_info=True)
            return
    slack_inbound_drain_queue()


def slack_inbound_nudge_clear() -> None:
    """Called by a drain as it starts: a delivery stored from now on queues another drain."""
    if not _broker_is_redis():
        return
    try:
        _redis().delete(DRAIN_QUEUED_KEY)
    except Exception:
        logger.warning("could not clear the drain-queued flag; it expires by itself", exc_info=True)


def slack_inbound_nudge_on_commit() -> None:
    """Nudge once the row is committed (at once in autocommit, the HTTP path)."""
    transaction.on_commit(slack_inbound_nudge)


class Malformed(ValueError):
    """The body is not something we can store: answered with 400."""


def _reject_constant(name: str) -> Any:
    raise Malformed(f"{name} is not JSON")


def json_load_storable(raw: bytes | str) -> Any:
    """Parse JSON that every database we run on can store as-is.

    Rejects NaN/Infinity, NUL characters and lone surrogates (PostgreSQL's
    jsonb refuses them), and absurd nesting, so bad input is a 400, never a 500.
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Malformed(str(exc)[:200]) from exc
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > 64:
            raise Malformed("nested too deeply")
        if isinstance(item, str):
            _check_string(item)
        elif isinstance(item, dict):
            for key, child in item.items():
                _check_string(key)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, float) and not math.isfinite(item):  # 1e400 parses to inf
            raise Malformed("number out of range")
    return value


def _check_string(value: str) -> None:
    if "\x00" in value:
        raise Malformed("NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise Malformed("lone surrogate") from exc


@cache
def _insert_statement(vendor: str) -> tuple[str, tuple[Field, ...]]:
    """``INSERT INTO tickets_slackinbound (...) VALUES (...) RETURNING id``, built once per process
    from the model (``QuerySet.create`` compiles it again for every row: a third of a request's CPU)."""
    ops = connection.ops
    fields = tuple(f for f in SlackInbound._meta.local_concrete_fields if not f.primary_key)
    pk = SlackInbound._meta.pk
    sql = "INSERT INTO {} ({}) VALUES ({}) RETURNING {}".format(
        ops.quote_name(SlackInbound._meta.db_table), ", ".join(ops.quote_name(f.column) for f in fields),
        ", ".join(["%s"] * len(fields)), ops.quote_name(pk.column),
    )
    return sql, fields


def _insert_row(inbound: SlackInbound) -> None:
    """The row of ``inbound`` (its fields' defaults and conversions, as the ORM saves them)."""
    sql, fields = _insert_statement(connection.vendor)
    params = [field.get_db_prep_save(field.pre_save(inbound, True), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        inbound.pk = cursor.fetchone()[0]
    inbound._state.adding, inbound._state.db = False, connection.alias


def _insert_autocommit(inbound: SlackInbound) -> None:
    """One statement, one round trip: the INSERT is the connection's health check.

    Django checks a reused connection (CONN_HEALTH_CHECKS) with a ``SELECT 1`` before a
    request's first query, a round trip as costly as the INSERT itself. Here the INSERT
    goes first; should the connection turn out dead (PostgreSQL restarted since), it is
    closed and the INSERT made once more on a new one, as the check would have done.
    """
    if connection.connection is None or connection.health_check_done or not connection.health_check_enabled:
        _insert_row(inbound)
        return
    connection.health_check_done = True
    try:
        _insert_row(inbound)
    except (OperationalError, InterfaceError):
        if connection.is_usable():
            raise  # the connection works: not what a health check is for
        connection.close()
        _insert_row(inbound)  # had the first one landed after all, this is a duplicate: stored once


def _insert(**fields: Any) -> SlackInbound:
    inbound = SlackInbound(**fields)
    if connection.in_atomic_block:
        with transaction.atomic():  # a savepoint: a duplicate must not break the caller's transaction
            _insert_row(inbound)
    else:
        _insert_autocommit(inbound)
    return inbound


def slack_inbound_store(
    *, key: str, kind: str, payload: dict[str, Any], retry_num: int = 0, now: datetime | None = None
) -> tuple[SlackInbound, bool]:
    """Store the delivery once per key and nudge the drain after commit.

    A duplicate (Slack retry) is acknowledged without a second row. If the
    stored copy is still pending a while later (its drain was lost), the drain
    is nudged again: processing is idempotent, so that is always safe.
    """
    now = now or timezone.now()
    try:
        inbound = _insert(key=key, kind=kind, payload=payload, received_at=now, retry_num=min(retry_num, 100))
    except IntegrityError:
        inbound = SlackInbound.objects.get(key=key)
    else:
        slack_inbound_nudge_on_commit()
        return inbound, True
    if inbound.state == InboundState.PENDING and inbound.received_at < now - REQUEUE_AFTER:
        slack_inbound_nudge_on_commit()
    logger.info("slack_inbound_duplicate key=%s retry_num=%s state=%s", key, retry_num, inbound.state)
    return inbound, False
