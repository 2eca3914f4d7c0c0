"""On PostgreSQL, outside a transaction, the report runs its sections on several connections at once,
all reading one snapshot (reports/figures.py, ``REPORT_CONNECTIONS``): the figures are those it
counts on one connection, rows committed meanwhile are not counted, a section's exception is raised
as it was, and the helpers' connections are closed either way.

Transactional tests: the helpers' connections must see the month's rows (committed, not inside the
test's transaction); pytest-django empties the tables after each test."""

from __future__ import annotations

import threading

import pytest
from django.db import OperationalError, connection, transaction

from escalation.models import Escalation
from reports import figures
from reports.figures import ReportFilters, report_build
from tests.support.report_month import NOW, SINCE, UNTIL, month_build, z
from tickets.models import Ticket, WatchedChannel

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="several connections: PostgreSQL only"),
]

FILTERS = ReportFilters(since=SINCE, until=UNTIL)


class SectionFailed(Exception):
    pass


class Recorder:
    """An execute wrapper (the report gives the caller's to its helpers): which threads ran queries
    and the helpers' connections; ``before(sql, on_helper)`` runs before each query.

    The caller's first section waits until a helper runs a section too (the second one: the caller
    took the first): on a month of tickets the caller alone would otherwise finish every section
    before a helper has connected."""

    def __init__(self, before=None, *, wait_for_helper=True):
        self.caller = threading.get_ident()
        self.wait_for_helper = wait_for_helper
        self.threads: set[int] = set()
        self.helpers: list = []  # each helper thread's DatabaseWrapper
        self.before = before
        self.lock = threading.Lock()
        self.exported = False
        self.helper_runs = threading.Event()

    def __call__(self, execute, sql, params, many, context):
        on_helper = threading.get_ident() != self.caller
        with self.lock:
            self.threads.add(threading.get_ident())
            if on_helper and context["connection"] not in self.helpers:
                self.helpers.append(context["connection"])
        if on_helper and sql.lstrip().upper().startswith("SELECT"):
            self.helper_runs.set()
        if self.before:
            self.before(sql, on_helper)
        if "pg_export_snapshot" in sql:
            self.exported = True
        elif self.wait_for_helper and self.exported and not on_helper and not self.helper_runs.is_set():
            assert self.helper_runs.wait(timeout=60), "no helper ran a section"
        return execute(sql, params, many, context)

    def built(self) -> dict:
        with connection.execute_wrapper(self):
            return report_build(filters=FILTERS, now=NOW).as_dict()


def test_several_connections_count_what_one_connection_counts():
    month_build()
    at_once, one = Recorder(), Recorder()
    concurrent = at_once.built()
    with transaction.atomic():  # inside a transaction: one connection, one section after another
        sequential = one.built()

    assert len(at_once.threads) == figures.REPORT_CONNECTIONS > 1 and len(one.threads) == 1
    assert concurrent == sequential
    assert all(concurrent[section] for section in ("totals", "weeks", "levels", "engineers", "heatmap"))
    assert at_once.helpers and all(helper.connection is None for helper in at_once.helpers)  # closed


def test_rows_committed_while_the_report_runs_are_not_counted():
    month_build()
    before = report_build(filters=FILTERS, now=NOW).as_dict()
    committed = []

    def commit_a_ticket(sql, on_helper):  # once a helper begins: after the caller's snapshot was taken
        if on_helper and not committed:
            committed.append(sql)
            writer = threading.Thread(target=_another_connection_commits_a_ticket)
            writer.start()
            writer.join()

    during = Recorder(before=commit_a_ticket).built()

    assert committed and Ticket.objects.filter(helpdesk_ticket_id="LATE").exists()
    assert during == before
    after = report_build(filters=FILTERS, now=NOW).as_dict()
    assert sum(r["opened"] for r in after["totals"]) == sum(r["opened"] for r in before["totals"]) + 1
    assert sum(r["fired"] for r in after["levels"]) == sum(r["fired"] for r in before["levels"]) + 1


def _another_connection_commits_a_ticket():
    """A ticket with a fired level: the levels are the first section a helper takes (the caller took
    the weekly counts), so a helper that did not read the caller's snapshot would count it."""
    try:
        ticket = Ticket.objects.create(
            channel=WatchedChannel.objects.get(slack_channel_id="CSILVER"),
            helpdesk_ticket_id="LATE",
            slack_ts="1791300000.000100",
            opened_at=z("2026-10-06 12:00"),
        )
        Escalation.objects.create(
            ticket=ticket,
            level=1,
            target_kind="on_shift",
            state="fired",
            due_at=ticket.opened_at,
            fired_at=ticket.opened_at,
            notified=[{"name": "Carol", "slack_user_id": "UCAROL"}],
        )
    finally:
        connection.close()


@pytest.mark.parametrize("where", ["helper", "caller"])
def test_a_failing_section_raises_its_exception_and_the_helpers_connections_are_closed(where):
    month_build()

    def fail(sql, on_helper):  # a section's query, on a helper or on the caller once helpers are asked
        section = sql.lstrip().upper().startswith("SELECT") and "pg_export_snapshot" not in sql
        if section and on_helper == (where == "helper") and (on_helper or recorder.exported):
            raise SectionFailed(where)

    recorder = Recorder(before=fail)
    with pytest.raises(SectionFailed, match=where):
        recorder.built()

    assert recorder.helpers and all(helper.connection is None for helper in recorder.helpers)
    assert not connection.in_atomic_block  # the report's transaction was rolled back and left
    assert report_build(filters=FILTERS, now=NOW).totals  # and the next report runs


def test_without_a_second_connection_the_caller_runs_every_section(caplog):
    month_build()
    with transaction.atomic():
        sequential = report_build(filters=FILTERS, now=NOW).as_dict()

    def refuse(sql, on_helper):  # as when max_connections is reached or the snapshot is gone
        if on_helper:
            raise OperationalError("too many clients already")

    recorder = Recorder(before=refuse, wait_for_helper=False)
    alone = recorder.built()

    assert alone == sequential
    assert recorder.helpers and all(helper.connection is None for helper in recorder.helpers)
    assert "the second failed: too many clients already" in caplog.text
