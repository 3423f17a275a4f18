"""HTML pages of the sign-in flow. Thin: parse the form, call a service, render."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
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
from .conf import app_settings
from .devices import describe_user_agent
from .errors import SignInError
from .forms import CodeForm, LoginForm
from .models import LoginRequest
from .services.sessions import SESSION_LINK_KEY

__all__ = ["CodeView", "LinkConfirmView", "LinkView", "LoginView", "logout_view", "resend_view"]


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
            login_request = services.start_sign_in(
                form.cleaned_data["email"],
                request=request,
                next_url=form.cleaned_data["next"],
                replaces=services.pending_request_id(request),
            )
        except SignInError as error:
            return _render(request, self.template_name, {"form": form}, error)
        services.remember_request(request, login_request)
        return redirect("passwordless:code")


@_protected
class CodeView(View):
    """Enter the code from the email."""

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
        return self.page(CodeForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = CodeForm(request.POST)
        if not form.is_valid():
            return self.page(form, status=400)
        try:
            login_request, user = services.verify_code(
                self.login_request.public_id, form.cleaned_data["code"], request=request
            )
        except SignInError as error:
            return self.page(CodeForm(), error)
        services.sign_in(request, user, login_request, method="code")
        return _signed_in(login_request)

    def page(
        self, form: CodeForm, error: SignInError | None = None, status: int = 200
    ) -> HttpResponse:
        context = {
            "form": form,
            "email": self.login_request.email,
            "minutes": int(app_settings.REQUEST_LIFETIME.total_seconds() // 60),
            "code_length": app_settings.CODE_LENGTH,
            "signup_enabled": app_settings.SIGNUP_ENABLED,
        }
        return _render(self.request, self.template_name, context, error, status)


@method_decorator(require_POST, name="dispatch")
class ResendView(CodeView):
    """Send the email again, with a fresh code and link."""

    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            login_request = services.resend(self.login_request.public_id, request=request)
        except SignInError as error:
            return self.page(CodeForm(), error)
        services.remember_request(request, login_request)
        messages.success(request, "We've sent a new email with a new code and link.")
        return redirect("passwordless:code")


resend_view = ResendView.as_view()


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
            preview = services.preview_link(token)
        except SignInError as error:
            response: HttpResponse = _render(request, "passwordless/link_error.html", {}, error)
        else:
            request.session[SESSION_LINK_KEY] = preview.token_hash
            response = redirect("passwordless:link-confirm")
        response["Referrer-Policy"] = "no-referrer"
        return response


@_protected
class LinkConfirmView(View):
    """Name the account and ask for one click: the POST is what signs in."""

    template_name = "passwordless/link_confirm.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        token_hash = request.session.get(SESSION_LINK_KEY)
        if not isinstance(token_hash, str):
            return self.refused(SignInError("request_not_found"))
        self.token_hash = token_hash
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        try:
            preview = services.preview_link_hash(self.token_hash)
        except SignInError as error:
            return self.refused(error)
        login_request = preview.login_request
        context = {
            "masked_email": mask_email(login_request.email),
            "device": describe_user_agent(login_request.user_agent),
            "requested_at": login_request.created_at,
        }
        return _render(request, self.template_name, context)

    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            login_request, user = services.confirm_link(self.token_hash, request=request)
        except SignInError as error:
            return self.refused(error)
        services.sign_in(request, user, login_request, method="link")
        return _signed_in(login_request)

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
