"""What one level costs the database when it fires: a fixed number of statements, whatever the
ticket, so that the firing path stays close to a bare post (bench/firing_profile.py measures it)."""

from datetime import timedelta

import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from escalation import firing
from escalation.arming import ticket_arm
from escalation.firing import escalation_fire
from escalation.outcomes import FireOutcome
from tests.support.engine import rows
from tests.support.times import T0

# Transaction bookkeeping aside: load the level with its ticket, channel, tier and snapshot (1);
# whom to notify (5, the roster: engineers, shift calendars, intervals, overrides, sources); the
# next step (1); claim and record (2: the claim, the message inserted already marked "sending",
# unless its key is recorded); settle (4: the message "sent", the level fired, the timeline, the
# thread's state). It was 20 before the snapshot came with the level and the outbox stopped reading
# back what it had just written; 18 before the record inserted without asking first and the outbox
# leased and marked "sending" a certainly unsent message in one statement; 14 before the message
# was recorded "sending" in the claim's transaction and marked "sent" in the settle's.
MAX_STATEMENTS = 13


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


def test_before_its_post_a_level_writes_once_in_one_commit(make_ticket, engineers, thread_in, fake_slack,
                                                           monkeypatch):
    """What stands between the due moment and the post: one transaction, the claim and the message
    recorded "sending" (the reads and the draft come before it, the settle after the post)."""
    ticket = thread_in(make_ticket())
    ticket_arm(ticket=ticket, now=T0)
    level1 = rows(ticket)[0]
    at_post = []
    post = firing.outbox_post_marked
    monkeypatch.setattr(firing, "outbox_post_marked",
                        lambda message: at_post.append(len(captured.captured_queries)) or post(message))
    with time_machine.travel(T0 + timedelta(minutes=10), tick=False), \
            CaptureQueriesContext(connection) as captured:
        assert escalation_fire(escalation_id=level1.pk, version=level1.version) == FireOutcome.FIRED
    before = [q["sql"].split()[0].upper() for q in captured.captured_queries[:at_post[0]]]
    writes = [kind for kind in before if kind in ("UPDATE", "INSERT", "DELETE")]
    assert writes == ["UPDATE", "INSERT"], before  # the claim, the message
    # One atomic block (the test's own transaction makes it a savepoint).
    assert before.count("SAVEPOINT") == 1, before
