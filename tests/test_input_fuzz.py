"""Arbitrary text in every JSON field of every API endpoint: never a 500.

JSON can carry what no form post can: ``"\\ud800"`` decodes to a lone surrogate,
which nothing downstream can encode (the token's hash, the database), and
``"\\u0000"`` to a NUL. Both, and every other control character, answer 400
``field_invalid`` from the one parser every view reads its body with. The
endpoints and their fields are read from the OpenAPI document, so a field added
there is fuzzed here too.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

import pytest
from django.core.cache import caches
from django.test import Client
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from passwordless.api.openapi import openapi_document
from passwordless.forms import LoginForm

pytestmark = pytest.mark.django_db

CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
VERIFIER = "dBjftJeZ4CVP-mJ92K9mRefK3ooiUxQt5ZBLFm83HVEeY"
#: A body each endpoint accepts as far as parsing goes (``mode: "jwt"``, so that no CSRF
#: check answers first); one field at a time is replaced by arbitrary text.
VALID: dict[str, Any] = {
    "email": "fuzz@example.org",
    "next": "/account/",
    "code_challenge": CHALLENGE,
    "code_challenge_method": "S256",
    "request_id": "AAAAAAAAAAAAAAAAAAAAAA",
    "code": "123456",
    "mode": "jwt",
    "token": "T" * 43,
    "code_verifier": VERIFIER,
    "refresh": "rt_" + "R" * 43,
}
#: Every code point, lone surrogates and control characters included, with the
#: characters that broke things (or could) drawn often.
NASTY = st.sampled_from(["\ud800", "\udfff", "\x00", "\n", "\r", "\x1b", "\x7f", "\x85", "\ufdfa"])
TEXT = st.lists(st.one_of(st.characters(exclude_categories=()), NASTY), max_size=60).map("".join)
_NOT_TEXT = re.compile("[\ud800-\udfff\x00-\x1f\x7f-\x9f]")


def _json_bodies() -> list[tuple[str, str, str]]:
    """``(method, path, field)`` for every property of every JSON request body."""
    document = openapi_document()
    schemas = document["components"]["schemas"]
    cases = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            schema = content.get("application/json", {}).get("schema")
            if schema is None:
                continue
            body = schemas[schema["$ref"].rsplit("/", 1)[1]]
            url = path.replace("{request_id}", VALID["request_id"])
            cases += [(method.upper(), url, field) for field in body["properties"]]
    return cases


CASES = _json_bodies()


def test_every_endpoint_with_a_body_is_covered() -> None:
    covered = {(method, path) for method, path, _ in CASES}
    assert covered == {
        ("POST", "/api/auth/send"),
        ("POST", "/api/auth/resend"),
        ("POST", "/api/auth/verify/code"),
        ("POST", "/api/auth/verify/link"),
        ("POST", f"/api/auth/requests/{VALID['request_id']}"),
        ("POST", "/api/auth/token/refresh"),
        ("POST", "/api/auth/logout"),
    }
    assert len(CASES) == 15


def _post(method: str, path: str, body: dict[str, Any]) -> Any:
    caches["ratelimit"].clear()  # each example on a fresh budget: a 429 would hide the answer
    # A fresh client each time: a cookie from an earlier answer would ask for CSRF first.
    client = Client(raise_request_exception=False)
    return client.generic(method, path, json.dumps(body), content_type="application/json")


@pytest.mark.parametrize(("method", "path", "field"), CASES)
@hypothesis_settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(keep_valid_start=st.booleans(), text=TEXT)
@example(keep_valid_start=True, text="\ud800")
@example(keep_valid_start=False, text="\ud800")
@example(keep_valid_start=True, text="\x00")
@example(keep_valid_start=False, text="\udfff\ud800")
def test_arbitrary_text_in_any_field_is_never_a_500(
    method: str, path: str, field: str, keep_valid_start: bool, text: str
) -> None:
    properties = {f for m, p, f in CASES if (m, p) == (method, path)}
    body = {name: VALID[name] for name in properties}
    body[field] = (str(VALID[field]) if keep_valid_start else "") + text
    response = _post(method, path, body)
    assert response.status_code < 500, (field, body[field], response.content[:300])
    if response.status_code != 204:
        assert response["Content-Type"] == "application/json"
    # Judged on what the server reads: JSON joins a high and a low surrogate into one character.
    if _NOT_TEXT.search(json.loads(json.dumps(body[field]))):
        assert response.status_code == 400, (field, body[field], response.content[:300])
        assert response.json()["error"]["code"] == "field_invalid"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/auth/verify/link", {"token": "\ud800", "mode": "jwt"}),
        ("POST", "/api/auth/token/refresh", {"refresh": "rt_\ud800"}),
        ("POST", "/api/auth/logout", {"refresh": "\ud800"}),
        ("POST", "/api/auth/send", {"email": "a@example.org", "next": "/\ud800"}),
    ],
    ids=["verify-link", "token-refresh", "logout", "send-next"],
)
def test_the_lone_surrogates_that_gave_500s(method: str, path: str, body: dict[str, Any]) -> None:
    response = _post(method, path, body)
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"]["code"] == "field_invalid"


@pytest.mark.parametrize(
    "path",
    ["/api/auth/requests/%00abc", "/api/auth/requests/%ED%A0%80", "/api/auth/requests/%0A"],
)
def test_a_path_parameter_with_a_control_character_is_never_a_500(path: str) -> None:
    response = Client(raise_request_exception=False).get(f"{path}?mode=jwt")
    assert response.status_code < 500


def test_an_overlong_email_is_refused_before_normalisation(monkeypatch: Any) -> None:
    """NFKC makes U+FDFA eighteen characters: a long input is not expanded at all."""
    calls: list[int] = []
    real = unicodedata.normalize

    def counting(form: Any, text: str) -> str:
        calls.append(len(text))
        return str(real(form, text))

    monkeypatch.setattr(unicodedata, "normalize", counting)
    form = LoginForm({"email": "\ufdfa" * 321})
    assert not form.is_valid()
    assert form.errors.as_data()["email"][0].code == "max_length"
    assert calls == []
    # At the limit it is read, and refused once normalised (5,778 characters).
    form = LoginForm({"email": "\ufdfa" * 320})
    assert not form.is_valid()
    assert calls == [320]
