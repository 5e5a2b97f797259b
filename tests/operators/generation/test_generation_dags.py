"""Generation DAGs run end to end with ``dag.test()`` against the emulator (tests/test_dags/generation_*.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from generation_helpers import png_size, submissions, train_model

from airflow_provider_bria.contract import aspect_ratio_size


def local(uri: str) -> Path:
    assert uri.startswith("file://"), uri
    return Path(uri.removeprefix("file://"))


def test_fanout_done_when(bria_conn: Any, hook: Any, run_dag: Any, tmp_path: Path) -> None:
    """20 prompts x 2 images from a model trained in the emulator; a re-run generates nothing new."""
    model_id = train_model(hook, bria_conn, real_training=True)
    assert hook.get_model(model_id)["status"] == "Completed"
    out = "file://" + str(tmp_path / "fanout")
    conf = {"model_id": model_id, "output_path": out, "aspect_ratio": "16:9"}

    first = run_dag("generation_fanout", conf)
    assert first.state == "success", first.tasks
    records = first.xcom("generate")
    assert len(records) == 40
    pngs = sorted((tmp_path / "fanout").glob("*.png"))
    assert len(pngs) == 40
    assert sorted(local(r["uri"]) for r in records) == pngs
    expected = aspect_ratio_size("16:9", long_side=512)
    assert all(png_size(p.read_bytes()) == expected for p in pngs)
    assert len(submissions(bria_conn)) == 40
    assert len({r["seed"] for r in records}) == 40

    second = run_dag("generation_fanout", conf)
    assert second.state == "success", second.tasks
    assert len(submissions(bria_conn)) == 40  # nothing new generated
    again = second.xcom("generate")
    assert [r["uri"] for r in again] == [r["uri"] for r in records]
    assert all(r["existing"] for r in again)
    assert len(list((tmp_path / "fanout").glob("*.png"))) == 40


def test_mapped_and_structured_dag(bria_conn: Any, fibo_model: int, run_dag: Any, tmp_path: Path) -> None:
    out = "file://" + str(tmp_path / "mapped")
    run = run_dag("generation_mapped", {"model_id": fibo_model, "output_path": out})
    assert run.state == "success", run.tasks
    assert run.tasks == {"structured": "success", "images[0]": "success", "images[1]": "success",
                         "images[2]": "success", "from_structured": "success"}
    mapped = [run.xcom("images", map_index=i) for i in range(3)]
    assert [m[0]["prompt"] for m in mapped] == ["a teal kite over a beach", "a paper boat on a puddle",
                                                "a fox reading a map"]
    for m in mapped:
        assert png_size(local(m[0]["uri"]).read_bytes()) == aspect_ratio_size("3:4", long_side=512)
    recreated = run.xcom("from_structured")[0]
    structured = run.xcom("structured")  # a JSON string (the DB helper may decode it once more)
    structured = json.loads(structured) if isinstance(structured, str) else structured
    assert json.loads(recreated["structured_prompt"]) == structured
    assert recreated["seed"] == 42
    assert len(list((tmp_path / "mapped").glob("*.png"))) == 4
    assert len(submissions(bria_conn)) == 4


def test_deferrable_dag_images_then_video(slow_conn: Any, run_dag: Any, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_bria.hooks.bria import BriaHook
    from airflow_provider_bria.triggers.job import BriaJobTrigger

    runs: list[list[str]] = []
    original_run = BriaJobTrigger.run

    def counting_run(self: BriaJobTrigger) -> Any:
        runs.append(list(self.requests))
        return original_run(self)

    monkeypatch.setattr(BriaJobTrigger, "run", counting_run)  # dag.test runs triggers inline, in this process

    model_id = train_model(BriaHook(), slow_conn)
    out = "file://" + str(tmp_path / "deferred")
    run = run_dag("generation_deferrable", {"model_id": model_id, "output_path": out})
    assert run.state == "success", run.tasks
    images = run.xcom("images")
    assert len(images) == 2
    for rec in images:
        assert png_size(local(rec["uri"]).read_bytes()) == aspect_ratio_size("9:16", long_side=512)
    video = run.xcom("video")
    assert local(video["uri"]).read_bytes()[4:8] == b"ftyp"
    assert video["seed"] == 3
    # both tasks waited in the (inline) triggerer
    assert [len(r) for r in runs] == [2, 1]  # images (2 jobs), then the video (1 job)
    assert len(submissions(slow_conn, "/v2/image")) == 2
    assert len(submissions(slow_conn, "/v2/video")) == 1
