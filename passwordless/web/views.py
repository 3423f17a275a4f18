"""HTML pages of the sign-in flow. Thin: parse the form, call a service, render."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
)
from django.shortcuts import redirect
from django.utils.decorators import method_decorator
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_POST

from .. import captcha, services
from ..adapter import get_adapter
from ..conf import app_settings
from ..errors import SignInError
from ..forms import CodeForm, LoginForm
from ..models import LoginRequest
from ..responses import json_error
from ..services import approval, sessions
from .pages import protected, redirect_signed_in, render_page

__all__ = ["CodeView", "LoginView", "WaitStatusView", "logout_view", "resend_view"]

#: What the waiting page says about its email, by the delivery state the worker records.
DELIVERY_TEXT = {
    "sending": _("Sending the email…"),
    "sent": _("Email sent. It can take a minute to arrive."),
    "delayed": _("The email is delayed. We're still trying; no need to ask again."),
    "failed": _("We couldn't send the email."),
}


@protected
class LoginView(View):
    """Ask for an email address, start a sign-in, and move on to the code page."""

    template_name = "passwordless/login.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        form = LoginForm(initial={"next": request.GET.get("next", "")})
        return self.page(form)

    def post(self, request: HttpRequest) -> HttpResponse:
        form = LoginForm(request.POST)
        if not form.is_valid():
            return self.page(form, status=400)
        try:
            started = services.start_sign_in(
                form.cleaned_data["email"],
                request=request,
                next_url=form.cleaned_data["next"],
                replaces=sessions.pending_request_id(request),
                # issue 18, bots: the CAPTCHA's answer, and what the form's traps saw.
                captcha=request.POST.get(captcha.FIELDS.get(captcha.enabled() or "", ""), ""),
                bot_suspicion=form.bot_suspicion(),
            )
        except SignInError as error:
            return self.page(form, error)
        sessions.remember_request(request, started.login_request)
        response = redirect("passwordless:code")
        sessions.bind_browser(response, started)
        return response

    def page(
        self, form: LoginForm, error: SignInError | None = None, status: int = 200
    ) -> HttpResponse:
        context = {"form": form, "captcha": captcha.widget()}
        response = render_page(self.request, self.template_name, context, error, status)
        sources = captcha.csp_sources()
        if sources:
            # issue 18: the CAPTCHA's script and frame are allowed on this page only, and
            # only when one is on (django-csp adds these to the project's policy).
            response._csp_update = sources  # type: ignore[attr-defined]
        return response


@protected
class CodeView(View):
    """Enter the code from the email, or wait here while another device approves."""

    template_name = "passwordless/code.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        public_id = sessions.pending_request_id(request)
        if public_id is None:
            return self.start_over()
        self.public_id = public_id
        return super().dispatch(request, *args, **kwargs)

    @cached_property
    def login_request(self) -> LoginRequest | None:
        """The browser's pending request, read when a page shows it. A code's POST does not
        read it first: ``complete_code`` reads it once, under its lock."""
        return LoginRequest.objects.by_public_id(self.public_id)

    def start_over(self) -> HttpResponse:
        messages.info(self.request, _("Enter your email address to get a sign-in code."))
        return redirect("passwordless:login")

    def get(self, request: HttpRequest) -> HttpResponse:
        if self.login_request is None:
            return self.start_over()
        try:
            done = services.collect_approval(
                self.login_request,
                request=request,
                finisher=services.BrowserSession(request, "approval"),
            )
            if done is not None:
                return redirect_signed_in(done.login_request)
        except SignInError as error:
            return self.page(CodeForm(), error)
        return self.page(CodeForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = CodeForm(request.POST)
        if not form.is_valid():
            return self.page(form, status=400)
        try:
            done = services.complete_code(
                self.public_id,
                form.cleaned_data["code"],
                request=request,
                finisher=services.BrowserSession(request, "code"),
            )
        except SignInError as error:
            return self.page(CodeForm(), error)
        return redirect_signed_in(done.login_request)

    def page(
        self, form: CodeForm, error: SignInError | None = None, status: int = 200
    ) -> HttpResponse:
        if self.login_request is None:
            return self.start_over()  # gone meanwhile (purged), or never there
        wait = services.wait_status(self.login_request)
        context = {
            "form": form,
            "wait": wait,
            "waiting": wait.status == "pending" and error is None,
            "delivery_text": DELIVERY_TEXT.get(wait.delivery or "", ""),
            "email": self.login_request.email,
            "minutes": int(app_settings.REQUEST_LIFETIME.total_seconds() // 60),
            "code_length": app_settings.CODE_LENGTH,
            "signup_enabled": get_adapter().may_sign_up(self.login_request),
        }
        return render_page(self.request, self.template_name, context, error, status)


@method_decorator(require_POST, name="dispatch")
class ResendView(CodeView):
    """Send the email again, with a fresh code and link."""

    def post(self, request: HttpRequest) -> HttpResponse:
        if self.login_request is None:
            return self.start_over()
        try:
            started = services.resend(self.login_request.public_id, request=request)
        except SignInError as error:
            return self.page(CodeForm(), error)
        sessions.remember_request(request, started.login_request)
        messages.success(request, _("We've sent a new email with a new code and link."))
        response = redirect("passwordless:code")
        sessions.bind_browser(response, started)
        return response


resend_view = ResendView.as_view()


@method_decorator(never_cache, name="dispatch")
class WaitStatusView(View):
    """What the waiting page's script polls: one read, no database write, rate-limited.

    Once another device approved the request, this response signs the
    browser that asked in, and tells the script where to go.
    """

    http_method_names = ["get"]

    def get(self, request: HttpRequest) -> JsonResponse:
        try:
            approval.check_poll_rate(request)
            login_request = approval.load_request(sessions.pending_request_id(request))
            done = services.collect_approval(
                login_request,
                request=request,
                finisher=services.BrowserSession(request, "approval"),
            )
            if done is not None:
                url = get_adapter().get_login_redirect_url(done.login_request)
                return JsonResponse({"status": "signed_in", "redirect": url})
            wait = services.wait_status(login_request)
        except SignInError as error:
            return json_error(error)
        body = {"status": wait.status}
        if wait.delivery is not None:
            body.update(delivery=wait.delivery, delivery_text=str(DELIVERY_TEXT[wait.delivery]))
        return JsonResponse(body)


@never_cache
@csrf_protect
@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    services.sign_out(request)
    messages.success(request, _("You're signed out."))
    return redirect("passwordless:login")
