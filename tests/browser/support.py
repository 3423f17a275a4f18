"""The kinds of browser the tests open, the axe-core pass, and the screenshots it can take."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

__all__ = [
    "AXE",
    "DESKTOP",
    "INSTALL_AXE",
    "KINDS",
    "PHONE",
    "SCREENS",
    "SCREENSHOT_KINDS",
    "Audit",
    "Kind",
    "screenshot_name",
    "screenshots_dir",
]

HERE = Path(__file__).resolve().parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
INSTALL_AXE = "npm ci --prefix tests/browser --no-audit --no-fund"

# Chromium's engine under a phone's name, so the sessions page tells the two devices apart.
PHONE_USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36"
)


@dataclass(frozen=True)
class Kind:
    """A browser as a person has one: its screen, scripts on or off, light or dark."""

    name: str
    width: int
    height: int
    mobile: bool = False
    javascript: bool = True
    dark: bool = False

    def open(self, browser: Browser, *, bypass_csp: bool = False) -> BrowserContext:
        return browser.new_context(
            viewport={"width": self.width, "height": self.height},
            is_mobile=self.mobile,
            has_touch=self.mobile,
            user_agent=PHONE_USER_AGENT if self.mobile else None,
            java_script_enabled=self.javascript,
            color_scheme="dark" if self.dark else "light",
            # Only for the accessibility pass, whose axe-core is an inline script.
            bypass_csp=bypass_csp,
        )


PHONE = Kind("phone", 375, 812, mobile=True)
DESKTOP = Kind("desktop", 1280, 800)
KINDS = {
    kind.name: kind
    for kind in (
        PHONE,
        DESKTOP,
        Kind("phone-no-js", 375, 812, mobile=True, javascript=False),
        Kind("desktop-no-js", 1280, 800, javascript=False),
        Kind("phone-dark", 375, 812, mobile=True, dark=True),
    )
}
#: The kinds whose pages land in docs/screenshots/.
SCREENSHOT_KINDS = (PHONE, DESKTOP, KINDS["phone-dark"])

#: Every page of the accessibility pass, in the order it visits them, with what it shows.
SCREENS = {
    "welcome": "Home page, signed out",
    "sign-in": "Sign-in form: the email address",
    "sign-in-invalid": "Sign-in form with an address that is not valid",
    "code": "Check your email: the code to enter, and the number to type on another device",
    "approve": "The link opened on another device: type the number the waiting page shows",
    "approved": "Another device approved: the waiting one is signing in",
    "home": "Home page, signed in (the waiting device landed here by itself)",
    "link-used": "The same link opened again after it was used",
    "code-wrong": "A wrong code: the error, with the attempts left",
    "code-resent": "A new email sent with a new code and link",
    "link-confirm": "The link opened in the browser that asked: one button signs in",
    "sessions": "Your sessions: two sessions, end either",
    "session-ended": "Your sessions after ending the other device",
    "signed-out": "Signed out: back on the sign-in form",
}

BLOCKING = ("serious", "critical")

_AXE_RUN = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.map((n) => n.target.join(" ") + ": " + n.failureSummary),
  }));
}"""


def screenshots_dir() -> Path | None:
    """Where the accessibility pass saves its pages, when ``SCREENSHOTS_DIR`` says so."""
    value = os.environ.get("SCREENSHOTS_DIR")
    return Path(value) if value else None


def screenshot_name(kind: Kind, screen: str) -> str:
    return f"{kind.name}-{list(SCREENS).index(screen) + 1:02d}-{screen}.png"


def _describe(violations: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"  {v['impact']} {v['id']}: {v['help']}\n    " + "\n    ".join(v["nodes"])
        for v in violations
    )


@dataclass
class Audit:
    """Run axe-core on a page: no serious or critical violation; save a screenshot if asked."""

    kind: Kind
    shots: Path | None = None
    seen: list[str] = field(default_factory=list)

    def __call__(self, page: Page, screen: str) -> None:
        assert screen in SCREENS, screen
        page.add_script_tag(path=AXE)
        violations: list[dict[str, Any]] = page.evaluate(_AXE_RUN)
        blocking = [v for v in violations if v["impact"] in BLOCKING]
        assert blocking == [], f"axe on {screen} ({self.kind.name}):\n{_describe(blocking)}"
        self.seen.append(screen)
        if self.shots is not None:
            self.shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=self.shots / screenshot_name(self.kind, screen), full_page=True)
