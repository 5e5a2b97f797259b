"""Demo images drawn at run time: deterministic, varied, valid 1024x1024 PNGs, written once, any storage."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from PIL import Image

from airflow_provider_bria import demo_images
from airflow_provider_bria._compat import AIRFLOW_V_3_2_PLUS


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_same_index_and_seed_give_the_same_bytes() -> None:
    assert demo_images.demo_image_png(3, seed=7, size=256) == demo_images.demo_image_png(3, seed=7, size=256)


def test_indexes_and_seeds_give_different_images() -> None:
    hashes = {_sha(demo_images.demo_image_png(i, seed=s, size=128)) for i in range(6) for s in (0, 1)}
    assert len(hashes) == 12


def test_default_size_meets_bria_minimum_resolution() -> None:
    from airflow_provider_bria.contract import MIN_RESOLUTION

    img = Image.open(io.BytesIO(demo_images.demo_image_png(0)))
    assert img.format == "PNG"
    assert img.size == (demo_images.DEFAULT_SIZE, demo_images.DEFAULT_SIZE)
    assert min(img.size) >= MIN_RESOLUTION
    assert len(img.getcolors(maxcolors=1_000_000) or []) > 50  # not a flat colour


def test_too_small_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        demo_images.demo_image(0, size=8)


def test_write_to_local_folder_is_idempotent(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    paths = demo_images.write_demo_images(folder, 3, size=64)
    assert [Path(p).name for p in paths] == ["demo-0-000.png", "demo-0-001.png", "demo-0-002.png"]
    mtimes = [Path(p).stat().st_mtime_ns for p in paths]
    Path(paths[1]).write_bytes(b"kept as is")  # an existing file is never overwritten
    again = demo_images.write_demo_images(f"file://{folder}", 3, size=64)
    assert again == paths
    assert Path(paths[1]).read_bytes() == b"kept as is"
    assert Path(paths[0]).stat().st_mtime_ns == mtimes[0]
    assert not list(folder.glob("*.tmp-*"))


def test_write_with_start_and_seed(tmp_path: Path) -> None:
    paths = demo_images.write_demo_images(tmp_path, 2, seed=5, start=10, size=64, prefix="new")
    assert [Path(p).name for p in paths] == ["new-5-010.png", "new-5-011.png"]
    assert Path(paths[0]).read_bytes() == demo_images.demo_image_png(10, seed=5, size=64)


def test_negative_count_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="count"):
        demo_images.write_demo_images(tmp_path, -1)


def test_list_images_ignores_other_files_and_missing_folders(tmp_path: Path) -> None:
    assert demo_images.list_images(tmp_path / "missing") == []
    (tmp_path / "b.PNG").write_bytes(b"x")
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sub.png").mkdir()
    assert [Path(p).name for p in demo_images.list_images(tmp_path)] == ["a.jpg", "b.PNG"]


def test_object_storage_uri(airflow_home: Path) -> None:
    from airflow.sdk import ObjectStoragePath

    uri = "memory://bria-demo-images-test/set"
    written = demo_images.write_demo_images(uri, 2, size=64)
    assert len(written) == 2
    assert all(w.startswith("memory://") for w in written)
    assert ObjectStoragePath(written[1]).read_bytes() == demo_images.demo_image_png(1, size=64)
    assert demo_images.list_images(uri) == sorted(written)
    assert demo_images.ensure_demo_images(uri, 2, size=64) == sorted(written)  # complete: nothing drawn
    completed = demo_images.ensure_demo_images(uri, 3, size=64)  # a partial series is completed
    shown = uri if AIRFLOW_V_3_2_PLUS else uri.replace("://", ":///")  # Airflow 3.0/3.1 spelling, same object
    assert completed == sorted(written) + [f"{shown}/demo-0-002.png"]
    assert ObjectStoragePath(completed[2]).read_bytes() == demo_images.demo_image_png(2, size=64)


def test_ensure_draws_only_into_an_empty_source(tmp_path: Path) -> None:
    assert demo_images.ensure_demo_images(tmp_path / "a", 4, generate=False) == []
    drawn = demo_images.ensure_demo_images(tmp_path / "b", 2, size=64)
    assert len(drawn) == 2


def test_ensure_completes_a_partial_series_left_by_a_killed_attempt(tmp_path: Path) -> None:
    folder = tmp_path / "partial"
    first = demo_images.write_demo_images(folder, 3, seed=4, size=64)  # killed after 3 of 5
    kept = [Path(p).stat().st_mtime_ns for p in first]
    Path(first[1]).write_bytes(b"already there")  # existing files are not redrawn
    found = demo_images.ensure_demo_images(folder, 5, seed=4, size=64)
    assert [Path(p).name for p in found] == [f"demo-4-{i:03d}.png" for i in range(5)]
    assert Path(found[4]).read_bytes() == demo_images.demo_image_png(4, seed=4, size=64)
    assert Path(first[1]).read_bytes() == b"already there"
    assert Path(first[0]).stat().st_mtime_ns == kept[0]
    assert demo_images.ensure_demo_images(folder, 5, seed=4, generate=False) == found


def test_ensure_never_adds_to_a_folder_with_other_images(tmp_path: Path) -> None:
    (tmp_path / "brand-photo.jpg").write_bytes(b"x")
    demo_images.write_demo_images(tmp_path, 1, seed=0, size=64)
    assert [Path(p).name for p in demo_images.ensure_demo_images(tmp_path, 4, size=64)] == [
        "brand-photo.jpg",
        "demo-0-000.png",
    ]
    other_seed = tmp_path / "other-seed"
    demo_images.write_demo_images(other_seed, 1, seed=1, size=64)
    assert len(demo_images.ensure_demo_images(other_seed, 4, seed=2, size=64)) == 1  # another series: not ours


def test_ensure_leaves_a_partial_series_alone_when_generation_is_off(tmp_path: Path) -> None:
    demo_images.write_demo_images(tmp_path, 2, size=64)
    assert len(demo_images.ensure_demo_images(tmp_path, 5, generate=False)) == 2


def test_examples_data_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BRIA_EXAMPLES_DATA", "s3://bucket/bria/")
    assert demo_images.examples_data_root() == "s3://bucket/bria"
    monkeypatch.delenv("BRIA_EXAMPLES_DATA")
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert demo_images.examples_data_root() == str(tmp_path / "bria_examples")
