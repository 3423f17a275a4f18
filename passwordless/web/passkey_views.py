"""The passkeys page, the offer after an email sign-in, and the JSON endpoints the pages'
script (``static/passwordless/passkeys.js``) calls for each WebAuthn ceremony.

The endpoints are the HTML app's: CSRF-protected (the script sends the page's token), and
every challenge is bound to this browser session (``services.passkeys.BROWSER``). Without
JavaScript the pages still list, rename and remove passkeys; only the ceremonies need it.

The offer to add a passkey is remembered per device by a cookie (``OFFER_COOKIE``), set
when the person says "Not now" or adds one here: a session ends at sign-out, the browser
stays, and it is the browser that has, or has not, a passkey. See ``templatetags.passkeys``.
"""

from __future__ import annotations

import json
from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.decorators import login_required
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import redirect, resolve_url
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_POST

from .. import services
from ..adapter import get_adapter
from ..conf import app_settings
from ..errors import SignInError
from ..responses import json_error
from ..services import passkeys
from .pages import protected, render_page
from .reauthentication import step_up_redirect

__all__ = [
    "OFFER_COOKIE",
    "PasskeysView",
    "StaffPasskeyView",
    "auth_begin_view",
    "auth_finish_view",
    "offer_view",
    "reauth_begin_view",
    "reauth_finish_view",
    "register_begin_view",
    "register_finish_view",
]

OFFER_COOKIE = passkeys.OFFER_COOKIE
OFFER_COOKIE_AGE = 365 * 24 * 3600
MAX_BODY = 16 * 1024


def remember_offer(response: HttpResponseBase) -> None:
    """This browser was offered a passkey (declined, or added one): offer no more."""
    response.set_cookie(
        OFFER_COOKIE,
        "done",
        max_age=OFFER_COOKIE_AGE,
        httponly=True,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
    )


def safe_next(request: HttpRequest, value: object) -> str:
    if isinstance(value, str) and value and get_adapter().is_safe_next_url(value, request):
        return value
    return resolve_url(app_settings.LOGIN_REDIRECT_URL)


@method_decorator(login_required, name="dispatch")
@protected
class PasskeysView(View):
    """The person's passkeys: add one (script), rename one, remove one (after a step-up)."""

    template_name = "passwordless/passkeys.html"

    def get(self, request: HttpRequest, error: SignInError | None = None) -> HttpResponse:
        user = cast(AbstractBaseUser, request.user)
        context = {
            "passkeys": passkeys.passkeys_of(user),
            "enabled": app_settings.PASSKEYS,
            "name_length": passkeys.NAME_LENGTH,
        }
        return render_page(request, self.template_name, context, error)

    def post(self, request: HttpRequest) -> HttpResponseBase:
        user = cast(AbstractBaseUser, request.user)
        passkey = passkeys.find(user, request.POST.get("passkey"))
        if passkey is None:
            messages.error(request, _("That passkey was already removed."))
            return redirect("passwordless:passkeys")
        try:
            if request.POST.get("action") == "remove":
                passkeys.remove(request, services.current_session(request), passkey)
                messages.success(
                    request, _("Removed the passkey “%(name)s”.") % {"name": passkey.name}
                )
            else:
                passkeys.rename(user, passkey, request.POST.get("name", ""))
                messages.success(
                    request, _("Renamed the passkey to “%(name)s”.") % {"name": passkey.name}
                )
        except SignInError as error:
            if error.code == "reauthentication_required":
                return step_up_redirect(request)
            return self.get(request, error)
        return redirect("passwordless:passkeys")


@never_cache
@csrf_protect
@require_POST
def offer_view(request: HttpRequest) -> HttpResponse:
    """Hide the offer ("Not now") on this device for good."""
    response = HttpResponseRedirect(safe_next(request, request.POST.get("next")))
    remember_offer(response)
    return response


