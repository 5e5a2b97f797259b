"""Typed shapes of what users read from the provider: API objects (models, datasets, v2 jobs) and return values.

They are :class:`~typing.TypedDict` classes, so the values stay plain JSON dicts at run time (XCom, templates,
``dict`` methods all work) while type checkers and IDEs know the fields. The API objects list the fields of
Bria's OpenAPI description (``tests/compat/test_results_types.py`` checks them against it); Bria may add fields,
so every class is ``total=False`` and readers should use ``.get`` for optional ones.
"""

from __future__ import annotations

from typing import Any, TypedDict

from typing_extensions import Required


class Model(TypedDict, total=False):
    """A Tailored Generation model (``GET /tailored-gen/models/{model_id}``)."""

    id: Required[int]
    name: str
    description: str | None
    status: str
    training_mode: str
    training_version: str
    active_model_version: int | None
    training_parameters: dict[str, Any] | None
    checkpoint_steps: list[int] | None
    project_id: int
    dataset_id: int
    created_at: str


class Dataset(TypedDict, total=False):
    """A Tailored Generation dataset (``GET /tailored-gen/datasets/{dataset_id}``)."""

    id: Required[int]
    project_id: int
    name: str
    visual_schema: str | None
    status: str
    captions_update_status: str | None
    upload_type: str
    images_count: int
    images: list[dict[str, Any]]
    created_at: str
    updated_at: str


class JobOutcome(TypedDict, total=False):
    """One v2 asynchronous job as the provider stores it (``V2Response.to_json()``; trigger event outcomes)."""

    status: str
    request_id: str | None
    status_url: str | None
    result: dict[str, Any]
    error: dict[str, Any] | None
    raw: dict[str, Any]


class TrainingSummary(TypedDict, total=False):
    """What :class:`~airflow_provider_bria.operators.training.BriaStartTrainingOperator` and
    :class:`~airflow_provider_bria.sensors.training.BriaTrainingSensor` return (their XCom)."""

    model_id: Required[int]
    status: str | None
    model_url: str
    model_name: str
    project_id: int
    dataset_id: int
    training_mode: str
    training_version: str
    active_model_version: int | None
    checkpoint_steps: list[int] | None


__all__ = ["Dataset", "JobOutcome", "Model", "TrainingSummary"]
