"""Every user-facing string of the app's templates goes through the translation tags."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TEMPLATES = Path(__file__).resolve().parent.parent / "passwordless" / "templates" / "passwordless"

_STRIP = [
    re.compile(r"\{% comment %\}.*?\{% endcomment %\}", re.S),
    re.compile(r"\{% blocktranslate.*?%\}.*?\{% endblocktranslate %\}", re.S),
    re.compile(r"<(script|style)\b.*?</\1>", re.S),
    re.compile(r"\{%.*?%\}", re.S),
    re.compile(r"\{\{.*?\}\}", re.S),
    re.compile(r"<[^>]*>", re.S),
    re.compile(r"&[a-z#0-9]+;"),
]


@pytest.mark.parametrize(
    "template", sorted(TEMPLATES.rglob("*.*")), ids=lambda p: str(p.relative_to(TEMPLATES))
)
def test_no_untranslated_text(template: Path) -> None:
    text = template.read_text()
    for pattern in _STRIP:
        text = pattern.sub(" ", text)
    leftover = [word for word in re.findall(r"[A-Za-z][A-Za-z']+", text) if word != "UTC"]
    assert leftover == [], f"untranslated text in {template.name}: {' '.join(leftover)}"
