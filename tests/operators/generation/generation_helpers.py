"""Helpers of the generation tests (a uniquely named module: the test folders are not packages)."""

from __future__ import annotations

import io
from typing import Any

from kit import make_context as kit_context

MOCK_TOKEN = "gen-mock-token-5d1c"  # distinctive token of the requests-mock tests
MOCK_BASE = "https://bria.test"
CDN = "https://cdn.test"


def make_context(try_number: int = 1, **ids: Any) -> dict[str, Any]:
    """A minimal task context of task ``generate`` in DAG ``gen_dag`` (``ids`` override them)."""
    return kit_context(try_number, **{"dag_id": "gen_dag", "task_id": "generate", **ids})


def png_bytes(width: int = 64, height: int = 64, colour: tuple[int, int, int] = (200, 40, 90)) -> bytes:
    """A small PNG of the given size."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, format="PNG")
    return buf.getvalue()


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG, checking it decodes completely."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "PNG"
        img.load()
        return img.size


def train_model(hook: Any, emulator: Any, *, version: str = "fibo", complete: bool = True,
                real_training: bool = False, timeout: float = 60.0) -> int:
    """Create project, dataset (5 images), model on the emulator; return the model id.

    ``complete``: force the model to Completed through the emulator admin endpoint (fast), or with
    ``real_training`` start the training and wait for it like a user would.
    """
    import time

    ds_version = {"fibo": "fibo", "bria-2.3": "2.3", "bria-3.2": "3.2"}.get(version, version)
    project = hook.create_project("Gen Brand", "illustration", "stylized_scene",
                                  training_version="fibo" if version == "fibo" else ds_version)
    dataset = hook.create_dataset(project["id"], "gen-ds", training_version=ds_version)
    for i in range(5):
        hook.upload_image(dataset["id"], file=png_bytes(1024, 1024, (i * 40, 80, 120)), image_name=f"img-{i}.png")
    # a FIBO dataset needs a visual_schema before it can be completed (Bria's spec)
    schema = {"visual_schema": {"style_medium": "illustration"}} if ds_version == "fibo" else {}
    hook.update_dataset(dataset["id"], status="completed", **schema)
    model = hook.create_model(dataset["id"], "gen-model", training_version=version)
    if real_training:
        hook.start_training(model["id"])
        deadline = time.monotonic() + timeout
        while hook.get_model(model["id"])["status"] != "Completed":
            assert time.monotonic() < deadline, "training did not complete"
            time.sleep(0.2)
    elif complete:
        emulator.set_model_status(model["id"], "Completed")
    return int(model["id"])


def submissions(emulator: Any, prefix: str = "/v2/image") -> list[dict[str, Any]]:
    """POST requests the emulator received under ``prefix`` (generation submissions)."""
    return [r for r in emulator.requests(path_prefix=prefix) if r["method"] == "POST"]


class DagRunResult:
    """What one ``dag.test()`` produced: run state and task instance states (``task[map_index]`` when mapped)."""

    def __init__(self, dag_id: str, run_id: str, state: str, tasks: dict[str, str]) -> None:
        self.dag_id = dag_id
        self.run_id = run_id
        self.state = state
        self.tasks = tasks

    def xcom(self, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        """One XCom value of this run, from the metadata database."""
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            rows = session.scalars(XComModel.get_many(run_id=self.run_id, dag_ids=self.dag_id, task_ids=task_id,
                                                      key=key, map_indexes=map_index)).all()
            assert rows, f"no XCom {key!r} for {task_id}[{map_index}]"
            return XComModel.deserialize_value(rows[0])


def run_test_dag(dag_id: str, conf: dict[str, Any]) -> DagRunResult:
    """Parse ``tests/test_dags/<dag_id>.py`` and run it once with ``dag.test(run_conf=conf)``."""
    from pathlib import Path

    from airflow.utils.session import create_session

    from airflow_provider_bria._compat import DagBag

    path = Path(__file__).resolve().parents[2] / "test_dags" / f"{dag_id}.py"
    bag = DagBag(dag_folder=str(path))
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag(dag_id)
    dr = dag.test(run_conf=conf)
    tasks: dict[str, str] = {}
    with create_session() as session:
        for ti in dr.get_task_instances(session=session):
            key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
            tasks[key] = str(getattr(ti.state, "value", ti.state))
    return DagRunResult(dag_id, dr.run_id, str(getattr(dr.state, "value", dr.state)), tasks)
