"""The one place the app reads the time, so tests can move it."""

from datetime import datetime

from django.utils import timezone

__all__ = ["now"]


def now() -> datetime:
    return timezone.now()
