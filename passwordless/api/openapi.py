"""The OpenAPI 3.1 description of the JSON API, served at ``<mount>/openapi.json``.

Its paths are reversed from the API's URL names when the document is built, so they
are wherever the project includes ``passwordless.api.urls`` (``/api/auth/`` in ours).

A test keeps it true: every route of ``passwordless.api.urls`` is here, and
schemathesis checks the live server against it.
"""

from __future__ import annotations

import re
from typing import Any

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
        403: "CSRF failure, not the client that asked, or the account may not sign in",
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
                    "properties": {"code": string, "message": string},
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
        "Jwks": {
            "type": "object",
            "required": ["keys"],
            "properties": {"keys": {"type": "array", "items": {"type": "object"}}},
        },
        "OpenApi": {"type": "object"},
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
            _path("sessions"): _get("The user's sessions", "Sessions", (401, 405)),
            _path("session", "session_id"): {
                "delete": {
                    "summary": "End one session (a browser's, or a token family)",
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
