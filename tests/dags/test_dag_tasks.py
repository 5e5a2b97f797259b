"""The example DAGs' own ``@task`` functions, called directly with a minimal context.

They decide which dataset/model a run uses (Param, triggering asset event, latest asset event), name the
objects of a run deterministically, and review captions; those rules are checked here case by case.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_bria._compat import multiple_outputs
from airflow_provider_bria.demo_images import demo_image_png
from airflow_provider_bria.exceptions import BriaInputError

MODEL_URI = "bria://models/bria-demo/demo-model"
DATASET_URI = "bria://datasets/bria-demo/demo-dataset"
NEW_IMAGES_URI = "bria://new-images/bria-demo/demo-dataset"
RUN_AFTER = datetime(2026, 3, 2, 3, 4, 5, tzinfo=timezone.utc)


def event(uri: str, minute: int = 0, **extra: Any) -> SimpleNamespace:
    """An asset event as the task context exposes it."""
    return SimpleNamespace(
        extra=extra, asset=SimpleNamespace(uri=uri), timestamp=datetime(2026, 3, 1, 12, minute, tzinfo=timezone.utc)
    )


class _Events(list):
    """Stands for ``inlet_events[asset]``: a sequence with ``ascending``/``limit``."""

    def ascending(self, ascending: bool = True) -> _Events:
        return _Events(sorted(self, key=lambda e: e.timestamp, reverse=not ascending))

    def limit(self, n: int) -> _Events:
        return _Events(self[:n])


class _Inlets:
    def __init__(self, events: list[SimpleNamespace]) -> None:
        self.events = events

    def __getitem__(self, asset: Any) -> _Events:
        return _Events(e for e in self.events if e.asset.uri == asset.uri)


class _ByUri(dict):  # type: ignore[type-arg]
    """A mapping keyed by asset, stored by URI: assets are hashable only from Airflow 3.2 (Airflow's own context
    accessors key by the asset's unique key on every line)."""

    def __init__(self, default: Any = None) -> None:
        super().__init__()
        self.default = default

    def __getitem__(self, asset: Any) -> Any:
        if asset.uri not in self.keys() and self.default is not None:
            super().__setitem__(asset.uri, self.default())
        return super().__getitem__(asset.uri)

    def get(self, asset: Any, default: Any = None) -> Any:
        return super().get(asset.uri, default)

    def setdefault(self, asset: Any, default: Any = None) -> Any:
        return super().setdefault(asset.uri, default)


def context(
    dag: Any, *, triggering: list[SimpleNamespace] = (), inlets: list[SimpleNamespace] = (), **params: Any
) -> dict[str, Any]:
    """A minimal context: Params (defaults + overrides), triggering/inlet asset events, the run."""
    from airflow.sdk import Asset

    trig = _ByUri()
    for ev in triggering:
        trig.setdefault(Asset(uri=ev.asset.uri, name=ev.asset.uri), []).append(ev)
    return {
        "params": {**dag.params.validate(), **params},
        "triggering_asset_events": trig,
        "inlet_events": _Inlets(list(inlets)),
        "dag_run": SimpleNamespace(run_after=RUN_AFTER),
    }


def call(dag: Any, task_id: str, *args: Any, **ctx: Any) -> Any:
    return dag.get_task(task_id).python_callable(*args, **ctx)


# ------------------------------------------------------------------ scheduled generation: plan


@pytest.fixture
def gen(example_dags: dict[str, Any], examples_env: Path) -> Any:
    return example_dags["bria_scheduled_generation"]


def test_generation_model_from_param_first(gen: Any) -> None:
    ctx = context(gen, model_id=7, triggering=[event(MODEL_URI, model_id=8)], inlets=[event(MODEL_URI, model_id=9)])
    assert {b["model_id"] for b in call(gen, "plan", **ctx)} == {7}


def test_generation_model_from_triggering_event_before_latest(gen: Any) -> None:
    ctx = context(
        gen,
        triggering=[event(MODEL_URI, 1, model_id=8), event(MODEL_URI, 5, model_id=12)],
        inlets=[event(MODEL_URI, 9, model_id=9)],
    )
    assert {b["model_id"] for b in call(gen, "plan", **ctx)} == {12}  # the newest triggering event


def test_generation_model_from_latest_event_on_manual_runs(gen: Any) -> None:
    ctx = context(
        gen,
        inlets=[event(MODEL_URI, 1, model_id=3), event(MODEL_URI, 30, model_id=4), event(MODEL_URI, 10, model_id=5)],
    )
    assert {b["model_id"] for b in call(gen, "plan", **ctx)} == {4}


def test_generation_without_model_fails_before_any_call(gen: Any) -> None:
    with pytest.raises(BriaInputError, match="No model to generate with"):
        call(gen, "plan", **context(gen))


def test_generation_defaults_seed_output_and_batches(gen: Any, examples_env: Path) -> None:
    prompts = [f"prompt {i}" for i in range(25)]
    batches = call(gen, "plan", **context(gen, model_id=5, prompts=prompts, requests_per_minute=60))
    assert [len(b["prompt"]) for b in batches] == [10, 10, 5]
    assert sum((b["prompt"] for b in batches), []) == prompts
    for b in batches:
        assert b["seed"] == 20260302  # the run date: fresh images each day, the same ones on a retry
        assert b["output_path"] == f"file://{examples_env}/outputs/model-5/2026-03-02"
        assert b["requests_per_minute"] == 30  # 2 batches at a time share the plan's 60/min
        assert b["num_images_per_prompt"] == 2
        assert b["aspect_ratio"] == "1:1"


def test_generation_prompts_file_replaces_prompts(gen: Any, tmp_path: Path) -> None:
    path = tmp_path / "prompts.txt"
    path.write_text("# daily prompts\nfirst prompt\n\nsecond prompt\n")
    batches = call(
        gen, "plan", **context(gen, model_id=5, prompts_file=str(path), seed=3, output_folder="memory://out/x")
    )
    assert batches == [
        {
            "model_id": 5,
            "prompt": ["first prompt", "second prompt"],
            "num_images_per_prompt": 2,
            "aspect_ratio": "1:1",
            "seed": 3,
            "output_path": "memory://out/x",
            "requests_per_minute": 60.0,
            "max_concurrency": 4,
        }
    ]


def test_generation_generates_each_prompt_once(gen: Any) -> None:
    prompts = ["a cat", " b dog", "a cat", "", "c bird ", "b dog", "d fish", "a cat  "]
    batches = call(gen, "plan", **context(gen, model_id=5, prompts=prompts, batch_size=2))
    assert [b["prompt"] for b in batches] == [["a cat", "b dog"], ["c bird", "d fish"]]


def test_generation_prompts_file_duplicates_are_dropped(gen: Any, tmp_path: Path) -> None:
    path = tmp_path / "prompts.json"
    path.write_text(json.dumps(["one", "two", "one", "three", "two"]))
    batches = call(gen, "plan", **context(gen, model_id=5, prompts_file=str(path), batch_size=2))
    assert [b["prompt"] for b in batches] == [["one", "two"], ["three"]]


def test_generation_only_blank_prompts_fail_before_any_call(gen: Any) -> None:
    with pytest.raises(BriaInputError, match="No prompts"):
        call(gen, "plan", **context(gen, model_id=5, prompts=[" ", ""]))


# ------------------------------------------------------------------ training: resolve_dataset


@pytest.fixture
def training(example_dags: dict[str, Any], examples_env: Path) -> Any:
    return example_dags["bria_training"]


def test_training_without_dataset_fails_before_any_call(training: Any) -> None:
    with pytest.raises(BriaInputError, match="No dataset to train"):
        call(training, "resolve_dataset", **context(training))


def test_training_refuses_a_draft_dataset(training: Any, bria_conn: Any) -> None:
    from airflow_provider_bria.hooks.bria import BriaHook

    hook = BriaHook()
    project = hook.create_project("p-draft", "illustration", "stylized_scene")
    dataset = hook.create_dataset(project["id"], "d")
    ctx = context(training, triggering=[event(DATASET_URI, dataset_id=dataset["id"])])
    with pytest.raises(BriaInputError, match="only a completed dataset"):
        call(training, "resolve_dataset", **ctx)
    assert bria_conn.state()["counts"]["models"] == 0


# ------------------------------------------------------------------ retraining: plan


@pytest.fixture
def retraining(example_dags: dict[str, Any], examples_env: Path) -> Any:
    return example_dags["bria_retraining"]


def test_retraining_names_follow_the_run(retraining: Any, examples_env: Path) -> None:
    out = call(retraining, "plan", **context(retraining, inlets=[event(MODEL_URI, model_id=4, dataset_id=21)]))
    assert out["source_dataset_id"] == 21
    assert out["dataset_name"] == "demo-dataset-20260302T030405"
    assert out["model_name"] == "demo-model-20260302T030405"
    assert out["new_images_source"] == f"{examples_env}/new-images"
    assert out["training_parameters"] == multiple_outputs({"t": None})["t"]  # None ("" on Airflow 3.0)


def test_retraining_inputs_from_param_and_triggering_event(retraining: Any) -> None:
    ctx = context(
        retraining,
        source_dataset_id=5,
        training_parameters={"rank": 64},
        triggering=[event(NEW_IMAGES_URI, source="s3://bucket/incoming/2026-03-02/")],
        inlets=[event(MODEL_URI, model_id=4, dataset_id=21)],
    )
    out = call(retraining, "plan", **ctx)
    assert out["source_dataset_id"] == 5
    assert out["new_images_source"] == "s3://bucket/incoming/2026-03-02/"
    assert out["training_parameters"] == {"rank": 64}


def test_retraining_rerun_builds_on_the_model_before_its_own(retraining: Any) -> None:
    """A re-run of a finished run skips the model event that run published itself (re-runs are safe)."""
    older = event(MODEL_URI, 1, model_id=4, dataset_id=21)
    own = event(MODEL_URI, 2, model_id=5, dataset_id=99)
    own.source_dag_id, own.source_run_id = "bria_retraining", "scheduled__1"
    ctx = context(retraining, inlets=[older, own])
    ctx["dag_run"] = SimpleNamespace(run_after=RUN_AFTER, dag_id="bria_retraining", run_id="scheduled__1")
    assert call(retraining, "plan", **ctx)["source_dataset_id"] == 21
    ctx["dag_run"] = SimpleNamespace(run_after=RUN_AFTER, dag_id="bria_retraining", run_id="scheduled__2")
    assert call(retraining, "plan", **ctx)["source_dataset_id"] == 99  # another run builds on the newest


def test_retraining_without_a_model_fails(retraining: Any) -> None:
    with pytest.raises(BriaInputError, match="No dataset to clone"):
        call(retraining, "plan", **context(retraining))


def test_retraining_short_circuits_on_an_empty_source(retraining: Any, tmp_path: Path) -> None:
    ctx = context(retraining, generate_demo_images=False)
    assert call(retraining, "prepare_new_images", str(tmp_path / "none"), 1, **ctx) is False
    ctx = context(retraining, num_demo_images=2)
    assert call(retraining, "prepare_new_images", str(tmp_path / "new"), 9, **ctx) == str(tmp_path / "new")
    assert len(list((tmp_path / "new").glob("demo-9-*.png"))) == 2


# ------------------------------------------------------------------ dataset preparation


@pytest.fixture
def prep(example_dags: dict[str, Any], examples_env: Path) -> Any:
    return example_dags["bria_dataset_preparation"]


def test_preparation_default_source(prep: Any, examples_env: Path) -> None:
    out = call(prep, "settings", **context(prep))
    assert out == multiple_outputs({"image_source": f"{examples_env}/images", "ip_name": None, "ip_description": None})


def test_prepare_images_needs_enough_samples(prep: Any, tmp_path: Path) -> None:
    src = tmp_path / "few"
    src.mkdir()
    (src / "a.png").write_bytes(demo_image_png(0, size=32))
    with pytest.raises(BriaInputError, match="at least 5 are needed"):
        call(prep, "prepare_images", str(src), **context(prep, generate_demo_images=False))


def test_prepare_images_spreads_the_samples(prep: Any, tmp_path: Path) -> None:
    out = call(
        prep, "prepare_images", str(tmp_path / "imgs"), **context(prep, num_demo_images=10, schema_sample_size=5)
    )
    assert out["count"] == 10
    assert [Path(s).name for s in out["samples"]] == [f"demo-0-{i:03d}.png" for i in (0, 2, 4, 6, 8)]


def test_prepare_images_completes_demo_images_of_a_killed_attempt(prep: Any, tmp_path: Path) -> None:
    from airflow_provider_bria.demo_images import write_demo_images

    src = tmp_path / "partial"
    write_demo_images(src, 3, size=32)  # the first attempt was killed after 3 of 8
    out = call(prep, "prepare_images", str(src), **context(prep, num_demo_images=8, schema_sample_size=5))
    assert out["count"] == 8
    assert sorted(p.name for p in src.iterdir()) == [f"demo-0-{i:03d}.png" for i in range(8)]


def test_review_captions_applies_overrides(prep: Any, bria_conn: Any) -> None:
    from airflow_provider_bria.hooks.bria import BriaHook

    hook = BriaHook()
    project = hook.create_project("p-review", "illustration", "stylized_scene")
    dataset = hook.create_dataset(project["id"], "d")
    samples = [base64.b64encode(demo_image_png(i, size=1024)).decode() for i in range(5)]
    hook.update_dataset(dataset["id"], visual_schema=hook.generate_visual_schema(samples))
    for i in range(2):
        hook.upload_image(dataset["id"], file=demo_image_png(i), image_name=f"img-{i}.png")
    names = sorted(img["image_name"] for img in hook.list_images(dataset["id"]))
    new_caption = {"subject": "a reviewed caption"}  # a JSON object Param: sent as JSON text

    with pytest.raises(BriaInputError, match="not in dataset"):
        call(prep, "review_captions", dataset["id"], **context(prep, caption_overrides={"nope.png": "x"}))
    out = call(prep, "review_captions", dataset["id"], **context(prep, caption_overrides={names[0]: new_caption}))
    assert out == {"dataset_id": dataset["id"], "images": 2, "captions_overridden": 1}
    captions = {img["image_name"]: img for img in hook.list_images(dataset["id"])}
    assert json.loads(captions[names[0]]["caption"]) == new_caption
    assert captions[names[0]]["caption_source"] == "manual"
    assert captions[names[1]]["caption_source"] == "automatic"


def _completed_dataset(hook: Any, name: str) -> dict[str, Any]:
    project = hook.create_project(name, "illustration", "stylized_scene")
    dataset = hook.create_dataset(project["id"], "d")
    samples = [base64.b64encode(demo_image_png(i)).decode() for i in range(5)]
    hook.update_dataset(dataset["id"], visual_schema=hook.generate_visual_schema(samples))
    for i in range(5):
        hook.upload_image(dataset["id"], file=demo_image_png(i), image_name=f"img-{i}.png")
    hook.update_dataset(dataset["id"], status="completed")
    return dataset


def test_publish_dataset_only_when_not_already_the_latest_event(prep: Any, bria_conn: Any) -> None:
    from airflow_provider_bria._compat import AirflowSkipException
    from airflow_provider_bria.hooks.bria import BriaHook

    dataset = _completed_dataset(BriaHook(), "p-publish")
    outlets = _ByUri(lambda: SimpleNamespace(extra={}))
    # The latest event names another dataset (e.g. an earlier run completed this one but died before publishing).
    ctx = context(prep, inlets=[event(DATASET_URI, dataset_id=dataset["id"] - 1)])
    out = call(prep, "publish_dataset", dataset["project_id"], dataset["id"], outlet_events=outlets, **ctx)
    assert out["dataset_id"] == dataset["id"]
    assert out["images"] == 5
    ((uri, emitted),) = outlets.items()
    assert uri == DATASET_URI
    assert emitted.extra == out
    # Already the latest event: skipped, so a re-run does not retrain the dataset.
    ctx = context(prep, inlets=[event(DATASET_URI, dataset_id=dataset["id"])])
    with pytest.raises(AirflowSkipException, match="already the latest"):
        call(prep, "publish_dataset", dataset["project_id"], dataset["id"], outlet_events=outlets, **ctx)
