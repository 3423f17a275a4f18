"""The bare Django peer's views, and the page every peer redirects to once signed in.

``bench.views.log_in`` (the view that calls ``login()``) and ``config.views.home``
(the project's home page) are served as they are, by ``bench.peers.urls``.
"""

from __future__ import annotations

import jwt
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse, JsonResponse

from bench.peers import JWT_AUDIENCE, JWT_ISSUER, JWT_KEY


def bearer_me(request: HttpRequest) -> JsonResponse:
    """``GET /api/auth/me`` done by hand: verify an HS256 JWT, load its user."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return JsonResponse({"error": "not_authenticated"}, status=401)
    try:
        claims = jwt.decode(
            token,
            JWT_KEY,
            algorithms=["HS256"],
            audience=JWT_AUDIENCE,
            issuer=JWT_ISSUER,
            options={"require": ["exp", "iat", "sub"]},
        )
    except jwt.InvalidTokenError:
        return JsonResponse({"error": "invalid_token"}, status=401)
    user = get_user_model()._default_manager.filter(pk=claims["sub"], is_active=True).first()
    if user is None:
        return JsonResponse({"error": "invalid_token"}, status=401)
    return JsonResponse({"user": {"id": user.pk, "email": user.get_username()}})


def signed_in(request: HttpRequest) -> HttpResponse:
    """Where a peer's sign-in redirects; wrk never follows the redirect."""
    return HttpResponse("signed in", content_type="text/plain")


def not_served(request: HttpRequest) -> HttpResponse:
    """The URL names the home page links to (sign out, sessions), which no case requests."""
    return HttpResponse(status=404)
