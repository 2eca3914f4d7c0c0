"""Pager credentials for tests, set the way the environment would set them, and helpers to read pages."""

from __future__ import annotations

from base.models import OutboxMessage, OutboxPurpose

ROUTING_KEY = "R0ut1ngKeyForTests0000000000000a"  # 32 characters, like a real integration key
OTHER_ROUTING_KEY = "R0ut1ngKeyForTests0000000000000b"
ONCALL_TOKEN = "oncall-secret-token-for-tests"
WEBHOOK_PAGE_SECRET = "webhook-page-secret-for-tests"
SECRETS = (ROUTING_KEY, OTHER_ROUTING_KEY, ONCALL_TOKEN, WEBHOOK_PAGE_SECRET)


def pager_settings(settings, pager) -> None:
    """Point paging at the stand-in and give it credentials, as settings.py reads them."""
    settings.PAGERDUTY_EVENTS_URL = pager.pagerduty_url
    settings.PAGE_TIMEOUT_SECONDS = 2
    settings.PAGE_CREDENTIALS = {
        "PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
        "PAGERDUTY_ROUTING_KEY_TEAMS": OTHER_ROUTING_KEY,
        "ONCALL_WEBHOOK_URL": pager.oncall_url(ONCALL_TOKEN),
        "PAGE_WEBHOOK_URL": pager.webhook_url("ops"),
        "PAGE_WEBHOOK_SECRET": WEBHOOK_PAGE_SECRET,
    }


def pages() -> list[OutboxMessage]:
    return list(OutboxMessage.objects.filter(purpose=OutboxPurpose.PAGE).order_by("pk"))


def stored_text() -> str:
    """Everything the database holds about pages, as one string (to look for secrets in)."""
    return " ".join(
        f"{m.key} {m.text} {m.payload} {m.context} {m.last_error}" for m in pages()
    )
