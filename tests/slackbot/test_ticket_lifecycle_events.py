"""The ticket lifecycle through signed Slack events and helpdesk webhooks and polls: close and
waiting reactions, deleted and edited messages, the customer writing again, a customer's
mention in a plain channel; each idempotent under duplicate deliveries (the same event id, and
the same message under a new event id)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from calendars.factories import EngineerFactory
from escalation.factories import NextResponseStepFactory
from escalation.models import Escalation, TicketCycle, TicketPause
from escalation.sweeping import escalations_sweep
from slackbot.parsing import ts_to_datetime
from slackbot.responses import helpdesk_poll
from slackbot.scan import channel_scan
from tests.support.helpdesk_server import FD, RECORDED, ZD
from tests.support.slack_requests import (
    deliver,
    helpdesk_message,
    now_ts,
    post_hook,
)
from tickets.factories import WatchedChannelFactory
from tickets.models import (
    IntakeMode,
    ResponseMode,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketState,
    WatchedChannel,
)

pytestmark = pytest.mark.django_db

ZD_TICKET = "/api/v2/tickets/4711.json"  # Zendesk's ticket, for its status


@pytest.fixture
def engineer(db):
    return EngineerFactory(slack_user_id="UENG1", name="Ana")


@pytest.fixture
def ticket(client, slack_secrets, channel, fake_slack, engineer):
    deliver(client, helpdesk_message())
    ticket = Ticket.objects.get()
    fake_slack.add_message("CSUPPORT1", "the ticket", ts=ticket.slack_ts, user="UZENDESK")
    return ticket


@pytest.fixture
def next_response(tier):
    """The tier's policy answers customers who write again: one next-response level after 15 min."""
    NextResponseStepFactory(policy=tier.policies.get(), level=1, delay=timedelta(minutes=15))


def reaction(ticket, emoji, *, user="UENG1", added=True, event_ts=None, item_ts=None):
    return {"type": "reaction_added" if added else "reaction_removed", "user": user, "reaction": emoji,
            "item": {"type": "message", "channel": "CSUPPORT1", "ts": item_ts or ticket.slack_ts},
            "item_user": "UZENDESK", "event_ts": event_ts or now_ts()}


def thread_message(ticket, user, text="any news?", ts=None):
    ts = ts or now_ts()
    return {"type": "message", "channel": "CSUPPORT1", "user": user, "text": text, "ts": ts,
            "thread_ts": ticket.slack_ts, "event_ts": ts}


def kinds(ticket) -> list[str]:
    return list(TicketEvent.objects.filter(ticket=ticket).order_by("at", "id").values_list("kind", flat=True))


def state(ticket) -> str:
    ticket.refresh_from_db()
    return ticket.state


# --- reactions ----------------------------------------------------------------------------


def test_a_close_reaction_by_an_engineer_closes_once_however_often_it_arrives(client, ticket):
    event = reaction(ticket, "white_check_mark")
    deliver(client, event, event_id="EvClose")
    deliver(client, event, event_id="EvClose")  # Slack's retry: acknowledged once
    deliver(client, event, event_id="EvCloseAgain")  # the same reaction under a new event id
    assert state(ticket) == TicketState.CLOSED
    assert (ticket.closed_via, ticket.closed_by) == ("reaction", "UENG1")
    assert kinds(ticket).count(TicketEventKind.CLOSED) == 1
    assert set(Escalation.objects.filter(ticket=ticket).values_list("state", flat=True)) == {"cancelled"}


def test_reactions_by_someone_off_the_roster_or_other_emoji_change_nothing(client, ticket):
    deliver(client, reaction(ticket, "white_check_mark", user="UCUSTOMER"))
    deliver(client, reaction(ticket, "eyes"))
    deliver(client, reaction(ticket, "white_check_mark", item_ts=now_ts(5)))  # another message
    assert state(ticket) == TicketState.ARMED


def test_a_channel_can_choose_its_own_reactions(client, ticket):
    WatchedChannel.objects.filter(slack_channel_id="CSUPPORT1").update(close_reaction=":lock:",
                                                                       waiting_reaction="speech_balloon")
    deliver(client, reaction(ticket, "white_check_mark"))
    assert state(ticket) == TicketState.ARMED
    deliver(client, reaction(ticket, "speech_balloon"))
    assert state(ticket) == TicketState.WAITING
    deliver(client, reaction(ticket, "lock::skin-tone-2"))
    assert state(ticket) == TicketState.CLOSED


