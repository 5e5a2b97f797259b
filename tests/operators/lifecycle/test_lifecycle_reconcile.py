"""Unit tests of the find-or-create protocol (operators/_reconcile.py), with in-memory fakes."""

from __future__ import annotations

from typing import Any

import pytest
from kit import FakeStateStore

from airflow_provider_bria.exceptions import (
    BriaConflictError,
    BriaInputError,
    BriaNotFoundError,
    BriaServerError,
    BriaTransportError,
    BriaValidationError,
)
from airflow_provider_bria.operators._reconcile import (
    coerce_bool,
    coerce_id,
    create_or_reuse,
    delete_idempotent,
    validate_if_exists,
)


class FakeRemote:
    """A remote collection whose create can fail before or after applying, on a script."""

    def __init__(self, script: list[str] | None = None, existing: dict[str, Any] | None = None) -> None:
        self.objects: list[dict[str, Any]] = [existing] if existing else []
        self.script = list(script or [])  # per create call: "ok", "lost" (applied, then 5xx), "fail" (not applied)
        self.finds = 0
        self.creates = 0

    def find(self) -> dict[str, Any] | None:
        self.finds += 1
        return self.objects[0] if self.objects else None

    def create(self) -> dict[str, Any]:
        self.creates += 1
        step = self.script.pop(0) if self.script else "ok"
        if step in ("ok", "lost"):
            obj = {"id": 100 + self.creates, "name": "x"}
            self.objects.append(obj)
            if step == "lost":
                raise BriaServerError("boom", status_code=502)
            return obj
        if step == "fail":
            raise BriaTransportError("connection dropped")
        if step == "reject":
            raise BriaValidationError("bad", status_code=400)
        raise AssertionError(step)

    def run(self, **kwargs: Any) -> tuple[dict[str, Any], bool]:
        kwargs.setdefault("what", "thing 'x'")
        kwargs.setdefault("reconcile_delay", 0)
        return create_or_reuse(find=self.find, create=self.create, **kwargs)


def test_creates_when_missing() -> None:
    remote = FakeRemote()
    obj, created = remote.run()
    assert created is True
    assert obj["id"] == 101
    assert (remote.finds, remote.creates) == (1, 1)


def test_reuses_existing_without_creating() -> None:
    remote = FakeRemote(existing={"id": 7, "name": "x"})
    obj, created = remote.run()
    assert (obj["id"], created) == (7, False)
    assert remote.creates == 0


def test_fail_mode_raises_conflict_naming_the_id() -> None:
    remote = FakeRemote(existing={"id": 7, "name": "x"})
    with pytest.raises(BriaConflictError, match=r"id=7.*if_exists='fail'"):
        remote.run(if_exists="fail")
    assert remote.creates == 0


def test_check_can_refuse_an_existing_object() -> None:
    remote = FakeRemote(existing={"id": 7, "kind": "other"})

    def check(obj: Any) -> None:
        raise BriaConflictError(f"wrong kind {obj['kind']}")

    with pytest.raises(BriaConflictError, match="wrong kind other"):
        remote.run(check=check)
    assert remote.creates == 0


def test_ambiguous_failure_that_applied_is_found_and_not_recreated() -> None:
    remote = FakeRemote(script=["lost"])
    obj, created = remote.run()
    assert (obj["id"], created) == (101, True)
    assert remote.creates == 1
    assert remote.finds == 2
    assert len(remote.objects) == 1


def test_ambiguous_failure_that_did_not_apply_is_retried_once() -> None:
    remote = FakeRemote(script=["fail", "ok"])
    obj, created = remote.run()
    assert (obj["id"], created) == (102, True)
    assert remote.creates == 2
    assert len(remote.objects) == 1


def test_two_ambiguous_failures_look_up_a_last_time_then_raise() -> None:
    remote = FakeRemote(script=["fail", "fail"])
    with pytest.raises(BriaTransportError):
        remote.run()
    assert remote.creates == 2
    assert remote.finds == 3
    assert remote.objects == []


def test_second_ambiguous_failure_that_applied_is_found() -> None:
    remote = FakeRemote(script=["fail", "lost"])
    obj, _ = remote.run()
    assert obj["id"] == 102
    assert len(remote.objects) == 1


def test_non_ambiguous_error_is_not_retried() -> None:
    remote = FakeRemote(script=["reject"])
    with pytest.raises(BriaValidationError):
        remote.run()
    assert remote.creates == 1
    assert remote.finds == 1


def test_reconcile_waits_before_looking_again() -> None:
    slept: list[float] = []
    remote = FakeRemote(script=["lost"])
    remote.run(reconcile_delay=2.5, sleep=slept.append)
    assert slept == [2.5]


def test_state_store_lets_fail_mode_recognise_its_own_object_on_retry() -> None:
    store = FakeStateStore()
    remote = FakeRemote()
    first, _ = remote.run(if_exists="fail", state_store=store, state_key="k")
    assert store.values == {"k": first["id"]}
    # The next try of the same task instance finds the object it created: no conflict, no duplicate.
    again, created = remote.run(if_exists="fail", state_store=store, state_key="k")
    assert (again["id"], created) == (first["id"], True)
    assert remote.creates == 1
    # Another task instance (another store) still gets the conflict.
    with pytest.raises(BriaConflictError):
        remote.run(if_exists="fail", state_store=FakeStateStore(), state_key="k")


