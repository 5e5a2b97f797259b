"""The human review of ``bria_dataset_preparation``: Airflow's HITL operator, its rounds, and what each answer does.

The response handling is driven with the events Airflow's HITL machinery delivers to ``execute_complete``
(``chosen_options``, ``params_input``, ``responded_by_user``...); the browser flow (clicking Refine, then
Approve) is in ``tests/system/test_system_7_ui_plugin.py``.
"""

from __future__ import annotations

import base64
import hashlib
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from kit import KeyedFakeTI

from airflow_provider_bria._compat import AirflowFailException, AirflowSkipException, has_hitl
from airflow_provider_bria.demo_images import demo_image_png

#: Tests of the HITL answers themselves: Airflow 3.0 has no HITL (its review tasks only skip or fail).
needs_hitl = pytest.mark.skipif(not has_hitl(), reason="human-in-the-loop needs Airflow 3.1+")


@pytest.fixture
def prep(example_dags: dict[str, Any], examples_env: Path) -> Any:
    return example_dags["bria_dataset_preparation"]


def _event(option: str, instruction: str = "") -> dict[str, Any]:
    return {"chosen_options": [option], "params_input": {"instruction": instruction} if instruction else {},
            "responded_at": datetime(2026, 12, 6, tzinfo=timezone.utc),
            "responded_by_user": {"id": "admin", "name": "admin"}}


def _context(prep: Any, task_id: str, **params: Any) -> dict[str, Any]:
    ti = KeyedFakeTI(task_id=task_id, dag_id=prep.dag_id, run_id="manual__1", xcoms={
        ("create_dataset", "return_value"): 7,
        (task_id, "visual_schema"): '{"style": "flat"}',
    })
    return {"ti": ti, "task": prep.get_task(task_id), "params": {**prep.params.validate(), **params}}


def test_rounds_and_options(prep: Any) -> None:
    rounds = [prep.get_task(f"review_schema_{n}") for n in (1, 2, 3)]
    assert [r.options for r in rounds] == [["Approve", "Refine", "Reject"]] * 2 + [["Approve", "Reject"]]
    assert all(r.defaults == ["Reject"] for r in rounds)  # the documented timeout outcome
    # the wait: response_timeout (standard provider with Airflow 3.2+), execution_timeout for 3.1's HITL operator
    assert all((getattr(r, "response_timeout", None) or r.execution_timeout).total_seconds() == 24 * 3600
               for r in rounds)
    assert "instruction" in rounds[0].params
    assert "instruction" not in rounds[2].params
    assert prep.get_task("refine_schema_1").downstream_task_ids == {"apply_schema_1"}
    assert prep.get_task("regenerate_captions_1").downstream_task_ids == {"review_schema_2"}
    assert prep.get_task("review_captions").upstream_task_ids >= {"upload_images", *(r.task_id for r in rounds)}
    assert str(prep.get_task("review_captions").trigger_rule) in ("none_failed_min_one_success",
                                                                   "TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS")
    assert prep.params["human_review"] is True


def test_review_off_skips(prep: Any) -> None:
    ctx = _context(prep, "review_schema_1", human_review=False)
    with pytest.raises(AirflowSkipException, match="human_review is off"):
        prep.get_task("review_schema_1").execute(ctx)


@pytest.mark.parametrize("simulated", [True, False])
def test_without_hitl_review_off_skips_and_on_fails_without_retry(
    prep: Any, monkeypatch: pytest.MonkeyPatch, simulated: bool
) -> None:
    """Airflow 3.0 (no HITL): the same review tasks; skipped with human_review off, failed (no retry) with it on.

    Runs on every line: on 3.1+ the DAG's HITL check is switched off; on 3.0 the check and the stand-in are real.
    """
    task = prep.get_task("review_schema_1")
    if simulated:
        monkeypatch.setattr(sys.modules[type(task).__module__], "has_hitl", lambda: False)
    elif has_hitl():
        pytest.skip("the real fallback needs an Airflow without HITL (3.0)")
    with pytest.raises(AirflowSkipException, match="human_review is off"):
        task.execute(_context(prep, "review_schema_1", human_review=False))
    with pytest.raises(AirflowFailException, match=r"needs Airflow 3\.1\+ \(HITL\); set human_review to false"):
        task.execute(_context(prep, "review_schema_1"))  # no Bria call before it: the context has no connection


