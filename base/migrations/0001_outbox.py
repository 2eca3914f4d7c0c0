"""The outbox: one table for every message the bot posts in Slack."""

from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
    ]

    operations = [
        migrations.CreateModel(
            name='OutboxMessage',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(max_length=200, unique=True)),
                ('purpose', models.CharField(choices=[('escalation', 'Escalation level'), ('reply', 'Reply to a mention or a button (snooze, help)'), ('notice', 'Notice')], max_length=16)),
                ('channel', models.CharField(max_length=32)),
                ('thread_ts', models.CharField(blank=True, max_length=32)),
                ('text', models.TextField()),
                ('blocks', models.JSONField(blank=True, default=list)),
                ('payload', models.JSONField(blank=True, default=dict, help_text='Sent in the Slack message metadata with the key.')),
                ('context', models.JSONField(blank=True, default=dict, help_text="The sender's own notes (e.g. whom a level notified); not sent.")),
                ('status', models.CharField(choices=[('new', 'Recorded, not tried yet'), ('sending', 'Sending (may have reached Slack)'), ('sent', 'Sent'), ('retry', 'Not sent, will retry'), ('failed', 'Failed (permanent)')], default='new', max_length=16)),
                ('slack_ts', models.CharField(blank=True, max_length=32)),
                ('attempts', models.PositiveIntegerField(default=0, help_text='HTTP attempts to post it.')),
                ('lease_until', models.DateTimeField(blank=True, help_text='A sender holds the message until then (crash recovery).', null=True)),
                ('last_error', models.TextField(blank=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
            options={
                'verbose_name': 'outbox message',
                'ordering': ['-created_at'],
                'indexes': [models.Index(fields=['status', 'updated_at'], name='outbox_status_updated')],
            },
        ),
    ]
