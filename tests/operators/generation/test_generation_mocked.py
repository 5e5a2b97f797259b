"""Generation operators against a fake Bria host (requests-mock): the error variants the emulator cannot produce."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests_mock as rm
from generation_helpers import CDN, MOCK_BASE, MOCK_TOKEN, make_context, png_bytes, png_size

from airflow_provider_bria.exceptions import (
    BriaAuthError,
    BriaGenerationError,
    BriaModelNotReadyError,
    BriaTriggerEventError,
)
from airflow_provider_bria.operators.generation import (
    BriaGenerateImagesOperator,
    BriaGenerateLegacyImagesOperator,
    BriaGenerateStructuredPromptOperator,
)

V2_IMAGE = f"{MOCK_BASE}/v2/image/generate/tailored"
FAST = {"poll_interval": 0.01, "hook_params": {"retry_limit": 1, "retry_delay": 0.0, "retry_max_delay": 0.0}}
SP = json.dumps({"short_description": "a scene"})


def model_body(status: str = "Completed", version: str | None = "fibo", model_id: int = 5) -> dict[str, Any]:
    return {"id": model_id, "name": "m", "status": status, "training_version": version}


class FakeBria:
    """Programmable v2 host: each prompt maps to a scripted list of status bodies."""

    def __init__(self, api: rm.Mocker, statuses: dict[str, list[tuple[int, dict[str, Any]]]] | None = None,
                 submit: dict[str, tuple[int, Any]] | None = None, model: dict[str, Any] | None = None) -> None:
        self.api = api
        self.statuses = statuses or {}
        self.submit = submit or {}
        self.by_rid: dict[str, str] = {}
        api.get(rm.ANY, json=self._get)  # status polls and CDN downloads (later, more specific mocks win)
        api.get(f"{MOCK_BASE}/v1/tailored-gen/models/5", json=model or model_body())
        api.post(V2_IMAGE, json=self._submit)

    def _submit(self, request: Any, context: Any) -> Any:
        body = request.json()
        prompt = body.get("prompt") or "<sp>"
        if prompt in self.submit:
            context.status_code, out = self.submit[prompt]
            return out
        rid = f"rid-{len(self.by_rid) + 1}"
        self.by_rid[rid] = prompt
        context.status_code = 202
        return {"request_id": rid, "status_url": f"{MOCK_BASE}/v2/status/{rid}"}

    def _get(self, request: Any, context: Any) -> Any:
        url = request.url
        if url.startswith(CDN):
            context.headers["Content-Type"] = "image/png"
            return None
        rid = url.rsplit("/", 1)[-1]
        prompt = self.by_rid.get(rid)
        script = self.statuses.get(prompt or "", [])
        if script:
            code, body = script.pop(0) if len(script) > 1 else script[0]
        else:
            code, body = 200, {"status": "COMPLETED", "request_id": rid,
                               "result": {"image_url": f"{CDN}/{rid}.png", "seed": "11", "structured_prompt": SP}}
        context.status_code = code
        return body


def serve_png(api: rm.Mocker, name: str, data: bytes | None = None) -> None:
    api.get(f"{CDN}/{name}", content=data or png_bytes(64, 64))


def posts(api: rm.Mocker) -> list[Any]:
    return [r for r in api.request_history if r.method == "POST"]


def op(tmp_path: Path, **kwargs: Any) -> BriaGenerateImagesOperator:
    kwargs.setdefault("output_path", str(tmp_path / "out"))
    return BriaGenerateImagesOperator(task_id="gen", model_id=5, **{**FAST, **kwargs})


def test_unknown_status_is_polled_on_not_failed(api: rm.Mocker, tmp_path: Path) -> None:
    """UNKNOWN (or any status this client does not know) is not a failure: the wait keeps polling."""
    FakeBria(api, statuses={"a cat": [
        (200, {"status": "UNKNOWN", "request_id": "rid-1"}),
        (200, {"status": "REQUEUED", "request_id": "rid-1"}),
        (200, {"status": "COMPLETED", "request_id": "rid-1", "result": {"image_url": f"{CDN}/rid-1.png"}}),
    ]})
    serve_png(api, "rid-1.png")
    result = op(tmp_path, prompt="a cat").execute(make_context())
    assert [r["request_id"] for r in result] == ["rid-1"]
    assert len([r for r in api.request_history if "/v2/status/" in r.url]) == 3


@pytest.mark.parametrize("seed", [None, -5])
def test_structured_prompt_alone_always_goes_out_with_a_seed(api: rm.Mocker, tmp_path: Path,
                                                             seed: int | None) -> None:
    """The spec: a structured_prompt alone "recreates a previous image exactly (requires seed)"; the operator
    derives one when none is given, and any integer (negative too: the spec states no range) is sent."""
    FakeBria(api)
    serve_png(api, "rid-1.png")
    op(tmp_path, structured_prompt=SP, seed=seed).execute(make_context())
    sent = posts(api)[0].json()
    assert sent["structured_prompt"] == SP
    assert "prompt" not in sent
    assert isinstance(sent["seed"], int)
    if seed is not None:
        assert sent["seed"] == seed


def test_result_wrapped_status_and_202_from_status(api: rm.Mocker, tmp_path: Path) -> None:
    fake = FakeBria(api, statuses={"a cat": [
        (202, {"status": "IN_PROGRESS", "request_id": "rid-1"}),
        (202, {"status": "COMPLETED", "request_id": "rid-1",
               "result": {"image_url": f"{CDN}/rid-1.png", "seed": "77", "structured_prompt": SP}}),
    ]})
    serve_png(api, "rid-1.png")
    result = op(tmp_path, prompt="a cat").execute(make_context())
    assert fake.by_rid == {"rid-1": "a cat"}
    assert len(result) == 1
    rec = result[0]
    assert rec["seed"] == 77
    assert rec["request_id"] == "rid-1"
    assert rec["structured_prompt"] == SP
    assert rec["prompt"] == "a cat"
    assert rec["existing"] is False
    path = Path(rec["uri"].removeprefix("file://"))
    assert png_size(path.read_bytes()) == (64, 64)
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["status"] == "completed"
    assert side["request_id"] == "rid-1"
    cdn_calls = [r for r in api.request_history if r.url.startswith(CDN)]
    assert cdn_calls
    assert all("api_token" not in r.headers for r in cdn_calls)
    assert all(r.headers.get("api_token") == MOCK_TOKEN for r in api.request_history if r.url.startswith(MOCK_BASE))


def test_flat_sync_body_completes_without_polling(api: rm.Mocker, tmp_path: Path) -> None:
    FakeBria(api, submit={"a dog": (200, {"image_url": f"{CDN}/flat.png", "structured_prompt": SP, "seed": 5})})
    serve_png(api, "flat.png")
    result = op(tmp_path, prompt="a dog", seed=5).execute(make_context())
    assert result[0]["seed"] == 5
    assert result[0]["structured_prompt"] == SP
    assert result[0]["request_id"] is None
    assert not [r for r in api.request_history if "/v2/status/" in r.url]


@pytest.mark.parametrize(
    ("status_code", "body", "kind"),
    [
        (200, {"status": "ERROR", "error": {"code": 500, "message": "Internal", "details": "gpu"}}, "job_failed"),
        (200, {"status": "FAILED", "error": {"code": 500, "message": "boom"}}, "job_failed"),
        (404, {"status": "NOT_FOUND"}, "expired"),
        (200, {"status": "ERROR", "error": {"code": 422, "message": "Output blocked by moderation"}}, "moderation"),
    ],
)
def test_failed_jobs_are_listed_and_successes_kept(api: rm.Mocker, tmp_path: Path, status_code: int,
                                                    body: dict[str, Any], kind: str) -> None:
    FakeBria(api, statuses={"bad": [(status_code, body)]})
    for i in (1, 2, 3):
        serve_png(api, f"rid-{i}.png")
    task = op(tmp_path, prompt=["good one", "bad", "good two"], max_concurrency=1)
    ctx = make_context()
    with pytest.raises(BriaGenerationError) as err:
        task.execute(ctx)
    failures = err.value.failures
    assert len(failures) == 1
    assert err.value.succeeded == 2
    assert failures[0]["prompt"] == "bad"
    assert failures[0]["kind"] == kind
    assert failures[0]["request_id"] == "rid-2"
    assert "'bad'" in str(err.value)
    assert kind in str(err.value)
    kept = ctx["ti"].xcoms["outputs"]
    assert [r["prompt"] for r in kept] == ["good one", "good two"]
    assert all(Path(r["uri"].removeprefix("file://")).exists() for r in kept)
    assert ctx["ti"].xcoms["failures"] == failures


@pytest.mark.parametrize(
    ("code", "body", "kind"),
    [
        (422, {"error": {"code": 422, "message": "Prompt failed content moderation"}, "request_id": "x"}, "moderation"),
        (500, {"error": {"code": 500, "message": "Internal Server Error"}}, "submission_unknown"),
        (400, {"error": {"code": 400, "message": "prompt too long"}}, "rejected"),
    ],
)
def test_submission_errors_fail_one_item_without_blind_retry(api: rm.Mocker, tmp_path: Path, code: int,
                                                             body: dict[str, Any], kind: str) -> None:
    FakeBria(api, submit={"bad": (code, body)})
    serve_png(api, "rid-1.png")
    with pytest.raises(BriaGenerationError) as err:
        op(tmp_path, prompt=["bad", "fine"], max_concurrency=1).execute(make_context())
    assert [(f["prompt"], f["kind"], f["status_code"]) for f in err.value.failures] == [("bad", kind, code)]
    bad_posts = [r for r in posts(api) if r.json()["prompt"] == "bad"]
    assert len(bad_posts) == 1  # a POST is never blindly retried (the 5xx may have started a paid job)


def test_auth_error_stops_the_batch(api: rm.Mocker, tmp_path: Path) -> None:
    FakeBria(api, submit={"p0": (403, "Quota exceeded: Free users can make up to 1000 requests in total.")})
    ctx = make_context()
    with pytest.raises(BriaAuthError, match="Quota exceeded"):
        op(tmp_path, prompt=[f"p{i}" for i in range(5)], max_concurrency=1).execute(ctx)
    assert len(posts(api)) == 1
    kinds = [f["kind"] for f in ctx["ti"].xcoms["failures"]]
    assert sorted(kinds) == ["auth", "not_attempted", "not_attempted", "not_attempted", "not_attempted"]


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (model_body("InProgress"), "InProgress, not Completed"),
        (model_body("Failed"), "training failed"),
        (model_body("Completed", "max"), "legacy model"),
        (model_body("Completed", "bria-2.3"), "BriaGenerateLegacyImagesOperator"),
    ],
)
def test_model_checked_before_any_generation_request(api: rm.Mocker, tmp_path: Path, model: dict[str, Any],
                                                     match: str) -> None:
    FakeBria(api, model=model)
    with pytest.raises(BriaModelNotReadyError, match=match):
        op(tmp_path, prompt="a cat").execute(make_context())
    assert posts(api) == []
    with pytest.raises(BriaModelNotReadyError):
        BriaGenerateStructuredPromptOperator(task_id="sp", model_id=5, prompt="x").execute(make_context())
    assert posts(api) == []


def test_legacy_operator_rejects_fibo_model(api: rm.Mocker, tmp_path: Path) -> None:
    FakeBria(api)
    task = BriaGenerateLegacyImagesOperator(task_id="legacy", model_id=5, prompt="a cat", output_path=str(tmp_path))
    with pytest.raises(BriaModelNotReadyError, match="BriaGenerateImagesOperator"):
        task.execute(make_context())
    assert posts(api) == []


def test_retry_resumes_submitted_job_instead_of_paying_again(api: rm.Mocker, tmp_path: Path) -> None:
    fake = FakeBria(api, statuses={"slow": [(200, {"status": "IN_PROGRESS"})]})
    task = op(tmp_path, prompt="slow", timeout=0.05)
    with pytest.raises(BriaGenerationError) as err:
        task.execute(make_context())
    assert err.value.failures[0]["kind"] == "timeout"
    assert err.value.failures[0]["request_id"] == "rid-1"
    assert len(posts(api)) == 1
    # the job finishes later; the retry polls the saved request instead of submitting again
    fake.statuses["slow"] = [(200, {"status": "COMPLETED", "result": {"image_url": f"{CDN}/rid-1.png", "seed": 3}})]
    serve_png(api, "rid-1.png")
    result = op(tmp_path, prompt="slow").execute(make_context(try_number=2))
    assert len(posts(api)) == 1
    assert result[0]["request_id"] == "rid-1"
    assert result[0]["existing"] is False
    # the next retry finds the file: no request at all
    before = len(api.request_history)
    again = op(tmp_path, prompt="slow").execute(make_context(try_number=3))
    assert len(api.request_history) == before
    assert again[0]["existing"] is True
    assert again[0]["uri"] == result[0]["uri"]
    assert again[0]["request_id"] == "rid-1"


def test_expired_saved_request_is_resubmitted(api: rm.Mocker, tmp_path: Path) -> None:
    fake = FakeBria(api, statuses={"slow": [(200, {"status": "IN_PROGRESS"})]})
    with pytest.raises(BriaGenerationError):
        op(tmp_path, prompt="slow", timeout=0.05).execute(make_context())
    fake.by_rid["rid-1"] = "gone"  # rid-1 has expired (404); the new submission rid-2 completes
    fake.statuses = {"gone": [(404, {"status": "NOT_FOUND"})]}
    serve_png(api, "rid-2.png")
    result = op(tmp_path, prompt="slow").execute(make_context(try_number=2))
    assert len(posts(api)) == 2
    assert result[0]["request_id"] == "rid-2"


def test_invalid_download_is_not_committed(api: rm.Mocker, tmp_path: Path) -> None:
    FakeBria(api)
    api.get(f"{CDN}/rid-1.png", text="<html>AccessDenied</html>")
    with pytest.raises(BriaGenerationError) as err:
        op(tmp_path, prompt="a cat").execute(make_context())
    assert err.value.failures[0]["kind"] == "download"
    assert not list((tmp_path / "out").glob("*.png"))
    assert len([r for r in api.request_history if r.url.startswith(CDN)]) == 3


def test_fail_on_error_false_returns_successes(api: rm.Mocker, tmp_path: Path) -> None:
    FakeBria(api, submit={"bad": (422, {"error": {"code": 422, "message": "blocked"}})})
    serve_png(api, "rid-1.png")
    ctx = make_context()
    result = op(tmp_path, prompt=["bad", "ok"], fail_on_error=False).execute(ctx)
    assert [r["prompt"] for r in result] == ["ok"]
    assert ctx["ti"].xcoms["failures"][0]["kind"] == "moderation"


def test_deferrable_defers_then_downloads_on_resume(api: rm.Mocker, tmp_path: Path) -> None:
    from airflow.sdk.exceptions import TaskDeferred

    from airflow_provider_bria.triggers.job import BriaJobTrigger

    FakeBria(api, statuses={"a": [(200, {"status": "IN_PROGRESS"})], "b": [(200, {"status": "IN_PROGRESS"})]})
    task = op(tmp_path, prompt=["a", "b"], deferrable=True, timeout=120)
    with pytest.raises(TaskDeferred) as deferred:
        task.execute(make_context())
    trigger = deferred.value.trigger
    assert isinstance(trigger, BriaJobTrigger)
    assert sorted(trigger.requests) == [f"{MOCK_BASE}/v2/status/rid-1", f"{MOCK_BASE}/v2/status/rid-2"]
    from airflow.sdk.serde import deserialize, serialize

    _, trigger_kwargs = trigger.serialize()
    state = deserialize(serialize(trigger_kwargs))["context"]  # the resume state travels with the trigger
    assert state == trigger.context
    handle_a = next(p["response"]["status_url"] for p in state["pending"] if p["item"]["prompt"] == "a")
    event = {"status": "timeout", "message": "1 job(s) still running", "pending": ["x"], "context": state,
             "outcomes": {handle_a: {"status": "COMPLETED", "request_id": "rid-1",
                                     "result": {"image_url": f"{CDN}/a.png", "seed": 9}}}}
    serve_png(api, "a.png")
    ctx = make_context()
    with pytest.raises(BriaGenerationError) as err:
        task.execute_complete(ctx, event=event)
    assert [f["prompt"] for f in err.value.failures] == ["b"]
    assert err.value.failures[0]["kind"] == "timeout"
    assert [r["prompt"] for r in ctx["ti"].xcoms["outputs"]] == ["a"]
    for bad in ({**event, "status": "weird"}, None, {**event, "context": None}):
        with pytest.raises(BriaTriggerEventError):
            task.execute_complete(make_context(), event=bad)


def test_structured_prompt_operator_sync_and_list(api: rm.Mocker) -> None:
    api.get(f"{MOCK_BASE}/v1/tailored-gen/models/5", json=model_body())
    api.post(f"{MOCK_BASE}/v2/structured_prompt/generate/tailored", [
        {"status_code": 200, "json": {"structured_prompt": SP}},
        {"status_code": 200, "json": {"result": {"structured_prompt": json.loads(SP), "seed": 1}, "request_id": "q"}},
    ])
    single = BriaGenerateStructuredPromptOperator(task_id="sp", model_id="5", prompt="one", sync=True, **FAST)
    assert single.execute(make_context()) == SP
    many = BriaGenerateStructuredPromptOperator(task_id="sp2", model_id=5, prompt=["x"], sync=True, **FAST)
    assert many.execute(make_context()) == [SP]
    assert all(r.json()["sync"] is True for r in posts(api))


def test_construction_and_input_validation(tmp_path: Path) -> None:
    from airflow_provider_bria.exceptions import BriaInputError

    with pytest.raises(BriaInputError, match="guidance_scale"):
        BriaGenerateImagesOperator(task_id="x", model_id=1, prompt="p", guidance_scale=9)
    with pytest.raises(BriaInputError, match="requests_per_minute"):
        BriaGenerateImagesOperator(task_id="x", model_id=1, prompt="p", requests_per_minute=0)
    with pytest.raises(BriaInputError, match="num_images_per_prompt"):
        BriaGenerateImagesOperator(task_id="x", model_id=1, prompt="p", num_images_per_prompt=0)
    with pytest.raises(BriaInputError, match="1-2 when fast=False"):
        BriaGenerateLegacyImagesOperator(task_id="x", model_id=1, prompt="p", num_results=3, fast=False)
    # templated fields are validated in execute, before any request (no connection needed)
    for kwargs, match in (({"model_id": "abc"}, "model_id"), ({"aspect_ratio": "7:3"}, "aspect_ratio"),
                          ({"seed": "x"}, "seed"), ({"structured_prompt": "{not json"}, "valid JSON"),
                          ({"prompt": None}, "nothing to generate")):
        task = BriaGenerateImagesOperator(task_id="x", **{"model_id": 1, "prompt": "p", **kwargs},
                                          output_path=str(tmp_path))
        with pytest.raises(BriaInputError, match=match):
            task.execute(make_context())


def test_unusable_result_url_makes_the_retry_submit_again(api: rm.Mocker, tmp_path: Path) -> None:
    FakeBria(api)
    api.get(f"{CDN}/rid-1.png", status_code=403, text="<Error>Request has expired</Error>")
    with pytest.raises(BriaGenerationError) as err:
        op(tmp_path, prompt="a cat").execute(make_context())
    failure = err.value.failures[0]
    assert (failure["kind"], failure["status_code"], failure["request_id"]) == ("download", 403, "rid-1")
    assert len([r for r in api.request_history if r.url == f"{CDN}/rid-1.png"]) == 1  # a 403 is not retried
    serve_png(api, "rid-2.png")
    result = op(tmp_path, prompt="a cat").execute(make_context(try_number=2))
    assert len(posts(api)) == 2
    assert result[0]["request_id"] == "rid-2"


def test_interrupted_download_retry_resumes_without_new_submission(api: rm.Mocker, tmp_path: Path) -> None:
    import requests

    FakeBria(api)
    api.get(f"{CDN}/rid-1.png", exc=requests.exceptions.ConnectionError("reset by peer"))
    with pytest.raises(BriaGenerationError) as err:
        op(tmp_path, prompt="a cat").execute(make_context())
    assert err.value.failures[0]["kind"] == "download"
    serve_png(api, "rid-1.png")
    result = op(tmp_path, prompt="a cat").execute(make_context(try_number=2))
    assert len(posts(api)) == 1  # the completed job was found again through its saved request id
    assert result[0]["request_id"] == "rid-1"
