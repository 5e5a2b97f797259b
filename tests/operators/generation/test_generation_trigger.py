"""BriaJobTrigger: serialisation, per-request outcomes, transient failures, deadline."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from airflow_provider_bria.contract import JobStatus
from airflow_provider_bria.exceptions import BriaAuthError, BriaInputError, BriaServerError, BriaTransportError
from airflow_provider_bria.responses import V2Response
from airflow_provider_bria.triggers.job import BriaJobTrigger


def trigger(requests: Any = ("r1", "r2"), **kwargs: Any) -> BriaJobTrigger:
    kwargs.setdefault("end_time", time.time() + 30)
    kwargs.setdefault("poll_interval", 0.01)
    return BriaJobTrigger(requests, **kwargs)


def test_serialize_round_trip() -> None:
    t = trigger(["r1", "https://x/v2/status/r2", "r1"], bria_conn_id="c", hook_params={"retry_limit": 1},
                max_consecutive_failures=3, max_parallel_polls=2)
    classpath, kwargs = t.serialize()
    assert classpath == "airflow_provider_bria.triggers.job.BriaJobTrigger"
    assert kwargs["requests"] == ["r1", "https://x/v2/status/r2"]
    rebuilt = BriaJobTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)

    from airflow.sdk.serde import deserialize, serialize

    assert deserialize(serialize(kwargs)) == kwargs


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ({"requests": []}, "request ids"),
        ({"requests": ["ok", ""]}, "request ids"),
        ({"hook_params": {"x": object()}}, "JSON scalars"),
        ({"poll_interval": 0}, "poll_interval"),
    ],
)
def test_bad_arguments_fail_at_construction(args: dict[str, Any], match: str) -> None:
    requests = args.pop("requests", ["r1"])
    with pytest.raises(BriaInputError, match=match):
        trigger(requests, **args)


class Script:
    """Scripted aget_status: per handle, a list of responses or exceptions (last one repeats)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, script: dict[str, list[Any]]) -> None:
        self.script = script
        self.calls: list[str] = []
        from airflow_provider_bria.hooks.bria import BriaHook

        async def aget_status(hook: Any, handle: str) -> V2Response:
            self.calls.append(handle)
            seq = self.script[handle]
            item = seq.pop(0) if len(seq) > 1 else seq[0]
            if isinstance(item, BaseException):
                raise item
            return item

        monkeypatch.setattr(BriaHook, "aget_status", aget_status)


def resp(status: str, rid: str, **result: Any) -> V2Response:
    body: dict[str, Any] = {"status": status, "request_id": rid}
    if result:
        body["result"] = result
    if status in ("ERROR", "FAILED"):
        body["error"] = {"code": 500, "message": "boom"}
    return V2Response.from_body(body, http_status=404 if status == "NOT_FOUND" else 200)


async def events(t: BriaJobTrigger) -> list[Any]:
    return [e async for e in t.run()]


async def test_one_event_with_every_outcome(monkeypatch: pytest.MonkeyPatch, bria_conn_env: None) -> None:
    s = Script(monkeypatch, {
        "r1": [resp("IN_PROGRESS", "r1"), resp("COMPLETED", "r1", image_url="http://i/1.png", seed="5")],
        "r2": [resp("ERROR", "r2")],
        "r3": [resp("IN_PROGRESS", "r3"), BriaServerError("bad gateway", status_code=502),
               resp("NOT_FOUND", "r3")],
        "r4": [resp("FAILED", "r4")],
        "r5": [resp("UNKNOWN", "r5"), resp("REQUEUED", "r5"), resp("COMPLETED", "r5", image_url="http://i/5.png")],
    })
    out = await events(trigger(["r1", "r2", "r3", "r4", "r5"]))
    assert len(out) == 1
    payload = out[0].payload
    assert payload["status"] == "success"
    assert payload["pending"] == []
    statuses = {h: V2Response.from_json(o).status for h, o in payload["outcomes"].items()}
    assert statuses == {"r1": JobStatus.COMPLETED, "r2": JobStatus.ERROR, "r3": JobStatus.NOT_FOUND,
                        "r4": JobStatus.FAILED, "r5": JobStatus.COMPLETED}
    assert V2Response.from_json(payload["outcomes"]["r1"]).seed == 5
    assert s.calls.count("r5") == 3  # UNKNOWN and an unrecognised status are polled on, not failures
    assert s.calls.count("r2") == 1  # finished jobs are not polled again


async def test_transient_failures_tolerated_then_error(monkeypatch: pytest.MonkeyPatch, bria_conn_env: None) -> None:
    Script(monkeypatch, {"r1": [BriaTransportError("reset"), BriaTransportError("reset"),
                                resp("COMPLETED", "r1", image_url="u")]})
    ok = (await events(trigger(["r1"], max_consecutive_failures=3)))[0].payload
    assert ok["status"] == "success"

    Script(monkeypatch, {"r1": [BriaServerError("down", status_code=503)], "r2": [resp("COMPLETED", "r2")]})
    bad = (await events(trigger(["r1", "r2"], max_consecutive_failures=3)))[0].payload
    assert bad["status"] == "error"
    assert "3 rounds" in bad["message"]
    assert bad["pending"] == ["r1"]
    assert list(bad["outcomes"]) == ["r2"]


