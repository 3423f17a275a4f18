"""The benchmark scripts run and print their figures (their goals are judged on full runs)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import services

# Each runs a benchmark script in a subprocess, which starts its own servers.
pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent


def own(benchmark: str) -> list[str]:
    """A database named after the suite's own (TEST_DB_NAME) and the suite's Redis server
    (TEST_REDIS_PORT): two runs of the suite side by side never share either."""
    database = f"{os.environ.get('TEST_DB_NAME', 'test_passwordless')}_{benchmark}"
    return ["--database", database, "--redis-port", str(services.REDIS_PORT)]


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.parametrize("pathway", ["html", "api"])
def test_enumeration_timing_prints_the_median_difference(pathway: str) -> None:
    command = [sys.executable, "-m", "bench.enumeration_timing", "--requests", "10"]
    result = subprocess.run(
        [*command, "--warmup", "2", "--pathway", pathway, *own("bench_enumeration")],
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
        [sys.executable, "-m", "bench.session_engines", "-n", "50", *own("bench_sessions")],
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
        [*command, *own("bench_scale")],
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


#: The peers' rows of the load table, and the module each needs (None: Django alone).
PEER_ROWS = {
    "bare Django: login()": None,
    "bare Django: signed-in home page": None,
    "bare Django: bearer JWT view loading the user": None,
    "allauth: request code": "allauth",
    "allauth: request+confirm, per request": "allauth",
    "sesame: one-time link": "sesame",
}
#: Our rows of the load table: the case, its floor and goal, its peer and goal.
OUR_ROWS = [
    ("floor: Redis session read+write", "", "", "", ""),
    ("floor: login()", "", "", "bare Django: login()", "—"),
    ("send (HTML form)", "Redis session read+write", "≥ 35%", "allauth: request code", "≥ 200%"),
    ("send (JSON)", "Redis session read+write", "≥ 35%", "allauth: request code", "≥ 200%"),
    ("verify code (HTML)", "login()", "≥ 60%", "allauth: request+confirm, per request", "≥ 100%"),
    ("verify code (JSON)", "login()", "≥ 60%", "allauth: request+confirm, per request", "≥ 100%"),
    ("full flow, flows/s (JSON)", "login()", "—", "", ""),
    ("confirm link (POST)", "login()", "—", "sesame: one-time link", "≥ 85%"),
    (
        "signed-in home page",
        "login_required view",
        "—",
        "bare Django: signed-in home page",
        "≥ 90%",
    ),
    ("sessions page", "login_required view", "—", "", ""),
    (
        "GET /api/auth/me (Bearer JWT)",
        "view loading the user",
        "—",
        "bare Django: bearer JWT view loading the user",
        "≥ 90%",
    ),
]
#: The rows of the CPU table, each ours against allauth's.
CPU_ROWS = [
    "web CPU per sign-in, JSON (send + verify code)",
    "web CPU per sign-in, HTML (send + verify code)",
    "worker CPU per email",
    "total per sign-in, JSON (web + worker)",
    "total per sign-in, HTML (web + worker)",
]


def installed(module: str | None) -> bool:
    return module is None or importlib.util.find_spec(module) is not None


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_load_prints_every_case_against_its_floor_and_its_peer() -> None:
    command = [sys.executable, "-m", "bench.load", "--reps", "1", "--seconds", "2"]
    # Its own databases and Redis databases (8 to 11): a full run may be under way beside it.
    # Two seconds, so that the worker has minted some of the flows' codes in time.
    command += ["--per-run", "300", "--flow-users", "200", "--flow-depth", "20"]
    command += ["--allauth-mails", "20"]
    result = subprocess.run(
        [*command, *own("bench_load"), "--redis-db", "8"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    def row(name: str, *cells: str) -> str:
        """A row that served requests (a rate above 0), then its floor and its peer, each
        with its ratio and goal (regular expressions)."""
        figures = r"[1-9]\d* \| [\d.]+ \| [\d.]+ \| [\d.]+"  # req/s, p50, p99, p99/p50
        return rf"^\| {re.escape(name)} \| {figures} \| " + "".join(f"{c} \\| " for c in cells)

    for name, module in PEER_ROWS.items():
        if installed(module):
            pattern = row(name, "", "", "", "", "", "")
            assert re.search(pattern, result.stdout, re.MULTILINE), (pattern, result.stdout)
        else:
            assert f"| {name} |" not in result.stdout, result.stdout
    if not all(installed(module) for module in PEER_ROWS.values()):
        assert "Peers skipped, not installed: " in result.stdout, result.stdout
    for name, floor, goal, peer, peer_goal in OUR_ROWS:
        floor_ratio = r"\d+%" if floor else ""
        peer_ratio = r"\d+%" if peer else ""
        peer_cell = re.escape(peer)
        if not installed(PEER_ROWS.get(peer)):  # named, with neither ratio nor goal
            peer_cell, peer_ratio, peer_goal = re.escape(f"{peer} (not installed)"), "", ""
        cells = [re.escape(floor), floor_ratio, goal, peer_cell, peer_ratio, peer_goal]
        pattern = row(name, *cells)
        assert re.search(pattern, result.stdout, re.MULTILINE), (pattern, result.stdout)

    # The CPU table, after the main one: every figure measured (CPU was counted, and
    # the worker's emails reached the sink), beside allauth's or saying why not.
    cpu_table = result.stdout[result.stdout.index("\nCPU per sign-in\n") :]
    assert "| GET /api/auth/me" not in cpu_table, result.stdout
    ms = r"(?!0\.00 )\d+\.\d\d"
    theirs = rf"{ms} \| \d+\.\d\dx" if installed("allauth") else r"not installed \| "
    for figure in CPU_ROWS:
        pattern = rf"^\| {re.escape(figure)} \| {ms} \| {theirs} \|$"
        assert re.search(pattern, cpu_table, re.MULTILINE), (pattern, result.stdout)
