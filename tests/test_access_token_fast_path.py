"""The fast path of ``GET /api/auth/me``, attacked: verified tokens remembered per process
by their exact text, and revocation read from the database in the user's one statement.

Each attack first makes sure the token is remembered as verified (two requests answered
200), then changes one thing and expects a 401 on the very next request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import jwt
import pytest
import redis.connection
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from django.conf import settings as django_settings
from django.core.cache import caches
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from passwordless import keys
from passwordless.conf import app_settings
from passwordless.models import TokenFamily
from passwordless.services import revocation, tokens
from tests.api_client import ApiClient
from tests.conftest import Delivered, FrozenClock, RateLimitClock
from tests.factories import UserFactory
from tests.stack import new_jwt_key

pytestmark = pytest.mark.django_db(transaction=True)

Mailbox = Callable[..., Delivered]
EMAIL = "alice@example.org"


@pytest.fixture
def sign_in(site: str, mailbox: Mailbox, rate_clock: RateLimitClock) -> Callable[..., Any]:
    """A new API client signed in with tokens (``mode: "jwt"``): its pair."""

    def pair(email: str = EMAIL) -> dict[str, Any]:
        rate_clock.advance(61)
        api = ApiClient(site)
        request_id = api.send(email).json()["request_id"]
        signed_in = api.verify_code(request_id, mailbox(email).code).json()
        assert "access" in signed_in, signed_in
        return dict(signed_in)

    return pair


def _me(site: str, access: str) -> int:
    return ApiClient(site).me(access).status_code


def _remembered(site: str, access: str) -> None:
    """Answered 200 twice, the second time from the memo of verified tokens."""
    assert _me(site, access) == 200
    assert access in tokens._verified
    assert _me(site, access) == 200


def _family(access: str) -> TokenFamily:
    claims = jwt.decode(access, options={"verify_signature": False})
    return TokenFamily.objects.get(public_id=claims["fam"])


def _ours(access: str, **changes: Any) -> str:
    """A token signed with the server's own key: only the claims changed are wrong."""
    claims = {**jwt.decode(access, options={"verify_signature": False}), **changes}
    key = load_pem_private_key(app_settings.JWT_PRIVATE_KEYS[0].encode(), None)
    assert isinstance(key, Ed25519PrivateKey)
    header = {"kid": keys.signing_key().kid, "typ": "at+jwt"}
    return jwt.encode(claims, key, algorithm="EdDSA", headers=header)


# Revocation, read from the database on every request.


def _remembered_yet_refused(site: str, access: str) -> bool:
    """Still remembered as verified (its signature did not change), yet refused."""
    return access in tokens._verified and _me(site, access) == 401


def test_a_revoked_family_is_refused_at_once_though_its_token_is_remembered(
    site: str, sign_in: Callable[..., Any]
) -> None:
    pair = sign_in()
    _remembered(site, pair["access"])
    tokens.revoke_family(_family(pair["access"]), reason="test")
    assert _remembered_yet_refused(site, pair["access"])


def test_a_family_revoked_by_a_bare_sql_update_is_refused(
    site: str, sign_in: Callable[..., Any]
) -> None:
    pair = sign_in()
    _remembered(site, pair["access"])
    # No signal, no cache write, no service: only the row says it.
    TokenFamily.objects.filter(pk=_family(pair["access"]).pk).update(revoked_at=timezone.now())
    assert _remembered_yet_refused(site, pair["access"])


def test_a_revoked_token_stays_refused_after_the_cache_is_flushed(
    site: str, sign_in: Callable[..., Any]
) -> None:
    pair = sign_in()
    _remembered(site, pair["access"])
    bearer = {"Authorization": f"Bearer {pair['access']}"}
    assert ApiClient(site).post("/api/auth/logout", {}, bearer).status_code == 204
    assert _me(site, pair["access"]) == 401
    for alias in django_settings.CACHES:  # TOKEN_CACHE's and every other, as a restart would
        caches[alias].clear()
    assert _me(site, pair["access"]) == 401
    refreshed = ApiClient(site).post("/api/auth/token/refresh", {"refresh": pair["refresh"]})
    assert refreshed.json()["error"]["code"] == "token_invalid"


