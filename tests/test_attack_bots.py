"""Bots on the email form (issue 18), attacked over HTTP: the honeypot and the minimum time
to submit get a bot exactly everyone's answer and no email; the CAPTCHA is verified
server-side against a fake verify endpoint on loopback, and fails closed."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from django.core import mail, signing
from django.db import connection

from passwordless.forms import stamp_form
from passwordless.models import AuthEvent, LoginRequest
from tests import services
from tests.attacker import Browser
from tests.conftest import RateLimitClock
from tests.factories import UserFactory
from tests.stack import SMTPServer, celery_worker, free_port, gunicorn, project_env

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
_VOLATILE = {"Date", "Expires", "Set-Cookie", "Content-Length", "Retry-After", "X-Request-ID"}


class _Inputs(HTMLParser):
    """The named inputs of the email form, as a browser would send them."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.tags: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append({"tag": tag, **attributes})
        if tag == "input" and attributes.get("name"):
            self.fields[str(attributes["name"])] = attributes.get("value") or ""


def _page(browser: Browser) -> _Inputs:
    parser = _Inputs()
    parser.feed(browser.get("/auth/login/").text)
    return parser


def _submit(browser: Browser, email: str, **changes: str) -> requests.Response:
    """Fill in the form the page gave, like a browser (or a bot that keeps every field)."""
    fields = {**_page(browser).fields, "email": email, **changes}
    token = fields.pop("csrfmiddlewaretoken")
    return browser.post("/auth/login/", fields, token=token)


def _shown_ago(seconds: float) -> str:
    return signing.dumps(time.time() - seconds, salt="passwordless.forms.LoginForm.shown_at")


def _normalised(response: requests.Response, email: str) -> dict[str, Any]:
    body = re.sub(r'value="[^"]+"', 'value=""', response.text)
    body = re.sub(r"\b\d\d\b", "NN", body)
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


def _answer(browser: Browser, email: str, **changes: str) -> list[dict[str, Any]]:
    posted = _submit(browser, email, **changes)
    return [_normalised(posted, email), _normalised(browser.get("/auth/code/"), email)]


def _mailed() -> list[str]:
    return [to for message in mail.outbox for to in message.to]


def test_a_filled_honeypot_gets_everyones_answer_and_no_email(
    site: str, rate_clock: RateLimitClock
) -> None:
    UserFactory.create(email="known@example.org")
    person = _answer(Browser(site), "person@example.org")
    bots = [
        _answer(Browser(site), email, website="http://spam.example")
        for email in ("known@example.org", "victim@example.org")
    ]
    assert person[0]["status"] == 302 and person[0]["location"] == "/auth/code/"
    assert all(bot == person for bot in bots)
    assert _mailed() == ["person@example.org"]
    events = AuthEvent.objects.filter(kind="bot_suspected")
    assert sorted(events.values_list("reason", flat=True)) == ["honeypot", "honeypot"]
    assert not AuthEvent.objects.filter(kind="requested", masked_email="v***@example.org")

    # Asking again from the code page sends nothing either.
    bot = Browser(site)
    _submit(bot, "victim@example.org", website="x")
    rate_clock.advance(61)
    assert bot.resend().status_code == 302
    assert _mailed() == ["person@example.org"]
    assert set(
        LoginRequest.objects.exclude(bot_suspicion="").values_list("delivery", flat=True)
    ) == {"suppressed"}


def test_a_form_sent_too_fast_gets_everyones_answer_and_no_email(site: str, settings: Any) -> None:
    settings.PASSWORDLESS_FORM_MIN_SECONDS = 2
    UserFactory.create(email="known@example.org")
    person = _answer(Browser(site), "person@example.org", shown_at=_shown_ago(5))
    fast = [_answer(Browser(site), e) for e in ("known@example.org", "victim@example.org")]
    forged = _answer(Browser(site), "forged@example.org", shown_at="1700000000.0:forged")
    assert all(answer == person for answer in fast)
    assert forged[0] == person[0]
    assert _mailed() == ["person@example.org"]
    reasons = AuthEvent.objects.filter(kind="bot_suspected").values_list("reason", flat=True)
    assert sorted(reasons) == ["tampered", "too_fast", "too_fast"]


def test_the_time_check_can_be_turned_off_and_leaves_scripts_without_the_field_alone(
    site: str, settings: Any, rate_clock: RateLimitClock
) -> None:
    settings.PASSWORDLESS_FORM_MIN_SECONDS = 2
    Browser(site).start("script@example.org")  # posts the address only, no shown_at
    settings.PASSWORDLESS_FORM_MIN_SECONDS = 0
    _submit(Browser(site), "quick@example.org")
    assert sorted(_mailed()) == ["quick@example.org", "script@example.org"]


