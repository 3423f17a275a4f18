"""The audit trail: each event of the flow as an ``AuthEvent`` row and a structured log record.

Neither carries a code, token, session key or link; addresses are masked.
"""

from __future__ import annotations

import logging

from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest

from .addresses import mask_email
from .client import client_ip, mask_ip, user_agent
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
    if user is None and login_request is not None:
        user = login_request.user
    if not email and login_request is not None:
        email = login_request.email
    event = AuthEvent.objects.create(
        kind=kind,
        reason=reason,
        method=method,
        user_id=getattr(user, "pk", None),  # None for AnonymousUser too
        login_request=login_request,
        masked_email=mask_email(email) if email else "",
        ip=client_ip(request) if request is not None else None,
        user_agent=user_agent(request),
        details=details or {},
    )
    fields = {
        "event": kind,
        "reason": reason or None,
        "method": method or None,
        "user_id": event.user_id,
        "email": event.masked_email or None,
        "ip": event.ip,
        "login_request_id": event.login_request_id,
        **({"devices": details} if details else {}),
    }
    logger.info(
        "auth event %s",
        " ".join(f"{k}={v}" for k, v in fields.items() if v is not None),
        extra={"audit": fields},
    )
    return event


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
