"""Attacks on access and refresh tokens, over HTTP against the live server. Each gets a 401."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from passwordless import keys
from passwordless.models import TokenFamily
from tests.api_client import ApiClient
from tests.conftest import Delivered, FrozenClock
from tests.stack import new_jwt_key

pytestmark = pytest.mark.django_db(transaction=True)

Mailbox = Callable[..., Delivered]


@pytest.fixture
def signed_in(site: str, mailbox: Mailbox) -> dict[str, Any]:
    api = ApiClient(site)
    request_id = api.send("alice@example.org").json()["request_id"]
    pair = api.verify_code(request_id, mailbox("alice@example.org").code).json()
    assert "access" in pair
    return dict(pair)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(access: str, **changes: Any) -> dict[str, Any]:
    claims = jwt.decode(access, options={"verify_signature": False})
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _ours(settings: Any, claims: dict[str, Any], **headers: Any) -> str:
    """A token signed with the server's own key: only the change under test is wrong."""
    key = load_pem_private_key(settings.PASSWORDLESS_JWT_PRIVATE_KEYS[0].encode(), None)
    assert isinstance(key, Ed25519PrivateKey)
    header = {"kid": keys.signing_key().kid, "typ": "at+jwt", **headers}
    return jwt.encode(claims, key, algorithm="EdDSA", headers=header)


def _me(site: str, token: str) -> int:
    return ApiClient(site).me(token).status_code


def test_a_well_formed_token_is_accepted(
    site: str, settings: Any, signed_in: dict[str, Any]
) -> None:
    # The baseline the attacks below differ from by one thing each.
    assert _me(site, signed_in["access"]) == 200
    assert _me(site, _ours(settings, _claims(signed_in["access"], jti="fresh-jti"))) == 200
    claims = _claims(signed_in["access"])
    assert claims["exp"] - claims["iat"] == 300
    assert jwt.get_unverified_header(signed_in["access"])["typ"] == "at+jwt"


def test_alg_none(site: str, signed_in: dict[str, Any]) -> None:
    header = {"alg": "none", "typ": "at+jwt", "kid": keys.signing_key().kid}
    body = _claims(signed_in["access"])
    token = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}."
    assert _me(site, token) == 401


def test_hs256_signed_with_the_public_key(site: str, signed_in: dict[str, Any]) -> None:
    public = keys.signing_key().public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "at+jwt", "kid": keys.signing_key().kid}
    body = _claims(signed_in["access"])
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}"
    for secret in (public, public.strip(), keys.signing_key().jwk()["x"].encode()):
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        assert _me(site, f"{signing_input}.{_b64(mac)}") == 401


def test_a_key_that_is_not_ours(site: str, signed_in: dict[str, Any]) -> None:
    attacker = Ed25519PrivateKey.generate()
    for kid in (keys.signing_key().kid, "attacker", None):
        headers = {"typ": "at+jwt", **({"kid": kid} if kid else {})}
        token = jwt.encode(_claims(signed_in["access"]), attacker, "EdDSA", headers=headers)
        assert _me(site, token) == 401


@pytest.mark.parametrize("header", ["jku", "x5u", "jwk"])
def test_key_location_headers_are_refused(
    site: str, settings: Any, signed_in: dict[str, Any], header: str
) -> None:
    value: Any = "https://evil.example/keys.json"
    if header == "jwk":
        value = keys.signing_key().jwk()
    assert _me(site, _ours(settings, _claims(signed_in["access"]), **{header: value})) == 401


def test_expired_beyond_the_leeway(site: str, settings: Any, signed_in: dict[str, Any]) -> None:
    now = int(time.time())
    late = _claims(signed_in["access"], iat=now - 400, nbf=now - 400, exp=now - 61)
    assert _me(site, _ours(settings, late)) == 401
    within = _claims(signed_in["access"], iat=now - 300, nbf=now - 300, exp=now - 10)
    assert _me(site, _ours(settings, within)) == 200


