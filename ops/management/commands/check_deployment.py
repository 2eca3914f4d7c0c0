"""Check a deployment and explain every problem found.

``python manage.py check_deployment`` prints one line per check (ok, WARNING,
PROBLEM) with what to do about it, and exits with status 1 when there is at
least one PROBLEM. Slack is asked (auth.test, conversations.info) unless
``--offline``; nothing is changed anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django_celery_beat.models import PeriodicTask
from slack_sdk.errors import SlackApiError

from base.slack_api import slack_client
from calendars.models import CalendarSource, Engineer, Role
from calendars.targets import TargetKind
from escalation.clock import ClockKind
from escalation.models import EscalationStep, NextResponseStep, SlaPolicy, step_page_errors
from ops import health
from ops.schedules import default_schedules
from tickets.models import WatchedChannel

# What SLA Buddy needs from its Slack app; see the app manifest in the README.
REQUIRED_SCOPES = (
    "app_mentions:read", "channels:history", "channels:read", "chat:write",
    "commands", "users:read", "users:read.email",  # /sla, its modals, /sla add-engineer
    "reactions:read",  # close and waiting-on-customer reactions
)
# Needed only for private channels.
PRIVATE_CHANNEL_SCOPES = ("groups:history", "groups:read")

def _ladder(step: EscalationStep | NextResponseStep) -> str:
    return f"{step.policy} next response" if isinstance(step, NextResponseStep) else str(step.policy)


OK, WARNING, PROBLEM = "ok", "WARNING", "PROBLEM"


@dataclass
class Finding:
    severity: str
    topic: str
    text: str


class Checker:
    def __init__(self, *, offline: bool):
        self.offline = offline
        self.findings: list[Finding] = []

    def add(self, severity: str, topic: str, text: str) -> None:
        self.findings.append(Finding(severity, topic, text))

    # -- each check ----------------------------------------------------------
    def settings_mode(self) -> None:
        if settings.PRODUCTION:
            self.add(OK, "settings", "SLABUDDY_MODE=production (HTTPS-only cookies, HSTS, secrets required).")
            if not settings.METRICS_TOKEN:
                self.add(
                    WARNING,
                    "settings",
                    "METRICS_TOKEN is not set: /metrics answers staff sessions only, "
                    "so Prometheus cannot scrape it. Set METRICS_TOKEN.",
                )
            if not settings.FLOWER_BASIC_AUTH:
                self.add(
                    WARNING,
                    "settings",
                    "FLOWER_BASIC_AUTH is not set: Flower would refuse to start "
                    "in docker compose. Set it to user:password.",
                )
        else:
            self.add(
                WARNING,
                "settings",
                "SLABUDDY_MODE=dev: fine on a laptop, not for a team deployment "
                "(set SLABUDDY_MODE=production, SECRET_KEY, ALLOWED_HOSTS).",
            )
            if settings.DEMO_MODE:
                self.add(
                    WARNING,
                    "settings",
                    "No SLACK_BOT_TOKEN: demo mode, the bot talks to the built-in "
                    "stand-in Slack, not to your workspace.",
                )
        if settings.DATABASE_IS_SQLITE and settings.PRODUCTION:
            self.add(WARNING, "settings", "DATABASE_URL is SQLite: use PostgreSQL for a team deployment.")
        if settings.BROKER_IS_FILESYSTEM and settings.PRODUCTION:
            self.add(
                WARNING,
                "settings",
                "CELERY_BROKER_URL is the embedded filesystem broker: "
                "use Redis when workers run on more than one machine.",
            )

    def infrastructure(self) -> bool:
        database = health.check_database()
        self.add(
            OK if database["ok"] else PROBLEM,
            "database",
            database["detail"] + ("" if database["ok"] else ": check DATABASE_URL and that the server runs."),
        )
        if not database["ok"]:
            return False
        executor = MigrationExecutor(connection)
        unapplied = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if unapplied:
            self.add(
                PROBLEM,
                "database",
                f"{len(unapplied)} migration(s) not applied: run `python manage.py migrate`.",
            )
            return False
        broker = health.check_broker()
        self.add(
            OK if broker["ok"] else PROBLEM,
            "broker",
            broker["detail"] + ("" if broker["ok"] else ": check CELERY_BROKER_URL and that Redis runs."),
        )
        return True

    def schedules(self) -> None:
        wanted = {s.name for s in default_schedules()}
        enabled = set(
            PeriodicTask.objects.filter(name__in=wanted, enabled=True).values_list("name", flat=True)
        )
        missing = sorted(wanted - enabled)
        if missing:
            self.add(
                PROBLEM,
                "beat",
                "periodic jobs missing or disabled: "
                + ", ".join(missing)
                + ". Run `python manage.py ensure_schedules` or enable them in the admin.",
            )
        else:
            self.add(OK, "beat", f"{len(wanted)} periodic jobs scheduled.")
        beat = health.check_beat()
        self.add(OK if beat["ok"] else PROBLEM, "beat", beat["detail"])

    def roster(self) -> None:
        support = Engineer.objects.filter(active=True, role=Role.SUPPORT_ENGINEER)
        with_slack = support.exclude(slack_user_id__isnull=True).count()
        without = support.filter(slack_user_id__isnull=True).count()
        if not with_slack:
            self.add(
                PROBLEM,
                "roster",
                "no active support engineer with a Slack user id: levels 1 and 2 "
                "reach nobody. Add engineers under Calendars > Engineers.",
            )
        else:
            self.add(OK, "roster", f"{with_slack} active support engineer(s).")
        if without:
            self.add(
                WARNING,
                "roster",
                f"{without} active support engineer(s) without a Slack user id can never be mentioned.",
            )
        heads = Engineer.objects.filter(active=True, role=Role.HEAD_OF_SUCCESS).exclude(
            slack_user_id__isnull=True
        )
        if not heads.exists():
            self.add(
                PROBLEM,
                "roster",
                "no head of success (active, with a Slack user id): the last level "
                "has nobody to notify. Add one with role 'Head of success'.",
            )
        else:
            self.add(OK, "roster", "head of success: " + ", ".join(h.name for h in heads))

    def policies(self) -> None:
        needs_group = EscalationStep.objects.filter(
            policy__active=True, target_kind=TargetKind.USER_GROUP, target_ref=""
        ).count()
        if needs_group and not settings.SLACK_SUPPORT_USERGROUP_ID:
            self.add(
                PROBLEM,
                "policies",
                f"{needs_group} user-group step(s) name no group and "
                "SLACK_SUPPORT_USERGROUP_ID is not set: those levels fall through "
                "to the head of success. Set it to the support group's id (S…).",
            )
        elif needs_group:
            self.add(
                OK,
                "policies",
                f"user-group steps use SLACK_SUPPORT_USERGROUP_ID={settings.SLACK_SUPPORT_USERGROUP_ID}.",
            )
        pages = [
            *EscalationStep.objects.filter(policy__active=True, target_kind=TargetKind.PAGE)
            .select_related("policy__tier").order_by("policy_id", "level"),
            *NextResponseStep.objects.filter(policy__active=True, target_kind=TargetKind.PAGE)
            .select_related("policy__tier").order_by("policy_id", "level"),
        ]
        for step in pages:
            errors = step_page_errors(target_kind=step.target_kind, provider=step.page_provider,
                                      credential=step.page_credential, priorities=step.page_priorities)
            if errors:
                self.add(
                    PROBLEM,
                    "policies",
                    f"{_ladder(step)} level {step.level} cannot page: {' '.join(errors.values())} "
                    "Such a level tells the head of success in the thread instead.",
                )
            else:
                pager = step.get_page_provider_display()
                self.add(OK, "policies", f"{_ladder(step)} level {step.level} pages {pager}.")
        # A business clock over a tier without hours or holidays counts every minute, like a calendar one.
        around_the_clock = SlaPolicy.objects.filter(
            active=True, clock=ClockKind.BUSINESS, tier__business_hours__isnull=True,
            tier__holiday_country="", tier__holiday_calendar__isnull=True, tier__holidays__isnull=True,
        ).select_related("tier")
        for policy in around_the_clock:
            self.add(
                WARNING,
                "policies",
                f"{policy} counts business hours, but tier {policy.tier} has neither business hours nor "
                "holidays: it counts every minute. Set the tier's hours (admin or sla_config).",
            )

    def calendars(self) -> None:
        status = health.check_calendars()
        if status.get("status") == "not configured":
            self.add(
                WARNING,
                "calendars",
                "no calendar sources: every active support engineer counts as "
                "on shift and nobody as embedded. Add a shift calendar in the admin.",
            )
        elif not status["ok"]:
            self.add(
                PROBLEM,
                "calendars",
                status["detail"] + " — the roster may be out of date; see the "
                "source's last error in the admin.",
            )
        else:
            self.add(OK, "calendars", status["detail"])
        for source in CalendarSource.objects.filter(active=True).exclude(sync_warnings="").order_by("name"):
            self.add(
                WARNING,
                "calendars",
                f"“{source.name}”: the last sync skipped what it could not read, keeping its last good "
                f"data: {'; '.join(source.sync_warnings.splitlines())} Fix the event in the calendar.",
            )

    def channels_and_slack(self) -> None:
        channels = list(WatchedChannel.objects.filter(active=True).select_related("tier"))
        if not channels:
            self.add(
                WARNING,
                "channels",
                "no active watched channel: no ticket will ever be seen. "
                "Add one under Tickets > Watched channels.",
            )
        for channel in channels:
            if not channel.tier.policies.filter(active=True).exists():
                self.add(
                    PROBLEM,
                    "channels",
                    f"{channel} is tier {channel.tier}, which has no active SLA "
                    "policy: its tickets are never escalated.",
                )
        if not settings.SLACK_BOT_TOKEN:
            if not settings.DEMO_MODE:
                self.add(PROBLEM, "slack", "SLACK_BOT_TOKEN is not set.")
            return
        if not settings.SLACK_SIGNING_SECRET:
            self.add(PROBLEM, "slack", "SLACK_SIGNING_SECRET is not set: events from Slack are refused.")
        if self.offline:
            self.add(WARNING, "slack", "--offline: Slack token, scopes and channel membership not checked.")
            return
        client = slack_client()
        try:
            auth = client.auth_test()
        except SlackApiError as exc:
            error = exc.response.get("error", "unknown error")
            self.add(
                PROBLEM,
                "slack",
                f"auth.test failed: {error}. The bot token is wrong, revoked or "
                "for another workspace: reinstall the app and copy its xoxb- token.",
            )
            return
        except Exception as exc:
            self.add(
                WARNING,
                "slack",
                f"Slack unreachable ({type(exc).__name__}) at "
                f"{settings.SLACK_API_BASE_URL}: token and channels not checked.",
            )
            return
        self.add(
            OK, "slack", f"token valid: bot {auth.get('user')} ({auth.get('user_id')}) in {auth.get('team')}."
        )
        header = next((v for k, v in (auth.headers or {}).items() if k.lower() == "x-oauth-scopes"), None)
        if header is None:
            self.add(WARNING, "slack", "Slack did not report the token's scopes; not checked.")
        else:
            scopes = {s.strip() for s in header.split(",") if s.strip()}
            missing = [s for s in REQUIRED_SCOPES if s not in scopes]
            if missing:
                self.add(
                    PROBLEM,
                    "slack",
                    "the bot token lacks scope(s) "
                    + ", ".join(missing)
                    + ": add them to the Slack app and reinstall it.",
                )
            else:
                self.add(OK, "slack", "required scopes granted.")
            private = [s for s in PRIVATE_CHANNEL_SCOPES if s not in scopes]
            if private:
                self.add(
                    WARNING, "slack", "without " + ", ".join(private) + " private channels cannot be watched."
                )
        for channel in channels:
            try:
                info = client.conversations_info(channel=channel.slack_channel_id)["channel"]
            except SlackApiError as exc:
                error = exc.response.get("error", "unknown error")
                self.add(
                    PROBLEM,
                    "channels",
                    f"{channel} ({channel.slack_channel_id}): {error}. Check the "
                    "channel id; for a private channel, invite the bot first.",
                )
                continue
            except Exception as exc:
                self.add(WARNING, "channels", f"{channel}: not checked ({type(exc).__name__}).")
                continue
            if info.get("is_archived"):
                self.add(PROBLEM, "channels", f"{channel} is archived: no ticket can arrive there.")
            elif not info.get("is_member"):
                self.add(
                    PROBLEM,
                    "channels",
                    f"the bot is not in {channel}: it cannot read tickets or "
                    f"post escalations. In Slack, `/invite @<bot>` in #{channel.name}.",
                )
            else:
                self.add(OK, "channels", f"bot is in {channel}.")

    def run(self) -> list[Finding]:
        self.settings_mode()
        if self.infrastructure():
            self.schedules()
            self.roster()
            self.policies()
            self.calendars()
            self.channels_and_slack()
        return self.findings


class Command(BaseCommand):
    help = "Check this deployment (settings, services, beat, roster, calendars, Slack) and explain problems."

    def add_arguments(self, parser):
        parser.add_argument("--offline", action="store_true", help="Do not call Slack.")
        parser.add_argument("--quiet", action="store_true", help="Print only warnings and problems.")

    def handle(self, *args, offline: bool, quiet: bool, **options):
        findings = Checker(offline=offline).run()
        style = {OK: self.style.SUCCESS, WARNING: self.style.WARNING, PROBLEM: self.style.ERROR}
        for finding in findings:
            if quiet and finding.severity == OK:
                continue
            self.stdout.write(
                style[finding.severity](f"{finding.severity:<8} {finding.topic:<10} {finding.text}")
            )
        problems = sum(f.severity == PROBLEM for f in findings)
        warnings = sum(f.severity == WARNING for f in findings)
        self.stdout.write(f"{problems} problem(s), {warnings} warning(s).")
        if problems:
            raise SystemExit(1)
