"""BriaUploadImagesOperator on basic datasets, over real HTTP against the emulator."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kit import FAST_HOOK
from kit import TEST_TOKEN as TOKEN
from kit import object_counts as counts
from upload_helpers import context, image_bytes, write_images

from airflow_provider_bria.exceptions import BriaConflictError, BriaInputError, BriaUploadError
from airflow_provider_bria.operators.upload import BriaUploadImagesOperator

NAME_RE = re.compile(r"^[A-Za-z0-9._-]+-[0-9a-f]{12}\.(png|jpg|webp)$")


def _op(dataset_id: int, source: Any, **kwargs: Any) -> BriaUploadImagesOperator:
    kwargs.setdefault("hook_params", FAST_HOOK)
    return BriaUploadImagesOperator(task_id="upload", dataset_id=dataset_id, source=source, **kwargs)


def _names(hook: Any, dataset_id: int) -> list[str]:
    return sorted(i["image_name"] for i in hook.list_images(dataset_id))


def test_local_folder(bria_conn: Any, hook: Any, make_dataset: Callable[..., int], image_dir: Path,
                      caplog: pytest.LogCaptureFixture) -> None:
    ds = make_dataset()
    ctx = context()
    summary = _op(ds, str(image_dir)).execute(ctx)
    assert summary["uploaded"] == 6
    assert summary["skipped_count"] == 0
    assert summary["failed_count"] == 0
    names = _names(hook, ds)
    assert len(names) == 6
    assert all(NAME_RE.match(n) for n in names)
    assert sorted(summary["image_ids"]) == sorted(i["id"] for i in hook.list_images(ds))
    state = bria_conn.state()
    assert state["counts"]["images"] == 6
    assert state["duplicates"]["images"] == []
    assert TOKEN not in json.dumps(summary)
    assert TOKEN not in caplog.text
    assert TOKEN not in json.dumps(ctx["ti"].xcoms)


def test_glob_and_list_sources(bria_conn: Any, hook: Any, make_dataset: Callable[..., int], image_dir: Path) -> None:
    ds = make_dataset()
    assert _op(ds, f"{image_dir}/img-00[0-2].png").execute(context())["uploaded"] == 3
    ds2 = make_dataset()
    summary = _op(ds2, [str(image_dir / "img-005.png"), f"file://{image_dir}"]).execute(context())
    assert summary["uploaded"] == 6
    assert summary["sources"] == 6
    assert counts(bria_conn)["images"] == 9


def test_memory_object_storage_source(bria_conn: Any, hook: Any, make_dataset: Callable[..., int],
                                      memory_fs: Any, png_1024: list[bytes]) -> None:
    for i, data in enumerate(png_1024[:4]):
        memory_fs.pipe(f"/landing/brand/shot-{i}.png", data)
    ds = make_dataset()
    summary = _op(ds, "memory://landing/brand/").execute(context())
    assert summary["uploaded"] == 4
    assert [n.split("-")[0] for n in _names(hook, ds)] == ["shot"] * 4


def test_quality_gate_skips_with_reasons(bria_conn: Any, hook: Any, make_dataset: Callable[..., int],
                                         tmp_path: Path, png_1024: list[bytes]) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good-1.png").write_bytes(png_1024[0])
    (folder / "good-2.jpg").write_bytes(image_bytes(1, 1024, "JPEG"))
    (folder / "small.png").write_bytes(image_bytes(2, 512))
    (folder / "text.png").write_bytes(b"definitely not a png")
    (folder / "corrupt.png").write_bytes(png_1024[3][: len(png_1024[3]) // 2])
    (folder / "anim.gif").write_bytes(image_bytes(4, 1024, "GIF"))
    (folder / "same-as-good-1.png").write_bytes(png_1024[0])
    ds = make_dataset()
    summary = _op(ds, str(folder)).execute(context())
    assert summary["uploaded"] == 2
    assert summary["skipped_count"] == 5
    reasons = {Path(s["source"]).name: s["code"] for s in summary["skipped"]}
    assert reasons == {"small.png": "resolution", "text.png": "not_an_image", "corrupt.png": "corrupt",
                       "anim.gif": "unsupported_format", "same-as-good-1.png": "duplicate"}
    assert counts(bria_conn)["images"] == 2

    ds2 = make_dataset()
    before = len(bria_conn.requests("/v1/tailored-gen/datasets"))
    with pytest.raises(BriaInputError) as err:
        _op(ds2, str(folder), on_invalid="fail").execute(context())
    for name in ("small.png", "text.png", "corrupt.png", "anim.gif", "same-as-good-1.png"):
        assert name in str(err.value)
    posts = [r for r in bria_conn.requests("/v1/tailored-gen/datasets")[before:] if r["method"] == "POST"]
    assert posts == []
    assert counts(bria_conn)["images"] == 2


def test_basic_limit_fails_before_any_upload(bria_conn: Any, make_dataset: Callable[..., int], tmp_path: Path) -> None:
    write_images(tmp_path / "many", 201, size=256)
    ds = make_dataset()
    with pytest.raises(BriaInputError, match="limit of 200"):
        _op(ds, str(tmp_path / "many"), increase_resolution=True).execute(context())
    assert counts(bria_conn)["images"] == 0


def test_rerun_skips_images_already_present(bria_conn: Any, hook: Any, make_dataset: Callable[..., int],
                                            image_dir: Path) -> None:
    ds = make_dataset()
    first = _op(ds, f"{image_dir}/img-00[0-2].png").execute(context())
    assert first["uploaded"] == 3
    second = _op(ds, str(image_dir)).execute(context(try_number=2))
    assert second["uploaded"] == 3
    assert second["already_present"] == 3
    third = _op(ds, str(image_dir)).execute(context(try_number=3))
    assert third["uploaded"] == 0
    assert third["already_present"] == 6
    assert sorted(third["image_ids"]) == sorted(second["image_ids"])
    state = bria_conn.state()
    assert state["counts"]["images"] == 6
    assert state["duplicates"]["images"] == []


def test_faults_never_duplicate_or_lose_images(start_emulator: Callable[..., Any], monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    from kit import conn_json

    from airflow_provider_bria.hooks.bria import BriaHook

    emu = start_emulator()
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json(emu.url))
    hook = BriaHook(**FAST_HOOK)
    project = hook.create_project("Faults", "illustration", "stylized_scene", training_version="fibo")
    ds = hook.create_dataset(project["id"], "faulty", training_version="fibo")["id"]
    write_images(tmp_path / "src", 20, size=256)
    emu.set_faults(0.3, seed=7)
    try:
        summary = None
        for attempt in range(1, 8):  # an Airflow retry is a new execute() on the same inputs
            try:
                summary = _op(ds, str(tmp_path / "src"), increase_resolution=True,
                              hook_params={"retry_limit": 4, "retry_delay": 0.0, "retry_max_delay": 0.0},
                              ).execute(context(try_number=attempt))
                break
            except Exception:  # noqa: S112 - a failed try is retried, like Airflow would
                continue
        assert summary is not None, "the upload never succeeded"
        assert emu.state()["counts"]["faults_injected"] > 0
    finally:
        emu.set_faults(0.0)
    state = emu.state()
    assert state["duplicates"]["images"] == []
    assert state["counts"]["images"] == 20
    assert len(hook.list_images(ds)) == 20


def test_concurrency_is_bounded(bria_conn: Any, make_dataset: Callable[..., int], tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_bria.hooks.bria import BriaHook

    write_images(tmp_path / "src", 12, size=256)
    lock = threading.Lock()
    state: dict[str, Any] = {"now": 0, "max": 0, "active": set(), "shared": 0}
    original = BriaHook.upload_image

    def tracking(self: BriaHook, *args: Any, **kwargs: Any) -> Any:
        session = id(self.get_conn())
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
            state["shared"] += session in state["active"]
            state["active"].add(session)
        try:
            time.sleep(0.05)
            return original(self, *args, **kwargs)
        finally:
            with lock:
                state["now"] -= 1
                state["active"].discard(session)

    monkeypatch.setattr(BriaHook, "upload_image", tracking)
    ds = make_dataset()
    summary = _op(ds, str(tmp_path / "src"), increase_resolution=True, max_concurrency=3).execute(context())
    assert summary["uploaded"] == 12
    assert 2 <= state["max"] <= 3
    assert state["shared"] == 0  # no requests.Session is ever used by two uploads at once


def test_moderation_failure_keeps_the_other_images(bria_conn: Any, hook: Any, make_dataset: Callable[..., int],
                                                   image_dir: Path, png_1024: list[bytes]) -> None:
    (image_dir / "moderation-block.png").write_bytes(png_1024[10])
    ds = make_dataset()
    ctx = context()
    with pytest.raises(BriaUploadError) as err:
        _op(ds, str(image_dir), content_moderation=True, encoding="multipart").execute(ctx)
    assert [Path(f["source"]).name for f in err.value.failures] == ["moderation-block.png"]
    assert counts(bria_conn)["images"] == 6
    assert ctx["ti"].xcoms["upload_summary"]["uploaded"] == 6


def test_completed_dataset(bria_conn: Any, hook: Any, make_dataset: Callable[..., int], image_dir: Path,
                           png_1024: list[bytes]) -> None:
    ds = make_dataset()
    _op(ds, str(image_dir)).execute(context())
    if hook.get_dataset(ds)["training_version"] == "fibo":  # FIBO completion needs a visual_schema (Bria's spec)
        hook.update_dataset(ds, visual_schema={"style_medium": "photograph"})
    hook.update_dataset(ds, status="completed")
    again = _op(ds, str(image_dir)).execute(context(try_number=2))
    assert again["uploaded"] == 0
    assert again["already_present"] == 6
    (image_dir / "late.png").write_bytes(png_1024[11])
    with pytest.raises(BriaConflictError, match="completed"):
        _op(ds, str(image_dir)).execute(context(try_number=3))
    assert counts(bria_conn)["images"] == 6


def test_missing_dataset(bria_conn: Any, image_dir: Path) -> None:
    from airflow_provider_bria.exceptions import BriaNotFoundError

    with pytest.raises(BriaNotFoundError):
        _op(987654, str(image_dir)).execute(context())
    assert counts(bria_conn)["images"] == 0
