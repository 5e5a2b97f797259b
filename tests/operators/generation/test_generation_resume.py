"""Retries that must not pay twice: legacy v1 image URLs saved before downloading, structured prompts cached.

Over real HTTP against the emulator (its request log counts the billable calls) and against a fake host
(requests-mock) for the download errors the emulator cannot produce on demand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests_mock as rm
from generation_helpers import CDN, MOCK_BASE, make_context, png_bytes, png_size, submissions, train_model

from airflow_provider_bria.exceptions import BriaGenerationError, BriaTransportError
from airflow_provider_bria.hooks.bria import BriaHook
from airflow_provider_bria.operators.generation import (
    BriaGenerateLegacyImagesOperator,
    BriaGenerateStructuredPromptOperator,
)

FAST = {"poll_interval": 0.1, "hook_params": {"retry_limit": 2, "retry_delay": 0.0, "retry_max_delay": 0.0}}
V1 = "/v1/text-to-image"


def legacy_op(model_id: int, out: Path, **kwargs: Any) -> BriaGenerateLegacyImagesOperator:
    return BriaGenerateLegacyImagesOperator(task_id="legacy", model_id=model_id, output_path=str(out),
                                            **{"num_results": 2, "fast": True, **FAST, **kwargs})


def sidecars(out: Path) -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in out.glob("*.json")}


def pngs(out: Path) -> list[str]:
    return sorted(p.name for p in out.glob("*.png"))


def fail_downloads(monkeypatch: pytest.MonkeyPatch, error: BaseException, *, after: int = 0) -> list[str]:
    """Make ``BriaHook.open_download`` raise ``error`` after ``after`` successful calls; returns the URLs asked."""
    original = BriaHook.open_download
    asked: list[str] = []

    def flaky(self: BriaHook, url: str, **kwargs: Any) -> Any:
        asked.append(url)
        if len(asked) > after:
            raise error
        return original(self, url, **kwargs)

    monkeypatch.setattr(BriaHook, "open_download", flaky)
    return asked


# ---------------------------------------------------------------------------------------------- v1 over HTTP


def test_legacy_download_failure_retry_downloads_saved_urls(bria_conn: Any, hook: Any, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    legacy = train_model(hook, bria_conn, version="bria-2.3")
    prompts = ["a red fox", "a blue whale"]
    with monkeypatch.context() as m:
        fail_downloads(m, BriaTransportError("connection reset while downloading", method="GET", path="/x"))
        with pytest.raises(BriaGenerationError) as err:
            legacy_op(legacy, tmp_path, prompt=prompts).execute(make_context())
    assert {f["kind"] for f in err.value.failures} == {"download"}
    assert len(submissions(bria_conn, V1)) == 2
    assert pngs(tmp_path) == []
    saved = sidecars(tmp_path)
    assert len(saved) == 2
    assert {s["status"] for s in saved.values()} == {"generated"}  # the URLs Bria returned, kept for the retry
    assert all(len(s["urls"]) == 2 for s in saved.values())

    result = legacy_op(legacy, tmp_path, prompt=prompts).execute(make_context(try_number=2))
    assert len(submissions(bria_conn, V1)) == 2  # no prompt paid twice
    assert [(r["prompt"], r["index"]) for r in result] == [(p, k) for p in prompts for k in (0, 1)]
    assert pngs(tmp_path) == sorted(Path(r["uri"]).name for r in result)
    for rec in result:
        w, h = png_size(Path(rec["uri"].removeprefix("file://")).read_bytes())
        assert w == h
        assert rec["existing"] is False
    assert {s["status"] for s in sidecars(tmp_path).values()} == {"completed"}


def test_legacy_kill_between_downloads_resumes_without_new_request(bria_conn: Any, hook: Any, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    legacy = train_model(hook, bria_conn, version="bria-2.3")
    with monkeypatch.context() as m:
        fail_downloads(m, KeyboardInterrupt(), after=1)  # the task is killed after the first image
        with pytest.raises(KeyboardInterrupt):
            legacy_op(legacy, tmp_path, prompt="a lighthouse").execute(make_context())
    assert len(pngs(tmp_path)) == 1
    assert not list(tmp_path.glob(".*.part"))
    with monkeypatch.context() as m:
        asked = fail_downloads(m, AssertionError("unreachable"), after=10)
        result = legacy_op(legacy, tmp_path, prompt="a lighthouse").execute(make_context(try_number=2))
    assert len(submissions(bria_conn, V1)) == 1
    assert len(asked) == 1  # only the missing image is downloaded
    assert [r["existing"] for r in result] == [True, False]
    assert len(pngs(tmp_path)) == 2
    again = legacy_op(legacy, tmp_path, prompt="a lighthouse").execute(make_context(try_number=3))
    assert all(r["existing"] for r in again)
    assert [r["seed"] for r in again] == [r["seed"] for r in result]
    assert len(submissions(bria_conn, V1)) == 1


def test_legacy_expired_saved_urls_are_requested_again(bria_conn: Any, hook: Any, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    legacy = train_model(hook, bria_conn, version="bria-2.3")
    with monkeypatch.context() as m:
        fail_downloads(m, BriaTransportError("timed out", method="GET", path="/x"))
        with pytest.raises(BriaGenerationError):
            legacy_op(legacy, tmp_path, prompt="a tea house").execute(make_context())
    (name, side), = sidecars(tmp_path).items()
    side["urls"] = [f"{bria_conn.url}/_emulator/files/expired-{k}.png" for k in range(2)]  # gone: 404
    (tmp_path / name).write_text(json.dumps(side))
    result = legacy_op(legacy, tmp_path, prompt="a tea house").execute(make_context(try_number=2))
    assert len(submissions(bria_conn, V1)) == 2  # requested once more, because the saved URLs were gone
    assert len(pngs(tmp_path)) == 2
    assert all(Path(r["uri"].removeprefix("file://")).exists() for r in result)
    assert not any("expired" in u for u in sidecars(tmp_path)[name]["urls"])


# ------------------------------------------------------------------------------------------ v1 against a mock


def mock_legacy(api: rm.Mocker, urls: list[list[str]]) -> None:
    api.get(f"{MOCK_BASE}/v1/tailored-gen/models/5",
            json={"id": 5, "name": "m", "status": "Completed", "training_version": "bria-2.3"})
    api.post(f"{MOCK_BASE}/v1/text-to-image/tailored/5",
             [{"json": {"result": [{"urls": u, "seed": 3}]}} for u in urls])


def test_legacy_saved_url_transient_error_keeps_them_forbidden_requests_again(api: rm.Mocker, tmp_path: Path) -> None:
    mock_legacy(api, [[f"{CDN}/a.png"], [f"{CDN}/b.png"]])
    api.get(f"{CDN}/a.png", status_code=503)
    with pytest.raises(BriaGenerationError):
        legacy_op(5, tmp_path, prompt="a cat", num_results=1).execute(make_context())
    with pytest.raises(BriaGenerationError) as err:  # still 503: keep the URLs, do not pay again
        legacy_op(5, tmp_path, prompt="a cat", num_results=1).execute(make_context(try_number=2))
    assert err.value.failures[0]["kind"] == "download"
    assert len([r for r in api.request_history if r.method == "POST"]) == 1
    assert [s["status"] for s in sidecars(tmp_path).values()] == ["generated"]

    api.get(f"{CDN}/a.png", status_code=403)  # the pre-signed URL expired: one new request
    api.get(f"{CDN}/b.png", content=png_bytes(64, 64))
    result = legacy_op(5, tmp_path, prompt="a cat", num_results=1).execute(make_context(try_number=3))
    assert len([r for r in api.request_history if r.method == "POST"]) == 2
    assert result[0]["seed"] == 3
    assert png_size(Path(result[0]["uri"].removeprefix("file://")).read_bytes()) == (64, 64)
    assert [s["urls"] for s in sidecars(tmp_path).values()] == [[f"{CDN}/b.png"]]


# ------------------------------------------------------------------------------ structured prompts: the cache


def test_structured_prompts_cached_in_output_path(bria_conn: Any, fibo_model: int, tmp_path: Path) -> None:
    out = tmp_path / "sp"
    prompts = ["a harbour at night", "a forbidden sign", "a desert road"]
    kwargs = {"task_id": "s", "model_id": fibo_model, "prompt": prompts, "output_path": str(out), **FAST}
    ctx = make_context()
    with pytest.raises(BriaGenerationError) as err:
        BriaGenerateStructuredPromptOperator(**kwargs).execute(ctx)
    assert [f["prompt"] for f in err.value.failures] == ["a forbidden sign"]
    assert ctx["ti"].xcoms["output_path"] == "file://" + str(out)
    assert len(submissions(bria_conn, "/v2/structured_prompt")) == 3
    saved = sidecars(out)
    done = [s for s in saved.values() if s["status"] == "completed"]
    assert sorted(s["prompt"] for s in done) == ["a desert road", "a harbour at night"]
    assert all(isinstance(json.loads(s["structured_prompt"]), dict) for s in done)

    # the retry only pays for what failed (still moderated, so it fails again)
    with pytest.raises(BriaGenerationError):
        BriaGenerateStructuredPromptOperator(**kwargs).execute(make_context(try_number=2))
    assert len(submissions(bria_conn, "/v2/structured_prompt")) == 4
    ok = BriaGenerateStructuredPromptOperator(**{**kwargs, "prompt": [prompts[2], prompts[0]]}).execute(
        make_context(try_number=3))
    assert len(submissions(bria_conn, "/v2/structured_prompt")) == 4  # every result came from the cache
    by_prompt = {s["prompt"]: s["structured_prompt"] for s in done}
    assert ok == [by_prompt[prompts[2]], by_prompt[prompts[0]]]
    one = BriaGenerateStructuredPromptOperator(**{**kwargs, "prompt": prompts[0]}).execute(make_context())
    assert one == by_prompt[prompts[0]]
    assert bria_conn.requests(path_prefix="/v1/tailored-gen/models")  # the model was checked on the first try
    before = len(bria_conn.requests())
    BriaGenerateStructuredPromptOperator(**{**kwargs, "prompt": prompts[0]}).execute(make_context())
    assert len(bria_conn.requests()) == before  # nothing to do: not even the model check


def test_structured_prompts_without_output_path_store_nothing(bria_conn: Any, fibo_model: int,
                                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    kwargs = {"task_id": "s", "model_id": fibo_model, "prompt": "a kite", **FAST}
    first = BriaGenerateStructuredPromptOperator(**kwargs).execute(make_context())
    second = BriaGenerateStructuredPromptOperator(**kwargs).execute(make_context())
    assert first == second  # same seed, same structured prompt
    assert len(submissions(bria_conn, "/v2/structured_prompt")) == 2
    assert list(tmp_path.iterdir()) == []
