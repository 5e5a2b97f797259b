"""Dataset images (contract §4.9-4.14): upload (JSON base64, JSON image_url, multipart), list, get,
caption updates, regenerate all captions, delete."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from airflow_provider_bria.contract import BASIC_MAX_IMAGES, DatasetStatus, UploadType, check_resolution
from airflow_provider_bria.emulator import errors, media
from airflow_provider_bria.emulator.fetch import FetchError, fetch, url_basename
from airflow_provider_bria.emulator.routes._common import (
    base_url,
    get_bool,
    get_str,
    json_body,
    parse_id,
    respond,
    runtime,
    v1_error,
)
from airflow_provider_bria.emulator.routes.datasets import is_fibo, load_dataset
from airflow_provider_bria.emulator.settings import MAX_IMAGE_BYTES
from airflow_provider_bria.emulator.store import Tx
from airflow_provider_bria.emulator.views import dataset_view, image_view, iso, now, unguessable
from airflow_provider_bria.exceptions import BriaInputError

router = APIRouter()

MODERATION_HOOK = "moderation-block"
#: The fields the spec documents for the 202 of Regenerate All Captions (and no others).
REGENERATE_202_FIELDS = (
    "id",
    "project_id",
    "name",
    "visual_schema",
    "status",
    "captions_update_status",
    "created_at",
    "updated_at",
)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    """A file-name-safe version of an image name.

    :param name: the image name.
    """
    return _UNSAFE.sub("_", name).strip("._")[:100] or "image"


def caption_for(dataset: dict[str, Any], analysis: dict[str, Any], image_name: str) -> tuple[str | None, str]:
    """The automatic caption of an image and its ``caption_source``.

    FIBO: a JSON caption derived from the visual schema, or ``None``/``pending`` when there is no schema yet.
    Legacy: text continuing the dataset's caption prefix.

    :param dataset: the image's dataset.
    :param analysis: the image's :func:`~airflow_provider_bria.emulator.media.analyse` result.
    :param image_name: the image name.
    """
    if is_fibo(dataset):
        if not dataset.get("visual_schema"):
            return None, "pending"
        return media.fibo_caption(dataset["visual_schema"], analysis, image_name), "automatic"
    return media.legacy_caption(dataset.get("caption_prefix"), analysis, image_name), "automatic"


def add_image(
    tx: Tx,
    dataset: dict[str, Any],
    *,
    data: bytes,
    analysis: dict[str, Any],
    image_name: str,
    source_url: str | None,
    caption: tuple[str | None, str] | None = None,
) -> dict[str, Any]:
    """Insert an image, its files, and update the dataset's caption status (inside the caller's transaction).

    :param tx: the store transaction.
    :param dataset: the dataset (updated in place and stored).
    :param data: the image bytes.
    :param analysis: the image analysis.
    :param image_name: the image name.
    :param source_url: the URL it was fetched from, if any.
    :param caption: a given ``(caption, source)``; automatic when ``None``.
    """
    image_id, stamp = tx.next_id("images"), iso()
    text, source = caption if caption is not None else caption_for(dataset, analysis, image_name)
    doc = {
        "id": image_id,
        "dataset_id": dataset["id"],
        "caption": text,
        "caption_source": source,
        "upload_source_url": source_url,
        "image_name": image_name,
        "image_url": None,
        "thumbnail_url": None,
        "created_at": stamp,
        "updated_at": stamp,
        "sha256": hashlib.sha256(data).hexdigest(),
        "_file": unguessable(f"ds{dataset['id']}-img{image_id}", f"-o-{safe_name(image_name)}"),
        "_thumb": unguessable(f"ds{dataset['id']}-img{image_id}", "-thumb.png"),
        "_analysis": analysis,
    }
    owner = f"image:{image_id}"
    tx.put_file(doc["_file"], media.content_type_of(analysis["format"]), data=data, owner=owner)
    tx.put_file(doc["_thumb"], "image/png", recipe={"kind": "thumbnail", "source": doc["_file"]}, owner=owner)
    tx.put("images", doc)
    if text is not None and dataset["captions_update_status"] == "empty":
        dataset["captions_update_status"] = "completed"
    dataset["updated_at"] = stamp
    tx.put("datasets", dataset)
    return doc


def _check_can_add(tx: Tx, dataset_id: int) -> dict[str, Any]:
    dataset = load_dataset(tx, dataset_id)
    if dataset["upload_type"] != UploadType.BASIC.value:
        raise v1_error(400, "Image upload is only supported for basic datasets; use bulk-upload for advanced datasets")
    if dataset["status"] == DatasetStatus.COMPLETED.value:
        raise v1_error(409, "Cannot upload images to a completed dataset")
    if tx.count("images", dataset_id=dataset_id) >= BASIC_MAX_IMAGES:
        raise v1_error(409, f"The dataset already has the maximum of {BASIC_MAX_IMAGES} images")
    return dataset


async def _upload_fields(request: Request) -> dict[str, Any]:
    """Read an upload request in either encoding into ``file`` (bytes), ``image_url``, ``image_name``, flags."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        fields: dict[str, Any] = {}
        upload = form.get("file")
        if upload is not None and not isinstance(upload, str):
            fields["file"] = await upload.read()
            fields["filename"] = upload.filename
        elif isinstance(upload, str) and upload:
            fields["file_b64"] = upload
        for name in ("image_url", "image_name", "increase_resolution", "content_moderation"):
            value = form.get(name)
            if isinstance(value, str) and value != "":
                fields[name] = value
        return fields
    body = await json_body(request)
    fields = {
        name: body[name]
        for name in ("image_url", "image_name", "increase_resolution", "content_moderation")
        if body.get(name) is not None
    }
    if body.get("file") is not None:
        if not isinstance(body["file"], str):
            raise v1_error(400, "file must be a base64 string")
        fields["file_b64"] = body["file"]
    return fields


