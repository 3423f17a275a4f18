"""Sessions and cache on the real Redis of the machine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django_redis import get_redis_connection

from tests.conftest import Delivered

pytestmark = [pytest.mark.redis, pytest.mark.django_db]


def test_signed_in_session_lives_in_redis(
    client: Client, start_sign_in: Callable[..., Delivered | None]
) -> None:
    assert settings.SESSION_ENGINE == "config.session_store"  # the cache engine, strict
    delivered = start_sign_in("alice@example.org")
    assert delivered is not None
    client.post("/auth/code/", {"code": delivered.code})
    session_key = client.cookies[settings.SESSION_COOKIE_NAME].value

    redis = get_redis_connection("sessions")
    keys = [k.decode() for k in redis.keys("*")]
    assert any(session_key in key for key in keys), keys
    assert settings.CACHES["sessions"]["LOCATION"].startswith("redis://")

    # Deleting the key in Redis ends the session: Redis is the only store.
    for key in keys:
        if session_key in key:
            redis.delete(key)
    home: Any = client.get("/")
    assert b"You're signed in" not in home.content
