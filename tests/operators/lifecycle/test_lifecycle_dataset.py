"""Dataset operators (create, update, clone, delete) over real HTTP against the emulator."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kit import FAST_HOOK, conn_json

from airflow_provider_bria.exceptions import BriaConflictError, BriaInputError, BriaNotFoundError
from airflow_provider_bria.operators.dataset import (
    BriaCloneDatasetOperator,
    BriaCreateDatasetOperator,
    BriaDeleteDatasetOperator,
    BriaUpdateDatasetOperator,
)

SCHEMA = {"style": "flat pastel illustration", "colors": "pastel"}


def _puts(emulator: Any, dataset_id: int) -> int:
    return sum(1 for r in emulator.requests(f"/v1/tailored-gen/datasets/{dataset_id}")
               if r["method"] == "PUT" and r["path"].rstrip("/").endswith(f"/datasets/{dataset_id}"))


def _update(dataset_id: Any, **kw: Any) -> BriaUpdateDatasetOperator:
    return BriaUpdateDatasetOperator(task_id="update", dataset_id=dataset_id, hook_params=FAST_HOOK, **kw)


# ------------------------------------------------------------------ create


def test_create_dataset_inherits_fibo_and_is_reused_on_retry(
    bria_conn: Any, make_context: Any, hook: Any, fibo_project: dict[str, Any]
) -> None:
    ctx = make_context()
    op = BriaCreateDatasetOperator(task_id="ds", project_id=str(fibo_project["id"]), name="set", hook_params=FAST_HOOK)
    dataset_id = op.execute(ctx)
    remote = hook.get_dataset(dataset_id)
    assert remote["training_version"] == "fibo"
    assert remote["status"] == "draft"
    assert ctx["ti"].xcoms["dataset_id"] == dataset_id
    assert ctx["ti"].xcoms["project_id"] == fibo_project["id"]
    assert ctx["ti"].xcoms["dataset_url"].endswith(f"/projects/{fibo_project['id']}/datasets/{dataset_id}")
    assert op.execute(make_context(2)) == dataset_id
    state = bria_conn.state()
    assert state["counts"]["datasets"] == 1
    assert state["duplicates"]["datasets"] == []


def test_same_name_in_another_project_is_another_dataset(
    bria_conn: Any, make_context: Any, hook: Any, fibo_project: dict[str, Any]
) -> None:
    other = hook.create_project("Brand Y", "illustration", "stylized_scene", training_version="fibo")
    a = BriaCreateDatasetOperator(task_id="a", project_id=fibo_project["id"], name="set", hook_params=FAST_HOOK)
    b = BriaCreateDatasetOperator(task_id="b", project_id=other["id"], name="set", hook_params=FAST_HOOK)
    assert a.execute(make_context()) != b.execute(make_context())
    assert bria_conn.state()["counts"]["datasets"] == 2


def test_create_dataset_fail_and_mismatch(
    bria_conn: Any, make_context: Any, hook: Any, fibo_project: dict[str, Any]
) -> None:
    existing = hook.create_dataset(fibo_project["id"], "set", upload_type="basic", training_version="fibo")
    with pytest.raises(BriaConflictError, match=rf"id={existing['id']}"):
        BriaCreateDatasetOperator(task_id="d", project_id=fibo_project["id"], name="set", if_exists="fail",
                                  hook_params=FAST_HOOK).execute(make_context())
    with pytest.raises(BriaConflictError, match="upload_type is 'basic', not 'advanced'"):
        BriaCreateDatasetOperator(task_id="d", project_id=fibo_project["id"], name="set", upload_type="advanced",
                                  hook_params=FAST_HOOK).execute(make_context())
    assert bria_conn.state()["counts"]["datasets"] == 1


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"training_version": "max"}, BriaInputError, "does not match the project's fibo family"),
        ({"project_id": 987654}, BriaNotFoundError, "not found"),
        ({"project_id": "x1"}, BriaInputError, "project_id must be an integer"),
        ({"name": " "}, BriaInputError, "name is required"),
        ({"upload_type": "{{ x }}", "_render": {"upload_type": "huge"}}, BriaInputError, "Invalid upload_type"),
        ({"training_version": "v9"}, BriaInputError, "Unknown training_version"),
    ],
)
def test_create_dataset_bad_inputs_change_nothing(
    bria_conn: Any, make_context: Any, object_counts: Any, fibo_project: dict[str, Any],
    kwargs: dict[str, Any], exc: type[Exception], message: str,
) -> None:
    before = object_counts(bria_conn)
    seen = len(bria_conn.requests("/v1/"))
    render = kwargs.pop("_render", {})
    args = {"task_id": "d", "project_id": fibo_project["id"], "name": "set", "hook_params": FAST_HOOK, **kwargs}
    op = BriaCreateDatasetOperator(**args)
    for field, value in render.items():
        setattr(op, field, value)
    with pytest.raises(exc, match=message):
        op.execute(make_context())
    assert object_counts(bria_conn) == before
    assert not [r for r in bria_conn.requests("/v1/")[seen:] if r["method"] != "GET"]


# ------------------------------------------------------------------ update


def test_update_schema_and_name_then_no_op_on_retry(
    bria_conn: Any, make_context: Any, hook: Any, fibo_project: dict[str, Any]
) -> None:
    dataset = hook.create_dataset(fibo_project["id"], "set", training_version="fibo")
    op = _update(dataset["id"], visual_schema=SCHEMA, name="renamed")
    ctx = make_context()
    result = op.execute(ctx)
    assert result["updated"] == ["name", "visual_schema"]
    remote = hook.get_dataset(dataset["id"])
    assert json.loads(remote["visual_schema"]) == SCHEMA
    assert remote["name"] == "renamed"
    assert ctx["ti"].xcoms["dataset_id"] == dataset["id"]
    puts = _puts(bria_conn, dataset["id"])
    # Retry: same values already in place -> no PUT at all (a JSON string of the same schema counts as equal).
    again = _update(dataset["id"], visual_schema=json.dumps(SCHEMA, indent=2), name="renamed").execute(make_context())
    assert again["updated"] == []
    assert _puts(bria_conn, dataset["id"]) == puts


def test_complete_needs_five_images_for_fibo(
    bria_conn: Any, make_context: Any, hook: Any, fibo_project: dict[str, Any], fill: Any, upload_pngs: list[bytes]
) -> None:
    dataset = hook.create_dataset(fibo_project["id"], "set", training_version="fibo")
    hook.update_dataset(dataset["id"], visual_schema=SCHEMA)
    fill(hook, dataset["id"], upload_pngs, n=4)
    with pytest.raises(BriaInputError, match="has 4 image.*needs at least 5"):
        _update(dataset["id"], status="completed").execute(make_context())
    assert hook.get_dataset(dataset["id"])["status"] == "draft"
    fill(hook, dataset["id"], upload_pngs[4:], n=1)
    result = _update(dataset["id"], status="completed").execute(make_context())
    assert result == {"dataset_id": dataset["id"], "status": "completed", "images_count": 5, "updated": ["status"]}
    assert hook.get_dataset(dataset["id"])["status"] == "completed"
    puts = _puts(bria_conn, dataset["id"])
    assert _update(dataset["id"], status="completed").execute(make_context(2))["updated"] == []
    assert _puts(bria_conn, dataset["id"]) == puts
    # A completed dataset is frozen: a new schema is refused client-side, before any call.
    with pytest.raises(BriaConflictError, match="completed \\(frozen\\).*Clone"):
        _update(dataset["id"], visual_schema={"style": "other"}).execute(make_context())
    assert _puts(bria_conn, dataset["id"]) == puts


def test_legacy_dataset_prefix_and_five_image_completion(
    bria_conn: Any, make_context: Any, hook: Any, fill: Any, upload_pngs: list[bytes]
) -> None:
    project = hook.create_project("Legacy", "photography", "stylized_scene")
    dataset = hook.create_dataset(project["id"], "old", training_version="max")
    with pytest.raises(BriaInputError, match="FIBO datasets only"):
        _update(dataset["id"], visual_schema=SCHEMA).execute(make_context())
    fill(hook, dataset["id"], upload_pngs, n=5)  # the spec: 5 images to complete, legacy too
    result = _update(dataset["id"], caption_prefix="A photo of", status="completed").execute(make_context())
    assert result["updated"] == ["caption_prefix", "status"]
    remote = hook.get_dataset(dataset["id"])
    assert (remote["caption_prefix"], remote["status"]) == ("A photo of", "completed")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"visual_schema": "{not json"}, "valid JSON"),
        ({"caption_prefix": "A photo of"}, "legacy datasets only"),
        ({"status": "{{ s }}", "_render": {"status": "archived"}}, "Invalid status"),
        ({"name": ""}, "name is required"),
    ],
)
def test_update_bad_inputs_send_nothing(
    bria_conn: Any, make_context: Any, hook: Any, fibo_project: dict[str, Any], kwargs: dict[str, Any], message: str
) -> None:
    dataset = hook.create_dataset(fibo_project["id"], "set", training_version="fibo")
    render = kwargs.pop("_render", {})
    op = _update(dataset["id"], **kwargs)
    for field, value in render.items():
        setattr(op, field, value)
    with pytest.raises(BriaInputError, match=message):
        op.execute(make_context())
    assert _puts(bria_conn, dataset["id"]) == 0


def test_update_needs_a_field_and_a_known_dataset(bria_conn: Any, make_context: Any) -> None:
    with pytest.raises(BriaInputError, match="at least one"):
        BriaUpdateDatasetOperator(task_id="u", dataset_id=1)
    with pytest.raises(BriaNotFoundError):
        _update(424242, status="completed").execute(make_context())


def test_completion_409_after_lost_response_counts_as_success(
    requests_mock: Any, make_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PUT completed the dataset but the answer was lost; the hook's retried PUT gets 409."""
    base = "https://bria.test"
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json(base))
    url = f"{base}/v1/tailored-gen/datasets/5"
    draft = {"id": 5, "project_id": 1, "status": "draft", "training_version": "fibo", "images_count": 6,
             "visual_schema": json.dumps(SCHEMA)}
    requests_mock.get(url, [{"json": draft}, {"json": {**draft, "status": "completed"}}])
    requests_mock.put(url, status_code=409, json={"message": "Dataset already completed"})
    result = _update(5, status="completed").execute(make_context())
    assert result["status"] == "completed"
    assert sum(1 for r in requests_mock.request_history if r.method == "PUT") == 1