def _decode_b64(text: str) -> bytes:
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise v1_error(422, "file is not valid base64 image data") from None
    if not data:
        raise v1_error(422, "file is empty")
    return data


def _prepare(data: bytes, increase_resolution: bool) -> dict[str, Any]:
    """Decode and check an image (worker thread); its analysis."""
    if len(data) > MAX_IMAGE_BYTES:
        raise v1_error(413, f"Image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
    try:
        analysis = media.analyse(data)
    except media.MediaError as exc:
        raise v1_error(exc.status, exc.text) from None
    try:
        check_resolution(analysis["width"], analysis["height"], increase_resolution=increase_resolution)
    except BriaInputError as exc:
        raise v1_error(412, str(exc)) from None
    return analysis


@router.post("/v1/tailored-gen/datasets/{dataset_id}/images")
async def upload_image(request: Request, dataset_id: str) -> Response:
    """``POST .../datasets/{dataset_id}/images`` -> 201 image (basic datasets only).

    :param request: the HTTP request.
    :param dataset_id: the dataset id (path).
    """
    did = parse_id(dataset_id, "Dataset")
    fields = await _upload_fields(request)
    increase = get_bool(fields, "increase_resolution", True)
    moderate = get_bool(fields, "content_moderation", False)
    image_url = get_str(fields, "image_url")
    image_name = get_str(fields, "image_name")
    has_file = "file" in fields or "file_b64" in fields
    if has_file == bool(image_url):
        raise v1_error(400, "Exactly one of file or image_url is required")
    rt = runtime(request)
    with rt.store.read() as tx:
        _check_can_add(tx, did)
    if image_url:
        if not image_url.startswith(("http://", "https://")):
            raise v1_error(422, "image_url must be a public http(s) URL")
        try:
            policy = rt.fetch_policy()
            data = await run_in_threadpool(fetch, image_url, max_bytes=MAX_IMAGE_BYTES, policy=policy)
        except FetchError as exc:
            raise v1_error(exc.status, exc.text) from None
        default_name = url_basename(image_url)
    else:
        data = fields["file"] if "file" in fields else _decode_b64(fields["file_b64"])
        default_name = fields.get("filename") or ""
    analysis = await run_in_threadpool(_prepare, data, increase)
    name = (image_name or default_name or "").strip()
    if not name or "." not in name:
        name = f"{name or 'image'}.{media.extension_of(analysis['format'])}"
    if moderate and MODERATION_HOOK in name.lower():
        raise v1_error(422, "Content moderation failed: the image was flagged (emulator test hook 'moderation-block')")
    with rt.store.tx() as tx:
        dataset = _check_can_add(tx, did)
        doc = add_image(tx, dataset, data=data, analysis=analysis, image_name=name, source_url=image_url)
    return respond(image_view(doc, base_url(request)), 201)


@router.get("/v1/tailored-gen/datasets/{dataset_id}/images")
async def list_images(request: Request, dataset_id: str) -> Response:
    """``GET .../datasets/{dataset_id}/images`` -> bare array.

    :param request: the HTTP request.
    :param dataset_id: the dataset id (path).
    """
    did = parse_id(dataset_id, "Dataset")
    base = base_url(request)
    with runtime(request).store.read() as tx:
        load_dataset(tx, did)
        images = tx.select("images", dataset_id=did)
    return respond([image_view(i, base) for i in images])


@router.put("/v1/tailored-gen/datasets/{dataset_id}/images")
async def regenerate_all_captions(request: Request, dataset_id: str) -> Response:
    """``PUT .../datasets/{dataset_id}/images`` -> 202 dataset with ``captions_update_status: in_progress``.

    :param request: the HTTP request.
    :param dataset_id: the dataset id (path).
    """
    did = parse_id(dataset_id, "Dataset")
    rt = runtime(request)
    with rt.store.tx() as tx:
        dataset = load_dataset(tx, did)
        if dataset["status"] == DatasetStatus.COMPLETED.value:
            raise v1_error(400, "Cannot regenerate captions of a completed dataset")  # the spec lists no 409
        if is_fibo(dataset) and not dataset.get("visual_schema"):
            raise v1_error(400, "The dataset has no visual_schema yet; set it before regenerating captions")
        stamp = iso()
        for image in tx.select("images", dataset_id=did):
            text, source = caption_for(dataset, image["_analysis"], image["image_name"])
            image.update(caption=text, caption_source=source, updated_at=stamp)
            tx.put("images", image)
        dataset.update(
            captions_update_status="completed", updated_at=stamp, _captions_ready_at=now() + rt.settings.job_seconds
        )
        tx.put("datasets", dataset)
    view = dataset_view(dataset)
    return respond({key: view[key] for key in REGENERATE_202_FIELDS if key in view}, 202)


def _load_image(tx: Tx, dataset_id: int, image_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    dataset = tx.get("datasets", dataset_id)
    image = tx.get("images", image_id)
    if dataset is None or image is None or image["dataset_id"] != dataset_id:
        raise v1_error(404, "Image or dataset not found")
    return dataset, image


@router.get("/v1/tailored-gen/datasets/{dataset_id}/images/{image_id}")
async def get_image(request: Request, dataset_id: str, image_id: str) -> Response:
    """``GET .../datasets/{dataset_id}/images/{image_id}``.

    :param request: the HTTP request.
    :param dataset_id: the dataset id (path).
    :param image_id: the image id (path).
    """
    did, iid = parse_id(dataset_id, "Image or dataset"), parse_id(image_id, "Image or dataset")
    with runtime(request).store.read() as tx:
        _, image = _load_image(tx, did, iid)
    return respond(image_view(image, base_url(request)))


@router.put("/v1/tailored-gen/datasets/{dataset_id}/images/{image_id}")
async def update_image_caption(request: Request, dataset_id: str, image_id: str) -> Response:
    """``PUT .../images/{image_id}``: exactly one of ``caption`` or ``regenerate_caption: true``.

    :param request: the HTTP request.
    :param dataset_id: the dataset id (path).
    :param image_id: the image id (path).
    """
    did, iid = parse_id(dataset_id, "Image or dataset"), parse_id(image_id, "Image or dataset")
    body = await json_body(request, err=errors.legacy_error)
    caption = body.get("caption")
    regenerate = body.get("regenerate_caption")
    if (caption is not None) == bool(regenerate):
        raise errors.legacy_error(400, "Provide exactly one of caption or regenerate_caption=true")
    if caption is not None and (not isinstance(caption, str) or not caption.strip()):
        raise errors.legacy_error(400, "caption must be a non-empty string")
    if regenerate is not None and regenerate is not True:
        raise errors.legacy_error(400, "regenerate_caption must be true")
    with runtime(request).store.tx() as tx:
        dataset, image = _load_image(tx, did, iid)
        if dataset["status"] == DatasetStatus.COMPLETED.value:
            raise v1_error(409, "Cannot edit captions of a completed dataset")
        if caption is not None:
            if is_fibo(dataset):
                repaired = media.repair_json_caption(caption)
                if repaired is None:
                    raise errors.legacy_error(400, "caption must be a string holding a valid JSON object")
                caption = repaired
            image.update(caption=caption, caption_source="manual")
        else:
            if is_fibo(dataset) and not dataset.get("visual_schema"):
                raise v1_error(409, "The dataset has no visual_schema yet; cannot generate a caption")
            text, source = caption_for(dataset, image["_analysis"], image["image_name"])
            image.update(caption=text, caption_source=source)
        image["updated_at"] = iso()
        tx.put("images", image)
    return respond(image_view(image, base_url(request)))


@router.delete("/v1/tailored-gen/datasets/{dataset_id}/images/{image_id}")
async def delete_image(request: Request, dataset_id: str, image_id: str) -> Response:
    """``DELETE .../images/{image_id}`` -> 204; 409 on a completed dataset.

    :param request: the HTTP request.
    :param dataset_id: the dataset id (path).
    :param image_id: the image id (path).
    """
    did, iid = parse_id(dataset_id, "Image or dataset"), parse_id(image_id, "Image or dataset")
    with runtime(request).store.tx() as tx:
        dataset, _ = _load_image(tx, did, iid)
        if dataset["status"] == DatasetStatus.COMPLETED.value:
            raise v1_error(409, "Cannot delete images of a completed dataset")
        tx.delete_files(f"image:{iid}")
        tx.delete("images", iid)
        dataset["updated_at"] = iso()
        tx.put("datasets", dataset)
    return respond(None, 204)
