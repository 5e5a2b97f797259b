"""Contract tests, raw HTTP: bulk (advanced) upload (§4.15-4.16): one ZIP per empty advanced dataset."""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from emulator_helpers import TG, Api, make_image, message_shape

SCHEMA = json.dumps({"style_medium": "photograph"})


def _zip(root: Path, entries: dict[str, bytes]) -> str:
    name = f"{uuid.uuid4().hex}.zip"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for entry, data in entries.items():
            archive.writestr(entry, data)
    (root / name).write_bytes(buf.getvalue())
    return name


def _advanced(api: Api, version: str = "fibo", schema: bool = True) -> dict[str, Any]:
    dataset = api.dataset(api.project()["id"], training_version=version, upload_type="advanced")
    if schema and version == "fibo":
        api.ok("PUT", f"{TG}/datasets/{dataset['id']}", json={"visual_schema": SCHEMA})
    return dataset


def _wait(api: Api, dataset_id: int, path: str = "bulk-upload") -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        body = api.ok("GET", f"{TG}/datasets/{dataset_id}/images/{path}/status")
        if body["status"] in ("completed", "failed"):
            return body
        assert body["status"] in ("pending", "processing")
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_bulk_upload_happy_path_with_per_image_failures(api: Api, file_server: tuple[str, Path]) -> None:
    base, root = file_server
    entries = {
        "a/red.png": make_image("red"),
        "b/blue.jpg": make_image("blue", fmt="JPEG"),
        "green.webp": make_image("green", fmt="WEBP"),
        "small.png": make_image("red", (512, 512)),  # bulk has no increase_resolution: 1024 minimum
        "../escape.png": make_image("red"),
        "notes.txt": b"ignored for FIBO",
        "anim.gif": make_image("red", fmt="GIF"),
        "broken.png": b"not a png",
        "__MACOSX/._red.png": b"junk",
    }
    dataset = _advanced(api)
    resp = api.post(
        f"{TG}/datasets/{dataset['id']}/images/bulk-upload", json={"zip_url": f"{base}/{_zip(root, entries)}"}
    )
    assert resp.status_code == 202
    status = _wait(api, dataset["id"])
    assert status["status"] == "completed"
    assert status["done"] == 3
    assert status["failed"] == 4
    assert status["total_processed"] == 7
    assert status["progress_percentage"] == 100
    failures = {f["filename"]: f for f in status["failed_images"]}
    assert set(failures) == {"small.png", "../escape.png", "anim.gif", "broken.png"}
    assert failures["small.png"]["error_code"] == 412
    assert failures["../escape.png"]["error_code"] == 400
    assert failures["anim.gif"]["error_code"] == 415
    assert failures["broken.png"]["error_code"] == 422
    assert all(isinstance(f["error_message"], str) and f["error_message"] for f in failures.values())
    images = api.ok("GET", f"{TG}/datasets/{dataset['id']}/images")
    assert sorted(i["image_name"] for i in images) == ["blue.jpg", "green.webp", "red.png"]
    assert all(i["caption_source"] == "automatic" and json.loads(i["caption"]) for i in images)
    assert api.session.get(images[0]["image_url"], timeout=10).status_code == 200


def test_bulk_is_one_shot_and_needs_empty_advanced_dataset(api: Api, file_server: tuple[str, Path]) -> None:
    base, root = file_server
    url = f"{base}/{_zip(root, {'x.png': make_image('red')})}"
    dataset = _advanced(api)
    api.ok("POST", f"{TG}/datasets/{dataset['id']}/images/bulk-upload", 202, json={"zip_url": url})
    _wait(api, dataset["id"])
    again = api.post(f"{TG}/datasets/{dataset['id']}/images/bulk-upload", json={"zip_url": url})
    assert again.status_code == 400
    assert "already" in message_shape(again.json()) or "empty" in message_shape(again.json())
    basic = api.dataset(api.project()["id"], training_version="fibo")
    resp = api.post(f"{TG}/datasets/{basic['id']}/images/bulk-upload", json={"zip_url": url})
    assert resp.status_code == 400
    assert "advanced" in message_shape(resp.json())
    assert api.post(f"{TG}/datasets/999999/images/bulk-upload", json={"zip_url": url}).status_code == 404


