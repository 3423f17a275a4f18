"""Cross-device approval by a typed number (00-99) instead of three choices, a budget of
wrong numbers per address instead of a timed pause, and the PKCE challenge of API sends."""

from django.db import migrations, models

import passwordless.models


def carry_over(apps, schema_editor):
    """Requests waiting during the upgrade keep the number their page shows; an address
    whose approvals were paused starts with approving off."""
    LoginRequest = apps.get_model("passwordless", "LoginRequest")
    FailureBudget = apps.get_model("passwordless", "FailureBudget")
    for request in LoginRequest.objects.filter(status="pending").only("match_choices"):
        first = (request.match_choices or "").split(",")[0]
        if first.isdigit():
            LoginRequest.objects.filter(pk=request.pk).update(match_number=int(first))
    FailureBudget.objects.exclude(approval_blocked_until=None).update(approval_failures=3)


class Migration(migrations.Migration):
    dependencies = [
        ("passwordless", "0002_authevent_count"),
    ]

    operations = [
        migrations.AddField(
            model_name="failurebudget",
            name="approval_failures",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="loginrequest",
            name="code_challenge",
            field=models.CharField(blank=True, editable=False, max_length=43),
        ),
        migrations.AddField(
            model_name="loginrequest",
            name="match_number",
            field=models.PositiveSmallIntegerField(
                default=passwordless.models.new_match_number, editable=False
            ),
        ),
        migrations.RunPython(carry_over, migrations.RunPython.noop),
        migrations.RemoveField(
            model_name="failurebudget",
            name="approval_blocked_until",
        ),
        migrations.RemoveField(
            model_name="loginrequest",
            name="match_choices",
        ),
    ]
