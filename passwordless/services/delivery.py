"""Sending the sign-in email: the worker's side of the flow.

The secrets are minted here, in the worker, so they never cross the broker.

Commit, then send. The secret is committed before its email leaves, so the code and
link work the moment the email arrives (people type codes at once; mail scanners such
as Safe Links open links at delivery time), and a commit failing after the send (a
database restart, a lost connection) cannot leave anyone holding a code that never works.

Sent once: that first transaction, under the row lock, also claims the send by
writing ``delivery = sent``, so a duplicate task, a second worker or the sweeper
sends nothing. Each secret records when its send settled (``settled_at``: the email
accepted, or lost in a way that may have delivered it; ``sends`` counts them): a newest
secret not yet settled is a send under way. A duplicate then retries later, and after
``CLAIM_TIMEOUT`` (its worker died) sends
again. An SMTP 5xx deletes the refused secret; a transient failure keeps it (the
message may have arrived), and the retry's secret joins the ``VALID_SECRETS`` newest.
"""

from __future__ import annotations

import logging
import smtplib
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NoReturn

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Exists, F, Max, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import translation

from .. import audit, clock, languages, signals
from ..adapter import get_adapter
from ..crypto import hash_code, hash_token
from ..models import AuthEvent, LoginRequest, LoginSecret
from .consumption import lock_request

try:
    from celery.exceptions import SoftTimeLimitExceeded
except ImportError:  # Celery is optional (MAIL_QUEUE "sync"): then no soft time limit fires.

    class SoftTimeLimitExceeded(Exception):  # type: ignore[no-redef]
        """Stands in for Celery's, which nothing raises without Celery."""


__all__ = [
    "CLAIM_TIMEOUT",
    "DeliveryDeferred",
    "deliver_login_email",
    "is_permanent_failure",
    "lost_retries",
    "mail_language",
    "mark_delivery_failed",
    "stale_claims",
]

logger = logging.getLogger("passwordless")

Delivery = LoginRequest.Delivery
_SENDABLE = (Delivery.PENDING, Delivery.DEFERRED)

#: After this long a send that was claimed and never settled is taken for lost (its
#: worker died): longer than the task's hard time limit (45 s, ``tasks.MAIL_TASK_OPTIONS``),
#: so a worker still sending is never overtaken. Celery enforces that limit in its prefork
#: pool (``bin/worker``'s default), not in the solo or threads pools.
CLAIM_TIMEOUT = timedelta(seconds=60)

#: Waits between tries to record a send that the database refused (restarting, connection
#: lost): about 15 s in all, inside the task's soft time limit (30 s).
_RECORD_WAITS = (0.5, 1.0, 2.0, 4.0, 8.0)


class DeliveryDeferred(Exception):
    """The email could not be sent now; the task should try again.

    It carries only the name of the underlying error: an SMTP exception's text
    can hold the recipient's address, and Celery logs what a retry raised.
    """


@dataclass(frozen=True)
class _Claim:
    """A committed secret whose email this worker now sends; the raw values never leave it."""

    login_request: LoginRequest
    secret_pk: int
    code: str = field(repr=False)
    link: str = field(repr=False)


def deliver_login_email(login_request_id: int) -> str:
    """Mint a code and link for the request, email them, and return the delivery state.

    Transient failures (connection errors, SMTP 4xx) leave the request
    ``deferred`` and raise ``DeliveryDeferred`` so the task retries; permanent
    ones (SMTP 5xx) mark it ``failed``. A row held by a sign-in check at this
    moment, or a send of it under way elsewhere, is busy, not done: that also
    asks for a retry, never a silent skip.
    """
    try:
        claim = _claim(login_request_id)
    except DeliveryDeferred:
        raise
    except Exception as exc:
        _defer(login_request_id, exc)
    if isinstance(claim, str):
        return claim
    try:
        # issue 18: written in the language the person asked in (``mail_language``).
        with translation.override(mail_language(claim.login_request)):
            get_adapter().send_login_email(claim.login_request, code=claim.code, link=claim.link)
    except Exception as exc:
        if not is_permanent_failure(exc):
            _defer(login_request_id, exc, claim=claim)
        logger.warning(
            "sign-in email refused: request=%s error=%s", login_request_id, type(exc).__name__
        )
        try:
            _settle_refused(claim)
        except DatabaseError as db_exc:
            _defer(login_request_id, db_exc, claim=claim)
        return Delivery.FAILED
    _settle_sent(claim)
    signals.login_code_sent.send(LoginRequest, login_request=claim.login_request)
    return Delivery.SENT


