"""End-to-end: the lifecycle test DAG run with ``dag.test()`` against the emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lifecycle_helpers import png_bytes

pytestmark = pytest.mark.timeout(240)


def _load_dag(airflow_home: Path) -> Any:
    from airflow_provider_bria._compat import DagBag

    # The DAGs folder links tests/test_dags (see tests/conftest.py); load the file from there.
    bag = DagBag(dag_folder=str(airflow_home / "dags" / "test_dags" / "lifecycle_pipeline.py"))
    assert bag.import_errors == {}
    return bag.dags["lifecycle_pipeline"]


def _xcom(run: Any, task_id: str, key: str = "return_value") -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(XComModel).filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id,
                                                 key=key).one_or_none()
        return None if row is None else XComModel.deserialize_value(row)


def test_lifecycle_dag_end_to_end(airflow_db: Any, airflow_home: Path, bria_conn: Any, tmp_path: Path) -> None:
    samples, uploads = [], []
    for i in range(6):
        path = tmp_path / f"sample-{i}.png"
        path.write_bytes(png_bytes(i))
        samples.append(str(path))
        upload = tmp_path / f"upload-{i}.png"
        upload.write_bytes(png_bytes(i + 20, 512))
        uploads.append(str(upload))

    dag = _load_dag(airflow_home)
    run = dag.test(run_conf={"project_name": "Lifecycle DAG", "samples": samples[:5], "uploads": uploads[:5]})

    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert set(states.values()) == {"success"}, states
    assert run.state == "success"

    state = bria_conn.state()
    counts = state["counts"]
    assert (counts["projects"], counts["datasets"], counts["images"], counts["models"]) == (1, 2, 10, 1)
    assert state["duplicates"] == {"projects": [], "datasets": [], "models": [], "images": []}

    from airflow_provider_bria.hooks.bria import BriaHook

    hook = BriaHook()
    project_id = _xcom(run, "create_project")
    dataset_id = _xcom(run, "create_dataset")
    model_id = _xcom(run, "create_model")
    dataset = hook.get_dataset(dataset_id)
    assert dataset["status"] == "completed"
    assert dataset["project_id"] == project_id
    refined = _xcom(run, "refine_schema")  # a JSON string; the metadata DB may hand it back decoded
    assert json.loads(dataset["visual_schema"]) == (json.loads(refined) if isinstance(refined, str) else refined)
    assert all(img["caption"] for img in dataset["images"])
    assert hook.get_model(model_id)["dataset_id"] == dataset_id
    clone = hook.get_dataset(_xcom(run, "clone_dataset"))
    assert (clone["name"], clone["status"]) == ("training-set v2", "draft")

    # XCom keys and the extra links Airflow computed from them when the tasks finished.
    model_url = _xcom(run, "create_model", "model_url")
    assert model_url.endswith(f"/tailored-generation/projects/{project_id}/models/{model_id}")
    assert _xcom(run, "create_model", "_link_BriaModelLink") == model_url
    assert _xcom(run, "create_project", "_link_BriaProjectLink") == _xcom(run, "create_project", "project_url")
    assert _xcom(run, "complete_dataset") == {"dataset_id": dataset_id, "status": "completed", "images_count": 5,
                                              "updated": ["status"]}
