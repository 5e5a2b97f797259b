"""Normalised response objects of the Bria generation endpoints.

Bria's documentation disagrees on the shape of a finished v2 job: the tailored-generation spec shows a flat
``{"image_url", "structured_prompt"}`` body, Bria's general v2 convention (and its status service) wraps the
payload as ``{"result": {...}, "request_id": ...}``. :class:`V2Response` accepts both (and a mix of both),
coerces ``seed`` to ``int`` and always exposes the same properties, so operators and triggers never look at
raw bodies. :func:`normalize_v1_result` does the same for the legacy v1 ``{"result": [{"urls": [...]}]}``.

Only the standard library is imported here: triggers serialise :class:`V2Response` through ``to_json()``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, MutableSet
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_bria.contract import JobStatus

#: Keys a finished v2 job can carry next to (or instead of) a ``result`` object.
_RESULT_KEYS = (
    "image_url",
    "video_url",
    "structured_prompt",
    "seed",
    "prompt",
    "refined_prompt",
    "urls",
    "content_moderation",
)
#: Keys whose presence means the job produced its output.
_OUTPUT_KEYS = ("image_url", "video_url", "structured_prompt", "urls")
_ENVELOPE_KEYS = frozenset({"status", "request_id", "status_url", "error", "result"})


def _coerce_seed(value: Any) -> int | None:
    """Return ``value`` as ``int`` when it is an integer or a string of digits, else ``None``.

    :param value: a seed as found in a response (examples show both ``123`` and ``"123"``).
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
    return None


def _as_json_string(value: Any) -> Any:
    """Serialise a structured prompt given as an object back to the JSON string the API uses.

    :param value: a structured prompt (string or already-decoded object).
    """
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


def _normalise_result(result: Mapping[str, Any]) -> dict[str, Any]:
    """Copy a result object, coercing ``seed`` and JSON-encoding an object ``structured_prompt``.

    :param result: the ``result`` object (or the flat keys of a flat body).
    """
    out = dict(result)
    if "seed" in out:
        seed = _coerce_seed(out["seed"])
        if seed is not None:
            out["seed"] = seed
    if "structured_prompt" in out:
        out["structured_prompt"] = _as_json_string(out["structured_prompt"])
    urls = out.get("urls")
    if not out.get("image_url") and isinstance(urls, list) and urls and isinstance(urls[0], str):
        out["image_url"] = urls[0]
    return out


def _request_id_from_url(status_url: str | None) -> str | None:
    """Return the last path segment of a ``.../v2/status/<request_id>`` URL.

    :param status_url: the status URL, or ``None``.
    """
    if not status_url:
        return None
    path = str(status_url).split("?", 1)[0].rstrip("/")
    tail = path.rsplit("/", 1)[-1]
    return tail or None


