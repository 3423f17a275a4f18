"""The settings read the environment, with embedded defaults when it is empty."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_PRINT = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({
    "db": settings.DATABASES["default"]["ENGINE"],
    "db_name": str(settings.DATABASES["default"]["NAME"]),
    "cache": settings.CACHES["default"]["BACKEND"],
    "locations": {a: c.get("LOCATION", "") for a, c in settings.CACHES.items()},
    "prefixes": {a: c.get("KEY_PREFIX", "") for a, c in settings.CACHES.items()},
    "broker_options": settings.CELERY_BROKER_TRANSPORT_OPTIONS,
    "sessions": settings.SESSION_ENGINE,
    "eager": settings.CELERY_TASK_ALWAYS_EAGER,
    "broker": settings.CELERY_BROKER_URL,
    "email": settings.EMAIL_BACKEND,
    "email_host": getattr(settings, "EMAIL_HOST", ""),
    "email_port": getattr(settings, "EMAIL_PORT", 0),
    "site_url": settings.PASSWORDLESS_SITE_URL,
    "debug": settings.DEBUG,
    "hashers": settings.PASSWORD_HASHERS[0],
}))
"""


def _settings(tmp_path: Path, **env: str) -> dict[str, object]:
    clean = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "config.settings"}
    clean["VAR_DIR"] = str(tmp_path / "var")
    clean.update(env)
    out = subprocess.run(
        [sys.executable, "-c", _PRINT], cwd=ROOT, env=clean, capture_output=True, check=True
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_development_defaults(tmp_path: Path) -> None:
    """Development is asked for (DEBUG=True); nothing else needs to be set."""
    found = _settings(tmp_path, DEBUG="True")
    assert found["db"] == "django.db.backends.sqlite3"
    assert found["db_name"] == str(tmp_path / "var" / "db.sqlite3")
    assert found["cache"] == "django.core.cache.backends.locmem.LocMemCache"
    assert found["sessions"] == "django.contrib.sessions.backends.db"
    assert found["eager"] is True
    assert found["email"] == "config.devinbox.DevInboxBackend"
    assert found["site_url"] == "http://localhost:8000"
    assert found["debug"] is True
    assert found["hashers"] == "django.contrib.auth.hashers.Argon2PasswordHasher"


def test_services_from_the_environment(tmp_path: Path) -> None:
    found = _settings(
        tmp_path,
        DATABASE_URL="postgres://127.0.0.1/passwordless",
        REDIS_URL="redis://127.0.0.1:6379/1",
        EMAIL_URL="smtp://127.0.0.1:2525",
        SITE_URL="https://login.example.com",
        DEBUG="False",
        SECRET_KEY="test-secret-" + "x" * 50,
    )
    assert found["db"] == "django.db.backends.postgresql"
    assert found["cache"] == "django_redis.cache.RedisCache"
    assert found["sessions"] == "config.session_store"
    assert found["eager"] is False
    # Every use in REDIS_URL's own database, told apart by key prefixes.
    assert found["broker"] == "redis://127.0.0.1:6379/1"
    assert found["locations"] == dict.fromkeys(
        ("default", "sessions", "ratelimit"), "redis://127.0.0.1:6379/1"
    )
    assert found["prefixes"] == {"default": "cache", "sessions": "session", "ratelimit": "rl"}
    assert found["broker_options"]["global_keyprefix"] == "broker:"  # type: ignore[index]
    assert found["email"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (found["email_host"], found["email_port"]) == ("127.0.0.1", 2525)
    assert found["site_url"] == "https://login.example.com"


def test_broker_can_differ_from_redis(tmp_path: Path) -> None:
    found = _settings(
        tmp_path,
        DEBUG="True",
        REDIS_URL="redis://127.0.0.1:6379/1",
        CELERY_BROKER_URL="amqp://127.0.0.1//",
    )
    assert found["broker"] == "amqp://127.0.0.1//"
    assert "global_keyprefix" not in found["broker_options"]  # type: ignore[operator]


def test_each_use_can_have_a_url_of_its_own(tmp_path: Path) -> None:
    found = _settings(
        tmp_path,
        DEBUG="True",
        REDIS_URL="redis://127.0.0.1:6379/1",
        SESSION_REDIS_URL="redis://sessions.internal:6379/0",
        RATELIMIT_REDIS_URL="redis://limits.internal:6379/0",
        CELERY_BROKER_URL="redis://broker.internal:6379/0",
    )
    assert found["locations"] == {
        "default": "redis://127.0.0.1:6379/1",
        "sessions": "redis://sessions.internal:6379/0",
        "ratelimit": "redis://limits.internal:6379/0",
    }
    assert found["broker"] == "redis://broker.internal:6379/0"
    # A broker of its own keeps kombu's own key names, as before.
    assert "global_keyprefix" not in found["broker_options"]  # type: ignore[operator]
