"""What wrk needs from a peer, made under that peer's settings, in the peers' database.

``bench.load`` runs it as a child process with the peer's environment
(``BENCH_PEER``, ``DJANGO_SETTINGS_MODULE=bench.peers.settings``), since a peer's
apps and database are not ours. It prints one line, ``RESULT <json>``:

    python -m bench.peers.prepare users PREFIX COUNT  # accounts; with allauth, their addresses
    python -m bench.peers.prepare links PREFIX COUNT  # new accounts, a one-time sesame link each
    python -m bench.peers.prepare signed-in           # the login() account and a signed-in cookie
    python -m bench.peers.prepare mail-cpu COUNT      # allauth's CPU seconds per login-code email
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any


def emails(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i}@bench.test" for i in range(count)]


def create_users(prefix: str, count: int) -> list[Any]:
    from django.conf import settings
    from django.contrib.auth import get_user_model

    manager = get_user_model()._default_manager
    users = manager.bulk_create(
        [manager.model(email=email, password="!unusable") for email in emails(prefix, count)],
        batch_size=2000,
    )
    if getattr(settings, "BENCH_PEER", "bare") == "allauth":
        # A verified primary address for each, as allauth's sign-up leaves it: allauth
        # looks the account up in its own table first.
        from allauth.account.models import EmailAddress

        EmailAddress.objects.bulk_create(
            [EmailAddress(user=u, email=u.email, verified=True, primary=True) for u in users],
            batch_size=2000,
        )
    return users


def links(prefix: str, count: int) -> list[str]:
    from sesame.utils import get_query_string

    return [f"/sesame/login{get_query_string(user)}" for user in create_users(prefix, count)]


def signed_in() -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from bench.views import BENCH_USER_EMAIL

    user = get_user_model()._default_manager.create(email=BENCH_USER_EMAIL, password="!unusable")
    client = Client(HTTP_HOST="127.0.0.1")
    response = client.post("/bare/login")
    assert response.status_code == 200, response.status_code
    return {"user": user.pk, "cookies": {k: v.value for k, v in client.cookies.items()}}


def mail_cpu(count: int) -> float:
    """The CPU seconds allauth spends on one login-code email, the mean of ``count``.

    What its request-code view does once it has the code (``LoginCodeVerificationProcess
    .send_by_email``): the adapter's ``send_mail`` with the login-code template and the
    context allauth passes, inside the request context its middleware sets (the adapter
    reads the request from there, for the site's name and the templates), to the mail
    backend of the peer's settings (Django's dummy one, which skips the MIME text and the
    SMTP conversation that our worker also pays). It is timed alone so that it can be set
    beside the worker's CPU per email. One untimed send first: the template loaders cache.
    """
    from allauth.account.adapter import get_adapter
    from allauth.core.context import request_context
    from django.test import RequestFactory

    from bench.peers import CODE

    request = RequestFactory(HTTP_HOST="127.0.0.1").post("/accounts/login/code/")
    addresses = emails("mail-cpu-", count + 1)
    with request_context(request):
        adapter = get_adapter(request)

        def send(email: str) -> None:
            context = {"request": request, "code": CODE}
            adapter.send_mail("account/email/login_code", email, context)

        send(addresses[0])
        start = time.process_time()
        for email in addresses[1:]:
            send(email)
        return (time.process_time() - start) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="what", required=True)
    for what in ("users", "links"):
        made = commands.add_parser(what)
        made.add_argument("prefix")
        made.add_argument("count", type=int)
    commands.add_parser("signed-in")
    commands.add_parser("mail-cpu").add_argument("count", type=int)
    args = parser.parse_args()
    import django

    django.setup()
    result: Any
    if args.what == "users":
        result = len(create_users(args.prefix, args.count))
    elif args.what == "links":
        result = links(args.prefix, args.count)
    elif args.what == "mail-cpu":
        result = mail_cpu(args.count)
    else:
        result = signed_in()
    sys.stdout.write(f"RESULT {json.dumps(result)}\n")


if __name__ == "__main__":
    main()
