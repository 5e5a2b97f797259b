"""Typed shapes of what the hook's read methods return (the fields of Bria's documented responses).

Each class is a ``TypedDict`` whose fields are exactly the response fields of Bria's Tailored Generation
OpenAPI (``GET`` of the object); each field carries its meaning as ``Annotated`` metadata, from which
``docs/reference.md`` is generated (``python -m airflow_provider_bria._reference``). The hook's read methods
are annotated with these types; at run time they return plain dicts (the server may add fields), so a DAG can
rely on the typed fields and still read others with :func:`loose`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypedDict, cast


class ProjectResult(TypedDict, total=False):
    """A project (``get_project``, ``find_project``, items of ``list_projects``)."""

    id: Annotated[int, "project id"]
    project_name: Annotated[str, "unique name (the provider's natural key)"]
    project_description: Annotated[str, "free text"]
    ip_name: Annotated[str, "character name (defined_character projects)"]
    ip_description: Annotated[str, "short description of the IP"]
    ip_medium: Annotated[str, "`photography` or `illustration`"]
    ip_type: Annotated[str, "`multi_object_set`, `object_variants`, `icons`, `defined_character`, "
                            "`character_variants`, `stylized_scene` or `other`"]
    status: Annotated[str, "`active`"]
    created_at: Annotated[str, "creation time (ISO 8601 text)"]


class ImageResult(TypedDict, total=False):
    """An image of a dataset (``get_image``, items of ``list_images`` and of a dataset's ``images``)."""

    id: Annotated[int, "image id"]
    dataset_id: Annotated[int, "the dataset it belongs to"]
    caption: Annotated[str, "the caption (FIBO: a JSON document as text)"]
    caption_source: Annotated[str, "`automatic` or `manual`"]
    image_name: Annotated[str, "file name given at upload (the upload operator puts a content hash in it)"]
    image_url: Annotated[str, "URL of the image"]
    thumbnail_url: Annotated[str, "URL of a thumbnail"]
    created_at: Annotated[str, "creation time (ISO 8601 text)"]
    updated_at: Annotated[str, "last change (ISO 8601 text)"]


class DatasetResult(TypedDict, total=False):
    """A dataset (``get_dataset``, ``find_dataset``, items of ``list_datasets``/``list_project_datasets``)."""

    id: Annotated[int, "dataset id"]
    project_id: Annotated[int, "the project it belongs to"]
    name: Annotated[str, "name, unique within the project (the provider's natural key)"]
    visual_schema: Annotated[str | None, "FIBO visual schema, a JSON document as text"]
    status: Annotated[str, "`draft` (editable) or `completed` (frozen, trainable)"]
    captions_update_status: Annotated[str, "`empty`, `in_progress` or `completed`"]
    upload_type: Annotated[str, "`basic` (per image, <= 200) or `advanced` (ZIP bulk, <= 5000)"]
    images_count: Annotated[int, "number of images"]
    images: Annotated[list[ImageResult], "up to `max_images` (default 200) images"]
    created_at: Annotated[str, "creation time (ISO 8601 text)"]
    updated_at: Annotated[str, "last change (ISO 8601 text)"]


class ModelResult(TypedDict, total=False):
    """A model (``get_model``, ``find_model``, items of ``list_models``/``list_project_models``)."""

    id: Annotated[int, "model id"]
    name: Annotated[str, "name, unique within its dataset (the provider's natural key)"]
    description: Annotated[str, "free text"]
    status: Annotated[str, "`Created`, `InProgress`, `Completed`, `Failed`, `Stopping`, `Stopped` or `Deleted`"]
    training_mode: Annotated[str, "`fully_automated` or `expert`"]
    active_model_version: Annotated[str, "the model version used for generation"]
    training_parameters: Annotated[dict[str, Any], "expert training parameters"]
    checkpoint_steps: Annotated[list[int], "steps with a checkpoint (expert mode)"]
    project_id: Annotated[int, "the project"]
    dataset_id: Annotated[int, "the training dataset"]
    created_at: Annotated[str, "creation time (ISO 8601 text)"]


class JobOutcome(TypedDict, total=False):
    """One v2 asynchronous job as the provider stores it (``V2Response.to_json()``; trigger event outcomes)."""

    status: Annotated[str, "`COMPLETED`, `IN_PROGRESS`, `ERROR`... (upper case)"]
    request_id: Annotated[str | None, "Bria's request id"]
    status_url: Annotated[str | None, "status URL as Bria sent it (never contacted as given)"]
    result: Annotated[dict[str, Any], "`image_url`, `video_url`, `structured_prompt`, `seed`"]
    error: Annotated[dict[str, Any] | None, "Bria's error object of a failed job"]
    raw: Annotated[dict[str, Any], "the response body as received"]


class TrainingSummary(TypedDict, total=False):
    """What :class:`~airflow_provider_bria.operators.training.BriaStartTrainingOperator` and
    :class:`~airflow_provider_bria.sensors.training.BriaTrainingSensor` return (their XCom)."""

    model_id: Annotated[int, "the model"]
    status: Annotated[str | None, "the model's status when the task ended"]
    model_url: Annotated[str, "the model's page in Bria's console"]
    model_name: Annotated[str, "the model's name"]
    project_id: Annotated[int, "the project"]
    dataset_id: Annotated[int, "the training dataset"]
    training_mode: Annotated[str, "`fully_automated` or `expert`"]
    training_version: Annotated[str, "`fibo`, or a legacy family"]
    active_model_version: Annotated[int | None, "the model version used for generation"]
    checkpoint_steps: Annotated[list[int] | None, "steps with a checkpoint (expert mode)"]


class BulkUploadStatusResult(TypedDict, total=False):
    """Progress of a ZIP bulk upload (``get_bulk_upload_status``)."""

    status: Annotated[str, "`pending`, `processing`, `completed` or `failed`"]
    progress_percentage: Annotated[int, "0-100"]
    total_processed: Annotated[int, "images processed so far"]
    done: Annotated[int, "images added"]
    failed: Annotated[int, "images refused"]
    failed_images: Annotated[list[Any], "the refused images and why"]


#: Hook read methods and the shape of what they return (``list`` methods return a list of it).
HOOK_READ_METHODS: dict[str, type] = {
    "get_project": ProjectResult,
    "find_project": ProjectResult,
    "list_projects": ProjectResult,
    "get_dataset": DatasetResult,
    "find_dataset": DatasetResult,
    "list_datasets": DatasetResult,
    "list_project_datasets": DatasetResult,
    "get_image": ImageResult,
    "list_images": ImageResult,
    "get_model": ModelResult,
    "find_model": ModelResult,
    "list_models": ModelResult,
    "list_project_models": ModelResult,
    "get_bulk_upload_status": BulkUploadStatusResult,
}

#: Short names (the API objects users read most).
Model = ModelResult
Dataset = DatasetResult


def loose(result: Mapping[str, object]) -> dict[str, Any]:
    """The same result object, typed as a plain ``dict[str, Any]``.

    For code that reads fields Bria's spec does not list (``training_version`` of legacy objects, fields a newer
    server adds) or passes the object on untyped. Nothing is copied or checked.

    :param result: a typed result of the hook (a dict at run time).
    """
    return cast(dict[str, Any], result)
