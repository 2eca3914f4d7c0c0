"""Store an accepted Slack delivery and queue its processing: all the HTTP path does."""

from __future__ import annotations

import json
import logging
import math
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from base.tasks_by_name import task_send_on_commit
from slackbot.models import InboundState, SlackInbound

logger = logging.getLogger("slabuddy.inbound")

REQUEUE_AFTER = timedelta(seconds=30)
PROCESS_TASK = "slackbot.tasks.slack_inbound_process"


def slack_inbound_enqueue(*, inbound_id: int) -> None:
    """Queue processing once the row is committed (at once outside a transaction).
    A broker failure never turns into an error for Slack: the inbound sweep re-queues it."""
    task_send_on_commit(PROCESS_TASK, args=(inbound_id,), why_safe="the inbound sweep re-queues it")


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


def slack_inbound_store(
    *, key: str, kind: str, payload: dict[str, Any], retry_num: int = 0, now: datetime | None = None
) -> tuple[SlackInbound, bool]:
    """Store the delivery once per key and queue it after commit.

    A duplicate (Slack retry) is acknowledged without a second row. If the
    stored copy is still pending a while later (its Celery message was lost),
    it is queued again: processing is idempotent, so that is always safe.
    """
    now = now or timezone.now()
    try:
        with transaction.atomic():
            inbound = SlackInbound.objects.create(
                key=key, kind=kind, payload=payload, received_at=now, retry_num=min(retry_num, 100)
            )
            slack_inbound_enqueue(inbound_id=inbound.pk)
        return inbound, True
    except IntegrityError:
        inbound = SlackInbound.objects.get(key=key)
    if inbound.state == InboundState.PENDING and inbound.received_at < now - REQUEUE_AFTER:
        slack_inbound_enqueue(inbound_id=inbound.pk)
    logger.info("slack_inbound_duplicate key=%s retry_num=%s state=%s", key, retry_num, inbound.state)
    return inbound, False
