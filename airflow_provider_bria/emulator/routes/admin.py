"""Emulator-only routes under ``/_emulator/`` (absent from Bria's API; no token, never faulted).

- ``GET /_emulator/health``; ``GET /_emulator/state``: counts, duplicates, trainings per model, settings;
- ``POST /_emulator/reset``: empty state, start-up timing and faults restored;
- ``POST /_emulator/models/{id}/status`` ``{"status": "Failed"}``: force a model status;
- ``GET /_emulator/requests?path_prefix=/v2/``: the request log;
- ``POST /_emulator/faults`` ``{"fault_rate", "seed", "rules"}`` (the whole fault configuration);
  ``GET /_emulator/faults`` (with each rule's ``matched``/``fired`` counters); ``POST /_emulator/settings``
  ``{"training_seconds", "job_seconds"}``;
- ``GET /_emulator/files/{name}``: images, videos, ZIPs and weights (the role of Bria's pre-signed URLs).
"""

from __future__ import annotations

import io
import json
import urllib.parse
import zipfile
from collections import Counter
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from airflow_provider_bria.contract import ModelStatus
from airflow_provider_bria.emulator import media
from airflow_provider_bria.emulator.fetch import FetchError
from airflow_provider_bria.emulator.gateway import fault_rules
from airflow_provider_bria.emulator.routes._common import json_body, parse_id, respond, runtime, v1_error
from airflow_provider_bria.emulator.runtime import Runtime
from airflow_provider_bria.emulator.views import FILES_PREFIX, enter_status, now, resolve_model
from airflow_provider_bria.exceptions import BriaInputError

router = APIRouter(prefix="/_emulator")


@router.get("/health")
async def health() -> Response:
    """Liveness probe."""
    return respond({"status": "ok"})


def _duplicates(items: list[tuple[Any, ...]]) -> list[Any]:
    counts = Counter(items)
    return sorted([list(k) if len(k) > 1 else k[0] for k, n in counts.items() if n > 1], key=str)


def state_report(rt: Runtime) -> dict[str, Any]:
    """The ``/_emulator/state`` body.

    :param rt: the runtime.
    """
    with rt.store.read() as tx:
        projects = tx.select("projects")
        datasets = tx.select("datasets")
        models = [resolve_model(m) for m in tx.select("models")]
        images = tx.rows("SELECT dataset_id, sha256 FROM images")
        trainings = tx.rows("SELECT id, value FROM counters WHERE id LIKE 'trainings:%'")
        counters = {name: tx.counter(name) for name in ("trainings_started", "generation_jobs")}
        jobs = tx.count("jobs")
        bulk = {j["id"]: j["status"] for j in tx.select("bulk_jobs")}
    return {
        "counts": {
            "projects": len(projects),
            "datasets": len(datasets),
            "images": len(images),
            "models": len(models),
            "trainings_started": counters["trainings_started"],
            "generation_jobs": counters["generation_jobs"],
            "requests": rt.request_count,
            "faults_injected": rt.fault_count,
        },
        "duplicates": {
            "projects": _duplicates([(p["project_name"],) for p in projects]),
            "datasets": _duplicates([(d["project_id"], d["name"]) for d in datasets]),
            "models": _duplicates([(m["dataset_id"], m["name"]) for m in models]),
            "images": _duplicates([(row[0], row[1]) for row in images]),
        },
        "trainings_per_model": {name.split(":", 1)[1]: value for name, value in trainings},
        "models_by_status": dict(Counter(m["status"] for m in models)),
        "bulk_uploads": {str(k): v for k, v in bulk.items()},
        "v2_jobs": jobs,
        "settings": rt.settings.public(),
    }


@router.get("/state")
async def state(request: Request) -> Response:
    """``GET /_emulator/state``.

    :param request: the HTTP request.
    """
    return respond(state_report(runtime(request)))


@router.post("/reset")
async def reset(request: Request) -> Response:
    """``POST /_emulator/reset`` (also removes the targeted fault rules).

    :param request: the HTTP request.
    """
    runtime(request).reset()
    fault_rules(runtime(request)).clear()
    return respond({"status": "reset"})


@router.post("/models/{model_id}/status")
async def set_model_status(request: Request, model_id: str) -> Response:
    """``POST /_emulator/models/{id}/status`` ``{"status": "<ModelStatus>"}``: force a training outcome.

    :param request: the HTTP request.
    :param model_id: the model id (path).
    """
    mid = parse_id(model_id, "Model")
    body = await json_body(request)
    try:
        status = ModelStatus.parse(str(body.get("status") or ""))
    except BriaInputError as exc:
        raise v1_error(400, str(exc)) from None
    with runtime(request).store.tx() as tx:
        doc = tx.get("models", mid)
        if doc is None:
            raise v1_error(404, "Model not found")
        doc = dict(resolve_model(doc))
        doc["_next"] = []
        enter_status(doc, status.value, now())
        tx.put("models", doc)
    return respond({"id": mid, "status": status.value})


@router.get("/requests")
async def requests_log(request: Request) -> Response:
    """``GET /_emulator/requests?path_prefix=...``.

    :param request: the HTTP request.
    """
    return respond(runtime(request).requests(request.query_params.get("path_prefix")))


