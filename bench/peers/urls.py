"""The URLs of a peer server, by ``settings.BENCH_PEER``."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.urls import URLPattern, URLResolver, include, path

from bench import views as floors
from bench.peers import views
from config.views import home

urlpatterns: list[URLPattern | URLResolver] = [path("signed-in", views.signed_in)]

if getattr(settings, "BENCH_PEER", "bare") == "allauth":
    # /accounts/login/code/ (request a code) and /accounts/login/code/confirm/.
    urlpatterns += [path("accounts/", include("allauth.urls"))]
elif getattr(settings, "BENCH_PEER", "bare") == "sesame":
    from sesame.views import LoginView

    urlpatterns += [path("sesame/login", LoginView.as_view())]
else:
    # The project's home page, at the same path, behind login_required; its links need
    # these names to render.
    stand_ins = [
        path("logout/", views.not_served, name="logout"),
        path("sessions/", views.not_served, name="sessions"),
        path("email/", views.not_served, name="email"),
        path("passkeys/", views.not_served, name="passkeys"),
    ]
    urlpatterns += [
        path("", login_required(home), name="home"),
        path("auth/", include((stand_ins, "passwordless"))),
        path("bare/login", floors.log_in),
        path("bare/me", views.bearer_me),
    ]
