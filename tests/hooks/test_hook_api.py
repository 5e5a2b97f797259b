"""Every hook method against requests-mock: method, path, query, headers and JSON body sent; value returned."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hooktestlib import BASE, assert_sent, binary_file, png_bytes

from airflow_provider_bria.contract import JobStatus
from airflow_provider_bria.responses import V2Response

TG = "/v1/tailored-gen"
PNG = png_bytes()
PNG_B64 = base64.b64encode(PNG).decode()
SCHEMA = json.dumps({"style": "flat", "colors": "warm"})
PROJECT = {"id": 7, "project_name": "brand", "ip_medium": "photography", "ip_type": "stylized_scene"}
DATASET = {"id": 11, "project_id": 7, "name": "ds", "status": "draft"}
IMAGE = {"id": 21, "dataset_id": 11, "caption": "a cat", "caption_source": "automatic"}
MODEL = {"id": 31, "dataset_id": 11, "name": "m", "status": "Created"}


@dataclass
class Case:
    """One hook call and what must go over the wire."""

    call: Callable[[Any], Any]
    method: str
    path: str
    response: Any = None
    status: int = 200
    body: Any = ...  # ... = don't check, None = no body
    query: dict[str, list[str]] = field(default_factory=dict)
    returns: Any = ...  # ... = don't check


CASES: dict[str, Case] = {
    # ---- projects
    "create_project": Case(
        lambda h: h.create_project(
            "brand", "illustration", "defined_character", ip_name="Max", ip_description="a friendly dog",
            project_description="desc", training_version="fibo",
        ),
        "POST", f"{TG}/projects", PROJECT, 201,
        body={"project_name": "brand", "ip_medium": "illustration", "ip_type": "defined_character",
              "ip_name": "Max", "ip_description": "a friendly dog", "project_description": "desc",
              "training_version": "fibo"},
        returns=PROJECT,
    ),
    "create_project_minimal": Case(
        lambda h: h.create_project("brand", "photography", "stylized_scene"),
        "POST", f"{TG}/projects", PROJECT, 201,
        body={"project_name": "brand", "ip_medium": "photography", "ip_type": "stylized_scene"},
        returns=PROJECT,
    ),
    "list_projects": Case(lambda h: h.list_projects(), "GET", f"{TG}/projects", [PROJECT], body=None,
                          returns=[PROJECT]),
    "list_projects_empty": Case(lambda h: h.list_projects(), "GET", f"{TG}/projects", [], returns=[]),
    "get_project": Case(lambda h: h.get_project("7"), "GET", f"{TG}/projects/7", PROJECT, body=None,
                        returns=PROJECT),
    "update_project": Case(
        lambda h: h.update_project(7, project_name="new", ip_description="two words"),
        "PUT", f"{TG}/projects/7", PROJECT, body={"project_name": "new", "ip_description": "two words"},
        returns=PROJECT,
    ),
    "delete_project": Case(lambda h: h.delete_project(7), "DELETE", f"{TG}/projects/7", None, 204, body=None,
                           returns=None),
    # ---- datasets
    "create_dataset": Case(
        lambda h: h.create_dataset(7, "ds", upload_type="advanced", training_version="bria-3.2"),
        "POST", f"{TG}/datasets", DATASET, 201,
        body={"project_id": 7, "name": "ds", "upload_type": "advanced", "training_version": "3.2"},
        returns=DATASET,
    ),
    "create_dataset_default": Case(
        lambda h: h.create_dataset("7", "ds"), "POST", f"{TG}/datasets", DATASET, 201,
        body={"project_id": 7, "name": "ds", "upload_type": "basic"}, returns=DATASET,
    ),
    "list_datasets": Case(lambda h: h.list_datasets(), "GET", f"{TG}/datasets", [DATASET], returns=[DATASET]),
    "list_project_datasets": Case(
        lambda h: h.list_project_datasets(7, include_models=True, include_models_ids=True),
        "GET", f"{TG}/projects/7/datasets", [DATASET],
        query={"include_models": ["true"], "include_models_ids": ["true"]}, returns=[DATASET],
    ),
    "list_project_datasets_plain": Case(
        lambda h: h.list_project_datasets(7), "GET", f"{TG}/projects/7/datasets", [DATASET], returns=[DATASET],
    ),
    "get_dataset": Case(
        lambda h: h.get_dataset(11, max_images=5), "GET", f"{TG}/datasets/11", DATASET,
        query={"max_images": ["5"]}, returns=DATASET,
    ),
    "update_dataset": Case(
        lambda h: h.update_dataset(11, visual_schema={"style": "flat", "colors": "warm"}, status="completed"),
        "PUT", f"{TG}/datasets/11", DATASET, body={"visual_schema": SCHEMA, "status": "completed"},
        returns=DATASET,
    ),
    "update_dataset_legacy": Case(
        lambda h: h.update_dataset(11, name="n2", caption_prefix="a photo of"),
        "PUT", f"{TG}/datasets/11", DATASET, body={"name": "n2", "caption_prefix": "a photo of"},
    ),
    "delete_dataset": Case(lambda h: h.delete_dataset(11), "DELETE", f"{TG}/datasets/11", None, 204, returns=None),
    "clone_dataset": Case(
        lambda h: h.clone_dataset(11, name="copy", description="d"), "POST", f"{TG}/datasets/11/clone",
        DATASET, 201, body={"name": "copy", "description": "d"}, returns=DATASET,
    ),
    "download_dataset": Case(
        lambda h: h.download_dataset(11), "GET", "/v1/datasets/11/download", {"download_url": "https://s3/x.zip"},
        returns={"download_url": "https://s3/x.zip"},
    ),
    # ---- images
    "upload_image_bytes": Case(
        lambda h: h.upload_image(11, file=PNG, image_name="cat.png", increase_resolution=False,
                                 content_moderation=True),
        "POST", f"{TG}/datasets/11/images", IMAGE, 201,
        body={"file": PNG_B64, "image_name": "cat.png", "increase_resolution": False, "content_moderation": True},
        returns=IMAGE,
    ),
    "upload_image_fileobj": Case(
        lambda h: h.upload_image(11, file=binary_file(PNG)), "POST", f"{TG}/datasets/11/images", IMAGE, 201,
        body={"file": PNG_B64}, returns=IMAGE,
    ),
    "upload_image_url": Case(
        lambda h: h.upload_image(11, image_url="https://cdn.example/cat.jpg"), "POST",
        f"{TG}/datasets/11/images", IMAGE, 201, body={"image_url": "https://cdn.example/cat.jpg"}, returns=IMAGE,
    ),
    "list_images": Case(lambda h: h.list_images(11), "GET", f"{TG}/datasets/11/images", [IMAGE], returns=[IMAGE]),
    "get_image": Case(lambda h: h.get_image(11, 21), "GET", f"{TG}/datasets/11/images/21", IMAGE, returns=IMAGE),
    "update_image_caption": Case(
        lambda h: h.update_image_caption(11, 21, "a red cat"), "PUT", f"{TG}/datasets/11/images/21", IMAGE,
        body={"caption": "a red cat"}, returns=IMAGE,
    ),
    "update_image_caption_json": Case(
        lambda h: h.update_image_caption(11, 21, {"subject": "cat"}), "PUT", f"{TG}/datasets/11/images/21", IMAGE,
        body={"caption": json.dumps({"subject": "cat"})},
    ),
    "regenerate_image_caption": Case(
        lambda h: h.regenerate_image_caption(11, 21), "PUT", f"{TG}/datasets/11/images/21", IMAGE,
        body={"regenerate_caption": True}, returns=IMAGE,
    ),
    "delete_image": Case(lambda h: h.delete_image(11, 21), "DELETE", f"{TG}/datasets/11/images/21", None, 204,
                         returns=None),
    "regenerate_all_captions": Case(
        lambda h: h.regenerate_all_captions(11), "PUT", f"{TG}/datasets/11/images",
        {**DATASET, "captions_update_status": "in_progress"}, 202, body=None,
        returns={**DATASET, "captions_update_status": "in_progress"},
    ),
    "bulk_upload": Case(
        lambda h: h.bulk_upload(11, "https://cdn.example/a.zip", automatic_captioning=False,
                                content_moderation=True),
        "POST", f"{TG}/datasets/11/images/bulk-upload", None, 202,
        body={"zip_url": "https://cdn.example/a.zip", "automatic_captioning": False, "content_moderation": True},
        returns={},
    ),
    "get_bulk_upload_status": Case(
        lambda h: h.get_bulk_upload_status(11), "GET", f"{TG}/datasets/11/images/bulk-upload/status",
        {"status": "processing", "progress_percentage": 40}, returns={"status": "processing",
                                                                      "progress_percentage": 40},
    ),
    # ---- helpers
    "generate_visual_schema": Case(
        lambda h: h.generate_visual_schema([f"https://cdn.example/{i}.png" for i in range(4)] + [PNG],
                                           content_moderation=True),
        "POST", f"{TG}/generate_visual_schema", {"visual_schema": SCHEMA},
        body={"images": [f"https://cdn.example/{i}.png" for i in range(4)] + [PNG_B64], "content_moderation": True},
        returns=SCHEMA,
    ),
    "generate_prefix": Case(
        lambda h: h.generate_prefix(ip_type="defined_character", ip_medium="illustration", ip_name="Max",
                                    image_urls=["https://cdn.example/1.png"]),
        "POST", f"{TG}/generate_prefix", {"prefix": "An illustration of Max,"},
        body={"image_urls": ["https://cdn.example/1.png"], "ip_type": "defined_character",
              "ip_medium": "illustration", "ip_name": "Max"},
        returns="An illustration of Max,",
    ),
    "generate_prefix_base64": Case(
        lambda h: h.generate_prefix(ip_type="stylized_scene", ip_medium="photography",
                                    images=[f"data:image/png;base64,{PNG_B64}"]),
        "POST", f"{TG}/generate_prefix", {"result": {"caption_prefix": "A photo of"}},
        body={"images": [PNG_B64], "ip_type": "stylized_scene", "ip_medium": "photography"},
        returns="A photo of",
    ),
    "refine_structured_prompt": Case(
        lambda h: h.refine_structured_prompt(11, SCHEMA, "make it blue", context_images=["https://c/1.png"]),
        "POST", f"{TG}/refine_structured_prompt", {"structured_prompt": {"style": "flat", "colors": "blue"}},
        body={"dataset_id": 11, "structured_prompt": SCHEMA, "instruction": "make it blue",
              "context_images": ["https://c/1.png"]},
        returns=json.dumps({"style": "flat", "colors": "blue"}),
    ),
    # ---- models
    "create_model": Case(
        lambda h: h.create_model(11, "m", training_mode="expert", training_version="3.2", description="d"),
        "POST", f"{TG}/models", MODEL, 201,
        body={"dataset_id": 11, "name": "m", "training_mode": "expert", "training_version": "bria-3.2",
              "description": "d"},
        returns=MODEL,
    ),
    "create_model_default": Case(
        lambda h: h.create_model(11, "m"), "POST", f"{TG}/models", MODEL, 201,
        body={"dataset_id": 11, "name": "m", "training_mode": "fully_automated"},
    ),
    "list_models": Case(
        lambda h: h.list_models(include_training_parameters=True), "GET", f"{TG}/models", [MODEL],
        query={"include_training_parameters": ["true"]}, returns=[MODEL],
    ),
    "list_project_models": Case(
        lambda h: h.list_project_models(7), "GET", f"{TG}/projects/7/models", [MODEL], returns=[MODEL],
    ),
    "get_model": Case(lambda h: h.get_model(31), "GET", f"{TG}/models/31", MODEL, returns=MODEL),
    "update_model": Case(
        lambda h: h.update_model(31, name="m2", description="d2"), "PUT", f"{TG}/models/31", MODEL,
        body={"name": "m2", "description": "d2"}, returns=MODEL,
    ),
    "delete_model": Case(lambda h: h.delete_model(31), "DELETE", f"{TG}/models/31", None, 204, returns=None),
    "start_training_auto": Case(
        lambda h: h.start_training(31), "POST", f"{TG}/models/31/start_training",
        {**MODEL, "status": "InProgress"}, body={}, returns={**MODEL, "status": "InProgress"},
    ),
    "start_training_expert": Case(
        lambda h: h.start_training(31, {"learning_rate": 0.0002, "total_training_steps": 1000, "rank": 64,
                                        "checkpoint_interval": 500, "lr_scheduler": "cosine",
                                        "lr_warmup_steps": None}),
        "POST", f"{TG}/models/31/start_training", {**MODEL, "status": "InProgress"},
        body={"learning_rate": 0.0002, "total_training_steps": 1000, "rank": 64, "checkpoint_interval": 500,
              "lr_scheduler": "cosine"},
    ),
    "stop_training": Case(
        lambda h: h.stop_training(31), "POST", f"{TG}/models/31/stop_training", {**MODEL, "status": "Stopping"},
        body=None, returns={**MODEL, "status": "Stopping"},
    ),
    "stop_training_empty": Case(
        lambda h: h.stop_training(31), "POST", f"{TG}/models/31/stop_training", None, 200, returns=None,
    ),
    "list_checkpoints": Case(
        lambda h: h.list_checkpoints(31), "GET", f"{TG}/models/31/checkpoints",
        {"checkpoints": [{"checkpoint_step": 500}], "active_model_version": "500"},
        returns={"checkpoints": [{"checkpoint_step": 500}], "active_model_version": "500"},
    ),
    "get_checkpoint": Case(
        lambda h: h.get_checkpoint(31, "500"), "GET", f"{TG}/models/31/checkpoints/500",
        {"checkpoint_step": 500, "training_job_id": 9}, returns={"checkpoint_step": 500, "training_job_id": 9},
    ),
    "delete_checkpoint": Case(
        lambda h: h.delete_checkpoint(31, 500), "DELETE", f"{TG}/models/31/checkpoints/500", None, 204,
        returns=None,
    ),
    "download_model": Case(
        lambda h: h.download_model(31), "GET", f"{TG}/models/31/download",
        {"download_url": "https://s3/m.safetensors", "base_model_name": "BRIA-FIBO"},
        returns={"download_url": "https://s3/m.safetensors", "base_model_name": "BRIA-FIBO"},
    ),
    "upload_model_project_id": Case(
        lambda h: h.upload_model("https://cdn.example/m.safetensors", model_name="up", project_id=7),
        "POST", f"{TG}/models/upload_model", {**MODEL, "status": "syncing"},
        body={"model_url": "https://cdn.example/m.safetensors", "model_name": "up", "project_id": 7},
    ),
    "upload_model_new_project": Case(
        lambda h: h.upload_model("https://cdn.example/m.safetensors",
                                 project_parameters={"project_name": "p", "ip_medium": "photography"}),
        "POST", f"{TG}/models/upload_model", {**MODEL, "status": "syncing"},
        body={"model_url": "https://cdn.example/m.safetensors",
              "project_parameters": {"project_name": "p", "ip_medium": "photography", "ip_type": "other"}},
    ),
    # ---- generation
    "text_to_image_legacy": Case(
        lambda h: h.text_to_image_legacy(31, "a cat", num_results=2, aspect_ratio="16:9", seed=4,
                                         model_influence=0.8, fast=False, steps_num=30,
                                         include_generation_prefix=False, guidance_method_1="controlnet_canny",
                                         guidance_method_1_scale=0.5),
        "POST", "/v1/text-to-image/tailored/31", {"result": [{"urls": ["https://x/1.png"], "seed": 4}]},
        body={"prompt": "a cat", "num_results": 2, "aspect_ratio": "16:9", "sync": True, "seed": 4,
              "model_influence": 0.8, "fast": False, "steps_num": 30, "include_generation_prefix": False,
              "guidance_method_1": "controlnet_canny", "guidance_method_1_scale": 0.5},
        returns={"result": [{"urls": ["https://x/1.png"], "seed": 4}]},
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hook_method_sends_documented_request(name: str, hook: Any, api: Any) -> None:
    case = CASES[name]
    kwargs: dict[str, Any] = {"status_code": case.status}
    if case.response is not None:
        kwargs["json"] = case.response
    api.register_uri(case.method, BASE + case.path, **kwargs)
    result = case.call(hook)
    assert api.call_count == 1
    assert_sent(api, case.method, case.path, json_body=case.body, query=case.query)
    if case.returns is not ...:
        assert result == case.returns


def test_upload_image_multipart(hook: Any, api: Any) -> None:
    api.post(f"{BASE}{TG}/datasets/11/images", json=IMAGE, status_code=201)
    assert hook.upload_image(11, file=PNG, image_name="cat.png", content_moderation=False,
                             encoding="multipart") == IMAGE
    req = assert_sent(api, "POST", f"{TG}/datasets/11/images")
    assert req.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    raw = req.body
    assert b'name="file"; filename="cat.png"' in raw
    assert b"Content-Type: image/png" in raw
    assert PNG in raw
    assert b'name="content_moderation"\r\n\r\nfalse' in raw
    assert b'name="image_name"\r\n\r\ncat.png' in raw


def test_upload_image_multipart_url(hook: Any, api: Any) -> None:
    api.post(f"{BASE}{TG}/datasets/11/images", json=IMAGE, status_code=201)
    hook.upload_image(11, image_url="https://cdn.example/a.png", encoding="multipart")
    req = api.last_request
    assert req.headers["Content-Type"].startswith("multipart/form-data")
    assert b'name="image_url"\r\n\r\nhttps://cdn.example/a.png' in req.body


def test_generate_image_async_submission(hook: Any, api: Any) -> None:
    api.post(f"{BASE}/v2/image/generate/tailored", status_code=202,
             json={"request_id": "r-1", "status_url": f"{BASE}/v2/status/r-1"})
    resp = hook.generate_image(31, prompt="a cat", negative_prompt="dogs", tailored_model_influence=1.2,
                               guidance_scale=4, aspect_ratio="4:5", steps_num=30, seed=9,
                               prompt_content_moderation=False, visual_output_content_moderation=True,
                               webhook_url="https://hooks.example/bria")
    assert_sent(api, "POST", "/v2/image/generate/tailored", json_body={
        "tailored_model_id": "31", "prompt": "a cat", "negative_prompt": "dogs", "tailored_model_influence": 1.2,
        "guidance_scale": 4, "aspect_ratio": "4:5", "steps_num": 30, "seed": 9, "sync": False,
        "prompt_content_moderation": False, "visual_output_content_moderation": True,
        "webhook_url": "https://hooks.example/bria"})
    assert isinstance(resp, V2Response)
    assert resp.status is JobStatus.IN_PROGRESS
    assert (resp.request_id, resp.status_url) == ("r-1", f"{BASE}/v2/status/r-1")


@pytest.mark.parametrize(
    "body",
    [
        {"result": {"image_url": "https://x/i.png", "seed": "77", "structured_prompt": SCHEMA}, "request_id": "r"},
        {"image_url": "https://x/i.png", "structured_prompt": SCHEMA, "seed": 77},
    ],
    ids=["result-wrapped", "flat"],
)
def test_generate_image_sync_accepts_both_body_shapes(hook: Any, api: Any, body: dict[str, Any]) -> None:
    api.post(f"{BASE}/v2/image/generate/tailored", json=body)
    resp = hook.generate_image("31", structured_prompt=SCHEMA, seed=77, sync=True)
    assert api.last_request.json() == {"tailored_model_id": "31", "structured_prompt": SCHEMA, "seed": 77,
                                       "sync": True}
    assert resp.status is JobStatus.COMPLETED
    assert resp.image_url == "https://x/i.png"
    assert resp.seed == 77
    assert resp.structured_prompt == SCHEMA


def test_generate_structured_prompt(hook: Any, api: Any) -> None:
    api.post(f"{BASE}/v2/structured_prompt/generate/tailored", json={"structured_prompt": SCHEMA})
    resp = hook.generate_structured_prompt(31, prompt="bluer", structured_prompt=SCHEMA, seed=1, sync=True,
                                           prompt_content_moderation=True)
    assert_sent(api, "POST", "/v2/structured_prompt/generate/tailored", json_body={
        "tailored_model_id": "31", "prompt": "bluer", "structured_prompt": SCHEMA, "seed": 1, "sync": True,
        "prompt_content_moderation": True})
    assert resp.structured_prompt == SCHEMA
    assert resp.is_completed


def test_image_to_video(hook: Any, api: Any) -> None:
    api.post(f"{BASE}/v2/video/generate/tailored/image-to-video", status_code=202,
             json={"request_id": "v-1", "status_url": f"{BASE}/v2/status/v-1"})
    resp = hook.image_to_video(31, PNG, seed=3)
    assert_sent(api, "POST", "/v2/video/generate/tailored/image-to-video",
                json_body={"tailored_model_id": "31", "image": PNG_B64, "seed": 3})
    assert resp.status is JobStatus.IN_PROGRESS
    assert resp.request_id == "v-1"


def test_get_status_by_id_and_by_url(hook: Any, api: Any) -> None:
    api.get(f"{BASE}/v2/status/r-1", json={"status": "IN_PROGRESS", "request_id": "r-1"})
    assert hook.get_status("r-1").status is JobStatus.IN_PROGRESS
    assert_sent(api, "GET", "/v2/status/r-1", json_body=None)
    api.get(f"{BASE}/v2/status/r-2", status_code=202, json={"status": "completed",
                                                            "result": {"video_url": "https://x/v.mp4"}})
    resp = hook.get_status(f"{BASE}/v2/status/r-2")
    assert resp.status is JobStatus.COMPLETED
    assert resp.video_url == "https://x/v.mp4"
    assert resp.request_id == "r-2"


def test_get_status_foreign_status_url_is_polled_on_api_host(hook: Any, api: Any) -> None:
    api.get(f"{BASE}/v2/status/r-9", json={"status": "IN_PROGRESS"})
    hook.get_status("https://evil.example/v2/status/r-9")
    assert api.call_count == 1
    assert api.last_request.hostname == "bria.test"


def test_get_status_404_is_not_found(hook: Any, api: Any) -> None:
    api.get(f"{BASE}/v2/status/gone", status_code=404, json={"status": "NOT_FOUND"})
    resp = hook.get_status("gone")
    assert resp.status is JobStatus.NOT_FOUND
    assert resp.is_failure
    assert resp.request_id == "gone"


@pytest.mark.parametrize(
    ("name", "lookup", "listing", "path", "expected_id"),
    [
        ("find_project", lambda h: h.find_project("brand"),
         [{"id": 1, "project_name": "brand2"}, {"id": 2, "project_name": "brand"}], f"{TG}/projects", 2),
        ("find_dataset", lambda h: h.find_dataset(7, "ds"),
         [{"id": 3, "name": "ds"}, {"id": 4, "name": "DS"}], f"{TG}/projects/7/datasets", 3),
        ("find_model", lambda h: h.find_model(11, "m"),
         [{"id": 5, "name": "m", "dataset_id": 12}, {"id": 6, "name": "m", "dataset_id": 11, "status": "Created"},
          {"id": 8, "name": "m", "dataset_id": 11, "status": "Deleted"}], f"{TG}/models", 6),
    ],
)
def test_find_helpers_match_exactly(hook: Any, api: Any, name: str, lookup: Any, listing: list[dict[str, Any]],
                                    path: str, expected_id: int) -> None:
    api.get(BASE + path, json=listing)
    found = lookup(hook)
    assert found is not None
    assert found["id"] == expected_id
    assert_sent(api, "GET", path)


def test_find_returns_none_and_conflict_on_duplicates(hook: Any, api: Any) -> None:
    from airflow_provider_bria.exceptions import BriaConflictError

    api.get(f"{BASE}{TG}/projects", json=[{"id": 1, "project_name": "a"}, {"id": 2, "project_name": "a"}])
    assert hook.find_project("b") is None
    with pytest.raises(BriaConflictError, match="2 projects named 'a' match"):
        hook.find_project("a")


def test_bulk_upload_falls_back_to_bulk_alias_on_404(hook: Any, api: Any) -> None:
    api.post(f"{BASE}{TG}/datasets/11/images/bulk-upload", status_code=404, json={"detail": "Not Found"})
    api.post(f"{BASE}{TG}/datasets/11/images/bulk", status_code=202, json={"status": "pending"})
    assert hook.bulk_upload(11, "https://cdn.example/a.zip") == {"status": "pending"}
    assert [r.path for r in api.request_history] == [f"{TG}/datasets/11/images/bulk-upload",
                                                      f"{TG}/datasets/11/images/bulk"]


def test_bulk_upload_both_404_raises_the_first(hook: Any, api: Any) -> None:
    from airflow_provider_bria.exceptions import BriaNotFoundError

    api.post(f"{BASE}{TG}/datasets/11/images/bulk-upload", status_code=404, json={"message": "Dataset not found"})
    api.post(f"{BASE}{TG}/datasets/11/images/bulk", status_code=404, json={"message": "other"})
    with pytest.raises(BriaNotFoundError, match="Dataset not found"):
        hook.bulk_upload(11, "https://cdn.example/a.zip")


def test_download_dataset_falls_back_to_tailored_gen_path(hook: Any, api: Any) -> None:
    api.get(f"{BASE}/v1/datasets/11/download", status_code=404, json={"detail": "Not Found"})
    api.get(f"{BASE}{TG}/datasets/11/download", json={"download_url": "https://s3/x.zip"})
    assert hook.download_dataset(11)["download_url"] == "https://s3/x.zip"


def test_wait_for_job_polls_until_completed(hook: Any, api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import airflow_provider_bria.hooks._api_generation as gen

    naps: list[float] = []
    monkeypatch.setattr(gen, "_sleep", naps.append)
    api.get(f"{BASE}/v2/status/r-1", [
        {"json": {"status": "IN_PROGRESS"}},
        {"json": {"status": "IN_PROGRESS"}},
        {"json": {"status": "COMPLETED", "result": {"image_url": "https://x/1.png"}}},
    ])
    resp = hook.wait_for_job("r-1", poll_interval=0.5, timeout=30)
    assert resp.image_url == "https://x/1.png"
    assert api.call_count == 3
    assert naps == [0.5, 0.5]


@pytest.mark.parametrize("status", ["ERROR", "FAILED"])
def test_wait_for_job_raises_on_failure(hook: Any, api: Any, status: str) -> None:
    from airflow_provider_bria.exceptions import BriaJobError

    api.get(f"{BASE}/v2/status/r-1", json={"status": status, "request_id": "r-1",
                                           "error": {"code": 500, "message": "Internal Server Error",
                                                     "details": "boom"}})
    with pytest.raises(BriaJobError) as info:
        hook.wait_for_job("r-1")
    assert info.value.status == status
    assert info.value.request_id == "r-1"
    assert "Internal Server Error" in str(info.value)


@pytest.mark.parametrize("odd", ["UNKNOWN", "QUEUED_FOR_GPU", "paused"])
def test_wait_for_job_polls_on_through_unknown_statuses(
    hook: Any, api: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], odd: str
) -> None:
    """Only ERROR/FAILED fail: UNKNOWN (documented "should not occur") or a new value keeps polling, logged once."""
    import airflow_provider_bria.hooks._api_generation as gen

    monkeypatch.setattr(gen, "_sleep", lambda s: None)
    api.get(f"{BASE}/v2/status/r-1", [
        {"json": {"status": odd, "request_id": "r-1"}},
        {"json": {"status": odd, "request_id": "r-1"}},
        {"json": {"status": odd, "request_id": "r-1"}},
        {"json": {"status": "COMPLETED", "request_id": "r-1", "result": {"image_url": "https://x/1.png"}}},
    ])
    resp = hook.wait_for_job("r-1", poll_interval=1, timeout=60)
    assert resp.image_url == "https://x/1.png"
    assert api.call_count == 4
    logged = capsys.readouterr()
    assert (logged.out + logged.err).count(f"reports status {odd!r}") == 1


def test_wait_for_job_not_found_and_timeout(hook: Any, api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import airflow_provider_bria.hooks._api_generation as gen
    from airflow_provider_bria.exceptions import BriaJobError

    api.get(f"{BASE}/v2/status/gone", status_code=404, json={"status": "NOT_FOUND"})
    with pytest.raises(BriaJobError, match="unknown or expired") as info:
        hook.wait_for_job("gone")
    assert info.value.status == "NOT_FOUND"

    clock = iter([0.0, 0.0, 5.0, 11.0])
    monkeypatch.setattr(gen, "_clock", lambda: next(clock))
    monkeypatch.setattr(gen, "_sleep", lambda s: None)
    api.get(f"{BASE}/v2/status/slow", json={"status": "IN_PROGRESS"})
    with pytest.raises(BriaJobError, match="did not finish within 10 s") as info:
        hook.wait_for_job("slow", poll_interval=5, timeout=10)
    assert info.value.status == "IN_PROGRESS"
