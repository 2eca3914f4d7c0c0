"""One crash-safe way to post in Slack, for everything the bot says.

1. ``outbox_record`` writes the message down under its key (in the caller's
   transaction if it has one). A key seen before keeps its row.
2. ``outbox_send`` (never inside a transaction) takes the row with a
   conditional update and a short lease, so two senders of one key cannot
   both post. A row that certainly never reached Slack, unchanged since it
   was read, is leased and marked "sending" in that one update.
3. If an earlier attempt may have reached Slack (it timed out, got a 5xx, or
   its process died mid-call), it waits until that attempt can no longer land
   (``not_before``: ``SLACK_AMBIGUOUS_WAIT_SECONDS`` after the failure was
   seen), then looks for the key in the thread's message metadata; found
   means sent.
4. It posts with the key in the metadata and records the outcome with the one
   error classification of ``base.slack_api``: sent, rate limited (nothing
   posted: retry after Retry-After), ambiguous (may have posted: the next
   attempt waits, then looks first) or permanent (failed, not retried).
5. A message that was sent after an ambiguous attempt is checked again
   ``SLACK_DUPLICATE_CHECK_SECONDS`` later (``verify_at``, by a scheduled job,
   ``outbox_duplicates_check``): if the first request landed after all, every
   message with the key but the earliest is deleted with ``chat.delete``.

Retrying is the caller's business (a Celery countdown, the engine's backoff):
nothing here sleeps.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Case, F, Q, Value, When
from django.db.models.constants import OnConflict
from django.utils import timezone

from base.models import OutboxMessage, OutboxPurpose, OutboxStatus
from base.slack_api import (
    AmbiguousSlackError,
    PermanentSlackError,
    RateLimited,
    SlackError,
    slack_call,
    slack_client,
)

logger = logging.getLogger("slabuddy.outbox")

METADATA_EVENT_TYPE = "slabuddy_post"
# Posts made before every message went through the outbox carried this type.
KNOWN_EVENT_TYPES = frozenset({METADATA_EVENT_TYPE, "slabuddy_escalation"})
LOOKUP_MAX_PAGES = 20
# A top-level message is looked for in the channel's history from a little before it was recorded
# (Slack's clock and ours may differ by a few seconds).
LOOKUP_CLOCK_SKEW = timedelta(minutes=1)
TOP_LEVEL_LOOKBACK = timedelta(days=1)


class DeliveryStatus(enum.StrEnum):
    SENT = "sent"
    RATE_LIMITED = "rate_limited"
    AMBIGUOUS = "ambiguous"
    PERMANENT = "permanent"
    IN_FLIGHT = "in_flight"  # another sender holds it right now


@dataclass(frozen=True)
class Delivery:
    status: DeliveryStatus
    message: OutboxMessage
    slack_ts: str = ""
    recovered: bool = False  # it had reached Slack on an earlier attempt
    retry_after: float = 0.0
    error: str = ""
    # Ambiguous: no new attempt before then (an earlier one may still land in Slack).
    not_before: datetime | None = None
    # Sent after an ambiguous attempt: the duplicate check is due then (outbox_duplicates_check).
    verify_at: datetime | None = None


def ambiguous_wait() -> timedelta:
    return timedelta(seconds=settings.SLACK_AMBIGUOUS_WAIT_SECONDS)


def duplicate_check_delay() -> timedelta:
    return timedelta(seconds=settings.SLACK_DUPLICATE_CHECK_SECONDS)


def outbox_lease() -> timedelta:
    # Long enough for a lookup and a post at the client timeout each.
    return timedelta(seconds=max(60, 4 * settings.SLACK_TIMEOUT_SECONDS))


def outbox_record(
    *,
    key: str,
    purpose: str,
    channel: str,
    thread_ts: str,
    text: str,
    blocks: list[dict[str, Any]] | None = None,
    payload: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
) -> OutboxMessage:
    """Write a message down before it is sent; idempotent per key.

    An existing row that certainly never reached Slack takes the new content
    (the caller rendered it afresh); one that was sent, or may have been,
    keeps what it has, so what we record is what Slack shows.
    """
    message = OutboxMessage(key=key, purpose=purpose, channel=channel, thread_ts=thread_ts,
                            payload=payload or {}, text=text, blocks=blocks or [], context=context or {})
    if _insert_unless_recorded(message):
        return message
    return outbox_recorded(message)


def outbox_recorded(message: OutboxMessage) -> OutboxMessage:
    """The row recorded before under ``message.key`` (whose insert found the key taken), taking
    ``message``'s content if it certainly never reached Slack (``outbox_record``'s rule)."""
    content = {"text": message.text, "blocks": message.blocks, "context": message.context}
    recorded = OutboxMessage.objects.get(key=message.key)
    fresh = (recorded.text, recorded.blocks, recorded.context) != tuple(content.values())
    if fresh and _certainly_unsent(recorded):
        # Strictly later, also within one clock tick: a sender holding an older copy must see
        # the row changed (outbox_send's one-statement start compares it).
        recorded.updated_at = max(timezone.now(), recorded.updated_at + timedelta(microseconds=1))
        OutboxMessage.objects.filter(pk=recorded.pk, status=recorded.status).update(
            updated_at=recorded.updated_at, **content
        )
        for name, value in content.items():
            setattr(recorded, name, value)
    return recorded


def _insert_unless_recorded(message: OutboxMessage) -> bool:
    """Insert ``message`` unless its key is recorded already; True if this inserted it (its id
    set). One statement (``INSERT ... ON CONFLICT DO NOTHING RETURNING``), where get_or_create
    takes four inside a transaction (read, savepoint, insert, release), the engine recording in its
    claim's."""
    return bool(outbox_record_new([message]))


