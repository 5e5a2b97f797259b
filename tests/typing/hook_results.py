"""What a DAG author's type checker sees of the hook's read methods (checked by mypy in test_hook_types.py).

Never run: mypy reads it. Each ``assert_type`` fails the check when a method's declared return type changes
(for example back to ``dict[str, Any]``).
"""

from __future__ import annotations

from typing import assert_type

from airflow_provider_bria.hooks.bria import BriaHook
from airflow_provider_bria.results import (
    BulkUploadStatusResult,
    DatasetResult,
    ImageResult,
    ModelResult,
    ProjectResult,
)


def sync_reads(hook: BriaHook) -> None:
    assert_type(hook.get_project(1), ProjectResult)
    assert_type(hook.find_project("p"), ProjectResult | None)
    assert_type(hook.list_projects(), list[ProjectResult])
    assert_type(hook.get_dataset(1), DatasetResult)
    assert_type(hook.find_dataset(1, "d"), DatasetResult | None)
    assert_type(hook.list_datasets(), list[DatasetResult])
    assert_type(hook.list_project_datasets(1), list[DatasetResult])
    assert_type(hook.get_image(1, 2), ImageResult)
    assert_type(hook.list_images(1), list[ImageResult])
    assert_type(hook.get_model(1), ModelResult)
    assert_type(hook.find_model(1, "m"), ModelResult | None)
    assert_type(hook.list_models(), list[ModelResult])
    assert_type(hook.list_project_models(1), list[ModelResult])
    assert_type(hook.get_bulk_upload_status(1), BulkUploadStatusResult)


def writes_return_the_object(hook: BriaHook) -> None:
    assert_type(hook.create_project("p", "photography", "other"), ProjectResult)
    assert_type(hook.update_project(1, project_name="q"), ProjectResult)
    assert_type(hook.create_dataset(1, "d"), DatasetResult)
    assert_type(hook.update_dataset(1, name="e"), DatasetResult)
    assert_type(hook.clone_dataset(1), DatasetResult)
    assert_type(hook.create_model(1, "m"), ModelResult)
    assert_type(hook.update_model(1, name="n"), ModelResult)
    assert_type(hook.start_training(1), ModelResult)


async def async_reads(hook: BriaHook) -> None:
    assert_type(await hook.aget_model(1), ModelResult)
    assert_type(await hook.aget_bulk_upload_status(1), BulkUploadStatusResult)


def fields_are_typed(hook: BriaHook) -> None:
    model = hook.get_model(1)
    assert_type(model["status"], str)
    assert_type(model.get("id"), int | None)
    dataset = hook.get_dataset(1)
    assert_type(dataset["images"], list[ImageResult])
