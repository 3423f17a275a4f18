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
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.cache import caches
from django.test import Client
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.models import User
from passwordless.api.openapi import openapi_document
from passwordless.forms import LoginForm
from passwordless.models import Passkey
from passwordless.services.signin import sign_in_with_tokens

pytestmark = pytest.mark.django_db

CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
VERIFIER = "dBjftJeZ4CVP-mJ92K9mRefK3ooiUxQt5ZBLFm83HVEeY"
#: A body each endpoint accepts as far as parsing goes (``mode: "jwt"``, so that no CSRF
#: check answers first); one field at a time is replaced by arbitrary text. A passkey's
#: ``credential`` is an object (its ``toJSON()``): text there, a client that sent it as a
#: JSON string, is ``field_invalid`` too.
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
    "challenge_id": "AAAAAAAAAAAAAAAAAAAAAA",
    "credential": {
        "id": "AAAA",
        "rawId": "AAAA",
        "type": "public-key",
        "response": {"clientDataJSON": "e30", "authenticatorData": "AAAA", "signature": "AAAA"},
    },
    "name": "Laptop",
    # issue 18, bots: the send's CAPTCHA answer (ignored while no CAPTCHA is on).
    "captcha": "captcha-answer",
    # issue 18, languages: the email's language, one of LANGUAGES.
    "locale": "de",
}
#: The endpoints that need a bearer token (a signed-in token client, ``bearer``): without
#: one they answer 401 before reading the body.
AUTHENTICATED = {
    ("POST", "/api/auth/reauthenticate/verify"),
    ("POST", "/api/auth/passkeys/register/finish"),
    ("POST", "/api/auth/passkeys/reauth/finish"),
    ("POST", "/api/auth/passkeys/{passkey_id}"),
    ("POST", "/api/auth/email/change"),
    ("POST", "/api/auth/email/change/verify"),
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
        ("POST", "/api/auth/passkeys/auth/begin"),
        ("POST", "/api/auth/passkeys/auth/finish"),
        *AUTHENTICATED,
    }
    # issue 18: the send's "captcha" (bots) and "locale" (languages) are two more.
    assert len(CASES) == 32


@dataclass(frozen=True)
class SignedIn:
    """A signed-in token client: its ``Authorization`` header, and its user's passkey."""

    headers: dict[str, str]
    passkey_id: int


@pytest.fixture
def signed_in() -> SignedIn:
    """Signed in by the API's own sign-in step (a fresh sign-in is a fresh proof, so no
    step-up answers first), for a user with one passkey to rename."""
    user = User.objects.create_user("fuzzer@example.org")
    pair = sign_in_with_tokens(None, user, None, "code")
    passkey = Passkey.objects.create(
        user=user, name="Old key", credential_id="AAAA", public_key=b"\x00"
    )
    return SignedIn({"Authorization": f"Bearer {pair.access}"}, passkey.pk)


def _post(
    method: str,
    path: str,
    body: dict[str, Any],
    signed_in: SignedIn | None = None,
    *,
    token: bool = True,
) -> Any:
    """``body`` as JSON; with ``signed_in``'s token where the endpoint needs one (unless
    ``token`` is false), and its passkey's id for ``{passkey_id}``."""
    caches["ratelimit"].clear()  # each example on a fresh budget: a 429 would hide the answer
    # A fresh client each time: a cookie from an earlier answer would ask for CSRF first.
    client = Client(raise_request_exception=False)
    headers = {}
    if signed_in is not None:
        if token and (method, path) in AUTHENTICATED:
            headers = signed_in.headers
        path = path.replace("{passkey_id}", str(signed_in.passkey_id))
    return client.generic(
        method, path, json.dumps(body), content_type="application/json", headers=headers
    )


