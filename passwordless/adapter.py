"""Policy a project may change by subclassing ``DefaultAdapter``.

Name the subclass in ``PASSWORDLESS_ADAPTER``. The service layer asks the
adapter *what* the site allows (who may sign in, how users are created, how
mail is sent, where people land); the rules that keep sign-in safe (expiry,
attempts, single use) stay in the services and cannot be adapted away.
"""

from __future__ import annotations

import functools
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db.models.functions import Lower
from django.http import HttpRequest
from django.shortcuts import resolve_url
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.module_loading import import_string

from . import captcha, crypto, signup
from .addresses import mask_email, normalize_email
from .client import client_ip
from .conf import app_settings

if TYPE_CHECKING:
    from .models import Invitation, LoginRequest

__all__ = ["DefaultAdapter", "get_adapter"]


class DefaultAdapter:
    #: True only in an adapter whose secrets can be guessed (a load benchmark's):
    #: the ``passwordless.E013`` system check refuses such an adapter.
    predictable_secrets = False

    # Who may sign in.

    def get_user(self, email: str) -> AbstractBaseUser | None:
        """The account whose stored address has exactly this canonical form, or ``None``.

        The database's case-insensitive match is only a pre-filter: Unicode
        case folding there can equate different mailboxes (a dotless i in
        place of an i, Django's CVE-2019-19844), so the final test is ours.
        """
        user_model = get_user_model()
        field = user_model.get_email_field_name()
        # LOWER(), not ``iexact``'s UPPER(): an index on LOWER(email) serves it (the
        # project's case-insensitive unique constraint is one), so a sign-in does not scan
        # every account. auth.User does not make addresses unique: the oldest one wins.
        candidates = (
            user_model._default_manager.alias(passwordless_email=Lower(field))
            .filter(passwordless_email=email.lower())
            .order_by("pk")[:5]
        )
        for user in candidates:
            try:
                if normalize_email(getattr(user, field) or "") == email:
                    return user
            except ValidationError:
                continue
        return None

    def can_sign_in(self, user: AbstractBaseUser) -> bool:
        """Inactive accounts get no email and no session."""
        return bool(getattr(user, "is_active", True))

    def is_signup_open(self, email: str) -> bool:
        """Whether ``email`` (canonical, with no account) may create one by signing in,
        without an invitation: ``SIGNUP_POLICY`` ``"open"`` and the domain rules
        (``passwordless.signup``). Asked by the worker and at completion, never on the
        request path; override it for a rule of your own (keep it to the address)."""
        return signup.is_open_to(email)

    def may_sign_up(self, login_request: LoginRequest) -> bool:
        """Whether the sign-in request of an address with no account may create it:
        ``is_signup_open``, or the request was started from the link of an invitation of
        that very address, still usable, and the policy is not ``"closed"``."""
        invitation = login_request.invitation if login_request.invitation_id else None
        if (
            invitation is not None
            and invitation.email == login_request.email
            and invitation.is_usable()
            and signup.accepts_invitations()
        ):
            return True
        return self.is_signup_open(login_request.email)

    def create_user(self, email: str) -> AbstractBaseUser:
        """Create the account of a first verified sign-in, with an unusable password."""
        user_model = get_user_model()
        manager: Any = user_model._default_manager
        fields: dict[str, Any] = {user_model.get_email_field_name(): email}
        if user_model.get_email_field_name() != user_model.USERNAME_FIELD:
            # A model with a username (Django's auth.User): the address if it fits, or
            # else a random one; people sign in by email and never see it.
            field = user_model._meta.get_field(user_model.USERNAME_FIELD)
            limit = getattr(field, "max_length", None) or 150
            fields[user_model.USERNAME_FIELD] = (
                email if len(email) <= limit else f"user-{secrets.token_hex(8)}"
            )
        user: AbstractBaseUser = manager.create_user(password=None, **fields)
        return user

    # Mail: the secrets of the email, minted in the worker, and each message. Queueing it
    # (Celery or in the request, after commit) is ``services.mail``'s job, not policy.

    def mint_code(self, login_request: LoginRequest) -> str:
        """A fresh random code (``CODE_LENGTH`` symbols of ``CODE_ALPHABET``)."""
        return crypto.mint_code()

    def mint_token(self, login_request: LoginRequest) -> str:
        """A fresh random link token (256 bits)."""
        return crypto.mint_token()

    def send_login_email(self, login_request: LoginRequest, *, code: str, link: str) -> None:
        """Render and send the one email holding both the code and the link.

        The templates follow the request's purpose: ``login`` for a sign-in,
        ``reauthenticate`` for a step-up (the code only), ``change_email`` for a new
        address, which alone is sent to the request's address rather than the account's.
        """
        user = login_request.user
        purpose = login_request.purpose
        if user is None or purpose == "change_email":
            to = login_request.email
        else:
            to = getattr(user, user.get_email_field_name())
        context = {
            "code": code,
            "link": link,
            "email": to,
            "masked_email": mask_email(to),
            "minutes": int(app_settings.REQUEST_LIFETIME.total_seconds() // 60),
            "site_url": app_settings.SITE_URL,
        }
        self.send_templated_email(_LOGIN_TEMPLATES[purpose], to, context)

    def send_security_notice(
        self, kind: str, user: AbstractBaseUser, context: dict[str, Any], *, to: str
    ) -> None:
        """Render and send one security notice (``services.notices``): the templates
        ``passwordless/email/<kind>_*``, to ``to`` (the account's address; for
        ``email_changed``, the old one). ``kind`` is ``new_sign_in``, ``passkey_added``,
        ``passkey_removed`` or ``email_changed``; ``context`` is what
        ``services.notices.notice_context`` builds. Override it to send some kinds another
        way, or none."""
        self.send_templated_email(kind, to, context)

    def send_templated_email(self, name: str, to: str, context: dict[str, Any]) -> None:
        """One email from ``passwordless/email/<name>_subject.txt``, ``_body.txt`` and
        ``_body.html`` (``render_email``), sent: a project overrides the templates to
        change the words."""
        self.render_email(name, to, context).send()

    def render_email(self, name: str, to: str, context: dict[str, Any]) -> EmailMultiAlternatives:
        """The message ``send_templated_email`` sends, rendered in the language active
        around the call: every email of the app is rendered here.

        The templates get ``context`` over ``email_context``'s values. The subject is one
        line; a text part with a ``code`` ends with ``origin_bound_code_line``, which
        only works as its very last line; the headers are ``email_headers``'.
        """
        context = {**self.email_context(name, context), **context}
        prefix = f"passwordless/email/{name}"
        text = render_to_string(f"{prefix}_body.txt", context).rstrip()
        line = self.origin_bound_code_line(context.get("code"))
        message = EmailMultiAlternatives(
            subject=" ".join(render_to_string(f"{prefix}_subject.txt", context).split()),
            body=f"{text}\n\n{line}" if line else f"{text}\n",
            from_email=app_settings.FROM_EMAIL,
            to=[to],
            headers=self.email_headers(name),
        )
        message.attach_alternative(render_to_string(f"{prefix}_body.html", context), "text/html")
        return message

    def email_context(self, name: str, context: dict[str, Any]) -> dict[str, Any]:
        """What every email template gets besides its own context: ``site_name``
        (``SITE_NAME``), ``site_url``, and ``code_in_subject``: whether the subject shows
        the mail's ``code`` (``CODE_IN_SUBJECT``)."""
        return {
            "site_name": app_settings.SITE_NAME,
            "site_url": app_settings.SITE_URL,
            "code_in_subject": app_settings.CODE_IN_SUBJECT and bool(context.get("code")),
        }

    def origin_bound_code_line(self, code: str | None) -> str:
        """The last line of a text part holding ``code``: ``@login.example.com #123456``,
        the origin-bound format (WICG, "Origin-bound one-time codes") by which Safari and
        Chrome offer the code on that site, and on no other.

        Empty without a code, or when ``SITE_URL`` is not an https origin on the default
        port: the format has no scheme or port, so the line would name another origin.
        """
        parts = urlsplit(app_settings.SITE_URL or "")
        try:
            default_port = parts.port in (None, 443)
        except ValueError:
            default_port = False
        host = _ascii_host(parts.hostname) if parts.scheme == "https" and default_port else None
        if not code or not host or any(ch.isspace() or ch in "#@" for ch in code):
            return ""
        return f"@{host} #{code}"

    def email_headers(self, name: str) -> dict[str, str]:
        """The headers of every email: ``Auto-Submitted: auto-generated`` (RFC 3834: no
        vacation responder or ticket system answers it), ``X-Auto-Response-Suppress: All``
        (nor Exchange's out-of-office replies), and a ``Message-ID`` on
        ``MESSAGE_ID_DOMAIN``."""
        headers = {"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"}
        domain = _ascii_host(app_settings.MESSAGE_ID_DOMAIN)
        if domain:
            # Random and nothing else: Django's make_msgid would name the worker machine,
            # and the standard library's tells the time and the worker's process id.
            headers["Message-ID"] = f"<{secrets.token_hex(16)}@{domain}>"
        return headers

    # issue 18, sign-up and bots: the invitation email and the CAPTCHA.

    def send_invitation_email(self, invitation: Invitation, *, link: str) -> None:
        """Send an invitation (``services.invitations``), in the worker: the templates
        ``passwordless/email/invitation_*``, to the invited address. They get ``link``,
        ``email``, ``days`` (how long it works), ``expires_at`` and ``inviter`` (the
        inviting staff member's full name, or ``""``)."""
        inviter = invitation.invited_by
        get_full_name = getattr(inviter, "get_full_name", None)
        context = {
            "link": link,
            "email": invitation.email,
            "days": max(1, round(app_settings.INVITATION_LIFETIME.total_seconds() / 86400)),
            "expires_at": invitation.expires_at,
            "inviter": get_full_name() if callable(get_full_name) else "",
        }
        self.send_templated_email("invitation", invitation.email, context)

    def verify_captcha(self, request: HttpRequest | None, answer: str) -> None:
        """Raise ``SignInError`` (``captcha_failed``, ``captcha_unavailable``) unless the
        CAPTCHA's answer passes; asked before a sign-in starts, only with ``CAPTCHA`` on.
        The default asks the provider's verify endpoint (``passwordless.captcha``); a
        project with another CAPTCHA overrides this (and the widget in ``login.html``)."""
        captcha.verify(answer, client_ip(request))

    # Step-up (re-authentication).

    #: The actions the app asks ``needs_reauthentication`` about.
    reauthentication_actions = (
        "end_session",
        "end_other_sessions",
        "change_email",
        "add_passkey",
        "remove_passkey",
        "admin_change",
    )

    def needs_reauthentication(self, request: HttpRequest | None, action: str) -> bool:
        """Whether ``action`` needs a fresh proof (a passkey, or a newly emailed code)
        when the session's last one is older than ``REAUTHENTICATION_TIMEOUT``.

        Asked with one of ``reauthentication_actions``, or with the name a project gave
        ``@reauthentication_required`` on its own views. True for every action: return
        False for one the site does not consider sensitive."""
        return True

    # URLs.

    def build_invitation_url(self, token: str) -> str:
        """An invitation's link, from ``SITE_URL`` like the sign-in link."""
        path = reverse("passwordless:invitation", kwargs={"token": token})
        return f"{app_settings.SITE_URL}{path}"

    def build_link_url(self, token: str) -> str:
        """The emailed link, always from ``SITE_URL``, never from the request's Host."""
        path = reverse("passwordless:link", kwargs={"token": token})
        return f"{app_settings.SITE_URL}{path}"

    def is_safe_next_url(self, url: str, request: HttpRequest | None) -> bool:
        """Only same-site relative paths: ``/account/``, never ``//evil.example``.

        Browsers drop tabs and newlines inside URLs and read ``\\`` as ``/``,
        so any of those, or any other control character, refuses the URL.
        """
        if not url.startswith("/") or url.startswith(("//", "/\\")):
            return False
        if any(ch == "\\" or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
            return False
        return url_has_allowed_host_and_scheme(url, allowed_hosts=set(), require_https=False)

    def get_login_redirect_url(self, login_request: LoginRequest | None) -> str:
        if login_request is not None and login_request.next_url:
            return login_request.next_url
        return resolve_url(app_settings.LOGIN_REDIRECT_URL)

    # Languages (issue 18; docs/customization.md, "Languages").

    def get_user_language(self, user: AbstractBaseUser) -> str | None:
        """The language this account chose on the site, a code of ``settings.LANGUAGES``,
        or ``None`` when it chose none (the default: the app stores no preference).

        A security notice is written in it (it is for the account's owner, who may not be
        the one who acted), else in the language of the request that caused it. A sign-in
        email keeps the language its request was made in, so that it agrees with the page
        that asked; this is its fallback only when that is unknown. Called in the worker."""
        return None


#: The email templates of each purpose of a request (``send_login_email``).
_LOGIN_TEMPLATES = {
    "sign_in": "login",
    "reauthenticate": "reauthenticate",
    "change_email": "change_email",
}


def _ascii_host(host: str | None) -> str | None:
    """A host name as mail headers and the origin-bound line spell it (IDNA, lower case);
    ``None`` for none, an IP literal or one that cannot be spelt so."""
    if not host or ":" in host or "[" in host:
        return None
    try:
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None


@functools.cache
def _adapter_class(path: str) -> type[DefaultAdapter]:
    cls: type[DefaultAdapter] = import_string(path)
    return cls


def get_adapter() -> DefaultAdapter:
    """An instance of the adapter named by ``PASSWORDLESS_ADAPTER``."""
    return _adapter_class(app_settings.ADAPTER)()
