"""Step-up ("sudo mode") attacked over HTTP, against gunicorn running the project.

A session whose last proof is older than ``REAUTHENTICATION_TIMEOUT`` cannot end other
sessions nor change data in the admin, whatever it sends; a step-up proves something
only to the session that asked for it; and a step-up's code never signs anyone in.
The tests age a session by moving its row's sign-in time back in the shared database:
the server's clock is its own.
"""

from __future__ import annotations

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
from passwordless.models import LoginRequest, UserSession
from tests import services
from tests.api_client import ApiClient
from tests.attacker import Browser
from tests.stack import SMTPServer, code_of, free_port, gunicorn, mail_text, production_env

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

EMAIL = "alice@example.org"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Version/18.0 Mobile Safari/604.1"
_STEP_UP_CODE = re.compile(r"^\s+(\d{6})\s*$", re.MULTILINE)


@dataclass
class App:
    url: str
    smtp: SMTPServer
    taken: set[int] = field(default_factory=set)

    def _take(self, wanted: Callable[[EmailMessage], bool], timeout: float = 30) -> EmailMessage:
        """The oldest message not taken yet that ``wanted`` accepts (other mail, such as
        new-device notices, arrives in between), waiting for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, message in enumerate(list(self.smtp.messages)):
                if i not in self.taken and wanted(message):
                    self.taken.add(i)
                    return message
            time.sleep(0.05)
        raise TimeoutError(f"no such mail in {[m['Subject'] for m in self.smtp.messages]}")

    def sign_in_code(self) -> str:
        return code_of(self._take(lambda m: "/auth/link/" in mail_text(m)))

    def step_up_code(self) -> str:
        message = self._take(lambda m: "confirm it's you" in str(m["Subject"]).lower())
        assert "/auth/link/" not in mail_text(message)  # a code only: nothing to click
        match = _STEP_UP_CODE.search(mail_text(message))
        assert match, mail_text(message)
        return match.group(1)

    def browser(self, **headers: str) -> Browser:
        """Sign a browser in by code."""
        browser = Browser(self.url, **headers)
        assert browser.start(EMAIL).status_code == 302
        assert browser.submit_code(self.sign_in_code()).headers["Location"] == "/"
        return browser

    def tokens(self) -> tuple[ApiClient, dict[str, str]]:
        """Sign an API client in by code (jwt mode): it and its bearer header."""
        api = ApiClient(self.url)
        request_id = api.send(EMAIL).json()["request_id"]
        signed_in = api.verify_code(request_id, self.sign_in_code()).json()
        return api, {"Authorization": f"Bearer {signed_in['access']}"}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    test_redis = f"redis://127.0.0.1:{services.REDIS_PORT}"
    dbs = (11, 12, 13)
    for db in dbs:
        redis.Redis(host="127.0.0.1", port=services.REDIS_PORT, db=db).flushdb()
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
        )
        try:
            with gunicorn(env, tmp_path, port):
                yield App(f"http://127.0.0.1:{port}", smtp)
        finally:
            for db in dbs:
                redis.Redis(host="127.0.0.1", port=services.REDIS_PORT, db=db).flushdb()


def _age(**lookup: Any) -> None:
    """Make a session's sign-in (its only proof) ten minutes old."""
    aged = UserSession.objects.filter(ended_at=None, **lookup).update(
        created_at=F("created_at") - timedelta(minutes=10)
    )
    assert aged == 1


def _live(device: str) -> bool:
    return UserSession.objects.filter(device=device, ended_at=None).exists()


def _stepped_up_to(location: str, next_url: str) -> bool:
    return location == f"/auth/reauthenticate/?next={next_url.replace('/', '%2F')}"


def test_ending_another_session_with_a_stale_proof_is_refused_and_nothing_ends(
    app: App,
) -> None:
    laptop = app.browser()
    phone = app.browser(**{"User-Agent": PHONE})
    phone_id = UserSession.objects.get(device="Safari on iPhone").public_id
    _age(pk=UserSession.objects.exclude(public_id=phone_id).get().pk)  # the laptop's
    token = laptop.csrf_token("/auth/sessions/")
    for form in ({"session": phone_id}, {"action": "others"}):
        refused = laptop.post("/auth/sessions/", form, token=token)
        assert refused.status_code == 302
        assert _stepped_up_to(refused.headers["Location"], "/auth/sessions/")
        assert phone.signed_in_as() == EMAIL
    assert _live("Safari on iPhone")

    # The same laptop, once it gives a fresh proof, can end it: the refusal was the gate.
    page = laptop.post("/auth/reauthenticate/", {"action": "send", "next": "/auth/sessions/"})
    assert page.status_code == 302
    confirmed = laptop.post(
        "/auth/reauthenticate/",
        {"action": "verify", "code": app.step_up_code(), "next": "/auth/sessions/"},
    )
    assert confirmed.headers["Location"] == "/auth/sessions/"
    assert phone.signed_in_as() == EMAIL  # nothing was replayed by the step-up
    ended = laptop.post("/auth/sessions/", {"session": phone_id})
    assert ended.headers["Location"] == "/auth/sessions/"
    assert phone.signed_in_as() is None


