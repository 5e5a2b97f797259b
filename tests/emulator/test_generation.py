"""Contract tests, raw HTTP: v2 generation and status (§7.1-7.3, §8), legacy v1 generation (§7.4-7.5)."""

from __future__ import annotations

import base64
import io
import json
import struct
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from emulator_helpers import TG, Api, make_image, message_shape, v2_shape
from PIL import Image

IMAGE = "/v2/image/generate/tailored"
STRUCTURED = "/v2/structured_prompt/generate/tailored"
VIDEO = "/v2/video/generate/tailored/image-to-video"


@pytest.fixture
def model(api: Api, emulator: Any) -> dict[str, Any]:
    """A trained FIBO model (instant training on small images; jobs take 0.1 s)."""
    emulator.set_timing(training_seconds=0, job_seconds=0.1)
    return api.trained_model([make_image(c, (256, 256)) for c in ("red", "blue", "green", "purple", "orange")])


def _png(api: Api, url: str) -> Image.Image:
    resp = api.session.get(url, timeout=10)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "image/png"
    img = Image.open(io.BytesIO(resp.content))
    assert img.format == "PNG"
    img.load()
    return img


def test_async_image_job(api: Api, model: dict[str, Any], emulator: Any) -> None:
    emulator.set_timing(job_seconds=1.0)  # the first GET must see IN_PROGRESS, also on a loaded machine
    resp = api.post(IMAGE, json={"tailored_model_id": str(model["id"]), "prompt": "a red fox", "seed": 7})
    assert resp.status_code == 202
    body = resp.json()
    assert set(body) == {"request_id", "status_url"}
    parts = urlsplit(body["status_url"])
    assert f"{parts.scheme}://{parts.netloc}" == api.url
    assert parts.path == f"/v2/status/{body['request_id']}"
    first = api.ok("GET", f"/v2/status/{body['request_id']}")
    assert first == {"status": "IN_PROGRESS", "request_id": body["request_id"]}
    done = api.session.get(body["status_url"], timeout=10)  # polling the status_url is equivalent
    while done.json()["status"] == "IN_PROGRESS":
        time.sleep(0.02)
        done = api.session.get(body["status_url"], timeout=10)
    result = done.json()
    assert result["status"] == "COMPLETED"
    assert result["request_id"] == body["request_id"]
    assert result["result"]["seed"] == 7
    assert result["result"]["prompt"] == "a red fox"
    assert json.loads(result["result"]["structured_prompt"])["short_description"] == "a red fox"
    assert _png(api, result["result"]["image_url"]).size == (512, 512)


@pytest.mark.parametrize(
    ("ratio", "size"),
    [
        ("1:1", (512, 512)),
        ("16:9", (512, 288)),
        ("9:16", (288, 512)),
        ("2:3", (341, 512)),
        ("4:5", (410, 512)),
        ("3:2", (512, 341)),
    ],
)
def test_png_size_matches_aspect_ratio(api: Api, model: dict[str, Any], ratio: str, size: tuple[int, int]) -> None:
    body = api.ok(
        "POST", IMAGE, json={"tailored_model_id": model["id"], "prompt": "x", "aspect_ratio": ratio, "sync": True}
    )
    img = _png(api, body["result"]["image_url"])
    assert img.size == size
    w, h = (int(p) for p in ratio.split(":"))
    assert abs(img.size[0] / img.size[1] - w / h) < 0.01


def test_same_seed_same_png_other_seed_other_png(api: Api, model: dict[str, Any]) -> None:
    def render(seed: int, prompt: str = "a castle") -> bytes:
        body = api.ok(
            "POST", IMAGE, json={"tailored_model_id": str(model["id"]), "prompt": prompt, "seed": seed, "sync": True}
        )
        return api.session.get(body["result"]["image_url"], timeout=10).content

    first = render(42)
    assert render(42) == first
    assert render(43) != first
    assert render(42, "a boat") != first
    img = Image.open(io.BytesIO(first)).convert("RGB")
    assert len(set(img.getdata())) > 10  # not a flat placeholder


def test_structured_prompt_recreates_the_image(api: Api, model: dict[str, Any]) -> None:
    first = api.ok(
        "POST", IMAGE, json={"tailored_model_id": str(model["id"]), "prompt": "a tree", "seed": 3, "sync": True}
    )
    again = api.ok(
        "POST",
        IMAGE,
        json={
            "tailored_model_id": str(model["id"]),
            "seed": 3,
            "sync": True,
            "structured_prompt": first["result"]["structured_prompt"],
        },
    )
    assert again["result"]["structured_prompt"] == first["result"]["structured_prompt"]
    one = api.session.get(first["result"]["image_url"], timeout=10).content
    assert api.session.get(again["result"]["image_url"], timeout=10).content == one
    refined = api.ok(
        "POST",
        IMAGE,
        json={
            "tailored_model_id": str(model["id"]),
            "seed": 3,
            "sync": True,
            "structured_prompt": first["result"]["structured_prompt"],
            "prompt": "at night",
        },
    )
    assert json.loads(refined["result"]["structured_prompt"])["edit_instructions"] == ["at night"]


