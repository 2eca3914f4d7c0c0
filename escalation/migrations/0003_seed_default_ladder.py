"""Seed the default escalation ladder of SPEC.md (editable in the admin)."""

from datetime import timedelta

from django.db import migrations

TARGETS = ("on_shift_not_embedded", "on_shift", "user_group", "head_of_success")
LADDERS = {
    "Enterprise": [timedelta(minutes=m) for m in (10, 20, 35, 50)],
    "Teams": [timedelta(hours=h) for h in (1, 3, 6, 12)],
}


def seed(apps, schema_editor):
    Tier = apps.get_model("escalation", "Tier")
    SlaPolicy = apps.get_model("escalation", "SlaPolicy")
    EscalationStep = apps.get_model("escalation", "EscalationStep")
    for tier_name, delays in LADDERS.items():
        tier, _ = Tier.objects.get_or_create(name=tier_name)
        policy, created = SlaPolicy.objects.get_or_create(
            tier=tier, priority="", defaults={"name": f"{tier_name} default", "snooze_minutes": 30}
        )
        if not created:
            continue
        for level, (delay, kind) in enumerate(zip(delays, TARGETS, strict=True), start=1):
            EscalationStep.objects.create(
                policy=policy, level=level, delay=delay, target_kind=kind
            )


class Migration(migrations.Migration):
    dependencies = [("escalation", "0002_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
