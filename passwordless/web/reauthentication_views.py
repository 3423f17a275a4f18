"""The step-up page: "Confirm it's you", by a code emailed to the account's address or
by a passkey, before a sensitive action; then back to the page that asked."""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch, reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views import View

from .. import services
from ..adapter import get_adapter
from ..addresses import mask_email
from ..conf import app_settings
from ..errors import SignInError
from ..forms import CodeForm
from ..models import LoginRequest, Passkey, UserSession
from ..services import reauthentication
from ..services.start import start_confirmation
from ..services.verification import prove_by_code
from .pages import protected, render_page

__all__ = ["SESSION_STEP_UP_KEY", "ReauthenticateView"]

#: The step-up request this browser session asked for, whose code the page takes.
SESSION_STEP_UP_KEY = "passwordless_step_up_request"


@method_decorator(login_required, name="dispatch")
@protected
class ReauthenticateView(View):
    """Email a code to the account's address, then take it; or use a passkey."""

    template_name = "passwordless/reauthenticate.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        self.next_url = _safe_next(request)
        self.current = services.current_session(request)
        if self.current is None or self.current.user_id != request.user.pk:
            # Signed in by something this app does not track (no SessionTimeoutMiddleware):
            # nothing to record a proof on, but a sign-in through the app is a fresh one.
            return redirect_to_sign_in(self.next_url)
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.page(CodeForm())

    def post(self, request: HttpRequest) -> HttpResponseBase:
        if request.POST.get("action") == "send":
            return self.send()
        return self.verify()

    def send(self) -> HttpResponseBase:
        request, current = self.request, cast(UserSession, self.current)
        try:
            started = start_confirmation(
                LoginRequest.Purpose.REAUTHENTICATE, current, request=request
            )
        except SignInError as error:
            return self.page(CodeForm(), error)
        request.session[SESSION_STEP_UP_KEY] = started.login_request.public_id
        email = mask_email(started.login_request.email)
        messages.success(request, _("We've emailed a code to %(email)s.") % {"email": email})
        return self.back_here()

    def verify(self) -> HttpResponseBase:
        request, current = self.request, cast(UserSession, self.current)
        public_id = request.session.get(SESSION_STEP_UP_KEY)
        if not isinstance(public_id, str):
            messages.info(request, _("First ask for a code: we'll email it to you."))
            return self.back_here()
        form = CodeForm(request.POST)
        if not form.is_valid():
            return self.page(form, status=400)
        try:
            prove_by_code(
                public_id, form.cleaned_data["code"], user_session=current, request=request
            )
        except SignInError as error:
            return self.page(CodeForm(), error)
        request.session.pop(SESSION_STEP_UP_KEY, None)
        messages.success(request, _("Thanks, that's confirmed."))
        return HttpResponseRedirect(self.next_url)

    def back_here(self) -> HttpResponseRedirect:
        query = urlencode({"next": self.next_url})
        return HttpResponseRedirect(f"{reverse('passwordless:reauthenticate')}?{query}")

    def page(
        self, form: CodeForm, error: SignInError | None = None, status: int = 200
    ) -> HttpResponse:
        user = cast(AbstractBaseUser, self.request.user)
        current = cast(UserSession, self.current)
        context = {
            "form": form,
            "next": self.next_url,
            "fresh": reauthentication.is_fresh(current),
            "code_sent": isinstance(self.request.session.get(SESSION_STEP_UP_KEY), str),
            "masked_email": mask_email(getattr(user, user.get_email_field_name()) or ""),
            "minutes": int(app_settings.REQUEST_LIFETIME.total_seconds() // 60),
            "passkey": _passkey_offered(user),
            "cancel_url": resolve_url(app_settings.LOGIN_REDIRECT_URL),
        }
        return render_page(self.request, self.template_name, context, error, status)


def _safe_next(request: HttpRequest) -> str:
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if next_url and get_adapter().is_safe_next_url(next_url, request):
        return next_url
    return resolve_url(app_settings.LOGIN_REDIRECT_URL)


def redirect_to_sign_in(next_url: str) -> HttpResponseRedirect:
    query = urlencode({"next": next_url})
    return HttpResponseRedirect(f"{reverse('passwordless:login')}?{query}")


def _passkey_offered(user: AbstractBaseUser) -> bool:
    """Whether to show "Use your passkey": passkeys are on (``PASSKEYS``), their step-up is
    mounted, and this account has a passkey to use."""
    if not app_settings.PASSKEYS:
        return False
    try:
        reverse("passwordless:passkey-reauth-begin")
        reverse("passwordless:passkey-reauth-finish")
    except NoReverseMatch:
        return False
    return Passkey.objects.filter(user_id=user.pk).exists()
