"""No duplicates under injected faults, over real HTTP.

An emulator with ``fault_rate`` fails a share of requests: 429/500/503 *before* applying them, or 500/503/
dropped connection *after* applying them (the client cannot tell). Each create operator is run the way
Airflow would run it with retries (a fresh ``execute`` per try, until one succeeds), and the emulator must
end up with exactly one object per natural key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kit import conn_json
from lifecycle_helpers import fill_dataset

from airflow_provider_bria.exceptions import BriaError
from airflow_provider_bria.operators.dataset import BriaCloneDatasetOperator, BriaCreateDatasetOperator
from airflow_provider_bria.operators.model import BriaCreateModelOperator
from airflow_provider_bria.operators.project import BriaCreateProjectOperator

pytestmark = pytest.mark.timeout(180)

HOOK = {"retry_limit": 4, "retry_delay": 0.0, "retry_max_delay": 0.0}
AIRFLOW_TRIES = 8


@pytest.fixture(scope="module")
def faulty(start_emulator: Callable[..., Any]) -> Any:
    """A dedicated emulator for fault injection (the shared one stays fault-free)."""
    return start_emulator()


def _with_airflow_retries(run: Callable[[int], Any]) -> tuple[Any, int]:
    """Call ``run(try_number)`` until it succeeds, like Airflow task retries; return (result, tries)."""
    for try_number in range(1, AIRFLOW_TRIES + 1):
        try:
            return run(try_number), try_number
        except BriaError:
            if try_number == AIRFLOW_TRIES:
                raise
    raise AssertionError("unreachable")


@pytest.mark.parametrize("seed", [3, 7, 29])  # seeds whose faults hit create POSTs before and after applying
def test_create_operators_never_duplicate_under_faults(
    faulty: Any, make_context: Any, monkeypatch: pytest.MonkeyPatch, upload_pngs: list[bytes], seed: int
) -> None:
    from airflow_provider_bria.hooks.bria import BriaHook

    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json(faulty.url))
    faulty.reset()
    faulty.set_faults(0.35, seed=seed)

    def project(n: int) -> int:
        return BriaCreateProjectOperator(task_id="p", project_name="Chaos", ip_medium="illustration",
                                         ip_type="stylized_scene", training_version="fibo",
                                         hook_params=HOOK).execute(make_context(n))

    project_id, _ = _with_airflow_retries(project)
    dataset_id, _ = _with_airflow_retries(
        lambda n: BriaCreateDatasetOperator(task_id="d", project_id=project_id, name="set",
                                            hook_params=HOOK).execute(make_context(n))
    )

    faulty.set_faults(0.0)  # set-up steps that belong to other operators
    hook = BriaHook(**HOOK)
    hook.update_dataset(dataset_id, visual_schema={"style": "pastel"})
    fill_dataset(hook, dataset_id, upload_pngs)
    hook.update_dataset(dataset_id, status="completed")
    faulty.set_faults(0.35, seed=seed + 1)

    model_id, _ = _with_airflow_retries(
        lambda n: BriaCreateModelOperator(task_id="m", dataset_id=dataset_id, name="chaos-model",
                                          hook_params=HOOK).execute(make_context(n))
    )
    clone_id, _ = _with_airflow_retries(
        lambda n: BriaCloneDatasetOperator(task_id="c", dataset_id=dataset_id, name="set v2",
                                           hook_params=HOOK).execute(make_context(n))
    )
    # Re-running everything once more (a DAG re-run) changes nothing either.
    assert _with_airflow_retries(project)[0] == project_id

    faulty.set_faults(0.0)
    faulted_posts = [r for r in faulty.requests("/v1/") if r["method"] == "POST" and r.get("fault")]
    assert faulted_posts, "this seed should make at least one create POST fail"
    state = faulty.state()
    assert state["counts"]["faults_injected"] > 0
    assert state["duplicates"] == {"projects": [], "datasets": [], "models": [], "images": []}
    assert (state["counts"]["projects"], state["counts"]["datasets"], state["counts"]["models"]) == (1, 2, 1)
    assert hook.get_model(model_id)["dataset_id"] == dataset_id
    assert hook.get_dataset(clone_id)["name"] == "set v2"
