"""Give every ticket armed before response cycles existed its first-response cycle (number 1):
from its opening, with its first-response target and breach time, and its response if it had
one. Its levels are already cycle 1 (the field's default), so their outbox keys stay valid.
Written in batches: a large ticket table migrates in bounded memory.
"""

from django.db import migrations

BATCH = 2000


def first_cycles(apps, schema_editor):
    TicketSla = apps.get_model("escalation", "TicketSla")
    TicketCycle = apps.get_model("escalation", "TicketCycle")
    Escalation = apps.get_model("escalation", "Escalation")
    armed = set(Escalation.objects.values_list("ticket_id", flat=True).distinct())
    batch = []
    slas = TicketSla.objects.select_related("ticket").order_by("pk")
    for sla in slas.iterator(chunk_size=BATCH):
        ticket = sla.ticket
        if ticket.pk not in armed:
            continue
        batch.append(TicketCycle(
            ticket_id=ticket.pk, number=1, kind="first", started_at=ticket.opened_at,
            started_by=ticket.author_slack_id or "system", target=sla.first_response_target,
            breach_at=sla.breach_at, responded_at=ticket.responded_at,
            response_path=ticket.response_path or "", responded_by=ticket.responded_by or "",
        ))
        if len(batch) >= BATCH:
            TicketCycle.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    TicketCycle.objects.bulk_create(batch, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [
        ("escalation", "0010_response_cycles_pauses_next_response"),
    ]
    operations = [migrations.RunPython(first_cycles, migrations.RunPython.noop)]
