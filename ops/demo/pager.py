"""The demo's stand-in pager as the demo page shows it: the incidents ``base.fake_pager`` holds.

Read from its ``GET /incidents`` (a local process started by runall next to the stand-in
Slack); the demo never pages a real pager.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from django.conf import settings

PAGERDUTY_PATH = "/v2/enqueue"


def demo_pager_incidents(*, timeout: float = 2.0) -> dict:
    base = settings.PAGERDUTY_EVENTS_URL.removesuffix(PAGERDUTY_PATH)
    try:
        with urllib.request.urlopen(f"{base}/incidents", timeout=timeout) as response:  # noqa: S310 (local)
            data = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return {"incidents": [], "error": f"stand-in pager not reachable ({type(exc).__name__})"}
    incidents = [i for i in data.get("incidents") or [] if isinstance(i, dict)]
    return {"incidents": incidents, "error": ""}
