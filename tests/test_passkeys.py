"""Passkeys in-process: the system checks, the user handle, the offer, and the staff gate.

The attacks are in tests/test_attack_passkeys.py (over HTTP); the browser's own WebAuthn in
tests/test_browser_passkeys.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client, override_settings

from passwordless.checks import check_passkeys
from passwordless.models import Passkey, UserSession
from passwordless.services import passkeys
from tests.conftest import Delivered
from tests.factories import UserFactory
from tests.webauthn_authenticator import SoftAuthenticator

ORIGIN = "http://testserver"
MIDDLEWARE = "passwordless.web.staff_passkeys.StaffPasskeyMiddleware"


@pytest.mark.parametrize(
    ("values", "ids"),
    [
        ({"PASSWORDLESS_SITE_URL": None}, ["passwordless.E030"]),
        ({"PASSWORDLESS_SITE_URL": "http://127.0.0.1:8000"}, ["passwordless.W030"]),
        ({"PASSWORDLESS_SITE_URL": "http://[::1]:8000"}, ["passwordless.W030"]),
        ({"PASSWORDLESS_SITE_URL": None, "PASSWORDLESS_PASSKEYS": False}, []),
        ({"PASSWORDLESS_SITE_URL": "https://login.example.com"}, []),
        (
            {"PASSWORDLESS_PASSKEYS_REQUIRED_FOR_STAFF": True, "PASSWORDLESS_PASSKEYS": False},
            ["passwordless.E031"],
        ),
    ],
)
def test_the_passkey_checks_fire(values: dict[str, Any], ids: list[str]) -> None:
    with override_settings(**values):
        assert [m.id for m in check_passkeys(None)] == ids


def test_the_staff_rule_needs_its_middleware(settings: Any) -> None:
    settings.PASSWORDLESS_PASSKEYS_REQUIRED_FOR_STAFF = True
    assert check_passkeys(None) == []
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != MIDDLEWARE]
    assert [m.id for m in check_passkeys(None)] == ["passwordless.E031"]


@pytest.mark.django_db
def test_the_user_handle_is_keyed_and_never_the_address(settings: Any) -> None:
    alice, bob = UserFactory.create(), UserFactory.create()
    handle = passkeys.user_handle(alice)
    assert len(handle) == 32
    assert handle == passkeys.user_handle(alice) != passkeys.user_handle(bob)
    assert alice.email.encode() not in handle
    settings.PASSWORDLESS_HASH_KEY = "another key"
    assert passkeys.user_handle(alice) != handle


def test_the_relying_party_is_the_site_url(settings: Any) -> None:
    settings.PASSWORDLESS_SITE_URL = "https://login.example.com:8443/"
    assert passkeys.relying_party() == ("login.example.com", "https://login.example.com:8443")


def _post(client: Client, path: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(path, json.dumps(body or {}), content_type="application/json")


def _sign_in(client: Client, start_sign_in: Callable[..., Delivered | None], email: str) -> None:
    delivered = start_sign_in(email, client)
    assert delivered is not None
    assert client.post("/auth/code/", {"code": delivered.code}).status_code == 302


def _add_passkey(client: Client) -> SoftAuthenticator:
    key = SoftAuthenticator(origin=ORIGIN, rp_id="testserver")
    begun = _post(client, "/auth/passkeys/register/begin/").json()
    answer = key.register(begun["options"])
    body = {"challenge_id": begun["challenge_id"], "credential": answer}
    assert _post(client, "/auth/passkeys/register/finish/", body).status_code == 201
    return key


@pytest.mark.django_db
def test_the_offer_shows_after_an_email_sign_in_until_declined(
    client: Client, start_sign_in: Callable[..., Delivered | None]
) -> None:
    _sign_in(client, start_sign_in, "alice@example.org")
    home = client.get("/")
    assert b"Sign in faster next time?" in home.content
    declined = client.post("/auth/passkeys/offer/", {"next": "/"})
    assert declined.status_code == 302
    assert declined.headers["Location"] == "/"
    assert b"Sign in faster next time?" not in client.get("/").content


@pytest.mark.django_db
def test_the_offer_ends_once_a_passkey_is_added_here(
    client: Client, start_sign_in: Callable[..., Delivered | None], settings: Any
) -> None:
    _sign_in(client, start_sign_in, "alice@example.org")
    _add_passkey(client)
    assert b"Sign in faster next time?" not in client.get("/").content
    page = client.get("/auth/passkeys/")
    assert page.status_code == 200
    assert b"never used yet" in page.content
    settings.PASSWORDLESS_PASSKEYS = False
    other = Client()
    _sign_in(other, start_sign_in, "bob@example.org")
    assert b"Sign in faster next time?" not in other.get("/").content
    assert b"webauthn" not in other.get("/auth/login/").content


@pytest.mark.django_db
def test_the_login_page_offers_passkeys(client: Client) -> None:
    page = client.get("/auth/login/").content.decode()
    assert 'autocomplete="username webauthn"' in page
    assert "Sign in with a passkey" in page
    assert "passwordless/passkeys.js" in page
    assert "<script>" not in page  # no inline script: the CSP forbids it


@pytest.mark.django_db
def test_staff_reach_the_admin_only_after_a_passkey(
    client: Client, start_sign_in: Callable[..., Delivered | None], settings: Any
) -> None:
    settings.PASSWORDLESS_PASSKEYS_REQUIRED_FOR_STAFF = True
    UserFactory.create(email="admin@example.org", is_staff=True, is_superuser=True)
    _sign_in(client, start_sign_in, "admin@example.org")
    key = _add_passkey(client)  # fresh from the sign-in
    refused = client.get("/admin/")
    assert refused.status_code == 302
    assert refused.headers["Location"] == "/auth/passkeys/staff/?next=%2Fadmin%2F"
    assert b"Use your passkey" in client.get(refused.headers["Location"]).content

    begun = _post(client, "/auth/passkeys/reauth/begin/").json()
    body = {"challenge_id": begun["challenge_id"], "credential": key.assert_(begun["options"])}
    body["next"] = "/admin/"
    done = _post(client, "/auth/passkeys/reauth/finish/", body)
    assert done.json() == {"redirect": "/admin/"}
    assert client.get("/admin/").status_code == 200

    # A session signed in with the passkey is let in for as long as it lasts.
    other = Client()
    begun = _post(other, "/auth/passkeys/auth/begin/").json()
    body = {"challenge_id": begun["challenge_id"], "credential": key.assert_(begun["options"])}
    assert _post(other, "/auth/passkeys/auth/finish/", body).status_code == 200
    assert UserSession.objects.filter(method="passkey").count() == 1
    assert other.get("/admin/").status_code == 200
    assert Passkey.objects.get().sign_count == 2
