"""Starting a sign-in and asking for the email again."""

from __future__ import annotations

import logging

from django.db import transaction
from django.http import HttpRequest

from .. import clock, signals
from ..adapter import get_adapter
from ..addresses import mask_email, normalize_email
from ..client import client_ip, user_agent
from ..conf import app_settings
from ..errors import SignInError
from ..models import LoginRequest
from .verification import refusal

__all__ = ["resend", "start_sign_in"]

logger = logging.getLogger("passwordless")


def start_sign_in(
    email: str, *, request: HttpRequest | None = None, next_url: str = ""
) -> LoginRequest:
    """Record a sign-in request and queue its email.

    Known and unknown addresses take exactly the same path here: one insert
    and one queued task carrying only the row's id. Whether mail goes out is
    decided by the worker, so neither the answer nor its timing tells an
    attacker which addresses have accounts.
    """
    adapter = get_adapter()
    if next_url and not adapter.is_safe_next_url(next_url, request):
        next_url = ""
    with transaction.atomic():
        login_request = LoginRequest.objects.create(
            email=normalize_email(email),
            expires_at=clock.now() + app_settings.REQUEST_LIFETIME,
            requester_ip=client_ip(request),
            user_agent=user_agent(request),
            next_url=next_url,
        )
        adapter.enqueue_login_email(login_request)
    logger.info(
        "sign-in requested: request=%s email=%s",
        login_request.pk,
        mask_email(login_request.email),
    )
    signals.login_requested.send(LoginRequest, login_request=login_request, request=request)
    return login_request


def resend(public_id: str, *, request: HttpRequest | None = None) -> LoginRequest:
    """Send a new code and link for the same address, and return the request that owns them.

    A live request gets another email (its older codes stay valid, see
    ``VALID_SECRETS``). A request that can no longer complete (expired, used,
    locked) is left as it is, and a new request is started for the same
    address: "request a new code" always has an answer.
    """
    with transaction.atomic():
        login_request = (
            LoginRequest.objects.select_for_update().filter(public_id=public_id).first()
        )
        if login_request is None:
            raise SignInError("no_request")
        if refusal(login_request, clock.now()) is None:
            login_request.delivery = LoginRequest.Delivery.PENDING
            login_request.save(update_fields=["delivery"])
            get_adapter().enqueue_login_email(login_request)
            logger.info("sign-in email requested again: request=%s", login_request.pk)
            return login_request
    return start_sign_in(login_request.email, request=request, next_url=login_request.next_url)
