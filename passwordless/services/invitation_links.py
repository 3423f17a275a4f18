"""An invitation's link: minted by the worker that mails it, looked up by its keyed hash.

As with a sign-in's code and link (``delivery``) and an address change's undo link
(``undo_links``), the token is minted where the email is built, so it never crosses the
broker: the task carries only the invitation's id. Only its keyed hash is stored
(``Invitation.token_hash``). Sent again (a retry, staff sending it anew), an invitation
gets a new token and the older link stops working: the newest email's link is the one
that works.
"""

from __future__ import annotations

import logging
from typing import TypeGuard

from .. import clock
from ..adapter import get_adapter
from ..crypto import hash_token, mint_token
from ..errors import SignInError
from ..models import Invitation

__all__ = ["deliver_invitation", "find_invitation", "hash_invitation_token"]

logger = logging.getLogger("passwordless")

#: A link token is 43 base64url characters (``crypto.mint_token``); anything much longer,
#: or with other characters, is not one and never reaches a query.
_MAX_TOKEN = 128


def hash_invitation_token(token: str) -> str:
    """The keyed hash an invitation's token is stored and looked up by: a sign-in link's
    digest, looked up in another table, so neither token opens the other's door."""
    return hash_token(token)


def deliver_invitation(invitation_id: object) -> bool:
    """Mint a new token for a usable invitation, store its hash, and email its link;
    ``False`` when there is nothing to send (used, expired or gone). Raises what the
    adapter's sending raises (the task retries transient failures)."""
    if not isinstance(invitation_id, int):
        return False
    token = mint_token()
    # Stored (committed) before the email leaves, so the link works the moment it arrives.
    stored = Invitation.objects.filter(
        pk=invitation_id, used_at=None, expires_at__gt=clock.now()
    ).update(token_hash=hash_invitation_token(token))
    if not stored:
        return False
    invitation = Invitation.objects.select_related("invited_by").get(pk=invitation_id)
    adapter = get_adapter()
    adapter.send_invitation_email(invitation, link=adapter.build_invitation_url(token))
    Invitation.objects.filter(pk=invitation_id).update(sent_at=clock.now())
    logger.info("invitation sent: invitation=%s", invitation_id)
    return True


def find_invitation(token: object) -> Invitation:
    """The invitation of a link's token, still usable, or raise why not:
    ``invitation_invalid`` (unknown, mistyped, or replaced by a newer email's),
    ``invitation_used`` or ``invitation_expired``."""
    if not _is_token(token):
        raise SignInError("invitation_invalid")
    invitation = Invitation.objects.filter(token_hash=hash_invitation_token(token)).first()
    if invitation is None:
        raise SignInError("invitation_invalid")
    if invitation.used_at is not None:
        raise SignInError("invitation_used")
    if not invitation.is_usable():
        raise SignInError("invitation_expired")
    return invitation


def _is_token(value: object) -> TypeGuard[str]:
    return (
        isinstance(value, str)
        and 0 < len(value) <= _MAX_TOKEN
        and all(c.isascii() and (c.isalnum() or c in "-_") for c in value)
    )
