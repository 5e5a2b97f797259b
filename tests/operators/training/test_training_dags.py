"""dag.test() runs of the training test DAGs: deferral, asset events, failure, sensor modes, fault injection."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from bria_training_helpers import create_trainable_model, make_hook, png_bytes

pytestmark = pytest.mark.usefixtures("airflow_db")


def _dag(airflow_home: Path, file: str, dag_id: str) -> Any:
    from airflow_provider_bria._compat import DagBag

    bag = DagBag(dag_folder=str(airflow_home / "dags" / "test_dags" / file))
    assert bag.import_errors == {}
    return bag.get_dag(dag_id)


def _states(dag_run: Any) -> dict[str, tuple[str, int]]:
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = dag_run.get_task_instances(session=session)
        return {ti.task_id: (str(ti.state), ti.try_number) for ti in tis}


class _Triggers(list):  # type: ignore[type-arg]
    """``[(classpath, event payload)]`` of the triggers run inline; ``.kwargs``: their serialized kwargs."""

    kwargs: list[dict[str, Any]]


@pytest.fixture
def inline_triggers(monkeypatch: pytest.MonkeyPatch) -> _Triggers:
    """Record every trigger dag.test() ran inline, i.e. every time a task really deferred (freeing its slot)."""
    import airflow.sdk.definitions.dag as dag_module

    seen = _Triggers()
    seen.kwargs = []
    original = dag_module._run_inline_trigger

    def recording(trigger: Any, *args: Any) -> Any:  # (trigger, task_sdk_ti) from Airflow 3.1, (trigger) on 3.0
        event = original(trigger, *args)
        classpath, kwargs = trigger.serialize()
        seen.append((classpath, event.payload if event else None))
        seen.kwargs.append(kwargs)
        return event

    monkeypatch.setattr(dag_module, "_run_inline_trigger", recording)
    return seen


def _asset_events(uri: str) -> list[dict[str, Any]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id).where(AssetModel.uri == uri)
        ).all()
        return [dict(row.extra or {}) for row in rows]


TRIGGER = "airflow_provider_bria.triggers.training.BriaTrainingTrigger"


@pytest.mark.parametrize("dag_id", ["training_deferrable", "training_deferrable_alias"])
def test_deferrable_training_dag_defers_finishes_and_emits_the_asset_event(
    airflow_home: Path, bria_conn: Any, bria_hook: Any, pngs: list[bytes], inline_triggers: list[Any], dag_id: str
) -> None:
    from airflow_provider_bria.assets import model_asset_uri

    model = create_trainable_model(bria_hook, pngs, name="dag model", project_name="Training DAG")
    uri = model_asset_uri("Training DAG", "dag model")
    before = len(_asset_events(uri))
    started = time.time()
    dag_run = _dag(airflow_home, "training_deferrable.py", dag_id).test(
        run_conf={"model_id": model["id"], "poll_interval": "0.25", "timeout": 90}
    )
    assert str(dag_run.state) == "success"
    assert _states(dag_run) == {"train": ("success", 1)}
    # The task deferred: dag.test ran our trigger inline and it fired success.
    assert [(path, event["status"]) for path, event in inline_triggers] == [(TRIGGER, "success")]
    # The templated poll_interval and timeout were rendered from the run conf and coerced to numbers.
    (kwargs,) = inline_triggers.kwargs
    assert kwargs["poll_interval"] == 0.25
    assert started + 90 - 1 <= kwargs["end_time"] <= time.time() + 90
    assert bria_hook.get_model(model["id"])["status"] == "Completed"
    assert bria_conn.state()["counts"]["trainings_started"] == 1
    events = _asset_events(uri)[before:]
    assert len(events) == 1
    assert events[0]["model_id"] == model["id"]
    assert events[0]["project_id"] == model["project_id"]
    assert events[0]["dataset_id"] == model["dataset_id"]
    assert events[0]["model_name"] == "dag model"


def test_deferred_training_that_fails_fails_the_task(
    airflow_home: Path, slow_emulator: Any, slow_hook: Any, pngs: list[bytes], inline_triggers: list[Any]
) -> None:
    model = create_trainable_model(slow_hook, pngs, name="doomed", project_name="Training DAG fail")

    def fail_once_started() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if slow_hook.get_model(model["id"])["status"] == "InProgress":
                time.sleep(0.5)
                slow_emulator.set_model_status(model["id"], "Failed")
                return
            time.sleep(0.1)

    saboteur = threading.Thread(target=fail_once_started, daemon=True)
    saboteur.start()
    dag_run = _dag(airflow_home, "training_deferrable.py", "training_deferrable").test(
        run_conf={"model_id": model["id"], "conn_id": "bria_slow"}
    )
    saboteur.join(5)
    assert str(dag_run.state) == "failed"
    assert _states(dag_run) == {"train": ("failed", 1)}
    assert [(path, event["status"]) for path, event in inline_triggers] == [(TRIGGER, "failed")]


def test_sensor_modes_succeed_when_training_completes(
    airflow_home: Path, bria_conn: Any, bria_hook: Any, model_factory: Any, inline_triggers: list[Any]
) -> None:
    model = model_factory()
    bria_hook.start_training(model["id"])
    dag_run = _dag(airflow_home, "training_sensor_modes.py", "training_sensor_modes_ok").test(
        run_conf={"model_id": model["id"]}
    )
    assert str(dag_run.state) == "success"
    assert {task: state for task, (state, _) in _states(dag_run).items()} == {
        "poke": "success", "reschedule": "success", "deferrable": "success",
    }


def test_sensor_timeout_is_honoured_in_every_mode_and_not_retried(
    airflow_home: Path, slow_hook: Any, slow_model_factory: Any, inline_triggers: list[Any]
) -> None:
    model = slow_model_factory()
    slow_hook.start_training(model["id"])
    dag_run = _dag(airflow_home, "training_sensor_modes.py", "training_sensor_modes_timeout").test(
        run_conf={"model_id": model["id"], "conn_id": "bria_slow"}
    )
    assert str(dag_run.state) == "failed"
    # Sensor timeouts fail at once although each task has retries=1.
    assert _states(dag_run) == {"poke": ("failed", 1), "reschedule": ("failed", 1), "deferrable": ("failed", 1)}
    assert [(path, event["status"]) for path, event in inline_triggers] == [(TRIGGER, "timeout")]
    # The sensor never stops a training it only watches.
    assert slow_hook.get_model(model["id"])["status"] == "InProgress"


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fault-images")
    for i in range(6):
        (folder / f"brand-{i}.png").write_bytes(png_bytes(100 + i))
    return folder


#: Targeted faults (emulator fault rules): each hits the first (or n-th) matching request exactly once, so every
#: run meets each of them. "after" faults are ambiguous: the request was applied but the client saw a 5xx or a
#: dropped connection; a client that blindly re-sent it would make a duplicate.
FAULT_RULES = [
    {"method": "POST", "path_regex": r"^/v1/tailored-gen/projects$", "phase": "after", "kind": "drop"},
    {"method": "POST", "path_regex": r"^/v1/tailored-gen/datasets$", "phase": "after", "kind": 503},
    {"method": "POST", "path_regex": r"^/v1/tailored-gen/datasets/\d+/images$", "phase": "after", "kind": "drop",
     "nth": 3},
    {"method": "PUT", "path_regex": r"^/v1/tailored-gen/datasets/\d+$", "phase": "after", "kind": 500},
    {"method": "POST", "path_regex": r"^/v1/tailored-gen/models$", "phase": "after", "kind": "drop"},
    {"method": "GET", "path_regex": r"^/v1/tailored-gen/models/\d+$", "phase": "before", "kind": 503},
    {"method": "POST", "path_regex": r"^/v1/tailored-gen/models/\d+/start_training$", "phase": "after",
     "kind": "drop"},
]


def _run_fault_pipeline(airflow_home: Path, emulator: Any, image_dir: Path, dag_id: str, name: str) -> Any:
    dag_run = _dag(airflow_home, "training_fault_pipeline.py", dag_id).test(
        run_conf={"conn_id": "bria_faulty", "project_name": name, "image_dir": str(image_dir)}
    )
    states = _states(dag_run)
    assert str(dag_run.state) == "success", states
    assert {task: state for task, (state, _) in states.items()} == dict.fromkeys(
        ("project", "dataset", "upload", "complete", "model", "train"), "success"
    )
    return states


def _assert_exactly_one_of_everything(state: dict[str, Any]) -> None:
    assert state["counts"]["projects"] == 1
    assert state["counts"]["datasets"] == 1
    assert state["counts"]["models"] == 1
    assert state["counts"]["trainings_started"] == 1
    assert list(state["trainings_per_model"].values()) == [1]
    assert state["counts"]["images"] == 6
    assert state["duplicates"] == {"projects": [], "datasets": [], "models": [], "images": []}


@pytest.mark.parametrize("dag_id", ["training_fault_pipeline", "training_fault_pipeline_bare"])
def test_full_lifecycle_survives_targeted_ambiguous_faults_without_duplicates(
    airflow_home: Path, faulty_emulator: Any, image_dir: Path, monkeypatch: pytest.MonkeyPatch,
    inline_triggers: list[Any], dag_id: str,
) -> None:
    """Every create, the upload of one image, the completion and start_training are applied but their answer is
    lost; the first model read fails. Exactly one of each object must exist, and start_training is never re-sent."""
    make_hook(faulty_emulator.url, monkeypatch, conn_id="bria_faulty")
    faulty_emulator.reset()
    faulty_emulator.set_faults(0.0, rules=FAULT_RULES)
    try:
        states = _run_fault_pipeline(airflow_home, faulty_emulator, image_dir, dag_id, f"ruled {dag_id}")
        fired = [rule["fired"] for rule in faulty_emulator.faults()["rules"]]
    finally:
        faulty_emulator.set_faults(0.0)
    assert fired == [1] * len(FAULT_RULES)  # every ambiguous failure really happened
    if dag_id.endswith("_bare"):
        # Without hook retries the failed model read reaches the training task: an Airflow retry healed it.
        assert states["train"] == ("success", 2)
    else:
        assert states["train"] == ("success", 1)
    starts = [r for r in faulty_emulator.requests() if r["path"].endswith("/start_training")]
    # Applied, answer lost, and recognised as applied from the model's status: never sent a second time.
    assert [(r["method"], r["fault"], r["handler_status"]) for r in starts] == [("POST", "after-drop", 200)]
    state = faulty_emulator.state()
    assert state["counts"]["faults_injected"] == len(FAULT_RULES)
    _assert_exactly_one_of_everything(state)
    assert any(path == TRIGGER and event["status"] == "success" for path, event in inline_triggers)


@pytest.mark.parametrize(("dag_id", "seed"), [("training_fault_pipeline", 6), ("training_fault_pipeline_bare", 1)])
def test_full_lifecycle_keeps_its_invariants_under_random_faults(
    airflow_home: Path, faulty_emulator: Any, image_dir: Path, monkeypatch: pytest.MonkeyPatch,
    inline_triggers: list[Any], dag_id: str, seed: int,
) -> None:
    """A random 20 % of requests fail (which ones depends on timing): only the invariants are asserted."""
    make_hook(faulty_emulator.url, monkeypatch, conn_id="bria_faulty")
    faulty_emulator.reset()
    faulty_emulator.set_faults(0.2, seed=seed)
    try:
        _run_fault_pipeline(airflow_home, faulty_emulator, image_dir, dag_id, f"random {dag_id}")
    finally:
        faulty_emulator.set_faults(0.0)
    state = faulty_emulator.state()
    assert state["counts"]["faults_injected"] > 0
    _assert_exactly_one_of_everything(state)
    assert any(path == TRIGGER and event["status"] == "success" for path, event in inline_triggers)


def test_execution_timeout_stops_the_training_in_both_wait_modes(
    airflow_home: Path, slow_hook: Any, slow_model_factory: Any, inline_triggers: list[Any]
) -> None:
    sync_model, deferred_model = slow_model_factory(), slow_model_factory()
    dag_run = _dag(airflow_home, "training_execution_timeout.py", "training_execution_timeout").test(
        run_conf={"sync_model_id": sync_model["id"], "deferred_model_id": deferred_model["id"], "conn_id": "bria_slow"}
    )
    assert str(dag_run.state) == "failed"
    assert _states(dag_run) == {"sync": ("failed", 1), "deferred": ("failed", 1)}
    # Deferred: Airflow does not enforce execution_timeout, the trigger's execution_deadline did.
    assert [(path, event["status"], event["reason"]) for path, event in inline_triggers] == [
        (TRIGGER, "timeout", "execution_timeout")
    ]
    for model in (sync_model, deferred_model):
        assert slow_hook.get_model(model["id"])["status"] in ("Stopping", "Stopped")
