"""The worker-side loops converted to the waiting core keep their contract and gain its error handling."""

from __future__ import annotations

import time
from typing import Any

import pytest

from airflow_provider_bria.exceptions import BriaAuthError, BriaCaptionsTimeoutError, BriaServerError


class _Datasets:
    """A hook whose ``get_dataset`` answers from a script (an exception is raised)."""

    def __init__(self, script: list[Any]) -> None:
        self.script = script
        self.calls = 0

    def get_dataset(self, dataset_id: int, max_images: int = 1) -> dict[str, Any]:
        self.calls += 1
        answer = self.script[min(self.calls, len(self.script)) - 1]
        if isinstance(answer, BaseException):
            raise answer
        return {"id": dataset_id, "captions_update_status": answer}


def _captions_op(hook: _Datasets, **kwargs: Any) -> Any:
    from airflow_provider_bria.operators.captions import BriaRegenerateCaptionsOperator

    op = BriaRegenerateCaptionsOperator(task_id="c", dataset_id=9, poll_interval=0.01, **kwargs)
    op.__dict__["hook"] = hook  # the cached hook property
    return op


def test_captions_wait_tolerates_transient_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the waiting core a single 5xx (after the hook's retries) failed the captions wait."""
    monkeypatch.setattr(time, "sleep", lambda s: None)
    down = BriaServerError("down", status_code=503)
    hook = _Datasets(["in_progress", down, down, "in_progress", "completed"])
    assert _captions_op(hook, timeout=60)._wait(9) == "completed"
    assert hook.calls == 5


def test_captions_wait_gives_up_after_too_many_transient_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "sleep", lambda s: None)
    down = BriaServerError("down", status_code=503)
    hook = _Datasets([down] * 20)
    with pytest.raises(BriaServerError):
        _captions_op(hook, timeout=60)._wait(9)
    assert hook.calls == 6  # five tolerated in a row, the sixth ends it


def test_captions_wait_permanent_error_and_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = _Datasets([BriaAuthError("no", status_code=401)])
    with pytest.raises(BriaAuthError):
        _captions_op(hook, timeout=60)._wait(9)
    assert hook.calls == 1
    with pytest.raises(BriaCaptionsTimeoutError, match="still 'in_progress'"):
        _captions_op(_Datasets(["in_progress"]), timeout=0.05)._wait(9)
