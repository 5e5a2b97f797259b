"""BriaTrainingTrigger: serialisation, argument checks, and runs against the emulator over real HTTP."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from bria_training_helpers import create_trainable_model, make_hook
from kit import conn_json

from airflow_provider_bria.exceptions import BriaInputError, BriaServerError, BriaTransportError
from airflow_provider_bria.triggers.training import BriaTrainingTrigger, check_trigger_kwargs

CLASSPATH = "airflow_provider_bria.triggers.training.BriaTrainingTrigger"


def _trigger(**overrides: Any) -> BriaTrainingTrigger:
    kwargs: dict[str, Any] = {
        "model_id": 7,
        "bria_conn_id": "bria_default",
        "poll_interval": 0.2,
        "end_time": time.time() + 60,
    }
    kwargs.update(overrides)
    return BriaTrainingTrigger(**kwargs)


async def _events(trigger: BriaTrainingTrigger) -> list[dict[str, Any]]:
    """Run the trigger to its end and return every event payload it fired."""
    return [event.payload async for event in trigger.run()]


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float]]:
    """Record every ``asyncio.sleep(delay)`` as ``(delay, time.time() at the call)``.

    The real sleep is capped at 0.5 s, so a trigger that asked for a whole (long) poll interval instead of the
    time left to its deadline is caught by the assertions on the recorded delays, not by a hanging test.
    """
    real_sleep = asyncio.sleep
    calls: list[tuple[float, float]] = []

    async def recording_sleep(delay: float, result: Any = None) -> Any:
        calls.append((delay, time.time()))
        await real_sleep(min(delay, 0.5))
        return result

    monkeypatch.setattr(asyncio, "sleep", recording_sleep)
    return calls


# ------------------------------------------------------------------ serialisation


def test_serialize_returns_exact_kwargs_and_round_trips_through_serde() -> None:
    import importlib

    from airflow_provider_bria._compat import deserialize, serialize

    trigger = _trigger(
        model_id=42,
        bria_conn_id="my_bria",
        poll_interval=30,
        end_time=1_900_000_000.5,
        execution_deadline=1_800_000_000.25,
        stop_on_timeout=False,
        stop_on_kill=False,
        max_consecutive_failures=3,
        hook_params={"timeout": 15, "retry_limit": 2},
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == CLASSPATH
    assert kwargs == {
        "model_id": 42,
        "bria_conn_id": "my_bria",
        "poll_interval": 30.0,
        "end_time": 1_900_000_000.5,
        "execution_deadline": 1_800_000_000.25,
        "stop_on_timeout": False,
        "stop_on_kill": False,
        "max_consecutive_failures": 3,
        "hook_params": {"timeout": 15, "retry_limit": 2},
        "state_version": 1,
    }
    restored_kwargs = deserialize(serialize(kwargs))
    assert restored_kwargs == kwargs
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**restored_kwargs)
    assert isinstance(rebuilt, BriaTrainingTrigger)
    assert rebuilt.serialize() == (classpath, kwargs)


def test_recreated_trigger_keeps_the_absolute_deadline() -> None:
    """A triggerer restart re-creates the trigger from its kwargs: the deadline must not move."""
    original = _trigger(end_time=time.time() + 100, execution_deadline=time.time() + 50)
    _, kwargs = original.serialize()
    time.sleep(0.05)
    restarted = BriaTrainingTrigger(**kwargs)
    assert restarted.end_time == original.end_time
    assert restarted.execution_deadline == original.execution_deadline


def test_repr_holds_no_secret_and_names_the_model() -> None:
    text = repr(_trigger(model_id=99))
    assert "model_id=99" in text
    assert "test-token" not in text


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model_id": "7"}, "model_id"),
        ({"model_id": True}, "model_id"),
        ({"bria_conn_id": ""}, "bria_conn_id"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"poll_interval": "5"}, "poll_interval"),
        ({"end_time": None}, "end_time"),
        ({"execution_deadline": "soon"}, "execution_deadline"),
        ({"max_consecutive_failures": -1}, "max_consecutive_failures"),
        ({"hook_params": {"timeout": object()}}, "hook_params"),
        ({"hook_params": {"sleep": time.sleep}}, "hook_params"),
    ],
)
def test_bad_arguments_fail_at_construction(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(BriaInputError, match=message):
        _trigger(**overrides)
    kwargs = {"model_id": 7, "bria_conn_id": "bria_default", "poll_interval": 0.2, "end_time": 1.0, **overrides}
    with pytest.raises(BriaInputError, match=message):
        check_trigger_kwargs(**kwargs)  # the same check the operator and sensor run before starting anything


def test_check_trigger_kwargs_checks_a_subset_and_normalises() -> None:
    from datetime import timedelta

    assert check_trigger_kwargs() == {}
    assert check_trigger_kwargs(poll_interval=5, hook_params=None, execution_deadline=None) == {
        "poll_interval": 5.0, "hook_params": {}, "execution_deadline": None,
    }
    params = {"timeout": 5}
    checked = check_trigger_kwargs(hook_params=params, max_consecutive_failures=0)
    assert checked == {"hook_params": {"timeout": 5}, "max_consecutive_failures": 0}
    assert checked["hook_params"] is not params  # a copy: the trigger never shares the operator's dict
    with pytest.raises(BriaInputError, match="hook_params"):
        check_trigger_kwargs(hook_params={"timeout": timedelta(seconds=5)})
    with pytest.raises(BriaInputError, match="hook_params must be a dict"):
        check_trigger_kwargs(hook_params=[("timeout", 5)])
    with pytest.raises(TypeError, match="poke_interval"):
        check_trigger_kwargs(poke_interval=5)


# ------------------------------------------------------------------ runs against the emulator


async def test_success_event_when_training_completes(bria_hook: Any, model_factory: Any) -> None:
    model = model_factory()
    bria_hook.start_training(model["id"])
    events = await _events(_trigger(model_id=model["id"], poll_interval=0.2))
    assert len(events) == 1
    event = events[0]
    assert event["status"] == "success"
    assert event["model_id"] == model["id"]
    assert event["model_status"] == "Completed"
    assert event["model"]["id"] == model["id"]
    assert event["model"]["name"] == model["name"]
    assert bria_hook.get_model(model["id"])["status"] == "Completed"


async def test_failed_event(bria_hook: Any, model_factory: Any, emulator: Any) -> None:
    model = model_factory()
    bria_hook.start_training(model["id"])
    emulator.set_model_status(model["id"], "Failed")
    events = await _events(_trigger(model_id=model["id"]))
    assert [e["status"] for e in events] == ["failed"]
    assert events[0]["model_status"] == "Failed"


async def test_stopped_event_when_someone_stops_the_training(slow_hook: Any, slow_model_factory: Any) -> None:
    model = slow_model_factory()
    slow_hook.start_training(model["id"])
    slow_hook.stop_training(model["id"])
    events = await _events(_trigger(model_id=model["id"], bria_conn_id="bria_slow"))
    assert [e["status"] for e in events] == ["stopped"]
    assert events[0]["model_status"] in ("Stopping", "Stopped")


async def test_timeout_event_at_the_absolute_end_time(
    slow_hook: Any, slow_model_factory: Any, sleeps: list[tuple[float, float]]
) -> None:
    model = slow_model_factory()
    slow_hook.start_training(model["id"])
    end_time = time.time() + 0.6
    events = await _events(_trigger(model_id=model["id"], bria_conn_id="bria_slow", end_time=end_time,
                                    poll_interval=3600))
    assert [e["status"] for e in events] == ["timeout"]
    assert events[0]["reason"] == "timeout"
    assert events[0]["model_status"] == "InProgress"
    # Every sleep is cut to the time left before the deadline, never a whole poll interval.
    assert sleeps
    for delay, at in sleeps:
        assert 0 <= delay <= end_time - at + 0.01, (delay, end_time - at)
    # The trigger never stops the training itself (the operator decides, on a worker).
    assert slow_hook.get_model(model["id"])["status"] == "InProgress"


async def test_execution_deadline_before_end_time_gives_execution_timeout(
    slow_hook: Any, slow_model_factory: Any, sleeps: list[tuple[float, float]]
) -> None:
    model = slow_model_factory()
    slow_hook.start_training(model["id"])
    execution_deadline = time.time() + 0.3
    events = await _events(_trigger(model_id=model["id"], bria_conn_id="bria_slow", end_time=time.time() + 600,
                                    execution_deadline=execution_deadline, poll_interval=3600))
    assert [(e["status"], e["reason"]) for e in events] == [("timeout", "execution_timeout")]
    assert sleeps
    for delay, at in sleeps:
        assert delay <= execution_deadline - at + 0.01, (delay, execution_deadline - at)


async def test_trigger_restarted_after_its_deadline_times_out_at_once(
    slow_hook: Any, slow_model_factory: Any, slow_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deadline persistence: a trigger re-created after the deadline does not get a fresh budget."""
    model = slow_model_factory()
    slow_hook.start_training(model["id"])
    original = _trigger(model_id=model["id"], bria_conn_id="bria_slow", end_time=time.time() + 0.2,
                        poll_interval=3600)
    await asyncio.sleep(0.3)  # the triggerer was down past the deadline
    restarted = BriaTrainingTrigger(**original.serialize()[1])
    path = f"/v1/tailored-gen/models/{model['id']}"
    before = len(slow_emulator.requests(path_prefix=path))
    slept: list[float] = []

    async def no_sleep(delay: float, result: Any = None) -> Any:
        slept.append(delay)
        return result

    monkeypatch.setattr(asyncio, "sleep", no_sleep)
    events = await _events(restarted)
    assert [e["status"] for e in events] == ["timeout"]
    assert slept == []  # one poll, then the passed deadline ends the wait: no sleep at all
    assert len(slow_emulator.requests(path_prefix=path)) - before == 1


