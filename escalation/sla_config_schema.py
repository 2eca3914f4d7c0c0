"""The ``sla_config`` file format: read and check a parsed YAML document into typed specs.

Every problem is reported with the path of the bad key, in the file's own
terms (``tiers[1].policies[0].steps[2].after: "1x" is not a duration``), and
all problems are collected before the file is refused as a whole.

To add a key: add a field to the spec dataclass, read it in the matching
``_<thing>`` function with ``node.take(...)`` (which also declares the key as
known: any other key is refused), write it in ``ops/sla_config/exporting.py``
and apply it in ``ops/sla_config/importing.py``. The readers for values
(durations, choices, dates, time zones, ...) are the ``Node`` methods.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlsplit

from base.page_credentials import credential_name_error, credential_name_for
from base.pages import PageProvider
from calendars.models import Engineer, Role
from calendars.targets import TargetKind
from escalation.clock import ClockKind
from escalation.models import default_excluded_types, step_page_errors
from tickets.hours import HoursError, Weekly, weekly_parse, zone_check
from tickets.models import IntakeMode, Priority, ResponseMode, Tier, holiday_region_problem, reaction_name

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_EMOJI = re.compile(r"^[a-z0-9_+'-]+(?:::skin-tone-[2-6])?$")
_MISSING = object()


class ConfigError(ValueError):
    """One problem in the file, at ``path``."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


