"""Signals sent by the service layer.

``login_requested(sender, login_request, request)``
    A sign-in was started; ``request`` is the ``HttpRequest`` or ``None``.
``login_code_sent(sender, login_request)``
    The worker handed the email to the mail backend.
``user_signed_in(sender, user, login_request, request, method)``
    A code or link was accepted and ``login()`` ran; ``method`` is ``"code"``, ``"link"``,
    ``"approval"`` or ``"passkey"`` (then ``login_request`` is ``None``).
``login_failed(sender, login_request, request, reason)``
    A code or link was refused; ``reason`` is the error code (``"code_invalid"``...).
``request_locked(sender, login_request, request)``
    The last allowed wrong code locked a request.
``user_signed_out(sender, user, request)``
    A person signed out.
``session_revoked(sender, user_session, reason)``
    A session was ended: by its owner from another device, by an admin,
    by the session cap, or because the account was deactivated or its address changed.
``passkey_added(sender, passkey, request)``
    A signed-in person registered a passkey (``models.Passkey``).
``passkey_removed(sender, user, name, request)``
    A person removed their passkey called ``name``.
``reauthenticated(sender, user, user_session, method, request)``
    A signed-in session gave a fresh proof (step-up); ``method`` is ``"passkey"`` or
    ``"code"``.
``email_change_requested(sender, email_change, request)``
    A signed-in person asked to change their address; the new one is sent a code and link.
``email_change_confirmed(sender, email_change, request)``
    The new address was confirmed and is now the account's; the old one is told.
``email_change_undone(sender, email_change, request)``
    The old address undid a confirmed change with the link it was sent.
"""

from django.dispatch import Signal

__all__ = [
    "email_change_confirmed",
    "email_change_requested",
    "email_change_undone",
    "login_code_sent",
    "login_failed",
    "login_requested",
    "passkey_added",
    "passkey_removed",
    "reauthenticated",
    "request_locked",
    "session_revoked",
    "user_signed_in",
    "user_signed_out",
]

login_requested = Signal()
login_code_sent = Signal()
user_signed_in = Signal()
login_failed = Signal()
request_locked = Signal()
user_signed_out = Signal()
session_revoked = Signal()
passkey_added = Signal()
passkey_removed = Signal()
reauthenticated = Signal()
email_change_requested = Signal()
email_change_confirmed = Signal()
email_change_undone = Signal()
