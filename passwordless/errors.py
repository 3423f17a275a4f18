"""The failures of the sign-in flow, each with a stable code, a message and a status.

HTML pages show the message; the JSON API returns ``{"error": {"code", "message"}}``
with the status. Both take them from here, so the two never diverge. Every code
is reachable only by someone holding a sign-in request, or is the same for all
addresses, so none of them tells whether an account exists.
"""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

__all__ = ["SignInError"]

StrOrPromise = str | Promise

_CATALOGUE: dict[str, tuple[int, StrOrPromise]] = {
    "email_invalid": (400, _("Enter a valid email address.")),
    "code_malformed": (400, _("Enter the {length}-digit code from the email.")),
    "code_invalid": (400, _("That code isn't right. Check the email and try again.")),
    "expired": (410, _("This code or link has expired. Request a new one.")),
    "already_used": (
        409,
        _("This code or link has already been used. Request a new one if you need to."),
    ),
    "request_superseded": (
        409,
        _(
            "This sign-in has ended: a newer email was requested, or the account changed. "
            "Use the code or link from the newest email, or request a new one."
        ),
    ),
    "request_locked": (423, _("Too many wrong codes. Request a new code.")),
    "request_not_found": (
        404,
        _(
            "This sign-in link or request isn't valid. It may have been mistyped. "
            "Request a new one."
        ),
    ),
    "browser_mismatch": (
        403,
        _(
            "This link was opened in a different browser from the one that asked for it. "
            "Approve the sign-in on the device that asked, or enter the code here."
        ),
    ),
    "client_mismatch": (
        403,
        _(
            "Only the client that started this sign-in can complete it: send the "
            "code_verifier of the code_challenge it sent, or use the browser that asked."
        ),
    ),
    "number_missing": (
        400,
        _(
            "Nothing was approved. Type the 2-digit number shown on the device "
            "that asked to sign in."
        ),
    ),
    "number_wrong": (
        400,
        _(
            "That isn't the number shown on the device that asked, so nothing was "
            "approved. Wrong numbers left before approving from another device turns off "
            "for this account: {attempts_left}."
        ),
    ),
    "approval_off": (
        423,
        _(
            "Approving from another device is off for this account, after too many "
            "wrong numbers. Enter the code from the email here instead, or open the link "
            "on the device that asked. Signing in either way turns approving back on."
        ),
    ),
    "rate_limited": (429, _("Too many attempts. Try again in {wait}.")),
    "service_unavailable": (
        503,
        _("Sign-in is unavailable for a moment. Please try again in a minute."),
    ),
    "token_invalid": (401, _("The token is not valid, or has expired or been revoked.")),
    "refresh_reused": (
        401,
        _(
            "This refresh token was already used. "
            "For safety, its sign-in has ended: sign in again."
        ),
    ),
    "not_authenticated": (401, _("Sign in first.")),
    "csrf_failed": (
        403,
        _("CSRF check failed. Get a token from {csrf_url} and send it back."),
    ),
    "content_type_invalid": (
        400,
        _("Send the body as JSON, with Content-Type: application/json."),
    ),
    "json_invalid": (400, _("The body is not valid JSON, or not a JSON object.")),
    "body_too_large": (400, _("The body is larger than {limit} bytes.")),
    "field_missing": (400, _("The field {field!r} is required.")),
    "field_invalid": (400, _("The field {field!r} is not valid: {reason}")),
    "not_found": (404, _("There is nothing here.")),
    "method_not_allowed": (405, _("This method is not allowed here.")),
    "too_many_sessions": (
        409,
        _("You are signed in on too many devices. Sign out on one of them, then try again."),
    ),
    # Step-up (re-authentication).
    "reauthentication_required": (
        403,
        _(
            "Confirm it's you first: this needs a fresh proof, with a passkey or a code "
            "emailed to your address."
        ),
    ),
    # Passkeys (services.passkeys).
    "passkeys_off": (404, _("Passkeys are turned off on this site. Sign in with your email.")),
    "passkey_challenge_invalid": (
        404,
        _(
            "This passkey request wasn't started here, in this session, for this step. "
            "Start again."
        ),
    ),
    "passkey_challenge_used": (
        409,
        _("This passkey request was already used. Start again."),
    ),
    "passkey_challenge_expired": (
        410,
        _("This passkey request has expired (after 5 minutes). Start again."),
    ),
    "passkey_invalid": (
        400,
        _(
            "The passkey's answer couldn't be verified for this site. Try again, or use "
            "your email instead."
        ),
    ),
    "passkey_unknown": (
        400,
        _(
            "This passkey isn't one of this account's here: it may have been removed. "
            "Use another passkey, or your email."
        ),
    ),
    "passkey_counter": (
        403,
        _(
            "This passkey was refused: its use counter went backwards, which can mean it "
            "was copied. Sign in with your email, and remove it from your passkeys."
        ),
    ),
    "passkey_exists": (409, _("This passkey is already registered.")),
    "passkey_none": (
        400,
        _("There is no passkey on this account yet. Confirm with an emailed code instead."),
    ),
    # Changing the email address (services.email_change).
    "email_unchanged": (
        400,
        _("That is already your account's email address. Enter the new one."),
    ),
    "email_taken": (
        409,
        _("This address is already used by another account, so nothing was changed."),
    ),
    "undo_invalid": (
        404,
        _(
            "This undo link isn't valid. It may have been mistyped: open it again from "
            "the email that told you of the change."
        ),
    ),
    "undo_used": (409, _("This change has already been undone.")),
    "undo_expired": (
        410,
        _(
            "This undo link has expired. Contact the site's administrators if your "
            "account's address was changed without you."
        ),
    ),
    "undo_taken": (
        409,
        _(
            "Your old address is now used by another account, so it can't be put back. "
            "Contact the site's administrators."
        ),
    ),
    # Bots and invitations (passwordless.captcha, services.invitations).
    "captcha_failed": (
        400,
        _("The check that you're not a robot didn't pass. Please try it again."),
    ),
    "captcha_unavailable": (
        503,
        _(
            "The check that you're not a robot is unavailable for a moment, so nothing "
            "was sent. Please try again in a minute."
        ),
    ),
    "invitation_invalid": (
        404,
        _(
            "This invitation link isn't valid. It may have been mistyped, or replaced by "
            "a newer one."
        ),
    ),
    "invitation_used": (
        409,
        _("This invitation has already been used. Sign in with your email address."),
    ),
    "invitation_expired": (
        410,
        _("This invitation has expired. Ask the person who invited you for a new one."),
    ),
    "account_disabled": (403, _("This account can't sign in. Contact the site's administrators.")),
    "signup_closed": (403, _("There is no account for this address, and sign-up is closed.")),
    "address_moved": (
        409,
        _(
            "This address was moved to another account a short while ago. To get your "
            "account back, use the link in the email we sent to this address about the change."
        ),
    ),
}


