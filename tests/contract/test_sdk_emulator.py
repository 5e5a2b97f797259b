"""Bria's own Python SDK (``bria-client``) drives the emulator's v2 endpoints the way its users do.

The SDK is an oracle we did not write: it parses bodies with its own pydantic models (``BriaResponse``:
``status`` must be one of its ``Status`` values, ``error`` must be ``{"code": int, "message": str,
"details": str}``, a finished job must carry ``result``). If the emulator answered in shapes Bria's
clients cannot read, these tests fail even when our own hook would cope.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

bria_client = pytest.importorskip("bria_client")

from bria_client import BriaAsyncClient, BriaSyncClient  # noqa: E402
from bria_client.toolkit.errors.exception import BriaException  # noqa: E402
from httpx_retries import Retry  # noqa: E402

IMAGE = "image/generate/tailored"
STRUCTURED = "structured_prompt/generate/tailored"
VIDEO = "video/generate/tailored/image-to-video"
NO_RETRY = Retry(total=0)


@pytest.fixture
def fibo_model(bria_conn: Any) -> str:
    """A ``Completed`` FIBO tailored model on the reset shared emulator; returns its id as the v2 string."""
    from airflow_provider_bria.hooks.bria import BriaHook

    png = _png()
    with BriaHook(retry_limit=0) as hook:
        project = hook.create_project("SDK brand", "illustration", "stylized_scene")
        dataset = hook.create_dataset(project["id"], "sdk-ds")
        hook.update_dataset(dataset["id"], visual_schema={"style": "flat"})
        for i in range(5):
            hook.upload_image(dataset["id"], file=png, image_name=f"img-{i}.png")
        hook.update_dataset(dataset["id"], status="completed")
        model = hook.create_model(dataset["id"], "sdk-model")
    bria_conn.set_model_status(model["id"], "Completed")
    return str(model["id"])


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (1024, 1024), (200, 40, 90)).save(buf, format="PNG")
    return buf.getvalue()


def _client(emulator: Any, **kwargs: Any) -> BriaSyncClient:
    return BriaSyncClient(base_url=emulator.url, api_token=emulator.token, retry=NO_RETRY, **kwargs)


def test_submit_then_poll_an_image(bria_conn: Any, fibo_model: str) -> None:
    with _client(bria_conn) as client:
        submitted = client.submit(IMAGE, {"tailored_model_id": fibo_model, "prompt": "a fox in the snow"},
                                  raise_for_status=True)
        assert submitted.status == "IN_PROGRESS"
        assert submitted.request_id not in (None, "unknown")
        assert submitted.status_url
        done = client.poll(submitted, interval=0.05, timeout=30)
    assert done.status == "COMPLETED"
    assert done.request_id == submitted.request_id
    assert done.result.image_url.startswith("http")
    json.loads(done.result.structured_prompt)


def test_run_is_synchronous_and_returns_the_result(bria_conn: Any, fibo_model: str) -> None:
    with _client(bria_conn) as client:
        response = client.run(IMAGE, {"tailored_model_id": fibo_model, "prompt": "a red kite", "seed": 7,
                                      "aspect_ratio": "16:9"}, raise_for_status=True)
    assert response.status == "COMPLETED"
    assert response.result.image_url.startswith("http")
    assert json.loads(response.result.structured_prompt)


def test_structured_prompt_then_recreate_from_it(bria_conn: Any, fibo_model: str) -> None:
    with _client(bria_conn) as client:
        sp = client.run(STRUCTURED, {"tailored_model_id": fibo_model, "prompt": "a lighthouse at dusk"},
                        raise_for_status=True)
        assert sp.status == "COMPLETED"
        structured = sp.result.structured_prompt
        assert isinstance(json.loads(structured), dict)
        # "structured_prompt: Recreates a previous image exactly (requires seed)"
        image = client.run(IMAGE, {"tailored_model_id": fibo_model, "structured_prompt": structured, "seed": 5},
                           raise_for_status=True)
    assert image.result.image_url.startswith("http")


def test_image_to_video_and_status(bria_conn: Any, fibo_model: str) -> None:
    with _client(bria_conn) as client:
        image = client.run(IMAGE, {"tailored_model_id": fibo_model, "prompt": "a dancer"}, raise_for_status=True)
        import base64

        frame = base64.b64encode(_png()).decode("ascii")
        submitted = client.submit(VIDEO, {"tailored_model_id": fibo_model, "image": frame}, raise_for_status=True)
        assert submitted.status == "IN_PROGRESS"
        done = client.poll(submitted, interval=0.05, timeout=60)
        assert done.status == "COMPLETED"
        assert done.result.video_url.startswith("http")
        assert client.status(submitted.request_id) == "COMPLETED"
    assert image.result.image_url != done.result.video_url


def test_async_client_runs_concurrent_jobs(bria_conn: Any, fibo_model: str) -> None:
    prompts = [f"a paper boat, variant {i}" for i in range(6)]

    async def main() -> list[Any]:
        async with BriaAsyncClient(base_url=bria_conn.url, api_token=bria_conn.token, retry=NO_RETRY) as client:
            submitted = await asyncio.gather(*(
                client.submit(IMAGE, {"tailored_model_id": fibo_model, "prompt": p}, raise_for_status=True)
                for p in prompts))
            assert len({s.request_id for s in submitted}) == len(prompts)
            statuses = await asyncio.gather(*(client.status(s.request_id) for s in submitted))
            assert set(statuses) <= {"IN_PROGRESS", "COMPLETED"}
            return await asyncio.gather(*(client.poll(s, interval=0.05, timeout=60) for s in submitted))

    done = asyncio.run(main())
    assert [d.status for d in done] == ["COMPLETED"] * len(prompts)
    assert len({d.result.image_url for d in done}) == len(prompts)


# ---------------------------------------------------------------- error bodies as the SDK reads them


def test_wrong_token_is_a_401_the_sdk_parses(bria_conn: Any, fibo_model: str) -> None:
    with BriaSyncClient(base_url=bria_conn.url, api_token="not-the-token", retry=NO_RETRY) as client:
        response = client.run(IMAGE, {"tailored_model_id": fibo_model, "prompt": "x"})
        assert response.status == "ERROR"
        assert response.error.code == 401
        assert "api_token" in response.error.details  # read from our body's error.details, not the raw text
        with pytest.raises(BriaException) as info:
            client.run(IMAGE, {"tailored_model_id": fibo_model, "prompt": "x"}, raise_for_status=True)
    assert info.value.code == 401


def test_invalid_request_is_a_4xx_with_our_message(bria_conn: Any, fibo_model: str) -> None:
    with _client(bria_conn) as client:
        response = client.run(IMAGE, {"tailored_model_id": fibo_model, "prompt": "x", "aspect_ratio": "2:1"})
    assert response.status == "ERROR"
    assert response.error.code == 400
    # our v2 error body {"error": {"code", "message", "details"}} is read field by field, not as raw text
    assert "aspect_ratio" in response.error.details
    assert not response.error.details.lstrip().startswith("{")


def test_unknown_request_id_is_a_404(bria_conn: Any) -> None:
    with _client(bria_conn) as client:
        response = client.get("status/no-such-request")
        assert response.status == "ERROR"
        assert response.error.code == 404
        assert "NOT_FOUND" in response.error.details  # the documented {"status": "NOT_FOUND"} body
        with pytest.raises(BriaException) as info:
            client.poll("no-such-request", interval=0.05, timeout=5)
    assert info.value.code == 404


def test_unknown_model_is_refused_as_the_spec_lists(bria_conn: Any) -> None:
    with _client(bria_conn) as client:
        response = client.run(IMAGE, {"tailored_model_id": "987654321", "prompt": "x"})
    assert response.status == "ERROR"
    assert response.error.code == 403  # the spec: "403 Forbidden. Model does not belong to organization."
    assert "does not belong" in response.error.details
