"""Signed-in devices people can see and end, over HTTP against the live server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail

from accounts.models import User
from passwordless.models import TokenFamily, UserSession
from tests.api_client import ApiClient
from tests.attacker import Browser
from tests.conftest import Delivered, FrozenClock, RateLimitClock

pytestmark = pytest.mark.django_db(transaction=True)

Mailbox = Callable[..., Delivered]
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Version/18.0 Mobile Safari/604.1"


@pytest.fixture
def sign_in(site: str, mailbox: Mailbox, rate_clock: RateLimitClock) -> Callable[..., Browser]:
    def browser(email: str = "alice@example.org", **headers: str) -> Browser:
        rate_clock.advance(61)
        b = Browser(site, **headers)
        b.start(email)
        assert b.submit_code(mailbox(email).code).headers["Location"] == "/"
        return b

    return browser


@pytest.fixture
def token_client(site: str, mailbox: Mailbox, rate_clock: RateLimitClock) -> Callable[..., Any]:
    def client(email: str = "alice@example.org") -> dict[str, Any]:
        rate_clock.advance(61)
        api = ApiClient(site)
        request_id = api.send(email).json()["request_id"]
        return dict(api.verify_code(request_id, mailbox(email).code).json())

    return client


def test_the_sessions_page_lists_devices_and_ends_one(sign_in: Callable[..., Browser]) -> None:
    laptop = sign_in()
    phone = sign_in(**{"User-Agent": PHONE})
    page = laptop.get("/auth/sessions/").text
    assert page.count('class="session"') == 2
    assert "Safari on iPhone" in page and "This device" in page

    phone_id = UserSession.objects.get(device="Safari on iPhone").public_id
    laptop.post(
        "/auth/sessions/", {"session": phone_id}, token=laptop.csrf_token("/auth/sessions/")
    )
    assert phone.signed_in_as() is None  # on its very next request
    assert laptop.signed_in_as() == "alice@example.org"


def test_sign_out_everywhere_else(sign_in: Callable[..., Browser], token_client: Any) -> None:
    laptop = sign_in()
    others = [sign_in(), sign_in()]
    tokens = token_client()
    laptop.post(
        "/auth/sessions/", {"action": "others"}, token=laptop.csrf_token("/auth/sessions/")
    )
    assert [o.signed_in_as() for o in others] == [None, None]
    assert laptop.signed_in_as() == "alice@example.org"
    api = ApiClient(laptop.base_url)
    assert api.me(tokens["access"]).status_code == 401
    assert api.post("/api/auth/token/refresh", {"refresh": tokens["refresh"]}).status_code == 401


def test_the_api_lists_devices_and_ending_one_revokes_its_tokens(
    site: str, sign_in: Callable[..., Browser], token_client: Any
) -> None:
    browser = sign_in()
    tokens = token_client()
    api = ApiClient(site)
    bearer = {"Authorization": f"Bearer {tokens['access']}"}
    listed = api.get("/api/auth/sessions", bearer).json()["sessions"]
    assert {s["kind"] for s in listed} == {"browser", "tokens"}
    assert [s["current"] for s in listed if s["kind"] == "tokens"] == [True]

    browser_id = next(s["id"] for s in listed if s["kind"] == "browser")
    assert api.delete(f"/api/auth/sessions/{browser_id}", bearer).status_code == 204
    assert browser.signed_in_as() is None
    own_id = next(s["id"] for s in listed if s["kind"] == "tokens")
    assert api.delete(f"/api/auth/sessions/{own_id}", bearer).status_code == 204
    assert api.me(tokens["access"]).status_code == 401
    assert TokenFamily.objects.get().revoked_reason == "ended_by_user"


def test_the_cap_ends_the_oldest_device_and_emails_the_user(
    sign_in: Callable[..., Browser], settings: Any
) -> None:
    settings.PASSWORDLESS_MAX_SESSIONS = 3
    browsers = [sign_in() for _ in range(3)]
    mail.outbox.clear()
    newest = sign_in(**{"User-Agent": PHONE})
    assert [b.signed_in_as() for b in browsers] == [None, "alice@example.org", "alice@example.org"]
    assert newest.signed_in_as() == "alice@example.org"
    (notice,) = [m for m in mail.outbox if m.subject.startswith("New sign-in")]
    assert notice.subject == "New sign-in to your account"
    assert "Safari on iPhone" in notice.body


def test_the_cap_can_refuse_instead(
    site: str,
    mailbox: Mailbox,
    settings: Any,
    sign_in: Callable[..., Browser],
    rate_clock: RateLimitClock,
) -> None:
    settings.PASSWORDLESS_MAX_SESSIONS = 1
    settings.PASSWORDLESS_SESSION_LIMIT_POLICY = "refuse"
    first = sign_in()
    rate_clock.advance(61)
    second = Browser(site)
    second.start("alice@example.org")
    refused = second.submit_code(mailbox("alice@example.org").code)
    assert refused.status_code == 409
    assert "signed in on too many devices" in refused.text
    assert second.signed_in_as() is None
    assert first.signed_in_as() == "alice@example.org"


@pytest.mark.parametrize("change", ["deactivate", "email"])
def test_account_changes_end_every_session_and_token_at_once(
    site: str, sign_in: Callable[..., Browser], token_client: Any, change: str
) -> None:
    browser = sign_in()
    tokens = token_client()
    user = User.objects.get(email="alice@example.org")
    if change == "deactivate":
        user.is_active = False
    else:
        user.email = "alice.new@example.org"
    user.save()
    assert browser.signed_in_as() is None
    api = ApiClient(site)
    assert api.me(tokens["access"]).status_code == 401
    assert api.post("/api/auth/token/refresh", {"refresh": tokens["refresh"]}).status_code == 401
    assert not UserSession.objects.filter(ended_at=None).exists()


def test_last_seen_is_written_only_when_the_session_is_renewed(
    sign_in: Callable[..., Browser], frozen_clock: FrozenClock
) -> None:
    browser = sign_in()
    row = UserSession.objects.get()
    for _ in range(3):
        frozen_clock.advance(hours=3)
        browser.signed_in_as()
    assert UserSession.objects.get().last_seen_at == row.last_seen_at  # 9 h < half of 24 h
    frozen_clock.advance(hours=4)
    browser.signed_in_as()
    assert UserSession.objects.get().last_seen_at > row.last_seen_at


def test_an_admin_signs_a_user_out_everywhere(
    site: str, sign_in: Callable[..., Browser], token_client: Any
) -> None:
    from django.test import Client

    browser = sign_in()
    tokens = token_client()
    admin = Client()
    admin.force_login(User.objects.create_superuser("root@example.org"))
    user = User.objects.get(email="alice@example.org")
    response = admin.post(
        "/admin/accounts/user/",
        {"action": "sign_out_everywhere", "_selected_action": [user.pk]},
        follow=True,
    )
    assert b"Ended 2 session(s)." in response.content
    assert browser.signed_in_as() is None
    assert ApiClient(site).me(tokens["access"]).status_code == 401


def test_ending_a_device_sends_session_revoked(sign_in: Callable[..., Browser]) -> None:
    from passwordless import services, signals

    sign_in()
    received: list[tuple[str, str]] = []

    def receiver(sender: Any, user_session: UserSession, reason: str, **kwargs: Any) -> None:
        received.append((user_session.public_id, reason))

    signals.session_revoked.connect(receiver)
    try:
        row = UserSession.objects.get()
        services.end_session(row, reason="test")
        services.end_session(row, reason="again")  # already ended: no second signal
    finally:
        signals.session_revoked.disconnect(receiver)
    assert received == [(row.public_id, "test")]
