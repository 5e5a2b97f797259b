"""The upload operator inside a real DAG run (``dag.test()``, metadata DB, templated arguments, XCom)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kit import object_counts as counts

DAG_FILE = Path(__file__).resolve().parents[2] / "test_dags" / "upload_images.py"


def _dag() -> Any:
    from airflow_provider_bria._compat import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    return bag.get_dag("upload_images_test")


def test_dag_uploads_then_reruns_as_a_no_op(airflow_db: Path, bria_conn: Any, make_dataset: Callable[..., int],
                                            image_dir: Path) -> None:
    ds = make_dataset()
    dag = _dag()
    run = dag.test(run_conf={"dataset_id": ds, "source": str(image_dir)})
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {"upload_images": "success", "report": "success"}
    assert counts(bria_conn)["images"] == 6

    rerun = dag.test(run_conf={"dataset_id": str(ds), "source": str(image_dir)})
    assert {ti.task_id: ti.state for ti in rerun.get_task_instances()} == states
    assert counts(bria_conn)["images"] == 6
    assert bria_conn.state()["duplicates"]["images"] == []


def test_dag_fails_the_task_on_bad_input(airflow_db: Path, bria_conn: Any, tmp_path: Path) -> None:
    dag = _dag()
    run = dag.test(run_conf={"dataset_id": "not-a-number", "source": str(tmp_path)})
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["upload_images"] == "failed"
    assert states["report"] == "upstream_failed"
    assert counts(bria_conn)["images"] == 0


def test_deferrable_bulk_dag(airflow_db: Path, bria_conn: Any, hook: Any, make_dataset: Callable[..., int],
                             image_dir: Path, tmp_path: Path) -> None:
    from upload_helpers import serve_directory

    from airflow_provider_bria._compat import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    dag = bag.get_dag("upload_bulk_deferrable_test")
    ds = make_dataset("advanced")
    staging = tmp_path / "staging"
    staging.mkdir()
    with serve_directory(staging) as url:
        run = dag.test(run_conf={"dataset_id": ds, "source": str(image_dir), "staging_path": f"file://{staging}",
                                 "staging_url": url})
    [ti] = run.get_task_instances()
    assert ti.state == "success"
    assert len(hook.list_images(ds)) == 6
    assert list(staging.iterdir()) == []
