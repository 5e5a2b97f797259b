"""Generation (contract §7-8): v2 image, structured prompt and image-to-video jobs, the v2 status service,
and legacy v1 text-to-image / text-to-vector.

v2 jobs are stored with the time they become ready; ``GET /v2/status/{id}`` compares it with the clock.
Outputs are rendered from stored recipes when first downloaded (``/_emulator/files/...``).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from airflow_provider_bria.contract import (
    ASPECT_RATIOS,
    DEFAULT_ASPECT_RATIO,
    LEGACY_GUIDANCE_METHODS,
    ModelStatus,
    Paths,
    TrainingFamily,
    training_family,
    validate_v2_generation,
)
from airflow_provider_bria.emulator import errors, media
from airflow_provider_bria.emulator.fastpath import status_reply
from airflow_provider_bria.emulator.fetch import FetchError, image_bytes
from airflow_provider_bria.emulator.routes._common import (
    base_url,
    get_bool,
    get_int,
    get_str,
    input_error,
    json_body,
    parse_id,
    respond,
    runtime,
    v1_error,
    v2_error,
)
from airflow_provider_bria.emulator.runtime import Runtime
from airflow_provider_bria.emulator.settings import MAX_IMAGE_BYTES
from airflow_provider_bria.emulator.spec_rules import MODEL_DELETED
from airflow_provider_bria.emulator.store import Tx
from airflow_provider_bria.emulator.views import file_url, iso, job_result, now, resolve_model, unguessable
from airflow_provider_bria.exceptions import BriaInputError

router = APIRouter()

MODERATION_WORD = re.compile(r"\bforbidden\b", re.IGNORECASE)
FAIL_JOB_HOOK = "fail-job"
V1_MAX_RESULTS = 4
FAIL_JOB_ERROR = {
    "code": 500,
    "message": "Internal Server Error",
    "details": "Generation failed (emulator test hook 'fail-job')",
}


def _is_legacy(model: dict[str, Any]) -> bool:
    version = model.get("training_version")
    return version is None or training_family(version) is not TrainingFamily.FIBO


def _palette(tx: Tx, model: dict[str, Any]) -> tuple[list[str], str | None]:
    """Brand colours and visual schema of a model's dataset."""
    dataset = tx.get("datasets", model["dataset_id"]) if model.get("dataset_id") else None
    if dataset is None:
        return [], None
    schema = dataset.get("visual_schema")
    if schema:
        try:
            palette = json.loads(schema).get("color_palette") or []
            return [c for c in palette if isinstance(c, str) and re.fullmatch(r"#[0-9a-fA-F]{6}", c)], schema
        except (ValueError, AttributeError):
            return [], schema
    images = tx.select("images", dataset_id=dataset["id"])[:5]
    return [i["_analysis"]["palette"][0] for i in images if i["_analysis"]["palette"]], None


def _v2_model(tx: Tx, raw: Any, *, video: bool = False) -> dict[str, Any]:
    text = str(raw).strip() if isinstance(raw, (str, int)) and not isinstance(raw, bool) else ""
    if not text:
        raise v2_error(400, "tailored_model_id is required")
    doc = tx.get("models", int(text)) if text.isdigit() else None
    if doc is None or doc["status"] == MODEL_DELETED:
        if video:
            raise v2_error(404, f"Tailored model {text!r} not found")
        raise errors.v2_error(403, "Model does not belong to organization", message="Forbidden")
    doc = resolve_model(doc)
    if not ModelStatus.parse(doc["status"]).is_success:
        raise v2_error(400, f"Model {doc['id']} is not ready for generation (status {doc['status']})")
    if not video and _is_legacy(doc):
        raise v2_error(
            400,
            f"Model {doc['id']} is a legacy model; v2 tailored generation needs a FIBO model "
            f"(use {Paths.v1_text_to_image(doc['id'])})",
        )
    return doc


def _store_job(tx: Tx, rt: Runtime, job: dict[str, Any], *, sync: bool) -> dict[str, Any]:
    moment = now()
    job.update(created_at=iso(moment), ready_at=moment if sync else moment + rt.settings.job_seconds)
    tx.put("jobs", job)
    tx.incr("generation_jobs")
    return job


