"""Contract tests, raw HTTP: generate_visual_schema, generate_prefix, refine_structured_prompt (§5)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from emulator_helpers import COLORS, TG, Api, make_image, message_shape


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_visual_schema_is_json_derived_from_the_images(api: Api) -> None:
    reds = [_b64(make_image((200 + i, 10, 10))) for i in range(5)]
    blues = [_b64(make_image((10, 10, 200 + i))) for i in range(5)]
    red_schema = json.loads(api.ok("POST", f"{TG}/generate_visual_schema", json={"images": reds})["visual_schema"])
    blue_schema = json.loads(api.ok("POST", f"{TG}/generate_visual_schema", json={"images": blues})["visual_schema"])
    assert "red" in red_schema["dominant_colors"]
    assert "blue" in blue_schema["dominant_colors"]
    assert red_schema["composition"]["image_count"] == 5
    assert red_schema["composition"]["framing"] == ["square"]
    assert red_schema != blue_schema
    # deterministic for the same images
    again = json.loads(api.ok("POST", f"{TG}/generate_visual_schema", json={"images": reds})["visual_schema"])
    assert again == red_schema


def test_visual_schema_accepts_urls_and_data_uris(api: Api, file_server: tuple[str, Path]) -> None:
    base, root = file_server
    (root / "schema-wide.png").write_bytes(make_image("green", (2048, 1024)))
    images = [f"{base}/schema-wide.png"] * 3 + ["data:image/png;base64," + _b64(make_image("green"))] * 2
    schema = json.loads(api.ok("POST", f"{TG}/generate_visual_schema", json={"images": images})["visual_schema"])
    assert schema["composition"]["framing"] == ["landscape", "square"]


@pytest.mark.parametrize(
    ("images", "status", "fragment"),
    [
        (4, 400, "5-10 images, got 4"),
        (11, 400, "5-10 images, got 11"),
        ("gif", 415, "Unsupported"),
        ("garbage", 422, "Invalid image data"),
        ("nobase64", 422, "neither"),
        ("ftp", 400, "http(s)"),
        (None, 400, "images is required"),
    ],
)
def test_visual_schema_errors(api: Api, images: object, status: int, fragment: str) -> None:
    good = _b64(make_image("red"))
    payload: object
    if isinstance(images, int):
        payload = [good] * images
    elif images is None:
        payload = None
    else:
        bad = {
            "gif": _b64(make_image("red", fmt="GIF")),
            "garbage": _b64(b"xx"),
            "nobase64": "***",
            "ftp": "ftp://example.com/a.png",
        }[images]
        payload = [good] * 4 + [bad]
    resp = api.post(f"{TG}/generate_visual_schema", json={"images": payload} if payload is not None else {})
    assert resp.status_code == status, resp.text
    assert fragment in message_shape(resp.json())


def test_visual_schema_moderation_hook(api: Api, file_server: tuple[str, Path]) -> None:
    base, root = file_server
    (root / "moderation-block.png").write_bytes(make_image("red"))
    images = [_b64(make_image("red"))] * 4 + [f"{base}/moderation-block.png"]
    resp = api.post(f"{TG}/generate_visual_schema", json={"images": images, "content_moderation": True})
    assert resp.status_code == 422
    assert api.post(f"{TG}/generate_visual_schema", json={"images": images}).status_code == 200


def test_generate_prefix(api: Api, file_server: tuple[str, Path]) -> None:
    base, root = file_server
    (root / "prefix.png").write_bytes(make_image("purple"))
    body = api.ok(
        "POST",
        f"{TG}/generate_prefix",
        json={
            "image_urls": [f"{base}/prefix.png"],
            "ip_type": "defined_character",
            "ip_medium": "illustration",
            "ip_name": "Lora",
        },
    )
    assert body["prefix"].startswith("An illustration of Lora")
    assert "purple" in body["prefix"]
    scene = api.ok(
        "POST",
        f"{TG}/generate_prefix",
        json={
            "images": [_b64(make_image(c)) for c in COLORS[:6]],
            "ip_type": "stylized_scene",
            "ip_medium": "photography",
        },
    )
    assert scene["prefix"].startswith("A photo of a scene")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"ip_type": "stylized_scene", "ip_medium": "photography"}, "exactly one of image_urls or images"),
        (
            {
                "images": ["IMG"],
                "image_urls": ["http://x/y.png"],
                "ip_type": "stylized_scene",
                "ip_medium": "photography",
            },
            "exactly one",
        ),
        ({"images": ["IMG"] * 7, "ip_type": "stylized_scene", "ip_medium": "photography"}, "1-6 images, got 7"),
        ({"images": ["IMG"], "ip_type": "icons", "ip_medium": "illustration"}, "not supported by generate_prefix"),
        ({"images": ["IMG"], "ip_type": "stylized_scene", "ip_medium": "paint"}, "Invalid ip_medium"),
        ({"images": ["IMG"], "ip_type": "defined_character", "ip_medium": "illustration"}, "ip_name is required"),
        ({"image_urls": ["file:///etc/hosts"], "ip_type": "stylized_scene", "ip_medium": "photography"}, "http(s)"),
    ],
)
def test_generate_prefix_errors(api: Api, body: dict, fragment: str) -> None:
    image = _b64(make_image("red"))
    body = {k: ([image if i == "IMG" else i for i in v] if isinstance(v, list) else v) for k, v in body.items()}
    resp = api.post(f"{TG}/generate_prefix", json=body)
    assert resp.status_code == 400
    assert fragment in message_shape(resp.json())


def test_refine_structured_prompt(api: Api) -> None:
    dataset = api.dataset(api.project(training_version="fibo")["id"])
    original = json.dumps({"short_description": "a cat", "lighting": "soft"})
    body = api.ok(
        "POST",
        f"{TG}/refine_structured_prompt",
        json={
            "dataset_id": dataset["id"],
            "structured_prompt": original,
            "instruction": "make it dramatic",
            "context_images": [_b64(make_image("red"))],
        },
    )
    refined = json.loads(body["structured_prompt"])
    assert refined["lighting"] == "soft"
    assert refined["edit_instructions"] == ["make it dramatic"]
    assert "make it dramatic" in refined["short_description"]
    # not saved anywhere: refining again starts from what is sent
    again = json.loads(
        api.ok(
            "POST",
            f"{TG}/refine_structured_prompt",
            json={
                "dataset_id": dataset["id"],
                "structured_prompt": body["structured_prompt"],
                "instruction": "add rain",
            },
        )["structured_prompt"]
    )
    assert again["edit_instructions"] == ["make it dramatic", "add rain"]


def test_refine_errors(api: Api, images: list[bytes]) -> None:
    dataset = api.dataset(api.project(training_version="fibo")["id"])
    cases = [
        ({"structured_prompt": "{}", "instruction": "x"}, 400),
        ({"dataset_id": dataset["id"], "structured_prompt": "not json", "instruction": "x"}, 400),
        ({"dataset_id": dataset["id"], "structured_prompt": "[1]", "instruction": "x"}, 400),
        ({"dataset_id": dataset["id"], "structured_prompt": "{}"}, 400),
        ({"dataset_id": dataset["id"], "structured_prompt": "{}", "instruction": "x", "context_images": "y"}, 400),
        ({"dataset_id": 999999, "structured_prompt": "{}", "instruction": "x"}, 404),
    ]
    for body, status in cases:
        resp = api.post(f"{TG}/refine_structured_prompt", json=body)
        assert resp.status_code == status, body
        message_shape(resp.json())
    completed = api.fibo_dataset(images, complete=True)
    resp = api.post(
        f"{TG}/refine_structured_prompt",
        json={"dataset_id": completed["id"], "structured_prompt": "{}", "instruction": "x"},
    )
    assert resp.status_code == 400  # refine documents 400, not 409
    assert "draft" in message_shape(resp.json())
