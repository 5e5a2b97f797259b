"""The worker-side wait for a bulk upload job (``_upload_bulk.wait``), on the provider's one poll policy."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_bria.exceptions import (
    BriaAuthError,
    BriaNotFoundError,
    BriaServerError,
    BriaUploadTimeoutError,
)
from airflow_provider_bria.operators import _upload_bulk as bulk
from airflow_provider_bria.waiting.policy import DEFAULT_MAX_CONSECUTIVE_FAILURES


class StatusHook:
    """``get_bulk_upload_status`` answering a script: a dict is a body, an exception is raised."""

    def __init__(self, *script: Any, then: Any = None) -> None:
        self.script = list(script)
        self.then = then
        self.calls = 0

    def get_bulk_upload_status(self, dataset_id: int) -> dict[str, Any]:
        self.calls += 1
        step = self.script.pop(0) if self.script else self.then
        if isinstance(step, BaseException):
            raise step
        return dict(step)


@pytest.fixture(autouse=True)
def _no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.sleep", lambda seconds: None)


def processing(progress: int = 10) -> dict[str, Any]:
    return {"status": "processing", "progress_percentage": progress}


def test_polls_until_the_job_is_terminal_and_returns_the_last_body() -> None:
    hook = StatusHook(processing(10), processing(60), {"status": "completed", "done": 3})
    body = bulk.wait(hook, 9, poll_interval=1, timeout=3600)  # type: ignore[arg-type]
    assert body == {"status": "completed", "done": 3}
    assert hook.calls == 3


def test_a_job_not_visible_yet_is_waited_for() -> None:
    hook = StatusHook(BriaNotFoundError("no job", status_code=404), {"status": "failed", "failed": 1})
    assert bulk.wait(hook, 9, poll_interval=1, timeout=3600)["status"] == "failed"  # type: ignore[arg-type]


def test_retryable_poll_errors_are_tolerated_up_to_the_policy_limit() -> None:
    errors = [BriaServerError("bad gateway", status_code=502)] * DEFAULT_MAX_CONSECUTIVE_FAILURES
    hook = StatusHook(*errors, {"status": "completed"})
    assert bulk.wait(hook, 9, poll_interval=1, timeout=3600)["status"] == "completed"  # type: ignore[arg-type]


def test_one_retryable_error_more_than_tolerated_ends_the_wait_with_that_error() -> None:
    errors = [BriaServerError("bad gateway", status_code=502)] * (DEFAULT_MAX_CONSECUTIVE_FAILURES + 1)
    hook = StatusHook(*errors, {"status": "completed"})
    with pytest.raises(BriaServerError):
        bulk.wait(hook, 9, poll_interval=1, timeout=3600)  # type: ignore[arg-type]


def test_a_permanent_poll_error_ends_the_wait_at_once() -> None:
    hook = StatusHook(BriaAuthError("bad token", status_code=401), {"status": "completed"})
    with pytest.raises(BriaAuthError):
        bulk.wait(hook, 9, poll_interval=1, timeout=3600)  # type: ignore[arg-type]
    assert hook.calls == 1


def test_the_deadline_raises_a_timeout_naming_the_status(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr("time.monotonic", lambda: clock[0])
    monkeypatch.setattr("time.sleep", lambda seconds: clock.__setitem__(0, clock[0] + seconds))
    hook = StatusHook(then=processing(40))
    with pytest.raises(BriaUploadTimeoutError, match="still processing after 30 s.*never submits again"):
        bulk.wait(hook, 9, poll_interval=10, timeout=30)  # type: ignore[arg-type]
    assert 3 <= hook.calls <= 5  # every 10 s over a 30 s budget, never past it
