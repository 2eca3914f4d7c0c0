from django.apps import AppConfig


class ReportsConfig(AppConfig):
    """Insight: SLA reports, replaying past tickets under a proposed policy, the weekly digest."""

    name = "reports"
    verbose_name = "Reports"
