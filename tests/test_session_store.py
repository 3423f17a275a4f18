"""``config.session_store`` on the real Redis: one command per write, and the refusals of
Django's own engine (a key in use is never taken over, a deleted session never comes back)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.core.cache import caches
from django.test import override_settings
from django_redis import get_redis_connection

from config.session_store import SessionStore

pytestmark = [pytest.mark.redis]


@contextmanager
def commands() -> Iterator[list[str]]:
    """The Redis commands the sessions cache sends meanwhile, by name."""
    sent: list[str] = []
    client: Any = get_redis_connection("sessions")
    original = client.execute_command

    def counting(*args: Any, **options: Any) -> Any:
        sent.append(str(args[0]).upper())
        return original(*args, **options)

    client.execute_command = counting
    try:
        yield sent
    finally:
        client.execute_command = original


def test_a_new_session_is_one_set_nx() -> None:
    store = SessionStore()
    store["k"] = "v"
    with commands() as sent:
        store.save()
    assert sent == ["SET"]  # no EXISTS before it
    assert SessionStore(store.session_key)["k"] == "v"


def test_an_update_is_one_set_xx() -> None:
    store = SessionStore()
    store["k"] = "v"
    store.save()
    store["k"] = "w"
    with commands() as sent:
        store.save()
    assert sent == ["SET"]  # no GET before it
    assert SessionStore(store.session_key)["k"] == "w"


def test_a_deleted_session_is_not_brought_back_by_a_late_save() -> None:
    """A sign-out elsewhere deletes the key while this request still holds the session."""
    store = SessionStore()
    store["signed_in"] = True
    store.save()
    SessionStore(store.session_key).delete()
    store["signed_in"] = "still"
    with pytest.raises(UpdateError):
        store.save()
    assert store.session_key is not None
    assert SessionStore().exists(store.session_key) is False


def test_a_key_in_use_is_never_taken_over() -> None:
    owner = SessionStore()
    owner["user"] = "alice"
    owner.save()
    intruder = SessionStore(owner.session_key)
    intruder._session_cache = {"user": "mallory"}  # type: ignore[attr-defined]
    with pytest.raises(CreateError):
        intruder.save(must_create=True)
    assert SessionStore(owner.session_key)["user"] == "alice"


def test_cycle_key_moves_the_data_and_drops_the_old_key() -> None:
    store = SessionStore()
    store["k"] = "v"
    store.save()
    old = store.session_key
    assert old is not None
    store.cycle_key()
    assert store.session_key != old
    assert SessionStore(store.session_key)["k"] == "v"
    assert not SessionStore().exists(old)


@override_settings(
    CACHES={"sessions": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
)
def test_other_caches_get_djangos_own_engine() -> None:
    caches["sessions"].clear()
    store = SessionStore()
    store["k"] = "v"
    store.save()
    assert SessionStore(store.session_key)["k"] == "v"
    SessionStore(store.session_key).delete()
    with pytest.raises(UpdateError):
        store.save()
