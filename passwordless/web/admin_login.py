"""The admin's sign-in, passwordless too: ``/admin/login/`` hands over to the email flow.

Mount it before the admin's own URLs::

    from passwordless.web.admin_login import admin_login_view

    path("admin/login/", admin_login_view),
    path("admin/", admin.site.urls),

Staff sign in with a code or link like everyone (and get the staff session
timeouts); a staff member without a password can manage the site. Password
sign-in stays possible only with ``PASSWORDLESS_ADMIN_PASSWORDS = True``, then
rate-limited like codes (and hashed with whatever ``PASSWORD_HASHERS`` puts
first: Argon2 in this project).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache

from .. import limits
from ..adapter import get_adapter
from ..conf import app_settings
from ..errors import SignInError
from .pages import render_page

__all__ = ["admin_login_view"]


@never_cache
def admin_login_view(request: HttpRequest) -> HttpResponse:
    next_url = request.GET.get("next") or reverse("admin:index")
    if not get_adapter().is_safe_next_url(next_url, request):
        next_url = reverse("admin:index")
    user = request.user
    if user.is_authenticated and not getattr(user, "is_staff", False):
        return render(request, "passwordless/admin_forbidden.html", status=403)
    if user.is_authenticated:
        return HttpResponseRedirect(next_url)
    if app_settings.ADMIN_PASSWORDS:
        if request.method == "POST":
            try:
                limits.check_verify(request)
            except SignInError as error:
                return render_page(request, "passwordless/link_error.html", {}, error)
        response: HttpResponse = admin.site.login(request)
        return response
    login_url = reverse("passwordless:login")
    return HttpResponseRedirect(f"{login_url}?{urlencode({'next': next_url})}")