def test_a_proof_given_by_one_session_does_not_let_another_act(app: App) -> None:
    alice_api, alice = app.tokens()
    mallory_api, mallory = app.tokens()  # another session of the account, gone astray
    laptop = app.browser()
    for family_session in UserSession.objects.filter(kind="tokens"):
        _age(pk=family_session.pk)
    sent = alice_api.post("/api/auth/reauthenticate/send", None, alice)
    assert sent.status_code == 202, sent.text
    request_id, code = sent.json()["request_id"], app.step_up_code()

    # Mallory holds Alice's request id and code (read over her shoulder, say).
    stolen = mallory_api.post(
        "/api/auth/reauthenticate/verify", {"request_id": request_id, "code": code}, mallory
    )
    assert stolen.status_code == 404, stolen.text
    assert stolen.json()["error"]["code"] == "request_not_found"
    laptop_id = UserSession.objects.get(kind="browser").public_id
    refused = mallory_api.delete(f"/api/auth/sessions/{laptop_id}", mallory)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "reauthentication_required"
    assert laptop.signed_in_as() == EMAIL

    # The code was not used up by the attempt: it still proves Alice's own session.
    mine = alice_api.post(
        "/api/auth/reauthenticate/verify", {"request_id": request_id, "code": code}, alice
    )
    assert mine.status_code == 200, mine.text
    assert mallory_api.delete(f"/api/auth/sessions/{laptop_id}", mallory).status_code == 403
    assert alice_api.delete(f"/api/auth/sessions/{laptop_id}", alice).status_code == 204
    assert laptop.signed_in_as() is None


def test_a_step_up_code_cannot_sign_anyone_in(app: App) -> None:
    alice_api, alice = app.tokens()
    _age(kind="tokens")
    sent = alice_api.post("/api/auth/reauthenticate/send", None, alice)
    request_id, code = sent.json()["request_id"], app.step_up_code()

    # By the JSON API's sign-in, with the step-up request's id and code.
    thief = ApiClient(app.url)
    for mode in ("jwt", "session"):
        signed = thief.post(
            "/api/auth/verify/code", {"request_id": request_id, "code": code, "mode": mode}
        )
        assert signed.status_code in (403, 404), signed.text
        assert "access" not in signed.text
    resent = thief.post("/api/auth/resend", {"request_id": request_id})
    assert resent.status_code == 404  # nor is it a sign-in to ask again for
    # On the sign-in code page, after starting a sign-in of one's own for the address.
    browser = Browser(app.url)
    assert browser.start(EMAIL).status_code == 302
    page = browser.submit_code(code)
    assert page.status_code == 400 and "That code isn&#x27;t right" in page.text
    assert browser.signed_in_as() is None
    assert not LoginRequest.objects.filter(
        public_id=request_id, status=LoginRequest.Status.SIGNED_IN
    ).exists()
    # And it still proves Alice's session: the attempts consumed nothing.
    mine = alice_api.post(
        "/api/auth/reauthenticate/verify", {"request_id": request_id, "code": code}, alice
    )
    assert mine.status_code == 200, mine.text


def test_an_admin_change_with_a_stale_proof_changes_nothing(app: App) -> None:
    User.objects.create_superuser(EMAIL)
    bob = User.objects.create_user("bob@example.org")
    staff = app.browser()
    _age(kind="browser")
    path = f"/admin/accounts/user/{bob.pk}/delete/"
    token = staff.csrf_token(path)  # reading the admin needs no step-up
    refused = staff.post(path, {"post": "yes"}, token=token)
    assert refused.status_code == 302
    assert _stepped_up_to(refused.headers["Location"], path)
    action = staff.post(
        "/admin/accounts/user/",
        {"action": "delete_selected", "_selected_action": str(bob.pk), "post": "yes"},
        token=token,
    )
    assert action.headers["Location"].startswith("/auth/reauthenticate/")
    assert User.objects.filter(pk=bob.pk).exists()

    staff.post("/auth/reauthenticate/", {"action": "send", "next": path})
    staff.post(
        "/auth/reauthenticate/", {"action": "verify", "code": app.step_up_code(), "next": path}
    )
    done = staff.post(path, {"post": "yes"})
    assert done.headers["Location"] == "/admin/accounts/user/"
    assert not User.objects.filter(pk=bob.pk).exists()


def test_the_api_says_how_to_step_up(app: App) -> None:
    alice_api, alice = app.tokens()
    laptop = app.browser()
    _age(kind="tokens")
    laptop_id = UserSession.objects.get(kind="browser").public_id
    for refused in (
        alice_api.delete(f"/api/auth/sessions/{laptop_id}", alice),
        alice_api.delete("/api/auth/sessions", alice),
    ):
        assert refused.status_code == 403
        error = refused.json()["error"]
        assert error["code"] == "reauthentication_required"
        assert error["message"].startswith("Confirm it's you first")
        steps = error["reauthenticate"]
        assert steps["send"] == "/api/auth/reauthenticate/send"
        assert steps["verify"] == "/api/auth/reauthenticate/verify"
        assert set(steps) <= {"send", "verify", "passkey_begin"}
    assert laptop.signed_in_as() == EMAIL
    listed = alice_api.get("/api/auth/sessions", alice)
    assert listed.status_code == 200  # reading needs no step-up

    sent = alice_api.post(steps["send"], None, alice)
    assert sent.status_code == 202
    wrong = alice_api.post(
        steps["verify"], {"request_id": sent.json()["request_id"], "code": "12"}, alice
    )
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "code_malformed"
    proof = alice_api.post(
        steps["verify"],
        {"request_id": sent.json()["request_id"], "code": app.step_up_code()},
        alice,
    )
    assert proof.status_code == 200
    assert proof.json()["expires_in"] == 300
    ended = alice_api.delete("/api/auth/sessions", alice)
    assert ended.status_code == 200 and ended.json() == {"ended": 1}
    assert laptop.signed_in_as() is None
    assert alice_api.me(alice["Authorization"].split()[1]).status_code == 200


def test_step_up_endpoints_need_a_signed_in_caller(app: App) -> None:
    anonymous = ApiClient(app.url)
    assert anonymous.post("/api/auth/reauthenticate/send").status_code == 401
    verify = anonymous.post(
        "/api/auth/reauthenticate/verify", {"request_id": "x" * 22, "code": "123456"}
    )
    assert verify.status_code == 401
