import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

from passwordless.checks import (
    check_adapter,
    check_hash_key,
    check_jwt,
    check_rates,
    check_shared_caches,
    check_site_url,
    check_user_model,
)


@pytest.mark.parametrize(
    ("site_url", "debug", "check_id"),
    [
        (None, True, "passwordless.E001"),
        ("login.example.com", True, "passwordless.E002"),
        ("https://login.example.com/path", True, "passwordless.E002"),
        ("http://login.example.com", False, "passwordless.E003"),
    ],
)
def test_site_url_checks_fire(site_url: str | None, debug: bool, check_id: str) -> None:
    with override_settings(PASSWORDLESS_SITE_URL=site_url, DEBUG=debug):
        assert [m.id for m in check_site_url(None)] == [check_id]


def test_https_site_url_passes() -> None:
    with override_settings(PASSWORDLESS_SITE_URL="https://login.example.com", DEBUG=False):
        assert check_site_url(None) == []


def test_user_model_without_email_field_fires(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.contrib.auth import get_user_model

    assert check_user_model(None) == []
    monkeypatch.setattr(get_user_model(), "EMAIL_FIELD", "mail_address")
    assert [m.id for m in check_user_model(None)] == ["passwordless.E004"]


def test_hash_key_check_fires_in_production_only() -> None:
    with override_settings(DEBUG=False, PASSWORDLESS_HASH_KEY=None):
        assert [m.id for m in check_hash_key()] == ["passwordless.W001"]
    with override_settings(DEBUG=False, PASSWORDLESS_HASH_KEY="k" * 50):
        assert check_hash_key() == []
    with override_settings(DEBUG=True, PASSWORDLESS_HASH_KEY=None):
        assert check_hash_key() == []


@pytest.mark.parametrize(
    ("overrides", "check_id"),
    [
        ({"PASSWORDLESS_ACCESS_TOKEN_LIFETIME": 901}, "passwordless.E005"),
        ({"PASSWORDLESS_JWT_LEEWAY": 61}, "passwordless.E006"),
        ({"PASSWORDLESS_JWT_PRIVATE_KEYS": []}, "passwordless.E007"),
        ({"PASSWORDLESS_JWT_PRIVATE_KEYS": ["not a key"]}, "passwordless.E007"),
    ],
)
def test_jwt_checks_fire(overrides: dict[str, object], check_id: str) -> None:
    assert check_jwt() == []
    with override_settings(**overrides):
        assert [m.id for m in check_jwt()] == [check_id]


def test_process_local_caches_fire_in_production() -> None:
    local = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    redis = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:6379/15"}
    with override_settings(DEBUG=False, CACHES={"default": redis, "ratelimit": local}):
        assert [m.id for m in check_shared_caches()] == ["passwordless.E008"]
    with override_settings(DEBUG=False, CACHES={"default": redis, "ratelimit": redis}):
        assert check_shared_caches() == []


@pytest.mark.parametrize("rate", ["5 per hour", "5/x", "/h", "5"])
def test_an_invalid_rate_fires(rate: str) -> None:
    assert check_rates() == []
    with override_settings(PASSWORDLESS_SEND_RATES_PER_IP=rate):
        assert [m.id for m in check_rates()] == ["passwordless.E009"]


def test_sessions_in_a_process_local_cache_fire_in_production() -> None:
    local = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    with override_settings(
        DEBUG=False,
        SESSION_ENGINE="django.contrib.sessions.backends.cache",
        SESSION_CACHE_ALIAS="s",
        CACHES={"default": local, "s": local},
    ):
        assert [m.id for m in check_rates()] == ["passwordless.E010"]


def test_a_rate_limit_cache_without_atomic_increments_fires() -> None:
    redis = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:6379/15"}
    database = {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "t"}
    with override_settings(DEBUG=False, CACHES={"default": redis, "ratelimit": database}):
        assert [m.id for m in check_shared_caches()] == ["passwordless.E011"]


@pytest.mark.parametrize(
    "overrides",
    [{"PASSWORDLESS_CODE_LENGTH": 5}, {"PASSWORDLESS_CODE_ALPHABET": "0123456788"}],
)
def test_too_few_codes_fire(overrides: dict[str, object]) -> None:
    with override_settings(**overrides):
        assert [m.id for m in check_rates()] == ["passwordless.E012"]


ROOT = Path(__file__).resolve().parent.parent


def test_an_adapter_with_predictable_secrets_is_refused() -> None:
    assert check_adapter() == []
    with override_settings(PASSWORDLESS_ADAPTER="bench.adapter.PredictableAdapter"):
        assert [m.id for m in check_adapter()] == ["passwordless.E013"]
    with override_settings(PASSWORDLESS_ADAPTER="bench.no_such.Adapter"):
        assert [m.id for m in check_adapter()] == ["passwordless.E014"]


def test_production_settings_refuse_the_benchmark_adapter(tmp_path: Path) -> None:
    """The project's settings with the benchmark's adapter: ``manage.py check`` fails
    (and so does ``migrate``, which bin/migrate runs before a release)."""
    (tmp_path / "with_bench_adapter.py").write_text(
        "from config.settings import *  # noqa: F403\n"
        "PASSWORDLESS_ADAPTER = 'bench.adapter.PredictableAdapter'\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "with_bench_adapter",
        "PYTHONPATH": str(tmp_path),
        "VAR_DIR": str(tmp_path / "var"),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "passwordless.E013" in result.stderr
