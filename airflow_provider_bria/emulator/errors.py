"""Error responses of the emulator, in the shapes Bria documents (contract §2.1).

Handlers raise :class:`ApiError` with a ready body; the app turns it into a JSON response. Builders:

- :func:`v2_error`: ``{"error": {"code", "message", "details"}, "request_id"}`` (v2 generation and status);
- :func:`message`: ``{"message": "..."}`` (every v1 error Bria does not document otherwise);
- :func:`bare`: a bare JSON string (403 and checkpoint errors);
- :func:`field_errors`: ``{"errors": [{"msg", "field_name", "field_input"}]}`` (start_training validation);
- :func:`legacy_error`: ``{"error": "..."}`` (image caption updates).
"""

from __future__ import annotations

import uuid
from http import HTTPStatus
from typing import Any

RATE_LIMIT_TEXT = (
    "Request limit exceeded. Your account has reached its maximum allowed requests. "
    "Please upgrade your plan or try again later."
)


class ApiError(Exception):
    """An error response: status code, JSON body and extra headers.

    :param status: HTTP status code.
    :param body: the JSON-serialisable body.
    :param headers: extra response headers.
    """

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}
        super().__init__(f"HTTP {status}: {body!r}")


def reason(status: int) -> str:
    """The standard reason phrase of a status code.

    :param status: HTTP status code.
    """
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def new_request_id() -> str:
    """A fresh request id (32 hex characters, like Bria's)."""
    return uuid.uuid4().hex


def is_v2_path(path: str) -> bool:
    """Whether a request path belongs to the v2 API (generation and status).

    :param path: the request path.
    """
    return path.startswith("/v2/")


def v2_body(status: int, message: str, details: str = "", request_id: str | None = None) -> dict[str, Any]:
    """The v2 error envelope.

    :param status: HTTP status code, used as ``error.code``.
    :param message: the short message.
    :param details: the longer explanation.
    :param request_id: the request id (a fresh one when ``None``).
    """
    return {
        "error": {"code": status, "message": message, "details": details},
        "request_id": request_id or new_request_id(),
    }


def v2_error(status: int, details: str, *, message: str | None = None, request_id: str | None = None) -> ApiError:
    """A v2 error.

    :param status: HTTP status code.
    :param details: the explanation.
    :param message: the short message (the reason phrase when ``None``).
    :param request_id: the request id.
    """
    return ApiError(status, v2_body(status, message or reason(status), details, request_id))


def message(status: int, text: str) -> ApiError:
    """A v1 ``{"message": ...}`` error.

    :param status: HTTP status code.
    :param text: the message.
    """
    return ApiError(status, {"message": text})


def bare(status: int, text: str) -> ApiError:
    """A v1 error whose body is a bare JSON string.

    :param status: HTTP status code.
    :param text: the string.
    """
    return ApiError(status, text)


def field_errors(errors: list[dict[str, Any]]) -> ApiError:
    """A 400 ``{"errors": [...]}`` error.

    :param errors: ``{"msg", "field_name", "field_input"}`` items.
    """
    return ApiError(400, {"errors": errors})


def legacy_error(status: int, text: str) -> ApiError:
    """A v1 ``{"error": "..."}`` error (caption updates).

    :param status: HTTP status code.
    :param text: the message.
    """
    return ApiError(status, {"error": text})


def for_path(path: str, status: int, text: str, *, headers: dict[str, str] | None = None) -> ApiError:
    """An error in the default shape of a path: v2 envelope on ``/v2/``, ``{"message"}`` elsewhere.

    :param path: the request path.
    :param status: HTTP status code.
    :param text: the explanation.
    :param headers: extra response headers.
    """
    err = v2_error(status, text) if is_v2_path(path) else message(status, text)
    err.headers.update(headers or {})
    return err
