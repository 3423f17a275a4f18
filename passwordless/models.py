"""Sign-in requests and the keyed hashes of the secrets emailed for them.

A ``LoginRequest`` is also the mail outbox: its ``delivery`` field is the
state of the one email it owes, advanced by the worker.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from django.conf import settings
from django.db import models

from . import clock

__all__ = [
    "AuthEvent",
    "EmailChange",
    "FailureBudget",
    "Invitation",
    "LoginRequest",
    "LoginSecret",
    "Passkey",
    "PasskeyChallenge",
    "RefreshToken",
    "TokenFamily",
    "UserSession",
]


def _now() -> datetime:
    # Looked up at each call, so tests that move passwordless.clock move defaults too.
    return clock.now()


def new_public_id() -> str:
    """An unguessable identifier (128 random bits) for URLs, sessions and APIs."""
    return secrets.token_urlsafe(16)


def is_public_id(value: object) -> bool:
    """Whether ``value`` could be a public id: checked before it reaches a query, so
    that odd input (a NUL byte, a megabyte) is simply "not found"."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= 32
        and all(c.isascii() and (c.isalnum() or c in "-_") for c in value)
    )


def new_match_number() -> int:
    """The number the waiting device shows and the approving device must type: 00 to 99.

    Typed, never offered as choices: a person, or a scanner that presses buttons, who
    does not see the waiting device wins one time in a hundred, and an address gets
    only ``APPROVAL_FAILURE_LIMIT`` wrong answers (``services.budget``).
    """
    return secrets.randbelow(100)


def new_match_choices() -> str:
    """The default of a field that migration 0001 created and 0003 removed; migrations
    name it, so it stays importable."""
    return ""


class LoginRequestQuerySet(models.QuerySet["LoginRequest"]):
    def by_public_id(self, public_id: object) -> LoginRequest | None:
        """The request with this public id, in one read; ``None`` for anything that could
        not be one (``is_public_id``), which then never reaches a query."""
        return self.filter(public_id=public_id).first() if is_public_id(public_id) else None

    def pending(self) -> LoginRequestQuerySet:
        """Requests that could still be completed: not used, locked or ended, not expired."""
        return self.filter(status=LoginRequest.Status.PENDING, expires_at__gt=clock.now())