def mail_language(login_request: LoginRequest) -> str:
    """The language of a request's email: the one it was asked in (``LoginRequest.locale``),
    so the email agrees with the page that asked; for a row that has none (inserted by an
    older replica), the account's choice (the adapter's ``get_user_language``); else
    ``LANGUAGE_CODE``."""
    user = login_request.user
    chosen = login_request.locale or (get_adapter().get_user_language(user) if user else None)
    return languages.supported(chosen) or settings.LANGUAGE_CODE


def mark_delivery_failed(login_request_id: int, reason: str = "gave_up") -> None:
    """Record that the email will not be sent; the task calls it when it stops retrying.

    A database that is away is logged, not raised: an error in a task's failure
    handler stops a worker, and the sweeper expires the row in time anyway.
    """
    try:
        if _set_delivery(login_request_id, Delivery.FAILED):
            login_request = LoginRequest.objects.filter(pk=login_request_id).first()
            audit.record(
                AuthEvent.Kind.DELIVERY_FAILED, login_request=login_request, reason=reason
            )
    except DatabaseError as exc:
        logger.warning(
            "could not mark the sign-in email failed: request=%s error=%s",
            login_request_id,
            type(exc).__name__,
        )


def stale_claims(now: datetime) -> QuerySet[LoginRequest]:
    """Live requests whose newest send was claimed more than ``CLAIM_TIMEOUT`` ago and never
    settled: their worker died. For the sweeper, which queues them again."""
    newest = LoginSecret.objects.filter(request=OuterRef("pk")).order_by("-created_at", "-id")
    return (
        LoginRequest.objects.filter(delivery=Delivery.SENT, expires_at__gt=now)
        .annotate(
            newest_settled=Subquery(newest.values("settled_at")[:1]),
            newest_minted=Subquery(newest.values("created_at")[:1]),
        )
        .filter(
            newest_minted__isnull=False,
            newest_settled__isnull=True,
            newest_minted__lte=now - CLAIM_TIMEOUT,
        )
    )


#: A deferred request is retried by its task within about five minutes (its backoff is at
#: most 300 s); one still deferred this long after its last try lost its retry (a broker
#: that kept nothing across a restart, a worker killed while holding it).
RETRY_LOST_AFTER = timedelta(seconds=300) + CLAIM_TIMEOUT


def lost_retries(now: datetime) -> QuerySet[LoginRequest]:
    """Live deferred requests whose retry never came. For the sweeper, which queues them
    again; sending stays idempotent, so a retry that was only late costs one wasted task."""
    return (
        LoginRequest.objects.filter(delivery=Delivery.DEFERRED, expires_at__gt=now)
        .annotate(last_try=Coalesce(Max("secrets__created_at"), F("created_at")))
        .filter(last_try__lte=now - RETRY_LOST_AFTER)
    )


def is_permanent_failure(exc: BaseException) -> bool:
    """Whether a sending error will not change on retry: an SMTP 5xx answer, or the same
    from an email provider's API through django-anymail. Everything else might.

    Anymail's errors are known by their class names and attributes, never imported (the
    app does not depend on it): ``AnymailRecipientsRefused`` (every recipient rejected:
    a bounce or a complaint on record) and ``AnymailInvalidAddress`` are permanent; an
    ``AnymailAPIError`` is permanent when the API answered 4xx (a refused message, a bad
    key) other than 408 and 429 or a throttling code; 5xx, timeouts and connection
    errors, which carry no status, are transient.
    """
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "AnymailError" not in names:
        return False
    if names & {"AnymailRecipientsRefused", "AnymailInvalidAddress"}:
        return True
    if "AnymailAPIError" not in names:
        return False
    status = _api_status(exc)
    return status is not None and 400 <= status < 500 and status not in (408, 429)


