"""Changing the email address, attacked over HTTP against gunicorn running the project.

Whoever holds a signed-in session, or reads the old mailbox, must not move the account
to an address of theirs: the change needs a fresh step-up, and a code that only the new
mailbox gets, typed in the very session that asked. The old address's undo link works
once, for seven days, and only by an explicit POST. Its token never crosses the broker.
The tests age a session or a change by moving its times back in the shared database.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import redis
from django.db.models import F

from accounts.models import User
from passwordless.models import EmailChange, LoginRequest, UserSession
from tests import services
from tests.api_client import ApiClient
from tests.attacker import Browser
from tests.dumps import database_dump
from tests.stack import (
    SMTPServer,
    celery_worker,
    code_and_link,
    code_of,
    free_port,
    gunicorn,
    mail_text,
    production_env,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

OLD, NEW = "alice@example.org", "alice.new@example.org"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Version/18.0 Mobile Safari/604.1"
UNDO = re.compile(r"(https?://[^/\s]+/auth/email/undo/([A-Za-z0-9_-]+)/)")
CHANGE_SUBJECT = "your new email address"  # after the code (issue 18: CODE_IN_SUBJECT)
NOTICE_SUBJECT = "The email address of your account was changed"
BROKER_DB = 14


@dataclass
class App:
    url: str
    smtp: SMTPServer
    taken: set[int] = field(default_factory=set)

    def take(self, wanted: Callable[[EmailMessage], bool], timeout: float = 30) -> EmailMessage:
        """The oldest message not taken yet that ``wanted`` accepts, waiting for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, message in enumerate(list(self.smtp.messages)):
                if i not in self.taken and wanted(message):
                    self.taken.add(i)
                    return message
            time.sleep(0.05)
        raise TimeoutError(f"no such mail in {[m['Subject'] for m in self.smtp.messages]}")

    def mail(self, to: str, subject: str, timeout: float = 30) -> EmailMessage:
        return self.take(lambda m: m["To"] == to and subject in str(m["Subject"]), timeout)

    def sign_in_code(self, to: str = OLD) -> str:
        return code_of(self.take(lambda m: m["To"] == to and "/auth/link/" in mail_text(m)))

    def browser(self, email: str = OLD, **headers: str) -> Browser:
        browser = Browser(self.url, **headers)
        assert browser.start(email).status_code == 302
        assert browser.submit_code(self.sign_in_code(email)).headers["Location"] == "/"
        return browser

    def tokens(self, email: str = OLD) -> tuple[ApiClient, dict[str, str]]:
        api = ApiClient(self.url)
        request_id = api.send(email).json()["request_id"]
        signed_in = api.verify_code(request_id, self.sign_in_code(email)).json()
        return api, {"Authorization": f"Bearer {signed_in['access']}"}

    def undo_link(self, timeout: float = 30) -> tuple[str, str]:
        """The undo link of the old address's notice, and its token."""
        match = UNDO.search(mail_text(self.mail(OLD, NOTICE_SUBJECT, timeout)))
        assert match
        return match.group(1), match.group(2)


def _redis(db: int) -> Any:
    return redis.Redis(host="127.0.0.1", port=services.REDIS_PORT, db=db)


def _stack(tmp_path: Path, **extra: str) -> Iterator[tuple[App, dict[str, str]]]:
    dbs = (11, 12, 13, BROKER_DB)
    for db in dbs:
        _redis(db).flushdb()
    test_redis = f"redis://127.0.0.1:{services.REDIS_PORT}"
    port = free_port()
    with SMTPServer() as smtp:
        env = production_env(
            port,
            tmp_path / "var",
            SESSION_REDIS_URL=f"{test_redis}/12",
            RATELIMIT_REDIS_URL=f"{test_redis}/13",
            EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}",
            SEND_RATES_PER_EMAIL="100/m",
            SEND_RATES_PER_IP="100/m",
            **extra,
        )
        try:
            with gunicorn(env, tmp_path, port):
                yield App(f"http://127.0.0.1:{port}", smtp), env
        finally:
            for db in dbs:
                _redis(db).flushdb()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    """Gunicorn with mail sent in the request's process (an eager queue)."""
    for made, _ in _stack(tmp_path):
        yield made


