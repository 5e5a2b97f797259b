"""The deployment tests' DAGs share one preparation chain (``devstack/pipelines.py``) and one set of settings.

The system and Celery kill pipelines and the fault pipelines are built by :func:`prepare_and_train`; these tests
parse the DAG files as the deployments do and check the chains they run (task ids, order, arguments).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_bria.devstack.deployment import FAST_SCHEDULER_ENV, airflow_env

TESTS = Path(__file__).resolve().parents[1]
CHAIN = ["create_project", "create_dataset", "upload_images", "complete_dataset", "create_model", "train_model"]


@pytest.fixture(scope="module")
def stack_dags() -> dict[str, Any]:
    from airflow_provider_bria._compat import DagBag

    dags: dict[str, Any] = {}
    for folder in (TESTS / "system" / "dags", TESTS / "celery" / "dags", TESTS / "test_dags"):
        bag = DagBag(dag_folder=str(folder))
        assert not bag.import_errors, bag.import_errors
        dags.update(bag.dags)
    return dags


def _upstream(dag: Any, task_id: str) -> set[str]:
    return set(dag.get_task(task_id).upstream_task_ids)


@pytest.mark.parametrize("dag_id", ["system_kill_pipeline", "celery_kill_pipeline"])
def test_kill_pipelines_run_the_shared_chain(stack_dags: dict[str, Any], dag_id: str) -> None:
    dag = stack_dags[dag_id]
    assert set(CHAIN) <= set(dag.task_ids)
    assert _upstream(dag, "complete_dataset") == {"upload_images", "create_dataset"}
    assert _upstream(dag, "train_model") == {"create_model"}
    assert dag.get_task("upload_images").max_concurrency == 1
    assert dag.get_task("complete_dataset").visual_schema == {"style_medium": "illustration"}
    assert dag.default_args["retries"] == 2
    assert (dag.get_task("create_dataset").name, dag.get_task("create_model").name) == ("kill-dataset", "kill-model")


def test_kill_pipelines_differ_only_where_the_tests_need_it(stack_dags: dict[str, Any]) -> None:
    system, celery = stack_dags["system_kill_pipeline"], stack_dags["celery_kill_pipeline"]
    assert system.get_task("train_model").deferrable is False  # the system test kills the waiting task process
    assert celery.get_task("train_model").deferrable is True
    assert set(celery.task_ids) - set(system.task_ids) == {"generate_images"}
    assert _upstream(celery, "generate_images") == {"train_model", "create_model"}


def test_fault_pipelines_keep_their_task_ids(stack_dags: dict[str, Any]) -> None:
    fault = stack_dags["training_fault_pipeline"]
    assert sorted(fault.task_ids) == ["complete", "dataset", "model", "project", "train", "upload"]
    assert fault.get_task("project").training_version is None
    system = stack_dags["system_fault_pipeline"]
    assert _upstream(system, "upload_images") == {"generate_visual_schema", "create_dataset"}
    assert system.get_task("complete_dataset").visual_schema is None  # the schema task applies it


def test_every_deployment_gets_the_fast_scheduler_settings(tmp_path: Path) -> None:
    env = airflow_env(base_url="http://127.0.0.1:1", port=1, dags_folder=tmp_path, passwords_file=tmp_path / "p")
    assert {k: env[k] for k in FAST_SCHEDULER_ENV} == FAST_SCHEDULER_ENV
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:1/execution/"
