"""The replay page's form: a range, a tier, and a proposed policy file (uploaded or pasted), checked
with the ``sla_config`` reader so every problem shows with the path of its key."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django import forms
from django.utils import timezone

from escalation.sla_config_schema import SlaConfig
from reports.replay.policy_file import PolicyFileInvalid, policy_file_read
from tickets.models import Tier

MAX_FILE_BYTES = 1_000_000
EXAMPLE = """tiers:
  - name: Enterprise
    policies:
      - priority: ""
        steps:
          - {level: 1, after: 5m, notify: on_shift_not_embedded}
          - {level: 2, after: 15m, notify: on_shift}
"""


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


class ReplayForm(forms.Form):
    since = forms.DateField(help_text="First day (UTC).", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(help_text="Last day (UTC), included.",
                            widget=forms.DateInput(attrs={"type": "date"}))
    tier = forms.ChoiceField(required=False)
    policy_text = forms.CharField(
        required=False, label="Proposed policies (YAML)",
        widget=forms.Textarea(attrs={"rows": 18, "cols": 90, "spellcheck": "false", "placeholder": EXAMPLE}),
        help_text="In the format of sla_config (python manage.py sla_config export gives today's). A tier "
        "the file names replays with its policies, business hours and holidays (no business_hours: around "
        "the clock); tiers it does not name keep their current policies and the hours their tickets were "
        "armed with.",
    )
    policy_file = forms.FileField(required=False, label="…or upload a YAML file")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tier"].choices = [("", "Every tier")] + [
            (name, name) for name in Tier.objects.order_by("name").values_list("name", flat=True)]
        self.config: SlaConfig | None = None
        self.file_errors: list[str] = []

    @classmethod
    def last_month(cls) -> dict:
        today = timezone.now().astimezone(UTC).date()
        return {"since": today - timedelta(days=30), "until": today}

    def clean(self):
        data = super().clean()
        upload = data.get("policy_file")
        text = data.get("policy_text") or ""
        if upload is not None:
            if upload.size > MAX_FILE_BYTES:
                self.add_error("policy_file", "The file is larger than 1 MB.")
                return data
            try:
                text = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                self.add_error("policy_file", "The file is not UTF-8 text.")
                return data
        if not text.strip():
            self.add_error("policy_text", "Paste the proposed policies or upload a file.")
            return data
        try:
            self.config = policy_file_read(text)
        except PolicyFileInvalid as invalid:
            self.file_errors = [str(error) for error in invalid.errors]
            self.add_error("policy_file" if upload is not None else "policy_text",
                           f"The file was refused ({len(invalid.errors)} problem(s), listed below).")
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", "The last day must not be before the first.")
        return data

    def range(self) -> tuple[datetime, datetime]:
        data = self.cleaned_data
        return _start_of(data["since"]), _start_of(data["until"] + timedelta(days=1))
