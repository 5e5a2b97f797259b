"""Fixtures of the lifecycle operator tests: a fake task context, sample images, hooks on the emulator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import kit
import pytest
from kit import FAST_HOOK, context_with
from lifecycle_helpers import fill_dataset, png_bytes


@pytest.fixture
def make_context() -> Callable[..., dict[str, Any]]:
    """Build a minimal task context: ``make_context(try_number=1, task_state_store=None)``."""

    return context_with


@pytest.fixture(scope="session")
def upload_pngs() -> list[bytes]:
    """Six distinct 512x512 PNGs for dataset uploads (the emulator upscales from 256 px)."""
    return [png_bytes(i, 512) for i in range(6)]


@pytest.fixture
def sample_files(tmp_path: Path) -> list[Path]:
    """Ten small PNG files on disk (samples for visual schemas and prefixes)."""
    paths = []
    for i in range(10):
        path = tmp_path / f"sample-{i}.png"
        path.write_bytes(png_bytes(i))
        paths.append(path)
    return paths


@pytest.fixture
def hook(bria_conn: Any) -> Any:
    """A fast-retrying BriaHook on the (reset) shared emulator."""
    from airflow_provider_bria.hooks.bria import BriaHook

    return BriaHook(**FAST_HOOK)


@pytest.fixture
def fibo_project(hook: Any) -> dict[str, Any]:
    """A FIBO project on the emulator."""
    return hook.create_project("Brand X", "illustration", "stylized_scene", training_version="fibo")


@pytest.fixture
def fill() -> Callable[..., list[dict[str, Any]]]:
    """``fill(hook, dataset_id, pngs, n=5)``: upload images through the hook."""
    return fill_dataset


@pytest.fixture
def object_counts() -> Callable[[Any], dict[str, int]]:
    """``object_counts(emulator)``: counts of remote objects (projects, datasets, images, models...)."""
    return kit.object_counts
