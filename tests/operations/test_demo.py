"""Demo mode: the real pipeline, end to end, against the stand-in Slack.

Drives the demo page's own endpoints over HTTP: open a ticket, watch level 1
fire, @mention the bot to snooze, reply as an engineer to disarm.
"""

import http.cookiejar
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from tests.support.runall import ROOT, embedded_run_only, runall_start

pytestmark = [pytest.mark.slow, embedded_run_only]


class DemoClient:
    def __init__(self, base_url: str):
        self.base_url = base_url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.opener.open(f"{base_url}/demo/", timeout=10).read()

    def post(self, path: str, **data: str) -> dict:
        token = next(c.value for c in self.jar if c.name == "csrftoken")
        request = urllib.request.Request(
            f"{self.base_url}{path}",
            data=urllib.parse.urlencode(data).encode(),
            headers={"X-CSRFToken": token},
        )
        with self.opener.open(request, timeout=15) as response:
            return json.loads(response.read())

    def state(self) -> dict:
        with self.opener.open(f"{self.base_url}/demo/state.json", timeout=10) as response:
            return json.loads(response.read())

    def wait_for(self, predicate, timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            thread = self.state()["threads"][0]
            if thread["ticket"] and predicate(thread):
                return thread
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}: {json.dumps(self.state(), indent=1)}")


def _bot_texts(thread: dict) -> list[str]:
    return [m["text"] for m in thread["messages"] if m["is_bot"]]


def test_demo_ticket_escalates_snoozes_and_is_answered(tmp_path):
    running = runall_start(tmp_path)
    try:
        demo = DemoClient(running.url)
        demo.post("/demo/open", text="Our production database is unreachable!")
        thread = demo.wait_for(
            lambda t: t["ticket"]["levels"] and t["ticket"]["levels"][0]["state"] == "fired",
            timeout=40, what="level 1",
        )
        level_1 = [t for t in _bot_texts(thread) if "Level 1" in t]
        assert len(level_1) == 1
        assert "<@UDEMOALICE>" in level_1[0]  # on shift, not embedded
        assert "<@UDEMOBOB01>" not in level_1[0]  # embedded with Storage

        before = {lvl["level"]: lvl["due_in_seconds"] for lvl in thread["ticket"]["levels"]}
        demo.post("/demo/mention", thread_ts=thread["ts"])
        thread = demo.wait_for(
            lambda t: any("Snoozed" in x for x in _bot_texts(t)), timeout=20, what="the snooze reply"
        )
        after = {lvl["level"]: lvl["due_in_seconds"] for lvl in thread["ticket"]["levels"]}
        for level in (2, 3, 4):
            assert after[level] - before[level] >= 50  # moved by the demo policy's minute

        demo.post("/demo/reply", thread_ts=thread["ts"])
        thread = demo.wait_for(lambda t: t["ticket"]["state"] == "responded", timeout=20, what="response")
        assert [lvl["state"] for lvl in thread["ticket"]["levels"]] == [
            "fired", "cancelled", "cancelled", "cancelled"
        ]
        escalations = [x for x in _bot_texts(thread) if re.search(r"Level \d escalation", x)]
        assert len(escalations) == 1, escalations
    finally:
        assert running.stop() == 0, running.log()


def test_an_urgent_demo_ticket_pages_the_stand_in_pager_and_the_answer_resolves_it(tmp_path):
    running = runall_start(tmp_path)
    try:
        demo = DemoClient(running.url)
        demo.post("/demo/open", text="Checkout is down for every customer!", priority="urgent")
        thread = demo.wait_for(
            lambda t: any(lvl["page"] and lvl["state"] == "fired" for lvl in t["ticket"]["levels"]),
            timeout=90, what="the page level",
        )
        assert thread["ticket"]["priority"] == "urgent"
        paged = [t for t in _bot_texts(thread) if "paged PagerDuty: incident" in t]
        assert len(paged) == 1
        [incident] = demo.state()["pager"]["incidents"]
        assert incident["status"] == "triggered" and thread["ts"] in incident["key"]

        demo.post("/demo/reply", thread_ts=thread["ts"])
        deadline = time.monotonic() + 30
        while demo.state()["pager"]["incidents"][0]["status"] != "resolved":
            assert time.monotonic() < deadline, demo.state()["pager"]
            time.sleep(0.5)
        assert len(demo.state()["pager"]["incidents"]) == 1
    finally:
        assert running.stop() == 0, running.log()


def test_demo_is_not_routed_in_production(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SLABUDDY_", "DATABASE_URL"))}
    env.update({
        "SLABUDDY_DATA_DIR": str(tmp_path),
        "SLABUDDY_MODE": "production",
        "SECRET_KEY": "p" * 30 + "0123456789abcdefghijklmnopqrstuvwxyz",
        "ALLOWED_HOSTS": "sla.example.com",
        "SLACK_BOT_TOKEN": "xoxb-real",
        "SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5",
    })
    code = (
        "from django.urls import resolve, Resolver404\n"
        "from django.conf import settings\n"
        "assert not settings.DEMO_MODE\n"
        "try:\n    resolve('/demo/')\nexcept Resolver404:\n    print('not routed')\n"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "not routed" in result.stdout
