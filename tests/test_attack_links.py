"""Magic links against mail scanners and across devices, attacked over HTTP."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from passwordless.models import AuthEvent, LoginRequest
from tests.attacker import Browser
from tests.conftest import Delivered, RateLimitClock

pytestmark = pytest.mark.django_db(transaction=True)

Mailbox = Callable[..., Delivered]
OUTLOOK = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36 Edg/120.0 Microsoft Outlook SafeLinks"
)
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Version/18.0 Mobile Safari/604.1"


class _Forms(HTMLParser):
    """Every form of a page with the fields a crawler would send: inputs, not buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attributes.get("action") or "", "fields": {}})
        elif tag == "input" and self.forms and attributes.get("name"):
            self.forms[-1]["fields"][attributes["name"]] = attributes.get("value") or ""


def _number_on(page: str) -> str:
    match = re.search(r'class="match-number"[^>]*>(\d\d)<', page)
    assert match, page
    return match.group(1)


def _choices_on(page: str) -> list[str]:
    return re.findall(r'name="pick" value="(\d\d)"', page)


def _start(site: str, mailbox: Mailbox, email: str = "alice@example.org") -> tuple[Browser, str]:
    waiting = Browser(site)
    waiting.start(email)
    return waiting, mailbox(email).link


def test_scanners_open_and_submit_and_burn_nothing(site: str, mailbox: Mailbox) -> None:
    waiting, link = _start(site, mailbox)
    for _ in range(3):
        scanner = Browser(site, **{"User-Agent": OUTLOOK})
        assert scanner.head(link).status_code == 302
        page = scanner.session.get(link, timeout=20)  # follows the redirect
        assert page.status_code == 200
        assert "Approve the sign-in on the device that asked?" in page.text
        assert 'value="sign_in"' not in page.text  # the one-click button is not for it
        # A crawler that submits every form it finds, without clicking a number.
        parser = _Forms()
        parser.feed(page.text)
        assert len(parser.forms) == 2
        for form in parser.forms:
            response = scanner.post(
                form["action"], form["fields"], token=form["fields"]["csrfmiddlewaretoken"]
            )
            assert response.status_code == 400
            assert scanner.signed_in_as() is None
        assert scanner.post("/auth/link/", {}).status_code == 400  # a bare POST

    login_request = LoginRequest.objects.get()
    assert (login_request.status, login_request.attempts) == ("pending", 0)
    assert waiting.poll().json()["status"] == "pending"
    assert waiting.signed_in_as() is None
    # The owner's link still works, in one click.
    waiting.open_link(link)
    assert waiting.confirm_link().status_code == 302
    assert waiting.signed_in_as() == "alice@example.org"


def test_same_browser_signs_in_with_one_click(site: str, mailbox: Mailbox) -> None:
    browser, link = _start(site, mailbox)
    cookie = next(c for c in browser.session.cookies if c.name == "passwordless_binding")
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert cookie.get_nonstandard_attr("SameSite") == "Lax"
    page = browser.session.get(link, timeout=20)
    assert "Sign in as a***@example.org?" in page.text
    assert "requested from" in page.text and "UTC" in page.text
    assert 'value="sign_in"' in page.text and 'name="pick"' not in page.text
    assert browser.confirm_link().headers["Location"] == "/"
    assert browser.signed_in_as() == "alice@example.org"


def test_cross_device_approval_signs_in_only_the_waiting_device(
    site: str, mailbox: Mailbox
) -> None:
    laptop, link = _start(site, mailbox)
    number = _number_on(laptop.session.get(f"{site}/auth/code/", timeout=20).text)
    phone = Browser(site, **{"User-Agent": PHONE})
    page = phone.session.get(link, timeout=20)
    choices = _choices_on(page.text)
    assert len(choices) == 3 and number in choices
    assert _choices_on(phone.session.get(f"{site}/auth/link/", timeout=20).text) == choices

    approved = phone.approve(number)
    assert approved.status_code == 200
    assert "The device that asked is signing in now" in approved.text
    assert phone.signed_in_as() is None

    polled = laptop.poll().json()
    assert polled == {"status": "signed_in", "redirect": "/"}
    assert laptop.signed_in_as() == "alice@example.org"
    assert phone.approve(number).status_code in (404, 409)  # a replay approves nothing

    event = AuthEvent.objects.get(kind="signed_in")
    assert event.method == "approval"
    assert event.details["approver"]["user_agent"] == PHONE
    assert event.details["requester"]["ip"] == "127.0.0.0/24"
    assert AuthEvent.objects.filter(kind="approved").count() == 1


