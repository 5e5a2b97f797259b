"""Deferrable waiting for bulk uploads: operator deferral, the trigger (over real HTTP) and execute_complete."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests_mock as rm
from kit import FAST_HOOK, conn_json
from upload_helpers import context, serve_directory

from airflow_provider_bria._compat import TaskDeferred
from airflow_provider_bria.exceptions import BriaTriggerEventError, BriaUploadError
from airflow_provider_bria.operators.upload import BriaUploadImagesOperator
from airflow_provider_bria.triggers.upload import BriaBulkUploadTrigger

HOST = "http://bria.test"
DS = 9
BASE = f"{HOST}/v1/tailored-gen/datasets/{DS}"


def _op(**kwargs: Any) -> BriaUploadImagesOperator:
    kwargs.setdefault("hook_params", FAST_HOOK)
    return BriaUploadImagesOperator(task_id="upload", dataset_id=DS, deferrable=True, poll_interval=0.05, **kwargs)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json(HOST))
    with rm.Mocker() as mocker:
        mocker.get(BASE, json={"id": DS, "project_id": 1, "upload_type": "advanced", "status": "draft",
                               "images_count": 0, "training_version": "fibo"})
        mocker.get(f"{BASE}/images", json=[{"id": 1, "image_name": "a-000000000001.png"}])
        yield mocker


def test_operator_defers_with_an_absolute_deadline_and_resumes(api: Any) -> None:
    api.get(f"{BASE}/images/bulk-upload/status", [
        {"json": {"status": "processing", "progress_percentage": 10}},
        {"json": {"status": "processing", "progress_percentage": 10}},
        {"json": {"status": "completed", "done": 1, "failed": 0, "failed_images": []}},
    ])
    post = api.post(f"{BASE}/images/bulk-upload", status_code=202, json={})
    op = _op(zip_url="https://cdn.test/a.zip", timeout=600)
    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context(try_number=2))
    assert post.call_count == 0  # a job existed: never submitted again
    trigger = deferred.value.trigger
    assert isinstance(trigger, BriaBulkUploadTrigger)
    assert before + 600 <= trigger.end_time <= time.time() + 600
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout is None
    event = {"status": "done", "dataset_id": DS, "job_status": "completed", "message": "ok",
             "state": trigger.serialize()[1]["state"]}
    summary = op.execute_complete(context(), event=event)
    assert summary["bulk"]["status"] == "completed"
    assert summary["images_in_dataset"] == 1


def test_terminal_job_is_not_deferred(api: Any) -> None:
    api.get(f"{BASE}/images/bulk-upload/status", json={"status": "completed", "done": 1, "failed_images": []})
    summary = _op(zip_url="https://cdn.test/a.zip").execute(context())
    assert summary["bulk"]["status"] == "completed"


@pytest.mark.parametrize(
    ("event", "error", "message"),
    [
        (None, BriaTriggerEventError, "Unexpected"),
        ({"status": "weird"}, BriaTriggerEventError, "Unexpected"),
        ({"status": "done"}, BriaTriggerEventError, "without a dataset_id"),
        ({"status": "timeout", "dataset_id": DS, "message": "still processing at the deadline"},
         BriaUploadError, "never submits again"),
        ({"status": "error", "dataset_id": DS, "message": "fetch https://s3.test/z.zip?X-Amz-Signature=abc failed"},
         BriaUploadError, "redacted"),
    ],
)
def test_execute_complete_validates_the_event(api: Any, event: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message) as err:
        _op(zip_url="https://cdn.test/a.zip").execute_complete(context(), event=event)
    assert "X-Amz-Signature=abc" not in str(err.value)


def test_trigger_serialization_round_trip() -> None:
    trigger = BriaBulkUploadTrigger(dataset_id=3, bria_conn_id="c", poll_interval=2, end_time=123.0,
                                    hook_params={"timeout": 5, "bad": object()})
    path, kwargs = trigger.serialize()
    assert path == "airflow_provider_bria.triggers.upload.BriaBulkUploadTrigger"
    assert kwargs["hook_params"] == {"timeout": 5}  # non-JSON values are dropped
    again = BriaBulkUploadTrigger(**kwargs)
    assert again.serialize() == (path, kwargs)


async def _first_event(trigger: BriaBulkUploadTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return event.payload
    raise AssertionError("no event")


def test_trigger_over_the_emulator(bria_conn: Any, hook: Any, make_dataset: Callable[..., int], tmp_path: Path,
                                   png_1024: list[bytes]) -> None:
    import zipfile

    ds = make_dataset("advanced")
    with zipfile.ZipFile(tmp_path / "z.zip", "w") as zf:
        for i in range(3):
            zf.writestr(f"p-{i}.png", png_1024[i])
    with serve_directory(tmp_path) as url:
        hook.bulk_upload(ds, f"{url}z.zip")
        trigger = BriaBulkUploadTrigger(dataset_id=ds, bria_conn_id="bria_default", poll_interval=0.05,
                                        end_time=time.time() + 60, hook_params=FAST_HOOK)
        event = asyncio.run(_first_event(trigger))
    assert event["status"] == "done"
    assert event["job_status"] == "completed"
    assert len(hook.list_images(ds)) == 3


def test_trigger_times_out(bria_conn: Any, make_dataset: Callable[..., int]) -> None:
    ds = make_dataset("advanced")  # no job ever started: not found within the grace period, then the deadline
    trigger = BriaBulkUploadTrigger(dataset_id=ds, bria_conn_id="bria_default", poll_interval=0.05,
                                    end_time=time.time() + 0.2, hook_params=FAST_HOOK)
    event = asyncio.run(_first_event(trigger))
    assert event["status"] == "timeout"
    assert event["dataset_id"] == ds


def test_unexpected_error_while_polling_ends_in_an_error_event(monkeypatch: pytest.MonkeyPatch) -> None:
    """A body the trigger cannot read must end the wait with an event, not kill the trigger silently."""
    from airflow_provider_bria.hooks.bria import BriaHook

    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json(HOST))
    calls: list[int] = []

    async def odd_body(self: BriaHook, dataset_id: int) -> Any:
        calls.append(dataset_id)
        return ["not", "an", "object"]  # .get() on it raises AttributeError

    monkeypatch.setattr(BriaHook, "aget_bulk_upload_status", odd_body)
    trigger = BriaBulkUploadTrigger(dataset_id=DS, bria_conn_id="bria_default", poll_interval=0.01,
                                    end_time=time.time() + 60, state={"total": 4})
    event = asyncio.run(_first_event(trigger))
    assert calls == [DS]
    assert event["status"] == "error"
    assert event["dataset_id"] == DS
    assert "Unexpected AttributeError" in event["message"]
    assert event["state"] == {"total": 4}  # the operator's state still comes back
    with pytest.raises(BriaUploadError, match="Unexpected AttributeError.*never submits again"):
        _op(zip_url="https://cdn.test/a.zip").execute_complete(context(), event=event)


def test_trigger_imports_nothing_while_running_on_the_event_loop() -> None:
    """Everything the trigger needs is imported with its module, never by ``run()`` on the triggerer's loop."""
    code = textwrap.dedent(
        """
        import asyncio, sys, time
        from airflow_provider_bria.hooks.bria import BriaHook
        from airflow_provider_bria.triggers.upload import BriaBulkUploadTrigger

        async def done(self, dataset_id):
            return {"status": "completed"}

        BriaHook.aget_bulk_upload_status = done
        before = {m for m in sys.modules if m.startswith("airflow_provider_bria")}
        trigger = BriaBulkUploadTrigger(dataset_id=1, bria_conn_id="bria_default", poll_interval=1,
                                        end_time=time.time() + 60)

        async def first():
            async for event in trigger.run():
                return event.payload

        payload = asyncio.run(first())
        after = {m for m in sys.modules if m.startswith("airflow_provider_bria")}
        print(payload["status"], sorted(after - before), "airflow_provider_bria.operators._upload_bulk" in after)
        """
    )
    env = {**os.environ, "AIRFLOW_CONN_BRIA_DEFAULT": conn_json(HOST)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip().splitlines()[-1] == "done [] False"


class _StatusScript:
    """Scripted ``aget_bulk_upload_status`` answering ``processing`` ``busy`` times, then ``completed``; records
    every ``asyncio.sleep`` delay without waiting it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, busy: int) -> None:
        from airflow_provider_bria.hooks.bria import BriaHook

        self.calls = 0
        self.waits: list[float] = []
        real_sleep = asyncio.sleep

        async def status(hook: BriaHook, dataset_id: int) -> dict[str, Any]:
            self.calls += 1
            return {"status": "processing" if self.calls <= busy else "completed", "progress_percentage": 50}

        async def recording_sleep(delay: float, result: Any = None) -> Any:
            self.waits.append(delay)
            await real_sleep(0)
            return result

        monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json(HOST))
        monkeypatch.setattr(BriaHook, "aget_bulk_upload_status", status)
        monkeypatch.setattr(asyncio, "sleep", recording_sleep)


async def test_trigger_polls_at_once_and_jitters_only_the_first_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    script = _StatusScript(monkeypatch, busy=3)
    trigger = BriaBulkUploadTrigger(dataset_id=DS, bria_conn_id="bria_default", poll_interval=20,
                                    end_time=time.time() + 3600)
    event = await _first_event(trigger)
    assert event["status"] == "done"
    assert script.calls == 4
    assert len(script.waits) == 3  # nothing before the first poll
    assert 10 <= script.waits[0] <= 20
    assert script.waits[1:] == [20.0, 20.0]


async def test_triggers_started_together_do_not_poll_in_lock_step(monkeypatch: pytest.MonkeyPatch) -> None:
    script = _StatusScript(monkeypatch, busy=1)
    for _ in range(20):
        script.calls = 0  # each trigger sees "processing" once, then "completed"
        trigger = BriaBulkUploadTrigger(dataset_id=DS, bria_conn_id="bria_default", poll_interval=10,
                                        end_time=time.time() + 3600)
        assert (await _first_event(trigger))["status"] == "done"
    waits = script.waits
    assert len(waits) == 20
    assert all(5 <= w <= 10 for w in waits)
    assert len({round(w, 6) for w in waits}) > 10
