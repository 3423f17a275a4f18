"""The audit trail: every event as a row and a structured log record, and no secret in any sink.

The whole flow runs over HTTP with every logger at DEBUG and Django's DEBUG on,
then the logs, the audit rows, every database table and every Redis key are
searched for the codes, link tokens, full links and session keys it produced.
"""

from __future__ import annotations

import logging
import re
import smtplib
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend

from passwordless.models import AuthEvent
from passwordless.services import invitations
from tests.api_client import ApiClient
from tests.attacker import Browser
from tests.conftest import CODE_RE, Delivered, RateLimitClock
from tests.dumps import database_dump, redis_dump
from tests.helpers import wrong_code
from tests.webauthn_authenticator import SoftAuthenticator

pytestmark = pytest.mark.django_db(transaction=True)

Mailbox = Callable[..., Delivered]


def _redis_dump(settings: Any) -> str:
    if not settings.HAS_REDIS:
        return ""
    return b"\n".join(redis_dump(db) for db in (8, 9, 10)).decode(errors="replace")


def test_every_event_is_audited_and_no_secret_reaches_any_sink(
    site: str,
    mailbox: Mailbox,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
    rate_clock: RateLimitClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.DEBUG = True
    caplog.set_level(logging.DEBUG)
    for name in ("django", "django.db.backends", "django.request", "passwordless", "celery"):
        caplog.set_level(logging.DEBUG, logger=name)

    send = EmailBackend.send_messages

    def bouncing(self: EmailBackend, messages: Sequence[Any]) -> int:
        if any("bounce@example.org" in m.to for m in messages):
            raise smtplib.SMTPRecipientsRefused({"bounce@example.org": (550, b"no mailbox")})
        return send(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", bouncing)

    alice = Browser(site)
    alice.start("alice@example.org")  # requested, sent
    first = mailbox("alice@example.org")
    for i in range(5):
        alice.submit_code(wrong_code(first.code, i))  # failed x4, then failed + locked
    assert alice.start("alice@example.org").status_code == 429  # rate limited
    rate_clock.advance(61)
    alice.start("alice@example.org")
    second = mailbox("alice@example.org")
    assert alice.submit_code(second.code).status_code == 302  # signed in (code)
    session_keys = [alice.cookie("sessionid")]

    bob = Browser(site)
    bob.start("bob@example.org")
    third = mailbox("bob@example.org")
    bob.open_link(third.link)
    assert bob.confirm_link().status_code == 302  # signed in (link)
    session_keys.append(bob.cookie("sessionid"))
    bob.post("/auth/logout/", token=bob.csrf_token("/"))  # signed out

    carol = Browser(site)
    carol.start("carol@example.org")
    phone = Browser(site, **{"User-Agent": "Mozilla/5.0 (Linux; Android 14) Chrome/130.0"})
    phone.open_link(mailbox("carol@example.org").link)
    number = carol.session.get(f"{site}/auth/code/").text.split('class="match-number"')[1]
    phone.approve(number.split(">")[1].split("<")[0])  # approved
    assert carol.get("/auth/code/").status_code == 302  # signed in (approval)
    fourth = mailbox("carol@example.org")

    Browser(site).start("bounce@example.org")  # delivery failed
    # A bot fills the honeypot: everyone's answer, no mail, the event.
    assert Browser(site).start("bot@example.org", website="http://spam.example").status_code == 302
    invitations.invite(["guest@example.org"])  # invited

    api = ApiClient(site)
    request_id = api.send("dave@example.org").json()["request_id"]
    fifth = mailbox("dave@example.org")
    pair = api.verify_code(request_id, fifth.code).json()
    # Dave adds a passkey (his sign-in is a fresh step-up), signs in with it, removes it.
    key = SoftAuthenticator(origin=site)
    bearer = {"Authorization": f"Bearer {pair['access']}"}
    begun = api.post("/api/auth/passkeys/register/begin", None, bearer).json()
    answer = {"challenge_id": begun["challenge_id"], "credential": key.register(begun["options"])}
    added = api.post("/api/auth/passkeys/register/finish", answer, bearer)
    assert added.status_code == 201, added.text  # passkey added
    begun = api.post("/api/auth/passkeys/auth/begin", {"mode": "jwt"}).json()
    answer = {"challenge_id": begun["challenge_id"], "credential": key.assert_(begun["options"])}
    by_passkey = api.post("/api/auth/passkeys/auth/finish", {**answer, "mode": "jwt"}).json()
    removed = api.delete(
        f"/api/auth/passkeys/{added.json()['passkey']['id']}",
        {"Authorization": f"Bearer {by_passkey['access']}"},  # signed in (passkey)
    )
    assert removed.status_code == 204, removed.text  # passkey removed
    rotated = api.post("/api/auth/token/refresh", {"refresh": pair["refresh"]}).json()
    api.post("/api/auth/token/refresh", {"refresh": rotated["refresh"]})
    replay = api.post("/api/auth/token/refresh", {"refresh": pair["refresh"]})
    assert replay.status_code == 401  # refresh reused

    kinds = set(AuthEvent.objects.values_list("kind", flat=True))
    assert kinds == {k.value for k in AuthEvent.Kind}
    event = AuthEvent.objects.filter(kind="locked").get()
    alice_first = AuthEvent.objects.filter(
        kind="requested", login_request__email="alice@example.org"
    ).earliest("pk")
    assert (event.masked_email, event.ip, event.login_request_id) == (
        "a***@example.org",
        "127.0.0.1",
        alice_first.login_request_id,  # the request that took the five wrong codes
    )
    assert event.login_request is not None
    assert event.login_request.status == "locked"
    assert AuthEvent.objects.filter(kind="signed_in", method="link").count() == 1
    assert AuthEvent.objects.filter(kind="signed_in", method="passkey").count() == 1
    reasons = set(AuthEvent.objects.filter(kind="failed").values_list("reason", flat=True))
    assert reasons == {"code_invalid", "request_locked"}
    audit_records = [r for r in caplog.records if r.name == "passwordless.audit"]
    assert {r.audit["event"] for r in audit_records} == kinds  # type: ignore[attr-defined]

    approval = AuthEvent.objects.get(kind="approved")
    assert approval.details["approver"]["user_agent"].startswith("Mozilla/5.0 (Linux; Android")
    assert approval.details["requester"]["ip"] == "127.0.0.0/24"
    delivered = (first, second, third, fourth, fifth)
    secrets = [pair["refresh"], pair["access"], rotated["refresh"], rotated["access"]]
    secrets += [by_passkey["refresh"], by_passkey["access"]]
    secrets += [d.code for d in delivered]
    secrets += [d.link for d in delivered]
    secrets += [d.link.rstrip("/").rsplit("/", 1)[1] for d in delivered]
    invitation = next(m for m in mail.outbox if m.to == ["guest@example.org"])
    invite_token = re.search(r"/invite/([A-Za-z0-9_-]+)/", str(invitation.body))
    assert invite_token is not None
    secrets.append(invite_token.group(1))
    keys = [key for key in session_keys if key]
    # The attacker's own HTTP client (urllib3) logs the URLs it fetches: not the app's sink.
    server_logs = "\n".join(
        caplog.handler.format(r) for r in caplog.records if not r.name.startswith("urllib3")
    )
    sinks = {
        "logs": server_logs,
        "audit rows": repr(list(AuthEvent.objects.values())),
        "database": database_dump(),
        "redis": _redis_dump(settings),
    }
    assert "django.db.backends" in server_logs  # DEBUG logging was really on, and is read
    for sink, text in sinks.items():
        # Redis is the session store: it alone may hold session keys.
        for secret in secrets + (keys if sink != "redis" else []):
            pattern = (
                rf"(?<!\d){re.escape(secret)}(?!\d)" if secret.isdigit() else re.escape(secret)
            )
            assert not re.search(pattern, text), f"a secret reached the {sink}"
    # The five sign-in emails, and Dave's security notices: a passkey added, a new
    # sign-in (by it), the passkey removed.
    notices = [m for m in mail.outbox if not CODE_RE.search(str(m.body)) and m is not invitation]
    assert len(mail.outbox) - len(notices) == 5 + 1  # and the invitation
    assert [m.to for m in notices] == [["dave@example.org"]] * 3, [m.subject for m in notices]
