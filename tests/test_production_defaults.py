"""Safe by default: nothing set means production (DEBUG off), development is asked for, and
the development inbox answers only with DEBUG on and only to this machine."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from django.test import Client

from passwordless.checks import check_mail_queue
from tests.stack import Process, free_port, project_env

ROOT = Path(__file__).resolve().parent.parent

_PRINT = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({
    "debug": settings.DEBUG,
    "allowed_hosts": settings.ALLOWED_HOSTS,
    "secure_cookies": settings.SESSION_COOKIE_SECURE,
    "ssl_redirect": settings.SECURE_SSL_REDIRECT,
    "use_finders": settings.WHITENOISE_USE_FINDERS,
    "jwt_keys": len(settings.PASSWORDLESS_JWT_PRIVATE_KEYS),
    "email": settings.EMAIL_BACKEND,
}))
"""


def _load_settings(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """config.settings in a process of its own, with only ``env`` set (and no .env read:
    VAR_DIR is elsewhere, and the checkout's .env, if any, is not the tests' business)."""
    clean = project_env(VAR_DIR=str(tmp_path / "var"), **env)
    return subprocess.run(
        [sys.executable, "-c", _PRINT], cwd=ROOT, env=clean, capture_output=True, text=True
    )


def _env_example() -> dict[str, str]:
    """The variables a `.env` copied from `.env.example` sets: its uncommented lines."""
    lines = (ROOT / ".env.example").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if re.match(r"^[A-Z_]+=", line))
    return {name: value.strip('"') for name, value in pairs}


@pytest.mark.parametrize("source", ["nothing set", ".env from .env.example"])
def test_with_nothing_set_the_settings_are_production_and_want_a_secret_key(
    tmp_path: Path, source: str
) -> None:
    env = _env_example() if source != "nothing set" else {}
    loaded = _load_settings(tmp_path, **env)
    assert loaded.returncode != 0, loaded.stdout
    assert "SECRET_KEY must be set in the environment when DEBUG is off" in loaded.stderr


def test_a_secret_key_alone_gives_production_settings(tmp_path: Path) -> None:
    loaded = _load_settings(tmp_path, SECRET_KEY="production-" + "s" * 50)
    assert loaded.returncode == 0, loaded.stderr
    found = json.loads(loaded.stdout)
    assert found["debug"] is False
    assert found["allowed_hosts"] == []  # every Host is refused until the site is named
    assert found["secure_cookies"] is True and found["ssl_redirect"] is True
    assert found["use_finders"] is False  # only what the release step collected
    assert found["jwt_keys"] == 0  # no development key generated
    # Mail goes to an SMTP server, never into files of the development inbox on disk.
    assert found["email"] == "django.core.mail.backends.smtp.EmailBackend"


