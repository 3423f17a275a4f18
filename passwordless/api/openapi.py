"""The OpenAPI 3.1 description of the JSON API, served at ``<mount>/openapi.json``.

Its paths are reversed from the API's URL names when the document is built, so they
are wherever the project includes ``passwordless.api.urls`` (``/api/auth/`` in ours).

A test keeps it true: every route of ``passwordless.api.urls`` is here, and
schemathesis checks the live server against it.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.urls import reverse

from ..conf import app_settings

__all__ = ["openapi_document"]

_REF = "#/components/schemas/"


def _json(schema: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": _REF + schema}}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {
        400: "Malformed body or input",
        401: "Not signed in, or a bad token",
        403: (
            "CSRF failure, not the client that asked, the account may not sign in, or a "
            "step-up is needed first (reauthentication_required, with how to step up)"
        ),
        404: "No such request or link",
        405: "Method not allowed",
        409: "Already used, or superseded",
        410: "Expired",
        423: "Locked after too many wrong codes, or approving from another device is off",
        429: "Rate limited (see Retry-After)",
        503: "A dependency (the rate-limit cache) is down",
    }
    return {str(s): {"description": text[s], **_json("Error")} for s in statuses}


_POST_ERRORS = (400, 403, 405, 429, 503)
_VERIFY_ERRORS = (*_POST_ERRORS, 404, 409, 410, 423)


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, **_json(schema)}


def _post(summary: str, body: str, ok: str, ok_status: str, errors: tuple[int, ...]) -> Any:
    return {
        "post": {
            "summary": summary,
            "requestBody": _body(body),
            "responses": {ok_status: {"description": "OK", **_json(ok)}, **_errors(*errors)},
        }
    }


def _get(summary: str, ok: str, errors: tuple[int, ...], **extra: Any) -> Any:
    return {
        "get": {
            "summary": summary,
            "responses": {"200": {"description": "OK", **_json(ok)}, **_errors(*errors)},
            **extra,
        }
    }


def _schemas() -> dict[str, Any]:
    string = {"type": "string"}
    mode = {"type": ["string", "null"], "enum": ["session", "jwt", None], "default": "session"}
    # What the server accepts, as exactly as a schema can say it: a simple address
    # (the server takes more, RFC 5322 dot-atoms, Unicode folded by NFKC), and a code
    # of CODE_LENGTH digits (spaces and hyphens typed between them are also taken).
    email = {
        "type": "string",
        "maxLength": 254,
        "pattern": r"^[a-z0-9]{1,20}(\.[a-z0-9]{1,20}){0,2}@([a-z0-9]{1,20}\.){1,3}[a-z]{2,6}$",
    }
    symbols = re.escape(app_settings.CODE_ALPHABET)
    code = {"type": "string", "pattern": f"^[{symbols}]{{{app_settings.CODE_LENGTH}}}$"}
    # Every string the API reads refuses control characters (and lone surrogates, which a
    # pattern cannot name): ``parsing.json_body``'s fields.
    text = {"type": "string", "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]*$"}
    request_id = {**text, "minLength": 1, "maxLength": 64}
    # RFC 7636: the S256 challenge of a verifier the client keeps, and that verifier.
    challenge = {
        "type": ["string", "null"],
        "pattern": "^[A-Za-z0-9_-]{43}$",
        "description": "BASE64URL(SHA256(code_verifier)), unpadded",
    }
    verifier = {
        "type": ["string", "null"],
        "pattern": "^[A-Za-z0-9._~-]{43,128}$",
        "description": "The verifier of the send's code_challenge",
    }
    user = {
        "type": "object",
        "required": ["id", "email"],
        "properties": {"id": {"type": ["integer", "string"]}, "email": string},
    }
    token_fields = {
        "access": string,
        "refresh": string,
        "token_type": {"const": "Bearer"},
        "expires_in": {"type": "integer"},
    }
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": string,
                        "message": string,
                        # Only with reauthentication_required: where to step up.
                        "reauthenticate": {
                            "type": "object",
                            "required": ["send", "verify"],
                            "properties": {
                                "send": string,
                                "verify": string,
                                "passkey_begin": string,
                            },
                        },
                    },
                }
            },
        },
        "Csrf": {
            "type": "object",
            "required": ["csrf_token"],
            "properties": {"csrf_token": string},
        },
        "SendBody": {
            "type": "object",
            "required": ["email"],
            "properties": {
                "email": email,
                "next": {**text, "type": ["string", "null"], "maxLength": 2000},
                "code_challenge": challenge,
                "code_challenge_method": {"type": ["string", "null"], "enum": ["S256", None]},
                # issue 18, languages: the email's language (and the link page's).
                "locale": {
                    "type": ["string", "null"],
                    "enum": [*(code for code, _name in settings.LANGUAGES), None],
                    "description": "The language of the email and of the link's page: one "
                    "of the site's LANGUAGES (a variant such as de-DE is taken for de). "
                    "Without it, the request's Accept-Language.",
                },
                # issue 18, bots: the CAPTCHA's answer, when the site has one on.
                "captcha": {
                    "type": ["string", "null"],
                    "maxLength": 4096,
                    "description": "With PASSWORDLESS_CAPTCHA on: the answer the "
                    "provider's widget gave (Turnstile's cf-turnstile-response, hCaptcha's "
                    "h-captcha-response), verified server-side; refused with 400 "
                    "captcha_failed or 503 captcha_unavailable. Ignored when it is off.",
                },
            },
        },
        "ResendBody": {
            "type": "object",
            "required": ["request_id"],
            "properties": {"request_id": request_id},
        },
        "CodeBody": {
            "type": "object",
            "required": ["request_id", "code"],
            "properties": {"request_id": request_id, "code": code, "mode": mode},
        },
        "LinkBody": {
            "type": "object",
            "required": ["token"],
            "properties": {"token": text, "mode": mode, "code_verifier": verifier},
        },
        "CollectBody": {
            "type": "object",
            "properties": {"mode": mode, "code_verifier": verifier},
        },
        "RefreshBody": {
            "type": "object",
            "required": ["refresh"],
            "properties": {"refresh": text},
        },
        "LogoutBody": {
            "type": "object",
            "properties": {"refresh": {**text, "type": ["string", "null"]}},
        },
        "Accepted": {
            "type": "object",
            "required": ["request_id", "expires_in", "resend_after"],
            "properties": {
                "request_id": string,
                "expires_in": {"type": "integer"},
                "resend_after": {"type": "integer"},
            },
        },
        "User": user,
        "SignedIn": {
            "type": "object",
            "required": ["user"],
            "properties": {"user": user, **token_fields},
        },
        "TokenPair": {
            "type": "object",
            "required": list(token_fields),
            "properties": token_fields,
        },
        "Me": {"type": "object", "required": ["user"], "properties": {"user": user}},
        "Sessions": {
            "type": "object",
            "required": ["sessions"],
            "properties": {
                "sessions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "kind", "device", "created_at", "current"],
                        "properties": {
                            "id": string,
                            "kind": {"type": "string", "enum": ["browser", "tokens"]},
                            "device": string,
                            "network": string,
                            "method": string,
                            "created_at": string,
                            "last_seen_at": string,
                            "current": {"type": "boolean"},
                        },
                    },
                }
            },
        },
        "RequestStatus": {
            "type": "object",
            "required": ["status"],
            "properties": {
                "status": string,
                "delivery": {"type": ["string", "null"]},
                "match_number": {"type": ["string", "null"], "pattern": "^[0-9]{2}$"},
                "approval_off": {"type": "boolean"},
                "user": user,
                **token_fields,
            },
        },
        # Step-up (re-authentication).
        "EndedOthers": {
            "type": "object",
            "required": ["ended"],
            "properties": {"ended": {"type": "integer"}},
        },
        "StepUpBody": {
            "type": "object",
            "required": ["request_id", "code"],
            "properties": {"request_id": request_id, "code": code},
        },
        "Reauthenticated": {
            "type": "object",
            "required": ["reauthenticated_at", "expires_in"],
            "properties": {
                "reauthenticated_at": string,
                "expires_in": {"type": "integer"},
            },
        },
        # Passkeys (WebAuthn): options and credentials in their JSON form (base64url).
        **_passkey_schemas(text, request_id, mode),
        # Changing the email address.
        "EmailChangeBody": {
            "type": "object",
            "required": ["email"],
            "properties": {"email": email},
        },
        "EmailChangeVerifyBody": {
            "type": "object",
            "required": ["request_id", "code"],
            "properties": {"request_id": request_id, "code": code},
        },
        "EmailChanged": {
            "type": "object",
            "required": ["email", "user"],
            "properties": {"email": string, "user": user},
        },
        "Jwks": {
            "type": "object",
            "required": ["keys"],
            "properties": {"keys": {"type": "array", "items": {"type": "object"}}},
        },
        "OpenApi": {"type": "object"},
    }


def _passkey_schemas(text: Any, request_id: Any, mode: Any) -> dict[str, Any]:
    string = {"type": "string"}
    credential = {
        "type": "object",
        "description": "The PublicKeyCredential as JSON (its toJSON(): base64url byte strings)",
    }
    passkey = {
        "type": "object",
        "required": ["id", "name", "created_at", "last_used_at", "backed_up"],
        "properties": {
            "id": string,
            "name": string,
            "created_at": string,
            "last_used_at": {"type": ["string", "null"]},
            "backed_up": {"type": "boolean"},
        },
    }
    return {
        "PasskeyCeremony": {
            "type": "object",
            "required": ["challenge_id", "options"],
            "properties": {
                "challenge_id": string,
                "options": {
                    "type": "object",
                    "description": "For navigator.credentials.create() or .get(), as JSON",
                },
            },
        },
        "PasskeySignInBody": {"type": "object", "properties": {"mode": mode}},
        "PasskeySignInFinishBody": {
            "type": "object",
            "required": ["challenge_id", "credential"],
            "properties": {"challenge_id": request_id, "credential": credential, "mode": mode},
        },
        "PasskeyRegisterBody": {
            "type": "object",
            "required": ["challenge_id", "credential"],
            "properties": {
                "challenge_id": request_id,
                "credential": credential,
                "name": {**text, "type": ["string", "null"], "maxLength": 64},
            },
        },
        "PasskeyReauthBody": {
            "type": "object",
            "required": ["challenge_id", "credential"],
            "properties": {"challenge_id": request_id, "credential": credential},
        },
        "PasskeyRenameBody": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {**text, "maxLength": 200}},
        },
        "Passkey": {"type": "object", "required": ["passkey"], "properties": {"passkey": passkey}},
        "Passkeys": {
            "type": "object",
            "required": ["passkeys"],
            "properties": {"passkeys": {"type": "array", "items": passkey}},
        },
    }


def _passkey_paths() -> dict[str, Any]:
    # A finish's statuses; signing in (``auth``), no one is signed in yet: never a 401.
    signing_in = (400, 403, 404, 405, 409, 410, 429, 503)
    ceremony = (*signing_in, 401)
    passkey_id = {
        "name": "passkey_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }

    def _begin(summary: str, errors: tuple[int, ...]) -> dict[str, Any]:
        ok = {"200": {"description": "OK", **_json("PasskeyCeremony")}}
        return {"post": {"summary": summary, "responses": {**ok, **_errors(*errors)}}}

    return {
        _path("passkeys"): _get("The user's passkeys", "Passkeys", (401, 405)),
        _path("passkey-register-begin"): _begin(
            "Options to add a passkey (needs a fresh step-up)", (401, 403, 404, 405, 429, 503)
        ),
        _path("passkey-register-finish"): _post(
            "Add the passkey just created", "PasskeyRegisterBody", "Passkey", "201", ceremony
        ),
        _path("passkey-auth-begin"): {
            "post": {
                **_begin(
                    "Options to sign in with a passkey (discoverable, none listed)",
                    (400, 403, 404, 405, 429, 503),
                )["post"],
                "requestBody": {"required": False, **_json("PasskeySignInBody")},
            }
        },
        _path("passkey-auth-finish"): _post(
            "Sign in with the passkey's assertion",
            "PasskeySignInFinishBody",
            "SignedIn",
            "200",
            signing_in,
        ),
        _path("passkey-reauth-begin"): _begin(
            "Options to step up with one of the user's passkeys",
            (400, 401, 403, 404, 405, 429, 503),
        ),
        _path("passkey-reauth-finish"): _post(
            "Step up with a passkey: a fresh proof for this session",
            "PasskeyReauthBody",
            "Reauthenticated",
            "200",
            ceremony,
        ),
        _path("passkey", "passkey_id"): {
            "post": {
                **_post(
                    "Rename a passkey",
                    "PasskeyRenameBody",
                    "Passkey",
                    "200",
                    (400, 401, 403, 404, 405),
                )["post"],
                "parameters": [passkey_id],
            },
            "delete": {
                "summary": "Remove a passkey (needs a fresh step-up)",
                "parameters": [passkey_id],
                "responses": {
                    "204": {"description": "Removed"},
                    **_errors(401, 403, 404, 405),
                },
            },
        },
    }


def _path(name: str, parameter: str | None = None) -> str:
    """The API URL ``name`` as mounted, with ``{parameter}`` where its argument goes."""
    if parameter is None:
        return reverse(f"passwordless-api:{name}")
    template = "{" + parameter + "}"
    # reverse() percent-encodes the braces of the template: put them back.
    url = reverse(f"passwordless-api:{name}", kwargs={parameter: template})
    return url.replace("%7B", "{").replace("%7D", "}")


def openapi_document() -> dict[str, Any]:
    logout_responses = {"204": {"description": "Signed out"}, **_errors(400, 401, 403, 405)}
    request_id_parameter = {
        "name": "request_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Passwordless sign-in API", "version": "1"},
        "servers": [{"url": app_settings.SITE_URL or "/"}],
        "paths": {
            _path("csrf"): _get("A CSRF token and cookie for browser clients", "Csrf", (405,)),
            _path("send"): _post(
                "Start a sign-in: one email with a code and a link",
                "SendBody",
                "Accepted",
                "202",
                _POST_ERRORS,
            ),
            _path("resend"): _post(
                "Send a new code and link", "ResendBody", "Accepted", "202", (*_POST_ERRORS, 404)
            ),
            _path("verify-code"): _post(
                "Sign in with the code", "CodeBody", "SignedIn", "200", _VERIFY_ERRORS
            ),
            _path("verify-link"): _post(
                "Sign in with the link's token", "LinkBody", "SignedIn", "200", _VERIFY_ERRORS
            ),
            _path("request", "request_id"): {
                **_get(
                    "The waiting client's poll; in session mode it signs the browser that "
                    "asked in once approved elsewhere (jwt mode: status approved, then POST)",
                    "RequestStatus",
                    (400, 403, 404, 405, 409, 410, 423, 429, 503),
                    parameters=[
                        request_id_parameter,
                        {
                            "name": "mode",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "enum": ["session", "jwt"]},
                        },
                    ],
                ),
                "post": {
                    **_post(
                        "Collect an approval given on another device, with the send's "
                        "code_verifier (or the binding cookie)",
                        "CollectBody",
                        "RequestStatus",
                        "200",
                        (400, 403, 404, 405, 409, 410, 423, 429, 503),
                    )["post"],
                    "parameters": [request_id_parameter],
                },
            },
            _path("me"): _get("The signed-in user", "Me", (401, 405)),
            _path("sessions"): {
                **_get("The user's sessions", "Sessions", (401, 405)),
                "delete": {
                    "summary": "End every other session (needs a fresh step-up)",
                    "responses": {
                        "200": {"description": "Ended", **_json("EndedOthers")},
                        **_errors(401, 403),
                    },
                },
            },
            _path("session", "session_id"): {
                "delete": {
                    "summary": "End one session (a browser's, or a token family); "
                    "another than the caller's needs a fresh step-up",
                    "parameters": [
                        {
                            "name": "session_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "204": {"description": "Ended"},
                        **_errors(401, 403, 404, 405),
                    },
                }
            },
            # Step-up (re-authentication) by emailed code.
            _path("reauthenticate-send"): {
                "post": {
                    "summary": "Email a step-up code to the account's address",
                    "responses": {
                        "202": {"description": "Sent", **_json("Accepted")},
                        **_errors(401, 403, 405, 429, 503),
                    },
                }
            },
            _path("reauthenticate-verify"): _post(
                "Step up with the emailed code: a fresh proof for this session",
                "StepUpBody",
                "Reauthenticated",
                "200",
                (*_VERIFY_ERRORS, 401),
            ),
            # Passkeys (WebAuthn).
            **_passkey_paths(),
            # Changing the email address.
            _path("email-change"): _post(
                "Email a code and link to a new address (needs a fresh step-up); the same "
                "answer whether or not the address is another account's",
                "EmailChangeBody",
                "Accepted",
                "202",
                (*_POST_ERRORS, 401),
            ),
            _path("email-change-verify"): _post(
                "Make the new address the account's with its code, in the session that "
                "asked; the other sessions end",
                "EmailChangeVerifyBody",
                "EmailChanged",
                "200",
                (*_VERIFY_ERRORS, 401),
            ),
            _path("token-refresh"): _post(
                "Rotate a refresh token", "RefreshBody", "TokenPair", "200", (400, 401, 405)
            ),
            _path("logout"): {
                "post": {
                    "summary": "End the session, the refresh family and the access token",
                    "requestBody": {"required": False, **_json("LogoutBody")},
                    "responses": logout_responses,
                }
            },
            _path("openapi"): _get("This document", "OpenApi", (405,)),
            "/.well-known/jwks.json": _get("Public keys of access tokens", "Jwks", (405,)),
        },
        "components": {"schemas": _schemas()},
    }
