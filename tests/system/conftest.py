"""Fixtures of the system tests: emulators, a real Airflow deployment, a REST client, the browser.

One deployment serves the whole session (starting Airflow costs ~40 s). Its environment points five Bria
connections at five emulator processes, each with its own distinctive api_token:

* ``bria_default`` -> the main emulator (training 15 s) used by the example DAGs;
* ``bria_kill`` -> a clean emulator for the SIGKILL tests;
* ``bria_fault_1`` .. ``bria_fault_3`` -> emulators started with ``--fault-rate 0.2 --seed N``.

Chromium and chromedriver are installed from Debian's packages by ``install_browser.sh`` (only when missing),
started in the background at session start so the install overlaps Airflow's start-up.

Artefacts (screenshots, component logs, the emulators' final state) go to ``tests/artifacts/system/``.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kit.stacks import emulator_fleet, fresh_artifacts
from system_pipeline import PipelineResult, run_example_pipeline
from system_rest import AirflowClient
from system_stack import ADMIN_USER, FAULT_SEEDS, REPO, AirflowStack, conn_json

from airflow_provider_bria.emulator.process import EmulatorProcess

ARTIFACTS = REPO / "tests" / "artifacts" / "system"
INSTALL_SCRIPT = Path(__file__).resolve().parent / "install_browser.sh"
MAIN_TRAINING_SECONDS = 15
KILL_TRAINING_SECONDS = 12
EXAMPLE_DAGS = ("bria_dataset_preparation", "bria_training", "bria_scheduled_generation", "bria_retraining")
SYSTEM_DAGS = ("system_fault_pipeline", "system_fault_pipeline_bare", "system_kill_pipeline")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """``tests/artifacts/system`` (git-ignored), emptied at session start."""
    return fresh_artifacts(ARTIFACTS)


@pytest.fixture(scope="session", autouse=True)
def _browser_install(artifacts: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start installing Chromium (if missing) at once, in the background; the ``chromium`` fixture waits."""
    log = open(artifacts / "install_browser.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(["bash", str(INSTALL_SCRIPT)], stdout=log, stderr=subprocess.STDOUT)
    yield proc
    if proc.poll() is None:
        proc.wait(timeout=600)
    log.close()


@pytest.fixture(scope="session")
def chromium(_browser_install: subprocess.Popen[bytes], artifacts: Path) -> dict[str, str]:
    """Paths of the Debian Chromium and chromedriver, after the install script finished."""
    code = _browser_install.wait(timeout=600)
    log = (artifacts / "install_browser.log").read_text(errors="replace")
    assert code == 0, f"install_browser.sh failed ({code}):\n{log[-3000:]}"
    return {"binary": "/usr/bin/chromium", "driver": "/usr/bin/chromedriver"}


@pytest.fixture(scope="session")
def tokens() -> dict[str, str]:
    """One distinctive api_token per connection (searched for by the secret-hygiene test)."""
    names = ["bria_default", "bria_kill", *(f"bria_fault_{s}" for s in FAULT_SEEDS)]
    return {name: f"sys-secret-{name.replace('_', '-')}-{secrets.token_hex(12)}" for name in names}


@pytest.fixture(scope="session")
def emulators(tokens: dict[str, str], artifacts: Path) -> Iterator[dict[str, EmulatorProcess]]:
    """The five emulator processes, by connection id; their final state is saved as an artefact."""
    flags: dict[str, dict[str, Any]] = {
        "bria_default": {"training_seconds": MAIN_TRAINING_SECONDS, "job_seconds": 0.5},
        "bria_kill": {"training_seconds": KILL_TRAINING_SECONDS, "job_seconds": 0.3},
        **{f"bria_fault_{seed}": {"training_seconds": 3, "job_seconds": 0.3, "fault_rate": 0.2, "seed": seed}
           for seed in FAULT_SEEDS},
    }
    with emulator_fleet({name: {"api_token": tokens[name], **f} for name, f in flags.items()}, artifacts) as procs:
        yield procs


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory, emulators: dict[str, EmulatorProcess], artifacts: Path
) -> Iterator[AirflowStack]:
    """Scheduler, dag-processor, triggerer and API server on 127.0.0.1 (LocalExecutor, SQLite)."""
    home = tmp_path_factory.mktemp("airflow-system")
    connections = {name: conn_json(proc.url, proc.token) for name, proc in emulators.items()}
    stack = AirflowStack(
        home,
        connections=connections,
        extra_env={
            "AIRFLOW_VAR_BRIA_EXAMPLE_POLL_INTERVAL": "1",
            "BRIA_EXAMPLES_DATA": str(home / "examples-data"),
        },
    )
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        logs = artifacts / "component-logs"
        shutil.copytree(stack.log_dir, logs, dirs_exist_ok=True)


@pytest.fixture(scope="session")
def client(stack: AirflowStack) -> AirflowClient:
    """REST client logged in as admin; every example and system DAG is parsed without import errors."""
    api = AirflowClient(stack.base_url, ADMIN_USER, stack.password)
    api.wait_for_dags([*EXAMPLE_DAGS, *SYSTEM_DAGS], timeout=180)
    errors = api.import_errors()
    assert not errors, f"DAG import errors: {errors}"
    return api


@pytest.fixture(scope="session")
def pipeline(
    client: AirflowClient, stack: AirflowStack, emulators: dict[str, EmulatorProcess]
) -> PipelineResult:
    """The example DAGs run by the scheduler: preparation (triggered) -> training -> generation (assets)."""
    return run_example_pipeline(client, stack, emulators["bria_default"])
