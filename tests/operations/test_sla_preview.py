"""The preview: ``manage.py sla_preview`` and the policy's admin page, on the arming code."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from escalation.arming import ticket_arm
from escalation.models import Escalation, SlaPolicy, TicketSla
from tickets.factories import TicketFactory, WatchedChannelFactory
from tickets.models import Tier, TierHoliday

pytestmark = pytest.mark.django_db

TEAMS_YAML = """
tiers:
  - name: Teams
    time_zone: Europe/Berlin
    business_hours: {mon-fri: ["09:00-18:00"]}
    policies:
      - priority: ""
        clock: business
        first_response_target: 1h
        snooze: 30m
        steps:
          - {level: 1, after: 1h, notify: on_shift_not_embedded}
          - {level: 2, after: 3h, notify: on_shift}
          - {level: 3, after: 6h, notify: user_group, ref: S0SUPPORT}
          - {level: 4, after: 12h, notify: head_of_success}
      - priority: urgent
        clock: business
        steps:
          - {level: 1, after: 15m, notify: on_shift}
          - {level: 2, after: 2h, notify: head_of_success, outside_hours: true}
"""


@pytest.fixture
def teams(tmp_path):
    path = tmp_path / "teams.yaml"
    path.write_text(TEAMS_YAML)
    call_command("sla_config", "import", str(path), stdout=io.StringIO())
    return Tier.objects.get(name="Teams")


def preview(*args: str) -> dict:
    out = io.StringIO()
    call_command("sla_preview", *args, stdout=out)
    return json.loads(out.getvalue())


def test_preview_of_a_friday_evening_teams_ticket(teams):
    result = preview("--tier", "Teams", "--opened-at", "2026-11-27T17:30")
    assert result == {
        "tier": "Teams",
        "policy": "Teams (default)",
        "clock": "business",
        "breach_at": "2026-11-30T09:30:00+01:00",
        "levels": [
            {"level": 1, "due_at": "2026-11-30T09:30:00+01:00", "notify": "on_shift_not_embedded"},
            {"level": 2, "due_at": "2026-11-30T11:30:00+01:00", "notify": "on_shift"},
            {"level": 3, "due_at": "2026-11-30T14:30:00+01:00", "notify": "user_group"},
            {"level": 4, "due_at": "2026-12-01T11:30:00+01:00", "notify": "head_of_success"},
        ],
    }
    # The same moment given with an offset, or in UTC, previews the same.
    assert preview("--tier", "Teams", "--opened-at", "2026-11-27T16:30:00+00:00") == result


def test_a_holiday_moves_each_level_one_business_day(teams):
    TierHoliday.objects.create(tier=teams, date=date(2026, 11, 30), name="Company day")
    result = preview("--tier", "Teams", "--opened-at", "2026-11-27T17:30+01:00")
    assert [level["due_at"] for level in result["levels"]] == [
        "2026-12-01T09:30:00+01:00", "2026-12-01T11:30:00+01:00",
        "2026-12-01T14:30:00+01:00", "2026-12-02T11:30:00+01:00"]
    assert result["breach_at"] == "2026-12-01T09:30:00+01:00"


def test_the_priority_picks_the_policy_and_outside_hours_steps_count_calendar_time(teams):
    result = preview("--tier", "Teams", "--priority", "urgent", "--opened-at", "2026-11-27T17:30")
    assert result["policy"] == "Teams (Urgent)"
    assert [level["due_at"] for level in result["levels"]] == [
        "2026-11-27T17:45:00+01:00", "2026-11-27T19:30:00+01:00"]
    assert result["breach_at"] == "2026-11-27T17:45:00+01:00"  # the level 1 delay by default


def test_the_preview_is_what_arming_does_and_writes_nothing(teams):
    opened = datetime(2026, 11, 27, 17, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    before = (Escalation.objects.count(), TicketSla.objects.count())
    result = preview("--tier", "Teams", "--opened-at", opened.isoformat())
    assert (Escalation.objects.count(), TicketSla.objects.count()) == before
    ticket = TicketFactory(channel=WatchedChannelFactory(tier=teams), opened_at=opened, priority="normal")
    ticket_arm(ticket=ticket, now=opened)
    armed = [datetime.fromisoformat(level["due_at"]) for level in result["levels"]]
    assert [row.due_at for row in Escalation.objects.filter(ticket=ticket).order_by("level")] == armed
    assert TicketSla.objects.get(ticket=ticket).breach_at == datetime.fromisoformat(result["breach_at"])


def test_preview_errors_name_what_is_wrong(teams):
    with pytest.raises(CommandError, match="--tier: no tier named 'Gold'"):
        preview("--tier", "Gold", "--opened-at", "2026-11-27T17:30")
    with pytest.raises(CommandError, match="--opened-at: 'Friday' is not an ISO 8601 time"):
        preview("--tier", "Teams", "--opened-at", "Friday")
    SlaPolicy.objects.filter(tier=teams).update(active=False)
    with pytest.raises(CommandError, match="has no active policy"):
        preview("--tier", "Teams", "--opened-at", "2026-11-27T17:30")


def test_the_policy_admin_page_previews_now_and_friday_evening(staff_client, teams):
    policy = SlaPolicy.objects.get(tier=teams, priority="")
    wednesday_noon = datetime(2026, 11, 25, 11, 0, tzinfo=UTC)  # 12:00 in Berlin
    with time_machine.travel(wednesday_noon, tick=False):
        page = staff_client.get(reverse("admin:escalation_slapolicy_change", args=[policy.pk]))
    page = page.content.decode()
    assert "A ticket opened now" in page and "Wed 2026-11-25 12:00 CET" in page
    assert "A ticket opened Friday 17:30" in page and "Fri 2026-11-27 17:30 CET" in page
    assert "Mon 2026-11-30 09:30 CET" in page and "Tue 2026-12-01 11:30 CET" in page  # Friday's levels
    assert "Wed 2026-11-25 13:00 CET" in page  # now + 1 business hour


def test_tier_admin_checks_the_hours_and_the_holiday_region(staff_client, teams):
    url = reverse("admin:tickets_tier_change", args=[teams.pk])
    form = {"name": "Teams", "time_zone": "Europe/Berlin", "description": "",
            "business_hours": '{"mon-fri": ["9-18"]}', "holiday_country": "DE", "holiday_subdivision": "XX",
            "holiday_calendar": "", "holidays-TOTAL_FORMS": "0", "holidays-INITIAL_FORMS": "0",
            "policies-TOTAL_FORMS": "0", "policies-INITIAL_FORMS": "0"}
    page = staff_client.post(url, form).content.decode()
    assert "mon-fri[0]: &quot;9-18&quot; is not an interval like 09:00-18:00" in page
    assert "&quot;XX&quot; is not a subdivision of DE" in page
    form.update(business_hours='{"mon": ["09:00-18:00"], "tue-fri": ["09:00-18:00"]}',
                holiday_subdivision="BY")
    response = staff_client.post(url, form)
    assert response.status_code == 302
    teams.refresh_from_db()
    assert teams.business_hours == {"mon-fri": ["09:00-18:00"]}  # stored in its canonical form
    assert (teams.holiday_country, teams.holiday_subdivision) == ("DE", "BY")