def test_logout_with_the_refresh_token_alone_refuses_the_access_token(
    site: str, sign_in: Callable[..., Any]
) -> None:
    pair = sign_in()
    _remembered(site, pair["access"])
    assert (
        ApiClient(site).post("/api/auth/logout", {"refresh": pair["refresh"]}).status_code == 204
    )
    assert _me(site, pair["access"]) == 401


def test_a_refresh_reuse_refuses_every_access_token_of_the_family_at_once(
    site: str, sign_in: Callable[..., Any], frozen_clock: FrozenClock
) -> None:
    pair = sign_in()
    api = ApiClient(site)
    rotated = api.post("/api/auth/token/refresh", {"refresh": pair["refresh"]}).json()
    _remembered(site, pair["access"])
    _remembered(site, rotated["access"])
    frozen_clock.advance(seconds=11)  # past the grace window: a replay, not a retry
    replay = api.post("/api/auth/token/refresh", {"refresh": pair["refresh"]})
    assert replay.json()["error"]["code"] == "refresh_reused"
    assert _me(site, pair["access"]) == 401
    assert _me(site, rotated["access"]) == 401


def test_ending_a_device_refuses_its_access_token_at_once(
    site: str, sign_in: Callable[..., Any]
) -> None:
    laptop, phone = sign_in(), sign_in()
    _remembered(site, phone["access"])
    api = ApiClient(site)
    bearer = {"Authorization": f"Bearer {laptop['access']}"}
    listed = api.get("/api/auth/sessions", bearer).json()["sessions"]
    (other,) = [s for s in listed if not s["current"]]
    assert api.delete(f"/api/auth/sessions/{other['id']}", bearer).status_code == 204
    assert _me(site, phone["access"]) == 401
    assert _me(site, laptop["access"]) == 200


def test_signing_out_everywhere_refuses_every_access_token(
    site: str, sign_in: Callable[..., Any]
) -> None:
    pairs = [sign_in(), sign_in()]
    for pair in pairs:
        _remembered(site, pair["access"])
    revocation.end_all_sessions(User.objects.get(email=EMAIL), reason="test")
    assert [_me(site, pair["access"]) for pair in pairs] == [401, 401]


def test_a_deactivated_user_is_refused(site: str, sign_in: Callable[..., Any]) -> None:
    pair = sign_in()
    _remembered(site, pair["access"])
    User.objects.filter(email=EMAIL).update(is_active=False)  # no signal: the row alone
    assert _me(site, pair["access"]) == 401


def test_a_deleted_family_or_user_is_refused(site: str, sign_in: Callable[..., Any]) -> None:
    first, second = sign_in(), sign_in()
    _remembered(site, first["access"])
    _remembered(site, second["access"])
    _family(first["access"]).delete()
    assert _me(site, first["access"]) == 401
    assert _me(site, second["access"]) == 200
    User.objects.filter(email=EMAIL).delete()
    assert _me(site, second["access"]) == 401


def test_the_family_must_be_the_users_own(site: str, sign_in: Callable[..., Any]) -> None:
    """Even signed with our key: another user's live family, or none, is refused."""
    alice = sign_in(EMAIL)
    UserFactory.create(email="bob@example.org")
    bob = sign_in("bob@example.org")
    bob_family = jwt.decode(bob["access"], options={"verify_signature": False})["fam"]
    assert _me(site, _ours(alice["access"], jti="a-fresh-jti")) == 200  # the baseline
    assert _me(site, _ours(alice["access"], fam=bob_family)) == 401
    assert _me(site, _ours(alice["access"], fam="no-such-family")) == 401
    bob_id = jwt.decode(bob["access"], options={"verify_signature": False})["sub"]
    assert _me(site, _ours(alice["access"], sub=bob_id)) == 401
    for sub in ("not-a-number", "99999999999999999999999", "1\x00", ""):
        assert _me(site, _ours(alice["access"], sub=sub)) == 401, sub
    for fam in ("fam\x00", 7, ["x"], {"x": 1}):
        assert _me(site, _ours(alice["access"], fam=fam)) == 401, fam