@dataclass
class V2Response:
    """A v2 submission or status response, normalised.

    :param status: the job status (``COMPLETED`` for a sync 200, ``IN_PROGRESS`` for a 202).
    :param request_id: the job's request id, when known.
    :param status_url: absolute URL to poll, when the server gave one.
    :param result: the job's output (``image_url``, ``video_url``, ``structured_prompt``, ``seed``...),
        taken from ``result`` or from flat keys; ``seed`` is an ``int``, ``structured_prompt`` a JSON string.
    :param error: the server's error object of a failed job (``code``, ``message``, ``details``).
    :param raw: the body as received.
    """

    status: JobStatus
    request_id: str | None = None
    status_url: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_body(cls, body: Any, *, http_status: int | None = None, request_id: str | None = None) -> V2Response:
        """Build a response from any documented v2 body.

        Status: the body's ``status`` (case-insensitive; ``FAILED`` kept distinct from ``ERROR``). Without one,
        HTTP 404 means ``NOT_FOUND``, HTTP 202 ``IN_PROGRESS``, an output (``image_url``, ``video_url``,
        ``structured_prompt``) ``COMPLETED``, an ``error`` ``ERROR``, a bare ``request_id``/``status_url``
        ``IN_PROGRESS``, anything else ``UNKNOWN``.

        :param body: the decoded JSON body (``None`` or a non-object is tolerated).
        :param http_status: the HTTP status code of the response, if known.
        :param request_id: fallback request id (e.g. the one that was polled).
        """
        raw: dict[str, Any] = dict(body) if isinstance(body, Mapping) else ({} if body is None else {"body": body})
        wrapped = raw.get("result")
        if isinstance(wrapped, list) and wrapped and isinstance(wrapped[0], Mapping):
            wrapped = wrapped[0]
        flat = {k: v for k, v in raw.items() if k in _RESULT_KEYS and k not in _ENVELOPE_KEYS}
        merged: dict[str, Any] = dict(flat)
        if isinstance(wrapped, Mapping):
            merged.update(wrapped)
        result = _normalise_result(merged)

        err = raw.get("error")
        error: dict[str, Any] | None
        if isinstance(err, Mapping):
            error = dict(err)
        elif isinstance(err, str) and err:
            error = {"message": err}
        else:
            error = None

        if raw.get("status") is not None:
            status = JobStatus.parse(str(raw["status"]))
        elif http_status == 404:
            status = JobStatus.NOT_FOUND
        elif http_status == 202:
            status = JobStatus.IN_PROGRESS
        elif any(result.get(key) for key in _OUTPUT_KEYS):
            status = JobStatus.COMPLETED
        elif error is not None:
            status = JobStatus.ERROR
        elif raw.get("request_id") or raw.get("status_url"):
            status = JobStatus.IN_PROGRESS
        else:
            status = JobStatus.UNKNOWN

        status_url = raw.get("status_url") or None
        rid = raw.get("request_id")
        rid = str(rid) if rid not in (None, "") else (_request_id_from_url(status_url) or request_id)
        return cls(
            status=status,
            request_id=rid,
            status_url=str(status_url) if status_url else None,
            result=result,
            error=error,
            raw=raw,
        )

    # ------------------------------------------------------------------ convenience

    @property
    def image_url(self) -> str | None:
        """URL of the generated image, if any."""
        value = self.result.get("image_url")
        return str(value) if value else None

    @property
    def video_url(self) -> str | None:
        """URL of the generated video, if any."""
        value = self.result.get("video_url")
        return str(value) if value else None

    @property
    def structured_prompt(self) -> str | None:
        """The structured prompt (a JSON string), if any."""
        value = self.result.get("structured_prompt")
        return str(value) if value else None

    @property
    def seed(self) -> int | None:
        """The seed used, as an ``int``, if the server reported one."""
        return _coerce_seed(self.result.get("seed"))

    @property
    def is_terminal(self) -> bool:
        """Whether polling can stop."""
        return self.status.is_terminal

    @property
    def is_failure(self) -> bool:
        """Whether the job ended without a result (``ERROR``, ``FAILED``, or ``NOT_FOUND`` for an expired id)."""
        return self.status.is_failure

    @property
    def unexpected_status(self) -> str | None:
        """The reported status when it is ``UNKNOWN`` or a value this client does not know, else ``None``.

        Such a job is not treated as failed: waits keep polling until their deadline (see
        :func:`warn_unexpected_status`).
        """
        if self.status is not JobStatus.UNKNOWN:
            return None
        value = self.raw.get("status")
        return str(value) if value is not None else "(none)"

    @property
    def is_completed(self) -> bool:
        """Whether the job finished successfully."""
        return self.status is JobStatus.COMPLETED

    @property
    def error_message(self) -> str:
        """A one-line description of the job's error (empty when there is none)."""
        if not self.error:
            return ""
        message = str(self.error.get("message") or "")
        details = self.error.get("details")
        code = self.error.get("code")
        text = message or (str(details) if details else "")
        if details and message and str(details) != message:
            text = f"{message} ({details})"
        if code not in (None, ""):
            text = f"[{code}] {text}" if text else f"[{code}]"
        return text

    # ------------------------------------------------------------------ serialisation

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-safe dict (for XCom and trigger events); :meth:`from_json` reverses it."""
        return {
            "status": self.status.value,
            "request_id": self.request_id,
            "status_url": self.status_url,
            "result": dict(self.result),
            "error": dict(self.error) if self.error is not None else None,
            "raw": dict(self.raw),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> V2Response:
        """Rebuild a response from :meth:`to_json` output.

        :param data: the dict produced by :meth:`to_json`.
        """
        error = data.get("error")
        return cls(
            status=JobStatus.parse(data.get("status")),
            request_id=data.get("request_id"),
            status_url=data.get("status_url"),
            result=_normalise_result(data.get("result") or {}),
            error=dict(error) if isinstance(error, Mapping) else None,
            raw=dict(data.get("raw") or {}),
        )


def warn_unexpected_status(response: V2Response, seen: MutableSet[str], logger: logging.Logger) -> None:
    """Log an ``UNKNOWN`` or unrecognised job status once per value (``seen`` remembers what was logged).

    :param response: a status response.
    :param seen: the values already logged for this wait.
    :param logger: where to log.
    """
    text = response.unexpected_status
    if text is None or text in seen:
        return
    seen.add(text)
    logger.warning(
        "Bria job %s reports status %r: not a final state this client knows (only COMPLETED, ERROR and FAILED "
        "end a job); polling continues until the wait's deadline", response.request_id, text,
    )


def normalize_v1_result(body: Any) -> list[dict[str, Any]]:
    """Normalise a legacy v1 text-to-image response to one dict per generated result.

    Accepts ``{"result": [{"urls": [...], "seed": ...}, ...]}`` (documented by Bria's own clients), a single
    ``{"result": {...}}`` object, a bare list, or a flat ``{"urls": [...]}``. Each returned dict keeps the
    item's keys and adds ``urls`` (a list of strings), ``image_url`` (the first URL or ``None``) and ``seed``
    (an ``int`` or ``None``).

    :param body: the decoded response body.
    """
    if isinstance(body, Mapping):
        items: Any = body.get("result", body)
    else:
        items = body
    if isinstance(items, Mapping):
        items = [items]
    if not isinstance(items, list):
        return []
    out: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, str):
            item = {"urls": [item]}
        if not isinstance(item, Mapping):
            continue
        entry = dict(item)
        urls = entry.get("urls")
        if isinstance(urls, str):
            urls = [urls]
        if not isinstance(urls, list):
            single = entry.get("image_url") or entry.get("url")
            urls = [single] if single else []
        entry["urls"] = [str(u) for u in urls if u]
        entry["image_url"] = entry["urls"][0] if entry["urls"] else None
        entry["seed"] = _coerce_seed(entry.get("seed"))
        out.append(entry)
    return out
