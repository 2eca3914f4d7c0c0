import pytest

from calendars.events import FetchedEvent
from calendars.matching import EngineerDirectory, event_match
from calendars.models import MatchedBy, Purpose
from calendars.patterns import DEFAULT_TITLE_PATTERNS, compile_patterns
from tests.support.calendar_files import utc

pytestmark = pytest.mark.django_db


def _event(title, attendees=()):
    return FetchedEvent("e1", title, utc(2026, 10, 26, 8), utc(2026, 10, 26, 16), attendees=list(attendees))


def _match(team, title, purpose=Purpose.SHIFTS, attendees=(), patterns=None, default_product=""):
    return event_match(
        event=_event(title, attendees),
        purpose=purpose,
        patterns=compile_patterns(patterns or DEFAULT_TITLE_PATTERNS[purpose]),
        directory=EngineerDirectory(),
        default_product=default_product,
    )


@pytest.mark.parametrize(
    "title",
    ["Shift: Alice", "shift:alice", "Shift:  Alice Archer", "On call: alice", "Alice", "Shift: @alice"],
)
def test_shift_titles_name_the_engineer(team, title):
    [match] = _match(team, title)
    assert (match.engineer_id, match.matched_by) == (team["alice"].pk, MatchedBy.TITLE)


def test_several_names_in_one_title(team):
    matches = _match(team, "Shift: Alice & Bob, Carol and Zed")
    assert [m.engineer_id for m in matches] == [team["alice"].pk, team["bob"].pk, team["carol"].pk, None]
    assert matches[-1].unmatched_name == "Zed"


def test_attendee_email_comes_before_the_title(team):
    [match] = _match(team, "Shift: Alice", attendees=["bob@example.com", "stranger@example.com"])
    assert (match.engineer_id, match.matched_by) == (team["bob"].pk, MatchedBy.EMAIL)


def test_embedded_titles_give_the_product(team):
    [match] = _match(team, "Embedded: Bob (Edge Functions)", Purpose.EMBEDDED)
    assert (match.engineer_id, match.product) == (team["bob"].pk, "Edge Functions")
    [by_email] = _match(team, "Embedded (Auth)", Purpose.EMBEDDED, attendees=["carol@example.com"])
    assert (by_email.engineer_id, by_email.product) == (team["carol"].pk, "Auth")


def test_product_falls_back_to_the_source_default(team):
    [match] = _match(team, "Bob", Purpose.EMBEDDED, patterns=["{name}"], default_product="Realtime")
    assert (match.engineer_id, match.product) == (team["bob"].pk, "Realtime")


def test_ambiguous_first_name_matches_nobody(team):
    from calendars.factories import EngineerFactory

    erin = EngineerFactory(name="Erin Early", email="ee@example.com")
    EngineerFactory(name="Erin Else", email="e.else@example.com")
    [match] = _match(team, "Shift: Erin")
    assert match.engineer_id is None and match.unmatched_name == "Erin"
    [full] = _match(team, "Shift: Erin Early")
    assert full.engineer_id == erin.pk
    [by_email_user] = _match(team, "Shift: ee")
    assert by_email_user.engineer_id == erin.pk


def test_a_title_nobody_recognises_is_unmatched(team):
    [match] = _match(team, "Team offsite", Purpose.EMBEDDED)
    assert (match.engineer_id, match.matched_by, match.product) == (None, MatchedBy.NOBODY, "Team offsite")


def test_custom_patterns(team):
    patterns = ["[support] {name} - {product}"]
    [match] = _match(team, "[support] Bob / Storage", Purpose.EMBEDDED, patterns=patterns)
    assert match.engineer_id is None  # "/" is not "-": no pattern matched
    [match] = _match(team, "[support] Bob - Storage", Purpose.EMBEDDED, patterns=patterns)
    assert (match.engineer_id, match.product) == (team["bob"].pk, "Storage")


@pytest.mark.parametrize("pattern", ["Shift: {who}", "{name} and {name}"])
def test_bad_patterns_are_refused(pattern):
    with pytest.raises(ValueError, match="Pattern"):
        compile_patterns([pattern])
