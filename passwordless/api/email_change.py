"""Changing the email address from an API client: ``change`` mails a code to the new
address (after a fresh step-up), ``verify`` takes it in the same session and makes the
change (``services.email_change``). The undo link mailed to the old address is a page.

The session is the caller's: a browser's, or for a token client the ``UserSession`` of
its token family. Only it can confirm, and it stays signed in; the others end.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from ..conf import app_settings
from ..errors import SignInError
from ..forms import CodeForm
from ..models import UserSession
from ..services import email_change
from .parsing import json_body, required_str
from .views import _accepted, _current, _signed_in_user, _user_json, api_view, step_up_refusal

__all__ = ["change_view", "verify_view"]


def _session(request: HttpRequest) -> UserSession:
    _signed_in_user(request)
    current = _current(request)
    if current is None:
        # Signed in by something this app does not track: nothing to confirm it to.
        raise SignInError("not_authenticated")
    return current


@api_view(("POST",))
def change_view(request: HttpRequest) -> HttpResponse:
    """Mail a code and link to ``email``; answer the ``request_id`` to verify with. The
    same answer whether or not the address is another account's (then nothing is sent)."""
    current = _session(request)
    refused = step_up_refusal(request, current, email_change.ACTION)
    if refused is not None:
        return refused
    email = required_str(json_body(request), "email", max_length=1000)
    change = email_change.request_change(current, email, request=request)
    return _accepted(change.confirmation)


@api_view(("POST",))
def verify_view(request: HttpRequest) -> HttpResponse:
    """Take the code mailed to the new address, in the session that asked: the address
    is the account's from now on."""
    current = _session(request)
    data = json_body(request)
    public_id = required_str(data, "request_id", 64)
    form = CodeForm({"code": required_str(data, "code", 32)})
    if not form.is_valid():
        raise SignInError("code_malformed", length=app_settings.CODE_LENGTH)
    change = email_change.confirm_by_code(
        public_id, form.cleaned_data["code"], user_session=current, request=request
    )
    return JsonResponse({"email": change.new_email, "user": _user_json(change.user)})
