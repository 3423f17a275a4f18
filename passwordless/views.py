"""HTML pages of the sign-in flow. Thin: parse the form, call a service, render."""

from __future__ import annotations

from typing import Any, cast

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
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from . import services
from .adapter import get_adapter
from .addresses import mask_email
from .client import mask_ip
from .conf import app_settings
from .devices import describe_user_agent
from .errors import SignInError
from .forms import CodeForm, LoginForm
from .models import LoginRequest
from .responses import json_error
from .services.sessions import SESSION_LINK_KEY

__all__ = [
    "CodeView",
    "LinkConfirmView",
    "LinkView",
    "LoginView",
    "SessionsView",
    "WaitStatusView",
    "logout_view",
    "resend_view",
]

#: What the waiting page says about its email, by the delivery state the worker records.
DELIVERY_TEXT = {
    "sending": "Sending the email…",
    "sent": "Email sent. It can take a minute to arrive.",
    "delayed": "The email is delayed. We're still trying; no need to ask again.",
    "failed": "We couldn't send the email.",
}


def _protected(view: type[View]) -> type[View]:
    """Secrets pass through these pages: never cache them, never print them in error reports."""
    for decorator in (never_cache, csrf_protect, sensitive_post_parameters()):
        view = method_decorator(decorator, name="dispatch")(view)
    return view