@pytest.mark.parametrize(("method", "path"), sorted({(m, p) for m, p, _ in CASES}))
def test_the_authenticated_endpoints_are_the_ones_needing_a_token(
    method: str, path: str, signed_in: SignedIn
) -> None:
    """Without the token, exactly these answer 401 before the body is read; with it, none
    is refused as not signed in, so the fuzz below reaches the parser."""
    body = {f: VALID[f] for m, p, f in CASES if (m, p) == (method, path)}
    without = _post(method, path, body, signed_in, token=False)
    needed = without.status_code == 401 and without.json()["error"]["code"] == "not_authenticated"
    assert needed == ((method, path) in AUTHENTICATED), without.content[:300]
    if needed:
        assert _post(method, path, body, signed_in).status_code != 401


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
    method: str, path: str, field: str, keep_valid_start: bool, text: str, signed_in: SignedIn
) -> None:
    properties = {f for m, p, f in CASES if (m, p) == (method, path)}
    body = {name: VALID[name] for name in properties}
    valid = VALID[field] if isinstance(VALID[field], str) else json.dumps(VALID[field])
    body[field] = (valid if keep_valid_start else "") + text
    response = _post(method, path, body, signed_in)
    assert response.status_code < 500, (field, body[field], response.content[:300])
    if (method, path) in AUTHENTICATED:  # the token let it through to the parser
        assert response.status_code != 401, response.content[:300]
    if not isinstance(VALID[field], str):  # an object sent as text, whatever the text
        assert response.status_code == 400, (field, body[field], response.content[:300])
        assert response.json()["error"]["code"] == "field_invalid"
    if response.status_code != 204:
        assert response["Content-Type"] == "application/json"
    # Judged on what the server reads: JSON joins a high and a low surrogate into one character.
    if _NOT_TEXT.search(json.loads(json.dumps(body[field]))):
        assert response.status_code == 400, (field, body[field], response.content[:300])
        assert response.json()["error"]["code"] == "field_invalid"


#: Where a string sits inside a passkey's ``credential``: each is fuzzed in turn.
CREDENTIAL_STRINGS = [
    ("id",),
    ("rawId",),
    ("type",),
    ("response", "clientDataJSON"),
    ("response", "authenticatorData"),
    ("response", "signature"),
    ("response", "userHandle"),
    ("response", "attestationObject"),
]


@pytest.mark.parametrize("where", CREDENTIAL_STRINGS, ids=".".join)
@pytest.mark.parametrize("ceremony", ["register", "auth", "reauth"])
@hypothesis_settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=TEXT)
@example(text="\ud800")
@example(text="\x00")
def test_arbitrary_text_inside_a_credential_is_a_clear_400(
    ceremony: str, where: tuple[str, ...], text: str, signed_in: SignedIn
) -> None:
    """The answer to a real challenge, with one of its strings replaced: refused as a bad
    answer, never a 500 (the credential's id is looked up in the database)."""
    caches["ratelimit"].clear()
    client = Client(raise_request_exception=False)
    # Signing in, a jwt client with no token; adding and stepping up, the signed-in one.
    headers, extra = ({}, {"mode": "jwt"}) if ceremony == "auth" else (signed_in.headers, {})
    path = f"/api/auth/passkeys/{ceremony}"
    begun = client.post(
        f"{path}/begin", json.dumps(extra), content_type="application/json", headers=headers
    )
    assert begun.status_code == 200, begun.content[:300]
    credential = json.loads(json.dumps(VALID["credential"]))  # its id: the user's passkey's
    inner = credential
    for key in where[:-1]:
        inner = inner[key]
    inner[where[-1]] = text
    body = {"challenge_id": begun.json()["challenge_id"], "credential": credential, **extra}
    response = client.post(
        f"{path}/finish", json.dumps(body), content_type="application/json", headers=headers
    )
    assert response.status_code == 400, (where, text, response.content[:300])
    assert response.json()["error"]["code"] in ("passkey_invalid", "passkey_unknown")


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


@pytest.mark.parametrize("method", ["POST", "DELETE"])
@pytest.mark.parametrize(
    "passkey_id",
    ["%00abc", "%ED%A0%80", "%0A", "9" * 40, "-1", "1.0", "%C2%B2", "%D9%A3"],
    ids=["nul", "surrogate", "newline", "huge", "negative", "decimal", "superscript", "arabic"],
)
def test_a_passkey_id_that_names_no_passkey_is_a_404(
    method: str, passkey_id: str, signed_in: SignedIn
) -> None:
    """``{passkey_id}``: anything but the digits of one of the user's passkeys is "not
    found", a digit of another script ("²" is a digit to ``str.isdigit``, not to ``int``)
    included."""
    response = Client(raise_request_exception=False).generic(
        method,
        f"/api/auth/passkeys/{passkey_id}",
        json.dumps({"name": "Laptop"}),
        content_type="application/json",
        headers=signed_in.headers,
    )
    assert response.status_code == 404, response.content[:300]
    assert response.json()["error"]["code"] == "not_found"
    assert Passkey.objects.get(pk=signed_in.passkey_id).name == "Old key"


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
