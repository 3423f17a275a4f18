"""Step-up by emailed code for API clients: ``send`` mails a code to the account's
address, ``verify`` takes it and records the proof on the caller's session (for a
token client, the ``UserSession`` of its token family).

The request is bound to the session that sent it: the same code from any other
session, or on the sign-in endpoints, is "not found" (``verification.confirm_code``).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from ..conf import app_settings
from ..errors import SignInError
from ..forms import CodeForm
from ..models import LoginRequest, UserSession
from ..services import reauthentication
from ..services.start import start_confirmation
from ..services.verification import prove_by_code
from .parsing import json_body, required_str
from .views import _accepted, _current, _signed_in_user, api_view

__all__ = ["send_view", "verify_view"]


def _session(request: HttpRequest) -> UserSession:
    _signed_in_user(request)
    current = _current(request)
    if current is None:
        # Signed in by something this app does not track: no session to prove anything to.
        raise SignInError("not_authenticated")
    return current


@api_view(("POST",))
def send_view(request: HttpRequest) -> HttpResponse:
    """Email a step-up code to the account's own address; answer its ``request_id``."""
    current = _session(request)
    started = start_confirmation(LoginRequest.Purpose.REAUTHENTICATE, current, request=request)
    return _accepted(started.login_request)


@api_view(("POST",))
def verify_view(request: HttpRequest) -> HttpResponse:
    """Take the code of this session's step-up request; the proof lasts
    ``REAUTHENTICATION_TIMEOUT``."""
    current = _session(request)
    data = json_body(request)
    public_id = required_str(data, "request_id", 64)
    form = CodeForm({"code": required_str(data, "code", 32)})
    if not form.is_valid():
        raise SignInError("code_malformed", length=app_settings.CODE_LENGTH)
    prove_by_code(public_id, form.cleaned_data["code"], user_session=current, request=request)
    proved_at = reauthentication.last_proof_at(current)
    return JsonResponse(
        {
            "reauthenticated_at": proved_at.isoformat(),
            "expires_in": int(app_settings.REAUTHENTICATION_TIMEOUT.total_seconds()),
        }
    )
