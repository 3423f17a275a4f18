"""JSON views of the sign-in flow. Thin, like the HTML ones: parse, call a service, answer.

Every error is ``{"error": {"code", "message", ...details}}`` with its status,
the codes being those of the HTML flow (``passwordless.errors``).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware, get_token
from django.urls import NoReverseMatch, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, ensure_csrf_cookie

from .. import keys, languages, limits, services
from ..authentication import bearer_token
from ..conf import app_settings
from ..crypto import hash_token, is_code_challenge
from ..errors import SignInError
from ..forms import CodeForm, LoginForm
from ..models import LoginRequest, UserSession
from ..responses import json_error
from ..services import approval, reauthentication, sessions, tokens, tracking
from .openapi import openapi_document
from .parsing import json_body, optional_str, required_str

__all__ = [
    "csrf_view",
    "jwks_view",
    "logout_view",
    "me_view",
    "openapi_view",
    "refresh_view",
    "request_status_view",
    "resend_view",
    "send_view",
    "session_view",
    "sessions_view",
    "step_up_refusal",
    "step_up_urls",
    "verify_code_view",
    "verify_link_view",
]

View = Callable[..., HttpResponse]
MODES = ("session", "jwt")


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request: HttpRequest, reason: str) -> HttpResponse:
        raise SignInError("csrf_failed")


def _check_csrf(request: HttpRequest) -> None:
    _CsrfCheck(lambda r: HttpResponse()).process_view(request, lambda r: HttpResponse(), (), {})


def api_view(methods: tuple[str, ...], *, csrf: bool = True) -> Callable[[View], View]:
    """JSON errors for everything, no caching, and CSRF where cookies are in play.

    A request authenticated by a bearer token, or carrying no cookie at all and
    asking for no session, cannot be forged by another site: CSRF is checked
    for the others (``mode: "session"`` always, against login CSRF).
    """

    def decorate(view: View) -> View:
        @functools.wraps(view)
        @csrf_exempt
        @never_cache
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                if request.method not in methods:
                    response = json_error(SignInError("method_not_allowed"))
                    response["Allow"] = ", ".join(methods)
                    return response
                if csrf and request.method in ("POST", "DELETE") and _needs_csrf(request):
                    _check_csrf(request)
                return view(request, *args, **kwargs)
            except SignInError as error:
                return json_error(error)

        return wrapper

    return decorate


def _needs_csrf(request: HttpRequest) -> bool:
    if getattr(request, "auth_claims", None):
        return False
    return bool(request.COOKIES) or request.GET.get("mode") == "session"


def _mode(data: dict[str, Any]) -> str:
    mode = optional_str(data, "mode", "session", max_length=10)
    if mode not in MODES:
        raise SignInError("field_invalid", field="mode", reason='"session" or "jwt".')
    return mode


def _code_challenge(data: dict[str, Any]) -> str:
    """The PKCE challenge of a send (RFC 7636 §4.2, S256 only), or ``""`` without one."""
    if data.get("code_challenge") is None:
        return ""
    challenge = optional_str(data, "code_challenge", "", max_length=64)
    method = optional_str(data, "code_challenge_method", "S256", max_length=10)
    if method != "S256":
        raise SignInError("field_invalid", field="code_challenge_method", reason='only "S256".')
    if not is_code_challenge(challenge):
        raise SignInError(
            "field_invalid",
            field="code_challenge",
            reason="the unpadded base64url SHA-256 of the verifier (43 characters).",
        )
    return challenge


def _code_verifier(data: dict[str, Any]) -> str:
    """The verifier of the send's challenge; ``""`` when absent (then only a binding
    cookie can prove the client)."""
    return optional_str(data, "code_verifier", "", max_length=128)


def _user_json(user: AbstractBaseUser) -> dict[str, Any]:
    field = user.get_email_field_name()
    return {"id": user.pk, "email": getattr(user, field)}


def _finisher(request: HttpRequest, mode: str, method: str) -> services.Finisher:
    """Sign in as a browser session (``mode: "session"``) or by tokens (``"jwt"``)."""
    if mode == "jwt":
        return services.ApiTokens(request, method)
    return services.BrowserSession(request, method)


def _signed_in(done: services.Completed) -> dict[str, Any]:
    body = {"user": _user_json(done.user)}
    return body if done.tokens is None else {**body, **done.tokens.as_json()}


def _accepted(login_request: LoginRequest) -> JsonResponse:
    resend_after = min(limits.rate_period(r) for r in app_settings.SEND_RATES_PER_EMAIL)
    body = {
        "request_id": login_request.public_id,
        "expires_in": int(app_settings.REQUEST_LIFETIME.total_seconds()),
        "resend_after": resend_after,
    }
    return JsonResponse(body, status=202)


@ensure_csrf_cookie
@api_view(("GET",))
def csrf_view(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"csrf_token": get_token(request)})


@api_view(("POST",))
def send_view(request: HttpRequest) -> HttpResponse:
    data = json_body(request)
    form = LoginForm(
        {
            "email": required_str(data, "email", max_length=1000),
            "next": optional_str(data, "next", ""),
        }
    )
    if not form.is_valid():
        raise SignInError("email_invalid")
    started = services.start_sign_in(
        form.cleaned_data["email"],
        request=request,
        next_url=form.cleaned_data["next"],
        code_challenge=_code_challenge(data),
        locale=_locale(data),  # issue 18, languages
        # issue 18, bots: no honeypot here (no form is shown), but the CAPTCHA if it is on.
        captcha=optional_str(data, "captcha", "", max_length=4096),
    )
    response = _accepted(started.login_request)
    # A browser client keeps the binding cookie: only it may later collect a session.
    sessions.bind_browser(response, started)
    return response


def _locale(data: dict[str, Any]) -> str | None:
    """issue 18: the send's optional ``locale``, the language of the email and of the link's
    page: one of ``settings.LANGUAGES`` ("de", or a variant such as "de-DE"); without it,
    the request's own (Accept-Language)."""
    tag = optional_str(data, "locale", "", max_length=languages.MAX_LENGTH)
    if tag and not languages.supported(tag):
        offered = ", ".join(code for code, _name in settings.LANGUAGES)
        raise SignInError("field_invalid", field="locale", reason=f"one of {offered}.")
    return tag or None


