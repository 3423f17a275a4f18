from django.urls import path

from .web import (
    email_views,
    invitation_views,
    link_views,
    passkey_views,
    reauthentication_views,
    session_views,
    views,
)

app_name = "passwordless"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("code/", views.CodeView.as_view(), name="code"),
    path("code/resend/", views.resend_view, name="resend"),
    path("code/status/", views.WaitStatusView.as_view(), name="wait-status"),
    path("link/", link_views.LinkConfirmView.as_view(), name="link-confirm"),
    path("link/<str:token>/", link_views.LinkView.as_view(), name="link"),
    path("logout/", views.logout_view, name="logout"),
    # issue 18: an invitation's link (GET shows it, POST starts its sign-up).
    path("invite/<str:token>/", invitation_views.InvitationView.as_view(), name="invitation"),
    path("sessions/", session_views.SessionsView.as_view(), name="sessions"),
    # Changing the email address: ask, confirm by code or link, undo from the old address.
    path("email/", email_views.EmailView.as_view(), name="email"),
    path("email/code/", email_views.EmailCodeView.as_view(), name="email-code"),
    path("email/code/resend/", email_views.resend_view, name="email-resend"),
    path("email/link/", email_views.EmailLinkView.as_view(), name="email-link"),
    path("email/undo/", email_views.UndoView.as_view(), name="email-undo-confirm"),
    path("email/undo/<str:token>/", email_views.UndoLinkView.as_view(), name="email-undo"),
    # Step-up (re-authentication).
    path(
        "reauthenticate/",
        reauthentication_views.ReauthenticateView.as_view(),
        name="reauthenticate",
    ),
    # Passkeys (WebAuthn): the page, the offer, the admin's gate, the ceremonies' JSON.
    path("passkeys/", passkey_views.PasskeysView.as_view(), name="passkeys"),
    path("passkeys/offer/", passkey_views.offer_view, name="passkey-offer"),
    path("passkeys/staff/", passkey_views.StaffPasskeyView.as_view(), name="passkey-staff"),
    path(
        "passkeys/register/begin/",
        passkey_views.register_begin_view,
        name="passkey-register-begin",
    ),
    path(
        "passkeys/register/finish/",
        passkey_views.register_finish_view,
        name="passkey-register-finish",
    ),
    path("passkeys/auth/begin/", passkey_views.auth_begin_view, name="passkey-auth-begin"),
    path("passkeys/auth/finish/", passkey_views.auth_finish_view, name="passkey-auth-finish"),
    path("passkeys/reauth/begin/", passkey_views.reauth_begin_view, name="passkey-reauth-begin"),
    path(
        "passkeys/reauth/finish/", passkey_views.reauth_finish_view, name="passkey-reauth-finish"
    ),
]
