"""In-flight state scenarios shared by the golden capture (old release) and the upgrade tests (this code).

Only public, release-stable API is used here (operators, triggers, the hook's ``_async_transport`` test seam), so
the same functions run against release 0.1.0 (to write ``tests/compat/golden/``) and against the current code
(to resume what 0.1.0 wrote). Every host is fake: ``requests-mock`` for the sync hook, ``httpx.MockTransport``
for the async hook the triggers use.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import kit

HOST = "https://bria.test"
CDN = "https://cdn.test"
TOKEN = "golden-token-0c41"
MODEL_ID = 5
DATASET_ID = 9
PROMPTS = ["a red fox", "a blue whale"]
FAST_HOOK = {"retry_limit": 1, "retry_delay": 0.0, "retry_max_delay": 0.0}
V2_IMAGE = f"{HOST}/v2/image/generate/tailored"
MODEL_URL = f"{HOST}/v1/tailored-gen/models/{MODEL_ID}"
DATASET_URL = f"{HOST}/v1/tailored-gen/datasets/{DATASET_ID}"
COMPLETED_MODEL = {"id": MODEL_ID, "name": "m", "status": "Completed", "training_version": "fibo",
                   "project_id": 1, "dataset_id": DATASET_ID, "training_mode": "fully_automated"}


def conn_json() -> str:
    """The ``AIRFLOW_CONN_BRIA_DEFAULT`` value of every scenario."""
    return kit.conn_json(HOST, TOKEN)


def make_context(try_number: int = 1) -> dict[str, Any]:
    """A minimal task context."""
    return kit.make_context(try_number, dag_id="golden_dag", run_id="manual__2026-01-01T00:00:00+00:00")


def png_bytes() -> bytes:
    """A small valid PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (20, 120, 200)).save(buf, format="PNG")
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------ sync host


class SyncHost:
    """A requests-mock Bria host: v2 submissions get ``rid-N``; statuses are ``IN_PROGRESS`` until ``finish()``."""

    def __init__(self, mocker: Any) -> None:
        self.mocker = mocker
        self.finished = False
        self.posts = 0
        mocker.get(MODEL_URL, json=COMPLETED_MODEL)
        mocker.post(V2_IMAGE, json=self._submit)
        mocker.get(re.compile(rf"{HOST}/v2/status/.+"), json=self._status)
        mocker.get(DATASET_URL, json={"id": DATASET_ID, "project_id": 1, "upload_type": "advanced",
                                      "status": "draft", "images_count": 1, "training_version": "fibo"})
        mocker.get(f"{DATASET_URL}/images", json=[{"id": 1, "image_name": "a-000000000001.png"}])
        mocker.get(f"{DATASET_URL}/images/bulk-upload/status", json=self._bulk)
        mocker.get(re.compile(rf"{CDN}/.+"), content=png_bytes(), headers={"Content-Type": "image/png"})

    def finish(self) -> None:
        self.finished = True

    def _submit(self, request: Any, context: Any) -> Any:
        self.posts += 1
        rid = f"rid-{self.posts}"
        context.status_code = 202
        return {"request_id": rid, "status_url": f"{HOST}/v2/status/{rid}"}

    def _status(self, request: Any, context: Any) -> Any:
        rid = request.url.rsplit("/", 1)[-1]
        if not self.finished:
            return {"status": "IN_PROGRESS", "request_id": rid}
        return completed_status(rid)

    def _bulk(self, request: Any, context: Any) -> Any:
        if not self.finished:
            return {"status": "processing", "progress_percentage": 40}
        return {"status": "completed", "done": 1, "failed": 0, "failed_images": []}


def completed_status(rid: str) -> dict[str, Any]:
    """The status body of a finished v2 image job."""
    return {"status": "COMPLETED", "request_id": rid, "result": {"image_url": f"{CDN}/{rid}.png", "seed": 11}}


