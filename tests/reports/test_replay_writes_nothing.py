"""A replay only reads: no row of any table changes and Slack is not called, from the command line
or the service."""

import json

import pytest
from django.apps import apps
from django.core.management import call_command

from ops.sla_config.exporting import config_dump, config_export
from reports.replay.policy_file import policy_file_read
from reports.replay.running import replay_run
from tests.reports.conftest import END
from tests.support.times import T0

pytestmark = pytest.mark.django_db


def _dump() -> dict[str, list]:
    """Every row of every table the project's models own."""
    return {
        model._meta.label: list(model._base_manager.order_by("pk").values())
        for model in apps.get_models()
        if model._meta.managed and not model._meta.proxy
    }


def test_a_replay_changes_no_row_and_calls_no_slack(history, fake_slack, tmp_path, capsys):
    proposed = config_export()
    for tier in proposed["tiers"]:
        for policy in tier.get("policies", []):
            for step in policy["steps"]:
                step["after"] = "1m"  # much stricter: many more levels would fire
    policy_file = tmp_path / "proposed.yaml"
    policy_file.write_text(config_dump(proposed))
    before, calls = _dump(), len(fake_slack.calls())
    assert sum(len(rows) for rows in before.values()) > 50  # the history is there to be changed
    report = replay_run(since=T0, until=END, config=policy_file_read(policy_file.read_text()), now=END)
    assert report.changed  # the replay did real work
    call_command("sla_replay", "--since", T0.isoformat(), "--until", END.isoformat(),
                 "--policy-file", str(policy_file), "--format", "json")
    printed = json.loads(capsys.readouterr().out)
    assert printed["tickets"] == 7 and printed["changed"]
    assert _dump() == before
    assert len(fake_slack.calls()) == calls
