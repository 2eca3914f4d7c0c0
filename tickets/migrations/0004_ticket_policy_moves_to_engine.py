"""A ticket no longer points at a policy: the engine's ``TicketSla`` holds its copy
(escalation 0005 filled it from this column). ``SlackInbound`` now belongs to slackbot."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("tickets", "0003_tiers_move_here_replies_to_outbox"),
        ("escalation", "0005_snapshot_levels_outbox"),
        ("slackbot", "0001_slack_inbound"),
    ]

    operations = [
        migrations.RemoveField(model_name="ticket", name="policy"),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="SlackInbound")],
            database_operations=[],
        ),
    ]
