"""``manage.py check_deployment`` against the fake Slack Web API."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from base.fake_slack import FakeSlack
from calendars.factories import EngineerFactory
from calendars.models import CalendarSource, Role
from escalation.factories import EscalationStepFactory, SlaPolicyFactory
from escalation.models import EscalationStep, SlaPolicy
from ops.heartbeat import heartbeat_record
from tickets.factories import WatchedChannelFactory
from tickets.models import Tier

pytestmark = pytest.mark.django_db


def _tier(name: str) -> Tier:
    """A tier with an active policy whose level 3 is the user group (not relying on seeded rows,
    which a transactional test earlier in the run may have flushed)."""
    tier, _ = Tier.objects.get_or_create(name=name)
    policy, created = SlaPolicy.objects.get_or_create(tier=tier, priority="", defaults={"active": True})
    if created:
        for level, kind in enumerate(("on_shift", "user_group", "head_of_success"), start=1):
            EscalationStep.objects.create(
                policy=policy, level=level, delay=timedelta(minutes=10 * level), target_kind=kind
            )
    return tier


@pytest.fixture
def fake_slack(settings):
    with FakeSlack() as fake:
        settings.SLACK_BOT_TOKEN = "xoxb-check-deployment"
        settings.SLACK_SIGNING_SECRET = "signing-secret"
        settings.SLACK_API_BASE_URL = fake.base_url
        settings.DEMO_MODE = False
        yield fake


def _run(*args) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("check_deployment", *args, stdout=out)
    except SystemExit as exc:
        return int(exc.code), out.getvalue()
    return 0, out.getvalue()


def _lines(output: str, severity: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(severity)]


@pytest.fixture
def healthy(settings, fake_slack):
    settings.SLACK_SUPPORT_USERGROUP_ID = "S0SUPPORT1"
    EngineerFactory(name="Alice")
    EngineerFactory(name="Hana Head", role=Role.HEAD_OF_SUCCESS)
    channel = WatchedChannelFactory(
        slack_channel_id="CGOOD0001", name="support-acme", tier=_tier("Enterprise")
    )
    fake_slack.state.channels["CGOOD0001"] = {"id": "CGOOD0001", "name": "support-acme", "is_member": True}
    call_command("ensure_schedules", stdout=StringIO())
    heartbeat_record()
    return channel


def test_a_healthy_deployment_has_no_problem(healthy, fake_slack):
    status, output = _run()
    assert status == 0, output
    assert _lines(output, "PROBLEM") == []
    assert "token valid: bot slabuddy (UFAKEBOT01)" in output
    assert "required scopes granted" in output
    assert "bot is in #support-acme" in output
    assert "SLABUDDY_MODE=dev" in output  # a warning, not a problem
    assert fake_slack.call_counts()["auth.test"] == 1
    assert fake_slack.call_counts()["conversations.info"] == 1
    assert fake_slack.call_counts()["chat.postMessage"] == 0  # it changes nothing


def test_every_problem_is_explained(settings, fake_slack):
    settings.SLACK_SUPPORT_USERGROUP_ID = ""
    fake_slack.scopes = ["channels:read", "app_mentions:read"]
    WatchedChannelFactory(slack_channel_id="COUT00001", name="support-out", tier=_tier("Teams"))
    fake_slack.state.channels["COUT00001"] = {"id": "COUT00001", "name": "support-out", "is_member": False}
    WatchedChannelFactory(slack_channel_id="CGONE0001", name="support-gone", tier=_tier("Teams"))
    WatchedChannelFactory(name="support-nopolicy", tier=Tier.objects.create(name="Bronze"))
    EngineerFactory(name="No Slack", slack_user_id=None)

    status, output = _run()
    problems = "\n".join(_lines(output, "PROBLEM"))
    assert status == 1, output
    assert "lacks scope(s) channels:history, chat:write" in problems
    assert "the bot is not in #support-out" in problems and "/invite" in problems
    assert "#support-gone (CGONE0001): channel_not_found" in problems
    assert "tier Bronze, which has no active SLA policy" in problems
    assert "no active support engineer with a Slack user id" in problems
    assert "no head of success" in problems
    assert "SLACK_SUPPORT_USERGROUP_ID is not set" in problems
    assert "periodic jobs missing" in problems and "ensure_schedules" in problems
    assert "no heartbeat yet" in problems
    warnings = "\n".join(_lines(output, "WARNING"))
    assert "without a Slack user id" in warnings
    assert "no calendar sources" in warnings or "calendars" in problems
    assert "private channels" in warnings
    assert output.strip().splitlines()[-1].endswith("warning(s).")


def test_a_rejected_token_is_explained(healthy, fake_slack):
    fake_slack.fail_next("auth.test", error="invalid_auth")
    status, output = _run()
    assert status == 1
    assert "auth.test failed: invalid_auth" in output and "reinstall" in output


def test_unreachable_slack_is_a_warning_not_a_crash(healthy, settings):
    settings.SLACK_API_BASE_URL = "http://127.0.0.1:9/api/"
    settings.SLACK_TIMEOUT_SECONDS = 2
    status, output = _run()
    assert status == 0, output
    assert "Slack unreachable" in output


def test_offline_does_not_call_slack(healthy, fake_slack):
    status, output = _run("--offline", "--quiet")
    assert status == 0, output
    assert fake_slack.calls() == []
    assert "ok " not in output


def test_stale_calendars_are_a_problem(healthy):
    CalendarSource.objects.create(
        name="Support rota", kind="ical", purpose="shifts", ical_url="https://example.com/a.ics",
        last_success_at=datetime.now(UTC) - timedelta(days=1),
    )
    status, output = _run("--offline")
    assert status == 1
    assert "Support rota" in "\n".join(_lines(output, "PROBLEM"))


def test_production_settings_without_metrics_token_or_flower_auth_are_warned(healthy, settings):
    settings.PRODUCTION = True
    settings.METRICS_TOKEN = ""
    settings.FLOWER_BASIC_AUTH = ""
    status, output = _run("--offline")
    warnings = "\n".join(_lines(output, "WARNING"))
    assert "SLABUDDY_MODE=production" in output
    assert "METRICS_TOKEN is not set" in warnings
    assert "FLOWER_BASIC_AUTH is not set" in warnings
    if settings.DATABASE_IS_SQLITE:
        assert "DATABASE_URL is SQLite" in warnings


def test_slash_command_scopes_and_page_credentials_are_checked(healthy, settings, fake_slack):
    fake_slack.scopes = [s for s in fake_slack.scopes if s not in ("commands", "users:read.email")]
    policy = SlaPolicyFactory(tier=_tier("Enterprise"), priority="urgent")
    EscalationStepFactory(policy=policy, level=1, target_kind="page", page_provider="pagerduty",
                          page_credential="PAGERDUTY_ROUTING_KEY_EU")
    settings.PAGE_CREDENTIALS = {}
    status, output = _run()
    problems = "\n".join(_lines(output, "PROBLEM"))
    assert status == 1
    assert "lacks scope(s) commands, users:read.email" in problems
    assert "level 1 cannot page: PAGERDUTY_ROUTING_KEY_EU is not set on this server" in problems
    settings.PAGE_CREDENTIALS = {"PAGERDUTY_ROUTING_KEY_EU": "R0ut1ngKeyForTests0000000000000c"}
    fake_slack.scopes += ["commands", "users:read.email"]
    status, output = _run()
    assert status == 0, output
    assert "level 1 pages PagerDuty" in output


def test_a_business_clock_without_hours_is_warned(healthy):
    teams = SlaPolicy.objects.get(tier__name="Teams", priority="")
    teams.clock = "business"
    teams.save()
    status, output = _run("--offline")
    assert status == 0
    assert any("Teams default counts business hours, but tier Teams has neither business hours nor holidays"
               in line for line in _lines(output, "WARNING"))
    Tier.objects.filter(name="Teams").update(business_hours={"mon-fri": ["09:00-18:00"]})
    assert "counts business hours" not in _run("--offline")[1]
