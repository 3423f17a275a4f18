"""Extract, check and compile the gettext catalogues: the app's and the project's.

Two catalogues, each made by Django's ``makemessages`` run in its own directory: the
app's (``passwordless/locale/``, every page, email, error and admin string of the app,
shipped in its wheel) and the project's (``locale/``, its own templates and settings).

``python -m tools.translations`` brings every ``.po`` up to date with the code (new
strings come in with an empty ``msgstr``, changed ones marked fuzzy), lists what is left
to translate, and compiles the ``.mo`` files (``msgfmt --check-format``, as Django's
``compilemessages``). Translate what it lists in the ``.po`` files, then run it again.
``--check`` changes nothing: it extracts into a temporary copy and exits 1 if a string is
untranslated or fuzzy, or a ``.mo`` differs from its ``.po`` (``tests/test_translations.py``
fails the same way). Needs GNU gettext (``apt-get install gettext``).
"""

from __future__ import annotations

import argparse
import gettext
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "CATALOGUES",
    "LANGUAGES",
    "ROOT",
    "check",
    "compile_catalogues",
    "make_messages",
    "pending",
    "po_files",
    "stale",
]

ROOT = Path(__file__).resolve().parent.parent

#: The languages translated (English is the source language).
LANGUAGES = ("de", "fr", "es")

#: Each catalogue: the directory ``makemessages`` runs in (its strings are the files below
#: it, its catalogue is its ``locale/``) and what it skips there.
CATALOGUES: dict[str, tuple[str, tuple[str, ...]]] = {
    "app": ("passwordless", ()),
    "project": (
        ".",
        (
            "passwordless",
            ".venv",
            "var",
            "build",
            "tests",
            "bench",
            "docs",
            "tools",
            "docker",
            "bin",
            "static",
            "*.egg-info",
        ),
    ),
}

#: What a copy for ``--check`` needs: the sources of both catalogues and their catalogues.
_COPIED = ("manage.py", "passwordless", "config", "accounts", "templates", "locale")


def _tool(name: str) -> str:
    """The absolute path of a GNU gettext program (``apt-get install gettext``)."""
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed: apt-get install gettext")
    return found


def _run(command: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
    # Our own commands, on paths of this repository: nothing comes from outside.
    return subprocess.run(command, check=True, text=True, **options)  # noqa: S603


def _environment(var_dir: str) -> dict[str, str]:
    """The project's settings in development mode, touching nothing of a real set-up."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", DEBUG="True", VAR_DIR=var_dir)
    return env


def make_messages(root: Path = ROOT) -> None:
    """Run ``makemessages`` for every catalogue under ``root``, for ``LANGUAGES``."""
    with tempfile.TemporaryDirectory() as var_dir:
        for where, skipped in CATALOGUES.values():
            cwd = root / where
            (cwd / "locale").mkdir(exist_ok=True)
            command = [sys.executable, str(root / "manage.py"), "makemessages"]
            command += ["--no-obsolete", "--add-location=file", "--verbosity=0"]
            command += [f"--locale={code}" for code in LANGUAGES]
            command += [f"--ignore={pattern}" for pattern in skipped]
            _run(command, cwd=cwd, env=_environment(var_dir))


def po_files(root: Path = ROOT) -> Iterator[Path]:
    """Every catalogue's ``django.po`` under ``root``, for each of ``LANGUAGES``."""
    for where, _skipped in CATALOGUES.values():
        for code in LANGUAGES:
            po = root / where / "locale" / code / "LC_MESSAGES" / "django.po"
            if po.exists():
                yield po


def pending(po: Path) -> list[str]:
    """The messages of ``po`` still to translate: untranslated or fuzzy (first line of each
    msgid, prefixed by which)."""
    found = []
    for which, option in (("untranslated", "--untranslated"), ("fuzzy", "--only-fuzzy")):
        out = _run(
            [_tool("msgattrib"), option, "--no-wrap", "--no-location", str(po)],
            capture_output=True,
        ).stdout
        for line in out.splitlines():
            if line.startswith("msgid ") and line != 'msgid ""':
                found.append(f"{which}: {line[len('msgid ') :]}")
    return found


def _compile(po: Path, mo: Path) -> None:
    _run([_tool("msgfmt"), "--check-format", "-o", str(mo), str(po)])


def compile_catalogues(root: Path = ROOT) -> None:
    """Compile every ``django.po`` under ``root`` into its ``django.mo``."""
    for po in po_files(root):
        _compile(po, po.with_suffix(".mo"))


def _messages(mo: Path) -> dict[object, str]:
    with mo.open("rb") as handle:
        return dict(gettext.GNUTranslations(handle)._catalog)  # type: ignore[attr-defined]


def stale(po: Path) -> bool:
    """Whether ``po``'s ``.mo`` is missing or holds other messages than ``po`` now says."""
    mo = po.with_suffix(".mo")
    if not mo.exists():
        return True
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "django.mo"
        _compile(po, fresh)
        return _messages(fresh) != _messages(mo)


def check(root: Path = ROOT) -> list[str]:
    """What is wrong, in a temporary copy of ``root``'s sources after ``makemessages``:
    messages untranslated or fuzzy, for each ``.po`` (as ``root``-relative paths); and each
    ``.mo`` of ``root`` that is not compiled from its ``.po``."""
    problems = [
        f"{po.relative_to(root)}: compiled .mo is stale (run python -m tools.translations)"
        for po in po_files(root)
        if stale(po)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "project"
        copy.mkdir()
        for name in _COPIED:
            source = root / name
            if source.is_dir():
                ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
                shutil.copytree(source, copy / name, ignore=ignore)
            elif source.exists():
                shutil.copy2(source, copy / name)
        make_messages(copy)
        for po in po_files(copy):
            problems += [f"{po.relative_to(copy)}: {message}" for message in pending(po)]
        for where, _skipped in CATALOGUES.values():
            for code in LANGUAGES:
                relative = Path(where) / "locale" / code / "LC_MESSAGES" / "django.po"
                if not (copy / relative).exists():
                    problems.append(f"{relative}: missing")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        print("\n".join(problems) or "Every catalogue is translated and compiled.")
        return 1 if problems else 0
    make_messages()
    left = [f"{po.relative_to(ROOT)}: {m}" for po in po_files() for m in pending(po)]
    compile_catalogues()
    print("\n".join(left) or "Every message is translated; the catalogues are compiled.")
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
