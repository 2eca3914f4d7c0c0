"""The engine keeps a full copy of the policy per ticket, and posts through the shared outbox.

- ``Tier`` now belongs to tickets (state only; see tickets 0003).
- Each level copies its step's engineer and message template; ``TicketSla``
  copies the policy's name and snooze minutes. Existing tickets get them from
  their policy and steps as they are at migration time (the best record there is).
- Every ``OutgoingMessage`` row is copied into ``base.OutboxMessage`` under its
  key, then the old table is dropped.
"""

import django.db.models.deletion
from django.db import migrations, models


def snapshot_existing(apps, schema_editor):
    Ticket = apps.get_model("tickets", "Ticket")
    TicketSla = apps.get_model("escalation", "TicketSla")
    TicketEvent = apps.get_model("tickets", "TicketEvent")
    Escalation = apps.get_model("escalation", "Escalation")
    for ticket in Ticket.objects.filter(policy__isnull=False).select_related("policy__tier").iterator():
        policy = ticket.policy
        label = "default" if not policy.priority else policy.priority.capitalize()
        armed = (
            TicketEvent.objects.filter(ticket=ticket, kind="armed").order_by("at").values_list("at", flat=True)
            .first()
        )
        TicketSla.objects.get_or_create(
            ticket=ticket,
            defaults={
                "policy": policy,
                "policy_name": policy.name or f"{policy.tier.name} ({label})",
                "snooze_minutes": policy.snooze_minutes,
                "armed_at": armed or ticket.opened_at,
            },
        )
    for row in Escalation.objects.filter(step__isnull=False).select_related("step").iterator():
        Escalation.objects.filter(pk=row.pk).update(
            engineer_id=row.step.engineer_id, message_template=row.step.message_template
        )


def outgoing_to_outbox(apps, schema_editor):
    OutgoingMessage = apps.get_model("escalation", "OutgoingMessage")
    OutboxMessage = apps.get_model("base", "OutboxMessage")
    for message in OutgoingMessage.objects.select_related("escalation").order_by("pk").iterator():
        level = message.escalation
        OutboxMessage.objects.get_or_create(
            key=message.idempotency_key,
            defaults={
                "purpose": "escalation",
                "channel": message.channel,
                "thread_ts": message.thread_ts,
                "text": message.text,
                "payload": {"ticket": level.ticket_id, "level": level.level},
                "context": {"notified": message.notified},
                "status": message.status,
                "slack_ts": message.slack_ts,
                "attempts": message.attempts,
                "last_error": message.last_error,
            },
        )
        OutboxMessage.objects.filter(key=message.idempotency_key).update(
            created_at=message.created_at, updated_at=message.updated_at
        )


class Migration(migrations.Migration):

    dependencies = [
        ("escalation", "0004_engine_claims_outgoing_snooze"),
        ("tickets", "0003_tiers_move_here_replies_to_outbox"),
        ("calendars", "0002_calendar_sources_overrides"),
        ("base", "0001_outbox"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="slapolicy",
                    name="tier",
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT,
                                            related_name="policies", to="tickets.tier"),
                ),
                migrations.DeleteModel(name="Tier"),
            ],
            database_operations=[],
        ),
        migrations.AddField(
            model_name="escalation",
            name="engineer",
            field=models.ForeignKey(blank=True, help_text="For a specific-engineer target.", null=True,
                                    on_delete=django.db.models.deletion.SET_NULL, related_name="+",
                                    to="calendars.engineer"),
        ),
        migrations.AddField(
            model_name="escalation",
            name="message_template",
            field=models.TextField(blank=True),
        ),
        migrations.AlterField(
            model_name="escalation",
            name="step",
            field=models.ForeignKey(blank=True, help_text="The step it was copied from, while that step "
                                    "exists; only for reference.", null=True,
                                    on_delete=django.db.models.deletion.SET_NULL,
                                    to="escalation.escalationstep"),
        ),
        migrations.CreateModel(
            name="TicketSla",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("policy_name", models.CharField(blank=True, max_length=200)),
                ("snooze_minutes", models.PositiveIntegerField(default=30)),
                ("armed_at", models.DateTimeField()),
                ("policy", models.ForeignKey(blank=True, help_text="The policy it was armed with, while that "
                                             "policy exists; only for reference.", null=True,
                                             on_delete=django.db.models.deletion.SET_NULL,
                                             to="escalation.slapolicy")),
                ("ticket", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name="sla",
                                                to="tickets.ticket")),
            ],
            options={"verbose_name": "ticket SLA", "verbose_name_plural": "ticket SLAs"},
        ),
        migrations.RunPython(snapshot_existing, migrations.RunPython.noop),
        migrations.RunPython(outgoing_to_outbox, migrations.RunPython.noop),
        migrations.DeleteModel(name="OutgoingMessage"),
    ]