def _sync_body(job: dict[str, Any], base: str) -> Response:
    if job["outcome"] == "ERROR":
        return respond(errors.v2_body(500, job["error"]["message"], job["error"]["details"], job["id"]), 500)
    result = job_result(job, base)
    return respond({"result": result, "request_id": job["id"], **result})


def _accepted(job: dict[str, Any], base: str) -> Response:
    return respond({"request_id": job["id"], "status_url": f"{base}{Paths.v2_status(job['id'])}"}, 202)


def _v2_common(body: dict[str, Any]) -> dict[str, Any]:
    fields = {name: get_str(body, name, err=v2_error) for name in ("prompt", "structured_prompt")}
    fields["seed"] = body.get("seed")
    fields["sync"] = get_bool(body, "sync", False, err=v2_error)
    fields["moderate"] = get_bool(body, "prompt_content_moderation", True, err=v2_error)
    return fields


def _moderate(fields: dict[str, Any]) -> None:
    if fields["moderate"]:
        for text in (fields.get("prompt"), fields.get("structured_prompt")):
            if text and MODERATION_WORD.search(text):
                raise errors.v2_error(
                    422,
                    "The prompt failed content moderation (emulator test hook 'forbidden')",
                    message="Unprocessable Entity",
                )


def _fails(fields: dict[str, Any]) -> bool:
    return any(text and FAIL_JOB_HOOK in text for text in (fields.get("prompt"), fields.get("structured_prompt")))


@router.post(Paths.V2_IMAGE)
async def generate_image(request: Request) -> Response:
    """``POST /v2/image/generate/tailored`` -> 202 ``{request_id, status_url}`` or 200 (``sync=true``).

    :param request: the HTTP request.
    """
    body = await json_body(request, err=v2_error)
    fields = _v2_common(body)
    aspect = get_str(body, "aspect_ratio", err=v2_error)
    negative = get_str(body, "negative_prompt", err=v2_error)
    get_bool(body, "visual_output_content_moderation", True, err=v2_error)
    get_str(body, "webhook_url", err=v2_error)
    numbers = {name: body.get(name) for name in ("tailored_model_influence", "guidance_scale", "steps_num")}
    try:
        validate_v2_generation(
            prompt=fields["prompt"],
            structured_prompt=fields["structured_prompt"],
            aspect_ratio=aspect,
            numbers=numbers,
            seed=fields["seed"],
        )
    except BriaInputError as exc:
        raise input_error(exc, err=v2_error) from None
    _moderate(fields)
    rt, base = runtime(request), base_url(request)
    aspect = aspect or DEFAULT_ASPECT_RATIO
    seed = fields["seed"] if fields["seed"] is not None else rt.random_seed()
    with rt.store.tx() as tx:
        model = _v2_model(tx, body.get("tailored_model_id"))
        palette, schema = _palette(tx, model)
        prompt, given = fields["prompt"], fields["structured_prompt"]
        if given and prompt:
            structured = media.refine(given, prompt) if isinstance(json.loads(given), dict) else given
        else:
            structured = given or media.structured_prompt(prompt or "", schema)
        rid = uuid.uuid4().hex
        key = json.dumps([model["id"], structured, seed, aspect, negative, numbers], sort_keys=True)
        job: dict[str, Any] = {"id": rid, "kind": "image", "model_id": model["id"]}
        if _fails(fields):
            job.update(outcome="ERROR", error=FAIL_JOB_ERROR, result={})
        else:
            job.update(
                outcome="COMPLETED",
                error=None,
                _image_file=unguessable(f"gen-{rid}", ".png"),
                result={"seed": seed, "structured_prompt": structured, **({"prompt": prompt} if prompt else {})},
            )
        _store_job(tx, rt, job, sync=fields["sync"])
        if job["outcome"] == "COMPLETED":
            tx.put_file(
                job["_image_file"],
                "image/png",
                recipe=media.generation_recipe(key, aspect, palette),
                available_at=job["ready_at"],
            )
    return _sync_body(job, base) if fields["sync"] else _accepted(job, base)