def _age_sessions(**lookup: Any) -> None:
    """Make sessions' sign-ins (their only proof) ten minutes old: a stale step-up."""
    aged = UserSession.objects.filter(ended_at=None, **lookup).update(
        created_at=F("created_at") - timedelta(minutes=10)
    )
    assert aged


def _ask(browser: Browser, email: str = NEW) -> Any:
    return browser.post("/auth/email/", {"email": email})


def _confirm(browser: Browser, code: str) -> Any:
    return browser.post("/auth/email/code/", {"code": code})


def _address() -> str:
    return str(User.objects.get(email__in=(OLD, NEW)).email)


def test_the_old_addresss_codes_never_confirm_the_change(app: App) -> None:
    User.objects.create_user(OLD)
    laptop = app.browser()
    assert _ask(laptop).headers["Location"] == "/auth/email/code/"
    app.mail(NEW, CHANGE_SUBJECT)

    # A sign-in code mailed to the old address (its reader asks for one, from anywhere).
    reader = Browser(app.url)
    reader.start(OLD)
    refused = _confirm(laptop, app.sign_in_code())
    assert refused.status_code == 400 and "isn&#x27;t right" in refused.text
    # A step-up code mailed to the old address, asked by this very session.
    asked = laptop.post("/auth/reauthenticate/", {"action": "send", "next": "/auth/email/"})
    assert asked.status_code == 302
    step_up = app.mail(OLD, "confirm it")
    code = re.search(r"^\s+(\d{6})\s*$", mail_text(step_up), re.MULTILINE)
    assert code
    refused = _confirm(laptop, code.group(1))
    assert refused.status_code == 400
    # And by the API, with the change's own request id.
    request_id = EmailChange.objects.get().confirmation.public_id
    api = ApiClient(app.url)
    verified = api.post(
        "/api/auth/email/change/verify", {"request_id": request_id, "code": code.group(1)}
    )
    assert verified.status_code == 401
    assert _address() == OLD
    assert LoginRequest.objects.get(purpose="change_email").status == "pending"


def test_a_code_typed_in_another_session_is_not_found(app: App) -> None:
    User.objects.create_user(OLD)
    alice_api, alice = app.tokens()
    mallory_api, mallory = app.tokens()  # another session of the account, gone astray
    asked = alice_api.post("/api/auth/email/change", {"email": NEW}, alice)
    assert asked.status_code == 202, asked.text
    request_id = asked.json()["request_id"]
    code = code_of(app.mail(NEW, CHANGE_SUBJECT))

    # Mallory has the id and the code (read over Alice's shoulder): not hers to use.
    stolen = mallory_api.post(
        "/api/auth/email/change/verify", {"request_id": request_id, "code": code}, mallory
    )
    assert stolen.status_code == 404 and stolen.json()["error"]["code"] == "request_not_found"
    browser = app.browser()
    page = _confirm(browser, code)
    assert page.status_code == 302 and page.headers["Location"] == "/auth/email/"  # none here
    assert _address() == OLD

    done = alice_api.post(
        "/api/auth/email/change/verify", {"request_id": request_id, "code": code}, alice
    )
    assert done.status_code == 200, done.text
    assert done.json()["email"] == NEW and _address() == NEW
    # The other sessions ended; the one that made the change did not.
    assert mallory_api.get("/api/auth/me", mallory).status_code == 401
    assert browser.signed_in_as() is None
    assert alice_api.get("/api/auth/me", alice).json()["user"]["email"] == NEW


def test_a_stale_step_up_cannot_start_a_change(app: App) -> None:
    User.objects.create_user(OLD)
    laptop = app.browser()
    api, bearer = app.tokens()
    _age_sessions()
    page = laptop.get("/auth/email/")
    assert page.status_code == 302
    assert page.headers["Location"] == "/auth/reauthenticate/?next=%2Fauth%2Femail%2F"
    token = laptop.csrf_token("/auth/sessions/")
    refused = laptop.post("/auth/email/", {"email": NEW}, token=token)
    assert refused.status_code == 302 and "/auth/reauthenticate/" in refused.headers["Location"]
    answer = api.post("/api/auth/email/change", {"email": NEW}, bearer)
    assert answer.status_code == 403
    error = answer.json()["error"]
    assert error["code"] == "reauthentication_required" and error["reauthenticate"]["send"]
    assert not EmailChange.objects.exists()
    assert not LoginRequest.objects.filter(purpose="change_email").exists()
    time.sleep(0.5)
    assert not [m for m in app.smtp.messages if m["To"] == NEW]