def test_a_wrong_pick_locks_and_both_devices_say_so(
    site: str, mailbox: Mailbox, rate_clock: RateLimitClock
) -> None:
    laptop, link = _start(site, mailbox)
    number = _number_on(laptop.session.get(f"{site}/auth/code/", timeout=20).text)
    phone = Browser(site)
    phone.open_link(link)
    wrong = next(c for c in _choices_on(phone.get("/auth/link/").text) if c != number)
    refused = phone.approve(wrong)
    assert refused.status_code == 423
    assert "Request a new code" in refused.text
    assert laptop.poll().json()["error"]["code"] == "request_locked"
    assert "Too many wrong codes. Request a new code." in laptop.get("/auth/code/").text
    assert laptop.signed_in_as() is None and phone.signed_in_as() is None

    # Approving from another device now pauses for this address; the code still works.
    rate_clock.advance(61)
    laptop.resend()
    fresh = mailbox("alice@example.org")
    other = Browser(site)
    other.open_link(fresh.link)
    number = _number_on(laptop.get("/auth/code/").text)
    assert other.approve(number).status_code == 423
    assert laptop.submit_code(fresh.code).headers["Location"] == "/"


def test_sign_in_on_this_device_instead_needs_the_code(site: str, mailbox: Mailbox) -> None:
    laptop, link = _start(site, mailbox)
    code = mailbox("alice@example.org").code
    phone = Browser(site)
    phone.open_link(link)
    assert phone.sign_in_here("").status_code == 400
    wrong = "000000" if code != "000000" else "111111"
    assert phone.sign_in_here(wrong).status_code == 400
    assert phone.signed_in_as() is None
    assert phone.sign_in_here(code).headers["Location"] == "/"
    assert phone.signed_in_as() == "alice@example.org"
    assert laptop.poll().json()["error"]["code"] == "link_used"
    assert laptop.signed_in_as() is None


def test_waiting_page_polls_with_a_script_and_refreshes_without_one(
    site: str, mailbox: Mailbox
) -> None:
    laptop, _ = _start(site, mailbox)
    page = laptop.get("/auth/code/").text
    assert '<script src="/static/passwordless/wait.js" defer></script>' in page
    assert '<noscript><meta http-equiv="refresh" content="10"></noscript>' in page
    assert 'data-wait-url="/auth/code/status/"' in page
    script = laptop.get("/static/passwordless/wait.js")
    assert script.status_code == 200 and "fetch(url" in script.text


def test_polling_is_rate_limited(site: str, mailbox: Mailbox, settings: Any) -> None:
    settings.PASSWORDLESS_POLL_RATES_PER_IP = "3/m"
    laptop, _ = _start(site, mailbox)
    statuses = [laptop.poll().status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert laptop.poll().json()["error"]["code"] == "rate_limited"


@pytest.mark.parametrize(
    ("delivery", "text"),
    [
        ("pending", "Sending the email"),
        ("sent", "Email sent."),
        ("deferred", "The email is delayed. We're still trying"),
        ("failed", "We couldn't send the email."),
    ],
)
def test_waiting_page_shows_the_delivery_state(
    site: str, mailbox: Mailbox, delivery: str, text: str
) -> None:
    laptop, _ = _start(site, mailbox)
    LoginRequest.objects.update(delivery=delivery)
    page = html.unescape(laptop.get("/auth/code/").text)
    assert text in page
    assert ("Try sending again" in page) == (delivery == "failed")
    assert laptop.poll().json()["delivery"] in {"sending", "sent", "delayed", "failed"}


def test_delivery_state_is_not_shown_when_signup_is_closed(
    site: str, mailbox: Mailbox, settings: Any
) -> None:
    settings.PASSWORDLESS_SIGNUP_ENABLED = False
    laptop = Browser(site)
    laptop.start("nobody@example.org")
    LoginRequest.objects.update(delivery="failed")
    assert "couldn't send" not in laptop.get("/auth/code/").text
    assert "delivery" not in laptop.poll().json()


def test_a_poll_writes_nothing_to_the_database(mailbox: Mailbox) -> None:
    browser = Client()
    browser.post("/auth/login/", {"email": "alice@example.org"})
    with CaptureQueriesContext(connection) as queries:
        for _ in range(3):
            assert browser.get("/auth/code/status/").status_code == 200
    writes = [q["sql"] for q in queries if not q["sql"].lstrip().upper().startswith("SELECT")]
    assert writes == []
    reads = [q for q in queries if "passwordless_loginrequest" in q["sql"]]
    assert len(reads) == 3  # one read per poll
