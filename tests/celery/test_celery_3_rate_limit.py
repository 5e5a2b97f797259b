"""One account-wide rate limit over both workers, as the emulator counts it, with injected 429s absorbed.

``celery_rate_limit`` runs 4 mapped generation tasks (4 images each, 16 submissions) at once on the two workers,
each task allowed the whole plan (``requests_per_minute = 10``) -- per-task limits alone would send 16 in about 20
seconds. The ``bria_rate`` connection sets ``account_requests_per_minute = 10`` with ``rate_limit_conn_id`` (Redis):
the emulator's request log must never show more than 10 accepted submissions in any closed 60-second window,
and 4 injected 429s must be retried without failing any task.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import pytest
from conftest import RATE_ACCOUNT_LIMIT, REPO
from system_rest import AirflowClient

from airflow_provider_bria.contract import Paths
from airflow_provider_bria.devstack.celery_stack import DATA_BUCKET, CeleryStack

sys.path.insert(0, str(REPO / "tests" / "emulator"))
from emulator_helpers import Api, make_image  # noqa: E402

pytestmark = pytest.mark.timeout(900)

DAG = "celery_rate_limit"
TASKS, PER_TASK = 4, 4
WINDOW = 60.0
#: Submissions answered 429 by the emulator before its handler runs (nth matching request, times).
INJECTED_429 = [(2, 1), (6, 2), (12, 1)]


def max_in_window(times: list[float], window: float) -> int:
    """Most timestamps inside any closed window ``[t, t + window]`` (a window starting at each timestamp).

    :param times: timestamps.
    :param window: window length.
    """
    ordered = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(ordered):
        while t - ordered[start] > window:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_max_in_window_counts_closed_windows() -> None:
    assert max_in_window([0, 60, 120], 60) == 2
    assert max_in_window([0, 59.9, 60.0, 60.1], 60) == 3
    assert max_in_window([], 60) == 0


@pytest.fixture(scope="module")
def rate_run(client: AirflowClient, stack: CeleryStack, emulators: dict[str, Any]) -> dict[str, Any]:
    """Train a model directly on the emulator, inject 429s, run the fan-out; return the observations."""
    emulator = emulators["bria_rate"]
    api = Api(emulator.url, emulator.token)
    model = api.trained_model([make_image(c) for c in ("red", "blue", "green", "purple", "orange")])
    emulator.set_faults(0.0, rules=[
        {"method": "POST", "path_regex": f"^{Paths.V2_IMAGE}$", "phase": "before", "kind": 429, "nth": nth,
         "times": times}
        for nth, times in INJECTED_429
    ])
    prefix = f"rate-{int(time.time())}"
    client.set_paused(DAG, False)
    run_id = client.trigger(DAG, {"model_id": model["id"], "output_path": stack.s3_uri(prefix)})["dag_run_id"]
    run = client.wait_for_run(DAG, run_id, timeout=400, on_poll=stack.check_alive)
    return {
        "run": run,
        "tis": client.task_instances(DAG, run_id),
        "submissions": [r for r in emulator.requests(Paths.V2_IMAGE) if r["method"] == "POST"],
        "faults": emulator.faults(),
        "state": emulator.state(),
        "keys": stack.s3.keys(DATA_BUCKET, f"{prefix}/"),
    }


def test_all_tasks_succeeded_first_try_on_both_workers(rate_run: dict[str, Any]) -> None:
    tis = rate_run["tis"]
    assert rate_run["run"]["state"] == "success", [(t["map_index"], t["state"]) for t in tis]
    assert sorted((t["map_index"], t["state"], t["try_number"]) for t in tis) == [
        (i, "success", 1) for i in range(TASKS)
    ]
    assert {t["hostname"] for t in tis} == {"worker-1", "worker-2"}


def test_injected_429s_were_absorbed(rate_run: dict[str, Any]) -> None:
    refused = [r for r in rate_run["submissions"] if r["status"] == 429]
    assert len(refused) == sum(times for _, times in INJECTED_429)
    assert all(r["fault"] == "before-429" for r in refused)
    accepted = [r for r in rate_run["submissions"] if r["status"] != 429]
    assert len(accepted) == TASKS * PER_TASK
    assert {r["status"] for r in accepted} == {202}
    assert rate_run["state"]["counts"]["generation_jobs"] == TASKS * PER_TASK  # each image paid once


def test_account_limit_held_in_every_60_second_window(rate_run: dict[str, Any]) -> None:
    accepted = [r["t"] for r in rate_run["submissions"] if r["status"] != 429]
    # The plan's limit holds in every window, across both workers and all four tasks...
    assert max_in_window(accepted, WINDOW) <= RATE_ACCOUNT_LIMIT, sorted(a - min(accepted) for a in accepted)
    # ...and it was the binding constraint: the limit was reached, the rest had to wait for the window to move.
    assert max_in_window(accepted, WINDOW) == RATE_ACCOUNT_LIMIT
    assert max(accepted) - min(accepted) > WINDOW


def test_every_output_is_in_s3_once(rate_run: dict[str, Any]) -> None:
    pngs = [k for k in rate_run["keys"] if k.endswith(".png")]
    assert len(pngs) == len(set(pngs)) == TASKS * PER_TASK
    assert {k.split("/")[1] for k in pngs} == {str(i) for i in range(TASKS)}  # one folder per mapped task
