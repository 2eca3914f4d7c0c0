"""What one level costs the database when it fires: a fixed number of statements, whatever the
ticket, so that the firing path stays close to a bare post (bench/firing_profile.py measures it)."""

from datetime import timedelta

import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from escalation.arming import ticket_arm
from escalation.firing import escalation_fire
from escalation.outcomes import FireOutcome
from tests.support.engine import rows
from tests.support.times import T0

# Transaction bookkeeping aside: load the level with its ticket, channel, tier and snapshot (1);
# whom to notify (5, the roster: engineers, shift calendars, intervals, overrides, sources); the
# next step (1); claim and record (2: the claim, the insert unless the key is recorded); send (2:
# "sending" with its lease, then "sent"); settle with the timeline and the thread's state (3).
# It was 20 before the snapshot came with the level and the outbox stopped reading back what it had
# just written; 18 before the record inserted without asking first and the outbox leased and
# marked "sending" a certainly unsent message in one statement.
MAX_STATEMENTS = 14


def _statements(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries
            if not q["sql"].upper().startswith(("SAVEPOINT", "RELEASE", "BEGIN", "COMMIT"))]


def test_firing_a_level_takes_a_fixed_number_of_statements(make_ticket, engineers, thread_in, fake_slack):
    counts = []
    for i in range(2):  # the second ticket costs what the first did: nothing grows with the data
        ticket = thread_in(make_ticket(slack_ts=f"1700000000.00020{i}"))
        ticket_arm(ticket=ticket, now=T0)
        level1 = rows(ticket)[0]
        with time_machine.travel(T0 + timedelta(minutes=10), tick=False), \
                CaptureQueriesContext(connection) as captured:
            assert escalation_fire(escalation_id=level1.pk, version=level1.version) == FireOutcome.FIRED
        counts.append(len(_statements(captured)))
    assert counts[0] == counts[1]
    assert counts[0] <= MAX_STATEMENTS, "\n".join(_statements(captured))
