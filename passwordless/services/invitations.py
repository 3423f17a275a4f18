"""Invitations: staff invite addresses to sign up; an invitation's link starts that sign-up.

Under ``SIGNUP_POLICY = "invite_only"`` only an invited address may create an account,
and only by a sign-in started from its invitation's link: the request carries the
invitation (``LoginRequest.invitation``), and the worker and the completion let that one
address sign up (``adapter.may_sign_up``). The sign-in is the usual one, code and link
mailed to the invited address, so holding the invitation's link is not enough: whoever
signs up still reads that mailbox. The account's creation uses the invitation up.

The link's GET only shows a page (link scanners open links); its POST starts the sign-in
(``accept``). The email is queued after commit with the invitation's id only; the worker
mints the token (``invitation_links``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest

from .. import audit, clock
from ..adapter import get_adapter
from ..addresses import normalize_email
from ..conf import app_settings
from ..models import AuthEvent, Invitation
from . import mail
from .invitation_links import find_invitation
from .sessions import Started
from .start import start_sign_in

__all__ = ["Invited", "accept", "invite", "send_again"]


@dataclass
class Invited:
    """What ``invite`` did with each address it was given."""

    sent: list[Invitation] = field(default_factory=list)
    #: Addresses that already have an account: they sign in, whatever the policy.
    existing: list[str] = field(default_factory=list)
    #: What was given that is not an address.
    invalid: list[str] = field(default_factory=list)


def invite(
    emails: Iterable[str],
    *,
    invited_by: AbstractBaseUser | None = None,
    request: HttpRequest | None = None,
) -> Invited:
    """Invite each address (queued, sent by the worker after commit). An address with a
    live invitation already gets it again, with a new link and a new expiry; one that
    already has an account is skipped."""
    done = Invited()
    adapter = get_adapter()
    for typed in dict.fromkeys(e.strip() for e in emails if e.strip()):
        try:
            email = normalize_email(typed)
        except ValidationError:
            done.invalid.append(typed)
            continue
        if adapter.get_user(email) is not None:
            done.existing.append(email)
            continue
        done.sent.append(_invite_one(email, invited_by, request))
    return done


def send_again(invitations: Iterable[Invitation], *, request: HttpRequest | None = None) -> int:
    """Send unused invitations again, each with a new link and a new expiry; the number
    sent."""
    sent = 0
    for invitation in invitations:
        if invitation.used_at is None:
            _invite_one(invitation.email, None, request, invitation=invitation)
            sent += 1
    return sent


def accept(token: str, *, request: HttpRequest, replaces: str | None = None) -> Started:
    """Start the sign-in of an invitation's address from its link's POST: that address
    only, carrying the invitation, so that it may sign up. Raises ``SignInError`` for a
    link that is unknown, used or expired."""
    invitation = find_invitation(token)
    return start_sign_in(
        invitation.email, request=request, replaces=replaces, invitation=invitation
    )


def _invite_one(
    email: str,
    invited_by: AbstractBaseUser | None,
    request: HttpRequest | None,
    *,
    invitation: Invitation | None = None,
) -> Invitation:
    now = clock.now()
    expires_at = now + app_settings.INVITATION_LIFETIME
    with transaction.atomic():
        if invitation is None:
            invitation = (
                Invitation.objects.select_for_update()
                .filter(email=email, used_at=None, expires_at__gt=now)
                .first()
            )
        if invitation is None:
            invitation = Invitation.objects.create(
                email=email,
                invited_by=invited_by,  # type: ignore[misc]
                created_at=now,
                expires_at=expires_at,
            )
        else:
            invitation.expires_at = expires_at
            invitation.save(update_fields=["expires_at"])
        mail.queue_invitation_email(invitation.pk)  # on commit; the worker mints the link
        audit.record(
            AuthEvent.Kind.INVITED,
            request=request,
            user=invited_by,
            email=email,
            details={"invitation": invitation.pk},
        )
    return invitation
