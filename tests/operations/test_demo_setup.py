"""Demo mode's seed data: idempotent, and its ladder ends with a page of the stand-in PagerDuty."""

from datetime import timedelta

import pytest

from escalation.models import EscalationStep
from ops.demo.setup import DEMO_PAGE_LEVEL, demo_setup

pytestmark = pytest.mark.django_db


def test_the_demo_ladder_pages_for_urgent_and_high_tickets_once_however_often_it_is_seeded():
    channel = demo_setup()
    EscalationStep.objects.filter(policy__tier=channel.tier, level=DEMO_PAGE_LEVEL).delete()  # an older demo
    demo_setup()
    demo_setup()
    steps = EscalationStep.objects.filter(policy__tier=channel.tier).order_by("level")
    assert [(s.level, s.target_kind) for s in steps] == [
        (1, "on_shift_not_embedded"), (2, "on_shift"), (3, "user_group"), (4, "head_of_success"), (5, "page")]
    page = steps.get(level=DEMO_PAGE_LEVEL)
    assert (page.delay, page.page_provider, page.page_priorities) == (
        timedelta(seconds=45), "pagerduty", ["high", "urgent"])
