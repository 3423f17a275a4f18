"""Each dependency failing, on loopback: a calm answer, never a traceback, then recovery.

(The broker is in ``test_outbox.py``; the rate-limit Redis in ``test_attack_guessing.py``.)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from tests.api_client import ApiClient
from tests.attacker import Browser
from tests.conftest import Delivered
from tests.factories import UserFactory
from tests.stack import free_port, gunicorn, production_env

Mailbox = Callable[..., Delivered]
CLOSED = "127.0.0.1:1"  # nothing listens on port 1


def _calm(response: requests.Response, status: int = 503) -> None:
    assert response.status_code == status, response.text[:300]
    assert "Traceback" not in response.text and "Error" not in response.text.split("<title>")[0]


@pytest.mark.django_db(transaction=True)
def test_session_redis_down(site: str, mailbox: Mailbox, settings: Any) -> None:
    signed_in = Browser(site)
    signed_in.start("alice@example.org")
    signed_in.submit_code(mailbox("alice@example.org").code)
    waiting = Browser(site)
    waiting.start("bob@example.org")
    token = waiting.csrf_token("/auth/code/")
    healthy = settings.CACHES["sessions"]
    settings.CACHES = {
        **settings.CACHES,
        "sessions": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://{CLOSED}/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        },
    }
    verify = waiting.post("/auth/code/", {"code": mailbox("bob@example.org").code}, token=token)
    _calm(verify)
    assert "sessionid" not in verify.cookies
    _calm(signed_in.get("/"))
    cookie = {"Cookie": f"sessionid={signed_in.cookie('sessionid')}"}
    api_answer = ApiClient(site).get("/api/auth/me", headers=cookie)
    _calm(api_answer)
    assert api_answer.json()["error"]["code"] == "service_unavailable"

    settings.CACHES = {**settings.CACHES, "sessions": healthy}
    assert signed_in.signed_in_as() == "alice@example.org"  # recovered


@pytest.fixture
def server(tmp_path: Path) -> Callable[..., Any]:
    """A gunicorn of the project with some settings pointed at closed ports."""
    for db in (11, 12, 13):  # its cache, sessions and rate limits start empty
        redis.Redis(host="127.0.0.1", port=6379, db=db).flushdb()

    def start(**overrides: str) -> Any:
        port = free_port()
        env = production_env(port, tmp_path / "var", **overrides)
        return gunicorn(env, tmp_path, port), f"http://127.0.0.1:{port}"

    return start


@pytest.mark.e2e  # gunicorn in a subprocess
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_database_down(server: Callable[..., Any]) -> None:
    process, url = server(DATABASE_URL=f"postgres://postgres@{CLOSED}/nothing")
    with process:
        browser = Browser(url)
        assert browser.get("/auth/login/").status_code == 200  # needs no database
        _calm(browser.start("alice@example.org"))
        _calm(ApiClient(url).send("alice@example.org"))
        _calm(ApiClient(url).verify_code("x" * 22, "123456"))
    process, url = server()  # the database is back
    with process:
        assert Browser(url).start("bob@example.org").status_code == 302


@pytest.mark.e2e  # gunicorn in a subprocess
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_smtp_down(server: Callable[..., Any]) -> None:
    UserFactory.create(email="known@example.org")
    process, url = server(EMAIL_URL=f"smtp://{CLOSED}", EMAIL_TIMEOUT="1")
    with process:
        answers = []
        for email in ("known@example.org", "unknown@example.org"):
            browser = Browser(url)
            started = browser.start(email)
            answers.append((started.status_code, started.headers.get("Location")))
            page = browser.get("/auth/code/").text
            assert "We couldn" in page and "Try sending again" in page
        assert answers[0] == answers[1] == (302, "/auth/code/")


def test_no_traceback_text_in_the_unavailable_page() -> None:
    from django.template.loader import render_to_string

    from passwordless.errors import SignInError

    page = render_to_string(
        "passwordless/unavailable.html", {"error": SignInError("service_unavailable")}
    )
    assert re.search(r"unavailable for a moment", page)
