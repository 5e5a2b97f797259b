"""The client's dataset completion minimum is Bria's ("Minimum 5 images required to mark as completed"), for
legacy datasets too: the rule comes from the OpenAPI extract, not from ``contract.py``."""

from __future__ import annotations

import io
from typing import Any

import pytest
import spec_oracle as spec

from airflow_provider_bria.exceptions import BriaInputError
from airflow_provider_bria.operators.dataset import BriaUpdateDatasetOperator

DATASET = "/v1/tailored-gen/datasets"


def _png(index: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (512, 512), ((index * 53) % 256, (index * 97) % 256, 90)).save(buf, format="PNG")
    return buf.getvalue()


class _TI:
    def xcom_push(self, key: str, value: Any) -> None:
        pass


def _puts(emulator: Any, dataset_id: int) -> list[dict[str, Any]]:
    return [r for r in emulator.requests(path_prefix=f"{DATASET}/{dataset_id}") if r["method"] == "PUT"]


@pytest.mark.parametrize("training_version", ["3.2", "fibo"])
def test_completion_needs_the_spec_minimum_before_any_put(bria_conn: Any, training_version: str) -> None:
    from airflow_provider_bria.hooks.bria import BriaHook

    minimum = spec.min_images_to_complete()
    assert minimum == 5  # what Create Dataset states today; the extract is regenerated from Bria's file
    hook = BriaHook(retry_delay=0.01)
    project = hook.create_project("Completion", "photography", "stylized_scene")
    dataset = hook.create_dataset(project["id"], "set", training_version=training_version)
    if training_version == "fibo":
        hook.update_dataset(dataset["id"], visual_schema={"style": "flat"})
    for i in range(minimum - 1):
        hook.upload_image(dataset["id"], file=_png(i), image_name=f"img-{i}.png")
    puts_before = len(_puts(bria_conn, dataset["id"]))
    op = BriaUpdateDatasetOperator(task_id="complete", dataset_id=dataset["id"], status="completed")
    with pytest.raises(BriaInputError, match=f"needs at least {minimum} to be completed"):
        op.execute({"ti": _TI()})
    assert len(_puts(bria_conn, dataset["id"])) == puts_before  # refused client-side, nothing sent
    hook.upload_image(dataset["id"], file=_png(minimum), image_name="last.png")
    assert op.execute({"ti": _TI()})["status"] == "completed"
