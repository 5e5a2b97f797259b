"""Basic uploads start while the quality gate is still checking, unless a gate outcome could refuse the task."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kit import FAST_HOOK
from upload_helpers import context

from airflow_provider_bria.exceptions import BriaInputError
from airflow_provider_bria.hooks.bria import BriaHook
from airflow_provider_bria.operators import _quality_gate as gate_mod
from airflow_provider_bria.operators._image_sources import resolve_sources
from airflow_provider_bria.operators.upload import BriaUploadImagesOperator

#: Deadlock guard only: how long the last file's check waits for an upload before giving up (never reached
#: when uploads overlap the gate).
GUARD_SECONDS = 20


def _op(dataset_id: int, source: Any, **kwargs: Any) -> BriaUploadImagesOperator:
    kwargs.setdefault("hook_params", FAST_HOOK)
    return BriaUploadImagesOperator(task_id="upload", dataset_id=dataset_id, source=source, **kwargs)


def _instrument(monkeypatch: pytest.MonkeyPatch, last_name: str | None = None) -> dict[str, Any]:
    """Uploads are counted; the check of ``last_name`` waits for a first upload and records whether one came."""
    seen: dict[str, Any] = {"uploads": 0, "upload_before_last_check": None}
    uploaded = threading.Event()
    real_inspect, real_upload = gate_mod.inspect_image, BriaHook.upload_image

    def inspect(src: Any, **kwargs: Any) -> Any:
        if last_name is not None and src.uri.endswith(last_name):
            seen["upload_before_last_check"] = uploaded.wait(GUARD_SECONDS)
        return real_inspect(src, **kwargs)

    def upload(self: BriaHook, *args: Any, **kwargs: Any) -> Any:
        seen["uploads"] += 1
        uploaded.set()
        return real_upload(self, *args, **kwargs)

    monkeypatch.setattr(gate_mod, "inspect_image", inspect)
    monkeypatch.setattr(BriaHook, "upload_image", upload)
    return seen


def test_uploads_start_while_the_gate_checks_the_next_files(
    bria_conn: Any, make_dataset: Callable[..., int], image_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _instrument(monkeypatch, "img-005.png")
    summary = _op(make_dataset(), str(image_dir), max_concurrency=2).execute(context())
    assert seen["upload_before_last_check"] is True
    assert summary["uploaded"] == summary["new_images"] == 6
    assert summary["failed_count"] == summary["skipped_count"] == 0
    assert len(summary["image_ids"]) == 6


@pytest.mark.parametrize("refusal", ["on_invalid", "max_images"])
def test_a_gate_that_could_refuse_the_task_checks_everything_before_any_upload(
    bria_conn: Any, make_dataset: Callable[..., int], image_dir: Path, monkeypatch: pytest.MonkeyPatch,
    refusal: str,
) -> None:
    (image_dir / "img-005.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")  # fails the gate
    seen = _instrument(monkeypatch)
    kwargs = {"on_invalid": "fail"} if refusal == "on_invalid" else {"max_images": 4}
    with pytest.raises(BriaInputError, match="nothing was uploaded"):
        _op(make_dataset(), str(image_dir), **kwargs).execute(context())
    assert seen["uploads"] == 0


def test_the_gate_stream_yields_accepted_images_in_source_order(tmp_path: Path, png_1024: list[bytes]) -> None:
    for i, data in enumerate([png_1024[0], png_1024[1], png_1024[0], b"not an image", png_1024[2]]):
        (tmp_path / f"f{i}.png").write_bytes(data)
    sources = resolve_sources(str(tmp_path)).images
    result = gate_mod.GateResult()
    streamed = [c.source.uri for c in gate_mod.iter_quality_gate(sources, result, increase_resolution=False,
                                                                  max_workers=3)]
    assert [Path(u).name for u in streamed] == ["f0.png", "f1.png", "f4.png"]
    assert [c.source.uri for c in result.accepted] == streamed
    assert {Path(s["source"]).name: s["code"] for s in result.skipped} == {"f2.png": "duplicate",
                                                                         "f3.png": "not_an_image"}
    whole = gate_mod.run_quality_gate(sources, increase_resolution=False, max_workers=3)
    assert [c.sha256 for c in whole.accepted] == [c.sha256 for c in result.accepted]
    assert whole.skipped == result.skipped
