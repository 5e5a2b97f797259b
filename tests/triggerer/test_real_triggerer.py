"""A training deferred to a real Airflow triggerer process, on whatever Airflow line runs the test.

``make test-compat`` runs it on the oldest supported line (Airflow 3.0): scheduler, dag-processor, triggerer and
API server (``tests/system/system_stack.py``) over SQLite, one emulator, one DAG whose only task starts a
training with ``deferrable=True``. It proves the parts ``dag.test()`` replaces on that line: the trigger is
serialized into the metadata DB, re-created and run by the triggerer (whose connection lookup is the
thread-based fallback on 3.0), and the task resumes on a worker with the event. Not in the default run (it
starts Airflow: about a minute); alone: ``.venv-compat/3.0/bin/python -m pytest tests/triggerer -o addopts=""``.
"""

from __future__ import annotations

import json
import secrets
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "system"))

from system_rest import AirflowClient  # noqa: E402
from system_stack import ADMIN_USER, AirflowStack, conn_json  # noqa: E402

from airflow_provider_bria.emulator.process import EmulatorProcess  # noqa: E402

DAG_ID = "compat_real_triggerer"
TRAINING_SECONDS = 8
DAG_FILE = textwrap.dedent(
    f'''
    """One deferrable training task: the real triggerer waits for it."""
    from datetime import datetime

    from airflow.sdk import DAG

    from airflow_provider_bria.operators.training import BriaStartTrainingOperator

    with DAG("{DAG_ID}", schedule=None, start_date=datetime(2025, 1, 1), catchup=False):
        BriaStartTrainingOperator(
            task_id="train",
            model_id="{{{{ dag_run.conf['model_id'] }}}}",
            deferrable=True,
            poll_interval=1,
            timeout=600,
        )
    '''
)

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    with EmulatorProcess(api_token=f"trg-{secrets.token_hex(8)}", training_seconds=TRAINING_SECONDS) as emu:
        yield emu


@pytest.fixture(scope="module")
def stack(emulator: EmulatorProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    dags = tmp_path_factory.mktemp("trigger-dags")
    (dags / "compat_real_triggerer.py").write_text(DAG_FILE)
    stack = AirflowStack(tmp_path_factory.mktemp("trigger-home"),
                         connections={"bria_default": conn_json(emulator.url, emulator.token)},
                         dag_folders={"compat": dags})
    try:
        yield stack.start()
    finally:
        stack.stop()


def _model(emulator: EmulatorProcess) -> int:
    """A model ready to train (project, completed dataset of five images) on the emulator."""
    import io
    import os

    from PIL import Image

    from airflow_provider_bria.hooks.bria import BriaHook

    os.environ["AIRFLOW_CONN_BRIA_TRIGGERER_SETUP"] = conn_json(emulator.url, emulator.token)
    hook = BriaHook("bria_triggerer_setup")
    project = hook.create_project("Triggerer", "illustration", "stylized_scene", training_version="fibo")
    dataset = hook.create_dataset(project["id"], "trg-ds", training_version="fibo")
    for i in range(5):
        buf = io.BytesIO()
        Image.new("RGB", (1024, 1024), (i * 40, 80, 120)).save(buf, format="PNG")
        hook.upload_image(dataset["id"], file=buf.getvalue(), image_name=f"img-{i}.png")
    # A FIBO dataset needs a visual schema before it can be completed (Bria's spec; the emulator enforces it).
    hook.update_dataset(dataset["id"], visual_schema={"style": "flat illustration", "palette": "teal"})
    hook.update_dataset(dataset["id"], status="completed")
    return int(hook.create_model(dataset["id"], "trg-model", training_version="fibo")["id"])


def test_training_defers_to_the_real_triggerer_and_resumes(stack: AirflowStack, emulator: EmulatorProcess) -> None:
    model_id = _model(emulator)
    client = AirflowClient(stack.base_url, ADMIN_USER, stack.password)
    client.wait_for_dags([DAG_ID], timeout=180)
    client.set_paused(DAG_ID, False)
    run = client.trigger(DAG_ID, {"model_id": model_id})
    seen: set[str] = set()

    def observe() -> None:
        stack.check_alive()
        seen.update(str(t["state"]) for t in client.task_instances(DAG_ID, run["dag_run_id"]))

    final = client.wait_for_run(DAG_ID, run["dag_run_id"], timeout=420, on_poll=observe)
    logs = client.log(DAG_ID, run["dag_run_id"], "train", 1)
    assert final["state"] == "success", f"{seen}\n{logs[-3000:]}\n{stack.log_tail('triggerer')}"
    assert "deferred" in seen  # the task left its worker slot while the training ran
    # The trigger's own lines reach the task's log (the triggers share one logger per class: the triggerer routes by
    # the trigger id in the task's context variables, on every supported line).
    assert f"Model {model_id} is InProgress (poll 1;" in logs, logs[-3000:]
    # Airflow 3.0's API refuses ?deserialize=true by default: read the stored (JSON) value as it is.
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances/train/xcomEntries/return_value"
    summary: Any = client.get(path)["value"]
    summary = json.loads(summary) if isinstance(summary, str) else summary
    assert summary["model_id"] == model_id
    assert summary["status"] == "Completed"
    polls = [r for r in emulator.requests(path_prefix=f"/v1/tailored-gen/models/{model_id}") if r["method"] == "GET"]
    assert len(polls) >= 2  # the trigger polled the model from the triggerer process
    starts = [r for r in emulator.requests(path_prefix="/v1/tailored-gen/models") if r["method"] == "POST"
              and r["path"].endswith("/start_training")]
    assert len(starts) == 1  # resumed with the event: never started twice
