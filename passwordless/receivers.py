"""When an account is deactivated or its address changes, every device is signed out and
every sign-in in flight ends, in the same request (and transaction, the admin's saves being
atomic): a session, token or emailed code of the old state must not outlive it. An address
change is also told to the old address."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.signals import post_save, pre_save

from .services.accounts import account_changed

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


def connect() -> None:
    user_model = get_user_model()
    pre_save.connect(_before, sender=user_model, dispatch_uid="passwordless.user.before")
    post_save.connect(_after, sender=user_model, dispatch_uid="passwordless.user.after")
