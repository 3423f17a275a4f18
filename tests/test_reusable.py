"""The app works outside this project: Django's ``auth.User``, no Celery, no Redis."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# Runs a minimal project in a subprocess.
pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent


def test_the_app_in_a_minimal_project_with_auth_user() -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "--ds", "tests.settings_auth_user", "tests/auth_user/check_sign_in.py",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "3 passed" in result.stdout
