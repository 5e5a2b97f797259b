"""Fail fast (issue 15 item 3): what a retry cannot fix ends the task at its first try; the rest retries.

Each case runs a real one-task DAG with ``retries=2`` (no delay) under ``dag.test()`` and reads the task
instance's try number from the metadata database: exactly one try for input, connection-configuration,
authentication, validation and user-given-id 404 errors; three tries for a transient 5xx. The messages name
the argument (and the Param it was rendered from).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_bria.operators.dataset import BriaCreateDatasetOperator

TEST_DAGS = Path(__file__).resolve().parents[1] / "test_dags"


def _dag(case: str) -> Any:
    from airflow_provider_bria._compat import DagBag

    bag = DagBag(dag_folder=str(TEST_DAGS / "fail_fast.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[f"bria_fail_fast_{case}"]


def _run(run_dag: Any, case: str, capfd: pytest.CaptureFixture[str], conf: dict[str, Any] | None = None,
         ) -> tuple[Any, str]:
    capfd.readouterr()
    run = run_dag(_dag(case), conf or {})
    out, err = capfd.readouterr()
    return run, out + err


def _project(emulator: Any, name: str = "fail-fast") -> int:
    from airflow_provider_bria.hooks.bria import BriaHook

    return BriaHook().create_project(name, ip_medium="illustration", ip_type="object_variants",
                                     ip_description="a red chair")["id"]


@pytest.mark.parametrize(
    ("case", "expected_text"),
    [
        ("input", "project_id must be an integer id"),
        ("no_connection", "bria_conn_id='no_such_bria_conn': no such Airflow connection"),
        ("bad_token", "HTTP 401"),
        ("user_id_404", "argument project_id=987654"),
        ("param_404", "from Param 'project'"),
        ("validation_400", "HTTP 400: name: name is too long"),
    ],
)
def test_permanent_errors_fail_at_the_first_try(
    case: str, expected_text: str, bria_conn: Any, run_dag: Any, monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    conf: dict[str, Any] = {}
    if case == "bad_token":
        monkeypatch.setenv("AIRFLOW_CONN_BRIA_WRONG", json.dumps(
            {"conn_type": "bria", "host": bria_conn.url, "password": "wrong-token-123"}))
    elif case == "validation_400":
        # The emulator cannot be told to refuse a valid rename, so the hook's PUT gets the server's answer
        # from Bria's documented v1 field-error shape, parsed by the real error builder (what is under test
        # is Airflow's retry decision, not the server).
        from airflow_provider_bria.exceptions import build_api_error
        from airflow_provider_bria.hooks.bria import BriaHook

        conf["dataset"] = BriaHook().create_dataset(_project(bria_conn), "ff")["id"]
        body = {"errors": [{"msg": "name is too long", "field_name": "name", "field_input": "renamed"}]}

        def refuse(*_: Any, **__: Any) -> Any:
            raise build_api_error(400, body, method="PUT", path=f"/v1/tailored-gen/datasets/{conf['dataset']}")

        monkeypatch.setattr(BriaHook, "update_dataset", refuse)
    run, logs = _run(run_dag, case, capfd, conf)
    assert run.state == "failed", run.tasks
    assert run.tries == {"t": 1}, f"{case}: a permanent error was retried: {run.tries}"
    assert expected_text in logs, logs[-3000:]
    # Quiet logs (item 8): the provider's own console links never log "XCom not found" on a failed task.
    assert "XCom not found" not in logs


def test_user_id_404_with_param_names_the_param(bria_conn: Any) -> None:
    """The operator-level classification, directly: a 404 on a Param-rendered id names both."""
    from airflow_provider_bria.exceptions import BriaUserIdNotFoundError

    op = BriaCreateDatasetOperator(task_id="t", project_id="{{ params['week_project'] }}", name="d",
                                   hook_params={"retry_limit": 0})
    object.__setattr__(op, "project_id", 424242)  # as rendering leaves it (the constructor's template is kept)
    with pytest.raises(BriaUserIdNotFoundError) as info:
        op.execute({})
    assert info.value.argument == "project_id"
    assert "argument project_id=424242 (from Param 'week_project')" in str(info.value)


def test_transient_errors_keep_airflow_retries(
    bria_conn: Any, run_dag: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    """A 503 on every lookup is transient: all three tries run (and each reaches the server)."""
    pid = _project(bria_conn)
    bria_conn.set_faults(0.0, rules=[{"method": "GET", "path_regex": rf"/projects/{pid}$", "phase": "before",
                                      "kind": 503, "times": 100}])

    run, _ = _run(run_dag, "transient", capfd, {"project": pid})
    assert run.state == "failed"
    assert run.tries == {"t": 3}
    fired = sum(r["fired"] for r in bria_conn.faults()["rules"])
    assert fired == 3


def test_derived_id_404_keeps_retrying() -> None:
    """A 404 on an id the operator did not get from the user (a job id, a looked-up dataset) is ambiguous."""
    from airflow_provider_bria.exceptions import BriaNonRetryableError, BriaNotFoundError

    op = BriaCreateDatasetOperator(task_id="t", project_id=5, name="d")
    err = BriaNotFoundError("gone", status_code=404, method="GET", path="/v1/datasets/5")
    assert op._classify(err) is err
    assert not isinstance(err, BriaNonRetryableError)
    err = BriaNotFoundError("gone", status_code=404, method="GET", path="/v1/projects/5/datasets")
    assert isinstance(op._classify(err), BriaNonRetryableError)
