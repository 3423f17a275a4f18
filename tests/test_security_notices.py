"""Security notices: a sign-in from a new device, a passkey added or removed, told by email
with the device, the network and a link to the sessions page; through the outbox and queue.

Over HTTP against the live server (tasks run in place), with a real Celery worker on a real
broker and a real SMTP server (the end-to-end tests), and in the request (``MAIL_QUEUE =
"sync"``). A notice never breaks what it tells about, and its task carries ids only."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import redis
import requests
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from kombu.exceptions import OperationalError

from passwordless import signals
from passwordless.models import Passkey, UserSession
from passwordless.services import mail as mail_service
from passwordless.services.notices import check_details
from passwordless.services.sessions import SESSION_TRACKING_KEY
from passwordless.services.signin import track
from passwordless.services.tokens import issue_family
from passwordless.tasks import send_email_changed_email, send_new_sign_in_email
from tests import services
from tests.api_client import ApiClient
from tests.attacker import Browser
from tests.conftest import Delivered, RateLimitClock, read_sign_in_mail
from tests.stack import SMTPServer, celery_worker, code_of, free_port, gunicorn, project_env

ALICE = "alice@example.org"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Version/18.0 Mobile Safari/604.1"
LAPTOP = "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"
SITE = "https://login.example.com"

Mailbox = Callable[..., Delivered]


def notices(subject: str = "New sign-in", to: str = ALICE) -> list[Any]:
    return [m for m in mail.outbox if m.to == [to] and m.subject.startswith(subject)]


def parsed(message: Any) -> EmailMessage:
    """A sent message as a mail client reads it: bytes through Python's email parser."""
    raw = message.message().as_bytes()
    read = message_from_bytes(raw, policy=policy.default)
    assert isinstance(read, EmailMessage)
    return read


def parts(message: EmailMessage) -> tuple[str, str]:
    """The text and HTML parts of a notice, which must have both."""
    assert message.get_content_type() == "multipart/alternative"
    kinds = [part.get_content_type() for part in message.iter_parts()]
    assert kinds == ["text/plain", "text/html"]
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


# Over HTTP, against the live server; the tasks run in place (the memory broker, eager).


@pytest.fixture
def sign_in(site: str, mailbox: Mailbox, rate_clock: RateLimitClock) -> Callable[..., Browser]:
    def browser(into: Browser | None = None, **headers: str) -> Browser:
        rate_clock.advance(61)
        b = into or Browser(site, **headers)
        b.start(ALICE)
        assert b.submit_code(mailbox(ALICE).code).headers["Location"] == "/"
        return b

    return browser


def sign_out(browser: Browser) -> None:
    browser.post("/auth/logout/", token=browser.csrf_token("/auth/sessions/"))
    assert browser.signed_in_as() is None


@pytest.mark.django_db(transaction=True)
def test_a_new_browser_is_told_and_the_same_one_again_is_not(
    site: str, sign_in: Callable[..., Browser]
) -> None:
    laptop = sign_in(**{"User-Agent": LAPTOP})
    assert notices() == []  # the sign-up: no "before" to tell a new device from
    assert laptop.cookie("passwordless_device")
    sign_out(laptop)
    sign_in(laptop)
    assert notices() == []  # the same browser, its trusted-device cookie for the address

    sign_in(**{"User-Agent": PHONE})
    (notice,) = notices()
    assert notice.subject == "New sign-in to your account"
    text, html = parts(parsed(notice))
    assert "Safari on iPhone (network 127.0.0.0/24)" in text
    assert "had not signed in to your account before" in text
    assert f"{site}/auth/sessions/" in text and f'href="{site}/auth/sessions/"' in html
    assert "If it was not you" in text and "signed out" not in text
    assert "<strong>Safari on iPhone</strong>" in html


@pytest.mark.django_db(transaction=True)
def test_beyond_the_cap_a_new_device_gets_one_email_that_says_both(
    site: str, sign_in: Callable[..., Browser], settings: Any
) -> None:
    settings.PASSWORDLESS_MAX_SESSIONS = 1
    laptop = sign_in()
    sign_in(**{"User-Agent": PHONE})
    assert laptop.signed_in_as() is None
    (notice,) = notices()
    assert "had not signed in to your account before" in notice.body
    assert "the one you used least recently was signed out" in notice.body


