"""The fake Slack server speaks enough of the Web API for slack_sdk."""

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from base.fake_slack import BOT_USER_ID, FakeSlack
from ops.testing.worker import wait_for


@pytest.fixture
def fake():
    with FakeSlack() as server:
        yield server


def client(fake):
    return WebClient(token="xoxb-test", base_url=fake.base_url)


def test_post_and_thread(fake):
    parent = fake.add_message("C1", "help!", user="UCUSTOMER")
    result = client(fake).chat_postMessage(
        channel="C1",
        thread_ts=parent["ts"],
        text="L1",
        metadata={"event_type": "x", "event_payload": {"k": 1}},
    )
    assert result["ok"]
    assert [m["text"] for m in fake.thread("C1", parent["ts"])] == ["help!", "L1"]
    assert fake.posts("C1")[0]["user"] == BOT_USER_ID
    replies = client(fake).conversations_replies(channel="C1", ts=parent["ts"], include_all_metadata=True)
    assert replies["messages"][1]["metadata"]["event_payload"] == {"k": 1}


def test_history_pages_newest_first(fake):
    for i in range(25):
        fake.add_message("C1", f"m{i}", ts=f"1000.{i:06d}", user="U1")
    seen, cursor = [], None
    while True:
        page = client(fake).conversations_history(channel="C1", oldest="1000.000004", limit=10, cursor=cursor)
        seen += [m["text"] for m in page["messages"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not page["has_more"]:
            break
    assert seen == [f"m{i}" for i in range(24, 4, -1)]


def test_scripted_failures(fake):
    fake.fail_next("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as exc:
        client(fake).chat_postMessage(channel="C1", text="x")
    assert exc.value.response.status_code == 429
    assert exc.value.response.headers["Retry-After"] == "7"
    fake.fail_next("chat.postMessage", error="channel_not_found")
    with pytest.raises(SlackApiError) as exc:
        client(fake).chat_postMessage(channel="C1", text="x")
    assert exc.value.response["error"] == "channel_not_found"
    assert client(fake).chat_postMessage(channel="C1", text="x")["ok"]
    assert len(fake.posts()) == 1


@pytest.mark.parametrize("fault", [{"status": 503}, {"drop": True}], ids=["held-then-503", "dropped"])
def test_a_late_landing_fails_the_client_yet_the_post_appears(fake, fault):
    parent = fake.add_message("C1", "help!", user="UCUSTOMER")
    fake.land_late("chat.postMessage", hold=1.5 if fault.get("status") else 0.5, **fault)
    slow = WebClient(token="xoxb-test", base_url=fake.base_url, timeout=1)
    slow.retry_handlers = []
    with pytest.raises(Exception):  # noqa: B017 - a timeout, a dropped connection: any failure
        slow.chat_postMessage(channel="C1", thread_ts=parent["ts"], text="L1")
    assert fake.posts("C1") == []  # not yet: Slack is still working on it
    wait_for(lambda: fake.posts("C1"), timeout=10, message="the late post")
    assert [m["text"] for m in fake.thread("C1", parent["ts"])] == ["help!", "L1"]
    client(fake).chat_postMessage(channel="C1", thread_ts=parent["ts"], text="L2")  # then back to normal
    assert len(fake.posts("C1")) == 2


def test_chat_delete_removes_only_the_bots_messages(fake):
    parent = fake.add_message("C1", "help!", user="UCUSTOMER")
    posted = client(fake).chat_postMessage(channel="C1", thread_ts=parent["ts"], text="L1")
    with pytest.raises(SlackApiError):
        client(fake).chat_delete(channel="C1", ts=parent["ts"])
    client(fake).chat_delete(channel="C1", ts=posted["ts"])
    assert fake.posts("C1") == [] and [m["ts"] for m in fake.deleted()] == [posted["ts"]]
    with pytest.raises(SlackApiError, match="message_not_found"):
        client(fake).chat_delete(channel="C1", ts=posted["ts"])
