"""When an account is deactivated or its address changes, every device is signed out and
every sign-in in flight ends, in the same request (and transaction, the admin's saves being
atomic): a session, token or emailed code of the old state must not outlive it. An address
change is also told to the old address.

A passkey added or removed (``signals.passkey_added``, ``passkey_removed``) is told to the
account, with the session it was done from (``services.mail.queue_request_notice``)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.signals import post_save, pre_save

from . import signals
from .services.accounts import account_changed
from .services.mail import queue_request_notice

__all__ = ["connect"]


def _before(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    field = sender.get_email_field_name()
    if instance.pk is None or (
        update_fields is not None and not {field, "is_active"} & set(update_fields)
    ):
        # New, or a save that cannot change either (``login()``'s of ``last_login``): no read.
        instance._passwordless_before = None
        return
    instance._passwordless_before = (
        sender._default_manager.filter(pk=instance.pk).values_list(field, "is_active").first()
        if hasattr(instance, "is_active")
        else sender._default_manager.filter(pk=instance.pk).values_list(field).first()
    )


def _after(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    before = getattr(instance, "_passwordless_before", None)
    if created or not before:
        return
    old_email = before[0]
    email_changed = old_email != getattr(instance, sender.get_email_field_name())
    deactivated = len(before) > 1 and before[1] and not getattr(instance, "is_active", True)
    if deactivated or email_changed:
        account_changed(
            instance,
            reason="deactivated" if deactivated else "email_changed",
            old_email=old_email if email_changed else None,
        )


def _passkey_added(sender: Any, passkey: Any, request: Any = None, **kwargs: Any) -> None:
    # Its id travels, not its name: the worker reads the name (``notices.notice_context``).
    queue_request_notice("passkey_added", passkey.user_id, request, {"passkey_id": passkey.pk})


def _passkey_removed(
    sender: Any, user: Any, name: str, request: Any = None, **kwargs: Any
) -> None:
    # The row is gone: its name travels, the person's own label for it (64 characters at
    # most), not a credential, where keeping the row, or a copy, for one email would not.
    queue_request_notice("passkey_removed", user.pk, request, {"name": str(name)[:64]})


def connect() -> None:
    user_model = get_user_model()
    pre_save.connect(_before, sender=user_model, dispatch_uid="passwordless.user.before")
    post_save.connect(_after, sender=user_model, dispatch_uid="passwordless.user.after")
    signals.passkey_added.connect(_passkey_added, dispatch_uid="passwordless.notice.passkey_added")
    signals.passkey_removed.connect(
        _passkey_removed, dispatch_uid="passwordless.notice.passkey_removed"
    )
