"""The service layer, ``services/signin.py``: every sign-in, by session or by tokens."""

from __future__ import annotations

import pytest
from django.test import override_settings

from passwordless import services
from passwordless.errors import SignInError
from passwordless.models import LoginRequest
from tests.factories import LoginRequestFactory, UserFactory, bound_request

pytestmark = pytest.mark.django_db


@override_settings(PASSWORDLESS_MAX_SESSIONS=1, PASSWORDLESS_SESSION_LIMIT_POLICY="refuse")
@pytest.mark.parametrize("mode", ["session", "jwt"])
def test_a_refused_sign_in_leaves_the_callers_transaction_usable(mode: str) -> None:
    """A view that catches the refusal inside a transaction of its own (``ATOMIC_REQUESTS``)
    goes on querying: the sign-in rolls back to its savepoint, not the whole transaction."""
    from django.contrib.sessions.backends.cache import SessionStore
    from django.db import transaction

    from passwordless.services import signin as tokens  # sign_in_with_tokens moved here
    from passwordless.services.signin import track

    user = UserFactory.create(email="alice@example.org")
    track(None, user, "code")  # the one device allowed
    login_request = LoginRequestFactory.create(email="alice@example.org")
    request = bound_request(login_request)
    request.session = SessionStore()
    with transaction.atomic():
        with pytest.raises(SignInError) as refused:
            if mode == "jwt":
                tokens.sign_in_with_tokens(request, user, login_request, "code")
            else:
                services.sign_in(request, user, login_request, "code")
        assert refused.value.code == "too_many_sessions"
        assert LoginRequest.objects.filter(pk=login_request.pk).exists()  # still usable
