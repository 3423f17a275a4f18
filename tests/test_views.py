"""The HTML pages, driven over HTTP with Django's test client as a browser would."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.test import Client, override_settings

from passwordless import services
from passwordless.errors import SignInError
from passwordless.models import LoginRequest
from tests.conftest import Delivered, RateLimitClock, read_sign_in_mail
from tests.factories import UserFactory
from tests.helpers import link_token, wrong_code

pytestmark = pytest.mark.django_db

StartSignIn = Callable[..., Delivered | None]


def test_sign_in_with_the_code(client: Client, start_sign_in: StartSignIn) -> None:
    delivered = start_sign_in("Alice@Example.org")
    assert delivered is not None
    page = client.get("/auth/code/")
    assert page.status_code == 200
    assert b"alice@example.org" in page.content
    assert b'autocomplete="one-time-code"' in page.content
    assert b'inputmode="numeric"' in page.content

    response = client.post("/auth/code/", {"code": delivered.code})
    assert response.status_code == 302
    assert response["Location"] == "/"
    home = client.get("/")
    assert b"Signed in as <strong>alice@example.org</strong>" in home.content


def test_code_typed_with_spaces_is_accepted(client: Client, start_sign_in: StartSignIn) -> None:
    delivered = start_sign_in("alice@example.org")
    assert delivered is not None
    code = f"{delivered.code[:3]} {delivered.code[3:]}"
    assert client.post("/auth/code/", {"code": code}).status_code == 302


def test_wrong_code_says_so_and_counts_down(client: Client, start_sign_in: StartSignIn) -> None:
    delivered = start_sign_in("alice@example.org")
    assert delivered is not None
    response = client.post("/auth/code/", {"code": wrong_code(delivered.code)})
    assert response.status_code == 400
    assert b"That code isn&#x27;t right" in response.content
    assert b"4 attempts left" in response.content
    assert SESSION_KEY not in client.session


def test_expired_code_says_so(
    client: Client, start_sign_in: StartSignIn, frozen_clock: Any
) -> None:
    delivered = start_sign_in("alice@example.org")
    assert delivered is not None
    frozen_clock.advance(minutes=10)
    response = client.post("/auth/code/", {"code": delivered.code})
    assert response.status_code == 410
    assert b"This code or link has expired. Request a new one." in response.content
    assert b"send a new code" in response.content


def test_resend_button_sends_a_new_email(
    client: Client,
    django_capture_on_commit_callbacks: Any,
    start_sign_in: StartSignIn,
    rate_clock: RateLimitClock,
) -> None:
    start_sign_in("alice@example.org")
    rate_clock.advance(61)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/auth/code/resend/")
    assert response.status_code == 302
    assert len(mail.outbox) == 2


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("", b"Enter your email address."),
        ("not-an-email", b"Enter a valid email address."),
        ("a" * 288 + "@example.org", b"An email address has at most 254 characters."),
    ],
)
def test_bad_email_gets_a_clear_400(client: Client, email: str, message: bytes) -> None:
    response = client.post("/auth/login/", {"email": email})
    assert response.status_code == 400
    assert message in response.content
    assert not LoginRequest.objects.exists()


@pytest.mark.parametrize("code", ["12a456", "abcdef", "1234", "1234567", "١٢٣٤٥٦"])
def test_malformed_code_gets_a_clear_400_and_costs_no_attempt(
    client: Client, start_sign_in: StartSignIn, code: str
) -> None:
    start_sign_in("alice@example.org")
    response = client.post("/auth/code/", {"code": code})
    assert response.status_code == 400
    assert b"Enter the 6-digit code from the email." in response.content
    assert LoginRequest.objects.get().attempts == 0


def test_code_page_without_a_request_goes_back_to_the_email_form(client: Client) -> None:
    response = client.get("/auth/code/")
    assert response.status_code == 302
    assert response["Location"] == "/auth/login/"


def test_opening_the_link_changes_nothing(client: Client, start_sign_in: StartSignIn) -> None:
    delivered = start_sign_in("alice@example.org")
    assert delivered is not None
    scanner = Client()
    for method in (scanner.get, scanner.head, scanner.get):
        response = method(f"/auth/link/{link_token(delivered.link)}/")
        assert response.status_code == 302
        assert response["Location"] == "/auth/link/"
        assert response["Referrer-Policy"] == "no-referrer"
        assert "no-store" in response["Cache-Control"]
    page = scanner.get("/auth/link/")
    assert page.status_code == 200
    assert b"Did you ask to sign in on another device?" in page.content
    assert b"asked to sign in as a***@example.org" in page.content
    assert b'value="sign_in"' not in page.content  # the one-click button is not offered
    assert link_token(delivered.link).encode() not in page.content
    assert SESSION_KEY not in scanner.session
    assert LoginRequest.objects.get().status == LoginRequest.Status.PENDING
    # The raw token is kept nowhere, the session included.
    assert link_token(delivered.link) not in str(dict(scanner.session.items()))


def test_link_button_signs_in_once(client: Client, start_sign_in: StartSignIn) -> None:
    delivered = start_sign_in("alice@example.org")
    assert delivered is not None
    stranger = Client()
    stranger.get(f"/auth/link/{link_token(delivered.link)}/")
    refused = stranger.post("/auth/link/", {"action": "sign_in"})
    assert refused.status_code == 403  # browser_mismatch: nothing consumed
    assert SESSION_KEY not in stranger.session

    page = client.get(f"/auth/link/{link_token(delivered.link)}/", follow=True)
    assert b"Sign in as a***@example.org?" in page.content
    response = client.post("/auth/link/", {"action": "sign_in"})
    assert response.status_code == 302
    assert client.session[SESSION_KEY]

    again = Client()
    response = again.get(f"/auth/link/{link_token(delivered.link)}/")
    assert response.status_code == 409
    assert b"already been used" in response.content


def test_unknown_link_gets_a_clear_404(client: Client) -> None:
    response = client.get("/auth/link/this-is-not-a-token/")
    assert response.status_code == 404
    assert b"This sign-in link or request isn&#x27;t valid" in response.content
    assert client.post("/auth/link/").status_code == 404


def test_code_cannot_be_used_after_the_link(client: Client, start_sign_in: StartSignIn) -> None:
    delivered = start_sign_in("alice@example.org")
    assert delivered is not None
    public_id = LoginRequest.objects.get().public_id
    client.get(f"/auth/link/{link_token(delivered.link)}/")
    assert client.post("/auth/link/", {"action": "sign_in"}).status_code == 302
    with pytest.raises(SignInError) as error:
        services.verify_code(public_id, delivered.code)
    assert error.value.code == "already_used"


def _normalised(response: Any, email: str = "") -> tuple[int, list[str], str, str]:
    """Status, header names, redirect and body, with the CSRF token and typed email removed."""
    body = re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", response.content).decode()
    body = body.replace(email, "EMAIL") if email else body
    # The number to match is drawn per request, whoever owns the address.
    body = re.sub(r"\b\d\d\b", "NN", body)
    return response.status_code, sorted(response.headers), response.get("Location", ""), body


@override_settings(PASSWORDLESS_SIGNUP_ENABLED=False)
def test_known_unknown_and_inactive_emails_get_identical_answers(
    django_capture_on_commit_callbacks: Any,
) -> None:
    UserFactory.create(email="known@example.org")
    UserFactory.create(email="inactive@example.org", is_active=False)
    answers = []
    for email in ("known@example.org", "unknown@example.org", "inactive@example.org"):
        browser = Client()
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            posted = browser.post("/auth/login/", {"email": email})
        assert len(callbacks) == 1  # the same task is queued either way; the worker decides
        page = browser.get("/auth/code/")
        answers.append((_normalised(posted), _normalised(page, email)))
    assert answers[0] == answers[1] == answers[2]
    assert [m.to for m in mail.outbox] == [["known@example.org"]]


def test_links_are_built_from_site_url_not_the_host_header(
    settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.ALLOWED_HOSTS = ["*"]
    browser = Client(HTTP_HOST="attacker.example")
    with django_capture_on_commit_callbacks(execute=True):
        browser.post("/auth/login/", {"email": "alice@example.org"})
    assert "attacker.example" not in mail.outbox[0].body
    assert "http://testserver/auth/link/" in mail.outbox[0].body


def test_next_is_followed_only_on_this_site(client: Client, start_sign_in: StartSignIn) -> None:
    delivered = start_sign_in("alice@example.org", next="/admin/")
    assert delivered is not None
    response = client.post("/auth/code/", {"code": delivered.code})
    assert response["Location"] == "/admin/"

    other = Client()
    delivered = start_sign_in("bob@example.org", other, next="https://evil.example/")
    assert delivered is not None
    response = other.post("/auth/code/", {"code": delivered.code})
    assert response["Location"] == "/"


def test_sign_out_needs_a_post(client: Client, start_sign_in: StartSignIn) -> None:
    delivered = start_sign_in("alice@example.org")
    assert delivered is not None
    client.post("/auth/code/", {"code": delivered.code})
    assert client.get("/auth/logout/").status_code == 405
    response = client.post("/auth/logout/")
    assert response.status_code == 302
    assert SESSION_KEY not in client.session


def test_pages_forbid_outside_resources_and_leak_no_referrer(client: Client) -> None:
    response = client.get("/auth/login/")
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert response["Referrer-Policy"] == "same-origin"
    assert "no-store" in response["Cache-Control"]


def test_used_link_tokens_stay_out_of_request_logs(
    client: Client, start_sign_in: StartSignIn, caplog: pytest.LogCaptureFixture
) -> None:
    delivered = start_sign_in("alice@example.org")
    assert delivered is not None
    client.post("/auth/code/", {"code": delivered.code})
    with caplog.at_level("INFO"):
        assert Client().get(f"/auth/link/{link_token(delivered.link)}/").status_code == 409
    assert "/auth/link/[redacted]/" in caplog.text
    assert link_token(delivered.link) not in caplog.text


def test_request_a_new_code_after_the_lock(
    client: Client,
    start_sign_in: StartSignIn,
    django_capture_on_commit_callbacks: Any,
    rate_clock: RateLimitClock,
) -> None:
    delivered = start_sign_in("alice@example.org")
    assert delivered is not None
    for _ in range(5):
        response = client.post("/auth/code/", {"code": wrong_code(delivered.code)})
    assert response.status_code == 423
    assert b"Too many wrong codes. Request a new code." in response.content
    assert client.post("/auth/code/", {"code": delivered.code}).status_code == 423

    rate_clock.advance(61)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/auth/code/resend/")
    fresh = read_sign_in_mail(mail.outbox[-1])
    assert client.post("/auth/code/", {"code": fresh.code}).status_code == 302
