"""Fixtures of the Celery deployment tests: one distributed Airflow for the session, three emulators, S3 data.

The ``stack`` fixture is :class:`~airflow_provider_bria.devstack.celery_stack.CeleryStack`: PostgreSQL (Debian
package, installed by ``apt-get`` when missing, a throw-away cluster run as ``nobody``), Redis (broker, and the
account-wide rate-limit store), moto (S3), the scheduler, dag-processor, triggerer, API server and two Celery
workers, each in its own folder. Three emulators, three Bria connections, each with its own api_token:

* ``bria_default`` -> the example pipeline (account limit 60/min, shared through Redis);
* ``bria_kill`` -> the worker-kill pipeline;
* ``bria_rate`` -> the rate-limit fan-out (account limit :data:`RATE_ACCOUNT_LIMIT`/min, shared through Redis).

The example DAGs read every input and write every output under ``$BRIA_EXAMPLES_DATA``, here
``s3://bria_s3@bria-data/examples`` (connection ``bria_s3`` -> moto). Component logs, the emulators' final state
and the S3 listing go to ``tests/artifacts/celery/``.
"""

from __future__ import annotations

import json
import secrets
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "system"))  # the REST client and polling helpers of the system tests

from kit import conn_json  # noqa: E402
from kit.stacks import emulator_fleet, fresh_artifacts  # noqa: E402
from system_rest import AirflowClient  # noqa: E402

from airflow_provider_bria.devstack.celery_stack import (  # noqa: E402
    ADMIN_USER,
    DATA_BUCKET,
    RATE_LIMIT_CONN_ID,
    CeleryStack,
)
from airflow_provider_bria.emulator.process import EmulatorProcess  # noqa: E402

ARTIFACTS = REPO / "tests" / "artifacts" / "celery"
EXAMPLE_DAGS = ("bria_dataset_preparation", "bria_training", "bria_scheduled_generation", "bria_retraining")
TEST_DAGS = ("celery_kill_pipeline", "celery_rate_limit")
#: The plan's limit of the ``bria_rate`` account (requests per minute, account-wide).
RATE_ACCOUNT_LIMIT = 10
EXAMPLES_PREFIX = "examples"


def bria_conn(emulator: EmulatorProcess, account_limit: int | None = None) -> str:
    """``AIRFLOW_CONN_*`` JSON of a Bria connection to ``emulator``, optionally with an account-wide limit.

    :param emulator: the emulator.
    :param account_limit: ``account_requests_per_minute`` shared through ``bria_rate_limit`` (Redis).
    """
    extra: dict[str, Any] = {}
    if account_limit is not None:
        extra = {"account_requests_per_minute": account_limit, "rate_limit_conn_id": RATE_LIMIT_CONN_ID}
    return conn_json(emulator.url, emulator.token, extra=extra)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """``tests/artifacts/celery`` (git-ignored), emptied at session start."""
    return fresh_artifacts(ARTIFACTS)


@pytest.fixture(scope="session")
def emulators(artifacts: Path) -> Iterator[dict[str, EmulatorProcess]]:
    """The three emulators by connection id; their final state is saved as an artefact."""
    settings = {"bria_default": (20, 0.5), "bria_kill": (6, 1.0), "bria_rate": (1, 0.3)}
    flags = {name: {"api_token": f"celery-secret-{name.replace('_', '-')}-{secrets.token_hex(10)}",
                    "training_seconds": training, "job_seconds": job}
             for name, (training, job) in settings.items()}
    with emulator_fleet(flags, artifacts) as procs:
        yield procs


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory, emulators: dict[str, EmulatorProcess], artifacts: Path
) -> Iterator[CeleryStack]:
    """The distributed deployment (started once; stopped by PID at the end)."""
    root = tmp_path_factory.mktemp("celery")
    connections = {
        "bria_default": bria_conn(emulators["bria_default"], 60),
        "bria_kill": bria_conn(emulators["bria_kill"]),
        "bria_rate": bria_conn(emulators["bria_rate"], RATE_ACCOUNT_LIMIT),
    }
    stack = CeleryStack(
        root,
        connections=connections,
        dag_folders={"examples": REPO / "dags", "celery": HERE / "dags"},
        extra_env={
            "AIRFLOW_VAR_BRIA_EXAMPLE_POLL_INTERVAL": "1",
            "BRIA_EXAMPLES_DATA": CeleryStack.s3_uri(EXAMPLES_PREFIX),
        },
    )
    try:
        stack.start()
        yield stack
    finally:
        try:
            if stack.s3.child is not None and stack.s3.child.alive():
                (artifacts / "s3-keys.json").write_text(json.dumps(stack.s3.keys(DATA_BUCKET), indent=1))
        finally:
            stack.stop()
            shutil.copytree(stack.log_dir, artifacts / "component-logs", dirs_exist_ok=True)


@pytest.fixture(scope="session")
def client(stack: CeleryStack) -> AirflowClient:
    """REST client logged in as admin; every example and test DAG is parsed without import errors."""
    api = AirflowClient(stack.base_url, ADMIN_USER, stack.password)
    api.wait_for_dags([*EXAMPLE_DAGS, *TEST_DAGS], timeout=180)
    errors = api.import_errors()
    assert not errors, f"DAG import errors: {errors}"
    return api


def upload_demo_images(stack: CeleryStack, prefix: str, count: int, *, seed: int) -> list[str]:
    """Put ``count`` demo PNGs into ``s3://bria-data/<prefix>/`` (as a user's ingestion would); return the keys.

    :param stack: the deployment.
    :param prefix: key prefix (folder).
    :param count: number of images.
    :param seed: demo image series.
    """
    from airflow_provider_bria.demo_images import demo_image_png

    s3 = stack.s3.client()
    keys = []
    for index in range(count):
        key = f"{prefix.strip('/')}/demo-{seed}-{index:03d}.png"
        s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=demo_image_png(index, seed=seed, size=1024))
        keys.append(key)
    return keys
