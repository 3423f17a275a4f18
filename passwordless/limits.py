"""Send and verify rate limits, on django-ratelimit's atomic counters.

The counters live in the cache named by ``RATELIMIT_USE_CACHE``: a Redis cache
shared by every web process. If that cache cannot be reached, the limits fail
closed: ``service_unavailable``, never unlimited attempts.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable

from django.http import HttpRequest
from django_ratelimit.core import get_usage

from .client import client_ip, rate_key_for_ip
from .conf import app_settings
from .errors import SignInError

__all__ = [
    "check_poll",
    "check_send",
    "check_verify",
    "count_device_failure",
    "device_failures_exhausted",
    "rate_period",
]

logger = logging.getLogger("passwordless")

#: django-ratelimit's rate syntax: ``5/h``, ``30/5m``, ``100/d``.
RATE = re.compile(r"^(\d+)/(\d*)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def rate_period(rate: str) -> int:
    """The window of a rate string in seconds; ``ValueError`` if it is not one."""
    match = RATE.match(rate)
    if match is None:
        raise ValueError(f"not a rate: {rate!r} (expected e.g. '5/h' or '30/5m')")
    return int(match.group(2) or 1) * _UNITS[match.group(3)]


def check_send(request: HttpRequest | None, email: str, device: str | None = None) -> None:
    """Raise ``rate_limited`` if one more email to ``email`` from this client is too many.

    The client's own limit is checked first, so that requests it refuses do
    not eat into the budget of the address they target. A trusted ``device`` of
    the address (``services.trusted_devices``) has the address's rates to itself,
    so that others flooding the address cannot spend them.
    """
    if request is not None:
        _enforce("send-ip", rate_key_for_ip(client_ip(request)), app_settings.SEND_RATES_PER_IP)
    if device is not None:
        _enforce("send-device", device, app_settings.SEND_RATES_PER_EMAIL)
        return
    digest = hashlib.sha256(email.encode()).hexdigest()
    _enforce("send-email", digest, app_settings.SEND_RATES_PER_EMAIL)


def _usage(group: str, value: str, rate: str, *, increment: bool) -> dict[str, int] | None:
    """django-ratelimit's counter for ``value`` in ``group``; an unreachable cache fails
    closed (``service_unavailable``)."""
    try:
        usage: dict[str, int] | None = get_usage(
            None,
            group=f"passwordless.{group}",
            key=lambda *_: value,
            rate=rate,
            increment=increment,
        )
    except Exception as exc:
        logger.error("rate-limit cache unreachable: %s", type(exc).__name__)
        raise SignInError("service_unavailable") from exc
    return usage


def _device_failure_usage(device: str, increment: bool) -> dict[str, int] | None:
    rate = f"{app_settings.FAILURE_LIMIT}/h"
    return _usage("device-failures", device, rate, increment=increment)


def device_failures_exhausted(device: str) -> bool:
    """Whether a trusted device typed ``FAILURE_LIMIT`` wrong codes this hour; then it is
    judged like any other browser until the hour is over."""
    usage = _device_failure_usage(device, increment=False)
    if usage is None:  # RATELIMIT_ENABLE is off
        return False
    if usage["limit"] == 0 and usage["time_left"] == -1:
        raise SignInError("service_unavailable")
    return usage["count"] >= usage["limit"]


def count_device_failure(device: str) -> None:
    _device_failure_usage(device, increment=True)


def check_verify(request: HttpRequest | None) -> None:
    """Raise ``rate_limited`` if this client submitted too many codes or links."""
    if request is not None:
        key = rate_key_for_ip(client_ip(request))
        _enforce("verify-ip", key, app_settings.VERIFY_RATES_PER_IP)


def check_poll(request: HttpRequest | None) -> None:
    """Raise ``rate_limited`` if a waiting page polls too often. Counts in the cache only."""
    if request is not None:
        key = rate_key_for_ip(client_ip(request))
        _enforce("poll-ip", key, app_settings.POLL_RATES_PER_IP)


def _enforce(group: str, value: str, rates: Iterable[str]) -> None:
    """Count one hit against each rate, shortest window first, and stop at the first refusal.

    Stopping there means a hit refused by ``1/m`` does not also use up ``5/h``:
    the hourly budget counts what was let through.
    """
    for rate in sorted(rates, key=rate_period):
        usage = _usage(group, value, rate, increment=True)
        if usage is None:  # RATELIMIT_ENABLE is off
            continue
        if usage["limit"] == 0 and usage["time_left"] == -1:
            # django-ratelimit's signal that the cache failed (and fail-open is off).
            raise SignInError("service_unavailable")
        if usage["should_limit"]:
            raise SignInError("rate_limited", retry_after=max(int(usage["time_left"]), 1))
