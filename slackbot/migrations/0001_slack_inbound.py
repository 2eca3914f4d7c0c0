"""``SlackInbound`` (stored Slack deliveries) moves here from tickets, in Django's state only.

Its table keeps the name ``tickets_slackinbound``; no row is touched.
"""

from django.db import migrations, models


def content_type_forward(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="slackbot", model="slackinbound").exists():
        ContentType.objects.filter(app_label="tickets", model="slackinbound").update(app_label="slackbot")


def content_type_backward(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="tickets", model="slackinbound").exists():
        ContentType.objects.filter(app_label="slackbot", model="slackinbound").update(app_label="tickets")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("tickets", "0003_tiers_move_here_replies_to_outbox"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="SlackInbound",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("key", models.CharField(max_length=200, unique=True)),
                        ("kind", models.CharField(choices=[("event", "Events API event"),
                                                           ("interaction", "Interactive component (button)")],
                                                  max_length=16)),
                        ("payload", models.JSONField()),
                        ("received_at", models.DateTimeField()),
                        ("retry_num", models.PositiveSmallIntegerField(
                            default=0, help_text="X-Slack-Retry-Num of the stored delivery.")),
                        ("state", models.CharField(choices=[("pending", "Pending"), ("done", "Done"),
                                                            ("failed", "Failed (gave up)")],
                                                   default="pending", max_length=16)),
                        ("attempts", models.PositiveIntegerField(default=0)),
                        ("processed_at", models.DateTimeField(blank=True, null=True)),
                        ("last_error", models.TextField(blank=True)),
                    ],
                    options={
                        "ordering": ["-received_at"],
                        "indexes": [models.Index(fields=["state", "received_at"],
                                                 name="inbound_state_received")],
                        "db_table": "tickets_slackinbound",
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_type_forward, content_type_backward),
    ]