def test_the_waiting_reaction_pauses_and_removing_it_resumes(client, ticket):
    deliver(client, reaction(ticket, "hourglass_flowing_sand", event_ts=now_ts()))
    assert state(ticket) == TicketState.WAITING
    assert set(Escalation.objects.filter(ticket=ticket).values_list("state", flat=True)) == {"paused"}
    deliver(client, reaction(ticket, "hourglass_flowing_sand", added=False))
    assert state(ticket) == TicketState.ARMED
    [pause] = TicketPause.objects.filter(ticket=ticket)
    assert (pause.paused_via, pause.resumed_via) == ("reaction", "reaction")


def test_a_reaction_on_an_escalation_message_counts_too(client, ticket, fake_slack):
    level1 = Escalation.objects.get(ticket=ticket, level=1)
    Escalation.objects.filter(pk=level1.pk).update(state="fired", slack_message_ts="1700000000.000001")
    deliver(client, reaction(ticket, "white_check_mark", item_ts="1700000000.000001"))
    assert state(ticket) == TicketState.CLOSED


# --- deleted and edited messages -------------------------------------------------------------


def test_deleting_the_tickets_message_closes_it_once(client, ticket):
    deleted = {"type": "message", "subtype": "message_deleted", "hidden": True, "channel": "CSUPPORT1",
               "ts": now_ts(), "deleted_ts": ticket.slack_ts, "previous_message": helpdesk_message()}
    deliver(client, deleted, event_id="EvDel")
    deliver(client, {**deleted, "ts": now_ts()}, event_id="EvDel2")
    assert state(ticket) == TicketState.CLOSED and ticket.closed_via == "deleted"
    assert kinds(ticket).count(TicketEventKind.CLOSED) == 1


def test_a_ticket_deleted_with_replies_becomes_a_tombstone_and_is_closed(client, ticket):
    gone = {"type": "message", "subtype": "tombstone", "ts": ticket.slack_ts, "thread_ts": ticket.slack_ts,
            "text": "This message was deleted."}
    tombstone = {"type": "message", "subtype": "message_changed", "hidden": True, "channel": "CSUPPORT1",
                 "ts": now_ts(), "message": gone}
    deliver(client, tombstone)
    assert state(ticket) == TicketState.CLOSED and ticket.closed_via == "deleted"


def edit_into_a_ticket(original_ts: str) -> dict:
    before = {"type": "message", "subtype": "bot_message", "bot_id": "BZENDESK", "ts": original_ts,
              "text": "New request from Acme (details follow)"}
    after = {**before, "text": before["text"] + "\n*Ticket ID*: 4800\n*Ticket priority*: P2",
             "edited": {"user": "BZENDESK", "ts": now_ts()}}
    return {"type": "message", "subtype": "message_changed", "hidden": True, "channel": "CSUPPORT1",
            "ts": now_ts(), "message": after, "previous_message": before}


def test_a_message_edited_into_a_ticket_becomes_one_opened_at_its_original_time(client, slack_secrets,
                                                                                channel, fake_slack):
    original = now_ts(3)
    edit = edit_into_a_ticket(original)
    deliver(client, edit, event_id="EvEdit")
    deliver(client, edit, event_id="EvEditAgain")  # the same edit under a new event id
    ticket = Ticket.objects.get()
    assert (ticket.slack_ts, ticket.helpdesk_ticket_id, ticket.priority) == (original, "4800", "high")
    assert ticket.opened_at == ts_to_datetime(original)
    assert TicketEvent.objects.get(ticket=ticket, kind="opened").details["source"] == "edit"
    # The scan reads the edited message later: still one ticket.
    fake_slack.add_message("CSUPPORT1", edit["message"]["text"], ts=original, bot_id="BZENDESK",
                           subtype="bot_message")
    channel_scan(channel=channel, now=datetime.now(UTC))
    assert Ticket.objects.count() == 1


def test_other_edits_never_create_tickets(client, slack_secrets, channel, fake_slack):
    chat_edit = edit_into_a_ticket(now_ts(2))
    chat_edit["message"] = {**chat_edit["previous_message"], "text": "New request from Acme, details soon"}
    reply_edit = edit_into_a_ticket(now_ts(2))
    reply_edit["message"]["thread_ts"] = now_ts(10)  # a thread reply edited to carry fields
    old_edit = edit_into_a_ticket(now_ts(600))  # older than the channel's look-back
    for event in (chat_edit, reply_edit, old_edit):
        deliver(client, event)
    assert Ticket.objects.count() == 0


# --- the customer writes in the thread ---------------------------------------------------------