@method_decorator(login_required, name="dispatch")
@protected
class StaffPasskeyView(View):
    """Where ``PASSKEYS_REQUIRED_FOR_STAFF`` sends staff on their way to the admin: a
    step-up with a passkey, or the way to add one first."""

    def get(self, request: HttpRequest) -> HttpResponse:
        user = cast(AbstractBaseUser, request.user)
        context = {
            "next": safe_next(request, request.GET.get("next")),
            "has_passkeys": passkeys.has_passkeys(user),
        }
        return render_page(request, "passwordless/passkey_staff.html", context)


# The ceremonies, as JSON for the script.


def _json_view(view: Any) -> Any:
    """CSRF-checked JSON POST endpoints whose failures are ``{"error": {...}}``."""

    @never_cache
    @csrf_protect
    @require_POST
    def wrapper(request: HttpRequest) -> HttpResponse:
        try:
            if request.content_type != "application/json" or len(request.body) > MAX_BODY:
                raise SignInError("content_type_invalid")
            try:
                data = json.loads(request.body or b"{}")
            except (ValueError, RecursionError) as exc:
                raise SignInError("json_invalid") from exc
            if not isinstance(data, dict):
                raise SignInError("json_invalid")
            response: HttpResponse = view(request, data)
            return response
        except SignInError as error:
            return json_error(error)

    wrapper.__name__ = wrapper.__qualname__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


def _signed_in(request: HttpRequest) -> AbstractBaseUser:
    if not request.user.is_authenticated:
        raise SignInError("not_authenticated")
    return cast(AbstractBaseUser, request.user)


def _challenge_id(data: dict[str, Any]) -> str:
    value = data.get("challenge_id")
    return value if isinstance(value, str) else ""


@_json_view
def register_begin_view(request: HttpRequest, data: dict[str, Any]) -> HttpResponse:
    _signed_in(request)
    current = services.current_session(request)
    ceremony = passkeys.begin_registration(request, current, client=passkeys.BROWSER)
    return JsonResponse(ceremony.as_json())


@_json_view
def register_finish_view(request: HttpRequest, data: dict[str, Any]) -> HttpResponse:
    _signed_in(request)
    name = data.get("name")
    passkey = passkeys.finish_registration(
        request,
        services.current_session(request),
        client=passkeys.BROWSER,
        challenge_id=_challenge_id(data),
        credential=data.get("credential"),
        name=name if isinstance(name, str) else "",
    )
    messages.success(request, _("Added the passkey “%(name)s”.") % {"name": passkey.name})
    response = JsonResponse({"redirect": safe_next(request, data.get("next"))}, status=201)
    remember_offer(response)
    return response


@_json_view
def auth_begin_view(request: HttpRequest, data: dict[str, Any]) -> HttpResponse:
    return JsonResponse(passkeys.begin_authentication(request, client=passkeys.BROWSER).as_json())


@_json_view
def auth_finish_view(request: HttpRequest, data: dict[str, Any]) -> HttpResponse:
    passkeys.finish_authentication(
        request,
        client=passkeys.BROWSER,
        challenge_id=_challenge_id(data),
        credential=data.get("credential"),
        tokens=False,
    )
    return JsonResponse({"redirect": safe_next(request, data.get("next"))})


@_json_view
def reauth_begin_view(request: HttpRequest, data: dict[str, Any]) -> HttpResponse:
    _signed_in(request)
    current = services.current_session(request)
    ceremony = passkeys.begin_reauthentication(request, current, client=passkeys.BROWSER)
    return JsonResponse(ceremony.as_json())


@_json_view
def reauth_finish_view(request: HttpRequest, data: dict[str, Any]) -> HttpResponse:
    _signed_in(request)
    passkeys.finish_reauthentication(
        request,
        services.current_session(request),
        client=passkeys.BROWSER,
        challenge_id=_challenge_id(data),
        credential=data.get("credential"),
    )
    messages.success(request, _("Thanks, that's confirmed."))
    return JsonResponse({"redirect": safe_next(request, data.get("next"))})
