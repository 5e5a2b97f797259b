"""Generation (v2 image, structured prompt, image-to-video; legacy v1 text-to-image) and the v2 status
service (contract §7-§8) as methods of :class:`BriaHook`.

Submissions are POSTs that start paid work: they are retried only when nothing can have been applied
(HTTP 429, connection never established). The status poll is a GET and is retried normally.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from airflow_provider_bria import contract
from airflow_provider_bria.contract import JobStatus, Paths
from airflow_provider_bria.exceptions import BriaInputError, BriaJobError
from airflow_provider_bria.hooks import _inputs as inp
from airflow_provider_bria.hooks._api_data import as_dict
from airflow_provider_bria.hooks._connection import Origin, is_absolute, strict_split
from airflow_provider_bria.responses import V2Response, warn_unexpected_status
from airflow_provider_bria.waiting.policy import PollPolicy, PollTimeout
from airflow_provider_bria.waiting.sync import wait_sync

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]+$")
_GUIDANCE_METHOD_KEY = re.compile(r"^guidance_method_\d+$")
#: Extra statuses accepted from the status service besides 2xx (404 = expired or unknown id).
STATUS_EXPECTED = (404,)
#: Clock and sleep of :meth:`BriaGenerationApiMixin.wait_for_job` (module attributes so tests can replace them).
_clock = time.monotonic
_sleep = time.sleep


def request_id_of(value: str) -> str:
    """Return the request id of a request id or a ``.../v2/status/<request_id>`` URL.

    :param value: a request id or a status URL.
    :raises BriaInputError: when no valid request id can be found.
    """
    text = inp.non_empty(value, "request_id_or_status_url").strip()
    if is_absolute(text):
        text = strict_split(text, what="status URL").path.rstrip("/").rsplit("/", 1)[-1]
    if not _REQUEST_ID.match(text or "") or not text.strip("."):
        raise BriaInputError(
            f"Invalid Bria request id {value!r}: pass the request_id (letters, digits, '.', '_', ':', '-') or "
            "the status_url returned by the submission"
        )
    return text


def status_target(value: str, api_origin: Origin) -> tuple[str, str]:
    """Decide what to poll for a request id or status URL: always ``/v2/status/{request_id}`` on the API.

    A status URL is never contacted as given, whatever its host: only its request id is taken from it (the
    ``api_token`` goes to the configured origin only; status URLs can come from files anyone with write access
    to an output folder can change).

    :param value: a request id or an absolute status URL.
    :param api_origin: ``(scheme, host, port)`` of the configured API (kept for callers; not needed).
    :returns: ``(path, request_id)``.
    """
    del api_origin
    rid = request_id_of(value)
    return Paths.v2_status(rid), rid


def job_error(response: V2Response) -> BriaJobError:
    """Build the :class:`BriaJobError` of a job that ended without a result.

    :param response: the terminal status response.
    """
    detail = response.error_message or "no error details"
    if response.status is JobStatus.NOT_FOUND:
        detail = "request id unknown or expired"
    return BriaJobError(
        f"Bria job {response.request_id} ended with status {response.status.value}: {detail}",
        request_id=response.request_id,
        status=response.status.value,
        error=response.error,
    )


def _positive_int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BriaInputError(f"{name} must be a positive integer, got {value!r}")
    return value


def _model_ref(value: Any) -> str:
    """v2 bodies type ``tailored_model_id`` as a string (Bria's example sends ``"model_123"``): an int or any
    non-empty string is accepted and sent as a string; a digit string is normalised (``" 42"`` -> ``"42"``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(inp.object_id(value, "tailored_model_id"))
    text = inp.non_empty(value, "tailored_model_id").strip()
    return str(int(text)) if text.isdigit() else text


class BriaGenerationApiMixin:
    """Generation and job-status operations. Mixed into :class:`~airflow_provider_bria.hooks.bria.BriaHook`."""

    def _request_with_status(
        self, method: str, path: str, **kwargs: Any
    ) -> tuple[int, Any]:  # pragma: no cover - provided by the hook
        raise NotImplementedError

    def _api_origin(self) -> Origin:  # pragma: no cover - provided by the hook
        raise NotImplementedError

    def _submit(self, path: str, body: dict[str, Any]) -> V2Response:
        status, resp = self._request_with_status("POST", path, json=body)
        return V2Response.from_body(resp, http_status=status)

    # ------------------------------------------------------------------ v2 (§7.1-7.3)

    def generate_image(
        self,
        tailored_model_id: int | str,
        *,
        prompt: str | None = None,
        structured_prompt: str | Mapping[str, Any] | None = None,
        negative_prompt: str | None = None,
        tailored_model_influence: float | None = None,
        guidance_scale: int | None = None,
        aspect_ratio: str | None = None,
        steps_num: int | None = None,
        seed: int | None = None,
        sync: bool = False,
        prompt_content_moderation: bool | None = None,
        visual_output_content_moderation: bool | None = None,
        webhook_url: str | None = None,
    ) -> V2Response:
        """Generate an image with a FIBO tailored model (``POST /v2/image/generate/tailored``).

        Inputs: ``prompt`` (new image), ``structured_prompt`` (+ ``seed``, recreate) or both (refine).

        :param tailored_model_id: a ``Completed`` FIBO model.
        :param prompt: text prompt.
        :param structured_prompt: JSON string from a previous result (a dict is serialised).
        :param negative_prompt: what to avoid.
        :param tailored_model_influence: 0.0-1.5 (server default 1).
        :param guidance_scale: 3-5 (server default 5).
        :param aspect_ratio: ``1:1`` (default), ``2:3``, ``3:2``, ``3:4``, ``4:3``, ``4:5``, ``5:4``, ``9:16``,
            ``16:9``.
        :param steps_num: 20-50 (server default 50).
        :param seed: integer for reproducibility; required when ``structured_prompt`` is given without
            ``prompt`` (the spec's input combination rule).
        :param sync: wait for the image in the same call (200) instead of a 202 job.
        :param prompt_content_moderation: moderate the prompt (server default ``True``; 422 when blocked).
        :param visual_output_content_moderation: moderate the output (server default ``True``).
        :param webhook_url: URL Bria POSTs the result to (async jobs). Not in the tailored spec (Bria's SDK sends
            it): sent only when given.
        :returns: ``COMPLETED`` with ``image_url`` (sync) or ``IN_PROGRESS`` with ``request_id``/``status_url``.
        """
        sp = inp.json_string(structured_prompt, "structured_prompt") if structured_prompt is not None else None
        contract.validate_v2_generation(
            prompt=prompt,
            structured_prompt=sp,
            aspect_ratio=aspect_ratio,
            numbers={
                "tailored_model_influence": tailored_model_influence,
                "guidance_scale": guidance_scale,
                "steps_num": steps_num,
            },
            seed=seed,
        )
        body = inp.compact(
            tailored_model_id=_model_ref(tailored_model_id),
            prompt=prompt,
            structured_prompt=sp,
            negative_prompt=negative_prompt,
            tailored_model_influence=tailored_model_influence,
            guidance_scale=guidance_scale,
            aspect_ratio=aspect_ratio,
            steps_num=steps_num,
            seed=seed,
            sync=bool(inp.optional_bool(sync, "sync")),
            prompt_content_moderation=inp.optional_bool(prompt_content_moderation, "prompt_content_moderation"),
            visual_output_content_moderation=inp.optional_bool(
                visual_output_content_moderation, "visual_output_content_moderation"
            ),
            webhook_url=inp.http_url(webhook_url, "webhook_url") if webhook_url is not None else None,
        )
        return self._submit(Paths.V2_IMAGE, body)

    def generate_structured_prompt(
        self,
        tailored_model_id: int | str,
        *,
        prompt: str | None = None,
        structured_prompt: str | Mapping[str, Any] | None = None,
        seed: int | None = None,
        sync: bool = False,
        prompt_content_moderation: bool | None = None,
    ) -> V2Response:
        """Turn a prompt (optionally refining a structured prompt) into a structured prompt, without an image.

        :param tailored_model_id: a ``Completed`` FIBO model.
        :param prompt: the text prompt (required).
        :param structured_prompt: a structured prompt to refine with ``prompt``.
        :param seed: integer.
        :param sync: return the result in the same call.
        :param prompt_content_moderation: moderate the prompt (server default ``True``).
        :returns: ``COMPLETED`` with ``structured_prompt`` (sync) or an ``IN_PROGRESS`` job.
        """
        if not (prompt and str(prompt).strip()):
            raise BriaInputError("generate_structured_prompt needs a prompt (optionally with a structured_prompt)")
        sp = inp.json_string(structured_prompt, "structured_prompt") if structured_prompt is not None else None
        contract.validate_v2_generation(prompt=prompt, structured_prompt=sp, seed=seed, seed_rule=False)
        body = inp.compact(
            tailored_model_id=_model_ref(tailored_model_id),
            prompt=prompt,
            structured_prompt=sp,
            seed=seed,
            sync=bool(inp.optional_bool(sync, "sync")),
            prompt_content_moderation=inp.optional_bool(prompt_content_moderation, "prompt_content_moderation"),
        )
        return self._submit(Paths.V2_STRUCTURED_PROMPT, body)

    def image_to_video(self, tailored_model_id: int | str, image: str, *, seed: int | None = None) -> V2Response:
        """Animate an image made by the tailored model into a 5-second MP4 (always asynchronous).

        The request carries ``tailored_model_id`` (the spec's required field; one docs page says ``model_id``).

        :param tailored_model_id: the tailored model.
        :param image: public URL or base64 of the image (data URI, bytes or binary file also accepted).
        :param seed: integer.
        :returns: an ``IN_PROGRESS`` job; poll it with :meth:`get_status` / :meth:`wait_for_job`.
        """
        contract.validate_seed(seed)
        body = inp.compact(
            tailored_model_id=_model_ref(tailored_model_id), image=inp.image_ref(image, "image"), seed=seed
        )
        return self._submit(Paths.V2_IMAGE_TO_VIDEO, body)

    # ------------------------------------------------------------------ legacy v1 (§7.4)

    def text_to_image_legacy(
        self,
        model_id: int | str,
        prompt: str,
        *,
        num_results: int | None = None,
        aspect_ratio: str | None = None,
        sync: bool = True,
        seed: int | None = None,
        model_influence: float | None = None,
        negative_prompt: str | None = None,
        fast: bool | None = None,
        steps_num: int | None = None,
        include_generation_prefix: bool | None = None,
        prompt_enhancement: bool | None = None,
        content_moderation: bool | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Generate with a legacy tailored model (``POST /v1/text-to-image/tailored/{model_id}``).

        :param model_id: a ``Completed`` legacy model.
        :param prompt: English text prompt.
        :param num_results: how many images (with ``fast=False`` only 1-2 are supported).
        :param aspect_ratio: one of the v2 aspect ratios.
        :param sync: wait for the images (default ``True``; async v1 URLs appear later, no status service).
        :param seed: integer.
        :param model_influence: influence of the tailored model (Bria's client uses 1.0).
        :param negative_prompt: what to avoid.
        :param fast: fast mode.
        :param steps_num: diffusion steps.
        :param include_generation_prefix: prepend the model's ``generation_prefix`` (server default on).
        :param prompt_enhancement: let the server enhance the prompt.
        :param content_moderation: moderate prompt and output.
        :param extra: further documented fields (``guidance_method_1``, ``guidance_method_1_scale``,
            ``guidance_method_1_image_file``...), sent as given.
        :returns: the raw body; :func:`~airflow_provider_bria.responses.normalize_v1_result` normalises it.
        """
        mid = inp.object_id(model_id, "model_id")
        inp.non_empty(prompt, "prompt")
        _positive_int(num_results, "num_results")
        _positive_int(steps_num, "steps_num")
        if aspect_ratio is not None and aspect_ratio not in contract.ASPECT_RATIOS:
            raise BriaInputError(
                f"Invalid aspect_ratio {aspect_ratio!r}; expected one of: {', '.join(contract.ASPECT_RATIOS)}"
            )
        contract.validate_seed(seed)
        if model_influence is not None and (
            isinstance(model_influence, bool) or not isinstance(model_influence, int | float) or model_influence < 0
        ):
            raise BriaInputError(f"model_influence must be a non-negative number, got {model_influence!r}")
        for key, value in extra.items():
            if _GUIDANCE_METHOD_KEY.match(key) and value is not None and value not in contract.LEGACY_GUIDANCE_METHODS:
                raise BriaInputError(
                    f"{key} must be one of {', '.join(contract.LEGACY_GUIDANCE_METHODS)}, got {value!r}"
                )
        body = inp.compact(
            prompt=prompt,
            num_results=num_results,
            aspect_ratio=aspect_ratio,
            sync=bool(inp.optional_bool(sync, "sync")),
            seed=seed,
            model_influence=model_influence,
            negative_prompt=negative_prompt,
            fast=fast,
            steps_num=steps_num,
            include_generation_prefix=inp.optional_bool(include_generation_prefix, "include_generation_prefix"),
            prompt_enhancement=inp.optional_bool(prompt_enhancement, "prompt_enhancement"),
            content_moderation=inp.optional_bool(content_moderation, "content_moderation"),
            **extra,
        )
        status, resp = self._request_with_status("POST", Paths.v1_text_to_image(mid), json=body)
        return as_dict(resp)

    # ------------------------------------------------------------------ status service (§8)

    def get_status(self, request_id_or_status_url: str) -> V2Response:
        """Poll a v2 job once (``GET /v2/status/{request_id}``, or the job's ``status_url``).

        HTTP 200 and 202 are both accepted; 404 gives ``status=NOT_FOUND`` (unknown or expired id) instead of
        raising. ``ERROR``/``FAILED`` come back as statuses too: use :meth:`wait_for_job` to raise.

        :param request_id_or_status_url: the request id, or the absolute ``status_url`` from the submission.
        """
        target, rid = status_target(request_id_or_status_url, self._api_origin())
        status, body = self._request_with_status("GET", target, expected=STATUS_EXPECTED)
        return V2Response.from_body(body, http_status=status, request_id=rid)

    def wait_for_job(
        self, request_id_or_status_url: str, *, poll_interval: float = 1.0, timeout: float = 600.0
    ) -> V2Response:
        """Poll a v2 job until it is terminal (blocking; triggers use ``aget_status`` instead).

        :param request_id_or_status_url: the request id or ``status_url``.
        :param poll_interval: seconds between polls.
        :param timeout: seconds before giving up.
        :returns: the ``COMPLETED`` response.
        :raises BriaJobError: when the job ends ``ERROR``/``FAILED``/``NOT_FOUND``, or on timeout (``status``
            then is the last one seen). ``UNKNOWN`` or an unrecognised status is logged once and polled on.
        """
        seen: set[str] = set()

        def finished(response: V2Response) -> bool:
            warn_unexpected_status(response, seen, self.log)  # type: ignore[attr-defined]
            return response.is_terminal

        # No poll error is tolerated here: get_status already retried it (method-aware, with backoff).
        policy = PollPolicy.within(poll_interval, timeout, _clock(), retryable=lambda err: False)
        try:
            response = wait_sync(policy, lambda: self.get_status(request_id_or_status_url), finished,
                                 what=f"Bria job {request_id_or_status_url}", log=self.log,  # type: ignore[attr-defined]
                                 clock=lambda: _clock(), sleep=lambda seconds: _sleep(seconds))
        except PollTimeout as err:
            last: V2Response = err.last
            raise BriaJobError(
                f"Bria job {last.request_id} did not finish within {timeout:g} s (still "
                f"{last.unexpected_status or last.status.value})",
                request_id=last.request_id,
                status=last.status.value,
            ) from None
        if response.is_failure:
            raise job_error(response)
        return response
