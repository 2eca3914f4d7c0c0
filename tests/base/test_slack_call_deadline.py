"""Every Slack Web API call ends within SLACK_TIMEOUT_SECONDS in total: a Slack that drips its
answer (each read well inside the socket timeout) is given up at the deadline, as an ambiguous
failure, instead of holding a worker thread for as long as it keeps dripping."""

import json

import pytest

from base.slack_api import AmbiguousSlackError, slack_call, slack_client
from tests.support.drip_server import DripServer

ANSWER = json.dumps({"ok": True, "channel": "C1", "ts": "1700000000.000100", "padding": "x" * 40}).encode()


@pytest.fixture
def slow_slack_settings(settings):
    settings.SLACK_TIMEOUT_SECONDS = 1
    return settings


@pytest.mark.parametrize("drip_headers", [False, True], ids=["body dripped", "headers dripped"])
def test_a_dripping_post_is_given_up_at_the_deadline(slow_slack_settings, drip_headers):
    with DripServer(ANSWER, interval=0.25, drip_headers=drip_headers) as server:
        slow_slack_settings.SLACK_API_BASE_URL = server.base_url + "/api/"
        with pytest.raises(AmbiguousSlackError) as failure:
            slack_call(slack_client().chat_postMessage, channel="C1", text="hello")
        assert server.requests == ["/api/chat.postMessage"]
        assert server.bytes_sent < len(ANSWER)  # it left long before the answer was complete
    assert "TimeoutError" in failure.value.error


def test_a_prompt_answer_is_read_in_full(slow_slack_settings):
    with DripServer(ANSWER, interval=0) as server:
        slow_slack_settings.SLACK_API_BASE_URL = server.base_url + "/api/"
        response = slack_call(slack_client().chat_postMessage, channel="C1", text="hello")
    assert response["ts"] == "1700000000.000100"
