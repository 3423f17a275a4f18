"""The magic link's pages: opening it changes nothing; one click in the browser that
asked, number matching or the code anywhere else."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect
from django.utils import translation
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache

from .. import services
from ..addresses import mask_email
from ..client import mask_ip
from ..conf import app_settings
from ..devices import describe_user_agent
from ..errors import SignInError
from ..forms import CodeForm
from ..models import LoginRequest
from ..services import verification
from ..services.sessions import SESSION_LINK_KEY
from . import email_views
from .pages import protected, redirect_signed_in, render_page

__all__ = ["LinkConfirmView", "LinkView"]


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
            response: HttpResponse = render_page(
                request, "passwordless/link_error.html", {}, error
            )
        else:
            if preview.login_request.purpose == LoginRequest.Purpose.CHANGE_EMAIL:
                # A new address's link: its own page, which confirms it only in the
                # session that asked (``email_views.EmailLinkView``).
                response = email_views.link_opened(request, preview.token_hash)
            else:
                request.session[SESSION_LINK_KEY] = preview.token_hash
                response = redirect("passwordless:link-confirm")
        response["Referrer-Policy"] = "no-referrer"
        return response


@protected
class LinkConfirmView(View):
    """After a link: one click in the browser that asked; elsewhere, approve or type the code.

    Nothing here changes state on GET, and no POST changes anything without an
    explicit choice: the button of the browser that asked, a typed number, or
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
            preview = verification.preview_link_hash(self.token_hash, request)
        except SignInError as error:
            return self.refused(error)
        return self.page(preview)

    def post(self, request: HttpRequest) -> HttpResponse:
        action = request.POST.get("action")
        try:
            if action == "sign_in":
                done = services.complete_link(
                    self.token_hash,
                    request=request,
                    finisher=services.BrowserSession(request, "link"),
                )
                return redirect_signed_in(done.login_request)
            if action == "approve":
                services.approve(self.token_hash, request.POST.get("number"), request=request)
                self.request.session.pop(SESSION_LINK_KEY, None)
                return render_page(request, "passwordless/link_approved.html", {})
            if action == "code":
                return self.sign_in_here(request)
            raise SignInError("number_missing")
        except SignInError as error:
            if error.code in verification.RETRYABLE_ON_PAGE:
                try:
                    preview = verification.preview_link_hash(self.token_hash, request)
                except SignInError as dead:
                    return self.refused(dead)
                return self.page(preview, error=error)
            return self.refused(error)

    def sign_in_here(self, request: HttpRequest) -> HttpResponse:
        """ "Sign in on this device instead": the code from the same email, which scanners lack."""
        preview = verification.preview_link_hash(self.token_hash, request)
        form = CodeForm(request.POST)
        if not form.is_valid():
            return self.page(preview, code_form=form, status=400)
        done = services.complete_code(
            preview.login_request.public_id,
            form.cleaned_data["code"],
            request=request,
            finisher=services.BrowserSession(request, "code"),
        )
        return redirect_signed_in(done.login_request)

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
            "approval": app_settings.CROSS_DEVICE_APPROVAL and not preview.approval_off,
            "approval_off": preview.approval_off,
            "code_form": code_form or CodeForm(),
            "code_length": app_settings.CODE_LENGTH,
        }
        # issue 18: in the language the sign-in was asked in, as its email is (whatever
        # this browser's own); LocaleMiddleware keeps the Content-Language set here.
        language = login_request.locale or translation.get_language()
        with translation.override(language):
            response = render_page(
                self.request, "passwordless/link_confirm.html", context, error, status
            )
        if language:
            response["Content-Language"] = language
        return response

    def refused(self, error: SignInError) -> HttpResponse:
        if error.code != "rate_limited":
            self.request.session.pop(SESSION_LINK_KEY, None)
        return render_page(self.request, "passwordless/link_error.html", {}, error)