class LoginRequest(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved on another device"
        SIGNED_IN = "signed_in", "Signed in"
        CONFIRMED = "confirmed", "Confirmed (a step-up or a new address)"
        LOCKED = "locked", "Locked"
        ENDED = "ended", "Ended"

    class Delivery(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        DEFERRED = "deferred", "Deferred (will retry)"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired before sending"
        SUPPRESSED = "suppressed", "Not sent (no account may sign in)"

    class Purpose(models.TextChoices):
        """What completing the request does. Only ``SIGN_IN`` signs anyone in; the others
        prove, to the session that asked (``session``), that its person reads the mail of
        ``email`` now: a step-up, or the new address of an email change."""

        SIGN_IN = "sign_in", "Sign in"
        REAUTHENTICATE = "reauthenticate", "Confirm it's you (step-up)"
        CHANGE_EMAIL = "change_email", "Confirm a new email address"

    public_id = models.CharField(max_length=32, unique=True, default=new_public_id, editable=False)
    email = models.EmailField(max_length=254, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="login_requests",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    delivery = models.CharField(max_length=16, choices=Delivery.choices, default=Delivery.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    sends = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=_now, editable=False)
    expires_at = models.DateTimeField(db_index=True)  # the sweeper's and the purge's key
    sent_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    requester_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    next_url = models.CharField(max_length=2000, blank=True)
    # Cross-device approval: the browser that asked holds the binding cookie (its
    # keyed hash is here); the approving device must type the number it shows.
    binding_hash = models.CharField(max_length=64, blank=True)
    match_number = models.PositiveSmallIntegerField(default=new_match_number, editable=False)
    # An API client that sent a PKCE-style challenge (RFC 7636, S256) proves with its
    # verifier that it is the client that asked: a leaked link alone gets no tokens.
    code_challenge = models.CharField(max_length=43, blank=True, editable=False)
    approved_at = models.DateTimeField(null=True, blank=True)
    approver_ip = models.GenericIPAddressField(null=True, blank=True)
    approver_user_agent = models.CharField(max_length=300, blank=True)
    # Also the column's default in the database: a replica still running the code from
    # before this field existed inserts sign-in requests without it during a rolling deploy.
    purpose = models.CharField(
        max_length=16,
        choices=Purpose.choices,
        default=Purpose.SIGN_IN,
        db_default=Purpose.SIGN_IN,
        editable=False,
    )
    # issue 18, languages: the language the person used when they asked (a code of
    # settings.LANGUAGES, "" when unknown); the worker writes the email in it. A database
    # default too, like ``purpose``: an older replica inserts rows without it.
    locale = models.CharField(max_length=16, blank=True, default="", db_default="", editable=False)
    # The signed-in session that asked, for a step-up or an email change: only it may
    # complete the request, so a proof never counts for another session.
    session = models.ForeignKey(
        "UserSession",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="login_requests",
        editable=False,
    )
    # issue 18, sign-up: the invitation whose link started this sign-in; its address may
    # then sign up under "invite_only" (``adapter.may_sign_up``).
    invitation = models.ForeignKey(
        "Invitation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="login_requests",
        editable=False,
    )
    # issue 18, bots: why the email form's request was taken for a bot's ("honeypot",
    # "too_fast"), "" for people. The worker sends such a request no email, ever (a resend
    # included); its answer was everyone's. A database default, like ``purpose``'s.
    bot_suspicion = models.CharField(
        max_length=16, blank=True, default="", db_default="", editable=False
    )

    objects = LoginRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["delivery", "created_at"], name="passwordless_delivery_idx")
        ]

    def __str__(self) -> str:
        return f"sign-in request {self.pk}"

    @property
    def match_text(self) -> str:
        """The number as the waiting device shows it: always two digits (``07``)."""
        return f"{self.match_number:02d}"

    def is_expired(self, at: datetime | None = None) -> bool:
        """Expired once the server clock reaches ``expires_at``."""
        return (at or clock.now()) >= self.expires_at


class LoginSecret(models.Model):
    """One minted code and link of a request, stored only as keyed hashes.

    A resend adds a row; the most recent few stay valid because mail is often
    delayed and the person may be reading an older message.
    """

    request = models.ForeignKey(LoginRequest, on_delete=models.CASCADE, related_name="secrets")
    code_hash = models.CharField(max_length=64)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=_now, editable=False)
    # When the worker finished sending this secret's email (accepted, or lost in a way that
    # may have delivered it). Empty while its send is under way: a duplicate task waits, and
    # only a claim left unsettled past ``delivery.CLAIM_TIMEOUT`` is taken for dead.
    settled_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"secret {self.pk} of request {self.request_id}"


class FailureBudget(models.Model):
    """Consecutive wrong codes for one address, across all of its requests.

    Requesting a new code does not reset it (NIST SP 800-63B-4 §3.1.3.2); a
    successful sign-in does.
    """

    email = models.EmailField(max_length=254, unique=True)
    failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    # Wrong numbers typed on approval pages, across requests. At the limit, approving
    # from another device is off for this address until it signs in by code or by a
    # link in the browser that asked (an approval does not count).
    approval_failures = models.PositiveSmallIntegerField(default=0)

    def __str__(self) -> str:
        return f"failure budget {self.pk}"


