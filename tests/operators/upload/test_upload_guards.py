"""Visible warnings and the min_new_images guard of BriaUploadImagesOperator (issue 15 item 6), against the
emulator over real HTTP."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kit import FAST_HOOK
from upload_helpers import context, image_bytes

from airflow_provider_bria.exceptions import AirflowSkipException
from airflow_provider_bria.operators.upload import BriaUploadImagesOperator


def _op(dataset_id: int, source: Any, **kwargs: Any) -> BriaUploadImagesOperator:
    kwargs.setdefault("hook_params", FAST_HOOK)
    return BriaUploadImagesOperator(task_id="upload", dataset_id=dataset_id, source=source, **kwargs)


def _folder(tmp_path: Path, good: int, small: int = 0) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(good):
        (folder / f"good-{i}.png").write_bytes(image_bytes(i))
    for i in range(small):
        (folder / f"small-{i}.png").write_bytes(image_bytes(100 + i, size=300))
    return folder


def test_skipped_images_are_a_warning_and_in_the_summary(
    bria_conn: Any, make_dataset: Callable[..., int], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    ds = make_dataset()
    capfd.readouterr()
    summary = _op(ds, str(_folder(tmp_path, good=2, small=2))).execute(context())
    logs = "".join(capfd.readouterr()).splitlines()
    warnings = [line for line in logs if "skipped by the quality gate" in line]
    assert len(warnings) == 1, logs
    # the level as each line's task logger prints it: structlog "[warning" (3.1+), logging's "WARNING -" (3.0)
    assert "[warning" in warnings[0] or " WARNING - " in warnings[0], warnings[0]
    assert "2 of 4 source files were skipped by the quality gate" in warnings[0]
    assert summary["skipped_count"] == 2
    assert summary["skipped_by_reason"] == {summary["skipped"][0]["code"]: 2}
    assert len(summary["warnings"]) == 1
    assert summary["warnings"][0] in warnings[0]
    assert summary["uploaded"] == summary["new_images"] == 2


def test_no_warning_when_nothing_is_skipped(
    bria_conn: Any, make_dataset: Callable[..., int], tmp_path: Path
) -> None:
    summary = _op(make_dataset(), str(_folder(tmp_path, good=1))).execute(context())
    assert summary["warnings"] == []
    assert summary["skipped_by_reason"] == {}


def test_min_new_images_skips_when_too_few_arrived(
    bria_conn: Any, make_dataset: Callable[..., int], tmp_path: Path
) -> None:
    ds = make_dataset()
    folder = _folder(tmp_path, good=2)
    ctx = context()
    with pytest.raises(AirflowSkipException, match=r"min_new_images=3: only 2 new image\(s\) arrived"):
        _op(ds, str(folder), min_new_images=3).execute(ctx)
    assert ctx["ti"].xcoms["upload_summary"]["uploaded"] == 2  # uploaded, and the counts are kept
    # Enough: the same images, re-run with a lower bar, count as new (this dataset got them after creation),
    # so a re-run after a failed training is not skipped.
    summary = _op(ds, str(folder), min_new_images=2).execute(context())
    assert (summary["uploaded"], summary["already_present"], summary["new_images"]) == (0, 2, 2)


def test_min_new_images_on_an_empty_folder_skips_instead_of_failing(
    bria_conn: Any, make_dataset: Callable[..., int], tmp_path: Path
) -> None:
    empty = tmp_path / "none"
    empty.mkdir()
    with pytest.raises(AirflowSkipException, match="only 0 new image"):
        _op(make_dataset(), str(empty), min_new_images=1).execute(context())
    assert bria_conn.state()["counts"]["images"] == 0


def test_images_a_clone_copied_are_not_new(bria_conn: Any, hook: Any, make_dataset: Callable[..., int],
                                            tmp_path: Path) -> None:
    """Images the dataset got from its clone source are present but not new."""
    folder = _folder(tmp_path, good=2)
    source = make_dataset()
    _op(source, str(folder)).execute(context())
    clone = hook.clone_dataset(source, name="clone")["id"]
    with pytest.raises(AirflowSkipException, match="only 0 new image"):
        _op(clone, str(folder), min_new_images=1).execute(context())