def test_the_traps_are_invisible_to_people_and_screen_readers(site: str) -> None:
    page = Browser(site).get("/auth/login/")
    parser = _Inputs()
    parser.feed(page.text)
    trap = next(t for t in parser.tags if t.get("class") == "form-trap")
    assert trap["tag"] == "div" and trap["aria-hidden"] == "true"
    honeypot = next(t for t in parser.tags if t.get("name") == "website")
    assert honeypot["tabindex"] == "-1" and honeypot["autocomplete"] == "off"
    shown_at = next(t for t in parser.tags if t.get("name") == "shown_at")
    assert shown_at["type"] == "hidden"
    assert not any("style" in t for t in parser.tags)  # the CSP forbids inline styles
    css = (ROOT / "static" / "css" / "site.css").read_text()
    rule = re.search(r"\.form-trap \{([^}]*)\}", css)
    assert rule and "left: -10000px" in rule.group(1) and "position: absolute" in rule.group(1)
    assert "captcha" not in page.text and "challenges.cloudflare.com" not in page.text


def test_the_signed_time_is_the_servers() -> None:
    value = stamp_form()
    assert (
        abs(
            float(signing.loads(value, salt="passwordless.forms.LoginForm.shown_at")) - time.time()
        )
        < 5
    )
    with pytest.raises(signing.BadSignature):
        signing.loads(value + "x", salt="passwordless.forms.LoginForm.shown_at")


# CAPTCHA, against a fake verify endpoint on loopback.