def _render(
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


def _signed_in(login_request: LoginRequest) -> HttpResponseRedirect:
    return HttpResponseRedirect(get_adapter().get_login_redirect_url(login_request))


@_protected
class LoginView(View):
    """Ask for an email address, start a sign-in, and move on to the code page."""

    template_name = "passwordless/login.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        form = LoginForm(initial={"next": request.GET.get("next", "")})
        return _render(request, self.template_name, {"form": form})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = LoginForm(request.POST)
        if not form.is_valid():
            return _render(request, self.template_name, {"form": form}, status=400)
        try:
            started = services.start_sign_in(
                form.cleaned_data["email"],
                request=request,
                next_url=form.cleaned_data["next"],
                replaces=services.pending_request_id(request),
            )
        except SignInError as error:
            return _render(request, self.template_name, {"form": form}, error)
        services.remember_request(request, started.login_request)
        response = redirect("passwordless:code")
        services.bind_browser(response, started)
        return response


@_protected
class CodeView(View):
    """Enter the code from the email, or wait here while another device approves."""

    template_name = "passwordless/code.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        public_id = services.pending_request_id(request)
        login_request = LoginRequest.objects.filter(public_id=public_id).first()
        if public_id is None or login_request is None:
            messages.info(request, "Enter your email address to get a sign-in code.")
            return redirect("passwordless:login")
        self.login_request = login_request
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        try:
            approved = services.collect_approval(self.login_request, request=request)
            if approved is not None:
                login_request, user = approved
                services.sign_in(request, user, login_request, method="approval")
                return _signed_in(login_request)
        except SignInError as error:
            return self.page(CodeForm(), error)
        return self.page(CodeForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = CodeForm(request.POST)
        if not form.is_valid():
            return self.page(form, status=400)
        try:
            login_request, user = services.verify_code(
                self.login_request.public_id, form.cleaned_data["code"], request=request
            )
            services.sign_in(request, user, login_request, method="code")
        except SignInError as error:
            return self.page(CodeForm(), error)
        return _signed_in(login_request)

    def page(
        self, form: CodeForm, error: SignInError | None = None, status: int = 200
    ) -> HttpResponse:
        wait = services.wait_status(self.login_request)
        context = {
            "form": form,
            "wait": wait,
            "waiting": wait.status == "pending" and error is None,
            "delivery_text": DELIVERY_TEXT.get(wait.delivery or "", ""),
            "email": self.login_request.email,
            "minutes": int(app_settings.REQUEST_LIFETIME.total_seconds() // 60),
            "code_length": app_settings.CODE_LENGTH,
            "signup_enabled": get_adapter().is_signup_open(self.login_request.email),
        }
        return _render(self.request, self.template_name, context, error, status)


@method_decorator(require_POST, name="dispatch")
class ResendView(CodeView):
    """Send the email again, with a fresh code and link."""

    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            started = services.resend(self.login_request.public_id, request=request)
        except SignInError as error:
            return self.page(CodeForm(), error)
        services.remember_request(request, started.login_request)
        messages.success(request, "We've sent a new email with a new code and link.")
        response = redirect("passwordless:code")
        services.bind_browser(response, started)
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
            services.check_poll_rate(request)
            login_request = services.load_request(services.pending_request_id(request))
            approved = services.collect_approval(login_request, request=request)
            if approved is not None:
                login_request, user = approved
                services.sign_in(request, user, login_request, method="approval")
                url = get_adapter().get_login_redirect_url(login_request)
                return JsonResponse({"status": "signed_in", "redirect": url})
            wait = services.wait_status(login_request)
        except SignInError as error:
            return json_error(error)
        body = {"status": wait.status}
        if wait.delivery is not None:
            body.update(delivery=wait.delivery, delivery_text=DELIVERY_TEXT[wait.delivery])
        return JsonResponse(body)


@method_decorator(never_cache, name="dispatch")
class LinkView(View):
    """The emailed link. Opening it only looks the link up and never signs in.

    The token moves from the URL into the session (as Django's password reset
    does), and the browser is sent to a URL without it, so it leaks through
    neither the Referer header nor the history.
    """

    http_method_names = ["get", "head"]

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        try:
            preview = services.preview_link(token, request)
        except SignInError as error:
            response: HttpResponse = _render(request, "passwordless/link_error.html", {}, error)
        else:
            request.session[SESSION_LINK_KEY] = preview.token_hash
            response = redirect("passwordless:link-confirm")
        response["Referrer-Policy"] = "no-referrer"
        return response


@_protected
class LinkConfirmView(View):
    """After a link: one click in the browser that asked; elsewhere, approve or type the code.

    Nothing here changes state on GET, and no POST changes anything without an
    explicit choice: the button of the browser that asked, a picked number, or
    the code.
    """

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        token_hash = request.session.get(SESSION_LINK_KEY)
        if not isinstance(token_hash, str):
            return self.refused(SignInError("request_not_found"))
        self.token_hash = token_hash
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        try:
            preview = services.preview_link_hash(self.token_hash, request)
        except SignInError as error:
            return self.refused(error)
        return self.page(preview)

    def post(self, request: HttpRequest) -> HttpResponse:
        action = request.POST.get("action")
        try:
            if action == "sign_in":
                login_request, user = services.confirm_link(self.token_hash, request=request)
                services.sign_in(request, user, login_request, method="link")
                return _signed_in(login_request)
            if action == "approve":
                services.approve(self.token_hash, request.POST.get("pick"), request=request)
                self.request.session.pop(SESSION_LINK_KEY, None)
                return _render(request, "passwordless/link_approved.html", {})
            if action == "code":
                return self.sign_in_here(request)
            raise SignInError("pick_missing")
        except SignInError as error:
            if error.code in {"pick_missing", "browser_mismatch", "code_invalid"}:
                try:
                    preview = services.preview_link_hash(self.token_hash, request)
                except SignInError as dead:
                    return self.refused(dead)
                return self.page(preview, error=error)
            return self.refused(error)

    def sign_in_here(self, request: HttpRequest) -> HttpResponse:
        """ "Sign in on this device instead": the code from the same email, which scanners lack."""
        preview = services.preview_link_hash(self.token_hash, request)
        form = CodeForm(request.POST)
        if not form.is_valid():
            return self.page(preview, code_form=form, status=400)
        login_request, user = services.verify_code(
            preview.login_request.public_id, form.cleaned_data["code"], request=request
        )
        services.sign_in(request, user, login_request, method="code")
        return _signed_in(login_request)

    def page(
        self,
        preview: services.LinkPreview,
        *,
        error: SignInError | None = None,
        code_form: CodeForm | None = None,
        status: int = 200,
    ) -> HttpResponse:
        login_request = preview.login_request
        context = {
            "same_browser": preview.same_browser,
            "masked_email": mask_email(login_request.email),
            "device": describe_user_agent(login_request.user_agent),
            "network": mask_ip(login_request.requester_ip),
            "requested_at": login_request.created_at,
            "choices": login_request.shuffled_choices()
            if app_settings.CROSS_DEVICE_APPROVAL
            else [],
            "code_form": code_form or CodeForm(),
            "code_length": app_settings.CODE_LENGTH,
        }
        return _render(self.request, "passwordless/link_confirm.html", context, error, status)

    def refused(self, error: SignInError) -> HttpResponse:
        if error.code != "rate_limited":
            self.request.session.pop(SESSION_LINK_KEY, None)
        return _render(self.request, "passwordless/link_error.html", {}, error)


@never_cache
@csrf_protect
@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    services.sign_out(request)
    messages.success(request, "You're signed out.")
    return redirect("passwordless:login")


@method_decorator(login_required, name="dispatch")
@_protected
class SessionsView(View):
    """The person's signed-in devices: end one, or sign out everywhere else."""

    template_name = "passwordless/sessions.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        current = services.current_session(request)
        rows = services.active_sessions(cast(AbstractBaseUser, request.user))
        return _render(request, self.template_name, {"sessions": rows, "current": current})

    def post(self, request: HttpRequest) -> HttpResponse:
        user = cast(AbstractBaseUser, request.user)
        current = services.current_session(request)
        if request.POST.get("action") == "others":
            ended = services.end_all_sessions(user, "signed_out_elsewhere", keep=current)
            messages.success(request, f"Signed out on {ended} other device(s).")
            return redirect("passwordless:sessions")
        target = services.find_active(user, request.POST.get("session"))
        if target is None:
            messages.error(request, "That session has already ended.")
        elif current is not None and target.pk == current.pk:
            services.sign_out(request, reason="signed_out")
            messages.success(request, "You're signed out.")
            return redirect("passwordless:login")
        else:
            services.end_session(target, reason="ended_by_user")
            messages.success(request, f"Signed out on {target.device}.")
        return redirect("passwordless:sessions")
