"""Magic links against mail scanners and across devices, attacked over HTTP."""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from passwordless.models import AuthEvent, FailureBudget, LoginRequest
from tests.attacker import Browser
from tests.conftest import Delivered, RateLimitClock
from tests.helpers import all_at_once

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


def _asks_for_a_number(page: str) -> bool:
    return 'name="number"' in page and 'name="pick"' not in page


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
        assert "Did you ask to sign in on another device?" in page.text
        assert _asks_for_a_number(page.text)
        assert 'value="sign_in"' not in page.text  # the one-click button is not for it
        # A crawler that submits every form it finds as it is, without typing anything.
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
    assert 'value="sign_in"' in page.text and 'name="number"' not in page.text
    assert browser.confirm_link().headers["Location"] == "/"
    assert browser.signed_in_as() == "alice@example.org"


def test_cross_device_approval_signs_in_only_the_waiting_device(
    site: str, mailbox: Mailbox
) -> None:
    laptop, link = _start(site, mailbox)
    number = _number_on(laptop.session.get(f"{site}/auth/code/", timeout=20).text)
    phone = Browser(site, **{"User-Agent": PHONE})
    page = phone.session.get(link, timeout=20).text
    # Nothing on the page gives the number away: no choice, no value, no text holding it.
    assert _asks_for_a_number(page)
    assert not re.search(rf'(>\s*|value="){number}(\s*<|")', page)
    # Before anything else, the page says which device and network asked, and what to do
    # for a person who did not ask.
    asked = page.index('class="asked"')
    assert asked < page.index('name="number"') and asked < page.index('name="code"')
    assert "on network 127.0.0.0/24 asked to sign in as a***@example.org" in page
    assert "If that wasn't you, close this page." in page

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


def test_a_wrong_number_approves_nothing_and_leaves_the_request_usable(
    site: str, mailbox: Mailbox
) -> None:
    laptop, link = _start(site, mailbox)
    number = _number_on(laptop.get("/auth/code/").text)
    wrong = f"{(int(number) + 1) % 100:02d}"
    phone = Browser(site)
    phone.open_link(link)
    refused = phone.approve(wrong)
    assert refused.status_code == 400
    assert "nothing was approved" in html.unescape(refused.text)
    assert "turns off for this account: 2." in refused.text
    assert laptop.poll().json()["status"] == "pending"
    assert laptop.signed_in_as() is None and phone.signed_in_as() is None
    # Typing with spaces around, or without the leading zero, is the same number.
    assert phone.approve(f" {int(number)} ").status_code == 200
    assert laptop.poll().json()["status"] == "signed_in"


def _scanner_fills_every_field(scanner: Browser, link: str, rounds: int) -> list[int]:
    """A crawler that fills every text field of every form with 00, 01, 02… in turn
    and submits it: the statuses of its approval answers."""
    statuses = []
    for n in range(rounds):
        page = scanner.session.get(link, timeout=20)
        parser = _Forms()
        parser.feed(page.text)
        for form in parser.forms:
            fields = {
                k: (f"{n:02d}" if k in ("number", "code") else v)
                for k, v in form["fields"].items()
            }
            answer = scanner.post(form["action"], fields, token=fields["csrfmiddlewaretoken"])
            if fields.get("action") == "approve":
                statuses.append(answer.status_code)
                alert = re.search(r'role="alert"[^>]*><p>([^<]*)', answer.text)
                scanner.seen.append(f"{answer.status_code} {alert.group(1) if alert else ''}")
    return statuses


@pytest.mark.postgres
def test_a_scanner_typing_numbers_gets_three_answers_then_approval_is_off(
    site: str, mailbox: Mailbox, settings: Any
) -> None:
    settings.PASSWORDLESS_VERIFY_RATES_PER_IP = "1000/5m"  # the cap under test, not the IP's
    laptop, link = _start(site, mailbox)
    LoginRequest.objects.update(match_number=99)  # beyond the scanner's first three numbers
    scanner = Browser(site, **{"User-Agent": OUTLOOK})
    scanner.seen = []
    statuses = _scanner_fills_every_field(scanner, link, rounds=20)
    # Two "wrong", the third turns approving off.
    assert statuses[:3] == [400, 400, 423], scanner.seen
    assert statuses[3:] == []  # the page no longer has a number field to fill
    assert FailureBudget.objects.get(email="alice@example.org").approval_failures == 3
    # Typing the right number now approves nothing either.
    assert scanner.approve("99").status_code == 423
    assert laptop.poll().json()["status"] == "pending"

    # Both pages say so plainly.
    off = "Approving from another device is off for this account"
    assert off in html.unescape(scanner.session.get(link, timeout=20).text)
    waiting = html.unescape(laptop.get("/auth/code/").text)
    assert off in waiting and 'class="match-number"' not in waiting
    assert laptop.poll().json()["status"] == "pending"

    # The person's own code works (and so would the link, in the browser that asked)...
    assert laptop.submit_code(mailbox("alice@example.org").code).headers["Location"] == "/"
    assert laptop.signed_in_as() == "alice@example.org"
    # ...and signing in by code turns approving back on.
    assert FailureBudget.objects.get(email="alice@example.org").approval_failures == 0


