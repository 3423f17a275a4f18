"""``manage.py passwordless_disposable_domains``: refresh the list of disposable-mail domains.

The app ships one (``passwordless/data/disposable_domains.txt``, from the
disposable-email-domains project, CC0). To refresh it: ``pip install -U
disposable-email-domains`` (its PyPI package), then run this command, which writes that
package's list, canonical and sorted, to ``--output`` (by default the file named by
``PASSWORDLESS_SIGNUP_DISPOSABLE_DOMAINS_FILE``, else the shipped one). ``--source FILE``
reads a list of your own instead (one domain a line, ``#`` for comments); ``--add`` and
``--remove`` adjust it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from passwordless import signup
from passwordless.conf import app_settings


class Command(BaseCommand):
    help = "Write the list of disposable-mail domains that sign-up may block."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--source", help="a list to read (default: the PyPI package's)")
        parser.add_argument("--output", help="the file to write (default: the one in use)")
        parser.add_argument("--add", nargs="*", default=[], help="domains to add")
        parser.add_argument("--remove", nargs="*", default=[], help="domains to leave out")

    def handle(self, *args: Any, **options: Any) -> None:
        domains = set(self._source(options["source"]))
        domains |= signup.read_domains(options["add"])
        domains -= signup.read_domains(options["remove"])
        if not domains:
            raise CommandError("the source holds no domain: nothing written")
        output = Path(
            options["output"]
            or app_settings.SIGNUP_DISPOSABLE_DOMAINS_FILE
            or signup.SHIPPED_DISPOSABLE_DOMAINS
        )
        header = (
            "# Disposable-address domains, one a line; '#' starts a comment.\n"
            "# Written by manage.py passwordless_disposable_domains.\n"
        )
        output.write_text(header + "".join(f"{d}\n" for d in sorted(domains)), encoding="utf-8")
        signup.reload()
        self.stdout.write(f"{len(domains)} domains written to {output}")

    def _source(self, path: str | None) -> frozenset[str]:
        if path:
            try:
                with open(path, encoding="utf-8") as lines:
                    return signup.read_domains(lines)
            except OSError as exc:
                raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        try:
            package = importlib.import_module("disposable_email_domains")
        except ImportError:
            raise CommandError(
                "pip install -U disposable-email-domains first, or give --source FILE"
            ) from None
        return signup.read_domains(getattr(package, "blocklist", ()))