@contextmanager
def sync_host(monkeypatch_env: Callable[[str, str], None]) -> Iterator[SyncHost]:
    """Point ``bria_default`` at the fake host and serve it with requests-mock."""
    import requests_mock

    monkeypatch_env("AIRFLOW_CONN_BRIA_DEFAULT", conn_json())
    with requests_mock.Mocker(case_sensitive=True) as mocker:
        yield SyncHost(mocker)


# ----------------------------------------------------------------------------------------------- async host


def async_transport(model_status: str = "Completed") -> Any:
    """An ``httpx.MockTransport`` answering the triggers' polls: jobs completed, model and bulk upload done."""
    import httpx

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/v2/status/"):
            return httpx.Response(200, json=completed_status(path.rsplit("/", 1)[-1]))
        if path == f"/v1/tailored-gen/models/{MODEL_ID}":
            return httpx.Response(200, json={**COMPLETED_MODEL, "status": model_status})
        if path == f"/v1/tailored-gen/datasets/{DATASET_ID}/images/bulk-upload/status":
            return httpx.Response(200, json={"status": "completed", "done": 1, "failed": 0, "failed_images": []})
        return httpx.Response(404, json={"error": {"code": 404, "message": f"no {path}"}})

    return httpx.MockTransport(handler)


def first_event(trigger: Any) -> dict[str, Any]:
    """Run ``trigger`` against :func:`async_transport` and return its first event's payload."""
    from airflow_provider_bria.hooks.bria import BriaHook

    async def run() -> Any:
        async for event in trigger.run():
            return event.payload
        return None

    previous = BriaHook._async_transport
    BriaHook._async_transport = async_transport()
    try:
        payload: dict[str, Any] = asyncio.run(run())
    finally:
        BriaHook._async_transport = previous
    return payload


# ------------------------------------------------------------------------------------------------ operators


def generation_operator(out: Path, *, deferrable: bool = True) -> Any:
    """The generation task whose deferral and sidecars the golden copies hold."""
    from airflow_provider_bria.operators.generation import BriaGenerateImagesOperator

    return BriaGenerateImagesOperator(task_id="generate", model_id=MODEL_ID, prompt=list(PROMPTS),
                                      output_path=str(out), deferrable=deferrable, timeout=3600,
                                      poll_interval=0.01, hook_params=dict(FAST_HOOK))


def training_operator() -> Any:
    """The training task resumed from the golden training event."""
    from airflow_provider_bria.operators.training import BriaStartTrainingOperator

    return BriaStartTrainingOperator(task_id="train", model_id=MODEL_ID, deferrable=True, poll_interval=0.01,
                                     timeout=7200, hook_params=dict(FAST_HOOK))


def training_trigger_kwargs(end_time: float) -> dict[str, Any]:
    """What :class:`BriaStartTrainingOperator` hands its trigger (release 0.1.0 argument names)."""
    return {"model_id": MODEL_ID, "bria_conn_id": "bria_default", "poll_interval": 0.01, "end_time": end_time,
            "execution_deadline": None, "stop_on_timeout": True, "stop_on_kill": True,
            "max_consecutive_failures": 5, "hook_params": dict(FAST_HOOK)}


def upload_operator() -> Any:
    """The bulk-upload task whose deferral the golden copies hold."""
    from airflow_provider_bria.operators.upload import BriaUploadImagesOperator

    return BriaUploadImagesOperator(task_id="upload", dataset_id=DATASET_ID, zip_url=f"{CDN}/a.zip",
                                    deferrable=True, poll_interval=0.01, timeout=3600, hook_params=dict(FAST_HOOK))


def deferral(operator: Any, context: dict[str, Any]) -> Any:
    """Run ``operator.execute`` and return the ``TaskDeferred`` it raises."""
    try:
        from airflow.sdk.exceptions import TaskDeferred
    except ImportError:  # Airflow < 3.1
        from airflow.exceptions import TaskDeferred
    try:
        operator.execute(context)
    except TaskDeferred as deferred:
        return deferred
    raise AssertionError(f"{operator.task_id} did not defer")
