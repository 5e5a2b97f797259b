"""The hook over real HTTP against the emulator: the whole lifecycle, async calls, errors, and faults."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hooktestlib import png_bytes

pytest.importorskip("airflow_provider_bria.emulator.process")

from airflow_provider_bria.contract import JobStatus  # noqa: E402
from airflow_provider_bria.exceptions import (  # noqa: E402
    BriaAuthError,
    BriaConflictError,
    BriaJobError,
    BriaModerationError,
    BriaNotFoundError,
    BriaServerError,
    BriaTransportError,
    BriaValidationError,
)
from airflow_provider_bria.hooks.bria import BriaHook  # noqa: E402

SAMPLES = [png_bytes(256, 256, color=(i * 40 % 256, 90, 200 - i * 15)) for i in range(6)]


def _hook(**kwargs: Any) -> BriaHook:
    kwargs.setdefault("retry_delay", 0.05)
    return BriaHook(**kwargs)


def _wait_model(hook: BriaHook, model_id: int, wanted: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        model = hook.get_model(model_id)
        if model["status"] == wanted or time.monotonic() > deadline:
            return model
        time.sleep(0.2)


def _trained_fibo_model(hook: BriaHook) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    project = hook.create_project("hook-e2e", "illustration", "stylized_scene", training_version="fibo")
    dataset = hook.create_dataset(project["id"], "ds", training_version="fibo")
    schema = hook.generate_visual_schema(SAMPLES[:5])
    hook.update_dataset(dataset["id"], visual_schema=schema)
    for i, data in enumerate(SAMPLES[:5]):
        hook.upload_image(dataset["id"], file=data, image_name=f"img{i}.png",
                          encoding="multipart" if i % 2 else "json")
    hook.update_dataset(dataset["id"], status="completed")
    model = hook.create_model(dataset["id"], "m1", training_version="fibo")
    hook.start_training(model["id"])
    trained = _wait_model(hook, model["id"], "Completed")
    assert trained["status"] == "Completed"
    return project, dataset, trained


def test_lifecycle_over_http(bria_conn: Any) -> None:
    hook = _hook()
    ok, message = hook.test_connection()
    assert ok, message

    project = hook.create_project("hook-e2e", "illustration", "stylized_scene", training_version="fibo")
    assert hook.find_project("hook-e2e")["id"] == project["id"]
    assert hook.get_project(project["id"])["project_name"] == "hook-e2e"
    assert hook.update_project(project["id"], project_description="updated")["project_description"] == "updated"

    dataset = hook.create_dataset(project["id"], "ds", training_version="fibo")
    assert dataset["status"] == "draft"
    assert hook.find_dataset(project["id"], "ds")["id"] == dataset["id"]
    schema = hook.generate_visual_schema(SAMPLES[:5])
    json.loads(schema)
    refined = hook.refine_structured_prompt(dataset["id"], schema, "make the colors warmer")
    json.loads(refined)
    hook.update_dataset(dataset["id"], visual_schema=refined)

    uploaded = [
        hook.upload_image(dataset["id"], file=data, image_name=f"img{i}.png",
                          encoding="multipart" if i % 2 else "json")
        for i, data in enumerate(SAMPLES)
    ]
    assert [img["image_name"] for img in uploaded] == [f"img{i}.png" for i in range(6)]
    images = hook.list_images(dataset["id"])
    assert sorted(i["id"] for i in images) == sorted(i["id"] for i in uploaded)
    first = uploaded[0]
    assert hook.get_image(dataset["id"], first["id"])["id"] == first["id"]
    caption = json.dumps({"subject": "a hand-written caption"})
    assert hook.update_image_caption(dataset["id"], first["id"], caption)["caption_source"] == "manual"
    assert hook.regenerate_image_caption(dataset["id"], first["id"])["caption_source"] == "automatic"
    hook.delete_image(dataset["id"], uploaded[-1]["id"])
    with pytest.raises(BriaNotFoundError):
        hook.get_image(dataset["id"], uploaded[-1]["id"])
    hook.regenerate_all_captions(dataset["id"])
    assert len(hook.get_dataset(dataset["id"], max_images=2)["images"]) == 2

    clone = hook.clone_dataset(dataset["id"], name="ds-copy")
    assert clone["status"] == "draft"
    assert clone["id"] != dataset["id"]
    hook.delete_dataset(clone["id"])

    hook.update_dataset(dataset["id"], status="completed")
    with pytest.raises(BriaConflictError):
        hook.upload_image(dataset["id"], file=SAMPLES[0], image_name="late.png")

    model = hook.create_model(dataset["id"], "m1", training_version="fibo", description="first")
    assert hook.find_model(dataset["id"], "m1")["id"] == model["id"]
    assert hook.update_model(model["id"], description="renamed")["description"] == "renamed"
    assert any(m["id"] == model["id"] for m in hook.list_project_models(project["id"]))
    started = hook.start_training(model["id"])
    assert started["status"] == "InProgress"
    with pytest.raises(BriaConflictError):
        hook.delete_model(model["id"])
    assert _wait_model(hook, model["id"], "Completed")["status"] == "Completed"
    assert "download_url" in hook.download_model(model["id"])
    assert any(m["id"] == model["id"] for m in hook.list_models(include_training_parameters=True))
    assert any(d["id"] == dataset["id"] for d in hook.list_datasets())
    assert any(p["id"] == project["id"] for p in hook.list_projects())

    state = bria_conn.state()
    assert state["counts"]["trainings_started"] == 1
    assert state["duplicates"]["projects"] == []
    assert state["duplicates"]["models"] == []


def test_generation_and_downloads_over_http(bria_conn: Any) -> None:
    hook = _hook()
    _, _, model = _trained_fibo_model(hook)

    sync = hook.generate_image(model["id"], prompt="a fox in the snow", seed=5, aspect_ratio="16:9", sync=True)
    assert sync.status is JobStatus.COMPLETED
    assert sync.image_url
    assert sync.seed == 5
    with hook.open_download(sync.image_url) as resp:
        data = resp.content
    assert data.startswith(b"\x89PNG")

    job = hook.generate_image(model["id"], prompt="a fox in the rain", seed=6)
    assert job.status is JobStatus.IN_PROGRESS
    assert job.request_id
    done = hook.wait_for_job(job.status_url or job.request_id, poll_interval=0.1, timeout=30)
    assert done.image_url
    assert done.status is JobStatus.COMPLETED

    again = hook.generate_image(model["id"], structured_prompt=sync.structured_prompt, seed=5, sync=True)
    assert again.image_url

    sp = hook.generate_structured_prompt(model["id"], prompt="a fox", sync=True)
    json.loads(sp.structured_prompt or "")

    video = hook.image_to_video(model["id"], sync.image_url, seed=1)
    assert hook.wait_for_job(video.request_id, poll_interval=0.1, timeout=30).video_url

    with pytest.raises(BriaModerationError):
        hook.generate_image(model["id"], prompt="something forbidden", sync=True)
    failing = hook.generate_image(model["id"], prompt="this will fail-job")
    with pytest.raises(BriaJobError) as info:
        hook.wait_for_job(failing.request_id, poll_interval=0.1, timeout=30)
    assert info.value.request_id == failing.request_id
    assert hook.get_status("no-such-request").status is JobStatus.NOT_FOUND


def test_legacy_generation_and_prefix_over_http(bria_conn: Any) -> None:
    hook = _hook()
    project = hook.create_project("legacy", "photography", "stylized_scene")
    prefix = hook.generate_prefix(ip_type="stylized_scene", ip_medium="photography", images=SAMPLES[:2])
    assert prefix.strip()
    dataset = hook.create_dataset(project["id"], "legacy-ds", training_version="max")
    hook.update_dataset(dataset["id"], caption_prefix=prefix)
    for i, data in enumerate(SAMPLES[:5]):  # the spec: 5 images to complete, legacy too
        hook.upload_image(dataset["id"], file=data, image_name=f"legacy{i}.png")
    hook.update_dataset(dataset["id"], status="completed")
    model = hook.create_model(dataset["id"], "legacy-m", training_version="max")
    hook.start_training(model["id"])
    assert _wait_model(hook, model["id"], "Completed")["status"] == "Completed"
    from airflow_provider_bria.responses import normalize_v1_result

    results = normalize_v1_result(hook.text_to_image_legacy(model["id"], "a quiet street", num_results=1, seed=3))
    assert len(results) == 1
    assert results[0]["image_url"]


def test_stop_training_and_async_calls_over_http(bria_conn: Any) -> None:
    import asyncio

    hook = _hook()
    project = hook.create_project("stop", "photography", "other")
    dataset = hook.create_dataset(project["id"], "ds", training_version="max")
    for i, data in enumerate(SAMPLES[:5]):  # the spec: 5 images to complete, legacy too
        hook.upload_image(dataset["id"], file=data, image_name=f"a{i}.png")
    hook.update_dataset(dataset["id"], status="completed")
    model = hook.create_model(dataset["id"], "to-stop", training_version="max")
    hook.start_training(model["id"])

    async def run() -> tuple[dict[str, Any], Any, dict[str, Any]]:
        async with BriaHook(retry_delay=0.05) as ahook:
            polled = await ahook.aget_model(model["id"])
            stopped = await ahook.astop_training(model["id"])
            status = await ahook.aget_status("unknown-request")
            bulk_missing = None
            try:
                await ahook.aget_bulk_upload_status(dataset["id"])
            except BriaNotFoundError as exc:
                bulk_missing = {"status_code": exc.status_code}
            return polled, (stopped, status), bulk_missing or {}

    polled, (stopped, status), _ = asyncio.run(run())
    assert polled["status"] == "InProgress"
    assert stopped is None or stopped.get("id") == model["id"]
    assert status.status is JobStatus.NOT_FOUND
    assert _wait_model(hook, model["id"], "Stopped")["status"] in ("Stopping", "Stopped")
    with pytest.raises(BriaConflictError):
        hook.stop_training(model["id"])


def test_bulk_upload_and_status_over_http(bria_conn: Any) -> None:
    hook = _hook()
    project = hook.create_project("bulk", "photography", "other")
    dataset = hook.create_dataset(project["id"], "adv", upload_type="advanced", training_version="max")
    hook.bulk_upload(dataset["id"], "http://127.0.0.1:1/missing.zip")  # unreachable: the job fails
    deadline = time.monotonic() + 20
    status = hook.get_bulk_upload_status(dataset["id"])
    while status["status"] not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.1)
        status = hook.get_bulk_upload_status(dataset["id"])
    assert status["status"] == "failed"
    with pytest.raises((BriaConflictError, BriaValidationError)):  # one bulk attempt per dataset
        hook.bulk_upload(dataset["id"], "http://127.0.0.1:1/again.zip")
    with pytest.raises(BriaNotFoundError):
        hook.get_project(999999)


def test_wrong_token_is_an_auth_error(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_BAD", json.dumps({"conn_type": "bria", "host": emulator.url,
                                                            "password": "wrong-token"}))
    hook = _hook(bria_conn_id="bria_bad")
    with pytest.raises(BriaAuthError):
        hook.list_projects()
    ok, message = hook.test_connection()
    assert ok is False
    assert "wrong-token" not in message


def test_faults_reads_retried_creates_never_duplicated(start_emulator: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    faulty = start_emulator(fault_rate=0.35, seed=7)
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_FAULTY", json.dumps({"conn_type": "bria", "host": faulty.url,
                                                               "password": faulty.token}))
    hook = _hook(bria_conn_id="bria_faulty", retry_limit=8, retry_delay=0.01, retry_max_delay=0.05)
    outcomes: dict[str, str] = {}
    for i in range(8):
        name = f"p{i}"
        try:
            hook.create_project(name, "photography", "other")
            outcomes[name] = "created"
        except (BriaServerError, BriaTransportError):
            outcomes[name] = "ambiguous"  # not retried: the operator would reconcile with find_project
    for _ in range(6):
        names = {p["project_name"] for p in hook.list_projects()}
        assert {n for n, o in outcomes.items() if o == "created"} <= names
    applied = [n for n, o in outcomes.items() if o == "ambiguous" and hook.find_project(n) is not None]
    state = faulty.state()
    assert state["counts"]["faults_injected"] > 0
    assert "ambiguous" in outcomes.values()  # seed 7 exercises after-apply faults on POST
    assert state["duplicates"]["projects"] == []
    assert state["counts"]["projects"] == list(outcomes.values()).count("created") + len(applied)