def _api_status(exc: BaseException) -> int | None:
    """The HTTP status of a provider's refusal: anymail's ``status_code``, or that of the
    parsed answer of Amazon SES's client in ``response``. ``None`` when it sent none, or
    when it said it was throttling (Amazon SES's ``Throttling`` comes with a 400)."""
    response = getattr(exc, "response", None)
    status = getattr(exc, "status_code", None)
    if isinstance(response, dict):
        error = response.get("Error")
        code = str(error.get("Code", "")) if isinstance(error, dict) else ""
        if "Throttl" in code or "TooManyRequests" in code:
            return None
        metadata = response.get("ResponseMetadata")
        if status is None and isinstance(metadata, dict):
            status = metadata.get("HTTPStatusCode")
    elif status is None:
        status = getattr(response, "status_code", None)
    return status if isinstance(status, int) and not isinstance(status, bool) else None


def _claim(login_request_id: int) -> _Claim | str:
    """Commit a new secret and ``sent`` for the request, or say why nothing is to be sent."""
    adapter = get_adapter()
    now = clock.now()
    with transaction.atomic():
        rows = LoginRequest.objects.filter(pk=login_request_id)
        login_request = lock_request(rows, skip_locked=True)
        if login_request is None:
            if rows.exists():
                # Locked by another worker claiming it, or by a code being checked.
                raise DeliveryDeferred("row busy")
            return "gone"
        if login_request.delivery == Delivery.SENT:
            unsettled = _unsettled_claim(login_request)
            if unsettled is None:
                return Delivery.SENT
            if now - unsettled.created_at < CLAIM_TIMEOUT:
                raise DeliveryDeferred("send under way")
            # The worker that claimed it died. Its email may have gone out, so its secret
            # stays and counts as sent; the person gets another one.
            LoginSecret.objects.filter(pk=unsettled.pk).update(settled_at=now)
            login_request.sends += 1
        elif login_request.delivery not in _SENDABLE:
            return str(login_request.delivery)
        if login_request.status != LoginRequest.Status.PENDING or login_request.is_expired(now):
            login_request.delivery = Delivery.EXPIRED
            login_request.save(update_fields=["delivery", "sends"])
            return Delivery.EXPIRED

        if login_request.purpose == LoginRequest.Purpose.SIGN_IN:
            user = adapter.get_user(login_request.email)
            login_request.user = user  # type: ignore[assignment]
            # issue 18: who may sign up is the adapter's (``may_sign_up``); a request taken
            # for a bot's on the email form is never mailed, whoever the address is.
            may_sign_in = not login_request.bot_suspicion and (
                adapter.can_sign_in(user) if user else adapter.may_sign_up(login_request)
            )
        else:
            may_sign_in = _may_confirm(login_request)
        if not may_sign_in:
            login_request.delivery = Delivery.SUPPRESSED
            login_request.save(update_fields=["user", "delivery", "sends"])
            logger.info(
                "sign-in email not sent (no eligible account): request=%s", login_request.pk
            )
            return Delivery.SUPPRESSED

        code, token = adapter.mint_code(login_request), adapter.mint_token(login_request)
        link = adapter.build_link_url(token)
        secret = LoginSecret.objects.create(
            request=login_request,
            code_hash=hash_code(login_request.public_id, code),
            token_hash=hash_token(token),
            created_at=now,
        )
        # The request's own expiry is not moved here: only the web path sets it, the
        # same way for every address, so it cannot tell who got mail.
        login_request.delivery = Delivery.SENT
        login_request.save(update_fields=["user", "delivery", "sends"])
    return _Claim(login_request, secret.pk, code, link)


def _may_confirm(login_request: LoginRequest) -> bool:
    """Whether a step-up's or an address change's email is to be sent. Its account is the
    one that asked (never one found by the address); it must still be allowed in, and a
    new address that is already another account's gets nothing: the page that asked says
    the same either way, and the change could not be made."""
    adapter = get_adapter()
    user = login_request.user
    if user is None or not adapter.can_sign_in(user):
        return False
    if login_request.purpose == LoginRequest.Purpose.CHANGE_EMAIL:
        owner = adapter.get_user(login_request.email)
        return owner is None or owner.pk == user.pk
    return True


