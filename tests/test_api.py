"""The JSON API over HTTP: both modes, bad input, CSRF and CORS, approval polling, OpenAPI."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import requests
from django.urls import URLPattern, URLResolver

from passwordless.api import urls as api_urls
from passwordless.api.openapi import openapi_document
from passwordless.models import AuthEvent, LoginRequest
from tests.api_client import ApiClient
from tests.attacker import Browser
from tests.conftest import Delivered
from tests.factories import UserFactory
from tests.helpers import link_token

pytestmark = pytest.mark.django_db(transaction=True)

Mailbox = Callable[..., Delivered]


def test_jwt_mode_end_to_end(site: str, mailbox: Mailbox) -> None:
    api = ApiClient(site)
    sent = api.send("Alice@Example.org")
    assert sent.status_code == 202
    body = sent.json()
    assert set(body) == {"request_id", "expires_in", "resend_after"}
    assert (body["expires_in"], body["resend_after"]) == (600, 60)

    signed = api.verify_code(body["request_id"], mailbox("alice@example.org").code)
    assert signed.status_code == 200
    pair = signed.json()
    assert pair["token_type"] == "Bearer" and pair["expires_in"] == 300
    assert pair["user"]["email"] == "alice@example.org"
    assert "sessionid" not in signed.cookies

    me = api.me(pair["access"])
    assert me.status_code == 200 and me.json()["user"]["email"] == "alice@example.org"
    assert api.me().status_code == 401

    out = api.post(
        "/api/auth/logout",
        {"refresh": pair["refresh"]},
        {"Authorization": f"Bearer {pair['access']}"},
    )
    assert out.status_code == 204
    assert api.me(pair["access"]).status_code == 401  # revoked at once
    assert api.post("/api/auth/token/refresh", {"refresh": pair["refresh"]}).status_code == 401


def test_session_mode_with_csrf_end_to_end(site: str, mailbox: Mailbox) -> None:
    spa = ApiClient(site, browser=True)
    request_id = spa.send("bob@example.org").json()["request_id"]
    before = spa.session.cookies.get("sessionid")
    signed = spa.verify_code(request_id, mailbox("bob@example.org").code, mode="session")
    assert signed.status_code == 200
    assert signed.json() == {
        "user": {"id": signed.json()["user"]["id"], "email": "bob@example.org"}
    }
    assert spa.session.cookies.get("sessionid") not in (None, before)  # cycled
    assert spa.me().json()["user"]["email"] == "bob@example.org"
    assert spa.post("/api/auth/logout").status_code == 204
    assert spa.me().status_code == 401


def test_session_mode_requires_the_csrf_token(site: str, mailbox: Mailbox) -> None:
    spa = ApiClient(site, browser=True)
    request_id = spa.send("carol@example.org").json()["request_id"]
    code = mailbox("carol@example.org").code
    forged = spa.post(
        "/api/auth/verify/code",
        {"request_id": request_id, "code": code, "mode": "session"},
        headers={"X-CSRFToken": "wrong"},
    )
    assert forged.status_code == 403
    assert forged.json()["error"]["code"] == "csrf_failed"
    # Login CSRF: even a cookieless client cannot ask for a session without the token.
    bare = ApiClient(site)
    response = bare.post(
        "/api/auth/verify/code", {"request_id": request_id, "code": code, "mode": "session"}
    )
    assert response.status_code == 403
    assert LoginRequest.objects.get().status == "pending"


def test_link_in_jwt_mode(site: str, mailbox: Mailbox) -> None:
    api = ApiClient(site)
    api.send("dave@example.org")
    signed = api.verify_link(link_token(mailbox("dave@example.org").link))
    assert signed.status_code == 200 and "access" in signed.json()
    again = api.verify_link(link_token(mailbox("dave@example.org").link))
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_used"


def test_unknown_and_known_addresses_get_identical_answers(site: str) -> None:
    UserFactory.create(email="known@example.org")
    answers = []
    for email in ("known@example.org", "unknown@example.org"):
        response = ApiClient(site).send(email)
        body = {k: v for k, v in response.json().items() if k != "request_id"}
        headers = sorted(
            (k, v)
            for k, v in response.headers.items()
            if k not in {"Date", "Content-Length", "Expires", "Set-Cookie", "X-Request-ID"}
        )
        headers.append(("cookies", ",".join(sorted(response.cookies.keys()))))
        answers.append((response.status_code, body, headers, len(response.json()["request_id"])))
    assert answers[0] == answers[1]


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        ("{not json", "application/json", "json_invalid"),
        ("[1, 2]", "application/json", "json_invalid"),
        ('{"email": "a@example.org"}', "text/plain", "content_type_invalid"),
        ("email=a@example.org", "application/x-www-form-urlencoded", "content_type_invalid"),
        ("{}", "application/json", "field_missing"),
        ('{"email": 42}', "application/json", "field_invalid"),
        ('{"email": ["a@example.org"]}', "application/json", "field_invalid"),
        ('{"email": "nope"}', "application/json", "email_invalid"),
        ('{"email": "' + "a" * 300 + '@example.org"}', "application/json", "email_invalid"),
        (
            '{"email": "a@example.org", "pad": "' + "x" * 20000 + '"}',
            "application/json",
            "body_too_large",
        ),
        ("\xff\xfe", "application/json", "json_invalid"),
    ],
)
def test_malformed_requests_get_a_clear_400(
    site: str, body: str, content_type: str, code: str
) -> None:
    response = requests.post(
        f"{site}/api/auth/send",
        data=body.encode("latin-1"),
        headers={"Content-Type": content_type},
        timeout=20,
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        (
            "/api/auth/verify/code",
            {"request_id": "x", "code": "12ab56", "mode": "jwt"},
            "code_malformed",
        ),
        ("/api/auth/verify/code", {"request_id": 5, "code": "123456"}, "field_invalid"),
        ("/api/auth/verify/code", {"code": "123456"}, "field_missing"),
        (
            "/api/auth/verify/code",
            {"request_id": "x", "code": "123456", "mode": "x"},
            "field_invalid",
        ),
        ("/api/auth/verify/link", {"token": None}, "field_missing"),
        ("/api/auth/resend", {"request_id": "nope"}, "request_not_found"),
        # A NUL, like any control character, is refused by the body's parser.
        ("/api/auth/resend", {"request_id": "\u0000ab"}, "field_invalid"),
        (
            "/api/auth/verify/code",
            {"request_id": "a\u0000", "code": "123456", "mode": "jwt"},
            "field_invalid",
        ),
        ("/api/auth/token/refresh", {"refresh": "nope"}, "token_invalid"),
    ],
)
def test_bad_fields_get_clear_errors(site: str, path: str, body: Any, code: str) -> None:
    response = ApiClient(site).post(path, body)
    assert response.status_code in (400, 401, 404)
    assert response.json()["error"]["code"] == code


def test_wrong_methods_and_unknown_requests(site: str) -> None:
    api = ApiClient(site)
    assert api.get("/api/auth/send").status_code == 405
    assert api.get("/api/auth/send").json()["error"]["code"] == "method_not_allowed"
    missing = api.get("/api/auth/requests/doesnotexist")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "request_not_found"


def test_rate_limits_answer_429_with_retry_after_in_header_and_body(site: str) -> None:
    api = ApiClient(site)
    assert api.send("busy@example.org").status_code == 202
    limited = api.send("busy@example.org")
    assert limited.status_code == 429
    error = limited.json()["error"]
    assert error["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) == error["retry_after"] > 0


def test_poll_signs_in_the_api_client_after_approval_exactly_once(
    site: str, mailbox: Mailbox
) -> None:
    app = ApiClient(site)
    request_id = app.send("erin@example.org").json()["request_id"]
    waiting = app.get(f"/api/auth/requests/{request_id}?mode=jwt").json()
    assert waiting["status"] == "pending" and waiting["delivery"] == "sent"
    number = waiting["match_number"]

    phone = Browser(site)
    phone.open_link(mailbox("erin@example.org").link)
    assert phone.approve(number).status_code == 200

    # The poll's URL holds only the request id: it says "approved" and hands out nothing.
    polled = app.get(f"/api/auth/requests/{request_id}?mode=jwt")
    assert polled.status_code == 200 and polled.json()["status"] == "approved"
    assert "access" not in polled.json()
    first = app.collect(request_id)
    assert first.status_code == 200
    assert first.json()["status"] == "signed_in" and "access" in first.json()
    second = app.collect(request_id)
    assert second.status_code == 409  # the pair is given once
    assert AuthEvent.objects.filter(kind="signed_in", method="approval").count() == 1


def test_cors_allows_only_listed_origins(site: str, settings: Any) -> None:
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-csrftoken",
    }
    allowed = requests.options(
        f"{site}/api/auth/send",
        headers={"Origin": "https://app.example.com", **preflight},
        timeout=20,
    )
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    other = requests.options(
        f"{site}/api/auth/send",
        headers={"Origin": "https://evil.example", **preflight},
        timeout=20,
    )
    assert "Access-Control-Allow-Origin" not in other.headers


def test_jwks_publishes_the_public_key_with_its_kid(site: str) -> None:
    jwks = requests.get(f"{site}/.well-known/jwks.json", timeout=20).json()
    (key,) = jwks["keys"]
    assert key["kty"] == "OKP" and key["alg"] == "EdDSA" and key["kid"]
    assert "d" not in key  # never the private part


def _routes() -> set[str]:
    found = set()
    for pattern in api_urls.urlpatterns:
        assert isinstance(pattern, URLPattern | URLResolver)
        route = str(pattern.pattern)
        found.add("/api/auth/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route))
    return found


def test_openapi_documents_every_route(site: str) -> None:
    served = requests.get(f"{site}/api/auth/openapi.json", timeout=20).json()
    assert served["openapi"] == "3.1.0"
    assert served == openapi_document()
    documented = set(served["paths"])
    assert _routes() <= documented
    assert documented - _routes() == {"/.well-known/jwks.json"}
