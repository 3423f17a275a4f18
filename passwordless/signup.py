"""Who may sign up: the site's policy for addresses that have no account yet.

The adapter's ``is_signup_open`` asks ``is_open_to``; the worker asks the adapter when it
decides whether a sign-in's email goes out (``services.delivery``), and the completion
asks again before it creates the account (``services.consumption``). Never the request
path: the answer to "email me a code", and its timing, are the same for every address,
whatever the policy, so the policy cannot tell anyone which addresses have accounts.

Every rule here reads only the address and the settings (sets held in memory, no query),
and none of it concerns existing accounts: they sign in under every policy.

Domains match with their subdomains (``example.com`` covers ``mail.example.com``, not
``badexample.com``), compared in the canonical form that ``addresses.normalize_email``
stores: lower case, Unicode labels (``xn--bcher-kva.example`` is ``bücher.example``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.signals import setting_changed

from .addresses import normalize_email
from .conf import app_settings

__all__ = [
    "POLICIES",
    "SHIPPED_DISPOSABLE_DOMAINS",
    "accepts_invitations",
    "canonical_domain",
    "disposable_domains",
    "is_disposable",
    "is_open_to",
    "matches",
    "read_domains",
    "reload",
]

#: The values of ``PASSWORDLESS_SIGNUP_POLICY``.
POLICIES = ("open", "invite_only", "closed")

#: The list of disposable-mail domains shipped with the app (its source and licence are
#: in ``disposable_domains.LICENSE`` beside it).
SHIPPED_DISPOSABLE_DOMAINS = Path(__file__).resolve().parent / "data" / "disposable_domains.txt"


def is_open_to(email: str) -> bool:
    """Whether ``email`` (canonical) may create an account by signing in, without an
    invitation: the policy is ``"open"``, and no domain rule keeps its domain out."""
    if app_settings.SIGNUP_POLICY != "open":
        return False
    domain = email.rpartition("@")[2]
    allowed = _canonical(app_settings.SIGNUP_ALLOWED_DOMAINS)
    if allowed and not matches(domain, allowed):
        return False
    if matches(domain, _canonical(app_settings.SIGNUP_BLOCKED_DOMAINS)):
        return False
    return not (app_settings.SIGNUP_BLOCK_DISPOSABLE and is_disposable(domain))


def accepts_invitations() -> bool:
    """Whether an invitation's address may sign up by its link: under every policy but
    ``"closed"``. Staff chose that address, so the domain rules do not apply to it."""
    return app_settings.SIGNUP_POLICY != "closed"


def matches(domain: str, domains: frozenset[str]) -> bool:
    """Whether ``domain`` is one of ``domains`` or a subdomain of one: each of its own
    suffixes at a dot is looked up, so the cost does not grow with the list."""
    labels = domain.split(".")
    return any(".".join(labels[i:]) in domains for i in range(len(labels)))


def is_disposable(domain: str) -> bool:
    """Whether ``domain`` (canonical) is a disposable-mail domain or a subdomain of one."""
    return matches(domain, disposable_domains())


def disposable_domains() -> frozenset[str]:
    """The disposable-mail domains: ``SIGNUP_DISPOSABLE_DOMAINS_FILE``, or the shipped
    list. Read once per path and process; a missing or unreadable file raises
    ``OSError`` (a system check reports it first)."""
    path = app_settings.SIGNUP_DISPOSABLE_DOMAINS_FILE or str(SHIPPED_DISPOSABLE_DOMAINS)
    return _domains_of(path)


def read_domains(lines: Iterable[str]) -> frozenset[str]:
    """The canonical domains of a list: one a line, blank lines and ``#`` comments
    skipped, entries that are not domains dropped."""
    found = set()
    for line in lines:
        entry = line.split("#", 1)[0].strip()
        if entry:
            domain = canonical_domain(entry)
            if domain:
                found.add(domain)
    return frozenset(found)


def canonical_domain(value: str) -> str:
    """A domain as ``normalize_email`` stores it, or ``""`` when it is not one."""
    try:
        return normalize_email(f"x@{value.strip().strip('.')}").rpartition("@")[2]
    except ValidationError:
        return ""


def reload() -> None:
    """Read the disposable-mail list again at its next use (after it was rewritten)."""
    _domains_of.cache_clear()


@functools.lru_cache(maxsize=8)
def _domains_of(path: str) -> frozenset[str]:
    with open(path, encoding="utf-8") as lines:
        return read_domains(lines)


@functools.lru_cache(maxsize=32)
def _canonical(domains: tuple[str, ...]) -> frozenset[str]:
    return frozenset(d for d in map(canonical_domain, domains) if d)


def _forget(**kwargs: Any) -> None:
    if kwargs.get("setting", "").startswith("PASSWORDLESS_SIGNUP_"):
        _domains_of.cache_clear()


# A test that points the setting at another file, or rewrites it, reads it afresh.
setting_changed.connect(_forget, dispatch_uid="passwordless.signup.forget")