@pytest.mark.django_db(transaction=True)
def test_the_setting_silences_new_devices_but_not_the_cap(
    site: str, sign_in: Callable[..., Browser], settings: Any
) -> None:
    settings.PASSWORDLESS_NOTIFY_NEW_SIGN_IN = False
    sign_in()
    sign_in(**{"User-Agent": PHONE})
    assert notices() == []
    settings.PASSWORDLESS_MAX_SESSIONS = 2
    laptop = sign_in(**{"User-Agent": LAPTOP})
    (notice,) = notices()
    assert "signed out" in notice.body and "had not signed in" not in notice.body
    assert "Firefox on Linux" in notice.body
    # A known device beyond the cap is told too, as a known one.
    mail.outbox.clear()
    sign_in(laptop)
    (notice,) = notices()
    assert "signed out" in notice.body and "had not signed in" not in notice.body


@pytest.mark.django_db(transaction=True)
def test_api_clients_are_new_devices_but_not_on_sign_up(
    site: str, mailbox: Mailbox, rate_clock: RateLimitClock
) -> None:
    api = ApiClient(site)
    for expected in (0, 1):
        rate_clock.advance(61)
        request_id = api.send(ALICE).json()["request_id"]
        assert api.verify_code(request_id, mailbox(ALICE).code).status_code == 200
        assert len(notices()) == expected
    assert "network 127.0.0.0/24" in notices()[0].body


# In the process: statements, the broker refusing, the message, the passkey signals.


def client_sign_in(client: Client, capture: Any) -> Any:
    with capture(execute=True):
        assert client.post("/auth/login/", {"email": ALICE}).status_code == 302
    code = read_sign_in_mail(mail.outbox[-1]).code
    with capture(execute=True):
        return client.post("/auth/code/", {"code": code})


def statements_of_sign_in(client: Client, capture: Any, queued: list[Any]) -> list[str]:
    """The statements of a code's POST; a notice is queued, not sent (the worker's work)."""
    with capture(execute=True):
        assert client.post("/auth/login/", {"email": ALICE}).status_code == 302
    code = read_sign_in_mail(mail.outbox[-1]).code
    with (
        mock.patch.object(
            mail_service, "_send_task", side_effect=lambda *a, **k: queued.append(a)
        ),
        CaptureQueriesContext(connection) as queries,
        capture(execute=True),
    ):
        assert client.post("/auth/code/", {"code": code}).status_code == 302
    return [q["sql"] for q in queries.captured_queries]


@pytest.mark.django_db
def test_no_statement_is_added_to_a_sign_in_whose_notice_is_not_due(
    django_capture_on_commit_callbacks: Any, rate_clock: RateLimitClock, settings: Any
) -> None:
    counts = {}
    queued: list[Any] = []
    for notify in (False, True):
        settings.PASSWORDLESS_NOTIFY_NEW_SIGN_IN = notify
        get_user_model()._default_manager.all().delete()
        rate_clock.advance(3600)
        laptop = Client(HTTP_USER_AGENT=LAPTOP)
        sign_up = statements_of_sign_in(laptop, django_capture_on_commit_callbacks, queued)
        laptop.post("/auth/logout/")
        rate_clock.advance(61)
        known = statements_of_sign_in(laptop, django_capture_on_commit_callbacks, queued)
        rate_clock.advance(61)
        new = statements_of_sign_in(Client(), django_capture_on_commit_callbacks, queued)
        counts[notify] = (len(sign_up), len(known), len(new))
        has_exists = ["EXISTS" in " ".join(sql).upper() for sql in (sign_up, known, new)]
        # The "any session before?" read rides in the statement that locks the user, and
        # only for a device the cookie does not vouch for.
        assert has_exists == [notify, False, notify]
    assert counts[True] == counts[False]
    # One notice queued: the new device's, with notices on.
    assert [name for name, *_ in queued] == ["passwordless.send_security_notice"]


