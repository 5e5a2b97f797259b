"""Visual schema, caption prefix, refine, regenerate captions and image caption operators on the emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kit import FAST_HOOK

from airflow_provider_bria.exceptions import BriaConflictError, BriaInputError
from airflow_provider_bria.operators.captions import (
    BriaGenerateCaptionPrefixOperator,
    BriaGenerateVisualSchemaOperator,
    BriaRefineStructuredPromptOperator,
    BriaRegenerateCaptionsOperator,
    BriaUpdateImageCaptionOperator,
)

SCHEMA = {"style": "flat pastel illustration", "colors": "pastel"}


def _calls(emulator: Any, prefix: str, method: str = "POST") -> int:
    return sum(1 for r in emulator.requests(prefix) if r["method"] == method)


@pytest.fixture
def fibo_dataset(hook: Any, fibo_project: dict[str, Any]) -> dict[str, Any]:
    return hook.create_dataset(fibo_project["id"], "set", training_version="fibo")


@pytest.fixture
def legacy_dataset(hook: Any) -> dict[str, Any]:
    project = hook.create_project("Legacy", "photography", "stylized_scene")
    return hook.create_dataset(project["id"], "old", training_version="max")


# ------------------------------------------------------------------ visual schema


def test_visual_schema_from_files_and_uris(bria_conn: Any, make_context: Any, sample_files: list[Path]) -> None:
    images = [str(sample_files[0]), sample_files[1], f"file://{sample_files[2]}", *map(str, sample_files[3:6])]
    op = BriaGenerateVisualSchemaOperator(task_id="vs", images=images, hook_params=FAST_HOOK)
    schema = op.execute(make_context())
    assert isinstance(json.loads(schema), dict)
    assert json.loads(schema)
    assert _calls(bria_conn, "/v1/tailored-gen/generate_visual_schema") == 1


@pytest.mark.parametrize("count", [4, 11])
def test_visual_schema_wrong_count_sends_nothing(
    bria_conn: Any, make_context: Any, sample_files: list[Path], count: int
) -> None:
    images = [str(p) for p in (sample_files * 2)[:count]]
    op = BriaGenerateVisualSchemaOperator(task_id="vs", images=images, hook_params=FAST_HOOK)
    with pytest.raises(BriaInputError, match=f"needs 5-10 images, got {count}"):
        op.execute(make_context())
    assert bria_conn.requests("/v1/") == []


def test_visual_schema_applied_to_dataset(
    bria_conn: Any, make_context: Any, hook: Any, fibo_dataset: dict[str, Any], sample_files: list[Path]
) -> None:
    ctx = make_context()
    templated = json.dumps([str(p) for p in sample_files[:5]])  # a list rendered to a string by a template
    op = BriaGenerateVisualSchemaOperator(task_id="vs", images=templated, dataset_id=str(fibo_dataset["id"]),
                                          apply_to_dataset=True, hook_params=FAST_HOOK)
    schema = op.execute(ctx)
    assert json.loads(hook.get_dataset(fibo_dataset["id"])["visual_schema"]) == json.loads(schema)
    assert ctx["ti"].xcoms["dataset_id"] == fibo_dataset["id"]


def test_visual_schema_checks_the_dataset_before_generating(
    bria_conn: Any, make_context: Any, hook: Any, legacy_dataset: dict[str, Any], sample_files: list[Path]
) -> None:
    op = BriaGenerateVisualSchemaOperator(task_id="vs", images=sample_files[:5], dataset_id=legacy_dataset["id"],
                                          apply_to_dataset=True, hook_params=FAST_HOOK)
    with pytest.raises(BriaInputError, match="FIBO datasets only"):
        op.execute(make_context())
    assert _calls(bria_conn, "/v1/tailored-gen/generate_visual_schema") == 0
    with pytest.raises(BriaInputError, match="needs dataset_id"):
        BriaGenerateVisualSchemaOperator(task_id="vs", images=sample_files[:5], apply_to_dataset=True)


def test_visual_schema_on_completed_dataset_keeps_its_schema(
    bria_conn: Any, make_context: Any, hook: Any, fibo_dataset: dict[str, Any], fill: Any,
    upload_pngs: list[bytes], sample_files: list[Path],
) -> None:
    hook.update_dataset(fibo_dataset["id"], visual_schema=SCHEMA)
    fill(hook, fibo_dataset["id"], upload_pngs)
    hook.update_dataset(fibo_dataset["id"], status="completed")
    op = BriaGenerateVisualSchemaOperator(task_id="vs", images=sample_files[:5], dataset_id=fibo_dataset["id"],
                                          apply_to_dataset=True, hook_params=FAST_HOOK)
    assert json.loads(op.execute(make_context())) == SCHEMA
    assert _calls(bria_conn, "/v1/tailored-gen/generate_visual_schema") == 0


# ------------------------------------------------------------------ caption prefix (legacy)


def test_caption_prefix_from_files_applied_to_legacy_dataset(
    bria_conn: Any, make_context: Any, hook: Any, legacy_dataset: dict[str, Any], sample_files: list[Path]
) -> None:
    op = BriaGenerateCaptionPrefixOperator(
        task_id="prefix", ip_type="stylized_scene", ip_medium="photography", images=sample_files[:6],
        dataset_id=legacy_dataset["id"], apply_to_dataset=True, hook_params=FAST_HOOK,
    )
    prefix = op.execute(make_context())
    assert isinstance(prefix, str)
    assert prefix.strip()
    assert hook.get_dataset(legacy_dataset["id"])["caption_prefix"] == prefix


def test_caption_prefix_from_urls(
    bria_conn: Any, make_context: Any, hook: Any, legacy_dataset: dict[str, Any], upload_pngs: list[bytes]
) -> None:
    image = hook.upload_image(legacy_dataset["id"], file=upload_pngs[0], image_name="a.png")
    op = BriaGenerateCaptionPrefixOperator(task_id="prefix", ip_type="defined_character", ip_medium="illustration",
                                           image_urls=[image["image_url"]], ip_name="Captain Kit",
                                           hook_params=FAST_HOOK)
    assert op.execute(make_context()).strip()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"images": [f"x{i}.png" for i in range(7)]}, "needs 1-6 images, got 7"),
        ({"images": []}, "needs 1-6 images, got 0"),
        ({"image_urls": ["/local/file.png"]}, "must be http"),
        ({"images": ["https://a.example/x.png", "/tmp/y.png"]}, "mixes both"),
        ({"ip_medium": "{{ m }}", "_render": {"ip_medium": "oil"}, "images": ["a.png"]}, "Invalid ip_medium"),
    ],
)
def test_caption_prefix_bad_inputs_send_nothing(
    bria_conn: Any, make_context: Any, kwargs: dict[str, Any], message: str
) -> None:
    render = kwargs.pop("_render", {})
    args = {"task_id": "p", "ip_type": "stylized_scene", "ip_medium": "photography", "hook_params": FAST_HOOK,
            **kwargs}
    op = BriaGenerateCaptionPrefixOperator(**args)
    for field, value in render.items():
        setattr(op, field, value)
    with pytest.raises(BriaInputError, match=message):
        op.execute(make_context())
    assert bria_conn.requests("/v1/") == []


def test_caption_prefix_parse_time_errors() -> None:
    with pytest.raises(BriaInputError, match="supports ip_type"):
        BriaGenerateCaptionPrefixOperator(task_id="p", ip_type="icons", ip_medium="illustration", images=["a"])
    with pytest.raises(BriaInputError, match="exactly one of images or image_urls"):
        BriaGenerateCaptionPrefixOperator(task_id="p", ip_type="stylized_scene", ip_medium="illustration")


# ------------------------------------------------------------------ refine


def test_refine_structured_prompt(
    bria_conn: Any, make_context: Any, fibo_dataset: dict[str, Any], sample_files: list[Path]
) -> None:
    op = BriaRefineStructuredPromptOperator(task_id="refine", dataset_id=fibo_dataset["id"], structured_prompt=SCHEMA,
                                            instruction="make it warmer", context_images=sample_files[:2],
                                            hook_params=FAST_HOOK)
    refined = op.execute(make_context())
    assert isinstance(json.loads(refined), dict)
    assert _calls(bria_conn, "/v1/tailored-gen/refine_structured_prompt") == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"structured_prompt": "{oops"}, "valid JSON"), ({"instruction": "  "}, "instruction is required"),
     ({"dataset_id": "twelve"}, "dataset_id must be an integer")],
)
def test_refine_bad_inputs(bria_conn: Any, make_context: Any, kwargs: dict[str, Any], message: str) -> None:
    args = {"task_id": "r", "dataset_id": 1, "structured_prompt": SCHEMA, "instruction": "x", "hook_params": FAST_HOOK,
            **kwargs}
    with pytest.raises(BriaInputError, match=message):
        BriaRefineStructuredPromptOperator(**args).execute(make_context())
    assert bria_conn.requests("/v1/") == []


# ------------------------------------------------------------------ regenerate captions


def test_regenerate_captions_waits_for_completion(
    bria_conn: Any, make_context: Any, hook: Any, fibo_dataset: dict[str, Any], fill: Any, upload_pngs: list[bytes]
) -> None:
    fill(hook, fibo_dataset["id"], upload_pngs)  # uploaded before the schema: captions pending
    hook.update_dataset(fibo_dataset["id"], visual_schema=SCHEMA)
    op = BriaRegenerateCaptionsOperator(task_id="recaption", dataset_id=fibo_dataset["id"], poll_interval=0.1,
                                        timeout=30, hook_params=FAST_HOOK)
    result = op.execute(make_context())
    assert result == {"dataset_id": fibo_dataset["id"], "captions_update_status": "completed", "images_count": 5,
                      "regenerated": True}
    images = hook.list_images(fibo_dataset["id"])
    assert all(img["caption"] for img in images)
    assert _calls(bria_conn, f"/v1/tailored-gen/datasets/{fibo_dataset['id']}/images", "PUT") == 1


def test_regenerate_captions_preconditions(
    bria_conn: Any, make_context: Any, hook: Any, fibo_dataset: dict[str, Any], fill: Any, upload_pngs: list[bytes]
) -> None:
    op = BriaRegenerateCaptionsOperator(task_id="r", dataset_id=fibo_dataset["id"], poll_interval=0.1, timeout=5,
                                        hook_params=FAST_HOOK)
    assert op.execute(make_context())["regenerated"] is False  # no images: nothing to do
    fill(hook, fibo_dataset["id"], upload_pngs)
    with pytest.raises(BriaInputError, match="has no visual_schema"):
        op.execute(make_context())
    hook.update_dataset(fibo_dataset["id"], visual_schema=SCHEMA)
    hook.update_dataset(fibo_dataset["id"], status="completed")
    with pytest.raises(BriaConflictError, match="completed \\(frozen\\)"):
        op.execute(make_context())
    assert _calls(bria_conn, f"/v1/tailored-gen/datasets/{fibo_dataset['id']}/images", "PUT") == 0


def test_regenerate_captions_timeout_and_retry_does_not_restart(
    requests_mock: Any, make_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kit import conn_json

    from airflow_provider_bria.exceptions import BriaCaptionsTimeoutError

    base = "https://bria.test"
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json(base))
    ds = {"id": 9, "project_id": 1, "status": "draft", "training_version": "fibo", "images_count": 3,
          "visual_schema": json.dumps(SCHEMA), "captions_update_status": "in_progress"}
    requests_mock.get(f"{base}/v1/tailored-gen/datasets/9", json=ds)
    put = requests_mock.put(f"{base}/v1/tailored-gen/datasets/9/images", status_code=202, json=ds)
    op = BriaRegenerateCaptionsOperator(task_id="r", dataset_id=9, poll_interval=0.05, timeout=0.2,
                                        hook_params=FAST_HOOK)
    with pytest.raises(BriaCaptionsTimeoutError, match="still 'in_progress'"):
        op.execute(make_context())
    assert put.call_count == 0  # already in progress: waited, never restarted


# ------------------------------------------------------------------ image caption


def test_update_image_caption_fibo(
    bria_conn: Any, make_context: Any, hook: Any, fibo_dataset: dict[str, Any], upload_pngs: list[bytes]
) -> None:
    hook.update_dataset(fibo_dataset["id"], visual_schema=SCHEMA)
    image = hook.upload_image(fibo_dataset["id"], file=upload_pngs[0], image_name="a.png")
    caption = {"subject": "a fox", "style": "pastel"}
    op = BriaUpdateImageCaptionOperator(task_id="cap", dataset_id=fibo_dataset["id"], image_id=str(image["id"]),
                                        caption=caption, hook_params=FAST_HOOK)
    result = op.execute(make_context())
    assert result["caption_source"] == "manual"
    remote = hook.get_image(fibo_dataset["id"], image["id"])
    assert json.loads(remote["caption"]) == caption
    path = f"/v1/tailored-gen/datasets/{fibo_dataset['id']}/images/{image['id']}"
    puts = _calls(bria_conn, path, "PUT")
    assert op.execute(make_context(2))["caption_source"] == "manual"  # same caption: no second PUT
    assert _calls(bria_conn, path, "PUT") == puts
    regen = BriaUpdateImageCaptionOperator(task_id="regen", dataset_id=fibo_dataset["id"], image_id=image["id"],
                                           regenerate=True, hook_params=FAST_HOOK)
    assert regen.execute(make_context())["caption_source"] == "automatic"
    with pytest.raises(BriaInputError, match="valid JSON"):
        BriaUpdateImageCaptionOperator(task_id="bad", dataset_id=fibo_dataset["id"], image_id=image["id"],
                                       caption="a fox", hook_params=FAST_HOOK).execute(make_context())


def test_update_image_caption_legacy_and_errors(
    bria_conn: Any, make_context: Any, hook: Any, legacy_dataset: dict[str, Any], upload_pngs: list[bytes]
) -> None:
    image = hook.upload_image(legacy_dataset["id"], file=upload_pngs[0], image_name="a.png")
    op = BriaUpdateImageCaptionOperator(task_id="cap", dataset_id=legacy_dataset["id"], image_id=image["id"],
                                        caption="a fox in a pastel meadow", hook_params=FAST_HOOK)
    assert op.execute(make_context())["caption"] == "a fox in a pastel meadow"
    with pytest.raises(BriaInputError, match="exactly one"):
        BriaUpdateImageCaptionOperator(task_id="x", dataset_id=1, image_id=1)
    with pytest.raises(BriaInputError, match="exactly one"):
        BriaUpdateImageCaptionOperator(task_id="x", dataset_id=1, image_id=1, caption="c", regenerate=True)
    for i, data in enumerate(upload_pngs[1:5]):  # the spec: 5 images to complete, legacy too
        hook.upload_image(legacy_dataset["id"], file=data, image_name=f"more{i}.png")
    hook.update_dataset(legacy_dataset["id"], status="completed")
    with pytest.raises(BriaConflictError, match="frozen"):
        op.execute(make_context())