def test_the_customers_reply_resumes_a_waiting_ticket_once(client, ticket):
    deliver(client, reaction(ticket, "hourglass_flowing_sand"))
    message = thread_message(ticket, "UCUSTOMER")
    deliver(client, message, event_id="EvCust")
    assert state(ticket) == TicketState.ARMED
    deliver(client, reaction(ticket, "hourglass_flowing_sand"))  # waiting again
    deliver(client, message, event_id="EvCustAgain")  # the same message under a new event id
    assert state(ticket) == TicketState.WAITING  # it already resumed the first wait
    assert TicketPause.objects.filter(ticket=ticket).count() == 2


def test_after_the_answer_the_customer_starts_a_next_response_cycle_once(client, next_response, ticket):
    deliver(client, thread_message(ticket, "UENG1", "Here is the fix"))
    assert state(ticket) == TicketState.RESPONDED
    follow_up = thread_message(ticket, "UCUSTOMER", "That did not work")
    deliver(client, follow_up, event_id="EvFollow")
    deliver(client, follow_up, event_id="EvFollowAgain")
    assert state(ticket) == TicketState.ARMED
    cycle = TicketCycle.objects.get(ticket=ticket, number=2)
    assert (cycle.trigger_ts, cycle.started_by) == (follow_up["ts"], "UCUSTOMER")
    [level] = Escalation.objects.filter(ticket=ticket, cycle=2)
    assert level.due_at == ts_to_datetime(follow_up["ts"]) + timedelta(minutes=15)
    deliver(client, thread_message(ticket, "UENG1", "Try this instead"))
    assert state(ticket) == TicketState.RESPONDED
    cycle.refresh_from_db()
    assert cycle.responded_by == "UENG1"
    assert ticket.responded_at < cycle.responded_at  # the ticket keeps its first response


def test_a_customer_who_mentions_the_bot_also_wrote_in_the_thread(client, ticket, fake_slack):
    deliver(client, reaction(ticket, "hourglass_flowing_sand"))
    message = thread_message(ticket, "UCUSTOMER", "<@UFAKEBOT01> hello? we are still down")
    deliver(client, {**message, "type": "app_mention"})
    deliver(client, message)
    assert state(ticket) == TicketState.ARMED
    replies = fake_slack.posts(thread_ts=ticket.slack_ts)
    assert len(replies) == 1 and "roster" in replies[0]["text"]  # told once that they cannot snooze


def test_a_customer_message_after_a_close_reopens_the_ticket(client, next_response, ticket):
    deliver(client, reaction(ticket, "white_check_mark"))
    deliver(client, thread_message(ticket, "UCUSTOMER", "Sorry, one more thing"))
    assert state(ticket) == TicketState.ARMED
    assert TicketCycle.objects.get(ticket=ticket, number=2).reopened


# --- plain channels: a customer's mention of the bot is a ticket -------------------------------


@pytest.fixture
def plain_channel(tier):
    return WatchedChannelFactory(slack_channel_id="CPLAIN01", name="acme-shared", tier=tier,
                                 intake_mode=IntakeMode.PLAIN)


def test_a_customers_top_level_mention_of_the_bot_is_one_ticket(client, slack_secrets, plain_channel,
                                                                 fake_slack, engineer):
    ts = now_ts()
    message = {"type": "message", "channel": "CPLAIN01", "user": "UCUSTOMER", "ts": ts,
               "text": "<@UFAKEBOT01> our database is down"}
    deliver(client, {**message, "type": "app_mention"})
    deliver(client, message)
    ticket = Ticket.objects.get()
    assert (ticket.slack_ts, ticket.author_slack_id, ticket.state) == (ts, "UCUSTOMER", TicketState.ARMED)
    assert fake_slack.posts() == []  # no help text for a customer's emergency


def test_an_engineers_top_level_mention_is_still_talking_to_the_bot(client, slack_secrets, plain_channel,
                                                                    fake_slack, engineer):
    message = {"type": "message", "channel": "CPLAIN01", "user": "UENG1", "ts": now_ts(),
               "text": "<@UFAKEBOT01> help"}
    deliver(client, {**message, "type": "app_mention"})
    deliver(client, message)
    channel_scan(channel=plain_channel, now=datetime.now(UTC))  # the scan judges it the same way
    assert Ticket.objects.count() == 0
    [reply] = fake_slack.posts()
    assert "SLA Buddy" in reply["text"]


# --- the helpdesk's status ----------------------------------------------------------------


