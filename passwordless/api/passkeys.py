"""JSON views of passkeys: the three ceremonies' begin and finish, and the list, for
single-page apps and native clients. Thin: parse, call ``services.passkeys``, answer.

A client holding a bearer token, or signing in with ``mode: "jwt"``, gets a challenge bound
to its id (send ``challenge_id`` back with the answer); a browser client on cookies gets
one bound to its session, which must be the one that finishes.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from ..conf import app_settings
from ..errors import SignInError
from ..models import Passkey
from ..services import passkeys
from .parsing import json_body, optional_str, required_str
from .views import (
    _check_csrf,
    _current,
    _mode,
    _signed_in_user,
    _user_json,
    api_view,
    step_up_refusal,
)

__all__ = [
    "authenticate_begin_view",
    "authenticate_finish_view",
    "passkey_view",
    "passkeys_view",
    "reauthenticate_begin_view",
    "reauthenticate_finish_view",
    "register_begin_view",
    "register_finish_view",
]


def _client(request: HttpRequest) -> str:
    return passkeys.TOKENS if getattr(request, "auth_claims", None) else passkeys.BROWSER


def _credential(data: dict[str, Any]) -> dict[str, Any]:
    value = data.get("credential")
    if value is None:
        raise SignInError("field_missing", field="credential")
    if not isinstance(value, dict):
        raise SignInError("field_invalid", field="credential", reason="expected an object.")
    return value


def _challenge_id(data: dict[str, Any]) -> str:
    return required_str(data, "challenge_id", 64)


def passkey_json(passkey: Passkey) -> dict[str, Any]:
    return {
        "id": str(passkey.pk),
        "name": passkey.name,
        "created_at": passkey.created_at.isoformat(),
        "last_used_at": passkey.last_used_at.isoformat() if passkey.last_used_at else None,
        "backed_up": passkey.backed_up,
    }


@api_view(("POST",))
def register_begin_view(request: HttpRequest) -> HttpResponse:
    _signed_in_user(request)
    current = _current(request)
    refused = step_up_refusal(request, current, "add_passkey")
    if refused is not None:
        return refused
    ceremony = passkeys.begin_registration(request, current, client=_client(request))
    return JsonResponse(ceremony.as_json())


@api_view(("POST",))
def register_finish_view(request: HttpRequest) -> HttpResponse:
    _signed_in_user(request)
    data = json_body(request)
    passkey = passkeys.finish_registration(
        request,
        _current(request),
        client=_client(request),
        challenge_id=_challenge_id(data),
        credential=_credential(data),
        name=optional_str(data, "name", "", max_length=64),
    )
    return JsonResponse({"passkey": passkey_json(passkey)}, status=201)


@api_view(("POST",))
def authenticate_begin_view(request: HttpRequest) -> HttpResponse:
    data = json_body(request) if request.body else {}
    mode = _mode(data)
    client = passkeys.TOKENS if mode == "jwt" else passkeys.BROWSER
    return JsonResponse(passkeys.begin_authentication(request, client=client).as_json())


@api_view(("POST",))
def authenticate_finish_view(request: HttpRequest) -> HttpResponse:
    data = json_body(request)
    mode = _mode(data)
    if mode == "session":
        _check_csrf(request)  # against login CSRF, as for codes
    done = passkeys.finish_authentication(
        request,
        client=passkeys.TOKENS if mode == "jwt" else passkeys.BROWSER,
        challenge_id=_challenge_id(data),
        credential=_credential(data),
        tokens=mode == "jwt",
    )
    body: dict[str, Any] = {"user": _user_json(done.user)}
    if done.tokens is not None:
        body.update(done.tokens.as_json())
    return JsonResponse(body)


@api_view(("POST",))
def reauthenticate_begin_view(request: HttpRequest) -> HttpResponse:
    _signed_in_user(request)
    ceremony = passkeys.begin_reauthentication(request, _current(request), client=_client(request))
    return JsonResponse(ceremony.as_json())


@api_view(("POST",))
def reauthenticate_finish_view(request: HttpRequest) -> HttpResponse:
    _signed_in_user(request)
    data = json_body(request)
    current = _current(request)
    passkeys.finish_reauthentication(
        request,
        current,
        client=_client(request),
        challenge_id=_challenge_id(data),
        credential=_credential(data),
    )
    proof = current.reauthenticated_at if current else None
    return JsonResponse(
        {
            "reauthenticated_at": proof.isoformat() if proof else "",
            "expires_in": int(app_settings.REAUTHENTICATION_TIMEOUT.total_seconds()),
        }
    )


@api_view(("GET",))
def passkeys_view(request: HttpRequest) -> HttpResponse:
    user = _signed_in_user(request)
    return JsonResponse({"passkeys": [passkey_json(p) for p in passkeys.passkeys_of(user)]})


@api_view(("POST", "DELETE"))
def passkey_view(request: HttpRequest, passkey_id: str) -> HttpResponse:
    """Rename one passkey (POST ``{"name"}``), or remove it (DELETE; needs a step-up)."""
    user = _signed_in_user(request)
    passkey = passkeys.find(user, passkey_id)
    if passkey is None:
        raise SignInError("not_found")
    if request.method == "DELETE":
        current = _current(request)
        refused = step_up_refusal(request, current, "remove_passkey")
        if refused is not None:
            return refused
        passkeys.remove(request, current, passkey)
        return HttpResponse(status=204)
    data = json_body(request)
    passkey = passkeys.rename(user, passkey, required_str(data, "name", 200))
    return JsonResponse({"passkey": passkey_json(passkey)})