def outbox_record_new(messages: list[OutboxMessage]) -> dict[str, OutboxMessage]:
    """Insert, in one statement, every message whose key is not recorded yet; returns those
    (by key, their ids set). A key recorded before is left as it is: record it with
    ``outbox_record``, which decides whether its row takes the new content. Through the queryset's
    ``_insert`` (what ``Model.save`` and ``bulk_create`` use): ``bulk_create(ignore_conflicts=True)``
    does not say which rows it inserted."""
    if not messages:
        return {}
    opts = OutboxMessage._meta
    fields = [f for f in opts.local_concrete_fields if not f.generated and f is not opts.pk]
    returned = OutboxMessage.objects._insert(messages, fields=fields, on_conflict=OnConflict.IGNORE,
                                             returning_fields=[opts.pk, opts.get_field("key")])
    by_key = {message.key: message for message in messages}
    inserted: dict[str, OutboxMessage] = {}
    for row in returned or []:
        if not row:  # one message, its key recorded already: no row came back
            continue
        pk, key = row
        message = by_key[key]
        message.pk = pk
        message._state.adding, message._state.db = False, OutboxMessage.objects.db
        inserted[key] = message
    return inserted


def _certainly_unsent(message: OutboxMessage) -> bool:
    return message.status in (OutboxStatus.NEW, OutboxStatus.RETRY) or (
        message.status == OutboxStatus.SENDING and message.attempts == 0
    )


def _claim(message: OutboxMessage, *, held: bool) -> OutboxMessage | None:
    now = timezone.now()
    free = Q() if held else Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    won = OutboxMessage.objects.filter(
        Q(pk=message.pk),
        Q(status__in=(OutboxStatus.NEW, OutboxStatus.RETRY, OutboxStatus.SENDING)),
        free,
    ).update(lease_until=now + outbox_lease(), updated_at=now)
    if not won:
        return None
    message.refresh_from_db()
    return message


def _finish(message: OutboxMessage, **changes: Any) -> None:
    changes.setdefault("lease_until", None)
    changes["updated_at"] = timezone.now()
    OutboxMessage.objects.filter(pk=message.pk).update(**changes)
    computed = [name for name, value in changes.items() if hasattr(value, "resolve_expression")]
    for name, value in changes.items():
        if name not in computed:
            setattr(message, name, value)
    if computed:  # only what the database computed is read back
        message.refresh_from_db(fields=computed)


