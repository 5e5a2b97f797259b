"""BriaUploadImagesOperator on advanced datasets (zip + bulk upload), over real HTTP against the emulator.

The staging folder is served by a small ``http.server`` thread, standing in for an object store that serves
the zip at a public URL (``staging_url``).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kit import FAST_HOOK
from kit import object_counts as counts
from upload_helpers import context, serve_directory

from airflow_provider_bria.exceptions import BriaUploadError
from airflow_provider_bria.operators.upload import BriaUploadImagesOperator

NAME_RE = re.compile(r"^[A-Za-z0-9._-]+-[0-9a-f]{12}\.(png|jpg|webp)$")


@pytest.fixture
def staging(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A staging folder and the http URL serving it."""
    folder = tmp_path / "staging"
    folder.mkdir()
    with serve_directory(folder) as url:
        yield folder, url


def _op(dataset_id: int, source: Any, **kwargs: Any) -> BriaUploadImagesOperator:
    kwargs.setdefault("hook_params", FAST_HOOK)
    kwargs.setdefault("poll_interval", 0.05)
    kwargs.setdefault("timeout", 60)
    return BriaUploadImagesOperator(task_id="upload", dataset_id=dataset_id, source=source, **kwargs)


def _bulk_posts(emulator: Any) -> list[dict[str, Any]]:
    return [r for r in emulator.requests("/v1/tailored-gen/datasets") if r["method"] == "POST"
            and "/bulk" in r["path"]]


def test_bulk_upload_end_to_end_and_retry_does_not_resubmit(
    bria_conn: Any, hook: Any, make_dataset: Callable[..., int], image_dir: Path, staging: tuple[Path, str]
) -> None:
    folder, url = staging
    ds = make_dataset("advanced")
    summary = _op(ds, str(image_dir), staging_path=f"file://{folder}", staging_url=url).execute(context())
    assert summary["upload_type"] == "advanced"
    assert summary["bulk"]["status"] == "completed"
    assert summary["uploaded"] == 6
    assert summary["failed_count"] == 0
    names = sorted(i["image_name"] for i in hook.list_images(ds))
    assert len(names) == 6
    assert all(NAME_RE.match(n) for n in names)
    assert list(folder.iterdir()) == []  # the staged zip was removed once the job finished
    assert len(_bulk_posts(bria_conn)) == 1

    again = _op(ds, str(image_dir), staging_path=f"file://{folder}", staging_url=url).execute(context(try_number=2))
    assert again["bulk"]["status"] == "completed"
    assert again["images_in_dataset"] == 6
    assert len(_bulk_posts(bria_conn)) == 1  # the retry found the job and did not submit again
    state = bria_conn.state()
    assert state["counts"]["images"] == 6
    assert state["duplicates"]["images"] == []


def test_staged_zip_has_only_safe_flat_entries(
    bria_conn: Any, make_dataset: Callable[..., int], tmp_path: Path, png_1024: list[bytes], staging: tuple[Path, str]
) -> None:
    folder, url = staging
    src = tmp_path / "weird"
    (src / "sub").mkdir(parents=True)
    (src / "tricky..name (copy)!.png").write_bytes(png_1024[0])
    (src / "sub" / "ünïcode ☃.png").write_bytes(png_1024[1])
    ds = make_dataset("advanced")
    summary = _op(ds, [str(src), f"{src}/sub/../sub/*.png"], staging_path=str(folder), staging_url=url,
                  cleanup_staging=False).execute(context())
    assert summary["uploaded"] == 2
    [zip_path] = list(folder.iterdir())
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
    assert len(names) == 2
    assert all(NAME_RE.match(n) and "/" not in n and ".." not in n for n in names)


def test_per_image_failures_are_reported(
    bria_conn: Any, hook: Any, make_dataset: Callable[..., int], image_dir: Path, png_1024: list[bytes],
    staging: tuple[Path, str],
) -> None:
    folder, url = staging
    (image_dir / "moderation-block.png").write_bytes(png_1024[9])
    ds = make_dataset("advanced")
    ctx = context()
    with pytest.raises(BriaUploadError) as err:
        _op(ds, str(image_dir), staging_path=str(folder), staging_url=url, content_moderation=True).execute(ctx)
    assert len(err.value.failures) == 1
    assert "moderation-block" in err.value.failures[0]["source"]
    assert counts(bria_conn)["images"] == 6  # the other images were kept
    assert ctx["ti"].xcoms["upload_summary"]["failed_count"] == 1


def test_user_given_zip_url(bria_conn: Any, make_dataset: Callable[..., int], png_1024: list[bytes],
                            staging: tuple[Path, str]) -> None:
    folder, url = staging
    with zipfile.ZipFile(folder / "mine.zip", "w") as zf:
        for i in range(3):
            zf.writestr(f"photo-{i}.png", png_1024[i])
    ds = make_dataset("advanced")
    summary = _op(ds, None, zip_url=f"{url}mine.zip").execute(context())
    assert summary["bulk"]["status"] == "completed"
    assert summary["images_in_dataset"] == 3
    assert (folder / "mine.zip").exists()  # a user's zip is never deleted


def test_memory_source_with_legacy_captions(
    bria_conn: Any, hook: Any, make_dataset: Callable[..., int], memory_fs: Any, png_1024: list[bytes],
    staging: tuple[Path, str],
) -> None:
    folder, url = staging
    for i in range(3):
        memory_fs.pipe(f"/in/logo-{i}.png", png_1024[i])
        memory_fs.pipe(f"/in/logo-{i}.txt", f"a red logo number {i}".encode())
    memory_fs.pipe("/in/uncaptioned.png", png_1024[5])
    ds = make_dataset("advanced", training_version="max")
    summary = _op(ds, "memory://in", staging_path=str(folder), staging_url=url, automatic_captioning=False,
                  ).execute(context())
    assert summary["uploaded"] == 3
    assert [s["code"] for s in summary["skipped"]] == ["missing_caption"]
    captions = {i["image_name"].split("-")[1]: (i["caption"], i["caption_source"]) for i in hook.list_images(ds)}
    assert captions == {str(i): (f"a red logo number {i}", "manual") for i in range(3)}
