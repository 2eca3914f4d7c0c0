"""SLA Buddy settings, read from the environment.

Defaults run on one machine with no server at all: a SQLite file and an
embedded (filesystem) Celery broker under ``SLABUDDY_DATA_DIR``. Production
sets ``SLABUDDY_MODE=production`` plus ``DATABASE_URL``, ``CELERY_BROKER_URL``
and the secrets; README.md lists every variable.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from base.page_credentials import credential_names_in, page_credentials_problems
from slabuddy.env import (
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_secret,
    env_str,
    env_url,
    refuse_unprefixed_token,
    refuse_weak_secret,
    refuse_wildcard_hosts,
)

BASE_DIR = Path(__file__).resolve().parent.parent

MODE = env_choice("SLABUDDY_MODE", "dev", ("dev", "production"))
PRODUCTION = MODE == "production"

DATA_DIR = Path(env_str("SLABUDDY_DATA_DIR", str(BASE_DIR / "data"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _dev_secret_key() -> str:
    """A per-checkout key kept in the data folder, never committed."""
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


if PRODUCTION:
    SECRET_KEY = env_secret("SECRET_KEY", required=True)
    if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        raise ImproperlyConfigured(
            "SECRET_KEY must be at least 50 characters with at least 5 distinct characters."
        )
else:
    SECRET_KEY = env_secret("SECRET_KEY") or _dev_secret_key()

DEBUG = env_bool("DEBUG", not PRODUCTION)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off when SLABUDDY_MODE=production.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must list the host names SLA Buddy is served on.")
if PRODUCTION:
    refuse_wildcard_hosts("ALLOWED_HOSTS", ALLOWED_HOSTS)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Public base URL, used in links the bot posts (admin ticket pages).
SITE_URL = env_url("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    # SLA Buddy, bottom layer first; a layer never imports one below it in this
    # list (the import contract in pyproject.toml, checked by `make test`).
    "base",
    "calendars",
    "tickets",
    "escalation",
    "slackbot",
    "reports",
    "ops",
]

MIDDLEWARE = [
    # /healthz and /readyz answer before host validation and the HTTPS redirect,
    # so container health checks work with any Host header (ops/middleware.py).
    "ops.middleware.HealthEndpointsMiddleware",
    # POST /slack/events skips the middleware for people and the URL resolver: Slack
    # floods it and wants an answer within 3 s (slackbot/middleware.py).
    "slackbot.middleware.SlackEventsShortPathMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files under gunicorn
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "slabuddy.urls"
WSGI_APPLICATION = "slabuddy.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------
# SQLite by default, in WAL mode with a busy timeout so that the web server,
# the worker and beat can share one file. PostgreSQL via DATABASE_URL.
_default_db_url = f"sqlite:///{DATA_DIR / 'slabuddy.sqlite3'}"
_db_url = env_str("DATABASE_URL", _default_db_url)
try:
    _db = dj_database_url.parse(_db_url, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60))
except Exception as exc:  # dj_database_url raises ValueError/KeyError on bad schemes
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from exc
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db["CONN_MAX_AGE"] = 0
    _db["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
    }
    # A file, not :memory:, so a real Celery worker started by a test sees it.
    _db["TEST"] = {"NAME": str(DATA_DIR / "test_slabuddy.sqlite3")}
elif _db["ENGINE"] not in (
    "django.db.backends.postgresql",
    "django.db.backends.postgresql_psycopg2",
):
    raise ImproperlyConfigured("DATABASE_URL must be a sqlite:// or postgres:// URL.")
else:
    # Persistent connections (DATABASE_CONN_MAX_AGE), each checked before it is reused
    # in a new request or task, so that a PostgreSQL restart costs no failed request;
    # and a bounded connect, so that an unreachable server fails fast instead of hanging.
    _db["CONN_HEALTH_CHECKS"] = env_bool("DATABASE_CONN_HEALTH_CHECKS", True)
    _db.setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 5, minimum=1)
    )
DATABASES = {"default": _db}
DATABASE_IS_SQLITE = _db["ENGINE"] == "django.db.backends.sqlite3"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(DATA_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing root
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Security (production) -------------------------------------------------
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

# --- Celery ----------------------------------------------------------------
# Embedded default: kombu's filesystem transport under DATA_DIR, which works
# across processes on one machine. Production: redis://.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if not CELERY_BROKER_URL.startswith(("filesystem://", "redis://", "rediss://", "memory://")):
    raise ImproperlyConfigured(
        "CELERY_BROKER_URL must be redis://..., rediss://... or filesystem:// (embedded)."
    )
BROKER_IS_FILESYSTEM = CELERY_BROKER_URL.startswith("filesystem://")

# Levels further away than this get their Celery task from the horizon job
# (escalation.tasks), so no ETA task sits in a worker for hours and Redis
# never redelivers one: the visibility timeout is far above the horizon.
ESCALATION_HORIZON_SECONDS = env_int("ESCALATION_HORIZON_SECONDS", 300, minimum=30)
ESCALATION_SWEEP_SECONDS = env_int("ESCALATION_SWEEP_SECONDS", 15, minimum=1)
# A level's task comes this early: it reads the level and drafts its message, then waits for the
# due moment, so that only the claim and the post are left when the level is due. 0: on time.
ESCALATION_PREPARE_AHEAD_MS = env_int("ESCALATION_PREPARE_AHEAD_MS", 100, minimum=0)
if ESCALATION_PREPARE_AHEAD_MS > 2000:  # the wait holds a worker thread
    raise ImproperlyConfigured("ESCALATION_PREPARE_AHEAD_MS must be at most 2000.")
REDIS_VISIBILITY_TIMEOUT = env_int("REDIS_VISIBILITY_TIMEOUT", 3600, minimum=60)
if REDIS_VISIBILITY_TIMEOUT < 4 * ESCALATION_HORIZON_SECONDS:
    raise ImproperlyConfigured(
        "REDIS_VISIBILITY_TIMEOUT must be at least four times ESCALATION_HORIZON_SECONDS, "
        "or Redis would redeliver delayed escalation tasks."
    )

if BROKER_IS_FILESYSTEM:
    # kombu's filesystem transport, writing each message whole before it can be taken.
    CELERY_BROKER_TRANSPORT = "base.file_broker:Transport"
    _broker_dir = DATA_DIR / "broker"
    for _sub in ("queue", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "polling_interval": 0.2,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": REDIS_VISIBILITY_TIMEOUT}

CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 120, minimum=5)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 100, minimum=5)
if CELERY_TASK_SOFT_TIME_LIMIT >= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured("CELERY_TASK_SOFT_TIME_LIMIT must be below CELERY_TASK_TIME_LIMIT.")
# A level claimed for firing is held this long; after it the sweeper takes it
# over (the claimer crashed). Longer than the hard time limit, so a live
# worker is never overtaken mid-post.
ESCALATION_CLAIM_LEASE_SECONDS = env_int(
    "ESCALATION_CLAIM_LEASE_SECONDS", CELERY_TASK_TIME_LIMIT + 10, minimum=5
)
if ESCALATION_CLAIM_LEASE_SECONDS <= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        "ESCALATION_CLAIM_LEASE_SECONDS must be longer than CELERY_TASK_TIME_LIMIT."
    )
# A crashed worker's message is redelivered (acks_late); the stale task then does nothing.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"escalation.tasks.*": {"queue": "escalation"}}
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker waits out a broker outage of any length (and reconnects within two
# seconds of the broker's return, slabuddy/celery.py) instead of exiting.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# Celery's Django fixup opens a new database connection for every task unless told
# to reuse it; slabuddy/celery.py checks the connection before each task instead
# (health check, DATABASE_CONN_MAX_AGE), as Django does for each request.
CELERY_DB_REUSE_MAX = None if DATABASE_IS_SQLITE else env_int("CELERY_DB_REUSE_MAX", 1000, minimum=1)
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# --- Slack -----------------------------------------------------------------
SLACK_BOT_TOKEN = env_secret("SLACK_BOT_TOKEN")
SLACK_SIGNING_SECRET = env_secret("SLACK_SIGNING_SECRET")
SLACK_API_BASE_URL = env_url("SLACK_API_BASE_URL", "https://slack.com/api/")
if not SLACK_API_BASE_URL.endswith("/"):
    SLACK_API_BASE_URL += "/"
SLACK_BOT_USER_ID = env_str("SLACK_BOT_USER_ID", "")  # looked up with auth.test when empty
SLACK_BOT_ID = env_str("SLACK_BOT_ID", "")  # the bot's B… id; looked up with auth.test when empty
SLACK_SUPPORT_USERGROUP_ID = env_str("SLACK_SUPPORT_USERGROUP_ID", "")
SLACK_REQUEST_MAX_AGE_SECONDS = 300
SLACK_TIMEOUT_SECONDS = env_int("SLACK_TIMEOUT_SECONDS", 10, minimum=1)  # each call's total deadline
if ESCALATION_CLAIM_LEASE_SECONDS <= SLACK_TIMEOUT_SECONDS + 5:
    # A batch of overdue levels starts no post later than the timeout + 5 s before its claim's
    # lease ends (escalation/firing_batch.py): with less, it could never post.
    raise ImproperlyConfigured("ESCALATION_CLAIM_LEASE_SECONDS must be more than SLACK_TIMEOUT_SECONDS + 5.")
# After a post that may have reached Slack (timeout, dropped connection, 5xx, internal_error),
# nothing is posted for this long, counted from when the failure was seen: Slack may still be
# finishing it. Then the thread is searched for the message's key before any new post.
SLACK_AMBIGUOUS_WAIT_SECONDS = env_int("SLACK_AMBIGUOUS_WAIT_SECONDS", 30, minimum=1)
# A post made after such a failure is checked again this much later: a second message with
# the same key (the first request landed after all) is deleted.
SLACK_DUPLICATE_CHECK_SECONDS = env_int("SLACK_DUPLICATE_CHECK_SECONDS", 30, minimum=1)
# Posts take turns per channel (base/channel_pacing.py; needs the Redis broker): Slack accepts about
# one message per second per channel with short bursts. Slower than Slack's own limit on purpose;
# posts of a burst still go half a second apart, so that they arrive in order.
SLACK_CHANNEL_PACING = env_bool("SLACK_CHANNEL_PACING", True)
SLACK_CHANNEL_POSTS_PER_MINUTE = env_int("SLACK_CHANNEL_POSTS_PER_MINUTE", 50, minimum=1)
SLACK_CHANNEL_POST_BURST = env_int("SLACK_CHANNEL_POST_BURST", 3, minimum=1)
if PRODUCTION and not (SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET):
    raise ImproperlyConfigured(
        "SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (or their _FILE variants) must be set "
        "when SLABUDDY_MODE=production."
    )
if PRODUCTION:
    # Slack's signing secrets are 32 hex characters; a short one is a typo or a placeholder.
    refuse_weak_secret("SLACK_SIGNING_SECRET", SLACK_SIGNING_SECRET, min_length=16)
    refuse_unprefixed_token(
        "SLACK_BOT_TOKEN", SLACK_BOT_TOKEN, prefix="xoxb-", what="the app's Bot User OAuth Token"
    )
# Slack users who may change the configuration from Slack (/sla setup, /sla add-engineer),
# besides roster engineers marked admin.
SLACK_ADMIN_USER_IDS = env_list("SLACK_ADMIN_USER_IDS", [])
# Demo mode: no Slack credentials outside production. The bot then talks to
# the built-in stand-in Slack (see README, "Demo"); never in production.
DEMO_MODE = not PRODUCTION and not SLACK_BOT_TOKEN

# --- Helpdesks ---------------------------------------------------------------
ZENDESK_BASE_URL = env_str("ZENDESK_BASE_URL", "")  # https://acme.zendesk.com
ZENDESK_EMAIL = env_str("ZENDESK_EMAIL", "")
ZENDESK_API_TOKEN = env_secret("ZENDESK_API_TOKEN")
FRESHDESK_BASE_URL = env_str("FRESHDESK_BASE_URL", "")  # https://acme.freshdesk.com
FRESHDESK_API_KEY = env_secret("FRESHDESK_API_KEY")
HELPDESK_WEBHOOK_SECRET = env_secret("HELPDESK_WEBHOOK_SECRET")
# Webhook signatures cover a timestamp that must be this recent (Slack's window too).
HELPDESK_WEBHOOK_MAX_AGE_SECONDS = 300
# The old body-only X-SlaBuddy-Signature can be replayed forever: only for a
# helpdesk that cannot send X-SlaBuddy-Timestamp yet, and only on purpose.
HELPDESK_WEBHOOK_ALLOW_LEGACY_SIGNATURE = env_bool("HELPDESK_WEBHOOK_ALLOW_LEGACY_SIGNATURE", False)
HELPDESK_TIMEOUT_SECONDS = env_int("HELPDESK_TIMEOUT_SECONDS", 5, minimum=1)

# --- Paging beyond Slack (escalation steps of kind "page") ----------------------
# Credentials are read here and only here, by name (base/page_credentials.py):
# PAGERDUTY_ROUTING_KEY[_SUFFIX], ONCALL_WEBHOOK_URL[_SUFFIX], PAGE_WEBHOOK_URL[_SUFFIX]
# with PAGE_WEBHOOK_SECRET[_SUFFIX], each also as NAME_FILE. A page step names one.
PAGE_CREDENTIALS = {
    name: value
    for name in credential_names_in(os.environ)
    if (value := env_secret(name))
}
_page_problems = page_credentials_problems(PAGE_CREDENTIALS)
if _page_problems:
    raise ImproperlyConfigured(" ".join(_page_problems))
PAGERDUTY_EVENTS_URL = env_url("PAGERDUTY_EVENTS_URL", "https://events.pagerduty.com/v2/enqueue")
PAGE_TIMEOUT_SECONDS = env_int("PAGE_TIMEOUT_SECONDS", 10, minimum=1)

# --- Calendars ---------------------------------------------------------------
GOOGLE_CREDENTIALS_FILE = env_str("GOOGLE_CREDENTIALS_FILE", "")
if GOOGLE_CREDENTIALS_FILE and not Path(GOOGLE_CREDENTIALS_FILE).is_file():
    raise ImproperlyConfigured(
        f"GOOGLE_CREDENTIALS_FILE points at {GOOGLE_CREDENTIALS_FILE!r}, which is not a file."
    )
GOOGLE_CALENDAR_API_ENDPOINT = env_url(
    "GOOGLE_CALENDAR_API_ENDPOINT", "https://www.googleapis.com/"
)
CALENDAR_SYNC_MINUTES = env_int("CALENDAR_SYNC_MINUTES", 5, minimum=1)
CALENDAR_STALE_AFTER_MINUTES = env_int("CALENDAR_STALE_AFTER_MINUTES", 60, minimum=1)
CALENDAR_TIMEOUT_SECONDS = env_int("CALENDAR_TIMEOUT_SECONDS", 15, minimum=1)
# Synced shifts and embedded-support events are kept this long after they end (replays of past
# tickets resolve whom a level would have notified against them); the sync window is never pruned.
CALENDAR_HISTORY_RETENTION_DAYS = env_int("CALENDAR_HISTORY_RETENTION_DAYS", 400, minimum=2)
# An iCal source makes the server fetch an admin-given URL: https/webcal only, and nothing
# inside the network (loopback, link-local, private), unless these say otherwise.
CALENDAR_ALLOW_HTTP = env_bool("CALENDAR_ALLOW_HTTP", False)
CALENDAR_ALLOW_PRIVATE_ADDRESSES = env_bool("CALENDAR_ALLOW_PRIVATE_ADDRESSES", False)

# --- Flower / metrics / health ----------------------------------------------
FLOWER_BASIC_AUTH = env_secret("FLOWER_BASIC_AUTH")
# Bearer token for GET /metrics. Unset: open in dev, staff sessions only in production.
METRICS_TOKEN = env_secret("METRICS_TOKEN")
# Beat runs ops.tasks.heartbeat this often (on first ensure_schedules);
# /readyz fails when the last heartbeat is older than the max age.
HEARTBEAT_SECONDS = env_int("HEARTBEAT_SECONDS", 30, minimum=1)
HEARTBEAT_MAX_AGE_SECONDS = env_int("HEARTBEAT_MAX_AGE_SECONDS", 180, minimum=10)

LOG_LEVEL = env_choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL.upper()},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
    },
}
