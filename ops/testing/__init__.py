"""Test helpers shared by every app (a real Celery worker, polling)."""
