"""Changing the email address: the service (``services.email_change``), its pages and its
JSON endpoints. The attacks over HTTP are in ``test_attack_email_change``."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client, RequestFactory

from accounts.models import User
from passwordless import signals
from passwordless.errors import SignInError
from passwordless.models import EmailChange, LoginRequest
from passwordless.services import email_change
from tests.conftest import CODE_RE, LINK_RE, Delivered, FrozenClock
from tests.helpers import browsers_signed_in, session_row, wrong_code

pytestmark = pytest.mark.django_db

OLD, NEW = "alice@example.org", "new.alice@example.org"
UNDO_RE = re.compile(r"(https?://\S+/auth/email/undo/[A-Za-z0-9_-]+/)")
SessionStarter = Callable[..., Delivered | None]


@pytest.fixture
def signed_in(
    client: Client, start_sign_in: SessionStarter, settings: Any
) -> Callable[..., Client]:
    """A browser signed in to alice's account by code; each call another device."""
    settings.PASSWORDLESS_SEND_RATES_PER_EMAIL = "100/m"
    User.objects.create_user(OLD)

    return browsers_signed_in(start_sign_in, OLD)


def _ask(c: Client, capture: Any, email: str = NEW) -> Any:
    with capture(execute=True):
        return c.post("/auth/email/", {"email": email})


def _mail_to(address: str, subject: str) -> mail.EmailMultiAlternatives:
    found = [m for m in mail.outbox if m.to == [address] and subject in m.subject]
    assert found, [(m.to, m.subject) for m in mail.outbox]
    message = found[-1]
    assert isinstance(message, mail.EmailMultiAlternatives)
    return message


def _code_to(address: str) -> str:
    match = CODE_RE.search(str(_mail_to(address, "new email address").body))
    assert match
    return match.group(1)


def _undo_path(address: str = OLD) -> str:
    match = UNDO_RE.search(str(_mail_to(address, "was changed").body))
    assert match, _mail_to(address, "was changed").body
    return match.group(1).removeprefix("http://testserver")


def _confirm(c: Client, capture: Any, code: str) -> Any:
    with capture(execute=True):
        return c.post("/auth/email/code/", {"code": code})


def test_a_change_by_code_keeps_this_session_ends_the_others_and_tells_the_old_address(
    signed_in: Callable[..., Client], django_capture_on_commit_callbacks: Any, client: Client
) -> None:
    laptop, phone = signed_in(), signed_in()
    page = laptop.get("/auth/email/")
    assert page.status_code == 200 and OLD.encode() in page.content
    asked = _ask(laptop, django_capture_on_commit_callbacks, "New.Alice@Example.org")
    assert asked.status_code == 302 and asked["Location"] == "/auth/email/code/"
    code_page = laptop.get("/auth/email/code/")
    assert b"We sent a 6-digit code to <strong>n***@example.org</strong>" in code_page.content
    assert User.objects.get().email == OLD  # nothing changes before the code
    # A sign-in for the old address, in flight in a third browser.
    pending = Client()
    assert pending.post("/auth/login/", {"email": OLD}).status_code == 302

    done = _confirm(laptop, django_capture_on_commit_callbacks, _code_to(NEW))
    assert done.status_code == 302 and done["Location"] == "/auth/email/"
    assert User.objects.get().email == NEW
    assert b"Your email address is now new.alice@example.org" in laptop.get("/").content
    assert session_row(laptop).ended_at is None
    assert session_row(phone).ended_at is not None
    assert phone.get("/auth/sessions/").status_code == 302  # signed out
    assert not LoginRequest.objects.filter(email=OLD, status="pending").exists()

    notice = _mail_to(OLD, "was changed")
    assert "changed to n***@example.org" in str(notice.body) and NEW not in str(notice.body)
    assert "Every other device" in str(notice.body)
    assert "within 7 days" in str(notice.body)
    html, _ = notice.alternatives[0]
    assert "/auth/email/undo/" in str(html)
    change = EmailChange.objects.get()
    assert change.confirmed_at is not None and change.undo_token_hash
    assert change.undo_expires_at == change.confirmed_at + timedelta(days=7)
    assert change.old_email == OLD and change.new_email == NEW


def test_asking_needs_a_fresh_step_up_on_the_page_and_in_the_service(
    signed_in: Callable[..., Client], frozen_clock: FrozenClock
) -> None:
    laptop = signed_in()
    frozen_clock.advance(minutes=6)
    refused = laptop.get("/auth/email/")
    assert refused.status_code == 302
    assert refused["Location"] == "/auth/reauthenticate/?next=%2Fauth%2Femail%2F"
    refused = laptop.post("/auth/email/", {"email": NEW})
    assert refused["Location"].startswith("/auth/reauthenticate/")
    with pytest.raises(SignInError) as error:
        email_change.request_change(session_row(laptop), NEW, request=None)
    assert error.value.code == "reauthentication_required"
    assert not EmailChange.objects.exists() and not mail.outbox[1:]


