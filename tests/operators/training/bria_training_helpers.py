"""Helpers of the training tests (imported by conftest.py and the test modules; unique module name)."""

from __future__ import annotations

from typing import Any

import pytest
from kit import conn_json, solid_png


def png_bytes(index: int, size: int = 1024) -> bytes:
    """A small, distinct PNG of ``size`` x ``size`` pixels (a solid colour per index)."""
    return solid_png(index, size)


def make_hook(url: str, monkeypatch: pytest.MonkeyPatch, conn_id: str = "bria_default", **hook_params: Any) -> Any:
    """A BriaHook on a connection pointing at ``url`` (set through an ``AIRFLOW_CONN_*`` variable)."""
    from airflow_provider_bria.hooks.bria import BriaHook

    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", conn_json(url))
    return BriaHook(bria_conn_id=conn_id, **hook_params)


def create_trainable_model(
    hook: Any,
    pngs: list[bytes],
    *,
    name: str = "model",
    training_mode: str = "fully_automated",
    project_name: str | None = None,
) -> dict[str, Any]:
    """Create project -> FIBO dataset -> 5 images -> completed -> model (``Created``) and return the model."""
    project = hook.create_project(project_name or f"training-{name}", "illustration", "stylized_scene")
    dataset = hook.create_dataset(project["id"], f"{name}-data", training_version="fibo")
    for i, data in enumerate(pngs[:5]):
        hook.upload_image(dataset["id"], file=data, image_name=f"img-{i}.png")
    # a FIBO dataset needs a visual_schema before it can be completed (Bria's spec)
    hook.update_dataset(dataset["id"], visual_schema={"style_medium": "illustration"}, status="completed")
    return hook.create_model(dataset["id"], name, training_mode=training_mode, training_version="fibo")
