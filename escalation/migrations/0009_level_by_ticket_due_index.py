"""A ticket's next level is read by (ticket, due time): the admin's ticket page, /sla status, the App Home."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('escalation', '0008_backfill_breach_times'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='escalation',
            index=models.Index(fields=['ticket', 'due_at'], name='escalation_ticket_due'),
        ),
    ]
