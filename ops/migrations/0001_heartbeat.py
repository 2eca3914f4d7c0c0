"""The heartbeat row, now owned by the operations app; periodic jobs renamed with their tasks.

The heartbeat used to live in the project package (table ``slabuddy_heartbeat``).
It is rewritten every HEARTBEAT_SECONDS, so it starts afresh in its own table
and the old one is dropped. Periodic jobs stored in django-celery-beat name
their task by its import path: jobs whose task moved to another app are
renamed, so an existing deployment keeps every schedule (and its edited
interval) without running ensure_schedules again.
"""

from django.db import migrations, models
from django.utils import timezone

# Task paths before the apps were layered -> where those tasks live now.
TASK_RENAMES = {
    "tickets.tasks.channel_scan_all": "slackbot.tasks.channel_scan_all",
    "tickets.tasks.channel_scan": "slackbot.tasks.channel_scan",
    "tickets.tasks.helpdesk_poll": "slackbot.tasks.helpdesk_poll",
    "tickets.tasks.slack_threads_poll": "slackbot.tasks.slack_threads_poll",
    "tickets.tasks.slack_inbound_sweep": "slackbot.tasks.slack_inbound_sweep",
    "tickets.tasks.slack_inbound_process": "slackbot.tasks.slack_inbound_process",
    "slabuddy.tasks.heartbeat": "ops.tasks.heartbeat",
}


def _rename(apps, renames):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    changed = sum(PeriodicTask.objects.filter(task=old).update(task=new) for old, new in renames)
    if changed:
        # A beat that is running re-reads its schedule when this marker moves
        # (bulk updates do not send the signals that normally move it).
        PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def rename_tasks(apps, schema_editor):
    _rename(apps, TASK_RENAMES.items())


def unrename_tasks(apps, schema_editor):
    _rename(apps, [(new, old) for old, new in TASK_RENAMES.items()])


def drop_project_heartbeat(apps, schema_editor):
    if "slabuddy_heartbeat" in schema_editor.connection.introspection.table_names():
        schema_editor.execute(f"DROP TABLE {schema_editor.quote_name('slabuddy_heartbeat')}")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.CreateModel(
            name='Heartbeat',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=64, unique=True)),
                ('at', models.DateTimeField()),
                ('hostname', models.CharField(blank=True, help_text='The worker that wrote it.', max_length=255)),
            ],
            options={
                'ordering': ['name'],
            },
        ),
        migrations.RunPython(rename_tasks, unrename_tasks),
        migrations.RunPython(drop_project_heartbeat, migrations.RunPython.noop),
    ]
