"""A proposal's business hours and holidays apply to the tiers it names: each ticket's business
clock counts the file's hours exactly as arming would count them once the file is imported; tiers
the file does not name keep the hours their tickets were armed with (test_replay_matches_engine.py)."""

from datetime import UTC, date, datetime, timedelta

import pytest

from calendars.factories import HolidayDateFactory
from escalation.arming import ticket_arm
from escalation.planning import tier_sla_plan
from escalation.sla_config_tiers import proposed_open_hours
from ops.sla_config.exporting import config_dump, config_export
from ops.sla_config.importing import config_apply
from reports.replay.policies import PolicyBook
from reports.replay.policy_file import policy_file_read
from reports.replay.running import replay_run
from tests.support.times import T0
from tickets.factories import TicketFactory, WatchedChannelFactory
from tickets.models import Tier
from tickets.tier_hours import tier_open_hours

pytestmark = pytest.mark.django_db

BERLIN_MONDAY_1730 = datetime(2026, 3, 2, 16, 30, tzinfo=UTC)  # T0's Monday, 17:30 in Berlin


def _proposal(tier_name: str, **changes):
    """Today's configuration with the named tier's keys changed (a key set to None is removed)."""
    document = config_export()
    for tier in document["tiers"]:
        if tier["name"] == tier_name:
            for key, value in changes.items():
                if value is None:
                    tier.pop(key, None)
                else:
                    tier[key] = value
            for policy in tier["policies"]:
                policy["first_response_target"] = "2h"
    return policy_file_read(config_dump(document))


@pytest.fixture
def armed_ticket(teams_business, thread_in, fake_slack, engineers):
    """Returns a function arming a ticket of the Teams business tier (Mon-Fri 09:00-18:00 Berlin,
    business clock, levels after 1/3/6/12 business hours) opened at ``opened_at``, never answered."""
    channel = WatchedChannelFactory(slack_channel_id="CTEAMS01", name="support-teams",
                                    tier=teams_business.tier)

    def arm(opened_at: datetime, slack_ts: str = "1700000001.0001"):
        ticket = thread_in(TicketFactory(channel=channel, opened_at=opened_at, priority="normal",
                                         slack_ts=slack_ts))
        ticket_arm(ticket=ticket, now=opened_at)
        return ticket

    return arm


def _replayed(config, ticket):
    opened = ticket.opened_at
    report = replay_run(since=opened - timedelta(hours=1), until=opened + timedelta(hours=1), config=config,
                        now=opened + timedelta(days=6))
    assert report.tickets == 1
    # The ticket was never answered and nobody fired its levels: a replay firing any differs.
    [change] = report.changed
    return report, change


def test_wider_business_hours_move_the_levels_as_arming_would_count_them(armed_ticket, teams_business):
    ticket = armed_ticket(BERLIN_MONDAY_1730)
    tier = teams_business.tier
    wider = {"mon-fri": ["08:00-20:00"]}
    config = _proposal(tier.name, business_hours=wider)
    report, change = _replayed(config, ticket)

    # What arming would plan with those hours: the engine's planning on an in-memory tier.
    snapshot = PolicyBook(config).snapshot(tier_id=tier.pk, tier=tier.name, priority="normal")
    in_memory = Tier(name=tier.name, time_zone="Europe/Berlin", business_hours=wider)
    plan = tier_sla_plan(snapshot=snapshot, tier=in_memory, opened_at=ticket.opened_at)
    fired = sorted(change.proposed.fired, key=lambda f: f.level)
    assert [(f.level, f.at) for f in fired] == [(d.plan.level, d.due_at) for d in plan.levels]
    assert change.proposed.cycles[0].breach_at == plan.breach_at
    # Worked out by hand: 17:30 Berlin (16:30 UTC), open until 20:00, then from 08:00 the next day.
    assert [f.at for f in fired] == [datetime(2026, 3, 2, 17, 30, tzinfo=UTC),
                                     datetime(2026, 3, 3, 7, 30, tzinfo=UTC),
                                     datetime(2026, 3, 3, 10, 30, tzinfo=UTC),
                                     datetime(2026, 3, 3, 16, 30, tzinfo=UTC)]
    # Levels 1 and 2 mention Alice and Bob at 18:30 and 08:30 Berlin: outside today's 09:00-18:00,
    # inside the proposed hours, which the proposed side's pages are counted against.
    assert report.proposed.as_json()["pages_per_engineer"] == {
        "Alice": {"pages": 2, "outside_business_hours": 0}, "Bob": {"pages": 2, "outside_business_hours": 0}}
    # Under the tier's own hours the first level would only have come due on Tuesday at 09:30.
    same_hours, _ = _replayed(_proposal(tier.name), ticket)
    assert same_hours.proposed.as_json()["levels_fired"] == {"1": 1, "2": 1, "3": 1, "4": 1}
    original = tier_sla_plan(snapshot=snapshot, tier=tier, opened_at=ticket.opened_at)
    assert original.levels[0].due_at == datetime(2026, 3, 3, 8, 30, tzinfo=UTC)


