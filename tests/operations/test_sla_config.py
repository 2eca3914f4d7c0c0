"""Policy as code: ``manage.py sla_config export|import`` round trips, dry runs, refused files."""

from __future__ import annotations

import io
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from calendars.models import CalendarSource, Engineer
from escalation.models import EscalationStep, SlaPolicy
from tickets.models import Tier, TierHoliday, WatchedChannel

pytestmark = pytest.mark.django_db

FULL = """
tiers:
  - name: Teams
    time_zone: Europe/Berlin
    description: Self-serve customers
    business_hours: {mon-fri: ["09:00-18:00"]}
    holidays: {dates: ["2026-12-24", {date: "2026-12-31", name: New Year's Eve}],
               country: DE, subdivision: BY, ical: "https://holidays.example.com/de.ics"}
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
        name: Teams urgent
        clock: business
        first_response_target: 30m
        snooze: 15m
        snoozes_extend_target: true
        steps:
          - {level: 1, after: 30m, notify: on_shift}
          - {level: 2, after: 1h30m, notify: engineer, engineer: carol@example.com, outside_hours: true,
             message: "Wake up {mentions}"}
  - name: Night desk
    time_zone: America/Chicago
    business_hours: {mon-thu: ["22:00-06:00"], fri: ["08:00-12:00", "13:00-17:00"]}
    policies:
      - priority: high
        clock: calendar
        snooze: 1h
        active: false
        steps:
          - {level: 1, after: 2d, notify: user_group}
channels:
  - {id: C0TEAMS01, name: teams-support, tier: Teams, intake: helpdesk_bot, response: slack_thread}
  - {id: C0NIGHT01, name: night-desk, tier: Night desk, intake: plain, response: zendesk,
     allowed_bot_ids: B0WORKFLOW, lookback_minutes: 60, active: false}
engineers:
  - {name: Alice Doe, email: alice@example.com, slack_id: U0ALICE01, role: support_engineer}
  - {name: Carol Boss, email: carol@example.com, slack_id: U0CAROL01, role: head_of_success}
  - {name: Dan Former, slack_id: U0DAN0001, role: other, active: false}
"""


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("sla_config", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def write(tmp_path, text: str, name: str = "sla.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def export() -> str:
    return run("export")


def wipe_configuration() -> None:
    WatchedChannel.objects.all().delete()
    SlaPolicy.objects.all().delete()
    Tier.objects.all().delete()
    Engineer.objects.all().delete()
    CalendarSource.objects.all().delete()


def test_import_creates_everything_the_file_names(tmp_path):
    assert "create tier Night desk" in run("import", write(tmp_path, FULL))
    teams = Tier.objects.get(name="Teams")
    assert teams.time_zone == "Europe/Berlin" and teams.business_hours == {"mon-fri": ["09:00-18:00"]}
    assert (teams.holiday_country, teams.holiday_subdivision) == ("DE", "BY")
    assert teams.holiday_calendar.ical_url == "https://holidays.example.com/de.ics"
    assert teams.holiday_calendar.purpose == "holidays"
    assert list(TierHoliday.objects.filter(tier=teams).values_list("date", "name")) == [
        (date(2026, 12, 24), ""), (date(2026, 12, 31), "New Year's Eve")]
    urgent = SlaPolicy.objects.get(tier=teams, priority="urgent")
    assert (urgent.clock, urgent.first_response_target, urgent.snooze_minutes,
            urgent.snoozes_extend_target) == ("business", timedelta(minutes=30), 15, True)
    wake = urgent.steps.get(level=2)
    assert (wake.delay, wake.engineer.name, wake.outside_hours, wake.message_template) == (
        timedelta(hours=1, minutes=30), "Carol Boss", True, "Wake up {mentions}")
    night = Tier.objects.get(name="Night desk")
    assert night.business_hours == {"mon-thu": ["22:00-06:00"], "fri": ["08:00-12:00", "13:00-17:00"]}
    assert not night.policies.get().active
    channel = WatchedChannel.objects.get(slack_channel_id="C0NIGHT01")
    assert (channel.tier, channel.intake_mode, channel.response_mode, channel.lookback_minutes,
            channel.allowed_bot_ids, channel.active) == (night, "plain", "zendesk", 60, "B0WORKFLOW", False)
    assert not Engineer.objects.get(slack_user_id="U0DAN0001").active


def test_export_then_import_on_an_empty_database_reproduces_the_configuration(tmp_path):
    run("import", write(tmp_path, FULL))
    exported = export()
    wipe_configuration()
    assert not Tier.objects.exists()
    run("import", write(tmp_path, exported, "exported.yaml"))
    assert export() == exported
    assert run("import", write(tmp_path, exported, "exported.yaml")).startswith("No changes")


def test_export_writes_a_file_and_import_is_idempotent(tmp_path):
    path = tmp_path / "out.yaml"
    call_command("sla_config", "export", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    assert path.read_text().startswith("# SLA Buddy configuration")
    assert "name: Enterprise" in path.read_text()  # the seeded ladder
    assert run("import", str(path)).startswith("No changes")


def test_dry_run_prints_the_changes_and_writes_nothing(tmp_path):
    before = export()
    dry = run("import", write(tmp_path, FULL), "--dry-run")
    assert dry.startswith("Would change (dry run, nothing written):")
    assert "  create tier Teams" not in dry  # Teams is seeded: it is updated
    assert "  update tier Teams: time_zone 'UTC' -> 'Europe/Berlin'" in dry
    assert "  update policy Teams (default): clock 'calendar' -> 'business'" in dry
    assert "  create level 2 of policy Teams (urgent)" in dry
    assert export() == before
    real = run("import", write(tmp_path, FULL))
    assert real.splitlines()[1:] == dry.splitlines()[1:]  # the dry run said exactly what happened


def test_what_a_tier_lists_replaces_its_policies_steps_and_holidays(tmp_path):
    run("import", write(tmp_path, FULL))
    fewer = FULL.replace("""          - {level: 4, after: 12h, notify: head_of_success}\n""", "").replace(
        """, {date: "2026-12-31", name: New Year's Eve}""", "")
    fewer = fewer[: fewer.index("      - priority: urgent")] + fewer[fewer.index("  - name: Night desk"):]
    changes = run("import", write(tmp_path, fewer, "fewer.yaml"))
    assert "delete level 4 of policy Teams (default)" in changes
    assert "delete policy Teams urgent" in changes
    assert "delete holiday 2026-12-31 of tier Teams" in changes
    teams = Tier.objects.get(name="Teams")
    assert list(teams.policies.values_list("priority", flat=True)) == [""]
    assert EscalationStep.objects.filter(policy__tier=teams).count() == 3
    # Tiers, channels and engineers the file does not name are left alone.
    assert Tier.objects.filter(name="Enterprise").exists()


REFUSED = [
    # the example: the third step of the second tier's first policy
    ("""
tiers:
  - {name: A, policies: [{steps: [{level: 1, after: 1h, notify: on_shift}]}]}
  - name: B
    policies:
      - steps:
          - {level: 1, after: 1h, notify: on_shift}
          - {level: 2, after: 2h, notify: on_shift}
          - {level: 3, after: 1x, notify: on_shift}
""", 'tiers[1].policies[0].steps[2].after: "1x" is not a duration'),
    ("tiers: [{name: A, polices: []}]", "tiers[0].polices: unknown key (expected one of:"),
    ("tiers: [{name: A, time_zone: Mars/Olympus}]",
     'tiers[0].time_zone: "Mars/Olympus" is not an IANA time zone'),
    ("tiers: [{name: A, business_hours: {mon-fri: ['9-18']}}]",
     'tiers[0].business_hours.mon-fri[0]: "9-18" is not an interval like 09:00-18:00'),
    ("tiers: [{name: A, business_hours: {monday: ['09:00-18:00']}}]",
     "tiers[0].business_hours.monday: is not a day (mon..sun) or a range of days (mon-fri)"),
    ("tiers: [{name: A, business_hours: {mon-fri: ['09:00-17:00'], fri: ['09:00-12:00']}}]",
     "tiers[0].business_hours.fri: fri is given more than once"),
    ("tiers: [{name: A, holidays: {country: XX}}]", 'tiers[0].holidays.country: "XX" is not a country'),
    ("tiers: [{name: A, holidays: {country: DE, subdivision: ZZ}}]",
     'tiers[0].holidays.subdivision: "ZZ" is not a subdivision of DE'),
    ("tiers: [{name: A, holidays: {dates: ['2026-13-01']}}]",
     'tiers[0].holidays.dates[0]: "2026-13-01" is not a date'),
    ("tiers: [{name: A, policies: [{clock: hourly, steps: [{level: 1, after: 1h, notify: on_shift}]}]}]",
     'tiers[0].policies[0].clock: "hourly" is not one of: calendar, business'),
    ("tiers: [{name: A, policies: [{snooze: 90s, steps: [{level: 1, after: 1h, notify: on_shift}]}]}]",
     'tiers[0].policies[0].snooze: "90s" must be whole minutes'),
    ("tiers: [{name: A, policies: [{steps: [{level: 1, after: 1h, notify: everyone}]}]}]",
     'tiers[0].policies[0].steps[0].notify: "everyone" is not one of: on_shift_not_embedded'),
    ("tiers: [{name: A, policies: [{steps: [{level: 1, after: 1h, notify: on_shift}, "
     "{level: 1, after: 2h, notify: on_shift}]}]}]",
     "tiers[0].policies[0].steps[1].level: level 1 appears more than once"),
    ("tiers: [{name: A, policies: [{priority: urgent}]}]",
     "tiers[0].policies[0].steps: is required: a policy needs at least one step"),
    ("tiers: [{name: A, policies: [{steps: [{level: 1, after: 1h, notify: engineer, "
     "engineer: x@example.com}]}]}]",
     'tiers[0].policies[0].steps[0].engineer: "x@example.com" is not an engineer'),
    ("channels: [{id: C1, name: one, tier: Nowhere}]", 'channels[0].tier: "Nowhere" is not a tier'),
    ("engineers: [{email: a@example.com}]", "engineers[0].name: is required"),
    ("tier: []", "tier: unknown key (expected one of: channels, engineers, tiers)"),
    ("tiers: {name: A}", "tiers: must be a list"),
]


@pytest.mark.parametrize(("text", "message"), REFUSED, ids=[m.split(":")[0] for _, m in REFUSED])
def test_a_bad_file_is_refused_whole_naming_the_bad_key(tmp_path, text, message):
    before = export()
    with pytest.raises(CommandError) as refused:
        run("import", write(tmp_path, "engineers: [{name: New Person, email: new@example.com}]\n" + text
                            if not text.startswith("engineers") else text))
    assert "was refused, nothing was written" in str(refused.value)
    assert message in str(refused.value)
    assert export() == before  # not even the valid engineer was written


def test_every_problem_is_listed_and_broken_yaml_is_refused(tmp_path):
    text = "tiers: [{name: A, time_zone: Nowhere, policies: [{clock: hourly, steps: []}]}]"
    with pytest.raises(CommandError) as refused:
        run("import", write(tmp_path, text))
    lines = str(refused.value).splitlines()[1:]
    assert [line.split(":")[0].strip() for line in lines] == [
        "tiers[0].time_zone", "tiers[0].policies[0].clock", "tiers[0].policies[0].steps"]
    with pytest.raises(CommandError, match="is not valid YAML, nothing was written"):
        run("import", write(tmp_path, "tiers: [{name: A"))
    with pytest.raises(CommandError, match="Cannot read"):
        run("import", str(tmp_path / "missing.yaml"))


def test_the_readme_example_is_a_valid_file(tmp_path):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## Policy as code"):]
    example = section[section.index("```yaml") + len("```yaml"):]
    example = example[: example.index("```")]
    changes = run("import", write(tmp_path, example), "--dry-run")
    assert "update policy Teams (default): clock 'calendar' -> 'business'" in changes
    assert "create channel #teams-support (C0TEAMS01)" in changes


def test_a_file_that_conflicts_with_the_database_writes_nothing(tmp_path):
    Engineer.objects.create(name="Bob", email="bob@example.com", slack_user_id="U0BOB0001")
    text = ("tiers: [{name: Fresh}]\n"
            "engineers: [{name: Bobby, email: bobby@example.com, slack_id: U0BOB0002},"
            " {name: Robert, email: bob@example.com, slack_id: U0BOB0002}]")
    with pytest.raises(CommandError) as refused:
        run("import", write(tmp_path, text))
    assert "slack_id" in str(refused.value)  # the file itself names U0BOB0002 twice
    text = "tiers: [{name: Fresh}]\nengineers: [{name: Robert, email: rob@example.com, slack_id: U0BOB0001}]"
    Engineer.objects.create(name="Rob", email="rob@example.com")
    with pytest.raises(CommandError, match="conflicts with the database, nothing was written"):
        run("import", write(tmp_path, text))
    assert not Tier.objects.filter(name="Fresh").exists()


# --- the lifecycle's keys and page steps ----------------------------------------------------

LIFECYCLE = """
tiers:
  - name: Enterprise plus
    policies:
      - priority: ""
        snooze: 30m
        max_total_snooze: 4h
        exclude_types: [feedback, question]
        steps:
          - {level: 1, after: 10m, notify: on_shift_not_embedded}
          - level: 2
            after: 35m
            notify: page
            page: {provider: pagerduty, credential: PAGERDUTY_ROUTING_KEY_TEAMS, priorities: [high, urgent]}
            message: "Paged: {paged}"
          - {level: 3, after: 50m, notify: page, page: {provider: oncall}}
        next_response:
          target: 2h
          steps:
            - {level: 1, after: 1h, notify: on_shift}
            - {level: 2, after: 3h, notify: page, page: {provider: webhook, priorities: [urgent]}}
      - priority: low
        exclude_types: []
        steps:
          - {level: 1, after: 1d, notify: user_group}
channels:
  - {id: C0PLUS001, name: plus-support, tier: Enterprise plus, close_reaction: ":lock:",
     waiting_reaction: speech_balloon}
"""


@pytest.fixture
def page_credentials(settings):
    settings.PAGE_CREDENTIALS = {"PAGERDUTY_ROUTING_KEY_TEAMS": "k" * 32, "ONCALL_WEBHOOK_URL": "https://x/y",
                                 "PAGE_WEBHOOK_URL": "https://x/z", "PAGE_WEBHOOK_SECRET": "s"}
    return settings


def test_lifecycle_keys_and_page_steps_import_and_round_trip(tmp_path, page_credentials):
    from escalation.models import NextResponseStep

    out = run("import", write(tmp_path, LIFECYCLE))
    assert "Note, on this server" not in out
    policy = SlaPolicy.objects.get(tier__name="Enterprise plus", priority="")
    assert (policy.max_total_snooze, policy.exclude_types, policy.next_response_target) == (
        timedelta(hours=4), ["feedback", "question"], timedelta(hours=2))
    paged = policy.steps.get(level=2)
    assert (paged.target_kind, paged.page_provider, paged.page_credential, paged.page_priorities,
            paged.message_template) == (
        "page", "pagerduty", "PAGERDUTY_ROUTING_KEY_TEAMS", ["high", "urgent"], "Paged: {paged}")
    oncall = policy.steps.get(level=3)
    assert (oncall.page_provider, oncall.page_credential) == ("oncall", "")
    later = list(NextResponseStep.objects.filter(policy=policy).order_by("level"))
    assert [(s.level, s.delay, s.target_kind, s.page_provider, s.page_priorities) for s in later] == [
        (1, timedelta(hours=1), "on_shift", "", []), (2, timedelta(hours=3), "page", "webhook", ["urgent"])]
    assert SlaPolicy.objects.get(tier__name="Enterprise plus", priority="low").exclude_types == []
    channel = WatchedChannel.objects.get(slack_channel_id="C0PLUS001")
    assert (channel.close_reaction, channel.waiting_reaction) == ("lock", "speech_balloon")

    exported = export()
    for key in ("max_total_snooze: 4h", "exclude_types: [feedback, question]", "next_response:", "target: 2h",
                "provider: pagerduty", "credential: PAGERDUTY_ROUTING_KEY_TEAMS",
                "priorities: [high, urgent]",
                "page: {provider: oncall}", "page: {provider: webhook, priorities: [urgent]}",
                "close_reaction: lock", "waiting_reaction: speech_balloon", "exclude_types: []"):
        assert key in exported, key
    wipe_configuration()
    run("import", write(tmp_path, exported, "exported.yaml"))
    assert export() == exported
    assert run("import", write(tmp_path, exported, "exported.yaml")).startswith("No changes")


def test_a_missing_policy_key_keeps_the_defaults_and_removing_a_ladder_deletes_it(tmp_path, page_credentials):
    from escalation.models import NextResponseStep

    run("import", write(tmp_path, LIFECYCLE))
    cut, resume = LIFECYCLE.index("        next_response:"), LIFECYCLE.index("      - priority: low")
    plain = LIFECYCLE[:cut] + LIFECYCLE[resume:]
    plain = plain.replace("        exclude_types: [feedback, question]\n", "")
    changes = run("import", write(tmp_path, plain, "plain.yaml"))
    assert "delete level 2 of next response of policy Enterprise plus (default)" in changes
    policy = SlaPolicy.objects.get(tier__name="Enterprise plus", priority="")
    assert policy.exclude_types == ["feedback"] and policy.next_response_target is None
    assert not NextResponseStep.objects.filter(policy=policy).exists()


def test_a_page_credential_not_set_here_is_imported_with_a_note_in_the_dry_run(tmp_path, settings):
    settings.PAGE_CREDENTIALS = {}
    dry = run("import", write(tmp_path, LIFECYCLE), "--dry-run")
    assert "Would change (dry run, nothing written):" in dry
    assert ("tiers[0].policies[0].steps[1].page.credential: PAGERDUTY_ROUTING_KEY_TEAMS is not set on this "
            "server") in dry
    assert "tiers[0].policies[0].next_response.steps[1].page.credential: PAGE_WEBHOOK_URL is not set" in dry
    assert not Tier.objects.filter(name="Enterprise plus").exists()


ON_SHIFT = "{level: 1, after: 1h, notify: on_shift}"


def one_policy(policy: str) -> str:
    """A file with one tier whose one policy is ``{<policy>}``."""
    return "tiers: [{name: A, policies: [{" + policy + "}]}]"


def one_step(step: str) -> str:
    return one_policy("steps: [{" + step + "}]")


LIFECYCLE_REFUSED = [
    (one_step("level: 1, after: 1h, notify: page"),
     "tiers[0].policies[0].steps[0].page: is required when notify is page"),
    (one_step("level: 1, after: 1h, notify: on_shift, page: {provider: oncall}"),
     "tiers[0].policies[0].steps[0].page: is only for notify: page"),
    (one_step("level: 1, after: 1h, notify: page, page: {provider: pager}"),
     'tiers[0].policies[0].steps[0].page.provider: "pager" is not one of: pagerduty, oncall, webhook'),
    (one_step("level: 1, after: 1h, notify: page, page: {provider: pagerduty, credential: SECRET_KEY}"),
     "tiers[0].policies[0].steps[0].page.credential: 'SECRET_KEY' is not a pagerduty credential setting"),
    (one_step("level: 1, after: 1h, notify: page, page: {provider: pagerduty, priorities: [critical]}"),
     "tiers[0].policies[0].steps[0].page.priorities: Priorities must be a list of: low, normal, high"),
    (one_step("level: 1, after: 1h, notify: page, page: {provider: pagerduty, route: x}"),
     "tiers[0].policies[0].steps[0].page.route: unknown key"),
    (one_policy(f"max_total_snooze: lots, steps: [{ON_SHIFT}]"),
     'tiers[0].policies[0].max_total_snooze: "lots" is not a duration'),
    (one_policy(f"exclude_types: feedback, steps: [{ON_SHIFT}]"),
     'tiers[0].policies[0].exclude_types: must be a list, like [feedback], not "feedback"'),
    (one_policy(f"next_response: {{target: 1h}}, steps: [{ON_SHIFT}]"),
     "tiers[0].policies[0].next_response.steps: is required: a next-response ladder needs at least one step"),
    (one_policy("next_response: {steps: [{level: 1, after: soon, notify: on_shift}]}, "
                f"steps: [{ON_SHIFT}]"),
     'tiers[0].policies[0].next_response.steps[0].after: "soon" is not a duration'),
    (one_policy("next_response: {steps: [{level: 1, after: 1h, notify: engineer, "
                f"engineer: ghost@example.com}}]}}, steps: [{ON_SHIFT}]"),
     'tiers[0].policies[0].next_response.steps[0].engineer: "ghost@example.com" is not an engineer'),
    ("tiers: [{name: A}]\nchannels: [{id: C1, name: one, tier: A, close_reaction: 'white check'}]",
     'channels[0].close_reaction: "white check" is not an emoji name'),
    ("tiers: [{name: A}]\n"
     "channels: [{id: C1, name: one, tier: A, close_reaction: eyes, waiting_reaction: eyes}]",
     "channels[0].waiting_reaction: must differ from close_reaction"),
]


@pytest.mark.parametrize(("text", "message"), LIFECYCLE_REFUSED,
                         ids=[m.split(": ")[0] for _, m in LIFECYCLE_REFUSED])
def test_bad_lifecycle_and_page_keys_are_refused_naming_the_key(tmp_path, page_credentials, text, message):
    before = export()
    with pytest.raises(CommandError) as refused:
        run("import", write(tmp_path, text))
    assert message in str(refused.value)
    assert export() == before
