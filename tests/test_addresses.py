import pytest
from django.core.exceptions import ValidationError

from passwordless.addresses import mask_email, normalize_email


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("Alice@Example.ORG", "alice@example.org"),
        ("  alice@example.org ", "alice@example.org"),
        ("ALICE\u212a@example.org", "alicek@example.org"),  # Kelvin sign folds to K, then k
        ("alice@\uff45xample.org", "alice@example.org"),  # fullwidth letters fold (NFKC)
    ],
)
def test_normalize_email_gives_one_canonical_form(typed: str, canonical: str) -> None:
    assert normalize_email(typed) == canonical


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("", "required"),
        ("   ", "required"),
        ("not-an-email", "invalid"),
        ("a" * 250 + "@example.org", "max_length"),
        ("alice@example.org\nbcc@evil.example", "invalid"),
        ("ali ce@example.org", "invalid"),
        ("alice@example.org\t", "invalid"),
        ("alice@example.org\r\n", "invalid"),
    ],
)
def test_normalize_email_rejects_bad_input(typed: str, code: str) -> None:
    with pytest.raises(ValidationError) as error:
        normalize_email(typed)
    assert error.value.code == code


def test_mask_email_keeps_first_letter_and_domain() -> None:
    assert mask_email("alice@example.org") == "a***@example.org"
    assert mask_email("broken") == "***"


@pytest.mark.django_db
def test_user_manager_uses_the_same_normalization() -> None:
    from accounts.models import User

    user = User.objects.create_user("Bob@Example.ORG")
    assert user.email == "bob@example.org"
    assert not user.has_usable_password()


@pytest.mark.django_db
def test_an_account_stored_in_another_case_is_found() -> None:
    from django.contrib.auth import get_user_model

    from passwordless.adapter import get_adapter

    # Stored as typed, not canonical (auth.User, or rows older than the normalization).
    stored = get_user_model()._default_manager.create(email="Alice@Example.ORG")
    assert get_adapter().get_user("alice@example.org") == stored
    assert get_adapter().get_user("bob@example.org") is None


@pytest.mark.postgres
@pytest.mark.django_db
def test_finding_an_account_uses_an_index_not_a_scan_of_every_account() -> None:
    """The lookup's LOWER(email) matches the index of the unique constraint on LOWER(email);
    ``iexact``'s UPPER() would scan the table on every sign-in (found by bench.scale)."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from passwordless.adapter import get_adapter

    with CaptureQueriesContext(connection) as queries:
        get_adapter().get_user("alice@example.org")
    (lookup,) = queries.captured_queries
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {lookup['sql']}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "accounts_user_email_ci_unique" in plan, plan