@pytest.mark.postgres
def test_the_link_in_the_browser_that_asked_works_while_approval_is_off(
    site: str, mailbox: Mailbox, settings: Any
) -> None:
    FailureBudget.objects.create(email="alice@example.org", approval_failures=3)
    laptop, link = _start(site, mailbox)
    assert laptop.poll().json()["status"] == "pending"
    laptop.open_link(link)
    assert laptop.confirm_link().headers["Location"] == "/"
    assert FailureBudget.objects.get(email="alice@example.org").approval_failures == 0


@pytest.mark.postgres
def test_wrong_numbers_add_up_across_requests_and_an_approval_does_not_reset_them(
    site: str, mailbox: Mailbox, rate_clock: RateLimitClock
) -> None:
    laptop, link = _start(site, mailbox)
    number = int(_number_on(laptop.get("/auth/code/").text))
    phone = Browser(site)
    phone.open_link(link)
    assert phone.approve((number + 1) % 100).status_code == 400
    assert phone.approve(number).status_code == 200  # approved: the laptop signs in
    assert laptop.poll().json()["status"] == "signed_in"

    # A new sign-in elsewhere: the wrong number above still counts.
    rate_clock.advance(61)
    tablet, link = _start(site, mailbox)
    number = int(_number_on(tablet.get("/auth/code/").text))
    other = Browser(site)
    other.open_link(link)
    assert other.approve((number + 1) % 100).status_code == 400
    assert other.approve((number + 2) % 100).status_code == 423
    assert other.approve(number).status_code == 423
    assert tablet.poll().json()["status"] == "pending"


@pytest.mark.postgres
def test_concurrent_wrong_numbers_cannot_pass_the_cap(site: str, mailbox: Mailbox) -> None:
    laptop, link = _start(site, mailbox)
    number = int(_number_on(laptop.get("/auth/code/").text))
    jars = [Browser(site) for _ in range(12)]
    for jar in jars:
        jar.open_link(link)
    tokens = [jar.csrf_token("/auth/link/") for jar in jars]
    answers = [
        functools.partial(
            jar.post,
            "/auth/link/",
            {"action": "approve", "number": f"{(number + 1 + i) % 100:02d}"},
            token=token,
        )
        for i, (jar, token) in enumerate(zip(jars, tokens, strict=True))
    ]
    statuses = [response.status_code for response in all_at_once(answers)]
    assert sorted(statuses) == [400, 400] + [423] * 10
    assert FailureBudget.objects.get(email="alice@example.org").approval_failures == 3


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
    assert laptop.poll().json()["error"]["code"] == "already_used"
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


@pytest.mark.postgres
def test_with_sign_up_closed_the_waiting_page_does_not_tell_approval_is_off(
    site: str, mailbox: Mailbox, settings: Any
) -> None:
    """Found by review: only an account can have approving turned off (only it gets links
    when sign-up is closed), so a waiting page without its number told that one exists."""
    from accounts.models import User

    settings.PASSWORDLESS_SIGNUP_ENABLED = False
    User.objects.create_user("alice@example.org")
    FailureBudget.objects.create(email="alice@example.org", approval_failures=3)
    pages = []
    for email in ("alice@example.org", "nobody@example.org"):
        browser = Browser(site)
        browser.start(email)
        page = html.unescape(browser.get("/auth/code/").text)
        polled = browser.poll().json()
        pages.append(
            ('class="match-number"' in page, "is off for this account" in page, sorted(polled))
        )
    assert pages[0] == pages[1] == (True, False, ["status"])
    # The approval page, which only a holder of alice's mail reaches, still refuses.
    phone = Browser(site)
    phone.open_link(mailbox("alice@example.org").link)
    assert phone.approve("00").status_code == 423