def _sent(message: OutboxMessage, slack_ts: str, *, recovered: bool, after_ambiguous: bool) -> Delivery:
    # After an ambiguous attempt, the first request might still land: look again later.
    verify_at = timezone.now() + duplicate_check_delay() if after_ambiguous else None
    _finish(message, status=OutboxStatus.SENT, slack_ts=slack_ts, last_error="", not_before=None,
            verify_at=verify_at)
    return Delivery(DeliveryStatus.SENT, message, slack_ts=slack_ts, recovered=recovered, verify_at=verify_at)


def _waiting(message: OutboxMessage, *, error: str) -> Delivery:
    """Ambiguous: the caller comes back at ``not_before`` at the earliest."""
    now = timezone.now()
    not_before = message.not_before if message.not_before and message.not_before > now else None
    retry_after = (not_before - now).total_seconds() if not_before else 0.0
    return Delivery(DeliveryStatus.AMBIGUOUS, message, error=error, not_before=not_before,
                    retry_after=retry_after)


def _failed(message: OutboxMessage, exc: SlackError, *, status: str, posted: bool = False) -> Delivery:
    """Settle a failed call: what it means for the row, and for the caller."""
    error = exc.describe()
    if isinstance(exc, RateLimited):
        _finish(message, status=status, last_error=error, not_before=None)
        return Delivery(DeliveryStatus.RATE_LIMITED, message, retry_after=exc.retry_after, error=error)
    if isinstance(exc, AmbiguousSlackError):
        changes: dict[str, Any] = {"status": OutboxStatus.SENDING, "last_error": error}
        if posted:  # the post may still land: wait from when the failure was seen
            changes["not_before"] = exc.observed_at + ambiguous_wait()
        _finish(message, **changes)
        return _waiting(message, error=error)
    _finish(message, status=OutboxStatus.FAILED, last_error=error)
    logger.error("outbox_failed key=%s error=%s", message.key, error)
    return Delivery(DeliveryStatus.PERMANENT, message, error=error)


def outbox_find_posted(
    *, client: Any, channel: str, thread_ts: str, key: str, since: datetime | None = None
) -> str | None:
    """The ts of the bot's (earliest) message carrying ``key``, if there is one."""
    found = outbox_find_all_posted(client=client, channel=channel, thread_ts=thread_ts, key=key,
                                   since=since, first=True)
    return found[0] if found else None