@pytest.mark.django_db
def test_a_broker_that_refuses_the_notice_does_not_break_the_sign_in(
    django_capture_on_commit_callbacks: Any,
    rate_clock: RateLimitClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client_sign_in(Client(), django_capture_on_commit_callbacks)
    rate_clock.advance(61)
    phone = Client(HTTP_USER_AGENT=PHONE)
    with django_capture_on_commit_callbacks(execute=True):
        assert phone.post("/auth/login/", {"email": ALICE}).status_code == 302
    code = read_sign_in_mail(mail.outbox[-1]).code
    refused = OperationalError("[Errno 111] Connection refused")
    with (
        mock.patch("celery.app.task.Task.apply_async", side_effect=refused) as publish,
        django_capture_on_commit_callbacks(execute=True),
        caplog.at_level(logging.WARNING, logger="passwordless"),
    ):
        response = phone.post("/auth/code/", {"code": code})
    assert publish.called
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert "Signed in as" in phone.get("/").content.decode()
    assert "could not queue the new_sign_in notice" in caplog.text
    assert notices() == []


@pytest.fixture
def alice() -> Any:
    return get_user_model()._default_manager.create_user(email=ALICE, password=None)


def session_of(user: Any, **fields: Any) -> UserSession:
    values = {"kind": UserSession.Kind.BROWSER, "device": "Chrome on Android"}
    values.update(network="198.51.100.0/24", **fields)
    return UserSession.objects.create(user=user, **values)


def passkey_of(user: Any, name: str = "Work laptop") -> Passkey:
    return Passkey.objects.create(
        user=user, name=name, credential_id="cred-" + name.replace(" ", "-"), public_key=b"k"
    )


def browser_request(session: UserSession) -> Any:
    # Host is the attacker's to choose: links come from SITE_URL, never from it.
    request = RequestFactory().post("/auth/passkeys/", HTTP_HOST="evil.example")
    request.session = {SESSION_TRACKING_KEY: session.public_id}  # type: ignore[assignment]
    return request


@pytest.mark.django_db
@pytest.mark.parametrize("queue", ["celery", "sync"])
def test_a_passkey_added_then_removed_is_told_each_time(
    alice: Any, settings: Any, django_capture_on_commit_callbacks: Any, queue: str
) -> None:
    settings.PASSWORDLESS_MAIL_QUEUE = queue
    settings.PASSWORDLESS_SITE_URL = SITE
    session = session_of(alice)
    passkey = passkey_of(alice, name="Work <laptop>")
    with django_capture_on_commit_callbacks(execute=True):
        signals.passkey_added.send(Passkey, passkey=passkey, request=browser_request(session))
    (added,) = notices("A passkey was added")
    text, html = parts(parsed(added))
    assert 'A passkey named "Work <laptop>" was added to your account a***@example.org' in text
    assert "<strong>Work &lt;laptop&gt;</strong>" in html and "<laptop>" not in html
    assert "It was added from Chrome on Android (network 198.51.100.0/24)." in text
    assert f"{SITE}/auth/sessions/" in text and f'href="{SITE}/auth/sessions/"' in html
    assert "evil.example" not in text + html
    assert "remove the passkey" in text

    name = passkey.name
    passkey.delete()
    with django_capture_on_commit_callbacks(execute=True):
        signals.passkey_removed.send(
            Passkey, user=alice, name=name, request=browser_request(session)
        )
    (removed,) = notices("A passkey was removed")
    text, html = parts(parsed(removed))
    assert 'The passkey named "Work <laptop>" was removed from your account' in text
    assert "It was removed from Chrome on Android (network 198.51.100.0/24)." in text
    assert f'href="{SITE}/auth/sessions/"' in html


@pytest.mark.django_db
def test_a_passkey_removed_by_an_api_client_names_its_token_session(
    alice: Any, django_capture_on_commit_callbacks: Any
) -> None:
    session_of(alice)  # the browser's: not the one it was done from
    _, family = issue_family(alice)
    request = RequestFactory().delete("/api/auth/passkeys/1", HTTP_USER_AGENT="curl/8.5")
    api_session = track(request, alice, "code", family=family)
    request.auth_claims = {"fam": family.public_id}  # type: ignore[attr-defined]
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        signals.passkey_removed.send(Passkey, user=alice, name="Phone", request=request)
    (removed,) = notices("A passkey was removed")
    told = f"It was removed from {api_session.device} (network {api_session.network})."
    assert api_session.network and told in removed.body
    assert "Chrome on Android" not in removed.body


@pytest.mark.django_db
def test_the_notice_task_carries_ids_and_plain_details_only(
    alice: Any, django_capture_on_commit_callbacks: Any
) -> None:
    session = session_of(alice)
    passkey = passkey_of(alice)
    sent: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
    with (
        mock.patch.object(
            mail_service, "_send_task", side_effect=lambda *a, **kw: sent.append((*a, kw))
        ),
        django_capture_on_commit_callbacks(execute=True),
    ):
        signals.passkey_added.send(Passkey, passkey=passkey, request=browser_request(session))
        mail_service.queue_email_changed_email(alice, "old@example.org")
    (name, args, options), (_, _, changed) = sent
    assert name == "passwordless.send_security_notice" and args == ()
    message = options["kwargs"]
    assert set(message) == {
        "kind",
        "user_id",
        "user_session_id",
        "details",
        "occurred_at",
        "locale",  # issue 18: the language of the request that acted, not a secret
    }
    assert message["details"] == {"passkey_id": passkey.pk}
    assert (message["user_id"], message["user_session_id"]) == (alice.pk, session.pk)
    assert ALICE not in json.dumps(message) and passkey.name not in json.dumps(message)
    # The one address a notice carries is the old one of an address change, and monitoring
    # shows it masked.
    assert changed["kwargs"]["to"] == "old@example.org"
    assert "old@example.org" not in changed["kwargsrepr"] and "o***@" in changed["kwargsrepr"]


def test_details_are_short_plain_values() -> None:
    assert check_details("passkey_removed", {"name": "Phone"}) == {"name": "Phone"}
    for details in ({"name": "x" * 201}, {"nested": {"a": 1}}, {"not an id": 1}):
        with pytest.raises(ValueError):
            check_details("passkey_removed", details)
    with pytest.raises(ValueError):
        check_details("login", {})  # not a notice: the sign-in email's templates


@pytest.mark.django_db
def test_messages_of_the_former_tasks_still_send(alice: Any, settings: Any) -> None:
    settings.PASSWORDLESS_SITE_URL = SITE
    session = session_of(alice)
    send_new_sign_in_email.run(session.pk)
    send_email_changed_email.run(alice.pk, "old@example.org")
    (sign_in,) = notices()
    assert "Chrome on Android" in sign_in.body and "signed out" in sign_in.body
    (changed,) = [m for m in mail.outbox if m.to == ["old@example.org"]]
    assert "was changed to a***@example.org" in changed.body
    send_new_sign_in_email.run(session.pk + 1000)  # a row gone since: nothing, no error
    assert len(mail.outbox) == 2


# With MAIL_QUEUE = "sync": sent in the request, after commit, to a real SMTP server.


@pytest.mark.django_db(transaction=True)
def test_sync_mode_sends_the_notice_to_the_smtp_server(
    site: str, sign_in: Callable[..., Browser], settings: Any, rate_clock: RateLimitClock
) -> None:
    settings.PASSWORDLESS_MAIL_QUEUE = "sync"
    sign_in()
    rate_clock.advance(61)
    with SMTPServer() as smtp:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
        phone = Browser(site, **{"User-Agent": PHONE})
        phone.start(ALICE)
        phone.submit_code(code_of(smtp.wait_for(1)))
        notice = smtp.wait_for(2, timeout=20)
    assert phone.signed_in_as() == ALICE
    assert notice["To"] == ALICE and notice["Subject"] == "New sign-in to your account"
    text, html = parts(notice)
    assert "Safari on iPhone (network 127.0.0.0/24)" in text
    assert f'href="{site}/auth/sessions/"' in html


# The whole stack: gunicorn, PostgreSQL, a Celery worker on a Redis broker, an SMTP server.

BROKER_DB, CACHE_DB = 12, 13  # sessions in 14, rate limits in 15


@dataclass
class Stack:
    base_url: str
    smtp: SMTPServer
    env: dict[str, str]
    log_dir: Path


@pytest.fixture
def stack(transactional_db: None, tmp_path: Path) -> Iterator[Stack]:
    used = [redis.Redis(port=services.REDIS_PORT, db=db) for db in range(BROKER_DB, 16)]
    for db in used:
        db.flushdb()
    port = free_port()
    url = f"redis://127.0.0.1:{services.REDIS_PORT}"
    with SMTPServer() as smtp:
        env = project_env(
            DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}",
            REDIS_URL=f"{url}/{CACHE_DB}",
            SESSION_REDIS_URL=f"{url}/{CACHE_DB + 1}",
            RATELIMIT_REDIS_URL=f"{url}/{CACHE_DB + 2}",
            CELERY_BROKER_URL=f"{url}/{BROKER_DB}",
            EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}",
            SITE_URL=f"http://127.0.0.1:{port}",
            SECRET_KEY="notices-test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz-0123",
            DEBUG="True",
            VAR_DIR=str(tmp_path / "var"),
            # Three sign-ins of one address in a minute, by design of the test.
            SEND_RATES_PER_EMAIL="10/m",
        )
        with gunicorn(env, tmp_path, port):
            yield Stack(f"http://127.0.0.1:{port}", smtp, env, tmp_path)
    for db in used:
        db.flushdb()


