"""A first response exactly at the breach time is on time, for the SLA report, the replay and
/metrics alike (one definition: escalation.breach.on_time / on_time_q); a second later it is late
everywhere. The tickets are armed and answered through the engine's services."""

from datetime import timedelta

import pytest
import time_machine
from prometheus_client.parser import text_string_to_metric_families

from escalation.arming import ticket_arm
from escalation.breach import on_time
from escalation.models import TicketSla
from ops.metrics import render_metrics
from ops.sla_config.exporting import config_dump, config_export
from reports.figures import ReportFilters, report_build
from reports.replay.policy_file import policy_file_read
from reports.replay.running import replay_run
from tests.reports.conftest import END, _answer, at
from tests.support.times import T0

pytestmark = pytest.mark.django_db


def _metrics(now) -> dict[str, float]:
    found = {}
    for family in text_string_to_metric_families(render_metrics(now=now)[0].decode()):
        for sample in family.samples:
            if sample.labels.get("tier") == "Enterprise test":
                found[sample.name] = sample.value
    return found


@pytest.fixture
def answered_around_the_breach_time(make_ticket, engineers, thread_in, fake_slack):
    """Three tickets answered a second before, exactly at, and a second after their breach time."""
    offsets = {"early": -1, "on the dot": 0, "late": 1}
    for i, (name, seconds) in enumerate(offsets.items()):
        ticket = thread_in(make_ticket(opened_at=at(i), text=name, slack_ts=f"1700001{i}.0001"))
        with time_machine.travel(at(i), tick=False):
            ticket_arm(ticket=ticket, now=at(i))
        breach_at = TicketSla.objects.get(ticket=ticket).breach_at
        assert breach_at is not None
        answered = breach_at + timedelta(seconds=seconds)
        with time_machine.travel(answered, tick=False):
            ticket.refresh_from_db()
            _answer(ticket, answered)


def test_a_response_at_the_breach_time_is_on_time_in_report_replay_and_metrics(
    answered_around_the_breach_time,
):
    second = timedelta(seconds=1)
    assert on_time(T0, T0) and on_time(T0 - second, T0) and not on_time(T0 + second, T0)

    report = report_build(filters=ReportFilters(since=T0.date(), until=END.date()), now=END)
    (total,) = report.totals
    assert (total["answered"], total["met"], total["breached"]) == (3, 2, 1)

    replay = replay_run(since=T0, until=END, config=policy_file_read(config_dump(config_export())), now=END)
    actual = replay.actual.as_json()
    assert actual["first_response_attainment"] == {"answered": 3, "on_time": 2, "share": total["attainment"]}
    assert actual["breaches"] == 1
    assert replay.proposed.as_json()["first_response_attainment"] == actual["first_response_attainment"]

    metrics = _metrics(END)
    assert metrics["slabuddy_first_responses_answered_total"] == 3
    assert metrics["slabuddy_first_responses_on_time_total"] == 2
    assert metrics["slabuddy_tickets_breached_total"] == 1
