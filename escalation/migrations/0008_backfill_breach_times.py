"""Give tickets armed before breach times existed the breach time they had under the old rule.

Their first-response target was, in effect, level 1: the breach time is level 1's due
time as armed (from the "armed" timeline entry; snoozes did not move the target), else
the row's current due time. Calendar clock, as every policy was.
"""

from datetime import datetime

from django.db import migrations


def backfill(apps, schema_editor):
    TicketSla = apps.get_model("escalation", "TicketSla")
    Escalation = apps.get_model("escalation", "Escalation")
    TicketEvent = apps.get_model("tickets", "TicketEvent")
    for sla in TicketSla.objects.filter(breach_at__isnull=True).select_related("ticket").iterator():
        first = Escalation.objects.filter(ticket_id=sla.ticket_id).order_by("level").first()
        if first is None:
            continue
        due = first.due_at
        armed = TicketEvent.objects.filter(ticket_id=sla.ticket_id, kind="armed").order_by("at", "id").first()
        levels = (armed.details or {}).get("levels") if armed is not None else None
        if isinstance(levels, dict) and levels.get(str(first.level)):
            try:
                due = datetime.fromisoformat(str(levels[str(first.level)]))
            except ValueError:
                pass
        sla.breach_at = due
        sla.first_response_target = due - sla.ticket.opened_at
        sla.save(update_fields=["breach_at", "first_response_target"])


class Migration(migrations.Migration):
    dependencies = [
        ("escalation", "0007_sla_clock_and_breach_time"),
        ("tickets", "0005_tier_hours_and_holidays"),
    ]
    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