def _faults_report(rt: Runtime) -> dict[str, Any]:
    return {**rt.settings.public(), "rules": fault_rules(rt).to_json()}


@router.get("/faults")
async def get_faults(request: Request) -> Response:
    """``GET /_emulator/faults``: the settings plus ``rules`` with their ``matched``/``fired`` counters.

    :param request: the HTTP request.
    """
    return respond(_faults_report(runtime(request)))


@router.post("/faults")
async def set_faults(request: Request) -> Response:
    """``POST /_emulator/faults`` ``{"fault_rate": 0.2, "seed": 1, "rules": [...]}``: the whole fault configuration.

    ``rules`` (absent: none) are targeted faults, e.g. ``{"method": "POST", "path_regex": "/start_training$",
    "phase": "after", "kind": "drop", "nth": 1, "times": 1}``; they apply before the random ``fault_rate``.
    Nothing changes when any value is invalid (400).

    :param request: the HTTP request.
    """
    body = await json_body(request)
    rate, seed, rules = body.get("fault_rate", 0.0), body.get("seed"), body.get("rules") or []
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
        raise v1_error(400, "fault_rate must be a number between 0 and 1")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise v1_error(400, "seed must be an integer")
    if not isinstance(rules, list):
        raise v1_error(400, "rules must be a list of rule objects")
    rt = runtime(request)
    try:
        fault_rules(rt).replace(rules)
    except ValueError as exc:
        raise v1_error(400, str(exc)) from None
    rt.set_faults(float(rate), seed)
    return respond(_faults_report(rt))


@router.post("/settings")
async def set_settings(request: Request) -> Response:
    """``POST /_emulator/settings`` ``{"training_seconds": 0.5, "job_seconds": 0.1}`` (reset restores them).

    :param request: the HTTP request.
    """
    body = await json_body(request)
    values = {}
    for name in ("training_seconds", "job_seconds"):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise v1_error(400, f"{name} must be a non-negative number")
        values[name] = float(value)
    runtime(request).set_timing(**values)
    return respond(runtime(request).settings.public())


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def _dataset_zip(rt: Runtime, dataset_id: int) -> bytes:
    with rt.store.read() as tx:
        images = tx.select("images", dataset_id=dataset_id)
        blobs = [(i["image_name"], i["id"], (tx.get_file(i["_file"]) or {}).get("data")) for i in images]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        used: set[str] = set()
        for name, image_id, data in blobs:
            if data is None:
                continue
            entry = name if name not in used else f"{image_id}-{name}"
            used.add(entry)
            archive.writestr(entry, data)
    return buf.getvalue()


def _dataset_captions(rt: Runtime, dataset_id: int) -> bytes:
    with rt.store.read() as tx:
        images = tx.select("images", dataset_id=dataset_id)
    return json.dumps({i["image_name"]: i["caption"] for i in images}, indent=2).encode()


def _render(rt: Runtime, name: str, stored: dict[str, Any]) -> bytes:
    recipe = stored["recipe"]
    kind = recipe["kind"]
    if kind == "dataset_zip":
        return _dataset_zip(rt, int(recipe["dataset_id"]))
    if kind == "dataset_captions":
        return _dataset_captions(rt, int(recipe["dataset_id"]))
    cached = rt.cached(name)
    if cached is not None:
        return cached
    source = None
    if recipe.get("source"):
        with rt.store.read() as tx:
            source = (tx.get_file(recipe["source"]) or {}).get("data")
        if source is None:
            raise v1_error(404, "File not found")
    data = media.render(recipe, source)
    rt.cache(name, data)
    return data


def own_file_bytes(rt: Runtime, url: str) -> bytes | None:
    """The bytes behind a URL of this emulator's ``/_emulator/files/``, or ``None`` for any other URL.

    :param rt: the runtime.
    :param url: an absolute http(s) URL.
    :raises FetchError: 422 when it is one of ours but does not exist (yet).
    """
    parts = urllib.parse.urlsplit(url)
    if not parts.path.startswith(FILES_PREFIX) or not rt.settings.host_allowed(parts.netloc):
        return None
    if (parts.port or (443 if parts.scheme == "https" else 80)) != rt.settings.port:
        return None
    name = urllib.parse.unquote(parts.path[len(FILES_PREFIX) :])
    with rt.store.read() as tx:
        stored = tx.get_file(name)
    if stored is None or now() < stored["available_at"]:
        raise FetchError(422, "Could not download the URL: HTTP 404")
    return stored["data"] if stored["data"] is not None else _render(rt, name, stored)


@router.get("/files/{name}")
async def get_file(request: Request, name: str) -> Response:
    """``GET /_emulator/files/{name}``: 404 until the file exists and its job is ready.

    :param request: the HTTP request.
    :param name: the file name (path).
    """
    rt = runtime(request)
    with rt.store.read() as tx:
        stored = tx.get_file(name)
    if stored is None or now() < stored["available_at"]:
        raise v1_error(404, "File not found")
    data = stored["data"]
    if data is None:
        data = await run_in_threadpool(_render, rt, name, stored)
    headers = {"Cache-Control": "no-store"}
    if name.endswith((".zip", ".safetensors", ".json")):
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return Response(content=data, media_type=stored["content_type"], headers=headers)