@pytest.mark.parametrize(
    ("staff", "created_ago", "idle_for", "status"),
    [
        (False, timedelta(days=29), timedelta(days=6), 200),
        (False, timedelta(days=30, seconds=1), timedelta(0), 401),  # the absolute limit
        (False, timedelta(days=8), timedelta(days=7, seconds=1), 401),  # idle
        (True, timedelta(hours=11), timedelta(minutes=29), 200),
        (True, timedelta(hours=12, seconds=1), timedelta(0), 401),  # the staff limits
        (True, timedelta(hours=1), timedelta(minutes=30, seconds=1), 401),
    ],
)
def test_a_family_past_its_limits_refuses_its_access_token(
    site: str,
    sign_in: Callable[..., Any],
    staff: bool,
    created_ago: timedelta,
    idle_for: timedelta,
    status: int,
) -> None:
    """The rule of ``family_is_live``, as the refresh and the list of devices apply it."""
    UserFactory.create(email=EMAIL, is_staff=staff)
    pair = sign_in()
    _remembered(site, pair["access"])
    now = timezone.now()
    TokenFamily.objects.filter(pk=_family(pair["access"]).pk).update(
        created_at=now - created_ago, last_used_at=now - idle_for
    )
    assert _me(site, pair["access"]) == status


def test_the_orm_reads_stand_in_where_one_statement_cannot(
    site: str, sign_in: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user model with a parent table, or a manager that filters rows: two ORM reads,
    the same answers."""
    statement = tokens._USER_AND_FAMILY
    monkeypatch.setattr(statement, "_written", {})
    monkeypatch.setattr(statement, "written_for", lambda model, connection: None)
    UserFactory.create(email="bob@example.org")
    alice, bob = sign_in(EMAIL), sign_in("bob@example.org")
    _remembered(site, alice["access"])
    bob_family = jwt.decode(bob["access"], options={"verify_signature": False})["fam"]
    assert _me(site, _ours(alice["access"], fam=bob_family)) == 401
    assert _me(site, _ours(alice["access"], sub="not-a-number")) == 401
    family = _family(alice["access"])
    TokenFamily.objects.filter(pk=family.pk).update(created_at=timezone.now() - timedelta(days=31))
    assert _me(site, alice["access"]) == 401
    TokenFamily.objects.filter(pk=family.pk).update(created_at=timezone.now())
    assert _me(site, alice["access"]) == 200
    TokenFamily.objects.filter(pk=family.pk).update(revoked_at=timezone.now())
    assert _me(site, alice["access"]) == 401
    User.objects.filter(email="bob@example.org").update(is_active=False)
    assert _me(site, bob["access"]) == 401


# The memo of verified tokens: what a hit still checks.


def test_a_remembered_token_is_refused_once_expired(
    site: str, sign_in: Callable[..., Any], frozen_clock: FrozenClock
) -> None:
    pair = sign_in()
    _remembered(site, pair["access"])
    frozen_clock.advance(seconds=300 + 29)  # its 5 minutes, within the 30 s leeway
    assert _me(site, pair["access"]) == 200
    frozen_clock.advance(seconds=2)
    assert _me(site, pair["access"]) == 401
    assert pair["access"] not in tokens._verified  # dropped, and verified in full since
    assert _me(site, pair["access"]) == 401


def test_a_remembered_token_is_refused_before_its_nbf(
    site: str, sign_in: Callable[..., Any], frozen_clock: FrozenClock
) -> None:
    pair = sign_in()
    _remembered(site, pair["access"])
    frozen_clock.current -= timedelta(seconds=31)  # the clocks disagree past the leeway
    assert _me(site, pair["access"]) == 401


def test_a_remembered_token_is_refused_once_its_key_is_removed(
    site: str, sign_in: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    pair = sign_in()
    _remembered(site, pair["access"])
    old_pem = app_settings.JWT_PRIVATE_KEYS[0]
    # Set on the settings object itself, so no setting_changed clears the memo: the hit
    # has to see the key gone on its own.
    monkeypatch.setattr(django_settings, "PASSWORDLESS_JWT_PRIVATE_KEYS", [new_jwt_key(), old_pem])
    assert _me(site, pair["access"]) == 200  # rotated: the old key still verifies
    assert pair["access"] in tokens._verified
    monkeypatch.setattr(django_settings, "PASSWORDLESS_JWT_PRIVATE_KEYS", [new_jwt_key()])
    assert _me(site, pair["access"]) == 401
    assert pair["access"] not in tokens._verified


def test_a_key_removed_through_the_settings_is_refused_too(
    site: str, sign_in: Callable[..., Any], settings: Any
) -> None:
    pair = sign_in()
    _remembered(site, pair["access"])
    settings.PASSWORDLESS_JWT_PRIVATE_KEYS = [new_jwt_key()]
    assert _me(site, pair["access"]) == 401


def _altered(token: str, segment: int, offset: int) -> str:
    """The token with one character changed inside one of its three parts.

    Never a part's last character, whose low bits base64 may drop (a different text that
    decodes to the same bytes).
    """
    parts = token.split(".")
    part = parts[segment]
    at = min(offset, len(part) - 2)
    swapped = "B" if part[at] != "B" else "C"
    parts[segment] = part[:at] + swapped + part[at + 1 :]
    return ".".join(parts)


@pytest.mark.parametrize("segment", [0, 1, 2])
@pytest.mark.parametrize("offset", [0, 7, 30, 60])
def test_a_token_with_one_altered_character_is_refused(
    site: str, sign_in: Callable[..., Any], segment: int, offset: int
) -> None:
    pair = sign_in()
    _remembered(site, pair["access"])
    forged = _altered(pair["access"], segment, offset)
    assert forged != pair["access"]
    assert _me(site, forged) == 401
    assert forged not in tokens._verified  # a failure is never remembered
    assert _me(site, pair["access"]) == 200  # and the real token is unharmed


def test_a_request_with_a_remembered_token_is_one_statement_and_asks_no_cache(
    site: str, sign_in: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    pair = sign_in()
    _remembered(site, pair["access"])
    commands: list[bytes] = []
    send = redis.connection.AbstractConnection.send_packed_command

    def record(self: Any, command: Any, check_health: bool = True) -> None:
        commands.append(b"".join(command) if isinstance(command, list) else bytes(command))
        send(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", record)
    client = Client()
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    assert response.status_code == 200
    (statement,) = [q["sql"] for q in queries]
    assert "passwordless_tokenfamily" in statement and "revoked_at" in statement
    assert not [c for c in commands if b"deny" in c], commands


# The memo itself: bounded, and safe across threads.


def _entry(exp: int = 2**40) -> Any:
    return tokens._Verified({"sub": "1"}, object(), "kid", 0, 0, exp)


def test_the_memo_is_bounded_and_evicts_the_oldest_first() -> None:
    memo = tokens._VerifiedTokens()
    memo.MAX = 8
    for i in range(20):
        memo.remember(f"token-{i}", _entry())
    assert len(memo) == 8
    assert [f"token-{i}" in memo for i in (0, 11, 12, 19)] == [False, False, True, True]
    memo.clear()
    assert len(memo) == 0


def test_the_default_bound() -> None:
    assert tokens._VerifiedTokens.MAX == 4096


def test_the_memo_is_safe_across_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    memo = tokens._VerifiedTokens()
    memo.MAX = 16
    entry = _entry()
    monkeypatch.setattr(keys, "verification_key", lambda kid: entry.key)
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(n: int) -> None:
        start.wait()
        try:
            for i in range(3000):
                token = f"token-{(i * 7 + n) % 64}"
                if i % 3:
                    memo.remember(token, entry)
                else:
                    memo.claims(token, timezone.now())
                if i % 500 == n:
                    memo.clear()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(memo) <= 16


def test_a_hit_hands_out_a_copy_of_the_claims(monkeypatch: pytest.MonkeyPatch) -> None:
    memo = tokens._VerifiedTokens()
    entry = _entry()
    monkeypatch.setattr(keys, "verification_key", lambda kid: entry.key)
    memo.remember("t", entry)
    claims = memo.claims("t", timezone.now())
    assert claims == {"sub": "1"}
    claims["sub"] = "2"
    assert memo.claims("t", timezone.now()) == {"sub": "1"}


@pytest.fixture
def memo_emptied() -> Iterator[None]:
    tokens._verified.clear()
    yield
    tokens._verified.clear()


def test_a_setting_change_empties_the_memo(memo_emptied: None, settings: Any) -> None:
    tokens._verified.remember("t", _entry())
    settings.PASSWORDLESS_JWT_LEEWAY = 10
    assert "t" not in tokens._verified
