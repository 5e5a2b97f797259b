"""End-to-end workflows in raw HTTP, exactly as a client of the real API would run them."""

from __future__ import annotations

import base64
import io
import json
import time
from typing import Any

from emulator_helpers import COLORS, TG, Api, make_image
from PIL import Image


def test_full_fibo_workflow(api: Api, emulator: Any) -> None:
    """project -> dataset -> schema -> 5 uploads -> completed -> model -> training -> Completed -> v2 generation
    -> status -> PNG download."""
    emulator.set_timing(training_seconds=1.5, job_seconds=0.2)  # the GETs must see InProgress: > 1 s of margin
    project = api.ok(
        "POST",
        f"{TG}/projects",
        201,
        json={
            "project_name": "Branded Character",
            "ip_medium": "illustration",
            "ip_type": "defined_character",
            "ip_name": "Lora",
            "ip_description": "A female character with purple hair",
            "training_version": "fibo",
        },
    )
    dataset = api.ok(
        "POST",
        f"{TG}/datasets",
        201,
        json={"project_id": project["id"], "name": "dataset v1", "training_version": "fibo"},
    )
    samples = [base64.b64encode(make_image(c)).decode() for c in COLORS[:5]]
    schema = api.ok("POST", f"{TG}/generate_visual_schema", json={"images": samples})["visual_schema"]
    assert isinstance(json.loads(schema), dict)
    api.ok("PUT", f"{TG}/datasets/{dataset['id']}", json={"visual_schema": schema})
    for index, sample in enumerate(samples):
        image = api.ok(
            "POST",
            f"{TG}/datasets/{dataset['id']}/images",
            201,
            json={"file": sample, "image_name": f"lora_{index}.png"},
        )
        assert json.loads(image["caption"])["style_medium"] == json.loads(schema)["style_medium"]
    completed = api.ok("PUT", f"{TG}/datasets/{dataset['id']}", json={"status": "completed"})
    assert completed["status"] == "completed"
    model = api.ok(
        "POST",
        f"{TG}/models",
        201,
        json={
            "name": "Lora v1",
            "dataset_id": dataset["id"],
            "training_mode": "fully_automated",
            "training_version": "fibo",
        },
    )
    assert model["status"] == "Created"
    assert api.ok("POST", f"{TG}/models/{model['id']}/start_training", json={})["status"] == "InProgress"
    seen = set()
    deadline = time.monotonic() + 10
    while True:
        status = api.ok("GET", f"{TG}/models/{model['id']}")["status"]
        seen.add(status)
        if status == "Completed":
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert seen == {"InProgress", "Completed"}
    job = api.ok(
        "POST",
        "/v2/image/generate/tailored",
        202,
        json={
            "tailored_model_id": str(model["id"]),
            "prompt": "Lora reading in a cafe",
            "aspect_ratio": "3:4",
            "seed": 11,
        },
    )
    result = None
    while result is None or result["status"] == "IN_PROGRESS":
        time.sleep(0.05)
        result = api.ok("GET", f"/v2/status/{job['request_id']}")
    assert result["status"] == "COMPLETED"
    png = api.session.get(result["result"]["image_url"], timeout=10)
    image = Image.open(io.BytesIO(png.content))
    assert image.format == "PNG"
    assert image.size == (384, 512)
    state = emulator.state()
    assert state["counts"] == {
        **state["counts"],
        "projects": 1,
        "datasets": 1,
        "images": 5,
        "models": 1,
        "trainings_started": 1,
        "generation_jobs": 1,
        "faults_injected": 0,
    }
    assert state["duplicates"] == {"projects": [], "datasets": [], "models": [], "images": []}


def test_legacy_workflow(api: Api, emulator: Any) -> None:
    """Legacy: prefix -> dataset with caption_prefix -> uploads -> completed -> light model -> v1 text-to-image."""
    emulator.set_timing(training_seconds=0.2)
    project = api.project(ip_medium="photography", ip_type="stylized_scene")
    samples = [base64.b64encode(make_image(c)).decode() for c in COLORS[:6]]
    prefix = api.ok(
        "POST",
        f"{TG}/generate_prefix",
        json={"images": samples, "ip_type": "stylized_scene", "ip_medium": "photography"},
    )["prefix"]
    dataset = api.dataset(project["id"], training_version="3.2")
    api.ok("PUT", f"{TG}/datasets/{dataset['id']}", json={"caption_prefix": prefix})
    for index, sample in enumerate(samples[:5]):  # the spec: 5 images to complete
        image = api.ok(
            "POST",
            f"{TG}/datasets/{dataset['id']}/images",
            201,
            json={"file": sample, "image_name": f"scene{index}.png"},
        )
        assert image["caption"].startswith(prefix)
    api.ok("PUT", f"{TG}/datasets/{dataset['id']}", json={"status": "completed"})
    model = api.model(dataset["id"], training_version="light")
    assert model["training_version"] == "light"
    started = api.ok("POST", f"{TG}/models/{model['id']}/start_training", json={})
    assert started["generation_prefix"] == prefix
    api.wait_model(model["id"], ("Completed",))
    body = api.ok(
        "POST",
        f"/v1/text-to-image/tailored/{model['id']}",
        json={"prompt": "a street at dusk", "num_results": 1, "sync": True},
    )
    url = body["result"][0]["urls"][0]
    assert Image.open(io.BytesIO(api.session.get(url, timeout=10).content)).size == (512, 512)