async def test_non_transient_error_ends_at_once(monkeypatch: pytest.MonkeyPatch, bria_conn_env: None) -> None:
    s = Script(monkeypatch, {"r1": [BriaAuthError("bad token", status_code=401)]})
    payload = (await events(trigger(["r1"])))[0].payload
    assert payload["status"] == "error"
    assert "bad token" in payload["message"]
    assert len(s.calls) == 1


async def test_absolute_deadline(monkeypatch: pytest.MonkeyPatch, bria_conn_env: None) -> None:
    Script(monkeypatch, {"r1": [resp("IN_PROGRESS", "r1")], "r2": [resp("COMPLETED", "r2")]})
    start = time.monotonic()
    payload = (await events(trigger(["r1", "r2"], end_time=time.time() + 0.2, poll_interval=0.05)))[0].payload
    assert payload["status"] == "timeout"
    assert payload["pending"] == ["r1"]
    assert list(payload["outcomes"]) == ["r2"]
    assert time.monotonic() - start >= 0.15
    # a deadline already passed (e.g. after a triggerer restart) still polls once, then times out
    payload = (await events(trigger(["r1"], end_time=time.time() - 5)))[0].payload
    assert payload["status"] == "timeout"


async def test_polls_run_concurrently(monkeypatch: pytest.MonkeyPatch, bria_conn_env: None) -> None:
    from airflow_provider_bria.hooks.bria import BriaHook

    active = 0
    peak = 0

    async def aget_status(hook: Any, handle: str) -> V2Response:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.02)
        active -= 1
        return resp("COMPLETED", handle)

    monkeypatch.setattr(BriaHook, "aget_status", aget_status)
    payload = (await events(trigger([f"r{i}" for i in range(10)], max_parallel_polls=4)))[0].payload
    assert payload["status"] == "success"
    assert len(payload["outcomes"]) == 10
    assert 1 < peak <= 4


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record every ``asyncio.sleep`` delay without waiting it (each still yields to the loop)."""
    real_sleep = asyncio.sleep
    delays: list[float] = []

    async def recording_sleep(delay: float, result: Any = None) -> Any:
        delays.append(delay)
        await real_sleep(0)
        return result

    monkeypatch.setattr(asyncio, "sleep", recording_sleep)
    return delays


async def test_first_round_is_immediate_and_only_the_first_wait_is_jittered(
    monkeypatch: pytest.MonkeyPatch, bria_conn_env: None, waits: list[float]
) -> None:
    s = Script(monkeypatch, {"r1": [resp("IN_PROGRESS", "r1")] * 3 + [resp("COMPLETED", "r1")]})
    payload = (await events(trigger(["r1"], poll_interval=30, end_time=time.time() + 3600)))[0].payload
    assert payload["status"] == "success"
    assert s.calls == ["r1"] * 4
    assert len(waits) == 3  # nothing before the first round
    assert 15 <= waits[0] <= 30
    assert waits[1:] == [30.0, 30.0]


async def test_triggers_started_together_do_not_poll_in_lock_step(
    monkeypatch: pytest.MonkeyPatch, bria_conn_env: None, waits: list[float]
) -> None:
    for _ in range(20):
        Script(monkeypatch, {"r1": [resp("IN_PROGRESS", "r1"), resp("COMPLETED", "r1")]})
        payload = (await events(trigger(["r1"], poll_interval=10, end_time=time.time() + 3600)))[0].payload
        assert payload["status"] == "success"
    assert len(waits) == 20
    assert all(5 <= w <= 10 for w in waits)
    assert len({round(w, 6) for w in waits}) > 10


async def test_jittered_first_wait_never_passes_the_deadline(
    monkeypatch: pytest.MonkeyPatch, bria_conn_env: None
) -> None:
    import random

    monkeypatch.setattr(random, "uniform", lambda low, high: high)  # the longest possible first wait
    real_sleep = asyncio.sleep
    calls: list[tuple[float, float]] = []

    async def recording_sleep(delay: float, result: Any = None) -> Any:
        calls.append((delay, time.time()))
        await real_sleep(min(delay, 0.5))  # a wait past the deadline fails the assertion, not the run time
        return result

    monkeypatch.setattr(asyncio, "sleep", recording_sleep)
    Script(monkeypatch, {"r1": [resp("IN_PROGRESS", "r1")]})
    end_time = time.time() + 0.2
    payload = (await events(trigger(["r1"], poll_interval=3600, end_time=end_time)))[0].payload
    assert payload["status"] == "timeout"
    assert calls
    for delay, at in calls:
        assert 0 <= delay <= end_time - at + 0.01, (delay, end_time - at)