def _unsettled_claim(login_request: LoginRequest) -> LoginSecret | None:
    """The request's newest secret, if its send has not settled (it is under way, or its
    worker died). Older unsettled secrets do not matter: a newer send has taken over."""
    newest = login_request.secrets.only("pk", "created_at", "settled_at").first()
    return newest if newest is not None and newest.settled_at is None else None


def _settle_sent(claim: _Claim) -> None:
    """Count the accepted email and audit it, trying again while the database is away.

    The secret is committed and the email is out: giving up here would have a retry
    send a second email for a request already delivered.
    """
    login_request = claim.login_request
    for wait in (*_RECORD_WAITS, None):
        try:
            with transaction.atomic():
                settled = clock.now()
                LoginSecret.objects.filter(pk=claim.secret_pk).update(settled_at=settled)
                LoginRequest.objects.filter(pk=login_request.pk).update(
                    sends=F("sends") + 1, sent_at=settled
                )
                audit.record(AuthEvent.Kind.SENT, login_request=login_request)
            return
        except (DatabaseError, SoftTimeLimitExceeded) as exc:
            if wait is None or isinstance(exc, SoftTimeLimitExceeded):
                # Still ``sent`` from the claim, but unsettled: after CLAIM_TIMEOUT the
                # sweeper takes its worker for dead and sends once more. At least once,
                # never zero: a database away this long right after the mail server
                # accepted the message costs the person one extra email, with a code of
                # its own that works too.
                logger.error(
                    "sign-in email sent, not recorded: request=%s error=%s",
                    login_request.pk,
                    type(exc).__name__,
                )
                return
            logger.warning(
                "sign-in email sent, recording it again in %ss: request=%s error=%s",
                wait,
                login_request.pk,
                type(exc).__name__,
            )
            time.sleep(wait)


def _settle_refused(claim: _Claim) -> None:
    """End the refused secret; mark the request failed unless a newer send owns it."""
    with transaction.atomic():
        LoginSecret.objects.filter(pk=claim.secret_pk).delete()
        failed = _latest_claim(claim).update(delivery=Delivery.FAILED)
        if failed:
            audit.record(
                AuthEvent.Kind.DELIVERY_FAILED,
                login_request=claim.login_request,
                reason="smtp_refused",
            )


def _defer(login_request_id: int, exc: Exception, *, claim: _Claim | None = None) -> NoReturn:
    """Leave the request ``deferred`` and raise ``DeliveryDeferred`` for a retry.

    A claimed secret stays: a connection lost after the message was handed over may
    have delivered it.
    """
    logger.warning(
        "sign-in email deferred: request=%s error=%s", login_request_id, type(exc).__name__
    )
    try:
        with transaction.atomic():
            if claim is None:
                _set_delivery(login_request_id, Delivery.DEFERRED)
            else:
                LoginSecret.objects.filter(pk=claim.secret_pk).update(settled_at=clock.now())
                LoginRequest.objects.filter(pk=login_request_id).update(sends=F("sends") + 1)
                _latest_claim(claim).update(delivery=Delivery.DEFERRED)
    except DatabaseError:
        pass  # the retry finds the row as it was; an unsettled claim it waits out
    raise DeliveryDeferred(type(exc).__name__) from None


def _latest_claim(claim: _Claim) -> QuerySet[LoginRequest]:
    """The request, if it is still ``sent`` by this claim: no resend reopened it since, and
    no newer secret was minted for it."""
    newer = LoginSecret.objects.filter(request=OuterRef("pk"), pk__gt=claim.secret_pk)
    return LoginRequest.objects.filter(pk=claim.login_request.pk, delivery=Delivery.SENT).filter(
        ~Exists(newer)
    )


def _set_delivery(login_request_id: int, state: str) -> bool:
    rows = LoginRequest.objects.filter(pk=login_request_id, delivery__in=_SENDABLE)
    return bool(rows.update(delivery=state))
