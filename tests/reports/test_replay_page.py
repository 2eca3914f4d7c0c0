"""The replay page: staff only, linked from the admin index; a bad file shows each problem by key;
a good one shows actual versus proposed and the tickets that would change."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from ops.sla_config.exporting import config_dump, config_export
from tests.reports.conftest import END
from tests.support.times import T0

pytestmark = pytest.mark.django_db


def _post(client, text, **extra):
    return client.post(reverse("reports:replay"), {
        "since": T0.date().isoformat(), "until": END.date().isoformat(), "policy_text": text, **extra})


def test_the_page_is_for_staff_and_linked_from_the_admin_index(staff_client):
    assert Client().get(reverse("reports:replay")).status_code == 302  # to the admin login
    assert reverse("reports:replay") in staff_client.get(reverse("admin:index")).content.decode()
    page = staff_client.get(reverse("reports:replay")).content.decode()
    assert 'name="policy_text"' in page and 'name="policy_file"' in page
    assert reverse("sla_config_download") in page


def test_todays_configuration_is_downloadable_by_staff_only(staff_client, history):
    assert Client().get(reverse("sla_config_download")).status_code == 302
    text = staff_client.get(reverse("sla_config_download")).content.decode()
    assert text == config_dump(config_export())
    assert "Enterprise test" in text


def test_a_bad_file_shows_every_problem_with_its_key(staff_client, history):
    bad = """tiers:
  - name: Enterprise test
    policies:
      - priority: ""
        steps:
          - {level: 1, after: 1x, notify: on_shift}
          - {level: 2, after: 5m, notify: nobody, colour: red}
"""
    page = _post(staff_client, bad).content.decode()
    assert "The file was refused (3 problem(s)" in page
    assert "tiers[0].policies[0].steps[0].after: &quot;1x&quot; is not a duration" in page
    assert "tiers[0].policies[0].steps[1].notify" in page
    assert "tiers[0].policies[0].steps[1].colour: unknown key" in page
    assert 'id="replay-result"' not in page
    assert "not valid YAML" in _post(staff_client, "tiers: [oops").content.decode()


def test_a_stricter_file_shows_actual_beside_proposed(staff_client, history):
    document = config_export()
    for tier in document["tiers"]:
        for policy in tier["policies"]:
            for step in policy["steps"]:
                step["after"] = "2m"
    page = _post(staff_client, config_dump(document)).content.decode()
    assert "7 tickets replayed," in page
    assert 'id="replay-figures"' in page and "Level 4 fired" in page  # only the proposal reaches level 4
    assert "Alice" in page and 'id="replay-changed"' in page
    uploaded = staff_client.post(reverse("reports:replay"), {
        "since": T0.date().isoformat(), "until": END.date().isoformat(), "policy_text": "",
        "policy_file": _file(config_dump(config_export()))}).content.decode()
    assert "7 tickets replayed,\n    0 would change" in uploaded


def _file(text):
    return SimpleUploadedFile("proposed.yaml", text.encode(), content_type="application/x-yaml")
