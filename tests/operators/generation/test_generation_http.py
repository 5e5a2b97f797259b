"""Generation operators over real HTTP against the emulator: files really land in object stores."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from generation_helpers import make_context, png_size, submissions, train_model

from airflow_provider_bria._compat import AIRFLOW_V_3_2_PLUS
from airflow_provider_bria.contract import aspect_ratio_size
from airflow_provider_bria.exceptions import BriaGenerationError, BriaModelNotReadyError
from airflow_provider_bria.operators.generation import (
    BriaGenerateImagesOperator,
    BriaGenerateLegacyImagesOperator,
    BriaGenerateStructuredPromptOperator,
    BriaGenerateVideoOperator,
)

FAST = {"poll_interval": 0.1, "hook_params": {"retry_limit": 3, "retry_delay": 0.05, "retry_max_delay": 0.2}}


def images_op(model_id: int, output_path: str, **kwargs: Any) -> BriaGenerateImagesOperator:
    return BriaGenerateImagesOperator(task_id="gen", model_id=str(model_id), output_path=output_path,
                                      **{**FAST, **kwargs})


def test_images_land_in_file_store_and_rerun_generates_nothing(bria_conn: Any, fibo_model: int,
                                                                tmp_path: Path) -> None:
    out = "file://" + str(tmp_path / "out")
    prompts = ["a lighthouse at dawn", "a red kite"]
    result = images_op(fibo_model, out, prompt=prompts, num_images_per_prompt=2, aspect_ratio="16:9",
                       max_concurrency=3).execute(make_context())
    assert len(result) == 4
    assert [(r["prompt"], r["index"]) for r in result] == [(p, i) for p in prompts for i in (0, 1)]
    expected = aspect_ratio_size("16:9", long_side=512)
    for rec in result:
        path = Path(rec["uri"].removeprefix("file://"))
        assert path.parent == tmp_path / "out"
        assert png_size(path.read_bytes()) == expected
        assert json.loads(rec["structured_prompt"])  # the generated structured prompt, a JSON string
        assert rec["request_id"]
        assert isinstance(rec["seed"], int)
        assert rec["existing"] is False
        side = json.loads(path.with_suffix(".json").read_text())
        assert side["status"] == "completed"
        assert side["request_id"] == rec["request_id"]
    assert len({r["uri"] for r in result}) == 4
    assert len({r["seed"] for r in result}) == 4
    assert len(submissions(bria_conn)) == 4
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.suffix == ".png") == sorted(
        Path(r["uri"]).name for r in result)

    before = len(bria_conn.requests())
    again = images_op(fibo_model, out, prompt=prompts, num_images_per_prompt=2, aspect_ratio="16:9").execute(
        make_context(try_number=2))
    assert len(submissions(bria_conn)) == 4  # nothing new generated
    assert len(bria_conn.requests()) == before  # not even the model check: every output existed
    assert [r["uri"] for r in again] == [r["uri"] for r in result]
    assert all(r["existing"] for r in again)
    assert [r["request_id"] for r in again] == [r["request_id"] for r in result]
    assert [r["structured_prompt"] for r in again] == [r["structured_prompt"] for r in result]


def test_images_land_in_memory_store(bria_conn: Any, fibo_model: int, memory_store: str) -> None:
    from airflow.sdk import ObjectStoragePath

    ctx = make_context()
    result = images_op(fibo_model, memory_store + "/gen", prompt=["a snowy village", "a tea house"],
                       aspect_ratio="4:5").execute(ctx)
    shown = memory_store.replace("://", ":///") if not AIRFLOW_V_3_2_PLUS else memory_store  # 3.0/3.1 spelling
    assert ctx["ti"].xcoms["output_path"] == shown + "/gen"
    for rec in result:
        assert rec["uri"].startswith(shown + "/gen/")
        path = ObjectStoragePath(rec["uri"])
        assert png_size(path.read_bytes()) == aspect_ratio_size("4:5", long_side=512)
    assert len(submissions(bria_conn)) == 2
    images_op(fibo_model, memory_store + "/gen", prompt=["a snowy village", "a tea house"],
              aspect_ratio="4:5").execute(make_context())
    assert len(submissions(bria_conn)) == 2


def test_moderation_and_failed_jobs_keep_successes(bria_conn: Any, fibo_model: int, tmp_path: Path) -> None:
    out = str(tmp_path / "out")
    prompts = ["a forbidden symbol", "please fail-job now", "a calm sea", "a green hill"]
    ctx = make_context()
    with pytest.raises(BriaGenerationError) as err:
        images_op(fibo_model, out, prompt=prompts).execute(ctx)
    by_prompt = {f["prompt"]: f for f in err.value.failures}
    assert set(by_prompt) == {"a forbidden symbol", "please fail-job now"}
    assert by_prompt["a forbidden symbol"]["kind"] == "moderation"
    assert by_prompt["a forbidden symbol"]["status_code"] == 422
    assert by_prompt["please fail-job now"]["kind"] == "job_failed"
    assert by_prompt["please fail-job now"]["request_id"]
    assert err.value.succeeded == 2
    assert "a forbidden symbol" in str(err.value)
    assert "please fail-job now" in str(err.value)
    kept = ctx["ti"].xcoms["outputs"]
    assert [r["prompt"] for r in kept] == ["a calm sea", "a green hill"]
    assert len(list((tmp_path / "out").glob("*.png"))) == 2
    # a retry only resubmits what failed; the kept images are not generated again
    first = len(submissions(bria_conn))
    with pytest.raises(BriaGenerationError):
        images_op(fibo_model, out, prompt=prompts).execute(make_context(try_number=2))
    assert len(submissions(bria_conn)) - first == 2
    assert len(list((tmp_path / "out").glob("*.png"))) == 2


def test_unready_or_legacy_model_sends_no_generation_request(bria_conn: Any, hook: Any, tmp_path: Path) -> None:
    created = train_model(hook, bria_conn, complete=False)
    with pytest.raises(BriaModelNotReadyError, match="Created, not Completed"):
        images_op(created, str(tmp_path), prompt="a cat").execute(make_context())
    bria_conn.set_model_status(created, "Failed")
    with pytest.raises(BriaModelNotReadyError, match="Failed"):
        images_op(created, str(tmp_path), prompt="a cat").execute(make_context())
    bria_conn.set_model_status(created, "Deleted")  # Bria's soft delete
    with pytest.raises(BriaModelNotReadyError, match="is Deleted.*the model was deleted; create a new model"):
        images_op(created, str(tmp_path), prompt="a cat").execute(make_context())
    with pytest.raises(BriaModelNotReadyError):
        BriaGenerateVideoOperator(task_id="v", model_id=created, image="https://example.com/x.png",
                                  output_path=str(tmp_path)).execute(make_context())
    legacy = train_model(hook, bria_conn, version="bria-2.3")
    with pytest.raises(BriaModelNotReadyError, match="legacy"):
        images_op(legacy, str(tmp_path), prompt="a cat").execute(make_context())
    with pytest.raises(BriaModelNotReadyError, match="legacy"):
        BriaGenerateStructuredPromptOperator(task_id="s", model_id=legacy, prompt="a cat").execute(make_context())
    assert submissions(bria_conn, "/v2/") == []
    assert list(tmp_path.glob("*.png")) == []


def test_rate_limit_spaces_submissions(bria_conn: Any, fibo_model: int, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import math
    import threading

    from airflow_provider_bria.operators._rate_limit import RateLimiter

    rpm = 100  # one submission every 0.606 s (0.6 s + the limiter's 1 % margin)
    original = RateLimiter.reserve
    lock = threading.Lock()
    slots: list[float] = []
    intervals: set[float] = set()

    def recording_reserve(self: RateLimiter) -> float:
        with lock:  # the slot just reserved is the limiter's next free time minus one interval
            wait = original(self)
            slots.append(self._next_free - self.interval)
            intervals.add(self.interval)
            return wait

    monkeypatch.setattr(RateLimiter, "reserve", recording_reserve)
    images_op(fibo_model, str(tmp_path), prompt=[f"scene number {i}" for i in range(6)], requests_per_minute=rpm,
              max_concurrency=4).execute(make_context())

    # client side, exact: one slot per submission, consecutive slots at least one interval apart
    (interval,) = intervals
    assert interval >= 60 / rpm
    assert len(slots) == 6
    assert all(b - a >= interval - 1e-9 for a, b in zip(slots, slots[1:], strict=False)), slots

    # server side, what Bria counts: no 1-second window holds more submissions than the plan allows
    times = sorted(r["t"] for r in submissions(bria_conn))
    assert len(times) == 6
    allowed = math.ceil(rpm / 60)
    busiest = max(sum(1 for u in times if t <= u < t + 1.0) for t in times)
    assert busiest <= allowed, (busiest, [round(u - times[0], 3) for u in times])


def test_structured_prompt_operator(bria_conn: Any, fibo_model: int) -> None:
    one = BriaGenerateStructuredPromptOperator(task_id="s", model_id=fibo_model, prompt="a harbour at night",
                                               **FAST).execute(make_context())
    assert isinstance(json.loads(one), dict)
    many = BriaGenerateStructuredPromptOperator(task_id="s", model_id=fibo_model, prompt=["a", "b"], sync=True,
                                                structured_prompt=one, **FAST).execute(make_context())
    assert len(many) == 2
    assert all(isinstance(json.loads(s), dict) for s in many)
    assert len(submissions(bria_conn, "/v2/structured_prompt")) == 3
    with pytest.raises(BriaGenerationError) as err:
        BriaGenerateStructuredPromptOperator(task_id="s", model_id=fibo_model, prompt=["ok", "forbidden"],
                                             **FAST).execute(make_context())
    assert [f["kind"] for f in err.value.failures] == ["moderation"]


def test_recreate_from_structured_prompt(bria_conn: Any, fibo_model: int, tmp_path: Path) -> None:
    first = images_op(fibo_model, str(tmp_path), prompt="a mountain cabin", seed=7).execute(make_context())[0]
    again = images_op(fibo_model, str(tmp_path / "recreate"), structured_prompt=first["structured_prompt"],
                      seed=7).execute(make_context())[0]
    assert Path(again["uri"]).name.startswith("structured-")
    assert again["structured_prompt"] == first["structured_prompt"]
    assert again["seed"] == 7


def test_video_operator_saves_mp4_and_skips_on_rerun(bria_conn: Any, fibo_model: int, tmp_path: Path) -> None:
    image = images_op(fibo_model, str(tmp_path / "img"), prompt="a paper plane").execute(make_context())[0]
    kwargs = {"task_id": "video", "model_id": fibo_model, "image": image["uri"], "seed": 4,
              "output_path": str(tmp_path / "video"), **FAST}
    rec = BriaGenerateVideoOperator(**kwargs).execute(make_context())
    path = Path(rec["uri"].removeprefix("file://"))
    assert path.suffix == ".mp4"
    assert path.stat().st_size > 0
    assert path.read_bytes()[4:8] == b"ftyp"  # an MP4 container
    assert rec["seed"] == 4
    assert rec["request_id"]
    assert rec["existing"] is False
    assert len(submissions(bria_conn, "/v2/video")) == 1
    again = BriaGenerateVideoOperator(**kwargs).execute(make_context())
    assert again["existing"] is True
    assert again["uri"] == rec["uri"]
    assert again["request_id"] == rec["request_id"]
    assert len(submissions(bria_conn, "/v2/video")) == 1


def test_video_logs_and_names_its_source_image(
    bria_conn: Any, fibo_model: int, tmp_path: Path, capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Quiet logs (issue 15 item 8): the submission names the source image, and so does the video file."""
    image = images_op(fibo_model, str(tmp_path / "img"), prompt="a paper plane").execute(make_context())[0]
    shot = tmp_path / "shot-01.png"
    shot.write_bytes(Path(image["uri"].removeprefix("file://")).read_bytes())
    capfd.readouterr()
    caplog.clear()
    with caplog.at_level("INFO"):
        rec = BriaGenerateVideoOperator(task_id="video", model_id=fibo_model, image=str(shot), seed=4,
                                        output_path=str(tmp_path / "video"), **FAST).execute(make_context())
    logs = "".join(capfd.readouterr()) + caplog.text
    assert Path(rec["uri"]).name.startswith("video-shot-01-")
    assert "Submitted image 'shot-01.png' (seed 4)" in logs
    assert "<structured prompt>" not in logs


