"""Contract tests, raw HTTP: dataset images (§4.9-4.14): encodings, formats, resolution, limits, captions."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
from pathlib import Path

import pytest
from emulator_helpers import TG, Api, make_image, message_shape

IMAGE_FIELDS = {
    "id",
    "dataset_id",
    "caption",
    "caption_source",
    "upload_source_url",
    "image_name",
    "image_url",
    "thumbnail_url",
    "created_at",
    "updated_at",
}
SCHEMA = json.dumps({"style_medium": "digital illustration", "background_setting": "studio"})


def _fibo(api: Api, *, schema: str | None = SCHEMA) -> dict:
    dataset = api.dataset(api.project(training_version="fibo")["id"])
    if schema:
        api.ok("PUT", f"{TG}/datasets/{dataset['id']}", json={"visual_schema": schema})
    return dataset


def test_upload_json_base64(api: Api) -> None:
    dataset = _fibo(api)
    data = make_image("red")
    body = api.upload(dataset["id"], data, "hero.png")
    assert set(body) == IMAGE_FIELDS
    assert body["dataset_id"] == dataset["id"]
    assert body["image_name"] == "hero.png"
    assert body["caption_source"] == "automatic"
    assert body["upload_source_url"] is None
    assert api.session.get(body["image_url"], timeout=10).content == data
    thumb = api.session.get(body["thumbnail_url"], timeout=10)
    assert thumb.headers["content-type"] == "image/png"
    from PIL import Image

    assert max(Image.open(io.BytesIO(thumb.content)).size) == 256


def test_fibo_caption_is_json_derived_from_schema_and_image(api: Api) -> None:
    dataset = _fibo(api)
    red = api.upload(dataset["id"], make_image("red"), "red_one.png")
    blue = api.upload(dataset["id"], make_image("blue"), "blue_one.png")
    red_caption, blue_caption = json.loads(red["caption"]), json.loads(blue["caption"])
    assert red_caption["background_setting"] == "studio"  # from the schema
    assert red_caption["style_medium"] == "digital illustration"
    assert "red" in red_caption["dominant_colors"]
    assert "blue" in blue_caption["dominant_colors"]
    assert red_caption["short_description"].startswith("red one")
    dataset_body = api.ok("GET", f"{TG}/datasets/{dataset['id']}")
    assert dataset_body["captions_update_status"] == "completed"


def test_fibo_without_schema_leaves_captions_pending(api: Api) -> None:
    dataset = _fibo(api, schema=None)
    body = api.upload(dataset["id"], make_image("red"))
    assert body["caption"] is None
    assert body["caption_source"] == "pending"
    assert api.ok("GET", f"{TG}/datasets/{dataset['id']}")["captions_update_status"] == "empty"


def test_legacy_caption_continues_prefix(api: Api) -> None:
    project = api.project(ip_type="defined_character", ip_name="Rex", ip_description="a green dinosaur")
    dataset = api.dataset(project["id"], training_version="max")
    assert dataset["caption_prefix"] == "An illustration of Rex,"
    body = api.upload(dataset["id"], make_image("green"), "rex_running.png")
    assert body["caption"].startswith("An illustration of Rex, rex running in green tones")


def test_upload_image_url_from_served_file(api: Api, file_server: tuple[str, Path]) -> None:
    base, root = file_server
    data = make_image("teal", fmt="JPEG")
    (root / "teal photo.jpg").write_bytes(data)
    dataset = _fibo(api)
    url = f"{base}/teal%20photo.jpg"
    body = api.ok("POST", f"{TG}/datasets/{dataset['id']}/images", 201, json={"image_url": url})
    assert body["image_name"] == "teal photo.jpg"
    assert body["upload_source_url"] == url
    assert api.session.get(body["image_url"], timeout=10).content == data


def test_upload_image_url_from_emulator_file(api: Api) -> None:
    dataset = _fibo(api)
    first = api.upload(dataset["id"], make_image("pink"), "pink.png")
    second = api.ok(
        "POST",
        f"{TG}/datasets/{dataset['id']}/images",
        201,
        json={"image_url": first["image_url"], "image_name": "copy.png"},
    )
    assert second["image_name"] == "copy.png"
    state = api.session.get(f"{api.url}/_emulator/state", timeout=10).json()
    digest = hashlib.sha256(make_image("pink")).hexdigest()
    assert state["duplicates"]["images"] == [[dataset["id"], digest]]


def test_upload_multipart(api: Api) -> None:
    dataset = _fibo(api)
    data = make_image("orange", fmt="WEBP")
    resp = api.post(
        f"{TG}/datasets/{dataset['id']}/images",
        files={"file": ("orange.webp", data, "image/webp")},
        data={"increase_resolution": "false", "content_moderation": "true"},
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["image_name"] == "orange.webp"
    assert api.session.get(resp.json()["image_url"], timeout=10).headers["content-type"] == "image/webp"


def test_default_image_name_from_format(api: Api) -> None:
    dataset = _fibo(api)
    body = api.ok(
        "POST",
        f"{TG}/datasets/{dataset['id']}/images",
        201,
        json={"file": base64.b64encode(make_image("red", fmt="JPEG")).decode()},
    )
    assert body["image_name"] == "image.jpg"


@pytest.mark.parametrize(
    ("payload", "status", "fragment"),
    [
        ({"file": base64.b64encode(make_image("red", fmt="GIF")).decode()}, 415, "Unsupported image format"),
        ({"file": base64.b64encode(make_image("red", fmt="BMP")).decode()}, 415, "Unsupported image format"),
        ({"file": base64.b64encode(b"definitely not an image").decode()}, 422, "Invalid image data"),
        ({"file": "%%% not base64 %%%"}, 422, "base64"),
        (
            {"file": base64.b64encode(make_image("red", (800, 800))).decode(), "increase_resolution": False},
            412,
            "below the minimum 1024x1024",
        ),
        (
            {"file": base64.b64encode(make_image("red", (1024, 1000))).decode(), "increase_resolution": False},
            412,
            "1024x1000",
        ),
        ({"file": base64.b64encode(make_image("red", (200, 200))).decode()}, 412, "below the minimum 256x256"),
        ({}, 400, "Exactly one of file or image_url"),
        ({"file": "aGk=", "image_url": "http://example.invalid/x.png"}, 400, "Exactly one"),
        ({"image_url": "ftp://example.com/x.png"}, 422, "http(s)"),
        ({"image_url": "http://127.0.0.1:9/missing.png"}, 422, "Could not download"),
        (
            {
                "file": base64.b64encode(make_image("red")).decode(),
                "image_name": "x-moderation-block.png",
                "content_moderation": True,
            },
            422,
            "moderation",
        ),
        ({"file": 12}, 400, "base64 string"),
        ({"file": base64.b64encode(make_image("red")).decode(), "increase_resolution": "maybe"}, 400, "boolean"),
    ],
)
def test_upload_rejections(api: Api, payload: dict, status: int, fragment: str) -> None:
    dataset = _fibo(api)
    resp = api.post(f"{TG}/datasets/{dataset['id']}/images", json=payload)
    assert resp.status_code == status, resp.text
    assert fragment in message_shape(resp.json())
    assert api.ok("GET", f"{TG}/datasets/{dataset['id']}/images") == []


def test_upscaling_allowed_by_default_and_moderation_off_by_default(api: Api) -> None:
    dataset = _fibo(api)
    api.upload(dataset["id"], make_image("red", (300, 300)), "small.png")
    api.upload(dataset["id"], make_image("red"), "moderation-block.png")  # content_moderation defaults to false
    assert len(api.ok("GET", f"{TG}/datasets/{dataset['id']}/images")) == 2


def test_upload_to_advanced_dataset_400_and_unknown_dataset_404(api: Api) -> None:
    project = api.project(training_version="fibo")
    advanced = api.dataset(project["id"], upload_type="advanced")
    resp = api.post(f"{TG}/datasets/{advanced['id']}/images", json={"file": "aGk="})
    assert resp.status_code == 400
    assert "bulk" in message_shape(resp.json())
    assert api.post(f"{TG}/datasets/999999/images", json={"file": "aGk="}).status_code == 404


def test_basic_dataset_limit_is_200_images(api: Api) -> None:
    dataset = _fibo(api, schema=None)
    small = base64.b64encode(make_image("gray", (256, 256))).decode()
    for index in range(200):
        api.ok("POST", f"{TG}/datasets/{dataset['id']}/images", 201, json={"file": small, "image_name": f"{index}.png"})
    resp = api.post(f"{TG}/datasets/{dataset['id']}/images", json={"file": small})
    assert resp.status_code == 409
    assert "200" in message_shape(resp.json())
    assert api.ok("GET", f"{TG}/datasets/{dataset['id']}", params={"max_images": 1})["images_count"] == 200


def test_get_list_and_delete_image(api: Api) -> None:
    dataset = _fibo(api)
    first = api.upload(dataset["id"], make_image("red"))
    second = api.upload(dataset["id"], make_image("blue"))
    assert [i["id"] for i in api.ok("GET", f"{TG}/datasets/{dataset['id']}/images")] == [first["id"], second["id"]]
    assert api.ok("GET", f"{TG}/datasets/{dataset['id']}/images/{first['id']}") == first
    other = _fibo(api)
    resp = api.get(f"{TG}/datasets/{other['id']}/images/{first['id']}")
    assert resp.status_code == 404
    assert message_shape(resp.json()) == "Image or dataset not found"
    assert api.delete(f"{TG}/datasets/{dataset['id']}/images/{first['id']}").status_code == 204
    assert api.get(f"{TG}/datasets/{dataset['id']}/images/{first['id']}").status_code == 404
    assert api.session.get(first["image_url"], timeout=10).status_code == 404
    assert api.delete(f"{TG}/datasets/{dataset['id']}/images/{first['id']}").status_code == 404


def test_update_caption_manual_and_regenerate(api: Api) -> None:
    dataset = _fibo(api)
    image = api.upload(dataset["id"], make_image("red"))
    path = f"{TG}/datasets/{dataset['id']}/images/{image['id']}"
    manual = api.ok("PUT", path, json={"caption": json.dumps({"subject": "a red square"})})
    assert manual["caption_source"] == "manual"
    assert json.loads(manual["caption"]) == {"subject": "a red square"}
    repaired = api.ok("PUT", path, json={"caption": '```json\n{"subject": "fenced", }\n```'})
    assert json.loads(repaired["caption"]) == {"subject": "fenced"}
    regenerated = api.ok("PUT", path, json={"regenerate_caption": True})
    assert regenerated["caption_source"] == "automatic"
    assert regenerated["caption"] == image["caption"]


@pytest.mark.parametrize(
    "body",
    [
        {"caption": "not json at all"},
        {"caption": "[1, 2]"},
        {"caption": "{}", "regenerate_caption": True},
        {},
        {"regenerate_caption": False},
        {"caption": ""},
    ],
)
def test_update_caption_errors_use_error_shape(api: Api, body: dict) -> None:
    dataset = _fibo(api)
    image = api.upload(dataset["id"], make_image("red"))
    resp = api.put(f"{TG}/datasets/{dataset['id']}/images/{image['id']}", json=body)
    assert resp.status_code == 400
    assert set(resp.json()) == {"error"}
    assert isinstance(resp.json()["error"], str)


def test_legacy_caption_is_plain_text(api: Api) -> None:
    dataset = api.dataset(api.project()["id"], training_version="light")
    image = api.upload(dataset["id"], make_image("red"))
    body = api.ok("PUT", f"{TG}/datasets/{dataset['id']}/images/{image['id']}", json={"caption": "plain words"})
    assert body["caption"] == "plain words"


def test_regenerate_caption_needs_schema(api: Api) -> None:
    dataset = _fibo(api, schema=None)
    image = api.upload(dataset["id"], make_image("red"))
    resp = api.put(f"{TG}/datasets/{dataset['id']}/images/{image['id']}", json={"regenerate_caption": True})
    assert resp.status_code == 409
    message_shape(resp.json())


def test_regenerate_all_captions(api: Api, fast: object) -> None:
    dataset = _fibo(api, schema=None)
    assert api.put(f"{TG}/datasets/{dataset['id']}/images").status_code == 400  # no schema yet
    first = api.upload(dataset["id"], make_image("red"))
    api.upload(dataset["id"], make_image("blue"))
    api.ok(
        "PUT",
        f"{TG}/datasets/{dataset['id']}/images/{first['id']}",
        json={"caption": None, "regenerate_caption": True},
        status=409,
    )
    api.ok("PUT", f"{TG}/datasets/{dataset['id']}", json={"visual_schema": SCHEMA})
    body = api.ok("PUT", f"{TG}/datasets/{dataset['id']}/images", 202)
    assert body["captions_update_status"] == "in_progress"
    assert body["id"] == dataset["id"]
    deadline = time.monotonic() + 5
    while api.ok("GET", f"{TG}/datasets/{dataset['id']}")["captions_update_status"] != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    for image in api.ok("GET", f"{TG}/datasets/{dataset['id']}/images"):
        assert image["caption_source"] == "automatic"
        assert json.loads(image["caption"])["background_setting"] == "studio"
    assert api.put(f"{TG}/datasets/999999/images").status_code == 404
