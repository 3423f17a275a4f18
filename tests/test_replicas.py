"""Two gunicorn replicas on two loopback ports, one PostgreSQL, one Redis: a sign-in
started on one and finished on the other, sessions and tokens shared and revoked across."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.db import connection

from passwordless.models import UserSession
from tests.api_client import ApiClient
from tests.attacker import Browser
from tests.stack import SMTPServer, code_of, free_port, gunicorn, new_jwt_key, project_env

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

REDIS_DBS = (11, 12, 13)  # cache, sessions, rate limits of these replicas


@pytest.fixture
def replicas(transactional_db: None, tmp_path: Path) -> Iterator[tuple[str, str, SMTPServer]]:
    for db in REDIS_DBS:
        redis.Redis(host="127.0.0.1", port=6379, db=db).flushdb()
    port_a, port_b = free_port(), free_port()
    with SMTPServer() as smtp:
        env = project_env(
            DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}",
            REDIS_URL=f"redis://127.0.0.1:6379/{REDIS_DBS[0]}",
            CELERY_BROKER_URL="memory://",  # each replica sends in-process, after commit
            EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}",
            SITE_URL=f"http://127.0.0.1:{port_a}",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            DEBUG="True",  # as when DEBUG defaulted to on: plain http on loopback
            SECRET_KEY="replica-test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
            JWT_PRIVATE_KEY=new_jwt_key(),
            SEND_RATES_PER_EMAIL="2/m",
            VAR_DIR=str(tmp_path / "var"),
        )
        with gunicorn(env, tmp_path, port_a), gunicorn(env, tmp_path, port_b):
            yield f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}", smtp
    for db in REDIS_DBS:
        redis.Redis(host="127.0.0.1", port=6379, db=db).flushdb()


def _on(base: str, browser: Browser) -> Browser:
    """The same cookie jar, talking to another replica."""
    twin = Browser(base)
    twin.session = browser.session
    return twin


def test_sessions_cross_replicas(replicas: tuple[str, str, SMTPServer]) -> None:
    a_url, b_url, smtp = replicas
    on_a = Browser(a_url)
    assert on_a.start("alice@example.org").status_code == 302
    on_b = _on(b_url, on_a)
    assert on_b.submit_code(code_of(smtp.wait_for(1))).headers["Location"] == "/"
    assert on_a.signed_in_as() == on_b.signed_in_as() == "alice@example.org"

    # A second device, ended from the first device on the other replica.
    phone = Browser(b_url)
    assert phone.start("alice@example.org").status_code == 302
    assert Browser(a_url).start("alice@example.org").status_code == 429  # limits are shared
    assert _on(a_url, phone).submit_code(code_of(smtp.wait_for(2))).headers["Location"] == "/"
    phone_session = UserSession.objects.order_by("-created_at").first()
    assert phone_session is not None
    on_a.post(
        "/auth/sessions/",
        {"session": phone_session.public_id},
        token=on_a.csrf_token("/auth/sessions/"),
    )
    assert phone.signed_in_as() is None
    assert on_b.signed_in_as() == "alice@example.org"

    assert on_b.post("/auth/logout/", token=on_b.csrf_token("/")).status_code == 302
    assert on_a.signed_in_as() is None


def test_tokens_cross_replicas(replicas: tuple[str, str, SMTPServer]) -> None:
    a_url, b_url, smtp = replicas
    api_a, api_b = ApiClient(a_url), ApiClient(b_url)
    request_id = api_a.send("bob@example.org").json()["request_id"]
    pair = api_b.verify_code(request_id, code_of(smtp.wait_for(1))).json()
    rotated = api_a.post("/api/auth/token/refresh", {"refresh": pair["refresh"]}).json()
    assert api_b.me(rotated["access"]).status_code == 200
    # Revoked on A, refused at once on B: both read the family from the database.
    bearer = {"Authorization": f"Bearer {rotated['access']}"}
    assert (
        api_a.post("/api/auth/logout", {"refresh": rotated["refresh"]}, bearer).status_code == 204
    )
    assert api_b.me(rotated["access"]).status_code == 401
    refreshed = api_b.post("/api/auth/token/refresh", {"refresh": rotated["refresh"]})
    assert refreshed.status_code == 401