def test_sync_body_is_result_wrapped_with_flat_mirror(api: Api, model: dict[str, Any]) -> None:
    resp = api.post(IMAGE, json={"tailored_model_id": str(model["id"]), "prompt": "a cat", "sync": True})
    assert resp.status_code == 200
    body = resp.json()
    assert set(body["result"]) == {"image_url", "seed", "structured_prompt", "prompt"}
    for key, value in body["result"].items():
        assert body[key] == value
    assert isinstance(body["request_id"], str)
    assert isinstance(body["result"]["seed"], int)
    status = api.ok("GET", f"/v2/status/{body['request_id']}")
    assert status["status"] == "COMPLETED"
    assert status["result"] == body["result"]


def test_moderation_hook(api: Api, model: dict[str, Any]) -> None:
    resp = api.post(IMAGE, json={"tailored_model_id": str(model["id"]), "prompt": "a Forbidden temple"})
    assert resp.status_code == 422
    v2_shape(resp.json(), 422)
    allowed = api.post(
        IMAGE,
        json={
            "tailored_model_id": str(model["id"]),
            "prompt": "a forbidden temple",
            "prompt_content_moderation": False,
        },
    )
    assert allowed.status_code == 202
    not_a_word = api.post(IMAGE, json={"tailored_model_id": str(model["id"]), "prompt": "unforbiddenness"})
    assert not_a_word.status_code == 202


def test_fail_job_hook(api: Api, model: dict[str, Any]) -> None:
    body = api.ok("POST", IMAGE, 202, json={"tailored_model_id": str(model["id"]), "prompt": "please fail-job"})
    done = api.wait_job(body["request_id"])
    assert done["status"] == "ERROR"
    assert set(done) == {"status", "error", "request_id"}
    assert set(done["error"]) == {"code", "message", "details"}
    sync = api.post(IMAGE, json={"tailored_model_id": str(model["id"]), "prompt": "fail-job", "sync": True})
    assert sync.status_code == 500
    v2_shape(sync.json(), 500)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"prompt": None}, "Either prompt or structured_prompt"),
        ({"prompt": "   "}, "Either prompt or structured_prompt"),
        ({"structured_prompt": "{not json"}, "valid JSON"),
        ({"aspect_ratio": "7:3"}, "Invalid aspect_ratio"),
        ({"steps_num": 10}, "steps_num must be between 20 and 50"),
        ({"guidance_scale": 6}, "guidance_scale must be between 3 and 5"),
        ({"guidance_scale": 4.5}, "must be an integer"),
        ({"tailored_model_influence": 2}, "tailored_model_influence"),
        ({"seed": "abc"}, "seed"),
        ({"sync": "maybe"}, "sync must be a boolean"),
        ({"prompt": 5}, "prompt must be a string"),
    ],
)
def test_image_validation_400_v2_shape(api: Api, model: dict[str, Any], extra: dict, fragment: str) -> None:
    body = {"tailored_model_id": str(model["id"]), "prompt": "ok", **extra}
    resp = api.post(IMAGE, json={k: v for k, v in body.items() if v is not None})
    assert resp.status_code == 400
    v2_shape(resp.json(), 400)
    assert fragment in resp.json()["error"]["details"]


def test_model_checks(api: Api, images: list[bytes], emulator: Any) -> None:
    emulator.set_timing(training_seconds=0)
    unknown = api.post(IMAGE, json={"tailored_model_id": "999999", "prompt": "x"})
    assert unknown.status_code == 403
    v2_shape(unknown.json(), 403)
    assert unknown.json()["error"]["details"] == "Model does not belong to organization"
    assert api.post(IMAGE, json={"prompt": "x"}).status_code == 400
    created = api.model(api.fibo_dataset(images, complete=True)["id"])
    not_ready = api.post(IMAGE, json={"tailored_model_id": str(created["id"]), "prompt": "x"})
    assert not_ready.status_code == 400
    assert "not ready" in not_ready.json()["error"]["details"]
    legacy = api.model(api.legacy_dataset("max")["id"])
    api.ok("POST", f"{TG}/models/{legacy['id']}/start_training", json={})
    api.wait_model(legacy["id"], ("Completed",))
    resp = api.post(IMAGE, json={"tailored_model_id": str(legacy["id"]), "prompt": "x"})
    assert resp.status_code == 400
    assert "legacy" in resp.json()["error"]["details"]


