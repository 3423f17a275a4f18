"""What every page of the flow shares: protection against caching and leaks, rendering
with an error's status, and the redirect after sign-in."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters

from ..adapter import get_adapter
from ..errors import SignInError
from ..models import LoginRequest

__all__ = ["protected", "redirect_signed_in", "render_page"]


def protected(view: type[View]) -> type[View]:
    """Secrets pass through these pages: never cache them, never print them in error reports."""
    for decorator in (never_cache, csrf_protect, sensitive_post_parameters()):
        view = method_decorator(decorator, name="dispatch")(view)
    return view


def render_page(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    error: SignInError | None = None,
    status: int = 200,
) -> HttpResponse:
    """Render a page; an error sets the status, and a rate limit the ``Retry-After`` header."""
    response = render(request, template, {**context, "error": error}, status=status)
    if error is not None:
        response.status_code = error.status
        if error.retry_after is not None:
            response["Retry-After"] = str(error.retry_after)
    return response


def redirect_signed_in(login_request: LoginRequest) -> HttpResponseRedirect:
    return HttpResponseRedirect(get_adapter().get_login_redirect_url(login_request))