def test_failed_attempt_still_counts(api: Api, file_server: tuple[str, Path]) -> None:
    base, root = file_server
    (root / "not-a-zip.zip").write_bytes(b"plain text")
    dataset = _advanced(api)
    api.ok("POST", f"{TG}/datasets/{dataset['id']}/images/bulk-upload", 202, json={"zip_url": f"{base}/not-a-zip.zip"})
    status = _wait(api, dataset["id"])
    assert status["status"] == "failed"
    assert "ZIP" in status["message"]
    good = f"{base}/{_zip(root, {'x.png': make_image('red')})}"
    resp = api.post(f"{TG}/datasets/{dataset['id']}/images/bulk-upload", json={"zip_url": good})
    assert resp.status_code == 400
    assert "already attempted" in message_shape(resp.json())


def test_unreachable_zip_fails_the_job(api: Api) -> None:
    dataset = _advanced(api)
    api.ok(
        "POST",
        f"{TG}/datasets/{dataset['id']}/images/bulk-upload",
        202,
        json={"zip_url": "http://127.0.0.1:9/nothing.zip"},
    )
    status = _wait(api, dataset["id"])
    assert status["status"] == "failed"
    assert status["done"] == 0


@pytest.mark.parametrize("zip_url", ["file:///etc/passwd", "ftp://example.com/a.zip", "s3://bucket/a.zip", "x"])
def test_non_http_zip_url_is_400(api: Api, zip_url: str) -> None:
    dataset = _advanced(api)
    resp = api.post(f"{TG}/datasets/{dataset['id']}/images/bulk-upload", json={"zip_url": zip_url})
    assert resp.status_code == 400
    assert "http(s)" in message_shape(resp.json())
    assert api.get(f"{TG}/datasets/{dataset['id']}/images/bulk-upload/status").status_code == 404


def test_missing_zip_url_is_400(api: Api) -> None:
    dataset = _advanced(api)
    resp = api.post(f"{TG}/datasets/{dataset['id']}/images/bulk-upload", json={})
    assert resp.status_code == 400
    message_shape(resp.json())


def test_bulk_alias_path(api: Api, file_server: tuple[str, Path]) -> None:
    base, root = file_server
    dataset = _advanced(api, schema=False)
    api.ok(
        "POST",
        f"{TG}/datasets/{dataset['id']}/images/bulk",
        202,
        json={"zip_url": f"{base}/{_zip(root, {'x.png': make_image('red')})}"},
    )
    status = _wait(api, dataset["id"], path="bulk")
    assert status["done"] == 1
    # FIBO without a schema: uploaded, captioning skipped
    image = api.ok("GET", f"{TG}/datasets/{dataset['id']}/images")[0]
    assert image["caption"] is None
    assert image["caption_source"] == "pending"


def test_legacy_manual_captions_from_txt(api: Api, file_server: tuple[str, Path]) -> None:
    base, root = file_server
    entries = {"cat.png": make_image("red"), "cat.txt": b"a red cat", "dog.png": make_image("blue")}
    dataset = _advanced(api, version="max")
    api.ok(
        "POST",
        f"{TG}/datasets/{dataset['id']}/images/bulk-upload",
        202,
        json={"zip_url": f"{base}/{_zip(root, entries)}", "automatic_captioning": False},
    )
    status = _wait(api, dataset["id"])
    assert status["done"] == 1
    assert [f["filename"] for f in status["failed_images"]] == ["dog.png"]
    image = api.ok("GET", f"{TG}/datasets/{dataset['id']}/images")[0]
    assert image["caption"] == "a red cat"
    assert image["caption_source"] == "manual"
    assert api.ok("GET", f"{TG}/datasets/{dataset['id']}")["captions_source"] == "manual"


