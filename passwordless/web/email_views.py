"""The pages of an address change: ask (after a step-up), confirm with the code or the
link mailed to the new address, and undo from the link mailed to the old one.

Thin, like the others: parse, call ``services.email_change``, render. Tokens never stay
in a URL: a link's moves into the session and the browser goes on to a clean URL, as
``LinkView`` does, so it leaks through neither the Referer header nor the history.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views import View

from .. import services
from ..addresses import MAX_EMAIL_LENGTH, mask_email
from ..conf import app_settings
from ..errors import SignInError
from ..forms import CodeForm
from ..models import EmailChange, UserSession
from ..services import email_change
from .pages import protected, render_page
from .reauthentication import step_up, step_up_redirect

__all__ = [
    "EmailCodeView",
    "EmailLinkView",
    "EmailView",
    "UndoLinkView",
    "UndoView",
    "link_opened",
    "resend_view",
]

SESSION_CHANGE_KEY = "passwordless_email_change"
SESSION_CHANGE_LINK_KEY = "passwordless_email_link"
SESSION_UNDO_KEY = "passwordless_email_undo"


class NewEmailForm(forms.Form):
    email = forms.CharField(
        label=_("New email address"),
        strip=False,
        widget=forms.EmailInput(
            attrs={
                "autocomplete": "email",
                "autofocus": True,
                "maxlength": MAX_EMAIL_LENGTH,
                "spellcheck": "false",
            }
        ),
        error_messages={"required": _("Enter the new email address.")},
    )


def _user_email(request: HttpRequest) -> str:
    user = request.user
    return str(getattr(user, user.get_email_field_name(), "") or "")  # type: ignore[union-attr]


def _code_context(change: EmailChange) -> dict[str, Any]:
    return {
        "change": change,
        "masked_email": mask_email(change.new_email),
        "minutes": int(app_settings.REQUEST_LIFETIME.total_seconds() // 60),
        "code_length": app_settings.CODE_LENGTH,
    }


@method_decorator(login_required, name="dispatch")
@protected
class EmailView(View):
    """The account's address, and a form for a new one. Needs a fresh step-up first, so
    the person confirms it's them before typing, not after."""

    template_name = "passwordless/email.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        refused = step_up(request, email_change.ACTION)
        if refused is not None:
            return refused
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.page(NewEmailForm())

    def post(self, request: HttpRequest) -> HttpResponseBase:
        form = NewEmailForm(request.POST)
        if not form.is_valid():
            return self.page(form, status=400)
        try:
            change = email_change.request_change(
                services.current_session(request), form.cleaned_data["email"], request=request
            )
        except SignInError as error:
            if error.code == "reauthentication_required":
                return step_up_redirect(request)
            return self.page(form, error)
        request.session[SESSION_CHANGE_KEY] = change.confirmation.public_id
        return redirect("passwordless:email-code")

    def page(
        self, form: NewEmailForm, error: SignInError | None = None, status: int = 200
    ) -> HttpResponse:
        context = {"form": form, "current_email": _user_email(self.request)}
        return render_page(self.request, self.template_name, context, error, status)