def test_another_accounts_address_gets_the_same_answer_no_mail_and_no_change(
    app: App,
) -> None:
    User.objects.create_user(OLD)
    User.objects.create_user("bob@example.org")
    laptop = app.browser()
    answers = []
    for address in ("carol@example.org", "bob@example.org"):
        asked = _ask(laptop, address)
        page = laptop.get("/auth/email/code/")
        answers.append((asked.status_code, asked.headers["Location"], page.status_code))
        masked = address[0] + "***@example.org"
        assert f"We sent a 6-digit code to <strong>{masked}</strong>" in page.text
    assert answers[0] == answers[1]
    api, bearer = app.tokens()
    shapes = [
        api.post("/api/auth/email/change", {"email": address}, bearer)
        for address in ("dave@example.org", "bob@example.org")
    ]
    assert [s.status_code for s in shapes] == [202, 202]
    assert sorted(shapes[0].json()) == sorted(shapes[1].json())
    app.mail("carol@example.org", CHANGE_SUBJECT)
    app.mail("dave@example.org", CHANGE_SUBJECT)
    time.sleep(0.5)
    assert not [m for m in app.smtp.messages if m["To"] == "bob@example.org"]
    assert set(
        LoginRequest.objects.filter(email="bob@example.org").values_list("delivery", flat=True)
    ) == {"suppressed"}
    assert _address() == OLD


def test_other_sessions_end_and_this_one_stays(app: App) -> None:
    User.objects.create_user(OLD)
    laptop = app.browser()
    phone = app.browser(**{"User-Agent": PHONE})
    api, bearer = app.tokens()
    _ask(laptop)
    done = _confirm(laptop, code_of(app.mail(NEW, CHANGE_SUBJECT)))
    assert done.status_code == 302 and done.headers["Location"] == "/auth/email/"
    assert laptop.signed_in_as() == NEW
    assert phone.signed_in_as() is None
    assert api.get("/api/auth/me", bearer).status_code == 401
    notice = mail_text(app.mail(OLD, NOTICE_SUBJECT))
    assert "changed to a***@example.org" in notice and NEW not in notice
    assert "Every other device" in notice and "Safari on iPhone" not in notice  # the laptop's
    # The new address signs in to the account.
    assert app.browser(NEW).signed_in_as() == NEW


def test_the_link_confirms_only_in_the_session_that_asked(app: App) -> None:
    User.objects.create_user(OLD)
    laptop = app.browser()
    _ask(laptop)
    _, link = code_and_link(app.mail(NEW, CHANGE_SUBJECT))
    # Another browser (the new mailbox's reader, a scanner) opens it and presses on.
    other = Browser(app.url)
    opened = other.get(link)
    assert opened.status_code == 302 and opened.headers["Location"] == "/auth/email/link/"
    page = other.get("/auth/email/link/")
    assert "Open this link in the browser where you asked for the change" in page.text
    refused = other.post("/auth/email/link/", {})
    assert refused.status_code == 403 and _address() == OLD
    # Signed in to the same account, but in another session: still not.
    phone = app.browser(**{"User-Agent": PHONE})
    phone.get(link)
    assert phone.post("/auth/email/link/", {}).status_code == 403 and _address() == OLD
    # The sign-in link pages never take it either.
    assert laptop.get(link).headers["Location"] == "/auth/email/link/"
    assert laptop.post("/auth/link/", {"action": "sign_in"}).status_code == 404
    laptop.get(link)
    done = laptop.post("/auth/email/link/", {})
    assert done.status_code == 302 and _address() == NEW


