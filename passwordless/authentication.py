"""Bearer access tokens for Django views: ``request.user`` from ``Authorization: Bearer``.

Place after ``AuthenticationMiddleware``. The token is read from the header
only, never from the query string or a cookie; a valid one also exempts the
request from CSRF checks, since nothing ambient authenticated it. Checking a
token writes nothing and asks no cache: a signature check (skipped for a token this
process verified before, found by its exact text), then one read of the user joined
to the token's family, which is where revocation is read (``tokens.authenticate_access_token``).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase

from .conf import app_settings
from .errors import SignInError
from .services import tokens

__all__ = ["BearerTokenMiddleware", "bearer_token"]


def bearer_token(request: HttpRequest) -> str | None:
    scheme, _, token = str(request.META.get("HTTP_AUTHORIZATION", "")).partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class BearerTokenMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        applies = request.path_info.startswith(app_settings.BEARER_PATH_PREFIXES)
        token = bearer_token(request) if applies else None
        request.auth_claims = None  # type: ignore[attr-defined]
        request.auth_error = None  # type: ignore[attr-defined]
        if token is not None:
            try:
                user, claims = tokens.authenticate_access_token(token)
            except SignInError as error:
                request.auth_error = error  # type: ignore[attr-defined]
            else:
                request.user = user  # type: ignore[assignment]
                request.auth_claims = claims  # type: ignore[attr-defined]
                request._dont_enforce_csrf_checks = True  # type: ignore[attr-defined]
        return self.get_response(request)
