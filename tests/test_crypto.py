import re
from collections import Counter

from django.test import override_settings

from passwordless.crypto import hash_code, hash_token, mint_code, mint_token


def test_codes_are_zero_padded_digits_of_the_configured_length() -> None:
    codes = [mint_code() for _ in range(2000)]
    assert all(re.fullmatch(r"\d{6}", c) for c in codes)
    with override_settings(PASSWORDLESS_CODE_LENGTH=8):
        assert re.fullmatch(r"\d{8}", mint_code())


def test_codes_are_uniform_including_leading_zeros() -> None:
    # randint(100000, 999999) would never start with 0; a uniform draw does 10% of the time.
    first_digits = Counter(mint_code()[0] for _ in range(20000))
    assert set(first_digits) == set("0123456789")
    assert all(1600 < count < 2400 for count in first_digits.values()), first_digits


def test_tokens_carry_256_bits_and_are_url_safe() -> None:
    tokens = {mint_token() for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", t) for t in tokens)


def test_hashes_are_keyed_and_bound_to_purpose_and_request() -> None:
    assert hash_code("req-a", "123456") != hash_code("req-b", "123456")
    assert hash_code("req-a", "123456") != hash_token("req-a:123456")
    assert "123456" not in hash_code("req-a", "123456")
    before = hash_token("token")
    with override_settings(PASSWORDLESS_HASH_KEY="another key"):
        assert hash_token("token") != before


def test_an_alphabet_of_letters_and_digits(client: object) -> None:
    from django.test import override_settings

    from passwordless.forms import CodeForm

    alphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
    with override_settings(PASSWORDLESS_CODE_ALPHABET=alphabet, PASSWORDLESS_CODE_LENGTH=6):
        codes = [mint_code() for _ in range(2000)]
        assert all(len(c) == 6 and set(c) <= set(alphabet) for c in codes)
        assert len({c[0] for c in codes}) == len(alphabet)  # every symbol turns up
        form = CodeForm({"code": "abc-23z"})
        assert form.is_valid() and form.cleaned_data["code"] == "ABC23Z"
        assert not CodeForm({"code": "ABC231"}).is_valid()  # 1 is not in the alphabet