def test_legacy_operator_downloads_every_result(bria_conn: Any, hook: Any, tmp_path: Path) -> None:
    legacy = train_model(hook, bria_conn, version="bria-2.3")
    kwargs = {"task_id": "legacy", "model_id": legacy, "prompt": ["a red fox", "a blue whale"], "num_results": 2,
              "aspect_ratio": "3:2", "fast": True, "include_generation_prefix": False,
              "output_path": str(tmp_path), **FAST}
    result = BriaGenerateLegacyImagesOperator(**kwargs).execute(make_context())
    assert [(r["prompt"], r["index"]) for r in result] == [("a red fox", 0), ("a red fox", 1), ("a blue whale", 0),
                                                           ("a blue whale", 1)]
    for rec in result:
        w, h = png_size(Path(rec["uri"].removeprefix("file://")).read_bytes())
        assert abs(w / h - 1.5) < 0.02
    assert len(submissions(bria_conn, "/v1/text-to-image")) == 2
    again = BriaGenerateLegacyImagesOperator(**kwargs).execute(make_context())
    assert all(r["existing"] for r in again)
    assert [r["uri"] for r in again] == [r["uri"] for r in result]
    assert len(submissions(bria_conn, "/v1/text-to-image")) == 2
    fibo = train_model(hook, bria_conn)
    with pytest.raises(BriaModelNotReadyError, match="fibo model"):
        BriaGenerateLegacyImagesOperator(**{**kwargs, "model_id": fibo}).execute(make_context())
    assert len(submissions(bria_conn, "/v1/text-to-image")) == 2


