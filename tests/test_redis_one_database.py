"""Every Redis use in one database, told apart by key prefixes: Redis Cluster and many managed
services offer database 0 only, and ``REDIS_URL=redis://host/14`` used to put the rate limits
in database 16, which does not exist. A URL that cannot work is named, by a system check and
by ``/readyz``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from django.core.cache import caches
from django.core.checks import run_checks
from django.test import Client

from tests import services
from tests.api_client import ApiClient
from tests.attacker import Browser
from tests.stack import SMTPServer, celery_worker, code_of, free_port, gunicorn, production_env

ROOT = Path(__file__).resolve().parent.parent
LIVE = f"redis://127.0.0.1:{services.REDIS_PORT}"
CLOSED = "redis://127.0.0.1:1"  # nothing listens on port 1
PREFIXES = {
    "cache": b"cache:",
    "sessions": b"session:",
    "rate limits": b"rl:",
    "broker": b"broker:",
}

_PRINT = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({
    "locations": sorted({c["LOCATION"] for c in settings.CACHES.values()}),
    "broker": settings.CELERY_BROKER_URL,
}))
"""


def _redis_settings(tmp_path: Path, **env: str) -> dict[str, Any]:
    clean = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "config.settings"}
    clean.update(VAR_DIR=str(tmp_path / "var"), DEBUG="True", **env)
    out = subprocess.run(
        [sys.executable, "-c", _PRINT], cwd=ROOT, env=clean, capture_output=True, check=True
    )
    found: dict[str, Any] = json.loads(out.stdout)
    return found


@pytest.mark.parametrize("database", ["0", "14", "15"])
def test_every_use_lives_in_redis_urls_own_database(tmp_path: Path, database: str) -> None:
    url = f"redis://127.0.0.1:6379/{database}"
    found = _redis_settings(tmp_path, REDIS_URL=url)
    assert found == {"locations": [url], "broker": url}


@pytest.mark.redis
def test_clearing_one_cache_leaves_the_other_uses_alone(settings: Any) -> None:
    """django-redis clears with FLUSHDB: in one database, that would sign everyone out,
    reset every rate limit and drop the queued mail."""
    caches["default"].set("page", "cached")
    caches["sessions"].set("session", "alive")
    caches["ratelimit"].set("counter", 3, version=2)
    raw = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    raw.rpush("broker:celery", "a queued task")
    try:
        caches["default"].clear()
        assert caches["default"].get("page") is None
        assert caches["sessions"].get("session") == "alive"
        assert caches["ratelimit"].get("counter", version=2) == 3
        assert raw.lrange("broker:celery", 0, -1) == [b"a queued task"]
        caches["ratelimit"].clear()
        assert caches["ratelimit"].get("counter", version=2) is None
        assert caches["sessions"].get("session") == "alive"
    finally:
        raw.delete("broker:celery")


def _redis_cache(location: str) -> dict[str, Any]:
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": location,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
    }


def _e020(settings: Any) -> list[str]:
    return [m.msg for m in run_checks() if m.id == "passwordless.E020"]


@pytest.mark.redis
def test_check_names_a_redis_database_that_does_not_exist(settings: Any) -> None:
    settings.CACHES = {**settings.CACHES, "ratelimit": _redis_cache(f"{LIVE}/16")}
    settings.CELERY_BROKER_URL = f"redis://:secret-password@127.0.0.1:{services.REDIS_PORT}/16"
    messages = _e020(settings)
    assert len(messages) == 2, messages
    assert f"'{LIVE}/16' (cache:ratelimit) cannot work" in messages[0]
    assert "database 16 does not exist on this server" in messages[0]
    assert "(broker)" in messages[1] and "secret-password" not in messages[1]
    assert ":***@" in messages[1]


def test_check_names_a_database_that_is_not_a_number(settings: Any) -> None:
    """redis-py reads ``/cache`` as database 0, quietly: no network is needed to refuse it."""
    settings.CACHES = {**settings.CACHES, "ratelimit": _redis_cache(f"{CLOSED}/ratelimit")}
    assert _e020(settings) == [
        f"The Redis URL '{CLOSED}/ratelimit' (cache:ratelimit) cannot work: "
        "its database 'ratelimit' is not a number."
    ]