def test_moderation_in_bulk(api: Api, file_server: tuple[str, Path]) -> None:
    base, root = file_server
    entries = {"ok.png": make_image("red"), "moderation-block.png": make_image("blue")}
    dataset = _advanced(api)
    api.ok(
        "POST",
        f"{TG}/datasets/{dataset['id']}/images/bulk-upload",
        202,
        json={"zip_url": f"{base}/{_zip(root, entries)}", "content_moderation": True},
    )
    status = _wait(api, dataset["id"])
    assert status["done"] == 1
    assert status["failed_images"][0]["error_code"] == 422


def test_zip_over_the_size_limit_is_413(start_emulator: Any, file_server: tuple[str, Path]) -> None:
    base, root = file_server
    import os

    (root / "big.zip").write_bytes(os.urandom(1024 * 1024 + 10))
    emu = start_emulator(extra_args=["--max-zip-mb", "1"])
    api = Api(emu.url, emu.token)
    dataset = _advanced(api)
    resp = api.post(f"{TG}/datasets/{dataset['id']}/images/bulk-upload", json={"zip_url": f"{base}/big.zip"})
    assert resp.status_code == 413
    assert "limit" in message_shape(resp.json())
    emu.stop()


def test_status_404_without_job(api: Api) -> None:
    dataset = _advanced(api)
    resp = api.get(f"{TG}/datasets/{dataset['id']}/images/bulk-upload/status")
    assert resp.status_code == 404
    message_shape(resp.json())


def test_completion_of_advanced_dataset_after_bulk(api: Api, file_server: tuple[str, Path]) -> None:
    base, root = file_server
    entries = {f"{c}.png": make_image(c) for c in ("red", "blue", "green", "purple", "orange")}
    dataset = _advanced(api)
    api.ok(
        "POST",
        f"{TG}/datasets/{dataset['id']}/images/bulk-upload",
        202,
        json={"zip_url": f"{base}/{_zip(root, entries)}"},
    )
    assert _wait(api, dataset["id"])["done"] == 5
    body = api.ok("PUT", f"{TG}/datasets/{dataset['id']}", json={"status": "completed"})
    assert body["status"] == "completed"


@pytest.mark.parametrize(("variant", "served", "refused"), [("documented", "bulk-upload", "bulk"),
                                                           ("alternate", "bulk", "bulk-upload")])
def test_path_variants_switch(start_emulator: Any, file_server: tuple[str, Path], variant: str, served: str,
                              refused: str) -> None:
    """``--path-variants`` serves one spelling of each doubly documented path, so client fallbacks run both ways."""
    base, root = file_server
    emu = start_emulator(extra_args=["--path-variants", variant])
    try:
        api = Api(emu.url, emu.token)
        dataset = _advanced(api)
        url = f"{base}/{_zip(root, {'a.png': make_image('red')})}"
        off = api.post(f"{TG}/datasets/{dataset['id']}/images/{refused}", json={"zip_url": url})
        assert off.status_code == 404
        message_shape(off.json())
        assert api.post(f"{TG}/datasets/{dataset['id']}/images/{served}", json={"zip_url": url}).status_code == 202
        assert _wait(api, dataset["id"], served)["status"] == "completed"
        assert api.get(f"{TG}/datasets/{dataset['id']}/images/{refused}/status").status_code == 404
        documented, alternate = f"/v1/datasets/{dataset['id']}/download", f"{TG}/datasets/{dataset['id']}/download"
        on_path, off_path = (documented, alternate) if variant == "documented" else (alternate, documented)
        assert api.get(on_path).status_code == 200
        assert api.get(off_path).status_code == 404
    finally:
        emu.stop()


def test_bulk_202_carries_no_undocumented_fields(api: Api, file_server: tuple[str, Path]) -> None:
    base, root = file_server
    dataset = _advanced(api)
    url = f"{base}/{_zip(root, {'a.png': make_image('red')})}"
    assert api.ok("POST", f"{TG}/datasets/{dataset['id']}/images/bulk-upload", 202, json={"zip_url": url}) == {}
