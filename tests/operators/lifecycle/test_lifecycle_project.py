"""Project operators over real HTTP against the emulator."""

from __future__ import annotations

from typing import Any

import pytest
from kit import FAST_HOOK, FakeStateStore, conn_json

from airflow_provider_bria.exceptions import BriaConflictError, BriaInputError, BriaNotFoundError
from airflow_provider_bria.operators.project import BriaCreateProjectOperator, BriaDeleteProjectOperator


def _create(**kw: Any) -> BriaCreateProjectOperator:
    args: dict[str, Any] = {"task_id": "create_project", "project_name": "Brand X", "ip_medium": "illustration",
                            "ip_type": "stylized_scene", "hook_params": FAST_HOOK}
    args.update(kw)
    return BriaCreateProjectOperator(**args)


def test_create_then_retry_reuses_without_duplicate(bria_conn: Any, make_context: Any, hook: Any) -> None:
    ctx = make_context()
    project_id = _create(project_description="brand", training_version="fibo").execute(ctx)
    assert isinstance(project_id, int)
    remote = hook.get_project(project_id)
    assert remote["project_name"] == "Brand X"
    assert remote["training_version"] == "fibo"
    assert ctx["ti"].xcoms["project_id"] == project_id
    assert ctx["ti"].xcoms["project_url"].endswith(f"/tailored-generation/projects/{project_id}")
    # An Airflow retry (new try, same arguments) finds the project instead of creating another.
    assert _create(project_description="brand", training_version="fibo").execute(make_context(2)) == project_id
    state = bria_conn.state()
    assert state["counts"]["projects"] == 1
    assert state["duplicates"]["projects"] == []
    posts = [r for r in bria_conn.requests("/v1/tailored-gen/projects") if r["method"] == "POST"]
    assert len(posts) == 1


def test_if_exists_fail_raises_conflict(bria_conn: Any, make_context: Any, hook: Any) -> None:
    existing = hook.create_project("Brand X", "illustration", "stylized_scene")
    with pytest.raises(BriaConflictError, match=rf"id={existing['id']}"):
        _create(if_exists="fail").execute(make_context())
    assert bria_conn.state()["counts"]["projects"] == 1


def test_if_exists_fail_recognises_its_own_project_on_retry(bria_conn: Any, make_context: Any) -> None:
    store = FakeStateStore()
    first = _create(if_exists="fail").execute(make_context(1, task_state_store=store))
    again = _create(if_exists="fail").execute(make_context(2, task_state_store=store))
    assert again == first
    assert bria_conn.state()["counts"]["projects"] == 1


def test_reuse_refuses_a_project_with_other_ip_settings(bria_conn: Any, make_context: Any, hook: Any) -> None:
    hook.create_project("Brand X", "photography", "stylized_scene")
    with pytest.raises(BriaConflictError, match="ip_medium is 'photography', not 'illustration'"):
        _create().execute(make_context())
    assert bria_conn.state()["counts"]["projects"] == 1


def test_reuse_refuses_a_project_locked_to_the_other_family(bria_conn: Any, make_context: Any, hook: Any) -> None:
    hook.create_project("Brand X", "illustration", "stylized_scene", training_version="max")
    with pytest.raises(BriaConflictError, match="training_version is locked to 'max'"):
        _create(training_version="fibo").execute(make_context())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ip_type": "{{ params.t }}", "_render": {"ip_type": "portrait"}}, "Invalid ip_type 'portrait'"),
        ({"ip_medium": "{{ params.m }}", "_render": {"ip_medium": "sculpture"}}, "Invalid ip_medium"),
        ({"ip_medium": "photography", "ip_type": "icons"}, "only allowed with ip_medium 'illustration'"),
        ({"ip_type": "defined_character", "ip_description": "a cat"}, "ip_name is required"),
        ({"project_name": "  "}, "project_name is required"),
        ({"training_version": "sdxl"}, "Unknown training_version"),
    ],
)
def test_bad_inputs_raise_before_any_remote_change(
    bria_conn: Any, make_context: Any, object_counts: Any, kwargs: dict[str, Any], message: str
) -> None:
    before = object_counts(bria_conn)
    render = kwargs.pop("_render", {})
    op = _create(**kwargs)
    for field, value in render.items():  # what Jinja would have rendered
        setattr(op, field, value)
    with pytest.raises(BriaInputError, match=message):
        op.execute(make_context())
    assert object_counts(bria_conn) == before
    assert bria_conn.requests("/v1/") == []  # not even a lookup


def test_literal_bad_enum_fails_at_parse_time() -> None:
    with pytest.raises(BriaInputError, match="Invalid ip_type"):
        _create(ip_type="portrait")
    with pytest.raises(BriaInputError, match="if_exists"):
        _create(if_exists="replace")


def test_console_url_override(bria_conn: Any, make_context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json(bria_conn.url, console_url="https://console.example/"))
    ctx = make_context()
    project_id = _create().execute(ctx)
    assert ctx["ti"].xcoms["project_url"] == f"https://console.example/tailored-generation/projects/{project_id}"


def test_delete_project_is_idempotent(bria_conn: Any, make_context: Any, hook: Any) -> None:
    project = hook.create_project("Doomed", "illustration", "stylized_scene")
    op = BriaDeleteProjectOperator(task_id="delete", project_id=str(project["id"]), hook_params=FAST_HOOK)
    assert op.execute(make_context()) == {"project_id": project["id"], "deleted": True}
    assert bria_conn.state()["counts"]["projects"] == 0
    assert op.execute(make_context(2)) == {"project_id": project["id"], "deleted": False}
    strict = BriaDeleteProjectOperator(task_id="d2", project_id=project["id"], missing_ok=False, hook_params=FAST_HOOK)
    with pytest.raises(BriaNotFoundError):
        strict.execute(make_context())


def test_delete_project_with_training_model_explains_conflict(
    bria_conn: Any, make_context: Any, hook: Any, fibo_project: dict[str, Any], fill: Any, upload_pngs: list[bytes]
) -> None:
    dataset = hook.create_dataset(fibo_project["id"], "d", training_version="fibo")
    fill(hook, dataset["id"], upload_pngs)
    # a FIBO dataset needs a visual_schema to complete (Bria's spec)
    hook.update_dataset(dataset["id"], visual_schema={"style_medium": "photograph"}, status="completed")
    model = hook.create_model(dataset["id"], "m", training_version="fibo")
    bria_conn.set_model_status(model["id"], "InProgress")
    op = BriaDeleteProjectOperator(task_id="delete", project_id=fibo_project["id"], hook_params=FAST_HOOK)
    with pytest.raises(BriaConflictError, match=r"models are training \(training models: \[\d+\]\).*BriaStopTraining"):
        op.execute(make_context())
    assert bria_conn.state()["counts"]["projects"] == 1


def test_non_integer_project_id_is_rejected(bria_conn: Any, make_context: Any) -> None:
    op = BriaDeleteProjectOperator(task_id="delete", project_id="abc", hook_params=FAST_HOOK)
    with pytest.raises(BriaInputError, match="project_id must be an integer"):
        op.execute(make_context())
    assert bria_conn.requests("/v1/") == []
