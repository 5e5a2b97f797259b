"""Datasets (contract §4.1-4.8): create, list, get, update (schema, prefix, completion), delete, clone, download."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response

from airflow_provider_bria.contract import (
    MAX_IMAGES_QUERY_MAX,
    MAX_IMAGES_QUERY_MIN,
    DatasetStatus,
    Paths,
    TrainingFamily,
    UploadType,
    all_values,
    canonical_training_version,
    check_family_compatible,
    training_family,
)
from airflow_provider_bria.emulator import media
from airflow_provider_bria.emulator.routes._common import (
    base_url,
    get_int,
    get_str,
    input_error,
    json_body,
    parse_id,
    query_bool,
    require_path_variant,
    respond,
    runtime,
    v1_error,
)
from airflow_provider_bria.emulator.spec_rules import DEFAULT_DATASET_TRAINING_VERSION, MIN_IMAGES_TO_COMPLETE
from airflow_provider_bria.emulator.store import Tx
from airflow_provider_bria.emulator.views import (
    dataset_view,
    file_url,
    image_view,
    is_training,
    iso,
    model_view,
    resolve_model,
    unguessable,
)
from airflow_provider_bria.exceptions import BriaInputError

router = APIRouter()


def load_dataset(tx: Tx, dataset_id: int) -> dict[str, Any]:
    """A dataset or a 404.

    :param tx: the store transaction.
    :param dataset_id: the id.
    """
    doc = tx.get("datasets", dataset_id)
    if doc is None:
        raise v1_error(404, "Dataset not found")
    return doc


def is_fibo(dataset: dict[str, Any]) -> bool:
    """Whether a dataset belongs to the FIBO family.

    :param dataset: the dataset.
    """
    return training_family(dataset["training_version"]) is TrainingFamily.FIBO


def min_images_to_complete(dataset: dict[str, Any]) -> int:
    """Images needed before ``status=completed`` (the spec states 5, FIBO and legacy alike).

    :param dataset: the dataset.
    """
    del dataset
    return MIN_IMAGES_TO_COMPLETE


def bulk_running(tx: Tx, dataset_id: int) -> bool:
    """Whether a bulk upload into the dataset is pending or processing.

    :param tx: the store transaction.
    :param dataset_id: the dataset.
    """
    job = tx.get("bulk_jobs", dataset_id)
    return job is not None and job["status"] in ("pending", "processing")


def delete_dataset_cascade(tx: Tx, dataset_id: int) -> None:
    """Delete a dataset with its images, files and bulk job (caller checked the rules).

    :param tx: the store transaction.
    :param dataset_id: the dataset.
    """
    for image in tx.select("images", dataset_id=dataset_id):
        tx.delete_files(f"image:{image['id']}")
    tx.delete_where("images", "dataset_id", dataset_id)
    tx.delete_files(f"dataset:{dataset_id}")
    tx.delete("bulk_jobs", dataset_id)
    tx.delete("datasets", dataset_id)


def _models_in_training(tx: Tx, dataset_id: int) -> bool:
    return any(is_training(resolve_model(m)) for m in tx.select("models", dataset_id=dataset_id))


@router.post(Paths.DATASETS)
async def create_dataset(request: Request) -> Response:
    """``POST /v1/tailored-gen/datasets`` -> 201; locks an unlocked project to the dataset's family.

    :param request: the HTTP request.
    """
    body = await json_body(request)
    project_id = get_int(body, "project_id", required=True)
    name = get_str(body, "name", required=True)
    upload_type = get_str(body, "upload_type") or UploadType.BASIC.value
    if upload_type not in all_values(UploadType):
        raise v1_error(400, f"Invalid upload_type {upload_type!r}; expected one of: basic, advanced")
    requested = get_str(body, "training_version")
    try:
        version = canonical_training_version(requested) if requested else None
    except BriaInputError as exc:
        raise input_error(exc) from None
    stamp = iso()
    with runtime(request).store.tx() as tx:
        project = tx.get("projects", project_id)
        if project is None:
            raise v1_error(404, "Project not found")
        version = version or project["training_version"] or DEFAULT_DATASET_TRAINING_VERSION
        try:
            check_family_compatible(project["training_version"], version)
        except BriaInputError as exc:
            raise input_error(exc, 400) from None  # the spec lists no 409 for create dataset
        if project["training_version"] is None:
            project.update(training_version=version, updated_at=stamp)
            tx.put("projects", project)
        fibo = training_family(version) is TrainingFamily.FIBO
        doc = {
            "id": tx.next_id("datasets"),
            "project_id": project_id,
            "name": name,
            "description": None,
            "training_version": version,
            "caption_prefix": None if fibo else media.default_caption_prefix(project),
            "visual_schema": None,
            "status": DatasetStatus.DRAFT.value,
            "captions_update_status": "empty",
            "upload_type": upload_type,
            "captions_source": "automatic" if upload_type == UploadType.ADVANCED.value else None,
            "created_at": stamp,
            "updated_at": stamp,
        }
        tx.put("datasets", doc)
    return respond(dataset_view(doc), 201)


@router.get(Paths.DATASETS)
async def list_datasets(request: Request) -> Response:
    """``GET /v1/tailored-gen/datasets`` -> bare array with ``images_count``.

    :param request: the HTTP request.
    """
    with runtime(request).store.read() as tx:
        out = [dataset_view(d, images_count=tx.count("images", dataset_id=d["id"])) for d in tx.select("datasets")]
    return respond(out)


@router.get(Paths.project_datasets("{project_id}"))
async def list_project_datasets(request: Request, project_id: str) -> Response:
    """``GET /v1/tailored-gen/projects/{project_id}/datasets`` (``include_models``, ``include_models_ids``).

    :param request: the HTTP request.
    :param project_id: the project id (path).
    """
    pid = parse_id(project_id, "Project")
    include_models = query_bool(request, "include_models")
    include_ids = query_bool(request, "include_models_ids")
    out = []
    with runtime(request).store.read() as tx:
        if tx.get("projects", pid) is None:
            raise v1_error(404, "Project not found")
        for doc in tx.select("datasets", project_id=pid):
            view = dataset_view(doc, images_count=tx.count("images", dataset_id=doc["id"]))
            if include_models or include_ids:
                models = tx.select("models", dataset_id=doc["id"])
                if include_models:
                    view["models"] = [model_view(m) for m in models]
                if include_ids:
                    view["model_ids"] = [str(m["id"]) for m in models]
            out.append(view)
    return respond(out)


@router.get(Paths.dataset("{dataset_id}"))
async def get_dataset(request: Request, dataset_id: str) -> Response:
    """``GET /v1/tailored-gen/datasets/{dataset_id}`` with ``images`` (``max_images`` 1-200).

    :param request: the HTTP request.
    :param dataset_id: the dataset id (path).
    """
    did = parse_id(dataset_id, "Dataset")
    raw = request.query_params.get("max_images")
    limit = MAX_IMAGES_QUERY_MAX
    if raw is not None:
        if not raw.strip().isdigit() or not MAX_IMAGES_QUERY_MIN <= int(raw) <= MAX_IMAGES_QUERY_MAX:
            bounds = f"{MAX_IMAGES_QUERY_MIN} and {MAX_IMAGES_QUERY_MAX}"
            raise v1_error(400, f"max_images must be an integer between {bounds}")
        limit = int(raw)
    base = base_url(request)
    with runtime(request).store.read() as tx:
        doc = load_dataset(tx, did)
        images = tx.select("images", dataset_id=did)
    rendered = [image_view(i, base) for i in images[:limit]]
    return respond(dataset_view(doc, images_count=len(images), images=rendered))


def _check_visual_schema(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise v1_error(400, "visual_schema must be a string holding a JSON object")
    try:
        parsed = json.loads(value)
    except ValueError:
        raise v1_error(400, "visual_schema is not valid JSON") from None
    if not isinstance(parsed, dict) or not parsed:
        raise v1_error(400, "visual_schema must hold a non-empty JSON object")
    return value


@router.put(Paths.dataset("{dataset_id}"))
async def update_dataset(request: Request, dataset_id: str) -> Response:
    """``PUT /v1/tailored-gen/datasets/{dataset_id}``: name, visual_schema, caption_prefix, status.

    :param request: the HTTP request.
    :param dataset_id: the dataset id (path).
    """
    did = parse_id(dataset_id, "Dataset")
    body = await json_body(request)
    for frozen in ("training_version", "upload_type", "project_id"):
        if frozen in body:
            raise v1_error(400, f"{frozen} cannot be changed")
    name = get_str(body, "name")
    if "name" in body and not (name and name.strip()):
        raise v1_error(400, "name must not be empty")
    status = get_str(body, "status")
    if status is not None and status not in all_values(DatasetStatus):
        raise v1_error(400, f"Invalid status {status!r}; expected one of: draft, completed")
    schema = _check_visual_schema(body.get("visual_schema")) if "visual_schema" in body else None
    prefix = get_str(body, "caption_prefix")
    with runtime(request).store.tx() as tx:
        doc = load_dataset(tx, did)
        completed = doc["status"] == DatasetStatus.COMPLETED.value
        if "visual_schema" in body:
            if not is_fibo(doc):
                raise v1_error(400, "visual_schema is only supported for FIBO datasets")
            if completed:
                raise v1_error(409, "Cannot update visual_schema for a completed dataset")
            doc["visual_schema"] = schema
        if "caption_prefix" in body:
            if is_fibo(doc):
                raise v1_error(400, "caption_prefix is only supported for legacy datasets")
            if completed:
                raise v1_error(409, "Cannot update caption_prefix for a completed dataset")
            doc["caption_prefix"] = prefix
        if status == DatasetStatus.DRAFT.value and completed:
            raise v1_error(409, "A completed dataset cannot return to draft; clone it as a draft instead")
        if status == DatasetStatus.COMPLETED.value and not completed:
            if bulk_running(tx, did):
                raise v1_error(409, "Cannot complete a dataset while a bulk upload is in progress")
            count, needed = tx.count("images", dataset_id=did), min_images_to_complete(doc)
            if count < needed:
                raise v1_error(409, f"Insufficient images to complete: the dataset has {count}, needs {needed}")
            if is_fibo(doc) and not doc.get("visual_schema"):
                raise v1_error(409, "A FIBO dataset needs a visual_schema before it can be completed")
            doc["status"] = DatasetStatus.COMPLETED.value
        if name is not None:
            doc["name"] = name
        doc["updated_at"] = iso()
        tx.put("datasets", doc)
    return respond(dataset_view(doc))


@router.delete(Paths.dataset("{dataset_id}"))
async def delete_dataset(request: Request, dataset_id: str) -> Response:
    """``DELETE /v1/tailored-gen/datasets/{dataset_id}`` -> 204; 409 while a model using it trains.

    :param request: the HTTP request.
    :param dataset_id: the dataset id (path).
    """
    did = parse_id(dataset_id, "Dataset")
    with runtime(request).store.tx() as tx:
        load_dataset(tx, did)
        if _models_in_training(tx, did):
            raise v1_error(409, "Cannot delete dataset while a model using it is in training")
        delete_dataset_cascade(tx, did)
    return respond(None, 204)


@router.post(Paths.dataset_clone("{dataset_id}"))
async def clone_dataset(request: Request, dataset_id: str) -> Response:
    """``POST /v1/tailored-gen/datasets/{dataset_id}/clone`` -> 201 new draft with copied images.

    :param request: the HTTP request.
    :param dataset_id: the dataset id (path).
    """
    did = parse_id(dataset_id, "Dataset")
    body = await json_body(request, allow_empty=True)
    name = get_str(body, "name")
    description = get_str(body, "description")
    base, stamp = base_url(request), iso()
    with runtime(request).store.tx() as tx:
        source = load_dataset(tx, did)
        doc = dict(source)
        doc.pop("_captions_ready_at", None)
        doc.update(
            id=tx.next_id("datasets"),
            name=name if name and name.strip() else f"Copy of {source['name']}",
            description=description if description is not None else source.get("description"),
            status=DatasetStatus.DRAFT.value,
            captions_update_status=source["captions_update_status"],
            created_at=stamp,
            updated_at=stamp,
        )
        tx.put("datasets", doc)
        images = []
        for image in tx.select("images", dataset_id=did):
            copy = dict(image)
            copy.update(id=tx.next_id("images"), dataset_id=doc["id"], created_at=stamp, updated_at=stamp)
            owner = f"image:{copy['id']}"
            stem = f"ds{doc['id']}-img{copy['id']}"
            copy["_file"] = unguessable(stem, "-o-" + image["_file"].split("-o-", 1)[-1])
            copy["_thumb"] = unguessable(stem, "-thumb.png")
            tx.copy_file(image["_file"], copy["_file"], owner=owner)
            tx.put_file(copy["_thumb"], "image/png", recipe={"kind": "thumbnail", "source": copy["_file"]}, owner=owner)
            tx.put("images", copy)
            images.append(image_view(copy, base))
    return respond(dataset_view(doc, images_count=len(images), images=images), 201)


async def _download(request: Request, dataset_id: str) -> Response:
    did = parse_id(dataset_id, "Dataset")
    base = base_url(request)
    with runtime(request).store.tx() as tx:
        doc = load_dataset(tx, did)
        if doc["upload_type"] != UploadType.ADVANCED.value:
            raise v1_error(409, "Download is only supported for advanced dataset types")
        images = tx.select("images", dataset_id=did)
        zip_name = unguessable(f"ds{did}", "-dataset.zip")
        tx.put_file(
            zip_name, "application/zip", recipe={"kind": "dataset_zip", "dataset_id": did}, owner=f"dataset:{did}"
        )
        out: dict[str, Any] = {"download_url": file_url(base, zip_name)}
        if images and all(i.get("caption_source") == "automatic" for i in images):
            captions_name = unguessable(f"ds{did}", "-captions.json")
            tx.put_file(
                captions_name,
                "application/json",
                recipe={"kind": "dataset_captions", "dataset_id": did},
                owner=f"dataset:{did}",
            )
            out["captions_url"] = file_url(base, captions_name)
    return respond(out)


@router.get(Paths.dataset_download("{dataset_id}"))
async def download_dataset(request: Request, dataset_id: str) -> Response:
    """``GET /v1/datasets/{dataset_id}/download`` (the documented path) -> pre-signed-style URLs.

    :param request: the HTTP request.
    :param dataset_id: the dataset id (path).
    """
    require_path_variant(request, "documented")
    return await _download(request, dataset_id)


@router.get(Paths.dataset("{dataset_id}") + "/download")
async def download_dataset_alias(request: Request, dataset_id: str) -> Response:
    """``GET /v1/tailored-gen/datasets/{dataset_id}/download``: alias, in case the documented path is a typo.

    :param request: the HTTP request.
    :param dataset_id: the dataset id (path).
    """
    require_path_variant(request, "alternate")
    return await _download(request, dataset_id)