@needs_hitl
def test_approve_skips_the_refinement(prep: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    task = prep.get_task("review_schema_1")
    skipped: list[str] = []
    monkeypatch.setattr(type(task), "skip", lambda self, ti, tasks: skipped.extend(t.task_id for t in tasks))
    out = task.execute_complete(_context(prep, "review_schema_1"), _event("Approve"))
    assert out["outcome"] == "approve"
    assert skipped == ["refine_schema_1"]


@needs_hitl
def test_refine_passes_the_instruction_and_schema_on(prep: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    task = prep.get_task("review_schema_2")
    monkeypatch.setattr(type(task), "skip", lambda *a, **k: pytest.fail("Refine must not skip anything"))
    out = task.execute_complete(_context(prep, "review_schema_2"), _event("Refine", " Character's name is Lucy "))
    assert out == {"outcome": "refine", "instruction": "Character's name is Lucy", "visual_schema": '{"style": "flat"}',
                   "round": 2, "by": "admin"}
    # what refine_schema_2 renders from it
    refine = prep.get_task("refine_schema_2")
    assert "xcom_pull(task_ids='review_schema_2')['instruction']" in refine.instruction
    assert "xcom_pull(task_ids='review_schema_2')['visual_schema']" in refine.structured_prompt


@needs_hitl
@pytest.mark.parametrize(("option", "instruction", "match"), [
    ("Reject", "", "rejected by admin; dataset 7 stays a draft"),
    ("Refine", "  ", "Refine needs an instruction"),
])
def test_reject_and_empty_refine_fail_without_retry(prep: Any, option: str, instruction: str, match: str) -> None:
    with pytest.raises(AirflowFailException, match=match):
        prep.get_task("review_schema_1").execute_complete(_context(prep, "review_schema_1"),
                                                          _event(option, instruction))


@needs_hitl
def test_unknown_option_is_refused(prep: Any) -> None:
    with pytest.raises(ValueError, match="not in"):
        prep.get_task("review_schema_3").execute_complete(_context(prep, "review_schema_3"), _event("Refine", "x"))


@needs_hitl
def test_review_shows_schema_and_captioned_samples_served_by_the_plugin(
    prep: Any, bria_conn: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``execute`` builds the body from Bria (schema, captions) and the local copies, then waits (HITL)."""
    import airflow.providers.standard.operators.hitl as hitl

    from airflow_provider_bria.hooks.bria import BriaHook

    hook = BriaHook()
    project = hook.create_project("p-hitl", "illustration", "stylized_scene")
    dataset = hook.create_dataset(project["id"], "d", training_version="fibo")
    samples = [base64.b64encode(demo_image_png(i, size=1024)).decode() for i in range(5)]
    hook.update_dataset(dataset["id"], visual_schema=hook.generate_visual_schema(samples))
    src = tmp_path / "images"
    src.mkdir()
    for i in range(3):
        data = demo_image_png(i)
        (src / f"local-{i}.png").write_bytes(data)
        key = hashlib.sha256(data).hexdigest()[:12]
        hook.upload_image(dataset["id"], file=data, image_name=f"img-{i}-{key}.png")
    ctx = _context(prep, "review_schema_1")
    ctx["ti"].xcoms[("create_dataset", "return_value")] = dataset["id"]
    ctx["ti"].xcoms[("prepare_images", "source")] = str(src)
    ctx["ti"].id = "ti-1"
    ctx["task_instance"] = ctx["ti"]
    written: dict[str, Any] = {}
    monkeypatch.setattr(hitl, "upsert_hitl_detail", lambda **kw: written.update(kw))

    class Waiting(Exception):
        pass

    task = prep.get_task("review_schema_1")
    if hasattr(hitl, "TaskAwaitingInput"):
        monkeypatch.setattr(hitl, "TaskAwaitingInput", lambda **kw: Waiting(kw))
    else:  # 3.1's HITL operator defers itself

        def defer(self: Any, **kw: Any) -> None:
            raise Waiting(kw)

        monkeypatch.setattr(type(task), "defer", defer)
    with pytest.raises(Waiting):
        task.execute(ctx)
    body = written["body"]
    schema = hook.get_dataset(dataset["id"])["visual_schema"]
    assert next(iter(__import__("json").loads(schema))) in body  # the schema, pretty-printed
    for img in hook.list_images(dataset["id"]):
        assert img["image_name"] in body
        assert " ".join(img["caption"].split())[:40] in body
    offered = ctx["ti"].xcoms[("review_schema_1", "review_images")]
    assert offered == {"folder": "file://" + str(src), "names": ["local-0.png", "local-1.png", "local-2.png"]}
    for name in offered["names"]:
        assert f"(/bria/review-image/{prep.dag_id}/manual__1/review_schema_1/{name}?thumb=1)" in body
    assert "http://" not in body
    assert "https://" not in body
    assert written["options"] == ["Approve", "Refine", "Reject"]
    assert list(written["params"]) == ["instruction"]  # the form: this round's field, not the DAG's Params
