"""Every operation of Bria's spec against the emulator, success and each documented error we can provoke.

Each response is judged by :mod:`spec_oracle` (Bria's OpenAPI extract), not by our contract module: its
status must be documented for that operation and its body must match the schema documented for that
status. The last test checks the coverage: every documented operation answered with a success here.
"""

from __future__ import annotations

import base64
import io
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import spec_oracle as spec

TG = "/v1/tailored-gen"
SCHEMA = json.dumps({"style_medium": "photograph", "color_palette": ["#ff0000"]})
COVERED: set[tuple[str, str, int]] = set()


def _image(color: str = "red", size: tuple[int, int] = (1024, 1024), fmt: str = "PNG") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


COLORS = ("red", "blue", "green", "purple", "orange")


class SpecClient:
    """Raw HTTP to the emulator; every answer is checked against Bria's spec for its operation."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url
        self.session = requests.Session()
        if token is not None:
            self.session.headers["api_token"] = token

    def call(self, method: str, template: str, expect: int, *, params: dict[str, Any] | None = None,
             **kwargs: Any) -> Any:
        path = template.format(**(params or {}))
        assert spec.match_path(method, path) == template
        resp = self.session.request(method, self.url + path, timeout=30, **kwargs)
        body = resp.json() if resp.content else None
        assert resp.status_code == expect, f"{method} {path}: {resp.status_code} {resp.text[:300]}"
        spec.validate_response(method, template, resp.status_code, body)
        COVERED.add((method.upper(), template, resp.status_code))
        return body


@pytest.fixture(scope="module")
def emu(start_emulator: Any) -> Iterator[Any]:
    process = start_emulator(training_seconds=0.3, job_seconds=0.2, extra_args=["--max-zip-mb", "1"])
    yield process
    process.stop()


@pytest.fixture
def c(emu: Any) -> SpecClient:
    emu.reset()
    return SpecClient(emu.url, emu.token)


def _project(c: SpecClient, **fields: Any) -> dict[str, Any]:
    body = {"project_name": "Brand", "ip_medium": "illustration", "ip_type": "stylized_scene", **fields}
    return c.call("POST", f"{TG}/projects", 201, json=body)


def _fibo_dataset(c: SpecClient, *, complete: bool, upload_type: str = "basic") -> dict[str, Any]:
    project = _project(c)
    dataset = c.call("POST", f"{TG}/datasets", 201, json={"project_id": project["id"], "name": "ds",
                                                          "upload_type": upload_type})
    c.call("PUT", f"{TG}/datasets/{{dataset_id}}", 200, params={"dataset_id": dataset["id"]},
           json={"visual_schema": SCHEMA})
    if upload_type == "basic":
        for color in COLORS:
            c.call("POST", f"{TG}/datasets/{{dataset_id}}/images", 201, params={"dataset_id": dataset["id"]},
                   json={"file": _b64(_image(color)), "image_name": f"{color}.png"})
    if complete:
        c.call("PUT", f"{TG}/datasets/{{dataset_id}}", 200, params={"dataset_id": dataset["id"]},
               json={"status": "completed"})
    return dataset


def _wait_model(c: SpecClient, model_id: int, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        model = c.call("GET", f"{TG}/models/{{model_id}}", 200, params={"model_id": model_id})
        if model["status"] == status:
            return model
        assert time.monotonic() < deadline, model["status"]
        time.sleep(0.05)


def _trained(c: SpecClient, mode: str = "fully_automated") -> dict[str, Any]:
    dataset = _fibo_dataset(c, complete=True)
    model = c.call("POST", f"{TG}/models", 201, json={"name": "m", "dataset_id": dataset["id"], "training_mode": mode})
    c.call("POST", f"{TG}/models/{{model_id}}/start_training", 200, params={"model_id": model["id"]}, json={})
    return _wait_model(c, model["id"], "Completed")


# --------------------------------------------------------------------------------------------


def test_projects(c: SpecClient, emu: Any) -> None:
    project = _project(c, ip_type="defined_character", ip_name="Lora", ip_description="a girl with purple hair")
    pid = {"project_id": project["id"]}
    c.call("POST", f"{TG}/projects", 400, json={"project_name": "x"})
    c.call("GET", f"{TG}/projects", 200)
    c.call("GET", f"{TG}/projects/{{project_id}}", 200, params=pid)
    c.call("GET", f"{TG}/projects/{{project_id}}", 404, params={"project_id": 999999})
    c.call("PUT", f"{TG}/projects/{{project_id}}", 200, params=pid, json={"project_name": "Renamed"})
    c.call("PUT", f"{TG}/projects/{{project_id}}", 404, params={"project_id": 999999}, json={"project_name": "x"})
    c.call("GET", f"{TG}/projects/{{project_id}}/datasets", 200, params=pid)
    c.call("GET", f"{TG}/projects/{{project_id}}/datasets", 404, params={"project_id": 999999})
    c.call("GET", f"{TG}/projects/{{project_id}}/models", 200, params=pid)
    c.call("GET", f"{TG}/projects/{{project_id}}/models", 404, params={"project_id": 999999})
    c.call("DELETE", f"{TG}/projects/{{project_id}}", 204, params=pid)
    c.call("DELETE", f"{TG}/projects/{{project_id}}", 404, params=pid)
    SpecClient(emu.url, None).call("GET", f"{TG}/projects", 401)
    SpecClient(emu.url, "wrong").call("POST", f"{TG}/projects", 401, json={})


def test_injected_403_429_500_on_every_family(c: SpecClient, emu: Any) -> None:
    for kind, status in (("quota", 403), ("subscription", 403), (429, 429), (500, 500)):
        emu.set_faults(0.0, rules=[{"path_regex": "^/v1/tailored-gen/projects$", "phase": "before", "kind": kind,
                                    "times": 2}])
        c.call("POST", f"{TG}/projects", status, json={"project_name": "p", "ip_medium": "photography",
                                                       "ip_type": "other"})
        c.call("GET", f"{TG}/projects", status)
    emu.set_faults(0.0, rules=[{"path_regex": "^/v2/status/", "phase": "before", "kind": 503}])
    c.call("GET", "/v2/status/{request_id}", 503, params={"request_id": "abc"})


def test_datasets(c: SpecClient, emu: Any) -> None:
    project = _project(c)
    c.call("POST", f"{TG}/datasets", 400, json={"project_id": project["id"]})
    c.call("POST", f"{TG}/datasets", 404, json={"project_id": 999999, "name": "x"})
    dataset = _fibo_dataset(c, complete=False)
    did = {"dataset_id": dataset["id"]}
    c.call("GET", f"{TG}/datasets", 200)
    c.call("GET", f"{TG}/datasets/{{dataset_id}}", 200, params=did)
    c.session.params = {"max_images": 0}
    c.call("GET", f"{TG}/datasets/{{dataset_id}}", 400, params=did)
    c.session.params = {}
    c.call("GET", f"{TG}/datasets/{{dataset_id}}", 404, params={"dataset_id": 999999})
    c.call("PUT", f"{TG}/datasets/{{dataset_id}}", 400, params=did, json={"status": "Completed"})
    c.call("PUT", f"{TG}/datasets/{{dataset_id}}", 404, params={"dataset_id": 999999}, json={"name": "x"})
    few = c.call("POST", f"{TG}/datasets", 201, json={"project_id": dataset["project_id"], "name": "few"})
    c.call("PUT", f"{TG}/datasets/{{dataset_id}}", 409, params={"dataset_id": few["id"]},
           json={"status": "completed"})
    clone = c.call("POST", f"{TG}/datasets/{{dataset_id}}/clone", 201, params=did, json={"name": "copy"})
    c.call("POST", f"{TG}/datasets/{{dataset_id}}/clone", 404, params={"dataset_id": 999999}, json={})
    c.call("DELETE", f"{TG}/datasets/{{dataset_id}}", 204, params={"dataset_id": clone["id"]})
    c.call("DELETE", f"{TG}/datasets/{{dataset_id}}", 404, params={"dataset_id": clone["id"]})
    c.call("PUT", f"{TG}/datasets/{{dataset_id}}", 200, params=did, json={"status": "completed"})
    model = c.call("POST", f"{TG}/models", 201, json={"name": "m", "dataset_id": dataset["id"]})
    emu.set_timing(training_seconds=60)
    c.call("POST", f"{TG}/models/{{model_id}}/start_training", 200, params={"model_id": model["id"]}, json={})
    c.call("DELETE", f"{TG}/datasets/{{dataset_id}}", 409, params=did)
    c.call("DELETE", f"{TG}/projects/{{project_id}}", 409, params={"project_id": dataset["project_id"]})
    c.call("DELETE", f"{TG}/models/{{model_id}}", 409, params={"model_id": model["id"]})
    c.call("GET", "/v1/datasets/{dataset_id}/download", 409, params=did)  # basic dataset
    c.call("GET", "/v1/datasets/{dataset_id}/download", 404, params={"dataset_id": 999999})


def test_images(c: SpecClient) -> None:
    dataset = _fibo_dataset(c, complete=False)
    did = {"dataset_id": dataset["id"]}
    images = c.call("GET", f"{TG}/datasets/{{dataset_id}}/images", 200, params=did)
    c.call("GET", f"{TG}/datasets/{{dataset_id}}/images", 404, params={"dataset_id": 999999})
    iid = {**did, "image_id": images[0]["id"]}
    c.call("GET", f"{TG}/datasets/{{dataset_id}}/images/{{image_id}}", 200, params=iid)
    c.call("GET", f"{TG}/datasets/{{dataset_id}}/images/{{image_id}}", 404, params={**did, "image_id": 999999})
    caption = json.dumps({"short_description": "a red square"})
    c.call("PUT", f"{TG}/datasets/{{dataset_id}}/images/{{image_id}}", 200, params=iid, json={"caption": caption})
    c.call("PUT", f"{TG}/datasets/{{dataset_id}}/images/{{image_id}}", 400, params=iid,
           json={"caption": caption, "regenerate_caption": True})
    c.call("PUT", f"{TG}/datasets/{{dataset_id}}/images/{{image_id}}", 404, params={**did, "image_id": 999999},
           json={"regenerate_caption": True})
    upload = f"{TG}/datasets/{{dataset_id}}/images"
    c.call("POST", upload, 400, params=did, json={"file": _b64(_image()), "image_url": "https://example.com/a.png"})
    c.call("POST", upload, 404, params={"dataset_id": 999999}, json={"file": _b64(_image())})
    c.call("POST", upload, 412, params=did, json={"file": _b64(_image(size=(300, 300))), "increase_resolution": False})
    c.call("POST", upload, 415, params=did, json={"file": _b64(_image(fmt="GIF"))})
    c.call("POST", upload, 422, params=did, json={"file": "not base64 !!"})
    c.call("PUT", upload, 202, params=did)
    c.call("PUT", upload, 404, params={"dataset_id": 999999})
    extra = c.call("POST", upload, 201, params=did, json={"file": _b64(_image("teal"))})
    c.call("DELETE", f"{TG}/datasets/{{dataset_id}}/images/{{image_id}}", 204, params={**did, "image_id": extra["id"]})
    c.call("DELETE", f"{TG}/datasets/{{dataset_id}}/images/{{image_id}}", 404,
           params={**did, "image_id": extra["id"]})
    c.call("PUT", f"{TG}/datasets/{{dataset_id}}", 200, params=did, json={"status": "completed"})
    c.call("POST", upload, 409, params=did, json={"file": _b64(_image("pink"))})
    c.call("PUT", f"{TG}/datasets/{{dataset_id}}/images/{{image_id}}", 409, params=iid, json={"caption": caption})
    c.call("DELETE", f"{TG}/datasets/{{dataset_id}}/images/{{image_id}}", 409, params=iid)


def test_bulk_upload_and_download(c: SpecClient, file_server: tuple[str, Path]) -> None:
    import zipfile

    base, root = file_server
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for color in COLORS:
            archive.writestr(f"{color}.png", _image(color))
    (root / "workflow.zip").write_bytes(buf.getvalue())
    with open(root / "huge.zip", "wb") as sparse:  # a sparse file: HEAD announces 2 MiB, over --max-zip-mb 1
        sparse.truncate(2 * 1024 * 1024)
    dataset = _fibo_dataset(c, complete=False, upload_type="advanced")
    did = {"dataset_id": dataset["id"]}
    bulk = f"{TG}/datasets/{{dataset_id}}/images/bulk-upload"
    c.call("GET", bulk + "/status", 404, params=did)
    c.call("POST", bulk, 413, params=did, json={"zip_url": f"{base}/huge.zip"})
    c.call("POST", bulk, 400, params=did, json={})
    c.call("POST", bulk, 404, params={"dataset_id": 999999}, json={"zip_url": f"{base}/workflow.zip"})
    c.call("POST", bulk, 202, params=did, json={"zip_url": f"{base}/workflow.zip"})
    deadline = time.monotonic() + 20
    while c.call("GET", bulk + "/status", 200, params=did)["status"] not in ("completed", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    c.call("POST", bulk, 400, params=did, json={"zip_url": f"{base}/workflow.zip"})  # one attempt only
    c.call("GET", "/v1/datasets/{dataset_id}/download", 200, params=did)


def test_helpers(c: SpecClient) -> None:
    images = [_b64(_image(color)) for color in COLORS]
    schema = c.call("POST", f"{TG}/generate_visual_schema", 200, json={"images": images})
    c.call("POST", f"{TG}/generate_visual_schema", 400, json={"images": images[:4]})
    c.call("POST", f"{TG}/generate_visual_schema", 415, json={"images": [_b64(_image(fmt="GIF"))] * 5})
    c.call("POST", f"{TG}/generate_visual_schema", 422, json={"images": ["bm90IGFuIGltYWdl"] * 5})
    c.call("POST", f"{TG}/generate_visual_schema", 415, data=json.dumps({"images": images}))  # no Content-Type
    dataset = _fibo_dataset(c, complete=False)
    body = {"dataset_id": dataset["id"], "structured_prompt": schema["visual_schema"], "instruction": "warmer"}
    c.call("POST", f"{TG}/refine_structured_prompt", 200, json=body)
    c.call("POST", f"{TG}/refine_structured_prompt", 400, json={**body, "instruction": None})
    c.call("POST", f"{TG}/refine_structured_prompt", 404, json={**body, "dataset_id": 999999})
    c.call("PUT", f"{TG}/datasets/{{dataset_id}}", 200, params={"dataset_id": dataset["id"]},
           json={"status": "completed"})
    c.call("POST", f"{TG}/refine_structured_prompt", 400, json=body)  # not a draft: 400, the documented code


def test_models_and_training(c: SpecClient, emu: Any) -> None:
    dataset = _fibo_dataset(c, complete=False)
    c.call("POST", f"{TG}/models", 400, json={"name": "m", "dataset_id": dataset["id"]})  # draft dataset
    c.call("POST", f"{TG}/models", 404, json={"name": "m", "dataset_id": 999999})
    c.call("PUT", f"{TG}/datasets/{{dataset_id}}", 200, params={"dataset_id": dataset["id"]},
           json={"status": "completed"})
    model = c.call("POST", f"{TG}/models", 201, json={"name": "m", "dataset_id": dataset["id"]})
    mid = {"model_id": model["id"]}
    missing = {"model_id": 999999}
    c.call("GET", f"{TG}/models", 200)
    c.session.params = {"include_training_parameters": "true"}
    c.call("GET", f"{TG}/models", 200)
    c.session.params = {}
    c.call("GET", f"{TG}/models/{{model_id}}", 404, params=missing)
    c.call("PUT", f"{TG}/models/{{model_id}}", 200, params=mid, json={"name": "renamed"})
    c.call("PUT", f"{TG}/models/{{model_id}}", 404, params=missing, json={"name": "x"})
    c.call("POST", f"{TG}/models/{{model_id}}/stop_training", 409, params=mid)
    c.call("POST", f"{TG}/models/{{model_id}}/stop_training", 404, params=missing)
    c.call("POST", f"{TG}/models/{{model_id}}/start_training", 400, params=mid, json={"rank": 64})
    c.call("POST", f"{TG}/models/{{model_id}}/start_training", 404, params=missing, json={})
    c.call("GET", f"{TG}/models/{{model_id}}/download", 400, params=mid)
    c.call("GET", f"{TG}/models/{{model_id}}/download", 404, params=missing)
    c.call("GET", f"{TG}/models/{{model_id}}/checkpoints", 400, params=mid)
    c.call("GET", f"{TG}/models/{{model_id}}/checkpoints", 404, params=missing)
    emu.set_timing(training_seconds=60)
    c.call("POST", f"{TG}/models/{{model_id}}/start_training", 200, params=mid, json={})
    c.call("POST", f"{TG}/models/{{model_id}}/start_training", 409, params=mid, json={})
    c.call("POST", f"{TG}/models/{{model_id}}/stop_training", 200, params=mid)
    _wait_model(c, model["id"], "Stopped")
    c.call("DELETE", f"{TG}/models/{{model_id}}", 204, params=mid)
    deleted = c.call("GET", f"{TG}/models/{{model_id}}", 200, params=mid)
    assert deleted["status"] == "Deleted"
    c.call("DELETE", f"{TG}/models/{{model_id}}", 404, params=mid)


def test_expert_checkpoints_and_download(c: SpecClient) -> None:
    model = _trained(c, mode="expert")
    mid = {"model_id": model["id"]}
    listing = c.call("GET", f"{TG}/models/{{model_id}}/checkpoints", 200, params=mid)
    steps = [str(item["checkpoint_step"]) for item in listing["checkpoints"]]
    other = next(step for step in steps if step != model["active_model_version"])
    c.call("GET", f"{TG}/models/{{model_id}}/checkpoints/{{checkpoint_step}}", 200,
           params={**mid, "checkpoint_step": other})
    c.call("GET", f"{TG}/models/{{model_id}}/checkpoints/{{checkpoint_step}}", 404,
           params={**mid, "checkpoint_step": "7"})
    c.call("DELETE", f"{TG}/models/{{model_id}}/checkpoints/{{checkpoint_step}}", 204,
           params={**mid, "checkpoint_step": other})
    c.call("DELETE", f"{TG}/models/{{model_id}}/checkpoints/{{checkpoint_step}}", 404,
           params={**mid, "checkpoint_step": other})
    c.call("DELETE", f"{TG}/models/{{model_id}}/checkpoints/{{checkpoint_step}}", 400,
           params={**mid, "checkpoint_step": model["active_model_version"]})
    c.call("GET", f"{TG}/models/{{model_id}}/download", 200, params=mid)


def test_upload_model(c: SpecClient) -> None:
    project = _project(c)
    url = "https://example.com/weights.safetensors"
    c.call("POST", f"{TG}/models/upload_model", 200, json={"model_url": url, "project_id": project["id"]})
    c.call("POST", f"{TG}/models/upload_model", 200,
           json={"model_url": url, "project_parameters": {"project_name": "p", "ip_medium": "illustration",
                                                          "ip_type": "defined_character"}})
    c.call("POST", f"{TG}/models/upload_model", 400, json={"model_url": url})
    c.call("POST", f"{TG}/models/upload_model", 404, json={"model_url": url, "project_id": 999999})
    c.call("POST", f"{TG}/models/upload_model", 415, json={"model_url": "https://e.com/m.ckpt",
                                                           "project_id": project["id"]})
    c.call("POST", f"{TG}/models/upload_model", 422, json={"model_url": "s3://b/m.safetensors",
                                                           "project_id": project["id"]})


def _wait_job(c: SpecClient, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        body = c.call("GET", "/v2/status/{request_id}", 200, params={"request_id": request_id})
        if body["status"] != "IN_PROGRESS":
            return body
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_v2_generation_and_status(c: SpecClient, emu: Any) -> None:
    model = _trained(c)
    tid = str(model["id"])
    image = "/v2/image/generate/tailored"
    sync = c.call("POST", image, 200, json={"tailored_model_id": tid, "prompt": "a red fox", "sync": True})
    accepted = c.call("POST", image, 202, json={"tailored_model_id": tid, "prompt": "a red fox", "seed": 3})
    assert set(accepted) == {"request_id", "status_url"}
    c.call("GET", "/v2/status/{request_id}", 200, params={"request_id": accepted["request_id"]})  # IN_PROGRESS
    assert _wait_job(c, accepted["request_id"])["status"] == "COMPLETED"
    failed = c.call("POST", image, 202, json={"tailored_model_id": tid, "prompt": "fail-job please"})
    assert _wait_job(c, failed["request_id"])["status"] == "ERROR"
    c.call("POST", image, 400, json={"prompt": "x"})
    c.call("POST", image, 403, json={"tailored_model_id": "999999", "prompt": "x"})
    c.call("POST", image, 422, json={"tailored_model_id": tid, "prompt": "something forbidden", "sync": True})
    c.call("GET", "/v2/status/{request_id}", 404, params={"request_id": "no-such-job"})
    sp = "/v2/structured_prompt/generate/tailored"
    c.call("POST", sp, 200, json={"tailored_model_id": tid, "prompt": "a fox", "sync": True})
    queued = c.call("POST", sp, 202, json={"tailored_model_id": tid, "prompt": "a fox"})
    assert _wait_job(c, queued["request_id"])["status"] == "COMPLETED"
    c.call("POST", sp, 400, json={"tailored_model_id": tid})
    c.call("POST", sp, 403, json={"tailored_model_id": "999999", "prompt": "x"})
    c.call("POST", sp, 422, json={"tailored_model_id": tid, "prompt": "forbidden", "sync": True})
    video = "/v2/video/generate/tailored/image-to-video"
    clip = c.call("POST", video, 202, json={"tailored_model_id": tid, "image": sync["result"]["image_url"]})
    assert _wait_job(c, clip["request_id"])["status"] == "COMPLETED"
    c.call("POST", video, 400, json={"tailored_model_id": tid})
    c.call("POST", video, 404, json={"tailored_model_id": "999999", "image": _b64(_image())})
    c.call("POST", video, 415, json={"tailored_model_id": tid, "image": _b64(_image(fmt="GIF"))})
    c.call("POST", video, 422, json={"tailored_model_id": tid, "image": "bm90IGFuIGltYWdl"})
    SpecClient(emu.url, None).call("POST", video, 401, json={"tailored_model_id": tid, "image": "x"})


@pytest.mark.skipif(os.environ.get("PYTEST_XDIST_WORKER") is not None, reason="needs the whole module")
def test_every_documented_operation_answered_with_a_success() -> None:
    succeeded = {(m, t) for m, t, status in COVERED if status < 300}
    missing = [op for op in spec.operations() if op not in succeeded]
    assert not missing, f"operations never driven to a success: {missing}"
    assert len({(m, t, s) for m, t, s in COVERED if s >= 400}) >= 80  # distinct documented error cases driven
