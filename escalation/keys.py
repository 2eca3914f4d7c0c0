"""The outbox keys of a level's posts: one per (ticket, cycle, level), so every level of every
cycle posts exactly once. The first response keeps the keys it always had."""

from __future__ import annotations


def post_key(*, ticket_id: int, level: int, cycle: int = 1) -> str:
    """``ticket:<id>:level:<n>`` for the first response (cycle 1), as before cycles existed;
    ``ticket:<id>:cycle:<c>:level:<n>`` for next-response cycles."""
    if cycle == 1:
        return f"ticket:{ticket_id}:level:{level}"
    return f"ticket:{ticket_id}:cycle:{cycle}:level:{level}"


def page_key(*, ticket_id: int, level: int, cycle: int = 1) -> str:
    """A page step's page in the outbox table: ``page:`` + the level's post key."""
    return "page:" + post_key(ticket_id=ticket_id, level=level, cycle=cycle)


def page_keys_prefixes(ticket_id: int) -> tuple[str, str]:
    """The key prefixes of every page of a ticket, first response and next-response cycles."""
    return f"page:ticket:{ticket_id}:level:", f"page:ticket:{ticket_id}:cycle:"