@api_view(("POST",))
def resend_view(request: HttpRequest) -> HttpResponse:
    data = json_body(request)
    started = services.resend(required_str(data, "request_id", 64), request=request)
    response = _accepted(started.login_request)
    sessions.bind_browser(response, started)
    return response


@api_view(("POST",))
def verify_code_view(request: HttpRequest) -> HttpResponse:
    data = json_body(request)
    public_id = required_str(data, "request_id", 64)
    mode = _mode(data)
    if mode == "session":
        _check_csrf(request)
    form = CodeForm({"code": required_str(data, "code", 32)})
    if not form.is_valid():
        raise SignInError("code_malformed", length=app_settings.CODE_LENGTH)
    done = services.complete_code(
        public_id,
        form.cleaned_data["code"],
        request=request,
        finisher=_finisher(request, mode, "code"),
    )
    return JsonResponse(_signed_in(done))


@api_view(("POST",))
def verify_link_view(request: HttpRequest) -> HttpResponse:
    data = json_body(request)
    token = required_str(data, "token", 128)
    mode = _mode(data)
    if mode == "session":
        _check_csrf(request)
    done = services.complete_link(
        hash_token(token),
        request=request,
        code_verifier=_code_verifier(data),
        finisher=_finisher(request, mode, "link"),
    )
    return JsonResponse(_signed_in(done))


@api_view(("GET", "POST"))
def request_status_view(request: HttpRequest, request_id: str) -> HttpResponse:
    """The waiting client's poll (GET), and its collection of an approval (POST).

    Once another device approved, the client that asked collects its sign-in. A
    browser (``mode: "session"``) proves itself with the binding cookie set with the
    send answer, so its GET poll signs it in at once; a link that makes a victim's
    browser poll the attacker's approved request signs no one in. A client in
    ``jwt`` mode proves itself with the PKCE verifier of its send, which goes in a
    POST body and never in a URL (the request id is in this URL, and URLs end up in
    logs); its GET poll only says ``approved``.
    """
    approval.check_poll_rate(request)
    if request.method == "POST":
        data = json_body(request)
        mode, verifier = _mode(data), _code_verifier(data)
        login_request = approval.load_request(request_id)
        done = services.collect_approval(
            login_request,
            request=request,
            code_verifier=verifier,
            finisher=_finisher(request, mode, "approval"),
        )
    else:
        mode = request.GET.get("mode", "session")
        if mode not in MODES:
            raise SignInError("field_invalid", field="mode", reason='"session" or "jwt".')
        login_request = approval.load_request(request_id)
        if mode == "session":
            done = services.collect_approval(
                login_request, request=request, finisher=_finisher(request, mode, "approval")
            )
        else:
            approval.ensure_collectable(login_request)
            done = None
    if done is not None:
        return JsonResponse({"status": "signed_in", **_signed_in(done)})
    wait = services.wait_status(login_request)
    return JsonResponse(
        {
            "status": wait.status,
            "delivery": wait.delivery,
            "match_number": wait.match_number,
            "approval_off": wait.approval_off,
        }
    )


