"""The undo link of a confirmed address change: minted by the worker that mails it.

The link goes to the old address and puts it back (``email_change.undo``). Its token is
minted where the email is built, in the worker (as ``delivery`` mints a sign-in's code
and link), so it never crosses the broker: the task carries only the change's id. Only
its keyed hash is kept (``EmailChange.undo_token_hash``). A notice sent again (a retry,
a duplicate task) mints a new token and the older one stops working: the newest email's
link is the one that undoes.
"""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse

from .. import clock
from ..conf import app_settings
from ..crypto import hash_token, mint_token
from ..models import EmailChange

__all__ = ["hash_undo_token", "mint_undo_token", "undo_details"]


def hash_undo_token(token: str) -> str:
    """The keyed hash an undo token is stored and looked up by. The same keyed digest as
    a sign-in link's, looked up in another table: neither token opens the other's door."""
    return hash_token(token)


def mint_undo_token(email_change_id: object) -> str | None:
    """A new undo token for a confirmed change still undoable, its hash stored; ``None``
    when there is none to offer (undone, expired, unknown, or the pages not mounted).
    The notice's templates put it in the link, ``passwordless:email-undo``."""
    if not isinstance(email_change_id, int) or not _undo_page_mounted():
        return None
    token = mint_token()
    stored = EmailChange.objects.filter(
        pk=email_change_id,
        confirmed_at__isnull=False,
        undone_at=None,
        undo_expires_at__gt=clock.now(),
    ).update(undo_token_hash=hash_undo_token(token))
    return token if stored else None


def undo_details(email_change_id: object) -> dict[str, str | int | None]:
    """What the old address's notice of a change gets to offer its undo (minting the
    token): ``undo_token`` (``None`` when there is nothing to undo) and ``undo_days``, the
    length of the undo period in whole days."""
    days = max(1, round(app_settings.EMAIL_CHANGE_UNDO_PERIOD.total_seconds() / 86400))
    return {"undo_token": mint_undo_token(email_change_id), "undo_days": days}


def _undo_page_mounted() -> bool:
    try:
        reverse("passwordless:email-undo", kwargs={"token": "t"})
    except NoReverseMatch:
        return False
    return True
