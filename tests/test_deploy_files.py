"""The deployment files: the compose files parse, run the same bin/ scripts as CI, and the
CI override puts them on the host network; the .dockerignore sends the app and nothing else;
the image's health check asks where bin/web binds. (The image itself, built and run:
tests/test_container.py, from docker/ci.)"""

from __future__ import annotations

import http.server
import importlib.machinery
import importlib.util
import json
import os
import re
import shutil
import socketserver
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

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


def _compose_config(tmp_path: Path, *names: str, **env: str) -> dict[str, Any]:
    """``docker-compose config`` of ``names`` (in a copy, with an empty .env), parsed."""
    if shutil.which("docker-compose") is None:
        if services.REQUIRED:
            raise RuntimeError("docker-compose is not installed and REQUIRE_SERVICES=1")
        pytest.skip("docker-compose is not installed")
    for name in names:
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / ".env").write_text("")
    files = [arg for name in names for arg in ("-f", name)]
    result = subprocess.run(
        ["docker-compose", *files, "config"],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def test_docker_compose_up_publishes_the_port_and_orders_the_start(tmp_path: Path) -> None:
    """`docker-compose up` reads docker-compose.override.yml too: the stack as it was."""
    services_ = _compose_config(tmp_path, "docker-compose.yml", "docker-compose.override.yml")[
        "services"
    ]
    assert services_["web"]["ports"] == [{"published": 8000, "target": 8000}]
    assert set(services_["web"]["depends_on"]) == {"postgres", "redis"}
    assert set(services_["worker"]["depends_on"]) == {"postgres", "redis"}
    assert set(services_["beat"]["depends_on"]) == {"redis"}
    assert services_["postgres"]["image"] == "postgres:15"
    assert services_["redis"]["image"] == "redis:7"
    for name, service in services_.items():
        assert service["restart"] == "unless-stopped", name
    assert services_["worker"]["healthcheck"]["test"] == ["CMD", "sh", "bin/worker-alive"]
    assert services_["beat"]["healthcheck"] == {"test": ["NONE"]}


def test_the_ci_override_runs_the_stack_on_the_host_network(tmp_path: Path) -> None:
    """docker-compose.ci.yml: host networking, the machine's services, the image built once."""
    config = _compose_config(
        tmp_path,
        "docker-compose.yml",
        "docker-compose.ci.yml",
        CI_JWT_PRIVATE_KEY="a-key",
        CI_WEB_PORT="8123",
        PASSWORDLESS_IMAGE="passwordless:test",
    )
    services_ = config["services"]
    for name in ("web", "worker", "beat"):
        service = services_[name]
        assert service["network_mode"] == "host", name
        assert service["image"] == "passwordless:test", name
        assert service["build"]["network"] == "host", name  # pip in the build reaches PyPI
        assert "ports" not in service and "depends_on" not in service, name
        assert service["restart"] == "unless-stopped", name
        environment = service["environment"]
        assert environment["BIND"] == "127.0.0.1:8123"
        assert environment["DATABASE_URL"].startswith("postgres://postgres@127.0.0.1:5432/")
        assert environment["JWT_PRIVATE_KEY"] == "a-key"
    assert services_["web"]["command"] == ["sh", "-c", "bin/migrate && exec bin/web"]
    assert services_["worker"]["command"] == ["sh", "bin/worker"]
    assert services_["beat"]["command"] == ["sh", "bin/beat"]
    assert services_["worker"]["healthcheck"]["test"] == ["CMD", "sh", "bin/worker-alive"]
    # The bundled services are in a profile that nothing enables, RabbitMQ in its own.
    for name in ("redis", "postgres", "mail"):
        assert services_[name]["profiles"] == ["bundled"], name
    assert services_["rabbitmq"]["profiles"] == ["rabbitmq"]
    assert config["networks"]["default"] == {"external": True, "name": "host"}


def test_the_ci_override_refuses_to_start_without_a_signing_key(tmp_path: Path) -> None:
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed")
    for name in ("docker-compose.yml", "docker-compose.ci.yml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / ".env").write_text("")
    result = subprocess.run(
        ["docker-compose", "-f", "docker-compose.yml", "-f", "docker-compose.ci.yml", "config"],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "CI_JWT_PRIVATE_KEY" in result.stderr


# The .dockerignore: Docker's rules, enough of them for this file. Each line is a pattern
# (filepath.Match: `*` stays within one path segment, `**` spans any); a path is left out
# when the last pattern matching it or a directory above it is not a `!` exception.
def _dockerignore() -> list[tuple[bool, str]]:
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keep = line.startswith("!")
            rules.append((keep, line.removeprefix("!").strip("/")))
    return rules


def _pattern_matches(pattern: str, path: str) -> bool:
    regex = ""
    for part in re.split(r"(\*\*/|\*\*|\*|\?|\[[^\]]*\])", pattern):
        if part.startswith("[") and part.endswith("]"):
            regex += part  # a character class, as in filepath.Match
        else:
            wildcards = {"**/": "(.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
            regex += wildcards.get(part, re.escape(part))
    return re.fullmatch(regex, path) is not None


def _sent_to_docker(path: str) -> bool:
    """Whether ``docker build`` sends the file at ``path`` (relative to the checkout)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    sent = True
    for keep, pattern in _dockerignore():
        if any(_pattern_matches(pattern, prefix) for prefix in prefixes):
            sent = keep
    return sent


#: What the image needs at build (pip installs ".[project]") and at run time, and no more.
BUILD_CONTEXT = {
    "pyproject.toml",
    "README.md",
    "MANIFEST.in",
    "constraints.txt",
    "manage.py",
    "config",
    "accounts",
    "passwordless",
    "templates",
    "static",
    "bin",
}


def test_dockerignore_sends_the_app_and_leaves_out_the_rest() -> None:
    for path in (
        "tests/test_views.py",
        "tests/browser/node_modules/axe-core/axe.min.js",
        "bench/load.py",
        ".venv/bin/python",
        ".git/HEAD",
        "docs/screenshots/login-phone.png",
        "docs/deployment.md",
        ".env",
        "var/jwt-development-key.pem",
        "var/db.sqlite3",
        "passwordless/__pycache__/conf.cpython-311.pyc",
        "config/__pycache__/settings.cpython-311.pyc",
        "docker/ci",
        "Dockerfile",
    ):
        assert not _sent_to_docker(path), path
    for path in (
        "manage.py",
        "pyproject.toml",
        "constraints.txt",
        "templates/base.html",
        "static/css/site.css",
        "config/settings.py",
        "accounts/models.py",
        "passwordless/templates/passwordless/login.html",
        "passwordless/static/passwordless/wait.js",
        "bin/web",
        "bin/healthcheck",
    ):
        assert _sent_to_docker(path), path


def test_dockerignore_sends_exactly_the_tracked_files_the_image_needs() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    sent = {path.split("/")[0] for path in tracked if _sent_to_docker(path)}
    assert sent == BUILD_CONTEXT
    for path in tracked:
        if path.split("/")[0] in BUILD_CONTEXT and "__pycache__" not in path:
            assert _sent_to_docker(path), path


def test_the_image_health_check_asks_where_bin_web_binds() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    healthcheck = re.search(r"^HEALTHCHECK .*?CMD (.+)$", dockerfile, re.M | re.S)
    assert healthcheck and json.loads(healthcheck.group(1).splitlines()[0]) == [
        "python",
        "bin/healthcheck",
    ]
    assert "8000" not in healthcheck.group(0)  # the port comes from BIND
    assert '"${BIND:-0.0.0.0:8000}"' in (ROOT / "bin" / "web").read_text()
    assert _healthcheck_module().DEFAULT_BIND == "0.0.0.0:8000"  # bin/web's default


def _healthcheck_module() -> Any:
    loader = importlib.machinery.SourceFileLoader("healthcheck", str(ROOT / "bin" / "healthcheck"))
    spec = importlib.util.spec_from_loader("healthcheck", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("bind", "expected"),
    [
        ("0.0.0.0:8000", ("tcp", "127.0.0.1", 8000)),
        ("127.0.0.1:9001", ("tcp", "127.0.0.1", 9001)),
        ("[::]:8080", ("tcp", "::1", 8080)),
        ("[::1]:8080", ("tcp", "::1", 8080)),
        ("web.internal", ("tcp", "web.internal", 8000)),
        (":8000", ("tcp", "127.0.0.1", 8000)),
        ("unix:/run/passwordless/web.sock", ("unix", "/run/passwordless/web.sock", 0)),
    ],
)
def test_the_health_check_reads_gunicorn_bind_addresses(
    bind: str, expected: tuple[str, str, int]
) -> None:
    assert _healthcheck_module().address(bind) == expected


def test_the_health_check_sends_a_host_that_allowed_hosts_admits() -> None:
    host_header = _healthcheck_module().host_header
    assert host_header("login.example.com,other.example.com", "127.0.0.1") == "login.example.com"
    assert host_header(".example.com", "127.0.0.1") == "example.com"
    assert host_header("*", "127.0.0.1") == "127.0.0.1"
    assert host_header("", "127.0.0.1") == "127.0.0.1"


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        self.seen.append({"path": self.path, **dict(self.headers)})
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _run_healthcheck(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "bin" / "healthcheck")],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_health_check_asks_the_port_bind_names() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        done = _run_healthcheck(BIND=f"0.0.0.0:{port}", ALLOWED_HOSTS="login.example.com")
        assert done.returncode == 0, done.stderr
        assert f"/healthz at 0.0.0.0:{port} answered 200" in done.stdout
        assert _Recorder.seen[-1]["Host"] == "login.example.com"
        assert _Recorder.seen[-1]["X-Forwarded-Proto"] == "https"
    finally:
        server.shutdown()
        server.server_close()
    done = _run_healthcheck(BIND=f"127.0.0.1:{port}")  # nothing listens there now
    assert done.returncode == 1
    assert f"no answer at 127.0.0.1:{port}" in done.stderr


def test_the_health_check_asks_a_unix_socket(tmp_path: Path) -> None:
    class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

    class Handler(_Recorder):
        def address_string(self) -> str:
            return "unix"

    path = tmp_path / "web.sock"
    server = UnixServer(str(path), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        done = _run_healthcheck(BIND=f"unix:{path}")
        assert done.returncode == 0, done.stderr
    finally:
        server.shutdown()
        server.server_close()


def test_a_starting_worker_removes_the_heartbeat_of_the_one_it_replaces(tmp_path: Path) -> None:
    """A restarted container's worker is PID 1, as its predecessor was: the old heartbeat
    file would name a running process and pass bin/worker-alive before the new worker is
    up. bin/worker removes it before it starts Celery."""
    heartbeat = tmp_path / "worker.alive"
    heartbeat.write_text("1")
    env = {
        "PATH": os.environ["PATH"],
        "PYTHON": sys.executable,
        "WORKER_ALIVE_FILE": str(heartbeat),
    }
    alive = subprocess.run(
        ["sh", str(ROOT / "bin" / "worker-alive")], env=env, capture_output=True, check=False
    )
    assert alive.returncode == 0  # what the stale file claimed
    started = subprocess.run(
        ["sh", str(ROOT / "bin" / "worker"), "--help"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "True"},
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert started.returncode == 0, started.stderr
    assert not heartbeat.exists()
    alive = subprocess.run(
        ["sh", str(ROOT / "bin" / "worker-alive")], env=env, capture_output=True, check=False
    )
    assert alive.returncode == 1 and b"no heartbeat file" in alive.stderr
