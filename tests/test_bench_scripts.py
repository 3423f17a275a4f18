"""The benchmark scripts run and print their figures (their goals are judged on full runs)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.parametrize("pathway", ["html", "api"])
def test_enumeration_timing_prints_the_median_difference(pathway: str) -> None:
    command = [sys.executable, "-m", "bench.enumeration_timing", "--requests", "10"]
    result = subprocess.run(
        [*command, "--warmup", "2", "--pathway", pathway],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "median difference" in result.stdout, result.stdout + result.stderr
    assert re.search(r"tasks queued\s+24 ", result.stdout), result.stdout
    assert result.returncode in (0, 1)


@pytest.mark.postgres
@pytest.mark.redis
def test_session_engines_prints_both_engines() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.session_engines", "-n", "50"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^renew\s+\d+\s+\d+\s+[\d.]+$", result.stdout, re.MULTILINE), result.stdout
