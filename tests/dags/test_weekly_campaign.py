"""The composed weekly-campaign DAG (issue 15, "done when"): it passes twice in a row against the emulator, and
the second run of the same week creates no object and pays for no job."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from test_rerun_promise import counts

TEST_DAGS = Path(__file__).resolve().parents[1] / "test_dags"
SCHEMA = {"style_medium": "illustration", "palette": "pastel"}


def _png(i: int) -> bytes:
    import io

    from PIL import Image

    img = Image.new("RGB", (1024, 1024), ((i * 53) % 256, (i * 97 + 40) % 256, 90))
    img.putpixel((i, i), (255, 7, 9))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def last_week(bria_conn: Any) -> dict[str, Any]:
    """What earlier weeks left: the project and a completed dataset (made through the documented hook)."""
    from airflow_provider_bria.hooks.bria import BriaHook

    hook = BriaHook()
    project = hook.create_project("Weekly campaign", "illustration", "stylized_scene", training_version="fibo")
    dataset = hook.create_dataset(project["id"], "week-20261123", training_version="fibo")
    for i in range(5):
        hook.upload_image(dataset["id"], file=_png(i), image_name=f"old-{i}.png")
    hook.update_dataset(dataset["id"], visual_schema=SCHEMA)
    hook.update_dataset(dataset["id"], status="completed")
    return {"project": project, "dataset": dataset}


# Two full DAG runs: minutes on a loaded 2-core machine; a hang still ends (pyproject timeout_method).
@pytest.mark.timeout(900)
def test_weekly_campaign_runs_twice_and_pays_once(
    last_week: dict[str, Any], bria_conn: Any, run_dag: Any, tmp_path: Path
) -> None:
    from airflow_provider_bria._compat import DagBag

    bag = DagBag(dag_folder=str(TEST_DAGS / "weekly_campaign.py"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["weekly_campaign"]
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        (photos / f"new-{i}.png").write_bytes(_png(50 + i))
    conf = {"photos": str(photos), "output": (tmp_path / "out").as_uri(), "images_per_prompt": 4,
            "poll_interval": 0.5}
    week = datetime(2026, 11, 30, 6, tzinfo=timezone.utc)
    before = counts(bria_conn)

    first = run_dag(dag, conf, logical_date=week)
    assert first.state == "success", first.tasks
    assert set(first.tasks.values()) == {"success"}
    after_first = counts(bria_conn)
    grown = {k: after_first[k] - before[k] for k in after_first}
    # One clone (5 old + 3 new images), one model, one training, 2 x 4 images + 1 structured prompt + 1 video.
    assert grown == {"projects": 0, "datasets": 1, "images": 8, "models": 1, "trainings_started": 1,
                     "generation_jobs": 10}
    assert len(first.xcom("generate_images")) == 8
    assert first.xcom("image_to_video")["uri"].endswith(".mp4")

    second = run_dag(dag, conf, logical_date=week)
    assert second.state == "success", second.tasks
    assert set(second.tasks.values()) == {"success"}
    assert counts(bria_conn) == after_first, "the re-run of the week created or paid for something"
    assert second.xcom("clone_dataset") == first.xcom("clone_dataset")
    assert second.xcom("create_model") == first.xcom("create_model")
    assert sorted(r["uri"] for r in second.xcom("generate_images")) == sorted(
        r["uri"] for r in first.xcom("generate_images"))
    assert bria_conn.state()["duplicates"] == {"projects": [], "datasets": [], "models": [], "images": []}
