"""A hand-built month of tickets for the report's tests: every figure is worked out by hand in the
tests that use it (tests/reports/). Rows are written directly, as the engine leaves them.

Gold: Europe/Berlin, business clock Mon-Fri 09:00-17:00, 1 h first-response target. Berlin leaves
summer time on Sunday 2026-10-25 (UTC+2 -> UTC+1). Silver: America/New_York, calendar clock, 4 h
target, no business hours; New York leaves summer time on Sunday 2026-11-01 at 06:00 UTC.
The report runs 2026-10-05 .. 2026-11-01 (four weeks); "now" is 2026-11-16.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from escalation.models import Escalation, SnoozeRequest, TicketCycle, TicketPause, TicketSla
from tickets.hours import OpenHours, weekly_parse
from tickets.models import Ticket, Tier, WatchedChannel

SINCE, UNTIL = date(2026, 10, 5), date(2026, 11, 1)
NOW = datetime(2026, 11, 16, 12, 0, tzinfo=UTC)
GOLD_HOURS = {"mon-fri": ["09:00-17:00"]}


def z(text: str) -> datetime:
    """'2026-10-05 08:00' in UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _ticket(
    channel,
    ref,
    *,
    opened,
    breach,
    responded=None,
    closed=None,
    clock="calendar",
    hours=None,
    priority="normal",
    state=None,
) -> Ticket:
    if state is None:
        state = "responded" if responded else ("closed" if closed else "armed")
    ticket = Ticket.objects.create(
        channel=channel,
        slack_ts=f"{opened.timestamp():.6f}",
        helpdesk_ticket_id=ref,
        priority=priority,
        opened_at=opened,
        state=state,
        responded_at=responded,
        response_path="slack_thread" if responded else "",
        closed_at=closed,
        closed_via="button" if closed else "",
    )
    TicketSla.objects.create(
        ticket=ticket,
        policy_name=f"{channel.tier.name} default",
        armed_at=opened,
        clock=clock,
        hours=hours,
        first_response_target=timedelta(hours=1),
        breach_at=breach,
    )
    TicketCycle.objects.create(
        ticket=ticket,
        number=1,
        kind="first",
        started_at=opened,
        breach_at=breach,
        responded_at=responded,
        closed_at=closed,
    )
    return ticket


def _level(ticket, level, *, state="fired", fired=None, notified=(), due=None, cycle=1, outside_hours=False):
    return Escalation.objects.create(
        ticket=ticket,
        cycle=cycle,
        level=level,
        target_kind="on_shift",
        state=state,
        due_at=due or fired or ticket.opened_at,
        fired_at=fired if state == "fired" else None,
        outside_hours=outside_hours,
        notified=[{"name": name, "slack_user_id": sid} for name, sid in notified],
    )


ALICE, BOB = ("Alice", "UALICE"), ("Bob", "UBOB")


