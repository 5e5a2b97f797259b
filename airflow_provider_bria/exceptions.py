"""Exceptions raised by the Bria provider.

Everything derives from :class:`BriaError`. Errors found client-side, before any remote call, are
:class:`BriaInputError` (also a :class:`ValueError`). Errors returned by the API are :class:`BriaAPIError`
subclasses chosen by HTTP status. Lifecycle outcomes (a failed training, a failed generation job) have
their own classes so DAG authors can catch them precisely.

No exception built here ever holds the API token: messages are built from the server's body and the
request path only, never from headers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from airflow_provider_bria._compat import (  # re-exported for the hooks and operators
    AirflowFailException as AirflowFailException,
)
from airflow_provider_bria._compat import AirflowNotFoundException as AirflowNotFoundException
from airflow_provider_bria._compat import AirflowSkipException as AirflowSkipException
from airflow_provider_bria._compat import EnumBody, str_enum


class BriaError(Exception):
    """Base class of every exception raised by airflow-provider-bria."""


class BriaNonRetryableError(AirflowFailException):
    """Marker: an error that a task retry cannot fix, so Airflow fails the task without retrying.

    Input errors, connection configuration errors, authentication errors, 400/412/413/415/422 answers and
    a 404 on an id the user gave carry it; transient and ambiguous failures (5xx, timeouts, dropped
    connections, 409, 429, a 404 on an id the provider derived) do not, and keep Airflow's retries.
    """


class BriaInputError(BriaError, ValueError, BriaNonRetryableError):
    """Bad input found client-side, before any request that could change remote state."""


class BriaConnectionConfigError(BriaInputError):
    """The Airflow connection is missing, malformed or lacks the API token."""


class BriaAPIError(BriaError):
    """An error response from the Bria API.

    :param message: the server's message, parsed from any documented error shape.
    :param status_code: HTTP status code (``None`` when no response was received).
    :param request_id: the request id the server reported, if any.
    :param details: extra detail text from the server (v2 ``details`` or the raw body).
    :param code: the server's own error code when it differs from the HTTP status.
    :param method: HTTP method of the failed call.
    :param path: request path (never the full URL with credentials, never headers).
    :param errors: the list of field errors of a ``{"errors": [...]}`` body.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        details: str | None = None,
        code: int | str | None = None,
        method: str | None = None,
        path: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        self.message = message
        self.status_code = status_code
        self.request_id = request_id
        self.details = details
        self.code = code
        self.method = method
        self.path = path
        self.errors = errors or []
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = []
        if self.method and self.path:
            parts.append(f"{self.method} {self.path}")
        if self.status_code is not None:
            parts.append(f"HTTP {self.status_code}")
        head = " -> ".join(parts)
        text = f"{head}: {self.message}" if head else self.message
        if self.details and self.details != self.message:
            text += f" ({self.details})"
        if self.request_id:
            text += f" [request_id={self.request_id}]"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code!r}, message={self.message!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_api_error,
            (
                type(self),
                self.message,
                {
                    "status_code": self.status_code,
                    "request_id": self.request_id,
                    "details": self.details,
                    "code": self.code,
                    "method": self.method,
                    "path": self.path,
                    "errors": self.errors,
                },
            ),
        )


def _rebuild_api_error(cls: type[BriaAPIError], message: str, kwargs: dict[str, Any]) -> BriaAPIError:
    return cls(message, **kwargs)


class BriaAuthError(BriaAPIError, BriaNonRetryableError):  # type: ignore[misc]  # status_code: an int here, HTTPStatus there
    """401 or 403: missing or wrong token, quota exhausted, feature not in the plan, foreign object."""


class BriaNotFoundError(BriaAPIError):
    """404: the object does not exist (or a v2 request id has expired)."""


class BriaValidationError(BriaAPIError, BriaNonRetryableError):  # type: ignore[misc]  # status_code: an int here, HTTPStatus there
    """400, 412, 413, 415 or 422: the server rejected the request's content."""


class BriaUserIdNotFoundError(BriaNotFoundError, BriaNonRetryableError):  # type: ignore[misc]  # status_code: an int here, HTTPStatus there
    """404 on an id the user gave (an operator argument or a Param): a retry cannot make it exist.

    :param argument: the operator argument that held the id.
    """

    def __init__(self, message: str, *, argument: str | None = None, **kwargs: Any) -> None:
        self.argument = argument
        super().__init__(message, **kwargs)


class BriaModerationError(BriaValidationError):
    """422: content moderation blocked the prompt, an input image or an output."""


class BriaConflictError(BriaAPIError):
    """409: the object is in a state that forbids the call (completed dataset, model training...)."""