def test_broken_state_store_never_fails_the_task() -> None:
    class Broken:
        def get(self, key: str) -> Any:
            raise RuntimeError("no supervisor")

        def set(self, key: str, value: Any) -> None:
            raise RuntimeError("no supervisor")

    remote = FakeRemote()
    obj, created = remote.run(state_store=Broken(), state_key="k")
    assert created is True
    obj2, created2 = remote.run(state_store=Broken(), state_key="k")
    assert (obj2["id"], created2) == (obj["id"], False)


def test_lookup_errors_propagate() -> None:
    def find() -> Any:
        raise BriaNotFoundError("Project not found", status_code=404)

    with pytest.raises(BriaNotFoundError):
        create_or_reuse(find=find, create=lambda: {"id": 1}, what="x", reconcile_delay=0)


def test_object_without_id_is_an_error() -> None:
    with pytest.raises(BriaConflictError, match="without an integer id"):
        create_or_reuse(find=lambda: None, create=lambda: {"name": "x"}, what="x", reconcile_delay=0)


@pytest.mark.parametrize(("value", "expected"), [(5, 5), ("5", 5), (" 12 ", 12), (3.0, 3)])
def test_coerce_id_accepts_ints_from_xcom_or_templates(value: Any, expected: int) -> None:
    assert coerce_id(value, "project_id") == expected


@pytest.mark.parametrize("value", [None, True, "abc", "", "1.5", 0, -3, 2.5, "{{ ti.xcom_pull() }}"])
def test_coerce_id_rejects_non_ids(value: Any) -> None:
    with pytest.raises(BriaInputError, match="project_id"):
        coerce_id(value, "project_id")


def test_validate_if_exists() -> None:
    assert validate_if_exists("reuse") == "reuse"
    with pytest.raises(BriaInputError, match="if_exists"):
        validate_if_exists("overwrite")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), (1, True), (0, False), ("True", True), ("false", False), (" YES ", True),
     ("no", False), ("on", True), ("OFF", False), ("1", True), ("0", False)],
)
def test_coerce_bool_accepts_flags_rendered_by_templates(value: Any, expected: bool) -> None:
    assert coerce_bool(value, "increase_resolution") is expected


@pytest.mark.parametrize("value", [None, "", "maybe", "{{ params.x }}", 2, -1, 1.0, [True]])
def test_coerce_bool_rejects_anything_else(value: Any) -> None:
    with pytest.raises(BriaInputError, match="increase_resolution must be True or False"):
        coerce_bool(value, "increase_resolution")


class FakeDelete:
    """A delete call that raises a scripted error (or succeeds), counting calls."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls = 0
        self.explained = 0

    def __call__(self) -> None:
        self.calls += 1
        if self.error is not None:
            raise self.error

    def explain(self) -> str:
        self.explained += 1
        return "Model 7 is training; stop it first"


def test_delete_idempotent_reports_a_real_delete() -> None:
    delete = FakeDelete()
    assert delete_idempotent(delete, "Model 7", missing_ok=True, conflict_message=delete.explain) is True
    assert (delete.calls, delete.explained) == (1, 0)  # the message is only built for a 409


def test_delete_idempotent_treats_missing_as_already_deleted() -> None:
    delete = FakeDelete(BriaNotFoundError("Model not found", status_code=404))
    assert delete_idempotent(delete, "Model 7", missing_ok=True, conflict_message="unused") is False
    with pytest.raises(BriaNotFoundError, match="Model not found"):
        delete_idempotent(delete, "Model 7", missing_ok=False, conflict_message="unused")
    assert delete.calls == 2


@pytest.mark.parametrize("lazy", [True, False])
def test_delete_idempotent_explains_a_conflict_and_keeps_the_server_details(lazy: bool) -> None:
    delete = FakeDelete(BriaConflictError("Model is in training", status_code=409, request_id="req-9",
                                          method="DELETE", path="/v1/tailored-gen/models/7"))
    message = delete.explain if lazy else "Model 7 is training; stop it first"
    with pytest.raises(BriaConflictError) as err:
        delete_idempotent(delete, "Model 7", missing_ok=True, conflict_message=message)
    assert err.value.message == "Model 7 is training; stop it first (server said: Model is in training)"
    assert (err.value.status_code, err.value.request_id, err.value.path) == (409, "req-9", "/v1/tailored-gen/models/7")
    assert isinstance(err.value.__cause__, BriaConflictError)
    assert delete.explained == (1 if lazy else 0)


@pytest.mark.parametrize(
    "error",
    [BriaServerError("boom", status_code=502), BriaValidationError("bad", status_code=400),
     BriaTransportError("connection dropped")],
)
def test_delete_idempotent_lets_other_errors_through(error: Exception) -> None:
    delete = FakeDelete(error)
    with pytest.raises(type(error)):
        delete_idempotent(delete, "Model 7", missing_ok=True, conflict_message=delete.explain)
    assert (delete.calls, delete.explained) == (1, 0)
