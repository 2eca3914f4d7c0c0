"""Reading the outbox row behind an escalation level."""

from base.models import OutboxMessage
from escalation.firing import idempotency_key


def outbox_of(level) -> OutboxMessage:
    """The outbox message of an ``Escalation`` row (keyed by ticket, cycle and level)."""
    return OutboxMessage.objects.get(
        key=idempotency_key(ticket_id=level.ticket_id, level=level.level, cycle=level.cycle)
    )
