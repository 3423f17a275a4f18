"""Mount with ``path("api/auth/", include("passwordless.api.urls"))``; the JWKS view
belongs at ``/.well-known/jwks.json`` (``passwordless.api.views.jwks_view``)."""

from django.urls import path

from . import email_change, passkeys, reauthentication, views

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
    # Step-up (re-authentication) by emailed code.
    path("reauthenticate/send", reauthentication.send_view, name="reauthenticate-send"),
    path("reauthenticate/verify", reauthentication.verify_view, name="reauthenticate-verify"),
    # Passkeys (WebAuthn).
    path("passkeys", passkeys.passkeys_view, name="passkeys"),
    path("passkeys/register/begin", passkeys.register_begin_view, name="passkey-register-begin"),
    path(
        "passkeys/register/finish", passkeys.register_finish_view, name="passkey-register-finish"
    ),
    path("passkeys/auth/begin", passkeys.authenticate_begin_view, name="passkey-auth-begin"),
    path("passkeys/auth/finish", passkeys.authenticate_finish_view, name="passkey-auth-finish"),
    path("passkeys/reauth/begin", passkeys.reauthenticate_begin_view, name="passkey-reauth-begin"),
    path(
        "passkeys/reauth/finish", passkeys.reauthenticate_finish_view, name="passkey-reauth-finish"
    ),
    path("passkeys/<str:passkey_id>", passkeys.passkey_view, name="passkey"),
    # Changing the email address.
    path("email/change", email_change.change_view, name="email-change"),
    path("email/change/verify", email_change.verify_view, name="email-change-verify"),
    path("token/refresh", views.refresh_view, name="token-refresh"),
    path("logout", views.logout_view, name="logout"),
    path("openapi.json", views.openapi_view, name="openapi"),
]
