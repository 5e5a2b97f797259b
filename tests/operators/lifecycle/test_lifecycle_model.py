"""Model operators (create, delete) over real HTTP against the emulator."""

from __future__ import annotations

from typing import Any

import pytest
from kit import FAST_HOOK, FakeStateStore

from airflow_provider_bria.exceptions import BriaConflictError, BriaInputError, BriaNotFoundError
from airflow_provider_bria.operators.model import BriaCreateModelOperator, BriaDeleteModelOperator

SCHEMA = {"style": "flat pastel illustration"}


@pytest.fixture
def completed_dataset(hook: Any, fibo_project: dict[str, Any], fill: Any, upload_pngs: list[bytes]) -> dict[str, Any]:
    dataset = hook.create_dataset(fibo_project["id"], "set", training_version="fibo")
    hook.update_dataset(dataset["id"], visual_schema=SCHEMA)
    fill(hook, dataset["id"], upload_pngs)
    return hook.update_dataset(dataset["id"], status="completed") | {"project_id": fibo_project["id"]}


def _create(dataset_id: Any, **kw: Any) -> BriaCreateModelOperator:
    return BriaCreateModelOperator(task_id="model", dataset_id=dataset_id, name=kw.pop("name", "brand-v1"),
                                   hook_params=FAST_HOOK, **kw)


def test_create_model_then_retry_reuses(
    bria_conn: Any, make_context: Any, hook: Any, completed_dataset: dict[str, Any]
) -> None:
    ctx = make_context()
    model_id = _create(str(completed_dataset["id"]), description="first").execute(ctx)
    model = hook.get_model(model_id)
    assert (model["status"], model["training_version"], model["dataset_id"]) == (
        "Created", "fibo", completed_dataset["id"])
    project_id = completed_dataset["project_id"]
    assert ctx["ti"].xcoms["model_id"] == model_id
    assert ctx["ti"].xcoms["model_url"].endswith(f"/tailored-generation/projects/{project_id}/models/{model_id}")
    assert ctx["ti"].xcoms["dataset_id"] == completed_dataset["id"]
    assert _create(completed_dataset["id"]).execute(make_context(2)) == model_id
    state = bria_conn.state()
    assert state["counts"]["models"] == 1
    assert state["duplicates"]["models"] == []


def test_create_model_fail_mode_and_mismatch(
    bria_conn: Any, make_context: Any, completed_dataset: dict[str, Any]
) -> None:
    store = FakeStateStore()
    first = _create(completed_dataset["id"], if_exists="fail").execute(make_context(1, task_state_store=store))
    assert _create(completed_dataset["id"], if_exists="fail").execute(make_context(2, task_state_store=store)) == first
    with pytest.raises(BriaConflictError, match=f"id={first}"):
        _create(completed_dataset["id"], if_exists="fail").execute(make_context())
    with pytest.raises(BriaConflictError, match="training_mode is 'fully_automated', not 'expert'"):
        _create(completed_dataset["id"], training_mode="expert").execute(make_context())
    assert bria_conn.state()["counts"]["models"] == 1


def test_create_model_warns_when_reusing_a_dead_model(
    bria_conn: Any, make_context: Any, hook: Any, completed_dataset: dict[str, Any], capsys: Any, caplog: Any
) -> None:
    model_id = _create(completed_dataset["id"]).execute(make_context())
    bria_conn.set_model_status(model_id, "Failed")
    assert _create(completed_dataset["id"]).execute(make_context()) == model_id
    assert "cannot be trained again" in capsys.readouterr().out + caplog.text


