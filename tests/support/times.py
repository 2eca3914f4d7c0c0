"""Fixed moments the engine tests start from."""

from datetime import UTC, datetime

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday morning
