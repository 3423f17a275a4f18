"""Step-up and new-address confirmations: requests with a purpose, bound to a session.

``start.start_confirmation`` mails a code for a purpose other than signing in, and
``verification.confirm_code`` / ``prove_by_code`` complete it. What these tests hold:
such a code or link never signs anyone in, works only for the session that asked, and
counts wrong codes as a sign-in's do; a new address's mail goes to that address, and
never to, or for, another account that has it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test import RequestFactory, TestCase
from django.utils import timezone

from passwordless import services
from passwordless.crypto import hash_token
from passwordless.errors import SignInError
from passwordless.models import LoginRequest, UserSession
from passwordless.services import reauthentication
from passwordless.services.start import start_confirmation
from passwordless.services.verification import (
    RecordProof,
    complete_link,
    confirm_code,
    prove_by_code,
)
from passwordless.testing import CODE_RE, LINK_RE, FrozenClock, link_token
from tests.conftest import RateLimitClock
from tests.factories import UserFactory
from tests.helpers import wrong_code

pytestmark = pytest.mark.django_db

Purpose = LoginRequest.Purpose


def a_session(email: str = "owner@example.org") -> UserSession:
    user = UserFactory.create(email=email)
    return UserSession.objects.create(user=user, kind=UserSession.Kind.BROWSER, device="Firefox")


def asked(
    purpose: str, session: UserSession, email: str | None = None
) -> tuple[LoginRequest, str, str]:
    """Start a confirmation, deliver its mail in process; the request, code and link token."""
    before = len(mail.outbox)
    with TestCase.captureOnCommitCallbacks(execute=True):
        started = start_confirmation(
            purpose, session, email=email, request=RequestFactory().post("/")
        )
    if len(mail.outbox) == before:
        services.deliver_login_email(started.login_request.pk)
    assert len(mail.outbox) > before, "no mail was sent"
    body = str(mail.outbox[-1].body)
    code = CODE_RE.search(body)
    link = LINK_RE.search(body)
    assert code is not None, body
    started.login_request.refresh_from_db()
    return started.login_request, code.group(1), link_token(link.group(0)) if link else ""


def test_a_step_up_code_goes_to_the_account_and_records_the_proof(
    frozen_clock: FrozenClock,
) -> None:
    session = a_session()
    frozen_clock.advance(minutes=10)
    assert not reauthentication.is_fresh(session)
    request, code, _ = asked(Purpose.REAUTHENTICATE, session)
    assert mail.outbox[-1].to == ["owner@example.org"]
    assert "confirm it" in mail.outbox[-1].subject.lower()
    assert request.user_id == session.user_id and request.session_id == session.pk
    prove_by_code(request.public_id, code, user_session=session, request=None)
    session.refresh_from_db()
    assert reauthentication.is_fresh(session)
    request.refresh_from_db()
    assert request.status == LoginRequest.Status.CONFIRMED
    frozen_clock.advance(minutes=5)
    assert not reauthentication.is_fresh(session)


def test_the_sign_in_counts_as_a_proof_for_the_window_only(frozen_clock: FrozenClock) -> None:
    session = a_session()
    assert reauthentication.is_fresh(session)
    frozen_clock.advance(seconds=299)
    assert reauthentication.is_fresh(session)
    frozen_clock.advance(seconds=1)
    assert not reauthentication.is_fresh(session)
    assert not reauthentication.is_fresh(None)


def test_a_step_up_code_never_signs_in() -> None:
    session = a_session()
    request, code, _ = asked(Purpose.REAUTHENTICATE, session)
    assert "/auth/link/" not in str(mail.outbox[-1].body)  # a step-up's mail has no link
    with pytest.raises(SignInError) as error:
        services.verify_code(request.public_id, code)
    assert error.value.code == "request_not_found"
    with pytest.raises(SignInError) as error:
        services.resend(request.public_id)
    assert error.value.code == "request_not_found"
    request.refresh_from_db()
    assert request.status == LoginRequest.Status.PENDING and request.attempts == 0
    # Still good for the session that asked.
    prove_by_code(request.public_id, code, user_session=session, request=None)


def test_a_proof_counts_only_for_the_session_that_asked(frozen_clock: FrozenClock) -> None:
    session = a_session()
    other = UserSession.objects.create(user=session.user, kind=UserSession.Kind.BROWSER)
    frozen_clock.advance(minutes=10)
    request, code, _ = asked(Purpose.REAUTHENTICATE, session)
    with pytest.raises(SignInError) as error:
        prove_by_code(request.public_id, code, user_session=other, request=None)
    assert error.value.code == "request_not_found"
    other.refresh_from_db()
    assert not reauthentication.is_fresh(other)
    session.ended_at = frozen_clock()
    session.save()
    with pytest.raises(SignInError) as error:
        prove_by_code(request.public_id, code, user_session=session, request=None)
    assert error.value.code == "request_not_found"


def test_wrong_step_up_codes_lock_the_request() -> None:
    session = a_session()
    request, code, _ = asked(Purpose.REAUTHENTICATE, session)
    for _ in range(4):
        with pytest.raises(SignInError) as error:
            prove_by_code(request.public_id, wrong_code(code), user_session=session, request=None)
        assert error.value.code == "code_invalid"
    with pytest.raises(SignInError) as error:
        prove_by_code(request.public_id, wrong_code(code), user_session=session, request=None)
    assert error.value.code == "request_locked"
    with pytest.raises(SignInError):
        prove_by_code(request.public_id, code, user_session=session, request=None)


def test_asking_again_keeps_the_first_code_valid(rate_clock: RateLimitClock) -> None:
    session = a_session()
    first, first_code, _ = asked(Purpose.REAUTHENTICATE, session)
    with pytest.raises(SignInError) as error:  # the address's send limits hold here too
        start_confirmation(Purpose.REAUTHENTICATE, session)
    assert error.value.code == "rate_limited"
    rate_clock.advance(61)
    again, _, _ = asked(Purpose.REAUTHENTICATE, session)
    assert again.pk == first.pk and again.sends == 2
    prove_by_code(first.public_id, first_code, user_session=session, request=None)


def test_a_new_address_gets_the_mail_and_confirms_for_the_account_that_asked() -> None:
    session = a_session("old@example.org")
    request, code, _ = asked(Purpose.CHANGE_EMAIL, session, email="New@Example.org")
    assert mail.outbox[-1].to == ["new@example.org"]  # the new address, in canonical form
    assert "new email address" in mail.outbox[-1].subject
    assert request.email == "new@example.org" and request.user_id == session.user_id

    class Noted:
        user = None

        def finish(self, login_request: LoginRequest, user: object) -> None:
            Noted.user = user

    done = confirm_code(
        request.public_id,
        code,
        purpose=Purpose.CHANGE_EMAIL,
        user_session=session,
        request=None,
        finisher=Noted(),
    )
    assert done.user.pk == session.user_id and Noted.user == done.user
    # Its link does not sign in either, and is for the session that asked only.
    _, _, token3 = asked(Purpose.CHANGE_EMAIL, session, email="third@example.org")
    with pytest.raises(SignInError) as error:
        complete_link(hash_token(token3), request=None, code_verifier="", finisher=None)
    assert error.value.code == "request_not_found"
    other = UserSession.objects.create(user=session.user, kind=UserSession.Kind.BROWSER)
    with pytest.raises(SignInError) as error:
        complete_link(
            hash_token(token3),
            request=None,
            finisher=Noted(),
            purpose=Purpose.CHANGE_EMAIL,
            user_session=other,
        )
    assert error.value.code == "browser_mismatch"
    complete_link(
        hash_token(token3),
        request=None,
        finisher=Noted(),
        purpose=Purpose.CHANGE_EMAIL,
        user_session=session,
    )
    # The code of an address change is not a step-up either.
    request2, code2, _ = asked(Purpose.CHANGE_EMAIL, session, email="newer@example.org")
    with pytest.raises(SignInError) as error:
        prove_by_code(request2.public_id, code2, user_session=session, request=None)
    assert error.value.code == "request_not_found"


def test_a_new_address_that_is_another_accounts_gets_nothing() -> None:
    session = a_session("old@example.org")
    UserFactory.create(email="taken@example.org")
    before = len(mail.outbox)
    with TestCase.captureOnCommitCallbacks(execute=True):
        started = start_confirmation(Purpose.CHANGE_EMAIL, session, email="taken@example.org")
    services.deliver_login_email(started.login_request.pk)
    assert len(mail.outbox) == before
    started.login_request.refresh_from_db()
    assert started.login_request.delivery == LoginRequest.Delivery.SUPPRESSED
    assert started.login_request.user_id == session.user_id  # never the other account


def test_a_step_up_for_an_address_the_account_no_longer_has_is_refused() -> None:
    session = a_session("old@example.org")
    request, code, _ = asked(Purpose.REAUTHENTICATE, session)
    type(session.user)._default_manager.filter(pk=session.user_id).update(
        email="moved@example.org"
    )
    session.user.refresh_from_db()
    with pytest.raises(SignInError) as error:
        prove_by_code(request.public_id, code, user_session=session, request=None)
    assert error.value.code == "request_superseded"


def test_record_proof_is_a_finisher() -> None:
    session = a_session()
    RecordProof(session, None).finish(LoginRequest(), session.user)
    assert session.reauthenticated_at is not None
    assert reauthentication.last_proof_at(session) >= session.created_at
    assert session.reauthenticated_at - session.created_at < timedelta(seconds=5)


def test_a_row_inserted_without_a_purpose_is_a_sign_in() -> None:
    """During a rolling deploy, replicas still on the code from before ``purpose`` existed
    insert sign-in requests without it: the column's database default makes them sign-ins."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO passwordless_loginrequest (public_id, email, status, delivery,"
            " attempts, sends, created_at, expires_at, user_agent, next_url, binding_hash,"
            " match_number, code_challenge, approver_user_agent)"
            " VALUES ('oldreplica', 'old@example.org', 'pending', 'pending', 0, 0,"
            " %s, %s, '', '', '', 7, '', '')",
            [timezone.now(), timezone.now() + timedelta(minutes=10)],
        )
    row = LoginRequest.objects.get(public_id="oldreplica")
    assert row.purpose == Purpose.SIGN_IN and row.session_id is None
