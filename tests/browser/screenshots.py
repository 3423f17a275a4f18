"""Regenerate docs/screenshots/: ``.venv/bin/python -m tests.browser.screenshots``.

The accessibility pass of tests/test_browser.py visits every page on a phone and a desktop;
with ``SCREENSHOTS_DIR`` set it saves each one there. This runs it (on the test settings:
PostgreSQL and Redis when they answer, SQLite and local memory otherwise), then writes the
index, docs/screenshots/README.md. It needs Chromium at /usr/bin/chromium and axe-core
(``npm ci --prefix tests/browser --no-audit --no-fund``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.browser.support import AXE, INSTALL_AXE, SCREENS, SCREENSHOT_KINDS, screenshot_name

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "screenshots"
#: Browser tests of single features that save their own pages' screenshots when
#: ``SCREENSHOTS_DIR`` is set (passkeys, step-up, the address change, the emails).
FEATURE_TESTS = [
    "tests/test_browser_passkeys.py",
    "tests/test_browser_reauthentication.py",
    "tests/test_browser_email_change.py",
]


def index() -> str:
    lines = [
        "# Screenshots",
        "",
        "Every page of the sign-in flow in headless Chromium, as the accessibility pass of",
        "`tests/test_browser.py` visits them (axe-core finds no serious or critical issue on",
        "any). Regenerate them all with `.venv/bin/python -m tests.browser.screenshots`.",
        "",
        "| page | "
        + " | ".join(f"{k.name} ({k.width}x{k.height})" for k in SCREENSHOT_KINDS)
        + " |",
        "|---|" + "---|" * len(SCREENSHOT_KINDS),
    ]
    for screen, description in SCREENS.items():
        files = " | ".join(
            f"[{name}]({name})" for name in (screenshot_name(k, screen) for k in SCREENSHOT_KINDS)
        )
        lines.append(f"| {description} | {files} |")
    listed = {screenshot_name(k, s) for k in SCREENSHOT_KINDS for s in SCREENS}
    others = sorted(p.name for p in OUT.glob("*.png") if p.name not in listed)
    if others:
        lines += [
            "",
            "Saved by the feature tests (" + ", ".join(f"`{t}`" for t in FEATURE_TESTS) + "):",
            "",
            *(f"- [{name}]({name})" for name in others),
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    if not AXE.is_file():
        print(f"axe-core is missing: run `{INSTALL_AXE}` first.", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.png"):
        old.unlink()
    tests = [
        f"tests/test_browser.py::test_every_page_passes_axe[{k.name}]" for k in SCREENSHOT_KINDS
    ]
    tests += [t for t in FEATURE_TESTS if (ROOT / t).is_file()]
    status = subprocess.call(
        [sys.executable, "-m", "pytest", *tests, "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env={**os.environ, "SCREENSHOTS_DIR": str(OUT)},
    )
    if status != 0:
        return status
    expected = {screenshot_name(k, s) for k in SCREENSHOT_KINDS for s in SCREENS}
    missing = sorted(expected - {p.name for p in OUT.glob("*.png")})
    if missing:
        print(f"screenshots not taken: {', '.join(missing)}", file=sys.stderr)
        return 1
    (OUT / "README.md").write_text(index())
    size = sum(p.stat().st_size for p in OUT.glob("*.png"))
    print(f"{len(expected)} screenshots, {size // 1024} KiB, in {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
