"""Who is asking: the real client address behind trusted proxies, and the user agent.

``X-Forwarded-For`` is believed only when the peer is one of
``PASSWORDLESS_TRUSTED_PROXIES``; then the address is the right-most entry not
added by a trusted proxy. Anyone else can write the header, so for them it
changes nothing. ``"unix"`` in that list trusts a peer on a unix socket (no
``REMOTE_ADDR``): the proxy on this machine, as gunicorn behind nginx sees it.

A request with no usable address (no ``REMOTE_ADDR`` and no trust for the
socket, or a trusted proxy that named no client) cannot be rate-limited per
client: it is refused (``service_unavailable``), never counted in one bucket
that every such client would share and one attacker could fill, nor given a key
of its own, which would leave it unlimited.
"""

from __future__ import annotations

import ipaddress
import logging
from functools import lru_cache

from django.http import HttpRequest

from .conf import app_settings
from .errors import SignInError

__all__ = [
    "UNIX_SOCKET",
    "client_ip",
    "invalid_proxies",
    "mask_ip",
    "rate_key_for_ip",
    "user_agent",
]

#: The entry of ``TRUSTED_PROXIES`` that trusts a peer on a unix socket.
UNIX_SOCKET = "unix"
logger = logging.getLogger("passwordless")

_MAX_USER_AGENT = 300
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies if p != UNIX_SOCKET)


def invalid_proxies(proxies: tuple[str, ...]) -> list[str]:
    """The entries that are neither an address, a network nor ``"unix"`` (check E021)."""
    bad: list[str] = []
    for proxy in proxies:
        try:
            if proxy != UNIX_SOCKET:
                ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            bad.append(proxy)
    return bad


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
    """The client's address, or ``None`` when the request gives no usable one."""
    if request is None:
        return None
    remote = str(request.META.get("REMOTE_ADDR", "")).strip()
    peer = _parse(remote)
    if peer is None:
        if remote or UNIX_SOCKET not in app_settings.TRUSTED_PROXIES:
            return None
    elif not _trusted(peer):
        return str(peer)
    return _forwarded_client(str(request.META.get("HTTP_X_FORWARDED_FOR", "")))


def _forwarded_client(forwarded: str) -> str | None:
    """The right-most hop not added by a trusted proxy, or the left-most trusted one when
    every hop is (a client inside the proxies' own network). A hop that does not parse
    ends the walk: left of it is the client's own writing. No hop at all: ``None``, for a
    trusted proxy that names no client says nothing about who is asking."""
    believed = None
    for hop in reversed([h for h in forwarded.split(",") if h.strip()]):
        address = _parse(hop)
        if address is None:
            break
        believed = address
        if not _trusted(address):
            break
    return str(believed) if believed is not None else None


def rate_key_for_ip(ip: str | None) -> str:
    """IPv6 clients are counted per /64: one host usually holds the whole prefix.

    Without an address, ``service_unavailable``: see the module's docstring.
    """
    address = _parse(ip or "")
    if address is None:
        logger.error(
            "no client address to rate-limit by: REMOTE_ADDR is empty (a unix socket? add "
            "'unix' to PASSWORDLESS_TRUSTED_PROXIES) or a trusted proxy sent no "
            "X-Forwarded-For; refusing the request"
        )
        raise SignInError("service_unavailable")
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
