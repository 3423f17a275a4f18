"""The benchmark scripts run and print their figures (their goals are judged on full runs)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Each runs a benchmark script in a subprocess, which starts its own servers.
pytestmark = pytest.mark.e2e

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


@pytest.mark.postgres
@pytest.mark.redis
def test_scale_prints_every_figure() -> None:
    command = [sys.executable, "-m", "bench.scale", "--rows", "5000", "--mails", "20"]
    # Its own database and Redis database: a full run may be under way beside it.
    command += ["--verifies", "20", "--warmup", "2", "--redis-db", "13"]
    result = subprocess.run(
        [*command, "--database", "passwordless_bench_scale_smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    verdict = r"\s+(met|MISSED)$"
    for row in (
        r"^verify_code\(\) @ 1,000 outstanding\s+p50 [\d.]+ ms, p99 [\d.]+ ms$",
        r"^verify_code\(\) @ 5,000 outstanding\s+p50 [\d.]+ ms, p99 [\d.]+ ms$",
        r"^verify_code\(\) p50, 5,000 / 1,000\s+[\d.]+x\s+<= 1.2x" + verdict,
        r"^POST /auth/code/ p99, 5,000 / 1,000\s+[\d.]+x\s+<= 1.2x" + verdict,
        r"^verify statements with a full scan \(no index\)\s+\d+ of \d+",
        r"^purge: requests deleted\s+5,000 of 5,000$",
        r"^purge: total time\s+[\d.]+ s .*" + verdict,
        r"^purge: longest transaction \(row locks held\)\s+\d+ ms .*" + verdict,
        r"^sign-ins during the purge \(start\+mail\+verify\)\s+\d+ ok, 0 failed.*" + verdict,
        r"^mail: tasks queued by the start service\s+20 in ",
        r"^mail: throughput, first to last of 20\s+[\d.]+ msg/s .*" + verdict,
    ):
        assert re.search(row, result.stdout, re.MULTILINE), (row, result.stdout)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_load_prints_every_case_against_its_floor() -> None:
    command = [sys.executable, "-m", "bench.load", "--reps", "1", "--seconds", "2"]
    # Its own database and Redis databases (8 to 11): a full run may be under way beside it.
    # Two seconds, so that the worker has minted some of the flows' codes in time.
    command += ["--per-run", "300", "--flow-users", "200", "--flow-depth", "20"]
    result = subprocess.run(
        [*command, "--database", "passwordless_bench_load_smoke", "--redis-db", "8"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Each case served requests (a rate above 0), with its floor, ratio and goal.
    figures = r"[1-9]\d* \| [\d.]+ \| [\d.]+ \| [\d.]+"  # req/s, p50, p99, p99/p50
    row = r"^\| {name} \| " + figures + r" \| {floor} \| {ratio} \| {goal} \| "
    for name, floor, goal in (
        ("floor: Redis session read\\+write", "", ""),
        ("floor: login\\(\\)", "", ""),
        ("send \\(HTML form\\)", "Redis session read\\+write", "≥ 35%"),
        ("send \\(JSON\\)", "Redis session read\\+write", "≥ 35%"),
        ("verify code \\(HTML\\)", "login\\(\\)", "≥ 60%"),
        ("verify code \\(JSON\\)", "login\\(\\)", "≥ 60%"),
        ("full flow, flows/s \\(JSON\\)", "login\\(\\)", "≥ 40%"),
        ("confirm link \\(POST\\)", "login\\(\\)", "≥ 85%"),
        ("signed-in home page", "login_required view", "≥ 90%"),
        ("GET /api/auth/me \\(Bearer JWT\\)", "view loading the user", "≥ 90%"),
    ):
        ratio = r"\d+%" if floor else ""
        pattern = row.format(name=name, floor=floor, ratio=ratio, goal=goal)
        assert re.search(pattern, result.stdout, re.MULTILINE), (pattern, result.stdout)