def test_the_same_address_or_an_invalid_one_is_a_clear_error(
    signed_in: Callable[..., Client],
) -> None:
    laptop = signed_in()
    same = laptop.post("/auth/email/", {"email": "Alice@Example.org"})
    assert same.status_code == 400 and b"already your account" in same.content
    invalid = laptop.post("/auth/email/", {"email": "not an address"})
    assert invalid.status_code == 400 and b"Enter a valid email address" in invalid.content
    empty = laptop.post("/auth/email/", {"email": ""})
    assert empty.status_code == 400 and b"Enter the new email address" in empty.content
    with pytest.raises(SignInError) as error:
        email_change.request_change(session_row(laptop), "x" * 5000, request=None)
    assert error.value.code == "email_invalid"
    assert not EmailChange.objects.exists()


def test_another_accounts_address_gets_the_same_answer_and_no_mail(
    signed_in: Callable[..., Client], django_capture_on_commit_callbacks: Any
) -> None:
    laptop = signed_in()
    User.objects.create_user("bob@example.org")
    before = len(mail.outbox)
    asked = _ask(laptop, django_capture_on_commit_callbacks, "bob@example.org")
    assert asked.status_code == 302 and asked["Location"] == "/auth/email/code/"
    page = laptop.get("/auth/email/code/")
    assert b"We sent a 6-digit code to <strong>b***@example.org</strong>" in page.content
    assert len(mail.outbox) == before
    assert EmailChange.objects.get().confirmation.delivery == "suppressed"


def test_the_address_taken_before_the_code_is_used_changes_nothing(
    signed_in: Callable[..., Client], django_capture_on_commit_callbacks: Any
) -> None:
    laptop = signed_in()
    _ask(laptop, django_capture_on_commit_callbacks)
    code = _code_to(NEW)
    User.objects.create_user(NEW)  # someone signed up with it meanwhile
    refused = _confirm(laptop, django_capture_on_commit_callbacks, code)
    assert refused.status_code == 409 and b"already used by another account" in refused.content
    assert User.objects.get(pk=session_row(laptop).user_id).email == OLD
    assert EmailChange.objects.get().confirmed_at is None
    assert not [m for m in mail.outbox if "was changed" in m.subject]


def test_wrong_codes_count_and_the_code_works_only_in_the_session_that_asked(
    signed_in: Callable[..., Client], django_capture_on_commit_callbacks: Any
) -> None:
    laptop, phone = signed_in(), signed_in()
    _ask(laptop, django_capture_on_commit_callbacks)
    code = _code_to(NEW)
    wrong = _confirm(laptop, django_capture_on_commit_callbacks, wrong_code(code))
    assert wrong.status_code == 400 and b"4 attempts left" in wrong.content
    public_id = EmailChange.objects.get().confirmation.public_id
    with pytest.raises(SignInError) as error:
        email_change.confirm_by_code(
            public_id, code, user_session=session_row(phone), request=None
        )
    assert error.value.code == "request_not_found"
    # The phone has no change of its own to confirm: its code page sends it to ask.
    assert phone.get("/auth/email/code/")["Location"] == "/auth/email/"
    assert User.objects.get().email == OLD


def test_a_code_mailed_to_the_old_address_never_confirms(
    signed_in: Callable[..., Client],
    django_capture_on_commit_callbacks: Any,
    start_sign_in: SessionStarter,
) -> None:
    laptop = signed_in()
    _ask(laptop, django_capture_on_commit_callbacks)
    old_code = start_sign_in(OLD, Client())
    assert old_code is not None
    refused = _confirm(laptop, django_capture_on_commit_callbacks, old_code.code)
    assert refused.status_code == 400 and b"isn&#x27;t right" in refused.content
    assert User.objects.get().email == OLD


def test_a_change_made_some_other_way_meanwhile_is_not_overwritten(
    signed_in: Callable[..., Client], django_capture_on_commit_callbacks: Any
) -> None:
    laptop = signed_in()
    _ask(laptop, django_capture_on_commit_callbacks)
    code = _code_to(NEW)
    User.objects.update(email="admin.set@example.org")  # no signal, no request ended
    refused = _confirm(laptop, django_capture_on_commit_callbacks, code)
    assert refused.status_code == 409
    assert User.objects.get().email == "admin.set@example.org"