class AuthEvent(models.Model):
    """The audit trail: one row per thing that happened in the flow. Holds no secret."""

    class Kind(models.TextChoices):
        REQUESTED = "requested", "Sign-in requested"
        SENT = "sent", "Email sent"
        DELIVERY_FAILED = "delivery_failed", "Email delivery failed"
        APPROVED = "approved", "Approved on another device"
        SIGNED_IN = "signed_in", "Signed in"
        FAILED = "failed", "Sign-in refused"
        LOCKED = "locked", "Request locked"
        RATE_LIMITED = "rate_limited", "Rate limited"
        SIGNED_OUT = "signed_out", "Signed out"
        REFRESH_REUSED = "refresh_reused", "Refresh token reused"
        PASSKEY_ADDED = "passkey_added", "Passkey added"
        PASSKEY_REMOVED = "passkey_removed", "Passkey removed"
        BOT_SUSPECTED = "bot_suspected", "Taken for a bot (no email sent)"
        INVITED = "invited", "Invitation sent"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    reason = models.CharField(max_length=40, blank=True)
    method = models.CharField(max_length=10, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="auth_events",
    )
    login_request = models.ForeignKey(
        LoginRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    masked_email = models.CharField(max_length=260, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    # For cross-device events: both devices' user agents and masked addresses.
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=_now, editable=False, db_index=True)
    # A flood past a rate limit is one row per client and window, counted here,
    # not one row per refused request (see ``audit.record``). ``window`` is a keyed
    # digest of (kind, reason, client, window start); NULL for every other event.
    # Unique, so that concurrent refusals share one row.
    count = models.PositiveIntegerField(default=1, editable=False)
    window = models.CharField(max_length=64, null=True, blank=True, unique=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["kind", "created_at"], name="passwordless_event_kind_idx")]

    def __str__(self) -> str:
        times = f" x{self.count}" if self.count > 1 else ""
        return f"{self.kind}{times} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class TokenFamily(models.Model):
    """The refresh tokens descended from one sign-in of an API client.

    Reusing a rotated refresh token revokes the whole family, and the access
    tokens it issued with it (RFC 9700 §4.14.2).
    """

    public_id = models.CharField(max_length=32, unique=True, default=new_public_id, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="token_families"
    )
    created_at = models.DateTimeField(default=_now, editable=False)
    last_used_at = models.DateTimeField(default=_now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=32, blank=True)

    def __str__(self) -> str:
        return f"token family {self.pk}"


class RefreshToken(models.Model):
    """One refresh token of a family, stored as a keyed hash, with the access token
    issued beside it (its ``jti`` and time, so the same pair can be given again)."""

    family = models.ForeignKey(TokenFamily, on_delete=models.CASCADE, related_name="tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    access_jti = models.CharField(max_length=32)
    issued_at = models.DateTimeField(default=_now)
    used_at = models.DateTimeField(null=True, blank=True)
    successor = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="predecessor"
    )

    def __str__(self) -> str:
        return f"refresh token {self.pk}"


