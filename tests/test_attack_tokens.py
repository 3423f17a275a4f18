"""Refresh-token replay, staff token lifetimes and JWT header/issuer tricks, over HTTP."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from passwordless import keys
from passwordless.models import AuthEvent, TokenFamily
from passwordless.services import active_sessions
from tests.api_client import ApiClient
from tests.conftest import Delivered, FrozenClock
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

Mailbox = Callable[..., Delivered]


def _sign_in(site: str, mailbox: Mailbox, email: str) -> dict[str, Any]:
    api = ApiClient(site)
    request_id = api.send(email).json()["request_id"]
    pair = api.verify_code(request_id, mailbox(email).code).json()
    assert "refresh" in pair, pair
    return dict(pair)


def _refresh(site: str, token: str) -> Any:
    return ApiClient(site).post("/api/auth/token/refresh", {"refresh": token})


def _forged(settings: Any, access: str, claims: dict[str, Any], **headers: Any) -> str:
    """A token signed with the server's own key: only the change under test is wrong."""
    body = {**jwt.decode(access, options={"verify_signature": False}), **claims}
    key = load_pem_private_key(settings.PASSWORDLESS_JWT_PRIVATE_KEYS[0].encode(), None)
    assert isinstance(key, Ed25519PrivateKey)
    header = {"kid": keys.signing_key().kid, "typ": "at+jwt", **headers}
    return jwt.encode(body, key, algorithm="EdDSA", headers=header)


def test_a_refresh_replayed_after_ten_seconds_revokes_audits_and_logs(
    site: str, mailbox: Mailbox, frozen_clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="passwordless")
    pair = _sign_in(site, mailbox, "alice@example.org")
    rotated = _refresh(site, pair["refresh"]).json()
    frozen_clock.advance(seconds=11)  # past the 10 s grace (it was 30 s)
    replay = _refresh(site, pair["refresh"])
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "refresh_reused"
    assert _refresh(site, rotated["refresh"]).status_code == 401
    family = TokenFamily.objects.get()
    assert family.revoked_reason == "refresh_reused"
    event = AuthEvent.objects.get(kind=AuthEvent.Kind.REFRESH_REUSED)
    assert event.user is not None and event.user.email == "alice@example.org"
    assert event.reason == "after_grace"
    lines = [r for r in caplog.records if r.name.startswith("passwordless")]
    warning = [r for r in lines if r.levelno == logging.WARNING and "reused" in r.getMessage()]
    assert warning and f"user_id={family.user_id}" in warning[0].getMessage()
    text = "\n".join(r.getMessage() for r in lines) + repr(list(AuthEvent.objects.values()))
    for secret in (pair["refresh"], rotated["refresh"], pair["access"], rotated["access"]):
        assert secret not in text


def test_a_retry_within_ten_seconds_still_gets_the_same_pair(
    site: str, mailbox: Mailbox, frozen_clock: FrozenClock
) -> None:
    pair = _sign_in(site, mailbox, "alice@example.org")
    rotated = _refresh(site, pair["refresh"]).json()
    frozen_clock.advance(seconds=9)
    assert _refresh(site, pair["refresh"]).json() == rotated
    assert not AuthEvent.objects.filter(kind=AuthEvent.Kind.REFRESH_REUSED).exists()


def test_a_staff_refresh_token_ends_after_thirty_idle_minutes(
    site: str, mailbox: Mailbox, frozen_clock: FrozenClock
) -> None:
    staff = UserFactory.create(email="staff@example.org", is_staff=True)
    UserFactory.create(email="alice@example.org")
    staff_pair = _sign_in(site, mailbox, "staff@example.org")
    user_pair = _sign_in(site, mailbox, "alice@example.org")
    frozen_clock.advance(minutes=31)
    assert _refresh(site, staff_pair["refresh"]).json()["error"]["code"] == "token_invalid"
    assert active_sessions(staff) == []  # the devices list agrees: signed out
    assert _refresh(site, user_pair["refresh"]).status_code == 200  # users keep 7 days


def test_a_staff_token_family_ends_after_twelve_hours_however_active(
    site: str, mailbox: Mailbox, frozen_clock: FrozenClock
) -> None:
    UserFactory.create(email="staff@example.org", is_staff=True)
    token = _sign_in(site, mailbox, "staff@example.org")["refresh"]
    for _ in range(12 * 60 // 25):  # every 25 minutes: never idle
        frozen_clock.advance(minutes=25)
        response = _refresh(site, token)
        assert response.status_code == 200
        token = response.json()["refresh"]
    frozen_clock.advance(minutes=25)  # 12 h 25 min after sign-in
    assert _refresh(site, token).status_code == 401


def test_an_issuer_that_is_a_prefix_of_ours_is_refused(
    site: str, mailbox: Mailbox, settings: Any
) -> None:
    """CVE-2024-53861: PyJWT 2.10.0 checked a string issuer with ``in``."""
    access = _sign_in(site, mailbox, "alice@example.org")["access"]
    api = ApiClient(site)
    assert api.me(_forged(settings, access, {})).status_code == 200
    for iss in (site[:-1], site[: site.rindex(":") + 2], "localhost", ""):
        assert api.me(_forged(settings, access, {"iss": iss})).status_code == 401, iss


@pytest.mark.parametrize("crit", [["exp"], ["x-unknown"], ["b64"]])
def test_a_token_with_a_crit_header_is_refused(
    site: str, mailbox: Mailbox, settings: Any, crit: list[str]
) -> None:
    access = _sign_in(site, mailbox, "alice@example.org")["access"]
    token = _forged(settings, access, {}, crit=crit, **{"x-unknown": 1})
    assert ApiClient(site).me(token).status_code == 401
