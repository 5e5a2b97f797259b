"""``[bria] triggerer_gc_freeze``: off by default; on, the first Bria trigger of a process freezes the heap once."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_bria.waiting import heap


@pytest.fixture
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(heap._state, "checked", False)
    gc.unfreeze()
    yield
    gc.unfreeze()


async def _run_one_trigger(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    from airflow_provider_bria.triggers.training import BriaTrainingTrigger

    class Hook:
        async def aget_model(self, model_id: int) -> dict[str, Any]:
            return {"id": model_id, "status": "Completed"}

    async def shared_hook() -> Any:
        return Hook()

    trigger = BriaTrainingTrigger(model_id=3, bria_conn_id="bria_default", poll_interval=1, end_time=time.time() + 60)
    monkeypatch.setattr(trigger, "shared_hook", shared_hook)
    return [event.payload async for event in trigger.run()]


async def test_off_by_default(fresh_process: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__BRIA__TRIGGERER_GC_FREEZE", raising=False)
    events = await _run_one_trigger(monkeypatch)
    assert [e["status"] for e in events] == ["success"]
    assert gc.get_freeze_count() == 0


async def test_on_the_first_trigger_freezes_once(fresh_process: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__BRIA__TRIGGERER_GC_FREEZE", "True")
    await _run_one_trigger(monkeypatch)
    frozen = gc.get_freeze_count()
    assert frozen > 10_000  # Airflow's start-up objects
    assert heap.freeze_once(None) is False  # once per process: later triggers do nothing
    gc.unfreeze()
    await _run_one_trigger(monkeypatch)
    assert gc.get_freeze_count() == 0
