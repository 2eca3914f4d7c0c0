"""``sla_replay``: a refused file names each problem by key; ranges and tiers select the tickets."""

import json

import pytest
from django.core.management import CommandError, call_command

from ops.sla_config.exporting import config_dump, config_export
from tests.reports.conftest import END
from tests.support.times import T0

pytestmark = pytest.mark.django_db


def _run(capsys, *args):
    call_command("sla_replay", *args)
    return capsys.readouterr().out


def test_a_bad_file_is_refused_with_every_problem(tmp_path, db):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tiers:\n  - name: Enterprise\n    policies:\n"
                   "      - steps: [{level: 1, after: 1x, notify: x}]\n")
    with pytest.raises(CommandError) as refused:
        call_command("sla_replay", "--since", "2026-03-01", "--until", "2026-04-01",
                     "--policy-file", str(bad))
    message = str(refused.value)
    assert 'tiers[0].policies[0].steps[0].after: "1x" is not a duration' in message
    assert "tiers[0].policies[0].steps[0].notify" in message
    with pytest.raises(CommandError, match="--until must be after --since"):
        call_command("sla_replay", "--since", "2026-04-01", "--until", "2026-03-01",
                     "--policy-file", str(bad))


def test_the_range_and_the_tier_choose_the_tickets(history, tmp_path, capsys):
    proposed = tmp_path / "same.yaml"
    proposed.write_text(config_dump(config_export()))
    every = json.loads(_run(capsys, "--since", T0.isoformat(), "--until", END.isoformat(),
                            "--policy-file", str(proposed)))
    assert every["tickets"] == 7 and every["tiers_in_proposal"]
    first_three = json.loads(_run(capsys, "--since", T0.isoformat(), "--until", "2026-03-02T09:03:00+00:00",
                                  "--policy-file", str(proposed)))
    assert first_three["tickets"] == 3
    other_tier = json.loads(_run(capsys, "--since", T0.isoformat(), "--until", END.isoformat(),
                                 "--policy-file", str(proposed), "--tier", "Teams"))
    assert other_tier["tickets"] == 0
    text = _run(capsys, "--since", T0.isoformat(), "--until", END.isoformat(), "--policy-file", str(proposed),
                "--format", "text")
    assert "7 tickets replayed" in text and text.startswith("actual: levels fired")
