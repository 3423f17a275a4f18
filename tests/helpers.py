"""Small helpers the test modules share (fixtures live in conftest.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from passwordless.testing import link_token

__all__ = ["all_at_once", "link_token", "wrong_code"]

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
