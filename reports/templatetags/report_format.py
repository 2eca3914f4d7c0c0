from datetime import timedelta

from django import template

from base.formatting import duration_text

register = template.Library()


@register.filter
def seconds_text(value) -> str:
    """1800.0 -> '30 min'; None -> '–'."""
    return "–" if value is None else duration_text(timedelta(seconds=float(value)))
