"""The sign-in flows. HTML views, JSON views, admin actions and tasks call these;
every rule that keeps sign-in safe lives here and nowhere else."""

from .delivery import deliver_login_email, mark_delivery_failed
from .sessions import forget_request, pending_request_id, remember_request, sign_in, sign_out
from .start import resend, start_sign_in
from .verification import LinkPreview, confirm_link, preview_link, preview_link_hash, verify_code

__all__ = [
    "LinkPreview",
    "confirm_link",
    "deliver_login_email",
    "forget_request",
    "mark_delivery_failed",
    "pending_request_id",
    "preview_link",
    "preview_link_hash",
    "remember_request",
    "resend",
    "sign_in",
    "sign_out",
    "start_sign_in",
    "verify_code",
]