@router.post(Paths.V2_STRUCTURED_PROMPT)
async def generate_structured_prompt(request: Request) -> Response:
    """``POST /v2/structured_prompt/generate/tailored``: ``prompt``, or ``structured_prompt`` + ``prompt``.

    :param request: the HTTP request.
    """
    body = await json_body(request, err=v2_error)
    fields = _v2_common(body)
    if not (fields["prompt"] and fields["prompt"].strip()):
        raise v2_error(400, "prompt is required (alone, or with structured_prompt to refine it)")
    try:
        validate_v2_generation(
            prompt=fields["prompt"], structured_prompt=fields["structured_prompt"], seed=fields["seed"]
        )
    except BriaInputError as exc:
        raise input_error(exc, err=v2_error) from None
    _moderate(fields)
    rt, base = runtime(request), base_url(request)
    seed = fields["seed"] if fields["seed"] is not None else rt.random_seed()
    with rt.store.tx() as tx:
        model = _v2_model(tx, body.get("tailored_model_id"))
        _, schema = _palette(tx, model)
        given = fields["structured_prompt"]
        if given and isinstance(json.loads(given), dict):
            structured = media.refine(given, fields["prompt"])
        else:
            structured = media.structured_prompt(fields["prompt"], schema)
        rid = uuid.uuid4().hex
        job: dict[str, Any] = {"id": rid, "kind": "structured_prompt", "model_id": model["id"]}
        if _fails(fields):
            job.update(outcome="ERROR", error=FAIL_JOB_ERROR, result={})
        else:
            job.update(outcome="COMPLETED", error=None, result={"seed": seed, "structured_prompt": structured})
        _store_job(tx, rt, job, sync=fields["sync"])
    return _sync_body(job, base) if fields["sync"] else _accepted(job, base)


@router.post(Paths.V2_IMAGE_TO_VIDEO)
async def image_to_video(request: Request) -> Response:
    """``POST /v2/video/generate/tailored/image-to-video`` -> always 202; the result is an MP4.

    :param request: the HTTP request.
    """
    body = await json_body(request, err=v2_error)
    raw_model = body.get("tailored_model_id", body.get("model_id"))
    image = get_str(body, "image", required=True, err=v2_error)
    seed = get_int(body, "seed", err=v2_error)
    rt, base = runtime(request), base_url(request)
    with rt.store.read() as tx:
        _v2_model(tx, raw_model, video=True)
    try:
        policy = rt.fetch_policy()
        data, _ = await run_in_threadpool(image_bytes, image, max_bytes=MAX_IMAGE_BYTES, policy=policy)
        analysis = await run_in_threadpool(media.analyse, data)
    except FetchError as exc:
        raise v2_error(exc.status, exc.text) from None
    except media.MediaError as exc:
        raise v2_error(exc.status, exc.text) from None
    seed = seed if seed is not None else rt.random_seed()
    with rt.store.tx() as tx:
        model = _v2_model(tx, raw_model, video=True)
        rid = uuid.uuid4().hex
        source = unguessable(f"gen-{rid}", f"-source.{media.extension_of(analysis['format'])}")
        job = {
            "id": rid,
            "kind": "video",
            "model_id": model["id"],
            "outcome": "COMPLETED",
            "error": None,
            "_video_file": unguessable(f"gen-{rid}", ".mp4"),
            "result": {"seed": seed},
        }
        _store_job(tx, rt, job, sync=False)
        tx.put_file(source, media.content_type_of(analysis["format"]), data=data, owner=f"job:{rid}")
        tx.put_file(
            job["_video_file"],
            "video/mp4",
            recipe={"kind": "video", "seed": seed, "source": source},
            available_at=job["ready_at"],
            owner=f"job:{rid}",
        )
    return _accepted(job, base)