@method_decorator(login_required, name="dispatch")
@protected
class EmailCodeView(View):
    """Enter the code mailed to the new address. The page says the same whether or not
    the address is another account's (then no mail went out): asking must tell nothing."""

    template_name = "passwordless/email_code.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        self.current = services.current_session(request)
        change = email_change.pending_change(self.current, request.session.get(SESSION_CHANGE_KEY))
        if change is None or change.confirmed_at is not None:
            messages.info(request, gettext("Enter the new email address for your account."))
            return redirect("passwordless:email")
        self.change = change
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.page(CodeForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = CodeForm(request.POST)
        if not form.is_valid():
            return self.page(form, status=400)
        try:
            change = email_change.confirm_by_code(
                self.change.confirmation.public_id,
                form.cleaned_data["code"],
                user_session=self.current,
                request=request,
            )
        except SignInError as error:
            return self.page(CodeForm(), error)
        return _changed(request, change)

    def page(
        self, form: CodeForm, error: SignInError | None = None, status: int = 200
    ) -> HttpResponse:
        context = {"form": form, **_code_context(self.change)}
        return render_page(self.request, self.template_name, context, error, status)


class ResendView(EmailCodeView):
    """Mail the new address again (the same request: its first code stays valid). Like
    asking, it needs a fresh step-up."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            email_change.request_change(self.current, self.change.new_email, request=request)
        except SignInError as error:
            if error.code == "reauthentication_required":
                messages.info(request, gettext("Confirm it's you, then send the code again."))
                query = urlencode({"next": reverse("passwordless:email-code")})
                return HttpResponseRedirect(f"{reverse('passwordless:reauthenticate')}?{query}")
            return self.page(CodeForm(), error)
        messages.success(request, gettext("We've sent a new email with a new code and link."))
        return redirect("passwordless:email-code")


resend_view = ResendView.as_view()


def _changed(request: HttpRequest, change: EmailChange) -> HttpResponse:
    for key in (SESSION_CHANGE_KEY, SESSION_CHANGE_LINK_KEY):
        request.session.pop(key, None)
    messages.success(
        request,
        gettext(
            "Your email address is now %(email)s. We told your old address, and signed you "
            "out on your other devices."
        )
        % {"email": change.new_email},
    )
    return redirect("passwordless:email")


def link_opened(request: HttpRequest, token_hash: str) -> HttpResponse:
    """Where ``LinkView`` sends the link of an address change: its own page, here."""
    request.session[SESSION_CHANGE_LINK_KEY] = token_hash
    return redirect("passwordless:email-link")


@protected
class EmailLinkView(View):
    """The link mailed to the new address. In the signed-in session that asked, one click
    confirms; anywhere else (another browser, a phone, a mail scanner) nothing can, and
    the page says where to go."""

    template_name = "passwordless/email_link.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        token_hash = request.session.get(SESSION_CHANGE_LINK_KEY)
        if not isinstance(token_hash, str):
            return self.refused(SignInError("request_not_found"))
        self.token_hash = token_hash
        self.current: UserSession | None = (
            services.current_session(request) if request.user.is_authenticated else None
        )
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        try:
            preview = email_change.preview_link(self.token_hash, self.current, request)
        except SignInError as error:
            return self.refused(error)
        return self.page(preview)

    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            change = email_change.confirm_by_link(
                self.token_hash, user_session=self.current, request=request
            )
        except SignInError as error:
            if error.code in ("browser_mismatch", "email_taken"):
                try:
                    preview = email_change.preview_link(self.token_hash, self.current, request)
                except SignInError as dead:
                    return self.refused(dead)
                return self.page(preview, error)
            return self.refused(error)
        return _changed(request, change)

    def page(
        self, preview: email_change.LinkOfChange, error: SignInError | None = None
    ) -> HttpResponse:
        context = {
            "same_session": preview.same_session,
            "masked_email": mask_email(preview.email_change.new_email),
        }
        return render_page(self.request, self.template_name, context, error)

    def refused(self, error: SignInError) -> HttpResponse:
        if error.code != "rate_limited":
            self.request.session.pop(SESSION_CHANGE_LINK_KEY, None)
        return render_page(self.request, self.template_name, {}, error)


@protected
class UndoLinkView(View):
    """The undo link mailed to the old address. Opening it changes nothing: its token
    moves into the session, and the page asks."""

    http_method_names = ["get", "head"]

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        token_hash = email_change.undo_token_hash(token)
        try:
            email_change.preview_undo(token_hash)
        except SignInError as error:
            response = render_page(request, "passwordless/email_undo.html", {}, error)
        else:
            request.session[SESSION_UNDO_KEY] = token_hash
            response = redirect("passwordless:email-undo-confirm")
        response["Referrer-Policy"] = "no-referrer"
        return response


@protected
class UndoView(View):
    """Put the old address back, by an explicit POST: once, within the undo period. Signs
    everyone out, this browser too, and signs nobody in."""

    template_name = "passwordless/email_undo.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        token_hash = request.session.get(SESSION_UNDO_KEY)
        if not isinstance(token_hash, str):
            return self.page(error=SignInError("undo_invalid"))
        self.token_hash = token_hash
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        try:
            change = email_change.preview_undo(self.token_hash)
        except SignInError as error:
            return self.page(error=error)
        return self.page(change)

    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            change = email_change.undo(self.token_hash, request=request)
        except SignInError as error:
            return self.page(error=error)
        request.session.pop(SESSION_UNDO_KEY, None)
        return self.page(change, done=True)

    def page(
        self,
        change: EmailChange | None = None,
        *,
        error: SignInError | None = None,
        done: bool = False,
    ) -> HttpResponse:
        context: dict[str, Any] = {"done": done}
        if change is not None:
            context.update(
                masked_old=mask_email(change.old_email),
                masked_new=mask_email(change.new_email),
                changed_at=change.confirmed_at,
            )
        return render_page(self.request, self.template_name, context, error)
