"""The audit trail: each event of the flow as an ``AuthEvent`` row and a structured log record.

Neither carries a code, token, session key or link; addresses are masked.

Refusals by a rate limit are the exception to one row per event: a client
flooding past a limit would otherwise write a row per refused request, the
very load the limit is there to stop. They are counted instead, in one
``rate_limited`` row per reason, client (its rate-limit key: the address, an
IPv6 /64) and ``RATE_LIMITED_EVENT_WINDOW``; only the first of a window is
logged at INFO, the rest at DEBUG.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils.crypto import salted_hmac

from . import clock
from .addresses import mask_email
from .client import client_ip, mask_ip, rate_key_for_ip, user_agent
from .conf import app_settings
from .models import AuthEvent, LoginRequest

__all__ = ["devices", "record"]

logger = logging.getLogger("passwordless.audit")


def record(
    kind: str,
    *,
    request: HttpRequest | None = None,
    login_request: LoginRequest | None = None,
    user: AbstractBaseUser | None = None,
    email: str = "",
    reason: str = "",
    method: str = "",
    details: dict[str, object] | None = None,
) -> AuthEvent:
    """Write one event (or, for ``rate_limited``, count it in its window's row) and log it."""
    if user is None and login_request is not None:
        user = login_request.user
    if not email and login_request is not None:
        email = login_request.email
    ip = client_ip(request) if request is not None else None
    values: dict[str, Any] = {
        "kind": kind,
        "reason": reason,
        "method": method,
        "user_id": getattr(user, "pk", None),  # None for AnonymousUser too
        "login_request": login_request,
        "masked_email": mask_email(email) if email else "",
        "ip": ip,
        "user_agent": user_agent(request),
        "details": details or {},
    }
    if kind == AuthEvent.Kind.RATE_LIMITED:
        client = rate_key_for_ip(ip) if request is not None else f"email:{email}"
        event = _counted(values, _window(kind, reason, client))
    else:
        event = AuthEvent.objects.create(**values)
    fields = {
        "event": kind,
        "reason": reason or None,
        "method": method or None,
        "user_id": event.user_id,
        "email": values["masked_email"] or None,
        "ip": ip,
        "login_request_id": getattr(login_request, "pk", None),
        "count": event.count if event.window else None,
        **({"devices": details} if details else {}),
    }
    logger.log(
        logging.INFO if event.count == 1 else logging.DEBUG,
        "auth event %s",
        " ".join(f"{k}={v}" for k, v in fields.items() if v is not None),
        extra={"audit": fields},
    )
    return event


def _window(kind: str, reason: str, client: str) -> str:
    """The key of the current window's row: keyed, since ``client`` may be an address."""
    length = max(int(app_settings.RATE_LIMITED_EVENT_WINDOW.total_seconds()), 1)
    start = int(clock.now().timestamp()) // length * length
    value = f"{kind}|{reason}|{client}|{length}|{start}"
    return salted_hmac(
        "passwordless.audit.window", value, secret=app_settings.HASH_KEY, algorithm="sha256"
    ).hexdigest()


def _counted(values: dict[str, Any], window: str) -> AuthEvent:
    """Add one to the window's row, creating it for the first refusal.

    Correct under concurrency: the increment is one ``UPDATE ... count + 1``, and
    ``window`` is unique, so of two first refusals one insert fails and counts by
    updating the row the other committed (each statement of READ COMMITTED sees it).
    """
    rows = AuthEvent.objects.filter(window=window)
    if not rows.update(count=F("count") + 1):
        try:
            with transaction.atomic():
                return AuthEvent.objects.create(window=window, **values)
        except IntegrityError:
            rows.update(count=F("count") + 1)
    return rows.get()


def devices(login_request: LoginRequest, approver: HttpRequest | None = None) -> dict[str, object]:
    """Both devices of a cross-device sign-in: user agents and masked addresses.

    The approving device is the one recorded on the request, or ``approver``.
    """
    if approver is not None:
        approver_agent, approver_ip = user_agent(approver), client_ip(approver)
    else:
        approver_agent, approver_ip = login_request.approver_user_agent, login_request.approver_ip
    return {
        "requester": {
            "user_agent": login_request.user_agent,
            "ip": mask_ip(login_request.requester_ip),
        },
        "approver": {"user_agent": approver_agent, "ip": mask_ip(approver_ip)},
    }
