"""The service layer, ``services/verification.py``: completing a sign-in by code or by link."""

from __future__ import annotations

import pytest
from django.test import override_settings

from passwordless import services
from passwordless.errors import SignInError
from passwordless.models import LoginRequest
from tests.conftest import FrozenClock
from tests.factories import LoginRequestFactory, bound_request, issue_secret
from tests.helpers import wrong_code

pytestmark = pytest.mark.django_db


def test_right_code_signs_in_and_creates_the_account() -> None:
    login_request = LoginRequestFactory.create(email="new@example.org")
    issued = issue_secret(login_request)
    signed, user = services.verify_code(login_request.public_id, issued.code)
    assert signed.status == LoginRequest.Status.SIGNED_IN
    assert user.email == "new@example.org"  # type: ignore[attr-defined]
    assert not user.has_usable_password()


@override_settings(PASSWORDLESS_SIGNUP_ENABLED=False)
def test_right_code_for_unknown_address_with_signup_closed_is_refused() -> None:
    login_request = LoginRequestFactory.create()
    issued = issue_secret(login_request)
    with pytest.raises(SignInError) as error:
        services.verify_code(login_request.public_id, issued.code)
    assert error.value.code == "signup_closed"


def test_a_code_works_once() -> None:
    login_request = LoginRequestFactory.create()
    issued = issue_secret(login_request)
    services.verify_code(login_request.public_id, issued.code)
    with pytest.raises(SignInError) as error:
        services.verify_code(login_request.public_id, issued.code)
    assert error.value.code == "already_used"


def test_wrong_codes_count_and_lock_the_request() -> None:
    login_request = LoginRequestFactory.create()
    issued = issue_secret(login_request)
    wrong = wrong_code(issued.code)
    for left in (4, 3, 2, 1):
        with pytest.raises(SignInError) as error:
            services.verify_code(login_request.public_id, wrong)
        assert error.value.code == "code_invalid"
        assert error.value.params["attempts_left"] == left
    with pytest.raises(SignInError) as error:
        services.verify_code(login_request.public_id, wrong)
    assert error.value.code == "request_locked"
    with pytest.raises(SignInError) as error:
        services.verify_code(login_request.public_id, issued.code)
    assert error.value.code == "request_locked"
    assert error.value.message == "Too many wrong codes. Request a new code."


def test_code_expires_ten_minutes_after_minting(frozen_clock: FrozenClock) -> None:
    first = LoginRequestFactory.create()
    issued = issue_secret(first)
    frozen_clock.advance(seconds=599)
    services.verify_code(first.public_id, issued.code)

    second = LoginRequestFactory.create()
    issued = issue_secret(second)
    frozen_clock.advance(seconds=600)
    with pytest.raises(SignInError) as error:
        services.verify_code(second.public_id, issued.code)
    assert error.value.code == "expired"


def test_a_code_of_one_request_does_not_complete_another() -> None:
    a, b = LoginRequestFactory.create(), LoginRequestFactory.create()
    issued_a = issue_secret(a)
    issue_secret(b, code=wrong_code(issued_a.code))
    with pytest.raises(SignInError):
        services.verify_code(b.public_id, issued_a.code)


def test_resend_keeps_the_three_most_recent_codes_valid() -> None:
    login_request = LoginRequestFactory.create()
    codes = [issue_secret(login_request, code=f"{n}{n}{n}{n}{n}{n}").code for n in range(4)]
    with pytest.raises(SignInError):
        services.verify_code(login_request.public_id, codes[0])
    services.verify_code(login_request.public_id, codes[1])


def test_previewing_a_link_consumes_nothing_and_confirming_does() -> None:
    login_request = LoginRequestFactory.create()
    issued = issue_secret(login_request)
    for _ in range(3):
        preview = services.preview_link(issued.token)
    login_request.refresh_from_db()
    assert login_request.status == LoginRequest.Status.PENDING
    with pytest.raises(SignInError) as error:
        services.confirm_link(preview.token_hash)  # not the browser that asked
    assert error.value.code == "browser_mismatch"
    browser = bound_request(login_request)
    services.confirm_link(preview.token_hash, request=browser)
    with pytest.raises(SignInError) as error:
        services.confirm_link(preview.token_hash, request=browser)
    assert error.value.code == "already_used"


def test_unknown_link_is_refused() -> None:
    with pytest.raises(SignInError) as error:
        services.preview_link("not-a-real-token")
    assert error.value.code == "request_not_found"
    assert error.value.status == 404
