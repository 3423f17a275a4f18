"""The failures of the sign-in flow, each with a stable code, a message and a status.

HTML pages show the message; the JSON API returns ``{"error": {"code", "message"}}``
with the status. Both take them from here, so the two never diverge.
"""

from __future__ import annotations

__all__ = ["SignInError"]

_CATALOGUE: dict[str, tuple[int, str]] = {
    "invalid_email": (400, "Enter a valid email address."),
    "invalid_code": (400, "That code isn't right. Check the email and try again."),
    "malformed_code": (400, "Enter the {length}-digit code from the email."),
    "invalid_link": (
        404,
        "This sign-in link isn't valid. It may have been mistyped or already used.",
    ),
    "expired": (410, "This code or link has expired. Request a new one."),
    "already_used": (409, "This code or link has already been used. Request a new one."),
    "request_locked": (423, "Too many wrong codes. Request a new code."),
    "request_ended": (409, "This sign-in request has ended. Start again."),
    "no_request": (400, "Start by entering your email address."),
    "account_disabled": (403, "This account can't sign in. Contact the site's administrators."),
    "signup_closed": (403, "There is no account for this address, and sign-up is closed."),
}


class SignInError(Exception):
    """A failure the person can act on; never carries a secret."""

    def __init__(self, code: str, **params: object) -> None:
        status, template = _CATALOGUE[code]
        self.code = code
        self.status = status
        self.message = template.format(**params) if params else template
        self.params = params
        super().__init__(self.message)