def test_deferrable_mode_defers_and_resumes(bria_conn: Any, fibo_model: int, tmp_path: Path) -> None:
    from airflow_provider_bria._compat import TaskDeferred

    task = images_op(fibo_model, str(tmp_path), prompt=["a windmill", "a canal"], deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        task.execute(make_context())
    trigger = deferred.value.trigger
    import asyncio

    async def first_event() -> Any:
        async for event in trigger.run():
            return event
        return None

    event = asyncio.run(first_event())
    assert event.payload["status"] == "success"
    result = task.execute_complete(make_context(), event=event.payload)
    assert len(result) == 2
    assert all(Path(r["uri"].removeprefix("file://")).exists() for r in result)
    assert len(submissions(bria_conn)) == 2


def test_faults_and_retries_end_with_every_output_exactly_once(start_emulator: Any, monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    """With 30 % of API calls failing (before or after being applied), Airflow-style retries finish the batch."""
    from kit import conn_json

    from airflow_provider_bria.exceptions import BriaError
    from airflow_provider_bria.hooks.bria import BriaHook

    emu = start_emulator(job_seconds=0.2)
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json(emu.url))
    model_id = train_model(BriaHook(retry_limit=2, retry_delay=0.0, retry_max_delay=0.0), emu)
    emu.set_faults(0.3, seed=int(os.environ.get("BRIA_GEN_FAULT_SEED", "11")))
    prompts = [f"faulty scene {i}" for i in range(6)]
    result = None
    errors: list[str] = []
    for try_number in range(1, 11):
        try:
            result = images_op(model_id, str(tmp_path), prompt=prompts, max_concurrency=3).execute(
                make_context(try_number=try_number))
            break
        except BriaError as err:  # what Airflow would retry
            errors.append(type(err).__name__)
    emu.set_faults(0.0)
    assert result is not None, errors
    state = emu.state()
    assert state["counts"]["faults_injected"] > 0
    posts = [r for r in emu.requests(path_prefix="/v2/image") if r["method"] == "POST"]
    unretryable = [r for r in posts if r.get("fault") and r["fault"] != "before-429"]
    if unretryable:  # a submission that failed ambiguously fails that try
        assert errors
    # only submissions that Bria applied while the client saw a failure are paid twice, never anything else
    applied_unseen = [r for r in posts if str(r.get("fault") or "").startswith("after-")]
    assert state["counts"]["generation_jobs"] == 6 + len(applied_unseen)
    assert len(result) == 6
    assert sorted(r["prompt"] for r in result) == sorted(prompts)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len([f for f in files if f.endswith(".png")]) == 6
    assert len([f for f in files if f.endswith(".json")]) == 6
    assert not [f for f in files if f.endswith(".part")]
    square = aspect_ratio_size("1:1", long_side=512)
    for rec in result:
        assert png_size(Path(rec["uri"].removeprefix("file://")).read_bytes()) == square
