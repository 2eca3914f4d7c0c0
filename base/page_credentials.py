"""Which settings may hold a pager's credentials, and how they are checked.

Plain Python, no Django: ``slabuddy/settings.py`` reads the credentials from
the environment with these names at start-up, and ``base.pages`` looks them up
by name when it pages. A page step stores only the *name* of its credential
setting (``PAGERDUTY_ROUTING_KEY_ENTERPRISE``), never the value, so the
database never holds a secret, and a name outside these families (say
``SECRET_KEY``) can never be sent anywhere.

| provider | credential setting (default name, or with a ``_SUFFIX``) |
| --- | --- |
| PagerDuty Events API v2 | ``PAGERDUTY_ROUTING_KEY`` (the integration's routing key) |
| Grafana OnCall | ``ONCALL_WEBHOOK_URL`` (the formatted webhook's URL; it holds its token) |
| generic webhook | ``PAGE_WEBHOOK_URL`` and its signing secret ``PAGE_WEBHOOK_SECRET`` (same suffix) |

Each can also be given as ``NAME_FILE`` (a path to a file holding it).
"""

from __future__ import annotations

import re

PAGERDUTY, ONCALL, WEBHOOK = "pagerduty", "oncall", "webhook"

DEFAULT_CREDENTIAL = {
    PAGERDUTY: "PAGERDUTY_ROUTING_KEY",
    ONCALL: "ONCALL_WEBHOOK_URL",
    WEBHOOK: "PAGE_WEBHOOK_URL",
}
WEBHOOK_SECRET = "PAGE_WEBHOOK_SECRET"
URL_FAMILIES = ("ONCALL_WEBHOOK_URL", "PAGE_WEBHOOK_URL")

# A family name, optionally followed by upper-case suffixes (``_ENTERPRISE``, ``_TEAM_A``).
CREDENTIAL_NAME = re.compile(
    r"(?:PAGERDUTY_ROUTING_KEY|ONCALL_WEBHOOK_URL|PAGE_WEBHOOK_URL|PAGE_WEBHOOK_SECRET)(?:_[A-Z0-9]+)*"
)


def _family(name: str, family: str) -> bool:
    return name == family or name.startswith(family + "_")


def credential_name_for(*, provider: str, credential: str) -> str:
    """The setting a page step reads: its own name, or the provider's default."""
    return credential.strip() or DEFAULT_CREDENTIAL.get(provider, "")


def credential_name_error(*, provider: str, credential: str) -> str:
    """Why ``credential`` cannot name ``provider``'s credential setting ('' when it can)."""
    default = DEFAULT_CREDENTIAL.get(provider)
    if default is None:
        return f"unknown pager provider {provider!r}"
    name = credential_name_for(provider=provider, credential=credential)
    if not CREDENTIAL_NAME.fullmatch(name) or not _family(name, default) or name.endswith("_FILE"):
        return (
            f"{name!r} is not a {provider} credential setting: use {default} "
            f"or {default}_<SUFFIX> (upper-case letters, digits and _)"
        )
    return ""


def webhook_secret_name(url_name: str) -> str:
    """``PAGE_WEBHOOK_URL_OPS`` is signed with ``PAGE_WEBHOOK_SECRET_OPS``."""
    return WEBHOOK_SECRET + url_name.removeprefix(DEFAULT_CREDENTIAL[WEBHOOK])


def credential_names_in(environ_names) -> list[str]:
    """The credential settings present in the environment (``NAME`` or ``NAME_FILE``)."""
    found = set()
    for key in environ_names:
        for name in (key, key.removesuffix("_FILE")):
            if CREDENTIAL_NAME.fullmatch(name) and not name.endswith("_FILE"):
                found.add(name)
    return sorted(found)


def page_credentials_problems(values: dict[str, str]) -> list[str]:
    """What is wrong with the configured credentials; each problem names its setting, never the value."""
    problems = []
    for name, value in sorted(values.items()):
        if any(ch.isspace() for ch in value):
            problems.append(f"{name} must not contain spaces or line breaks.")
        if any(_family(name, family) for family in URL_FAMILIES) and not value.startswith(
            ("https://", "http://")
        ):
            problems.append(f"{name} must be an http:// or https:// URL.")
        if _family(name, DEFAULT_CREDENTIAL[WEBHOOK]):
            secret = webhook_secret_name(name)
            if not values.get(secret):
                problems.append(f"{name} is set but {secret} is not: webhook pages must be signed.")
    return problems
