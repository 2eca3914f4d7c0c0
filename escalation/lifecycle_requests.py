"""Once per Slack request: a close, pause, resume or next-response cycle asked for by a message,
a reaction or a button press is recorded under that request's key before it changes anything,
so a second delivery of the same request (a Slack retry, or the same message under a new event
id) changes nothing, even when the ticket's state changed in between."""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction

from escalation.models import LifecycleRequest
from tickets.models import Ticket


def lifecycle_request_take(*, ticket: Ticket, key: str | None, action: str, actor: str, at: datetime
                           ) -> LifecycleRequest | None | bool:
    """Record the request (inside the caller's transaction). Returns the new row, ``True`` when
    there is no key to check (helpdesk statuses: the state decides), or ``None`` for a key seen
    before."""
    if not key:
        return True
    try:
        with transaction.atomic():
            return LifecycleRequest.objects.create(request_key=key[:200], ticket=ticket, action=action,
                                                   actor=actor[:200], at=at)
    except IntegrityError:
        return None


def lifecycle_request_applied(request: LifecycleRequest | bool) -> None:
    if isinstance(request, LifecycleRequest):
        LifecycleRequest.objects.filter(pk=request.pk).update(applied=True)
