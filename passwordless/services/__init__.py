"""The sign-in flows. HTML views, JSON views, admin actions and tasks call these;
every rule that keeps sign-in safe lives here and nowhere else.

Inside, imports run one way (the ``services`` contract in pyproject.toml): ``sessions``,
``budget``, ``trusted_devices`` and ``tokens`` at the bottom; ``tracking`` over them;
``revocation``; ``delivery``, ``mail`` and ``outbox``; ``signin``; then the flows
(``start``, ``verification``, ``approval``, ``accounts``).

A sign-in is completed by one call that owns its one transaction: ``complete_code``,
``complete_link`` or ``collect_approval``, each given a finisher (``BrowserSession`` or
``ApiTokens``) that signs in inside it, each returning ``Completed``. A surface parses,
calls one of them, and renders. ``verify_code`` and ``confirm_link`` only consume the
request (tests, tools)."""

from .accounts import account_changed, end_sign_ins
from .approval import (
    WaitStatus,
    approve,
    check_poll_rate,
    collect_approval,
    ensure_collectable,
    load_request,
    wait_status,
)
from .delivery import deliver_login_email, mark_delivery_failed
from .outbox import delivery_report, purge, sweep_outbox
from .revocation import end_all_sessions, end_session
from .sessions import (
    Started,
    bind_browser,
    current_session,
    forget_request,
    is_bound,
    pending_request_id,
    remember_request,
)
from .signin import ApiTokens, BrowserSession, end_device, sign_in, sign_out
from .start import resend, start_sign_in
from .tracking import active_sessions, find_active
from .verification import (
    RETRYABLE_ON_PAGE,
    Completed,
    Finisher,
    LinkPreview,
    complete_code,
    complete_link,
    confirm_link,
    preview_link,
    preview_link_hash,
    verify_code,
)

__all__ = [
    "RETRYABLE_ON_PAGE",
    "ApiTokens",
    "BrowserSession",
    "Completed",
    "Finisher",
    "LinkPreview",
    "Started",
    "WaitStatus",
    "account_changed",
    "active_sessions",
    "approve",
    "bind_browser",
    "check_poll_rate",
    "collect_approval",
    "complete_code",
    "complete_link",
    "confirm_link",
    "current_session",
    "deliver_login_email",
    "delivery_report",
    "end_all_sessions",
    "end_device",
    "end_session",
    "end_sign_ins",
    "ensure_collectable",
    "find_active",
    "forget_request",
    "is_bound",
    "load_request",
    "mark_delivery_failed",
    "pending_request_id",
    "preview_link",
    "preview_link_hash",
    "purge",
    "remember_request",
    "resend",
    "sign_in",
    "sign_out",
    "start_sign_in",
    "sweep_outbox",
    "verify_code",
    "wait_status",
]