class UserSession(models.Model):
    """One session of a user, as the person sees it on their sessions page.

    A browser session (its id is kept in the session, never the session key)
    or an API client's token family. Ending one sets ``ended_at``, the only truth
    about it; the shared cache remembers that answer ("ended" is written at once),
    so every web process refuses the session on its next request, and no loss of
    cache data brings it back.
    """

    class Kind(models.TextChoices):
        BROWSER = "browser", "Browser session"
        TOKENS = "tokens", "API tokens"

    public_id = models.CharField(max_length=32, unique=True, default=new_public_id, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tracked_sessions"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    family = models.OneToOneField(
        TokenFamily, null=True, blank=True, on_delete=models.CASCADE, related_name="session"
    )
    method = models.CharField(max_length=10, blank=True)
    device = models.CharField(max_length=60, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    network = models.CharField(max_length=50, blank=True)
    created_at = models.DateTimeField(default=_now, editable=False)
    last_seen_at = models.DateTimeField(default=_now)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_reason = models.CharField(max_length=32, blank=True)
    # The last fresh proof that the person at this session is its user (a step-up, by
    # passkey or emailed code). The sign-in itself counts as one from ``created_at``.
    reauthenticated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen_at"]
        indexes = [models.Index(fields=["user", "ended_at"], name="passwordless_usersession_idx")]

    def __str__(self) -> str:
        return f"{self.device or 'session'} of user {self.user_id}"


class Passkey(models.Model):
    """A WebAuthn credential (a passkey) of a user: its public key, never a secret.

    ``credential_id`` is the authenticator's id for it, base64url without padding;
    ``sign_count`` is the counter the authenticator last reported (0 for the many that
    keep none), which must grow for those that do keep one.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="passkeys"
    )
    name = models.CharField(max_length=64)
    credential_id = models.CharField(max_length=1400, unique=True, editable=False)
    public_key = models.BinaryField(editable=False)
    sign_count = models.PositiveBigIntegerField(default=0, editable=False)
    transports = models.JSONField(default=list, blank=True, editable=False)
    aaguid = models.CharField(max_length=36, blank=True, editable=False)
    backed_up = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(default=_now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"passkey {self.name!r} of user {self.user_id}"


class PasskeyChallenge(models.Model):
    """A WebAuthn challenge: single use, short-lived, bound to the session that asked.

    ``binding_hash`` is a keyed hash of what the asker holds: the browser session's key,
    or, for an API client, the challenge's own ``public_id`` it was given. A challenge is
    a nonce, not a secret (the browser sees it), so it is kept as it is.
    """

    class Purpose(models.TextChoices):
        REGISTER = "register", "Add a passkey"
        AUTHENTICATE = "authenticate", "Sign in with a passkey"
        REAUTHENTICATE = "reauthenticate", "Confirm it's you with a passkey"

    public_id = models.CharField(max_length=32, unique=True, default=new_public_id, editable=False)
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    challenge = models.BinaryField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="passkey_challenges",
    )
    binding_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=_now, editable=False)
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"passkey challenge {self.pk}"


class EmailChange(models.Model):
    """A change of a user's address: asked, confirmed from the new address, undoable.

    ``confirmation`` is the request whose code and link went to the new address
    (``LoginRequest.Purpose.CHANGE_EMAIL``). Once confirmed, the old address is told and
    may undo the change until ``undo_expires_at`` with the link it was mailed; only the
    keyed hash of that link's token is kept.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="email_changes"
    )
    old_email = models.EmailField(max_length=254)
    new_email = models.EmailField(max_length=254)
    confirmation = models.OneToOneField(
        LoginRequest, on_delete=models.CASCADE, related_name="email_change"
    )
    created_at = models.DateTimeField(default=_now, editable=False)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    undo_token_hash = models.CharField(max_length=64, blank=True)
    undo_expires_at = models.DateTimeField(null=True, blank=True)
    undone_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["undo_token_hash"],
                condition=~models.Q(undo_token_hash=""),
                name="passwordless_emailchange_undo_unique",
            )
        ]

    def __str__(self) -> str:
        return f"email change {self.pk} of user {self.user_id}"


class Invitation(models.Model):
    """An address staff invited to sign up (issue 18): under ``SIGNUP_POLICY =
    "invite_only"`` only such an address, starting its sign-in from the invitation's link,
    may create an account.

    The link's token is minted by the worker that mails it (``services.invitations``),
    never carried by a task; only its keyed hash is kept. Sent again, the invitation gets
    a new token and the older link stops working. ``used_at`` is set when its sign-up
    creates the account: single use.
    """

    email = models.EmailField(max_length=254, db_index=True)
    token_hash = models.CharField(max_length=64, blank=True, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="invitations_sent",
        editable=False,
    )
    created_at = models.DateTimeField(default=_now, editable=False)
    expires_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["token_hash"],
                condition=~models.Q(token_hash=""),
                name="passwordless_invitation_token_unique",
            )
        ]

    def __str__(self) -> str:
        return f"invitation {self.pk}"

    def is_usable(self, at: datetime | None = None) -> bool:
        """Not used yet, and not expired at ``at`` (now)."""
        return self.used_at is None and (at or clock.now()) < self.expires_at