@router.get("/v2/status/{request_id}")
async def job_status(request: Request, request_id: str) -> Response:
    """``GET /v2/status/{request_id}``: 200 for every job state, 404 ``{"status": "NOT_FOUND"}`` otherwise.

    :param request: the HTTP request.
    :param request_id: the v2 request id (path).
    """
    status, body = status_reply(runtime(request), request_id, base_url(request))
    return respond(body, status)


# --------------------------------------------------------------------------------------------
# Legacy v1
# --------------------------------------------------------------------------------------------


async def _legacy(request: Request, model_id: str, *, vector: bool) -> Response:
    mid = parse_id(model_id, "Model")
    body = await json_body(request)
    prompt = get_str(body, "prompt", required=True)
    count = get_int(body, "num_results") or 1
    if not 1 <= count <= V1_MAX_RESULTS:
        raise v1_error(400, f"num_results must be between 1 and {V1_MAX_RESULTS}")
    aspect = get_str(body, "aspect_ratio") or DEFAULT_ASPECT_RATIO
    if aspect not in ASPECT_RATIOS:
        raise v1_error(400, f"Invalid aspect_ratio {aspect!r}; expected one of: {', '.join(ASPECT_RATIOS)}")
    sync = get_bool(body, "sync", True)
    seed = get_int(body, "seed")
    with_prefix = get_bool(body, "include_generation_prefix", True)
    moderate = get_bool(body, "content_moderation", False)
    for index in (1, 2):
        method = body.get(f"guidance_method_{index}")
        if method is not None and method not in LEGACY_GUIDANCE_METHODS:
            raise v1_error(400, f"Invalid guidance_method_{index} {method!r}")
    if moderate and MODERATION_WORD.search(prompt):
        raise v1_error(422, "The prompt failed content moderation (emulator test hook 'forbidden')")
    rt, base = runtime(request), base_url(request)
    with rt.store.tx() as tx:
        doc = tx.get("models", mid)
        if doc is None or doc["status"] == MODEL_DELETED:
            raise v1_error(404, "Model not found")
        model = resolve_model(doc)
        if not ModelStatus.parse(model["status"]).is_success:
            raise v1_error(400, f"Model {mid} is not ready for generation (status {model['status']})")
        if not _is_legacy(model):
            raise v1_error(400, f"Model {mid} is a FIBO model; use {Paths.V2_IMAGE}")
        if FAIL_JOB_HOOK in prompt:
            raise v1_error(500, "Generation failed (emulator test hook 'fail-job')")
        palette, _ = _palette(tx, model)
        full = f"{model.get('generation_prefix') or ''} {prompt}".strip() if with_prefix else prompt
        ready = now() if sync else now() + rt.settings.job_seconds
        results = []
        for index in range(count):
            item_seed = seed + index if seed is not None else rt.random_seed()
            uid = uuid.uuid4().hex
            key = json.dumps([mid, full, item_seed, aspect, body.get("negative_prompt")])
            recipe = media.generation_recipe(key, aspect, palette)
            if vector:
                name, ctype = unguessable(f"v1-{uid}", ".svg"), "image/svg+xml"
                recipe["kind"] = "svg"
            else:
                name, ctype = unguessable(f"v1-{uid}", ".png"), "image/png"
            tx.put_file(name, ctype, recipe=recipe, available_at=ready)
            results.append({"urls": [file_url(base, name)], "seed": item_seed, "uuid": uid})
        tx.incr("generation_jobs")
    return respond({"result": results})


@router.post(Paths.v1_text_to_image("{model_id}"))
async def text_to_image_legacy(request: Request, model_id: str) -> Response:
    """``POST /v1/text-to-image/tailored/{model_id}`` -> ``{"result": [{"urls": [...], "seed", "uuid"}]}``.

    :param request: the HTTP request.
    :param model_id: the model id (path).
    """
    return await _legacy(request, model_id, vector=False)


@router.post("/v1/text-to-vector/tailored/{model_id}")
async def text_to_vector_legacy(request: Request, model_id: str) -> Response:
    """``POST /v1/text-to-vector/tailored/{model_id}``: as text-to-image, with SVG results.

    :param request: the HTTP request.
    :param model_id: the model id (path).
    """
    return await _legacy(request, model_id, vector=True)
