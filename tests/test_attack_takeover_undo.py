"""An account taken over by address change, given back by the undo link: for good.

Over HTTP against gunicorn (the fixtures of ``test_attack_email_change``). Mallory holds a
signed-in session of Alice's (a laptop left open, a stolen cookie) while its sign-in is
still a fresh proof. She moves the account to an address of hers. Alice gets the undo
link and uses it: the docs promise "the account is its owner's again". So:

* a second change Mallory made meanwhile has an undo link of its own, mailed to her
  first address: Alice's undo voids it, or it would put Mallory's address back;
* a passkey Mallory added while the address was hers (its notice went to her) goes with
  the undo, or it would sign her straight back in;
* the undo token stays out of the access log, and Alice signing in with her old address
  (which nobody owns until she undoes) does not cost her the undo.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from accounts.models import User
from passwordless.models import EmailChange, Passkey
from tests.attacker import Browser
from tests.stack import code_of, mail_text
from tests.test_attack_email_change import (
    CHANGE_SUBJECT,
    NOTICE_SUBJECT,
    OLD,
    UNDO,
    App,
    _stack,
)
from tests.webauthn_authenticator import SoftAuthenticator

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

M1, M2 = "mallory1@evil.test", "mallory2@evil.test"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    for made, _ in _stack(tmp_path):
        yield made


def _change(app: App, browser: Browser, to: str) -> None:
    asked = browser.post("/auth/email/", {"email": to})
    assert asked.status_code == 302 and asked.headers["Location"] == "/auth/email/code/", (
        asked.text
    )
    done = browser.post("/auth/email/code/", {"code": code_of(app.mail(to, CHANGE_SUBJECT))})
    assert done.status_code == 302 and done.headers["Location"] == "/auth/email/", done.text


def _undo_link(app: App, to: str) -> str:
    match = UNDO.search(mail_text(app.mail(to, NOTICE_SUBJECT)))
    assert match, f"no undo link mailed to {to}"
    return match.group(1)


def _undo(link: str, base: str) -> requests.Response:
    browser = Browser(base)
    opened = browser.get(link)
    if opened.status_code != 302:
        return opened  # refused on opening
    return browser.post("/auth/email/undo/", {})


def _address() -> str:
    return str(User.objects.get(pk=EmailChange.objects.values("user_id")[:1]).email)


def test_a_later_changes_undo_does_not_outlive_the_owners_undo(app: App) -> None:
    User.objects.create_user(OLD)
    stolen = app.browser()  # Alice's session, in Mallory's hands, signed in a moment ago
    _change(app, stolen, M1)
    alice_undo = _undo_link(app, OLD)
    # Her session was kept and is still fresh; she moves on once more.
    _change(app, stolen, M2)
    mallory_undo = _undo_link(app, M1)  # the second change's notice went to her first address
    assert _address() == M2

    # Alice undoes: her address is back, everyone is signed out.
    done = _undo(alice_undo, app.url)
    assert done.status_code == 200 and "Your address is back" in done.text
    assert _address() == OLD
    assert stolen.signed_in_as() is None

    # Mallory's own undo link must be dead now: the account is Alice's again.
    again = _undo(mallory_undo, app.url)
    assert _address() == OLD, "the later change's undo link took the account back to mallory"
    assert again.status_code != 200 or "Your address is back" not in again.text


def _call(browser: Browser, path: str, body: dict[str, Any] | None = None) -> requests.Response:
    token = browser.csrf_token("/auth/login/")
    return browser.session.post(
        browser.url(path),
        json=body or {},
        headers={"X-CSRFToken": token, "Origin": browser.base_url},
        allow_redirects=False,
        timeout=20,
    )


def test_a_passkey_added_while_the_address_was_the_attackers_does_not_survive_the_undo(
    app: App,
) -> None:
    User.objects.create_user(OLD)
    stolen = app.browser()
    _change(app, stolen, M1)
    alice_undo = _undo_link(app, OLD)
    # Still fresh: Mallory adds a passkey of hers. Its notice goes to the account's
    # address, which is hers now: Alice is never told.
    key = SoftAuthenticator(origin=app.url, rp_id="127.0.0.1")
    begun = _call(stolen, "/auth/passkeys/register/begin/")
    assert begun.status_code == 200, begun.text
    answer = key.register(begun.json()["options"])
    added = _call(
        stolen,
        "/auth/passkeys/register/finish/",
        {"challenge_id": begun.json()["challenge_id"], "credential": answer, "name": "mine"},
    )
    assert added.status_code == 201, added.text
    app.mail(M1, "passkey")  # the passkey notice, to Mallory's address
    assert not [m for m in app.smtp.messages if m["To"] == OLD and "passkey" in str(m["Subject"])]

    done = _undo(alice_undo, app.url)
    assert done.status_code == 200 and _address() == OLD
    assert stolen.signed_in_as() is None

    # Mallory signs in again with her passkey, from a fresh browser.
    mallory = Browser(app.url)
    begun = _call(mallory, "/auth/passkeys/auth/begin/")
    assert begun.status_code == 200, begun.text
    signed = _call(
        mallory,
        "/auth/passkeys/auth/finish/",
        {
            "challenge_id": begun.json()["challenge_id"],
            "credential": key.assert_(begun.json()["options"]),
        },
    )
    assert signed.status_code != 200, "the attacker's passkey signed her back in after the undo"
    assert mallory.signed_in_as() is None
    assert not Passkey.objects.exists()


def test_the_undo_token_is_not_written_to_the_access_log(app: App, tmp_path: Path) -> None:
    User.objects.create_user(OLD)
    laptop = app.browser()
    _change(app, laptop, M1)
    link = _undo_link(app, OLD)
    token = link.rstrip("/").rsplit("/", 1)[1]
    Browser(app.url).get(link)  # the owner (or a mail scanner) opens it
    Browser(app.url).get(link + "x/")  # and a mangled copy, refused
    (log,) = tmp_path.glob("gunicorn-*.log")
    text = log.read_text(errors="replace")
    assert "/auth/email/undo/" in text  # the access lines are there
    assert token not in text, "the undo link's token is in gunicorn's access log"


def test_signing_in_with_the_old_address_does_not_cost_the_owner_her_undo(app: App) -> None:
    User.objects.create_user(OLD)
    stolen = app.browser()
    _change(app, stolen, M1)
    alice_undo = _undo_link(app, OLD)
    # Alice finds herself signed out and does the natural thing: signs in with her address.
    # Sign-up is open and the address is nobody's any more, but no new, empty account is
    # made for it while the undo can still give it back: she is told where her account is.
    alice = Browser(app.url)
    assert alice.start(OLD).status_code == 302
    answer = alice.submit_code(app.sign_in_code(OLD))
    assert "moved to another account" in answer.text
    assert User.objects.filter(email=OLD).count() == 0
    # Then she opens the undo link she was mailed: it must still give her account back.
    done = _undo(alice_undo, app.url)
    assert "Your address is back" in done.text, "undo_taken: the owner's own sign-up blocks it"
    assert User.objects.get(pk=EmailChange.objects.get().user_id).email == OLD
