"""Who is asking: the real client address behind trusted proxies, and the user agent.

``X-Forwarded-For`` is believed only when the peer is one of
``PASSWORDLESS_TRUSTED_PROXIES``; then the address is the right-most entry not
added by a trusted proxy. Anyone else can write the header, so for them it
changes nothing.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.http import HttpRequest

from .conf import app_settings

__all__ = ["client_ip", "mask_ip", "rate_key_for_ip", "user_agent"]

_MAX_USER_AGENT = 300
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _parse(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address as proxies write it: ``203.0.113.7``, ``203.0.113.7:5123``,
    ``[2001:db8::1]:443`` or ``::ffff:203.0.113.7`` (an IPv4 client on a dual-stack socket)."""
    text = value.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return any(address in net for net in _networks(tuple(app_settings.TRUSTED_PROXIES)))


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    peer = _parse(str(request.META.get("REMOTE_ADDR", "")))
    if peer is None:
        return None
    if _trusted(peer):
        forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR", ""))
        for hop in reversed([h for h in forwarded.split(",") if h.strip()]):
            address = _parse(hop)
            if address is None:
                break  # garbage from the client's side: stop at the proxy's word
            if not _trusted(address):
                return str(address)
    return str(peer)


def rate_key_for_ip(ip: str | None) -> str:
    """IPv6 clients are counted per /64: one host usually holds the whole prefix."""
    address = _parse(ip or "")
    if address is None:
        return "unknown"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def mask_ip(ip: str | None) -> str:
    """``203.0.113.7`` becomes ``203.0.113.0/24``, IPv6 its /48: where, roughly, not who."""
    address = _parse(ip or "")
    if address is None:
        return ""
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def user_agent(request: HttpRequest | None) -> str:
    if request is None:
        return ""
    return str(request.META.get("HTTP_USER_AGENT", ""))[:_MAX_USER_AGENT]
