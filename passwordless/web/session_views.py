"""The sessions page."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views import View

from .. import services
from ..services import tracking
from .pages import protected, render_page
from .reauthentication import step_up

__all__ = ["SessionsView"]


@method_decorator(login_required, name="dispatch")
@protected
class SessionsView(View):
    """The person's sessions: end one, or sign out everywhere else. Ending another
    session needs a fresh proof (a step-up); signing this one out never does."""

    template_name = "passwordless/sessions.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        current = services.current_session(request)
        rows = services.active_sessions(cast(AbstractBaseUser, request.user))
        return render_page(request, self.template_name, {"sessions": rows, "current": current})

    def post(self, request: HttpRequest) -> HttpResponseBase:
        user = cast(AbstractBaseUser, request.user)
        current = services.current_session(request)
        if request.POST.get("action") == "others":
            refused = step_up(request, "end_other_sessions")
            if refused is not None:
                return refused
            ended = services.end_all_sessions(user, "signed_out_elsewhere", keep=current)
            messages.success(request, _("Signed out on %(n)d other device(s).") % {"n": ended})
            return redirect("passwordless:sessions")
        target = tracking.find_active(user, request.POST.get("session"))
        if target is None:
            messages.error(request, _("That session has already ended."))
            return redirect("passwordless:sessions")
        # Ending this very session is signing out: never held back by a step-up.
        if current is None or target.pk != current.pk:
            refused = step_up(request, "end_session")
            if refused is not None:
                return refused
        if services.end_own_session(request, target):
            messages.success(request, _("You're signed out."))
            return redirect("passwordless:login")
        messages.success(request, _("Signed out on %(device)s.") % {"device": target.device})
        return redirect("passwordless:sessions")