def test_create_model_on_draft_dataset_is_refused_before_posting(
    bria_conn: Any, make_context: Any, hook: Any, fibo_project: dict[str, Any], object_counts: Any
) -> None:
    draft = hook.create_dataset(fibo_project["id"], "draft", training_version="fibo")
    before = object_counts(bria_conn)
    with pytest.raises(BriaConflictError, match="only be created on a completed dataset"):
        _create(draft["id"]).execute(make_context())
    assert object_counts(bria_conn) == before


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"training_version": "max"}, BriaInputError, "does not match dataset"),
        ({"training_version": "sd15"}, BriaInputError, "Unknown training_version"),
        ({"name": ""}, BriaInputError, "name is required"),
        ({"training_mode": "{{ m }}", "_render": {"training_mode": "turbo"}}, BriaInputError, "Invalid training_mode"),
    ],
)
def test_create_model_bad_inputs_change_nothing(
    bria_conn: Any, make_context: Any, completed_dataset: dict[str, Any], object_counts: Any,
    kwargs: dict[str, Any], exc: type[Exception], message: str,
) -> None:
    before = object_counts(bria_conn)
    render = kwargs.pop("_render", {})
    op = _create(completed_dataset["id"], **kwargs)
    for field, value in render.items():
        setattr(op, field, value)
    with pytest.raises(exc, match=message):
        op.execute(make_context())
    assert object_counts(bria_conn) == before


def test_create_model_unknown_dataset(bria_conn: Any, make_context: Any, object_counts: Any) -> None:
    before = object_counts(bria_conn)
    with pytest.raises(BriaNotFoundError):
        _create(777777).execute(make_context())
    assert object_counts(bria_conn) == before


def test_legacy_model_inherits_model_spelling(
    bria_conn: Any, make_context: Any, hook: Any, fill: Any, upload_pngs: list[bytes]
) -> None:
    project = hook.create_project("Legacy", "photography", "stylized_scene")
    dataset = hook.create_dataset(project["id"], "old", training_version="3.2")
    fill(hook, dataset["id"], upload_pngs, n=5)  # the spec: 5 images to complete, legacy too
    hook.update_dataset(dataset["id"], status="completed")
    model_id = _create(dataset["id"]).execute(make_context())
    assert hook.get_model(model_id)["training_version"] == "bria-3.2"


def test_delete_model(bria_conn: Any, make_context: Any, hook: Any, completed_dataset: dict[str, Any]) -> None:
    busy = hook.create_model(completed_dataset["id"], "busy", training_version="fibo")
    bria_conn.set_model_status(busy["id"], "InProgress")
    with pytest.raises(BriaConflictError, match="status InProgress.*BriaStopTrainingOperator"):
        BriaDeleteModelOperator(task_id="d", model_id=busy["id"], hook_params=FAST_HOOK).execute(make_context())
    idle = hook.create_model(completed_dataset["id"], "idle", training_version="fibo")
    op = BriaDeleteModelOperator(task_id="d", model_id=str(idle["id"]), hook_params=FAST_HOOK)
    assert op.execute(make_context()) == {"model_id": idle["id"], "deleted": True}
    assert hook.find_model(completed_dataset["id"], "idle") is None
    assert op.execute(make_context(2)) == {"model_id": idle["id"], "deleted": False}
    with pytest.raises(BriaNotFoundError):
        BriaDeleteModelOperator(task_id="d", model_id=idle["id"], missing_ok=False,
                                hook_params=FAST_HOOK).execute(make_context())


def test_rerun_after_a_delete_creates_a_new_model(
    bria_conn: Any, make_context: Any, hook: Any, completed_dataset: dict[str, Any]
) -> None:
    first = _create(completed_dataset["id"]).execute(make_context())
    BriaDeleteModelOperator(task_id="d", model_id=first, hook_params=FAST_HOOK).execute(make_context())
    assert hook.get_model(first)["status"] == "Deleted"  # Bria's soft delete: it still reads back
    second = _create(completed_dataset["id"]).execute(make_context())  # the DAG re-run
    assert second != first
    assert hook.get_model(second)["status"] == "Created"
    assert hook.find_model(completed_dataset["id"], "brand-v1")["id"] == second
