"""``manage.py passwordless_delivery``: how fast sign-in emails go out, and what waits."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from passwordless.services import delivery_report


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


class Command(BaseCommand):
    help = "Delivery latency percentiles and the age of the oldest pending sign-in email."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--hours", type=float, default=24, help="window (default 24)")

    def handle(self, *args: Any, **options: Any) -> None:
        report = delivery_report(timedelta(hours=options["hours"]))
        rows = [
            ("sent", str(report.sent)),
            ("latency p50", _seconds(report.p50)),
            ("latency p95", _seconds(report.p95)),
            ("latency p99", _seconds(report.p99)),
            ("pending or deferred", str(report.pending)),
            ("oldest pending", _seconds(report.oldest_pending)),
            ("failed", str(report.failed)),
        ]
        for name, value in rows:
            self.stdout.write(f"{name:<22}{value}")
