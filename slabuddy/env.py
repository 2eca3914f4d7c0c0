"""Typed readers for settings that come from the environment.

Every reader raises ``ImproperlyConfigured`` naming the variable, so a bad
deployment fails at start-up with a message that says what to fix. Secrets
can also be given as ``NAME_FILE`` (a path to a file holding the value), the
convention Docker secrets and Kubernetes use.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None, *, required: bool = False) -> str | None:
    value = os.environ.get(name)
    if value is None or value == "":
        if required:
            raise ImproperlyConfigured(f"{name} must be set (see README.md, 'Configuration').")
        return default
    return value


def env_secret(name: str, *, required: bool = False) -> str | None:
    """Read a secret from NAME, or from the file NAME_FILE points at."""
    direct = os.environ.get(name)
    path = os.environ.get(f"{name}_FILE")
    if direct and path:
        raise ImproperlyConfigured(f"Set either {name} or {name}_FILE, not both.")
    if path:
        try:
            value = Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(
                f"{name}_FILE points at {path!r}, which cannot be read: {exc.strerror}."
            ) from exc
        if not value:
            raise ImproperlyConfigured(f"{name}_FILE points at {path!r}, which is empty.")
        return value
    if direct:
        return direct
    if required:
        raise ImproperlyConfigured(f"{name} (or {name}_FILE) must be set.")
    return None


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}.")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = (os.environ.get(name) or default).strip().lower()
    if raw not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {raw!r}.")
    return raw


def env_url(name: str, default: str) -> str:
    raw = env_str(name, default) or default
    if not raw.startswith(("http://", "https://")):
        raise ImproperlyConfigured(f"{name} must be an http(s) URL, got {raw!r}.")
    return raw


# --- Production refuses weak values ------------------------------------------------
# Each check names the variable and never quotes a secret's value.


def refuse_wildcard_hosts(name: str, hosts: list[str]) -> None:
    if "*" in hosts:
        raise ImproperlyConfigured(
            f"{name} must list the host names SLA Buddy is served on, not '*' (any Host header)."
        )


def refuse_weak_secret(name: str, value: str | None, *, min_length: int) -> None:
    if value is not None and (len(value) < min_length or not value.strip()):
        raise ImproperlyConfigured(
            f"{name} must be at least {min_length} characters and not only whitespace "
            "(copy the whole value from the Slack app's Basic Information page)."
        )


def refuse_unprefixed_token(name: str, value: str | None, *, prefix: str, what: str) -> None:
    if value is not None and not value.startswith(prefix):
        raise ImproperlyConfigured(f"{name} must be {what}, starting with {prefix!r}.")
