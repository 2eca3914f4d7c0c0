"""Which engineer a calendar event is about: attendee email first, then a title pattern.

Title patterns are written by admins with placeholders, e.g. ``Shift: {name}`` or
``Embedded: {name} ({product})``; ``{name}`` may hold several names
("Alice & Bob"), each looked up by full name, unique first name or email user.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from calendars.events import FetchedEvent
from calendars.models import Engineer, MatchedBy, Purpose

REMARK = re.compile(r"\([^)]*\)|\[[^\]]*\]")
NAME_SEPARATORS = re.compile(r"\s*(?:,|&|/|\+|\band\b)\s*", re.IGNORECASE)


@dataclass
class EventMatch:
    engineer_id: int | None
    matched_by: str
    product: str = ""
    unmatched_name: str = ""


def _norm(text: str) -> str:
    return " ".join(text.replace("@", " ").split()).casefold()


class EngineerDirectory:
    """Every engineer, indexed for matching; built once per sync."""

    def __init__(self, engineers: Iterable[Engineer] | None = None):
        engineers = list(Engineer.objects.all() if engineers is None else engineers)
        self.by_email = {e.email.lower(): e.pk for e in engineers if e.email}
        self.by_name: dict[str, int] = {}
        first_names: dict[str, set[int]] = {}
        for e in engineers:
            self.by_name[_norm(e.name)] = e.pk
            if e.name.split():
                first_names.setdefault(_norm(e.name.split()[0]), set()).add(e.pk)
            if e.email:
                self.by_name.setdefault(_norm(e.email.split("@")[0]), e.pk)
        # A first name counts only when it is unambiguous.
        for first, ids in first_names.items():
            if len(ids) == 1:
                self.by_name.setdefault(first, next(iter(ids)))

    def find_name(self, name: str) -> int | None:
        # "Bob (late)": a remark in brackets is not part of the name.
        return self.by_name.get(_norm(name)) or self.by_name.get(_norm(REMARK.sub(" ", name)))


def event_match(
    *,
    event: FetchedEvent,
    purpose: str,
    patterns: list[re.Pattern[str]],
    directory: EngineerDirectory,
    default_product: str = "",
) -> list[EventMatch]:
    """One match per engineer the event is about, or one unmatched entry."""
    title = " ".join(event.title.split())
    found = next((m for p in patterns if (m := p.fullmatch(title))), None)
    groups = found.groupdict() if found else {}
    product = ""
    if purpose == Purpose.EMBEDDED:
        product = (groups.get("product") or "").strip() or default_product or title

    by_email = sorted({directory.by_email[a] for a in event.attendees if a in directory.by_email})
    if by_email:
        return [EventMatch(pk, MatchedBy.EMAIL, product) for pk in by_email]

    names = [n for n in NAME_SEPARATORS.split(groups.get("name") or "") if n.strip()]
    matches: list[EventMatch] = []
    for name in names:
        pk = directory.find_name(name)
        if pk is None:
            matches.append(EventMatch(None, MatchedBy.NOBODY, product, unmatched_name=name.strip()))
        elif all(m.engineer_id != pk for m in matches):
            matches.append(EventMatch(pk, MatchedBy.TITLE, product))
    return matches or [EventMatch(None, MatchedBy.NOBODY, product)]