@api_view(("GET",))
def me_view(request: HttpRequest) -> HttpResponse:
    error = getattr(request, "auth_error", None)
    if error is not None:
        raise error
    if not request.user.is_authenticated:
        raise SignInError("not_authenticated")
    return JsonResponse({"user": _user_json(request.user)})


@api_view(("POST",), csrf=False)
def refresh_view(request: HttpRequest) -> HttpResponse:
    """Rotation needs the refresh token from the body: nothing ambient to forge."""
    data = json_body(request)
    pair = tokens.refresh(required_str(data, "refresh", 4096), request=request)
    return JsonResponse(pair.as_json())


@api_view(("POST",))
def logout_view(request: HttpRequest) -> HttpResponse:
    """End the session, the refresh family and the presented access token."""
    data = json_body(request) if request.body else {}
    raw_refresh = optional_str(data, "refresh", "", max_length=128)
    if raw_refresh:
        family = tokens.family_of_refresh(raw_refresh)
        if family is not None:
            tokens.revoke_family(family, reason="logout")
    claims = getattr(request, "auth_claims", None)
    if claims:
        tokens.revoke_access_token(claims)  # and its family, with its refresh tokens
    elif bearer_token(request) and not raw_refresh:
        raise SignInError("token_invalid")
    services.sign_out(request)
    return HttpResponse(status=204)


def _signed_in_user(request: HttpRequest) -> AbstractBaseUser:
    error = getattr(request, "auth_error", None)
    if error is not None:
        raise error
    if not request.user.is_authenticated:
        raise SignInError("not_authenticated")
    user: AbstractBaseUser = request.user
    return user


def _current(request: HttpRequest) -> UserSession | None:
    claims = getattr(request, "auth_claims", None)
    if claims:
        family = tokens.family_of(claims)
        return UserSession.objects.filter(family=family).first() if family else None
    return services.current_session(request)


def _session_json(row: UserSession, current: UserSession | None) -> dict[str, Any]:
    return {
        "id": row.public_id,
        "kind": row.kind,
        "device": row.device,
        "network": row.network,
        "method": row.method,
        "created_at": row.created_at.isoformat(),
        "last_seen_at": row.last_seen_at.isoformat(),
        "current": current is not None and row.pk == current.pk,
    }


@api_view(("GET", "DELETE"))
def sessions_view(request: HttpRequest) -> HttpResponse:
    """The sessions of the user (GET); DELETE ends all but the current one, after a
    step-up."""
    user = _signed_in_user(request)
    current = _current(request)
    if request.method == "DELETE":
        refused = step_up_refusal(request, current, "end_other_sessions")
        if refused is not None:
            return refused
        ended = services.end_all_sessions(user, "signed_out_elsewhere", keep=current)
        return JsonResponse({"ended": ended})
    rows = services.active_sessions(user)
    return JsonResponse({"sessions": [_session_json(row, current) for row in rows]})


@api_view(("DELETE",))
def session_view(request: HttpRequest, session_id: str) -> HttpResponse:
    """End one session; ending a token client revokes its refresh family and access tokens.
    Ending the current one is signing out; ending another needs a step-up."""
    user = _signed_in_user(request)
    target = tracking.find_active(user, session_id)
    if target is None:
        raise SignInError("not_found")
    current = _current(request)
    if current is None or target.pk != current.pk:
        refused = step_up_refusal(request, current, "end_session")
        if refused is not None:
            return refused
    services.end_own_session(request, target)
    return HttpResponse(status=204)


# Step-up (re-authentication).


def step_up_refusal(
    request: HttpRequest, current: UserSession | None, action: str
) -> JsonResponse | None:
    """``403 reauthentication_required`` with the URLs to step up by, when ``action``
    needs a fresher proof than ``current`` has; ``None`` to go ahead."""
    if not reauthentication.step_up_needed(request, current, action):
        return None
    error = SignInError("reauthentication_required")
    body = {"code": error.code, "message": error.message, "reauthenticate": step_up_urls()}
    return JsonResponse({"error": body}, status=error.status)


def step_up_urls() -> dict[str, str]:
    """Where a client steps up: by emailed code, and by passkey where that is mounted."""
    urls = {
        "send": reverse("passwordless-api:reauthenticate-send"),
        "verify": reverse("passwordless-api:reauthenticate-verify"),
    }
    if app_settings.PASSKEYS:
        with contextlib.suppress(NoReverseMatch):  # the passkey routes are optional
            urls["passkey_begin"] = reverse("passwordless-api:passkey-reauth-begin")
    return urls


@api_view(("GET",))
def jwks_view(request: HttpRequest) -> HttpResponse:
    response = JsonResponse(keys.jwks())
    response["Cache-Control"] = "public, max-age=300"
    return response


@api_view(("GET",))
def openapi_view(request: HttpRequest) -> HttpResponse:
    return JsonResponse(openapi_document())