@pytest.fixture
def zendesk_ticket(client, slack_secrets, tier, fake_slack, next_response):
    channel = WatchedChannelFactory(slack_channel_id="CZENDESK", tier=tier,
                                    response_mode=ResponseMode.ZENDESK)
    deliver(client, helpdesk_message(channel="CZENDESK", ts=now_ts(1)))
    return Ticket.objects.get(channel=channel)


def hook(client, status, **extra):
    response = post_hook(client, "zendesk", {"ticket_id": "4711", "status": status, **extra})
    assert response.status_code == 200, response.content
    return response.json()


def test_webhook_statuses_pause_resume_close_and_start_a_next_cycle(client, zendesk_ticket):
    assert hook(client, "Pending")["responded"] == 0  # a status alone is not a reply
    assert state(zendesk_ticket) == TicketState.WAITING
    assert hook(client, "pending")["status"] == {str(zendesk_ticket.pk): "unchanged"}
    hook(client, "open")
    assert state(zendesk_ticket) == TicketState.ARMED
    hook(client, "pending", agent="Ana")  # an agent's reply that sets the ticket pending
    assert state(zendesk_ticket) == TicketState.RESPONDED
    assert zendesk_ticket.helpdesk_status == "waiting"
    hook(client, "Open")  # the customer answered in the helpdesk
    assert state(zendesk_ticket) == TicketState.ARMED
    assert TicketCycle.objects.filter(ticket=zendesk_ticket).count() == 2
    hook(client, "solved")
    assert state(zendesk_ticket) == TicketState.CLOSED and zendesk_ticket.closed_via == "helpdesk"


def test_webhook_statuses_that_say_nothing_or_are_malformed(client, zendesk_ticket):
    assert hook(client, "Waiting on third party")["status"] == {str(zendesk_ticket.pk): "noted"}
    assert hook(client, "some custom status")["status"] == {}
    assert state(zendesk_ticket) == TicketState.ARMED
    bad = post_hook(client, "zendesk", {"ticket_id": "4711", "status": ["solved"]})
    assert bad.status_code == 400 and "status" in bad.json()["error"]
    assert state(zendesk_ticket) == TicketState.ARMED


def test_the_poll_reads_the_helpdesk_status(client, slack_secrets, tier, helpdesk, fake_slack):
    now = datetime.now(UTC)
    zendesk = WatchedChannelFactory(slack_channel_id="CZD", tier=tier, response_mode=ResponseMode.ZENDESK)
    freshdesk = WatchedChannelFactory(slack_channel_id="CFD", tier=tier, response_mode=ResponseMode.FRESHDESK)
    deliver(client, helpdesk_message(channel="CZD"))
    deliver(client, helpdesk_message(channel="CFD"))
    zd, fd = Ticket.objects.get(channel=zendesk), Ticket.objects.get(channel=freshdesk)
    helpdesk.route(ZD, "zendesk_metrics_waiting.json")
    helpdesk.route(ZD_TICKET, body=json.dumps({"ticket": {"id": 4711, "status": "hold"}}).encode())
    recorded = json.loads((RECORDED / "freshdesk_ticket_waiting.json").read_text())
    helpdesk.route(FD, body=json.dumps({**recorded, "status": 5}).encode())  # 5: closed
    result = helpdesk_poll(now=now)
    assert (result.checked, result.responded, result.unknown) == (2, 0, 0)
    assert (state(zd), state(fd)) == (TicketState.WAITING, TicketState.CLOSED)
    helpdesk.route(ZD_TICKET, body=json.dumps({"ticket": {"id": 4711, "status": "open"}}).encode())
    helpdesk_poll(now=now + timedelta(minutes=2))
    assert state(zd) == TicketState.ARMED
    assert helpdesk_poll(now=now + timedelta(minutes=4)).checked == 1  # the closed one is not asked again


def test_a_ticket_backfilled_late_by_the_scan_posts_once(client, slack_secrets, channel, fake_slack,
                                                          engineer):
    message = fake_slack.add_message("CSUPPORT1", "*Ticket ID*: 9\n*Ticket priority*: high", ts=now_ts(40),
                                     subtype="bot_message", bot_id="BZENDESK")
    channel_scan(channel=channel, now=datetime.now(UTC))
    ticket = Ticket.objects.get(slack_ts=message["ts"])
    escalations_sweep()
    escalations_sweep()
    [post] = fake_slack.posts(thread_ts=ticket.slack_ts)
    assert "Picked up late" in post["text"] and post["metadata"]["event_payload"]["level"] == 3
