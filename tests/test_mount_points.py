"""The app finds where the project mounted it (``reverse()``), never assumes ``/api/auth/``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from passwordless import log
from passwordless.conf import app_settings
from passwordless.log import redact
from passwordless.testing import read_sign_in_mail
from tests.api_client import challenge_of

pytestmark = pytest.mark.django_db

API = "/v2/auth/"


@pytest.fixture(autouse=True)
def mounted_elsewhere(settings: Any) -> None:
    settings.ROOT_URLCONF = "tests.mounted_urls"


def _post(client: Client, path: str, body: dict[str, str], **headers: str) -> Any:
    return client.post(path, json.dumps(body), content_type="application/json", headers=headers)


def test_the_openapi_document_lists_the_mounted_paths(client: Client) -> None:
    paths = set(client.get(API + "openapi.json").json()["paths"])
    assert {API + "csrf", API + "requests/{request_id}", API + "sessions/{session_id}"} <= paths
    assert not [p for p in paths if p.startswith("/api/")]


def test_the_csrf_error_names_the_mounted_csrf_view() -> None:
    client = Client(enforce_csrf_checks=True)
    client.get(API + "csrf")  # the cookie, without the header that must echo it
    body = {"request_id": "x", "code": "123456", "mode": "session"}
    response = _post(client, API + "verify/code", body)
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "csrf_failed"
    assert f"Get a token from {API}csrf " in error["message"]


def test_the_mounted_link_and_poll_paths_are_redacted() -> None:
    line = f"GET /signin/link/tok3n/ then GET {API}requests/r1d?mode=jwt"
    clean = f"GET /signin/link/[redacted]/ then GET {API}requests/[redacted]?mode=jwt"
    assert redact(line) == clean
    # Beside the default patterns, the reversed prefixes themselves.
    mounted = log._mounted_pattern()
    assert mounted is not None
    assert mounted.sub(log._REDACTED, f"{API}requests/r1d") == f"{API}requests/[redacted]"


def test_bearer_tokens_authenticate_on_the_mounted_api(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    assert app_settings.BEARER_PATH_PREFIXES == (API,)
    verifier = "v" * 48
    with django_capture_on_commit_callbacks(execute=True):
        sent = _post(
            client,
            API + "send",
            {
                "email": "alice@example.org",
                "code_challenge": challenge_of(verifier),
                "code_challenge_method": "S256",
            },
        )
    assert sent.status_code == 202, sent.content
    code = read_sign_in_mail(mail.outbox[-1]).code
    body = {"request_id": sent.json()["request_id"], "code": code, "mode": "jwt"}
    pair = _post(Client(), API + "verify/code", body).json()
    me = Client().get(API + "me", headers={"Authorization": f"Bearer {pair['access']}"})
    assert me.status_code == 200
    assert me.json()["user"]["email"] == "alice@example.org"


def test_bearer_prefix_falls_back_when_the_api_is_not_mounted(settings: Any) -> None:
    settings.ROOT_URLCONF = "tests.unmounted_api_urls"
    assert app_settings.BEARER_PATH_PREFIXES == ("/api/",)
    settings.PASSWORDLESS_BEARER_PATH_PREFIXES = ["/custom/"]
    assert app_settings.BEARER_PATH_PREFIXES == ("/custom/",)
