"""deploy/: the Prometheus alerting rules and the Grafana dashboard name only series that /metrics
serves (with labels it uses), and docker-compose.yml and the README point at them."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from calendars.factories import CalendarSourceFactory
from escalation.models import Escalation
from ops.heartbeat import heartbeat_record
from ops.metrics import render_metrics
from slackbot.models import SlackInbound
from tickets.factories import TicketFactory, TierFactory, WatchedChannelFactory

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy/prometheus/alerts.yml"
PROMETHEUS = ROOT / "deploy/prometheus/prometheus.yml"
DASHBOARD = ROOT / "deploy/grafana/dashboards/slabuddy.json"
REQUIRED_ALERTS = {
    "SlaBuddyLevelsOverdue", "SlaBuddyHeartbeatStale", "SlaBuddySlackErrors",
    "SlaBuddySweeperCatchesRising", "SlaBuddyCalendarStale",
}
SELECTOR = re.compile(r"\b(slabuddy_[a-z0-9_]+)(?:\{([^}]*)\})?")
MATCHER = re.compile(r'(\w+)\s*(=~|!=|!~|=)\s*"([^"]*)"')


@pytest.fixture
def series(db) -> dict[str, dict[str, set[str]]]:
    """Every series name /metrics serves, with the values seen for each label (one of everything)."""
    now = datetime.now(UTC)
    channel = WatchedChannelFactory(tier=TierFactory(name="Gold"))
    answered = TicketFactory(channel=channel, opened_at=now - timedelta(hours=1), state="responded",
                             responded_at=now - timedelta(minutes=30), response_path="slack_thread")
    waiting = TicketFactory(channel=channel, opened_at=now - timedelta(hours=1))
    for level, state, extra in ((1, "fired", {"fired_via": "sweeper"}), (2, "failed", {"last_error": "x"}),
                                (3, "pending", {})):
        Escalation.objects.create(ticket=waiting, level=level, target_kind="on_shift", state=state,
                                  due_at=waiting.opened_at + timedelta(minutes=level), **extra)
    Escalation.objects.create(ticket=answered, level=1, target_kind="on_shift", state="cancelled",
                              due_at=answered.opened_at + timedelta(hours=2))
    heartbeat_record()
    CalendarSourceFactory(name="Shifts", last_success_at=now - timedelta(days=1))
    SlackInbound.objects.create(key="Ev1", kind="event", payload={}, received_at=now)
    text, _ = render_metrics(now)
    found: dict[str, dict[str, set[str]]] = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            labels = found.setdefault(sample.name, {})
            for name, value in sample.labels.items():
                if name != "le":
                    labels.setdefault(name, set()).add(value)
    return found


def expressions_name_served_series(exprs: list[str], series: dict[str, dict[str, set[str]]]) -> None:
    for expr in exprs:
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), expr
        selectors = SELECTOR.findall(expr)
        assert selectors or "up{" in expr, f"no SLA Buddy series in {expr}"
        for name, matchers in selectors:
            assert name in series, f"{name} (in {expr}) is not served by /metrics"
            for label, op, value in MATCHER.findall(matchers):
                assert label in series[name], f"{name} has no label {label} (in {expr})"
                if op == "=":
                    assert value in series[name][label], f'{name}{{{label}="{value}"}} never appears'


def test_alerting_rules_cover_what_operators_expect_and_name_served_series(series):
    rules = [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]
    names = [rule["alert"] for rule in rules]
    assert REQUIRED_ALERTS <= set(names) and len(names) == len(set(names))
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), rule["alert"]
    expressions_name_served_series([rule["expr"] for rule in rules], series)


def test_the_grafana_dashboard_names_served_series(series):
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] == "SLA Buddy"
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource"]
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(exprs) >= 10
    assert all(panel["datasource"]["uid"] == "${datasource}" for panel in dashboard["panels"])
    expressions_name_served_series(exprs, series)


def test_compose_prometheus_and_readme_point_at_the_files():
    prometheus = yaml.safe_load(PROMETHEUS.read_text())
    [job] = prometheus["scrape_configs"]
    assert job["job_name"] == "slabuddy" and job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["web:8000"]
    assert 'up{job="slabuddy"}' in ALERTS.read_text()
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    mounts = {}
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"]  # optional: `--profile monitoring`
        for volume in services[name]["volumes"]:
            source, target, *_ = volume.split(":")
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
                mounts[source] = target
    assert mounts["./deploy/prometheus/alerts.yml"] in prometheus["rule_files"]
    assert mounts["./deploy/prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/slabuddy.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == mounts["./deploy/grafana/dashboards"]
    readme = (ROOT / "README.md").read_text()
    for path in ("deploy/prometheus/alerts.yml", "deploy/grafana/dashboards/slabuddy.json",
                 "docs/SCALING.md"):
        assert path in readme, f"README.md does not mention {path}"
