"""Failures of single generation items: the error type, its JSON-safe entry, and which errors stop a batch.

One item's failure (moderation, a failed job, a download...) is kept as a JSON-safe dict, so the operator can
keep every success and raise one :class:`~airflow_provider_bria.exceptions.BriaGenerationError` listing what
failed; errors that would make every item fail (bad token, unknown model, client-side input errors) are fatal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_bria.contract import JobStatus
from airflow_provider_bria.exceptions import (
    BriaAPIError,
    BriaAuthError,
    BriaError,
    BriaInputError,
    BriaModerationError,
    BriaNotFoundError,
    BriaRateLimitError,
    BriaServerError,
    BriaTransportError,
    BriaValidationError,
)
from airflow_provider_bria.operators._outputs import OutputValidationError

if TYPE_CHECKING:
    from airflow_provider_bria.operators._generation_plan import WorkItem
    from airflow_provider_bria.responses import V2Response

Failure = dict[str, Any]


class ItemFailed(BriaError):
    """One item could not be produced (internal: becomes an entry of ``BriaGenerationError.failures``).

    :param kind: short machine-readable reason (``moderation``, ``job_failed``, ``timeout``...).
    :param message: human-readable reason.
    :param request_id: the Bria request id, when a job exists.
    :param status_code: HTTP status of the failing call, if any.
    """

    def __init__(self, kind: str, message: str, *, request_id: str | None = None,
                 status_code: int | None = None) -> None:
        self.kind = kind
        self.request_id = request_id
        self.status_code = status_code
        super().__init__(message)


class Aborted(Exception):
    """The batch was stopped (a fatal error happened in another item)."""


def failure_entry(item: WorkItem, err: BaseException, *, name: str | None = None) -> Failure:
    """The JSON-safe description of a failed item.

    :param item: the work item.
    :param err: what went wrong.
    :param name: the output file name, if the operator writes one.
    """
    entry: Failure = {
        "prompt": item.prompt,
        "seed": item.seed,
        "index": item.index,
        "name": name or item.stem,
        "kind": "error",
        "reason": str(err),
        "request_id": None,
        "status_code": None,
    }
    if item.structured_prompt and not item.prompt:
        entry["structured_prompt"] = item.structured_prompt[:200]
    if isinstance(err, ItemFailed):
        entry.update(kind=err.kind, request_id=err.request_id, status_code=err.status_code)
    elif isinstance(err, BriaModerationError):
        entry.update(kind="moderation", status_code=err.status_code, request_id=err.request_id)
    elif isinstance(err, BriaRateLimitError):
        entry.update(kind="rate_limited", status_code=err.status_code, request_id=err.request_id)
    elif isinstance(err, BriaAuthError):
        entry.update(kind="auth", status_code=err.status_code, request_id=err.request_id)
    elif isinstance(err, BriaValidationError):
        entry.update(kind="rejected", status_code=err.status_code, request_id=err.request_id)
    elif isinstance(err, BriaTransportError | BriaServerError):
        entry.update(kind="submission_unknown", status_code=err.status_code, request_id=err.request_id)
    elif isinstance(err, OutputValidationError | OSError):
        entry.update(kind="output")
    elif isinstance(err, Aborted):
        entry.update(kind="not_attempted")
    elif isinstance(err, BriaAPIError):
        entry.update(status_code=err.status_code, request_id=err.request_id)
    return entry


#: Failure kinds a retry cannot fix: the server refused the request or its content for good.
PERMANENT_KINDS = frozenset({"moderation", "rejected", "auth"})


def job_failure(response: V2Response) -> ItemFailed:
    """The :class:`ItemFailed` for a job that ended without a result.

    :param response: the terminal status response.
    """
    if response.status is JobStatus.NOT_FOUND:
        return ItemFailed("expired", f"request {response.request_id} is unknown or expired (404 NOT_FOUND)",
                          request_id=response.request_id)
    text = response.error_message or "no error details"
    code = (response.error or {}).get("code")
    kind = "moderation" if str(code) == "422" or "moderation" in text.lower() else "job_failed"
    return ItemFailed(kind, f"job ended in {response.status.value}: {text}", request_id=response.request_id,
                      status_code=code if isinstance(code, int) else None)


def is_fatal(err: BaseException) -> bool:
    """Whether an error means the whole batch is pointless (every other item would fail the same way).

    :param err: the error.
    """
    if isinstance(err, ItemFailed | Aborted | OutputValidationError | OSError):
        return False
    if isinstance(err, BriaAuthError | BriaNotFoundError | BriaInputError):
        return True
    return not isinstance(err, BriaAPIError)


def summary(failures: Sequence[dict[str, Any]], total: int, kept: int, what: str, where: str | None) -> str:
    """The message of a batch with failed items: counts by kind, then the first 20 failures.

    :param failures: the failure entries.
    :param total: planned outputs.
    :param kept: outputs kept.
    :param what: what the outputs are, e.g. ``images``.
    :param where: the output folder, if any.
    """
    kinds = ", ".join(f"{n} {k}" for k, n in Counter(f["kind"] for f in failures).most_common())
    lines = [f"{len(failures)} of {total} {what} failed ({kinds}); {kept} kept" + (f" in {where}" if where else "")]
    for f in failures[:20]:
        label = repr(f.get("prompt")) if f.get("prompt") else "<structured prompt>"
        rid = f" [request_id={f['request_id']}]" if f.get("request_id") else ""
        lines.append(f"  - {label} #{f.get('index')} seed={f.get('seed')}: {f['kind']}: {f['reason']}{rid}")
    if len(failures) > 20:
        lines.append(f"  ... and {len(failures) - 20} more (XCom key 'failures')")
    return "\n".join(lines)
