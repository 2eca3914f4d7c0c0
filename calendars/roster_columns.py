"""Columns for the engineers list: who is on shift and embedded right now.

Answered once per page from calendars.resolve (on_shift / embedded), not once
per row; kept in a thread-local for the duration of the changelist request.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from django.contrib import admin

from calendars.resolve import embedded, on_shift

_now = threading.local()


class RosterNowColumnsMixin:
    roster_columns = ("on_shift_now", "embedded_now")

    def changelist_view(self, request, extra_context=None):
        at = datetime.now(UTC)
        _now.on_shift = {e.pk for e in on_shift(at)}
        _now.embedded = embedded(at)
        try:
            response = super().changelist_view(request, extra_context)
            if hasattr(response, "render"):
                response.render()
            return response
        finally:
            _now.on_shift, _now.embedded = None, None

    def _roster(self):
        if getattr(_now, "on_shift", None) is None:
            at = datetime.now(UTC)
            return {e.pk for e in on_shift(at)}, embedded(at)
        return _now.on_shift, _now.embedded

    @admin.display(description="on shift now", boolean=True)
    def on_shift_now(self, obj) -> bool:
        return obj.pk in self._roster()[0]

    @admin.display(description="embedded now")
    def embedded_now(self, obj) -> str:
        return self._roster()[1].get(obj.pk, "")