class _FakeVerify(BaseHTTPRequestHandler):
    """Accepts the answer "good", refuses others; "broken" gets a page that is not JSON,
    "slow" an answer after the client gave up."""

    seen: list[dict[str, str]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        self.seen.append(form)
        answer = form.get("response", "")
        if answer == "slow":
            time.sleep(2)
        if answer == "broken":
            body = b"<html>502 Bad Gateway</html>"
        elif answer == "good":
            body = json.dumps({"success": True, "error-codes": []}).encode()
        else:
            body = json.dumps(
                {"success": False, "error-codes": ["invalid-input-response"]}
            ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def verify_endpoint() -> Iterator[str]:
    _FakeVerify.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeVerify)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/siteverify"
    server.shutdown()
    server.server_close()


@pytest.fixture
def turnstile(settings: Any, verify_endpoint: str) -> str:
    settings.PASSWORDLESS_CAPTCHA = "turnstile"
    settings.PASSWORDLESS_CAPTCHA_SITE_KEY = "site-key-1"
    settings.PASSWORDLESS_CAPTCHA_SECRET_KEY = "secret-key-1"
    settings.PASSWORDLESS_CAPTCHA_VERIFY_URL = verify_endpoint
    settings.PASSWORDLESS_CAPTCHA_TIMEOUT = 1
    return verify_endpoint


def test_the_captcha_widget_and_its_csp_sources_appear_only_when_it_is_on(
    site: str, settings: Any, verify_endpoint: str
) -> None:
    off = Browser(site).get("/auth/login/")
    assert "cloudflare" not in off.headers["Content-Security-Policy"]
    assert "frame-src" not in off.headers["Content-Security-Policy"]
    settings.PASSWORDLESS_CAPTCHA = "turnstile"
    settings.PASSWORDLESS_CAPTCHA_SITE_KEY = "site-key-1"
    on = Browser(site).get("/auth/login/")
    policy = on.headers["Content-Security-Policy"]
    assert "script-src 'self' https://challenges.cloudflare.com" in policy
    assert "frame-src https://challenges.cloudflare.com" in policy
    assert 'class="cf-turnstile" data-sitekey="site-key-1"' in on.text
    assert '<script src="https://challenges.cloudflare.com/turnstile/v0/api.js"' in on.text
    # Only the email form's page: the others keep the project's policy as it is.
    assert "cloudflare" not in Browser(site).get("/auth/code/").headers.get(
        "Content-Security-Policy", ""
    )
    settings.PASSWORDLESS_CAPTCHA = "hcaptcha"
    policy = Browser(site).get("/auth/login/").headers["Content-Security-Policy"]
    assert "frame-src https://hcaptcha.com https://*.hcaptcha.com" in policy


def test_a_passing_captcha_is_verified_server_side(site: str, turnstile: str) -> None:
    response = _submit(Browser(site), "person@example.org", **{"cf-turnstile-response": "good"})
    assert response.status_code == 302 and response.headers["Location"] == "/auth/code/"
    assert _mailed() == ["person@example.org"]
    (seen,) = _FakeVerify.seen
    assert seen == {"secret": "secret-key-1", "response": "good", "remoteip": "127.0.0.1"}


def test_a_failing_or_missing_captcha_is_refused_with_a_clear_message(
    site: str, turnstile: str
) -> None:
    for answer in ({"cf-turnstile-response": "bad"}, {}):
        response = _submit(Browser(site), "person@example.org", **answer)
        assert response.status_code == 400
        assert "not a robot didn&#x27;t pass" in response.text
    assert _mailed() == [] and not LoginRequest.objects.exists()
    assert len(_FakeVerify.seen) == 1  # no answer at all never reaches the endpoint


@pytest.mark.parametrize("answer", ["broken", "slow"])
def test_a_verify_endpoint_that_fails_refuses_the_form(
    site: str, turnstile: str, answer: str
) -> None:
    response = _submit(Browser(site), "person@example.org", **{"cf-turnstile-response": answer})
    assert response.status_code == 503
    assert "unavailable for a moment, so nothing was sent" in response.text
    assert _mailed() == [] and not LoginRequest.objects.exists()


def test_a_verify_endpoint_that_is_down_refuses_the_form(
    site: str, turnstile: str, settings: Any
) -> None:
    settings.PASSWORDLESS_CAPTCHA_VERIFY_URL = f"http://127.0.0.1:{free_port()}/siteverify"
    response = _submit(Browser(site), "person@example.org", **{"cf-turnstile-response": "good"})
    assert response.status_code == 503
    assert _mailed() == []
    settings.PASSWORDLESS_CAPTCHA_SECRET_KEY = ""  # a CAPTCHA without its secret: closed
    response = _submit(Browser(site), "person@example.org", **{"cf-turnstile-response": "good"})
    assert response.status_code == 503


def test_hcaptcha_sends_its_site_key(site: str, turnstile: str, settings: Any) -> None:
    settings.PASSWORDLESS_CAPTCHA = "hcaptcha"
    response = _submit(Browser(site), "person@example.org", **{"h-captcha-response": "good"})
    assert response.status_code == 302
    assert _FakeVerify.seen[0]["sitekey"] == "site-key-1"


def test_the_json_api_has_the_captcha_and_no_honeypot(site: str, turnstile: str) -> None:
    api = requests.Session()
    url = f"{site}/api/auth/send"
    refused = api.post(url, json={"email": "api@example.org", "captcha": "bad"}, timeout=20)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "captcha_failed"
    missing = api.post(url, json={"email": "api@example.org"}, timeout=20)
    assert missing.status_code == 400
    # A "website" in the JSON body is no honeypot: the API has none.
    sent = api.post(
        url, json={"email": "api@example.org", "captcha": "good", "website": "x"}, timeout=20
    )
    assert sent.status_code == 202, sent.text
    assert _mailed() == ["api@example.org"]


# The whole stack: gunicorn, a Celery worker, and the SMTP sink.

BROKER_DB, CACHE_DB = 13, 12


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.redis
def test_bots_get_no_mail_at_the_smtp_sink(transactional_db: None, tmp_path: Path) -> None:
    used = [redis.Redis(port=services.REDIS_PORT, db=db) for db in (BROKER_DB, CACHE_DB)]
    for db in used:
        db.flushdb()
    port = free_port()
    with SMTPServer() as smtp:
        env = project_env(
            DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}",
            REDIS_URL=f"redis://127.0.0.1:{services.REDIS_PORT}/{CACHE_DB}",
            CELERY_BROKER_URL=f"redis://127.0.0.1:{services.REDIS_PORT}/{BROKER_DB}",
            EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}",
            SITE_URL=f"http://127.0.0.1:{port}",
            SECRET_KEY="bots-test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz-0123",
            DEBUG="True",
            VAR_DIR=str(tmp_path / "var"),
            FORM_MIN_SECONDS="2",
        )
        base = f"http://127.0.0.1:{port}"
        with celery_worker(env, tmp_path), gunicorn(env, tmp_path, port):
            honeypot = _submit(Browser(base), "victim1@example.org", website="x")
            fast = _submit(Browser(base), "victim2@example.org")
            person = Browser(base)
            fields = _page(person).fields
            time.sleep(2.1)
            token = fields.pop("csrfmiddlewaretoken")
            answer = person.post(
                "/auth/login/", {**fields, "email": "me@example.org"}, token=token
            )
            for response in (honeypot, fast, answer):
                assert response.status_code == 302
                assert response.headers["Location"] == "/auth/code/"
            smtp.wait_for(1)
            time.sleep(1)  # the worker took the bots' tasks first: nothing more comes
            assert [m["To"] for m in smtp.messages] == ["me@example.org"]
    delivered = dict(LoginRequest.objects.values_list("email", "delivery"))
    assert delivered == {
        "victim1@example.org": "suppressed",
        "victim2@example.org": "suppressed",
        "me@example.org": "sent",
    }
    for db in used:
        db.flushdb()
