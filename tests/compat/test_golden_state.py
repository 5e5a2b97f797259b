"""Upgrading the provider under deferred tasks: the in-flight state release 0.1.0 wrote resumes with this code.

``tests/compat/golden/`` holds what release 0.1.0 (commit a9ee78f) stored while tasks were deferred or between
tries (``capture_golden.py`` wrote it): trigger kwargs as Airflow stores them, the resume state a trigger
carries, sidecar files, and the events the old triggers fired. Each test re-creates or resumes that state with
the current code through the path Airflow takes, against fake hosts, and checks the result. A change that can no
longer read one of them fails here; bump the layout in :mod:`airflow_provider_bria._state` with a migration.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import golden_scenarios as gs
import pytest

from airflow_provider_bria._state import STATE_VERSION_KEY, STATE_VERSIONS, StateVersionError, load, stamp

GOLDEN = Path(__file__).resolve().parent / "golden"
TRIGGERS = ["training_trigger", "upload_trigger", "job_trigger"]


@pytest.fixture(autouse=True)
def _bria_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """``bria_default`` points at the fake host (the triggers read it; ``sync_host`` sets it again)."""
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", gs.conn_json())


def golden(name: str) -> Any:
    return json.loads((GOLDEN / f"{name}.json").read_text())


def stored_kwargs(name: str, **overrides: Any) -> tuple[type, dict[str, Any]]:
    """The golden kwargs through Airflow's own (de)serialisation of the trigger table, and the trigger class.

    ``end_time`` is moved into the future (the golden one has passed since the capture; in a real upgrade it has
    not), everything else is as stored.
    """
    import importlib

    from airflow.serialization.serialized_objects import BaseSerialization

    record = golden(name)
    kwargs = BaseSerialization.deserialize(BaseSerialization.serialize(record["kwargs"]))
    kwargs.update(end_time=time.time() + 600, **overrides)
    module, _, cls_name = record["classpath"].rpartition(".")
    return getattr(importlib.import_module(module), cls_name), kwargs


def test_golden_copies_come_from_release_0_1_0() -> None:
    release = golden("release")
    assert release["version"] == "0.1.0"
    assert all(STATE_VERSION_KEY not in golden(name)["kwargs"] for name in TRIGGERS)  # unversioned layout


@pytest.mark.parametrize("name", TRIGGERS)
def test_stored_trigger_kwargs_rebuild_the_trigger_and_serialize_versioned(name: str) -> None:
    cls, kwargs = stored_kwargs(name)
    trigger = cls(**kwargs)
    classpath, new_kwargs = trigger.serialize()
    assert classpath == golden(name)["classpath"]
    kind = name
    assert new_kwargs.pop(STATE_VERSION_KEY) == STATE_VERSIONS[kind]
    assert new_kwargs == kwargs  # nothing lost or renamed across the upgrade
    assert type(trigger)(**trigger.serialize()[1]).serialize() == trigger.serialize()


@pytest.mark.parametrize("name", TRIGGERS)
def test_stored_trigger_runs_to_the_same_event_as_release_0_1_0(name: str) -> None:
    cls, kwargs = stored_kwargs(name)
    event = gs.first_event(cls(**kwargs))
    old = golden(f"{name}_event")
    assert event["status"] == old["status"]
    if name == "job_trigger":
        assert sorted(event["outcomes"]) == sorted(old["outcomes"])
        assert load("job_resume_state", event["context"]) == old["context"]
    else:
        assert set(old) <= set(event)


@pytest.mark.parametrize("name", TRIGGERS)
def test_a_trigger_stored_by_a_newer_provider_is_refused_not_misread(name: str) -> None:
    cls, kwargs = stored_kwargs(name, state_version=STATE_VERSIONS[name] + 1)
    with pytest.raises(StateVersionError, match="newer airflow-provider-bria"):
        cls(**kwargs)


def _relocated(state: dict[str, Any], out: Path) -> dict[str, Any]:
    """The job resume state with its output folder moved to ``out`` (the golden one was a temporary folder)."""
    return {**state, "folder": f"file://{out}"}


def test_generation_resumes_from_the_0_1_0_job_event(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    event = golden("job_trigger_event")
    out = tmp_path / "out"
    event = {**event, "context": _relocated(event["context"], out)}
    with gs.sync_host(monkeypatch.setenv) as host:
        ctx = gs.make_context()
        results = gs.generation_operator(out).execute_complete(ctx, event=event)
    assert host.posts == 0  # resumed: nothing submitted (paid) again
    assert sorted(r["prompt"] for r in results) == sorted(gs.PROMPTS)
    assert sorted(p.name for p in out.glob("*.png")) == sorted(Path(r["uri"]).name for r in results)


def test_generation_resumes_from_a_new_event_of_a_0_1_0_trigger(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    cls, kwargs = stored_kwargs("job_trigger")
    kwargs["context"] = _relocated(kwargs["context"], out)
    event = gs.first_event(cls(**kwargs))  # the upgraded triggerer fires the event of a 0.1.0 deferral
    with gs.sync_host(monkeypatch.setenv) as host:
        results = gs.generation_operator(out).execute_complete(gs.make_context(), event=event)
    assert host.posts == 0
    assert len(results) == len(gs.PROMPTS)


def test_a_retry_resumes_the_jobs_recorded_in_0_1_0_sidecars(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    shutil.copytree(GOLDEN / "sidecars", out)
    with gs.sync_host(monkeypatch.setenv) as host:
        host.finish()
        results = gs.generation_operator(out, deferrable=False).execute(gs.make_context(try_number=2))
    assert host.posts == 0  # the request ids in the old sidecars were polled, not paid for again
    old_ids = {json.loads(p.read_text())["request_id"] for p in (GOLDEN / "sidecars").glob("*.json")}
    assert {r["request_id"] for r in results} == old_ids
    rewritten = [json.loads(p.read_text()) for p in out.glob("*.json")]
    assert {s[STATE_VERSION_KEY] for s in rewritten} == {STATE_VERSIONS["sidecar"]}


def test_training_resumes_from_the_0_1_0_event(monkeypatch: pytest.MonkeyPatch) -> None:
    with gs.sync_host(monkeypatch.setenv):
        summary = gs.training_operator().execute_complete(gs.make_context(), event=golden("training_trigger_event"))
    assert summary["model_id"] == gs.MODEL_ID
    assert summary["status"] == "Completed"
    assert summary["dataset_id"] == gs.DATASET_ID


def test_upload_resumes_from_the_0_1_0_event(monkeypatch: pytest.MonkeyPatch) -> None:
    with gs.sync_host(monkeypatch.setenv) as host:
        host.finish()
        summary = gs.upload_operator().execute_complete(gs.make_context(), event=golden("upload_trigger_event"))
    assert summary["bulk"]["status"] == "completed"


def test_resume_state_blobs_carry_their_version_and_refuse_newer_ones() -> None:
    for kind in ("job_resume_state", "upload_resume_state", "sidecar"):
        record = stamp(kind, {"a": 1})
        assert record[STATE_VERSION_KEY] == STATE_VERSIONS[kind]
        assert load(kind, record) == {"a": 1}
        assert load(kind, {"a": 1}) == {"a": 1}  # release 0.1.0: no version, same layout
        with pytest.raises(StateVersionError):
            load(kind, {**record, STATE_VERSION_KEY: STATE_VERSIONS[kind] + 1})
        with pytest.raises(StateVersionError):
            load(kind, {**record, STATE_VERSION_KEY: "1"})


def test_new_deferrals_stamp_their_resume_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with gs.sync_host(monkeypatch.setenv):
        job = gs.deferral(gs.generation_operator(tmp_path / "out"), gs.make_context())
        upload = gs.deferral(gs.upload_operator(), gs.make_context())
    assert job.trigger.serialize()[1]["context"][STATE_VERSION_KEY] == STATE_VERSIONS["job_resume_state"]
    assert upload.trigger.serialize()[1]["state"][STATE_VERSION_KEY] == STATE_VERSIONS["upload_resume_state"]
    sidecars = [json.loads(p.read_text()) for p in (tmp_path / "out").glob("*.json")]
    assert sidecars
    assert {s[STATE_VERSION_KEY] for s in sidecars} == {STATE_VERSIONS["sidecar"]}
