"""Passkeys in-process: the staff rule on a second AdminSite, the
relying party's origin for SITE_URL spellings a browser never sends, and a passkey name
that PostgreSQL refuses."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import include, path

from accounts.models import User
from passwordless.models import Passkey
from passwordless.services import passkeys
from tests.conftest import Delivered
from tests.factories import UserFactory
from tests.webauthn_authenticator import SoftAuthenticator

ORIGIN = "http://testserver"

# The project's URLconf, and a second AdminSite as projects mount one ("staff tools"):
# the same ``admin`` application namespace, another instance namespace.
second_site = admin.AdminSite(name="second")
second_site.register(User)
urlpatterns = [
    path("tools/", second_site.urls),
    path("", include("config.urls")),
]


def _post(client: Client, url: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(url, json.dumps(body or {}), content_type="application/json")


def _sign_in(client: Client, start_sign_in: Callable[..., Delivered | None], email: str) -> None:
    delivered = start_sign_in(email, client)
    assert delivered is not None
    assert client.post("/auth/code/", {"code": delivered.code}).status_code == 302


@pytest.mark.django_db
def test_the_staff_passkey_rule_covers_every_admin_site(
    client: Client, start_sign_in: Callable[..., Delivered | None], settings: Any
) -> None:
    settings.ROOT_URLCONF = __name__
    settings.PASSWORDLESS_PASSKEYS_REQUIRED_FOR_STAFF = True
    UserFactory.create(email="admin@example.org", is_staff=True, is_superuser=True)
    _sign_in(client, start_sign_in, "admin@example.org")  # by emailed code, no passkey
    assert client.get("/admin/").status_code == 302  # the default site: gated
    # The second site's pages are the admin too (its step-up middleware says so).
    page = client.get("/tools/accounts/user/")
    assert page.status_code == 302, "a second AdminSite is reachable without a passkey"
    assert page.headers["Location"].startswith("/auth/passkeys/staff/")


@pytest.mark.parametrize(
    ("site_url", "browser_origin"),
    [
        ("https://Login.Example.com", "https://login.example.com"),
        ("https://login.example.com:443", "https://login.example.com"),
        ("HTTPS://login.example.com", "https://login.example.com"),
    ],
)
def test_the_accepted_origin_is_the_one_browsers_send(
    settings: Any, site_url: str, browser_origin: str
) -> None:
    """A browser serializes its origin lowercased, without the default port: a SITE_URL
    spelled otherwise (that links and the system checks accept) refuses every passkey."""
    settings.PASSWORDLESS_SITE_URL = site_url
    rp_id, origin = passkeys.relying_party()
    assert rp_id == "login.example.com"
    assert origin == browser_origin


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["\x00", "my\x00key"])
def test_a_passkey_name_with_a_nul_is_cleaned_not_a_503(
    client: Client, start_sign_in: Callable[..., Delivered | None], name: str
) -> None:
    _sign_in(client, start_sign_in, "alice@example.org")
    key = SoftAuthenticator(origin=ORIGIN, rp_id="testserver")
    begun = _post(client, "/auth/passkeys/register/begin/").json()
    body = {
        "challenge_id": begun["challenge_id"],
        "credential": key.register(begun["options"]),
        "name": name,
    }
    added = _post(client, "/auth/passkeys/register/finish/", body)
    assert added.status_code == 201, added.status_code
    passkey = Passkey.objects.get()
    renamed = client.post("/auth/passkeys/", {"passkey": passkey.pk, "name": name})
    assert renamed.status_code in (302, 400), renamed.status_code  # renamed, or a clear error
    assert "\x00" not in Passkey.objects.get().name
