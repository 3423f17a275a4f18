"""The wheel holds the app alone, and installs and runs in a fresh virtualenv."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

# Builds and installs the package in subprocesses: seconds each.
pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    (built,) = out.glob("django_passwordless_email-*.whl")
    return built


def test_the_wheel_holds_the_app_and_nothing_else(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "passwordless/py.typed",
        "passwordless/migrations/0001_initial.py",
        "passwordless/templates/passwordless/layout.html",
        "passwordless/templates/passwordless/email/login_body.html",
        "passwordless/templates/admin/passwordless/dashboard.html",
        "passwordless/static/passwordless/wait.js",
    ):
        assert needed in names, needed
    tops = {name.split("/")[0] for name in names}
    assert not tops & {"config", "accounts", "tests", "bench", "templates", "static"}


def test_the_wheel_runs_in_a_fresh_virtualenv(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True
    ).stdout.lower()
    assert "celery" not in listed and "django-redis" not in listed  # optional extras
    run = subprocess.run(
        [str(python), str(ROOT / "tests" / "packaging" / "run_minimal_project.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    # Without Celery: the default queue is refused by a check, and with "sync" every mail
    # (the sign-in, the "new sign-in" and "email changed" notices) arrives, Celery unimported.
    for step in (
        "E015 without Celery; none with MAIL_QUEUE='sync'",
        "signed in as alice@example.org",
        "new sign-in notice sent",
        "email-changed notice sent",
        "Celery never imported",
    ):
        assert step in run.stdout, run.stdout


def test_the_sdist_holds_the_app_and_nothing_else(tmp_path: Path) -> None:
    import tarfile

    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--outdir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (sdist,) = tmp_path.glob("django_passwordless_email-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert "passwordless/migrations/0001_initial.py" in names
    assert "passwordless/templates/passwordless/login.html" in names
    assert not {n.split("/")[0] for n in names} & {"config", "accounts", "tests", "bench"}
