"""Tiers move from the engine to tickets; bot replies move into the shared outbox.

``Tier`` changes owner in Django's state only: its table keeps the name
``escalation_tier`` (no row is touched) and its content type, so admin
permissions on tiers carry over. Every ``BotReply`` row is copied into
``base.OutboxMessage`` under its own key, then the old table is dropped.
"""

import django.db.models.deletion
from django.db import migrations, models

REPLY_STATUS = {
    "sent": "sent",
    # The previous version retried a failed reply (whoever claimed it first): so does the outbox.
    "failed": "retry",
    # A reply left mid-send: it may have reached Slack, and posts of the previous version
    # carried no key to look for. The previous version never retried it; neither do we.
    "sending": "failed",
}
LEFT_MID_SEND = "left mid-send by the previous version; not retried, as it cannot be looked up in Slack"


def move_content_type(apps, schema_editor, *, model, old, new):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label=new, model=model).exists():
        ContentType.objects.filter(app_label=old, model=model).update(app_label=new)


def tier_content_type_forward(apps, schema_editor):
    move_content_type(apps, schema_editor, model="tier", old="escalation", new="tickets")


def tier_content_type_backward(apps, schema_editor):
    move_content_type(apps, schema_editor, model="tier", old="tickets", new="escalation")


def replies_to_outbox(apps, schema_editor):
    BotReply = apps.get_model("tickets", "BotReply")
    OutboxMessage = apps.get_model("base", "OutboxMessage")
    for reply in BotReply.objects.order_by("pk").iterator():
        status = REPLY_STATUS.get(reply.state, "sending")
        OutboxMessage.objects.get_or_create(
            key=reply.key,
            defaults={
                "purpose": "reply",
                "channel": reply.channel,
                "thread_ts": reply.thread_ts,
                "text": reply.text,
                "status": status,
                "slack_ts": reply.posted_ts,
                "attempts": 1,
                "last_error": reply.last_error or (LEFT_MID_SEND if reply.state == "sending" else ""),
            },
        )
        # Keep the original times (auto_now fields are set on create).
        OutboxMessage.objects.filter(key=reply.key).update(
            created_at=reply.created_at, updated_at=reply.updated_at
        )


class Migration(migrations.Migration):

    dependencies = [
        ("tickets", "0002_inbound_replies_checks"),
        ("escalation", "0004_engine_claims_outgoing_snooze"),
        ("base", "0001_outbox"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Tier",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("name", models.CharField(max_length=100, unique=True)),
                        ("time_zone", models.CharField(
                            default="UTC",
                            help_text="IANA time zone in which this tier's times are shown (e.g. Europe/Berlin).",
                            max_length=64)),
                        ("description", models.TextField(blank=True)),
                    ],
                    options={"ordering": ["name"], "db_table": "escalation_tier"},
                ),
                migrations.AlterField(
                    model_name="watchedchannel",
                    name="tier",
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT,
                                            related_name="channels", to="tickets.tier"),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(tier_content_type_forward, tier_content_type_backward),
        migrations.RunPython(replies_to_outbox, migrations.RunPython.noop),
        migrations.DeleteModel(name="BotReply"),
    ]
