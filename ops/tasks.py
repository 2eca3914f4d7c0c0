from celery import shared_task

from ops.heartbeat import heartbeat_record


@shared_task(name="ops.tasks.heartbeat", ignore_result=True)
def heartbeat() -> None:
    heartbeat_record()