@pytest.mark.parametrize(
    "changes",
    [
        {"aud": "https://other.example"},
        {"aud": ["https://other.example"]},
        {"iss": "http://localhost.evil.example"},
        {"iss": "http://localhost:1/"},
        {"sub": None},
        {"jti": None},
        {"fam": None},
        {"nbf": int(time.time()) + 3600},
    ],
)
def test_wrong_or_missing_claims(
    site: str, settings: Any, signed_in: dict[str, Any], changes: dict[str, Any]
) -> None:
    if "iss" in changes:
        changes = {"iss": changes["iss"].replace("http://localhost", site.rsplit(":", 1)[0])}
    assert _me(site, _ours(settings, _claims(signed_in["access"], **changes))) == 401


def test_wrong_token_type(site: str, settings: Any, signed_in: dict[str, Any]) -> None:
    assert _me(site, _ours(settings, _claims(signed_in["access"]), typ="JWT")) == 401


def test_refresh_and_access_tokens_do_not_stand_in_for_each_other(
    site: str, signed_in: dict[str, Any]
) -> None:
    api = ApiClient(site)
    assert _me(site, signed_in["refresh"]) == 401
    swapped = api.post("/api/auth/token/refresh", {"refresh": signed_in["access"]})
    assert swapped.status_code == 401


def test_token_in_the_query_string_is_ignored(site: str, signed_in: dict[str, Any]) -> None:
    api = ApiClient(site)
    for name in ("access_token", "token", "jwt"):
        assert api.get(f"/api/auth/me?{name}={signed_in['access']}").status_code == 401


def test_refresh_rotates_and_a_concurrent_duplicate_gets_the_same_pair(
    site: str, signed_in: dict[str, Any]
) -> None:
    api = ApiClient(site)
    first = api.post("/api/auth/token/refresh", {"refresh": signed_in["refresh"]})
    assert first.status_code == 200
    assert first.json()["refresh"] != signed_in["refresh"]
    duplicate = api.post("/api/auth/token/refresh", {"refresh": signed_in["refresh"]})
    assert duplicate.json() == first.json()
    assert _me(site, first.json()["access"]) == 200
    assert not TokenFamily.objects.filter(revoked_at__isnull=False).exists()


def test_a_refresh_replayed_after_the_grace_window_revokes_the_family(
    site: str, signed_in: dict[str, Any], frozen_clock: FrozenClock
) -> None:
    api = ApiClient(site)
    rotated = api.post("/api/auth/token/refresh", {"refresh": signed_in["refresh"]}).json()
    frozen_clock.advance(seconds=31)
    replay = api.post("/api/auth/token/refresh", {"refresh": signed_in["refresh"]})
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "refresh_reused"
    # The whole family ends: the successor refresh and every access token of it.
    assert api.post("/api/auth/token/refresh", {"refresh": rotated["refresh"]}).status_code == 401
    assert _me(site, rotated["access"]) == 401
    assert _me(site, signed_in["access"]) == 401
    assert TokenFamily.objects.get().revoked_reason == "refresh_reused"


@pytest.mark.parametrize(("days", "refreshes"), [(8, False), (31, True)])
def test_refresh_families_end_after_idle_and_absolute_limits(
    site: str, signed_in: dict[str, Any], frozen_clock: FrozenClock, days: int, refreshes: bool
) -> None:
    api = ApiClient(site)
    token = signed_in["refresh"]
    elapsed = 0
    while refreshes and elapsed + 6 < 30:  # stay active: refresh every 6 days
        frozen_clock.advance(days=6)
        elapsed += 6
        response = api.post("/api/auth/token/refresh", {"refresh": token})
        assert response.status_code == 200, elapsed
        token = response.json()["refresh"]
    frozen_clock.advance(days=days - elapsed)
    assert api.post("/api/auth/token/refresh", {"refresh": token}).status_code == 401


def test_key_rotation(site: str, settings: Any, signed_in: dict[str, Any]) -> None:
    old_pem = settings.PASSWORDLESS_JWT_PRIVATE_KEYS[0]
    new_pem = new_jwt_key()
    settings.PASSWORDLESS_JWT_PRIVATE_KEYS = [new_pem, old_pem]
    assert _me(site, signed_in["access"]) == 200  # the old key still verifies
    jwks = ApiClient(site).get("/.well-known/jwks.json").json()
    assert len(jwks["keys"]) == 2
    settings.PASSWORDLESS_JWT_PRIVATE_KEYS = [new_pem]
    assert _me(site, signed_in["access"]) == 401  # its key was removed