def test_real_409_is_reported_clearly(requests_mock: Any, make_context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    base = "https://bria.test"
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json(base))
    url = f"{base}/v1/tailored-gen/datasets/5"
    draft = {"id": 5, "project_id": 1, "status": "draft", "training_version": "fibo", "images_count": 6}
    requests_mock.get(url, json=draft)
    body = {"message": "Cannot complete a dataset while a bulk upload is running"}
    requests_mock.put(url, status_code=409, json=body)
    with pytest.raises(BriaConflictError, match="refused the update.*bulk upload"):
        _update(5, status="completed").execute(make_context())


# ------------------------------------------------------------------ clone


def test_clone_is_a_draft_copy_and_reused_on_retry(
    bria_conn: Any, make_context: Any, hook: Any, fibo_project: dict[str, Any], fill: Any, upload_pngs: list[bytes],
    capfd: pytest.CaptureFixture[str],
) -> None:
    source = hook.create_dataset(fibo_project["id"], "v1", training_version="fibo")
    hook.update_dataset(source["id"], visual_schema=SCHEMA)
    fill(hook, source["id"], upload_pngs)
    hook.update_dataset(source["id"], status="completed")
    ctx = make_context()
    op = BriaCloneDatasetOperator(task_id="clone", dataset_id=source["id"], hook_params=FAST_HOOK)
    clone_id = op.execute(ctx)
    clone = hook.get_dataset(clone_id)
    assert clone["name"] == "Copy of v1"
    assert clone["status"] == "draft"
    assert clone["images_count"] == 5
    assert json.loads(clone["visual_schema"]) == SCHEMA
    assert ctx["ti"].xcoms["dataset_id"] == clone_id
    assert op.execute(make_context(2)) == clone_id
    assert bria_conn.state()["counts"]["datasets"] == 2
    named = BriaCloneDatasetOperator(task_id="c2", dataset_id=source["id"], name="v2", hook_params=FAST_HOOK)
    v2 = named.execute(make_context())
    assert hook.get_dataset(v2)["name"] == "v2"
    # A re-run after the clone was completed (and grew) reuses it and says so: no second copy.
    hook.upload_image(v2, file=upload_pngs[5], image_name="new-photo.png")
    hook.update_dataset(v2, status="completed")
    capfd.readouterr()
    assert named.execute(make_context()) == v2
    assert f"Reusing the completed clone 'v2' (id={v2}) of dataset {source['id']}" in "".join(capfd.readouterr())
    assert bria_conn.state()["counts"]["datasets"] == 2 + 1
    # A completed dataset of that name that is not a clone of this source is never taken as the clone.
    other = hook.create_dataset(fibo_project["id"], "v3", training_version="fibo")
    for i in range(5):
        hook.upload_image(other["id"], file=upload_pngs[i], image_name=f"other-{i}.png")
    hook.update_dataset(other["id"], visual_schema=SCHEMA)
    hook.update_dataset(other["id"], status="completed")
    with pytest.raises(BriaConflictError, match="it is not a clone of dataset .* lacks 5 of the source's images"):
        BriaCloneDatasetOperator(task_id="c4", dataset_id=source["id"], name="v3",
                                 hook_params=FAST_HOOK).execute(make_context())
    with pytest.raises(BriaInputError, match="source dataset's own name"):
        BriaCloneDatasetOperator(task_id="c3", dataset_id=source["id"], name="v1",
                                 hook_params=FAST_HOOK).execute(make_context())
    assert bria_conn.state()["counts"]["datasets"] == 4


