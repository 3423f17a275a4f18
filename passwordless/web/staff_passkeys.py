"""``PASSWORDLESS_PASSKEYS_REQUIRED_FOR_STAFF``: the admin only for a passkey-proven session.

Add ``passwordless.web.staff_passkeys.StaffPasskeyMiddleware`` after
``AuthenticationMiddleware`` (and ``SessionTimeoutMiddleware``). With the setting on, a
staff member's request for any admin page but its login and logout goes through only from
a browser session signed in with a passkey, or stepped up with one within
``REAUTHENTICATION_TIMEOUT`` (``services.passkeys.staff_may_enter``); anyone else is sent to
the passkey step-up page, and back after. An emailed code proves the mailbox, not the
device: that is what the setting is there to refuse.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponseBase, HttpResponseRedirect
from django.urls import reverse

from .. import services
from ..conf import app_settings
from ..services import passkeys

__all__ = ["StaffPasskeyMiddleware"]


class StaffPasskeyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: object, args: object, kwargs: object
    ) -> HttpResponseBase | None:
        if app_settings.PASSKEYS_REQUIRED_FOR_STAFF and _refused(request):
            query = urlencode({"next": request.get_full_path()})
            url = reverse("passwordless:passkey-staff")
            return HttpResponseRedirect(f"{url}?{query}")
        return None


def _refused(request: HttpRequest) -> bool:
    """A staff member asking for an admin page without a passkey-proven session."""
    if not _gated(request) or not _staff(request):
        return False
    return not passkeys.staff_may_enter(request, services.current_session(request))


def _gated(request: HttpRequest) -> bool:
    """A page of any ``AdminSite`` (they share the ``admin`` application namespace, as
    ``AdminReauthenticationMiddleware`` finds them), other than signing in and out."""
    match = request.resolver_match
    return match is not None and match.app_name == "admin" and match.url_name not in EXEMPT


EXEMPT = frozenset({"login", "logout"})


def _staff(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and getattr(user, "is_staff", False))
