"""Configuration fails at start-up with a message naming the setting."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROD_SECRET = "k" * 20 + "abcdefghijklmnopqrstuvwxyz0123456789"
# A production environment that starts: each weak-value case below changes one variable of it.
PROD = {
    "SLABUDDY_MODE": "production",
    "SECRET_KEY": PROD_SECRET,
    "ALLOWED_HOSTS": "sla.example.com",
    "SLACK_BOT_TOKEN": "xoxb-1234-5678-abcdef",
    "SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5",
}


def run_django(env_overrides: dict[str, str], *args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "DATABASE_", "CELERY_", "SLABUDDY_", "SECRET_KEY", "GOOGLE_"))
    }
    env.update({"SLABUDDY_DATA_DIR": str(tmp_path)})
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CELERY_BROKER_URL": "amqp://guest@localhost//"}, "CELERY_BROKER_URL"),
        ({"DATABASE_URL": "mysql://root@localhost/x"}, "DATABASE_URL"),
        ({"DATABASE_URL": "nonsense"}, "DATABASE_URL"),
        ({"ESCALATION_SWEEP_SECONDS": "soon"}, "ESCALATION_SWEEP_SECONDS"),
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"SLABUDDY_MODE": "staging"}, "SLABUDDY_MODE"),
        ({"SLABUDDY_MODE": "production"}, "SECRET_KEY"),
        ({"SLABUDDY_MODE": "production", "SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"SLABUDDY_MODE": "production", "SECRET_KEY": PROD_SECRET}, "ALLOWED_HOSTS"),
        (
            {"SLABUDDY_MODE": "production", "SECRET_KEY": PROD_SECRET, "ALLOWED_HOSTS": "sla.example.com"},
            "SLACK_BOT_TOKEN",
        ),
        ({"SLACK_BOT_TOKEN_FILE": "/nonexistent/token"}, "SLACK_BOT_TOKEN_FILE"),
        ({"GOOGLE_CREDENTIALS_FILE": "/nonexistent/sa.json"}, "GOOGLE_CREDENTIALS_FILE"),
        ({"SLACK_API_BASE_URL": "ftp://x"}, "SLACK_API_BASE_URL"),
        (
            {"ESCALATION_HORIZON_SECONDS": "3000", "REDIS_VISIBILITY_TIMEOUT": "3600"},
            "REDIS_VISIBILITY_TIMEOUT",
        ),
        ({"ESCALATION_PREPARE_AHEAD_MS": "5000"}, "ESCALATION_PREPARE_AHEAD_MS"),
        ({"ESCALATION_PREPARE_AHEAD_MS": "-1"}, "ESCALATION_PREPARE_AHEAD_MS"),
        ({"ESCALATION_CLAIM_LEASE_SECONDS": "20", "CELERY_TASK_TIME_LIMIT": "15",
          "CELERY_TASK_SOFT_TIME_LIMIT": "10", "SLACK_TIMEOUT_SECONDS": "15"},
         "ESCALATION_CLAIM_LEASE_SECONDS"),
    ],
)
def test_bad_setting_names_the_variable(env, named, tmp_path):
    result = run_django(env, "check", tmp_path=tmp_path)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert named in result.stderr.splitlines()[-1]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"ALLOWED_HOSTS": "*"}, "ALLOWED_HOSTS"),
        ({"ALLOWED_HOSTS": "sla.example.com, *"}, "ALLOWED_HOSTS"),
        ({"SLACK_SIGNING_SECRET": "too-short-15chr"}, "SLACK_SIGNING_SECRET"),
        ({"SLACK_SIGNING_SECRET": " " * 32}, "SLACK_SIGNING_SECRET"),
        ({"SLACK_SIGNING_SECRET": "\t \t" * 8}, "SLACK_SIGNING_SECRET"),
        ({"SLACK_BOT_TOKEN": "xoxp-1234-5678-abcdef"}, "SLACK_BOT_TOKEN"),
        ({"SLACK_BOT_TOKEN": "8f742231b10e8888abcd99yyyzzz85a5"}, "SLACK_BOT_TOKEN"),
    ],
    ids=["hosts-star", "hosts-with-star", "secret-short", "secret-spaces", "secret-tabs", "user-token",
         "not-a-token"],
)
def test_production_refuses_weak_values(env, named, tmp_path):
    result = run_django({**PROD, **env}, "check", tmp_path=tmp_path)
    assert result.returncode != 0
    last = result.stderr.splitlines()[-1]
    assert "ImproperlyConfigured" in last and named in last
    if named.startswith("SLACK_") and env[named].strip():
        assert env[named].strip() not in result.stderr  # a secret is named, never quoted


def test_production_starts_with_good_values_and_dev_allows_weak_ones(tmp_path):
    assert run_django(PROD, "check", tmp_path=tmp_path).returncode == 0
    dev = {"ALLOWED_HOSTS": "*", "SLACK_SIGNING_SECRET": "short", "SLACK_BOT_TOKEN": "xoxb-t"}
    assert run_django(dev, "check", tmp_path=tmp_path).returncode == 0


def test_secret_from_file(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("xoxb-from-file\n")
    result = run_django(
        {"SLACK_BOT_TOKEN_FILE": str(token_file)},
        "shell", "-c", "from django.conf import settings; print(settings.SLACK_BOT_TOKEN)",
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "xoxb-from-file"


def test_check_deploy_is_clean_under_production_settings(tmp_path):
    result = run_django(PROD, "check", "--deploy", "--fail-level", "WARNING", tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.django_db
def test_default_is_sqlite_wal(settings):
    from django.db import connection

    if not settings.DATABASE_IS_SQLITE:
        pytest.skip("this run uses DATABASE_URL (PostgreSQL)")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] >= 5000