def outbox_find_all_posted(
    *, client: Any, channel: str, thread_ts: str, key: str, since: datetime | None = None,
    first: bool = False,
) -> list[str]:
    """The ts of every message of the bot carrying ``key``, oldest first (only the first one
    found with ``first``): in the thread ``thread_ts``, or, for a top-level message (a digest),
    in the channel's history since ``since`` (the message was recorded then, so it cannot be older)."""
    found: list[str] = []
    cursor = None
    if thread_ts:
        method, window = client.conversations_replies, {"ts": thread_ts}
    else:
        oldest = (since or timezone.now() - TOP_LEVEL_LOOKBACK) - LOOKUP_CLOCK_SKEW
        method, window = client.conversations_history, {"oldest": f"{oldest.timestamp():.6f}"}
    for _ in range(LOOKUP_MAX_PAGES):
        try:
            response = slack_call(method, channel=channel, include_all_metadata=True, limit=200,
                                  cursor=cursor, **window)
        except PermanentSlackError as exc:
            if exc.error == "thread_not_found":
                return found
            raise
        for item in response.get("messages") or []:
            metadata = item.get("metadata") or {}
            if (
                metadata.get("event_type") in KNOWN_EVENT_TYPES
                and (metadata.get("event_payload") or {}).get("key") == key
            ):
                found.append(item["ts"])
                if first:
                    return found
        cursor = (response.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            break
    return sorted(found, key=float)


def outbox_send(message: OutboxMessage, *, held: bool = False) -> Delivery:
    """Post a recorded message at most once (call it outside any transaction).

    ``held``: the caller already holds an exclusive claim on this message (the
    engine's claim on its level row, with its own lease), so a lease left by a
    sender that died is taken over at once.
    """
    if message.purpose == OutboxPurpose.PAGE:
        raise ValueError(f"{message.key} is a page: base.pages.page_send sends it, never Slack")
    if message.purpose == OutboxPurpose.UPDATE:
        raise ValueError(f"{message.key} is an update: outbox_update_send sends it")
    if _start_unsent(message, held=held):
        return _post(message, may_have_landed=False)
    claimed = _claim(message, held=held)
    if claimed is None:
        message.refresh_from_db()
        if message.status == OutboxStatus.SENT:
            return Delivery(DeliveryStatus.SENT, message, slack_ts=message.slack_ts, recovered=True)
        if message.status == OutboxStatus.FAILED:
            return Delivery(DeliveryStatus.PERMANENT, message, error=message.last_error)
        return Delivery(DeliveryStatus.IN_FLIGHT, message)
    message = claimed
    client = slack_client()
    may_have_landed = message.status == OutboxStatus.SENDING and message.attempts > 0
    if may_have_landed and message.not_before and message.not_before > timezone.now():
        # An earlier attempt may still land in Slack: neither look nor post before then.
        _finish(message)
        return _waiting(message, error=message.last_error or "waiting for an earlier attempt")
    if may_have_landed:
        try:
            found = outbox_find_posted(client=client, channel=message.channel, thread_ts=message.thread_ts,
                                       key=message.key, since=message.created_at)
        except SlackError as exc:
            return _failed(message, exc, status=OutboxStatus.SENDING)
        if found:
            return _sent(message, found, recovered=True, after_ambiguous=True)
    now = timezone.now()
    # Should this sender die mid-call, the request could land until the timeout plus the wait.
    _finish(message, status=OutboxStatus.SENDING, attempts=F("attempts") + 1,
            lease_until=now + outbox_lease(), not_before=_may_land_until(now))
    return _post(message, may_have_landed=may_have_landed)


def _may_land_until(now: datetime) -> datetime:
    """A request started at ``now`` could still land in Slack until then."""
    return now + timedelta(seconds=settings.SLACK_TIMEOUT_SECONDS) + ambiguous_wait()


def _start_unsent(message: OutboxMessage, *, held: bool) -> bool:
    """The usual case in one statement: a message that certainly never reached Slack, as we read
    it (its status, attempts and last change unchanged since), is leased and marked "sending"
    at once, which the lease, its read-back and the "sending" update of the general path take
    three round trips more for. Committed before the HTTP call, as there: should this sender die
    after it, the next attempt waits until ``not_before`` and looks in the thread first; should
    it die before it, the row is as it was (certainly unsent) and the next attempt posts. False
    (nothing written) if the row is not as we read it: the general path reads it again."""
    if message.status not in (OutboxStatus.NEW, OutboxStatus.RETRY) or message.pk is None:
        return False
    now = timezone.now()
    free = Q() if held else Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    changes = {"status": OutboxStatus.SENDING, "attempts": message.attempts + 1,
               "lease_until": now + outbox_lease(), "not_before": _may_land_until(now), "updated_at": now}
    won = OutboxMessage.objects.filter(
        Q(pk=message.pk, status=message.status, attempts=message.attempts, updated_at=message.updated_at),
        free,
    ).update(**changes)
    if not won:
        return False
    for name, value in changes.items():
        setattr(message, name, value)
    return True


def outbox_start_new(messages: list[OutboxMessage], *, not_before: datetime) -> list[OutboxMessage]:
    """Mark "sending" in one statement messages just recorded (new, never tried), held by the
    caller's own claim. ``not_before`` must be no earlier than the moment any of their requests
    could still land in Slack (the caller's lease on its claim, plus the client timeout and
    ``SLACK_AMBIGUOUS_WAIT_SECONDS``): should the caller die before recording what happened,
    the next attempt waits until then and looks in the thread first. Returns those marked."""
    pending = [m for m in messages if m.pk is not None and m.status == OutboxStatus.NEW and m.attempts == 0]
    if not pending:
        return []
    now = timezone.now()
    changes = {"status": OutboxStatus.SENDING, "attempts": 1, "lease_until": not_before,
               "not_before": not_before, "updated_at": now}
    ours = OutboxMessage.objects.filter(pk__in=[m.pk for m in pending], status=OutboxStatus.NEW, attempts=0)
    marked = ours.update(**changes)
    if marked != len(pending):  # someone else changed a row meanwhile: keep only what we marked
        mine = set(OutboxMessage.objects.filter(pk__in=[m.pk for m in pending], status=OutboxStatus.SENDING,
                                                updated_at=now).values_list("pk", flat=True))
        pending = [m for m in pending if m.pk in mine]
    for message in pending:
        for name, value in changes.items():
            setattr(message, name, value)
    return pending


def outbox_record_sending(message: OutboxMessage) -> bool:
    """Record a message marked "sending" in one statement, for a caller that posts it right after
    its transaction commits, held by the caller's own claim: ``outbox_record_new`` and
    ``_start_unsent`` at once (``not_before`` counts the client timeout and the ambiguous wait
    from now). True if this recorded it; False, nothing written, if its key was recorded
    before (an earlier attempt's, which may have reached Slack: send that one with
    ``outbox_send``)."""
    now = timezone.now()
    message.status, message.attempts = OutboxStatus.SENDING, 1
    message.lease_until = message.not_before = _may_land_until(now)
    return bool(outbox_record_new([message]))


def outbox_post_marked(message: OutboxMessage) -> Delivery:
    """Post a message marked "sending" by ``outbox_start_new`` or ``outbox_record_sending``. A
    failure is recorded at once, as by ``outbox_send``; a success is not: the caller records it
    with ``outbox_sent_record`` in the transaction that settles what the post was for (until then
    the row says "sending", which is what a sender that died would leave, and is safe)."""
    outcome = _post_call(message, may_have_landed=False)
    if isinstance(outcome, Delivery):
        return outcome
    return Delivery(DeliveryStatus.SENT, message, slack_ts=outcome)


def outbox_sent_record(deliveries: list[Delivery]) -> None:
    """Record, in one statement, messages posted by ``outbox_post_marked``."""
    if not deliveries:
        return
    now = timezone.now()
    OutboxMessage.objects.filter(pk__in=[d.message.pk for d in deliveries]).update(
        status=OutboxStatus.SENT,
        slack_ts=Case(*[When(pk=d.message.pk, then=Value(d.slack_ts)) for d in deliveries],
                      output_field=OutboxMessage._meta.get_field("slack_ts")),
        last_error="", not_before=None, verify_at=None, lease_until=None, updated_at=now,
    )
    for delivery in deliveries:
        message = delivery.message
        message.status, message.slack_ts, message.last_error = OutboxStatus.SENT, delivery.slack_ts, ""
        message.not_before = message.verify_at = message.lease_until = None
        message.updated_at = now


def _post(message: OutboxMessage, *, may_have_landed: bool) -> Delivery:
    """The HTTP call itself, the row being ours and marked "sending"; records what Slack said."""
    outcome = _post_call(message, may_have_landed=may_have_landed)
    if isinstance(outcome, Delivery):
        return outcome
    return _sent(message, outcome, recovered=False, after_ambiguous=may_have_landed)


def _post_call(message: OutboxMessage, *, may_have_landed: bool) -> str | Delivery:
    """The call: Slack's ts of the new message, or the failure's Delivery (recorded)."""
    client = slack_client()
    kwargs: dict[str, Any] = {
        "channel": message.channel,
        "text": message.text,
        "unfurl_links": False,
        "metadata": {"event_type": METADATA_EVENT_TYPE,
                     "event_payload": {"key": message.key, **(message.payload or {})}},
    }
    if message.thread_ts:
        kwargs["thread_ts"] = message.thread_ts
    if message.blocks:
        kwargs["blocks"] = message.blocks
    try:
        response = slack_call(client.chat_postMessage, **kwargs)
    except SlackError as exc:
        # A rate limit means nothing was posted; after an ambiguous failure the row stays "sending".
        return _failed(message, exc, status=OutboxStatus.SENDING if may_have_landed else OutboxStatus.RETRY,
                       posted=True)
    return str(response.get("ts") or "")


# --- the second look after a post that followed an ambiguous attempt --------------------


class DuplicateCheckStatus(enum.StrEnum):
    CLEAN = "clean"  # one message with the key (or none: nothing to do)
    DELETED = "deleted"  # later duplicates were deleted; the earliest stays
    RETRY = "retry"  # Slack could not be read or a delete failed: checked again later
    NOT_DUE = "not_due"  # not due, or another checker holds it


@dataclass(frozen=True)
class DuplicateCheck:
    status: DuplicateCheckStatus
    message: OutboxMessage
    kept_ts: str = ""
    deleted: tuple[str, ...] = ()
    error: str = ""


DUPLICATE_CHECK_RETRY = timedelta(seconds=30)
DUPLICATE_CHECK_LEASE = timedelta(minutes=2)


def outbox_duplicates_due(*, now: datetime | None = None, limit: int = 100) -> list[OutboxMessage]:
    """Sent messages whose duplicate check is due, oldest first."""
    now = now or timezone.now()
    return list(OutboxMessage.objects.filter(status=OutboxStatus.SENT, verify_at__lte=now)
                .order_by("verify_at")[:limit])


def outbox_duplicates_check(message: OutboxMessage, *, now: datetime | None = None) -> DuplicateCheck:
    """Look in the thread for every message carrying the key; keep the earliest, delete the rest.

    Outside any transaction. ``verify_at`` is pushed ahead while this runs (so two checkers do
    not both delete), and on a failure (a read, or a ``chat.delete`` that failed) it is left
    set for another try; the earliest message is never deleted.
    """
    now = now or timezone.now()
    held_until = now + DUPLICATE_CHECK_LEASE
    if not OutboxMessage.objects.filter(pk=message.pk, status=OutboxStatus.SENT, verify_at__lte=now).update(
        verify_at=held_until
    ):
        return DuplicateCheck(DuplicateCheckStatus.NOT_DUE, message)
    message.refresh_from_db()
    ours = OutboxMessage.objects.filter(pk=message.pk, verify_at=held_until)

    def retry(error: str, deleted: list[str], kept: str = "") -> DuplicateCheck:
        ours.update(verify_at=timezone.now() + DUPLICATE_CHECK_RETRY, last_error=error)
        message.refresh_from_db()
        logger.warning("outbox_duplicate_check_retry key=%s error=%s", message.key, error)
        return DuplicateCheck(DuplicateCheckStatus.RETRY, message, kept_ts=kept, deleted=tuple(deleted),
                              error=error)

    client = slack_client()
    try:
        found = outbox_find_all_posted(client=client, channel=message.channel, thread_ts=message.thread_ts,
                                       since=message.created_at,
                                       key=message.key)
    except SlackError as exc:
        return retry(f"conversations.replies: {exc.describe()}", [])
    if len(found) <= 1:
        kept = found[0] if found else message.slack_ts
        ours.update(verify_at=None, slack_ts=kept)
        message.refresh_from_db()
        return DuplicateCheck(DuplicateCheckStatus.CLEAN, message, kept_ts=kept)
    kept, later = found[0], found[1:]
    deleted: list[str] = []
    for ts in later:
        try:
            slack_call(client.chat_delete, channel=message.channel, ts=ts)
        except PermanentSlackError as exc:
            if exc.error != "message_not_found":
                return retry(f"chat.delete: {exc.describe()}", deleted, kept)
        except SlackError as exc:
            return retry(f"chat.delete: {exc.describe()}", deleted, kept)
        deleted.append(ts)
        logger.warning("outbox_duplicate_deleted key=%s kept=%s deleted=%s", message.key, kept, ts)
    ours.update(verify_at=None, slack_ts=kept, last_error="")
    message.refresh_from_db()
    return DuplicateCheck(DuplicateCheckStatus.DELETED, message, kept_ts=kept, deleted=tuple(deleted))


def outbox_post(
    *,
    key: str,
    purpose: str,
    channel: str,
    thread_ts: str,
    text: str,
    blocks: list[dict[str, Any]] | None = None,
    payload: dict[str, Any] | None = None,
) -> Delivery:
    """Record and send in one go (for messages that are not part of a bigger state change)."""
    message = outbox_record(key=key, purpose=purpose, channel=channel, thread_ts=thread_ts, text=text,
                            blocks=blocks, payload=payload)
    return outbox_send(message)


# --- updates of messages already posted (chat.update) -------------------------------------
#
# One row per posted message (its key), holding the content the message should show now.
# A later state writes new content into the same row and makes it due again, so the last
# state recorded is the one Slack ends up showing, however the sends interleave. A
# chat.update is idempotent, so an ambiguous failure is simply sent again (no lookup).


def outbox_update_record(
    *, key: str, channel: str, ts: str, text: str, blocks: list[dict[str, Any]],
    context: dict[str, Any] | None = None,
) -> OutboxMessage:
    """Write down what the message ``ts`` should show now (in the caller's transaction).
    Content that changed makes the row due again, even if an earlier content was sent or failed."""
    content = {"text": text, "blocks": blocks, "context": context or {}}
    message, created = OutboxMessage.objects.get_or_create(
        key=key,
        defaults={"purpose": OutboxPurpose.UPDATE, "channel": channel, "thread_ts": "", "slack_ts": ts,
                  **content},
    )
    if not created and (message.text != text or message.blocks != blocks):
        OutboxMessage.objects.filter(pk=message.pk).update(
            status=OutboxStatus.NEW, last_error="", updated_at=timezone.now(), **content
        )
        message.refresh_from_db()
    return message


def outbox_update_send(message: OutboxMessage) -> Delivery:
    """Apply a recorded update with ``chat.update`` (outside any transaction). Its row ends
    ``sent`` only if nobody recorded newer content meanwhile; else it stays due."""
    if message.purpose != OutboxPurpose.UPDATE:
        raise ValueError(f"{message.key} is not an update")
    now = timezone.now()
    lease_until = now + outbox_lease()
    won = OutboxMessage.objects.filter(
        Q(pk=message.pk),
        Q(status__in=(OutboxStatus.NEW, OutboxStatus.RETRY, OutboxStatus.SENDING)),
        Q(lease_until__isnull=True) | Q(lease_until__lt=now),
    ).update(status=OutboxStatus.SENDING, lease_until=lease_until, attempts=F("attempts") + 1, updated_at=now)
    message.refresh_from_db()
    if not won:
        if message.status == OutboxStatus.SENT:
            return Delivery(DeliveryStatus.SENT, message, slack_ts=message.slack_ts, recovered=True)
        if message.status == OutboxStatus.FAILED:
            return Delivery(DeliveryStatus.PERMANENT, message, error=message.last_error)
        return Delivery(DeliveryStatus.IN_FLIGHT, message)
    ours = OutboxMessage.objects.filter(pk=message.pk, status=OutboxStatus.SENDING, lease_until=lease_until)
    try:
        slack_call(slack_client().chat_update, channel=message.channel, ts=message.slack_ts,
                   text=message.text, blocks=message.blocks)
    except SlackError as exc:
        error = exc.describe()
        permanent = isinstance(exc, PermanentSlackError)
        ours.update(status=OutboxStatus.FAILED if permanent else OutboxStatus.RETRY, last_error=error,
                    lease_until=None, updated_at=timezone.now())
        OutboxMessage.objects.filter(pk=message.pk, lease_until=lease_until).update(lease_until=None)
        message.refresh_from_db()
        if permanent:
            logger.warning("outbox_update_failed key=%s error=%s", message.key, error)
            return Delivery(DeliveryStatus.PERMANENT, message, error=error)
        if isinstance(exc, RateLimited):
            return Delivery(DeliveryStatus.RATE_LIMITED, message, retry_after=exc.retry_after, error=error)
        return Delivery(DeliveryStatus.AMBIGUOUS, message, error=error)
    ours.update(status=OutboxStatus.SENT, last_error="", lease_until=None, updated_at=timezone.now())
    # Newer content recorded while we sent: it stays due; only our lease is given back.
    OutboxMessage.objects.filter(pk=message.pk, lease_until=lease_until).update(lease_until=None)
    message.refresh_from_db()
    if message.status != OutboxStatus.SENT:
        return Delivery(DeliveryStatus.IN_FLIGHT, message)
    return Delivery(DeliveryStatus.SENT, message, slack_ts=message.slack_ts)
