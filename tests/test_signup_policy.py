"""Who may sign up (issue 18), over HTTP against the live server: each policy decides in
the worker, so a known and an unknown address still get identical answers, and existing
accounts sign in under every policy."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core import mail
from django.core.management import CommandError, call_command

from passwordless import signup
from passwordless.models import AuthEvent, Invitation, LoginRequest
from passwordless.services.delivery import deliver_login_email
from passwordless.testing import sign_in_mails
from tests.attacker import Browser
from tests.conftest import RateLimitClock
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

_VOLATILE = {"Date", "Expires", "Set-Cookie", "Content-Length", "Retry-After", "X-Request-ID"}
_INVITATION_LINK = re.compile(r"(https?://\S+/auth/invite/[A-Za-z0-9_-]+/)")


def _normalised(response: requests.Response, email: str) -> dict[str, Any]:
    body = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.text)
    body = re.sub(r'name="shown_at" value="[^"]+"', "", body)
    body = re.sub(r"\b\d\d\b", "NN", body)  # the number to match, drawn per request
    cookies = sorted(
        re.sub(r"=[^;]*;", "=;", c.strip()) for c in response.raw.headers.getlist("Set-Cookie")
    )
    return {
        "status": response.status_code,
        "location": response.headers.get("Location"),
        "headers": sorted((k, v) for k, v in response.headers.items() if k not in _VOLATILE),
        "cookies": cookies,
        "body": body.replace(email, "EMAIL"),
    }


def _answers(site: str, email: str) -> list[dict[str, Any]]:
    """The email form's answer and the code page after it, for one address."""
    browser = Browser(site)
    posted = browser.start(email)
    page = browser.get("/auth/code/")
    return [_normalised(posted, email), _normalised(page, email)]


def _assert_same_answers(site: str, *emails: str) -> None:
    first, *others = (_answers(site, email) for email in emails)
    assert first[0]["status"] == 302 and first[0]["location"] == "/auth/code/"
    for other in others:
        assert other == first


def _mailed() -> set[str]:
    return {to for message in mail.outbox for to in message.to}


def _signs_in(site: str, email: str, rate_clock: RateLimitClock) -> None:
    rate_clock.advance(61)  # past the address's one email a minute
    browser = Browser(site)
    assert browser.start(email).status_code == 302
    code = sign_in_mails(email)[-1].code
    assert browser.submit_code(code).status_code == 302
    assert browser.signed_in_as() == email


def test_allow_list_lets_in_its_domains_and_their_subdomains_only(
    site: str, settings: Any, rate_clock: RateLimitClock
) -> None:
    settings.PASSWORDLESS_SIGNUP_ALLOWED_DOMAINS = ["example.com", "xn--bcher-kva.example"]
    UserFactory.create(email="known@other.org")

    _assert_same_answers(site, "known@other.org", "stranger@other.org", "eve@badexample.com")
    _answers(site, "ann@example.com")
    _answers(site, "bob@mail.example.com")
    _answers(site, "cem@lists.bücher.example")  # an IDN, given in punycode in the setting

    assert _mailed() == {
        "known@other.org",
        "ann@example.com",
        "bob@mail.example.com",
        "cem@lists.bücher.example",
    }
    # The worker decided: every address was asked for and recorded the same way.
    assert LoginRequest.objects.filter(delivery="suppressed").count() == 2
    _signs_in(site, "known@other.org", rate_clock)


def test_block_list_keeps_out_its_domains_and_their_subdomains(
    site: str, settings: Any, rate_clock: RateLimitClock
) -> None:
    settings.PASSWORDLESS_SIGNUP_BLOCKED_DOMAINS = "blocked.example, spam.test"
    UserFactory.create(email="old@blocked.example")

    _assert_same_answers(site, "old@blocked.example", "new@blocked.example", "new@mx.spam.test")
    _answers(site, "new@notblocked.example")

    assert _mailed() == {"old@blocked.example", "new@notblocked.example"}
    _signs_in(site, "old@blocked.example", rate_clock)


def test_block_list_wins_over_the_allow_list(site: str, settings: Any) -> None:
    settings.PASSWORDLESS_SIGNUP_ALLOWED_DOMAINS = ["example.com"]
    settings.PASSWORDLESS_SIGNUP_BLOCKED_DOMAINS = ["guests.example.com"]
    _answers(site, "staff@example.com")
    _answers(site, "visitor@guests.example.com")
    assert _mailed() == {"staff@example.com"}