class BriaRateLimitError(BriaAPIError):
    """429: the plan's request rate was exceeded.

    :param retry_after: seconds the server asked us to wait, if it said.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class BriaServerError(BriaAPIError):
    """5xx: the service failed. The request may or may not have been applied."""


class BriaTransportError(BriaAPIError):
    """No usable response: connection refused or dropped, or a timeout. The call may have been applied."""


class BriaTrainingError(BriaError):
    """A training did not end in ``Completed``.

    :param model_id: the model whose training ended badly.
    :param status: the model status seen last.
    """

    def __init__(self, message: str, *, model_id: int | None = None, status: str | None = None) -> None:
        self.model_id = model_id
        self.status = status
        super().__init__(message)


class BriaTrainingFailedError(BriaTrainingError):
    """The model ended in ``Failed``."""


class BriaTrainingStoppedError(BriaTrainingError):
    """The model ended in ``Stopped`` (or is ``Stopping``)."""


class BriaModelDeletedError(BriaTrainingError):
    """The model was deleted (Bria's soft delete: status ``Deleted``); it can never train or generate again."""


class BriaTrainingTimeoutError(BriaTrainingError):
    """The wait for training exceeded its timeout."""


class BriaModelNotReadyError(BriaInputError):
    """A model used for generation is not ``Completed``, or is not usable with that endpoint."""


class BriaJobError(BriaError):
    """A v2 asynchronous job ended in ``ERROR``/``FAILED``/``UNKNOWN`` or expired.

    :param request_id: the job's request id.
    :param status: the last status seen.
    :param error: the server's error object, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        request_id: str | None = None,
        status: str | None = None,
        error: Mapping[str, Any] | None = None,
    ) -> None:
        self.request_id = request_id
        self.status = status
        self.error = dict(error or {})
        super().__init__(message)


class BriaGenerationError(BriaError):
    """Some generations of a batch failed; the ones that succeeded were kept.

    :param failures: one JSON-safe dict per failed item (prompt, seed, index, reason).
    :param succeeded: how many outputs were produced or already present.
    """

    def __init__(self, message: str, *, failures: list[dict[str, Any]], succeeded: int = 0) -> None:
        self.failures = failures
        self.succeeded = succeeded
        super().__init__(message)


class BriaGenerationRejectedError(BriaGenerationError, BriaNonRetryableError):
    """Every failed item of a batch was refused for good (400/422 validation, moderation, 401/403): no retry."""


class BriaUploadError(BriaError):
    """Some images of an upload failed; the others were kept.

    :param failures: one JSON-safe dict per failed image (name, reason).
    """

    def __init__(self, message: str, *, failures: list[dict[str, Any]]) -> None:
        self.failures = failures
        super().__init__(message)


class BriaCaptionsTimeoutError(BriaError, TimeoutError):
    """Caption regeneration did not finish within the operator's timeout (it may still finish later)."""


class BriaUploadTimeoutError(BriaUploadError, TimeoutError):
    """A bulk upload was still running when the wait timed out (it goes on remotely; a retry resumes waiting)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, failures=[])


class BriaTriggerEventError(BriaError):
    """A deferred task resumed with a missing or malformed trigger event."""


# --------------------------------------------------------------------------------------------
# Error taxonomy: the one classification every caller uses
# --------------------------------------------------------------------------------------------


@str_enum
class ErrorKind(str, EnumBody):
    """What a failed call means for the caller, whatever the call was.

    * ``TRANSIENT``: nothing was applied and the same call may succeed later (429 rate limit).
    * ``AMBIGUOUS``: the call may or may not have been applied (5xx, timeout, dropped connection). A read may
      simply be repeated; a write must look the object up before it is sent again (apply-then-check).
    * ``PERMANENT``: repeating the same call cannot succeed (4xx other than 429, input and lifecycle errors,
      and anything that is not a :class:`BriaAPIError`).
    """

    TRANSIENT = "transient"
    AMBIGUOUS = "ambiguous"
    PERMANENT = "permanent"


#: Errors of kind ``TRANSIENT``: not applied, may succeed later.
TRANSIENT_ERRORS: tuple[type[BriaAPIError], ...] = (BriaRateLimitError,)
#: Errors of kind ``AMBIGUOUS``: the call may have been applied on the server.
AMBIGUOUS_ERRORS: tuple[type[BriaAPIError], ...] = (BriaServerError, BriaTransportError)
#: ``TRANSIENT`` + ``AMBIGUOUS``: the errors a read (a status poll, a lookup) retries.
RETRYABLE_ERRORS: tuple[type[BriaAPIError], ...] = TRANSIENT_ERRORS + AMBIGUOUS_ERRORS
#: ``PERMANENT`` errors about the target or the account rather than one item (bad token, the dataset is gone
#: or in a state that forbids the call): a batch stops at the first one instead of failing every item alike.
TARGET_ERRORS: tuple[type[BriaAPIError], ...] = (BriaAuthError, BriaNotFoundError, BriaConflictError)


def classify_error(err: BaseException) -> ErrorKind:
    """Return the :class:`ErrorKind` of ``err``.

    :param err: any exception raised by a hook call.
    """
    if isinstance(err, TRANSIENT_ERRORS):
        return ErrorKind.TRANSIENT
    if isinstance(err, AMBIGUOUS_ERRORS):
        return ErrorKind.AMBIGUOUS
    return ErrorKind.PERMANENT


def is_retryable_read(err: BaseException) -> bool:
    """Return whether a read (a poll) that failed with ``err`` may simply be repeated.

    :param err: the exception the read raised.
    """
    return classify_error(err) is not ErrorKind.PERMANENT


# --------------------------------------------------------------------------------------------
# Parsing error bodies
# --------------------------------------------------------------------------------------------

_STATUS_CLASSES: dict[int, type[BriaAPIError]] = {
    400: BriaValidationError,
    401: BriaAuthError,
    403: BriaAuthError,
    404: BriaNotFoundError,
    409: BriaConflictError,
    412: BriaValidationError,
    413: BriaValidationError,
    415: BriaValidationError,
    422: BriaModerationError,
    429: BriaRateLimitError,
}


def exception_class_for_status(status_code: int) -> type[BriaAPIError]:
    """Return the :class:`BriaAPIError` subclass for an HTTP status code.

    :param status_code: the HTTP status code.
    """
    if status_code in _STATUS_CLASSES:
        return _STATUS_CLASSES[status_code]
    if status_code >= 500:
        return BriaServerError
    if 400 <= status_code < 500:
        return BriaValidationError
    return BriaAPIError


def parse_error_body(body: Any, *, reason: str = "") -> dict[str, Any]:
    """Extract message, details, code, request id and field errors from any documented error shape.

    Shapes: v2 ``{"error": {"code", "message", "details"}, "request_id"}``; a bare JSON string;
    ``{"message": ...}``; ``{"errors": [{"msg", "field_name", "field_input"}]}``; ``{"error": "..."}``;
    ``{"detail": ...}`` (FastAPI-style); anything else becomes the raw text.

    :param body: the decoded JSON body, or the raw text when it was not JSON.
    :param reason: the HTTP reason phrase, used when the body says nothing.
    """
    out: dict[str, Any] = {"message": reason or "Bria API error", "details": None, "code": None,
                           "request_id": None, "errors": []}
    if isinstance(body, str):
        text = body.strip()
        if text:
            out["message"] = text[:2000]
        return out
    if not isinstance(body, Mapping):
        if body is not None:
            out["message"] = json.dumps(body)[:2000]
        return out
    if body.get("request_id") is not None:
        out["request_id"] = str(body["request_id"])
    err = body.get("error")
    if isinstance(err, Mapping):
        out["message"] = str(err.get("message") or out["message"])
        if err.get("details") not in (None, ""):
            out["details"] = str(err["details"])
        out["code"] = err.get("code")
        return out
    if isinstance(err, str) and err:
        out["message"] = err
        return out
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        out["errors"] = [dict(e) if isinstance(e, Mapping) else {"msg": str(e)} for e in errors]
        parts = []
        for e in out["errors"]:
            field = e.get("field_name") or e.get("loc")
            msg = e.get("msg") or e.get("message") or ""
            parts.append(f"{field}: {msg}" if field else str(msg))
        out["message"] = "; ".join(parts)
        return out
    if body.get("message"):
        out["message"] = str(body["message"])
        return out
    detail = body.get("detail")
    if isinstance(detail, str) and detail:
        out["message"] = detail
    elif isinstance(detail, list) and detail:
        out["errors"] = [dict(d) for d in detail if isinstance(d, Mapping)]
        out["message"] = "; ".join(str(d.get("msg", d)) if isinstance(d, Mapping) else str(d) for d in detail)
    elif body:
        out["message"] = json.dumps(body)[:2000]
    return out


def build_api_error(
    status_code: int,
    body: Any,
    *,
    reason: str = "",
    method: str | None = None,
    path: str | None = None,
    retry_after: float | None = None,
) -> BriaAPIError:
    """Build the right :class:`BriaAPIError` subclass for an error response.

    :param status_code: the HTTP status code.
    :param body: decoded JSON body or raw text.
    :param reason: HTTP reason phrase.
    :param method: HTTP method of the request.
    :param path: request path (no query string, no credentials).
    :param retry_after: parsed ``Retry-After`` seconds, for 429.
    """
    parsed = parse_error_body(body, reason=reason)
    cls = exception_class_for_status(status_code)
    kwargs: dict[str, Any] = {
        "status_code": status_code,
        "request_id": parsed["request_id"],
        "details": parsed["details"],
        "code": parsed["code"],
        "method": method,
        "path": path,
        "errors": parsed["errors"],
    }
    if cls is BriaRateLimitError:
        return BriaRateLimitError(parsed["message"], retry_after=retry_after, **kwargs)
    return cls(parsed["message"], **kwargs)
