from celery import shared_task

from slabuddy.heartbeat import heartbeat_record


@shared_task(name="slabuddy.tasks.heartbeat", ignore_result=True)
def heartbeat() -> None:
    heartbeat_record()
