"""One-task DAGs for the fail-fast tests (tests/dags/test_fail_fast.py): each has ``retries=2`` and no delay.

``bria_fail_fast_<case>`` fails with an error a retry cannot fix (one try expected), except
``bria_fail_fast_transient`` (a 5xx the test injects: three tries expected). Ids come from the run conf.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import DAG

from airflow_provider_bria.operators.dataset import BriaCreateDatasetOperator, BriaUpdateDatasetOperator

NO_HOOK_RETRY = {"retry_limit": 0}
DEFAULTS = {"retries": 2, "retry_delay": timedelta(0), "hook_params": NO_HOOK_RETRY}

#: case -> (operator class, arguments)
CASES: dict[str, tuple[type, dict[str, Any]]] = {
    "input": (BriaCreateDatasetOperator, {"project_id": "abc", "name": "d"}),
    "no_connection": (BriaCreateDatasetOperator,
                      {"project_id": 1, "name": "d", "bria_conn_id": "no_such_bria_conn"}),
    "bad_token": (BriaCreateDatasetOperator, {"project_id": 1, "name": "d", "bria_conn_id": "bria_wrong"}),
    "user_id_404": (BriaCreateDatasetOperator, {"project_id": 987654, "name": "d"}),
    "param_404": (BriaCreateDatasetOperator, {"project_id": "{{ params.project }}", "name": "d"}),
    "validation_400": (BriaUpdateDatasetOperator, {"dataset_id": "{{ params.dataset }}", "name": "renamed"}),
    "transient": (BriaCreateDatasetOperator, {"project_id": "{{ params.project }}", "name": "d"}),
}

for _case, (_cls, _kwargs) in CASES.items():
    with DAG(
        dag_id=f"bria_fail_fast_{_case}",
        schedule=None,
        catchup=False,
        default_args=DEFAULTS,
        params={"project": 987655, "dataset": 1},
        tags=["test"],
    ):
        _cls(task_id="t", **_kwargs)
