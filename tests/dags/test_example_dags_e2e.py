"""Every example DAG run end to end with ``dag.test()`` against the emulator, over real HTTP.

The four DAGs run in the order of the demo; each test checks the remote state through the emulator's admin
endpoint and the hook, the files on disk, and the asset events in the metadata database.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from airflow_provider_bria.hooks.bria import BriaHook

#: Whole example DAGs end to end: minutes on a loaded 2-core machine (they hit 300 s on Airflow 3.0 under load).
pytestmark = pytest.mark.timeout(900)

MODEL_ASSET_URI = "bria://models/bria-demo/demo-model"
DATASET_ASSET_URI = "bria://datasets/bria-demo/demo-dataset"
PROMPTS = ["a sunrise over rolling hills", "a lighthouse at dusk"]


def _local(uri: str) -> Path:
    assert uri.startswith("file://"), uri
    return Path(uri[len("file://") :])


def _as_json(value: Any) -> Any:
    """XCom strings holding JSON come back decoded from the metadata database; accept both."""
    return json.loads(value) if isinstance(value, str) else value


def _posts(emulator: Any) -> list[dict[str, Any]]:
    return [r for r in emulator.requests(path_prefix="/v2/image") if r["method"] == "POST"]


def _prepare(run_dag: Any, dags: dict[str, Any], data: Path, **conf: Any) -> Any:
    conf = {"image_source": str(data / "images"), "num_demo_images": 6, "human_review": False, **conf}
    return run_dag(dags["bria_dataset_preparation"], conf)


@pytest.fixture
def pipeline(
    bria_conn: Any, examples_env: Path, example_dags: dict[str, Any], run_dag: Any, latest_asset_event: Any
) -> dict[str, Any]:
    """Dataset preparation then training, as the demo runs them; returns the runs and the emulator."""
    prep = _prepare(run_dag, example_dags, examples_env)
    assert prep.state == "success", prep.tasks
    train = run_dag(example_dags["bria_training"], {})
    assert train.state == "success", train.tasks
    return {"emulator": bria_conn, "data": examples_env, "prep": prep, "train": train}


def test_dataset_preparation_then_training(pipeline: dict[str, Any], latest_asset_event: Any) -> None:
    emulator, prep, train = pipeline["emulator"], pipeline["prep"], pipeline["train"]
    # Preparation: refine skipped (no instruction), the human review skipped (human_review off), all else ran.
    skipped = {t for t, s in prep.tasks.items() if s == "skipped"}
    review = {f"review_schema_{n}" for n in (1, 2, 3)} | {
        f"{step}_{n}" for step in ("refine_schema", "apply_schema", "regenerate_captions") for n in (1, 2)
    }
    assert skipped == {"refine_visual_schema", "apply_refined_schema", *review}
    assert {s for t, s in prep.tasks.items() if t not in skipped} == {"success"}
    published = prep.xcom("publish_dataset")
    hook = BriaHook()
    dataset = hook.get_dataset(published["dataset_id"])
    assert dataset["status"] == "completed"
    assert dataset["visual_schema"]  # applied from the sample images before the upload
    images = hook.list_images(published["dataset_id"])
    assert len(images) == 6
    assert all(img.get("caption") for img in images)
    event = latest_asset_event(DATASET_ASSET_URI)
    assert event.extra["dataset_id"] == published["dataset_id"]
    assert event.extra["project_id"] == published["project_id"]
    # Demo images were drawn into the empty source folder.
    assert len(list((pipeline["data"] / "images").glob("*.png"))) == 6

    # Training: the model of that dataset, trained to Completed, published on the model asset.
    assert set(train.tasks.values()) == {"success"}
    result = train.xcom("train_model")
    assert result["status"] == "Completed"
    model = hook.get_model(result["model_id"])
    assert model["dataset_id"] == published["dataset_id"]
    assert model["name"] == "demo-model"
    event = latest_asset_event(MODEL_ASSET_URI)
    assert event.extra["model_id"] == result["model_id"]
    assert event.extra["dataset_id"] == published["dataset_id"]

    counts = emulator.state()["counts"]
    assert (counts["projects"], counts["datasets"], counts["images"], counts["models"]) == (1, 1, 6, 1)
    assert counts["trainings_started"] == 1


def test_generation_then_retraining(
    pipeline: dict[str, Any], example_dags: dict[str, Any], run_dag: Any, latest_asset_event: Any
) -> None:
    emulator, data = pipeline["emulator"], pipeline["data"]
    hook = BriaHook()
    first_model = pipeline["train"].xcom("train_model")["model_id"]
    out = data / "out"
    conf = {"prompts": PROMPTS, "images_per_prompt": 2, "batch_size": 1, "seed": 11, "output_folder": out.as_uri()}

    gen = run_dag(example_dags["bria_scheduled_generation"], conf)
    assert gen.state == "success", gen.tasks
    assert gen.tasks["generate_images[0]"] == gen.tasks["generate_images[1]"] == "success"  # one batch per prompt
    plan = gen.xcom("plan")
    assert [b["model_id"] for b in plan] == [first_model, first_model]  # from the model asset event
    assert [b["prompt"] for b in plan] == [[p] for p in PROMPTS]
    uris = gen.xcom("report")
    assert len(uris) == 4
    for uri in uris:
        img = Image.open(io.BytesIO(_local(uri).read_bytes()))
        assert img.format == "PNG"
        assert img.size[0] == img.size[1]  # 1:1
    submissions = len(_posts(emulator))
    assert submissions == 4

    # Re-running generates nothing new: same files, no new submission.
    again = run_dag(example_dags["bria_scheduled_generation"], conf)
    assert again.state == "success", again.tasks
    assert sorted(again.xcom("report")) == sorted(uris)
    assert len(_posts(emulator)) == submissions

    # Retraining: clone the current model's dataset, add 3 new images, train a second model, publish it.
    source_dataset = hook.get_model(first_model)["dataset_id"]
    retrain = run_dag(
        example_dags["bria_retraining"],
        {"new_images_source": str(data / "new"), "num_demo_images": 3, "demo_seed": 42},
    )
    assert retrain.state == "success", retrain.tasks
    assert set(retrain.tasks.values()) == {"success"}
    result = retrain.xcom("train_model")
    assert result["status"] == "Completed"
    assert result["model_id"] != first_model
    new_model = hook.get_model(result["model_id"])
    clone = hook.get_dataset(new_model["dataset_id"])
    assert clone["id"] != source_dataset
    assert clone["status"] == "completed"
    assert clone["name"].startswith("demo-dataset-")
    assert len(hook.list_images(clone["id"])) == 6 + 3
    assert len(hook.list_images(source_dataset)) == 6  # the original is untouched
    event = latest_asset_event(MODEL_ASSET_URI)
    assert event.extra["model_id"] == result["model_id"]

    state = emulator.state()
    assert state["counts"]["models"] == 2
    assert state["counts"]["datasets"] == 2
    assert state["counts"]["trainings_started"] == 2
    assert state["duplicates"]["images"] == []
    assert state["duplicates"]["models"] == []

    # The next generation run follows the newest model.
    gen2 = run_dag(example_dags["bria_scheduled_generation"], {**conf, "output_folder": (data / "out2").as_uri()})
    assert gen2.state == "success", gen2.tasks
    assert {b["model_id"] for b in gen2.xcom("plan")} == {result["model_id"]}


def test_rerunning_preparation_changes_nothing(
    bria_conn: Any, examples_env: Path, example_dags: dict[str, Any], run_dag: Any
) -> None:
    first = _prepare(run_dag, example_dags, examples_env)
    assert first.state == "success", first.tasks
    before = bria_conn.state()["counts"]
    second = _prepare(run_dag, example_dags, examples_env)
    assert second.state == "success", second.tasks
    assert second.tasks["route"] == "success"
    assert second.tasks["prepare_images"] == "skipped"  # the dataset is already completed
    assert second.tasks["publish_dataset"] == "skipped"  # already the latest event: no retraining
    after = bria_conn.state()["counts"]
    for key in ("projects", "datasets", "images", "models"):
        assert after[key] == before[key], key
    assert second.xcom("create_dataset") == first.xcom("publish_dataset")["dataset_id"]  # reused


def test_preparation_with_refine_instruction(
    bria_conn: Any, examples_env: Path, example_dags: dict[str, Any], run_dag: Any
) -> None:
    run = _prepare(run_dag, example_dags, examples_env, refine_instruction="emphasise the pastel palette")
    assert run.state == "success", run.tasks
    assert run.tasks["refine_visual_schema"] == run.tasks["apply_refined_schema"] == "success"
    refined = _as_json(run.xcom("refine_visual_schema"))
    dataset = BriaHook().get_dataset(run.xcom("publish_dataset")["dataset_id"])
    assert json.loads(dataset["visual_schema"]) == refined
    assert refined != _as_json(run.xcom("generate_visual_schema"))


def test_retraining_with_nothing_new_is_skipped(
    bria_conn: Any, examples_env: Path, example_dags: dict[str, Any], run_dag: Any
) -> None:
    run = run_dag(
        example_dags["bria_retraining"],
        {"source_dataset_id": 12345, "new_images_source": str(examples_env / "empty"), "generate_demo_images": False},
    )
    assert run.state == "success", run.tasks
    assert run.tasks["plan"] == run.tasks["prepare_new_images"] == "success"
    assert {t for t, s in run.tasks.items() if s == "skipped"} == {
        "clone_dataset",
        "upload_new_images",
        "complete_dataset",
        "create_model",
        "train_model",
    }
    assert bria_conn.requests(path_prefix="/v1/") == []  # not a single API call


def test_retraining_with_only_known_images_trains_nothing(
    pipeline: dict[str, Any], example_dags: dict[str, Any], run_dag: Any
) -> None:
    """min_new_images (issue 15 item 6): the folder holds only images the source dataset already has, so the
    clone gains nothing; the upload task is skipped and nothing downstream runs, so no training is paid for."""
    emulator, data = pipeline["emulator"], pipeline["data"]
    before = emulator.state()["counts"]
    # source_dataset_id=None: dag.test(run_conf=...) leaves earlier runs' values on the shared DAG's Params.
    run = run_dag(example_dags["bria_retraining"], {"new_images_source": str(data / "images"),
                                                    "generate_demo_images": False, "source_dataset_id": None})
    assert run.state == "success", run.tasks
    assert run.tasks["clone_dataset"] == "success"
    assert {t for t, s in run.tasks.items() if s == "skipped"} == {
        "upload_new_images", "complete_dataset", "create_model", "train_model",
    }
    summary = run.xcom("upload_new_images", "upload_summary")
    assert summary["new_images"] == 0
    assert summary["already_present"] == 6
    after = emulator.state()["counts"]
    assert (after["models"], after["trainings_started"]) == (before["models"], before["trainings_started"])