def month_build() -> dict[str, Ticket]:
    gold = Tier.objects.create(name="Gold", time_zone="Europe/Berlin", business_hours=GOLD_HOURS)
    silver = Tier.objects.create(name="Silver", time_zone="America/New_York")
    gc = WatchedChannel.objects.create(slack_channel_id="CGOLD", name="support-gold", tier=gold)
    sc = WatchedChannel.objects.create(slack_channel_id="CSILVER", name="support-silver", tier=silver)
    hours = OpenHours(time_zone="Europe/Berlin", weekly=weekly_parse(GOLD_HOURS)).as_json()
    biz = {"clock": "business", "hours": hours}
    t = {}
    # Gold, week of 2026-10-05
    t["G1"] = _ticket(
        gc,
        "G1",
        opened=z("2026-10-05 08:00"),
        breach=z("2026-10-05 09:00"),
        responded=z("2026-10-05 08:30"),
        **biz,
    )
    t["G2"] = _ticket(
        gc,
        "G2",
        opened=z("2026-10-09 14:30"),
        breach=z("2026-10-12 07:30"),
        responded=z("2026-10-12 07:15"),
        **biz,
    )  # Fri 16:30 -> Mon 09:15 local
    # Gold, week of 2026-10-12
    t["G3"] = _ticket(
        gc,
        "G3",
        opened=z("2026-10-12 07:00"),
        breach=z("2026-10-12 08:00"),
        responded=z("2026-10-12 09:00"),
        **biz,
    )
    t["G4"] = _ticket(
        gc,
        "G4",
        opened=z("2026-10-13 07:00"),
        breach=z("2026-10-13 08:00"),
        closed=z("2026-10-13 07:30"),
        **biz,
    )
    # Gold, the week Berlin leaves summer time: Fri 16:00 CEST -> Mon 09:30 CET
    t["G5"] = _ticket(
        gc,
        "G5",
        opened=z("2026-10-23 14:00"),
        breach=z("2026-10-23 15:00"),
        responded=z("2026-10-26 08:30"),
        **biz,
    )
    # Gold, week of 2026-10-26: a pause (Tue 10:30 -> Wed 10:00 local) moved the breach to Wed 10:30
    t["G6"] = _ticket(
        gc,
        "G6",
        opened=z("2026-10-27 09:00"),
        breach=z("2026-10-28 09:30"),
        responded=z("2026-10-28 09:20"),
        **biz,
    )
    t["G7"] = _ticket(gc, "G7", opened=z("2026-10-29 08:00"), breach=z("2026-10-29 09:00"), **biz)
    TicketPause.objects.create(
        ticket=t["G6"],
        cycle=1,
        paused_at=z("2026-10-27 09:30"),
        paused_via="button",
        resumed_at=z("2026-10-28 09:00"),
        resumed_via="customer",
        breach_remaining=timedelta(minutes=30),
    )
    # next-response cycles: G1's answered in time, G3's late
    TicketCycle.objects.create(
        ticket=t["G1"],
        number=2,
        kind="next",
        started_at=z("2026-10-05 10:00"),
        breach_at=z("2026-10-05 11:00"),
        responded_at=z("2026-10-05 10:30"),
    )
    TicketCycle.objects.create(
        ticket=t["G3"],
        number=2,
        kind="next",
        started_at=z("2026-10-12 10:00"),
        breach_at=z("2026-10-12 11:00"),
        responded_at=z("2026-10-12 12:00"),
    )
    _level(t["G3"], 1, fired=z("2026-10-12 07:10"), notified=[ALICE])
    _level(t["G3"], 2, fired=z("2026-10-12 07:20"), notified=[ALICE, BOB])
    _level(t["G3"], 1, cycle=2, state="cancelled", due=z("2026-10-12 12:10"))
    # fired Friday 20:00 in Berlin: outside Gold's hours (a step counting calendar time)
    _level(t["G5"], 1, fired=z("2026-10-23 18:00"), notified=[BOB], outside_hours=True)
    _level(t["G7"], 1, fired=z("2026-10-29 08:10"), notified=[ALICE])
    _level(t["G7"], 2, state="pending", due=z("2026-10-29 09:20"))
    # Silver (calendar clock, New York)
    t["S1"] = _ticket(
        sc,
        "S1",
        opened=z("2026-10-06 14:00"),
        breach=z("2026-10-06 18:00"),
        responded=z("2026-10-06 15:00"),
        priority="urgent",
    )
    t["S2"] = _ticket(
        sc, "S2", opened=z("2026-10-07 02:00"), breach=z("2026-10-07 06:00"), responded=z("2026-10-07 07:00")
    )  # Tue 22:00 in New York
    t["S3"] = _ticket(
        sc, "S3", opened=z("2026-10-14 10:00"), breach=z("2026-10-14 14:00"), responded=z("2026-10-14 10:30")
    )
    # 01:30 in New York twice on 2026-11-01: before (EDT) and after (EST) the clocks go back
    t["S4"] = _ticket(
        sc, "S4", opened=z("2026-11-01 05:30"), breach=z("2026-11-01 09:30"), responded=z("2026-11-01 06:00")
    )
    t["S5"] = _ticket(
        sc, "S5", opened=z("2026-11-01 06:30"), breach=z("2026-11-01 10:30"), responded=z("2026-11-01 07:00")
    )
    _level(t["S2"], 1, fired=z("2026-10-07 03:00"), notified=[BOB])
    _level(t["S2"], 2, state="failed", due=z("2026-10-07 04:00"))
    for key, applied in (("a", True), ("b", True), ("c", False)):
        SnoozeRequest.objects.create(
            request_key=f"snooze-{key}", ticket=t["S3"], at=z("2026-10-14 10:05"), applied=applied
        )
    # outside the range: opened after it (New York's 2026-11-01 ends at 05:00 UTC on 11-02)
    t["S6"] = _ticket(sc, "S6", opened=z("2026-11-02 05:00"), breach=z("2026-11-02 09:00"))
    return t
