"""Liveness and readiness, against the real services and with one of them gone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from django.test import Client

from tests.stack import free_port, gunicorn, production_env


@pytest.mark.django_db
def test_healthz_and_readyz(client: Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert "database" in ready.json()["checked"]


@pytest.mark.django_db
def test_readyz_names_what_failed(client: Client, settings: Any) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "ratelimit": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        },
    }
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "failed": ["cache:ratelimit"]}


CLOSED = "127.0.0.1:1"  # nothing listens on port 1: a stopped service, as a client sees it
LIVE_REDIS = "redis://127.0.0.1:6379"


@pytest.fixture
def production_server(tmp_path: Path) -> Callable[..., Any]:
    """gunicorn (``bin/web``) with production settings; ``overrides`` point some at CLOSED."""

    def start(**overrides: str) -> Any:
        port = free_port()
        broker = {"CELERY_BROKER_URL": f"{LIVE_REDIS}/10"}  # a real one, for /readyz to probe
        env = production_env(port, tmp_path / "var", **{**broker, **overrides})
        server = gunicorn(env, tmp_path, port, ready_path="/healthz")
        return server, f"http://127.0.0.1:{port}"

    return start


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("stopped", "overrides"),
    [
        (None, {}),
        ("database", {"DATABASE_URL": f"postgres://postgres@{CLOSED}/nothing"}),
        ("broker", {"CELERY_BROKER_URL": f"redis://{CLOSED}/0"}),
        (
            "cache:default",
            {
                "REDIS_URL": f"redis://{CLOSED}/0",
                "SESSION_REDIS_URL": f"{LIVE_REDIS}/12",
                "RATELIMIT_REDIS_URL": f"{LIVE_REDIS}/13",
            },
        ),
        ("cache:sessions", {"SESSION_REDIS_URL": f"redis://{CLOSED}/0"}),
        ("cache:ratelimit", {"RATELIMIT_REDIS_URL": f"redis://{CLOSED}/0"}),
    ],
)
def test_readyz_over_http_with_each_dependency_stopped(
    production_server: Callable[..., Any], stopped: str | None, overrides: dict[str, str]
) -> None:
    process, url = production_server(**overrides)
    with process:
        alive = requests.get(f"{url}/healthz", timeout=10)
        ready = requests.get(f"{url}/readyz", timeout=30)
    assert alive.status_code == 200 and alive.json() == {"status": "ok"}  # the process answers
    assert ready.headers["Content-Type"] == "application/json"
    if stopped is None:
        assert ready.status_code == 200, ready.text
        assert ready.json()["checked"] == [
            "broker",
            "cache:default",
            "cache:ratelimit",
            "cache:sessions",
            "database",
        ]
    else:
        assert ready.status_code == 503, ready.text
        assert ready.json() == {"status": "unavailable", "failed": [stopped]}
