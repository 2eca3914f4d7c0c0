"""Levels of next-response cycles were saved with their next-response step's id in
``Escalation.step``, which refers to first-response steps: a wrong step, or (on PostgreSQL) a
failed commit. Such levels now refer to no step; their snapshot fields are what they use."""

from django.db import migrations


def unlink(apps, schema_editor):
    Escalation = apps.get_model("escalation", "Escalation")
    Escalation.objects.filter(cycle__gt=1, step__isnull=False).update(step=None)


class Migration(migrations.Migration):
    dependencies = [("escalation", "0011_first_response_cycles_for_armed_tickets")]

    operations = [migrations.RunPython(unlink, migrations.RunPython.noop)]
