"""Every test gets one tier marker, from what it uses (``tier_of`` in conftest.py)."""

from __future__ import annotations

import pytest

TIERS = ("unit", "db", "http", "e2e", "browser")


def _tiers(request: pytest.FixtureRequest) -> list[str]:
    return [name for name in TIERS if request.node.get_closest_marker(name)]


def test_a_test_that_uses_nothing_is_unit(request: pytest.FixtureRequest) -> None:
    assert _tiers(request) == ["unit"]


@pytest.mark.django_db
def test_the_django_db_marker_makes_it_db(request: pytest.FixtureRequest) -> None:
    assert _tiers(request) == ["db"]


def test_a_database_fixture_makes_it_db(db: None, request: pytest.FixtureRequest) -> None:
    assert _tiers(request) == ["db"]


@pytest.mark.django_db(transaction=True)
def test_the_site_makes_it_http(site: str, request: pytest.FixtureRequest) -> None:
    assert _tiers(request) == ["http"]
