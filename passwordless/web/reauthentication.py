"""The step-up gate ("sudo mode") for HTML views: ``@reauthentication_required`` and
``ReauthenticationRequiredMixin``.

A request whose session gave no fresh proof (``REAUTHENTICATION_TIMEOUT``) is sent to
the step-up page, ``?next=`` the page it asked for, and comes back there after. A POST
is never replayed after the step-up: what it would have changed is not kept anywhere,
so a forged or stale form cannot ride on the proof. The person lands back on the page
(a GET), is told nothing was changed yet, and does it again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, overload
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponseBase, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext as _

from .. import services
from ..services import reauthentication

__all__ = [
    "DEFAULT_ACTION",
    "ReauthenticationRequiredMixin",
    "reauthentication_required",
    "step_up",
    "step_up_redirect",
]

#: The action a project's own view asks the adapter about, unless it names one.
DEFAULT_ACTION = "sensitive"

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

ViewFunc = TypeVar("ViewFunc", bound=Callable[..., HttpResponseBase])


def step_up(request: HttpRequest, action: str) -> HttpResponseBase | None:
    """The answer for a request that must step up first, or ``None`` to let it through.

    Someone not signed in is sent to sign in (a sign-in is a fresh proof)."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    current = services.current_session(request)
    if not reauthentication.step_up_needed(request, current, action):
        return None
    return step_up_redirect(request)


def step_up_redirect(request: HttpRequest) -> HttpResponseRedirect:
    """To the step-up page, then back to the page asked for. A form sent meanwhile is
    dropped, and the person is told so: it is done again once the proof is fresh."""
    if request.method not in SAFE_METHODS:
        messages.info(
            request,
            _("Confirm it's you to continue. Nothing was changed yet: do it again after."),
            fail_silently=True,
        )
    query = urlencode({"next": request.get_full_path()})
    return HttpResponseRedirect(f"{reverse('passwordless:reauthenticate')}?{query}")


@overload
def reauthentication_required(view: ViewFunc, *, action: str = ...) -> ViewFunc: ...


@overload
def reauthentication_required(
    view: None = None, *, action: str = ...
) -> Callable[[ViewFunc], ViewFunc]: ...


def reauthentication_required(
    view: ViewFunc | None = None, *, action: str = DEFAULT_ACTION
) -> ViewFunc | Callable[[ViewFunc], ViewFunc]:
    """Let a function view run only for a session with a fresh proof.

    ``@reauthentication_required`` or ``@reauthentication_required(action="...")``: the
    adapter's ``needs_reauthentication(request, action)`` decides whether the action
    needs one at all. Implies ``login_required``."""

    def decorate(func: ViewFunc) -> ViewFunc:
        @functools.wraps(func)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            return step_up(request, action) or func(request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate if view is None else decorate(view)


class ReauthenticationRequiredMixin:
    """``@reauthentication_required`` for class-based views; list it first among the
    bases. ``reauthentication_action`` names the action asked about; override
    ``needs_step_up_for`` to gate only some methods (by default: all of them)."""

    reauthentication_action = DEFAULT_ACTION

    def needs_step_up_for(self, request: HttpRequest) -> bool:
        return True

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if self.needs_step_up_for(request):
            refused = step_up(request, self.reauthentication_action)
            if refused is not None:
                return refused
        response: HttpResponseBase = super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        return response