def test_the_link_confirms_in_one_click_only_in_the_session_that_asked(
    signed_in: Callable[..., Client], django_capture_on_commit_callbacks: Any
) -> None:
    laptop = signed_in()
    _ask(laptop, django_capture_on_commit_callbacks)
    link = LINK_RE.search(str(_mail_to(NEW, "new email address").body))
    assert link
    path = link.group(1).removeprefix("http://testserver")

    # Elsewhere (a phone, a mail scanner): a page that says where to go; nothing changes.
    elsewhere = Client()
    opened = elsewhere.get(path)
    assert opened.status_code == 302 and opened["Location"] == "/auth/email/link/"
    page = elsewhere.get("/auth/email/link/")
    assert b"Open this link in the browser where you asked for the change" in page.content
    assert elsewhere.post("/auth/email/link/").status_code == 403  # browser_mismatch
    assert User.objects.get().email == OLD

    assert laptop.get(path)["Location"] == "/auth/email/link/"
    page = laptop.get("/auth/email/link/")
    assert b"Make n***@example.org your address?" in page.content
    assert User.objects.get().email == OLD  # opening changes nothing
    with django_capture_on_commit_callbacks(execute=True):
        done = laptop.post("/auth/email/link/")
    assert done.status_code == 302 and done["Location"] == "/auth/email/"
    assert User.objects.get().email == NEW
    assert session_row(laptop).ended_at is None
    again = Client().get(path)
    assert again.status_code == 409  # the link is used


def test_undo_by_post_only_once_and_within_the_period(
    signed_in: Callable[..., Client],
    django_capture_on_commit_callbacks: Any,
    frozen_clock: FrozenClock,
) -> None:
    laptop = signed_in()
    _ask(laptop, django_capture_on_commit_callbacks)
    _confirm(laptop, django_capture_on_commit_callbacks, _code_to(NEW))
    undo_path = _undo_path()

    victim = Client()
    opened = victim.get(undo_path)
    assert opened.status_code == 302 and opened["Referrer-Policy"] == "no-referrer"
    page = victim.get(opened["Location"])
    assert b"Put back a***@example.org?" in page.content
    assert User.objects.get().email == NEW  # GET changed nothing

    with django_capture_on_commit_callbacks(execute=True):
        done = victim.post("/auth/email/undo/")
    assert done.status_code == 200 and b"Your address is back" in done.content
    assert User.objects.get().email == OLD
    assert session_row(laptop).ended_at is not None  # every session, the one that changed it too
    assert victim.get("/auth/sessions/").status_code == 302  # nobody signed in
    change = EmailChange.objects.get()
    assert change.undone_at is not None

    twice = Client().get(undo_path)
    assert twice.status_code == 409 and b"already been undone" in twice.content


def test_an_undo_link_expires_after_the_period(
    signed_in: Callable[..., Client],
    django_capture_on_commit_callbacks: Any,
    frozen_clock: FrozenClock,
) -> None:
    laptop = signed_in()
    _ask(laptop, django_capture_on_commit_callbacks)
    _confirm(laptop, django_capture_on_commit_callbacks, _code_to(NEW))
    undo_path = _undo_path()
    browser = Client()
    assert browser.get(undo_path).status_code == 302  # in time: to the page
    frozen_clock.advance(days=7)
    late = browser.post("/auth/email/undo/")
    assert late.status_code == 410 and b"expired" in late.content
    assert Client().get(undo_path).status_code == 410
    assert User.objects.get().email == NEW


def test_undo_refuses_an_old_address_another_account_took(
    signed_in: Callable[..., Client], django_capture_on_commit_callbacks: Any
) -> None:
    laptop = signed_in()
    _ask(laptop, django_capture_on_commit_callbacks)
    _confirm(laptop, django_capture_on_commit_callbacks, _code_to(NEW))
    undo_path = _undo_path()
    User.objects.create_user(OLD)  # the freed address, taken by a new account
    browser = Client()
    browser.get(undo_path)
    refused = browser.post("/auth/email/undo/")
    assert refused.status_code == 409 and b"used by another account" in refused.content
    assert User.objects.filter(email=NEW).exists()
    assert EmailChange.objects.get().undone_at is None
    assert session_row(laptop).ended_at is None


def test_an_unknown_undo_link_is_a_clear_page(client: Client) -> None:
    page = client.get("/auth/email/undo/" + "A" * 43 + "/")
    assert page.status_code == 404 and b"undo link isn" in page.content
    assert client.get("/auth/email/undo/").status_code == 404
    assert client.post("/auth/email/undo/").status_code == 404


def test_the_signals_are_sent(
    signed_in: Callable[..., Client], django_capture_on_commit_callbacks: Any
) -> None:
    heard: list[str] = []

    def note(name: str) -> Callable[..., None]:
        def receiver(sender: Any, email_change: EmailChange, **kwargs: Any) -> None:
            heard.append(name)

        return receiver

    receivers = {
        signals.email_change_requested: note("requested"),
        signals.email_change_confirmed: note("confirmed"),
        signals.email_change_undone: note("undone"),
    }
    for signal, receiver in receivers.items():
        signal.connect(receiver)
    try:
        laptop = signed_in()
        _ask(laptop, django_capture_on_commit_callbacks)
        _confirm(laptop, django_capture_on_commit_callbacks, _code_to(NEW))
        browser = Client()
        browser.get(_undo_path())
        browser.post("/auth/email/undo/")
    finally:
        for signal, receiver in receivers.items():
            signal.disconnect(receiver)
    assert heard == ["requested", "confirmed", "undone"]


