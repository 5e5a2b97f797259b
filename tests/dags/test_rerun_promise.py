"""The re-run promise (issue 15 item 4): every example DAG, re-run (its run cleared and run again, as "Clear" in
the UI does), creates no remote object and pays for no job.

Each DAG runs once, then the same logical run runs again; the emulator's admin counts (projects, datasets,
images, models, trainings started, generation jobs) must not move on the second run, and the second run must
succeed (a re-run never fails on what the first run left behind).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

#: What a re-run must not change: remote objects and paid jobs.
COUNTED = ("projects", "datasets", "images", "models", "trainings_started", "generation_jobs")


def counts(emulator: Any) -> dict[str, int]:
    """The counts of remote objects and paid jobs."""
    state = emulator.state()["counts"]
    return {key: state[key] for key in COUNTED}


def run_twice(run_dag: Any, dag: Any, conf: dict[str, Any], emulator: Any, when: datetime) -> tuple[Any, Any]:
    """Run the logical run ``when`` of ``dag``, then re-run it; assert the re-run added nothing."""
    first = run_dag(dag, conf, logical_date=when)
    assert first.state == "success", (dag.dag_id, first.tasks)
    before = counts(emulator)
    second = run_dag(dag, conf, logical_date=when)
    assert second.state == "success", (dag.dag_id, second.tasks)
    assert counts(emulator) == before, f"{dag.dag_id}: the re-run created or paid for something"
    assert emulator.state()["duplicates"] == {"projects": [], "datasets": [], "models": [], "images": []}
    return first, second


# Eight full DAG runs: minutes on a loaded 2-core machine; a hang still ends (pyproject timeout_method).
@pytest.mark.timeout(900)
@pytest.mark.parametrize("order", ["examples in demo order"])
def test_every_example_dag_rerun_creates_and_pays_nothing(
    order: str, bria_conn: Any, examples_env: Path, example_dags: dict[str, Any], run_dag: Any
) -> None:
    data = examples_env
    runs = {}
    day = datetime(2026, 11, 30, 3, tzinfo=timezone.utc)
    runs["prep"] = run_twice(run_dag, example_dags["bria_dataset_preparation"],
                             {"image_source": str(data / "images"), "num_demo_images": 6,
                              # No human at hand: the review is off (its rounds are tested in test_dataset_review).
                              "human_review": False}, bria_conn, day)
    runs["train"] = run_twice(run_dag, example_dags["bria_training"], {}, bria_conn, day)
    assert counts(bria_conn)["trainings_started"] == 1
    gen_conf = {"prompts": ["a lighthouse at dusk"], "images_per_prompt": 2, "batch_size": 1, "seed": 3,
                "output_folder": (data / "out").as_uri()}
    runs["gen"] = run_twice(run_dag, example_dags["bria_scheduled_generation"], gen_conf, bria_conn, day)
    assert counts(bria_conn)["generation_jobs"] == 2
    retrain_conf = {"new_images_source": str(data / "new"), "num_demo_images": 3, "demo_seed": 42,
                    "source_dataset_id": None, "generate_demo_images": True}
    runs["retrain"] = run_twice(run_dag, example_dags["bria_retraining"], retrain_conf, bria_conn, day)
    after = counts(bria_conn)
    assert (after["datasets"], after["models"], after["trainings_started"]) == (2, 2, 2)
    # The re-run of retraining built on the same model as the first run (not on the model it published).
    first, second = runs["retrain"]
    assert first.xcom("plan", "source_dataset_id") == second.xcom("plan", "source_dataset_id")