def test_clone_unknown_dataset(bria_conn: Any, make_context: Any, object_counts: Any) -> None:
    before = object_counts(bria_conn)
    with pytest.raises(BriaNotFoundError):
        BriaCloneDatasetOperator(task_id="c", dataset_id=31337, hook_params=FAST_HOOK).execute(make_context())
    assert object_counts(bria_conn) == before


# ------------------------------------------------------------------ delete


def test_delete_dataset_is_idempotent_and_explains_conflicts(
    bria_conn: Any, make_context: Any, hook: Any, fibo_project: dict[str, Any], fill: Any, upload_pngs: list[bytes]
) -> None:
    doomed = hook.create_dataset(fibo_project["id"], "doomed", training_version="fibo")
    op = BriaDeleteDatasetOperator(task_id="del", dataset_id=doomed["id"], hook_params=FAST_HOOK)
    assert op.execute(make_context()) == {"dataset_id": doomed["id"], "deleted": True}
    assert op.execute(make_context(2)) == {"dataset_id": doomed["id"], "deleted": False}
    with pytest.raises(BriaNotFoundError):
        BriaDeleteDatasetOperator(task_id="d", dataset_id=doomed["id"], missing_ok=False,
                                  hook_params=FAST_HOOK).execute(make_context())
    busy = hook.create_dataset(fibo_project["id"], "busy", training_version="fibo")
    fill(hook, busy["id"], upload_pngs)
    hook.update_dataset(busy["id"], visual_schema=SCHEMA, status="completed")  # FIBO completion needs a schema
    model = hook.create_model(busy["id"], "m", training_version="fibo")
    bria_conn.set_model_status(model["id"], "InProgress")
    with pytest.raises(BriaConflictError, match="in training; stop the training first"):
        BriaDeleteDatasetOperator(task_id="d", dataset_id=busy["id"], hook_params=FAST_HOOK).execute(make_context())
    assert hook.get_dataset(busy["id"])["id"] == busy["id"]