def test_resend_mails_the_same_request_again(
    signed_in: Callable[..., Client],
    django_capture_on_commit_callbacks: Any,
    frozen_clock: FrozenClock,
    rate_clock: Any,
) -> None:
    laptop = signed_in()
    _ask(laptop, django_capture_on_commit_callbacks)
    first = _code_to(NEW)
    rate_clock.advance(61)
    with django_capture_on_commit_callbacks(execute=True):
        again = laptop.post("/auth/email/code/resend/")
    assert again["Location"] == "/auth/email/code/"
    assert len([m for m in mail.outbox if m.to == [NEW]]) == 2
    assert EmailChange.objects.count() == 1
    frozen_clock.advance(minutes=6)  # a stale proof: resending asks for a step-up
    stale = laptop.post("/auth/email/code/resend/")
    assert stale["Location"].startswith("/auth/reauthenticate/?next=%2Fauth%2Femail%2Fcode%2F")
    _confirm(laptop, django_capture_on_commit_callbacks, first)  # the first code still works
    assert User.objects.get().email == NEW


def test_an_admin_save_still_ends_every_session(
    signed_in: Callable[..., Client], django_capture_on_commit_callbacks: Any
) -> None:
    laptop = signed_in()
    user = User.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        user.email = NEW
        user.save()
    assert session_row(laptop).ended_at is not None
    notice = _mail_to(OLD, "was changed")
    assert "Every device" in str(notice.body) and "/undo/" not in str(notice.body)


# The JSON API.


def test_the_api_changes_the_address_with_a_fresh_step_up(
    signed_in: Callable[..., Client],
    django_capture_on_commit_callbacks: Any,
    frozen_clock: FrozenClock,
) -> None:
    laptop = signed_in()
    with django_capture_on_commit_callbacks(execute=True):
        asked = laptop.post(
            "/api/auth/email/change", {"email": NEW}, content_type="application/json"
        )
    assert asked.status_code == 202, asked.content
    request_id = asked.json()["request_id"]
    wrong = laptop.post(
        "/api/auth/email/change/verify",
        {"request_id": request_id, "code": wrong_code(_code_to(NEW))},
        content_type="application/json",
    )
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "code_invalid"
    with django_capture_on_commit_callbacks(execute=True):
        done = laptop.post(
            "/api/auth/email/change/verify",
            {"request_id": request_id, "code": _code_to(NEW)},
            content_type="application/json",
        )
    assert done.status_code == 200, done.content
    assert done.json()["email"] == NEW and done.json()["user"]["email"] == NEW
    assert session_row(laptop).ended_at is None

    frozen_clock.advance(minutes=6)
    stale = laptop.post(
        "/api/auth/email/change", {"email": "third@example.org"}, content_type="application/json"
    )
    assert stale.status_code == 403
    error = stale.json()["error"]
    assert error["code"] == "reauthentication_required"
    assert error["reauthenticate"]["send"] == "/api/auth/reauthenticate/send"


def test_the_api_answers_clear_errors(signed_in: Callable[..., Client], client: Client) -> None:
    anonymous = Client().post(
        "/api/auth/email/change", {"email": NEW}, content_type="application/json"
    )
    assert anonymous.status_code == 401
    laptop = signed_in()
    for body, code in (
        ({"email": OLD}, "email_unchanged"),
        ({"email": "nope"}, "email_invalid"),
        ({}, "field_missing"),
    ):
        answer = laptop.post("/api/auth/email/change", body, content_type="application/json")
        assert answer.status_code == 400 and answer.json()["error"]["code"] == code, answer.json()
    unknown = laptop.post(
        "/api/auth/email/change/verify",
        {"request_id": "nope", "code": "123456"},
        content_type="application/json",
    )
    assert unknown.status_code == 404


def test_the_service_takes_a_request_factory_request(
    signed_in: Callable[..., Client], django_capture_on_commit_callbacks: Any
) -> None:
    laptop = signed_in()
    row = session_row(laptop)
    with django_capture_on_commit_callbacks(execute=True):
        change = email_change.request_change(row, NEW, request=RequestFactory().post("/"))
    assert change.confirmation.purpose == LoginRequest.Purpose.CHANGE_EMAIL
    assert change.confirmation.session_id == row.pk
    assert email_change.pending_change(row, change.confirmation.public_id) == change
    assert email_change.pending_change(None, change.confirmation.public_id) is None