def test_structured_prompt_endpoint(api: Api, model: dict[str, Any]) -> None:
    body = api.ok("POST", STRUCTURED, 202, json={"tailored_model_id": str(model["id"]), "prompt": "a lighthouse"})
    done = api.wait_job(body["request_id"])
    assert done["status"] == "COMPLETED"
    assert set(done["result"]) == {"structured_prompt", "seed"}
    structured = json.loads(done["result"]["structured_prompt"])
    assert structured["short_description"] == "a lighthouse"
    assert "style_medium" in structured  # shaped by the model's visual schema
    refined = api.ok(
        "POST",
        STRUCTURED,
        json={
            "tailored_model_id": str(model["id"]),
            "prompt": "in fog",
            "structured_prompt": done["result"]["structured_prompt"],
            "sync": True,
        },
    )
    assert json.loads(refined["structured_prompt"])["edit_instructions"] == ["in fog"]
    assert refined["result"]["structured_prompt"] == refined["structured_prompt"]
    only_structured = api.post(
        STRUCTURED,
        json={"tailored_model_id": str(model["id"]), "structured_prompt": done["result"]["structured_prompt"]},
    )
    assert only_structured.status_code == 400
    v2_shape(only_structured.json(), 400)
    moderated = api.post(STRUCTURED, json={"tailored_model_id": str(model["id"]), "prompt": "forbidden"})
    assert moderated.status_code == 422


def test_image_to_video(api: Api, model: dict[str, Any]) -> None:
    image = api.ok(
        "POST",
        IMAGE,
        json={"tailored_model_id": str(model["id"]), "prompt": "a wave", "aspect_ratio": "16:9", "sync": True},
    )
    resp = api.post(
        VIDEO,
        json={"tailored_model_id": str(model["id"]), "image": image["result"]["image_url"], "seed": 1, "sync": True},
    )
    assert resp.status_code == 202  # always asynchronous
    done = api.wait_job(resp.json()["request_id"])
    assert done["status"] == "COMPLETED"
    assert done["result"]["seed"] == 1
    video = api.session.get(done["result"]["video_url"], timeout=10)
    assert video.headers["content-type"] == "video/mp4"
    assert done["result"]["video_url"].endswith(".mp4")
    boxes = _top_level_boxes(video.content)
    assert [kind for kind, _, _ in boxes] == ["ftyp", "mdat", "moov"]
    assert video.content[8:12] == b"isom"
    _, start, end = boxes[1]
    first_frame = video.content[start:end]
    frame = Image.open(io.BytesIO(first_frame))
    assert frame.format == "JPEG"
    assert frame.size == (256, 144)
    assert b"mvhd" in video.content
    assert b"jpeg" in video.content
    # base64 input and the model_id alias work too
    encoded = base64.b64encode(make_image("red")).decode()
    alias = api.post(VIDEO, json={"model_id": model["id"], "image": encoded})
    assert alias.status_code == 202


def _top_level_boxes(data: bytes) -> list[tuple[str, int, int]]:
    boxes, offset = [], 0
    while offset < len(data):
        (size,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8].decode()
        assert size >= 8
        boxes.append((kind, offset + 8, offset + size))
        offset += size
    assert offset == len(data)
    return boxes


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"tailored_model_id": "999999", "image": "IMG"}, 404),
        ({"tailored_model_id": "MID"}, 400),
        ({"tailored_model_id": "MID", "image": base64.b64encode(b"junk").decode()}, 422),
        ({"tailored_model_id": "MID", "image": base64.b64encode(make_image("red", fmt="GIF")).decode()}, 415),
        ({"image": "IMG"}, 400),
    ],
)
def test_video_errors(api: Api, model: dict[str, Any], body: dict, status: int) -> None:
    encoded = base64.b64encode(make_image("red")).decode()
    body = {k: (str(model["id"]) if v == "MID" else encoded if v == "IMG" else v) for k, v in body.items()}
    resp = api.post(VIDEO, json=body)
    assert resp.status_code == status
    v2_shape(resp.json(), status)


def test_status_unknown_is_404_not_found(api: Api) -> None:
    resp = api.get("/v2/status/does-not-exist")
    assert resp.status_code == 404
    assert resp.json() == {"status": "NOT_FOUND"}


def test_generated_file_names_are_unguessable(api: Api, model: dict[str, Any], emulator: Any) -> None:
    body = api.ok("POST", IMAGE, 202, json={"tailored_model_id": str(model["id"]), "prompt": "x", "seed": 1})
    rid = body["request_id"]
    done = api.wait_job(rid)
    url = done["result"]["image_url"]
    name = url.rsplit("/", 1)[-1]
    assert len(name) > len(f"gen-{rid}.png") + 30  # 128 random bits besides the request id
    assert api.session.get(f"{api.url}/_emulator/files/gen-{rid}.png", timeout=10).status_code == 404
    assert _png(api, url).size == (512, 512)
    again = api.wait_job(api.ok("POST", IMAGE, 202, json={"tailored_model_id": str(model["id"]), "prompt": "x"})[
        "request_id"
    ])
    assert again["result"]["image_url"].rsplit("/", 1)[-1][-36:] != name[-36:]


