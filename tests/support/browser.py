"""Playwright with Debian's Chromium. The browser is never downloaded."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("SLABUDDY_CHROMIUM", "/usr/bin/chromium"))
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("SLABUDDY_ARTIFACTS_DIR", ROOT / "artifacts"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def skip_without_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip(
            f"browser tests skipped: {CHROMIUM} is missing (apt-get install chromium)",
            allow_module_level=True,
        )


@contextmanager
def chromium_launched() -> Iterator:
    """Debian's Chromium under Playwright. Use it in a fixture requested AFTER the fixtures that
    write rows: ORM calls made while Playwright's sync API runs happen in another context
    (greenlet) and would leave a database connection open that Django never closes."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - optional, only for browser tests

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def admin_logged_in(page, base_url: str, *, username: str, password: str) -> None:
    """Log in through the admin's own login form and wait for the admin index."""
    page.goto(f"{base_url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
