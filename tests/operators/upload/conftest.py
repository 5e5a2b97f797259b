"""Fixtures of the upload operator tests: sample image folders, hooks and datasets on the emulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kit import FAST_HOOK
from upload_helpers import image_bytes, write_images


@pytest.fixture(scope="session")
def png_1024() -> list[bytes]:
    """Twelve distinct 1024x1024 PNGs (generated once)."""
    return [image_bytes(i, 1024) for i in range(12)]


@pytest.fixture
def image_dir(tmp_path: Path, png_1024: list[bytes]) -> Path:
    """A folder of six valid 1024x1024 PNGs named img-000.png ... img-005.png."""
    folder = tmp_path / "images"
    folder.mkdir()
    for i, data in enumerate(png_1024[:6]):
        (folder / f"img-{i:03d}.png").write_bytes(data)
    return folder


@pytest.fixture
def many_images() -> Callable[..., list[Path]]:
    """``many_images(folder, n, start=0, size=1024)``: write ``n`` distinct PNGs."""
    return write_images


@pytest.fixture
def memory_fs() -> Iterator[Any]:
    """fsspec's in-memory filesystem, emptied before and after the test.

    An ``ObjectStoragePath("memory://...")`` made during the test caches a ``memory`` store (without a
    filesystem) in Airflow's process-wide store cache; it is dropped afterwards so that it cannot shadow the
    ``memory`` store other test modules attach.
    """
    import fsspec
    from airflow.sdk.io.store import _STORE_CACHE

    cached = dict(_STORE_CACHE)
    fs = fsspec.filesystem("memory")
    fs.store.clear()
    fs.pseudo_dirs.clear()
    fs.pseudo_dirs.append("")
    yield fs
    fs.store.clear()
    fs.pseudo_dirs.clear()
    fs.pseudo_dirs.append("")
    _STORE_CACHE.clear()
    _STORE_CACHE.update(cached)


@pytest.fixture
def hook(bria_conn: Any) -> Any:
    """A fast-retrying BriaHook on the (reset) shared emulator."""
    from airflow_provider_bria.hooks.bria import BriaHook

    return BriaHook(**FAST_HOOK)


@pytest.fixture
def make_dataset(hook: Any) -> Callable[..., int]:
    """``make_dataset(upload_type="basic", training_version="fibo")``: a new project + dataset; returns its id."""
    made = {"n": 0}

    def _make(upload_type: str = "basic", training_version: str = "fibo") -> int:
        made["n"] += 1
        project = hook.create_project(f"Upload tests {made['n']}", "illustration", "stylized_scene",
                                      training_version=training_version)
        dataset = hook.create_dataset(project["id"], f"ds-{made['n']}", upload_type=upload_type,
                                      training_version=training_version)
        return int(dataset["id"])

    return _make