def test_development_is_asked_for_with_debug(tmp_path: Path) -> None:
    loaded = _load_settings(tmp_path, DEBUG="True")
    assert loaded.returncode == 0, loaded.stderr
    found = json.loads(loaded.stdout)
    assert found["debug"] is True
    assert found["email"] == "config.devinbox.DevInboxBackend"
    assert found["use_finders"] is True


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_asks_for_debug(tmp_path: Path) -> None:
    """`make run` serves with DEBUG on (a fresh clone sets nothing), unless DEBUG is set."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python").write_text('#!/bin/sh\necho "DEBUG=$DEBUG $*"\n')
    (fake / "python").chmod(0o755)
    (tmp_path / "stamp").touch()
    args = ["make", "--no-print-directory", "run", f"BIN={fake}", f"STAMP={tmp_path / 'stamp'}"]
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "MAKEFLAGS", "MFLAGS"}}
    ran = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert "DEBUG=True manage.py migrate --noinput" in ran.stdout
    assert "DEBUG=True manage.py runserver 127.0.0.1:8000" in ran.stdout
    ran = subprocess.run(
        args, cwd=ROOT, env={**env, "DEBUG": "False"}, capture_output=True, text=True
    )
    assert "DEBUG=False manage.py runserver" in ran.stdout


# The development inbox.


def _put_message(inbox: Path) -> str:
    inbox.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns()}-0123abcd"
    (inbox / f"{name}.eml").write_bytes(
        b"To: alice@example.org\r\nSubject: Your sign-in code and link\r\n"
        b"Content-Type: text/plain\r\n\r\nYour code: 123456\r\n"
    )
    return name


def _inbox_urls(name: str) -> list[str]:
    return ["/dev/inbox/", f"/dev/inbox/{name}/", f"/dev/inbox/{name}/html/"]


@pytest.fixture
def message(settings: Any, tmp_path: Path) -> str:
    settings.DEV_INBOX_DIR = tmp_path / "inbox"
    return _put_message(tmp_path / "inbox")


@pytest.mark.parametrize("peer", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_the_inbox_answers_this_machine_with_debug_on(
    client: Client, settings: Any, message: str, peer: str
) -> None:
    settings.DEBUG = True
    for url in _inbox_urls(message):
        assert client.get(url, REMOTE_ADDR=peer).status_code == 200, url


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_HOST": "localhost"},
        {"HTTP_HOST": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "127.0.0.1"},
        {"HTTP_X_REAL_IP": "127.0.0.1", "HTTP_FORWARDED": "for=127.0.0.1"},
    ],
    ids=["plain", "host-localhost", "forwarded-for-loopback", "real-ip-loopback"],
)
def test_the_inbox_refuses_other_machines_whatever_they_claim(
    client: Client, settings: Any, message: str, headers: dict[str, str]
) -> None:
    settings.DEBUG = True
    # Even a proxy the app trusts for client addresses cannot vouch for the inbox.
    settings.PASSWORDLESS_TRUSTED_PROXIES = ["203.0.113.0/24"]
    for url in _inbox_urls(message):
        response = client.get(url, REMOTE_ADDR="203.0.113.7", **headers)  # type: ignore[arg-type]
        assert response.status_code == 404, url
        assert b"123456" not in response.content


def test_the_inbox_refuses_what_a_local_proxy_relayed(
    client: Client, settings: Any, message: str
) -> None:
    """A proxy on this machine makes every visitor's peer loopback; it says whom it relays."""
    settings.DEBUG = True
    for url in _inbox_urls(message):
        response = client.get(url, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7")
        assert response.status_code == 404, url


def test_the_inbox_is_a_404_with_debug_off(client: Client, settings: Any, message: str) -> None:
    settings.DEBUG = False
    for url in _inbox_urls(message):
        assert client.get(url, REMOTE_ADDR="127.0.0.1").status_code == 404, url


def _outward_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
        except OSError:
            return None
        address: str = sock.getsockname()[0]
    return None if address.startswith("127.") else address


def _wait_until_up(url: str, process: Process) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        process.assert_running()
        try:
            requests.get(url, timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer:\n{process.log()}")


@pytest.mark.e2e
@pytest.mark.parametrize("debug", [True, False], ids=["debug-on", "debug-off"])
def test_the_inbox_over_http(tmp_path: Path, debug: bool) -> None:
    """bin/web, as the containers run it, on loopback and, when this machine has one, on an
    outward address too: a peer there sending ``Host: localhost`` is refused."""
    var = tmp_path / "var"
    name = _put_message(var / "inbox")
    port, outward = free_port(), _outward_address()
    env = project_env(
        DEBUG=str(debug),
        SECRET_KEY="inbox-test-" + "k" * 50,
        VAR_DIR=str(var),
        ALLOWED_HOSTS=f"127.0.0.1,localhost,{outward or 'localhost'}",
        SECURE_SSL_REDIRECT="False",
        PYTHON=sys.executable,
        BIND=f"127.0.0.1:{port}",
        WEB_WORKERS="1",
    )
    extra = ["--bind", f"{outward}:{port}"] if outward else []
    web = Process(f"web-{port}", ["sh", str(ROOT / "bin" / "web"), *extra], env, tmp_path)
    try:
        _wait_until_up(f"http://127.0.0.1:{port}/healthz", web)
        for url in _inbox_urls(name):
            local = requests.get(f"http://127.0.0.1:{port}{url}", timeout=10)
            assert local.status_code == (200 if debug else 404), url
            relayed = requests.get(
                f"http://127.0.0.1:{port}{url}",
                headers={"Host": "localhost", "X-Forwarded-For": "203.0.113.7"},
                timeout=10,
            )
            assert relayed.status_code == 404, url
            if outward:
                forged = requests.get(
                    f"http://{outward}:{port}{url}",
                    headers={"Host": "localhost", "X-Forwarded-For": "127.0.0.1"},
                    timeout=10,
                )
                assert forged.status_code == 404, url
                assert "123456" not in forged.text
    finally:
        web.stop()


# Mail without Celery.


def test_the_default_mail_queue_without_celery_is_refused(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """The real thing runs in a virtualenv without Celery (tests/test_packaging.py)."""
    assert check_mail_queue() == []  # Celery is installed here
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "celery" else real_find_spec(name, *a),
    )
    assert [m.id for m in check_mail_queue()] == ["passwordless.E015"]
    settings.PASSWORDLESS_MAIL_QUEUE = "sync"
    assert check_mail_queue() == []
