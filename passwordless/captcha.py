"""CAPTCHAs on the email form: the widget's details and the server-side verification.

``PASSWORDLESS_CAPTCHA`` names the provider (``"turnstile"``, Cloudflare Turnstile, or
``"hcaptcha"``). The page shows its widget (``widget``), which puts an answer in the form
(``FIELDS``); the JSON API takes it as ``captcha``. The adapter's ``verify_captcha``
(through ``verify`` here) POSTs it with the secret key to the provider's verify endpoint
(``CAPTCHA_VERIFY_URL``) before anything else happens, for every address alike.

Fails closed: a missing answer, a refusal, an endpoint that is down, slow
(``CAPTCHA_TIMEOUT``) or answering something other than a JSON ``success: true`` all
refuse the form, with a message that says which (``captcha_failed`` the person can
retry; ``captcha_unavailable`` is the site's trouble). Neither the secret key nor the
answer is ever logged.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
import urllib.request
from dataclasses import dataclass

from .conf import app_settings
from .errors import SignInError

__all__ = ["FIELDS", "PROVIDERS", "Widget", "csp_sources", "enabled", "verify", "widget"]

logger = logging.getLogger("passwordless")


@dataclass(frozen=True)
class Widget:
    """What a page needs to show a provider's widget."""

    provider: str
    script: str
    css_class: str
    site_key: str


#: Each provider's widget script, the class of its element, and the origins its script,
#: frames, styles and requests come from (for the page's Content-Security-Policy).
PROVIDERS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "turnstile": (
        "https://challenges.cloudflare.com/turnstile/v0/api.js",
        "cf-turnstile",
        ("https://challenges.cloudflare.com",),
    ),
    "hcaptcha": (
        "https://js.hcaptcha.com/1/api.js",
        "h-captcha",
        ("https://hcaptcha.com", "https://*.hcaptcha.com"),
    ),
}

#: The form field each provider's widget fills in.
FIELDS = {"turnstile": "cf-turnstile-response", "hcaptcha": "h-captcha-response"}

#: Error codes that blame the site's configuration, not the person's answer.
_SITE_ERRORS = frozenset(
    {"missing-input-secret", "invalid-input-secret", "sitekey-secret-mismatch"}
)

#: The longest answer sent on: Turnstile's are at most 2048 characters, hCaptcha's shorter.
_MAX_ANSWER = 4096


def enabled() -> str | None:
    """The provider in use, or ``None``."""
    return app_settings.CAPTCHA


def widget() -> Widget | None:
    """The widget of the provider in use, or ``None`` when there is no CAPTCHA."""
    provider = enabled()
    if provider not in PROVIDERS:
        return None
    script, css_class, _origins = PROVIDERS[provider]
    return Widget(provider, script, css_class, app_settings.CAPTCHA_SITE_KEY)


def csp_sources() -> dict[str, list[str]]:
    """The Content-Security-Policy sources the widget needs, by directive: nothing
    without a CAPTCHA. The email form's page adds them to its own header only
    (django-csp's ``_csp_update``); a project building its CSP otherwise adds these."""
    provider = enabled()
    if provider not in PROVIDERS:
        return {}
    origins = list(PROVIDERS[provider][2])
    sources = {"script-src": origins, "frame-src": origins}
    if provider == "hcaptcha":
        sources.update({"style-src": origins, "connect-src": origins})
    return sources


def verify(answer: str, remote_ip: str | None) -> None:
    """Raise ``SignInError`` unless the provider's verify endpoint accepts ``answer``.
    Does nothing when no CAPTCHA is enabled."""
    provider = enabled()
    if provider is None:
        return
    if provider not in PROVIDERS or not app_settings.CAPTCHA_SECRET_KEY:
        logger.error("CAPTCHA %r is not configured: every form is refused", provider)
        raise SignInError("captcha_unavailable")
    if not answer or len(answer) > _MAX_ANSWER:
        raise SignInError("captcha_failed")
    fields = {"secret": app_settings.CAPTCHA_SECRET_KEY, "response": answer}
    if remote_ip:
        fields["remoteip"] = remote_ip
    if provider == "hcaptcha" and app_settings.CAPTCHA_SITE_KEY:
        fields["sitekey"] = app_settings.CAPTCHA_SITE_KEY
    if not _accepted(app_settings.CAPTCHA_VERIFY_URL, fields):
        raise SignInError("captcha_failed")


def _accepted(url: str, fields: dict[str, str]) -> bool:
    """The endpoint's verdict; raises ``captcha_unavailable`` when it gives none."""
    if not url.startswith(("https://", "http://")):
        raise SignInError("captcha_unavailable")
    body = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked above)
        url,
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=app_settings.CAPTCHA_TIMEOUT) as answer:  # noqa: S310
            verdict = json.loads(answer.read(65536))
    except (OSError, ValueError) as exc:
        # The class name only: the URL and the secret key stay out of the logs.
        logger.warning("CAPTCHA verify endpoint unavailable: %s", type(exc).__name__)
        raise SignInError("captcha_unavailable") from None
    if not isinstance(verdict, dict):
        raise SignInError("captcha_unavailable")
    if verdict.get("success") is True:
        return True
    codes = verdict.get("error-codes")
    codes = [str(c) for c in codes] if isinstance(codes, list) else []
    if any(c in _SITE_ERRORS for c in codes):
        # The site's own keys are refused: nobody could pass, so say it is our trouble.
        logger.error("CAPTCHA verify endpoint refused the site's keys: %s", codes)
        raise SignInError("captcha_unavailable")
    logger.info("CAPTCHA refused: %s", codes)
    return False
