"""The deployment files: the compose file parses, and runs the same bin/ scripts as CI."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests import services

ROOT = Path(__file__).resolve().parent.parent


def test_docker_compose_accepts_the_compose_file(tmp_path: Path) -> None:
    if shutil.which("docker-compose") is None:
        if services.REQUIRED:
            raise RuntimeError("docker-compose is not installed and REQUIRE_SERVICES=1")
        pytest.skip("docker-compose is not installed")
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    result = subprocess.run(
        ["docker-compose", "config"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    for script in ("bin/web", "bin/worker", "bin/beat", "bin/migrate"):
        assert script in result.stdout
        assert (ROOT / script).is_file()


def test_every_variable_the_settings_read_is_in_env_example() -> None:
    import re

    settings_text = (ROOT / "config" / "settings.py").read_text()
    read = set(re.findall(r'env\.\w+\(\s*"([A-Z_]+)"', settings_text))
    read |= set(re.findall(r'_redis_url\("([A-Z_]+)"', settings_text))
    read |= {"JWT_PRIVATE_KEY", "JWT_PREVIOUS_PRIVATE_KEY"}
    listed = set(re.findall(r"^# ([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read - listed == set()
