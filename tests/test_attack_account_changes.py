"""A changed or deactivated account keeps no sign-in in flight, attacked over HTTP.

The address is the credential: whoever reads the old mailbox (its new owner, or
whoever took it over, the reason for the change) must not sign in with a code or
link mailed there before the change, nor stay signed in with a session of before.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import pytest
import requests
from django.core import mail

from accounts.models import User
from passwordless.models import LoginRequest, UserSession
from tests.attacker import Browser
from tests.conftest import Delivered, RateLimitClock
from tests.test_attack_admin import admin_browser, change, form_fields, post_form, run_action

pytestmark = pytest.mark.django_db(transaction=True)

Mailbox = Callable[..., Delivered]
OLD, NEW = "alice@example.org", "alice.new@example.org"
SUPERSEDED = (
    "This sign-in has ended: a newer email was requested, or the account changed. "
    "Use the code or link from the newest email, or request a new one."
)


@pytest.fixture
def alice(site: str, mailbox: Mailbox, rate_clock: RateLimitClock) -> Browser:
    """Alice, signed in on her laptop."""
    User.objects.create_user(OLD)
    laptop = Browser(site)
    laptop.start(OLD)
    assert laptop.submit_code(mailbox(OLD).code).headers["Location"] == "/"
    rate_clock.advance(61)
    return laptop


@pytest.fixture
def pending(site: str, mailbox: Mailbox, alice: Browser) -> tuple[Browser, Delivered]:
    """A sign-in for alice's address, asked from another browser; its email arrived."""
    browser = Browser(site)
    browser.start(OLD)
    return browser, mailbox(OLD)


def _refused(response: requests.Response, code: int = 409) -> str:
    assert response.status_code == code, response.text
    return html.unescape(response.text)


def _assert_old_secrets_fail(browser: Browser, delivered: Delivered) -> None:
    """The old link (opened, then clicked) and the old code both fail, and say why."""
    opened = browser.open_link(delivered.link)
    if opened.status_code == 302:  # not ended, so previewed: the click must refuse
        assert SUPERSEDED in _refused(browser.confirm_link())
    else:
        assert SUPERSEDED in _refused(opened)
    assert SUPERSEDED in _refused(browser.submit_code(delivered.code))
    assert browser.signed_in_as() is None


def _notice_to(address: str) -> mail.EmailMultiAlternatives:
    notices = [m for m in mail.outbox if m.to == [address] and "was changed" in m.subject]
    assert len(notices) == 1, [(m.to, m.subject) for m in mail.outbox]
    notice = notices[0]
    assert isinstance(notice, mail.EmailMultiAlternatives)
    return notice


def test_an_admin_email_change_ends_the_old_code_link_and_sessions(
    site: str, alice: Browser, pending: tuple[Browser, Delivered]
) -> None:
    root = admin_browser(site, User.objects.create_superuser("root@example.org"))
    user = User.objects.get(email=OLD)
    page = f"/admin/accounts/user/{user.pk}/change/"
    edited = change(form_fields(root.get(page).text), email=NEW)
    assert post_form(root, page, [*edited, ("_save", "Save")]).status_code == 302
    assert User.objects.get(pk=user.pk).email == NEW

    browser, delivered = pending
    _assert_old_secrets_fail(browser, delivered)
    assert LoginRequest.objects.get(user=user, status="ended").completed_at is not None
    assert alice.signed_in_as() is None  # her laptop's session ended with the change
    assert not UserSession.objects.filter(user=user, ended_at=None).exists()

    notice = _notice_to(OLD)
    assert "The email address of your account was changed" in notice.subject
    assert "changed to a***@example.org" in notice.body and NEW not in notice.body
    body, kind = notice.alternatives[0]
    assert kind == "text/html" and "a***@example.org" in str(body)
    assert not [m for m in mail.outbox if NEW in m.to]  # nothing to the new address


@pytest.mark.parametrize("queue", ["celery", "sync"])
def test_a_plain_save_ends_the_old_code_and_link(
    alice: Browser, pending: tuple[Browser, Delivered], settings: Any, queue: str
) -> None:
    settings.PASSWORDLESS_MAIL_QUEUE = queue
    user = User.objects.get(email=OLD)
    user.email = NEW
    user.save()  # a shell, a script, a profile form: no admin involved

    browser, delivered = pending
    _assert_old_secrets_fail(browser, delivered)
    assert alice.signed_in_as() is None
    assert "a***@example.org" in _notice_to(OLD).body


def test_a_change_that_sends_no_signal_still_refuses_the_old_code_and_link(
    pending: tuple[Browser, Delivered],
) -> None:
    # A queryset update skips save() and its signals: nothing ends the request, so the
    # sign-in itself must see that its address is no longer the account's.
    User.objects.filter(email=OLD).update(email=NEW)
    browser, delivered = pending
    assert browser.open_link(delivered.link).status_code == 302  # still pending
    _assert_old_secrets_fail(browser, delivered)
    assert LoginRequest.objects.filter(status="signed_in").count() == 1  # alice's, before


def test_an_approved_sign_in_is_not_collected_after_the_email_changed(
    site: str, mailbox: Mailbox, alice: Browser
) -> None:
    laptop = Browser(site)
    laptop.start(OLD)
    mailbox(OLD)
    # Approved on another device (the number matched), not collected yet by the laptop.
    LoginRequest.objects.filter(status="pending").update(status="approved")
    user = User.objects.get(email=OLD)
    user.email = NEW
    user.save()
    assert laptop.poll().json()["error"]["code"] == "request_superseded"
    assert laptop.signed_in_as() is None


def test_deactivation_ends_pending_sign_ins_for_good(
    site: str, alice: Browser, pending: tuple[Browser, Delivered]
) -> None:
    root = admin_browser(site, User.objects.create_superuser("root@example.org"))
    user = User.objects.get(email=OLD)
    run_action(root, "/admin/accounts/user/", "deactivate", user.pk)
    assert not User.objects.get(pk=user.pk).is_active
    assert alice.signed_in_as() is None
    # Reactivated after the incident: a code mailed before must not come back to life.
    user.refresh_from_db()
    user.is_active = True
    user.save()
    browser, delivered = pending
    _assert_old_secrets_fail(browser, delivered)
    assert not [m for m in mail.outbox if "was changed" in m.subject]  # no address changed
