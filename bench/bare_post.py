"""The yardstick of ``bench.escalation_lag --side-by-side``: a bare Celery countdown task that makes
one ``chat.postMessage`` to the same stand-in, with none of the engine's guarantees.

The bench starts its escalation worker with ``--include bench.bare_post`` so this task exists
there only; SLA Buddy itself never loads it.
"""

from __future__ import annotations

from celery import shared_task

from base.slack_api import slack_call, slack_client

TASK = "bench.bare_post"


@shared_task(name=TASK, ignore_result=True)
def bare_post(channel: str, thread_ts: str, key: str) -> None:
    slack_call(slack_client().chat_postMessage, channel=channel, thread_ts=thread_ts, text="bare",
               metadata={"event_type": "bench_bare", "event_payload": {"key": key}})