# --------------------------------------------------------------------------------------------
# Legacy v1
# --------------------------------------------------------------------------------------------


@pytest.fixture
def legacy_model(api: Api, emulator: Any) -> dict[str, Any]:
    emulator.set_timing(training_seconds=0, job_seconds=0.1)
    project = api.project(ip_type="defined_character", ip_name="Rex", ip_description="a dinosaur")
    dataset = api.legacy_dataset("light", project_id=project["id"])
    model = api.model(dataset["id"])
    api.ok("POST", f"{TG}/models/{model['id']}/start_training", json={})
    return api.wait_model(model["id"], ("Completed",))


def test_legacy_text_to_image_sync(api: Api, legacy_model: dict[str, Any]) -> None:
    body = api.ok(
        "POST",
        f"/v1/text-to-image/tailored/{legacy_model['id']}",
        json={"prompt": "Rex running", "num_results": 2, "aspect_ratio": "4:3", "seed": 10},
    )
    assert set(body) == {"result"}
    assert len(body["result"]) == 2
    assert [r["seed"] for r in body["result"]] == [10, 11]
    for item in body["result"]:
        assert _png(api, item["urls"][0]).size == (512, 384)
    again = api.ok(
        "POST",
        f"/v1/text-to-image/tailored/{legacy_model['id']}",
        json={"prompt": "Rex running", "aspect_ratio": "4:3", "seed": 10},
    )
    first = api.session.get(body["result"][0]["urls"][0], timeout=10).content
    assert api.session.get(again["result"][0]["urls"][0], timeout=10).content == first
    no_prefix = api.ok(
        "POST",
        f"/v1/text-to-image/tailored/{legacy_model['id']}",
        json={"prompt": "Rex running", "aspect_ratio": "4:3", "seed": 10, "include_generation_prefix": False},
    )
    assert api.session.get(no_prefix["result"][0]["urls"][0], timeout=10).content != first


def test_legacy_async_placeholder_urls(api: Api, legacy_model: dict[str, Any], emulator: Any) -> None:
    emulator.set_timing(job_seconds=1.5)  # the first GET must still find no image, also on a loaded machine
    body = api.ok("POST", f"/v1/text-to-image/tailored/{legacy_model['id']}", json={"prompt": "x", "sync": False})
    url = body["result"][0]["urls"][0]
    assert api.session.get(url, timeout=10).status_code == 404
    deadline = time.monotonic() + 5
    while api.session.get(url, timeout=10).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_legacy_text_to_vector(api: Api, legacy_model: dict[str, Any]) -> None:
    body = api.ok("POST", f"/v1/text-to-vector/tailored/{legacy_model['id']}", json={"prompt": "icon"})
    resp = api.session.get(body["result"][0]["urls"][0], timeout=10)
    assert resp.headers["content-type"].startswith("image/svg+xml")
    assert resp.text.startswith("<svg")


def test_legacy_errors(api: Api, legacy_model: dict[str, Any], model: dict[str, Any]) -> None:
    path = f"/v1/text-to-image/tailored/{legacy_model['id']}"
    cases = [
        ({}, 400),
        ({"prompt": "x", "num_results": 9}, 400),
        ({"prompt": "x", "aspect_ratio": "7:1"}, 400),
        ({"prompt": "x", "guidance_method_1": "controlnet_magic"}, 400),
        ({"prompt": "forbidden", "content_moderation": True}, 422),
        ({"prompt": "fail-job"}, 500),
    ]
    for body, status in cases:
        resp = api.post(path, json=body)
        assert resp.status_code == status, body
        message_shape(resp.json())
    assert api.post(path, json={"prompt": "forbidden"}).status_code == 200  # moderation off by default
    fibo = api.post(f"/v1/text-to-image/tailored/{model['id']}", json={"prompt": "x"})
    assert fibo.status_code == 400
    assert "FIBO" in message_shape(fibo.json())
    assert api.post("/v1/text-to-image/tailored/999999", json={"prompt": "x"}).status_code == 404


def test_generation_jobs_counted(api: Api, model: dict[str, Any], emulator: Any) -> None:
    for _ in range(3):
        api.ok("POST", IMAGE, 202, json={"tailored_model_id": str(model["id"]), "prompt": "x"})
    assert emulator.state()["counts"]["generation_jobs"] == 3
