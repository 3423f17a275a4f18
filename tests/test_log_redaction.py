"""No log line holds a link token or a sign-in request id: gunicorn's access lines and
Django's own, for a link path that answers 404 and for one asked during a database outage.

Django puts the request on its ``django.request`` records, and the JSON formatter prints it:
``"request": "<WSGIRequest: GET '/auth/link/<token>./'>"``. A request id collects the
sign-in once it is approved, and ``/api/auth/requests/<id>`` is a path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from tests import services
from tests.api_client import ApiClient
from tests.stack import SMTPServer, free_port, gunicorn, link_token_of, production_env

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

CLOSED = "127.0.0.1:1"  # nothing listens on port 1


@pytest.fixture
def stack(transactional_db: None, tmp_path: Path) -> Iterator[dict[str, Any]]:
    stack_redis = redis.Redis(host="127.0.0.1", port=services.REDIS_PORT, db=11)
    stack_redis.flushdb()  # production_env's database: rate limits start fresh
    with SMTPServer() as smtp:
        yield {"smtp": smtp, "log_dir": tmp_path}
    stack_redis.flushdb()


def _env(port: int, log_dir: Path, smtp: SMTPServer, **overrides: str) -> dict[str, str]:
    return production_env(
        port,
        log_dir / "var",
        EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}",
        LOG_LEVEL="DEBUG",
        **overrides,
    )


def _hits(log_dir: Path, *secrets: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(log_dir.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            for secret in secrets:
                if secret in line:
                    found.setdefault(path.name, []).append(line)
    return found


def test_no_log_line_holds_a_token_or_a_request_id(stack: dict[str, Any]) -> None:
    smtp, log_dir = stack["smtp"], stack["log_dir"]
    port = free_port()
    with gunicorn(_env(port, log_dir, smtp), log_dir, port) as web:
        base = f"http://127.0.0.1:{port}"
        api = ApiClient(base)
        sent = api.send("logs@example.org")
        assert sent.status_code == 202, sent.text
        request_id = sent.json()["request_id"]
        token = link_token_of(smtp.wait_for(1))

        assert requests.get(f"{base}/auth/link/{token}./", timeout=20).status_code == 404
        assert requests.get(f"{base}/auth/link/{token}/x", timeout=20).status_code == 404
        assert api.get(f"/api/auth/requests/{request_id}?mode=jwt").status_code == 200
        assert api.get(f"/api/auth/requests/{request_id}./").status_code == 404
        referred = requests.get(
            f"{base}/auth/login/", headers={"Referer": f"{base}/auth/link/{token}/"}, timeout=20
        )
        assert referred.status_code == 200
        access_log = web.log()

    outage = free_port()
    down = _env(outage, log_dir, smtp, DATABASE_URL=f"postgres://postgres@{CLOSED}/nothing")
    with gunicorn(down, log_dir, outage):
        base = f"http://127.0.0.1:{outage}"
        assert requests.get(f"{base}/auth/link/{token}/", timeout=30).status_code == 503
        polled = ApiClient(base).get(f"/api/auth/requests/{request_id}?mode=jwt")
        assert polled.status_code == 503
        assert ApiClient(base).verify_link(token).status_code == 503

    assert _hits(log_dir, token, request_id) == {}
    # The lines were written, and redacted: the search above read real ones.
    records = [
        json.loads(line)
        for path in log_dir.glob("*.log")
        for line in path.read_text().splitlines()
        if line.startswith("{")
    ]
    paths = {r.get("path") for r in records if r["logger"] == "gunicorn.access"}
    assert {"/auth/link/[redacted]/", "/api/auth/requests/[redacted]"} <= paths
    assert "/auth/link/[redacted]./" not in access_log  # the stray dot goes with the token
    django_requests = [r for r in records if r["logger"] == "django.request"]
    access_ids = {r["request_id"] for r in records if r["logger"] == "gunicorn.access"}
    assert {r["request_id"] for r in django_requests} <= access_ids  # lines of one request
    assert {r["status_code"] for r in django_requests} >= {404, 503}
    described = {r["request"] for r in django_requests}
    assert "<WSGIRequest: GET '/auth/link/[redacted]/'>" in described  # the 404 and the 503
    assert "<WSGIRequest: GET '/api/auth/requests/[redacted]?mode=jwt'>" in described