def test_a_holiday_on_the_tickets_day_pushes_its_levels_to_the_next_business_day(armed_ticket,
                                                                                 teams_business):
    ticket = armed_ticket(T0)  # Monday 10:00 Berlin
    tier = teams_business.tier
    report, change = _replayed(_proposal(tier.name, holidays={"dates": ["2026-03-02"]}), ticket)
    # Tuesday from 09:00 Berlin (08:00 UTC): 1h, 3h, 6h, then 12h (9h on Tuesday, 3h on Wednesday).
    assert [(f.level, f.at) for f in sorted(change.proposed.fired, key=lambda f: f.level)] == [
        (1, datetime(2026, 3, 3, 9, 0, tzinfo=UTC)), (2, datetime(2026, 3, 3, 11, 0, tzinfo=UTC)),
        (3, datetime(2026, 3, 3, 14, 0, tzinfo=UTC)), (4, datetime(2026, 3, 4, 11, 0, tzinfo=UTC))]
    assert change.proposed.cycles[0].breach_at == datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
    # Armed, its levels counted from Monday 10:00 Berlin.
    assert ticket.escalations.get(level=1).due_at == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_a_countrys_holidays_and_a_synced_holiday_feed_named_by_the_file_close_their_days(
        armed_ticket, teams_business):
    """Thursday 24 December 2026, 17:30 Berlin: 30 minutes that day, the other 30 on the next business
    day: Friday the 25th without holidays, Monday the 28th with Germany's (25th, 26th), Tuesday the
    29th when a synced holiday feed the file names also closes the 28th."""
    ticket = armed_ticket(datetime(2026, 12, 24, 16, 30, tzinfo=UTC))
    tier = teams_business.tier

    def level1(config):
        _, change = _replayed(config, ticket)
        return next(f.at for f in change.proposed.fired if f.level == 1)

    assert level1(_proposal(tier.name)) == datetime(2026, 12, 25, 8, 30, tzinfo=UTC)
    germany = _proposal(tier.name, holidays={"country": "DE"})
    assert level1(germany) == datetime(2026, 12, 28, 8, 30, tzinfo=UTC)
    feed = HolidayDateFactory(date=date(2026, 12, 28), name="Company day",
                              synced_at=datetime(2026, 11, 1, tzinfo=UTC)).source
    both = {"country": "DE", "ical": feed.ical_url}
    assert level1(_proposal(tier.name, holidays=both)) == datetime(2026, 12, 29, 8, 30, tzinfo=UTC)


def test_a_named_tier_without_business_hours_counts_around_the_clock(armed_ticket, teams_business):
    ticket = armed_ticket(BERLIN_MONDAY_1730)
    _, change = _replayed(_proposal(teams_business.tier.name, business_hours=None), ticket)
    fired = sorted(change.proposed.fired, key=lambda f: f.level)
    assert [(f.level, f.at - ticket.opened_at) for f in fired] == [
        (1, timedelta(hours=1)), (2, timedelta(hours=3)), (3, timedelta(hours=6)), (4, timedelta(hours=12))]


def test_a_proposed_tiers_hours_are_those_arming_reads_once_the_file_is_imported(teams_business):
    feed = HolidayDateFactory(date=date(2026, 12, 28), name="Company day",
                              synced_at=datetime(2026, 11, 1, tzinfo=UTC)).source
    config = _proposal(teams_business.tier.name, time_zone="Europe/Vienna",
                       business_hours={"mon-thu": ["08:00-20:00"], "fri": ["08:00-14:00"]},
                       holidays={"country": "AT", "ical": feed.ical_url,
                                 "dates": ["2026-12-23", {"date": "2026-12-31", "name": "Eve"}]})
    [spec] = [t for t in config.tiers if t.name == teams_business.tier.name]
    around = datetime(2026, 12, 1, tzinfo=UTC)
    proposed = proposed_open_hours(spec, around=around)
    config_apply(config)
    imported = tier_open_hours(Tier.objects.get(name=spec.name), around=around)
    assert proposed == imported
    # Austria's 8 December, the file's dates and the feed's synced date.
    closed = {date(2026, 12, 8), date(2026, 12, 23), date(2026, 12, 28), date(2026, 12, 31)}
    assert closed <= proposed.holidays
