"""Reading a JSON request body, with a clear 400 for everything malformed.

JSON can spell what no HTTP form can: ``"\\ud800"`` is valid JSON and decodes to a lone
surrogate, which no encoder accepts (UTF-8 for a hash or a query, the database's
text), and ``"\\u0000"`` to a NUL, which PostgreSQL refuses in text. Every string
field is checked here, once, so that no view meets either.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest

from ..conf import app_settings
from ..errors import SignInError

__all__ = ["json_body", "optional_str", "required_str"]

#: Lone surrogates (U+D800-U+DFFF) and control characters (C0, DEL, C1): none belongs in
#: any field of this API, be it an address, a path, a token or a code.
_NOT_TEXT = re.compile("[\ud800-\udfff\x00-\x1f\x7f-\x9f]")


def json_body(request: HttpRequest) -> dict[str, Any]:
    """The body as a JSON object; ``content_type_invalid``, ``body_too_large`` or
    ``json_invalid`` otherwise."""
    if request.content_type != "application/json":
        raise SignInError("content_type_invalid")
    limit = app_settings.MAX_JSON_BODY
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise SignInError("body_too_large", limit=limit)
    try:
        raw = request.body
    except RequestDataTooBig as exc:
        raise SignInError("body_too_large", limit=limit) from exc
    if len(raw) > limit:
        raise SignInError("body_too_large", limit=limit)
    try:
        data = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: "[[[[..." nested deeper than the parser goes.
        raise SignInError("json_invalid") from exc
    if not isinstance(data, dict):
        raise SignInError("json_invalid")
    return data


def required_str(data: dict[str, Any], field: str, max_length: int = 2000) -> str:
    if field not in data or data[field] is None:
        raise SignInError("field_missing", field=field)
    return _string(data, field, max_length)


def optional_str(data: dict[str, Any], field: str, default: str, max_length: int = 2000) -> str:
    if data.get(field) is None:
        return default
    return _string(data, field, max_length)


def _string(data: dict[str, Any], field: str, max_length: int) -> str:
    value = data[field]
    if not isinstance(value, str):
        raise SignInError("field_invalid", field=field, reason="expected a string.")
    if len(value) > max_length:
        raise SignInError("field_invalid", field=field, reason=f"at most {max_length} characters.")
    if _NOT_TEXT.search(value):
        raise SignInError(
            "field_invalid",
            field=field,
            reason="control characters and unpaired surrogates are not allowed.",
        )
    return value
