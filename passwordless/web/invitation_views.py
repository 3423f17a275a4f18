"""An invitation's link (issue 18): opening it shows a page; its button starts the sign-up.

GET changes nothing, for link scanners and mail previews open links; the POST starts the
sign-in of the invited address only (``services.invitations.accept``), and the browser
goes on to the code page as from the email form. The token stays in this one URL: the
page loads nothing from elsewhere and sends no Referer.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views import View

from ..addresses import mask_email
from ..errors import SignInError
from ..services import invitations, sessions
from ..services.invitation_links import find_invitation
from .pages import protected, render_page

__all__ = ["InvitationView"]

TEMPLATE = "passwordless/invitation.html"


@protected
class InvitationView(View):
    """``/auth/invite/<token>/``: who is invited, and the button that starts the sign-up."""

    http_method_names = ["get", "head", "post"]

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        try:
            invitation = find_invitation(token)
        except SignInError as error:
            return self.page({}, error)
        return self.page({"masked_email": mask_email(invitation.email)})

    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        try:
            started = invitations.accept(
                token, request=request, replaces=sessions.pending_request_id(request)
            )
        except SignInError as error:
            return self.page({}, error)
        sessions.remember_request(request, started.login_request)
        response = redirect("passwordless:code")
        sessions.bind_browser(response, started)
        # A redirect's own policy replaces the page's: without this, the code page's
        # request would carry this URL, token and all, as its Referer.
        response["Referrer-Policy"] = "no-referrer"
        return response

    def page(self, context: dict[str, str], error: SignInError | None = None) -> HttpResponse:
        response = render_page(self.request, TEMPLATE, context, error)
        response["Referrer-Policy"] = "no-referrer"
        return response