def form(browser: requests.Session, url: str, data: dict[str, str]) -> requests.Response:
    page = browser.get(url, timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, page.text
    origin = url.split("/auth/")[0]
    data = {"csrfmiddlewaretoken": token.group(1), **data}
    return browser.post(url, data=data, headers={"Origin": origin}, timeout=10)


def start(stack: Stack, browser: requests.Session) -> None:
    assert form(browser, f"{stack.base_url}/auth/login/", {"email": ALICE}).status_code == 200


def finish(stack: Stack, browser: requests.Session, code: str) -> None:
    response = form(browser, f"{stack.base_url}/auth/code/", {"code": code})
    assert f"Signed in as <strong>{ALICE}</strong>" in response.text


def leave(stack: Stack, browser: requests.Session) -> None:
    page = browser.get(f"{stack.base_url}/auth/sessions/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, page.text
    browser.post(
        f"{stack.base_url}/auth/logout/",
        data={"csrfmiddlewaretoken": token.group(1)},
        headers={"Origin": stack.base_url},
        timeout=10,
    )
    assert "Signed in as" not in browser.get(stack.base_url, timeout=10).text


def broker_messages() -> list[dict[str, Any]]:
    """The tasks waiting on the broker, as a worker would read them."""
    raw = redis.Redis(port=services.REDIS_PORT, db=BROKER_DB).lrange("celery", 0, -1)
    return [json.loads(message) for message in raw]


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.redis
def test_through_the_worker_a_second_browser_is_told_and_the_first_again_is_not(
    stack: Stack,
) -> None:
    laptop = requests.Session()
    laptop.headers["User-Agent"] = LAPTOP
    phone = requests.Session()
    phone.headers["User-Agent"] = PHONE
    with celery_worker(stack.env, stack.log_dir):
        start(stack, laptop)
        finish(stack, laptop, code_of(stack.smtp.wait_for(1)))  # the sign-up
        leave(stack, laptop)  # signed out; the device cookie stays
        start(stack, laptop)
        finish(stack, laptop, code_of(stack.smtp.wait_for(2)))  # the same browser
        start(stack, phone)
        phone_code = code_of(stack.smtp.wait_for(3))
    assert broker_messages() == []

    finish(stack, phone, phone_code)  # no worker runs: the notice waits on the broker
    (envelope,) = broker_messages()
    assert envelope["headers"]["task"] == "passwordless.send_security_notice"
    args, kwargs, _ = json.loads(base64.b64decode(envelope["body"]))
    row = UserSession.objects.get(device="Safari on iPhone")
    assert args == [] and kwargs["kind"] == "new_sign_in"
    assert (kwargs["user_id"], kwargs["user_session_id"]) == (row.user_id, row.pk)
    assert kwargs["details"] == {"ended_sessions": 0, "new_device": True}
    raw = json.dumps(envelope)
    secrets = [ALICE, "alice", phone_code, phone.cookies["sessionid"], row.public_id]
    secrets += [laptop.cookies["passwordless_device"].split(".")[0]]
    assert [s for s in secrets if s in raw] == []

    with celery_worker(stack.env, stack.log_dir, name="notices-worker"):
        notice = stack.smtp.wait_for(4)
    assert len(stack.smtp.messages) == 4  # three sign-in emails, one notice
    assert notice["To"] == ALICE and notice["Subject"] == "New sign-in to your account"
    text, html = parts(notice)
    assert "Safari on iPhone (network 127.0.0.0/24)" in text
    assert f"{stack.base_url}/auth/sessions/" in text
    assert f'href="{stack.base_url}/auth/sessions/"' in html