async def test_unknown_model_gives_an_error_event_at_once(bria_conn: Any, sleeps: list[tuple[float, float]]) -> None:
    events = await _events(_trigger(model_id=987654, max_consecutive_failures=5, poll_interval=3600))
    assert len(events) == 1
    assert events[0]["status"] == "error"
    assert events[0]["reason"] == "not_found"
    assert sleeps == []  # neither a poll interval nor a retry backoff: a 404 ends the wait at once
    assert [r["status"] for r in bria_conn.requests(path_prefix="/v1/tailored-gen/models/987654")] == [404]


async def test_bad_token_gives_an_auth_error_event(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_BADTOKEN", conn_json(emulator.url, token="wrong-token"))
    events = await _events(_trigger(bria_conn_id="bria_badtoken"))
    assert [(e["status"], e["reason"]) for e in events] == [("error", "auth")]
    assert "wrong-token" not in events[0]["message"]


async def test_transient_failures_are_tolerated_over_real_faults(
    faulty_emulator: Any, monkeypatch: pytest.MonkeyPatch, pngs: list[bytes]
) -> None:
    """With half the requests failing (and no hook retries), polling still reaches the end."""
    faulty = faulty_emulator
    faulty.reset()
    hook = make_hook(faulty.url, monkeypatch, conn_id="bria_faulty")
    model = create_trainable_model(hook, pngs, name="faulty")
    hook.start_training(model["id"])
    faulty.set_faults(0.5, seed=3)
    try:
        events = await _events(_trigger(model_id=model["id"], bria_conn_id="bria_faulty", poll_interval=0.1,
                                        max_consecutive_failures=50,
                                        hook_params={"retry_limit": 0}))
    finally:
        faulty.set_faults(0.0)
    assert [e["status"] for e in events] == ["success"]
    assert faulty.state()["counts"]["faults_injected"] > 0


def _use_hook(monkeypatch: pytest.MonkeyPatch, trigger: Any, hook: Any) -> None:
    """Make ``trigger`` poll through ``hook`` (instead of the process's shared hook)."""

    async def shared_hook() -> Any:
        return hook

    monkeypatch.setattr(trigger, "shared_hook", shared_hook)


class _FlakyHook:
    """An async hook whose ``aget_model`` fails ``failures`` times, then returns ``model``."""

    def __init__(self, failures: int, model: dict[str, Any], error: Exception) -> None:
        self.failures = failures
        self.model = model
        self.error = error
        self.calls = 0

    async def aget_model(self, model_id: int) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return self.model


@pytest.mark.parametrize("error", [BriaServerError("boom", status_code=503), BriaTransportError("reset")])
@pytest.mark.parametrize(("failures", "tolerated", "expected"), [(3, 3, "success"), (4, 3, "error")])
async def test_consecutive_transient_failures(
    monkeypatch: pytest.MonkeyPatch, error: Exception, failures: int, tolerated: int, expected: str
) -> None:
    hook = _FlakyHook(failures, {"id": 7, "status": "Completed", "name": "m"}, error)
    trigger = _trigger(poll_interval=0.01, max_consecutive_failures=tolerated)
    _use_hook(monkeypatch, trigger, hook)
    events = await _events(trigger)
    assert [e["status"] for e in events] == [expected]
    assert hook.calls == min(failures, tolerated + 1) + (1 if expected == "success" else 0)
    if expected == "error":
        assert events[0]["reason"] == "transient"


async def test_failure_counter_resets_after_a_good_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    """Failures must be consecutive: good polls in between reset the count."""
    statuses = iter(["err", "err", "InProgress", "err", "err", "InProgress", "err", "err", "Completed"])

    class Hook(_FlakyHook):
        async def aget_model(self, model_id: int) -> dict[str, Any]:
            self.calls += 1
            value = next(statuses)
            if value == "err":
                raise BriaServerError("flaky", status_code=500)
            return {"id": 7, "status": value}

    hook = Hook(0, {}, RuntimeError())
    trigger = _trigger(poll_interval=0.01, max_consecutive_failures=2)
    _use_hook(monkeypatch, trigger, hook)
    events = await _events(trigger)
    assert [e["status"] for e in events] == ["success"]
    assert hook.calls == 9


async def test_unexpected_exception_becomes_an_error_event(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = _FlakyHook(1, {}, RuntimeError("kaput"))
    trigger = _trigger(poll_interval=0.01, max_consecutive_failures=10)
    _use_hook(monkeypatch, trigger, hook)
    events = await _events(trigger)
    assert [(e["status"], e["reason"]) for e in events] == [("error", "unexpected")]
    assert "kaput" in events[0]["message"]


async def test_unknown_model_status_becomes_an_error_event(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = _FlakyHook(0, {"id": 7, "status": "Exploded"}, RuntimeError())
    trigger = _trigger(poll_interval=0.01)
    _use_hook(monkeypatch, trigger, hook)
    events = await _events(trigger)
    assert [(e["status"], e["model_status"]) for e in events] == [("error", "Exploded")]


# ------------------------------------------------------------------ polling rhythm (no lock-step)


class _ScriptedHook(_FlakyHook):
    """Answers ``InProgress`` ``in_progress`` times, then ``Completed``."""

    def __init__(self, in_progress: int) -> None:
        super().__init__(0, {}, RuntimeError())
        self.in_progress = in_progress

    async def aget_model(self, model_id: int) -> dict[str, Any]:
        self.calls += 1
        status = "InProgress" if self.calls <= self.in_progress else "Completed"
        return {"id": model_id, "status": status, "name": "m"}


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


async def test_first_poll_is_immediate_and_only_the_first_wait_is_jittered(
    monkeypatch: pytest.MonkeyPatch, waits: list[float]
) -> None:
    hook = _ScriptedHook(in_progress=4)
    trigger = _trigger(poll_interval=60, end_time=time.time() + 3600)
    _use_hook(monkeypatch, trigger, hook)
    events = await _events(trigger)
    assert [e["status"] for e in events] == ["success"]
    assert hook.calls == 5
    # No wait before the first poll; one wait between two polls.
    assert len(waits) == 4
    assert 30 <= waits[0] <= 60
    assert waits[1:] == [60.0, 60.0, 60.0]


async def test_triggers_started_together_do_not_poll_in_lock_step(
    monkeypatch: pytest.MonkeyPatch, waits: list[float]
) -> None:
    """A triggerer restart re-creates many triggers at once: their first waits must differ."""
    for _ in range(20):
        hook = _ScriptedHook(in_progress=1)
        trigger = _trigger(poll_interval=10, end_time=time.time() + 3600)
        _use_hook(monkeypatch, trigger, hook)
        assert [e["status"] for e in await _events(trigger)] == ["success"]
    assert len(waits) == 20
    assert all(5 <= w <= 10 for w in waits)
    assert len({round(w, 6) for w in waits}) > 10  # spread over half an interval, not one shared phase


async def test_jittered_first_wait_never_passes_the_deadline(
    monkeypatch: pytest.MonkeyPatch, sleeps: list[tuple[float, float]]
) -> None:
    import random

    monkeypatch.setattr(random, "uniform", lambda low, high: high)  # the longest possible first wait
    hook = _ScriptedHook(in_progress=10**6)
    end_time = time.time() + 0.3
    trigger = _trigger(poll_interval=3600, end_time=end_time)
    _use_hook(monkeypatch, trigger, hook)
    events = await _events(trigger)
    assert [(e["status"], e["reason"]) for e in events] == [("timeout", "timeout")]
    assert sleeps
    for delay, at in sleeps:
        assert 0 <= delay <= end_time - at + 0.01, (delay, end_time - at)


# ------------------------------------------------------------------ on_kill


async def test_on_kill_stops_the_training(slow_hook: Any, slow_model_factory: Any) -> None:
    model = slow_model_factory()
    slow_hook.start_training(model["id"])
    trigger = _trigger(model_id=model["id"], bria_conn_id="bria_slow")
    await trigger.on_kill()
    assert slow_hook.get_model(model["id"])["status"] in ("Stopping", "Stopped")


async def test_on_kill_leaves_the_training_when_stop_on_kill_is_false(
    slow_hook: Any, slow_model_factory: Any, slow_emulator: Any
) -> None:
    model = slow_model_factory()
    slow_hook.start_training(model["id"])
    trigger = _trigger(model_id=model["id"], bria_conn_id="bria_slow", stop_on_kill=False)
    before = len(slow_emulator.requests(path_prefix=f"/v1/tailored-gen/models/{model['id']}"))
    await trigger.on_kill()
    assert slow_hook.get_model(model["id"])["status"] == "InProgress"
    calls = slow_emulator.requests(path_prefix=f"/v1/tailored-gen/models/{model['id']}")
    assert not [c for c in calls[before:] if c["path"].endswith("/stop_training")]


async def test_on_kill_is_idempotent_and_never_raises(
    slow_hook: Any, slow_model_factory: Any, slow_emulator: Any
) -> None:
    model = slow_model_factory()
    slow_hook.start_training(model["id"])
    trigger = _trigger(model_id=model["id"], bria_conn_id="bria_slow")
    await trigger.on_kill()
    await trigger.on_kill()  # already Stopping/Stopped: no second stop, no exception
    assert slow_hook.get_model(model["id"])["status"] in ("Stopping", "Stopped")
    stops = [r for r in slow_emulator.requests(path_prefix=f"/v1/tailored-gen/models/{model['id']}/stop_training")
             if r["method"] == "POST"]
    assert [r["status"] for r in stops] == [200]  # exactly one stop call, and it succeeded
    unreachable = _trigger(model_id=model["id"], bria_conn_id="bria_nowhere")
    await unreachable.on_kill()  # connection does not exist: logged, not raised
    assert len(slow_emulator.requests(path_prefix=f"/v1/tailored-gen/models/{model['id']}/stop_training")) == 1
