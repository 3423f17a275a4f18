"""Each secret records when its send settled, so that a duplicate task or the sweeper can
tell a send under way (or whose worker died) from one that finished."""

from django.db import migrations, models
from django.db.models import F


def settle_existing(apps, schema_editor):
    """Secrets minted before this migration were sent inside their transaction: settled."""
    LoginSecret = apps.get_model("passwordless", "LoginSecret")
    LoginSecret.objects.filter(settled_at=None).update(settled_at=F("created_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("passwordless", "0003_typed_number_and_code_challenge"),
    ]

    operations = [
        migrations.AddField(
            model_name="loginsecret",
            name="settled_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(settle_existing, migrations.RunPython.noop),
    ]
