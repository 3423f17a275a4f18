"""Invitations as an attacker sees them: a view-only staff member, the logs, the Referer."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.test import Client

from accounts.models import User
from passwordless import clock
from passwordless.log import RedactSecrets, redact
from passwordless.models import Invitation
from passwordless.services import invitations

pytestmark = pytest.mark.django_db

TOKEN = "A" * 43


def test_the_log_filter_redacts_an_invitation_token() -> None:
    assert TOKEN not in redact(f"GET /auth/invite/{TOKEN}/ HTTP/1.1")
    assert TOKEN not in redact(f"next=%2Fauth%2Finvite%2F{TOKEN}%2F")
    record = logging.makeLogRecord(
        {"msg": "Forbidden (CSRF cookie not set.): %s", "args": (f"/auth/invite/{TOKEN}/",)}
    )
    RedactSecrets().filter(record)
    assert TOKEN not in record.getMessage()


def test_a_view_only_staff_member_cannot_send_invitations_again(settings: Any) -> None:
    settings.PASSWORDLESS_SIGNUP_POLICY = "invite_only"
    invitation = invitations.invite(["guest@example.org"]).sent[0]
    # Expired: the viewer must not revive it (new link, new expiry) either.
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=clock.now() - timedelta(days=1))
    mail.outbox.clear()
    viewer = User.objects.create_user("viewer@example.org", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_invitation"))
    client = Client()
    client.force_login(viewer)
    changelist = "/admin/passwordless/invitation/"
    assert client.get(changelist).status_code == 200
    client.post(
        changelist, {"action": "send_again", "_selected_action": [invitation.pk], "index": 0}
    )
    invitation.refresh_from_db()
    assert invitation.expires_at < clock.now(), "a viewer revived and re-sent an invitation"
    assert not mail.outbox


def test_the_invitation_posts_redirect_sends_no_referer(settings: Any) -> None:
    from passwordless.services.invitation_links import hash_invitation_token

    settings.PASSWORDLESS_SIGNUP_POLICY = "invite_only"
    Invitation.objects.create(
        email="guest@example.org",
        token_hash=hash_invitation_token(TOKEN),
        expires_at=clock.now() + timedelta(days=1),
    )
    client = Client()
    response = client.post(f"/auth/invite/{TOKEN}/")
    assert response.status_code == 302
    # The redirect keeps the page's policy: the code page's request carries no Referer
    # with the token in it (a Referrer-Policy on a redirect replaces the page's).
    assert response["Referrer-Policy"] == "no-referrer"
