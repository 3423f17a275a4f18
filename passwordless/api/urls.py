"""Mount with ``path("api/auth/", include("passwordless.api.urls"))``; the JWKS view
belongs at ``/.well-known/jwks.json`` (``passwordless.api.views.jwks_view``)."""

from django.urls import path

from . import views

app_name = "passwordless-api"

urlpatterns = [
    path("csrf", views.csrf_view, name="csrf"),
    path("send", views.send_view, name="send"),
    path("resend", views.resend_view, name="resend"),
    path("verify/code", views.verify_code_view, name="verify-code"),
    path("verify/link", views.verify_link_view, name="verify-link"),
    path("requests/<str:request_id>", views.request_status_view, name="request"),
    path("me", views.me_view, name="me"),
    path("sessions", views.sessions_view, name="sessions"),
    path("sessions/<str:session_id>", views.session_view, name="session"),
    path("token/refresh", views.refresh_view, name="token-refresh"),
    path("logout", views.logout_view, name="logout"),
    path("openapi.json", views.openapi_view, name="openapi"),
]
