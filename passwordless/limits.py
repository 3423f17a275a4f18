"""Send and verify rate limits, on django-ratelimit's atomic counters.

The counters live in the cache named by ``RATELIMIT_USE_CACHE``: a Redis cache
shared by every web process. If that cache cannot be reached, the limits fail
closed: ``service_unavailable``, never unlimited attempts.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable

from django.http import HttpRequest
from django_ratelimit.core import get_usage

from .client import client_ip, rate_key_for_ip
from .conf import app_settings
from .errors import SignInError

__all__ = ["check_send", "check_verify"]

logger = logging.getLogger("passwordless")


def check_send(request: HttpRequest | None, email: str) -> None:
    """Raise ``rate_limited`` if one more email to ``email`` from this client is too many.

    The client's own limit is checked first, so that requests it refuses do
    not eat into the budget of the address they target.
    """
    if request is not None:
        _enforce("send-ip", rate_key_for_ip(client_ip(request)), app_settings.SEND_RATES_PER_IP)
    digest = hashlib.sha256(email.encode()).hexdigest()
    _enforce("send-email", digest, app_settings.SEND_RATES_PER_EMAIL)


def check_verify(request: HttpRequest | None) -> None:
    """Raise ``rate_limited`` if this client submitted too many codes or links."""
    if request is not None:
        key = rate_key_for_ip(client_ip(request))
        _enforce("verify-ip", key, app_settings.VERIFY_RATES_PER_IP)


def _enforce(group: str, value: str, rates: Iterable[str]) -> None:
    waits = []
    for rate in rates:
        try:
            usage = get_usage(
                None,
                group=f"passwordless.{group}",
                key=lambda *_: value,
                rate=rate,
                increment=True,
            )
        except Exception as exc:
            logger.error("rate-limit cache unreachable: %s", type(exc).__name__)
            raise SignInError("service_unavailable") from exc
        if usage is None:  # RATELIMIT_ENABLE is off
            continue
        if usage["limit"] == 0 and usage["time_left"] == -1:
            # django-ratelimit's signal that the cache failed (and fail-open is off).
            raise SignInError("service_unavailable")
        if usage["should_limit"]:
            waits.append(max(int(usage["time_left"]), 1))
    if waits:
        raise SignInError("rate_limited", retry_after=max(waits))
