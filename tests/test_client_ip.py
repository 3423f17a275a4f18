"""The client address that rate limits count by, behind nginx on a unix socket and behind
trusted proxies; and what happens when a request has none.

gunicorn on a unix socket gives every request an empty ``REMOTE_ADDR``; a trusted proxy may
omit ``X-Forwarded-For``. Counting all of those in one bucket ("unknown", or the proxy's own
address) lets one client spend everyone's budget; a key of their own per request would let
them past every limit. They are refused instead, with a 503 and a log line naming the fix.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from django.core.checks import run_checks
from django.test import Client, RequestFactory

from passwordless.client import client_ip
from passwordless.models import LoginRequest
from tests import services
from tests.stack import Process, SMTPServer, production_env

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("proxies", "remote", "forwarded", "expected"),
    [
        ([], "203.0.113.7", "198.51.100.1", "203.0.113.7"),  # anyone can write the header
        ([], "", "198.51.100.1", None),  # a unix socket, not trusted
        (["unix"], "", "198.51.100.1", "198.51.100.1"),
        (["unix"], "", "1.2.3.4, 198.51.100.1", "198.51.100.1"),  # forged hops ignored
        (["unix"], "", "", None),  # the proxy named no client
        (["127.0.0.1"], "127.0.0.1", "", None),
        (["127.0.0.1"], "127.0.0.1", "garbage", None),
        (["127.0.0.1", "10.0.0.0/8"], "127.0.0.1", "10.0.0.5", "10.0.0.5"),  # all trusted
        (["127.0.0.1"], "127.0.0.1", "203.0.113.9, 10.0.0.5", "10.0.0.5"),
    ],
)
def test_client_ip(
    settings: Any, proxies: list[str], remote: str, forwarded: str, expected: str | None
) -> None:
    settings.PASSWORDLESS_TRUSTED_PROXIES = proxies
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def _send(email: str, **meta: Any) -> Any:
    body = json.dumps({"email": email})
    return Client().post("/api/auth/send", body, content_type="application/json", **meta)


@pytest.mark.parametrize(
    ("proxies", "meta"),
    [
        ([], {"REMOTE_ADDR": ""}),
        (["127.0.0.1"], {"REMOTE_ADDR": "127.0.0.1"}),
    ],
    ids=["no-remote-addr", "trusted-proxy-without-forwarded-for"],
)
def test_no_usable_address_is_refused_not_counted_in_a_shared_bucket(
    settings: Any, caplog: pytest.LogCaptureFixture, proxies: list[str], meta: dict[str, Any]
) -> None:
    settings.PASSWORDLESS_TRUSTED_PROXIES = proxies
    settings.PASSWORDLESS_SEND_RATES_PER_IP = "1/h"
    answers = [_send(f"client{n}@example.org", **meta) for n in range(2)]
    assert [a.status_code for a in answers] == [503, 503]
    assert {a.json()["error"]["code"] for a in answers} == {"service_unavailable"}
    assert not LoginRequest.objects.exists()
    assert "no client address to rate-limit by" in caplog.text
    # The HTML form too.
    page = Client().post("/auth/login/", {"email": "html@example.org"}, **meta)
    assert page.status_code == 503


def test_behind_a_unix_socket_each_client_has_its_own_budget(settings: Any) -> None:
    settings.PASSWORDLESS_TRUSTED_PROXIES = ["unix"]
    settings.PASSWORDLESS_SEND_RATES_PER_IP = "1/h"
    first: dict[str, Any] = {"REMOTE_ADDR": "", "HTTP_X_FORWARDED_FOR": "198.51.100.1"}
    second: dict[str, Any] = {"REMOTE_ADDR": "", "HTTP_X_FORWARDED_FOR": "198.51.100.2"}
    assert _send("a@example.org", **first).status_code == 202
    assert _send("b@example.org", **first).status_code == 429
    assert _send("c@example.org", **second).status_code == 202
    assert set(LoginRequest.objects.values_list("requester_ip", flat=True)) == {
        "198.51.100.1",
        "198.51.100.2",
    }


def _ids(settings: Any) -> list[str]:
    return [m.id for m in run_checks() if m.id in {"passwordless.E021", "passwordless.E022"}]


def test_check_refuses_a_proxy_entry_that_does_not_parse(settings: Any) -> None:
    settings.PASSWORDLESS_TRUSTED_PROXIES = ["10.0.0.0/8", "unix", "the-load-balancer"]
    messages = [m for m in run_checks() if m.id == "passwordless.E021"]
    assert [m.msg for m in messages] == [
        "PASSWORDLESS_TRUSTED_PROXIES has 'the-load-balancer', which is not an address, "
        "a network or 'unix'."
    ]


def test_check_refuses_a_tls_proxy_that_is_not_trusted(settings: Any) -> None:
    settings.DEBUG = False
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.PASSWORDLESS_TRUSTED_PROXIES = []
    assert _ids(settings) == ["passwordless.E022"]
    settings.PASSWORDLESS_TRUSTED_PROXIES = ["unix"]
    assert _ids(settings) == []


# gunicorn on a unix socket, as behind nginx.


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=20)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(20)
        self.sock.connect(self.socket_path)


def _request(path: str, method: str, url: str, body: Any = None, **headers: str) -> Any:
    connection = _UnixConnection(path)
    try:
        data = json.dumps(body) if body is not None else None
        headers = {"Host": "127.0.0.1", "Content-Type": "application/json", **headers}
        connection.request(method, url, body=data, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@contextmanager
def _web_on_socket(env: dict[str, str], log_dir: Path, sock: Path) -> Iterator[Process]:
    import sys

    web_env = {**env, "PYTHON": sys.executable, "BIND": f"unix:{sock}", "WEB_WORKERS": "1"}
    process = Process("gunicorn-unix", ["sh", "bin/web"], web_env, log_dir)
    try:
        yield process
    finally:
        process.stop()


def _wait_for_socket(sock: Path, process: Process, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process.assert_running()
        try:
            if _request(str(sock), "GET", "/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(process.log())


@pytest.fixture
def socket_env(transactional_db: None, tmp_path: Path) -> Iterator[dict[str, Any]]:
    stack_redis = redis.Redis(host="127.0.0.1", port=services.REDIS_PORT, db=11)
    stack_redis.flushdb()
    with SMTPServer() as smtp:
        env = production_env(
            0,
            tmp_path / "var",
            EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}",
            SITE_URL="https://login.example.com",
            SEND_RATES_PER_IP="1/h",
        )
        yield {"env": env, "log_dir": tmp_path, "sock": tmp_path / "web.sock"}
    stack_redis.flushdb()


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.redis
def test_gunicorn_refuses_a_unix_socket_it_would_not_trust(socket_env: dict[str, Any]) -> None:
    with _web_on_socket(socket_env["env"], socket_env["log_dir"], socket_env["sock"]) as web:
        deadline = time.monotonic() + 30
        while web._proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert web._proc.returncode not in (None, 0)
        assert "TRUSTED_PROXIES to include 'unix'" in web.log()


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.redis
def test_behind_nginx_on_a_unix_socket(socket_env: dict[str, Any]) -> None:
    """nginx: ``proxy_pass http://unix:/run/web.sock;`` and
    ``proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;``."""
    env = {**socket_env["env"], "TRUSTED_PROXIES": "unix"}
    sock = socket_env["sock"]
    with _web_on_socket(env, socket_env["log_dir"], sock) as web:
        _wait_for_socket(sock, web)
        path = str(sock)

        def send(email: str, **headers: str) -> int:
            status: int = _request(path, "POST", "/api/auth/send", {"email": email}, **headers)[0]
            return status

        assert send("a@example.org", **{"X-Forwarded-For": "198.51.100.1"}) == 202
        assert send("b@example.org", **{"X-Forwarded-For": "198.51.100.1"}) == 429
        assert send("c@example.org", **{"X-Forwarded-For": "6.6.6.6, 198.51.100.2"}) == 202
        assert send("d@example.org") == 503  # the proxy named no client
    assert "no client address to rate-limit by" in web.log()
