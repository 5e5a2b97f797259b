"""Contract tests, raw HTTP: datasets (§4.1-4.8): family locking, completion rules, freezing, clone, download."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from emulator_helpers import COLORS, TG, Api, make_image, message_shape

DATASET_FIELDS = {
    "id",
    "project_id",
    "name",
    "description",
    "training_version",
    "caption_prefix",
    "visual_schema",
    "status",
    "captions_update_status",
    "upload_type",
    "captions_source",
    "created_at",
    "updated_at",
}
SCHEMA = json.dumps({"style_medium": "photograph", "color_palette": ["#ff0000"]})


def test_create_defaults_and_shape(api: Api) -> None:
    project = api.project()
    body = api.dataset(project["id"], name="dataset v1")
    assert set(body) == DATASET_FIELDS
    assert body["status"] == "draft"
    assert body["captions_update_status"] == "empty"
    assert body["upload_type"] == "basic"
    assert body["visual_schema"] is None
    assert body["captions_source"] is None
    # no training_version: FIBO (the newest spec has no legacy at all; the seed says "Select Fibo")
    assert body["training_version"] == "fibo"
    assert body["caption_prefix"] is None
    # the unlocked project is now locked to the dataset's family
    assert api.ok("GET", f"{TG}/projects/{project['id']}")["training_version"] == "fibo"


def test_fibo_dataset_has_no_caption_prefix(api: Api) -> None:
    project = api.project()
    body = api.dataset(project["id"], training_version="fibo", upload_type="advanced")
    assert body["caption_prefix"] is None
    assert body["captions_source"] == "automatic"
    assert api.ok("GET", f"{TG}/projects/{project['id']}")["training_version"] == "fibo"


def test_dataset_inherits_locked_project_version(api: Api) -> None:
    project = api.project(training_version="fibo")
    assert api.dataset(project["id"])["training_version"] == "fibo"


@pytest.mark.parametrize(
    ("project_version", "dataset_version", "status"),
    [
        ("fibo", "max", 400),  # create dataset documents 400, not 409
        ("fibo", "3.2", 400),
        ("max", "fibo", 400),
        ("light", "fibo", 400),
        ("max", "light", 201),
        ("3.2", "bria-2.3", 201),
        ("bria-3.2", "max", 201),
        ("fibo", "fibo", 201),
    ],
)
def test_project_family_lock(api: Api, project_version: str, dataset_version: str, status: int) -> None:
    project = api.project(training_version=project_version)
    resp = api.post(
        f"{TG}/datasets", json={"project_id": project["id"], "name": "d", "training_version": dataset_version}
    )
    assert resp.status_code == status, resp.text
    if status == 400:
        assert "cannot be mixed" in message_shape(resp.json())


def test_lock_set_by_first_dataset_then_enforced(api: Api) -> None:
    project = api.project()
    api.dataset(project["id"], training_version="3.2")
    resp = api.post(f"{TG}/datasets", json={"project_id": project["id"], "name": "d2", "training_version": "fibo"})
    assert resp.status_code == 400
    assert api.dataset(project["id"], training_version="light")["training_version"] == "light"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"name": "d"}, 400),
        ({"project_id": "PID", "name": ""}, 400),
        ({"project_id": "PID", "name": "d", "upload_type": "huge"}, 400),
        ({"project_id": "PID", "name": "d", "training_version": "sdxl"}, 400),
        ({"project_id": 987654, "name": "d"}, 404),
    ],
)
def test_create_errors(api: Api, body: dict, status: int) -> None:
    project = api.project()
    body = {k: (project["id"] if v == "PID" else v) for k, v in body.items()}
    resp = api.post(f"{TG}/datasets", json=body)
    assert resp.status_code == status
    message_shape(resp.json())


def test_lists_and_counts(api: Api, images: list[bytes]) -> None:
    dataset = api.fibo_dataset(images[:2], schema=False)
    other_project = api.project(project_name="other")
    other = api.dataset(other_project["id"], name="other")
    listing = {d["id"]: d for d in api.ok("GET", f"{TG}/datasets")}
    assert listing[dataset["id"]]["images_count"] == 2
    assert listing[other["id"]]["images_count"] == 0
    assert "images" not in listing[dataset["id"]]
    by_project = api.ok("GET", f"{TG}/projects/{dataset['project_id']}/datasets")
    assert [d["id"] for d in by_project] == [dataset["id"]]
    assert "models" not in by_project[0]
    assert api.get(f"{TG}/projects/999999/datasets").status_code == 404


def test_include_models_and_ids(api: Api, images: list[bytes]) -> None:
    dataset = api.fibo_dataset(images, complete=True)
    model = api.model(dataset["id"])
    body = api.ok(
        "GET",
        f"{TG}/projects/{dataset['project_id']}/datasets",
        params={"include_models": "true", "include_models_ids": "true"},
    )
    assert body[0]["model_ids"] == [str(model["id"])]
    assert body[0]["models"][0]["id"] == model["id"]
    assert body[0]["models"][0]["status"] == "Created"


def test_get_with_max_images(api: Api, images: list[bytes]) -> None:
    dataset = api.fibo_dataset(images[:3], schema=False)
    full = api.ok("GET", f"{TG}/datasets/{dataset['id']}")
    assert full["images_count"] == 3
    assert len(full["images"]) == 3
    limited = api.ok("GET", f"{TG}/datasets/{dataset['id']}", params={"max_images": 2})
    assert limited["images_count"] == 3
    assert [i["id"] for i in limited["images"]] == [i["id"] for i in full["images"][:2]]
    for bad in ("0", "201", "x"):
        resp = api.get(f"{TG}/datasets/{dataset['id']}", params={"max_images": bad})
        assert resp.status_code == 400
        assert "max_images" in message_shape(resp.json())


def test_visual_schema_rules(api: Api) -> None:
    project = api.project()
    fibo = api.dataset(project["id"], training_version="fibo")
    body = api.ok("PUT", f"{TG}/datasets/{fibo['id']}", json={"visual_schema": SCHEMA})
    assert json.loads(body["visual_schema"]) == json.loads(SCHEMA)
    for bad in ("not json", "[1, 2]", "{}", 42):
        resp = api.put(f"{TG}/datasets/{fibo['id']}", json={"visual_schema": bad})
        assert resp.status_code == 400, bad
        message_shape(resp.json())
    resp = api.put(f"{TG}/datasets/{fibo['id']}", json={"caption_prefix": "A photo of"})
    assert resp.status_code == 400
    assert "legacy" in message_shape(resp.json())
    legacy_project = api.project(project_name="legacy")
    legacy = api.dataset(legacy_project["id"], training_version="max")
    resp = api.put(f"{TG}/datasets/{legacy['id']}", json={"visual_schema": SCHEMA})
    assert resp.status_code == 400
    assert "FIBO" in message_shape(resp.json())
    body = api.ok("PUT", f"{TG}/datasets/{legacy['id']}", json={"caption_prefix": "An icon of"})
    assert body["caption_prefix"] == "An icon of"


@pytest.mark.parametrize("field", ["training_version", "upload_type", "project_id"])
def test_immutable_fields(api: Api, field: str) -> None:
    dataset = api.dataset(api.project()["id"])
    resp = api.put(f"{TG}/datasets/{dataset['id']}", json={field: "fibo"})
    assert resp.status_code == 400
    assert "cannot be changed" in message_shape(resp.json())


def test_completion_needs_five_fibo_images(api: Api, images: list[bytes]) -> None:
    dataset = api.fibo_dataset(images[:4])
    resp = api.put(f"{TG}/datasets/{dataset['id']}", json={"status": "completed"})
    assert resp.status_code == 409
    assert "Insufficient images" in message_shape(resp.json())
    api.upload(dataset["id"], images[4])
    assert api.ok("PUT", f"{TG}/datasets/{dataset['id']}", json={"status": "completed"})["status"] == "completed"


def test_completion_needs_five_images_legacy_too(api: Api) -> None:
    """The spec states 5 images for completion (the older page's "1 for legacy" is superseded)."""
    dataset = api.dataset(api.project()["id"], training_version="light")
    for color in COLORS[:4]:
        api.upload(dataset["id"], make_image(color))
    resp = api.put(f"{TG}/datasets/{dataset['id']}", json={"status": "completed"})
    assert resp.status_code == 409
    assert "needs 5" in message_shape(resp.json())
    api.upload(dataset["id"], make_image(COLORS[4]))
    assert api.ok("PUT", f"{TG}/datasets/{dataset['id']}", json={"status": "completed"})["status"] == "completed"


def test_fibo_completion_needs_a_visual_schema(api: Api, images: list[bytes]) -> None:
    dataset = api.fibo_dataset(images, schema=False)
    resp = api.put(f"{TG}/datasets/{dataset['id']}", json={"status": "completed"})
    assert resp.status_code == 409
    assert "visual_schema" in message_shape(resp.json())
    assert api.ok("GET", f"{TG}/datasets/{dataset['id']}")["status"] == "draft"
    api.ok("PUT", f"{TG}/datasets/{dataset['id']}", json={"visual_schema": SCHEMA})
    assert api.ok("PUT", f"{TG}/datasets/{dataset['id']}", json={"status": "completed"})["status"] == "completed"


def test_status_values_are_lowercase_and_exact(api: Api) -> None:
    dataset = api.dataset(api.project()["id"])
    resp = api.put(f"{TG}/datasets/{dataset['id']}", json={"status": "Completed"})
    assert resp.status_code == 400
    assert "Invalid status" in message_shape(resp.json())


def test_completed_dataset_is_frozen(api: Api, images: list[bytes]) -> None:
    dataset = api.fibo_dataset(images, complete=True)
    did = dataset["id"]
    for body, fragment in (({"visual_schema": SCHEMA}, "completed dataset"), ({"status": "draft"}, "clone")):
        resp = api.put(f"{TG}/datasets/{did}", json=body)
        assert resp.status_code == 409
        assert fragment in message_shape(resp.json())
    image = dataset["images"][0]
    assert api.post(f"{TG}/datasets/{did}/images", json={"file": "aGVsbG8="}).status_code == 409
    assert api.delete(f"{TG}/datasets/{did}/images/{image['id']}").status_code == 409
    assert api.put(f"{TG}/datasets/{did}/images/{image['id']}", json={"caption": "{}"}).status_code == 409
    assert api.put(f"{TG}/datasets/{did}/images").status_code == 400  # regenerate: the spec lists no 409
    # renaming and re-completing stay allowed
    assert api.ok("PUT", f"{TG}/datasets/{did}", json={"name": "final", "status": "completed"})["name"] == "final"
    assert api.ok("GET", f"{TG}/datasets/{did}")["images_count"] == 5


def test_legacy_completed_prefix_frozen(api: Api) -> None:
    dataset = api.dataset(api.project()["id"], training_version="max")
    for color in COLORS[:5]:
        api.upload(dataset["id"], make_image(color))
    api.ok("PUT", f"{TG}/datasets/{dataset['id']}", json={"status": "completed"})
    resp = api.put(f"{TG}/datasets/{dataset['id']}", json={"caption_prefix": "x"})
    assert resp.status_code == 409


def test_delete_dataset(api: Api, images: list[bytes]) -> None:
    dataset = api.fibo_dataset(images[:1], schema=False)
    image_url = dataset["images"][0]["image_url"]
    assert api.session.get(image_url, timeout=10).status_code == 200
    assert api.delete(f"{TG}/datasets/{dataset['id']}").status_code == 204
    assert api.get(f"{TG}/datasets/{dataset['id']}").status_code == 404
    assert api.session.get(image_url, timeout=10).status_code == 404
    assert api.delete(f"{TG}/datasets/{dataset['id']}").status_code == 404


def test_delete_dataset_409_while_model_trains(api: Api, images: list[bytes]) -> None:
    dataset = api.fibo_dataset(images, complete=True)
    model = api.model(dataset["id"])
    api.ok("POST", f"{TG}/models/{model['id']}/start_training", json={})
    resp = api.delete(f"{TG}/datasets/{dataset['id']}")
    assert resp.status_code == 409
    message_shape(resp.json())


def test_clone_as_draft(api: Api, images: list[bytes]) -> None:
    source = api.fibo_dataset(images, complete=True)
    clone = api.ok("POST", f"{TG}/datasets/{source['id']}/clone", 201)
    assert clone["id"] != source["id"]
    assert clone["name"] == f"Copy of {source['name']}"
    assert clone["status"] == "draft"
    assert clone["training_version"] == "fibo"
    assert clone["visual_schema"] == source["visual_schema"]
    assert clone["images_count"] == 5
    assert [i["caption"] for i in clone["images"]] == [i["caption"] for i in source["images"]]
    assert {i["dataset_id"] for i in clone["images"]} == {clone["id"]}
    assert not {i["id"] for i in clone["images"]} & {i["id"] for i in source["images"]}
    original = api.session.get(source["images"][0]["image_url"], timeout=10).content
    assert api.session.get(clone["images"][0]["image_url"], timeout=10).content == original
    # the clone is editable, the source stays frozen and untouched
    api.ok("PUT", f"{TG}/datasets/{clone['id']}", json={"visual_schema": SCHEMA})
    assert api.delete(f"{TG}/datasets/{clone['id']}/images/{clone['images'][0]['id']}").status_code == 204
    assert api.ok("GET", f"{TG}/datasets/{source['id']}")["images_count"] == 5
    named = api.ok("POST", f"{TG}/datasets/{source['id']}/clone", 201, json={"name": "v2", "description": "d"})
    assert named["name"] == "v2"
    assert named["description"] == "d"
    assert api.post(f"{TG}/datasets/999999/clone").status_code == 404


def test_clone_legacy_keeps_prefix(api: Api) -> None:
    dataset = api.dataset(api.project()["id"], training_version="max")
    api.ok("PUT", f"{TG}/datasets/{dataset['id']}", json={"caption_prefix": "A photo of Rex,"})
    clone = api.ok("POST", f"{TG}/datasets/{dataset['id']}/clone", 201)
    assert clone["caption_prefix"] == "A photo of Rex,"


def test_download_only_for_advanced(api: Api, images: list[bytes]) -> None:
    basic = api.fibo_dataset(images[:1], schema=False)
    for path in (f"/v1/datasets/{basic['id']}/download", f"{TG}/datasets/{basic['id']}/download"):
        resp = api.get(path)
        assert resp.status_code == 409
        assert "advanced" in message_shape(resp.json())
    assert api.get("/v1/datasets/999999/download").status_code == 404


def test_download_advanced_dataset_zip(api: Api, file_server: tuple, images: list[bytes]) -> None:
    base, root = file_server
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for index, data in enumerate(images[:2]):
            archive.writestr(f"pic{index}.png", data)
    (root / "download-test.zip").write_bytes(buf.getvalue())
    project = api.project(training_version="fibo")
    dataset = api.dataset(project["id"], upload_type="advanced")
    api.ok("PUT", f"{TG}/datasets/{dataset['id']}", json={"visual_schema": SCHEMA})
    api.ok(
        "POST", f"{TG}/datasets/{dataset['id']}/images/bulk-upload", 202, json={"zip_url": f"{base}/download-test.zip"}
    )
    for _ in range(200):
        status = api.ok("GET", f"{TG}/datasets/{dataset['id']}/images/bulk-upload/status")
        if status["status"] in ("completed", "failed"):
            break
    assert status["status"] == "completed"
    body = api.ok("GET", f"/v1/datasets/{dataset['id']}/download")
    assert body["download_url"].startswith(api.url)
    archive = zipfile.ZipFile(io.BytesIO(api.session.get(body["download_url"], timeout=10).content))
    assert sorted(archive.namelist()) == ["pic0.png", "pic1.png"]
    assert archive.read("pic0.png") == images[0]
    captions = api.session.get(body["captions_url"], timeout=10).json()
    assert set(captions) == {"pic0.png", "pic1.png"}
    assert all(json.loads(c) for c in captions.values())
