"""schemathesis against the live server: no 500, every answer matches the OpenAPI document."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from passwordless.api.openapi import openapi_document

schema = schemathesis.openapi.from_dict(openapi_document())


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@hypothesis_settings(
    max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)
def test_api_matches_its_openapi_document(case: Any, live_server: Any) -> None:
    case.call_and_validate(base_url=live_server.url)
