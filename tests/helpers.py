"""Small helpers the test modules share (fixtures live in conftest.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.test import Client

from passwordless.models import UserSession
from passwordless.services.sessions import SESSION_TRACKING_KEY
from passwordless.testing import link_token

__all__ = ["all_at_once", "browsers_signed_in", "link_token", "session_row", "wrong_code"]

T = TypeVar("T")


def wrong_code(code: str, n: int = 0) -> str:
    """A code of ``code``'s length that is not ``code``: the ``n``-th of 000000, 111111, …

    Different ``n`` give different wrong codes (nine of them, then they wrap), for tests
    that must not repeat one.
    """
    candidates = [digit * len(code) for digit in "0123456789" if digit * len(code) != code]
    return candidates[n % 9]


def all_at_once(calls: Sequence[Callable[[], T]], timeout: float = 60) -> list[T]:
    """Fire every call at the same moment from its own thread; their results, in order."""
    barrier = threading.Barrier(len(calls))
    results: list[T | None] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return results  # type: ignore[return-value]  # every slot is filled once the threads end


def browsers_signed_in(start_sign_in: Callable[..., Any], email: str) -> Callable[..., Client]:
    """``sign_in(client=None)``: a browser signed in as ``email`` by code, a new one (another
    device) at each call; ``start_sign_in`` is conftest's fixture of that name."""

    def sign_in(c: Client | None = None) -> Client:
        c = c or Client()
        delivered = start_sign_in(email, c)
        assert delivered is not None
        assert c.post("/auth/code/", {"code": delivered.code}).status_code == 302
        return c

    return sign_in


def session_row(c: Client) -> UserSession:
    """The ``UserSession`` row of a browser signed in through the test client."""
    return UserSession.objects.get(public_id=c.session[SESSION_TRACKING_KEY])
