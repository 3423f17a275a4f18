"""Redirects, hosts, headers, cookies and sessions, attacked over HTTP against the live server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from passwordless.models import AuthEvent
from tests.attacker import Browser
from tests.conftest import Delivered, FrozenClock
from tests.factories import UserFactory
from tests.stack import new_jwt_key

pytestmark = pytest.mark.django_db(transaction=True)

Mailbox = Callable[..., Delivered]
ROOT = Path(__file__).resolve().parent.parent


def _sign_in(site: str, mailbox: Mailbox, email: str = "alice@example.org", **extra: str) -> Any:
    browser = Browser(site)
    browser.start(email, **extra)
    response = browser.submit_code(mailbox(email).code)
    assert response.status_code == 302, response.text
    assert response.headers["Location"] != "/auth/login/"
    return browser, response


@pytest.mark.parametrize(
    "next_url",
    [
        "//evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "https:evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "%2F%2Fevil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        " //evil.example",
        "/\\/evil.example",
    ],
)
def test_next_accepts_only_same_site_paths(site: str, mailbox: Mailbox, next_url: str) -> None:
    _, response = _sign_in(site, mailbox, next=next_url)
    assert response.headers["Location"] == "/"


def test_next_is_kept_on_the_request_and_never_in_the_link(site: str, mailbox: Mailbox) -> None:
    _, response = _sign_in(site, mailbox, next="/admin/?tab=1")
    assert response.headers["Location"] == "/admin/?tab=1"
    assert "next" not in mailbox("alice@example.org").link
    assert "admin" not in mailbox("alice@example.org").message.body


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "evil.example", "Origin": "http://evil.example"},
        {"X-Forwarded-Host": "evil.example"},
    ],
)
def test_forged_host_headers_never_change_the_emailed_link(
    site: str, mailbox: Mailbox, settings: Any, headers: dict[str, str]
) -> None:
    settings.ALLOWED_HOSTS = ["*"]  # even a careless configuration
    browser = Browser(site, **headers)
    assert browser.start("alice@example.org").status_code == 302
    delivered = mailbox("alice@example.org")
    assert delivered.link.startswith(f"{site}/auth/link/")
    assert "evil.example" not in delivered.message.body


def test_unknown_host_is_refused(site: str) -> None:
    assert Browser(site, Host="evil.example").get("/auth/login/").status_code == 400


def test_referrer_policy_and_no_store_on_every_auth_page(site: str, mailbox: Mailbox) -> None:
    browser = Browser(site)
    pages = {"login": browser.get("/auth/login/"), "bad email": browser.start("nope")}
    pages["start"] = browser.start("alice@example.org")
    pages["code"] = browser.get("/auth/code/")
    pages["wrong code"] = browser.submit_code(
        "000000" if mailbox("alice@example.org").code != "000000" else "111111"
    )
    pages["resend limited"] = browser.resend()
    link = mailbox("alice@example.org").link
    pages["link"] = browser.open_link(link)
    pages["confirm"] = browser.get("/auth/link/")
    pages["unknown link"] = browser.get("/auth/link/not-a-token-at-all-xxxxxxxx/")
    for name, response in pages.items():
        assert "no-store" in response.headers.get("Cache-Control", ""), name
        assert "default-src 'self'" in response.headers["Content-Security-Policy"], name
        assert link.rsplit("/", 2)[1] not in response.text, name
        expected = "no-referrer" if name in {"link", "unknown link"} else "same-origin"
        assert response.headers["Referrer-Policy"] == expected, name
    assert pages["resend limited"].status_code == 429
    assert pages["link"].headers["Location"] == "/auth/link/"


def test_sign_in_cycles_the_session_key_and_the_csrf_token(site: str, mailbox: Mailbox) -> None:
    browser = Browser(site)
    browser.start("alice@example.org")
    before = (browser.cookie("sessionid"), browser.cookie("csrftoken"))
    assert all(before)
    browser.submit_code(mailbox("alice@example.org").code)
    after = (browser.cookie("sessionid"), browser.cookie("csrftoken"))
    assert after[0] != before[0] and after[1] != before[1]

    # The pre-sign-in session key is dead: fixing it in a victim's browser gains nothing.
    fixed = Browser(site)
    fixed.session.cookies.set("sessionid", before[0] or "")
    assert fixed.signed_in_as() is None


def test_logout_is_post_only_and_ends_the_session_on_the_server(
    site: str, mailbox: Mailbox
) -> None:
    browser, _ = _sign_in(site, mailbox)
    stolen = Browser(site)
    stolen.session.cookies.set("sessionid", browser.cookie("sessionid"))
    assert stolen.signed_in_as() == "alice@example.org"

    assert browser.get("/auth/logout/").status_code == 405
    assert browser.signed_in_as() == "alice@example.org"
    assert browser.post("/auth/logout/", token=browser.csrf_token("/")).status_code == 302
    assert browser.signed_in_as() is None
    assert stolen.signed_in_as() is None
    assert AuthEvent.objects.filter(kind="signed_out").count() == 1


@pytest.mark.parametrize(
    "path", ["/auth/login/", "/auth/code/", "/auth/code/resend/", "/auth/link/", "/auth/logout/"]
)
def test_every_post_needs_the_csrf_token(site: str, mailbox: Mailbox, path: str) -> None:
    browser, _ = _sign_in(site, mailbox) if path == "/auth/logout/" else (Browser(site), None)
    if path != "/auth/logout/":
        browser.start("bob@example.org")
        browser.open_link(mailbox("bob@example.org").link)
    response = browser.session.post(
        browser.url(path), data={"email": "x@example.org", "code": "123456"}, timeout=20
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("staff", "idle_hours", "absolute_hours"), [(False, 24, 14 * 24), (True, 0.5, 12)]
)
def test_idle_and_absolute_session_timeouts(
    site: str,
    mailbox: Mailbox,
    frozen_clock: FrozenClock,
    staff: bool,
    idle_hours: float,
    absolute_hours: float,
) -> None:
    UserFactory.create(email="alice@example.org", is_staff=staff)
    UserFactory.create(email="bob@example.org", is_staff=staff)
    browser, _ = _sign_in(site, mailbox)
    frozen_clock.advance(hours=idle_hours - 0.01)
    assert browser.signed_in_as() == "alice@example.org"  # renewed: past half the window
    frozen_clock.advance(hours=idle_hours - 0.01)
    assert browser.signed_in_as() == "alice@example.org"
    frozen_clock.advance(hours=idle_hours)
    assert browser.signed_in_as() is None  # idle too long

    browser, _ = _sign_in(site, mailbox, "bob@example.org")
    elapsed = 0.0
    step = idle_hours * 0.6
    while elapsed + step < absolute_hours:
        frozen_clock.advance(hours=step)
        elapsed += step
        assert browser.signed_in_as() == "bob@example.org", elapsed
    frozen_clock.advance(hours=step)
    assert browser.signed_in_as() is None  # past the absolute limit, however active
    assert AuthEvent.objects.filter(kind="signed_out", reason="timeout").count() == 2


def test_production_settings_pass_the_deploy_checks(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "False",
        "SECRET_KEY": "dummy-production-secret-" + "x7Gq2" * 12,
        "ALLOWED_HOSTS": "login.example.com",
        "SITE_URL": "https://login.example.com",
        "PASSWORDLESS_HASH_KEY": "dummy-hash-key-" + "Qz9" * 16,
        "JWT_PRIVATE_KEY": new_jwt_key(),
        "REDIS_URL": "redis://127.0.0.1:6379/15",
        "VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "DEBUG": "False", "VAR_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set in the environment" in result.stderr
