"""The documentation agrees with the code: the generated settings table is current, every
system check id is documented, every relative link resolves, and no drift marker is left."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from tools import gen_settings

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SOURCES = sorted((ROOT / "passwordless").rglob("*.py"))

FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} +(.+?) *$", re.MULTILINE)


def prose(path: Path) -> str:
    """A page without its fenced code blocks, whose brackets are not links."""
    return FENCE.sub("", path.read_text())


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(h) for h in HEADING.findall(prose(path))}


def all_docs() -> str:
    return "\n".join(page.read_text() for page in PAGES)


def test_settings_table_is_generated_from_app_settings() -> None:
    text = gen_settings.SETTINGS_MD.read_text()
    assert gen_settings.update(text) == text, "run: .venv/bin/python -m tools.gen_settings"


def test_every_app_setting_is_in_the_table() -> None:
    names = [name for name, _, _ in gen_settings.rows()]
    assert "PASSWORDLESS_SITE_URL" in names
    text = gen_settings.SETTINGS_MD.read_text()
    for name in names:
        assert f"| `{name}` |" in text, name


def test_every_property_has_a_docstring() -> None:
    undocumented = [name for name, _, doc in gen_settings.rows() if not doc.strip()]
    assert undocumented == []


def test_every_system_check_id_is_documented() -> None:
    found = {
        match
        for source in SOURCES
        for match in re.findall(r"""id=["'](passwordless\.[EW]\d{3})["']""", source.read_text())
    }
    assert {"passwordless.E001", "passwordless.W001"} <= found
    documented = (ROOT / "docs" / "settings.md").read_text()
    missing = sorted(check for check in found if f"`{check}`" not in documented)
    assert missing == [], "add them to the System checks table of docs/settings.md"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in LINK.findall(prose(page)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists() or (anchor and file.suffix == ".md" and anchor not in anchors(file)):
            broken.append(target)
    assert broken == []


def test_the_secrets_functions_cited_are_the_ones_used() -> None:
    code = "\n".join(source.read_text() for source in SOURCES)
    cited = set(re.findall(r"\bsecrets\.(\w+)", all_docs()))
    assert cited, "the docs say how secrets are minted"
    assert sorted(name for name in cited if f"secrets.{name}" not in code) == []


def test_no_plan_markers_are_left() -> None:
    text = all_docs()
    leftovers = re.findall(r"\((?:later|next|milestone \d+)\)", text, re.IGNORECASE)
    assert leftovers == []


def test_readme_is_a_landing_page() -> None:
    text = README.read_text()
    assert len(text.encode()) <= 8 * 1024
    first = text.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split("#")[0].strip() for line in first] == ["make run", "make test"]
    for page in ("settings", "customization", "api", "deployment", "security", "faq"):
        assert f"(docs/{page}.md)" in text, page
    assert "(docs/development.md)" in text and "(bench/README.md)" in text


def test_the_dotted_paths_the_readme_gives_resolve() -> None:
    """The three steps name what a project writes in its settings and URLs; a module that
    moved must move in the README too."""
    cited = set(re.findall(r"\b(passwordless(?:\.\w+)+)", README.read_text()))
    cited = {path for path in cited if not re.fullmatch(r"passwordless\.[EW]\d{3}", path)}
    assert "passwordless.urls" in cited
    unresolved = []
    for dotted in sorted(cited):
        module, _, name = dotted.rpartition(".")
        try:
            importlib.import_module(dotted)
        except ImportError:
            try:
                getattr(importlib.import_module(module), name)
            except (ImportError, AttributeError):
                unresolved.append(dotted)
    assert unresolved == []


def test_every_variable_the_project_reads_is_documented() -> None:
    """The hand-written table of environment variables, against ``config/settings.py``
    (read the way ``tests/test_deploy_files.py`` reads it for ``.env.example``)."""
    settings_text = (ROOT / "config" / "settings.py").read_text()
    read = set(re.findall(r'env\.\w+\(\s*"([A-Z_]+)"', settings_text))
    read |= set(re.findall(r'_redis_url\("([A-Z_]+)"', settings_text))
    assert {"DATABASE_URL", "SECRET_KEY"} <= read
    table = (ROOT / "docs" / "settings.md").read_text().split("## Settings of the", 1)[0]
    assert sorted(name for name in read if f"`{name}`" not in table) == []


def supported_api_section() -> str:
    text = (ROOT / "docs" / "customization.md").read_text()
    return text[text.index("## The supported API") :]


def test_the_supported_services_are_exactly_what_the_package_exports() -> None:
    """The list a project builds on and ``passwordless.services.__all__`` are one list."""
    from passwordless import services

    section = supported_api_section()
    services_part = section[section.index("**Services**") : section.index("Everything else")]
    documented = set(re.findall(r"`([A-Za-z_]+)`", services_part)) - {"__all__"}
    documented.discard("passwordless.services")
    assert documented == set(services.__all__)


def test_every_adapter_hook_and_signal_is_documented() -> None:
    from passwordless import signals
    from passwordless.adapter import DefaultAdapter

    text = (ROOT / "docs" / "customization.md").read_text()
    hooks = {
        name
        for name, value in vars(DefaultAdapter).items()
        if callable(value) and not name.startswith("_")
    }
    assert hooks and all(f"`{hook}(" in text for hook in hooks), hooks
    names = {name for name, value in vars(signals).items() if type(value).__name__ == "Signal"}
    assert names and all(f"`{name}(" in text for name in names), names
