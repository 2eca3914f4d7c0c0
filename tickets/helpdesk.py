"""Ask the helpdesk whether a ticket has had an agent's first reply.

Called by the escalation engine just before a level fires (outside any
database transaction, with a short timeout). ``None`` means "cannot tell"
(not a helpdesk channel, no credentials, helpdesk down): the level fires.
The Zendesk and Freshdesk adapters fill this in (issue 4).
"""

from __future__ import annotations

from tickets.models import Ticket


def helpdesk_first_reply_seen(*, ticket: Ticket) -> bool | None:
    return None