def test_disposable_domains_are_kept_out_when_asked(
    site: str, settings: Any, tmp_path: Path, rate_clock: RateLimitClock
) -> None:
    settings.PASSWORDLESS_SIGNUP_BLOCK_DISPOSABLE = True
    UserFactory.create(email="longtime@mailinator.com")

    _assert_same_answers(
        site, "longtime@mailinator.com", "burner@mailinator.com", "burner@eu.mailinator.com"
    )
    _answers(site, "real@example.org")
    assert _mailed() == {"longtime@mailinator.com", "real@example.org"}
    _signs_in(site, "longtime@mailinator.com", rate_clock)

    # The list can be replaced by a file of the project's own.
    own = tmp_path / "disposable.txt"
    own.write_text("# ours\nthrowaway.test\n\n", encoding="utf-8")
    settings.PASSWORDLESS_SIGNUP_DISPOSABLE_DOMAINS_FILE = str(own)
    mail.outbox.clear()
    _answers(site, "a@x.throwaway.test")
    _answers(site, "b@mailinator.com")
    assert _mailed() == {"b@mailinator.com"}


def test_disposable_domains_are_let_in_by_default(site: str) -> None:
    _answers(site, "burner@mailinator.com")
    assert _mailed() == {"burner@mailinator.com"}


def test_the_shipped_disposable_list_is_canonical_and_matches_subdomains() -> None:
    domains = signup.disposable_domains()
    assert len(domains) > 1000 and "mailinator.com" in domains
    assert all(d == signup.canonical_domain(d) for d in list(domains)[:500])
    assert signup.is_disposable("eu.mailinator.com")
    assert not signup.is_disposable("notmailinator.example")
    assert not signup.matches("badexample.com", frozenset({"example.com"}))


@pytest.mark.parametrize("settings_of", [{"SIGNUP_POLICY": "closed"}, {"SIGNUP_ENABLED": False}])
def test_closed_sign_up_mails_only_existing_accounts(
    site: str, settings: Any, settings_of: dict[str, Any], rate_clock: RateLimitClock
) -> None:
    for name, value in settings_of.items():
        setattr(settings, f"PASSWORDLESS_{name}", value)
    UserFactory.create(email="member@example.org")
    _assert_same_answers(site, "member@example.org", "newcomer@example.org")
    assert _mailed() == {"member@example.org"}
    _signs_in(site, "member@example.org", rate_clock)


def _staff_browser(site: str) -> Browser:
    UserFactory.create(email="admin@example.org", is_staff=True, is_superuser=True)
    browser = Browser(site)
    _sign_in(browser, "admin@example.org")
    return browser


def _sign_in(browser: Browser, email: str) -> None:
    assert browser.start(email).status_code == 302
    assert browser.submit_code(sign_in_mails(email)[-1].code).status_code == 302


def _invitation_link(to: str) -> str:
    messages = [m for m in mail.outbox if to in m.to and "/auth/invite/" in str(m.body)]
    assert messages, [m.to for m in mail.outbox]
    found = _INVITATION_LINK.search(str(messages[-1].body))
    assert found, messages[-1].body
    return found.group(1)


def test_invite_only_from_the_admin_to_the_new_account(
    site: str, settings: Any, rate_clock: RateLimitClock
) -> None:
    settings.PASSWORDLESS_SIGNUP_POLICY = "invite_only"
    staff = _staff_browser(site)
    UserFactory.create(email="member@example.org")

    # Without an invitation, unknown addresses get nothing, and the answer is everyone's.
    _assert_same_answers(site, "member@example.org", "guest@example.org")
    assert "guest@example.org" not in _mailed()

    add = "/admin/passwordless/invitation/add/"
    assert staff.get(add).status_code == 200
    sent = staff.post(add, {"emails": "Guest@Example.org\nmember@example.org\nnot an address"})
    assert sent.status_code == 302
    invitation = Invitation.objects.get()
    assert invitation.email == "guest@example.org" and invitation.invited_by is not None
    assert invitation.token_hash and invitation.used_at is None
    assert AuthEvent.objects.filter(kind="invited").count() == 1
    link = _invitation_link("guest@example.org")
    assert invitation.token_hash not in str(mail.outbox[-1].body)  # only the raw token

    # Opening the link (a scanner, a preview) changes nothing.
    guest = Browser(site)
    requests_before = LoginRequest.objects.count()
    opened = guest.get(link)
    assert opened.status_code == 200 and "g***@example.org" in opened.text
    assert opened.headers["Referrer-Policy"] == "no-referrer"
    assert LoginRequest.objects.count() == requests_before
    # The guest's own try at the email form is no invitation.
    mail.outbox.clear()
    guest.start("guest@example.org")
    assert _mailed() == set()

    rate_clock.advance(61)
    started = guest.post(link, token=guest.csrf_token(link))
    assert started.status_code == 302 and started.headers["Location"] == "/auth/code/"
    login_request = LoginRequest.objects.latest("created_at")
    assert login_request.invitation_id == invitation.pk
    code = sign_in_mails("guest@example.org")[-1].code
    assert guest.submit_code(code).status_code == 302
    assert guest.signed_in_as() == "guest@example.org"

    invitation.refresh_from_db()
    assert invitation.used_at is not None
    other = Browser(site)
    again = other.post(link, token=other.csrf_token())
    assert again.status_code == 409 and "already been used" in again.text
    # The new account signs in like any other, under the same policy.
    _signs_in(site, "guest@example.org", rate_clock)


