"""The report's filters as a form (the page and its CSV links share the query string)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django import forms

from reports.figures import ReportFilters
from tickets.models import Priority, Tier, WatchedChannel

DEFAULT_DAYS = 28


class ReportFilterForm(forms.Form):
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    tier = forms.ChoiceField(required=False)
    priority = forms.ChoiceField(required=False, choices=[("", "every priority"), *Priority.choices])
    channel = forms.ChoiceField(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tier"].choices = [("", "every tier")] + [
            (name, name) for name in Tier.objects.order_by("name").values_list("name", flat=True)
        ]
        self.fields["channel"].choices = [("", "every channel")] + [
            (cid, f"#{name}")
            for cid, name in WatchedChannel.objects.order_by("name").values_list("slack_channel_id", "name")
        ]

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["until"] < data["since"]:
            raise forms.ValidationError("The end date is before the start date.")
        return data

    def filters(self, *, today=None) -> ReportFilters:
        """The filters asked for; without dates, the last 28 days up to today (UTC)."""
        today = today or datetime.now(UTC).date()
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        until = data.get("until") or today
        since = data.get("since") or until - timedelta(days=DEFAULT_DAYS - 1)
        return ReportFilters(
            since=since,
            until=max(until, since),
            tier=data.get("tier") or "",
            priority=data.get("priority") or "",
            channel=data.get("channel") or "",
        )