def _csrf_url() -> str:
    """Where the project mounted the API's CSRF view (the URLconf loads after this module)."""
    try:
        return reverse("passwordless-api:csrf")
    except NoReverseMatch:
        return "/api/auth/csrf"


def _wait(seconds: int) -> str:
    if seconds < 60:
        return ngettext("%(n)d second", "%(n)d seconds", seconds) % {"n": seconds}
    minutes = -(-seconds // 60)
    return ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}


class SignInError(Exception):
    """A failure the person can act on; never carries a secret.

    ``params`` holds the details an API returns beside the code
    (``attempts_left``, ``retry_after``); ``retry_after`` also becomes the
    ``Retry-After`` header.
    """

    def __init__(self, code: str, **params: int | str) -> None:
        status, template = _CATALOGUE[code]
        self.code = code
        self.status = status
        self.params = params
        retry_after = params.get("retry_after")
        wait = _wait(retry_after) if isinstance(retry_after, int) else ""
        # Only the message that names it reverses the URL; it is not a param the API returns.
        csrf_url = _csrf_url() if code == "csrf_failed" else ""
        self.message = str(template).format(wait=wait, csrf_url=csrf_url, **params)
        super().__init__(self.message)

    @property
    def retry_after(self) -> int | None:
        value = self.params.get("retry_after")
        return value if isinstance(value, int) else None