def test_undo_by_get_changes_nothing_works_once_and_not_after_seven_days(app: App) -> None:
    User.objects.create_user(OLD)
    laptop = app.browser()
    _ask(laptop)
    _confirm(laptop, code_of(app.mail(NEW, CHANGE_SUBJECT)))
    link, token = app.undo_link()
    # Only a keyed hash of it is kept (under the server's key, not the tests').
    stored = EmailChange.objects.get().undo_token_hash
    assert len(stored) == 64 and token not in database_dump()

    # A mail scanner opens it, follows the redirect, and sends HEADs: nothing changes.
    scanner = Browser(app.url)
    for _ in range(3):
        opened = scanner.get(link, allow_redirects=True)
        assert opened.status_code == 200 and "Put back a***@example.org?" in opened.text
        scanner.head(link)
    assert _address() == NEW and laptop.signed_in_as() == NEW

    owner = Browser(app.url)
    owner.get(link)
    done = owner.post("/auth/email/undo/", {})
    assert done.status_code == 200 and "Your address is back" in done.text
    assert _address() == OLD
    assert laptop.signed_in_as() is None and owner.signed_in_as() is None
    again = Browser(app.url)
    assert again.get(link).status_code == 409
    scanner_post = scanner.post("/auth/email/undo/", {})
    assert scanner_post.status_code == 409 and _address() == OLD
    # The new address's reader cannot sign in any more.
    assert not LoginRequest.objects.filter(email=NEW, status="pending").exists()

    # A second change, and its undo link past seven days.
    laptop = app.browser()
    _ask(laptop)
    _confirm(laptop, code_of(app.mail(NEW, CHANGE_SUBJECT)))
    late_link, _ = app.undo_link()
    opened_in_time = Browser(app.url)
    assert opened_in_time.get(late_link).status_code == 302
    EmailChange.objects.filter(undone_at=None).update(
        undo_expires_at=F("undo_expires_at") - timedelta(days=7)
    )
    assert Browser(app.url).get(late_link).status_code == 410
    late = opened_in_time.post("/auth/email/undo/", {})
    assert late.status_code == 410 and _address() == NEW


@pytest.fixture
def brokered(tmp_path: Path) -> Iterator[tuple[App, dict[str, str], Path]]:
    """Gunicorn queueing mail on a Redis broker; the test runs the worker."""
    broker = f"redis://127.0.0.1:{services.REDIS_PORT}/{BROKER_DB}"
    for made, env in _stack(tmp_path, CELERY_BROKER_URL=broker):
        yield made, env, tmp_path


def _broker_text() -> str:
    client = _redis(BROKER_DB)
    text = b""
    for key in client.scan_iter():
        kind = client.type(key)
        if kind == b"list":
            text += b"".join(client.lrange(key, 0, -1))
        elif kind == b"string":
            text += client.get(key) or b""
        elif kind == b"hash":
            text += b"".join(k + v for k, v in client.hgetall(key).items())
        elif kind == b"zset":
            text += b"".join(client.zrange(key, 0, -1))
    return text.decode(errors="replace")


def _notice_messages() -> list[dict[str, Any]]:
    found = []
    for raw in _redis(BROKER_DB).lrange("celery", 0, -1):
        envelope = json.loads(raw)
        if envelope["headers"]["task"] == "passwordless.send_security_notice":
            _, kwargs, _ = json.loads(base64.b64decode(envelope["body"]))
            found.append(kwargs)
    return found


def test_the_undo_token_never_crosses_the_broker(
    brokered: tuple[App, dict[str, str], Path],
) -> None:
    app, env, log_dir = brokered
    User.objects.create_user(OLD)
    with celery_worker(env, log_dir, name="first-worker"):
        laptop = app.browser()
        assert _ask(laptop).status_code == 302
        code = code_of(app.mail(NEW, CHANGE_SUBJECT))
    # No worker now: the notice waits on the broker, as a message anyone there can read.
    assert _confirm(laptop, code).headers["Location"] == "/auth/email/"
    change = EmailChange.objects.get()
    assert change.confirmed_at is not None and change.undo_token_hash == ""
    notices = [m for m in _notice_messages() if m["kind"] == "email_changed"]
    assert len(notices) == 1
    assert notices[0]["details"] == {"email_change_id": change.pk}
    waiting = _broker_text()

    with celery_worker(env, log_dir, name="second-worker") as worker:
        link, token = app.undo_link(timeout=60)
        log = worker.log()
    change.refresh_from_db()
    assert len(change.undo_token_hash) == 64 and token not in database_dump()
    for place, text in (("waiting", waiting), ("after", _broker_text()), ("worker log", log)):
        assert token not in text, f"undo token found in the broker ({place})"
        assert change.undo_token_hash not in text, place
    assert "send_security_notice" in log  # the log is real, and read
    # And the minted link works.
    owner = Browser(app.url)
    owner.get(link)
    assert owner.post("/auth/email/undo/", {}).status_code == 200
    assert _address() == OLD