class ConfigInvalid(ValueError):
    """The file was refused: every problem found, each naming its path."""

    def __init__(self, errors: list[ConfigError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


def quoted(value: object) -> str:
    """A value as the message shows it: strings in double quotes, the rest as YAML would read it."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, date):
        return value.isoformat()
    return json.dumps(value, default=str)


def duration_parse(value: object) -> timedelta:
    """'1h', '30m', '1h30m', '2d', '45s', '0' -> timedelta; ValueError otherwise."""
    text = value.strip().replace(" ", "") if isinstance(value, str) else None
    match = _DURATION.match(text) if text else None
    if text == "0":
        return timedelta(0)
    if not match or not any(match.groups()):
        raise ValueError(f"{quoted(value)} is not a duration (like 30m, 1h, 1h30m, 2d)")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def duration_text(value: timedelta) -> str:
    """The inverse of duration_parse: 1h30m, 45s, 0."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)


class Reader:
    """Collects the problems of one file (and what it asks that this server cannot do yet)."""

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []
        self.warnings: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.errors.append(ConfigError(path, message))

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"{path}: {message}")


class Node:
    """A value in the file and its path, with readers that record problems instead of raising."""

    def __init__(self, value: Any, path: str, reader: Reader):
        self.value = value
        self.path = path
        self.reader = reader
        self._known: set[str] = set()

    def fail(self, message: str) -> None:
        self.reader.fail(self.path, message)

    # -- structure ---------------------------------------------------------------
    def is_mapping(self) -> bool:
        if isinstance(self.value, dict):
            return True
        self.fail(f"must be a mapping (key: value), not {quoted(self.value)}")
        return False

    def child(self, key: str) -> Node:
        return Node(self.value.get(key, _MISSING), f"{self.path}.{key}" if self.path else key, self.reader)

    def take(self, key: str, read: Callable[[Node], Any], *, default: Any = _MISSING) -> Any:
        """Read ``key`` with ``read`` (a Node method or function); a missing key gives ``default``
        or, without one, a problem. Marks the key as known."""
        self._known.add(key)
        node = self.child(key)
        if node.value is _MISSING or node.value is None:
            if default is _MISSING:
                node.fail("is required")
                return None
            return default
        return read(node)

    def items(self) -> list[Node]:
        if self.value is _MISSING or self.value is None:
            return []
        if not isinstance(self.value, list):
            self.fail(f"must be a list, not {quoted(self.value)}")
            return []
        return [Node(v, f"{self.path}[{i}]", self.reader) for i, v in enumerate(self.value)]

    def unknown_keys(self) -> None:
        """Refuse keys no reader asked for (typos must not pass silently)."""
        if not isinstance(self.value, dict):
            return
        for key in self.value:
            if key not in self._known:
                expected = ", ".join(sorted(self._known))
                where = f"{self.path}.{key}" if self.path else str(key)
                self.reader.fail(where, f"unknown key (expected one of: {expected})")

    # -- values --------------------------------------------------------------------
    def text(self) -> str | None:
        if isinstance(self.value, str | int) and not isinstance(self.value, bool):
            return str(self.value).strip()
        self.fail(f"{quoted(self.value)} is not text")
        return None

    def flag(self) -> bool | None:
        if isinstance(self.value, bool):
            return self.value
        self.fail(f"{quoted(self.value)} is not true or false")
        return None

    def count(self) -> int | None:
        if isinstance(self.value, int) and not isinstance(self.value, bool) and self.value >= 0:
            return self.value
        self.fail(f"{quoted(self.value)} is not a whole number")
        return None

    def level(self) -> int | None:
        if isinstance(self.value, int) and not isinstance(self.value, bool) and self.value >= 1:
            return self.value
        self.fail(f"{quoted(self.value)} is not a level (1, 2, 3, ...)")
        return None

    def duration(self) -> timedelta | None:
        try:
            return duration_parse(self.value)
        except ValueError as exc:
            self.fail(str(exc))
            return None

    def minutes(self) -> int | None:
        """A duration of whole minutes, at least one (snooze)."""
        value = self.duration()
        if value is None:
            return None
        if value < timedelta(minutes=1) or value % timedelta(minutes=1):
            self.fail(f"{quoted(self.value)} must be whole minutes, at least 1m")
            return None
        return int(value.total_seconds() // 60)

    def emoji(self) -> str | None:
        """A Slack reaction name, with or without colons: white_check_mark, :lock:."""
        text = self.text()
        if text is None:
            return None
        name = reaction_name(text)
        if not _EMOJI.match(name):
            self.fail(f"{quoted(text)} is not an emoji name (like white_check_mark)")
            return None
        return name

    def words(self) -> list[str] | None:
        """A list of names: [feedback, question]."""
        if not isinstance(self.value, list):
            self.fail(f"must be a list, like [feedback], not {quoted(self.value)}")
            return None
        words = []
        for i, item in enumerate(self.value):
            text = Node(item, f"{self.path}[{i}]", self.reader).text()
            if text:
                words.append(text)
        return words

    def choice(self, choices: type) -> str | None:
        values = [str(c) for c in choices.values]
        if isinstance(self.value, str) and self.value in values:
            return self.value
        shown = ", ".join(v or quoted(v) for v in values)
        self.fail(f"{quoted(self.value)} is not one of: {shown}")
        return None

    def zone(self) -> str | None:
        try:
            return str(zone_check(str(self.value)))
        except ValueError as exc:
            self.fail(str(exc))
            return None

    def day(self) -> date | None:
        if isinstance(self.value, date):
            return self.value
        try:
            return date.fromisoformat(str(self.value))
        except ValueError:
            self.fail(f"{quoted(self.value)} is not a date like 2026-12-24")
            return None

    def url(self) -> str | None:
        text = self.text()
        if text is None:
            return None
        if urlsplit(text).scheme.lower() not in ("https", "webcal", "http") or not urlsplit(text).netloc:
            self.fail(f"{quoted(text)} is not an https:// or webcal:// address")
            return None
        return text


# --- the specs ------------------------------------------------------------------------


@dataclass
class PageSpec:
    """A page step's pager: ``EscalationStep.page_provider``, ``page_credential`` (the NAME of the
    setting, never a secret; blank: the provider's default) and ``page_priorities``."""

    provider: str
    credential: str = ""
    priorities: list[str] = field(default_factory=list)


@dataclass
class StepSpec:
    level: int
    after: timedelta
    notify: str
    ref: str = ""
    engineer: str = ""  # email, Slack id or name of an engineer (in the file or the database)
    outside_hours: bool = False
    message: str = ""
    page: PageSpec | None = None  # notify: page


@dataclass
class NextResponseSpec:
    """After an answer, a customer who writes again starts a cycle of these steps."""

    target: timedelta | None = None  # None: the level 1 delay
    steps: list[StepSpec] = field(default_factory=list)


@dataclass
class PolicySpec:
    priority: str
    clock: str = ClockKind.CALENDAR
    name: str = ""
    first_response_target: timedelta | None = None
    snooze_minutes: int = 30
    snoozes_extend_target: bool = False
    max_total_snooze: timedelta | None = None
    exclude_types: list[str] = field(default_factory=default_excluded_types)
    active: bool = True
    steps: list[StepSpec] = field(default_factory=list)
    next_response: NextResponseSpec | None = None


@dataclass
class HolidayEntry:
    day: date
    name: str = ""


@dataclass
class HolidaysSpec:
    dates: list[HolidayEntry] = field(default_factory=list)
    country: str = ""
    subdivision: str = ""
    ical: str = ""  # an iCal holiday feed, synced as a calendar source
    google_calendar: str = ""  # or a Google holiday calendar id


@dataclass
class TierSpec:
    name: str
    time_zone: str = "UTC"
    description: str = ""
    business_hours: Weekly | None = None
    holidays: HolidaysSpec = field(default_factory=HolidaysSpec)
    policies: list[PolicySpec] = field(default_factory=list)


@dataclass
class ChannelSpec:
    id: str
    name: str
    tier: str
    intake: str = IntakeMode.HELPDESK_BOT
    response: str = ResponseMode.SLACK_THREAD
    allowed_bot_ids: str = ""
    lookback_minutes: int = 120
    active: bool = True
    close_reaction: str = ""  # blank: white_check_mark
    waiting_reaction: str = ""  # blank: hourglass_flowing_sand


@dataclass
class EngineerSpec:
    name: str
    email: str = ""
    slack_id: str = ""
    role: str = Role.SUPPORT_ENGINEER
    active: bool = True

    @property
    def key(self) -> str:
        return self.email or self.slack_id or self.name


@dataclass
class SlaConfig:
    tiers: list[TierSpec] = field(default_factory=list)
    channels: list[ChannelSpec] = field(default_factory=list)
    engineers: list[EngineerSpec] = field(default_factory=list)
    # Not refusals: what the file asks that this server cannot do yet (a page credential not set).
    warnings: list[str] = field(default_factory=list)


# --- reading --------------------------------------------------------------------------


def _page(node: Node) -> PageSpec | None:
    if not node.is_mapping():
        return None
    spec = PageSpec(
        provider=node.take("provider", lambda n: n.choice(PageProvider)),
        credential=node.take("credential", Node.text, default=""),
        priorities=node.take("priorities", Node.words, default=[]),
    )
    node.unknown_keys()
    if spec.provider is None or spec.priorities is None:
        return None
    # The same checks as the admin and the Slack forms (escalation.models.step_page_errors). A
    # credential that is a valid name but not set here is only a warning: the file may be meant
    # for another server, and the secrets never travel with it.
    errors = step_page_errors(target_kind=TargetKind.PAGE, provider=spec.provider, credential=spec.credential,
                              priorities=spec.priorities)
    name_problem = credential_name_error(provider=spec.provider, credential=spec.credential)
    for field_name, message in errors.items():
        key = {"page_credential": "credential", "page_priorities": "priorities"}.get(field_name, "provider")
        if field_name == "page_credential" and not name_problem:
            name = credential_name_for(provider=spec.provider, credential=spec.credential)
            node.reader.warn(f"{node.path}.credential",
                             f"{name} is not set on this server: the level cannot page here until it is "
                             f"(set {name} or {name}_FILE and restart)")
        else:
            node.child(key).fail(message.rstrip("."))
    return spec


def _step(node: Node) -> StepSpec | None:
    if not node.is_mapping():
        return None
    spec = StepSpec(
        level=node.take("level", Node.level),
        after=node.take("after", Node.duration),
        notify=node.take("notify", lambda n: n.choice(TargetKind)),
        ref=node.take("ref", Node.text, default=""),
        engineer=node.take("engineer", Node.text, default=""),
        outside_hours=node.take("outside_hours", Node.flag, default=False),
        message=node.take("message", Node.text, default=""),
        page=node.take("page", _page, default=None),
    )
    node.unknown_keys()
    if spec.notify == TargetKind.ENGINEER and not spec.engineer:
        node.child("engineer").fail("is required when notify is engineer (an email or Slack id)")
    paged = isinstance(node.value, dict) and node.value.get("page") is not None
    if spec.notify == TargetKind.PAGE and not paged:
        node.child("page").fail("is required when notify is page ({provider: pagerduty | oncall | webhook, "
                                "credential: <setting name>, priorities: [...]})")
    elif paged and spec.notify not in (None, TargetKind.PAGE):
        node.child("page").fail("is only for notify: page")
    return spec


def _steps(node: Node, *, required: bool) -> list[StepSpec]:
    step_nodes = node.items()
    if required and not step_nodes:
        node.fail("is required: a policy needs at least one step")
    steps = [_step(n) for n in step_nodes]
    _unique([n.child("level") for n in step_nodes], [s.level if s else None for s in steps], "level")
    return [s for s in steps if s is not None]


def _next_response(node: Node) -> NextResponseSpec | None:
    if not node.is_mapping():
        return None
    spec = NextResponseSpec(target=node.take("target", Node.duration, default=None))
    node._known.add("steps")
    spec.steps = _steps(node.child("steps"), required=False)
    if not spec.steps:
        node.child("steps").fail("is required: a next-response ladder needs at least one step")
    node.unknown_keys()
    return spec


def _unique(nodes: list[Node], values: list[Any], what: str) -> None:
    seen: set = set()
    for node, value in zip(nodes, values, strict=True):
        if value is None:
            continue
        if value in seen:
            node.fail(f"{what} {quoted(value)} appears more than once")
        seen.add(value)


def _policy(node: Node) -> PolicySpec | None:
    if not node.is_mapping():
        return None
    priority = node.take("priority", lambda n: "" if n.value == "" else n.choice(Priority), default="")
    spec = PolicySpec(
        priority=priority,
        clock=node.take("clock", lambda n: n.choice(ClockKind), default=ClockKind.CALENDAR),
        name=node.take("name", Node.text, default=""),
        first_response_target=node.take("first_response_target", Node.duration, default=None),
        snooze_minutes=node.take("snooze", Node.minutes, default=30),
        snoozes_extend_target=node.take("snoozes_extend_target", Node.flag, default=False),
        max_total_snooze=node.take("max_total_snooze", Node.duration, default=None),
        exclude_types=node.take("exclude_types", Node.words, default=default_excluded_types()),
        active=node.take("active", Node.flag, default=True),
        next_response=node.take("next_response", _next_response, default=None),
    )
    node._known.add("steps")
    spec.steps = _steps(node.child("steps"), required=True)
    node.unknown_keys()
    return spec


def _business_hours(node: Node) -> Weekly | None:
    try:
        return weekly_parse(node.value)
    except HoursError as exc:
        where = node if not exc.key else Node(None, f"{node.path}.{exc.key}", node.reader)
        where.fail(exc.message)
        return None


def _holiday_entry(node: Node) -> HolidayEntry | None:
    if isinstance(node.value, dict):
        day = node.take("date", Node.day)
        name = node.take("name", Node.text, default="")
        node.unknown_keys()
        return HolidayEntry(day, name) if day else None
    day = node.day()
    return HolidayEntry(day) if day else None


def _holidays(node: Node) -> HolidaysSpec:
    if not node.is_mapping():
        return HolidaysSpec()
    node._known.add("dates")
    date_nodes = node.child("dates").items()
    entries = [_holiday_entry(n) for n in date_nodes]
    _unique(date_nodes, [e.day if e else None for e in entries], "date")
    spec = HolidaysSpec(
        dates=[e for e in entries if e is not None],
        country=(node.take("country", Node.text, default="") or "").upper(),
        subdivision=(node.take("subdivision", Node.text, default="") or "").upper(),
        ical=node.take("ical", Node.url, default=""),
        google_calendar=node.take("google_calendar", Node.text, default=""),
    )
    problem = holiday_region_problem(spec.country, spec.subdivision)
    if problem:
        node.child("subdivision" if "subdivision" in problem else "country").fail(problem)
    if spec.ical and spec.google_calendar:
        node.child("google_calendar").fail("give either ical or google_calendar, not both")
    node.unknown_keys()
    return spec


def _tier(node: Node) -> TierSpec | None:
    if not node.is_mapping():
        return None
    spec = TierSpec(
        name=node.take("name", Node.text),
        time_zone=node.take("time_zone", Node.zone, default="UTC"),
        description=node.take("description", Node.text, default=""),
        business_hours=node.take("business_hours", _business_hours, default=None),
        holidays=node.take("holidays", _holidays, default=HolidaysSpec()),
    )
    node._known.add("policies")
    policy_nodes = node.child("policies").items()
    policies = [_policy(n) for n in policy_nodes]
    _unique([n.child("priority") for n in policy_nodes], [p.priority if p else None for p in policies],
            "priority")
    spec.policies = [p for p in policies if p is not None]
    node.unknown_keys()
    return spec


def _channel(node: Node) -> ChannelSpec | None:
    if not node.is_mapping():
        return None
    spec = ChannelSpec(
        id=node.take("id", Node.text),
        name=node.take("name", Node.text),
        tier=node.take("tier", Node.text),
        intake=node.take("intake", lambda n: n.choice(IntakeMode), default=IntakeMode.HELPDESK_BOT),
        response=node.take("response", lambda n: n.choice(ResponseMode), default=ResponseMode.SLACK_THREAD),
        allowed_bot_ids=node.take("allowed_bot_ids", Node.text, default=""),
        lookback_minutes=node.take("lookback_minutes", Node.count, default=120),
        active=node.take("active", Node.flag, default=True),
        close_reaction=node.take("close_reaction", Node.emoji, default=""),
        waiting_reaction=node.take("waiting_reaction", Node.emoji, default=""),
    )
    node.unknown_keys()
    if spec.close_reaction and spec.close_reaction == spec.waiting_reaction:
        node.child("waiting_reaction").fail("must differ from close_reaction")
    return spec


def _engineer(node: Node) -> EngineerSpec | None:
    if not node.is_mapping():
        return None
    spec = EngineerSpec(
        name=node.take("name", Node.text),
        email=(node.take("email", Node.text, default="") or "").lower(),
        slack_id=node.take("slack_id", Node.text, default=""),
        role=node.take("role", lambda n: n.choice(Role), default=Role.SUPPORT_ENGINEER),
        active=node.take("active", Node.flag, default=True),
    )
    if spec.email and "@" not in spec.email:
        node.child("email").fail(f"{quoted(spec.email)} is not an email address")
    node.unknown_keys()
    return spec


def config_read(document: Any, *, known_tiers: set[str] = frozenset(),
                known_engineers: set[str] = frozenset()) -> SlaConfig:
    """Check a parsed YAML document. ``known_tiers`` / ``known_engineers`` (emails and Slack
    ids) are what the database already has, for references to things the file does not list.
    Raises ConfigInvalid with every problem found."""
    reader = Reader()
    root = Node(document if document is not None else {}, "", reader)
    config = SlaConfig()
    if root.is_mapping():
        for key in ("tiers", "channels", "engineers"):
            root._known.add(key)
        tier_nodes = root.child("tiers").items()
        tiers = [_tier(n) for n in tier_nodes]
        _unique([n.child("name") for n in tier_nodes], [t.name if t else None for t in tiers], "tier")
        config.tiers = [t for t in tiers if t is not None]
        channel_nodes = root.child("channels").items()
        channels = [_channel(n) for n in channel_nodes]
        _unique([n.child("id") for n in channel_nodes], [c.id if c else None for c in channels], "channel")
        config.channels = [c for c in channels if c is not None]
        engineer_nodes = root.child("engineers").items()
        engineers = [_engineer(n) for n in engineer_nodes]
        _unique([n.child("email") for n in engineer_nodes],
                [e.email or None if e else None for e in engineers], "email")
        _unique([n.child("slack_id") for n in engineer_nodes],
                [e.slack_id or None if e else None for e in engineers], "slack_id")
        config.engineers = [e for e in engineers if e is not None]
        root.unknown_keys()
        _references(config, root, channel_nodes, known_tiers, known_engineers)
    if reader.errors:
        raise ConfigInvalid(reader.errors)
    config.warnings = reader.warnings
    return config


def _listed(value: Any, key: str) -> list:
    found = value.get(key) if isinstance(value, dict) else None
    return found if isinstance(found, list) else []


def _references(config: SlaConfig, root: Node, channel_nodes: list[Node],
                known_tiers: set[str], known_engineers: set[str]) -> None:
    """Channels name tiers, steps name engineers: each must exist in the file or the database."""
    tiers = {t.name for t in config.tiers} | set(known_tiers)
    for node in channel_nodes:
        name = node.value.get("tier") if isinstance(node.value, dict) else None
        if isinstance(name, str) and name.strip() and name.strip() not in tiers:
            node.child("tier").fail(f"{quoted(name)} is not a tier in this file or the database")
    engineers = {e.lower() for e in known_engineers}
    for engineer in config.engineers:
        engineers.update(k.lower() for k in (engineer.email, engineer.slack_id, engineer.name) if k)
    for t, tier in enumerate(_listed(root.value, "tiers")):
        for p, policy in enumerate(_listed(tier, "policies")):
            ladders = [(f"tiers[{t}].policies[{p}].steps", _listed(policy, "steps"))]
            later = policy.get("next_response") if isinstance(policy, dict) else None
            ladders.append((f"tiers[{t}].policies[{p}].next_response.steps", _listed(later, "steps")))
            for where, steps in ladders:
                for s, step in enumerate(steps):
                    ref = step.get("engineer") if isinstance(step, dict) else None
                    if isinstance(ref, str) and ref.strip() and ref.strip().lower() not in engineers:
                        root.reader.fail(
                            f"{where}[{s}].engineer",
                            f"{quoted(ref)} is not an engineer (email, Slack id or name) in this file "
                            "or the database",
                        )


def known_references() -> tuple[set[str], set[str]]:
    """Tier names, and engineer emails / Slack ids / names, already in the database (what a file
    may refer to without listing it)."""
    tiers = set(Tier.objects.values_list("name", flat=True))
    engineers: set[str] = set()
    for email, slack_id, name in Engineer.objects.values_list("email", "slack_user_id", "name"):
        engineers.update(k for k in (email, slack_id, name) if k)
    return tiers, engineers