def test_an_invitation_signs_up_its_own_address_only(site: str, settings: Any) -> None:
    settings.PASSWORDLESS_SIGNUP_POLICY = "invite_only"
    staff = _staff_browser(site)
    staff.post("/admin/passwordless/invitation/add/", {"emails": "invited@example.org"})
    link = _invitation_link("invited@example.org")
    invitation = Invitation.objects.get()

    # The request carries the invitation; another address's request cannot borrow it.
    intruder = Browser(site)
    intruder.start("intruder@example.org")
    LoginRequest.objects.filter(email="intruder@example.org").update(invitation=invitation)
    LoginRequest.objects.filter(email="intruder@example.org").update(delivery="pending")
    pk = LoginRequest.objects.get(email="intruder@example.org").pk
    assert deliver_login_email(pk) == "suppressed"
    assert "intruder@example.org" not in _mailed()

    # Expired: the link says so, and starts nothing.
    Invitation.objects.update(expires_at=invitation.created_at)
    expired = Browser(site)
    assert expired.get(link).status_code == 410
    assert expired.post(link, token=expired.csrf_token(link)).status_code == 410
    # Mistyped: not found.
    assert Browser(site).get(link[:-3] + "xx/").status_code == 404


def test_sending_an_invitation_again_replaces_its_link(site: str, settings: Any) -> None:
    settings.PASSWORDLESS_SIGNUP_POLICY = "invite_only"
    staff = _staff_browser(site)
    staff.post("/admin/passwordless/invitation/add/", {"emails": "twice@example.org"})
    first = _invitation_link("twice@example.org")
    invitation = Invitation.objects.get()
    action = staff.post(
        "/admin/passwordless/invitation/",
        {"action": "send_again", "_selected_action": str(invitation.pk)},
    )
    assert action.status_code == 302
    second = _invitation_link("twice@example.org")
    assert second != first
    assert Browser(site).get(first).status_code == 404
    assert Browser(site).get(second).status_code == 200


def test_closed_sign_up_refuses_even_an_invitation(site: str, settings: Any) -> None:
    settings.PASSWORDLESS_SIGNUP_POLICY = "invite_only"
    staff = _staff_browser(site)
    staff.post("/admin/passwordless/invitation/add/", {"emails": "late@example.org"})
    link = _invitation_link("late@example.org")
    settings.PASSWORDLESS_SIGNUP_POLICY = "closed"
    mail.outbox.clear()
    guest = Browser(site)
    assert guest.post(link, token=guest.csrf_token(link)).status_code == 302
    assert _mailed() == set()


def test_the_disposable_list_is_refreshed_by_its_command(tmp_path: Path, settings: Any) -> None:
    source = tmp_path / "upstream.txt"
    source.write_text("Burner.Example\n# a comment\nxn--bcher-kva.example\nnot a domain\n")
    output = tmp_path / "ours.txt"
    settings.PASSWORDLESS_SIGNUP_DISPOSABLE_DOMAINS_FILE = str(output)
    call_command(
        "passwordless_disposable_domains",
        source=str(source),
        add=["extra.test"],
        remove=["burner.example"],
        stdout=StringIO(),
    )
    assert signup.disposable_domains() == {"bücher.example", "extra.test"}
    assert signup.is_disposable("mx.extra.test") and not signup.is_disposable("burner.example")
    with pytest.raises(CommandError):
        call_command("passwordless_disposable_domains", source=str(tmp_path / "missing"))