def test_check_is_quiet_and_quick_when_redis_is_only_down(settings: Any) -> None:
    settings.CACHES = {**settings.CACHES, "ratelimit": _redis_cache(f"{CLOSED}/0")}
    started = time.monotonic()
    assert _e020(settings) == []
    assert time.monotonic() - started < 5


@pytest.mark.redis
def test_the_check_passes_on_the_working_configuration(settings: Any) -> None:
    assert _e020(settings) == []


@pytest.mark.redis
@pytest.mark.django_db
def test_readyz_names_a_database_that_does_not_exist(settings: Any) -> None:
    settings.CACHES = {**settings.CACHES, "ratelimit": _redis_cache(f"{LIVE}/16")}
    ready = Client().get("/readyz")
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "unavailable",
        "failed": ["cache:ratelimit"],
        "misconfigured": {"cache:ratelimit": "database 16 does not exist on this server"},
    }


# The whole flow in database 0: gunicorn, a Celery worker on the Redis broker, SMTP.


def _keys(db: int) -> set[bytes]:
    return set(redis.Redis(host="127.0.0.1", port=services.REDIS_PORT, db=db).scan_iter())


def _delete_prefixed(db: int) -> None:
    client = redis.Redis(host="127.0.0.1", port=services.REDIS_PORT, db=db)
    for prefix in PREFIXES.values():
        for key in client.scan_iter(match=prefix + b"*"):
            client.delete(key)


@pytest.fixture
def database_zero(transactional_db: None, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Only REDIS_URL, on database 0: no SESSION_REDIS_URL, RATELIMIT_REDIS_URL or broker."""
    _delete_prefixed(0)
    before = {db: _keys(db) for db in range(4)}
    port = free_port()
    with SMTPServer() as smtp:
        env = production_env(
            port,
            tmp_path / "var",
            REDIS_URL=f"{LIVE}/0",
            EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}",
        )
        del env["CELERY_BROKER_URL"]
        try:
            with gunicorn(env, tmp_path, port) as web:
                yield {
                    "url": f"http://127.0.0.1:{port}",
                    "smtp": smtp,
                    "env": env,
                    "log_dir": tmp_path,
                    "before": before,
                    "web": web,
                }
        finally:
            _delete_prefixed(0)


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.redis
def test_sign_in_with_every_use_in_database_zero(database_zero: dict[str, Any]) -> None:
    url, smtp = database_zero["url"], database_zero["smtp"]
    ready = requests.get(f"{url}/readyz", timeout=30)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checked"] == [
        "broker",
        "cache:default",
        "cache:ratelimit",
        "cache:sessions",
        "database",
    ]

    api = ApiClient(url)
    sent = api.send("zero@example.org")
    assert sent.status_code == 202, sent.text
    queued = redis.Redis(host="127.0.0.1", port=services.REDIS_PORT, db=0)
    assert queued.llen("broker:celery") == 1  # on the broker, in database 0, prefixed
    assert not queued.exists("celery")

    with celery_worker(database_zero["env"], database_zero["log_dir"]):
        code = code_of(smtp.wait_for(1))
    signed_in = api.verify_code(sent.json()["request_id"], code)
    assert signed_in.status_code == 200, signed_in.text
    access = signed_in.json()["access"]
    assert api.me(access).json()["user"]["email"] == "zero@example.org"
    assert Browser(url).start("one@example.org").status_code == 302  # a session
    assert api.post("/api/auth/logout", {}, headers={"Authorization": f"Bearer {access}"})
    assert api.me(access).status_code == 401  # the family's row says it, not the cache

    new = {db: _keys(db) - database_zero["before"][db] for db in range(4)}
    assert new[1] == new[2] == new[3] == set()  # nothing in databases +1, +2, +3
    unprefixed = {k for k in new[0] if not k.startswith(tuple(PREFIXES.values()))}
    assert unprefixed == set()
    for use, prefix in PREFIXES.items():
        if use == "cache":
            continue  # no step above keeps a key there (revocation is read from the database)
        assert any(k.startswith(prefix) for k in new[0]), f"no {use} key in {sorted(new[0])}"
