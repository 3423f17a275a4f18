"""The whole stack for real: gunicorn, PostgreSQL, Redis sessions, a Celery worker on a
Redis broker, and an SMTP server on loopback. Sign in by reading the delivered mail, then
look for the code and token everywhere they must not be."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from django.db import connection

from passwordless.models import LoginRequest
from tests.dumps import database_dump, redis_dump
from tests.stack import (
    SMTPServer,
    celery_beat,
    celery_worker,
    code_and_link,
    free_port,
    gunicorn,
    project_env,
)

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

BROKER_DB = 14
CACHE_DB = 4  # and sessions in 5, rate limits in 6


@dataclass
class Stack:
    base_url: str
    smtp: SMTPServer
    env: dict[str, str]
    log_dir: Path
    web_log: Any


@pytest.fixture
def stack(transactional_db: None, tmp_path: Path) -> Iterator[Stack]:
    used = [redis.Redis(host="127.0.0.1", port=6379, db=db) for db in (BROKER_DB, 4, 5, 6)]
    for db in used:
        db.flushdb()
    web_port = free_port()
    with SMTPServer() as smtp:
        env = project_env(
            DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}",
            REDIS_URL=f"redis://127.0.0.1:6379/{CACHE_DB}",
            # A database each (all would share REDIS_URL's by default): each place is dumped.
            SESSION_REDIS_URL=f"redis://127.0.0.1:6379/{CACHE_DB + 1}",
            RATELIMIT_REDIS_URL=f"redis://127.0.0.1:6379/{CACHE_DB + 2}",
            CELERY_BROKER_URL=f"redis://127.0.0.1:6379/{BROKER_DB}",
            EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}",
            SITE_URL=f"http://127.0.0.1:{web_port}",
            SECRET_KEY="end-to-end-test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
            DEBUG="True",  # as when DEBUG defaulted to on: plain http on loopback
            VAR_DIR=str(tmp_path / "var"),
            LOG_LEVEL="DEBUG",
            LOG_FORMAT="json",
        )
        with gunicorn(env, tmp_path, web_port) as web:
            yield Stack(f"http://127.0.0.1:{web_port}", smtp, env, tmp_path, web)
    for db in used:
        db.flushdb()


def _post_form(browser: requests.Session, url: str, data: dict[str, str]) -> requests.Response:
    """Submit a form the way a browser does: CSRF token from the page, Referer-free origin."""
    page = browser.get(url, timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, page.text
    return browser.post(
        url,
        data={"csrfmiddlewaretoken": token.group(1), **data},
        headers={"Origin": url.split("/auth/")[0]},
        timeout=10,
    )


def test_sign_in_through_worker_and_smtp_leaves_no_secret_behind(stack: Stack) -> None:
    browser = requests.Session()
    script = browser.get(f"{stack.base_url}/static/passwordless/wait.js", timeout=10)
    assert script.status_code == 200 and "fetch(url" in script.text  # whitenoise
    response = _post_form(browser, f"{stack.base_url}/auth/login/", {"email": "Alice@Example.org"})
    assert response.status_code == 200 and response.url.endswith("/auth/code/")
    start_request_id = response.history[0].headers["X-Request-ID"]

    # The task is on the broker, and no worker runs yet: read the raw message.
    login_request = LoginRequest.objects.get()
    raw_messages = redis.Redis(host="127.0.0.1", port=6379, db=BROKER_DB).lrange("celery", 0, -1)
    assert len(raw_messages) == 1
    envelope = json.loads(raw_messages[0])
    args, kwargs, _ = json.loads(base64.b64decode(envelope["body"]))
    assert (args, kwargs) == ([login_request.pk], {})
    assert b"alice" not in raw_messages[0].lower()

    with celery_worker(stack.env, stack.log_dir) as worker:
        message = stack.smtp.wait_for(1)
        code, link = code_and_link(message)
        token = link.rstrip("/").rsplit("/", 1)[1]
        assert message["To"] == "alice@example.org"
        assert message.get_body(preferencelist=("html",)) is not None

        response = _post_form(browser, f"{stack.base_url}/auth/code/", {"code": code})
        assert response.status_code == 200
        assert "Signed in as <strong>alice@example.org</strong>" in response.text

        # A second sign-in, by the link, in another browser.
        phone = requests.Session()
        _post_form(phone, f"{stack.base_url}/auth/login/", {"email": "bob@example.org"})
        _, second_link = code_and_link(stack.smtp.wait_for(2))
        confirm = phone.get(second_link, timeout=10)
        assert confirm.url == f"{stack.base_url}/auth/link/"
        assert "Sign in as b***@example.org?" in confirm.text
        response = _post_form(phone, f"{stack.base_url}/auth/link/", {"action": "sign_in"})
        assert "Signed in as <strong>bob@example.org</strong>" in response.text
        worker_log = worker.log()

    # The sessions are in Redis, not in the database.
    session_key = browser.cookies["sessionid"]
    assert session_key.encode() in redis_dump(CACHE_DB + 1)
    database = database_dump()
    assert session_key not in database

    second_token = second_link.rstrip("/").rsplit("/", 1)[1]
    places = {
        "broker": redis_dump(BROKER_DB).decode(errors="replace"),
        "cache": redis_dump(CACHE_DB).decode(errors="replace"),
        "sessions": redis_dump(CACHE_DB + 1).decode(errors="replace"),
        "rate limits": redis_dump(CACHE_DB + 2).decode(errors="replace"),
        "database": database,
        "worker log": worker_log,
        "web log": stack.web_log.log(),
    }
    assert "send_login_email" in worker_log  # the log is real, and read
    _assert_json_lines_correlated(stack.web_log.log(), worker_log, start_request_id)
    for place, text in places.items():
        assert not re.search(rf"(?<!\d){code}(?!\d)", text), f"code found in {place}"
        for secret in (token, second_token):
            assert secret not in text, f"link token found in {place}"


def _records(log: str) -> list[dict[str, Any]]:
    """Every line a process wrote is one JSON object with a request id."""
    records = []
    for line in log.splitlines():
        if line.strip():
            record = json.loads(line)
            assert {"time", "level", "logger", "request_id", "message"} <= record.keys(), line
            records.append(record)
    return records


def _assert_json_lines_correlated(web_log: str, worker_log: str, request_id: str) -> None:
    """The form post and the email it queued are logged under one request id."""
    web, worker = _records(web_log), _records(worker_log)
    posted = [r for r in web if r["logger"] == "gunicorn.access" and r.get("method") == "POST"]
    assert any(r["request_id"] == request_id and r["path"] == "/auth/login/" for r in posted)
    assert any(
        r["request_id"] == request_id and r.get("audit", {}).get("event") == "requested"
        for r in web
    ), web_log
    sent = [r for r in worker if r.get("audit", {}).get("event") == "sent"]
    assert request_id in {r["request_id"] for r in sent}, worker_log


def test_broker_down_then_the_sweeper_on_beat_sends(stack: Stack, tmp_path: Path) -> None:
    """The broker refuses the task: the person gets the normal answer, the row stays
    pending, and once a worker and beat run, the sweeper sends the email."""
    down_port = free_port()
    down_env = {**stack.env, "CELERY_BROKER_URL": "redis://127.0.0.1:1/14"}
    with gunicorn(down_env, tmp_path, down_port):
        answers = []
        for email in ("carol@example.org", "dave@example.org"):
            url = f"http://127.0.0.1:{down_port}/auth/login/"
            answers.append(_post_form(requests.Session(), url, {"email": email}).status_code)
        assert answers == [200, 200]  # the code page, as always
    assert set(LoginRequest.objects.values_list("delivery", flat=True)) == {"pending"}
    assert stack.smtp.messages == []

    fast = {**stack.env, "SWEEP_INTERVAL": "1", "SWEEP_AFTER": "0"}
    with celery_worker(fast, stack.log_dir), celery_beat(fast, stack.log_dir):
        stack.smtp.wait_for(2, timeout=60)
    assert set(LoginRequest.objects.values_list("delivery", flat=True)) == {"sent"}
    recipients = sorted(m["To"] for m in stack.smtp.messages)
    assert recipients == ["carol@example.org", "dave@example.org"]
