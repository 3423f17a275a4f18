"""The sign-in flows. HTML views, JSON views, admin actions and tasks call these;
every rule that keeps sign-in safe lives here and nowhere else.

Inside, imports run one way (the ``services`` contract in pyproject.toml): ``sessions``,
``budget``, ``trusted_devices`` and ``tokens`` at the bottom; ``consumption`` (using a
request up exactly once) and ``tracking`` over them;
``revocation``; ``delivery``, ``mail`` and ``outbox``; ``signin``; then the flows
(``start``, ``verification``, ``approval``, ``accounts``).

A sign-in is completed by one call that owns its one transaction: ``complete_code``,
``complete_link`` or ``collect_approval``, each given a finisher (``BrowserSession`` or
``ApiTokens``) that signs in inside it, each returning ``Completed``. A surface parses,
calls one of them, and renders. ``verify_code`` and ``confirm_link`` only consume the
request (tests, tools).

The names in ``__all__`` are the supported API, kept stable across minor releases
(``docs/customization.md``, "The supported API"). Everything else in these modules serves
the app's own surfaces and may change: import it from its module, not from here."""

from .accounts import account_changed, end_sign_ins
from .approval import WaitStatus, approve, collect_approval, wait_status
from .consumption import Completed, Finisher
from .delivery import deliver_login_email
from .outbox import delivery_report, purge, sweep_outbox
from .revocation import end_all_sessions, end_session
from .sessions import Started, current_session
from .signin import ApiTokens, BrowserSession, end_own_session, sign_in, sign_out
from .start import resend, start_sign_in
from .tracking import active_sessions
from .verification import (
    LinkPreview,
    complete_code,
    complete_link,
    confirm_link,
    preview_link,
    verify_code,
)

__all__ = [
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
    "collect_approval",
    "complete_code",
    "complete_link",
    "confirm_link",
    "current_session",
    "deliver_login_email",
    "delivery_report",
    "end_all_sessions",
    "end_own_session",
    "end_session",
    "end_sign_ins",
    "preview_link",
    "purge",
    "resend",
    "sign_in",
    "sign_out",
    "start_sign_in",
    "sweep_outbox",
    "verify_code",
    "wait_status",
]
