"""The JSON form of a failure, the same for the API, the waiting page's poll and 503s."""

from __future__ import annotations

from django.http import JsonResponse

from .errors import SignInError

__all__ = ["json_error"]


def json_error(error: SignInError) -> JsonResponse:
    """``{"error": {"code", "message", ...details}}`` with the error's status and, for a
    rate limit, ``Retry-After``."""
    response = JsonResponse(
        {"error": {"code": error.code, "message": error.message, **error.params}},
        status=error.status,
    )
    if error.retry_after is not None:
        response["Retry-After"] = str(error.retry_after)
    return response
