"""Schema and caption helpers (contract §5): generate_visual_schema, generate_prefix, refine_structured_prompt.

Synchronous v1 endpoints. Images arrive as http(s) URLs or base64 and are really decoded: the schema and
the prefix are derived from their colours and sizes.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from airflow_provider_bria.contract import (
    PREFIX_IP_TYPES,
    PREFIX_MAX_IMAGES,
    PREFIX_MIN_IMAGES,
    VISUAL_SCHEMA_MAX_IMAGES,
    VISUAL_SCHEMA_MIN_IMAGES,
    DatasetStatus,
    IpMedium,
    IpType,
    Paths,
    all_values,
    validate_image_count,
)
from airflow_provider_bria.emulator import media
from airflow_provider_bria.emulator.fetch import FetchError, FetchPolicy, image_bytes
from airflow_provider_bria.emulator.routes._common import (
    get_bool,
    get_int,
    get_str,
    get_str_list,
    input_error,
    json_body,
    respond,
    runtime,
    v1_error,
)
from airflow_provider_bria.emulator.routes.images import MODERATION_HOOK
from airflow_provider_bria.emulator.settings import MAX_IMAGE_BYTES
from airflow_provider_bria.exceptions import BriaInputError

router = APIRouter()


def _analyse_all(images: list[str], moderate: bool, policy: FetchPolicy) -> list[dict[str, Any]]:
    """Decode and analyse every image (worker thread)."""
    out = []
    for value in images:
        try:
            data, name = image_bytes(value, max_bytes=MAX_IMAGE_BYTES, policy=policy)
        except FetchError as exc:
            raise v1_error(exc.status, exc.text) from None
        if moderate and name and MODERATION_HOOK in name.lower():
            raise v1_error(422, "Content moderation failed for an input image (emulator test hook 'moderation-block')")
        try:
            out.append(media.analyse(data))
        except media.MediaError as exc:
            raise v1_error(exc.status, exc.text) from None
    return out


@router.post(Paths.GENERATE_VISUAL_SCHEMA)
async def generate_visual_schema(request: Request) -> Response:
    """``POST /v1/tailored-gen/generate_visual_schema`` (5-10 images) -> ``{"visual_schema": "<JSON>"}``.

    :param request: the HTTP request.
    """
    body = await json_body(request)
    images = get_str_list(body, "images")
    if images is None:
        raise v1_error(400, "images is required")
    try:
        validate_image_count(
            len(images),
            minimum=VISUAL_SCHEMA_MIN_IMAGES,
            maximum=VISUAL_SCHEMA_MAX_IMAGES,
            what="generate_visual_schema",
        )
    except BriaInputError as exc:
        raise input_error(exc) from None
    moderate = get_bool(body, "content_moderation", False)
    analyses = await run_in_threadpool(_analyse_all, images, moderate, runtime(request).fetch_policy())
    return respond({"visual_schema": media.visual_schema(analyses)})


@router.post(Paths.GENERATE_PREFIX)
async def generate_prefix(request: Request) -> Response:
    """``POST /v1/tailored-gen/generate_prefix`` (legacy; 1-6 images) -> ``{"prefix": "..."}``.

    :param request: the HTTP request.
    """
    body = await json_body(request)
    urls, encoded = get_str_list(body, "image_urls"), get_str_list(body, "images")
    if (urls is None) == (encoded is None):
        raise v1_error(400, "Provide exactly one of image_urls or images")
    images = urls if urls is not None else encoded
    assert images is not None
    try:
        validate_image_count(len(images), minimum=PREFIX_MIN_IMAGES, maximum=PREFIX_MAX_IMAGES, what="generate_prefix")
    except BriaInputError as exc:
        raise input_error(exc) from None
    if urls is not None and not all(u.startswith(("http://", "https://")) for u in urls):
        raise v1_error(400, "image_urls must be http(s) URLs")
    ip_type, ip_medium = get_str(body, "ip_type", required=True), get_str(body, "ip_medium", required=True)
    if ip_type not in {t.value for t in PREFIX_IP_TYPES}:
        allowed = ", ".join(sorted(t.value for t in PREFIX_IP_TYPES))
        raise v1_error(400, f"ip_type {ip_type!r} is not supported by generate_prefix; expected one of: {allowed}")
    if ip_medium not in all_values(IpMedium):
        raise v1_error(400, f"Invalid ip_medium {ip_medium!r}; expected one of: photography, illustration")
    ip_name = get_str(body, "ip_name")
    if ip_type == IpType.DEFINED_CHARACTER.value and not (ip_name and ip_name.strip()):
        raise v1_error(400, "ip_name is required for ip_type 'defined_character'")
    moderate = get_bool(body, "content_moderation", False)
    analyses = await run_in_threadpool(_analyse_all, images, moderate, runtime(request).fetch_policy())
    prefix = media.caption_prefix(ip_type=ip_type, ip_medium=ip_medium, ip_name=ip_name, analyses=analyses)
    return respond({"prefix": prefix})


@router.post(Paths.REFINE_STRUCTURED_PROMPT)
async def refine_structured_prompt(request: Request) -> Response:
    """``POST /v1/tailored-gen/refine_structured_prompt`` -> ``{"structured_prompt": "<JSON>"}`` (not saved).

    :param request: the HTTP request.
    """
    body = await json_body(request)
    dataset_id = get_int(body, "dataset_id", required=True)
    structured = get_str(body, "structured_prompt", required=True)
    instruction = get_str(body, "instruction", required=True)
    get_str_list(body, "context_images")
    try:
        parsed = json.loads(structured)
    except ValueError:
        raise v1_error(400, "structured_prompt must be a string holding valid JSON") from None
    if not isinstance(parsed, dict):
        raise v1_error(400, "structured_prompt must hold a JSON object")
    with runtime(request).store.read() as tx:
        dataset = tx.get("datasets", dataset_id)
    if dataset is None:
        raise v1_error(404, "Dataset not found")
    if dataset["status"] != DatasetStatus.DRAFT.value:
        raise v1_error(400, "refine_structured_prompt needs a draft dataset")  # the spec lists no 409 here
    return respond({"structured_prompt": media.refine(structured, instruction)})
